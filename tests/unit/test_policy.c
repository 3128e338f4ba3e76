/*
 * Tests of the policy modules' pure parts: the zone and weight parsers
 * (policy/conf.c), the rate-limit windows (policy/ratelimit.c), the
 * graylist decisions and keys (policy/grey.c) over a real store, and the
 * HELO and reverse-name helpers (policy/client.c).
 */
#include <stdlib.h>

#include "config.h"
#include "policy/client.h"
#include "policy/conf.h"
#include "policy/grey.h"
#include "policy/ratelimit.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

static uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d)
{
	return (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d;
}

TEST(policy_zones_parse)
{
	struct policy_zones z;
	char err[300];
	double w;

	CHECK_INT(policy_zones_parse("zen.spamhaus.org=3 127.0.0.2-127.0.0.3=4 127.0.0.10/31=1.5 127.0.0.9=ignore; "
				     "bl.example",
				     0, &z, err, sizeof err),
		  0);
	CHECK_INT(z.n, 2);
	CHECK_STR(z.zones[0].name, "zen.spamhaus.org");
	CHECK_INT(z.zones[0].nrules, 3);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 0, 0, 2), &w), ZONE_LISTED);
	CHECK(w == 4.0);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 0, 0, 11), &w), ZONE_LISTED);
	CHECK(w == 1.5);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 0, 0, 4), &w), ZONE_LISTED);
	CHECK(w == 3.0); /* the zone's weight */
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 0, 0, 9), &w), ZONE_IGNORE);
	/* Spamhaus's refusal codes and answers outside 127/8 are errors. */
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 255, 255, 254), &w), ZONE_ERROR);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 255, 255, 255), &w), ZONE_ERROR);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(10, 0, 0, 2), &w), ZONE_ERROR);
	CHECK_INT(policy_zone_classify(&z.zones[1], ip4(127, 0, 0, 2), &w), ZONE_LISTED);
	CHECK(w == 1.0);
	policy_zones_clear(&z);

	CHECK_INT(policy_zones_parse("list.dnswl.org 127.0.0.255=error", 1, &z, err, sizeof err), 0);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 0, 10, 2), &w), ZONE_LISTED);
	CHECK(w == -1.0);
	CHECK_INT(policy_zone_classify(&z.zones[0], ip4(127, 0, 0, 255), &w), ZONE_ERROR);
	policy_zones_clear(&z);

	CHECK_INT(policy_zones_parse("", 0, &z, err, sizeof err), 0);
	CHECK_INT(z.n, 0);
	CHECK_INT(policy_zones_parse(" ; ;", 0, &z, err, sizeof err), 0);
	CHECK_INT(z.n, 0);

	CHECK_INT(policy_zones_parse("nodots", 0, &z, err, sizeof err), -1);
	CHECK(strstr(err, "not a DNS zone") != NULL);
	CHECK_INT(policy_zones_parse("a.example=lots", 0, &z, err, sizeof err), -1);
	CHECK(strstr(err, "not a weight") != NULL);
	CHECK_INT(policy_zones_parse("a.example 127.0.0.300=1", 0, &z, err, sizeof err), -1);
	CHECK(strstr(err, "not a rule") != NULL);
	CHECK_INT(policy_zones_parse("a.example 127.0.0.3-127.0.0.2=1", 0, &z, err, sizeof err), -1);
	CHECK_INT(policy_zones_parse("a.example 127.0.0.2=maybe", 0, &z, err, sizeof err), -1);
	CHECK_INT(policy_zones_parse("a.example; A.EXAMPLE", 0, &z, err, sizeof err), -1);
	CHECK(strstr(err, "twice") != NULL);
	CHECK_INT(policy_zones_parse("a.example=101", 0, &z, err, sizeof err), -1);
}

TEST(policy_weights_parse)
{
	struct policy_weights w;
	char err[500];
	double v;

	policy_weights_default(&w);
	CHECK(w.w[CHECK_FCRDNS_NONE] == 1.5);
	CHECK_INT(policy_weights_parse("fcrdns.none=2, helo.ours=-0.25 spf.fail=+3", &w, err, sizeof err), 0);
	CHECK(w.w[CHECK_FCRDNS_NONE] == 2.0);
	CHECK(w.w[CHECK_HELO_OURS] == -0.25);
	CHECK(w.w[CHECK_SPF_FAIL] == 3.0);
	CHECK_INT(policy_weights_parse("nope=1", &w, err, sizeof err), -1);
	CHECK(strstr(err, "unknown check 'nope'") && strstr(err, "fcrdns.none"));
	CHECK_INT(policy_weights_parse("helo.ours", &w, err, sizeof err), -1);
	CHECK_INT(policy_weights_parse("helo.ours=1.234", &w, err, sizeof err), -1);
	CHECK_INT(policy_parse_weight("0.5", 3, &v), 0);
	CHECK(v == 0.5);
	CHECK_INT(policy_parse_weight("-.", 2, &v), -1);
	CHECK_INT(policy_parse_weight("", 0, &v), -1);
	CHECK_INT(policy_parse_weight("1e3", 3, &v), -1);
}

