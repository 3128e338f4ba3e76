/*
 * Tests for src/smtp/data.c: DATA/BDAT decoding, dot-stuffing, and every
 * smuggling shape we know of (bare LF/CR around the dot).
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"
#include "unit.h"

struct result {
	char out[4096];
	size_t outlen;
	size_t consumed;
	int errors;
	int ended;
};

/* Feeds in, one byte at a time when split is set (chunk boundaries must not
 * matter), and collects the output. */
static struct result run(const char *in, size_t n, int dot, int normalise, int split)
{
	struct data_decoder d;
	struct result r = { 0 };
	char buf[8192];
	size_t pos = 0;

	data_init(&d, dot, normalise, 1000, 1 << 20);
	while (pos < n && d.state != DS_END) {
		size_t step = split ? 1 : n - pos, outlen, used;
		used = data_feed(&d, in + pos, step, buf, sizeof buf, &outlen);
		memcpy(r.out + r.outlen, buf, outlen);
		r.outlen += outlen;
		pos += used;
	}
	if (!dot) {
		size_t outlen;
		data_finish(&d, buf, &outlen);
		memcpy(r.out + r.outlen, buf, outlen);
		r.outlen += outlen;
	}
	r.out[r.outlen] = '\0';
	r.consumed = pos;
	r.errors = d.errors;
	r.ended = d.state == DS_END;
	return r;
}

#define RUN(s, dot, norm, split) run(s, sizeof(s) - 1, dot, norm, split)

TEST(data_simple_message)
{
	for (int split = 0; split < 2; split++) {
		struct result r = RUN("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", 1, 0, split);
		CHECK(r.ended);
		CHECK_INT(r.errors, 0);
		CHECK_STR(r.out, "Subject: x\n\nhello\n");
		CHECK_INT(r.consumed, strlen("Subject: x\r\n\r\nhello\r\n.\r\n"));
	}
}

TEST(data_empty_message)
{
	struct result r = RUN(".\r\n", 1, 0, 0);
	CHECK(r.ended);
	CHECK_INT(r.outlen, 0);
}

TEST(data_dot_stuffing_undone)
{
	struct result r = RUN("..x\r\n...\r\n.\r\n", 1, 0, 1);
	CHECK(r.ended);
	CHECK_STR(r.out, ".x\n..\n");
}

TEST(data_smuggling_sequences_rejected)
{
	/* Each would end the message in a lenient server; here the stream goes
	 * on to the real CRLF.CRLF and the message is marked bad. */
	static const char *const seqs[] = { "\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r\n.\r", "\r.\r\n",
					    "\n.\r", "\r.\n" };
	for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
		char in[256];
		int n = snprintf(in, sizeof in, "a%sMAIL FROM:<x@y>\r\nb\r\n.\r\n", seqs[i]);
		for (int split = 0; split < 2; split++) {
			struct result r = run(in, (size_t)n, 1, 0, split);
			CHECK(r.ended);
			CHECK_INT(r.consumed, n);
			CHECK(r.errors & DATA_ERR_BARE);
		}
	}
}

TEST(data_smuggling_normalised_is_one_message)
{
	static const char *const seqs[] = { "\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r\n.\r", "\r.\r\n" };
	for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
		char in[256];
		int n = snprintf(in, sizeof in, "a%sMAIL FROM:<x@y>\r\nb\r\n.\r\n", seqs[i]);
		struct result r = run(in, (size_t)n, 1, 1, 1);
		CHECK(r.ended);
		CHECK_INT(r.consumed, n);
		CHECK_INT(r.errors, 0);
		CHECK(strstr(r.out, "MAIL FROM:<x@y>\n") != NULL);
		CHECK(strstr(r.out, "\nb\n") != NULL);
	}
}

TEST(data_bare_lf_in_text)
{
	struct result r = RUN("a\nb\r\n.\r\n", 1, 0, 0);
	CHECK(r.errors & DATA_ERR_BARE);
	r = RUN("a\nb\r\n.\r\n", 1, 1, 0);
	CHECK_INT(r.errors, 0);
	CHECK_STR(r.out, "a\nb\n");
}

TEST(data_nul_and_8bit)
{
	struct data_decoder d;
	char out[64];
	size_t outlen;
	data_init(&d, 1, 0, 1000, 1000);
	data_feed(&d, "a\0b\r\n.\r\n", 8, out, sizeof out, &outlen);
	CHECK(d.errors & DATA_ERR_NUL);
	data_init(&d, 1, 0, 1000, 1000);
	data_feed(&d, "caf\xc3\xa9\r\n.\r\n", 10, out, sizeof out, &outlen);
	CHECK_INT(d.errors, 0);
	CHECK(d.eightbit);
}

TEST(data_line_and_size_bounds)
{
	struct data_decoder d;
	char in[3000], out[8000];
	size_t outlen;

	memset(in, 'x', sizeof in);
	memcpy(in + sizeof in - 5, "\r\n.\r\n", 5);
	data_init(&d, 1, 0, 1000, 1 << 20);
	data_feed(&d, in, sizeof in, out, sizeof out, &outlen);
	CHECK(d.errors & DATA_ERR_LINE);
	CHECK(d.state == DS_END);

	/* 998 characters + CRLF = 1000: allowed. */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	data_init(&d, 1, 0, 1000, 1 << 20);
	data_feed(&d, in, 1003, out, sizeof out, &outlen);
	CHECK_INT(d.errors, 0);

	data_init(&d, 1, 0, 1000, 100);
	memset(in, 'y', 2000);
	for (int i = 0; i < 2000; i += 50)
		memcpy(in + i + 48, "\r\n", 2);
	memcpy(in + 2000, ".\r\n", 3);
	data_feed(&d, in, 2003, out, sizeof out, &outlen);
	CHECK(d.errors & DATA_ERR_SIZE);
	CHECK(outlen <= 100);
	CHECK(d.state == DS_END);
}

TEST(data_bdat_mode)
{
	/* No dot handling in BDAT; CRLF still becomes LF. */
	struct result r = RUN(".\r\n..x\r\nend", 0, 0, 1);
	CHECK(!r.ended);
	CHECK_INT(r.errors, 0);
	CHECK_STR(r.out, ".\n..x\nend");
	r = RUN("a\r", 0, 0, 0);
	CHECK(r.errors & DATA_ERR_BARE);
}
