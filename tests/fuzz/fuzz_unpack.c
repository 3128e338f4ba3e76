/*
 * Fuzz target: gzip and zip unpacking with its bounds
 * (src/report/unpack.c, zlib and libzip underneath). Invariants checked
 * (abort() when broken):
 *  - output is at most MAX_OUT bytes, NUL-terminated, and never itself a
 *    gzip or zip archive (nesting is refused);
 *  - plain input comes back byte for byte;
 *  - a refusal always says why and returns no buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OUT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL, why[300] = "";
	size_t len = 0;
	enum unpack_format f;
	int rc = unpack_any(data, size, MAX_OUT, &out, &len, &f, why, sizeof why);

	if (rc < 0) {
		if (out || !why[0])
			abort();
		return 0;
	}
	if (!out || len > MAX_OUT || out[len] != '\0' || unpack_detect((unsigned char *)out, len) != UNPACK_PLAIN)
		abort();
	if (f == UNPACK_PLAIN && (len != size || memcmp(out, data, size)))
		abort();
	free(out);
	return 0;
}
