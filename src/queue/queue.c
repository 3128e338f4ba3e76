/*
 * queue: see queue.h. The spool, the import into the state store, the
 * scheduler, local delivery, the bounce and delay notices.
 *
 * The queue file (DATA_DIR/queue/{tmp,incoming,active}/QID):
 *
 *     postern-queue 1
 *     from ADDRESS          (empty for the null sender)
 *     rcpt ADDRESS          (one line per recipient)
 *     8bit 0|1
 *     utf8 0|1
 *     ret hdrs|full
 *     envid TEXT            (optional)
 *     origin TEXT
 *     queued UNIXTIME
 *                           (an empty line)
 *     the message, byte for byte as given to queue_put()
 *
 * Invariants:
 *   - a file in incoming/ or active/ is complete and fsync'd (it got there
 *     by rename from tmp/ after fdatasync, and the directory was fsync'd);
 *   - a message is in active/ only after its rows are in the store; the
 *     rows go away only after the file did (so a crash never leaves a file
 *     nobody will deliver: startup re-imports an active/ file without rows);
 *   - a recipient becomes "delivered" only after the receiver's 250 (or
 *     the Maildir fsync); a crash before that record delivers it again;
 *   - "failed" becomes "bounced" only after the bounce is itself queued.
 *
 * The scheduler runs on the event loop: a 1 s tick and queue_kick() look
 * at incoming/ and ask the store for due recipients; up to [queue]
 * max_parallel messages are in delivery at once. Each message's due
 * recipients are grouped by domain: our domains are delivered into
 * Maildir by a worker thread, the others by remote.c. When every group is
 * done, the message is finished: bounces queued (by a worker thread, since
 * queue_put fsyncs), state recorded, and the file and rows removed when no
 * recipient is left.
 */
#include "queue/queue.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "deliver/maildir.h"
#include "deliver/remote.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/worker.h"
#include "queue/dsn.h"
#include "store/store.h"

#define QUEUE_ADDR_MAX 512
#define TICK_MS 1000
#define IMPORT_BATCH 500
#define LOCAL_WORKERS 2

/* ---- the queue file ---- */

int queue_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= QUEUE_ID_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s))
			return 0;
	return 1;
}

static int addr_ok(const char *a, int empty_ok)
{
	size_t n = strlen(a);
	if (n == 0)
		return empty_ok;
	if (n > QUEUE_ADDR_MAX)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a < 0x21 || *a == 0x7f || *a == '<' || *a == '>')
			return 0;
	return 1;
}

static int text_ok(const char *t)
{
	if (strlen(t) > 900)
		return 0;
	for (; *t; t++)
		if ((unsigned char)*t < 0x20 || *t == 0x7f)
			return 0;
	return 1;
}

void queue_file_clear(struct queue_file *f)
{
	free(f->mail_from);
	for (size_t i = 0; i < f->nrcpts; i++)
		free(f->rcpts[i]);
	free(f->rcpts);
	free(f->envid);
	free(f->origin);
	memset(f, 0, sizeof *f);
}

int queue_file_parse(const char *buf, size_t len, struct queue_file *out)
{
	const char *p = buf, *end = buf + len;
	int have_from = 0, have_queued = 0, first = 1;

	memset(out, 0, sizeof *out);
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp;
		size_t ll, kl;
		char *val;

		if (!nl) {
			queue_file_clear(out);
			return len >= QUEUE_HEADER_MAX ? -1 : 1;
		}
		ll = (size_t)(nl - p);
		if (first) {
			first = 0;
			if (ll != 15 || memcmp(p, "postern-queue 1", 15))
				goto bad;
			p = nl + 1;
			continue;
		}
		if (ll == 0) {
			p = nl + 1;
			break;
		}
		sp = memchr(p, ' ', ll);
		kl = sp ? (size_t)(sp - p) : ll;
		val = sp ? xstrndup(sp + 1, ll - kl - 1) : xstrdup("");
		if (memchr(val, '\0', strlen(val)) || strlen(val) != (sp ? ll - kl - 1 : 0)) {
			free(val);
			goto bad;
		}
#define KEY(k) (kl == sizeof(k) - 1 && !memcmp(p, k, kl))
		if (KEY("from") && !have_from && addr_ok(val, 1)) {
			out->mail_from = val;
			have_from = 1;
		} else if (KEY("rcpt") && addr_ok(val, 0) && out->nrcpts < QUEUE_MAX_RCPTS) {
			out->rcpts = xrealloc(out->rcpts, (out->nrcpts + 1) * sizeof *out->rcpts);
			out->rcpts[out->nrcpts++] = val;
		} else if ((KEY("8bit") || KEY("utf8")) && (!strcmp(val, "0") || !strcmp(val, "1"))) {
			*(KEY("8bit") ? &out->body_8bit : &out->smtputf8) = val[0] == '1';
			free(val);
		} else if (KEY("ret") && (!strcmp(val, "hdrs") || !strcmp(val, "full"))) {
			out->ret_full = !strcmp(val, "full");
			free(val);
		} else if (KEY("envid") && !out->envid && text_ok(val)) {
			out->envid = val;
		} else if (KEY("origin") && !out->origin && text_ok(val)) {
			out->origin = val;
		} else if (KEY("queued") && !have_queued) {
			uint64_t t;
			int ok = parse_uint(val, (uint64_t)INT64_MAX, &t) == 0;
			free(val);
			if (!ok)
				goto bad;
			out->queued = (int64_t)t;
			have_queued = 1;
		} else {
			free(val);
			goto bad;
		}
#undef KEY
		p = nl + 1;
	}
	if (!have_from || !have_queued || out->nrcpts == 0)
		goto bad;
	out->body_offset = (size_t)(p - buf);
	return 0;
