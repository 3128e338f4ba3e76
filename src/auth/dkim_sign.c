/*
 * dkim_sign: DKIM signing (RFC 6376 section 5, RFC 8463) and key generation;
 * see dkim.h.
 *
 * Every signature is relaxed/relaxed (tests may ask for simple) with SHA-256; RSA keys sign rsa-sha256
 * (RFC 8301: never rsa-sha1, never a key under 1024 bits), Ed25519 keys
 * ed25519-sha256. With several keys (say one RSA and one Ed25519 per domain,
 * RFC 8463 section 5 "dual signing") the body is canonicalised and hashed
 * once for all of them, and the signed header fields are canonicalised once.
 *
 * Which fields are signed (5.4): those a recipient sees and a forwarder
 * has no business changing, each instance present, listed in the order they
 * appear; From is listed once more than present (oversigned), so a second
 * From added later breaks the signature (5.4.2, 8.15).
 *
 * The private keys are read by OpenSSL from PEM files; this module never
 * writes a key anywhere but into the buffer dkim_keygen() returns.
 */
#include "dkim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/util.h"

#define FOLD_WIDTH 78

struct dkim_sign_key {
	char *domain, *selector;
	EVP_PKEY *pkey;
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

struct dkim_sign_key *dkim_sign_key_new(const char *domain, const char *selector, void *evp_pkey, char *err,
					size_t errsize)
{
	EVP_PKEY *pkey = evp_pkey;
	struct dkim_sign_key *k;
	int type = EVP_PKEY_get_base_id(pkey);

	if (!dkim_valid_name(domain, strlen(domain)) || !strchr(domain, '.')) {
		snprintf(err, errsize, "%s is not a valid domain", domain);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (!dkim_valid_name(selector, strlen(selector))) {
		snprintf(err, errsize, "%s is not a valid selector", selector);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) {
		snprintf(err, errsize, "the key is neither RSA nor Ed25519");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < DKIM_MIN_RSA_BITS) {
		snprintf(err, errsize, "the RSA key has %d bits; RFC 8301 requires at least 1024 (2048 is usual)",
			 EVP_PKEY_get_bits(pkey));
		EVP_PKEY_free(pkey);
		return NULL;
	}
	k = xcalloc(1, sizeof *k);
	k->domain = str_lower(xstrdup(domain));
	if (k->domain[strlen(k->domain) - 1] == '.')
		k->domain[strlen(k->domain) - 1] = '\0';
	k->selector = xstrdup(selector);
	k->pkey = pkey;
	k->ed25519 = type == EVP_PKEY_ED25519;
	return k;
}

struct dkim_sign_key *dkim_sign_key_load(const char *domain, const char *selector, const char *path, char *err,
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
	return dkim_sign_key_new(domain, selector, pkey, err, errsize);
}

void dkim_sign_key_free(struct dkim_sign_key *k)
{
	if (!k)
		return;
	free(k->domain);
	free(k->selector);
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *dkim_sign_key_algorithm(const struct dkim_sign_key *k)
{
	return k->ed25519 ? "ed25519-sha256" : "rsa-sha256";
}

const char *dkim_sign_key_domain(const struct dkim_sign_key *k)
{
	return k->domain;
}

const char *dkim_sign_key_selector(const struct dkim_sign_key *k)
{
	return k->selector;
}

char *dkim_sign_key_record(const struct dkim_sign_key *k)
{
	char *b64, *rec;
	if (k->ed25519) {
		unsigned char raw[32];
		size_t n = sizeof raw;
		if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &n) != 1 || n != 32)
			abort();
		b64 = msg_base64_encode(raw, n);
	} else {
		unsigned char *der = NULL;
		int n = i2d_PUBKEY(k->pkey, &der);
		if (n <= 0)
			abort();
		b64 = msg_base64_encode(der, (size_t)n);
		OPENSSL_free(der);
	}
	rec = xasprintf("v=DKIM1; k=%s; p=%s", k->ed25519 ? "ed25519" : "rsa", b64);
	free(b64);
	return rec;
}

int dkim_keygen(const char *algorithm, unsigned bits, char **pem, char **record, char *err, size_t errsize)
{
	EVP_PKEY *pkey = NULL;
	struct dkim_sign_key *k;
	BIO *bio;
	char *data;
	long n;

	if (!strcmp(algorithm, "ed25519")) {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else if (!strcmp(algorithm, "rsa")) {
		if (bits < 1024 || bits > 8192) {
			snprintf(err, errsize, "RSA keys have 1024 to 8192 bits (2048 is usual)");
			return -1;
		}
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	} else {
		snprintf(err, errsize, "unknown algorithm %s (rsa or ed25519)", algorithm);
		return -1;
	}
	if (!pkey) {
		ossl_err(err, errsize, "key generation failed");
		return -1;
	}
	bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		EVP_PKEY_free(pkey);
		ossl_err(err, errsize, "cannot write the key");
		return -1;
	}
	n = BIO_get_mem_data(bio, &data);
	*pem = xstrndup(data, (size_t)n);
	BIO_free(bio);
	k = dkim_sign_key_new("key.invalid", "key", pkey, err, errsize);
	if (!k) {
		free(*pem);
		*pem = NULL;
		return -1;
	}
	*record = dkim_sign_key_record(k);
	dkim_sign_key_free(k);
	return 0;
}

/* ---- the signer ------------------------------------------------------------ */

/* 5.4: fields signed when present (lower case); plus every List-*. */
static const char *const signed_fields[] = {
	"from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
	"mime-version", "content-type", "content-transfer-encoding", "content-id", "content-description",
	"resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-message-id",
	"in-reply-to", "references", "openpgp", "autocrypt",
};

struct dkim_signer {
	struct dkim_sign_key **keys;
	size_t nkeys;
	int64_t now;
	struct dkim_sign_options opt;
	struct msg_headers hdr;
	struct msg_bodyhash *bh; /* made at the first body byte, once options are fixed */
	int ended;
};

struct dkim_signer *dkim_signer_new(struct dkim_sign_key *const *keys, size_t nkeys, int64_t now)
{
	struct dkim_signer *s = xcalloc(1, sizeof *s);
	s->keys = xcalloc(nkeys ? nkeys : 1, sizeof *s->keys);
	memcpy(s->keys, keys, nkeys * sizeof *keys);
	s->nkeys = nkeys;
	s->now = now;
	msg_headers_init(&s->hdr);
	s->opt.header_canon = s->opt.body_canon = MSG_CANON_RELAXED;
	s->opt.expire = -1;
	return s;
}

void dkim_signer_set_options(struct dkim_signer *s, const struct dkim_sign_options *opt)
{
	if (s->bh || s->hdr.len)
		abort(); /* a bug: options come before the message */
	s->opt = *opt;
}

void dkim_signer_feed(struct dkim_signer *s, const char *data, size_t len)
{
	if (s->ended)
		return;
	if (!s->hdr.complete) {
		size_t n = msg_headers_feed(&s->hdr, data, len);
		data += n;
		len -= n;
	}
	if (len && s->hdr.status == MSG_OK) {
		if (!s->bh)
			s->bh = msg_bodyhash_new(s->opt.body_canon, MSG_HASH_SHA256, -1);
		msg_bodyhash_feed(s->bh, data, len);
	}
}

void dkim_signer_free(struct dkim_signer *s)
{
	if (!s)
		return;
	msg_headers_clear(&s->hdr);
	msg_bodyhash_free(s->bh);
	free(s->keys);
	free(s);
}

static int should_sign(const struct msg_headers *h, size_t i)
{
	const struct msg_field *f = &h->fields[i];
	if (f->name_len > 5 && !str_casecmp_n(h->buf + f->off, "list-", 5))
		return 1;
	for (size_t k = 0; k < ARRAY_LEN(signed_fields); k++)
		if (msg_field_is(h, i, signed_fields[k]))
			return 1;
	return 0;
}

/* Folding: tokens go on the current line while it stays within FOLD_WIDTH,
 * else on a new line after CRLF TAB (FWS, allowed between tags, after the
 * colons of h= and inside base64). */
struct fold {
	struct msg_buf b;
	size_t col;
};

static void fold_add(struct fold *f, const char *tok, size_t n, int space)
{
	if (f->col + (size_t)space + n > FOLD_WIDTH && f->col > 8) {
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

/* Signs hash (32 bytes) with k; returns the signature, newly allocated. */
static unsigned char *sign_hash(const struct dkim_sign_key *k, const unsigned char *hash, size_t *siglen, char *err,
				size_t errsize)
{
	unsigned char *sig = NULL;
	if (k->ed25519) {
		/* RFC 8463 section 3: PureEdDSA over the SHA-256 hash. */
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		*siglen = 64;
		sig = xmalloc(64);
		if (!m || EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, k->pkey, NULL) != 1 ||
		    EVP_DigestSign(m, sig, siglen, hash, 32) != 1) {
			free(sig);
			sig = NULL;
		}
		EVP_MD_CTX_free(m);
	} else {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
		*siglen = (size_t)EVP_PKEY_get_size(k->pkey);
		sig = xmalloc(*siglen);
		if (!c || EVP_PKEY_sign_init(c) != 1 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1 ||
		    EVP_PKEY_sign(c, sig, siglen, hash, 32) != 1) {
			free(sig);
			sig = NULL;
		}
		EVP_PKEY_CTX_free(c);
	}
	if (!sig)
		ossl_err(err, errsize, "signing failed");
	return sig;
}

char *dkim_signer_end(struct dkim_signer *s, int crlf, char *err, size_t errsize)
{
	unsigned char bh[MSG_HASH_MAX];
	size_t bhlen, nnames = 0;
	uint64_t body_len = 0;
	char *bh64, *result = NULL;
	const char **names;
	size_t *lens;
	long *picked;
	struct msg_buf signed_part = { 0 }, out = { 0 };
	struct msg_buf hlist = { 0 };
	int nfrom = 0;

	if (s->ended) {
		snprintf(err, errsize, "dkim_signer_end called twice");
		return NULL;
	}
	s->ended = 1;
	msg_headers_end(&s->hdr);
	if (!s->bh)
		s->bh = msg_bodyhash_new(s->opt.body_canon, MSG_HASH_SHA256, -1);
	bhlen = msg_bodyhash_final(s->bh, bh, &body_len);
	switch (s->hdr.status) {
	case MSG_OK:
		break;
	case MSG_TOO_BIG:
		snprintf(err, errsize, "the header block is over 1 MiB");
		return NULL;
	case MSG_TOO_MANY:
		snprintf(err, errsize, "the message has more than 1000 header fields");
		return NULL;
	case MSG_MALFORMED:
		snprintf(err, errsize, "the header block is malformed (a line that is no header field)");
		return NULL;
	}
	for (size_t i = 0; i < s->hdr.nfields; i++)
		if (msg_field_is(&s->hdr, i, "from"))
			nfrom++;
	if (nfrom == 0) {
		snprintf(err, errsize, "the message has no From field (RFC 6376 5.4 requires signing it)");
		return NULL;
	}
	if (s->nkeys == 0) {
		snprintf(err, errsize, "no signing key");
		return NULL;
	}

	/* h=: the signable fields in message order, then From once more. */
	names = xcalloc(s->hdr.nfields + 1, sizeof *names);
	lens = xcalloc(s->hdr.nfields + 1, sizeof *lens);
	picked = xcalloc(s->hdr.nfields + 1, sizeof *picked);
	for (size_t i = 0; i < s->hdr.nfields && nnames + 1 < DKIM_MAX_SIGNED_FIELDS; i++) {
		if (!should_sign(&s->hdr, i))
			continue;
		names[nnames] = s->hdr.buf + s->hdr.fields[i].off;
		lens[nnames] = s->hdr.fields[i].name_len;
		nnames++;
	}
	names[nnames] = "from";
	lens[nnames] = 4;
	nnames++;
	msg_pick_fields(&s->hdr, names, lens, nnames, (size_t)-1, picked);
	for (size_t i = 0; i < nnames; i++)
		if (picked[i] >= 0)
			msg_canon_header(s->opt.header_canon, s->hdr.buf + s->hdr.fields[picked[i]].off,
					 s->hdr.fields[picked[i]].len, 0, &signed_part);
	bh64 = msg_base64_encode(bh, bhlen);

	for (size_t k = 0; k < s->nkeys; k++) {
		const struct dkim_sign_key *key = s->keys[k];
		struct fold f = { { 0 }, 0 };
		struct msg_buf data = { 0 };
		unsigned char hash[32], *sig;
		size_t siglen, b64len, pos = 0;
		char *sig64;

		msg_buf_append(&f.b, "DKIM-Signature:", 15);
		f.col = 15;
		fold_tag(&f, "v=1;");
		fold_tag(&f, "a=%s;", dkim_sign_key_algorithm(key));
		fold_tag(&f, "c=%s/%s;", s->opt.header_canon == MSG_CANON_RELAXED ? "relaxed" : "simple",
			 s->opt.body_canon == MSG_CANON_RELAXED ? "relaxed" : "simple");
		fold_tag(&f, "d=%s;", key->domain);
		fold_tag(&f, "s=%s;", key->selector);
		fold_tag(&f, "t=%lld;", (long long)s->now);
		if (s->opt.expire >= 0)
			fold_tag(&f, "x=%lld;", (long long)s->opt.expire);
		if (s->opt.body_length)
			fold_tag(&f, "l=%llu;", (unsigned long long)body_len);
		for (size_t i = 0; i < nnames; i++) {
			char tok[1100];
			int n = snprintf(tok, sizeof tok, "%s%.*s%s", i ? "" : "h=", (int)lens[i], names[i],
					 i + 1 < nnames ? ":" : ";");
			char *p = tok + (i ? 0 : 2);
			/* Names in lower case: they match case-insensitively. */
			for (; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			fold_add(&f, tok, (size_t)n, i == 0);
		}
		fold_tag(&f, "bh=%s;", bh64);
		fold_add(&f, "b=", 2, 1);

		msg_buf_append(&data, signed_part.data ? signed_part.data : "", signed_part.len);
		msg_canon_header(s->opt.header_canon, f.b.data, f.b.len, 1, &data);
		msg_digest(MSG_HASH_SHA256, data.data, data.len, hash);
		msg_buf_clear(&data);
		sig = sign_hash(key, hash, &siglen, err, errsize);
		if (!sig) {
			msg_buf_clear(&f.b);
			msg_buf_clear(&out);
			goto done;
		}
		sig64 = msg_base64_encode(sig, siglen);
		free(sig);
		b64len = strlen(sig64);
		while (pos < b64len) {
			size_t room = f.col < FOLD_WIDTH ? FOLD_WIDTH - f.col : 0, n;
			if (room < 8) {
				msg_buf_append(&f.b, "\r\n\t", 3);
				f.col = 8;
				room = FOLD_WIDTH - f.col;
			}
			n = b64len - pos < room ? b64len - pos : room;
			msg_buf_append(&f.b, sig64 + pos, n);
			f.col += n;
			pos += n;
		}
		free(sig64);
		msg_buf_append(&f.b, "\r\n", 2);
		msg_buf_append(&out, f.b.data, f.b.len);
		msg_buf_clear(&f.b);
	}
	if (crlf) {
		result = out.data;
	} else {
		size_t o = 0;
		result = out.data;
		for (size_t i = 0; i < out.len; i++)
			if (!(out.data[i] == '\r' && i + 1 < out.len && out.data[i + 1] == '\n'))
				result[o++] = out.data[i];
		result[o] = '\0';
	}
	out.data = NULL;
done:
	msg_buf_clear(&out);
	msg_buf_clear(&signed_part);
	msg_buf_clear(&hlist);
	free(bh64);
	free(names);
	free(lens);
	free(picked);
	return result;
}
