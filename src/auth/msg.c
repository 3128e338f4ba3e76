/*
 * msg: see msg.h. RFC 6376 sections:
 *
 *   3.4.1  simple header canonicalisation     msg_canon_header()
 *   3.4.2  relaxed header canonicalisation    msg_canon_header()
 *   3.4.3  simple body canonicalisation       simple_feed()
 *   3.4.4  relaxed body canonicalisation      relaxed_feed()
 *   3.4.5  body length (l=)                   bodyhash_sink()
 *   5.4.2  signatures of multiple instances   msg_pick_fields()
 *
 * The body canonicalisers are byte-exact state machines that never look
 * back: empty lines are only counted until content shows they are not at the
 * end, and a CR ending a chunk is held until the next byte says whether it
 * starts a line ending. So chunking never changes the result.
 */
#include "msg.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <openssl/evp.h>

#include "lib/util.h"

/* ---- buffers --------------------------------------------------------- */

static void buf_reserve(char **data, size_t *cap, size_t need)
{
	size_t c;
	if (need <= *cap)
		return;
	c = *cap ? *cap : 256;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			abort();
		c *= 2;
	}
	*data = xrealloc(*data, c);
	*cap = c;
}

void msg_buf_append(struct msg_buf *b, const void *data, size_t len)
{
	if (len > SIZE_MAX - b->len - 1)
		abort();
	buf_reserve(&b->data, &b->cap, b->len + len + 1);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void msg_buf_clear(struct msg_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- the header block -------------------------------------------------- */

static int is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

void msg_headers_init(struct msg_headers *h)
{
	memset(h, 0, sizeof *h);
}

void msg_headers_clear(struct msg_headers *h)
{
	free(h->buf);
	free(h->fields);
	msg_headers_init(h);
}

static void set_status(struct msg_headers *h, enum msg_status s)
{
	if (h->status == MSG_OK)
		h->status = s;
}

/* Classifies the line buf[h->line, h->len): the end of the block, a
 * continuation, or a new field. */
static void end_line(struct msg_headers *h)
{
	const char *line = h->buf + h->line;
	size_t n = h->len - h->line, content = n;
	struct msg_field *f;

	if (content && line[content - 1] == '\n')
		content--;
	if (content && line[content - 1] == '\r')
		content--;
	if (content == 0) {
		h->complete = 1;
		h->line = h->len;
		return;
	}
	if (is_wsp((unsigned char)line[0]) && h->nfields) {
		h->fields[h->nfields - 1].len += n;
		h->line = h->len;
		return;
	}
	if (h->nfields >= MSG_MAX_FIELDS) {
		set_status(h, MSG_TOO_MANY);
		h->complete = 1;
		return;
	}
	if (h->nfields == h->capfields) {
		h->capfields = h->capfields ? h->capfields * 2 : 32;
		h->fields = xrealloc(h->fields, h->capfields * sizeof *h->fields);
	}
	f = &h->fields[h->nfields++];
	f->off = h->line;
	f->len = n;
	f->name_len = 0;
	f->colon = n;
	{
		const char *colon = memchr(line, ':', content);
		size_t nl = colon ? (size_t)(colon - line) : 0;
		int ok = colon != NULL;
		while (nl && is_wsp((unsigned char)line[nl - 1]))
			nl--;
		if (nl == 0)
			ok = 0;
		for (size_t i = 0; ok && i < nl; i++)
			if ((unsigned char)line[i] < 0x21 || (unsigned char)line[i] > 0x7e)
				ok = 0;
		if (ok) {
			f->name_len = nl;
			f->colon = (size_t)(colon - line);
		} else {
			set_status(h, MSG_MALFORMED);
		}
	}
	h->line = h->len;
}

size_t msg_headers_feed(struct msg_headers *h, const char *data, size_t len)
{
	size_t used = 0;
	while (used < len && !h->complete) {
		const char *nl = memchr(data + used, '\n', len - used);
		size_t n = nl ? (size_t)(nl - (data + used)) + 1 : len - used;
		if (h->len + n > MSG_MAX_HEADER_BYTES) {
			set_status(h, MSG_TOO_BIG);
			h->complete = 1;
			return len;
		}
		buf_reserve(&h->buf, &h->cap, h->len + n + 1);
		memcpy(h->buf + h->len, data + used, n);
		h->len += n;
		h->buf[h->len] = '\0';
		used += n;
		if (nl) {
			end_line(h);
			if (h->complete && h->status != MSG_OK && h->status != MSG_MALFORMED)
				return len; /* a bound: everything else is ignored */
		}
	}
	return used;
}

void msg_headers_end(struct msg_headers *h)
{
	if (h->complete)
		return;
	if (h->line < h->len)
		end_line(h);
	h->complete = 1;
}

size_t msg_headers_parse(struct msg_headers *h, const char *msg, size_t len)
{
	size_t n;
	msg_headers_init(h);
	n = msg_headers_feed(h, msg, len);
	msg_headers_end(h);
	return n;
}

int msg_field_is_n(const struct msg_headers *h, size_t i, const char *name, size_t namelen)
{
	const struct msg_field *f = &h->fields[i];
	return f->name_len == namelen && namelen && str_casecmp_n(h->buf + f->off, name, namelen) == 0;
}

int msg_field_is(const struct msg_headers *h, size_t i, const char *name)
{
	return msg_field_is_n(h, i, name, strlen(name));
}

static size_t strip_eol(const char *p, size_t n)
{
	if (n && p[n - 1] == '\n') {
		n--;
		if (n && p[n - 1] == '\r')
			n--;
	}
	return n;
}

const char *msg_field_raw(const struct msg_headers *h, size_t i, size_t *len)
{
	const struct msg_field *f = &h->fields[i];
	*len = strip_eol(h->buf + f->off, f->len);
	return h->buf + f->off;
}

const char *msg_field_value(const struct msg_headers *h, size_t i, size_t *len)
{
	const struct msg_field *f = &h->fields[i];
	size_t raw = strip_eol(h->buf + f->off, f->len);
	size_t start = f->colon < raw ? f->colon + 1 : raw;
	*len = raw - start;
	return h->buf + f->off + start;
}

char *msg_field_unfolded(const struct msg_headers *h, size_t i)
{
	size_t n, o = 0;
	const char *v = msg_field_value(h, i, &n);
	char *out = xmalloc(n + 1);
	for (size_t k = 0; k < n; k++) {
		if (v[k] == '\n' || (v[k] == '\r' && k + 1 < n && v[k + 1] == '\n'))
			continue;
		out[o++] = v[k];
	}
	out[o] = '\0';
	while (o && is_wsp((unsigned char)out[o - 1]))
		out[--o] = '\0';
	n = 0;
	while (is_wsp((unsigned char)out[n]))
		n++;
	memmove(out, out + n, o - n + 1);
	return out;
}

long msg_find_last(const struct msg_headers *h, const char *name, size_t below)
{
	if (below > h->nfields)
		below = h->nfields;
	for (size_t i = below; i-- > 0;)
		if (msg_field_is(h, i, name))
			return (long)i;
	return -1;
}

/* ---- header canonicalisation ------------------------------------------- */

void msg_canon_header(enum msg_canon c, const char *field, size_t len, int no_crlf, struct msg_buf *out)
{
	size_t raw = strip_eol(field, len);

	if (c == MSG_CANON_SIMPLE) {
		/* 3.4.1: unchanged, but with CRLF line endings. */
		size_t start = 0;
		for (size_t i = 0; i < raw; i++) {
			if (field[i] == '\n' && (i == 0 || field[i - 1] != '\r')) {
				msg_buf_append(out, field + start, i - start);
				msg_buf_append(out, "\r\n", 2);
				start = i + 1;
			}
		}
		msg_buf_append(out, field + start, raw - start);
	} else {
		/* 3.4.2: lower-case name; unfold; WSP runs to one SP; no WSP at
		 * the end of the value or around the colon. */
		const char *colon = memchr(field, ':', raw);
		size_t nl = colon ? (size_t)(colon - field) : raw, start;
		int pending = 0, started = 0;
		char tmp[256];
		size_t t = 0;

		while (nl && is_wsp((unsigned char)field[nl - 1]))
			nl--;
		for (size_t i = 0; i < nl; i++) {
			char ch = field[i];
			if (ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			tmp[t++] = ch;
			if (t == sizeof tmp) {
				msg_buf_append(out, tmp, t);
				t = 0;
			}
		}
		msg_buf_append(out, tmp, t);
		t = 0;
		if (!colon) {
			/* Not a field; nothing sensible to add. */
			if (!no_crlf)
				msg_buf_append(out, "\r\n", 2);
			return;
		}
		msg_buf_append(out, ":", 1);
		start = (size_t)(colon - field) + 1;
		for (size_t i = start; i < raw; i++) {
			char ch = field[i];
			if (ch == '\n' || (ch == '\r' && i + 1 < raw && field[i + 1] == '\n'))
				continue;
			if (is_wsp((unsigned char)ch)) {
				pending = 1;
				continue;
			}
			if (pending && started)
				tmp[t++] = ' ';
			pending = 0;
			started = 1;
			tmp[t++] = ch;
			if (t >= sizeof tmp - 2) {
				msg_buf_append(out, tmp, t);
				t = 0;
			}
		}
		msg_buf_append(out, tmp, t);
	}
	if (!no_crlf)
		msg_buf_append(out, "\r\n", 2);
}

char *msg_canon_header_str(enum msg_canon c, const char *field, size_t len, int no_crlf)
{
	struct msg_buf b = { 0 };
	msg_canon_header(c, field, len, no_crlf, &b);
	msg_buf_append(&b, "", 0);
	return b.data;
}

void msg_pick_fields(const struct msg_headers *h, const char *const *names, const size_t *namelens, size_t n,
		     size_t exclude, long *picked)
{
	unsigned char *used = xcalloc(h->nfields ? h->nfields : 1, 1);
	for (size_t i = 0; i < n; i++) {
		picked[i] = -1;
		for (size_t j = h->nfields; j-- > 0;) {
			if (j == exclude || used[j] || !msg_field_is_n(h, j, names[i], namelens[i]))
				continue;
			used[j] = 1;
			picked[i] = (long)j;
			break;
		}
	}
	free(used);
}

void msg_signed_header_hash(const struct msg_headers *h, enum msg_canon c, const char *const *names,
			    const size_t *namelens, size_t nnames, size_t field, size_t b_cut_start, size_t b_cut_end,
			    unsigned char *out)
{
	struct msg_buf b = { 0 };
	long *picked = xcalloc(nnames ? nnames : 1, sizeof *picked);
	const char *raw;
	size_t rawlen;
	char *sigf;

	msg_pick_fields(h, names, namelens, nnames, field, picked);
	for (size_t i = 0; i < nnames; i++)
		if (picked[i] >= 0)
			msg_canon_header(c, h->buf + h->fields[picked[i]].off, h->fields[picked[i]].len, 0, &b);
	free(picked);
	raw = msg_field_raw(h, field, &rawlen);
	sigf = xmalloc(rawlen + 1);
	memcpy(sigf, raw, b_cut_start);
	memcpy(sigf + b_cut_start, raw + b_cut_end, rawlen - b_cut_end);
	msg_canon_header(c, sigf, b_cut_start + rawlen - b_cut_end, 1, &b);
	free(sigf);
	msg_digest(MSG_HASH_SHA256, b.data ? b.data : "", b.len, out);
	msg_buf_clear(&b);
}

/* ---- body canonicalisation --------------------------------------------- */

static void bc_flush(struct msg_body_canon *bc)
{
	if (bc->olen) {
		bc->out_len += bc->olen;
		bc->any = 1;
		bc->sink(bc->arg, bc->out, bc->olen);
		bc->olen = 0;
	}
}

static void bc_put(struct msg_body_canon *bc, const char *p, size_t n)
{
	if (bc->olen + n > sizeof bc->out) {
		bc_flush(bc);
		if (n > sizeof bc->out) {
			bc->out_len += n;
			bc->any = 1;
			bc->sink(bc->arg, p, n);
			return;
		}
	}
	memcpy(bc->out + bc->olen, p, n);
	bc->olen += n;
}

/* Input that is its own canonical form goes to the sink without a copy
 * (bc->out must be empty). */
static void bc_direct(struct msg_body_canon *bc, const unsigned char *from, const unsigned char *to)
{
	size_t n = (size_t)(to - from);
	if (n) {
		bc->out_len += n;
		bc->any = 1;
		bc->sink(bc->arg, (const char *)from, n);
	}
}

/* Content follows: the empty lines held back were not the end. */
static void bc_release_empty(struct msg_body_canon *bc)
{
	while (bc->empty_lines) {
		bc_put(bc, "\r\n", 2);
		bc->empty_lines--;
	}
}

void msg_body_canon_init(struct msg_body_canon *bc, enum msg_canon c, msg_sink sink, void *arg)
{
	memset(bc, 0, offsetof(struct msg_body_canon, out));
	bc->canon = c;
	bc->sink = sink;
	bc->arg = arg;
}

static void simple_content(struct msg_body_canon *bc, const char *p, size_t n)
{
	if (!bc->in_line) {
		bc_release_empty(bc);
		bc->in_line = 1;
	}
	bc_put(bc, p, n);
}

static void simple_line_end(struct msg_body_canon *bc)
{
	if (bc->in_line) {
		bc_put(bc, "\r\n", 2);
		bc->in_line = 0;
	} else {
		bc->empty_lines++;
	}
}

/* 3.4.3: lines as they are, empty lines at the end ignored. */
static void simple_feed(struct msg_body_canon *bc, const char *data, size_t len)
{
	size_t i = 0;
	if (bc->cr) {
		bc->cr = 0;
		if (data[0] == '\n') {
			simple_line_end(bc);
			i = 1;
		} else {
			simple_content(bc, "\r", 1);
		}
	}
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t n;
		if (!nl) {
			n = len - i;
			if (data[len - 1] == '\r') {
				bc->cr = 1;
				n--;
			}
			if (n)
				simple_content(bc, data + i, n);
			return;
		}
		n = (size_t)(nl - (data + i));
		if (n && data[i + n - 1] == '\r')
			n--;
		if (n)
			simple_content(bc, data + i, n);
		simple_line_end(bc);
		i = (size_t)(nl - data) + 1;
	}
}

/* Byte classes for the relaxed loop, and 1 for bytes that are not text. */
static const unsigned char not_text[256] = {
	[' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1,
};
enum { C_TEXT, C_WSP, C_CR, C_LF };
static const unsigned char byte_class[256] = {
	[' '] = C_WSP, ['\t'] = C_WSP, ['\r'] = C_CR, ['\n'] = C_LF,
};

/* Whether p[0..n) is already relaxed-canonical inside a line: no tab, no
 * CR, no two spaces in a row. One pass, eight bytes at a time with exact
 * per-byte flags (no false positives): a memchr per condition cost more
 * than the scan itself on lines of mail length. */
static int line_plain(const unsigned char *p, size_t n)
{
	size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL, ones = 0x0101010101010101ULL;
	uint64_t prev_last = 0;
#define BYTES_EQ(v, c)                                                      \
	({                                                                  \
		uint64_t x_ = (v) ^ ((c) * ones);                           \
		~(((x_ & low7) + low7) | x_ | low7); /* 0x80 where equal */ \
	})
	for (; i + 8 <= n; i += 8) {
		uint64_t v, sp;
		memcpy(&v, p + i, 8);
		sp = BYTES_EQ(v, ' ');
		if (BYTES_EQ(v, '\t') | BYTES_EQ(v, '\r') | (sp & (sp >> 8)) | (prev_last & (sp >> 7) & 1))
			return 0;
		prev_last = sp >> 63; /* the last byte was a space */
	}
#undef BYTES_EQ
#endif
	for (; i < n; i++)
		if (p[i] == '\t' || p[i] == '\r' || (p[i] == ' ' && i > 0 && p[i - 1] == ' '))
			return 0;
	return 1;
}

/*
 * The length of the longest prefix of p[0..n), which starts at the start of
 * a line, made of whole lines that relaxed canonicalisation leaves as they
 * are: each non-empty, ending in CRLF, without tab, other CR, two spaces in
 * a row or a space before its end. 16 bytes at a time with SSE2 masks (one
 * bit per byte), the flags of the previous block carried across; only
 * whole blocks are looked at, the caller's line-by-line path does the rest.
 * 0 when nothing qualifies (or without SSE2).
 */
static size_t canonical_lines(const unsigned char *p, size_t n)
{
#if defined(__SSE2__)
	const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), tab = _mm_set1_epi8('\t'),
		      sp = _mm_set1_epi8(' ');
	uint32_t prev_sp = 0, prev_cr = 0, prev_lf = 1; /* p is a line start */
	size_t good = 0;
	for (size_t i = 0; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + i));
		uint32_t m_lf = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
		uint32_t m_cr = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr));
		uint32_t m_tab = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, tab));
		uint32_t m_sp = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, sp));
		uint32_t sp_before = (m_sp << 1) | prev_sp, cr_before = (m_cr << 1) | prev_cr;
		uint32_t starts = (m_lf << 1) | prev_lf;
		uint32_t bad = m_tab | (m_lf & ~cr_before) | (m_sp & sp_before) | (m_cr & sp_before) | (m_cr & starts);
		/* A CR must be followed by LF: within the block here; the last
		 * byte's CR by this block's first byte. */
		bad |= m_cr & ~(m_lf >> 1) & 0x7fff;
		bad |= prev_cr & ~m_lf & 1;
		bad &= 0xffff;
		if (bad) {
			uint32_t before = m_lf & ((1u << __builtin_ctz(bad)) - 1);
			if (before)
				good = i + (size_t)(31 - __builtin_clz(before)) + 1;
			return good;
		}
		if (m_lf)
			good = i + (size_t)(31 - __builtin_clz(m_lf)) + 1;
		prev_sp = (m_sp >> 15) & 1;
		prev_cr = (m_cr >> 15) & 1;
		prev_lf = (m_lf >> 15) & 1;
	}
	/* A CR ending the last block whose LF was not looked at ends no line
	 * counted in good (good stops at an LF), so nothing to undo. */
	return good;
