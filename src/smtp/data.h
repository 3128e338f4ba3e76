/*
 * data: decoding the message stream of DATA (RFC 5321 section 4.1.1.4) and
 * BDAT (RFC 3030), as a pure byte-at-a-time state machine.
 *
 * Output is the message with LF line endings (the Maildir convention) and
 * dot-stuffing undone. Invariants, which make SMTP smuggling impossible:
 *   - in DATA mode only CR LF "." CR LF ends the message, where the first CR LF
 *     is a real line ending (the DATA command line counts as one);
 *   - a bare CR or bare LF is an error (DATA_ERR_BARE) in reject mode; in
 *     normalise mode it becomes a line ending, but a "." after it never ends
 *     the message;
 *   - after an error the stream is still read to its real end, so nothing
 *     inside a rejected message is ever taken as a command.
 * Bounds: line length and total size are checked as bytes arrive; past a
 * bound the output stops growing but the input is still consumed.
 */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

enum data_err {
	DATA_ERR_NONE = 0,
	DATA_ERR_BARE = 1 << 0,    /* bare CR or LF (reject mode) */
	DATA_ERR_LINE = 1 << 1,    /* a line over the bound */
	DATA_ERR_SIZE = 1 << 2,    /* message over the bound */
	DATA_ERR_NUL = 1 << 3,     /* NUL byte */
};

enum data_state { DS_BOL, DS_BOL_WEAK, DS_TEXT, DS_CR, DS_DOT, DS_DOT_CR, DS_END };

struct data_decoder {
	enum data_state state;
	int dot_mode;      /* 1 for DATA, 0 for BDAT */
	int normalise;     /* bare CR/LF become line endings */
	uint64_t max_line; /* bytes in a line, line ending included */
	uint64_t max_size; /* bytes of output */
	uint64_t line_len;
	uint64_t out_len;  /* bytes of output produced (even past max_size) */
	int errors;        /* enum data_err bits */
	int eightbit;      /* saw a byte >= 0x80 */
};

void data_init(struct data_decoder *d, int dot_mode, int normalise, uint64_t max_line, uint64_t max_size);

/*
 * Decodes up to n bytes of in. Output bytes are appended to out (at most
 * outsize; callers give outsize >= 2 * n + 2). Returns the number of input
 * bytes consumed: fewer than n only when the end of data was reached (state
 * DS_END), in which case the rest belongs to the next command. *outlen gets
 * the number of bytes written. Output past max_size is dropped.
 */
size_t data_feed(struct data_decoder *d, const char *in, size_t n, char *out, size_t outsize, size_t *outlen);

/* For BDAT LAST: finishes a stream that ends without a line ending. */
void data_finish(struct data_decoder *d, char *out, size_t *outlen);

#endif
