/*
 * test-dovecot-tgdc - the Dovecot passdb's Dovecot-free half (tgdc.c):
 * service names, "secured" states, tlsgate_mode values, the client's
 * reason text, and whole decisions over real policy files - including
 * reloads (also by the timer alone), a broken edit, a missing policy under
 * both `failure` settings, and log_tls.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "names.h"
#include "tgdc.h"

/* ---- pieces */

struct service_case { const char *name; int want; };
static const struct service_case service_cases[] = {
	{ "imap", TG_SERVICE_IMAP }, { "pop3", TG_SERVICE_POP3 },
	{ "smtp", TG_SERVICE_SMTP }, { "submission", TG_SERVICE_SUBMISSION },
	{ "sieve", TG_SERVICE_SIEVE }, { "IMAP", TG_SERVICE_IMAP },
	{ "lmtp", -1 }, { "doveadm", -1 }, { "imap-urlauth", -1 },
	{ "", -1 }, { NULL, -1 },
};

static void test_service(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(service_cases) / sizeof(service_cases[0]); i++)
		assert_int_equal(tgdc_service(service_cases[i].name),
				 service_cases[i].want);
}

struct tls_case { int service; enum tgdc_secured secured; int want; };
static const struct tls_case tls_cases[] = {
	{ TG_SERVICE_IMAP, TGDC_SECURED_NONE, TG_TLS_NONE },
	{ TG_SERVICE_IMAP, TGDC_SECURED_BARE, TG_TLS_NONE },	/* trusted net */
	{ TG_SERVICE_IMAP, TGDC_SECURED_TLS, TG_TLS_UNKNOWN },
	{ TG_SERVICE_POP3, TGDC_SECURED_BARE, TG_TLS_NONE },
	{ TG_SERVICE_SUBMISSION, TGDC_SECURED_BARE, TG_TLS_NONE },
	{ TG_SERVICE_SIEVE, TGDC_SECURED_TLS, TG_TLS_UNKNOWN },
	{ TG_SERVICE_SMTP, TGDC_SECURED_BARE, TG_TLS_UNKNOWN },	/* Postfix */
	{ TG_SERVICE_SMTP, TGDC_SECURED_NONE, TG_TLS_NONE },
	{ TG_SERVICE_SMTP, TGDC_SECURED_TLS, TG_TLS_UNKNOWN },
};

static void test_tls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(tls_cases) / sizeof(tls_cases[0]); i++)
		assert_int_equal(tgdc_tls(tls_cases[i].service, tls_cases[i].secured),
				 tls_cases[i].want);
}

struct mode_case { const char *value; int want; };
static const struct mode_case mode_cases[] = {
	{ "off", TG_MODE_OFF }, { "audit", TG_MODE_AUDIT },
	{ "require", TG_MODE_REQUIRE }, { NULL, -1 }, { "", -1 },
	{ "requir", -2 }, { "require ", -2 }, { "yes", -2 },
	{ "REQUIRE", TG_MODE_REQUIRE }, { "Audit", TG_MODE_AUDIT }, { "oFF", TG_MODE_OFF },
	{ "REQUIREx", -2 }, { "requirement", -2 },
};

static void test_mode_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++)
		assert_int_equal(tgdc_mode_field(mode_cases[i].value),
				 mode_cases[i].want);
}

struct reason_case { int service; const char *msg; size_t size; const char *want; };
static const struct reason_case reason_cases[] = {
	{ TG_SERVICE_IMAP, "Use TLS", 100, "[PRIVACYREQUIRED] Use TLS" },
	{ TG_SERVICE_POP3, "Use TLS", 100, "[SYS/PERM] Use TLS" },
	{ TG_SERVICE_SMTP, "Use TLS", 100, "Use TLS" },
	{ TG_SERVICE_SUBMISSION, "Use TLS", 100, "Use TLS" },
	{ TG_SERVICE_SIEVE, "Use TLS", 100, "Use TLS" },
	{ TG_SERVICE_SMTP, "a\r\nb\tc\x1b" "d\xc3\xa9", 100, "a??b?c?d??" },
	{ TG_SERVICE_POP3, "Use TLS", 14, "[SYS/PERM] Us" },
	{ TG_SERVICE_IMAP, NULL, 100, "[PRIVACYREQUIRED] " },
};

