/*
 * test-policy-parse - every error of the policy format, and what loads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

/* Loads text as "t.conf"; returns the first error or NULL when it loads. */
static const char *load_error(const char *text, size_t len, char *buf, size_t size,
			      size_t *nerrors)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("t.conf", text, len, &errs);
	*nerrors = tg_errors_total(&errs);
	if (p != NULL) {
		assert_int_equal(errs.count, 0);
		tg_policy_free(p);
		tg_errors_clear(&errs);
		return NULL;
	}
	assert_true(errs.count > 0);
	snprintf(buf, size, "%s", errs.msgs[0]);
	tg_errors_clear(&errs);
	return buf;
}

static const struct {
	const char *text;
	const char *want;	/* NULL: loads; else a part of the first error */
} rows[] = {
	/* what loads */
	{ "", NULL },
	{ "\n\n# only a comment\n   \t\n", NULL },
	{ "audit *", NULL },
	{ "audit * # comment", NULL },
	{ "audit *\t# comment", NULL },
	{ "require @example.com from=2027-03-01", NULL },
	{ "require @shop.example.net protocols=imap,pop3", NULL },
	{ "off bob@example.com note=\"customer opted out 2026-11-02\"", NULL },
	{ "require alice@example.com min_tls=TLSv1.2", NULL },
	{ "audit alice min_tls=TLSv1.3", NULL },
	{ "require alice message=\"Use port 993 # not a comment\"", NULL },
	{ "require alice min_tls=TLSv1.3 min_tls_message=\"Update your mail program\"", NULL },
	{ "require alice min_tls_message=\"Grüße: TLS 1.3 bitte\" min_tls=TLSv1.2", NULL },
	{ "exempt scanner@example.com 192.0.2.10/32 protocols=smtp until=2027-12-31 note=\"Canon MF4410, office 2nd floor\"", NULL },
	{ "exempt @example.org 10.20.0.0/16,2001:db8:1::/48", NULL },
	{ "exempt * 192.0.2.1", NULL },
	{ "require a@b note=\"quote \\\" and backslash \\\\\"", NULL },
	{ "require a@b note=\"Grüße aus Köln\"", NULL },
	{ "require a@b note=\"\"", NULL },
	{ "require @a.com protocols=imap\nrequire @a.com protocols=pop3", NULL },
	{ "require @a.com protocols=imap\nexempt @a.com 192.0.2.1\nexempt @a.com 192.0.2.2", NULL },
	{ "require a@b\r\naudit *\r\n", NULL },			/* CRLF */
	{ "\xef\xbb\xbfrequire a@b\n", NULL },			/* BOM */
	{ "require a@b", NULL },				/* no final newline */

	/* verbs and subjects */
	{ "enforce @a.com", "t.conf:1: unknown verb 'enforce'" },
	{ "REQUIRE @a.com", "unknown verb 'REQUIRE'" },
	{ "require", "t.conf:1: a mode rule needs a subject" },
	{ "exempt", "exempt needs a subject" },
	{ "require @", "has no domain after '@'" },
	{ "require alice@", "has no domain after '@'" },
	{ "require a@b@c", "more than one '@'" },
	{ "require *@a.com", "cannot be in a login name" },
	{ "require a,b@c", "cannot be in a login name" },
	{ "require protocols=imap", "expected a subject" },
	{ "require a@b extra", "unexpected 'extra'" },
	{ "require a@\xff", "not valid UTF-8" },

	/* keys */
	{ "require a@b color=red", "unknown key 'color'" },
	{ "require a@b Protocols=imap", "unknown key 'Protocols'" },
	{ "require a@b protocols=imap protocols=pop3", "protocols= given twice" },
	{ "require a@b note=x note=y", "note= given twice" },
	{ "require a@b protocols=", "empty protocol list" },
	{ "require a@b protocols=imap,lmtp", "unknown protocol 'lmtp'" },
	{ "require a@b protocols=imap,imap", "listed twice" },
	{ "require a@b from=2027-3-1", "from='2027-3-1' is not a valid date" },
	{ "require a@b from=2027-02-29", "is not a valid date" },
	{ "audit a@b from=2027-03-01", "from= does not go with audit" },
	{ "off a@b from=2027-03-01", "from= does not go with off" },
	{ "off a@b min_tls=TLSv1.2", "min_tls= does not go with off" },
	{ "require a@b min_tls=TLSv1.4", "min_tls='TLSv1.4' is not one of" },
	{ "require a@b min_tls=SSLv3", "is not one of" },
	{ "require a@b until=2027-01-01", "until= does not go with require" },
	{ "audit a@b message=\"x\"", "message= does not go with audit" },
	{ "require a@b message=\"\"", "message= is empty" },
	{ "require a@b min_tls=TLSv1.3 min_tls_message=\"\"", "min_tls_message= is empty" },
	{ "require a@b min_tls_message=x", "min_tls_message= without min_tls=" },
	{ "audit a@b min_tls=TLSv1.3 min_tls_message=x", "min_tls_message= does not go with audit" },
	{ "require a@b min_tls=TLSv1.3 min_tls_message=x min_tls_message=y",
	  "min_tls_message= given twice" },
	{ "require a@b min_tls=TLSv1.3 min_tls_message=\"bell \a\"",
	  "min_tls_message is not valid UTF-8 text (or has control characters)" },
	{ "require a@b min_tls=TLSv1.3 min_tls_message=\"\x1b[2J\"", "control characters" },
	{ "exempt a@b 192.0.2.1 min_tls_message=x", "min_tls_message= does not go with exempt" },
	{ "exempt a@b 192.0.2.1 from=2027-01-01", "from= does not go with exempt" },
	{ "exempt a@b 192.0.2.1 until=2027-13-01", "until='2027-13-01' is not a valid date" },

	/* quoting */
	{ "require a@b note=\"unterminated", "unterminated quoted value of 'note'" },
	{ "require a@b note=\"bad \\n escape\"", "bad escape" },
	{ "require a@b note=\"x\"y", "text right after a closing quote" },
	{ "require a@b note=a\"b", "unexpected '\"' inside a value" },
	{ "require \"a@b\"", "unexpected '\"'" },
	{ "require a@b note=\"bell \a\"", "not valid UTF-8 text (or has control characters)" },
	{ "require a@b note=\"\xc3\x28\"", "not valid UTF-8" },
	{ "require a@b note=\"\xed\xa0\x80\"", "not valid UTF-8" },	/* surrogate */
	{ "require a@b note=\"\xc0\xaf\"", "not valid UTF-8" },		/* overlong */
	{ "require a@b message=\"\xe2\x82\"", "not valid UTF-8" },	/* cut short */

	/* exemptions */
	{ "exempt a@b", "exempt needs the networks" },
	{ "exempt a@b protocols=smtp", "exempt needs the networks" },
	{ "exempt a@b 192.0.2.1/24", "t.conf:1: '192.0.2.1/24' has host bits set: did you mean 192.0.2.0/24?" },
	{ "exempt a@b 10.1", "'10.1' is not an IPv4 or IPv6 address" },
	{ "exempt a@b 192.0.2.1 192.0.2.2", "separated by commas, without spaces" },
	{ "exempt a@b 192.0.2.1,,192.0.2.2", "empty item in the network list" },
	{ "exempt a@b 192.0.2.1,", "empty item in the network list" },
	{ "exempt a@b 2001:db8::1/48", "did you mean 2001:db8::/48?" },

	/* overlap of mode rules */
	{ "require @a.com\naudit @a.com", "t.conf:2: a second mode rule for '@a.com' (protocols imap,pop3,smtp,submission,sieve); the first is at t.conf:1" },
	{ "require @a.com protocols=imap,pop3\naudit @A.COM protocols=pop3,smtp", "t.conf:2: a second mode rule for '@a.com' (protocols pop3); the first is at t.conf:1" },
	{ "audit *\noff *", "a second mode rule for '*'" },
	{ "require Alice\noff alice", "a second mode rule for 'alice'" },
};

