/*
 * Unit tests for src/auth/dmarc.c: the record parser, the From parser,
 * domain normalization and the Organizational Domain, and the evaluation
 * over an in-process table of DNS answers (a table of cases, each with the
 * result, disposition and policy expected). Integration tests run the CLI
 * against a real DNS server (tests/integration/test_dmarc.py).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/dmarc.h"
#include "lib/util.h"
#include "unit.h"

/* ---- the record parser ---------------------------------------------------- */

TEST(dmarc_record_valid)
{
	struct dmarc_record r;
	char why[256];
	const char *t = "v=DMARC1; p=quarantine; sp=reject; np=none; pct=25; adkim=s; aspf=S; "
			"rua=mailto:agg@example.com!10m, mailto:other@example.net; ruf=mailto:f@example.com!2k; "
			"fo=1:d:1; rf=AFRF:iodef; ri=3600; future=whatever tag";
	CHECK_INT(dmarc_record_parse(t, strlen(t), &r, why, sizeof why), DMARC_PARSE_OK);
	CHECK_INT(r.p, DMARC_POLICY_QUARANTINE);
	CHECK_INT(r.sp, DMARC_POLICY_REJECT);
	CHECK_INT(r.np, DMARC_POLICY_NONE);
	CHECK(r.has_p && r.has_sp && r.has_np && !r.policy_invalid);
	CHECK_INT(r.pct, 25);
	CHECK_INT(r.adkim, 's');
	CHECK_INT(r.aspf, 's');
	CHECK_INT(r.nrua, 2);
	CHECK_STR(r.rua[0].uri, "mailto:agg@example.com");
	CHECK_INT(r.rua[0].max_size, 10 * 1024 * 1024);
	CHECK_STR(r.rua[1].uri, "mailto:other@example.net");
	CHECK_INT(r.rua[1].max_size, 0);
	CHECK_INT(r.nruf, 1);
	CHECK_INT(r.ruf[0].max_size, 2048);
	CHECK_STR(r.fo, "1:d");
	CHECK_STR(r.rf, "afrf:iodef");
	CHECK_INT(r.ri, 3600);
	dmarc_record_clear(&r);
}

TEST(dmarc_record_defaults)
{
	struct dmarc_record r;
	char why[256];
	const char *t = "v=DMARC1;p=reject";
	CHECK_INT(dmarc_record_parse(t, strlen(t), &r, why, sizeof why), DMARC_PARSE_OK);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
	CHECK_INT(r.sp, DMARC_POLICY_REJECT); /* sp defaults to p */
	CHECK_INT(r.np, DMARC_POLICY_REJECT); /* np to sp (RFC 9091) */
	CHECK(!r.has_sp && !r.has_np);
	CHECK_INT(r.pct, 100);
	CHECK_INT(r.adkim, 'r');
	CHECK_INT(r.aspf, 'r');
	CHECK_STR(r.fo, "0");
	CHECK_STR(r.rf, "afrf");
	CHECK_INT(r.ri, 86400);
	CHECK_INT(r.nrua, 0);
	dmarc_record_clear(&r);

	/* np defaults to sp when sp is given. */
	t = "v=DMARC1; p=none; sp=quarantine";
	CHECK_INT(dmarc_record_parse(t, strlen(t), &r, why, sizeof why), DMARC_PARSE_OK);
	CHECK_INT(r.np, DMARC_POLICY_QUARANTINE);
	dmarc_record_clear(&r);
}

