/*
 * throttle: counting failed logins per key ("ip:192.0.2.1", "user:a@b")
 * and locking a key out for a while after too many, so that guessing
 * passwords is slow from one address and slow against one account from
 * many (RFC 4954 section 15 asks servers to limit attempts).
 *
 * Pure logic over a clock the caller passes (milliseconds): unit-testable,
 * no I/O. Bounded: at most max_entries keys; when full, the entry not
 * locked that failed longest ago is forgotten (an attacker filling the
 * table can only make us forget old unlocked counts, never a lockout while
 * an unlocked one is left). Used on the event loop only.
 */
#ifndef POSTERN_SMTP_THROTTLE_H
#define POSTERN_SMTP_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_KEY_MAX 272

struct throttle;

struct throttle *throttle_new(size_t max_entries);
void throttle_free(struct throttle *t);
/* Milliseconds key stays locked out after now, or 0. */
uint64_t throttle_locked(const struct throttle *t, const char *key, uint64_t now);
/* Records a failure at now. Failures are counted in a window that starts
 * with the first one; the max-th within window locks key for lockout ms.
 * Returns 1 if key is now locked. */
int throttle_fail(struct throttle *t, const char *key, uint64_t now, unsigned max, uint64_t window,
		  uint64_t lockout);
/* Forgets key (a successful login clears its account's count). */
void throttle_clear(struct throttle *t, const char *key);
size_t throttle_count(const struct throttle *t);

#endif
