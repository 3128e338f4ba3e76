/*
 * Fuzz target: the MIME walker that finds a report attachment
 * (src/report/mime.c). Invariants checked (abort() when broken):
 *  - the result is -1, 0 or 1, and the same on a second run;
 *  - a part found is at most max_out bytes, NUL-terminated, with a
 *    lower-case content type; nothing is returned otherwise;
 *  - a failure or a miss always says why.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_found f, g;
	char why[300] = "", why2[300];
	int rc = mime_find_report((const char *)data, size, MAX_OUT, &f, why, sizeof why);
	int rc2 = mime_find_report((const char *)data, size, MAX_OUT, &g, why2, sizeof why2);

	if (rc < -1 || rc > 1 || rc != rc2)
		abort();
	if (rc == 1) {
		if (!f.data || f.len > MAX_OUT || f.data[f.len] != '\0' || g.len != f.len || memcmp(f.data, g.data, f.len))
			abort();
		for (const char *p = f.content_type; *p; p++)
			if (isupper((unsigned char)*p))
				abort();
	} else if (f.data || !why[0]) {
		abort();
	}
	free(f.data);
	free(g.data);
	return 0;
}