bad:
	queue_file_clear(out);
	return -1;
}

static char *qpath(const char *data_dir, const char *sub, const char *qid)
{
	return qid ? xasprintf("%s/queue/%s/%s", data_dir, sub, qid) : xasprintf("%s/queue/%s", data_dir, sub);
}

char *queue_file_path(const char *data_dir, const char *qid)
{
	return qpath(data_dir, "active", qid);
}

static int copy_fd(int in, off_t len, int out)
{
	char buf[65536];
	off_t off = 0;
	while (off < len) {
		size_t want = (size_t)(len - off) < sizeof buf ? (size_t)(len - off) : sizeof buf;
		ssize_t n = pread(in, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
		off += n;
	}
	return 0;
}

static void new_qid(char *qid, size_t n)
{
	char rnd[9];
	random_hex(rnd, 8);
	snprintf(qid, n, "%011llx%s", (unsigned long long)wall_ms(), rnd);
}

int queue_put(const char *data_dir, const struct queue_env *env, const struct maildir_msg *msg, char *qid,
	      size_t qidsize)
{
	char id[QUEUE_ID_MAX];
	char *tmp = NULL, *final = NULL, *dir = NULL, *head = NULL;
	size_t hl = 0;
	FILE *h;
	int fd = -1, saved;

	if (!env || !env->mail_from || !addr_ok(env->mail_from, 1) || env->nrcpts == 0 ||
	    env->nrcpts > QUEUE_MAX_RCPTS || (env->envid && !text_ok(env->envid)) ||
	    (env->origin && !text_ok(env->origin)) || qidsize < QUEUE_ID_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < env->nrcpts; i++)
		if (!env->rcpts[i] || !addr_ok(env->rcpts[i], 0) || !strchr(env->rcpts[i], '@')) {
			errno = EINVAL;
			return -1;
		}
	h = open_memstream(&head, &hl);
	fprintf(h, "postern-queue 1\nfrom %s\n", env->mail_from);
	for (size_t i = 0; i < env->nrcpts; i++)
		fprintf(h, "rcpt %s\n", env->rcpts[i]);
	fprintf(h, "8bit %d\nutf8 %d\nret %s\n", env->body_8bit ? 1 : 0, env->smtputf8 ? 1 : 0,
		env->ret_full ? "full" : "hdrs");
	if (env->envid && *env->envid)
		fprintf(h, "envid %s\n", env->envid);
	fprintf(h, "origin %s\nqueued %lld\n\n", env->origin && *env->origin ? env->origin : "unknown",
		(long long)(wall_ms() / 1000));
	fclose(h);

	new_qid(id, sizeof id);
	dir = qpath(data_dir, "incoming", NULL);
	tmp = qpath(data_dir, "tmp", id);
	final = qpath(data_dir, "incoming", id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		char *t = qpath(data_dir, "tmp", NULL);
		if (mkdir_p(t, 0700) == 0 && mkdir_p(dir, 0700) == 0)
			fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		free(t);
	}
	if (fd < 0)
		goto fail;
	if (write_all(fd, head, hl) < 0 || write_all(fd, msg->head, msg->head_len) < 0 ||
	    (msg->file_len > 0 && copy_fd(msg->file_fd, msg->file_len, fd) < 0) ||
	    write_all(fd, msg->tail, msg->tail_len) < 0 || fdatasync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, final) < 0 && (errno != ENOENT || mkdir_p(dir, 0700) < 0 || rename(tmp, final) < 0))
		goto fail;
	if (fsync_dir(dir) < 0) {
		saved = errno;
		unlink(final);
		errno = saved;
		goto fail_quiet;
	}
	str_copy(qid, id, qidsize);
	free(head);
	free(tmp);
	free(final);
	free(dir);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	errno = saved;
fail_quiet:
	saved = errno;
	free(head);
	free(tmp);
	free(final);
	free(dir);
	errno = saved;
	return -1;
}

/* ---- import: incoming/ (and, at start, active/) into the store ---- */

