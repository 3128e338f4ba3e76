/*
 * cli_reports: `postern reports import|dmarc|tls`.
 *
 *   import FILE...  loads reports from files: a raw .xml or .json, a .gz or
 *                   .zip, or a whole mail (.eml); one line per file, the
 *                   reason for each one refused; exit 1 if any was refused.
 *   dmarc           what the DMARC aggregate reports say: per reporter and
 *                   per source address, messages, SPF/DKIM/DMARC pass rates
 *                   and dispositions; sources that are not ours are flagged.
 *   tls             what the TLS reports say: per reporter and policy
 *                   domain, sessions and failures, and the failures by kind.
 *
 * "Ours": a source address is ours when it is in [reports] our_addresses,
 * or (check_spf = yes, the default; --no-spf turns it off) when the SPF
 * record of the report's policy domain passes it: check_host(ip,
 * policy-domain, "postmaster@" policy-domain) through the configured
 * resolver, RFC 7208. An SPF temperror leaves it unknown. With neither
 * source of truth, every source is unknown rather than foreign.
 *
 * main.c has loaded the configuration and dropped to [server] user.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/spf.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "report/report.h"
#include "store/store.h"

/* SPF checks in flight at once (each may ask several DNS questions). */
#define REPORTS_SPF_PARALLEL 32

void cli_reports_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] reports import [--json] FILE...\n"
	      "       postern [-c FILE] reports dmarc [--since DATE] [--no-spf] [--json]\n"
	      "       postern [-c FILE] reports tls [--since DATE] [--json]\n"
	      "\n"
	      "import  loads DMARC aggregate reports (XML) and SMTP TLS reports (JSON)\n"
	      "        from files: raw, gzip, zip, or a whole mail with the report\n"
	      "        attached. A report already stored (same reporter and report id)\n"
	      "        is a duplicate and is not stored twice. Exit status 1 if any\n"
	      "        file was refused; each refusal says why.\n"
	      "dmarc   per reporter and per source address: messages, DKIM, SPF and\n"
	      "        DMARC pass rates, dispositions. A source that is neither in\n"
	      "        [reports] our_addresses nor passed by your domain's SPF record\n"
	      "        is marked NOT OURS: someone else sends mail as your domain.\n"
	      "        --no-spf: decide by our_addresses alone (no DNS).\n"
	      "tls     per reporter and policy domain: TLS sessions that succeeded\n"
	      "        and failed, then the failures by result type and host.\n"
	      "\n"
	      "--since DATE  only reports whose period ends at or after DATE\n"
	      "              (YYYY-MM-DD, an RFC 3339 time, or an age such as 30d)\n"
	      "--json        JSON for scripts\n",
	      out);
}

/* ---- since ---- */

static int parse_since(const char *s, int64_t *out)
{
	char buf[64];
	uint64_t ms;
	if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
		snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
		return tlsrpt_parse_datetime(buf, out);
	}
	if (tlsrpt_parse_datetime(s, out) == 0)
		return 0;
	if (parse_duration_ms(s, &ms) == 0) {
		*out = (int64_t)time(NULL) - (int64_t)(ms / 1000);
		return 0;
	}
	return -1;
}

/* ---- an aligned table ---- */

struct table {
	size_t ncols, nrows;
	char **cells; /* nrows * ncols */
};

static void table_row(struct table *t, const char *const *cells)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
	for (size_t c = 0; c < t->ncols; c++) {
		/* never let a reporter's text move the cursor or forge a line */
		char *v = xstrdup(cells[c] ? cells[c] : "-");
		for (char *p = v; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		t->cells[t->nrows * t->ncols + c] = v;
	}
	t->nrows++;
}

/* Prints the table; columns [num_from, num_to) are right-aligned. */
static void table_print(struct table *t, size_t num_from, size_t num_to)
{
	size_t *w = xcalloc(t->ncols, sizeof *w);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t l = strlen(t->cells[r * t->ncols + c]);
			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];
			int last = c + 1 == t->ncols;
			if (c >= num_from && c < num_to)
				printf("%*s", (int)w[c], v);
			else if (last)
				printf("%s", v);
			else
				printf("%-*s", (int)w[c], v);
			if (!last)
				printf("  ");
		}
		printf("\n");
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
	t->cells = NULL;
	t->nrows = 0;
}

