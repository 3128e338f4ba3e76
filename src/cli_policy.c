/*
 * cli_policy: `postern policy explain`, which runs every inbound check the
 * SMTP server runs (DNSBL/DNSWL, FCrDNS, HELO, SPF, the graylist state and,
 * with --message, DKIM and DMARC) through the same code (src/policy/) and
 * the configured resolver, and prints each result, its weight, the score
 * and the decision; and `postern greylist list|allow|forget`, which show
 * and change the graylist state in the store.
 *
 * explain never writes the graylist (policy_set_readonly): it says what
 * would happen to this mail now.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/msg.h"
#include "auth/spf.h"
#include "cli.h"
#include "dns/dns.h"
#include "lib/json.h"
#include "lib/privs.h"
#include "lib/util.h"
#include "policy/grey.h"
#include "policy/policy.h"
#include "store/store.h"

void cli_policy_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] policy explain --ip IP --helo NAME --from ADDRESS --to ADDRESS\n"
	      "                        [--message FILE] [--resolver ADDR[:PORT]]\n"
	      "                        [--dns-timeout DURATION] [--json]\n"
	      "\n"
	      "Runs every inbound check postern's SMTP server runs for a client, as if it\n"
	      "connected now, and prints each result, its weight, the score and the\n"
	      "decision (deliver, junk, greylist or reject). It uses the configuration's\n"
	      "[policy], [greylist] and [dnsbl] sections and its resolver, and reads (never\n"
	      "changes) the graylist state. The checks run even with [policy] enabled = no.\n"
	      "\n"
	      "  --ip IP           the client's address\n"
	      "  --helo NAME       the name it gives in EHLO\n"
	      "  --from ADDRESS    the MAIL FROM address (\"\" for the null sender)\n"
	      "  --to ADDRESS      the recipient\n"
	      "  --message FILE    the message (\"-\": standard input): also verify DKIM and\n"
	      "                    evaluate DMARC, as at the end of DATA\n"
	      "  --resolver ADDR   DNS resolver(s), overriding [dns] resolver\n"
	      "  --dns-timeout D   time allowed for one DNS query\n"
	      "  --json            machine-readable output\n"
	      "\n"
	      "Example:\n"
	      "  postern policy explain --ip 192.0.2.7 --helo mail.example.org \\\n"
	      "      --from alice@example.org --to bob@example.net\n"
	      "\n"
	      "Exit status: 0 whatever the decision, 1 when the checks could not run,\n"
	      "2 for a usage error.\n",
	      out);
}

struct explain {
	struct event_base *base;
	struct policy_sess *ps;
	int spf_done, dkim_done, dmarc_done;
	struct dkim_verifier *dkimv;
	int dmarc_pass;
	enum dmarc_result dmarc_result;
	char dmarc_from[256];
	enum spf_result spf;
	char spf_domain[256];
	int waiting_policy;
};

static void maybe_break(struct explain *x)
{
	if (x->spf_done && policy_sess_busy(x->ps) == 0 && (!x->dkimv || x->dkim_done))
		event_base_loopbreak(x->base);
}

static void on_ready(void *arg)
{
	maybe_break(arg);
}

static void on_spf(void *arg, struct spf_eval *e)
{
	struct explain *x = arg;
	x->spf_done = 1;
	x->spf = e->result;
	str_copy(x->spf_domain, e->domain ? e->domain : "", sizeof x->spf_domain);
	policy_sess_spf(x->ps, e->domain, e->result);
	maybe_break(x);
}

static void on_dkim(void *arg, struct dkim_verifier *v)
{
	struct explain *x = arg;
	(void)v;
	x->dkim_done = 1;
	maybe_break(x);
}

static void on_dmarc(void *arg, struct dmarc_eval *e)
{
	struct explain *x = arg;
	x->dmarc_done = 1;
	x->dmarc_result = e->result;
	x->dmarc_pass = e->result == DMARC_PASS;
	if (e->decisive)
		str_copy(x->dmarc_from, e->decisive->domain, sizeof x->dmarc_from);
	event_base_loopbreak(x->base);
}

static void run_dmarc(struct explain *x, struct dns *dns)
{
	const struct msg_headers *h = dkim_verifier_headers(x->dkimv);
	size_t ndk = dkim_verifier_count(x->dkimv), nfrom = 0;
	struct dmarc_dkim *dk = xcalloc(ndk + 1, sizeof *dk);
	char **from = NULL;

	for (size_t i = 0; i < ndk; i++) {
		const struct dkim_outcome *o = dkim_verifier_outcome(x->dkimv, i);
		dk[i].domain = o->domain;
		dk[i].pass = o->result == DKIM_PASS;
		dk[i].temperror = o->result == DKIM_TEMPERROR;
	}
	for (size_t i = 0; h && i < h->nfields; i++) {
		const struct msg_field *f = &h->fields[i];
		if (f->name_len != 4 || strncasecmp(h->buf + f->off, "From", 4) || f->colon >= f->len)
			continue;
		from = xrealloc(from, (nfrom + 1) * sizeof *from);
		from[nfrom++] = xstrndup(h->buf + f->off + f->colon + 1, f->len - f->colon - 1);
	}
	dmarc_check_async(dns, (const char *const *)from, nfrom, x->spf_domain, x->spf, dk, ndk, -1, on_dmarc, x);
	event_base_dispatch(x->base);
	for (size_t i = 0; i < nfrom; i++)
		free(from[i]);
	free(from);
	free(dk);
}

static const char *action_name(enum policy_action a)
{
	return a == POLICY_REJECT ? "reject" : a == POLICY_DEFER ? "greylist" : "accept";
}

static int cli_policy_explain(const char *config_path, int config_explicit, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },	      { "helo", required_argument, NULL, 'H' },
		{ "from", required_argument, NULL, 'f' },     { "to", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },  { "resolver", required_argument, NULL, 'r' },
		{ "dns-timeout", required_argument, NULL, 'T' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },	      { NULL, 0, NULL, 0 },
	};
	const char *ip = NULL, *helo = NULL, *from = NULL, *to = NULL, *msgpath = NULL;
	struct cli_dns_args da = { 0 };
	struct dns_options dopt = { 0 };
	struct config *cfg = NULL;
	struct explain x = { 0 };
	struct dns *dns = NULL;
	struct store *st = NULL;
	struct policy *p = NULL;
	struct policy_report_item items[80];
	enum policy_action rcpt_action, data_action = POLICY_ACCEPT;
	const char *folder = NULL;
	int64_t retry_rcpt = 0, retry_data = 0;
	char err[512], *msg = NULL;
	size_t msglen = 0, n;
	unsigned char tmp[16];
	int ch, json = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i': ip = optarg; break;
		case 'H': helo = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'm': msgpath = optarg; break;
		case 'r': da.resolver = optarg; break;
		case 'T': da.timeout = optarg; break;
		case 'j': json = 1; break;
		case 'h': cli_policy_usage(stdout); return 0;
		default: cli_policy_usage(stderr); return 2;
		}
	}
	if (!ip || !helo || !from || !to || optind != argc) {
		fprintf(stderr, "postern: policy explain needs --ip, --helo, --from and --to\n");
		return 2;
	}
	if (inet_pton(strchr(ip, ':') ? AF_INET6 : AF_INET, ip, tmp) != 1) {
		fprintf(stderr, "postern: --ip %s is not an IPv4 or IPv6 address\n", ip);
		return 2;
	}
	if (!*helo) {
		fprintf(stderr, "postern: --helo is empty; give the name the client sends in EHLO\n");
		return 2;
	}
	da.trust_anchor = NULL;
	rc = cli_dns_setup(config_path, 1, &da, &cfg, &dopt);
	(void)config_explicit;
	if (rc)
		return rc;
	if (!cfg) {
		fprintf(stderr, "postern: policy explain needs the configuration (-c FILE)\n");
		return 1;
	}
	if (msgpath && !(msg = cli_read_message(msgpath, &msglen))) {
		config_free(cfg);
		return 1;
	}
	/* Run every check, whatever [policy] enabled says. */
	free(cfg->policy_enabled);
	cfg->policy_enabled = xstrdup("yes");
	{
		char *db = xasprintf("%s/state.db", cfg->data_dir);
		if (access(db, R_OK) == 0 || geteuid() == 0) {
			if (geteuid() == 0 && privs_drop(cfg->user, err, sizeof err) < 0) {
				fprintf(stderr, "postern: %s\n", err);
				free(db);
				goto fail;
			}
			if (access(db, R_OK) == 0 && !(st = store_open(cfg->data_dir, err, sizeof err)))
				fprintf(stderr, "postern: warning: %s; the graylist state is not shown\n", err);
		}
		free(db);
	}
	x.base = event_base_new();
	dns = dns_new(x.base, &dopt, err, sizeof err);
	if (!dns) {
		fprintf(stderr, "postern: %s\n", err);
		goto fail;
	}
	p = policy_new(st, dns);
	policy_set_readonly(p);
	x.ps = policy_sess_new(p, cfg, "explain", ip, "", on_ready, &x);
	policy_sess_helo(x.ps, helo);
	policy_sess_mail(x.ps, from);
	if (!spf_check_async(dns, ip, from, helo, cfg->hostname, 0, on_spf, &x))
		x.spf_done = 1;
	if (msg) {
		x.dkimv = dkim_verifier_new((unsigned)cfg->dkim_max_signatures, (int64_t)time(NULL));
		dkim_verifier_feed(x.dkimv, msg, msglen);
		dkim_verifier_end(x.dkimv);
		dkim_verify_async(dns, x.dkimv, on_dkim, &x);
	}
	if (!x.spf_done || policy_sess_busy(x.ps) || (x.dkimv && !x.dkim_done))
		event_base_dispatch(x.base);
	rcpt_action = policy_sess_rcpt(x.ps, 0, to, &retry_rcpt);
	if (rcpt_action == POLICY_ACCEPT) {
		if (x.dkimv)
			run_dmarc(&x, dns);
		data_action = policy_sess_data(x.ps, 0, x.dmarc_pass, &folder, &retry_data);
	}
	n = policy_sess_report(x.ps, items, ARRAY_LEN(items));
	if (json) {
		printf("{\"ip\": ");
		json_write_string(stdout, ip);
		printf(", \"helo\": ");
		json_write_string(stdout, helo);
		printf(", \"from\": ");
		json_write_string(stdout, from);
		printf(", \"to\": ");
		json_write_string(stdout, to);
		printf(", \"checks\": [");
		for (size_t i = 0; i < n; i++) {
			printf("%s{\"name\": ", i ? ", " : "");
			json_write_string(stdout, items[i].name);
			printf(", \"result\": ");
			json_write_string(stdout, items[i].result);
			printf(", \"scored\": %s, \"weight\": %.2f}", items[i].scored ? "true" : "false", items[i].weight);
		}
		printf("], \"score\": %.2f, \"parts\": ", policy_sess_score(x.ps));
		json_write_string(stdout, policy_sess_parts(x.ps));
		printf(", \"rcpt\": \"%s\", \"rcpt_retry_s\": %lld", action_name(rcpt_action), (long long)retry_rcpt);
		if (x.dmarc_done)
			printf(", \"dmarc\": \"%s\"", dmarc_result_name(x.dmarc_result));
		printf(", \"decision\": \"%s\", \"folder\": ", policy_decision_name(x.ps));
		json_write_string(stdout, folder);
		printf(", \"retry_s\": %lld}\n", (long long)(rcpt_action == POLICY_DEFER ? retry_rcpt : retry_data));
	} else {
		printf("client %s helo %s from <%s> to <%s>\n", ip, helo, from, to);
		for (size_t i = 0; i < n; i++) {
			char w[32] = "";
			if (items[i].scored)
				snprintf(w, sizeof w, "%+.2f", items[i].weight);
			printf("  %-34s %-8s %s\n", items[i].name, w, items[i].result);
		}
		if (x.dmarc_done)
			printf("  %-34s %-8s %s%s%s\n", "dmarc", "", dmarc_result_name(x.dmarc_result),
			       *x.dmarc_from ? " header.from=" : "", x.dmarc_from);
		printf("score: %.2f (greylist_threshold %.2f, junk_threshold %.2f, reject_threshold %.2f)\n",
		       policy_sess_score(x.ps), cfg->greylist_threshold, cfg->junk_threshold, cfg->reject_threshold);
		printf("at RCPT: %s", action_name(rcpt_action));
		if (rcpt_action == POLICY_DEFER)
			printf(" (retry in %lld s)", (long long)retry_rcpt);
		printf("\ndecision: %s", policy_decision_name(x.ps));
		if (folder)
			printf(" (folder %s)", folder);
		if (data_action == POLICY_DEFER)
			printf(" (after DATA; retry in %lld s)", (long long)retry_data);
		printf("\n");
	}
	policy_sess_free(x.ps);
	policy_free(p);
	dkim_verifier_free(x.dkimv);
	dns_free(dns);
	event_base_free(x.base);
	store_close(st);
	config_free(cfg);
	free(msg);
	return 0;
