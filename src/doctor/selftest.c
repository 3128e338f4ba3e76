/*
 * selftest: see selftest.h. One function per area, each adding items; the
 * score is 10 minus the deductions, never below 0. Weights live in one
 * place, the calls below, so docs/selftest.md can list them.
 */
#include "doctor/selftest.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/dmarc.h"
#include "auth/msg.h"
#include "lib/json.h"
#include "lib/util.h"

/* Messages larger than this count as "large" (many receivers cut at 10-25 MB). */
#define SELFTEST_LARGE (10u * 1024 * 1024)
/* Date in the future or the past by more than this is suspicious. */
#define SELFTEST_DATE_SKEW (24 * 3600)
#define SELFTEST_DATE_OLD (7 * 24 * 3600)

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	return s;
}

/* Adds an item: points deducted (0: passed), the fix (NULL when passed), the
 * finding. */
static void item(struct selftest_grade *g, const char *check, double points, const char *fix, const char *what,
		 ...) __attribute__((format(printf, 5, 6)));
static void item(struct selftest_grade *g, const char *check, double points, const char *fix, const char *what, ...)
{
	va_list ap;
	struct selftest_item *it;
	g->items = xrealloc(g->items, (g->nitems + 1) * sizeof *g->items);
	it = &g->items[g->nitems++];
	it->check = xstrdup(check);
	it->points = points;
	va_start(ap, what);
	it->what = vfmt(what, ap);
	va_end(ap);
	it->fix = fix ? xstrdup(fix) : NULL;
}

static int is(const char *a, const char *b)
{
	return a && !strcasecmp(a, b);
}

/* ---- the client ------------------------------------------------------- */

static int looks_like_ip(const char *s)
{
	return s[0] == '[' || strspn(s, "0123456789.") == strlen(s) || strchr(s, ':');
}

static void grade_client(const struct selftest_facts *f, struct selftest_grade *g)
{
	if (!f->rdns_checked)
		item(g, "reverse-dns", 0, NULL, "not checked (the [policy] checks are off)");
	else if (!f->ptr)
		item(g, "reverse-dns", 1.5,
		     "ask the provider of the sending address to set a PTR record naming the sending host",
		     "%s has no reverse DNS (PTR): Gmail, Outlook and Yahoo junk or refuse such mail",
		     f->client_ip ? f->client_ip : "the client");
	else if (!f->fcrdns)
		item(g, "reverse-dns", 1.0, "publish an A/AAAA record for the PTR name pointing back to the address",
		     "the PTR name %s does not resolve back to %s", f->ptr, f->client_ip ? f->client_ip : "the client");
	else
		item(g, "reverse-dns", 0, NULL, "%s has reverse DNS %s, forward-confirmed",
		     f->client_ip ? f->client_ip : "the client", f->ptr);

	if (!f->helo || !*f->helo)
		item(g, "helo", 1.0, "configure the sending server's host name", "no HELO name");
	else if (looks_like_ip(f->helo) || !strchr(f->helo, '.'))
		item(g, "helo", 0.5, "make the server say HELO with its fully-qualified host name (the PTR name)",
		     "HELO %s is not a fully-qualified host name", f->helo);
	else if (f->helo_resolves == 0)
		item(g, "helo", 0.5, "publish an A/AAAA record for the HELO name", "HELO %s does not resolve", f->helo);
	else if (f->ptr && strcasecmp(f->ptr, f->helo))
		item(g, "helo", 0.2, "make the HELO name and the PTR name the same",
		     "HELO %s differs from the reverse DNS %s", f->helo, f->ptr);
	else
		item(g, "helo", 0, NULL, "HELO %s", f->helo);

	if (f->nlists) {
		char buf[512];
		size_t o = 0;
		double pts = 2.0 * (double)f->nlists;
		for (size_t i = 0; i < f->nlists && o < sizeof buf; i++)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? ", " : "", f->lists[i]);
		item(g, "blocklists", pts > 4 ? 4 : pts, "find why on each list's web site and ask for delisting",
		     "the sending address is listed on %s", buf);
	} else {
		item(g, "blocklists", 0, NULL, "the sending address is on none of the block lists checked");
	}

	if (!f->tls_version)
		item(g, "tls", 1.0, "enable STARTTLS in the sending server",
		     "the message came without TLS: anyone on the path could read it");
	else if (!strcmp(f->tls_version, "TLSv1") || !strcmp(f->tls_version, "TLSv1.1") ||
		 !strncmp(f->tls_version, "SSL", 3))
		item(g, "tls", 0.5, "allow TLS 1.2 or 1.3 in the sending server", "obsolete %s", f->tls_version);
	else
		item(g, "tls", 0, NULL, "%s%s%s", f->tls_version, f->tls_cipher ? " " : "",
		     f->tls_cipher ? f->tls_cipher : "");
}

