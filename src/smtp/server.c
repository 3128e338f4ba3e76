/*
 * server: see server.h. The life of one session:
 *
 *   accept -> 220 greeting -> commands (S_CMD) -> DATA/BDAT (S_DATA, S_BDAT)
 *          -> end of data: the message is handed to a worker thread that
 *             writes it into every recipient's Maildir (S_WAIT, parked)
 *          -> the worker's result comes back by session id -> 250 or 451
 *          -> S_CMD again ... -> QUIT / 421 -> flush -> close
 *
 * Input is read from a libevent bufferevent whose read high-water mark
 * bounds what one session may buffer. Command lines longer than
 * max_command_line are refused before any parsing. Replies are queued in the
 * output buffer, which is what makes PIPELINING (RFC 2920) work: all complete
 * commands in the input are answered in order, and the kernel gets the
 * replies in one write. When the output grows past OUTPUT_MAX (a client that
 * pipelines without reading) we stop reading its commands until it drains.
 *
 * STARTTLS (RFC 3207): after "220 Ready", whatever the client already sent is
 * discarded (CVE-2011-0411), an OpenSSL filter is stacked on the socket's
 * bufferevent, and the session forgets everything it was told before.
 *
 * Commands are dispatched through one table (verb, state check, handler),
 * in the manner of OpenSMTPD's smtp_session.c.
 */
#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "auth/arc.h"
#include "auth/authres.h"
#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/keyring.h"
#include "auth/spf.h"
#include "deliver/maildir.h"
#include "dns/dns.h"
#include "lib/header.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/worker.h"
#include "net/tls.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "doctor/selftest.h"
#include "doctor/selftest_store.h"
#include "report/report_job.h"
#include "smtp/cmd.h"
#include "smtp/data.h"
#include "smtp/sasl.h"
#include "smtp/spool.h"
#include "smtp/submit.h"
#include "smtp/throttle.h"
#include "store/store.h"

#define OUTPUT_MAX (256 * 1024)
#define DATA_CHUNK 16384
#define CLOSE_GRACE_MS 5000
#define SESSION_BUCKETS 1024
/* Connections the kernel queues before we accept them (capped by
 * net.core.somaxconn): a burst of clients must not fall to SYN cookies. */
#define LISTEN_BACKLOG 4096
#define MAX_HELO 255

enum sess_state { S_GREET, S_CMD, S_DATA, S_BDAT, S_WAIT, S_TLS, S_CLOSING };

/* What a listener serves; a session inherits it. */
enum listen_kind {
	LK_SMTP,        /* inbound mail (MX), port 25: never relays, no AUTH */
	LK_SUBMISSION,  /* our users, STARTTLS then AUTH (RFC 6409), port 587 */
	LK_SUBMISSIONS, /* our users over implicit TLS (RFC 8314), port 465 */
};

/* Where an AUTH exchange stands (RFC 4954). */
enum auth_step { AUTH_NONE, AUTH_PLAIN_WAIT, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

/* Failed logins remembered (per client address and per account). */
#define AUTH_THROTTLE_KEYS 4096

struct session {
	uint64_t id;
	char sid[24];
	struct server *srv;
	struct runtime *rt;
	struct bufferevent *bev;
	struct event *timer;
	struct session *next, *prev, *hnext;
	enum sess_state state;

	char ip[INET6_ADDRSTRLEN];
	int family;
	char *line; /* max_command_line + 1 bytes */
	int discarding; /* inside an overlong command line */
	int out_blocked;
	int nerrors;
	unsigned nmsgs;
	uint64_t started;
	uint64_t close_deadline;

	char *helo;
	int esmtp;
	int tls;
	struct tls_info tlsi;

	/* Policy (src/policy/): lookups start at connect; RCPT waits for them
	 * (parked, the recipient kept here), the end of data decides. */
	struct policy_sess *pol;
	unsigned nunknown;
	int rcpt_wait;
	char *rcpt_wait_addr;
	struct store_targets rcpt_wait_targets;

	/* The transaction. */
	int has_mail;
	char *mail_from;
	struct mail_params params;
	char **rcpts; /* as given, canonical form */
	size_t nrcpts;
	char **mailboxes; /* resolved local mailboxes, without duplicates */
	size_t nmailboxes;
	int bdat_used;
	int bdat_last;
	int bdat_discard; /* BDAT without recipients: consume, then 503 */
	uint64_t bdat_left;
	uint64_t bdat_total;
	struct data_decoder dec;
	struct spool *spool;
	char *decode_buf;

	/* SPF (RFC 7208): the HELO identity is checked at EHLO, the MAIL FROM
	 * identity at MAIL, both while the session goes on; the end of data
	 * waits for them if it comes first. */
	struct spf_job *spf_helo_job, *spf_mail_job;
	char *spf_helo_hdr, *spf_mail_hdr;
	enum spf_result spf_mail_result, spf_helo_result;
	char *spf_explanation;
	char *spf_mail_domain; /* the domain SPF checked for MAIL FROM (DMARC's input) */

	/* DKIM: the verifier reads the message as it streams in; key lookups
	 * start as soon as the header block is complete. */
	struct dkim_verifier *dkimv;
	struct dkim_job *dkim_job;
	int dkim_keys_done;

	/* ARC (RFC 8617): the chain is validated like DKIM, while the body
	 * streams; a valid chain from a trusted sealer may override DMARC. */
	struct arc_verifier *arcv;
	struct arc_job *arc_job;
	int arc_keys_done;
	char *dmarc_override; /* the trusted sealer that overrode a DMARC failure */

	/* DMARC: evaluated once SPF and DKIM are in, at the end of data. */
	struct dmarc_job *dmarc_job;
	int dmarc_done;
	enum dmarc_result dmarc_result;
	enum dmarc_policy dmarc_disposition;
	char *dmarc_from;    /* header.from */
	char *dmarc_comment; /* "p=reject dis=none" */
	char *dmarc_policy;  /* the policy that applied, by name */
	char *dmarc_record;
	char *dmarc_reason;

	/* The end of data waits for the checks above (parked; the loop goes on). */
	int wait_auth;

