/*
 * Unit tests for src/auth/msg.c: the header block parser, the DKIM
 * canonicalisations (RFC 6376 section 3.4, with the example of 3.4.6),
 * field selection for h= (5.4.2), body hashing with l=, base64. Every
 * streaming function is also fed one byte at a time and must agree with the
 * whole-buffer result.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/msg.h"
#include "lib/util.h"
#include "unit.h"

/* RFC 6376 section 3.4.6. */
static const char ex_header[] = "A: X\r\nB : Y\t\r\n\tZ  \r\n";
static const char ex_body[] = " C \r\nD \t E\r\n\r\n\r\n";

static char *canon_all_headers(enum msg_canon c, const char *text)
{
	struct msg_headers h;
	struct msg_buf b = { 0 };
	msg_headers_parse(&h, text, strlen(text));
	for (size_t i = 0; i < h.nfields; i++)
		msg_canon_header(c, h.buf + h.fields[i].off, h.fields[i].len, 0, &b);
	msg_buf_append(&b, "", 0);
	msg_headers_clear(&h);
	return b.data;
}

/* The body canonicalised whole and one byte at a time must agree. */
static char *body_canon(enum msg_canon c, const char *body, size_t len)
{
	size_t n1, n2;
	char *whole = msg_body_canon_str(c, body, len, &n1);
	struct msg_buf b = { 0 };
	struct msg_body_canon *bc = xmalloc(sizeof *bc);
	extern void test_msg_sink(void *, const char *, size_t);
	msg_body_canon_init(bc, c, test_msg_sink, &b);
	for (size_t i = 0; i < len; i++)
		msg_body_canon_feed(bc, body + i, 1);
	msg_body_canon_end(bc);
	free(bc);
	msg_buf_append(&b, "", 0);
	n2 = b.len;
	CHECK_INT(n1, n2);
	CHECK(n1 == n2 && !memcmp(whole, b.data, n1));
	msg_buf_clear(&b);
	return whole;
}

void test_msg_sink(void *arg, const char *data, size_t len);
void test_msg_sink(void *arg, const char *data, size_t len)
{
	msg_buf_append(arg, data, len);
}

static void check_body(enum msg_canon c, const char *in, const char *want)
{
	char *got = body_canon(c, in, strlen(in));
	CHECK_STR(got, want);
	free(got);
}

TEST(msg_canon_rfc6376_example)
{
	char *s = canon_all_headers(MSG_CANON_RELAXED, ex_header);
	CHECK_STR(s, "a:X\r\nb:Y Z\r\n");
	free(s);
	s = canon_all_headers(MSG_CANON_SIMPLE, ex_header);
	CHECK_STR(s, ex_header);
	free(s);
	check_body(MSG_CANON_RELAXED, ex_body, " C\r\nD E\r\n");
	check_body(MSG_CANON_SIMPLE, ex_body, " C \r\nD \t E\r\n");
	/* The same message with LF line endings, as postern stores it. */
	s = canon_all_headers(MSG_CANON_RELAXED, "A: X\nB : Y\t\n\tZ  \n");
	CHECK_STR(s, "a:X\r\nb:Y Z\r\n");
	free(s);
	s = canon_all_headers(MSG_CANON_SIMPLE, "A: X\nB : Y\t\n\tZ  \n");
	CHECK_STR(s, ex_header);
	free(s);
	check_body(MSG_CANON_RELAXED, " C \nD \t E\n\n\n", " C\r\nD E\r\n");
	check_body(MSG_CANON_SIMPLE, " C \nD \t E\n\n\n", " C \r\nD \t E\r\n");
}

