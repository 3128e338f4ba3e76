/*
 * policy/conf: see conf.h. Pure parsers; every input is bounded (zones,
 * rules, name lengths) and every problem is reported as text that names the
 * offending item and says how to write it.
 */
#include "policy/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const struct {
	const char *name;
	double def;
} checks[CHECK_COUNT] = {
	[CHECK_FCRDNS_NONE] = { "fcrdns.none", 1.5 },
	[CHECK_FCRDNS_MISMATCH] = { "fcrdns.mismatch", 1.0 },
	[CHECK_HELO_SYNTAX] = { "helo.syntax", 2.0 },
	[CHECK_HELO_OURS] = { "helo.ours", 4.0 },
	[CHECK_HELO_UNRESOLVABLE] = { "helo.unresolvable", 1.0 },
	[CHECK_HELO_LITERAL] = { "helo.literal", 0.5 },
	[CHECK_SPF_FAIL] = { "spf.fail", 2.0 },
	[CHECK_SPF_SOFTFAIL] = { "spf.softfail", 1.0 },
	[CHECK_SPF_PASS] = { "spf.pass", 0.0 },
};

const char *policy_check_name(enum policy_check c)
{
	return c < CHECK_COUNT ? checks[c].name : "?";
}

void policy_weights_default(struct policy_weights *w)
{
	for (size_t i = 0; i < CHECK_COUNT; i++)
		w->w[i] = checks[i].def;
}

int policy_parse_weight(const char *s, size_t n, double *out)
{
	size_t i = 0, digits = 0, decimals = 0;
	int neg = 0;
	long whole = 0, frac = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	while (i < n && isdigit((unsigned char)s[i])) {
		if (++digits > 3)
			return -1;
		whole = whole * 10 + (s[i++] - '0');
	}
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && isdigit((unsigned char)s[i])) {
			if (++decimals > 2)
				return -1;
			frac = frac * 10 + (s[i++] - '0');
		}
		if (decimals == 0)
			return -1;
		if (decimals == 1)
			frac *= 10;
	}
	if (i != n || (digits == 0 && decimals == 0))
		return -1;
	*out = (double)(whole * 100 + frac) / 100.0;
	if (*out > POLICY_MAX_WEIGHT)
		return -1;
	if (neg)
		*out = -*out;
	return 0;
}

static int parse_ipv4(const char *s, size_t n, uint32_t *out)
{
	char buf[16];
	struct in_addr a;
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* "A", "A-B" or "A/N" into [lo, hi]. */
static int parse_codes(const char *s, size_t n, uint32_t *lo, uint32_t *hi)
{
	const char *dash = memchr(s, '-', n), *slash = memchr(s, '/', n);
	if (dash) {
		if (parse_ipv4(s, (size_t)(dash - s), lo) < 0 || parse_ipv4(dash + 1, n - (size_t)(dash - s) - 1, hi) < 0 ||
		    *hi < *lo)
			return -1;
		return 0;
	}
	if (slash) {
		unsigned long len = 0;
		size_t k = (size_t)(slash - s) + 1;
		if (k == n || n - k > 2)
			return -1;
		for (; k < n; k++) {
			if (!isdigit((unsigned char)s[k]))
				return -1;
			len = len * 10 + (unsigned long)(s[k] - '0');
		}
		if (len > 32 || parse_ipv4(s, (size_t)(slash - s), lo) < 0)
			return -1;
		{
			uint32_t mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
			*lo &= mask;
			*hi = *lo | ~mask;
		}
		return 0;
	}
	if (parse_ipv4(s, n, lo) < 0)
		return -1;
	*hi = *lo;
	return 0;
}

static int valid_zone(const char *s, size_t n)
{
	size_t label = 0, dots = 0;
	if (n == 0 || n > 200)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			dots++;
		} else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && dots > 0;
}

void policy_zones_clear(struct policy_zones *z)
{
	for (size_t i = 0; i < z->n; i++) {
		free(z->zones[i].name);
		free(z->zones[i].rules);
	}
	free(z->zones);
	z->zones = NULL;
	z->n = 0;
}

/* The next token of [p, end) separated by white space; NULL at the end. */
static const char *token(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *t;
	while (s < end && isspace((unsigned char)*s))
		s++;
	if (s == end) {
		*p = s;
		return NULL;
	}
	t = s;
	while (t < end && !isspace((unsigned char)*t))
		t++;
	*len = (size_t)(t - s);
	*p = t;
	return s;
}