	/* Submission (RFC 6409) and AUTH (RFC 4954); see "AUTH" below. */
	enum listen_kind kind;
	int greeted;            /* the 220 was sent (implicit TLS: after the handshake) */
	char *auth_user;        /* the authenticated mailbox, or NULL */
	enum auth_step auth_step;
	char auth_login_user[SASL_MAX_USER + 1];
	struct event *auth_timer; /* the delay before a 535 */
	int auth_ip_locked;       /* the failure being delayed locked the client out */
	/* Recipients that leave us: submission to other domains, and alias
	 * targets outside (forwarding); they go to the queue. */
	char **outside;
	size_t noutside;
	/* A self-test address among the recipients (port 25): its token and
	 * domain. */
	char *selftest_token, *selftest_domain;
	uint64_t eod_ms; /* when the end of data arrived (for the latency metric) */
};

struct listener {
	struct server *srv;
	struct evconnlistener *l;
	enum listen_kind kind;
};

struct server {
	struct event_base *base;
	struct runtime *rt;
	struct store *store;
	struct worker_pool *workers;
	struct listener *listeners;
	size_t nlisteners;
	struct throttle *auth_throttle;
	struct session *sessions;
	size_t nsessions;
	struct session *table[SESSION_BUCKETS];
	struct dns *dns;
	struct queue *queue; /* NULL: nothing can be sent out */
	/* Authentication verdicts waiting to be stored, one transaction per
	 * batch (a commit per message cost a tenth of a message's time). */
	struct pending_verdict *verdicts;
	size_t nverdicts;
	struct event *verdict_timer;
	struct policy *policy; /* rate limits; made by server_start */
	uint64_t next_id;
	char sid_prefix[8];
	int shutting_down;
	struct event *shutdown_timer;
	char *spool_dir;
};

/* ---- runtime ---------------------------------------------------------- */

struct runtime *runtime_new(struct config *cfg, SSL_CTX *tls)
{
	struct runtime *rt = xcalloc(1, sizeof *rt);
	rt->refs = 1;
	rt->cfg = cfg;
	rt->tls = tls;
	return rt;
}

void runtime_ref(struct runtime *rt)
{
	rt->refs++;
}

void runtime_unref(struct runtime *rt)
{
	if (!rt || --rt->refs > 0)
		return;
	config_free(rt->cfg);
	if (rt->tls)
		SSL_CTX_free(rt->tls);
	free(rt);
}

/* ---- metrics (lib/metrics.h; listed in docs/dashboard.md) ------------- */

static struct {
	struct metric *connections, *sessions, *messages, *rcpts, *bytes, *spf, *dkim, *dmarc, *eod;
} M;

static void metrics_init(void)
{
	static const double eod_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
	M.connections = metric_counter("postern_smtp_connections_total", "SMTP connections, accepted or refused (limits).",
				       "result", "accepted|refused");
	M.sessions = metric_gauge("postern_smtp_sessions", "SMTP sessions open now.", NULL, NULL);
	M.messages = metric_counter("postern_smtp_messages_total", "Messages received, by what became of them.", "outcome",
				    "delivered|quarantined|rejected_spf|rejected_dmarc|rejected_too_big|"
				    "rejected_header_too_big|rejected_nul|rejected_bare_line_ending|rejected_line_too_long|"
				    "deferred_spf|deferred_spool|deferred_delivery");
	M.rcpts = metric_counter("postern_smtp_recipients_total", "RCPT TO commands, by result.", "result",
				 "accepted|unknown_user|relay_denied");
	M.bytes = metric_counter("postern_smtp_data_bytes_total", "Bytes of message data received, as stored (LF line endings, no dot-stuffing).", NULL, NULL);
	M.spf = metric_counter("postern_spf_results_total", "SPF results for MAIL FROM.", "result",
			       "none|neutral|pass|fail|softfail|temperror|permerror");
	M.dkim = metric_counter("postern_dkim_results_total", "DKIM results, per signature (none: unsigned message).",
				"result", "none|pass|fail|neutral|policy|temperror|permerror");
	M.dmarc = metric_counter("postern_dmarc_results_total", "DMARC results.", "result",
				 "none|pass|fail|temperror|permerror");
	M.eod = metric_histogram("postern_smtp_end_of_data_seconds",
				 "From the end of a message's data to our final reply (checks, delivery, fsync).", NULL, NULL,
				 eod_bounds, ARRAY_LEN(eod_bounds));
}

static void eod_observe(const struct session *s)
{
	metric_observe(M.eod, NULL, (double)(now_ms() - s->eod_ms) / 1000.0);
}

/* ---- session table (parked sessions are found again by id) ----------- */

static void table_add(struct server *srv, struct session *s)
{
	struct session **b = &srv->table[s->id % SESSION_BUCKETS];
	s->hnext = *b;
	*b = s;
}

static void table_del(struct server *srv, struct session *s)
{
	for (struct session **p = &srv->table[s->id % SESSION_BUCKETS]; *p; p = &(*p)->hnext) {
		if (*p == s) {
			*p = s->hnext;
			return;
		}
	}
}

static struct session *table_find(struct server *srv, uint64_t id)
{
	for (struct session *s = srv->table[id % SESSION_BUCKETS]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

/* ---- replies and closing ---------------------------------------------- */

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void check_done(struct server *srv);

static void spf_cancel_helo(struct session *s)
{
	spf_job_cancel(s->spf_helo_job);
	s->spf_helo_job = NULL;
	free(s->spf_helo_hdr);
	s->spf_helo_hdr = NULL;
}

static void transaction_reset(struct session *s)
{
	spf_job_cancel(s->spf_mail_job);
	s->spf_mail_job = NULL;
	free(s->spf_mail_hdr);
	s->spf_mail_hdr = NULL;
	free(s->spf_explanation);
	s->spf_explanation = NULL;
	free(s->spf_mail_domain);
	s->spf_mail_domain = NULL;
	s->spf_mail_result = SPF_NONE;
	dkim_job_cancel(s->dkim_job);
	s->dkim_job = NULL;
	dkim_verifier_free(s->dkimv);
	s->dkimv = NULL;
	s->dkim_keys_done = 0;
	arc_job_cancel(s->arc_job);
	s->arc_job = NULL;
	arc_verifier_free(s->arcv);
	s->arcv = NULL;
	s->arc_keys_done = 0;
	free(s->dmarc_override);
	s->dmarc_override = NULL;
	dmarc_job_cancel(s->dmarc_job);
	s->dmarc_job = NULL;
	s->dmarc_done = 0;
	free(s->dmarc_from);
	free(s->dmarc_comment);
	free(s->dmarc_policy);
	free(s->dmarc_record);
	free(s->dmarc_reason);
	s->dmarc_from = s->dmarc_comment = s->dmarc_policy = s->dmarc_record = s->dmarc_reason = NULL;
	s->wait_auth = 0;
	free(s->mail_from);
	s->mail_from = NULL;
	s->has_mail = 0;
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	store_strv_free(s->mailboxes, s->nmailboxes);
	s->mailboxes = NULL;
	s->nmailboxes = 0;
	store_strv_free(s->outside, s->noutside);
	s->outside = NULL;
	s->noutside = 0;
	free(s->selftest_token);
	free(s->selftest_domain);
	s->selftest_token = s->selftest_domain = NULL;
	s->bdat_used = s->bdat_last = s->bdat_discard = 0;
	s->bdat_left = s->bdat_total = 0;
	spool_free(s->spool);
	s->spool = NULL;
	memset(&s->params, 0, sizeof s->params);
}

static void session_free(struct session *s)
{
	struct server *srv = s->srv;
	log_info(s->sid, "event=disconnect client=%s messages=%u errors=%d duration_ms=%llu", s->ip, s->nmsgs,
		 s->nerrors, (unsigned long long)(now_ms() - s->started));
	transaction_reset(s);
	spf_cancel_helo(s);
	policy_sess_free(s->pol);
	free(s->rcpt_wait_addr);
	store_targets_free(&s->rcpt_wait_targets);
	table_del(srv, s);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	metric_gauge_add(M.sessions, NULL, -1);
	if (s->timer)
		event_free(s->timer);
	if (s->auth_timer)
		event_free(s->auth_timer);
	if (s->bev)
		bufferevent_free(s->bev);
	runtime_unref(s->rt);
	free(s->auth_user);
	explicit_bzero(s->auth_login_user, sizeof s->auth_login_user);
	free(s->helo);
	free(s->line);
	free(s->decode_buf);
	free(s);
	check_done(srv);
}

static void arm_timer(struct session *s, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	evtimer_add(s->timer, &tv);
}

/* Bytes queued for the client, including those a TLS filter has already
 * encrypted into the socket's own buffer. */
static size_t output_pending(struct session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
	if (under)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* Sends what is queued, then closes. A client that never reads is cut off
 * after CLOSE_GRACE_MS. */
static void close_after_flush(struct session *s)
{
	s->state = S_CLOSING;
	s->close_deadline = now_ms() + CLOSE_GRACE_MS;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	arm_timer(s, CLOSE_GRACE_MS);
}

/* Called while closing: frees the session once everything is sent, else
 * looks again shortly (the socket under a TLS filter drains on its own). */
static void closing_check(struct session *s)
{
	if (output_pending(s) == 0 || now_ms() >= s->close_deadline) {
		session_free(s);
		return;
	}
	arm_timer(s, 20);
}

/* Counts an erroneous command; past max_errors the session ends. Returns 1
 * if the session is closing. */
static int count_error(struct session *s)
{
	if (++s->nerrors > (int)s->rt->cfg->max_errors) {
		reply(s, "421 4.7.0 %s Too many errors, closing connection", s->rt->cfg->hostname);
		log_info(s->sid, "event=close reason=too_many_errors errors=%d", s->nerrors);
		close_after_flush(s);
		return 1;
	}
	return 0;
}

/* ---- commands ----------------------------------------------------------- */

static int spf_wanted(const struct session *s)
{
	/* Submission: our own users; SPF, DKIM, DMARC and ARC are for mail
	 * from the world (port 25). */
	return s->kind == LK_SMTP && s->srv->dns && !strcasecmp(s->rt->cfg->spf_enabled, "yes");
}

static void finish_data(struct session *s, int resumed);
static int policy_refuses(struct session *s, const char **folder);
struct delivery;
static void selftest_work(struct delivery *d);
static int submission_refuses_from(struct session *s);
static void dkim_start(struct session *s);
static void arc_start(struct session *s);
static void dkim_feed(struct session *s, const char *data, size_t len);

static void auth_progress(struct session *s, int in_loop);

/* A check has answered: the end of data may have been waiting for it. */
static void rcpt_resume(struct session *s);

static void spf_maybe_resume(struct session *s)
{
	if (s->wait_auth)
		auth_progress(s, 0);
	else if (s->rcpt_wait)
		rcpt_resume(s);
}

static void log_spf(struct session *s, const char *identity, const struct spf_eval *e)
{
	char v[300] = "";
	if (e->problem)
		log_value(v, sizeof v, e->problem, strlen(e->problem));
	log_info(s->sid, "event=spf identity=%s domain=%s result=%s lookups=%u%s%s", identity, e->domain,
		 spf_result_name(e->result), e->dns_terms, e->problem ? " problem=" : "", v);
}

static void spf_helo_done(void *arg, struct spf_eval *e)
{
	struct session *s = arg;
	s->spf_helo_job = NULL;
	free(s->spf_helo_hdr);
	s->spf_helo_hdr = spf_received_header(e);
	s->spf_helo_result = e->result;
	log_spf(s, "helo", e);
	spf_maybe_resume(s);
}

static void spf_mail_done(void *arg, struct spf_eval *e)
{
	struct session *s = arg;
	s->spf_mail_job = NULL;
	free(s->spf_mail_hdr);
	s->spf_mail_hdr = spf_received_header(e);
	s->spf_mail_result = e->result;
	metric_inc(M.spf, spf_result_name(e->result));
	free(s->spf_mail_domain);
	s->spf_mail_domain = xstrdup(e->domain);
	free(s->spf_explanation);
	s->spf_explanation = e->explanation ? xstrdup(e->explanation) : NULL;
	log_spf(s, "mailfrom", e);
	if (s->pol)
		policy_sess_spf(s->pol, e->domain, e->result);
	spf_maybe_resume(s);
}

static void cmd_ehlo(struct session *s, const char *arg, int esmtp)
{
	const struct config *c = s->rt->cfg;
	char v[300];
	if (!*arg) {
		if (esmtp)
			reply(s, "501 5.5.4 Syntax: EHLO hostname");
		else
			reply(s, "501 5.5.4 Syntax: HELO hostname");
		count_error(s);
		return;
	}
	transaction_reset(s);
	free(s->helo);
	s->helo = xstrndup(arg, strnlen(arg, MAX_HELO));
	s->esmtp = esmtp;
	spf_cancel_helo(s);
	if (spf_wanted(s) && !strcasecmp(c->spf_check_helo, "yes"))
		s->spf_helo_job = spf_check_async(s->srv->dns, s->ip, "", s->helo, c->hostname, 1, spf_helo_done, s);
	if (s->pol)
		policy_sess_helo(s->pol, s->helo);
	log_info(s->sid, "event=helo helo=%s esmtp=%d", log_value(v, sizeof v, s->helo, strlen(s->helo)), esmtp);
	if (!esmtp) {
		reply(s, "250 %s", c->hostname);
		return;
	}
	reply(s, "250-%s", c->hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)c->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-ENHANCEDSTATUSCODES");
	reply(s, "250-CHUNKING");
	if (s->rt->tls && !s->tls)
		reply(s, "250-STARTTLS");
	/* RFC 4954 section 4 and RFC 8314: passwords only inside TLS. */
	if (s->kind != LK_SMTP && s->tls)
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250 HELP");
}

/* ---- submission: who may send what (RFC 6409) --------------------------- */

/* On a submission port, MAIL needs TLS and then a login. Returns 1 after
 * refusing. */
static int submission_needs_auth(struct session *s)
{
	if (s->kind == LK_SMTP || s->auth_user)
		return 0;
	if (!s->tls)
		reply(s, "530 5.7.0 Must issue a STARTTLS command first");
	else
		reply(s, "530 5.7.0 Authentication required");
	log_info(s->sid, "event=reject cmd=MAIL code=530 reason=%s", s->tls ? "no_auth" : "no_tls");
	count_error(s);
	return 1;
}

static int is_local_domain(void *arg, const char *domain)
{
	return config_is_local_domain(arg, domain);
}

/* Whether the logged-in user may use address as a sender ([submission]
 * sender): own is the mailbox and every address that resolves to it
 * (aliases, sub-addresses); domain is any address of the user's domain;
 * any is any address at all. */
static int sender_allowed(struct session *s, const char *address)
{
	const struct config *c = s->rt->cfg;
	const char *at = strrchr(address, '@'), *uat = strrchr(s->auth_user, '@');
	char **mb = NULL;
	size_t n = 0;
	int ok = 0;

	if (!strcasecmp(c->submission_sender, "any"))
		return 1;
	if (!at)
		return 0; /* the null sender: not a user's */
	if (!strcasecmp(c->submission_sender, "domain"))
		return uat && !strcasecmp(at, uat);
	if (!strcasecmp(address, s->auth_user))
		return 1;
	if (!config_is_local_domain(c, at + 1))
		return 0;
	if (store_resolve(s->srv->store, address, c->recipient_delimiter, &mb, &n) != STORE_OK)
		return 0;
	for (size_t i = 0; i < n && !ok; i++)
		ok = !strcasecmp(mb[i], s->auth_user);
	store_strv_free(mb, n);
	return ok;
}

static void add_outside(struct session *s, const char *addr)
{
	for (size_t i = 0; i < s->noutside; i++)
		if (!strcasecmp(s->outside[i], addr))
			return;
	s->outside = xrealloc(s->outside, (s->noutside + 1) * sizeof *s->outside);
	s->outside[s->noutside++] = xstrdup(addr);
}

/* RCPT to another domain from a logged-in user: it goes to the queue. */
static void rcpt_outside(struct session *s, const char *addr, const char *logged)
{
	if (!s->srv->queue) {
		log_info(s->sid, "event=defer cmd=RCPT to=<%s> code=451 reason=no_queue", logged);
		reply(s, "451 4.3.0 <%s>: Cannot send to outside addresses now, try again later", addr);
		return;
	}
	add_outside(s, addr);
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof *s->rcpts);
	s->rcpts[s->nrcpts++] = xstrdup(addr);
	log_info(s->sid, "event=rcpt to=<%s> outside=1", logged);
	reply(s, "250 2.1.5 Ok");
}

/* ---- AUTH (RFC 4954): PLAIN and LOGIN, inside TLS, on submission ports ---
 *
 * The SASL text is parsed by sasl.c. The password is checked on a worker
 * thread (yescrypt takes tens of milliseconds by design) while the session
 * is parked; a failure is answered only after [submission]
 * auth_failure_delay. Failures are counted per client address (per /64 for
 * IPv6) and per account name (existing or not, so a lockout says nothing
 * about which accounts exist); over auth_max_failures within auth_window
 * the address is refused with 421 and the account with 454 for
 * auth_lockout. Passwords are never logged and are wiped after use. */

/* A hash of no password, so an unknown account costs as much time as a
 * known one. */
static const char auth_dummy_hash[] = "$y$j9T$9..wB6M84.lZbmzFpDjwe/$1ArO1zU1svx8QnY1MAOBqRXWIkV5Wvdwf2jIxcjaWw8";

struct auth_job {
	uint64_t session_id;
	struct server *srv;
	char user[SASL_MAX_USER + 1];
	char password[SASL_MAX_PASSWORD + 1];
	char *hash; /* NULL: no such account (the dummy is checked) */
	const char *mech;
	int ok;
};

static void auth_ip_key(const struct session *s, char *out, size_t n)
{
	struct in6_addr a6;
	if (s->family == AF_INET6 && inet_pton(AF_INET6, s->ip, &a6) == 1) {
		char p[INET6_ADDRSTRLEN];
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, p, sizeof p);
		snprintf(out, n, "ip:%s/64", p);
	} else {
		snprintf(out, n, "ip:%s", s->ip);
	}
}

static void auth_user_key(const char *user, char *out, size_t n)
{
	snprintf(out, n, "user:%s", user);
	str_lower(out);
}

static void auth_reset(struct session *s)
{
	s->auth_step = AUTH_NONE;
	explicit_bzero(s->auth_login_user, sizeof s->auth_login_user);
}

static void session_process(struct session *s);

static void auth_work(void *arg)
{
	struct auth_job *j = arg;
	j->ok = password_verify(j->password, j->hash ? j->hash : auth_dummy_hash) && j->hash;
	explicit_bzero(j->password, sizeof j->password);
}

static void auth_job_free(struct auth_job *j)
{
	explicit_bzero(j->user, sizeof j->user);
	explicit_bzero(j->password, sizeof j->password);
	if (j->hash)
		explicit_bzero(j->hash, strlen(j->hash));
	free(j->hash);
	free(j);
}

/* Back to commands after an answer (or to the 421 of a shutdown that
 * began while we waited). */
static void auth_resume(struct session *s)
{
	if (s->srv->shutting_down) {
		reply(s, "421 4.3.2 %s Service shutting down", s->rt->cfg->hostname);
		close_after_flush(s);
		return;
	}
	session_process(s);
}

/* The failure delay is over: answer. */
static void auth_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	(void)fd;
	(void)what;
	if (s->state != S_WAIT)
		return;
	s->state = S_CMD;
	arm_timer(s, s->rt->cfg->command_timeout_ms);
	if (s->auth_ip_locked) {
		reply(s, "421 4.7.0 %s Too many failed authentications from your address, closing connection",
		      s->rt->cfg->hostname);
		close_after_flush(s);
		return;
	}
	reply(s, "535 5.7.8 Authentication credentials invalid");
	if (count_error(s))
		return;
	auth_resume(s);
}

static void auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct session *s = table_find(j->srv, j->session_id);
	struct server *srv = j->srv;
	char v[SASL_MAX_USER * 4 + 8], key[THROTTLE_KEY_MAX];

	log_value(v, sizeof v, j->user, strlen(j->user));
	if (!s || s->state != S_WAIT) {
		log_info(s ? s->sid : NULL, "event=auth auth=%s user=%s client_gone=1", j->ok ? "ok" : "fail", v);
		auth_job_free(j);
		check_done(srv);
		return;
	}
	if (j->ok) {
		free(s->auth_user);
		s->auth_user = str_lower(xstrdup(j->user));
		auth_user_key(j->user, key, sizeof key);
		throttle_clear(srv->auth_throttle, key);
		log_info(s->sid, "event=auth auth=ok user=%s mech=%s client=%s", v, j->mech, s->ip);
		reply(s, "235 2.7.0 Authentication successful");
		s->state = S_CMD;
		arm_timer(s, s->rt->cfg->command_timeout_ms);
		auth_resume(s);
	} else {
		const struct config *c = s->rt->cfg;
		uint64_t now = now_ms();
		auth_user_key(j->user, key, sizeof key);
		throttle_fail(srv->auth_throttle, key, now, (unsigned)c->auth_max_failures, c->auth_window_ms,
			      c->auth_lockout_ms);
		auth_ip_key(s, key, sizeof key);
		s->auth_ip_locked = throttle_fail(srv->auth_throttle, key, now, (unsigned)c->auth_max_failures,
						  c->auth_window_ms, c->auth_lockout_ms);
		log_info(s->sid, "event=auth auth=fail user=%s mech=%s client=%s%s", v, j->mech, s->ip,
			 s->auth_ip_locked ? " locked=client" : "");
		if (!s->auth_timer)
			s->auth_timer = evtimer_new(srv->base, auth_delay_done, s);
		{
			uint64_t ms = c->auth_failure_delay_ms;
			struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
			evtimer_add(s->auth_timer, &tv);
		}
	}
	auth_job_free(j);
	check_done(srv);
}

