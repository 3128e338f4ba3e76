/*
 * worker: a small pool of threads for work that may block on the disk
 * (fsync, Maildir writes), so the event loop never waits.
 *
 * A job is two functions: work() runs on a pool thread and must not touch
 * any event-loop state; done() runs afterwards on the event-loop thread and
 * may. The job's arg is owned by the job until done() returns; done() frees
 * it. Jobs run in no particular order.
 */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

struct event_base;
struct worker_pool;

typedef void (*worker_fn)(void *arg);

/* Starts nthreads threads. Returns NULL (and logs) on failure. */
struct worker_pool *worker_pool_new(struct event_base *base, int nthreads);
/* Queues a job. Never fails (the queue is unbounded; callers bound the
 * number of jobs by bounding sessions). */
void worker_submit(struct worker_pool *pool, worker_fn work, worker_fn done, void *arg);
/* Jobs queued or running whose done() has not yet run. */
int worker_pending(const struct worker_pool *pool);
/* Waits for every queued job, runs their done(), stops the threads. */
void worker_pool_free(struct worker_pool *pool);

#endif
