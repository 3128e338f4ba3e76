/*
 * Tests of report/deliverability.c: reporter -> provider mapping, the
 * reputation test, per-day aggregation and the three flags at and around
 * their thresholds, and the store aggregates feeding it (deliv_load).
 */
#include <stdlib.h>

#include "report/deliverability.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

#define NOW 1700049600 /* 2023-11-15 12:00 UTC */
#define DAY (NOW - NOW % 86400)

static const char *const ours[] = { "example.test", "catch.test" };

TEST(deliv_reporter_provider)
{
	CHECK(deliv_reporter_provider("google.com", "noreply-dmarc-support@google.com") == DELIV_GMAIL);
	CHECK(deliv_reporter_provider("Enterprise Outlook", "dmarcreport@microsoft.com") == DELIV_OUTLOOK);
	CHECK(deliv_reporter_provider("Microsoft Corporation", NULL) == DELIV_OUTLOOK);
	CHECK(deliv_reporter_provider("Yahoo", "dmarchelp@yahooinc.com") == DELIV_YAHOO);
	CHECK(deliv_reporter_provider("x", "<dmarc@AOL.com>") == DELIV_YAHOO);
	CHECK(deliv_reporter_provider("Apple Inc.", NULL) == DELIV_ICLOUD);
	CHECK(deliv_reporter_provider("Bulk", "reports@example.org") == -1);
	CHECK(deliv_reporter_provider("Pineapple Mail", NULL) == -1); /* a whole word only */
	CHECK(deliv_reporter_provider("notgoogle.com", NULL) == -1);
	CHECK(deliv_reporter_provider(NULL, NULL) == -1);
}

TEST(deliv_is_reputation)
{
	struct deliv_params p;
	deliv_params_default(&p);
	CHECK(deliv_is_reputation(&p, "5.7.1", "rejected"));
	CHECK(deliv_is_reputation(&p, "4.7.0", "try later"));
	CHECK(!deliv_is_reputation(&p, "5.1.1", "no such user"));
	CHECK(deliv_is_reputation(&p, "5.0.0", "Our system has detected poor sender REPUTATION"));
	CHECK(!deliv_is_reputation(&p, NULL, NULL));
}

static struct deliv *fresh(struct deliv_params *p)
{
	deliv_params_default(p);
	p->min_messages = 10;
	return deliv_new(NOW, p);
}

TEST(deliv_days_and_totals)
{
	struct deliv_params p;
	struct deliv *d = fresh(&p);
	CHECK(d->ndays == 7 && d->day0 == DAY - 6 * 86400);
	deliv_add_ledger(d, "gmail", DAY, "delivered", 12, "direct");
	deliv_add_ledger(d, "gmail", DAY, "deferred", 3, "direct,relay");
	deliv_add_ledger(d, "gmail", DAY - 86400, "failed", 2, "relay");
	deliv_add_ledger(d, "gmail", DAY - 7 * 86400, "delivered", 100, "x"); /* before the window */
	deliv_add_ledger(d, "local", DAY, "delivered", 5, "local");           /* not a provider */
	deliv_add_ledger(d, "other", DAY, "delivered", 1, NULL);
	deliv_add_reason(d, "gmail", "failed", "5.7.1", 550, 2, "blocked");
	/* 12 accepted by gmail and no report, min 10: reports_missing */
	CHECK(deliv_finish(d) == 1);
	CHECK(d->prov[DELIV_GMAIL].total.sent == 17);
	CHECK(d->prov[DELIV_GMAIL].total.delivered == 12);
	CHECK(d->prov[DELIV_GMAIL].total.deferred == 3);
	CHECK(d->prov[DELIV_GMAIL].total.bounced == 2);
	CHECK(d->prov[DELIV_GMAIL].days[6].sent == 15 && d->prov[DELIV_GMAIL].days[5].bounced == 2);
	CHECK_STR(d->prov[DELIV_GMAIL].routes, "direct,relay");
	CHECK(d->prov[DELIV_GMAIL].nreasons == 1 && d->prov[DELIV_GMAIL].reasons[0].reputation);
	CHECK(d->prov[DELIV_OTHER].total.delivered == 1);
	CHECK(d->prov[DELIV_GMAIL].reports_missing && !d->prov[DELIV_OTHER].reports_missing);
	deliv_free(d);
}

