/*
 * arc: ARC validation and sealing; see arc.h. RFC 8617 sections:
 *
 *   4.1.1  ARC-Authentication-Results          arc_field_instance(), seal_aar()
 *   4.1.2  ARC-Message-Signature               parse_sig(), seal_ams()
 *   4.1.3  ARC-Seal                            parse_sig(), seal_as()
 *   4.2.1  instance tags (1..50)               arc_field_instance()
 *   5.1    sealer actions                      arc_sealer_end()
 *   5.1.1  the fields an ARC-Seal signs        as_hash(), seal_as()
 *   5.1.2  sealing a failed chain              seal_as() (our set only)
 *   5.2    validator actions                   on_headers(), compute_result()
 *   5.2.1  all failures are permanent          key_answer() (DNS -> fail)
 *
 * A signature's life is that of a DKIM signature in dkim.c: parsed when the
 * header block completes (a malformed one is decided there and needs no
 * key), its key answer checks the key and the header signature at once,
 * and an AMS's body hash is compared when the message ends. The chain's
 * result is computed once everything is in, walking the RFC's steps in
 * order so the reason is that of the first step that failed.
 *
 * What we accept where the specifications leave room, and why (the ARC
 * test suite's validation cases and dkimpy, the reference implementation
 * it was written with, agree on each):
 *   - tag names and the values a=, c= and cv= are case-sensitive;
 *   - an AMS h= may be empty, and may name a field twice or not at all
 *     (null fields, as in DKIM); it may not name ARC-Seal;
 *   - an AMS without c= is relaxed/relaxed (ARC signers all use it);
 *   - the AMS need not sign From (RFC 8617 does not ask it to; the AMS
 *     vouches for custody, the From domain is DMARC's business);
 *   - a malformed or failing AMS below the newest only lowers oldest-pass.
 */
#include "arc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth/authres.h"
#include "dns/batch.h"
#include "lib/util.h"

const char *arc_cv_name(enum arc_cv cv)
{
	static const char *const names[] = { "none", "pass", "fail" };
	return (unsigned)cv < ARRAY_LEN(names) ? names[cv] : "?";
}

int arc_cv_parse(const char *s, enum arc_cv *out)
{
	for (int i = ARC_CV_NONE; i <= ARC_CV_FAIL; i++) {
		if (!strcmp(s, arc_cv_name((enum arc_cv)i))) {
			*out = (enum arc_cv)i;
			return 0;
		}
	}
	return -1;
}

/* ---- small parsing helpers ------------------------------------------------ */

static int is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

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
		} else if (is_fws((unsigned char)c)) {
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

static int tag_eq(const struct dkim_tag *t, const char *v)
{
	size_t n = strlen(v);
	return t->value_len == n && !memcmp(t->value, v, n);
}

/* A decimal tag value of 1..maxdigits digits, saturating at INT64_MAX;
 * -1 for anything else. */
static int64_t tag_num(const struct dkim_tag *t, size_t maxdigits)
{
	int64_t v = 0;
	if (t->value_len == 0 || t->value_len > maxdigits)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (t->value[i] < '0' || t->value[i] > '9')
			return -1;
		v = v > (INT64_MAX - 9) / 10 ? INT64_MAX : v * 10 + (t->value[i] - '0');
	}
	return v;
}

static char *tag_copy(const struct dkim_tag *t, int lower)
{
	char *o = xstrndup(t->value, t->value_len);
	return lower ? str_lower(o) : o;
}

/* The instance of a position value: 1*2DIGIT, 1..50 (section 3.9). */
static unsigned position(const char *s, size_t n)
{
	unsigned v = 0;
	if (n == 0 || n > 2)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v >= 1 && v <= ARC_MAX_INSTANCES ? v : 0;
}

/* ---- fields, instances and the chain ----------------------------------- */

static const char *const kind_names[] = { "ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal" };

int arc_field_kind(const struct msg_headers *h, size_t i)
{
	for (int k = ARC_AAR; k <= ARC_AS; k++)
		if (msg_field_is(h, i, kind_names[k]))
			return k;
	return -1;
}

unsigned arc_field_instance(enum arc_kind kind, const char *value, size_t len, const char **why)
{
	if (kind == ARC_AAR) {
		/* arc-info = instance [CFWS] ";" authres-payload */
		size_t i = skip_cfws(value, 0, len), start;
		unsigned v;
		if (i == len || value[i] != 'i') {
			*why = "does not start with i=";
			return 0;
		}
		i = skip_cfws(value, i + 1, len);
		if (i == len || value[i] != '=') {
			*why = "does not start with i=";
			return 0;
		}
		i = skip_cfws(value, i + 1, len);
		start = i;
		while (i < len && value[i] >= '0' && value[i] <= '9')
			i++;
		v = position(value + start, i - start);
		if (!v) {
			*why = "i= is not an instance from 1 to 50";
			return 0;
		}
		i = skip_cfws(value, i, len);
		if (i == len || value[i] != ';') {
			*why = "no ';' after i=";
			return 0;
		}
		return v;
	} else {
		struct dkim_tags tags;
		const struct dkim_tag *t;
		unsigned v;
		if (dkim_tags_parse(value, len, &tags, why) < 0)
			return 0;
		if (!(t = dkim_tags_get(&tags, "i"))) {
			*why = "no i= tag";
			return 0;
		}
		v = position(t->value, t->value_len);
		if (!v)
			*why = "i= is not an instance from 1 to 50";
		return v;
	}
}

int arc_chain_collect(const struct msg_headers *h, struct arc_chain *c, const char **why)
{
	static const char *const no_instance[] = {
		"an ARC-Authentication-Results field does not start with a valid instance (i=N;)",
		"an ARC-Message-Signature field has no valid instance (i=)",
		"an ARC-Seal field has no valid instance (i=)",
	};
	static const char *const bad_tags[] = {
		"",
		"an ARC-Message-Signature field has a malformed tag-list",
		"an ARC-Seal field has a malformed tag-list",
	};
	static const char *const twice[] = {
		"two ARC-Authentication-Results fields with the same instance",
		"two ARC-Message-Signature fields with the same instance",
		"two ARC-Seal fields with the same instance",
	};
	const char *first = NULL;

	c->n = 0;
	c->nfields = 0;
	c->bad = 0;
	for (unsigned i = 0; i <= ARC_MAX_INSTANCES; i++)
		c->aar[i] = c->ams[i] = c->as[i] = -1;
	for (size_t i = 0; i < h->nfields; i++) {
		int kind = arc_field_kind(h, i);
		const char *val, *w;
		size_t vlen;
		unsigned inst;
		long *slot;
		if (kind < 0)
			continue;
		c->nfields++;
		val = msg_field_value(h, i, &vlen);
		inst = arc_field_instance((enum arc_kind)kind, val, vlen, &w);
		if (!inst) {
			if (!first) {
				struct dkim_tags tags;
				const char *w2;
				first = kind != ARC_AAR && dkim_tags_parse(val, vlen, &tags, &w2) < 0 ? bad_tags[kind] :
											 no_instance[kind];
			}
			continue;
		}
		slot = kind == ARC_AAR ? &c->aar[inst] : kind == ARC_AMS ? &c->ams[inst] : &c->as[inst];
		if (*slot >= 0) {
			if (!first) {
				first = twice[kind];
				c->bad = inst;
			}
			continue;
		}
		*slot = (long)i;
		if (inst > c->n)
			c->n = inst;
	}
	if (c->nfields > ARC_MAX_FIELDS) {
		first = "more than 150 ARC header fields";
		c->bad = 0;
	}
	if (!first) {
		for (unsigned i = 1; i <= c->n; i++) {
			if (c->aar[i] < 0 || c->ams[i] < 0 || c->as[i] < 0) {
				first = "an ARC Set is incomplete (a field is missing, or an instance)";
				c->bad = i;
				break;
			}
		}
	}
	if (first) {
		*why = first;
		return -1;
	}
	return 0;
}

