/*
 * selftest: grades one received message the way the public testing services
 * do (out of 10, each deduction named and explained with its fix).
 *
 * The server sends mail for a self-test address (check-TOKEN@our-domain)
 * here instead of delivering it, with what it learnt while receiving it:
 * the client's reverse DNS and HELO, the SPF, DKIM, DMARC and ARC results,
 * DNS list hits and the TLS used. The grader itself is pure: facts and the
 * message's header block in, a grade out; no DNS, no clock beyond `now`.
 *
 * The weights are ours, chosen after what large receivers say they look at
 * (Gmail's and Yahoo's 2024 sender requirements: SPF or DKIM, DMARC,
 * aligned From, valid reverse DNS, TLS, one-click unsubscribe for bulk
 * mail) and documented in docs/selftest.md.
 */
#ifndef POSTERN_SELFTEST_H
#define POSTERN_SELFTEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SELFTEST_MAX_DKIM 10
#define SELFTEST_MAX_LISTS 16

struct selftest_dkim {
	const char *domain;    /* d= */
	const char *result;    /* "pass", "fail", "neutral", "temperror", "permerror", "policy" */
	const char *algorithm; /* "rsa-sha256", "ed25519-sha256", ... or NULL */
};

/* What the server learnt about the message. Strings are borrowed; NULL
 * means unknown or absent as each comment says. */
struct selftest_facts {
	const char *client_ip;
	const char *helo;
	int rdns_checked;         /* reverse DNS was looked up (else ptr means nothing) */
	const char *ptr;          /* the client's PTR name, or NULL: none */
	int fcrdns;               /* the PTR name resolves back to the client */
	int helo_resolves;        /* 1, 0, or -1 when not checked */
	const char *spf;          /* MAIL FROM result ("pass", ...), NULL: not checked */
	const char *spf_domain;
	const char *spf_helo;     /* HELO result, or NULL */
	const char *envelope_from;
	int dkim_checked;         /* DKIM verification ran */
	struct selftest_dkim dkim[SELFTEST_MAX_DKIM];
	size_t ndkim;
	const char *dmarc;        /* "pass", "fail", "none", "temperror", "permerror", NULL: not checked */
	const char *dmarc_policy; /* p= that applied, or NULL */
	const char *from_domain;  /* the RFC5322.From domain; NULL: taken from the header */
	const char *arc;          /* "none", "pass", "fail", NULL: not checked */
	const char *lists[SELFTEST_MAX_LISTS]; /* DNS block lists the client is on */
	size_t nlists;
	const char *tls_version;  /* "TLSv1.3", ..., NULL: no TLS */
	const char *tls_cipher;
	const char *header;       /* the message's header block (fields as received) */
	size_t header_len;
	uint64_t size;            /* the whole message */
	int64_t now;              /* Unix time of receipt, for the Date check */
};

struct selftest_item {
	char *check;  /* "spf", "dkim", "date", ... */
	double points; /* deducted; 0 for a check that passed */
	char *what;   /* what was found */
	char *fix;    /* what to do, or NULL when it passed */
};

struct selftest_grade {
	double score; /* 0..10, one decimal */
	struct selftest_item *items;
	size_t nitems;
};

/* Grades; g is the caller's (selftest_grade_clear). */
void selftest_grade(const struct selftest_facts *f, struct selftest_grade *g);
void selftest_grade_clear(struct selftest_grade *g);

/* The report for people: score, then each check with its deduction and fix. */
void selftest_write_text(FILE *out, const struct selftest_grade *g, const struct selftest_facts *f);
/* The report as one JSON object (what `postern selftest show --json` and
 * the dashboard read): token, score, items, and the facts. */
void selftest_write_json(FILE *out, const char *token, const struct selftest_grade *g,
			 const struct selftest_facts *f);

/* RFC 5322 section 3.3 date-time to Unix time; -1 when it does not parse.
 * Obsolete forms (two-digit years, named zones) are accepted as section 4.3
 * asks. */
int64_t selftest_parse_date(const char *s);

#endif