static void test_reason(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reason_cases) / sizeof(reason_cases[0]); i++) {
		char buf[100];
		const struct reason_case *c = &reason_cases[i];
		assert_string_equal(tgdc_reason(c->service, c->msg, buf, c->size),
				    c->want);
	}
}

/* ---- whole decisions over files */

static char dir[64];
static char logbuf[65536];

static void capture(void *ctx, enum tgdc_level level, const char *line)
{
	static const char *const names[] = { "I", "W", "E" };
	(void)ctx;
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "%s %s\n", names[level], line);
}

static void write_file(const char *name, const char *text)
{
	char path[256], tmp[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(tmp, 0644);
	assert_int_equal(rename(tmp, path), 0);	/* new inode: always noticed */
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tgdc-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	logbuf[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_conf(const char *extra)
{
	char text[512];
	snprintf(text, sizeof(text), "policy = policy.conf\nmessage = \"Use TLS!\"\n%s", extra);
	write_file("tlsgate.conf", text);
}

static struct tgdc *open_tg(void)
{
	char conf[128];
	snprintf(conf, sizeof(conf), "  %s/tlsgate.conf ", dir);	/* blanks trimmed */
	struct tgdc *tg = tgdc_open(conf, capture, NULL);
	assert_non_null(tg);
	return tg;
}

#define T0 1767225600	/* 2026-01-01 00:00 UTC */

struct login_case {
	const char *user, *service, *ip;
	enum tgdc_secured secured;
	const char *mode_field;
	enum tgdc_action want;
	const char *want_reason;	/* NULL: not checked */
	const char *want_event;		/* substring of the log; NULL: no event */
};

static const struct login_case login_cases[] = {
	{ "alice@example.com", "imap", "192.0.2.1", TGDC_SECURED_NONE, NULL,
	  TGDC_REFUSE, "[PRIVACYREQUIRED] Use TLS!",
	  "tlsgate: service=imap user=alice@example.com client=192.0.2.1 tls=none verdict=reject mode=require" },
	{ "alice@example.com", "pop3", "192.0.2.1", TGDC_SECURED_NONE, NULL,
	  TGDC_REFUSE, "[SYS/PERM] Custom text", "verdict=reject" },
	{ "alice@example.com", "imap", "192.0.2.1", TGDC_SECURED_BARE, NULL,
	  TGDC_REFUSE, NULL, "tls=none verdict=reject" },
	{ "alice@example.com", "imap", "192.0.2.1", TGDC_SECURED_TLS, NULL,
	  TGDC_ALLOW, "", "tls=yes verdict=allow" },
	{ "alice@example.com", "smtp", "192.0.2.1", TGDC_SECURED_BARE, NULL,
	  TGDC_ALLOW, "", "service=smtp user=alice@example.com client=192.0.2.1 tls=yes verdict=allow" },
	{ "alice@example.com", "smtp", "192.0.2.1", TGDC_SECURED_NONE, NULL,
	  TGDC_REFUSE, "Use TLS!", "service=smtp" },
	{ "alice@example.com", "lmtp", NULL, TGDC_SECURED_NONE, NULL,
	  TGDC_ALLOW, "", NULL },
	{ "bob@example.com", "imap", "192.0.2.1", TGDC_SECURED_NONE, NULL,
	  TGDC_ALLOW, "", "verdict=allow mode=off" },
	{ "bob@example.com", "imap", "192.0.2.1", TGDC_SECURED_NONE, "require",
	  TGDC_REFUSE, NULL, "verdict=reject mode=require rule=userdb" },
	{ "alice@example.com", "imap", "192.0.2.1", TGDC_SECURED_NONE, "audit",
	  TGDC_ALLOW, "", "verdict=audit mode=audit rule=userdb" },
	{ "alice@example.com", "imap", "192.0.2.1", TGDC_SECURED_NONE, "bogus",
	  TGDC_REFUSE, NULL, "ignoring tlsgate_mode=\"bogus\"" },
	{ "carol@example.com", "imap", "10.1.2.3", TGDC_SECURED_NONE, NULL,
	  TGDC_ALLOW, "", "verdict=exempt" },
	{ "carol@example.com", "imap", "10.9.9.9", TGDC_SECURED_NONE, NULL,
	  TGDC_REFUSE, NULL, "verdict=reject" },
	{ "carol@example.com", "imap", "::ffff:10.1.2.3", TGDC_SECURED_NONE, NULL,
	  TGDC_ALLOW, "", "client=10.1.2.3" },
	{ "carol@example.com", "imap", NULL, TGDC_SECURED_NONE, NULL,
	  TGDC_REFUSE, NULL, "client=unknown" },
	{ "carol@example.com", "imap", "not-an-ip", TGDC_SECURED_NONE, NULL,
	  TGDC_REFUSE, NULL, "client=unknown" },
	{ "dave@later.example", "imap", "192.0.2.1", TGDC_SECURED_NONE, NULL,
	  TGDC_ALLOW, "", "verdict=audit mode=audit rule=" },
	{ "x\"y z@free.example", "imap", "192.0.2.1", TGDC_SECURED_NONE, NULL,
	  TGDC_ALLOW, "", "user=\"x\\\"y z@free.example\"" },
};

static const char *const POLICY =
	"require @example.com\n"
	"off bob@example.com\n"
	"require alice@example.com protocols=pop3 message=\"Custom text\"\n"
	"exempt carol@example.com 10.1.0.0/16\n"
	"require @later.example from=2099-01-01\n";

static void test_decisions(void **state)
{
	(void)state;
	write_conf("");
	write_file("policy.conf", POLICY);
	struct tgdc *tg = open_tg();
	assert_non_null(strstr(logbuf, "I tlsgate passdb: policy loaded from"));
	for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
		const struct login_case *c = &login_cases[i];
		struct tgdc_request req = {
			.user = c->user, .service = c->service, .remote_ip = c->ip,
			.secured = c->secured, .mode_field = c->mode_field,
			.mech = "PLAIN", .session = "sess1", .now = T0,
		};
		struct tgdc_result res;
		logbuf[0] = '\0';
		tgdc_decide(tg, &req, &res);
		if (res.action != c->want || (c->want_reason != NULL &&
		    strcmp(res.reason, c->want_reason) != 0))
			fail_msg("row %zu (%s %s): action %d reason '%s'", i,
				 c->user, c->service, res.action, res.reason);
		if (c->want_event == NULL)
			assert_string_equal(logbuf, "");
		else if (strstr(logbuf, c->want_event) == NULL)
			fail_msg("row %zu: '%s' not in log: %s", i, c->want_event, logbuf);
		if (c->want_event != NULL && strstr(c->want_event, "ignoring") == NULL)
			assert_non_null(strstr(logbuf, "mech=PLAIN session=sess1"));
	}
	tgdc_close(tg);
}

static void decide(struct tgdc *tg, const char *user, const char *service,
		   enum tgdc_secured secured, time_t now, struct tgdc_result *res)
{
	struct tgdc_request req = {
		.user = user, .service = service, .remote_ip = "192.0.2.9",
		.secured = secured, .now = now,
	};
	tgdc_decide(tg, &req, res);
}

static void test_reload_and_broken_edit(void **state)
{
	struct tgdc_result res;
	(void)state;
	write_conf("");
	write_file("policy.conf", "require @example.com\n");
	struct tgdc *tg = open_tg();
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0, &res);
	assert_int_equal(res.action, TGDC_REFUSE);

	write_file("policy.conf", "off @example.com\n");
	/* within the same second: not looked at yet */
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0, &res);
	assert_int_equal(res.action, TGDC_REFUSE);
	logbuf[0] = '\0';
	/* the next second: the change is noticed, the reload starts in the
	 * background and the old policy answers until it is done */
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
	tgdc_finish_reload(tg);
	assert_non_null(strstr(logbuf, "policy reloaded from"));
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
	assert_int_equal(res.action, TGDC_ALLOW);

	/* a broken edit: errors with file:line, the old policy stays */
	write_file("policy.conf", "require @example.com\nbogus line\n");
	logbuf[0] = '\0';
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 2, &res);
	tgdc_finish_reload(tg);
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 2, &res);
	assert_int_equal(res.action, TGDC_ALLOW);
	assert_non_null(strstr(logbuf, "policy.conf:2:"));
	assert_non_null(strstr(logbuf, "the previous policy stays in force"));
	/* reported once, not at every poll */
	logbuf[0] = '\0';
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 3, &res);
	tgdc_finish_reload(tg);
	assert_null(strstr(logbuf, "policy.conf:2:"));
	tgdc_close(tg);
}

