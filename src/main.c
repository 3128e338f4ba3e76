/*
 * main: command dispatch. `postern [-c FILE] COMMAND ...`; -c may stand
 * anywhere on the line. Commands that touch the state directory switch to
 * the configured user first when run as root, so every file they create
 * belongs to the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "lib/privs.h"

#define DEFAULT_CONFIG "/etc/postern/postern.conf"

static void usage(FILE *out)
{
	fputs("usage: postern [-c FILE] COMMAND [ARGS...]\n"
	      "\n"
	      "postern is a mail server for people and small organisations who run\n"
	      "their own mail.\n"
	      "\n"
	      "Commands:\n"
	      "  serve                    run the server in the foreground\n"
	      "  config check             check the configuration; print every problem\n"
	      "  config example           print an annotated configuration with every key\n"
	      "  user add|del|list|passwd manage mailboxes\n"
	      "  alias add|del|list       manage aliases and catch-alls\n"
	      "  spf check|bench          evaluate SPF for a client, with the DNS trace\n"
	      "  dns query NAME [TYPE]    look a name up through postern's resolver\n"
	      "  dkim keygen|sign|verify  DKIM keys, signing and verification\n"
	      "  dmarc check              evaluate DMARC for a From domain\n"
	      "  arc verify|sign          ARC chains: validate, seal\n"
	      "  doctor [DOMAIN]          check DNS, reverse DNS, SPF, DKIM, DMARC, lists;\n"
	      "                           print the fixes and the records to publish\n"
	      "  reports import|dmarc|tls DMARC aggregate and TLS reports: load, summarise\n"
	      "  selftest new|list|show   an address that grades mail sent to it, out of 10\n"
	      "  policy explain           run every inbound check for a client; the score\n"
	      "  greylist list|allow|forget  see and change the graylisting state\n"
	      "  queue list|show|cat|retry|hold|release|delete|ledger\n"
	      "                           the outbound queue and the delivery ledger\n"
	      "  deliverability [--days N] per provider and day: sent, delivered, deferred,\n"
	      "                           bounced, DMARC-reported; the silent-drop flags\n"
	      "  routes [forget KEY]      what adaptive routing learned, and the pacing state\n"
	      "  sendmail [-f SENDER] [-t] [RCPT...]\n"
	      "                           queue a message from standard input\n"
	      "\n"
	      "Options:\n"
	      "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ",\n"
	      "                     or $POSTERN_CONFIG)\n"
	      "  -h, --help         this help; `postern COMMAND --help` for a command\n"
	      "  --version          print the version\n"
	      "\n"
	      "See docs/configuration.md for every configuration key.\n",
	      out);
}

static void serve_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] serve\n"
	      "\n"
	      "Runs the server in the foreground, logging to standard error.\n"
	      "Started as root, it binds its ports, then runs as [server] user.\n"
	      "Signals: SIGTERM or SIGINT finish transactions in flight and exit;\n"
	      "SIGHUP reloads the configuration (listen addresses need a restart).\n",
	      out);
}

static void config_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] config check\n"
	      "       postern config example\n"
	      "\n"
	      "check    reads the configuration and reports every problem as\n"
	      "         FILE:LINE: problem, and how to fix it. Exit status 0 when it is\n"
	      "         valid, 1 when it is not.\n"
	      "example  prints a configuration file with every key, its default and\n"
	      "         what it does.\n",
	      out);
}

/* Commands that may run without a configuration file (see cli.h). */
struct tool {
	const char *name;
	int (*run)(const char *, int, int, char **);
	void (*usage)(FILE *);
	int bare_ok; /* runs without arguments */
};

static const struct tool tools[] = {
	{ "spf", cli_spf, cli_spf_usage, 0 },
	{ "dns", cli_dns, cli_dns_usage, 0 },
	{ "dkim", cli_dkim, cli_dkim_usage, 0 },
	{ "dmarc", cli_dmarc, cli_dmarc_usage, 0 },
	{ "arc", cli_arc, cli_arc_usage, 0 },
	{ "doctor", cli_doctor, cli_doctor_usage, 1 },
	{ "policy", cli_policy, cli_policy_usage, 0 },
};

static const struct tool *find_tool(const char *name)
{
	for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
		if (!strcmp(tools[i].name, name))
			return &tools[i];
	return NULL;
}

static int wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	return 0;
}

/* Loads the configuration for a command; prints problems and returns NULL on
 * failure. */
static struct config *load(const char *path)
{
	struct config *cfg = config_load(path, stderr);
	if (!cfg)
		fprintf(stderr, "postern: %s has problems; fix them and try again\n", path);
	return cfg;
}

