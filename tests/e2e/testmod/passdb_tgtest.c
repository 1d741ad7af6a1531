/* passdb_tgtest.c - a tiny Dovecot 2.3 passdb used only by the e2e harness
 * self-test (test_harness.py) to prove that Dovecot(auth_modules=[...]) loads
 * a module from outside /usr/lib/dovecot/modules/auth.
 *
 * driver = tgtest refuses every (already verified) login with the reason in
 * args, or "[PRIVACYREQUIRED] tgtest refused" by default.
 */
#include "auth-common.h"
#include "passdb.h"

static const char *tgtest_reason = "[PRIVACYREQUIRED] tgtest refused";

static struct passdb_module *
tgtest_preinit(pool_t pool, const char *args)
{
	struct passdb_module *module = p_new(pool, struct passdb_module, 1);

	if (args != NULL && *args != '\0')
		tgtest_reason = p_strdup(pool, args);
	return module;
}

static void
tgtest_verify_plain(struct auth_request *request,
		    const char *password ATTR_UNUSED,
		    verify_plain_callback_t *callback)
{
	const char *secured = request->fields.secured == AUTH_REQUEST_SECURED_TLS ?
		"TLS" : request->fields.secured == AUTH_REQUEST_SECURED ?
		"secured" : "none";

	e_info(authdb_event(request), "tgtest: refusing (secured=%s)", secured);
	auth_request_set_field(request, "reason", tgtest_reason, NULL);
	callback(PASSDB_RESULT_USER_DISABLED, request);
}

static struct passdb_module_interface passdb_tgtest = {
	.name = "tgtest",
	.preinit = tgtest_preinit,
	.verify_plain = tgtest_verify_plain,
};

void authdb_tgtest_init(void);
void authdb_tgtest_deinit(void);

void authdb_tgtest_init(void)
{
	passdb_register_module(&passdb_tgtest);
}

void authdb_tgtest_deinit(void)
{
	passdb_unregister_module(&passdb_tgtest);
}

const char *authdb_tgtest_version = DOVECOT_ABI_VERSION;