static void pct(char *buf, size_t n, int64_t part, int64_t whole)
{
	if (whole <= 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.1f%%", 100.0 * (double)part / (double)whole);
}

static double rate(int64_t part, int64_t whole)
{
	return whole > 0 ? (double)part / (double)whole : 0.0;
}

/* ---- import ---- */

/* Reads a whole file of at most max bytes. */
static char *read_file(const char *path, size_t max, size_t *len, char *why, size_t whysize)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	char *buf;
	size_t n;

	if (!f) {
		snprintf(why, whysize, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whysize, "not a regular file");
		fclose(f);
		return NULL;
	}
	if ((uint64_t)sb.st_size > max) {
		snprintf(why, whysize, "the file is %lld bytes, more than a report of [reports] max_size can be",
			 (long long)sb.st_size);
		fclose(f);
		return NULL;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	n = fread(buf, 1, (size_t)sb.st_size, f);
	if (ferror(f)) {
		snprintf(why, whysize, "cannot read: %s", strerror(errno));
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int reports_import(const struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct report_limits lim = { (size_t)cfg->reports_max_size, (size_t)cfg->reports_max_records };
	int json = 0, ch, nfail = 0, nfiles;
	struct store *st;
	char err[512];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'j') {
			json = 1;
		} else if (ch == 'h') {
			cli_reports_usage(stdout);
			return 0;
		} else {
			cli_reports_usage(stderr);
			return 2;
		}
	}
	nfiles = argc - optind;
	if (nfiles <= 0) {
		fprintf(stderr, "postern: reports import needs at least one FILE\n");
		return 2;
	}
	st = store_open(cfg->data_dir, err, sizeof err);
	if (!st) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	if (json)
		printf("[");
	for (int i = optind; i < argc; i++) {
		const char *path = argv[i];
		char why[400];
		size_t len;
		char *data = read_file(path, REPORT_MAX_INPUT(&lim), &len, why, sizeof why);
		struct report *r = data ? report_parse(data, len, &lim, why, sizeof why) : NULL;
		enum report_save_rc rc = REPORT_SAVE_FAILED;

		free(data);
		if (r) {
			rc = report_save(st, r);
			if (rc == REPORT_SAVE_FAILED)
				snprintf(why, sizeof why, "the store failed (see the log line above)");
		}
		if (!r || rc == REPORT_SAVE_FAILED)
			nfail++;
		if (json) {
			printf("%s\n {\"file\": ", i > optind ? "," : "");
			json_write_string(stdout, path);
			printf(", \"result\": \"%s\"", !r ? "refused" : report_save_name(rc));
			if (r) {
				printf(", \"kind\": \"%s\", \"org\": ", report_kind_name(r->kind));
				json_write_string(stdout, report_org(r));
				printf(", \"report_id\": ");
				json_write_string(stdout, report_id(r));
				printf(", \"records\": %zu, \"messages\": %lld, \"via\": ", report_records(r),
				       report_messages(r));
				json_write_string(stdout, r->via);
			}
			if (!r || rc == REPORT_SAVE_FAILED) {
				printf(", \"reason\": ");
				json_write_string(stdout, why);
			}
			printf("}");
		} else if (!r) {
			fprintf(stderr, "postern: %s: refused: %s\n", path, why);
		} else {
			char org[300], id[300];
			log_value(org, sizeof org, report_org(r), strlen(report_org(r)));
			log_value(id, sizeof id, report_id(r), strlen(report_id(r)));
			if (rc == REPORT_SAVE_FAILED)
				fprintf(stderr, "postern: %s: %s\n", path, why);
			else
				printf("%s: %s %s report from %s id %s: %zu %s, %lld %s\n", path, report_save_name(rc),
				       report_kind_name(r->kind), org, id, report_records(r),
				       r->kind == REPORT_DMARC ? "records" : "policies", report_messages(r),
				       r->kind == REPORT_DMARC ? "messages" : "sessions");
		}
		if (nfiles >= 20 && ((i - optind + 1) % 100 == 0 || i + 1 == argc))
			fprintf(stderr, "postern: %d of %d files read\n", i - optind + 1, nfiles);
		report_free(r);
		fflush(stdout);
	}
	if (json)
		printf("\n]\n");
	store_close(st);
	if (nfail && !json)
		fprintf(stderr, "postern: %d of %d files refused\n", nfail, nfiles);
	return nfail ? 1 : 0;
}

/* ---- dmarc ---- */

struct row {
	struct store_dmarc_row r; /* strings owned below */
	char *org_name, *email, *source_ip, *domain, *header_from;
	int ours;            /* 1 ours, 0 not ours, -1 unknown */
	const char *ours_by; /* "our_addresses", "spf", or NULL */
	const char *spf;     /* the SPF result, when checked */
	struct spf_run *run; /* while its SPF check runs */
};

struct rows {
	struct row *v;
	size_t n;
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int collect_dmarc(void *arg, const struct store_dmarc_row *row)
{
	struct rows *rs = arg;
	struct row *r;
	rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof *rs->v);
	r = &rs->v[rs->n++];
	memset(r, 0, sizeof *r);
	r->r = *row;
	r->r.org_name = r->org_name = dup_or_null(row->org_name);
	r->r.email = r->email = dup_or_null(row->email);
	r->r.source_ip = r->source_ip = dup_or_null(row->source_ip);
	r->r.domain = r->domain = dup_or_null(row->domain);
	r->r.header_from = r->header_from = dup_or_null(row->header_from);
	r->ours = -1;
	return 0;
}

static void rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].org_name);
		free(rs->v[i].email);
		free(rs->v[i].source_ip);
		free(rs->v[i].domain);
		free(rs->v[i].header_from);
	}
	free(rs->v);
}

