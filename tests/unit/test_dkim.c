/*
 * Unit tests for src/auth/dkim.c and dkim_sign.c over an in-process table
 * of key records (integration tests use a real DNS server and dkimpy and
 * OpenDKIM; see tests/integration/test_dkim.py). Vectors: RFC 8463
 * appendix A (read from ../shared/testdata, relative to the repository),
 * RFC 8032 test 1 as a signing key, and hand-made signatures and keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/dkim.h"
#include "lib/util.h"
#include "unit.h"

#define RFC8463_DIR "../shared/testdata/dkim/rfc8463/"
#define RFC8463_T 1528637909

static const char rfc8463_ed25519[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc8463_rsa[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
	"J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+"
	"2kryOTIKT+l/K4w3QIDAQAB";

struct keyrec {
	const char *name;
	const char *txt;    /* NULL: the status below */
	enum dns_status st; /* used when txt is NULL */
	const char *txt2;   /* a second TXT record, or NULL */
};

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void answer_keys(struct dkim_verifier *v, const struct keyrec *keys, size_t nkeys)
{
	for (size_t i = 0; i < dkim_verifier_count(v); i++) {
		const char *name = dkim_verifier_key_name(v, i);
		const struct keyrec *k = NULL;
		struct dns_answer a = { 0 };
		struct dns_rr rr[2];
		if (!name)
			continue;
		for (size_t j = 0; j < nkeys; j++)
			if (!strcasecmp(keys[j].name, name))
				k = &keys[j];
		if (!k) {
			dkim_verifier_key_answer(v, i, DNS_NXDOMAIN, NULL);
			continue;
		}
		if (!k->txt) {
			dkim_verifier_key_answer(v, i, k->st, NULL);
			continue;
		}
		memset(rr, 0, sizeof rr);
		rr[0].type = DNS_T_TXT;
		rr[0].data = (unsigned char *)k->txt;
		rr[0].len = strlen(k->txt);
		a.rrs = rr;
		a.nrrs = 1;
		if (k->txt2) {
			rr[1].type = DNS_T_TXT;
			rr[1].data = (unsigned char *)k->txt2;
			rr[1].len = strlen(k->txt2);
			a.nrrs = 2;
		}
		dkim_verifier_key_answer(v, i, DNS_ANSWER, &a);
	}
}

static int answer_late; /* give the key answers after the end of the message */

/* Verifies msg fed in chunks of `chunk` bytes (0: all at once), answering
 * the keys as soon as the header block is complete (or after the end). */
static struct dkim_verifier *verify(const char *msg, size_t len, size_t chunk, const struct keyrec *keys, size_t nkeys,
				    int64_t now)
{
	struct dkim_verifier *v = dkim_verifier_new(0, now);
	int answered = answer_late;
	size_t off = 0;
	if (!chunk)
		chunk = len ? len : 1;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		dkim_verifier_feed(v, msg + off, n);
		off += n;
		if (!answered && dkim_verifier_headers_done(v)) {
			answer_keys(v, keys, nkeys);
			answered = 1;
		}
	}
	dkim_verifier_end(v);
	if (!answered || answer_late)
		answer_keys(v, keys, nkeys);
	CHECK(dkim_verifier_done(v));
	return v;
}

static enum dkim_result result_of(struct dkim_verifier *v, size_t i)
{
	const struct dkim_outcome *o = dkim_verifier_outcome(v, i);
	return o ? o->result : (enum dkim_result)-1;
}

TEST(dkim_rfc8463_example)
{
	static const struct keyrec keys[] = {
		{ "brisbane._domainkey.football.example.com", rfc8463_ed25519, 0, NULL },
		{ "test._domainkey.football.example.com", rfc8463_rsa, 0, NULL },
	};
	size_t len;
	char *msg = read_all(RFC8463_DIR "rfc8463-A3-signed.eml", &len);
	CHECK(msg != NULL);
	if (!msg)
		return;
	for (size_t chunk = 0; chunk <= 7; chunk++) {
		struct dkim_verifier *v = verify(msg, len, chunk, keys, 2, RFC8463_T + 100);
		const struct dkim_outcome *o;
		CHECK_INT(dkim_verifier_count(v), 2);
		o = dkim_verifier_outcome(v, 0);
		CHECK_STR(dkim_result_name(o->result), "pass");
		CHECK_STR(o->domain, "football.example.com");
		CHECK_STR(o->selector, "brisbane");
		CHECK_STR(o->algorithm, "ed25519-sha256");
		CHECK_STR(o->identity, "@football.example.com");
		CHECK_STR(o->header_b, "/gCrinpc");
		CHECK_INT(o->key_bits, 256);
		o = dkim_verifier_outcome(v, 1);
		CHECK_STR(dkim_result_name(o->result), "pass");
		CHECK_STR(o->selector, "test");
		CHECK_STR(o->algorithm, "rsa-sha256");
		CHECK_STR(o->header_b, "F45dVWDf");
		CHECK_INT(o->key_bits, 1024);
		dkim_verifier_free(v);
	}
	free(msg);
}

/* ---- keys and signing helpers -------------------------------------------- */

#define NOW 1700000000

