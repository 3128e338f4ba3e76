/*
 * dkim: verification; see dkim.h. RFC 6376 sections:
 *
 *   3.2    tag-lists                          dkim_tags_parse()
 *   3.5    the DKIM-Signature field           parse_sig()
 *   3.6.1  key records                        dkim_key_parse()
 *   3.7    the hashes                         header_hash(), body hashers
 *   5.4.2  oversigned fields                  msg_pick_fields() (msg.c)
 *   6.1.1  validating the signature field     parse_sig()
 *   6.1.2  getting the key                    key_answer_one()
 *   6.1.3  computing the verification         check_header(), finish()
 *   RFC 8301  rsa-sha1 and short RSA keys     parse_sig(), key checks
 *   RFC 8463  ed25519-sha256                  verify_sig()
 *
 * A signature's life: parsed when the header block completes (a malformed
 * one is decided there and needs no key); its key answer checks the key and
 * the header signature at once; the body hash, shared with every signature
 * of the same (canonicalisation, hash, l=), is compared when the message
 * ends. The outcome is final when both the answer and the end are in.
 */
#include "dkim.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dns/batch.h"
#include "lib/util.h"

const char *dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = { "none", "pass", "fail", "neutral", "policy", "temperror", "permerror" };
	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

/* ---- tag-lists ----------------------------------------------------------- */

static int is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(int c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out, const char **why)
{
	size_t i = 0;
	out->n = 0;
	for (;;) {
		size_t name, name_len, vstart, vend;
		while (i < len && is_fws((unsigned char)s[i]))
			i++;
		if (i == len)
			return 0; /* the end, or after a final ";" */
		/* tag-name = ALPHA *ALNUMPUNC */
		if (!is_alpha((unsigned char)s[i])) {
			*why = "bad tag name";
			return -1;
		}
		name = i;
		while (i < len && (is_alnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		name_len = i - name;
		while (i < len && is_fws((unsigned char)s[i]))
			i++;
		if (i == len || s[i] != '=') {
			*why = "tag without '='";
			return -1;
		}
		i++;
		while (i < len && is_fws((unsigned char)s[i]))
			i++;
		vstart = vend = i;
		while (i < len && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			if (!is_fws(c)) {
				/* VALCHAR = %x21-3A / %x3C-7E; UTF-8 is let through
				 * (RFC 8616). */
				if (c < 0x21 || c == 0x7f) {
					*why = "bad character in a tag value";
					return -1;
				}
				vend = i + 1;
			}
			i++;
		}
		for (size_t k = 0; k < out->n; k++) {
			if (out->tag[k].name_len == name_len && !memcmp(out->tag[k].name, s + name, name_len)) {
				*why = "duplicate tag";
				return -1;
			}
		}
		if (out->n == DKIM_MAX_TAGS) {
			*why = "too many tags";
			return -1;
		}
		out->tag[out->n].name = s + name;
		out->tag[out->n].name_len = name_len;
		out->tag[out->n].value = s + vstart;
		out->tag[out->n].value_len = vend - vstart;
		out->n++;
		if (i == len)
			return 0;
		i++; /* ';' */
	}
}

const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < t->n; i++)
		if (t->tag[i].name_len == n && !memcmp(t->tag[i].name, name, n))
			return &t->tag[i];
	return NULL;
}

static int tag_is(const struct dkim_tag *t, const char *v)
{
	size_t n = strlen(v);
	return t->value_len == n && str_casecmp_n(t->value, v, n) == 0;
}

/* Splits a colon-separated list value (h=, q=, s=, t= and h= of keys) and
 * says whether it holds item (case-insensitive). */
static int list_has(const struct dkim_tag *t, const char *item)
{
	size_t n = strlen(item), i = 0;
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
		if (end - start == n && str_casecmp_n(t->value + start, item, n) == 0)
			return 1;
		i++;
	}
	return 0;
}

