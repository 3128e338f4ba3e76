/*
 * cli_queue: `postern queue list|show|cat|retry|hold|release|delete|ledger`
 * and `postern sendmail`, the sendmail-compatible local injection.
 *
 * Both run as the postern user (main.c drops root first), so the files and
 * rows they make belong to the daemon. The queue commands first import
 * what was put since the daemon last looked (queue_import), so a message
 * just given to sendmail is listed at once, daemon or not. They change
 * only the state store; the daemon picks the changes up at its next tick
 * (one second).
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth/msg.h"
#include "cli.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "queue/dsn.h"
#include "queue/queue.h"
#include "store/store.h"

/* sendmail(8) exit statuses (sysexits.h) */
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73
#define EX_TEMPFAIL 75

void cli_queue_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] queue list [--json]\n"
	      "       postern [-c FILE] queue show QID [--json]\n"
	      "       postern [-c FILE] queue cat QID\n"
	      "       postern [-c FILE] queue retry QID|--all\n"
	      "       postern [-c FILE] queue hold QID|--all\n"
	      "       postern [-c FILE] queue release QID|--all\n"
	      "       postern [-c FILE] queue delete QID\n"
	      "       postern [-c FILE] queue ledger [--since SECONDS] [--json]\n"
	      "\n"
	      "list     every queued message with its recipients and their state\n"
	      "         (pending, held, delivered, failed, bounced)\n"
	      "show     one message: envelope, recipients, attempts, last replies\n"
	      "cat      the queued message itself, byte for byte\n"
	      "retry    try the pending recipients now instead of at their next retry\n"
	      "hold     keep the pending recipients from being tried until released\n"
	      "release  make held recipients pending again, due now\n"
	      "delete   remove the message from the queue, without a bounce\n"
	      "ledger   the delivery attempts recorded (route, reply, TLS), oldest first;\n"
	      "         --since limits it to the last SECONDS seconds\n"
	      "\n"
	      "The running daemon notices changes within a second.\n",
	      out);
}

void cli_sendmail_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] sendmail [-f SENDER] [-F NAME] [-t] [-i] [--] [RCPT...]\n"
	      "\n"
	      "Reads a message from standard input and queues it for RCPT... (and,\n"
	      "with -t, for the To, Cc and Bcc addresses of its header; Bcc is then\n"
	      "removed). Adds Date, Message-ID and From when the message has none.\n"
	      "\n"
	      "  -f SENDER  envelope sender (default: the invoking user at the first\n"
	      "             of [server] domains); -f '' or -f '<>' is the null sender\n"
	      "  -F NAME    the name in an added From header\n"
	      "  -t         take recipients from the header too\n"
	      "  -i, -oi    a line with a single dot does not end the message\n"
	      "  --print-qid  print the queue id of the message (not in sendmail)\n"
	      "  Other sendmail options (-odi, -oem, -bm, ...) are accepted and ignored.\n"
	      "\n"
	      "An address without a domain gets the first of [server] domains.\n"
	      "Run as root or as the postern user. Exit status 0 when queued, 75\n"
	      "when it could not be queued (try again), 64 for a usage error.\n",
	      out);
}

/* ---- queue ---- */

struct show {
	FILE *out;
	int json;
	int n;      /* messages so far */
	int nr;     /* recipients of the current one */
	const char *only; /* a qid, or NULL */
};

static void json_bool(FILE *out, const char *k, int v)
{
	fprintf(out, ",\"%s\":%s", k, v ? "true" : "false");
}

