/*
 * config: see config.h.
 *
 * The schema table below is the single source of truth for every key. Values
 * are first stored as strings (defaults included), then converted and
 * cross-checked; each problem is reported with the line of the key that
 * caused it, or with the file alone when a required key is missing.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/keyring.h"
#include "lib/ini.h"
#include "lib/log.h"
#include "lib/util.h"

enum key_type { T_STRING, T_PATH, T_SIZE, T_DURATION, T_UINT, T_LISTEN, T_LIST, T_ENUM };

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t str_off; /* offset of the char * holding the raw value */
	size_t num_off; /* offset of the uint64_t for numeric types, or 0 */
	const char *def; /* default, or NULL when there is none */
	const char *choices; /* for T_ENUM: "a|b" */
	uint64_t min, max; /* for numeric types */
	const char *doc;
};

#define S(f) offsetof(struct config, f)
/* Numeric keys keep their raw text in a scratch slot; see raw_num[]. */
#define NUMERIC_RAW ((size_t)-1)

static const struct key keys[] = {
	{ "server", "hostname", T_STRING, S(hostname), 0, "", NULL, 0, 0,
	  "The name this host gives in its greeting, EHLO reply and Received headers. Empty: the system's host name." },
	{ "server", "user", T_STRING, S(user), 0, "postern", NULL, 0, 0,
	  "Started as root, postern binds its ports and then runs as this unprivileged user." },
	{ "server", "data_dir", T_PATH, S(data_dir), 0, "/var/lib/postern", NULL, 0, 0,
	  "Where the state database and the spool live. Must be writable by the user." },
	{ "server", "mail_dir", T_PATH, S(mail_dir), 0, "", NULL, 0, 0,
	  "Root of the mailboxes: each one is the Maildir MAIL_DIR/DOMAIN/LOCALPART/. Empty: DATA_DIR/mail." },
	{ "server", "domains", T_LIST, S(domains_raw), 0, NULL, NULL, 0, 0,
	  "The domains we receive mail for, separated by commas or spaces. Required." },
	{ "server", "authserv_id", T_STRING, S(authserv_id), 0, "", NULL, 0, 0,
	  "The name in our Authentication-Results headers (RFC 8601). Empty: the hostname." },
	{ "server", "log_level", T_ENUM, S(log_level), 0, "info", "error|warn|info|debug", 0, 0,
	  "How much to log: error, warn, info or debug." },
	{ "server", "recipient_delimiter", T_STRING, S(recipient_delimiter), 0, "+", NULL, 0, 0,
	  "Sub-addressing: user+tag@domain reaches user@domain. Empty disables it." },
	{ "server", "workers", T_UINT, NUMERIC_RAW, S(workers), "4", NULL, 1, 64,
	  "Threads that do the slow disk work (writing and fsyncing mail) so the event loop never waits." },
	{ "server", "shutdown_timeout", T_DURATION, NUMERIC_RAW, S(shutdown_timeout_ms), "30s", NULL, 0, 3600000,
	  "On SIGTERM, how long transactions in flight may take to finish before postern exits." },

	{ "smtp", "listen", T_LISTEN, S(smtp_listen_raw), 0, "0.0.0.0:25, [::]:25", NULL, 0, 0,
	  "Addresses for inbound SMTP (MX), as ADDRESS:PORT or [IPV6]:PORT, separated by commas." },
	{ "smtp", "max_command_line", T_SIZE, NUMERIC_RAW, S(max_command_line), "2048", NULL, 512, 65536,
	  "Longest command line accepted, CRLF included (RFC 5321 section 4.5.3.1.4 asks for at least 512)." },
	{ "smtp", "max_data_line", T_SIZE, NUMERIC_RAW, S(max_data_line), "10000", NULL, 1000, 1048576,
	  "Longest line accepted inside a message, CRLF included (RFC 5321 asks for at least 1000)." },
	{ "smtp", "max_message_size", T_SIZE, NUMERIC_RAW, S(max_message_size), "50M", NULL, 1024, 4294967295ULL,
	  "Largest message accepted; advertised with SIZE (RFC 1870)." },
	{ "smtp", "max_header_size", T_SIZE, NUMERIC_RAW, S(max_header_size), "1M", NULL, 1024, 67108864,
	  "Largest header block accepted; a message with more gets 552 5.3.4." },
	{ "smtp", "max_recipients", T_UINT, NUMERIC_RAW, S(max_recipients), "100", NULL, 1, 100000,
	  "Recipients per message; more get 452 4.5.3 (RFC 5321 section 4.5.3.1.8)." },
	{ "smtp", "max_connections", T_UINT, NUMERIC_RAW, S(max_connections), "1000", NULL, 1, 1000000,
	  "Concurrent SMTP sessions in total; more get 421 4.7.0 and are closed." },
	{ "smtp", "max_connections_per_client", T_UINT, NUMERIC_RAW, S(max_connections_per_client), "20", NULL, 1, 1000000,
	  "Concurrent SMTP sessions from one client address." },
	{ "smtp", "max_errors", T_UINT, NUMERIC_RAW, S(max_errors), "10", NULL, 1, 1000,
	  "Erroneous commands per session before postern answers 421 4.7.0 and closes it." },
	{ "smtp", "command_timeout", T_DURATION, NUMERIC_RAW, S(command_timeout_ms), "5m", NULL, 100, 86400000,
	  "How long to wait for the next command (RFC 5321 section 4.5.3.2.7 says at least 5 minutes)." },
	{ "smtp", "data_timeout", T_DURATION, NUMERIC_RAW, S(data_timeout_ms), "5m", NULL, 100, 86400000,
	  "How long to wait for the next block of message data." },
	{ "smtp", "bare_line_endings", T_ENUM, S(bare_line_endings), 0, "reject", "reject|normalise", 0, 0,
	  "A bare CR or LF in message data: reject the message (554 5.6.0), or normalise it to CRLF." },

	{ "submission", "listen", T_LISTEN, S(submission_listen_raw), 0, "", NULL, 0, 0,
	  "Addresses for mail submission by our users with STARTTLS (RFC 6409), e.g. 0.0.0.0:587, [::]:587. Empty: none. Needs [tls]." },
	{ "submission", "submissions_listen", T_LISTEN, S(submissions_listen_raw), 0, "", NULL, 0, 0,
	  "Addresses for submission over implicit TLS (RFC 8314), e.g. 0.0.0.0:465, [::]:465. Empty: none. Needs [tls]." },
	{ "submission", "sender", T_ENUM, S(submission_sender), 0, "own", "own|domain|any", 0, 0,
	  "Which senders a user may use (MAIL FROM and From): own addresses (the mailbox and its aliases), any address of a domain of ours, or any." },
	{ "submission", "auth_max_failures", T_UINT, NUMERIC_RAW, S(auth_max_failures), "5", NULL, 1, 1000,
	  "Failed logins per client address, and per account, within auth_window before further attempts are refused." },
	{ "submission", "auth_window", T_DURATION, NUMERIC_RAW, S(auth_window_ms), "15m", NULL, 1000, 86400000,
	  "The window in which failed logins are counted." },
	{ "submission", "auth_lockout", T_DURATION, NUMERIC_RAW, S(auth_lockout_ms), "15m", NULL, 1000, 86400000,
	  "How long a client address or an account over auth_max_failures is refused (454 4.7.0, or 421 for the address)." },
	{ "submission", "auth_failure_delay", T_DURATION, NUMERIC_RAW, S(auth_failure_delay_ms), "2s", NULL, 0, 60000,
	  "How long a failed login waits before its 535 reply." },

	{ "tls", "certificate", T_PATH, S(tls_certificate), 0, "", NULL, 0, 0,
	  "PEM certificate chain for STARTTLS. Empty: STARTTLS is not offered." },
	{ "tls", "key", T_PATH, S(tls_key), 0, "", NULL, 0, 0,
	  "PEM private key for the certificate." },

	{ "dns", "resolver", T_STRING, S(dns_resolver), 0, "system", NULL, 0, 0,
	  "'system' for /etc/resolv.conf, or resolver addresses as ADDRESS[:PORT] separated by commas." },
	{ "dns", "timeout", T_DURATION, NUMERIC_RAW, S(dns_timeout_ms), "5s", NULL, 100, 60000,
	  "Time allowed for one DNS query; past it the lookup is a temporary failure." },
	{ "dns", "max_queries", T_UINT, NUMERIC_RAW, S(dns_max_queries), "256", NULL, 1, 100000,
	  "DNS queries in flight at once; more wait their turn." },
	{ "dns", "trust_anchor", T_PATH, S(dns_trust_anchor), 0, "/usr/share/dns/root.key", NULL, 0, 0,
	  "DNSSEC root trust anchor (Debian package dns-root-data). Empty: answers are not validated." },
	{ "dkim", "verify", T_ENUM, S(dkim_verify), 0, "yes", "yes|no", 0, 0,
	  "Verify the DKIM signatures of every message received (RFC 6376) and record them." },
	{ "dkim", "max_signatures", T_UINT, NUMERIC_RAW, S(dkim_max_signatures), "10", NULL, 1, 100,
	  "DKIM signatures verified per message, from the top; later ones are ignored." },
	{ "dkim", "sign", T_ENUM, S(dkim_sign), 0, "yes", "yes|no", 0, 0,
	  "Sign submitted mail with every key of its From domain (dual signing with an RSA and an Ed25519 key)." },
	{ "dkim", "key_dir", T_PATH, S(dkim_key_dir), 0, "", NULL, 0, 0,
	  "Signing keys as KEY_DIR/DOMAIN/SELECTOR.key, as `postern dkim keygen` writes them. Empty: DATA_DIR/dkim." },
	{ "dmarc", "enabled", T_ENUM, S(dmarc_enabled), 0, "yes", "yes|no", 0, 0,
	  "Evaluate DMARC (RFC 7489) for every message received, and record the verdict." },
	{ "dmarc", "apply_policy", T_ENUM, S(dmarc_apply_policy), 0, "yes", "yes|no", 0, 0,
	  "Apply the sender's DMARC policy: reject gets 550 5.7.1, quarantine goes to the Junk folder. no: record only." },
	{ "dmarc", "trusted_sealers", T_LIST, S(dmarc_trusted_sealers), 0, "", NULL, 0, 0,
	  "Domains of forwarders and mailing lists whose valid ARC chain overrides a DMARC failure (RFC 8617 section 7.2)." },
	{ "dmarc", "quarantine_folder", T_STRING, S(dmarc_quarantine_folder), 0, ".Junk", NULL, 0, 0,
	  "The Maildir++ folder that quarantined mail goes to (Dovecot shows .Junk as Junk)." },
	{ "arc", "verify", T_ENUM, S(arc_verify), 0, "yes", "yes|no", 0, 0,
	  "Validate the ARC chain of every message received (RFC 8617) and record it." },
	{ "arc", "seal", T_ENUM, S(arc_seal), 0, "yes", "yes|no", 0, 0,
	  "Add our ARC set to mail an alias forwards to an outside address, with the RSA key of the alias's domain." },
	{ "spf", "enabled", T_ENUM, S(spf_enabled), 0, "yes", "yes|no", 0, 0,
	  "Check SPF for every message and record the result in a Received-SPF header." },
	{ "spf", "fail", T_ENUM, S(spf_on_fail), 0, "record", "record|reject", 0, 0,
	  "SPF fail: record it in Received-SPF (DMARC decides later), or reject the message with 550 5.7.23." },
	{ "spf", "softfail", T_ENUM, S(spf_on_softfail), 0, "record", "record|reject", 0, 0,
	  "SPF softfail: record, or reject with 550 5.7.23." },
	{ "spf", "permerror", T_ENUM, S(spf_on_permerror), 0, "record", "record|reject", 0, 0,
	  "A broken SPF record (permerror): record, or reject with 550 5.7.24 (RFC 7372)." },
	{ "spf", "temperror", T_ENUM, S(spf_on_temperror), 0, "record", "record|defer", 0, 0,
	  "A DNS failure during SPF (temperror): record, or defer with 451 4.7.24 so the sender retries." },
	{ "spf", "check_helo", T_ENUM, S(spf_check_helo), 0, "yes", "yes|no", 0, 0,
	  "Also check the HELO identity (RFC 7208 section 2.3) and record it." },

	{ "reports", "dmarc_address", T_LIST, S(reports_dmarc_address), 0, "", NULL, 0, 0,
	  "Addresses that receive DMARC aggregate reports (the rua= of your DMARC record). Mail to them is delivered as usual, then its report is stored." },
	{ "reports", "tls_address", T_LIST, S(reports_tls_address), 0, "", NULL, 0, 0,
	  "Addresses that receive SMTP TLS reports (the rua= of your _smtp._tls record, RFC 8460)." },
	{ "reports", "our_addresses", T_LIST, S(reports_our_addresses), 0, "", NULL, 0, 0,
	  "IP addresses and networks (CIDR) that send your mail; `postern reports dmarc` flags other sources as not ours." },
	{ "reports", "check_spf", T_ENUM, S(reports_check_spf), 0, "yes", "yes|no", 0, 0,
	  "Also count a source as ours when your domain's SPF record passes it (looked up through [dns] resolver)." },
	{ "reports", "max_size", T_SIZE, NUMERIC_RAW, S(reports_max_size), "32M", NULL, 65536, 1073741824,
	  "Largest report accepted, after decompression; larger ones (and decompression bombs) are refused." },
	{ "reports", "max_records", T_UINT, NUMERIC_RAW, S(reports_max_records), "100000", NULL, 1, 10000000,
	  "Most records in one report (DMARC rows, or TLS policies plus failure details); more is refused." },
	{ "selftest", "enabled", T_ENUM, S(selftest_enabled), 0, "yes", "yes|no", 0, 0,
	  "Mail to PREFIX-TOKEN@one-of-our-domains is graded out of 10 (SPF, DKIM, DMARC, reverse DNS, lists, TLS, header) instead of delivered; see `postern selftest`." },
	{ "selftest", "prefix", T_STRING, S(selftest_prefix), 0, "check-", NULL, 0, 0,
	  "The local part that marks a self-test address, followed by a token of 4 to 64 letters and digits." },
	{ "selftest", "reply", T_ENUM, S(selftest_reply), 0, "yes", "yes|no", 0, 0,
	  "Mail the report back to the sender, only when SPF or DMARC passed for the sender (never to a forged address), from <> with Auto-Submitted." },
	{ "selftest", "keep", T_UINT, NUMERIC_RAW, S(selftest_keep), "200", NULL, 1, 100000,
	  "Reports kept under DATA_DIR/selftest; the oldest go first." },
	{ "policy", "enabled", T_ENUM, S(policy_enabled), 0, "yes", "yes|no", 0, 0,
	  "Run the inbound checks (DNSBL/DNSWL, reverse DNS, HELO, SPF) on every client, score them, and act on the score." },
	{ "policy", "weights", T_STRING, S(policy_weights_raw), 0, "", NULL, 0, 0,
	  "Overrides of the checks' weights, as NAME=WEIGHT separated by commas, e.g. 'fcrdns.none=2, helo.ours=6'." },
	{ "policy", "greylist_threshold", T_STRING, S(policy_greylist_threshold_raw), 0, "2", NULL, 0, 0,
	  "Score from which mail is suspicious: graylisted when [greylist] mode = suspicious." },
	{ "policy", "junk_threshold", T_STRING, S(policy_junk_threshold_raw), 0, "5", NULL, 0, 0,
	  "Score from which a message is delivered to the Junk folder." },
	{ "policy", "reject_threshold", T_STRING, S(policy_reject_threshold_raw), 0, "10", NULL, 0, 0,
	  "Score from which recipients are refused with 550 5.7.1." },
	{ "policy", "junk_folder", T_STRING, S(policy_junk_folder), 0, ".Junk", NULL, 0, 0,
	  "The Maildir++ folder for mail that scores at or above junk_threshold." },
	{ "policy", "greet_delay", T_DURATION, NUMERIC_RAW, S(greet_delay_ms), "0s", NULL, 0, 60000,
	  "Wait this long before the 220 greeting; a client that talks first gets 554 5.7.1 and is closed. 0: no wait." },
	{ "policy", "max_unknown_recipients", T_UINT, NUMERIC_RAW, S(max_unknown_recipients), "5", NULL, 1, 100000,
	  "Unknown recipients per session before postern answers 421 4.7.0 and closes it (dictionary attacks)." },

	{ "greylist", "mode", T_ENUM, S(grey_mode), 0, "suspicious", "off|suspicious|all", 0, 0,
	  "Graylisting (RFC 6647): off, only for mail scoring at or above greylist_threshold, or for all unknown senders." },
	{ "greylist", "decide_at_data", T_ENUM, S(grey_decide_at_data), 0, "yes", "yes|no", 0, 0,
	  "Accept the recipients and decide after DATA, so DMARC-aligned mail (SPF or DKIM) is never delayed. Needs [dmarc] enabled." },
	{ "greylist", "min_delay", T_DURATION, NUMERIC_RAW, S(grey_min_delay_ms), "60s", NULL, 0, 86400000,
	  "How long a new (client, sender, recipient) triplet is deferred." },
	{ "greylist", "retry_window", T_DURATION, NUMERIC_RAW, S(grey_retry_window_ms), "24h", NULL, 1000, 604800000,
	  "A retry must come within this time after the first attempt, or the triplet starts again." },
	{ "greylist", "expire", T_DURATION, NUMERIC_RAW, S(grey_expire_ms), "35d", NULL, 60000, 31536000000ULL,
	  "A triplet that passed is remembered until it has been idle this long." },
	{ "greylist", "ipv4_prefix", T_UINT, NUMERIC_RAW, S(grey_ipv4_prefix), "24", NULL, 8, 32,
	  "The client of a triplet is its IPv4 network of this prefix length (unless SPF passes: then its domain)." },
	{ "greylist", "ipv6_prefix", T_UINT, NUMERIC_RAW, S(grey_ipv6_prefix), "64", NULL, 16, 128,
	  "The same for IPv6 clients." },
	{ "greylist", "auto_allow_after", T_UINT, NUMERIC_RAW, S(grey_auto_allow_after), "3", NULL, 0, 1000000,
	  "Clients and SPF-passing sender domains with this many accepted messages are never delayed again. 0: never." },
	{ "greylist", "auto_allow_expire", T_DURATION, NUMERIC_RAW, S(grey_auto_allow_expire_ms), "35d", NULL, 60000,
	  31536000000ULL, "An auto-allowed client or domain idle this long is forgotten." },

	{ "dnsbl", "blocklists", T_STRING, S(dnsbl_blocklists_raw), 0, "", NULL, 0, 0,
	  "DNS blocklists, looked up as the client connects: 'ZONE[=WEIGHT] [CODES=WEIGHT|error|ignore ...]; ...'." },
	{ "dnsbl", "allowlists", T_STRING, S(dnsbl_allowlists_raw), 0, "", NULL, 0, 0,
	  "DNS allowlists (DNSWL), same syntax, default weight -1; a listed client is never graylisted." },

	{ "ratelimit", "connections_per_minute", T_UINT, NUMERIC_RAW, S(rl_connections_per_minute), "60", NULL, 0,
	  1000000, "Connections one client address may open per minute; more get 421 4.7.0. 0: no limit." },
	{ "ratelimit", "messages_per_hour", T_UINT, NUMERIC_RAW, S(rl_messages_per_hour), "1000", NULL, 0, 10000000,
	  "Messages (MAIL commands) per client address per hour; more get 450 4.7.1. 0: no limit." },
	{ "ratelimit", "recipients_per_hour", T_UINT, NUMERIC_RAW, S(rl_recipients_per_hour), "2000", NULL, 0, 10000000,
	  "Accepted recipients per client address per hour; more get 450 4.7.1. 0: no limit." },
	{ "ratelimit", "unknown_recipients_per_hour", T_UINT, NUMERIC_RAW, S(rl_unknown_per_hour), "30", NULL, 0,
	  10000000, "Unknown recipients per client address per hour, over all its sessions; more get 421 4.7.0. 0: no limit." },
	{ "ratelimit", "auth_messages_per_hour", T_UINT, NUMERIC_RAW, S(rl_auth_messages_per_hour), "500", NULL, 0,
	  10000000, "Messages per authenticated user per hour (instead of the per-address limits). 0: no limit." },
	{ "ratelimit", "auth_recipients_per_hour", T_UINT, NUMERIC_RAW, S(rl_auth_recipients_per_hour), "2000", NULL, 0,
	  10000000, "Recipients per authenticated user per hour. 0: no limit." },
	{ "queue", "retry_first", T_DURATION, NUMERIC_RAW, S(queue_retry_first_ms), "5m", NULL, 1000, 86400000,
	  "After a temporary failure, the first retry comes this much later; each next wait doubles." },
	{ "queue", "retry_max", T_DURATION, NUMERIC_RAW, S(queue_retry_max_ms), "2h", NULL, 1000, 604800000,
	  "The longest wait between two attempts (the doubling stops here)." },
	{ "queue", "max_age", T_DURATION, NUMERIC_RAW, S(queue_max_age_ms), "5d", NULL, 1000, 5184000000ULL,
	  "A message not delivered after this long is given up and bounced to its sender (RFC 3464)." },
	{ "queue", "delay_notice", T_DURATION, NUMERIC_RAW, S(queue_delay_notice_ms), "4h", NULL, 0, 5184000000ULL,
	  "Tell the sender once that a message is delayed after it has waited this long; 0 never tells." },
	{ "queue", "max_parallel", T_UINT, NUMERIC_RAW, S(queue_max_parallel), "100", NULL, 1, 100000,
	  "Messages being delivered at once." },
	{ "queue", "destination_concurrency", T_UINT, NUMERIC_RAW, S(queue_destination_concurrency), "20", NULL, 1, 1000,
	  "Connections open at once to one destination (a recipient domain, or the relay)." },

	{ "delivery", "helo_name", T_STRING, S(delivery_helo_name), 0, "", NULL, 0, 0,
	  "The name postern gives in EHLO when it sends mail. Empty: [server] hostname." },
	{ "delivery", "port", T_UINT, NUMERIC_RAW, S(delivery_port), "25", NULL, 1, 65535,
	  "The port of the receiving servers (MX hosts). Only tests change it." },
	{ "delivery", "source_ipv4", T_STRING, S(delivery_source_ipv4), 0, "", NULL, 0, 0,
	  "The local IPv4 address to send from. Empty: the system chooses." },
	{ "delivery", "source_ipv6", T_STRING, S(delivery_source_ipv6), 0, "", NULL, 0, 0,
	  "The local IPv6 address to send from. Empty: the system chooses." },
	{ "delivery", "ipv6", T_ENUM, S(delivery_ipv6), 0, "yes", "yes|no", 0, 0,
	  "Try the IPv6 addresses of a receiving server (before its IPv4 ones). no: IPv4 only." },
	{ "delivery", "tls", T_ENUM, S(delivery_tls), 0, "opportunistic", "opportunistic|none", 0, 0,
	  "STARTTLS when the receiving server offers it, without requiring a valid certificate (RFC 3207); none: never." },
	{ "delivery", "connect_timeout", T_DURATION, NUMERIC_RAW, S(delivery_connect_timeout_ms), "30s", NULL, 100, 600000,
	  "How long to wait for a TCP connection to a receiving server before trying the next address." },
	{ "delivery", "command_timeout", T_DURATION, NUMERIC_RAW, S(delivery_command_timeout_ms), "5m", NULL, 100, 3600000,
	  "How long to wait for a reply to a command (RFC 5321 section 4.5.3.2 says 5 minutes)." },
	{ "delivery", "data_timeout", T_DURATION, NUMERIC_RAW, S(delivery_data_timeout_ms), "10m", NULL, 100, 3600000,
	  "How long to wait for the reply after the message is sent (RFC 5321 section 4.5.3.2.6 says 10 minutes)." },
	{ "delivery", "mta_sts", T_ENUM, S(delivery_mta_sts), 0, "yes", "yes|no", 0, 0,
	  "Look up and apply the MTA-STS policy of recipient domains (RFC 8461): enforce mode requires TLS with a valid certificate for a listed MX host." },
	{ "delivery", "dane", T_ENUM, S(delivery_dane), 0, "yes", "yes|no", 0, 0,
	  "Use DNSSEC-validated TLSA records of MX hosts (RFC 7672): TLS required, certificate matched against them. Needs [dns] trust_anchor." },
	{ "delivery", "ca_file", T_PATH, S(delivery_ca_file), 0, "", NULL, 0, 0,
	  "Extra CA certificates (PEM) trusted, with the system's, for MTA-STS policy fetches and MX certificates. Mostly for tests." },

	{ "relay", "host", T_STRING, S(relay_host), 0, "", NULL, 0, 0,
	  "A smarthost to send through (a name or an address). Empty: no relay; everything goes direct." },
	{ "relay", "port", T_UINT, NUMERIC_RAW, S(relay_port), "587", NULL, 1, 65535,
	  "The relay's port: 587 for STARTTLS, 465 for implicit TLS." },
	{ "relay", "tls", T_ENUM, S(relay_tls), 0, "starttls", "starttls|implicit", 0, 0,
	  "starttls (required, port 587) or implicit TLS (port 465). The certificate must verify for the host name." },
	{ "relay", "credentials_file", T_PATH, S(relay_credentials_file), 0, "", NULL, 0, 0,
	  "A file with one line USERNAME:PASSWORD for AUTH at the relay, readable only by postern (mode 0600). Empty: no AUTH." },
	{ "relay", "ca_file", T_PATH, S(relay_ca_file), 0, "", NULL, 0, 0,
	  "PEM certificates of the authorities that may sign the relay's certificate. Empty: the system's CAs." },
	{ "relay", "domains", T_LIST, S(relay_domains_raw), 0, "", NULL, 0, 0,
	  "Recipient domains sent through the relay (a domain covers its subdomains); * sends everything through it." },
	{ "relay", "mx_patterns", T_LIST, S(relay_mx_patterns_raw), 0, "", NULL, 0, 0,
	  "MX host patterns sent through the relay, e.g. *.outlook.com: every domain whose MX is under outlook.com." },
	{ "routing", "adaptive", T_ENUM, S(routing_adaptive), 0, "yes", "yes|no", 0, 0,
	  "When a receiver refuses direct delivery for our reputation, send the refused mail through the relay at once and route its provider there for a while." },
	{ "routing", "period", T_DURATION, NUMERIC_RAW, S(routing_period_ms), "1d", NULL, 1000, 2592000000ULL,
	  "How long a provider that refused us for reputation is sent through the relay." },
	{ "routing", "reputation_patterns", T_STRING, S(routing_patterns_raw), 0, REPUTATION_DEFAULT_PATTERNS, NULL, 0, 0,
	  "Refusals that mean reputation: '[CODE] STATUS [TEXT]; ...', STATUS exact or a prefix like 5.7., TEXT found anywhere in the reply." },
	{ "pacing", "limits", T_STRING, S(pacing_limits_raw), 0, "", NULL, 0, 0,
	  "Recipients per window sent directly to each provider, e.g. 'gmail=100/h, outlook=50/h, *=500/h' (other: per domain). Empty: no limit." },
	{ "pacing", "connections", T_STRING, S(pacing_connections_raw), 0, "", NULL, 0, 0,
	  "Connections open at once to each provider, e.g. 'gmail=5, outlook=3, *=20'. Empty: [queue] destination_concurrency only." },
	{ "pacing", "window", T_DURATION, NUMERIC_RAW, S(pacing.window_ms), "1h", NULL, 1000, 86400000,
	  "The window the limits count in (the '/h'). Only tests change it." },
	{ "pacing", "warm_up", T_STRING, S(pacing_warm_up_raw), 0, "", NULL, 0, 0,
	  "A new sending address's daily volume per provider, day by day from warm_up_start, e.g. '50, 100, 200, 400, 800'. Empty: none." },
	{ "pacing", "warm_up_start", T_STRING, S(pacing_warm_up_start_raw), 0, "", NULL, 0, 0,
	  "The first day of the warm-up, YYYY-MM-DD (UTC). Empty: the day of the first direct delivery in the ledger." },
	{ "web", "listen", T_STRING, S(web_listen_raw), 0, "127.0.0.1:8025", NULL, 0, 0,
	  "Addresses of the web dashboard and /metrics, as ADDRESS:PORT separated by commas. Empty: no dashboard." },
	{ "web", "admins", T_LIST, S(web_admins_raw), 0, "", NULL, 0, 0,
	  "Mailboxes (user@domain) that may log in to the dashboard with their mail password. Empty: nobody." },
	{ "web", "session_lifetime", T_DURATION, NUMERIC_RAW, S(web_session_lifetime_ms), "12h", NULL, 60000, 2592000000ULL,
	  "How long a dashboard login lasts before the password is asked again." },
	{ "web", "tls", T_ENUM, S(web_tls), 0, "no", "yes|no", 0, 0,
	  "Serve the dashboard over HTTPS with the [tls] certificate (needed off loopback; cookies are then Secure)." },
	{ "web", "metrics_token", T_STRING, S(web_metrics_token), 0, "", NULL, 0, 0,
	  "A secret (16 characters or more) that lets a Prometheus server read /metrics with 'Authorization: Bearer TOKEN'." },
	{ "web", "metrics_loopback", T_ENUM, S(web_metrics_loopback), 0, "yes", "yes|no", 0, 0,
	  "Let clients on loopback (127.0.0.0/8, ::1) read /metrics without a token or login." },
};

