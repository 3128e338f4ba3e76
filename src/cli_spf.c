/*
 * cli_spf: `postern spf check`, which runs the same asynchronous SPF
 * evaluation the SMTP server runs and shows the result, the explanation and
 * every DNS lookup that led to it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/spf.h"
#include "cli.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/util.h"

void cli_spf_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] spf check --ip IP --sender ADDRESS --helo NAME\n"
	      "                        [--identity mailfrom|helo] [--resolver ADDR[:PORT]]\n"
	      "                        [--dns-timeout DURATION] [--dnssec] [--json]\n"
	      "\n"
	      "Evaluates SPF (RFC 7208) for a client address, as postern's SMTP server\n"
	      "does when MAIL FROM arrives, and prints the result, the explanation, the\n"
	      "Received-SPF header and the trace of DNS lookups that led to it.\n"
	      "\n"
	      "  --ip IP            the client's IPv4 or IPv6 address\n"
	      "  --sender ADDRESS   the MAIL FROM address; \"\" for the null sender, which\n"
	      "                     checks postmaster@HELO (RFC 7208 section 2.4)\n"
	      "  --helo NAME        the name the client gave in HELO/EHLO\n"
	      "  --identity helo    check the HELO identity instead (section 2.3)\n"
	      "  --resolver ADDR    DNS resolver(s) to use, overriding [dns] resolver;\n"
	      "                     no configuration file is needed then\n"
	      "  --dns-timeout D    time allowed for one DNS query (default [dns] timeout)\n"
	      "  --dnssec           validate answers (with --resolver; the configuration's\n"
	      "                     trust_anchor is used otherwise)\n"
	      "  --json             machine-readable output\n"
	      "\n"
	      "Examples:\n"
	      "  postern spf check --ip 192.0.2.1 --sender alice@example.org --helo mail.example.org\n"
	      "  postern spf check --ip 2001:db8::1 --sender '' --helo mail.example.org --json\n"
	      "\n"
	      "Exit status: 0 whatever the SPF result, 1 when the check could not run,\n"
	      "2 for a usage error.\n"
	      "\n"
	      "postern spf bench --resolver ADDR --input FILE [--rounds N] [--concurrency C]\n"
	      "measures evaluations per second with a warm DNS cache (see bench/).\n",
	      out);
}

struct spf_cli {
	struct event_base *base;
	struct spf_eval *done;
	int json;
};

static void on_done(void *arg, struct spf_eval *e)
{
	struct spf_cli *c = arg;
	char *hdr = spf_received_header(e);
	if (c->json) {
		printf("{\"result\": \"%s\", \"identity\": \"%s\", \"domain\": ", spf_result_name(e->result),
		       e->req.identity_helo ? "helo" : "mailfrom");
		json_write_string(stdout, e->domain);
		printf(", \"sender\": ");
		json_write_string(stdout, e->req.sender);
		printf(", \"ip\": ");
		{
			char ip[64];
			inet_ntop_spf(&e->req.ip, ip, sizeof ip);
			json_write_string(stdout, ip);
		}
		printf(", \"explanation\": ");
		json_write_string(stdout, e->explanation);
		printf(", \"problem\": ");
		json_write_string(stdout, e->problem);
		printf(", \"mechanism\": ");
		json_write_string(stdout, e->mechanism);
		printf(", \"lookups\": %u, \"void_lookups\": %u, \"received_spf\": ", e->dns_terms, e->void_lookups);
		json_write_string(stdout, hdr);
		printf(", \"trace\": [");
		for (size_t i = 0; i < e->nlookups; i++) {
			const struct spf_lookup *l = e->lookups[i];
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
	} else {
		printf("result: %s\n", spf_result_name(e->result));
		printf("identity: %s (%s)\n", e->req.identity_helo ? "helo" : "mailfrom", e->req.sender);
		printf("domain: %s\n", e->domain);
		if (e->mechanism)
			printf("mechanism: %s\n", e->mechanism);
		if (e->explanation)
			printf("explanation: %s\n", e->explanation);
		if (e->problem)
			printf("problem: %s\n", e->problem);
		printf("DNS-querying terms: %u, void lookups: %u\n", e->dns_terms, e->void_lookups);
		printf("Received-SPF: %s\n", hdr);
		printf("trace:\n");
		for (size_t i = 0; i < e->nlookups; i++) {
			const struct spf_lookup *l = e->lookups[i];
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
	free(hdr);
	event_base_loopbreak(c->base);
}

/* ---- `postern spf bench`: evaluations per second with a warm cache ---- */

