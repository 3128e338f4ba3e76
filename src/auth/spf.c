/*
 * spf: see spf.h. The evaluation follows RFC 7208 section by section:
 *
 *   4.3  initial processing          check_host(): domain validity
 *   4.4  record lookup               fetch_record()
 *   4.5  selecting records           fetch_record()
 *   4.6  record evaluation           parse_record(), eval_record()
 *   4.6.4 DNS lookup limits          struct run counters
 *   5.*  mechanisms                  mech_*()
 *   6.*  modifiers                   eval_record() (redirect, exp)
 *   7    macros                      expand()
 *   9.1  Received-SPF                spf_received_header()
 *
 * Every function that needs DNS asks ask(); when the answer is not yet in
 * the table, ask() records the question and the evaluation unwinds with
 * R_PENDING. Memory allocated during a run is freed on every path.
 */
#include "spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <time.h>

#include "dns/batch.h"
#include "lib/util.h"

/* Internal results: the public ones plus "waiting for DNS". */
#define R_PENDING 100
/* fetch_record(): the record was found. */
#define R_FOUND 101

enum mech_type { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct term {
	enum mech_type type;
	char qualifier;   /* + - ? ~ */
	char *spec;       /* domain-spec (unexpanded), or NULL for the current domain */
	int cidr4, cidr6; /* -1 when not given */
	struct spf_ip net;
	char *text;       /* as written, for Received-SPF */
};

struct record {
	struct term *terms;
	size_t nterms;
	char *redirect;
	char *exp;
};

struct run {
	struct spf_eval *e;
	unsigned dns_terms;
	unsigned voids;
	int pending;
	int depth;
	char *problem;
	char *mechanism;
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" };
	return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

static void set_problem(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_problem(struct run *r, const char *fmt, ...)
{
	va_list ap;
	if (r->problem)
		return; /* the first problem is the one that matters */
	va_start(ap, fmt);
	if (vasprintf(&r->problem, fmt, ap) < 0)
		abort();
	va_end(ap);
}

/* ---- addresses ----------------------------------------------------------- */

int spf_ip_parse(const char *s, struct spf_ip *out)
{
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, s, out->addr) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->addr) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		out->family = AF_INET6;
		if (!memcmp(out->addr, mapped, 12)) {
			/* RFC 7208 section 5: an IPv4-mapped address is IPv4. */
			memmove(out->addr, out->addr + 12, 4);
			memset(out->addr + 4, 0, 12);
			out->family = AF_INET;
		}
		return 0;
	}
	return -1;
}

void inet_ntop_spf(const struct spf_ip *ip, char *out, size_t n)
{
	inet_ntop(ip->family, ip->addr, out, (socklen_t)n);
}

static int ip_match(const struct spf_ip *ip, const unsigned char *net, int family, int prefix)
{
	int bytes = prefix / 8, bits = prefix % 8;
	if (ip->family != family)
		return 0;
	if (memcmp(ip->addr, net, (size_t)bytes))
		return 0;
	if (bits) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits));
		if ((ip->addr[bytes] & mask) != (net[bytes] & mask))
			return 0;
	}
	return 1;
}

/* ---- domain names ---------------------------------------------------- */

/* A name we may query: labels of 1..63 bytes, at most 253 in all. With
 * multi, at least two labels (RFC 7208 section 4.3). */
static int valid_name(const char *d, int multi)
{
	size_t len = strlen(d), label = 0, labels = 0;
	if (len && d[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (label == 0)
				return 0;
			labels++;
			label = 0;
		} else if (++label > 63) {
			return 0;
		}
	}
	if (label == 0)
		return 0;
	labels++;
	return !multi || labels >= 2;
}

/* Lower-cased copy without a trailing dot. */
static char *norm_name(const char *d)
{
	char *n = str_lower(xstrdup(d));
	size_t l = strlen(n);
	if (l && n[l - 1] == '.')
		n[l - 1] = '\0';
	return n;
}

static int is_subdomain(const char *name, const char *domain)
{
	size_t ln = strlen(name), ld = strlen(domain);
	if (ln == ld)
		return !strcasecmp(name, domain);
	return ln > ld && name[ln - ld - 1] == '.' && !strcasecmp(name + ln - ld, domain);
}

/* ---- the DNS table --------------------------------------------------- */

/* Returns the answered lookup, or NULL after recording the question (the
 * run is then pending). */
static const struct spf_lookup *ask(struct run *r, const char *name, uint16_t type)
{
	struct spf_eval *e = r->e;
	char *n = norm_name(name);
	for (size_t i = 0; i < e->nlookups; i++) {
		if (e->lookups[i]->type == type && !strcmp(e->lookups[i]->name, n)) {
			free(n);
			if (!e->lookups[i]->answered) {
				r->pending = 1;
				return NULL;
			}
			return e->lookups[i];
		}
	}
	if (e->nlookups >= SPF_MAX_LOOKUPS) {
		/* Cannot happen within the RFC limits; a bug if it does. */
		free(n);
		abort();
	}
	/* Entries are allocated one by one: pointers handed out earlier in
	 * this run must stay valid while the table grows. */
	e->lookups = xrealloc(e->lookups, (e->nlookups + 1) * sizeof *e->lookups);
	e->lookups[e->nlookups] = xcalloc(1, sizeof **e->lookups);
	e->lookups[e->nlookups]->name = n;
	e->lookups[e->nlookups]->type = type;
	e->nlookups++;
	r->pending = 1;
	return NULL;
}

void spf_answer(struct spf_eval *e, size_t i, enum dns_status status, const struct dns_answer *answer)
{
	struct spf_lookup *l = e->lookups[i];
	dns_answer_clear(&l->answer);
	l->answered = 1;
	l->status = status;
	if (answer && status == DNS_ANSWER)
		dns_answer_copy(&l->answer, answer);
}

static int dns_failed(const struct spf_lookup *l)
{
	return l->status == DNS_TEMPFAIL || l->status == DNS_TIMEOUT;
}

static int dns_void(const struct spf_lookup *l)
{
	return l->status == DNS_NXDOMAIN || l->status == DNS_NODATA;
}