/* Reads and parses the header of an open queue file. 0 or -1. */
static int read_header(int fd, struct queue_file *qf, off_t *size)
{
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap);
	struct stat sb;
	int rc = -1;

	if (fstat(fd, &sb) < 0)
		goto out;
	*size = sb.st_size;
	for (;;) {
		ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		len += (size_t)n;
		rc = queue_file_parse(buf, len, qf);
		if (rc <= 0 || n == 0)
			break;
		if (len == cap) {
			if (cap >= QUEUE_HEADER_MAX) {
				rc = -1;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	if (rc == 1)
		rc = -1;
out:
	free(buf);
	return rc;
}

/* Imports the file from/qid; moves it to active/ when it came from
 * incoming/. Returns 1 imported, 0 already known, -1 error. */
static int import_one(const char *data_dir, struct store *st, const char *from, const char *qid)
{
	char *path = qpath(data_dir, from, qid);
	struct queue_file qf;
	off_t size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		free(path);
		return errno == ENOENT ? 0 : -1;
	}
	if (read_header(fd, &qf, &size) < 0) {
		char *bad = qpath(data_dir, "bad", qid), *baddir = qpath(data_dir, "bad", NULL);
		close(fd);
		log_error(NULL, "event=queue_bad_file path=%s hint=\"moved to queue/bad/; look at it and delete it\"", path);
		mkdir_p(baddir, 0700);
		rename(path, bad);
		free(bad);
		free(baddir);
		free(path);
		return -1;
	}
	close(fd);
	{
		struct store_qmsg m = {
			.qid = qid,
			.mail_from = qf.mail_from,
			.queued = qf.queued,
			.size = (int64_t)size - (int64_t)qf.body_offset,
			.body_offset = (int64_t)qf.body_offset,
			.envid = qf.envid,
			.ret_full = qf.ret_full,
			.body_8bit = qf.body_8bit,
			.smtputf8 = qf.smtputf8,
			.origin = qf.origin,
		};
		rc = store_queue_add(st, &m, (const char *const *)qf.rcpts, qf.nrcpts);
	}
	if (rc == STORE_OK || rc == STORE_EXISTS) {
		if (strcmp(from, "active")) {
			char *to = qpath(data_dir, "active", qid);
			if (rename(path, to) < 0 && !(errno == ENOENT && access(path, F_OK) < 0)) {
				/* not taken by another importer: active/ is missing */
				char *d = qpath(data_dir, "active", NULL);
				if (mkdir_p(d, 0700) < 0 || rename(path, to) < 0)
					log_error(NULL, "event=queue_error op=rename qid=%s error=\"%s\"", qid, strerror(errno));
				free(d);
			}
			free(to);
		}
		if (rc == STORE_OK) {
			char v[600];
			log_info(NULL, "event=queued qid=%s from=<%s> rcpts=%zu size=%lld origin=%s", qid,
				 log_value(v, sizeof v, qf.mail_from, strlen(qf.mail_from)), qf.nrcpts,
				 (long long)(size - (off_t)qf.body_offset), qf.origin ? qf.origin : "unknown");
		}
		rc = rc == STORE_OK;
	} else {
		rc = -1;
	}
	queue_file_clear(&qf);
	free(path);
	return rc;
}

static int import_dir(const char *data_dir, struct store *st, const char *sub, size_t max, int only_unknown)
{
	char *dir = qpath(data_dir, sub, NULL);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d) {
		free(dir);
		return errno == ENOENT ? 0 : -1;
	}
	while ((e = readdir(d)) && (size_t)n < max) {
		if (!queue_id_valid(e->d_name))
			continue;
		if (only_unknown && store_queue_visit(st, e->d_name, NULL, NULL, NULL) != STORE_NOTFOUND)
			continue;
		if (import_one(data_dir, st, sub, e->d_name) > 0)
			n++;
	}
	closedir(d);
	free(dir);
	return n;
}

int queue_import(const char *data_dir, struct store *st)
{
	return import_dir(data_dir, st, "incoming", SIZE_MAX, 0);
}

int queue_remove(const char *data_dir, struct store *st, const char *qid)
{
	char *p;
	int rc = store_queue_visit(st, qid, NULL, NULL, NULL);
	if (rc != STORE_OK)
		return -1;
	p = qpath(data_dir, "active", qid);
	if (unlink(p) < 0 && errno != ENOENT)
		log_error(NULL, "event=queue_error op=unlink qid=%s error=\"%s\"", qid, strerror(errno));
	free(p);
	return store_queue_del(st, qid) == STORE_OK ? 0 : -1;
}

uint64_t queue_backoff_ms(const struct config *cfg, int attempts)
{
	uint64_t d = cfg->queue_retry_first_ms;
	for (int i = 1; i < attempts && d < cfg->queue_retry_max_ms; i++)
		d *= 2;
	return d < cfg->queue_retry_max_ms ? d : cfg->queue_retry_max_ms;
}

/* ---- the daemon's side ---- */

enum rstate { R_PENDING, R_HELD, R_DELIVERED, R_FAILED, R_BOUNCED };
static const char *const rstate_names[] = { "pending", "held", "delivered", "failed", "bounced" };

static enum rstate rstate_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_LEN(rstate_names); i++)
		if (s && !strcmp(s, rstate_names[i]))
			return (enum rstate)i;
	return R_HELD; /* unknown: leave it alone */
}

struct qrc {
	char *addr;
	char *domain; /* lower-cased */
	enum rstate state;
	int attempts;
	int64_t next_attempt, last_attempt;
	char *status, *reply, *mx;
	int busy; /* in this round of deliveries */
};

struct qmsg {
	struct queue *q;
	struct qmsg *prev, *next;
	char qid[QUEUE_ID_MAX];
	char *mail_from, *envid, *origin;
	int64_t queued, size, body_offset;
	int ret_full, body_8bit, smtputf8, delay_notified;
	struct qrc *r;
	size_t nr;
	int fd;
	int jobs;
	int finishing;
};

struct queue {
	struct event_base *base;
	const struct config *cfg;
	struct store *store;
	struct dns *dns;
	char *data_dir;
	struct remote *remote;
	struct worker_pool *pool;
	struct event *tick, *kick_ev, *sched_ev;
	int kick_fd;
	struct qmsg *active;
	size_t nactive;
	struct rgroup *groups; /* remote deliveries in flight (freed at exit) */
	int shutting_down;
};

static void schedule_soon(struct queue *q);

static void qmsg_free(struct qmsg *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nr; i++) {
		free(m->r[i].addr);
		free(m->r[i].domain);
		free(m->r[i].status);
		free(m->r[i].reply);
		free(m->r[i].mx);
	}
	free(m->r);
	free(m->mail_from);
	free(m->envid);
	free(m->origin);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

static void qmsg_unlink(struct qmsg *m)
{
	struct queue *q = m->q;
	if (m->prev)
		m->prev->next = m->next;
	else
		q->active = m->next;
	if (m->next)
		m->next->prev = m->prev;
	q->nactive--;
}