TEST(policy_ratelimit_windows)
{
	struct ratelimit *rl = ratelimit_new(2);
	uint64_t t = 1000000000ULL;

	for (int i = 0; i < 3; i++)
		CHECK_INT(ratelimit_take(rl, "192.0.2.1", RL_CONNECTIONS, 3, t + (uint64_t)i), 1);
	CHECK_INT(ratelimit_take(rl, "192.0.2.1", RL_CONNECTIONS, 3, t + 10), 0);
	/* Another client and another kind are counted apart. */
	CHECK_INT(ratelimit_take(rl, "192.0.2.2", RL_CONNECTIONS, 3, t + 10), 1);
	CHECK_INT(ratelimit_take(rl, "192.0.2.1", RL_MESSAGES, 3, t + 10), 1);
	/* Two windows later everything is forgotten. */
	CHECK_INT(ratelimit_take(rl, "192.0.2.1", RL_CONNECTIONS, 3, t + 130000), 1);
	/* Limit 0: no limit, nothing counted. */
	CHECK_INT(ratelimit_take(rl, "192.0.2.9", RL_CONNECTIONS, 0, t), 1);
	/* The table is full (2 entries): new keys are let through. */
	CHECK_INT(ratelimit_take(rl, "192.0.2.3", RL_CONNECTIONS, 1, t + 130000), 1);
	CHECK_INT(ratelimit_take(rl, "192.0.2.3", RL_CONNECTIONS, 1, t + 130000), 1);
	CHECK(ratelimit_full(rl) >= 2);
	/* Idle entries are dropped, making room again. */
	CHECK_INT(ratelimit_take(rl, "192.0.2.3", RL_CONNECTIONS, 1, t + 3 * 3600000ULL), 1);
	CHECK_INT(ratelimit_take(rl, "192.0.2.3", RL_CONNECTIONS, 1, t + 3 * 3600000ULL), 0);
	ratelimit_free(rl);
}

TEST(policy_grey_keys)
{
	char out[100];
	CHECK_INT(grey_client_block("192.0.2.77", 24, 64, out, sizeof out), 0);
	CHECK_STR(out, "192.0.2.0/24");
	CHECK_INT(grey_client_block("192.0.2.77", 20, 64, out, sizeof out), 0);
	CHECK_STR(out, "192.0.0.0/20");
	CHECK_INT(grey_client_block("2001:db8:1:2:3:4:5:6", 24, 64, out, sizeof out), 0);
	CHECK_STR(out, "2001:db8:1:2::/64");
	CHECK_INT(grey_client_block("nope", 24, 64, out, sizeof out), -1);
	grey_normalise_sender("Bounce-123-456@List.Example", out, sizeof out);
	CHECK_STR(out, "bounce-#-#@list.example");
	grey_normalise_sender("prvs=1234abcd=Alice@example.org", out, sizeof out);
	CHECK_STR(out, "alice@example.org");
	grey_normalise_sender("", out, sizeof out);
	CHECK_STR(out, "");
}

TEST(policy_grey_judge)
{
	struct grey_params p = { .min_delay = 60000, .retry_window = 3600000, .expire = 86400000 };
	struct store_grey r = { 0 };
	int64_t t = 1700000000000LL, retry;

	CHECK_INT(grey_judge(&r, 0, t, &p, &retry), GREY_DEFER);
	CHECK_INT(retry, 60000);
	CHECK_INT(grey_judge(&r, 1, t + 10000, &p, &retry), GREY_DEFER);
	CHECK_INT(retry, 50000);
	CHECK_INT(grey_judge(&r, 1, t + 60000, &p, &retry), GREY_PASS);
	CHECK(r.passed == t + 60000);
	/* Passed: remembered while used. */
	CHECK_INT(grey_judge(&r, 1, t + 80000000, &p, &retry), GREY_PASS);
	/* Idle past expire: starts again. */
	CHECK_INT(grey_judge(&r, 1, t + 80000000 + 86400001, &p, &retry), GREY_DEFER);
	/* A retry after the window is a new first attempt. */
	memset(&r, 0, sizeof r);
	CHECK_INT(grey_judge(&r, 0, t, &p, &retry), GREY_DEFER);
	CHECK_INT(grey_judge(&r, 1, t + 3600001, &p, &retry), GREY_DEFER);
	CHECK(r.first_seen == t + 3600001);
	CHECK_INT(retry, 60000);
}

