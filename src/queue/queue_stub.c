/*
 * queue_stub: TEMPORARY stand-in for the outbound queue (queue.c), so the
 * submission and forwarding code of the `submit` branch links and its tests
 * run. THE LEAD DELETES THIS FILE AT MERGE, when queue.c arrives.
 *
 * queue_put() writes the message bytes to DATA_DIR/queue-stub/QID.eml and
 * the envelope to QID.json ({"mail_from": ..., "rcpts": [...], "origin":
 * ...}), both fsync'd, the .json last (a reader takes a message once its
 * .json exists). Nothing is ever sent. The other functions do nothing;
 * queue_new() returns a token so the server knows a queue exists.
 */
#include "queue/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/util.h"

struct queue {
	int unused;
};

static int write_file(const char *path, const struct maildir_msg *msg, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	char buf[65536];
	if (fd < 0)
		return -1;
	if (text) {
		if (write_all(fd, text, strlen(text)) < 0)
			goto fail;
	} else {
		off_t off = 0;
		if (write_all(fd, msg->head, msg->head_len) < 0)
			goto fail;
		while (off < msg->file_len) {
			size_t want = (size_t)(msg->file_len - off) < sizeof buf ? (size_t)(msg->file_len - off) : sizeof buf;
			ssize_t n = pread(msg->file_fd, buf, want, off);
			if (n <= 0) {
				if (n == 0)
					errno = EIO;
				goto fail;
			}
			if (write_all(fd, buf, (size_t)n) < 0)
				goto fail;
			off += n;
		}
		if (msg->tail_len && write_all(fd, msg->tail, msg->tail_len) < 0)
			goto fail;
	}
	if (fsync(fd) < 0)
		goto fail;
	return close(fd);
fail:
	close(fd);
	unlink(path);
	return -1;
}

int queue_put(const char *data_dir, const struct queue_env *env, const struct maildir_msg *msg, char *qid,
	      size_t qidsize)
{
	char id[17], *dir = xasprintf("%s/queue-stub", data_dir), *eml = NULL, *json = NULL, *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc = -1;

	random_hex(id, 16);
	if (mkdir_p(dir, 0700) < 0)
		goto out;
	eml = xasprintf("%s/%s.eml", dir, id);
	json = xasprintf("%s/%s.json", dir, id);
	f = open_memstream(&text, &len);
	fputs("{\"mail_from\": ", f);
	json_write_string(f, env->mail_from);
	fputs(", \"rcpts\": [", f);
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (i)
			fputs(", ", f);
		json_write_string(f, env->rcpts[i]);
	}
	fputs("], \"origin\": ", f);
	json_write_string(f, env->origin);
	fputs("}\n", f);
	fclose(f);
	if (write_file(eml, msg, NULL) < 0)
		goto out;
	if (write_file(json, NULL, text) < 0) {
		unlink(eml);
		goto out;
	}
	fsync_dir(dir);
	str_copy(qid, id, qidsize);
	rc = 0;
out:
	free(text);
	free(eml);
	free(json);
	free(dir);
	return rc;
}

struct queue *queue_new(struct event_base *base, const struct config *cfg, struct store *store, struct dns *dns)
{
	(void)base;
	(void)cfg;
	(void)store;
	(void)dns;
	return xcalloc(1, sizeof(struct queue));
}

void queue_set_config(struct queue *q, const struct config *cfg)
{
	(void)q;
	(void)cfg;
}

void queue_kick(struct queue *q)
{
	(void)q;
}

void queue_shutdown(struct queue *q)
{
	(void)q;
}

void queue_free(struct queue *q)
{
	free(q);
}
