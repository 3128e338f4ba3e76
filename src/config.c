/*
 * config: see config.h.
 *
 * The schema table below is the single source of truth for every key. Values
 * are first stored as strings (defaults included), then converted and
 * cross-checked; each problem is reported with the line of the key that
 * caused it, or with the file alone when a required key is missing.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/ini.h"
#include "lib/log.h"
#include "lib/util.h"

enum key_type { T_STRING, T_PATH, T_SIZE, T_DURATION, T_UINT, T_LISTEN, T_LIST, T_ENUM };

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t str_off; /* offset of the char * holding the raw value */
	size_t num_off; /* offset of the uint64_t for numeric types, or 0 */
	const char *def; /* default, or NULL when there is none */
	const char *choices; /* for T_ENUM: "a|b" */
	uint64_t min, max; /* for numeric types */
	const char *doc;
};

#define S(f) offsetof(struct config, f)
/* Numeric keys keep their raw text in a scratch slot; see raw_num[]. */
#define NUMERIC_RAW ((size_t)-1)

static const struct key keys[] = {
	{ "server", "hostname", T_STRING, S(hostname), 0, "", NULL, 0, 0,
	  "The name this host gives in its greeting, EHLO reply and Received headers. Empty: the system's host name." },
	{ "server", "user", T_STRING, S(user), 0, "postern", NULL, 0, 0,
	  "Started as root, postern binds its ports and then runs as this unprivileged user." },
	{ "server", "data_dir", T_PATH, S(data_dir), 0, "/var/lib/postern", NULL, 0, 0,
	  "Where the state database and the spool live. Must be writable by the user." },
	{ "server", "mail_dir", T_PATH, S(mail_dir), 0, "", NULL, 0, 0,
	  "Root of the mailboxes: each one is the Maildir MAIL_DIR/DOMAIN/LOCALPART/. Empty: DATA_DIR/mail." },
	{ "server", "domains", T_LIST, S(domains_raw), 0, NULL, NULL, 0, 0,
	  "The domains we receive mail for, separated by commas or spaces. Required." },
	{ "server", "authserv_id", T_STRING, S(authserv_id), 0, "", NULL, 0, 0,
	  "The name in our Authentication-Results headers (RFC 8601). Empty: the hostname." },
	{ "server", "log_level", T_ENUM, S(log_level), 0, "info", "error|warn|info|debug", 0, 0,
	  "How much to log: error, warn, info or debug." },
	{ "server", "recipient_delimiter", T_STRING, S(recipient_delimiter), 0, "+", NULL, 0, 0,
	  "Sub-addressing: user+tag@domain reaches user@domain. Empty disables it." },
	{ "server", "workers", T_UINT, NUMERIC_RAW, S(workers), "4", NULL, 1, 64,
	  "Threads that do the slow disk work (writing and fsyncing mail) so the event loop never waits." },
	{ "server", "shutdown_timeout", T_DURATION, NUMERIC_RAW, S(shutdown_timeout_ms), "30s", NULL, 0, 3600000,
	  "On SIGTERM, how long transactions in flight may take to finish before postern exits." },

	{ "smtp", "listen", T_LISTEN, S(smtp_listen_raw), 0, "0.0.0.0:25, [::]:25", NULL, 0, 0,
	  "Addresses for inbound SMTP (MX), as ADDRESS:PORT or [IPV6]:PORT, separated by commas." },
	{ "smtp", "max_command_line", T_SIZE, NUMERIC_RAW, S(max_command_line), "2048", NULL, 512, 65536,
	  "Longest command line accepted, CRLF included (RFC 5321 section 4.5.3.1.4 asks for at least 512)." },
	{ "smtp", "max_data_line", T_SIZE, NUMERIC_RAW, S(max_data_line), "10000", NULL, 1000, 1048576,
	  "Longest line accepted inside a message, CRLF included (RFC 5321 asks for at least 1000)." },
	{ "smtp", "max_message_size", T_SIZE, NUMERIC_RAW, S(max_message_size), "50M", NULL, 1024, 4294967295ULL,
	  "Largest message accepted; advertised with SIZE (RFC 1870)." },
	{ "smtp", "max_header_size", T_SIZE, NUMERIC_RAW, S(max_header_size), "1M", NULL, 1024, 67108864,
	  "Largest header block accepted; a message with more gets 552 5.3.4." },
	{ "smtp", "max_recipients", T_UINT, NUMERIC_RAW, S(max_recipients), "100", NULL, 1, 100000,
	  "Recipients per message; more get 452 4.5.3 (RFC 5321 section 4.5.3.1.8)." },
	{ "smtp", "max_connections", T_UINT, NUMERIC_RAW, S(max_connections), "1000", NULL, 1, 1000000,
	  "Concurrent SMTP sessions in total; more get 421 4.7.0 and are closed." },
	{ "smtp", "max_connections_per_client", T_UINT, NUMERIC_RAW, S(max_connections_per_client), "20", NULL, 1, 1000000,
	  "Concurrent SMTP sessions from one client address." },
	{ "smtp", "max_errors", T_UINT, NUMERIC_RAW, S(max_errors), "10", NULL, 1, 1000,
	  "Erroneous commands per session before postern answers 421 4.7.0 and closes it." },
	{ "smtp", "command_timeout", T_DURATION, NUMERIC_RAW, S(command_timeout_ms), "5m", NULL, 100, 86400000,
	  "How long to wait for the next command (RFC 5321 section 4.5.3.2.7 says at least 5 minutes)." },
	{ "smtp", "data_timeout", T_DURATION, NUMERIC_RAW, S(data_timeout_ms), "5m", NULL, 100, 86400000,
	  "How long to wait for the next block of message data." },
	{ "smtp", "bare_line_endings", T_ENUM, S(bare_line_endings), 0, "reject", "reject|normalise", 0, 0,
	  "A bare CR or LF in message data: reject the message (554 5.6.0), or normalise it to CRLF." },

	{ "tls", "certificate", T_PATH, S(tls_certificate), 0, "", NULL, 0, 0,
	  "PEM certificate chain for STARTTLS. Empty: STARTTLS is not offered." },
	{ "tls", "key", T_PATH, S(tls_key), 0, "", NULL, 0, 0,
	  "PEM private key for the certificate." },

	{ "dns", "resolver", T_STRING, S(dns_resolver), 0, "system", NULL, 0, 0,
	  "'system' for /etc/resolv.conf, or resolver addresses as ADDRESS[:PORT] separated by commas." },
	{ "dns", "timeout", T_DURATION, NUMERIC_RAW, S(dns_timeout_ms), "5s", NULL, 100, 60000,
	  "Time allowed for one DNS query; past it the lookup is a temporary failure." },
	{ "dns", "max_queries", T_UINT, NUMERIC_RAW, S(dns_max_queries), "256", NULL, 1, 100000,
	  "DNS queries in flight at once; more wait their turn." },
	{ "dns", "trust_anchor", T_PATH, S(dns_trust_anchor), 0, "/usr/share/dns/root.key", NULL, 0, 0,
	  "DNSSEC root trust anchor (Debian package dns-root-data). Empty: answers are not validated." },
	{ "dkim", "verify", T_ENUM, S(dkim_verify), 0, "yes", "yes|no", 0, 0,
	  "Verify the DKIM signatures of every message received (RFC 6376) and record them." },
	{ "dkim", "max_signatures", T_UINT, NUMERIC_RAW, S(dkim_max_signatures), "10", NULL, 1, 100,
	  "DKIM signatures verified per message, from the top; later ones are ignored." },
	{ "dmarc", "enabled", T_ENUM, S(dmarc_enabled), 0, "yes", "yes|no", 0, 0,
	  "Evaluate DMARC (RFC 7489) for every message received, and record the verdict." },
	{ "dmarc", "apply_policy", T_ENUM, S(dmarc_apply_policy), 0, "yes", "yes|no", 0, 0,
	  "Apply the sender's DMARC policy: reject gets 550 5.7.1, quarantine goes to the Junk folder. no: record only." },
	{ "dmarc", "trusted_sealers", T_LIST, S(dmarc_trusted_sealers), 0, "", NULL, 0, 0,
	  "Domains of forwarders and mailing lists whose valid ARC chain overrides a DMARC failure (RFC 8617 section 7.2)." },
	{ "dmarc", "quarantine_folder", T_STRING, S(dmarc_quarantine_folder), 0, ".Junk", NULL, 0, 0,
	  "The Maildir++ folder that quarantined mail goes to (Dovecot shows .Junk as Junk)." },
	{ "arc", "verify", T_ENUM, S(arc_verify), 0, "yes", "yes|no", 0, 0,
	  "Validate the ARC chain of every message received (RFC 8617) and record it." },
	{ "spf", "enabled", T_ENUM, S(spf_enabled), 0, "yes", "yes|no", 0, 0,
	  "Check SPF for every message and record the result in a Received-SPF header." },
	{ "spf", "fail", T_ENUM, S(spf_on_fail), 0, "record", "record|reject", 0, 0,
	  "SPF fail: record it in Received-SPF (DMARC decides later), or reject the message with 550 5.7.23." },
	{ "spf", "softfail", T_ENUM, S(spf_on_softfail), 0, "record", "record|reject", 0, 0,
	  "SPF softfail: record, or reject with 550 5.7.23." },
	{ "spf", "permerror", T_ENUM, S(spf_on_permerror), 0, "record", "record|reject", 0, 0,
	  "A broken SPF record (permerror): record, or reject with 550 5.7.24 (RFC 7372)." },
	{ "spf", "temperror", T_ENUM, S(spf_on_temperror), 0, "record", "record|defer", 0, 0,
	  "A DNS failure during SPF (temperror): record, or defer with 451 4.7.24 so the sender retries." },
	{ "spf", "check_helo", T_ENUM, S(spf_check_helo), 0, "yes", "yes|no", 0, 0,
	  "Also check the HELO identity (RFC 7208 section 2.3) and record it." },

	{ "web", "listen", T_STRING, S(web_listen_raw), 0, "127.0.0.1:8025", NULL, 0, 0,
	  "Addresses of the web dashboard and /metrics, as ADDRESS:PORT separated by commas. Empty: no dashboard." },
	{ "web", "admins", T_LIST, S(web_admins_raw), 0, "", NULL, 0, 0,
	  "Mailboxes (user@domain) that may log in to the dashboard with their mail password. Empty: nobody." },
	{ "web", "session_lifetime", T_DURATION, NUMERIC_RAW, S(web_session_lifetime_ms), "12h", NULL, 60000, 2592000000ULL,
	  "How long a dashboard login lasts before the password is asked again." },
	{ "web", "tls", T_ENUM, S(web_tls), 0, "no", "yes|no", 0, 0,
	  "Serve the dashboard over HTTPS with the [tls] certificate (needed off loopback; cookies are then Secure)." },
	{ "web", "metrics_token", T_STRING, S(web_metrics_token), 0, "", NULL, 0, 0,
	  "A secret (16 characters or more) that lets a Prometheus server read /metrics with 'Authorization: Bearer TOKEN'." },
	{ "web", "metrics_loopback", T_ENUM, S(web_metrics_loopback), 0, "yes", "yes|no", 0, 0,
	  "Let clients on loopback (127.0.0.0/8, ::1) read /metrics without a token or login." },
};

