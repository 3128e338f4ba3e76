/*
 * remote: see remote.h.
 *
 * A job's life: route (MX lookup unless [relay] domains decides) ->
 * acquire a connection for its destination (an idle one, a new one within
 * the bound, or wait) -> for a new one, walk the hosts and their addresses
 * until one is ready -> one transaction -> per-recipient outcomes into the
 * ledger -> the callback -> the connection goes to the next waiting job,
 * to the idle list, or away.
 *
 * Ownership: the remote owns its jobs, destinations and idle connections;
 * a job owns its connection while it uses it. DNS queries are cancelled
 * when a job is freed, so no callback ever finds a dead job.
 *
 * TLS policies (direct route only; tlspolicy.h): after the MX lookup the
 * domain's MTA-STS policy (RFC 8461) is found: _mta-sts TXT on our
 * resolver, then the cache (store) when the id matches and it is fresh,
 * else a fetch on a worker thread (mtasts_fetch blocks) whose done() finds
 * the job again by its sequence number, never by a pointer that may have
 * died. A fetch that fails falls back to a cached policy that has not
 * expired (section 5.1). Enforce mode drops the MX hosts the policy does
 * not list and requires STARTTLS and a certificate valid for the MX name;
 * testing mode only records. Per MX host, when the MX answer, the host's
 * addresses and its _25._tcp TLSA records are all DNSSEC-validated, DANE
 * (RFC 7672) decides instead: STARTTLS required and the certificate must
 * match a usable TLSA record (OpenSSL's DANE). A policy failure is a
 * temporary failure (4.7.5) and the host is skipped; the policy, whether it
 * was met and the RFC 8460 result type go into the ledger.
 */
#include "deliver/remote.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "deliver/mtasts.h"
#include "deliver/pacing.h"
#include "deliver/reputation.h"
#include "deliver/route.h"
#include "deliver/tlspolicy.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/worker.h"
#include "smtp/client.h"
#include "store/store.h"

struct dest;

#define REMOTE_STS_FETCH_MS 20000 /* the whole HTTPS policy fetch */

/* The TLS policy outcome of a connection, for the ledger. */
struct tls_outcome {
	enum tlsp_policy policy;
	enum tlsp_result failure; /* TLSP_OK: none */
};

enum tlsa_state {
	TLSA_NONE,     /* not asked, absent, or not DNSSEC-validated */
	TLSA_USABLE,   /* validated, with usable DANE-TA/DANE-EE records */
	TLSA_UNUSABLE, /* validated, none usable: TLS required, unauthenticated */
	TLSA_FAILED,   /* the lookup failed (SERVFAIL, bogus, timeout) */
};

struct rjob {
	struct remote *r;
	struct rjob *prev, *next;   /* all jobs */
	struct rjob *wnext;         /* the destination's wait list */
	struct dest *dest;
	char log_id[48];

	char *qid, *mail_from, *domain;
	char **rcpts;
	size_t nrcpts;
	int body_8bit, smtputf8;
	int fd;
	off_t off, len;
	remote_cb cb;
	void *arg;
	struct remote_result *res;

	enum route_kind kind;
	char reason[300];
	const char *provider;
	struct route_mx mx[REMOTE_MAX_MX];
	size_t nmx, host_i;
	uint16_t port;

	struct sockaddr_storage addrs[REMOTE_MAX_ADDRS];
	size_t naddrs, addr_i, attempts;
	uint64_t dns_ids[3]; /* MX or AAAA, A, TLSA */
	int dns_pending;
	int has_slot;   /* counts in dest->active */
	int plain_retry; /* opportunistic TLS failed: this address again without TLS */

	struct smtpc *conn;
	char conn_host[256];
	char conn_ip[64];
	struct smtpc_info info; /* of the connection that did the transaction */
	struct smtpc_result last;
	char last_host[256];

	/* TLS policies */
	uint64_t seq;             /* finds the job again after a worker fetch */
	uint64_t sts_dns_id;
	int mx_secure;            /* the MX answer (or its absence) was validated */
	int sts_have;             /* sts holds the domain's policy */
	struct mtasts_policy sts;
	enum tlsp_result sts_error; /* discovery failure to record, TLSP_OK */
	char sts_id[MTASTS_ID_MAX + 1]; /* the TXT record's id, while fetching */
	int addr_secure;          /* the current host's address answers were validated */
	enum tlsa_state tlsa;
	unsigned char *tlsa_rdata[TLSA_MAX_RECORDS];
	size_t tlsa_len[TLSA_MAX_RECORDS], ntlsa;
	enum tlsp_policy host_policy; /* for the current host */
	int tls_hs_failed;        /* testing/none: the handshake failed, plain retry */
	struct tls_outcome tls;   /* of the connection used, or of the last policy failure */
};

struct idle {
	struct smtpc *c;
	struct event *timer;
	char host[256];
	struct dest *d;
	struct tls_outcome tls;
	struct idle *next;
};

struct dest {
	char *key;
	const char *provider; /* of a direct destination (static), for [pacing] connections */
	int active; /* connections: opening, busy or idle */
	struct idle *idle;
	struct rjob *wait_head, *wait_tail;
	struct dest *next;
};

struct remote {
	struct event_base *base;
	const struct config *cfg;
	struct dns *dns;
	struct store *store;
	SSL_CTX *ctx_direct, *ctx_relay;
	struct worker_pool *pool; /* MTA-STS fetches; started on first use */
	uint64_t next_seq;
	int closing;
	struct rjob *jobs;
	size_t njobs;
	struct dest *dests;
	struct pacing *pacing;
};

static void next_host(struct rjob *j);
static void try_addr(struct rjob *j);
static void send_txn(struct rjob *j);
static void acquire(struct rjob *j);
static int routing_decide(struct rjob *j);
static void routing_learn(struct rjob *j);

static uint32_t rnd32(void)
{
	uint32_t v;
	if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
		abort();
	return v;
}

static struct dest *dest_get(struct remote *r, const char *key)
{
	struct dest *d;
	for (d = r->dests; d; d = d->next)
		if (!strcmp(d->key, key))
			return d;
	d = xcalloc(1, sizeof *d);
	d->key = xstrdup(key);
	d->next = r->dests;
	r->dests = d;
	return d;
}

static void job_free(struct rjob *j)
{
	struct remote *r = j->r;
	for (int i = 0; i < 3; i++)
		if (j->dns_ids[i])
			dns_cancel(r->dns, j->dns_ids[i]);
	if (j->sts_dns_id)
		dns_cancel(r->dns, j->sts_dns_id);
	mtasts_policy_clear(&j->sts);
	for (size_t i = 0; i < j->ntlsa; i++)
		free(j->tlsa_rdata[i]);
	smtpc_free(j->conn);
	if (j->prev)
		j->prev->next = j->next;
	else
		r->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	r->njobs--;
	for (size_t i = 0; i < j->nrcpts; i++)
		free(j->rcpts[i]);
	for (size_t i = 0; i < j->nmx; i++)
		free(j->mx[i].host);
	free(j->rcpts);
	free(j->res);
	free(j->qid);
	free(j->mail_from);
	free(j->domain);
	free(j);
}