static int run_state_command(const char *path, int (*fn)(const struct config *, int, char **), int argc,
			     char **argv)
{
	char err[512];
	struct config *cfg = load(path);
	int rc;
	if (!cfg)
		return 1;
	if (privs_drop(cfg->user, err, sizeof err) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		config_free(cfg);
		return 1;
	}
	rc = fn(cfg, argc, argv);
	config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	const char *config = getenv("POSTERN_CONFIG");
	char **args = calloc((size_t)argc + 1, sizeof *args);
	int n = 0, rc, config_explicit = config && *config;
	const struct tool *tool;

	if (!config || !*config)
		config = DEFAULT_CONFIG;
	/* Take -c FILE out wherever it stands. */
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			config = argv[++i], config_explicit = 1;
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9, config_explicit = 1;
		else
			args[n++] = argv[i];
	}
	if (n == 0) {
		usage(stderr);
		free(args);
		return 2;
	}
	if (!strcmp(args[0], "-h") || !strcmp(args[0], "--help") || !strcmp(args[0], "help")) {
		usage(stdout);
		rc = 0;
	} else if (!strcmp(args[0], "--version")) {
		printf("postern %s\n", POSTERN_VERSION);
		rc = 0;
	} else if (!strcmp(args[0], "serve")) {
		if (wants_help(n - 1, args + 1)) {
			serve_usage(stdout);
			rc = 0;
		} else if (n > 1) {
			serve_usage(stderr);
			rc = 2;
		} else {
			rc = daemon_serve(config);
		}
	} else if (!strcmp(args[0], "config")) {
		if (wants_help(n - 1, args + 1)) {
			config_usage(stdout);
			rc = 0;
		} else if (n == 2 && !strcmp(args[1], "check")) {
			struct config *cfg = config_load(config, stderr);
			if (cfg && config_load_keys(cfg, stderr) < 0) {
				config_free(cfg);
				cfg = NULL;
			}
			if (cfg)
				printf("%s: ok\n", config);
			rc = cfg ? 0 : 1;
			config_free(cfg);
		} else if (n == 2 && !strcmp(args[1], "example")) {
			config_write_example(stdout);
			rc = 0;
		} else {
			config_usage(stderr);
			rc = 2;
		}
	} else if ((tool = find_tool(args[0]))) {
		if (n == 1 && !tool->bare_ok) {
			tool->usage(stderr);
			rc = 2;
		} else if (!strcmp(args[1], "--help") || !strcmp(args[1], "-h")) {
			tool->usage(stdout);
			rc = 0;
		} else {
			rc = tool->run(config, config_explicit, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "greylist")) {
		if (n == 1 || wants_help(n - 1, args + 1)) {
			cli_greylist_usage(n == 1 ? stderr : stdout);
			rc = n == 1 ? 2 : 0;
		} else {
			rc = run_state_command(config, cli_greylist, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "user") || !strcmp(args[0], "alias")) {
		int is_user = !strcmp(args[0], "user");
		if (n == 1 || wants_help(n - 1, args + 1)) {
			if (is_user)
				cli_user_usage(n == 1 ? stderr : stdout);
			else
				cli_alias_usage(n == 1 ? stderr : stdout);
			rc = n == 1 ? 2 : 0;
		} else {
			rc = run_state_command(config, is_user ? cli_user : cli_alias, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "reports")) {
		if (n == 1 || wants_help(n - 1, args + 1)) {
			cli_reports_usage(n == 1 ? stderr : stdout);
			rc = n == 1 ? 2 : 0;
		} else {
			rc = run_state_command(config, cli_reports, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "selftest")) {
		if (n == 1 || wants_help(n - 1, args + 1)) {
			cli_selftest_usage(n == 1 ? stderr : stdout);
			rc = n == 1 ? 2 : 0;
		} else {
			rc = run_state_command(config, cli_selftest, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "queue")) {
		if (n == 1 || wants_help(n - 1, args + 1)) {
			cli_queue_usage(n == 1 ? stderr : stdout);
			rc = n == 1 ? 2 : 0;
		} else {
			rc = run_state_command(config, cli_queue, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "deliverability")) {
		if (wants_help(n - 1, args + 1)) {
			cli_deliverability_usage(stdout);
			rc = 0;
		} else {
			rc = run_state_command(config, cli_deliverability, n, args);
		}
	} else if (!strcmp(args[0], "routes")) {
		if (wants_help(n - 1, args + 1)) {
			cli_routes_usage(stdout);
			rc = 0;
		} else {
			rc = run_state_command(config, cli_routes, n - 1, args + 1);
		}
	} else if (!strcmp(args[0], "sendmail")) {
		if (n > 1 && (!strcmp(args[1], "--help") || !strcmp(args[1], "-h"))) {
			cli_sendmail_usage(stdout);
			rc = 0;
		} else {
			cli_sendmail_set_invoker();
			/* argv[0] is the command name, as the other commands get their verb */
			rc = run_state_command(config, cli_sendmail, n, args);
		}
	} else {
		fprintf(stderr, "postern: unknown command '%s'\n\n", args[0]);
		usage(stderr);
		rc = 2;
	}
	free(args);
	return rc;
}
