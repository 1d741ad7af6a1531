/*
 * notify - `tlsgate notify` (not built yet).
 */
#include <stdio.h>

#include "cli.h"

int cmd_notify(int argc, char **argv, const struct cli_context *ctx)
{
	fprintf(stderr, "tlsgate: notify is not available in this build\n");
	return 2;
}
