/*
 * report_job: the daemon's report hook. When the inbound server has
 * delivered a message to a [reports] address (dmarc_address or
 * tls_address), the message is parsed and stored on a worker thread, never
 * on the event loop, and the outcome is logged on the loop:
 *
 *   event=report id=QID result=stored kind=dmarc org=... report_id=... records=N
 *   event=report id=QID result=duplicate ...
 *   event=report id=QID result=malformed reason="..."
 *
 * The message stays in the mailbox whatever happens (a malformed report is
 * kept as a message). The job copies what it needs from the configuration,
 * so a reload while it runs changes nothing, and opens its own connection
 * to the store (SQLite in WAL mode serves both).
 */
#ifndef POSTERN_REPORT_JOB_H
#define POSTERN_REPORT_JOB_H

#include <stddef.h>

#include "config.h"

struct report_job;
struct spool;
struct worker_pool;

/* A job when one of rcpts (any case) is a report address, else NULL. */
struct report_job *report_job_new(const struct config *cfg, const char *sid, char *const *rcpts, size_t nrcpts);
/* Runs the job on pool over the delivered message: head (head_len bytes)
 * then the spool's body. Takes ownership of job, head and sp. */
void report_job_submit(struct report_job *job, struct worker_pool *pool, const char *qid, char *head,
		       size_t head_len, struct spool *sp);
void report_job_free(struct report_job *job);

#endif
