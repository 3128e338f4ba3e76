/*
 * cli_doctor: `postern doctor [DOMAIN]`, the checks of src/doctor/doctor.c
 * with the configuration's domain, host name, DKIM keys and DNS lists, for
 * people (a table of verdicts with fixes, then the records to publish) or
 * for scripts (--json).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/dmarc.h"
#include "cli.h"
#include "dns/dns.h"
#include "doctor/doctor.h"
#include "lib/json.h"
#include "lib/privs.h"
#include "lib/util.h"
#include "store/store.h"

#define DOCTOR_MAX_ARGS 16

void cli_doctor_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] doctor [DOMAIN] [--hostname NAME] [--address IP ...]\n"
	      "                        [--dnsbl ZONE ...] [--dnswl ZONE ...] [--dbl ZONE ...] [--ca-file FILE]\n"
	      "                        [--resolver ADDR[:PORT]] [--dns-timeout DURATION] [--json] [--save]\n"
	      "\n"
	      "Checks what receivers see of DOMAIN (default: the first of [server] domains)\n"
	      "and this host, and prints each verdict (pass, warn, FAIL) with the fix:\n"
	      "\n"
	      "  mx        the domain's MX names this host; no null MX\n"
	      "  host      the host name has A/AAAA records, on this machine\n"
	      "  ptr       each address has reverse DNS that resolves back to it and\n"
	      "            matches the HELO name\n"
	      "  spf       one valid SPF record, within 10 lookups, authorising each\n"
	      "            address; an SPF record for the HELO name too\n"
	      "  dkim      every key under DATA_DIR/dkim/DOMAIN/ is published and matches\n"
	      "  dmarc     a DMARC record and its policy; rua= reaches a mailbox we have,\n"
	      "            or the other domain authorises it (RFC 7489 section 7.1)\n"
	      "  mta-sts   the _mta-sts TXT record, and the policy fetched over HTTPS\n"
	      "            (RFC 8461): valid, and its mx: lines cover every MX\n"
	      "  tls-rpt   the _smtp._tls TXT record (RFC 8460)\n"
	      "  dnsbl     each address on the DNS block lists (and allow lists)\n"
	      "\n"
	      "Then the records to publish, as zone-file lines.\n"
	      "\n"
	      "  --hostname NAME   the HELO name (default [server] hostname)\n"
	      "  --address IP      a public address of this host (repeatable; default: the\n"
	      "                    host name's A and AAAA records)\n"
	      "  --dnsbl ZONE      a DNS block list to check the addresses on (repeatable;\n"
	      "                    default: the lists of [dnsbl], with their return codes)\n"
	      "  --dnswl ZONE      a DNS allow list (repeatable)\n"
	      "  --dbl ZONE        a domain block list, asked for DOMAIN itself (repeatable;\n"
	      "                    e.g. dbl.spamhaus.org)\n"
	      "  --ca-file FILE    CA certificates for fetching the MTA-STS policy (default:\n"
	      "                    the system's)\n"
	      "  --resolver ADDR   DNS resolver(s), overriding [dns] resolver\n"
	      "  --dns-timeout D   time allowed for one DNS query\n"
	      "  --json            machine-readable output\n"
	      "  --save            also keep the report (as JSON) in DATA_DIR/doctor/latest.json,\n"
	      "                    where the dashboard's Doctor page shows it\n"
	      "\n"
	      "Exit status: 0 when nothing failed (warnings allowed), 1 when a check\n"
	      "failed, 2 for a usage error.\n",
	      out);
}

static void print_human(const struct doctor_report *r)
{
	printf("postern doctor: %s, host %s", r->domain, r->hostname);
	for (size_t i = 0; i < r->naddresses; i++)
		printf("%s%s", i ? ", " : " (", r->addresses[i]);
	printf("%s\n\n", r->naddresses ? ")" : "");
	for (size_t i = 0; i < r->nchecks; i++) {
		const struct doctor_check *c = &r->checks[i];
		printf("  %-4s  %-22s %s\n",
		       c->status == DOCTOR_PASS ? "pass" : c->status == DOCTOR_WARN ? "warn" : "FAIL", c->name,
		       c->detail);
		if (c->fix && c->status != DOCTOR_PASS)
			printf("        %-22s fix: %s\n", "", c->fix);
	}
	printf("\n%u passed, %u warning%s, %u failed\n", r->counts[DOCTOR_PASS], r->counts[DOCTOR_WARN],
	       r->counts[DOCTOR_WARN] == 1 ? "" : "s", r->counts[DOCTOR_FAIL]);
	if (r->npublish) {
		printf("\nRecords to publish (zone-file lines):\n\n");
		for (size_t i = 0; i < r->npublish; i++)
			printf("%s\n", r->publish[i]);
	}
}

static void print_json(FILE *out, const struct doctor_report *r, int64_t generated)
{
	fprintf(out, "{\"domain\": ");
	json_write_string(out, r->domain);
	fprintf(out, ", \"hostname\": ");
	json_write_string(out, r->hostname);
	fprintf(out, ", \"generated\": %lld, \"addresses\": [", (long long)generated);
	for (size_t i = 0; i < r->naddresses; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_write_string(out, r->addresses[i]);
	}
	fprintf(out, "],\n \"checks\": [");
	for (size_t i = 0; i < r->nchecks; i++) {
		const struct doctor_check *c = &r->checks[i];
		fprintf(out, "%s\n  {\"check\": ", i ? "," : "");
		json_write_string(out, c->name);
		fprintf(out, ", \"status\": \"%s\", \"detail\": ", doctor_status_name(c->status));
		json_write_string(out, c->detail);
		fprintf(out, ", \"fix\": ");
		json_write_string(out, c->status == DOCTOR_PASS ? NULL : c->fix);
		fprintf(out, "}");
	}
	fprintf(out, "],\n \"publish\": [");
	for (size_t i = 0; i < r->npublish; i++) {
		fprintf(out, "%s\n  ", i ? "," : "");
		json_write_string(out, r->publish[i]);
	}
	fprintf(out, "],\n \"summary\": {\"pass\": %u, \"warn\": %u, \"fail\": %u}}\n", r->counts[DOCTOR_PASS],
		r->counts[DOCTOR_WARN], r->counts[DOCTOR_FAIL]);
}

/* Writes the report to DATA_DIR/doctor/latest.json for the dashboard:
 * a temporary file, fsync'd, renamed over the old one, so a reader sees the
 * old report or the new one, never half of one. Run as root, the directory
 * and the file are given to [server] user (the daemon reads them). */