static int load_msg(void *arg, const struct store_qmsg *s)
{
	struct qmsg *m = arg;
	str_copy(m->qid, s->qid, sizeof m->qid);
	m->mail_from = xstrdup(s->mail_from);
	m->envid = s->envid ? xstrdup(s->envid) : NULL;
	m->origin = s->origin ? xstrdup(s->origin) : NULL;
	m->queued = s->queued;
	m->size = s->size;
	m->body_offset = s->body_offset;
	m->ret_full = s->ret_full;
	m->body_8bit = s->body_8bit;
	m->smtputf8 = s->smtputf8;
	m->delay_notified = s->delay_notified;
	return 0;
}

static int load_rcpt(void *arg, const struct store_qrcpt *s)
{
	struct qmsg *m = arg;
	struct qrc *r;
	const char *at;
	if (!s->rcpt)
		return 0;
	m->r = xrealloc(m->r, (m->nr + 1) * sizeof *m->r);
	r = &m->r[m->nr++];
	memset(r, 0, sizeof *r);
	r->addr = xstrdup(s->rcpt);
	at = strrchr(s->rcpt, '@');
	r->domain = str_lower(xstrdup(at ? at + 1 : ""));
	r->state = rstate_parse(s->state);
	r->attempts = s->attempts;
	r->next_attempt = s->next_attempt;
	r->last_attempt = s->last_attempt;
	r->status = s->last_status ? xstrdup(s->last_status) : NULL;
	r->reply = s->last_reply ? xstrdup(s->last_reply) : NULL;
	r->mx = s->last_mx ? xstrdup(s->last_mx) : NULL;
	return 0;
}

static void rcpt_save(struct qmsg *m, struct qrc *r)
{
	struct store_qrcpt s = {
		.qid = m->qid,
		.rcpt = r->addr,
		.state = rstate_names[r->state],
		.attempts = r->attempts,
		.next_attempt = r->next_attempt,
		.last_attempt = r->last_attempt,
		.last_status = r->status,
		.last_reply = r->reply,
		.last_mx = r->mx,
	};
	store_queue_rcpt_update(m->q->store, &s);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v && *v ? xstrdup(v) : NULL;
}

enum outcome { OUT_DELIVERED, OUT_DEFERRED, OUT_FAILED };

/* Records one recipient's outcome. */
static void rcpt_result(struct qmsg *m, struct qrc *r, enum outcome o, const char *status, const char *reply,
			const char *mx)
{
	const struct config *cfg = m->q->cfg;
	int64_t now = (int64_t)(wall_ms() / 1000);

	r->busy = 0;
	r->last_attempt = now;
	set_str(&r->status, status);
	set_str(&r->reply, reply);
	set_str(&r->mx, mx);
	if (o == OUT_DELIVERED) {
		r->state = R_DELIVERED;
	} else if (o == OUT_FAILED) {
		r->state = R_FAILED;
	} else {
		int64_t expire = m->queued + (int64_t)(cfg->queue_max_age_ms / 1000);
		r->attempts++;
		if (now >= expire) {
			char *why = xasprintf("%s (gave up after %llds in the queue)", reply ? reply : "temporary failure",
					      (long long)(now - m->queued));
			set_str(&r->reply, why);
			free(why);
			r->state = R_FAILED;
		} else {
			uint64_t wait = queue_backoff_ms(cfg, r->attempts);
			r->next_attempt = now + (int64_t)((wait + 999) / 1000);
			if (r->next_attempt > expire)
				r->next_attempt = expire;
			r->state = R_PENDING;
		}
	}
	metric_inc(metrics_queue_outcomes(), r->state == R_DELIVERED ? "delivered" : r->state == R_FAILED ? "bounced" : "deferred");
	rcpt_save(m, r);
}

static void message_finish(struct qmsg *m);

static void job_done(struct qmsg *m)
{
	if (--m->jobs == 0)
		message_finish(m);
}

/* ---- remote ---- */

struct rgroup {
	struct qmsg *m;
	size_t *idx;
	size_t n;
	struct rgroup *next, *prev;
};

static void rgroup_unlink(struct queue *q, struct rgroup *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		q->groups = g->next;
	if (g->next)
		g->next->prev = g->prev;
}

static void on_remote(void *arg, const struct remote_result *res)
{
	struct rgroup *g = arg;
	rgroup_unlink(g->m->q, g);
	for (size_t i = 0; i < g->n; i++) {
		const struct remote_result *x = &res[i];
		struct qrc *r = &g->m->r[g->idx[i]];
		if (x->outcome == REMOTE_PACED) {
			/* held back by [pacing]: not an attempt; never bounced for it */
			char *why = xasprintf("paced: %s", x->text);
			r->busy = 0;
			r->state = R_PENDING;
			r->next_attempt = (x->not_before_ms + 999) / 1000;
			set_str(&r->reply, why);
			free(why);
			rcpt_save(g->m, r);
			continue;
		}
		rcpt_result(g->m, r,
			    x->outcome == REMOTE_DELIVERED  ? OUT_DELIVERED
			    : x->outcome == REMOTE_DEFERRED ? OUT_DEFERRED
							    : OUT_FAILED,
			    x->status, x->text, x->mx);
		if (x->retry_now && r->state == R_PENDING) {
			/* refused for reputation: at once, through the route just learned */
			r->next_attempt = (int64_t)(wall_ms() / 1000);
			rcpt_save(g->m, r);
		}
	}
	job_done(g->m);
	free(g->idx);
	free(g);
}

