/*
 * cmd: pure parsers for SMTP command lines (RFC 5321 section 4.1), with the
 * extensions postern implements: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531).
 *
 * Bytes in, struct and status out; no I/O, no globals, so each is unit
 * tested and fuzzed alone (tests/unit/test_cmd.c, tests/fuzz/fuzz_cmd.c).
 */
#ifndef POSTERN_SMTP_CMD_H
#define POSTERN_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	VERB_UNKNOWN, VERB_EHLO, VERB_HELO, VERB_MAIL, VERB_RCPT, VERB_DATA, VERB_BDAT, VERB_RSET,
	VERB_NOOP, VERB_QUIT, VERB_HELP, VERB_VRFY, VERB_EXPN, VERB_STARTTLS, VERB_AUTH,
};

/* Splits a command line (without CRLF) into a verb and its argument. *arg
 * points into line, past the verb and one or more spaces ("" if none). */
enum smtp_verb cmd_verb(const char *line, const char **arg);
const char *cmd_verb_name(enum smtp_verb verb);

/* Limits from RFC 5321 section 4.5.3.1. */
#define SMTP_MAX_LOCALPART 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256

enum path_status {
	PATH_OK,
	PATH_SYNTAX,    /* not a valid path */
	PATH_NEEDS_UTF8 /* valid only with SMTPUTF8 */
};

/*
 * Parses a reverse-path or forward-path ("<local@domain>", "<>" when
 * allow_null, with an optional source route "<@a,@b:local@domain>" that is
 * dropped as RFC 5321 section 4.1.1.3 allows). With utf8, local parts and
 * domains may contain UTF-8. On PATH_OK, out (outsize bytes) gets the
 * address in canonical form: quotes removed when the local part does not
 * need them, domain lower-cased; "" for the null path. *rest points past
 * the closing '>'.
 */
enum path_status cmd_parse_path(const char *s, int allow_null, int utf8, char *out, size_t outsize,
				const char **rest);

/* MAIL FROM parameters (RFC 5321 section 4.1.2 esmtp-param). */
struct mail_params {
	uint64_t size;  /* 0 when not given */
	int body_8bit;  /* BODY=8BITMIME */
	int smtputf8;   /* SMTPUTF8 */
};

enum param_status { PARAM_OK, PARAM_SYNTAX, PARAM_UNKNOWN };

/* Parses the parameters after the path of MAIL FROM. */
enum param_status cmd_parse_mail_params(const char *s, struct mail_params *out);
/* RCPT TO takes no parameters postern advertises; anything is PARAM_UNKNOWN. */
enum param_status cmd_parse_rcpt_params(const char *s);

/* Whether s contains a byte outside US-ASCII. */
int cmd_has_8bit(const char *s);

/* BDAT argument: "size" or "size LAST". Returns 0 or -1. */
int cmd_parse_bdat(const char *arg, uint64_t *size, int *last);

#endif
