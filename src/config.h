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
	char *dmarc_enabled, *dmarc_apply_policy, *dmarc_quarantine_folder;
	char *dmarc_trusted_sealers; /* raw list */
	char **trusted_sealers;      /* lower-cased */
	size_t ntrusted_sealers;
	char *arc_verify;

	/* [spf] */
	char *spf_enabled;
	char *spf_on_fail, *spf_on_softfail, *spf_on_permerror, *spf_on_temperror;
	char *spf_check_helo;

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

/* Writes an annotated example configuration (every key, its default and its
 * meaning) to out. */
void config_write_example(FILE *out);

/* Whether domain (any case) is one of ours. */
int config_is_local_domain(const struct config *cfg, const char *domain);

/* Parses "127.0.0.1:25", "[::1]:25" or "*:25" into a new listen_addr. */
int config_parse_listen(const char *s, struct listen_addr *out);

#endif
