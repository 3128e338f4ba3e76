/*
 * Fuzz target: the parsers of adaptive routing and pacing
 * (src/deliver/reputation.c, src/deliver/pacing.c). The input is a pattern
 * list, a pacing rule list and a warm-up schedule at once; whatever
 * parses must respect the bounds (pattern count and text length, rule
 * count, positive numbers), every pattern must be matched by the reply
 * built from its own text, and matching arbitrary bytes as a reply must
 * not crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/pacing.h"
#include "deliver/reputation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), err[300];
	struct reputation_list l;
	struct pacing_rule rules[PACING_MAX_RULES];
	size_t n;
	uint64_t *w;

	memcpy(s, data, size);
	s[size] = '\0';
	if (reputation_parse(s, &l, err, sizeof err) == 0) {
		if (l.n > REPUTATION_MAX_PATTERNS)
			abort();
		for (size_t i = 0; i < l.n; i++) {
			const struct reputation_pattern *p = &l.p[i];
			char reply[600], st[16];
			int code = p->code ? p->code : p->status[0] == '4' ? 421 : 550;
			if (strlen(p->text) > REPUTATION_TEXT_MAX)
				abort();
			/* a prefix pattern "5.7." stands for any 5.7.x, "*" for any status of the code's class */
			if (!strcmp(p->status, "*"))
				snprintf(st, sizeof st, "%d.7.1", code / 100);
			else
				snprintf(st, sizeof st, "%s%s", p->status, p->status[strlen(p->status) - 1] == '.' ? "1" : "");
			snprintf(reply, sizeof reply, "%d %s %s", code, st, p->text);
			if (!reputation_match(&l, code, st, reply))
				abort();
		}
		reputation_match(&l, 550, NULL, s);
		reputation_match(&l, 421, "", s);
		reputation_list_free(&l);
	}
	if (pacing_parse_rules(s, 1, rules, &n, err, sizeof err) == 0) {
		if (n > PACING_MAX_RULES)
			abort();
		for (size_t i = 0; i < n; i++)
			if (rules[i].n == 0)
				abort();
	}
	if (pacing_parse_warm_up(s, &w, &n, err, sizeof err) == 0) {
		if (n > PACING_MAX_DAYS || (n && !w))
			abort();
		for (size_t i = 0; i < n; i++)
			if (w[i] == 0)
				abort();
		free(w);
	}
	free(s);
	return 0;
}