TEST(msg_canon_body_edges)
{
	/* Empty body: CRLF in simple, nothing in relaxed (erratum 1384). */
	check_body(MSG_CANON_SIMPLE, "", "\r\n");
	check_body(MSG_CANON_RELAXED, "", "");
	check_body(MSG_CANON_SIMPLE, "\n\n\r\n", "\r\n");
	check_body(MSG_CANON_RELAXED, "\n \t\n\r\n", "");
	/* A last line without a line ending gets one. */
	check_body(MSG_CANON_SIMPLE, "abc", "abc\r\n");
	check_body(MSG_CANON_RELAXED, "abc  ", "abc\r\n");
	check_body(MSG_CANON_RELAXED, "abc\n  ", "abc\r\n");
	check_body(MSG_CANON_SIMPLE, "abc\n  ", "abc\r\n  \r\n");
	/* Empty lines inside the body stay. */
	check_body(MSG_CANON_SIMPLE, "a\n\n\nb\n\n", "a\r\n\r\n\r\nb\r\n");
	check_body(MSG_CANON_RELAXED, "a\n \n\t\nb\n\n", "a\r\n\r\n\r\nb\r\n");
	/* Bare CR is an ordinary byte; CR LF and LF are both line endings. */
	check_body(MSG_CANON_SIMPLE, "a\rb\r\nc\n", "a\rb\r\nc\r\n");
	check_body(MSG_CANON_RELAXED, "a \r b\r\n", "a \r b\r\n");
	check_body(MSG_CANON_RELAXED, "x\r", "x\r\r\n");
	check_body(MSG_CANON_SIMPLE, "x\r", "x\r\r\n");
	check_body(MSG_CANON_RELAXED, "\r\r\n", "\r\r\n");
	/* WSP runs, leading WSP kept as one SP, trailing WSP gone. */
	check_body(MSG_CANON_RELAXED, "\t\ta  \t b \t\r\n", " a b\r\n");
	check_body(MSG_CANON_SIMPLE, "\t\ta  \t b \t\r\n", "\t\ta  \t b \t\r\n");
	/* Mixed endings. */
	check_body(MSG_CANON_RELAXED, "one\r\ntwo\nthree\r\n\n", "one\r\ntwo\r\nthree\r\n");
}

TEST(msg_canon_relaxed_idempotent)
{
	static const char *const bodies[] = { ex_body, "a  b\t\r\n\r\nc \r\n\r\n", "x\ry \n", "", "\n" };
	for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
		size_t n1, n2;
		char *a = msg_body_canon_str(MSG_CANON_RELAXED, bodies[i], strlen(bodies[i]), &n1);
		char *b = msg_body_canon_str(MSG_CANON_RELAXED, a, n1, &n2);
		CHECK(n1 == n2 && !memcmp(a, b, n1));
		free(a);
		free(b);
	}
}

TEST(msg_canon_header_fields)
{
	char *s;
	s = msg_canon_header_str(MSG_CANON_RELAXED, "SUBJect \t:  hello   world \n", 27, 0);
	CHECK_STR(s, "subject:hello world\r\n");
	free(s);
	s = msg_canon_header_str(MSG_CANON_RELAXED, "To: a,\r\n b,\n\tc\n", 15, 1);
	CHECK_STR(s, "to:a, b, c");
	free(s);
	s = msg_canon_header_str(MSG_CANON_RELAXED, "X-Empty:\n", 9, 0);
	CHECK_STR(s, "x-empty:\r\n");
	free(s);
	s = msg_canon_header_str(MSG_CANON_SIMPLE, "X-Fold: a\n b\n", 13, 0);
	CHECK_STR(s, "X-Fold: a\r\n b\r\n");
	free(s);
	s = msg_canon_header_str(MSG_CANON_SIMPLE, "X-Fold: a\n b\n", 13, 1);
	CHECK_STR(s, "X-Fold: a\r\n b");
	free(s);
	/* No final line ending (a header block ended by the end of input). */
	s = msg_canon_header_str(MSG_CANON_SIMPLE, "X: y", 4, 0);
	CHECK_STR(s, "X: y\r\n");
	free(s);
}

