/*
 * pages: the dashboard's built-in pages, one function each (see web.h):
 *
 *   /status      version, uptime, host, domains, listeners, connections now,
 *                messages since start by outcome, check results since start
 *   /auth        SPF, DKIM and DMARC verdicts per day from the store, as a
 *                timeline and stacked bars, and the latest verdicts
 *   /doctor      the last `postern doctor --save` (DATA_DIR/doctor/latest.json)
 *   /selftest    the self-test reports (DATA_DIR/selftest/TOKEN.json), newest
 *                first, with their scores over time
 *
 * Trust: verdicts come from mail (HELO names, addresses are the sender's
 * choice) and the report files hold the same; every such value goes through
 * html_printf's %s. Work per page is bounded: PAGE_MAX_VERDICTS rows,
 * PAGE_MAX_FILE bytes per file, PAGE_MAX_SELFTESTS reports shown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "config.h"
#include "lib/json.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "store/store.h"
#include "web/html.h"
#include "web/svg.h"
#include "web/web.h"

#define PAGE_MAX_VERDICTS 500000
#define PAGE_MAX_DAYS 365
#define PAGE_RECENT 20
#define PAGE_MAX_FILE (1024 * 1024)
#define PAGE_MAX_SELFTESTS 20
#define PAGE_MAX_SELFTEST_FILES 10000

static void fmt_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t < 0 || t > 253402300799LL || !gmtime_r(&tt, &tm)) {
		str_copy(buf, "?", n);
		return;
	}
	strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm);
}

static void fmt_duration(int64_t s, char *buf, size_t n)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, n, "%lldd %lldh %lldm", (long long)(s / 86400), (long long)(s % 86400 / 3600),
			 (long long)(s % 3600 / 60));
	else if (s >= 3600)
		snprintf(buf, n, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, n, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
}

/* Reads a whole small file; NULL (errno set) if absent or too big. */
static char *read_small(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf;
	ssize_t r;
	size_t got = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PAGE_MAX_FILE) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size && (r = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}

static const char *status_class(const char *s)
{
	if (!s)
		return "muted";
	if (!strcmp(s, "pass") || !strcmp(s, "ok"))
		return "pass";
	if (!strcmp(s, "warn"))
		return "warn";
	return "fail";
}

/* ---- /status ---------------------------------------------------------------- */

struct collect {
	const char *names[16];
	double values[16];
	size_t n;
};

static void collect_series(void *arg, const char *value, double v)
{
	struct collect *c = arg;
	if (c->n < 16) {
		c->names[c->n] = value;
		c->values[c->n++] = v;
	}
}

static void listeners_row(struct evbuffer *out, const char *what, const struct listen_addr *la, size_t n)
{
	html_printf(out, "<tr><th>%s</th><td>", what);
	if (n == 0)
		evbuffer_add_printf(out, "<span class=\"muted\">none</span>");
	for (size_t i = 0; i < n; i++)
		html_printf(out, strchr(la[i].host, ':') ? "%s[%s]:%s" : "%s%s:%s", i ? ", " : "", la[i].host, la[i].port);
	evbuffer_add(out, "</td></tr>", 10);
}

/* The outcomes of postern_smtp_messages_total, grouped as people count. */
static const char *outcome_group(const char *o)
{
	if (!strcmp(o, "delivered") || !strcmp(o, "quarantined"))
		return "delivered";
	if (!strncmp(o, "deferred", 8))
		return "deferred";
	return "refused";
}

