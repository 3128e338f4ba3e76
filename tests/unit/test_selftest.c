/*
 * Unit tests for src/doctor/selftest.c: the RFC 5322 date parser, and the
 * grade of a well-sent message (10/10) against messages that each get one
 * thing wrong (the right check loses the right points, with a fix).
 */
#include <stdlib.h>
#include <string.h>

#include "doctor/selftest.h"
#include "unit.h"

#define NOW 1796025600 /* 2026-11-30T08:00:00Z */

static const char GOOD_HEADER[] =
	"From: Alice <alice@example.org>\r\n"
	"To: check-abc@example.test\r\n"
	"Subject: hello\r\n"
	"Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
	"Message-ID: <1@example.org>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n";

static void good_facts(struct selftest_facts *f, const char *header)
{
	memset(f, 0, sizeof *f);
	f->client_ip = "192.0.2.10";
	f->helo = "mail.example.org";
	f->rdns_checked = 1;
	f->ptr = "mail.example.org";
	f->fcrdns = 1;
	f->helo_resolves = 1;
	f->spf = "pass";
	f->spf_domain = "example.org";
	f->spf_helo = "pass";
	f->envelope_from = "alice@example.org";
	f->dkim_checked = 1;
	f->dkim[0].domain = "example.org";
	f->dkim[0].result = "pass";
	f->dkim[0].algorithm = "rsa-sha256";
	f->ndkim = 1;
	f->dmarc = "pass";
	f->dmarc_policy = "reject";
	f->from_domain = "example.org";
	f->arc = "none";
	f->tls_version = "TLSv1.3";
	f->tls_cipher = "TLS_AES_256_GCM_SHA384";
	f->header = header;
	f->header_len = strlen(header);
	f->size = 2000;
	f->now = NOW;
}

static double points_of(const struct selftest_grade *g, const char *check)
{
	double p = 0;
	for (size_t i = 0; i < g->nitems; i++)
		if (!strcmp(g->items[i].check, check))
			p += g->items[i].points;
	return p;
}

static int fixes_for_deductions(const struct selftest_grade *g)
{
	for (size_t i = 0; i < g->nitems; i++)
		if ((g->items[i].points > 0) != (g->items[i].fix != NULL))
			return 0;
	return 1;
}

TEST(selftest_date_parse)
{
	CHECK_INT(selftest_parse_date("Mon, 30 Nov 2026 08:00:00 +0000"), NOW);
	CHECK_INT(selftest_parse_date("30 Nov 2026 09:00:00 +0100"), NOW);
	CHECK_INT(selftest_parse_date(" Mon (comment), 30 Nov 2026 03:00 -0500 (EST)"), NOW);
	CHECK_INT(selftest_parse_date("Mon, 30 Nov 26 08:00:00 GMT"), NOW); /* obsolete year and zone */
	CHECK_INT(selftest_parse_date("Mon, 30 Nov 2026 00:00:00 PST"), NOW);
	CHECK_INT(selftest_parse_date("Thu, 1 Jan 1970 00:00:00 +0000"), 0);
	CHECK_INT(selftest_parse_date("Tue, 29 Feb 2028 12:00:00 +0000"), 1835438400);
	CHECK_INT(selftest_parse_date("yesterday"), -1);
	CHECK_INT(selftest_parse_date("Mon, 30 Nov 2026"), -1);
	CHECK_INT(selftest_parse_date("Mon, 30 Foo 2026 08:00:00 +0000"), -1);
	CHECK_INT(selftest_parse_date("Mon, 30 Nov 2026 25:00:00 +0000"), -1);
	CHECK_INT(selftest_parse_date("Mon, 30 Nov 2026 08:00:00 +0000 trailing"), -1);
	CHECK_INT(selftest_parse_date("2026-11-30T08:00:00Z"), -1);
	CHECK_INT(selftest_parse_date(""), -1);
}

TEST(selftest_good_message_scores_ten)
{
	struct selftest_facts f;
	struct selftest_grade g;
	good_facts(&f, GOOD_HEADER);
	selftest_grade(&f, &g);
	for (size_t i = 0; i < g.nitems; i++)
		if (g.items[i].points > 0)
			fprintf(stderr, "unexpected deduction: %s %.1f %s\n", g.items[i].check, g.items[i].points,
				g.items[i].what);
	CHECK(g.score == 10.0);
	CHECK(fixes_for_deductions(&g));
	selftest_grade_clear(&g);
}

