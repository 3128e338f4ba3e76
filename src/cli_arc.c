/*
 * cli_arc: `postern arc verify|sign` (RFC 8617).
 *
 *   verify  validates a message's ARC chain through the same resolver layer
 *           and verifier the server uses, and prints the chain validation
 *           status, the number of sets, oldest-pass, the sealers (the d= of
 *           each ARC-Seal, i=1 first) and the reason.
 *   sign    seals a message: prints it with the three fields of the next
 *           ARC Set prepended. The chain validation status comes from --cv,
 *           or else from validating the message first (through --resolver,
 *           or the configuration's resolver).
 *
 * The configuration rule is that of `postern dkim verify`: it is read when
 * -c is given, or when it exists and no --resolver is given.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/arc.h"
#include "cli.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/util.h"

/* The most a message given to sign may have (it is read whole). */

void cli_arc_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] arc verify [--resolver ADDR[:PORT]] [--dns-timeout D] [--dnssec]\n"
	      "                        [--json] [--time T] [MESSAGE]\n"
	      "       postern [-c FILE] arc sign --domain D --selector S --key FILE --authserv-id ID\n"
	      "                        [--cv none|pass|fail | --resolver ADDR[:PORT]] [--dns-timeout D]\n"
	      "                        [--results TEXT] [--headers NAME:NAME:...] [--time T]\n"
	      "                        [--standard-format] [MESSAGE]\n"
	      "\n"
	      "ARC, the Authenticated Received Chain (RFC 8617).\n"
	      "\n"
	      "verify   validates the ARC chain of MESSAGE (standard input if none) and prints\n"
	      "         the chain validation status (none, pass, fail), the number of ARC\n"
	      "         sets, oldest-pass, the sealers (the d= of each ARC-Seal, i=1 first)\n"
	      "         and the reason. --resolver needs no configuration.\n"
	      "sign     seals MESSAGE: prints it with a new ARC-Seal, ARC-Message-Signature\n"
	      "         and ARC-Authentication-Results prepended (instance N+1), with the\n"
	      "         line endings of the input. The AAR carries --results, or else the\n"
	      "         results of the message's Authentication-Results fields of\n"
	      "         --authserv-id. The chain status is --cv, or else the message is\n"
	      "         validated first. A chain whose newest seal says cv=fail is not\n"
	      "         continued: the message is printed unchanged. --headers sets the\n"
	      "         fields the ARC-Message-Signature signs; --standard-format writes\n"
	      "         the seals in the ARC test suite's standard form; --time sets t=.\n"
	      "\n"
	      "Examples:\n"
	      "  postern arc verify --resolver 127.0.0.1:5353 --json message.eml\n"
	      "  postern arc sign --domain example.org --selector arc --key arc.key \\\n"
	      "                   --authserv-id mx.example.org --cv none message.eml\n"
	      "\n"
	      "Exit status: 0 (verify: whatever the result), 1 when the command could not\n"
	      "run, 2 for a usage error.\n",
	      out);
}


/* The resolver options (--resolver, --dns-timeout, --dnssec) and what
 * cli_dns_setup() makes of them. */
struct resolver_opts {
	struct cli_dns_args args;
	struct config *cfg;
	struct dns_options dopt;
};

static void on_verified(void *arg, struct arc_verifier *v)
{
	(void)v;
	event_base_loopbreak(arg);
}

/* Looks the keys of an ended verifier up through the asynchronous driver,
 * as the server does (even when none is needed); 0, or 1 (message printed). */
static int lookup_keys(struct arc_verifier *v, const struct dns_options *dopt)
{
	struct event_base *base;
	struct dns *dns;
	char err[512];
	base = event_base_new();
	dns = dns_new(base, dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern: %s\n", err);
		event_base_free(base);
		return 1;
	}
	arc_verify_async(dns, v, on_verified, base);
	event_base_dispatch(base);
	dns_free(dns);
	event_base_free(base);
	return arc_verifier_done(v) ? 0 : 1;
}

static int parse_time(const char *s, int64_t *out)
{
	uint64_t t;
	if (parse_uint(s, (uint64_t)INT64_MAX, &t) < 0) {
		fprintf(stderr, "postern: --time %s is not a Unix time\n", s);
		return -1;
	}
	*out = (int64_t)t;
	return 0;
}

