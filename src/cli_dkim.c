/*
 * cli_dkim: `postern dkim keygen|sign|verify|bench`.
 *
 *   keygen  makes a private key (PEM, mode 0600, owned by the daemon's user
 *           when it goes to the default place under data_dir) and prints the
 *           TXT record to publish, as a zone-file line.
 *   sign    signs a message with one or more keys (dual signing) and prints
 *           the signed message.
 *   verify  verifies every signature of a message through the same resolver
 *           layer and verifier the server uses, and prints the outcomes.
 *   bench   signatures or verifications per second in one process, keys
 *           from files and no DNS (bench/dkim/run drives it).
 *
 * The configuration rule is that of `postern spf check`: verify reads the
 * configuration when -c is given, or when it exists and no --resolver is
 * given; keygen reads it only for the default key path.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "auth/dkim.h"
#include "cli.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/privs.h"
#include "lib/util.h"

/* The most a message given to sign or bench may have (it is read whole). */

void cli_dkim_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] dkim keygen --domain D [--selector S] [--algorithm rsa|ed25519]\n"
	      "                        [--bits N] [--out FILE]\n"
	      "       postern dkim sign --domain D --selector S --key FILE\n"
	      "                        [--domain D2 --selector S2 --key FILE2 ...] [MESSAGE]\n"
	      "       postern [-c FILE] dkim verify [--resolver ADDR[:PORT]] [--dns-timeout D]\n"
	      "                        [--dnssec] [--json] [--max-signatures N] [MESSAGE]\n"
	      "       postern dkim bench --mode sign|verify --domain D --selector S --key FILE\n"
	      "                        --message FILE [--seconds S]\n"
	      "\n"
	      "DKIM (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463).\n"
	      "\n"
	      "keygen   generates a private key (default rsa, 2048 bits) and prints the DNS\n"
	      "         TXT record to publish, as a zone-file line. The key goes to --out, or\n"
	      "         by default to DATA_DIR/dkim/D/S.key (from the configuration), mode\n"
	      "         0600, owned by the server's user. An existing file is never replaced.\n"
	      "         Without --selector and --algorithm it makes the pair postern signs\n"
	      "         with by default: RSA-2048 (selector rsa-YYYYMM) and Ed25519\n"
	      "         (ed-YYYYMM), both records to publish (dual signing, RFC 8463).\n"
	      "sign     signs MESSAGE (standard input if none) with each key: relaxed/relaxed,\n"
	      "         the usual header fields, From oversigned. Give --domain, --selector and\n"
	      "         --key once per key (one --domain serves every key). Prints the signed\n"
	      "         message, with the line endings of the input.\n"
	      "verify   verifies every DKIM-Signature of MESSAGE (standard input if none) and\n"
	      "         prints one line per signature: the result (pass, fail, neutral,\n"
	      "         policy, temperror, permerror; none when unsigned), d=, s=, a=, i=,\n"
	      "         the start of b= and the reason. --resolver needs no configuration.\n"
	      "\n"
	      "Examples:\n"
	      "  postern dkim keygen --domain example.org --selector s2024 --algorithm ed25519\n"
	      "  postern dkim sign --domain example.org --selector rsa --key rsa.key \\\n"
	      "                    --selector ed --key ed.key message.eml\n"
	      "  postern dkim verify --resolver 127.0.0.1:5353 --json message.eml\n"
	      "\n"
	      "Exit status: 0 (verify: whatever the results), 1 when the command could not\n"
	      "run, 2 for a usage error.\n",
	      out);
}


/* ---- keygen ---------------------------------------------------------------- */

/* Prints the record as `S._domainkey.D. IN TXT ( "..." "..." )`, in
 * character-strings of at most 255 bytes. */
static void print_record(const char *domain, const char *selector, const char *record)
{
	size_t len = strlen(record);
	printf("%s._domainkey.%s. IN TXT (", selector, domain);
	for (size_t off = 0; off < len; off += 255)
		printf(" \"%.*s\"", (int)(len - off < 255 ? len - off : 255), record + off);
	printf(" )\n");
}

static int keygen_one(const char *config_path, int config_explicit, const char *domain, const char *selector,
		      const char *alg, uint64_t bits, const char *out);

