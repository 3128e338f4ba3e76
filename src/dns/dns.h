/*
 * dns: asynchronous DNS on the event loop, through libunbound.
 *
 * libunbound runs inside our libevent loop (ub_ctx_create_event): no
 * threads, no forked helper. It forwards to the configured resolvers (or
 * those in /etc/resolv.conf), retries, falls back to TCP on truncation,
 * validates DNSSEC when a trust anchor is configured, and keeps a cache that
 * honours TTLs and negative TTLs. This wrapper adds what postern needs on
 * top: a per-query timeout, a bound on queries in flight (the rest wait in
 * FIFO order), answers parsed by packet.c, and results that say which of
 * answer / NXDOMAIN / no data / temporary failure happened and whether the
 * answer was validated.
 *
 * Callbacks always run from the event loop, never from inside dns_query().
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "dns/packet.h"

struct event_base;
struct dns;

enum dns_status {
	DNS_ANSWER,   /* at least one record of the asked type */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_NODATA,   /* the name exists, without records of that type */
	DNS_TEMPFAIL, /* SERVFAIL, refused, malformed answer, DNSSEC bogus */
	DNS_TIMEOUT,  /* no answer within the timeout */
};

struct dns_result {
	enum dns_status status;
	int secure; /* DNSSEC-validated */
	const struct dns_answer *answer; /* records; never NULL */
	const char *why; /* for TEMPFAIL/TIMEOUT: a short reason */
};

struct dns_options {
	const char *resolver;     /* "system", or "ADDR[:PORT], ..." */
	uint64_t timeout_ms;      /* per query */
	const char *trust_anchor; /* root key file; "" disables validation */
	unsigned max_inflight;
	size_t cache_entries; /* our answer cache; 0 means the default (10000) */
};

typedef void (*dns_cb)(void *arg, const struct dns_result *res);

/* Returns NULL with a message in err on failure. */
struct dns *dns_new(struct event_base *base, const struct dns_options *opt, char *err, size_t errsize);
/* Starts a lookup; cb runs later with the result (valid only during the
 * call). Returns a query id for dns_cancel(). */
uint64_t dns_query(struct dns *d, const char *name, uint16_t type, dns_cb cb, void *arg);
/* Looks (name, type) up in our answer cache only. Returns 1 and fills out
 * (out->answer stays valid until the next call into this module), or 0. */
int dns_cached(struct dns *d, const char *name, uint16_t type, struct dns_result *out);
/* After this, the query's callback never runs. Returns the query's arg
 * (for the caller to free), or NULL for an unknown id. */
void *dns_cancel(struct dns *d, uint64_t id);
struct event_base *dns_event_base(const struct dns *d);
/* Queries started and not yet answered or cancelled. */
size_t dns_pending(const struct dns *d);
/* Cancels everything (no callbacks) and frees. */
void dns_free(struct dns *d);

const char *dns_status_name(enum dns_status s);
const char *dns_type_name(uint16_t type);

#endif