/* Prints s with control bytes replaced: it comes from the message. */
static void put_safe(const char *s)
{
	if (!*s)
		s = "-";
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static const char *sig_state(int ok)
{
	return ok > 0 ? "pass" : ok == 0 ? "fail" : "unchecked";
}

static void print_result(const struct arc_result *r, int json)
{
	if (json) {
		printf("{\"cv\": \"%s\", \"instances\": %u, \"oldest_pass\": %u, \"reason\": ", arc_cv_name(r->cv),
		       r->instances, r->oldest_pass);
		json_write_string(stdout, r->reason);
		printf(", \"temperror\": %s, \"sealers\": [", r->temperror ? "true" : "false");
		for (size_t i = 0; i < r->nsets; i++) {
			printf("%s", i ? ", " : "");
			json_write_string(stdout, r->sets[i].seal_domain);
		}
		printf("], \"sets\": [");
		for (size_t i = 0; i < r->nsets; i++) {
			const struct arc_set *s = &r->sets[i];
			printf("%s{\"instance\": %u, \"cv\": \"%s\", \"seal_domain\": ", i ? ", " : "", s->instance,
			       arc_cv_name(s->cv));
			json_write_string(stdout, s->seal_domain);
			printf(", \"seal_selector\": ");
			json_write_string(stdout, s->seal_selector);
			printf(", \"sig_domain\": ");
			json_write_string(stdout, s->sig_domain);
			printf(", \"sig_selector\": ");
			json_write_string(stdout, s->sig_selector);
			printf(", \"aar\": ");
			json_write_string(stdout, s->aar);
			printf(", \"ams\": \"%s\", \"as\": \"%s\"}", sig_state(s->ams_ok), sig_state(s->as_ok));
		}
		printf("]}\n");
		return;
	}
	printf("arc=%s instances=%u", arc_cv_name(r->cv), r->instances);
	if (r->cv == ARC_CV_PASS)
		printf(" oldest-pass=%u", r->oldest_pass);
	if (r->nsets) {
		printf(" sealers=");
		for (size_t i = 0; i < r->nsets; i++) {
			if (i)
				putchar(',');
			put_safe(r->sets[i].seal_domain);
		}
	}
	printf(" (");
	put_safe(r->reason);
	printf(")\n");
}

static int cli_verify(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resolver", required_argument, NULL, 'r' }, { "dns-timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },	      { "time", required_argument, NULL, 'T' },
		{ "dnssec", no_argument, NULL, 'D' },	      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct resolver_opts ro = { 0 };
	const char *path = NULL;
	struct arc_verifier *v;
	int64_t now = (int64_t)time(NULL);
	int json = 0, ch, rc;
	char chunk[65536];
	FILE *f;
	size_t n;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			ro.args.resolver = optarg;
			break;
		case 't':
			ro.args.timeout = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'D':
			ro.args.dnssec = 1;
			break;
		case 'T':
			if (parse_time(optarg, &now) < 0)
				return 2;
			break;
		case 'h':
			cli_arc_usage(stdout);
			return 0;
		default:
			cli_arc_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		cli_arc_usage(stderr);
		return 2;
	}
	if (optind < argc)
		path = argv[optind];
	if ((rc = cli_dns_setup(config_path, config_explicit, &ro.args, &ro.cfg, &ro.dopt)) != 0)
		return rc;
	/* The message streams through the verifier, as in the server. */
	f = path && strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "postern: cannot open %s: %s\n", path, strerror(errno));
		config_free(ro.cfg);
		return 1;
	}
	v = arc_verifier_new(now);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		arc_verifier_feed(v, chunk, n);
	if (ferror(f)) {
		fprintf(stderr, "postern: cannot read %s\n", path ? path : "standard input");
		rc = 1;
	}
	if (f != stdin)
		fclose(f);
	if (rc == 0) {
		arc_verifier_end(v);
		rc = lookup_keys(v, &ro.dopt);
	}
	if (rc == 0)
		print_result(arc_verifier_result(v), json);
	arc_verifier_free(v);
	config_free(ro.cfg);
	return rc;
}

