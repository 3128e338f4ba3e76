/*
 * Unit tests for the JSON reader in src/lib/json.c: RFC 8259 values and
 * escapes (surrogate pairs; \u0000 and lone surrogates as U+FFFD), the
 * strict grammar (each malformed text refused with a reason), the depth
 * bound, and a round trip through the writer.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "unit.h"

static struct json *parse(const char *s)
{
	char err[128];
	struct json *v = json_parse(s, strlen(s), err, sizeof err);
	if (!v)
		fprintf(stderr, "  json_parse(%s): %s\n", s, err);
	return v;
}

TEST(json_values)
{
	struct json *v = parse(" {\"a\": [1, -2.5e1, true, false, null, \"x\"], \"b\": {\"c\": \"d\"}, \"a2\": 0} ");
	CHECK(v != NULL);
	CHECK_INT(json_len(v), 3);
	CHECK_INT(json_len(json_get(v, "a")), 6);
	CHECK(json_num(json_at(json_get(v, "a"), 0), 0) == 1);
	CHECK(json_num(json_at(json_get(v, "a"), 1), 0) == -25);
	CHECK(json_at(json_get(v, "a"), 2)->type == JSON_BOOL && json_at(json_get(v, "a"), 2)->boolean == 1);
	CHECK(json_at(json_get(v, "a"), 3)->boolean == 0);
	CHECK(json_at(json_get(v, "a"), 4)->type == JSON_NULL);
	CHECK_STR(json_str(json_at(json_get(v, "a"), 5)), "x");
	CHECK_STR(json_str(json_get(json_get(v, "b"), "c")), "d");
	CHECK(json_at(json_get(v, "a"), 6) == NULL);
	CHECK(json_str(json_get(v, "missing")) == NULL);
	CHECK(json_num(json_get(v, "b"), 42) == 42);
	json_free(v);
}

TEST(json_string_escapes)
{
	struct json *v = parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00 \\u0000 \\ud800x\"");
	CHECK(v != NULL);
	if (v)
		CHECK_STR(v->string, "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd \xef\xbf\xbdx");
	json_free(v);
}

TEST(json_rejects_malformed)
{
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", ".5", "1e", "tru", "nul",
		"\"abc", "\"a\x01\"", "\"\\x\"", "\"\\u12g4\"", "[1] 2", "{1:2}", "'a'", "[\"a\",,]",
	};
	char err[128];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct json *v = json_parse(bad[i], strlen(bad[i]), err, sizeof err);
		CHECK(v == NULL);
		if (v)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		else
			CHECK(strstr(err, " at byte ") != NULL);
		json_free(v);
	}
}

TEST(json_depth_bound)
{
	char deep[2 * (JSON_MAX_DEPTH + 2) + 1], ok[2 * JSON_MAX_DEPTH + 1], err[128];
	struct json *v;
	memset(deep, '[', JSON_MAX_DEPTH + 2);
	memset(deep + JSON_MAX_DEPTH + 2, ']', JSON_MAX_DEPTH + 2);
	deep[sizeof deep - 1] = '\0';
	v = json_parse(deep, strlen(deep), err, sizeof err);
	CHECK(v == NULL && strstr(err, "nested too deeply"));
	json_free(v);
	memset(ok, '[', JSON_MAX_DEPTH);
	memset(ok + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	ok[sizeof ok - 1] = '\0';
	v = json_parse(ok, strlen(ok), err, sizeof err);
	CHECK(v != NULL);
	json_free(v);
}

TEST(json_round_trip_with_writer)
{
	static const char raw[] = "tab\there \"q\" \\ \x01 \xff caf\xc3\xa9";
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct json *v;
	json_write_string(f, raw);
	fclose(f);
	v = parse(text);
	CHECK(v != NULL);
	if (v)
		CHECK_STR(v->string, "tab\there \"q\" \\ \x01 \xef\xbf\xbd caf\xc3\xa9");
	json_free(v);
	free(text);
}
