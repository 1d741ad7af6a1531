/*
 * common - configuration loading shared by the subcommands. See cli.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "date.h"
#include "window.h"

int cli_parse_at(const char *s, int32_t *today, int64_t *now)
{
	size_t len = strlen(s);
	if (len == TG_DATE_STRLEN - 1) {
		char noon[32];
		snprintf(noon, sizeof(noon), "%sT12:00", s);
		if (tg_date_parse(s, len, today) < 0 ||
		    tg_time_parse(noon, strlen(noon), now) < 0)
			return -1;
		return 0;
	}
	if (tg_time_parse(s, len, now) < 0)
		return -1;
	*today = tg_date_of((time_t)*now);
	return 0;
}

void cli_print_errors(const struct tg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
	if (errs->dropped > 0)
		fprintf(stderr, "(%zu more errors not shown)\n", errs->dropped);
}

int cli_load_config(const struct cli_context *ctx, struct tg_config *cfg)
{
	struct tg_errors errs;

	tg_config_init(cfg);
	if (ctx->policy_path != NULL) {
		cfg->policy = strdup(ctx->policy_path);
		cfg->message = strdup(TG_DEFAULT_MESSAGE);
		if (cfg->policy == NULL || cfg->message == NULL) {
			fprintf(stderr, "tlsgate: out of memory\n");
			return -1;
		}
		return 0;
	}
	const char *path = ctx->config_path ? ctx->config_path : TG_DEFAULT_CONFIG;
	if (ctx->config_path == NULL && access(path, F_OK) != 0) {
		fprintf(stderr,
			"tlsgate: no configuration: give -c CONF or --policy PATH "
			"(or create " TG_DEFAULT_CONFIG ")\n");
		return -1;
	}
	tg_errors_init(&errs);
	int r = tg_config_load(cfg, path, &errs);
	cli_print_errors(&errs);
	tg_errors_clear(&errs);
	return r;
}
