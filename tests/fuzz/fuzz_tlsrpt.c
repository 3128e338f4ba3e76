/*
 * Fuzz target: the SMTP TLS report parser (src/report/tlsrpt.c, jansson
 * underneath) and its RFC 3339 date-time parser. Invariants checked
 * (abort() when broken):
 *  - a report parsed has a non-empty organization and report id, at most
 *    MAX_RECORDS policies plus failure details, every count >= 0, every
 *    policy a domain and every failure a result type;
 *  - a refusal always says why;
 *  - a date-time that parses, printed back in UTC and parsed again, gives
 *    the same time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 8

static void check_datetime(const uint8_t *data, size_t size)
{
	char s[64], back[64];
	int64_t t, t2;
	struct tm tm;
	time_t tt;
	if (size >= sizeof s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (tlsrpt_parse_datetime(s, &t) < 0)
		return;
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm))
		return;
	strftime(back, sizeof back, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
		return;
	if (tlsrpt_parse_datetime(back, &t2) < 0 || t2 != t)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[300] = "";
	struct tlsrpt_report *r;
	size_t n = 0;

	check_datetime(data, size);
	r = tlsrpt_parse((const char *)data, size, MAX_RECORDS, why, sizeof why);
	if (!r) {
		if (!why[0])
			abort();
		return 0;
	}
	if (!r->r.org_name || !*r->r.org_name || !r->r.report_id || !*r->r.report_id)
		abort();
	for (size_t i = 0; i < r->r.npolicies; i++) {
		const struct store_tls_policy *p = &r->r.policies[i];
		n += 1 + p->nfailures;
		if (!p->domain || p->success < 0 || p->failure < 0)
			abort();
		for (size_t k = 0; k < p->nfailures; k++)
			if (!p->failures[k].result_type || p->failures[k].count < 0)
				abort();
	}
	if (n > MAX_RECORDS)
		abort();
	tlsrpt_report_free(r);
	return 0;
}