/* ---- signatures (AMS and AS) -------------------------------------------- */

enum sig_state {
	SIG_PENDING,   /* waiting for its key */
	SIG_HEADER_OK, /* an AMS whose header signature verified; the body remains */
	SIG_PASS,
	SIG_FAIL,
	SIG_SKIPPED,   /* an older AMS we do not check (a bound) */
};

struct asig {
	enum arc_kind kind;
	unsigned instance;
	size_t field;
	enum sig_state state;
	int ed25519;
	int dns_error;
	enum msg_canon hc, bc;
	unsigned char bh[MSG_HASH_MAX];
	unsigned char *b;
	size_t blen;
	char *names_buf;
	const char **names;
	size_t *namelens;
	size_t nnames;
	size_t b_cut_start, b_cut_end; /* the b= value in the raw field */
	int64_t l;
	char *domain, *selector;
	size_t key;     /* index into v->keys, or (size_t)-1 */
	size_t hasher;  /* index into v->hashers, or (size_t)-1 */
	enum arc_cv cv; /* AS */
	char reason[160];
};

struct vkey {
	char *name;
	int answered;
};

struct arc_verifier {
	int64_t now;
	struct msg_headers hdr;
	int headers_done, ended, hash_body;
	struct arc_chain chain;
	unsigned n;            /* sets, when the structure is sound */
	struct asig *ams, *as; /* [1..n] */
	struct vkey *keys;
	size_t nkeys, nanswers;
	struct msg_bodyhash *hashers[ARC_MAX_BODY_HASHERS];
	unsigned char digests[ARC_MAX_BODY_HASHERS][MSG_HASH_MAX];
	uint64_t body_lens[ARC_MAX_BODY_HASHERS];
	size_t nhashers;
	struct arc_set *sets;
	char **aars;
	int decided, result_ready;
	struct arc_result res;
	char reason[256];
};

static void sig_fail(struct asig *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sig_fail(struct asig *s, const char *fmt, ...)
{
	va_list ap;
	if (s->state == SIG_FAIL || s->state == SIG_PASS)
		return;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof s->reason, fmt, ap);
	va_end(ap);
	s->state = SIG_FAIL;
}

static void decide(struct arc_verifier *v, enum arc_cv cv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void decide(struct arc_verifier *v, enum arc_cv cv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof v->reason, fmt, ap);
	va_end(ap);
	v->res.cv = cv;
	v->res.reason = v->reason;
	v->decided = 1;
}

/* Parses an AMS h= list: names separated by ':', an empty one standing for
 * nothing (as dkimpy reads "h=a::b" and "h="). 0, or -1. */
static int parse_names(struct asig *s, const struct dkim_tag *t)
{
	size_t i = 0, n = 0, o = 0;
	s->names_buf = xmalloc(t->value_len + 1);
	s->names = xcalloc(DKIM_MAX_SIGNED_FIELDS, sizeof *s->names);
	s->namelens = xcalloc(DKIM_MAX_SIGNED_FIELDS, sizeof *s->namelens);
	while (i <= t->value_len) {
		size_t start, end;
		while (i < t->value_len && is_fws((unsigned char)t->value[i]))
			i++;
		start = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		end = i;
		while (end > start && is_fws((unsigned char)t->value[end - 1]))
			end--;
		i++;
		if (end == start)
			continue;
		if (n == DKIM_MAX_SIGNED_FIELDS)
			return -1;
		for (size_t k = start; k < end; k++)
			if ((unsigned char)t->value[k] < 0x21 || (unsigned char)t->value[k] > 0x7e)
				return -1;
		memcpy(s->names_buf + o, t->value + start, end - start);
		s->names[n] = s->names_buf + o;
		s->namelens[n] = end - start;
		o += end - start;
		s->names_buf[o++] = '\0';
		n++;
	}
	s->nnames = n;
	return 0;
}

/* Parses and checks AMS or AS s (4.1.2, 4.1.3). Leaves it SIG_FAIL with a
 * reason when it cannot be used. */
