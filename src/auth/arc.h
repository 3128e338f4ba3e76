/*
 * arc: Authenticated Received Chain, RFC 8617: validating a message's chain
 * (section 5.2) and sealing it (section 5.1), for a server that relays or
 * forwards mail and for one that receives it.
 *
 * An ARC Set is three header fields sharing an instance i=1..50: the
 * ARC-Authentication-Results (AAR: "i=N; authserv-id; results"), the
 * ARC-Message-Signature (AMS: a DKIM signature of the message with i= in
 * place of the AUID and no v=) and the ARC-Seal (AS: a signature over the
 * ARC Sets 1..N, with cv=, the chain validation status the sealer saw).
 *
 * Validation (arc.c) is built like dkim.c, and shares its parts (msg.h for
 * the header block and the canonicalisations, dkim.h for tag-lists and key
 * records):
 *
 *   - struct arc_verifier takes the message as it streams in. The header
 *     block is parsed once; when it is complete the chain's structure is
 *     checked (5.2 steps 1-3), every ARC field is parsed, and the verifier
 *     knows which key records it needs (arc_verifier_key_name()). The body
 *     goes through one hasher per distinct (body canonicalisation, l=)
 *     among the AMS fields, while it streams.
 *   - Key answers may come while the body still streams; each header
 *     signature (every AS, every AMS) is checked as soon as its key is in.
 *     The AMS body hashes are compared at the end.
 *   - After arc_verifier_end() and every answer, arc_verifier_result()
 *     gives the chain validation status (none, pass, fail), the
 *     oldest-pass (5.2 step 5), the sets (instance, sealer d= and s=, AAR)
 *     and a short reason.
 *
 * The result is decided in the RFC's order: no ARC field at all is "none";
 * more than 50 sets, a newest AS with cv=fail, a broken structure (a set
 * missing a field, a field twice, a gap, cv= not none at i=1 or not pass
 * above), the newest AMS not verifying, or any AS not verifying is "fail";
 * else "pass". Older AMS fields only decide oldest-pass (the lowest
 * instance from which every newer AMS verifies; 0 when all do). As section
 * 5.2.1 says, every error is permanent: a DNS failure fetching a key is a
 * "fail" too; the result says so (temperror) for callers that would rather
 * try again later.
 *
 * Key records are DKIM's (s._domainkey.d TXT), with DKIM's rules: RSA of
 * 1024 bits or more (RFC 8301), Ed25519 (RFC 8463), no rsa-sha1, k= matching
 * a=, h= allowing sha256, a revoked key (empty p=) fails.
 *
 * Sealing (arc.c): struct arc_sealer streams the message like dkim_signer
 * and returns the three fields of instance N+1 to prepend: the AAR with our
 * authserv-id and results, the AMS (relaxed/relaxed, SHA-256) and the AS
 * with the cv= the caller's validation found. A chain that failed is sealed
 * with cv=fail over our own set only (5.1.2); a chain whose newest AS
 * already says cv=fail is over (5.1.3), and nothing is added.
 *
 * Ownership: every string a result or set points to belongs to the
 * verifier and lives until arc_verifier_free(). Sealer output is the
 * caller's.
 */
#ifndef POSTERN_ARC_H
#define POSTERN_ARC_H

#include <stddef.h>
#include <stdint.h>

#include "auth/dkim.h"
#include "auth/msg.h"
#include "dns/dns.h"

enum arc_cv { ARC_CV_NONE, ARC_CV_PASS, ARC_CV_FAIL };

/* "none", "pass", "fail". */
const char *arc_cv_name(enum arc_cv cv);
/* Parses exactly "none", "pass" or "fail"; 0, or -1 for anything else. */
int arc_cv_parse(const char *s, enum arc_cv *out);

#define ARC_MAX_INSTANCES 50    /* RFC 8617 section 4.2.1 */
#define ARC_MAX_FIELDS (3 * ARC_MAX_INSTANCES) /* more ARC fields than this: fail */
#define ARC_MAX_KEY_NAMES 64    /* distinct key records one message may make us fetch */
#define ARC_MAX_BODY_HASHERS 4  /* distinct (canonicalisation, l=) among the AMS fields */

/* ---- parsing (pure) ------------------------------------------------------- */

enum arc_kind { ARC_AAR, ARC_AMS, ARC_AS };

/* The kind of header field i of h; -1 when it is no ARC field. */
int arc_field_kind(const struct msg_headers *h, size_t i);