static const char *outcome_name(enum remote_outcome o)
{
	return o == REMOTE_DELIVERED ? "delivered" : o == REMOTE_DEFERRED ? "deferred" : "failed";
}

/* Records the outcomes, tells the queue, frees the job. */
static void finish(struct rjob *j)
{
	struct remote *r = j->r;
	int64_t t = (int64_t)wall_ms();
	char ip[64] = "";
	const char *route = j->kind == ROUTE_RELAY ? "relay" : "direct";

	str_copy(ip, j->conn_ip, sizeof ip);
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct remote_result *res = &j->res[i];
		char v[600];
		struct store_delivery d = {
			.time = t,
			.qid = j->qid,
			.rcpt = j->rcpts[i],
			.domain = j->domain,
			.provider = j->provider ? j->provider : "other",
			.route = route,
			.route_reason = j->reason,
			.mx = res->mx[0] ? res->mx : NULL,
			.ip = ip[0] && res->mx[0] ? ip : NULL,
			.outcome = outcome_name(res->outcome),
			.code = res->code,
			.status = res->status[0] ? res->status : NULL,
			.reply = res->text,
			.tls_version = j->info.tls && res->mx[0] ? j->info.tls_version : NULL,
			.tls_cipher = j->info.tls && res->mx[0] ? j->info.tls_cipher : NULL,
			.tls_verified = j->info.tls && res->mx[0] ? j->info.tls_verified : 0,
			.tls_policy = tlsp_policy_name(j->tls.policy),
			.tls_policy_ok = j->tls.failure == TLSP_OK,
			.tls_failure = tlsp_result_name(j->tls.failure),
		};
		if (res->outcome == REMOTE_PACED) {
			log_info(j->log_id, "event=paced to=<%s> provider=%s until=%lld why=\"%s\"", j->rcpts[i], d.provider,
				 (long long)(res->not_before_ms / 1000), res->text);
			continue;
		}
		if (r->store)
			store_ledger_add(r->store, &d);
		log_info(j->log_id,
			 "event=%s to=<%s> route=%s reason=%s provider=%s mx=%s ip=%s tls=%s tls_policy=%s tls_failure=%s "
			 "status=%s reply=%s",
			 d.outcome, j->rcpts[i], route, j->reason, d.provider, res->mx[0] ? res->mx : "none",
			 d.ip ? d.ip : "none", d.tls_version ? d.tls_version : "no", d.tls_policy,
			 d.tls_failure ? d.tls_failure : "none", res->status[0] ? res->status : "none",
			 log_value(v, sizeof v, res->text, strlen(res->text)));
	}
	j->cb(j->arg, j->res);
	job_free(j);
}

static void all_results(struct rjob *j, enum remote_outcome o, int code, const char *status, const char *text,
			const char *mx)
{
	for (size_t i = 0; i < j->nrcpts; i++) {
		j->res[i].outcome = o;
		j->res[i].code = code;
		str_copy(j->res[i].status, status ? status : "", sizeof j->res[i].status);
		str_copy(j->res[i].text, text, sizeof j->res[i].text);
		str_copy(j->res[i].mx, mx ? mx : "", sizeof j->res[i].mx);
	}
}

/* ---- connections and destinations ---- */

static void idle_expired(evutil_socket_t fd, short what, void *arg);

static void idle_remove(struct idle *it)
{
	struct idle **pp;
	for (pp = &it->d->idle; *pp && *pp != it; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = it->next;
	event_free(it->timer);
	free(it);
}

static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
	struct idle *it = arg;
	struct dest *d = it->d;
	(void)fd;
	(void)what;
	smtpc_quit(it->c);
	idle_remove(it);
	d->active--;
}

/* Starts the next waiting job of d on a new connection, if the bound allows. */
static void dest_start_waiting(struct remote *r, struct dest *d)
{
	while (d->wait_head && d->active < (int)r->cfg->queue_destination_concurrency) {
		struct rjob *j = d->wait_head;
		d->wait_head = j->wnext;
		if (!d->wait_head)
			d->wait_tail = NULL;
		j->wnext = NULL;
		d->active++;
		j->has_slot = 1;
		next_host(j);
	}
}

/* The job is done with its connection (c may be NULL when there was none). */
static void release(struct rjob *j, int reusable)
{
	struct remote *r = j->r;
	struct dest *d = j->dest;
	struct smtpc *c = j->conn;

	j->conn = NULL;
	if (!j->has_slot)
		return;
	j->has_slot = 0;
	if (c && reusable && smtpc_usable(c)) {
		if (d->wait_head) {
			/* hand it straight to the next job of this destination */
			struct rjob *n = d->wait_head;
			d->wait_head = n->wnext;
			if (!d->wait_head)
				d->wait_tail = NULL;
			n->wnext = NULL;
			n->has_slot = 1;
			n->conn = c;
			n->tls = j->tls;
			str_copy(n->conn_host, j->conn_host, sizeof n->conn_host);
			str_copy(n->conn_ip, j->conn_ip, sizeof n->conn_ip);
			send_txn(n);
			return;
		} else {
			struct idle *it = xcalloc(1, sizeof *it);
			struct timeval tv = { REMOTE_IDLE_MS / 1000, (REMOTE_IDLE_MS % 1000) * 1000 };
			it->c = c;
			it->d = d;
			it->tls = j->tls;
			str_copy(it->host, j->conn_host, sizeof it->host);
			it->timer = evtimer_new(r->base, idle_expired, it);
			evtimer_add(it->timer, &tv);
			it->next = d->idle;
			d->idle = it;
			return;
		}
	}
	if (c)
		smtpc_quit(c);
	d->active--;
	dest_start_waiting(r, d);
}

static void acquire(struct rjob *j)
{
	struct remote *r = j->r;
	char key[400];
	struct dest *d;

	if (j->kind == ROUTE_RELAY)
		snprintf(key, sizeof key, "relay:%s:%u", r->cfg->relay_host, (unsigned)r->cfg->relay_port);
	else
		snprintf(key, sizeof key, "mx:%s", j->domain);
	d = j->dest = dest_get(r, key);
	if (j->kind == ROUTE_DIRECT)
		d->provider = j->provider;
	while (d->idle) {
		struct idle *it = d->idle;
		struct smtpc *c = it->c;
		char host[256];
		struct tls_outcome tls = it->tls;
		str_copy(host, it->host, sizeof host);
		idle_remove(it);
		if (!smtpc_usable(c)) {
			smtpc_free(c);
			d->active--;
			continue;
		}
		j->has_slot = 1;
		j->conn = c;
		j->tls = tls;
		str_copy(j->conn_host, host, sizeof j->conn_host);
		{
			const char *peer = smtpc_info(c)->peer;
			str_copy(j->conn_ip, peer, sizeof j->conn_ip);
		}
		send_txn(j);
		return;
	}
	if (d->active < (int)r->cfg->queue_destination_concurrency) {
		d->active++;
		j->has_slot = 1;
		next_host(j);
		return;
	}
	if (d->wait_tail)
		d->wait_tail->wnext = j;
	else
		d->wait_head = j;
	d->wait_tail = j;
}

