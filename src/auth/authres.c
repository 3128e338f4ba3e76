/*
 * authres: see authres.h. Property values that are not RFC 2045 tokens
 * (or dot-atoms, for domains and addresses) are written as quoted strings,
 * so a value taken from a message can never break the field's syntax.
 */
#include "authres.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/header.h"
#include "lib/util.h"

/* Skips white space, folding and RFC 5322 comments (nested, bounded). */
static size_t skip_cfws(const char *s, size_t i, size_t n)
{
	int depth = 0;
	while (i < n) {
		char c = s[i];
		if (depth) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				depth = depth < 64 ? depth + 1 : depth;
			else if (c == ')')
				depth--;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
		} else if (c == '(') {
			depth = 1;
			i++;
		} else {
			break;
		}
	}
	return i;
}

int authres_serv_id(const char *value, size_t len, char *out, size_t outsize)
{
	size_t i = skip_cfws(value, 0, len), o = 0;
	if (i < len && value[i] == '"') {
		/* A quoted-string authserv-id. */
		for (i++; i < len && value[i] != '"'; i++) {
			if (value[i] == '\\' && i + 1 < len)
				i++;
			if (o + 1 < outsize)
				out[o++] = (char)tolower((unsigned char)value[i]);
		}
	} else {
		for (; i < len && !strchr(" \t\r\n;()", value[i]); i++)
			if (o + 1 < outsize)
				out[o++] = (char)tolower((unsigned char)value[i]);
	}
	if (!outsize)
		return -1;
	out[o] = '\0';
	return o ? 0 : -1;
}

char *authres_strip(const char *hdr, size_t hdr_len, const char *authserv_id, size_t *out_len, int *removed)
{
	char *out = xmalloc(hdr_len + 1);
	size_t o = 0, i = 0;
	static const char name[] = "authentication-results";
	const size_t nl = sizeof name - 1;

	*removed = 0;
	while (i < hdr_len) {
		/* One field: a line and its continuation lines. */
		size_t end = i;
		int drop = 0;
		do {
			const char *nlp = memchr(hdr + end, '\n', hdr_len - end);
			end = nlp ? (size_t)(nlp - hdr) + 1 : hdr_len;
		} while (end < hdr_len && (hdr[end] == ' ' || hdr[end] == '\t'));
		if (end - i > nl && !strncasecmp(hdr + i, name, nl)) {
			size_t k = i + nl;
			while (k < end && (hdr[k] == ' ' || hdr[k] == '\t'))
				k++;
			if (k < end && hdr[k] == ':') {
				char id[256];
				if (authres_serv_id(hdr + k + 1, end - k - 1, id, sizeof id) == 0 &&
				    !strcasecmp(id, authserv_id))
					drop = 1;
			}
		}
		if (drop) {
			(*removed)++;
		} else {
			memcpy(out + o, hdr + i, end - i);
			o += end - i;
		}
		i = end;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

struct authres {
	char *text;
	size_t len, cap;
};

static void put(struct authres *a, const char *s, size_t n)
{
	if (a->len + n + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		while (cap < a->len + n + 1)
			cap *= 2;
		a->text = xrealloc(a->text, cap);
		a->cap = cap;
	}
	memcpy(a->text + a->len, s, n);
	a->len += n;
	a->text[a->len] = '\0';
}

static void puts_(struct authres *a, const char *s)
{
	put(a, s, strlen(s));
}

/* Writes v as is when it is a token/dot-atom with '@', else quoted. */
static void put_value(struct authres *a, const char *v)
{
	int plain = *v != '\0';
	for (const char *p = v; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-/=?^_`{|}~.@:", *p)))
			plain = 0;
	if (plain) {
		puts_(a, v);
		return;
	}
	put(a, "\"", 1);
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			put(a, "\\", 1);
		if (c < 0x20 || c == 0x7f)
			c = '?';
		put(a, (const char *)&c, 1);
	}
	put(a, "\"", 1);
}

struct authres *authres_new(const char *authserv_id)
{
	struct authres *a = xcalloc(1, sizeof *a);
	puts_(a, authserv_id);
	return a;
}

void authres_add(struct authres *a, const char *method, const char *result, const char *reason)
{
	puts_(a, "; ");
	puts_(a, method);
	put(a, "=", 1);
	puts_(a, result);
	if (reason && *reason) {
		/* A comment: parentheses and backslashes inside are escaped. */
		put(a, " (", 2);
		for (const char *p = reason; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '(' || c == ')' || c == '\\')
				put(a, "\\", 1);
			if (c < 0x20 || c == 0x7f)
				c = '?';
			put(a, (const char *)&c, 1);
		}
		put(a, ")", 1);
	}
}

void authres_none(struct authres *a)
{
	puts_(a, "; none");
}

void authres_prop(struct authres *a, const char *ptype_prop, const char *value)
{
	put(a, " ", 1);
	puts_(a, ptype_prop);
	put(a, "=", 1);
	put_value(a, value);
}

char *authres_field(const struct authres *a)
{
	return header_fold("Authentication-Results", a->text);
}

void authres_free(struct authres *a)
{
	if (!a)
		return;
	free(a->text);
	free(a);
}
