/*
 * Unit tests for src/auth/arc.c over an in-process table of key records:
 * instance parsing, the chain's structure rules (RFC 8617 5.2 steps 1-3),
 * sealing and validating round trips (RSA and Ed25519, up to the 50-set
 * limit), oldest-pass, tampering, the DNS outcomes, sealing a failed chain
 * (5.1.2) and not continuing a terminated one, streaming in any chunking.
 * The ARC test suites and dkimpy run in tests/integration/test_arc.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/arc.h"
#include "lib/util.h"
#include "unit.h"

#define T0 1700000000

static const char base_msg[] = "Received: from client.example.net by mx.example.org\n"
			       "From: Alice <alice@example.org>\n"
			       "To: bob@example.net\n"
			       "Subject: ARC unit test\n"
			       "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
			       "Message-ID: <arc-unit@example.org>\n"
			       "\n"
			       "Hello Bob,\n"
			       "  a line with  odd   spacing \t\n"
			       "\n"
			       "-- \nAlice\n";

/* ---- keys ------------------------------------------------------------------ */

struct tkey {
	const char *domain, *selector, *alg;
	unsigned bits;
	struct arc_sign_key *key;
	char *record, *name;
};

static struct tkey tkeys[] = {
	{ "example.org", "rsa", "rsa", 2048, NULL, NULL, NULL },
	{ "example.net", "ed", "ed25519", 0, NULL, NULL, NULL },
	{ "example.com", "small", "rsa", 1024, NULL, NULL, NULL },
};
enum { K_RSA, K_ED, K_RSA1024 };

/* Keys are made once for the whole run (and stay reachable from here). */
static struct arc_sign_key *key_of(int which)
{
	struct tkey *k = &tkeys[which];
	if (!k->key) {
		char *pem, err[256];
		BIO *bio;
		EVP_PKEY *pk;
		if (dkim_keygen(k->alg, k->bits, &pem, &k->record, err, sizeof err) < 0)
			abort();
		bio = BIO_new_mem_buf(pem, -1);
		pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
		free(pem);
		k->key = arc_sign_key_new(k->domain, k->selector, pk, err, sizeof err);
		if (!k->key)
			abort();
		k->name = xasprintf("%s._domainkey.%s", k->selector, k->domain);
	}
	return k->key;
}

/* A key table entry: name -> TXT, or a DNS status. */
struct keyrec {
	const char *name;
	const char *txt;    /* NULL: st */
	enum dns_status st;
};

static size_t nextra;
static struct keyrec extra[4]; /* overrides for one test */

static void answer_keys(struct arc_verifier *v)
{
	for (size_t k = 0; k < arc_verifier_key_count(v); k++) {
		const char *name = arc_verifier_key_name(v, k), *txt = NULL;
		enum dns_status st = DNS_NXDOMAIN;
		struct dns_rr rr = { 0 };
		struct dns_answer a = { 0 };
		for (size_t i = 0; i < ARRAY_LEN(tkeys); i++)
			if (tkeys[i].name && !strcasecmp(tkeys[i].name, name))
				txt = tkeys[i].record;
		for (size_t i = 0; i < nextra; i++) {
			if (!strcasecmp(extra[i].name, name)) {
				txt = extra[i].txt;
				st = extra[i].st;
			}
		}
		if (!txt) {
			arc_verifier_key_answer(v, k, st, NULL);
			continue;
		}
		rr.type = DNS_T_TXT;
		rr.data = (unsigned char *)txt;
		rr.len = strlen(txt);
		a.rrs = &rr;
		a.nrrs = 1;
		arc_verifier_key_answer(v, k, DNS_ANSWER, &a);
	}
}

/* Verifies msg in chunks of `chunk` bytes (0: at once), answering the keys
 * as soon as the header block is complete. The caller frees. */
static struct arc_verifier *verify_chunked(const char *msg, size_t chunk)
{
	struct arc_verifier *v = arc_verifier_new(T0);
	size_t len = strlen(msg), off = 0;
	int answered = 0;
	if (!chunk)
		chunk = len ? len : 1;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		arc_verifier_feed(v, msg + off, n);
		off += n;
		if (!answered && arc_verifier_headers_done(v)) {
			answer_keys(v);
			answered = 1;
		}
	}
	arc_verifier_end(v);
	if (!answered)
		answer_keys(v);
	CHECK(arc_verifier_done(v));
	CHECK(arc_verifier_key_answers(v) == arc_verifier_key_count(v));
	return v;
}

static struct arc_verifier *verify(const char *msg)
{
	return verify_chunked(msg, 0);
}

static enum arc_cv cv_of(const char *msg)
{
	struct arc_verifier *v = verify(msg);
	enum arc_cv cv = arc_verifier_result(v)->cv;
	arc_verifier_free(v);
	return cv;
}

