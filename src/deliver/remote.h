/*
 * remote: delivery of one message to the recipients of one domain on
 * other hosts, on the event loop: the route decision (route.c), the MX
 * and address lookups, the connections (smtp/client.c), and the ledger.
 *
 * A destination is a recipient domain (direct) or the relay. Connections
 * to one destination are bounded ([queue] destination_concurrency); a job
 * that finds the bound reached waits for a connection to come free, and a
 * connection that finishes a transaction is handed to the next waiting job
 * of its destination, or kept idle for a short while (REMOTE_IDLE_MS), so
 * that a queue of mail for one place goes down a few reused connections.
 *
 * Addresses: MX hosts in preference order (random among equals), for each
 * its IPv6 then its IPv4 addresses; at most REMOTE_MAX_ADDRS connection
 * attempts per job. A temporary failure (no connection, 4xx greeting,
 * TLS failure at the relay) moves on to the next address.
 *
 * Adaptive routing and pacing (the "routing" section of remote.c): a
 * direct attempt refused for reputation (reputation.c) is recorded as a
 * learned route in the store, and with a relay configured the refused
 * recipients come back with retry_now; the next job for that provider
 * finds the route and goes through the relay (reason "learned: REPLY").
 * Direct jobs over a [pacing] limit end REMOTE_PACED without a
 * connection and without a ledger row.
 */
#ifndef POSTERN_DELIVER_REMOTE_H
#define POSTERN_DELIVER_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct config;
struct dns;
struct event_base;
struct store;
struct remote;

#define REMOTE_IDLE_MS 2000
#define REMOTE_MAX_MX 10
#define REMOTE_MAX_ADDRS 10

/* REMOTE_PACED: not tried, held back by [pacing] until not_before_ms. */
enum remote_outcome { REMOTE_DELIVERED, REMOTE_DEFERRED, REMOTE_FAILED, REMOTE_PACED };

struct remote_result {
	enum remote_outcome outcome;
	int code;        /* the reply code, 0 for our own diagnostic */
	char status[16]; /* enhanced status code */
	char text[512];  /* the reply on one line, or our diagnostic */
	char mx[256];    /* who answered, "" when nobody did */
	int retry_now;   /* refused for reputation: retry at once (a learned route takes it to the relay) */
	int64_t not_before_ms; /* REMOTE_PACED: when it may go */
};

struct remote_msg {
	const char *qid;
	const char *mail_from;
	const char *domain;
	const char *const *rcpts;
	size_t nrcpts;
	int body_8bit, smtputf8;
	int fd; /* the message: len bytes from off; must stay open until the callback */
	off_t off, len;
};

/* res has m->nrcpts entries, in the order of m->rcpts; valid during the call. */
typedef void (*remote_cb)(void *arg, const struct remote_result *res);

/* cfg, dns and store are borrowed. NULL (logged) if TLS cannot be set up. */
struct remote *remote_new(struct event_base *base, const struct config *cfg, struct dns *dns, struct store *store);
void remote_set_config(struct remote *r, const struct config *cfg);
/* Starts a delivery; cb is called once, later, from the loop. Strings are copied. */
void remote_deliver(struct remote *r, const struct remote_msg *m, remote_cb cb, void *arg);
/* Jobs not yet finished. */
size_t remote_pending(const struct remote *r);
/* Abandons every job (no callbacks) and closes every connection. */
void remote_free(struct remote *r);

/* Reads "USERNAME:PASSWORD" (first line) from path into user and pass.
 * Returns 0, or -1 with the reason in err. */
int remote_read_credentials(const char *path, char *user, size_t usize, char *pass, size_t psize, char *err,
			    size_t errsize);

#endif