static void start_remote(struct qmsg *m, const char *domain, size_t *idx, size_t n)
{
	struct rgroup *g = xcalloc(1, sizeof *g);
	const char **rcpts = xcalloc(n, sizeof *rcpts);
	struct remote_msg rm = {
		.qid = m->qid,
		.mail_from = m->mail_from,
		.domain = domain,
		.rcpts = rcpts,
		.nrcpts = n,
		.body_8bit = m->body_8bit,
		.smtputf8 = m->smtputf8,
		.fd = m->fd,
		.off = (off_t)m->body_offset,
		.len = (off_t)m->size,
	};
	g->m = m;
	g->idx = idx;
	g->n = n;
	g->next = m->q->groups;
	if (g->next)
		g->next->prev = g;
	m->q->groups = g;
	for (size_t i = 0; i < n; i++)
		rcpts[i] = m->r[idx[i]].addr;
	m->jobs++;
	remote_deliver(m->q->remote, &rm, on_remote, g);
	free(rcpts);
}

/* ---- local ---- */

struct lgroup {
	struct qmsg *m;
	char *mail_dir;
	char *mail_from;
	int fd;
	off_t off, len;
	size_t n;         /* recipients */
	size_t *idx;      /* their index in m->r */
	char ***paths;    /* per recipient: Maildir paths */
	size_t *npaths;
	int *err;         /* per recipient: 0 or errno of the failure */
	int *unknown;     /* per recipient: no such mailbox */
	int *dberr;       /* per recipient: the lookup failed */
};

static void local_work(void *arg)
{
	struct lgroup *g = arg;
	char *body = xmalloc((size_t)g->len + 1), *lf;
	char *head = xasprintf("Return-Path: <%s>\n", g->mail_from);
	size_t o = 0;
	off_t got = 0;
	int rerr = 0;

	while (got < g->len) {
		ssize_t k = pread(g->fd, body + got, (size_t)(g->len - got), g->off + got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rerr = k < 0 ? errno : EIO;
			break;
		}
		got += k;
	}
	/* Maildir keeps LF line ends */
	lf = body;
	for (off_t i = 0; i < got; i++)
		if (!(body[i] == '\r' && i + 1 < got && body[i + 1] == '\n'))
			lf[o++] = body[i];
	for (size_t i = 0; i < g->n; i++) {
		struct maildir_msg mm = { .head = head, .head_len = strlen(head), .file_fd = -1, .tail = lf, .tail_len = o };
		if (g->unknown[i] || g->dberr[i])
			continue;
		for (size_t k = 0; k < g->npaths[i] && !g->err[i]; k++) {
			if (rerr)
				g->err[i] = rerr;
			else if (maildir_deliver(g->paths[i][k], NULL, &mm, NULL, 0) < 0)
				g->err[i] = errno ? errno : EIO;
		}
	}
	free(head);
	free(body);
}

static void local_done(void *arg)
{
	struct lgroup *g = arg;
	struct qmsg *m = g->m;
	int64_t t = (int64_t)wall_ms();

	for (size_t i = 0; i < g->n; i++) {
		struct qrc *r = &m->r[g->idx[i]];
		char text[300];
		enum outcome o;
		const char *status;
		if (g->unknown[i]) {
			o = OUT_FAILED;
			status = "5.1.1";
			snprintf(text, sizeof text, "550 5.1.1 <%s>: no such mailbox here", r->addr);
		} else if (g->dberr[i]) {
			o = OUT_DEFERRED;
			status = "4.3.0";
			snprintf(text, sizeof text, "451 4.3.0 the mailbox lookup failed");
		} else if (g->err[i]) {
			o = OUT_DEFERRED;
			status = "4.3.0";
			snprintf(text, sizeof text, "451 4.3.0 local delivery failed: %s", strerror(g->err[i]));
		} else {
			o = OUT_DELIVERED;
			status = "2.0.0";
			snprintf(text, sizeof text, "250 2.0.0 delivered to %zu mailbox%s", g->npaths[i],
				 g->npaths[i] == 1 ? "" : "es");
		}
		if (m->q->store) {
			struct store_delivery d = {
				.time = t, .qid = m->qid, .rcpt = r->addr, .domain = r->domain, .provider = "local",
				.route = "local", .route_reason = "local_domain",
				.outcome = o == OUT_DELIVERED ? "delivered" : o == OUT_DEFERRED ? "deferred" : "failed",
				.code = atoi(text), .status = status, .reply = text,
			};
			store_ledger_add(m->q->store, &d);
		}
		log_info(m->qid, "event=%s to=<%s> route=local status=%s", o == OUT_DELIVERED ? "delivered"
									 : o == OUT_DEFERRED ? "deferred"
											     : "failed",
			 r->addr, status);
		rcpt_result(m, r, o, status, text, NULL);
		for (size_t k = 0; k < g->npaths[i]; k++)
			free(g->paths[i][k]);
		free(g->paths[i]);
	}
	free(g->paths);
	free(g->npaths);
	free(g->err);
	free(g->unknown);
	free(g->dberr);
	free(g->idx);
	free(g->mail_dir);
	free(g->mail_from);
	free(g);
	job_done(m);
}

