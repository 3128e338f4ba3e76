/*
 * deliverability: the per-provider, per-day aggregation and the flags of the
 * silent-drop detector (the rules are in deliverability.h and
 * docs/commands.md). Pure: rows in, struct deliv out; every string kept is
 * copied, every count saturates rather than overflows (counts come from the
 * store and from reports, which a reporter controls).
 */
#include "report/deliverability.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const char *const provider_names[DELIV_NPROVIDERS] = { "gmail", "outlook", "yahoo", "icloud", "other" };

static const char *const default_patterns[] = {
	"reputation", "spamhaus", "blocklist", "block list", "blacklist", "unsolicited", "poor sender",
};

void deliv_params_default(struct deliv_params *p)
{
	p->days = 7;
	p->min_ratio = 0.8;
	p->min_messages = 20;
	p->reputation_run = 5;
	p->patterns = default_patterns;
	p->npatterns = ARRAY_LEN(default_patterns);
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b < 0)
		b = 0;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

const char *deliv_provider_name(enum deliv_provider p)
{
	return (unsigned)p < DELIV_NPROVIDERS ? provider_names[p] : "other";
}

int deliv_provider_index(const char *name)
{
	for (int i = 0; name && i < DELIV_NPROVIDERS; i++)
		if (!strcmp(name, provider_names[i]))
			return i;
	return -1;
}

/* Whether host is suffix or under it (case-insensitive). */
static int under(const char *host, const char *suffix)
{
	size_t hl = strlen(host), sl = strlen(suffix);
	if (hl == sl)
		return !strcasecmp(host, suffix);
	return hl > sl && host[hl - sl - 1] == '.' && !strcasecmp(host + hl - sl, suffix);
}

/* Whether word occurs in s as a whole word (case-insensitive). */
static int has_word(const char *s, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = s; p && *p; p++) {
		if (strncasecmp(p, word, n) == 0 && (p == s || !isalnum((unsigned char)p[-1])) &&
		    !isalnum((unsigned char)p[n]))
			return 1;
	}
	return 0;
}

int deliv_reporter_provider(const char *org_name, const char *email)
{
	static const struct {
		const char *domain;
		int provider;
	} domains[] = {
		{ "google.com", DELIV_GMAIL },      { "gmail.com", DELIV_GMAIL },     { "googlemail.com", DELIV_GMAIL },
		{ "microsoft.com", DELIV_OUTLOOK }, { "outlook.com", DELIV_OUTLOOK }, { "hotmail.com", DELIV_OUTLOOK },
		{ "live.com", DELIV_OUTLOOK },      { "yahoo.com", DELIV_YAHOO },     { "yahoo.net", DELIV_YAHOO },
		{ "yahooinc.com", DELIV_YAHOO },    { "aol.com", DELIV_YAHOO },       { "icloud.com", DELIV_ICLOUD },
		{ "apple.com", DELIV_ICLOUD },      { "me.com", DELIV_ICLOUD },
	};
	static const struct {
		const char *word;
		int provider;
	} orgs[] = {
		{ "google", DELIV_GMAIL }, { "microsoft", DELIV_OUTLOOK }, { "outlook", DELIV_OUTLOOK },
		{ "hotmail", DELIV_OUTLOOK }, { "yahoo", DELIV_YAHOO }, { "aol", DELIV_YAHOO },
		{ "apple", DELIV_ICLOUD }, { "icloud", DELIV_ICLOUD },
	};
	const char *at = email ? strrchr(email, '@') : NULL;
	if (at) {
		char dom[256];
		str_copy(dom, at + 1, sizeof dom);
		dom[strcspn(dom, "> \t")] = '\0';
		for (size_t i = 0; i < ARRAY_LEN(domains); i++)
			if (under(dom, domains[i].domain))
				return domains[i].provider;
	}
	if (org_name) {
		for (size_t i = 0; i < ARRAY_LEN(domains); i++)
			if (under(org_name, domains[i].domain))
				return domains[i].provider;
		for (size_t i = 0; i < ARRAY_LEN(orgs); i++)
			if (has_word(org_name, orgs[i].word))
				return orgs[i].provider;
	}
	return -1;
}

