/*
 * dkim: DomainKeys Identified Mail, RFC 6376, with RFC 8301 (no rsa-sha1,
 * no RSA keys under 1024 bits) and RFC 8463 (Ed25519-SHA256).
 *
 * Verification (dkim.c) is built like spf.c: pure logic over DNS answers
 * the caller supplies, and an asynchronous driver on dns.c.
 *
 *   - struct dkim_verifier takes the message as it streams in (any chunking).
 *     It keeps the header block only (msg.h); the body goes through one
 *     body hasher per distinct (canonicalisation, hash, l=) among the
 *     signatures, so a large message is read once and never copied.
 *   - Once the header block is complete, dkim_verifier_key_name() says which
 *     TXT record each signature needs; the answers can be given while the
 *     body still streams (dkim_verifier_key_answer()). The header signature
 *     is checked as soon as its key is in; the body hash at the end.
 *   - After dkim_verifier_end() and every answer, each signature has a
 *     struct dkim_outcome (RFC 8601 result, d=, i=, s=, a=, header.b and a
 *     short reason).
 *
 * Results (RFC 8601 section 2.7.1), as this module assigns them:
 *   pass       the signature verified
 *   fail       body hash mismatch, or the signature did not verify
 *   neutral    a failure with a key in testing mode (t=y: RFC 6376 3.6.1
 *              asks to treat it as unsigned)
 *   policy     acceptable to RFC 6376 but not to us: rsa-sha1, RSA keys
 *              under 1024 bits (RFC 8301), a timestamp in the future
 *   temperror  the key could not be fetched (DNS failure or timeout)
 *   permerror  a malformed signature, key record or header block, a missing
 *              key (NXDOMAIN/no TXT), a revoked key (empty p=), a key that
 *              does not allow this signature (k=, h=, s=, t=s), an expired
 *              signature (x=), l= larger than the body
 *   none       no signature at all (dkim_verifier_count() == 0)
 *
 * l= is honoured (RFC 6376 3.5, 8.2): a signature with l= covers only the
 * first l bytes of the canonical body, so content can be appended after
 * signing without breaking it. The outcome says how many canonical body
 * bytes were not covered (unsigned_body); callers that show the message
 * should treat those bytes as unauthenticated.
 *
 * Ownership: every string in an outcome, and the header block, belong to
 * the verifier and live until dkim_verifier_free().
 *
 * Signing (dkim_sign.c): struct dkim_signer streams the message the same
 * way and returns the DKIM-Signature fields to prepend, one per key:
 * relaxed/relaxed, rsa-sha256 and/or ed25519-sha256 (dual signing), the
 * usual header fields signed when present and From oversigned.
 */
#ifndef POSTERN_DKIM_H
#define POSTERN_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include "auth/msg.h"
#include "dns/dns.h"

enum dkim_result {
	DKIM_NONE, DKIM_PASS, DKIM_FAIL, DKIM_NEUTRAL, DKIM_POLICY, DKIM_TEMPERROR, DKIM_PERMERROR,
};

const char *dkim_result_name(enum dkim_result r);

#define DKIM_MAX_SIGNATURES_DEFAULT 10
#define DKIM_CLOCK_SKEW 300      /* seconds a t= may lie in the future */
#define DKIM_MAX_TAGS 64         /* tags in one tag-list */
#define DKIM_MAX_SIGNED_FIELDS 512 /* names in h= */
#define DKIM_MAX_SIG_BYTES 1024  /* decoded b= (RSA 8192 is 1024 bytes) */
#define DKIM_MAX_KEY_BYTES 2048  /* decoded p= */
#define DKIM_MIN_RSA_BITS 1024   /* RFC 8301 section 3.2 */

/* ---- tag-lists (RFC 6376 section 3.2) ------------------------------------ */

struct dkim_tag {
	const char *name;  /* spans of the parsed text, not NUL-terminated */
	size_t name_len;
	const char *value; /* from the first to the last non-FWS byte; may be empty */
	size_t value_len;
};

