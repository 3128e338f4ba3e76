/*
 * dmarc: Domain-based Message Authentication, Reporting and Conformance,
 * RFC 7489, with the np= tag for non-existent subdomains of RFC 9091.
 *
 * Built like spf.c, in two layers:
 *
 *  - A pure evaluator. dmarc_eval_new() parses the From header fields
 *    once; dmarc_run() then performs policy discovery (RFC 7489 section
 *    6.6.3), identifier alignment (section 3.1) and policy selection
 *    (sections 6.3, 6.6.4; RFC 9091 section 4) over a table of DNS answers.
 *    When it needs an answer the table does not have, it adds the question
 *    and returns DMARC_RUN_NEED_DNS; the caller answers every open question
 *    (dmarc_answer) and calls dmarc_run() again, which replays from the
 *    start. An evaluation asks at most 5 questions per author domain.
 *
 *  - An asynchronous driver, dmarc_check_async(), that answers through
 *    dns.c on the event loop, every open question at once.
 *
 * And two pure parsers, each fuzzed (tests/fuzz/fuzz_dmarc.c): the DMARC
 * record (sections 6.3 and 6.4) and the From header field (RFC 5322
 * section 3.4 with the obsolete syntax of section 4.4, groups as RFC 6854
 * allows, RFC 6532 UTF-8).
 *
 * Decisions the RFCs leave to the receiver, and what we do (details and
 * citations in dmarc.c):
 *
 *  - No From field, a From field that does not parse, or one without any
 *    address: RFC 7489 section 5 says "the absence of a single, properly
 *    formed RFC5322.From field renders the message invalid" and leaves its
 *    handling to us. Such a message escapes DMARC entirely (the classic
 *    way to forge an author past it), so the result is permerror with
 *    disposition reject; from_problem says why, and the SMTP server may
 *    choose to act on that flag otherwise.
 *  - Several From fields (RFC 5322 section 3.6 allows one) and one field
 *    with several addresses: every distinct author domain is evaluated,
 *    and the strictest outcome wins, as section 6.6.1 says for the
 *    multi-valued field ("apply the most strict policy selected among the
 *    checks that fail"); a reader's client may show any of the addresses,
 *    so each must stand on its own.
 *  - A syntactically invalid DMARC record: permerror (section 11.2, which
 *    registers the dmarc results RFC 8601 headers carry: "encountering a
 *    syntactically incorrect DMARC record"), no policy applied, and no
 *    fallback to the Organizational Domain (the set of records found is not
 *    empty, so step 3 of section 6.6.3 does not run); but a record whose only
 *    fault is a missing or invalid p= (or sp=, np=) and that has a valid
 *    rua= is read as p=none (section 6.6.3 step 6).
 *  - No aligned pass while an aligned identifier had a temporary error:
 *    temperror (the outcome is unknown, and a 4xx lets the sender retry)
 *    rather than fail.
 *
 * Trust: From values, DNS answers and records are hostile input; each is
 * bounded (the DMARC_MAX_* below) before it is parsed.
 */
#ifndef POSTERN_DMARC_H
#define POSTERN_DMARC_H

#include <stddef.h>
#include <stdint.h>

#include "auth/spf.h"
#include "dns/dns.h"

/* Bounds on hostile input. */
#define DMARC_MAX_RECORD 4096     /* bytes of a DMARC TXT record */
#define DMARC_MAX_URIS 16         /* rua/ruf URIs kept (section 6.2: at least 2) */
#define DMARC_MAX_FROM 16384      /* bytes of one From field value */
#define DMARC_MAX_FROM_FIELDS 16  /* From fields considered */
#define DMARC_MAX_ADDRESSES 256   /* mailboxes in one From field */
#define DMARC_MAX_DOMAINS 16      /* distinct author domains evaluated */
#define DMARC_MAX_COMMENT_DEPTH 32 /* nested RFC 5322 comments */
#define DMARC_MAX_DKIM 64         /* DKIM results considered */
#define DMARC_MAX_LOOKUPS (5 * DMARC_MAX_DOMAINS)

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
/* A policy (p=, sp=, np=) and a disposition share the values. */
enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };

/* "none", "pass", ...: the RFC 8601 result names. */
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

