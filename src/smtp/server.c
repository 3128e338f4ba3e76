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
#include "auth/spf.h"
#include "deliver/maildir.h"
#include "dns/dns.h"
#include "lib/header.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/worker.h"
#include "net/tls.h"
#include "smtp/cmd.h"
#include "smtp/data.h"
#include "smtp/spool.h"
#include "store/store.h"

#define OUTPUT_MAX (256 * 1024)
#define DATA_CHUNK 16384
#define CLOSE_GRACE_MS 5000
#define SESSION_BUCKETS 1024
/* Connections the kernel queues before we accept them (capped by
 * net.core.somaxconn): a burst of clients must not fall to SYN cookies. */
#define LISTEN_BACKLOG 4096
#define MAX_HELO 255

enum sess_state { S_CMD, S_DATA, S_BDAT, S_WAIT, S_TLS, S_CLOSING };

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
	uint64_t eod_ms; /* when the end of data arrived (for the latency metric) */
};

struct server {
	struct event_base *base;
	struct runtime *rt;
	struct store *store;
	struct worker_pool *workers;
	struct evconnlistener **listeners;
	size_t nlisteners;
	struct session *sessions;
	size_t nsessions;
	struct session *table[SESSION_BUCKETS];
	struct dns *dns;
	struct queue *queue; /* NULL: nothing can be sent out */
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
	if (s->bev)
		bufferevent_free(s->bev);
	runtime_unref(s->rt);
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
	return s->srv->dns && !strcasecmp(s->rt->cfg->spf_enabled, "yes");
}

static void finish_data(struct session *s, int resumed);
static void dkim_start(struct session *s);
static void arc_start(struct session *s);
static void dkim_feed(struct session *s, const char *data, size_t len);

static void auth_progress(struct session *s, int in_loop);

/* A check has answered: the end of data may have been waiting for it. */
static void spf_maybe_resume(struct session *s)
{
	if (s->wait_auth)
		auth_progress(s, 0);
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
	reply(s, "250 HELP");
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
	transaction_reset(s);
	s->has_mail = 1;
	s->mail_from = xstrdup(addr);
	s->params = mp;
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

static void cmd_rcpt(struct session *s, const char *arg)
{
	const struct config *c = s->rt->cfg;
	char addr[SMTP_MAX_PATH * 2 + 8], v[600];
	const char *rest, *domain;
	char **targets = NULL;
	size_t ntargets = 0;
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
		log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=554 reason=relay_denied", v);
		metric_inc(M.rcpts, "relay_denied");
		reply(s, "554 5.7.1 <%s>: Relay access denied", addr);
		count_error(s);
		return;
	}
	rc = store_resolve(s->srv->store, addr, c->recipient_delimiter, &targets, &ntargets);
	if (rc == STORE_ERROR) {
		reply(s, "451 4.3.0 Error: temporary lookup failure, try again later");
		return;
	}
	if (rc != STORE_OK || ntargets == 0) {
		store_strv_free(targets, ntargets);
		log_info(s->sid, "event=reject cmd=RCPT to=<%s> code=550 reason=unknown_user", v);
		metric_inc(M.rcpts, "unknown_user");
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", addr);
		count_error(s);
		return;
	}
	for (size_t i = 0; i < ntargets; i++)
		add_mailbox(s, targets[i]);
	store_strv_free(targets, ntargets);
	s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof *s->rcpts);
	s->rcpts[s->nrcpts++] = xstrdup(addr);
	log_info(s->sid, "event=rcpt to=<%s>", v);
	metric_inc(M.rcpts, "accepted");
	reply(s, "250 2.1.5 Ok");
}

static void start_body(struct session *s, int dot_mode)
{
	const struct config *c = s->rt->cfg;
	data_init(&s->dec, dot_mode, c->bare_lf == BARE_LF_NORMALISE, c->max_data_line, c->max_message_size);
	s->spool = spool_new(s->srv->spool_dir, c->max_header_size);
	if (s->srv->dns && !strcasecmp(c->dkim_verify, "yes"))
		s->dkimv = dkim_verifier_new((unsigned)c->dkim_max_signatures, (int64_t)time(NULL));
	if (s->srv->dns && !strcasecmp(c->arc_verify, "yes"))
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
	{ VERB_STARTTLS, cmd_starttls },
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
	spool_free(d->spool);
	free(d);
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
	size_t i;

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
}

