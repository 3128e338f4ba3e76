/*
 * doctor: see doctor.h. Each check_* function asks DNS what a receiver
 * would ask and adds one or more verdicts; fixes are concrete (the record to
 * publish, the command to run). Nothing here changes anything.
 *
 * RFCs: 5321 section 5.1 (MX, implicit MX), 7505 (null MX), 7208 (SPF,
 * section 4.6.4: ten DNS-querying terms), 6376 section 3.6 (DKIM key
 * records), 7489 sections 6.1 and 7.1 (DMARC record, external report
 * destinations), 8461 section 3.1 (MTA-STS TXT record), 8460 section 3
 * (TLS-RPT record).
 */
#include "doctor/doctor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "deliver/mtasts.h"
#include "policy/conf.h"
#include "dns/dns.h"
#include "lib/util.h"
#include "store/store.h"

#define DOCTOR_MAX_ADDRESSES 16

const char *doctor_status_name(enum doctor_status s)
{
	return s == DOCTOR_PASS ? "pass" : s == DOCTOR_WARN ? "warn" : "fail";
}

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	return s;
}

static char *fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	va_start(ap, f);
	s = vfmt(f, ap);
	va_end(ap);
	return s;
}

/* Adds a verdict. fix (may be NULL) is taken as given, already formatted. */
static void add(struct doctor_report *r, const char *name, enum doctor_status st, char *fix, const char *detail, ...)
	__attribute__((format(printf, 5, 6)));
static void add(struct doctor_report *r, const char *name, enum doctor_status st, char *fix, const char *detail, ...)
{
	va_list ap;
	struct doctor_check *c;
	r->checks = xrealloc(r->checks, (r->nchecks + 1) * sizeof *r->checks);
	c = &r->checks[r->nchecks++];
	c->name = xstrdup(name);
	c->status = st;
	va_start(ap, detail);
	c->detail = vfmt(detail, ap);
	va_end(ap);
	c->fix = fix;
	r->counts[st]++;
}

static void publish(struct doctor_report *r, char *line)
{
	for (size_t i = 0; i < r->npublish; i++)
		if (!strcmp(r->publish[i], line)) {
			free(line);
			return;
		}
	r->publish = xrealloc(r->publish, (r->npublish + 1) * sizeof *r->publish);
	r->publish[r->npublish++] = line;
}

/* A TXT record as a zone-file line, split into strings of at most 255. */
static char *txt_line(const char *owner, const char *text)
{
	size_t len = strlen(text), cap = strlen(owner) + len + len / 255 * 4 + 32;
	char *out = xmalloc(cap);
	size_t o = (size_t)snprintf(out, cap, "%s. IN TXT", owner);
	for (size_t off = 0; off < len || off == 0; off += 255) {
		size_t n = len - off < 255 ? len - off : 255;
		o += (size_t)snprintf(out + o, cap - o, " \"%.*s\"", (int)n, text + off);
		if (len == 0)
			break;
	}
	return out;
}

/* ---- blocking lookups (the CLI is the only user) ---------------------- */

struct answer {
	enum dns_status status;
	struct dns_answer a;
	int done;
};

static void answer_cb(void *arg, const struct dns_result *res)
{
	struct answer *q = arg;
	q->status = res->status;
	dns_answer_copy(&q->a, res->answer);
	q->done = 1;
}

static void lookup(struct dns *dns, const char *name, uint16_t type, struct answer *q)
{
	memset(q, 0, sizeof *q);
	dns_query(dns, name, type, answer_cb, q);
	while (!q->done)
		event_base_loop(dns_event_base(dns), EVLOOP_ONCE);
}

static void answer_clear(struct answer *q)
{
	dns_answer_clear(&q->a);
}

static const char *status_text(enum dns_status st)
{
	switch (st) {
	case DNS_NXDOMAIN: return "the name does not exist";
	case DNS_NODATA: return "no record of that type";
	case DNS_TIMEOUT: return "no answer in time";
	case DNS_TEMPFAIL: return "the lookup failed";
	default: return "answered";
	}
}

/* The TXT records of name that start with prefix (e.g. "v=spf1"), the
 * prefix followed by a space, ';' or the end. Returns how many; texts[]
 * gets copies (the caller frees). */
static size_t txt_with_prefix(const struct answer *q, const char *prefix, char **texts, size_t max)
{
	size_t n = 0, pl = strlen(prefix);
	if (q->status != DNS_ANSWER)
		return 0;
	for (size_t i = 0; i < q->a.nrrs; i++) {
		const struct dns_rr *rr = &q->a.rrs[i];
		if (rr->type != DNS_T_TXT || rr->len < pl || strncasecmp((const char *)rr->data, prefix, pl))
			continue;
		if (rr->len > pl && rr->data[pl] != ' ' && rr->data[pl] != ';' && rr->data[pl] != '\t')
			continue;
		if (n < max) {
			texts[n] = xmalloc(rr->len + 1);
			memcpy(texts[n], rr->data, rr->len);
			texts[n][rr->len] = '\0';
		}
		n++;
	}
	return n;
}

static void free_texts(char **texts, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++)
		free(texts[i]);
}

static int addr_text(const struct dns_rr *rr, char *out, size_t n)
{
	return inet_ntop(rr->type == DNS_T_A ? AF_INET : AF_INET6, rr->addr, out, (socklen_t)n) ? 0 : -1;
}