static int cli_keygen(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' }, { "selector", required_argument, NULL, 's' },
		{ "algorithm", required_argument, NULL, 'a' }, { "bits", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *alg = "rsa", *out = NULL;
	uint64_t bits = 2048;
	int ch, alg_given = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			domain = optarg;
			break;
		case 's':
			selector = optarg;
			break;
		case 'a':
			alg = optarg;
			alg_given = 1;
			break;
		case 'b':
			if (parse_uint(optarg, 8192, &bits) < 0) {
				fprintf(stderr, "postern: --bits %s is not a number up to 8192\n", optarg);
				return 2;
			}
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			cli_dkim_usage(stdout);
			return 0;
		default:
			cli_dkim_usage(stderr);
			return 2;
		}
	}
	if (!domain || optind != argc || (out && !selector)) {
		fprintf(stderr, "postern: dkim keygen needs --domain (and --selector with --out)\n\n");
		cli_dkim_usage(stderr);
		return 2;
	}
	if (!selector) {
		/* A new domain: the dual pair, or one key of the algorithm asked,
		 * under dated selectors (rotation later gets new names). */
		char month[16], sel[32];
		time_t now = time(NULL);
		struct tm tm;
		int r = 0;
		gmtime_r(&now, &tm);
		strftime(month, sizeof month, "%Y%m", &tm);
		if (alg_given) {
			snprintf(sel, sizeof sel, "%s-%s", strcmp(alg, "ed25519") ? "rsa" : "ed", month);
			return keygen_one(config_path, config_explicit, domain, sel, alg, bits, NULL);
		}
		snprintf(sel, sizeof sel, "rsa-%s", month);
		r = keygen_one(config_path, config_explicit, domain, sel, "rsa", bits, NULL);
		if (r)
			return r;
		snprintf(sel, sizeof sel, "ed-%s", month);
		return keygen_one(config_path, config_explicit, domain, sel, "ed25519", bits, NULL);
	}
	return keygen_one(config_path, config_explicit, domain, selector, alg, bits, out);
}

/* One key: checks the names, writes the key (0600, the server's user),
 * prints the record. */
static int keygen_one(const char *config_path, int config_explicit, const char *domain, const char *selector,
		      const char *alg, uint64_t bits, const char *out)
{
	char err[512], *pem = NULL, *record = NULL, *path = NULL, *dom = NULL;
	struct config *cfg = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	int chown_to_user = 0, fd, rc = 1;

	if (!dkim_valid_name(domain, strlen(domain)) || !strchr(domain, '.')) {
		fprintf(stderr, "postern: --domain %s is not a domain name\n", domain);
		return 2;
	}
	if (!dkim_valid_name(selector, strlen(selector))) {
		fprintf(stderr, "postern: --selector %s is not a valid selector (letters, digits, '-', '_', dots)\n",
			selector);
		return 2;
	}
	if (strcmp(alg, "rsa") && strcmp(alg, "ed25519")) {
		fprintf(stderr, "postern: --algorithm is rsa or ed25519\n");
		return 2;
	}
	dom = str_lower(xstrdup(domain));
	if (dom[strlen(dom) - 1] == '.')
		dom[strlen(dom) - 1] = '\0';
	if (!out) {
		char *dir;
		if (!config_explicit && access(config_path, F_OK) < 0) {
			fprintf(stderr, "postern: no --out and no configuration at %s for the default path\n",
				config_path);
			free(dom);
			return 2;
		}
		cfg = config_load(config_path, stderr);
		if (!cfg) {
			free(dom);
			return 1;
		}
		if (geteuid() == 0) {
			if (privs_lookup(cfg->user, &uid, &gid, err, sizeof err) < 0) {
				fprintf(stderr, "postern: %s\n", err);
				goto done;
			}
			chown_to_user = 1;
		}
		dir = xasprintf("%s/dkim", cfg->data_dir);
		if (mkdir_p(dir, 0750) < 0 || (chown_to_user && chown(dir, uid, gid) < 0)) {
			fprintf(stderr, "postern: cannot create %s: %s\n", dir, strerror(errno));
			free(dir);
			goto done;
		}
		free(dir);
		dir = xasprintf("%s/dkim/%s", cfg->data_dir, dom);
		if (mkdir_p(dir, 0750) < 0 || (chown_to_user && chown(dir, uid, gid) < 0)) {
			fprintf(stderr, "postern: cannot create %s: %s\n", dir, strerror(errno));
			free(dir);
			goto done;
		}
		path = xasprintf("%s/%s.key", dir, selector);
		free(dir);
	} else {
		path = xstrdup(out);
	}
	if (dkim_keygen(alg, (unsigned)bits, &pem, &record, err, sizeof err) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		goto done;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "postern: cannot create %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (an existing key is never replaced; remove it first)" : "");
		goto done;
	}
	if (fchmod(fd, 0600) < 0 || (chown_to_user && fchown(fd, uid, gid) < 0) ||
	    write_all(fd, pem, strlen(pem)) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "postern: cannot write %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		goto done;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "postern: cannot write %s: %s\n", path, strerror(errno));
		unlink(path);
		goto done;
	}
	fprintf(stderr, "postern: wrote the private key to %s; publish this record:\n", path);
	print_record(dom, selector, record);
	rc = 0;
