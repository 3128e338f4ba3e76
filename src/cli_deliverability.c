/*
 * cli_deliverability: `postern deliverability [--days N] [--json] ...`,
 * per provider and per day: attempts, delivered, deferred, bounced (with
 * the reasons), routes, what the provider's DMARC reports say it saw from
 * our domains, and the silent-drop flags (rules in report/deliverability.h
 * and docs/commands.md). A state command: reads the store only.
 *
 * Exit status: 0 (with or without flags; --fail-on-flag makes a flag 1),
 * 1 if the store cannot be read, 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/json.h"
#include "lib/util.h"
#include "report/deliverability.h"
#include "store/store.h"

#define CLI_MAX_PATTERNS 32

void cli_deliverability_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] deliverability [--days N] [--json] [--ratio PERCENT]\n"
	      "           [--min-messages N] [--run N] [--reputation-pattern TEXT]... [--fail-on-flag]\n"
	      "\n"
	      "Per provider (gmail, outlook, yahoo, icloud, other) and per UTC day of the\n"
	      "last N days (default 7): delivery attempts, delivered, deferred, bounced with\n"
	      "the reasons, the routes used, and the messages the provider's DMARC aggregate\n"
	      "reports count from our [server] domains. Flags (the silent-drop detector):\n"
	      "  silent_drop      the reports count fewer than PERCENT (default 80) of the\n"
	      "                   messages the provider accepted up to its newest report\n"
	      "  reports_missing  no report from a provider that accepted N or more\n"
	      "  reputation       N (--run, default 5) consecutive refusals for reputation:\n"
	      "                   status 5.7.x or 4.7.x, or a reply containing a pattern\n"
	      "--min-messages (default 20): fewer accepted messages raise no report flag.\n"
	      "--reputation-pattern adds a reply text (case-insensitive) to the defaults.\n"
	      "--fail-on-flag: exit 1 when a flag is set (for cron and monitoring).\n",
	      out);
}

static void day_str(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		str_copy(buf, "?", n);
	else
		strftime(buf, n, "%Y-%m-%d", &tm);
}

static const char *const flag_names[] = { "silent_drop", "reports_missing", "reputation" };

static int flag_set(const struct deliv_stat *s, size_t i)
{
	return i == 0 ? s->silent_drop : i == 1 ? s->reports_missing : s->reputation;
}

static int active(const struct deliv_stat *s)
{
	return s->total.sent || s->total.reports || s->nreasons || s->longest_run;
}

static void json_kv_num(const char *k, long long v, int comma)
{
	printf("%s\"%s\":%lld", comma ? "," : "", k, v);
}

static void json_day(const struct deliv_day *dd)
{
	json_kv_num("sent", dd->sent, 1);
	json_kv_num("delivered", dd->delivered, 1);
	json_kv_num("deferred", dd->deferred, 1);
	json_kv_num("bounced", dd->bounced, 1);
	json_kv_num("reported", dd->reported, 1);
	json_kv_num("reported_pass", dd->reported_pass, 1);
	json_kv_num("reports", dd->reports, 1);
}

static void print_json(const struct deliv *d)
{
	char from[16], to[16], text[512];
	int nflags = 0;
	day_str(d->day0, from, sizeof from);
	day_str(d->day0 + (int64_t)(d->ndays - 1) * 86400, to, sizeof to);
	printf("{\"days\":%zu,\"from\":\"%s\",\"to\":\"%s\",\"min_ratio\":%.4g,\"min_messages\":%lld,"
	       "\"reputation_run\":%lld,\"providers\":[",
	       d->ndays, from, to, d->p.min_ratio, (long long)d->p.min_messages, (long long)d->p.reputation_run);
	for (int i = 0, n = 0; i < DELIV_NPROVIDERS; i++) {
		const struct deliv_stat *s = &d->prov[i];
		if (!active(s))
			continue;
		printf("%s{\"provider\":\"%s\"", n++ ? "," : "", s->name);
		json_day(&s->total);
		json_kv_num("compared_accepted", s->compared_accepted, 1);
		json_kv_num("longest_reputation_run", s->longest_run, 1);
		json_kv_num("current_reputation_run", s->current_run, 1);
		printf(",\"routes\":");
		json_write_string(stdout, s->routes);
		printf(",\"flags\":[");
		for (size_t f = 0, m = 0; f < ARRAY_LEN(flag_names); f++)
			if (flag_set(s, f))
				printf("%s\"%s\"", m++ ? "," : "", flag_names[f]);
		printf("],\"reasons\":[");
		for (size_t k = 0; k < s->nreasons; k++) {
			const struct deliv_reason *r = &s->reasons[k];
			printf("%s{\"outcome\":", k ? "," : "");
			json_write_string(stdout, strcmp(r->outcome, "failed") ? r->outcome : "bounced");
			printf(",\"status\":");
			json_write_string(stdout, r->status);
			printf(",\"code\":%d,\"count\":%lld,\"reputation\":%s,\"reply\":", r->code, (long long)r->count,
			       r->reputation ? "true" : "false");
			json_write_string(stdout, r->reply);
			fputc('}', stdout);
		}
		printf("],\"days\":[");
		for (size_t k = 0, m = 0; k < d->ndays; k++) {
			char day[16];
			if (!s->days[k].sent && !s->days[k].reports)
				continue;
			day_str(d->day0 + (int64_t)k * 86400, day, sizeof day);
			printf("%s{\"date\":\"%s\"", m++ ? "," : "", day);
			json_day(&s->days[k]);
			fputc('}', stdout);
		}
		printf("]}");
	}
	printf("],\"flags\":[");
	for (int i = 0; i < DELIV_NPROVIDERS; i++)
		for (size_t f = 0; f < ARRAY_LEN(flag_names); f++) {
			if (!flag_set(&d->prov[i], f))
				continue;
			deliv_flag_text(d, &d->prov[i], flag_names[f], text, sizeof text);
			printf("%s{\"provider\":\"%s\",\"flag\":\"%s\",\"detail\":", nflags++ ? "," : "", d->prov[i].name,
			       flag_names[f]);
			json_write_string(stdout, text);
			fputc('}', stdout);
		}
	printf("]}\n");
}

/* A reply shown on one line: control characters become '?'. */
static void print_clean(const char *s)
{
	for (; s && *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, stdout);
}

