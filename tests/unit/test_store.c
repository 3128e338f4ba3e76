/*
 * Tests of the store (store.c and the SQLite backend): mailboxes, aliases,
 * address checks and recipient resolution. Each test opens a fresh store in
 * its own mkdtemp directory and removes it afterwards.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store/store.h"
#include "testlib.h"
#include "unit.h"

struct fixture {
	char dir[64];
	struct store *st;
};

static void setup(struct fixture *f)
{
	char err[256] = "";
	testlib_mkdtemp(f->dir, "store");
	f->st = store_open(f->dir, err, sizeof err);
	if (!f->st) {
		fprintf(stderr, "store_open: %s\n", err);
		abort();
	}
}

static void teardown(struct fixture *f)
{
	store_close(f->st);
	testlib_rmtree(f->dir);
}

/* Resolves addr and joins the result as "a,b" (sorted by the order found);
 * returns the rc and writes "" when there is no result. */
static int resolve_str(struct store *st, const char *addr, const char *delim, char *buf, size_t size)
{
	char **v;
	size_t n;
	int rc = store_resolve(st, addr, delim, &v, &n);
	buf[0] = '\0';
	if (rc != STORE_OK) {
		CHECK(v == NULL && n == 0);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			strncat(buf, ",", size - strlen(buf) - 1);
		strncat(buf, v[i], size - strlen(buf) - 1);
	}
	store_strv_free(v, n);
	return rc;
}

TEST(store_open_creates_private_wal_database)
{
	struct fixture f;
	char path[128], err[256];
	struct stat sb;
	sqlite3 *db;
	sqlite3_stmt *s;

	setup(&f);
	snprintf(path, sizeof path, "%s/state.db", f.dir);
	CHECK(stat(path, &sb) == 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	CHECK_INT(store_user_add(f.st, "a@example.test", NULL), STORE_OK);
	store_close(f.st);

	/* Reopening keeps the data and does not migrate again. */
	f.st = store_open(f.dir, err, sizeof err);
	CHECK(f.st != NULL);
	CHECK_INT(store_user_exists(f.st, "a@example.test"), STORE_OK);

	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(s) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*), max(version) FROM schema_version", -1, &s, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_step(s) == SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(s, 0), 1);
	/* Not a fixed number: each migration adds one (v2: auth_verdict). */
	CHECK(sqlite3_column_int(s, 1) >= 5);
	sqlite3_finalize(s);
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('greylist', 'greylist_allow')",
				 -1, &s, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(s) == SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(s, 0), 2);
	sqlite3_finalize(s);
	sqlite3_close(db);
	teardown(&f);
}

