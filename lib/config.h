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
#include "netaddr.h"

#define TG_CONFIG_MAX_LINE 4096
#define TG_CONFIG_MAX_LISTEN 16
#define TG_CONFIG_MAX_MESSAGE 400
#define TG_CONFIG_MAX_PROXIES 64

#define TG_DEFAULT_MESSAGE \
	"TLS required: set your mail program to use SSL/TLS (IMAP port 993, POP3 port 995, SMTP port 465) or STARTTLS (ports 143, 110, 587)"

/* A server name and port published to mail clients (tlsgate autoconfig). */
struct tg_endpoint {
	char *host;		/* NULL: not published */
	unsigned port;
};

#define TG_CONFIG_MAX_AUTOCONFIG_NAME 64

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

	/* Dovecot module: the proxies whose forwarded client TLS state
	 * (forward_tls) is believed; empty: nobody's. */
	struct tg_net trusted_proxies[TG_CONFIG_MAX_PROXIES];
	size_t trusted_proxy_count;

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

	/* tlsgate autoconfig: what mail clients are told (TLS only) */
	struct tg_endpoint autoconfig_imap;	/* implicit TLS, default 993 */
	struct tg_endpoint autoconfig_pop3;	/* implicit TLS, default 995 */
	struct tg_endpoint autoconfig_submission; /* 465 TLS or 587 STARTTLS */
	char *autoconfig_name;	/* provider name shown by clients */
	/* The account database: Dovecot's auth-master socket (userdb =
	 * dovecot:PATH), NULL when not set. Read by tlsgate-policyd and the
	 * CLI; the Dovecot module has the fields of the login already. */
	char *userdb_socket;
	unsigned userdb_cache_ttl;	/* seconds; 0: no cache */
	unsigned userdb_cache_size;	/* entries at most */
	unsigned userdb_timeout;	/* seconds a look-up may take */
	unsigned max_connections_per_peer;	/* per client address or uid */

	/* tlsgate notify: domains notices may go to besides those the
	 * policy names; space-separated, lower case, without '@' */
	char *notify_domains;
};

#define TG_USERDB_DEFAULT_TTL 60
#define TG_USERDB_DEFAULT_CACHE_SIZE 2000000
#define TG_USERDB_MAX_CACHE_SIZE 50000000
#define TG_USERDB_DEFAULT_TIMEOUT 5
#define TG_USERDB_MAX_TIMEOUT 60

void tg_config_init(struct tg_config *cfg);	/* defaults */
void tg_config_free(struct tg_config *cfg);
int tg_config_load(struct tg_config *cfg, const char *path,
		   struct tg_errors *errs);
/* Parses configuration text (tests, fuzzing); `name` is used in errors
 * and to resolve a relative policy path. */
int tg_config_parse(struct tg_config *cfg, const char *name,
		    const char *data, size_t len, struct tg_errors *errs);

#endif
