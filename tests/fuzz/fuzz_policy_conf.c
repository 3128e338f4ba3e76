/*
 * Fuzz target: the [dnsbl] zone-list and [policy] weights parsers
 * (src/policy/conf.c). The first byte picks blocklist, allowlist or
 * weights. Invariants: a parse either fails with an error text or yields
 * valid zones (lower-case names with a dot, at most POLICY_MAX_ZONES, rules
 * with lo <= hi and weights within bounds); classification of any code
 * never yields a weight outside the bounds.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, err[300] = "";
	int mode;

	if (size < 1)
		return 0;
	mode = data[0] % 3;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (mode < 2) {
		struct policy_zones z;
		if (policy_zones_parse(text, mode, &z, err, sizeof err) < 0) {
			if (!*err || z.n)
				abort();
		} else {
			if (z.n > POLICY_MAX_ZONES)
				abort();
			for (size_t i = 0; i < z.n; i++) {
				double w;
				if (!strchr(z.zones[i].name, '.') || z.zones[i].nrules > POLICY_MAX_RULES)
					abort();
				for (const char *p = z.zones[i].name; *p; p++)
					if (isupper((unsigned char)*p))
						abort();
				for (size_t r = 0; r < z.zones[i].nrules; r++)
					if (z.zones[i].rules[r].lo > z.zones[i].rules[r].hi)
						abort();
				for (uint32_t code = 0x7f000000u; code < 0x7f000010u; code++) {
					policy_zone_classify(&z.zones[i], code, &w);
					if (w > POLICY_MAX_WEIGHT || w < -POLICY_MAX_WEIGHT)
						abort();
				}
			}
		}
		policy_zones_clear(&z);
	} else {
		struct policy_weights w;
		policy_weights_default(&w);
		if (policy_weights_parse(text, &w, err, sizeof err) < 0 && !*err)
			abort();
		for (size_t i = 0; i < CHECK_COUNT; i++)
			if (w.w[i] > POLICY_MAX_WEIGHT || w.w[i] < -POLICY_MAX_WEIGHT)
				abort();
	}
	free(text);
	return 0;
}
