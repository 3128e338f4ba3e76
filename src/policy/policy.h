/*
 * policy: inbound policy for the SMTP server: DNSBL/DNSWL, forward-confirmed
 * reverse DNS, HELO checks and the SPF result, each a named, weighted part
 * of one score; thresholds decide deliver, Junk, graylist or reject; the
 * graylist itself (grey.c); rate limits per client (ratelimit.c).
 *
 * Two objects. struct policy lives as long as the server: the rate-limit
 * table and the borrowed store and resolver. struct policy_sess lives as
 * long as one SMTP session: it starts the DNS lookups as the client
 * connects (DNSBL, DNSWL, PTR and the forward lookups of its names) and at
 * HELO (the HELO name), keeps their results, and answers the server's
 * questions at RCPT and at the end of DATA. Lookups run on the event loop
 * through dns.c (with its answer cache); a session that needs them waits
 * parked, and ready() is called (from the loop, never from inside a call
 * into this module) when the last one is in. Freeing the session cancels
 * what is in flight.
 *
 * The decision (docs/configuration.md, [policy] and [greylist]):
 *   score >= reject_threshold          550 5.7.1 at RCPT
 *   graylisting applies (below)        450 4.7.1 at RCPT, or 451 4.7.1
 *                                      after DATA with decide_at_data
 *   score >= junk_threshold            delivered to the Junk folder
 *   otherwise                          delivered
 * Graylisting never delays: authenticated clients, DNSWL-listed clients,
 * mail scoring under greylist_threshold (mode = suspicious), allowed
 * clients and SPF-passing allowed domains, and, with decide_at_data, mail
 * that passes DMARC (aligned SPF or DKIM).
 *
 * Every function here runs on the event-loop thread.
 */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "auth/spf.h"
#include "policy/conf.h"

struct config;
struct dns;
struct store;
struct policy;
struct policy_sess;

struct policy *policy_new(struct store *st, struct dns *dns);
void policy_free(struct policy *p);
/* For `postern policy explain`: the graylist is read, never written. */
void policy_set_readonly(struct policy *p);

/* Rate limits (ratelimit.h): 1 allowed, 0 over the limit. auth_user: the
 * authenticated user or NULL; then the auth_* limits apply to the user. */
int policy_connect_allowed(struct policy *p, const struct config *c, const char *ip);
int policy_message_allowed(struct policy *p, const struct config *c, const char *ip, const char *auth_user);
int policy_recipient_allowed(struct policy *p, const struct config *c, const char *ip, const char *auth_user);
/* Counts an unknown recipient; returns 0 when the client is over its
 * hourly limit. */
int policy_unknown_allowed(struct policy *p, const struct config *c, const char *ip);

typedef void (*policy_ready_cb)(void *arg);

/* A session for a client at ip, connected to our address local_ip. c is
 * borrowed and must outlive the session; sid for log lines. */
struct policy_sess *policy_sess_new(struct policy *p, const struct config *c, const char *sid, const char *ip,
				    const char *local_ip, policy_ready_cb ready, void *arg);
void policy_sess_free(struct policy_sess *ps);

/* Whether the checks or graylisting are on (else RCPT need not wait). */
int policy_sess_active(const struct policy_sess *ps);
/* Lookups in flight that a decision waits for. */
int policy_sess_busy(const struct policy_sess *ps);

void policy_sess_helo(struct policy_sess *ps, const char *helo);
/* A new transaction from sender ("" for <>). */
void policy_sess_mail(struct policy_sess *ps, const char *sender);
/* The SPF result for MAIL FROM, and the domain it checked. */
void policy_sess_spf(struct policy_sess *ps, const char *domain, enum spf_result r);

enum policy_action { POLICY_ACCEPT, POLICY_REJECT, POLICY_DEFER };

/* At RCPT, for a local recipient. auth: the client has authenticated.
 * POLICY_DEFER sets *retry_s (seconds until a retry can pass). */
enum policy_action policy_sess_rcpt(struct policy_sess *ps, int auth, const char *rcpt, int64_t *retry_s);
/* At the end of data. dmarc_pass: DMARC passed (aligned SPF or DKIM).
 * POLICY_ACCEPT sets *folder to the Junk folder or NULL; POLICY_DEFER
 * sets *retry_s. */
enum policy_action policy_sess_data(struct policy_sess *ps, int auth, int dmarc_pass, const char **folder,
				    int64_t *retry_s);
/* The score of the last decision, and "NAME=+W NAME=-W ..." (borrowed). */
double policy_sess_score(const struct policy_sess *ps);
const char *policy_sess_parts(const struct policy_sess *ps);
/* Our header for the message accepted last, "X-Postern-Policy: ...\n",
 * folded; NULL when the checks are off. The caller frees it. */
char *policy_sess_header(const struct policy_sess *ps);
/* The message was accepted for delivery: counts it for auto-allow. */
void policy_sess_accepted(struct policy_sess *ps);

/* The result of every check, for `postern policy explain`. */
struct policy_report_item {
	char name[128];  /* "dnsbl.zen.spamhaus.org", "fcrdns", "helo", "spf" */
	char result[600];
	double weight;
	int scored;
};
size_t policy_sess_report(struct policy_sess *ps, struct policy_report_item *items, size_t max);
const char *policy_decision_name(const struct policy_sess *ps);

/* What the checks learnt about the client, for the self-test grader.
 * Strings are borrowed from the session. */
struct policy_client {
	int rdns_checked;   /* reverse DNS was looked up and answered */
	const char *ptr;    /* a PTR name (the confirmed one when fcrdns), or NULL */
	int fcrdns;
	int helo_resolves;  /* 1, 0, or -1 when not checked */
	const char *listed[POLICY_MAX_ZONES]; /* block lists the client is on */
	size_t nlisted;
};
void policy_sess_client(const struct policy_sess *ps, struct policy_client *out);

#endif
