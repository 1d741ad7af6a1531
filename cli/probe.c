/*
 * probe - `tlsgate probe` (not built yet).
 */
#include <stdio.h>

#include "cli.h"

int cmd_probe(int argc, char **argv, const struct cli_context *ctx)
{
	fprintf(stderr, "tlsgate: probe is not available in this build\n");
	return 2;
}