struct spf_run;
struct spf_run {
	struct event_base *base;
	struct dns *dns;
	struct rows *rs;
	size_t next, inflight;
	const char *hostname;
};

static void spf_start_next(struct spf_run *sr);

static void spf_done(void *arg, struct spf_eval *e)
{
	struct row *r = arg;
	struct spf_run *sr = r->run;

	r->spf = spf_result_name(e->result);
	if (e->result == SPF_PASS) {
		r->ours = 1;
		r->ours_by = "spf";
	} else if (e->result != SPF_TEMPERROR) {
		r->ours = 0;
	}
	sr->inflight--;
	spf_start_next(sr);
	if (sr->inflight == 0)
		event_base_loopbreak(sr->base);
}

static void spf_start_next(struct spf_run *sr)
{
	while (sr->inflight < REPORTS_SPF_PARALLEL && sr->next < sr->rs->n) {
		struct row *r = &sr->rs->v[sr->next++];
		char *sender;
		if (r->ours == 1 || !r->domain || !r->source_ip)
			continue;
		sender = xasprintf("postmaster@%s", r->domain);
		r->run = sr;
		if (spf_check_async(sr->dns, r->source_ip, sender, r->domain, sr->hostname, 0, spf_done, r))
			sr->inflight++;
		free(sender);
	}
}

/* Decides which sources are ours. Returns 0, or -1 after printing why. */
static int decide_ours(const struct config *cfg, struct rows *rs, int use_spf)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct row *r = &rs->v[i];
		for (size_t k = 0; k < cfg->nour_addresses && r->source_ip; k++)
			if (report_ip_in(r->source_ip, cfg->our_addresses[k])) {
				r->ours = 1;
				r->ours_by = "our_addresses";
			}
		if (r->ours != 1 && cfg->nour_addresses && !use_spf)
			r->ours = 0;
	}
	if (use_spf && rs->n) {
		struct dns_options dopt = {
			.resolver = cfg->dns_resolver,
			.timeout_ms = cfg->dns_timeout_ms,
			.trust_anchor = access(cfg->dns_trust_anchor, R_OK) == 0 ? cfg->dns_trust_anchor : "",
			.max_inflight = (unsigned)cfg->dns_max_queries,
			.cache_entries = 10000,
		};
		struct spf_run sr = { .rs = rs, .hostname = cfg->hostname };
		char err[512];
		sr.base = event_base_new();
		sr.dns = dns_new(sr.base, &dopt, err, sizeof err);
		if (!sr.dns) {
			fprintf(stderr, "postern: cannot start the resolver for SPF: %s (--no-spf skips SPF)\n", err);
			event_base_free(sr.base);
			return -1;
		}
		spf_start_next(&sr);
		if (sr.inflight)
			event_base_dispatch(sr.base);
		dns_free(sr.dns);
		event_base_free(sr.base);
	}
	return 0;
}

