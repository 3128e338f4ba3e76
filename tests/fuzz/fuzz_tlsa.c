/*
 * Fuzz target: the TLSA rdata parser and the SMTP usability rule
 * (src/deliver/tlspolicy.c). Invariants (abort() when broken): a record
 * that parses has data inside the input, of length len - 3 and at least 1;
 * a usable record has usage 2 or 3, selector 0 or 1, and a digest of the
 * length its matching type says; the result names are defined for every
 * classification.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/tlspolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsa_rec r;
	char why[128];

	if (tlsa_parse(data, size, &r, why, sizeof why) == 0) {
		if (r.data != data + 3 || r.len != size - 3 || r.len < 1)
			abort();
		if (tlsa_usable(&r)) {
			if (r.usage < 2 || r.usage > 3 || r.selector > 1 || r.mtype > 2)
				abort();
			if ((r.mtype == 1 && r.len != 32) || (r.mtype == 2 && r.len != 64))
				abort();
		}
	} else if (size >= 4) {
		abort();
	}
	if (size >= 2) {
		long e = (long)data[0] | ((long)data[1] << 8);
		const char *n = tlsp_result_name(tlsp_classify(e, data[0] & 1));
		if (e != 0 && (!n || !*n))
			abort();
	}
	return 0;
}
