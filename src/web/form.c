/*
 * form: see form.h.
 */
#include "web/form.h"

#include <string.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..n) into out; returns the length, or -1. A '%' not followed
 * by two hex digits stands for itself (as browsers read it). */
static long decode(const char *s, size_t n, char *out, size_t outsize)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
			   hexval((unsigned char)s[i + 2]) >= 0) {
			c = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		}
		if (c == '\0' || o + 1 >= outsize)
			return -1;
		out[o++] = c;
	}
	if (outsize == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

long form_field(const char *body, size_t len, const char *name, char *out, size_t outsize)
{
	size_t nl = strlen(name), i = 0;
	if (!body)
		return -1;
	while (i <= len) {
		const char *pair = body + i, *amp = memchr(pair, '&', len - i), *eq;
		size_t plen = amp ? (size_t)(amp - pair) : len - i;
		eq = memchr(pair, '=', plen);
		if (eq && (size_t)(eq - pair) == nl && !memcmp(pair, name, nl))
			return decode(eq + 1, plen - nl - 1, out, outsize);
		if (!amp)
			break;
		i += plen + 1;
	}
	return -1;
}

long form_cookie(const char *header, const char *name, char *out, size_t outsize)
{
	size_t nl = strlen(name);
	const char *p = header;
	while (*p) {
		const char *end, *eq;
		size_t vl;
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq && (size_t)(eq - p) == nl && !memcmp(p, name, nl)) {
			const char *v = eq + 1;
			while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (end - v >= 2 && *v == '"' && end[-1] == '"')
				v++, end--;
			vl = (size_t)(end - v);
			if (vl + 1 > outsize)
				return -1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return (long)vl;
		}
		p = end;
	}
	return -1;
}