/* The reverse-lookup name of ip (in-addr.arpa or ip6.arpa). */
static void reverse_name(const struct spf_ip *ip, char *out, size_t n)
{
	size_t o = 0;
	if (ip->family == AF_INET) {
		snprintf(out, n, "%u.%u.%u.%u.in-addr.arpa", ip->addr[3], ip->addr[2], ip->addr[1], ip->addr[0]);
		return;
	}
	for (int i = 15; i >= 0 && o + 5 < n; i--)
		o += (size_t)snprintf(out + o, n - o, "%x.%x.", ip->addr[i] & 0xf, ip->addr[i] >> 4);
	snprintf(out + o, n - o, "ip6.arpa");
}

/* ---- macros (section 7) ------------------------------------------------ */

static int is_delim(int c)
{
	return c && strchr(".-+,/_=", c) != NULL;
}

/* The validated domain name of the client (section 5.5), for %{p}.
 * Returns NULL while pending; "unknown" when there is none. */
static const char *validated_name(struct run *r, const char *domain, char *buf, size_t n, int for_ptr_mech,
				  int *pending)
{
	char rev[80];
	const struct spf_lookup *ptr;
	const char *best = NULL;
	int best_rank = 0;
	size_t count;
	uint16_t atype = r->e->req.ip.family == AF_INET ? DNS_T_A : DNS_T_AAAA;

	(void)for_ptr_mech;
	*pending = 0;
	reverse_name(&r->e->req.ip, rev, sizeof rev);
	ptr = ask(r, rev, DNS_T_PTR);
	if (!ptr) {
		*pending = 1;
		return NULL;
	}
	if (ptr->status != DNS_ANSWER)
		return "unknown";
	count = ptr->answer.nrrs < SPF_MAX_PTR ? ptr->answer.nrrs : SPF_MAX_PTR;
	/* Ask for every name's addresses at once, then look. */
	for (size_t i = 0; i < count; i++)
		if (ptr->answer.rrs[i].name && valid_name(ptr->answer.rrs[i].name, 0) &&
		    !ask(r, ptr->answer.rrs[i].name, atype))
			*pending = 1;
	if (*pending)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		const char *name = ptr->answer.rrs[i].name;
		const struct spf_lookup *a;
		int rank;
		if (!name || !valid_name(name, 0))
			continue;
		a = ask(r, name, atype);
		if (a->status != DNS_ANSWER)
			continue; /* an error skips this name (section 5.5) */
		for (size_t k = 0; k < a->answer.nrrs; k++) {
			if (!ip_match(&r->e->req.ip, a->answer.rrs[k].addr, r->e->req.ip.family,
				      r->e->req.ip.family == AF_INET ? 32 : 128))
				continue;
			rank = !strcasecmp(name, domain) ? 3 : is_subdomain(name, domain) ? 2 : 1;
			if (rank > best_rank) {
				best_rank = rank;
				best = name;
			}
			break;
		}
	}
	if (!best)
		return "unknown";
	str_copy(buf, best, n);
	return buf;
}

/* Appends s to out, URL-escaping when upper (section 7.3). */
static int put(char *out, size_t outsize, size_t *o, const char *s, size_t n, int upper)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = !upper || isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
		if (*o + (plain ? 1 : 3) >= outsize)
			return -1;
		if (plain) {
			out[(*o)++] = (char)c;
		} else {
			out[(*o)++] = '%';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 15];
		}
	}
	return 0;
}

/* The value of one macro letter. */
static const char *macro_value(struct run *r, const struct spf_request *req, const char *domain, char letter,
			       char *buf, size_t bufsize, const char *ptr_name, int *pending)
{
	const char *at = strrchr(req->sender, '@');
	*pending = 0;
	switch (letter) {
	case 's':
		return req->sender;
	case 'l':
		snprintf(buf, bufsize, "%.*s", (int)(at - req->sender), req->sender);
		return buf;
	case 'o':
		return at + 1;
	case 'd':
		return domain;
	case 'h':
		return req->helo;
	case 'v':
		return req->ip.family == AF_INET ? "in-addr" : "ip6";
	case 'i':
		if (req->ip.family == AF_INET) {
			snprintf(buf, bufsize, "%u.%u.%u.%u", req->ip.addr[0], req->ip.addr[1], req->ip.addr[2],
				 req->ip.addr[3]);
		} else {
			size_t o = 0;
			for (int i = 0; i < 16; i++)
				o += (size_t)snprintf(buf + o, bufsize - o, "%s%x.%x", i ? "." : "", req->ip.addr[i] >> 4,
						      req->ip.addr[i] & 0xf);
		}
		return buf;
	case 'c':
		inet_ntop(req->ip.family, req->ip.addr, buf, (socklen_t)bufsize);
		return buf;
	case 'r':
		return req->receiver && *req->receiver ? req->receiver : "unknown";
	case 't':
		snprintf(buf, bufsize, "%lld", (long long)time(NULL));
		return buf;
	case 'p':
		if (ptr_name)
			return ptr_name;
		if (!r)
			return "unknown";
		return validated_name(r, domain, buf, bufsize, 0, pending);
	}
	return NULL;
}

/*
 * Expands a macro-string (section 7.1) into out. exp_context allows the
 * explanation-only letters c, r and t, and spaces. Returns 0, -1 for a
 * syntax error (permerror for the caller), or R_PENDING.
 */
