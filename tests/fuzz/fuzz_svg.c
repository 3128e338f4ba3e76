/*
 * Fuzz target: the SVG charts (src/web/svg.c) over arbitrary series. The
 * input is cut into numbers (8 bytes each, any bit pattern: NaN, infinities,
 * denormals, negative) and texts (titles, names, labels; any bytes). The
 * invariant (abort() when broken): both chart kinds always give well-formed
 * XML (tests/unit/xmlcheck.h), and every coordinate attribute holds only
 * digits, signs, dots, commas and spaces (no "nan", no "inf").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "../unit/xmlcheck.h"
#include "web/svg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	const char *problem;
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	problem = xmlcheck(s, n);
	if (problem) {
		fprintf(stderr, "not well-formed: %s\n%s\n", problem, s);
		abort();
	}
	{
		static const char *const numeric[] = { " x=\"", " y=\"", " x1=\"", " y1=\"", " x2=\"", " y2=\"",
						       " cx=\"", " cy=\"", " width=\"", " height=\"", " points=\"",
						       " viewBox=\"" };
		for (size_t k = 0; k < sizeof numeric / sizeof numeric[0]; k++) {
			for (const char *p = s; (p = strstr(p, numeric[k])); p++) {
				const char *v = p + strlen(numeric[k]);
				size_t len = strcspn(v, "\"");
				if (len == 0 || strspn(v, "0123456789.-, ") != len) {
					fprintf(stderr, "bad number in %s: %.40s\n", numeric[k], v);
					abort();
				}
			}
		}
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t npoints, nseries, textlen;
	double *values;
	int64_t *times;
	char *text, *labels_store[64];
	const char *labels[64];
	struct svg_series series[SVG_MAX_SERIES + 2];
	struct svg_chart c;
	struct evbuffer *b;

	if (size < 4)
		return 0;
	npoints = data[0] % 40;
	nseries = data[1] % (SVG_MAX_SERIES + 2);
	textlen = data[2] % 64;
	data += 4;
	size -= 4;
	/* Texts first (so that short inputs still have some), then numbers. */
	text = malloc(textlen + 1);
	for (size_t i = 0; i < textlen; i++)
		text[i] = i < size ? (char)data[i] : 'x';
	text[textlen] = '\0';
	if (size > textlen)
		data += textlen, size -= textlen;
	else
		size = 0;
	values = calloc(npoints * nseries + 1, sizeof *values);
	times = calloc(npoints + 1, sizeof *times);
	for (size_t i = 0; i < npoints * nseries && (i + 1) * 8 <= size; i++)
		memcpy(&values[i], data + i * 8, 8);
	for (size_t i = 0; i < npoints && (i + 1) * 8 <= size; i++)
		memcpy(&times[i], data + size - (i + 1) * 8, 8);
	for (size_t i = 0; i < npoints && i < 64; i++) {
		labels_store[i] = strdup(text + (i % (textlen + 1)));
		labels[i] = labels_store[i];
	}
	for (size_t s = 0; s < nseries; s++) {
		series[s].name = text + (s % (textlen + 1));
		series[s].values = values + s * npoints;
		series[s].color = s & 1 ? text : NULL;
	}
	memset(&c, 0, sizeof c);
	c.title = text;
	c.y_label = textlen & 1 ? text : NULL;
	c.npoints = npoints;
	c.labels = labels;
	c.series = series;
	c.nseries = nseries;
	c.width = (int)(int8_t)data[-1] * 40;
	c.height = (int)(int8_t)data[-2] * 30;

	b = evbuffer_new();
	svg_stacked_bars(b, &c);
	check(b);
	svg_line_chart(b, &c, 1);
	check(b);
	c.times = times;
	svg_line_chart(b, &c, 0);
	check(b);
	evbuffer_free(b);

	for (size_t i = 0; i < npoints && i < 64; i++)
		free(labels_store[i]);
	free(values);
	free(times);
	free(text);
	return 0;
}
