/*
 * Tests of the pieces of submission that need no daemon: the failed-login
 * throttle (src/smtp/throttle.c), the fields RFC 6409 section 8 adds
 * (src/smtp/submit.c), From addresses, and store_resolve_targets() with
 * outside alias targets.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/submit.h"
#include "smtp/throttle.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

TEST(throttle_window_and_lockout)
{
	struct throttle *t = throttle_new(3);
	/* 3 failures within 10 s lock for 60 s. */
	CHECK_INT(throttle_fail(t, "ip:1", 1000, 3, 10000, 60000), 0);
	CHECK_INT(throttle_fail(t, "ip:1", 2000, 3, 10000, 60000), 0);
	CHECK_INT(throttle_locked(t, "ip:1", 2000), 0);
	CHECK_INT(throttle_fail(t, "ip:1", 3000, 3, 10000, 60000), 1);
	CHECK_INT(throttle_locked(t, "ip:1", 3000), 60000);
	CHECK_INT(throttle_locked(t, "ip:1", 62999), 1);
	CHECK_INT(throttle_locked(t, "ip:1", 63000), 0);
	/* Failures further apart than the window do not add up. */
	CHECK_INT(throttle_fail(t, "ip:2", 0, 3, 10000, 60000), 0);
	CHECK_INT(throttle_fail(t, "ip:2", 5000, 3, 10000, 60000), 0);
	CHECK_INT(throttle_fail(t, "ip:2", 20000, 3, 10000, 60000), 0);
	CHECK_INT(throttle_fail(t, "ip:2", 21000, 3, 10000, 60000), 0);
	CHECK_INT(throttle_fail(t, "ip:2", 22000, 3, 10000, 60000), 1);
	/* Full table: a new key takes an unlocked entry, never a lockout. */
	CHECK_INT(throttle_fail(t, "ip:3", 23000, 3, 10000, 60000), 0);
	CHECK_INT(throttle_fail(t, "ip:4", 23001, 3, 10000, 60000), 0);
	CHECK_INT(throttle_count(t), 3);
	CHECK(throttle_locked(t, "ip:1", 23002) > 0);
	CHECK(throttle_locked(t, "ip:2", 23002) > 0);
	throttle_clear(t, "ip:2");
	CHECK_INT(throttle_locked(t, "ip:2", 23002), 0);
	throttle_free(t);
	throttle_free(NULL);
}

TEST(submit_missing_fields)
{
	const char *full = "From: a@b.test\nDate: Mon, 1 Jun 2026 10:00:00 +0000\nMessage-ID: <x@y>\n\n";
	const char *bare = "From: a@b.test\nSubject: hi\n\n";
	char *f = submit_missing_fields(full, strlen(full), "mx.b.test", 1780000000);
	size_t n;
	char *h;

	CHECK_STR(f, "");
	free(f);
	f = submit_missing_fields(bare, strlen(bare), "mx.b.test", 1780000000);
	CHECK(!strncmp(f, "Date: Thu, 28 May 2026 20:26:40 +0000\nMessage-ID: <1780000000.", 62));
	CHECK(strstr(f, "@mx.b.test>\n") != NULL);
	h = submit_insert_fields(bare, strlen(bare), "X-A: 1\n", &n);
	CHECK_STR(h, "From: a@b.test\nSubject: hi\nX-A: 1\n\n");
	CHECK_INT(n, strlen(h));
	free(h);
	h = submit_insert_fields("From: a@b.test", 14, "X-A: 1\n", &n); /* no body, no final LF */
	CHECK_STR(h, "From: a@b.test\nX-A: 1\n");
	free(h);
	free(f);
}

TEST(submit_from_addresses)
{
	const char *head = "From: \"Alice A.\" <Alice@Example.TEST>, bob@example.test\nTo: x@y\n\n";
	char **a, why[100];
	long n = submit_from_addresses(head, strlen(head), &a, why, sizeof why);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(a[0], "Alice@Example.TEST");
		CHECK_STR(a[1], "bob@example.test");
		free(a[0]);
		free(a[1]);
	}
	free(a);
	CHECK_INT(submit_from_addresses("To: x@y\n\n", 9, &a, why, sizeof why), 0);
	free(a);
	CHECK_INT(submit_from_addresses("From: <a@b\n\n", 12, &a, why, sizeof why), -1);
	free(a);
}

static int only_example(void *arg, const char *domain)
{
	(void)arg;
	return !strcmp(domain, "example.test");
}

TEST(store_resolve_targets_outside)
{
	char dir[64], err[256];
	struct store *st;
	struct store_targets t;

	testlib_mkdtemp(dir, "resolve");
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	if (!st) {
		testlib_rmtree(dir);
		return;
	}
	CHECK_INT(store_user_add(st, "alice@example.test", NULL), STORE_OK);
	CHECK_INT(store_alias_add(st, "fwd@example.test", "friend@outside.test"), STORE_OK);
	CHECK_INT(store_alias_add(st, "fwd@example.test", "alice@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(st, "only@example.test", "Friend@outside.test"), STORE_OK);
	CHECK_INT(store_alias_add(st, "two@example.test", "fwd@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(st, "two@example.test", "only@example.test"), STORE_OK);

	CHECK_INT(store_resolve_targets(st, "fwd@example.test", "+", only_example, NULL, &t), STORE_OK);
	CHECK_INT(t.nmailboxes, 1);
	CHECK_INT(t.nforwards, 1);
	if (t.nforwards)
		CHECK_STR(t.forwards[0], "friend@outside.test");
	store_targets_free(&t);
	/* An alias that only forwards resolves too; duplicates are removed. */
	CHECK_INT(store_resolve_targets(st, "two+x@example.test", "+", only_example, NULL, &t), STORE_OK);
	CHECK_INT(t.nmailboxes, 1);
	CHECK_INT(t.nforwards, 1);
	store_targets_free(&t);
	/* Without the is_local callback (store_resolve): mailboxes only. */
	{
		char **v;
		size_t n;
		CHECK_INT(store_resolve(st, "only@example.test", "+", &v, &n), STORE_NOTFOUND);
		CHECK_INT(store_resolve(st, "fwd@example.test", "+", &v, &n), STORE_OK);
		CHECK_INT(n, 1);
		store_strv_free(v, n);
	}
	store_close(st);
	testlib_rmtree(dir);
}