static void parse_sig(struct arc_verifier *v, struct asig *s)
{
	static const char *const need_ams[] = { "a", "b", "bh", "d", "h", "s" };
	static const char *const need_as[] = { "a", "b", "cv", "d", "s" };
	struct dkim_tags tags;
	const struct dkim_tag *t;
	const char *why, *val, *raw;
	size_t vlen, rawlen;

	s->key = s->hasher = (size_t)-1;
	s->l = -1;
	s->domain = xstrdup("");
	s->selector = xstrdup("");
	val = msg_field_value(&v->hdr, s->field, &vlen);
	raw = msg_field_raw(&v->hdr, s->field, &rawlen);
	if (dkim_tags_parse(val, vlen, &tags, &why) < 0) {
		sig_fail(s, "malformed tag-list: %s", why);
		return;
	}
	if ((t = dkim_tags_get(&tags, "d"))) {
		free(s->domain);
		s->domain = tag_copy(t, 1);
	}
	if ((t = dkim_tags_get(&tags, "s"))) {
		free(s->selector);
		s->selector = tag_copy(t, 0);
	}
	if ((t = dkim_tags_get(&tags, "b"))) {
		/* What the hash leaves out: from after '=' to the ';' or the
		 * end, white space included (RFC 6376 3.5, b=). */
		size_t start = (size_t)(t->value - raw), end = start + t->value_len;
		while (start > 0 && raw[start - 1] != '=')
			start--;
		while (end < rawlen && raw[end] != ';')
			end++;
		s->b_cut_start = start;
		s->b_cut_end = end;
	}
	for (size_t i = 0; i < (s->kind == ARC_AS ? ARRAY_LEN(need_as) : ARRAY_LEN(need_ams)); i++) {
		const char *name = s->kind == ARC_AS ? need_as[i] : need_ams[i];
		if (!dkim_tags_get(&tags, name)) {
			sig_fail(s, "missing %s=", name);
			return;
		}
	}
	t = dkim_tags_get(&tags, "a");
	if (tag_eq(t, "rsa-sha256")) {
		s->ed25519 = 0;
	} else if (tag_eq(t, "ed25519-sha256")) {
		s->ed25519 = 1;
	} else if (tag_eq(t, "rsa-sha1")) {
		sig_fail(s, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	} else {
		sig_fail(s, "unknown algorithm (a=)");
		return;
	}
	{
		unsigned char tmp[DKIM_MAX_SIG_BYTES];
		long n;
		t = dkim_tags_get(&tags, "b");
		n = msg_base64_decode(t->value, t->value_len, tmp, sizeof tmp);
		if (n <= 0) {
			sig_fail(s, "malformed b=");
			return;
		}
		s->b = xmalloc((size_t)n);
		memcpy(s->b, tmp, (size_t)n);
		s->blen = (size_t)n;
	}
	if (!dkim_valid_name(s->domain, strlen(s->domain)) || !strchr(s->domain, '.')) {
		sig_fail(s, "bad domain (d=)");
		return;
	}
	if (s->domain[strlen(s->domain) - 1] == '.')
		s->domain[strlen(s->domain) - 1] = '\0';
	/* dkim_valid_name() allows a final dot, which only a domain may have:
	 * "s=e." would make the key name "e.._domainkey...". */
	if (!dkim_valid_name(s->selector, strlen(s->selector)) || s->selector[strlen(s->selector) - 1] == '.') {
		sig_fail(s, "bad selector (s=)");
		return;
	}
	if ((t = dkim_tags_get(&tags, "t")) && tag_num(t, 12) < 0) {
		sig_fail(s, "malformed t=");
		return;
	}
	if (s->kind == ARC_AS) {
		if (dkim_tags_get(&tags, "h")) {
			sig_fail(s, "h= is not allowed in an ARC-Seal (RFC 8617 4.1.3)");
			return;
		}
		t = dkim_tags_get(&tags, "cv");
		if (tag_eq(t, "none"))
			s->cv = ARC_CV_NONE;
		else if (tag_eq(t, "pass"))
			s->cv = ARC_CV_PASS;
		else if (tag_eq(t, "fail"))
			s->cv = ARC_CV_FAIL;
		else {
			sig_fail(s, "bad cv=");
			return;
		}
		s->hc = MSG_CANON_RELAXED;
	} else {
		long n;
		t = dkim_tags_get(&tags, "bh");
		n = msg_base64_decode(t->value, t->value_len, s->bh, sizeof s->bh);
		if (n != 32) {
			sig_fail(s, "malformed bh=");
			return;
		}
		s->hc = s->bc = MSG_CANON_RELAXED;
		if ((t = dkim_tags_get(&tags, "c"))) {
			const char *slash = memchr(t->value, '/', t->value_len);
			size_t hl = slash ? (size_t)(slash - t->value) : t->value_len;
			int ok = 1;
			if (hl == 7 && !memcmp(t->value, "relaxed", 7))
				s->hc = MSG_CANON_RELAXED;
			else if (hl == 6 && !memcmp(t->value, "simple", 6))
				s->hc = MSG_CANON_SIMPLE;
			else
				ok = 0;
			if (!slash) {
				s->bc = MSG_CANON_SIMPLE; /* RFC 6376 3.5: c=relaxed is relaxed/simple */
			} else {
				size_t bl = t->value_len - hl - 1;
				if (bl == 7 && !memcmp(slash + 1, "relaxed", 7))
					s->bc = MSG_CANON_RELAXED;
				else if (bl == 6 && !memcmp(slash + 1, "simple", 6))
					s->bc = MSG_CANON_SIMPLE;
				else
					ok = 0;
			}
			if (!ok) {
				sig_fail(s, "unknown canonicalization (c=)");
				return;
			}
		}
		if (parse_names(s, dkim_tags_get(&tags, "h")) < 0) {
			sig_fail(s, "malformed h=");
			return;
		}
		for (size_t i = 0; i < s->nnames; i++) {
			if (s->namelens[i] == 8 && !str_casecmp_n(s->names[i], "arc-seal", 8)) {
				sig_fail(s, "h= signs ARC-Seal (RFC 8617 4.1.2)");
				return;
			}
		}
		if ((t = dkim_tags_get(&tags, "l")) && (s->l = tag_num(t, 76)) < 0) {
			sig_fail(s, "malformed l=");
			return;
		}
		if ((t = dkim_tags_get(&tags, "q")) && !tag_eq(t, "dns/txt")) {
			sig_fail(s, "no known query method (q=)");
			return;
		}
		if ((t = dkim_tags_get(&tags, "x"))) {
			int64_t x = tag_num(t, 12);
			if (x < 0) {
				sig_fail(s, "malformed x=");
				return;
			}
			if (x < v->now) {
				sig_fail(s, "signature expired (x=)");
				return;
			}
		}
	}
	if (strlen(s->selector) + strlen(s->domain) + 12 > 253) {
		sig_fail(s, "key name too long");
		return;
	}
}

/* The key index for s, adding its name; -1 over the bound. */
static long key_for(struct arc_verifier *v, const struct asig *s)
{
	char *name = str_lower(xasprintf("%s._domainkey.%s", s->selector, s->domain));
	for (size_t k = 0; k < v->nkeys; k++) {
		if (!strcmp(v->keys[k].name, name)) {
			free(name);
			return (long)k;
		}
	}
	if (v->nkeys == ARC_MAX_KEY_NAMES) {
		free(name);
		return -1;
	}
	v->keys = xrealloc(v->keys, (v->nkeys + 1) * sizeof *v->keys);
	v->keys[v->nkeys].name = name;
	v->keys[v->nkeys].answered = 0;
	return (long)v->nkeys++;
}

/* The body hasher for AMS s; -1 over the bound. */
static long hasher_for(struct arc_verifier *v, const struct asig *s)
{
	for (size_t i = 0; i < v->nhashers; i++)
		if (msg_bodyhash_canon(v->hashers[i]) == s->bc && msg_bodyhash_limit(v->hashers[i]) == s->l)
			return (long)i;
	if (v->nhashers == ARC_MAX_BODY_HASHERS)
		return -1;
	v->hashers[v->nhashers] = msg_bodyhash_new(s->bc, MSG_HASH_SHA256, s->l);
	return (long)v->nhashers++;
}

static const char *header_problem(const struct msg_headers *h)
{
	switch (h->status) {
	case MSG_OK:
		return NULL;
	case MSG_TOO_BIG:
		return "header block over 1 MiB";
	case MSG_TOO_MANY:
		return "more than 1000 header fields";
	case MSG_MALFORMED:
		return "malformed header block";
	}
	return "malformed header block";
}

/* The AAR's payload after "i=N;", unfolded, each run of white space one
 * space. */
static char *aar_payload(const struct msg_headers *h, long field)
{
	char *u = msg_field_unfolded(h, (size_t)field), *semi = strchr(u, ';'), *p, *out, *o;
	p = semi ? semi + 1 : u + strlen(u);
	out = o = xmalloc(strlen(p) + 1);
	for (; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			if (o > out && o[-1] != ' ')
				*o++ = ' ';
			continue;
		}
		*o++ = *p;
	}
	while (o > out && o[-1] == ' ')
		o--;
	*o = '\0';
	free(u);
	return out;
}

