/*
 * route: where mail for a recipient domain goes, decided once per
 * (message, recipient domain): direct to the domain's MX hosts, or through
 * the configured relay. Pure functions, unit-tested; the DNS part (MX and
 * address lookups) is in remote.c.
 *
 * The decision, in order (the first that applies wins; its reason is kept
 * in the delivery ledger):
 *   1. [relay] domains names the domain (or a parent of it, or *):
 *      relay, reason "domain";
 *   2. an MX host of the domain matches [relay] mx_patterns:
 *      relay, reason "mx_pattern PATTERN";
 *   2b. a route learned from a reputation refusal for the provider (or
 *      domain) is still valid (adaptive routing, in remote.c over the
 *      store): relay, reason "learned: REPLY";
 *   3. otherwise direct, reason "mx" (or "implicit_mx" when the domain has
 *      no MX record and its own address is used, RFC 5321 section 5.1).
 * Later route sources (MTA-STS) slot in before 3.
 *
 * Provider: the big mailbox providers are recognised from the MX host
 * names (Gmail, Outlook, Yahoo, iCloud), so that the ledger can say how
 * each of them treats our mail.
 */
#ifndef POSTERN_DELIVER_ROUTE_H
#define POSTERN_DELIVER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct config;

/* "gmail", "outlook", "yahoo", "icloud" or "other". */
const char *route_provider(const char *mx_host);

/* Whether host (lower case, no final dot) matches pattern: "*.d" and ".d"
 * match every name below d; anything else matches only itself. */
int route_mx_match(const char *pattern, const char *host);

/* Whether domain is listed: "*" lists everything, and a domain lists its
 * subdomains. */
int route_domain_listed(char *const *list, size_t n, const char *domain);

struct route_mx {
	char *host;
	unsigned pref;
};
/* Sorts by preference, the hosts of equal preference in random order
 * (RFC 5321 section 5.1). rnd returns random numbers (tests pass their own). */
void route_mx_order(struct route_mx *mx, size_t n, uint32_t (*rnd)(void));
/* RFC 7505: one MX, preference 0, exchange "." (the root). */
int route_is_null_mx(const struct route_mx *mx, size_t n);

enum route_kind { ROUTE_DIRECT, ROUTE_RELAY };
/* Step 2 of the decision for a domain whose MX hosts are known; returns
 * ROUTE_RELAY and the matching pattern in *why, or ROUTE_DIRECT. */
enum route_kind route_by_mx(const struct config *cfg, const struct route_mx *mx, size_t n, const char **why);

#endif