static void print_human(const struct deliv *d)
{
	char from[16], to[16], text[512];
	int any = 0, nflags = 0;
	day_str(d->day0, from, sizeof from);
	day_str(d->day0 + (int64_t)(d->ndays - 1) * 86400, to, sizeof to);
	printf("Deliverability %s .. %s (%zu day%s, UTC)\n", from, to, d->ndays, d->ndays == 1 ? "" : "s");
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		const struct deliv_stat *s = &d->prov[i];
		if (!active(s))
			continue;
		any = 1;
		printf("\n%s: sent %lld, delivered %lld, deferred %lld, bounced %lld; DMARC reports saw %lld "
		       "(%lld pass) in %d report%s; routes %s\n",
		       s->name, (long long)s->total.sent, (long long)s->total.delivered, (long long)s->total.deferred,
		       (long long)s->total.bounced, (long long)s->total.reported, (long long)s->total.reported_pass,
		       s->total.reports, s->total.reports == 1 ? "" : "s", *s->routes ? s->routes : "-");
		printf("  %-10s %8s %9s %8s %7s %8s\n", "day", "sent", "delivered", "deferred", "bounced", "reported");
		for (size_t k = 0; k < d->ndays; k++) {
			const struct deliv_day *dd = &s->days[k];
			char day[16], rep[24] = "-";
			if (!dd->sent && !dd->reports)
				continue;
			day_str(d->day0 + (int64_t)k * 86400, day, sizeof day);
			if (dd->reports)
				snprintf(rep, sizeof rep, "%lld", (long long)dd->reported);
			printf("  %-10s %8lld %9lld %8lld %7lld %8s\n", day, (long long)dd->sent, (long long)dd->delivered,
			       (long long)dd->deferred, (long long)dd->bounced, rep);
		}
		for (size_t k = 0; k < s->nreasons; k++) {
			const struct deliv_reason *r = &s->reasons[k];
			printf("  %s %d %s x%lld%s: ", strcmp(r->outcome, "failed") ? r->outcome : "bounced", r->code,
			       *r->status ? r->status : "-", (long long)r->count, r->reputation ? " [reputation]" : "");
			print_clean(r->reply);
			fputc('\n', stdout);
		}
		for (size_t f = 0; f < ARRAY_LEN(flag_names); f++) {
			if (!flag_set(s, f))
				continue;
			deliv_flag_text(d, s, flag_names[f], text, sizeof text);
			printf("  FLAG %s: %s\n", flag_names[f], text);
			nflags++;
		}
	}
	if (!any)
		printf("\nNo delivery and no DMARC report from a provider in this period.\n");
	printf("\n%d flag%s.\n", nflags, nflags == 1 ? "" : "s");
}