#else
	(void)p;
	(void)n;
	return 0;
#endif
}

/* Whether the first line of [p, end) ends in CRLF (the block scan is
 * worth trying: mail as received over SMTP; text with bare LF line ends
 * goes line by line). */
static int crlf_first(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl && nl > p && nl[-1] == '\r';
}

/* 3.4.4: WSP runs become one SP, WSP at line ends goes, empty lines at the
 * end are ignored. The loop writes into bc->out directly: this is the hot
 * path of verifying large messages. */
static void relaxed_feed(struct msg_body_canon *bc, const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data, *end = p + len;
	const unsigned char *run = NULL; /* start of input passed on as it is */
	char *out = bc->out;
	size_t o = bc->olen;

	if (bc->cr) {
		bc->cr = 0;
		if (*p != '\n') {
			/* The CR was content. */
			if (!bc->in_line) {
				bc_release_empty(bc);
				bc->in_line = 1;
			}
			if (bc->wsp)
				bc_put(bc, " ", 1);
			bc->wsp = 0;
			bc_put(bc, "\r", 1);
			o = bc->olen;
		}
	}
	while (p < end) {
		unsigned cls = byte_class[*p];
		if (o > sizeof bc->out - 4) {
			bc->olen = o;
			bc_flush(bc);
			o = 0;
		}
		if (!bc->in_line && !bc->wsp && cls != C_LF && (size_t)(end - p) >= 16 && crlf_first(p, end)) {
			size_t whole = canonical_lines(p, (size_t)(end - p));
			if (whole) {
				/* Many lines already canonical: hashed straight
				 * from the input. */
				if (bc->empty_lines) {
					bc->olen = o;
					bc_release_empty(bc);
					o = bc->olen;
				}
				if (!run) {
					bc->olen = o;
					bc_flush(bc);
					o = 0;
					run = p;
				}
				p += whole;
				continue;
			}
		}
		if (!bc->in_line && !bc->wsp && cls != C_LF) {
			/* Fast path: a whole line in this chunk that relaxed leaves as
			 * it is (no tab, no CR inside, no run of spaces, no space at
			 * its end) is copied with CRLF in one go; memchr and memmem
			 * scan far faster than the byte loop below. */
			const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
			if (nl) {
				size_t m = (size_t)(nl - p);
				if (m && p[m - 1] == '\r')
					m--;
				if (m && p[m - 1] != ' ' && p[m - 1] != '\t' && m + 2 <= sizeof bc->out && line_plain(p, m)) {
					if (bc->empty_lines) {
						bc->olen = o;
						bc_release_empty(bc);
						o = bc->olen;
					}
					if (p[m] == '\r') {
						/* Already canonical, CRLF and all: hashed
						 * straight from the input, with the lines
						 * after it that are canonical too. */
						if (!run) {
							bc->olen = o;
							bc_flush(bc);
							o = 0;
							run = p;
						}
						p = nl + 1;
						continue;
					}
					if (run) {
						bc_direct(bc, run, p);
						run = NULL;
					}
					if (o + m + 2 > sizeof bc->out) {
						bc->olen = o;
						bc_flush(bc);
						o = 0;
					}
					memcpy(out + o, p, m);
					o += m;
					out[o++] = '\r';
					out[o++] = '\n';
					p = nl + 1;
					continue;
				}
			}
		}
		if (run) {
			bc_direct(bc, run, p);
			run = NULL;
		}
		if (cls == C_TEXT) {
			if (!bc->in_line) {
				if (bc->empty_lines) {
					bc->olen = o;
					bc_release_empty(bc);
					o = bc->olen;
				}
				bc->in_line = 1;
			}
			if (bc->wsp) {
				out[o++] = ' ';
				bc->wsp = 0;
			}
			out[o++] = (char)*p++;
			{
				/* The common case in one tight loop: text, and single
				 * spaces between text, which relaxed leaves as they are. */
				size_t room = sizeof bc->out - o, avail = (size_t)(end - p);
				const unsigned char *lim = p + (avail < room ? avail : room);
				/* Branch-free test: a text byte, or a SP before a
				 * text byte (mispredicted branches at every word
				 * boundary would cost more than the copying). */
				while (p + 1 < lim) {
					unsigned char ch = p[0];
					if (not_text[ch] & ((ch != ' ') | not_text[p[1]]))
						break;
					out[o++] = (char)ch;
					p++;
				}
			}
			continue;
		}
		if (cls == C_WSP) {
			bc->wsp = 1;
		} else if (cls == C_LF) {
			bc->wsp = 0;
			if (bc->in_line) {
				out[o++] = '\r';
				out[o++] = '\n';
				bc->in_line = 0;
			} else {
				bc->empty_lines++;
			}
		} else if (p + 1 == end) { /* CR at the end of the chunk */
			bc->cr = 1;
		} else if (p[1] != '\n') { /* a bare CR is content */
			if (!bc->in_line) {
				if (bc->empty_lines) {
					bc->olen = o;
					bc_release_empty(bc);
					o = bc->olen;
				}
				bc->in_line = 1;
			}
			if (bc->wsp)
				out[o++] = ' ';
			bc->wsp = 0;
			out[o++] = '\r';
		}
		/* else: CR LF, the LF ends the line next */
		p++;
	}
	if (run)
		bc_direct(bc, run, p);
	bc->olen = o;
}

