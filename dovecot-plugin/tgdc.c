/*
 * tgdc - the Dovecot passdb's decisions, without Dovecot. See tgdc.h.
 */
#include "tgdc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "date.h"
#include "decide.h"
#include "errors.h"
#include "event.h"
#include "imapid.h"
#include "names.h"
#include "netaddr.h"
#include "policy.h"
#include "reload.h"
#include "text.h"

_Static_assert(TGDC_EVENT_MAX == TG_EVENT_MAX_LINE, "event buffer size");

#define LOG_PREFIX "tlsgate passdb: "
/* How often the configuration file is looked at again after it failed to
 * load, and how often "no policy" is repeated in the log. */
#define RETRY_SECONDS 1
#define NO_POLICY_LOG_SECONDS 60

struct tgdc {
	tgdc_log_fn *log;
	void *log_ctx;
	char *config_path;
	struct tg_config cfg;
	bool config_loaded;
	/* After a failed configuration load: the file's state then. */
	bool config_missing;
	struct stat config_failed_st;
	time_t config_checked;		/* last look at a failed configuration */
	time_t no_policy_logged;

	/* The policy in force and its reloads, which run in a thread of
	 * their own so that reading a large policy never holds up logins
	 * (NULL until the configuration named a policy). */
	struct tg_holder *holder;
};

static void say(struct tgdc *tg, enum tgdc_level level, const char *fmt, ...)
	TG_PRINTF(3, 4);

static void say(struct tgdc *tg, enum tgdc_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	tg->log(tg->log_ctx, level, line);
}

/* Logs every collected error, then a summary line. */
static void say_errors(struct tgdc *tg, struct tg_errors *errs,
		       const char *summary)
{
	for (size_t i = 0; i < errs->count; i++)
		say(tg, TGDC_LOG_ERROR, LOG_PREFIX "%s", errs->msgs[i]);
	if (errs->dropped > 0)
		say(tg, TGDC_LOG_ERROR, LOG_PREFIX "%zu more errors",
		    errs->dropped);
	say(tg, TGDC_LOG_ERROR, LOG_PREFIX "%s", summary);
	tg_errors_clear(errs);
}

static const struct tg_policy *current_policy(const struct tgdc *tg)
{
	return tg->holder != NULL ? tg_holder_current(tg->holder) : NULL;
}

static void say_policy_loaded(struct tgdc *tg, const char *verb)
{
	say(tg, TGDC_LOG_INFO, LOG_PREFIX "policy %s from %s (%zu mode rules, %zu exemptions)",
	    verb, tg->cfg.policy, tg_policy_mode_rule_count(current_policy(tg)),
	    tg_policy_exemption_count(current_policy(tg)));
}

static bool errors_mention(const struct tg_errors *errs, const char *text)
{
	for (size_t i = 0; i < errs->count; i++)
		if (strstr(errs->msgs[i], text) != NULL)
			return true;
	return false;
}

/* Logs the outcome of a load the holder finished (r: 1 in force, -1
 * failed with errs, 0 nothing finished). */
static void report_load(struct tgdc *tg, int r, struct tg_errors *errs,
			const char *verb)
{
	if (r > 0) {
		say_policy_loaded(tg, verb);
		return;
	}
	if (r == 0)
		return;
	/* Dovecot caps the auth process's address space (vsz_limit), and a
	 * reload holds the old and the new policy at once. */
	bool oom = errors_mention(errs, "out of memory");
	say_errors(tg, errs, current_policy(tg) != NULL ?
		   "policy not reloaded: the previous policy stays in force" :
		   tg->cfg.failure == TG_FAILURE_ALLOW ?
		   "no policy loaded: logins are allowed (failure = allow)" :
		   "no policy loaded: logins are refused with a temporary failure (failure = tempfail)");
	if (oom)
		say(tg, TGDC_LOG_ERROR, LOG_PREFIX "%s",
		    "a policy load ran out of memory: raise `vsz_limit` in `service auth { }` (docs/dovecot.md)");
}

void tgdc_finish_reload(struct tgdc *tg)
{
	struct tg_errors errs;

	if (tg->holder == NULL)
		return;
	tg_errors_init(&errs);
	report_load(tg, tg_holder_finish(tg->holder, &errs), &errs, "reloaded");
	tg_errors_clear(&errs);
}

/* The first load, at start: no logins wait yet, so it is done here. */
static void load_policy(struct tgdc *tg)
{
	struct tg_errors errs;

	tg->holder = tg_holder_new(tg->cfg.policy);
	if (tg->holder == NULL) {
		say(tg, TGDC_LOG_ERROR, LOG_PREFIX "%s", "out of memory");
		return;
	}
	tg_errors_init(&errs);
	report_load(tg, tg_holder_reload(tg->holder, &errs) < 0 ? -1 : 1, &errs,
		    "loaded");
	tg_errors_clear(&errs);
}