static void start_local(struct qmsg *m, size_t *idx, size_t n)
{
	struct queue *q = m->q;
	struct lgroup *g = xcalloc(1, sizeof *g);

	g->m = m;
	g->n = n;
	g->idx = idx;
	g->fd = m->fd;
	g->off = (off_t)m->body_offset;
	g->len = (off_t)m->size;
	g->mail_dir = xstrdup(q->cfg->mail_dir);
	g->mail_from = xstrdup(m->mail_from);
	g->paths = xcalloc(n, sizeof *g->paths);
	g->npaths = xcalloc(n, sizeof *g->npaths);
	g->err = xcalloc(n, sizeof *g->err);
	g->unknown = xcalloc(n, sizeof *g->unknown);
	g->dberr = xcalloc(n, sizeof *g->dberr);
	for (size_t i = 0; i < n; i++) {
		char **boxes = NULL;
		size_t nb = 0;
		int rc = store_resolve(q->store, m->r[idx[i]].addr, q->cfg->recipient_delimiter, &boxes, &nb);
		if (rc == STORE_NOTFOUND || (rc == STORE_OK && nb == 0) || rc == STORE_INVALID) {
			g->unknown[i] = 1;
		} else if (rc != STORE_OK) {
			g->dberr[i] = 1;
		} else {
			g->paths[i] = xcalloc(nb, sizeof *g->paths[i]);
			for (size_t k = 0; k < nb; k++) {
				char *p = maildir_path(q->cfg->mail_dir, boxes[k]);
				if (p)
					g->paths[i][g->npaths[i]++] = p;
			}
			if (g->npaths[i] == 0)
				g->unknown[i] = 1;
		}
		if (rc == STORE_OK)
			store_strv_free(boxes, nb);
	}
	m->jobs++;
	worker_submit(q->pool, local_work, local_done, g);
}

/* ---- bounces and delay notices ---- */

struct bounce {
	struct qmsg *m;
	char *data_dir, *hostname;
	struct dsn_input in;
	struct dsn_rcpt *dr;
	size_t *idx;      /* the recipients reported */
	int delayed;      /* a delay notice, not a failure */
	int ok;
	char qid[QUEUE_ID_MAX];
	char unique[40];
};