static void json_rates(const struct store_dmarc_row *r)
{
	printf("\"reports\": %lld, \"messages\": %lld, \"dkim_pass\": %lld, \"spf_pass\": %lld, \"dmarc_pass\": %lld, "
	       "\"dkim_pass_rate\": %.4f, \"spf_pass_rate\": %.4f, \"dmarc_pass_rate\": %.4f, "
	       "\"disposition\": {\"none\": %lld, \"quarantine\": %lld, \"reject\": %lld}",
	       (long long)r->reports, (long long)r->messages, (long long)r->dkim_pass, (long long)r->spf_pass,
	       (long long)r->dmarc_pass, rate(r->dkim_pass, r->messages), rate(r->spf_pass, r->messages),
	       rate(r->dmarc_pass, r->messages), (long long)r->none, (long long)r->quarantine, (long long)r->reject);
}

static void rate_cells(const struct store_dmarc_row *r, char cells[][32])
{
	snprintf(cells[0], 32, "%lld", (long long)r->reports);
	snprintf(cells[1], 32, "%lld", (long long)r->messages);
	pct(cells[2], 32, r->dkim_pass, r->messages);
	pct(cells[3], 32, r->spf_pass, r->messages);
	pct(cells[4], 32, r->dmarc_pass, r->messages);
	snprintf(cells[5], 32, "%lld", (long long)r->none);
	snprintf(cells[6], 32, "%lld", (long long)r->quarantine);
	snprintf(cells[7], 32, "%lld", (long long)r->reject);
}