/* ---- the record (RFC 7489 sections 6.3 and 6.4) ------------------------ */

struct dmarc_uri {
	char *uri;
	uint64_t max_size; /* bytes, from "!10m"; 0 when not given */
};

struct dmarc_record {
	enum dmarc_policy p, sp, np; /* effective: sp defaults to p, np to sp */
	int has_p, has_sp, has_np;   /* given, with a valid value */
	/* p= missing or not a policy, or sp=/np= not a policy: section 6.6.3
	 * step 6 decides (p=none when rua= has a URI, else no DMARC). */
	int policy_invalid;
	unsigned pct;       /* 0..100; 100 when not given */
	char adkim, aspf;   /* 'r' or 's'; 'r' when not given */
	struct dmarc_uri rua[DMARC_MAX_URIS], ruf[DMARC_MAX_URIS];
	size_t nrua, nruf;  /* URIs beyond DMARC_MAX_URIS are checked, then dropped */
	char fo[8];         /* "0" when not given; else e.g. "1:d" (lower case) */
	char *rf;           /* "afrf" when not given; lower case */
	uint32_t ri;        /* seconds; 86400 when not given */
};

enum dmarc_parse { DMARC_PARSE_OK, DMARC_PARSE_NOT_DMARC, DMARC_PARSE_INVALID };

/* Parses one TXT record (len bytes, may hold NUL). NOT_DMARC when it does
 * not start with v=DMARC1 (section 6.6.3 step 2 discards it); INVALID,
 * with the reason in why, for a syntax error; OK fills out, which the
 * caller then clears with dmarc_record_clear(). On NOT_DMARC and INVALID
 * out holds nothing to free. */
enum dmarc_parse dmarc_record_parse(const char *text, size_t len, struct dmarc_record *out, char *why,
				    size_t whysize);
void dmarc_record_clear(struct dmarc_record *r);

/* ---- the From header field and domains ------------------------------- */

/* Parses one From field value (after "From:", folding allowed) and
 * appends the domain of each mailbox, as written, to *domains (grown with
 * realloc; the caller frees each and the array). Returns the number of
 * mailboxes found (0 for an empty group), or -1 with the reason in why
 * (*domains may then have grown: still the caller's to free). */
int dmarc_from_parse(const char *value, char ***domains, size_t *ndomains, char *why, size_t whysize);
/* The same, collecting whole addresses "local@domain" as written (the
 * local part's words joined by dots, a quoted string without its quotes):
 * what submission checks the author against. */
int dmarc_from_addresses(const char *value, char ***addresses, size_t *naddresses, char *why, size_t whysize);

/* A domain as DMARC uses it (section 6.6.1): U-labels converted to
 * A-labels (IDNA2008, UTS 46 mapping), lower case, labels of letters,
 * digits, '-' and '_' within DNS lengths, short enough for "_dmarc." in
 * front. 0, or -1 with the reason in why. */
int dmarc_domain_normalize(const char *in, char *out, size_t outsize, char *why, size_t whysize);

/* The Organizational Domain (section 3.2) of a normalized domain, from
 * the Public Suffix List (see dmarc.c for which copy). */
void dmarc_org_domain(const char *domain, char *out, size_t outsize);
/* Which list dmarc_org_domain() uses: a file name, or "built-in". */
const char *dmarc_psl_source(void);

/* ---- the evaluation ------------------------------------------------------ */

/* One DKIM signature's outcome (RFC 6376): the SDID (d=) and whether it
 * verified. temperror: verification could not finish (key lookup failed). */
struct dmarc_dkim {
	const char *domain;
	int pass;
	int temperror;
};

/* One DNS question and, once answered, its answer. */
struct dmarc_lookup {
	char *name;
	uint16_t type;
	int answered;
	enum dns_status status;
	struct dns_answer answer;
};