static int save_report(const struct config *cfg, const struct doctor_report *r, int64_t generated)
{
	char *dir = xasprintf("%s/doctor", cfg->data_dir);
	char *tmp = xasprintf("%s/.latest.json.%d", dir, (int)getpid());
	char *path = xasprintf("%s/latest.json", dir);
	char err[256] = "";
	uid_t uid = 0;
	gid_t gid = 0;
	int own = geteuid() == 0, fd = -1, rc = -1;
	FILE *f = NULL;

	if (own && privs_lookup(cfg->user, &uid, &gid, err, sizeof err) < 0)
		goto out;
	if (mkdir_p(dir, 0750) < 0 || (own && chown(dir, uid, gid) < 0)) {
		snprintf(err, sizeof err, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0 || (own && fchown(fd, uid, gid) < 0) || !(f = fdopen(fd, "w"))) {
		snprintf(err, sizeof err, "cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	print_json(f, r, generated);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || ferror(f)) {
		snprintf(err, sizeof err, "cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		goto out;
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		snprintf(err, sizeof err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	fsync_dir(dir);
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "postern doctor: --save: %s\n", err);
	free(dir);
	free(tmp);
	free(path);
	return rc;
}

/* The first item of a comma-separated list, into buf. */
static const char *first_item(const char *list, char *buf, size_t n)
{
	size_t len;
	while (*list == ' ' || *list == ',')
		list++;
	len = strcspn(list, ", ");
	snprintf(buf, n, "%.*s", (int)len, list);
	return buf;
}

int cli_doctor(const char *config_path, int config_explicit, int argc, char **argv)
{
	struct cli_dns_args da = { 0 };
	const char *domain = NULL, *hostname = NULL;
	const char *addresses[DOCTOR_MAX_ARGS];
	struct doctor_list lists[DOCTOR_MAX_ARGS];
	size_t naddr = 0, nlists = 0;
	int json = 0, save = 0, rc;
	struct config *cfg = NULL;
	struct dns_options dopt = { 0 };
	struct doctor_options o = { 0 };
	struct doctor_report r;
	struct event_base *base;
	struct dns *dns;
	struct store *st = NULL;
	char err[512], dom[256], why[256], rua[256], tls_rua[256];

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = !strcmp(a, "--hostname") || !strcmp(a, "--address") || !strcmp(a, "--dnsbl") ||
			    !strcmp(a, "--dnswl") || !strcmp(a, "--dbl") || !strcmp(a, "--resolver") || !strcmp(a, "--dns-timeout") ||
			    !strcmp(a, "--ca-file");
		if (takes && !v) {
			fprintf(stderr, "postern doctor: %s needs a value\n", a);
			return 2;
		}
		if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--save")) {
			save = 1;
		} else if (!strcmp(a, "--hostname")) {
			hostname = v, i++;
		} else if (!strcmp(a, "--address")) {
			if (naddr == DOCTOR_MAX_ARGS) {
				fprintf(stderr, "postern doctor: at most %d --address\n", DOCTOR_MAX_ARGS);
				return 2;
			}
			addresses[naddr++] = v, i++;
		} else if (!strcmp(a, "--dnsbl") || !strcmp(a, "--dnswl") || !strcmp(a, "--dbl")) {
			if (nlists == DOCTOR_MAX_ARGS) {
				fprintf(stderr, "postern doctor: at most %d lists\n", DOCTOR_MAX_ARGS);
				return 2;
			}
			lists[nlists].zone = v;
			lists[nlists].rules = NULL;
			lists[nlists].domain = !strcmp(a, "--dbl");
			lists[nlists++].allow = !strcmp(a, "--dnswl");
			i++;
		} else if (!strcmp(a, "--ca-file")) {
			o.ca_file = v, i++;
		} else if (!strcmp(a, "--resolver")) {
			da.resolver = v, i++;
		} else if (!strcmp(a, "--dns-timeout")) {
			da.timeout = v, i++;
		} else if (a[0] == '-') {
			fprintf(stderr, "postern doctor: unknown option %s\n\n", a);
			cli_doctor_usage(stderr);
			return 2;
		} else if (!domain) {
			domain = a;
		} else {
			fprintf(stderr, "postern doctor: one domain at a time (got %s and %s)\n", domain, a);
			return 2;
		}
	}
	for (size_t i = 0; i < naddr; i++) {
		unsigned char buf[16];
		if (inet_pton(AF_INET, addresses[i], buf) != 1 && inet_pton(AF_INET6, addresses[i], buf) != 1) {
			fprintf(stderr, "postern doctor: --address %s is not an IPv4 or IPv6 address\n", addresses[i]);
			return 2;
		}
	}
	if ((rc = cli_dns_setup(config_path, config_explicit, &da, &cfg, &dopt)))
		return rc;
	if (save && !cfg) {
		fprintf(stderr, "postern doctor: --save needs the configuration (its [server] data_dir); give -c FILE\n");
		return 2;
	}
	if (!domain && cfg && cfg->ndomains)
		domain = cfg->domains[0];
	if (!hostname && cfg)
		hostname = cfg->hostname;
	if (!domain || !hostname) {
		fprintf(stderr, "postern doctor: give the domain (and --hostname) or a configuration with [server] "
				"domains and hostname\n");
		config_free(cfg);
		return 2;
	}
	if (dmarc_domain_normalize(domain, dom, sizeof dom, why, sizeof why) < 0) {
		fprintf(stderr, "postern doctor: %s is not a domain: %s\n", domain, why);
		config_free(cfg);
		return 2;
	}
	base = event_base_new();
	dns = dns_new(base, &dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern doctor: %s\n", err);
		event_base_free(base);
		config_free(cfg);
		return 1;
	}
	if (cfg) {
		char path[4096];
		snprintf(path, sizeof path, "%s/state.db", cfg->data_dir);
		if (access(path, R_OK) == 0)
			st = store_open(cfg->data_dir, err, sizeof err);
	}
	o.domain = dom;
	o.hostname = hostname;
	o.key_dir = cfg ? cfg->dkim_key_dir : "/var/lib/postern/dkim";
	o.addresses = addresses;
	o.naddresses = naddr;
	o.our_domains = cfg ? (const char *const *)cfg->domains : (const char *const *)&o.domain;
	o.nour_domains = cfg ? cfg->ndomains : 1;
	o.store = st;
	if (nlists == 0 && cfg) {
		/* The lists the server uses ([dnsbl]). */
		const struct policy_zones *zs[2] = { &cfg->blocklists, &cfg->allowlists };
		for (int a = 0; a < 2; a++)
			for (size_t i = 0; i < zs[a]->n && nlists < DOCTOR_MAX_ARGS; i++) {
				lists[nlists].zone = zs[a]->zones[i].name;
				lists[nlists].allow = a;
				lists[nlists].domain = 0;
				lists[nlists++].rules = &zs[a]->zones[i];
			}
	}
	if (cfg && cfg->reports_dmarc_address && *cfg->reports_dmarc_address)
		o.rua = first_item(cfg->reports_dmarc_address, rua, sizeof rua);
	if (cfg && cfg->reports_tls_address && *cfg->reports_tls_address)
		o.tls_rua = first_item(cfg->reports_tls_address, tls_rua, sizeof tls_rua);
	o.lists = lists;
	o.nlists = nlists;
	o.relay_host = cfg ? cfg->relay_host : NULL;
	doctor_run(dns, &o, &r);
	if (json)
		print_json(stdout, &r, (int64_t)time(NULL));
	else
		print_human(&r);
	rc = r.counts[DOCTOR_FAIL] ? 1 : 0;
	if (save && save_report(cfg, &r, (int64_t)time(NULL)) < 0)
		rc = 1;
	else if (save && !json)
		printf("\nSaved for the dashboard in %s/doctor/latest.json\n", cfg->data_dir);
	doctor_report_clear(&r);
	store_close(st);
	dns_free(dns);
	event_base_free(base);
	config_free(cfg);
	return rc;
}
