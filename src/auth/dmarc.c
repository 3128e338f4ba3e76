/*
 * dmarc: see dmarc.h. Where each part of RFC 7489 lives:
 *
 *   3.1   identifier alignment          aligned(), eval_domain()
 *   3.2   Organizational Domain         dmarc_org_domain()
 *   6.3/6.4 record format               dmarc_record_parse()
 *   6.6.1 extract author domain         dmarc_from_parse(), dmarc_eval_new()
 *   6.6.2 determine handling policy     eval_domain()
 *   6.6.3 policy discovery              discover()
 *   6.6.4 message sampling (pct)        eval_domain()
 *   RFC 9091 np= and non-existence      exists()
 *
 * Every function that needs DNS asks ask(); when the answer is not in the
 * table yet, ask() records the question and the run notes it is pending.
 * A domain whose answers are missing is left unfinished; the others go on,
 * so that every question one run can know about is asked at once.
 */
#include "dmarc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <libpsl.h>

#include "dns/batch.h"
#include "lib/util.h"

const char *dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = { "none", "pass", "fail", "temperror", "permerror" };
	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = { "none", "quarantine", "reject" };
	return (unsigned)p < ARRAY_LEN(names) ? names[p] : "?";
}

static void set_why(char *why, size_t whysize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whysize, const char *fmt, ...)
{
	va_list ap;
	if (!why || !whysize)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whysize, fmt, ap);
	va_end(ap);
	/* Reasons quote hostile text: keep them printable ASCII. */
	for (char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

static int is_wsp(int c)
{
	/* WSP, and FWS's line breaks (DKIM tag-lists and folded header fields). */
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- the record (sections 6.3 and 6.4) ---------------------------------- */

/*
 * Section 6.6.3 step 2: "Records that do not start with a "v=" tag that
 * identifies the current version of DMARC are discarded." The version is
 * DMARC1 exactly (%x44 %x4d %x41 %x52 %x43 %x31 in section 6.4); what may
 * follow it is a separator, white space (then the full parse finds the
 * error) or the end.
 */
static int starts_dmarc1(const char *t, size_t len)
{
	size_t i = 0;
	while (i < len && is_wsp(t[i]))
		i++;
	if (i >= len || (t[i] != 'v' && t[i] != 'V'))
		return 0;
	i++;
	while (i < len && is_wsp(t[i]))
		i++;
	if (i >= len || t[i] != '=')
		return 0;
	i++;
	while (i < len && is_wsp(t[i]))
		i++;
	if (len - i < 6 || memcmp(t + i, "DMARC1", 6))
		return 0;
	i += 6;
	return i == len || t[i] == ';' || is_wsp(t[i]);
}

/* Case-insensitive comparison of s (n bytes) with the keyword kw. */
static int word_is(const char *s, size_t n, const char *kw)
{
	return strlen(kw) == n && !strncasecmp(s, kw, n);
}

static int parse_policy(const char *v, size_t n, enum dmarc_policy *out)
{
	if (word_is(v, n, "none"))
		*out = DMARC_POLICY_NONE;
	else if (word_is(v, n, "quarantine"))
		*out = DMARC_POLICY_QUARANTINE;
	else if (word_is(v, n, "reject"))
		*out = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* 1*DIGIT at most max. */
static int parse_number(const char *v, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x > max)
			return -1;
	}
	*out = x;
	return 0;
}

/* Splits v (n bytes) at sep into items with *WSP trimmed; calls fn on each.
 * An empty item is an error. */
static int each_item(const char *v, size_t n, char sep, int (*fn)(void *ctx, const char *s, size_t len), void *ctx)
{
	size_t pos = 0;
	for (;;) {
		size_t end = pos, a, b;
		while (end < n && v[end] != sep)
			end++;
		a = pos;
		b = end;
		while (a < b && is_wsp(v[a]))
			a++;
		while (b > a && is_wsp(v[b - 1]))
			b--;
		if (a == b || fn(ctx, v + a, b - a) < 0)
			return -1;
		if (end >= n)
			return 0;
		pos = end + 1;
	}
}

struct fo_ctx {
	char *fo;
	size_t n;
};

/* dmarc-fo: "0" / "1" / "d" / "s", kept once each in the order given. */
static int fo_item(void *ctx, const char *s, size_t len)
{
	struct fo_ctx *f = ctx;
	char c;
	if (len != 1 || !strchr("01dsDS", s[0]))
		return -1;
	c = (char)tolower((unsigned char)s[0]);
	for (size_t i = 0; i < f->n; i += 2)
		if (f->fo[i] == c)
			return 0;
	if (f->n)
		f->fo[f->n++] = ':';
	f->fo[f->n++] = c;
	f->fo[f->n] = '\0';
	return 0;
}

struct rf_ctx {
	char *out;
	size_t n;
};

/* Keyword (RFC 5321 Ldh-str): a letter or digit, then letters, digits and
 * hyphens, not ending with a hyphen. */
static int rf_item(void *ctx, const char *s, size_t len)
{
	struct rf_ctx *r = ctx;
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return -1;
	if (r->n)
		r->out[r->n++] = ':';
	for (size_t i = 0; i < len; i++)
		r->out[r->n++] = (char)tolower((unsigned char)s[i]);
	r->out[r->n] = '\0';
	return 0;
}

static int is_uri_char(int c)
{
	/* RFC 3986 unreserved and reserved characters, less those section 6.2
	 * says must be percent-encoded in a DMARC URI (',' and '!') and ';',
	 * which separates tags. */
	return isalnum(c) || (c && strchr("-._~:/?#[]@$&'()*+=", c));
}

struct uri_ctx {
	struct dmarc_uri *uris;
	size_t *n;
};

/* dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ] */
static int uri_item(void *ctx, const char *s, size_t len)
{
	struct uri_ctx *u = ctx;
	const char *bang = memchr(s, '!', len);
	size_t ulen = bang ? (size_t)(bang - s) : len, i;
	uint64_t size = 0;

	if (bang) {
		const char *d = bang + 1, *end = s + len;
		unsigned shift = 0;
		size_t digits;
		if (end > d && strchr("kmgtKMGT", end[-1])) {
			switch (tolower((unsigned char)end[-1])) {
			case 'k':
				shift = 10;
				break;
			case 'm':
				shift = 20;
				break;
			case 'g':
				shift = 30;
				break;
			default:
				shift = 40;
				break;
			}
			end--;
		}
		digits = (size_t)(end - d);
		if (parse_number(d, digits, UINT64_MAX >> 41, &size) < 0)
			return -1;
		size <<= shift;
	}
	/* scheme ":" something, every character a URI character or %XX. */
	if (ulen < 3 || !isalpha((unsigned char)s[0]))
		return -1;
	for (i = 1; i < ulen && s[i] != ':'; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("+-.", s[i]))
			return -1;
	if (i >= ulen - 1)
		return -1; /* no ':' or nothing after it */
	for (i++; i < ulen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= ulen || !isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2]))
				return -1;
			i += 2;
		} else if (!is_uri_char(c)) {
			return -1;
		}
	}
	if (*u->n < DMARC_MAX_URIS) {
		u->uris[*u->n].uri = xstrndup(s, ulen);
		u->uris[*u->n].max_size = size;
		(*u->n)++;
	}
	return 0;
}

