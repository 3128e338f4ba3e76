/*
 * cli_dmarc: `postern dmarc check`, which runs the same asynchronous DMARC
 * evaluation (src/auth/dmarc.c) the SMTP server runs, from From header
 * values and the SPF and DKIM outcomes given on the command line, and
 * shows the result, the policy, the disposition, the alignment, the record
 * and every DNS lookup that led to them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/dmarc.h"
#include "cli.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/util.h"

void cli_dmarc_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] dmarc check [--from 'HEADER VALUE' ...]\n"
	      "                        [--spf RESULT --spf-domain DOMAIN]\n"
	      "                        [--dkim-pass DOMAIN ...] [--dkim-fail DOMAIN ...]\n"
	      "                        [--dkim-temperror DOMAIN ...] [--sample N]\n"
	      "                        [--resolver ADDR[:PORT]] [--dns-timeout DURATION]\n"
	      "                        [--dnssec] [--json]\n"
	      "\n"
	      "Evaluates DMARC (RFC 7489, with np= of RFC 9091) as postern's SMTP server\n"
	      "does at the end of a message, and prints the result, the policy requested,\n"
	      "the disposition, the alignment of SPF and DKIM, the record and the trace of\n"
	      "DNS lookups that led to them.\n"
	      "\n"
	      "  --from VALUE        the value of one From header field, as in the message\n"
	      "                      (display names, comments, groups allowed); repeat it for\n"
	      "                      a message with several From fields; none: no From field\n"
	      "  --spf RESULT        the SPF result: pass, fail, softfail, neutral, none,\n"
	      "                      temperror or permerror (default none)\n"
	      "  --spf-domain D      the domain SPF checked: the MAIL FROM domain, or the\n"
	      "                      HELO name when MAIL FROM was empty\n"
	      "  --dkim-pass D       a DKIM signature with d=D verified (repeatable)\n"
	      "  --dkim-fail D       a DKIM signature with d=D did not verify (repeatable)\n"
	      "  --dkim-temperror D  a DKIM signature with d=D could not be verified for now\n"
	      "  --sample N          the pct= draw, 0-99: the policy applies when N < pct\n"
	      "                      (default: at random, as the server does)\n"
	      "  --resolver ADDR     DNS resolver(s) to use, overriding [dns] resolver;\n"
	      "                      no configuration file is needed then\n"
	      "  --dns-timeout D     time allowed for one DNS query (default [dns] timeout)\n"
	      "  --dnssec            validate answers (with --resolver)\n"
	      "  --json              machine-readable output\n"
	      "\n"
	      "Examples:\n"
	      "  postern dmarc check --from 'Alice <alice@example.org>' --spf pass \\\n"
	      "      --spf-domain bounces.example.org --dkim-pass example.org\n"
	      "  postern dmarc check --from 'a@example.org, b@example.net' --json\n"
	      "\n"
	      "Exit status: 0 whatever the DMARC result, 1 when the check could not run,\n"
	      "2 for a usage error.\n",
	      out);
}

struct dmarc_cli {
	struct event_base *base;
	int json;
};

static void json_uris(const struct dmarc_uri *u, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"uri\": ", i ? ", " : "");
		json_write_string(stdout, u[i].uri);
		printf(", \"max_size\": %llu}", (unsigned long long)u[i].max_size);
	}
	printf("]");
}

static void json_domain(const struct dmarc_domain *d)
{
	char comment[200];
	dmarc_comment(d, comment, sizeof comment);
	printf("{\"domain\": ");
	json_write_string(stdout, d->domain);
	printf(", \"org_domain\": ");
	json_write_string(stdout, d->org);
	printf(", \"result\": \"%s\", \"disposition\": \"%s\", \"policy\": ", dmarc_result_name(d->result),
	       dmarc_policy_name(d->disposition));
	if (d->policy_tag)
		printf("\"%s\"", dmarc_policy_name(d->policy));
	else
		printf("null");
	printf(", \"policy_tag\": ");
	json_write_string(stdout, d->policy_tag);
	printf(", \"spf_aligned\": %s, \"dkim_aligned\": %s, \"dkim_domain\": ", d->spf_aligned ? "true" : "false",
	       d->dkim_aligned ? "true" : "false");
	json_write_string(stdout, d->dkim_domain);
	printf(", \"sampled_out\": %s, \"nonexistent\": %s, \"policy_defaulted\": %s, \"comment\": ",
	       d->sampled_out ? "true" : "false", d->nonexistent == 1 ? "true" : d->nonexistent == 0 ? "false" : "null",
	       d->policy_defaulted ? "true" : "false");
	json_write_string(stdout, comment);
	printf(", \"reason\": ");
	json_write_string(stdout, d->reason);
	printf(", \"record_domain\": ");
	json_write_string(stdout, d->record_domain);
	printf(", \"record_text\": ");
	json_write_string(stdout, d->record_text);
	printf(", \"record\": ");
	if (d->has_record) {
		const struct dmarc_record *r = &d->record;
		printf("{\"p\": \"%s\", \"sp\": \"%s\", \"np\": \"%s\", \"has_sp\": %s, \"has_np\": %s, \"pct\": %u, "
		       "\"adkim\": \"%c\", \"aspf\": \"%c\", \"fo\": ",
		       dmarc_policy_name(r->p), dmarc_policy_name(r->sp), dmarc_policy_name(r->np),
		       r->has_sp ? "true" : "false", r->has_np ? "true" : "false", r->pct, r->adkim, r->aspf);
		json_write_string(stdout, r->fo);
		printf(", \"rf\": ");
		json_write_string(stdout, r->rf);
		printf(", \"ri\": %u, \"rua\": ", r->ri);
		json_uris(r->rua, r->nrua);
		printf(", \"ruf\": ");
		json_uris(r->ruf, r->nruf);
		printf("}");
	} else {
		printf("null");
	}
	printf("}");
}

/* "dmarc=RESULT (COMMENT) header.from=DOMAIN", for each author domain. */
static void auth_results(const struct dmarc_eval *e, char *out, size_t n)
{
	size_t o = 0;
	out[0] = '\0';
	if (e->from_problem) {
		snprintf(out, n, "dmarc=permerror");
		return;
	}
	for (size_t i = 0; i < e->ndomains && o < n; i++) {
		char comment[200];
		dmarc_comment(&e->domains[i], comment, sizeof comment);
		o += (size_t)snprintf(out + o, n - o, "%sdmarc=%s%s%s%s header.from=%s", i ? "; " : "",
				      dmarc_result_name(e->domains[i].result), *comment ? " (" : "", comment,
				      *comment ? ")" : "", e->domains[i].domain);
	}
}