/* 5.2 steps 1-3 once the header block is complete, and what steps 4-6 need. */
static void on_headers(struct arc_verifier *v)
{
	const char *problem = header_problem(&v->hdr), *why = NULL;
	unsigned n;
	int rc;

	v->headers_done = 1;
	rc = arc_chain_collect(&v->hdr, &v->chain, &why);
	v->res.instances = v->chain.n;
	if (v->chain.nfields == 0) {
		if (problem && v->hdr.status != MSG_MALFORMED)
			/* Over a bound, a chain may lie beyond what we kept. */
			decide(v, ARC_CV_FAIL, "%s", problem);
		else
			decide(v, ARC_CV_NONE, "no ARC header fields");
		return;
	}
	if (problem) {
		decide(v, ARC_CV_FAIL, "%s", problem);
		return;
	}
	if (rc < 0) {
		if (v->chain.bad)
			decide(v, ARC_CV_FAIL, "i=%u: %s", v->chain.bad, why);
		else
			decide(v, ARC_CV_FAIL, "%s", why);
		return;
	}
	n = v->n = v->chain.n;
	v->ams = xcalloc(n + 1, sizeof *v->ams);
	v->as = xcalloc(n + 1, sizeof *v->as);
	v->sets = xcalloc(n, sizeof *v->sets);
	v->aars = xcalloc(n, sizeof *v->aars);
	for (unsigned i = 1; i <= n; i++) {
		struct asig *m = &v->ams[i], *s = &v->as[i];
		m->kind = ARC_AMS;
		s->kind = ARC_AS;
		m->instance = s->instance = i;
		m->field = (size_t)v->chain.ams[i];
		s->field = (size_t)v->chain.as[i];
		parse_sig(v, m);
		parse_sig(v, s);
		v->aars[i - 1] = aar_payload(&v->hdr, v->chain.aar[i]);
		v->sets[i - 1] = (struct arc_set){
			.instance = i, .cv = s->state == SIG_FAIL ? ARC_CV_FAIL : s->cv,
			.seal_domain = s->domain, .seal_selector = s->selector,
			.sig_domain = m->domain, .sig_selector = m->selector,
			.aar = v->aars[i - 1], .ams_ok = -1, .as_ok = -1,
		};
	}
	v->res.sets = v->sets;
	v->res.nsets = n;

	/* Step 2, then step 3.3: the cv= values. */
	if (v->as[n].state != SIG_FAIL && v->as[n].cv == ARC_CV_FAIL) {
		decide(v, ARC_CV_FAIL, "ARC-Seal i=%u says cv=fail: the chain failed before", n);
		return;
	}
	for (unsigned i = n; i >= 1; i--) {
		struct asig *s = &v->as[i];
		if (s->state == SIG_FAIL) {
			decide(v, ARC_CV_FAIL, "ARC-Seal i=%u: %s", i, s->reason);
			return;
		}
		if (s->cv == ARC_CV_FAIL || (i == 1 && s->cv != ARC_CV_NONE) || (i > 1 && s->cv != ARC_CV_PASS)) {
			decide(v, ARC_CV_FAIL, "ARC-Seal i=%u has cv=%s (must be %s)", i, arc_cv_name(s->cv),
			       i == 1 ? "none" : "pass");
			return;
		}
	}
	if (v->ams[n].state == SIG_FAIL) {
		decide(v, ARC_CV_FAIL, "ARC-Message-Signature i=%u: %s", n, v->ams[n].reason);
		return;
	}

	/* Keys: the ones the result needs (every AS, the newest AMS) first,
	 * then those of the older AMS fields for oldest-pass, up to the bound.
	 * Body hashers likewise, the newest AMS first. */
	for (unsigned i = n; i >= 1; i--)
		v->as[i].key = (size_t)key_for(v, &v->as[i]);
	v->ams[n].key = (size_t)key_for(v, &v->ams[n]);
	v->ams[n].hasher = (size_t)hasher_for(v, &v->ams[n]);
	for (unsigned i = n - 1; i >= 1; i--) {
		struct asig *m = &v->ams[i];
		long k, h;
		if (m->state != SIG_PENDING)
			continue;
		k = key_for(v, m);
		h = k < 0 ? -1 : hasher_for(v, m);
		if (k < 0 || h < 0) {
			snprintf(m->reason, sizeof m->reason, "not checked (%s)",
				 k < 0 ? "too many key records" : "too many body canonicalizations");
			m->state = SIG_SKIPPED;
			continue;
		}
		m->key = (size_t)k;
		m->hasher = (size_t)h;
	}
	v->hash_body = v->nhashers > 0;
}

struct arc_verifier *arc_verifier_new(int64_t now)
{
	struct arc_verifier *v = xcalloc(1, sizeof *v);
	v->now = now;
	msg_headers_init(&v->hdr);
	return v;
}

void arc_verifier_feed(struct arc_verifier *v, const char *data, size_t len)
{
	if (v->ended)
		return;
	if (!v->headers_done) {
		size_t n = msg_headers_feed(&v->hdr, data, len);
		if (v->hdr.complete)
			on_headers(v);
		data += n;
		len -= n;
	}
	if (len && v->hash_body)
		for (size_t i = 0; i < v->nhashers; i++)
			msg_bodyhash_feed(v->hashers[i], data, len);
}

/* 6.1.3 step 2 of RFC 6376 for an AMS whose header signature is good. */
static void finish_body(struct arc_verifier *v, struct asig *m)
{
	const unsigned char *digest = v->digests[m->hasher];
	uint64_t body_len = v->body_lens[m->hasher];
	if (m->l >= 0 && (uint64_t)m->l > body_len) {
		sig_fail(m, "l= is larger than the body");
		return;
	}
	if (CRYPTO_memcmp(digest, m->bh, 32) != 0) {
		sig_fail(m, "body hash mismatch");
		return;
	}
	m->state = SIG_PASS;
}

/* Steps 4-7, once every key is answered and the message has ended. */
static void compute_result(struct arc_verifier *v)
{
	unsigned n = v->n;
	if (v->result_ready || !v->ended || v->nanswers < v->nkeys)
		return;
	v->result_ready = 1;
	for (unsigned i = 1; i <= n; i++) {
		v->sets[i - 1].ams_ok = v->ams[i].state == SIG_PASS ? 1 : v->ams[i].state == SIG_FAIL ? 0 : -1;
		v->sets[i - 1].as_ok = v->as[i].state == SIG_PASS ? 1 : v->as[i].state == SIG_FAIL ? 0 : -1;
	}
	if (v->decided)
		return;
	if (v->ams[n].state != SIG_PASS) {
		v->res.temperror = v->ams[n].dns_error;
		decide(v, ARC_CV_FAIL, "ARC-Message-Signature i=%u: %s", n, v->ams[n].reason);
		return;
	}
	v->res.oldest_pass = 0;
	for (unsigned m = n - 1; m >= 1; m--) {
		if (v->ams[m].state != SIG_PASS) {
			v->res.oldest_pass = m + 1;
			break;
		}
	}
	for (unsigned i = n; i >= 1; i--) {
		if (v->as[i].state != SIG_PASS) {
			v->res.temperror = v->as[i].dns_error;
			v->res.oldest_pass = 0;
			decide(v, ARC_CV_FAIL, "ARC-Seal i=%u: %s", i, v->as[i].reason);
			return;
		}
	}
	decide(v, ARC_CV_PASS, "ok");
}

void arc_verifier_end(struct arc_verifier *v)
{
	if (v->ended)
		return;
	if (!v->headers_done) {
		msg_headers_end(&v->hdr);
		on_headers(v);
	}
	v->ended = 1;
	for (size_t i = 0; i < v->nhashers; i++)
		msg_bodyhash_final(v->hashers[i], v->digests[i], &v->body_lens[i]);
	for (unsigned i = 1; i <= v->n; i++)
		if (v->ams[i].state == SIG_HEADER_OK)
			finish_body(v, &v->ams[i]);
	compute_result(v);
}

int arc_verifier_headers_done(const struct arc_verifier *v)
{
	return v->headers_done;
}

size_t arc_verifier_key_count(const struct arc_verifier *v)
{
	return v->nkeys;
}

const char *arc_verifier_key_name(const struct arc_verifier *v, size_t k)
{
	return k < v->nkeys ? v->keys[k].name : NULL;
}

size_t arc_verifier_key_answers(const struct arc_verifier *v)
{
	return v->nanswers;
}

/* The AMS header hash: the h= fields and the AMS itself with b= emptied,
 * without its final CRLF (RFC 6376 3.7). */
static void ams_hash(struct arc_verifier *v, struct asig *s, unsigned char *out)
{
	msg_signed_header_hash(&v->hdr, s->hc, s->names, s->namelens, s->nnames, s->field, s->b_cut_start,
			       s->b_cut_end, out);
}

static void canon_field(const struct msg_headers *h, long i, struct msg_buf *b)
{
	msg_canon_header(MSG_CANON_RELAXED, h->buf + h->fields[i].off, h->fields[i].len, 0, b);
}

/* 5.1.1: the AS header hash: the sets 1..i in order, AAR, AMS, AS each,
 * relaxed, the AS being verified last with b= emptied and no CRLF. */
static void as_hash(struct arc_verifier *v, struct asig *s, unsigned char *out)
{
	struct msg_buf b = { 0 };
	const char *raw;
	size_t rawlen;
	char *sigf;
	for (unsigned j = 1; j <= s->instance; j++) {
		canon_field(&v->hdr, v->chain.aar[j], &b);
		canon_field(&v->hdr, v->chain.ams[j], &b);
		if (j < s->instance)
			canon_field(&v->hdr, v->chain.as[j], &b);
	}
	raw = msg_field_raw(&v->hdr, s->field, &rawlen);
	sigf = xmalloc(rawlen + 1);
	memcpy(sigf, raw, s->b_cut_start);
	memcpy(sigf + s->b_cut_start, raw + s->b_cut_end, rawlen - s->b_cut_end);
	msg_canon_header(MSG_CANON_RELAXED, sigf, s->b_cut_start + rawlen - s->b_cut_end, 1, &b);
	free(sigf);
	msg_digest(MSG_HASH_SHA256, b.data, b.len, out);
	msg_buf_clear(&b);
}


