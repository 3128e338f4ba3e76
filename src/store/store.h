/*
 * store: the state database behind one small interface.
 *
 * Today the only backend is SQLite (store_sqlite.c), a file DATA_DIR/state.db
 * in WAL mode so that the CLI can change mailboxes while the daemon reads
 * them. The functions below are the whole contract; a PostgreSQL backend that
 * lets several postern hosts share state implements the same struct store_ops.
 *
 * Addresses are stored lower-cased ("user@domain"). A catch-all alias has
 * the source "@domain". Errors: functions return a negative enum store_rc and
 * log the reason; they never abort on bad input.
 *
 * Threads: one struct store is used by one thread at a time. The daemon uses
 * it on the event-loop thread for RCPT lookups (indexed, bounded small).
 */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND = -1,
	STORE_EXISTS = -2,
	STORE_INVALID = -3, /* the argument is not acceptable (message in errbuf) */
	STORE_ERROR = -4,   /* the database failed */
};

struct store;

/* Visitor callbacks for the list functions; return non-zero to stop. */
typedef int (*store_user_cb)(void *arg, const char *address, int has_password);
typedef int (*store_alias_cb)(void *arg, const char *source, const char *target);

/* Opens (creating if needed) the store under data_dir. Returns NULL and
 * writes the reason to err (errsize bytes) on failure. */
struct store *store_open(const char *data_dir, char *err, size_t errsize);
void store_close(struct store *st);

/* Mailboxes. password_hash may be NULL (a mailbox that cannot log in). */
int store_user_add(struct store *st, const char *address, const char *password_hash);
int store_user_del(struct store *st, const char *address);
int store_user_set_password(struct store *st, const char *address, const char *password_hash);
/* Copies the stored hash into out (outsize bytes); STORE_NOTFOUND if no such
 * mailbox or it has no password. */
int store_user_get_password(struct store *st, const char *address, char *out, size_t outsize);
int store_user_exists(struct store *st, const char *address);
int store_user_list(struct store *st, store_user_cb cb, void *arg);

/* Aliases: source "user@domain" or "@domain" (catch-all); target a mailbox
 * address. del with target NULL removes every target of source. */
int store_alias_add(struct store *st, const char *source, const char *target);
int store_alias_del(struct store *st, const char *source, const char *target);
int store_alias_list(struct store *st, store_alias_cb cb, void *arg);

/*
 * Resolves an envelope recipient to local mailboxes:
 *   1. the address itself as a mailbox, or as an alias;
 *   2. with sub-addressing (delim non-empty, e.g. "+"), user+tag@domain
 *      as user@domain, mailbox or alias;
 *   3. the catch-all alias "@domain".
 * Aliases may point at aliases, up to STORE_ALIAS_DEPTH levels; duplicates are
 * removed. On STORE_OK, *out is a newly allocated array of *n newly allocated
 * mailbox addresses; free with store_strv_free(). Matching ignores case.
 */
#define STORE_ALIAS_DEPTH 8
#define STORE_MAX_TARGETS 1000
int store_resolve(struct store *st, const char *address, const char *delim, char ***out, size_t *n);
void store_strv_free(char **v, size_t n);

/*
 * The same resolution, where an alias may also lead outside: an alias
 * target whose domain is_local(arg, domain) says is not ours is a
 * forwarding address, collected in forwards (lower-cased, no duplicates)
 * and not looked up further. STORE_OK when the address yields at least one
 * mailbox or forwarding address; free with store_targets_free().
 */
struct store_targets {
	char **mailboxes;
	size_t nmailboxes;
	char **forwards;
	size_t nforwards;
};
int store_resolve_targets(struct store *st, const char *address, const char *delim,
			  int (*is_local)(void *arg, const char *domain), void *arg, struct store_targets *out);
void store_targets_free(struct store_targets *t);

/*
 * Authentication verdicts: one row per message received, with what SPF,
 * DKIM and DMARC said, kept for the DMARC aggregate reports we will send
 * and for `postern deliverability`. Strings may be NULL.
 */