TEST(msg_headers_parse_basic)
{
	const char *m = "From: a@example.org\nSubject: one\n two\nX:y\n\nbody\n";
	struct msg_headers h;
	size_t body = msg_headers_parse(&h, m, strlen(m));
	size_t n;
	const char *v;
	char *u;
	CHECK_INT(h.status, MSG_OK);
	CHECK_INT(h.nfields, 3);
	CHECK_STR(m + body, "body\n");
	CHECK(msg_field_is(&h, 1, "subject"));
	CHECK(!msg_field_is(&h, 1, "subjec"));
	v = msg_field_value(&h, 1, &n);
	CHECK(n == 9 && !memcmp(v, " one\n two", 9));
	u = msg_field_unfolded(&h, 1);
	CHECK_STR(u, "one two");
	free(u);
	CHECK_INT(msg_find_last(&h, "from", h.nfields), 0);
	CHECK_INT(msg_find_last(&h, "to", h.nfields), -1);
	msg_headers_clear(&h);

	/* CRLF, and a header block without a body. */
	m = "From: a\r\nTo: b\r\n";
	body = msg_headers_parse(&h, m, strlen(m));
	CHECK_INT(h.status, MSG_OK);
	CHECK_INT(h.nfields, 2);
	CHECK_INT(body, strlen(m));
	msg_headers_clear(&h);

	/* The last field without a line ending. */
	m = "From: a\nTo: b";
	msg_headers_parse(&h, m, strlen(m));
	CHECK_INT(h.nfields, 2);
	v = msg_field_value(&h, 1, &n);
	CHECK(n == 2 && !memcmp(v, " b", 2));
	msg_headers_clear(&h);
}

TEST(msg_headers_streaming)
{
	const char *m = "From: a@example.org\r\nSubject: one\r\n two\r\n\r\nbody\r\n\r\n";
	struct msg_headers h;
	size_t total = 0;
	msg_headers_init(&h);
	for (size_t i = 0; i < strlen(m); i++)
		total += msg_headers_feed(&h, m + i, 1);
	CHECK(h.complete);
	CHECK_INT(h.nfields, 2);
	CHECK_STR(m + total, "body\r\n\r\n");
	CHECK_INT(h.len, total);
	msg_headers_clear(&h);
}

TEST(msg_headers_malformed_and_bounds)
{
	struct msg_headers h;
	struct msg_buf b = { 0 };
	const char *m = " starts with a space\nFrom: a\n\n";
	msg_headers_parse(&h, m, strlen(m));
	CHECK_INT(h.status, MSG_MALFORMED);
	msg_headers_clear(&h);
	m = "From: a\nno colon here\nTo: b\n\n";
	msg_headers_parse(&h, m, strlen(m));
	CHECK_INT(h.status, MSG_MALFORMED);
	CHECK_INT(h.nfields, 3);
	CHECK_INT(h.fields[1].name_len, 0);
	msg_headers_clear(&h);
	m = ": empty name\n\n";
	msg_headers_parse(&h, m, strlen(m));
	CHECK_INT(h.status, MSG_MALFORMED);
	msg_headers_clear(&h);

	/* 1001 fields. */
	for (int i = 0; i < 1001; i++)
		msg_buf_append(&b, "X-A: b\n", 7);
	msg_buf_append(&b, "\nbody\n", 6);
	msg_headers_parse(&h, b.data, b.len);
	CHECK_INT(h.status, MSG_TOO_MANY);
	CHECK_INT(h.nfields, MSG_MAX_FIELDS);
	CHECK(h.complete);
	msg_headers_clear(&h);
	msg_buf_clear(&b);

	/* Over 1 MiB in one folded field. */
	msg_buf_append(&b, "X-Big: a\n", 9);
	{
		char line[70];
		memset(line, 'a', sizeof line);
		line[0] = ' ';
		line[69] = '\n';
		for (int i = 0; i < 20000; i++)
			msg_buf_append(&b, line, sizeof line);
	}
	msg_buf_append(&b, "\nbody\n", 6);
	CHECK_INT(msg_headers_parse(&h, b.data, b.len), b.len);
	CHECK_INT(h.status, MSG_TOO_BIG);
	CHECK(h.len <= MSG_MAX_HEADER_BYTES);
	msg_headers_clear(&h);
	msg_buf_clear(&b);
}

TEST(msg_pick_fields_oversigned)
{
	const char *m = "From: first\nTo: t\nFrom: second\nSubject: s\n\n";
	const char *names[] = { "from", "from", "from", "subject", "cc", "FROM" };
	size_t lens[] = { 4, 4, 4, 7, 2, 4 };
	long picked[6];
	struct msg_headers h;
	msg_headers_parse(&h, m, strlen(m));
	msg_pick_fields(&h, names, lens, 6, (size_t)-1, picked);
	CHECK_INT(picked[0], 2); /* the bottom instance first */
	CHECK_INT(picked[1], 0);
	CHECK_INT(picked[2], -1); /* oversigned: a null field */
	CHECK_INT(picked[3], 3);
	CHECK_INT(picked[4], -1);
	CHECK_INT(picked[5], -1);
	/* The excluded field is never picked. */
	msg_pick_fields(&h, names, lens, 1, 2, picked);
	CHECK_INT(picked[0], 0);
	msg_headers_clear(&h);
}

