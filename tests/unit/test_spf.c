/*
 * Unit tests for src/auth/spf.c over an in-process table of DNS answers
 * (integration tests use a real DNS server; see tests/integration/).
 * Vectors: RFC 7208 section 7.4 (macros) and hand-made policies.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "auth/spf.h"
#include "unit.h"

struct rec {
	const char *name;
	uint16_t type;
	const char *value; /* A/AAAA text, MX "pref name", TXT text, PTR name; NULL = TEMPFAIL */
};

/* Answers every open question from recs; names not there are NXDOMAIN. */
static enum spf_result run_table(struct spf_eval *e, const struct rec *recs, size_t n)
{
	for (int round = 0; round < 100; round++) {
		if (spf_run(e) == SPF_RUN_DONE)
			return e->result;
		for (size_t i = 0; i < e->nlookups; i++) {
			struct spf_lookup *l = e->lookups[i];
			struct dns_answer a = { 0 };
			struct dns_rr rrs[16];
			enum dns_status st = DNS_NXDOMAIN;
			int exists = 0, fail = 0;
			if (l->answered)
				continue;
			memset(rrs, 0, sizeof rrs);
			for (size_t k = 0; k < n; k++) {
				if (strcasecmp(recs[k].name, l->name))
					continue;
				exists = 1;
				if (recs[k].type != l->type)
					continue;
				if (!recs[k].value) {
					fail = 1;
					continue;
				}
				struct dns_rr *rr = &rrs[a.nrrs++];
				rr->type = l->type;
				if (l->type == DNS_T_A)
					inet_pton(AF_INET, recs[k].value, rr->addr);
				else if (l->type == DNS_T_AAAA)
					inet_pton(AF_INET6, recs[k].value, rr->addr);
				else if (l->type == DNS_T_MX) {
					rr->pref = (uint16_t)atoi(recs[k].value);
					rr->name = (char *)strchr(recs[k].value, ' ') + 1;
				} else if (l->type == DNS_T_PTR)
					rr->name = (char *)recs[k].value;
				else {
					rr->data = (unsigned char *)recs[k].value;
					rr->len = strlen(recs[k].value);
				}
			}
			a.rrs = rrs;
			st = fail ? DNS_TEMPFAIL : a.nrrs ? DNS_ANSWER : exists ? DNS_NODATA : DNS_NXDOMAIN;
			spf_answer(e, i, st, &a);
		}
	}
	return (enum spf_result)-1;
}

static enum spf_result check(const char *ip, const char *sender, const struct rec *recs, size_t n)
{
	struct spf_eval *e = spf_eval_new(ip, sender, "mail.example.org", "mx.example.test", 0);
	enum spf_result r = run_table(e, recs, n);
	spf_eval_free(e);
	return r;
}

#define CHECK_SPF(ip, sender, recs, want) CHECK_INT(check(ip, sender, recs, sizeof(recs) / sizeof(recs[0])), want)

TEST(spf_macros_rfc7208_examples)
{
	static const struct {
		const char *macro, *want;
	} v[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
		{ "%%%_%-", "% %20" },
		{ "%{L}", "strong-bad" },
	};
	struct spf_request req = { 0 };
	char out[512];
	spf_ip_parse("192.0.2.3", &req.ip);
	req.sender = "strong-bad@email.example.com";
	req.helo = "mx.example.com";
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		CHECK_INT(spf_expand_test(&req, "email.example.com", NULL, v[i].macro, 0, out, sizeof out), 0);
		CHECK_STR(out, v[i].want);
	}
	spf_ip_parse("2001:db8::cb01", &req.ip);
	CHECK_INT(spf_expand_test(&req, "email.example.com", NULL, "%{ir}.%{v}._spf.%{d2}", 0, out, sizeof out), 0);
	CHECK_STR(out, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	/* URL escaping of upper-case macros, and the exp-only letters. */
	req.sender = "a b@example.com";
	CHECK_INT(spf_expand_test(&req, "example.com", NULL, "%{S}", 0, out, sizeof out), 0);
	CHECK_STR(out, "a%20b%40example.com");
	CHECK(spf_expand_test(&req, "example.com", NULL, "%{c}", 0, out, sizeof out) != 0);
	CHECK_INT(spf_expand_test(&req, "example.com", NULL, "%{c} is not ok", 1, out, sizeof out), 0);
	CHECK_STR(out, "2001:db8::cb01 is not ok");
	CHECK(spf_expand_test(&req, "example.com", NULL, "%{x}", 0, out, sizeof out) != 0);
	CHECK(spf_expand_test(&req, "example.com", NULL, "%{d0}", 0, out, sizeof out) != 0);
	CHECK(spf_expand_test(&req, "example.com", NULL, "%", 0, out, sizeof out) != 0);
}

TEST(spf_record_syntax)
{
	char why[256];
	static const char *const good[] = {
		"v=spf1", "v=spf1 -all", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
		"v=spf1 a mx/24 a:example.org/24//64 mx:%{d}//64 ptr exists:%{i}._spf.%{d} -all",
		"v=spf1 include:_spf.example.org redirect=_spf.example.net", "v=spf1 exp=explain.%{d} -all",
		"V=SPF1 ALL", "v=spf1 foo=bar -all", "v=spf1 a:example.org.",
	};
	static const char *const bad[] = {
		"v=spf1 ip4:192.0.2.0/33", "v=spf1 ip4:300.0.0.1", "v=spf1 ip6:2001:db8::/129", "v=spf1 foo",
		"v=spf1 include", "v=spf1 redirect=a.example redirect=b.example", "v=spf1 a:example.org/0024",
		"v=spf1 a:foo.1", "v=spf1 exists:%{z}.example", "v=spf1 all:foo", "v=spf1 -all:x", "v=spf10",
		"v=spf1 include:example", "v=spf1 a//129",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int rc = spf_record_check(good[i], why, sizeof why);
		if (rc)
			fprintf(stderr, "refused %s: %s\n", good[i], why);
		CHECK_INT(rc, 0);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = spf_record_check(bad[i], why, sizeof why);
		if (!rc)
			fprintf(stderr, "accepted %s\n", bad[i]);
		CHECK(rc < 0);
	}
}