/* The host's addresses, A then AAAA. */
static size_t host_addresses(struct dns *dns, const char *host, char **out, size_t max, int *failed)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
	size_t n = 0;
	*failed = 0;
	for (size_t t = 0; t < 2; t++) {
		struct answer q;
		lookup(dns, host, types[t], &q);
		if (q.status == DNS_TEMPFAIL || q.status == DNS_TIMEOUT)
			*failed = 1;
		for (size_t i = 0; q.status == DNS_ANSWER && i < q.a.nrrs && n < max; i++) {
			char buf[INET6_ADDRSTRLEN];
			if (q.a.rrs[i].type == types[t] && addr_text(&q.a.rrs[i], buf, sizeof buf) == 0)
				out[n++] = xstrdup(buf);
		}
		answer_clear(&q);
	}
	return n;
}

static int same_address(const char *a, const char *b)
{
	struct spf_ip x, y;
	if (spf_ip_parse(a, &x) < 0 || spf_ip_parse(b, &y) < 0)
		return 0;
	return x.family == y.family && !memcmp(x.addr, y.addr, x.family == AF_INET ? 4 : 16);
}

static int is_ipv6(const char *a)
{
	return strchr(a, ':') != NULL;
}

/* The reverse-DNS name of an address under zone ("in-addr.arpa", or a
 * DNS list's zone). */
static int reverse_name(const char *addr, const char *zone, char *out, size_t n)
{
	struct spf_ip ip;
	size_t o = 0;
	if (spf_ip_parse(addr, &ip) < 0)
		return -1;
	if (ip.family == AF_INET) {
		o = (size_t)snprintf(out, n, "%u.%u.%u.%u.", ip.addr[3], ip.addr[2], ip.addr[1], ip.addr[0]);
	} else {
		for (int i = 15; i >= 0 && o < n; i--)
			o += (size_t)snprintf(out + o, n - o, "%x.%x.", ip.addr[i] & 15, ip.addr[i] >> 4);
	}
	if (o >= n)
		return -1;
	snprintf(out + o, n - o, "%s", zone ? zone : ip.family == AF_INET ? "in-addr.arpa" : "ip6.arpa");
	return 0;
}

/* ---- the checks ------------------------------------------------------- */

static void check_mx(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	struct answer q;
	char *line = fmt("%s. IN MX 10 %s.", o->domain, o->hostname);
	lookup(dns, o->domain, DNS_T_MX, &q);
	if (q.status == DNS_ANSWER) {
		int ours = 0, null_mx = 0;
		char names[512] = "";
		size_t nl = 0;
		for (size_t i = 0; i < q.a.nrrs; i++) {
			const struct dns_rr *rr = &q.a.rrs[i];
			if (rr->type != DNS_T_MX)
				continue;
			if (!rr->name || !*rr->name)
				null_mx = 1;
			else if (dns_name_eq(rr->name, o->hostname))
				ours = 1;
			if (nl < sizeof names)
				nl += (size_t)snprintf(names + nl, sizeof names - nl, "%s%u %s", nl ? ", " : "", rr->pref,
						       rr->name && *rr->name ? rr->name : ".");
		}
		if (null_mx)
			add(r, "mx", DOCTOR_FAIL, fmt("remove the null MX and publish: %s", line),
			    "%s publishes a null MX (RFC 7505): it says it receives no mail", o->domain);
		else if (ours)
			add(r, "mx", DOCTOR_PASS, NULL, "MX %s includes this host (%s)", names, o->hostname);
		else {
			add(r, "mx", DOCTOR_WARN, fmt("if this host should receive mail for %s, publish: %s", o->domain, line),
			    "MX %s does not name this host (%s)", names, o->hostname);
			publish(r, line);
			line = NULL;
		}
	} else if (q.status == DNS_NODATA || q.status == DNS_NXDOMAIN) {
		add(r, "mx", DOCTOR_FAIL, fmt("publish: %s", line), "%s has no MX record (%s)", o->domain,
		    status_text(q.status));
		publish(r, line);
		line = NULL;
	} else {
		add(r, "mx", DOCTOR_WARN, xstrdup("check that the domain's name servers answer, then run the doctor again"),
		    "the MX lookup for %s failed: %s", o->domain, status_text(q.status));
	}
	free(line);
	answer_clear(&q);
}

