/*
 * report - what `tlsgate report` and `tlsgate notify` share: reading the
 * logs of a time window into a tally, with the policy when there is one.
 *
 * The policy is loaded when -c, --policy or the default configuration file
 * is there; without one the "would break" figures come from the verdicts
 * in the events (tally.h). A configuration that is named but does not load
 * is an error.
 */
#ifndef TLSGATE_REPORT_H
#define TLSGATE_REPORT_H

#include <stdint.h>

#include "cli.h"
#include "policy.h"
#include "tally.h"

struct report_input {
	const char *since, *until;	/* logtime_parse_arg() forms, or NULL */
	const char *domain;		/* only this domain, or NULL */
	const char *at;			/* "today" for decisions, YYYY-MM-DD */
	char **files;			/* none: stdin */
	int nfiles;
};

struct report_data {
	struct tally tally;
	struct tg_policy *policy;	/* NULL: none */
	char *policy_path;
	int32_t today;
	char *notify_domains;		/* tlsgate.conf notify_domains, or NULL */
};

/* Returns 0, or the exit status (2) after printing the error. */
int report_collect(const struct cli_context *ctx, const struct report_input *in,
		   struct report_data *data, const char *progname);
void report_data_free(struct report_data *data);
/* Only the configuration part of report_collect: the policy and
 * notify_domains into data (policy NULL without a configuration), the
 * user database socket when userdb_socket is not NULL. Returns 0, or -1
 * after printing the error. */
int report_load_policy(const struct cli_context *ctx, struct report_data *data,
		       char **userdb_socket, unsigned *userdb_timeout, const char *progname);

#endif
