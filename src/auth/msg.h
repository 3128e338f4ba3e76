/*
 * msg: the header block of a message and the DKIM canonicalisations
 * (RFC 6376 section 3.4), shared by DKIM (dkim.c, dkim_sign.c) and ARC.
 *
 * Messages inside postern have LF line endings; messages from files may have
 * CRLF. Everything here accepts either (a line ends at LF, a CR just before
 * it belongs to the line ending; any other CR is an ordinary byte) and
 * produces the CRLF form RFC 6376 canonicalises to.
 *
 * Streaming: a message is fed in chunks of any size. struct msg_headers
 * keeps the header block only (bounded by MSG_MAX_HEADER_BYTES and
 * MSG_MAX_FIELDS); the body is never stored: it goes through body
 * canonicalisers that hash as they go (struct msg_bodyhash). So one pass over
 * a large message, no copy of it.
 *
 * Invariants:
 *  - h->buf holds exactly the header block bytes seen so far (the empty line
 *    that ends it included), NUL-terminated; fields[] are spans of it.
 *  - a field's span covers its name, colon, value and every line ending,
 *    continuation lines included.
 *  - once h->complete, nothing more is appended.
 * Crossing a bound or a line that is no header field sets h->status; the
 * caller decides (DKIM: permerror for every signature).
 */
#ifndef POSTERN_MSG_H
#define POSTERN_MSG_H

#include <stddef.h>
#include <stdint.h>

/* Bounds on the header block we keep. */
#define MSG_MAX_HEADER_BYTES (1024 * 1024)
#define MSG_MAX_FIELDS 1000

/* ---- a growable byte buffer ------------------------------------------- */

struct msg_buf {
	char *data; /* NUL-terminated when non-NULL */
	size_t len, cap;
};

void msg_buf_append(struct msg_buf *b, const void *data, size_t len);
void msg_buf_clear(struct msg_buf *b);

/* ---- the header block ------------------------------------------------- */

enum msg_status {
	MSG_OK,
	MSG_TOO_BIG,    /* over MSG_MAX_HEADER_BYTES: the rest is ignored */
	MSG_TOO_MANY,   /* over MSG_MAX_FIELDS: the rest is ignored */
	MSG_MALFORMED,  /* a line that is neither a field nor a continuation */
};

struct msg_field {
	size_t off;      /* start in buf */
	size_t len;      /* whole field, final line ending included */
	size_t name_len; /* the name, trailing WSP excluded; 0 for a malformed line */
	size_t colon;    /* offset of the colon from off (== len for a malformed line) */
};

struct msg_headers {
	char *buf;
	size_t len, cap;
	struct msg_field *fields;
	size_t nfields, capfields;
	enum msg_status status; /* the first problem seen */
	int complete;           /* the header block has ended (or a bound was crossed) */
	size_t line;            /* start of the line being received */
};

void msg_headers_init(struct msg_headers *h);
void msg_headers_clear(struct msg_headers *h);
/* Feeds message bytes. Returns how many of them belong to the header block
 * (the ending empty line included); the rest, if any, is body. After the
 * header block is complete every call returns 0. */
size_t msg_headers_feed(struct msg_headers *h, const char *data, size_t len);
/* The message ended: a header block without an empty line is complete. */
void msg_headers_end(struct msg_headers *h);
/* Parses a whole message at once; returns the offset of the body. */
size_t msg_headers_parse(struct msg_headers *h, const char *msg, size_t len);

/* 1 when field i is named name (ASCII case-insensitive). */
int msg_field_is(const struct msg_headers *h, size_t i, const char *name);
int msg_field_is_n(const struct msg_headers *h, size_t i, const char *name, size_t namelen);
/* The raw value of field i: after the colon, folding kept, the final line
 * ending excluded. Borrowed. */
const char *msg_field_value(const struct msg_headers *h, size_t i, size_t *len);
/* The raw field without its final line ending. Borrowed. */
const char *msg_field_raw(const struct msg_headers *h, size_t i, size_t *len);
/* The unfolded value of field i (line endings removed, leading and trailing
 * WSP removed), newly allocated. */
char *msg_field_unfolded(const struct msg_headers *h, size_t i);
/* Index of the last field named name at or above index `below` - 1, or -1;
 * pass h->nfields to search the whole block. */
long msg_find_last(const struct msg_headers *h, const char *name, size_t below);

/* ---- header canonicalisation (RFC 6376 sections 3.4.1, 3.4.2) --------- */

enum msg_canon { MSG_CANON_SIMPLE, MSG_CANON_RELAXED };