/* Credentials are complete: check them on a worker (parked meanwhile). */
static void auth_verify(struct session *s, const char *authzid, const char *user, const char *password,
			const char *mech)
{
	char key[THROTTLE_KEY_MAX], v[SASL_MAX_USER * 4 + 8], hash[512];
	struct auth_job *j;
	uint64_t locked;

	auth_reset(s);
	auth_user_key(user, key, sizeof key);
	locked = throttle_locked(s->srv->auth_throttle, key, now_ms());
	if (locked) {
		log_info(s->sid, "event=auth auth=locked user=%s mech=%s client=%s locked_s=%llu",
			 log_value(v, sizeof v, user, strlen(user)), mech, s->ip, (unsigned long long)(locked / 1000));
		reply(s, "454 4.7.0 Too many failed authentications for this account, try again later");
		return;
	}
	j = xcalloc(1, sizeof *j);
	j->session_id = s->id;
	j->srv = s->srv;
	j->mech = mech;
	str_copy(j->user, user, sizeof j->user);
	str_copy(j->password, password, sizeof j->password);
	/* An authorisation identity other than oneself (acting for another
	 * user) is not offered: such a login fails. */
	if ((!*authzid || !strcasecmp(authzid, user)) &&
	    store_user_get_password(s->srv->store, user, hash, sizeof hash) == STORE_OK) {
		j->hash = xstrdup(hash);
	}
	explicit_bzero(hash, sizeof hash);
	s->state = S_WAIT;
	worker_submit(s->srv->workers, auth_work, auth_done, j);
}

/* A SASL parser's refusal, answered. */
static void auth_refuse(struct session *s, enum sasl_status st)
{
	auth_reset(s);
	if (st == SASL_CANCELLED) {
		reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (st == SASL_BAD_BASE64)
		reply(s, "501 5.5.2 Error: cannot decode the response (base64)");
	else if (st == SASL_TOO_LONG)
		reply(s, "501 5.5.2 Error: authentication data too long");
	else
		reply(s, "501 5.5.2 Error: malformed authentication data");
	count_error(s);
}

static void auth_plain_response(struct session *s, const char *response)
{
	struct sasl_creds cr;
	enum sasl_status st = sasl_plain(response, &cr);
	if (st != SASL_OK) {
		auth_refuse(s, st);
		return;
	}
	auth_verify(s, cr.authzid, cr.user, cr.password, "PLAIN");
	sasl_creds_wipe(&cr);
}

/* A line that answers a 334 challenge. */
static void auth_continue(struct session *s, const char *line)
{
	char pw[SASL_MAX_PASSWORD + 1];
	enum sasl_status st;

	switch (s->auth_step) {
	case AUTH_PLAIN_WAIT:
		auth_plain_response(s, line);
		break;
	case AUTH_LOGIN_USER:
		st = sasl_login_answer(line, 1, s->auth_login_user, sizeof s->auth_login_user);
		if (st != SASL_OK) {
			auth_refuse(s, st);
			return;
		}
		s->auth_step = AUTH_LOGIN_PASS;
		reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		break;
	case AUTH_LOGIN_PASS:
		st = sasl_login_answer(line, 0, pw, sizeof pw);
		if (st != SASL_OK) {
			auth_refuse(s, st);
		} else {
			char user[SASL_MAX_USER + 1];
			str_copy(user, s->auth_login_user, sizeof user);
			auth_verify(s, "", user, pw, "LOGIN");
			explicit_bzero(user, sizeof user);
		}
		explicit_bzero(pw, sizeof pw);
		break;
	case AUTH_NONE:
		break;
	}
}

static void cmd_auth(struct session *s, const char *arg)
{
	char key[THROTTLE_KEY_MAX];
	const char *initial;
	enum sasl_mech m;
	enum sasl_status st;

	if (s->kind == LK_SMTP) {
		reply(s, "502 5.5.1 Error: AUTH not available on this port; use submission (587 or 465)");
		count_error(s);
		return;
	}
	if (!s->tls) {
		reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		count_error(s);
		return;
	}
	if (!s->helo || !s->esmtp) {
		reply(s, "503 5.5.1 Error: send EHLO first");
		count_error(s);
		return;
	}
	if (s->auth_user) {
		reply(s, "503 5.5.1 Error: already authenticated");
		count_error(s);
		return;
	}
	if (s->has_mail) {
		reply(s, "503 5.5.1 Error: AUTH not allowed during a mail transaction");
		count_error(s);
		return;
	}
	auth_ip_key(s, key, sizeof key);
	if (throttle_locked(s->srv->auth_throttle, key, now_ms())) {
		log_info(s->sid, "event=auth auth=locked client=%s", s->ip);
		reply(s, "421 4.7.0 %s Too many failed authentications from your address, closing connection",
		      s->rt->cfg->hostname);
		close_after_flush(s);
		return;
	}
	m = sasl_parse_auth(arg, &initial);
	if (m == SASL_MECH_INVALID) {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		count_error(s);
		return;
	}
	if (m == SASL_MECH_UNKNOWN) {
		reply(s, "504 5.5.4 Unrecognized authentication mechanism");
		count_error(s);
		return;
	}
	if (m == SASL_MECH_PLAIN) {
		if (initial) {
			auth_plain_response(s, initial);
		} else {
			s->auth_step = AUTH_PLAIN_WAIT;
			reply(s, "334 ");
		}
		return;
	}
	if (initial) {
		st = sasl_login_answer(initial, 1, s->auth_login_user, sizeof s->auth_login_user);
		if (st != SASL_OK) {
			auth_refuse(s, st);
			return;
		}
		s->auth_step = AUTH_LOGIN_PASS;
		reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
	} else {
		s->auth_step = AUTH_LOGIN_USER;
		reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
	}
}

static void cmd_mail(struct session *s, const char *arg)
{
	char addr[SMTP_MAX_PATH * 2 + 8], v[600];
	const char *rest;
	enum path_status ps;
	struct mail_params mp;

	if (!s->helo) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		count_error(s);
		return;
	}
	if (s->has_mail) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		count_error(s);
		return;
	}
	if (submission_needs_auth(s))
		return;
	if (strncasecmp(arg, "FROM:", 5)) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		count_error(s);
		return;
	}
	arg += 5;
	while (*arg == ' ')
		arg++;
	/* Parameters first: SMTPUTF8 decides how the path is read. A path that
	 * does not parse leaves rest unset, so look for the closing '>'. */
	{
		const char *close = strrchr(arg, '>');
		enum param_status prs;
		if (!close) {
			reply(s, "501 5.1.7 Bad sender address syntax");
			count_error(s);
			return;
		}
		prs = cmd_parse_mail_params(close + 1, &mp);
		if (prs == PARAM_UNKNOWN || (prs == PARAM_OK && !s->esmtp && (mp.size || mp.body_8bit || mp.smtputf8))) {
			reply(s, "555 5.5.4 Unsupported parameter");
			count_error(s);
			return;
		}
		if (prs == PARAM_SYNTAX) {
			reply(s, "501 5.5.4 Syntax error in parameters");
			count_error(s);
			return;
		}
	}
	ps = cmd_parse_path(arg, 1, mp.smtputf8, addr, sizeof addr, &rest);
	if (ps == PATH_NEEDS_UTF8) {
		reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		count_error(s);
		return;
	}
	if (ps != PATH_OK) {
		reply(s, "501 5.1.7 Bad sender address syntax");
		count_error(s);
		return;
	}
	if (mp.size > s->rt->cfg->max_message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		count_error(s);
		return;
	}
	if (s->pol && !policy_message_allowed(s->srv->policy, s->rt->cfg, s->ip, s->auth_user)) {
		log_info(s->sid, "event=reject cmd=MAIL code=450 reason=rate_messages");
		reply(s, "450 4.7.1 Error: too many messages from you, try again later");
		return;
	}
	if (s->kind != LK_SMTP && !sender_allowed(s, addr)) {
		log_info(s->sid, "event=reject cmd=MAIL from=<%s> user=%s code=550 reason=not_own_sender",
			 log_value(v, sizeof v, addr, strlen(addr)), s->auth_user);
		reply(s, "550 5.7.1 Sender address <%s> is not yours: %s may send only as its own addresses", addr,
		      s->auth_user);
		count_error(s);
		return;
	}
	transaction_reset(s);
	s->has_mail = 1;
	s->mail_from = xstrdup(addr);
	s->params = mp;
	if (s->pol)
		policy_sess_mail(s->pol, addr);
	if (spf_wanted(s))
		s->spf_mail_job = spf_check_async(s->srv->dns, s->ip, addr, s->helo, s->rt->cfg->hostname, 0,
						  spf_mail_done, s);
	log_info(s->sid, "event=mail from=<%s> size=%llu", log_value(v, sizeof v, addr, strlen(addr)),
		 (unsigned long long)mp.size);
	reply(s, "250 2.1.0 Ok");
}

static void add_mailbox(struct session *s, const char *mbox)
{
	for (size_t i = 0; i < s->nmailboxes; i++)
		if (!strcmp(s->mailboxes[i], mbox))
			return;
	s->mailboxes = xrealloc(s->mailboxes, (s->nmailboxes + 1) * sizeof *s->mailboxes);
	s->mailboxes[s->nmailboxes++] = xstrdup(mbox);
}

static int unknown_limit(struct session *s);
static void rcpt_finish(struct session *s, const char *addr, struct store_targets *t);

/* A self-test address ([selftest]: PREFIX-TOKEN@one-of-our-domains, port 25
 * only): the message is graded at the end of data instead of delivered to
 * it. Never graylisted: the grade is the point. Returns 1 after replying. */
static int selftest_rcpt(struct session *s, const char *addr, const char *logged)
{
	const struct config *c = s->rt->cfg;
	size_t plen = strlen(c->selftest_prefix);
	const char *at = strrchr(addr, '@');
	char token[SELFTEST_TOKEN_MAX + 1];
	size_t tlen;

	if (s->kind != LK_SMTP || strcmp(c->selftest_enabled, "yes") || !plen || !at ||
	    strncasecmp(addr, c->selftest_prefix, plen))
		return 0;
	tlen = (size_t)(at - addr) - plen;
	if (tlen > SELFTEST_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < tlen; i++)
		token[i] = (char)tolower((unsigned char)addr[plen + i]);
	token[tlen] = '\0';
	if (!selftest_token_valid(token, tlen))
		return 0;
	if (!s->selftest_token) {
		s->selftest_token = xstrdup(token);
		s->selftest_domain = xstrdup(at + 1);
	}
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof *s->rcpts);
	s->rcpts[s->nrcpts++] = xstrdup(addr);
	log_info(s->sid, "event=rcpt to=<%s> selftest=%s", logged, token);
	reply(s, "250 2.1.5 Ok");
	return 1;
}
static void session_process(struct session *s);

static void cmd_rcpt(struct session *s, const char *arg)
{
	const struct config *c = s->rt->cfg;
	char addr[SMTP_MAX_PATH * 2 + 8], v[600];
	const char *rest, *domain;
	struct store_targets t;
	enum path_status ps;
	int rc;

	if (!s->has_mail) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		count_error(s);
		return;
	}
	if (strncasecmp(arg, "TO:", 3)) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		count_error(s);
		return;
	}
	arg += 3;
	while (*arg == ' ')
		arg++;
	if (!strncasecmp(arg, "<postmaster>", 12)) {
		/* RFC 5321 section 4.1.1.3: "Postmaster" without a domain. */
		snprintf(addr, sizeof addr, "postmaster@%s", c->domains[0]);
		rest = arg + 12;
		ps = PATH_OK;
	} else {
		ps = cmd_parse_path(arg, 0, s->params.smtputf8, addr, sizeof addr, &rest);
	}
	if (ps == PATH_NEEDS_UTF8) {
		reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		count_error(s);
		return;
	}
	if (ps != PATH_OK) {
		reply(s, "501 5.1.3 Bad recipient address syntax");
		count_error(s);
		return;
	}
	log_value(v, sizeof v, addr, strlen(addr));
	if (cmd_parse_rcpt_params(rest) != PARAM_OK) {
		reply(s, "555 5.5.4 Unsupported parameter");
		count_error(s);
		return;
	}
	if (s->nrcpts >= c->max_recipients) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	domain = strrchr(addr, '@') + 1;
	if (!config_is_local_domain(c, domain)) {
		if (s->kind != LK_SMTP && s->auth_user) {
			rcpt_outside(s, addr, v);
			return;
		}
		log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=554 reason=relay_denied", v);
		metric_inc(M.rcpts, "relay_denied");
		reply(s, "554 5.7.1 <%s>: Relay access denied", addr);
		count_error(s);
		return;
	}
	if (selftest_rcpt(s, addr, v))
		return;
	rc = store_resolve_targets(s->srv->store, addr, c->recipient_delimiter, is_local_domain, (void *)c, &t);
	if (rc == STORE_ERROR) {
		reply(s, "451 4.3.0 Error: temporary lookup failure, try again later");
		return;
	}
	if (rc != STORE_OK) {
		log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=550 reason=unknown_user", v);
		metric_inc(M.rcpts, "unknown_user");
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", addr);
		if (!unknown_limit(s))
			count_error(s);
		return;
	}
	if (t.nforwards && !s->srv->queue) {
		store_targets_free(&t);
		log_info(s->sid, "event=defer cmd=RCPT to=<%s> code=451 reason=no_queue", v);
		reply(s, "451 4.3.0 <%s>: Cannot send to outside addresses now, try again later", addr);
		return;
	}
	if (s->pol && !policy_recipient_allowed(s->srv->policy, c, s->ip, s->auth_user)) {
		store_targets_free(&t);
		log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=450 reason=rate_recipients", v);
		reply(s, "450 4.7.1 <%s>: too many recipients from you, try again later", addr);
		return;
	}
	if (s->pol && policy_sess_active(s->pol) && (policy_sess_busy(s->pol) || s->spf_mail_job)) {
		/* The decision needs the DNS answers and SPF: wait, parked. */
		s->rcpt_wait = 1;
		s->rcpt_wait_addr = xstrdup(addr);
		s->rcpt_wait_targets = t;
		s->state = S_WAIT;
		return;
	}
	rcpt_finish(s, addr, &t);
	store_targets_free(&t);
}

