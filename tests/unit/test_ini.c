/*
 * Tests of the configuration syntax parser (lib/ini): sections, comments,
 * values, and errors that carry their line numbers and do not stop parsing.
 */
#include <stdlib.h>

#include "lib/ini.h"
#include "unit.h"

static struct ini *parse(const char *text)
{
	return ini_parse(text, strlen(text));
}

TEST(ini_sections_and_values)
{
	struct ini *ini = parse("top = 1\n"
				"# comment\n"
				"; another comment\n"
				"\n"
				"[Server]\n"
				"  Domains =  Example.ORG, b.example  \n"
				"empty =\n"
				"with_eq = a=b\n"
				"[ smtp ]\r\n"
				"listen = [::1]:25\r\n"
				"max-line.x = 5");

	CHECK_INT(ini->nerrors, 0);
	CHECK_INT(ini->nentries, 6);
	if (ini->nentries == 6) {
		CHECK_STR(ini->entries[0].section, "");
		CHECK_STR(ini->entries[0].key, "top");
		CHECK_INT(ini->entries[0].line, 1);
		CHECK_STR(ini->entries[1].section, "server");
		CHECK_STR(ini->entries[1].key, "domains");
		CHECK_STR(ini->entries[1].value, "Example.ORG, b.example");
		CHECK_INT(ini->entries[1].line, 6);
		CHECK_STR(ini->entries[2].value, "");
		CHECK_STR(ini->entries[3].key, "with_eq");
		CHECK_STR(ini->entries[3].value, "a=b");
		CHECK_STR(ini->entries[4].section, "smtp");
		CHECK_STR(ini->entries[4].value, "[::1]:25");
		CHECK_INT(ini->entries[4].line, 10);
		CHECK_STR(ini->entries[5].key, "max-line.x");
		CHECK_STR(ini->entries[5].value, "5");
		CHECK_INT(ini->entries[5].line, 11);
	}
	ini_free(ini);
	ini_free(NULL);

	ini = ini_parse("", 0);
	CHECK_INT(ini->nentries, 0);
	CHECK_INT(ini->nerrors, 0);
	ini_free(ini);

	/* The text need not be NUL-terminated: only len bytes are read. */
	ini = ini_parse("a = 1\nb = 2", 5);
	CHECK_INT(ini->nentries, 1);
	if (ini->nentries == 1)
		CHECK_STR(ini->entries[0].value, "1");
	ini_free(ini);
}

TEST(ini_errors_have_lines)
{
	struct ini *ini = parse("[server\n"
				"ok = 1\n"
				"just words\n"
				"[a b]\n"
				"bad key = 1\n"
				"= value\n"
				"[x] trailing\n"
				"[]\n"
				"last = 2\n");

	CHECK_INT(ini->nerrors, 7);
	if (ini->nerrors == 7) {
		CHECK_INT(ini->errors[0].line, 1);
		CHECK(strstr(ini->errors[0].msg, "section header") != NULL);
		CHECK_INT(ini->errors[1].line, 3);
		CHECK(strstr(ini->errors[1].msg, "key = value") != NULL);
		CHECK_INT(ini->errors[2].line, 4);
		CHECK(strstr(ini->errors[2].msg, "section name") != NULL);
		CHECK_INT(ini->errors[3].line, 5);
		CHECK(strstr(ini->errors[3].msg, "key name") != NULL);
		CHECK_INT(ini->errors[4].line, 6);
		CHECK_INT(ini->errors[5].line, 7);
		CHECK_INT(ini->errors[6].line, 8);
	}
	/* Parsing went on past every error. */
	CHECK_INT(ini->nentries, 2);
	if (ini->nentries == 2) {
		CHECK_STR(ini->entries[0].key, "ok");
		CHECK_STR(ini->entries[1].key, "last");
		CHECK_INT(ini->entries[1].line, 9);
	}
	ini_free(ini);
}

TEST(ini_overlong_line_and_nul)
{
	size_t n = 2 * INI_MAX_LINE + 64;
	char *text = malloc(n + 64);
	struct ini *ini;
	size_t o = 0;

	/* Line 1: exactly INI_MAX_LINE bytes is fine. */
	o += (size_t)sprintf(text + o, "a = ");
	memset(text + o, 'v', INI_MAX_LINE - 4);
	o += INI_MAX_LINE - 4;
	text[o++] = '\n';
	/* Line 2: one byte more is an error. */
	o += (size_t)sprintf(text + o, "b = ");
	memset(text + o, 'v', INI_MAX_LINE - 3);
	o += INI_MAX_LINE - 3;
	text[o++] = '\n';
	o += (size_t)sprintf(text + o, "c = 3\n");
	ini = ini_parse(text, o);
	CHECK_INT(ini->nerrors, 1);
	if (ini->nerrors == 1) {
		CHECK_INT(ini->errors[0].line, 2);
		CHECK(strstr(ini->errors[0].msg, "too long") != NULL);
	}
	CHECK_INT(ini->nentries, 2);
	if (ini->nentries == 2) {
		CHECK_INT(strlen(ini->entries[0].value), INI_MAX_LINE - 4);
		CHECK_STR(ini->entries[1].key, "c");
		CHECK_INT(ini->entries[1].line, 3);
	}
	ini_free(ini);
	free(text);

	ini = ini_parse("a = 1\nb = x\0y\nc = 3\n", 20);
	CHECK_INT(ini->nerrors, 1);
	if (ini->nerrors == 1) {
		CHECK_INT(ini->errors[0].line, 2);
		CHECK(strstr(ini->errors[0].msg, "NUL") != NULL);
	}
	CHECK_INT(ini->nentries, 2);
	ini_free(ini);
}
