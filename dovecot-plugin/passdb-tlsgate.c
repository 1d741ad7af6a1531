/*
 * passdb-tlsgate - Dovecot 2.3/2.4 passdb driver `tlsgate`: refuses a login
 * whose account requires TLS when it came without TLS (docs/dovecot.md).
 *
 * It is chained after the real passdb (result_success = continue-ok, ours
 * skip = unauthenticated) and only decides once an earlier passdb verified
 * the password: anything else is answered as "user unknown" and logged as
 * a configuration error, so the TLS flag of an account can never be probed
 * without its password. Decisions are made by tgdc.c; this file only
 * copies request fields in and results out.
 *
 * Results: allowed -> OK (the earlier passdb's credentials stay in use);
 * refused after PLAIN/LOGIN -> USER_DISABLED with the reason text the
 * client shows, without raising the client address's auth penalty (the
 * client proved the password and is told why; many accounts share one
 * NAT address); refused in a credentials lookup (CRAM-MD5, SCRAM, ...,
 * where the mechanism has not checked the password yet) -> OK with a
 * decoy password nobody knows, so the exchange runs to the client's proof
 * and fails there like a wrong password (refusing at the lookup would end
 * SCRAM before the server-first message and tell which accounts require
 * TLS); no earlier passdb found the user (a master login, master passdb
 * with result_success = continue, for a user that does not exist) ->
 * USER_UNKNOWN, so our OK never stands in for that check;
 * no policy and failure = tempfail -> a temporary failure. Requests
 * without a SASL mechanism (LMTP, doveadm, proxy and userdb lookups) are
 * always OK. The driver has no cache key: no verdict is ever cached.
 * What differs between Dovecot versions is read through dcompat.h.
 */
#include "dcompat.h"
#include "ioloop.h"

#include "tgdc.h"

struct tlsgate_passdb_module {
	struct passdb_module module;
	struct tgdc *tg;
	const char *config_path;
	struct event *event;
	/* Looks at the policy files while no logins arrive. */
	struct timeout *to_tick;
	bool misconfig_logged;
};

static void tlsgate_log(void *log_ctx, enum tgdc_level level, const char *line)
{
	struct event *event = log_ctx;

	switch (level) {
	case TGDC_LOG_INFO:
		e_info(event, "%s", line);
		break;
	case TGDC_LOG_WARNING:
		e_warning(event, "%s", line);
		break;
	case TGDC_LOG_ERROR:
		e_error(event, "%s", line);
		break;
	}
}

static struct tlsgate_passdb_module *module_of(struct auth_request *request)
{
	return (struct tlsgate_passdb_module *)request->passdb->passdb;
}

/* Our passdb must run only after the password was verified. */
static bool password_verified(struct tlsgate_passdb_module *mod,
			      struct auth_request *request)
{
	if (request->fields.skip_password_check)
		return TRUE;
	if (!mod->misconfig_logged) {
		e_error(mod->event,
			"tlsgate passdb: reached before any passdb verified the password: "
			"set `skip = unauthenticated` on the tlsgate passdb and "
			"`result_success = continue-ok` on the passdb before it "
			"(logins are refused until then)");
		mod->misconfig_logged = TRUE;
	}
	return FALSE;
}

/* A passdb before ours found the user: false for a master login (master
 * passdb with result_success = continue) whose target user no passdb
 * knows, where our OK would be the only success of the chain. */
static bool user_found(struct auth_request *request)
{
	return request->passdb_success;
}

static const char *mode_field(struct auth_request *request)
{
	const char *value =
		auth_fields_find(request->fields.extra_fields, "tlsgate_mode");

	if (value == NULL && request->fields.userdb_reply != NULL)
		value = auth_fields_find(request->fields.userdb_reply,
					 "tlsgate_mode");
	return value;
}

/* The name as typed, to log beside the account. A master login's typed
 * name holds the master user's: not logged. */
static const char *typed_login(const struct auth_request *request)
{
	if (request->fields.master_user != NULL)
		return NULL;
	return request->fields.original_username;
}

static void tlsgate_decide(struct tlsgate_passdb_module *mod,
			   struct auth_request *request,
			   struct tgdc_result *res)
{
	struct tgdc_request req = {
		.user = request->fields.user,
		.login = typed_login(request),
		.account_field = auth_fields_find(request->fields.extra_fields,
						  "tlsgate_account"),
		.service = dcompat_service(request),
		.remote_ip = request->fields.remote_ip.family != 0 ?
			net_ip2addr(&request->fields.remote_ip) : NULL,
		.real_remote_ip = request->fields.real_remote_ip.family != 0 ?
			net_ip2addr(&request->fields.real_remote_ip) : NULL,
		.forward_tls = auth_fields_find(request->fields.extra_fields,
						"forward_tls"),
		.secured = dcompat_secured(request),
		.mode_field = mode_field(request),
		.mech = dcompat_mech(request),
		.session = request->fields.session_id,
		.client_id = request->fields.client_id,
		.remote_port = request->fields.remote_port,
		.local_port = request->fields.local_port,
		.now = ioloop_time,
	};

	if (mod->tg == NULL) {
		/* not initialised (cannot happen in the auth process) */
		res->action = TGDC_TEMPFAIL;
		return;
	}
	tgdc_decide(mod->tg, &req, res);
}

/* A refusal after a verified password is no password guess: Dovecot's
 * failure delay still applies, the address's auth penalty does not grow.
 * ("no-penalty" is the auth client's own flag for this, set the same way.) */
static void spare_penalty(struct auth_request *request)
{
	(void)auth_request_import_auth(request, "no-penalty", "");
}