TEST(msg_bodyhash_limit_and_chunks)
{
	/* l= counts canonical bytes; the whole length is reported too. */
	const char *body = "line one\nline two\n\n\n";
	unsigned char d1[MSG_HASH_MAX], d2[MSG_HASH_MAX], d3[MSG_HASH_MAX];
	uint64_t total = 0;
	struct msg_bodyhash *h = msg_bodyhash_new(MSG_CANON_SIMPLE, MSG_HASH_SHA256, 10);
	size_t n;
	for (size_t i = 0; i < strlen(body); i++)
		msg_bodyhash_feed(h, body + i, 1);
	n = msg_bodyhash_final(h, d1, &total);
	msg_bodyhash_free(h);
	CHECK_INT(n, 32);
	CHECK_INT(total, 20); /* "line one\r\nline two\r\n" */
	msg_digest(MSG_HASH_SHA256, "line one\r\n", 10, d2);
	CHECK(!memcmp(d1, d2, 32));
	h = msg_bodyhash_new(MSG_CANON_RELAXED, MSG_HASH_SHA1, -1);
	msg_bodyhash_feed(h, body, strlen(body));
	CHECK_INT(msg_bodyhash_final(h, d3, NULL), 20);
	msg_bodyhash_free(h);
	msg_digest(MSG_HASH_SHA1, "line one\r\nline two\r\n", 20, d2);
	CHECK(!memcmp(d3, d2, 20));
	/* The empty body in simple is CRLF: the well-known bh. */
	{
		char *b64;
		h = msg_bodyhash_new(MSG_CANON_SIMPLE, MSG_HASH_SHA256, -1);
		msg_bodyhash_final(h, d1, NULL);
		msg_bodyhash_free(h);
		b64 = msg_base64_encode(d1, 32);
		CHECK_STR(b64, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
		free(b64);
		h = msg_bodyhash_new(MSG_CANON_RELAXED, MSG_HASH_SHA256, -1);
		msg_bodyhash_final(h, d1, NULL);
		msg_bodyhash_free(h);
		b64 = msg_base64_encode(d1, 32);
		CHECK_STR(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
		free(b64);
	}
}

TEST(msg_base64)
{
	unsigned char out[64];
	CHECK_INT(msg_base64_decode("aGVsbG8=", 8, out, sizeof out), 5);
	CHECK(!memcmp(out, "hello", 5));
	CHECK_INT(msg_base64_decode(" aGVs\r\n\tbG8 = ", 14, out, sizeof out), 5);
	CHECK_INT(msg_base64_decode("aGVsbG8", 7, out, sizeof out), 5); /* padding optional */
	CHECK_INT(msg_base64_decode("", 0, out, sizeof out), 0);
	CHECK_INT(msg_base64_decode("aGVs!G8=", 8, out, sizeof out), -1);
	CHECK_INT(msg_base64_decode("aGVsbG8=x", 9, out, sizeof out), -1);
	CHECK_INT(msg_base64_decode("a", 1, out, sizeof out), -1);
	CHECK_INT(msg_base64_decode("aGVsbG8===", 10, out, sizeof out), -1);
	CHECK_INT(msg_base64_decode("aGVsbG8=", 8, out, 4), -1);
}

/* The four-at-a-time path and the character loop agree: random data,
 * encoded, with white space sprinkled in (which forces the slow path at
 * random places), decodes back to itself; garbage never writes past the
 * output buffer. */
TEST(msg_base64_random_round_trip)
{
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		unsigned char data[300], out[300];
		char spaced[1200];
		size_t n = (size_t)(seed % 300), o = 0;
		char *enc;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			data[i] = (unsigned char)(seed >> 16);
		}
		enc = msg_base64_encode(data, n);
		for (size_t i = 0; enc[i]; i++) {
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 20) % 7 == 0)
				spaced[o++] = " \t\r\n"[(seed >> 8) & 3];
			spaced[o++] = enc[i];
		}
		CHECK_INT(msg_base64_decode(spaced, o, out, sizeof out), (long)n);
		CHECK(memcmp(out, data, n) == 0);
		/* One byte too small an output: refused, never overrun. */
		if (n > 0)
			CHECK_INT(msg_base64_decode(enc, strlen(enc), out, n - 1), -1);
		free(enc);
		seed = seed * 1103515245u + 12345u;
	}
}

