/*
 * Fuzz target: the DMARC aggregate report parser (src/report/dmarc_xml.c,
 * expat underneath). Invariants checked (abort() when broken):
 *  - a report parsed has a non-empty report_id, a policy domain, at most
 *    MAX_RECORDS records, each with a source_ip that is an IP address, a
 *    count >= 0, and dkim and spf set (reported or derived);
 *  - a refusal always says why; parsing twice gives the same answer.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/dmarc_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[300] = "", why2[300] = "";
	struct dmarc_report *r = dmarc_xml_parse((const char *)data, size, MAX_RECORDS, why, sizeof why);
	struct dmarc_report *again = dmarc_xml_parse((const char *)data, size, MAX_RECORDS, why2, sizeof why2);

	if (!r != !again)
		abort();
	if (!r) {
		if (!why[0] || strcmp(why, why2))
			abort();
		return 0;
	}
	if (!r->r.report_id || !*r->r.report_id || !r->r.domain || !r->r.org_name || r->r.nrecords > MAX_RECORDS ||
	    r->r.nrecords != again->r.nrecords)
		abort();
	for (size_t i = 0; i < r->r.nrecords; i++) {
		const struct store_dmarc_record *d = &r->r.records[i];
		unsigned char buf[16];
		if (!d->source_ip || (inet_pton(AF_INET, d->source_ip, buf) != 1 && inet_pton(AF_INET6, d->source_ip, buf) != 1))
			abort();
		if (d->count < 0 || !d->dkim || !d->spf)
			abort();
	}
	dmarc_report_free(r);
	dmarc_report_free(again);
	return 0;
}
