/*
 * Fuzz target: the DATA/BDAT decoder (src/smtp/data.c). Checks the
 * invariants that make smuggling impossible: feeding the same bytes in one
 * piece or byte by byte gives the same result; in DATA mode the end is only
 * ever found right after "\r\n.\r\n" (or ".\r\n" at the very start).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	size_t consumed, outlen;
	int errors, ended;
};

static struct outcome run(const uint8_t *in, size_t n, int dot, int norm, int split, char *out)
{
	struct data_decoder d;
	struct outcome o = { 0 };
	static char buf[2 * 65536 + 2];
	data_init(&d, dot, norm, 100, 4096);
	while (o.consumed < n && d.state != DS_END) {
		size_t step = split ? 1 : n - o.consumed, len;
		o.consumed += data_feed(&d, (const char *)in + o.consumed, step, buf, sizeof buf, &len);
		memcpy(out + o.outlen, buf, len);
		o.outlen += len;
	}
	o.errors = d.errors;
	o.ended = d.state == DS_END;
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[2 * 65536 + 2], b[2 * 65536 + 2];
	if (size > 65536 || size < 1)
		return 0;
	int dot = data[0] & 1, norm = (data[0] >> 1) & 1;
	struct outcome x = run(data + 1, size - 1, dot, norm, 0, a);
	struct outcome y = run(data + 1, size - 1, dot, norm, 1, b);
	if (x.consumed != y.consumed || x.outlen != y.outlen || x.errors != y.errors || x.ended != y.ended ||
	    memcmp(a, b, x.outlen))
		abort();
	if (x.outlen > 4096)
		abort();
	if (x.ended) {
		const uint8_t *p = data + 1;
		size_t c = x.consumed;
		int ok = (c == 3 && !memcmp(p, ".\r\n", 3)) || (c >= 5 && !memcmp(p + c - 5, "\r\n.\r\n", 5));
		if (!ok || !dot)
			abort();
	}
	return 0;
}