struct bad_case {
	const char *name;
	void (*spoil)(struct selftest_facts *);
	const char *header; /* NULL: the good one */
	const char *check;
	double points;
};

static void no_ptr(struct selftest_facts *f) { f->ptr = NULL; f->fcrdns = 0; }
static void unconfirmed(struct selftest_facts *f) { f->fcrdns = 0; }
static void helo_ip(struct selftest_facts *f) { f->helo = "[192.0.2.10]"; }
static void helo_other(struct selftest_facts *f) { f->helo = "other.example.org"; }
static void spf_fail(struct selftest_facts *f) { f->spf = "fail"; }
static void spf_none(struct selftest_facts *f) { f->spf = "none"; }
static void spf_soft(struct selftest_facts *f) { f->spf = "softfail"; }
static void no_dkim(struct selftest_facts *f) { f->ndkim = 0; }
static void dkim_fail(struct selftest_facts *f) { f->dkim[0].result = "fail"; }
static void dkim_unaligned(struct selftest_facts *f) { f->dkim[0].domain = "esp.example.net"; }
static void dkim_subdomain(struct selftest_facts *f) { f->dkim[0].domain = "mail.example.org"; }
static void dmarc_fail(struct selftest_facts *f) { f->dmarc = "fail"; }
static void dmarc_none(struct selftest_facts *f) { f->dmarc = "none"; f->dmarc_policy = NULL; }
static void dmarc_p_none(struct selftest_facts *f) { f->dmarc_policy = "none"; }
static void listed(struct selftest_facts *f) { f->lists[0] = "zen.example"; f->nlists = 1; }
static void listed3(struct selftest_facts *f)
{
	f->lists[0] = "a.example";
	f->lists[1] = "b.example";
	f->lists[2] = "c.example";
	f->nlists = 3;
}
static void no_tls(struct selftest_facts *f) { f->tls_version = NULL; }
static void old_tls(struct selftest_facts *f) { f->tls_version = "TLSv1"; }
static void arc_fail(struct selftest_facts *f) { f->arc = "fail"; }
static void big(struct selftest_facts *f) { f->size = 30u << 20; }
static void nothing(struct selftest_facts *f) { (void)f; }

