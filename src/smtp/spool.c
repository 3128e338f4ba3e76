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

struct spool *spool_new(const char *dir)
{
	struct spool *sp = xcalloc(1, sizeof *sp);
	sp->fd = -1;
	sp->dir = dir;
	return sp;
}

void spool_free(struct spool *sp)
{
	if (!sp)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
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
	return (size_t)sp->file_len + sp->len;
}