static void iso_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int show_msg(void *arg, const struct store_qmsg *m)
{
	struct show *s = arg;
	char when[40];
	iso_time(m->queued, when, sizeof when);
	if (s->json) {
		if (s->nr >= 0 && s->n)
			fputs("]}", s->out);
		fprintf(s->out, "%s{\"qid\":", s->n ? "," : "");
		json_write_string(s->out, m->qid);
		fputs(",\"from\":", s->out);
		json_write_string(s->out, m->mail_from);
		fprintf(s->out, ",\"queued\":%lld,\"queued_at\":\"%s\",\"size\":%lld", (long long)m->queued, when,
			(long long)m->size);
		fputs(",\"origin\":", s->out);
		json_write_string(s->out, m->origin);
		fputs(",\"envid\":", s->out);
		json_write_string(s->out, m->envid);
		fprintf(s->out, ",\"ret\":\"%s\"", m->ret_full ? "full" : "hdrs");
		json_bool(s->out, "body_8bit", m->body_8bit);
		json_bool(s->out, "smtputf8", m->smtputf8);
		json_bool(s->out, "delay_notified", m->delay_notified);
		fputs(",\"recipients\":[", s->out);
	} else {
		fprintf(s->out, "%s%-20s %9lld  %s  <%s>  (%s)\n", s->n ? "\n" : "", m->qid, (long long)m->size, when,
			m->mail_from, m->origin ? m->origin : "?");
	}
	s->n++;
	s->nr = 0;
	return 0;
}

static int show_rcpt(void *arg, const struct store_qrcpt *r)
{
	struct show *s = arg;
	char next[40] = "", last[40] = "";
	iso_time(r->next_attempt, next, sizeof next);
	if (r->last_attempt)
		iso_time(r->last_attempt, last, sizeof last);
	if (s->json) {
		fprintf(s->out, "%s{\"address\":", s->nr ? "," : "");
		json_write_string(s->out, r->rcpt);
		fputs(",\"state\":", s->out);
		json_write_string(s->out, r->state);
		fprintf(s->out, ",\"attempts\":%d,\"next_attempt\":%lld,\"last_attempt\":%lld", r->attempts,
			(long long)r->next_attempt, (long long)r->last_attempt);
		fputs(",\"status\":", s->out);
		json_write_string(s->out, r->last_status);
		fputs(",\"reply\":", s->out);
		json_write_string(s->out, r->last_reply);
		fputs(",\"mx\":", s->out);
		json_write_string(s->out, r->last_mx);
		fputs("}", s->out);
	} else {
		fprintf(s->out, "    <%s> %s, %d attempt%s", r->rcpt, r->state, r->attempts, r->attempts == 1 ? "" : "s");
		if (!strcmp(r->state, "pending"))
			fprintf(s->out, ", next %s", next);
		fputc('\n', s->out);
		if (r->last_reply)
			fprintf(s->out, "        %s%s%s\n", r->last_mx ? r->last_mx : "", r->last_mx ? ": " : "",
				r->last_reply);
	}
	s->nr++;
	return 0;
}

static int cmd_list(const struct config *cfg, struct store *st, const char *qid, int json)
{
	struct show s = { .out = stdout, .json = json, .nr = -1, .only = qid };
	int rc;
	(void)cfg;
	if (json && !qid)
		fputc('[', stdout);
	rc = store_queue_visit(st, qid, show_msg, show_rcpt, &s);
	if (rc == STORE_NOTFOUND) {
		fprintf(stderr, "postern: no message %s in the queue\n", qid);
		return 1;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "postern: cannot read the queue\n");
		return 1;
	}
	if (json) {
		if (s.n)
			fputs("]}", stdout);
		if (!qid)
			fputc(']', stdout);
		fputc('\n', stdout);
	} else if (!qid) {
		printf("%s%d message%s in the queue\n", s.n ? "\n" : "", s.n, s.n == 1 ? "" : "s");
	}
	return 0;
}

static int cmd_cat(const struct config *cfg, struct store *st, const char *qid)
{
	int64_t off = -1;
	char *path;
	FILE *f;
	char buf[65536];
	size_t n;

	if (store_queue_visit(st, qid, NULL, NULL, NULL) != STORE_OK) {
		fprintf(stderr, "postern: no message %s in the queue\n", qid);
		return 1;
	}
	path = queue_file_path(cfg->data_dir, qid);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "postern: cannot open %s: %s\n", path, strerror(errno));
		free(path);
		return 1;
	}
	{
		/* the header tells where the message starts */
		struct queue_file qf;
		size_t len = fread(buf, 1, sizeof buf, f);
		size_t cap = sizeof buf;
		char *hb = xmalloc(cap);
		memcpy(hb, buf, len);
		int prc;
		while ((prc = queue_file_parse(hb, len, &qf)) == 1 && !feof(f) && cap < QUEUE_HEADER_MAX) {
			cap *= 2;
			hb = xrealloc(hb, cap);
			len += fread(hb + len, 1, cap - len, f);
		}
		if (prc == 0) {
			off = (int64_t)qf.body_offset;
			queue_file_clear(&qf);
		}
		free(hb);
	}
	if (off < 0 || fseeko(f, (off_t)off, SEEK_SET) < 0) {
		fprintf(stderr, "postern: %s is not a queue file\n", path);
		fclose(f);
		free(path);
		return 1;
	}
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(f);
	free(path);
	return 0;
}

