/*
 * svg: see svg.h.
 *
 * Geometry: the plot area sits inside fixed margins (room for the y tick
 * labels on the left, the x labels and the legend below). Every coordinate
 * printed is computed from clamped, finite inputs and printed with %.1f, so
 * no "nan" or "inf" ever reaches the output.
 */
#include "web/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "web/html.h"

#define VALUE_MAX 1e15
#define LABEL_MAX 24 /* bytes of a label drawn */
#define LEFT 56
#define RIGHT 16
#define TOP 30
#define XLABELS 22
#define LEGEND_ROW 18

static const char *const palette[] = { "#2e7d32", "#c62828", "#f9a825", "#1565c0", "#6a1b9a",
				       "#00838f", "#ef6c00", "#5d4037", "#546e7a", "#ad1457" };

struct frame {
	double w, h;             /* the whole picture */
	double x0, x1, y0, y1;   /* the plot area; y0 is the top */
	double top;              /* the value at y0 */
	double step;             /* between y ticks */
	size_t npoints, nseries;
	double legend_y;
};

static double clean(double v)
{
	if (!isfinite(v) || v < 1e-9)
		return 0;
	return v > VALUE_MAX ? VALUE_MAX : v;
}

void svg_format_value(double v, char *buf, size_t n)
{
	double a = fabs(v);
	if (!isfinite(v))
		snprintf(buf, n, "0");
	else if (a >= 1e6)
		snprintf(buf, n, "%.3gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, n, "%.3gk", v / 1e3);
	else if (v == floor(v))
		snprintf(buf, n, "%.0f", v);
	else
		snprintf(buf, n, "%.3g", v);
}

/* A prefix of s of at most max bytes that ends on a UTF-8 boundary. */
static size_t prefix_len(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

static void text_label(struct evbuffer *out, const char *s)
{
	size_t n;
	if (!s)
		return;
	n = prefix_len(s, LABEL_MAX);
	html_escape_n(out, s, n);
	if (n < strlen(s))
		evbuffer_add(out, "\xe2\x80\xa6", 3); /* ... */
}

static const char *color_of(const struct svg_series *s, size_t i)
{
	const char *c = s->color;
	size_t n;
	if (c && c[0] == '#' && ((n = strspn(c + 1, "0123456789abcdefABCDEF")) == 3 || n == 6) && !c[1 + n])
		return c;
	return palette[i % (sizeof palette / sizeof palette[0])];
}

/* The legend's height for these names at this width. */
static double legend_height(const struct svg_chart *c, size_t nseries, double w)
{
	double x = LEFT, rows = 1;
	for (size_t i = 0; i < nseries; i++) {
		double iw = 30 + 7.0 * (double)prefix_len(c->series[i].name ? c->series[i].name : "", LABEL_MAX);
		if (x + iw > w - RIGHT && x > LEFT) {
			rows++;
			x = LEFT;
		}
		x += iw;
	}
	return nseries ? rows * LEGEND_ROW + 6 : 0;
}

static void frame_init(struct frame *f, const struct svg_chart *c, double max)
{
	double raw, mag, norm;
	f->w = c->width >= 200 && c->width <= 4000 ? c->width : 720;
	f->h = c->height >= 120 && c->height <= 3000 ? c->height : 280;
	f->npoints = c->npoints < SVG_MAX_POINTS ? c->npoints : SVG_MAX_POINTS;
	f->nseries = c->series ? (c->nseries < SVG_MAX_SERIES ? c->nseries : SVG_MAX_SERIES) : 0;
	f->x0 = LEFT;
	f->x1 = f->w - RIGHT;
	f->y0 = TOP;
	f->y1 = f->h - XLABELS - legend_height(c, f->nseries, f->w);
	if (f->y1 < f->y0 + 40)
		f->y1 = f->y0 + 40;
	f->legend_y = f->y1 + XLABELS + 4;
	if (f->legend_y + legend_height(c, f->nseries, f->w) > f->h)
		f->h = f->legend_y + legend_height(c, f->nseries, f->w);
	/* Nice ticks: about four steps of 1, 2 or 5 times a power of ten. */
	if (!(max > 0))
		max = 1;
	raw = max / 4;
	mag = pow(10, floor(log10(raw)));
	norm = raw / mag;
	f->step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
	if (max >= 1 && f->step < 1)
		f->step = 1;
	f->top = ceil(max / f->step - 1e-9) * f->step;
	if (f->top < max)
		f->top = max;
}

static double ypos(const struct frame *f, double v)
{
	return f->y1 - (f->y1 - f->y0) * (v / f->top);
}

static void open_svg(struct evbuffer *out, const struct svg_chart *c, const struct frame *f)
{
	evbuffer_add_printf(out,
			    "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%.0f\" height=\"%.0f\" "
			    "viewBox=\"0 0 %.0f %.0f\" role=\"img\" font-family=\"sans-serif\" font-size=\"11\">",
			    f->w, f->h, f->w, f->h);
	html_printf(out, "<title>%s</title>", c->title ? c->title : "chart");
	html_printf(out, "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">%s</text>", LEFT,
		    c->title ? c->title : "");
	/* Grid lines and y tick labels. */
	for (int i = 0; i <= 20; i++) {
		double v = f->step * i, y;
		char label[32];
		if (v > f->top + f->step / 1000)
			break;
		y = ypos(f, v);
		svg_format_value(v, label, sizeof label);
		evbuffer_add_printf(out,
				    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
				    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%s</text>",
				    f->x0, y, f->x1, y, f->x0 - 6, y + 4, label);
	}
	if (c->y_label) {
		evbuffer_add_printf(out, "<text x=\"12\" y=\"%.1f\" fill=\"#555\" transform=\"rotate(-90 12 %.1f)\" "
					 "text-anchor=\"middle\">",
				    (f->y0 + f->y1) / 2, (f->y0 + f->y1) / 2);
		text_label(out, c->y_label);
		evbuffer_add(out, "</text>", 7);
	}
	evbuffer_add_printf(out,
			    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>"
			    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>",
			    f->x0, f->y0, f->x0, f->y1, f->x0, f->y1, f->x1, f->y1);
}

static void close_svg(struct evbuffer *out, const struct svg_chart *c, const struct frame *f)
{
	double x = LEFT, y = f->legend_y;
	if (f->npoints == 0 || f->nseries == 0)
		evbuffer_add_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
				    (f->x0 + f->x1) / 2, (f->y0 + f->y1) / 2);
	for (size_t i = 0; i < f->nseries; i++) {
		const char *name = c->series[i].name ? c->series[i].name : "";
		double iw = 30 + 7.0 * (double)prefix_len(name, LABEL_MAX);
		if (x + iw > f->w - RIGHT && x > LEFT) {
			x = LEFT;
			y += LEGEND_ROW;
		}
		evbuffer_add_printf(out,
				    "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
				    "<text x=\"%.1f\" y=\"%.1f\" fill=\"#222\">",
				    x, y, color_of(&c->series[i], i), x + 14, y + 9);
		text_label(out, name);
		evbuffer_add(out, "</text>", 7);
		x += iw;
	}
	evbuffer_add(out, "</svg>", 6);
}

static void x_label(struct evbuffer *out, double x, double y, const char *text, const char *anchor)
{
	evbuffer_add_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"#555\">", x, y, anchor);
	text_label(out, text);
	evbuffer_add(out, "</text>", 7);
}

