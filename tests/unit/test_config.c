/*
 * Tests of configuration loading: defaults, conversions, and the promise that
 * every problem is reported as "file:line: problem; what to do", all of them
 * in one run. Each test writes its files into a fresh mkdtemp directory.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "testlib.h"
#include "unit.h"

struct loaded {
	char dir[64];
	char path[512];
	struct config *cfg;
	char *errors; /* everything config_load wrote */
	size_t nlines;
};

static void load(struct loaded *l, const char *text)
{
	FILE *err;
	size_t len = 0;

	testlib_mkdtemp(l->dir, "config");
	snprintf(l->path, sizeof l->path, "%s", testlib_write(l->dir, "postern.conf", text));
	err = open_memstream(&l->errors, &len);
	l->cfg = config_load(l->path, err);
	fclose(err);
	l->nlines = 0;
	for (const char *p = l->errors; *p; p++)
		l->nlines += *p == '\n';
}

static void unload(struct loaded *l)
{
	config_free(l->cfg);
	free(l->errors);
	testlib_rmtree(l->dir);
}

/* Whether the errors contain "PATH:LINE: text" (LINE 0: "PATH: text"). */
static int has_error(const struct loaded *l, int line, const char *text)
{
	char want[1024];
	if (line > 0)
		snprintf(want, sizeof want, "%s:%d: %s", l->path, line, text);
	else
		snprintf(want, sizeof want, "%s: %s", l->path, text);
	if (strstr(l->errors, want))
		return 1;
	fprintf(stderr, "  want: %s\n  in:   %s", want, l->errors);
	return 0;
}

TEST(config_minimal_and_defaults)
{
	struct loaded l;

	load(&l, "[server]\ndomains = example.test\ndata_dir = /tmp/x\n");
	CHECK(l.cfg != NULL);
	CHECK_STR(l.errors, "");
	if (l.cfg) {
		CHECK_INT(l.cfg->ndomains, 1);
		CHECK_STR(l.cfg->domains[0], "example.test");
		CHECK_STR(l.cfg->data_dir, "/tmp/x");
		CHECK_STR(l.cfg->mail_dir, "/tmp/x/mail");
		CHECK_STR(l.cfg->user, "postern");
		CHECK_STR(l.cfg->recipient_delimiter, "+");
		CHECK(l.cfg->hostname && *l.cfg->hostname);
		CHECK_INT(l.cfg->workers, 4);
		CHECK_INT(l.cfg->shutdown_timeout_ms, 30000);
		CHECK_INT(l.cfg->nsmtp_listen, 2);
		if (l.cfg->nsmtp_listen == 2) {
			CHECK_STR(l.cfg->smtp_listen[0].host, "0.0.0.0");
			CHECK_STR(l.cfg->smtp_listen[0].port, "25");
			CHECK_STR(l.cfg->smtp_listen[1].host, "::");
			CHECK_STR(l.cfg->smtp_listen[1].port, "25");
		}
		CHECK_INT(l.cfg->max_command_line, 2048);
		CHECK_INT(l.cfg->max_message_size, 50ULL * 1024 * 1024);
		CHECK_INT(l.cfg->max_recipients, 100);
		CHECK_INT(l.cfg->command_timeout_ms, 300000);
		CHECK_INT(l.cfg->dns_timeout_ms, 5000);
		CHECK_INT(l.cfg->bare_lf, BARE_LF_REJECT);
		CHECK_STR(l.cfg->tls_certificate, "");
		CHECK_STR(l.cfg->dns_resolver, "system");
		CHECK_INT(config_is_local_domain(l.cfg, "example.test"), 1);
		CHECK_INT(config_is_local_domain(l.cfg, "EXAMPLE.Test"), 1);
		CHECK_INT(config_is_local_domain(l.cfg, "other.test"), 0);
		CHECK_INT(config_is_local_domain(l.cfg, "sub.example.test"), 0);
	}
	unload(&l);
}