static void bounce_work(void *arg)
{
	struct bounce *b = arg;
	struct qmsg *m = b->m;
	size_t want = (size_t)m->size, got = 0, len;
	char *orig = xmalloc(want + 1), *text;
	struct maildir_msg mm = { 0 };
	const char *rcpt = m->mail_from;
	struct queue_env env = {
		.mail_from = "",
		.rcpts = &rcpt,
		.nrcpts = 1,
		.origin = "dsn",
	};

	if (!b->in.full && want > 256 * 1024)
		want = 256 * 1024; /* enough for any header block we would keep */
	while (got < want) {
		ssize_t k = pread(m->fd, orig + got, want - got, (off_t)m->body_offset + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	b->in.orig = orig;
	b->in.orig_len = b->in.full ? got : dsn_header_len(orig, got);
	text = dsn_build(&b->in, &len);
	for (const char *p = text; *p; p++)
		env.body_8bit |= (unsigned char)*p >= 0x80;
	mm.head = text;
	mm.head_len = len;
	mm.file_fd = -1;
	b->ok = queue_put(b->data_dir, &env, &mm, b->qid, sizeof b->qid) == 0;
	if (!b->ok)
		log_error(m->qid, "event=bounce_failed error=\"%s\"", strerror(errno));
	free(text);
	free(orig);
}

static void bounce_done(void *arg)
{
	struct bounce *b = arg;
	struct qmsg *m = b->m;
	char v[600];

	if (b->ok) {
		log_info(m->qid, "event=%s dsn_qid=%s to=<%s> rcpts=%zu", b->delayed ? "delay_notice" : "bounced", b->qid,
			 log_value(v, sizeof v, m->mail_from, strlen(m->mail_from)), b->in.nrcpts);
		if (b->delayed) {
			m->delay_notified = 1;
			store_queue_set_notified(m->q->store, m->qid);
		} else {
			for (size_t i = 0; i < b->in.nrcpts; i++) {
				m->r[b->idx[i]].state = R_BOUNCED;
				rcpt_save(m, &m->r[b->idx[i]]);
			}
		}
		queue_kick(m->q);
	}
	free(b->dr);
	free(b->idx);
	free(b->data_dir);
	free(b->hostname);
	free(b);
	job_done(m);
}

static void start_bounce(struct qmsg *m, int delayed)
{
	struct queue *q = m->q;
	struct bounce *b = xcalloc(1, sizeof *b);
	int64_t now = (int64_t)(wall_ms() / 1000);

	b->m = m;
	b->delayed = delayed;
	b->data_dir = xstrdup(q->data_dir);
	b->hostname = xstrdup(q->cfg->hostname);
	b->dr = xcalloc(m->nr, sizeof *b->dr);
	b->idx = xcalloc(m->nr, sizeof *b->idx);
	for (size_t i = 0; i < m->nr; i++) {
		struct qrc *r = &m->r[i];
		struct dsn_rcpt *d;
		if (r->state != (delayed ? R_PENDING : R_FAILED))
			continue;
		d = &b->dr[b->in.nrcpts];
		b->idx[b->in.nrcpts++] = i;
		d->rcpt = r->addr;
		d->status = r->status;
		d->remote_mta = r->mx;
		/* a reply that came from a server starts with its code */
		if (r->reply && r->mx && isdigit((unsigned char)r->reply[0]))
			d->diagnostic = r->reply;
		else
			d->local_diagnostic = r->reply ? r->reply : "no reason recorded";
		d->last_attempt = r->last_attempt;
	}
	random_hex(b->unique, 24);
	b->in.kind = delayed ? DSN_DELAYED : DSN_FAILED;
	b->in.reporting_mta = b->hostname;
	b->in.qid = m->qid;
	b->in.envid = m->envid;
	b->in.to = m->mail_from;
	b->in.arrival = m->queued;
	b->in.now = now;
	b->in.retry_until = m->queued + (int64_t)(q->cfg->queue_max_age_ms / 1000);
	b->in.rcpts = b->dr;
	b->in.full = m->ret_full && !delayed;
	b->in.unique = b->unique;
	m->jobs++;
	worker_submit(q->pool, bounce_work, bounce_done, b);
}

/* ---- the life of a message in delivery ---- */

static void message_done(struct qmsg *m)
{
	struct queue *q = m->q;
	int left = 1;

	if (store_queue_unfinished(q->store, m->qid, &left) == STORE_OK && left == 0) {
		/* the file first, then the rows (see the invariants above) */
		char *p = qpath(q->data_dir, "active", m->qid);
		if (unlink(p) < 0 && errno != ENOENT)
			log_error(m->qid, "event=queue_error op=unlink error=\"%s\"", strerror(errno));
		free(p);
		store_queue_del(q->store, m->qid);
		log_info(m->qid, "event=removed");
	}
	qmsg_unlink(m);
	qmsg_free(m);
	schedule_soon(q);
}

/* Every delivery of this round is done: bounces, notices, cleanup. Runs
 * again after the notice jobs finish (m->finishing says which pass). */
static void message_finish(struct qmsg *m)
{
	struct queue *q = m->q;
	const struct config *cfg = q->cfg;
	int64_t now = (int64_t)(wall_ms() / 1000);
	int failed = 0, pending = 0;

	if (m->finishing) {
		message_done(m);
		return;
	}
	m->finishing = 1;
	for (size_t i = 0; i < m->nr; i++) {
		failed += m->r[i].state == R_FAILED;
		pending += m->r[i].state == R_PENDING;
	}
	if (failed && !*m->mail_from) {
		/* RFC 5321 section 6.1: never a bounce to the null sender */
		for (size_t i = 0; i < m->nr; i++)
			if (m->r[i].state == R_FAILED) {
				m->r[i].state = R_BOUNCED;
				rcpt_save(m, &m->r[i]);
				log_info(m->qid, "event=no_bounce to=<%s> reason=null_sender", m->r[i].addr);
			}
		failed = 0;
	}
	if (failed && q->shutting_down)
		failed = 0; /* after the restart */
	m->jobs = 1; /* held while the notices are being queued */
	if (failed)
		start_bounce(m, 0);
	if (pending && *m->mail_from && cfg->queue_delay_notice_ms && !m->delay_notified &&
	    now - m->queued >= (int64_t)(cfg->queue_delay_notice_ms / 1000) && !q->shutting_down)
		start_bounce(m, 1);
	job_done(m);
}

static void message_start(struct queue *q, const char *qid)
{
	struct qmsg *m = xcalloc(1, sizeof *m);
	int64_t now = (int64_t)(wall_ms() / 1000);
	char *path;
	int any_failed = 0;

	m->q = q;
	m->fd = -1;
	if (store_queue_visit(q->store, qid, load_msg, load_rcpt, m) != STORE_OK || !m->mail_from) {
		qmsg_free(m);
		return;
	}
	path = qpath(q->data_dir, "active", qid);
	m->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0 && errno == ENOENT) {
		/* imported by a CLI command that has not yet moved the file */
		char *in = qpath(q->data_dir, "incoming", qid);
		int pending_move = access(in, F_OK) == 0;
		free(in);
		if (pending_move) {
			free(path);
			qmsg_free(m);
			return;
		}
	}
	if (m->fd < 0) {
		log_error(qid, "event=queue_error op=open path=%s error=\"%s\" hint=\"the message file is gone; its rows are removed\"",
			  path, strerror(errno));
		free(path);
		store_queue_del(q->store, qid);
		qmsg_free(m);
		return;
	}
	free(path);
	m->next = q->active;
	if (q->active)
		q->active->prev = m;
	q->active = m;
	q->nactive++;

	m->jobs = 1; /* held while the groups are started */
	for (size_t i = 0; i < m->nr; i++) {
		any_failed |= m->r[i].state == R_FAILED;
		m->r[i].busy = m->r[i].state == R_PENDING && m->r[i].next_attempt <= now;
	}
	for (size_t i = 0; i < m->nr; i++) {
		size_t *idx, n = 0;
		const char *dom;
		if (!m->r[i].busy)
			continue;
		dom = m->r[i].domain;
		idx = xcalloc(m->nr, sizeof *idx);
		for (size_t k = i; k < m->nr; k++)
			if (m->r[k].busy && !strcmp(m->r[k].domain, dom)) {
				idx[n++] = k;
				m->r[k].busy = 2; /* grouped */
			}
		for (size_t k = 0; k < n; k++)
			m->r[idx[k]].busy = 0;
		if (config_is_local_domain(q->cfg, dom))
			start_local(m, idx, n);
		else
			start_remote(m, dom, idx, n); /* takes idx */
	}
	(void)any_failed;
	job_done(m);
}

static int is_active(struct queue *q, const char *qid)
{
	for (struct qmsg *m = q->active; m; m = m->next)
		if (!strcmp(m->qid, qid))
			return 1;
	return 0;
}

struct due_ctx {
	struct queue *q;
	char **ids;
	size_t n;
};

static int due_cb(void *arg, const char *qid)
{
	struct due_ctx *c = arg;
	if (!is_active(c->q, qid)) {
		c->ids = xrealloc(c->ids, (c->n + 1) * sizeof *c->ids);
		c->ids[c->n++] = xstrdup(qid);
	}
	return 0;
}

static void schedule(struct queue *q)
{
	struct due_ctx c = { .q = q };
	size_t max = (size_t)q->cfg->queue_max_parallel;
	int n;

	if (q->shutting_down)
		return;
	n = import_dir(q->data_dir, q->store, "incoming", IMPORT_BATCH, 0);
	if (n == IMPORT_BATCH)
		schedule_soon(q); /* more to import */
	if (q->nactive >= max)
		return;
	store_queue_due(q->store, (int64_t)(wall_ms() / 1000), max, due_cb, &c);
	for (size_t i = 0; i < c.n; i++) {
		if (q->nactive < max && !q->shutting_down)
			message_start(q, c.ids[i]);
		free(c.ids[i]);
	}
	free(c.ids);
}

static void on_sched(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	schedule(arg);
}

static void schedule_soon(struct queue *q)
{
	if (!q->shutting_down && !event_pending(q->sched_ev, EV_TIMEOUT, NULL))
		event_active(q->sched_ev, EV_TIMEOUT, 0);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	schedule(arg);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;
	(void)what;
	(void)!read(fd, &n, sizeof n);
	schedule(arg);
}

void queue_kick(struct queue *q)
{
	uint64_t one = 1;
	if (q)
		(void)!write(q->kick_fd, &one, sizeof one);
}

struct recover_ctx {
	char **done;
	size_t ndone;
	char **nofile;
	size_t nnofile;
	const char *data_dir;
	int unfinished;
	const char *cur;
};

static int recover_msg(void *arg, const struct store_qmsg *m)
{
	struct recover_ctx *c = arg;
	char *a = qpath(c->data_dir, "active", m->qid), *i = qpath(c->data_dir, "incoming", m->qid);
	if (access(a, F_OK) < 0 && access(i, F_OK) < 0) {
		c->nofile = xrealloc(c->nofile, (c->nnofile + 1) * sizeof *c->nofile);
		c->nofile[c->nnofile++] = xstrdup(m->qid);
	}
	free(a);
	free(i);
	return 0;
}

/* At start: litter of interrupted puts, files without rows (re-imported),
 * rows without files (removed: the file went first, so they were done). */
static void recover(struct queue *q)
{
	struct recover_ctx c = { .data_dir = q->data_dir };
	char *tmp = qpath(q->data_dir, "tmp", NULL);
	DIR *d = opendir(tmp);
	int n;

	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (queue_id_valid(e->d_name)) {
				char *p = qpath(q->data_dir, "tmp", e->d_name);
				unlink(p);
				free(p);
			}
		closedir(d);
	}
	free(tmp);
	n = import_dir(q->data_dir, q->store, "active", SIZE_MAX, 1);
	if (n > 0)
		log_warn(NULL, "event=queue_recovered files=%d", n);
	store_queue_visit(q->store, NULL, recover_msg, NULL, &c);
	for (size_t i = 0; i < c.nnofile; i++) {
		int left = 0;
		store_queue_unfinished(q->store, c.nofile[i], &left);
		if (left)
			log_error(c.nofile[i], "event=queue_file_missing unfinished=%d", left);
		store_queue_del(q->store, c.nofile[i]);
		free(c.nofile[i]);
	}
	free(c.nofile);
}

