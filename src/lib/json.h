/*
 * json: the little JSON writing the CLI needs (--json output for scripts).
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are
 * written as U+FFFD so the output always parses.
 */
#ifndef POSTERN_JSON_H
#define POSTERN_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (NUL-terminated) as a JSON string, or null when s is NULL. */
void json_write_string(FILE *out, const char *s);
/* The same for n bytes that may contain NUL. */
void json_write_bytes(FILE *out, const char *s, size_t n);

#endif