/* Past max_unknown_recipients in this session, or the client's hourly
 * limit, a dictionary attack is cut short. Returns 1 if closing. */
static int unknown_limit(struct session *s)
{
	const struct config *c = s->rt->cfg;
	int over = ++s->nunknown > c->max_unknown_recipients;
	if (s->srv->policy && !policy_unknown_allowed(s->srv->policy, c, s->ip))
		over = 1;
	if (!over)
		return 0;
	reply(s, "421 4.7.0 %s Too many unknown recipients, closing connection", c->hostname);
	log_info(s->sid, "event=close reason=too_many_unknown_recipients unknown=%u", s->nunknown);
	close_after_flush(s);
	return 1;
}

/* The policy's word on a local recipient, then 250 (or the refusal). */
static void rcpt_finish(struct session *s, const char *addr, struct store_targets *t)
{
	char v[600];
	int64_t retry;

	log_value(v, sizeof v, addr, strlen(addr));
	if (s->pol && policy_sess_active(s->pol)) {
		switch (policy_sess_rcpt(s->pol, s->auth_user != NULL, addr, &retry)) {
		case POLICY_REJECT:
			log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=550 reason=policy score=%.2f", v,
				 policy_sess_score(s->pol));
			reply(s, "550 5.7.1 <%s>: Recipient address rejected by policy (score %.2f)", addr,
			      policy_sess_score(s->pol));
			return;
		case POLICY_DEFER:
			log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=450 reason=greylist retry_s=%lld", v,
				 (long long)retry);
			reply(s, "450 4.7.1 <%s>: Greylisted, try again in %lld seconds", addr, (long long)retry);
			return;
		case POLICY_ACCEPT:
			break;
		}
	}
	for (size_t i = 0; i < t->nmailboxes; i++)
		add_mailbox(s, t->mailboxes[i]);
	for (size_t i = 0; i < t->nforwards; i++)
		add_outside(s, t->forwards[i]);
	if (t->nforwards)
		log_info(s->sid, "event=forward to=<%s> outside=%zu", v, t->nforwards);
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof *s->rcpts);
	s->rcpts[s->nrcpts++] = xstrdup(addr);
	log_info(s->sid, "event=rcpt to=<%s>", v);
	metric_inc(M.rcpts, "accepted");
	reply(s, "250 2.1.5 Ok");
}

/* A parked RCPT goes on once the lookups and SPF are in. */
static void rcpt_resume(struct session *s)
{
	if (!s->rcpt_wait || policy_sess_busy(s->pol) || s->spf_mail_job)
		return;
	s->rcpt_wait = 0;
	s->state = S_CMD;
	rcpt_finish(s, s->rcpt_wait_addr, &s->rcpt_wait_targets);
	free(s->rcpt_wait_addr);
	store_targets_free(&s->rcpt_wait_targets);
	s->rcpt_wait_addr = NULL;
	arm_timer(s, s->rt->cfg->command_timeout_ms);
	session_process(s);
}

/* The policy's lookups are all in. */
static void policy_ready(void *arg)
{
	struct session *s = arg;
	if (s->rcpt_wait)
		rcpt_resume(s);
}

static void start_body(struct session *s, int dot_mode)
{
	const struct config *c = s->rt->cfg;
	data_init(&s->dec, dot_mode, c->bare_lf == BARE_LF_NORMALISE, c->max_data_line, c->max_message_size);
	s->spool = spool_new(s->srv->spool_dir, c->max_header_size);
	if (s->kind == LK_SMTP && s->srv->dns && !strcasecmp(c->dkim_verify, "yes"))
		s->dkimv = dkim_verifier_new((unsigned)c->dkim_max_signatures, (int64_t)time(NULL));
	if (s->kind == LK_SMTP && s->srv->dns && !strcasecmp(c->arc_verify, "yes"))
		s->arcv = arc_verifier_new((int64_t)time(NULL));
	if (!s->decode_buf)
		s->decode_buf = xmalloc(2 * DATA_CHUNK + 2);
}