enum tag_bit {
	TAG_V = 1, TAG_P = 2, TAG_SP = 4, TAG_NP = 8, TAG_PCT = 16, TAG_ADKIM = 32, TAG_ASPF = 64,
	TAG_RUA = 128, TAG_RUF = 256, TAG_FO = 512, TAG_RF = 1024, TAG_RI = 2048,
};

static const struct {
	const char *name;
	enum tag_bit bit;
} known_tags[] = {
	{ "v", TAG_V },	      { "p", TAG_P },	    { "sp", TAG_SP },	  { "np", TAG_NP },
	{ "pct", TAG_PCT },   { "adkim", TAG_ADKIM }, { "aspf", TAG_ASPF }, { "rua", TAG_RUA },
	{ "ruf", TAG_RUF },   { "fo", TAG_FO },	    { "rf", TAG_RF },	  { "ri", TAG_RI },
};

/* One tag-spec (section 6.3; the tag-list syntax of RFC 6376 section 3.2).
 * 0, or -1 with why set. */
static int parse_tag(struct dmarc_record *r, const char *s, size_t n, int first, unsigned *seen, char *why,
		     size_t whysize)
{
	size_t a = 0, b = n, name_end, v;
	enum tag_bit bit = 0;
	const char *val;
	size_t vlen;
	uint64_t num;

	while (a < b && is_wsp(s[a]))
		a++;
	while (b > a && is_wsp(s[b - 1]))
		b--;
	if (a == b)
		return 0; /* an empty tag-spec (";;", or a final ";") */
	if (!isalpha((unsigned char)s[a])) {
		set_why(why, whysize, "a tag name must start with a letter");
		return -1;
	}
	name_end = a + 1;
	while (name_end < b && (isalnum((unsigned char)s[name_end]) || s[name_end] == '_'))
		name_end++;
	v = name_end;
	while (v < b && is_wsp(s[v]))
		v++;
	if (v >= b || s[v] != '=') {
		set_why(why, whysize, "tag \"%.*s\" without '='", (int)(name_end - a) > 40 ? 40 : (int)(name_end - a),
			s + a);
		return -1;
	}
	v++;
	while (v < b && is_wsp(s[v]))
		v++;
	val = s + v;
	vlen = b - v;
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)val[i];
		if (!is_wsp(c) && (c < 0x21 || c > 0x7e)) {
			set_why(why, whysize, "a byte 0x%02x that is not printable ASCII", c);
			return -1;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(known_tags); i++)
		if (word_is(s + a, name_end - a, known_tags[i].name))
			bit = known_tags[i].bit;
	if (first && bit != TAG_V) {
		set_why(why, whysize, "v= is not the first tag");
		return -1;
	}
	if (!bit)
		return 0; /* "Unknown tags MUST be ignored." (section 6.3) */
	if (*seen & bit) {
		/* RFC 6376 section 3.2: a duplicate tag invalidates the list. */
		set_why(why, whysize, "tag %.*s appears twice", (int)(name_end - a), s + a);
		return -1;
	}
	*seen |= bit;
	if (bit != TAG_V && bit != TAG_RUA && bit != TAG_RUF && bit != TAG_FO && bit != TAG_RF && vlen == 0) {
		set_why(why, whysize, "%.*s= has no value", (int)(name_end - a), s + a);
		return -1;
	}
	switch (bit) {
	case TAG_V:
		if (!first || vlen != 6 || memcmp(val, "DMARC1", 6)) {
			set_why(why, whysize, "v= must be DMARC1, first");
			return -1;
		}
		return 0;
	case TAG_P:
		r->has_p = parse_policy(val, vlen, &r->p) == 0;
		r->policy_invalid |= !r->has_p;
		return 0;
	case TAG_SP:
		r->has_sp = parse_policy(val, vlen, &r->sp) == 0;
		r->policy_invalid |= !r->has_sp;
		return 0;
	case TAG_NP:
		r->has_np = parse_policy(val, vlen, &r->np) == 0;
		r->policy_invalid |= !r->has_np;
		return 0;
	case TAG_PCT:
		if (vlen > 3 || parse_number(val, vlen, 100, &num) < 0) {
			set_why(why, whysize, "pct= must be a number from 0 to 100");
			return -1;
		}
		r->pct = (unsigned)num;
		return 0;
	case TAG_ADKIM:
	case TAG_ASPF:
		if (vlen != 1 || !strchr("rsRS", val[0])) {
			set_why(why, whysize, "%s= must be r or s", bit == TAG_ADKIM ? "adkim" : "aspf");
			return -1;
		}
		*(bit == TAG_ADKIM ? &r->adkim : &r->aspf) = (char)tolower((unsigned char)val[0]);
		return 0;
	case TAG_RI:
		if (parse_number(val, vlen, UINT32_MAX, &num) < 0) {
			set_why(why, whysize, "ri= must be a number of seconds below 2^32");
			return -1;
		}
		r->ri = (uint32_t)num;
		return 0;
	case TAG_FO: {
		struct fo_ctx f = { r->fo, 0 };
		if (each_item(val, vlen, ':', fo_item, &f) < 0) {
			set_why(why, whysize, "fo= must be a list of 0, 1, d and s separated by ':'");
			return -1;
		}
		return 0;
	}
	case TAG_RF: {
		struct rf_ctx f;
		free(r->rf);
		r->rf = xmalloc(vlen + 1);
		f.out = r->rf;
		f.n = 0;
		if (each_item(val, vlen, ':', rf_item, &f) < 0) {
			set_why(why, whysize, "rf= must be a list of format names separated by ':'");
			return -1;
		}
		return 0;
	}
	case TAG_RUA:
	case TAG_RUF: {
		struct uri_ctx u = { bit == TAG_RUA ? r->rua : r->ruf, bit == TAG_RUA ? &r->nrua : &r->nruf };
		if (each_item(val, vlen, ',', uri_item, &u) < 0) {
			set_why(why, whysize, "%s= must be a list of URIs separated by ',' (each with an optional !size)",
				bit == TAG_RUA ? "rua" : "ruf");
			return -1;
		}
		return 0;
	}
	}
	return 0;
}

void dmarc_record_clear(struct dmarc_record *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nrua; i++)
		free(r->rua[i].uri);
	for (size_t i = 0; i < r->nruf; i++)
		free(r->ruf[i].uri);
	free(r->rf);
	memset(r, 0, sizeof *r);
}

/*
 * Section 6.3: "the "v" and "p" tags MUST be present and MUST appear in
 * that order. Unknown tags MUST be ignored." We require v= first (step 2
 * of 6.6.3 depends on it) but accept p= anywhere after it: records with
 * p= later are common, and their owners' intent is plain. A value that
 * does not match its tag's grammar makes the whole record invalid (the
 * receiver's choice where 6.3 says such errors "SHOULD be discarded in
 * favor of default values": a policy half-read is not the owner's), except
 * p=, sp= and np=, whose faults section 6.6.3 step 6 handles.
 */