/* ---- the transaction ---- */

static void on_txn(void *arg, struct smtpc *c, const struct smtpc_txn_result *res)
{
	struct rjob *j = arg;
	(void)c;
	j->info = *smtpc_info(j->conn);
	for (size_t i = 0; i < j->nrcpts; i++) {
		const struct smtpc_result *x = &res->rcpt[i];
		struct remote_result *o = &j->res[i];
		o->outcome = x->code >= 200 && x->code < 300 ? REMOTE_DELIVERED
			     : SMTPC_TEMP(x)			 ? REMOTE_DEFERRED
								 : REMOTE_FAILED;
		o->code = x->code;
		str_copy(o->status, x->status, sizeof o->status);
		if (!o->status[0])
			str_copy(o->status, o->outcome == REMOTE_DELIVERED ? "2.0.0"
					    : o->outcome == REMOTE_DEFERRED ? "4.0.0"
									    : "5.0.0",
				 sizeof o->status);
		str_copy(o->text, x->text, sizeof o->text);
		str_copy(o->mx, j->conn_host, sizeof o->mx);
	}
	routing_learn(j);
	release(j, res->reusable);
	finish(j);
}

static void send_txn(struct rjob *j)
{
	const struct smtpc_info *info = smtpc_info(j->conn);
	struct smtpc_txn t = {
		.mail_from = j->mail_from,
		.rcpts = (const char *const *)j->rcpts,
		.nrcpts = j->nrcpts,
		.body_8bit = j->body_8bit,
		.smtputf8 = j->smtputf8,
		.fd = j->fd,
		.off = j->off,
		.len = j->len,
	};
	int needs_utf8 = 0;

	if (j->smtputf8) {
		for (const char *p = j->mail_from; *p; p++)
			needs_utf8 |= (unsigned char)*p >= 0x80;
		for (size_t i = 0; i < j->nrcpts; i++)
			for (const char *p = j->rcpts[i]; *p; p++)
				needs_utf8 |= (unsigned char)*p >= 0x80;
	}
	j->info = *info;
	if (needs_utf8 && !info->ext.smtputf8) {
		all_results(j, REMOTE_FAILED, 0, "5.6.7",
			    "the receiving server does not support SMTPUTF8, which this message's addresses need (RFC 6531)",
			    j->conn_host);
		release(j, 1);
		finish(j);
		return;
	}
	if (info->ext.size && (uint64_t)j->len > info->ext.size) {
		char text[200];
		snprintf(text, sizeof text, "the message (%lld bytes) is larger than the receiving server accepts (%llu)",
			 (long long)j->len, (unsigned long long)info->ext.size);
		all_results(j, REMOTE_FAILED, 0, "5.3.4", text, j->conn_host);
		release(j, 1);
		finish(j);
		return;
	}
	smtpc_send(j->conn, &t, on_txn, j);
}

/* ---- TLS policies on a connection ---- */

static int policy_requires_tls(const struct rjob *j)
{
	return j->host_policy == TLSP_STS_ENFORCE || j->host_policy == TLSP_DANE;
}

static const char *policy_label(enum tlsp_policy p)
{
	return p == TLSP_DANE ? "DANE" : "MTA-STS policy";
}

/* Makes the connection's failure j->last: 4.7.5 "MTA-STS policy: ..." or
 * "DANE: ...", and records it as the job's TLS outcome. */
static void policy_failed(struct rjob *j, enum tlsp_result f, const char *what)
{
	j->tls.policy = j->host_policy;
	j->tls.failure = f;
	j->last.code = 0;
	str_copy(j->last.status, "4.7.5", sizeof j->last.status);
	snprintf(j->last.text, sizeof j->last.text, "%s: %s (%s)", policy_label(j->host_policy), what,
		 tlsp_result_name(f));
	str_copy(j->last_host, j->conn_host, sizeof j->last_host);
	log_info(j->log_id, "event=tls_policy_failed host=%s policy=%s result=%s detail=\"%s\"", j->conn_host,
		 tlsp_policy_name(j->host_policy), tlsp_result_name(f), what);
}

/* A connection is ready: does it meet the host's policy? 0: use it
 * (the outcome is in j->tls); -1: it must not carry mail (j->last says why). */
static int policy_check(struct rjob *j, const struct smtpc_info *in)
{
	char what[400];
	enum tlsp_result f = TLSP_OK;

	j->tls.policy = j->host_policy;
	j->tls.failure = TLSP_OK;
	switch (j->host_policy) {
	case TLSP_NONE:
		j->tls.failure = j->sts_error; /* a discovery failure, delivered as without a policy */
		return 0;
	case TLSP_STS_TESTING:
		if (!mtasts_mx_match(&j->sts, j->conn_host))
			f = TLSP_VALIDATION_FAILURE;
		else if (!in->tls)
			f = j->tls_hs_failed ? TLSP_VALIDATION_FAILURE : TLSP_STARTTLS_NOT_SUPPORTED;
		else
			f = tlsp_classify(in->tls_verify_error, 0);
		j->tls.failure = f;
		if (f != TLSP_OK)
			log_info(j->log_id, "event=tls_policy_failed host=%s policy=sts-testing result=%s action=deliver",
				 j->conn_host, tlsp_result_name(f));
		return 0;
	case TLSP_STS_ENFORCE:
		f = in->tls ? tlsp_classify(in->tls_verify_error, 0) : TLSP_STARTTLS_NOT_SUPPORTED;
		if (f == TLSP_OK)
			return 0;
		snprintf(what, sizeof what, "the certificate of %s is not valid for it: %s", j->conn_host,
			 in->tls ? X509_verify_cert_error_string(in->tls_verify_error) : "no TLS");
		policy_failed(j, f, what);
		return -1;
	case TLSP_DANE:
		if (j->tlsa == TLSA_UNUSABLE) {
			/* RFC 7672 section 2.2: no usable record, TLS still required, unauthenticated */
			j->tls.failure = in->tls ? TLSP_TLSA_INVALID : TLSP_STARTTLS_NOT_SUPPORTED;
			return in->tls ? 0 : -1;
		}
		if (in->tls && in->tls_dane)
			return 0;
		f = !in->tls ? TLSP_STARTTLS_NOT_SUPPORTED
		    : in->tls_verify_error == X509_V_OK ? TLSP_VALIDATION_FAILURE
							: tlsp_classify(in->tls_verify_error, 1);
		snprintf(what, sizeof what, "the certificate of %s matches none of its TLSA records: %s", j->conn_host,
			 in->tls_verify_error != X509_V_OK ? X509_verify_cert_error_string(in->tls_verify_error)
							  : "no DANE match");
		policy_failed(j, f, what);
		return -1;
	}
	return 0;
}