void msg_body_canon_feed(struct msg_body_canon *bc, const char *data, size_t len)
{
	if (len == 0)
		return;
	if (bc->canon == MSG_CANON_SIMPLE)
		simple_feed(bc, data, len);
	else
		relaxed_feed(bc, data, len);
}

void msg_body_canon_end(struct msg_body_canon *bc)
{
	if (bc->cr) {
		/* A CR at the very end is content, not a line ending. */
		bc->cr = 0;
		if (!bc->in_line) {
			bc_release_empty(bc);
			bc->in_line = 1;
		}
		if (bc->canon == MSG_CANON_RELAXED && bc->wsp)
			bc_put(bc, " ", 1);
		bc_put(bc, "\r", 1);
	}
	/* A last line without a line ending gets one. */
	if (bc->in_line) {
		bc_put(bc, "\r\n", 2);
		bc->in_line = 0;
	}
	/* 3.4.3: an empty body is one CRLF in simple; 3.4.4 (and erratum
	 * 1384): it stays empty in relaxed. */
	if (bc->canon == MSG_CANON_SIMPLE && !bc->any && !bc->olen)
		bc_put(bc, "\r\n", 2);
	bc->empty_lines = 0;
	bc_flush(bc);
}

static void str_sink(void *arg, const char *data, size_t len)
{
	msg_buf_append(arg, data, len);
}

