/*
 * dns: see dns.h.
 *
 * Each query is a struct dns_query on one of two lists: waiting (not yet
 * given to unbound, because max_inflight are running) or running. A
 * running query has an unbound async id and a timer; whichever of the
 * answer and the timer comes first completes it and cancels the other.
 * Completion always goes through a zero timer so that callbacks never run
 * inside dns_query() (unbound answers local data synchronously).
 */
#include "dns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound-event.h>
#include <unbound.h>

#include "lib/log.h"
#include "lib/util.h"

struct dns_query {
	struct dns *dns;
	uint64_t id;
	char *name;
	uint16_t type;
	dns_cb cb;
	void *arg;
	int ub_id;
	int running;
	int done; /* answer or timeout seen; completion scheduled */
	struct event *timer;
	struct dns_answer answer;
	enum dns_status status;
	int secure;
	const char *why;
	struct dns_query *next, *prev;
};

/* Our answer cache: parsed answers by (type, name) until their TTL (or, for
 * NXDOMAIN and NODATA, their negative TTL) runs out. libunbound has a cache
 * of its own; this one saves the trip through it (and the re-parse) for the
 * hot lookups of SPF, DKIM and DMARC, and lets the SPF driver take answers
 * synchronously. Bounded: past max entries the oldest goes first. */
#define CACHE_BUCKETS 4096
#define CACHE_MAX_TTL 86400

struct cache_entry {
	char *name;
	uint16_t type;
	enum dns_status status;
	int secure;
	struct dns_answer answer;
	uint64_t expires; /* monotonic ms */
	struct cache_entry *bnext;        /* bucket chain */
	struct cache_entry *older, *newer; /* insertion order */
};

struct dns {
	struct event_base *base;
	struct cache_entry *buckets[CACHE_BUCKETS];
	struct cache_entry *oldest, *newest;
	size_t cached, cache_max;
	uint64_t hits, misses;
	struct ub_ctx *ub;
	uint64_t timeout_ms;
	unsigned max_inflight;
	unsigned inflight;
	uint64_t next_id;
	/* Every query, newest first. Waiting ones have running == 0 and are
	 * started oldest first; a scan is fine, as callers bound how many
	 * queries they start. */
	struct dns_query *queries;
	size_t npending;
};

static uint32_t cache_hash(const char *name, uint16_t type)
{
	uint32_t h = 2166136261u ^ type;
	for (; *name; name++)
		h = (h ^ (unsigned char)(*name | 0x20)) * 16777619u;
	return h % CACHE_BUCKETS;
}

static void cache_drop(struct dns *d, struct cache_entry *e)
{
	struct cache_entry **p = &d->buckets[cache_hash(e->name, e->type)];
	while (*p != e)
		p = &(*p)->bnext;
	*p = e->bnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		d->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		d->newest = e->older;
	d->cached--;
	dns_answer_clear(&e->answer);
	free(e->name);
	free(e);
}

static struct cache_entry *cache_find(struct dns *d, const char *name, uint16_t type)
{
	struct cache_entry *e = d->buckets[cache_hash(name, type)];
	for (; e; e = e->bnext) {
		if (e->type == type && dns_name_eq(e->name, name)) {
			if (e->expires <= now_ms()) {
				cache_drop(d, e);
				return NULL;
			}
			return e;
		}
	}
	return NULL;
}

static void cache_put(struct dns *d, const char *name, uint16_t type, enum dns_status status, int secure,
		      const struct dns_answer *a)
{
	uint32_t ttl = status == DNS_ANSWER ? a->ttl : a->neg_ttl;
	struct cache_entry *e;

	if (ttl == 0 || d->cache_max == 0 || !(status == DNS_ANSWER || status == DNS_NXDOMAIN || status == DNS_NODATA))
		return;
	if (ttl > CACHE_MAX_TTL)
		ttl = CACHE_MAX_TTL;
	if ((e = cache_find(d, name, type)))
		cache_drop(d, e);
	while (d->cached >= d->cache_max)
		cache_drop(d, d->oldest);
	e = xcalloc(1, sizeof *e);
	e->name = xstrdup(name);
	e->type = type;
	e->status = status;
	e->secure = secure;
	dns_answer_copy(&e->answer, a);
	e->expires = now_ms() + (uint64_t)ttl * 1000;
	e->bnext = d->buckets[cache_hash(name, type)];
	d->buckets[cache_hash(name, type)] = e;
	e->older = d->newest;
	if (d->newest)
		d->newest->newer = e;
	else
		d->oldest = e;
	d->newest = e;
	d->cached++;
}

int dns_cached(struct dns *d, const char *name, uint16_t type, struct dns_result *out)
{
	struct cache_entry *e = cache_find(d, name, type);
	if (!e) {
		d->misses++;
		return 0;
	}
	d->hits++;
	out->status = e->status;
	out->secure = e->secure;
	out->answer = &e->answer;
	out->why = NULL;
	return 1;
}

