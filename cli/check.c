/*
 * check - `tlsgate check`: load the configuration and the policy exactly
 * as the daemons would, and say whether they are good.
 *
 * Exit 0 with a summary; 1 with every error as "file:line: message".
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "date.h"
#include "policy.h"
#include "window.h"

static void check_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF | --policy PATH] check [--at YYYY-MM-DD]\n"
		"\n"
		"Validates the configuration and the policy. Prints a summary and\n"
		"the exemptions that have expired or expire within 30 days, and the\n"
		"brownout windows (a warning for each one that is over); exit 0\n"
		"when both are good, 1 with every error as file:line: message.\n"
		"  --at DAY   judge expiry and windows as of DAY instead of today\n");
}

static void print_expiring(const struct tg_policy *policy, int32_t today)
{
	size_t n = tg_policy_exemption_count(policy);
	for (size_t i = 0; i < n; i++) {
		struct tg_exemption_info e;
		char day[TG_DATE_STRLEN];
		tg_policy_exemption(policy, i, &e);
		if (e.until == 0)
			continue;
		long left = tg_date_diff(today, e.until);
		if (left >= 30)
			continue;
		tg_date_format(e.until, day, sizeof(day));
		if (left < 0)
			printf("  expired:  %s:%u %s (until %s)%s%s\n", e.ref.file,
			       e.ref.line, e.subject, day, e.note ? " - " : "",
			       e.note ? e.note : "");
		else
			printf("  expiring: %s:%u %s (until %s, %ld day%s left)%s%s\n",
			       e.ref.file, e.ref.line, e.subject, day, left + 1,
			       left == 0 ? "" : "s", e.note ? " - " : "",
			       e.note ? e.note : "");
	}
}

/* The brownout windows still to come, and a warning for each that is
 * over: harmless, but a test that may have been forgotten. */
static void print_windows(const struct tg_policy *policy, int64_t now)
{
	size_t n = tg_policy_mode_rule_count(policy);
	for (size_t i = 0; i < n; i++) {
		struct tg_mode_rule_info r;
		tg_policy_mode_rule(policy, i, &r);
		for (size_t k = 0; k < r.window_count; k++) {
			char from[32], to[32];
			const struct tg_window *w = &r.windows[k];
			tg_time_format(w->start, from, sizeof(from));
			tg_time_format(w->end, to, sizeof(to));
			if (w->end <= now)
				fprintf(stderr, "%s:%u: warning: the brownout window %s - %s "
					"of %s is over\n", r.ref.file, r.ref.line, from, to,
					r.subject);
			else
				printf("  brownout: %s:%u %s %s - %s%s\n", r.ref.file,
				       r.ref.line, r.subject, from, to,
				       w->start <= now ? " (in force now)" : "");
		}
	}
}

int cmd_check(int argc, char **argv, const struct cli_context *ctx)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "at", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t now = (int64_t)time(NULL);
	int32_t today = tg_date_of((time_t)now);
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			check_usage(stdout);
			return 0;
		case 'a':
			if (cli_parse_at(optarg, &today, &now) < 0) {
				fprintf(stderr, "tlsgate check: --at needs YYYY-MM-DD "
					"or YYYY-MM-DDTHH:MM[:SS]\n");
				return 2;
			}
			break;
		default:
			check_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		check_usage(stderr);
		return 2;
	}

	struct tg_config cfg;
	if (cli_load_config(ctx, &cfg) < 0)
		return 1;
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *policy = tg_policy_load(cfg.policy, &errs);
	if (policy == NULL) {
		cli_print_errors(&errs);
		fprintf(stderr, "tlsgate check: %zu error%s; the policy was not loaded\n",
			tg_errors_total(&errs), tg_errors_total(&errs) == 1 ? "" : "s");
		tg_errors_clear(&errs);
		tg_config_free(&cfg);
		return 1;
	}

	struct tg_policy_stats st;
	tg_policy_stats(policy, today, &st);
	if (cfg.path != NULL)
		printf("configuration %s: ok\n", cfg.path);
	printf("policy %s: ok\n", cfg.policy);
	printf("  files:       %zu\n", st.files);
	printf("  mode rules:  %zu\n", st.mode_rules);
	printf("  accounts:    %zu\n", st.account_subjects);
	printf("  domains:     %zu\n", st.domain_subjects);
	printf("  global rule: %s\n", st.has_global ? "yes" : "no (unlisted accounts are off)");
	printf("  exemptions:  %zu (%zu expired, %zu expiring within 30 days)\n",
	       st.exemptions, st.exemptions_expired, st.exemptions_expiring);
	print_expiring(policy, today);
	print_windows(policy, now);
	tg_policy_free(policy);
	tg_config_free(&cfg);
	return 0;
}
