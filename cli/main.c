/*
 * main - `tlsgate`: global options, then one subcommand.
 *
 *   tlsgate [-c CONF | --policy PATH] COMMAND [ARGS]
 *
 * Exit status: as the subcommand says; 2 for usage errors here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv, const struct cli_context *ctx);
	const char *summary;
} commands[] = {
	{ "check", cmd_check, "validate the configuration and policy, print a summary" },
	{ "explain", cmd_explain, "show the verdict for one login, and why" },
	{ "report", cmd_report, "who still uses plaintext? (reads event lines from logs)" },
	{ "notify", cmd_notify, "write notices to accounts still seen in plaintext" },
	{ "probe", cmd_probe, "check a server's TLS before a domain is enforced" },
	{ "autoconfig", cmd_autoconfig, "write mail client setup files that offer TLS only" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF | --policy PATH] COMMAND [ARGS]\n"
		"\n"
		"  -c CONF         configuration file (default " TG_DEFAULT_CONFIG ")\n"
		"  --policy PATH   use this policy file or directory, no configuration file\n"
		"  -h, --help      this help; COMMAND --help for a command's own\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	struct cli_context ctx = { .progname = "tlsgate" };
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(arg, "-c") == 0 && i + 1 < argc) {
			ctx.config_path = argv[++i];
		} else if (strncmp(arg, "-c", 2) == 0 && arg[2] != '\0') {
			ctx.config_path = arg + 2;
		} else if (strcmp(arg, "--policy") == 0 && i + 1 < argc) {
			ctx.policy_path = argv[++i];
		} else if (strncmp(arg, "--policy=", 9) == 0) {
			ctx.policy_path = arg + 9;
		} else {
			fprintf(stderr, "tlsgate: unknown or incomplete option '%s'\n", arg);
			usage(stderr);
			return 2;
		}
	}
	if (ctx.config_path != NULL && ctx.policy_path != NULL) {
		fprintf(stderr, "tlsgate: give -c or --policy, not both\n");
		return 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t k = 0; k < NCOMMANDS; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].run(argc - i, argv + i, &ctx);
	fprintf(stderr, "tlsgate: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