/* Raw text of numeric keys, indexed like keys[]. */
struct loader {
	struct config *cfg;
	char *raw[ARRAY_LEN(keys)];
	int line[ARRAY_LEN(keys)];
	FILE *err;
	int nerr;
	struct problem_line {
		int line;
		int seq;
		char *text;
	} *problems;
};

static char **str_slot(struct loader *ld, size_t i)
{
	if (keys[i].str_off == NUMERIC_RAW)
		return &ld->raw[i];
	return (char **)((char *)ld->cfg + keys[i].str_off);
}

static void problem(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	char *text;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		abort();
	va_end(ap);
	ld->problems = xrealloc(ld->problems, (size_t)(ld->nerr + 1) * sizeof *ld->problems);
	ld->problems[ld->nerr].line = line;
	ld->problems[ld->nerr].seq = ld->nerr;
	ld->problems[ld->nerr].text = text;
	ld->nerr++;
}

static int by_line(const void *a, const void *b)
{
	const struct problem_line *x = a, *y = b;
	int lx = x->line > 0 ? x->line : 1 << 30, ly = y->line > 0 ? y->line : 1 << 30;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->seq - y->seq; /* keep the order found */
}

/* Writes the problems in file order, those without a line last. */
static void report_problems(struct loader *ld)
{
	if (ld->nerr)
		qsort(ld->problems, (size_t)ld->nerr, sizeof *ld->problems, by_line);
	for (int i = 0; i < ld->nerr; i++) {
		if (ld->problems[i].line > 0)
			fprintf(ld->err, "%s:%d: %s\n", ld->cfg->path, ld->problems[i].line, ld->problems[i].text);
		else
			fprintf(ld->err, "%s: %s\n", ld->cfg->path, ld->problems[i].text);
		free(ld->problems[i].text);
	}
	free(ld->problems);
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof cur);
	}
	return prev[lb];
}

