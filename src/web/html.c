/*
 * html: see html.h.
 */
#include "web/html.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* Length of the valid UTF-8 sequence at s (n bytes available) that XML
 * allows, or 0. */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;
	if (s[0] < 0x80)
		return s[0] >= 0x20 || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
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
