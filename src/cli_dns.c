/*
 * cli_dns: `postern dns query`, one lookup through the same resolver layer
 * the server uses (libunbound, the configured forwarders, DNSSEC
 * validation), showing the status, whether the answer was validated, the
 * TTL and the records.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/util.h"

void cli_dns_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] dns query NAME [TYPE] [--resolver ADDR[:PORT]]\n"
	      "                        [--trust-anchor FILE] [--dns-timeout DURATION] [--json]\n"
	      "\n"
	      "Looks NAME up (TYPE: A, AAAA, MX, TXT, PTR, TLSA, CNAME; default A) through\n"
	      "postern's resolver and prints the status (answer, nxdomain, nodata,\n"
	      "tempfail, timeout), whether the answer was DNSSEC-validated, and the records.\n"
	      "Without --resolver the configuration's [dns] section is used.\n"
	      "\n"
	      "Examples:\n"
	      "  postern dns query example.org MX\n"
	      "  postern dns query _25._tcp.mx.example.org TLSA --json\n",
	      out);
}

struct query_cli {
	struct event_base *base;
	int json;
	uint16_t type;
};

static void on_result(void *arg, const struct dns_result *res)
{
	struct query_cli *q = arg;
	const struct dns_answer *a = res->answer;
	char v[1200];
	if (q->json) {
		printf("{\"status\": \"%s\", \"secure\": %s, \"ttl\": %u, \"negative_ttl\": %u, \"why\": ",
		       dns_status_name(res->status), res->secure ? "true" : "false", a->ttl, a->neg_ttl);
		json_write_string(stdout, res->why);
		printf(", \"canonical\": ");
		json_write_string(stdout, a->canon);
		printf(", \"answers\": [");
		for (size_t i = 0; i < a->nrrs; i++) {
			dns_rr_text(&a->rrs[i], v, sizeof v);
			printf("%s", i ? ", " : "");
			json_write_string(stdout, v);
		}
		printf("]}\n");
	} else {
		printf("status: %s", dns_status_name(res->status));
		if (res->why)
			printf(" (%s)", res->why);
		printf("\n");
		printf("secure: %s\n", res->secure ? "yes (DNSSEC-validated)" : "no");
		if (a->canon && *a->canon)
			printf("canonical name: %s\n", a->canon);
		if (a->nrrs)
			printf("ttl: %u\n", a->ttl);
		for (size_t i = 0; i < a->nrrs; i++) {
			dns_rr_text(&a->rrs[i], v, sizeof v);
			printf("  %s\n", v);
		}
	}
	event_base_loopbreak(q->base);
}

static int type_from_name(const char *s, uint16_t *out)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR, DNS_T_TLSA, DNS_T_CNAME, DNS_T_NS, DNS_T_SOA };
	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		if (!strcasecmp(s, dns_type_name(types[i]))) {
			*out = types[i];
			return 0;
		}
	}
	return -1;
}

int cli_dns(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resolver", required_argument, NULL, 'r' },	  { "trust-anchor", required_argument, NULL, 'a' },
		{ "dns-timeout", required_argument, NULL, 't' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },		  { NULL, 0, NULL, 0 },
	};
	const char *resolver = NULL, *anchor = NULL, *timeout = NULL, *name;
	struct query_cli q = { .type = DNS_T_A };
	struct dns_options dopt = { 0 };
	struct config *cfg = NULL;
	struct dns *dns;
	char err[512];
	int ch;

	if (argc < 1 || strcmp(argv[0], "query")) {
		cli_dns_usage(stderr);
		return 2;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			resolver = optarg;
			break;
		case 'a':
			anchor = optarg;
			break;
		case 't':
			timeout = optarg;
			break;
		case 'j':
			q.json = 1;
			break;
		case 'h':
			cli_dns_usage(stdout);
			return 0;
		default:
			cli_dns_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		cli_dns_usage(stderr);
		return 2;
	}
	name = argv[optind];
	if (argc - optind == 2 && type_from_name(argv[optind + 1], &q.type) < 0) {
		fprintf(stderr, "postern: unknown record type %s\n", argv[optind + 1]);
		return 2;
	}
	{
		struct cli_dns_args da = { .resolver = resolver, .timeout = timeout, .trust_anchor = anchor };
		int st = cli_dns_setup(config_path, config_explicit, &da, &cfg, &dopt);
		if (st)
			return st;
	}
	q.base = event_base_new();
	dns = dns_new(q.base, &dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern: %s\n", err);
		event_base_free(q.base);
		config_free(cfg);
		return 1;
	}
	dns_query(dns, name, q.type, on_result, &q);
	event_base_dispatch(q.base);
	dns_free(dns);
	event_base_free(q.base);
	config_free(cfg);
	return 0;
}