struct queue *queue_new(struct event_base *base, const struct config *cfg, struct store *store, struct dns *dns)
{
	struct queue *q = xcalloc(1, sizeof *q);
	struct timeval tv = { TICK_MS / 1000, (TICK_MS % 1000) * 1000 };
	static const char *const subs[] = { "tmp", "incoming", "active" };

	q->base = base;
	q->cfg = cfg;
	q->store = store;
	q->dns = dns;
	q->data_dir = xstrdup(cfg->data_dir);
	q->kick_fd = -1;
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		char *p = qpath(q->data_dir, subs[i], NULL);
		int rc = mkdir_p(p, 0700);
		if (rc < 0)
			log_error(NULL, "event=start_failed error=\"cannot create %s: %s\"", p, strerror(errno));
		free(p);
		if (rc < 0)
			goto fail;
	}
	q->remote = remote_new(base, cfg, dns, store);
	if (!q->remote)
		goto fail;
	q->pool = worker_pool_new(base, LOCAL_WORKERS);
	if (!q->pool)
		goto fail;
	q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->kick_fd < 0) {
		log_error(NULL, "event=start_failed error=\"eventfd: %s\"", strerror(errno));
		goto fail;
	}
	q->kick_ev = event_new(base, q->kick_fd, EV_READ | EV_PERSIST, on_kick, q);
	event_add(q->kick_ev, NULL);
	q->tick = event_new(base, -1, EV_PERSIST, on_tick, q);
	evtimer_add(q->tick, &tv);
	q->sched_ev = evtimer_new(base, on_sched, q);
	recover(q);
	schedule_soon(q);
	return q;
fail:
	queue_free(q);
	return NULL;
}

void queue_set_config(struct queue *q, const struct config *cfg)
{
	if (!q)
		return;
	q->cfg = cfg;
	remote_set_config(q->remote, cfg);
}

void queue_shutdown(struct queue *q)
{
	if (!q)
		return;
	q->shutting_down = 1;
	if (q->tick)
		evtimer_del(q->tick);
}

void queue_free(struct queue *q)
{
	if (!q)
		return;
	q->shutting_down = 1;
	/* Worker jobs first: their done() still finds their messages. */
	worker_pool_free(q->pool);
	q->pool = NULL;
	remote_free(q->remote);
	while (q->groups) {
		/* Abandoned in flight: retried after a restart. */
		struct rgroup *g = q->groups;
		rgroup_unlink(q, g);
		free(g->idx);
		free(g);
	}
	while (q->active) {
		struct qmsg *m = q->active;
		qmsg_unlink(m);
		qmsg_free(m);
	}
	if (q->tick)
		event_free(q->tick);
	if (q->kick_ev)
		event_free(q->kick_ev);
	if (q->sched_ev)
		event_free(q->sched_ev);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	free(q->data_dir);
	free(q);
}