/* smtpc's tls_setup for a DANE host: the TLSA records into OpenSSL. */
static int dane_setup(void *arg, SSL *ssl)
{
	struct rjob *j = arg;
	int added = 0;
	if (j->tlsa != TLSA_USABLE)
		return 0;
	if (SSL_dane_enable(ssl, j->conn_host) <= 0)
		return -1;
	/* RFC 7672 section 3.1.1: DANE-EE(3) matches are not name-checked */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < j->ntlsa; i++) {
		struct tlsa_rec t;
		char why[120];
		if (tlsa_parse(j->tlsa_rdata[i], j->tlsa_len[i], &t, why, sizeof why) < 0 || !tlsa_usable(&t))
			continue;
		if (SSL_dane_tlsa_add(ssl, t.usage, t.selector, t.mtype, t.data, t.len) > 0)
			added++;
	}
	return added > 0 ? 0 : -1;
}

/* ---- connecting ---- */

static void on_open(void *arg, struct smtpc *c, int ok, const struct smtpc_result *res)
{
	struct rjob *j = arg;
	const struct smtpc_info *in = smtpc_info(c);
	if (ok) {
		if (policy_check(j, in) == 0) {
			send_txn(j);
			return;
		}
		j->info = *in; /* the ledger shows the TLS that did not satisfy the policy */
		smtpc_quit(c);
		j->conn = NULL;
		j->plain_retry = 0;
		j->addr_i++;
		try_addr(j);
		return;
	}
	j->last = *res;
	str_copy(j->last_host, j->conn_host, sizeof j->last_host);
	log_info(j->log_id, "event=connect_failed host=%s peer=%s error=\"%s\"", j->conn_host, in->peer, res->text);
	if (policy_requires_tls(j) && (in->starttls_missing || in->tls_failed)) {
		char what[600];
		snprintf(what, sizeof what, "%s", res->text);
		policy_failed(j, in->starttls_missing ? TLSP_STARTTLS_NOT_SUPPORTED : TLSP_VALIDATION_FAILURE, what);
	} else if (smtpc_info(c)->tls_failed && !j->plain_retry && j->kind == ROUTE_DIRECT) {
		j->tls_hs_failed = 1;
		/* opportunistic TLS failed: the same address once more in plain text */
		j->plain_retry = 1;
		smtpc_free(c);
		j->conn = NULL;
		try_addr(j);
		return;
	}
	j->plain_retry = 0;
	smtpc_free(c);
	j->conn = NULL;
	j->addr_i++;
	try_addr(j);
}

/* 1 with credentials, 0 without AUTH, -1 (j->last says why) when the
 * file cannot be used. */
static int read_auth(struct rjob *j, char *user, size_t us, char *pass, size_t ps)
{
	char err[300];
	const char *f = j->r->cfg->relay_credentials_file;
	if (!*f)
		return 0;
	if (remote_read_credentials(f, user, us, pass, ps, err, sizeof err) == 0)
		return 1;
	log_error(j->log_id, "event=relay_credentials error=\"%s\"", err);
	j->last.code = 0;
	j->last.status[0] = '\0';
	snprintf(j->last.text, sizeof j->last.text, "cannot use the relay credentials: %s", err);
	return -1;
}

static void try_addr(struct rjob *j)
{
	struct remote *r = j->r;
	const struct config *cfg = r->cfg;
	struct smtpc_opts o = { 0 };
	struct sockaddr_storage *sa;
	char user[256] = "", pass[256] = "";
	int auth = 0;

	if (j->addr_i >= j->naddrs || j->attempts >= REMOTE_MAX_ADDRS) {
		j->host_i++;
		next_host(j);
		return;
	}
	if (!j->plain_retry)
		j->tls_hs_failed = 0;
	sa = &j->addrs[j->addr_i];
	j->attempts += !j->plain_retry;
	if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(j->port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(j->port);
	o.helo = cfg->delivery_helo_name;
	o.connect_timeout_ms = cfg->delivery_connect_timeout_ms;
	o.command_timeout_ms = cfg->delivery_command_timeout_ms;
	o.data_timeout_ms = cfg->delivery_data_timeout_ms;
	o.log_id = j->log_id;
	o.tls_name = j->mx[j->host_i].host;
	o.source = sa->ss_family == AF_INET6 ? cfg->delivery_source_ipv6 : cfg->delivery_source_ipv4;
	if (j->kind == ROUTE_RELAY) {
		o.tls = !strcasecmp(cfg->relay_tls, "implicit") ? SMTPC_TLS_IMPLICIT : SMTPC_TLS_STARTTLS;
		o.ssl_ctx = r->ctx_relay;
		auth = read_auth(j, user, sizeof user, pass, sizeof pass);
		if (auth < 0) {
			release(j, 0);
			all_results(j, REMOTE_DEFERRED, 0, "4.7.0", j->last.text, NULL);
			finish(j);
			return;
		}
		if (auth) {
			o.auth_user = user;
			o.auth_pass = pass;
		}
	} else {
		o.tls = j->plain_retry || !strcasecmp(cfg->delivery_tls, "none") ? SMTPC_TLS_NONE
										 : SMTPC_TLS_OPPORTUNISTIC;
		if (policy_requires_tls(j))
			o.tls = SMTPC_TLS_STARTTLS;
		if (j->host_policy == TLSP_DANE) {
			o.tls_setup = dane_setup;
			o.tls_setup_arg = j;
		}
		o.ssl_ctx = r->ctx_direct;
	}
	str_copy(j->conn_host, j->mx[j->host_i].host, sizeof j->conn_host);
	{
		char a[INET6_ADDRSTRLEN] = "";
		if (sa->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof a);
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, a, sizeof a);
		str_copy(j->conn_ip, a, sizeof j->conn_ip);
	}
	j->conn = smtpc_open(r->base, (struct sockaddr *)sa,
			     sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), &o, on_open,
			     j);
	OPENSSL_cleanse(pass, sizeof pass);
}

static void add_addr(struct rjob *j, int family, const unsigned char *a)
{
	struct sockaddr_storage *ss;
	if (j->naddrs >= REMOTE_MAX_ADDRS)
		return;
	ss = &j->addrs[j->naddrs++];
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
	}
}

static void addrs_done(struct rjob *j)
{
	if (j->naddrs == 0) {
		j->last.code = 0;
		j->last.status[0] = '\0';
		snprintf(j->last.text, sizeof j->last.text, "the host %s has no address", j->mx[j->host_i].host);
		str_copy(j->last_host, "", sizeof j->last_host);
		j->host_i++;
		next_host(j);
		return;
	}
	j->addr_i = 0;
	j->host_policy = !j->sts_have ? TLSP_NONE : j->sts.mode == MTASTS_ENFORCE ? TLSP_STS_ENFORCE
		       : j->sts.mode == MTASTS_TESTING				  ? TLSP_STS_TESTING
										  : TLSP_NONE;
	if (j->tlsa != TLSA_NONE && j->mx_secure && j->addr_secure) {
		/* RFC 7672 section 2.2: validated addresses and TLSA: DANE decides
		 * (and takes precedence over MTA-STS, RFC 8461 section 2) */
		j->host_policy = TLSP_DANE;
		if (j->tlsa == TLSA_FAILED) {
			policy_failed(j, TLSP_DNSSEC_INVALID, "cannot look up the TLSA records of the MX host");
			j->host_i++;
			next_host(j);
			return;
		}
		log_info(j->log_id, "event=dane host=%s records=%zu usable=%s", j->mx[j->host_i].host, j->ntlsa,
			 j->tlsa == TLSA_USABLE ? "yes" : "no");
	}
	try_addr(j);
}