char *msg_body_canon_str(enum msg_canon c, const char *body, size_t len, size_t *outlen)
{
	struct msg_buf b = { 0 };
	struct msg_body_canon *bc = xmalloc(sizeof *bc);
	msg_body_canon_init(bc, c, str_sink, &b);
	msg_body_canon_feed(bc, body, len);
	msg_body_canon_end(bc);
	free(bc);
	msg_buf_append(&b, "", 0);
	if (outlen)
		*outlen = b.len;
	return b.data;
}

/* ---- hashing --------------------------------------------------------- */

static EVP_MD *md_sha1, *md_sha256;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_init(void)
{
	/* Fetched once: an implicit fetch on every EVP_DigestInit costs
	 * more than hashing a small message. */
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!md_sha1 || !md_sha256)
		abort();
}

static const EVP_MD *md_of(enum msg_hash alg)
{
	pthread_once(&md_once, md_init);
	return alg == MSG_HASH_SHA1 ? md_sha1 : md_sha256;
}

struct msg_bodyhash {
	enum msg_hash alg;
	int64_t limit;
	uint64_t hashed;
	EVP_MD_CTX *ctx;
	int done;
	struct msg_body_canon bc;
};

static void bodyhash_sink(void *arg, const char *data, size_t len)
{
	struct msg_bodyhash *h = arg;
	if (h->limit >= 0) {
		uint64_t room = h->hashed < (uint64_t)h->limit ? (uint64_t)h->limit - h->hashed : 0;
		if (len > room)
			len = (size_t)room;
	}
	if (len) {
		EVP_DigestUpdate(h->ctx, data, len);
		h->hashed += len;
	}
}

