/*
 * policy/ratelimit: per-client event counters kept in memory on the event
 * loop: connections per minute, messages, recipients and unknown recipients
 * per hour, for a key that is a client address or "auth:USER".
 *
 * Each counter is an approximate sliding window (two fixed windows, the
 * previous one weighted by how much of it still overlaps the sliding one),
 * which needs three numbers per counter and no per-event memory. The table
 * is bounded (max_entries); entries idle for more than two hours are
 * dropped as their hash bucket is visited, and all at once when the table
 * is full (at most once a minute); while it stays full, new keys are not
 * limited (fail open, and counted in ratelimit_full()).
 *
 * Pure: time comes in as an argument, so tests replay hours in microseconds.
 */
#ifndef POSTERN_POLICY_RATELIMIT_H
#define POSTERN_POLICY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

enum rl_kind { RL_CONNECTIONS, RL_MESSAGES, RL_RECIPIENTS, RL_UNKNOWN, RL_KINDS };

struct ratelimit;

struct ratelimit *ratelimit_new(size_t max_entries);
void ratelimit_free(struct ratelimit *rl);

/* One event of kind for key at now (ms). If limit is 0 there is no limit
 * and nothing is counted: returns 1. Otherwise, if the events in the
 * sliding window (one minute for connections, one hour for the others)
 * would exceed limit with this one, returns 0 and counts nothing; else
 * counts it and returns 1. */
int ratelimit_take(struct ratelimit *rl, const char *key, enum rl_kind kind, uint64_t limit, uint64_t now);
/* The estimated events in the window for key (0 for an unknown key). */
double ratelimit_count(struct ratelimit *rl, const char *key, enum rl_kind kind, uint64_t now);
size_t ratelimit_size(const struct ratelimit *rl);
uint64_t ratelimit_full(const struct ratelimit *rl);

#endif