done:
	if (pem) {
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
	}
	free(record);
	free(path);
	free(dom);
	config_free(cfg);
	return rc;
}

/* ---- sign ------------------------------------------------------------------ */

/* The keys named by --domain/--selector/--key, in order. */
struct keyopts {
	const char *domains[64], *selectors[64], *keys[64];
	size_t nd, ns, nk;
};

static int keyopt(struct keyopts *k, int ch, const char *arg)
{
	const char **list = ch == 'd' ? k->domains : ch == 's' ? k->selectors : k->keys;
	size_t *n = ch == 'd' ? &k->nd : ch == 's' ? &k->ns : &k->nk;
	if (*n == 64) {
		fprintf(stderr, "postern: at most 64 keys\n");
		return -1;
	}
	list[(*n)++] = arg;
	return 0;
}

/* Loads the keys; returns how many, or -1 (message printed). */
static long load_keys(const struct keyopts *k, struct dkim_sign_key **out)
{
	char err[700];
	if (k->nk == 0 || k->ns != k->nk || !(k->nd == 1 || k->nd == k->nk)) {
		fprintf(stderr, "postern: give --selector and --key once per key, and --domain once or once per key\n");
		return -2;
	}
	for (size_t i = 0; i < k->nk; i++) {
		out[i] = dkim_sign_key_load(k->domains[k->nd == 1 ? 0 : i], k->selectors[i], k->keys[i], err,
					    sizeof err);
		if (!out[i]) {
			fprintf(stderr, "postern: %s\n", err);
			for (size_t j = 0; j < i; j++)
				dkim_sign_key_free(out[j]);
			return -1;
		}
	}
	return (long)k->nk;
}

static int cli_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' }, { "selector", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },    { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct keyopts ko = { 0 };
	struct dkim_sign_key *keys[64];
	struct dkim_signer *s;
	char err[512], *msg, *sigs;
	size_t len;
	long nkeys;
	int ch, crlf;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
		case 's':
		case 'k':
			if (keyopt(&ko, ch, optarg) < 0)
				return 2;
			break;
		case 'h':
			cli_dkim_usage(stdout);
			return 0;
		default:
			cli_dkim_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		cli_dkim_usage(stderr);
		return 2;
	}
	nkeys = load_keys(&ko, keys);
	if (nkeys < 0)
		return nkeys == -2 ? 2 : 1;
	msg = cli_read_message(optind < argc ? argv[optind] : NULL, &len);
	if (!msg) {
		for (long i = 0; i < nkeys; i++)
			dkim_sign_key_free(keys[i]);
		return 1;
	}
	{
		const char *nl = memchr(msg, '\n', len);
		crlf = nl && nl > msg && nl[-1] == '\r';
	}
	s = dkim_signer_new(keys, (size_t)nkeys, (int64_t)time(NULL));
	dkim_signer_feed(s, msg, len);
	sigs = dkim_signer_end(s, crlf, err, sizeof err);
	dkim_signer_free(s);
	for (long i = 0; i < nkeys; i++)
		dkim_sign_key_free(keys[i]);
	if (!sigs) {
		fprintf(stderr, "postern: cannot sign: %s\n", err);
		free(msg);
		return 1;
	}
	fputs(sigs, stdout);
	fwrite(msg, 1, len, stdout);
	free(sigs);
	free(msg);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- verify ---------------------------------------------------------------- */

struct verify_cli {
	struct event_base *base;
	int json;
};