struct msg_bodyhash *msg_bodyhash_new(enum msg_canon c, enum msg_hash alg, int64_t limit)
{
	struct msg_bodyhash *h = xmalloc(sizeof *h);
	h->alg = alg;
	h->limit = limit;
	h->hashed = 0;
	h->done = 0;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, md_of(alg), NULL))
		abort();
	msg_body_canon_init(&h->bc, c, bodyhash_sink, h);
	return h;
}

void msg_bodyhash_feed(struct msg_bodyhash *h, const char *data, size_t len)
{
	msg_body_canon_feed(&h->bc, data, len);
}

size_t msg_bodyhash_final(struct msg_bodyhash *h, unsigned char *out, uint64_t *body_len)
{
	unsigned int n = 0;
	if (h->done)
		abort(); /* a bug: final twice */
	h->done = 1;
	msg_body_canon_end(&h->bc);
	EVP_DigestFinal_ex(h->ctx, out, &n);
	if (body_len)
		*body_len = h->bc.out_len;
	return n;
}

enum msg_canon msg_bodyhash_canon(const struct msg_bodyhash *h)
{
	return h->bc.canon;
}

enum msg_hash msg_bodyhash_alg(const struct msg_bodyhash *h)
{
	return h->alg;
}

int64_t msg_bodyhash_limit(const struct msg_bodyhash *h)
{
	return h->limit;
}