struct bench_case {
	char *ip, *sender, *helo;
};

struct bench {
	struct event_base *base;
	struct dns *dns;
	struct bench_case *cases;
	size_t ncases;
	size_t next;      /* next case to start in this round */
	size_t running;   /* evaluations in flight */
	size_t concurrency;
	size_t done;
	unsigned long results[SPF_PERMERROR + 1];
};

static void bench_start(struct bench *b);

static void bench_done(void *arg, struct spf_eval *e)
{
	struct bench *b = arg;
	b->results[e->result]++;
	b->done++;
	b->running--;
	bench_start(b);
	if (b->running == 0 && b->next == b->ncases)
		event_base_loopbreak(b->base);
}

static void bench_start(struct bench *b)
{
	while (b->running < b->concurrency && b->next < b->ncases) {
		const struct bench_case *c = &b->cases[b->next++];
		b->running++;
		if (!spf_check_async(b->dns, c->ip, c->sender, c->helo, "bench.example", 0, bench_done, b)) {
			b->running--;
			b->results[SPF_PERMERROR]++;
		}
	}
}

/* Runs every case once; returns the seconds it took. */
static double bench_round(struct bench *b)
{
	struct timespec a, z;
	clock_gettime(CLOCK_MONOTONIC, &a);
	b->next = 0;
	bench_start(b);
	if (b->running)
		event_base_dispatch(b->base);
	clock_gettime(CLOCK_MONOTONIC, &z);
	return (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9;
}

static int cli_spf_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resolver", required_argument, NULL, 'r' }, { "input", required_argument, NULL, 'f' },
		{ "rounds", required_argument, NULL, 'n' },   { "concurrency", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },	      { NULL, 0, NULL, 0 },
	};
	const char *resolver = NULL, *input = NULL;
	uint64_t rounds = 10, conc = 1;
	struct bench b = { 0 };
	struct dns_options dopt = { 0 };
	char err[512], line[2048];
	double secs = 0;
	FILE *f;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			resolver = optarg;
			break;
		case 'f':
			input = optarg;
			break;
		case 'n':
			if (parse_uint(optarg, 1000000, &rounds) < 0 || rounds == 0)
				return 2;
			break;
		case 'C':
			if (parse_uint(optarg, 10000, &conc) < 0 || conc == 0)
				return 2;
			break;
		case 'h':
			fputs("usage: postern spf bench --resolver ADDR --input FILE [--rounds N] [--concurrency C]\n"
			      "\n"
			      "FILE has one check per line: IP SENDER HELO. The first round fills the DNS\n"
			      "cache; the next N rounds are timed. Prints JSON with evaluations per second.\n",
			      stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (!resolver || !input) {
		fprintf(stderr, "postern: spf bench needs --resolver and --input\n");
		return 2;
	}
	f = fopen(input, "r");
	if (!f) {
		fprintf(stderr, "postern: cannot open %s\n", input);
		return 1;
	}
	while (fgets(line, sizeof line, f)) {
		char ip[128], sender[600], helo[300];
		if (sscanf(line, "%127s %599s %299s", ip, sender, helo) != 3)
			continue;
		b.cases = xrealloc(b.cases, (b.ncases + 1) * sizeof *b.cases);
		b.cases[b.ncases].ip = xstrdup(ip);
		b.cases[b.ncases].sender = xstrdup(strcmp(sender, "<>") ? sender : "");
		b.cases[b.ncases].helo = xstrdup(helo);
		b.ncases++;
	}
	fclose(f);
	b.concurrency = (size_t)conc;
	b.base = event_base_new();
	dopt.resolver = resolver;
	dopt.timeout_ms = 5000;
	dopt.max_inflight = 256;
	dopt.trust_anchor = "";
	b.dns = dns_new(b.base, &dopt, err, sizeof err);
	if (!b.dns) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	bench_round(&b); /* warm the cache */
	memset(b.results, 0, sizeof b.results);
	b.done = 0;
	for (uint64_t i = 0; i < rounds; i++)
		secs += bench_round(&b);
	printf("{\"evaluations\": %zu, \"seconds\": %.6f, \"per_second\": %.1f, \"results\": {", b.done, secs,
	       secs > 0 ? (double)b.done / secs : 0.0);
	for (int r = 0; r <= SPF_PERMERROR; r++)
		printf("%s\"%s\": %lu", r ? ", " : "", spf_result_name((enum spf_result)r), b.results[r]);
	printf("}}\n");
	dns_free(b.dns);
	event_base_free(b.base);
	for (size_t i = 0; i < b.ncases; i++) {
		free(b.cases[i].ip);
		free(b.cases[i].sender);
		free(b.cases[i].helo);
	}
	free(b.cases);
	return 0;
}