struct dkim_tags {
	struct dkim_tag tag[DKIM_MAX_TAGS];
	size_t n;
};

/* Parses a tag-list. Returns 0, or -1 with a static reason in *why: a
 * syntax error, a duplicate tag, too many tags. Folding (CRLF or LF then
 * WSP) counts as white space. */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tags *out, const char **why);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *t, const char *name);

/* ---- key records (RFC 6376 section 3.6.1) --------------------------------- */

enum dkim_keytype { DKIM_KEY_RSA, DKIM_KEY_ED25519 };

struct dkim_key {
	enum dkim_keytype type;
	int revoked;     /* p= empty */
	int testing;     /* t=y */
	int strict;      /* t=s */
	int sha1_ok, sha256_ok; /* h= (both when absent) */
	unsigned bits;   /* RSA modulus size; 256 for Ed25519 */
	void *pkey;      /* EVP_PKEY *, owned; NULL when revoked */
};

/* Parses a key record. Returns 0, or -1 with a static reason in *why.
 * Free with dkim_key_clear(). */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, const char **why);
void dkim_key_clear(struct dkim_key *k);

/* 1 when sig (siglen bytes) verifies over the SHA-256 hash (32 bytes) with
 * pkey (an EVP_PKEY *): PKCS#1 v1.5 for RSA, PureEdDSA over the hash for
 * Ed25519 (RFC 8463 section 3). RSA contexts are prepared once per key and
 * thread and reused. Shared by DKIM and ARC. */
int dkim_verify_hash(void *pkey, int ed25519, const unsigned char *sig, size_t siglen, const unsigned char *hash);

/* ---- verification ---------------------------------------------------------- */

struct dkim_outcome {
	enum dkim_result result;
	const char *domain;    /* d=, lower-cased; "" when unknown */
	const char *identity;  /* i= (default "@d="); "" when unknown */
	const char *selector;  /* s=; "" when unknown */
	const char *algorithm; /* a=, lower-cased; "" when unknown */
	char header_b[9];      /* the first 8 characters of b= (RFC 6008) */
	const char *reason;    /* short, human: "ok", "body hash mismatch", ... */
	int testing;           /* the key is in testing mode (t=y) */
	unsigned key_bits;     /* 0 when no key was used */
	int64_t body_length;   /* l=, or -1 */
	uint64_t unsigned_body; /* canonical body bytes past l= */
};

struct dkim_verifier;

/* max_signatures: DKIM-Signature fields evaluated, from the top (0 means
 * DKIM_MAX_SIGNATURES_DEFAULT); later ones are ignored. now: Unix time, for
 * t= and x=. Free with dkim_verifier_free(). */
struct dkim_verifier *dkim_verifier_new(unsigned max_signatures, int64_t now);
/* Message bytes as received (LF or CRLF line endings), in any chunking. */
void dkim_verifier_feed(struct dkim_verifier *v, const char *data, size_t len);
/* The message has ended. */
void dkim_verifier_end(struct dkim_verifier *v);
/* 1 once the header block is complete: count and key names are known, and
 * key lookups may start while the body streams. */
int dkim_verifier_headers_done(const struct dkim_verifier *v);
/* The signatures found (valid once the header block is complete). */
size_t dkim_verifier_count(const struct dkim_verifier *v);
/* "selector._domainkey.domain", the TXT name signature i needs, or NULL
 * when it needs none (its outcome is already decided). Borrowed. */
const char *dkim_verifier_key_name(const struct dkim_verifier *v, size_t i);
/* The answer to signature i's TXT lookup; a is read during the call only
 * (may be NULL unless st is DNS_ANSWER). Give each answer once. */
void dkim_verifier_key_answer(struct dkim_verifier *v, size_t i, enum dns_status st, const struct dns_answer *a);
/* 1 when every outcome is final (ended, and every needed answer given). */
int dkim_verifier_done(const struct dkim_verifier *v);
/* Signature i's outcome, once dkim_verifier_done(). Borrowed. */
const struct dkim_outcome *dkim_verifier_outcome(const struct dkim_verifier *v, size_t i);
/* The parsed header block (From for DMARC, the ARC sets). Borrowed;
 * complete once dkim_verifier_headers_done(). */