/* Prints s with control bytes replaced: d=, s= and i= come from the message. */
static void put_safe(const char *s)
{
	if (!*s)
		s = "-";
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void print_outcomes(const struct dkim_verifier *v, int json)
{
	size_t n = dkim_verifier_count(v);
	if (json)
		printf("{\"signatures\": [");
	else if (n == 0)
		printf("dkim=none (no signature)\n");
	for (size_t i = 0; i < n; i++) {
		const struct dkim_outcome *o = dkim_verifier_outcome(v, i);
		if (!o)
			continue;
		if (json) {
			printf("%s{\"result\": \"%s\", \"domain\": ", i ? ", " : "", dkim_result_name(o->result));
			json_write_string(stdout, o->domain);
			printf(", \"selector\": ");
			json_write_string(stdout, o->selector);
			printf(", \"algorithm\": ");
			json_write_string(stdout, o->algorithm);
			printf(", \"identity\": ");
			json_write_string(stdout, o->identity);
			printf(", \"b\": ");
			json_write_string(stdout, o->header_b);
			printf(", \"reason\": ");
			json_write_string(stdout, o->reason);
			printf(", \"testing\": %s, \"key_bits\": %u, \"body_length\": ", o->testing ? "true" : "false",
			       o->key_bits);
			if (o->body_length >= 0)
				printf("%lld", (long long)o->body_length);
			else
				printf("null");
			printf(", \"unsigned_body\": %llu}", (unsigned long long)o->unsigned_body);
		} else {
			printf("dkim=%s header.d=", dkim_result_name(o->result));
			put_safe(o->domain);
			printf(" header.s=");
			put_safe(o->selector);
			printf(" header.a=");
			put_safe(o->algorithm);
			printf(" header.i=");
			put_safe(o->identity);
			printf(" header.b=");
			put_safe(o->header_b);
			printf(" (");
			put_safe(o->reason);
			printf(")\n");
		}
	}
	if (json)
		printf("]}\n");
}

static void on_verified(void *arg, struct dkim_verifier *v)
{
	struct verify_cli *c = arg;
	(void)v;
	event_base_loopbreak(c->base);
}

static int cli_verify(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resolver", required_argument, NULL, 'r' }, { "dns-timeout", required_argument, NULL, 't' },
		{ "dnssec", no_argument, NULL, 'd' },	      { "json", no_argument, NULL, 'j' },
		{ "max-signatures", required_argument, NULL, 'm' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *resolver = NULL, *timeout = NULL, *path = NULL;
	struct verify_cli c = { 0 };
	struct dns_options dopt = { 0 };
	struct config *cfg = NULL;
	struct dkim_verifier *v;
	struct dns *dns;
	uint64_t maxsig = DKIM_MAX_SIGNATURES_DEFAULT;
	int dnssec = 0, ch;
	char err[512], chunk[65536];
	FILE *f;
	size_t n;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
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
		case 'm':
			if (parse_uint(optarg, 1000, &maxsig) < 0 || maxsig == 0) {
				fprintf(stderr, "postern: --max-signatures is 1 to 1000\n");
				return 2;
			}
			break;
		case 'h':
			cli_dkim_usage(stdout);
			return 0;
		default:
			cli_dkim_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		cli_dkim_usage(stderr);
		return 2;
	}
	if (optind < argc)
		path = argv[optind];
	{
		struct cli_dns_args da = { .resolver = resolver, .timeout = timeout, .dnssec = dnssec };
		int st = cli_dns_setup(config_path, config_explicit, &da, &cfg, &dopt);
		if (st)
			return st;
	}

	/* The message streams through the verifier, as in the server. */
	f = path && strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "postern: cannot open %s: %s\n", path, strerror(errno));
		config_free(cfg);
		return 1;
	}
	v = dkim_verifier_new((unsigned)maxsig, (int64_t)time(NULL));
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		dkim_verifier_feed(v, chunk, n);
	if (ferror(f)) {
		fprintf(stderr, "postern: cannot read %s\n", path ? path : "standard input");
		if (f != stdin)
			fclose(f);
		dkim_verifier_free(v);
		config_free(cfg);
		return 1;
	}
	if (f != stdin)
		fclose(f);
	dkim_verifier_end(v);

	c.base = event_base_new();
	dns = dns_new(c.base, &dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern: %s\n", err);
		event_base_free(c.base);
		dkim_verifier_free(v);
		config_free(cfg);
		return 1;
	}
	dkim_verify_async(dns, v, on_verified, &c);
	event_base_dispatch(c.base);
	print_outcomes(v, c.json);
	dns_free(dns);
	event_base_free(c.base);
	dkim_verifier_free(v);
	config_free(cfg);
	return 0;
}

/* ---- bench ----------------------------------------------------------------- */

static double seconds_since(const struct timespec *a)
{
	struct timespec z;
	clock_gettime(CLOCK_MONOTONIC, &z);
	return (double)(z.tv_sec - a->tv_sec) + (double)(z.tv_nsec - a->tv_nsec) / 1e9;
}