struct ids {
	char **v;
	size_t n;
};

static int collect_id(void *arg, const struct store_qmsg *m)
{
	struct ids *ids = arg;
	ids->v = xrealloc(ids->v, (ids->n + 1) * sizeof *ids->v);
	ids->v[ids->n++] = xstrdup(m->qid);
	return 0;
}

/* retry, hold, release on one message or all. */
static int cmd_state(struct store *st, const char *verb, const char *target)
{
	struct ids ids = { 0 };
	int total = 0, rc = 0;
	int64_t now = (int64_t)time(NULL);
	const char *from = !strcmp(verb, "release") ? "held" : "pending";
	const char *to = !strcmp(verb, "hold") ? "held" : "pending";

	if (!strcmp(target, "--all")) {
		store_queue_visit(st, NULL, collect_id, NULL, &ids);
	} else {
		if (store_queue_visit(st, target, NULL, NULL, NULL) != STORE_OK) {
			fprintf(stderr, "postern: no message %s in the queue\n", target);
			return 1;
		}
		collect_id(&ids, &(struct store_qmsg){ .qid = target });
	}
	for (size_t i = 0; i < ids.n; i++) {
		int changed = 0;
		if (store_queue_set_state(st, ids.v[i], from, to, now, &changed) != STORE_OK)
			rc = 1;
		total += changed;
		if (changed)
			printf("%s: %d recipient%s %s\n", ids.v[i], changed, changed == 1 ? "" : "s",
			       !strcmp(verb, "hold") ? "held" : !strcmp(verb, "release") ? "released" : "due now");
		free(ids.v[i]);
	}
	free(ids.v);
	if (total == 0 && rc == 0)
		printf("nothing to %s\n", verb);
	return rc;
}

struct ledger {
	int json, n;
};

static int show_ledger(void *arg, const struct store_delivery *d)
{
	struct ledger *l = arg;
	char when[40];
	iso_time(d->time / 1000, when, sizeof when);
	if (l->json) {
		const char *keys[] = { "qid", "rcpt", "domain", "provider", "route", "route_reason", "mx", "ip",
				       "outcome", "status", "reply", "tls_version", "tls_cipher", "tls_policy",
				       "tls_failure" };
		const char *vals[] = { d->qid, d->rcpt, d->domain, d->provider, d->route, d->route_reason, d->mx, d->ip,
				       d->outcome, d->status, d->reply, d->tls_version, d->tls_cipher, d->tls_policy,
				       d->tls_failure };
		printf("%s{\"time\":%lld,\"at\":\"%s\",\"code\":%d", l->n ? "," : "", (long long)d->time, when, d->code);
		for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
			printf(",\"%s\":", keys[i]);
			json_write_string(stdout, vals[i]);
		}
		json_bool(stdout, "tls_verified", d->tls_verified);
		json_bool(stdout, "tls_policy_ok", d->tls_policy_ok);
		fputc('}', stdout);
	} else {
		char pol[120] = "";
		if (d->tls_policy && strcmp(d->tls_policy, "none"))
			snprintf(pol, sizeof pol, " policy=%s,%s", d->tls_policy, d->tls_policy_ok ? "met" : "failed");
		if (d->tls_failure)
			snprintf(pol + strlen(pol), sizeof pol - strlen(pol), " tls_failure=%s", d->tls_failure);
		printf("%s %s %s <%s> %s/%s (%s) mx=%s tls=%s%s%s %s\n", when, d->qid, d->outcome, d->rcpt, d->route,
		       d->provider ? d->provider : "?", d->route_reason ? d->route_reason : "", d->mx ? d->mx : "-",
		       d->tls_version ? d->tls_version : "no", d->tls_version ? (d->tls_verified ? ",verified" : ",unverified") : "",
		       pol, d->reply ? d->reply : "");
	}
	l->n++;
	return 0;
}

