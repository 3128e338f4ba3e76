/*
 * json: see json.h.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	return utf8_char(s, n, &cp);
}

void json_write_bytes(FILE *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', out);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t l;
		if (c == '"' || c == '\\') {
			fprintf(out, "\\%c", c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			i++;
		} else if ((l = utf8_len(p + i, n - i)) > 0) {
			fwrite(p + i, 1, l, out);
			i += l;
		} else {
			fputs("\\ufffd", out);
			i++;
		}
	}
	fputc('"', out);
}

void json_write_string(FILE *out, const char *s)
{
	if (!s)
		fputs("null", out);
	else
		json_write_bytes(out, s, strlen(s));
}

/* ---- reading ------------------------------------------------------------ */

struct sbuf {
	char *data;
	size_t len, cap;
};

static void sbuf_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

struct reader {
	const char *s;
	size_t n, pos;
	size_t values;
	char *err;
	size_t errsize;
	int failed;
};

static void fail(struct reader *r, const char *what)
{
	if (!r->failed)
		snprintf(r->err, r->errsize, "%s at byte %zu", what, r->pos);
	r->failed = 1;
}

static void skip_ws(struct reader *r)
{
	while (r->pos < r->n && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' || r->s[r->pos] == '\n' ||
				 r->s[r->pos] == '\r'))
		r->pos++;
}

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

