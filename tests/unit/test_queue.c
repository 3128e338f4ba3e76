/*
 * Tests of the outbound queue's pure parts and its spool: the SMTP reply
 * parser and EHLO keywords (smtp/reply.c), the DATA encoder, the DSN
 * builder (RFC 3464), routing and provider recognition, the queue file
 * format, queue_put + import into the store, and the backoff schedule.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "deliver/remote.h"
#include "deliver/route.h"
#include "queue/dsn.h"
#include "queue/queue.h"
#include "smtp/reply.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

static enum smtp_reply_rc feed(struct smtp_reply *r, const char *line)
{
	return smtp_reply_feed(r, line, strlen(line));
}

TEST(smtp_reply_multiline_enhanced)
{
	struct smtp_reply r;
	char one[200];
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "550-5.1.1 The email account that you tried to reach does not exist."), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "550-5.1.1 Please try double-checking"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser"), SMTP_REPLY_DONE);
	CHECK_INT(r.code, 550);
	CHECK_STR(r.status, "5.1.1");
	CHECK_INT(r.nlines, 3);
	smtp_reply_oneline(&r, one, sizeof one);
	CHECK_STR(one, "550 5.1.1 The email account that you tried to reach does not exist. / Please try double-checking / "
		       "https://support.google.com/mail/?p=NoSuchUser");
	smtp_reply_clear(&r);
	/* a bare code, and a status whose class differs from the code's */
	CHECK_INT(feed(&r, "250"), SMTP_REPLY_DONE);
	CHECK_INT(r.code, 250);
	CHECK_STR(r.status, "");
	smtp_reply_clear(&r);
	CHECK_INT(feed(&r, "451 5.1.1 odd"), SMTP_REPLY_DONE);
	CHECK_STR(r.status, "");
	smtp_reply_clear(&r);
}

TEST(smtp_reply_refuses_garbage)
{
	struct smtp_reply r;
	static const char *const bad[] = { "", "25", "2500 x", "250x", "650 no", "199 no", "abc def", "25a ok" };
	smtp_reply_init(&r);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(feed(&r, bad[i]), SMTP_REPLY_BAD);
		smtp_reply_clear(&r);
	}
	/* codes must agree inside one reply */
	CHECK_INT(feed(&r, "250-a"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "251 b"), SMTP_REPLY_BAD);
	smtp_reply_clear(&r);
	/* too many lines */
	for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		CHECK_INT(feed(&r, "250-x"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-x"), SMTP_REPLY_BAD);
	smtp_reply_clear(&r);
	/* a NUL inside a line */
	CHECK_INT(smtp_reply_feed(&r, "250 a\0b", 7), SMTP_REPLY_BAD);
	smtp_reply_clear(&r);
}

TEST(smtp_ehlo_keywords)
{
	struct smtp_reply r;
	struct smtp_ext e;
	smtp_reply_init(&r);
	feed(&r, "250-mx.example.org Hello");
	feed(&r, "250-PIPELINING");
	feed(&r, "250-SIZE 35882577");
	feed(&r, "250-8bitmime");
	feed(&r, "250-AUTH LOGIN PLAIN XOAUTH2");
	feed(&r, "250-STARTTLS");
	feed(&r, "250-ENHANCEDSTATUSCODES");
	CHECK_INT(feed(&r, "250 SMTPUTF8"), SMTP_REPLY_DONE);
	smtp_ehlo_parse(&r, &e);
	CHECK(e.pipelining && e.eightbitmime && e.starttls && e.enhanced && e.smtputf8 && e.has_size);
	CHECK(!e.chunking && !e.dsn);
	CHECK_INT(e.size, 35882577);
	CHECK_INT(e.auth, SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN);
	smtp_reply_clear(&r);
	/* the greeting line is no keyword */
	feed(&r, "250 PIPELINING");
	smtp_ehlo_parse(&r, &e);
	CHECK(!e.pipelining);
	smtp_reply_clear(&r);
}

static char *encode(const char *in, size_t chunk)
{
	struct smtp_dot d;
	size_t n = strlen(in), o = 0;
	char *out = malloc(2 * n + 16);
	smtp_dot_init(&d);
	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		o += smtp_dot_encode(&d, in + i, k, out + o);
	}
	o += smtp_dot_finish(&d, out + o);
	out[o] = '\0';
	return out;
}

