/*
 * config: postern's configuration schema, loading and checking.
 *
 * Every key lives in one table (config.c) with its type, default and one line
 * of documentation; the loader, `postern config check` and
 * `postern config example` all read that table, so a key cannot exist without
 * a default and a description. Loading reports every problem it finds, each
 * as "file:line: problem, and how to fix it", and fails if there was any.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deliver/pacing.h"
#include "deliver/reputation.h"
#include "policy/conf.h"
struct keyring;

struct listen_addr {
	char *host; /* numeric address, without brackets */
	char *port;
};

enum bare_lf_mode { BARE_LF_REJECT, BARE_LF_NORMALISE };

struct config {
	char *path;

	/* [server] */
	char *hostname;
	char *user;
	char *data_dir;
	char *mail_dir;
	char *domains_raw;
	char **domains; /* lower-cased */
	size_t ndomains;
	char *log_level;
	char *authserv_id;
	char *recipient_delimiter;
	uint64_t workers;
	uint64_t shutdown_timeout_ms;

	/* [smtp] */
	char *smtp_listen_raw;
	struct listen_addr *smtp_listen;
	size_t nsmtp_listen;
	uint64_t max_command_line;
	uint64_t max_data_line;
	uint64_t max_message_size;
	uint64_t max_header_size;
	uint64_t max_recipients;
	uint64_t max_connections;
	uint64_t max_connections_per_client;
	uint64_t max_errors;
	uint64_t command_timeout_ms;
	uint64_t data_timeout_ms;
	char *bare_line_endings;
	enum bare_lf_mode bare_lf;

	/* [submission] (RFC 6409, RFC 8314): mail from our own users */
	char *submission_listen_raw, *submissions_listen_raw;
	struct listen_addr *submission_listen, *submissions_listen;
	size_t nsubmission_listen, nsubmissions_listen;
	char *submission_sender; /* own|domain|any */
	uint64_t auth_max_failures;
	uint64_t auth_window_ms;
	uint64_t auth_lockout_ms;
	uint64_t auth_failure_delay_ms;

	/* [tls] */
	char *tls_certificate;
	char *tls_key;

	/* [dns] */
	char *dns_resolver;
	uint64_t dns_timeout_ms;
	uint64_t dns_max_queries;
	char *dns_trust_anchor;

	/* [dkim], [dmarc] */
	char *dkim_verify;
	uint64_t dkim_max_signatures;
	char *dkim_sign;    /* yes|no: sign what our users submit */
	char *dkim_key_dir; /* DIR/<domain>/<selector>.key; default DATA_DIR/dkim */
	int dkim_key_dir_line;
	struct keyring *dkim_keys; /* loaded by config_load_keys(); NULL before */
	char *dmarc_enabled, *dmarc_apply_policy, *dmarc_quarantine_folder;
	char *dmarc_trusted_sealers; /* raw list */
	char **trusted_sealers;      /* lower-cased */
	size_t ntrusted_sealers;
	char *arc_verify;
	char *arc_seal; /* yes|no: seal what an alias forwards outside */

	/* [spf] */
	char *spf_enabled;
	char *spf_on_fail, *spf_on_softfail, *spf_on_permerror, *spf_on_temperror;
	char *spf_check_helo;

	/* [reports] */
	char *reports_dmarc_address, *reports_tls_address; /* raw lists */
	char **report_addresses; /* both lists, lower-cased */
	size_t nreport_addresses;
	char *reports_our_addresses; /* raw list */
	char **our_addresses;        /* "192.0.2.1", "2001:db8::/32" */
	size_t nour_addresses;
	char *reports_check_spf;
	uint64_t reports_max_size;
	uint64_t reports_max_records;

	/* [selftest] */
	char *selftest_enabled, *selftest_prefix, *selftest_reply;
	uint64_t selftest_keep;

	/* [policy] */
	char *policy_enabled;
	char *policy_weights_raw;
	struct policy_weights weights; /* defaults with the overrides applied */
	char *policy_greylist_threshold_raw, *policy_junk_threshold_raw, *policy_reject_threshold_raw;
	double greylist_threshold, junk_threshold, reject_threshold;
	char *policy_junk_folder;
	uint64_t greet_delay_ms;
	uint64_t max_unknown_recipients;