void msg_bodyhash_free(struct msg_bodyhash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

size_t msg_digest(enum msg_hash alg, const void *data, size_t len, unsigned char *out)
{
	unsigned int n = 0;
	if (!EVP_Digest(data, len, out, &n, md_of(alg), NULL))
		abort();
	return n;
}

/* ---- base64 ------------------------------------------------------------ */

long msg_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize)
{
	static signed char val[256];
	static int ready;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0, nchars = 0;

	if (!ready) {
		/* Benign race: every thread writes the same values. */
		memset(val, -1, sizeof val);
		for (int i = 0; i < 26; i++) {
			val['A' + i] = (signed char)i;
			val['a' + i] = (signed char)(26 + i);
		}
		for (int i = 0; i < 10; i++)
			val['0' + i] = (signed char)(52 + i);
		val['+'] = 62;
		val['/'] = 63;
		ready = 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (bits == 0 && !pad && i + 4 <= len && o + 3 <= outsize) {
			/* Four plain characters at a time: the common case. */
			int a = val[c], b = val[(unsigned char)in[i + 1]], d = val[(unsigned char)in[i + 2]],
			    e = val[(unsigned char)in[i + 3]];
			if ((a | b | d | e) >= 0) {
				uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)d << 6 | (uint32_t)e;
				out[o++] = (unsigned char)(w >> 16);
				out[o++] = (unsigned char)(w >> 8);
				out[o++] = (unsigned char)w;
				nchars += 4;
				i += 3;
				continue;
			}
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			if (++pad > 2)
				return -1;
			continue;
		}
		if (pad || val[c] < 0)
			return -1;
		nchars++;
		acc = (acc << 6) | (uint32_t)val[c];
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outsize)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (nchars % 4 == 1)
		return -1;
	if (pad && (nchars + (size_t)pad) % 4 != 0)
		return -1;
	return (long)o;
}

char *msg_base64_encode(const unsigned char *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}
