/*
 * cli: the subcommands that manage state (`postern user ...`,
 * `postern alias ...`). main.c has already loaded the configuration and, when
 * started as root, switched to the configured user, so files created here
 * belong to the daemon's user.
 *
 * argv[0] is the verb ("add", "del", ...). Each returns the process exit
 * status: 0 ok, 1 failure (message already printed to stderr), 2 usage error.
 */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

#include "config.h"
#include "dns/dns.h"

/* The resolver setup every DNS-using tool shares (cli_common.c): the [dns]
 * section of the configuration, read when -c was given or when the default
 * file exists and no --resolver was given, overridden by the options.
 * Returns 0, or an exit status after printing why. *cfg may be NULL after
 * success (no configuration); the caller frees it. */
struct cli_dns_args {
	const char *resolver;     /* --resolver, or NULL */
	const char *timeout;      /* --dns-timeout, or NULL */
	const char *trust_anchor; /* --trust-anchor, or NULL */
	int dnssec;               /* --dnssec: validate with the root key */
};
int cli_dns_setup(const char *config_path, int config_explicit, const struct cli_dns_args *a, struct config **cfg,
		  struct dns_options *dopt);
/* Reads a whole message file ("-" or NULL: standard input), at most 512 MiB.
 * Returns it NUL-terminated (the caller frees) with its length in *len, or
 * NULL after printing why. */
char *cli_read_message(const char *path, size_t *len);

int cli_user(const struct config *cfg, int argc, char **argv);
int cli_alias(const struct config *cfg, int argc, char **argv);
void cli_user_usage(FILE *out);
/* `postern spf check`: config_path is read when config_explicit, or when it
 * exists and no --resolver is given. */
int cli_spf(const char *config_path, int config_explicit, int argc, char **argv);
void cli_spf_usage(FILE *out);
/* `postern dkim keygen|sign|verify` (cli_dkim.c) and `postern dmarc check`
 * (cli_dmarc.c), with the same configuration rule as cli_spf. */
int cli_dkim(const char *config_path, int config_explicit, int argc, char **argv);
void cli_dkim_usage(FILE *out);
int cli_dmarc(const char *config_path, int config_explicit, int argc, char **argv);
void cli_dmarc_usage(FILE *out);
/* `postern arc verify|sign` (cli_arc.c). */
int cli_arc(const char *config_path, int config_explicit, int argc, char **argv);
void cli_arc_usage(FILE *out);
/* `postern dns query`, with the same configuration rule as cli_spf. */
int cli_dns(const char *config_path, int config_explicit, int argc, char **argv);
void cli_dns_usage(FILE *out);
void cli_alias_usage(FILE *out);
/* `postern doctor [DOMAIN]` (cli_doctor.c), with the same configuration rule
 * as cli_spf; runs with no arguments at all. */
int cli_doctor(const char *config_path, int config_explicit, int argc, char **argv);
void cli_doctor_usage(FILE *out);
/* `postern selftest new|list|show` (cli_selftest.c), a state command. */
int cli_selftest(const struct config *cfg, int argc, char **argv);
void cli_selftest_usage(FILE *out);
/* `postern reports import|dmarc|tls` (cli_reports.c); a state command like
 * cli_user. */
int cli_reports(const struct config *cfg, int argc, char **argv);
void cli_reports_usage(FILE *out);
/* `postern policy explain` (cli_policy.c), with the configuration rule of
 * cli_spf but the configuration required; `postern greylist ...`, a state
 * command like cli_user. */
int cli_policy(const char *config_path, int config_explicit, int argc, char **argv);
void cli_policy_usage(FILE *out);
int cli_greylist(const struct config *cfg, int argc, char **argv);
void cli_greylist_usage(FILE *out);
/* `postern queue ...` and `postern sendmail` (cli_queue.c), run as the
 * postern user. cli_sendmail_set_invoker() remembers the real user's name
 * (the default sender) before main.c drops root. */
int cli_queue(const struct config *cfg, int argc, char **argv);
void cli_queue_usage(FILE *out);
/* `postern routes [--json]`, `postern routes forget KEY` (cli_routes.c),
 * a state command like cli_queue. */
int cli_routes(const struct config *cfg, int argc, char **argv);
void cli_routes_usage(FILE *out);
int cli_sendmail(const struct config *cfg, int argc, char **argv);
void cli_sendmail_usage(FILE *out);
void cli_sendmail_set_invoker(void);
/* `postern deliverability` (cli_deliverability.c), a state command like
 * cli_user; argv[0] is "deliverability". */
int cli_deliverability(const struct config *cfg, int argc, char **argv);
void cli_deliverability_usage(FILE *out);

#endif