TEST(smtp_dot_stuffing_and_line_ends)
{
	/* whatever the chunking, the same wire form */
	for (size_t chunk = 1; chunk < 8; chunk++) {
		char *a = encode("Subject: x\n\n.hidden\r\nline\r\n..two\nend", chunk);
		CHECK_STR(a, "Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\nend\r\n.\r\n");
		free(a);
		a = encode("a\r", chunk);
		CHECK_STR(a, "a\r\n.\r\n");
		free(a);
		a = encode("", chunk);
		CHECK_STR(a, ".\r\n");
		free(a);
		a = encode("x\ry\n", chunk);
		CHECK_STR(a, "x\ry\r\n.\r\n");
		free(a);
	}
}

TEST(dsn_failed_report)
{
	struct dsn_rcpt r[2] = {
		{ .rcpt = "bob@remote.test", .status = "5.1.1", .remote_mta = "mx.remote.test",
		  .diagnostic = "550 5.1.1 no such user\r\nX-Injected: yes", .last_attempt = 1700000000 },
		{ .rcpt = "eve@nullmx.test", .status = "5.1.10", .local_diagnostic = "null MX" },
	};
	const char orig[] = "Subject: hello\r\nFrom: a@example.test\r\n\r\nbody text\r\n";
	struct dsn_input in = {
		.kind = DSN_FAILED, .reporting_mta = "mx.example.test", .qid = "Q1", .envid = "env-1",
		.to = "a@example.test", .arrival = 1700000000, .now = 1700000100, .rcpts = r, .nrcpts = 2,
		.orig = orig, .orig_len = dsn_header_len(orig, sizeof orig - 1), .unique = "u1",
	};
	size_t len;
	char *m = dsn_build(&in, &len);
	CHECK_INT(len, strlen(m));
	CHECK(strstr(m, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"u1/mx.example.test\"\n"));
	CHECK(strstr(m, "\nReporting-MTA: dns; mx.example.test\n"));
	CHECK(strstr(m, "\nOriginal-Envelope-Id: env-1\n"));
	CHECK(strstr(m, "\nFinal-Recipient: rfc822; bob@remote.test\nAction: failed\nStatus: 5.1.1\n"
			"Remote-MTA: dns; mx.remote.test\nDiagnostic-Code: smtp; 550 5.1.1 no such user??X-Injected: yes\n"));
	CHECK(strstr(m, "\nFinal-Recipient: rfc822; eve@nullmx.test\nAction: failed\nStatus: 5.1.10\n"
			"Diagnostic-Code: X-Postern; null MX\n"));
	CHECK(!strstr(m, "\nX-Injected"));
	CHECK(strstr(m, "Content-Type: text/rfc822-headers\n\nSubject: hello\nFrom: a@example.test\n"));
	CHECK(!strstr(m, "body text"));
	CHECK(strstr(m, "\nAuto-Submitted: auto-replied\n"));
	CHECK(!strchr(m, '\r'));
	free(m);

	in.kind = DSN_DELAYED;
	in.retry_until = 1700400000;
	in.nrcpts = 1;
	in.full = 0;
	m = dsn_build(&in, &len);
	CHECK(strstr(m, "Action: delayed\n"));
	CHECK(strstr(m, "Will-Retry-Until: "));
	CHECK(strstr(m, "Subject: Delayed Mail"));
	free(m);
}

TEST(dsn_header_len_cases)
{
	CHECK_INT(dsn_header_len("a: b\n\nbody", 10), 6);
	CHECK_INT(dsn_header_len("a: b\r\n\r\nbody", 12), 8);
	CHECK_INT(dsn_header_len("a: b\n", 5), 5);
	CHECK_INT(dsn_header_len("\nbody", 5), 1);
}