static void on_tlsa(void *arg, const struct dns_result *res)
{
	struct rjob *j = arg;
	j->dns_ids[2] = 0;
	j->dns_pending--;
	if (res->status == DNS_ANSWER && res->secure) {
		int usable = 0;
		for (size_t i = 0; i < res->answer->nrrs && j->ntlsa < TLSA_MAX_RECORDS; i++) {
			const struct dns_rr *rr = &res->answer->rrs[i];
			struct tlsa_rec t;
			char why[120];
			if (rr->type != DNS_T_TLSA || tlsa_parse(rr->data, rr->len, &t, why, sizeof why) < 0)
				continue;
			usable |= tlsa_usable(&t);
			j->tlsa_rdata[j->ntlsa] = xmalloc(rr->len);
			memcpy(j->tlsa_rdata[j->ntlsa], rr->data, rr->len);
			j->tlsa_len[j->ntlsa++] = rr->len;
		}
		j->tlsa = usable ? TLSA_USABLE : TLSA_UNUSABLE;
	} else if (res->status == DNS_TEMPFAIL || res->status == DNS_TIMEOUT) {
		j->tlsa = TLSA_FAILED;
	}
	if (j->dns_pending == 0)
		addrs_done(j);
}

static void on_addr(void *arg, const struct dns_result *res, int v6)
{
	struct rjob *j = arg;
	j->dns_ids[v6 ? 0 : 1] = 0;
	j->dns_pending--;
	if (res->status == DNS_ANSWER && !res->secure)
		j->addr_secure = 0;
	if (res->status == DNS_ANSWER) {
		for (size_t i = 0; i < res->answer->nrrs; i++) {
			const struct dns_rr *rr = &res->answer->rrs[i];
			if (rr->type != (v6 ? DNS_T_AAAA : DNS_T_A))
				continue;
			if (v6) {
				/* v6 first: insert before any v4 already there */
				size_t k;
				if (j->naddrs >= REMOTE_MAX_ADDRS)
					break;
				for (k = 0; k < j->naddrs && j->addrs[k].ss_family == AF_INET6; k++)
					;
				memmove(&j->addrs[k + 1], &j->addrs[k], (j->naddrs - k) * sizeof j->addrs[0]);
				j->naddrs++;
				memset(&j->addrs[k], 0, sizeof j->addrs[k]);
				((struct sockaddr_in6 *)&j->addrs[k])->sin6_family = AF_INET6;
				memcpy(&((struct sockaddr_in6 *)&j->addrs[k])->sin6_addr, rr->addr, 16);
			} else {
				add_addr(j, AF_INET, rr->addr);
			}
		}
	} else if (res->status == DNS_TEMPFAIL || res->status == DNS_TIMEOUT) {
		j->last.code = 0;
		j->last.status[0] = '\0';
		snprintf(j->last.text, sizeof j->last.text, "cannot look up %s: %s", j->mx[j->host_i].host,
			 res->why ? res->why : dns_status_name(res->status));
	}
	if (j->dns_pending == 0)
		addrs_done(j);
}

static void on_aaaa(void *arg, const struct dns_result *res)
{
	on_addr(arg, res, 1);
}

static void on_a(void *arg, const struct dns_result *res)
{
	on_addr(arg, res, 0);
}

static void next_host(struct rjob *j)
{
	struct remote *r = j->r;
	const char *h;
	unsigned char a[16];

	j->naddrs = 0;
	j->addr_i = 0;
	j->addr_secure = 0;
	j->tlsa = TLSA_NONE;
	j->host_policy = TLSP_NONE;
	for (size_t i = 0; i < j->ntlsa; i++)
		free(j->tlsa_rdata[i]);
	j->ntlsa = 0;
	if (j->host_i >= j->nmx || j->attempts >= REMOTE_MAX_ADDRS) {
		/* every host failed: try again later */
		release(j, 0);
		all_results(j, REMOTE_DEFERRED, j->last.code, j->last.status[0] ? j->last.status : "4.4.1",
			    j->last.text[0] ? j->last.text : "no host could be reached",
			    j->last.code || j->tls.failure != TLSP_OK ? j->last_host : NULL);
		routing_learn(j); /* a refusal in the greeting or EHLO */
		if (j->last.code >= 500 && j->last.code < 600)
			/* a 5xx greeting or EHLO: still only a deferral; RFC 5321 5.1 says try the others later */
			for (size_t i = 0; i < j->nrcpts; i++)
				j->res[i].status[0] = '4';
		finish(j);
		return;
	}
	h = j->mx[j->host_i].host;
	if (inet_pton(AF_INET6, h, a) == 1) {
		add_addr(j, AF_INET6, a);
		addrs_done(j);
		return;
	}
	if (inet_pton(AF_INET, h, a) == 1) {
		add_addr(j, AF_INET, a);
		addrs_done(j);
		return;
	}
	j->addr_secure = 1;
	j->dns_pending = 1;
	if (!strcasecmp(r->cfg->delivery_ipv6, "yes")) {
		j->dns_pending = 2;
		j->dns_ids[0] = dns_query(r->dns, h, DNS_T_AAAA, on_aaaa, j);
	}
	j->dns_ids[1] = dns_query(r->dns, h, DNS_T_A, on_a, j);
	if (j->kind == ROUTE_DIRECT && j->mx_secure && !strcasecmp(r->cfg->delivery_dane, "yes") &&
	    strcasecmp(r->cfg->delivery_tls, "none")) {
		char tname[300];
		/* RFC 7672 section 2.2.1: SMTP is port 25, whatever port tests use */
		snprintf(tname, sizeof tname, "_25._tcp.%s", h);
		j->dns_pending++;
		j->dns_ids[2] = dns_query(r->dns, tname, DNS_T_TLSA, on_tlsa, j);
	}
}

/* ---- routing ---- */

static void set_relay(struct rjob *j, const char *reason)
{
	for (size_t i = 0; i < j->nmx; i++)
		free(j->mx[i].host);
	j->kind = ROUTE_RELAY;
	j->mx[0].host = xstrdup(j->r->cfg->relay_host);
	j->mx[0].pref = 0;
	j->nmx = 1;
	j->port = (uint16_t)j->r->cfg->relay_port;
	snprintf(j->reason, sizeof j->reason, "%s", reason);
}

/* ---- MTA-STS policy discovery (RFC 8461 section 5) ---- */

struct sts_fetch {
	struct remote *r;
	uint64_t seq;
	char domain[256], addr[64], ca_file[1024], id[MTASTS_ID_MAX + 1];
	char *body;
	size_t len;
	int rc;
	char why[300];
};

static struct rjob *job_by_seq(struct remote *r, uint64_t seq)
{
	for (struct rjob *j = r->jobs; j; j = j->next)
		if (j->seq == seq)
			return j;
	return NULL;
}

/* The policy is known (or known to be absent): apply the domain-level part
 * and go on. Enforce mode keeps only the MX hosts the policy lists. */