int dkim_valid_name(const char *s, size_t len)
{
	size_t label = 0;
	if (len && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (is_alnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* ---- key records ----------------------------------------------------------- */

void dkim_key_clear(struct dkim_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, const char **why)
{
	struct dkim_tags tags;
	const struct dkim_tag *t;
	unsigned char raw[DKIM_MAX_KEY_BYTES];
	long n;

	memset(out, 0, sizeof *out);
	out->sha1_ok = out->sha256_ok = 1;
	if (memchr(txt, '\0', len)) {
		*why = "NUL in the key record";
		return -1;
	}
	if (dkim_tags_parse(txt, len, &tags, why) < 0)
		return -1;
	if ((t = dkim_tags_get(&tags, "v"))) {
		/* 3.6.1: if present, first, and exactly "DKIM1". */
		if (t != &tags.tag[0] || t->value_len != 5 || memcmp(t->value, "DKIM1", 5)) {
			*why = "bad v= in the key record";
			return -1;
		}
	}
	out->type = DKIM_KEY_RSA;
	if ((t = dkim_tags_get(&tags, "k"))) {
		if (tag_is(t, "rsa"))
			out->type = DKIM_KEY_RSA;
		else if (tag_is(t, "ed25519"))
			out->type = DKIM_KEY_ED25519;
		else {
			*why = "unknown key type (k=)";
			return -1;
		}
	}
	if ((t = dkim_tags_get(&tags, "h"))) {
		out->sha1_ok = list_has(t, "sha1");
		out->sha256_ok = list_has(t, "sha256");
	}
	if ((t = dkim_tags_get(&tags, "s")) && !list_has(t, "*") && !list_has(t, "email")) {
		*why = "the key is not for email (s=)";
		return -1;
	}
	if ((t = dkim_tags_get(&tags, "t"))) {
		out->testing = list_has(t, "y");
		out->strict = list_has(t, "s");
	}
	t = dkim_tags_get(&tags, "p");
	if (!t) {
		*why = "key record without p=";
		return -1;
	}
	n = msg_base64_decode(t->value, t->value_len, raw, sizeof raw);
	if (n < 0) {
		*why = "malformed p= (base64)";
		return -1;
	}
	if (n == 0) {
		out->revoked = 1;
		return 0;
	}
	if (out->type == DKIM_KEY_RSA) {
		const unsigned char *p = raw;
		EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, n);
		if (pk && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
			EVP_PKEY_free(pk);
			*why = "p= is not an RSA key";
			return -1;
		}
		if (!pk) {
			/* Some publish the bare RSAPublicKey (PKCS#1). */
			p = raw;
			pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, n);
		}
		if (!pk) {
			*why = "p= is not an RSA public key";
			return -1;
		}
		out->pkey = pk;
		out->bits = (unsigned)EVP_PKEY_get_bits(pk);
	} else {
		/* RFC 8463 section 4: the bare 32-byte public key. */
		if (n != 32) {
			*why = "p= is not a 32-byte Ed25519 key";
			return -1;
		}
		out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
		if (!out->pkey) {
			*why = "p= is not an Ed25519 key";
			return -1;
		}
		out->bits = 256;
	}
	return 0;
}

/* A small cache of parsed key records: OpenSSL 3 decodes an RSA public key
 * in about 70 microseconds, five times what verifying with it costs, and a
 * server sees the same few keys over and over. Entries are keyed by the
 * exact record text; a parsed key is immutable, so a hit hands out another
 * reference to the same EVP_PKEY. Only successful parses are kept. */
#define KEY_CACHE_SIZE 64

struct key_cache_entry {
	char *txt;
	size_t len;
	uint64_t hash, used;
	struct dkim_key key;
};

static struct key_cache_entry key_cache[KEY_CACHE_SIZE];
static uint64_t key_cache_clock;
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* A cheap fingerprint for the lookup (equality is checked with memcmp):
 * the length and the last 32 bytes, where key records differ (the end of
 * p=). Hashing all of a 400-byte record cost more than the lookup saves. */
static uint64_t record_fingerprint(const char *s, size_t n)
{
	uint64_t h = n * 0x9e3779b97f4a7c15ull;
	size_t from = n > 32 ? n - 32 : 0;
	for (size_t i = from; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static int key_parse_cached(const char *txt, size_t len, struct dkim_key *out, const char **why)
{
	uint64_t h = record_fingerprint(txt, len);
	struct key_cache_entry *victim = &key_cache[0];
	pthread_mutex_lock(&key_cache_lock);
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		struct key_cache_entry *e = &key_cache[i];
		if (e->txt && e->hash == h && e->len == len && !memcmp(e->txt, txt, len)) {
			*out = e->key;
			if (out->pkey)
				EVP_PKEY_up_ref(out->pkey);
			e->used = ++key_cache_clock;
			pthread_mutex_unlock(&key_cache_lock);
			return 0;
		}
		if (e->used < victim->used)
			victim = e;
	}
	pthread_mutex_unlock(&key_cache_lock);
	if (dkim_key_parse(txt, len, out, why) < 0)
		return -1;
	pthread_mutex_lock(&key_cache_lock);
	free(victim->txt);
	dkim_key_clear(&victim->key);
	victim->txt = xmalloc(len + 1);
	memcpy(victim->txt, txt, len);
	victim->txt[len] = '\0';
	victim->len = len;
	victim->hash = h;
	victim->used = ++key_cache_clock;
	victim->key = *out;
	if (out->pkey)
		EVP_PKEY_up_ref(out->pkey);
	pthread_mutex_unlock(&key_cache_lock);
	return 0;
}

/* ---- signatures ----------------------------------------------------------- */

enum alg { ALG_RSA_SHA256, ALG_ED25519_SHA256, ALG_RSA_SHA1 };

struct sig {
	size_t field;     /* index of the DKIM-Signature field */
	int decided;      /* the outcome is final */
	int waiting_key;  /* key_name set, answer not given yet */
	int header_ok;    /* key checks and header signature passed; the body remains */
	enum alg alg;
	enum msg_canon hc, bc;
	unsigned char bh[MSG_HASH_MAX];
	size_t bhlen;
	unsigned char *b;
	size_t blen;
	char *names_buf;  /* h= names, NUL-separated */
	const char **names;
	size_t *namelens;
	size_t nnames;
	size_t b_cut_start, b_cut_end; /* the b= value in the raw field */
	int64_t l;
	char *domain, *identity, *selector, *algorithm, *key_name;
	size_t hasher;    /* index into v->hashers, or (size_t)-1 */
	int testing;
	char reason[128];
	struct dkim_outcome out;
};

struct dkim_verifier {
	unsigned max;
	int64_t now;
	struct msg_headers hdr;
	int headers_done, ended;
	int hash_body;
	struct sig *sigs;
	size_t nsigs;
	struct msg_bodyhash **hashers;
	size_t nhashers;
	unsigned char (*digests)[MSG_HASH_MAX];
	uint64_t *body_lens;
};

static void decide(struct sig *s, enum dkim_result r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void decide(struct sig *s, enum dkim_result r, const char *fmt, ...)
{
	va_list ap;
	if (s->decided)
		return;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof s->reason, fmt, ap);
	va_end(ap);
	if (r == DKIM_FAIL && s->testing) {
		/* RFC 6376 3.6.1 t=y: treat as unsigned, not as a failure. */
		r = DKIM_NEUTRAL;
		size_t n = strlen(s->reason);
		snprintf(s->reason + n, sizeof s->reason - n, " (key in testing mode)");
	}
	s->out.result = r;
	s->out.reason = s->reason;
	s->decided = 1;
	s->waiting_key = 0;
	s->header_ok = 0;
}

/* A copy of a tag value, lower-cased when asked. White space inside is
 * kept: in d=, s=, a= and c= it makes the value invalid. */
static char *value_copy(const struct dkim_tag *t, int lower)
{
	char *o = xmalloc(t->value_len + 1);
	size_t k = 0;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		o[k++] = lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	o[k] = '\0';
	return o;
}

/* A decimal tag value of at most maxdigits digits, saturating at INT64_MAX.
 * Returns -1 for anything else. */
static int64_t parse_num(const struct dkim_tag *t, size_t maxdigits)
{
	int64_t v = 0;
	if (t->value_len == 0 || t->value_len > maxdigits)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		if (t->value[i] < '0' || t->value[i] > '9')
			return -1;
		if (v > (INT64_MAX - 9) / 10)
			v = INT64_MAX;
		else
			v = v * 10 + (t->value[i] - '0');
	}
	return v;
}

static int is_subdomain_or_equal(const char *name, const char *domain)
{
	size_t ln = strlen(name), ld = strlen(domain);
	if (ln == ld)
		return !strcasecmp(name, domain);
	return ln > ld && name[ln - ld - 1] == '.' && !strcasecmp(name + ln - ld, domain);
}

/* Parses the h= list into s->names. Returns 0 or -1. */
static int parse_names(struct sig *s, const struct dkim_tag *t)
{
	size_t i = 0, n = 0, o = 0, max = 1;
	/* As many names as colons plus one (bounded): the arrays are sized
	 * exactly, not for the bound (8 KiB to clear per signature). */
	for (size_t k = 0; k < t->value_len; k++)
		max += t->value[k] == ':';
	if (max > DKIM_MAX_SIGNED_FIELDS)
		max = DKIM_MAX_SIGNED_FIELDS;
	s->names_buf = xmalloc(t->value_len + 1);
	s->names = xmalloc(max * sizeof *s->names);
	s->namelens = xmalloc(max * sizeof *s->namelens);
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
		if (end == start || n == max)
			return -1;
		for (size_t k = start; k < end; k++)
			if ((unsigned char)t->value[k] < 0x21 || (unsigned char)t->value[k] > 0x7e || t->value[k] == ':')
				return -1;
		memcpy(s->names_buf + o, t->value + start, end - start);
		s->names[n] = s->names_buf + o;
		s->namelens[n] = end - start;
		o += end - start;
		s->names_buf[o++] = '\0';
		n++;
		i++;
	}
	s->nnames = n;
	return 0;
}