static void check_host(struct dns *dns, const struct doctor_options *o, struct doctor_report *r, char **hostaddrs,
		       size_t nhost, int failed)
{
	struct ifaddrs *ifs = NULL;
	size_t local = 0;
	if (nhost == 0) {
		add(r, "host", DOCTOR_FAIL,
		    fmt("publish A (and AAAA) records for %s, e.g.: %s. IN A <this host's IPv4 address>", o->hostname,
			o->hostname),
		    "%s has no A or AAAA record%s", o->hostname, failed ? " (a lookup failed)" : "");
		return;
	}
	(void)dns;
	for (size_t i = 0; i < r->naddresses; i++) {
		int found = 0;
		for (size_t j = 0; j < nhost; j++)
			found |= same_address(r->addresses[i], hostaddrs[j]);
		if (!found)
			add(r, "host", DOCTOR_FAIL, fmt("publish: %s. IN %s %s", o->hostname,
						      is_ipv6(r->addresses[i]) ? "AAAA" : "A", r->addresses[i]),
			    "%s does not resolve to %s", o->hostname, r->addresses[i]);
	}
	/* Addresses of this machine's interfaces: behind NAT none match, which
	 * is worth knowing but not wrong. Addresses given by the user are
	 * taken as they are (they may be those of a NAT gateway). */
	if (o->naddresses)
		local = 1;
	else if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
			char buf[INET6_ADDRSTRLEN];
			if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
				continue;
			if (i->ifa_addr->sa_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof buf);
			else
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, buf, sizeof buf);
			for (size_t j = 0; j < nhost; j++)
				local += same_address(buf, hostaddrs[j]);
		}
		freeifaddrs(ifs);
	}
	{
		char list[512] = "";
		size_t l = 0;
		for (size_t j = 0; j < nhost && l < sizeof list; j++)
			l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", j ? ", " : "", hostaddrs[j]);
		if (local)
			add(r, "host", DOCTOR_PASS, NULL, "%s resolves to %s", o->hostname, list);
		else
			add(r, "host", DOCTOR_WARN,
			    fmt("if this host is behind NAT this is expected; otherwise correct the A/AAAA records of %s",
				o->hostname),
			    "%s resolves to %s, none of which is an address of this machine", o->hostname, list);
	}
}

static void check_ptr(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	for (size_t i = 0; i < r->naddresses; i++) {
		const char *addr = r->addresses[i];
		char rev[128], name[64];
		struct answer q;
		char *ptr = NULL;
		int confirmed = 0;
		snprintf(name, sizeof name, "ptr %s", addr);
		if (reverse_name(addr, NULL, rev, sizeof rev) < 0)
			continue;
		lookup(dns, rev, DNS_T_PTR, &q);
		for (size_t j = 0; q.status == DNS_ANSWER && j < q.a.nrrs; j++)
			if (q.a.rrs[j].type == DNS_T_PTR && q.a.rrs[j].name && !ptr)
				ptr = xstrdup(q.a.rrs[j].name);
		if (!ptr) {
			add(r, name, DOCTOR_FAIL,
			    fmt("ask the provider of %s to set its reverse DNS (PTR) to %s: receivers such as Gmail and "
				"Outlook refuse or junk mail from addresses without one",
				addr, o->hostname),
			    "%s has no PTR record (%s)", addr, status_text(q.status));
			answer_clear(&q);
			continue;
		}
		answer_clear(&q);
		{
			char *fwd[DOCTOR_MAX_ADDRESSES];
			int failed;
			size_t n = host_addresses(dns, ptr, fwd, DOCTOR_MAX_ADDRESSES, &failed);
			for (size_t j = 0; j < n; j++) {
				confirmed |= same_address(fwd[j], addr);
				free(fwd[j]);
			}
		}
		if (!confirmed)
			add(r, name, DOCTOR_FAIL,
			    fmt("publish an address record for %s pointing back to %s, or have the PTR changed to %s", ptr,
				addr, o->hostname),
			    "%s has PTR %s, but %s does not resolve back to %s (not forward-confirmed)", addr, ptr, ptr,
			    addr);
		else if (!dns_name_eq(ptr, o->hostname))
			add(r, name, DOCTOR_WARN,
			    fmt("set [server] hostname to %s, or have the PTR of %s changed to %s, so that the HELO name "
				"and the reverse DNS agree",
				ptr, addr, o->hostname),
			    "%s has PTR %s (forward-confirmed) but this host says HELO %s", addr, ptr, o->hostname);
		else
			add(r, name, DOCTOR_PASS, NULL, "%s has PTR %s, forward-confirmed, the same as the HELO name", addr,
			    ptr);
		free(ptr);
	}
}

/* An SPF evaluation, blocking. */
struct spf_wait {
	int done;
	enum spf_result result;
	char *problem;
	unsigned dns_terms;
};

static void spf_cb(void *arg, struct spf_eval *e)
{
	struct spf_wait *w = arg;
	w->result = e->result;
	w->problem = e->problem ? xstrdup(e->problem) : NULL;
	w->dns_terms = e->dns_terms;
	w->done = 1;
}

static void spf_eval_blocking(struct dns *dns, const char *ip, const char *sender, const char *helo,
			      int identity_helo, struct spf_wait *w)
{
	memset(w, 0, sizeof *w);
	spf_check_async(dns, ip, sender, helo, helo, identity_helo, spf_cb, w);
	while (!w->done)
		event_base_loop(dns_event_base(dns), EVLOOP_ONCE);
}

/* The SPF record we would publish: our addresses, then -all. */
static char *spf_suggestion(const struct doctor_report *r)
{
	size_t cap = 64 + r->naddresses * 48, o;
	char *s = xmalloc(cap);
	o = (size_t)snprintf(s, cap, "v=spf1");
	for (size_t i = 0; i < r->naddresses; i++)
		o += (size_t)snprintf(s + o, cap - o, " %s:%s", is_ipv6(r->addresses[i]) ? "ip6" : "ip4", r->addresses[i]);
	snprintf(s + o, cap - o, " -all");
	return s;
}

/* Mail that leaves through the relay comes from the relay's addresses:
 * the domain's SPF record must allow them too. */