static const struct bad_case CASES[] = {
	{ "no PTR", no_ptr, NULL, "reverse-dns", 1.5 },
	{ "PTR unconfirmed", unconfirmed, NULL, "reverse-dns", 1.0 },
	{ "HELO literal", helo_ip, NULL, "helo", 0.5 },
	{ "HELO differs from PTR", helo_other, NULL, "helo", 0.2 },
	{ "SPF fail", spf_fail, NULL, "spf", 3.0 },
	{ "SPF none", spf_none, NULL, "spf", 1.5 },
	{ "SPF softfail", spf_soft, NULL, "spf", 1.5 },
	{ "no DKIM", no_dkim, NULL, "dkim", 1.5 },
	{ "DKIM fails", dkim_fail, NULL, "dkim", 2.0 },
	{ "DKIM of another domain", dkim_unaligned, NULL, "dkim", 0.5 },
	{ "DKIM of a subdomain is aligned", dkim_subdomain, NULL, "dkim", 0 },
	{ "DMARC fail", dmarc_fail, NULL, "dmarc", 2.5 },
	{ "no DMARC", dmarc_none, NULL, "dmarc", 1.0 },
	{ "DMARC p=none", dmarc_p_none, NULL, "dmarc-policy", 0.2 },
	{ "on a block list", listed, NULL, "blocklists", 2.0 },
	{ "on three lists: capped", listed3, NULL, "blocklists", 4.0 },
	{ "no TLS", no_tls, NULL, "tls", 1.0 },
	{ "TLS 1.0", old_tls, NULL, "tls", 0.5 },
	{ "ARC fails", arc_fail, NULL, "arc", 0.5 },
	{ "30 MB", big, NULL, "size", 0.5 },
	{ "no From", nothing, "To: x@example.test\r\nSubject: s\r\nDate: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
			      "Message-ID: <1@example.org>\r\n\r\n", "from", 2.0 },
	{ "two From", nothing, "From: a@example.org\r\nFrom: b@example.org\r\nSubject: s\r\n"
			       "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n",
	  "from", 1.5 },
	{ "no Date", nothing, "From: a@example.org\r\nSubject: s\r\nMessage-ID: <1@example.org>\r\n\r\n", "date", 0.5 },
	{ "bad Date", nothing, "From: a@example.org\r\nSubject: s\r\nDate: tomorrow\r\nMessage-ID: <1@example.org>\r\n\r\n",
	  "date", 0.5 },
	{ "future Date", nothing, "From: a@example.org\r\nSubject: s\r\nDate: Mon, 7 Dec 2026 08:00:00 +0000\r\n"
				  "Message-ID: <1@example.org>\r\n\r\n", "date", 0.5 },
	{ "no Message-ID", nothing, "From: a@example.org\r\nSubject: s\r\nDate: Mon, 30 Nov 2026 08:00:00 +0000\r\n\r\n",
	  "message-id", 1.0 },
	{ "bad Message-ID", nothing, "From: a@example.org\r\nSubject: s\r\nDate: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
				     "Message-ID: 12345\r\n\r\n", "message-id", 0.5 },
	{ "no Subject", nothing, "From: a@example.org\r\nDate: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
				 "Message-ID: <1@example.org>\r\n\r\n", "subject", 0.5 },
	{ "multipart without boundary", nothing, "From: a@example.org\r\nSubject: s\r\n"
						 "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n"
						 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n", "mime", 1.0 },
	{ "8-bit header", nothing, "From: a@example.org\r\nSubject: caf\xc3\xa9\r\n"
				   "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n",
	  "encoding", 0.5 },
	{ "bulk without unsubscribe", nothing, "From: a@example.org\r\nSubject: s\r\nPrecedence: bulk\r\n"
					       "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n",
	  "unsubscribe", 1.0 },
	{ "unsubscribe without one-click", nothing,
	  "From: a@example.org\r\nSubject: s\r\nList-Unsubscribe: <https://example.org/u>\r\n"
	  "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n", "unsubscribe", 0.5 },
};

TEST(selftest_each_fault_costs_its_points)
{
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
		const struct bad_case *c = &CASES[i];
		struct selftest_facts f;
		struct selftest_grade g;
		double want_score;
		good_facts(&f, c->header ? c->header : GOOD_HEADER);
		c->spoil(&f);
		selftest_grade(&f, &g);
		want_score = 10.0 - c->points;
		if (points_of(&g, c->check) != c->points || g.score != want_score || !fixes_for_deductions(&g)) {
			fprintf(stderr, "case '%s': %s lost %.1f (want %.1f), score %.1f (want %.1f)\n", c->name,
				c->check, points_of(&g, c->check), c->points, g.score, want_score);
			for (size_t j = 0; j < g.nitems; j++)
				if (g.items[j].points > 0)
					fprintf(stderr, "  %s -%.1f %s\n", g.items[j].check, g.items[j].points,
						g.items[j].what);
			unit_failures++;
		}
		selftest_grade_clear(&g);
	}
}

TEST(selftest_worst_message_scores_zero)
{
	struct selftest_facts f;
	struct selftest_grade g;
	good_facts(&f, "X-Nothing: here\r\n\r\n");
	no_ptr(&f);
	spf_fail(&f);
	no_dkim(&f);
	dmarc_fail(&f);
	listed3(&f);
	no_tls(&f);
	selftest_grade(&f, &g);
	CHECK(g.score == 0.0);
	CHECK(fixes_for_deductions(&g));
	selftest_grade_clear(&g);
}

TEST(selftest_unchecked_and_from_header)
{
	struct selftest_facts f;
	struct selftest_grade g;
	/* DMARC off: alignment is judged against the header's From domain. */
	good_facts(&f, GOOD_HEADER);
	f.dmarc = NULL;
	f.dmarc_policy = NULL;
	f.from_domain = NULL;
	selftest_grade(&f, &g);
	CHECK(g.score == 10.0);
	selftest_grade_clear(&g);
	f.dkim[0].domain = "esp.example.net";
	selftest_grade(&f, &g);
	CHECK(points_of(&g, "dkim") == 0.5);
	selftest_grade_clear(&g);
	/* Checks that did not run cost nothing. */
	good_facts(&f, GOOD_HEADER);
	f.rdns_checked = 0;
	f.ptr = NULL;
	f.spf = NULL;
	f.dkim_checked = 0;
	f.ndkim = 0;
	selftest_grade(&f, &g);
	CHECK(g.score == 10.0);
	selftest_grade_clear(&g);
}