/* RFC 6376 6.1.2 and 6.1.3 step 1 with one key record. */
static void check_with_key(struct arc_verifier *v, struct asig *s, const struct dkim_key *k)
{
	unsigned char hash[32];
	if (k->revoked) {
		sig_fail(s, "key revoked (empty p=)");
		return;
	}
	if ((k->type == DKIM_KEY_ED25519) != s->ed25519) {
		sig_fail(s, "key type (k=) does not match a=");
		return;
	}
	if (!k->sha256_ok) {
		sig_fail(s, "the key does not allow sha256 (h=)");
		return;
	}
	if (k->type == DKIM_KEY_RSA && k->bits < DKIM_MIN_RSA_BITS) {
		sig_fail(s, "RSA key of %u bits (RFC 8301 wants 1024 or more)", k->bits);
		return;
	}
	if (s->kind == ARC_AS)
		as_hash(v, s, hash);
	else
		ams_hash(v, s, hash);
	if (!dkim_verify_hash(k->pkey, s->ed25519, s->b, s->blen, hash)) {
		sig_fail(s, "signature did not verify");
		return;
	}
	if (s->kind == ARC_AS) {
		s->state = SIG_PASS;
	} else {
		s->state = SIG_HEADER_OK;
		if (v->ended)
			finish_body(v, s);
	}
}

/* Every pending signature using key k. */
static void for_key(struct arc_verifier *v, size_t k, void (*fn)(struct arc_verifier *, struct asig *, void *),
		    void *arg)
{
	for (unsigned i = 1; i <= v->n; i++) {
		if (v->as[i].key == k && v->as[i].state == SIG_PENDING)
			fn(v, &v->as[i], arg);
		if (v->ams[i].key == k && v->ams[i].state == SIG_PENDING)
			fn(v, &v->ams[i], arg);
	}
}

static void fail_dns(struct arc_verifier *v, struct asig *s, void *arg)
{
	(void)v;
	s->dns_error = 1;
	sig_fail(s, "DNS failure looking up the key (%s)", (const char *)arg);
}

static void fail_reason(struct arc_verifier *v, struct asig *s, void *arg)
{
	(void)v;
	sig_fail(s, "%s", (const char *)arg);
}

static void use_key(struct arc_verifier *v, struct asig *s, void *arg)
{
	check_with_key(v, s, arg);
}

void arc_verifier_key_answer(struct arc_verifier *v, size_t k, enum dns_status st, const struct dns_answer *a)
{
	struct dkim_key key = { 0 };
	const char *why = NULL;
	char reason[160];
	size_t found = 0;

	if (k >= v->nkeys || v->keys[k].answered)
		return;
	v->keys[k].answered = 1;
	v->nanswers++;
	if (st == DNS_TEMPFAIL || st == DNS_TIMEOUT) {
		for_key(v, k, fail_dns, (void *)dns_status_name(st));
		goto out;
	}
	if (st != DNS_ANSWER || !a || a->nrrs == 0) {
		snprintf(reason, sizeof reason, "no key at %s", v->keys[k].name);
		for_key(v, k, fail_reason, reason);
		goto out;
	}
	/* RFC 6376 3.6.2.2: one record; records that are no key are skipped. */
	for (size_t i = 0; i < a->nrrs; i++) {
		const struct dns_rr *rr = &a->rrs[i];
		struct dkim_key tmp;
		const char *w;
		if (rr->type != DNS_T_TXT || !rr->data)
			continue;
		if (dkim_key_parse((const char *)rr->data, rr->len, &tmp, &w) == 0) {
			if (found++ == 0)
				key = tmp;
			else
				dkim_key_clear(&tmp);
		} else if (!why) {
			why = w;
		}
	}
	if (found != 1) {
		if (found > 1)
			snprintf(reason, sizeof reason, "more than one key record at %s", v->keys[k].name);
		else
			snprintf(reason, sizeof reason, "bad key record: %s", why ? why : "no TXT data");
		for_key(v, k, fail_reason, reason);
		dkim_key_clear(&key);
		goto out;
	}
	for_key(v, k, use_key, &key);
	dkim_key_clear(&key);
out:
	compute_result(v);
}

int arc_verifier_done(const struct arc_verifier *v)
{
	return v->result_ready;
}

const struct arc_result *arc_verifier_result(const struct arc_verifier *v)
{
	return v->result_ready ? &v->res : NULL;
}

const struct msg_headers *arc_verifier_headers(const struct arc_verifier *v)
{
	return &v->hdr;
}

static void sig_clear(struct asig *s)
{
	free(s->b);
	free(s->names_buf);
	free(s->names);
	free(s->namelens);
	free(s->domain);
	free(s->selector);
}

void arc_verifier_free(struct arc_verifier *v)
{
	if (!v)
		return;
	for (unsigned i = 1; i <= v->n; i++) {
		sig_clear(&v->ams[i]);
		sig_clear(&v->as[i]);
		free(v->aars[i - 1]);
	}
	free(v->ams);
	free(v->as);
	free(v->sets);
	free(v->aars);
	for (size_t k = 0; k < v->nkeys; k++)
		free(v->keys[k].name);
	free(v->keys);
	for (size_t i = 0; i < v->nhashers; i++)
		msg_bodyhash_free(v->hashers[i]);
	msg_headers_clear(&v->hdr);
	free(v);
}

void arc_result_authres(const struct arc_result *r, char *out, size_t outsize)
{
	if (r->cv == ARC_CV_PASS)
		snprintf(out, outsize, "arc=pass header.oldest-pass=%u", r->oldest_pass);
	else
		snprintf(out, outsize, "arc=%s", arc_cv_name(r->cv));
}

/* ---- the asynchronous driver ------------------------------------------- */

struct arc_job {
	struct dns_batch *batch;
	struct arc_verifier *v;
	arc_done_cb cb;
	void *arg;
};

static void on_key(void *owner, size_t key, const struct dns_result *res)
{
	struct arc_job *job = owner;
	arc_verifier_key_answer(job->v, key, res->status, res->answer);
}

static void job_finish(void *owner)
{
	struct arc_job *job = owner;
	arc_done_cb cb = job->cb;
	void *cbarg = job->arg;
	struct arc_verifier *v = job->v;
	dns_batch_free(job->batch);
	free(job);
	cb(cbarg, v);
}

struct arc_job *arc_verify_async(struct dns *dns, struct arc_verifier *v, arc_done_cb cb, void *arg)
{
	struct arc_job *job = xcalloc(1, sizeof *job);
	job->v = v;
	job->cb = cb;
	job->arg = arg;
	job->batch = dns_batch_new(dns, on_key, job_finish, job);
	for (size_t k = 0; k < v->nkeys; k++)
		if (!v->keys[k].answered)
			dns_batch_ask(job->batch, v->keys[k].name, DNS_T_TXT, k);
	dns_batch_wait(job->batch);
	return job;
}

void arc_job_cancel(struct arc_job *job)
{
	if (!job)
		return;
	dns_batch_free(job->batch);
	free(job);
}

/* ---- sealing keys --------------------------------------------------------- */

struct arc_sign_key {
	struct dkim_sign_key *dk; /* names, algorithm, record; the key rules */
	EVP_PKEY *pkey;           /* our own reference, for signing */
	int ed25519;
};

static void ossl_err(char *err, size_t errsize, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(err, errsize, "%s%s%s", what, *buf ? ": " : "", buf);
}

