/*
 * Fuzz target: what an SMTP server may say to our client (src/smtp/reply.c).
 * The input is split into lines and fed to the reply parser; a complete
 * reply must have a code in 200..599, a text no longer than the bound and
 * exactly as long as it says; EHLO keywords are decoded from it. The same
 * bytes, taken as a message, go through the DATA encoder: the output must
 * never contain CRLF.CRLF before its end, and un-stuffing it must give back
 * the input with its line ends made CRLF.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct smtp_reply r;
	struct smtp_ext e;
	struct smtp_dot d;
	char one[600];
	char *out, *norm;
	size_t o = 0, n = 0;

	smtp_reply_init(&r);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		enum smtp_reply_rc rc;
		if (len && p[len - 1] == '\r')
			len--;
		rc = smtp_reply_feed(&r, p, len);
		if (rc == SMTP_REPLY_DONE) {
			if (r.code < 200 || r.code > 599 || r.len > SMTP_REPLY_MAX || (r.text && strlen(r.text) != r.len))
				abort();
			smtp_ehlo_parse(&r, &e);
			smtp_reply_oneline(&r, one, sizeof one);
			if (strlen(one) >= sizeof one)
				abort();
		}
		if (rc != SMTP_REPLY_MORE)
			smtp_reply_clear(&r);
		p = nl ? nl + 1 : end;
	}
	smtp_reply_clear(&r);

	/* the DATA encoder, fed in two pieces */
	out = malloc(2 * size + 16);
	smtp_dot_init(&d);
	o += smtp_dot_encode(&d, (const char *)data, size / 2, out);
	o += smtp_dot_encode(&d, (const char *)data + size / 2, size - size / 2, out + o);
	o += smtp_dot_finish(&d, out + o);
	if (o < 3 || memcmp(out + o - 3, ".\r\n", 3))
		abort();
	for (size_t i = 0; i + 5 <= o - 3; i++)
		if (!memcmp(out + i, "\r\n.\r\n", 5))
			abort();
	/* expected: CRLF and LF become CRLF, then an ending CRLF if missing */
	norm = malloc(2 * size + 16);
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
			continue;
		if (data[i] == '\n') {
			norm[n++] = '\r';
			norm[n++] = '\n';
		} else {
			norm[n++] = (char)data[i];
		}
	}
	if (n && !(n >= 2 && norm[n - 2] == '\r' && norm[n - 1] == '\n')) {
		if (norm[n - 1] == '\r')
			n--; /* a final bare CR ends the line */
		norm[n++] = '\r';
		norm[n++] = '\n';
	}
	{
		/* un-stuff the output: drop the leading dot of each line, and the final ".\r\n" */
		size_t u = 0, body = o - 3;
		int bol = 1;
		char prev = 0;
		for (size_t i = 0; i < body; i++) {
			char c = out[i];
			if (bol && c == '.') {
				bol = 0;
				prev = c;
				continue;
			}
			out[u++] = c;
			bol = c == '\n' && prev == '\r';
			prev = c;
		}
		if (u != n || memcmp(out, norm, n))
			abort();
	}
	free(out);
	free(norm);
	return 0;
}
