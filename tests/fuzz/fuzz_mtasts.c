/*
 * Fuzz target: the MTA-STS TXT record and policy parsers
 * (src/deliver/mtasts.c). Invariants (abort() when broken): a record that
 * parses has an id of 1 to 32 letters and digits; a policy that parses has
 * a mode in range, max_age at most a year, at most MTASTS_MAX_MX patterns,
 * each non-empty and lower case, and mx patterns unless mode is none; every
 * pattern matches a host made from it (with "x." for a wildcard); parsing
 * twice gives the same.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char id[MTASTS_ID_MAX + 1], why[128];
	struct mtasts_policy p, q;

	if (mtasts_record_parse(text, size, id, sizeof id, why, sizeof why) == 0) {
		size_t n = strlen(id);
		if (n == 0 || n > MTASTS_ID_MAX)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)id[i]))
				abort();
	}
	if (mtasts_policy_parse(text, size, &p, why, sizeof why) == 0) {
		if (p.mode > MTASTS_ENFORCE || p.max_age > MTASTS_MAX_AGE || p.nmx > MTASTS_MAX_MX)
			abort();
		if (p.mode != MTASTS_NONE && p.nmx == 0)
			abort();
		for (size_t i = 0; i < p.nmx; i++) {
			char host[300];
			if (!p.mx[i][0])
				abort();
			for (const char *c = p.mx[i]; *c; c++)
				if (isupper((unsigned char)*c))
					abort();
			if (!strncmp(p.mx[i], "*.", 2))
				snprintf(host, sizeof host, "x.%s", p.mx[i] + 2);
			else
				snprintf(host, sizeof host, "%s", p.mx[i]);
			if (!mtasts_mx_match(&p, host))
				abort();
		}
		if (mtasts_policy_parse(text, size, &q, why, sizeof why) != 0 || q.nmx != p.nmx || q.mode != p.mode ||
		    q.max_age != p.max_age)
			abort();
		mtasts_policy_clear(&q);
		mtasts_policy_clear(&p);
	}
	return 0;
}
