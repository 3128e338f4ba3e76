/*
 * pacing: see pacing.h. Pure.
 *
 * Each key keeps the times of its sends within the window, oldest first
 * (a send of n recipients is n entries), so "when is there room for n
 * more" is one index: the (in_window + n - limit)th oldest time plus the
 * window. The warm-up count is one counter per key for the current day.
 */
#include "deliver/pacing.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/util.h"

#define PACING_MAX_TIMES 1000000 /* per key: beyond any sane limit */

static const char *const providers[] = { "gmail", "outlook", "yahoo", "icloud", "other", "*" };

int pacing_parse_rules(const char *spec, int per_window, struct pacing_rule *out, size_t *n, char *err,
		       size_t errsize)
{
	const char *p = spec;
	*n = 0;
	while (*p) {
		const char *s, *eq, *e;
		char num[24];
		size_t nl, kl;
		uint64_t v;
		int known = 0;
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		e = p;
		eq = memchr(s, '=', (size_t)(e - s));
		if (!eq) {
			snprintf(err, errsize, "'%.*s' is not PROVIDER=NUMBER; write e.g. gmail=%s", (int)(e - s), s,
				 per_window ? "100/h" : "5");
			return -1;
		}
		kl = (size_t)(eq - s);
		for (size_t i = 0; i < ARRAY_LEN(providers); i++)
			known |= strlen(providers[i]) == kl && !strncasecmp(s, providers[i], kl);
		if (!known) {
			snprintf(err, errsize, "'%.*s' is not a provider; use gmail, outlook, yahoo, icloud, other or *",
				 (int)kl, s);
			return -1;
		}
		nl = (size_t)(e - eq - 1);
		if (per_window && nl > 2 && !strncasecmp(e - 2, "/h", 2))
			nl -= 2;
		if (nl == 0 || nl >= sizeof num) {
			snprintf(err, errsize, "'%.*s': the number is missing or too long", (int)(e - s), s);
			return -1;
		}
		memcpy(num, eq + 1, nl);
		num[nl] = '\0';
		if (parse_uint(num, 100000000, &v) < 0 || v == 0) {
			snprintf(err, errsize, "'%.*s': %s is not a number from 1 to 100000000", (int)(e - s), s, num);
			return -1;
		}
		for (size_t i = 0; i < *n; i++)
			if (strlen(out[i].provider) == kl && !strncasecmp(out[i].provider, s, kl)) {
				snprintf(err, errsize, "%.*s is given twice; keep one", (int)kl, s);
				return -1;
			}
		if (*n >= PACING_MAX_RULES) {
			snprintf(err, errsize, "more than %d rules", PACING_MAX_RULES);
			return -1;
		}
		memcpy(out[*n].provider, s, kl);
		out[*n].provider[kl] = '\0';
		str_lower(out[*n].provider);
		out[*n].n = v;
		(*n)++;
	}
	return 0;
}

int pacing_parse_warm_up(const char *spec, uint64_t **out, size_t *n, char *err, size_t errsize)
{
	const char *p = spec;
	*out = NULL;
	*n = 0;
	while (*p) {
		char num[24];
		size_t l = 0;
		uint64_t v;
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		while (p[l] && p[l] != ',' && p[l] != ' ' && p[l] != '\t')
			l++;
		if (l >= sizeof num || (memcpy(num, p, l), num[l] = '\0', parse_uint(num, 100000000, &v) < 0) || v == 0) {
			snprintf(err, errsize, "'%.*s' is not a daily volume; write numbers like 50, 100, 200", (int)(l < 40 ? l : 40), p);
			goto fail;
		}
		if (*n >= PACING_MAX_DAYS) {
			snprintf(err, errsize, "more than %d days; the schedule should reach full volume sooner", PACING_MAX_DAYS);
			goto fail;
		}
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[(*n)++] = v;
		p += l;
	}
	return 0;
fail:
	free(*out);
	*out = NULL;
	*n = 0;
	return -1;
}

int pacing_parse_date(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;
	*out = 0;
	if (!*s)
		return 0;
	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || *end || strlen(s) != 10 || tm.tm_year < 100 || tm.tm_year > 1100)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

uint64_t pacing_rule_for(const struct pacing_rule *r, size_t n, const char *provider)
{
	uint64_t star = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(r[i].provider, provider))
			return r[i].n;
		if (!strcmp(r[i].provider, "*"))
			star = r[i].n;
	}
	return star;
}

const char *pacing_key(const char *provider, const char *domain)
{
	return !provider || !strcmp(provider, "other") ? domain : provider;
}

struct pkey {
	char key[256];
	int64_t *t; /* send times (ms) within the window, oldest first */
	size_t n, cap;
	int64_t day;
	uint64_t day_count;
};

struct pacing {
	struct pkey *k;
	size_t n;
	int64_t start;
};

struct pacing *pacing_new(void)
{
	return xcalloc(1, sizeof(struct pacing));
}

void pacing_free(struct pacing *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->k[i].t);
	free(p->k);
	free(p);
}

