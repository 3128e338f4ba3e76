/*
 * Tests of adaptive routing and pacing: the reputation classifier
 * (deliver/reputation.c) with real receivers' refusals (Outlook, Gmail,
 * Yahoo) and replies that must NOT count (unknown user, DMARC, greylisting,
 * full mailbox), its pattern parser and errors; the pacing parsers, the
 * per-window limit, the warm-up schedule (deliver/pacing.c); the learned
 * routes in the store; the config keys' errors.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "deliver/pacing.h"
#include "deliver/reputation.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

static struct reputation_list defaults(void)
{
	struct reputation_list l;
	char err[300];
	CHECK_INT(reputation_parse(REPUTATION_DEFAULT_PATTERNS, &l, err, sizeof err), 0);
	return l;
}

TEST(reputation_real_world_refusals)
{
	struct reputation_list l = defaults();
	static const struct {
		int code;
		const char *status, *text;
	} yes[] = {
		{ 550, "5.7.1", "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
				"Internet service provider since part of their network is on our block list (S3140). You can "
				"also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors." },
		{ 550, "5.7.1", "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
				"Internet service provider since part of their network is on our block list (S3150)." },
		{ 550, "5.7.606", "550 5.7.606 Access denied, banned sending IP [203.0.113.5]. To request removal from this "
				  "list please visit https://sender.office.com/" },
		{ 550, "5.7.1", "550-5.7.1 [203.0.113.5] Our system has detected that this message is likely unsolicited "
				"mail. To reduce the amount of spam sent to Gmail, this message has been blocked." },
		{ 550, "5.7.1", "550-5.7.1 [203.0.113.5] Gmail has detected that this message is likely suspicious due to "
				"the very low reputation of the sending IP address." },
		{ 421, "4.7.28", "421-4.7.28 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail "
				 "originating from your IP address." },
		{ 421, "4.7.0", "421-4.7.0 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail "
				"originating from your IP address. To protect our users from spam, mail sent from your IP "
				"address has been temporarily rate limited." },
		{ 421, "4.7.0", "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume "
				"or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes" },
		{ 421, "4.7.0", "421 4.7.0 [TSS09] All messages from 203.0.113.5 will be permanently deferred; Retrying "
				"will NOT succeed. See https://postmaster.yahooinc.com/error-codes" },
		/* no separate status: read from the text */
		{ 550, "", "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. (S3140)" },
	};
	static const struct {
		int code;
		const char *status, *text;
	} no[] = {
		{ 550, "5.1.1", "550 5.1.1 The email account that you tried to reach does not exist." },
		{ 550, "5.7.26", "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC "
				 "policy." },
		{ 451, "4.7.1", "451 4.7.1 Greylisted, please try again later" },
		{ 552, "5.2.2", "552 5.2.2 The email account that you tried to reach is over quota." },
		{ 250, "2.0.0", "250 2.0.0 OK unsolicited" },
		{ 550, "5.7.1", "550 5.7.1 Relaying denied" },
		{ 0, "", "cannot connect: Connection refused" },
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!reputation_match(&l, yes[i].code, yes[i].status, yes[i].text)) {
			fprintf(stderr, "not recognised: %s\n", yes[i].text);
			CHECK(0);
		}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (reputation_match(&l, no[i].code, no[i].status, no[i].text)) {
			fprintf(stderr, "wrongly recognised: %s\n", no[i].text);
			CHECK(0);
		}
	reputation_list_free(&l);
}

TEST(reputation_patterns_parse)
{
	struct reputation_list l;
	char err[300], text[300];
	CHECK_INT(reputation_parse(" 550 5.7. banned ; * Custom Text;4.7.0 *; ", &l, err, sizeof err), 0);
	CHECK_INT((int)l.n, 3);
	CHECK_INT(l.p[0].code, 550);
	CHECK_STR(l.p[0].status, "5.7.");
	CHECK_STR(l.p[0].text, "banned");
	CHECK_STR(l.p[1].status, "*");
	CHECK_STR(l.p[2].text, "");
	reputation_pattern_text(&l.p[0], text, sizeof text);
	CHECK_STR(text, "550 5.7. banned");
	/* the code must match, the status prefix too, the text case-insensitively */
	CHECK(reputation_match(&l, 550, "5.7.606", "550 5.7.606 BANNED sending IP") == &l.p[0]);
	CHECK(reputation_match(&l, 554, "5.7.606", "554 5.7.606 banned") == NULL);
	CHECK(reputation_match(&l, 451, "4.3.0", "451 4.3.0 custom text here") == &l.p[1]);
	CHECK(reputation_match(&l, 421, "4.7.0", "421 4.7.0 anything") == &l.p[2]);
	CHECK(reputation_match(&l, 421, "4.7.01", "421 4.7.01 anything") == NULL);
	reputation_list_free(&l);
	CHECK_INT(reputation_parse("", &l, err, sizeof err), 0);
	CHECK_INT((int)l.n, 0);
	CHECK(reputation_match(&l, 550, "5.7.1", "550 5.7.1 S3140") == NULL);

	CHECK_INT(reputation_parse("S3140", &l, err, sizeof err), -1);
	CHECK(strstr(err, "does not start with an enhanced status code") != NULL);
	CHECK_INT(reputation_parse("550 4.7.1 x", &l, err, sizeof err), -1);
	CHECK(strstr(err, "disagree") != NULL);
	CHECK_INT(reputation_parse("250 2.0.0 x", &l, err, sizeof err), -1);
	CHECK_INT(reputation_parse("*", &l, err, sizeof err), -1);
	CHECK(strstr(err, "matches every refusal") != NULL);
	CHECK_INT(reputation_parse("5.7.1\tlow  reputation", &l, err, sizeof err), 0);
	CHECK_STR(l.p[0].text, "low  reputation");
	reputation_list_free(&l);
	CHECK_INT(reputation_parse("5.7.1 a\x01", &l, err, sizeof err), -1);
	CHECK_INT(reputation_parse("6.7.1 x; 5..1 x", &l, err, sizeof err), -1);
}