struct arc_sign_key *arc_sign_key_new(const char *domain, const char *selector, void *evp_pkey, char *err,
				      size_t errsize)
{
	EVP_PKEY *pkey = evp_pkey;
	struct dkim_sign_key *dk;
	struct arc_sign_key *k;
	if (EVP_PKEY_up_ref(pkey) != 1)
		abort();
	dk = dkim_sign_key_new(domain, selector, pkey, err, errsize); /* takes one reference */
	if (!dk) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	k = xcalloc(1, sizeof *k);
	k->dk = dk;
	k->pkey = pkey;
	k->ed25519 = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
	return k;
}

struct arc_sign_key *arc_sign_key_load(const char *domain, const char *selector, const char *path, char *err,
				       size_t errsize)
{
	char what[600];
	EVP_PKEY *pkey;
	BIO *bio = BIO_new_file(path, "r");
	if (!bio) {
		snprintf(what, sizeof what, "cannot open %s", path);
		ossl_err(err, errsize, what);
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pkey) {
		snprintf(what, sizeof what, "%s holds no PEM private key", path);
		ossl_err(err, errsize, what);
		return NULL;
	}
	return arc_sign_key_new(domain, selector, pkey, err, errsize);
}

const struct dkim_sign_key *arc_sign_key_dkim(const struct arc_sign_key *k)
{
	return k->dk;
}

void arc_sign_key_free(struct arc_sign_key *k)
{
	if (!k)
		return;
	dkim_sign_key_free(k->dk);
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* Signs hash (32 bytes); returns the signature's base64, newly allocated,
 * or NULL with a message in err. */
static char *sign_hash(const struct arc_sign_key *k, const unsigned char *hash, char *err, size_t errsize)
{
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *b64;
	if (k->ed25519) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		siglen = 64;
		sig = xmalloc(64);
		if (!m || EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, k->pkey, NULL) != 1 ||
		    EVP_DigestSign(m, sig, &siglen, hash, 32) != 1) {
			free(sig);
			sig = NULL;
		}
		EVP_MD_CTX_free(m);
	} else {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
		siglen = (size_t)EVP_PKEY_get_size(k->pkey);
		sig = xmalloc(siglen);
		if (!c || EVP_PKEY_sign_init(c) != 1 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1 ||
		    EVP_PKEY_sign(c, sig, &siglen, hash, 32) != 1) {
			free(sig);
			sig = NULL;
		}
		EVP_PKEY_CTX_free(c);
	}
	if (!sig) {
		ossl_err(err, errsize, "signing failed");
		return NULL;
	}
	b64 = msg_base64_encode(sig, siglen);
	free(sig);
	return b64;
}

/* ---- the sealer ------------------------------------------------------------ */

#define FOLD_WIDTH 78

/* The fields the AMS signs by default, when present (those a DKIM signer
 * signs, RFC 6376 5.4), plus every List-* and DKIM-Signature (RFC 8617
 * 4.1.2: SHOULD include them). */
static const char *const default_fields[] = {
	"from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
	"mime-version", "content-type", "content-transfer-encoding", "content-id", "content-description",
	"resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-message-id",
	"in-reply-to", "references", "openpgp", "autocrypt", "dkim-signature",
};

struct arc_sealer {
	const struct arc_sign_key *key;
	char *authserv_id;
	int64_t now;
	int standard;
	char *hlist;  /* the h= list given, lower-cased, or NULL */
	struct msg_headers hdr;
	struct msg_bodyhash *bh;
	int ended;
	unsigned instance;
};

struct arc_sealer *arc_sealer_new(const struct arc_sign_key *key, const char *authserv_id, int64_t now)
{
	struct arc_sealer *s = xcalloc(1, sizeof *s);
	s->key = key;
	s->authserv_id = xstrdup(authserv_id);
	s->now = now;
	msg_headers_init(&s->hdr);
	s->bh = msg_bodyhash_new(MSG_CANON_RELAXED, MSG_HASH_SHA256, -1);
	return s;
}

static int forbidden_name(const char *n, size_t len)
{
	static const char *const bad[] = { "arc-seal", "arc-message-signature", "arc-authentication-results",
					   "authentication-results" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (len == strlen(bad[i]) && !str_casecmp_n(n, bad[i], len))
			return 1;
	return 0;
}

int arc_sealer_set_headers(struct arc_sealer *s, const char *list, char *err, size_t errsize)
{
	const char *p = list;
	size_t n = 0;
	if (s->hdr.len)
		abort(); /* a bug: the list comes before the message */
	if (!*list) {
		snprintf(err, errsize, "an empty header list");
		return -1;
	}
	while (*p) {
		const char *start = p;
		size_t len;
		while (*p && *p != ':')
			p++;
		len = (size_t)(p - start);
		if (len == 0) {
			snprintf(err, errsize, "an empty name in the header list");
			return -1;
		}
		if (++n > DKIM_MAX_SIGNED_FIELDS) {
			snprintf(err, errsize, "more than %d names in the header list", DKIM_MAX_SIGNED_FIELDS);
			return -1;
		}
		if (forbidden_name(start, len)) {
			snprintf(err, errsize, "the AMS must not sign %.*s (RFC 8617 4.1.2)", (int)len, start);
			return -1;
		}
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)start[i];
			if (c < 0x21 || c > 0x7e) {
				snprintf(err, errsize, "a header field name with a space or control byte");
				return -1;
			}
		}
		if (*p)
			p++;
	}
	if (p[-1] == ':') {
		snprintf(err, errsize, "an empty name in the header list");
		return -1;
	}
	free(s->hlist);
	s->hlist = str_lower(xstrdup(list));
	return 0;
}

void arc_sealer_set_standard_format(struct arc_sealer *s, int on)
{
	s->standard = on;
}

void arc_sealer_feed(struct arc_sealer *s, const char *data, size_t len)
{
	if (s->ended)
		return;
	if (!s->hdr.complete) {
		size_t n = msg_headers_feed(&s->hdr, data, len);
		data += n;
		len -= n;
	}
	if (len && s->hdr.status == MSG_OK)
		msg_bodyhash_feed(s->bh, data, len);
}

unsigned arc_sealer_instance(const struct arc_sealer *s)
{
	return s->instance;
}

void arc_sealer_free(struct arc_sealer *s)
{
	if (!s)
		return;
	free(s->authserv_id);
	free(s->hlist);
	msg_headers_clear(&s->hdr);
	msg_bodyhash_free(s->bh);
	free(s);
}

/* A growing list of strings. */
struct strlist {
	char **v;
	size_t n;
};

static void strlist_add(struct strlist *l, char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = s;
}

