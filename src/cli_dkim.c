/*
 * cli_dkim: `postern dkim ...`. Placeholder until the DKIM module lands.
 */
#include <stdio.h>

#include "cli.h"

void cli_dkim_usage(FILE *out)
{
	fputs("usage: postern dkim keygen|sign|verify ... (not yet available)\n", out);
}

int cli_dkim(const char *config_path, int config_explicit, int argc, char **argv)
{
	(void)config_path;
	(void)config_explicit;
	(void)argc;
	(void)argv;
	cli_dkim_usage(stderr);
	return 2;
}