enum dmarc_parse dmarc_record_parse(const char *text, size_t len, struct dmarc_record *out, char *why,
				    size_t whysize)
{
	size_t pos = 0;
	unsigned seen = 0;
	int first = 1;

	memset(out, 0, sizeof *out);
	if (why && whysize)
		why[0] = '\0';
	if (!text || !starts_dmarc1(text, len)) {
		set_why(why, whysize, "not a DMARC record (it does not start with v=DMARC1)");
		return DMARC_PARSE_NOT_DMARC;
	}
	if (len > DMARC_MAX_RECORD) {
		set_why(why, whysize, "longer than %d bytes", DMARC_MAX_RECORD);
		return DMARC_PARSE_INVALID;
	}
	out->pct = 100;
	out->adkim = out->aspf = 'r';
	out->ri = 86400;
	strcpy(out->fo, "0");
	for (;;) {
		size_t end = pos, a = pos;
		while (end < len && text[end] != ';')
			end++;
		while (a < end && is_wsp(text[a]))
			a++;
		if (parse_tag(out, text + pos, end - pos, first, &seen, why, whysize) < 0) {
			dmarc_record_clear(out);
			return DMARC_PARSE_INVALID;
		}
		if (a < end)
			first = 0;
		if (end >= len)
			break;
		pos = end + 1;
	}
	if (!out->has_p)
		out->policy_invalid = 1;
	if (!out->has_sp)
		out->sp = out->p;
	if (!out->has_np)
		out->np = out->sp;
	if (!out->rf)
		out->rf = xstrdup("afrf");
	return DMARC_PARSE_OK;
}

/* ---- the From header field (RFC 5322 sections 3.4, 4.4; RFC 6854) ------- */

enum tok_type { TK_ATOM, TK_QSTR, TK_DLIT, TK_SPECIAL };

struct tok {
	enum tok_type type;
	char c;        /* TK_SPECIAL: one of < > : ; @ , . */
	const char *s; /* the text as written */
	size_t len;
	int encoded;   /* an RFC 2047 encoded-word */
};

static int is_special(int c)
{
	return c && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

static int is_atext(int c)
{
	/* RFC 5322 atext, and RFC 6532's UTF-8. */
	return c >= 0x80 || (c > 0x20 && c < 0x7f && !is_special(c));
}

/* An RFC 2047 encoded-word at s: "=?" charset "?" B|Q "?" text "?=",
 * followed by something that ends a word. Returns its length or 0. */
static size_t encoded_word(const char *s, size_t n)
{
	size_t i = 2;
	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	while (i < n && s[i] != '?' && s[i] > 0x20 && s[i] < 0x7f && !is_special(s[i]))
		i++;
	if (i == 2 || i + 3 >= n || s[i] != '?' || !strchr("bBqQ", s[i + 1]) || s[i + 2] != '?')
		return 0;
	i += 3;
	while (i + 1 < n && !(s[i] == '?' && s[i + 1] == '=')) {
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
		i++;
	}
	if (i + 1 >= n)
		return 0;
	i += 2;
	if (i < n && is_atext((unsigned char)s[i]))
		return 0; /* runs on: an ordinary atom */
	return i;
}

/* Splits value into tokens, dropping white space and comments. Returns the
 * number of tokens or -1 with why set. toks has room for n + 1. */
static long tokenize(const char *s, size_t n, struct tok *toks, char *why, size_t whysize)
{
	size_t i = 0, nt = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		struct tok *t = &toks[nt];
		size_t start;
		memset(t, 0, sizeof *t);
		if (is_wsp(c)) {
			i++;
			continue;
		}
		if (c == '(') {
			int depth = 1;
			for (i++; i < n && depth; i++) {
				if (s[i] == '\\') {
					if (++i >= n)
						break;
				} else if (s[i] == '(') {
					if (++depth > DMARC_MAX_COMMENT_DEPTH) {
						set_why(why, whysize, "comments nested deeper than %d", DMARC_MAX_COMMENT_DEPTH);
						return -1;
					}
				} else if (s[i] == ')') {
					depth--;
				}
			}
			if (depth) {
				set_why(why, whysize, "a comment without its ')'");
				return -1;
			}
			continue;
		}
		if (c == '"' || c == '[') {
			char close = c == '"' ? '"' : ']';
			start = ++i;
			while (i < n && s[i] != close) {
				if (s[i] == '\\')
					i++;
				else if (c == '[' && s[i] == '[')
					break;
				i++;
			}
			if (i >= n || s[i] != close) {
				set_why(why, whysize, c == '"' ? "a quoted string without its closing '\"'"
								: "a domain literal without its ']'");
				return -1;
			}
			t->type = c == '"' ? TK_QSTR : TK_DLIT;
			t->s = s + start;
			t->len = i - start;
			i++;
			nt++;
			continue;
		}
		if (c && strchr("<>:;@,.", c)) {
			t->type = TK_SPECIAL;
			t->c = (char)c;
			t->s = s + i;
			t->len = 1;
			i++;
			nt++;
			continue;
		}
		if (is_special(c)) {
			set_why(why, whysize, "an unexpected '%c'", c);
			return -1;
		}
		start = i;
		if ((t->len = encoded_word(s + i, n - i)) > 0) {
			t->encoded = 1;
			i += t->len;
		} else {
			while (i < n && is_atext((unsigned char)s[i]))
				i++;
			t->len = i - start;
		}
		if (t->len == 0) {
			set_why(why, whysize, "a control character (0x%02x)", c);
			return -1;
		}
		t->type = TK_ATOM;
		t->s = s + start;
		nt++;
	}
	return (long)nt;
}

struct fparse {
	const struct tok *t;
	size_t n, i;
	char ***domains;
	size_t *ndomains;
	int count;
	char *why;
	size_t whysize;
	int full; /* collect "local@domain" instead of the domain */
};

static int at_special(const struct fparse *p, char c)
{
	return p->i < p->n && p->t[p->i].type == TK_SPECIAL && p->t[p->i].c == c;
}

static void describe_tok(const struct fparse *p, char *out, size_t n)
{
	if (p->i >= p->n)
		snprintf(out, n, "the end");
	else
		snprintf(out, n, "\"%.*s\"", p->t[p->i].len > 40 ? 40 : (int)p->t[p->i].len, p->t[p->i].s);
}

static int fail_at(struct fparse *p, const char *what)
{
	char near[64];
	describe_tok(p, near, sizeof near);
	set_why(p->why, p->whysize, "%s, at %s", what, near);
	return -1;
}

static int is_word(const struct tok *t)
{
	return t->type == TK_ATOM || t->type == TK_QSTR;
}

/* addr-spec = local-part "@" domain, obsolete forms included (CFWS around
 * the dots is already gone). Appends the domain. */