static void check_spf_relay(struct dns *dns, const struct doctor_options *o, struct doctor_report *r,
			    const char *domain)
{
	char *addrs[DOCTOR_MAX_ADDRESSES], sender[300];
	int failed;
	size_t n = host_addresses(dns, o->relay_host, addrs, DOCTOR_MAX_ADDRESSES, &failed);
	snprintf(sender, sizeof sender, "postmaster@%s", domain);
	if (n == 0)
		add(r, "spf relay", DOCTOR_WARN, fmt("check [relay] host = %s", o->relay_host),
		    "the relay %s has no address%s, so its SPF authorisation cannot be checked", o->relay_host,
		    failed ? " (a lookup failed)" : "");
	for (size_t i = 0; i < n; i++) {
		struct spf_wait w;
		spf_eval_blocking(dns, addrs[i], sender, o->hostname, 0, &w);
		if (w.result == SPF_PASS)
			add(r, "spf relay", DOCTOR_PASS, NULL, "%s authorises the relay %s (%s)", domain, o->relay_host,
			    addrs[i]);
		else
			add(r, "spf relay", w.result == SPF_TEMPERROR ? DOCTOR_WARN : DOCTOR_FAIL,
			    fmt("add the relay to the SPF record of %s: the include: its provider documents, or a:%s", domain,
				o->relay_host),
			    "SPF of %s does not authorise the relay %s (%s): result %s; mail sent through the relay fails SPF",
			    domain, o->relay_host, addrs[i], spf_result_name(w.result));
		free(w.problem);
		free(addrs[i]);
	}
}

static void check_spf_identity(struct dns *dns, const struct doctor_options *o, struct doctor_report *r,
			       const char *domain, int identity_helo)
{
	const char *name = identity_helo ? "spf helo" : "spf";
	struct answer q;
	char *texts[4], why[256];
	size_t n;
	char *suggest = spf_suggestion(r);
	lookup(dns, domain, DNS_T_TXT, &q);
	n = txt_with_prefix(&q, "v=spf1", texts, 4);
	if (q.status == DNS_TEMPFAIL || q.status == DNS_TIMEOUT) {
		add(r, name, DOCTOR_WARN, xstrdup("check that the domain's name servers answer, then run again"),
		    "the TXT lookup for %s failed: %s", domain, status_text(q.status));
		goto out;
	}
	if (n == 0) {
		char *line = txt_line(domain, identity_helo ? "v=spf1 a -all" : suggest);
		add(r, name, identity_helo ? DOCTOR_WARN : DOCTOR_FAIL, fmt("publish: %s", line),
		    "%s has no SPF record", domain);
		publish(r, line);
		goto out;
	}
	if (n > 1) {
		add(r, name, DOCTOR_FAIL,
		    fmt("merge them into one record (RFC 7208 section 3.2: two records are a permanent error), e.g. %s",
			suggest),
		    "%s has %zu SPF records", domain, n);
		goto out;
	}
	if (spf_record_check(texts[0], why, sizeof why) < 0) {
		add(r, name, DOCTOR_FAIL, fmt("correct the record; a valid one is: %s", suggest),
		    "the SPF record of %s is invalid: %s (\"%s\")", domain, why, texts[0]);
		goto out;
	}
	for (size_t i = 0; i < r->naddresses; i++) {
		struct spf_wait w;
		char sender[300];
		snprintf(sender, sizeof sender, "postmaster@%s", domain);
		spf_eval_blocking(dns, r->addresses[i], identity_helo ? "" : sender, identity_helo ? domain : o->hostname,
				  identity_helo, &w);
		if (w.result == SPF_PASS)
			add(r, name, DOCTOR_PASS, NULL, "%s authorises %s (%u of 10 DNS lookups)", domain, r->addresses[i],
			    w.dns_terms);
		else if (w.result == SPF_PERMERROR)
			add(r, name, DOCTOR_FAIL, fmt("correct the record of %s (at most 10 DNS-querying terms: "
						      "include, a, mx, ptr, exists, redirect)", domain),
			    "SPF of %s for %s: permerror: %s", domain, r->addresses[i], w.problem ? w.problem : "");
		else if (w.result == SPF_TEMPERROR)
			add(r, name, DOCTOR_WARN, xstrdup("a lookup failed; run the doctor again"),
			    "SPF of %s for %s: temperror: %s", domain, r->addresses[i], w.problem ? w.problem : "");
		else
			add(r, name, DOCTOR_FAIL,
			    fmt("add %s:%s to the SPF record of %s", is_ipv6(r->addresses[i]) ? "ip6" : "ip4",
				r->addresses[i], domain),
			    "SPF of %s does not authorise %s (result %s)", domain, r->addresses[i],
			    spf_result_name(w.result));
		free(w.problem);
	}
	if (!identity_helo && o->relay_host && *o->relay_host)
		check_spf_relay(dns, o, r, domain);
out:
	free_texts(texts, n, 4);
	free(suggest);
	answer_clear(&q);
}

/* The p= value of a DKIM record, whitespace removed. */
static char *dkim_p(const char *rec, size_t len)
{
	struct dkim_tags t;
	const struct dkim_tag *p;
	const char *why;
	char *out;
	size_t o = 0;
	if (dkim_tags_parse(rec, len, &t, &why) < 0 || !(p = dkim_tags_get(&t, "p")))
		return NULL;
	out = xmalloc(p->value_len + 1);
	for (size_t i = 0; i < p->value_len; i++)
		if (p->value[i] != ' ' && p->value[i] != '\t' && p->value[i] != '\r' && p->value[i] != '\n')
			out[o++] = p->value[i];
	out[o] = '\0';
	return out;
}