static void page_status(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	const struct config *c = ctx->cfg;
	char started[64], up[64];
	struct collect msgs = { 0 }, conns = { 0 };
	double received = 0, delivered = 0, refused = 0, deferred = 0;
	(void)arg;

	fmt_time(ctx->started, started, sizeof started);
	fmt_duration(ctx->now - ctx->started, up, sizeof up);
	metrics_each("postern_smtp_messages_total", collect_series, &msgs);
	metrics_each("postern_smtp_connections_total", collect_series, &conns);
	for (size_t i = 0; i < msgs.n; i++) {
		const char *g = outcome_group(msgs.names[i]);
		received += msgs.values[i];
		if (!strcmp(g, "delivered"))
			delivered += msgs.values[i];
		else if (!strcmp(g, "deferred"))
			deferred += msgs.values[i];
		else
			refused += msgs.values[i];
	}
	html_printf(out,
		    "<table id=\"status\"><tr><th>Version</th><td>postern %s</td></tr>"
		    "<tr><th>Started</th><td>%s (up %s)</td></tr>"
		    "<tr><th>Host name</th><td>%s</td></tr><tr><th>Domains</th><td>",
		    POSTERN_VERSION, started, up, c->hostname);
	for (size_t i = 0; i < c->ndomains; i++)
		html_printf(out, "%s%s", i ? ", " : "", c->domains[i]);
	evbuffer_add(out, "</td></tr>", 10);
	listeners_row(out, "SMTP listeners", c->smtp_listen, c->nsmtp_listen);
	listeners_row(out, "Web listeners", c->web_listen, c->nweb_listen);
	html_printf(out, "<tr><th>STARTTLS</th><td>%s</td></tr>",
		    *c->tls_certificate ? "offered" : "not offered (no [tls] certificate)");
	html_printf(out, "<tr><th>Connections now</th><td id=\"connections\">%.0f</td></tr>",
		    metrics_value("postern_smtp_sessions", NULL));
	for (size_t i = 0; i < conns.n; i++)
		html_printf(out, "<tr><th>Connections %s since start</th><td>%.0f</td></tr>", conns.names[i],
			    conns.values[i]);
	html_printf(out,
		    "<tr><th>Messages received since start</th><td id=\"received\">%.0f</td></tr>"
		    "<tr><th>delivered</th><td id=\"delivered\">%.0f</td></tr>"
		    "<tr><th>refused</th><td id=\"refused\">%.0f</td></tr>"
		    "<tr><th>deferred (4xx)</th><td id=\"deferred\">%.0f</td></tr></table>",
		    received, delivered, refused, deferred);

	/* Messages by outcome: one bar each, for the outcomes that happened. */
	{
		const char *names[16];
		double values[16];
		size_t n = 0;
		for (size_t i = 0; i < msgs.n; i++) {
			if (msgs.values[i] > 0 || !strcmp(msgs.names[i], "delivered")) {
				names[n] = msgs.names[i];
				values[n++] = msgs.values[i];
			}
		}
		{
			struct svg_series s = { "messages", values, "#1565c0" };
			struct svg_chart ch = { .title = "Messages since start, by outcome", .y_label = "messages",
						.npoints = n, .labels = names, .series = &s, .nseries = 1, .height = 220 };
			svg_stacked_bars(out, &ch);
		}
	}
	/* Check results since start: one bar per check, one colour per result. */
	{
		static const char *const checks[] = { "postern_spf_results_total", "postern_dkim_results_total",
						      "postern_dmarc_results_total" };
		static const char *const labels[] = { "SPF", "DKIM (signatures)", "DMARC" };
		static const char *const results[] = { "pass", "fail", "softfail", "neutral", "none", "policy",
						       "temperror", "permerror" };
		static const char *const colors[] = { "#2e7d32", "#c62828", "#ef6c00", "#90a4ae", "#cfd8dc", "#6a1b9a",
						      "#f9a825", "#5d4037" };
		double v[ARRAY_LEN(results)][ARRAY_LEN(checks)];
		struct svg_series s[ARRAY_LEN(results)];
		struct svg_chart ch = { .title = "Check results since start", .y_label = "results", .npoints = 3,
					.labels = labels, .series = s, .nseries = ARRAY_LEN(results) };
		for (size_t r = 0; r < ARRAY_LEN(results); r++) {
			for (size_t k = 0; k < ARRAY_LEN(checks); k++)
				v[r][k] = metrics_value(checks[k], results[r]);
			s[r].name = results[r];
			s[r].values = v[r];
			s[r].color = colors[r];
		}
		svg_stacked_bars(out, &ch);
	}
	evbuffer_add_printf(out, "<p class=\"muted\">Counters since the daemon started; "
				 "<a href=\"/metrics\">/metrics</a> has them all for Prometheus.</p>");
}

