/*
 * header: see header.h.
 */
#include "header.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

char *header_fold(const char *name, const char *value)
{
	size_t cap = strlen(name) + strlen(value) * 2 + 8, o = 0, col;
	char *out = xmalloc(cap);
	const char *p = value;

	o += (size_t)snprintf(out, cap, "%s:", name);
	col = o;
	while (*p) {
		const char *sp = strchr(p, ' ');
		size_t wl = sp ? (size_t)(sp - p) : strlen(p);
		if (col + 1 + wl > 78 && col > 8) {
			memcpy(out + o, "\n\t", 2);
			o += 2;
			col = 8;
		} else {
			out[o++] = ' ';
			col++;
		}
		memcpy(out + o, p, wl);
		o += wl;
		col += wl;
		p += wl;
		while (*p == ' ')
			p++;
	}
	out[o++] = '\n';
	out[o] = '\0';
	return out;
}