/* A temporary failure whatever the passdb's result_internalfail says:
 * USER_DISABLED ends the passdb chain, internal_failure makes the reply
 * "temporary failure". */
static enum passdb_result tempfail(struct auth_request *request)
{
	request->internal_failure = TRUE;
	return PASSDB_RESULT_USER_DISABLED;
}

static void
tlsgate_verify_plain(struct auth_request *request,
		     const char *password ATTR_UNUSED,
		     verify_plain_callback_t *callback)
{
	struct tlsgate_passdb_module *mod = module_of(request);
	struct tgdc_result res;

	if (dcompat_mech(request) == NULL) {
		callback(PASSDB_RESULT_OK, request);
		return;
	}
	if (!password_verified(mod, request) || !user_found(request)) {
		callback(PASSDB_RESULT_USER_UNKNOWN, request);
		return;
	}
	tlsgate_decide(mod, request, &res);
	switch (res.action) {
	case TGDC_ALLOW:
		callback(PASSDB_RESULT_OK, request);
		break;
	case TGDC_REFUSE:
		auth_request_set_field(request, "reason", res.reason, NULL);
		spare_penalty(request);
		callback(PASSDB_RESULT_USER_DISABLED, request);
		break;
	case TGDC_TEMPFAIL:
		callback(tempfail(request), request);
		break;
	}
}

static void
tlsgate_lookup_credentials(struct auth_request *request,
			   lookup_credentials_callback_t *callback)
{
	struct tlsgate_passdb_module *mod = module_of(request);
	struct tgdc_result res;

	/* No mechanism: LMTP, doveadm and proxy lookups carry no login. */
	if (dcompat_mech(request) == NULL) {
		callback(PASSDB_RESULT_OK, uchar_empty_ptr, 0, request);
		return;
	}
	if (!password_verified(mod, request) || !user_found(request)) {
		callback(PASSDB_RESULT_USER_UNKNOWN, uchar_empty_ptr, 0,
			 request);
		return;
	}
	/* The mechanism checks the password only after this lookup, so a
	 * refusal must not say why: it looks like a wrong password. */
	tlsgate_decide(mod, request, &res);
	switch (res.action) {
	case TGDC_ALLOW:
		callback(PASSDB_RESULT_OK, uchar_empty_ptr, 0, request);
		break;
	case TGDC_REFUSE: {
		char decoy[TGDC_DECOY_SIZE];

		tgdc_decoy_password(decoy, sizeof(decoy));
		passdb_handle_credentials(PASSDB_RESULT_OK, decoy, "PLAIN",
					  callback, request);
		break;
	}
	case TGDC_TEMPFAIL:
		callback(tempfail(request), uchar_empty_ptr, 0, request);
		break;
	}
}

static struct passdb_module *
tlsgate_create(pool_t pool, const char *config_path)
{
	struct tlsgate_passdb_module *mod =
		p_new(pool, struct tlsgate_passdb_module, 1);

	/* No default_cache_key: a verdict depends on TLS state, address,
	 * service and date, so it is never cached. */
	mod->module.default_cache_key = NULL;
	mod->config_path = p_strdup(pool, config_path);
	return &mod->module;
}

/* The auth process's own timer: a policy edit is put in force within
 * about a second even when no login arrives (tgdc_tick() says when it
 * wants to run next). */
static void tlsgate_tick(struct tlsgate_passdb_module *mod)
{
	unsigned int msecs = tgdc_tick(mod->tg, ioloop_time);

	timeout_remove(&mod->to_tick);
	mod->to_tick = timeout_add(msecs, tlsgate_tick, mod);
}

DCOMPAT_PASSDB_PREINIT(tlsgate_preinit, tlsgate_create)

/* Loads in init, not preinit: init runs with the auth process's final
 * privileges, the same ones later reloads run with. Auth worker processes
 * never run this (non-blocking) passdb, so they load nothing. */
static void tlsgate_init(struct passdb_module *module)
{
	struct tlsgate_passdb_module *mod =
		(struct tlsgate_passdb_module *)module;

	mod->event = event_create(auth_event);
	if (worker)
		return;
	mod->tg = tgdc_open(mod->config_path, tlsgate_log, mod->event);
	if (mod->tg == NULL)
		i_fatal("tlsgate passdb: out of memory");
	mod->to_tick = timeout_add(TGDC_TICK_MSECS, tlsgate_tick, mod);
	T_BEGIN {
		(void)tgdc_check_mechanisms(dcompat_auth_mechanisms(),
					    tlsgate_log, mod->event);
	} T_END;
}

static void tlsgate_deinit(struct passdb_module *module)
{
	struct tlsgate_passdb_module *mod =
		(struct tlsgate_passdb_module *)module;

	timeout_remove(&mod->to_tick);
	tgdc_close(mod->tg);
	mod->tg = NULL;
	event_unref(&mod->event);
}

static struct passdb_module_interface passdb_tlsgate = {
	.name = "tlsgate",
	.preinit = tlsgate_preinit,
	.init = tlsgate_init,
	.deinit = tlsgate_deinit,
	.verify_plain = tlsgate_verify_plain,
	.lookup_credentials = tlsgate_lookup_credentials,
};

void authdb_tlsgate_init(void);
void authdb_tlsgate_deinit(void);

void authdb_tlsgate_init(void)
{
	passdb_register_module(&passdb_tlsgate);
}

void authdb_tlsgate_deinit(void)
{
	passdb_unregister_module(&passdb_tlsgate);
}

extern const char *authdb_tlsgate_version;
const char *authdb_tlsgate_version = DOVECOT_ABI_VERSION;
