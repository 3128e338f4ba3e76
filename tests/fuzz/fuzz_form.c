/*
 * Fuzz target: the form body and Cookie header readers (src/web/form.c)
 * over arbitrary bytes. Invariants (abort() when broken): a value found
 * fits its buffer, is NUL-terminated at the length returned and holds no
 * NUL; a decoded form value is never longer than the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "address", "password", "csrf", "a", "" };
	char out[64], *header;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		long n = form_field((const char *)data, size, names[i], out, sizeof out);
		if (n >= 0 && ((size_t)n >= sizeof out || strlen(out) != (size_t)n || (size_t)n > size))
			abort();
	}
	header = malloc(size + 1);
	memcpy(header, data, size);
	header[size] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		long n = form_cookie(header, names[i], out, sizeof out);
		if (n >= 0 && ((size_t)n >= sizeof out || strlen(out) != (size_t)n))
			abort();
	}
	free(header);
	return 0;
}