/* ---- authentication --------------------------------------------------- */

/* d= aligned with the From domain (relaxed: same organisational domain). */
static int aligned(const char *d, const char *from)
{
	char a[256], b[256];
	if (!d || !from)
		return 0;
	dmarc_org_domain(d, a, sizeof a);
	dmarc_org_domain(from, b, sizeof b);
	return !strcasecmp(a, b);
}

static void grade_auth(const struct selftest_facts *f, const char *from_domain, struct selftest_grade *g)
{
	const char *spf = f->spf;
	const char *spfd = f->spf_domain ? f->spf_domain : "the sender's domain";
	int dkim_pass = 0, dkim_aligned = 0, dkim_fail = 0;

	if (!spf)
		item(g, "spf", 0, NULL, "not checked ([spf] is off)");
	else if (is(spf, "pass"))
		item(g, "spf", 0, NULL, "SPF pass for %s", spfd);
	else if (is(spf, "none"))
		item(g, "spf", 1.5, "publish an SPF record listing the addresses that send your mail",
		     "%s has no SPF record", spfd);
	else if (is(spf, "neutral"))
		item(g, "spf", 1.0, "end the SPF record with -all or ~all and list every sending address",
		     "SPF neutral for %s", spfd);
	else if (is(spf, "softfail"))
		item(g, "spf", 1.5, "add the sending address to the SPF record of the sender's domain",
		     "SPF softfail: %s does not list %s", spfd, f->client_ip ? f->client_ip : "the client");
	else if (is(spf, "fail"))
		item(g, "spf", 3.0, "add the sending address to the SPF record of the sender's domain",
		     "SPF fail: %s forbids %s", spfd, f->client_ip ? f->client_ip : "the client");
	else if (is(spf, "permerror"))
		item(g, "spf", 2.0, "correct the SPF record (postern doctor explains what is wrong)",
		     "the SPF record of %s is broken (permerror)", spfd);
	else
		item(g, "spf", 0.5, "make sure the domain's name servers answer reliably",
		     "SPF could not be checked (%s)", spf);

	for (size_t i = 0; i < f->ndkim; i++) {
		if (is(f->dkim[i].result, "pass")) {
			dkim_pass = 1;
			dkim_aligned |= aligned(f->dkim[i].domain, from_domain);
		} else if (is(f->dkim[i].result, "fail") || is(f->dkim[i].result, "permerror")) {
			dkim_fail = 1;
		}
	}
	if (!f->dkim_checked)
		item(g, "dkim", 0, NULL, "not checked ([dkim] verify is off)");
	else if (f->ndkim == 0)
		item(g, "dkim", 1.5, "sign outgoing mail with DKIM (postern signs by itself: postern dkim keygen)",
		     "the message has no DKIM signature");
	else if (dkim_aligned)
		item(g, "dkim", 0, NULL, "a DKIM signature of the From domain %s verifies", from_domain);
	else if (dkim_pass)
		item(g, "dkim", 0.5, "sign with a key of the From domain, not only the provider's",
		     "DKIM verifies, but for another domain than the From domain %s",
		     from_domain ? from_domain : "(none)");
	else
		item(g, "dkim", dkim_fail ? 2.0 : 1.0,
		     "check that the published key matches the signing key and nothing rewrites the message after signing",
		     "no DKIM signature verifies");

	if (!f->dmarc)
		item(g, "dmarc", 0, NULL, "not checked ([dmarc] is off)");
	else if (is(f->dmarc, "pass"))
		item(g, "dmarc", 0, NULL, "DMARC pass (p=%s)", f->dmarc_policy ? f->dmarc_policy : "none");
	else if (is(f->dmarc, "none"))
		item(g, "dmarc", 1.0, "publish a DMARC record: _dmarc.DOMAIN TXT \"v=DMARC1; p=quarantine; rua=mailto:...\"",
		     "%s has no DMARC record: Gmail and Yahoo require one", from_domain ? from_domain : "the From domain");
	else if (is(f->dmarc, "fail"))
		item(g, "dmarc", 2.5, "make SPF or DKIM pass for the From domain itself (aligned)",
		     "DMARC fail for %s (p=%s): neither SPF nor DKIM passes aligned with From",
		     from_domain ? from_domain : "the From domain", f->dmarc_policy ? f->dmarc_policy : "none");
	else
		item(g, "dmarc", 0.5, "correct the DMARC record, or make the DNS answer reliably", "DMARC %s", f->dmarc);
	if (f->dmarc && is(f->dmarc, "pass") && is(f->dmarc_policy, "none"))
		item(g, "dmarc-policy", 0.2, "move to p=quarantine once reports show your mail passes",
		     "DMARC policy p=none protects nobody from forgery");

	if (is(f->arc, "fail"))
		item(g, "arc", 0.5, "a forwarder on the way broke the ARC chain", "ARC chain fails");
}

