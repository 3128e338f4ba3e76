/*
 * Fuzz target: the SMTP AUTH parsers (src/smtp/sasl.c). Every input must
 * be handled without a crash; whatever PLAIN accepts must be within its
 * bounds, and base64 must round-trip: decoding what we encode gives the
 * input back, and encoding what decodes gives the canonical text back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[4096], out[4096], enc[4 * 4096 / 3 + 8], back[4096];
	const char *ini;
	struct sasl_creds c;
	long n;

	if (size >= sizeof line / 2)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	sasl_parse_auth(line, &ini);
	if (sasl_plain(line, &c) == SASL_OK) {
		if (strlen(c.user) == 0 || strlen(c.user) > SASL_MAX_USER || strlen(c.password) == 0 ||
		    strlen(c.password) > SASL_MAX_PASSWORD)
			abort();
	}
	sasl_login_answer(line, 1, out, SASL_MAX_USER + 1);
	sasl_login_answer(line, 0, out, SASL_MAX_PASSWORD + 1);
	n = sasl_b64_decode(line, size, out, sizeof out);
	if (n >= 0 && !(size == 1 && line[0] == '=')) {
		sasl_b64_encode(out, (size_t)n, enc);
		if (strcmp(enc, line))
			abort(); /* strict decoding accepts only the canonical text */
	}
	sasl_b64_encode((const char *)data, size, enc);
	n = sasl_b64_decode(enc, strlen(enc), back, sizeof back);
	if (n != (long)size || memcmp(back, data, size))
		abort();
	return 0;
}
