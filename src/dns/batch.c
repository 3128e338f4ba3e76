/*
 * batch: see batch.h. The questions in flight are kept in an array of small
 * records, each the arg of its dns_query(); an answered one is recycled.
 * A zero-delay timer reports "done" for a wait that had nothing to wait for,
 * so done never runs inside dns_batch_wait().
 */
#include "dns/batch.h"

#include <stdlib.h>

#include <event2/event.h>

#include "lib/util.h"

struct batch_query {
	struct dns_batch *b;
	size_t tag;
	uint64_t qid; /* 0: free slot */
};

struct dns_batch {
	struct dns *dns;
	dns_batch_answer_cb answer;
	dns_batch_done_cb done;
	void *owner;
	struct batch_query **q;
	size_t nq;
	size_t outstanding;
	int waiting;
	struct event *later;
};

static void finish(struct dns_batch *b)
{
	b->waiting = 0;
	b->done(b->owner); /* may free b */
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct dns_batch *b = arg;
	(void)fd;
	(void)what;
	if (b->waiting && b->outstanding == 0)
		finish(b);
}

static void on_answer(void *arg, const struct dns_result *res)
{
	struct batch_query *q = arg;
	struct dns_batch *b = q->b;
	q->qid = 0;
	b->outstanding--;
	b->answer(b->owner, q->tag, res);
	if (b->waiting && b->outstanding == 0)
		finish(b);
}

struct dns_batch *dns_batch_new(struct dns *dns, dns_batch_answer_cb answer, dns_batch_done_cb done, void *owner)
{
	struct dns_batch *b = xcalloc(1, sizeof *b);
	b->dns = dns;
	b->answer = answer;
	b->done = done;
	b->owner = owner;
	b->later = evtimer_new(dns_event_base(dns), on_later, b);
	return b;
}

int dns_batch_cached(struct dns_batch *b, const char *name, uint16_t type, size_t tag)
{
	struct dns_result res;
	if (!dns_cached(b->dns, name, type, &res))
		return 0;
	b->answer(b->owner, tag, &res);
	return 1;
}

void dns_batch_ask(struct dns_batch *b, const char *name, uint16_t type, size_t tag)
{
	struct batch_query *q = NULL;
	for (size_t i = 0; i < b->nq && !q; i++)
		if (!b->q[i]->qid)
			q = b->q[i];
	if (!q) {
		q = xcalloc(1, sizeof *q);
		q->b = b;
		b->q = xrealloc(b->q, (b->nq + 1) * sizeof *b->q);
		b->q[b->nq++] = q;
	}
	q->tag = tag;
	b->outstanding++;
	/* dns_query never answers inside the call, so q->qid is set first. */
	q->qid = dns_query(b->dns, name, type, on_answer, q);
}

size_t dns_batch_outstanding(const struct dns_batch *b)
{
	return b->outstanding;
}

void dns_batch_wait(struct dns_batch *b)
{
	struct timeval zero = { 0, 0 };
	b->waiting = 1;
	if (b->outstanding == 0)
		evtimer_add(b->later, &zero);
}

void dns_batch_free(struct dns_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nq; i++) {
		if (b->q[i]->qid)
			dns_cancel(b->dns, b->q[i]->qid);
		free(b->q[i]);
	}
	free(b->q);
	event_free(b->later);
	free(b);
}