/* The instance of an ARC field's value (raw, after the colon): for the AAR
 * the leading "i=N;" (section 4.1.1: the instance comes first); for the
 * AMS and AS the i= tag of the tag-list. Returns 1..50, or 0 with a static
 * reason in *why. */
unsigned arc_field_instance(enum arc_kind kind, const char *value, size_t len, const char **why);

/* The ARC Sets of a header block, by instance (index 1..n; index 0 is
 * unused): the field index of each set's AAR, AMS and AS. */
struct arc_chain {
	unsigned n;      /* the highest instance; 0 when there are no ARC fields */
	size_t nfields;  /* ARC fields seen */
	unsigned bad;    /* after a failure: the instance it concerns, or 0 */
	long aar[ARC_MAX_INSTANCES + 1], ams[ARC_MAX_INSTANCES + 1], as[ARC_MAX_INSTANCES + 1];
};

/* Collects and checks the sets (section 5.2 steps 1 and 3.1-3.2): every
 * ARC field has a valid instance, no instance has a field twice, every set
 * 1..n is complete. Returns 0 (c->n == 0 when the message has no ARC
 * field), or -1 with a static reason in *why (the first problem, from the
 * top). Either way every field is looked at: c->nfields counts the ARC
 * fields, c->n is the highest valid instance, and the arrays hold the
 * first field of each kind and instance (-1: none). */
int arc_chain_collect(const struct msg_headers *h, struct arc_chain *c, const char **why);

/* ---- validation --------------------------------------------------------- */

/* One ARC Set of a chain whose structure is sound. */
struct arc_set {
	unsigned instance;
	enum arc_cv cv;           /* the AS cv= */
	const char *seal_domain;  /* AS d=, lower-cased: the sealer */
	const char *seal_selector; /* AS s= */
	const char *sig_domain;   /* AMS d=, lower-cased */
	const char *sig_selector; /* AMS s= */
	const char *aar;          /* the AAR's authserv-id and results, unfolded
				   * ("example.org; spf=pass ..."), without "i=N;" */
	int ams_ok;               /* this AMS verified: 1, failed: 0, not checked: -1 */
	int as_ok;                /* this AS verified: 1, failed: 0, not checked: -1 */
};

struct arc_result {
	enum arc_cv cv;
	unsigned instances;    /* N: the highest instance seen (0: no chain) */
	unsigned oldest_pass;  /* with cv pass: 0 when every AMS verifies, else
				* the lowest M from which AMS M..N all verify */
	const char *reason;    /* short, human: "ok", "ARC-Seal i=2: signature did not verify", ... */
	int temperror;         /* fail because a key could not be fetched (DNS) */
	const struct arc_set *sets; /* sets[0..nsets-1] are instances 1..nsets */
	size_t nsets;          /* N when the structure was sound, else 0 */
};

struct arc_verifier;

/* now: Unix time, for x= of the AMS. Free with arc_verifier_free(). */
struct arc_verifier *arc_verifier_new(int64_t now);
/* Message bytes as received (LF or CRLF line endings), in any chunking. */
void arc_verifier_feed(struct arc_verifier *v, const char *data, size_t len);
/* The message has ended. */
void arc_verifier_end(struct arc_verifier *v);
/* 1 once the header block is complete: the key names are known and
 * lookups may start while the body streams. */
int arc_verifier_headers_done(const struct arc_verifier *v);
/* The distinct key records needed (valid once the header block is
 * complete; 0 when the result needs no key: no chain, or a broken one). */
size_t arc_verifier_key_count(const struct arc_verifier *v);
/* "selector._domainkey.domain", lower-cased, the TXT name of key k < count.
 * Borrowed. */
const char *arc_verifier_key_name(const struct arc_verifier *v, size_t k);
/* The answer to key k's TXT lookup; a is read during the call only (may be
 * NULL unless st is DNS_ANSWER). Later answers for the same k are ignored. */
void arc_verifier_key_answer(struct arc_verifier *v, size_t k, enum dns_status st, const struct dns_answer *a);
/* Keys answered so far. */
size_t arc_verifier_key_answers(const struct arc_verifier *v);
/* 1 when the result is final (ended, and every key answered). */
int arc_verifier_done(const struct arc_verifier *v);
/* The result, once arc_verifier_done(); NULL before. Borrowed. */
const struct arc_result *arc_verifier_result(const struct arc_verifier *v);
/* The parsed header block. Borrowed; complete once headers_done. */
const struct msg_headers *arc_verifier_headers(const struct arc_verifier *v);
void arc_verifier_free(struct arc_verifier *v);