static void remember_config_failure(struct tgdc *tg)
{
	tg->config_missing = stat(tg->config_path, &tg->config_failed_st) < 0;
}

static bool config_changed_since_failure(const struct tgdc *tg)
{
	struct stat st;

	if (stat(tg->config_path, &st) < 0)
		return !tg->config_missing;
	return tg->config_missing ||
	       st.st_ino != tg->config_failed_st.st_ino ||
	       st.st_dev != tg->config_failed_st.st_dev ||
	       st.st_size != tg->config_failed_st.st_size ||
	       st.st_mtim.tv_sec != tg->config_failed_st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != tg->config_failed_st.st_mtim.tv_nsec ||
	       st.st_ctim.tv_sec != tg->config_failed_st.st_ctim.tv_sec ||
	       st.st_ctim.tv_nsec != tg->config_failed_st.st_ctim.tv_nsec;
}

/* Reads tlsgate.conf; on success loads the policy. */
static void load_config(struct tgdc *tg)
{
	struct tg_errors errs;

	tg_errors_init(&errs);
	if (tg_config_load(&tg->cfg, tg->config_path, &errs) < 0) {
		remember_config_failure(tg);
		say_errors(tg, &errs,
			   "configuration not loaded: logins are refused with a temporary failure until it is fixed");
		return;
	}
	if (tg->cfg.policy == NULL) {
		remember_config_failure(tg);
		say(tg, TGDC_LOG_ERROR, LOG_PREFIX "%s: no `policy` set: logins are refused with a temporary failure until it is fixed",
		    tg->config_path);
		tg_config_free(&tg->cfg);
		return;
	}
	tg->config_loaded = true;
	load_policy(tg);
}

static const char *config_path_of(const char *args)
{
	while (args != NULL && (*args == ' ' || *args == '\t'))
		args++;
	return args == NULL || *args == '\0' ? TGDC_DEFAULT_CONFIG : args;
}

struct tgdc *tgdc_open(const char *args, tgdc_log_fn *log, void *log_ctx)
{
	struct tgdc *tg = calloc(1, sizeof(*tg));

	if (tg == NULL)
		return NULL;
	tg->log = log;
	tg->log_ctx = log_ctx;
	tg->config_path = strdup(config_path_of(args));
	if (tg->config_path == NULL) {
		free(tg);
		return NULL;
	}
	/* trailing blanks of args are not part of the path */
	size_t len = strlen(tg->config_path);
	while (len > 0 && (tg->config_path[len - 1] == ' ' ||
			   tg->config_path[len - 1] == '\t'))
		tg->config_path[--len] = '\0';
	tg_config_init(&tg->cfg);
	load_config(tg);
	return tg;
}

void tgdc_close(struct tgdc *tg)
{
	if (tg == NULL)
		return;
	tg_holder_free(tg->holder);
	tg_config_free(&tg->cfg);
	free(tg->config_path);
	free(tg);
}

/* Once a second at most: notice policy edits, or a fixed configuration.
 * A finished background load is put in force at the first call after. */
static void poll_files(struct tgdc *tg, time_t now)
{
	if (tg->holder == NULL) {
		if (tg->config_checked != 0 && now >= tg->config_checked &&
		    now - tg->config_checked < RETRY_SECONDS)
			return;
		tg->config_checked = now;
		if (config_changed_since_failure(tg))
			load_config(tg);
		return;
	}
	struct tg_errors errs;
	tg_errors_init(&errs);
	report_load(tg, tg_holder_poll_async(tg->holder, now, RETRY_SECONDS, &errs),
		    &errs, "reloaded");
	tg_errors_clear(&errs);
}

unsigned int tgdc_tick(struct tgdc *tg, time_t now)
{
	poll_files(tg, now);
	return tg->holder != NULL && tg_holder_loading(tg->holder) ?
	       TGDC_TICK_LOADING_MSECS : TGDC_TICK_MSECS;
}

int tgdc_service(const char *service)
{
	if (service == NULL)
		return -1;
	return tg_service_parse(service, strlen(service));
}

int tgdc_tls(int service, enum tgdc_secured secured)
{
	switch (secured) {
	case TGDC_SECURED_TLS:
		return TG_TLS_UNKNOWN;
	case TGDC_SECURED_BARE:
		return service == TG_SERVICE_SMTP ? TG_TLS_UNKNOWN : TG_TLS_NONE;
	case TGDC_SECURED_NONE:
	default:
		return TG_TLS_NONE;
	}
}

/* The value is taken in any case (user databases often hold "REQUIRE"). */
int tgdc_mode_field(const char *value)
{
	if (value == NULL || *value == '\0')
		return -1;
	int mode = tg_mode_field_parse(value, strlen(value));
	return mode < 0 ? -2 : mode;
}

