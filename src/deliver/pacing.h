/*
 * pacing: how much mail may go directly to one receiving provider now.
 * Large receivers judge new and irregular senders harshly, so postern
 * sends to each at a steady pace: at most LIMIT recipients per window
 * ([pacing] limits, per provider: gmail, outlook, yahoo, icloud, and
 * "other", which counts each other domain on its own; "*" for the rest),
 * at most a number of connections at once ([pacing] connections), and,
 * with a warm-up schedule, at most warm_up[d] recipients on day d after
 * the start (a new sending address ramps up: 50, 100, 200, ...).
 *
 * Mail over a limit is held back, never refused: the caller gets the time
 * at which the window has room, and the queue keeps the recipients
 * pending until then (remote.c, queue.c). Only direct deliveries count
 * and are paced: through the relay, the relay's address is judged.
 *
 * Pure: parsers (fuzzed, tests/fuzz/fuzz_routing.c) and in-memory
 * counters over times the caller passes in. The counters are filled from
 * the delivery ledger at start (pacing_ledger.c), so a restart forgets
 * nothing. Bounds: PACING_MAX_RULES rules, PACING_MAX_DAYS warm-up days,
 * PACING_MAX_KEYS counters (past that, new keys are not paced).
 */
#ifndef POSTERN_DELIVER_PACING_H
#define POSTERN_DELIVER_PACING_H

#include <stddef.h>
#include <stdint.h>

#define PACING_MAX_RULES 16
#define PACING_MAX_DAYS 365
#define PACING_MAX_KEYS 4096
#define PACING_DAY_S 86400

struct pacing_rule {
	char provider[16]; /* gmail, outlook, yahoo, icloud, other, or "*" */
	uint64_t n;
};

struct pacing_conf {
	struct pacing_rule limits[PACING_MAX_RULES]; /* recipients per window */
	size_t nlimits;
	struct pacing_rule conns[PACING_MAX_RULES]; /* connections at once */
	size_t nconns;
	uint64_t window_ms;
	uint64_t *warm_up; /* recipients per day, from the start day */
	size_t nwarm_up;
	int64_t warm_up_start; /* Unix time; 0: the first direct delivery */
};

/* "gmail=100/h, outlook=50/h, *=500/h" (per_window: the "/h" may be
 * given) or "gmail=5, *=20". Returns 0, or -1 with the problem in err. */
int pacing_parse_rules(const char *spec, int per_window, struct pacing_rule *out, size_t *n, char *err,
		       size_t errsize);
/* "50, 100, 200, 400, 800": *out is the caller's (free()). */
int pacing_parse_warm_up(const char *spec, uint64_t **out, size_t *n, char *err, size_t errsize);
/* "YYYY-MM-DD" (UTC midnight) or "". */
int pacing_parse_date(const char *s, int64_t *out);
/* The rule for provider (its own, else "*"), or 0: no limit. */
uint64_t pacing_rule_for(const struct pacing_rule *r, size_t n, const char *provider);
/* The counter key of a destination: the provider, or the domain for "other". */
const char *pacing_key(const char *provider, const char *domain);

struct pacing;
struct pacing *pacing_new(void);
void pacing_free(struct pacing *p);
/* Counts n recipients sent to key (of provider) at now_ms. */
void pacing_record(struct pacing *p, const struct pacing_conf *c, const char *key, size_t n, int64_t now_ms);
/* The warm-up start in use (Unix time), 0 before any send. Set it from
 * the ledger at start when the configuration gives none. */
int64_t pacing_start(const struct pacing *p, const struct pacing_conf *c);
void pacing_set_start(struct pacing *p, int64_t t);

/* The key of counter i (for listing), NULL past the end. */
const char *pacing_key_at(const struct pacing *p, size_t i);

struct pacing_state {
	uint64_t in_window, limit; /* limit 0: none */
	int day;                   /* warm-up day (0 = first), -1 without warm-up */
	uint64_t today, day_cap;   /* day_cap 0: none (warm-up over or absent) */
};
void pacing_get(struct pacing *p, const struct pacing_conf *c, const char *provider, const char *key, int64_t now_ms,
		struct pacing_state *out);
/* Whether n recipients may go to key now. 1 yes (and they are counted);
 * 0 no, with the time they may go in *until_ms and why in why. */
int pacing_admit(struct pacing *p, const struct pacing_conf *c, const char *provider, const char *key, size_t n,
		 int64_t now_ms, int64_t *until_ms, char *why, size_t whysize);

/* pacing_ledger.c: fills p from the delivery ledger (direct attempts that
 * reached a receiver, within the window and the current warm-up day) and
 * sets the warm-up start from the first direct delivery. */
struct store;
void pacing_load(struct pacing *p, const struct pacing_conf *c, struct store *st, int64_t now_ms);

#endif