int deliv_is_reputation(const struct deliv_params *p, const char *status, const char *reply)
{
	if (status && (!strncmp(status, "5.7.", 4) || !strncmp(status, "4.7.", 4)))
		return 1;
	for (size_t i = 0; reply && i < p->npatterns; i++) {
		size_t n = strlen(p->patterns[i]);
		if (n == 0)
			continue;
		for (const char *q = reply; *q; q++)
			if (!strncasecmp(q, p->patterns[i], n))
				return 1;
	}
	return 0;
}

struct deliv *deliv_new(int64_t now, const struct deliv_params *p)
{
	struct deliv *d = xcalloc(1, sizeof *d);
	d->p = *p;
	if (d->p.days < 1)
		d->p.days = 1;
	if (d->p.days > DELIV_MAX_DAYS)
		d->p.days = DELIV_MAX_DAYS;
	if (now < 0)
		now = 0;
	d->ndays = (size_t)d->p.days;
	d->day0 = now - now % 86400 - (int64_t)(d->ndays - 1) * 86400;
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		d->prov[i].name = provider_names[i];
		d->prov[i].days = xcalloc(d->ndays, sizeof *d->prov[i].days);
		d->prov[i].routes = xstrdup("");
		d->prov[i].last_report_day = -1;
	}
	return d;
}

void deliv_free(struct deliv *d)
{
	if (!d)
		return;
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		struct deliv_stat *s = &d->prov[i];
		free(s->days);
		free(s->routes);
		for (size_t k = 0; k < s->nreasons; k++) {
			free(s->reasons[k].outcome);
			free(s->reasons[k].status);
			free(s->reasons[k].reply);
		}
	}
	free(d);
}

/* The index of the day holding t, or -1 outside the window. */
static long day_index(const struct deliv *d, int64_t t)
{
	int64_t i;
	if (t < d->day0)
		return -1;
	i = (t - d->day0) / 86400;
	return i < (int64_t)d->ndays ? (long)i : -1;
}

/* Adds each name of the comma-separated list to s->routes once. */
static void routes_merge(struct deliv_stat *s, const char *routes)
{
	const char *p = routes;
	while (p && *p) {
		size_t n = strcspn(p, ",");
		int found = 0;
		const char *q = s->routes;
		while (n && *q) {
			size_t m = strcspn(q, ",");
			if (m == n && !strncmp(q, p, n))
				found = 1;
			q += m + (q[m] == ',');
		}
		if (n && !found && strlen(s->routes) < 200) {
			char *r = xasprintf("%s%s%.*s", s->routes, *s->routes ? "," : "", (int)n, p);
			free(s->routes);
			s->routes = r;
		}
		p += n + (p[n] == ',');
	}
}

void deliv_add_ledger(struct deliv *d, const char *provider, int64_t day, const char *outcome, int64_t count,
		      const char *routes)
{
	int pi = deliv_provider_index(provider);
	long di = day_index(d, day);
	struct deliv_stat *s;
	struct deliv_day *dd;
	if (pi < 0 || di < 0 || !outcome)
		return;
	s = &d->prov[pi];
	dd = &s->days[di];
	if (!strcmp(outcome, "delivered"))
		dd->delivered = sat_add(dd->delivered, count);
	else if (!strcmp(outcome, "deferred"))
		dd->deferred = sat_add(dd->deferred, count);
	else
		dd->bounced = sat_add(dd->bounced, count);
	dd->sent = sat_add(dd->sent, count);
	routes_merge(s, routes);
}

void deliv_add_reason(struct deliv *d, const char *provider, const char *outcome, const char *status, int code,
		      int64_t count, const char *reply)
{
	int pi = deliv_provider_index(provider);
	struct deliv_stat *s;
	struct deliv_reason *r;
	if (pi < 0 || !outcome)
		return;
	s = &d->prov[pi];
	if (s->nreasons == DELIV_MAX_REASONS)
		return;
	r = &s->reasons[s->nreasons++];
	r->outcome = xstrdup(outcome);
	r->status = xstrdup(status ? status : "");
	r->reply = xstrndup(reply ? reply : "", reply ? strnlen(reply, 300) : 0);
	r->code = code;
	r->count = count < 0 ? 0 : count;
	r->reputation = deliv_is_reputation(&d->p, status, reply);
}