static void sts_apply(struct rjob *j)
{
	if (!j->sts_have || j->sts.mode == MTASTS_NONE) {
		j->tls.policy = TLSP_NONE;
		j->tls.failure = j->sts_error;
		acquire(j);
		return;
	}
	j->tls.policy = j->sts.mode == MTASTS_ENFORCE ? TLSP_STS_ENFORCE : TLSP_STS_TESTING;
	j->tls.failure = TLSP_OK;
	if (j->sts.mode == MTASTS_ENFORCE) {
		size_t k = 0;
		char hosts[300] = "";
		for (size_t i = 0; i < j->nmx; i++) {
			if (mtasts_mx_match(&j->sts, j->mx[i].host)) {
				j->mx[k++] = j->mx[i];
				continue;
			}
			if (!hosts[0])
				str_copy(hosts, j->mx[i].host, sizeof hosts);
			log_info(j->log_id, "event=tls_policy_failed host=%s policy=sts-enforce result=validation-failure "
				 "detail=\"not in the policy's mx lines\"", j->mx[i].host);
			free(j->mx[i].host);
		}
		j->nmx = k;
		if (k == 0) {
			char text[500];
			j->tls.failure = TLSP_VALIDATION_FAILURE;
			snprintf(text, sizeof text,
				 "MTA-STS policy: no MX host of %s is listed in its policy's mx lines (%s%s), "
				 "so none may receive its mail (validation-failure)",
				 j->domain, hosts, j->sts.nmx ? ", ..." : "");
			all_results(j, REMOTE_DEFERRED, 0, "4.7.5", text, NULL);
			finish(j);
			return;
		}
	}
	acquire(j);
}

/* Takes a cached policy if it has not expired (any id). 1 if taken. */
static int sts_use_cache(struct rjob *j, const struct store_mtasts *c, const char *why_log)
{
	char why[200];
	if (!c->policy || c->expires <= (int64_t)(wall_ms() / 1000))
		return 0;
	mtasts_policy_clear(&j->sts);
	if (mtasts_policy_parse(c->policy, strlen(c->policy), &j->sts, why, sizeof why) < 0)
		return 0;
	j->sts_have = 1;
	log_info(j->log_id, "event=mta_sts domain=%s mode=%s source=cache id=%s why=%s", j->domain,
		 mtasts_mode_name(j->sts.mode), c->id, why_log);
	return 1;
}

static void sts_fallback(struct rjob *j, const char *why_log)
{
	struct store_mtasts c;
	if (store_mtasts_get(j->r->store, j->domain, &c) == STORE_OK)
		sts_use_cache(j, &c, why_log);
	store_mtasts_clear(&c);
	sts_apply(j);
}

static void sts_fetch_work(void *arg)
{
	struct sts_fetch *f = arg;
	f->rc = mtasts_fetch(f->domain, f->addr, f->ca_file[0] ? f->ca_file : NULL, REMOTE_STS_FETCH_MS, &f->body,
			     &f->len, f->why, sizeof f->why);
}

static void sts_fetch_done(void *arg)
{
	struct sts_fetch *f = arg;
	struct rjob *j = f->r->closing ? NULL : job_by_seq(f->r, f->seq);
	char why[300];

	if (j) {
		if (f->rc < 0) {
			j->sts_error = strstr(f->why, "certificate") || strstr(f->why, "SSL") ? TLSP_STS_WEBPKI_INVALID
												 : TLSP_STS_POLICY_FETCH_ERROR;
			log_info(j->log_id, "event=mta_sts_fetch_failed domain=%s result=%s error=\"%s\"", j->domain,
				 tlsp_result_name(j->sts_error), f->why);
			sts_fallback(j, "fetch_failed");
		} else if (mtasts_policy_parse(f->body, f->len, &j->sts, why, sizeof why) < 0 || memchr(f->body, 0, f->len)) {
			j->sts_error = TLSP_STS_POLICY_INVALID;
			log_info(j->log_id, "event=mta_sts_fetch_failed domain=%s result=sts-policy-invalid error=\"%s\"",
				 j->domain, why);
			sts_fallback(j, "policy_invalid");
		} else {
			int64_t now = (int64_t)(wall_ms() / 1000);
			struct store_mtasts c = { .domain = j->domain, .id = f->id, .policy = f->body, .fetched = now,
						  .expires = now + (int64_t)j->sts.max_age };
			j->sts_have = 1;
			store_mtasts_put(j->r->store, &c);
			log_info(j->log_id, "event=mta_sts domain=%s mode=%s source=fetch id=%s max_age=%u", j->domain,
				 mtasts_mode_name(j->sts.mode), f->id, (unsigned)j->sts.max_age);
			sts_apply(j);
		}
	}
	free(f->body);
	free(f);
}

static void on_sts_addr(void *arg, const struct dns_result *res)
{
	struct rjob *j = arg;
	struct remote *r = j->r;
	struct sts_fetch *f;

	j->sts_dns_id = 0;
	for (size_t i = 0; res->status == DNS_ANSWER && i < res->answer->nrrs; i++) {
		const struct dns_rr *rr = &res->answer->rrs[i];
		if (rr->type != DNS_T_A)
			continue;
		f = xcalloc(1, sizeof *f);
		f->r = r;
		f->seq = j->seq;
		str_copy(f->domain, j->domain, sizeof f->domain);
		inet_ntop(AF_INET, rr->addr, f->addr, sizeof f->addr);
		str_copy(f->ca_file, r->cfg->delivery_ca_file, sizeof f->ca_file);
		str_copy(f->id, j->sts_id, sizeof f->id);
		if (!r->pool)
			r->pool = worker_pool_new(r->base, 1);
		if (!r->pool) {
			free(f);
			break;
		}
		worker_submit(r->pool, sts_fetch_work, sts_fetch_done, f);
		return;
	}
	j->sts_error = TLSP_STS_POLICY_FETCH_ERROR;
	log_info(j->log_id, "event=mta_sts_fetch_failed domain=%s result=sts-policy-fetch-error error=\"no address for mta-sts.%s\"",
		 j->domain, j->domain);
	sts_fallback(j, "no_address");
}

static void on_sts_txt(void *arg, const struct dns_result *res)
{
	struct rjob *j = arg;
	char id[MTASTS_ID_MAX + 1] = "", why[200], name[300];
	int records = 0;
	struct store_mtasts c;
	int cached;

	j->sts_dns_id = 0;
	for (size_t i = 0; res->status == DNS_ANSWER && i < res->answer->nrrs; i++) {
		const struct dns_rr *rr = &res->answer->rrs[i];
		if (rr->type != DNS_T_TXT || rr->len < 7 || strncmp((const char *)rr->data, "v=STSv1", 7))
			continue;
		records++;
		if (mtasts_record_parse((const char *)rr->data, rr->len, id, sizeof id, why, sizeof why) < 0)
			id[0] = '\0';
	}
	if (records != 1)
		id[0] = '\0'; /* section 3.1: several records are as none */
	cached = store_mtasts_get(j->r->store, j->domain, &c) == STORE_OK;
	if (!id[0]) {
		/* no live record (or the lookup failed): a cached policy still holds (section 5.1) */
		if (cached)
			sts_use_cache(j, &c, "no_record");
		store_mtasts_clear(&c);
		sts_apply(j);
		return;
	}
	if (cached && !strcmp(c.id, id) && sts_use_cache(j, &c, "same_id")) {
		store_mtasts_clear(&c);
		sts_apply(j);
		return;
	}
	store_mtasts_clear(&c);
	str_copy(j->sts_id, id, sizeof j->sts_id);
	snprintf(name, sizeof name, "mta-sts.%s", j->domain);
	j->sts_dns_id = dns_query(j->r->dns, name, DNS_T_A, on_sts_addr, j);
}