static int parse_addr_spec(struct fparse *p)
{
	char *dom;
	size_t len = 0, start, lstart = p->i;

	for (;;) {
		if (p->i >= p->n || !is_word(&p->t[p->i]))
			return fail_at(p, "expected an address");
		if (p->t[p->i].encoded)
			return fail_at(p, "an encoded-word inside an address (RFC 2047 section 5 forbids it)");
		p->i++;
		if (!at_special(p, '.'))
			break;
		p->i++;
	}
	if (!at_special(p, '@'))
		return fail_at(p, "expected '@' in the address");
	p->i++;
	if (p->i < p->n && p->t[p->i].type == TK_DLIT) {
		dom = xasprintf("[%.*s]", (int)p->t[p->i].len, p->t[p->i].s);
		p->i++;
	} else {
		start = p->i;
		for (;;) {
			if (p->i >= p->n || p->t[p->i].type != TK_ATOM)
				return fail_at(p, "expected a domain after '@'");
			if (p->t[p->i].encoded)
				return fail_at(p, "an encoded-word inside an address (RFC 2047 section 5 forbids it)");
			len += p->t[p->i].len + 1;
			p->i++;
			if (!at_special(p, '.'))
				break;
			p->i++;
		}
		dom = xmalloc(len);
		len = 0;
		for (size_t k = start; k < p->i; k++) {
			if (p->t[k].type == TK_SPECIAL)
				continue;
			if (len)
				dom[len++] = '.';
			memcpy(dom + len, p->t[k].s, p->t[k].len);
			len += p->t[k].len;
		}
		dom[len] = '\0';
	}
	if (p->full) {
		/* The local part as written: its words joined by dots. */
		size_t ll = 0, at = lstart;
		char *addr;
		while (!(p->t[at].type == TK_SPECIAL && p->t[at].c == '@'))
			ll += p->t[at++].len;
		addr = xmalloc(ll + strlen(dom) + 2);
		ll = 0;
		for (size_t k = lstart; k < at; k++) {
			memcpy(addr + ll, p->t[k].s, p->t[k].len);
			ll += p->t[k].len;
		}
		addr[ll++] = '@';
		strcpy(addr + ll, dom);
		free(dom);
		dom = addr;
	}
	if (p->count >= DMARC_MAX_ADDRESSES) {
		free(dom);
		set_why(p->why, p->whysize, "more than %d addresses", DMARC_MAX_ADDRESSES);
		return -1;
	}
	*p->domains = xrealloc(*p->domains, (*p->ndomains + 1) * sizeof **p->domains);
	(*p->domains)[(*p->ndomains)++] = dom;
	p->count++;
	return 0;
}

/*
 * mailbox = name-addr / addr-spec. The display name is read leniently:
 * anything up to the '<' that is not a list or group delimiter, so that
 * the common "alice@example.com <alice@example.com>" parses (with the
 * address in angle brackets, which is what clients use). What follows the
 * '>' must end the mailbox: "<a@x> b@y" is refused, not guessed at.
 */
static int parse_mailbox(struct fparse *p)
{
	size_t k = p->i;
	while (k < p->n && !(p->t[k].type == TK_SPECIAL && strchr(",;<>:", p->t[k].c)))
		k++;
	if (k >= p->n || p->t[k].c != '<')
		return parse_addr_spec(p);
	p->i = k + 1;
	if (at_special(p, '@')) {
		/* obs-route: "@a.example,@b.example:" before the address. */
		while (at_special(p, '@') || at_special(p, ',')) {
			if (at_special(p, ',')) {
				p->i++;
				continue;
			}
			p->i++;
			if (p->i >= p->n || (p->t[p->i].type != TK_ATOM && p->t[p->i].type != TK_DLIT))
				return fail_at(p, "expected a domain in the route");
			while (p->i < p->n && (p->t[p->i].type == TK_ATOM || p->t[p->i].type == TK_DLIT || at_special(p, '.')))
				p->i++;
		}
		if (!at_special(p, ':'))
			return fail_at(p, "expected ':' after the route");
		p->i++;
	}
	if (parse_addr_spec(p) < 0)
		return -1;
	if (!at_special(p, '>'))
		return fail_at(p, "expected '>'");
	p->i++;
	return 0;
}

/* address = mailbox / group; a group is display-name ":" [mailbox-list] ";" */
static int parse_address(struct fparse *p)
{
	size_t k = p->i;
	while (k < p->n && (is_word(&p->t[k]) || (p->t[k].type == TK_SPECIAL && p->t[k].c == '.')))
		k++;
	if (k == p->i || k >= p->n || p->t[k].type != TK_SPECIAL || p->t[k].c != ':')
		return parse_mailbox(p);
	p->i = k + 1;
	for (;;) {
		while (at_special(p, ','))
			p->i++;
		if (p->i >= p->n)
			return 0; /* the final ';' missing: tolerated */
		if (at_special(p, ';')) {
			p->i++;
			return 0;
		}
		if (parse_mailbox(p) < 0)
			return -1;
		if (p->i < p->n && !at_special(p, ',') && !at_special(p, ';'))
			return fail_at(p, "expected ',' or ';' after an address in a group");
	}
}

static int from_parse(const char *value, char ***domains, size_t *ndomains, char *why, size_t whysize, int full);

int dmarc_from_parse(const char *value, char ***domains, size_t *ndomains, char *why, size_t whysize)
{
	return from_parse(value, domains, ndomains, why, whysize, 0);
}

int dmarc_from_addresses(const char *value, char ***addresses, size_t *naddresses, char *why, size_t whysize)
{
	return from_parse(value, addresses, naddresses, why, whysize, 1);
}

static int from_parse(const char *value, char ***domains, size_t *ndomains, char *why, size_t whysize, int full)
{
	size_t n = value ? strlen(value) : 0;
	struct tok *toks;
	struct fparse p = { 0 };
	long nt;

	if (why && whysize)
		why[0] = '\0';
	if (n > DMARC_MAX_FROM) {
		set_why(why, whysize, "longer than %d bytes", DMARC_MAX_FROM);
		return -1;
	}
	toks = xmalloc((n + 1) * sizeof *toks);
	nt = tokenize(value ? value : "", n, toks, why, whysize);
	if (nt < 0) {
		free(toks);
		return -1;
	}
	p.t = toks;
	p.n = (size_t)nt;
	p.domains = domains;
	p.ndomains = ndomains;
	p.why = why;
	p.whysize = whysize;
	p.full = full;
	for (;;) {
		while (at_special(&p, ','))
			p.i++; /* obs-mbox-list: empty elements */
		if (p.i >= p.n)
			break;
		if (parse_address(&p) < 0) {
			free(toks);
			return -1;
		}
		if (p.i < p.n && !at_special(&p, ',')) {
			fail_at(&p, "expected ',' after an address");
			free(toks);
			return -1;
		}
	}
	free(toks);
	return p.count;
}

/* ---- domains and the Public Suffix List --------------------------------- */

/* Decodes strict UTF-8 (no overlong forms, no surrogates) into code
 * points. Returns the count, or -1. */
static long utf8_decode(const char *s, size_t n, uint32_t *out, size_t max)
{
	size_t i = 0, o = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp, min;
		size_t extra;
		if (c < 0x80) {
			cp = c, extra = 0, min = 0;
		} else if ((c & 0xe0) == 0xc0) {
			cp = c & 0x1f, extra = 1, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			cp = c & 0x0f, extra = 2, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			cp = c & 0x07, extra = 3, min = 0x10000;
		} else {
			return -1;
		}
		if (extra && i + extra >= n)
			return -1;
		for (size_t k = 1; k <= extra; k++) {
			unsigned char cc = (unsigned char)s[i + k];
			if ((cc & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || o >= max)
			return -1;
		out[o++] = cp;
		i += extra + 1;
	}
	return (long)o;
}

/* RFC 3492 section 6.4. */
static uint32_t puny_adapt(uint32_t delta, uint32_t numpoints, int first)
{
	uint32_t k = 0;
	delta = first ? delta / 700 : delta / 2;
	delta += delta / numpoints;
	while (delta > ((36 - 1) * 26) / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 * delta) / (delta + 38);
}

/* RFC 3492 section 6.3: the Punycode of cp[0..n) into out (NUL-terminated).
 * Returns 0, or -1 on overflow or when out is too small. */
static int puny_encode(const uint32_t *cp, size_t n, char *out, size_t outsize)
{
	uint32_t nn = 128, delta = 0, bias = 72, h, b;
	size_t o = 0;
#define PUT(ch)                          \
	do {                             \
		if (o + 1 >= outsize)    \
			return -1;       \
		out[o++] = (char)(ch);   \
	} while (0)
	for (size_t i = 0; i < n; i++)
		if (cp[i] < 0x80)
			PUT(cp[i]);
	h = b = (uint32_t)o;
	if (b > 0)
		PUT('-');
	while (h < n) {
		uint32_t m = UINT32_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= nn && cp[i] < m)
				m = cp[i];
		if (m - nn > (UINT32_MAX - delta) / (h + 1))
			return -1;
		delta += (m - nn) * (h + 1);
		nn = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < nn && ++delta == 0)
				return -1;
			if (cp[i] != nn)
				continue;
			for (uint32_t q = delta, k = 36;; k += 36) {
				uint32_t t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias, d;
				if (q < t) {
					PUT(q < 26 ? 'a' + q : '0' + q - 26);
					break;
				}
				d = t + (q - t) % (36 - t);
				PUT(d < 26 ? 'a' + d : '0' + d - 26);
				q = (q - t) / (36 - t);
			}
			bias = puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		nn++;
	}
