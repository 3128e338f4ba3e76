/*
 * pacing_ledger: the pacing counters rebuilt from the delivery ledger, so
 * that a restart (or `postern routes`, another process) sees what the
 * daemon sent. Counts one per recipient of each direct attempt that
 * reached a receiver (it has an MX), as the daemon counts them.
 */
#include "deliver/pacing.h"

#include <string.h>

#include "store/store.h"

struct load {
	struct pacing *p;
	const struct pacing_conf *c;
	int64_t first;
};

static int is_attempt(const struct store_delivery *d)
{
	return d->route && !strcmp(d->route, "direct") && d->mx && d->domain;
}

static int first_direct(void *arg, const struct store_delivery *d)
{
	struct load *l = arg;
	if (!is_attempt(d))
		return 0;
	l->first = d->time / 1000;
	return 1;
}

static int count(void *arg, const struct store_delivery *d)
{
	struct load *l = arg;
	if (is_attempt(d))
		pacing_record(l->p, l->c, pacing_key(d->provider, d->domain), 1, d->time);
	return 0;
}

void pacing_load(struct pacing *p, const struct pacing_conf *c, struct store *st, int64_t now_ms)
{
	struct load l = { .p = p, .c = c };
	int64_t span = (int64_t)c->window_ms;
	if (!c->warm_up_start && store_ledger_list(st, 0, first_direct, &l) == STORE_OK && l.first)
		pacing_set_start(p, l.first);
	if (c->nwarm_up && span < PACING_DAY_S * 1000)
		span = PACING_DAY_S * 1000;
	store_ledger_list(st, now_ms - span, count, &l);
}
