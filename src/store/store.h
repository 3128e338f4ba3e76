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
/* Visits verdicts received at or after since, oldest first. */
typedef int (*store_verdict_cb)(void *arg, const struct store_verdict *v);
int store_verdict_list(struct store *st, int64_t since, store_verdict_cb cb, void *arg);

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
	void (*close)(struct store *);
};

#endif
