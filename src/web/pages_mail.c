/*
 * pages_mail: the dashboard's pages about mail going out and what others
 * report of it (see web.h for the page contract):
 *
 *   /queue           recipients in the outbound queue by state and domain,
 *                    and the queue's outcomes since start (metrics)
 *   /deliverability  per provider and day: sent, delivered, deferred,
 *                    bounced, DMARC-reported (report/deliverability.h), the
 *                    reasons and the silent-drop flags, with charts
 *   /reports         DMARC aggregate and TLS report timelines per day
 *   /greylist        graylisting decisions since start and the tables' size
 *
 * Trust: domains, replies and reporter names come from other parties;
 * every such value goes through html_printf's %s. Work per page is bounded:
 * SQL aggregates with LIMIT (store.h), PAGE_QUEUE_ROWS queue groups,
 * deliv_load()'s bounds, PAGE_MAIL_MAX_DAYS days.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "config.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "report/deliverability.h"
#include "store/store.h"
#include "web/html.h"
#include "web/svg.h"
#include "web/web.h"

#define PAGE_QUEUE_ROWS 100
#define PAGE_MAIL_MAX_DAYS 366
#define PAGE_REPORT_ROWS 20000

static void day_label(int64_t t, char *buf, size_t n, const char *fmt)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t < 0 || t > 253402300799LL || !gmtime_r(&tt, &tm))
		str_copy(buf, "?", n);
	else
		strftime(buf, n, fmt, &tm);
}

static void days_choice(struct evbuffer *out, const char *path, long days)
{
	static const long choices[] = { 7, 30, 90, 365 };
	evbuffer_add_printf(out, "<p>Show ");
	for (size_t i = 0; i < ARRAY_LEN(choices); i++)
		evbuffer_add_printf(out, "%s<a href=\"%s?days=%ld\"%s>%ld days</a>", i ? ", " : "", path, choices[i],
				    choices[i] == days ? " class=\"on\"" : "", choices[i]);
	evbuffer_add_printf(out, " (UTC days).</p>");
}

/* ---- /queue ---- */

static int queue_row(void *arg, const struct store_queue_domain *d)
{
	struct evbuffer *out = arg;
	char when[32];
	day_label(d->oldest, when, sizeof when, "%Y-%m-%d %H:%M");
	html_printf(out, "<tr><td class=\"%s\">%s</td><td>%s</td><td>%lld</td><td>%s</td><td>%lld</td><td>%s</td></tr>",
		    !strcmp(d->state ? d->state : "", "failed") ? "fail" : !strcmp(d->state ? d->state : "", "held") ? "warn" : "muted",
		    d->state ? d->state : "?", d->domain ? d->domain : "?", (long long)d->rcpts, when,
		    (long long)d->max_attempts, d->last_reply ? d->last_reply : "");
	return 0;
}

static void page_queue(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	struct store_queue_counts q = { 0 };
	static const char *const outcomes[] = { "delivered", "deferred", "bounced" };
	static const char *const colors[] = { "#2e7d32", "#ef6c00", "#c62828" };
	double v[3][3] = { { 0 } };
	struct svg_series s[3];
	(void)arg;

	if (store_queue_counts(ctx->store, &q) != STORE_OK)
		evbuffer_add_printf(out, "<p class=\"err\">The store could not be read; see the log.</p>");
	evbuffer_add_printf(out,
			    "<table id=\"queue-counts\"><tr><th>Messages queued</th><td id=\"queue-messages\">%lld</td></tr>"
			    "<tr><th>Recipients pending</th><td id=\"queue-pending\">%lld</td></tr>"
			    "<tr><th>held</th><td>%lld</td></tr><tr><th>failed (bounce to send)</th><td>%lld</td></tr>"
			    "<tr><th>delivered, bounced (of messages still queued)</th><td>%lld, %lld</td></tr></table>",
			    (long long)q.messages, (long long)q.pending, (long long)q.held, (long long)q.failed,
			    (long long)q.delivered, (long long)q.bounced);
	for (int i = 0; i < 3; i++) {
		v[i][i] = metrics_value("postern_queue_recipients_total", outcomes[i]);
		s[i] = (struct svg_series){ outcomes[i], v[i], colors[i] };
	}
	{
		struct svg_chart ch = { .title = "Recipient results since start", .y_label = "recipients", .npoints = 3,
					.labels = outcomes, .series = s, .nseries = 3, .height = 220 };
		svg_stacked_bars(out, &ch);
	}
	evbuffer_add_printf(out, "<h2>Waiting, by domain</h2><table id=\"queue-domains\"><tr><th>state</th><th>domain</th>"
				 "<th>recipients</th><th>oldest (UTC)</th><th>attempts</th><th>last reply</th></tr>");
	if (store_queue_domains(ctx->store, PAGE_QUEUE_ROWS, queue_row, out) != STORE_OK)
		evbuffer_add_printf(out, "<tr><td colspan=\"6\" class=\"err\">The store could not be read.</td></tr>");
	evbuffer_add_printf(out, "</table><p class=\"muted\">At most %d groups; "
				 "<code>postern queue list</code> shows every message.</p>", PAGE_QUEUE_ROWS);
}