TEST(pacing_parsers)
{
	struct pacing_rule r[PACING_MAX_RULES];
	size_t n;
	uint64_t *w;
	int64_t t;
	char err[300];
	CHECK_INT(pacing_parse_rules("gmail=100/h, Outlook=50/h *=500", 1, r, &n, err, sizeof err), 0);
	CHECK_INT((int)n, 3);
	CHECK_STR(r[1].provider, "outlook");
	CHECK(pacing_rule_for(r, n, "gmail") == 100 && pacing_rule_for(r, n, "outlook") == 50);
	CHECK(pacing_rule_for(r, n, "yahoo") == 500 && pacing_rule_for(r, n, "other") == 500);
	CHECK_INT(pacing_parse_rules("gmail=5", 0, r, &n, err, sizeof err), 0);
	CHECK(pacing_rule_for(r, n, "yahoo") == 0);
	CHECK_INT(pacing_parse_rules("gmail=5/h", 0, r, &n, err, sizeof err), -1);
	CHECK_INT(pacing_parse_rules("hotmail=5", 1, r, &n, err, sizeof err), -1);
	CHECK(strstr(err, "not a provider") != NULL);
	CHECK_INT(pacing_parse_rules("gmail", 1, r, &n, err, sizeof err), -1);
	CHECK_INT(pacing_parse_rules("gmail=0", 1, r, &n, err, sizeof err), -1);
	CHECK_INT(pacing_parse_rules("gmail=1, gmail=2", 1, r, &n, err, sizeof err), -1);
	CHECK(strstr(err, "twice") != NULL);
	CHECK_INT(pacing_parse_warm_up("50, 100,200", &w, &n, err, sizeof err), 0);
	CHECK(n == 3 && w[0] == 50 && w[2] == 200);
	free(w);
	CHECK_INT(pacing_parse_warm_up("50, lots", &w, &n, err, sizeof err), -1);
	CHECK(w == NULL && n == 0);
	CHECK_INT(pacing_parse_date("2024-03-01", &t), 0);
	CHECK(t == 1709251200);
	CHECK_INT(pacing_parse_date("", &t), 0);
	CHECK(t == 0);
	CHECK_INT(pacing_parse_date("2024-3-1x", &t), -1);
	CHECK_STR(pacing_key("other", "example.org"), "example.org");
	CHECK_STR(pacing_key("gmail", "example.org"), "gmail");
}

TEST(pacing_window_limit)
{
	struct pacing_conf c = { .window_ms = 3600000 };
	struct pacing *p = pacing_new();
	int64_t until = 0, t0 = 1700000000000LL;
	char why[300];
	size_t n;
	char err[300];
	CHECK_INT(pacing_parse_rules("gmail=3/h", 1, c.limits, &c.nlimits, err, sizeof err), 0);
	(void)n;
	CHECK(pacing_admit(p, &c, "gmail", "gmail", 1, t0, &until, why, sizeof why));
	CHECK(pacing_admit(p, &c, "gmail", "gmail", 1, t0 + 1000, &until, why, sizeof why));
	CHECK(pacing_admit(p, &c, "gmail", "gmail", 1, t0 + 2000, &until, why, sizeof why));
	/* the fourth waits until the first leaves the window */
	CHECK(!pacing_admit(p, &c, "gmail", "gmail", 1, t0 + 3000, &until, why, sizeof why));
	CHECK(until == t0 + 3600000);
	CHECK(strstr(why, "3 recipients sent to gmail") != NULL);
	/* two at once wait for two to leave */
	CHECK(!pacing_admit(p, &c, "gmail", "gmail", 2, t0 + 3000, &until, why, sizeof why));
	CHECK(until == t0 + 1000 + 3600000);
	/* other providers are not limited */
	CHECK(pacing_admit(p, &c, "yahoo", "yahoo", 50, t0, &until, why, sizeof why));
	CHECK(pacing_admit(p, &c, "gmail", "gmail", 1, t0 + 3600000, &until, why, sizeof why));
	/* a message larger than the limit still goes when the window is empty */
	CHECK(pacing_admit(p, &c, "gmail", "gmail2", 10, t0, &until, why, sizeof why));
	pacing_free(p);
}

