/*
 * tlsrpt: see tlsrpt.h. The depth scan walks the bytes once, skipping
 * strings (with their escapes), and counts brackets; jansson then builds
 * the tree, which is read member by member into the store struct. Strings
 * are copied into the report's own list; failure details of all policies
 * live in one array that each policy points into.
 */
#include "report/tlsrpt.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

static int depth_ok(const char *s, size_t len, char *why, size_t whysize)
{
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > TLSRPT_MAX_DEPTH) {
				snprintf(why, whysize, "the JSON is nested deeper than %d levels; refused", TLSRPT_MAX_DEPTH);
				return 0;
			}
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 1;
}

struct tstate {
	struct tlsrpt_report *rep;
	char *why;
	size_t whysize;
};

static int bad(struct tstate *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct tstate *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->why, t->whysize, fmt, ap);
	va_end(ap);
	return -1;
}

/* Prefixes the reason with the policy it is about. */
static int in_policy(struct tstate *t, size_t i)
{
	char tmp[300];
	str_copy(tmp, t->why, sizeof tmp);
	return bad(t, "policies[%zu]: %s", i, tmp);
}

static char *keep(struct tlsrpt_report *rep, const char *s, size_t n)
{
	if (rep->nstrings == rep->capstrings) {
		rep->capstrings = rep->capstrings ? rep->capstrings * 2 : 32;
		rep->strings = xrealloc(rep->strings, rep->capstrings * sizeof *rep->strings);
	}
	return rep->strings[rep->nstrings++] = xstrndup(s, n);
}

/* A string member: *out NULL when absent; -1 when present but not a string
 * (or too long, or holding NUL). */
static int get_str(struct tstate *t, json_t *obj, const char *key, int required, const char **out)
{
	json_t *v = json_object_get(obj, key);
	size_t n;
	*out = NULL;
	if (!v || json_is_null(v))
		return required ? bad(t, "\"%s\" is missing", key) : 0;
	if (!json_is_string(v))
		return bad(t, "\"%s\" is not a string", key);
	n = json_string_length(v);
	if (n > TLSRPT_MAX_FIELD)
		return bad(t, "\"%s\" is longer than %d bytes; refused", key, TLSRPT_MAX_FIELD);
	if (memchr(json_string_value(v), '\0', n))
		return bad(t, "\"%s\" contains a NUL character", key);
	if (required && n == 0)
		return bad(t, "\"%s\" is empty", key);
	*out = keep(t->rep, json_string_value(v), n);
	return 0;
}