	/* [greylist] */
	char *grey_mode; /* off, suspicious, all */
	char *grey_decide_at_data;
	uint64_t grey_min_delay_ms, grey_retry_window_ms, grey_expire_ms;
	uint64_t grey_ipv4_prefix, grey_ipv6_prefix;
	uint64_t grey_auto_allow_after, grey_auto_allow_expire_ms;

	/* [dnsbl] */
	char *dnsbl_blocklists_raw, *dnsbl_allowlists_raw;
	struct policy_zones blocklists, allowlists;

	/* [ratelimit]: 0 means no limit */
	uint64_t rl_connections_per_minute, rl_messages_per_hour, rl_recipients_per_hour, rl_unknown_per_hour;
	uint64_t rl_auth_messages_per_hour, rl_auth_recipients_per_hour;

	/* [queue] */
	uint64_t queue_retry_first_ms;
	uint64_t queue_retry_max_ms;
	uint64_t queue_max_age_ms;
	uint64_t queue_delay_notice_ms;
	uint64_t queue_max_parallel;
	uint64_t queue_destination_concurrency;

	/* [delivery] */
	char *delivery_helo_name; /* defaults to hostname */
	uint64_t delivery_port;
	char *delivery_source_ipv4, *delivery_source_ipv6;
	char *delivery_ipv6;   /* yes|no */
	char *delivery_tls;    /* opportunistic|none */
	uint64_t delivery_connect_timeout_ms;
	uint64_t delivery_command_timeout_ms;
	uint64_t delivery_data_timeout_ms;
	char *delivery_mta_sts; /* yes|no */
	char *delivery_dane;    /* yes|no */
	char *delivery_ca_file; /* extra CAs for MTA-STS; "" none */

	/* [relay] */
	char *relay_host;
	uint64_t relay_port;
	char *relay_tls; /* starttls|implicit */
	char *relay_credentials_file;
	char *relay_ca_file;
	char *relay_domains_raw, *relay_mx_patterns_raw;
	char **relay_domains; /* lower-cased; "*" for every domain */
	size_t nrelay_domains;
	char **relay_mx_patterns; /* lower-cased */
	size_t nrelay_mx_patterns;

	/* [routing]: adaptive routing (remote.c, reputation.c) */
	char *routing_adaptive; /* yes|no */
	uint64_t routing_period_ms;
	char *routing_patterns_raw;
	struct reputation_list reputation;

	/* [pacing] (pacing.c) */
	char *pacing_limits_raw, *pacing_connections_raw, *pacing_warm_up_raw, *pacing_warm_up_start_raw;
	struct pacing_conf pacing;

	/* [web] */
	char *web_listen_raw;
	struct listen_addr *web_listen; /* none: the dashboard is off */
	size_t nweb_listen;
	char *web_admins_raw;
	char **web_admins; /* lower-cased mailbox addresses */
	size_t nweb_admins;
	uint64_t web_session_lifetime_ms;
	char *web_tls;
	char *web_metrics_token;
	char *web_metrics_loopback;
};

/* Loads and checks path. On success returns a config the caller frees with
 * config_free(). On failure returns NULL after writing every problem to err,
 * one per line. */
struct config *config_load(const char *path, FILE *err);
void config_free(struct config *cfg);

/* Loads the DKIM signing keys ([dkim] key_dir) into cfg->dkim_keys. Run by
 * the daemon (at start as root, and on SIGHUP) and `config check`, not by
 * every command: key files are readable by the daemon's user only. Returns
 * 0, or -1 after writing each problem to err as "file:line: problem". */
int config_load_keys(struct config *cfg, FILE *err);

/* Writes an annotated example configuration (every key, its default and its
 * meaning) to out. */
void config_write_example(FILE *out);

/* Whether domain (any case) is one of ours. */
int config_is_local_domain(const struct config *cfg, const char *domain);

/* Parses "127.0.0.1:25", "[::1]:25" or "*:25" into a new listen_addr. */
int config_parse_listen(const char *s, struct listen_addr *out);

#endif