/* The account decides, not the typed name; the typed one is logged. */
static void test_account_and_login(void **state)
{
	struct tgdc_result res;
	(void)state;
	write_conf("");
	write_file("policy.conf", "require bare\nrequire mixed@example.com\n");
	struct tgdc *tg = open_tg();
	struct tgdc_request req = {
		.user = "bare@elsewhere.invalid", .login = "bare@elsewhere.invalid",
		.account_field = "bare", .service = "imap",
		.remote_ip = "192.0.2.9", .secured = TGDC_SECURED_NONE, .now = T0,
	};
	assert_string_equal(tgdc_account(&req), "bare");
	logbuf[0] = '\0';
	tgdc_decide(tg, &req, &res);
	assert_int_equal(res.action, TGDC_REFUSE);
	assert_non_null(strstr(logbuf, "user=bare client="));
	assert_non_null(strstr(logbuf, " login=bare@elsewhere.invalid"));

	/* an empty field is no account name; without it the typed name
	 * matches no rule */
	req.account_field = "";
	logbuf[0] = '\0';
	tgdc_decide(tg, &req, &res);
	assert_int_equal(res.action, TGDC_ALLOW);
	assert_null(strstr(logbuf, "login="));

	/* Dovecot changed the name itself (auth_username_format, user=) */
	req.account_field = NULL;
	req.user = "mixed@example.com";
	req.login = "MiXed@Example.COM";
	logbuf[0] = '\0';
	tgdc_decide(tg, &req, &res);
	assert_int_equal(res.action, TGDC_REFUSE);
	assert_non_null(strstr(logbuf, "user=mixed@example.com "));
	assert_non_null(strstr(logbuf, " login=MiXed@Example.COM"));

	/* the same name: no login= */
	req.login = "mixed@example.com";
	logbuf[0] = '\0';
	tgdc_decide(tg, &req, &res);
	assert_null(strstr(logbuf, "login="));
	tgdc_close(tg);
}

