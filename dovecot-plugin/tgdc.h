/*
 * tgdc - the Dovecot passdb's decisions, without Dovecot.
 *
 * Everything the `tlsgate` passdb does that does not need Dovecot lives
 * here, so that it can be unit tested: reading tlsgate.conf, holding and
 * reloading the policy (also from the caller's timer, tgdc_tick()),
 * mapping what Dovecot knows of a login (service name, "secured" state,
 * client and connection address text, the tlsgate_mode, tlsgate_account
 * and forwarded forward_tls fields, the typed name) to a tg_login,
 * deciding, and producing the client's reason text and the event line. passdb-tlsgate.c only copies request fields in and
 * results out.
 *
 * Invariants: tgdc_decide() never fails and never refuses a service it
 * does not know (LMTP, doveadm, ...): such requests are always allowed.
 * It refuses only on a policy verdict `reject`, or - when no policy could
 * ever be loaded and `failure = tempfail` - with TGDC_TEMPFAIL. Messages
 * are passed to the caller's log function, one line each, never holding
 * control characters. One thread calls these functions (Dovecot's auth
 * process is single-threaded); a policy reload reads the files in a
 * thread of its own, which touches nothing but the new snapshot, so that
 * logins go on with the old policy while a large one loads.
 */
#ifndef TLSGATE_TGDC_H
#define TLSGATE_TGDC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define TGDC_DEFAULT_CONFIG "/etc/tlsgate/tlsgate.conf"
#define TGDC_REASON_MAX 512		/* prefix + message + NUL */
#define TGDC_EVENT_MAX 16384		/* = TG_EVENT_MAX_LINE */

/* Dovecot's view of the connection (auth request field "secured"). */
enum tgdc_secured {
	TGDC_SECURED_NONE,	/* no "secured" field */
	TGDC_SECURED_BARE,	/* "secured": trusted network, own address,
				 * or TLS when the client is Postfix */
	TGDC_SECURED_TLS,	/* "secured=tls" */
};

enum tgdc_level { TGDC_LOG_INFO, TGDC_LOG_WARNING, TGDC_LOG_ERROR };
typedef void tgdc_log_fn(void *log_ctx, enum tgdc_level level,
			 const char *line);

struct tgdc;

/* args: the path of tlsgate.conf (2.3: the passdb's `args`, 2.4: its
 * `tlsgate_config` setting), empty for
 * TGDC_DEFAULT_CONFIG. Reads the configuration and loads the policy; every
 * problem is logged. Returns NULL only when out of memory. */
struct tgdc *tgdc_open(const char *args, tgdc_log_fn *log, void *log_ctx);
void tgdc_close(struct tgdc *tg);

struct tgdc_request {
	/* The account: Dovecot's user after auth_username_format, a master
	 * user switch and any passdb `user=` field. */
	const char *user;
	/* The name as the client typed it (NULL if unknown): logged as
	 * login= when the decision is made on another name. */
	const char *login;
	/* tlsgate_account extra field from a passdb (NULL if none): the
	 * account name when the passdb's lookup key differs from `user`
	 * (username_format = %n) without Dovecot changing `user`. */
	const char *account_field;
	const char *service;	/* Dovecot service name: imap, pop3, ... */
	const char *remote_ip;	/* client address text, NULL if unknown */
	/* The address the connection itself came from (Dovecot's real_rip:
	 * a proxy's, when the proxy forwarded the client's); NULL if
	 * unknown. */
	const char *real_remote_ip;
	/* forward_tls field a proxy forwarded (NULL if none): "TLS" when the
	 * client used TLS to the proxy. Believed only from an address in
	 * tlsgate.conf's trusted_proxies, and then it alone says whether the
	 * client used TLS; from anywhere else it is ignored and logged. */
	const char *forward_tls;
	enum tgdc_secured secured;
	const char *mode_field;	/* tlsgate_mode extra field, NULL if none */
	const char *mech;	/* SASL mechanism, NULL if none */
	const char *session;	/* Dovecot session id, NULL if none */
	/* The device, as it names itself, for the event line only (never
	 * decided on): the IMAP ID text login passed (client_id, with
	 * imap_id_retain = yes; NULL if none) and the connection's ports
	 * (0: unknown). */
	const char *client_id;
	unsigned remote_port, local_port;
	time_t now;
};