int cli_spf(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },	     { "sender", required_argument, NULL, 's' },
		{ "helo", required_argument, NULL, 'H' },    { "identity", required_argument, NULL, 'I' },
		{ "resolver", required_argument, NULL, 'r' }, { "dns-timeout", required_argument, NULL, 't' },
		{ "dnssec", no_argument, NULL, 'd' },	     { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	const char *ip = NULL, *sender = NULL, *helo = NULL, *resolver = NULL, *timeout = NULL;
	int identity_helo = 0, dnssec = 0, ch;
	struct spf_cli c = { 0 };
	struct dns_options dopt = { 0 };
	struct config *cfg = NULL;
	struct dns *dns;
	struct spf_job *job;
	char err[512];

	if (argc >= 1 && !strcmp(argv[0], "bench"))
		return cli_spf_bench(argc, argv);
	if (argc < 1 || strcmp(argv[0], "check")) {
		cli_spf_usage(stderr);
		return 2;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			ip = optarg;
			break;
		case 's':
			sender = optarg;
			break;
		case 'H':
			helo = optarg;
			break;
		case 'I':
			if (!strcmp(optarg, "helo"))
				identity_helo = 1;
			else if (strcmp(optarg, "mailfrom")) {
				fprintf(stderr, "postern: --identity is mailfrom or helo\n");
				return 2;
			}
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
			cli_spf_usage(stdout);
			return 0;
		default:
			cli_spf_usage(stderr);
			return 2;
		}
	}
	if (!ip || !helo || (!sender && !identity_helo) || optind != argc) {
		fprintf(stderr, "postern: spf check needs --ip, --sender and --helo\n\n");
		cli_spf_usage(stderr);
		return 2;
	}
	{
		struct cli_dns_args da = { .resolver = resolver, .timeout = timeout, .dnssec = dnssec };
		int st = cli_dns_setup(config_path, config_explicit, &da, &cfg, &dopt);
		if (st)
			return st;
	}
	c.base = event_base_new();
	dns = dns_new(c.base, &dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern: %s\n", err);
		event_base_free(c.base);
		config_free(cfg);
		return 1;
	}
	job = spf_check_async(dns, ip, sender ? sender : "", helo, cfg ? cfg->hostname : NULL, identity_helo, on_done,
			      &c);
	if (!job) {
		fprintf(stderr, "postern: --ip %s is not an IPv4 or IPv6 address\n", ip);
		dns_free(dns);
		event_base_free(c.base);
		config_free(cfg);
		return 2;
	}
	event_base_dispatch(c.base);
	dns_free(dns);
	event_base_free(c.base);
	config_free(cfg);
	return 0;
}
