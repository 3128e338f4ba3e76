/*
 * reply: see reply.h. Pure: no I/O, no globals.
 */
#include "smtp/reply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

void smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof *r);
}

void smtp_reply_clear(struct smtp_reply *r)
{
	free(r->text);
	smtp_reply_init(r);
}

/* "d.ddd.ddd" at the start of s (followed by space or end); returns its
 * length, or 0. */
static size_t enhanced_len(const char *s, size_t n)
{
	size_t i = 0, parts = 0;
	while (parts < 3) {
		size_t digits = 0;
		while (i < n && isdigit((unsigned char)s[i]) && digits < 3) {
			i++;
			digits++;
		}
		if (digits == 0 || (parts == 0 && digits != 1))
			return 0;
		parts++;
		if (parts < 3) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

static void text_append(struct smtp_reply *r, const char *s, size_t n)
{
	if (r->len + n + 2 > r->cap) {
		r->cap = (r->len + n + 2) * 2;
		r->text = xrealloc(r->text, r->cap);
	}
	memcpy(r->text + r->len, s, n);
	r->len += n;
	r->text[r->len] = '\0';
}

enum smtp_reply_rc smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
	int code;
	int last;
	const char *t;
	size_t tl;

	if (len < 3 || len > SMTP_REPLY_LINE_MAX)
		return SMTP_REPLY_BAD;
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
		return SMTP_REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3) {
		last = 1;
	} else if (line[3] == ' ') {
		last = 1;
	} else if (line[3] == '-') {
		last = 0;
	} else {
		return SMTP_REPLY_BAD;
	}
	if (r->nlines && code != r->code)
		return SMTP_REPLY_BAD;
	if (r->nlines >= SMTP_REPLY_LINES_MAX || r->len + len > SMTP_REPLY_MAX)
		return SMTP_REPLY_BAD;
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\0')
			return SMTP_REPLY_BAD;
	t = len > 4 ? line + 4 : "";
	tl = len > 4 ? len - 4 : 0;
	if (r->nlines == 0) {
		size_t el = enhanced_len(t, tl);
		r->code = code;
		if (el && el < sizeof r->status && t[0] == line[0]) {
			memcpy(r->status, t, el);
			r->status[el] = '\0';
		}
	} else {
		text_append(r, "\n", 1);
	}
	text_append(r, t, tl);
	r->nlines++;
	return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t n)
{
	size_t o;
	if (n == 0)
		return;
	o = (size_t)snprintf(out, n, "%d", r->code);
	if (o >= n)
		return;
	if (r->len && o + 1 < n)
		out[o++] = ' ';
	for (size_t i = 0; i < r->len && o + 1 < n; i++) {
		unsigned char c = (unsigned char)r->text[i];
		if (c == '\n') {
			/* the enhanced code repeated on each line is noise */
			size_t el = enhanced_len(r->text + i + 1, r->len - i - 1);
			if (o + 3 >= n)
				break;
			memcpy(out + o, " / ", 3);
			o += 3;
			if (el && r->status[0])
				i += el + (i + 1 + el < r->len);
			continue;
		}
		out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[o] = '\0';
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ext *out)
{
	const char *p, *end;
	memset(out, 0, sizeof *out);
	if (!r->text)
		return;
	p = strchr(r->text, '\n'); /* the first line is the greeting name */
	while (p) {
		char kw[32];
		size_t k = 0;
		p++;
		end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		while (p + k < end && p[k] != ' ' && p[k] != '=' && k < sizeof kw - 1) {
			kw[k] = p[k];
			k++;
		}
		kw[k] = '\0';
		if (!strcasecmp(kw, "PIPELINING"))
			out->pipelining = 1;
		else if (!strcasecmp(kw, "8BITMIME"))
			out->eightbitmime = 1;
		else if (!strcasecmp(kw, "SMTPUTF8"))
			out->smtputf8 = 1;
		else if (!strcasecmp(kw, "STARTTLS"))
			out->starttls = 1;
		else if (!strcasecmp(kw, "ENHANCEDSTATUSCODES"))
			out->enhanced = 1;
		else if (!strcasecmp(kw, "CHUNKING"))
			out->chunking = 1;
		else if (!strcasecmp(kw, "DSN"))
			out->dsn = 1;
		else if (!strcasecmp(kw, "SIZE")) {
			uint64_t v = 0;
			const char *q = p + k;
			out->has_size = 1;
			while (q < end && *q == ' ')
				q++;
			while (q < end && isdigit((unsigned char)*q) && v < UINT64_MAX / 10 - 10)
				v = v * 10 + (uint64_t)(*q++ - '0');
			out->size = v;
		} else if (!strcasecmp(kw, "AUTH")) {
			const char *q = p + k;
			while (q < end) {
				size_t w;
				while (q < end && (*q == ' ' || *q == '='))
					q++;
				for (w = 0; q + w < end && q[w] != ' '; w++)
					;
				if (w == 5 && !strncasecmp(q, "PLAIN", 5))
					out->auth |= SMTP_AUTH_PLAIN;
				else if (w == 5 && !strncasecmp(q, "LOGIN", 5))
					out->auth |= SMTP_AUTH_LOGIN;
				q += w;
			}
		}
		p = *end ? end : NULL;
	}
}

void smtp_dot_init(struct smtp_dot *d)
{
	d->bol = 1;
	d->cr = 0;
}

size_t smtp_dot_encode(struct smtp_dot *d, const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (d->cr) {
			d->cr = 0;
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->bol = 1;
				continue;
			}
			/* a bare CR passes as it is */
			out[o++] = '\r';
			d->bol = 0;
		}
		if (c == '\r') {
			d->cr = 1;
			continue;
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			d->bol = 1;
			continue;
		}
		if (c == '.' && d->bol)
			out[o++] = '.';
		out[o++] = c;
		d->bol = 0;
	}
	return o;
}

size_t smtp_dot_finish(struct smtp_dot *d, char *out)
{
	size_t o = 0;
	if (d->cr || !d->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	d->cr = 0;
	d->bol = 1;
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}
