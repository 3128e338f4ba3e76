/*
 * server: the inbound SMTP server (RFC 5321) on the event loop.
 *
 * Trust: everything a client sends is hostile. The I/O layer bounds every
 * line before a command is parsed; the session is a table-driven state
 * machine; a session that waits for the disk is parked under its numeric id
 * and resumed by id, so a finished job never touches a session that has gone.
 *
 * The server owns its sessions, listeners and worker pool. The configuration
 * lives in a reference-counted runtime: a reload makes a new one for new
 * sessions while old sessions keep theirs until they end.
 */
#ifndef POSTERN_SMTP_SERVER_H
#define POSTERN_SMTP_SERVER_H

#include <openssl/ssl.h>

#include "config.h"

struct event_base;
struct store;
struct server;

struct runtime {
	int refs;
	struct config *cfg;
	SSL_CTX *tls; /* NULL when [tls] is not configured */
};

struct runtime *runtime_new(struct config *cfg, SSL_CTX *tls);
void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* Creates the server and binds every listen address of rt->cfg (call this
 * while still root). Returns NULL after logging on failure. Takes a
 * reference on rt; the store is borrowed and must outlive the server. */
struct server *server_new(struct event_base *base, struct runtime *rt);
/* Starts accepting; call after dropping privileges. The store and the
 * resolver (NULL: no SPF) are borrowed. Returns 0 or -1. */
struct dns;
int server_start(struct server *srv, struct store *store, struct dns *dns);
/* The outbound queue for mail to outside addresses (borrowed; NULL: none). */
struct queue;
void server_set_queue(struct server *srv, struct queue *q);
/* Replaces the runtime used by new sessions (SIGHUP). */
void server_set_runtime(struct server *srv, struct runtime *rt);
/* Stops accepting, closes idle sessions with 421, lets transactions in flight
 * finish; breaks the event loop when everything is done or after the
 * configured shutdown_timeout. */
void server_shutdown(struct server *srv);
void server_free(struct server *srv);

#endif
