/*
 * test-config - tlsgate.conf: keys, values, errors, defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static const struct {
	const char *text;
	const char *want;	/* NULL: loads; else part of the first error */
} rows[] = {
	{ "policy = /etc/tlsgate/policy.d\n", NULL },
	{ "policy=/p\nmessage = Use TLS # comment\n", NULL },
	{ "  policy = /p   \n\n# c\n", NULL },
	{ "policy = /p\nmessage = \"Use TLS: port 993 # not a comment\"\n", NULL },
	{ "policy = /p\nlisten = inet:127.0.0.1:10040 unix:/run/tlsgate/policy.sock\nlisten = inet:[::1]:10040\n", NULL },
	{ "policy = /p\nlog_tls = no\nfailure = allow\n", NULL },
	{ "policy = /p\nsmtp_reply = 550 5.7.1\n", NULL },
	{ "policy = /p\nsocket_mode = 0660\nidle_timeout = 5m\nmax_connections = 2000\n", NULL },
	{ "policy = /p\nunauthenticated = check\n", NULL },
	{ "policy = /p\nuserdb = dovecot:/run/dovecot/tlsgate-userdb\n", NULL },
	{ "policy = /p\nuserdb = dovecot:/r/u\nuserdb_cache_ttl = 0\nuserdb_cache_size = 10\nuserdb_timeout = 2s\n", NULL },
	{ "policy = /p\nuserdb_cache_ttl = 5m\n", NULL },
	{ "policy = /p\nuserdb = /run/dovecot/auth-userdb\n", "userdb: expected dovecot:PATH" },
	{ "policy = /p\nuserdb = dovecot:run/auth-userdb\n", "userdb: expected dovecot:PATH" },
	{ "policy = /p\nuserdb = ldap://x/\n", "userdb: expected dovecot:PATH" },
	{ "policy = /p\nuserdb = dovecot:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "socket path longer" },
	{ "policy = /p\nuserdb = dovecot:/a\nuserdb = dovecot:/b\n", "userdb given twice" },
	{ "policy = /p\nuserdb_cache_ttl = 2d\n", "userdb_cache_ttl: expected a duration" },
	{ "policy = /p\nuserdb_cache_ttl = 25h\n", "userdb_cache_ttl: expected a duration" },
	{ "policy = /p\nuserdb_cache_ttl = -1\n", "userdb_cache_ttl: expected a duration" },
	{ "policy = /p\nuserdb_timeout = 0\n", "userdb_timeout: expected a duration from 1s" },
	{ "policy = /p\nuserdb_timeout = 61\n", "userdb_timeout: expected a duration from 1s" },
	{ "policy = /p\nuserdb_cache_size = 50000001\n", "userdb_cache_size: expected a number" },
	{ "policy = /p\ntrusted_proxies = 192.0.2.10, 198.51.100.0/24 2001:db8::/32\n", NULL },
	{ "policy = /p\nmax_connections_per_peer = 100\nnotify_domains = @Example.COM b.example\n", NULL },
	{ "policy = /p\nmax_connections_per_peer = 0\n", "max_connections_per_peer" },
	{ "policy = /p\nnotify_domains = a.example evil\"x\n", "notify_domains: expected domain names" },
	{ "policy = /p\nnotify_domains = a.example,b.example\n", "notify_domains: expected domain names" },
	{ "policy = /p\nnotify_domains = @\n", "notify_domains: empty value" },
	{ "", "no policy = PATH given" },
	{ "message = x\n", "no policy = PATH given" },
	{ "policy = /p\ncolour = red\n", "c.conf:2: unknown key 'colour'" },
	{ "policy = /p\npolicy = /q\n", "c.conf:2: policy given twice" },
	{ "policy\n", "c.conf:1: expected key = value" },
	{ "= x\n", "c.conf:1: expected key = value" },
	{ "policy =\n", "c.conf:1: policy: empty value" },
	{ "policy = /p\nlog_tls = maybe\n", "log_tls: expected yes or no" },
	{ "policy = /p\nfailure = open\n", "failure: expected tempfail or allow" },
	{ "policy = /p\nlisten = 127.0.0.1:10040\n", "listen: expected inet:HOST:PORT or unix:PATH" },
	{ "policy = /p\nsmtp_reply = 250 2.0.0\n", "smtp_reply: expected an SMTP reply code" },
	{ "policy = /p\nsmtp_reply = 530 4.7.0\n", "smtp_reply: expected an SMTP reply code" },
	{ "policy = /p\nsmtp_reply = 530\n", "smtp_reply: expected an SMTP reply code" },
	{ "policy = /p\nsmtp_reply = 530 5.7.0 text\n", "smtp_reply: expected an SMTP reply code" },
	{ "policy = /p\nsocket_mode = 999\n", "socket_mode: expected an octal mode" },
	{ "policy = /p\nidle_timeout = 0\n", "idle_timeout: expected a duration" },
	{ "policy = /p\nidle_timeout = 2d\n", "idle_timeout: expected a duration" },
	{ "policy = /p\nidle_timeout = 25h\n", "idle_timeout: expected a duration" },
	{ "policy = /p\nmax_connections = -1\n", "max_connections: expected a number" },
	{ "policy = /p\nunauthenticated = reject\n", "unauthenticated: expected dunno or check" },
	{ "policy = /p\ntrusted_proxies =\n", "trusted_proxies: expected one or more networks" },
	{ "policy = /p\ntrusted_proxies = ,\n", "trusted_proxies: expected one or more networks" },
	{ "policy = /p\ntrusted_proxies = proxy1.example\n", "trusted_proxies: 'proxy1.example' is not an IPv4 or IPv6 address" },
	{ "policy = /p\ntrusted_proxies = 10.0.0.0/33\n", "trusted_proxies: '10.0.0.0/33': prefix length over 32" },
	{ "policy = /p\ntrusted_proxies = 10.0.0.1\ntrusted_proxies = 10.0.0.2\n", "trusted_proxies given twice" },
	{ "policy = /p\nmessage = \"unterminated\n", "unterminated quoted value" },
	{ "policy = /p\nmessage = \"x\" y\n", "text after the closing quote" },
	{ "policy = /p\nmessage = \"bad \\t\"\n", "bad escape" },
	{ "policy = /p\nmessage = \xff\xfe\n", "not valid UTF-8" },
};

static void test_rows(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_config cfg;
		struct tg_errors errs;
		tg_config_init(&cfg);
		tg_errors_init(&errs);
		int r = tg_config_parse(&cfg, "c.conf", rows[i].text, strlen(rows[i].text), &errs);
		if (rows[i].want == NULL) {
			if (r != 0)
				fail_msg("row %zu: %s", i, errs.msgs[0]);
		} else {
			if (r != -1)
				fail_msg("row %zu loaded", i);
			if (strstr(errs.msgs[0], rows[i].want) == NULL)
				fail_msg("row %zu: '%s' lacks '%s'", i, errs.msgs[0], rows[i].want);
			/* a failed parse leaves the defaults */
			assert_null(cfg.policy);
		}
		tg_config_free(&cfg);
		tg_errors_clear(&errs);
	}
}

