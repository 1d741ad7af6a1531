/*
 * explain - `tlsgate explain`: the verdict for one login, and why.
 *
 * Exit 0 when a verdict could be given, 2 on bad arguments, a bad
 * configuration or a policy that does not load.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "date.h"
#include "decide.h"
#include "event.h"
#include "policy.h"
#include "window.h"

static void explain_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF | --policy PATH] explain --user LOGIN\n"
		"           --service imap|pop3|smtp|submission|sieve --ip ADDRESS\n"
		"           --tls none|yes|TLSv1|TLSv1.1|TLSv1.2|TLSv1.3\n"
		"           [--at YYYY-MM-DD|YYYY-MM-DDTHH:MM[:SS]] [--format=text|kv]\n"
		"\n"
		"Prints the verdict (allow, exempt, audit or reject) for one login and\n"
		"the rules that decided it. --tls yes means TLS of unknown version.\n"
		"--at: as of that day (at noon) or moment, brownout windows included.\n"
		"--format=kv prints one line for scripts:\n"
		"  verdict=... rule=FILE:LINE mode=... [exemption=FILE:LINE] [brownout=yes]\n");
}

struct explain_args {
	const char *user, *service, *ip, *tls, *at, *format;
};

static int parse_args(int argc, char **argv, struct explain_args *a)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "user", required_argument, NULL, 'u' },
		{ "service", required_argument, NULL, 's' },
		{ "ip", required_argument, NULL, 'i' },
		{ "tls", required_argument, NULL, 't' },
		{ "at", required_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h': return 1;
		case 'u': a->user = optarg; break;
		case 's': a->service = optarg; break;
		case 'i': a->ip = optarg; break;
		case 't': a->tls = optarg; break;
		case 'a': a->at = optarg; break;
		case 'f': a->format = optarg; break;
		default: return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tlsgate explain: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (a->user == NULL || a->service == NULL || a->ip == NULL || a->tls == NULL) {
		fprintf(stderr, "tlsgate explain: --user, --service, --ip and --tls are required\n");
		return -1;
	}
	return 0;
}

static void print_text(const struct tg_decision *d, const struct tg_config *cfg,
		       const struct tg_login *login, const char *ip)
{
	char rule[600], ex[600], day[TG_DATE_STRLEN];

	printf("verdict: %s\n", tg_verdict_name(d->verdict));
	printf("login:   %s via %s from %s, %s\n", login->user,
	       tg_service_name(login->service), ip,
	       login->tls == TG_TLS_NONE ? "plaintext" :
	       login->tls == TG_TLS_UNKNOWN ? "TLS (version unknown)" :
	       tg_tls_name(login->tls));
	if (d->rule.file == NULL)
		printf("mode:    off (no rule for this account, its domain or '*')\n");
	else
		printf("mode:    %s, from the rule at %s%s%s\n",
		       tg_mode_name(d->rule_mode),
		       tg_rule_ref_format(&d->rule, rule, sizeof(rule)),
		       d->rule_note ? " - " : "", d->rule_note ? d->rule_note : "");
	if (d->enforce_from != 0)
		printf("         enforced from %s%s\n",
		       tg_date_format(d->enforce_from, day, sizeof(day)),
		       d->mode == TG_MODE_AUDIT ? "; until then it acts as audit" : "");
	if (d->brownout) {
		char from[32], to[32];
		printf("         brownout window %s - %s in force: acts as require\n",
		       tg_time_format(d->window.start, from, sizeof(from)),
		       tg_time_format(d->window.end, to, sizeof(to)));
	}
	if (d->tls_below_min)
		printf("         TLS below the rule's min_tls=%s counts as plaintext\n",
		       tg_tls_name(d->min_tls));

	switch (d->verdict) {
	case TG_VERDICT_ALLOW:
		printf("why:     %s\n", d->mode == TG_MODE_OFF ?
		       "TLS is not required for this login" : "the login uses TLS");
		break;
	case TG_VERDICT_EXEMPT:
		printf("why:     plaintext is allowed by the exemption at %s%s%s\n",
		       tg_rule_ref_format(&d->exemption, ex, sizeof(ex)),
		       d->exemption_note ? " - " : "",
		       d->exemption_note ? d->exemption_note : "");
		break;
	case TG_VERDICT_AUDIT:
		printf("why:     plaintext would be rejected; audit mode lets it through and logs it\n");
		break;
	case TG_VERDICT_REJECT:
		printf("why:     plaintext is not allowed for this login\n");
		char text[TG_CONFIG_MAX_MESSAGE + 1];
		printf("client sees: %s\n", tg_refusal_text(d, cfg->message, text, sizeof(text)));
		break;
	}
}

int cmd_explain(int argc, char **argv, const struct cli_context *ctx)
{
	struct explain_args a;
	int r = parse_args(argc, argv, &a);
	if (r != 0) {
		explain_usage(r > 0 ? stdout : stderr);
		return r > 0 ? 0 : 2;
	}

	struct tg_login login = { .user = a.user, .mode_override = -1 };
	struct tg_addr client;
	int v;
	if ((v = tg_service_parse(a.service, strlen(a.service))) < 0) {
		fprintf(stderr, "tlsgate explain: unknown service '%s' (imap, pop3, smtp, submission, sieve)\n", a.service);
		return 2;
	}
	login.service = (enum tg_service)v;
	if (tg_addr_parse(a.ip, strlen(a.ip), &client) < 0) {
		fprintf(stderr, "tlsgate explain: '%s' is not an IPv4 or IPv6 address\n", a.ip);
		return 2;
	}
	login.client = &client;
	if ((v = tg_tls_parse(a.tls, strlen(a.tls))) < 0) {
		fprintf(stderr, "tlsgate explain: --tls takes none, yes, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3\n");
		return 2;
	}
	login.tls = (enum tg_tls)v;
	login.now = (int64_t)time(NULL);
	login.today = tg_date_of((time_t)login.now);
	if (a.at != NULL && cli_parse_at(a.at, &login.today, &login.now) < 0) {
		fprintf(stderr, "tlsgate explain: --at needs a day YYYY-MM-DD or a "
			"time YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]\n");
		return 2;
	}
	int kv = 0;
	if (a.format != NULL) {
		if (strcmp(a.format, "kv") == 0)
			kv = 1;
		else if (strcmp(a.format, "text") != 0) {
			fprintf(stderr, "tlsgate explain: --format takes text or kv\n");
			return 2;
		}
	}

	struct tg_config cfg;
	if (cli_load_config(ctx, &cfg) < 0)
		return 2;
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *policy = tg_policy_load(cfg.policy, &errs);
	if (policy == NULL) {
		cli_print_errors(&errs);
		tg_errors_clear(&errs);
		tg_config_free(&cfg);
		return 2;
	}

	struct tg_decision d;
	tg_decide(policy, &login, &d);
	if (kv) {
		char rule[600], ex[600];
		printf("verdict=%s rule=%s mode=%s", tg_verdict_name(d.verdict),
		       tg_rule_ref_format(&d.rule, rule, sizeof(rule)),
		       tg_mode_name(d.mode));
		if (d.exemption.file != NULL)
			printf(" exemption=%s",
			       tg_rule_ref_format(&d.exemption, ex, sizeof(ex)));
		if (d.brownout)
			printf(" brownout=yes");
		printf("\n");
	} else {
		print_text(&d, &cfg, &login, a.ip);
	}
	tg_policy_free(policy);
	tg_config_free(&cfg);
	return 0;
}
