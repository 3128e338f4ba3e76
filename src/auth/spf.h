/*
 * spf: Sender Policy Framework, RFC 7208, complete.
 *
 * Two layers:
 *
 *  - A pure evaluator. spf_run() performs check_host() (RFC 7208 section 4)
 *    over a table of DNS answers it is given. When it needs an answer the
 *    table does not have, it adds the question to the table and returns
 *    SPF_RUN_NEED_DNS; the caller answers every open question and calls
 *    spf_run() again, which replays the evaluation from the start. Replays
 *    are deterministic, so the limits (10 DNS-querying terms, 2 void
 *    lookups, 10 MX and 10 PTR names) are counted exactly as in one pass;
 *    an evaluation needs at most a few dozen lookups, so replaying costs
 *    microseconds. Unit tests feed the table directly, no DNS needed.
 *
 *  - An asynchronous driver, spf_check_async(), that answers the questions
 *    through dns.c on the event loop, several at a time when it can.
 *
 * Record syntax errors, unknown mechanisms and the limits give permerror;
 * DNS failures give temperror; each exactly where the RFC says.
 */
#ifndef POSTERN_SPF_H
#define POSTERN_SPF_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

enum spf_result {
	SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_TEMPERROR, SPF_PERMERROR,
};

const char *spf_result_name(enum spf_result r);

/* Limits of RFC 7208 section 4.6.4. */
#define SPF_MAX_DNS_TERMS 10
#define SPF_MAX_VOID 2
#define SPF_MAX_MX 10
#define SPF_MAX_PTR 10
/* Our own bounds on hostile input. */
#define SPF_MAX_RECORD 4096
#define SPF_MAX_TERMS 256
#define SPF_MAX_LOOKUPS 512
#define SPF_MAX_EXPANSION 2048

struct spf_ip {
	int family; /* AF_INET or AF_INET6; IPv4-mapped IPv6 is stored as AF_INET */
	unsigned char addr[16];
};

/* Parses a textual IPv4 or IPv6 address. 0 or -1. */
int spf_ip_parse(const char *s, struct spf_ip *out);
/* Writes ip in text form. */
void inet_ntop_spf(const struct spf_ip *ip, char *out, size_t n);

/* One DNS question and, once answered, its answer. */
struct spf_lookup {
	char *name;
	uint16_t type;
	int answered;
	enum dns_status status;
	struct dns_answer answer;
};

struct spf_request {
	struct spf_ip ip;
	char *sender;   /* full address; empty sender becomes postmaster@helo */
	char *helo;
	char *receiver; /* our host name, for %{r} */
	int identity_helo; /* check the HELO identity instead of MAIL FROM */
};

struct spf_eval {
	struct spf_request req;
	struct spf_lookup **lookups; /* in the order first asked */
	size_t nlookups;

	/* Results of the last run. */
	enum spf_result result;
	char *domain;      /* the domain checked (of the sender, or HELO) */
	char *explanation; /* from exp=, on fail; else NULL */
	char *problem;     /* why permerror/temperror; else NULL */
	char *mechanism;   /* the term that decided, for Received-SPF */
	unsigned dns_terms, void_lookups;
};

enum spf_run_status { SPF_RUN_DONE, SPF_RUN_NEED_DNS };

/* Makes an evaluation for one check. ip is textual. Returns NULL if the
 * IP address does not parse. Free with spf_eval_free(). */
struct spf_eval *spf_eval_new(const char *ip, const char *sender, const char *helo, const char *receiver,
			      int identity_helo);
void spf_eval_free(struct spf_eval *e);

/* Replays check_host() over the answers known so far. */
enum spf_run_status spf_run(struct spf_eval *e);

/* Records the answer to table entry i (copies answer). */
void spf_answer(struct spf_eval *e, size_t i, enum dns_status status, const struct dns_answer *answer);

/* The Received-SPF header value (RFC 7208 section 9.1), newly allocated. */
char *spf_received_header(const struct spf_eval *e);

/* Parsing only, for tests and fuzzing: 0 if text is a syntactically valid
 * SPF record, else -1 with a reason in why. */
int spf_record_check(const char *text, char *why, size_t whysize);

/* Macro expansion (RFC 7208 section 7) for tests and fuzzing; see spf.c. */
int spf_expand_test(const struct spf_request *req, const char *domain, const char *ptr_name, const char *macro,
		    int exp_context, char *out, size_t outsize);

/* The asynchronous driver. */
struct spf_job;
typedef void (*spf_done_cb)(void *arg, struct spf_eval *e);
/* Starts a check; cb runs on the event loop with the finished evaluation
 * (owned by the job; valid during the call). */
struct spf_job *spf_check_async(struct dns *dns, const char *ip, const char *sender, const char *helo,
				const char *receiver, int identity_helo, spf_done_cb cb, void *arg);
/* Stops a check; its callback never runs. */
void spf_job_cancel(struct spf_job *job);

#endif