static int get_count(struct tstate *t, json_t *obj, const char *key, int required, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (!v)
		return required ? bad(t, "\"%s\" is missing", key) : 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad(t, "\"%s\" is not a non-negative integer", key);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int tlsrpt_parse_datetime(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0;
	long off = 0;
	const char *p;
	time_t t;

	if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	p = s + 10;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (sscanf(p, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
		return -1;
	p += 8;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
			return -1;
		off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t - off;
	return 0;
}

/* policy-string: an array of strings, joined with "; ". */
static int get_policy_string(struct tstate *t, json_t *pol, const char **out)
{
	json_t *v = json_object_get(pol, "policy-string"), *line;
	size_t i, len = 0;
	char buf[TLSRPT_MAX_FIELD + 1];
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return bad(t, "\"policy-string\" is not an array of strings");
	json_array_foreach(v, i, line) {
		size_t n;
		if (!json_is_string(line))
			return bad(t, "\"policy-string\" is not an array of strings");
		n = json_string_length(line);
		if (len + n + 2 > TLSRPT_MAX_FIELD)
			return bad(t, "\"policy-string\" is longer than %d bytes; refused", TLSRPT_MAX_FIELD);
		if (len) {
			memcpy(buf + len, "; ", 2);
			len += 2;
		}
		memcpy(buf + len, json_string_value(line), n);
		len += n;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return bad(t, "\"policy-string\" contains a NUL character");
	*out = keep(t->rep, buf, len);
	return 0;
}

static int read_report(struct tstate *t, json_t *root, size_t max_records)
{
	struct tlsrpt_report *rep = t->rep;
	struct store_tls_report *r = &rep->r;
	json_t *dr, *pols, *p;
	const char *start, *end;
	size_t i, nrec = 0, nfail = 0, fi = 0;

	if (!json_is_object(root))
		return bad(t, "not a TLS report: the JSON is not an object");
	if (get_str(t, root, "organization-name", 1, &r->org_name) < 0 || get_str(t, root, "report-id", 1, &r->report_id) < 0 ||
	    get_str(t, root, "contact-info", 0, &r->contact) < 0)
		return -1;
	dr = json_object_get(root, "date-range");
	if (!json_is_object(dr))
		return bad(t, "\"date-range\" is missing");
	if (get_str(t, dr, "start-datetime", 1, &start) < 0 || get_str(t, dr, "end-datetime", 1, &end) < 0)
		return -1;
	if (tlsrpt_parse_datetime(start, &r->begin) < 0)
		return bad(t, "start-datetime '%.64s' is not an RFC 3339 date-time", start);
	if (tlsrpt_parse_datetime(end, &r->end) < 0)
		return bad(t, "end-datetime '%.64s' is not an RFC 3339 date-time", end);
	pols = json_object_get(root, "policies");
	if (!json_is_array(pols))
		return bad(t, "\"policies\" is missing or not an array");
	/* Count first, so the arrays are allocated once and within bounds. */
	json_array_foreach(pols, i, p) {
		json_t *fd = json_is_object(p) ? json_object_get(p, "failure-details") : NULL;
		nrec++;
		if (json_is_array(fd)) {
			nrec += json_array_size(fd);
			nfail += json_array_size(fd);
		}
		if (nrec > max_records)
			return bad(t, "more than %zu policies and failure details ([reports] max_records); refused",
				   max_records);
	}
	rep->policies = xcalloc(json_array_size(pols) + 1, sizeof *rep->policies);
	rep->failures = xcalloc(nfail + 1, sizeof *rep->failures);
	json_array_foreach(pols, i, p) {
		struct store_tls_policy *sp = &rep->policies[i];
		json_t *pol, *sum, *fd, *f, *mx;
		size_t k;
		if (!json_is_object(p))
			return bad(t, "policies[%zu] is not an object", i);
		pol = json_object_get(p, "policy");
		sum = json_object_get(p, "summary");
		if (!json_is_object(pol))
			return bad(t, "policies[%zu] has no \"policy\"", i);
		if (!json_is_object(sum))
			return bad(t, "policies[%zu] has no \"summary\"", i);
		if (get_str(t, pol, "policy-type", 1, &sp->type) < 0 || get_str(t, pol, "policy-domain", 1, &sp->domain) < 0 ||
		    get_policy_string(t, pol, &sp->policy_string) < 0)
			return in_policy(t, i);
		mx = json_object_get(pol, "mx-host");
		if (json_is_array(mx)) /* some reporters send a list */
			mx = json_array_get(mx, 0);
		if (json_is_string(mx) && json_string_length(mx) <= TLSRPT_MAX_FIELD)
			sp->mx_host = keep(rep, json_string_value(mx), strlen(json_string_value(mx)));
		str_lower((char *)sp->domain);
		if (get_count(t, sum, "total-successful-session-count", 1, &sp->success) < 0 ||
		    get_count(t, sum, "total-failure-session-count", 1, &sp->failure) < 0)
			return in_policy(t, i);
		fd = json_object_get(p, "failure-details");
		if (fd && !json_is_array(fd))
			return bad(t, "policies[%zu]: \"failure-details\" is not an array", i);
		sp->failures = &rep->failures[fi];
		json_array_foreach(fd, k, f) {
			struct store_tls_failure *sf = &rep->failures[fi];
			if (!json_is_object(f))
				return bad(t, "policies[%zu].failure-details[%zu] is not an object", i, k);
			if (get_str(t, f, "result-type", 1, &sf->result_type) < 0 ||
			    get_str(t, f, "sending-mta-ip", 0, &sf->sending_ip) < 0 ||
			    get_str(t, f, "receiving-mx-hostname", 0, &sf->receiving_mx) < 0 ||
			    get_str(t, f, "receiving-ip", 0, &sf->receiving_ip) < 0 ||
			    get_str(t, f, "failure-reason-code", 0, &sf->reason_code) < 0 ||
			    get_str(t, f, "additional-information", 0, &sf->info) < 0 ||
			    get_count(t, f, "failed-session-count", 1, &sf->count) < 0)
				return in_policy(t, i);
			fi++;
			sp->nfailures++;
		}
		r->npolicies++;
	}
	r->policies = rep->policies;
	return 0;
}

void tlsrpt_report_free(struct tlsrpt_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nstrings; i++)
		free(r->strings[i]);
	free(r->strings);
	free(r->policies);
	free(r->failures);
	free(r);
}

struct tlsrpt_report *tlsrpt_parse(const char *json, size_t len, size_t max_records, char *why, size_t whysize)
{
	struct tlsrpt_report *rep;
	struct tstate t;
	json_error_t err;
	json_t *root;

	if (!depth_ok(json, len, why, whysize))
		return NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		snprintf(why, whysize, "the JSON is malformed: %s at line %d, column %d", err.text, err.line, err.column);
		return NULL;
	}
	rep = xcalloc(1, sizeof *rep);
	t.rep = rep;
	t.why = why;
	t.whysize = whysize;
	if (read_report(&t, root, max_records) < 0) {
		json_decref(root);
		tlsrpt_report_free(rep);
		return NULL;
	}
	json_decref(root);
	return rep;
}