static void prune(struct pkey *k, const struct pacing_conf *c, int64_t now_ms)
{
	size_t drop = 0;
	while (drop < k->n && k->t[drop] <= now_ms - (int64_t)c->window_ms)
		drop++;
	if (drop) {
		memmove(k->t, k->t + drop, (k->n - drop) * sizeof *k->t);
		k->n -= drop;
	}
}

static struct pkey *key_get(struct pacing *p, const struct pacing_conf *c, const char *key, int64_t now_ms)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->k[i].key, key))
			return &p->k[i];
	if (p->n >= PACING_MAX_KEYS) {
		/* reuse a key with nothing in its window */
		for (size_t i = 0; i < p->n; i++) {
			prune(&p->k[i], c, now_ms);
			if (p->k[i].n == 0 && (!c->nwarm_up || p->k[i].day_count == 0)) {
				str_copy(p->k[i].key, key, sizeof p->k[i].key);
				p->k[i].day = 0;
				p->k[i].day_count = 0;
				return &p->k[i];
			}
		}
		return NULL;
	}
	p->k = xrealloc(p->k, (p->n + 1) * sizeof *p->k);
	memset(&p->k[p->n], 0, sizeof p->k[p->n]);
	str_copy(p->k[p->n].key, key, sizeof p->k[p->n].key);
	p->k[p->n].day = -1;
	return &p->k[p->n++];
}

int64_t pacing_start(const struct pacing *p, const struct pacing_conf *c)
{
	return c->warm_up_start ? c->warm_up_start : p->start;
}

const char *pacing_key_at(const struct pacing *p, size_t i)
{
	return i < p->n ? p->k[i].key : NULL;
}

void pacing_set_start(struct pacing *p, int64_t t)
{
	p->start = t;
}

static int64_t day_of(const struct pacing *p, const struct pacing_conf *c, int64_t now_ms)
{
	int64_t start = pacing_start(p, c), s = now_ms / 1000;
	if (!start || s < start)
		return 0;
	return (s - start) / PACING_DAY_S;
}

void pacing_record(struct pacing *p, const struct pacing_conf *c, const char *key, size_t n, int64_t now_ms)
{
	struct pkey *k = key_get(p, c, key, now_ms);
	int64_t day;
	if (!p->start)
		p->start = now_ms / 1000;
	if (!k)
		return;
	prune(k, c, now_ms);
	if (k->n + n <= PACING_MAX_TIMES) {
		if (k->n + n > k->cap) {
			k->cap = (k->n + n) * 2;
			k->t = xrealloc(k->t, k->cap * sizeof *k->t);
		}
		for (size_t i = 0; i < n; i++)
			k->t[k->n++] = now_ms;
	}
	day = day_of(p, c, now_ms);
	if (k->day != day) {
		k->day = day;
		k->day_count = 0;
	}
	k->day_count += n;
}

void pacing_get(struct pacing *p, const struct pacing_conf *c, const char *provider, const char *key, int64_t now_ms,
		struct pacing_state *out)
{
	struct pkey *k = NULL;
	int64_t day = day_of(p, c, now_ms);
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->k[i].key, key))
			k = &p->k[i];
	if (k) {
		prune(k, c, now_ms);
		out->in_window = k->n;
		out->today = k->day == day ? k->day_count : 0;
	}
	out->limit = pacing_rule_for(c->limits, c->nlimits, provider);
	out->day = c->nwarm_up ? (int)(day > INT32_MAX ? INT32_MAX : day) : -1;
	out->day_cap = c->nwarm_up && day < (int64_t)c->nwarm_up ? c->warm_up[day] : 0;
}

int pacing_admit(struct pacing *p, const struct pacing_conf *c, const char *provider, const char *key, size_t n,
		 int64_t now_ms, int64_t *until_ms, char *why, size_t whysize)
{
	struct pacing_state s;
	pacing_get(p, c, provider, key, now_ms, &s);
	if (s.limit && s.in_window > 0 && s.in_window + n > s.limit) {
		struct pkey *k = NULL;
		size_t need = (size_t)(s.in_window + n - s.limit);
		for (size_t i = 0; i < p->n; i++)
			if (!strcmp(p->k[i].key, key))
				k = &p->k[i];
		if (k && k->n) {
			if (need > k->n)
				need = k->n;
			*until_ms = k->t[need - 1] + (int64_t)c->window_ms;
			snprintf(why, whysize, "%llu recipients sent to %s in the last %llus, limit %llu",
				 (unsigned long long)s.in_window, key, (unsigned long long)(c->window_ms / 1000),
				 (unsigned long long)s.limit);
			return 0;
		}
	}
	if (s.day_cap && s.today > 0 && s.today + n > s.day_cap) {
		int64_t start = pacing_start(p, c);
		if (!start)
			start = now_ms / 1000;
		*until_ms = (start + (int64_t)(s.day + 1) * PACING_DAY_S) * 1000;
		snprintf(why, whysize, "warm-up day %d: %llu recipients sent to %s today, limit %llu", s.day + 1,
			 (unsigned long long)s.today, key, (unsigned long long)s.day_cap);
		return 0;
	}
	pacing_record(p, c, key, n, now_ms);
	return 1;
}