/* Raw text of numeric keys, indexed like keys[]. */
struct loader {
	struct config *cfg;
	char *raw[ARRAY_LEN(keys)];
	int line[ARRAY_LEN(keys)];
	FILE *err;
	int nerr;
	struct problem_line {
		int line;
		int seq;
		char *text;
	} *problems;
};

static char **str_slot(struct loader *ld, size_t i)
{
	if (keys[i].str_off == NUMERIC_RAW)
		return &ld->raw[i];
	return (char **)((char *)ld->cfg + keys[i].str_off);
}

static void problem(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	char *text;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		abort();
	va_end(ap);
	ld->problems = xrealloc(ld->problems, (size_t)(ld->nerr + 1) * sizeof *ld->problems);
	ld->problems[ld->nerr].line = line;
	ld->problems[ld->nerr].seq = ld->nerr;
	ld->problems[ld->nerr].text = text;
	ld->nerr++;
}

static int by_line(const void *a, const void *b)
{
	const struct problem_line *x = a, *y = b;
	int lx = x->line > 0 ? x->line : 1 << 30, ly = y->line > 0 ? y->line : 1 << 30;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->seq - y->seq; /* keep the order found */
}

/* Writes the problems in file order, those without a line last. */
static void report_problems(struct loader *ld)
{
	if (ld->nerr)
		qsort(ld->problems, (size_t)ld->nerr, sizeof *ld->problems, by_line);
	for (int i = 0; i < ld->nerr; i++) {
		if (ld->problems[i].line > 0)
			fprintf(ld->err, "%s:%d: %s\n", ld->cfg->path, ld->problems[i].line, ld->problems[i].text);
		else
			fprintf(ld->err, "%s: %s\n", ld->cfg->path, ld->problems[i].text);
		free(ld->problems[i].text);
	}
	free(ld->problems);
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof cur);
	}
	return prev[lb];
}

