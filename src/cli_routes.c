/*
 * cli_routes: `postern routes [--json]` and `postern routes forget KEY`:
 * what adaptive routing learned (which providers go through the relay,
 * until when, and the receiver's reply that taught it) and the pacing
 * state of each provider (recipients sent directly in the window, the
 * limit, the warm-up day), both read from the state store: the learned
 * routes from their table, the pacing counters rebuilt from the delivery
 * ledger exactly as the daemon rebuilds them at start (pacing_ledger.c).
 * Runs as the postern user; `forget` takes effect at the daemon's next
 * delivery to that provider (the route is read from the store each time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "deliver/pacing.h"
#include "lib/json.h"
#include "lib/util.h"
#include "store/store.h"

void cli_routes_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] routes [--json]\n"
	      "       postern [-c FILE] routes forget KEY\n"
	      "\n"
	      "routes   the routes adaptive routing learned: each provider (or, for\n"
	      "         other receivers, domain) that refused direct mail for our\n"
	      "         reputation, sent through the relay until the time shown, with\n"
	      "         the reply that taught it; and the pacing state of each provider:\n"
	      "         recipients sent directly in the window, the limit, the warm-up day\n"
	      "forget   send KEY (gmail, outlook, yahoo, icloud, or a domain) direct again\n",
	      out);
}

static void iso(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct show {
	int json, n;
	int64_t now;
};

static int show_route(void *arg, const struct store_route *r)
{
	struct show *s = arg;
	char until[40], learned[40];
	const char *state = r->until <= s->now ? "expired" : r->relay ? "relay" : "advice";
	iso(r->until, until, sizeof until);
	iso(r->learned, learned, sizeof learned);
	if (s->json) {
		printf("%s{\"key\":", s->n ? "," : "");
		json_write_string(stdout, r->key);
		printf(",\"provider\":");
		json_write_string(stdout, r->provider);
		printf(",\"domain\":");
		json_write_string(stdout, r->domain);
		printf(",\"until\":%lld,\"until_at\":\"%s\",\"learned\":%lld,\"learned_at\":\"%s\",\"reason\":",
		       (long long)r->until, until, (long long)r->learned, learned);
		json_write_string(stdout, r->reason);
		printf(",\"relay\":%s,\"active\":%s,\"state\":\"%s\"}", r->relay ? "true" : "false",
		       r->until > s->now && r->relay ? "true" : "false", state);
	} else {
		if (!s->n)
			printf("learned routes:\n");
		if (!strcmp(state, "relay"))
			printf("  %-10s via relay until %s (learned %s from %s)\n", r->key, until, learned, r->domain);
		else if (!strcmp(state, "expired"))
			printf("  %-10s direct again since %s (learned %s from %s)\n", r->key, until, learned, r->domain);
		else
			printf("  %-10s direct: no relay is configured; set [relay] host to route around it (learned %s from %s)\n",
			       r->key, learned, r->domain);
		printf("             reply: %s\n", r->reason ? r->reason : "");
	}
	s->n++;
	return 0;
}

static void show_pacing(const struct config *cfg, struct store *st, int json, int64_t now_ms)
{
	static const char *const named[] = { "gmail", "outlook", "yahoo", "icloud" };
	struct pacing *p = pacing_new();
	const struct pacing_conf *c = &cfg->pacing;
	int64_t start;
	char when[40] = "";
	size_t nk = 0;
	const char **keys;

	pacing_load(p, c, st, now_ms);
	start = pacing_start(p, c);
	if (start)
		iso(start, when, sizeof when);
	while (pacing_key_at(p, nk))
		nk++;
	keys = xcalloc(nk + ARRAY_LEN(named), sizeof *keys);
	for (size_t i = 0; i < ARRAY_LEN(named); i++)
		keys[i] = named[i];
	nk = ARRAY_LEN(named);
	for (size_t i = 0; pacing_key_at(p, i); i++) {
		const char *k = pacing_key_at(p, i);
		int dup = 0;
		for (size_t j = 0; j < ARRAY_LEN(named); j++)
			dup |= !strcmp(k, named[j]);
		if (!dup)
			keys[nk++] = k;
	}
	if (json)
		printf(",\"pacing\":{\"window\":%llu,\"warm_up_start\":", (unsigned long long)(c->window_ms / 1000));
	else
		printf("pacing (window %llus%s%s):\n", (unsigned long long)(c->window_ms / 1000),
		       c->nwarm_up ? ", warm-up from " : "", c->nwarm_up ? (start ? when : "the first delivery") : "");
	if (json) {
		if (start)
			printf("\"%s\"", when);
		else
			printf("null");
		printf(",\"providers\":[");
	}
	for (size_t i = 0; i < nk; i++) {
		const char *prov = i < ARRAY_LEN(named) ? keys[i] : "other";
		struct pacing_state ps;
		uint64_t conns = pacing_rule_for(c->conns, c->nconns, prov);
		pacing_get(p, c, prov, keys[i], now_ms, &ps);
		if (json) {
			printf("%s{\"key\":", i ? "," : "");
			json_write_string(stdout, keys[i]);
			printf(",\"provider\":\"%s\",\"sent\":%llu,\"limit\":%llu,\"connections\":%llu,\"warm_up_day\":", prov,
			       (unsigned long long)ps.in_window, (unsigned long long)ps.limit, (unsigned long long)conns);
			if (ps.day >= 0)
				printf("%d,\"today\":%llu,\"day_limit\":%llu}", ps.day + 1, (unsigned long long)ps.today,
				       (unsigned long long)ps.day_cap);
			else
				printf("null,\"today\":%llu,\"day_limit\":0}", (unsigned long long)ps.today);
		} else {
			char lim[48] = "no limit", cl[64] = "", wu[128] = "";
			if (ps.limit)
				snprintf(lim, sizeof lim, "limit %llu", (unsigned long long)ps.limit);
			if (conns)
				snprintf(cl, sizeof cl, ", %llu connections", (unsigned long long)conns);
			if (ps.day >= 0 && ps.day_cap)
				snprintf(wu, sizeof wu, "; warm-up day %d: %llu today, limit %llu", ps.day + 1,
					 (unsigned long long)ps.today, (unsigned long long)ps.day_cap);
			else if (ps.day >= 0)
				snprintf(wu, sizeof wu, "; warm-up over (day %d)", ps.day + 1);
			printf("  %-10s %llu sent in the window, %s%s%s\n", keys[i], (unsigned long long)ps.in_window, lim, cl,
			       wu);
		}
	}
	if (json)
		printf("]}");
	free(keys);
	pacing_free(p);
}

int cli_routes(const struct config *cfg, int argc, char **argv)
{
	char err[512];
	struct store *st;
	int json = 0, rc = 0;
	const char *forget = NULL;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "forget") && i == 0 && i + 1 < argc)
			forget = argv[++i];
		else {
			fprintf(stderr, "postern: routes: unexpected '%s'\n", argv[i]);
			cli_routes_usage(stderr);
			return 2;
		}
	}
	st = store_open(cfg->data_dir, err, sizeof err);
	if (!st) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	if (forget) {
		int n = 0;
		char *key = str_lower(xstrdup(forget));
		if (store_route_forget(st, key, &n) != STORE_OK) {
			rc = 1;
		} else if (!n) {
			fprintf(stderr, "postern: no learned route for %s (see postern routes)\n", key);
			rc = 1;
		} else {
			printf("%s: forgotten; mail goes direct again\n", key);
		}
		free(key);
	} else {
		int64_t now_ms = (int64_t)wall_ms();
		struct show s = { .json = json, .now = now_ms / 1000 };
		if (json)
			printf("{\"routes\":[");
		rc = store_route_list(st, NULL, show_route, &s) == STORE_OK ? 0 : 1;
		if (json)
			printf("]");
		else if (!s.n)
			printf("learned routes: none\n");
		show_pacing(cfg, st, json, now_ms);
		if (json)
			printf("}\n");
	}
	store_close(st);
	return rc;
}
