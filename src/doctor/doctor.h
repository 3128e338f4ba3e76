/*
 * doctor: checks what the world sees of a mail domain, and says how to fix it.
 *
 * `postern doctor [DOMAIN]` asks DNS, through postern's own resolver, what a
 * receiving server would ask about us: MX, the host's addresses, reverse DNS
 * and whether it confirms the HELO name, SPF (one valid record, within the
 * ten-lookup limit, authorising our addresses), DKIM (every key we sign with
 * published and matching), DMARC (a policy, and rua= pointing somewhere that
 * receives), MTA-STS and TLS-RPT records, and our addresses on DNS block and
 * allow lists. Each check ends pass, warn or fail with the exact fix; the
 * records we would have published come out as zone-file lines.
 *
 * The checks are plain sequential code: the command line is the only user,
 * so each lookup runs the event loop until its answer is in.
 */
#ifndef POSTERN_DOCTOR_H
#define POSTERN_DOCTOR_H

#include <stddef.h>

struct dns;
struct store;

enum doctor_status { DOCTOR_PASS, DOCTOR_WARN, DOCTOR_FAIL };

struct doctor_check {
	char *name;   /* "mx", "spf", "dkim s1", ... */
	enum doctor_status status;
	char *detail; /* what was found */
	char *fix;    /* what to do, or NULL */
};

struct doctor_report {
	char *domain, *hostname;
	char **addresses; /* the addresses checked (given, or the host's A/AAAA) */
	size_t naddresses;
	struct doctor_check *checks;
	size_t nchecks;
	char **publish; /* zone-file lines */
	size_t npublish;
	unsigned counts[3]; /* per enum doctor_status */
};

/* A DNS list: zone, and whether it lists good senders. */
struct policy_zone;
struct doctor_list {
	const char *zone;
	int allow;  /* a DNSWL: being listed is good */
	int domain; /* lists domains (asked DOMAIN.ZONE), not addresses */
	/* The configured zone ([dnsbl]), whose rules say what each return
	 * code means; NULL: 127.255.255.x is an error, anything else a hit. */
	const struct policy_zone *rules;
};

struct doctor_options {
	const char *domain;   /* normalised, lower case */
	const char *hostname; /* our HELO name */
	const char *key_dir;  /* DKIM keys as KEY_DIR/DOMAIN/SELECTOR.key ([dkim] key_dir) */
	const char *const *addresses; /* public addresses; NULL/0: the host's A/AAAA */
	size_t naddresses;
	const char *const *our_domains; /* the domains we receive for */
	size_t nour_domains;
	struct store *store;    /* to see whether rua= addresses exist; may be NULL */
	const char *rua;        /* the address to suggest for DMARC reports, or NULL */
	const char *tls_rua;    /* the same for TLS reports, or NULL */
	const struct doctor_list *lists;
	size_t nlists;
	const char *ca_file; /* CAs for the MTA-STS policy fetch; NULL: the system's */
	const char *relay_host; /* [relay] host, whose addresses SPF must allow too; NULL: none */
};

/* Runs every check. The report is the caller's (doctor_report_clear). */
void doctor_run(struct dns *dns, const struct doctor_options *o, struct doctor_report *r);
void doctor_report_clear(struct doctor_report *r);
const char *doctor_status_name(enum doctor_status s);

#endif