static void strlist_clear(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Splits an authres-payload into its results at the ';' outside quoted
 * strings and comments; each result's white space (folding included)
 * becomes single spaces, control bytes go, empty results and "none" are
 * dropped. */
static void split_results(const char *s, size_t n, struct strlist *out)
{
	size_t i = 0;
	while (i <= n) {
		struct msg_buf b = { 0 };
		int depth = 0, quoted = 0, space = 0;
		for (; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (!quoted && !depth && c == ';')
				break;
			if (quoted && c == '\\' && i + 1 < n) {
				msg_buf_append(&b, s + i, 2);
				i++;
				continue;
			}
			if (c == '"' && !depth)
				quoted = !quoted;
			else if (c == '(' && !quoted)
				depth = depth < 64 ? depth + 1 : depth;
			else if (c == ')' && !quoted && depth)
				depth--;
			if (is_fws(c)) {
				space = 1;
				continue;
			}
			if (c < 0x20 || c == 0x7f)
				continue;
			if (space && b.len)
				msg_buf_append(&b, " ", 1);
			space = 0;
			msg_buf_append(&b, s + i, 1);
		}
		i++;
		if (b.len && strcmp(b.data, "none"))
			strlist_add(out, b.data);
		else
			msg_buf_clear(&b);
	}
}

/* The results of the message's Authentication-Results fields of our
 * authserv-id, in order (the test suite's consolidation). */
static void message_results(const struct msg_headers *h, const char *authserv_id, struct strlist *out)
{
	for (size_t i = 0; i < h->nfields; i++) {
		char id[256];
		const char *val, *semi;
		size_t vlen;
		if (!msg_field_is(h, i, "Authentication-Results"))
			continue;
		val = msg_field_value(h, i, &vlen);
		if (authres_serv_id(val, vlen, id, sizeof id) < 0 || strcasecmp(id, authserv_id))
			continue;
		semi = memchr(val, ';', vlen);
		if (semi)
			split_results(semi + 1, vlen - (size_t)(semi + 1 - val), out);
	}
}

/* Folding, as dkim_sign.c does it: tokens go on the current line while it
 * stays within FOLD_WIDTH, else on a new line after CRLF TAB. */
struct fold {
	struct msg_buf b;
	size_t col;
	int standard; /* never fold */
};

static void fold_add(struct fold *f, const char *tok, size_t n, int space)
{
	if (!f->standard && f->col + (size_t)space + n > FOLD_WIDTH && f->col > 8) {
		msg_buf_append(&f->b, "\r\n\t", 3);
		f->col = 8;
	} else if (space) {
		msg_buf_append(&f->b, " ", 1);
		f->col++;
	}
	msg_buf_append(&f->b, tok, n);
	f->col += n;
}

static void fold_tag(struct fold *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fold_tag(struct fold *f, const char *fmt, ...)
{
	va_list ap;
	char *t;
	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) < 0)
		abort();
	va_end(ap);
	fold_add(f, t, strlen(t), 1);
	free(t);
}

static void fold_start(struct fold *f, const char *name, int standard)
{
	memset(f, 0, sizeof *f);
	f->standard = standard;
	msg_buf_append(&f->b, name, strlen(name));
	msg_buf_append(&f->b, ":", 1);
	f->col = strlen(name) + 1;
}

/* Appends base64 b64 to a folded field, broken into lines. */
static void fold_b64(struct fold *f, const char *b64)
{
	size_t pos = 0, len = strlen(b64);
	if (f->standard) {
		msg_buf_append(&f->b, b64, len);
		return;
	}
	while (pos < len) {
		size_t room = f->col < FOLD_WIDTH ? FOLD_WIDTH - f->col : 0, n;
		if (room < 8) {
			msg_buf_append(&f->b, "\r\n\t", 3);
			f->col = 8;
			room = FOLD_WIDTH - f->col;
		}
		n = len - pos < room ? len - pos : room;
		msg_buf_append(&f->b, b64 + pos, n);
		f->col += n;
		pos += n;
	}
}

/* The AMS h= names: the list given, or the default for this message. */
static void ams_names(const struct arc_sealer *s, struct strlist *names)
{
	const struct msg_headers *h = &s->hdr;
	if (s->hlist) {
		const char *p = s->hlist;
		while (*p) {
			const char *c = strchr(p, ':');
			size_t len = c ? (size_t)(c - p) : strlen(p);
			strlist_add(names, xstrndup(p, len));
			p += len + (c ? 1 : 0);
		}
		return;
	}
	for (size_t i = 0; i < h->nfields && names->n + 1 < DKIM_MAX_SIGNED_FIELDS; i++) {
		const struct msg_field *f = &h->fields[i];
		int sign = f->name_len > 5 && !str_casecmp_n(h->buf + f->off, "list-", 5);
		for (size_t k = 0; !sign && k < ARRAY_LEN(default_fields); k++)
			sign = msg_field_is(h, i, default_fields[k]);
		if (sign)
			strlist_add(names, str_lower(xstrndup(h->buf + f->off, f->name_len)));
	}
	strlist_add(names, xstrdup("from"));
}

static char *join_names(const struct strlist *names)
{
	struct msg_buf b = { 0 };
	for (size_t i = 0; i < names->n; i++) {
		if (i)
			msg_buf_append(&b, ":", 1);
		msg_buf_append(&b, names->v[i], strlen(names->v[i]));
	}
	msg_buf_append(&b, "", 0);
	return b.data;
}

/* 4.1.1: "ARC-Authentication-Results: i=N; authserv-id; result; ..." */
static char *seal_aar(const struct arc_sealer *s, const struct strlist *results)
{
	struct msg_buf b = { 0 };
	char *head = xasprintf("ARC-Authentication-Results: i=%u; %s", s->instance, s->authserv_id);
	msg_buf_append(&b, head, strlen(head));
	free(head);
	if (results->n == 0)
		msg_buf_append(&b, "; none", 6);
	for (size_t i = 0; i < results->n; i++) {
		msg_buf_append(&b, s->standard ? "; " : ";\r\n\t", s->standard ? 2 : 4);
		msg_buf_append(&b, results->v[i], strlen(results->v[i]));
	}
	return b.data;
}

/* 4.1.2: the AMS, signed over the h= fields of the message and itself. */
static char *seal_ams(const struct arc_sealer *s, const char *bh64, char *err, size_t errsize)
{
	const struct dkim_sign_key *dk = s->key->dk;
	struct strlist names = { 0 };
	struct msg_buf data = { 0 };
	const char **np;
	size_t *lens;
	long *picked;
	unsigned char hash[32];
	char *hl, *sig, *out = NULL;
	struct fold f;

	ams_names(s, &names);
	np = xcalloc(names.n + 1, sizeof *np);
	lens = xcalloc(names.n + 1, sizeof *lens);
	picked = xcalloc(names.n + 1, sizeof *picked);
	for (size_t i = 0; i < names.n; i++) {
		np[i] = names.v[i];
		lens[i] = strlen(names.v[i]);
	}
	msg_pick_fields(&s->hdr, np, lens, names.n, (size_t)-1, picked);
	for (size_t i = 0; i < names.n; i++)
		if (picked[i] >= 0)
			msg_canon_header(MSG_CANON_RELAXED, s->hdr.buf + s->hdr.fields[picked[i]].off,
					 s->hdr.fields[picked[i]].len, 0, &data);
	hl = join_names(&names);

	if (s->standard) {
		/* a, b, bh, c, d, h, i, s, t; b= filled in after hashing. */
		char *d = str_lower(xstrdup(dkim_sign_key_domain(dk))), *sel = str_lower(xstrdup(dkim_sign_key_selector(dk)));
		char *pre = xasprintf("ARC-Message-Signature: a=%s; b=", dkim_sign_key_algorithm(dk));
		char *post = xasprintf("; bh=%s; c=relaxed/relaxed; d=%s; h=%s; i=%u; s=%s; t=%lld", bh64, d, hl,
				       s->instance, sel, (long long)s->now);
		struct msg_buf whole = { 0 };
		msg_buf_append(&whole, pre, strlen(pre));
		msg_buf_append(&whole, post, strlen(post));
		msg_canon_header(MSG_CANON_RELAXED, whole.data, whole.len, 1, &data);
		msg_digest(MSG_HASH_SHA256, data.data, data.len, hash);
		sig = sign_hash(s->key, hash, err, errsize);
		if (sig)
			out = xasprintf("%s%s%s", pre, sig, post);
		free(sig);
		free(pre);
		free(post);
		free(d);
		free(sel);
		msg_buf_clear(&whole);
	} else {
		fold_start(&f, "ARC-Message-Signature", 0);
		fold_tag(&f, "i=%u;", s->instance);
		fold_tag(&f, "a=%s;", dkim_sign_key_algorithm(dk));
		fold_tag(&f, "c=relaxed/relaxed;");
		fold_tag(&f, "d=%s;", dkim_sign_key_domain(dk));
		fold_tag(&f, "s=%s;", dkim_sign_key_selector(dk));
		fold_tag(&f, "t=%lld;", (long long)s->now);
		for (size_t i = 0; i < names.n; i++) {
			char *tok = xasprintf("%s%s%s", i ? "" : "h=", names.v[i], i + 1 < names.n ? ":" : ";");
			fold_add(&f, tok, strlen(tok), i == 0);
			free(tok);
		}
		fold_tag(&f, "bh=%s;", bh64);
		fold_add(&f, "b=", 2, 1);
		msg_canon_header(MSG_CANON_RELAXED, f.b.data, f.b.len, 1, &data);
		msg_digest(MSG_HASH_SHA256, data.data, data.len, hash);
		sig = sign_hash(s->key, hash, err, errsize);
		if (sig) {
			fold_b64(&f, sig);
			out = f.b.data;
			f.b.data = NULL;
		}
		free(sig);
		msg_buf_clear(&f.b);
	}
	msg_buf_clear(&data);
	free(hl);
	free(np);
	free(lens);
	free(picked);
	strlist_clear(&names);
	return out;
}