/* ---- /auth -------------------------------------------------------------------- */

enum { R_PASS, R_FAIL, R_SOFTFAIL, R_NEUTRAL, R_NONE, R_TEMPERROR, R_PERMERROR, R_POLICY, R_UNCHECKED, R_COUNT };
static const char *const result_names[R_COUNT] = { "pass", "fail", "softfail", "neutral", "none",
						   "temperror", "permerror", "policy", "not checked" };
static const char *const result_colors[R_COUNT] = { "#2e7d32", "#c62828", "#ef6c00", "#90a4ae", "#cfd8dc",
						    "#f9a825", "#5d4037", "#6a1b9a", "#eceff1" };

static int result_index(const char *r)
{
	if (!r || !*r)
		return R_UNCHECKED;
	for (int i = 0; i < R_UNCHECKED; i++)
		if (!strcmp(result_names[i], r))
			return i;
	return R_PERMERROR; /* something we do not know: not a pass */
}

/* A message's DKIM result from "d=a s=b a=c pass; d=..." : pass if one
 * signature passed, else the first one's result. */
static int dkim_index(const char *dkim)
{
	char first[16] = "";
	const char *p = dkim;
	if (!dkim || !*dkim)
		return R_NONE;
	while (p && *p) {
		const char *end = strchr(p, ';'), *sp;
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char res[16];
		sp = p + n;
		while (sp > p && sp[-1] != ' ')
			sp--;
		if ((size_t)(p + n - sp) < sizeof res) {
			memcpy(res, sp, (size_t)(p + n - sp));
			res[p + n - sp] = '\0';
			if (!strcmp(res, "pass"))
				return R_PASS;
			if (!*first)
				str_copy(first, res, sizeof first);
		}
		p = end ? end + 1 : NULL;
	}
	return result_index(*first ? first : NULL);
}

struct recent {
	int64_t received;
	char *ip, *helo, *from, *header_from, *spf, *dkim, *dmarc, *disposition;
};