/* ---- the header ------------------------------------------------------- */

static const char *const MONTHS[] = { "jan", "feb", "mar", "apr", "may", "jun",
				      "jul", "aug", "sep", "oct", "nov", "dec" };

static const char *skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (int depth = 0; *p; p++) {
			if (*p == '\\' && p[1]) {
				p++;
				continue;
			}
			if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

static int read_num(const char **pp, int min_digits, int max_digits, long *out)
{
	const char *p = *pp;
	int n = 0;
	long v = 0;
	while (isdigit((unsigned char)*p) && n < max_digits) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n < min_digits || isdigit((unsigned char)*p))
		return -1;
	*pp = p;
	*out = v;
	return n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int64_t selftest_parse_date(const char *s)
{
	const char *p = skip_cfws(s);
	long day, year, hh, mm, ss = 0, zone = 0;
	int mon = -1, ydigits;
	/* [ day-of-week "," ] */
	if (isalpha((unsigned char)p[0])) {
		while (isalpha((unsigned char)*p))
			p++;
		p = skip_cfws(p);
		if (*p++ != ',')
			return -1;
		p = skip_cfws(p);
	}
	if (read_num(&p, 1, 2, &day) < 0)
		return -1;
	p = skip_cfws(p);
	for (int i = 0; i < 12; i++)
		if (!strncasecmp(p, MONTHS[i], 3) && !isalpha((unsigned char)p[3]))
			mon = i;
	if (mon < 0)
		return -1;
	p = skip_cfws(p + 3);
	if ((ydigits = read_num(&p, 2, 4, &year)) < 0)
		return -1;
	if (ydigits == 2)
		year += year < 50 ? 2000 : 1900; /* RFC 5322 4.3 */
	else if (ydigits == 3)
		year += 1900;
	p = skip_cfws(p);
	if (read_num(&p, 2, 2, &hh) < 0)
		return -1;
	p = skip_cfws(p);
	if (*p++ != ':')
		return -1;
	p = skip_cfws(p);
	if (read_num(&p, 2, 2, &mm) < 0)
		return -1;
	p = skip_cfws(p);
	if (*p == ':') {
		p = skip_cfws(p + 1);
		if (read_num(&p, 2, 2, &ss) < 0)
			return -1;
		p = skip_cfws(p);
	}
	if (*p == '+' || *p == '-') {
		int neg = *p == '-';
		long z;
		p++;
		if (read_num(&p, 4, 4, &z) < 0)
			return -1;
		zone = (z / 100) * 3600 + (z % 100) * 60;
		if (neg)
			zone = -zone;
	} else if (isalpha((unsigned char)*p)) {
		/* Obsolete zones (RFC 5322 4.3): UT, GMT, and the US ones;
		 * military letters mean "unknown" (-0000). */
		static const struct { const char *n; int h; } z[] = {
			{ "UT", 0 }, { "GMT", 0 }, { "EST", -5 }, { "EDT", -4 }, { "CST", -6 },
			{ "CDT", -5 }, { "MST", -7 }, { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 },
		};
		size_t len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
		for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
			if (strlen(z[i].n) == len && !strncasecmp(p, z[i].n, len))
				zone = z[i].h * 3600;
		p += len;
	} else {
		return -1;
	}
	p = skip_cfws(p);
	if (*p || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1900 || year > 9999)
		return -1;
	return days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss - zone;
}

/* The number of fields named name, and the unfolded value of the last. */
static size_t field(const struct msg_headers *h, const char *name, char **value)
{
	size_t n = 0;
	if (value)
		*value = NULL;
	for (size_t i = 0; i < h->nfields; i++) {
		if (!msg_field_is(h, i, name))
			continue;
		n++;
		if (value) {
			free(*value);
			*value = msg_field_unfolded(h, i);
		}
	}
	return n;
}

static int header_8bit(const struct msg_headers *h)
{
	for (size_t i = 0; i < h->len; i++)
		if ((unsigned char)h->buf[i] >= 0x80)
			return 1;
	return 0;
}

/* Grades the header block; copies the From domain (of a From with exactly
 * one address) into from_domain (fdsize bytes), or leaves it empty. */
static void grade_header(const struct selftest_facts *f, struct selftest_grade *g, char *from_domain, size_t fdsize)
{
	struct msg_headers h;
	char *v = NULL;
	size_t n;
	int bulk;

	msg_headers_init(&h);
	msg_headers_parse(&h, f->header ? f->header : "", f->header ? f->header_len : 0);

	n = field(&h, "From", &v);
	if (n == 0) {
		item(g, "from", 2.0, "add a From header field (RFC 5322 section 3.6 requires one)", "no From field");
	} else if (n > 1) {
		item(g, "from", 1.5, "keep exactly one From field", "%zu From fields", n);
	} else {
		char **doms = NULL, why[128];
		size_t nd = 0;
		int k = dmarc_from_parse(v, &doms, &nd, why, sizeof why);
		if (k != 1)
			item(g, "from", 1.0, "give one address in From, e.g. \"Your Name <you@example.org>\"",
			     "From holds %s", k < 0 ? why : "several addresses");
		else {
			item(g, "from", 0, NULL, "From: %s", v);
			snprintf(from_domain, fdsize, "%s", doms[0]);
		}
		for (size_t i = 0; i < nd; i++)
			free(doms[i]);
		free(doms);
	}
	free(v);

	n = field(&h, "Date", &v);
	if (n == 0) {
		item(g, "date", 0.5, "add a Date field (RFC 5322 section 3.6 requires one)", "no Date field");
	} else {
		int64_t t = selftest_parse_date(v);
		if (n > 1)
			item(g, "date", 0.5, "keep exactly one Date field", "%zu Date fields", n);
		else if (t < 0)
			item(g, "date", 0.5, "write the date as RFC 5322 says: \"Mon, 30 Nov 2026 10:00:00 +0000\"",
			     "Date \"%s\" does not parse", v);
		else if (f->now && t > f->now + SELFTEST_DATE_SKEW)
			item(g, "date", 0.5, "set the sending machine's clock right", "Date is in the future: %s", v);
		else if (f->now && t < f->now - SELFTEST_DATE_OLD)
			item(g, "date", 0.3, "set the sending machine's clock right", "Date is more than a week old: %s", v);
		else
			item(g, "date", 0, NULL, "Date: %s", v);
	}
	free(v);

	n = field(&h, "Message-ID", &v);
	if (n == 0)
		item(g, "message-id", 1.0, "add a Message-ID field; spam filters count its absence against you",
		     "no Message-ID field");
	else if (n > 1 || v[0] != '<' || !strchr(v, '@') || v[strlen(v) - 1] != '>')
		item(g, "message-id", 0.5, "use one Message-ID of the form <unique@your.domain>",
		     "malformed Message-ID: %s", v);
	else
		item(g, "message-id", 0, NULL, "Message-ID: %s", v);
	free(v);

	n = field(&h, "Subject", &v);
	if (n == 0 || !*v)
		item(g, "subject", 0.5, "give the message a subject", "no subject");
	else
		item(g, "subject", 0, NULL, "Subject: %s", v);
	free(v);

	n = field(&h, "Content-Type", &v);
	if (n && !strncasecmp(v, "multipart/", 10) && !strcasestr(v, "boundary="))
		item(g, "mime", 1.0, "give the multipart Content-Type its boundary= parameter",
		     "multipart message without a boundary");
	else if (n && !field(&h, "MIME-Version", NULL))
		item(g, "mime", 0.3, "add MIME-Version: 1.0", "Content-Type without MIME-Version");
	else
		item(g, "mime", 0, NULL, "%s", n ? v : "plain text (no Content-Type)");
	free(v);

	if (header_8bit(&h))
		item(g, "encoding", 0.5, "encode non-ASCII header text (RFC 2047), or send with SMTPUTF8",
		     "raw 8-bit bytes in the header");

	bulk = field(&h, "List-Id", NULL) || field(&h, "List-Unsubscribe", NULL);
	if (field(&h, "Precedence", &v) && (strcasestr(v, "bulk") || strcasestr(v, "list")))
		bulk = 1;
	free(v);
	if (bulk) {
		if (!field(&h, "List-Unsubscribe", NULL))
			item(g, "unsubscribe", 1.0, "add List-Unsubscribe (and List-Unsubscribe-Post, RFC 8058)",
			     "bulk-like mail without List-Unsubscribe");
		else if (!field(&h, "List-Unsubscribe-Post", NULL))
			item(g, "unsubscribe", 0.5,
			     "add List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058; Gmail and Yahoo require it for bulk mail)",
			     "List-Unsubscribe without one-click (List-Unsubscribe-Post)");
		else
			item(g, "unsubscribe", 0, NULL, "one-click unsubscribe present");
	}
	if (f->size > SELFTEST_LARGE)
		item(g, "size", 0.5, "send large files as links", "the message is %llu MB",
		     (unsigned long long)(f->size >> 20));
	msg_headers_clear(&h);
}

void selftest_grade(const struct selftest_facts *f, struct selftest_grade *g)
{
	double total = 0;
	char from_domain[256] = "";
	struct selftest_grade hdr = { 0 };

	memset(g, 0, sizeof *g);
	/* The header first (it finds the From domain), listed last. */
	grade_header(f, &hdr, from_domain, sizeof from_domain);
	grade_auth(f, f->from_domain ? f->from_domain : *from_domain ? from_domain : NULL, g);
	grade_client(f, g);
	g->items = xrealloc(g->items, (g->nitems + hdr.nitems + 1) * sizeof *g->items);
	memcpy(g->items + g->nitems, hdr.items, hdr.nitems * sizeof *hdr.items);
	g->nitems += hdr.nitems;
	free(hdr.items);
	for (size_t i = 0; i < g->nitems; i++)
		total += g->items[i].points;
	g->score = 10.0 - total;
	if (g->score < 0)
		g->score = 0;
	g->score = (double)(long)(g->score * 10 + 0.5) / 10;
}

void selftest_grade_clear(struct selftest_grade *g)
{
	for (size_t i = 0; i < g->nitems; i++) {
		free(g->items[i].check);
		free(g->items[i].what);
		free(g->items[i].fix);
	}
	free(g->items);
	memset(g, 0, sizeof *g);
}

void selftest_write_text(FILE *out, const struct selftest_grade *g, const struct selftest_facts *f)
{
	fprintf(out, "Score: %.1f/10 for mail from %s (%s, HELO %s)\n\n", g->score,
		f->envelope_from && *f->envelope_from ? f->envelope_from : "<>", f->client_ip ? f->client_ip : "?",
		f->helo ? f->helo : "?");
	for (size_t i = 0; i < g->nitems; i++) {
		const struct selftest_item *it = &g->items[i];
		if (it->points > 0)
			fprintf(out, "  -%.1f  %-12s %s\n        %-12s fix: %s\n", it->points, it->check, it->what, "",
				it->fix ? it->fix : "");
	}
	for (size_t i = 0; i < g->nitems; i++) {
		const struct selftest_item *it = &g->items[i];
		if (it->points == 0)
			fprintf(out, "   ok   %-12s %s\n", it->check, it->what);
	}
}

static void json_kv(FILE *out, const char *k, const char *v, int comma)
{
	fprintf(out, "%s", comma ? ", " : "");
	json_write_string(out, k);
	fprintf(out, ": ");
	json_write_string(out, v);
}

void selftest_write_json(FILE *out, const char *token, const struct selftest_grade *g,
			 const struct selftest_facts *f)
{
	fprintf(out, "{\"token\": ");
	json_write_string(out, token);
	fprintf(out, ", \"received\": %lld, \"score\": %.1f, \"items\": [", (long long)f->now, g->score);
	for (size_t i = 0; i < g->nitems; i++) {
		const struct selftest_item *it = &g->items[i];
		fprintf(out, "%s{", i ? ", " : "");
		json_kv(out, "check", it->check, 0);
		fprintf(out, ", \"points\": %.1f", it->points);
		json_kv(out, "what", it->what, 1);
		json_kv(out, "fix", it->fix, 1);
		fprintf(out, "}");
	}
	fprintf(out, "], \"facts\": {");
	json_kv(out, "client_ip", f->client_ip, 0);
	json_kv(out, "helo", f->helo, 1);
	json_kv(out, "ptr", f->ptr, 1);
	fprintf(out, ", \"fcrdns\": %s", f->fcrdns ? "true" : "false");
	json_kv(out, "envelope_from", f->envelope_from, 1);
	json_kv(out, "spf", f->spf, 1);
	json_kv(out, "spf_domain", f->spf_domain, 1);
	json_kv(out, "spf_helo", f->spf_helo, 1);
	fprintf(out, ", \"dkim\": [");
	for (size_t i = 0; i < f->ndkim; i++) {
		fprintf(out, "%s{", i ? ", " : "");
		json_kv(out, "domain", f->dkim[i].domain, 0);
		json_kv(out, "result", f->dkim[i].result, 1);
		json_kv(out, "algorithm", f->dkim[i].algorithm, 1);
		fprintf(out, "}");
	}
	fprintf(out, "]");
	json_kv(out, "dmarc", f->dmarc, 1);
	json_kv(out, "dmarc_policy", f->dmarc_policy, 1);
	json_kv(out, "from_domain", f->from_domain, 1);
	json_kv(out, "arc", f->arc, 1);
	fprintf(out, ", \"lists\": [");
	for (size_t i = 0; i < f->nlists; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_write_string(out, f->lists[i]);
	}
	fprintf(out, "]");
	json_kv(out, "tls_version", f->tls_version, 1);
	json_kv(out, "tls_cipher", f->tls_cipher, 1);
	fprintf(out, ", \"size\": %llu}}\n", (unsigned long long)f->size);
}
