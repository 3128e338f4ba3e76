/*
 * throttle: see throttle.h. A flat array searched linearly: the table is
 * small (a few thousand keys at most) and touched only on AUTH.
 */
#include "smtp/throttle.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

struct entry {
	char key[THROTTLE_KEY_MAX];
	uint64_t first;  /* the first failure of the window */
	uint64_t last;   /* the latest failure */
	uint64_t locked_until;
	unsigned count;
};

struct throttle {
	struct entry *e;
	size_t n, max;
};

struct throttle *throttle_new(size_t max_entries)
{
	struct throttle *t = xcalloc(1, sizeof *t);
	t->max = max_entries ? max_entries : 1;
	t->e = xcalloc(t->max, sizeof *t->e);
	return t;
}

void throttle_free(struct throttle *t)
{
	if (!t)
		return;
	free(t->e);
	free(t);
}

static struct entry *find(const struct throttle *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].key, key))
			return &t->e[i];
	return NULL;
}

uint64_t throttle_locked(const struct throttle *t, const char *key, uint64_t now)
{
	const struct entry *e = find(t, key);
	return e && e->locked_until > now ? e->locked_until - now : 0;
}

/* A slot for a new key: a free one, else the unlocked entry that failed
 * longest ago, else (all locked) the one whose lock ends first. */
static struct entry *slot(struct throttle *t, uint64_t now)
{
	struct entry *best = NULL;
	if (t->n < t->max)
		return &t->e[t->n++];
	for (size_t i = 0; i < t->n; i++) {
		struct entry *e = &t->e[i];
		int el = e->locked_until > now, bl = best && best->locked_until > now;
		if (!best || (bl && !el) || (el == bl && (el ? e->locked_until < best->locked_until : e->last < best->last)))
			best = e;
	}
	return best;
}

int throttle_fail(struct throttle *t, const char *key, uint64_t now, unsigned max, uint64_t window,
		  uint64_t lockout)
{
	struct entry *e = find(t, key);
	if (!e) {
		e = slot(t, now);
		memset(e, 0, sizeof *e);
		str_copy(e->key, key, sizeof e->key);
	}
	if (e->count == 0 || now - e->first > window) {
		e->first = now;
		e->count = 0;
	}
	e->last = now;
	if (++e->count >= max) {
		e->locked_until = now + lockout;
		e->count = 0;
		return 1;
	}
	return 0;
}

void throttle_clear(struct throttle *t, const char *key)
{
	struct entry *e = find(t, key);
	if (!e)
		return;
	*e = t->e[--t->n];
}

size_t throttle_count(const struct throttle *t)
{
	return t->n;
}