static uint32_t seq_rnd(void)
{
	static uint32_t x = 12345;
	x = x * 1103515245 + 12345;
	return x >> 8;
}

TEST(route_provider_and_patterns)
{
	CHECK_STR(route_provider("gmail-smtp-in.l.google.com"), "gmail");
	CHECK_STR(route_provider("example-org.mail.protection.outlook.com"), "outlook");
	CHECK_STR(route_provider("mta7.am0.yahoodns.net"), "yahoo");
	CHECK_STR(route_provider("mx01.mail.icloud.com"), "icloud");
	CHECK_STR(route_provider("mx.example.org"), "other");
	CHECK_STR(route_provider("notgoogle.com"), "other");
	CHECK(route_mx_match("*.outlook.com", "x.mail.protection.outlook.com"));
	CHECK(route_mx_match(".outlook.com", "a.outlook.com"));
	CHECK(!route_mx_match("*.outlook.com", "outlook.com"));
	CHECK(!route_mx_match("*.outlook.com", "evil-outlook.com"));
	CHECK(route_mx_match("mx.example.org", "MX.example.org"));
	CHECK(!route_mx_match("mx.example.org", "a.mx.example.org"));
	{
		char *list[] = { "example.org" }, *all[] = { "*" };
		CHECK(route_domain_listed(list, 1, "example.org"));
		CHECK(route_domain_listed(list, 1, "sub.example.org"));
		CHECK(!route_domain_listed(list, 1, "badexample.org"));
		CHECK(route_domain_listed(all, 1, "anything.test"));
	}
}

TEST(route_mx_order_preference)
{
	struct route_mx mx[5] = { { "c", 20 }, { "a", 10 }, { "z", 30 }, { "b", 10 }, { "d", 20 } };
	int seen_b_first = 0, seen_a_first = 0;
	for (int round = 0; round < 50; round++) {
		route_mx_order(mx, 5, seq_rnd);
		CHECK(mx[0].pref == 10 && mx[1].pref == 10 && mx[2].pref == 20 && mx[3].pref == 20 && mx[4].pref == 30);
		seen_a_first |= !strcmp(mx[0].host, "a");
		seen_b_first |= !strcmp(mx[0].host, "b");
	}
	CHECK(seen_a_first && seen_b_first); /* equals are shuffled */
	{
		struct route_mx n[1] = { { "", 0 } }, dot[1] = { { ".", 0 } }, p[1] = { { "", 10 } };
		CHECK(route_is_null_mx(n, 1));
		CHECK(route_is_null_mx(dot, 1));
		CHECK(!route_is_null_mx(p, 1));
		CHECK(!route_is_null_mx(mx, 5));
	}
}

TEST(queue_file_format)
{
	const char good[] = "postern-queue 1\nfrom a@b.test\nrcpt c@d.test\nrcpt e@f.test\n8bit 1\nutf8 0\nret full\n"
			    "envid xyz\norigin sendmail\nqueued 1700000000\n\nSubject: x\n\nbody\n";
	struct queue_file qf;
	CHECK_INT(queue_file_parse(good, sizeof good - 1, &qf), 0);
	CHECK_STR(qf.mail_from, "a@b.test");
	CHECK_INT(qf.nrcpts, 2);
	CHECK_STR(qf.rcpts[1], "e@f.test");
	CHECK(qf.body_8bit && !qf.smtputf8 && qf.ret_full);
	CHECK_STR(qf.envid, "xyz");
	CHECK_INT(qf.queued, 1700000000);
	CHECK_STR(good + qf.body_offset, "Subject: x\n\nbody\n");
	queue_file_clear(&qf);
	/* cut short: read more */
	CHECK_INT(queue_file_parse(good, 40, &qf), 1);
	/* malformed */
	CHECK_INT(queue_file_parse("postern-queue 2\n\n", 17, &qf), -1);
	CHECK_INT(queue_file_parse("postern-queue 1\nfrom a@b\nqueued 1\n\n", 35, &qf), -1); /* no rcpt */
	CHECK_INT(queue_file_parse("postern-queue 1\nfrom a@b\nrcpt <x@y>\nqueued 1\n\n", 46, &qf), -1);
	CHECK_INT(queue_file_parse("postern-queue 1\nfrom a@b\nrcpt x@y\nbogus 1\nqueued 1\n\n", 51, &qf), -1);
	CHECK(queue_id_valid("1a22ed338d394f9e42e"));
	CHECK(!queue_id_valid("../x"));
	CHECK(!queue_id_valid(""));
}

