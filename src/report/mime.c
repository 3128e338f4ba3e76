/*
 * mime: see mime.h. A part is its header block (up to the first empty
 * line) and its body; header fields are unfolded into bounded buffers and
 * only Content-Type, Content-Transfer-Encoding and Content-Disposition are
 * read. Multipart bodies are split at delimiter lines ("--boundary" at the
 * start of a line); the closing delimiter ends the part list, and a body
 * that ends without one is taken as ending there (truncated mail still
 * yields what it has).
 */
#include "report/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define FIELD_MAX 2048

struct walk {
	size_t max_out;
	size_t nparts;
	struct mime_found *out;
	char *why;
	size_t whysize;
};

struct part_head {
	char type[96];
	char boundary[80];
	char filename[256];
	char cte[32];
};

static const char *const report_types[] = {
	"application/gzip", "application/x-gzip", "application/zip", "application/x-zip-compressed",
	"application/x-zip", "text/xml", "application/xml", "application/tlsrpt+gzip", "application/tlsrpt+json",
	"application/json",
};

/* Finds parameter name in a header value (after the first ';'); copies its
 * value (token or quoted-string) into out. Returns 1 if found. */
static int param(const char *v, const char *name, char *out, size_t outsize)
{
	size_t nl = strlen(name);
	const char *p = strchr(v, ';');
	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncasecmp(p, name, nl)) {
			const char *q = p + nl;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '=') {
				size_t n = 0;
				q++;
				while (*q == ' ' || *q == '\t')
					q++;
				if (*q == '"') {
					for (q++; *q && *q != '"'; q++) {
						if (*q == '\\' && q[1])
							q++;
						if (n + 1 < outsize)
							out[n++] = *q;
					}
				} else {
					for (; *q && *q != ';' && *q != ' ' && *q != '\t'; q++)
						if (n + 1 < outsize)
							out[n++] = *q;
				}
				out[n] = '\0';
				return 1;
			}
		}
		/* skip to the next ';' outside quotes */
		{
			int inq = 0;
			for (; *p; p++) {
				if (*p == '"')
					inq = !inq;
				else if (*p == '\\' && inq && p[1])
					p++;
				else if (*p == ';' && !inq)
					break;
			}
			p = *p ? p : NULL;
		}
	}
	return 0;
}

/* The type/subtype of a Content-Type value, lower-cased. */
static void media_type(const char *v, char *out, size_t outsize)
{
	size_t n = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v && *v != ';' && *v != ' ' && *v != '\t' && *v != '('; v++)
		if (n + 1 < outsize)
			out[n++] = *v;
	out[n] = '\0';
	str_lower(out);
}

/* Reads the header block of a part. *body is set to where the body starts
 * (len when there is none). Returns 0 or -1 (bound). */
static int read_head(struct walk *w, const char *buf, size_t len, struct part_head *h, size_t *body)
{
	size_t pos = 0;
	char field[FIELD_MAX + 1], ctype[FIELD_MAX + 1] = "", cdisp[FIELD_MAX + 1] = "";
	size_t flen = 0;
	int have = 0;

	memset(h, 0, sizeof *h);
	*body = len;
	for (;;) {
		const char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
		size_t end = nl ? (size_t)(nl - buf) : len, llen = end - pos;
		int blank = llen == 0 || (llen == 1 && buf[pos] == '\r');
		int cont = !blank && (buf[pos] == ' ' || buf[pos] == '\t');

		if (pos > MIME_MAX_HEADER) {
			snprintf(w->why, w->whysize, "a MIME header block is longer than %d bytes; refused", MIME_MAX_HEADER);
			return -1;
		}
		if ((!cont || pos >= len) && have) {
			/* finish the previous field */
			field[flen] = '\0';
			if (!strncasecmp(field, "content-type:", 13))
				str_copy(ctype, field + 13, sizeof ctype);
			else if (!strncasecmp(field, "content-transfer-encoding:", 26))
				media_type(field + 26, h->cte, sizeof h->cte);
			else if (!strncasecmp(field, "content-disposition:", 20))
				str_copy(cdisp, field + 20, sizeof cdisp);
			have = 0;
			flen = 0;
		}
		if (pos >= len)
			break;
		if (blank) {
			*body = nl ? end + 1 : len;
			break;
		}
		if (llen && buf[end - 1] == '\r')
			llen--;
		if (!cont || have) {
			size_t take = llen > FIELD_MAX - flen ? FIELD_MAX - flen : llen;
			memcpy(field + flen, buf + pos, take);
			flen += take;
			have = 1;
		}
		if (!nl)
			break;
		pos = end + 1;
	}
	if (*ctype) {
		media_type(ctype, h->type, sizeof h->type);
		param(ctype, "boundary", h->boundary, sizeof h->boundary);
		param(ctype, "name", h->filename, sizeof h->filename);
	}
	if (*cdisp)
		param(cdisp, "filename", h->filename, sizeof h->filename);
	return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && !strcasecmp(s + ls - lx, suffix);
}