TEST(deliv_silent_drop_threshold)
{
	struct deliv_params p;
	struct deliv *d = fresh(&p);
	deliv_add_ledger(d, "gmail", DAY - 86400, "delivered", 10, "direct");
	deliv_add_ledger(d, "gmail", DAY, "delivered", 50, "direct"); /* after the newest report: not compared */
	/* 7 of 10 reported: below 80 % */
	deliv_add_report(d, "google.com", NULL, DAY - 86400, DAY - 1, "example.test", 7, 7, ours, 2);
	deliv_add_report(d, "google.com", NULL, DAY - 86400, DAY - 1, "someone-else.test", 500, 0, ours, 2);
	CHECK(deliv_finish(d) == 1);
	CHECK(d->prov[DELIV_GMAIL].silent_drop && !d->prov[DELIV_GMAIL].reports_missing);
	CHECK(d->prov[DELIV_GMAIL].compared_accepted == 10);
	CHECK(d->prov[DELIV_GMAIL].total.reported == 7 && d->prov[DELIV_GMAIL].days[5].reports == 1);
	/* one more reported message: 8 of 10 is not below 80 % */
	deliv_add_report(d, "Google Inc.", NULL, DAY - 86400, DAY - 1, "EXAMPLE.TEST", 1, 1, ours, 2);
	CHECK(deliv_finish(d) == 0);
	deliv_free(d);

	/* below min_messages: no flag whatever the ratio */
	d = fresh(&p);
	deliv_add_ledger(d, "outlook", DAY - 86400, "delivered", 9, "direct");
	deliv_add_report(d, "Microsoft", NULL, DAY - 86400, DAY, "example.test", 0, 0, ours, 2);
	CHECK(deliv_finish(d) == 0);
	deliv_free(d);
}

TEST(deliv_reports_missing)
{
	struct deliv_params p;
	struct deliv *d = fresh(&p);
	deliv_add_ledger(d, "yahoo", DAY, "delivered", 10, "direct");
	deliv_add_ledger(d, "other", DAY, "delivered", 1000, "direct");
	CHECK(deliv_finish(d) == 1);
	CHECK(d->prov[DELIV_YAHOO].reports_missing && !d->prov[DELIV_OTHER].reports_missing);
	deliv_free(d);
}

TEST(deliv_reputation_runs)
{
	struct deliv_params p;
	struct deliv *d = fresh(&p);
	/* newest first: 3 refusals now, after a delivery, after 5 refusals */
	for (int i = 0; i < 3; i++)
		deliv_add_attempt(d, "outlook", "failed", "5.7.1", "blocked");
	deliv_add_attempt(d, "outlook", "delivered", "2.0.0", "ok");
	for (int i = 0; i < 5; i++)
		deliv_add_attempt(d, "outlook", "deferred", "4.7.0", "try later");
	deliv_add_attempt(d, "outlook", "failed", "5.1.1", "no such user");
	deliv_add_attempt(d, "outlook", "failed", "5.7.1", "blocked");
	CHECK(deliv_finish(d) == 1);
	CHECK(d->prov[DELIV_OUTLOOK].reputation);
	CHECK(d->prov[DELIV_OUTLOOK].longest_run == 5 && d->prov[DELIV_OUTLOOK].current_run == 3);
	deliv_free(d);

	d = fresh(&p);
	for (int i = 0; i < 4; i++)
		deliv_add_attempt(d, "gmail", "failed", "5.7.26", "unauthenticated");
	CHECK(deliv_finish(d) == 0 && d->prov[DELIV_GMAIL].longest_run == 4);
	deliv_free(d);
}