static void session_process(struct session *s);

static void delivery_done(void *arg)
{
	struct delivery *d = arg;
	struct session *s = table_find(d->srv, d->session_id);
	char v[600];

	log_value(v, sizeof v, d->from, strlen(d->from));
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
	{
		struct server *srv = d->srv;
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
	char *spf_helo, *spf_mail, *authres, *ours, *block, *head;
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
	ours = xasprintf("Return-Path: <%s>\n"
			 "%s%s%s"
			 "Received: from %s (%s[%s%s])\n"
			 "\tby %s (postern) with %s id %s%s%s;\n"
			 "\t%s\n",
			 s->mail_from, authres, spf_helo ? spf_helo : "", spf_mail ? spf_mail : "", helo, "",
			 s->family == AF_INET6 ? "IPv6:" : "", s->ip, c->hostname, proto, qid, tlsc, forc, date);
	free(spf_helo);
	free(spf_mail);
	free(authres);
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
	if (store_verdict_add(s->srv->store, &v) != STORE_OK)
		log_warn(s->sid, "event=verdict_not_stored");
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

/* The message is complete and SPF has answered: reject or deliver. resumed
 * is set when we come back from waiting, and then we read on ourselves. */
static void finish_data(struct session *s, int resumed)
{
	struct delivery *d;
	const char *folder = NULL;
	char qid[40];

	record_verdict(s);
	if (spf_refuses(s) || dmarc_refuses(s, &folder)) {
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
	d->head = build_head(s, qid, &d->head_len);
	d->spool = s->spool;
	s->spool = NULL;
	d->size = d->head_len + (size_t)d->spool->file_len + d->spool->len;
	d->from = xstrdup(s->mail_from);
	d->folder = folder && *folder ? xstrdup(folder) : NULL;
	d->nrcpts = s->nrcpts;
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
		dispatch(s, s->line);
	}
}

static void session_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	(void)bev;
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
	log_info(s->sid, "event=timeout state=%s", s->state == S_CMD ? "command" : s->state == S_TLS ? "tls" : "data");
	if (s->state == S_TLS) {
		session_free(s);
		return;
	}
	reply(s, "421 4.4.2 %s Timeout, closing connection", s->rt->cfg->hostname);
	close_after_flush(s);
}

/* ---- accepting ------------------------------------------------------------ */

static void refuse(evutil_socket_t fd, const char *hostname)
{
	char msg[300];
	int n = snprintf(msg, sizeof msg, "421 4.7.0 %s Too many connections, try again later\r\n", hostname);
	(void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
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
		refuse(fd, c->hostname);
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
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
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
	log_info(s->sid, "event=connect client=%s", ip);
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
	srv->listeners = xcalloc(c->nsmtp_listen, sizeof *srv->listeners);
	for (size_t i = 0; i < c->nsmtp_listen; i++) {
		evutil_socket_t fd = bind_one(&c->smtp_listen[i]);
		if (fd < 0) {
			server_free(srv);
			return NULL;
		}
		/* Backlog 0: the socket already listens (with LISTEN_BACKLOG);
		 * -1 would make libevent listen() again with 128. */
		srv->listeners[i] = evconnlistener_new(base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED,
						       0, fd);
		if (!srv->listeners[i]) {
			close(fd);
			server_free(srv);
			return NULL;
		}
		srv->nlisteners++;
		evconnlistener_set_error_cb(srv->listeners[i], on_accept_error);
		log_info(NULL, "event=listening service=smtp address=%s port=%s", c->smtp_listen[i].host,
			 c->smtp_listen[i].port);
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
	for (size_t i = 0; i < srv->nlisteners; i++)
		evconnlistener_enable(srv->listeners[i]);
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
		evconnlistener_disable(srv->listeners[i]);
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (s->state == S_CMD) {
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
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	/* Worker jobs finish first: their done() may still look sessions up. */
	worker_pool_free(srv->workers);
	srv->workers = NULL;
	srv->shutting_down = 0;
	while (srv->sessions)
		session_free(srv->sessions);
	if (srv->shutdown_timer)
		event_free(srv->shutdown_timer);
	runtime_unref(srv->rt);
	free(srv->spool_dir);
	free(srv);
}