struct store_verdict {
	int64_t received; /* Unix time */
	const char *source_ip;
	const char *helo;
	const char *envelope_from;
	const char *header_from; /* the From domain DMARC evaluated */
	const char *spf_domain;
	const char *spf_result;
	const char *dkim;        /* "d=example.org s=sel a=rsa-sha256 pass; ..." */
	const char *dmarc_result;
	const char *dmarc_policy; /* p/sp/np value that applied */
	const char *disposition;  /* none, quarantine, reject */
	const char *policy_published; /* the DMARC record text */
	const char *reason;
};
int store_verdict_add(struct store *st, const struct store_verdict *v);
/* The same for n verdicts in one transaction (the server batches them:
 * one commit per batch instead of one per message). */
int store_verdicts_add(struct store *st, const struct store_verdict *v, size_t n);
/* Visits verdicts received at or after since, oldest first. */
typedef int (*store_verdict_cb)(void *arg, const struct store_verdict *v);
int store_verdict_list(struct store *st, int64_t since, store_verdict_cb cb, void *arg);

/*
 * Reports received (src/report/): DMARC aggregate reports (RFC 7489
 * appendix C, and the DMARC 2.0 namespace) and SMTP TLS reports (RFC 8460).
 * A report is stored whole, in one transaction, or not at all. Reports are
 * de-duplicated by (org_name, report_id): adding one already there returns
 * STORE_EXISTS and changes nothing. Strings may be NULL unless marked.
 */
struct store_dmarc_record {
	const char *source_ip; /* required */
	int64_t count;
	const char *disposition; /* policy_evaluated: none, quarantine, reject, or as reported */
	const char *dkim;        /* policy_evaluated dkim: pass or fail */
	const char *spf;         /* policy_evaluated spf: pass or fail */
	const char *reason;      /* override reasons, "type: comment; ..." */
	const char *envelope_to;
	const char *envelope_from;
	const char *header_from;
	const char *auth_results; /* "dkim=pass d=example.com s=sel; spf=fail d=example.com scope=mfrom" */
};

struct store_dmarc_report {
	const char *org_name;  /* required (may be empty) */
	const char *report_id; /* required, non-empty */
	const char *email;
	const char *extra_contact;
	const char *format; /* "rfc7489" or "dmarc-2.0" (the namespace) */
	int64_t begin, end; /* Unix time */
	const char *domain; /* policy_published domain, required */
	const char *policy; /* "p=reject sp=none pct=100 adkim=r aspf=r ..." */
	const struct store_dmarc_record *records;
	size_t nrecords;
};
int store_dmarc_report_add(struct store *st, const struct store_dmarc_report *r);

/* Summaries over the records of reports whose period ends at or after
 * since. Grouped by reporter (org_name, email; source_ip and domain NULL)
 * or by source (source_ip, domain; org_name and email NULL). */
enum store_dmarc_group { STORE_DMARC_BY_REPORTER, STORE_DMARC_BY_SOURCE };
struct store_dmarc_row {
	const char *org_name, *email;
	const char *source_ip, *domain;
	const char *header_from; /* the From domains seen, comma-separated */
	int64_t reports;         /* distinct reports */
	int64_t reporters;       /* distinct reporters */
	int64_t messages;        /* sum of count */
	int64_t dkim_pass, spf_pass, dmarc_pass; /* messages */
	int64_t none, quarantine, reject;        /* messages by disposition */
};
typedef int (*store_dmarc_row_cb)(void *arg, const struct store_dmarc_row *row);
int store_dmarc_summary(struct store *st, int64_t since, enum store_dmarc_group by, store_dmarc_row_cb cb,
			void *arg);

struct store_tls_failure {
	const char *result_type; /* required */
	const char *sending_ip, *receiving_mx, *receiving_ip, *reason_code, *info;
	int64_t count;
};
struct store_tls_policy {
	const char *type;   /* sts, tlsa, no-policy-found */
	const char *domain; /* required */
	const char *mx_host;
	const char *policy_string; /* the policy-string lines joined with "; " */
	int64_t success, failure;
	const struct store_tls_failure *failures;
	size_t nfailures;
};
struct store_tls_report {
	const char *org_name;  /* required */
	const char *report_id; /* required, non-empty */
	const char *contact;
	int64_t begin, end;
	const struct store_tls_policy *policies;
	size_t npolicies;
};
int store_tls_report_add(struct store *st, const struct store_tls_report *r);