/* The outcome for one author domain. */
struct dmarc_domain {
	char *domain;          /* normalized (A-label, lower case) */
	char *org;             /* its Organizational Domain */
	enum dmarc_result result;
	enum dmarc_policy disposition;
	/* The policy requested for this message and the tag it came from:
	 * "p", "sp" (a subdomain, record found at the org domain), "np" (a
	 * non-existent subdomain, RFC 9091), or NULL when no record applies. */
	enum dmarc_policy policy;
	const char *policy_tag;
	char *record_domain;   /* where the record was found (policy_published), or NULL */
	char *record_text;     /* the record as published, or NULL */
	int has_record;        /* record is valid (result is not none/permerror/temperror) */
	int policy_defaulted;  /* section 6.6.3 step 6: read as p=none */
	struct dmarc_record record;
	int spf_aligned, dkim_aligned;
	char *dkim_domain;     /* d= of the first aligned passing signature, or NULL */
	int sampled_out;       /* failed, but pct= left this message out (6.6.4) */
	int nonexistent;       /* RFC 9091 section 2.6: 1 yes, 0 no, -1 not checked or unknown */
	char *reason;
};

struct dmarc_eval {
	/* Inputs, copied. */
	size_t nfrom;              /* From fields given */
	char *spf_domain;          /* normalized; NULL when none */
	char *spf_org;
	enum spf_result spf;
	struct dmarc_dkim *dkim;   /* domains normalized and owned; bad ones dropped */
	char **dkim_org;
	size_t ndkim;
	/* The pct= draw: the policy applies when sample < pct. Drawn at random
	 * by dmarc_eval_new(); set it (0..99) before dmarc_run() to choose. */
	unsigned sample;
	/* Why the From fields give nothing to evaluate, or NULL. Then the
	 * result is permerror and the disposition reject (see above). */
	char *from_problem;

	struct dmarc_lookup **lookups; /* in the order first asked */
	size_t nlookups;
	struct dmarc_domain *domains;  /* distinct author domains, in order */
	size_t ndomains;

	/* Results of the last run: the strictest over the domains. */
	enum dmarc_result result;
	enum dmarc_policy disposition;
	const struct dmarc_domain *decisive; /* the domain that decided, or NULL */
	const char *reason;                  /* borrowed from decisive, or from_problem */
};

enum dmarc_run_status { DMARC_RUN_DONE, DMARC_RUN_NEED_DNS };

/*
 * Makes an evaluation. from_values: the raw values of the message's From
 * header fields (nfrom of them, 0 when it has none). spf_domain and spf:
 * the domain SPF checked and its result, i.e. the MAIL FROM domain, or the
 * HELO domain when MAIL FROM is null (RFC 7489 section 3.1.2; spf_eval's
 * `domain` and `result` are exactly these). dkim: one entry per DKIM
 * signature. Everything is copied; never returns NULL. Free with
 * dmarc_eval_free().
 */
struct dmarc_eval *dmarc_eval_new(const char *const *from_values, size_t nfrom, const char *spf_domain,
				  enum spf_result spf, const struct dmarc_dkim *dkim, size_t ndkim);
void dmarc_eval_free(struct dmarc_eval *e);

/* Replays the evaluation over the answers known so far. */
enum dmarc_run_status dmarc_run(struct dmarc_eval *e);

/* Records the answer to table entry i (copies answer). */
void dmarc_answer(struct dmarc_eval *e, size_t i, enum dns_status status, const struct dns_answer *answer);

/* The RFC 8601 comment for a domain's result, e.g. "p=reject dis=none",
 * into out (empty when there is nothing to say). */
void dmarc_comment(const struct dmarc_domain *d, char *out, size_t outsize);

/* The asynchronous driver. */
struct dmarc_job;
typedef void (*dmarc_done_cb)(void *arg, struct dmarc_eval *e);
/* Starts an evaluation (arguments as for dmarc_eval_new; sample 0..99, or
 * -1 to draw at random). cb runs on the event loop, never inside this
 * call, with the finished evaluation (owned by the job; valid during the
 * call). Never returns NULL. */
struct dmarc_job *dmarc_check_async(struct dns *dns, const char *const *from_values, size_t nfrom,
				    const char *spf_domain, enum spf_result spf, const struct dmarc_dkim *dkim,
				    size_t ndkim, int sample, dmarc_done_cb cb, void *arg);
/* Stops an evaluation; its callback never runs. NULL does nothing. */
void dmarc_job_cancel(struct dmarc_job *job);

#endif