/* The one-pass check for lines already canonical: a run of spaces, a tab
 * or a CR at every position of lines of every length up to 40 (eight-byte
 * words and their tails, and runs across word edges) gives what the
 * byte-at-a-time path gives. */
TEST(msg_relaxed_line_fast_path_positions)
{
	const char *specials[] = { "  ", "\t", " \t", "\r", "   " };
	for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
		for (size_t len = 1; len <= 40; len++) {
			for (size_t pos = 0; pos < len; pos++) {
				char line[64], expect[64], *got;
				size_t sl = strlen(specials[s]), n = 0, e = 0, glen;
				for (size_t i = 0; i < pos; i++)
					line[n++] = (char)('a' + i % 26);
				memcpy(line + n, specials[s], sl);
				n += sl;
				for (size_t i = pos; i < len; i++)
					line[n++] = (char)('a' + i % 26);
				line[n++] = '\r';
				line[n++] = '\n';
				/* The reference: each run of WSP becomes one SP; a bare
				 * CR is content (RFC 6376 3.4.4); the line keeps CRLF. */
				for (size_t i = 0; i + 2 < n; i++) {
					if (line[i] == ' ' || line[i] == '\t') {
						if (e == 0 || expect[e - 1] != ' ')
							expect[e++] = ' ';
					} else {
						expect[e++] = line[i];
					}
				}
				while (e && expect[e - 1] == ' ')
					e--;
				expect[e++] = '\r';
				expect[e++] = '\n';
				got = msg_body_canon_str(MSG_CANON_RELAXED, line, n, &glen);
				if (glen != e || memcmp(got, expect, e)) {
					fprintf(stderr, "special %zu len %zu pos %zu\n", s, len, pos);
					unit_failures++;
				}
				free(got);
			}
		}
	}
}

static void append_sink(void *arg, const char *data, size_t len)
{
	msg_buf_append(arg, data, len);
}

static char *canon_bytewise(const char *in, size_t n, size_t *outlen)
{
	struct msg_buf b = { 0 };
	struct msg_body_canon *bc = xmalloc(sizeof *bc);
	msg_body_canon_init(bc, MSG_CANON_RELAXED, append_sink, &b);
	for (size_t i = 0; i < n; i++)
		msg_body_canon_feed(bc, in + i, 1);
	msg_body_canon_end(bc);
	free(bc);
	msg_buf_append(&b, "", 0);
	*outlen = b.len;
	return b.data;
}

/* Bodies of mail-like text with, now and then, every thing relaxed
 * changes (tabs, runs of spaces, a space before the line end, bare CR,
 * bare LF, empty lines): canonicalised whole (the 16-byte block scan and
 * the per-line path) and one byte at a time (neither) give the same. */
TEST(msg_relaxed_block_scan_random)
{
	static const char *const bits[] = { "word", "x", "  ", "\t", " ", "\r", "\n", "\r\n", "\r\n\r\n", " \r\n", "ab cd" };
	unsigned seed = 777;
	for (int round = 0; round < 3000; round++) {
		char body[4096];
		size_t n = 0, l1, l2;
		char *a, *b;
		while (n < sizeof body - 16) {
			seed = seed * 1103515245u + 12345u;
			unsigned r = (seed >> 16) % 100;
			const char *piece = r < 70 ? "lorem ipsum " : r < 80 ? "text\r\n" : bits[r % (sizeof bits / sizeof bits[0])];
			size_t k = strlen(piece);
			memcpy(body + n, piece, k);
			n += k;
			if ((seed >> 8) % 50 == 0)
				break;
		}
		a = msg_body_canon_str(MSG_CANON_RELAXED, body, n, &l1);
		b = canon_bytewise(body, n, &l2);
		if (l1 != l2 || memcmp(a, b, l1)) {
			fprintf(stderr, "round %d differs (%zu vs %zu bytes)\n", round, l1, l2);
			unit_failures++;
		}
		free(a);
		free(b);
	}
}
