/*
 * policy/grey: see grey.h.
 */
#include "policy/grey.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "lib/log.h"
#include "lib/util.h"

/* How often the last_seen of an allowed entry is refreshed at most. */
#define GREY_TOUCH_MS 60000

void grey_params_from_config(const struct config *c, struct grey_params *p)
{
	p->min_delay = (int64_t)c->grey_min_delay_ms;
	p->retry_window = (int64_t)c->grey_retry_window_ms;
	p->expire = (int64_t)c->grey_expire_ms;
	p->ipv4_prefix = (unsigned)c->grey_ipv4_prefix;
	p->ipv6_prefix = (unsigned)c->grey_ipv6_prefix;
	p->auto_allow_after = (int64_t)c->grey_auto_allow_after;
	p->auto_allow_expire = (int64_t)c->grey_auto_allow_expire_ms;
}

int grey_client_block(const char *ip, unsigned v4, unsigned v6, char *out, size_t n)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	int v6addr = strchr(ip, ':') != NULL;
	unsigned bits = v6addr ? (v6 > 128 ? 128 : v6) : (v4 > 32 ? 32 : v4);
	size_t len = v6addr ? 16 : 4;

	if (inet_pton(v6addr ? AF_INET6 : AF_INET, ip, a) != 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
		a[i] &= (unsigned char)(0xff00u >> keep);
	}
	inet_ntop(v6addr ? AF_INET6 : AF_INET, a, text, sizeof text);
	snprintf(out, n, "%s/%u", text, bits);
	return 0;
}

void grey_normalise_sender(const char *sender, char *out, size_t n)
{
	const char *at = strrchr(sender, '@'), *local = sender;
	size_t o = 0;
	int in_digits = 0;

	if (n == 0)
		return;
	/* BATV (draft-levine-smtp-batv): prvs=TAG=user@domain */
	if (at && !strncasecmp(local, "prvs=", 5)) {
		const char *eq = memchr(local + 5, '=', (size_t)(at - local - 5));
		if (eq)
			local = eq + 1;
	}
	for (const char *p = local; *p && o + 1 < n; p++) {
		int digit = isdigit((unsigned char)*p) && (!at || p < at);
		if (digit) {
			if (!in_digits)
				out[o++] = '#';
			in_digits = 1;
			continue;
		}
		in_digits = 0;
		out[o++] = (char)tolower((unsigned char)*p);
	}
	out[o] = '\0';
}

enum grey_verdict grey_judge(struct store_grey *rec, int found, int64_t now, const struct grey_params *p,
			     int64_t *retry_in)
{
	*retry_in = 0;
	if (found && rec->passed) {
		if (now - rec->last_seen <= p->expire) {
			rec->last_seen = now;
			rec->attempts++;
			return GREY_PASS;
		}
		found = 0; /* forgotten: start again */
	}
	if (found && now - rec->first_seen > p->retry_window)
		found = 0; /* too late to be a retry */
	if (!found) {
		rec->first_seen = rec->last_seen = now;
		rec->passed = 0;
		rec->attempts = 1;
		if (p->min_delay <= 0) {
			rec->passed = now;
			return GREY_PASS;
		}
		*retry_in = p->min_delay;
		return GREY_DEFER;
	}
	rec->last_seen = now;
	rec->attempts++;
	if (now - rec->first_seen < p->min_delay) {
		*retry_in = p->min_delay - (now - rec->first_seen);
		return GREY_DEFER;
	}
	rec->passed = now;
	return GREY_PASS;
}

enum grey_verdict grey_check(struct store *st, const char *client, const char *sender, const char *rcpt, int64_t now,
			     const struct grey_params *p, int64_t *retry_in)
{
	struct store_grey rec = { .client = client, .sender = sender, .rcpt = rcpt };
	int rc = store_grey_get(st, client, sender, rcpt, &rec);
	enum grey_verdict v;

	*retry_in = 0;
	if (rc != STORE_OK && rc != STORE_NOTFOUND) {
		log_warn(NULL, "event=greylist_store_error op=get action=pass");
		return GREY_PASS;
	}
	int64_t seen = rec.last_seen;
	int was_passed = rc == STORE_OK && rec.passed;
	v = grey_judge(&rec, rc == STORE_OK, now, p, retry_in);
	/* A triplet that passed and was seen within the minute: nothing worth
	 * a write (its last_seen only matters at the scale of the expiry). */
	if (v == GREY_PASS && was_passed && rec.passed && now - seen >= 0 && now - seen < GREY_TOUCH_MS)
		return v;
	rec.client = client;
	rec.sender = sender;
	rec.rcpt = rcpt;
	if (store_grey_put(st, &rec) != STORE_OK)
		log_warn(NULL, "event=greylist_store_error op=put");
	return v;
}

int grey_allowed(struct store *st, const char *key, int64_t now, const struct grey_params *p)
{
	struct store_allow a;
	if (!key || !*key || store_allow_get(st, key, &a) != STORE_OK)
		return 0;
	if (a.manual)
		return 1;
	return p->auto_allow_after > 0 && a.count >= p->auto_allow_after && now - a.last_seen <= p->auto_allow_expire;
}

void grey_count(struct store *st, const char *key, int64_t now, const struct grey_params *p)
{
	struct store_allow a = { 0 };
	int rc;
	if (!key || !*key || p->auto_allow_after <= 0)
		return;
	rc = store_allow_get(st, key, &a);
	/* Allowed already and seen within the minute: nothing worth a write
	 * (a busy client would otherwise cost one per message). */
	if (rc == STORE_OK && (a.manual || a.count >= p->auto_allow_after) && now - a.last_seen >= 0 &&
	    now - a.last_seen < GREY_TOUCH_MS)
		return;
	if (rc == STORE_NOTFOUND || (rc == STORE_OK && !a.manual && now - a.last_seen > p->auto_allow_expire)) {
		a.count = 0;
		a.first_seen = now;
		a.manual = 0;
	} else if (rc != STORE_OK) {
		return;
	}
	a.key = key;
	a.count++;
	a.last_seen = now;
	if (store_allow_put(st, &a) != STORE_OK)
		log_warn(NULL, "event=greylist_store_error op=allow_put");
}
