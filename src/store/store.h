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
/* Visits verdicts received at or after since, oldest first. */
typedef int (*store_verdict_cb)(void *arg, const struct store_verdict *v);
int store_verdict_list(struct store *st, int64_t since, store_verdict_cb cb, void *arg);

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
};
typedef int (*store_delivery_cb)(void *arg, const struct store_delivery *d);
int store_ledger_add(struct store *st, const struct store_delivery *d);
/* Visits the rows at or after since (milliseconds), oldest first. */
int store_ledger_list(struct store *st, int64_t since, store_delivery_cb cb, void *arg);

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
	int (*verdict_list)(struct store *, int64_t, store_verdict_cb, void *);
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
	void (*close)(struct store *);
};

#endif