/* 4.1.3, 5.1.1, 5.1.2: the AS over the earlier sets (none when the chain
 * failed) and ours. */
static char *seal_as(const struct arc_sealer *s, const struct arc_chain *c, enum arc_cv cv, const char *aar,
		     const char *ams, char *err, size_t errsize)
{
	const struct dkim_sign_key *dk = s->key->dk;
	struct msg_buf data = { 0 };
	unsigned char hash[32];
	char *sig, *out = NULL;

	if (cv != ARC_CV_FAIL) {
		for (unsigned j = 1; j < s->instance; j++) {
			canon_field(&s->hdr, c->aar[j], &data);
			canon_field(&s->hdr, c->ams[j], &data);
			canon_field(&s->hdr, c->as[j], &data);
		}
	}
	msg_canon_header(MSG_CANON_RELAXED, aar, strlen(aar), 0, &data);
	msg_canon_header(MSG_CANON_RELAXED, ams, strlen(ams), 0, &data);
	if (s->standard) {
		char *d = str_lower(xstrdup(dkim_sign_key_domain(dk))), *sel = str_lower(xstrdup(dkim_sign_key_selector(dk)));
		char *pre = xasprintf("ARC-Seal: a=%s; b=", dkim_sign_key_algorithm(dk));
		char *post = xasprintf("; cv=%s; d=%s; i=%u; s=%s; t=%lld", arc_cv_name(cv), d, s->instance, sel,
				       (long long)s->now);
		char *whole = xasprintf("%s%s", pre, post);
		msg_canon_header(MSG_CANON_RELAXED, whole, strlen(whole), 1, &data);
		msg_digest(MSG_HASH_SHA256, data.data, data.len, hash);
		sig = sign_hash(s->key, hash, err, errsize);
		if (sig)
			out = xasprintf("%s%s%s", pre, sig, post);
		free(sig);
		free(pre);
		free(post);
		free(whole);
		free(d);
		free(sel);
	} else {
		struct fold f;
		fold_start(&f, "ARC-Seal", 0);
		fold_tag(&f, "i=%u;", s->instance);
		fold_tag(&f, "a=%s;", dkim_sign_key_algorithm(dk));
		fold_tag(&f, "cv=%s;", arc_cv_name(cv));
		fold_tag(&f, "d=%s;", dkim_sign_key_domain(dk));
		fold_tag(&f, "s=%s;", dkim_sign_key_selector(dk));
		fold_tag(&f, "t=%lld;", (long long)s->now);
		fold_add(&f, "b=", 2, 1);
		msg_canon_header(MSG_CANON_RELAXED, f.b.data, f.b.len, 1, &data);
		msg_digest(MSG_HASH_SHA256, data.data, data.len, hash);
		sig = sign_hash(s->key, hash, err, errsize);
		if (sig) {
			fold_b64(&f, sig);
			out = f.b.data;
			f.b.data = NULL;
		}
		free(sig);
		msg_buf_clear(&f.b);
	}
	msg_buf_clear(&data);
	return out;
}

/* 1 when the newest AS of the message says cv=fail. */
static int chain_terminated(const struct msg_headers *h, const struct arc_chain *c)
{
	struct dkim_tags tags;
	const struct dkim_tag *t;
	const char *val, *why;
	size_t vlen;
	if (c->n == 0 || c->as[c->n] < 0)
		return 0;
	val = msg_field_value(h, (size_t)c->as[c->n], &vlen);
	return dkim_tags_parse(val, vlen, &tags, &why) == 0 && (t = dkim_tags_get(&tags, "cv")) && tag_eq(t, "fail");
}

static int valid_authserv_id(const char *s)
{
	if (!*s || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || strchr(";()\"\\", *s))
			return 0;
	return 1;
}

static char *with_line_endings(char *s, int crlf)
{
	size_t o = 0;
	if (crlf)
		return s;
	for (size_t i = 0; s[i]; i++)
		if (!(s[i] == '\r' && s[i + 1] == '\n'))
			s[o++] = s[i];
	s[o] = '\0';
	return s;
}

char *arc_sealer_end(struct arc_sealer *s, enum arc_cv cv, const char *results, int crlf, char *err,
		     size_t errsize)
{
	struct arc_chain chain;
	struct strlist res = { 0 };
	unsigned char bh[MSG_HASH_MAX];
	char *bh64 = NULL, *aar = NULL, *ams = NULL, *as = NULL, *out = NULL;
	const char *why, *problem;
	int rc;

	if (s->ended) {
		snprintf(err, errsize, "arc_sealer_end called twice");
		return NULL;
	}
	s->ended = 1;
	msg_headers_end(&s->hdr);
	msg_bodyhash_final(s->bh, bh, NULL);
	if ((problem = header_problem(&s->hdr))) {
		snprintf(err, errsize, "cannot seal: %s", problem);
		return NULL;
	}
	if (!valid_authserv_id(s->authserv_id)) {
		snprintf(err, errsize, "the authserv-id is not a token");
		return NULL;
	}
	rc = arc_chain_collect(&s->hdr, &chain, &why);
	if (chain_terminated(&s->hdr, &chain))
		return xstrdup(""); /* 5.1.3: a failed chain is not continued */
	if (chain.nfields == 0 && cv != ARC_CV_NONE) {
		snprintf(err, errsize, "the message has no ARC chain: cv must be none");
		return NULL;
	}
	if (chain.nfields && cv == ARC_CV_NONE) {
		snprintf(err, errsize, "the message has ARC header fields: cv must be pass or fail");
		return NULL;
	}
	if (cv == ARC_CV_PASS && rc < 0) {
		snprintf(err, errsize, "the chain is broken (%s): it can only be sealed with cv=fail", why);
		return NULL;
	}
	if (chain.n >= ARC_MAX_INSTANCES) {
		snprintf(err, errsize, "the chain has %d sets already", ARC_MAX_INSTANCES);
		return NULL;
	}
	s->instance = chain.n + 1;
	if (results)
		split_results(results, strlen(results), &res);
	else
		message_results(&s->hdr, s->authserv_id, &res);

	bh64 = msg_base64_encode(bh, 32);
	aar = seal_aar(s, &res);
	ams = seal_ams(s, bh64, err, errsize);
	if (ams)
		as = seal_as(s, &chain, cv, aar, ams, err, errsize);
	if (as)
		out = with_line_endings(xasprintf("%s\r\n%s\r\n%s\r\n", as, ams, aar), crlf);
	else
		s->instance = 0;
	free(bh64);
	free(aar);
	free(ams);
	free(as);
	strlist_clear(&res);
	return out;
}