void deliv_add_attempt(struct deliv *d, const char *provider, const char *outcome, const char *status,
		       const char *reply)
{
	int pi = deliv_provider_index(provider);
	struct deliv_stat *s;
	if (pi < 0 || !outcome)
		return;
	s = &d->prov[pi];
	if (strcmp(outcome, "delivered") && deliv_is_reputation(&d->p, status, reply)) {
		s->run++;
		if (!s->run_broken)
			s->current_run = s->run; /* newest first: the first run met is the current one */
		if (s->run > s->longest_run)
			s->longest_run = s->run;
	} else {
		s->run = 0;
		s->run_broken = 1;
	}
}

void deliv_add_report(struct deliv *d, const char *org_name, const char *email, int64_t begin, int64_t end,
		      const char *header_from, int64_t messages, int64_t pass, const char *const *domains,
		      size_t ndomains)
{
	int pi = deliv_reporter_provider(org_name, email);
	struct deliv_stat *s;
	long di;
	int ours = 0;
	if (pi < 0)
		return;
	s = &d->prov[pi];
	if (end > begin) {
		int64_t last = end - 1;
		last -= last % 86400;
		if (last > s->last_report_day)
			s->last_report_day = last;
	}
	for (size_t i = 0; header_from && i < ndomains; i++)
		if (!strcasecmp(header_from, domains[i]))
			ours = 1;
	di = day_index(d, begin);
	if (!ours || di < 0)
		return;
	s->days[di].reported = sat_add(s->days[di].reported, messages);
	s->days[di].reported_pass = sat_add(s->days[di].reported_pass, pass);
	s->days[di].reports++;
}

int deliv_finish(struct deliv *d)
{
	int flags = 0;
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		struct deliv_stat *s = &d->prov[i];
		int reports = 0;
		memset(&s->total, 0, sizeof s->total);
		s->compared_accepted = 0;
		for (size_t k = 0; k < d->ndays; k++) {
			struct deliv_day *dd = &s->days[k];
			int64_t day = d->day0 + (int64_t)k * 86400;
			s->total.sent = sat_add(s->total.sent, dd->sent);
			s->total.delivered = sat_add(s->total.delivered, dd->delivered);
			s->total.deferred = sat_add(s->total.deferred, dd->deferred);
			s->total.bounced = sat_add(s->total.bounced, dd->bounced);
			s->total.reported = sat_add(s->total.reported, dd->reported);
			s->total.reported_pass = sat_add(s->total.reported_pass, dd->reported_pass);
			s->total.reports += dd->reports;
			reports += dd->reports;
			if (s->last_report_day >= 0 && day <= s->last_report_day)
				s->compared_accepted = sat_add(s->compared_accepted, dd->delivered);
		}
		s->silent_drop = reports > 0 && s->compared_accepted >= d->p.min_messages &&
				 (double)s->total.reported < d->p.min_ratio * (double)s->compared_accepted;
		s->reports_missing = reports == 0 && i != DELIV_OTHER && s->total.delivered >= d->p.min_messages;
		s->reputation = d->p.reputation_run > 0 && s->longest_run >= d->p.reputation_run;
		flags += s->silent_drop + s->reports_missing + s->reputation;
	}
	return flags;
}

void deliv_flag_text(const struct deliv *d, const struct deliv_stat *s, const char *which, char *buf, size_t n)
{
	if (!strcmp(which, "silent_drop")) {
		snprintf(buf, n,
			 "%s's DMARC reports count %lld messages from our domains, %.0f%% of the %lld it accepted up "
			 "to its newest report (threshold %.0f%%): mail may be dropped silently",
			 s->name, (long long)s->total.reported,
			 s->compared_accepted ? 100.0 * (double)s->total.reported / (double)s->compared_accepted : 0.0,
			 (long long)s->compared_accepted, 100.0 * d->p.min_ratio);
	} else if (!strcmp(which, "reports_missing")) {
		snprintf(buf, n, "%s accepted %lld messages in %zu days and sent no DMARC report about our domains",
			 s->name, (long long)s->total.delivered, d->ndays);
	} else {
		snprintf(buf, n, "%lld consecutive reputation refusals from %s (threshold %lld; %lld in a row now)",
			 (long long)s->longest_run, s->name, (long long)d->p.reputation_run, (long long)s->current_run);
	}
}