TEST(spf_basic_results)
{
	static const struct rec recs[] = {
		{ "example.org", DNS_T_TXT, "v=spf1 ip4:192.0.2.0/24 a:mail.example.org mx ~all" },
		{ "example.org", DNS_T_MX, "10 mx.example.org" },
		{ "mx.example.org", DNS_T_A, "198.51.100.7" },
		{ "mail.example.org", DNS_T_A, "203.0.113.9" },
		{ "neutral.example", DNS_T_TXT, "v=spf1 ?all" },
		{ "two.example", DNS_T_TXT, "v=spf1 -all" },
		{ "two.example", DNS_T_TXT, "v=spf1 +all" },
		{ "tmp.example", DNS_T_TXT, NULL },
		{ "inc.example", DNS_T_TXT, "v=spf1 include:example.org -all" },
		{ "incnone.example", DNS_T_TXT, "v=spf1 include:nothing.example -all" },
		{ "redir.example", DNS_T_TXT, "v=spf1 redirect=example.org" },
	};
	CHECK_SPF("192.0.2.200", "a@example.org", recs, SPF_PASS);
	CHECK_SPF("198.51.100.7", "a@example.org", recs, SPF_PASS);
	CHECK_SPF("203.0.113.9", "a@example.org", recs, SPF_PASS);
	CHECK_SPF("203.0.113.10", "a@example.org", recs, SPF_SOFTFAIL);
	CHECK_SPF("203.0.113.10", "a@neutral.example", recs, SPF_NEUTRAL);
	CHECK_SPF("203.0.113.10", "a@nothing.example", recs, SPF_NONE);
	CHECK_SPF("203.0.113.10", "a@two.example", recs, SPF_PERMERROR);
	CHECK_SPF("203.0.113.10", "a@tmp.example", recs, SPF_TEMPERROR);
	CHECK_SPF("198.51.100.7", "a@inc.example", recs, SPF_PASS);
	CHECK_SPF("203.0.113.10", "a@inc.example", recs, SPF_FAIL);
	CHECK_SPF("203.0.113.10", "a@incnone.example", recs, SPF_PERMERROR);
	CHECK_SPF("192.0.2.1", "a@redir.example", recs, SPF_PASS);
	CHECK_SPF("::ffff:192.0.2.1", "a@example.org", recs, SPF_PASS);
}

TEST(spf_limits)
{
	/* Eleven includes: the eleventh DNS-querying term is a permerror. */
	static const struct rec many[] = {
		{ "l.example", DNS_T_TXT,
		  "v=spf1 include:a.example include:a.example include:a.example include:a.example "
		  "include:a.example include:a.example include:a.example include:a.example include:a.example "
		  "include:a.example include:a.example -all" },
		{ "a.example", DNS_T_TXT, "v=spf1 -all" },
		{ "ten.example", DNS_T_TXT,
		  "v=spf1 include:a.example include:a.example include:a.example include:a.example "
		  "include:a.example include:a.example include:a.example include:a.example include:a.example "
		  "include:a.example -all" },
		{ "void.example", DNS_T_TXT, "v=spf1 a:n1.example a:n2.example a:n3.example -all" },
		{ "void2.example", DNS_T_TXT, "v=spf1 a:n1.example a:n2.example -all" },
		{ "loop.example", DNS_T_TXT, "v=spf1 include:loop.example -all" },
	};
	CHECK_SPF("192.0.2.1", "x@l.example", many, SPF_PERMERROR);
	CHECK_SPF("192.0.2.1", "x@ten.example", many, SPF_FAIL);
	CHECK_SPF("192.0.2.1", "x@void.example", many, SPF_PERMERROR);
	CHECK_SPF("192.0.2.1", "x@void2.example", many, SPF_FAIL);
	CHECK_SPF("192.0.2.1", "x@loop.example", many, SPF_PERMERROR);
}

TEST(spf_explanation_and_header)
{
	static const struct rec recs[] = {
		{ "example.org", DNS_T_TXT, "v=spf1 -all exp=why.example.org" },
		{ "why.example.org", DNS_T_TXT, "%{i} is not allowed to send for %{d}" },
	};
	struct spf_eval *e = spf_eval_new("192.0.2.9", "bob@example.org", "h.example", "mx.example.test", 0);
	char *hdr;
	CHECK_INT(run_table(e, recs, 2), SPF_FAIL);
	CHECK_STR(e->explanation, "192.0.2.9 is not allowed to send for example.org");
	hdr = spf_received_header(e);
	{
		const char *want = "fail (mx.example.test: domain of bob@example.org does not designate 192.0.2.9";
		CHECK(strncmp(hdr, want, strlen(want)) == 0);
	}
	CHECK(strstr(hdr, "client-ip=192.0.2.9;") != NULL);
	CHECK(strstr(hdr, "identity=mailfrom") != NULL);
	free(hdr);
	spf_eval_free(e);
}

TEST(spf_null_sender_uses_helo)
{
	struct spf_eval *e = spf_eval_new("192.0.2.9", "", "mail.example.org", NULL, 0);
	CHECK_STR(e->req.sender, "postmaster@mail.example.org");
	CHECK_STR(e->domain, "mail.example.org");
	spf_eval_free(e);
}