/* Per reporter and policy domain (result_type, sending_ip, receiving_mx
 * NULL), or per failure kind (org_name NULL; domain, result_type,
 * sending_ip, receiving_mx set; failure = failed sessions), over reports
 * whose period ends at or after since. */
enum store_tls_group { STORE_TLS_BY_POLICY, STORE_TLS_BY_FAILURE };
struct store_tls_row {
	const char *org_name, *domain, *policy_type;
	const char *result_type, *sending_ip, *receiving_mx;
	int64_t reports, success, failure;
};
typedef int (*store_tls_row_cb)(void *arg, const struct store_tls_row *row);
int store_tls_summary(struct store *st, int64_t since, enum store_tls_group by, store_tls_row_cb cb, void *arg);

/*
 * Graylisting (RFC 6647; policy/grey.c has the logic). A triplet is
 * (client, sender, recipient): client is a network block ("192.0.2.0/24",
 * "2001:db8::/64") or, when SPF passed for the sender, the sender's domain;
 * sender is normalised (policy/grey.c), "" for the null sender. Times are
 * Unix milliseconds; passed is 0 until the triplet has passed. Allow entries are
 * clients (blocks) and sender domains that are not delayed: counted
 * accepted messages (auto-allow), or manual (never expire). Keys are at most
 * STORE_GREY_KEY_MAX bytes.
 */
#define STORE_GREY_KEY_MAX 320
struct store_grey {
	const char *client, *sender, *rcpt;
	int64_t first_seen, last_seen, passed, attempts;
};
struct store_allow {
	const char *key;
	int64_t count, first_seen, last_seen;
	int manual;
};
typedef int (*store_grey_cb)(void *arg, const struct store_grey *g);
typedef int (*store_allow_cb)(void *arg, const struct store_allow *a);
/* STORE_OK and *out (strings borrowed from the arguments), or STORE_NOTFOUND. */
int store_grey_get(struct store *st, const char *client, const char *sender, const char *rcpt, struct store_grey *out);
/* Inserts or replaces the triplet. */
int store_grey_put(struct store *st, const struct store_grey *g);
int store_grey_list(struct store *st, store_grey_cb cb, void *arg);
int store_allow_get(struct store *st, const char *key, struct store_allow *out);
int store_allow_put(struct store *st, const struct store_allow *a);
int store_allow_list(struct store *st, store_allow_cb cb, void *arg);
/* Removes the triplets whose client, sender or recipient is key, and the
 * allow entry key; key NULL removes everything. *n: rows removed. */
int store_grey_forget(struct store *st, const char *key, int64_t *n);
/* Removes triplets that never passed and were first seen before
 * unpassed_before, passed ones idle since before passed_before, and
 * automatic allow entries idle since before allow_before. */
int store_grey_expire(struct store *st, int64_t unpassed_before, int64_t passed_before, int64_t allow_before,
		      int64_t *n);

/*
 * The outbound queue (queue.c). The message itself lives in a file under
 * DATA_DIR/queue/; these rows are its envelope and the state of each
 * recipient: "pending" (to try at next_attempt), "held" (by the operator),
 * "delivered", "failed" (final failure; its bounce not yet queued) and
 * "bounced" (final failure, bounce queued or not wanted).
 */
struct store_qmsg {
	const char *qid;
	const char *mail_from; /* "" for the null sender */
	int64_t queued;        /* Unix time */
	int64_t size;          /* bytes of the message */
	int64_t body_offset;   /* where the message starts in its queue file */
	const char *envid;     /* or NULL */
	int ret_full, body_8bit, smtputf8;
	const char *origin;
	int delay_notified;
};
struct store_qrcpt {
	const char *qid;
	const char *rcpt;
	const char *state;
	int attempts;
	int64_t next_attempt; /* Unix time */
	int64_t last_attempt; /* 0: never */
	const char *last_status; /* enhanced status code, "4.4.1" */
	const char *last_reply;  /* the reply (or our own diagnostic) */
	const char *last_mx;     /* who said it */
};
typedef int (*store_qmsg_cb)(void *arg, const struct store_qmsg *m);
typedef int (*store_qrcpt_cb)(void *arg, const struct store_qrcpt *r);
typedef int (*store_qid_cb)(void *arg, const char *qid);
/* Adds a message and its recipients (all pending, due at m->queued) in one
 * transaction; STORE_EXISTS if the queue id is already known. */