static void check_dkim_key(struct dns *dns, const struct doctor_options *o, struct doctor_report *r,
			   const char *selector, const char *path)
{
	char err[256], name[300], owner[300];
	struct dkim_sign_key *k = dkim_sign_key_load(o->domain, selector, path, err, sizeof err);
	char *want, *want_p, *line;
	struct answer q;
	int found = 0, matched = 0;
	snprintf(name, sizeof name, "dkim %s", selector);
	if (!k) {
		add(r, name, DOCTOR_FAIL, fmt("check the key file %s (postern dkim keygen writes a good one)", path),
		    "cannot load the private key %s: %s", path, err);
		return;
	}
	want = dkim_sign_key_record(k);
	want_p = dkim_p(want, strlen(want));
	snprintf(owner, sizeof owner, "%s._domainkey.%s", selector, o->domain);
	line = txt_line(owner, want);
	lookup(dns, owner, DNS_T_TXT, &q);
	for (size_t i = 0; q.status == DNS_ANSWER && i < q.a.nrrs; i++) {
		const struct dns_rr *rr = &q.a.rrs[i];
		char *p;
		if (rr->type != DNS_T_TXT)
			continue;
		found = 1;
		p = dkim_p((const char *)rr->data, rr->len);
		if (p && want_p && !strcmp(p, want_p))
			matched = 1;
		free(p);
	}
	if (matched) {
		add(r, name, DOCTOR_PASS, NULL, "%s publishes the public half of %s (%s)", owner, path,
		    dkim_sign_key_algorithm(k));
		free(line);
	} else if (found) {
		add(r, name, DOCTOR_FAIL, fmt("replace the record with: %s", line),
		    "%s is published but does not match the key %s: signatures will fail", owner, path);
		publish(r, line);
	} else if (q.status == DNS_TEMPFAIL || q.status == DNS_TIMEOUT) {
		add(r, name, DOCTOR_WARN, xstrdup("run the doctor again"), "the lookup of %s failed: %s", owner,
		    status_text(q.status));
		free(line);
	} else {
		add(r, name, DOCTOR_FAIL, fmt("publish: %s", line), "%s is not published: signatures with %s fail",
		    owner, path);
		publish(r, line);
	}
	answer_clear(&q);
	free(want);
	free(want_p);
	dkim_sign_key_free(k);
}

static void check_dkim(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	char dir[4096];
	DIR *d;
	struct dirent *e;
	size_t keys = 0;
	snprintf(dir, sizeof dir, "%s/%s", o->key_dir, o->domain);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char sel[256], path[4096 + 256];
		if (len <= 4 || strcmp(e->d_name + len - 4, ".key") || len - 4 >= sizeof sel || e->d_name[0] == '.')
			continue;
		memcpy(sel, e->d_name, len - 4);
		sel[len - 4] = '\0';
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		check_dkim_key(dns, o, r, sel, path);
		keys++;
	}
	if (d)
		closedir(d);
	if (!keys)
		add(r, "dkim", DOCTOR_FAIL,
		    fmt("create the RSA and Ed25519 pair: postern dkim keygen --domain %s; publish both records, "
			"then reload (kill -HUP)",
			o->domain),
		    "no DKIM key for %s under %s: mail we send is not signed", o->domain, dir);
}

static int our_domain(const struct doctor_options *o, const char *domain)
{
	for (size_t i = 0; i < o->nour_domains; i++)
		if (!strcasecmp(o->our_domains[i], domain))
			return 1;
	return 0;
}

/* One rua= URI of our DMARC record: does it reach somebody? */
static void check_rua(struct dns *dns, const struct doctor_options *o, struct doctor_report *r, const char *uri)
{
	const char *addr, *at;
	if (strncasecmp(uri, "mailto:", 7)) {
		add(r, "dmarc rua", DOCTOR_WARN, xstrdup("use a mailto: URI"), "rua=%s is not a mailto: URI", uri);
		return;
	}
	addr = uri + 7;
	at = strrchr(addr, '@');
	if (!at) {
		add(r, "dmarc rua", DOCTOR_FAIL, xstrdup("give a full address: rua=mailto:dmarc-reports@your.domain"),
		    "rua=%s has no domain", uri);
		return;
	}
	if (our_domain(o, at + 1)) {
		char **boxes = NULL;
		size_t n = 0;
		char lower[512];
		size_t i;
		for (i = 0; addr[i] && i + 1 < sizeof lower; i++)
			lower[i] = (char)(addr[i] >= 'A' && addr[i] <= 'Z' ? addr[i] + 32 : addr[i]);
		lower[i] = '\0';
		if (!o->store)
			add(r, "dmarc rua", DOCTOR_PASS, NULL, "reports go to %s, one of our domains", addr);
		else if (store_resolve(o->store, lower, "+", &boxes, &n) == STORE_OK && n > 0)
			add(r, "dmarc rua", DOCTOR_PASS, NULL, "reports go to %s, which we receive", addr);
		else
			add(r, "dmarc rua", DOCTOR_FAIL,
			    fmt("create it: postern user add %s (or postern alias add %s postmaster@%s)", lower, lower,
				o->domain),
			    "reports go to %s, but no mailbox or alias receives it", addr);
		store_strv_free(boxes, n);
	} else {
		/* RFC 7489 section 7.1: the other domain must agree. */
		char name[600], *texts[2];
		struct answer q;
		size_t nt;
		snprintf(name, sizeof name, "%s._report._dmarc.%s", o->domain, at + 1);
		lookup(dns, name, DNS_T_TXT, &q);
		nt = txt_with_prefix(&q, "v=DMARC1", texts, 2);
		if (nt)
			add(r, "dmarc rua", DOCTOR_PASS, NULL, "reports go to %s; %s authorises it (RFC 7489 7.1)", addr,
			    at + 1);
		else
			add(r, "dmarc rua", DOCTOR_FAIL,
			    fmt("the owner of %s must publish: %s. IN TXT \"v=DMARC1\"", at + 1, name),
			    "reports go to %s, but %s does not authorise reports for %s: receivers will not send them",
			    addr, at + 1, o->domain);
		free_texts(texts, nt, 2);
		answer_clear(&q);
	}
}

