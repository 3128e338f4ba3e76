/*
 * svg: the dashboard's charts, drawn by the server as inline SVG so that
 * pages need no script and no external asset.
 *
 * Two kinds: a line (or area) chart of time series, and a stacked bar chart
 * of categories (one bar per day, one colour per result). Both have axes
 * with labelled ticks on "nice" steps (1, 2, 5 x 10^n), a legend, and a
 * <title> per bar segment as a tooltip.
 *
 * Pure: a description in, SVG text appended to an evbuffer out. Whatever
 * the input (NaN, infinities, negative or huge values, hostile names,
 * unsorted times, no points at all) the output is well-formed XML in the
 * SVG namespace: numbers that are not finite or are negative count as 0,
 * text goes through html_escape(), and coordinates are always finite. At
 * most SVG_MAX_POINTS points and SVG_MAX_SERIES series are drawn; the rest
 * are ignored.
 */
#ifndef POSTERN_WEB_SVG_H
#define POSTERN_WEB_SVG_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define SVG_MAX_POINTS 1000
#define SVG_MAX_SERIES 12

struct svg_series {
	const char *name;      /* legend text */
	const double *values;  /* npoints values */
	const char *color;     /* "#rrggbb", or NULL for the palette's next */
};

struct svg_chart {
	const char *title;
	const char *y_label;   /* the unit of the values ("messages"), or NULL */
	size_t npoints;
	const int64_t *times;  /* line charts: the points' Unix times (UTC); NULL: evenly spaced */
	const char *const *labels; /* bar charts: one label per category, or NULL */
	const struct svg_series *series;
	size_t nseries;
	int width, height;     /* pixels; 0 for 720 x 280 */
};

/* area: fill under each line (series are drawn over each other, not stacked). */
void svg_line_chart(struct evbuffer *out, const struct svg_chart *c, int area);
void svg_stacked_bars(struct evbuffer *out, const struct svg_chart *c);

/* The value as shown on an axis or in a tooltip: "12", "1.5k", "0.25". */
void svg_format_value(double v, char *buf, size_t n);

#endif
