/*
 * Tests of `postern user ...` and `postern alias ...` (cli_users.c): exit
 * statuses, the exact lines printed, and what ends up in the store and on
 * disk. The commands run in-process with stdin, stdout and stderr redirected.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli.h"
#include "lib/password.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

struct env {
	char dir[64];
	struct config *cfg;
	char *out, *err;
};

static void env_setup(struct env *e)
{
	char conf[512];
	testlib_mkdtemp(e->dir, "cli");
	snprintf(conf, sizeof conf, "[server]\ndomains = example.test, second.test\ndata_dir = %s/data\n", e->dir);
	e->cfg = config_load(testlib_write(e->dir, "postern.conf", conf), stderr);
	if (!e->cfg)
		abort();
	e->out = e->err = NULL;
}

static void env_teardown(struct env *e)
{
	free(e->out);
	free(e->err);
	config_free(e->cfg);
	testlib_rmtree(e->dir);
}

/* Runs `postern WHAT ARGS...` (NULL-terminated) with stdin_text on
 * standard input (NULL: /dev/null); returns the exit status and keeps the
 * output in e->out and e->err. */
static int run(struct env *e, const char *stdin_text, const char *what, ...)
{
	char *argv[16];
	int argc = 0, rc;
	va_list ap;

	va_start(ap, what);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 15;)
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	free(e->out);
	free(e->err);
	testlib_stdin_begin(stdin_text);
	testlib_capture_begin(1);
	testlib_capture_begin(2);
	rc = !strcmp(what, "user") ? cli_user(e->cfg, argc, argv) : cli_alias(e->cfg, argc, argv);
	e->err = testlib_capture_end(2);
	e->out = testlib_capture_end(1);
	testlib_stdin_end();
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

static int stored_password_is(struct env *e, const char *addr, const char *pw)
{
	char err[256], hash[256];
	struct store *st = store_open(e->cfg->data_dir, err, sizeof err);
	int ok = st && store_user_get_password(st, addr, hash, sizeof hash) == STORE_OK && password_verify(pw, hash);
	store_close(st);
	return ok;
}