static int expand(struct run *r, const struct spf_request *req, const char *domain, const char *spec,
		  int exp_context, const char *ptr_name, char *out, size_t outsize)
{
	size_t o = 0;
	const char *p = spec;

	while (*p) {
		unsigned char c = (unsigned char)*p;
		if (c != '%') {
			if ((c < 0x21 || c > 0x7e) && !(exp_context && c == ' '))
				return -1;
			if (o + 1 >= outsize)
				return -1;
			out[o++] = (char)c;
			p++;
			continue;
		}
		p++;
		if (*p == '%' || *p == '_' || *p == '-') {
			const char *lit = *p == '%' ? "%" : *p == '_' ? " " : "%20";
			if (put(out, outsize, &o, lit, strlen(lit), 0) < 0)
				return -1;
			p++;
			continue;
		}
		if (*p != '{')
			return -1;
		p++;
		{
			char letter = (char)tolower((unsigned char)*p);
			int upper = isupper((unsigned char)*p), reverse = 0, pending;
			unsigned long keep = 0;
			char delims[16] = "", vbuf[300];
			const char *value;
			const char *parts[256];
			size_t plen[256], np = 0, nd = 0;

			if (!strchr("slodiphv", letter) && !(exp_context && strchr("crt", letter)))
				return -1;
			p++;
			if (isdigit((unsigned char)*p)) {
				while (isdigit((unsigned char)*p)) {
					keep = keep * 10 + (unsigned long)(*p - '0');
					if (keep > 1000)
						keep = 1000;
					p++;
				}
				if (keep == 0)
					return -1;
			}
			if (*p == 'r' || *p == 'R') {
				reverse = 1;
				p++;
			}
			while (is_delim(*p)) {
				if (nd + 1 < sizeof delims)
					delims[nd++] = *p;
				p++;
			}
			delims[nd] = '\0';
			if (*p != '}')
				return -1;
			p++;
			value = macro_value(r, req, domain, letter, vbuf, sizeof vbuf, ptr_name, &pending);
			if (pending)
				return R_PENDING;
			if (!value)
				return -1;
			if (!nd)
				strcpy(delims, ".");
			/* Split on any delimiter, keep the right-most parts. */
			{
				const char *s = value;
				parts[np] = s;
				for (;; s++) {
					if (!*s || strchr(delims, *s)) {
						plen[np] = (size_t)(s - parts[np]);
						if (np + 1 < ARRAY_LEN(parts))
							np++;
						if (!*s)
							break;
						parts[np] = s + 1;
					}
				}
			}
			if (reverse) {
				for (size_t i = 0; i < np / 2; i++) {
					const char *t = parts[i];
					size_t tl = plen[i];
					parts[i] = parts[np - 1 - i];
					plen[i] = plen[np - 1 - i];
					parts[np - 1 - i] = t;
					plen[np - 1 - i] = tl;
				}
			}
			{
				size_t first = keep && keep < np ? np - keep : 0;
				for (size_t i = first; i < np; i++) {
					if (i > first && put(out, outsize, &o, ".", 1, 0) < 0)
						return -1;
					if (put(out, outsize, &o, parts[i], plen[i], upper) < 0)
						return -1;
				}
			}
		}
	}
	out[o] = '\0';
	return 0;
}

int spf_expand_test(const struct spf_request *req, const char *domain, const char *ptr_name, const char *macro,
		    int exp_context, char *out, size_t outsize)
{
	return expand(NULL, req, domain, macro, exp_context, ptr_name ? ptr_name : "unknown", out, outsize);
}

/* Expands a domain-spec for a query and applies the 253-byte rule of
 * section 7.3 (drop labels from the left). */
static int expand_domain(struct run *r, const char *domain, const char *spec, char *out, size_t outsize)
{
	char buf[SPF_MAX_EXPANSION];
	const char *s = buf;
	int rc = expand(r, &r->e->req, domain, spec, 0, NULL, buf, sizeof buf);
	size_t len;
	if (rc)
		return rc;
	len = strlen(buf);
	if (len && buf[len - 1] == '.')
		buf[--len] = '\0';
	while (strlen(s) > 253) {
		const char *dot = strchr(s, '.');
		if (!dot)
			break;
		s = dot + 1;
	}
	str_copy(out, s, outsize);
	return 0;
}

/* ---- parsing (section 4.6 and 12) -------------------------------------- */

