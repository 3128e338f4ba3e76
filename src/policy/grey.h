/*
 * policy/grey: graylisting (RFC 6647) that never delays real mail.
 *
 * The triplet is (client, sender, recipient). The client is the client's
 * network block (/24 for IPv4, /64 for IPv6, configurable), or, when SPF
 * passes for the sender's domain, that domain: a provider that retries
 * from another address of its pool is then recognised on its first retry.
 * The sender is normalised so that per-attempt tags do not defeat the
 * triplet: lower case, a BATV "prvs=TAG=" prefix removed, every run of
 * digits in the local part replaced by "#" (bounce addresses that number
 * each attempt).
 *
 * A new triplet is deferred for min_delay; a retry after that and within
 * retry_window passes, and the triplet is remembered until idle for
 * expire. A retry later than retry_window starts again (RFC 6647 section
 * 2.2: the sender did not look like a retrying MTA).
 *
 * Allow entries: a client block or an SPF-passing sender domain that had
 * auto_allow_after messages accepted is not delayed again until idle for
 * auto_allow_expire; manual entries (`postern greylist allow`) never
 * expire.
 *
 * grey_judge() and the key helpers are pure; the others read and write the
 * store (single indexed rows: bounded small, on the event loop). A store
 * error lets the mail through (fail open: graylisting is an optimisation,
 * losing mail is not).
 */
#ifndef POSTERN_POLICY_GREY_H
#define POSTERN_POLICY_GREY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct config;

struct grey_params {
	int64_t min_delay, retry_window, expire; /* ms */
	unsigned ipv4_prefix, ipv6_prefix;
	int64_t auto_allow_after;  /* 0: never */
	int64_t auto_allow_expire; /* ms */
};

void grey_params_from_config(const struct config *c, struct grey_params *p);

/* The network block of ip, e.g. "192.0.2.0/24". Returns 0, or -1 if ip does
 * not parse. */
int grey_client_block(const char *ip, unsigned v4, unsigned v6, char *out, size_t n);
/* The normalised sender (see above) into out. */
void grey_normalise_sender(const char *sender, char *out, size_t n);

enum grey_verdict { GREY_PASS, GREY_DEFER };

/* Pure: the verdict for a triplet attempted at now; rec holds what the
 * store had (found set) and is updated to what it should hold next.
 * *retry_in: for GREY_DEFER, ms until a retry can pass. */
enum grey_verdict grey_judge(struct store_grey *rec, int found, int64_t now, const struct grey_params *p,
			     int64_t *retry_in);

/* grey_judge over the store, which is updated. Returns the verdict; a store
 * failure is logged and passes. */
enum grey_verdict grey_check(struct store *st, const char *client, const char *sender, const char *rcpt, int64_t now,
			     const struct grey_params *p, int64_t *retry_in);
/* Whether key (a block or a domain) is allowed: manual, or auto-allowed and
 * not idle for too long. */
int grey_allowed(struct store *st, const char *key, int64_t now, const struct grey_params *p);
/* Counts one accepted message for key. Once key is allowed, its idle
 * clock is refreshed at most once a minute (no write per message). */
void grey_count(struct store *st, const char *key, int64_t now, const struct grey_params *p);

#endif
