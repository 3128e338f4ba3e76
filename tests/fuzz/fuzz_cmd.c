/*
 * Fuzz target: SMTP command-line parsers (src/smtp/cmd.c). Every input must
 * be handled without a crash, and an accepted path must be re-parseable to
 * itself (the canonical form is stable).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[1024], out[600], again[600], wrapped[620];
	const char *arg, *rest;
	struct mail_params mp;
	uint64_t n;
	int last;

	if (size >= sizeof line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	cmd_verb(line, &arg);
	cmd_parse_mail_params(line, &mp);
	cmd_parse_rcpt_params(line);
	cmd_parse_bdat(line, &n, &last);
	for (int utf8 = 0; utf8 < 2; utf8++) {
		if (cmd_parse_path(line, 1, utf8, out, sizeof out, &rest) == PATH_OK && out[0]) {
			snprintf(wrapped, sizeof wrapped, "<%s>", out);
			if (cmd_parse_path(wrapped, 0, 1, again, sizeof again, &rest) != PATH_OK || strcmp(out, again))
				abort();
		}
	}
	return 0;
}