#undef PUT
	out[o] = '\0';
	return 0;
}

/*
 * Section 6.6.1: "If the domain is a U-label, the domain name MUST be
 * converted to an A-label". We do it with what the build links: libpsl's
 * psl_str_to_utf8lower() (Unicode NFKC and lower case, close to the UTS 46
 * mapping IDNA2008 uses) and RFC 3492 Punycode. It does not apply IDNA2008's
 * table of disallowed code points: a name that no registry would accept
 * is converted anyway, and then simply has no DMARC record. (With libidn2
 * in the build this would be one idn2_to_ascii_8z() call.)
 */
static int to_alabels(const char *in, char *out, size_t outsize, char *why, size_t whysize)
{
	uint32_t cps[256];
	char *lower = NULL;
	size_t o = 0, n = strlen(in);
	const char *p;

	if (utf8_decode(in, n, cps, ARRAY_LEN(cps)) < 0) {
		set_why(why, whysize, "the domain is not valid UTF-8");
		return -1;
	}
	if (psl_str_to_utf8lower(in, "utf-8", NULL, &lower) != PSL_SUCCESS || !lower) {
		free(lower);
		set_why(why, whysize, "the domain cannot be mapped to lower case");
		return -1;
	}
	p = lower;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		int ascii = 1;
		long ncp;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] >= 0x80)
				ascii = 0;
		if (ascii) {
			if (o + len + 2 > outsize)
				goto toolong;
			memcpy(out + o, p, len);
			o += len;
		} else {
			char puny[256];
			ncp = utf8_decode(p, len, cps, ARRAY_LEN(cps));
			if (ncp <= 0 || puny_encode(cps, (size_t)ncp, puny, sizeof puny) < 0 ||
			    o + 4 + strlen(puny) + 2 > outsize)
				goto toolong;
			o += (size_t)snprintf(out + o, outsize - o, "xn--%s", puny);
		}
		if (!dot)
			break;
		out[o++] = '.';
		p = dot + 1;
	}
	out[o] = '\0';
	free(lower);
	return 0;
toolong:
	free(lower);
	set_why(why, whysize, "the internationalized domain is too long");
	return -1;
}