TEST(deliv_hostile_counts_saturate)
{
	struct deliv_params p;
	struct deliv *d = fresh(&p);
	deliv_add_report(d, "google.com", NULL, DAY, DAY + 86399, "example.test", INT64_MAX, INT64_MAX, ours, 2);
	deliv_add_report(d, "google.com", NULL, DAY, DAY + 86399, "example.test", INT64_MAX, -5, ours, 2);
	deliv_add_report(d, "google.com", NULL, DAY + 86400 * 30, DAY, "example.test", 5, 5, ours, 2); /* outside */
	deliv_finish(d);
	CHECK(d->prov[DELIV_GMAIL].total.reported == INT64_MAX);
	deliv_free(d);
	p.days = 100000;
	d = deliv_new(-5, &p);
	CHECK(d->ndays == DELIV_MAX_DAYS);
	deliv_free(d);
}

TEST(deliv_load_from_store)
{
	char dir[64], err[256];
	struct store *st;
	struct deliv_params p;
	struct deliv *d;
	int64_t t = (int64_t)DAY * 1000 + 3600 * 1000;
	testlib_mkdtemp(dir, "deliv");
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	if (!st)
		return;
	for (int i = 0; i < 12; i++) {
		struct store_delivery row = { .time = t + i, .qid = "q", .rcpt = "a@gm.test", .domain = "gm.test",
					      .provider = "gmail", .route = "direct", .outcome = "delivered",
					      .code = 250, .status = "2.0.0", .reply = "ok" };
		CHECK(store_ledger_add(st, &row) == STORE_OK);
	}
	for (int i = 0; i < 6; i++) {
		struct store_delivery row = { .time = t + 100 + i, .qid = "q", .rcpt = "b@ms.test", .domain = "ms.test",
					      .provider = "outlook", .route = "relay", .outcome = "failed",
					      .code = 550, .status = "5.7.1", .reply = "550 5.7.1 blocked <&>" };
		CHECK(store_ledger_add(st, &row) == STORE_OK);
	}
	{
		struct store_dmarc_record rec[2] = {
			{ .source_ip = "192.0.2.1", .count = 4, .dkim = "pass", .spf = "fail", .header_from = "example.test" },
			{ .source_ip = "192.0.2.2", .count = 3, .dkim = "fail", .spf = "fail", .header_from = "example.test" },
		};
		struct store_dmarc_report r = { .org_name = "google.com", .report_id = "1", .begin = DAY,
						.end = DAY + 86399, .domain = "example.test", .records = rec, .nrecords = 2 };
		CHECK(store_dmarc_report_add(st, &r) == STORE_OK);
	}
	deliv_params_default(&p);
	p.min_messages = 10;
	d = deliv_new(NOW, &p);
	CHECK(deliv_load(d, st, ours, 2) == 0);
	CHECK(d->prov[DELIV_GMAIL].days[6].delivered == 12);
	CHECK(d->prov[DELIV_GMAIL].total.reported == 7 && d->prov[DELIV_GMAIL].total.reported_pass == 4);
	CHECK(d->prov[DELIV_GMAIL].silent_drop);
	CHECK(d->prov[DELIV_OUTLOOK].total.bounced == 6 && d->prov[DELIV_OUTLOOK].reputation);
	CHECK(d->prov[DELIV_OUTLOOK].current_run == 6);
	CHECK(d->prov[DELIV_OUTLOOK].nreasons == 1 && d->prov[DELIV_OUTLOOK].reasons[0].count == 6);
	CHECK_STR(d->prov[DELIV_OUTLOOK].routes, "relay");
	deliv_free(d);
	{
		struct store_queue_counts q;
		struct store_grey_stats g;
		CHECK(store_queue_counts(st, &q) == STORE_OK && q.messages == 0 && q.pending == 0);
		CHECK(store_grey_stats(st, &g) == STORE_OK && g.triplets == 0);
	}
	store_close(st);
	testlib_rmtree(dir);
}
