/*
 * reputation: see reputation.h. Pure; fuzzed (tests/fuzz/fuzz_routing.c).
 */
#include "deliver/reputation.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

void reputation_list_free(struct reputation_list *l)
{
	if (!l)
		return;
	free(l->p);
	l->p = NULL;
	l->n = 0;
}

/* "d.d{1,3}.d{1,3}" exactly, or such a prefix ending in '.', or "*". */
static int status_ok(const char *s, size_t n)
{
	size_t part = 0, digits = 0;
	if (n == 1 && s[0] == '*')
		return 1;
	if (n == 0 || n >= 16)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (isdigit((unsigned char)s[i])) {
			if (++digits > (part == 0 ? 1u : 3u))
				return 0;
		} else if (s[i] == '.') {
			if (!digits || ++part > 2)
				return 0;
			digits = 0;
		} else {
			return 0;
		}
	}
	if (part == 0 || (s[0] != '4' && s[0] != '5'))
		return 0;
	return digits ? part == 2 : 1; /* complete, or a prefix ending in '.' */
}

static int parse_one(const char *e, size_t n, struct reputation_pattern *p, char *err, size_t errsize)
{
	size_t i = 0, tl;
	memset(p, 0, sizeof *p);
	if (n >= 4 && isdigit((unsigned char)e[0]) && isdigit((unsigned char)e[1]) && isdigit((unsigned char)e[2]) &&
	    (e[3] == ' ' || e[3] == '\t')) {
		p->code = (e[0] - '0') * 100 + (e[1] - '0') * 10 + (e[2] - '0');
		if (p->code < 400 || p->code > 599) {
			snprintf(err, errsize, "'%.*s': the reply code must be 4xx or 5xx", (int)n, e);
			return -1;
		}
		i = 4;
		while (i < n && (e[i] == ' ' || e[i] == '\t'))
			i++;
	}
	{
		size_t s = i;
		while (i < n && e[i] != ' ' && e[i] != '\t')
			i++;
		if (!status_ok(e + s, i - s)) {
			snprintf(err, errsize,
				 "'%.*s' does not start with an enhanced status code; write e.g. '5.7.1 S3140', "
				 "'550 5.7. banned' or '* low reputation'",
				 (int)n, e);
			return -1;
		}
		memcpy(p->status, e + s, i - s);
		if (p->code && p->status[0] != '*' && p->status[0] != '0' + p->code / 100) {
			snprintf(err, errsize, "'%.*s': the reply code and the status code disagree", (int)n, e);
			return -1;
		}
	}
	while (i < n && (e[i] == ' ' || e[i] == '\t'))
		i++;
	tl = n - i;
	if (tl > REPUTATION_TEXT_MAX) {
		snprintf(err, errsize, "'%.40s...': the text is longer than %d bytes; keep the distinctive part",
			 e + i, REPUTATION_TEXT_MAX);
		return -1;
	}
	for (size_t k = i; k < n; k++)
		if ((unsigned char)e[k] < 0x20 || e[k] == 0x7f) {
			snprintf(err, errsize, "a pattern contains a control character; remove it");
			return -1;
		}
	if (!(tl == 1 && e[i] == '*'))
		memcpy(p->text, e + i, tl);
	if (p->status[0] == '*' && !p->code && !p->text[0]) {
		snprintf(err, errsize, "'%.*s' matches every refusal; give a status code or a text", (int)n, e);
		return -1;
	}
	return 0;
}

int reputation_parse(const char *spec, struct reputation_list *out, char *err, size_t errsize)
{
	const char *p = spec;
	out->p = NULL;
	out->n = 0;
	while (*p) {
		const char *semi = strchr(p, ';');
		const char *end = semi ? semi : p + strlen(p);
		const char *s = p, *e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			if (out->n >= REPUTATION_MAX_PATTERNS) {
				snprintf(err, errsize, "more than %d patterns; keep the list short", REPUTATION_MAX_PATTERNS);
				reputation_list_free(out);
				return -1;
			}
			out->p = xrealloc(out->p, (out->n + 1) * sizeof *out->p);
			if (parse_one(s, (size_t)(e - s), &out->p[out->n], err, errsize) < 0) {
				reputation_list_free(out);
				return -1;
			}
			out->n++;
		}
		p = semi ? semi + 1 : end;
	}
	return 0;
}

/* The status at the start of text ("550 5.7.1 ..." or "550-5.7.1 ..."). */
static void status_from_text(const char *text, char *out, size_t size)
{
	size_t i = 0;
	out[0] = '\0';
	if (!text || strlen(text) < 5 || !isdigit((unsigned char)text[0]) || (text[3] != ' ' && text[3] != '-'))
		return;
	text += 4;
	while (i + 1 < size && (isdigit((unsigned char)text[i]) || text[i] == '.'))
		i++;
	if (status_ok(text, i) && text[i - 1] != '.') {
		memcpy(out, text, i);
		out[i] = '\0';
	}
}

static int status_match(const char *pat, const char *status)
{
	size_t pl = strlen(pat);
	if (!strcmp(pat, "*"))
		return 1;
	if (!*status)
		return 0;
	if (pat[pl - 1] == '.')
		return !strncmp(status, pat, pl);
	return !strcmp(status, pat);
}

const struct reputation_pattern *reputation_match(const struct reputation_list *l, int code, const char *status,
						  const char *text)
{
	char st[16];
	if (!l || code < 400 || code > 599)
		return NULL;
	if (status && *status)
		str_copy(st, status, sizeof st);
	else
		status_from_text(text, st, sizeof st);
	for (size_t i = 0; i < l->n; i++) {
		const struct reputation_pattern *p = &l->p[i];
		if (p->code && p->code != code)
			continue;
		if (!status_match(p->status, st))
			continue;
		if (p->text[0] && (!text || !strcasestr(text, p->text)))
			continue;
		return p;
	}
	return NULL;
}

void reputation_pattern_text(const struct reputation_pattern *p, char *out, size_t size)
{
	char code[8] = "";
	if (p->code)
		snprintf(code, sizeof code, "%d ", p->code);
	snprintf(out, size, "%s%s %s", code, p->status, p->text[0] ? p->text : "*");
}
