/*
 * html: writing text into HTML and SVG safely.
 *
 * Every value shown on the dashboard that came from the store, a report or
 * a mail message is hostile: html_escape() makes any byte string into text
 * that is both valid HTML and well-formed XML (SVG is embedded in the pages
 * and must parse as XML): the five markup characters become references,
 * invalid UTF-8 and the characters XML 1.0 forbids (C0 controls other than
 * tab, LF and CR; U+FFFE, U+FFFF) become U+FFFD. Nothing else is needed: we
 * only ever put escaped text inside elements or inside double-quoted
 * attribute values, never into URLs, scripts or styles.
 */
#ifndef POSTERN_WEB_HTML_H
#define POSTERN_WEB_HTML_H

#include <stddef.h>

struct evbuffer;

/* Appends s (n bytes; NUL bytes become U+FFFD) escaped to out. */
void html_escape_n(struct evbuffer *out, const char *s, size_t n);
/* The same for a NUL-terminated string; NULL writes nothing. */
void html_escape(struct evbuffer *out, const char *s);
/* printf, with every %s argument escaped: html_printf(out, "<td>%s</td>", v).
 * Only %s, %d, %u, %ld, %lld, %llu, %zu, %.Nf and %% are accepted. */
void html_printf(struct evbuffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