/* 6.1.1: validates signature field s->field and fills s. Leaves s decided
 * (permerror or policy) when it cannot be used. */
static void parse_sig(struct dkim_verifier *v, struct sig *s)
{
	struct dkim_tags tags;
	const struct dkim_tag *t;
	const char *why, *val, *raw;
	size_t vlen, rawlen;
	int from = 0;
	int64_t ts = -1, xs = -1;

	s->l = -1;
	s->hasher = (size_t)-1;
	s->domain = xstrdup("");
	s->identity = xstrdup("");
	s->selector = xstrdup("");
	s->algorithm = xstrdup("");
	s->out.body_length = -1;
	val = msg_field_value(&v->hdr, s->field, &vlen);
	raw = msg_field_raw(&v->hdr, s->field, &rawlen);
	if (dkim_tags_parse(val, vlen, &tags, &why) < 0) {
		decide(s, DKIM_PERMERROR, "malformed signature: %s", why);
		return;
	}
	/* What identifies the signature, for the report, before any check. */
	if ((t = dkim_tags_get(&tags, "d"))) {
		free(s->domain);
		s->domain = value_copy(t, 1);
	}
	if ((t = dkim_tags_get(&tags, "s"))) {
		free(s->selector);
		s->selector = value_copy(t, 0);
	}
	if ((t = dkim_tags_get(&tags, "a"))) {
		free(s->algorithm);
		s->algorithm = value_copy(t, 1);
	}
	if ((t = dkim_tags_get(&tags, "i"))) {
		free(s->identity);
		s->identity = value_copy(t, 0);
	} else if (*s->domain) {
		free(s->identity);
		s->identity = xasprintf("@%s", s->domain);
	}
	if ((t = dkim_tags_get(&tags, "b"))) {
		size_t k = 0;
		for (size_t i = 0; i < t->value_len && k < 8; i++)
			if (!is_fws((unsigned char)t->value[i]))
				s->out.header_b[k++] = t->value[i];
		s->out.header_b[k] = '\0';
		/* The part removed for the hash: from after '=' to the ';' or
		 * the end, white space included (3.5, b=). */
		{
			size_t start = (size_t)(t->value - raw), end = start + t->value_len;
			while (start > 0 && raw[start - 1] != '=')
				start--;
			while (end < rawlen && raw[end] != ';')
				end++;
			s->b_cut_start = start;
			s->b_cut_end = end;
		}
	}

	if (!(t = dkim_tags_get(&tags, "v")) || t->value_len != 1 || t->value[0] != '1') {
		decide(s, DKIM_PERMERROR, t ? "unsupported version (v=)" : "missing v=");
		return;
	}
	{
		static const char *const required[] = { "a", "b", "bh", "d", "h", "s" };
		for (size_t i = 0; i < ARRAY_LEN(required); i++) {
			if (!dkim_tags_get(&tags, required[i])) {
				decide(s, DKIM_PERMERROR, "missing %s=", required[i]);
				return;
			}
		}
	}
	if (!strcmp(s->algorithm, "rsa-sha256"))
		s->alg = ALG_RSA_SHA256;
	else if (!strcmp(s->algorithm, "ed25519-sha256"))
		s->alg = ALG_ED25519_SHA256;
	else if (!strcmp(s->algorithm, "rsa-sha1"))
		s->alg = ALG_RSA_SHA1;
	else {
		decide(s, DKIM_PERMERROR, "unknown algorithm (a=)");
		return;
	}
	if (s->alg == ALG_RSA_SHA1) {
		/* RFC 8301 section 3.1: never valid, whatever else it says. */
		decide(s, DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	}
	t = dkim_tags_get(&tags, "b");
	{
		unsigned char tmp[DKIM_MAX_SIG_BYTES];
		long n = msg_base64_decode(t->value, t->value_len, tmp, sizeof tmp);
		if (n <= 0) {
			decide(s, DKIM_PERMERROR, "malformed b=");
			return;
		}
		s->b = xmalloc((size_t)n);
		memcpy(s->b, tmp, (size_t)n);
		s->blen = (size_t)n;
	}
	t = dkim_tags_get(&tags, "bh");
	{
		long n = msg_base64_decode(t->value, t->value_len, s->bh, sizeof s->bh);
		if (n != (s->alg == ALG_RSA_SHA1 ? 20 : 32)) {
			decide(s, DKIM_PERMERROR, "malformed bh=");
			return;
		}
		s->bhlen = (size_t)n;
	}
	s->hc = s->bc = MSG_CANON_SIMPLE;
	if ((t = dkim_tags_get(&tags, "c"))) {
		char *c = value_copy(t, 1), *slash = strchr(c, '/');
		int ok = 1;
		if (slash)
			*slash = '\0';
		if (!strcmp(c, "relaxed"))
			s->hc = MSG_CANON_RELAXED;
		else if (strcmp(c, "simple"))
			ok = 0;
		if (slash) {
			if (!strcmp(slash + 1, "relaxed"))
				s->bc = MSG_CANON_RELAXED;
			else if (strcmp(slash + 1, "simple"))
				ok = 0;
		}
		free(c);
		if (!ok) {
			decide(s, DKIM_PERMERROR, "unknown canonicalization (c=)");
			return;
		}
	}
	if (!dkim_valid_name(s->domain, strlen(s->domain)) || !strchr(s->domain, '.')) {
		decide(s, DKIM_PERMERROR, "bad domain (d=)");
		return;
	}
	if (s->domain[strlen(s->domain) - 1] == '.')
		s->domain[strlen(s->domain) - 1] = '\0';
	/* A selector is a relative name: "sel." would make "sel.._domainkey". */
	if (!dkim_valid_name(s->selector, strlen(s->selector)) ||
	    (*s->selector && s->selector[strlen(s->selector) - 1] == '.')) {
		decide(s, DKIM_PERMERROR, "bad selector (s=)");
		return;
	}
	if (parse_names(s, dkim_tags_get(&tags, "h")) < 0) {
		decide(s, DKIM_PERMERROR, "malformed h=");
		return;
	}
	for (size_t i = 0; i < s->nnames; i++)
		if (s->namelens[i] == 4 && !str_casecmp_n(s->names[i], "from", 4))
			from = 1;
	if (!from) {
		decide(s, DKIM_PERMERROR, "From is not signed (h=)");
		return;
	}
	if (dkim_tags_get(&tags, "i")) {
		const char *at = strrchr(s->identity, '@');
		if (!at || !is_subdomain_or_equal(at + 1, s->domain)) {
			decide(s, DKIM_PERMERROR, "i= is not within d=");
			return;
		}
	}
	if ((t = dkim_tags_get(&tags, "l"))) {
		s->l = parse_num(t, 76);
		if (s->l < 0) {
			decide(s, DKIM_PERMERROR, "malformed l=");
			return;
		}
		s->out.body_length = s->l;
	}
	if ((t = dkim_tags_get(&tags, "q")) && !list_has(t, "dns/txt")) {
		decide(s, DKIM_PERMERROR, "no known query method (q=)");
		return;
	}
	if ((t = dkim_tags_get(&tags, "t")) && (ts = parse_num(t, 12)) < 0) {
		decide(s, DKIM_PERMERROR, "malformed t=");
		return;
	}
	if ((t = dkim_tags_get(&tags, "x")) && (xs = parse_num(t, 12)) < 0) {
		decide(s, DKIM_PERMERROR, "malformed x=");
		return;
	}
	if (ts >= 0 && xs >= 0 && xs < ts) {
		decide(s, DKIM_PERMERROR, "x= is before t=");
		return;
	}
	if (xs >= 0 && xs < v->now) {
		decide(s, DKIM_PERMERROR, "signature expired (x=)");
		return;
	}
	if (ts >= 0 && ts > v->now + DKIM_CLOCK_SKEW) {
		decide(s, DKIM_POLICY, "timestamp in the future (t=)");
		return;
	}
	s->key_name = xasprintf("%s._domainkey.%s", s->selector, s->domain);
	if (strlen(s->key_name) > 253) {
		free(s->key_name);
		s->key_name = NULL;
		decide(s, DKIM_PERMERROR, "key name too long");
		return;
	}
	s->waiting_key = 1;
}

/* Creates or reuses the body hasher for s. */
static void attach_hasher(struct dkim_verifier *v, struct sig *s)
{
	enum msg_hash alg = s->alg == ALG_RSA_SHA1 ? MSG_HASH_SHA1 : MSG_HASH_SHA256;
	for (size_t i = 0; i < v->nhashers; i++) {
		if (msg_bodyhash_canon(v->hashers[i]) == s->bc && msg_bodyhash_alg(v->hashers[i]) == alg &&
		    msg_bodyhash_limit(v->hashers[i]) == s->l) {
			s->hasher = i;
			return;
		}
	}
	v->hashers = xrealloc(v->hashers, (v->nhashers + 1) * sizeof *v->hashers);
	v->hashers[v->nhashers] = msg_bodyhash_new(s->bc, alg, s->l);
	s->hasher = v->nhashers++;
}

static void on_headers(struct dkim_verifier *v)
{
	const char *problem = NULL;
	v->headers_done = 1;
	switch (v->hdr.status) {
	case MSG_OK:
		break;
	case MSG_TOO_BIG:
		problem = "header block over 1 MiB";
		break;
	case MSG_TOO_MANY:
		problem = "more than 1000 header fields";
		break;
	case MSG_MALFORMED:
		problem = "malformed header block";
		break;
	}
	for (size_t i = 0; i < v->hdr.nfields; i++) {
		struct sig *s;
		if (!msg_field_is(&v->hdr, i, "DKIM-Signature"))
			continue;
		if (v->nsigs == v->max)
			break;
		v->sigs = xrealloc(v->sigs, (v->nsigs + 1) * sizeof *v->sigs);
		s = &v->sigs[v->nsigs++];
		memset(s, 0, sizeof *s);
		s->field = i;
		parse_sig(v, s);
		if (problem)
			decide(s, DKIM_PERMERROR, "%s", problem);
	}
	if (problem && v->nsigs == 0 && v->hdr.status != MSG_MALFORMED) {
		/* Over a bound, a signature may lie beyond what we kept:
		 * report the message as not verifiable rather than unsigned. */
		struct sig *s;
		v->sigs = xcalloc(1, sizeof *v->sigs);
		s = &v->sigs[v->nsigs++];
		s->field = (size_t)-1;
		s->hasher = (size_t)-1;
		s->l = -1;
		s->out.body_length = -1;
		s->domain = xstrdup("");
		s->identity = xstrdup("");
		s->selector = xstrdup("");
		s->algorithm = xstrdup("");
		decide(s, DKIM_PERMERROR, "%s", problem);
	}
	for (size_t i = 0; i < v->nsigs; i++)
		if (!v->sigs[i].decided)
			attach_hasher(v, &v->sigs[i]);
	v->hash_body = v->nhashers > 0;
}

struct dkim_verifier *dkim_verifier_new(unsigned max_signatures, int64_t now)
{
	struct dkim_verifier *v = xcalloc(1, sizeof *v);
	v->max = max_signatures ? max_signatures : DKIM_MAX_SIGNATURES_DEFAULT;
	v->now = now;
	msg_headers_init(&v->hdr);
	return v;
}

void dkim_verifier_feed(struct dkim_verifier *v, const char *data, size_t len)
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

/* The outcome strings, once a signature is decided or at the end. */
static void fill_outcome(struct sig *s)
{
	s->out.domain = s->domain;
	s->out.identity = s->identity;
	s->out.selector = s->selector;
	s->out.algorithm = s->algorithm;
	s->out.testing = s->testing;
}

/* 6.1.3 step 2 for a signature whose key and header signature are good. */
static void finish(struct dkim_verifier *v, struct sig *s)
{
	const unsigned char *digest = v->digests[s->hasher];
	uint64_t body_len = v->body_lens[s->hasher];
	if (s->l >= 0 && (uint64_t)s->l > body_len) {
		decide(s, DKIM_PERMERROR, "l= is larger than the body");
		return;
	}
	if (CRYPTO_memcmp(digest, s->bh, s->bhlen) != 0) {
		decide(s, DKIM_FAIL, "body hash mismatch");
		return;
	}
	if (s->l >= 0) {
		s->out.unsigned_body = body_len - (uint64_t)s->l;
		if (s->out.unsigned_body)
			decide(s, DKIM_PASS, "ok; l=%lld leaves %llu body bytes unsigned", (long long)s->l,
			       (unsigned long long)s->out.unsigned_body);
	}
	decide(s, DKIM_PASS, "ok");
}

void dkim_verifier_end(struct dkim_verifier *v)
{
	if (v->ended)
		return;
	if (!v->headers_done) {
		msg_headers_end(&v->hdr);
		on_headers(v);
	}
	v->ended = 1;
	v->digests = xcalloc(v->nhashers ? v->nhashers : 1, sizeof *v->digests);
	v->body_lens = xcalloc(v->nhashers ? v->nhashers : 1, sizeof *v->body_lens);
	for (size_t i = 0; i < v->nhashers; i++)
		msg_bodyhash_final(v->hashers[i], v->digests[i], &v->body_lens[i]);
	for (size_t i = 0; i < v->nsigs; i++) {
		struct sig *s = &v->sigs[i];
		if (s->header_ok)
			finish(v, s);
		fill_outcome(s);
	}
}

int dkim_verifier_headers_done(const struct dkim_verifier *v)
{
	return v->headers_done;
}

size_t dkim_verifier_count(const struct dkim_verifier *v)
{
	return v->nsigs;
}

const char *dkim_verifier_key_name(const struct dkim_verifier *v, size_t i)
{
	if (i >= v->nsigs || v->sigs[i].decided)
		return NULL;
	return v->sigs[i].key_name;
}

/* 3.7: the hash of the signed header fields and of the signature field
 * itself with b= emptied, without its final CRLF. */
static void header_hash(struct dkim_verifier *v, struct sig *s, unsigned char *out)
{
	msg_signed_header_hash(&v->hdr, s->hc, s->names, s->namelens, s->nnames, s->field, s->b_cut_start,
			       s->b_cut_end, out);
}

/* Prepared RSA verification contexts, per thread, for the last few keys.
 * OpenSSL 3 spends about 2.5 microseconds building a context (provider
 * lookups under locks, then padding and digest set one by one), a fifth of
 * the verification itself; a context can verify again and again. A context
 * holds a reference on its key, so the key's address cannot be reused by
 * another key while it is in this table. Thread-local: no locking, and the
 * contexts are never shared between threads. */
#define RSA_CTX_SLOTS 8

static __thread struct {
	EVP_PKEY *pkey;
	EVP_PKEY_CTX *ctx;
	uint64_t used;
} rsa_ctx[RSA_CTX_SLOTS];
static __thread uint64_t rsa_ctx_clock;

static EVP_PKEY_CTX *rsa_verify_ctx(EVP_PKEY *pkey)
{
	size_t victim = 0;
	EVP_PKEY_CTX *c;
	for (size_t i = 0; i < RSA_CTX_SLOTS; i++) {
		if (rsa_ctx[i].pkey == pkey && rsa_ctx[i].ctx) {
			rsa_ctx[i].used = ++rsa_ctx_clock;
			return rsa_ctx[i].ctx;
		}
		if (rsa_ctx[i].used < rsa_ctx[victim].used)
			victim = i;
	}
	c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!c || EVP_PKEY_verify_init(c) != 1 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1) {
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	EVP_PKEY_CTX_free(rsa_ctx[victim].ctx);
	rsa_ctx[victim].pkey = pkey;
	rsa_ctx[victim].ctx = c;
	rsa_ctx[victim].used = ++rsa_ctx_clock;
	return c;
}

int dkim_verify_hash(void *pkey, int ed25519, const unsigned char *sig, size_t siglen,
		     const unsigned char *hash)
{
	int ok = 0;
	if (ed25519) {
		/* RFC 8463 section 3: PureEdDSA over the SHA-256 hash. */
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		if (m && EVP_DigestVerifyInit_ex(m, NULL, NULL, NULL, NULL, pkey, NULL) == 1)
			ok = EVP_DigestVerify(m, sig, siglen, hash, 32) == 1;
		EVP_MD_CTX_free(m);
	} else {
		EVP_PKEY_CTX *c = rsa_verify_ctx(pkey);
		if (c)
			ok = EVP_PKEY_verify(c, sig, siglen, hash, 32) == 1;
	}
	ERR_clear_error();
	return ok;
}

/* Checks b= over the header hash with the key. 1 when it verifies. */
static int verify_sig(const struct sig *s, EVP_PKEY *pkey, const unsigned char *hash)
{
	return dkim_verify_hash(pkey, s->alg == ALG_ED25519_SHA256, s->b, s->blen, hash);
}

/* 6.1.2 and 6.1.3 step 1 with one key record. */
static void check_with_key(struct dkim_verifier *v, struct sig *s, const struct dkim_key *k)
{
	unsigned char hash[32];
	s->testing = k->testing;
	s->out.key_bits = k->bits;
	if (k->revoked) {
		decide(s, DKIM_PERMERROR, "key revoked (empty p=)");
		return;
	}
	if ((k->type == DKIM_KEY_RSA) != (s->alg == ALG_RSA_SHA256)) {
		decide(s, DKIM_PERMERROR, "key type (k=) does not match a=");
		return;
	}
	if (!k->sha256_ok) {
		decide(s, DKIM_PERMERROR, "the key does not allow sha256 (h=)");
		return;
	}
	if (k->strict) {
		const char *at = strrchr(s->identity, '@');
		if (!at || strcasecmp(at + 1, s->domain)) {
			decide(s, DKIM_PERMERROR, "i= domain must equal d= (key t=s)");
			return;
		}
	}
	if (k->type == DKIM_KEY_RSA && k->bits < DKIM_MIN_RSA_BITS) {
		decide(s, DKIM_POLICY, "RSA key of %u bits (RFC 8301 wants 1024 or more)", k->bits);
		return;
	}
	header_hash(v, s, hash);
	if (!verify_sig(s, k->pkey, hash)) {
		decide(s, DKIM_FAIL, "signature did not verify");
		return;
	}
	s->header_ok = 1;
	if (v->ended)
		finish(v, s);
}

void dkim_verifier_key_answer(struct dkim_verifier *v, size_t i, enum dns_status st, const struct dns_answer *a)
{
	struct sig *s;
	struct dkim_key key = { 0 };
	const char *why = NULL;
	size_t found = 0;

	if (i >= v->nsigs || !v->sigs[i].waiting_key)
		return;
	s = &v->sigs[i];
	s->waiting_key = 0;
	if (st == DNS_TEMPFAIL || st == DNS_TIMEOUT) {
		decide(s, DKIM_TEMPERROR, "DNS failure looking up the key (%s)", dns_status_name(st));
		goto out;
	}
	if (st != DNS_ANSWER || !a || a->nrrs == 0) {
		decide(s, DKIM_PERMERROR, "no key at %s", s->key_name);
		goto out;
	}
	/* 3.6.2.2: one record; records that are no DKIM key are skipped. */
	for (size_t k = 0; k < a->nrrs; k++) {
		const struct dns_rr *rr = &a->rrs[k];
		struct dkim_key tmp;
		const char *w;
		if (rr->type != DNS_T_TXT || !rr->data)
			continue;
		if (key_parse_cached((const char *)rr->data, rr->len, &tmp, &w) == 0) {
			if (found++ == 0)
				key = tmp;
			else
				dkim_key_clear(&tmp);
		} else if (!why) {
			why = w;
		}
	}
	if (found > 1) {
		dkim_key_clear(&key);
		decide(s, DKIM_PERMERROR, "more than one key record");
		goto out;
	}
	if (found == 0) {
		decide(s, DKIM_PERMERROR, "bad key record: %s", why ? why : "no TXT data");
		goto out;
	}
	check_with_key(v, s, &key);
	dkim_key_clear(&key);
out:
	if (v->ended)
		fill_outcome(s);
}

int dkim_verifier_done(const struct dkim_verifier *v)
{
	if (!v->ended)
		return 0;
	for (size_t i = 0; i < v->nsigs; i++)
		if (!v->sigs[i].decided)
			return 0;
	return 1;
}

const struct dkim_outcome *dkim_verifier_outcome(const struct dkim_verifier *v, size_t i)
{
	if (i >= v->nsigs || !v->sigs[i].decided || !v->ended)
		return NULL;
	return &v->sigs[i].out;
}

const struct msg_headers *dkim_verifier_headers(const struct dkim_verifier *v)
{
	return &v->hdr;
}

void dkim_verifier_free(struct dkim_verifier *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nsigs; i++) {
		struct sig *s = &v->sigs[i];
		free(s->b);
		free(s->names_buf);
		free(s->names);
		free(s->namelens);
		free(s->domain);
		free(s->identity);
		free(s->selector);
		free(s->algorithm);
		free(s->key_name);
	}
	free(v->sigs);
	for (size_t i = 0; i < v->nhashers; i++)
		msg_bodyhash_free(v->hashers[i]);
	free(v->hashers);
	free(v->digests);
	free(v->body_lens);
	msg_headers_clear(&v->hdr);
	free(v);
}

