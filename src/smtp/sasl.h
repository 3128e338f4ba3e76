/*
 * sasl: the pure parsers of SMTP AUTH (RFC 4954) for the PLAIN (RFC 4616)
 * and LOGIN mechanisms: the AUTH argument, base64 (RFC 4648 section 4,
 * strict: padding only at the end, no white space), the PLAIN message
 * "authzid NUL authcid NUL passwd", and LOGIN's two answers.
 *
 * Bytes in, struct and status out; no I/O, no globals, no allocation. The
 * server (server.c) keeps the state between the steps and checks the
 * password on a worker thread. Every output is bounded: an address of at
 * most SASL_MAX_USER bytes, a password of at most SASL_MAX_PASSWORD (what
 * libxcrypt takes); longer is SASL_TOO_LONG, never truncated. A response of
 * "*" is the client cancelling (RFC 4954 section 4). The caller wipes
 * passwords with sasl_creds_wipe() (explicit_bzero) when done.
 */
#ifndef POSTERN_SMTP_SASL_H
#define POSTERN_SMTP_SASL_H

#include <stddef.h>

#define SASL_MAX_USER 254
#define SASL_MAX_PASSWORD 511

enum sasl_mech {
	SASL_MECH_INVALID, /* no mechanism, or trailing garbage */
	SASL_MECH_UNKNOWN, /* a mechanism we do not offer */
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

enum sasl_status {
	SASL_OK,
	SASL_CANCELLED,  /* the client sent "*" */
	SASL_BAD_BASE64, /* not base64 */
	SASL_BAD_MESSAGE, /* decoded, but not what the mechanism expects */
	SASL_TOO_LONG,    /* a part over its bound */
};

struct sasl_creds {
	char authzid[SASL_MAX_USER + 1]; /* "" when not given */
	char user[SASL_MAX_USER + 1];
	char password[SASL_MAX_PASSWORD + 1];
};

/* The argument of AUTH: "MECH" or "MECH initial-response" (one space).
 * Sets *initial to the initial response (inside arg) or NULL. */
enum sasl_mech sasl_parse_auth(const char *arg, const char **initial);

/* Strict base64 of len bytes into out (outsize bytes, NUL added after the
 * data so outsize must leave room). "=" alone is the empty string (RFC 4954
 * section 4). Returns the decoded length, -1 if not base64, -2 if it does
 * not fit. */
long sasl_b64_decode(const char *in, size_t len, char *out, size_t outsize);

/* Base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
void sasl_b64_encode(const char *in, size_t n, char *out);

/* A PLAIN response (base64 text, or "*"): fills c. */
enum sasl_status sasl_plain(const char *response, struct sasl_creds *c);

/* One LOGIN answer (base64 text, or "*"): the user name (is_user) or the
 * password, into out (SASL_MAX_USER + 1 or SASL_MAX_PASSWORD + 1 bytes). */
enum sasl_status sasl_login_answer(const char *response, int is_user, char *out, size_t outsize);

void sasl_creds_wipe(struct sasl_creds *c);

#endif
