/*
 * report: DMARC aggregate reports and SMTP TLS reports, from whatever
 * arrives (a whole mail, a .xml, .json, .gz or .zip file) to the store.
 *
 *   report_parse:  bytes -> [mime.c: the attachment of a mail]
 *                        -> [unpack.c: gzip or zip, bounded]
 *                        -> [dmarc_xml.c or tlsrpt.c, by the first byte]
 *                        -> struct report
 *   report_save:   struct report -> store (one transaction; a report already
 *                  stored, by reporter and report id, is a duplicate)
 *
 * Everything is bounded by struct report_limits ([reports] max_size and
 * max_records) and the parsers' own named bounds; hostile input gets a
 * reason, never a crash or an unbounded allocation. report_parse is pure.
 *
 * The daemon side (report_job.c) runs this on a worker thread for mail
 * delivered to the [reports] addresses.
 */
#ifndef POSTERN_REPORT_REPORT_H
#define POSTERN_REPORT_REPORT_H

#include <stddef.h>

#include "report/dmarc_xml.h"
#include "report/tlsrpt.h"

struct store;

struct report_limits {
	size_t max_size;    /* bytes of a report after decompression */
	size_t max_records; /* DMARC records, or TLS policies + failure details */
};

/* Input larger than this is refused before anything is parsed: a mail
 * holding a base64 attachment of max_size bytes, with room to spare. */
#define REPORT_MAX_INPUT(lim) ((lim)->max_size / 3 * 4 + (lim)->max_size / 2 + 1024 * 1024)

enum report_kind { REPORT_DMARC, REPORT_TLS };

struct report {
	enum report_kind kind;
	struct dmarc_report *dmarc; /* kind REPORT_DMARC */
	struct tlsrpt_report *tls;  /* kind REPORT_TLS */
	char via[160];              /* how it was found: "mail attachment application/gzip, gzip" */
};

/* Parses data (len bytes). Returns the report (free with report_free), or
 * NULL with the reason in why. */
struct report *report_parse(const char *data, size_t len, const struct report_limits *lim, char *why,
			    size_t whysize);
void report_free(struct report *r);

const char *report_kind_name(enum report_kind k); /* "dmarc", "tls" */
const char *report_org(const struct report *r);
const char *report_id(const struct report *r);
/* DMARC records, or TLS policies. */
size_t report_records(const struct report *r);
/* The messages (DMARC) or sessions (TLS) the report counts. */
long long report_messages(const struct report *r);

/* Whether ip (textual IPv4 or IPv6) is cidr ("192.0.2.1", "192.0.2.0/24",
 * "2001:db8::/32"). An IPv4-mapped IPv6 address matches as IPv4. */
int report_ip_in(const char *ip, const char *cidr);

enum report_save_rc { REPORT_SAVED, REPORT_DUPLICATE, REPORT_SAVE_FAILED };
enum report_save_rc report_save(struct store *st, const struct report *r);
const char *report_save_name(enum report_save_rc rc); /* "stored", "duplicate", "failed" */

#endif