static void check_dmarc(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	char name[300], why[256], *texts[4], *suggest, *line;
	struct answer q;
	struct dmarc_record rec;
	size_t n;
	snprintf(name, sizeof name, "_dmarc.%s", o->domain);
	suggest = o->rua ? fmt("v=DMARC1; p=quarantine; rua=mailto:%s", o->rua)
			 : fmt("v=DMARC1; p=quarantine; rua=mailto:postmaster@%s", o->domain);
	line = txt_line(name, suggest);
	lookup(dns, name, DNS_T_TXT, &q);
	n = txt_with_prefix(&q, "v=DMARC1", texts, 4);
	if (q.status == DNS_TEMPFAIL || q.status == DNS_TIMEOUT) {
		add(r, "dmarc", DOCTOR_WARN, xstrdup("run the doctor again"), "the lookup of %s failed: %s", name,
		    status_text(q.status));
	} else if (n == 0) {
		add(r, "dmarc", DOCTOR_FAIL, fmt("publish: %s", line),
		    "%s has no DMARC record: Gmail and Yahoo require one from senders", o->domain);
		publish(r, line);
		line = NULL;
	} else if (n > 1) {
		add(r, "dmarc", DOCTOR_FAIL, fmt("keep one record: %s", line),
		    "%s has %zu DMARC records: receivers ignore them all (RFC 7489 6.6.3)", name, n);
	} else if (dmarc_record_parse(texts[0], strlen(texts[0]), &rec, why, sizeof why) != DMARC_PARSE_OK) {
		add(r, "dmarc", DOCTOR_FAIL, fmt("replace it: %s", line), "the DMARC record is invalid: %s (\"%s\")", why,
		    texts[0]);
	} else {
		if (rec.p == DMARC_POLICY_NONE)
			add(r, "dmarc", DOCTOR_WARN,
			    xstrdup("once the reports show all your mail passes, move to p=quarantine, then p=reject"),
			    "policy p=none: monitoring only; mail forged in your name is still delivered");
		else
			add(r, "dmarc", DOCTOR_PASS, NULL, "policy p=%s%s", dmarc_policy_name(rec.p),
			    rec.pct < 100 ? " (pct below 100)" : "");
		if (rec.nrua == 0)
			add(r, "dmarc rua", DOCTOR_WARN, fmt("add rua=mailto:%s to the record to receive aggregate reports",
							     o->rua ? o->rua : "postmaster@your.domain"),
			    "no rua=: you will not see what receivers report about your mail");
		for (size_t i = 0; i < rec.nrua; i++)
			check_rua(dns, o, r, rec.rua[i].uri);
		dmarc_record_clear(&rec);
	}
	free_texts(texts, n, 4);
	free(line);
	free(suggest);
	answer_clear(&q);
}

/* A record that only needs to exist and start right (MTA-STS, TLS-RPT).
 * 1 when there is exactly one. */
static int check_simple_txt(struct dns *dns, struct doctor_report *r, const char *check, const char *owner,
			     const char *prefix, const char *suggest, const char *missing_why)
{
	struct answer q;
	char *texts[2];
	size_t n;
	lookup(dns, owner, DNS_T_TXT, &q);
	n = txt_with_prefix(&q, prefix, texts, 2);
	if (n == 1) {
		char id[MTASTS_ID_MAX + 1], why[128];
		if (!strcmp(check, "mta-sts") && mtasts_record_parse(texts[0], strlen(texts[0]), id, sizeof id, why,
								     sizeof why) < 0) {
			add(r, check, DOCTOR_FAIL, fmt("publish: %s. IN TXT \"%s\"", owner, suggest),
			    "%s is invalid: %s (\"%s\")", owner, why, texts[0]);
			n = 2; /* not usable */
		} else {
			add(r, check, DOCTOR_PASS, NULL, "%s: \"%s\"", owner, texts[0]);
		}
	} else if (n > 1) {
		add(r, check, DOCTOR_FAIL, xstrdup("keep exactly one record"), "%s has %zu %s records", owner, n, prefix);
	} else if (q.status == DNS_TEMPFAIL || q.status == DNS_TIMEOUT) {
		add(r, check, DOCTOR_WARN, xstrdup("run the doctor again"), "the lookup of %s failed: %s", owner,
		    status_text(q.status));
	} else {
		char *line = txt_line(owner, suggest);
		add(r, check, DOCTOR_WARN, fmt("publish: %s", line), "%s", missing_why);
		publish(r, line);
	}
	free_texts(texts, n < 2 ? n : 2, 2);
	answer_clear(&q);
	return n == 1;
}

