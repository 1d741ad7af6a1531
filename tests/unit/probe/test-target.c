/*
 * test-cli-probe-target - endpoint arguments of `tlsgate probe`
 * ([SERVICE://]HOST[:PORT], IPv6 in brackets), the service table, and the
 * text cleaning used when quoting peer data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "probe/target.h"
#include "probe/text.h"

struct target_case {
	const char *spec;
	int want_rc;
	const char *host;
	int port;		/* -1: none */
	const char *service;	/* NULL: none */
	const char *why;	/* substring on error */
};

static const struct target_case target_cases[] = {
	{ "mail.example.org", 0, "mail.example.org", -1, NULL, NULL },
	{ "mail.example.org:993", 0, "mail.example.org", 993, NULL, NULL },
	{ "127.0.0.1:20143", 0, "127.0.0.1", 20143, NULL, NULL },
	{ "[::1]:143", 0, "::1", 143, NULL, NULL },
	{ "[2001:db8::1]", 0, "2001:db8::1", -1, NULL, NULL },
	{ "2001:db8::1", 0, "2001:db8::1", -1, NULL, NULL },
	{ "imaps://mail.test", 0, "mail.test", -1, "imaps", NULL },
	{ "IMAP://mail.test:1143", 0, "mail.test", 1143, "imap", NULL },
	{ "submissions://[::1]:465", 0, "::1", 465, "smtps", NULL },
	{ "managesieve://h:4190", 0, "h", 4190, "sieve", NULL },
	{ "pop3s://h", 0, "h", -1, "pop3s", NULL },
	{ "gopher://h", -1, NULL, 0, NULL, "unknown service" },
	{ "://h", -1, NULL, 0, NULL, "unknown service" },
	{ "h:0", -1, NULL, 0, NULL, "1-65535" },
	{ "h:65536", -1, NULL, 0, NULL, "1-65535" },
	{ "h:99999999999999999999", -1, NULL, 0, NULL, "1-65535" },
	{ "h:12a", -1, NULL, 0, NULL, "1-65535" },
	{ "h:", -1, NULL, 0, NULL, "empty port" },
	{ ":143", -1, NULL, 0, NULL, "empty host" },
	{ "", -1, NULL, 0, NULL, "empty host" },
	{ "imap://", -1, NULL, 0, NULL, "empty host" },
	{ "[::1", -1, NULL, 0, NULL, "missing ']'" },
	{ "[::1]x", -1, NULL, 0, NULL, "after ']'" },
	{ "[]:143", -1, NULL, 0, NULL, "empty host" },
	{ "ho st", -1, NULL, 0, NULL, "invalid character" },
	{ "host/x", -1, NULL, 0, NULL, "invalid character" },
	{ "h\x01", -1, NULL, 0, NULL, "invalid character" },
};

static void test_target_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(target_cases) / sizeof(target_cases[0]); i++) {
		const struct target_case *c = &target_cases[i];
		struct probe_target t;
		char why[200] = "";
		int rc = probe_target_parse(c->spec, &t, why, sizeof(why));
		if (rc != c->want_rc)
			fail_msg("'%s': rc %d (%s)", c->spec, rc, why);
		if (rc < 0) {
			if (strstr(why, c->why) == NULL)
				fail_msg("'%s': why '%s' lacks '%s'", c->spec, why, c->why);
			continue;
		}
		assert_string_equal(t.host, c->host);
		assert_int_equal(t.has_port, c->port >= 0);
		if (c->port >= 0)
			assert_int_equal(t.port, c->port);
		if (c->service == NULL)
			assert_null(t.service);
		else
			assert_string_equal(t.service->name, c->service);
	}
}

static void test_long_host(void **state)
{
	char spec[PROBE_HOST_MAX + 10];
	struct probe_target t;
	char why[200];
	(void)state;
	memset(spec, 'a', PROBE_HOST_MAX);
	spec[PROBE_HOST_MAX] = '\0';
	assert_int_equal(probe_target_parse(spec, &t, why, sizeof(why)), 0);
	strcpy(spec + PROBE_HOST_MAX, "a");
	assert_int_equal(probe_target_parse(spec, &t, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "longer than"));
}

static void test_services(void **state)
{
	static const struct {
		unsigned port;
		const char *name;
		enum probe_proto proto;
		enum probe_tls_style style;
	} rows[] = {
		{ 143, "imap", PROBE_IMAP, PROBE_STARTTLS },
		{ 993, "imaps", PROBE_IMAP, PROBE_IMPLICIT },
		{ 110, "pop3", PROBE_POP3, PROBE_STARTTLS },
		{ 995, "pop3s", PROBE_POP3, PROBE_IMPLICIT },
		{ 25, "smtp", PROBE_SMTP, PROBE_STARTTLS },
		{ 587, "submission", PROBE_SMTP, PROBE_STARTTLS },
		{ 465, "smtps", PROBE_SMTP, PROBE_IMPLICIT },
		{ 4190, "sieve", PROBE_SIEVE, PROBE_STARTTLS },
	};
	size_t n;
	(void)state;
	probe_default_services(&n);
	assert_int_equal(n, sizeof(rows) / sizeof(rows[0]));
	for (size_t i = 0; i < n; i++) {
		const struct probe_service *s = probe_service_by_port(rows[i].port);
		assert_non_null(s);
		assert_string_equal(s->name, rows[i].name);
		assert_int_equal(s->proto, rows[i].proto);
		assert_int_equal(s->style, rows[i].style);
		assert_ptr_equal(probe_service_by_name(rows[i].name,
						       strlen(rows[i].name)), s);
	}
	assert_null(probe_service_by_port(80));
	assert_null(probe_service_by_name("imap4", 5));
	assert_null(probe_service_by_name("ima", 3));
}

static void test_clean_text(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		size_t size;
		const char *want;
	} rows[] = {
		{ "* OK hi", 7, 32, "* OK hi" },
		{ "a\tb\x1b[31m", 8, 32, "a?b?[31m" },
		{ "\xc3\xa4", 2, 32, "??" },
		{ "a\0b", 3, 32, "a?b" },
		{ "0123456789", 10, 8, "0123..." },
		{ "0123456", 7, 8, "0123456" },
		{ "", 0, 8, "" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char out[64];
		probe_clean_text(rows[i].in, rows[i].len, out, rows[i].size);
		assert_string_equal(out, rows[i].want);
	}
}

static void test_list_add(void **state)
{
	char buf[12] = "";
	(void)state;
	assert_true(probe_list_add(buf, sizeof(buf), " ", "PLAIN"));
	assert_true(probe_list_add(buf, sizeof(buf), " ", "LOGIN"));
	assert_string_equal(buf, "PLAIN LOGIN");
	assert_false(probe_list_add(buf, sizeof(buf), " ", "X"));
	assert_string_equal(buf, "PLAIN LO...");
	assert_false(probe_list_add(buf, sizeof(buf), " ", "Y"));
	assert_string_equal(buf, "PLAIN LO...");
	assert_true(probe_words_contain("PLAIN LOGIN", "login"));
	assert_false(probe_words_contain("PLAIN LOGIN", "LOG"));
	assert_false(probe_words_contain("", "PLAIN"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_parse),
		cmocka_unit_test(test_long_host),
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_clean_text),
		cmocka_unit_test(test_list_add),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
