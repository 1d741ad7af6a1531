/*
 * report - `tlsgate report` (not built yet).
 */
#include <stdio.h>

#include "cli.h"

int cmd_report(int argc, char **argv, const struct cli_context *ctx)
{
	fprintf(stderr, "tlsgate: report is not available in this build\n");
	return 2;
}