fail:
	if (x.base)
		event_base_free(x.base);
	store_close(st);
	config_free(cfg);
	free(msg);
	return 1;
}

int cli_policy(const char *config_path, int config_explicit, int argc, char **argv)
{
	if (!strcmp(argv[0], "explain"))
		return cli_policy_explain(config_path, config_explicit, argc, argv);
	fprintf(stderr, "postern: unknown policy command '%s'\n", argv[0]);
	cli_policy_usage(stderr);
	return 2;
}

/* ---- postern greylist ----------------------------------------------------- */

void cli_greylist_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] greylist list [--json]\n"
	      "       postern [-c FILE] greylist allow CLIENT|DOMAIN\n"
	      "       postern [-c FILE] greylist forget CLIENT|DOMAIN|ADDRESS|--all\n"
	      "\n"
	      "Shows and changes the graylisting state (RFC 6647) in the state database.\n"
	      "\n"
	      "list    every triplet (client, sender, recipient) with when it was first\n"
	      "        and last seen and whether it passed, then every allowed client and\n"
	      "        domain with its count of accepted messages\n"
	      "allow   never delay this client (an address, taken as its network block\n"
	      "        of [greylist] ipv4_prefix/ipv6_prefix, or a block like\n"
	      "        192.0.2.0/24) or this sender domain (when SPF passes for it)\n"
	      "forget  remove the triplets of this client, domain, sender or recipient,\n"
	      "        and its allow entry; --all removes everything\n"
	      "\n"
	      "Exit status: 0 ok, 1 failure, 2 usage error.\n",
	      out);
}

