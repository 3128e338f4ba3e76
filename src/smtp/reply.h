/*
 * reply: pure parsers for what an SMTP server says to our client
 * (RFC 5321 section 4.2), and the DATA encoder.
 *
 * A reply is one or more lines "CODE-text" ending with "CODE text" (or a
 * bare "CODE"). Every line of one reply must carry the same code; anything
 * else is a protocol error, never a guess. The enhanced status code
 * (RFC 3463, RFC 2034) is taken from the first line when its class matches
 * the reply's. Bounds: SMTP_REPLY_LINE_MAX per line (the I/O layer refuses
 * longer lines before they get here), SMTP_REPLY_LINES_MAX lines and
 * SMTP_REPLY_MAX bytes per reply. Hostile input is the norm: a server may
 * send anything.
 *
 * The EHLO reply's lines after the first are keywords (RFC 5321 4.1.1.1):
 * the ones the client uses are decoded into struct smtp_ext.
 *
 * The DATA encoder turns a stored message (LF or CRLF line ends) into the
 * wire form: every line ends with CRLF and a line starting with '.' gets a
 * second one (RFC 5321 section 4.5.2); smtp_dot_finish() ends the last
 * line if needed and adds the final ".".
 */
#ifndef POSTERN_SMTP_REPLY_H
#define POSTERN_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX 4096 /* bytes of one reply line, CRLF excluded (RFC 5321 asks 512) */
#define SMTP_REPLY_LINES_MAX 128
#define SMTP_REPLY_MAX 65536

struct smtp_reply {
	int code;        /* 200..599 once complete */
	char status[16]; /* "5.1.1", or "" */
	char *text;      /* the lines' text (after "CODE-"), joined with '\n'; NUL-terminated */
	size_t len, cap;
	size_t nlines;
};

enum smtp_reply_rc { SMTP_REPLY_MORE, SMTP_REPLY_DONE, SMTP_REPLY_BAD };

void smtp_reply_init(struct smtp_reply *r);
/* Frees the text and makes r ready for the next reply. */
void smtp_reply_clear(struct smtp_reply *r);
/* Feeds one line without its CRLF. After DONE or BAD call smtp_reply_clear()
 * before feeding the next reply. */
enum smtp_reply_rc smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);
/* "550 5.1.1 text of the first line / second line": the reply on one line
 * for logs and DSNs, control bytes replaced, cut to fit n bytes. */
void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t n);

enum { SMTP_AUTH_PLAIN = 1, SMTP_AUTH_LOGIN = 2 };

struct smtp_ext {
	unsigned pipelining : 1, eightbitmime : 1, smtputf8 : 1, starttls : 1, enhanced : 1, chunking : 1, dsn : 1,
		has_size : 1;
	uint64_t size; /* SIZE's limit; 0: none given */
	unsigned auth; /* SMTP_AUTH_* bits */
};
/* Decodes the keywords of a complete EHLO reply. */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ext *out);

struct smtp_dot {
	int bol; /* at the start of a line */
	int cr;  /* a CR was read and not yet written */
};
void smtp_dot_init(struct smtp_dot *d);
/* Encodes n bytes into out, which must hold 2 * n + 2 bytes; returns the
 * bytes written. */
size_t smtp_dot_encode(struct smtp_dot *d, const char *in, size_t n, char *out);
/* Ends the data: a CRLF if the last line was not ended, then ".\r\n".
 * out holds 8 bytes; returns the bytes written. */
size_t smtp_dot_finish(struct smtp_dot *d, char *out);

#endif