char *tgdc_reason(int service, const char *message, char *buf, size_t size)
{
	const char *prefix = service == TG_SERVICE_IMAP ? "[PRIVACYREQUIRED] " :
			     service == TG_SERVICE_POP3 ? "[SYS/PERM] " : "";
	size_t n = 0;

	if (size == 0)
		return buf;
	for (const char *p = prefix; *p != '\0' && n + 1 < size; p++)
		buf[n++] = *p;
	for (const unsigned char *p = (const unsigned char *)message;
	     p != NULL && *p != '\0' && n + 1 < size; p++)
		buf[n++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
	buf[n] = '\0';
	return buf;
}

const char *tgdc_account(const struct tgdc_request *req)
{
	if (req->account_field != NULL && req->account_field[0] != '\0')
		return req->account_field;
	return req->user;
}

/* No policy in force: the `failure` setting decides. */
static void decide_without_policy(struct tgdc *tg,
				  const struct tgdc_request *req,
				  struct tgdc_result *res)
{
	bool allow = tg->config_loaded && tg->cfg.failure == TG_FAILURE_ALLOW;
	char user[128];

	res->action = allow ? TGDC_ALLOW : TGDC_TEMPFAIL;
	if (tg->no_policy_logged != 0 && req->now >= tg->no_policy_logged &&
	    req->now - tg->no_policy_logged < NO_POLICY_LOG_SECONDS)
		return;
	tg->no_policy_logged = req->now;
	tg_sanitize(tgdc_account(req), strlen(tgdc_account(req)), 64, user,
		    sizeof(user));
	say(tg, allow ? TGDC_LOG_WARNING : TGDC_LOG_ERROR,
	    LOG_PREFIX "no policy in force: login of %s %s (repeated at most every %d seconds)",
	    user, allow ? "allowed (failure = allow)" :
			  "refused with a temporary failure (failure = tempfail)",
	    NO_POLICY_LOG_SECONDS);
}

static int mode_override(struct tgdc *tg, const struct tgdc_request *req)
{
	int mode = tgdc_mode_field(req->mode_field);
	char user[128], value[80];

	if (mode != -2)
		return mode;
	tg_sanitize(tgdc_account(req), strlen(tgdc_account(req)), 64, user,
		    sizeof(user));
	tg_sanitize(req->mode_field, strlen(req->mode_field), 32, value,
		    sizeof(value));
	say(tg, TGDC_LOG_WARNING,
	    LOG_PREFIX "user %s: ignoring tlsgate_mode=\"%s\" from the user database (want off, audit or require): the policy files decide",
	    user, value);
	return -1;
}

static bool from_trusted_proxy(const struct tgdc *tg,
			       const struct tgdc_request *req)
{
	struct tg_addr peer;

	if (req->real_remote_ip == NULL ||
	    tg_addr_parse(req->real_remote_ip, strlen(req->real_remote_ip),
			  &peer) < 0)
		return false;
	for (size_t i = 0; i < tg->cfg.trusted_proxy_count; i++)
		if (tg_net_contains(&tg->cfg.trusted_proxies[i], &peer))
			return true;
	return false;
}

/* Whether the client used TLS. Behind a trusted proxy the connection's
 * own state says nothing about the client's (the proxy may reach the
 * backend over TLS, or from a trusted network): only what the proxy
 * forwarded counts, and nothing forwarded is plaintext. Postfix (smtp)
 * reaches Dovecot's auth directly, never through a proxy's login. */
static enum tg_tls login_tls(struct tgdc *tg, int service,
			     const struct tgdc_request *req)
{
	if (service != TG_SERVICE_SMTP && from_trusted_proxy(tg, req))
		return req->forward_tls != NULL &&
		       tg_ascii_caseeq(req->forward_tls, strlen(req->forward_tls),
				       "TLS", 3) ? TG_TLS_UNKNOWN : TG_TLS_NONE;
	if (req->forward_tls != NULL) {
		char user[128], peer[80], value[80];
		const char *account = tgdc_account(req);
		const char *from = req->real_remote_ip != NULL ?
				   req->real_remote_ip : "unknown";
		tg_sanitize(account, strlen(account), 64, user, sizeof(user));
		tg_sanitize(from, strlen(from), 64, peer, sizeof(peer));
		tg_sanitize(req->forward_tls, strlen(req->forward_tls), 32,
			    value, sizeof(value));
		say(tg, TGDC_LOG_WARNING,
		    LOG_PREFIX "user %s: ignoring forward_tls=\"%s\" from %s, which is not in trusted_proxies",
		    user, value, peer);
	}
	return (enum tg_tls)tgdc_tls(service, req->secured);
}

/* The IMAP ID's name and version into the event. An ID that does not
 * parse is no name: it is the client's text, and proves nothing anyway. */
static void add_imap_id(struct tg_event *ev, struct tg_imapid *id,
			const char *client_id)
{
	char why[128];
	if (client_id == NULL ||
	    tg_imapid_parse(client_id, strlen(client_id), id, why, sizeof(why)) < 0)
		return;
	if (id->has_name)
		ev->value[TG_EV_IMAP_ID_NAME] = id->name;
	if (id->has_version)
		ev->value[TG_EV_IMAP_ID_VERSION] = id->version;
}

static void log_event(struct tgdc *tg, const struct tg_login *login,
		      const struct tg_decision *d, const struct tgdc_request *req)
{
	struct tg_event ev;
	struct tg_event_texts texts;
	struct tg_imapid id;
	char line[TG_EVENT_MAX_LINE];

	tg_event_from_decision(&ev, &texts, d, login->user, login->service,
			       login->client, login->tls, req->mech,
			       req->session);
	if (req->login != NULL && strcmp(req->login, login->user) != 0)
		ev.value[TG_EV_LOGIN] = req->login;
	add_imap_id(&ev, &id, req->client_id);
	tg_event_set_ports(&ev, &texts, req->remote_port, req->local_port);
	if (tg_event_format(&ev, line, sizeof(line)) < 0)
		return;
	tg->log(tg->log_ctx, TGDC_LOG_INFO, line);
}

void tgdc_decide(struct tgdc *tg, const struct tgdc_request *req,
		 struct tgdc_result *res)
{
	int service = tgdc_service(req->service);
	struct tg_addr client;
	struct tg_login login;
	struct tg_decision d;

	res->action = TGDC_ALLOW;
	res->reason[0] = '\0';
	if (service < 0 || req->user == NULL)
		return;		/* not a login tlsgate knows: never refuse */

	poll_files(tg, req->now);
	const struct tg_policy *policy = current_policy(tg);
	if (policy == NULL) {
		decide_without_policy(tg, req, res);
		return;
	}

	memset(&login, 0, sizeof(login));
	login.user = tgdc_account(req);
	login.service = (enum tg_service)service;
	login.client = req->remote_ip != NULL &&
		       tg_addr_parse(req->remote_ip, strlen(req->remote_ip),
				     &client) == 0 ? &client : NULL;
	login.tls = login_tls(tg, service, req);
	login.today = tg_date_of(req->now);
	login.now = (int64_t)req->now;
	login.mode_override = mode_override(tg, req);
	tg_decide(policy, &login, &d);

	if (login.tls == TG_TLS_NONE || tg->cfg.log_tls)
		log_event(tg, &login, &d, req);
	if (d.verdict != TG_VERDICT_REJECT)
		return;
	res->action = TGDC_REFUSE;
	char text[TG_CONFIG_MAX_MESSAGE + 1];
	tgdc_reason(service, tg_refusal_text(&d, tg->cfg.message != NULL ?
					     tg->cfg.message : TG_DEFAULT_MESSAGE,
					     text, sizeof(text)),
		    res->reason, sizeof(res->reason));
}

/* ---- enumeration and mechanisms that skip the passdb ---- */

void tgdc_decoy_password(char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	size_t got = 0;

	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	/* getrandom() does not fail on Linux >= 3.17 once the pool is
	 * ready; should it, the time and address still make a value no
	 * client sends */
	if (got < sizeof(rnd)) {
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)buf;
		for (size_t i = got; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)(t >> ((i % 8) * 8));
	}
	size_t n = 0;
	const char *prefix = "tlsgate-decoy-";
	for (; prefix[n] != '\0' && n + 1 < size; n++)
		buf[n] = prefix[n];
	for (size_t i = 0; i < sizeof(rnd) && n + 2 < size; i++) {
		buf[n++] = hex[rnd[i] >> 4];
		buf[n++] = hex[rnd[i] & 15];
	}
	if (size > 0)
		buf[n < size ? n : size - 1] = '\0';
}

int tgdc_check_mechanisms(const char *mechanisms, tgdc_log_fn *log, void *log_ctx)
{
	int found = 0;
	const char *p = mechanisms != NULL ? mechanisms : "";

	while (*p != '\0') {
		size_t skip = strspn(p, " \t,");
		p += skip;
		size_t len = strcspn(p, " \t,");
		if (len == 9 && strncasecmp(p, "anonymous", 9) == 0)
			found++;
		p += len;
	}
	if (found > 0 && log != NULL)
		log(log_ctx, TGDC_LOG_WARNING,
		    "tlsgate passdb: auth_mechanisms has ANONYMOUS: those logins skip every "
		    "passdb, so the tlsgate passdb cannot refuse them in plaintext "
		    "(docs/dovecot.md); remove it where TLS is required");
	return found;
}
