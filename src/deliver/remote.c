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

#include "config.h"
#include "deliver/pacing.h"
#include "deliver/reputation.h"
#include "deliver/route.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/util.h"
#include "smtp/client.h"
#include "store/store.h"

struct dest;

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
	uint64_t dns_ids[2];
	int dns_pending;
	int has_slot;   /* counts in dest->active */
	int plain_retry; /* opportunistic TLS failed: this address again without TLS */

	struct smtpc *conn;
	char conn_host[256];
	char conn_ip[64];
	struct smtpc_info info; /* of the connection that did the transaction */
	struct smtpc_result last;
	char last_host[256];
};

struct idle {
	struct smtpc *c;
	struct event *timer;
	char host[256];
	struct dest *d;
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
	struct rjob *jobs;
	size_t njobs;
	struct dest *dests;
	struct pacing *pacing;
};

static void next_host(struct rjob *j);
static void try_addr(struct rjob *j);
static void send_txn(struct rjob *j);
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
	for (int i = 0; i < 2; i++)
		if (j->dns_ids[i])
			dns_cancel(r->dns, j->dns_ids[i]);
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
		};
		if (res->outcome == REMOTE_PACED) {
			log_info(j->log_id, "event=paced to=<%s> provider=%s until=%lld why=\"%s\"", j->rcpts[i], d.provider,
				 (long long)(res->not_before_ms / 1000), res->text);
			continue;
		}
		if (r->store)
			store_ledger_add(r->store, &d);
		log_info(j->log_id, "event=%s to=<%s> route=%s reason=%s provider=%s mx=%s ip=%s tls=%s status=%s reply=%s",
			 d.outcome, j->rcpts[i], route, j->reason, d.provider, res->mx[0] ? res->mx : "none",
			 d.ip ? d.ip : "none", d.tls_version ? d.tls_version : "no", res->status[0] ? res->status : "none",
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
			str_copy(n->conn_host, j->conn_host, sizeof n->conn_host);
			str_copy(n->conn_ip, j->conn_ip, sizeof n->conn_ip);
			send_txn(n);
			return;
		} else {
			struct idle *it = xcalloc(1, sizeof *it);
			struct timeval tv = { REMOTE_IDLE_MS / 1000, (REMOTE_IDLE_MS % 1000) * 1000 };
			it->c = c;
			it->d = d;
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
		str_copy(host, it->host, sizeof host);
		idle_remove(it);
		if (!smtpc_usable(c)) {
			smtpc_free(c);
			d->active--;
			continue;
		}
		j->has_slot = 1;
		j->conn = c;
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

/* ---- connecting ---- */

static void on_open(void *arg, struct smtpc *c, int ok, const struct smtpc_result *res)
{
	struct rjob *j = arg;
	if (ok) {
		send_txn(j);
		return;
	}
	j->last = *res;
	str_copy(j->last_host, j->conn_host, sizeof j->last_host);
	log_info(j->log_id, "event=connect_failed host=%s peer=%s error=\"%s\"", j->conn_host, smtpc_info(c)->peer,
		 res->text);
	if (smtpc_info(c)->tls_failed && !j->plain_retry && j->kind == ROUTE_DIRECT) {
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
	try_addr(j);
}

static void on_addr(void *arg, const struct dns_result *res, int v6)
{
	struct rjob *j = arg;
	j->dns_ids[v6 ? 0 : 1] = 0;
	j->dns_pending--;
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
	if (j->host_i >= j->nmx || j->attempts >= REMOTE_MAX_ADDRS) {
		/* every host failed: try again later */
		release(j, 0);
		all_results(j, REMOTE_DEFERRED, j->last.code, j->last.status[0] ? j->last.status : "4.4.1",
			    j->last.text[0] ? j->last.text : "no host could be reached",
			    j->last.code ? j->last_host : NULL);
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
	j->dns_pending = 1;
	if (!strcasecmp(r->cfg->delivery_ipv6, "yes")) {
		j->dns_pending = 2;
		j->dns_ids[0] = dns_query(r->dns, h, DNS_T_AAAA, on_aaaa, j);
	}
	j->dns_ids[1] = dns_query(r->dns, h, DNS_T_A, on_a, j);
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

static void on_mx(void *arg, const struct dns_result *res)
{
	struct rjob *j = arg;
	struct remote *r = j->r;
	const char *why;
	char text[400];

	j->dns_ids[0] = 0;
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
	SSL_CTX *d = smtpc_tls_ctx(NULL, 0, err, sizeof err), *rl;
	if (!d) {
		log_error(NULL, "event=tls_client_error error=\"%s\"", err);
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