TEST(config_values)
{
	struct loaded l;

	load(&l, "# a comment\n"
		 "[server]\n"
		 "domains = A.example, b.example  c.example\n"
		 "data_dir = /srv/postern\n"
		 "mail_dir = /srv/mail\n"
		 "hostname = mx.a.example\n"
		 "recipient_delimiter = -\n"
		 "log_level = DEBUG\n"
		 "[smtp]\n"
		 "listen = 127.0.0.1:2525, [::1]:2525, *:25\n"
		 "max_message_size = 10M\n"
		 "command_timeout = 30s\n"
		 "bare_line_endings = normalise\n"
		 "[dns]\n"
		 "resolver = 127.0.0.1:53, ::1, [::1]:5353\n"
		 "timeout = 250ms\n");
	CHECK(l.cfg != NULL);
	CHECK_STR(l.errors, "");
	if (l.cfg) {
		CHECK_INT(l.cfg->ndomains, 3);
		CHECK_STR(l.cfg->domains[0], "a.example");
		CHECK_STR(l.cfg->domains[2], "c.example");
		CHECK_STR(l.cfg->mail_dir, "/srv/mail");
		CHECK_STR(l.cfg->hostname, "mx.a.example");
		CHECK_STR(l.cfg->recipient_delimiter, "-");
		CHECK_INT(l.cfg->nsmtp_listen, 3);
		if (l.cfg->nsmtp_listen == 3) {
			CHECK_STR(l.cfg->smtp_listen[1].host, "::1");
			CHECK_STR(l.cfg->smtp_listen[1].port, "2525");
			CHECK_STR(l.cfg->smtp_listen[2].host, "0.0.0.0");
		}
		CHECK_INT(l.cfg->max_message_size, 10ULL * 1024 * 1024);
		CHECK_INT(l.cfg->command_timeout_ms, 30000);
		CHECK_INT(l.cfg->dns_timeout_ms, 250);
		CHECK_INT(l.cfg->bare_lf, BARE_LF_NORMALISE);
		CHECK_INT(config_is_local_domain(l.cfg, "B.EXAMPLE"), 1);
	}
	unload(&l);
}

TEST(config_unknown_keys_suggest)
{
	struct loaded l;

	load(&l, "[server]\n"
		 "domains = example.test\n"
		 "domian = example.test\n"
		 "[smtp]\n"
		 "hostname = mx.example.test\n"
		 "completely_unrelated = 1\n"
		 "[spam]\n"
		 "level = 5\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 3, "unknown key 'domian' in [server]; did you mean 'domains' in [server]?"));
	CHECK(has_error(&l, 5, "unknown key 'hostname' in [smtp]; did you mean 'hostname' in [server]?"));
	CHECK(has_error(&l, 6, "unknown key 'completely_unrelated' in [smtp]; see 'postern config example'"));
	CHECK(has_error(&l, 8, "unknown section [spam]"));
	CHECK_INT(l.nlines, 4);
	unload(&l);
}

TEST(config_bad_values_all_reported)
{
	struct loaded l;

	load(&l, "[server]\n"                     /* 1 */
		 "domains = example.test\n"       /* 2 */
		 "data_dir = relative/dir\n"      /* 3 */
		 "log_level = loud\n"             /* 4 */
		 "workers = 0\n"                  /* 5 */
		 "recipient_delimiter = ++\n"     /* 6 */
		 "[smtp]\n"                       /* 7 */
		 "max_message_size = 10X\n"       /* 8 */
		 "listen = 1.2.3.4, [::1]:99999\n" /* 9 */
		 "command_timeout = soon\n"       /* 10 */
		 "max_recipients = many\n"        /* 11 */
		 "just some words\n");            /* 12 */
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 3, "data_dir = relative/dir must be an absolute path"));
	CHECK(has_error(&l, 4, "log_level = loud is not one of: error,warn,info,debug"));
	CHECK(has_error(&l, 5, "workers = 0 is out of range; use a value from 1 to 64"));
	CHECK(has_error(&l, 6, "recipient_delimiter must be one character"));
	CHECK(has_error(&l, 8, "max_message_size = 10X is not a size"));
	CHECK(has_error(&l, 9, "listen: '1.2.3.4' is not ADDRESS:PORT"));
	CHECK(has_error(&l, 9, "listen: '[::1]:99999' is not ADDRESS:PORT"));
	CHECK(has_error(&l, 10, "command_timeout = soon is not a duration"));
	CHECK(has_error(&l, 11, "max_recipients = many is not a whole number"));
	CHECK(has_error(&l, 12, "expected 'key = value'"));
	/* 10 today plus a follow-on "max_data_line is larger than
	 * max_message_size" (the unparsable size counts as 0); see the report. */
	CHECK_INT(l.nlines, 10);
	unload(&l);
}