/* ---- the asynchronous driver --------------------------------------------- */

/* One question per distinct key name; its answer goes to every signature
 * that named it. */
struct dkim_query {
	char *name;
	size_t *sigs;
	size_t nsigs;
};

struct dkim_job {
	struct dns_batch *batch;
	struct dkim_verifier *v;
	dkim_done_cb cb;
	void *arg;
	struct dkim_query *queries;
	size_t nqueries;
};

static void job_free(struct dkim_job *job)
{
	dns_batch_free(job->batch);
	for (size_t i = 0; i < job->nqueries; i++) {
		free(job->queries[i].name);
		free(job->queries[i].sigs);
	}
	free(job->queries);
	free(job);
}

static void on_key(void *owner, size_t k, const struct dns_result *res)
{
	struct dkim_job *job = owner;
	for (size_t i = 0; i < job->queries[k].nsigs; i++)
		dkim_verifier_key_answer(job->v, job->queries[k].sigs[i], res->status, res->answer);
}

static void job_finish(void *owner)
{
	struct dkim_job *job = owner;
	dkim_done_cb cb = job->cb;
	void *cbarg = job->arg;
	struct dkim_verifier *v = job->v;
	job_free(job);
	cb(cbarg, v);
}

struct dkim_job *dkim_verify_async(struct dns *dns, struct dkim_verifier *v, dkim_done_cb cb, void *arg)
{
	struct dkim_job *job = xcalloc(1, sizeof *job);
	job->v = v;
	job->cb = cb;
	job->arg = arg;
	for (size_t i = 0; i < dkim_verifier_count(v); i++) {
		const char *name = dkim_verifier_key_name(v, i);
		struct dkim_query *q = NULL;
		if (!name)
			continue;
		for (size_t k = 0; k < job->nqueries && !q; k++)
			if (!strcasecmp(job->queries[k].name, name))
				q = &job->queries[k];
		if (!q) {
			job->queries = xrealloc(job->queries, (job->nqueries + 1) * sizeof *job->queries);
			q = &job->queries[job->nqueries++];
			q->name = xstrdup(name);
			q->sigs = NULL;
			q->nsigs = 0;
		}
		q->sigs = xrealloc(q->sigs, (q->nsigs + 1) * sizeof *q->sigs);
		q->sigs[q->nsigs++] = i;
	}
	/* Asked only once the table is complete (it moves while it grows). */
	job->batch = dns_batch_new(dns, on_key, job_finish, job);
	for (size_t k = 0; k < job->nqueries; k++)
		dns_batch_ask(job->batch, job->queries[k].name, DNS_T_TXT, k);
	dns_batch_wait(job->batch);
	return job;
}

void dkim_job_cancel(struct dkim_job *job)
{
	if (job)
		job_free(job);
}
