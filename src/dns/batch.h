/*
 * batch: several DNS questions asked at once, for a check that needs every
 * answer before it can go on: the SPF and DMARC replays (ask what the last
 * run needed, run again when all is in) and the DKIM and ARC key lookups.
 *
 * Each answer goes to the owner's answer callback with the tag it was asked
 * under; once dns_batch_wait() has been called and nothing is outstanding,
 * done runs. Callbacks always run from the event loop, never inside a call
 * into this module (dns_batch_cached() excepted: it answers on the spot, by
 * design). done may free the batch; nothing touches it after done returns.
 */
#ifndef POSTERN_DNS_BATCH_H
#define POSTERN_DNS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

struct dns_batch;
typedef void (*dns_batch_answer_cb)(void *owner, size_t tag, const struct dns_result *res);
typedef void (*dns_batch_done_cb)(void *owner);

/* The resolver is borrowed and must outlive the batch. */
struct dns_batch *dns_batch_new(struct dns *dns, dns_batch_answer_cb answer, dns_batch_done_cb done, void *owner);
/* Answers (name, type) from our answer cache, calling answer inside this
 * call: 1. Not in the cache: 0, and nothing happens. */
int dns_batch_cached(struct dns_batch *b, const char *name, uint16_t type, size_t tag);
/* Asks (name, type); answer(owner, tag, result) runs when it comes. */
void dns_batch_ask(struct dns_batch *b, const char *name, uint16_t type, size_t tag);
/* Questions asked and not yet answered. */
size_t dns_batch_outstanding(const struct dns_batch *b);
/* done runs once nothing is outstanding: after the last answer, or, when
 * nothing is outstanding now, from the loop right after this call. Once. */
void dns_batch_wait(struct dns_batch *b);
/* Cancels what is outstanding (no callback runs after) and frees. NULL is
 * fine. */
void dns_batch_free(struct dns_batch *b);

#endif
