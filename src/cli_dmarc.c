/*
 * cli_dmarc: `postern dmarc ...`. Placeholder until the DMARC module lands.
 */
#include <stdio.h>

#include "cli.h"

void cli_dmarc_usage(FILE *out)
{
	fputs("usage: postern dmarc check ... (not yet available)\n", out);
}

int cli_dmarc(const char *config_path, int config_explicit, int argc, char **argv)
{
	(void)config_path;
	(void)config_explicit;
	(void)argc;
	(void)argv;
	cli_dmarc_usage(stderr);
	return 2;
}
