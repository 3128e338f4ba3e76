/*
 * mtasts: SMTP MTA Strict Transport Security (RFC 8461).
 *
 * A domain announces a policy with a TXT record at _mta-sts.DOMAIN
 * ("v=STSv1; id=..."), and serves it over HTTPS at
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt: a mode (enforce, testing,
 * none), the MX host patterns a sender may deliver to, and how long to
 * remember it. In enforce mode a sender delivers only to a listed MX, over
 * TLS with a certificate valid for that name.
 *
 * The parsers are pure (and fuzzed). The fetch is blocking, for a worker
 * thread or the command line: HTTPS only, no redirects (section 3.3), a
 * bounded body and time, the certificate checked against the system's CAs
 * (or a given CA file).
 */
#ifndef POSTERN_MTASTS_H
#define POSTERN_MTASTS_H

#include <stddef.h>
#include <stdint.h>

#define MTASTS_MAX_POLICY 65536      /* bytes of policy we read (section 3.3 suggests a limit) */
#define MTASTS_MAX_MX 64             /* mx: lines we keep */
#define MTASTS_MAX_AGE 31557600      /* section 3.2: at most one year */
#define MTASTS_ID_MAX 32

/* Parses the TXT record. 0 and the id (at most 32 letters and digits) on
 * success; -1 with the reason when it is not a valid STSv1 record. */
int mtasts_record_parse(const char *txt, size_t len, char *id, size_t idsize, char *why, size_t whysize);

enum mtasts_mode { MTASTS_NONE, MTASTS_TESTING, MTASTS_ENFORCE };
const char *mtasts_mode_name(enum mtasts_mode m);

struct mtasts_policy {
	enum mtasts_mode mode;
	char **mx; /* lower case, as given: "mail.example.org" or "*.example.org" */
	size_t nmx;
	uint32_t max_age;
};

/* Parses a policy body (section 3.2: "key: value" lines ending in CRLF or
 * LF; unknown keys ignored; version, mode and max_age required, mx required
 * unless mode is none). 0, or -1 with the reason; out holds nothing to free
 * after -1. */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *out, char *why, size_t whysize);
void mtasts_policy_clear(struct mtasts_policy *p);

/* Whether an MX host name matches one of the policy's patterns (section
 * 4.1: exact, or "*." matching exactly one leftmost label; case-insensitive,
 * trailing dot ignored). */
int mtasts_mx_match(const struct mtasts_policy *p, const char *mx_host);

/*
 * Fetches https://mta-sts.DOMAIN/.well-known/mta-sts.txt. connect_addr, if
 * not NULL, is the address to connect to (resolved by our own resolver);
 * ca_file, if not NULL, replaces the system's CAs. Returns 0 with the body
 * (newly allocated, NUL-terminated) and its length, or -1 with the reason
 * (HTTP status, redirect, TLS failure, too large, timeout).
 */
int mtasts_fetch(const char *domain, const char *connect_addr, const char *ca_file, long timeout_ms, char **body,
		 size_t *len, char *why, size_t whysize);

#endif