static void unknown_key(struct loader *ld, const struct ini_entry *e)
{
	const struct key *best = NULL;
	size_t bestd = 4;
	int section_known = 0;

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		size_t d = edit_distance(e->key, keys[i].name);
		if (!strcmp(keys[i].section, e->section))
			section_known = 1;
		if (!strcmp(keys[i].section, e->section) || !strcmp(keys[i].name, e->key))
			if (d < bestd) {
				bestd = d;
				best = &keys[i];
			}
	}
	if (!section_known && !best) {
		problem(ld, e->line, "unknown section [%s]; the sections are [server], [smtp], [tls], [dns], [spf], [dkim], [dmarc], [arc] and [web]",
			e->section);
	} else if (best) {
		problem(ld, e->line, "unknown key '%s' in [%s]; did you mean '%s' in [%s]?", e->key, e->section,
			best->name, best->section);
	} else {
		problem(ld, e->line, "unknown key '%s' in [%s]; see 'postern config example' for every key",
			e->key, e->section);
	}
}

int config_parse_listen(const char *s, struct listen_addr *out)
{
	const char *colon;
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char tmp[sizeof(struct in6_addr)];
	uint64_t port;
	size_t hl;

	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, tmp) != 1)
			return -1;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (strcmp(host, "*") && inet_pton(AF_INET, host, tmp) != 1)
			return -1;
	}
	if (parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return -1;
	out->host = xstrdup(strcmp(host, "*") ? host : "0.0.0.0");
	out->port = xstrdup(colon + 1);
	return 0;
}