/* Four hex digits at r->pos; -1 if not. */
static long hex4(struct reader *r)
{
	long v = 0;
	if (r->n - r->pos < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval((unsigned char)r->s[r->pos + (size_t)i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	r->pos += 4;
	return v;
}

static void put_utf8(struct sbuf *b, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	}
	sbuf_add(b, u, n);
}

/* A string at r->pos (the opening quote); returns it, or NULL. */
static char *read_string(struct reader *r, size_t *len)
{
	struct sbuf b = { 0 };
	r->pos++;
	for (;;) {
		size_t start = r->pos;
		unsigned char c;
		while (r->pos < r->n && r->s[r->pos] != '"' && r->s[r->pos] != '\\' &&
		       (unsigned char)r->s[r->pos] >= 0x20)
			r->pos++;
		sbuf_add(&b, r->s + start, r->pos - start);
		if (r->pos >= r->n) {
			fail(r, "unterminated string");
			break;
		}
		c = (unsigned char)r->s[r->pos];
		if (c == '"') {
			r->pos++;
			*len = b.len;
			return b.data ? b.data : xstrdup("");
		}
		if (c < 0x20) {
			fail(r, "control character in string");
			break;
		}
		/* A backslash. */
		if (++r->pos >= r->n) {
			fail(r, "unterminated string");
			break;
		}
		c = (unsigned char)r->s[r->pos++];
		switch (c) {
		case '"': sbuf_add(&b, "\"", 1); break;
		case '\\': sbuf_add(&b, "\\", 1); break;
		case '/': sbuf_add(&b, "/", 1); break;
		case 'b': sbuf_add(&b, "\b", 1); break;
		case 'f': sbuf_add(&b, "\f", 1); break;
		case 'n': sbuf_add(&b, "\n", 1); break;
		case 'r': sbuf_add(&b, "\r", 1); break;
		case 't': sbuf_add(&b, "\t", 1); break;
		case 'u': {
			long cp = hex4(r);
			if (cp < 0) {
				fail(r, "bad \\u escape");
				goto out;
			}
			if (cp >= 0xd800 && cp <= 0xdbff && r->n - r->pos >= 6 && r->s[r->pos] == '\\' &&
			    r->s[r->pos + 1] == 'u') {
				size_t save = r->pos;
				long lo;
				r->pos += 2;
				lo = hex4(r);
				if (lo >= 0xdc00 && lo <= 0xdfff)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					r->pos = save; /* a lone high surrogate: U+FFFD, then the next escape */
			}
			put_utf8(&b, (unsigned long)cp);
			break;
		}
		default:
			r->pos--;
			fail(r, "bad escape");
			goto out;
		}
	}
out:
	free(b.data);
	return NULL;
}

static int read_number(struct reader *r, double *out)
{
	size_t start = r->pos;
	char buf[64];
	const char *s = r->s;
	if (r->pos < r->n && s[r->pos] == '-')
		r->pos++;
	if (r->pos < r->n && s[r->pos] == '0') {
		r->pos++;
	} else if (r->pos < r->n && s[r->pos] >= '1' && s[r->pos] <= '9') {
		while (r->pos < r->n && s[r->pos] >= '0' && s[r->pos] <= '9')
			r->pos++;
	} else {
		fail(r, "bad number");
		return -1;
	}
	if (r->pos < r->n && s[r->pos] == '.') {
		size_t d = ++r->pos;
		while (r->pos < r->n && s[r->pos] >= '0' && s[r->pos] <= '9')
			r->pos++;
		if (r->pos == d) {
			fail(r, "bad number");
			return -1;
		}
	}
	if (r->pos < r->n && (s[r->pos] == 'e' || s[r->pos] == 'E')) {
		size_t d;
		r->pos++;
		if (r->pos < r->n && (s[r->pos] == '+' || s[r->pos] == '-'))
			r->pos++;
		d = r->pos;
		while (r->pos < r->n && s[r->pos] >= '0' && s[r->pos] <= '9')
			r->pos++;
		if (r->pos == d) {
			fail(r, "bad number");
			return -1;
		}
	}
	if (r->pos - start >= sizeof buf) {
		char *copy = xstrndup(s + start, r->pos - start);
		*out = strtod(copy, NULL);
		free(copy);
		return 0;
	}
	memcpy(buf, s + start, r->pos - start);
	buf[r->pos - start] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

static struct json *read_value(struct reader *r, int depth);

static struct json *new_value(struct reader *r, enum json_type t)
{
	struct json *v;
	if (++r->values > JSON_MAX_VALUES) {
		fail(r, "too many values");
		return NULL;
	}
	v = xcalloc(1, sizeof *v);
	v->type = t;
	return v;
}

static int literal(struct reader *r, const char *word)
{
	size_t l = strlen(word);
	if (r->n - r->pos >= l && !memcmp(r->s + r->pos, word, l)) {
		r->pos += l;
		return 1;
	}
	return 0;
}

static struct json *read_container(struct reader *r, int depth, int object)
{
	struct json *v = new_value(r, object ? JSON_OBJECT : JSON_ARRAY);
	char close = object ? '}' : ']';
	if (!v)
		return NULL;
	r->pos++;
	skip_ws(r);
	if (r->pos < r->n && r->s[r->pos] == close) {
		r->pos++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct json *item;
		size_t klen;
		skip_ws(r);
		if (object) {
			if (r->pos >= r->n || r->s[r->pos] != '"') {
				fail(r, "expected a member name");
				break;
			}
			key = read_string(r, &klen);
			if (!key)
				break;
			skip_ws(r);
			if (r->pos >= r->n || r->s[r->pos] != ':') {
				free(key);
				fail(r, "expected ':'");
				break;
			}
			r->pos++;
		}
		item = read_value(r, depth + 1);
		if (!item) {
			free(key);
			break;
		}
		v->items = xrealloc(v->items, (v->n + 1) * sizeof *v->items);
		if (object)
			v->keys = xrealloc(v->keys, (v->n + 1) * sizeof *v->keys), v->keys[v->n] = key;
		v->items[v->n++] = item;
		skip_ws(r);
		if (r->pos < r->n && r->s[r->pos] == ',') {
			r->pos++;
			continue;
		}
		if (r->pos < r->n && r->s[r->pos] == close) {
			r->pos++;
			return v;
		}
		fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
		break;
	}
	json_free(v);
	return NULL;
}

static struct json *read_value(struct reader *r, int depth)
{
	struct json *v;
	skip_ws(r);
	if (depth > JSON_MAX_DEPTH) {
		fail(r, "nested too deeply");
		return NULL;
	}
	if (r->pos >= r->n) {
		fail(r, "unexpected end");
		return NULL;
	}
	switch (r->s[r->pos]) {
	case '{':
		return read_container(r, depth, 1);
	case '[':
		return read_container(r, depth, 0);
	case '"': {
		size_t len;
		char *s;
		if (!(v = new_value(r, JSON_STRING)))
			return NULL;
		s = read_string(r, &len);
		if (!s) {
			free(v);
			return NULL;
		}
		v->string = s;
		v->len = len;
		return v;
	}
	case 't':
	case 'f':
	case 'n':
		if (literal(r, "true") || literal(r, "false")) {
			if (!(v = new_value(r, JSON_BOOL)))
				return NULL;
			v->boolean = r->s[r->pos - 1] == 'e' && r->s[r->pos - 2] == 'u';
			return v;
		}
		if (literal(r, "null"))
			return new_value(r, JSON_NULL);
		fail(r, "unexpected word");
		return NULL;
	default: {
		double d;
		if (read_number(r, &d) < 0)
			return NULL;
		if (!(v = new_value(r, JSON_NUMBER)))
			return NULL;
		v->number = d;
		return v;
	}
	}
}

struct json *json_parse(const char *s, size_t n, char *err, size_t errsize)
{
	struct reader r = { .s = s, .n = n, .err = err, .errsize = errsize };
	struct json *v;
	if (errsize)
		err[0] = '\0';
	v = read_value(&r, 0);
	if (v) {
		skip_ws(&r);
		if (r.pos != r.n) {
			fail(&r, "text after the value");
			json_free(v);
			v = NULL;
		}
	}
	return v;
}

void json_free(struct json *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->string);
	free(v);
}

const struct json *json_get(const struct json *obj, const char *key)
{
	const struct json *found = NULL;
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->keys[i], key))
			found = obj->items[i];
	return found;
}

const struct json *json_at(const struct json *arr, size_t i)
{
	if (!arr || arr->type != JSON_ARRAY || i >= arr->n)
		return NULL;
	return arr->items[i];
}

size_t json_len(const struct json *arr)
{
	return arr && (arr->type == JSON_ARRAY || arr->type == JSON_OBJECT) ? arr->n : 0;
}

const char *json_str(const struct json *v)
{
	return v && v->type == JSON_STRING ? v->string : NULL;
}

double json_num(const struct json *v, double def)
{
	return v && v->type == JSON_NUMBER ? v->number : def;
}
