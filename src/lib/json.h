/*
 * json: the little JSON the CLI and the dashboard need: writing (--json
 * output for scripts, reports saved as files), and reading those files back
 * (the dashboard shows the saved doctor and self-test reports).
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are
 * written as U+FFFD so the output always parses.
 *
 * The reader is a pure RFC 8259 parser into a tree: strict grammar, nesting
 * bounded by JSON_MAX_DEPTH, values by JSON_MAX_VALUES; escapes decoded to
 * UTF-8 (\u0000 and lone surrogates become U+FFFD, so strings stay C
 * strings). Input bytes inside strings are kept as they are; whoever shows
 * them escapes them. Fuzzed (tests/fuzz/fuzz_json.c).
 */
#ifndef POSTERN_JSON_H
#define POSTERN_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (NUL-terminated) as a JSON string, or null when s is NULL. */
void json_write_string(FILE *out, const char *s);
/* The same for n bytes that may contain NUL. */
void json_write_bytes(FILE *out, const char *s, size_t n);

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

#define JSON_MAX_DEPTH 32
#define JSON_MAX_VALUES 100000

struct json {
	enum json_type type;
	int boolean;
	double number;
	char *string;        /* JSON_STRING: NUL-terminated, no NUL inside */
	size_t len;          /* its length */
	struct json **items; /* JSON_ARRAY and JSON_OBJECT: n values */
	char **keys;         /* JSON_OBJECT: n keys */
	size_t n;
};

/* Parses n bytes (one JSON text, white space around allowed). Returns a tree
 * the caller frees with json_free(), or NULL with the reason and its byte
 * offset in err. */
struct json *json_parse(const char *s, size_t n, char *err, size_t errsize);
void json_free(struct json *v);

/* Lookups that accept NULL and the wrong type, so chains need no checks:
 * json_str(json_get(v, "domain")). json_get gives the last member of that
 * name; json_at NULL past the end. */
const struct json *json_get(const struct json *obj, const char *key);
const struct json *json_at(const struct json *arr, size_t i);
size_t json_len(const struct json *arr); /* items of an array or object, else 0 */
const char *json_str(const struct json *v); /* NULL unless a string */
double json_num(const struct json *v, double def); /* def unless a number */

#endif