int cli_queue(const struct config *cfg, int argc, char **argv)
{
	char err[512];
	struct store *st;
	int json = 0, rc = 2;
	const char *arg = NULL, *since = NULL;
	const char *verb = argv[0];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--since") && i + 1 < argc)
			since = argv[++i];
		else if (!arg && (argv[i][0] != '-' || !strcmp(argv[i], "--all")))
			arg = argv[i];
		else {
			fprintf(stderr, "postern: queue %s: unexpected '%s'\n", verb, argv[i]);
			cli_queue_usage(stderr);
			return 2;
		}
	}
	if (arg && strcmp(arg, "--all") && !queue_id_valid(arg)) {
		fprintf(stderr, "postern: '%s' is not a queue id (see postern queue list)\n", arg);
		return 2;
	}
	st = store_open(cfg->data_dir, err, sizeof err);
	if (!st) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	log_set_level(LOG_LVL_WARN); /* the import's "queued" lines are the daemon's business */
	queue_import(cfg->data_dir, st);
	if (!strcmp(verb, "list") && !arg) {
		rc = cmd_list(cfg, st, NULL, json);
	} else if (!strcmp(verb, "show") && arg && strcmp(arg, "--all")) {
		rc = cmd_list(cfg, st, arg, json);
	} else if (!strcmp(verb, "cat") && arg && strcmp(arg, "--all")) {
		rc = cmd_cat(cfg, st, arg);
	} else if ((!strcmp(verb, "retry") || !strcmp(verb, "hold") || !strcmp(verb, "release")) && arg) {
		rc = cmd_state(st, verb, arg);
	} else if (!strcmp(verb, "delete") && arg && strcmp(arg, "--all")) {
		if (queue_remove(cfg->data_dir, st, arg) < 0) {
			fprintf(stderr, "postern: no message %s in the queue\n", arg);
			rc = 1;
		} else {
			printf("%s: deleted\n", arg);
			rc = 0;
		}
	} else if (!strcmp(verb, "ledger") && !arg) {
		struct ledger l = { .json = json };
		uint64_t secs = 0;
		if (since && parse_uint(since, UINT32_MAX, &secs) < 0) {
			fprintf(stderr, "postern: --since %s is not a number of seconds\n", since);
			rc = 2;
		} else {
			int64_t from = since ? (int64_t)wall_ms() - (int64_t)secs * 1000 : 0;
			if (json)
				fputc('[', stdout);
			rc = store_ledger_list(st, from, show_ledger, &l) == STORE_OK ? 0 : 1;
			if (json)
				fputs("]\n", stdout);
		}
	} else {
		cli_queue_usage(stderr);
	}
	store_close(st);
	return rc;
}

/* ---- sendmail ---- */

static char invoker[64] = "root";

void cli_sendmail_set_invoker(void)
{
	struct passwd *pw = getpwuid(getuid());
	if (pw && pw->pw_name)
		str_copy(invoker, pw->pw_name, sizeof invoker);
}

struct strlist {
	char **v;
	size_t n;
};

static void list_add(struct strlist *l, const char *s, size_t n)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = xstrndup(s, n);
}

/* The address in "Name <a@b>" or "a@b", or NULL; a new string. */
static char *addr_of(const char *s, size_t n, const struct config *cfg)
{
	const char *lt = memchr(s, '<', n), *gt;
	const char *b = s, *e = s + n;
	char *a;
	if (lt && (gt = memchr(lt, '>', (size_t)(e - lt)))) {
		b = lt + 1;
		e = gt;
	}
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if (b == e)
		return NULL;
	a = xstrndup(b, (size_t)(e - b));
	for (char *p = a; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == '<' || *p == '>' || *p == '"' || *p == '(' || *p == ',') {
			free(a);
			return NULL;
		}
	if (!strchr(a, '@')) {
		char *full = xasprintf("%s@%s", a, cfg->domains[0]);
		free(a);
		a = full;
	}
	return a;
}

/* Adds every address of a header value (a comma-separated list; commas in
 * quotes and groups are rare enough in local mail to be ignored). */