TEST(dmarc_record_table)
{
	static const struct {
		const char *text;
		enum dmarc_parse want;
		int policy_invalid;
	} v[] = {
		/* Not DMARC records (discarded, section 6.6.3 step 2). */
		{ "v=spf1 -all", DMARC_PARSE_NOT_DMARC, 0 },
		{ "", DMARC_PARSE_NOT_DMARC, 0 },
		{ "v=DMARC2; p=none", DMARC_PARSE_NOT_DMARC, 0 },
		{ "v=dmarc1; p=none", DMARC_PARSE_NOT_DMARC, 0 },
		{ "v=DMARC1x; p=none", DMARC_PARSE_NOT_DMARC, 0 },
		{ "p=none; v=DMARC1", DMARC_PARSE_NOT_DMARC, 0 },
		{ "v:DMARC1; p=none", DMARC_PARSE_NOT_DMARC, 0 },
		/* Valid, including the edges. */
		{ "v=DMARC1; p=none", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none;", DMARC_PARSE_OK, 0 },
		{ "  v = DMARC1 ;  p = Reject  ; ", DMARC_PARSE_OK, 0 },
		{ "V=DMARC1; P=QUARANTINE", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1;;p=none", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; rua=mailto:a@example.com; p=reject", DMARC_PARSE_OK, 0 }, /* p= later: accepted */
		{ "v=DMARC1; p=none; pct=0", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; pct=100", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; pct=007", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; ri=4294967295", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a@example.com!1t", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a%2Cb@example.com", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; rua=https://example.com/report?x=1", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1; p=none; x_y=anything at all; z=", DMARC_PARSE_OK, 0 },
		{ "v=DMARC1;\r\n p=none", DMARC_PARSE_OK, 0 },
		/* p/sp/np faults are for section 6.6.3 step 6, not syntax errors. */
		{ "v=DMARC1", DMARC_PARSE_OK, 1 },
		{ "v=DMARC1; rua=mailto:a@example.com", DMARC_PARSE_OK, 1 },
		{ "v=DMARC1; p=bogus", DMARC_PARSE_OK, 1 },
		{ "v=DMARC1; p=reject; sp=maybe", DMARC_PARSE_OK, 1 },
		{ "v=DMARC1; p=reject; np=", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=reject; np=x", DMARC_PARSE_OK, 1 },
		/* Invalid. */
		{ "v=DMARC1 p=none", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; pct=101", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; pct=50%", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; pct=-1", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; pct=", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; pct=1000", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; adkim=x", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; aspf=relaxed", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; ri=4294967296", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; ri=1h", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; fo=2", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; fo=1:", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; fo=", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rf=afrf:-x", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=agg@example.com", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a@example.com,", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a@example.com!", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a@example.com!10x", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a@example.com!99999999999999999999t", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a b@example.com", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; rua=mailto:a@example.com%2", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; p=reject", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; v=DMARC1", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; =x", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; junk", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; 9x=1", DMARC_PARSE_INVALID, 0 },
		{ "v=DMARC1; p=none; x=caf\xc3\xa9", DMARC_PARSE_INVALID, 0 },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct dmarc_record r;
		char why[256];
		enum dmarc_parse got = dmarc_record_parse(v[i].text, strlen(v[i].text), &r, why, sizeof why);
		if (got != v[i].want || (got == DMARC_PARSE_OK && r.policy_invalid != v[i].policy_invalid))
			fprintf(stderr, "record %zu: \"%s\": got %d (invalid %d, %s)\n", i, v[i].text, got,
				got == DMARC_PARSE_OK ? r.policy_invalid : -1, why);
		CHECK_INT(got, v[i].want);
		if (got == DMARC_PARSE_OK)
			CHECK_INT(r.policy_invalid, v[i].policy_invalid);
		if (got == DMARC_PARSE_INVALID)
			CHECK(why[0] != '\0');
		dmarc_record_clear(&r);
	}
}

TEST(dmarc_record_nul_and_length)
{
	struct dmarc_record r;
	char why[256], big[DMARC_MAX_RECORD + 64];
	static const char nul[] = "v=DMARC1; p=none; x=a\0b";
	CHECK_INT(dmarc_record_parse(nul, sizeof nul - 1, &r, why, sizeof why), DMARC_PARSE_INVALID);
	snprintf(big, sizeof big, "v=DMARC1; p=none; x=");
	memset(big + strlen(big), 'a', sizeof big - strlen(big) - 1);
	big[sizeof big - 1] = '\0';
	CHECK_INT(dmarc_record_parse(big, strlen(big), &r, why, sizeof why), DMARC_PARSE_INVALID);
	/* More URIs than kept: checked, then dropped. */
	{
		char t[2048] = "v=DMARC1; p=none; rua=";
		for (int i = 0; i < DMARC_MAX_URIS + 4; i++)
			snprintf(t + strlen(t), sizeof t - strlen(t), "%smailto:r%d@example.com", i ? "," : "", i);
		CHECK_INT(dmarc_record_parse(t, strlen(t), &r, why, sizeof why), DMARC_PARSE_OK);
		CHECK_INT(r.nrua, DMARC_MAX_URIS);
		dmarc_record_clear(&r);
		strcat(t, ",bad uri");
		CHECK_INT(dmarc_record_parse(t, strlen(t), &r, why, sizeof why), DMARC_PARSE_INVALID);
	}
}

/* ---- the From parser ------------------------------------------------------ */

/* The domains dmarc_from_parse() finds, joined by ',', or "ERROR". */
static void from_domains(const char *value, char *out, size_t n)
{
	char **d = NULL, why[256];
	size_t nd = 0;
	int rc = dmarc_from_parse(value, &d, &nd, why, sizeof why);
	out[0] = '\0';
	if (rc < 0)
		snprintf(out, n, "ERROR");
	for (size_t i = 0; i < nd; i++) {
		if (rc >= 0)
			snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "," : "", d[i]);
		free(d[i]);
	}
	free(d);
}

TEST(dmarc_from_parser)
{
	static const struct {
		const char *value, *want;
	} v[] = {
		{ "alice@example.com", "example.com" },
		{ "Alice <alice@example.com>", "example.com" },
		{ "\"Alice Liddell\" <alice@example.com>", "example.com" },
		{ "\"Doe, John\" <john@example.com>", "example.com" },
		{ " \r\n\tAlice\r\n <alice@example.com>\r\n", "example.com" },
		{ "alice@example.com (Alice)", "example.com" },
		{ "(comment (nested \\) one)) alice@example.com", "example.com" },
		{ "alice(c)@(c)example(c).(c)com", "example.com" },
		{ "alice . liddell @ example . com", "example.com" },
		{ "\"a@paypal.com\"@example.com", "example.com" },
		{ "\"quoted \\\" <x@evil.example>\" <alice@example.com>", "example.com" },
		{ "<@relay.example,@other.example:alice@example.com>", "example.com" },
		{ "John Q. Public <jqp@example.com>", "example.com" },
		{ "alice@example.com <alice@example.com>", "example.com" },
		{ "a@victim.example <b@evil.example>", "evil.example" },
		{ "=?utf-8?q?J=C3=B6rg?= <joerg@example.com>", "example.com" },
		{ "=?utf-8?q?a:b,c<d@x.example>?= <joerg@example.com>", "example.com" },
		{ "=?utf-8?b?YWRtaW5AbGVnaXQuY29t?= <u@example.com>", "example.com" },
		{ "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc" "cher.example>", "b\xc3\xbc" "cher.example" },
		{ "a@example.com, b@example.net", "example.com,example.net" },
		{ "a@example.com,,b@example.net,", "example.com,example.net" },
		{ "Friends: a@example.com, Bob <b@example.net>;", "example.com,example.net" },
		{ "Friends: a@example.com", "example.com" },
		{ "undisclosed-recipients:;", "" },
		{ "", "" },
		{ "   ", "" },
		{ "alice@[192.0.2.1]", "[192.0.2.1]" },
		{ "Alice <alice@example.com", "ERROR" },
		{ "Alice alice@example.com>", "ERROR" },
		{ "alice", "ERROR" },
		{ "Doe, John <john@example.com>", "ERROR" },
		{ "<>", "ERROR" },
		{ "alice@", "ERROR" },
		{ "@example.com", "ERROR" },
		{ "alice@example.com.", "ERROR" },
		{ "alice@@example.com", "ERROR" },
		{ "<a@evil.example> b@victim.example", "ERROR" },
		{ "<a@evil.example> <b@victim.example>", "ERROR" },
		{ "a@evil.example b@victim.example", "ERROR" },
		{ "\"unterminated <a@example.com>", "ERROR" },
		{ "(unterminated a@example.com", "ERROR" },
		{ "a@example.com)", "ERROR" },
		{ "a\\b@example.com", "ERROR" },
		{ "a@exa\x01mple.com", "ERROR" },
		{ "=?utf-8?b?YWRtaW5AbGVnaXQuY29t?=@attack.example", "ERROR" },
		{ "a@=?utf-8?q?example.com?=", "ERROR" },
		{ "g1: g2: a@example.com;;", "ERROR" },
		{ "a@example.com; b@example.net", "ERROR" },
		{ "Friends: a@example.com; b@example.net", "ERROR" },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char got[512];
		from_domains(v[i].value, got, sizeof got);
		if (strcmp(got, v[i].want))
			fprintf(stderr, "From %zu: [%s]: got [%s], want [%s]\n", i, v[i].value, got, v[i].want);
		CHECK_STR(got, v[i].want);
	}
}

TEST(dmarc_from_bounds)
{
	char *big = malloc(DMARC_MAX_FROM + 2), got[64];
	char *deep = malloc(2 * DMARC_MAX_COMMENT_DEPTH + 64);
	char *many = malloc(20 * (DMARC_MAX_ADDRESSES + 2));
	memset(big, ' ', DMARC_MAX_FROM + 1);
	big[DMARC_MAX_FROM + 1] = '\0';
	from_domains(big, got, sizeof got);
	CHECK_STR(got, "ERROR");
	deep[0] = '\0';
	for (int i = 0; i <= DMARC_MAX_COMMENT_DEPTH; i++)
		strcat(deep, "(");
	for (int i = 0; i <= DMARC_MAX_COMMENT_DEPTH; i++)
		strcat(deep, ")");
	strcat(deep, "a@example.com");
	from_domains(deep, got, sizeof got);
	CHECK_STR(got, "ERROR");
	many[0] = '\0';
	for (int i = 0; i <= DMARC_MAX_ADDRESSES; i++)
		strcat(many, "a@example.com,");
	from_domains(many, got, sizeof got);
	CHECK_STR(got, "ERROR");
	free(big);
	free(deep);
	free(many);
}

/* ---- domains --------------------------------------------------------------- */

TEST(dmarc_domain_normalize)
{
	static const struct {
		const char *in, *want;
	} v[] = {
		{ "Example.COM", "example.com" },
		{ "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
		{ "B\xc3\x9c" "CHER.Example", "xn--bcher-kva.example" },
		{ "stra\xc3\x9f" "e.de", "xn--strae-oqa.de" },
		{ "\xc3\xa4\xc3\xb6\xc3\xbc.de", "xn--4ca0bs.de" },
		{ "\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", "xn--r8jz45g.xn--zckzah" },
		/* RFC 3492 section 7.1 (A) and (B). */
		{ "\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7\xd8\xa8\xd8\xaa\xd9\x83\xd9\x84\xd9\x85\xd9\x88\xd8\xb4\xd8"
		  "\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\x9f.example",
		  "xn--egbpdaj6bu4bxfgehfvwxn.example" },
		{ "\xe4\xbb\x96\xe4\xbb\xac\xe4\xb8\xba\xe4\xbb\x80\xe4\xb9\x88\xe4\xb8\x8d\xe8\xaf\xb4\xe4\xb8\xad\xe6"
		  "\x96\x87.example",
		  "xn--ihqwcrb4cv8a8dqg056pqjye.example" },
		{ "_under.example", "_under.example" },
		{ "localhost", "localhost" },
		{ "[192.0.2.1]", NULL },
		{ "ex!ample.com", NULL },
		{ "a..example", NULL },
		{ "bad\xff.example", NULL },
		{ "\xc0\xaf.example", NULL }, /* overlong UTF-8 */
		{ "", NULL },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char out[300], why[256];
		int rc = dmarc_domain_normalize(v[i].in, out, sizeof out, why, sizeof why);
		if (v[i].want) {
			CHECK_INT(rc, 0);
			if (rc == 0)
				CHECK_STR(out, v[i].want);
		} else {
			CHECK_INT(rc, -1);
		}
	}
	{
		/* Length: "_dmarc." must fit in front, within 253 bytes. */
		char name[300], out[300], why[256];
		for (size_t len = 245; len <= 248; len++) {
			for (size_t i = 0; i < len; i++)
				name[i] = i % 50 == 49 ? '.' : 'a';
			name[len] = '\0';
			CHECK_INT(dmarc_domain_normalize(name, out, sizeof out, why, sizeof why), len <= 246 ? 0 : -1);
		}
		memset(name, 'a', 64);
		strcpy(name + 64, ".example");
		CHECK_INT(dmarc_domain_normalize(name, out, sizeof out, why, sizeof why), -1);
	}
}

TEST(dmarc_org_domain)
{
	static const struct {
		const char *in, *want;
	} v[] = {
		{ "example.com", "example.com" },
		{ "a.b.example.com", "example.com" },
		{ "mail.example.co.uk", "example.co.uk" },
		{ "example.co.uk", "example.co.uk" },
		{ "co.uk", "co.uk" },
		{ "com", "com" },
		{ "foo.example.test", "example.test" }, /* the implicit "*" rule */
		{ "x.y.blogspot.com", "y.blogspot.com" }, /* the private section counts */
		{ "a.b.xn--p1ai", "b.xn--p1ai" },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char out[256];
		dmarc_org_domain(v[i].in, out, sizeof out);
		CHECK_STR(out, v[i].want);
	}
	CHECK(strcmp(dmarc_psl_source(), "none") != 0);
}

/* ---- evaluation over a table ---------------------------------------------- */

struct rec {
	const char *name;
	uint16_t type;
	const char *value; /* A text, MX "pref name", TXT text; NULL = TEMPFAIL */
};

static const struct rec ZONE[] = {
	{ "_dmarc.example.com", DNS_T_TXT, "v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:d@example.com" },
	{ "_dmarc.example.com", DNS_T_TXT, "some other TXT record" },
	{ "example.com", DNS_T_A, "192.0.2.1" },
	{ "sub.example.com", DNS_T_A, "192.0.2.2" },
	{ "mxonly.example.com", DNS_T_MX, "10 mx.example.com" },
	{ "v6.example.com", DNS_T_AAAA, "2001:db8::1" },
	{ "txtonly.example.com", DNS_T_TXT, "exists, but with no A, AAAA or MX" },
	{ "tmp.example.com", DNS_T_A, NULL },
	{ "_dmarc.own.example.com", DNS_T_TXT, "v=DMARC1; p=none" },
	{ "_dmarc.strict.test", DNS_T_TXT, "v=DMARC1; p=reject; adkim=s; aspf=s" },
	{ "_dmarc.nosp.test", DNS_T_TXT, "v=DMARC1; p=quarantine" },
	{ "_dmarc.multi.test", DNS_T_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.multi.test", DNS_T_TXT, "v=DMARC1; p=none" },
	{ "_dmarc.tempfail.test", DNS_T_TXT, NULL },
	{ "_dmarc.orgfail.test", DNS_T_TXT, NULL },
	{ "_dmarc.invalid.test", DNS_T_TXT, "v=DMARC1; p=reject; pct=200" },
	{ "_dmarc.badp.test", DNS_T_TXT, "v=DMARC1; p=bogus; rua=mailto:x@badp.test" },
	{ "_dmarc.badpnorua.test", DNS_T_TXT, "v=DMARC1; p=bogus" },
	{ "_dmarc.pct.test", DNS_T_TXT, "v=DMARC1; p=reject; pct=20" },
	{ "_dmarc.pct0.test", DNS_T_TXT, "v=DMARC1; p=quarantine; pct=0" },
	{ "_dmarc.notdmarc.test", DNS_T_TXT, "v=spf1 -all" },
	{ "_dmarc.example.co.uk", DNS_T_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.npnone.test", DNS_T_TXT, "v=DMARC1; p=reject; sp=none" },
	{ "_dmarc.x.blogspot.com", DNS_T_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.xn--bcher-kva.example", DNS_T_TXT, "v=DMARC1; p=reject" },
	{ "_dmarc.nopolicy.test", DNS_T_TXT, "v=DMARC1; p=none; pct=0" },
};

/* Answers every open question from ZONE; names not there are NXDOMAIN.
 * Returns the number of rounds, or -1 if the evaluation never ends. */
static int run_table(struct dmarc_eval *e)
{
	for (int round = 0; round < 20; round++) {
		if (dmarc_run(e) == DMARC_RUN_DONE)
			return round;
		for (size_t i = 0; i < e->nlookups; i++) {
			struct dmarc_lookup *l = e->lookups[i];
			struct dns_answer a = { 0 };
			struct dns_rr rrs[8];
			int exists = 0, fail = 0;
			enum dns_status st;
			if (l->answered)
				continue;
			memset(rrs, 0, sizeof rrs);
			for (size_t k = 0; k < sizeof ZONE / sizeof ZONE[0]; k++) {
				struct dns_rr *rr;
				if (strcasecmp(ZONE[k].name, l->name))
					continue;
				exists = 1;
				if (ZONE[k].type != l->type)
					continue;
				if (!ZONE[k].value) {
					fail = 1;
					continue;
				}
				rr = &rrs[a.nrrs++];
				rr->type = l->type;
				if (l->type == DNS_T_A)
					inet_pton(AF_INET, ZONE[k].value, rr->addr);
				else if (l->type == DNS_T_AAAA)
					inet_pton(AF_INET6, ZONE[k].value, rr->addr);
				else if (l->type == DNS_T_MX) {
					rr->pref = (uint16_t)atoi(ZONE[k].value);
					rr->name = (char *)strchr(ZONE[k].value, ' ') + 1;
				} else {
					rr->data = (unsigned char *)ZONE[k].value;
					rr->len = strlen(ZONE[k].value);
				}
			}
			/* A name below an existing one exists too (empty non-terminal). */
			for (size_t k = 0; !exists && k < sizeof ZONE / sizeof ZONE[0]; k++) {
				size_t ln = strlen(l->name), lz = strlen(ZONE[k].name);
				if (lz > ln && ZONE[k].name[lz - ln - 1] == '.' && !strcasecmp(ZONE[k].name + lz - ln, l->name))
					exists = 1;
			}
			a.rrs = rrs;
			st = fail ? DNS_TEMPFAIL : a.nrrs ? DNS_ANSWER : exists ? DNS_NODATA : DNS_NXDOMAIN;
			dmarc_answer(e, i, st, &a);
		}
	}
	return -1;
}

struct dcase {
	const char *name;
	const char *from[4]; /* NULL-terminated */
	const char *spf_domain;
	enum spf_result spf;
	const char *dkim_pass, *dkim_fail, *dkim_temp; /* one each, or NULL */
	int sample;                                     /* -1: 0 */
	enum dmarc_result want;
	enum dmarc_policy want_disp;
	const char *want_tag;  /* policy_tag of the decisive domain; NULL for none */
	const char *want_from; /* header.from; NULL when none */
	int want_lookups;      /* -1: not checked */
};

#define F1(a) { a, NULL }
#define F2(a, b) { a, b, NULL }
#define NOFROM { NULL }

static const struct dcase CASES[] = {
	/* Alignment. */
	{ "spf aligned relaxed", F1("Alice <alice@example.com>"), "bounce.example.com", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "spf aligned exact", F1("alice@example.com"), "example.com", SPF_PASS, NULL, NULL, NULL, 0, DMARC_PASS,
	  DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "spf pass unaligned", F1("alice@example.com"), "example.net", SPF_PASS, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "p", "example.com", 1 },
	{ "spf fail aligned", F1("alice@example.com"), "example.com", SPF_FAIL, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "p", "example.com", 1 },
	{ "spf softfail aligned", F1("alice@example.com"), "example.com", SPF_SOFTFAIL, NULL, NULL, NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "p", "example.com", 1 },
	{ "dkim aligned relaxed", F1("alice@example.com"), "example.net", SPF_FAIL, "mail.example.com", NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "dkim case and final dot", F1("ALICE@EXAMPLE.COM"), NULL, SPF_NONE, "Example.Com.", NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "dkim fail aligned", F1("alice@example.com"), NULL, SPF_NONE, "example.net", "example.com", NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "p", "example.com", 1 },
	{ "strict spf subdomain", F1("a@strict.test"), "bounce.strict.test", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "p", "strict.test", 1 },
	{ "strict spf exact", F1("a@strict.test"), "STRICT.test", SPF_PASS, NULL, NULL, NULL, 0, DMARC_PASS,
	  DMARC_POLICY_NONE, "p", "strict.test", 1 },
	{ "strict dkim subdomain", F1("a@strict.test"), NULL, SPF_NONE, "mail.strict.test", NULL, NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "p", "strict.test", 1 },
	{ "strict dkim exact", F1("a@strict.test"), NULL, SPF_NONE, "strict.test", NULL, NULL, 0, DMARC_PASS,
	  DMARC_POLICY_NONE, "p", "strict.test", 1 },
	{ "psl private suffix", F1("a@x.blogspot.com"), NULL, SPF_NONE, "y.blogspot.com", NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "p", "x.blogspot.com", 1 },
	{ "temperror spf aligned", F1("a@example.com"), "example.com", SPF_TEMPERROR, NULL, NULL, NULL, 0,
	  DMARC_TEMPERROR, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "temperror dkim aligned", F1("a@example.com"), NULL, SPF_NONE, NULL, NULL, "example.com", 0,
	  DMARC_TEMPERROR, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "temperror dkim unaligned", F1("a@example.com"), NULL, SPF_NONE, NULL, NULL, "example.net", 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "p", "example.com", 1 },
	{ "temperror but dkim pass", F1("a@example.com"), "example.com", SPF_TEMPERROR, "example.com", NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	/* Subdomains: sp, np (RFC 9091), the organizational-domain fallback. */
	{ "subdomain sp", F1("a@sub.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_QUARANTINE, "sp", "sub.example.com", 5 },
	{ "subdomain pass fallback", F1("a@sub.example.com"), "example.com", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "sp", "sub.example.com", 2 },
	{ "np nonexistent", F1("a@nx.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "np", "nx.example.com", 5 },
	{ "np nodata counts as nonexistent", F1("a@txtonly.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "np", "txtonly.example.com", 5 },
	{ "np mx only exists", F1("a@mxonly.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_QUARANTINE, "sp", "mxonly.example.com", 5 },
	{ "np aaaa only exists", F1("a@v6.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_QUARANTINE, "sp", "v6.example.com", 5 },
	{ "np existence unknown", F1("a@tmp.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_QUARANTINE, "sp", "tmp.example.com", 5 },
	{ "np deep nonexistent", F1("a@b.c.nx.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "np", "b.c.nx.example.com", 5 },
	{ "sp defaults to p", F1("a@sub.nosp.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_QUARANTINE, "p", "sub.nosp.test", 2 },
	{ "np defaults to sp", F1("a@nx.npnone.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_NONE, "sp", "nx.npnone.test", 2 },
	{ "subdomain own record", F1("a@own.example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_NONE, "p", "own.example.com", 1 },
	{ "org domain under co.uk", F1("a@mail.example.co.uk"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "p", "mail.example.co.uk", 2 },
	{ "idn from domain", F1("J\xc3\xb6rg <j@B\xc3\xbc" "cher.example>"), NULL, SPF_NONE, "xn--bcher-kva.example",
	  NULL, NULL, 0, DMARC_PASS, DMARC_POLICY_NONE, "p", "xn--bcher-kva.example", 1 },
	/* No policy: none. */
	{ "no record", F1("a@none.test"), "none.test", SPF_PASS, NULL, NULL, NULL, 0, DMARC_NONE, DMARC_POLICY_NONE,
	  NULL, "none.test", 1 },
	{ "no record anywhere", F1("a@b.none.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_NONE,
	  DMARC_POLICY_NONE, NULL, "b.none.test", 2 },
	{ "not a dmarc record", F1("a@notdmarc.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_NONE,
	  DMARC_POLICY_NONE, NULL, "notdmarc.test", 1 },
	{ "multiple records", F1("a@multi.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_NONE, DMARC_POLICY_NONE,
	  NULL, "multi.test", 1 },
	{ "multiple records no fallback", F1("a@multi.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_NONE,
	  DMARC_POLICY_NONE, NULL, "multi.test", 1 },
	/* DNS failures. */
	{ "temperror at from domain", F1("a@tempfail.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_TEMPERROR,
	  DMARC_POLICY_NONE, NULL, "tempfail.test", 1 },
	{ "temperror at org domain", F1("a@sub.orgfail.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0,
	  DMARC_TEMPERROR, DMARC_POLICY_NONE, NULL, "sub.orgfail.test", 2 },
	/* Invalid records. */
	{ "invalid record", F1("a@invalid.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_PERMERROR,
	  DMARC_POLICY_NONE, NULL, "invalid.test", 1 },
	{ "invalid p with rua is p=none", F1("a@badp.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_NONE, "p", "badp.test", 1 },
	{ "invalid p with rua pass", F1("a@badp.test"), "badp.test", SPF_PASS, NULL, NULL, NULL, 0, DMARC_PASS,
	  DMARC_POLICY_NONE, "p", "badp.test", 1 },
	{ "invalid p without rua", F1("a@badpnorua.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_PERMERROR,
	  DMARC_POLICY_NONE, NULL, "badpnorua.test", 1 },
	/* pct sampling (section 6.6.4). */
	{ "pct inside", F1("a@pct.test"), NULL, SPF_NONE, NULL, NULL, NULL, 19, DMARC_FAIL, DMARC_POLICY_REJECT, "p",
	  "pct.test", 1 },
	{ "pct outside reject to quarantine", F1("a@pct.test"), NULL, SPF_NONE, NULL, NULL, NULL, 20, DMARC_FAIL,
	  DMARC_POLICY_QUARANTINE, "p", "pct.test", 1 },
	{ "pct0 quarantine to none", F1("a@pct0.test"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_FAIL,
	  DMARC_POLICY_NONE, "p", "pct0.test", 1 },
	{ "pct100 applies at 99", F1("a@example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 99, DMARC_FAIL,
	  DMARC_POLICY_REJECT, "p", "example.com", 1 },
	/* The From fields (section 6.6.1). */
	{ "no from", NOFROM, "example.com", SPF_PASS, NULL, NULL, NULL, 0, DMARC_PERMERROR, DMARC_POLICY_REJECT, NULL,
	  NULL, 0 },
	{ "malformed from", F1("Alice <alice@example.com"), "example.com", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_PERMERROR, DMARC_POLICY_REJECT, NULL, NULL, 0 },
	{ "empty group from", F1("undisclosed-recipients:;"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_PERMERROR,
	  DMARC_POLICY_REJECT, NULL, NULL, 0 },
	{ "domain literal from", F1("a@[192.0.2.1]"), NULL, SPF_NONE, NULL, NULL, NULL, 0, DMARC_PERMERROR,
	  DMARC_POLICY_REJECT, NULL, NULL, 0 },
	{ "encoded word address", F1("=?utf-8?b?YWRtaW5AbGVnaXQuY29t?=@example.com"), NULL, SPF_NONE, NULL, NULL,
	  NULL, 0, DMARC_PERMERROR, DMARC_POLICY_REJECT, NULL, NULL, 0 },
	{ "two addresses one domain", F1("a@example.com, b@EXAMPLE.com"), "example.com", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "two addresses pass and fail", F1("a@example.com, b@strict.test"), "example.com", SPF_PASS, NULL, NULL,
	  NULL, 0, DMARC_FAIL, DMARC_POLICY_REJECT, "p", "strict.test", 2 },
	{ "two addresses strictest wins", F1("a@sub.example.com, b@example.com"), NULL, SPF_NONE, NULL, NULL, NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "p", "example.com", 5 },
	{ "two addresses pass and none", F1("a@example.com, b@none.test"), "example.com", SPF_PASS, NULL, NULL, NULL,
	  0, DMARC_NONE, DMARC_POLICY_NONE, NULL, "none.test", 2 },
	{ "two addresses temperror and pass", F1("a@tempfail.test, b@example.com"), "example.com", SPF_PASS, NULL,
	  NULL, NULL, 0, DMARC_TEMPERROR, DMARC_POLICY_NONE, NULL, "tempfail.test", 2 },
	{ "two from fields", F2("a@example.com", "b@strict.test"), "example.com", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_FAIL, DMARC_POLICY_REJECT, "p", "strict.test", 2 },
	{ "two from fields both pass", F2("a@example.com", "Bob <b@example.com>"), "example.com", SPF_PASS, NULL,
	  NULL, NULL, 0, DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "two from fields one malformed", F2("a@example.com", "b@"), "example.com", SPF_PASS, NULL, NULL, NULL, 0,
	  DMARC_PERMERROR, DMARC_POLICY_REJECT, NULL, NULL, 0 },
	{ "two from fields one without address", F2("a@example.com", "(nobody)"), "example.com", SPF_PASS, NULL,
	  NULL, NULL, 0, DMARC_PERMERROR, DMARC_POLICY_REJECT, NULL, NULL, 0 },
	{ "group from", F1("Team: a@example.com, b@example.com;"), NULL, SPF_NONE, "example.com", NULL, NULL, 0,
	  DMARC_PASS, DMARC_POLICY_NONE, "p", "example.com", 1 },
	{ "display name with address", F1("alice@example.com <alice@evil.test>"), "example.com", SPF_PASS, NULL,
	  NULL, NULL, 0, DMARC_NONE, DMARC_POLICY_NONE, NULL, "evil.test", 1 },
};

static int run_case(const struct dcase *c)
{
	struct dmarc_dkim dkim[3];
	size_t ndkim = 0, nfrom = 0;
	struct dmarc_eval *e;
	int ok = 1, rounds;

	while (c->from[nfrom])
		nfrom++;
	if (c->dkim_pass)
		dkim[ndkim++] = (struct dmarc_dkim){ c->dkim_pass, 1, 0 };
	if (c->dkim_fail)
		dkim[ndkim++] = (struct dmarc_dkim){ c->dkim_fail, 0, 0 };
	if (c->dkim_temp)
		dkim[ndkim++] = (struct dmarc_dkim){ c->dkim_temp, 0, 1 };
	e = dmarc_eval_new(c->from, nfrom, c->spf_domain, c->spf, dkim, ndkim);
	e->sample = c->sample < 0 ? 0 : (unsigned)c->sample;
	rounds = run_table(e);
	if (rounds < 0 || e->result != c->want || e->disposition != c->want_disp)
		ok = 0;
	if ((e->decisive ? e->decisive->policy_tag : NULL) != c->want_tag &&
	    (!c->want_tag || !e->decisive || !e->decisive->policy_tag || strcmp(e->decisive->policy_tag, c->want_tag)))
		ok = 0;
	if (c->want_from ? (!e->decisive || strcmp(e->decisive->domain, c->want_from)) : e->decisive != NULL)
		ok = 0;
	if (c->want_lookups >= 0 && (int)e->nlookups != c->want_lookups)
		ok = 0;
	if (!e->reason || !*e->reason)
		ok = 0;
	if (!ok) {
		fprintf(stderr,
			"case \"%s\": got %s/%s tag=%s from=%s lookups=%zu rounds=%d reason=%s\n"
			"   want %s/%s tag=%s from=%s lookups=%d\n",
			c->name, dmarc_result_name(e->result), dmarc_policy_name(e->disposition),
			e->decisive && e->decisive->policy_tag ? e->decisive->policy_tag : "-",
			e->decisive ? e->decisive->domain : "-", e->nlookups, rounds, e->reason ? e->reason : "-",
			dmarc_result_name(c->want), dmarc_policy_name(c->want_disp), c->want_tag ? c->want_tag : "-",
			c->want_from ? c->want_from : "-", c->want_lookups);
		for (size_t i = 0; i < e->nlookups; i++)
			fprintf(stderr, "   %s %s\n", dns_type_name(e->lookups[i]->type), e->lookups[i]->name);
	}
	/* A second run over the full table gives the same result (replay). */
	if (ok && (dmarc_run(e) != DMARC_RUN_DONE || e->result != c->want || e->disposition != c->want_disp)) {
		fprintf(stderr, "case \"%s\": replay differs\n", c->name);
		ok = 0;
	}
	dmarc_eval_free(e);
	return ok;
}

TEST(dmarc_eval_cases)
{
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
		CHECK(run_case(&CASES[i]));
}

TEST(dmarc_eval_details)
{
	/* The fields aggregate reports need, and the alignment flags. */
	const char *from[] = { "Alice <alice@sub.example.com>" };
	struct dmarc_dkim dkim[] = { { "other.example", 1, 0 }, { "mail.example.com", 1, 0 } };
	struct dmarc_eval *e = dmarc_eval_new(from, 1, "bounce.example.net", SPF_PASS, dkim, 2);
	const struct dmarc_domain *d;
	char comment[200];
	CHECK(run_table(e) >= 0);
	CHECK_INT(e->result, DMARC_PASS);
	d = e->decisive;
	CHECK(d != NULL);
	if (!d) {
		dmarc_eval_free(e);
		return;
	}
	CHECK_STR(d->domain, "sub.example.com");
	CHECK_STR(d->org, "example.com");
	CHECK_STR(d->record_domain, "example.com");
	CHECK(!d->spf_aligned);
	CHECK(d->dkim_aligned);
	CHECK_STR(d->dkim_domain, "mail.example.com");
	CHECK(d->has_record);
	CHECK_INT(d->record.p, DMARC_POLICY_REJECT);
	CHECK_INT(d->record.sp, DMARC_POLICY_QUARANTINE);
	CHECK_INT(d->record.np, DMARC_POLICY_REJECT);
	CHECK_INT(d->record.nrua, 1);
	CHECK_STR(d->record.rua[0].uri, "mailto:d@example.com");
	CHECK_INT(d->record.pct, 100);
	CHECK_STR(d->record.fo, "0");
	CHECK_INT(d->nonexistent, -1); /* a pass needs no existence check */
	CHECK_STR(d->record_text, "v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:d@example.com");
	dmarc_comment(d, comment, sizeof comment);
	CHECK_STR(comment, "p=reject sp=quarantine np=reject dis=none");
	dmarc_eval_free(e);

	/* Sampled out: the flag and the comment say so. */
	{
		const char *f2[] = { "a@pct.test" };
		e = dmarc_eval_new(f2, 1, NULL, SPF_NONE, NULL, 0);
		e->sample = 50;
		CHECK(run_table(e) >= 0);
		CHECK(e->decisive && e->decisive->sampled_out);
		CHECK_INT(e->disposition, DMARC_POLICY_QUARANTINE);
		dmarc_comment(e->decisive, comment, sizeof comment);
		CHECK_STR(comment, "p=reject sp=reject dis=quarantine pct-sampled-out");
		CHECK(strstr(e->reason, "pct") != NULL);
		dmarc_eval_free(e);
	}
	/* No From: the problem is the reason. */
	e = dmarc_eval_new(NULL, 0, NULL, SPF_NONE, NULL, 0);
	CHECK_INT(dmarc_run(e), DMARC_RUN_DONE);
	CHECK(e->from_problem && strstr(e->from_problem, "no From"));
	CHECK(e->reason == e->from_problem);
	CHECK_INT(e->nlookups, 0);
	dmarc_eval_free(e);
	dmarc_eval_free(NULL);
}

TEST(dmarc_eval_lookup_order)
{
	/* Org-domain fallback asks the From domain first, then the org; the
	 * existence check comes last, and only for np=. */
	const char *from[] = { "a@nx.example.com" };
	struct dmarc_eval *e = dmarc_eval_new(from, 1, NULL, SPF_NONE, NULL, 0);
	CHECK_INT(run_table(e), 3);
	CHECK_INT(e->nlookups, 5);
	if (e->nlookups == 5) {
		CHECK_STR(e->lookups[0]->name, "_dmarc.nx.example.com");
		CHECK_STR(e->lookups[1]->name, "_dmarc.example.com");
		CHECK_STR(e->lookups[2]->name, "nx.example.com");
		CHECK_INT(e->lookups[2]->type, DNS_T_A);
		CHECK_INT(e->lookups[3]->type, DNS_T_AAAA);
		CHECK_INT(e->lookups[4]->type, DNS_T_MX);
	}
	CHECK_INT(e->decisive ? e->decisive->nonexistent : -9, 1);
	dmarc_eval_free(e);
}

TEST(dmarc_eval_limits)
{
	/* More author domains than evaluated: a From problem, no DNS. */
	char value[4096] = "";
	const char *from[1];
	struct dmarc_eval *e;
	struct dmarc_dkim many[DMARC_MAX_DKIM + 10];
	for (int i = 0; i <= DMARC_MAX_DOMAINS; i++)
		snprintf(value + strlen(value), sizeof value - strlen(value), "%sa@d%d.example", i ? "," : "", i);
	from[0] = value;
	e = dmarc_eval_new(from, 1, NULL, SPF_NONE, NULL, 0);
	CHECK_INT(dmarc_run(e), DMARC_RUN_DONE);
	CHECK_INT(e->result, DMARC_PERMERROR);
	CHECK_INT(e->nlookups, 0);
	dmarc_eval_free(e);
	/* Exactly the bound: evaluated, every domain asked in the first round. */
	value[0] = '\0';
	for (int i = 0; i < DMARC_MAX_DOMAINS; i++)
		snprintf(value + strlen(value), sizeof value - strlen(value), "%sa@d%d.example", i ? "," : "", i);
	for (size_t i = 0; i < ARRAY_LEN(many); i++)
		many[i] = (struct dmarc_dkim){ i % 2 ? "example.com" : "", 1, 0 };
	e = dmarc_eval_new(from, 1, NULL, SPF_NONE, many, ARRAY_LEN(many));
	CHECK(e->ndkim <= DMARC_MAX_DKIM);
	CHECK_INT(dmarc_run(e), DMARC_RUN_NEED_DNS);
	CHECK_INT(e->nlookups, DMARC_MAX_DOMAINS);
	CHECK(run_table(e) >= 0);
	CHECK_INT(e->result, DMARC_NONE);
	dmarc_eval_free(e);
	/* Too many From fields. */
	{
		const char *fields[DMARC_MAX_FROM_FIELDS + 1];
		for (size_t i = 0; i < ARRAY_LEN(fields); i++)
			fields[i] = "a@example.com";
		e = dmarc_eval_new(fields, ARRAY_LEN(fields), NULL, SPF_NONE, NULL, 0);
		CHECK_INT(dmarc_run(e), DMARC_RUN_DONE);
		CHECK_INT(e->result, DMARC_PERMERROR);
		dmarc_eval_free(e);
	}
}