int store_queue_add(struct store *st, const struct store_qmsg *m, const char *const *rcpts, size_t n);
/* Visits one message (qid) or all (qid NULL, oldest first): msg_cb for the
 * message, then rcpt_cb for each of its recipients. STORE_NOTFOUND if qid
 * is given and unknown. Callbacks must not call into the store. */
int store_queue_visit(struct store *st, const char *qid, store_qmsg_cb msg_cb, store_qrcpt_cb rcpt_cb, void *arg);
/* Visits (at most max) queue ids with a pending recipient due at now or
 * before, or a failed one, oldest first. */
int store_queue_due(struct store *st, int64_t now, size_t max, store_qid_cb cb, void *arg);
/* Updates one recipient's state, attempts, times and last reply. */
int store_queue_rcpt_update(struct store *st, const struct store_qrcpt *r);
/* Moves the recipients of qid in state from (NULL: pending and held) to
 * state to, due at next_attempt; *changed says how many. */
int store_queue_set_state(struct store *st, const char *qid, const char *from, const char *to, int64_t next_attempt,
			  int *changed);
int store_queue_set_notified(struct store *st, const char *qid);
/* Removes the message's rows. */
int store_queue_del(struct store *st, const char *qid);
/* How many recipients of qid are not final (pending, held or failed). */
int store_queue_unfinished(struct store *st, const char *qid, int *count);

/*
 * The delivery ledger: one row per recipient per delivery attempt, for
 * `postern queue ledger` and the deliverability report.
 */
struct store_delivery {
	int64_t time; /* Unix time, milliseconds */
	const char *qid;
	const char *rcpt;
	const char *domain;
	const char *provider;     /* gmail, outlook, yahoo, icloud, other, local */
	const char *route;        /* direct, relay, local */
	const char *route_reason; /* why that route */
	const char *mx;           /* the host that answered, or NULL */
	const char *ip;
	const char *outcome;      /* delivered, deferred, failed */
	int code;                 /* SMTP reply code, 0 if none */
	const char *status;       /* enhanced status code */
	const char *reply;        /* reply text or local diagnostic */
	const char *tls_version;  /* NULL: no TLS */
	const char *tls_cipher;
	int tls_verified;         /* the certificate chain and name verified */
	const char *tls_policy;   /* none, sts-testing, sts-enforce, dane; NULL: not recorded */
	int tls_policy_ok;        /* the policy's requirements were met */
	const char *tls_failure;  /* RFC 8460 result type (certificate-host-mismatch, ...), or NULL */
};
typedef int (*store_delivery_cb)(void *arg, const struct store_delivery *d);
int store_ledger_add(struct store *st, const struct store_delivery *d);
/* Visits the rows at or after since (milliseconds), oldest first. */
int store_ledger_list(struct store *st, int64_t since, store_delivery_cb cb, void *arg);

/*
 * The MTA-STS policy cache (RFC 8461 section 5.1): per domain, the policy
 * id from the TXT record, the policy text as fetched, when it was fetched
 * and when it expires (Unix seconds: fetched + max_age).
 */
struct store_mtasts {
	char *domain, *id, *policy;
	int64_t fetched, expires;
};
/* STORE_OK and out filled (free with store_mtasts_clear), STORE_NOTFOUND,
 * or an error. domain lower case. */
int store_mtasts_get(struct store *st, const char *domain, struct store_mtasts *out);
/* Inserts or replaces the domain's row. */
int store_mtasts_put(struct store *st, const struct store_mtasts *m);
void store_mtasts_clear(struct store_mtasts *m);