static void unlink_query(struct dns *d, struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		d->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
}

static void query_free(struct dns_query *q)
{
	if (q->timer)
		event_free(q->timer);
	dns_answer_clear(&q->answer);
	free(q->name);
	free(q);
}

static void start_waiting(struct dns *d);

static void finish(struct dns_query *q)
{
	struct dns *d = q->dns;
	struct dns_result res = { q->status, q->secure, &q->answer, q->why };
	if (q->running)
		d->inflight--;
	unlink_query(d, q);
	d->npending--;
	q->cb(q->arg, &res);
	query_free(q);
	start_waiting(d);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	(void)fd;
	(void)what;
	if (!q->done) {
		/* The timeout: unbound gave no answer in time. */
		if (q->ub_id)
			ub_cancel(q->dns->ub, q->ub_id);
		q->ub_id = 0;
		q->status = DNS_TIMEOUT;
		q->why = "timeout";
		q->done = 1;
	}
	finish(q);
}

static void schedule_finish(struct dns_query *q)
{
	struct timeval zero = { 0, 0 };
	q->done = 1;
	evtimer_add(q->timer, &zero);
}

static void on_answer(void *arg, int err, void *pkt, int len, int sec, char *why_bogus, int ratelimited)
{
	struct dns_query *q = arg;
	(void)ratelimited;
	q->ub_id = 0;
	if (q->done)
		return;
	if (err || !pkt) {
		q->status = DNS_TEMPFAIL;
		q->why = "resolver error";
	} else if (sec == 1) {
		q->status = DNS_TEMPFAIL;
		q->why = "DNSSEC bogus";
		if (why_bogus)
			log_debug(NULL, "event=dns_bogus name=%s why=\"%s\"", q->name, why_bogus);
	} else if (dns_packet_parse(pkt, (size_t)len, q->name, q->type, &q->answer) < 0) {
		q->status = DNS_TEMPFAIL;
		q->why = "malformed answer";
	} else if (q->answer.cname_loop) {
		q->status = DNS_TEMPFAIL;
		q->why = "CNAME loop";
	} else if (q->answer.rcode == 3) {
		q->status = DNS_NXDOMAIN;
	} else if (q->answer.rcode != 0) {
		q->status = DNS_TEMPFAIL;
		q->why = q->answer.rcode == 2 ? "SERVFAIL" : q->answer.rcode == 5 ? "REFUSED" : "error rcode";
	} else {
		q->status = q->answer.nrrs ? DNS_ANSWER : DNS_NODATA;
	}
	q->secure = sec == 2;
	cache_put(q->dns, q->name, q->type, q->status, q->secure, &q->answer);
	evtimer_del(q->timer);
	schedule_finish(q);
}

static void start(struct dns_query *q)
{
	struct dns *d = q->dns;
	struct timeval tv = { (time_t)(d->timeout_ms / 1000), (suseconds_t)((d->timeout_ms % 1000) * 1000) };
	int rc;

	q->running = 1;
	d->inflight++;
	evtimer_add(q->timer, &tv);
	rc = ub_resolve_event(d->ub, q->name, q->type, 1, q, on_answer, &q->ub_id);
	if (rc != 0 && !q->done) {
		q->status = DNS_TEMPFAIL;
		q->why = "resolver refused the query";
		evtimer_del(q->timer);
		schedule_finish(q);
	}
}

static void start_waiting(struct dns *d)
{
	/* Oldest first: the list is newest-first, so take the last waiting. */
	while (d->inflight < d->max_inflight) {
		struct dns_query *oldest = NULL;
		for (struct dns_query *q = d->queries; q; q = q->next)
			if (!q->running && !q->done)
				oldest = q;
		if (!oldest)
			return;
		start(oldest);
	}
}