TEST(config_missing_and_duplicate)
{
	struct loaded l;

	load(&l, "[server]\ndata_dir = /tmp/x\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 0, "[server] domains is required"));
	unload(&l);

	load(&l, "[server]\ndomains = a.test\ndomains = b.test\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 3, "'domains' is already set in [server] on line 2; keep one of them"));
	unload(&l);

	load(&l, "[server]\ndomains = ok.test, bad_domain!, -\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 2, "domains: 'bad_domain!' is not a domain name"));
	unload(&l);

	load(&l, "[server]\ndomains = a.test\n[tls]\ncertificate = /nonexistent/cert.pem\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 4, "[tls] certificate and key go together"));
	CHECK(has_error(&l, 4, "cannot read /nonexistent/cert.pem"));
	unload(&l);

	load(&l, "[server]\ndomains = a.test\n[smtp]\nmax_data_line = 100k\nmax_message_size = 10k\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 4, "max_data_line is larger than max_message_size"));
	unload(&l);
}

TEST(config_unreadable_file)
{
	char *errors = NULL;
	size_t len = 0;
	FILE *err = open_memstream(&errors, &len);

	CHECK(config_load("/nonexistent/postern.conf", err) == NULL);
	fclose(err);
	CHECK(strstr(errors, "/nonexistent/postern.conf: cannot open") != NULL);
	free(errors);
}

TEST(config_example_loads)
{
	char dir[64], *text = NULL, *errors = NULL;
	size_t tlen = 0, elen = 0;
	FILE *out = open_memstream(&text, &tlen), *err;
	struct config *cfg;

	config_write_example(out);
	fclose(out);
	CHECK(strstr(text, "[server]") && strstr(text, "[smtp]") && strstr(text, "[tls]") && strstr(text, "[dns]"));
	testlib_mkdtemp(dir, "config");
	err = open_memstream(&errors, &elen);
	cfg = config_load(testlib_write(dir, "example.conf", text), err);
	fclose(err);
	CHECK(cfg != NULL);
	CHECK_STR(errors, "");
	config_free(cfg);
	free(text);
	free(errors);
	testlib_rmtree(dir);
}

TEST(config_parse_listen)
{
	static const struct {
		const char *in, *host, *port;
	} good[] = {
		{ "127.0.0.1:25", "127.0.0.1", "25" },
		{ "0.0.0.0:65535", "0.0.0.0", "65535" },
		{ "*:587", "0.0.0.0", "587" },
		{ "[::1]:25", "::1", "25" },
		{ "[::]:2525", "::", "2525" },
		{ "[2001:db8::1]:465", "2001:db8::1", "465" },
		{ "[::ffff:192.0.2.1]:25", "::ffff:192.0.2.1", "25" },
	};
	static const char *const bad[] = {
		"", ":25", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
		"127.0.0.1:-1", "256.0.0.1:25", "::1:25", "[::1]25", "[::1]", "[]:25", "[127.0.0.1]:25",
		"[::1:25", "mail.example:25", "localhost:25", "*:", "[*]:25",
	};
	struct listen_addr la;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		CHECK_INT(config_parse_listen(good[i].in, &la), 0);
		CHECK_STR(la.host, good[i].host);
		CHECK_STR(la.port, good[i].port);
		free(la.host);
		free(la.port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = config_parse_listen(bad[i], &la);
		if (rc == 0) {
			fprintf(stderr, "  accepted: '%s'\n", bad[i]);
			free(la.host);
			free(la.port);
		}
		CHECK_INT(rc, -1);
	}
}

TEST(config_web_section)
{
	struct loaded l;

	load(&l, "[server]\ndomains = example.test\n");
	CHECK(l.cfg != NULL);
	if (l.cfg) {
		/* The dashboard is on, on loopback, and nobody may log in. */
		CHECK_INT(l.cfg->nweb_listen, 1);
		if (l.cfg->nweb_listen == 1) {
			CHECK_STR(l.cfg->web_listen[0].host, "127.0.0.1");
			CHECK_STR(l.cfg->web_listen[0].port, "8025");
		}
		CHECK_INT(l.cfg->nweb_admins, 0);
		CHECK_INT(l.cfg->web_session_lifetime_ms, 12 * 3600 * 1000);
		CHECK_STR(l.cfg->web_tls, "no");
		CHECK_STR(l.cfg->web_metrics_loopback, "yes");
		CHECK_STR(l.cfg->web_metrics_token, "");
	}
	unload(&l);

	load(&l, "[server]\ndomains = example.test\n[web]\nlisten =\nadmins = Alice@Example.Test bob@example.test\n"
		 "session_lifetime = 30m\nmetrics_token = 0123456789abcdef\n");
	CHECK(l.cfg != NULL);
	if (l.cfg) {
		CHECK_INT(l.cfg->nweb_listen, 0);
		CHECK_INT(l.cfg->nweb_admins, 2);
		if (l.cfg->nweb_admins == 2)
			CHECK_STR(l.cfg->web_admins[0], "alice@example.test");
		CHECK_INT(l.cfg->web_session_lifetime_ms, 30 * 60 * 1000);
	}
	unload(&l);

	load(&l, "[server]\ndomains = example.test\n[web]\nlisten = 127.0.0.1:8025, nowhere\nadmins = @example.test\n"
		 "session_lifetime = 1s\ntls = yes\nmetrics_token = has space in it ok\n");
	CHECK(l.cfg == NULL);
	CHECK(has_error(&l, 4, "listen: 'nowhere' is not ADDRESS:PORT"));
	CHECK(has_error(&l, 5, "admins: '@example.test' is not a mailbox address"));
	CHECK(has_error(&l, 6, "session_lifetime = 1s is out of range; use a value from 1m to 30d"));
	CHECK(has_error(&l, 7, "tls = yes needs a certificate"));
	CHECK(has_error(&l, 8, "metrics_token must be 16 or more printable characters"));
	unload(&l);
}
