/*
 * Fuzz target: the header block parser and the DKIM canonicalisations
 * (src/auth/msg.c). Invariants:
 *
 *   - the header block parsed whole or one byte at a time gives the same
 *     fields and body offset, within the bounds;
 *   - body canonicalisation (simple and relaxed) gives the same bytes
 *     whole, byte by byte and in uneven chunks, and is idempotent;
 *   - relaxed output has CRLF line endings only, no tab, no WSP run, no WSP
 *     before CRLF, and ends with CRLF unless empty; simple output ends with
 *     CRLF (a bare CR is content, so WSP may precede it);
 *   - relaxed header canonicalisation is idempotent and its output has one
 *     CRLF, at the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/msg.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *arg, const char *d, size_t n)
{
	msg_buf_append(arg, d, n);
}

static char *canon_chunks(enum msg_canon c, const char *in, size_t n, size_t step, size_t *outlen)
{
	struct msg_buf b = { 0 };
	struct msg_body_canon *bc = xmalloc(sizeof *bc);
	msg_body_canon_init(bc, c, sink, &b);
	for (size_t off = 0; off < n; off += step)
		msg_body_canon_feed(bc, in + off, n - off < step ? n - off : step);
	msg_body_canon_end(bc);
	free(bc);
	msg_buf_append(&b, "", 0);
	*outlen = b.len;
	return b.data;
}

static void check_body(enum msg_canon c, const char *in, size_t n, unsigned seed)
{
	size_t l1, l2, l3, l4;
	char *a = msg_body_canon_str(c, in, n, &l1);
	char *b = canon_chunks(c, in, n, 1, &l2);
	char *d = canon_chunks(c, in, n, 1 + seed % 7, &l3);
	char *e = msg_body_canon_str(c, a, l1, &l4);
	if (l1 != l2 || memcmp(a, b, l1) || l1 != l3 || memcmp(a, d, l1) || l1 != l4 || memcmp(a, e, l1))
		abort();
	if (c == MSG_CANON_SIMPLE && (l1 < 2 || memcmp(a + l1 - 2, "\r\n", 2)))
		abort();
	if (c == MSG_CANON_RELAXED) {
		if (l1 && (l1 < 2 || memcmp(a + l1 - 2, "\r\n", 2)))
			abort();
		for (size_t i = 0; i < l1; i++) {
			if (a[i] == '\t' || (a[i] == ' ' && i + 1 < l1 && a[i + 1] == ' ') ||
			    (a[i] == ' ' && i + 2 < l1 && a[i + 1] == '\r' && a[i + 2] == '\n'))
				abort();
			if (a[i] == '\n' && (i == 0 || a[i - 1] != '\r'))
				abort();
		}
	}
	free(a);
	free(b);
	free(d);
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct msg_headers h1, h2;
	size_t body1, body2 = 0;

	if (size > 65536)
		return 0;
	body1 = msg_headers_parse(&h1, in, size);
	msg_headers_init(&h2);
	for (size_t i = 0; i < size; i++)
		body2 += msg_headers_feed(&h2, in + i, 1);
	msg_headers_end(&h2);
	if (body1 != body2 || h1.nfields != h2.nfields || h1.status != h2.status || h1.len != h2.len ||
	    h1.nfields > MSG_MAX_FIELDS || h1.len > MSG_MAX_HEADER_BYTES)
		abort();
	for (size_t i = 0; i < h1.nfields; i++) {
		struct msg_buf c1 = { 0 }, c2 = { 0 };
		if (memcmp(&h1.fields[i], &h2.fields[i], sizeof h1.fields[i]))
			abort();
		if (!h1.fields[i].name_len)
			continue;
		msg_canon_header(MSG_CANON_RELAXED, h1.buf + h1.fields[i].off, h1.fields[i].len, 0, &c1);
		msg_canon_header(MSG_CANON_RELAXED, c1.data, c1.len, 0, &c2);
		if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len) || c1.len < 2 ||
		    memcmp(c1.data + c1.len - 2, "\r\n", 2) || memchr(c1.data, '\n', c1.len) != c1.data + c1.len - 1)
			abort();
		msg_buf_clear(&c1);
		msg_buf_clear(&c2);
	}
	msg_headers_clear(&h1);
	msg_headers_clear(&h2);
	check_body(MSG_CANON_SIMPLE, in + body1, size - body1, size);
	check_body(MSG_CANON_RELAXED, in + body1, size - body1, size);
	return 0;
}
