/*
 * Tests of the SMTP AUTH parsers (src/smtp/sasl.c): the AUTH argument,
 * strict base64 (RFC 4648 test vectors), PLAIN messages (RFC 4616 section
 * 4 examples), LOGIN answers, cancelling, and every bound.
 */
#include <string.h>

#include "smtp/sasl.h"
#include "unit.h"

TEST(sasl_parse_auth)
{
	const char *ini;
	CHECK_INT(sasl_parse_auth("PLAIN", &ini), SASL_MECH_PLAIN);
	CHECK(ini == NULL);
	CHECK_INT(sasl_parse_auth("plain AGEAYg==", &ini), SASL_MECH_PLAIN);
	CHECK_STR(ini, "AGEAYg==");
	CHECK_INT(sasl_parse_auth("LOGIN", &ini), SASL_MECH_LOGIN);
	CHECK_INT(sasl_parse_auth("LOGIN =", &ini), SASL_MECH_LOGIN);
	CHECK_STR(ini, "=");
	CHECK_INT(sasl_parse_auth("CRAM-MD5", &ini), SASL_MECH_UNKNOWN);
	CHECK_INT(sasl_parse_auth("PLAINX", &ini), SASL_MECH_UNKNOWN);
	CHECK_INT(sasl_parse_auth("", &ini), SASL_MECH_INVALID);
	CHECK_INT(sasl_parse_auth(" PLAIN", &ini), SASL_MECH_INVALID);
	CHECK_INT(sasl_parse_auth("PLAIN ", &ini), SASL_MECH_INVALID);
	CHECK_INT(sasl_parse_auth("PLAIN a b", &ini), SASL_MECH_INVALID);
}

TEST(sasl_base64_rfc4648_vectors)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	char out[32], back[32];
	for (size_t i = 0; i < 7; i++) {
		sasl_b64_encode(plain[i], strlen(plain[i]), out);
		CHECK_STR(out, enc[i]);
		CHECK_INT(sasl_b64_decode(enc[i], strlen(enc[i]), back, sizeof back), (long)strlen(plain[i]));
		CHECK_STR(back, plain[i]);
	}
	CHECK_INT(sasl_b64_decode("=", 1, back, sizeof back), 0); /* RFC 4954: empty response */
	CHECK_INT(sasl_b64_decode("Zg=", 3, back, sizeof back), -1);
	CHECK_INT(sasl_b64_decode("Zg==Zg==", 8, back, sizeof back), -1); /* padding inside */
	CHECK_INT(sasl_b64_decode("Zh==", 4, back, sizeof back), -1);     /* non-zero dropped bits */
	CHECK_INT(sasl_b64_decode("Zm9v Zg==", 9, back, sizeof back), -1);
	CHECK_INT(sasl_b64_decode("Z===", 4, back, sizeof back), -1);
	CHECK_INT(sasl_b64_decode("Zm9vYmFy", 8, back, 6), -2); /* does not fit with its NUL */
	CHECK_INT(sasl_b64_decode("Zm9vYmFy", 8, back, 7), 6);
}

TEST(sasl_plain)
{
	struct sasl_creds c;
	char b64[2048], raw[1200];

	/* RFC 4616 section 4: "\0tim\0tanstaaftanstaaf". */
	CHECK_INT(sasl_plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &c), SASL_OK);
	CHECK_STR(c.authzid, "");
	CHECK_STR(c.user, "tim");
	CHECK_STR(c.password, "tanstaaftanstaaf");
	/* "Ursel\0Kurt\0xipj3plmq" */
	CHECK_INT(sasl_plain("VXJzZWwAS3VydAB4aXBqM3BsbXE=", &c), SASL_OK);
	CHECK_STR(c.authzid, "Ursel");
	CHECK_STR(c.user, "Kurt");
	CHECK_STR(c.password, "xipj3plmq");

	CHECK_INT(sasl_plain("*", &c), SASL_CANCELLED);
	CHECK_INT(sasl_plain("!!!!", &c), SASL_BAD_BASE64);
	sasl_b64_encode("tim\0pw", 6, b64); /* one NUL */
	CHECK_INT(sasl_plain(b64, &c), SASL_BAD_MESSAGE);
	CHECK_STR(c.user, ""); /* wiped on failure */
	sasl_b64_encode("\0tim\0pw\0x", 9, b64); /* three NULs */
	CHECK_INT(sasl_plain(b64, &c), SASL_BAD_MESSAGE);
	sasl_b64_encode("\0\0pw", 4, b64); /* no user */
	CHECK_INT(sasl_plain(b64, &c), SASL_BAD_MESSAGE);
	sasl_b64_encode("\0tim\0", 5, b64); /* no password */
	CHECK_INT(sasl_plain(b64, &c), SASL_BAD_MESSAGE);
	sasl_b64_encode("\0ti m\0pw", 8, b64); /* a space in the user */
	CHECK_INT(sasl_plain(b64, &c), SASL_BAD_MESSAGE);

	/* Bounds: a password of SASL_MAX_PASSWORD is fine, one more is not. */
	memset(raw, 'p', sizeof raw);
	memcpy(raw, "\0a@b\0", 5);
	sasl_b64_encode(raw, 5 + SASL_MAX_PASSWORD, b64);
	CHECK_INT(sasl_plain(b64, &c), SASL_OK);
	CHECK_INT(strlen(c.password), SASL_MAX_PASSWORD);
	sasl_b64_encode(raw, 6 + SASL_MAX_PASSWORD, b64);
	CHECK_INT(sasl_plain(b64, &c), SASL_TOO_LONG);
	memset(raw, 'u', sizeof raw);
	raw[0] = '\0';
	raw[SASL_MAX_USER + 2] = '\0';
	sasl_b64_encode(raw, SASL_MAX_USER + 5, b64);
	CHECK_INT(sasl_plain(b64, &c), SASL_TOO_LONG);
	memset(b64, 'A', 1800);
	b64[1800] = '\0';
	CHECK_INT(sasl_plain(b64, &c), SASL_TOO_LONG);
	sasl_creds_wipe(&c);
	CHECK_STR(c.password, "");
}

TEST(sasl_login)
{
	char out[SASL_MAX_PASSWORD + 1], b64[1024];
	CHECK_INT(sasl_login_answer("YWxpY2VAZXhhbXBsZS50ZXN0", 1, out, SASL_MAX_USER + 1), SASL_OK);
	CHECK_STR(out, "alice@example.test");
	CHECK_INT(sasl_login_answer("cyBlIGMgcg==", 0, out, sizeof out), SASL_OK); /* spaces in passwords */
	CHECK_STR(out, "s e c r");
	CHECK_INT(sasl_login_answer("cyBlIGMgcg==", 1, out, SASL_MAX_USER + 1), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_login_answer("*", 1, out, sizeof out), SASL_CANCELLED);
	CHECK_INT(sasl_login_answer("=", 0, out, sizeof out), SASL_BAD_MESSAGE); /* empty */
	CHECK_INT(sasl_login_answer("YQBi", 0, out, sizeof out), SASL_BAD_MESSAGE); /* a NUL */
	CHECK_INT(sasl_login_answer("YQ", 0, out, sizeof out), SASL_BAD_BASE64);
	memset(out, 'x', SASL_MAX_USER + 1);
	sasl_b64_encode(out, SASL_MAX_USER + 1, b64);
	CHECK_INT(sasl_login_answer(b64, 1, out, SASL_MAX_USER + 1), SASL_TOO_LONG);
}