static EVP_PKEY *pem_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return k;
}

/* A fresh key for domain/selector; *record gets its TXT record. */
static struct dkim_sign_key *new_key(const char *alg, unsigned bits, const char *domain, const char *selector,
				     char **record)
{
	char *pem, *rec, err[256];
	struct dkim_sign_key *k;
	if (dkim_keygen(alg, bits, &pem, &rec, err, sizeof err) < 0) {
		fprintf(stderr, "keygen: %s\n", err);
		return NULL;
	}
	k = dkim_sign_key_new(domain, selector, pem_key(pem), err, sizeof err);
	free(pem);
	if (record)
		*record = rec;
	else
		free(rec);
	return k;
}

/* The signatures for msg followed by msg, newly allocated. */
static char *sign_msg(struct dkim_sign_key *const *keys, size_t n, const char *msg, int64_t now,
		      const struct dkim_sign_options *opt)
{
	char err[256], *sigs, *out;
	struct dkim_signer *s = dkim_signer_new(keys, n, now);
	if (opt)
		dkim_signer_set_options(s, opt);
	dkim_signer_feed(s, msg, strlen(msg));
	sigs = dkim_signer_end(s, 0, err, sizeof err);
	dkim_signer_free(s);
	if (!sigs) {
		fprintf(stderr, "sign: %s\n", err);
		return NULL;
	}
	out = xasprintf("%s%s", sigs, msg);
	free(sigs);
	return out;
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	if (!p)
		return xstrdup(s);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static const char msg1[] = "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n"
			   "From: Alice <alice@example.org>\n"
			   "To: Bob <bob@example.net>\n"
			   "Subject: a  test\n"
			   "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
			   "Message-ID: <1@example.org>\n"
			   "MIME-Version: 1.0\n"
			   "Content-Type: text/plain\n"
			   "List-Id: <list.example.org>\n"
			   "\n"
			   "Hello Bob,\n"
			   "  this is a  test.  \n"
			   "\n"
			   "\n";

/* Verifies text with the given key table and returns signature i's result;
 * also checks that 1-byte chunks and late answers give the same. */
static enum dkim_result check_one(const char *text, const struct keyrec *keys, size_t nkeys, int64_t now, size_t i,
				  char *reason, size_t reasonsize)
{
	enum dkim_result r, r2;
	struct dkim_verifier *v = verify(text, strlen(text), 0, keys, nkeys, now);
	r = result_of(v, i);
	if (reason) {
		const struct dkim_outcome *o = dkim_verifier_outcome(v, i);
		snprintf(reason, reasonsize, "%s", o ? o->reason : "(none)");
	}
	dkim_verifier_free(v);
	v = verify(text, strlen(text), 1, keys, nkeys, now);
	CHECK_INT(result_of(v, i), r);
	dkim_verifier_free(v);
	answer_late = 1;
	v = verify(text, strlen(text), 0, keys, nkeys, now);
	r2 = result_of(v, i);
	CHECK_INT(r2, r);
	dkim_verifier_free(v);
	answer_late = 0;
	return r;
}

/* ---- tag-lists and key records ------------------------------------------- */

TEST(dkim_tags_parse)
{
	struct dkim_tags t;
	const char *why = NULL;
	const char *s = " v=1; a = rsa-sha256 ;\r\n\tb=abc\r\n def ; x_1=; \n";
	const struct dkim_tag *tag;
	CHECK_INT(dkim_tags_parse(s, strlen(s), &t, &why), 0);
	CHECK_INT(t.n, 4);
	tag = dkim_tags_get(&t, "a");
	CHECK(tag && tag->value_len == 10 && !memcmp(tag->value, "rsa-sha256", 10));
	tag = dkim_tags_get(&t, "b");
	CHECK(tag && tag->value_len == 9 && !memcmp(tag->value, "abc\r\n def", 9));
	tag = dkim_tags_get(&t, "x_1");
	CHECK(tag && tag->value_len == 0);
	CHECK(dkim_tags_get(&t, "bh") == NULL);
	CHECK_INT(dkim_tags_parse("", 0, &t, &why), 0);
	CHECK_INT(t.n, 0);
	CHECK_INT(dkim_tags_parse("a=1;", 4, &t, &why), 0);
	CHECK_INT(dkim_tags_parse("a=1;a=2", 7, &t, &why), -1);
	CHECK_STR(why, "duplicate tag");
	CHECK_INT(dkim_tags_parse("1a=1", 4, &t, &why), -1);
	CHECK_INT(dkim_tags_parse("a 1", 3, &t, &why), -1);
	CHECK_INT(dkim_tags_parse("a=1;;b=2", 8, &t, &why), -1);
	CHECK_INT(dkim_tags_parse("a=b\x01", 4, &t, &why), -1);
	CHECK_INT(dkim_tags_parse("a-b=1", 5, &t, &why), -1);
	{
		struct msg_buf b = { 0 };
		for (int i = 0; i < DKIM_MAX_TAGS + 1; i++) {
			char tmp[16];
			snprintf(tmp, sizeof tmp, "t%d=x;", i);
			msg_buf_append(&b, tmp, strlen(tmp));
		}
		CHECK_INT(dkim_tags_parse(b.data, b.len, &t, &why), -1);
		CHECK_STR(why, "too many tags");
		msg_buf_clear(&b);
	}
}

static int key_ok(const char *txt, struct dkim_key *k)
{
	const char *why;
	return dkim_key_parse(txt, strlen(txt), k, &why);
}

TEST(dkim_key_records)
{
	struct dkim_key k;
	CHECK_INT(key_ok(rfc8463_rsa, &k), 0);
	CHECK_INT(k.type, DKIM_KEY_RSA);
	CHECK_INT(k.bits, 1024);
	CHECK(k.sha256_ok && !k.testing && !k.revoked);
	dkim_key_clear(&k);
	CHECK_INT(key_ok(rfc8463_ed25519, &k), 0);
	CHECK_INT(k.type, DKIM_KEY_ED25519);
	dkim_key_clear(&k);
	CHECK_INT(key_ok("v=DKIM1; p=", &k), 0);
	CHECK(k.revoked);
	dkim_key_clear(&k);
	CHECK_INT(key_ok("k=rsa; t=y:s; h=sha1:sha256; s=email; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB", &k), 0);
	CHECK(k.testing && k.strict && k.sha1_ok && k.sha256_ok);
	dkim_key_clear(&k);
	CHECK_INT(key_ok("h=sha1; p=", &k), 0);
	CHECK(k.sha1_ok && !k.sha256_ok);
	dkim_key_clear(&k);
	CHECK_INT(key_ok("k=dsa; p=AAAA", &k), -1);
	CHECK_INT(key_ok("p=AAAA; v=DKIM1", &k), -1);  /* v= not first */
	CHECK_INT(key_ok("v=DKIM2; p=", &k), -1);
	CHECK_INT(key_ok("v=DKIM1; k=rsa", &k), -1);    /* no p= */
	CHECK_INT(key_ok("s=other; p=", &k), -1);       /* not for email */
	CHECK_INT(key_ok("s=other:*; p=", &k), 0);
	CHECK_INT(key_ok("p=!!!!", &k), -1);
	CHECK_INT(key_ok("p=AAAAAAAA", &k), -1);        /* not DER */
	CHECK_INT(key_ok("k=ed25519; p=AAAA", &k), -1); /* not 32 bytes */
	CHECK_INT(key_ok("garbage", &k), -1);
	{
		/* The bare RSAPublicKey (PKCS#1) some publish is accepted. */
		char *rec;
		struct dkim_sign_key *sk = new_key("rsa", 1024, "example.org", "s", &rec);
		char *p = strstr(rec, "p=") + 2;
		unsigned char der[600];
		long n = msg_base64_decode(p, strlen(p), der, sizeof der);
		/* The SPKI wraps the RSAPublicKey after a fixed 22-byte header
		 * for 1024-bit keys. */
		char *b64 = msg_base64_encode(der + 22, (size_t)n - 22);
		char *txt = xasprintf("v=DKIM1; p=%s", b64);
		CHECK_INT(key_ok(txt, &k), 0);
		CHECK_INT(k.bits, 1024);
		dkim_key_clear(&k);
		free(txt);
		free(b64);
		free(rec);
		dkim_sign_key_free(sk);
	}
}

/* ---- signing and verifying ------------------------------------------------- */

TEST(dkim_sign_verify_dual)
{
	char *rsa_rec, *ed_rec, *signed_msg, *crlf;
	struct dkim_sign_key *keys[2];
	struct keyrec table[2];
	keys[0] = new_key("rsa", 2048, "example.org", "rsa", &rsa_rec);
	keys[1] = new_key("ed25519", 0, "Example.ORG", "ed", &ed_rec);
	CHECK(keys[0] && keys[1]);
	if (!keys[0] || !keys[1])
		return;
	table[0] = (struct keyrec){ "rsa._domainkey.example.org", rsa_rec, 0, NULL };
	table[1] = (struct keyrec){ "ed._domainkey.example.org", ed_rec, 0, NULL };
	signed_msg = sign_msg(keys, 2, msg1, NOW, NULL);
	CHECK(strstr(signed_msg, "a=rsa-sha256;") && strstr(signed_msg, "a=ed25519-sha256;"));
	CHECK(strstr(signed_msg, "h=received:") == NULL);
	CHECK(strstr(signed_msg, "from:to:subject:date:message-id:mime-version:") != NULL);
	CHECK(strstr(signed_msg, "list-id:from;") != NULL);
	for (size_t chunk = 0; chunk < 4; chunk++) {
		struct dkim_verifier *v = verify(signed_msg, strlen(signed_msg), chunk ? chunk * 3 - 2 : 0, table, 2,
						 NOW + 10);
		CHECK_INT(dkim_verifier_count(v), 2);
		CHECK_STR(dkim_result_name(result_of(v, 0)), "pass");
		CHECK_STR(dkim_result_name(result_of(v, 1)), "pass");
		CHECK_STR(dkim_verifier_outcome(v, 0)->domain, "example.org");
		CHECK_STR(dkim_verifier_outcome(v, 1)->algorithm, "ed25519-sha256");
		CHECK_INT(dkim_verifier_outcome(v, 0)->key_bits, 2048);
		/* The header block is there for DMARC and ARC. */
		CHECK(msg_find_last(dkim_verifier_headers(v), "from", dkim_verifier_headers(v)->nfields) == 3);
		dkim_verifier_free(v);
	}
	/* The same message with CRLF line endings verifies too. */
	{
		struct msg_buf b = { 0 };
		for (const char *p = signed_msg; *p; p++) {
			if (*p == '\n')
				msg_buf_append(&b, "\r", 1);
			msg_buf_append(&b, p, 1);
		}
		crlf = b.data;
	}
	CHECK_INT(check_one(crlf, table, 2, NOW, 0, NULL, 0), DKIM_PASS);
	CHECK_INT(check_one(crlf, table, 2, NOW, 1, NULL, 0), DKIM_PASS);
	free(crlf);
	free(signed_msg);
	free(rsa_rec);
	free(ed_rec);
	dkim_sign_key_free(keys[0]);
	dkim_sign_key_free(keys[1]);
}

TEST(dkim_verify_tampering)
{
	char *rec, *signed_msg, *t, reason[128];
	struct dkim_sign_key *key = new_key("ed25519", 0, "example.org", "sel", &rec);
	struct keyrec table[1] = { { "sel._domainkey.example.org", rec, 0, NULL } };
	signed_msg = sign_msg(&key, 1, msg1, NOW, NULL);

	t = replace(signed_msg, "this is a", "this was a");
	CHECK_INT(check_one(t, table, 1, NOW, 0, reason, sizeof reason), DKIM_FAIL);
	CHECK_STR(reason, "body hash mismatch");
	free(t);
	t = replace(signed_msg, "Subject: a  test", "Subject: a  tost");
	CHECK_INT(check_one(t, table, 1, NOW, 0, reason, sizeof reason), DKIM_FAIL);
	CHECK_STR(reason, "signature did not verify");
	free(t);
	/* Relaxed: white space changes in headers and body do not matter. */
	t = replace(signed_msg, "Subject: a  test", "Subject:    a \t test  ");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_PASS);
	free(t);
	t = replace(signed_msg, "  this is a  test.  \n", " this  is\ta test.\n\n\n\n");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_PASS);
	free(t);
	/* An unsigned field may be added; a second From may not (oversigned),
	 * neither above nor below the first. */
	t = replace(signed_msg, "To: Bob", "X-Spam: no\nTo: Bob");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_PASS);
	free(t);
	t = replace(signed_msg, "Received:", "From: Mallory <m@example.org>\nReceived:");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_FAIL);
	free(t);
	t = replace(signed_msg, "To: Bob", "From: Mallory <m@example.org>\nTo: Bob");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_FAIL);
	free(t);
	/* A signed field that was absent (Cc is not signed here, so adding it
	 * is fine) versus a present one removed. */
	t = replace(signed_msg, "Date: Mon, 1 Jan 2024 00:00:00 +0000\n", "");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_FAIL);
	free(t);
	free(signed_msg);
	free(rec);
	dkim_sign_key_free(key);
}

