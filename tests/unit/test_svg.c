/*
 * Unit tests for src/web/svg.c and src/web/html.c: hostile text is escaped
 * into well-formed XML (checked with xmlcheck.h), charts of ordinary data
 * have their bars, lines, ticks and legend, and arbitrary numbers (NaN,
 * infinities, negative, huge, no points) still give well-formed SVG.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "unit.h"
#include "web/html.h"
#include "web/svg.h"
#include "xmlcheck.h"

/* The buffer as a NUL-terminated string (the caller frees it). */
static char *take(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return s;
}

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

TEST(html_escape_markup_and_bad_bytes)
{
	struct evbuffer *b = evbuffer_new();
	char *s;
	/* U+FFFE is not an XML character: each of its bytes is replaced. */
	html_escape(b, "<a href=\"x\">&'</a>\x01\xff\xc3\xa9\xef\xbf\xbe ok");
	s = take(b);
	CHECK_STR(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9"
		     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok");
	free(s);
	/* A NUL byte and a truncated sequence at the end. */
	html_escape_n(b, "a\0b\xe2\x82", 5);
	s = take(b);
	CHECK_STR(s, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	html_printf(b, "<td>%s</td><td>%d %zu %.1f %%</td>", "<script>", -3, (size_t)7, 2.25);
	s = take(b);
	CHECK_STR(s, "<td>&lt;script&gt;</td><td>-3 7 2.2 %</td>");
	free(s);
	evbuffer_free(b);
}

TEST(svg_stacked_bars_ordinary)
{
	static const double pass[] = { 3, 0, 10 }, fail[] = { 1, 2, 0 };
	static const char *const labels[] = { "11-28", "11-29", "11-30" };
	struct svg_series s[2] = { { "pass", pass, "#2e7d32" }, { "fail", fail, NULL } };
	struct svg_chart c = { .title = "DMARC <per> day", .y_label = "messages", .npoints = 3, .labels = labels,
			       .series = s, .nseries = 2 };
	struct evbuffer *b = evbuffer_new();
	char *out;
	const char *problem;

	svg_stacked_bars(b, &c);
	out = take(b);
	problem = xmlcheck(out, strlen(out));
	CHECK(problem == NULL);
	if (problem)
		fprintf(stderr, "  %s\n%s\n", problem, out);
	CHECK(!strncmp(out, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39));
	/* One rect per non-zero value, plus two legend squares. */
	CHECK_INT(count(out, "<rect"), 4 + 2);
	CHECK(strstr(out, "<title>11-30: pass 10</title>") != NULL);
	CHECK(strstr(out, "DMARC &lt;per&gt; day") != NULL);
	CHECK(strstr(out, ">11-29</text>") != NULL);
	CHECK(strstr(out, ">fail</text>") != NULL);
	/* The y axis reaches the largest stack (10) with a tick label. */
	CHECK(strstr(out, ">10</text>") != NULL);
	free(out);
	evbuffer_free(b);
}

TEST(svg_line_chart_times)
{
	static const double v[] = { 1, 5, 2, 8 };
	static const int64_t t[] = { 1796000000, 1796086400, 1796172800, 1796259200 };
	struct svg_series s = { "score", v, NULL };
	struct svg_chart c = { .title = "Scores", .npoints = 4, .times = t, .series = &s, .nseries = 1 };
	struct evbuffer *b = evbuffer_new();
	char *out;

	svg_line_chart(b, &c, 1);
	out = take(b);
	CHECK(xmlcheck(out, strlen(out)) == NULL);
	CHECK_INT(count(out, "<polyline"), 1);
	CHECK_INT(count(out, "<polygon"), 1);
	CHECK(strstr(out, ">11-30</text>") != NULL); /* 1796000000 is 2026-11-30 00:53 UTC */
	CHECK(strstr(out, ">12-03</text>") != NULL);
	CHECK(strstr(out, "nan") == NULL && strstr(out, "inf") == NULL);
	free(out);
	evbuffer_free(b);
}

TEST(svg_hostile_numbers_and_text)
{
	double v[] = { NAN, INFINITY, -5, 1e300, 4.9e-324, -INFINITY, 0, 7 };
	int64_t t[] = { INT64_MIN, INT64_MAX, 0, -1, 5, 5, 5, 1 };
	const char *labels[8] = { "<", "&amp", "\xff\xfe", "\x01", "]]>", "\"'", "ok", NULL };
	struct svg_series s[3] = { { "a\"<b>&", v, "javascript:alert(1)" }, { "\xc3", v, "#12345g" }, { NULL, NULL, NULL } };
	struct svg_chart c = { .title = "<x>\x02", .y_label = "&", .npoints = 8, .times = t, .labels = labels,
			       .series = s, .nseries = 3, .width = -5, .height = 100000 };
	struct evbuffer *b = evbuffer_new();
	for (int kind = 0; kind < 3; kind++) {
		char *out;
		const char *problem;
		if (kind == 0)
			svg_stacked_bars(b, &c);
		else
			svg_line_chart(b, &c, kind == 2);
		out = take(b);
		problem = xmlcheck(out, strlen(out));
		CHECK(problem == NULL);
		if (problem)
			fprintf(stderr, "  kind %d: %s\n", kind, problem);
		CHECK(strstr(out, "nan") == NULL && strstr(out, "inf") == NULL);
		CHECK(strstr(out, "javascript") == NULL);
		free(out);
	}
	/* Nothing at all. */
	c.npoints = 0;
	c.nseries = 0;
	svg_stacked_bars(b, &c);
	{
		char *out = take(b);
		CHECK(xmlcheck(out, strlen(out)) == NULL);
		CHECK(strstr(out, "no data") != NULL);
		free(out);
	}
	evbuffer_free(b);
}

TEST(svg_format_value)
{
	char buf[32];
	svg_format_value(12, buf, sizeof buf);
	CHECK_STR(buf, "12");
	svg_format_value(15000, buf, sizeof buf);
	CHECK_STR(buf, "15k");
	svg_format_value(2500000, buf, sizeof buf);
	CHECK_STR(buf, "2.5M");
	svg_format_value(0.25, buf, sizeof buf);
	CHECK_STR(buf, "0.25");
}

TEST(xmlcheck_catches_what_it_should)
{
	/* The checker itself must fail on broken XML, or the tests above prove
	 * nothing. */
	static const char *const bad[] = {
		"<a><b></a></b>", "<a x=1/>", "<a x=\"<\"/>", "<a>&nbsp;</a>", "<a>\x01</a>", "<a/><b/>",
		"<a x=\"1\" x=\"2\"/>", "<a>", "text", "<a>\xff</a>", "<a>&#;</a>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(xmlcheck(bad[i], strlen(bad[i])) != NULL);
		if (!xmlcheck(bad[i], strlen(bad[i])))
			fprintf(stderr, "  accepted: %s\n", bad[i]);
	}
	{
		static const char good[] = "<a x=\"&amp;&#39;\"><b/>t&lt;</a>";
		CHECK(xmlcheck(good, strlen(good)) == NULL);
	}
}