enum tgdc_action {
	TGDC_ALLOW,		/* let the login through */
	TGDC_REFUSE,		/* refuse; reason holds the client's text */
	TGDC_TEMPFAIL,		/* no policy and failure = tempfail */
};

struct tgdc_result {
	enum tgdc_action action;
	char reason[TGDC_REASON_MAX];
};

/* Polls the policy files (at most once a second; a change starts a
 * reload in the background), then decides. The event
 * line (and any warning) goes to the log function. */
void tgdc_decide(struct tgdc *tg, const struct tgdc_request *req,
		 struct tgdc_result *res);

/* Milliseconds between the checks tgdc_tick() asks for: once a second,
 * and more often while a load runs, so that a loaded policy is put in
 * force soon after it is read. */
#define TGDC_TICK_MSECS 1000
#define TGDC_TICK_LOADING_MSECS 100

/* The caller's timer: does what a login would do before deciding - looks
 * at the policy files (at most once a second, a few stat()s; a change
 * starts a reload in the background), puts a finished reload in force,
 * retries a configuration that failed to load - so that an edit is in
 * force within about a second whether or not logins arrive. Returns the
 * milliseconds until it wants to be called again. */
unsigned int tgdc_tick(struct tgdc *tg, time_t now);

/* Waits for a policy reload in progress (they run in a thread of their
 * own) and puts its result in force. For tests; tgdc_decide() picks up a
 * finished reload by itself. */
void tgdc_finish_reload(struct tgdc *tg);

/* Pieces, exposed for tests. */

/* The account name a login is decided on: a non-empty tlsgate_account
 * field, else the user. */
const char *tgdc_account(const struct tgdc_request *req);

/* enum tg_service for a Dovecot service name, -1 for others. */
int tgdc_service(const char *service);
/* enum tg_tls for a service and secured state: secured=tls is TLS
 * (version unknown); a bare "secured" is TLS only for smtp (Postfix sends
 * it for TLS sessions), elsewhere it is plaintext from a trusted address. */
int tgdc_tls(int service, enum tgdc_secured secured);
/* enum tg_mode of a tlsgate_mode value; -1 for NULL or empty, -2 for a
 * value that is not off, audit or require. */
int tgdc_mode_field(const char *value);
/* The text a refused client sees: IMAP "[PRIVACYREQUIRED] msg", POP3
 * "[SYS/PERM] msg", others msg. Bytes outside printable ASCII become '?'.
 * Returns buf. */
char *tgdc_reason(int service, const char *message, char *buf, size_t size);

/* A password nobody knows ("{PLAIN}" scheme text without the prefix), for a
 * refusal in a credentials lookup (CRAM-MD5, DIGEST-MD5, SCRAM-*): handing
 * the mechanism this instead of refusing at the lookup lets the exchange
 * run to the client's proof and fail there, exactly like a wrong password,
 * so the server's replies do not tell which accounts require TLS. 32
 * random hex digits from getrandom(); buf must hold TGDC_DECOY_SIZE. */
#define TGDC_DECOY_SIZE 48
void tgdc_decoy_password(char *buf, size_t size);

/* Mechanisms in Dovecot's auth_mechanisms that skip every passdb, so that
 * the tlsgate passdb never sees their logins (ANONYMOUS). Writes the
 * warning to log when there are any; returns how many. */
int tgdc_check_mechanisms(const char *mechanisms, tgdc_log_fn *log, void *log_ctx);

#endif