static void cmd_data(struct session *s, const char *arg)
{
	if (*arg) {
		reply(s, "501 5.5.4 Syntax: DATA");
		count_error(s);
		return;
	}
	if (s->bdat_used) {
		reply(s, "503 5.5.1 Error: DATA after BDAT");
		count_error(s);
		return;
	}
	if (!s->has_mail || s->nrcpts == 0) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		count_error(s);
		return;
	}
	start_body(s, 1);
	s->state = S_DATA;
	arm_timer(s, s->rt->cfg->data_timeout_ms);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_bdat(struct session *s, const char *arg)
{
	uint64_t size;
	int last;

	if (cmd_parse_bdat(arg, &size, &last) < 0) {
		/* The chunk size is unknown: the stream cannot be followed. */
		reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		close_after_flush(s);
		return;
	}
	if (!s->bdat_used) {
		s->bdat_discard = !s->has_mail || s->nrcpts == 0;
		if (!s->bdat_discard)
			start_body(s, 0);
		s->bdat_used = 1;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	s->state = S_BDAT;
	arm_timer(s, s->rt->cfg->data_timeout_ms);
}

static void cmd_rset(struct session *s, const char *arg)
{
	(void)arg;
	transaction_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct session *s, const char *arg)
{
	(void)arg;
	reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct session *s, const char *arg)
{
	(void)arg;
	reply(s, "221 2.0.0 Bye");
	close_after_flush(s);
}

static void cmd_help(struct session *s, const char *arg)
{
	(void)arg;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS");
}

static void cmd_vrfy(struct session *s, const char *arg)
{
	(void)arg;
	reply(s, "252 2.5.0 Cannot VRFY user, but will accept message");
}

static void cmd_expn(struct session *s, const char *arg)
{
	(void)arg;
	reply(s, "502 5.5.1 Error: EXPN not available");
	count_error(s);
}

static void session_event(struct bufferevent *bev, short what, void *arg);
static void session_read(struct bufferevent *bev, void *arg);
static void session_write(struct bufferevent *bev, void *arg);

static void cmd_starttls(struct session *s, const char *arg)
{
	struct bufferevent *tb;
	SSL *ssl;

	if (*arg) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		count_error(s);
		return;
	}
	if (!s->rt->tls) {
		reply(s, "502 5.5.1 Error: STARTTLS not available");
		count_error(s);
		return;
	}
	if (s->tls) {
		reply(s, "503 5.5.1 Error: TLS already active");
		count_error(s);
		return;
	}
	ssl = SSL_new(s->rt->tls);
	if (!ssl) {
		reply(s, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* Whatever came behind STARTTLS was sent before the handshake and must
	 * not be believed (CVE-2011-0411). */
	evbuffer_drain(bufferevent_get_input(s->bev), evbuffer_get_length(bufferevent_get_input(s->bev)));
	tb = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (!tb) {
		SSL_free(ssl);
		log_error(s->sid, "event=tls_error error=\"cannot create TLS filter\"");
		close_after_flush(s);
		return;
	}
	s->bev = tb;
	bufferevent_setcb(tb, session_read, session_write, session_event, s);
	bufferevent_setwatermark(tb, EV_READ, 0, s->rt->cfg->max_command_line + 65536);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	/* RFC 3207 section 4.2: forget everything learnt before TLS. */
	transaction_reset(s);
	spf_cancel_helo(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	s->state = S_TLS;
}

typedef void (*cmd_handler)(struct session *, const char *);

static void cmd_helo_h(struct session *s, const char *arg)
{
	cmd_ehlo(s, arg, 0);
}

static void cmd_ehlo_h(struct session *s, const char *arg)
{
	cmd_ehlo(s, arg, 1);
}

static const struct {
	enum smtp_verb verb;
	cmd_handler fn;
} commands[] = {
	{ VERB_EHLO, cmd_ehlo_h }, { VERB_HELO, cmd_helo_h }, { VERB_MAIL, cmd_mail },
	{ VERB_RCPT, cmd_rcpt },   { VERB_DATA, cmd_data },   { VERB_BDAT, cmd_bdat },
	{ VERB_RSET, cmd_rset },   { VERB_NOOP, cmd_noop },   { VERB_QUIT, cmd_quit },
	{ VERB_HELP, cmd_help },   { VERB_VRFY, cmd_vrfy },   { VERB_EXPN, cmd_expn },
	{ VERB_STARTTLS, cmd_starttls }, { VERB_AUTH, cmd_auth },
};

static void dispatch(struct session *s, const char *line)
{
	const char *arg;
	enum smtp_verb verb = cmd_verb(line, &arg);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (commands[i].verb == verb) {
			commands[i].fn(s, arg);
			return;
		}
	}
	reply(s, "500 5.5.2 Error: command not recognized");
	count_error(s);
}

/* ---- delivery (on a worker thread) ------------------------------------- */

struct delivery {
	uint64_t session_id;
	struct server *srv;
	char qid[40];
	char **paths;
	size_t npaths;
	char *head;
	size_t head_len;
	struct spool *spool;
	char **names; /* delivered file names, for rollback */
	int ok;
	int err;
	size_t size;
	char *from;
	char *folder; /* a Maildir++ subfolder such as ".Junk", or NULL for the inbox */
	size_t nrcpts;
	struct report_job *report; /* for a [reports] address: parse and store after delivery */

	/* Mail that leaves (submission to other domains, alias forwards):
	 * signed or sealed on this thread, then put in the queue. */
	struct runtime *rt;  /* held until done(): the keys below live in it */
	size_t rp_len;       /* head begins with a Return-Path line of this length (port 25) */
	const struct keyring_domain *sign; /* submission: DKIM keys of the From domain, or NULL */
	const struct arc_sign_key *seal;   /* forwarding: our ARC key, or NULL */
	enum arc_cv cv;      /* the incoming chain, for the seal */
	int submission;      /* local copies get a Return-Path line of their own */
	char **outside;
	size_t noutside;
	struct mail_params params;
	char *origin;
	char queue_id[QUEUE_ID_MAX];
	char problem[300];   /* a signature or seal that could not be made */
	int queued;

	/* A self-test: the report to store, and to mail back (reply_to set). */
	char *selftest_token, *selftest_json, *selftest_text, *selftest_reply_to, *selftest_domain;
	double selftest_score;
	unsigned selftest_keep;
	char selftest_reply_id[QUEUE_ID_MAX];
};

static void delivery_free(struct delivery *d)
{
	for (size_t i = 0; i < d->npaths; i++) {
		free(d->paths[i]);
		free(d->names[i]);
	}
	free(d->paths);
	free(d->names);
	free(d->head);
	free(d->from);
	free(d->folder);
	store_strv_free(d->outside, d->noutside);
	free(d->origin);
	spool_free(d->spool);
	report_job_free(d->report);
	free(d->selftest_token);
	free(d->selftest_json);
	free(d->selftest_text);
	free(d->selftest_reply_to);
	free(d->selftest_domain);
	free(d);
}

/* The signature (submission) or the seal (forwarding) for the copy that
 * leaves: newly allocated, "" when there is none. */
static char *outbound_fields(struct delivery *d, const struct maildir_msg *body)
{
	const char *qhead = d->head + d->rp_len;
	size_t qlen = d->head_len - d->rp_len;
	int64_t now = (int64_t)time(NULL);
	char *add = NULL;

	if (d->sign)
		add = submit_sign(d->sign, qhead, qlen, body, now, d->problem, sizeof d->problem);
	else if (d->seal && d->noutside)
		add = submit_seal(d->seal, d->rt->cfg->authserv_id, d->cv, qhead, qlen, body, now, d->problem,
				  sizeof d->problem);
	return add ? add : xstrdup("");
}

static void delivery_work(void *arg)
{
	struct delivery *d = arg;
	struct maildir_msg m = {
		.head = d->head,
		.head_len = d->head_len,
		.file_fd = d->spool->fd,
		.file_len = d->spool->file_len,
		.tail = d->spool->mem,
		.tail_len = d->spool->len,
	};
	char *add = NULL, *local_head = NULL, *queue_head = NULL;
	size_t i;

	if (d->sign || (d->seal && d->noutside)) {
		struct maildir_msg body = m;
		body.head = NULL;
		body.head_len = 0;
		add = outbound_fields(d, &body);
	}
	if (d->submission) {
		/* Our user's message: the copy kept here gets its Return-Path
		 * (RFC 5321 4.4) above the signature. */
		local_head = xasprintf("Return-Path: <%s>\n%s%s", d->from, add ? add : "", d->head);
		m.head = local_head;
		m.head_len = strlen(local_head);
	}
	d->ok = 1;
	for (i = 0; i < d->npaths; i++) {
		char name[400];
		if (maildir_deliver(d->paths[i], d->folder, &m, name, sizeof name) < 0) {
			d->ok = 0;
			d->err = errno;
			break;
		}
		d->names[i] = xstrdup(name);
	}
	if (d->ok && d->noutside) {
		const char *qhead = d->head + d->rp_len;
		struct queue_env env = {
			.mail_from = d->from,
			.rcpts = (const char *const *)d->outside,
			.nrcpts = d->noutside,
			.body_8bit = d->params.body_8bit,
			.smtputf8 = d->params.smtputf8,
			.origin = d->origin,
		};
		queue_head = xasprintf("%s%s", add ? add : "", qhead);
		m.head = queue_head;
		m.head_len = strlen(queue_head);
		if (queue_put(d->rt->cfg->data_dir, &env, &m, d->queue_id, sizeof d->queue_id) < 0) {
			d->ok = 0;
			d->err = errno;
		} else {
			d->queued = 1;
		}
	}
	if (d->ok && d->selftest_token)
		selftest_work(d);
	if (!d->ok) {
		/* All or nothing: the client will retry the whole message, so take
		 * back the copies already made (they are still in new/). */
		for (size_t k = 0; k < i; k++) {
			char *p = xasprintf("%s%s%s/new/%s", d->paths[k], d->folder ? "/" : "", d->folder ? d->folder : "",
					    d->names[k]);
			unlink(p);
			free(p);
		}
	}
	free(add);
	free(local_head);
	free(queue_head);
}

static void session_process(struct session *s);

static void delivery_done(void *arg)
{
	struct delivery *d = arg;
	struct session *s = table_find(d->srv, d->session_id);
	char v[600];

	log_value(v, sizeof v, d->from, strlen(d->from));
	if (*d->problem)
		log_warn(s ? s->sid : NULL, "event=%s id=%s problem=\"%s\"", d->sign ? "dkim_sign_failed" : "arc_seal_failed",
			 d->qid, d->problem);
	if (d->ok && d->selftest_token) {
		log_info(s ? s->sid : NULL, "event=selftest_stored id=%s token=%s score=%.1f%s%s", d->qid,
			 d->selftest_token, d->selftest_score, *d->selftest_reply_id ? " reply_queue_id=" : "",
			 d->selftest_reply_id);
		if (*d->selftest_reply_id && d->srv->queue)
			queue_kick(d->srv->queue);
	}
	if (d->ok && d->queued) {
		log_info(s ? s->sid : NULL, "event=queued id=%s queue_id=%s origin=\"%s\" outside=%zu", d->qid,
			 d->queue_id, d->origin, d->noutside);
		if (d->srv->queue)
			queue_kick(d->srv->queue);
	}
	if (d->ok)
		log_info(s ? s->sid : NULL, "event=delivered id=%s from=<%s> rcpts=%zu mailboxes=%zu size=%zu%s", d->qid, v,
			 d->nrcpts, d->npaths, d->size, s ? "" : " client_gone=1");
	else
		log_error(s ? s->sid : NULL, "event=delivery_failed id=%s from=<%s> error=\"%s\"", d->qid, v,
			  strerror(d->err));
	metric_inc(M.messages, d->ok ? (d->folder ? "quarantined" : "delivered") : "deferred_delivery");
	if (s && s->state == S_WAIT) {
		eod_observe(s);
		if (d->ok) {
			reply(s, "250 2.0.0 Ok: queued as %s", d->qid);
			s->nmsgs++;
		} else if (d->noutside && d->npaths == 0) {
			reply(s, "451 4.3.0 Error: cannot queue the message, try again later");
		} else {
			reply(s, "451 4.3.0 Error: local delivery failed, try again later");
		}
		s->state = S_CMD;
		arm_timer(s, s->rt->cfg->command_timeout_ms);
		if (s->srv->shutting_down) {
			reply(s, "421 4.3.2 %s Service shutting down", s->rt->cfg->hostname);
			close_after_flush(s);
		} else {
			session_process(s);
		}
	}
	if (d->ok && d->report) {
		/* A report mail: it is in the mailbox; now parse it off the loop. */
		report_job_submit(d->report, d->srv->workers, d->qid, d->head, d->head_len, d->spool);
		d->report = NULL, d->head = NULL, d->spool = NULL;
	}
	{
		struct server *srv = d->srv;
		runtime_unref(d->rt);
		delivery_free(d);
		check_done(srv);
	}
}

static void format_date(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, n, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* The HELO name as it may appear in a header: printable ASCII, no
 * parentheses or backslashes, which would end the comment it sits near. */
static void header_safe(char *out, size_t n, const char *in)
{
	size_t o = 0;
	for (; *in && o + 1 < n; in++) {
		unsigned char c = (unsigned char)*in;
		out[o++] = (c > 32 && c < 127 && c != '(' && c != ')' && c != '\\' && c != ';') ? (char)c : '?';
	}
	out[o] = '\0';
}

/* The Authentication-Results field for this message (RFC 8601): one
 * result per method we ran. */
static char *build_authres(struct session *s)
{
	const struct config *c = s->rt->cfg;
	struct authres *a = authres_new(c->authserv_id);
	char *field;

	if (s->spf_mail_hdr) {
		authres_add(a, "spf", spf_result_name(s->spf_mail_result), NULL);
		if (*s->mail_from)
			authres_prop(a, "smtp.mailfrom", s->mail_from);
		else
			authres_prop(a, "smtp.helo", s->helo ? s->helo : "");
	}
	if (s->spf_helo_hdr && *s->mail_from) {
		authres_add(a, "spf", spf_result_name(s->spf_helo_result), NULL);
		authres_prop(a, "smtp.helo", s->helo ? s->helo : "");
	}
	if (s->dkimv) {
		size_t n = dkim_verifier_count(s->dkimv);
		if (n == 0)
			authres_add(a, "dkim", "none", NULL);
		for (size_t i = 0; i < n; i++) {
			const struct dkim_outcome *o = dkim_verifier_outcome(s->dkimv, i);
			authres_add(a, "dkim", dkim_result_name(o->result),
				    o->result == DKIM_PASS ? NULL : o->reason);
			if (*o->domain)
				authres_prop(a, "header.d", o->domain);
			if (*o->identity)
				authres_prop(a, "header.i", o->identity);
			if (*o->selector)
				authres_prop(a, "header.s", o->selector);
			if (*o->algorithm)
				authres_prop(a, "header.a", o->algorithm);
			if (*o->header_b)
				authres_prop(a, "header.b", o->header_b);
		}
	}
	if (s->dmarc_done) {
		char comment[400];
		snprintf(comment, sizeof comment, "%s%s%s",
			 s->dmarc_comment && *s->dmarc_comment ? s->dmarc_comment : s->dmarc_reason ? s->dmarc_reason : "",
			 s->dmarc_override ? "; overridden: trusted ARC sealer " : "",
			 s->dmarc_override ? s->dmarc_override : "");
		authres_add(a, "dmarc", dmarc_result_name(s->dmarc_result), comment);
		if (s->dmarc_from)
			authres_prop(a, "header.from", s->dmarc_from);
	}
	if (s->arcv) {
		const struct arc_result *r = arc_verifier_result(s->arcv);
		if (r) {
			authres_add(a, "arc", arc_cv_name(r->cv), r->cv == ARC_CV_FAIL ? r->reason : NULL);
			if (r->cv == ARC_CV_PASS) {
				char n[16];
				snprintf(n, sizeof n, "%u", r->oldest_pass);
				authres_prop(a, "header.oldest-pass", n);
			}
		}
	}
	if (!s->spf_mail_hdr && !s->spf_helo_hdr && !s->dkimv && !s->arcv)
		authres_none(a);
	field = authres_field(a);
	authres_free(a);
	return field;
}

/*
 * What goes before the body in the Maildir file: our trace fields
 * (Return-Path, Authentication-Results, Received-SPF, Received), then the
 * message's own header block without any Authentication-Results field that
 * claims our authserv-id (RFC 8601 section 5). Sets *len.
 */
static char *build_head(struct session *s, const char *qid, size_t *len)
{
	const struct config *c = s->rt->cfg;
	char helo[MAX_HELO + 1], date[64], tlsc[200] = "", forc[600] = "";
	char *spf_helo, *spf_mail, *authres, *ours, *block, *head, *pol;
	size_t block_len, ours_len;
	int removed;
	const char *proto;

	header_safe(helo, sizeof helo, s->helo ? s->helo : "unknown");
	format_date(date, sizeof date);
	if (s->params.smtputf8)
		proto = s->tls ? "UTF8SMTPS" : "UTF8SMTP";
	else if (s->esmtp)
		proto = s->tls ? "ESMTPS" : "ESMTP";
	else
		proto = "SMTP";
	if (s->tls)
		snprintf(tlsc, sizeof tlsc, "\n\t(using %s with cipher %s (%d/%d bits))", s->tlsi.version, s->tlsi.cipher,
			 s->tlsi.bits, s->tlsi.alg_bits);
	if (s->nrcpts == 1)
		snprintf(forc, sizeof forc, "\n\tfor <%s>", s->rcpts[0]);
	spf_helo = s->spf_helo_hdr && *s->mail_from ? header_fold("Received-SPF", s->spf_helo_hdr) : NULL;
	spf_mail = s->spf_mail_hdr ? header_fold("Received-SPF", s->spf_mail_hdr) : NULL;
	authres = build_authres(s);
	pol = s->pol ? policy_sess_header(s->pol) : NULL;
	ours = xasprintf("Return-Path: <%s>\n"
			 "%s%s%s%s"
			 "Received: from %s (%s[%s%s])\n"
			 "\tby %s (postern) with %s id %s%s%s;\n"
			 "\t%s\n",
			 s->mail_from, authres, spf_helo ? spf_helo : "", spf_mail ? spf_mail : "", pol ? pol : "", helo, "",
			 s->family == AF_INET6 ? "IPv6:" : "", s->ip, c->hostname, proto, qid, tlsc, forc, date);
	free(spf_helo);
	free(spf_mail);
	free(authres);
	free(pol);
	block = authres_strip(s->spool->head, s->spool->head_len, c->authserv_id, &block_len, &removed);
	if (removed)
		log_info(s->sid, "event=removed_forged_authres count=%d", removed);
	ours_len = strlen(ours);
	head = xmalloc(ours_len + block_len + 1);
	memcpy(head, ours, ours_len);
	memcpy(head + ours_len, block, block_len + 1);
	free(ours);
	free(block);
	*len = ours_len + block_len;
	return head;
}

static void end_of_data(struct session *s)
{
	const struct data_decoder *dec = &s->dec;

	s->eod_ms = now_ms();
	metric_add(M.bytes, NULL, dec->out_len);
	if (dec->errors || s->spool->failed || s->spool->head_too_big) {
		const char *why;
		if (dec->errors & DATA_ERR_SIZE)
			reply(s, "552 5.3.4 Error: message file too big"), why = "too_big";
		else if (dec->errors & DATA_ERR_NUL)
			reply(s, "554 5.6.0 Error: NUL byte in message data"), why = "nul";
		else if (dec->errors & DATA_ERR_BARE)
			reply(s, "554 5.6.0 Error: bare CR or LF in message data (RFC 5321 section 2.3.8)"),
				why = "bare_line_ending";
		else if (dec->errors & DATA_ERR_LINE)
			reply(s, "554 5.6.0 Error: line too long in message data"), why = "line_too_long";
		else if (s->spool->head_too_big)
			reply(s, "552 5.3.4 Error: message header too big"), why = "header_too_big";
		else
			reply(s, "451 4.3.0 Error: local delivery failed, try again later"), why = "spool";
		log_info(s->sid, "event=reject cmd=%s reason=%s size=%llu", s->bdat_used ? "BDAT" : "DATA", why,
			 (unsigned long long)dec->out_len);
		{
			char outcome[48];
			snprintf(outcome, sizeof outcome, "%s_%s", strcmp(why, "spool") ? "rejected" : "deferred", why);
			metric_inc(M.messages, outcome);
			eod_observe(s);
		}
		transaction_reset(s);
		s->state = S_CMD;
		count_error(s);
		return;
	}
	if (s->kind != LK_SMTP && submission_refuses_from(s)) {
		transaction_reset(s);
		s->state = S_CMD;
		count_error(s);
		return;
	}
	if (s->dkimv) {
		dkim_verifier_end(s->dkimv);
		dkim_start(s);
	}
	if (s->arcv) {
		arc_verifier_end(s->arcv);
		arc_start(s);
	}
	s->state = S_WAIT;
	s->wait_auth = 1;
	auth_progress(s, 1);
}

/* ---- DKIM and DMARC ----------------------------------------------------- */

static void dkim_done(void *arg, struct dkim_verifier *v)
{
	struct session *s = arg;
	(void)v;
	s->dkim_job = NULL;
	s->dkim_keys_done = 1;
	if (s->wait_auth)
		auth_progress(s, 0);
}

/* Starts the key lookups once the header block is known. */
static void dkim_start(struct session *s)
{
	if (s->dkim_job || s->dkim_keys_done || !dkim_verifier_headers_done(s->dkimv))
		return;
	s->dkim_job = dkim_verify_async(s->srv->dns, s->dkimv, dkim_done, s);
}

static void arc_done(void *arg, struct arc_verifier *v)
{
	struct session *s = arg;
	(void)v;
	s->arc_job = NULL;
	s->arc_keys_done = 1;
	if (s->wait_auth)
		auth_progress(s, 0);
}

static void arc_start(struct session *s)
{
	if (s->arc_job || s->arc_keys_done || !arc_verifier_headers_done(s->arcv))
		return;
	s->arc_job = arc_verify_async(s->srv->dns, s->arcv, arc_done, s);
}

/* Message bytes, as stored, to the verifiers that read as the data streams. */
static void dkim_feed(struct session *s, const char *data, size_t len)
{
	if (!len)
		return;
	if (s->dkimv) {
		dkim_verifier_feed(s->dkimv, data, len);
		dkim_start(s);
	}
	if (s->arcv) {
		arc_verifier_feed(s->arcv, data, len);
		arc_start(s);
	}
}

/* RFC 8617 section 7.2: a DMARC failure is overridden when the ARC chain
 * validates and the sealer that handed us the message is one we trust. */
static void arc_override(struct session *s)
{
	const struct config *c = s->rt->cfg;
	const struct arc_result *r;
	const char *sealer;

	if (!s->arcv || !s->dmarc_done || s->dmarc_result != DMARC_FAIL || s->dmarc_disposition == DMARC_POLICY_NONE ||
	    !*c->dmarc_trusted_sealers)
		return;
	r = arc_verifier_result(s->arcv);
	if (!r || r->cv != ARC_CV_PASS || r->nsets == 0)
		return;
	sealer = r->sets[r->nsets - 1].seal_domain;
	for (size_t i = 0; i < c->ntrusted_sealers; i++) {
		if (!strcasecmp(c->trusted_sealers[i], sealer)) {
			log_info(s->sid, "event=dmarc_override sealer=%s disposition=%s", sealer,
				 dmarc_policy_name(s->dmarc_disposition));
			s->dmarc_override = xstrdup(sealer);
			s->dmarc_disposition = DMARC_POLICY_NONE;
			return;
		}
	}
}

static void log_dkim(struct session *s)
{
	for (size_t i = 0; s->dkimv && i < dkim_verifier_count(s->dkimv); i++) {
		const struct dkim_outcome *o = dkim_verifier_outcome(s->dkimv, i);
		char v[300];
		log_info(s->sid, "event=dkim d=%s s=%s a=%s result=%s reason=%s", *o->domain ? o->domain : "-",
			 *o->selector ? o->selector : "-", *o->algorithm ? o->algorithm : "-", dkim_result_name(o->result),
			 log_value(v, sizeof v, o->reason, strlen(o->reason)));
		metric_inc(M.dkim, dkim_result_name(o->result));
	}
	if (s->dkimv && dkim_verifier_count(s->dkimv) == 0)
		metric_inc(M.dkim, "none");
}

static void dmarc_done(void *arg, struct dmarc_eval *e)
{
	struct session *s = arg;
	char comment[200] = "";
	s->dmarc_job = NULL;
	s->dmarc_done = 1;
	s->dmarc_result = e->result;
	metric_inc(M.dmarc, dmarc_result_name(e->result));
	s->dmarc_disposition = e->disposition;
	if (e->decisive) {
		s->dmarc_from = xstrdup(e->decisive->domain);
		dmarc_comment(e->decisive, comment, sizeof comment);
		if (e->decisive->policy_tag)
			s->dmarc_policy = xstrdup(dmarc_policy_name(e->decisive->policy));
		if (e->decisive->record_text)
			s->dmarc_record = xstrdup(e->decisive->record_text);
	}
	s->dmarc_comment = xstrdup(comment);
	s->dmarc_reason = e->reason ? xstrdup(e->reason) : NULL;
	log_info(s->sid, "event=dmarc from=%s result=%s disposition=%s%s%s", s->dmarc_from ? s->dmarc_from : "-",
		 dmarc_result_name(e->result), dmarc_policy_name(e->disposition), *comment ? " policy=" : "",
		 *comment ? comment : "");
	if (s->wait_auth)
		auth_progress(s, 0);
}

/* The raw values of the message's From fields, for DMARC. */
static size_t from_values(struct session *s, char ***out)
{
	const struct msg_headers *h = s->dkimv ? dkim_verifier_headers(s->dkimv) : NULL;
	size_t n = 0;
	*out = NULL;
	for (size_t i = 0; h && i < h->nfields; i++) {
		const struct msg_field *f = &h->fields[i];
		if (f->name_len != 4 || strncasecmp(h->buf + f->off, "From", 4) || f->colon >= f->len)
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xstrndup(h->buf + f->off + f->colon + 1, f->len - f->colon - 1);
	}
	return n;
}

static void dmarc_start(struct session *s)
{
	struct dmarc_dkim *dk = NULL;
	size_t ndk = s->dkimv ? dkim_verifier_count(s->dkimv) : 0;
	char **from;
	size_t nfrom = from_values(s, &from);

	dk = xcalloc(ndk + 1, sizeof *dk);
	for (size_t i = 0; i < ndk; i++) {
		const struct dkim_outcome *o = dkim_verifier_outcome(s->dkimv, i);
		dk[i].domain = o->domain;
		dk[i].pass = o->result == DKIM_PASS;
		dk[i].temperror = o->result == DKIM_TEMPERROR;
	}
	s->dmarc_job = dmarc_check_async(s->srv->dns, (const char *const *)from, nfrom, s->spf_mail_domain,
					 s->spf_mail_domain ? s->spf_mail_result : SPF_NONE, dk, ndk, -1, dmarc_done, s);
	for (size_t i = 0; i < nfrom; i++)
		free(from[i]);
	free(from);
	free(dk);
}

/*
 * Moves the end of data on: once SPF and the DKIM keys are in, DMARC; once
 * DMARC is in, the decision. in_loop is set when called from the input
 * loop itself (which then reads on by itself).
 */
static void auth_progress(struct session *s, int in_loop)
{
	const struct config *c = s->rt->cfg;
	if (!s->wait_auth || s->spf_helo_job || s->spf_mail_job || (s->dkimv && !s->dkim_keys_done) ||
	    (s->arcv && !s->arc_keys_done))
		return;
	if (s->srv->dns && s->dkimv && !strcasecmp(c->dmarc_enabled, "yes") && !s->dmarc_done) {
		if (!s->dmarc_job) {
			log_dkim(s);
			dmarc_start(s);
		}
		return;
	}
	if (s->dkimv && strcasecmp(c->dmarc_enabled, "yes"))
		log_dkim(s);
	if (s->arcv) {
		const struct arc_result *r = arc_verifier_result(s->arcv);
		if (r && r->instances) {
			char v[300];
			log_info(s->sid, "event=arc cv=%s instances=%u reason=%s", arc_cv_name(r->cv), r->instances,
				 log_value(v, sizeof v, r->reason, strlen(r->reason)));
		}
	}
	arc_override(s);
	s->wait_auth = 0;
	finish_data(s, !in_loop);
}

/* Keeps what the checks said of this message (for DMARC reports). */
#define VERDICT_BATCH 128
#define VERDICT_FLUSH_MS 200
#define VERDICT_FIELDS 12

struct pending_verdict {
	int64_t received;
	char *f[VERDICT_FIELDS]; /* the strings of struct store_verdict, in its order */
};

/* Stores the verdicts waiting, in one transaction. A crash loses at most
 * the last VERDICT_FLUSH_MS of them: statistics, not mail. */
static void verdict_flush(struct server *srv)
{
	struct store_verdict *v;
	if (!srv->nverdicts)
		return;
	v = xcalloc(srv->nverdicts, sizeof *v);
	for (size_t i = 0; i < srv->nverdicts; i++) {
		char **f = srv->verdicts[i].f;
		v[i] = (struct store_verdict){ srv->verdicts[i].received, f[0], f[1], f[2], f[3], f[4], f[5],
					       f[6], f[7], f[8], f[9], f[10], f[11] };
	}
	if (store_verdicts_add(srv->store, v, srv->nverdicts) != STORE_OK)
		log_warn(NULL, "event=verdicts_not_stored count=%zu", srv->nverdicts);
	for (size_t i = 0; i < srv->nverdicts; i++)
		for (int k = 0; k < VERDICT_FIELDS; k++)
			free(srv->verdicts[i].f[k]);
	free(v);
	srv->nverdicts = 0;
}

static void verdict_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	verdict_flush(arg);
}

static void verdict_queue(struct server *srv, const struct store_verdict *v)
{
	const char *f[VERDICT_FIELDS] = { v->source_ip, v->helo, v->envelope_from, v->header_from, v->spf_domain,
					  v->spf_result, v->dkim, v->dmarc_result, v->dmarc_policy, v->disposition,
					  v->policy_published, v->reason };
	struct pending_verdict *p;
	if (!srv->verdicts)
		srv->verdicts = xcalloc(VERDICT_BATCH, sizeof *srv->verdicts);
	p = &srv->verdicts[srv->nverdicts++];
	p->received = v->received;
	for (int k = 0; k < VERDICT_FIELDS; k++)
		p->f[k] = f[k] ? xstrdup(f[k]) : NULL;
	if (srv->nverdicts == VERDICT_BATCH) {
		verdict_flush(srv);
	} else if (srv->nverdicts == 1) {
		struct timeval tv = { 0, VERDICT_FLUSH_MS * 1000 };
		if (!srv->verdict_timer)
			srv->verdict_timer = evtimer_new(srv->base, verdict_timer_cb, srv);
		evtimer_add(srv->verdict_timer, &tv);
	}
}

static void record_verdict(struct session *s)
{
	char dkim[1024] = "";
	size_t o = 0;
	struct store_verdict v = { 0 };

	/* Nothing was checked (or nothing came of it): nothing to keep. */
	if (!s->spf_mail_hdr && !s->dmarc_done && !(s->dkimv && dkim_verifier_count(s->dkimv)))
		return;
	for (size_t i = 0; s->dkimv && i < dkim_verifier_count(s->dkimv) && o < sizeof dkim - 1; i++) {
		const struct dkim_outcome *d = dkim_verifier_outcome(s->dkimv, i);
		int w = snprintf(dkim + o, sizeof dkim - o, "%sd=%s s=%s a=%s %s", i ? "; " : "", d->domain, d->selector,
				 d->algorithm, dkim_result_name(d->result));
		if (w > 0)
			o += (size_t)w < sizeof dkim - o ? (size_t)w : sizeof dkim - o - 1;
	}
	v.received = (int64_t)time(NULL);
	v.source_ip = s->ip;
	v.helo = s->helo;
	v.envelope_from = s->mail_from;
	v.header_from = s->dmarc_from;
	v.spf_domain = s->spf_mail_domain;
	v.spf_result = s->spf_mail_hdr ? spf_result_name(s->spf_mail_result) : NULL;
	v.dkim = *dkim ? dkim : NULL;
	v.dmarc_result = s->dmarc_done ? dmarc_result_name(s->dmarc_result) : NULL;
	v.dmarc_policy = s->dmarc_policy;
	v.disposition = s->dmarc_done ? dmarc_policy_name(s->dmarc_disposition) : NULL;
	v.policy_published = s->dmarc_record;
	v.reason = s->dmarc_override ? "trusted_forwarder" : s->dmarc_reason;
	verdict_queue(s->srv, &v);
}

/* Applies the DMARC disposition when [dmarc] apply_policy says so:
 * reject refuses the message (550 5.7.1), quarantine sends it to the Junk
 * folder (*folder), none delivers. Returns 1 after refusing. */
static int dmarc_refuses(struct session *s, const char **folder)
{
	const struct config *c = s->rt->cfg;
	*folder = NULL;
	if (!s->dmarc_done || strcasecmp(c->dmarc_apply_policy, "yes"))
		return 0;
	if (s->dmarc_disposition == DMARC_POLICY_REJECT) {
		if (s->dmarc_from)
			reply(s, "550 5.7.1 Message rejected by the DMARC policy of %s", s->dmarc_from);
		else
			reply(s, "550 5.7.1 Message rejected: no usable From header field (RFC 5322 section 3.6)");
		log_info(s->sid, "event=reject cmd=DATA reason=dmarc_%s", dmarc_result_name(s->dmarc_result));
		metric_inc(M.messages, "rejected_dmarc");
		return 1;
	}
	if (s->dmarc_disposition == DMARC_POLICY_QUARANTINE)
		*folder = c->dmarc_quarantine_folder;
	return 0;
}

/* Applies the [spf] action for the MAIL FROM result (RFC 7208 section 8,
 * codes of RFC 7372). Returns 1 after replying with a refusal. */
static int spf_refuses(struct session *s)
{
	const struct config *c = s->rt->cfg;
	char expl[300] = "";

	switch (s->spf_mail_result) {
	case SPF_FAIL:
	case SPF_SOFTFAIL:
		if (strcasecmp(s->spf_mail_result == SPF_FAIL ? c->spf_on_fail : c->spf_on_softfail, "reject"))
			return 0;
		/* Section 8.4: give the domain's explanation, made safe for one
		 * reply line. */
		if (s->spf_explanation)
			str_copy(expl, s->spf_explanation, sizeof expl);
		for (char *p = expl; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		reply(s, "550 5.7.23 Message rejected: SPF check %s%s%s",
		      s->spf_mail_result == SPF_FAIL ? "failed" : "soft-failed", *expl ? ": " : "", expl);
		break;
	case SPF_PERMERROR:
		if (strcasecmp(c->spf_on_permerror, "reject"))
			return 0;
		reply(s, "550 5.7.24 Message rejected: the sender's SPF record is broken");
		break;
	case SPF_TEMPERROR:
		if (strcasecmp(c->spf_on_temperror, "defer"))
			return 0;
		reply(s, "451 4.7.24 SPF check failed temporarily (DNS), try again later");
		break;
	default:
		return 0;
	}
	log_info(s->sid, "event=reject cmd=DATA reason=spf_%s", spf_result_name(s->spf_mail_result));
	metric_inc(M.messages, s->spf_mail_result == SPF_TEMPERROR ? "deferred_spf" : "rejected_spf");
	return 1;
}

/* The policy's decision at the end of data (src/policy/policy.h): a
 * graylisted message gets 451 4.7.1; a high score sends it to the Junk
 * folder (unless DMARC chose a folder already). Returns 1 after refusing. */
static int policy_refuses(struct session *s, const char **folder)
{
	const char *junk = NULL;
	int64_t retry;

	if (!s->pol || !policy_sess_active(s->pol))
		return 0;
	if (policy_sess_data(s->pol, s->auth_user != NULL, s->dmarc_done && s->dmarc_result == DMARC_PASS, &junk,
			     &retry) == POLICY_DEFER) {
		log_info(s->sid, "event=reject cmd=DATA code=451 reason=greylist retry_s=%lld", (long long)retry);
		reply(s, "451 4.7.1 Greylisted, try again in %lld seconds", (long long)retry);
		return 1;
	}
	if (junk && !*folder)
		*folder = junk;
	return 0;
}

/* ---- mail that leaves: submission and forwarding ------------------------- */

/*
 * The head of a submitted message: our Received field (with the user who
 * logged in: RFC 4954 section 7 and RFC 3848's ESMTPSA), then the
 * message's header block with Date and Message-ID added when missing
 * (RFC 6409 section 8.3 and 8.4). No Authentication-Results or
 * Received-SPF: those judge mail from the world. Sets *len.
 */
static char *submission_head(struct session *s, const char *qid, size_t *len)
{
	const struct config *c = s->rt->cfg;
	char helo[MAX_HELO + 1], date[64], tlsc[200] = "", *fields, *block, *head;
	size_t block_len;

	header_safe(helo, sizeof helo, s->helo ? s->helo : "unknown");
	format_date(date, sizeof date);
	snprintf(tlsc, sizeof tlsc, "\n\t(using %s with cipher %s (%d/%d bits))", s->tlsi.version, s->tlsi.cipher,
		 s->tlsi.bits, s->tlsi.alg_bits);
	fields = submit_missing_fields(s->spool->head, s->spool->head_len, c->hostname, (int64_t)time(NULL));
	if (*fields)
		log_info(s->sid, "event=submission_fields added=%s%s", strstr(fields, "Date:") ? "date," : "",
			 strstr(fields, "Message-ID:") ? "message-id" : "");
	block = submit_insert_fields(s->spool->head, s->spool->head_len, fields, &block_len);
	free(fields);
	head = xasprintf("Received: from %s (%s[%s%s])\n"
			 "\t(Authenticated sender: %s)\n"
			 "\tby %s (postern) with %s id %s%s;\n"
			 "\t%s\n"
			 "%s",
			 helo, "", s->family == AF_INET6 ? "IPv6:" : "", s->ip, s->auth_user, c->hostname,
			 s->params.smtputf8 ? "UTF8SMTPSA" : "ESMTPSA", qid, tlsc, date, block);
	free(block);
	*len = strlen(head);
	return head;
}

/* The From field of a submitted message must name the user ([submission]
 * sender), as MAIL FROM must. Returns 1 after refusing. */
static int submission_refuses_from(struct session *s)
{
	char **from = NULL, why[200] = "", v[600];
	long n = submit_from_addresses(s->spool->head, s->spool->head_len, &from, why, sizeof why);
	int refused = 0;

	if (n <= 0) {
		reply(s, "550 5.6.0 Message rejected: the From header field is missing or malformed (RFC 5322 section 3.6)");
		log_info(s->sid, "event=reject cmd=DATA user=%s reason=bad_from problem=\"%s\"", s->auth_user,
			 n == 0 ? "no From" : why);
		refused = 1;
	}
	for (long i = 0; !refused && i < n; i++) {
		char safe[300];
		if (sender_allowed(s, from[i]))
			continue;
		log_value(v, sizeof v, from[i], strlen(from[i]));
		log_info(s->sid, "event=reject cmd=DATA user=%s from=%s code=550 reason=not_own_from", s->auth_user, v);
		str_copy(safe, from[i], sizeof safe);
		for (char *p = safe; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		reply(s, "550 5.7.1 From address <%s> is not yours: %s may send only as its own addresses", safe,
		      s->auth_user);
		refused = 1;
	}
	for (long i = 0; i < (n > 0 ? n : 0); i++)
		free(from[i]);
	free(from);
	return refused;
}

/* What the copy that leaves needs: the recipients outside, and the keys
 * to sign it (submission: the From domain's DKIM keys) or to seal it
 * (forwarding from port 25: the ARC key of the alias's domain). */
static void outbound_prepare(struct session *s, struct delivery *d)
{
	const struct config *c = s->rt->cfg;
	char **from = NULL, why[100];
	long n;

	d->params = s->params;
	if (s->kind != LK_SMTP) {
		d->submission = 1;
		d->origin = xasprintf("submission user=%s", s->auth_user);
		n = submit_from_addresses(s->spool->head, s->spool->head_len, &from, why, sizeof why);
		if (n > 0 && !strcasecmp(c->dkim_sign, "yes")) {
			const char *dom = strrchr(from[0], '@') + 1;
			d->sign = keyring_find(c->dkim_keys, dom);
			if (!d->sign)
				log_warn(s->sid, "event=dkim_unsigned domain=%s hint=\"no key in %s/%s: postern dkim keygen "
						 "--domain %s\"",
					 dom, c->dkim_key_dir, dom, dom);
		}
		for (long i = 0; i < (n > 0 ? n : 0); i++)
			free(from[i]);
		free(from);
	} else {
		d->origin = xstrdup("forward");
		if (s->noutside && !strcasecmp(c->arc_seal, "yes")) {
			/* The domain of the alias that forwards: the first
			 * recipient of ours whose alias leads outside. */
			const char *dom = strrchr(s->rcpts[0], '@') + 1;
			const struct keyring_domain *kd = keyring_find(c->dkim_keys, dom);
			const struct arc_result *r = s->arcv ? arc_verifier_result(s->arcv) : NULL;
			d->seal = kd ? kd->seal : NULL;
			d->cv = r ? r->cv : ARC_CV_NONE;
			if (!d->seal)
				log_warn(s->sid, "event=arc_unsealed domain=%s hint=\"no key in %s/%s\"", dom,
					 c->dkim_key_dir, dom);
		}
	}
	d->outside = s->outside;
	d->noutside = s->noutside;
	s->outside = NULL;
	s->noutside = 0;
}

/* ---- self-test ------------------------------------------------------------ */

/* Grades the message for its self-test address (src/doctor/selftest.c)
 * from what this session learnt, and hands the report to the delivery. */
static void selftest_prepare(struct session *s, struct delivery *d)
{
	const struct config *c = s->rt->cfg;
	const struct arc_result *ar = s->arcv ? arc_verifier_result(s->arcv) : NULL;
	struct selftest_facts f;
	struct selftest_grade g;
	struct policy_client pc;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	memset(&f, 0, sizeof f);
	policy_sess_client(s->pol, &pc);
	f.client_ip = s->ip;
	f.helo = s->helo;
	f.rdns_checked = pc.rdns_checked;
	f.ptr = pc.ptr;
	f.fcrdns = pc.fcrdns;
	f.helo_resolves = pc.helo_resolves;
	if (spf_wanted(s)) {
		f.spf = spf_result_name(s->spf_mail_result);
		f.spf_domain = s->spf_mail_domain;
		if (s->spf_helo_hdr)
			f.spf_helo = spf_result_name(s->spf_helo_result);
	}
	f.envelope_from = s->mail_from;
	f.dkim_checked = s->dkimv != NULL;
	for (size_t i = 0; s->dkimv && i < dkim_verifier_count(s->dkimv) && f.ndkim < SELFTEST_MAX_DKIM; i++) {
		const struct dkim_outcome *o = dkim_verifier_outcome(s->dkimv, i);
		f.dkim[f.ndkim].domain = o->domain;
		f.dkim[f.ndkim].result = dkim_result_name(o->result);
		f.dkim[f.ndkim].algorithm = o->algorithm;
		f.ndkim++;
	}
	if (s->dmarc_done) {
		f.dmarc = dmarc_result_name(s->dmarc_result);
		f.dmarc_policy = s->dmarc_policy;
		f.from_domain = s->dmarc_from;
	}
	f.arc = ar ? arc_cv_name(ar->cv) : NULL;
	for (size_t i = 0; i < pc.nlisted && i < SELFTEST_MAX_LISTS; i++)
		f.lists[f.nlists++] = pc.listed[i];
	if (s->tls) {
		f.tls_version = s->tlsi.version;
		f.tls_cipher = s->tlsi.cipher;
	}
	f.header = s->spool->head;
	f.header_len = s->spool->head_len;
	f.size = s->spool->head_len + (uint64_t)s->spool->file_len + s->spool->len;
	f.now = (int64_t)time(NULL);
	selftest_grade(&f, &g);

	if ((m = open_memstream(&buf, &len))) {
		selftest_write_json(m, s->selftest_token, &g, &f);
		fclose(m);
		d->selftest_json = buf;
	}
	buf = NULL;
	if ((m = open_memstream(&buf, &len))) {
		selftest_write_text(m, &g, &f);
		fclose(m);
		d->selftest_text = buf;
	}
	d->selftest_token = xstrdup(s->selftest_token);
	d->selftest_domain = xstrdup(s->selftest_domain);
	d->selftest_score = g.score;
	d->selftest_keep = (unsigned)c->selftest_keep;
	/* Mailed back only to a sender that is who it says (never backscatter
	 * to a forged address), from <> (RFC 3834). */
	if (!strcmp(c->selftest_reply, "yes") && s->mail_from && *s->mail_from &&
	    (s->spf_mail_result == SPF_PASS || (s->dmarc_done && s->dmarc_result == DMARC_PASS)))
		d->selftest_reply_to = xstrdup(s->mail_from);
	log_info(s->sid, "event=selftest token=%s score=%.1f reply=%s", s->selftest_token, g.score,
		 d->selftest_reply_to ? "yes" : "no");
	selftest_grade_clear(&g);
}

/* On the worker: the report is kept, and mailed back when asked. */
static void selftest_work(struct delivery *d)
{
	const struct config *c = d->rt->cfg;
	char *msg;
	struct maildir_msg m = { 0 };
	const char *rcpt[1];
	struct queue_env env = { 0 };

	if (!d->selftest_json || !d->selftest_text ||
	    selftest_save(c->data_dir, d->selftest_token, d->selftest_json, d->selftest_text, d->selftest_keep) < 0) {
		d->ok = 0;
		d->err = d->selftest_json ? errno : ENOMEM;
		return;
	}
	if (!d->selftest_reply_to)
		return;
	msg = selftest_reply_message(c->hostname, d->selftest_domain, d->selftest_reply_to, d->selftest_token,
				     d->selftest_score, d->selftest_text, (int64_t)time(NULL));
	m.head = msg;
	m.head_len = strlen(msg);
	m.file_fd = -1;
	rcpt[0] = d->selftest_reply_to;
	env.mail_from = "";
	env.rcpts = rcpt;
	env.nrcpts = 1;
	env.body_8bit = 1;
	env.origin = "selftest";
	if (queue_put(c->data_dir, &env, &m, d->selftest_reply_id, sizeof d->selftest_reply_id) < 0)
		d->selftest_reply_id[0] = '\0';
	free(msg);
}

/* The message is complete and SPF has answered: reject or deliver. resumed
 * is set when we come back from waiting, and then we read on ourselves. */
static void finish_data(struct session *s, int resumed)
{
	struct delivery *d;
	const char *folder = NULL;
	char qid[40];

	record_verdict(s);
	/* A message only for a self-test address is graded, whatever the
	 * sender's policies would have us do with it. */
	if (!(s->selftest_token && !s->nmailboxes && !s->noutside) &&
	    (spf_refuses(s) || dmarc_refuses(s, &folder) || policy_refuses(s, &folder))) {
		eod_observe(s);
		transaction_reset(s);
		s->state = S_CMD;
		if (resumed)
			session_process(s);
		return;
	}
	snprintf(qid, sizeof qid, "%s.%u", s->sid, s->nmsgs + 1);
	d = xcalloc(1, sizeof *d);
	d->session_id = s->id;
	d->srv = s->srv;
	str_copy(d->qid, qid, sizeof d->qid);
	d->rt = s->rt;
	runtime_ref(d->rt);
	if (s->kind == LK_SMTP) {
		d->head = build_head(s, qid, &d->head_len);
		d->rp_len = strlen("Return-Path: <>\n") + strlen(s->mail_from);
	} else {
		d->head = submission_head(s, qid, &d->head_len);
	}
	outbound_prepare(s, d);
	if (s->selftest_token)
		selftest_prepare(s, d); /* reads the spool's header block */
	d->spool = s->spool;
	s->spool = NULL;
	d->size = d->head_len + (size_t)d->spool->file_len + d->spool->len;
	d->from = xstrdup(s->mail_from);
	d->folder = folder && *folder ? xstrdup(folder) : NULL;
	d->nrcpts = s->nrcpts;
	d->report = report_job_new(s->rt->cfg, s->sid, s->rcpts, s->nrcpts);
	d->paths = xcalloc(s->nmailboxes, sizeof *d->paths);
	d->names = xcalloc(s->nmailboxes, sizeof *d->names);
	for (size_t i = 0; i < s->nmailboxes; i++) {
		char *p = maildir_path(s->rt->cfg->mail_dir, s->mailboxes[i]);
		if (!p) {
			log_error(s->sid, "event=bad_mailbox mailbox=%s", s->mailboxes[i]);
			continue;
		}
		d->paths[d->npaths++] = p;
	}
	if (s->pol)
		policy_sess_accepted(s->pol);
	transaction_reset(s);
	s->state = S_WAIT;
	worker_submit(s->srv->workers, delivery_work, delivery_done, d);
}

/* ---- input ---------------------------------------------------------------- */

/* Feeds message bytes to the decoder. Returns 1 if it made progress and the
 * caller should loop, 0 to wait for more input. */
static int process_body(struct session *s, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in), n, used, outlen;
	unsigned char *p;

	if (s->state == S_BDAT && s->bdat_left == 0)
		goto chunk_done;
	if (avail == 0)
		return 0;
	n = avail < DATA_CHUNK ? avail : DATA_CHUNK;
	if (s->state == S_BDAT && n > s->bdat_left)
		n = (size_t)s->bdat_left;
	p = evbuffer_pullup(in, (ssize_t)n);
	if (s->state == S_BDAT && s->bdat_discard) {
		used = n;
	} else {
		used = data_feed(&s->dec, (const char *)p, n, s->decode_buf, 2 * DATA_CHUNK + 2, &outlen);
		spool_append(s->spool, s->decode_buf, outlen);
		dkim_feed(s, s->decode_buf, outlen);
	}
	evbuffer_drain(in, used);
	if (s->state == S_DATA) {
		if (s->dec.state == DS_END)
			end_of_data(s);
		return 1;
	}
	s->bdat_left -= used;
	s->bdat_total += used;
	if (s->bdat_left > 0)
		return 1;
chunk_done:
	if (s->bdat_discard) {
		/* Each chunk of a transaction without recipients is refused
		 * once its bytes are read (docs/smtp.md). */
		reply(s, "503 5.5.1 Error: need RCPT command");
		if (s->bdat_last)
			transaction_reset(s);
		s->bdat_total = 0;
		s->state = S_CMD;
		arm_timer(s, s->rt->cfg->command_timeout_ms);
		count_error(s);
		return 1;
	}
	if (s->bdat_last) {
		data_finish(&s->dec, s->decode_buf, &outlen);
		spool_append(s->spool, s->decode_buf, outlen);
		dkim_feed(s, s->decode_buf, outlen);
		end_of_data(s);
	} else {
		reply(s, "250 2.0.0 %llu octets received", (unsigned long long)s->bdat_total);
		s->bdat_total = 0;
		s->state = S_CMD;
		arm_timer(s, s->rt->cfg->command_timeout_ms);
	}
	return 1;
}

static void session_process(struct session *s)
{
	const struct config *c = s->rt->cfg;
	struct evbuffer *in = bufferevent_get_input(s->bev);

	for (;;) {
		struct evbuffer_ptr eol;
		size_t eol_len, line_len;

		if (s->state == S_WAIT || s->state == S_TLS || s->state == S_CLOSING)
			return;
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) > OUTPUT_MAX) {
			s->out_blocked = 1;
			return;
		}
		if (s->state == S_DATA || s->state == S_BDAT) {
			if (!process_body(s, in))
				return;
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) >= c->max_command_line) {
				if (!s->discarding) {
					reply(s, "500 5.5.2 Error: line too long");
					s->discarding = 1;
					if (count_error(s))
						return;
				}
				evbuffer_drain(in, evbuffer_get_length(in));
			}
			return;
		}
		line_len = (size_t)eol.pos;
		if (s->discarding || line_len + eol_len > c->max_command_line) {
			evbuffer_drain(in, line_len + eol_len);
			if (!s->discarding) {
				reply(s, "500 5.5.2 Error: line too long");
				if (count_error(s))
					return;
			}
			s->discarding = 0;
			continue;
		}
		evbuffer_remove(in, s->line, line_len);
		evbuffer_drain(in, eol_len);
		s->line[line_len] = '\0';
		if (memchr(s->line, '\0', line_len)) {
			reply(s, "500 5.5.2 Error: NUL byte in command");
			if (count_error(s))
				return;
			continue;
		}
		if (s->auth_step != AUTH_NONE)
			auth_continue(s, s->line);
		else
			dispatch(s, s->line);
	}
}

