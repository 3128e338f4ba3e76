/*
 * tlsrpt: the SMTP TLS report (RFC 8460 section 4) parsed from JSON into
 * the store's report struct.
 *
 * Pure: bytes in, report or reason out. Parsed with jansson, which checks
 * UTF-8 and refuses duplicate keys here; before it runs, a scan refuses
 * nesting deeper than TLSRPT_MAX_DEPTH (a report needs 5), so no hostile
 * document drives a parser's recursion deep. Policies plus failure details
 * above max_records, strings longer than TLSRPT_MAX_FIELD, and counts that
 * are not non-negative integers are refused.
 *
 * Required (RFC 8460 section 4.4): organization-name, date-range with
 * start-datetime and end-datetime (RFC 3339), report-id, policies; in each
 * policy: policy.policy-type, policy.policy-domain, and the summary's two
 * session counts. Unknown members are ignored.
 */
#ifndef POSTERN_REPORT_TLSRPT_H
#define POSTERN_REPORT_TLSRPT_H

#include <stddef.h>

#include "store/store.h"

#define TLSRPT_MAX_DEPTH 8
#define TLSRPT_MAX_FIELD 4096

struct tlsrpt_report {
	struct store_tls_report r; /* what is stored; points into this object */
	struct store_tls_policy *policies;
	struct store_tls_failure *failures; /* all policies' failure details */
	char **strings;
	size_t nstrings, capstrings;
};

/* Returns the report (free with tlsrpt_report_free), or NULL with the reason
 * in why. */
struct tlsrpt_report *tlsrpt_parse(const char *json, size_t len, size_t max_records, char *why, size_t whysize);
void tlsrpt_report_free(struct tlsrpt_report *r);

/* RFC 3339 date-time ("2016-04-01T00:00:00Z", "...+02:00", fractions) to
 * Unix time. 0 or -1. */
int tlsrpt_parse_datetime(const char *s, int64_t *out);

#endif