/* The policy file behind the _mta-sts record (RFC 8461 3.3): fetched over
 * HTTPS from the address our resolver gives, parsed, and its mx: patterns
 * compared with the domain's MX hosts. */
static void check_mtasts_policy(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	char host[300], why[256];
	char *addrs[DOCTOR_MAX_ADDRESSES], *body = NULL;
	size_t naddrs, len = 0;
	int failed;
	struct mtasts_policy p;
	struct answer q;

	snprintf(host, sizeof host, "mta-sts.%s", o->domain);
	naddrs = host_addresses(dns, host, addrs, DOCTOR_MAX_ADDRESSES, &failed);
	if (naddrs == 0) {
		add(r, "mta-sts policy", DOCTOR_FAIL,
		    fmt("publish an A record for %s and serve the policy there over HTTPS, or remove the _mta-sts record",
			host),
		    "%s has no address: senders cannot fetch the policy", host);
		return;
	}
	if (mtasts_fetch(o->domain, addrs[0], o->ca_file, 10000, &body, &len, why, sizeof why) < 0) {
		add(r, "mta-sts policy", DOCTOR_FAIL,
		    fmt("serve the policy at https://%s/.well-known/mta-sts.txt with a certificate valid for %s", host,
			host),
		    "cannot fetch the policy: %s", why);
		goto out;
	}
	if (mtasts_policy_parse(body, len, &p, why, sizeof why) < 0) {
		add(r, "mta-sts policy", DOCTOR_FAIL,
		    fmt("serve a valid policy, e.g.: version: STSv1 / mode: enforce / mx: %s / max_age: 604800",
			o->hostname),
		    "the policy at https://%s/.well-known/mta-sts.txt is invalid: %s", host, why);
		goto out;
	}
	lookup(dns, o->domain, DNS_T_MX, &q);
	{
		int all = 1;
		char missing[300] = "";
		for (size_t i = 0; q.status == DNS_ANSWER && i < q.a.nrrs; i++) {
			const struct dns_rr *rr = &q.a.rrs[i];
			if (rr->type == DNS_T_MX && rr->name && *rr->name && !mtasts_mx_match(&p, rr->name)) {
				all = 0;
				snprintf(missing, sizeof missing, "%s", rr->name);
			}
		}
		if (p.mode != MTASTS_NONE && !all)
			add(r, "mta-sts policy", p.mode == MTASTS_ENFORCE ? DOCTOR_FAIL : DOCTOR_WARN,
			    fmt("add \"mx: %s\" to the policy (and change the id= of the _mta-sts record)", missing),
			    "mode %s, but the MX host %s is not in the policy's mx: lines: senders %s", mtasts_mode_name(p.mode),
			    missing, p.mode == MTASTS_ENFORCE ? "will refuse to deliver to it" : "report failures");
		else if (p.mode == MTASTS_ENFORCE)
			add(r, "mta-sts policy", DOCTOR_PASS, NULL, "mode enforce, max_age %u, covers every MX", p.max_age);
		else
			add(r, "mta-sts policy", DOCTOR_WARN,
			    xstrdup("once TLS reports show no failures, switch to mode: enforce (and change the id=)"),
			    "mode %s: senders do not enforce TLS yet", mtasts_mode_name(p.mode));
	}
	answer_clear(&q);
	mtasts_policy_clear(&p);
out:
	free(body);
	for (size_t i = 0; i < naddrs; i++)
		free(addrs[i]);
}