static int add_resolvers(struct ub_ctx *ub, const char *spec, char *err, size_t errsize)
{
	char *copy = xstrdup(spec), *save = NULL;
	int rc = 0;
	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		char addr[128];
		const char *host = tok, *port = NULL;
		char hbuf[64];
		if (tok[0] == '[') {
			char *end = strchr(tok, ']');
			if (!end) {
				rc = -1;
				break;
			}
			snprintf(hbuf, sizeof hbuf, "%.*s", (int)(end - tok - 1), tok + 1);
			host = hbuf;
			if (end[1] == ':')
				port = end + 2;
		} else if (strchr(tok, ':') && strchr(tok, ':') == strrchr(tok, ':')) {
			char *colon = strchr(tok, ':');
			snprintf(hbuf, sizeof hbuf, "%.*s", (int)(colon - tok), tok);
			host = hbuf;
			port = colon + 1;
		}
		snprintf(addr, sizeof addr, port ? "%s@%s" : "%s", host, port);
		if (ub_ctx_set_fwd(ub, addr) != 0) {
			snprintf(err, errsize, "bad resolver address %s", tok);
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc;
}

struct dns *dns_new(struct event_base *base, const struct dns_options *opt, char *err, size_t errsize)
{
	struct dns *d = xcalloc(1, sizeof *d);
	int rc;

	d->base = base;
	d->timeout_ms = opt->timeout_ms ? opt->timeout_ms : 5000;
	d->max_inflight = opt->max_inflight ? opt->max_inflight : 256;
	d->cache_max = opt->cache_entries ? opt->cache_entries : 10000;
	d->ub = ub_ctx_create_event(base);
	if (!d->ub) {
		snprintf(err, errsize, "cannot create the resolver");
		free(d);
		return NULL;
	}
	if (!opt->resolver || !strcmp(opt->resolver, "system")) {
		rc = ub_ctx_resolvconf(d->ub, "/etc/resolv.conf");
		if (rc != 0) {
			snprintf(err, errsize, "cannot read /etc/resolv.conf: %s", ub_strerror(rc));
			goto fail;
		}
	} else if (add_resolvers(d->ub, opt->resolver, err, errsize) < 0) {
		goto fail;
	}
	/* libunbound answers test. and home.arpa. itself (RFC 6761, RFC 8375)
	 * with NXDOMAIN. Sites use them with their own DNS, and our tests do:
	 * let the resolvers we forward to answer them. */
	ub_ctx_set_option(d->ub, "local-zone:", "test. transparent");
	ub_ctx_set_option(d->ub, "local-zone:", "home.arpa. transparent");
	/* Likewise the reverse zones of private and documentation networks:
	 * the client of an SMTP session may well be on one, and the site's
	 * resolver may know its PTR (SPF's ptr and %{p} need it). */
	ub_ctx_set_option(d->ub, "unblock-lan-zones:", "yes");
	ub_ctx_set_option(d->ub, "insecure-lan-zones:", "yes");
	if (opt->trust_anchor && *opt->trust_anchor) {
		rc = ub_ctx_add_ta_file(d->ub, opt->trust_anchor);
		if (rc != 0) {
			snprintf(err, errsize, "cannot load trust anchor %s: %s", opt->trust_anchor, ub_strerror(rc));
			goto fail;
		}
	}
	return d;
fail:
	ub_ctx_delete(d->ub);
	free(d);
	return NULL;
}

uint64_t dns_query(struct dns *d, const char *name, uint16_t type, dns_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof *q);
	q->dns = d;
	q->id = ++d->next_id;
	q->name = xstrdup(name);
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->timer = evtimer_new(d->base, on_timer, q);
	q->next = d->queries;
	if (d->queries)
		d->queries->prev = q;
	d->queries = q;
	d->npending++;
	{
		struct cache_entry *e = cache_find(d, name, type);
		if (e) {
			/* Answered from our cache, still through the loop. */
			d->hits++;
			q->status = e->status;
			q->secure = e->secure;
			dns_answer_copy(&q->answer, &e->answer);
			schedule_finish(q);
			return q->id;
		}
	}
	if (d->inflight < d->max_inflight)
		start(q);
	return q->id;
}

struct event_base *dns_event_base(const struct dns *d)
{
	return d->base;
}

void *dns_cancel(struct dns *d, uint64_t id)
{
	for (struct dns_query *q = d->queries; q; q = q->next) {
		void *arg = q->arg;
		if (q->id != id)
			continue;
		if (q->ub_id)
			ub_cancel(d->ub, q->ub_id);
		if (q->running)
			d->inflight--;
		unlink_query(d, q);
		d->npending--;
		query_free(q);
		start_waiting(d);
		return arg;
	}
	return NULL;
}

size_t dns_pending(const struct dns *d)
{
	return d->npending;
}

void dns_free(struct dns *d)
{
	if (!d)
		return;
	while (d->queries) {
		struct dns_query *q = d->queries;
		if (q->ub_id)
			ub_cancel(d->ub, q->ub_id);
		unlink_query(d, q);
		query_free(q);
	}
	while (d->oldest)
		cache_drop(d, d->oldest);
	ub_ctx_delete(d->ub);
	free(d);
}

const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_ANSWER:
		return "answer";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_TIMEOUT:
		return "timeout";
	}
	return "?";
}

const char *dns_type_name(uint16_t type)
{
	switch (type) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_MX:
		return "MX";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_PTR:
		return "PTR";
	case DNS_T_CNAME:
		return "CNAME";
	case DNS_T_TLSA:
		return "TLSA";
	case DNS_T_SPF:
		return "SPF";
	case DNS_T_NS:
		return "NS";
	case DNS_T_SOA:
		return "SOA";
	}
	return "TYPE?";
}