static int is_alnum_str(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return 0;
	return 1;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int is_toplabel(const char *s, size_t n)
{
	int alpha = 0;
	if (n == 0)
		return 0;
	if (is_alnum_str(s, n)) {
		for (size_t i = 0; i < n; i++)
			alpha |= isalpha((unsigned char)s[i]);
		return alpha;
	}
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* Checks macro-string syntax; sets *ends_macro when it ends with a
 * macro-expand. The letters c, r and t are allowed only in explanation
 * text (section 7.1), never in a domain-spec. */
static int check_macro_string(const char *s, size_t n, int explanation, int *ends_macro)
{
	size_t i = 0;
	*ends_macro = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		*ends_macro = 0;
		if (c != '%') {
			if (c < 0x21 || c > 0x7e)
				return -1;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		c = (unsigned char)s[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			i += 2;
			*ends_macro = 1;
			continue;
		}
		if (c != '{' || i + 2 >= n)
			return -1;
		i += 2;
		if (!strchr(explanation ? "slodiphvcrt" : "slodiphv", tolower((unsigned char)s[i])) || !s[i])
			return -1;
		i++;
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
		if (i < n && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < n && is_delim(s[i]))
			i++;
		if (i >= n || s[i] != '}')
			return -1;
		i++;
		*ends_macro = 1;
	}
	return 0;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static int check_domain_spec(const char *s, size_t n)
{
	int ends_macro;
	size_t end = n, dot;
	if (n == 0 || check_macro_string(s, n, 0, &ends_macro) < 0)
		return -1;
	if (ends_macro)
		return 0;
	if (end && s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return -1; /* no "." before the top label */
	return is_toplabel(s + dot, end - dot) ? 0 : -1;
}

/* Reads a CIDR length "/N" with no leading zero; -1 on error. */
static int read_cidr(const char **p, const char *end, int max)
{
	const char *s = *p;
	int v = 0;
	if (s >= end || !isdigit((unsigned char)*s) || (*s == '0' && s + 1 < end && isdigit((unsigned char)s[1])))
		return -1;
	while (s < end && isdigit((unsigned char)*s)) {
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
		s++;
	}
	*p = s;
	return v;
}

/* Splits "spec/24//64" into spec and the dual CIDR (section 5.6). */
static int split_dual_cidr(const char *arg, size_t n, size_t *speclen, int *c4, int *c6)
{
	const char *end = arg + n, *p;
	*c4 = *c6 = -1;
	/* Find the start of the trailing CIDR part: "/digits" or "//digits". */
	p = end;
	while (p > arg && isdigit((unsigned char)p[-1]))
		p--;
	if (p < end && p > arg && p[-1] == '/') {
		const char *num = p;
		if (p - 1 > arg && p[-2] == '/') {
			/* "//N": IPv6, maybe after "/M". */
			const char *q = p - 2;
			if (read_cidr(&num, end, 128) < 0 || num != end)
				return -1;
			*c6 = atoi(p);
			p = q;
			end = q;
			while (p > arg && isdigit((unsigned char)p[-1]))
				p--;
			if (p < end && p > arg && p[-1] == '/') {
				num = p;
				if (read_cidr(&num, end, 32) < 0 || num != end)
					return -1;
				*c4 = atoi(p);
				end = p - 1;
			}
		} else {
			if (read_cidr(&num, end, 32) < 0 || num != end)
				return -1;
			*c4 = atoi(p);
			end = p - 1;
		}
	}
	*speclen = (size_t)(end - arg);
	return 0;
}

static void record_free(struct record *rec)
{
	for (size_t i = 0; i < rec->nterms; i++) {
		free(rec->terms[i].spec);
		free(rec->terms[i].text);
	}
	free(rec->terms);
	free(rec->redirect);
	free(rec->exp);
	memset(rec, 0, sizeof *rec);
}

static int parse_term(const char *t, size_t n, struct record *rec, char *why, size_t whysize)
{
	struct term term = { .qualifier = '+', .cidr4 = -1, .cidr6 = -1 };
	const char *name = t, *arg = NULL;
	size_t nlen = 0, alen = 0;
	static const struct {
		const char *name;
		enum mech_type type;
	} mechs[] = { { "all", M_ALL }, { "include", M_INCLUDE }, { "a", M_A },	    { "mx", M_MX },
		      { "ptr", M_PTR }, { "ip4", M_IP4 },	  { "ip6", M_IP6 }, { "exists", M_EXISTS } };
	size_t i;

	/* A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ). */
	for (i = 0; i < n && (isalnum((unsigned char)t[i]) || t[i] == '-' || t[i] == '_' || t[i] == '.'); i++)
		;
	if (i > 0 && i < n && t[i] == '=' && isalpha((unsigned char)t[0])) {
		int ends;
		const char *val = t + i + 1;
		size_t vlen = n - i - 1;
		if (i == 8 && !strncasecmp(t, "redirect", 8)) {
			if (rec->redirect || check_domain_spec(val, vlen) < 0) {
				snprintf(why, whysize, "%s redirect modifier: %.*s",
					 rec->redirect ? "second" : "bad", (int)n, t);
				return -1;
			}
			rec->redirect = xstrndup(val, vlen);
		} else if (i == 3 && !strncasecmp(t, "exp", 3)) {
			if (rec->exp || check_domain_spec(val, vlen) < 0) {
				snprintf(why, whysize, "%s exp modifier: %.*s", rec->exp ? "second" : "bad", (int)n, t);
				return -1;
			}
			rec->exp = xstrndup(val, vlen);
		} else if (check_macro_string(val, vlen, 0, &ends) < 0) {
			snprintf(why, whysize, "bad modifier value: %.*s", (int)n, t);
			return -1;
		}
		/* Unknown modifiers are ignored (section 6). */
		return 0;
	}

	if (n && strchr("+-?~", t[0])) {
		term.qualifier = t[0];
		name++;
		n--;
	}
	while (nlen < n && isalnum((unsigned char)name[nlen]))
		nlen++;
	for (i = 0; i < ARRAY_LEN(mechs); i++)
		if (strlen(mechs[i].name) == nlen && !strncasecmp(name, mechs[i].name, nlen))
			break;
	if (i == ARRAY_LEN(mechs)) {
		snprintf(why, whysize, "unknown mechanism: %.*s", (int)n, name);
		return -1;
	}
	term.type = mechs[i].type;
	if (nlen < n) {
		if (name[nlen] == ':') {
			arg = name + nlen + 1;
			alen = n - nlen - 1;
		} else if (name[nlen] == '/' && (term.type == M_A || term.type == M_MX)) {
			arg = name + nlen;
			alen = n - nlen;
		} else {
			snprintf(why, whysize, "bad mechanism: %.*s", (int)n, name);
			return -1;
		}
	}

	switch (term.type) {
	case M_ALL:
		if (arg)
			goto bad;
		break;
	case M_INCLUDE:
	case M_EXISTS:
		if (!arg || check_domain_spec(arg, alen) < 0)
			goto bad;
		term.spec = xstrndup(arg, alen);
		break;
	case M_PTR:
		if (arg) {
			if (check_domain_spec(arg, alen) < 0)
				goto bad;
			term.spec = xstrndup(arg, alen);
		}
		break;
	case M_A:
	case M_MX:
		if (arg) {
			size_t speclen;
			if (split_dual_cidr(arg, alen, &speclen, &term.cidr4, &term.cidr6) < 0)
				goto bad;
			if (arg[0] == '/') {
				if (speclen != 0)
					goto bad;
			} else {
				if (check_domain_spec(arg, speclen) < 0)
					goto bad;
				term.spec = xstrndup(arg, speclen);
			}
		}
		break;
	case M_IP4:
	case M_IP6: {
		char addr[64];
		const char *slash;
		size_t alen2;
		int max = term.type == M_IP4 ? 32 : 128;
		if (!arg)
			goto bad;
		slash = memchr(arg, '/', alen);
		alen2 = slash ? (size_t)(slash - arg) : alen;
		if (alen2 == 0 || alen2 >= sizeof addr)
			goto bad;
		memcpy(addr, arg, alen2);
		addr[alen2] = '\0';
		if (inet_pton(term.type == M_IP4 ? AF_INET : AF_INET6, addr, term.net.addr) != 1)
			goto bad;
		term.net.family = term.type == M_IP4 ? AF_INET : AF_INET6;
		if (slash) {
			const char *p = slash + 1;
			int v = read_cidr(&p, arg + alen, max);
			if (v < 0 || p != arg + alen)
				goto bad;
			if (term.type == M_IP4)
				term.cidr4 = v;
			else
				term.cidr6 = v;
		}
		break;
	}
	}
	if (rec->nterms >= SPF_MAX_TERMS) {
		snprintf(why, whysize, "too many terms");
		free(term.spec);
		return -1;
	}
	term.text = xstrndup(t, (size_t)(name + n - t));
	rec->terms = xrealloc(rec->terms, (rec->nterms + 1) * sizeof *rec->terms);
	rec->terms[rec->nterms++] = term;
	return 0;
bad:
	snprintf(why, whysize, "bad %.*s mechanism: %.*s", (int)nlen, name, (int)n, name);
	free(term.spec);
	return -1;
}

/* Parses a whole record (after "v=spf1"); any error fails all of it. */
static int parse_record(const char *text, struct record *rec, char *why, size_t whysize)
{
	const char *p = text + 6;

	memset(rec, 0, sizeof *rec);
	if (strlen(text) > SPF_MAX_RECORD) {
		snprintf(why, whysize, "record longer than %d bytes", SPF_MAX_RECORD);
		return -1;
	}
	for (;;) {
		const char *start;
		while (*p == ' ')
			p++;
		if (!*p)
			return 0;
		start = p;
		while (*p && *p != ' ')
			p++;
		if (parse_term(start, (size_t)(p - start), rec, why, whysize) < 0) {
			record_free(rec);
			return -1;
		}
	}
}

/* Whether a TXT string is an SPF record: "v=spf1" then a space or the end. */
static int is_spf_record(const char *s, size_t len)
{
	return len >= 6 && !strncasecmp(s, "v=spf1", 6) && (len == 6 || s[6] == ' ');
}

/* The checks that come before parsing: the version and the characters. */
static int spf_record_syntax(const char *text, char *why, size_t whysize)
{
	if (!is_spf_record(text, strlen(text))) {
		snprintf(why, whysize, "not an SPF record (must start with v=spf1)");
		return -1;
	}
	for (const char *p = text; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			snprintf(why, whysize, "non-ASCII or control character in record");
			return -1;
		}
	}
	return 0;
}

int spf_record_check(const char *text, char *why, size_t whysize)
{
	struct record rec;
	if (spf_record_syntax(text, why, whysize) < 0 || parse_record(text, &rec, why, whysize) < 0)
		return -1;
	record_free(&rec);
	return 0;
}

/*
 * Parsed records are kept in a small direct-mapped cache keyed by the
 * record's text: the same include chains (a large provider's netblocks)
 * come back in evaluation after evaluation. Entries are immutable once
 * made; a colliding record replaces the old entry. Not thread-safe: SPF
 * is evaluated on one thread (the event loop's).
 */
#define RECORD_CACHE 256

struct parsed {
	char *text;
	uint64_t hash;
	int ok;
	char why[200];
	struct record rec;
};

static struct parsed record_cache[RECORD_CACHE];

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static const struct parsed *record_get(const char *text)
{
	uint64_t h = fnv1a(text);
	struct parsed *p = &record_cache[h % RECORD_CACHE];

	if (p->text && p->hash == h && !strcmp(p->text, text))
		return p;
	free(p->text);
	if (p->ok)
		record_free(&p->rec);
	memset(p, 0, sizeof *p);
	p->text = xstrdup(text);
	p->hash = h;
	p->ok = spf_record_syntax(text, p->why, sizeof p->why) == 0 &&
		parse_record(text, &p->rec, p->why, sizeof p->why) == 0;
	return p;
}

/* ---- evaluation --------------------------------------------------------- */

static int check_host(struct run *r, const char *domain, char **explanation);

/* Counts a DNS-querying term (section 4.6.4). Returns 0 or SPF_PERMERROR. */
static int count_term(struct run *r, const char *what)
{
	if (++r->dns_terms > SPF_MAX_DNS_TERMS) {
		set_problem(r, "more than %d DNS-querying terms (at %s)", SPF_MAX_DNS_TERMS, what);
		return SPF_PERMERROR;
	}
	return 0;
}

static int count_void(struct run *r, const char *name)
{
	if (++r->voids > SPF_MAX_VOID) {
		set_problem(r, "more than %d void DNS lookups (at %s)", SPF_MAX_VOID, name);
		return SPF_PERMERROR;
	}
	return 0;
}

/* Returns 1 match, 0 no match, or a result (SPF_TEMPERROR, SPF_PERMERROR,
 * R_PENDING) offset by 10 to keep them apart from 0/1. */
#define OUT(x) (10 + (x))

static int addrs_match(struct run *r, const struct spf_lookup *l, int c4, int c6)
{
	const struct spf_ip *ip = &r->e->req.ip;
	for (size_t i = 0; i < l->answer.nrrs; i++) {
		const struct dns_rr *rr = &l->answer.rrs[i];
		if (rr->type == DNS_T_A && ip_match(ip, rr->addr, AF_INET, c4 < 0 ? 32 : c4))
			return 1;
		if (rr->type == DNS_T_AAAA && ip_match(ip, rr->addr, AF_INET6, c6 < 0 ? 128 : c6))
			return 1;
	}
	return 0;
}

static int mech_a(struct run *r, const char *target, int c4, int c6)
{
	uint16_t type = r->e->req.ip.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	const struct spf_lookup *l;
	int rc;
	if (!valid_name(target, 0))
		return count_void(r, target) ? OUT(SPF_PERMERROR) : 0;
	l = ask(r, target, type);
	if (!l)
		return OUT(R_PENDING);
	if (dns_failed(l)) {
		set_problem(r, "DNS failure looking up %s %s", dns_type_name(type), target);
		return OUT(SPF_TEMPERROR);
	}
	if (dns_void(l))
		return (rc = count_void(r, target)) ? OUT(rc) : 0;
	return addrs_match(r, l, c4, c6);
}

static int mech_mx(struct run *r, const char *target, int c4, int c6)
{
	uint16_t type = r->e->req.ip.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	const struct spf_lookup *mx;
	int pending = 0, rc;
	size_t n = 0;

	if (!valid_name(target, 0))
		return count_void(r, target) ? OUT(SPF_PERMERROR) : 0;
	mx = ask(r, target, DNS_T_MX);
	if (!mx)
		return OUT(R_PENDING);
	if (dns_failed(mx)) {
		set_problem(r, "DNS failure looking up MX %s", target);
		return OUT(SPF_TEMPERROR);
	}
	if (dns_void(mx))
		return (rc = count_void(r, target)) ? OUT(rc) : 0;
	for (size_t i = 0; i < mx->answer.nrrs; i++)
		if (mx->answer.rrs[i].name && *mx->answer.rrs[i].name)
			n++;
	if (n > SPF_MAX_MX) {
		set_problem(r, "more than %d MX names for %s", SPF_MAX_MX, target);
		return OUT(SPF_PERMERROR);
	}
	/* Ask for every exchange at once, then look in order. */
	for (size_t i = 0; i < mx->answer.nrrs; i++) {
		const char *name = mx->answer.rrs[i].name;
		if (name && *name && valid_name(name, 0) && !ask(r, name, type))
			pending = 1;
	}
	if (pending)
		return OUT(R_PENDING);
	for (size_t i = 0; i < mx->answer.nrrs; i++) {
		const char *name = mx->answer.rrs[i].name;
		const struct spf_lookup *a;
		if (!name || !*name || !valid_name(name, 0))
			continue;
		a = ask(r, name, type);
		if (dns_failed(a)) {
			set_problem(r, "DNS failure looking up %s %s", dns_type_name(type), name);
			return OUT(SPF_TEMPERROR);
		}
		if (addrs_match(r, a, c4, c6))
			return 1;
	}
	return 0;
}

static int mech_ptr(struct run *r, const char *target)
{
	char rev[80];
	uint16_t type = r->e->req.ip.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	const struct spf_lookup *ptr;
	size_t count;
	int pending = 0, rc;

	reverse_name(&r->e->req.ip, rev, sizeof rev);
	ptr = ask(r, rev, DNS_T_PTR);
	if (!ptr)
		return OUT(R_PENDING);
	if (dns_void(ptr))
		return (rc = count_void(r, rev)) ? OUT(rc) : 0;
	if (ptr->status != DNS_ANSWER)
		return 0; /* a DNS error: no match (section 5.5) */
	count = ptr->answer.nrrs < SPF_MAX_PTR ? ptr->answer.nrrs : SPF_MAX_PTR;
	for (size_t i = 0; i < count; i++)
		if (ptr->answer.rrs[i].name && valid_name(ptr->answer.rrs[i].name, 0) &&
		    !ask(r, ptr->answer.rrs[i].name, type))
			pending = 1;
	if (pending)
		return OUT(R_PENDING);
	for (size_t i = 0; i < count; i++) {
		const char *name = ptr->answer.rrs[i].name;
		const struct spf_lookup *a;
		if (!name || !valid_name(name, 0))
			continue;
		a = ask(r, name, type);
		if (a->status != DNS_ANSWER)
			continue; /* an error skips this name (section 5.5) */
		if (addrs_match(r, a, -1, -1) && is_subdomain(name, target))
			return 1;
	}
	return 0;
}

static int mech_exists(struct run *r, const char *target)
{
	const struct spf_lookup *l;
	int rc;
	if (!valid_name(target, 0))
		return count_void(r, target) ? OUT(SPF_PERMERROR) : 0;
	l = ask(r, target, DNS_T_A);
	if (!l)
		return OUT(R_PENDING);
	if (dns_failed(l)) {
		set_problem(r, "DNS failure looking up A %s", target);
		return OUT(SPF_TEMPERROR);
	}
	if (dns_void(l))
		return (rc = count_void(r, target)) ? OUT(rc) : 0;
	return 1;
}

static int mech_include(struct run *r, const char *target)
{
	char *expl = NULL;
	int res = check_host(r, target, &expl);
	free(expl);
	switch (res) {
	case SPF_PASS:
		return 1;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return 0;
	case SPF_TEMPERROR:
		return OUT(SPF_TEMPERROR);
	case R_PENDING:
		return OUT(R_PENDING);
	default: /* none and permerror */
		set_problem(r, "include:%s has %s", target, res == SPF_NONE ? "no SPF record" : "an error");
		return OUT(SPF_PERMERROR);
	}
}

static int qualifier_result(char q)
{
	switch (q) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

/* The explanation of a fail (section 6.2): errors only mean "none". */
static int explain(struct run *r, const char *domain, const char *exp, char **out)
{
	char target[SPF_MAX_EXPANSION], text[SPF_MAX_EXPANSION];
	const struct spf_lookup *l;
	int rc = expand_domain(r, domain, exp, target, sizeof target);
	if (rc == R_PENDING)
		return R_PENDING;
	if (rc || !valid_name(target, 0))
		return 0;
	l = ask(r, target, DNS_T_TXT);
	if (!l)
		return R_PENDING;
	if (l->status != DNS_ANSWER || l->answer.nrrs != 1 || memchr(l->answer.rrs[0].data, 0, l->answer.rrs[0].len))
		return 0;
	rc = expand(r, &r->e->req, domain, (const char *)l->answer.rrs[0].data, 1, NULL, text, sizeof text);
	if (rc == R_PENDING)
		return R_PENDING;
	if (rc == 0)
		*out = xstrdup(text);
	return 0;
}

static int eval_record(struct run *r, const char *domain, const struct record *rec, char **explanation)
{
	char target[SPF_MAX_EXPANSION];

	for (size_t i = 0; i < rec->nterms; i++) {
		const struct term *t = &rec->terms[i];
		int m = 0, rc;

		if (t->type == M_INCLUDE || t->type == M_A || t->type == M_MX || t->type == M_PTR ||
		    t->type == M_EXISTS) {
			if ((rc = count_term(r, t->text)))
				return rc;
			rc = expand_domain(r, domain, t->spec ? t->spec : "%{d}", target, sizeof target);
			if (rc == R_PENDING)
				return R_PENDING;
			if (rc) {
				set_problem(r, "cannot expand %s", t->text);
				return SPF_PERMERROR;
			}
		}
		switch (t->type) {
		case M_ALL:
			m = 1;
			break;
		case M_IP4:
		case M_IP6:
			m = ip_match(&r->e->req.ip, t->net.addr, t->net.family,
				     t->type == M_IP4 ? (t->cidr4 < 0 ? 32 : t->cidr4) : (t->cidr6 < 0 ? 128 : t->cidr6));
			break;
		case M_A:
			m = mech_a(r, target, t->cidr4, t->cidr6);
			break;
		case M_MX:
			m = mech_mx(r, target, t->cidr4, t->cidr6);
			break;
		case M_PTR:
			m = mech_ptr(r, target);
			break;
		case M_EXISTS:
			m = mech_exists(r, target);
			break;
		case M_INCLUDE:
			m = mech_include(r, target);
			break;
		}
		if (m >= 10)
			return m - 10;
		if (m) {
			int res = qualifier_result(t->qualifier);
			if (r->depth == 1) {
				free(r->mechanism);
				r->mechanism = xstrdup(t->text);
			}
			if (res == SPF_FAIL && rec->exp && explain(r, domain, rec->exp, explanation) == R_PENDING)
				return R_PENDING;
			return res;
		}
	}
	if (rec->redirect) {
		int rc = count_term(r, "redirect");
		if (rc)
			return rc;
		rc = expand_domain(r, domain, rec->redirect, target, sizeof target);
		if (rc == R_PENDING)
			return R_PENDING;
		if (rc) {
			set_problem(r, "cannot expand redirect=%s", rec->redirect);
			return SPF_PERMERROR;
		}
		if (!valid_name(target, 1)) {
			set_problem(r, "redirect=%s is not a valid domain", target);
			return SPF_PERMERROR;
		}
		rc = check_host(r, target, explanation);
		if (rc == SPF_NONE) {
			set_problem(r, "redirect=%s has no SPF record", target);
			return SPF_PERMERROR;
		}
		return rc;
	}
	if (r->depth == 1) {
		free(r->mechanism);
		r->mechanism = xstrdup("default");
	}
	return SPF_NEUTRAL;
}

/* Sections 4.4 and 4.5: the one SPF record of domain. Returns R_FOUND with
 * *text set (borrowed from the table), or a result. */
static int fetch_record(struct run *r, const char *domain, const char **text)
{
	const struct spf_lookup *l = ask(r, domain, DNS_T_TXT);
	int found = 0;
	if (!l)
		return R_PENDING;
	if (l->status == DNS_NXDOMAIN || l->status == DNS_NODATA)
		return SPF_NONE;
	if (dns_failed(l)) {
		set_problem(r, "DNS failure looking up TXT %s", domain);
		return SPF_TEMPERROR;
	}
	for (size_t i = 0; i < l->answer.nrrs; i++) {
		const struct dns_rr *rr = &l->answer.rrs[i];
		if (!is_spf_record((const char *)rr->data, rr->len))
			continue;
		if (++found > 1) {
			set_problem(r, "more than one SPF record for %s", domain);
			return SPF_PERMERROR;
		}
		*text = (const char *)rr->data;
		if (memchr(rr->data, 0, rr->len)) {
			set_problem(r, "NUL byte in the SPF record of %s", domain);
			return SPF_PERMERROR;
		}
	}
	return found ? R_FOUND : SPF_NONE;
}

static int check_host(struct run *r, const char *domain, char **explanation)
{
	const char *text = NULL;
	const struct parsed *rec;
	int rc;

	if (++r->depth > 2 * SPF_MAX_DNS_TERMS + 2) {
		/* Cannot happen: every level costs a counted term. */
		set_problem(r, "recursion too deep");
		r->depth--;
		return SPF_PERMERROR;
	}
	if (!valid_name(domain, 1)) {
		r->depth--;
		return SPF_NONE;
	}
	rc = fetch_record(r, domain, &text);
	if (rc != R_FOUND) {
		r->depth--;
		return rc;
	}
	rec = record_get(text);
	if (!rec->ok) {
		set_problem(r, "SPF record of %s: %s", domain, rec->why);
		r->depth--;
		return SPF_PERMERROR;
	}
	rc = eval_record(r, domain, &rec->rec, explanation);
	r->depth--;
	return rc;
}

/* ---- the evaluation object ------------------------------------------------ */

struct spf_eval *spf_eval_new(const char *ip, const char *sender, const char *helo, const char *receiver,
			      int identity_helo)
{
	struct spf_eval *e = xcalloc(1, sizeof *e);
	const char *at;

	if (spf_ip_parse(ip, &e->req.ip) < 0) {
		free(e);
		return NULL;
	}
	e->req.helo = xstrdup(helo ? helo : "");
	e->req.receiver = xstrdup(receiver ? receiver : "");
	e->req.identity_helo = identity_helo;
	if (identity_helo || !sender || !*sender) {
		/* RFC 7208 section 2.4: the null sender is postmaster@HELO; the
		 * HELO identity (section 2.3) is checked the same way. */
		e->req.sender = xasprintf("postmaster@%s", e->req.helo);
	} else {
		at = strrchr(sender, '@');
		if (!at)
			e->req.sender = xasprintf("postmaster@%s", sender);
		else if (at == sender)
			e->req.sender = xasprintf("postmaster%s", sender); /* section 4.3 */
		else
			e->req.sender = xstrdup(sender);
	}
	e->domain = xstrdup(strrchr(e->req.sender, '@') + 1);
	return e;
}

void spf_eval_free(struct spf_eval *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nlookups; i++) {
		free(e->lookups[i]->name);
		dns_answer_clear(&e->lookups[i]->answer);
		free(e->lookups[i]);
	}
	free(e->lookups);
	free(e->req.sender);
	free(e->req.helo);
	free(e->req.receiver);
	free(e->domain);
	free(e->explanation);
	free(e->problem);
	free(e->mechanism);
	free(e);
}

enum spf_run_status spf_run(struct spf_eval *e)
{
	struct run r = { .e = e };
	char *expl = NULL;
	int res = check_host(&r, e->domain, &expl);

	if (res == R_PENDING) {
		free(expl);
		free(r.problem);
		free(r.mechanism);
		return SPF_RUN_NEED_DNS;
	}
	free(e->explanation);
	free(e->problem);
	free(e->mechanism);
	e->result = (enum spf_result)res;
	e->explanation = res == SPF_FAIL ? expl : NULL;
	if (res != SPF_FAIL)
		free(expl);
	e->problem = (res == SPF_PERMERROR || res == SPF_TEMPERROR) ? r.problem : NULL;
	if (!e->problem)
		free(r.problem);
	e->mechanism = r.mechanism;
	e->dns_terms = r.dns_terms;
	e->void_lookups = r.voids;
	return SPF_RUN_DONE;
}

/* Quotes a value for a Received-SPF key=value pair when needed. */
static void kv(char *out, size_t n, size_t *o, const char *key, const char *value)
{
	int quote = 0;
	for (const char *p = value; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-/=?^_`{|}~.@:", *p)))
			quote = 1;
	if (!*value)
		quote = 1;
	*o += (size_t)snprintf(out + *o, *o < n ? n - *o : 0, "%s=%s", key, quote ? "\"" : "");
	for (const char *p = value; *p && *o + 3 < n; p++) {
		if (quote && (*p == '"' || *p == '\\'))
			out[(*o)++] = '\\';
		out[(*o)++] = (unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f ? '?' : *p;
	}
	*o += (size_t)snprintf(out + *o, *o < n ? n - *o : 0, "%s; ", quote ? "\"" : "");
}

char *spf_received_header(const struct spf_eval *e)
{
	char ip[INET6_ADDRSTRLEN], buf[2048], comment[600];
	const char *rcv = *e->req.receiver ? e->req.receiver : "postern";
	size_t o = 0;

	inet_ntop(e->req.ip.family, e->req.ip.addr, ip, sizeof ip);
	switch (e->result) {
	case SPF_PASS:
		snprintf(comment, sizeof comment, "%s: domain of %s designates %s as permitted sender", rcv,
			 e->req.sender, ip);
		break;
	case SPF_FAIL:
		snprintf(comment, sizeof comment, "%s: domain of %s does not designate %s as permitted sender", rcv,
			 e->req.sender, ip);
		break;
	case SPF_SOFTFAIL:
		snprintf(comment, sizeof comment, "%s: domain of transitioning %s does not designate %s as permitted sender",
			 rcv, e->req.sender, ip);
		break;
	case SPF_NEUTRAL:
		snprintf(comment, sizeof comment, "%s: %s is neither permitted nor denied by domain of %s", rcv, ip,
			 e->req.sender);
		break;
	case SPF_NONE:
		snprintf(comment, sizeof comment, "%s: domain of %s does not provide an SPF record", rcv, e->req.sender);
		break;
	case SPF_TEMPERROR:
		snprintf(comment, sizeof comment, "%s: temporary error checking %s", rcv, e->domain);
		break;
	case SPF_PERMERROR:
		snprintf(comment, sizeof comment, "%s: permanent error in the SPF record of %s", rcv, e->domain);
		break;
	}
	/* The comment is free text: keep it printable and parenthesis-free. */
	for (char *p = comment; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == '(' || *p == ')' || *p == '\\')
			*p = '?';
	o += (size_t)snprintf(buf, sizeof buf, "%s (%s) ", spf_result_name(e->result), comment);
	kv(buf, sizeof buf, &o, "client-ip", ip);
	kv(buf, sizeof buf, &o, "envelope-from", e->req.sender);
	kv(buf, sizeof buf, &o, "helo", e->req.helo);
	if (e->problem)
		kv(buf, sizeof buf, &o, "problem", e->problem);
	if (e->mechanism)
		kv(buf, sizeof buf, &o, "mechanism", e->mechanism);
	kv(buf, sizeof buf, &o, "receiver", rcv);
	kv(buf, sizeof buf, &o, "identity", e->req.identity_helo ? "helo" : "mailfrom");
	if (o >= sizeof buf)
		o = sizeof buf - 1;
	/* Drop the final "; ". */
	while (o > 0 && (buf[o - 1] == ' ' || buf[o - 1] == ';'))
		o--;
	buf[o] = '\0';
	return xstrdup(buf);
}

/* ---- the asynchronous driver ---------------------------------------------- */

struct spf_job {
	struct dns_batch *batch;
	struct spf_eval *e;
	spf_done_cb cb;
	void *arg;
	int finished;
};

static void job_free(struct spf_job *job)
{
	dns_batch_free(job->batch);
	spf_eval_free(job->e);
	free(job);
}

static void on_dns(void *owner, size_t i, const struct dns_result *res)
{
	struct spf_job *job = owner;
	spf_answer(job->e, i, res->status, res->answer);
}

/* Answers every open question our DNS cache can; returns how many. */
static size_t answer_from_cache(struct spf_job *job)
{
	size_t n = 0;
	for (size_t i = 0; i < job->e->nlookups; i++) {
		const struct spf_lookup *l = job->e->lookups[i];
		if (!l->answered && dns_batch_cached(job->batch, l->name, l->type, i))
			n++;
	}
	return n;
}

/* Runs when nothing is outstanding: replays, asks what is missing, and
 * reports the result once the evaluation is done (always from the loop). */
static void job_step(void *owner)
{
	struct spf_job *job = owner;
	enum spf_run_status st;

	if (job->finished) {
		job->cb(job->arg, job->e);
		job_free(job);
		return;
	}
	/* Replay while the cache alone can answer; go to DNS only for the rest. */
	while ((st = spf_run(job->e)) == SPF_RUN_NEED_DNS && answer_from_cache(job) > 0)
		;
	if (st == SPF_RUN_DONE)
		job->finished = 1;
	for (size_t i = 0; st == SPF_RUN_NEED_DNS && i < job->e->nlookups; i++) {
		const struct spf_lookup *l = job->e->lookups[i];
		if (!l->answered)
			dns_batch_ask(job->batch, l->name, l->type, i);
	}
	dns_batch_wait(job->batch);
}

struct spf_job *spf_check_async(struct dns *dns, const char *ip, const char *sender, const char *helo,
				const char *receiver, int identity_helo, spf_done_cb cb, void *arg)
{
	struct spf_job *job = xcalloc(1, sizeof *job);
	job->cb = cb;
	job->arg = arg;
	job->e = spf_eval_new(ip, sender, helo, receiver, identity_helo);
	if (!job->e) {
		free(job);
		return NULL;
	}
	job->batch = dns_batch_new(dns, on_dns, job_step, job);
	job_step(job);
	return job;
}

void spf_job_cancel(struct spf_job *job)
{
	if (job)
		job_free(job);
}