TEST(pacing_warm_up_grows_day_by_day)
{
	struct pacing_conf c = { .window_ms = 3600000 };
	struct pacing *p = pacing_new();
	struct pacing_state s;
	int64_t until = 0, start = 1709251200; /* 2024-03-01 */
	char why[300], err[300];
	CHECK_INT(pacing_parse_warm_up("2, 4", &c.warm_up, &c.nwarm_up, err, sizeof err), 0);
	c.warm_up_start = start;
	for (int i = 0; i < 2; i++)
		CHECK(pacing_admit(p, &c, "outlook", "outlook", 1, (start + 10 + i) * 1000, &until, why, sizeof why));
	CHECK(!pacing_admit(p, &c, "outlook", "outlook", 1, (start + 20) * 1000, &until, why, sizeof why));
	CHECK(until == (start + 86400) * 1000);
	CHECK(strstr(why, "warm-up day 1") != NULL);
	pacing_get(p, &c, "outlook", "outlook", (start + 20) * 1000, &s);
	CHECK(s.day == 0 && s.today == 2 && s.day_cap == 2);
	/* day 2: four */
	for (int i = 0; i < 4; i++)
		CHECK(pacing_admit(p, &c, "outlook", "outlook", 1, (start + 86400 + i) * 1000, &until, why, sizeof why));
	CHECK(!pacing_admit(p, &c, "outlook", "outlook", 1, (start + 86400 + 9) * 1000, &until, why, sizeof why));
	/* day 3: the schedule is over, no cap */
	pacing_get(p, &c, "outlook", "outlook", (start + 2 * 86400) * 1000, &s);
	CHECK(s.day == 2 && s.day_cap == 0);
	for (int i = 0; i < 10; i++)
		CHECK(pacing_admit(p, &c, "outlook", "outlook", 1, (start + 2 * 86400 + i) * 1000, &until, why, sizeof why));
	free(c.warm_up);
	pacing_free(p);
}

static int count_routes(void *arg, const struct store_route *r)
{
	int *n = arg;
	(*n)++;
	CHECK_STR(r->provider, "outlook");
	CHECK_STR(r->reason, "550 5.7.1 (S3140)");
	CHECK(r->until == 2000 && r->learned == 1000 && r->relay == 1);
	return 0;
}

TEST(store_learned_routes)
{
	char dir[256], err[300];
	struct store *st;
	struct store_route r = { .key = "outlook", .provider = "outlook", .domain = "corp.test", .until = 2000,
				 .learned = 1000, .reason = "550 5.7.1 (S3140)", .relay = 1 };
	int n = 0;
	testlib_mkdtemp(dir, "routes");
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK_INT(store_route_put(st, &r), STORE_OK);
	CHECK_INT(store_route_put(st, &r), STORE_OK); /* replaces */
	CHECK_INT(store_route_list(st, NULL, count_routes, &n), STORE_OK);
	CHECK_INT(n, 1);
	n = 0;
	CHECK_INT(store_route_list(st, "gmail", count_routes, &n), STORE_OK);
	CHECK_INT(n, 0);
	CHECK_INT(store_route_forget(st, "outlook", &n), STORE_OK);
	CHECK_INT(n, 1);
	CHECK_INT(store_route_forget(st, "outlook", &n), STORE_OK);
	CHECK_INT(n, 0);
	store_close(st);
	testlib_rmtree(dir);
}

TEST(config_routing_errors)
{
	char dir[256];
	const char *p;
	struct config *c;
	char *out;
	testlib_mkdtemp(dir, "routingconf");
	p = testlib_write(dir, "postern.conf",
			  "[server]\ndomains = example.org\ndata_dir = /tmp\n"
			  "[routing]\nreputation_patterns = S3140\n"
			  "[pacing]\nlimits = hotmail=5/h\nwarm_up = 50, x\nwarm_up_start = March\n");
	testlib_capture_begin(2);
	c = config_load(p, stderr);
	out = testlib_capture_end(2);
	CHECK(c == NULL);
	CHECK(strstr(out, "postern.conf:5: reputation_patterns: 'S3140' does not start with an enhanced status code") != NULL);
	CHECK(strstr(out, "postern.conf:7: limits: 'hotmail' is not a provider") != NULL);
	CHECK(strstr(out, "postern.conf:8: warm_up: 'x' is not a daily volume") != NULL);
	CHECK(strstr(out, "postern.conf:9: warm_up_start = March is not a date") != NULL);
	free(out);
	config_free(c);
	testlib_rmtree(dir);
}
