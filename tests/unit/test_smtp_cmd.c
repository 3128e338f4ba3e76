/*
 * Tests for src/smtp/cmd.c: verbs, paths (RFC 5321 section 4.1.2, RFC 6531),
 * parameters, BDAT arguments.
 */
#include <string.h>

#include "smtp/cmd.h"
#include "unit.h"

static enum path_status path(const char *in, int null, int utf8, char *out)
{
	const char *rest;
	return cmd_parse_path(in, null, utf8, out, 600, &rest);
}

TEST(cmd_verbs)
{
	const char *arg;
	CHECK_INT(cmd_verb("EHLO client.example", &arg), VERB_EHLO);
	CHECK_STR(arg, "client.example");
	CHECK_INT(cmd_verb("mail FROM:<a@b>", &arg), VERB_MAIL);
	CHECK_INT(cmd_verb("StartTLS", &arg), VERB_STARTTLS);
	CHECK_STR(arg, "");
	CHECK_INT(cmd_verb("MAILX", &arg), VERB_UNKNOWN);
	CHECK_INT(cmd_verb("", &arg), VERB_UNKNOWN);
}

TEST(cmd_paths_valid)
{
	char out[600];
	CHECK_INT(path("<User@Example.ORG>", 0, 0, out), PATH_OK);
	CHECK_STR(out, "User@example.org");
	CHECK_INT(path("<>", 1, 0, out), PATH_OK);
	CHECK_STR(out, "");
	CHECK_INT(path("<@relay.example,@b.example:joe@example.org>", 0, 0, out), PATH_OK);
	CHECK_STR(out, "joe@example.org");
	CHECK_INT(path("<\"joe\"@example.org>", 0, 0, out), PATH_OK);
	CHECK_STR(out, "joe@example.org");
	CHECK_INT(path("<\"joe smith\"@example.org>", 0, 0, out), PATH_OK);
	CHECK_STR(out, "\"joe smith\"@example.org");
	CHECK_INT(path("<\"a@b\"@example.org>", 0, 0, out), PATH_OK);
	CHECK_STR(out, "\"a@b\"@example.org");
	CHECK_INT(path("<joe@[192.0.2.1]>", 0, 0, out), PATH_OK);
	CHECK_INT(path("<joe@[IPv6:2001:db8::1]>", 0, 0, out), PATH_OK);
	CHECK_INT(path("<user%other.test@example.test>", 0, 0, out), PATH_OK);
	/* A '>' inside a quoted local part does not end the path (found by
	 * fuzzing: the canonical form must parse back to itself). */
	CHECK_INT(path("<\"a>b\"@example.org>", 0, 0, out), PATH_OK);
	CHECK_STR(out, "\"a>b\"@example.org");
}

TEST(cmd_paths_invalid)
{
	char out[600];
	static const char *const bad[] = {
		"joe@example.org", "<joe@example.org", "<>", "<joe>", "<@example.org>", "<joe@>",
		"<a@b@c.example>", "<.joe@example.org>", "<jo..e@example.org>", "<joe@-ex.org>",
		"<joe@ex-.org>", "<joe@ex..org>", "<joe@[300.1.1.1]>", "<\"unterminated@example.org>",
		"<@a.example:>", "<j oe@example.org>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum path_status st = path(bad[i], 0, 0, out);
		if (st == PATH_OK)
			fprintf(stderr, "accepted bad path %s\n", bad[i]);
		CHECK(st != PATH_OK);
	}
	{
		char longlocal[100];
		memset(longlocal, 'a', 70);
		strcpy(longlocal + 70, "@example.org>");
		char in[120] = "<";
		strcat(in, longlocal);
		CHECK(path(in, 0, 0, out) != PATH_OK);
	}
}

TEST(cmd_paths_utf8)
{
	char out[600];
	CHECK_INT(path("<j\xc3\xb6rg@example.org>", 0, 0, out), PATH_NEEDS_UTF8);
	CHECK_INT(path("<j\xc3\xb6rg@example.org>", 0, 1, out), PATH_OK);
	CHECK_INT(path("<joe@b\xc3\xbc"
		       "cher.example>",
		       0, 0, out),
		  PATH_NEEDS_UTF8);
	/* Invalid UTF-8 is never accepted. */
	CHECK(path("<j\xc3(rg@example.org>", 0, 1, out) != PATH_OK);
	CHECK(path("<j\xed\xa0\x80@example.org>", 0, 1, out) != PATH_OK);
}

TEST(cmd_mail_params)
{
	struct mail_params mp;
	CHECK_INT(cmd_parse_mail_params("", &mp), PARAM_OK);
	CHECK_INT(cmd_parse_mail_params(" SIZE=1000 BODY=8BITMIME SMTPUTF8", &mp), PARAM_OK);
	CHECK_INT(mp.size, 1000);
	CHECK(mp.body_8bit && mp.smtputf8);
	CHECK_INT(cmd_parse_mail_params(" size=12 body=7bit", &mp), PARAM_OK);
	CHECK_INT(cmd_parse_mail_params(" SIZE=abc", &mp), PARAM_SYNTAX);
	CHECK_INT(cmd_parse_mail_params(" SIZE=99999999999999999999999", &mp), PARAM_SYNTAX);
	CHECK_INT(cmd_parse_mail_params(" BODY=BINARYMIME", &mp), PARAM_UNKNOWN);
	CHECK_INT(cmd_parse_mail_params(" AUTH=<>", &mp), PARAM_UNKNOWN);
	CHECK_INT(cmd_parse_mail_params("x", &mp), PARAM_SYNTAX);
	CHECK_INT(cmd_parse_rcpt_params(""), PARAM_OK);
	CHECK_INT(cmd_parse_rcpt_params(" NOTIFY=NEVER"), PARAM_UNKNOWN);
}

TEST(cmd_bdat_args)
{
	uint64_t size;
	int last;
	CHECK_INT(cmd_parse_bdat("100", &size, &last), 0);
	CHECK_INT(size, 100);
	CHECK_INT(last, 0);
	CHECK_INT(cmd_parse_bdat("0 LAST", &size, &last), 0);
	CHECK_INT(last, 1);
	CHECK_INT(cmd_parse_bdat("12 last", &size, &last), 0);
	CHECK_INT(cmd_parse_bdat("", &size, &last), -1);
	CHECK_INT(cmd_parse_bdat("-1", &size, &last), -1);
	CHECK_INT(cmd_parse_bdat("10 FIRST", &size, &last), -1);
	CHECK_INT(cmd_parse_bdat("99999999999999999999999", &size, &last), -1);
}