/* The reason of msg's result, into a static buffer. */
static const char *reason_of(const char *msg)
{
	static char buf[256];
	struct arc_verifier *v = verify(msg);
	str_copy(buf, arc_verifier_result(v)->reason, sizeof buf);
	arc_verifier_free(v);
	return buf;
}

/* Seals msg; returns the sealed message (newly allocated), or NULL with
 * the error in *errout (static). */
static char *seal_ex(const char *msg, int which, enum arc_cv cv, const char *results, const char *headers,
		     const char **errout)
{
	static char err[256];
	struct arc_sealer *s = arc_sealer_new(key_of(which), "mx.example.org", T0);
	char *fields, *out;
	if (headers && arc_sealer_set_headers(s, headers, err, sizeof err) < 0) {
		arc_sealer_free(s);
		*errout = err;
		return NULL;
	}
	arc_sealer_feed(s, msg, strlen(msg));
	fields = arc_sealer_end(s, cv, results, 0, err, sizeof err);
	arc_sealer_free(s);
	if (!fields) {
		*errout = err;
		return NULL;
	}
	out = xasprintf("%s%s", fields, msg);
	free(fields);
	return out;
}

static char *seal(const char *msg, int which, enum arc_cv cv)
{
	const char *err = NULL;
	char *out = seal_ex(msg, which, cv, "spf=pass smtp.mailfrom=example.org; dkim=none", NULL, &err);
	if (!out)
		fprintf(stderr, "seal: %s\n", err);
	CHECK(out != NULL);
	return out ? out : xstrdup(msg);
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* 1 when s holds want once its folding (LF TAB) is removed. */
static int has_unfolded(const char *s, const char *want)
{
	char *u = xstrdup(s), *o = u;
	int found;
	for (const char *p = s; *p; p++) {
		if (p[0] == '\n' && p[1] == '\t') {
			p++;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	found = strstr(u, want) != NULL;
	free(u);
	return found;
}

/* Replaces the first occurrence of from with to (newly allocated copy). */
static char *replace(const char *msg, const char *from, const char *to)
{
	const char *p = strstr(msg, from);
	CHECK(p != NULL);
	if (!p)
		return xstrdup(msg);
	return xasprintf("%.*s%s%s", (int)(p - msg), msg, to, p + strlen(from));
}

/* ---- parsing and structure ----------------------------------------------- */

TEST(arc_instance_parsing)
{
	static const struct {
		enum arc_kind kind;
		const char *value;
		unsigned want;
	} cases[] = {
		{ ARC_AAR, " i=1; mx.example.org; spf=pass", 1 },
		{ ARC_AAR, "i = 7 ; x", 7 },
		{ ARC_AAR, " (comment) i=50;x", 50 },
		{ ARC_AAR, "i=0; x", 0 },
		{ ARC_AAR, "i=51; x", 0 },
		{ ARC_AAR, "i=100; x", 0 },
		{ ARC_AAR, "i=1 x;", 0 },
		{ ARC_AAR, "x; i=1;", 0 },
		{ ARC_AAR, "I=1;", 0 },
		{ ARC_AAR, "i=1", 0 },
		{ ARC_AAR, "", 0 },
		{ ARC_AMS, " a=rsa-sha256; i=3; b=x", 3 },
		{ ARC_AMS, "i=01", 1 },
		{ ARC_AMS, "i=", 0 },
		{ ARC_AMS, "i=x", 0 },
		{ ARC_AMS, "a=b", 0 },
		{ ARC_AMS, "i=1; i=1", 0 },
		{ ARC_AS, "i=2;;", 0 },
		{ ARC_AS, "i=2;", 2 },
		{ ARC_AS, "i=-1", 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *why = NULL;
		unsigned got = arc_field_instance(cases[i].kind, cases[i].value, strlen(cases[i].value), &why);
		if (got != cases[i].want)
			fprintf(stderr, "case %zu: %s\n", i, cases[i].value);
		CHECK_INT(got, cases[i].want);
		if (!got)
			CHECK(why != NULL);
	}
}

static int collect(const char *hdr, struct arc_chain *c, const char **why)
{
	struct msg_headers h;
	int rc;
	msg_headers_parse(&h, hdr, strlen(hdr));
	rc = arc_chain_collect(&h, c, why);
	msg_headers_clear(&h);
	return rc;
}

TEST(arc_chain_structure)
{
	struct arc_chain c;
	const char *why = NULL;
	CHECK_INT(collect("From: a@b.example\n\n", &c, &why), 0);
	CHECK_INT(c.n, 0);
	CHECK_INT(c.nfields, 0);
	/* Two complete sets, in any order among other fields. */
	CHECK_INT(collect("ARC-Seal: i=2; cv=pass\nX: y\nARC-Message-Signature: i=2\n"
			  "arc-authentication-results: i=2; x\nARC-Authentication-Results: i=1; x\n"
			  "ARC-Seal: i=1; cv=none\nARC-Message-Signature: i=1\n\n", &c, &why), 0);
	CHECK_INT(c.n, 2);
	CHECK_INT(c.nfields, 6);
	CHECK(c.aar[1] == 4 && c.ams[1] == 6 && c.as[1] == 5 && c.aar[2] == 3 && c.as[2] == 0);
	/* A gap: sets 1 and 3. */
	CHECK_INT(collect("ARC-Seal: i=3\nARC-Message-Signature: i=3\nARC-Authentication-Results: i=3; x\n"
			  "ARC-Seal: i=1\nARC-Message-Signature: i=1\nARC-Authentication-Results: i=1; x\n\n",
			  &c, &why), -1);
	CHECK_INT(c.bad, 2);
	CHECK(strstr(why, "incomplete") != NULL);
	/* A field missing. */
	CHECK_INT(collect("ARC-Seal: i=1\nARC-Authentication-Results: i=1; x\n\n", &c, &why), -1);
	CHECK_INT(c.bad, 1);
	/* A field twice. */
	CHECK_INT(collect("ARC-Seal: i=1\nARC-Seal: i=1\nARC-Message-Signature: i=1\n"
			  "ARC-Authentication-Results: i=1; x\n\n", &c, &why), -1);
	CHECK(strstr(why, "two ARC-Seal") != NULL);
	/* No valid instance; a malformed tag-list says so. */
	CHECK_INT(collect("ARC-Seal: i=51\n\n", &c, &why), -1);
	CHECK(strstr(why, "no valid instance") != NULL);
	CHECK_INT(collect("ARC-Message-Signature: i=1; s=a; s=b\n\n", &c, &why), -1);
	CHECK(strstr(why, "malformed tag-list") != NULL);
	CHECK_INT(collect("ARC-Authentication-Results: mx.example.org; i=1\n\n", &c, &why), -1);
	CHECK(strstr(why, "ARC-Authentication-Results") != NULL);
	/* More than 150 ARC fields. */
	{
		struct msg_buf b = { 0 };
		for (int i = 0; i < 151; i++)
			msg_buf_append(&b, "ARC-Seal: i=1\n", 14);
		msg_buf_append(&b, "\n", 1);
		CHECK_INT(collect(b.data, &c, &why), -1);
		CHECK(strstr(why, "150") != NULL);
		CHECK_INT(c.nfields, 151);
		msg_buf_clear(&b);
	}
}

TEST(arc_cv_names)
{
	enum arc_cv cv;
	CHECK_STR(arc_cv_name(ARC_CV_NONE), "none");
	CHECK_STR(arc_cv_name(ARC_CV_PASS), "pass");
	CHECK_STR(arc_cv_name(ARC_CV_FAIL), "fail");
	CHECK(arc_cv_parse("pass", &cv) == 0 && cv == ARC_CV_PASS);
	CHECK(arc_cv_parse("Pass", &cv) < 0);
	CHECK(arc_cv_parse("", &cv) < 0);
}

/* ---- round trips ------------------------------------------------------------ */

TEST(arc_none)
{
	struct arc_verifier *v = verify(base_msg);
	const struct arc_result *r = arc_verifier_result(v);
	char ar[64];
	CHECK_INT(r->cv, ARC_CV_NONE);
	CHECK_INT(r->instances, 0);
	CHECK_INT(r->nsets, 0);
	CHECK_INT(arc_verifier_key_count(v), 0);
	arc_result_authres(r, ar, sizeof ar);
	CHECK_STR(ar, "arc=none");
	arc_verifier_free(v);
	CHECK_INT(cv_of(""), ARC_CV_NONE);
	CHECK_INT(cv_of("\nbody only\n"), ARC_CV_NONE);
}

TEST(arc_seal_and_verify_one_hop)
{
	char *m = seal(base_msg, K_RSA, ARC_CV_NONE);
	struct arc_verifier *v;
	const struct arc_result *r;
	char ar[64];
	CHECK(starts_with(m, "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=rsa; t=1700000000; b=\n\t"));
	CHECK(strstr(m, "\nARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed;") != NULL);
	CHECK(strstr(m, "h=received") == NULL);
	CHECK(has_unfolded(m, "h=from:to:subject:date:message-id:from;"));
	CHECK(strstr(m, "\nARC-Authentication-Results: i=1; mx.example.org;\n\tspf=pass smtp.mailfrom=example.org;\n"
			"\tdkim=none\nReceived:") != NULL);
	CHECK(strchr(m, '\r') == NULL);
	for (size_t chunk = 0; chunk < 5; chunk++) {
		v = verify_chunked(m, chunk ? chunk * 3 - 2 : 0);
		r = arc_verifier_result(v);
		CHECK_INT(r->cv, ARC_CV_PASS);
		CHECK_INT(r->instances, 1);
		CHECK_INT(r->oldest_pass, 0);
		CHECK_STR(r->reason, "ok");
		CHECK_INT(r->nsets, 1);
		CHECK_STR(r->sets[0].seal_domain, "example.org");
		CHECK_STR(r->sets[0].seal_selector, "rsa");
		CHECK_STR(r->sets[0].sig_domain, "example.org");
		CHECK_STR(r->sets[0].aar, "mx.example.org; spf=pass smtp.mailfrom=example.org; dkim=none");
		CHECK_INT(r->sets[0].cv, ARC_CV_NONE);
		CHECK(r->sets[0].ams_ok == 1 && r->sets[0].as_ok == 1);
		CHECK_INT(arc_verifier_key_count(v), 1);
		arc_result_authres(r, ar, sizeof ar);
		CHECK_STR(ar, "arc=pass header.oldest-pass=0");
		arc_verifier_free(v);
	}
	/* CRLF in, CRLF out, and it verifies. */
	{
		struct msg_buf b = { 0 };
		struct arc_sealer *s = arc_sealer_new(key_of(K_ED), "mx.example.org", T0);
		char err[256], *fields;
		for (const char *p = base_msg; *p; p++)
			msg_buf_append(&b, *p == '\n' ? "\r\n" : p, *p == '\n' ? 2 : 1);
		arc_sealer_feed(s, b.data, b.len);
		fields = arc_sealer_end(s, ARC_CV_NONE, NULL, 1, err, sizeof err);
		CHECK(fields && strstr(fields, "i=1; a=ed25519-sha256") && strstr(fields, "\r\n\t"));
		CHECK(fields && strstr(fields, "mx.example.org; none\r\n"));
		CHECK_INT(arc_sealer_instance(s), 1);
		if (fields) {
			char *all = xasprintf("%s%s", fields, b.data);
			CHECK_INT(cv_of(all), ARC_CV_PASS);
			free(all);
		}
		free(fields);
		arc_sealer_free(s);
		msg_buf_clear(&b);
	}
	free(m);
}

TEST(arc_two_hops_and_oldest_pass)
{
	char *m1 = seal(base_msg, K_RSA, ARC_CV_NONE);
	char *m2 = seal(m1, K_ED, ARC_CV_PASS);
	struct arc_verifier *v = verify(m2);
	const struct arc_result *r = arc_verifier_result(v);
	char *mod, *m3;
	CHECK_INT(r->cv, ARC_CV_PASS);
	CHECK_INT(r->instances, 2);
	CHECK_INT(r->oldest_pass, 0);
	CHECK_INT(r->nsets, 2);
	CHECK_STR(r->sets[0].seal_domain, "example.org");
	CHECK_STR(r->sets[1].seal_domain, "example.net");
	CHECK_INT(r->sets[1].cv, ARC_CV_PASS);
	CHECK_INT(arc_verifier_key_count(v), 2);
	arc_verifier_free(v);
	/* A mailing list at hop 2: it validates, changes the body, seals. */
	mod = replace(m1, "-- \nAlice\n", "-- \nAlice\n_______\nlist footer\n");
	CHECK_INT(cv_of(mod), ARC_CV_FAIL);
	m3 = seal(mod, K_ED, ARC_CV_PASS);
	v = verify(m3);
	r = arc_verifier_result(v);
	CHECK_INT(r->cv, ARC_CV_PASS);
	CHECK_INT(r->oldest_pass, 2);
	CHECK(r->sets[0].ams_ok == 0 && r->sets[1].ams_ok == 1 && r->sets[0].as_ok == 1);
	arc_verifier_free(v);
	free(m1);
	free(m2);
	free(mod);
	free(m3);
}

TEST(arc_fifty_sets)
{
	char *m = xstrdup(base_msg), *next;
	const char *err = NULL;
	struct arc_verifier *v;
	for (int i = 0; i < ARC_MAX_INSTANCES; i++) {
		next = seal(m, K_ED, i ? ARC_CV_PASS : ARC_CV_NONE);
		free(m);
		m = next;
	}
	v = verify(m);
	CHECK_INT(arc_verifier_result(v)->cv, ARC_CV_PASS);
	CHECK_INT(arc_verifier_result(v)->instances, 50);
	CHECK_INT(arc_verifier_result(v)->nsets, 50);
	CHECK_INT(arc_verifier_key_count(v), 1);
	arc_verifier_free(v);
	/* No 51st set. */
	CHECK(seal_ex(m, K_ED, ARC_CV_PASS, NULL, NULL, &err) == NULL);
	CHECK(err && strstr(err, "50 sets"));
	/* A forged i=51 set fails the chain. */
	next = xasprintf("ARC-Seal: i=51; a=ed25519-sha256; cv=pass; d=example.net; s=ed; b=AAAA\n"
			 "ARC-Message-Signature: i=51; a=ed25519-sha256; d=example.net; s=ed; h=from; bh=AAAA; b=AAAA\n"
			 "ARC-Authentication-Results: i=51; x.example\n%s", m);
	CHECK_INT(cv_of(next), ARC_CV_FAIL);
	free(next);
	free(m);
}

/* ---- tampering and structure ----------------------------------------------- */

TEST(arc_tampering)
{
	char *m1 = seal(base_msg, K_RSA, ARC_CV_NONE);
	char *m2 = seal(m1, K_ED, ARC_CV_PASS);
	char *t;

	/* The body. */
	t = replace(m2, "Hello Bob", "Hello Rob");
	CHECK_INT(cv_of(t), ARC_CV_FAIL);
	CHECK_STR(reason_of(t), "ARC-Message-Signature i=2: body hash mismatch");
	free(t);
	/* A signed header field. */
	t = replace(m2, "Subject: ARC unit test", "Subject: ARC unit tests");
	CHECK_STR(reason_of(t), "ARC-Message-Signature i=2: signature did not verify");
	free(t);
	/* A second From above the first: From is oversigned. */
	t = replace(m2, "Received:", "From: Mallory <m@example.org>\nReceived:");
	CHECK_INT(cv_of(t), ARC_CV_FAIL);
	free(t);
	/* An unsigned field added: still pass. */
	t = replace(m2, "Received:", "X-Mailing-List: added\nReceived:");
	CHECK_INT(cv_of(t), ARC_CV_PASS);
	free(t);
	/* Relaxed canonicalisation: refolding and case of names. */
	t = replace(m2, "Subject: ARC unit test", "subject:   ARC  unit\n test  ");
	CHECK_INT(cv_of(t), ARC_CV_PASS);
	free(t);
	/* The first AAR: covered by both seals; the newest fails first. */
	t = replace(m2, "spf=pass smtp.mailfrom=example.org", "spf=pass smtp.mailfrom=evil.example");
	CHECK_STR(reason_of(t), "ARC-Seal i=2: signature did not verify");
	free(t);
	/* A seal's cv= rewritten. */
	t = replace(m2, "cv=pass", "cv=none");
	CHECK_STR(reason_of(t), "ARC-Seal i=2 has cv=none (must be pass)");
	free(t);
	/* A whole set removed (the newest), leaving a valid-looking chain
	 * whose AMS 1 still verifies: pass, the chain is what it says. */
	t = xstrdup(strstr(m2, "ARC-Seal: i=1"));
	CHECK_INT(cv_of(t), ARC_CV_PASS);
	free(t);
	/* The older set removed: a gap. */
	{
		const char *s1 = strstr(m2, "ARC-Seal: i=1"), *rest = strstr(m2, "Received:");
		t = xasprintf("%.*s%s", (int)(s1 - m2), m2, rest);
		CHECK_STR(reason_of(t), "i=1: an ARC Set is incomplete (a field is missing, or an instance)");
		free(t);
	}
	/* The ARC fields moved below the others: order does not matter. */
	{
		const char *rest = strstr(m2, "Received:"), *body = strstr(rest, "\n\n");
		t = xasprintf("%.*s%.*s%s", (int)(body + 1 - rest), rest, (int)(rest - m2), m2, body + 1);
		CHECK_INT(cv_of(t), ARC_CV_PASS);
		free(t);
	}
	free(m1);
	free(m2);
}

TEST(arc_signature_field_rules)
{
	char *m = seal(base_msg, K_RSA, ARC_CV_NONE), *t;
	/* The AS may not carry h=, the AMS may not sign ARC-Seal. */
	t = replace(m, "cv=none;", "cv=none; h=from;");
	CHECK_STR(reason_of(t), "ARC-Seal i=1: h= is not allowed in an ARC-Seal (RFC 8617 4.1.3)");
	free(t);
	t = replace(m, "h=from:", "h=arc-seal:from:");
	CHECK_STR(reason_of(t), "ARC-Message-Signature i=1: h= signs ARC-Seal (RFC 8617 4.1.2)");
	free(t);
	/* Tag names and a= are case-sensitive; rsa-sha1 is refused. */
	t = replace(m, "a=rsa-sha256; cv", "a=RSA-SHA256; cv");
	CHECK_STR(reason_of(t), "ARC-Seal i=1: unknown algorithm (a=)");
	free(t);
	t = replace(m, "a=rsa-sha256; cv", "a=rsa-sha1; cv");
	CHECK_STR(reason_of(t), "ARC-Seal i=1: rsa-sha1 is not accepted (RFC 8301)");
	free(t);
	t = replace(m, "cv=none", "CV=none");
	CHECK_STR(reason_of(t), "ARC-Seal i=1: missing cv=");
	free(t);
	t = replace(m, "cv=none", "cv=None");
	CHECK_STR(reason_of(t), "ARC-Seal i=1: bad cv=");
	free(t);
	/* A selector with a final dot (found by fuzzing: the key name had an
	 * empty label). */
	t = replace(m, "s=rsa; t=", "s=rsa.; t=");
	CHECK_STR(reason_of(t), "ARC-Seal i=1: bad selector (s=)");
	free(t);
	/* An expired AMS. */
	t = replace(m, "c=relaxed/relaxed;", "c=relaxed/relaxed; x=1600000000;");
	CHECK_STR(reason_of(t), "ARC-Message-Signature i=1: signature expired (x=)");
	free(t);
	/* A malformed newest AS stops the chain before any key is needed. */
	t = replace(m, "s=rsa; t=", "s=r/sa; t=");
	{
		struct arc_verifier *v = verify(t);
		CHECK_STR(arc_verifier_result(v)->reason, "ARC-Seal i=1: bad selector (s=)");
		CHECK_INT(arc_verifier_key_count(v), 0);
		arc_verifier_free(v);
	}
	free(t);
	free(m);
}

TEST(arc_key_outcomes)
{
	char *m = seal(base_msg, K_RSA, ARC_CV_NONE), *m2;
	struct arc_verifier *v;
	char *revoked = xstrdup("v=DKIM1; k=rsa; p=");
	/* A DNS failure: fail, marked temporary. */
	nextra = 1;
	extra[0] = (struct keyrec){ "rsa._domainkey.example.org", NULL, DNS_TIMEOUT };
	v = verify(m);
	CHECK_INT(arc_verifier_result(v)->cv, ARC_CV_FAIL);
	CHECK_INT(arc_verifier_result(v)->temperror, 1);
	CHECK(strstr(arc_verifier_result(v)->reason, "DNS failure") != NULL);
	arc_verifier_free(v);
	/* No key. */
	extra[0].st = DNS_NXDOMAIN;
	v = verify(m);
	CHECK_STR(arc_verifier_result(v)->reason, "ARC-Message-Signature i=1: no key at rsa._domainkey.example.org");
	CHECK_INT(arc_verifier_result(v)->temperror, 0);
	arc_verifier_free(v);
	/* Revoked, malformed, or of the wrong type. */
	extra[0].txt = revoked;
	CHECK(strstr(reason_of(m), "key revoked") != NULL);
	extra[0].txt = "v=DKIM1; p";
	CHECK(strstr(reason_of(m), "bad key record") != NULL);
	key_of(K_ED);
	extra[0].txt = tkeys[K_ED].record;
	CHECK(strstr(reason_of(m), "does not match a=") != NULL);
	nextra = 0;
	free(revoked);
	/* RSA 1024 is the minimum, and enough. */
	m2 = seal(base_msg, K_RSA1024, ARC_CV_NONE);
	CHECK_INT(cv_of(m2), ARC_CV_PASS);
	free(m2);
	free(m);
}

/* ---- sealing rules --------------------------------------------------------- */

TEST(arc_seal_failed_chain)
{
	char *m1 = seal(base_msg, K_RSA, ARC_CV_NONE);
	char *bad = replace(m1, "Hello Bob", "Hello Rob"), *m2, *again;
	const char *err = NULL;
	struct arc_verifier *v;
	CHECK_INT(cv_of(bad), ARC_CV_FAIL);
	/* cv=pass over a broken structure is refused; cv=fail seals i=2. */
	{
		char *gap = replace(m1, "ARC-Message-Signature: i=1", "ARC-Message-Signature: i=3");
		CHECK(seal_ex(gap, K_ED, ARC_CV_PASS, NULL, NULL, &err) == NULL);
		CHECK(err && strstr(err, "only be sealed with cv=fail"));
		free(gap);
	}
	m2 = seal(bad, K_ED, ARC_CV_FAIL);
	CHECK(starts_with(m2, "ARC-Seal: i=2; a=ed25519-sha256; cv=fail;"));
	v = verify(m2);
	CHECK_INT(arc_verifier_result(v)->cv, ARC_CV_FAIL);
	CHECK_STR(arc_verifier_result(v)->reason, "ARC-Seal i=2 says cv=fail: the chain failed before");
	CHECK_INT(arc_verifier_key_count(v), 0);
	arc_verifier_free(v);
	/* 5.1.3: a chain whose newest seal says cv=fail is not continued. */
	{
		struct arc_sealer *s = arc_sealer_new(key_of(K_RSA), "mx.example.org", T0);
		char e[256];
		arc_sealer_feed(s, m2, strlen(m2));
		again = arc_sealer_end(s, ARC_CV_FAIL, NULL, 0, e, sizeof e);
		CHECK(again && *again == '\0');
		CHECK_INT(arc_sealer_instance(s), 0);
		free(again);
		arc_sealer_free(s);
	}
	/* cv must agree with the message. */
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_PASS, NULL, NULL, &err) == NULL);
	CHECK(err && strstr(err, "cv must be none"));
	CHECK(seal_ex(m1, K_RSA, ARC_CV_NONE, NULL, NULL, &err) == NULL);
	CHECK(err && strstr(err, "cv must be pass or fail"));
	free(m1);
	free(bad);
	free(m2);
}

TEST(arc_seal_options)
{
	const char *err = NULL;
	char *m;
	struct arc_sealer *s;
	/* The h= list. */
	m = seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "From:Subject:X-Absent", &err);
	CHECK(m && has_unfolded(m, "h=from:subject:x-absent;"));
	CHECK_INT(cv_of(m), ARC_CV_PASS);
	free(m);
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "from:ARC-Seal", &err) == NULL);
	CHECK(err && strstr(err, "must not sign ARC-Seal"));
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "from:authentication-results", &err) == NULL);
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "from::to", &err) == NULL);
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "from:", &err) == NULL);
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "", &err) == NULL);
	CHECK(seal_ex(base_msg, K_RSA, ARC_CV_NONE, NULL, "fr om", &err) == NULL);
	/* DKIM-Signature and List-* are signed by default, ARC and AR never. */
	{
		char *in = xasprintf("DKIM-Signature: v=1; d=example.org\nAuthentication-Results: mx.example.org; "
				     "spf=pass\nList-Id: <l.example.org>\n%s", base_msg);
		m = seal_ex(in, K_RSA, ARC_CV_NONE, NULL, NULL, &err);
		CHECK(m && has_unfolded(m, "h=dkim-signature:list-id:from:to:subject:date:message-id:from;"));
		/* The AAR takes our Authentication-Results when no results are given. */
		CHECK(m && strstr(m, "ARC-Authentication-Results: i=1; mx.example.org;\n\tspf=pass\n"));
		free(m);
		free(in);
	}
	/* Results: split at ';' outside quotes and comments, whitespace and
	 * control bytes normalised, "none" dropped; no header injection. */
	m = seal_ex(base_msg, K_RSA, ARC_CV_NONE,
		    " spf=pass (a; comment)\r\n smtp.mailfrom=\"x;y\"@example.org;;\nnone; dkim=fail\r\nX-Injected: 1", NULL,
		    &err);
	CHECK(m && strstr(m, "i=1; mx.example.org;\n\tspf=pass (a; comment) smtp.mailfrom=\"x;y\"@example.org;\n"
			     "\tdkim=fail X-Injected: 1\n"));
	CHECK(m && !strstr(m, "\nX-Injected"));
	free(m);
	/* Consolidation of several Authentication-Results of our authserv-id. */
	{
		char *in = xasprintf("Authentication-Results: MX.example.org; arc=none\n"
				     "Authentication-Results: other.example; spf=fail\n"
				     "Authentication-Results: mx.example.org (comment); dkim=pass header.d=example.org;\n"
				     "  dmarc=pass\n%s", base_msg);
		m = seal_ex(in, K_RSA, ARC_CV_NONE, NULL, NULL, &err);
		CHECK(m && strstr(m, "i=1; mx.example.org;\n\tarc=none;\n\tdkim=pass header.d=example.org;\n\tdmarc=pass\n"));
		free(m);
		free(in);
	}
	/* The standard format of the test suite: no folding, tags in order. */
	s = arc_sealer_new(key_of(K_RSA), "lists.example.org", 12345);
	arc_sealer_set_standard_format(s, 1);
	CHECK(arc_sealer_set_headers(s, "mime-version:date:from:to:subject", NULL, 0) == 0);
	arc_sealer_feed(s, base_msg, strlen(base_msg));
	{
		char e[256], *f = arc_sealer_end(s, ARC_CV_NONE, "arc=none; spf=pass", 0, e, sizeof e);
		char *line2 = f ? strchr(f, '\n') : NULL;
		CHECK(f && starts_with(f, "ARC-Seal: a=rsa-sha256; b="));
		CHECK(f && strstr(f, "; cv=none; d=example.org; i=1; s=rsa; t=12345\nARC-Message-Signature: a=rsa-sha256; b="));
		CHECK(f && strstr(f, "; c=relaxed/relaxed; d=example.org; h=mime-version:date:from:to:subject; i=1; "
				     "s=rsa; t=12345\nARC-Authentication-Results: i=1; lists.example.org; arc=none; "
				     "spf=pass\n"));
		CHECK(line2 && !strchr(line2 + 1, '\t'));
		if (f) {
			char *all = xasprintf("%s%s", f, base_msg);
			CHECK_INT(cv_of(all), ARC_CV_PASS);
			free(all);
		}
		free(f);
	}
	arc_sealer_free(s);
	/* A bad authserv-id, a malformed header block. */
	s = arc_sealer_new(key_of(K_RSA), "mx.example.org;\nX: y", T0);
	arc_sealer_feed(s, base_msg, strlen(base_msg));
	{
		char e[256], *f = arc_sealer_end(s, ARC_CV_NONE, NULL, 0, e, sizeof e);
		CHECK(f == NULL && strstr(e, "authserv-id"));
		free(f);
	}
	arc_sealer_free(s);
	CHECK(seal_ex("From: a@example.org\nnot a field\n\nbody\n", K_RSA, ARC_CV_NONE, NULL, NULL, &err) == NULL);
	CHECK(err && strstr(err, "malformed"));
}