static void header_addresses(const char *v, size_t n, const struct config *cfg, struct strlist *out)
{
	size_t start = 0;
	int quoted = 0, angle = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && v[i] == '"')
			quoted = !quoted;
		else if (i < n && v[i] == '<')
			angle = 1;
		else if (i < n && v[i] == '>')
			angle = 0;
		if (i == n || (v[i] == ',' && !quoted && !angle)) {
			char *a = addr_of(v + start, i - start, cfg);
			if (a) {
				list_add(out, a, strlen(a));
				free(a);
			}
			start = i + 1;
		}
	}
}

int cli_sendmail(const struct config *cfg, int argc, char **argv)
{
	const char *from_opt = NULL, *name = NULL;
	int take_header = 0, dot_ends = 1, print_qid = 0, rc;
	struct strlist rcpts = { 0 };
	char *msg, *sender, *out;
	size_t len, hlen, olen = 0;
	FILE *o;
	int has_from = 0, has_date = 0, has_msgid = 0, utf8 = 0, eightbit = 0;
	char qid[QUEUE_ID_MAX];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				list_add(&rcpts, argv[i], strlen(argv[i]));
			break;
		} else if (!strcmp(a, "-f") && i + 1 < argc) {
			from_opt = argv[++i];
		} else if (!strncmp(a, "-f", 2) && a[2]) {
			from_opt = a + 2;
		} else if (!strcmp(a, "-F") && i + 1 < argc) {
			name = argv[++i];
		} else if (!strncmp(a, "-F", 2) && a[2]) {
			name = a + 2;
		} else if (!strcmp(a, "--print-qid")) {
			print_qid = 1;
		} else if (!strcmp(a, "-t")) {
			take_header = 1;
		} else if (!strcmp(a, "-i") || !strcmp(a, "-oi")) {
			dot_ends = 0;
		} else if (a[0] == '-' && (a[1] == 'o' || a[1] == 'b' || a[1] == 'v' || a[1] == 'm' || a[1] == 'n')) {
			/* sendmail options that mean nothing here (-odi, -oem, -bm, -v, ...) */
		} else if (a[0] == '-') {
			fprintf(stderr, "postern: sendmail: unknown option %s\n", a);
			cli_sendmail_usage(stderr);
			return EX_USAGE;
		} else {
			list_add(&rcpts, a, strlen(a));
		}
	}
	msg = cli_read_message("-", &len);
	if (!msg)
		return EX_DATAERR;
	if (dot_ends) {
		/* a line with a single dot ends the message (sendmail without -i) */
		for (size_t i = 0; i < len; i++) {
			if ((i == 0 || msg[i - 1] == '\n') && msg[i] == '.' &&
			    (i + 1 == len || msg[i + 1] == '\n' || (msg[i + 1] == '\r' && i + 2 <= len && (i + 2 == len || msg[i + 2] == '\n')))) {
				len = i;
				break;
			}
		}
	}
	hlen = dsn_header_len(msg, len);
	{
		/* no header at all (the first line is no "Name: value"): it is all body */
		size_t k = 0;
		while (k < len && msg[k] > ' ' && msg[k] != ':' && msg[k] != 0x7f)
			k++;
		if (len && msg[0] != '\n' && msg[0] != '\r' && (k == 0 || k >= len || msg[k] != ':'))
			hlen = 0;
	}

	/* the sender */
	if (from_opt) {
		if (!strcmp(from_opt, "<>"))
			sender = xstrdup("");
		else
			sender = *from_opt ? addr_of(from_opt, strlen(from_opt), cfg) : xstrdup("");
		if (!sender) {
			fprintf(stderr, "postern: sendmail: -f %s is not an address\n", from_opt);
			free(msg);
			return EX_USAGE;
		}
	} else {
		sender = xasprintf("%s@%s", invoker, cfg->domains[0]);
	}

	/* the header: what is there, recipients with -t, Bcc dropped */
	o = open_memstream(&out, &olen);
	for (size_t i = 0; i < hlen;) {
		size_t e = i, fe;
		int bcc, addr_hdr;
		/* one field with its continuation lines */
		for (;;) {
			const char *nl = memchr(msg + e, '\n', hlen - e);
			e = nl ? (size_t)(nl - msg) + 1 : hlen;
			if (e >= hlen || (msg[e] != ' ' && msg[e] != '\t'))
				break;
		}
		fe = e;
		if ((msg[i] == '\n' || msg[i] == '\r') && e - i <= 2) {
			i = e; /* the empty line: written below */
			continue;
		}
		has_from |= !strncasecmp(msg + i, "From:", 5);
		has_date |= !strncasecmp(msg + i, "Date:", 5);
		has_msgid |= !strncasecmp(msg + i, "Message-ID:", 11);
		bcc = !strncasecmp(msg + i, "Bcc:", 4);
		addr_hdr = bcc || !strncasecmp(msg + i, "To:", 3) || !strncasecmp(msg + i, "Cc:", 3);
		if (take_header && addr_hdr) {
			const char *colon = memchr(msg + i, ':', fe - i);
			char *v = xstrndup(colon + 1, fe - (size_t)(colon + 1 - msg));
			for (char *p = v; *p; p++)
				if (*p == '\r' || *p == '\n' || *p == '\t')
					*p = ' ';
			header_addresses(v, strlen(v), cfg, &rcpts);
			free(v);
		}
		if (!bcc)
			fwrite(msg + i, 1, fe - i, o);
		i = e;
	}
	if (!has_from) {
		if (name)
			fprintf(o, "From: %s <%s>\n", name, *sender ? sender : "MAILER-DAEMON");
		else
			fprintf(o, "From: <%s>\n", *sender ? sender : "MAILER-DAEMON");
	}
	if (!has_date) {
		char d[64];
		dsn_date((int64_t)time(NULL), d, sizeof d);
		fprintf(o, "Date: %s\n", d);
	}
	if (!has_msgid) {
		char r[25];
		random_hex(r, 24);
		fprintf(o, "Message-ID: <%s@%s>\n", r, cfg->hostname);
	}
	fputc('\n', o);
	fclose(o);

	/* canonical recipients */
	for (size_t i = 0; i < rcpts.n; i++) {
		char *a = addr_of(rcpts.v[i], strlen(rcpts.v[i]), cfg);
		if (!a) {
			fprintf(stderr, "postern: sendmail: '%s' is not an address\n", rcpts.v[i]);
			rc = EX_USAGE;
			goto out;
		}
		free(rcpts.v[i]);
		rcpts.v[i] = a;
		for (const char *p = a; *p; p++)
			utf8 |= (unsigned char)*p >= 0x80;
	}
	if (rcpts.n == 0) {
		fprintf(stderr, "postern: sendmail: no recipients; name them, or use -t\n");
		rc = EX_USAGE;
		goto out;
	}
	for (const char *p = sender; *p; p++)
		utf8 |= (unsigned char)*p >= 0x80;
	for (size_t i = 0; i < len; i++)
		eightbit |= (unsigned char)msg[i] >= 0x80;
	{
		struct queue_env env = {
			.mail_from = sender,
			.rcpts = (const char *const *)rcpts.v,
			.nrcpts = rcpts.n,
			.body_8bit = eightbit,
			.smtputf8 = utf8,
			.origin = "sendmail",
		};
		char origin[128];
		struct maildir_msg mm = {
			.head = out,
			.head_len = olen,
			.file_fd = -1,
			.tail = msg + hlen,
			.tail_len = len - hlen,
		};
		snprintf(origin, sizeof origin, "sendmail user=%s", invoker);
		env.origin = origin;
		if (queue_put(cfg->data_dir, &env, &mm, qid, sizeof qid) < 0) {
			int e = errno;
			fprintf(stderr, "postern: sendmail: cannot queue the message: %s%s\n", strerror(e),
				e == EACCES || e == EPERM ? "; run it as root or as the postern user" : "");
			rc = e == EINVAL ? EX_USAGE : e == EACCES || e == EPERM ? EX_CANTCREAT : EX_TEMPFAIL;
			goto out;
		}
	}
	if (print_qid)
		printf("%s\n", qid);
	rc = 0;
out:
	for (size_t i = 0; i < rcpts.n; i++)
		free(rcpts.v[i]);
	free(rcpts.v);
	free(sender);
	free(msg);
	free(out);
	return rc;
}
