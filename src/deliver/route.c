/*
 * route: see route.h. Pure.
 */
#include "deliver/route.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

/* Whether host is suffix or a name below it. */
static int under(const char *host, const char *suffix)
{
	size_t hl = strlen(host), sl = strlen(suffix);
	if (hl == sl)
		return !strcasecmp(host, suffix);
	return hl > sl && host[hl - sl - 1] == '.' && !strcasecmp(host + hl - sl, suffix);
}

const char *route_provider(const char *mx)
{
	static const struct {
		const char *suffix, *provider;
	} known[] = {
		{ "google.com", "gmail" },       { "googlemail.com", "gmail" }, { "gmail.com", "gmail" },
		{ "outlook.com", "outlook" },    { "hotmail.com", "outlook" },  { "microsoft.com", "outlook" },
		{ "yahoodns.net", "yahoo" },     { "yahoo.com", "yahoo" },      { "aol.com", "yahoo" },
		{ "icloud.com", "icloud" },      { "me.com", "icloud" },        { "mac.com", "icloud" },
		{ "apple.com", "icloud" },
	};
	if (!mx)
		return "other";
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (under(mx, known[i].suffix))
			return known[i].provider;
	return "other";
}

int route_mx_match(const char *pattern, const char *host)
{
	if (!strncmp(pattern, "*.", 2))
		pattern += 2;
	else if (*pattern == '.')
		pattern++;
	else
		return !strcasecmp(pattern, host);
	{
		size_t hl = strlen(host), pl = strlen(pattern);
		return hl > pl && host[hl - pl - 1] == '.' && !strcasecmp(host + hl - pl, pattern);
	}
}

int route_domain_listed(char *const *list, size_t n, const char *domain)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], "*") || under(domain, list[i]))
			return 1;
	return 0;
}

static int by_pref(const void *a, const void *b)
{
	const struct route_mx *x = a, *y = b;
	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

void route_mx_order(struct route_mx *mx, size_t n, uint32_t (*rnd)(void))
{
	size_t i = 0;
	qsort(mx, n, sizeof *mx, by_pref);
	while (i < n) {
		size_t j = i;
		while (j < n && mx[j].pref == mx[i].pref)
			j++;
		/* Fisher-Yates over [i, j) */
		for (size_t k = j - 1; k > i; k--) {
			size_t r = i + rnd() % (k - i + 1);
			struct route_mx t = mx[k];
			mx[k] = mx[r];
			mx[r] = t;
		}
		i = j;
	}
}

int route_is_null_mx(const struct route_mx *mx, size_t n)
{
	return n == 1 && mx[0].pref == 0 && (!mx[0].host[0] || !strcmp(mx[0].host, "."));
}

enum route_kind route_by_mx(const struct config *cfg, const struct route_mx *mx, size_t n, const char **why)
{
	for (size_t p = 0; p < cfg->nrelay_mx_patterns; p++)
		for (size_t i = 0; i < n; i++)
			if (route_mx_match(cfg->relay_mx_patterns[p], mx[i].host)) {
				*why = cfg->relay_mx_patterns[p];
				return ROUTE_RELAY;
			}
	return ROUTE_DIRECT;
}