TEST(store_open_refuses_newer_schema_and_bad_dir)
{
	struct fixture f;
	char path[128], err[256] = "";
	sqlite3 *db;

	setup(&f);
	store_close(f.st);
	f.st = NULL;
	snprintf(path, sizeof path, "%s/state.db", f.dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK(store_open(f.dir, err, sizeof err) == NULL);
	CHECK(strstr(err, "schema version 99") != NULL);
	CHECK(strstr(err, "upgrade postern") != NULL);

	err[0] = '\0';
	CHECK(store_open("/dev/null/sub", err, sizeof err) == NULL);
	CHECK(strstr(err, "/dev/null/sub") != NULL);
	teardown(&f);

	store_close(NULL);
	store_strv_free(NULL, 0);
}

TEST(store_users)
{
	struct fixture f;
	char hash[256];

	setup(&f);
	CHECK_INT(store_user_add(f.st, "Alice@Example.TEST", "$y$hash"), STORE_OK);
	CHECK_INT(store_user_add(f.st, "alice@example.test", "x"), STORE_EXISTS);
	CHECK_INT(store_user_exists(f.st, "ALICE@example.test"), STORE_OK);
	CHECK_INT(store_user_exists(f.st, "bob@example.test"), STORE_NOTFOUND);

	CHECK_INT(store_user_get_password(f.st, "alice@EXAMPLE.test", hash, sizeof hash), STORE_OK);
	CHECK_STR(hash, "$y$hash");
	testlib_quiet(1);
	CHECK_INT(store_user_get_password(f.st, "alice@example.test", hash, 4), STORE_ERROR);
	testlib_quiet(0);
	CHECK_INT(store_user_get_password(f.st, "nobody@example.test", hash, sizeof hash), STORE_NOTFOUND);

	CHECK_INT(store_user_set_password(f.st, "alice@example.test", "$y$new"), STORE_OK);
	CHECK_INT(store_user_get_password(f.st, "alice@example.test", hash, sizeof hash), STORE_OK);
	CHECK_STR(hash, "$y$new");
	CHECK_INT(store_user_set_password(f.st, "alice@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_get_password(f.st, "alice@example.test", hash, sizeof hash), STORE_NOTFOUND);
	CHECK_INT(store_user_set_password(f.st, "nobody@example.test", "x"), STORE_NOTFOUND);

	CHECK_INT(store_user_del(f.st, "ALICE@example.test"), STORE_OK);
	CHECK_INT(store_user_del(f.st, "alice@example.test"), STORE_NOTFOUND);
	CHECK_INT(store_user_exists(f.st, "alice@example.test"), STORE_NOTFOUND);
	teardown(&f);
}

struct collected {
	char text[1024];
	int stop_after;
	int calls;
};

static int collect_user(void *arg, const char *address, int has_password)
{
	struct collected *c = arg;
	char line[300];
	snprintf(line, sizeof line, "%s%s:%d", c->calls ? " " : "", address, has_password);
	strncat(c->text, line, sizeof c->text - strlen(c->text) - 1);
	return ++c->calls == c->stop_after;
}

static int collect_alias(void *arg, const char *source, const char *target)
{
	struct collected *c = arg;
	char line[600];
	snprintf(line, sizeof line, "%s%s>%s", c->calls ? " " : "", source, target);
	strncat(c->text, line, sizeof c->text - strlen(c->text) - 1);
	return ++c->calls == c->stop_after;
}

TEST(store_lists)
{
	struct fixture f;
	struct collected c = { 0 };

	setup(&f);
	CHECK_INT(store_user_list(f.st, collect_user, &c), STORE_OK);
	CHECK_STR(c.text, "");
	CHECK_INT(store_user_add(f.st, "b@example.test", "h"), STORE_OK);
	CHECK_INT(store_user_add(f.st, "a@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_add(f.st, "c@example.test", ""), STORE_OK);
	CHECK_INT(store_user_list(f.st, collect_user, &c), STORE_OK);
	CHECK_STR(c.text, "a@example.test:0 b@example.test:1 c@example.test:0");

	/* A callback that returns non-zero stops the walk; the store stays usable. */
	memset(&c, 0, sizeof c);
	c.stop_after = 1;
	CHECK_INT(store_user_list(f.st, collect_user, &c), STORE_OK);
	CHECK_STR(c.text, "a@example.test:0");
	CHECK_INT(store_user_exists(f.st, "c@example.test"), STORE_OK);

	CHECK_INT(store_alias_add(f.st, "Team@example.test", "B@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "team@example.test", "a@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "team@example.test", "a@example.test"), STORE_EXISTS);
	CHECK_INT(store_alias_add(f.st, "@Example.test", "c@example.test"), STORE_OK);
	memset(&c, 0, sizeof c);
	CHECK_INT(store_alias_list(f.st, collect_alias, &c), STORE_OK);
	CHECK_STR(c.text, "@example.test>c@example.test team@example.test>a@example.test "
			  "team@example.test>b@example.test");

	CHECK_INT(store_alias_del(f.st, "team@example.test", "a@EXAMPLE.test"), STORE_OK);
	CHECK_INT(store_alias_del(f.st, "team@example.test", "a@example.test"), STORE_NOTFOUND);
	CHECK_INT(store_alias_del(f.st, "@example.test", NULL), STORE_OK);
	CHECK_INT(store_alias_del(f.st, "@example.test", NULL), STORE_NOTFOUND);
	memset(&c, 0, sizeof c);
	CHECK_INT(store_alias_list(f.st, collect_alias, &c), STORE_OK);
	CHECK_STR(c.text, "team@example.test>b@example.test");
	teardown(&f);
}

TEST(store_rejects_invalid_addresses)
{
	static const char *const bad[] = {
		"",
		"nobody",
		"@example.test", /* a catch-all is no mailbox */
		"user@",
		"a@b@example.test",
		"us\ter@example.test",
		"user@exa\nmple.test",
		"us\x7f" "er@example.test",
		"us/er@example.test",
		"user@exa/mple.test",
		"../x@example.test",
		".user@example.test",
		"user@.example.test",
		"us er@example.test",
	};
	struct fixture f;
	char long_addr[300];
	char hash[64];

	setup(&f);
	testlib_quiet(1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(store_user_add(f.st, bad[i], NULL), STORE_INVALID);
		CHECK_INT(store_user_del(f.st, bad[i]), STORE_INVALID);
		CHECK_INT(store_user_set_password(f.st, bad[i], "x"), STORE_INVALID);
		CHECK_INT(store_alias_add(f.st, "ok@example.test", bad[i]), STORE_INVALID);
		/* Lookups of malformed addresses find nothing, quietly. */
		CHECK_INT(store_user_exists(f.st, bad[i]), STORE_NOTFOUND);
		CHECK_INT(store_user_get_password(f.st, bad[i], hash, sizeof hash), STORE_NOTFOUND);
	}
	CHECK_INT(store_alias_add(f.st, "", "a@example.test"), STORE_INVALID);
	CHECK_INT(store_alias_add(f.st, "@", "a@example.test"), STORE_INVALID);
	CHECK_INT(store_alias_add(f.st, "x/y@example.test", "a@example.test"), STORE_INVALID);
	CHECK_INT(store_alias_del(f.st, "nobody", NULL), STORE_INVALID);

	/* 254 bytes is the limit. */
	memset(long_addr, 'a', sizeof long_addr);
	strcpy(long_addr + 254 - strlen("@example.test"), "@example.test");
	CHECK_INT(strlen(long_addr), 254);
	testlib_quiet(0);
	CHECK_INT(store_user_add(f.st, long_addr, NULL), STORE_OK);
	testlib_quiet(1);
	memset(long_addr, 'a', sizeof long_addr);
	strcpy(long_addr + 255 - strlen("@example.test"), "@example.test");
	CHECK_INT(store_user_add(f.st, long_addr, NULL), STORE_INVALID);
	testlib_quiet(0);

	/* The catch-all is fine as an alias source, and so is UTF-8. */
	CHECK_INT(store_alias_add(f.st, "@example.test", "a@example.test"), STORE_OK);
	CHECK_INT(store_user_add(f.st, "j\xc3\xb6rg@example.test", NULL), STORE_OK);
	teardown(&f);
}

TEST(store_resolve_mailboxes_and_subaddresses)
{
	struct fixture f;
	char buf[512];

	setup(&f);
	CHECK_INT(store_user_add(f.st, "alice@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_add(f.st, "bob+lists@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_add(f.st, "bob@example.test", NULL), STORE_OK);

	CHECK_INT(resolve_str(f.st, "alice@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	CHECK_INT(resolve_str(f.st, "ALICE@Example.Test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	CHECK_INT(resolve_str(f.st, "carol@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	CHECK_INT(resolve_str(f.st, "alice@other.test", "+", buf, sizeof buf), STORE_NOTFOUND);

	/* Sub-addressing: the tag goes, at the first delimiter. */
	CHECK_INT(resolve_str(f.st, "alice+news@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	CHECK_INT(resolve_str(f.st, "Alice+News+More@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	CHECK_INT(resolve_str(f.st, "alice-news@example.test", "-", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	/* Without a delimiter (NULL or empty) there is no sub-addressing. */
	CHECK_INT(resolve_str(f.st, "alice+news@example.test", "", buf, sizeof buf), STORE_NOTFOUND);
	CHECK_INT(resolve_str(f.st, "alice+news@example.test", NULL, buf, sizeof buf), STORE_NOTFOUND);
	/* Nothing before the delimiter: not user "" */
	CHECK_INT(resolve_str(f.st, "+alice@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	/* A delimiter only in the domain is no sub-address. */
	CHECK_INT(resolve_str(f.st, "alice@exa+mple.test", "+", buf, sizeof buf), STORE_NOTFOUND);

	/* A mailbox that exists with its delimiter matches exactly first. */
	CHECK_INT(resolve_str(f.st, "bob+lists@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "bob+lists@example.test");
	CHECK_INT(resolve_str(f.st, "bob+other@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "bob@example.test");

	/* Malformed input finds nothing. */
	CHECK_INT(resolve_str(f.st, "alice", "+", buf, sizeof buf), STORE_NOTFOUND);
	CHECK_INT(resolve_str(f.st, "@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	CHECK_INT(resolve_str(f.st, "al/ice@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	teardown(&f);
}

TEST(store_resolve_aliases_and_catchall)
{
	struct fixture f;
	char buf[512];

	setup(&f);
	CHECK_INT(store_user_add(f.st, "alice@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_add(f.st, "bob@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_add(f.st, "carol@example.test", NULL), STORE_OK);

	CHECK_INT(store_alias_add(f.st, "postmaster@example.test", "alice@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "PostMaster@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	/* Sub-addressing applies to aliases too. */
	CHECK_INT(resolve_str(f.st, "postmaster+x@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");

	/* Chains and duplicates: all -> team, alice; team -> alice, bob. */
	CHECK_INT(store_alias_add(f.st, "team@example.test", "alice@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "team@example.test", "bob@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "all@example.test", "team@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "all@example.test", "alice@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "all@example.test", "postmaster@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "all@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test,bob@example.test");

	/* An alias wins over a mailbox of the same name; "a -> a, b" keeps a copy. */
	CHECK_INT(store_alias_add(f.st, "carol@example.test", "bob@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "carol@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "bob@example.test");
	CHECK_INT(store_alias_add(f.st, "carol@example.test", "carol@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "carol@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "bob@example.test,carol@example.test");

	/* The catch-all takes what nothing else does. */
	CHECK_INT(resolve_str(f.st, "random@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	CHECK_INT(store_alias_add(f.st, "@example.test", "carol@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "random@EXAMPLE.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "bob@example.test,carol@example.test");
	CHECK_INT(resolve_str(f.st, "alice@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	CHECK_INT(resolve_str(f.st, "alice+tag@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "alice@example.test");
	CHECK_INT(resolve_str(f.st, "random@other.test", "+", buf, sizeof buf), STORE_NOTFOUND);

	/* An alias whose targets are all gone falls through to the catch-all. */
	CHECK_INT(store_alias_add(f.st, "gone@example.test", "deleted@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "gone@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "bob@example.test,carol@example.test");
	teardown(&f);
}

TEST(store_resolve_loops_and_depth)
{
	struct fixture f;
	char buf[512], src[64], dst[64];

	setup(&f);
	/* a -> b -> c -> a, none a mailbox: ends, finds nothing. */
	CHECK_INT(store_alias_add(f.st, "a@example.test", "b@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "b@example.test", "c@example.test"), STORE_OK);
	CHECK_INT(store_alias_add(f.st, "c@example.test", "a@example.test"), STORE_OK);
	CHECK_INT(resolve_str(f.st, "a@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	/* b is a mailbox but also an alias, so mail to a passes through it. Once
	 * a is a mailbox, the loop comes back to a and delivers there. */
	CHECK_INT(store_user_add(f.st, "b@example.test", NULL), STORE_OK);
	CHECK_INT(resolve_str(f.st, "a@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	CHECK_INT(store_user_add(f.st, "a@example.test", NULL), STORE_OK);
	CHECK_INT(resolve_str(f.st, "a@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "a@example.test");
	/* From b, the loop closes at b, which is a mailbox. */
	CHECK_INT(resolve_str(f.st, "b@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "b@example.test");

	/* A chain of exactly STORE_ALIAS_DEPTH hops is followed: l0 -> ... -> l8. */
	for (int i = 0; i < STORE_ALIAS_DEPTH; i++) {
		snprintf(src, sizeof src, "l%d@example.test", i);
		snprintf(dst, sizeof dst, "l%d@example.test", i + 1);
		CHECK_INT(store_alias_add(f.st, src, dst), STORE_OK);
	}
	snprintf(dst, sizeof dst, "l%d@example.test", STORE_ALIAS_DEPTH);
	CHECK_INT(store_user_add(f.st, dst, NULL), STORE_OK);
	CHECK_INT(resolve_str(f.st, "l0@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, dst);
	/* One hop more is cut (and logged). */
	CHECK_INT(store_alias_add(f.st, "m@example.test", "l0@example.test"), STORE_OK);
	testlib_quiet(1);
	CHECK_INT(resolve_str(f.st, "m@example.test", "+", buf, sizeof buf), STORE_NOTFOUND);
	testlib_quiet(0);
	teardown(&f);
}

TEST(store_resolve_bounds_targets)
{
	struct fixture f;
	char path[128], buf[64];
	sqlite3 *db;
	char **v;
	size_t n;

	setup(&f);
	/* Fill directly, in one transaction: 1001 mailboxes behind one alias. */
	snprintf(path, sizeof path, "%s/state.db", f.dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "BEGIN;"
			   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)"
			   " INSERT INTO mailbox SELECT 'u' || i || '@example.test', NULL, 0 FROM n;"
			   "INSERT INTO alias SELECT 'big@example.test', address FROM mailbox;"
			   "INSERT INTO alias SELECT 'fits@example.test', address FROM mailbox LIMIT 1000;"
			   "COMMIT",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	CHECK_INT(store_resolve(f.st, "fits@example.test", "+", &v, &n), STORE_OK);
	CHECK_INT(n, STORE_MAX_TARGETS);
	store_strv_free(v, n);
	testlib_quiet(1);
	CHECK_INT(resolve_str(f.st, "big@example.test", "+", buf, sizeof buf), STORE_INVALID);
	testlib_quiet(0);
	/* The store is still usable after the cut. */
	CHECK_INT(resolve_str(f.st, "u7@example.test", "+", buf, sizeof buf), STORE_OK);
	CHECK_STR(buf, "u7@example.test");
	teardown(&f);
}

TEST(store_two_handles_share_state)
{
	struct fixture f;
	struct store *other;
	char err[256];

	setup(&f);
	other = store_open(f.dir, err, sizeof err);
	CHECK(other != NULL);
	CHECK_INT(store_user_exists(other, "a@example.test"), STORE_NOTFOUND);
	CHECK_INT(store_user_add(f.st, "a@example.test", NULL), STORE_OK);
	CHECK_INT(store_user_exists(other, "a@example.test"), STORE_OK);
	CHECK_INT(store_user_del(other, "a@example.test"), STORE_OK);
	CHECK_INT(store_user_exists(f.st, "a@example.test"), STORE_NOTFOUND);
	store_close(other);
	teardown(&f);
}

static int count_verdict(void *arg, const struct store_verdict *v)
{
	int *n = arg;
	if (v->header_from && !strcmp(v->header_from, "example.org") && !strcmp(v->disposition, "quarantine"))
		(*n)++;
	return 0;
}

TEST(store_verdicts)
{
	struct fixture f;
	struct store_verdict v = {
		.received = 1000, .source_ip = "192.0.2.1", .helo = "mx.example.org", .envelope_from = "a@example.org",
		.header_from = "example.org", .spf_domain = "example.org", .spf_result = "fail",
		.dkim = "d=example.org s=s1 a=rsa-sha256 fail", .dmarc_result = "fail", .dmarc_policy = "quarantine",
		.disposition = "quarantine", .policy_published = "v=DMARC1; p=quarantine", .reason = NULL,
	};
	int n = 0;
	setup(&f);
	CHECK_INT(store_verdict_add(f.st, &v), STORE_OK);
	v.received = 2000;
	CHECK_INT(store_verdict_add(f.st, &v), STORE_OK);
	CHECK_INT(store_verdict_list(f.st, 1500, count_verdict, &n), STORE_OK);
	CHECK_INT(n, 1);
	n = 0;
	CHECK_INT(store_verdict_list(f.st, 0, count_verdict, &n), STORE_OK);
	CHECK_INT(n, 2);
	teardown(&f);
}
