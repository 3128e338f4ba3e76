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
	int (*grey_get)(struct store *, const char *, const char *, const char *, struct store_grey *);
	int (*grey_put)(struct store *, const struct store_grey *);
	int (*grey_list)(struct store *, store_grey_cb, void *);
	int (*allow_get)(struct store *, const char *, struct store_allow *);
	int (*allow_put)(struct store *, const struct store_allow *);
	int (*allow_list)(struct store *, store_allow_cb, void *);
	int (*grey_forget)(struct store *, const char *, int64_t *);
	int (*grey_expire)(struct store *, int64_t, int64_t, int64_t, int64_t *);
	void (*close)(struct store *);
};

#endif
