/*
 * queue: the durable outbound queue (the contract; queue.c implements it).
 *
 * Everything postern sends goes through here: mail submitted by our users for
 * outside recipients, mail an alias forwards to an outside address, bounces
 * and delay notices (RFC 3464), `postern sendmail` from local programs.
 *
 * Invariants:
 *   - queue_put() returns 0 only once the message and its envelope are on
 *     disk and fsync'd: the caller may then answer 250. A kill -9 at any
 *     moment loses nothing that was put, and never leaves half a message.
 *   - State is per recipient: each one is pending, held, delivered, bounced
 *     or expired on its own; the message goes when no recipient is pending.
 *   - Delivery is at-least-once: a crash between the receiver's 250 and our
 *     record of it may deliver that recipient again, never lose it.
 *   - Bounces go to the envelope sender, never to the null sender, and a
 *     bounce is itself sent with the null sender, so they cannot loop.
 *
 * Storage (docs/architecture.md says why): DATA_DIR/queue/ holds one file
 * per message, its envelope in a short text header followed by the message
 * bytes as given. queue_put() writes it in tmp/, fsyncs it, renames it into
 * incoming/ and fsyncs incoming/: that rename is the commit. The daemon
 * (or any CLI command) imports incoming/ files into the state store
 * (envelope and per-recipient state) and then moves them to active/.
 * Per-recipient state lives only in the store.
 *
 * Threads: queue_put() blocks on the disk and may be called from any thread
 * (the daemon calls it from worker threads, the CLI from its main thread),
 * and from another process (`postern sendmail`, run as root or the postern
 * user). Everything else runs on the daemon's event loop.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/maildir.h" /* struct maildir_msg: head, spilled body, tail */

struct config;
struct dns;
struct event_base;
struct store;
struct queue;

#define QUEUE_ID_MAX 32

/* The envelope of one message. Strings are borrowed for the call. */
struct queue_env {
	const char *mail_from;         /* "" for the null sender (bounces) */
	const char *const *rcpts;      /* canonical "local@domain" addresses */
	size_t nrcpts;
	int body_8bit;                 /* BODY=8BITMIME was given, or the body has 8-bit bytes */
	int smtputf8;                  /* SMTPUTF8 was given */
	const char *envid;             /* RFC 3461 ENVID, or NULL */
	int ret_full;                  /* RFC 3461 RET=FULL (default: headers only) */
	const char *origin;            /* for the log: "submission user=a@b", "forward", "dsn", "sendmail" */
};

/*
 * Writes one message (the bytes described by msg, in order) and its envelope
 * into the queue under data_dir, durably. Copies the new queue id into qid
 * (qidsize >= QUEUE_ID_MAX). Returns 0, or -1 with errno set and nothing
 * left behind. Needs no struct queue: the daemon picks new messages up by
 * itself (queue_kick() makes it look at once).
 */
int queue_put(const char *data_dir, const struct queue_env *env, const struct maildir_msg *msg, char *qid,
	      size_t qidsize);

/*
 * The daemon's side: the scheduler and the deliveries. queue_new() runs on
 * the event loop after privileges are dropped; the config, store and
 * resolver are borrowed and must outlive it (queue_set_config() swaps the
 * config on SIGHUP). NULL after logging on failure.
 */
struct queue *queue_new(struct event_base *base, const struct config *cfg, struct store *store, struct dns *dns);
void queue_set_config(struct queue *q, const struct config *cfg);
/* Look for new or due messages now. Safe from any thread. */
void queue_kick(struct queue *q);
/* Stops starting deliveries; those in flight finish or are abandoned (and
 * retried after a restart). */
void queue_shutdown(struct queue *q);
void queue_free(struct queue *q);

/* ---- for the command line (cli_queue.c) and the tests ---- */

/* The envelope header of a queue file, parsed (queue_file_parse). */
struct queue_file {
	char *mail_from;
	char **rcpts;
	size_t nrcpts;
	int body_8bit, smtputf8, ret_full;
	char *envid, *origin; /* NULL when absent */
	int64_t queued;       /* Unix time */
	size_t body_offset;   /* where the message starts */
};
#define QUEUE_HEADER_MAX (8u << 20)
#define QUEUE_MAX_RCPTS 10000
/* Parses the header at the start of buf. Returns 0, 1 if buf ends before
 * the header does (read more), -1 if it is malformed. Pure. */
int queue_file_parse(const char *buf, size_t len, struct queue_file *out);
void queue_file_clear(struct queue_file *f);

/* Whether s looks like a queue id (so it can name a file safely). */
int queue_id_valid(const char *s);
/* Moves messages put since the last look into the store. Returns how many,
 * or -1 (logged). */
int queue_import(const char *data_dir, struct store *st);
/* The path of a queued message's file (the caller frees). */
char *queue_file_path(const char *data_dir, const char *qid);
/* Removes a message: its file, then its rows. 0, or -1 if unknown. */
int queue_remove(const char *data_dir, struct store *st, const char *qid);
/* The wait before retry number `attempts` (1 for the first retry):
 * retry_first doubled each time, at most retry_max. Milliseconds. */
uint64_t queue_backoff_ms(const struct config *cfg, int attempts);

#endif