int dmarc_domain_normalize(const char *in, char *out, size_t outsize, char *why, size_t whysize)
{
	char conv[512];
	const char *d = in;
	size_t len, label = 0;
	int ascii = 1;

	for (const char *p = in; *p; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = 0;
	if (in[0] == '[') {
		set_why(why, whysize, "%.60s is a domain literal, not a DNS name", in);
		return -1;
	}
	if (!ascii) {
		if (to_alabels(in, conv, sizeof conv, why, whysize) < 0)
			return -1;
		d = conv;
	}
	len = strlen(d);
	/* "_dmarc." goes in front, within the 253 bytes of a name. */
	if (len == 0 || len > 253 - 7 || len >= outsize) {
		set_why(why, whysize, "domain %.60s has a bad length", d);
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63) {
				set_why(why, whysize, "domain %.60s has an empty or overlong label", d);
				return -1;
			}
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			label++;
		} else {
			set_why(why, whysize, "domain %.60s holds a character not allowed in host names", d);
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	return 0;
}

/*
 * The Public Suffix List (section 3.2). We load Debian's copy, the
 * publicsuffix package, explicitly: first its DAFSA form (compiled from
 * public_suffix_list.dat in the same package; it loads in microseconds,
 * the text form in milliseconds), then the text form, and libpsl's
 * built-in list only when neither can be read. Not psl_builtin() first,
 * because the built-in copy is frozen when libpsl is built while the
 * publicsuffix package is updated on its own (stable point releases), and
 * an Organizational Domain computed from a stale list is wrong for every
 * suffix added since, in both directions (two customers of one new
 * hosting suffix would "align"). The list is read once, at first use, and
 * never changes in a running process, so every evaluation agrees.
 */
#define PSL_DAFSA "/usr/share/publicsuffix/public_suffix_list.dafsa"
#define PSL_TEXT "/usr/share/publicsuffix/public_suffix_list.dat"

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl_ctx;
static const char *psl_from = "none";

static void psl_load(void)
{
	psl_ctx_t *ctx = psl_load_file(PSL_DAFSA);
	psl_from = PSL_DAFSA;
	if (!ctx) {
		ctx = psl_load_file(PSL_TEXT);
		psl_from = PSL_TEXT;
	}
	if (ctx) {
		psl_ctx = ctx; /* kept for the life of the process */
		return;
	}
	psl_ctx = psl_builtin();
	psl_from = psl_ctx ? "built-in" : "none";
}

const char *dmarc_psl_source(void)
{
	pthread_once(&psl_once, psl_load);
	return psl_from;
}

void dmarc_org_domain(const char *domain, char *out, size_t outsize)
{
	const char *reg = NULL;
	pthread_once(&psl_once, psl_load);
	if (psl_ctx)
		reg = psl_registrable_domain(psl_ctx, domain);
	/* No registrable part: the domain is itself a public suffix (or has
	 * one label); it is then its own Organizational Domain. */
	str_copy(out, reg ? reg : domain, outsize);
}

/* ---- the DNS table --------------------------------------------------- */

struct run {
	struct dmarc_eval *e;
	int pending;
};

static const struct dmarc_lookup *ask(struct run *r, const char *name, uint16_t type)
{
	struct dmarc_eval *e = r->e;
	for (size_t i = 0; i < e->nlookups; i++) {
		if (e->lookups[i]->type == type && !strcmp(e->lookups[i]->name, name)) {
			if (!e->lookups[i]->answered) {
				r->pending = 1;
				return NULL;
			}
			return e->lookups[i];
		}
	}
	if (e->nlookups >= DMARC_MAX_LOOKUPS)
		abort(); /* cannot happen: at most 5 per domain */
	/* One allocation per entry: pointers handed out stay valid as the
	 * table grows. */
	e->lookups = xrealloc(e->lookups, (e->nlookups + 1) * sizeof *e->lookups);
	e->lookups[e->nlookups] = xcalloc(1, sizeof **e->lookups);
	e->lookups[e->nlookups]->name = xstrdup(name);
	e->lookups[e->nlookups]->type = type;
	e->nlookups++;
	r->pending = 1;
	return NULL;
}

void dmarc_answer(struct dmarc_eval *e, size_t i, enum dns_status status, const struct dns_answer *answer)
{
	struct dmarc_lookup *l = e->lookups[i];
	dns_answer_clear(&l->answer);
	l->answered = 1;
	l->status = status;
	if (answer && status == DNS_ANSWER) {
		l->answer.rcode = answer->rcode;
		l->answer.nrrs = answer->nrrs;
		l->answer.rrs = xcalloc(answer->nrrs ? answer->nrrs : 1, sizeof *l->answer.rrs);
		for (size_t k = 0; k < answer->nrrs; k++) {
			const struct dns_rr *src = &answer->rrs[k];
			struct dns_rr *dst = &l->answer.rrs[k];
			*dst = *src;
			dst->name = src->name ? xstrdup(src->name) : NULL;
			dst->data = NULL;
			if (src->data) {
				dst->data = xmalloc(src->len + 1);
				memcpy(dst->data, src->data, src->len);
				dst->data[src->len] = '\0';
			}
		}
	}
}

static int dns_failed(const struct dmarc_lookup *l)
{
	return l->status == DNS_TEMPFAIL || l->status == DNS_TIMEOUT;
}

static int dns_void(const struct dmarc_lookup *l)
{
	return l->status == DNS_NXDOMAIN || l->status == DNS_NODATA;
}

/* ---- evaluation ------------------------------------------------------ */

static void set_reason(struct dmarc_domain *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reason(struct dmarc_domain *d, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	free(d->reason);
	d->reason = xstrdup(buf);
}

enum sel { SEL_PENDING, SEL_TEMPFAIL, SEL_NONE, SEL_MANY, SEL_ONE };

/* Section 6.6.3 steps 1-2 (and 3-4): the DMARC records at _dmarc.domain. */
static enum sel select_record(struct run *r, const char *domain, const struct dns_rr **rec, size_t *count)
{
	char name[300];
	const struct dmarc_lookup *l;

	*count = 0;
	if (strlen(domain) + 7 > 253)
		return SEL_NONE; /* no such name can exist */
	snprintf(name, sizeof name, "_dmarc.%s", domain);
	l = ask(r, name, DNS_T_TXT);
	if (!l)
		return SEL_PENDING;
	if (dns_failed(l))
		return SEL_TEMPFAIL;
	if (l->status != DNS_ANSWER)
		return SEL_NONE;
	for (size_t i = 0; i < l->answer.nrrs; i++) {
		const struct dns_rr *rr = &l->answer.rrs[i];
		if (rr->data && starts_dmarc1((const char *)rr->data, rr->len)) {
			(*count)++;
			*rec = rr;
		}
	}
	return *count == 0 ? SEL_NONE : *count == 1 ? SEL_ONE : SEL_MANY;
}

/* RFC 9091 section 2.6: "a non-existent domain is a domain for which
 * there is an NXDOMAIN or NODATA response for A, AAAA, and MX records."
 * 1, 0, -1 for unknown (a lookup failed), or -2 while pending. */
static int exists_check(struct run *r, const char *domain)
{
	const struct dmarc_lookup *a = ask(r, domain, DNS_T_A);
	const struct dmarc_lookup *aaaa = ask(r, domain, DNS_T_AAAA);
	const struct dmarc_lookup *mx = ask(r, domain, DNS_T_MX);
	if (!a || !aaaa || !mx)
		return -2;
	if (a->status == DNS_ANSWER || aaaa->status == DNS_ANSWER || mx->status == DNS_ANSWER)
		return 0;
	if (dns_void(a) && dns_void(aaaa) && dns_void(mx))
		return 1;
	return -1;
}

static int aligned(char mode, const char *id, const char *id_org, const char *from, const char *from_org)
{
	/* Section 3.1.1/3.1.2: strict is an exact match (names are
	 * normalized to lower case); relaxed compares Organizational Domains. */
	if (!id)
		return 0;
	return mode == 's' ? !strcmp(id, from) : !strcmp(id_org, from_org);
}

static void clear_domain_result(struct dmarc_domain *d)
{
	free(d->record_domain);
	free(d->record_text);
	free(d->dkim_domain);
	free(d->reason);
	dmarc_record_clear(&d->record);
	d->record_domain = d->record_text = d->dkim_domain = d->reason = NULL;
	d->result = DMARC_NONE;
	d->disposition = DMARC_POLICY_NONE;
	d->policy = DMARC_POLICY_NONE;
	d->policy_tag = NULL;
	d->has_record = d->policy_defaulted = d->spf_aligned = d->dkim_aligned = d->sampled_out = 0;
	d->nonexistent = -1;
}

/* Policy discovery (section 6.6.3). Returns 1 with the record found, 0
 * when the domain's result is settled without one, -1 while pending. */
static int discover(struct run *r, struct dmarc_domain *d, const struct dns_rr **recp)
{
	const struct dns_rr *rec = NULL;
	size_t count;
	const char *at = d->domain;
	enum sel s = select_record(r, at, &rec, &count);

	if (s == SEL_NONE && strcmp(d->org, d->domain)) {
		/* Step 3: "If the set is now empty, the Mail Receiver MUST query
		 * the DNS for a DMARC TXT record at the DNS domain matching the
		 * Organizational Domain". */
		at = d->org;
		s = select_record(r, at, &rec, &count);
	}
	switch (s) {
	case SEL_PENDING:
		return -1;
	case SEL_TEMPFAIL:
		d->result = DMARC_TEMPERROR;
		set_reason(d, "DNS failure looking up TXT _dmarc.%s", at);
		return 0;
	case SEL_NONE:
		d->result = DMARC_NONE;
		if (strcmp(d->org, d->domain))
			set_reason(d, "no DMARC record at _dmarc.%s nor at _dmarc.%s", d->domain, d->org);
		else
			set_reason(d, "no DMARC record at _dmarc.%s", d->domain);
		return 0;
	case SEL_MANY:
		/* Step 5: "If the remaining set contains multiple records or no
		 * records, policy discovery terminates and DMARC processing is
		 * not applied to this message." */
		d->result = DMARC_NONE;
		set_reason(d, "%zu DMARC records at _dmarc.%s: none applies (RFC 7489 section 6.6.3)", count, at);
		return 0;
	case SEL_ONE:
		break;
	}
	d->record_domain = xstrdup(at);
	d->record_text = xmalloc(rec->len + 1);
	memcpy(d->record_text, rec->data, rec->len);
	d->record_text[rec->len] = '\0';
	*recp = rec;
	return 1;
}

/* One author domain. Returns -1 while pending, else 0. */
static int eval_domain(struct run *r, struct dmarc_domain *d)
{
	struct dmarc_eval *e = r->e;
	const struct dns_rr *rec = NULL;
	char why[256], spf_note[300], dkim_note[300];
	int rc, spf_temp = 0, dkim_temp = 0, npass = 0;

	clear_domain_result(d);
	rc = discover(r, d, &rec);
	if (rc <= 0)
		return rc;
	switch (dmarc_record_parse((const char *)rec->data, rec->len, &d->record, why, sizeof why)) {
	case DMARC_PARSE_OK:
		break;
	default:
		d->result = DMARC_PERMERROR;
		set_reason(d, "invalid DMARC record at _dmarc.%s: %s", d->record_domain, why);
		return 0;
	}
	if (d->record.policy_invalid) {
		/* Section 6.6.3 step 6: without a valid p= (or with an invalid
		 * sp=), act as p=none if rua= holds a valid URI; else no DMARC. */
		if (d->record.nrua == 0) {
			d->result = DMARC_PERMERROR;
			set_reason(d, "DMARC record at _dmarc.%s has no valid p= (or an invalid sp=/np=) and no rua=: "
				      "not applied (RFC 7489 section 6.6.3)", d->record_domain);
			dmarc_record_clear(&d->record);
			return 0;
		}
		d->policy_defaulted = 1;
		d->record.p = d->record.sp = d->record.np = DMARC_POLICY_NONE;
	}
	d->has_record = 1;

	/* Identifier alignment (section 3.1), SPF then DKIM. */
	if (e->spf_domain && aligned(d->record.aspf, e->spf_domain, e->spf_org, d->domain, d->org)) {
		if (e->spf == SPF_PASS)
			d->spf_aligned = 1;
		else if (e->spf == SPF_TEMPERROR)
			spf_temp = 1;
	}
	for (size_t i = 0; i < e->ndkim; i++) {
		if (e->dkim[i].pass)
			npass++;
		if (!aligned(d->record.adkim, e->dkim[i].domain, e->dkim_org[i], d->domain, d->org))
			continue;
		if (e->dkim[i].pass && !d->dkim_aligned) {
			d->dkim_aligned = 1;
			d->dkim_domain = xstrdup(e->dkim[i].domain);
		} else if (!e->dkim[i].pass && e->dkim[i].temperror) {
			dkim_temp = 1;
		}
	}
	snprintf(spf_note, sizeof spf_note, "SPF %s%s%s %s (aspf=%c)", spf_result_name(e->spf),
		 e->spf_domain ? " for " : "", e->spf_domain ? e->spf_domain : "",
		 d->spf_aligned ? "aligned" : spf_temp ? "aligned but temporary" : "not aligned", d->record.aspf);
	if (d->dkim_aligned)
		snprintf(dkim_note, sizeof dkim_note, "DKIM d=%s aligned (adkim=%c)", d->dkim_domain, d->record.adkim);
	else
		snprintf(dkim_note, sizeof dkim_note, "%s (adkim=%c)",
			 npass ? "no passing DKIM signature aligned" : "no passing DKIM signature", d->record.adkim);

	/* Section 6.6.2 step 5: one aligned pass passes. */
	if (d->spf_aligned || d->dkim_aligned)
		d->result = DMARC_PASS;
	else if (spf_temp || dkim_temp)
		d->result = DMARC_TEMPERROR;
	else
		d->result = DMARC_FAIL;

	/* The policy requested: p= for the domain the record is at; sp= for
	 * its subdomains (section 6.3); np= for subdomains that do not exist
	 * (RFC 9091 section 4.1), looked up only when it would matter. */
	if (!strcmp(d->record_domain, d->domain)) {
		d->policy_tag = "p";
		d->policy = d->record.p;
	} else {
		d->policy_tag = d->record.has_sp && !d->policy_defaulted ? "sp" : "p";
		d->policy = d->record.sp;
		if (d->result == DMARC_FAIL && d->record.has_np && !d->policy_defaulted) {
			int x = exists_check(r, d->domain);
			if (x == -2)
				return -1;
			d->nonexistent = x == -1 ? -1 : x;
			if (x == 1) {
				d->policy_tag = "np";
				d->policy = d->record.np;
			}
		}
	}

	if (d->result == DMARC_FAIL) {
		d->disposition = d->policy;
		/* Section 6.6.4: a message outside pct= gets the next weaker
		 * treatment: reject becomes quarantine, quarantine none. */
		if (d->policy != DMARC_POLICY_NONE && e->sample >= d->record.pct) {
			d->sampled_out = 1;
			d->disposition = d->policy == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
		}
	}

	{
		char pol[200] = "";
		if (d->result == DMARC_FAIL)
			snprintf(pol, sizeof pol, "; policy %s=%s%s%s%s%s", d->policy_tag, dmarc_policy_name(d->policy),
				 !strcmp(d->policy_tag, "np") ? " (the domain does not exist)" : "",
				 d->nonexistent == -1 && d->record.has_np && !d->policy_defaulted &&
						 strcmp(d->record_domain, d->domain)
					 ? " (existence unknown: sp= applied)"
					 : "",
				 d->policy_defaulted ? " (read as p=none: no valid p=, RFC 7489 section 6.6.3)" : "",
				 d->sampled_out ? ", outside pct= (RFC 7489 section 6.6.4)" : "");
		set_reason(d, "%s; %s; record at _dmarc.%s%s", spf_note, dkim_note, d->record_domain, pol);
	}
	return 0;
}

static int severity(enum dmarc_result r)
{
	switch (r) {
	case DMARC_PASS:
		return 0;
	case DMARC_NONE:
		return 1;
	case DMARC_PERMERROR:
		return 2;
	case DMARC_TEMPERROR:
		return 3;
	case DMARC_FAIL:
		return 4;
	}
	return 0;
}

enum dmarc_run_status dmarc_run(struct dmarc_eval *e)
{
	struct run r = { .e = e };
	int pending = 0;

	if (e->from_problem) {
		e->result = DMARC_PERMERROR;
		e->disposition = DMARC_POLICY_REJECT;
		e->decisive = NULL;
		e->reason = e->from_problem;
		return DMARC_RUN_DONE;
	}
	for (size_t i = 0; i < e->ndomains; i++)
		if (eval_domain(&r, &e->domains[i]) < 0)
			pending = 1;
	if (pending || r.pending)
		return DMARC_RUN_NEED_DNS;
	/* Several author domains: the strictest outcome (section 6.6.1: "apply
	 * the most strict policy selected among the checks that fail"); the
	 * result is the worst, and the domain that decided is reported. */
	e->decisive = &e->domains[0];
	e->result = e->domains[0].result;
	for (size_t i = 1; i < e->ndomains; i++) {
		const struct dmarc_domain *d = &e->domains[i];
		if (severity(d->result) > severity(e->result))
			e->result = d->result;
		if (d->disposition > e->decisive->disposition ||
		    (d->disposition == e->decisive->disposition && severity(d->result) > severity(e->decisive->result)))
			e->decisive = d;
	}
	e->disposition = e->decisive->disposition;
	e->reason = e->decisive->reason;
	return DMARC_RUN_DONE;
}

void dmarc_comment(const struct dmarc_domain *d, char *out, size_t outsize)
{
	if (!d || !d->has_record) {
		str_copy(out, "", outsize);
		return;
	}
	snprintf(out, outsize, "p=%s sp=%s%s%s dis=%s%s", dmarc_policy_name(d->record.p), dmarc_policy_name(d->record.sp),
		 d->record.has_np ? " np=" : "", d->record.has_np ? dmarc_policy_name(d->record.np) : "",
		 dmarc_policy_name(d->disposition), d->sampled_out ? " pct-sampled-out" : "");
}

/* ---- the evaluation object ------------------------------------------------ */

static unsigned random_sample(void)
{
	uint32_t v = 0;
	if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
		v = (uint32_t)now_ms() ^ (uint32_t)rand();
	return v % 100;
}

/* A domain from SPF or DKIM: a DNS name, perhaps with a final dot. */
static char *norm_id_domain(const char *in)
{
	char buf[256], out[256];
	size_t l;
	if (!in || !*in)
		return NULL;
	str_copy(buf, in, sizeof buf);
	l = strlen(buf);
	if (l && buf[l - 1] == '.')
		buf[l - 1] = '\0';
	if (dmarc_domain_normalize(buf, out, sizeof out, NULL, 0) < 0)
		return NULL;
	return xstrdup(out);
}

static void from_problem(struct dmarc_eval *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void from_problem(struct dmarc_eval *e, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	if (e->from_problem)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	e->from_problem = xstrdup(buf);
}

/* Section 6.6.1: the author domains of the From fields. */
static void extract_domains(struct dmarc_eval *e, const char *const *from_values, size_t nfrom)
{
	char why[256], norm[256], field[32] = "";

	if (nfrom == 0) {
		from_problem(e, "no From header field (RFC 5322 section 3.6 requires one; RFC 7489 section 5: "
				"the message is invalid)");
		return;
	}
	if (nfrom > DMARC_MAX_FROM_FIELDS) {
		from_problem(e, "more than %d From header fields", DMARC_MAX_FROM_FIELDS);
		return;
	}
	for (size_t f = 0; f < nfrom && !e->from_problem; f++) {
		char **doms = NULL;
		size_t ndoms = 0;
		if (nfrom > 1)
			snprintf(field, sizeof field, " %zu", f + 1);
		int rc = dmarc_from_parse(from_values[f], &doms, &ndoms, why, sizeof why);
		if (rc < 0)
			from_problem(e, "From header field%s does not parse: %s", field, why);
		else if (rc == 0)
			from_problem(e, "no address in the From header field%s", field);
		for (size_t k = 0; k < ndoms; k++) {
			size_t j;
			if (e->from_problem)
				break;
			if (dmarc_domain_normalize(doms[k], norm, sizeof norm, why, sizeof why) < 0) {
				from_problem(e, "From header field%s: %s", field, why);
				break;
			}
			for (j = 0; j < e->ndomains; j++)
				if (!strcmp(e->domains[j].domain, norm))
					break;
			if (j < e->ndomains)
				continue;
			if (e->ndomains >= DMARC_MAX_DOMAINS) {
				from_problem(e, "more than %d author domains", DMARC_MAX_DOMAINS);
				break;
			}
			e->domains = xrealloc(e->domains, (e->ndomains + 1) * sizeof *e->domains);
			memset(&e->domains[e->ndomains], 0, sizeof *e->domains);
			e->domains[e->ndomains].domain = xstrdup(norm);
			dmarc_org_domain(norm, why, sizeof why);
			e->domains[e->ndomains].org = xstrdup(why);
			e->domains[e->ndomains].nonexistent = -1;
			e->ndomains++;
		}
		for (size_t k = 0; k < ndoms; k++)
			free(doms[k]);
		free(doms);
	}
	if (!e->from_problem && e->ndomains == 0)
		from_problem(e, "no address in the From header field");
}

struct dmarc_eval *dmarc_eval_new(const char *const *from_values, size_t nfrom, const char *spf_domain,
				  enum spf_result spf, const struct dmarc_dkim *dkim, size_t ndkim)
{
	struct dmarc_eval *e = xcalloc(1, sizeof *e);
	char org[256];

	e->nfrom = nfrom;
	e->sample = random_sample();
	e->spf = spf;
	e->spf_domain = norm_id_domain(spf_domain);
	if (e->spf_domain) {
		dmarc_org_domain(e->spf_domain, org, sizeof org);
		e->spf_org = xstrdup(org);
	}
	if (ndkim > DMARC_MAX_DKIM)
		ndkim = DMARC_MAX_DKIM;
	e->dkim = xcalloc(ndkim ? ndkim : 1, sizeof *e->dkim);
	e->dkim_org = xcalloc(ndkim ? ndkim : 1, sizeof *e->dkim_org);
	for (size_t i = 0; i < ndkim; i++) {
		char *d = norm_id_domain(dkim[i].domain);
		if (!d)
			continue; /* no usable d=: cannot align */
		e->dkim[e->ndkim].domain = d;
		e->dkim[e->ndkim].pass = dkim[i].pass != 0;
		e->dkim[e->ndkim].temperror = dkim[i].temperror != 0;
		dmarc_org_domain(d, org, sizeof org);
		e->dkim_org[e->ndkim] = xstrdup(org);
		e->ndkim++;
	}
	extract_domains(e, from_values, nfrom);
	e->result = DMARC_NONE;
	return e;
}

void dmarc_eval_free(struct dmarc_eval *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nlookups; i++) {
		free(e->lookups[i]->name);
		dns_answer_clear(&e->lookups[i]->answer);
		free(e->lookups[i]);
	}
	free(e->lookups);
	for (size_t i = 0; i < e->ndomains; i++) {
		clear_domain_result(&e->domains[i]);
		free(e->domains[i].domain);
		free(e->domains[i].org);
	}
	free(e->domains);
	for (size_t i = 0; i < e->ndkim; i++) {
		free((char *)e->dkim[i].domain);
		free(e->dkim_org[i]);
	}
	free(e->dkim);
	free(e->dkim_org);
	free(e->spf_domain);
	free(e->spf_org);
	free(e->from_problem);
	free(e);
}

/* ---- the asynchronous driver ---------------------------------------------- */

/* The same design as SPF's driver (spf.c): replay, answering from our
 * cache where it can, ask DNS for the rest, replay when all is in. */
struct dmarc_job {
	struct dns_batch *batch;
	struct dmarc_eval *e;
	dmarc_done_cb cb;
	void *arg;
	int finished;
};

static void job_free(struct dmarc_job *job)
{
	dns_batch_free(job->batch);
	dmarc_eval_free(job->e);
	free(job);
}

static void on_dns(void *owner, size_t i, const struct dns_result *res)
{
	struct dmarc_job *job = owner;
	dmarc_answer(job->e, i, res->status, res->answer);
}

static size_t answer_from_cache(struct dmarc_job *job)
{
	size_t n = 0;
	for (size_t i = 0; i < job->e->nlookups; i++) {
		const struct dmarc_lookup *l = job->e->lookups[i];
		if (!l->answered && dns_batch_cached(job->batch, l->name, l->type, i))
			n++;
	}
	return n;
}

static void job_step(void *owner)
{
	struct dmarc_job *job = owner;
	enum dmarc_run_status st;

	if (job->finished) {
		job->cb(job->arg, job->e);
		job_free(job);
		return;
	}
	while ((st = dmarc_run(job->e)) != DMARC_RUN_DONE && answer_from_cache(job) > 0)
		;
	if (st == DMARC_RUN_DONE)
		job->finished = 1;
	for (size_t i = 0; st != DMARC_RUN_DONE && i < job->e->nlookups; i++) {
		const struct dmarc_lookup *l = job->e->lookups[i];
		if (!l->answered)
			dns_batch_ask(job->batch, l->name, l->type, i);
	}
	dns_batch_wait(job->batch);
}

struct dmarc_job *dmarc_check_async(struct dns *dns, const char *const *from_values, size_t nfrom,
				    const char *spf_domain, enum spf_result spf, const struct dmarc_dkim *dkim,
				    size_t ndkim, int sample, dmarc_done_cb cb, void *arg)
{
	struct dmarc_job *job = xcalloc(1, sizeof *job);
	job->cb = cb;
	job->arg = arg;
	job->e = dmarc_eval_new(from_values, nfrom, spf_domain, spf, dkim, ndkim);
	if (sample >= 0 && sample < 100)
		job->e->sample = (unsigned)sample;
	job->batch = dns_batch_new(dns, on_dns, job_step, job);
	job_step(job);
	return job;
}

void dmarc_job_cancel(struct dmarc_job *job)
{
	if (job)
		job_free(job);
}
