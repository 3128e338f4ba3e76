/*
 * policy/ratelimit: see ratelimit.h.
 */
#include "policy/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define RL_BUCKETS 4096
#define RL_KEY_MAX 96
#define RL_IDLE_MS (2 * 3600 * 1000ULL)

struct counter {
	uint64_t start; /* start of the current fixed window */
	uint32_t cur, prev;
};

struct rl_entry {
	struct rl_entry *next;
	uint64_t last;
	struct counter c[RL_KINDS];
	char key[RL_KEY_MAX];
};

struct ratelimit {
	struct rl_entry *b[RL_BUCKETS];
	size_t n, max;
	uint64_t full;
	uint64_t last_sweep;
};

static const uint64_t window_ms[RL_KINDS] = { 60000, 3600000, 3600000, 3600000 };

struct ratelimit *ratelimit_new(size_t max_entries)
{
	struct ratelimit *rl = xcalloc(1, sizeof *rl);
	rl->max = max_entries ? max_entries : 100000;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < RL_BUCKETS; i++) {
		struct rl_entry *e = rl->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(rl);
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Finds key, dropping idle entries of its bucket on the way; creates it
 * when create is set and there is room. */
static struct rl_entry *lookup(struct ratelimit *rl, const char *key, uint64_t now, int create)
{
	struct rl_entry **p = &rl->b[hash(key) % RL_BUCKETS], *found = NULL;
	while (*p) {
		struct rl_entry *e = *p;
		if (!strcmp(e->key, key)) {
			found = e;
		} else if (now > e->last + RL_IDLE_MS) {
			*p = e->next;
			free(e);
			rl->n--;
			continue;
		}
		p = &e->next;
	}
	if (found || !create)
		return found;
	if (rl->n >= rl->max && now >= rl->last_sweep + 60000) {
		/* Full: drop every idle entry, at most once a minute. */
		rl->last_sweep = now;
		for (size_t i = 0; i < RL_BUCKETS; i++) {
			for (struct rl_entry **q = &rl->b[i]; *q;) {
				struct rl_entry *e = *q;
				if (now > e->last + RL_IDLE_MS) {
					*q = e->next;
					free(e);
					rl->n--;
				} else {
					q = &e->next;
				}
			}
		}
	}
	if (rl->n >= rl->max) {
		rl->full++;
		return NULL;
	}
	found = xcalloc(1, sizeof *found);
	str_copy(found->key, key, sizeof found->key);
	found->next = rl->b[hash(key) % RL_BUCKETS];
	rl->b[hash(key) % RL_BUCKETS] = found;
	rl->n++;
	return found;
}

/* Moves the counter's windows to now and returns the sliding estimate. */
static double estimate(struct counter *c, uint64_t win, uint64_t now)
{
	uint64_t elapsed;
	if (now >= c->start + 2 * win) {
		c->prev = 0;
		c->cur = 0;
		c->start = now - (now % win);
	} else if (now >= c->start + win) {
		c->prev = c->cur;
		c->cur = 0;
		c->start += win;
	}
	elapsed = now - c->start;
	return (double)c->prev * (double)(win - elapsed) / (double)win + (double)c->cur;
}

int ratelimit_take(struct ratelimit *rl, const char *key, enum rl_kind kind, uint64_t limit, uint64_t now)
{
	struct rl_entry *e;
	struct counter *c;

	if (limit == 0)
		return 1;
	e = lookup(rl, key, now, 1);
	if (!e)
		return 1;
	e->last = now;
	c = &e->c[kind];
	if (c->start == 0 && c->cur == 0 && c->prev == 0)
		c->start = now - (now % window_ms[kind]);
	if (estimate(c, window_ms[kind], now) + 1.0 > (double)limit + 1e-9)
		return 0;
	c->cur++;
	return 1;
}

double ratelimit_count(struct ratelimit *rl, const char *key, enum rl_kind kind, uint64_t now)
{
	struct rl_entry *e = lookup(rl, key, now, 0);
	if (!e || (e->c[kind].start == 0 && e->c[kind].cur == 0))
		return 0;
	return estimate(&e->c[kind], window_ms[kind], now);
}

size_t ratelimit_size(const struct ratelimit *rl)
{
	return rl->n;
}

uint64_t ratelimit_full(const struct ratelimit *rl)
{
	return rl->full;
}
