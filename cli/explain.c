/*
 * explain - `tlsgate explain`: the verdict for one login, and why.
 *
 * Exit 0 when a verdict could be given, 2 on bad arguments, a bad
 * configuration or a policy that does not load.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "date.h"
#include "decide.h"
#include "event.h"
#include "policy.h"
#include "window.h"
#include "accountdb.h"

static void explain_usage(FILE *out)
{
	fprintf(out,
		"usage: tlsgate [-c CONF | --policy PATH] explain --user LOGIN\n"
		"           --service imap|pop3|smtp|submission|sieve --ip ADDRESS\n"
		"           --tls none|yes|TLSv1|TLSv1.1|TLSv1.2|TLSv1.3\n"
		"           [--at YYYY-MM-DD|YYYY-MM-DDTHH:MM[:SS]] [--format=text|kv]\n"
		"           [--userdb-mode off|audit|require|none]\n"
		"\n"
		"Prints the verdict (allow, exempt, audit or reject) for one login and\n"
		"the rules that decided it. --tls yes means TLS of unknown version.\n"
		"--at: as of that day (at noon) or moment, brownout windows included.\n"
		"With userdb = in the configuration, the account's tlsgate_mode is\n"
		"asked from Dovecot, as tlsgate-policyd does; --userdb-mode VALUE\n"
		"supposes that value instead (none: no field, the files decide).\n"
		"--format=kv prints one line for scripts:\n"
		"  verdict=... rule=FILE:LINE|userdb|default mode=... [exemption=FILE:LINE]\n"
		"  [brownout=yes] source=file|userdb|default\n");
}

struct explain_args {
	const char *user, *service, *ip, *tls, *at, *format, *userdb_mode;
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
		{ "userdb-mode", required_argument, NULL, 'm' },
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
		case 'm': a->userdb_mode = optarg; break;
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

static bool from_userdb(const struct tg_decision *d)
{
	return d->rule.file != NULL && strcmp(d->rule.file, TG_REF_USERDB) == 0;
}

/* Where the mode came from, in the words of --format=kv. */
static const char *mode_source(const struct tg_decision *d)
{
	return from_userdb(d) ? "userdb" : d->rule.file != NULL ? "file" : "default";
}

/* Which of the refusal texts applies, and why that one. */
static const char *refusal_source_text(const struct tg_decision *d)
{
	switch (tg_refusal_source(d)) {
	case TG_TEXT_BROWNOUT_RULE:
		return "the rule's brownout_message=, as a brownout window is in force";
	case TG_TEXT_BROWNOUT_DEFAULT:
		return "the built-in brownout text, as a brownout window is in force";
	case TG_TEXT_MIN_TLS_RULE:
		return "the rule's min_tls_message=, as the TLS version is below min_tls";
	case TG_TEXT_MIN_TLS_DEFAULT:
		return "the built-in min_tls text, as the TLS version is below min_tls "
		       "and the rule has no min_tls_message=";
	case TG_TEXT_RULE:
		return "the rule's message=";
	case TG_TEXT_CONFIG:
		break;
	}
	return "message from tlsgate.conf (or its default), as the rule has no message=";
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
	else if (from_userdb(d) && cfg->userdb_socket != NULL)
		printf("mode:    %s, from the user database (tlsgate_mode of the account, "
		       "dovecot:%s)\n", tg_mode_name(d->rule_mode), cfg->userdb_socket);
	else if (from_userdb(d))
		printf("mode:    %s, from the user database (as given with --userdb-mode)\n",
		       tg_mode_name(d->rule_mode));
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
		printf("         (%s)\n", refusal_source_text(d));
		break;
	}
}

/* The account's mode from --userdb-mode, or from the user database when
 * the configuration names one. -1 after printing why. */
static int userdb_mode(const struct explain_args *a, struct tg_config *cfg,
		       struct tg_login *login)
{
	char why[600];
	if (a->userdb_mode != NULL) {
		if (strcmp(a->userdb_mode, "none") == 0) {
			login->mode_override = -1;
		} else if ((login->mode_override = tg_mode_field_parse(a->userdb_mode,
							strlen(a->userdb_mode))) < 0) {
			fprintf(stderr, "tlsgate explain: --userdb-mode takes off, audit, require or none\n");
			return -1;
		}
		/* a supposed value, not this database's */
		free(cfg->userdb_socket);
		cfg->userdb_socket = NULL;
		return 0;
	}
	if (cfg->userdb_socket == NULL)
		return 0;
	struct cli_userdb *u = cli_userdb_new(cfg->userdb_socket, cfg->userdb_timeout,
					      "tlsgate explain");
	int mode = -1;
	if (u == NULL)
		snprintf(why, sizeof(why), "out of memory");
	int r = u == NULL ? -1 : cli_userdb_mode(u, login->user, &mode, why, sizeof(why));
	cli_userdb_free(u);
	if (r < 0) {
		fprintf(stderr, "tlsgate explain: %s\n(the servers would answer this login per "
			"failure =; --userdb-mode VALUE asks without the database)\n", why);
		return -1;
	}
	login->mode_override = mode;
	return 0;
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

	if (userdb_mode(&a, &cfg, &login) < 0) {
		tg_policy_free(policy);
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
		printf(" source=%s\n", mode_source(&d));
	} else {
		print_text(&d, &cfg, &login, a.ip);
	}
	tg_policy_free(policy);
	tg_config_free(&cfg);
	return 0;
}