static void check_lists(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	for (size_t l = 0; l < o->nlists; l++) {
		const struct doctor_list *dl = &o->lists[l];
		/* An address list is asked for each address; a domain list
		 * (e.g. Spamhaus DBL) for the domain itself. */
		size_t nsubjects = dl->domain ? 1 : r->naddresses;
		for (size_t i = 0; i < nsubjects; i++) {
			char qname[400], name[300];
			struct answer q;
			char code[INET6_ADDRSTRLEN] = "";
			const char *subject = dl->domain ? o->domain : r->addresses[i];
			snprintf(name, sizeof name, "%s %s", dl->domain ? "dbl" : dl->allow ? "dnswl" : "dnsbl", dl->zone);
			if (dl->domain)
				snprintf(qname, sizeof qname, "%s.%s", o->domain, dl->zone);
			else if (reverse_name(subject, dl->zone, qname, sizeof qname) < 0)
				continue;
			enum zone_action act = ZONE_LISTED;
			lookup(dns, qname, DNS_T_A, &q);
			for (size_t j = 0; q.status == DNS_ANSWER && j < q.a.nrrs && !*code; j++) {
				const struct dns_rr *rr = &q.a.rrs[j];
				double w;
				uint32_t v;
				if (rr->type != DNS_T_A)
					continue;
				addr_text(rr, code, sizeof code);
				v = (uint32_t)rr->addr[0] << 24 | (uint32_t)rr->addr[1] << 16 | (uint32_t)rr->addr[2] << 8 |
				    rr->addr[3];
				if (dl->rules)
					act = policy_zone_classify(dl->rules, v, &w);
				else if (rr->addr[0] == 127 && rr->addr[1] == 255 && rr->addr[2] == 255)
					act = ZONE_ERROR;
			}
			if (*code && act == ZONE_IGNORE)
				add(r, name, dl->allow ? DOCTOR_WARN : DOCTOR_PASS, NULL, "%s: %s answered %s, which means nothing here",
				    subject, dl->zone, code);
			else if (*code && act == ZONE_ERROR)
				add(r, name, DOCTOR_WARN,
				    fmt("%s refused the query (%s): use a resolver of your own, not a public one", dl->zone,
					code),
				    "%s could not be checked on %s", subject, dl->zone);
			else if (*code && dl->allow)
				add(r, name, DOCTOR_PASS, NULL, "%s is on the allow list %s (%s)", subject, dl->zone,
				    code);
			else if (*code)
				add(r, name, DOCTOR_FAIL,
				    fmt("find the reason on %s's web site and ask for removal (delisting)", dl->zone),
				    "%s is LISTED on %s (%s): many receivers refuse its mail", subject, dl->zone,
				    code);
			else if (q.status == DNS_NXDOMAIN || q.status == DNS_NODATA)
				add(r, name, dl->allow ? DOCTOR_WARN : DOCTOR_PASS,
				    dl->allow ? fmt("you may apply to %s", dl->zone) : NULL, "%s is not listed on %s",
				    subject, dl->zone);
			else
				add(r, name, DOCTOR_WARN, xstrdup("run the doctor again"), "the lookup on %s failed: %s",
				    dl->zone, status_text(q.status));
			answer_clear(&q);
		}
	}
}

void doctor_run(struct dns *dns, const struct doctor_options *o, struct doctor_report *r)
{
	char *hostaddrs[DOCTOR_MAX_ADDRESSES];
	size_t nhost;
	int failed;
	char owner[300], stsid[64], *suggest;

	memset(r, 0, sizeof *r);
	r->domain = xstrdup(o->domain);
	r->hostname = xstrdup(o->hostname);
	nhost = host_addresses(dns, o->hostname, hostaddrs, DOCTOR_MAX_ADDRESSES, &failed);
	if (o->naddresses) {
		r->addresses = xcalloc(o->naddresses, sizeof *r->addresses);
		for (size_t i = 0; i < o->naddresses && i < DOCTOR_MAX_ADDRESSES; i++)
			r->addresses[r->naddresses++] = xstrdup(o->addresses[i]);
	} else {
		r->addresses = xcalloc(nhost ? nhost : 1, sizeof *r->addresses);
		for (size_t i = 0; i < nhost; i++)
			r->addresses[r->naddresses++] = xstrdup(hostaddrs[i]);
	}

	check_mx(dns, o, r);
	check_host(dns, o, r, hostaddrs, nhost, failed);
	check_ptr(dns, o, r);
	if (r->naddresses) {
		check_spf_identity(dns, o, r, o->domain, 0);
		check_spf_identity(dns, o, r, o->hostname, 1);
	} else {
		add(r, "spf", DOCTOR_FAIL, fmt("give the addresses with --address, or fix the A/AAAA records of %s",
					       o->hostname),
		    "no address of this host is known, so SPF cannot be checked");
	}
	check_dkim(dns, o, r);
	check_dmarc(dns, o, r);
	snprintf(owner, sizeof owner, "_mta-sts.%s", o->domain);
	{
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stsid, sizeof stsid, "v=STSv1; id=%Y%m%d%H%M%S", &tm);
	}
	if (check_simple_txt(dns, r, "mta-sts", owner, "v=STSv1", stsid,
			     "no MTA-STS record: senders may deliver to you without TLS if an attacker strips it "
			     "(also serve https://mta-sts.<domain>/.well-known/mta-sts.txt)"))
		check_mtasts_policy(dns, o, r);
	snprintf(owner, sizeof owner, "_smtp._tls.%s", o->domain);
	suggest = o->tls_rua ? fmt("v=TLSRPTv1; rua=mailto:%s", o->tls_rua)
			     : fmt("v=TLSRPTv1; rua=mailto:postmaster@%s", o->domain);
	check_simple_txt(dns, r, "tls-rpt", owner, "v=TLSRPTv1", suggest,
			 "no TLS-RPT record: you will not hear when senders fail to reach you over TLS");
	free(suggest);
	check_lists(dns, o, r);
	for (size_t i = 0; i < nhost; i++)
		free(hostaddrs[i]);
}

void doctor_report_clear(struct doctor_report *r)
{
	for (size_t i = 0; i < r->nchecks; i++) {
		free(r->checks[i].name);
		free(r->checks[i].detail);
		free(r->checks[i].fix);
	}
	for (size_t i = 0; i < r->npublish; i++)
		free(r->publish[i]);
	for (size_t i = 0; i < r->naddresses; i++)
		free(r->addresses[i]);
	free(r->checks);
	free(r->publish);
	free(r->addresses);
	free(r->domain);
	free(r->hostname);
	memset(r, 0, sizeof *r);
}