/* The asynchronous driver, like dkim_verify_async(): looks every key up
 * through dns.c (each name once, all at once) and answers the verifier.
 * Start it once arc_verifier_headers_done(v); the body may still stream.
 * cb runs on the event loop (never inside this call) when every answer is
 * in; the result is final then if arc_verifier_end() was called, else right
 * after it. The job frees itself after cb; v must outlive the job (or
 * cancel it first). */
struct arc_job;
typedef void (*arc_done_cb)(void *arg, struct arc_verifier *v);
struct arc_job *arc_verify_async(struct dns *dns, struct arc_verifier *v, arc_done_cb cb, void *arg);
/* Stops a job; its callback never runs. arc_job_cancel(NULL) does nothing. */
void arc_job_cancel(struct arc_job *job);

/* The Authentication-Results entry for a result, into out:
 * "arc=pass header.oldest-pass=0" (RFC 8617 section 10.2), or "arc=none",
 * "arc=fail". */
void arc_result_authres(const struct arc_result *r, char *out, size_t outsize);

/* ---- sealing ------------------------------------------------------------ */

/* A sealing key: a dkim_sign_key (the same key rules, names and TXT record)
 * together with a reference to its private key, which the seal needs and
 * dkim_sign.c keeps to itself (it signs only whole DKIM-Signature fields).
 * RSA is what other validators accept (dkimpy, OpenARC: rsa-sha256 only);
 * Ed25519 seals validate here. */
struct arc_sign_key;

/* Loads a PEM private key (RSA of 1024 bits or more, or Ed25519). Returns
 * NULL with a message in err. */
struct arc_sign_key *arc_sign_key_load(const char *domain, const char *selector, const char *path, char *err,
				       size_t errsize);
/* The same from an EVP_PKEY (taken: freed with the key). */
struct arc_sign_key *arc_sign_key_new(const char *domain, const char *selector, void *evp_pkey, char *err,
				      size_t errsize);
/* The DKIM view of the key (algorithm, domain, selector, record). Borrowed. */
const struct dkim_sign_key *arc_sign_key_dkim(const struct arc_sign_key *k);
void arc_sign_key_free(struct arc_sign_key *k);

struct arc_sealer;

/* key is borrowed and must outlive the sealer; authserv_id is copied; now
 * is the t= value. */
struct arc_sealer *arc_sealer_new(const struct arc_sign_key *key, const char *authserv_id, int64_t now);
/* The AMS h= list ("from:to:subject"), instead of the default (the fields
 * a DKIM signer signs, each instance present, DKIM-Signature fields, From
 * once more). Names of ARC fields and Authentication-Results are refused
 * (RFC 8617 4.1.2). Before the first feed. 0, or -1 with a message. */
int arc_sealer_set_headers(struct arc_sealer *s, const char *list, char *err, size_t errsize);
/* The header format of the ARC test suite (tags in alphabetical order,
 * lower-case values but b= and bh=, one space after each ';', no folding,
 * no final ';'), so its expected seals match byte for byte. */
void arc_sealer_set_standard_format(struct arc_sealer *s, int on);
void arc_sealer_feed(struct arc_sealer *s, const char *data, size_t len);
/* Ends the message and returns the ARC-Seal, ARC-Message-Signature and
 * ARC-Authentication-Results fields to prepend (in that order), each line
 * ending in CRLF when crlf, else LF; newly allocated. cv is the chain
 * validation status of the message as received (arc_verifier_result()).
 * results is the AAR's payload after our authserv-id ("spf=pass
 * smtp.mailfrom=...; dkim=pass ..."), or NULL to take the results of the
 * message's Authentication-Results fields of our authserv-id, in order.
 * Returns "" (nothing to add) when the newest AS already says cv=fail, and
 * NULL with a reason in err when the message cannot be sealed (a header
 * block over the bounds or malformed, 50 sets already, cv inconsistent
 * with the chain). Call once. */
char *arc_sealer_end(struct arc_sealer *s, enum arc_cv cv, const char *results, int crlf, char *err,
		     size_t errsize);
/* The instance the seal got (valid after a successful arc_sealer_end()
 * that added fields; 0 otherwise). */
unsigned arc_sealer_instance(const struct arc_sealer *s);
void arc_sealer_free(struct arc_sealer *s);

#endif