const struct msg_headers *dkim_verifier_headers(const struct dkim_verifier *v);
void dkim_verifier_free(struct dkim_verifier *v);

/* The asynchronous driver: looks every key up through dns.c (each distinct
 * name once, all at once) and answers the verifier. Start it once
 * dkim_verifier_headers_done(v); the body may still be streaming. cb runs on
 * the event loop (never inside this call) when every answer is in; the
 * outcomes are final then if dkim_verifier_end() was called, else right
 * after it. The job frees itself after cb; v is not owned and must outlive
 * the job (or cancel it first). */
struct dkim_job;
typedef void (*dkim_done_cb)(void *arg, struct dkim_verifier *v);
struct dkim_job *dkim_verify_async(struct dns *dns, struct dkim_verifier *v, dkim_done_cb cb, void *arg);
/* Stops a job; its callback never runs. */
void dkim_job_cancel(struct dkim_job *job);

/* ---- signing (dkim_sign.c) ------------------------------------------------ */

struct dkim_sign_key;

/* Loads a PEM private key (RSA or Ed25519; PKCS#8 or traditional) for
 * domain and selector. Returns NULL with a message in err. */
struct dkim_sign_key *dkim_sign_key_load(const char *domain, const char *selector, const char *path, char *err,
					 size_t errsize);
/* The same from an EVP_PKEY (taken: freed with the key). */
struct dkim_sign_key *dkim_sign_key_new(const char *domain, const char *selector, void *evp_pkey, char *err,
					size_t errsize);
void dkim_sign_key_free(struct dkim_sign_key *k);
/* "rsa-sha256" or "ed25519-sha256". */
const char *dkim_sign_key_algorithm(const struct dkim_sign_key *k);
const char *dkim_sign_key_domain(const struct dkim_sign_key *k);
const char *dkim_sign_key_selector(const struct dkim_sign_key *k);
/* The TXT record to publish: "v=DKIM1; k=...; p=...", newly allocated. */
char *dkim_sign_key_record(const struct dkim_sign_key *k);

struct dkim_signer;
/* What the signer does by default (relaxed/relaxed, no x=, no l=) can be
 * changed for tests and special uses; x= and l= are rarely wise (l= lets
 * anyone append to the body, RFC 6376 8.2). */
struct dkim_sign_options {
	enum msg_canon header_canon, body_canon;
	int64_t expire;  /* x=, or -1 */
	int body_length; /* add l= (the whole body as signed) */
};
/* keys are borrowed and must outlive the signer. now: the t= value. */
struct dkim_signer *dkim_signer_new(struct dkim_sign_key *const *keys, size_t nkeys, int64_t now);
/* Before the first dkim_signer_feed() only. */
void dkim_signer_set_options(struct dkim_signer *s, const struct dkim_sign_options *opt);
void dkim_signer_feed(struct dkim_signer *s, const char *data, size_t len);
/* Ends the message and returns the DKIM-Signature header fields to prepend,
 * one per key in key order, folded, each line ending in CRLF when crlf else
 * LF; newly allocated. NULL with a reason in err when the message cannot be
 * signed (no From, a header block over the bounds or malformed). Call once. */
char *dkim_signer_end(struct dkim_signer *s, int crlf, char *err, size_t errsize);
void dkim_signer_free(struct dkim_signer *s);

/* Generates a key: "rsa" (bits 1024..8192) or "ed25519" (bits ignored).
 * Sets *pem (PKCS#8 PEM) and *record (the TXT record), both newly
 * allocated. Returns 0, or -1 with a message in err. */
int dkim_keygen(const char *algorithm, unsigned bits, char **pem, char **record, char *err, size_t errsize);

/* 1 when s is a valid DKIM selector or domain: dot-separated labels of
 * letters, digits, '-' and '_' (1..63 each), at most 253 bytes. */
int dkim_valid_name(const char *s, size_t len);

#endif