/* forward_tls counts only from trusted_proxies, and then alone. */
struct forward_case {
	const char *peer, *forward_tls, *service;
	enum tgdc_secured secured;
	enum tgdc_action want;
	const char *want_log;	/* NULL: no warning */
};
static const struct forward_case forward_cases[] = {
	/* a trusted proxy forwards the client's TLS */
	{ "192.0.2.10", "TLS", "imap", TGDC_SECURED_BARE, TGDC_ALLOW, NULL },
	{ "192.0.2.10", "tls", "pop3", TGDC_SECURED_BARE, TGDC_ALLOW, NULL },
	/* ... or its absence; its own TLS to the backend does not count */
	{ "192.0.2.10", "", "imap", TGDC_SECURED_TLS, TGDC_REFUSE, NULL },
	{ "192.0.2.10", "secured", "imap", TGDC_SECURED_BARE, TGDC_REFUSE, NULL },
	{ "198.51.100.7", NULL, "imap", TGDC_SECURED_TLS, TGDC_REFUSE, NULL },
	/* a forged value from anywhere else is ignored and logged */
	{ "192.0.2.11", "TLS", "imap", TGDC_SECURED_BARE, TGDC_REFUSE,
	  "W tlsgate passdb: user a@example.com: ignoring forward_tls=\"TLS\" from 192.0.2.11, which is not in trusted_proxies" },
	{ "192.0.2.11", "TLS", "imap", TGDC_SECURED_TLS, TGDC_ALLOW, "ignoring forward_tls" },
	{ NULL, "TLS", "imap", TGDC_SECURED_NONE, TGDC_REFUSE, "from unknown" },
	{ "not-an-ip", "TLS", "imap", TGDC_SECURED_NONE, TGDC_REFUSE, "from not-an-ip" },
	/* without forward_tls, other addresses decide as always */
	{ "192.0.2.11", NULL, "imap", TGDC_SECURED_TLS, TGDC_ALLOW, NULL },
	/* Postfix reaches auth directly: its bare "secured" is TLS */
	{ "192.0.2.10", NULL, "smtp", TGDC_SECURED_BARE, TGDC_ALLOW, NULL },
};