/*
 * Aggregates for `postern deliverability` and the dashboard, computed in
 * SQL so that a page rendered on the event loop reads a bounded number of
 * rows. Days are UTC days, given as the Unix time (seconds) of their start.
 */
struct store_ledger_day {
	const char *provider; /* NULL for rows recorded without one */
	int64_t day;
	const char *outcome;  /* delivered, deferred, failed */
	int64_t count;        /* attempts */
	const char *routes;   /* the routes used, comma-separated */
};
typedef int (*store_ledger_day_cb)(void *arg, const struct store_ledger_day *d);
/* Ledger rows at or after since (milliseconds) per provider, day and outcome. */
int store_ledger_daily(struct store *st, int64_t since, store_ledger_day_cb cb, void *arg);

struct store_ledger_reason {
	const char *provider, *outcome, *status;
	int code;
	int64_t count;
	const char *reply; /* one reply of the group (the greatest) */
};
typedef int (*store_ledger_reason_cb)(void *arg, const struct store_ledger_reason *r);
/* Attempts that were not delivered, at or after since (ms), per provider,
 * outcome, status and code, most frequent first, at most max groups. */
int store_ledger_reasons(struct store *st, int64_t since, size_t max, store_ledger_reason_cb cb, void *arg);
/* The latest attempts to provider at or after since (ms), newest first, at
 * most max rows (only time, provider, outcome, code, status, reply set). */
int store_ledger_recent(struct store *st, const char *provider, int64_t since, size_t max, store_delivery_cb cb,
			void *arg);

/* DMARC report records summed per report and header_from, for reports whose
 * period ends at or after since (seconds), oldest first, at most max rows. */
struct store_dmarc_day {
	const char *org_name, *email, *header_from;
	int64_t begin, end;
	int64_t messages, dmarc_pass; /* dmarc_pass: DKIM or SPF pass (policy_evaluated) */
};
typedef int (*store_dmarc_day_cb)(void *arg, const struct store_dmarc_day *d);
int store_dmarc_daily(struct store *st, int64_t since, size_t max, store_dmarc_day_cb cb, void *arg);

/* TLS report sessions per day (of the report's begin), since as above. */
struct store_tls_day {
	int64_t day, reports, success, failure;
};
typedef int (*store_tls_day_cb)(void *arg, const struct store_tls_day *d);
int store_tls_daily(struct store *st, int64_t since, store_tls_day_cb cb, void *arg);

/* The queue's size now: messages, and recipients by state. */
struct store_queue_counts {
	int64_t messages, pending, held, failed, delivered, bounced;
};
int store_queue_counts(struct store *st, struct store_queue_counts *out);
/* Recipients not yet final (pending, held, failed) per state and domain,
 * largest groups first, at most max groups. */
struct store_queue_domain {
	const char *state, *domain;
	int64_t rcpts;
	int64_t oldest;      /* the oldest message's queued time */
	int64_t max_attempts;
	const char *last_reply; /* one of the last replies (the greatest) */
};
typedef int (*store_queue_domain_cb)(void *arg, const struct store_queue_domain *d);
int store_queue_domains(struct store *st, size_t max, store_queue_domain_cb cb, void *arg);

/* Graylisting tables now. */
struct store_grey_stats {
	int64_t triplets, passed, allow_auto, allow_manual;
};
int store_grey_stats(struct store *st, struct store_grey_stats *out);

/*
 * Learned routes (adaptive routing, remote.c): a receiver refused our
 * direct delivery for reputation, so mail for its provider (or, for
 * provider "other", its domain: the key) goes through the relay until
 * `until`. relay 0: no relay was configured; the row is only advice
 * (`postern routes` shows it). Times are Unix seconds.
 */
struct store_route {
	const char *key;
	const char *provider;
	const char *domain; /* the domain whose refusal taught it */
	int64_t until;
	int64_t learned;
	const char *reason; /* the receiver's reply */
	int relay;
};
typedef int (*store_route_cb)(void *arg, const struct store_route *r);
/* Inserts or replaces the route of r->key. */
int store_route_put(struct store *st, const struct store_route *r);
/* Visits the route of key (NULL: all, by key). */
int store_route_list(struct store *st, const char *key, store_route_cb cb, void *arg);
/* Removes the route of key; *n: 0 or 1. */
int store_route_forget(struct store *st, const char *key, int *n);