static char *iso_time(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

struct list_ctx {
	int json, first;
};

static int print_grey(void *arg, const struct store_grey *g)
{
	struct list_ctx *l = arg;
	char a[32], b[32], c[32];
	if (l->json) {
		printf("%s{\"client\": ", l->first ? "" : ", ");
		json_write_string(stdout, g->client);
		printf(", \"sender\": ");
		json_write_string(stdout, g->sender);
		printf(", \"rcpt\": ");
		json_write_string(stdout, g->rcpt);
		printf(", \"first_seen\": \"%s\", \"last_seen\": \"%s\", \"passed\": %s%s%s, \"attempts\": %lld}",
		       iso_time(g->first_seen, a, sizeof a), iso_time(g->last_seen, b, sizeof b), g->passed ? "\"" : "",
		       g->passed ? iso_time(g->passed, c, sizeof c) : "null", g->passed ? "\"" : "", (long long)g->attempts);
	} else {
		printf("  %s <%s> <%s> first=%s last=%s %s attempts=%lld\n", g->client, g->sender, g->rcpt,
		       iso_time(g->first_seen, a, sizeof a), iso_time(g->last_seen, b, sizeof b),
		       g->passed ? "passed" : "waiting", (long long)g->attempts);
	}
	l->first = 0;
	return 0;
}

static int print_allow(void *arg, const struct store_allow *al)
{
	struct list_ctx *l = arg;
	char a[32], b[32];
	if (l->json) {
		printf("%s{\"key\": ", l->first ? "" : ", ");
		json_write_string(stdout, al->key);
		printf(", \"count\": %lld, \"first_seen\": \"%s\", \"last_seen\": \"%s\", \"manual\": %s}",
		       (long long)al->count, iso_time(al->first_seen, a, sizeof a), iso_time(al->last_seen, b, sizeof b),
		       al->manual ? "true" : "false");
	} else {
		printf("  %s %s count=%lld last=%s\n", al->key, al->manual ? "manual" : "auto", (long long)al->count,
		       iso_time(al->last_seen, b, sizeof b));
	}
	l->first = 0;
	return 0;
}

/* An address becomes its block; a block or a domain is kept (lower case). */
static int grey_key(const struct config *cfg, const char *arg, char *out, size_t n)
{
	unsigned char tmp[16];
	if (inet_pton(AF_INET, arg, tmp) == 1 || inet_pton(AF_INET6, arg, tmp) == 1)
		return grey_client_block(arg, (unsigned)cfg->grey_ipv4_prefix, (unsigned)cfg->grey_ipv6_prefix, out, n);
	if (strchr(arg, '/')) {
		char ip[64];
		const char *slash = strchr(arg, '/');
		uint64_t bits;
		size_t il = (size_t)(slash - arg);
		int v6;
		if (il >= sizeof ip)
			return -1;
		memcpy(ip, arg, il);
		ip[il] = '\0';
		v6 = strchr(ip, ':') != NULL;
		if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, tmp) != 1 || parse_uint(slash + 1, v6 ? 128 : 32, &bits) < 0)
			return -1;
		return grey_client_block(ip, (unsigned)bits, (unsigned)bits, out, n);
	}
	if (!*arg || strlen(arg) >= n || strchr(arg, ' '))
		return -1;
	str_lower(strcpy(out, arg));
	return 0;
}