static int cli_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' }, { "selector", required_argument, NULL, 's' },
		{ "key", required_argument, NULL, 'k' },    { "message", required_argument, NULL, 'f' },
		{ "mode", required_argument, NULL, 'M' },   { "seconds", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },	    { NULL, 0, NULL, 0 },
	};
	struct keyopts ko = { 0 };
	struct dkim_sign_key *keys[64];
	const char *msgpath = NULL, *mode = NULL;
	double limit = 3.0, secs;
	char err[512], *msg, *sigs, *record, *signed_msg;
	size_t len, slen;
	long nkeys;
	unsigned long iters = 0, passes = 0;
	struct timespec t0;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
		case 's':
		case 'k':
			if (keyopt(&ko, ch, optarg) < 0)
				return 2;
			break;
		case 'f':
			msgpath = optarg;
			break;
		case 'M':
			mode = optarg;
			break;
		case 'S':
			limit = atof(optarg);
			break;
		case 'h':
			cli_dkim_usage(stdout);
			return 0;
		default:
			cli_dkim_usage(stderr);
			return 2;
		}
	}
	if (!msgpath || !mode || (strcmp(mode, "sign") && strcmp(mode, "verify")) || limit <= 0) {
		fprintf(stderr, "postern: dkim bench needs --mode sign|verify, --message and a key\n");
		return 2;
	}
	nkeys = load_keys(&ko, keys);
	if (nkeys < 0)
		return nkeys == -2 ? 2 : 1;
	msg = cli_read_message(msgpath, &len);
	if (!msg) {
		for (long i = 0; i < nkeys; i++)
			dkim_sign_key_free(keys[i]);
		return 1;
	}
	if (!strcmp(mode, "sign")) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			for (int k = 0; k < 16; k++) {
				struct dkim_signer *s = dkim_signer_new(keys, (size_t)nkeys, (int64_t)time(NULL));
				dkim_signer_feed(s, msg, len);
				sigs = dkim_signer_end(s, 0, err, sizeof err);
				dkim_signer_free(s);
				if (!sigs) {
					fprintf(stderr, "postern: cannot sign: %s\n", err);
					return 1;
				}
				free(sigs);
				iters++;
				passes++;
			}
		} while ((secs = seconds_since(&t0)) < limit);
	} else {
		/* Sign once, then verify the signed message with the key
		 * record answered from memory (what a warm DNS cache gives). */
		struct dkim_signer *s = dkim_signer_new(keys, (size_t)nkeys, (int64_t)time(NULL));
		struct dns_rr rr = { 0 };
		struct dns_answer a = { 0 };
		dkim_signer_feed(s, msg, len);
		sigs = dkim_signer_end(s, 0, err, sizeof err);
		dkim_signer_free(s);
		if (!sigs) {
			fprintf(stderr, "postern: cannot sign: %s\n", err);
			return 1;
		}
		slen = strlen(sigs) + len;
		signed_msg = xmalloc(slen + 1);
		memcpy(signed_msg, sigs, strlen(sigs));
		memcpy(signed_msg + strlen(sigs), msg, len);
		free(sigs);
		record = dkim_sign_key_record(keys[0]);
		rr.type = DNS_T_TXT;
		rr.data = (unsigned char *)record;
		rr.len = strlen(record);
		a.rrs = &rr;
		a.nrrs = 1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			for (int k = 0; k < 16; k++) {
				struct dkim_verifier *v = dkim_verifier_new(0, (int64_t)time(NULL));
				dkim_verifier_feed(v, signed_msg, slen);
				for (size_t i = 0; i < dkim_verifier_count(v); i++)
					if (dkim_verifier_key_name(v, i))
						dkim_verifier_key_answer(v, i, DNS_ANSWER, &a);
				dkim_verifier_end(v);
				if (dkim_verifier_count(v) >= 1 && dkim_verifier_outcome(v, 0)->result == DKIM_PASS)
					passes++;
				dkim_verifier_free(v);
				iters++;
			}
		} while ((secs = seconds_since(&t0)) < limit);
		free(record);
		free(signed_msg);
	}
	printf("{\"mode\": \"%s\", \"algorithm\": \"%s\", \"message_bytes\": %zu, \"iterations\": %lu, "
	       "\"passes\": %lu, \"seconds\": %.6f, \"per_second\": %.1f}\n",
	       mode, dkim_sign_key_algorithm(keys[0]), len, iters, passes, secs, (double)iters / secs);
	for (long i = 0; i < nkeys; i++)
		dkim_sign_key_free(keys[i]);
	free(msg);
	return passes == iters ? 0 : 1;
}

int cli_dkim(const char *config_path, int config_explicit, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "keygen"))
		return cli_keygen(config_path, config_explicit, argc, argv);
	if (argc >= 1 && !strcmp(argv[0], "sign"))
		return cli_sign(argc, argv);
	if (argc >= 1 && !strcmp(argv[0], "verify"))
		return cli_verify(config_path, config_explicit, argc, argv);
	if (argc >= 1 && !strcmp(argv[0], "bench"))
		return cli_bench(argc, argv);
	cli_dkim_usage(stderr);
	return 2;
}
