/*
 * ini: see ini.h. Section and key names are lower-cased; values are kept as
 * written (trimmed). A line longer than INI_MAX_LINE is an error.
 */
#include "ini.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void add_error(struct ini *ini, int line, const char *msg)
{
	ini->errors = xrealloc(ini->errors, (ini->nerrors + 1) * sizeof *ini->errors);
	ini->errors[ini->nerrors].line = line;
	ini->errors[ini->nerrors].msg = xstrdup(msg);
	ini->nerrors++;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return 0;
	return 1;
}

static void parse_line(struct ini *ini, char *line, int lineno, char **section)
{
	char *s = str_trim(line), *eq, *key, *value;

	if (!*s || *s == '#' || *s == ';')
		return;
	if (*s == '[') {
		char *end = strchr(s, ']');
		if (!end || str_trim(end + 1)[0] != '\0') {
			add_error(ini, lineno, "malformed section header, write it as [name]");
			return;
		}
		*end = '\0';
		s = str_trim(s + 1);
		if (!valid_name(s)) {
			add_error(ini, lineno, "section name must be letters, digits, '_', '-' or '.'");
			return;
		}
		*section = xstrdup(str_lower(s));
		return;
	}
	eq = strchr(s, '=');
	if (!eq) {
		add_error(ini, lineno, "expected 'key = value'");
		return;
	}
	*eq = '\0';
	key = str_trim(s);
	value = str_trim(eq + 1);
	if (!valid_name(key)) {
		add_error(ini, lineno, "key name must be letters, digits, '_', '-' or '.'");
		return;
	}
	ini->entries = xrealloc(ini->entries, (ini->nentries + 1) * sizeof *ini->entries);
	ini->entries[ini->nentries].section = xstrdup(*section ? *section : "");
	ini->entries[ini->nentries].key = xstrdup(str_lower(key));
	ini->entries[ini->nentries].value = xstrdup(value);
	ini->entries[ini->nentries].line = lineno;
	ini->nentries++;
}

struct ini *ini_parse(const char *text, size_t len)
{
	struct ini *ini = xcalloc(1, sizeof *ini);
	char *section = NULL;
	char line[INI_MAX_LINE + 1];
	size_t pos = 0;
	int lineno = 0;

	while (pos < len) {
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		lineno++;
		if (end - pos > INI_MAX_LINE) {
			add_error(ini, lineno, "line too long (the limit is 4096 bytes)");
		} else if (memchr(text + pos, '\0', end - pos)) {
			add_error(ini, lineno, "NUL byte in configuration line");
		} else {
			char *prev = section;
			memcpy(line, text + pos, end - pos);
			line[end - pos] = '\0';
			parse_line(ini, line, lineno, &section);
			if (prev != section)
				free(prev);
		}
		pos = end + 1;
	}
	free(section);
	return ini;
}

void ini_free(struct ini *ini)
{
	if (!ini)
		return;
	for (size_t i = 0; i < ini->nentries; i++) {
		free(ini->entries[i].section);
		free(ini->entries[i].key);
		free(ini->entries[i].value);
	}
	for (size_t i = 0; i < ini->nerrors; i++)
		free(ini->errors[i].msg);
	free(ini->entries);
	free(ini->errors);
	free(ini);
}
