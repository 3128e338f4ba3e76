/*
 * policy/client: pure helpers for the client checks: the reversed names
 * DNSBL and PTR lookups ask for, and HELO syntax (RFC 5321 section 4.1.1.1:
 * a fully qualified domain name, or an address literal) and "claims to be
 * us" checks. No I/O; policy.c runs the lookups.
 */
#ifndef POSTERN_POLICY_CLIENT_H
#define POSTERN_POLICY_CLIENT_H

#include <stddef.h>

struct config;

/* "4.3.2.1.SUFFIX" for 1.2.3.4, or the 32 nibbles for IPv6 (RFC 3596,
 * RFC 5782). suffix e.g. "in-addr.arpa", "ip6.arpa" or a DNSBL zone; NULL
 * picks in-addr.arpa / ip6.arpa. Returns 0, or -1 if ip does not parse or
 * out is too small. */
int policy_reverse_name(const char *ip, const char *suffix, char *out, size_t n);

enum helo_kind { HELO_NAME, HELO_LITERAL, HELO_BAD };
/* Classifies a HELO argument. For HELO_LITERAL, the address (without
 * brackets and "IPv6:") is written to addr (at least 46 bytes). */
enum helo_kind policy_helo_kind(const char *helo, char *addr, size_t n);
/* Whether helo names us: our host name or one of our domains, or a literal
 * of the address the client connected to (local_ip), or of a loopback
 * address while the client is not on loopback. */
int policy_helo_is_ours(const char *helo, const struct config *c, const char *local_ip, const char *client_ip);
/* Whether two textual addresses are the same address. */
int policy_same_ip(const char *a, const char *b);

#endif