static int num_opt(const char *name, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!v || parse_uint(v, max, out) < 0 || *out < min) {
		fprintf(stderr, "postern: deliverability: %s needs a whole number from %llu to %llu\n", name,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	return 0;
}

int cli_deliverability(const struct config *cfg, int argc, char **argv)
{
	struct deliv_params p;
	const char *patterns[CLI_MAX_PATTERNS];
	size_t npat = 0;
	int json = 0, fail_on_flag = 0, rc;
	struct store *st;
	struct deliv *d;
	char err[512];

	deliv_params_default(&p);
	for (size_t i = 0; i < p.npatterns && npat < CLI_MAX_PATTERNS; i++)
		patterns[npat++] = p.patterns[i];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--fail-on-flag")) {
			fail_on_flag = 1;
		} else if (!strcmp(a, "--days")) {
			if (num_opt(a, v, 1, DELIV_MAX_DAYS, &n) < 0)
				return 2;
			p.days = (int)n;
			i++;
		} else if (!strcmp(a, "--ratio")) {
			if (num_opt(a, v, 0, 100, &n) < 0)
				return 2;
			p.min_ratio = (double)n / 100.0;
			i++;
		} else if (!strcmp(a, "--min-messages")) {
			if (num_opt(a, v, 0, INT32_MAX, &n) < 0)
				return 2;
			p.min_messages = (int64_t)n;
			i++;
		} else if (!strcmp(a, "--run")) {
			if (num_opt(a, v, 1, 100000, &n) < 0)
				return 2;
			p.reputation_run = (int64_t)n;
			i++;
		} else if (!strcmp(a, "--reputation-pattern")) {
			if (!v || !*v || strlen(v) > 200) {
				fprintf(stderr, "postern: deliverability: --reputation-pattern needs a text of 1 to 200 bytes\n");
				return 2;
			}
			if (npat == CLI_MAX_PATTERNS) {
				fprintf(stderr, "postern: deliverability: at most %d reputation patterns\n", CLI_MAX_PATTERNS);
				return 2;
			}
			patterns[npat++] = v;
			i++;
		} else {
			fprintf(stderr, "postern: deliverability: unexpected '%s'\n", a);
			cli_deliverability_usage(stderr);
			return 2;
		}
	}
	p.patterns = patterns;
	p.npatterns = npat;
	st = store_open(cfg->data_dir, err, sizeof err);
	if (!st) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	d = deliv_new((int64_t)time(NULL), &p);
	rc = deliv_load(d, st, (const char *const *)cfg->domains, cfg->ndomains);
	store_close(st);
	if (rc < 0) {
		fprintf(stderr, "postern: deliverability: the store could not be read (see the log)\n");
		deliv_free(d);
		return 1;
	}
	rc = deliv_finish(d);
	if (json)
		print_json(d);
	else
		print_human(d);
	deliv_free(d);
	return fail_on_flag && rc > 0 ? 1 : 0;
}
