/*
 * data: see data.h. States:
 *   DS_BOL       at the start of a line that followed a real CR LF
 *   DS_BOL_WEAK  at the start of a line that followed a bare CR/LF
 *                (normalise mode); a dot here is ordinary text
 *   DS_TEXT      inside a line
 *   DS_CR        after a CR, waiting to see whether LF follows
 *   DS_DOT       after a dot at DS_BOL
 *   DS_DOT_CR    after "." CR at DS_BOL
 *   DS_END       the end-of-data line was read
 */
#include "data.h"

#include <string.h>

void data_init(struct data_decoder *d, int dot_mode, int normalise, uint64_t max_line, uint64_t max_size)
{
	memset(d, 0, sizeof *d);
	d->state = DS_BOL;
	d->dot_mode = dot_mode;
	d->normalise = normalise;
	d->max_line = max_line;
	d->max_size = max_size;
}

static void emit(struct data_decoder *d, char c, char *out, size_t *o)
{
	d->out_len++;
	if (d->out_len > d->max_size) {
		d->errors |= DATA_ERR_SIZE;
		return;
	}
	out[(*o)++] = c;
}

/* A line ends: count it, emit LF. */
static void end_line(struct data_decoder *d, char *out, size_t *o, int strong)
{
	emit(d, '\n', out, o);
	d->line_len = 0;
	d->state = strong ? DS_BOL : DS_BOL_WEAK;
}

static void bare(struct data_decoder *d, char *out, size_t *o)
{
	if (d->normalise)
		end_line(d, out, o, 0);
	else
		d->errors |= DATA_ERR_BARE, d->state = DS_BOL_WEAK;
}

/* An ordinary byte inside a line. */
static void text(struct data_decoder *d, unsigned char c, char *out, size_t *o)
{
	if (c == '\r') {
		d->state = DS_CR;
		return;
	}
	if (c == '\n') {
		bare(d, out, o);
		return;
	}
	if (c == 0)
		d->errors |= DATA_ERR_NUL;
	if (c >= 0x80)
		d->eightbit = 1;
	/* +2: the CR LF that will end this line counts toward the bound. */
	if (++d->line_len + 2 > d->max_line)
		d->errors |= DATA_ERR_LINE;
	emit(d, (char)c, out, o);
	d->state = DS_TEXT;
}

size_t data_feed(struct data_decoder *d, const char *in, size_t n, char *out, size_t outsize, size_t *outlen)
{
	size_t i, o = 0;
	(void)outsize;

	for (i = 0; i < n && d->state != DS_END; i++) {
		unsigned char c = (unsigned char)in[i];
		switch (d->state) {
		case DS_BOL:
			if (c == '.' && d->dot_mode) {
				d->state = DS_DOT;
				break;
			}
			text(d, c, out, &o);
			break;
		case DS_BOL_WEAK:
		case DS_TEXT:
			text(d, c, out, &o);
			break;
		case DS_CR:
			if (c == '\n') {
				end_line(d, out, &o, 1);
			} else {
				bare(d, out, &o);
				text(d, c, out, &o);
			}
			break;
		case DS_DOT:
			if (c == '\r') {
				d->state = DS_DOT_CR;
			} else if (c == '\n') {
				/* "." then a bare LF: not the end, and not a stuffed dot
				 * either; keep the dot as text, like "." CR x below. */
				d->line_len++;
				emit(d, '.', out, &o);
				bare(d, out, &o);
			} else {
				/* A stuffed dot: drop it, the rest is text (RFC 5321 4.5.2).
				 * A bare LF right after it is still a bare LF. */
				d->line_len++;
				text(d, c, out, &o);
			}
			break;
		case DS_DOT_CR:
			if (c == '\n') {
				d->state = DS_END;
			} else {
				/* "." CR x: a bare CR inside a line that began with a dot. */
				d->line_len++;
				emit(d, '.', out, &o);
				bare(d, out, &o);
				text(d, c, out, &o);
			}
			break;
		case DS_END:
			break;
		}
	}
	*outlen = o;
	return i;
}

void data_finish(struct data_decoder *d, char *out, size_t *outlen)
{
	size_t o = 0;
	if (d->state == DS_CR)
		bare(d, out, &o);
	*outlen = o;
}
