/*
 * spool: the message being received, before delivery.
 *
 * The header block (up to and including the empty line that ends it) is
 * kept apart, in memory, bounded by head_max: it is what the checks read and
 * what delivery may rewrite (a forged Authentication-Results is dropped).
 * The body follows: small bodies stay in memory; past SPOOL_MEM_MAX the bytes
 * go to an anonymous file (O_TMPFILE) in the spool directory, which the
 * kernel removes by itself if we crash. Nothing here is durable: durability
 * comes from the Maildir write that follows (maildir.c), and only then is
 * 250 sent. The body is always: file part [0, file_len) then mem[0, len).
 */
#ifndef POSTERN_SMTP_SPOOL_H
#define POSTERN_SMTP_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#define SPOOL_MEM_MAX (256 * 1024)

struct spool {
	char *head; /* the header block, NUL-terminated */
	size_t head_len, head_cap, head_max;
	int head_done;     /* the empty line was seen */
	int head_too_big;  /* the header block passed head_max */
	int at_line_start; /* the previous byte ended a line (or none yet) */

	char *mem;
	size_t len, cap;
	int fd;
	off_t file_len;
	const char *dir; /* borrowed */
	int failed;      /* a write to the file failed: the message cannot be kept */
};

struct spool *spool_new(const char *dir, size_t head_max);
void spool_free(struct spool *sp);
/* Appends n bytes; on a file error sets ->failed (and logs) and drops data. */
void spool_append(struct spool *sp, const char *data, size_t n);
/* Total bytes held, header block included. */
size_t spool_size(const struct spool *sp);

#endif