/* ---- /deliverability ---- */

static void page_deliverability(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	long days = web_query_long(ctx, "days", 7, 1, PAGE_MAIL_MAX_DAYS);
	struct deliv_params p;
	struct deliv *d;
	char **labels;
	double *sent[DELIV_NPROVIDERS], *rep[DELIV_NPROVIDERS];
	static const char *const colors[DELIV_NPROVIDERS] = { "#1565c0", "#00838f", "#6a1b9a", "#546e7a", "#ef6c00" };
	struct svg_series ss[DELIV_NPROVIDERS * 2];
	size_t ns = 0, nflags = 0;
	(void)arg;

	deliv_params_default(&p);
	p.days = (int)days;
	d = deliv_new(ctx->now, &p);
	if (deliv_load(d, ctx->store, (const char *const *)ctx->cfg->domains, ctx->cfg->ndomains) < 0)
		evbuffer_add_printf(out, "<p class=\"err\">The store could not be read; see the log.</p>");
	days_choice(out, "/deliverability", days);

	evbuffer_add_printf(out, "<div id=\"flags\">");
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		static const char *const names[] = { "silent_drop", "reports_missing", "reputation" };
		const struct deliv_stat *s = &d->prov[i];
		int set[3] = { s->silent_drop, s->reports_missing, s->reputation };
		for (int f = 0; f < 3; f++) {
			char text[512];
			if (!set[f])
				continue;
			deliv_flag_text(d, s, names[f], text, sizeof text);
			html_printf(out, "<p class=\"fail flag\"><b>%s %s</b>: %s</p>", s->name, names[f], text);
			nflags++;
		}
	}
	if (!nflags)
		evbuffer_add_printf(out, "<p class=\"pass\">No flag: nothing suggests silent drops or a reputation "
					 "problem in this period.</p>");
	evbuffer_add_printf(out, "</div>");

	labels = xcalloc(d->ndays, sizeof *labels);
	for (size_t k = 0; k < d->ndays; k++) {
		char buf[16];
		day_label(d->day0 + (int64_t)k * 86400, buf, sizeof buf, "%m-%d");
		labels[k] = xstrdup(buf);
	}
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		sent[i] = xcalloc(d->ndays, sizeof(double));
		rep[i] = xcalloc(d->ndays, sizeof(double));
		for (size_t k = 0; k < d->ndays; k++) {
			sent[i][k] = (double)d->prov[i].days[k].delivered;
			rep[i][k] = (double)d->prov[i].days[k].reported;
		}
	}
	{
		/* all providers together: always drawn, data or not */
		double *acc = xcalloc(d->ndays, sizeof(double)), *seen = xcalloc(d->ndays, sizeof(double));
		int64_t *times = xcalloc(d->ndays, sizeof *times);
		for (size_t k = 0; k < d->ndays; k++) {
			times[k] = d->day0 + (int64_t)k * 86400;
			for (int i = 0; i < DELIV_NPROVIDERS; i++) {
				acc[k] += sent[i][k];
				seen[k] += rep[i][k];
			}
		}
		{
			struct svg_series two[2] = { { "accepted", acc, "#1565c0" }, { "DMARC-reported", seen, "#2e7d32" } };
			struct svg_chart ch = { .title = "All providers: accepted and DMARC-reported per day",
						.y_label = "messages", .npoints = d->ndays, .times = times, .series = two,
						.nseries = 2 };
			svg_line_chart(out, &ch, 1);
		}
		free(acc);
		free(seen);
		free(times);
	}
	for (int i = 0; i < DELIV_NPROVIDERS; i++)
		if (d->prov[i].total.sent)
			ss[ns++] = (struct svg_series){ d->prov[i].name, sent[i], colors[i] };
	{
		struct svg_chart ch = { .title = "Accepted (delivered) per day, by provider", .y_label = "messages",
					.npoints = d->ndays, .labels = (const char *const *)labels, .series = ss,
					.nseries = ns };
		svg_stacked_bars(out, &ch);
	}
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		const struct deliv_stat *s = &d->prov[i];
		struct svg_series two[2] = { { "accepted", sent[i], "#1565c0" }, { "DMARC-reported", rep[i], "#2e7d32" } };
		struct svg_chart ch = { .y_label = "messages", .npoints = d->ndays, .labels = (const char *const *)labels,
					.series = two, .nseries = 2, .height = 200 };
		char title[96];
		if (!s->total.sent && !s->total.reports)
			continue;
		html_printf(out,
			    "<h2 id=\"p-%s\">%s</h2><table class=\"provider\"><tr><th>sent</th><th>delivered</th>"
			    "<th>deferred</th><th>bounced</th><th>DMARC-reported</th><th>reports</th><th>routes</th></tr>"
			    "<tr><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%d</td><td>%s</td></tr></table>",
			    s->name, s->name, (long long)s->total.sent, (long long)s->total.delivered,
			    (long long)s->total.deferred, (long long)s->total.bounced, (long long)s->total.reported,
			    s->total.reports, *s->routes ? s->routes : "-");
		snprintf(title, sizeof title, "%s: accepted and DMARC-reported per day", s->name);
		ch.title = title;
		svg_line_chart(out, &ch, 0);
		if (s->nreasons) {
			evbuffer_add_printf(out, "<table class=\"reasons\"><tr><th>outcome</th><th>code</th><th>status</th>"
						 "<th>count</th><th>reply</th></tr>");
			for (size_t k = 0; k < s->nreasons; k++) {
				const struct deliv_reason *r = &s->reasons[k];
				html_printf(out, "<tr><td class=\"%s\">%s%s</td><td>%d</td><td>%s</td><td>%lld</td><td>%s</td></tr>",
					    strcmp(r->outcome, "deferred") ? "fail" : "warn",
					    strcmp(r->outcome, "failed") ? r->outcome : "bounced",
					    r->reputation ? " (reputation)" : "", r->code, r->status, (long long)r->count,
					    r->reply);
			}
			evbuffer_add_printf(out, "</table>");
		}
	}
	evbuffer_add_printf(out, "<p class=\"muted\">The rules: <code>postern deliverability --help</code> and "
				 "docs/commands.md.</p>");
	for (int i = 0; i < DELIV_NPROVIDERS; i++) {
		free(sent[i]);
		free(rep[i]);
	}
	for (size_t k = 0; k < d->ndays; k++)
		free(labels[k]);
	free(labels);
	deliv_free(d);
}

