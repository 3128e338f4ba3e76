/*
 * cli_arc: `postern arc ...`. Placeholder until the ARC module lands.
 */
#include <stdio.h>

#include "cli.h"

void cli_arc_usage(FILE *out)
{
	fputs("usage: postern arc verify|sign ... (not yet available)\n", out);
}

int cli_arc(const char *config_path, int config_explicit, int argc, char **argv)
{
	(void)config_path;
	(void)config_explicit;
	(void)argc;
	(void)argv;
	cli_arc_usage(stderr);
	return 2;
}