/* Splits on commas and white space; returns the number of items. */
static size_t split_list(const char *s, char ***out)
{
	char *copy = xstrdup(s), *save = NULL, *tok;
	size_t n = 0;
	*out = NULL;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xstrdup(tok);
	}
	free(copy);
	return n;
}

static int valid_domain(const char *d)
{
	size_t label = 0, len = strlen(d);
	if (len == 0 || len > 253)
		return 0;
	for (const char *p = d; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* A bound as the user would write it: 100ms, 5m, 1d; 64k, 50M. */
static void fmt_value(enum key_type type, uint64_t v, char *out, size_t n)
{
	static const struct {
		uint64_t mul;
		const char *suffix;
	} dur[] = { { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" } },
	  size[] = { { 1ULL << 30, "G" }, { 1 << 20, "M" }, { 1 << 10, "k" }, { 1, "" } };
	const void *table = type == T_DURATION ? (const void *)dur : type == T_SIZE ? (const void *)size : NULL;
	size_t count = type == T_DURATION ? ARRAY_LEN(dur) : ARRAY_LEN(size);
	if (table) {
		const typeof(dur[0]) *t = table;
		for (size_t i = 0; i < count; i++) {
			if (v && v % t[i].mul == 0) {
				snprintf(out, n, "%llu%s", (unsigned long long)(v / t[i].mul), t[i].suffix);
				return;
			}
		}
	}
	snprintf(out, n, "%llu", (unsigned long long)v);
}

static void convert(struct loader *ld, size_t i)
{
	const struct key *k = &keys[i];
	const char *v = *str_slot(ld, i);
	int line = ld->line[i];
	uint64_t num = 0;
	int bad = 0;

	if (!v)
		return;
	switch (k->type) {
	case T_SIZE:
		bad = parse_size(v, &num) < 0;
		if (bad)
			problem(ld, line, "%s = %s is not a size; write bytes or a number with k, M or G (e.g. 50M)",
				k->name, v);
		break;
	case T_DURATION:
		bad = parse_duration_ms(v, &num) < 0;
		if (bad)
			problem(ld, line, "%s = %s is not a duration; write e.g. 30s, 5m, 2h or 250ms", k->name, v);
		break;
	case T_UINT:
		bad = parse_uint(v, UINT64_MAX, &num) < 0;
		if (bad)
			problem(ld, line, "%s = %s is not a whole number; write digits only", k->name, v);
		break;
	case T_PATH:
		if (*v && *v != '/')
			problem(ld, line, "%s = %s must be an absolute path; start it with /", k->name, v);
		return;
	case T_ENUM: {
		char buf[128];
		int ok = 0;
		str_copy(buf, k->choices, sizeof buf);
		for (char *save = NULL, *c = strtok_r(buf, "|", &save); c; c = strtok_r(NULL, "|", &save))
			ok |= !strcasecmp(c, v);
		if (!ok) {
			str_copy(buf, k->choices, sizeof buf);
			for (char *p = buf; *p; p++)
				if (*p == '|')
					*p = ',';
			problem(ld, line, "%s = %s is not one of: %s", k->name, v, buf);
		}
		return;
	}
	default:
		return;
	}
	if (bad)
		return;
	if (num < k->min || num > k->max) {
		char lo[32], hi[32];
		fmt_value(k->type, k->min, lo, sizeof lo);
		fmt_value(k->type, k->max, hi, sizeof hi);
		problem(ld, line, "%s = %s is out of range; use a value from %s to %s", k->name, v, lo, hi);
		return;
	}
	*(uint64_t *)((char *)ld->cfg + k->num_off) = num;
}

static size_t key_index(const char *section, const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return i;
	abort(); /* a bug: asked for a key that is not in the table */
}

static void cross_check(struct loader *ld)
{
	struct config *c = ld->cfg;
	size_t i;

	i = key_index("server", "domains");
	if (!c->domains_raw || !*c->domains_raw) {
		problem(ld, ld->line[i], "[server] domains is required; add e.g. 'domains = example.org' under [server]");
	} else {
		c->ndomains = split_list(c->domains_raw, &c->domains);
		if (c->ndomains == 0)
			problem(ld, ld->line[i], "domains lists no domain; write e.g. 'domains = example.org'");
		for (size_t d = 0; d < c->ndomains; d++) {
			str_lower(c->domains[d]);
			if (!valid_domain(c->domains[d]))
				problem(ld, ld->line[i], "domains: '%s' is not a domain name; write names like example.org",
					c->domains[d]);
		}
	}

	i = key_index("smtp", "listen");
	if (c->smtp_listen_raw) {
		char **items;
		size_t n = split_list(c->smtp_listen_raw, &items);
		c->smtp_listen = xcalloc(n, sizeof *c->smtp_listen);
		for (size_t j = 0; j < n; j++) {
			if (config_parse_listen(items[j], &c->smtp_listen[c->nsmtp_listen]) == 0)
				c->nsmtp_listen++;
			else
				problem(ld, ld->line[i], "listen: '%s' is not ADDRESS:PORT; write e.g. 127.0.0.1:25 or [::1]:25",
					items[j]);
			free(items[j]);
		}
		free(items);
		if (n == 0)
			problem(ld, ld->line[i], "listen is empty; give at least one ADDRESS:PORT");
	}

	if (!*c->hostname) {
		char h[256] = "localhost";
		gethostname(h, sizeof h - 1);
		h[sizeof h - 1] = '\0';
		free(c->hostname);
		c->hostname = xstrdup(h);
	} else if (!valid_domain(c->hostname)) {
		problem(ld, ld->line[key_index("server", "hostname")],
			"hostname = %s is not a host name; write a fully qualified name like mail.example.org",
			c->hostname);
	}
	if (!*c->authserv_id) {
		free(c->authserv_id);
		c->authserv_id = xstrdup(c->hostname);
	}
	if (!*c->mail_dir) {
		free(c->mail_dir);
		c->mail_dir = xasprintf("%s/mail", c->data_dir);
	}
	if (c->dmarc_quarantine_folder[0] != '.' || strchr(c->dmarc_quarantine_folder, '/') ||
	    strlen(c->dmarc_quarantine_folder) < 2)
		problem(ld, ld->line[key_index("dmarc", "quarantine_folder")],
			"quarantine_folder = %s is not a Maildir++ folder; write a name starting with a dot, e.g. .Junk",
			c->dmarc_quarantine_folder);
	c->ntrusted_sealers = split_list(c->dmarc_trusted_sealers, &c->trusted_sealers);
	for (size_t t = 0; t < c->ntrusted_sealers; t++) {
		str_lower(c->trusted_sealers[t]);
		if (!valid_domain(c->trusted_sealers[t]))
			problem(ld, ld->line[key_index("dmarc", "trusted_sealers")],
				"trusted_sealers: '%s' is not a domain name; list the d= of the sealer's ARC-Seal",
				c->trusted_sealers[t]);
	}
	if (strlen(c->recipient_delimiter) > 1)
		problem(ld, ld->line[key_index("server", "recipient_delimiter")],
			"recipient_delimiter must be one character (usually +) or empty");
	if (!*c->tls_certificate != !*c->tls_key) {
		problem(ld, ld->line[key_index("tls", *c->tls_certificate ? "certificate" : "key")],
			"[tls] certificate and key go together; set both, or neither to run without STARTTLS");
	}
	for (const char *const *p = (const char *const[]){ c->tls_certificate, c->tls_key, NULL }; *p; p++) {
		if (**p && access(*p, R_OK) < 0)
			problem(ld, ld->line[key_index("tls", *p == c->tls_certificate ? "certificate" : "key")],
				"cannot read %s: %s; check the path and its permissions", *p, strerror(errno));
	}
	c->bare_lf = !strcasecmp(c->bare_line_endings, "normalise") ? BARE_LF_NORMALISE : BARE_LF_REJECT;
	if (c->max_message_size && c->max_data_line > c->max_message_size)
		problem(ld, ld->line[key_index("smtp", "max_data_line")],
			"max_data_line is larger than max_message_size; lower it");
	i = key_index("web", "listen");
	{
		char **items;
		size_t n = split_list(c->web_listen_raw, &items);
		c->web_listen = xcalloc(n ? n : 1, sizeof *c->web_listen);
		for (size_t j = 0; j < n; j++) {
			if (config_parse_listen(items[j], &c->web_listen[c->nweb_listen]) == 0)
				c->nweb_listen++;
			else
				problem(ld, ld->line[i],
					"listen: '%s' is not ADDRESS:PORT; write e.g. 127.0.0.1:8025 or [::1]:8025, or nothing to turn the dashboard off",
					items[j]);
			free(items[j]);
		}
		free(items);
	}
	c->nweb_admins = split_list(c->web_admins_raw, &c->web_admins);
	for (size_t a = 0; a < c->nweb_admins; a++) {
		const char *at = strrchr(str_lower(c->web_admins[a]), '@');
		if (!at || at == c->web_admins[a] || !valid_domain(at + 1))
			problem(ld, ld->line[key_index("web", "admins")],
				"admins: '%s' is not a mailbox address; list addresses like alice@example.org", c->web_admins[a]);
	}
	if (!strcasecmp(c->web_tls, "yes") && !*c->tls_certificate)
		problem(ld, ld->line[key_index("web", "tls")],
			"tls = yes needs a certificate; set [tls] certificate and key, or tls = no");
	if (*c->web_metrics_token) {
		size_t tl = strlen(c->web_metrics_token);
		int bad = 0;
		for (const char *p = c->web_metrics_token; *p; p++)
			bad |= (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f;
		if (tl < 16 || bad)
			problem(ld, ld->line[key_index("web", "metrics_token")],
				"metrics_token must be 16 or more printable characters without spaces; make one with 'openssl rand -hex 24'");
	}
	if (strcmp(c->dns_resolver, "system")) {
		char **items;
		size_t n = split_list(c->dns_resolver, &items);
		for (size_t j = 0; j < n; j++) {
			char tmp[300];
			struct listen_addr la;
			unsigned char a[16];
			int ok = inet_pton(AF_INET, items[j], a) == 1 || inet_pton(AF_INET6, items[j], a) == 1;
			if (!ok) {
				/* ADDRESS:PORT or [V6]:PORT */
				snprintf(tmp, sizeof tmp, "%s", items[j]);
				ok = config_parse_listen(tmp, &la) == 0;
				if (ok) {
					free(la.host);
					free(la.port);
				}
			}
			if (!ok)
				problem(ld, ld->line[key_index("dns", "resolver")],
					"resolver: '%s' is not an address; write 'system' or e.g. 127.0.0.1:53", items[j]);
			free(items[j]);
		}
		free(items);
		if (n == 0)
			problem(ld, ld->line[key_index("dns", "resolver")], "resolver is empty; write 'system' or addresses");
	}
}

struct config *config_load(const char *path, FILE *err)
{
	struct loader ld = { 0 };
	struct ini *ini;
	char *text;
	FILE *f;
	long len;

	ld.cfg = xcalloc(1, sizeof *ld.cfg);
	ld.cfg->path = xstrdup(path);
	ld.err = err;

	f = fopen(path, "r");
	if (!f) {
		fprintf(err, "%s: cannot open: %s; check the path (-c FILE)\n", path, strerror(errno));
		config_free(ld.cfg);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (len < 0 || len > 1024 * 1024) {
		fprintf(err, "%s: file is larger than 1 MiB; is this the right file?\n", path);
		fclose(f);
		config_free(ld.cfg);
		return NULL;
	}
	text = xmalloc((size_t)len + 1);
	len = (long)fread(text, 1, (size_t)len, f);
	fclose(f);
	ini = ini_parse(text, (size_t)len);
	free(text);

	for (size_t i = 0; i < ini->nerrors; i++)
		problem(&ld, ini->errors[i].line, "%s", ini->errors[i].msg);
	for (size_t e = 0; e < ini->nentries; e++) {
		const struct ini_entry *en = &ini->entries[e];
		size_t i;
		for (i = 0; i < ARRAY_LEN(keys); i++)
			if (!strcmp(keys[i].section, en->section) && !strcmp(keys[i].name, en->key))
				break;
		if (i == ARRAY_LEN(keys)) {
			unknown_key(&ld, en);
			continue;
		}
		if (ld.line[i])
			problem(&ld, en->line, "'%s' is already set in [%s] on line %d; keep one of them", en->key,
				en->section, ld.line[i]);
		free(*str_slot(&ld, i));
		*str_slot(&ld, i) = xstrdup(en->value);
		ld.line[i] = en->line;
	}
	ini_free(ini);

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		if (!*str_slot(&ld, i) && keys[i].def)
			*str_slot(&ld, i) = xstrdup(keys[i].def);
		convert(&ld, i);
	}
	cross_check(&ld);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		free(ld.raw[i]);
	report_problems(&ld);
	if (ld.nerr) {
		config_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].str_off != NUMERIC_RAW)
			free(*(char **)((char *)c + keys[i].str_off));
	for (size_t i = 0; i < c->ndomains; i++)
		free(c->domains[i]);
	free(c->domains);
	for (size_t i = 0; i < c->ntrusted_sealers; i++)
		free(c->trusted_sealers[i]);
	free(c->trusted_sealers);
	for (size_t i = 0; i < c->nsmtp_listen; i++) {
		free(c->smtp_listen[i].host);
		free(c->smtp_listen[i].port);
	}
	free(c->smtp_listen);
	for (size_t i = 0; i < c->nweb_listen; i++) {
		free(c->web_listen[i].host);
		free(c->web_listen[i].port);
	}
	free(c->web_listen);
	for (size_t i = 0; i < c->nweb_admins; i++)
		free(c->web_admins[i]);
	free(c->web_admins);
	free(c->path);
	free(c);
}

int config_is_local_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->ndomains; i++)
		if (!strcasecmp(cfg->domains[i], domain))
			return 1;
	return 0;
}

void config_write_example(FILE *out)
{
	const char *section = "";
	fputs("# postern configuration. Every key is shown with its default;\n"
	      "# a key left out takes the default. Lines starting with # are comments.\n", out);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const struct key *k = &keys[i];
		if (strcmp(section, k->section)) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "\n# %s\n", k->doc);
		if (k->def)
			fprintf(out, "#%s = %s\n", k->name, k->def);
		else
			fprintf(out, "%s = example.org\n", k->name);
	}
}