static int reports_dmarc(const struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "since", required_argument, NULL, 's' },
					      { "no-spf", no_argument, NULL, 'n' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct rows reporters = { 0 }, sources = { 0 };
	int json = 0, ch, use_spf = strcmp(cfg->reports_check_spf, "yes") == 0, rc = 0;
	int64_t since = 0;
	size_t foreign = 0, unknown = 0;
	struct store *st;
	char err[512];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'n':
			use_spf = 0;
			break;
		case 's':
			if (parse_since(optarg, &since) < 0) {
				fprintf(stderr, "postern: --since %s is not a date; write e.g. 2024-01-31 or 30d\n", optarg);
				return 2;
			}
			break;
		case 'h':
			cli_reports_usage(stdout);
			return 0;
		default:
			cli_reports_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		cli_reports_usage(stderr);
		return 2;
	}
	st = store_open(cfg->data_dir, err, sizeof err);
	if (!st) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	if (store_dmarc_summary(st, since, STORE_DMARC_BY_REPORTER, collect_dmarc, &reporters) != STORE_OK ||
	    store_dmarc_summary(st, since, STORE_DMARC_BY_SOURCE, collect_dmarc, &sources) != STORE_OK) {
		fprintf(stderr, "postern: cannot read the reports from the store\n");
		rc = 1;
		goto out;
	}
	if (decide_ours(cfg, &sources, use_spf) < 0) {
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < sources.n; i++) {
		foreign += sources.v[i].ours == 0;
		unknown += sources.v[i].ours < 0;
	}
	if (json) {
		printf("{\"since\": %lld, \"reporters\": [", (long long)since);
		for (size_t i = 0; i < reporters.n; i++) {
			const struct row *r = &reporters.v[i];
			printf("%s\n  {\"org_name\": ", i ? "," : "");
			json_write_string(stdout, r->org_name);
			printf(", \"email\": ");
			json_write_string(stdout, r->email);
			printf(", ");
			json_rates(&r->r);
			printf("}");
		}
		printf("\n ],\n \"sources\": [");
		for (size_t i = 0; i < sources.n; i++) {
			const struct row *r = &sources.v[i];
			printf("%s\n  {\"source_ip\": ", i ? "," : "");
			json_write_string(stdout, r->source_ip);
			printf(", \"domain\": ");
			json_write_string(stdout, r->domain);
			printf(", \"header_from\": ");
			json_write_string(stdout, r->header_from);
			printf(", \"reporters\": %lld, ", (long long)r->r.reporters);
			json_rates(&r->r);
			printf(", \"ours\": %s, \"ours_by\": ", r->ours < 0 ? "null" : r->ours ? "true" : "false");
			json_write_string(stdout, r->ours_by);
			printf(", \"spf\": ");
			json_write_string(stdout, r->spf);
			printf("}");
		}
		printf("\n ],\n \"foreign_sources\": %zu, \"unknown_sources\": %zu}\n", foreign, unknown);
		goto out;
	}
	if (!reporters.n) {
		printf("No DMARC aggregate reports%s. Set [reports] dmarc_address, or load old ones with "
		       "`postern reports import FILE...`.\n", since ? " in that period" : "");
		goto out;
	}
	{
		struct table t = { .ncols = 10 };
		const char *head[] = { "REPORTER", "EMAIL", "REPORTS", "MESSAGES", "DKIM", "SPF", "DMARC", "NONE",
				       "QUARANTINE", "REJECT" };
		printf("Reporters\n");
		table_row(&t, head);
		for (size_t i = 0; i < reporters.n; i++) {
			char c[8][32];
			const struct row *r = &reporters.v[i];
			rate_cells(&r->r, c);
			table_row(&t, (const char *const[]){ r->org_name && *r->org_name ? r->org_name : "(no name)",
							     r->email, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7] });
		}
		table_print(&t, 2, 10);
	}
	{
		struct table t = { .ncols = 11 };
		const char *head[] = { "SOURCE", "DOMAIN", "REPORTS", "MESSAGES", "DKIM", "SPF", "DMARC", "NONE",
				       "QUARANTINE", "REJECT", "OURS" };
		printf("\nSources\n");
		table_row(&t, head);
		for (size_t i = 0; i < sources.n; i++) {
			char c[8][32], ours[64];
			const struct row *r = &sources.v[i];
			rate_cells(&r->r, c);
			if (r->ours == 1)
				snprintf(ours, sizeof ours, "yes (%s)", r->ours_by);
			else if (r->ours == 0)
				snprintf(ours, sizeof ours, "NOT OURS%s%s%s", r->spf ? " (spf " : "", r->spf ? r->spf : "",
					 r->spf ? ")" : "");
			else
				snprintf(ours, sizeof ours, "unknown%s", r->spf ? " (spf temperror)" : "");
			table_row(&t, (const char *const[]){ r->source_ip, r->domain, c[0], c[1], c[2], c[3], c[4], c[5],
							     c[6], c[7], ours });
		}
		table_print(&t, 2, 10);
	}
	if (foreign)
		printf("\n%zu source%s NOT OURS: %s mail as your domain from addresses that are neither in "
		       "[reports] our_addresses nor passed by your SPF record.\n",
		       foreign, foreign == 1 ? " is" : "s are", foreign == 1 ? "it sends" : "they send");
	if (unknown)
		printf("\n%zu source%s unknown: set [reports] our_addresses%s.\n", unknown, unknown == 1 ? " is" : "s are",
		       use_spf ? " (some SPF checks failed with a DNS error)" : ", or let SPF decide (check_spf = yes)");
out:
	rows_free(&reporters);
	rows_free(&sources);
	store_close(st);
	return rc;
}

/* ---- tls ---- */

struct tls_rows {
	struct table t;
	int json;
	size_t n;
};

static int print_tls_policy(void *arg, const struct store_tls_row *r)
{
	struct tls_rows *tr = arg;
	if (tr->json) {
		printf("%s\n  {\"org_name\": ", tr->n ? "," : "");
		json_write_string(stdout, r->org_name);
		printf(", \"domain\": ");
		json_write_string(stdout, r->domain);
		printf(", \"policy_type\": ");
		json_write_string(stdout, r->policy_type);
		printf(", \"reports\": %lld, \"successful_sessions\": %lld, \"failed_sessions\": %lld, "
		       "\"failure_rate\": %.4f}",
		       (long long)r->reports, (long long)r->success, (long long)r->failure,
		       rate(r->failure, r->success + r->failure));
	} else {
		char c[4][32];
		snprintf(c[0], 32, "%lld", (long long)r->reports);
		snprintf(c[1], 32, "%lld", (long long)r->success);
		snprintf(c[2], 32, "%lld", (long long)r->failure);
		pct(c[3], 32, r->failure, r->success + r->failure);
		table_row(&tr->t, (const char *const[]){ r->org_name, r->domain, r->policy_type, c[0], c[1], c[2], c[3] });
	}
	tr->n++;
	return 0;
}

