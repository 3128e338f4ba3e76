/*
 * dsn: delivery status notifications (RFC 3464) in a multipart/report
 * (RFC 6522): a human-readable part, the message/delivery-status part with
 * one block per recipient, and the original message's header block
 * (text/rfc822-headers) or, when the sender asked RET=FULL, the whole
 * message (message/rfc822).
 *
 * Pure: bytes in, a message out. queue.c sends it with the null sender
 * (RFC 5321 section 4.5.5), so a notification can never cause another.
 * The output has LF line ends, like everything in the queue.
 */
#ifndef POSTERN_QUEUE_DSN_H
#define POSTERN_QUEUE_DSN_H

#include <stddef.h>
#include <stdint.h>

enum dsn_kind { DSN_FAILED, DSN_DELAYED };

struct dsn_rcpt {
	const char *rcpt;
	const char *status;     /* enhanced status code, e.g. "5.1.1" */
	const char *remote_mta; /* host name, or NULL */
	const char *diagnostic; /* the SMTP reply ("550 5.1.1 ..."), or NULL */
	const char *local_diagnostic; /* our own explanation when there is no reply */
	int64_t last_attempt;   /* Unix time, 0: none */
};

struct dsn_input {
	enum dsn_kind kind;
	const char *reporting_mta; /* our host name */
	const char *qid;
	const char *envid;         /* RFC 3461 ENVID, or NULL */
	const char *to;            /* the original envelope sender */
	int64_t arrival;           /* when the original was queued */
	int64_t now;
	int64_t retry_until;       /* for DSN_DELAYED */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *orig;          /* the original's header block, or the whole message when full */
	size_t orig_len;
	int full;
	const char *unique;        /* for the boundary and Message-ID */
};

/* Returns the notification (caller frees) and its length in *len. */
char *dsn_build(const struct dsn_input *in, size_t *len);

/* The length of the header block at the start of msg (up to and including
 * the empty line, or all of msg if there is none). */
size_t dsn_header_len(const char *msg, size_t len);

/* RFC 5322 date, e.g. "Tue, 01 Jul 2025 10:00:00 +0000". */
void dsn_date(int64_t t, char *out, size_t n);

#endif
