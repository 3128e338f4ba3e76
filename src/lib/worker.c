/*
 * worker: see worker.h. Pool threads take jobs from a mutex-protected list;
 * finished jobs go to a second list and the event loop is woken through an
 * eventfd, whose read event runs each done() on the loop thread.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

struct job {
	worker_fn work, done;
	void *arg;
	struct job *next;
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo_head, *todo_tail;
	struct job *finished;
	pthread_t *threads;
	int nthreads;
	int stopping;
	int pending; /* loop thread only */
	int efd;
	struct event *ev;
};

static void *worker_main(void *p)
{
	struct worker_pool *pool = p;
	for (;;) {
		struct job *j;
		uint64_t one = 1;

		pthread_mutex_lock(&pool->lock);
		while (!pool->todo_head && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (!pool->todo_head) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		j = pool->todo_head;
		pool->todo_head = j->next;
		if (!pool->todo_head)
			pool->todo_tail = NULL;
		pthread_mutex_unlock(&pool->lock);

		j->work(j->arg);

		pthread_mutex_lock(&pool->lock);
		j->next = pool->finished;
		pool->finished = j;
		pthread_mutex_unlock(&pool->lock);
		(void)!write(pool->efd, &one, sizeof one);
	}
}

static void run_finished(struct worker_pool *pool)
{
	struct job *list, *next;
	pthread_mutex_lock(&pool->lock);
	list = pool->finished;
	pool->finished = NULL;
	pthread_mutex_unlock(&pool->lock);
	for (; list; list = next) {
		next = list->next;
		pool->pending--;
		list->done(list->arg);
		free(list);
	}
}

static void on_wake(evutil_socket_t fd, short what, void *p)
{
	uint64_t n;
	(void)what;
	(void)!read(fd, &n, sizeof n);
	run_finished(p);
}

struct worker_pool *worker_pool_new(struct event_base *base, int nthreads)
{
	struct worker_pool *pool = xcalloc(1, sizeof *pool);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0) {
		log_error(NULL, "event=worker_init error=\"eventfd: %s\"", strerror(errno));
		free(pool);
		return NULL;
	}
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST, on_wake, pool);
	event_add(pool->ev, NULL);
	pool->threads = xcalloc((size_t)nthreads, sizeof *pool->threads);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0)
			break;
		pool->nthreads++;
	}
	if (pool->nthreads == 0) {
		log_error(NULL, "event=worker_init error=\"cannot start threads\"");
		worker_pool_free(pool);
		return NULL;
	}
	return pool;
}

void worker_submit(struct worker_pool *pool, worker_fn work, worker_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->work = work;
	j->done = done;
	j->arg = arg;
	pool->pending++;
	pthread_mutex_lock(&pool->lock);
	if (pool->todo_tail)
		pool->todo_tail->next = j;
	else
		pool->todo_head = j;
	pool->todo_tail = j;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

int worker_pending(const struct worker_pool *pool)
{
	return pool->pending;
}

void worker_pool_free(struct worker_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = 1;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	run_finished(pool);
	if (pool->ev)
		event_free(pool->ev);
	close(pool->efd);
	free(pool->threads);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool);
}
