/*
 * config - tlsgate.conf, the main configuration (docs/configuration.md).
 *
 * "key = value" lines; blank lines and '#' comments are ignored; a value
 * may be written in double quotes (\" and \\ escapes). Every key is known
 * here, for all programs; each uses the keys it needs. Unknown keys, bad
 * values and keys given twice (except `listen`) are errors
 * "file:line: message"; tg_config_load() then returns -1 and the caller's
 * config is left as tg_config_init() made it. A relative `policy` path is
 * taken relative to the directory of the configuration file.
 */
#ifndef TLSGATE_CONFIG_H
#define TLSGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

#define TG_CONFIG_MAX_LINE 4096
#define TG_CONFIG_MAX_LISTEN 16
#define TG_CONFIG_MAX_MESSAGE 400

#define TG_DEFAULT_MESSAGE \
	"TLS required: set your mail program to use SSL/TLS (IMAP port 993, POP3 port 995, SMTP port 465) or STARTTLS (ports 143, 110, 587)"

enum tg_failure {
	TG_FAILURE_TEMPFAIL,	/* no policy: refuse logins, try again later */
	TG_FAILURE_ALLOW,	/* no policy: let logins through, log it */
};

struct tg_config {
	char *path;		/* the file read, NULL for defaults */
	char *policy;		/* file or directory */
	char *message;		/* text for rejected clients */
	bool log_tls;		/* log an event for TLS sessions too */
	enum tg_failure failure;

	/* tlsgate-policyd */
	char *listen[TG_CONFIG_MAX_LISTEN];	/* "inet:HOST:PORT", "unix:PATH" */
	size_t listen_count;
	char *user, *group;	/* to drop privileges to */
	char *pidfile;
	char *socket_owner, *socket_group;
	unsigned socket_mode;	/* default 0666 */
	char *smtp_reply;	/* status and enhanced code, "530 5.7.0" */
	bool check_unauthenticated;	/* default false: DUNNO without SASL */
	unsigned idle_timeout;	/* seconds */
	unsigned max_connections;
	unsigned max_connections_per_peer;	/* per client address or uid */

	/* tlsgate notify: domains notices may go to besides those the
	 * policy names; space-separated, lower case, without '@' */
	char *notify_domains;
};

void tg_config_init(struct tg_config *cfg);	/* defaults */
void tg_config_free(struct tg_config *cfg);
int tg_config_load(struct tg_config *cfg, const char *path,
		   struct tg_errors *errs);
/* Parses configuration text (tests, fuzzing); `name` is used in errors
 * and to resolve a relative policy path. */
int tg_config_parse(struct tg_config *cfg, const char *name,
		    const char *data, size_t len, struct tg_errors *errs);

#endif