/* Appends the canonical form of a header field given raw (name, colon,
 * value; folding as received, with or without its final line ending) to
 * out, ending with CRLF unless no_crlf. */
void msg_canon_header(enum msg_canon c, const char *field, size_t len, int no_crlf, struct msg_buf *out);

/* Picks the fields for a signature's h= list (RFC 6376 section 5.4.2):
 * for each name, the last instance not yet picked, scanning from the
 * bottom; a name with no instance left picks nothing (a null field).
 * names[i] has namelens[i] bytes. exclude is a field index that is never
 * picked (the signature being verified), or (size_t)-1. Writes the field
 * index or -1 into picked[i]. */
/* RFC 6376 3.7: the SHA-256 of the signed fields (names, picked bottom-up
 * as msg_pick_fields does) and of the signature field itself (index field)
 * with its b= value (raw bytes [b_cut_start, b_cut_end)) emptied, without
 * its final CRLF, all in canonicalisation c. Shared by DKIM and ARC's AMS.
 * out gets 32 bytes. */
void msg_signed_header_hash(const struct msg_headers *h, enum msg_canon c, const char *const *names,
			    const size_t *namelens, size_t nnames, size_t field, size_t b_cut_start, size_t b_cut_end,
			    unsigned char *out);
void msg_pick_fields(const struct msg_headers *h, const char *const *names, const size_t *namelens, size_t n,
		     size_t exclude, long *picked);

/* ---- body canonicalisation and hashing (RFC 6376 3.4.3, 3.4.4, 3.7) ---- */

/* Where canonical body bytes go. */
typedef void (*msg_sink)(void *arg, const char *data, size_t len);

struct msg_body_canon {
	enum msg_canon canon;
	msg_sink sink;
	void *arg;
	uint64_t empty_lines; /* empty lines held back: they count only if content follows */
	int in_line;          /* the current line has content (emitted or held) */
	int wsp;              /* relaxed: WSP seen in the line after content, not yet emitted */
	int cr;               /* a CR ended the last chunk: line ending or content, not known yet */
	int any;              /* something was flushed to the sink */
	uint64_t out_len;     /* canonical bytes flushed (all of them after _end) */
	size_t olen;
	char out[8192];
};

void msg_body_canon_init(struct msg_body_canon *bc, enum msg_canon c, msg_sink sink, void *arg);
void msg_body_canon_feed(struct msg_body_canon *bc, const char *data, size_t len);
/* The end of the body: emits what is due (the final CRLF) and flushes. */
void msg_body_canon_end(struct msg_body_canon *bc);
/* Whole-buffer convenience for tests: the canonical body, newly allocated
 * (NUL-terminated; *outlen its length). */
char *msg_body_canon_str(enum msg_canon c, const char *body, size_t len, size_t *outlen);
/* The same for one header field, without the final CRLF when no_crlf. */
char *msg_canon_header_str(enum msg_canon c, const char *field, size_t len, int no_crlf);

enum msg_hash { MSG_HASH_SHA1, MSG_HASH_SHA256 };
#define MSG_HASH_MAX 32

/* A streaming body hash: canonicalisation c, hash alg, and an optional
 * limit (l=, the number of canonical bytes hashed; -1 for all). */
struct msg_bodyhash;
struct msg_bodyhash *msg_bodyhash_new(enum msg_canon c, enum msg_hash alg, int64_t limit);
void msg_bodyhash_feed(struct msg_bodyhash *h, const char *data, size_t len);
/* Ends the body. Writes the digest into out (MSG_HASH_MAX bytes) and returns
 * its length; *body_len (if not NULL) gets the whole canonical body length,
 * including bytes past the limit. Call once. */
size_t msg_bodyhash_final(struct msg_bodyhash *h, unsigned char *out, uint64_t *body_len);
enum msg_canon msg_bodyhash_canon(const struct msg_bodyhash *h);
enum msg_hash msg_bodyhash_alg(const struct msg_bodyhash *h);
int64_t msg_bodyhash_limit(const struct msg_bodyhash *h);
void msg_bodyhash_free(struct msg_bodyhash *h);

/* One-shot digest of a buffer; returns its length. */
size_t msg_digest(enum msg_hash alg, const void *data, size_t len, unsigned char *out);

/* ---- base64 (RFC 6376 uses it for b=, bh= and p=) ---------------------- */

/* Decodes base64, skipping white space (FWS is allowed anywhere in these
 * values). Returns the decoded length, or -1 for a character outside the
 * alphabet, bad padding, or more than outsize bytes. */
long msg_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize);
/* Newly allocated base64 of data, without line breaks. */
char *msg_base64_encode(const unsigned char *data, size_t len);

#endif