static int cli_sign(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },	 { "selector", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },	 { "authserv-id", required_argument, NULL, 'a' },
		{ "cv", required_argument, NULL, 'c' },		 { "resolver", required_argument, NULL, 'r' },
		{ "dns-timeout", required_argument, NULL, 't' }, { "results", required_argument, NULL, 'R' },
		{ "headers", required_argument, NULL, 'H' },	 { "time", required_argument, NULL, 'T' },
		{ "standard-format", no_argument, NULL, 'S' },	 { "dnssec", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },		 { NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *keypath = NULL, *authserv_id = NULL, *cvarg = NULL;
	const char *results = NULL, *headers = NULL;
	struct resolver_opts ro = { 0 };
	struct arc_sign_key *key = NULL;
	struct arc_sealer *s = NULL;
	enum arc_cv cv = ARC_CV_NONE;
	int64_t now = (int64_t)time(NULL);
	int standard = 0, ch, rc = 1, crlf;
	char err[700], *msg = NULL, *fields = NULL;
	size_t len;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			domain = optarg;
			break;
		case 's':
			selector = optarg;
			break;
		case 'k':
			keypath = optarg;
			break;
		case 'a':
			authserv_id = optarg;
			break;
		case 'c':
			cvarg = optarg;
			break;
		case 'r':
			ro.args.resolver = optarg;
			break;
		case 't':
			ro.args.timeout = optarg;
			break;
		case 'R':
			results = optarg;
			break;
		case 'H':
			headers = optarg;
			break;
		case 'T':
			if (parse_time(optarg, &now) < 0)
				return 2;
			break;
		case 'S':
			standard = 1;
			break;
		case 'D':
			ro.args.dnssec = 1;
			break;
		case 'h':
			cli_arc_usage(stdout);
			return 0;
		default:
			cli_arc_usage(stderr);
			return 2;
		}
	}
	if (!domain || !selector || !keypath || !authserv_id || optind + 1 < argc) {
		fprintf(stderr, "postern: arc sign needs --domain, --selector, --key and --authserv-id\n\n");
		cli_arc_usage(stderr);
		return 2;
	}
	if (cvarg && ro.args.resolver) {
		fprintf(stderr, "postern: give --cv or --resolver, not both\n");
		return 2;
	}
	if (cvarg && arc_cv_parse(cvarg, &cv) < 0) {
		fprintf(stderr, "postern: --cv is none, pass or fail\n");
		return 2;
	}
	key = arc_sign_key_load(domain, selector, keypath, err, sizeof err);
	if (!key) {
		fprintf(stderr, "postern: %s\n", err);
		return 1;
	}
	if (!strcmp(dkim_sign_key_algorithm(arc_sign_key_dkim(key)), "ed25519-sha256"))
		fprintf(stderr, "postern: warning: many ARC validators (dkimpy, OpenARC) accept only rsa-sha256 "
				"seals; an ed25519-sha256 seal fails there\n");
	s = arc_sealer_new(key, authserv_id, now);
	arc_sealer_set_standard_format(s, standard);
	if (headers && arc_sealer_set_headers(s, headers, err, sizeof err) < 0) {
		fprintf(stderr, "postern: --headers: %s\n", err);
		rc = 2;
		goto done;
	}
	msg = cli_read_message(optind < argc ? argv[optind] : NULL, &len);
	if (!msg)
		goto done;
	{
		const char *nl = memchr(msg, '\n', len);
		crlf = nl && nl > msg && nl[-1] == '\r';
	}
	if (!cvarg) {
		/* 5.1: the sealer validates the chain it continues. */
		struct arc_verifier *v;
		int r = cli_dns_setup(config_path, config_explicit, &ro.args, &ro.cfg, &ro.dopt);
		if (r) {
			rc = r;
			goto done;
		}
		v = arc_verifier_new(now);
		arc_verifier_feed(v, msg, len);
		arc_verifier_end(v);
		if (lookup_keys(v, &ro.dopt)) {
			arc_verifier_free(v);
			goto done;
		}
		cv = arc_verifier_result(v)->cv;
		fprintf(stderr, "postern: the chain validates as arc=%s (%s)\n", arc_cv_name(cv),
			arc_verifier_result(v)->reason);
		arc_verifier_free(v);
	}
	arc_sealer_feed(s, msg, len);
	fields = arc_sealer_end(s, cv, results, crlf, err, sizeof err);
	if (!fields) {
		fprintf(stderr, "postern: cannot seal: %s\n", err);
		goto done;
	}
	if (!*fields)
		fprintf(stderr, "postern: the newest ARC-Seal says cv=fail: the chain is not continued\n");
	fputs(fields, stdout);
	fwrite(msg, 1, len, stdout);
	rc = fflush(stdout) == 0 ? 0 : 1;
done:
	free(fields);
	free(msg);
	arc_sealer_free(s);
	arc_sign_key_free(key);
	config_free(ro.cfg);
	return rc;
}

int cli_arc(const char *config_path, int config_explicit, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "verify"))
		return cli_verify(config_path, config_explicit, argc, argv);
	if (argc >= 1 && !strcmp(argv[0], "sign"))
		return cli_sign(config_path, config_explicit, argc, argv);
	cli_arc_usage(stderr);
	return 2;
}