static void test_forward_tls(void **state)
{
	(void)state;
	write_conf("trusted_proxies = 192.0.2.10 198.51.100.0/24\n");
	write_file("policy.conf", "require @example.com\n");
	struct tgdc *tg = open_tg();
	for (size_t i = 0; i < sizeof(forward_cases) / sizeof(forward_cases[0]); i++) {
		const struct forward_case *c = &forward_cases[i];
		struct tgdc_request req = {
			.user = "a@example.com", .service = c->service,
			.remote_ip = "203.0.113.5", .real_remote_ip = c->peer,
			.forward_tls = c->forward_tls, .secured = c->secured,
			.now = T0,
		};
		struct tgdc_result res;
		logbuf[0] = '\0';
		tgdc_decide(tg, &req, &res);
		if (res.action != c->want)
			fail_msg("row %zu: action %d", i, res.action);
		if (c->want_log == NULL ? strstr(logbuf, "W ") != NULL :
		    strstr(logbuf, c->want_log) == NULL)
			fail_msg("row %zu: log: %s", i, logbuf);
		/* the event names the client, not the proxy */
		assert_non_null(strstr(logbuf, "client=203.0.113.5"));
	}
	tgdc_close(tg);
}

/* The timer alone puts an edit in force: no login in between. */
static void test_tick_without_logins(void **state)
{
	struct tgdc_result res;
	(void)state;
	write_conf("");
	write_file("policy.conf", "require @example.com\n");
	struct tgdc *tg = open_tg();
	assert_int_equal(tgdc_tick(tg, T0), TGDC_TICK_MSECS);

	write_file("policy.conf", "audit @example.com\n");
	logbuf[0] = '\0';
	/* the next second: noticed, loading; asks to be called again soon */
	unsigned int msecs = tgdc_tick(tg, T0 + 1);
	for (int i = 0; msecs == TGDC_TICK_LOADING_MSECS && i < 1000; i++) {
		usleep(10000);
		msecs = tgdc_tick(tg, T0 + 1);
	}
	assert_int_equal(msecs, TGDC_TICK_MSECS);
	assert_non_null(strstr(logbuf, "policy reloaded from"));
	/* the first login after the quiet time follows the new policy */
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
	assert_int_equal(res.action, TGDC_ALLOW);
	assert_non_null(strstr(logbuf, "verdict=audit"));
	tgdc_close(tg);
}