static int print_tls_failure(void *arg, const struct store_tls_row *r)
{
	struct tls_rows *tr = arg;
	if (tr->json) {
		printf("%s\n  {\"domain\": ", tr->n ? "," : "");
		json_write_string(stdout, r->domain);
		printf(", \"policy_type\": ");
		json_write_string(stdout, r->policy_type);
		printf(", \"result_type\": ");
		json_write_string(stdout, r->result_type);
		printf(", \"sending_ip\": ");
		json_write_string(stdout, r->sending_ip);
		printf(", \"receiving_mx\": ");
		json_write_string(stdout, r->receiving_mx);
		printf(", \"reports\": %lld, \"failed_sessions\": %lld}", (long long)r->reports, (long long)r->failure);
	} else {
		char c[2][32];
		snprintf(c[0], 32, "%lld", (long long)r->reports);
		snprintf(c[1], 32, "%lld", (long long)r->failure);
		table_row(&tr->t, (const char *const[]){ r->domain, r->result_type, r->sending_ip, r->receiving_mx, c[0],
							 c[1] });
	}
	tr->n++;
	return 0;
}

static int reports_tls(const struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "since", required_argument, NULL, 's' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct tls_rows pol = { .t = { .ncols = 7 } }, fail = { .t = { .ncols = 6 } };
	int json = 0, ch, rc = 0;
	int64_t since = 0;
	struct store *st;
	char err[512];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 's':
			if (parse_since(optarg, &since) < 0) {
				fprintf(stderr, "postern: --since %s is not a date; write e.g. 2024-01-31 or 30d\n", optarg);
				return 2;
			}
			break;
		case 'h':
			cli_reports_usage(stdout);
			return 0;
		default:
			cli_reports_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		cli_reports_usage(stderr);
		return 2;
	}
	st = store_open(cfg->data_dir, err, sizeof err);
	if (!st) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	pol.json = fail.json = json;
	if (json)
		printf("{\"since\": %lld, \"policies\": [", (long long)since);
	else
		table_row(&pol.t, (const char *const[]){ "REPORTER", "POLICY DOMAIN", "TYPE", "REPORTS", "SUCCESSFUL",
							 "FAILED", "FAILURE RATE" });
	if (store_tls_summary(st, since, STORE_TLS_BY_POLICY, print_tls_policy, &pol) != STORE_OK) {
		rc = 1;
		goto out;
	}
	if (json)
		printf("\n ],\n \"failures\": [");
	else
		table_row(&fail.t, (const char *const[]){ "POLICY DOMAIN", "RESULT", "SENDING IP", "RECEIVING MX",
							  "REPORTS", "FAILED SESSIONS" });
	if (store_tls_summary(st, since, STORE_TLS_BY_FAILURE, print_tls_failure, &fail) != STORE_OK) {
		rc = 1;
		goto out;
	}
	if (json) {
		printf("\n ]}\n");
	} else if (!pol.n) {
		printf("No TLS reports%s. Set [reports] tls_address, or load old ones with "
		       "`postern reports import FILE...`.\n", since ? " in that period" : "");
	} else {
		printf("Policies\n");
		table_print(&pol.t, 3, 7);
		if (fail.n) {
			printf("\nFailures\n");
			table_print(&fail.t, 4, 6);
		} else {
			printf("\nNo failed sessions.\n");
		}
	}
out:
	for (size_t i = 0; i < pol.t.nrows * pol.t.ncols; i++)
		free(pol.t.cells[i]);
	free(pol.t.cells);
	for (size_t i = 0; i < fail.t.nrows * fail.t.ncols; i++)
		free(fail.t.cells[i]);
	free(fail.t.cells);
	if (rc)
		fprintf(stderr, "postern: cannot read the reports from the store\n");
	store_close(st);
	return rc;
}

int cli_reports(const struct config *cfg, int argc, char **argv)
{
	if (argc < 1) {
		cli_reports_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[0], "import"))
		return reports_import(cfg, argc, argv);
	if (!strcmp(argv[0], "dmarc"))
		return reports_dmarc(cfg, argc, argv);
	if (!strcmp(argv[0], "tls"))
		return reports_tls(cfg, argc, argv);
	fprintf(stderr, "postern: unknown reports command '%s'\n\n", argv[0]);
	cli_reports_usage(stderr);
	return 2;
}