TEST(dkim_verify_key_problems)
{
	char *rec, *ed_rec, *signed_msg, *t, reason[128];
	struct dkim_sign_key *key = new_key("rsa", 1024, "example.org", "sel", &rec);
	struct dkim_sign_key *ed = new_key("ed25519", 0, "example.org", "ed", &ed_rec);
	const char *n = "sel._domainkey.example.org";
	signed_msg = sign_msg(&key, 1, msg1, NOW, NULL);
	{
		struct keyrec k[] = { { "other", rec, 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
		CHECK_STR(reason, "no key at sel._domainkey.example.org");
	}
	{
		struct keyrec k[] = { { n, NULL, DNS_NODATA, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_PERMERROR);
	}
	{
		struct keyrec k[] = { { n, NULL, DNS_TEMPFAIL, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_TEMPERROR);
	}
	{
		struct keyrec k[] = { { n, NULL, DNS_TIMEOUT, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_TEMPERROR);
	}
	{
		struct keyrec k[] = { { n, "v=DKIM1; k=rsa; p=", 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
		CHECK_STR(reason, "key revoked (empty p=)");
	}
	{
		struct keyrec k[] = { { n, ed_rec, 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
		CHECK_STR(reason, "key type (k=) does not match a=");
	}
	{
		char *r = replace(rec, "k=rsa;", "k=rsa; h=sha1;");
		struct keyrec k[] = { { n, r, 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_PERMERROR);
		free(r);
		r = replace(rec, "k=rsa;", "k=rsa; h=sha1:sha256; s=email;");
		k[0].txt = r;
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_PASS);
		free(r);
		r = replace(rec, "k=rsa;", "k=rsa; s=tlsrpt;");
		k[0].txt = r;
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_PERMERROR);
		free(r);
	}
	{
		/* Testing mode: a pass stays a pass (flagged), a fail becomes
		 * neutral. */
		char *r = replace(rec, "k=rsa;", "k=rsa; t=y;");
		struct keyrec k[] = { { n, r, 0, NULL } };
		struct dkim_verifier *v = verify(signed_msg, strlen(signed_msg), 0, k, 1, NOW);
		CHECK_INT(result_of(v, 0), DKIM_PASS);
		CHECK(dkim_verifier_outcome(v, 0)->testing);
		dkim_verifier_free(v);
		t = replace(signed_msg, "this is a", "this was a");
		CHECK_INT(check_one(t, k, 1, NOW, 0, reason, sizeof reason), DKIM_NEUTRAL);
		CHECK_STR(reason, "body hash mismatch (key in testing mode)");
		free(t);
		free(r);
	}
	{
		/* Strict (t=s): i= must be in d= itself, not a subdomain. */
		char *r = replace(rec, "k=rsa;", "k=rsa; t=s;");
		struct keyrec k[] = { { n, r, 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_PASS);
		free(r);
	}
	{
		/* Two key records: ambiguous; one of them no DKIM key: used. */
		struct keyrec k[] = { { n, rec, 0, rec } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
		CHECK_STR(reason, "more than one key record");
		k[0].txt2 = "google-site-verification=abc";
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, NULL, 0), DKIM_PASS);
	}
	{
		struct keyrec k[] = { { n, "v=DKIM1; p=%%%", 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
		CHECK_STR(reason, "bad key record: malformed p= (base64)");
	}
	{
		/* RFC 8301: an RSA key under 1024 bits never passes. */
		EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
		unsigned char *der = NULL;
		int len = i2d_PUBKEY(small, &der);
		char *b64 = msg_base64_encode(der, (size_t)len);
		char *r = xasprintf("v=DKIM1; k=rsa; p=%s", b64);
		struct keyrec k[] = { { n, r, 0, NULL } };
		CHECK_INT(check_one(signed_msg, k, 1, NOW, 0, reason, sizeof reason), DKIM_POLICY);
		CHECK_STR(reason, "RSA key of 768 bits (RFC 8301 wants 1024 or more)");
		free(r);
		free(b64);
		OPENSSL_free(der);
		EVP_PKEY_free(small);
	}
	free(signed_msg);
	free(rec);
	free(ed_rec);
	dkim_sign_key_free(key);
	dkim_sign_key_free(ed);
}

TEST(dkim_verify_malformed_signatures)
{
	static const char bh[] = "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
	static const struct {
		const char *tags;
		enum dkim_result want;
		const char *reason;
	} cases[] = {
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA", DKIM_FAIL, NULL }, /* well-formed */
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s", DKIM_PERMERROR, "missing b=" },
		{ "v=2; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA", DKIM_PERMERROR, "unsupported version (v=)" },
		{ "a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA", DKIM_PERMERROR, "missing v=" },
		{ "v=1; a=rsa-sha512; d=example.org; s=sel; h=from; %s; b=AAAA", DKIM_PERMERROR, "unknown algorithm (a=)" },
		{ "v=1; a=rsa-sha1; d=example.org; s=sel; h=from; %s; b=AAAA", DKIM_POLICY,
		  "rsa-sha1 is not accepted (RFC 8301)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=to:subject; %s; b=AAAA", DKIM_PERMERROR,
		  "From is not signed (h=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from::to; %s; b=AAAA", DKIM_PERMERROR, "malformed h=" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; i=x@example.com", DKIM_PERMERROR,
		  "i= is not within d=" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; i=x@sub.example.org", DKIM_FAIL, NULL },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; c=relaxed/fancy", DKIM_PERMERROR,
		  "unknown canonicalization (c=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; q=dns/foo", DKIM_PERMERROR,
		  "no known query method (q=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AA!A", DKIM_PERMERROR, "malformed b=" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=AAAA; b=AAAA", DKIM_PERMERROR, "malformed bh=" },
		{ "v=1; a=rsa-sha256; d=exa mple.org; s=sel; h=from; %s; b=AAAA", DKIM_PERMERROR, "bad domain (d=)" },
		{ "v=1; a=rsa-sha256; d=org; s=sel; h=from; %s; b=AAAA", DKIM_PERMERROR, "bad domain (d=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=se/l; h=from; %s; b=AAAA", DKIM_PERMERROR, "bad selector (s=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel.; h=from; %s; b=AAAA", DKIM_PERMERROR, "bad selector (s=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; d=x.org", DKIM_PERMERROR,
		  "malformed signature: duplicate tag" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; l=x", DKIM_PERMERROR, "malformed l=" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; t=1700000000; x=1600000000",
		  DKIM_PERMERROR, "x= is before t=" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; x=1699999999", DKIM_PERMERROR,
		  "signature expired (x=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; x=1700000000", DKIM_FAIL, NULL },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; t=1700000301", DKIM_POLICY,
		  "timestamp in the future (t=)" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; t=1700000299", DKIM_FAIL, NULL },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; t=1234567890123", DKIM_PERMERROR,
		  "malformed t=" },
		{ "v=1 a=rsa-sha256", DKIM_PERMERROR, "unsupported version (v=)" },
		{ "v=1; a=rsa-sha256; =x", DKIM_PERMERROR, "malformed signature: bad tag name" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; %s; b=AAAA; s=\x01", DKIM_PERMERROR,
		  "malformed signature: bad character in a tag value" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char tags[600], *m;
		struct keyrec k[] = { { "sel._domainkey.example.org", rfc8463_rsa, 0, NULL } };
		struct dkim_verifier *v;
		const struct dkim_outcome *o;
		snprintf(tags, sizeof tags, cases[i].tags, bh);
		m = xasprintf("DKIM-Signature: %s\nFrom: a@example.org\n\n", tags);
		v = verify(m, strlen(m), 0, k, 1, NOW);
		o = dkim_verifier_outcome(v, 0);
		if (!o || o->result != cases[i].want || (cases[i].reason && strcmp(o->reason, cases[i].reason))) {
			fprintf(stderr, "case %zu: %s: got %s (%s)\n", i, tags, o ? dkim_result_name(o->result) : "-",
				o ? o->reason : "-");
			unit_failures++;
		}
		/* A signature decided by its syntax needs no key. */
		if (cases[i].want == DKIM_PERMERROR || cases[i].want == DKIM_POLICY) {
			struct dkim_verifier *v2 = dkim_verifier_new(0, NOW);
			dkim_verifier_feed(v2, m, strlen(m));
			CHECK(dkim_verifier_key_name(v2, 0) == NULL);
			dkim_verifier_free(v2);
		}
		dkim_verifier_free(v);
		free(m);
	}
	/* The report fields survive a bad signature. */
	{
		const char *m = "DKIM-Signature: v=1; a=RSA-SHA256; d=Example.ORG; s=sel; h=to; "
				"bh=AAAA; b=abcdefghijkl\n mnop\nFrom: a\n\n";
		struct dkim_verifier *v = verify(m, strlen(m), 0, NULL, 0, NOW);
		const struct dkim_outcome *o = dkim_verifier_outcome(v, 0);
		CHECK_INT(o->result, DKIM_PERMERROR);
		CHECK_STR(o->domain, "example.org");
		CHECK_STR(o->identity, "@example.org");
		CHECK_STR(o->selector, "sel");
		CHECK_STR(o->algorithm, "rsa-sha256");
		CHECK_STR(o->header_b, "abcdefgh");
		dkim_verifier_free(v);
	}
}

TEST(dkim_verify_body_length)
{
	char *rec, *signed_msg, *t, reason[128];
	struct dkim_sign_key *key = new_key("ed25519", 0, "example.org", "sel", &rec);
	struct keyrec table[1] = { { "sel._domainkey.example.org", rec, 0, NULL } };
	struct dkim_sign_options opt = { MSG_CANON_RELAXED, MSG_CANON_RELAXED, -1, 1 };
	struct dkim_verifier *v;
	signed_msg = sign_msg(&key, 1, msg1, NOW, &opt);
	CHECK(strstr(signed_msg, " l=30;") != NULL); /* "Hello Bob,\r\n this is a test.\r\n" */
	v = verify(signed_msg, strlen(signed_msg), 0, table, 1, NOW);
	CHECK_INT(result_of(v, 0), DKIM_PASS);
	CHECK_INT(dkim_verifier_outcome(v, 0)->body_length, 30);
	CHECK_INT(dkim_verifier_outcome(v, 0)->unsigned_body, 0);
	dkim_verifier_free(v);
	/* Appended content keeps the signature valid, and is reported. */
	t = xasprintf("%sUnsigned advertisement\n", signed_msg);
	v = verify(t, strlen(t), 1, table, 1, NOW);
	CHECK_INT(result_of(v, 0), DKIM_PASS);
	/* The two empty lines that ended the signed body, then the text. */
	CHECK_INT(dkim_verifier_outcome(v, 0)->unsigned_body, 28);
	dkim_verifier_free(v);
	free(t);
	/* A body shorter than l=. */
	t = replace(signed_msg, "  this is a  test.  \n", "");
	CHECK_INT(check_one(t, table, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
	CHECK_STR(reason, "l= is larger than the body");
	free(t);
	free(signed_msg);
	free(rec);
	dkim_sign_key_free(key);
}

TEST(dkim_verify_times)
{
	char *rec, *signed_msg;
	struct dkim_sign_key *key = new_key("ed25519", 0, "example.org", "sel", &rec);
	struct keyrec table[1] = { { "sel._domainkey.example.org", rec, 0, NULL } };
	struct dkim_sign_options opt = { MSG_CANON_RELAXED, MSG_CANON_RELAXED, NOW + 100, 0 };
	signed_msg = sign_msg(&key, 1, msg1, NOW, &opt);
	CHECK(strstr(signed_msg, " x=1700000100;") != NULL);
	CHECK_INT(check_one(signed_msg, table, 1, NOW + 100, 0, NULL, 0), DKIM_PASS);
	CHECK_INT(check_one(signed_msg, table, 1, NOW + 101, 0, NULL, 0), DKIM_PERMERROR);
	/* A signature from the future: within the clock skew it passes. */
	CHECK_INT(check_one(signed_msg, table, 1, NOW - DKIM_CLOCK_SKEW, 0, NULL, 0), DKIM_PASS);
	CHECK_INT(check_one(signed_msg, table, 1, NOW - DKIM_CLOCK_SKEW - 1, 0, NULL, 0), DKIM_POLICY);
	free(signed_msg);
	free(rec);
	dkim_sign_key_free(key);
}

TEST(dkim_verify_simple_canonicalization)
{
	char *rec, *signed_msg, *t;
	struct dkim_sign_key *key = new_key("rsa", 1024, "example.org", "sel", &rec);
	struct keyrec table[1] = { { "sel._domainkey.example.org", rec, 0, NULL } };
	struct dkim_sign_options opt = { MSG_CANON_SIMPLE, MSG_CANON_SIMPLE, -1, 0 };
	signed_msg = sign_msg(&key, 1, msg1, NOW, &opt);
	CHECK(strstr(signed_msg, "c=simple/simple;") != NULL);
	CHECK_INT(check_one(signed_msg, table, 1, NOW, 0, NULL, 0), DKIM_PASS);
	/* Trailing empty lines do not count in simple either. */
	t = xasprintf("%s\n\n", signed_msg);
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_PASS);
	free(t);
	/* But white space does. */
	t = replace(signed_msg, "Subject: a  test", "Subject: a test");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_FAIL);
	free(t);
	t = replace(signed_msg, "a  test.", "a test.");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_FAIL);
	free(t);
	free(signed_msg);
	opt.header_canon = MSG_CANON_RELAXED;
	signed_msg = sign_msg(&key, 1, msg1, NOW, &opt);
	CHECK(strstr(signed_msg, "c=relaxed/simple;") != NULL);
	t = replace(signed_msg, "Subject: a  test", "Subject: a test");
	CHECK_INT(check_one(t, table, 1, NOW, 0, NULL, 0), DKIM_PASS);
	free(t);
	free(signed_msg);
	free(rec);
	dkim_sign_key_free(key);
}

TEST(dkim_verify_header_block_problems)
{
	char *rec, *signed_msg, *t, reason[128];
	struct dkim_sign_key *key = new_key("ed25519", 0, "example.org", "sel", &rec);
	struct keyrec table[1] = { { "sel._domainkey.example.org", rec, 0, NULL } };
	struct msg_buf b = { 0 };
	struct dkim_verifier *v;
	signed_msg = sign_msg(&key, 1, msg1, NOW, NULL);

	/* No signature: none. */
	v = verify(msg1, strlen(msg1), 0, table, 1, NOW);
	CHECK_INT(dkim_verifier_count(v), 0);
	CHECK(dkim_verifier_done(v));
	dkim_verifier_free(v);
	/* A line that is no field. */
	t = replace(signed_msg, "To: Bob", "not a header\nTo: Bob");
	CHECK_INT(check_one(t, table, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
	CHECK_STR(reason, "malformed header block");
	free(t);
	/* Too many fields, with the signature on top. */
	msg_buf_append(&b, signed_msg, strlen(signed_msg));
	{
		char *p = strstr(b.data, "Received:");
		struct msg_buf c = { 0 };
		msg_buf_append(&c, b.data, (size_t)(p - b.data));
		for (int i = 0; i < 1000; i++)
			msg_buf_append(&c, "X-Filler: x\n", 12);
		msg_buf_append(&c, p, strlen(p));
		CHECK_INT(check_one(c.data, table, 1, NOW, 0, reason, sizeof reason), DKIM_PERMERROR);
		CHECK_STR(reason, "more than 1000 header fields");
		msg_buf_clear(&c);
	}
	msg_buf_clear(&b);
	/* Over 1 MiB of header and no signature kept: not verifiable. */
	{
		char line[6000];
		memset(line, 'x', sizeof line);
		memcpy(line, "X-Big: ", 7);
		line[sizeof line - 1] = '\n';
		for (int i = 0; i < 200; i++)
			msg_buf_append(&b, line, sizeof line);
		msg_buf_append(&b, "\nbody\n", 6);
		v = verify(b.data, b.len, 4096, table, 1, NOW);
		CHECK_INT(dkim_verifier_count(v), 1);
		CHECK_INT(result_of(v, 0), DKIM_PERMERROR);
		CHECK_STR(dkim_verifier_outcome(v, 0)->reason, "header block over 1 MiB");
		CHECK_STR(dkim_verifier_outcome(v, 0)->domain, "");
		dkim_verifier_free(v);
		msg_buf_clear(&b);
	}
	free(signed_msg);
	free(rec);
	dkim_sign_key_free(key);
}

TEST(dkim_verify_max_signatures)
{
	char *recs[3], *signed_msg;
	struct dkim_sign_key *keys[3];
	struct keyrec table[3];
	struct dkim_verifier *v;
	for (int i = 0; i < 3; i++) {
		char sel[16];
		snprintf(sel, sizeof sel, "s%d", i);
		keys[i] = new_key("ed25519", 0, "example.org", sel, &recs[i]);
		table[i] = (struct keyrec){ NULL, recs[i], 0, NULL };
	}
	table[0].name = "s0._domainkey.example.org";
	table[1].name = "s1._domainkey.example.org";
	table[2].name = "s2._domainkey.example.org";
	signed_msg = sign_msg(keys, 3, msg1, NOW, NULL);
	v = dkim_verifier_new(2, NOW);
	dkim_verifier_feed(v, signed_msg, strlen(signed_msg));
	CHECK_INT(dkim_verifier_count(v), 2);
	answer_keys(v, table, 3);
	CHECK(!dkim_verifier_done(v));
	CHECK(dkim_verifier_outcome(v, 0) == NULL);
	dkim_verifier_end(v);
	CHECK(dkim_verifier_done(v));
	CHECK_INT(result_of(v, 0), DKIM_PASS);
	CHECK_INT(result_of(v, 1), DKIM_PASS);
	CHECK_STR(dkim_verifier_outcome(v, 1)->selector, "s1");
	dkim_verifier_free(v);
	v = verify(signed_msg, strlen(signed_msg), 0, table, 3, NOW);
	CHECK_INT(dkim_verifier_count(v), 3);
	CHECK_INT(result_of(v, 2), DKIM_PASS);
	dkim_verifier_free(v);
	free(signed_msg);
	for (int i = 0; i < 3; i++) {
		free(recs[i]);
		dkim_sign_key_free(keys[i]);
	}
}

TEST(dkim_sign_rfc8032_seed)
{
	/* RFC 8463's Ed25519 key is RFC 8032's test 1: signing with its seed
	 * gives signatures the published record verifies. */
	static const struct keyrec keys[] = {
		{ "brisbane._domainkey.football.example.com", rfc8463_ed25519, 0, NULL },
	};
	size_t len;
	char *seed64 = read_all(RFC8463_DIR "ed25519-seed-rfc8032-7.1-test1.b64", &len), err[256], *rec, *m, *msg;
	unsigned char seed[64];
	struct dkim_sign_key *k;
	CHECK(seed64 != NULL);
	if (!seed64)
		return;
	CHECK_INT(msg_base64_decode(seed64, len, seed, sizeof seed), 32);
	k = dkim_sign_key_new("football.example.com", "brisbane",
			      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32), err, sizeof err);
	CHECK(k != NULL);
	rec = dkim_sign_key_record(k);
	CHECK_STR(rec, rfc8463_ed25519);
	msg = read_all(RFC8463_DIR "rfc8463-A3-signed.eml", &len);
	/* Drop the two signatures: the message starts at From. */
	m = sign_msg(&k, 1, strstr(msg, "From:"), RFC8463_T, NULL);
	CHECK_INT(check_one(m, keys, 1, RFC8463_T, 0, NULL, 0), DKIM_PASS);
	free(m);
	free(msg);
	free(rec);
	free(seed64);
	dkim_sign_key_free(k);
}

TEST(dkim_sign_errors_and_keys)
{
	char err[256], *pem, *rec;
	struct dkim_sign_key *k = new_key("ed25519", 0, "example.org", "sel", NULL);
	struct dkim_signer *s;
	s = dkim_signer_new(&k, 1, NOW);
	dkim_signer_feed(s, "To: b\n\nbody\n", 12);
	CHECK(dkim_signer_end(s, 0, err, sizeof err) == NULL);
	CHECK(strstr(err, "no From") != NULL);
	dkim_signer_free(s);
	s = dkim_signer_new(&k, 1, NOW);
	dkim_signer_feed(s, "From: a\nbad line\n\nbody\n", 23);
	CHECK(dkim_signer_end(s, 0, err, sizeof err) == NULL);
	dkim_signer_free(s);
	/* CRLF output when asked. */
	s = dkim_signer_new(&k, 1, NOW);
	dkim_signer_feed(s, "From: a\n\nbody\n", 14);
	{
		char *sig = dkim_signer_end(s, 1, err, sizeof err);
		CHECK(sig && strstr(sig, ";\r\n\t") && sig[strlen(sig) - 1] == '\n' && sig[strlen(sig) - 2] == '\r');
		free(sig);
	}
	dkim_signer_free(s);
	dkim_sign_key_free(k);
	CHECK_INT(dkim_keygen("rsa", 512, &pem, &rec, err, sizeof err), -1);
	CHECK_INT(dkim_keygen("dsa", 2048, &pem, &rec, err, sizeof err), -1);
	CHECK_INT(dkim_keygen("ed25519", 0, &pem, &rec, err, sizeof err), 0);
	CHECK(!strncmp(pem, "-----BEGIN PRIVATE KEY-----", 27));
	CHECK(!strncmp(rec, "v=DKIM1; k=ed25519; p=", 22) && strlen(rec) == 22 + 44);
	free(pem);
	free(rec);
	CHECK(dkim_sign_key_new("not a domain", "s", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), err, sizeof err) ==
	      NULL);
	CHECK(dkim_sign_key_new("example.org", "../x", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), err, sizeof err) ==
	      NULL);
	CHECK(dkim_sign_key_new("example.org", "s", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768), err,
				sizeof err) == NULL);
	CHECK(strstr(err, "768 bits") != NULL);
	CHECK(dkim_sign_key_load("example.org", "s", "/nonexistent/key", err, sizeof err) == NULL);
	CHECK(dkim_valid_name("a-b_c.example.org", 17));
	CHECK(dkim_valid_name("example.org.", 12));
	CHECK(!dkim_valid_name("a..b", 4));
	CHECK(!dkim_valid_name("", 0));
	CHECK(!dkim_valid_name("a b", 3));
}