struct auth_agg {
	int64_t day0;   /* Unix time of the first day's start */
	size_t ndays;
	double (*spf)[R_COUNT], (*dkim)[R_COUNT], (*dmarc)[R_COUNT];
	double *total;
	size_t rows;
	int truncated;
	struct recent recent[PAGE_RECENT];
	size_t nrecent, next; /* a ring of the latest */
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void recent_clear(struct recent *r)
{
	free(r->ip);
	free(r->helo);
	free(r->from);
	free(r->header_from);
	free(r->spf);
	free(r->dkim);
	free(r->dmarc);
	free(r->disposition);
	memset(r, 0, sizeof *r);
}

static int auth_visit(void *arg, const struct store_verdict *v)
{
	struct auth_agg *a = arg;
	int64_t d = (v->received - a->day0) / 86400;
	struct recent *r;
	if (++a->rows > PAGE_MAX_VERDICTS) {
		a->truncated = 1;
		return 1;
	}
	if (d < 0 || (size_t)d >= a->ndays)
		return 0;
	a->total[d]++;
	a->spf[d][result_index(v->spf_result)]++;
	a->dkim[d][dkim_index(v->dkim)]++;
	a->dmarc[d][result_index(v->dmarc_result)]++;
	r = &a->recent[a->next];
	recent_clear(r);
	r->received = v->received;
	r->ip = dup_or_null(v->source_ip);
	r->helo = dup_or_null(v->helo);
	r->from = dup_or_null(v->envelope_from);
	r->header_from = dup_or_null(v->header_from);
	r->spf = dup_or_null(v->spf_result);
	r->dkim = dup_or_null(v->dkim);
	r->dmarc = dup_or_null(v->dmarc_result);
	r->disposition = dup_or_null(v->disposition);
	a->next = (a->next + 1) % PAGE_RECENT;
	if (a->nrecent < PAGE_RECENT)
		a->nrecent++;
	return 0;
}

static void result_bars(struct evbuffer *out, const struct auth_agg *a, double (*counts)[R_COUNT], const char *title,
			const char *const *labels)
{
	struct svg_series s[R_COUNT];
	double *cols[R_COUNT];
	struct svg_chart ch = { .title = title, .y_label = "messages", .npoints = a->ndays, .labels = labels,
				.series = s, .nseries = 0 };
	for (int r = 0; r < R_COUNT; r++) {
		int any = 0;
		cols[r] = xcalloc(a->ndays ? a->ndays : 1, sizeof(double));
		for (size_t d = 0; d < a->ndays; d++) {
			cols[r][d] = counts[d][r];
			any |= counts[d][r] > 0;
		}
		if (!any && r != R_PASS && r != R_FAIL)
			continue; /* keep the legend to what happened */
		s[ch.nseries].name = result_names[r];
		s[ch.nseries].values = cols[r];
		s[ch.nseries].color = result_colors[r];
		ch.nseries++;
	}
	svg_stacked_bars(out, &ch);
	for (int r = 0; r < R_COUNT; r++)
		free(cols[r]);
}

static void page_auth(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	long days = web_query_long(ctx, "days", 30, 1, PAGE_MAX_DAYS);
	struct auth_agg a = { 0 };
	char **labels;
	int64_t *times;
	double *pass, *fail;
	int rc;
	(void)arg;

	a.ndays = (size_t)days;
	a.day0 = ctx->now - ctx->now % 86400 - (int64_t)(days - 1) * 86400;
	a.spf = xcalloc(a.ndays, sizeof *a.spf);
	a.dkim = xcalloc(a.ndays, sizeof *a.dkim);
	a.dmarc = xcalloc(a.ndays, sizeof *a.dmarc);
	a.total = xcalloc(a.ndays, sizeof *a.total);
	rc = store_verdict_list(ctx->store, a.day0, auth_visit, &a);

	evbuffer_add_printf(out, "<p>What SPF, DKIM and DMARC said of each message received, per day (UTC). Show ");
	{
		static const long choices[] = { 7, 30, 90, 365 };
		for (size_t i = 0; i < ARRAY_LEN(choices); i++)
			evbuffer_add_printf(out, "%s<a href=\"/auth?days=%ld\"%s>%ld days</a>", i ? ", " : "", choices[i],
					    choices[i] == days ? " class=\"on\"" : "", choices[i]);
	}
	evbuffer_add_printf(out, ".</p>");
	if (rc != STORE_OK && !a.truncated)
		evbuffer_add_printf(out, "<p class=\"err\">The store could not be read; see the log.</p>");
	if (a.truncated)
		evbuffer_add_printf(out, "<p class=\"warn\">More than %d verdicts: only the first are counted.</p>",
				    PAGE_MAX_VERDICTS);

	labels = xcalloc(a.ndays, sizeof *labels);
	times = xcalloc(a.ndays, sizeof *times);
	pass = xcalloc(a.ndays, sizeof *pass);
	fail = xcalloc(a.ndays, sizeof *fail);
	for (size_t d = 0; d < a.ndays; d++) {
		time_t t = (time_t)(a.day0 + (int64_t)d * 86400);
		struct tm tm;
		char buf[16];
		gmtime_r(&t, &tm);
		strftime(buf, sizeof buf, "%m-%d", &tm);
		labels[d] = xstrdup(buf);
		times[d] = (int64_t)t;
		pass[d] = a.dmarc[d][R_PASS];
		fail[d] = a.dmarc[d][R_FAIL];
	}
	{
		struct svg_series s[3] = { { "messages", a.total, "#1565c0" },
					   { "DMARC pass", pass, "#2e7d32" },
					   { "DMARC fail", fail, "#c62828" } };
		struct svg_chart ch = { .title = "Messages and DMARC per day", .y_label = "messages",
					.npoints = a.ndays, .times = times, .series = s, .nseries = 3 };
		svg_line_chart(out, &ch, 1);
	}
	result_bars(out, &a, a.spf, "SPF (MAIL FROM) per day", (const char *const *)labels);
	result_bars(out, &a, a.dkim, "DKIM per day (pass if one signature passed)", (const char *const *)labels);
	result_bars(out, &a, a.dmarc, "DMARC per day", (const char *const *)labels);

	evbuffer_add_printf(out, "<h2>Per day</h2><table id=\"days\"><tr><th>day</th><th>messages</th><th>SPF pass</th>"
				 "<th>DKIM pass</th><th>DMARC pass</th><th>DMARC fail</th></tr>");
	for (size_t d = a.ndays; d-- > 0;) {
		if (a.total[d] == 0)
			continue;
		html_printf(out, "<tr><td>%s</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td></tr>",
			    labels[d], a.total[d], a.spf[d][R_PASS], a.dkim[d][R_PASS], a.dmarc[d][R_PASS],
			    a.dmarc[d][R_FAIL]);
	}
	evbuffer_add_printf(out, "</table>");

	evbuffer_add_printf(out, "<h2>Latest messages</h2><table id=\"recent\"><tr><th>received</th><th>client</th>"
				 "<th>HELO</th><th>MAIL FROM</th><th>From domain</th><th>SPF</th><th>DKIM</th>"
				 "<th>DMARC</th><th>disposition</th></tr>");
	for (size_t i = 0; i < a.nrecent; i++) {
		struct recent *r = &a.recent[(a.next + PAGE_RECENT - 1 - i) % PAGE_RECENT];
		char when[64];
		fmt_time(r->received, when, sizeof when);
		html_printf(out,
			    "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td>"
			    "<td>%s</td><td class=\"%s\">%s</td><td>%s</td></tr>",
			    when, r->ip ? r->ip : "", r->helo ? r->helo : "", r->from ? r->from : "",
			    r->header_from ? r->header_from : "", status_class(r->spf), r->spf ? r->spf : "-",
			    r->dkim ? r->dkim : "-", status_class(r->dmarc), r->dmarc ? r->dmarc : "-",
			    r->disposition ? r->disposition : "-");
	}
	evbuffer_add_printf(out, "</table>");
	if (a.nrecent == 0)
		evbuffer_add_printf(out, "<p class=\"muted\">No message in this period.</p>");

	for (size_t i = 0; i < PAGE_RECENT; i++)
		recent_clear(&a.recent[i]);
	for (size_t d = 0; d < a.ndays; d++)
		free(labels[d]);
	free(labels);
	free(times);
	free(pass);
	free(fail);
	free(a.spf);
	free(a.dkim);
	free(a.dmarc);
	free(a.total);
}

/* ---- /doctor ------------------------------------------------------------------ */

static void page_doctor(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	char *path = xasprintf("%s/doctor/latest.json", ctx->cfg->data_dir), err[160], when[64];
	size_t len;
	char *text = read_small(path, &len);
	struct json *j;
	const struct json *checks, *publish, *addrs;
	double counts[3] = { 0, 0, 0 };
	(void)arg;

	if (!text) {
		html_printf(out,
			    "<p>No report yet. Run <code>postern doctor --save</code> (as root or the [server] user); "
			    "its report is kept in <code>%s</code> and shown here.</p>",
			    path);
		free(path);
		return;
	}
	j = json_parse(text, len, err, sizeof err);
	free(text);
	if (!j || j->type != JSON_OBJECT) {
		html_printf(out, "<p class=\"err\">%s is not a doctor report: %s.</p>", path, j ? "not an object" : err);
		json_free(j);
		free(path);
		return;
	}
	fmt_time((int64_t)json_num(json_get(j, "generated"), -1), when, sizeof when);
	html_printf(out, "<table><tr><th>Domain</th><td>%s</td></tr><tr><th>Host</th><td>%s</td></tr>",
		    json_str(json_get(j, "domain")) ? json_str(json_get(j, "domain")) : "?",
		    json_str(json_get(j, "hostname")) ? json_str(json_get(j, "hostname")) : "?");
	addrs = json_get(j, "addresses");
	evbuffer_add_printf(out, "<tr><th>Addresses</th><td>");
	for (size_t i = 0; i < json_len(addrs); i++)
		html_printf(out, "%s%s", i ? ", " : "", json_str(json_at(addrs, i)) ? json_str(json_at(addrs, i)) : "?");
	html_printf(out, "</td></tr><tr><th>Checked</th><td>%s</td></tr></table>", when);

	checks = json_get(j, "checks");
	for (size_t i = 0; i < json_len(checks); i++) {
		const char *st = json_str(json_get(json_at(checks, i), "status"));
		counts[st && !strcmp(st, "pass") ? 0 : st && !strcmp(st, "warn") ? 1 : 2]++;
	}
	{
		static const char *const labels[] = { "pass", "warn", "fail" };
		double p[3] = { counts[0], 0, 0 }, w[3] = { 0, counts[1], 0 }, f[3] = { 0, 0, counts[2] };
		struct svg_series s[3] = { { "pass", p, "#2e7d32" }, { "warn", w, "#ef6c00" }, { "fail", f, "#c62828" } };
		struct svg_chart ch = { .title = "Checks by verdict", .y_label = "checks", .npoints = 3,
					.labels = labels, .series = s, .nseries = 3, .height = 220 };
		svg_stacked_bars(out, &ch);
	}
	evbuffer_add_printf(out, "<table id=\"checks\"><tr><th>verdict</th><th>check</th><th>found</th><th>fix</th></tr>");
	for (size_t i = 0; i < json_len(checks); i++) {
		const struct json *c = json_at(checks, i);
		const char *st = json_str(json_get(c, "status")), *fix = json_str(json_get(c, "fix"));
		html_printf(out, "<tr><td class=\"%s\">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", status_class(st),
			    st ? st : "?", json_str(json_get(c, "check")) ? json_str(json_get(c, "check")) : "?",
			    json_str(json_get(c, "detail")) ? json_str(json_get(c, "detail")) : "", fix ? fix : "");
	}
	evbuffer_add_printf(out, "</table>");
	publish = json_get(j, "publish");
	if (json_len(publish)) {
		evbuffer_add_printf(out, "<h2>Records to publish</h2><pre>");
		for (size_t i = 0; i < json_len(publish); i++)
			html_printf(out, "%s\n", json_str(json_at(publish, i)) ? json_str(json_at(publish, i)) : "");
		evbuffer_add_printf(out, "</pre>");
	}
	json_free(j);
	free(path);
}

/* ---- /selftest -------------------------------------------------------------------- */

struct stfile {
	char *name;
	int64_t mtime;
};

static int by_mtime_desc(const void *a, const void *b)
{
	const struct stfile *x = a, *y = b;
	if (x->mtime != y->mtime)
		return x->mtime > y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int token_name(const char *n)
{
	size_t l = strlen(n);
	return l > 5 && l < 128 && !strcmp(n + l - 5, ".json") && n[0] != '.' &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == l;
}

static void page_selftest(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg)
{
	char *dir = xasprintf("%s/selftest", ctx->cfg->data_dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stfile *files = NULL;
	size_t nfiles = 0, shown;
	struct json *reports[PAGE_MAX_SELFTESTS] = { 0 };
	int64_t times[PAGE_MAX_SELFTESTS];
	double scores[PAGE_MAX_SELFTESTS];
	size_t npoints = 0;
	(void)arg;

	if (!d) {
		html_printf(out,
			    "<p>No self-test yet. Send a message to a self-test address; its report is kept in "
			    "<code>%s</code> and shown here.</p>",
			    dir);
		free(dir);
		return;
	}
	while ((e = readdir(d)) && nfiles < PAGE_MAX_SELFTEST_FILES) {
		struct stat st;
		if (!token_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		files = xrealloc(files, (nfiles + 1) * sizeof *files);
		files[nfiles].name = xstrdup(e->d_name);
		files[nfiles].mtime = (int64_t)st.st_mtime;
		nfiles++;
	}
	closedir(d);
	if (nfiles)
		qsort(files, nfiles, sizeof *files, by_mtime_desc);
	shown = nfiles < PAGE_MAX_SELFTESTS ? nfiles : PAGE_MAX_SELFTESTS;
	for (size_t i = 0; i < shown; i++) {
		char *path = xasprintf("%s/%s", dir, files[i].name), err[160];
		size_t len;
		char *text = read_small(path, &len);
		free(path);
		if (!text)
			continue;
		reports[i] = json_parse(text, len, err, sizeof err);
		free(text);
	}
	/* The chart, oldest first. */
	for (size_t i = shown; i-- > 0;) {
		if (!reports[i] || !json_get(reports[i], "score"))
			continue;
		times[npoints] = (int64_t)json_num(json_get(reports[i], "received"), (double)files[i].mtime);
		scores[npoints++] = json_num(json_get(reports[i], "score"), 0);
	}
	html_printf(out, "<p>%zu report%s in <code>%s</code>; the newest %zu below.</p>", nfiles, nfiles == 1 ? "" : "s",
		    dir, shown);
	{
		struct svg_series s = { "score out of 10", scores, "#1565c0" };
		struct svg_chart ch = { .title = "Self-test scores", .y_label = "score", .npoints = npoints,
					.times = times, .series = &s, .nseries = 1 };
		svg_line_chart(out, &ch, 0);
	}
	for (size_t i = 0; i < shown; i++) {
		const struct json *r = reports[i], *items = json_get(r, "items");
		const char *token = json_str(json_get(r, "token"));
		char when[64];
		double score = json_num(json_get(r, "score"), -1);
		fmt_time((int64_t)json_num(json_get(r, "received"), (double)files[i].mtime), when, sizeof when);
		if (!r) {
			html_printf(out, "<h2>%s</h2><p class=\"err\">Not a self-test report.</p>", files[i].name);
			continue;
		}
		html_printf(out, "<h2 class=\"selftest\">%s &#8212; <span class=\"%s\">%.1f/10</span> <span class=\"muted\">%s</span></h2>",
			    token ? token : files[i].name, score >= 9 ? "pass" : score >= 6 ? "warn" : "fail", score, when);
		evbuffer_add_printf(out, "<table><tr><th>check</th><th>points lost</th><th>found</th><th>fix</th></tr>");
		for (size_t k = 0; k < json_len(items); k++) {
			const struct json *it = json_at(items, k);
			const char *fix = json_str(json_get(it, "fix"));
			double pts = json_num(json_get(it, "points"), 0);
			html_printf(out, "<tr><td>%s</td><td class=\"%s\">%.1f</td><td>%s</td><td>%s</td></tr>",
				    json_str(json_get(it, "check")) ? json_str(json_get(it, "check")) : "?",
				    pts > 0 ? "fail" : "pass", pts,
				    json_str(json_get(it, "what")) ? json_str(json_get(it, "what")) : "", fix ? fix : "");
		}
		evbuffer_add_printf(out, "</table>");
	}
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].name);
	for (size_t i = 0; i < shown; i++)
		json_free(reports[i]);
	free(files);
	free(dir);
}

void web_pages_register(struct web *w)
{
	web_page_add(w, "/status", "Status", page_status, NULL);
	web_page_add(w, "/auth", "Authentication", page_auth, NULL);
	web_page_add(w, "/doctor", "Doctor", page_doctor, NULL);
	web_page_add(w, "/selftest", "Self-tests", page_selftest, NULL);
	web_pages_mail_register(w);
}