static int parse_entry(const char *s, const char *end, int allow, struct policy_zone *z, char *err, size_t errsize)
{
	size_t len;
	const char *tok = token(&s, end, &len), *eq;

	memset(z, 0, sizeof *z);
	z->weight = allow ? -1.0 : 1.0;
	if (!tok)
		return 1; /* an empty entry (e.g. a trailing ';') */
	eq = memchr(tok, '=', len);
	if (!valid_zone(tok, eq ? (size_t)(eq - tok) : len)) {
		snprintf(err, errsize, "'%.*s' is not a DNS zone; write e.g. zen.spamhaus.org or zen.spamhaus.org=3",
			 (int)(len > 80 ? 80 : len), tok);
		return -1;
	}
	z->name = str_lower(xstrndup(tok, eq ? (size_t)(eq - tok) : len));
	if (eq && policy_parse_weight(eq + 1, len - (size_t)(eq - tok) - 1, &z->weight) < 0) {
		snprintf(err, errsize, "zone %s: '%.*s' is not a weight; write a number from -100 to 100, e.g. 2.5",
			 z->name, (int)(len - (size_t)(eq - tok) - 1 > 40 ? 40 : len - (size_t)(eq - tok) - 1), eq + 1);
		return -1;
	}
	while ((tok = token(&s, end, &len))) {
		struct zone_rule r = { 0 };
		const char *v;
		size_t vlen;
		eq = memchr(tok, '=', len);
		if (!eq || parse_codes(tok, (size_t)(eq - tok), &r.lo, &r.hi) < 0) {
			snprintf(err, errsize,
				 "zone %s: '%.*s' is not a rule; write CODES=WEIGHT, CODES=error or CODES=ignore, "
				 "with CODES like 127.0.0.2, 127.0.0.2-127.0.0.3 or 127.255.255.0/24",
				 z->name, (int)(len > 60 ? 60 : len), tok);
			return -1;
		}
		v = eq + 1;
		vlen = len - (size_t)(v - tok);
		if (vlen == 5 && !strncasecmp(v, "error", 5)) {
			r.action = ZONE_ERROR;
		} else if (vlen == 6 && !strncasecmp(v, "ignore", 6)) {
			r.action = ZONE_IGNORE;
		} else if (policy_parse_weight(v, vlen, &r.weight) == 0) {
			r.action = ZONE_LISTED;
		} else {
			snprintf(err, errsize, "zone %s: '%.*s' is not a weight, 'error' or 'ignore'", z->name,
				 (int)(vlen > 40 ? 40 : vlen), v);
			return -1;
		}
		if (z->nrules >= POLICY_MAX_RULES) {
			snprintf(err, errsize, "zone %s has more than %d rules", z->name, POLICY_MAX_RULES);
			return -1;
		}
		z->rules = xrealloc(z->rules, (z->nrules + 1) * sizeof *z->rules);
		z->rules[z->nrules++] = r;
	}
	return 0;
}

int policy_zones_parse(const char *text, int allow, struct policy_zones *out, char *err, size_t errsize)
{
	const char *p = text, *end = text + strlen(text);

	memset(out, 0, sizeof *out);
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		struct policy_zone z;
		int rc = parse_entry(p, stop, allow, &z, err, errsize);
		if (rc < 0) {
			free(z.name);
			free(z.rules);
			policy_zones_clear(out);
			return -1;
		}
		if (rc == 0) {
			for (size_t i = 0; i < out->n; i++) {
				if (!strcmp(out->zones[i].name, z.name)) {
					snprintf(err, errsize, "zone %s is listed twice; keep one entry", z.name);
					free(z.name);
					free(z.rules);
					policy_zones_clear(out);
					return -1;
				}
			}
			if (out->n >= POLICY_MAX_ZONES) {
				snprintf(err, errsize, "more than %d zones", POLICY_MAX_ZONES);
				free(z.name);
				free(z.rules);
				policy_zones_clear(out);
				return -1;
			}
			out->zones = xrealloc(out->zones, (out->n + 1) * sizeof *out->zones);
			out->zones[out->n++] = z;
		}
		p = stop + (semi ? 1 : 0);
	}
	return 0;
}

enum zone_action policy_zone_classify(const struct policy_zone *z, uint32_t code, double *weight)
{
	*weight = 0;
	for (size_t i = 0; i < z->nrules; i++) {
		if (code >= z->rules[i].lo && code <= z->rules[i].hi) {
			*weight = z->rules[i].action == ZONE_LISTED ? z->rules[i].weight : 0;
			return z->rules[i].action;
		}
	}
	if ((code >> 24) != 127 || (code >> 8) == 0x7fffff)
		return ZONE_ERROR;
	*weight = z->weight;
	return ZONE_LISTED;
}

int policy_weights_parse(const char *text, struct policy_weights *w, char *err, size_t errsize)
{
	const char *p = text;
	while (*p) {
		size_t len, nlen;
		const char *eq;
		size_t i;
		double v;
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		len = strcspn(p, ", \t");
		eq = memchr(p, '=', len);
		if (!eq) {
			snprintf(err, errsize, "'%.*s' is not NAME=WEIGHT; write e.g. fcrdns.none=2", (int)(len > 60 ? 60 : len),
				 p);
			return -1;
		}
		nlen = (size_t)(eq - p);
		for (i = 0; i < CHECK_COUNT; i++)
			if (strlen(checks[i].name) == nlen && !strncasecmp(checks[i].name, p, nlen))
				break;
		if (i == CHECK_COUNT) {
			char names[400] = "";
			for (size_t k = 0; k < CHECK_COUNT; k++) {
				strncat(names, checks[k].name, sizeof names - strlen(names) - 1);
				if (k + 1 < CHECK_COUNT)
					strncat(names, ", ", sizeof names - strlen(names) - 1);
			}
			snprintf(err, errsize, "unknown check '%.*s'; the checks are %s", (int)(nlen > 60 ? 60 : nlen), p,
				 names);
			return -1;
		}
		if (policy_parse_weight(eq + 1, len - nlen - 1, &v) < 0) {
			snprintf(err, errsize, "%s: '%.*s' is not a weight; write a number from -100 to 100, e.g. 1.5",
				 checks[i].name, (int)(len - nlen - 1 > 40 ? 40 : len - nlen - 1), eq + 1);
			return -1;
		}
		w->w[i] = v;
		p += len;
	}
	return 0;
}