static void test_rows(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char buf[1200];
		size_t n;
		const char *err = load_error(rows[i].text, strlen(rows[i].text), buf, sizeof(buf), &n);
		if (rows[i].want == NULL && err != NULL)
			fail_msg("row %zu should load: %s", i, err);
		if (rows[i].want != NULL && err == NULL)
			fail_msg("row %zu loaded: %s", i, rows[i].text);
		if (rows[i].want != NULL && strstr(err, rows[i].want) == NULL)
			fail_msg("row %zu: '%s' lacks '%s'", i, err, rows[i].want);
	}
}

static void test_long_lines_and_nul(void **state)
{
	char buf[1200], text[TG_POLICY_MAX_LINE + 100];
	size_t n;

	/* exactly at the limit: loads (a comment padded to the limit) */
	memset(text, ' ', sizeof(text));
	memcpy(text, "audit * #", 9);
	assert_null(load_error(text, TG_POLICY_MAX_LINE, buf, sizeof(buf), &n));
	/* one byte over: refused, not cut */
	const char *err = load_error(text, TG_POLICY_MAX_LINE + 1, buf, sizeof(buf), &n);
	assert_non_null(err);
	assert_non_null(strstr(err, "t.conf:1: line longer than 4096 bytes"));

	static const char with_nul[] = "audit *\nrequire a@b\0x\n";
	err = load_error(with_nul, sizeof(with_nul) - 1, buf, sizeof(buf), &n);
	assert_non_null(err);
	assert_non_null(strstr(err, "t.conf:2: NUL byte"));
}

/* min_tls_message= is bounded like message=: 512 bytes load, 513 do not;
 * the text is kept and read back. */
