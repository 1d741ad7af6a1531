/*
 * accountdb - the account database for the CLI tools (`explain`, `report`,
 * `notify`): an account's tlsgate_mode from Dovecot's auth-userdb socket
 * (`userdb = dovecot:PATH` in tlsgate.conf), one blocking look-up at a
 * time over one connection (lib/authmaster).
 *
 * A mode that is not off, audit or require is ignored with a warning on
 * stderr, as the Dovecot module and tlsgate-policyd do; an unknown
 * account has no mode (-1): the files decide.
 *
 * Error contract: cli_userdb_mode() returns -1 with `why` naming the
 * socket and what to change when Dovecot cannot be asked or answers FAIL;
 * the next call connects again.
 */
#ifndef TLSGATE_CLI_ACCOUNTDB_H
#define TLSGATE_CLI_ACCOUNTDB_H

#include <stddef.h>

struct cli_userdb;

/* NULL when out of memory. timeout: seconds per look-up. */
struct cli_userdb *cli_userdb_new(const char *socket, unsigned timeout,
				  const char *progname);
void cli_userdb_free(struct cli_userdb *u);

/* 0 with *mode: -1 (no mode: the files decide) or an enum tg_mode. */
int cli_userdb_mode(struct cli_userdb *u, const char *user, int *mode,
		    char *why, size_t whylen);

#endif