/* The backend contract (for a second backend later). */
struct store_ops {
	const char *name;
	int (*user_add)(struct store *, const char *, const char *);
	int (*user_del)(struct store *, const char *);
	int (*user_set_password)(struct store *, const char *, const char *);
	int (*user_get_password)(struct store *, const char *, char *, size_t);
	int (*user_exists)(struct store *, const char *);
	int (*user_list)(struct store *, store_user_cb, void *);
	int (*alias_add)(struct store *, const char *, const char *);
	int (*alias_del)(struct store *, const char *, const char *);
	int (*alias_targets)(struct store *, const char *, store_alias_cb, void *);
	int (*alias_list)(struct store *, store_alias_cb, void *);
	int (*verdict_add)(struct store *, const struct store_verdict *);
	int (*verdicts_add)(struct store *, const struct store_verdict *, size_t);
	int (*verdict_list)(struct store *, int64_t, store_verdict_cb, void *);
	int (*dmarc_report_add)(struct store *, const struct store_dmarc_report *);
	int (*dmarc_summary)(struct store *, int64_t, enum store_dmarc_group, store_dmarc_row_cb, void *);
	int (*tls_report_add)(struct store *, const struct store_tls_report *);
	int (*tls_summary)(struct store *, int64_t, enum store_tls_group, store_tls_row_cb, void *);
	int (*grey_get)(struct store *, const char *, const char *, const char *, struct store_grey *);
	int (*grey_put)(struct store *, const struct store_grey *);
	int (*grey_list)(struct store *, store_grey_cb, void *);
	int (*allow_get)(struct store *, const char *, struct store_allow *);
	int (*allow_put)(struct store *, const struct store_allow *);
	int (*allow_list)(struct store *, store_allow_cb, void *);
	int (*grey_forget)(struct store *, const char *, int64_t *);
	int (*grey_expire)(struct store *, int64_t, int64_t, int64_t, int64_t *);
	int (*queue_add)(struct store *, const struct store_qmsg *, const char *const *, size_t);
	int (*queue_visit)(struct store *, const char *, store_qmsg_cb, store_qrcpt_cb, void *);
	int (*queue_due)(struct store *, int64_t, size_t, store_qid_cb, void *);
	int (*queue_rcpt_update)(struct store *, const struct store_qrcpt *);
	int (*queue_set_state)(struct store *, const char *, const char *, const char *, int64_t, int *);
	int (*queue_set_notified)(struct store *, const char *);
	int (*queue_del)(struct store *, const char *);
	int (*queue_unfinished)(struct store *, const char *, int *);
	int (*ledger_add)(struct store *, const struct store_delivery *);
	int (*ledger_list)(struct store *, int64_t, store_delivery_cb, void *);
	int (*mtasts_get)(struct store *, const char *, struct store_mtasts *);
	int (*mtasts_put)(struct store *, const struct store_mtasts *);
	int (*ledger_daily)(struct store *, int64_t, store_ledger_day_cb, void *);
	int (*ledger_reasons)(struct store *, int64_t, size_t, store_ledger_reason_cb, void *);
	int (*ledger_recent)(struct store *, const char *, int64_t, size_t, store_delivery_cb, void *);
	int (*dmarc_daily)(struct store *, int64_t, size_t, store_dmarc_day_cb, void *);
	int (*tls_daily)(struct store *, int64_t, store_tls_day_cb, void *);
	int (*queue_counts)(struct store *, struct store_queue_counts *);
	int (*queue_domains)(struct store *, size_t, store_queue_domain_cb, void *);
	int (*grey_stats)(struct store *, struct store_grey_stats *);
	int (*route_put)(struct store *, const struct store_route *);
	int (*route_list)(struct store *, const char *, store_route_cb, void *);
	int (*route_forget)(struct store *, const char *, int *);
	void (*close)(struct store *);
};

#endif