static void print_trace_text(const struct dmarc_eval *e)
{
	printf("trace:\n");
	for (size_t i = 0; i < e->nlookups; i++) {
		const struct dmarc_lookup *l = e->lookups[i];
		printf("  %-5s %s -> %s", dns_type_name(l->type), l->name,
		       l->answered ? dns_status_name(l->status) : "unasked");
		for (size_t k = 0; k < l->answer.nrrs; k++) {
			char v[600];
			dns_rr_text(&l->answer.rrs[k], v, sizeof v);
			printf("%s%s", k ? ", " : ": ", v);
		}
		printf("\n");
	}
}

static void print_json(const struct dmarc_eval *e, const char *ar)
{
	const struct dmarc_domain *d = e->decisive;
	printf("{\"result\": \"%s\", \"disposition\": \"%s\", \"header_from\": ", dmarc_result_name(e->result),
	       dmarc_policy_name(e->disposition));
	json_write_string(stdout, d ? d->domain : NULL);
	printf(", \"policy\": ");
	if (d && d->policy_tag)
		printf("\"%s\"", dmarc_policy_name(d->policy));
	else
		printf("null");
	printf(", \"policy_tag\": ");
	json_write_string(stdout, d ? d->policy_tag : NULL);
	printf(", \"spf_aligned\": %s, \"dkim_aligned\": %s, \"sampled_out\": %s, \"reason\": ",
	       d && d->spf_aligned ? "true" : "false", d && d->dkim_aligned ? "true" : "false",
	       d && d->sampled_out ? "true" : "false");
	json_write_string(stdout, e->reason);
	printf(", \"from_problem\": ");
	json_write_string(stdout, e->from_problem);
	printf(", \"from_fields\": %zu, \"sample\": %u, \"spf\": \"%s\", \"spf_domain\": ", e->nfrom, e->sample,
	       spf_result_name(e->spf));
	json_write_string(stdout, e->spf_domain);
	printf(", \"dkim\": [");
	for (size_t i = 0; i < e->ndkim; i++) {
		printf("%s{\"domain\": ", i ? ", " : "");
		json_write_string(stdout, e->dkim[i].domain);
		printf(", \"result\": \"%s\"}", e->dkim[i].pass ? "pass" : e->dkim[i].temperror ? "temperror" : "fail");
	}
	printf("], \"authentication_results\": ");
	json_write_string(stdout, ar);
	printf(", \"psl\": ");
	json_write_string(stdout, dmarc_psl_source());
	printf(", \"domains\": [");
	for (size_t i = 0; i < e->ndomains; i++) {
		if (i)
			printf(", ");
		json_domain(&e->domains[i]);
	}
	printf("], \"trace\": [");
	for (size_t i = 0; i < e->nlookups; i++) {
		const struct dmarc_lookup *l = e->lookups[i];
		char q[300];
		snprintf(q, sizeof q, "%s %s", dns_type_name(l->type), l->name);
		printf("%s{\"query\": ", i ? ", " : "");
		json_write_string(stdout, q);
		printf(", \"status\": \"%s\", \"answers\": [", l->answered ? dns_status_name(l->status) : "unasked");
		for (size_t k = 0; k < l->answer.nrrs; k++) {
			char v[600];
			dns_rr_text(&l->answer.rrs[k], v, sizeof v);
			if (k)
				printf(", ");
			json_write_string(stdout, v);
		}
		printf("]}");
	}
	printf("]}\n");
}