/* Every how many categories a label fits. */
static size_t label_every(const struct frame *f)
{
	double room = (f->x1 - f->x0) / 60; /* about 60 pixels a label */
	size_t every = 1;
	if (room < 1)
		room = 1;
	while ((double)f->npoints / (double)every > room)
		every++;
	return every;
}

static void time_label(double t, double span, char *buf, size_t n)
{
	struct tm tm;
	time_t tt;
	if (!(t >= -62135596800.0 && t <= 253402300799.0)) { /* outside years 1..9999 */
		snprintf(buf, n, "?");
		return;
	}
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(buf, n, "?");
		return;
	}
	strftime(buf, n, span > 60 * 86400 ? "%Y-%m-%d" : span >= 2 * 86400 ? "%m-%d" : span >= 3600 ? "%m-%d %H:%M" : "%H:%M:%S",
		 &tm);
}

void svg_line_chart(struct evbuffer *out, const struct svg_chart *c, int area)
{
	struct frame f;
	double max = 0, tmin = 0, tmax = 0;
	size_t np = c->npoints < SVG_MAX_POINTS ? c->npoints : SVG_MAX_POINTS;
	size_t ns = c->series ? (c->nseries < SVG_MAX_SERIES ? c->nseries : SVG_MAX_SERIES) : 0;

	for (size_t s = 0; s < ns; s++)
		for (size_t i = 0; c->series[s].values && i < np; i++)
			if (clean(c->series[s].values[i]) > max)
				max = clean(c->series[s].values[i]);
	if (c->times && np) {
		tmin = tmax = (double)c->times[0];
		for (size_t i = 1; i < np; i++) {
			double t = (double)c->times[i];
			tmin = t < tmin ? t : tmin;
			tmax = t > tmax ? t : tmax;
		}
	}
	frame_init(&f, c, max);
	open_svg(out, c, &f);

#define XPOS(i)                                                                                          \
	(c->times ? (tmax > tmin ? f.x0 + (f.x1 - f.x0) * (((double)c->times[i] - tmin) / (tmax - tmin)) \
				 : (f.x0 + f.x1) / 2)                                                     \
		  : (np > 1 ? f.x0 + (f.x1 - f.x0) * (double)(i) / (double)(np - 1) : (f.x0 + f.x1) / 2))

	/* X labels. */
	if (np && c->times) {
		int ticks = tmax > tmin ? 5 : 1;
		for (int k = 0; k < ticks; k++) {
			double t = ticks > 1 ? tmin + (tmax - tmin) * k / (ticks - 1) : tmin;
			double x = ticks > 1 ? f.x0 + (f.x1 - f.x0) * k / (ticks - 1) : (f.x0 + f.x1) / 2;
			char label[32];
			time_label(t, tmax - tmin, label, sizeof label);
			x_label(out, x, f.y1 + 15, label, ticks == 1 ? "middle" : k == 0 ? "start" : k == ticks - 1 ? "end" : "middle");
		}
	} else if (np && c->labels) {
		size_t every = label_every(&f);
		for (size_t i = 0; i < np; i += every)
			x_label(out, XPOS(i), f.y1 + 15, c->labels[i], "middle");
	}
	for (size_t s = 0; np && s < f.nseries; s++) {
		const char *col = color_of(&c->series[s], s);
		if (!c->series[s].values)
			continue;
		evbuffer_add(out, "<g>", 3);
		html_printf(out, "<title>%s</title>", c->series[s].name ? c->series[s].name : "");
		if (np == 1) {
			evbuffer_add_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", XPOS(0),
					    ypos(&f, clean(c->series[s].values[0])), col);
			evbuffer_add(out, "</g>", 4);
			continue;
		}
		if (area) {
			evbuffer_add_printf(out, "<polygon fill=\"%s\" fill-opacity=\"0.2\" stroke=\"none\" points=\"%.1f,%.1f",
					    col, XPOS(0), f.y1);
			for (size_t i = 0; i < np; i++)
				evbuffer_add_printf(out, " %.1f,%.1f", XPOS(i), ypos(&f, clean(c->series[s].values[i])));
			evbuffer_add_printf(out, " %.1f,%.1f\"/>", XPOS(np - 1), f.y1);
		}
		evbuffer_add_printf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
		for (size_t i = 0; i < np; i++)
			evbuffer_add_printf(out, "%s%.1f,%.1f", i ? " " : "", XPOS(i), ypos(&f, clean(c->series[s].values[i])));
		evbuffer_add(out, "\"/></g>", 7);
	}