static void unknown_key(struct loader *ld, const struct ini_entry *e)
{
	const struct key *best = NULL;
	size_t bestd = 4;
	int section_known = 0;

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		size_t d = edit_distance(e->key, keys[i].name);
		if (!strcmp(keys[i].section, e->section))
			section_known = 1;
		if (!strcmp(keys[i].section, e->section) || !strcmp(keys[i].name, e->key))
			if (d < bestd) {
				bestd = d;
				best = &keys[i];
			}
	}
	if (!section_known && !best) {
		/* The list of sections, from the table itself. */
		char list[512];
		size_t o = 0;
		for (size_t i = 0; i < ARRAY_LEN(keys) && o < sizeof list; i++)
			if (i == 0 || strcmp(keys[i].section, keys[i - 1].section))
				o += (size_t)snprintf(list + o, sizeof list - o, "%s[%s]", o ? ", " : "", keys[i].section);
		problem(ld, e->line, "unknown section [%s]; the sections are %s", e->section, list);
	} else if (best) {
		problem(ld, e->line, "unknown key '%s' in [%s]; did you mean '%s' in [%s]?", e->key, e->section,
			best->name, best->section);
	} else {
		problem(ld, e->line, "unknown key '%s' in [%s]; see 'postern config example' for every key",
			e->key, e->section);
	}
}