static void print_text(const struct dmarc_eval *e, const char *ar)
{
	printf("result: %s\n", dmarc_result_name(e->result));
	printf("disposition: %s\n", dmarc_policy_name(e->disposition));
	if (e->from_problem)
		printf("From problem: %s\n", e->from_problem);
	for (size_t i = 0; i < e->ndomains; i++) {
		const struct dmarc_domain *d = &e->domains[i];
		printf("%s %s (organizational domain %s): %s, disposition %s\n",
		       d == e->decisive && e->ndomains > 1 ? "author domain (decisive)" : "author domain", d->domain,
		       d->org, dmarc_result_name(d->result), dmarc_policy_name(d->disposition));
		if (d->policy_tag)
			printf("  policy: %s=%s%s\n", d->policy_tag, dmarc_policy_name(d->policy),
			       d->sampled_out ? " (outside pct=, so lowered)" : "");
		if (d->has_record)
			printf("  alignment: SPF %s (aspf=%c), DKIM %s%s%s (adkim=%c)\n",
			       d->spf_aligned ? "aligned" : "not aligned", d->record.aspf,
			       d->dkim_aligned ? "aligned" : "not aligned", d->dkim_domain ? " d=" : "",
			       d->dkim_domain ? d->dkim_domain : "", d->record.adkim);
		if (d->record_domain)
			printf("  record at _dmarc.%s: %s\n", d->record_domain, d->record_text);
		if (d->has_record) {
			const struct dmarc_record *r = &d->record;
			printf("  p=%s sp=%s np=%s pct=%u adkim=%c aspf=%c fo=%s rf=%s ri=%u", dmarc_policy_name(r->p),
			       dmarc_policy_name(r->sp), dmarc_policy_name(r->np), r->pct, r->adkim, r->aspf, r->fo, r->rf,
			       r->ri);
			for (size_t k = 0; k < r->nrua; k++)
				printf("%s%s", k ? "," : " rua=", r->rua[k].uri);
			for (size_t k = 0; k < r->nruf; k++)
				printf("%s%s", k ? "," : " ruf=", r->ruf[k].uri);
			printf("\n");
		}
		if (d->reason)
			printf("  reason: %s\n", d->reason);
	}
	printf("Authentication-Results: %s\n", ar);
	print_trace_text(e);
}

