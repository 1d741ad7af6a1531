/*
 * accountdb - blocking account look-ups for the CLI. See accountdb.h.
 */
#include "accountdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authmaster.h"
#include "errors.h"

struct cli_userdb {
	struct tg_am_conn conn;		/* conn.fd -1: not connected */
	char *socket;
	unsigned timeout;
	const char *progname;
};

struct cli_userdb *cli_userdb_new(const char *socket, unsigned timeout,
				  const char *progname)
{
	struct cli_userdb *u = calloc(1, sizeof(*u));
	if (u == NULL || (u->socket = strdup(socket)) == NULL) {
		free(u);
		return NULL;
	}
	u->conn.fd = -1;
	u->timeout = timeout;
	u->progname = progname;
	return u;
}

void cli_userdb_free(struct cli_userdb *u)
{
	if (u == NULL)
		return;
	tg_am_close(&u->conn);
	free(u->socket);
	free(u);
}

int cli_userdb_mode(struct cli_userdb *u, const char *user, int *mode,
		    char *why, size_t whylen)
{
	struct tg_am_reply r;
	*mode = -1;
	if (u->conn.fd < 0 && tg_am_connect(&u->conn, u->socket, false, why, whylen) < 0)
		return -1;
	if (tg_am_lookup(&u->conn, user, (int)u->timeout * 1000, &r, why, whylen) < 0)
		return -1;
	if (r.status == TG_AM_FAIL) {
		tg_am_fail_text(&u->conn, &r, why, whylen);
		return -1;
	}
	if (r.status == TG_AM_FOUND && r.mode >= 0) {
		*mode = r.mode;
	} else if (r.status == TG_AM_FOUND && r.mode == TG_AM_MODE_INVALID) {
		char shown[128];
		fprintf(stderr, "%s: user %s: ignoring tlsgate_mode=\"%s\" from the user "
			"database (want off, audit or require): the policy files decide\n",
			u->progname, tg_sanitize(user, strlen(user), 64, shown, sizeof(shown)),
			r.mode_text);
	}
	return 0;
}