int config_parse_listen(const char *s, struct listen_addr *out)
{
	const char *colon;
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char tmp[sizeof(struct in6_addr)];
	uint64_t port;
	size_t hl;

	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, tmp) != 1)
			return -1;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (strcmp(host, "*") && inet_pton(AF_INET, host, tmp) != 1)
			return -1;
	}
	if (parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return -1;
	out->host = xstrdup(strcmp(host, "*") ? host : "0.0.0.0");
	out->port = xstrdup(colon + 1);
	return 0;
}

/* Splits on commas and white space; returns the number of items. */
static size_t split_list(const char *s, char ***out)
{
	char *copy = xstrdup(s), *save = NULL, *tok;
	size_t n = 0;
	*out = NULL;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xstrdup(tok);
	}
	free(copy);
	return n;
}

static int valid_domain(const char *d)
{
	size_t label = 0, len = strlen(d);
	if (len == 0 || len > 253)
		return 0;
	for (const char *p = d; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* A bound as the user would write it: 100ms, 5m, 1d; 64k, 50M. */
static void fmt_value(enum key_type type, uint64_t v, char *out, size_t n)
{
	static const struct {
		uint64_t mul;
		const char *suffix;
	} dur[] = { { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" } },
	  size[] = { { 1ULL << 30, "G" }, { 1 << 20, "M" }, { 1 << 10, "k" }, { 1, "" } };
	const void *table = type == T_DURATION ? (const void *)dur : type == T_SIZE ? (const void *)size : NULL;
	size_t count = type == T_DURATION ? ARRAY_LEN(dur) : ARRAY_LEN(size);
	if (table) {
		const typeof(dur[0]) *t = table;
		for (size_t i = 0; i < count; i++) {
			if (v && v % t[i].mul == 0) {
				snprintf(out, n, "%llu%s", (unsigned long long)(v / t[i].mul), t[i].suffix);
				return;
			}
		}
	}
	snprintf(out, n, "%llu", (unsigned long long)v);
}

static void convert(struct loader *ld, size_t i)
{
	const struct key *k = &keys[i];
	const char *v = *str_slot(ld, i);
	int line = ld->line[i];
	uint64_t num = 0;
	int bad = 0;

	if (!v)
		return;
	switch (k->type) {
	case T_SIZE:
		bad = parse_size(v, &num) < 0;
		if (bad)
			problem(ld, line, "%s = %s is not a size; write bytes or a number with k, M or G (e.g. 50M)",
				k->name, v);
		break;
	case T_DURATION:
		bad = parse_duration_ms(v, &num) < 0;
		if (bad)
			problem(ld, line, "%s = %s is not a duration; write e.g. 30s, 5m, 2h or 250ms", k->name, v);
		break;
	case T_UINT:
		bad = parse_uint(v, UINT64_MAX, &num) < 0;
		if (bad)
			problem(ld, line, "%s = %s is not a whole number; write digits only", k->name, v);
		break;
	case T_PATH:
		if (*v && *v != '/')
			problem(ld, line, "%s = %s must be an absolute path; start it with /", k->name, v);
		return;
	case T_ENUM: {
		char buf[128];
		int ok = 0;
		str_copy(buf, k->choices, sizeof buf);
		for (char *save = NULL, *c = strtok_r(buf, "|", &save); c; c = strtok_r(NULL, "|", &save))
			ok |= !strcasecmp(c, v);
		if (!ok) {
			str_copy(buf, k->choices, sizeof buf);
			for (char *p = buf; *p; p++)
				if (*p == '|')
					*p = ',';
			problem(ld, line, "%s = %s is not one of: %s", k->name, v, buf);
		}
		return;
	}
	default:
		return;
	}
	if (bad)
		return;
	if (num < k->min || num > k->max) {
		char lo[32], hi[32];
		fmt_value(k->type, k->min, lo, sizeof lo);
		fmt_value(k->type, k->max, hi, sizeof hi);
		problem(ld, line, "%s = %s is out of range; use a value from %s to %s", k->name, v, lo, hi);
		return;
	}
	*(uint64_t *)((char *)ld->cfg + k->num_off) = num;
}

static size_t key_index(const char *section, const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
			return i;
	abort(); /* a bug: asked for a key that is not in the table */
}

/* "192.0.2.1", "192.0.2.0/24", "2001:db8::/32". */
static int valid_cidr(const char *s)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned char a[16];
	int v4, v6;
	uint64_t bits;
	if (n >= sizeof host)
		return 0;
	memcpy(host, s, n);
	host[n] = '\0';
	v4 = inet_pton(AF_INET, host, a) == 1;
	v6 = !v4 && inet_pton(AF_INET6, host, a) == 1;
	if (!v4 && !v6)
		return 0;
	if (!slash)
		return 1;
	return parse_uint(slash + 1, v4 ? 32 : 128, &bits) == 0;
}

/* [reports]: the report addresses (lower-cased, for matching recipients)
 * and our sending addresses. */
static void check_reports(struct loader *ld)
{
	struct config *c = ld->cfg;
	const char *lists[] = { c->reports_dmarc_address, c->reports_tls_address };
	const char *names[] = { "dmarc_address", "tls_address" };

	for (size_t l = 0; l < ARRAY_LEN(lists); l++) {
		char **items;
		size_t n = split_list(lists[l], &items);
		for (size_t j = 0; j < n; j++) {
			const char *at = strchr(items[j], '@');
			str_lower(items[j]);
			if (!at || at == items[j] || !valid_domain(at + 1))
				problem(ld, ld->line[key_index("reports", names[l])],
					"%s: '%s' is not an address; write e.g. dmarc-reports@example.org", names[l], items[j]);
			c->report_addresses = xrealloc(c->report_addresses, (c->nreport_addresses + 1) * sizeof(char *));
			c->report_addresses[c->nreport_addresses++] = items[j];
		}
		free(items);
	}
	c->nour_addresses = split_list(c->reports_our_addresses, &c->our_addresses);
	for (size_t j = 0; j < c->nour_addresses; j++)
		if (!valid_cidr(c->our_addresses[j]))
			problem(ld, ld->line[key_index("reports", "our_addresses")],
				"our_addresses: '%s' is not an IP address or network; write e.g. 192.0.2.10, 2001:db8::/32",
				c->our_addresses[j]);
}

/* [policy], [dnsbl]: the values the policy parsers read (policy/conf.c). */
static void policy_cross_check(struct loader *ld)
{
	struct config *c = ld->cfg;
	char err[300];
	static const struct {
		const char *key;
		size_t raw, val;
	} th[] = {
		{ "greylist_threshold", S(policy_greylist_threshold_raw), S(greylist_threshold) },
		{ "junk_threshold", S(policy_junk_threshold_raw), S(junk_threshold) },
		{ "reject_threshold", S(policy_reject_threshold_raw), S(reject_threshold) },
	};

	policy_weights_default(&c->weights);
	if (policy_weights_parse(c->policy_weights_raw, &c->weights, err, sizeof err) < 0)
		problem(ld, ld->line[key_index("policy", "weights")], "weights: %s", err);
	for (size_t i = 0; i < ARRAY_LEN(th); i++) {
		const char *raw = *(char **)((char *)c + th[i].raw);
		if (policy_parse_weight(raw, strlen(raw), (double *)((char *)c + th[i].val)) < 0)
			problem(ld, ld->line[key_index("policy", th[i].key)],
				"%s = %s is not a score; write a number from -100 to 100, e.g. 5 or 4.5", th[i].key, raw);
	}
	if (c->reject_threshold < c->junk_threshold)
		problem(ld, ld->line[key_index("policy", "reject_threshold")],
			"reject_threshold is below junk_threshold; raise it, or lower junk_threshold");
	if (c->policy_junk_folder[0] != '.' || strchr(c->policy_junk_folder, '/') || strlen(c->policy_junk_folder) < 2)
		problem(ld, ld->line[key_index("policy", "junk_folder")],
			"junk_folder = %s is not a Maildir++ folder; write a name starting with a dot, e.g. .Junk",
			c->policy_junk_folder);
	if (policy_zones_parse(c->dnsbl_blocklists_raw, 0, &c->blocklists, err, sizeof err) < 0)
		problem(ld, ld->line[key_index("dnsbl", "blocklists")], "blocklists: %s", err);
	if (policy_zones_parse(c->dnsbl_allowlists_raw, 1, &c->allowlists, err, sizeof err) < 0)
		problem(ld, ld->line[key_index("dnsbl", "allowlists")], "allowlists: %s", err);
}

/* Parses a listen list into *out. An empty list is allowed only when
 * may_be_empty (submission listeners are optional). */
static void parse_listen_list(struct loader *ld, size_t i, const char *raw, struct listen_addr **out, size_t *nout,
			      int may_be_empty)
{
	const char *eg = !strcmp(keys[i].section, "smtp") ? "25" : !strcmp(keys[i].name, "listen") ? "587" : "465";
	char **items;
	size_t n;

	if (!raw)
		return;
	n = split_list(raw, &items);
	*out = xcalloc(n ? n : 1, sizeof **out);
	for (size_t j = 0; j < n; j++) {
		if (config_parse_listen(items[j], &(*out)[*nout]) == 0)
			(*nout)++;
		else
			problem(ld, ld->line[i], "%s: '%s' is not ADDRESS:PORT; write e.g. 127.0.0.1:%s or [::1]:%s",
				keys[i].name, items[j], eg, eg);
		free(items[j]);
	}
	free(items);
	if (n == 0 && !may_be_empty)
		problem(ld, ld->line[i], "listen is empty; give at least one ADDRESS:PORT");
}

static void cross_check(struct loader *ld)
{
	struct config *c = ld->cfg;

	for (const char *p = c->selftest_prefix; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.')) {
			problem(ld, ld->line[key_index("selftest", "prefix")],
				"prefix = %s: use lower-case letters, digits, '-', '_' or '.', e.g. check-", c->selftest_prefix);
			break;
		}
	size_t i;

	i = key_index("server", "domains");
	if (!c->domains_raw || !*c->domains_raw) {
		problem(ld, ld->line[i], "[server] domains is required; add e.g. 'domains = example.org' under [server]");
	} else {
		c->ndomains = split_list(c->domains_raw, &c->domains);
		if (c->ndomains == 0)
			problem(ld, ld->line[i], "domains lists no domain; write e.g. 'domains = example.org'");
		for (size_t d = 0; d < c->ndomains; d++) {
			str_lower(c->domains[d]);
			if (!valid_domain(c->domains[d]))
				problem(ld, ld->line[i], "domains: '%s' is not a domain name; write names like example.org",
					c->domains[d]);
		}
	}

	parse_listen_list(ld, key_index("smtp", "listen"), c->smtp_listen_raw, &c->smtp_listen, &c->nsmtp_listen, 0);
	parse_listen_list(ld, key_index("submission", "listen"), c->submission_listen_raw, &c->submission_listen,
			  &c->nsubmission_listen, 1);
	parse_listen_list(ld, key_index("submission", "submissions_listen"), c->submissions_listen_raw,
			  &c->submissions_listen, &c->nsubmissions_listen, 1);

	if (!*c->hostname) {
		char h[256] = "localhost";
		gethostname(h, sizeof h - 1);
		h[sizeof h - 1] = '\0';
		free(c->hostname);
		c->hostname = xstrdup(h);
	} else if (!valid_domain(c->hostname)) {
		problem(ld, ld->line[key_index("server", "hostname")],
			"hostname = %s is not a host name; write a fully qualified name like mail.example.org",
			c->hostname);
	}
	if (!*c->authserv_id) {
		free(c->authserv_id);
		c->authserv_id = xstrdup(c->hostname);
	}
	if (!*c->mail_dir) {
		free(c->mail_dir);
		c->mail_dir = xasprintf("%s/mail", c->data_dir);
	}
	if (c->dmarc_quarantine_folder[0] != '.' || strchr(c->dmarc_quarantine_folder, '/') ||
	    strlen(c->dmarc_quarantine_folder) < 2)
		problem(ld, ld->line[key_index("dmarc", "quarantine_folder")],
			"quarantine_folder = %s is not a Maildir++ folder; write a name starting with a dot, e.g. .Junk",
			c->dmarc_quarantine_folder);
	c->ntrusted_sealers = split_list(c->dmarc_trusted_sealers, &c->trusted_sealers);
	for (size_t t = 0; t < c->ntrusted_sealers; t++) {
		str_lower(c->trusted_sealers[t]);
		if (!valid_domain(c->trusted_sealers[t]))
			problem(ld, ld->line[key_index("dmarc", "trusted_sealers")],
				"trusted_sealers: '%s' is not a domain name; list the d= of the sealer's ARC-Seal",
				c->trusted_sealers[t]);
	}
	check_reports(ld);
	if (strlen(c->recipient_delimiter) > 1)
		problem(ld, ld->line[key_index("server", "recipient_delimiter")],
			"recipient_delimiter must be one character (usually +) or empty");
	if (!*c->tls_certificate != !*c->tls_key) {
		problem(ld, ld->line[key_index("tls", *c->tls_certificate ? "certificate" : "key")],
			"[tls] certificate and key go together; set both, or neither to run without STARTTLS");
	}
	for (const char *const *p = (const char *const[]){ c->tls_certificate, c->tls_key, NULL }; *p; p++) {
		if (**p && access(*p, R_OK) < 0)
			problem(ld, ld->line[key_index("tls", *p == c->tls_certificate ? "certificate" : "key")],
				"cannot read %s: %s; check the path and its permissions", *p, strerror(errno));
	}
	if ((c->nsubmission_listen || c->nsubmissions_listen) && !*c->tls_certificate) {
		size_t k = key_index("submission", c->nsubmission_listen ? "listen" : "submissions_listen");
		problem(ld, ld->line[k],
			"submission needs TLS (passwords never travel in clear): set [tls] certificate and key, or "
			"remove %s",
			keys[k].name);
	}
	if (!*c->dkim_key_dir) {
		free(c->dkim_key_dir);
		c->dkim_key_dir = xasprintf("%s/dkim", c->data_dir);
	}
	c->dkim_key_dir_line = ld->line[key_index("dkim", "key_dir")];
	if (!c->dkim_key_dir_line)
		c->dkim_key_dir_line = ld->line[key_index("dkim", "sign")];
	c->bare_lf = !strcasecmp(c->bare_line_endings, "normalise") ? BARE_LF_NORMALISE : BARE_LF_REJECT;
	if (c->max_message_size && c->max_data_line > c->max_message_size)
		problem(ld, ld->line[key_index("smtp", "max_data_line")],
			"max_data_line is larger than max_message_size; lower it");
	policy_cross_check(ld);
	if (!*c->delivery_helo_name) {
		free(c->delivery_helo_name);
		c->delivery_helo_name = xstrdup(c->hostname);
	} else if (!valid_domain(c->delivery_helo_name)) {
		problem(ld, ld->line[key_index("delivery", "helo_name")],
			"helo_name = %s is not a host name; write a fully qualified name like mail.example.org",
			c->delivery_helo_name);
	}
	for (int v6 = 0; v6 < 2; v6++) {
		const char *a = v6 ? c->delivery_source_ipv6 : c->delivery_source_ipv4;
		unsigned char tmp[16];
		if (*a && inet_pton(v6 ? AF_INET6 : AF_INET, a, tmp) != 1)
			problem(ld, ld->line[key_index("delivery", v6 ? "source_ipv6" : "source_ipv4")],
				"%s = %s is not an IPv%d address; write one of this host's addresses, or nothing",
				v6 ? "source_ipv6" : "source_ipv4", a, v6 ? 6 : 4);
	}
	if (c->queue_retry_max_ms < c->queue_retry_first_ms)
		problem(ld, ld->line[key_index("queue", "retry_max")],
			"retry_max is shorter than retry_first; make it at least as long");
	c->nrelay_domains = split_list(c->relay_domains_raw, &c->relay_domains);
	for (size_t d = 0; d < c->nrelay_domains; d++) {
		str_lower(c->relay_domains[d]);
		if (strcmp(c->relay_domains[d], "*") && !valid_domain(c->relay_domains[d]))
			problem(ld, ld->line[key_index("relay", "domains")],
				"domains: '%s' is not a domain name; write names like example.org, or *", c->relay_domains[d]);
	}
	c->nrelay_mx_patterns = split_list(c->relay_mx_patterns_raw, &c->relay_mx_patterns);
	for (size_t d = 0; d < c->nrelay_mx_patterns; d++) {
		const char *pat = str_lower(c->relay_mx_patterns[d]);
		if (!strncmp(pat, "*.", 2))
			pat += 2;
		else if (*pat == '.')
			pat++;
		if (!valid_domain(pat))
			problem(ld, ld->line[key_index("relay", "mx_patterns")],
				"mx_patterns: '%s' is not a host pattern; write e.g. *.outlook.com or mx.example.org",
				c->relay_mx_patterns[d]);
	}
	if (!*c->relay_host && (c->nrelay_domains || c->nrelay_mx_patterns))
		problem(ld, ld->line[key_index("relay", c->nrelay_domains ? "domains" : "mx_patterns")],
			"[relay] routes mail but names no relay; set [relay] host");
	if (*c->relay_credentials_file) {
		struct stat sb;
		size_t ki = key_index("relay", "credentials_file");
		if (stat(c->relay_credentials_file, &sb) < 0)
			problem(ld, ld->line[ki], "cannot read %s: %s; check the path", c->relay_credentials_file,
				strerror(errno));
		else if (sb.st_mode & 077)
			problem(ld, ld->line[ki], "%s may be read by other users (mode %03o); chmod 600 it and chown it to the postern user",
				c->relay_credentials_file, (unsigned)(sb.st_mode & 0777));
	}
	if (*c->delivery_ca_file && access(c->delivery_ca_file, R_OK) < 0)
		problem(ld, ld->line[key_index("delivery", "ca_file")],
			"cannot read %s: %s; check the path and its permissions", c->delivery_ca_file, strerror(errno));
	if (*c->relay_ca_file && access(c->relay_ca_file, R_OK) < 0)
		problem(ld, ld->line[key_index("relay", "ca_file")], "cannot read %s: %s; check the path and its permissions",
			c->relay_ca_file, strerror(errno));
	{
		char perr[300];
		if (reputation_parse(c->routing_patterns_raw, &c->reputation, perr, sizeof perr) < 0)
			problem(ld, ld->line[key_index("routing", "reputation_patterns")], "reputation_patterns: %s", perr);
		if (pacing_parse_rules(c->pacing_limits_raw, 1, c->pacing.limits, &c->pacing.nlimits, perr, sizeof perr) < 0)
			problem(ld, ld->line[key_index("pacing", "limits")], "limits: %s", perr);
		if (pacing_parse_rules(c->pacing_connections_raw, 0, c->pacing.conns, &c->pacing.nconns, perr, sizeof perr) < 0)
			problem(ld, ld->line[key_index("pacing", "connections")], "connections: %s", perr);
		if (pacing_parse_warm_up(c->pacing_warm_up_raw, &c->pacing.warm_up, &c->pacing.nwarm_up, perr, sizeof perr) < 0)
			problem(ld, ld->line[key_index("pacing", "warm_up")], "warm_up: %s", perr);
		if (pacing_parse_date(c->pacing_warm_up_start_raw, &c->pacing.warm_up_start) < 0)
			problem(ld, ld->line[key_index("pacing", "warm_up_start")],
				"warm_up_start = %s is not a date; write YYYY-MM-DD, or nothing for the first delivery",
				c->pacing_warm_up_start_raw);
	}
	i = key_index("web", "listen");
	{
		char **items;
		size_t n = split_list(c->web_listen_raw, &items);
		c->web_listen = xcalloc(n ? n : 1, sizeof *c->web_listen);
		for (size_t j = 0; j < n; j++) {
			if (config_parse_listen(items[j], &c->web_listen[c->nweb_listen]) == 0)
				c->nweb_listen++;
			else
				problem(ld, ld->line[i],
					"listen: '%s' is not ADDRESS:PORT; write e.g. 127.0.0.1:8025 or [::1]:8025, or nothing to turn the dashboard off",
					items[j]);
			free(items[j]);
		}
		free(items);
	}
	c->nweb_admins = split_list(c->web_admins_raw, &c->web_admins);
	for (size_t a = 0; a < c->nweb_admins; a++) {
		const char *at = strrchr(str_lower(c->web_admins[a]), '@');
		if (!at || at == c->web_admins[a] || !valid_domain(at + 1))
			problem(ld, ld->line[key_index("web", "admins")],
				"admins: '%s' is not a mailbox address; list addresses like alice@example.org", c->web_admins[a]);
	}
	if (!strcasecmp(c->web_tls, "yes") && !*c->tls_certificate)
		problem(ld, ld->line[key_index("web", "tls")],
			"tls = yes needs a certificate; set [tls] certificate and key, or tls = no");
	if (*c->web_metrics_token) {
		size_t tl = strlen(c->web_metrics_token);
		int bad = 0;
		for (const char *p = c->web_metrics_token; *p; p++)
			bad |= (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f;
		if (tl < 16 || bad)
			problem(ld, ld->line[key_index("web", "metrics_token")],
				"metrics_token must be 16 or more printable characters without spaces; make one with 'openssl rand -hex 24'");
	}
	if (strcmp(c->dns_resolver, "system")) {
		char **items;
		size_t n = split_list(c->dns_resolver, &items);
		for (size_t j = 0; j < n; j++) {
			char tmp[300];
			struct listen_addr la;
			unsigned char a[16];
			int ok = inet_pton(AF_INET, items[j], a) == 1 || inet_pton(AF_INET6, items[j], a) == 1;
			if (!ok) {
				/* ADDRESS:PORT or [V6]:PORT */
				snprintf(tmp, sizeof tmp, "%s", items[j]);
				ok = config_parse_listen(tmp, &la) == 0;
				if (ok) {
					free(la.host);
					free(la.port);
				}
			}
			if (!ok)
				problem(ld, ld->line[key_index("dns", "resolver")],
					"resolver: '%s' is not an address; write 'system' or e.g. 127.0.0.1:53", items[j]);
			free(items[j]);
		}
		free(items);
		if (n == 0)
			problem(ld, ld->line[key_index("dns", "resolver")], "resolver is empty; write 'system' or addresses");
	}
}

struct config *config_load(const char *path, FILE *err)
{
	struct loader ld = { 0 };
	struct ini *ini;
	char *text;
	FILE *f;
	long len;

	ld.cfg = xcalloc(1, sizeof *ld.cfg);
	ld.cfg->path = xstrdup(path);
	ld.err = err;

	f = fopen(path, "r");
	if (!f) {
		fprintf(err, "%s: cannot open: %s; check the path (-c FILE)\n", path, strerror(errno));
		config_free(ld.cfg);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (len < 0 || len > 1024 * 1024) {
		fprintf(err, "%s: file is larger than 1 MiB; is this the right file?\n", path);
		fclose(f);
		config_free(ld.cfg);
		return NULL;
	}
	text = xmalloc((size_t)len + 1);
	len = (long)fread(text, 1, (size_t)len, f);
	fclose(f);
	ini = ini_parse(text, (size_t)len);
	free(text);

	for (size_t i = 0; i < ini->nerrors; i++)
		problem(&ld, ini->errors[i].line, "%s", ini->errors[i].msg);
	for (size_t e = 0; e < ini->nentries; e++) {
		const struct ini_entry *en = &ini->entries[e];
		size_t i;
		for (i = 0; i < ARRAY_LEN(keys); i++)
			if (!strcmp(keys[i].section, en->section) && !strcmp(keys[i].name, en->key))
				break;
		if (i == ARRAY_LEN(keys)) {
			unknown_key(&ld, en);
			continue;
		}
		if (ld.line[i])
			problem(&ld, en->line, "'%s' is already set in [%s] on line %d; keep one of them", en->key,
				en->section, ld.line[i]);
		free(*str_slot(&ld, i));
		*str_slot(&ld, i) = xstrdup(en->value);
		ld.line[i] = en->line;
	}
	ini_free(ini);

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		if (!*str_slot(&ld, i) && keys[i].def)
			*str_slot(&ld, i) = xstrdup(keys[i].def);
		convert(&ld, i);
	}
	cross_check(&ld);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		free(ld.raw[i]);
	report_problems(&ld);
	if (ld.nerr) {
		config_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].str_off != NUMERIC_RAW)
			free(*(char **)((char *)c + keys[i].str_off));
	for (size_t i = 0; i < c->ndomains; i++)
		free(c->domains[i]);
	free(c->domains);
	for (size_t i = 0; i < c->ntrusted_sealers; i++)
		free(c->trusted_sealers[i]);
	free(c->trusted_sealers);
	for (size_t i = 0; i < c->nreport_addresses; i++)
		free(c->report_addresses[i]);
	free(c->report_addresses);
	for (size_t i = 0; i < c->nour_addresses; i++)
		free(c->our_addresses[i]);
	free(c->our_addresses);
	for (size_t i = 0; i < c->nrelay_domains; i++)
		free(c->relay_domains[i]);
	free(c->relay_domains);
	for (size_t i = 0; i < c->nrelay_mx_patterns; i++)
		free(c->relay_mx_patterns[i]);
	free(c->relay_mx_patterns);
	reputation_list_free(&c->reputation);
	free(c->pacing.warm_up);
	for (size_t i = 0; i < c->nsmtp_listen; i++) {
		free(c->smtp_listen[i].host);
		free(c->smtp_listen[i].port);
	}
	free(c->smtp_listen);
	policy_zones_clear(&c->blocklists);
	policy_zones_clear(&c->allowlists);
	for (size_t i = 0; i < c->nsubmission_listen; i++) {
		free(c->submission_listen[i].host);
		free(c->submission_listen[i].port);
	}
	free(c->submission_listen);
	for (size_t i = 0; i < c->nsubmissions_listen; i++) {
		free(c->submissions_listen[i].host);
		free(c->submissions_listen[i].port);
	}
	free(c->submissions_listen);
	keyring_free(c->dkim_keys);
	for (size_t i = 0; i < c->nweb_listen; i++) {
		free(c->web_listen[i].host);
		free(c->web_listen[i].port);
	}
	free(c->web_listen);
	for (size_t i = 0; i < c->nweb_admins; i++)
		free(c->web_admins[i]);
	free(c->web_admins);
	free(c->path);
	free(c);
}

struct key_problems {
	const struct config *cfg;
	FILE *err;
	int n;
};

static void key_problem(void *arg, const char *text)
{
	struct key_problems *kp = arg;
	if (kp->cfg->dkim_key_dir_line > 0)
		fprintf(kp->err, "%s:%d: %s\n", kp->cfg->path, kp->cfg->dkim_key_dir_line, text);
	else
		fprintf(kp->err, "%s: %s\n", kp->cfg->path, text);
	kp->n++;
}

int config_load_keys(struct config *cfg, FILE *err)
{
	struct key_problems kp = { cfg, err, 0 };
	struct keyring *k;

	if (strcasecmp(cfg->dkim_sign, "yes") && strcasecmp(cfg->arc_seal, "yes"))
		return 0;
	k = keyring_load(cfg->dkim_key_dir, key_problem, &kp);
	if (kp.n) {
		keyring_free(k);
		return -1;
	}
	keyring_free(cfg->dkim_keys);
	cfg->dkim_keys = k;
	return 0;
}

int config_is_local_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->ndomains; i++)
		if (!strcasecmp(cfg->domains[i], domain))
			return 1;
	return 0;
}

void config_write_example(FILE *out)
{
	const char *section = "";
	fputs("# postern configuration. Every key is shown with its default;\n"
	      "# a key left out takes the default. Lines starting with # are comments.\n", out);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const struct key *k = &keys[i];
		if (strcmp(section, k->section)) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "\n# %s\n", k->doc);
		if (k->def)
			fprintf(out, "#%s = %s\n", k->name, k->def);
		else
			fprintf(out, "%s = example.org\n", k->name);
	}
}