static void session_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	(void)bev;
	if (s->state == S_GREET) {
		/* An early talker: it sent before our greeting, so it does not
		 * wait for replies (RFC 5321 section 4.3.1; postscreen's test). */
		log_info(s->sid, "event=reject reason=early_talker client=%s", s->ip);
		evbuffer_drain(bufferevent_get_input(s->bev), evbuffer_get_length(bufferevent_get_input(s->bev)));
		reply(s, "554 5.7.1 %s Talking before the greeting is not allowed, closing connection",
		      s->rt->cfg->hostname);
		close_after_flush(s);
		return;
	}
	if (s->state == S_CMD)
		arm_timer(s, s->rt->cfg->command_timeout_ms);
	else if (s->state == S_DATA || s->state == S_BDAT)
		arm_timer(s, s->rt->cfg->data_timeout_ms);
	session_process(s);
}

static void session_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	(void)bev;
	if (s->state == S_CLOSING) {
		closing_check(s);
		return;
	}
	if (s->out_blocked && evbuffer_get_length(bufferevent_get_output(s->bev)) <= OUTPUT_MAX / 2) {
		s->out_blocked = 0;
		session_process(s);
	}
}

static void session_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake finished. */
		tls_describe(bufferevent_openssl_get_ssl(s->bev), &s->tlsi);
		s->tls = 1;
		s->state = S_CMD;
		arm_timer(s, s->rt->cfg->command_timeout_ms);
		log_info(s->sid, "event=tls version=%s cipher=%s bits=%d", s->tlsi.version, s->tlsi.cipher,
			 s->tlsi.bits);
		if (!s->greeted) {
			s->greeted = 1;
			reply(s, "220 %s ESMTP postern", s->rt->cfg->hostname);
		}
		session_process(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e;
		int logged = 0;
		while (s->state == S_TLS && (e = bufferevent_get_openssl_error(s->bev))) {
			char buf[256];
			ERR_error_string_n(e, buf, sizeof buf);
			if (!logged++)
				log_info(s->sid, "event=tls_failed error=\"%s\"", buf);
		}
	}
	if (s->state == S_DATA || s->state == S_BDAT)
		log_info(s->sid, "event=lost_in_data received=%llu", (unsigned long long)s->dec.out_len);
	if (s->state == S_WAIT) {
		/* The delivery job still runs; its result finds no session and is
		 * only logged. */
	}
	session_free(s);
}