#undef XPOS
	close_svg(out, c, &f);
}

void svg_stacked_bars(struct evbuffer *out, const struct svg_chart *c)
{
	struct frame f;
	double max = 0, slot;
	size_t np = c->npoints < SVG_MAX_POINTS ? c->npoints : SVG_MAX_POINTS;
	size_t ns = c->series ? (c->nseries < SVG_MAX_SERIES ? c->nseries : SVG_MAX_SERIES) : 0;
	size_t every;

	for (size_t i = 0; i < np; i++) {
		double sum = 0;
		for (size_t s = 0; s < ns; s++)
			if (c->series[s].values)
				sum += clean(c->series[s].values[i]);
		max = sum > max ? sum : max;
	}
	frame_init(&f, c, max);
	open_svg(out, c, &f);
	slot = np ? (f.x1 - f.x0) / (double)np : 0;
	every = label_every(&f);
	for (size_t i = 0; i < np; i++) {
		double base = 0, x = f.x0 + slot * (double)i + slot * 0.15, bw = slot * 0.7;
		const char *label = c->labels ? c->labels[i] : NULL;
		char num[32];
		if (!label) {
			snprintf(num, sizeof num, "%zu", i + 1);
			label = num;
		}
		if (i % every == 0)
			x_label(out, x + bw / 2, f.y1 + 15, label, "middle");
		for (size_t s = 0; s < f.nseries; s++) {
			double v = c->series[s].values ? clean(c->series[s].values[i]) : 0, ytop, ybot;
			char vs[32];
			if (v <= 0)
				continue;
			ybot = ypos(&f, base);
			base += v;
			ytop = ypos(&f, base);
			svg_format_value(v, vs, sizeof vs);
			evbuffer_add_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
					    x, ytop, bw > 0.5 ? bw : 0.5, ybot - ytop, color_of(&c->series[s], s));
			text_label(out, label);
			evbuffer_add(out, ": ", 2);
			text_label(out, c->series[s].name);
			evbuffer_add_printf(out, " %s</title></rect>", vs);
		}
	}
	close_svg(out, c, &f);
}