static int is_dir(const char *dir, const char *sub)
{
	char path[512];
	struct stat sb;
	snprintf(path, sizeof path, "%s/%s", dir, sub);
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

#define CHECK_CONTAINS(hay, needle)                                                               \
	do {                                                                                      \
		if (!strstr((hay), (needle))) {                                                   \
			fprintf(stderr, "%s:%d: missing: %s\n  in: %s\n", __FILE__, __LINE__, (needle), \
				(hay));                                                           \
			unit_failures++;                                                          \
		}                                                                                 \
	} while (0)

TEST(cli_user_add)
{
	struct env e;

	env_setup(&e);
	CHECK_INT(run(&e, "s3cret\n", "user", "add", "Alice@Example.TEST", "--password-stdin", NULL), 0);
	CHECK_STR(e.out, "added alice@example.test\n");
	CHECK_STR(e.err, "");
	CHECK(stored_password_is(&e, "alice@example.test", "s3cret"));
	CHECK(is_dir(e.dir, "data/mail/example.test/alice/new"));
	CHECK(is_dir(e.dir, "data/mail/example.test/alice/cur"));
	CHECK(is_dir(e.dir, "data/mail/example.test/alice/tmp"));

	CHECK_INT(run(&e, "x\n", "user", "add", "alice@example.test", "--password-stdin", NULL), 1);
	CHECK_STR(e.out, "");
	CHECK_CONTAINS(e.err, "postern: alice@example.test already exists; to change its password: "
			      "postern user passwd alice@example.test\n");

	/* CRLF is stripped; only the first line counts. */
	CHECK_INT(run(&e, "pw two\r\nignored\n", "user", "add", "--password-stdin", "bob@second.test", NULL), 0);
	CHECK(stored_password_is(&e, "bob@second.test", "pw two"));

	CHECK_INT(run(&e, NULL, "user", "add", "carol@example.test", "--no-password", NULL), 0);
	CHECK_STR(e.out, "added carol@example.test\n");
	env_teardown(&e);
}

TEST(cli_user_add_refusals)
{
	struct env e;
	char *longpw;

	env_setup(&e);
	CHECK_INT(run(&e, "x\n", "user", "add", "bob@other.test", "--password-stdin", NULL), 1);
	CHECK_CONTAINS(e.err, "postern: bob@other.test: domain other.test is not in [server] domains; "
			      "add it there first");
	CHECK_INT(run(&e, NULL, "user", "add", "bob@example.test", NULL), 1);
	CHECK_STR(e.err, "postern: no terminal to ask for a password; use --password-stdin or --no-password\n");
	CHECK_INT(run(&e, "\n", "user", "add", "bob@example.test", "--password-stdin", NULL), 1);
	CHECK_CONTAINS(e.err, "empty");
	CHECK_INT(run(&e, NULL, "user", "add", "bob@example.test", "--password-stdin", NULL), 1);
	CHECK_CONTAINS(e.err, "empty");
	longpw = malloc(PASSWORD_MAX + 3);
	memset(longpw, 'p', PASSWORD_MAX + 1);
	strcpy(longpw + PASSWORD_MAX + 1, "\n");
	CHECK_INT(run(&e, longpw, "user", "add", "bob@example.test", "--password-stdin", NULL), 1);
	CHECK_CONTAINS(e.err, "longer than 511 bytes");
	free(longpw);

	CHECK_INT(run(&e, NULL, "user", "add", "bob", "--no-password", NULL), 1);
	CHECK_CONTAINS(e.err, "postern: 'bob' is not a valid address: it has no '@'");
	CHECK_INT(run(&e, NULL, "user", "add", "@example.test", "--no-password", NULL), 1);
	CHECK_CONTAINS(e.err, "catch-all");
	CHECK_INT(run(&e, NULL, "user", "add", "../x@example.test", "--no-password", NULL), 1);
	CHECK_CONTAINS(e.err, "starts with '.'");
	CHECK_INT(run(&e, NULL, "user", "add", "a/b@example.test", "--no-password", NULL), 1);
	CHECK_INT(run(&e, NULL, "user", "add", "a\nb@example.test", "--no-password", NULL), 1);
	CHECK(strchr(e.err, '\n') == e.err + strlen(e.err) - 1); /* one line, newline escaped */

	/* Usage errors: exit 2. */
	CHECK_INT(run(&e, NULL, "user", "add", "bob@example.test", "--password-stdin", "--no-password", NULL), 2);
	CHECK_INT(run(&e, NULL, "user", "add", NULL), 2);
	CHECK_CONTAINS(e.err, "missing argument");
	CHECK_INT(run(&e, NULL, "user", "add", "a@example.test", "b@example.test", NULL), 2);
	CHECK_INT(run(&e, NULL, "user", "add", "a@example.test", "--pasword-stdin", NULL), 2);
	CHECK_CONTAINS(e.err, "unknown option --pasword-stdin");
	CHECK_INT(run(&e, NULL, "user", "list", "--no-password", NULL), 2);

	/* Nothing was created along the way. */
	CHECK_INT(run(&e, NULL, "user", "list", NULL), 0);
	CHECK_STR(e.out, "");
	env_teardown(&e);
}

TEST(cli_user_list_passwd_del)
{
	struct env e;
	char want[512];

	env_setup(&e);
	CHECK_INT(run(&e, "pw\n", "user", "add", "b@example.test", "--password-stdin", NULL), 0);
	CHECK_INT(run(&e, NULL, "user", "add", "a@example.test", "--no-password", NULL), 0);
	CHECK_INT(run(&e, NULL, "user", "list", NULL), 0);
	CHECK_STR(e.out, "a@example.test\nb@example.test\n");
	CHECK_INT(run(&e, NULL, "user", "list", "--json", NULL), 0);
	CHECK_STR(e.out, "[\n  {\"address\": \"a@example.test\", \"password\": false},\n"
			 "  {\"address\": \"b@example.test\", \"password\": true}\n]\n");

	CHECK_INT(run(&e, "new pw\n", "user", "passwd", "A@example.test", "--password-stdin", NULL), 0);
	CHECK_STR(e.out, "changed the password of a@example.test\n");
	CHECK(stored_password_is(&e, "a@example.test", "new pw"));
	CHECK_INT(run(&e, NULL, "user", "passwd", "b@example.test", "--no-password", NULL), 0);
	CHECK_CONTAINS(e.out, "removed the password of b@example.test");
	CHECK(!stored_password_is(&e, "b@example.test", "pw"));
	CHECK_INT(run(&e, "x\n", "user", "passwd", "nobody@example.test", "--password-stdin", NULL), 1);
	CHECK_CONTAINS(e.err, "there is no mailbox nobody@example.test");

	CHECK_INT(run(&e, NULL, "alias", "add", "team@example.test", "b@example.test", NULL), 0);
	CHECK_INT(run(&e, NULL, "user", "del", "B@example.test", NULL), 0);
	snprintf(want, sizeof want, "deleted b@example.test; its mail stays in %s/data/mail/example.test/b\n", e.dir);
	CHECK_STR(e.out, want);
	CHECK_CONTAINS(e.err, "note: the alias team@example.test -> b@example.test remains");
	CHECK(is_dir(e.dir, "data/mail/example.test/b/new"));
	CHECK_INT(run(&e, NULL, "user", "del", "b@example.test", NULL), 1);
	CHECK_CONTAINS(e.err, "there is no mailbox b@example.test");
	CHECK_INT(run(&e, NULL, "user", "list", "--json", NULL), 0);
	CHECK_STR(e.out, "[\n  {\"address\": \"a@example.test\", \"password\": true}\n]\n");
	CHECK_INT(run(&e, NULL, "user", "del", "a@example.test", NULL), 0);
	CHECK_INT(run(&e, NULL, "user", "list", "--json", NULL), 0);
	CHECK_STR(e.out, "[]\n");
	env_teardown(&e);
}

TEST(cli_user_help)
{
	struct env e;

	env_setup(&e);
	CHECK_INT(run(&e, NULL, "user", "--help", NULL), 0);
	CHECK_CONTAINS(e.out, "usage: postern user add ADDRESS");
	CHECK_CONTAINS(e.out, "Examples:");
	CHECK_INT(run(&e, NULL, "user", "add", "-h", NULL), 0);
	CHECK_CONTAINS(e.out, "--password-stdin");
	CHECK_INT(run(&e, NULL, "user", "frobnicate", NULL), 2);
	CHECK_STR(e.out, "");
	CHECK_CONTAINS(e.err, "postern: user: unknown command 'frobnicate'");
	CHECK_CONTAINS(e.err, "usage: postern user");
	CHECK_INT(run(&e, NULL, "user", NULL), 2);
	CHECK_CONTAINS(e.err, "usage: postern user");
	CHECK_INT(run(&e, NULL, "alias", "-h", NULL), 0);
	CHECK_CONTAINS(e.out, "usage: postern alias add SOURCE TARGET...");
	CHECK_INT(run(&e, NULL, "alias", "rm", NULL), 2);
	CHECK_CONTAINS(e.err, "usage: postern alias");
	env_teardown(&e);
}

TEST(cli_alias)
{
	struct env e;

	env_setup(&e);
	CHECK_INT(run(&e, NULL, "user", "add", "alice@example.test", "--no-password", NULL), 0);
	CHECK_INT(run(&e, NULL, "user", "add", "bob@second.test", "--no-password", NULL), 0);

	CHECK_INT(run(&e, NULL, "alias", "add", "Team@example.test", "alice@example.test", "BOB@second.test", NULL), 0);
	CHECK_STR(e.out, "added team@example.test -> alice@example.test\nadded team@example.test -> bob@second.test\n");
	CHECK_INT(run(&e, NULL, "alias", "add", "team@example.test", "alice@example.test", NULL), 0);
	CHECK_STR(e.out, "unchanged: team@example.test -> alice@example.test already exists\n");
	CHECK_INT(run(&e, NULL, "alias", "add", "@second.test", "bob@second.test", NULL), 0);

	/* An outside target is a forwarding address (no mailbox to check). */
	CHECK_INT(run(&e, NULL, "alias", "add", "team@example.test", "Someone@gmail.example", NULL), 0);
	CHECK_STR(e.out, "added team@example.test -> someone@gmail.example (forwarded outside)\n");
	CHECK_INT(run(&e, NULL, "alias", "del", "team@example.test", "someone@gmail.example", NULL), 0);

	/* Refusals: unknown mailboxes, non-local sources. */
	CHECK_INT(run(&e, NULL, "alias", "add", "team@example.test", "carol@example.test", NULL), 1);
	CHECK_CONTAINS(e.err, "there is no mailbox carol@example.test; create it first with "
			      "'postern user add carol@example.test'");
	CHECK_INT(run(&e, NULL, "alias", "add", "x@other.test", "alice@example.test", NULL), 1);
	CHECK_CONTAINS(e.err, "x@other.test: domain other.test is not in [server] domains");
	CHECK_INT(run(&e, NULL, "alias", "add", "x@example.test", "@example.test", NULL), 1);
	CHECK_CONTAINS(e.err, "a catch-all cannot be a target");
	CHECK_INT(run(&e, NULL, "alias", "add", "x@example.test", NULL), 2);
	CHECK_STR(e.out, "");

	/* An alias over a mailbox: a note that mail no longer stays there. */
	CHECK_INT(run(&e, NULL, "alias", "add", "alice@example.test", "bob@second.test", NULL), 0);
	CHECK_CONTAINS(e.err, "note: alice@example.test is also a mailbox");

	CHECK_INT(run(&e, NULL, "alias", "list", NULL), 0);
	CHECK_STR(e.out, "@second.test -> bob@second.test\n"
			 "alice@example.test -> bob@second.test\n"
			 "team@example.test -> alice@example.test\n"
			 "team@example.test -> bob@second.test\n");
	CHECK_INT(run(&e, NULL, "alias", "del", "team@example.test", "bob@second.test", NULL), 0);
	CHECK_STR(e.out, "deleted team@example.test -> bob@second.test\n");
	CHECK_INT(run(&e, NULL, "alias", "del", "team@example.test", "bob@second.test", NULL), 1);
	CHECK_CONTAINS(e.err, "there is no alias team@example.test -> bob@second.test");
	CHECK_INT(run(&e, NULL, "alias", "del", "alice@example.test", NULL), 0);
	CHECK_STR(e.out, "deleted every alias of alice@example.test\n");
	CHECK_INT(run(&e, NULL, "alias", "del", "@second.test", NULL), 0);
	CHECK_INT(run(&e, NULL, "alias", "list", "--json", NULL), 0);
	CHECK_STR(e.out, "[\n  {\"source\": \"team@example.test\", \"target\": \"alice@example.test\"}\n]\n");
	CHECK_INT(run(&e, NULL, "alias", "del", "nobody@example.test", NULL), 1);
	CHECK_CONTAINS(e.err, "there is no alias nobody@example.test");
	env_teardown(&e);
}
