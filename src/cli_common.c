/*
 * cli_common: what the command-line tools share.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth/msg.h"
#include "cli.h"
#include "lib/util.h"

int cli_dns_setup(const char *config_path, int config_explicit, const struct cli_dns_args *a, struct config **cfg,
		  struct dns_options *dopt)
{
	uint64_t ms;

	*cfg = NULL;
	if ((!a->resolver || config_explicit) && (config_explicit || access(config_path, F_OK) == 0)) {
		*cfg = config_load(config_path, stderr);
		if (!*cfg)
			return 1;
	}
	dopt->resolver = a->resolver ? a->resolver : *cfg ? (*cfg)->dns_resolver : "system";
	dopt->timeout_ms = *cfg ? (*cfg)->dns_timeout_ms : 5000;
	dopt->max_inflight = *cfg ? (unsigned)(*cfg)->dns_max_queries : 256;
	dopt->cache_entries = 0;
	if (a->trust_anchor)
		dopt->trust_anchor = a->trust_anchor;
	else if (a->resolver)
		dopt->trust_anchor = a->dnssec ? "/usr/share/dns/root.key" : "";
	else
		dopt->trust_anchor = *cfg ? (*cfg)->dns_trust_anchor : "";
	if (a->timeout) {
		if (parse_duration_ms(a->timeout, &ms) < 0 || ms == 0) {
			fprintf(stderr, "postern: --dns-timeout %s is not a duration (e.g. 2s)\n", a->timeout);
			config_free(*cfg);
			*cfg = NULL;
			return 2;
		}
		dopt->timeout_ms = ms;
	}
	if (!a->trust_anchor && *dopt->trust_anchor && access(dopt->trust_anchor, R_OK) < 0)
		dopt->trust_anchor = "";
	return 0;
}

#define CLI_MAX_MESSAGE (512ull * 1024 * 1024)

/* Reads a whole file ("-" or NULL: standard input). */
char *cli_read_message(const char *path, size_t *len)
{
	FILE *f = path && strcmp(path, "-") ? fopen(path, "rb") : stdin;
	struct msg_buf b = { 0 };
	char chunk[65536];
	size_t n;
	if (!f) {
		fprintf(stderr, "postern: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > CLI_MAX_MESSAGE) {
			fprintf(stderr, "postern: the message is larger than 512 MiB\n");
			msg_buf_clear(&b);
			if (f != stdin)
				fclose(f);
			return NULL;
		}
		msg_buf_append(&b, chunk, n);
	}
	if (ferror(f)) {
		fprintf(stderr, "postern: cannot read %s\n", path ? path : "standard input");
		msg_buf_clear(&b);
		if (f != stdin)
			fclose(f);
		return NULL;
	}
	if (f != stdin)
		fclose(f);
	msg_buf_append(&b, "", 0);
	*len = b.len;
	return b.data;
}
