/*
 * cli - what the subcommands of `tlsgate` share: the global options and
 * loading the configuration they name.
 *
 * Subcommands return the process exit status; they print errors to
 * stderr and never call exit() themselves.
 */
#ifndef TLSGATE_CLI_H
#define TLSGATE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "errors.h"

#define TG_DEFAULT_CONFIG "/etc/tlsgate/tlsgate.conf"

struct cli_context {
	const char *config_path;	/* -c; NULL: the default, if present */
	const char *policy_path;	/* --policy: no config file needed */
	const char *progname;
};

/* Fills cfg from -c / --policy / the default configuration file. Prints
 * every error to stderr and returns -1 on failure. */
int cli_load_config(const struct cli_context *ctx, struct tg_config *cfg);
/* --at of check and explain: a day YYYY-MM-DD (judged at noon) or a moment
 * YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]. Fills today and now; -1 if neither. */
int cli_parse_at(const char *s, int32_t *today, int64_t *now);
/* Prints each collected error on its own line to stderr. */
void cli_print_errors(const struct tg_errors *errs);

int cmd_check(int argc, char **argv, const struct cli_context *ctx);
int cmd_explain(int argc, char **argv, const struct cli_context *ctx);
int cmd_report(int argc, char **argv, const struct cli_context *ctx);
int cmd_notify(int argc, char **argv, const struct cli_context *ctx);
int cmd_probe(int argc, char **argv, const struct cli_context *ctx);
int cmd_autoconfig(int argc, char **argv, const struct cli_context *ctx);

#endif
