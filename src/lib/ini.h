/*
 * ini: a pure parser for postern's configuration syntax.
 *
 *   # comment            ; comment
 *   [section]
 *   key = value          (value runs to the end of the line, trimmed)
 *
 * Keys before any section header belong to section "". Every entry keeps the
 * line it came from so that the configuration layer can report
 * "file:line: problem". Syntax errors are collected, not fatal, so that one
 * run reports all of them.
 */
#ifndef POSTERN_INI_H
#define POSTERN_INI_H

#include <stddef.h>

struct ini_entry {
	char *section;
	char *key;
	char *value;
	int line;
};

struct ini_error {
	int line;
	char *msg;
};

struct ini {
	struct ini_entry *entries;
	size_t nentries;
	struct ini_error *errors;
	size_t nerrors;
};

/* Parses text (len bytes, need not be NUL-terminated). Never fails: syntax
 * problems become entries in ->errors. The caller frees with ini_free(). */
struct ini *ini_parse(const char *text, size_t len);
void ini_free(struct ini *ini);

/* The bound on one configuration line. */
#define INI_MAX_LINE 4096

#endif
