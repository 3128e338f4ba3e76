/*
 * Fuzz target: the self-test grader (src/doctor/selftest.c) over an
 * arbitrary header block, and the RFC 5322 date parser over arbitrary text.
 * Invariants (abort() when broken): the score is within 0..10; every item
 * that deducts points has a fix and every passed item has none; a date that
 * parses parses again to the same time; the JSON and text writers run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/selftest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct selftest_facts f;
	struct selftest_grade g;
	int64_t t;
	FILE *null = fopen("/dev/null", "w");

	memcpy(text, data, size);
	text[size] = '\0';
	t = selftest_parse_date(text);
	if (t != selftest_parse_date(text))
		abort();

	memset(&f, 0, sizeof f);
	f.header = text;
	f.header_len = size;
	f.now = 1796025600;
	f.spf = size & 1 ? "pass" : "fail";
	f.helo = size & 2 ? text : "mail.example.org";
	f.ptr = size & 4 ? "mail.example.org" : NULL;
	selftest_grade(&f, &g);
	if (g.score < 0 || g.score > 10)
		abort();
	for (size_t i = 0; i < g.nitems; i++)
		if ((g.items[i].points > 0) != (g.items[i].fix != NULL) || g.items[i].points < 0)
			abort();
	if (null) {
		selftest_write_json(null, "tok", &g, &f);
		selftest_write_text(null, &g, &f);
		fclose(null);
	}
	selftest_grade_clear(&g);
	free(text);
	return 0;
}