/* A configuration that failed to load is retried by the timer too. */
static void test_tick_fixed_config(void **state)
{
	struct tgdc_result res;
	(void)state;
	write_file("policy.conf", "require @example.com\n");
	write_file("tlsgate.conf", "policy = policy.conf\nno_such_key = 1\n");
	struct tgdc *tg = open_tg();
	assert_int_equal(tgdc_tick(tg, T0), TGDC_TICK_MSECS);
	write_conf("");
	logbuf[0] = '\0';
	assert_int_equal(tgdc_tick(tg, T0 + 1), TGDC_TICK_MSECS);
	assert_non_null(strstr(logbuf, "policy loaded from"));
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
	assert_int_equal(res.action, TGDC_REFUSE);
	tgdc_close(tg);
}

struct failure_case { const char *conf_extra; enum tgdc_action want; const char *want_log; };
static const struct failure_case failure_cases[] = {
	{ "", TGDC_TEMPFAIL, "E tlsgate passdb: no policy in force" },
	{ "failure = tempfail\n", TGDC_TEMPFAIL, "refused with a temporary failure" },
	{ "failure = allow\n", TGDC_ALLOW, "W tlsgate passdb: no policy in force" },
};

static void test_no_policy(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(failure_cases) / sizeof(failure_cases[0]); i++) {
		struct tgdc_result res;
		char path[128];
		snprintf(path, sizeof(path), "%s/policy.conf", dir);
		unlink(path);
		write_conf(failure_cases[i].conf_extra);
		logbuf[0] = '\0';
		struct tgdc *tg = open_tg();
		assert_non_null(strstr(logbuf, "no policy loaded"));
		decide(tg, "a@example.com", "imap", TGDC_SECURED_TLS, T0, &res);
		assert_int_equal(res.action, failure_cases[i].want);
		assert_non_null(strstr(logbuf, failure_cases[i].want_log));
		/* unknown services are never refused */
		decide(tg, "a@example.com", "doveadm", TGDC_SECURED_NONE, T0, &res);
		assert_int_equal(res.action, TGDC_ALLOW);
		/* the policy appears: used from the next second */
		write_file("policy.conf", "require @example.com\n");
		decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
		tgdc_finish_reload(tg);
		decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
		assert_int_equal(res.action, TGDC_REFUSE);
		tgdc_close(tg);
	}
}

static void test_broken_config_then_fixed(void **state)
{
	struct tgdc_result res;
	(void)state;
	write_file("policy.conf", "require @example.com\n");
	write_file("tlsgate.conf", "policy = policy.conf\nno_such_key = 1\n");
	logbuf[0] = '\0';
	struct tgdc *tg = open_tg();
	assert_non_null(strstr(logbuf, "tlsgate.conf:2:"));
	assert_non_null(strstr(logbuf, "configuration not loaded"));
	decide(tg, "a@example.com", "imap", TGDC_SECURED_TLS, T0, &res);
	assert_int_equal(res.action, TGDC_TEMPFAIL);
	write_conf("failure = allow\n");
	decide(tg, "a@example.com", "imap", TGDC_SECURED_TLS, T0 + 1, &res);
	assert_int_equal(res.action, TGDC_ALLOW);
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0 + 1, &res);
	assert_int_equal(res.action, TGDC_REFUSE);
	tgdc_close(tg);
}

static void test_log_tls_off(void **state)
{
	struct tgdc_result res;
	(void)state;
	write_conf("log_tls = no\n");
	write_file("policy.conf", "require @example.com\n");
	struct tgdc *tg = open_tg();
	logbuf[0] = '\0';
	decide(tg, "a@example.com", "imap", TGDC_SECURED_TLS, T0, &res);
	assert_int_equal(res.action, TGDC_ALLOW);
	assert_string_equal(logbuf, "");
	decide(tg, "a@example.com", "imap", TGDC_SECURED_NONE, T0, &res);
	assert_non_null(strstr(logbuf, "verdict=reject"));
	tgdc_close(tg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_mode_field),
		cmocka_unit_test(test_reason),
		cmocka_unit_test_setup_teardown(test_decisions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_and_broken_edit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_and_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_without_logins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_fixed_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_config_then_fixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_tls_off, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
