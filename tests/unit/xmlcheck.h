/*
 * xmlcheck: a small well-formedness checker for the SVG the dashboard draws,
 * shared by the unit tests (tests/unit/test_svg.c) and the fuzz target
 * (tests/fuzz/fuzz_svg.c). It checks the subset of XML 1.0 we emit, strictly:
 * elements nest and close in order with one root; attribute values are
 * double-quoted, unique per element, and free of '<'; text has no '<' or
 * stray '&'; references are one of the five predefined entities or numeric;
 * every byte sequence is valid UTF-8 of characters XML allows. No comments,
 * processing instructions, CDATA or DTDs (we never write them). Returns NULL
 * when well-formed, else a static description of the first problem.
 */
#ifndef POSTERN_XMLCHECK_H
#define POSTERN_XMLCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XMLCHECK_DEPTH 64

static size_t xmlcheck_char(const unsigned char *s, size_t n)
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

static int xmlcheck_name_char(int c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

/* A reference at s[i] ('&'); returns its length or 0. */
static size_t xmlcheck_ref(const char *s, size_t i, size_t n)
{
	static const char *const named[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" };
	size_t j;
	for (size_t k = 0; k < 5; k++)
		if (n - i >= strlen(named[k]) && !memcmp(s + i, named[k], strlen(named[k])))
			return strlen(named[k]);
	if (n - i < 4 || s[i + 1] != '#')
		return 0;
	j = i + 2;
	if (s[j] == 'x') {
		j++;
		while (j < n && strchr("0123456789abcdefABCDEF", s[j]) && s[j])
			j++;
	} else {
		while (j < n && s[j] >= '0' && s[j] <= '9')
			j++;
	}
	if (j >= n || s[j] != ';' || j == i + 2 || (s[i + 2] == 'x' && j == i + 3))
		return 0;
	return j + 1 - i;
}

static const char *xmlcheck(const char *s, size_t n)
{
	const char *stack[XMLCHECK_DEPTH];
	size_t stack_len[XMLCHECK_DEPTH];
	size_t depth = 0, i = 0;
	int roots = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c == '<') {
			int closing = 0, self = 0;
			size_t name, nlen;
			const char *attrs[64];
			size_t alens[64], nattrs = 0;
			i++;
			if (i < n && s[i] == '/')
				closing = 1, i++;
			name = i;
			if (i >= n || !xmlcheck_name_char((unsigned char)s[i], 1))
				return "bad element name";
			while (i < n && xmlcheck_name_char((unsigned char)s[i], 0))
				i++;
			nlen = i - name;
			for (;;) {
				size_t an, al;
				while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
					i++;
				if (i >= n)
					return "unterminated tag";
				if (s[i] == '>')
					break;
				if (s[i] == '/' && !closing) {
					if (i + 1 >= n || s[i + 1] != '>')
						return "bad '/' in tag";
					self = 1;
					i++;
					break;
				}
				if (closing)
					return "attribute in a closing tag";
				if (s[i - 1] != ' ' && s[i - 1] != '\n' && s[i - 1] != '\t' && s[i - 1] != '\r')
					return "no space before attribute";
				an = i;
				if (!xmlcheck_name_char((unsigned char)s[i], 1))
					return "bad attribute name";
				while (i < n && xmlcheck_name_char((unsigned char)s[i], 0))
					i++;
				al = i - an;
				for (size_t k = 0; k < nattrs; k++)
					if (alens[k] == al && !memcmp(attrs[k], s + an, al))
						return "duplicate attribute";
				if (nattrs == 64)
					return "too many attributes";
				attrs[nattrs] = s + an;
				alens[nattrs++] = al;
				if (i + 1 >= n || s[i] != '=' || s[i + 1] != '"')
					return "attribute value not double-quoted";
				i += 2;
				while (i < n && s[i] != '"') {
					size_t l;
					if (s[i] == '<')
						return "'<' in attribute value";
					if (s[i] == '&') {
						if (!(l = xmlcheck_ref(s, i, n)))
							return "bad reference in attribute";
						i += l;
						continue;
					}
					if (!(l = xmlcheck_char((const unsigned char *)s + i, n - i)))
						return "invalid character in attribute";
					i += l;
				}
				if (i >= n)
					return "unterminated attribute value";
				i++;
			}
			i++; /* '>' */
			if (closing) {
				if (depth == 0)
					return "closing tag without an open element";
				depth--;
				if (stack_len[depth] != nlen || memcmp(stack[depth], s + name, nlen))
					return "closing tag does not match";
			} else {
				if (depth == 0 && roots++)
					return "more than one root element";
				if (!self) {
					if (depth == XMLCHECK_DEPTH)
						return "nested too deeply";
					stack[depth] = s + name;
					stack_len[depth++] = nlen;
				}
			}
			continue;
		}
		if (c == '&') {
			size_t l = xmlcheck_ref(s, i, n);
			if (!l)
				return "bad reference in text";
			i += l;
			continue;
		}
		if (c == '>' && i >= 2 && s[i - 1] == ']' && s[i - 2] == ']')
			return "']]>' in text";
		{
			size_t l = xmlcheck_char((const unsigned char *)s + i, n - i);
			if (!l)
				return "invalid character in text";
			if (depth == 0 && !(c == ' ' || c == '\n' || c == '\t' || c == '\r'))
				return "text outside the root element";
			i += l;
		}
	}
	if (depth)
		return "unclosed element";
	if (!roots)
		return "no element";
	return NULL;
}

#endif