static void test_values(void **state)
{
	static const char text[] =
		"policy = policy.d\n"
		"message = \"Please use \\\"SSL/TLS\\\"\"\n"
		"listen = inet:127.0.0.1:10040, unix:/run/p.sock\n"
		"listen = inet:[::1]:10041\n"
		"log_tls = off\n"
		"socket_mode = 0660\n"
		"idle_timeout = 2m\n"
		"userdb = \"dovecot:/run/dovecot/tlsgate-userdb\"\n"
		"userdb_cache_ttl = 2m\n"
		"userdb_timeout = 3\n";
	struct tg_config cfg;
	struct tg_errors errs;
	tg_config_init(&cfg);
	tg_errors_init(&errs);
	assert_int_equal(tg_config_parse(&cfg, "/etc/tlsgate/tlsgate.conf", text, sizeof(text) - 1, &errs), 0);
	assert_string_equal(cfg.policy, "/etc/tlsgate/policy.d");	/* relative to the file */
	assert_string_equal(cfg.message, "Please use \"SSL/TLS\"");
	assert_int_equal(cfg.listen_count, 3);
	assert_string_equal(cfg.listen[1], "unix:/run/p.sock");
	assert_string_equal(cfg.listen[2], "inet:[::1]:10041");
	assert_false(cfg.log_tls);
	assert_int_equal(cfg.socket_mode, 0660);
	assert_int_equal(cfg.idle_timeout, 120);
	assert_int_equal(cfg.failure, TG_FAILURE_TEMPFAIL);
	assert_string_equal(cfg.userdb_socket, "/run/dovecot/tlsgate-userdb");
	assert_int_equal(cfg.userdb_cache_ttl, 120);
	assert_int_equal(cfg.userdb_timeout, 3);
	tg_config_free(&cfg);

	/* trusted_proxies: every network, in order; more than the limit fails */
	static const char proxies[] = "policy = /p\ntrusted_proxies = 192.0.2.10 198.51.100.0/24,2001:db8::/32\n";
	assert_int_equal(tg_config_parse(&cfg, "x.conf", proxies, sizeof(proxies) - 1, &errs), 0);
	assert_int_equal(cfg.trusted_proxy_count, 3);
	char net[64];
	assert_string_equal(tg_net_format(&cfg.trusted_proxies[1], net, sizeof(net)), "198.51.100.0/24");
	tg_config_free(&cfg);
	assert_int_equal(cfg.trusted_proxy_count, 0);
	char many[2048] = "policy = /p\ntrusted_proxies =";
	for (int i = 0; i <= TG_CONFIG_MAX_PROXIES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), " 10.0.%d.1", i);
	assert_int_equal(tg_config_parse(&cfg, "x.conf", many, strlen(many), &errs), -1);
	assert_non_null(strstr(errs.msgs[errs.count - 1], "more than 64 networks"));
	tg_errors_clear(&errs);

	/* defaults */
	assert_int_equal(tg_config_parse(&cfg, "x.conf", "policy = /p", 11, &errs), 0);
	assert_string_equal(cfg.policy, "/p");
	assert_string_equal(cfg.message, TG_DEFAULT_MESSAGE);
	assert_true(cfg.log_tls);
	assert_false(cfg.check_unauthenticated);
	assert_null(cfg.smtp_reply);
	assert_null(cfg.userdb_socket);
	assert_int_equal(cfg.userdb_cache_ttl, TG_USERDB_DEFAULT_TTL);
	assert_int_equal(cfg.userdb_cache_size, TG_USERDB_DEFAULT_CACHE_SIZE);
	assert_int_equal(cfg.userdb_timeout, TG_USERDB_DEFAULT_TIMEOUT);
	assert_int_equal(cfg.max_connections_per_peer, 1024);
	assert_null(cfg.notify_domains);
	tg_config_free(&cfg);

	/* notify_domains: lower case, without '@', single spaces */
	static const char nd[] = "policy = /p\nnotify_domains = \"@Example.COM \t b.example\"\n";
	assert_int_equal(tg_config_parse(&cfg, "x.conf", nd, sizeof(nd) - 1, &errs), 0);
	assert_string_equal(cfg.notify_domains, "example.com b.example");
	tg_config_free(&cfg);
}

static void test_failed_parse_keeps_old(void **state)
{
	struct tg_config cfg;
	struct tg_errors errs;
	tg_config_init(&cfg);
	tg_errors_init(&errs);
	assert_int_equal(tg_config_parse(&cfg, "a.conf", "policy = /good\n", 15, &errs), 0);
	assert_int_equal(tg_config_parse(&cfg, "a.conf", "policy = /bad\nbogus = 1\n", 24, &errs), -1);
	assert_string_equal(cfg.policy, "/good");
	tg_config_free(&cfg);
	tg_errors_clear(&errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_failed_parse_keeps_old),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