static int is_report_part(const struct part_head *h)
{
	for (size_t i = 0; i < ARRAY_LEN(report_types); i++)
		if (!strcmp(h->type, report_types[i]))
			return 1;
	if (!*h->type || !strcmp(h->type, "application/octet-stream") || !strcmp(h->type, "application/x-gzip-compressed"))
		return has_suffix(h->filename, ".xml") || has_suffix(h->filename, ".gz") ||
		       has_suffix(h->filename, ".zip") || has_suffix(h->filename, ".json");
	return 0;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int too_big(struct walk *w)
{
	snprintf(w->why, w->whysize, "the report attachment is larger than %zu bytes ([reports] max_size); refused",
		 w->max_out);
	return -1;
}

/* Decodes the body per its Content-Transfer-Encoding into w->out. */
static int decode(struct walk *w, const struct part_head *h, const char *b, size_t len)
{
	char *out;
	size_t n = 0;

	if (!strcmp(h->cte, "base64")) {
		unsigned acc = 0;
		int bits = 0, pad = 0;
		out = xmalloc(len / 4 * 3 + 4);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)b[i];
			int v;
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (c == '=') {
				pad = 1;
				continue;
			}
			v = b64_value(c);
			if (v < 0 || pad) {
				free(out);
				snprintf(w->why, w->whysize, "the report attachment is not valid base64 (byte 0x%02x at offset %zu)",
					 c, i);
				return -1;
			}
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				out[n++] = (char)((acc >> bits) & 0xff);
			}
		}
	} else if (!strcmp(h->cte, "quoted-printable")) {
		out = xmalloc(len + 1);
		for (size_t i = 0; i < len; i++) {
			if (b[i] == '=') {
				int hi, lo;
				if (i + 1 < len && b[i + 1] == '\n') {
					i++;
					continue;
				}
				if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n') {
					i += 2;
					continue;
				}
				hi = i + 1 < len ? hex_value((unsigned char)b[i + 1]) : -1;
				lo = i + 2 < len ? hex_value((unsigned char)b[i + 2]) : -1;
				if (hi >= 0 && lo >= 0) {
					out[n++] = (char)(hi * 16 + lo);
					i += 2;
					continue;
				}
			}
			out[n++] = b[i];
		}
	} else {
		out = xmalloc(len + 1);
		memcpy(out, b, len);
		n = len;
	}
	if (n > w->max_out) {
		free(out);
		return too_big(w);
	}
	out[n] = '\0';
	w->out->data = out;
	w->out->len = n;
	str_copy(w->out->content_type, h->type, sizeof w->out->content_type);
	str_copy(w->out->filename, h->filename, sizeof w->out->filename);
	return 1;
}

static int walk_part(struct walk *w, const char *buf, size_t len, int depth);