TEST(arc_header_block_bounds)
{
	char *m = seal(base_msg, K_RSA, ARC_CV_NONE), *t;
	/* A malformed header block with a chain: fail; without: none. */
	t = replace(m, "Received:", "not a header field\nReceived:");
	CHECK_STR(reason_of(t), "malformed header block");
	free(t);
	CHECK_INT(cv_of("From: a@example.org\nnot a field\n\nbody\n"), ARC_CV_NONE);
	/* Over the bound on fields: a chain may be beyond, so fail. */
	{
		struct msg_buf b = { 0 };
		for (int i = 0; i < MSG_MAX_FIELDS + 5; i++)
			msg_buf_append(&b, "X-Filler: x\n", 12);
		msg_buf_append(&b, "\nbody\n", 6);
		CHECK_INT(cv_of(b.data), ARC_CV_FAIL);
		msg_buf_clear(&b);
	}
	free(m);
}

TEST(arc_key_answers_early_and_once)
{
	char *m1 = seal(base_msg, K_RSA, ARC_CV_NONE), *m2 = seal(m1, K_RSA, ARC_CV_PASS);
	struct arc_verifier *v = arc_verifier_new(T0);
	const char *body = strstr(m2, "\n\n");
	/* Keys answered after the header block, before the body, twice. */
	arc_verifier_feed(v, m2, (size_t)(body + 2 - m2));
	CHECK(arc_verifier_headers_done(v));
	CHECK_INT(arc_verifier_key_count(v), 1);
	CHECK_STR(arc_verifier_key_name(v, 0), "rsa._domainkey.example.org");
	CHECK(arc_verifier_key_name(v, 1) == NULL);
	answer_keys(v);
	CHECK(!arc_verifier_done(v));
	CHECK(arc_verifier_result(v) == NULL);
	arc_verifier_key_answer(v, 0, DNS_TIMEOUT, NULL); /* ignored */
	arc_verifier_key_answer(v, 7, DNS_TIMEOUT, NULL); /* ignored */
	arc_verifier_feed(v, body + 2, strlen(body + 2));
	arc_verifier_end(v);
	CHECK(arc_verifier_done(v));
	CHECK_INT(arc_verifier_result(v)->cv, ARC_CV_PASS);
	CHECK_INT(arc_verifier_key_answers(v), 1);
	arc_verifier_end(v); /* twice: nothing happens */
	CHECK_INT(arc_verifier_result(v)->cv, ARC_CV_PASS);
	arc_verifier_free(v);
	arc_verifier_free(NULL);
	arc_sealer_free(NULL);
	arc_sign_key_free(NULL);
	arc_job_cancel(NULL);
	free(m1);
	free(m2);
}

TEST(arc_sign_key_rules)
{
	char err[256];
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	struct arc_sign_key *k;
	CHECK(arc_sign_key_new("example.org", "s", small, err, sizeof err) == NULL);
	CHECK(strstr(err, "1024") != NULL);
	CHECK(arc_sign_key_load("example.org", "s", "/nonexistent/key.pem", err, sizeof err) == NULL);
	k = arc_sign_key_new("Example.ORG", "sel", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), err, sizeof err);
	CHECK(k != NULL);
	if (k) {
		CHECK_STR(dkim_sign_key_domain(arc_sign_key_dkim(k)), "example.org");
		CHECK_STR(dkim_sign_key_algorithm(arc_sign_key_dkim(k)), "ed25519-sha256");
	}
	arc_sign_key_free(k);
	CHECK(arc_sign_key_new("not a domain", "sel", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), err, sizeof err) == NULL);
}
