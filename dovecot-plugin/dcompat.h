/*
 * dcompat - the one place where Dovecot 2.3 and 2.4 differ for the
 * `tlsgate` passdb: the auth request fields it reads, the preinit
 * signature and where its own setting (the tlsgate.conf path) comes from.
 * passdb-tlsgate.c includes this file first and calls only these
 * accessors, so it has no version #if of its own.
 *
 * Selected by DOVECOT_VERSION_MAJOR/MINOR of the config.h of the Dovecot
 * being built for (dovecot-plugin/build.mk picks its headers from
 * DOVECOT_CONFIG). The module only loads into the exact Dovecot it was
 * built for: DOVECOT_ABI_VERSION is checked by Dovecot at load time.
 *
 * Invariants: accessors never return a dangling pointer (they read fields
 * of the live request) and return NULL for a field the request lacks;
 * DCOMPAT_PASSDB_PREINIT() never aborts: on 2.4 a settings error is
 * returned to Dovecot, which reports it with the passdb's name.
 */
#ifndef TLSGATE_DCOMPAT_H
#define TLSGATE_DCOMPAT_H

#include "lib.h"

#if DOVECOT_VERSION_MAJOR > 2 || \
	(DOVECOT_VERSION_MAJOR == 2 && DOVECOT_VERSION_MINOR >= 4)
#  define DCOMPAT_DOVECOT_24 1
#endif

#ifdef DCOMPAT_LIB_SASL_SERVER_H
/* Dovecot 2.4.2 to 2.4.4 install login-common's sasl-server.h over
 * lib-sasl's, with the same include guard; auth-request.h needs
 * lib-sasl's. build.mk passes its path when the installed one is wrong;
 * included first, its guard keeps the other one out. */
#  include DCOMPAT_LIB_SASL_SERVER_H
#endif

#include "auth-common.h"
#include "passdb.h"
#include "tgdc.h"

/* Builds the module from the tlsgate.conf path ("" or NULL: the
 * default); the same function serves every Dovecot version. */
typedef struct passdb_module *
dcompat_passdb_create_fn(pool_t pool, const char *config_path);

#ifdef DCOMPAT_DOVECOT_24
#include "settings.h"
#include "settings-tlsgate.h"

/* The only symbol of the module that 2.3 lacks. Weak, so that a 2.3 auth
 * process can dlopen() a 2.4 build and reject it with its clear "Module is
 * for different ABI version" message instead of a dlopen() error; it is
 * only called once the ABI check passed (tests/e2e/test_dovecot24.py). */
#pragma weak settings_get

/* "secured": conn_secured since 2.4 (the wire is unchanged). */
static inline enum tgdc_secured
dcompat_secured(const struct auth_request *request)
{
	switch (request->fields.conn_secured) {
	case AUTH_REQUEST_CONN_SECURED_TLS:
		return TGDC_SECURED_TLS;
	case AUTH_REQUEST_CONN_SECURED:
		return TGDC_SECURED_BARE;
	case AUTH_REQUEST_CONN_SECURED_NONE:
	default:
		return TGDC_SECURED_NONE;
	}
}

/* The login's protocol (imap, pop3, smtp, ...): `protocol` since 2.4. */
static inline const char *dcompat_service(const struct auth_request *request)
{
	return request->fields.protocol;
}

/* The SASL mechanism, NULL for lookups without one (LMTP, doveadm,
 * proxies): request->mech is gone from 2.4.2, mech_name is set from the
 * mechanism since 2.4.0. */
static inline const char *dcompat_mech(const struct auth_request *request)
{
	return request->fields.mech_name;
}

/* auth_mechanisms, space-separated: an array of names in 2.4 (joined on
 * the data stack, valid until the caller's frame ends). */
static inline const char *dcompat_auth_mechanisms(void)
{
	return t_array_const_string_join(&global_auth_settings->mechanisms, " ");
}

/* preinit NAME: reads `tlsgate_config` from the passdb's settings
 * (settings-tlsgate.c) and hands it to CREATE. */
#define DCOMPAT_PASSDB_PREINIT(name, create) \
static int name(pool_t pool, struct event *event, \
		const struct passdb_parameters *params ATTR_UNUSED, \
		struct passdb_module **module_r, const char **error_r) \
{ \
	const struct tlsgate_passdb_settings *set; \
	\
	if (settings_get(event, &tlsgate_passdb_setting_parser_info, 0, \
			 &set, error_r) < 0) \
		return -1; \
	*module_r = create(pool, set->tlsgate_config); \
	settings_free(set); \
	return 0; \
}

#else /* Dovecot 2.3 */

static inline enum tgdc_secured
dcompat_secured(const struct auth_request *request)
{
	switch (request->fields.secured) {
	case AUTH_REQUEST_SECURED_TLS:
		return TGDC_SECURED_TLS;
	case AUTH_REQUEST_SECURED:
		return TGDC_SECURED_BARE;
	case AUTH_REQUEST_SECURED_NONE:
	default:
		return TGDC_SECURED_NONE;
	}
}

static inline const char *dcompat_service(const struct auth_request *request)
{
	return request->fields.service;
}

static inline const char *dcompat_mech(const struct auth_request *request)
{
	return request->mech != NULL ? request->mech->mech_name : NULL;
}

static inline const char *dcompat_auth_mechanisms(void)
{
	return global_auth_settings->mechanisms;
}

/* preinit NAME: the passdb's `args` is the tlsgate.conf path. */
#define DCOMPAT_PASSDB_PREINIT(name, create) \
static struct passdb_module *name(pool_t pool, const char *args) \
{ \
	return create(pool, args); \
}

#endif
#endif