static void session_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	(void)fd;
	(void)what;
	if (s->state == S_CLOSING) {
		closing_check(s);
		return;
	}
	if (s->state == S_WAIT) {
		arm_timer(s, s->rt->cfg->command_timeout_ms);
		return;
	}
	if (s->state == S_GREET) {
		/* The greeting delay is over and the client kept quiet. */
		s->state = S_CMD;
		arm_timer(s, s->rt->cfg->command_timeout_ms);
		reply(s, "220 %s ESMTP postern", s->rt->cfg->hostname);
		return;
	}
	log_info(s->sid, "event=timeout state=%s", s->state == S_CMD ? "command" : s->state == S_TLS ? "tls" : "data");
	if (s->state == S_TLS) {
		session_free(s);
		return;
	}
	reply(s, "421 4.4.2 %s Timeout, closing connection", s->rt->cfg->hostname);
	close_after_flush(s);
}

/* ---- accepting ------------------------------------------------------------ */

static const char *listen_kind_name(enum listen_kind k)
{
	return k == LK_SUBMISSION ? "submission" : k == LK_SUBMISSIONS ? "submissions" : "smtp";
}

static void refuse(evutil_socket_t fd, const char *hostname, int rate)
{
	char msg[300];
	int n = snprintf(msg, sizeof msg,
			 rate ? "421 4.7.0 %s Too many connections from your address, try again later\r\n"
			      : "421 4.7.0 %s Too many connections, try again later\r\n",
			 hostname);
	(void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *li = arg;
	struct server *srv = li->srv;
	const struct config *c = srv->rt->cfg;
	struct session *s;
	char ip[INET6_ADDRSTRLEN] = "?";
	size_t same = 0;
	int one = 1;
	(void)l;
	(void)salen;

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
	for (struct session *o = srv->sessions; o; o = o->next)
		same += !strcmp(o->ip, ip);
	if (srv->nsessions >= c->max_connections || same >= c->max_connections_per_client) {
		log_info(NULL, "event=refused client=%s reason=%s", ip,
			 srv->nsessions >= c->max_connections ? "max_connections" : "max_connections_per_client");
		metric_inc(M.connections, "refused");
		refuse(fd, c->hostname, 0);
		return;
	}
	if (srv->policy && !policy_connect_allowed(srv->policy, c, ip)) {
		log_info(NULL, "event=refused client=%s reason=connections_per_minute", ip);
		metric_inc(M.connections, "refused");
		refuse(fd, c->hostname, 1);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

	s = xcalloc(1, sizeof *s);
	s->id = ++srv->next_id;
	snprintf(s->sid, sizeof s->sid, "%s%06llx", srv->sid_prefix, (unsigned long long)s->id);
	s->srv = srv;
	s->rt = srv->rt;
	runtime_ref(s->rt);
	str_copy(s->ip, ip, sizeof s->ip);
	s->family = sa->sa_family;
	s->started = now_ms();
	s->line = xmalloc(c->max_command_line + 1);
	s->state = S_CMD;
	s->kind = li->kind;
	s->greeted = 1;
	if (li->kind == LK_SUBMISSIONS) {
		/* RFC 8314: TLS from the first byte; the 220 comes after the
		 * handshake (session_event). */
		SSL *ssl = s->rt->tls ? SSL_new(s->rt->tls) : NULL;
		if (ssl)
			s->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
								BEV_OPT_CLOSE_ON_FREE);
		if (ssl && !s->bev)
			SSL_free(ssl);
		s->state = S_TLS;
		s->greeted = 0;
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	s->timer = evtimer_new(srv->base, session_timeout, s);
	if (!s->bev || !s->timer) {
		log_error(NULL, "event=accept_failed client=%s", ip);
		if (!s->bev)
			evutil_closesocket(fd);
		if (s->timer)
			event_free(s->timer);
		if (s->bev)
			bufferevent_free(s->bev);
		runtime_unref(s->rt);
		free(s->line);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	metric_inc(M.connections, "accepted");
	metric_gauge_add(M.sessions, NULL, 1);
	table_add(srv, s);

	bufferevent_setcb(s->bev, session_read, session_write, session_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, c->max_command_line + 65536);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	arm_timer(s, c->command_timeout_ms);
	log_info(s->sid, "event=connect client=%s service=%s", ip, listen_kind_name(s->kind));
	if (srv->policy && s->kind == LK_SMTP) {
		/* Port 25 only: submission clients are judged by their login. */
		struct sockaddr_storage ls;
		socklen_t ll = sizeof ls;
		char local[INET6_ADDRSTRLEN] = "";
		if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
			inet_ntop(ls.ss_family,
				  ls.ss_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)&ls)->sin6_addr
							   : (void *)&((struct sockaddr_in *)&ls)->sin_addr,
				  local, sizeof local);
		s->pol = policy_sess_new(srv->policy, c, s->sid, ip, local, policy_ready, s);
	}
	if (s->kind == LK_SMTP && c->greet_delay_ms) {
		/* Early-talker test: the greeting waits; session_read catches
		 * a client that does not. */
		s->state = S_GREET;
		arm_timer(s, c->greet_delay_ms);
		return;
	}
	if (s->greeted)
		reply(s, "220 %s ESMTP postern", c->hostname);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)arg;
	(void)l;
	/* EMFILE and friends: log and keep listening; libevent retries. */
	log_error(NULL, "event=accept_error error=\"%s\"", strerror(errno));
}

