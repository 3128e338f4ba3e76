/*
 * html: see html.h.
 */
#include "web/html.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/util.h"

/* Length of the valid UTF-8 sequence at s (n bytes available) that XML
 * allows, or 0. */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len = utf8_char(s, n, &cp);
	if (len == 0)
		return 0;
	if (len == 1)
		return cp >= 0x20 || cp == '\t' || cp == '\n' || cp == '\r' ? 1 : 0;
	return cp == 0xfffe || cp == 0xffff ? 0 : len;
}

void html_escape_n(struct evbuffer *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0; /* bytes p[i - run .. i) are safe, not yet written */

	while (i < n) {
		const char *ref = NULL;
		size_t l;
		switch (p[i]) {
		case '&': ref = "&amp;"; break;
		case '<': ref = "&lt;"; break;
		case '>': ref = "&gt;"; break;
		case '"': ref = "&quot;"; break;
		case '\'': ref = "&#39;"; break;
		default: break;
		}
		if (!ref && (l = xml_char_len(p + i, n - i)) > 0) {
			i += l;
			run += l;
			continue;
		}
		if (run)
			evbuffer_add(out, p + i - run, run);
		run = 0;
		evbuffer_add(out, ref ? ref : "\xef\xbf\xbd", strlen(ref ? ref : "\xef\xbf\xbd"));
		i++;
	}
	if (run)
		evbuffer_add(out, p + i - run, run);
}

void html_escape(struct evbuffer *out, const char *s)
{
	if (s)
		html_escape_n(out, s, strlen(s));
}

void html_printf(struct evbuffer *out, const char *fmt, ...)
{
	va_list ap;
	const char *p = fmt;

	va_start(ap, fmt);
	while (*p) {
		const char *pct = strchr(p, '%');
		char spec[16];
		size_t sl;
		if (!pct) {
			evbuffer_add(out, p, strlen(p));
			break;
		}
		evbuffer_add(out, p, (size_t)(pct - p));
		/* The conversion: flags/precision, then the letter. */
		sl = strspn(pct + 1, ".0123456789lz") + 2;
		if (sl >= sizeof spec)
			abort(); /* a bug in a format string */
		memcpy(spec, pct, sl);
		spec[sl] = '\0';
		p = pct + sl;
		if (!strcmp(spec, "%%"))
			evbuffer_add(out, "%", 1);
		else if (!strcmp(spec, "%s"))
			html_escape(out, va_arg(ap, const char *));
		else if (!strcmp(spec, "%d"))
			evbuffer_add_printf(out, "%d", va_arg(ap, int));
		else if (!strcmp(spec, "%u"))
			evbuffer_add_printf(out, "%u", va_arg(ap, unsigned));
		else if (!strcmp(spec, "%ld"))
			evbuffer_add_printf(out, "%ld", va_arg(ap, long));
		else if (!strcmp(spec, "%lld"))
			evbuffer_add_printf(out, "%lld", va_arg(ap, long long));
		else if (!strcmp(spec, "%llu"))
			evbuffer_add_printf(out, "%llu", va_arg(ap, unsigned long long));
		else if (!strcmp(spec, "%zu"))
			evbuffer_add_printf(out, "%zu", va_arg(ap, size_t));
		else if (spec[1] == '.' && spec[sl - 1] == 'f')
			evbuffer_add_printf(out, spec, va_arg(ap, double));
		else
			abort(); /* a bug: a conversion we do not escape */
	}
	va_end(ap);
}