/* Is buf[pos..] a delimiter line for boundary? Sets *close for "--b--". */
static int delimiter_at(const char *buf, size_t len, size_t pos, const char *bd, size_t bl, int *close)
{
	size_t e;
	if (pos + 2 + bl > len || buf[pos] != '-' || buf[pos + 1] != '-' || memcmp(buf + pos + 2, bd, bl))
		return 0;
	e = pos + 2 + bl;
	*close = e + 1 < len && buf[e] == '-' && buf[e + 1] == '-';
	if (*close)
		e += 2;
	/* only white space may follow on the line (RFC 2046 section 5.1.1) */
	while (e < len && (buf[e] == ' ' || buf[e] == '\t' || buf[e] == '\r'))
		e++;
	return e >= len || buf[e] == '\n';
}

static int walk_multipart(struct walk *w, const struct part_head *h, const char *b, size_t len, int depth)
{
	size_t bl = strlen(h->boundary), pos = 0, start = 0;
	int in_part = 0, close = 0;

	if (!bl)
		return 0;
	if (depth >= MIME_MAX_DEPTH) {
		snprintf(w->why, w->whysize, "multipart bodies are nested deeper than %d levels; refused", MIME_MAX_DEPTH);
		return -1;
	}
	while (pos <= len) {
		const char *nl;
		if (delimiter_at(b, len, pos, h->boundary, bl, &close)) {
			if (in_part) {
				/* the CRLF before the delimiter belongs to it */
				size_t end = pos;
				int rc;
				if (end > start && b[end - 1] == '\n')
					end--;
				if (end > start && b[end - 1] == '\r')
					end--;
				if (++w->nparts > MIME_MAX_PARTS) {
					snprintf(w->why, w->whysize, "the message has more than %d MIME parts; refused",
						 MIME_MAX_PARTS);
					return -1;
				}
				rc = walk_part(w, b + start, end - start, depth + 1);
				if (rc)
					return rc;
			}
			if (close)
				return 0;
			in_part = 1;
			nl = memchr(b + pos, '\n', len - pos);
			if (!nl)
				return 0;
			start = (size_t)(nl - b) + 1;
			pos = start;
			continue;
		}
		nl = pos < len ? memchr(b + pos, '\n', len - pos) : NULL;
		if (!nl)
			break;
		pos = (size_t)(nl - b) + 1;
	}
	if (in_part && start < len) {
		/* no closing delimiter: the last part runs to the end */
		if (++w->nparts > MIME_MAX_PARTS) {
			snprintf(w->why, w->whysize, "the message has more than %d MIME parts; refused", MIME_MAX_PARTS);
			return -1;
		}
		return walk_part(w, b + start, len - start, depth + 1);
	}
	return 0;
}

static int walk_part(struct walk *w, const char *buf, size_t len, int depth)
{
	struct part_head h;
	size_t body;

	if (read_head(w, buf, len, &h, &body) < 0)
		return -1;
	if (!strncmp(h.type, "multipart/", 10))
		return walk_multipart(w, &h, buf + body, len - body, depth);
	if (!strcmp(h.type, "message/rfc822")) {
		if (depth >= MIME_MAX_DEPTH) {
			snprintf(w->why, w->whysize, "messages are nested deeper than %d levels; refused", MIME_MAX_DEPTH);
			return -1;
		}
		return walk_part(w, buf + body, len - body, depth + 1);
	}
	if (is_report_part(&h))
		return decode(w, &h, buf + body, len - body);
	return 0;
}

int mime_find_report(const char *msg, size_t len, size_t max_out, struct mime_found *out, char *why,
		     size_t whysize)
{
	struct walk w = { .max_out = max_out, .out = out, .why = why, .whysize = whysize };
	int rc;

	memset(out, 0, sizeof *out);
	rc = walk_part(&w, msg, len, 0);
	if (rc == 0)
		snprintf(why, whysize,
			 "the message has no report attachment (application/gzip, application/zip, text/xml, "
			 "application/tlsrpt+gzip or application/tlsrpt+json)");
	return rc;
}
