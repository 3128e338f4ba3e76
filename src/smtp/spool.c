/*
 * spool: see spool.h.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

struct spool *spool_new(const char *dir, size_t head_max)
{
	struct spool *sp = xcalloc(1, sizeof *sp);
	sp->fd = -1;
	sp->dir = dir;
	sp->head_max = head_max;
	sp->at_line_start = 1;
	sp->head = xmalloc(1);
	sp->head[0] = '\0';
	return sp;
}

/* Takes the header-block part of data; returns how many bytes it took. */
static size_t take_head(struct spool *sp, const char *data, size_t n)
{
	size_t i;
	for (i = 0; i < n && !sp->head_done; i++) {
		if (data[i] == '\n' && sp->at_line_start)
			sp->head_done = 1;
		sp->at_line_start = data[i] == '\n';
	}
	if (sp->head_too_big || sp->head_len + i > sp->head_max) {
		sp->head_too_big = 1;
		return i;
	}
	if (sp->head_len + i + 1 > sp->head_cap) {
		size_t cap = sp->head_cap ? sp->head_cap : 4096;
		while (cap < sp->head_len + i + 1)
			cap *= 2;
		sp->head = xrealloc(sp->head, cap);
		sp->head_cap = cap;
	}
	memcpy(sp->head + sp->head_len, data, i);
	sp->head_len += i;
	sp->head[sp->head_len] = '\0';
	return i;
}

void spool_free(struct spool *sp)
{
	if (!sp)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->head);
	free(sp->mem);
	free(sp);
}

static int spill(struct spool *sp)
{
	if (sp->fd < 0) {
		sp->fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (sp->fd < 0) {
			char path[4096];
			snprintf(path, sizeof path, "%s/spool.XXXXXX", sp->dir);
			sp->fd = mkostemp(path, O_CLOEXEC);
			if (sp->fd >= 0)
				unlink(path);
		}
		if (sp->fd < 0) {
			log_error(NULL, "event=spool_error dir=%s error=\"%s\"", sp->dir, strerror(errno));
			return -1;
		}
	}
	if (write_all(sp->fd, sp->mem, sp->len) < 0) {
		log_error(NULL, "event=spool_error dir=%s error=\"%s\"", sp->dir, strerror(errno));
		return -1;
	}
	sp->file_len += (off_t)sp->len;
	sp->len = 0;
	return 0;
}

void spool_append(struct spool *sp, const char *data, size_t n)
{
	if (!sp->head_done) {
		size_t took = take_head(sp, data, n);
		data += took;
		n -= took;
	}
	if (sp->failed || n == 0)
		return;
	if (sp->len + n > SPOOL_MEM_MAX && sp->len > 0) {
		if (spill(sp) < 0) {
			sp->failed = 1;
			return;
		}
	}
	if (sp->len + n > sp->cap) {
		size_t cap = sp->cap ? sp->cap : 16384;
		while (cap < sp->len + n)
			cap *= 2;
		sp->mem = xrealloc(sp->mem, cap);
		sp->cap = cap;
	}
	memcpy(sp->mem + sp->len, data, n);
	sp->len += n;
}

size_t spool_size(const struct spool *sp)
{
	return sp->head_len + (size_t)sp->file_len + sp->len;
}