static void sts_begin(struct rjob *j)
{
	const struct config *cfg = j->r->cfg;
	char name[300];
	if (!j->r->store || strcasecmp(cfg->delivery_mta_sts, "yes") || !strcasecmp(cfg->delivery_tls, "none")) {
		acquire(j);
		return;
	}
	snprintf(name, sizeof name, "_mta-sts.%s", j->domain);
	j->sts_dns_id = dns_query(j->r->dns, name, DNS_T_TXT, on_sts_txt, j);
}

static void on_mx(void *arg, const struct dns_result *res)
{
	struct rjob *j = arg;
	struct remote *r = j->r;
	const char *why;
	char text[400];

	j->dns_ids[0] = 0;
	j->mx_secure = res->secure && (res->status == DNS_ANSWER || res->status == DNS_NODATA);
	switch (res->status) {
	case DNS_ANSWER:
		for (size_t i = 0; i < res->answer->nrrs && j->nmx < REMOTE_MAX_MX; i++) {
			const struct dns_rr *rr = &res->answer->rrs[i];
			if (rr->type != DNS_T_MX || !rr->name)
				continue;
			j->mx[j->nmx].host = xstrdup(rr->name);
			j->mx[j->nmx].pref = rr->pref;
			j->nmx++;
		}
		if (route_is_null_mx(j->mx, j->nmx)) {
			snprintf(text, sizeof text, "the domain %s accepts no mail (null MX, RFC 7505)", j->domain);
			snprintf(j->reason, sizeof j->reason, "null_mx");
			all_results(j, REMOTE_FAILED, 0, "5.1.10", text, NULL);
			finish(j);
			return;
		}
		if (j->nmx == 0)
			goto implicit;
		route_mx_order(j->mx, j->nmx, rnd32);
		j->provider = route_provider(j->mx[0].host);
		snprintf(j->reason, sizeof j->reason, "mx");
		if (*r->cfg->relay_host && route_by_mx(r->cfg, j->mx, j->nmx, &why) == ROUTE_RELAY) {
			char reason[300];
			snprintf(reason, sizeof reason, "mx_pattern %s", why);
			set_relay(j, reason);
		}
		break;
	case DNS_NODATA:
	implicit:
		/* RFC 5321 section 5.1: no MX, the domain itself */
		j->mx[0].host = xstrdup(j->domain);
		j->mx[0].pref = 0;
		j->nmx = 1;
		j->provider = route_provider(j->domain);
		snprintf(j->reason, sizeof j->reason, "implicit_mx");
		break;
	case DNS_NXDOMAIN:
		snprintf(text, sizeof text, "the domain %s does not exist", j->domain);
		snprintf(j->reason, sizeof j->reason, "nxdomain");
		all_results(j, REMOTE_FAILED, 0, "5.1.2", text, NULL);
		finish(j);
		return;
	default:
		snprintf(text, sizeof text, "cannot look up the MX of %s: %s", j->domain,
			 res->why ? res->why : dns_status_name(res->status));
		snprintf(j->reason, sizeof j->reason, "dns_failure");
		all_results(j, REMOTE_DEFERRED, 0, "4.4.3", text, NULL);
		finish(j);
		return;
	}
	if (routing_decide(j))
		return;
	if (j->kind == ROUTE_DIRECT)
		sts_begin(j);
	else
		acquire(j);
}

/* ---- routing: learned routes (adaptive routing) and pacing ---- */

struct route_find {
	int64_t now;
	int found;
	char reason[200];
};

static int route_found(void *arg, const struct store_route *rt)
{
	struct route_find *f = arg;
	if (rt->relay && rt->until > f->now) {
		f->found = 1;
		str_copy(f->reason, rt->reason ? rt->reason : "", sizeof f->reason);
	}
	return 1;
}

static void paced(struct rjob *j, int64_t until_ms, const char *why)
{
	all_results(j, REMOTE_PACED, 0, "4.7.0", why, NULL);
	for (size_t i = 0; i < j->nrcpts; i++)
		j->res[i].not_before_ms = until_ms;
	finish(j);
}

/* After the MX lookup, for a job still going direct: a learned route
 * takes it to the relay; otherwise [pacing] may hold it back. Returns 1
 * when the job is finished (paced). */
static int routing_decide(struct rjob *j)
{
	struct remote *r = j->r;
	const struct config *cfg = r->cfg;
	const char *key = pacing_key(j->provider, j->domain);
	int64_t now = (int64_t)wall_ms(), until = 0;
	uint64_t max_conns;
	char why[300];

	if (j->kind != ROUTE_DIRECT)
		return 0;
	if (*cfg->relay_host && !strcasecmp(cfg->routing_adaptive, "yes") && r->store) {
		struct route_find f = { .now = now / 1000 };
		store_route_list(r->store, key, route_found, &f);
		if (f.found) {
			char reason[300];
			snprintf(reason, sizeof reason, "learned: %s", f.reason);
			set_relay(j, reason);
			return 0;
		}
	}
	max_conns = pacing_rule_for(cfg->pacing.conns, cfg->pacing.nconns, j->provider);
	if (max_conns) {
		char dkey[400];
		struct dest *own;
		uint64_t open = 0;
		snprintf(dkey, sizeof dkey, "mx:%s", j->domain);
		own = dest_get(r, dkey);
		for (struct dest *d = r->dests; d; d = d->next)
			if (d->provider && !strcmp(d->provider, j->provider))
				open += (uint64_t)d->active;
		if (open >= max_conns && !own->idle) {
			snprintf(why, sizeof why, "%llu connections open to %s, limit %llu", (unsigned long long)open,
				 j->provider, (unsigned long long)max_conns);
			paced(j, now + 1000, why);
			return 1;
		}
	}
	if (!pacing_admit(r->pacing, &cfg->pacing, j->provider, key, j->nrcpts, now, &until, why, sizeof why)) {
		paced(j, until, why);
		return 1;
	}
	return 0;
}