/* ---- server ----------------------------------------------------------------- */

static evutil_socket_t bind_one(const struct listen_addr *la)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	evutil_socket_t fd;
	int one = 1, rc;

	rc = getaddrinfo(la->host, la->port, &hints, &res);
	if (rc != 0) {
		log_error(NULL, "event=listen_failed address=%s port=%s error=\"%s\"", la->host, la->port,
			  gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	log_error(NULL, "event=listen_failed address=%s port=%s error=\"%s\"", la->host, la->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

/* Binds every address of one kind. 0, or -1 after logging. */
static int listen_all(struct server *srv, const struct listen_addr *la, size_t n, enum listen_kind kind)
{
	for (size_t i = 0; i < n; i++) {
		struct listener *li = &srv->listeners[srv->nlisteners];
		evutil_socket_t fd = bind_one(&la[i]);
		if (fd < 0)
			return -1;
		li->srv = srv;
		li->kind = kind;
		/* Backlog 0: the socket already listens (with LISTEN_BACKLOG);
		 * -1 would make libevent listen() again with 128. */
		li->l = evconnlistener_new(srv->base, on_accept, li, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, 0, fd);
		if (!li->l) {
			close(fd);
			return -1;
		}
		srv->nlisteners++;
		evconnlistener_set_error_cb(li->l, on_accept_error);
		log_info(NULL, "event=listening service=%s address=%s port=%s", listen_kind_name(kind), la[i].host,
			 la[i].port);
	}
	return 0;
}

struct server *server_new(struct event_base *base, struct runtime *rt)
{
	struct server *srv = xcalloc(1, sizeof *srv);
	const struct config *c = rt->cfg;

	srv->base = base;
	srv->rt = rt;
	runtime_ref(rt);
	metrics_init();
	random_hex(srv->sid_prefix, 4);
	srv->spool_dir = xasprintf("%s/spool", c->data_dir);
	srv->auth_throttle = throttle_new(AUTH_THROTTLE_KEYS);
	srv->listeners = xcalloc(c->nsmtp_listen + c->nsubmission_listen + c->nsubmissions_listen,
				 sizeof *srv->listeners);
	if (listen_all(srv, c->smtp_listen, c->nsmtp_listen, LK_SMTP) < 0 ||
	    listen_all(srv, c->submission_listen, c->nsubmission_listen, LK_SUBMISSION) < 0 ||
	    listen_all(srv, c->submissions_listen, c->nsubmissions_listen, LK_SUBMISSIONS) < 0) {
		server_free(srv);
		return NULL;
	}
	return srv;
}

int server_start(struct server *srv, struct store *store, struct dns *dns)
{
	srv->store = store;
	srv->dns = dns;
	if (mkdir_p(srv->spool_dir, 0700) < 0) {
		log_error(NULL, "event=start_failed error=\"cannot create %s: %s\"", srv->spool_dir, strerror(errno));
		return -1;
	}
	srv->workers = worker_pool_new(srv->base, (int)srv->rt->cfg->workers);
	if (!srv->workers)
		return -1;
	srv->policy = policy_new(store, dns);
	for (size_t i = 0; i < srv->nlisteners; i++)
		evconnlistener_enable(srv->listeners[i].l);
	return 0;
}

void server_set_queue(struct server *srv, struct queue *q)
{
	srv->queue = q;
}

void server_set_runtime(struct server *srv, struct runtime *rt)
{
	runtime_ref(rt);
	runtime_unref(srv->rt);
	srv->rt = rt;
}

static void check_done(struct server *srv)
{
	if (srv && srv->shutting_down && srv->nsessions == 0 && (!srv->workers || worker_pending(srv->workers) == 0))
		event_base_loopbreak(srv->base);
}

static void shutdown_expired(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	log_warn(NULL, "event=shutdown_timeout sessions=%zu", srv->nsessions);
	event_base_loopbreak(srv->base);
}

void server_shutdown(struct server *srv)
{
	struct session *s, *next;
	uint64_t ms = srv->rt->cfg->shutdown_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	for (size_t i = 0; i < srv->nlisteners; i++)
		evconnlistener_disable(srv->listeners[i].l);
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (s->state == S_CMD || s->state == S_GREET) {
			reply(s, "421 4.3.2 %s Service shutting down", s->rt->cfg->hostname);
			close_after_flush(s);
		} else if (s->state == S_TLS) {
			session_free(s);
		}
	}
	srv->shutdown_timer = evtimer_new(srv->base, shutdown_expired, srv);
	evtimer_add(srv->shutdown_timer, &tv);
	check_done(srv);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	for (size_t i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i].l);
	free(srv->listeners);
	/* Worker jobs finish first: their done() may still look sessions up. */
	worker_pool_free(srv->workers);
	srv->workers = NULL;
	srv->shutting_down = 0;
	while (srv->sessions)
		session_free(srv->sessions);
	verdict_flush(srv);
	if (srv->verdict_timer)
		event_free(srv->verdict_timer);
	free(srv->verdicts);
	policy_free(srv->policy);
	if (srv->shutdown_timer)
		event_free(srv->shutdown_timer);
	runtime_unref(srv->rt);
	throttle_free(srv->auth_throttle);
	free(srv->spool_dir);
	free(srv);
}
