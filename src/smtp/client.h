/*
 * client: the outbound SMTP client (RFC 5321) on the event loop.
 *
 * One struct smtpc is one connection to one address: connect, greeting,
 * EHLO (HELO if EHLO is refused), STARTTLS (RFC 3207) when asked and
 * offered, AUTH PLAIN or LOGIN (RFC 4954) when credentials are given, then
 * any number of transactions, one at a time: MAIL, RCPT..., DATA sent
 * together when the server offers PIPELINING (RFC 2920), one by one when it
 * does not, and the message streamed from a file with its line ends made
 * CRLF and its dots stuffed (reply.c).
 *
 * Trust: the server is a stranger. Every reply line is bounded
 * (SMTP_REPLY_LINE_MAX) before it is parsed, every reply by the parser, and
 * every wait by a timeout; a violation ends the connection with a
 * temporary failure.
 *
 * Callbacks: each is called at most once per request, from the event loop
 * and never from inside the call that made the request; the callback may
 * free the client or start the next transaction.
 */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "smtp/reply.h"

struct event_base;
struct smtpc;

enum smtpc_tls {
	SMTPC_TLS_NONE,          /* never */
	SMTPC_TLS_OPPORTUNISTIC, /* STARTTLS when offered; any certificate */
	SMTPC_TLS_STARTTLS,      /* STARTTLS required */
	SMTPC_TLS_IMPLICIT,      /* TLS from the first byte (port 465) */
};

struct smtpc_opts {
	const char *helo;
	enum smtpc_tls tls;
	SSL_CTX *ssl_ctx;     /* borrowed; its verify mode decides whether a bad certificate fails */
	const char *tls_name; /* SNI and the name the certificate must match; NULL: none */
	const char *auth_user, *auth_pass; /* NULL: no AUTH */
	const char *source;   /* local address to bind, or NULL */
	uint64_t connect_timeout_ms, command_timeout_ms, data_timeout_ms;
	const char *log_id;   /* for log lines */
	/* Called with the new SSL object before each handshake (DANE setup);
	 * -1 fails the connection. arg must outlive the opening. */
	int (*tls_setup)(void *arg, SSL *ssl);
	void *tls_setup_arg;
};

/* The outcome of one step. code 0 means a local failure (connection, TLS,
 * timeout, protocol error) described in text, always temporary. */
struct smtpc_result {
	int code;
	char status[16];
	char text[512]; /* one line, e.g. "550 5.1.1 <a@b>: no such user" */
};
#define SMTPC_TEMP(r) ((r)->code == 0 || ((r)->code >= 400 && (r)->code < 500))

struct smtpc_info {
	char peer[64];        /* the address connected to */
	struct smtp_ext ext;  /* what the last EHLO offered */
	int tls;              /* TLS is on */
	char tls_version[16];
	char tls_cipher[64];
	int tls_verified;     /* chain and name verified */
	int tls_failed;       /* an opportunistic STARTTLS handshake failed */
	long tls_verify_error; /* X509_V_OK or why the chain/name/DANE check failed */
	int tls_dane;         /* a TLSA record matched (SSL_get0_dane_authority) */
	int starttls_missing; /* STARTTLS was required and not offered or refused */
};

/* ok: the connection is ready for a transaction; otherwise r says why not
 * (and the client must still be freed). */
typedef void (*smtpc_open_cb)(void *arg, struct smtpc *c, int ok, const struct smtpc_result *r);

/* Starts a connection. Strings in opts are copied. Never NULL; a failure
 * to even start is reported through cb. */
struct smtpc *smtpc_open(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
			 const struct smtpc_opts *opts, smtpc_open_cb cb, void *arg);

struct smtpc_txn {
	const char *mail_from; /* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	int body_8bit, smtputf8;
	int fd;    /* the message: len bytes of fd from off */
	off_t off, len;
};

struct smtpc_txn_result {
	struct smtpc_result mail;
	struct smtpc_result *rcpt; /* nrcpts of them */
	struct smtpc_result data;  /* for the accepted recipients */
	int reusable;              /* another transaction may follow */
};
typedef void (*smtpc_txn_cb)(void *arg, struct smtpc *c, const struct smtpc_txn_result *r);

/* Runs one transaction on a ready connection. The strings and the fd must
 * stay valid until cb. */
void smtpc_send(struct smtpc *c, const struct smtpc_txn *t, smtpc_txn_cb cb, void *arg);
const struct smtpc_info *smtpc_info(const struct smtpc *c);
/* Whether the connection is still open and idle (a server may close an
 * idle connection at any time). */
int smtpc_usable(const struct smtpc *c);
/* Says QUIT and frees the client when the server answers (or after a
 * short wait). The caller forgets c. */
void smtpc_quit(struct smtpc *c);
/* Closes at once. NULL is fine. */
void smtpc_free(struct smtpc *c);

/* The client TLS context: TLS 1.2 and 1.3, the system's CAs plus ca_file
 * (may be NULL), verification required or not. NULL with err on failure. */
SSL_CTX *smtpc_tls_ctx(const char *ca_file, int verify, char *err, size_t errsize);

#endif
