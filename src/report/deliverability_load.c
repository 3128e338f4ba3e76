/*
 * deliverability_load: reads the store's aggregates into a struct deliv
 * (see deliverability.h). Every query is bounded (GROUP BY in SQL, LIMIT),
 * so the dashboard may call this on the event loop.
 */
#include "report/deliverability.h"

#include <stdlib.h>

#include "lib/util.h"
#include "store/store.h"

struct load {
	struct deliv *d;
	const char *const *domains;
	size_t ndomains;
};

static int on_day(void *arg, const struct store_ledger_day *r)
{
	struct load *l = arg;
	deliv_add_ledger(l->d, r->provider, r->day, r->outcome, r->count, r->routes);
	return 0;
}

static int on_reason(void *arg, const struct store_ledger_reason *r)
{
	struct load *l = arg;
	deliv_add_reason(l->d, r->provider, r->outcome, r->status, r->code, r->count, r->reply);
	return 0;
}

static int on_attempt(void *arg, const struct store_delivery *r)
{
	struct load *l = arg;
	deliv_add_attempt(l->d, r->provider, r->outcome, r->status, r->reply);
	return 0;
}

static int on_report(void *arg, const struct store_dmarc_day *r)
{
	struct load *l = arg;
	deliv_add_report(l->d, r->org_name, r->email, r->begin, r->end, r->header_from, r->messages, r->dmarc_pass,
			 l->domains, l->ndomains);
	return 0;
}

int deliv_load(struct deliv *d, struct store *st, const char *const *domains, size_t ndomains)
{
	struct load l = { d, domains, ndomains };
	int64_t since = d->day0 * 1000;
	int rc = 0;

	if (store_ledger_daily(st, since, on_day, &l) != STORE_OK)
		rc = -1;
	if (store_ledger_reasons(st, since, DELIV_LOAD_REASONS, on_reason, &l) != STORE_OK)
		rc = -1;
	for (int i = 0; i < DELIV_NPROVIDERS; i++)
		if (store_ledger_recent(st, deliv_provider_name(i), since, DELIV_LOAD_ATTEMPTS, on_attempt, &l) !=
		    STORE_OK)
			rc = -1;
	/* reports whose period ends in the window (one may begin the day before) */
	if (store_dmarc_daily(st, d->day0, DELIV_LOAD_REPORT_ROWS, on_report, &l) != STORE_OK)
		rc = -1;
	deliv_finish(d);
	return rc;
}