TEST(queue_put_and_import)
{
	char dir[64], qid[QUEUE_ID_MAX], err[256];
	const char *rcpts[] = { "bob@remote.test", "carol@remote.test" };
	struct queue_env env = { .mail_from = "alice@example.test", .rcpts = rcpts, .nrcpts = 2, .origin = "test" };
	struct maildir_msg mm = { .head = "Subject: t\n\n", .head_len = 12, .file_fd = -1, .tail = "hello\n", .tail_len = 6 };
	struct store *st;
	char *path;
	struct stat sb;
	int unfinished = -1;

	testlib_mkdtemp(dir, "queue");
	CHECK_INT(queue_put(dir, &env, &mm, qid, sizeof qid), 0);
	CHECK(queue_id_valid(qid));
	/* bad envelopes are refused, and leave nothing */
	{
		const char *bad[] = { "x\r\nRCPT TO:<evil@x>" };
		struct queue_env e2 = env;
		char q2[QUEUE_ID_MAX];
		e2.rcpts = bad;
		e2.nrcpts = 1;
		CHECK_INT(queue_put(dir, &e2, &mm, q2, sizeof q2), -1);
		e2.nrcpts = 0;
		CHECK_INT(queue_put(dir, &e2, &mm, q2, sizeof q2), -1);
	}
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	CHECK_INT(queue_import(dir, st), 1);
	CHECK_INT(queue_import(dir, st), 0);
	path = queue_file_path(dir, qid);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	free(path);
	CHECK_INT(store_queue_unfinished(st, qid, &unfinished), STORE_OK);
	CHECK_INT(unfinished, 2);
	CHECK_INT(queue_remove(dir, st, qid), 0);
	CHECK_INT(store_queue_visit(st, qid, NULL, NULL, NULL), STORE_NOTFOUND);
	store_close(st);
	testlib_rmtree(dir);
}

TEST(queue_backoff_schedule)
{
	struct config cfg = { 0 };
	cfg.queue_retry_first_ms = 300000;
	cfg.queue_retry_max_ms = 7200000;
	CHECK_INT(queue_backoff_ms(&cfg, 1), 300000);
	CHECK_INT(queue_backoff_ms(&cfg, 2), 600000);
	CHECK_INT(queue_backoff_ms(&cfg, 4), 2400000);
	CHECK_INT(queue_backoff_ms(&cfg, 6), 7200000);
	CHECK_INT(queue_backoff_ms(&cfg, 1000), 7200000);
}

TEST(remote_credentials_file)
{
	char dir[64], user[64], pass[64], err[256];
	const char *p;
	testlib_mkdtemp(dir, "creds");
	p = testlib_write(dir, "c", "relayuser:pa:ss word\n");
	CHECK_INT(remote_read_credentials(p, user, sizeof user, pass, sizeof pass, err, sizeof err), 0);
	CHECK_STR(user, "relayuser");
	CHECK_STR(pass, "pa:ss word");
	p = testlib_write(dir, "d", "no colon\n");
	CHECK_INT(remote_read_credentials(p, user, sizeof user, pass, sizeof pass, err, sizeof err), -1);
	CHECK(strstr(err, "USERNAME:PASSWORD") != NULL);
	testlib_rmtree(dir);
}
