/*
 * dmarc_xml: the DMARC aggregate report (RFC 7489 appendix C; the DMARC 2.0
 * namespace urn:ietf:params:xml:ns:dmarc-2.0; the old draft namespace
 * http://dmarc.org/dmarc-xml/0.1) parsed into the store's report struct.
 *
 * Pure: bytes in, report or reason out. Parsed with expat, and hostile XML
 * is refused within fixed bounds:
 *   - any DOCTYPE is refused (so no entity can be declared: no billion
 *     laughs, no external entity reading a local file); expat's own
 *     amplification limit is also set, and no external entity is ever
 *     loaded (no handler for them exists);
 *   - nesting deeper than DMARC_XML_MAX_DEPTH, a text field longer than
 *     DMARC_XML_MAX_FIELD bytes, more than max_records records, more than
 *     DMARC_XML_MAX_AUTH auth results in a record: refused;
 *   - invalid UTF-8 and anything not well-formed: refused with expat's
 *     reason and the line and column.
 * Documents may declare UTF-8, US-ASCII, ISO-8859-1, UTF-16 (expat's own)
 * or windows-1252 (mapped here; some reporters use it).
 *
 * Leniency, because real reporters are sloppy: <identities> is taken for
 * <identifiers> (old Google reports), dates may be decimals ("1337270400.0"),
 * unknown elements and stray text are ignored, org_name may be empty. When
 * policy_evaluated has no dkim or spf (old reports), they are derived from
 * auth_results: pass when a result is pass for a domain equal to the
 * header_from domain or a parent or child of it (relaxed alignment, with the
 * organisational domain approximated by the domain tree).
 */
#ifndef POSTERN_REPORT_DMARC_XML_H
#define POSTERN_REPORT_DMARC_XML_H

#include <stddef.h>

#include "store/store.h"

#define DMARC_XML_MAX_DEPTH 16
#define DMARC_XML_MAX_FIELD 1024
#define DMARC_XML_MAX_AUTH 32 /* dkim plus spf results in one record */

struct dmarc_report {
	struct store_dmarc_report r; /* what is stored; points into this object */
	struct store_dmarc_record *records;
	size_t cap;
	char **strings; /* every string above, owned */
	size_t nstrings, capstrings;
};

/* Parses an aggregate report. Returns the report (free with
 * dmarc_report_free), or NULL with the reason in why. */
struct dmarc_report *dmarc_xml_parse(const char *xml, size_t len, size_t max_records, char *why, size_t whysize);
void dmarc_report_free(struct dmarc_report *r);

#endif