static void on_done(void *arg, struct dmarc_eval *e)
{
	struct dmarc_cli *c = arg;
	char ar[4096];
	auth_results(e, ar, sizeof ar);
	if (c->json)
		print_json(e, ar);
	else
		print_text(e, ar);
	event_base_loopbreak(c->base);
}

static int parse_spf_result(const char *s, enum spf_result *out)
{
	for (int r = SPF_NONE; r <= SPF_PERMERROR; r++) {
		if (!strcmp(s, spf_result_name((enum spf_result)r))) {
			*out = (enum spf_result)r;
			return 0;
		}
	}
	return -1;
}

int cli_dmarc(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },	 { "spf", required_argument, NULL, 's' },
		{ "spf-domain", required_argument, NULL, 'S' }, { "dkim-pass", required_argument, NULL, 'P' },
		{ "dkim-fail", required_argument, NULL, 'F' },	 { "dkim-temperror", required_argument, NULL, 'T' },
		{ "sample", required_argument, NULL, 'n' },	 { "resolver", required_argument, NULL, 'r' },
		{ "dns-timeout", required_argument, NULL, 't' }, { "dnssec", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },		 { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char **from = NULL, *spf_domain = NULL, *resolver = NULL, *timeout = NULL;
	struct dmarc_dkim *dkim = NULL;
	size_t nfrom = 0, ndkim = 0;
	enum spf_result spf = SPF_NONE;
	int spf_given = 0, dnssec = 0, sample = -1, ch, rc = 2;
	struct dmarc_cli c = { 0 };
	struct dns_options dopt = { 0 };
	struct config *cfg = NULL;
	struct dns *dns = NULL;
	char err[512];
	uint64_t v;

	if (argc < 1 || strcmp(argv[0], "check")) {
		cli_dmarc_usage(stderr);
		return 2;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			from = xrealloc(from, (nfrom + 1) * sizeof *from);
			from[nfrom++] = optarg;
			break;
		case 's':
			if (parse_spf_result(optarg, &spf) < 0) {
				fprintf(stderr, "postern: --spf is pass, fail, softfail, neutral, none, temperror or permerror\n");
				goto out;
			}
			spf_given = 1;
			break;
		case 'S':
			spf_domain = optarg;
			break;
		case 'P':
		case 'F':
		case 'T':
			dkim = xrealloc(dkim, (ndkim + 1) * sizeof *dkim);
			dkim[ndkim].domain = optarg;
			dkim[ndkim].pass = ch == 'P';
			dkim[ndkim].temperror = ch == 'T';
			ndkim++;
			break;
		case 'n':
			if (parse_uint(optarg, 99, &v) < 0) {
				fprintf(stderr, "postern: --sample is a number from 0 to 99\n");
				goto out;
			}
			sample = (int)v;
			break;
		case 'r':
			resolver = optarg;
			break;
		case 't':
			timeout = optarg;
			break;
		case 'd':
			dnssec = 1;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'h':
			cli_dmarc_usage(stdout);
			rc = 0;
			goto out;
		default:
			cli_dmarc_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		cli_dmarc_usage(stderr);
		goto out;
	}
	if (spf_given && spf != SPF_NONE && !spf_domain) {
		fprintf(stderr, "postern: --spf %s needs --spf-domain\n", spf_result_name(spf));
		goto out;
	}
	rc = 1;
	{
		struct cli_dns_args da = { .resolver = resolver, .timeout = timeout, .dnssec = dnssec };
		int st = cli_dns_setup(config_path, config_explicit, &da, &cfg, &dopt);
		if (st) {
			rc = st;
			goto out;
		}
	}
	c.base = event_base_new();
	dns = dns_new(c.base, &dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern: %s\n", err);
		goto out;
	}
	dmarc_check_async(dns, from, nfrom, spf_domain, spf, dkim, ndkim, sample, on_done, &c);
	event_base_dispatch(c.base);
	rc = 0;
out:
	dns_free(dns);
	if (c.base)
		event_base_free(c.base);
	config_free(cfg);
	free(from);
	free(dkim);
	return rc;
}
