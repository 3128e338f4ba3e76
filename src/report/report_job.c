/*
 * report_job: see report_job.h. work() runs on a pool thread and touches
 * only the job: it reads the message back from the spool (bounded by the
 * report limits), parses it, and stores it through its own store handle.
 * done() runs on the loop thread: it logs and frees.
 */
#include "report/report_job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/worker.h"
#include "report/report.h"
#include "smtp/spool.h"
#include "store/store.h"

struct report_job {
	char sid[24];
	char qid[40];
	char *data_dir;
	struct report_limits lim;
	char *head;
	size_t head_len;
	struct spool *sp;

	/* the outcome, for done() */
	int malformed;
	enum report_save_rc saved;
	char why[300];
	char kind[8], org[256], id[256];
	size_t records;
};

struct report_job *report_job_new(const struct config *cfg, const char *sid, char *const *rcpts, size_t nrcpts)
{
	struct report_job *job;
	int match = 0;

	for (size_t i = 0; i < nrcpts && !match; i++)
		for (size_t k = 0; k < cfg->nreport_addresses && !match; k++)
			match = !strcasecmp(rcpts[i], cfg->report_addresses[k]);
	if (!match)
		return NULL;
	job = xcalloc(1, sizeof *job);
	str_copy(job->sid, sid ? sid : "", sizeof job->sid);
	job->data_dir = xstrdup(cfg->data_dir);
	job->lim.max_size = (size_t)cfg->reports_max_size;
	job->lim.max_records = (size_t)cfg->reports_max_records;
	return job;
}

void report_job_free(struct report_job *job)
{
	if (!job)
		return;
	free(job->data_dir);
	free(job->head);
	spool_free(job->sp);
	free(job);
}

/* The whole message, or NULL with why set. */
static char *read_message(struct report_job *job, size_t *len)
{
	size_t flen = (size_t)job->sp->file_len, n = job->head_len + flen + job->sp->len, off = 0;
	char *buf;

	if (n > REPORT_MAX_INPUT(&job->lim)) {
		snprintf(job->why, sizeof job->why, "the message is %zu bytes, more than a report of [reports] max_size can be",
			 n);
		return NULL;
	}
	buf = xmalloc(n + 1);
	memcpy(buf, job->head, job->head_len);
	off = job->head_len;
	while (flen > 0) {
		ssize_t r = pread(job->sp->fd, buf + off, flen, (off_t)(off - job->head_len));
		if (r <= 0) {
			snprintf(job->why, sizeof job->why, "cannot read the spooled message: %s",
				 r < 0 ? strerror(errno) : "short file");
			free(buf);
			return NULL;
		}
		off += (size_t)r;
		flen -= (size_t)r;
	}
	memcpy(buf + off, job->sp->mem, job->sp->len);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void job_work(void *arg)
{
	struct report_job *job = arg;
	struct report *r;
	struct store *st;
	size_t len;
	char *msg = read_message(job, &len), err[512];

	job->malformed = 1;
	if (!msg)
		return;
	r = report_parse(msg, len, &job->lim, job->why, sizeof job->why);
	free(msg);
	if (!r)
		return;
	job->malformed = 0;
	str_copy(job->kind, report_kind_name(r->kind), sizeof job->kind);
	str_copy(job->org, report_org(r), sizeof job->org);
	str_copy(job->id, report_id(r), sizeof job->id);
	job->records = report_records(r);
	st = store_open(job->data_dir, err, sizeof err);
	if (!st) {
		job->saved = REPORT_SAVE_FAILED;
		str_copy(job->why, err, sizeof job->why);
	} else {
		job->saved = report_save(st, r);
		if (job->saved == REPORT_SAVE_FAILED)
			snprintf(job->why, sizeof job->why, "the store failed (see the store's log line)");
		store_close(st);
	}
	report_free(r);
}

static void job_done(void *arg)
{
	struct report_job *job = arg;
	char why[400], org[300], id[300];

	if (job->malformed) {
		log_warn(job->sid, "event=report id=%s result=malformed reason=%s", job->qid,
			 log_value(why, sizeof why, job->why, strlen(job->why)));
	} else {
		log_value(org, sizeof org, job->org, strlen(job->org));
		log_value(id, sizeof id, job->id, strlen(job->id));
		if (job->saved == REPORT_SAVE_FAILED)
			log_error(job->sid, "event=report id=%s result=failed kind=%s org=%s report_id=%s reason=%s", job->qid,
				  job->kind, org, id, log_value(why, sizeof why, job->why, strlen(job->why)));
		else
			log_info(job->sid, "event=report id=%s result=%s kind=%s org=%s report_id=%s records=%zu", job->qid,
				 report_save_name(job->saved), job->kind, org, id, job->records);
	}
	report_job_free(job);
}

void report_job_submit(struct report_job *job, struct worker_pool *pool, const char *qid, char *head,
		       size_t head_len, struct spool *sp)
{
	str_copy(job->qid, qid, sizeof job->qid);
	job->head = head;
	job->head_len = head_len;
	job->sp = sp;
	worker_submit(pool, job_work, job_done, job);
}