int cli_greylist(const struct config *cfg, int argc, char **argv)
{
	char err[512], key[STORE_GREY_KEY_MAX + 1];
	struct store *st;
	int rc = 0;

	if (!strcmp(argv[0], "list")) {
		struct list_ctx l = { 0, 1 };
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json"))) {
			cli_greylist_usage(stderr);
			return 2;
		}
		l.json = argc == 2;
		if (!(st = store_open(cfg->data_dir, err, sizeof err))) {
			fprintf(stderr, "postern: %s\n", err);
			return 1;
		}
		if (l.json)
			printf("{\"triplets\": [");
		else
			printf("triplets:\n");
		rc = store_grey_list(st, print_grey, &l);
		l.first = 1;
		if (l.json)
			printf("], \"allowed\": [");
		else
			printf("allowed:\n");
		if (rc == STORE_OK)
			rc = store_allow_list(st, print_allow, &l);
		if (l.json)
			printf("]}\n");
		store_close(st);
		return rc == STORE_OK ? 0 : 1;
	}
	if (!strcmp(argv[0], "allow") || !strcmp(argv[0], "forget")) {
		int forget = argv[0][0] == 'f', all = argc == 2 && !strcmp(argv[1], "--all");
		int64_t n = 0;
		if (argc != 2 || (all && !forget)) {
			cli_greylist_usage(stderr);
			return 2;
		}
		if (!all && grey_key(cfg, argv[1], key, sizeof key) < 0) {
			fprintf(stderr, "postern: '%s' is not an address, a network block (192.0.2.0/24) or a domain\n",
				argv[1]);
			return 2;
		}
		if (!(st = store_open(cfg->data_dir, err, sizeof err))) {
			fprintf(stderr, "postern: %s\n", err);
			return 1;
		}
		if (forget) {
			rc = store_grey_forget(st, all ? NULL : key, &n);
			if (rc == STORE_OK)
				printf("forgot %s: %lld entries removed\n", all ? "everything" : key, (long long)n);
		} else {
			int64_t now = (int64_t)wall_ms();
			struct store_allow a = { .key = key, .count = 0, .first_seen = now, .last_seen = now, .manual = 1 };
			rc = store_allow_put(st, &a);
			if (rc == STORE_OK)
				printf("allowed %s: never delayed\n", key);
		}
		store_close(st);
		return rc == STORE_OK ? 0 : 1;
	}
	fprintf(stderr, "postern: unknown greylist command '%s'\n", argv[0]);
	cli_greylist_usage(stderr);
	return 2;
}