/* ---- /reports ---- */

struct rep_agg {
	int64_t day0;
	size_t ndays;
	double *msgs, *pass, *fail, *tls_ok, *tls_fail;
	int64_t rows;
};

static long rep_index(const struct rep_agg *a, int64_t t)
{
	if (t < a->day0 || (t - a->day0) / 86400 >= (int64_t)a->ndays)
		return -1;
	return (long)((t - a->day0) / 86400);
}

static int rep_dmarc(void *arg, const struct store_dmarc_day *r)
{
	struct rep_agg *a = arg;
	long i = rep_index(a, r->begin);
	a->rows++;
	if (i >= 0) {
		a->msgs[i] += (double)r->messages;
		a->pass[i] += (double)r->dmarc_pass;
		a->fail[i] += (double)(r->messages - r->dmarc_pass);
	}
	return 0;
}

static int rep_tls(void *arg, const struct store_tls_day *r)
{
	struct rep_agg *a = arg;
	long i = rep_index(a, r->day);
	if (i >= 0) {
		a->tls_ok[i] += (double)r->success;
		a->tls_fail[i] += (double)r->failure;
	}
	return 0;
}

static int rep_reporter(void *arg, const struct store_dmarc_row *r)
{
	struct evbuffer *out = arg;
	html_printf(out, "<tr><td>%s</td><td>%s</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td></tr>",
		    r->org_name ? r->org_name : "", r->email ? r->email : "", (long long)r->reports,
		    (long long)r->messages, (long long)r->dmarc_pass, (long long)(r->messages - r->dmarc_pass));
	return 0;
}