TEST(policy_grey_store)
{
	char dir[64], err[256];
	struct store *st;
	struct grey_params p = { .min_delay = 1000, .retry_window = 60000, .expire = 86400000, .auto_allow_after = 2,
				 .auto_allow_expire = 100000 };
	int64_t t = 1700000000000LL, retry, n;
	struct store_allow a;

	testlib_mkdtemp(dir, "grey");
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK_INT(grey_check(st, "192.0.2.0/24", "a@x.example", "b@y.example", t, &p, &retry), GREY_DEFER);
	CHECK_INT(grey_check(st, "192.0.2.0/24", "a@x.example", "b@y.example", t + 500, &p, &retry), GREY_DEFER);
	CHECK_INT(retry, 500);
	CHECK_INT(grey_check(st, "192.0.2.0/24", "a@x.example", "b@y.example", t + 1000, &p, &retry), GREY_PASS);
	CHECK_INT(grey_allowed(st, "192.0.2.0/24", t, &p), 0);
	grey_count(st, "192.0.2.0/24", t, &p);
	CHECK_INT(grey_allowed(st, "192.0.2.0/24", t, &p), 0);
	grey_count(st, "192.0.2.0/24", t + 1, &p);
	CHECK_INT(grey_allowed(st, "192.0.2.0/24", t + 2, &p), 1);
	CHECK_INT(grey_allowed(st, "192.0.2.0/24", t + 200000, &p), 0); /* idle too long */
	CHECK_INT(store_allow_put(st, &(struct store_allow){ .key = "example.org", .first_seen = t, .last_seen = t,
							     .manual = 1 }),
		  STORE_OK);
	CHECK_INT(grey_allowed(st, "example.org", t + 999999999, &p), 1);
	CHECK_INT(store_allow_get(st, "example.org", &a), STORE_OK);
	CHECK_INT(a.manual, 1);
	CHECK_INT(store_grey_expire(st, t + 2000, t + 2000, t + 2000, &n), STORE_OK);
	CHECK_INT(n, 2); /* the triplet and the automatic entry; the manual one stays */
	CHECK_INT(store_grey_forget(st, "example.org", &n), STORE_OK);
	CHECK_INT(n, 1);
	CHECK_INT(store_allow_get(st, "example.org", &a), STORE_NOTFOUND);
	store_close(st);
	testlib_rmtree(dir);
}

TEST(policy_client_helpers)
{
	char out[200], addr[64];
	struct config c = { 0 };
	char *domains[] = { "example.test" };
	c.hostname = "mx.example.test";
	c.domains = domains;
	c.ndomains = 1;

	CHECK_INT(policy_reverse_name("192.0.2.1", "bl.example", out, sizeof out), 0);
	CHECK_STR(out, "1.2.0.192.bl.example");
	CHECK_INT(policy_reverse_name("192.0.2.1", NULL, out, sizeof out), 0);
	CHECK_STR(out, "1.2.0.192.in-addr.arpa");
	CHECK_INT(policy_reverse_name("2001:db8::1", NULL, out, sizeof out), 0);
	CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	CHECK_INT(policy_reverse_name("x", NULL, out, sizeof out), -1);

	CHECK_INT(policy_helo_kind("mail.example.org", addr, sizeof addr), HELO_NAME);
	CHECK_INT(policy_helo_kind("mail.example.org.", addr, sizeof addr), HELO_NAME);
	CHECK_INT(policy_helo_kind("localhost", addr, sizeof addr), HELO_BAD);
	CHECK_INT(policy_helo_kind("192.0.2.1", addr, sizeof addr), HELO_BAD);
	CHECK_INT(policy_helo_kind("-a.example", addr, sizeof addr), HELO_BAD);
	CHECK_INT(policy_helo_kind("a_b.example", addr, sizeof addr), HELO_BAD);
	CHECK_INT(policy_helo_kind("[192.0.2.1]", addr, sizeof addr), HELO_LITERAL);
	CHECK_STR(addr, "192.0.2.1");
	CHECK_INT(policy_helo_kind("[IPv6:2001:db8::1]", addr, sizeof addr), HELO_LITERAL);
	CHECK_STR(addr, "2001:db8::1");
	CHECK_INT(policy_helo_kind("[300.1.1.1]", addr, sizeof addr), HELO_BAD);

	CHECK_INT(policy_helo_is_ours("MX.example.test", &c, "192.0.2.25", "198.51.100.1"), 1);
	CHECK_INT(policy_helo_is_ours("example.test", &c, "192.0.2.25", "198.51.100.1"), 1);
	CHECK_INT(policy_helo_is_ours("[192.0.2.25]", &c, "192.0.2.25", "198.51.100.1"), 1);
	CHECK_INT(policy_helo_is_ours("[127.0.0.1]", &c, "192.0.2.25", "198.51.100.1"), 1);
	CHECK_INT(policy_helo_is_ours("[127.0.0.1]", &c, "127.0.0.1", "127.0.0.1"), 1);
	CHECK_INT(policy_helo_is_ours("[198.51.100.1]", &c, "192.0.2.25", "198.51.100.1"), 0);
	CHECK_INT(policy_helo_is_ours("mail.example.org", &c, "192.0.2.25", "198.51.100.1"), 0);
}