static void test_min_tls_message_bounds(void **state)
{
	char buf[1200], text[TG_POLICY_MAX_TEXT + 100];
	size_t n;
	static const char head[] = "require a@b min_tls=TLSv1.3 min_tls_message=";

	for (size_t len = TG_POLICY_MAX_TEXT; len <= TG_POLICY_MAX_TEXT + 1; len++) {
		memcpy(text, head, sizeof(head) - 1);
		memset(text + sizeof(head) - 1, 'x', len);
		const char *err = load_error(text, sizeof(head) - 1 + len, buf, sizeof(buf), &n);
		if (len == TG_POLICY_MAX_TEXT)
			assert_null(err);
		else
			assert_non_null(strstr(err, "min_tls_message is longer than 512 bytes"));
	}

	static const char rule[] = "require a@b min_tls=TLSv1.3 min_tls_message=\"Old TLS\"\n";
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("t.conf", rule, strlen(rule), &errs);
	assert_non_null(p);
	struct tg_mode_rule_info info;
	tg_policy_mode_rule(p, 0, &info);
	assert_string_equal(info.min_tls_message, "Old TLS");
	assert_null(info.message);
	tg_policy_free(p);
	tg_errors_clear(&errs);
}

static void test_every_error_reported(void **state)
{
	static const char text[] =
		"require @a.com from=2027-02-30\n"
		"exempt @a.com 192.0.2.1/24\n"
		"audit *\n"
		"foo bar\n"
		"require @b.com note=\"abc\n";
	struct tg_errors errs;
	tg_errors_init(&errs);
	assert_null(tg_policy_load_buffer("p.conf", text, sizeof(text) - 1, &errs));
	assert_int_equal(errs.count, 4);
	assert_non_null(strstr(errs.msgs[0], "p.conf:1:"));
	assert_non_null(strstr(errs.msgs[1], "p.conf:2:"));
	assert_non_null(strstr(errs.msgs[2], "p.conf:4:"));
	assert_non_null(strstr(errs.msgs[3], "p.conf:5:"));
	tg_errors_clear(&errs);

	/* A flood of bad lines stops at the error limit, saying so. */
	char big[20000];
	size_t used = 0;
	while (used + 8 < sizeof(big)) {
		memcpy(big + used, "bogus!\n", 7);
		used += 7;
	}
	assert_null(tg_policy_load_buffer("f.conf", big, used, &errs));
	assert_int_equal(errs.count, TG_ERRORS_MAX);
	assert_true(tg_errors_total(&errs) > TG_ERRORS_MAX);
	tg_errors_clear(&errs);
}

static void test_stats_and_iteration(void **state)
{
	static const char text[] =
		"audit *\n"
		"require @example.com from=2027-03-01\n"
		"require @shop.example.net protocols=imap,pop3 message=\"Use TLS\"\n"
		"off bob@example.com note=\"opted out\"\n"
		"require alice@example.com min_tls=TLSv1.2\n"
		"require carol\n"
		"exempt scanner@example.com 192.0.2.10/32 protocols=smtp until=2027-12-31\n"
		"exempt @example.org 10.20.0.0/16,2001:db8:1::/48\n"
		"exempt * 192.0.2.99 until=2026-12-01\n"
		"exempt @example.org 10.30.0.0/16 until=2026-11-01\n";
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("s.conf", text, sizeof(text) - 1, &errs);
	assert_non_null(p);
	struct tg_policy_stats st;
	tg_policy_stats(p, 20261129, &st);
	assert_int_equal(st.mode_rules, 6);
	assert_int_equal(st.account_subjects, 4);	/* bob, alice, carol, scanner */
	assert_int_equal(st.domain_subjects, 3);	/* example.com, shop, example.org */
	assert_true(st.has_global);
	assert_int_equal(st.exemptions, 4);
	assert_int_equal(st.exemptions_expired, 1);	/* 2026-11-01 */
	assert_int_equal(st.exemptions_expiring, 1);	/* 2026-12-01 */

	struct tg_mode_rule_info m;
	tg_policy_mode_rule(p, 2, &m);
	assert_string_equal(m.subject, "@shop.example.net");
	assert_int_equal(m.mode, TG_MODE_REQUIRE);
	assert_int_equal(m.protocols, (1 << TG_SERVICE_IMAP) | (1 << TG_SERVICE_POP3));
	assert_string_equal(m.message, "Use TLS");
	assert_int_equal(m.ref.line, 3);
	tg_policy_mode_rule(p, 4, &m);
	assert_int_equal(m.min_tls, TG_TLS_V1_2);

	struct tg_exemption_info e;
	tg_policy_exemption(p, 1, &e);
	assert_string_equal(e.subject, "@example.org");
	assert_int_equal(e.net_count, 2);
	assert_int_equal(e.until, 0);
	assert_int_equal(e.ref.line, 8);
	tg_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_long_lines_and_nul),
		cmocka_unit_test(test_min_tls_message_bounds),
		cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_stats_and_iteration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