static void page_reports(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	long days = web_query_long(ctx, "days", 30, 1, PAGE_MAIL_MAX_DAYS);
	struct rep_agg a = { 0 };
	int64_t *times;
	int rc;
	(void)arg;

	a.ndays = (size_t)days;
	a.day0 = ctx->now - ctx->now % 86400 - (int64_t)(days - 1) * 86400;
	a.msgs = xcalloc(a.ndays, sizeof(double));
	a.pass = xcalloc(a.ndays, sizeof(double));
	a.fail = xcalloc(a.ndays, sizeof(double));
	a.tls_ok = xcalloc(a.ndays, sizeof(double));
	a.tls_fail = xcalloc(a.ndays, sizeof(double));
	times = xcalloc(a.ndays, sizeof *times);
	for (size_t k = 0; k < a.ndays; k++)
		times[k] = a.day0 + (int64_t)k * 86400;
	rc = store_dmarc_daily(ctx->store, a.day0, PAGE_REPORT_ROWS, rep_dmarc, &a);
	if (store_tls_daily(ctx->store, a.day0, rep_tls, &a) != STORE_OK || rc != STORE_OK)
		evbuffer_add_printf(out, "<p class=\"err\">The store could not be read; see the log.</p>");
	evbuffer_add_printf(out, "<p>DMARC aggregate reports (RFC 7489) and SMTP TLS reports (RFC 8460) received, "
				 "per day of the period they cover.</p>");
	days_choice(out, "/reports", days);
	{
		struct svg_series s[3] = { { "messages reported", a.msgs, "#1565c0" },
					   { "DKIM or SPF pass", a.pass, "#2e7d32" },
					   { "fail", a.fail, "#c62828" } };
		struct svg_chart ch = { .title = "DMARC reports: messages from our domains and others, per day",
					.y_label = "messages", .npoints = a.ndays, .times = times, .series = s,
					.nseries = 3 };
		svg_line_chart(out, &ch, 1);
	}
	{
		struct svg_series s[2] = { { "TLS sessions ok", a.tls_ok, "#2e7d32" },
					   { "TLS sessions failed", a.tls_fail, "#c62828" } };
		struct svg_chart ch = { .title = "TLS reports: sessions per day", .y_label = "sessions",
					.npoints = a.ndays, .times = times, .series = s, .nseries = 2 };
		svg_line_chart(out, &ch, 1);
	}
	evbuffer_add_printf(out, "<h2>Reporters</h2><table id=\"reporters\"><tr><th>organisation</th><th>contact</th>"
				 "<th>reports</th><th>messages</th><th>pass</th><th>fail</th></tr>");
	store_dmarc_summary(ctx->store, a.day0, STORE_DMARC_BY_REPORTER, rep_reporter, out);
	evbuffer_add_printf(out, "</table>");
	if (a.rows >= PAGE_REPORT_ROWS)
		evbuffer_add_printf(out, "<p class=\"warn\">More than %d report rows: the chart counts the first.</p>",
				    PAGE_REPORT_ROWS);
	free(a.msgs);
	free(a.pass);
	free(a.fail);
	free(a.tls_ok);
	free(a.tls_fail);
	free(times);
}

/* ---- /greylist ---- */

static void page_greylist(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	static const char *const names[] = { "pass", "defer", "exempt" };
	static const char *const colors[] = { "#2e7d32", "#ef6c00", "#90a4ae" };
	struct store_grey_stats g = { 0 };
	double v[3][3] = { { 0 } };
	struct svg_series s[3];
	(void)arg;

	if (store_grey_stats(ctx->store, &g) != STORE_OK)
		evbuffer_add_printf(out, "<p class=\"err\">The store could not be read; see the log.</p>");
	html_printf(out, "<p>Graylisting: <b>%s</b> ([greylist] mode).</p>", ctx->cfg->grey_mode ? ctx->cfg->grey_mode : "off");
	for (int i = 0; i < 3; i++) {
		v[i][i] = metrics_value("postern_greylist_decisions_total", names[i]);
		s[i] = (struct svg_series){ names[i], v[i], colors[i] };
	}
	evbuffer_add_printf(out,
			    "<table id=\"greylist\"><tr><th>Decisions since start: pass</th><td id=\"grey-pass\">%.0f</td></tr>"
			    "<tr><th>defer</th><td id=\"grey-defer\">%.0f</td></tr>"
			    "<tr><th>exempt</th><td id=\"grey-exempt\">%.0f</td></tr>"
			    "<tr><th>Triplets stored</th><td id=\"grey-triplets\">%lld</td></tr>"
			    "<tr><th>of which passed</th><td>%lld</td></tr>"
			    "<tr><th>Allowed automatically</th><td>%lld</td></tr>"
			    "<tr><th>Allowed by the operator</th><td>%lld</td></tr></table>",
			    v[0][0], v[1][1], v[2][2], (long long)g.triplets, (long long)g.passed, (long long)g.allow_auto,
			    (long long)g.allow_manual);
	{
		struct svg_chart ch = { .title = "Graylisting decisions since start", .y_label = "recipients",
					.npoints = 3, .labels = names, .series = s, .nseries = 3, .height = 220 };
		svg_stacked_bars(out, &ch);
	}
	evbuffer_add_printf(out, "<p class=\"muted\"><code>postern greylist list</code> shows the entries.</p>");
}

void web_pages_mail_register(struct web *w)
{
	web_page_add(w, "/queue", "Queue", page_queue, NULL);
	web_page_add(w, "/deliverability", "Deliverability", page_deliverability, NULL);
	web_page_add(w, "/reports", "Reports", page_reports, NULL);
	web_page_add(w, "/greylist", "Graylisting", page_greylist, NULL);
}