/* After a direct attempt: a refusal for reputation teaches a route. */
static void routing_learn(struct rjob *j)
{
	struct remote *r = j->r;
	const struct config *cfg = r->cfg;
	const struct remote_result *hit = NULL;
	int relay = *cfg->relay_host != '\0';
	char pat[300], v[600];

	if (j->kind != ROUTE_DIRECT || strcasecmp(cfg->routing_adaptive, "yes"))
		return;
	for (size_t i = 0; i < j->nrcpts; i++) {
		struct remote_result *x = &j->res[i];
		const struct reputation_pattern *p;
		if (x->outcome == REMOTE_DELIVERED || x->outcome == REMOTE_PACED)
			continue;
		p = reputation_match(&cfg->reputation, x->code, x->status, x->text);
		if (!p)
			continue;
		if (!hit)
			reputation_pattern_text(p, pat, sizeof pat);
		hit = x;
		x->retry_now = 1; /* marks the refused ones; cleared below unless rerouted */
	}
	if (!hit)
		return;
	{
		int64_t now = (int64_t)(wall_ms() / 1000);
		struct store_route rt = {
			.key = pacing_key(j->provider, j->domain),
			.provider = j->provider ? j->provider : "other",
			.domain = j->domain,
			.until = now + (int64_t)(cfg->routing_period_ms / 1000),
			.learned = now,
			.reason = hit->text,
			.relay = relay,
		};
		/* without a stored route the retry would go direct again: no retry then */
		if (!r->store || store_route_put(r->store, &rt) != STORE_OK)
			relay = 0;
		for (size_t i = 0; i < j->nrcpts; i++)
			if (j->res[i].retry_now) {
				j->res[i].retry_now = relay;
				if (relay)
					j->res[i].outcome = REMOTE_DEFERRED;
			}
		log_warn(j->log_id, "event=learned_route key=%s provider=%s until=%lld relay=%s pattern=\"%s\" reply=%s%s",
			 rt.key, rt.provider, (long long)rt.until, relay ? "yes" : "no", pat,
			 log_value(v, sizeof v, hit->text, strlen(hit->text)),
			 *cfg->relay_host ? "" : " hint=\"set [relay] host so that such mail goes through a relay\"");
	}
}

void remote_deliver(struct remote *r, const struct remote_msg *m, remote_cb cb, void *arg)
{
	struct rjob *j = xcalloc(1, sizeof *j);

	j->r = r;
	j->next = r->jobs;
	if (r->jobs)
		r->jobs->prev = j;
	r->jobs = j;
	r->njobs++;
	j->qid = xstrdup(m->qid);
	j->mail_from = xstrdup(m->mail_from);
	j->domain = xstrdup(m->domain);
	str_lower(j->domain);
	j->rcpts = xcalloc(m->nrcpts, sizeof *j->rcpts);
	for (size_t i = 0; i < m->nrcpts; i++)
		j->rcpts[i] = xstrdup(m->rcpts[i]);
	j->nrcpts = m->nrcpts;
	j->res = xcalloc(m->nrcpts, sizeof *j->res);
	j->body_8bit = m->body_8bit;
	j->smtputf8 = m->smtputf8;
	j->fd = m->fd;
	j->off = m->off;
	j->len = m->len;
	j->cb = cb;
	j->arg = arg;
	j->port = (uint16_t)r->cfg->delivery_port;
	j->provider = "other";
	j->seq = ++r->next_seq;
	snprintf(j->log_id, sizeof j->log_id, "q-%s", m->qid);

	if (*r->cfg->relay_host && route_domain_listed(r->cfg->relay_domains, r->cfg->nrelay_domains, j->domain)) {
		set_relay(j, "domain");
		acquire(j);
		return;
	}
	j->dns_ids[0] = dns_query(r->dns, j->domain, DNS_T_MX, on_mx, j);
}

size_t remote_pending(const struct remote *r)
{
	return r->njobs;
}

static int make_ctx(struct remote *r, const struct config *cfg)
{
	char err[400];
	/* direct: never fails the handshake on the certificate (opportunistic
	 * TLS); the verification result, against the system's CAs plus
	 * [delivery] ca_file, decides MTA-STS and DANE after it (policy_check) */
	SSL_CTX *d = smtpc_tls_ctx(cfg->delivery_ca_file, 0, err, sizeof err), *rl;
	if (!d) {
		log_error(NULL, "event=tls_client_error error=\"%s\"", err);
		return -1;
	}
	if (SSL_CTX_dane_enable(d) <= 0) {
		log_error(NULL, "event=tls_client_error error=\"cannot enable DANE in the TLS context\"");
		SSL_CTX_free(d);
		return -1;
	}
	rl = smtpc_tls_ctx(cfg->relay_ca_file, 1, err, sizeof err);
	if (!rl) {
		log_error(NULL, "event=tls_client_error error=\"%s\"", err);
		SSL_CTX_free(d);
		return -1;
	}
	if (r->ctx_direct)
		SSL_CTX_free(r->ctx_direct);
	if (r->ctx_relay)
		SSL_CTX_free(r->ctx_relay);
	r->ctx_direct = d;
	r->ctx_relay = rl;
	return 0;
}

struct remote *remote_new(struct event_base *base, const struct config *cfg, struct dns *dns, struct store *store)
{
	struct remote *r = xcalloc(1, sizeof *r);
	r->base = base;
	r->cfg = cfg;
	r->dns = dns;
	r->store = store;
	if (make_ctx(r, cfg) < 0) {
		free(r);
		return NULL;
	}
	r->pacing = pacing_new();
	if (store)
		pacing_load(r->pacing, &cfg->pacing, store, (int64_t)wall_ms());
	return r;
}

void remote_set_config(struct remote *r, const struct config *cfg)
{
	r->cfg = cfg;
	make_ctx(r, cfg); /* on failure the old contexts stay */
}

void remote_free(struct remote *r)
{
	struct dest *d, *dn;
	if (!r)
		return;
	r->closing = 1; /* fetches finishing now find no job */
	worker_pool_free(r->pool);
	while (r->jobs)
		job_free(r->jobs);
	for (d = r->dests; d; d = dn) {
		dn = d->next;
		while (d->idle) {
			struct smtpc *c = d->idle->c;
			idle_remove(d->idle);
			smtpc_free(c);
		}
		free(d->key);
		free(d);
	}
	if (r->ctx_direct)
		SSL_CTX_free(r->ctx_direct);
	if (r->ctx_relay)
		SSL_CTX_free(r->ctx_relay);
	pacing_free(r->pacing);
	free(r);
}

int remote_read_credentials(const char *path, char *user, size_t usize, char *pass, size_t psize, char *err,
			    size_t errsize)
{
	FILE *f = fopen(path, "r");
	char line[600];
	char *colon, *end;

	if (!f) {
		snprintf(err, errsize, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		snprintf(err, errsize, "%s is empty; write USERNAME:PASSWORD on its first line", path);
		return -1;
	}
	fclose(f);
	end = line + strcspn(line, "\r\n");
	*end = '\0';
	colon = strchr(line, ':');
	if (!colon || colon == line || (size_t)(colon - line) >= usize || strlen(colon + 1) >= psize) {
		OPENSSL_cleanse(line, sizeof line);
		snprintf(err, errsize, "%s: the first line must be USERNAME:PASSWORD", path);
		return -1;
	}
	*colon = '\0';
	str_copy(user, line, usize);
	str_copy(pass, colon + 1, psize);
	OPENSSL_cleanse(line, sizeof line);
	return 0;
}
