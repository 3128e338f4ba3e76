/*
 * Fuzz target: the SPF record parser and the macro expander
 * (src/auth/spf.c). The first byte picks the mode; neither may crash, and
 * an expansion must fit its buffer and be NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[4200], out[600], why[256];
	struct spf_request req = { 0 };

	if (size < 1 || size > 4096)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1) {
		spf_record_check(text, why, sizeof why);
		return 0;
	}
	spf_ip_parse(data[0] & 2 ? "2001:db8::1" : "192.0.2.3", &req.ip);
	req.sender = "strong-bad@email.example.com";
	req.helo = "mx.example.com";
	req.receiver = "mx.example.test";
	if (spf_expand_test(&req, "email.example.com", "host.example.com", text, data[0] & 4, out, sizeof out) == 0 &&
	    strlen(out) >= sizeof out)
		abort();
	return 0;
}
