/*
 * test-decide - every rule of the resolution (docs/policy.md), one row
 * per case: account over domain over '*', protocols falling through,
 * from= boundaries, min_tls, exemptions by subject/protocol/network/until,
 * IPv4, IPv6 and IPv4-mapped clients, the userdb override.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "decide.h"
#include "policy.h"

static const char policy_text[] =
	"audit      *                                                      # 1\n"
	"require    @example.com         from=2027-03-01                   # 2\n"
	"require    @shop.example.net    protocols=imap,pop3 message=\"Shop: use TLS\" # 3\n"
	"off        bob@example.com      note=\"customer opted out\"         # 4\n"
	"require    alice@example.com    min_tls=TLSv1.2                   # 5\n"
	"exempt     scanner@example.com  192.0.2.10/32 protocols=smtp until=2027-12-31 note=\"Canon\" # 6\n"
	"exempt     @example.org         10.20.0.0/16,2001:db8:1::/48       # 7\n"
	"require    @example.org         protocols=imap                    # 8\n"
	"off        @example.org         protocols=sieve                   # 9\n"
	"require    printer              protocols=smtp                    # 10\n"
	"exempt     *                    198.51.100.0/24 protocols=pop3    # 11\n"
	"require    @past.example        from=2020-01-01                   # 12\n"
	"audit      dave@shop.example.net protocols=imap                   # 13\n";

enum { NONE = 0 };

static const struct row {
	const char *user;
	const char *service;
	const char *ip;		/* NULL: unknown address */
	const char *tls;
	int32_t today;
	int override;
	const char *verdict;
	int rule_line;		/* 0: no rule (default off); -1: userdb */
	int exemption_line;
	const char *mode;	/* effective */
} rows[] = {
	/* no rule at all for the service: '*' audit decides */
	{ "nobody@else.net", "imap", "203.0.113.5", "none", 20261129, -1, "audit", 1, 0, "audit" },
	{ "nobody@else.net", "imap", "203.0.113.5", "TLSv1.3", 20261129, -1, "allow", 1, 0, "audit" },
	{ "nobody@else.net", "imap", "203.0.113.5", "yes", 20261129, -1, "allow", 1, 0, "audit" },
	/* domain rule with from=: audit before, reject on and after the day */
	{ "x@example.com", "imap", "203.0.113.5", "none", 20270228, -1, "audit", 2, 0, "audit" },
	{ "x@example.com", "imap", "203.0.113.5", "none", 20270301, -1, "reject", 2, 0, "require" },
	{ "x@example.com", "imap", "203.0.113.5", "none", 20270302, -1, "reject", 2, 0, "require" },
	{ "X@EXAMPLE.COM", "pop3", "203.0.113.5", "none", 20270302, -1, "reject", 2, 0, "require" },
	{ "x@example.com", "imap", "203.0.113.5", "TLSv1", 20270302, -1, "allow", 2, 0, "require" },
	{ "x@sub.example.com", "imap", "203.0.113.5", "none", 20270302, -1, "audit", 1, 0, "audit" },
	/* account beats domain */
	{ "bob@example.com", "imap", "203.0.113.5", "none", 20270302, -1, "allow", 4, 0, "off" },
	{ "Bob@Example.COM", "smtp", "203.0.113.5", "none", 20270302, -1, "allow", 4, 0, "off" },
	/* min_tls: older TLS counts as plaintext, unknown version passes */
	{ "alice@example.com", "imap", "203.0.113.5", "TLSv1.1", 20261129, -1, "reject", 5, 0, "require" },
	{ "alice@example.com", "imap", "203.0.113.5", "TLSv1.2", 20261129, -1, "allow", 5, 0, "require" },
	{ "alice@example.com", "imap", "203.0.113.5", "TLSv1.3", 20261129, -1, "allow", 5, 0, "require" },
	{ "alice@example.com", "imap", "203.0.113.5", "yes", 20261129, -1, "allow", 5, 0, "require" },
	{ "alice@example.com", "imap", "203.0.113.5", "none", 20261129, -1, "reject", 5, 0, "require" },
	/* protocols: smtp is not in the shop rule, falls to '*' */
	{ "u@shop.example.net", "imap", "203.0.113.5", "none", 20261129, -1, "reject", 3, 0, "require" },
	{ "u@shop.example.net", "smtp", "203.0.113.5", "none", 20261129, -1, "audit", 1, 0, "audit" },
	/* account rule for imap only; pop3 falls through to the domain */
	{ "dave@shop.example.net", "imap", "203.0.113.5", "none", 20261129, -1, "audit", 13, 0, "audit" },
	{ "dave@shop.example.net", "pop3", "203.0.113.5", "none", 20261129, -1, "reject", 3, 0, "require" },
	/* exemption of an account: protocol, network, until (last day applies) */
	{ "scanner@example.com", "smtp", "192.0.2.10", "none", 20271231, -1, "exempt", 2, 6, "require" },
	{ "scanner@example.com", "smtp", "::ffff:192.0.2.10", "none", 20271231, -1, "exempt", 2, 6, "require" },
	{ "scanner@example.com", "smtp", "192.0.2.10", "none", 20280101, -1, "reject", 2, 0, "require" },
	{ "scanner@example.com", "smtp", "192.0.2.11", "none", 20271231, -1, "reject", 2, 0, "require" },
	{ "scanner@example.com", "imap", "192.0.2.10", "none", 20271231, -1, "reject", 2, 0, "require" },
	{ "scanner@example.com", "smtp", NULL, "none", 20271231, -1, "reject", 2, 0, "require" },
	/* the exemption also covers too-old TLS */
	{ "scanner@example.com", "smtp", "192.0.2.10", "TLSv1", 20271231, -1, "allow", 2, 0, "require" },
	/* domain exemption, IPv4 and IPv6 */
	{ "p@example.org", "imap", "10.20.99.1", "none", 20261129, -1, "exempt", 8, 7, "require" },
	{ "p@example.org", "imap", "10.21.0.1", "none", 20261129, -1, "reject", 8, 0, "require" },
	{ "p@example.org", "imap", "2001:db8:1:2::3", "none", 20261129, -1, "exempt", 8, 7, "require" },
	{ "p@example.org", "imap", "2001:db8:2::3", "none", 20261129, -1, "reject", 8, 0, "require" },
	{ "p@example.org", "pop3", "10.21.0.1", "none", 20261129, -1, "audit", 1, 0, "audit" },
	{ "p@example.org", "sieve", "10.21.0.1", "none", 20261129, -1, "allow", 9, 0, "off" },
	/* an exemption in audit mode still names itself */
	{ "p@example.org", "pop3", "10.20.0.1", "none", 20261129, -1, "exempt", 1, 7, "audit" },
	/* '*' exemption applies to every account */
	{ "x@example.com", "pop3", "198.51.100.77", "none", 20270302, -1, "exempt", 2, 11, "require" },
	{ "x@example.com", "imap", "198.51.100.77", "none", 20270302, -1, "reject", 2, 0, "require" },
	/* bare login names match only themselves */
	{ "printer", "smtp", "203.0.113.5", "none", 20261129, -1, "reject", 10, 0, "require" },
	{ "printer@example.net", "smtp", "203.0.113.5", "none", 20261129, -1, "audit", 1, 0, "audit" },
	{ "PRINTER", "smtp", "203.0.113.5", "none", 20261129, -1, "reject", 10, 0, "require" },
	/* from= in the past enforces */
	{ "u@past.example", "submission", "203.0.113.5", "none", 20261129, -1, "reject", 12, 0, "require" },
	/* the userdb override (tlsgate_mode=) beats the files, exemptions stay */
	{ "bob@example.com", "imap", "203.0.113.5", "none", 20261129, TG_MODE_REQUIRE, "reject", -1, 0, "require" },
	{ "x@example.com", "imap", "203.0.113.5", "none", 20270302, TG_MODE_OFF, "allow", -1, 0, "off" },
	{ "x@example.com", "imap", "203.0.113.5", "none", 20270302, TG_MODE_AUDIT, "audit", -1, 0, "audit" },
	{ "p@example.org", "imap", "10.20.0.1", "none", 20261129, TG_MODE_REQUIRE, "exempt", -1, 7, "require" },
	/* odd login names never crash and never match a domain as an account */
	{ "@example.com", "imap", "203.0.113.5", "none", 20270302, -1, "reject", 2, 0, "require" },
	{ "*", "imap", "203.0.113.5", "none", 20270302, -1, "audit", 1, 0, "audit" },
	{ "", "imap", "203.0.113.5", "none", 20270302, -1, "audit", 1, 0, "audit" },
	{ "trailing@", "imap", "203.0.113.5", "none", 20270302, -1, "audit", 1, 0, "audit" },
};

static void test_rows(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("d.conf", policy_text,
						    sizeof(policy_text) - 1, &errs);
	if (p == NULL)
		fail_msg("policy: %s", errs.msgs[0]);

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct tg_addr addr;
		struct tg_login login = {
			.user = r->user,
			.service = (enum tg_service)tg_service_parse(r->service, strlen(r->service)),
			.client = NULL,
			.tls = (enum tg_tls)tg_tls_parse(r->tls, strlen(r->tls)),
			.today = r->today,
			.mode_override = r->override,
		};
		if (r->ip != NULL) {
			assert_int_equal(tg_addr_parse(r->ip, strlen(r->ip), &addr), 0);
			login.client = &addr;
		}
		struct tg_decision d;
		tg_decide(p, &login, &d);
		if (strcmp(tg_verdict_name(d.verdict), r->verdict) != 0)
			fail_msg("row %zu (%s %s %s): verdict %s, want %s", i, r->user,
				 r->service, r->tls, tg_verdict_name(d.verdict), r->verdict);
		if (strcmp(tg_mode_name(d.mode), r->mode) != 0)
			fail_msg("row %zu: mode %s, want %s", i, tg_mode_name(d.mode), r->mode);
		if (r->rule_line == 0)
			assert_null(d.rule.file);
		else if (r->rule_line < 0)
			assert_string_equal(d.rule.file, TG_REF_USERDB);
		else if (d.rule.file == NULL || d.rule.line != (uint32_t)r->rule_line)
			fail_msg("row %zu: rule line %u, want %d", i, d.rule.line, r->rule_line);
		if (r->exemption_line == 0)
			assert_null(d.exemption.file);
		else if (d.exemption.file == NULL || d.exemption.line != (uint32_t)r->exemption_line)
			fail_msg("row %zu: exemption line %u, want %d", i,
				 d.exemption.line, r->exemption_line);
	}
	tg_policy_free(p);
}

static void test_details(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("d.conf", policy_text,
						    sizeof(policy_text) - 1, &errs);
	assert_non_null(p);
	struct tg_addr addr;
	assert_int_equal(tg_addr_parse("203.0.113.5", 11, &addr), 0);

	struct tg_decision d;
	struct tg_login login = {
		.user = "u@shop.example.net", .service = TG_SERVICE_IMAP, .client = &addr,
		.tls = TG_TLS_NONE, .today = 20261129, .mode_override = -1,
	};
	tg_decide(p, &login, &d);
	assert_string_equal(d.message, "Shop: use TLS");
	assert_string_equal(d.rule.file, "d.conf");

	login.user = "x@example.com";
	tg_decide(p, &login, &d);
	assert_null(d.message);
	assert_int_equal(d.enforce_from, 20270301);
	assert_int_equal(d.rule_mode, TG_MODE_REQUIRE);
	assert_int_equal(d.mode, TG_MODE_AUDIT);

	login.user = "alice@example.com";
	login.tls = TG_TLS_V1_1;
	tg_decide(p, &login, &d);
	assert_true(d.tls_below_min);
	assert_int_equal(d.min_tls, TG_TLS_V1_2);

	login.user = "bob@example.com";
	tg_decide(p, &login, &d);
	assert_string_equal(d.rule_note, "customer opted out");

	char buf[64];
	struct tg_rule_ref none = { NULL, 0 }, ref = { "a.conf", 7 };
	assert_string_equal(tg_rule_ref_format(&none, buf, sizeof(buf)), "default");
	assert_string_equal(tg_rule_ref_format(&ref, buf, sizeof(buf)), "a.conf:7");
	tg_policy_free(p);
}

/* Which text a refused client is told, per reason (decide.h). */
static void test_refusal_text_per_reason(void **state)
{
	static const char text[] =
		"require @a.example min_tls=TLSv1.3\n"
		"require own@a.example min_tls=TLSv1.2 message=\"no TLS\" min_tls_message=\"old TLS\"\n"
		"require @n.example message=\"rule text\"\n";
	static const struct {
		const char *user;
		enum tg_tls tls;
		enum tg_refusal_source source;
		const char *want;
	} text_rows[] = {
		{ "x@a.example", TG_TLS_NONE, TG_TEXT_CONFIG, "config text" },
		{ "x@a.example", TG_TLS_V1_2, TG_TEXT_MIN_TLS_DEFAULT,
		  "Your mail program connected with TLSv1.2, but this server requires "
		  "TLSv1.3 or newer. Update the mail program, or allow the newer TLS "
		  "version in its security settings" },
		{ "x@a.example", TG_TLS_V1_0, TG_TEXT_MIN_TLS_DEFAULT,
		  "Your mail program connected with TLSv1, but this server requires "
		  "TLSv1.3 or newer. Update the mail program, or allow the newer TLS "
		  "version in its security settings" },
		{ "own@a.example", TG_TLS_NONE, TG_TEXT_RULE, "no TLS" },
		{ "own@a.example", TG_TLS_V1_1, TG_TEXT_MIN_TLS_RULE, "old TLS" },
		{ "y@n.example", TG_TLS_NONE, TG_TEXT_RULE, "rule text" },
	};
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("m.conf", text, strlen(text), &errs);
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(text_rows) / sizeof(text_rows[0]); i++) {
		struct tg_decision d;
		struct tg_login login = {
			.user = text_rows[i].user, .service = TG_SERVICE_IMAP,
			.tls = text_rows[i].tls, .today = 20261129, .mode_override = -1,
		};
		char buf[TG_CONFIG_MAX_MESSAGE + 1];
		tg_decide(p, &login, &d);
		assert_int_equal(d.verdict, TG_VERDICT_REJECT);
		assert_int_equal(tg_refusal_source(&d), text_rows[i].source);
		const char *got = tg_refusal_text(&d, "config text", buf, sizeof(buf));
		if (strcmp(got, text_rows[i].want) != 0)
			fail_msg("row %zu: \"%s\", want \"%s\"", i, got, text_rows[i].want);
	}
	tg_policy_free(p);
	tg_errors_clear(&errs);
}

static void test_empty_policy(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("e.conf", "", 0, &errs);
	assert_non_null(p);
	struct tg_decision d;
	struct tg_login login = {
		.user = "a@b", .service = TG_SERVICE_IMAP, .tls = TG_TLS_NONE,
		.today = 20261129, .mode_override = -1,
	};
	tg_decide(p, &login, &d);
	assert_int_equal(d.verdict, TG_VERDICT_ALLOW);
	assert_int_equal(d.mode, TG_MODE_OFF);
	assert_null(d.rule.file);
	tg_policy_free(p);
}

/* "What if the domain were enforced today?" (tlsgate report --would-break):
 * the account's own rules and exemptions still count, the rest is require. */
static void test_assume_domain_require(void **state)
{
	static const struct {
		const char *user, *service, *ip;
		const char *verdict;
		int rule_line;	/* 0: the supposed domain rule */
	} what_if[] = {
		{ "x@example.com", "imap", "203.0.113.5", "reject", 0 },	/* from= ignored */
		{ "bob@example.com", "imap", "203.0.113.5", "allow", 4 },	/* own off rule */
		{ "dave@shop.example.net", "imap", "203.0.113.5", "audit", 13 },	/* own audit rule */
		{ "dave@shop.example.net", "smtp", "203.0.113.5", "reject", 0 },
		{ "scanner@example.com", "smtp", "192.0.2.10", "exempt", 0 },
		{ "p@example.org", "imap", "10.20.0.1", "exempt", 0 },
		{ "p@example.org", "sieve", "10.99.0.1", "reject", 0 },	/* domain off is what changes */
		{ "nobody@else.net", "pop3", "198.51.100.1", "exempt", 0 },	/* '*' exemption */
		{ "printer", "smtp", "203.0.113.5", "reject", 10 },
	};
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("d.conf", policy_text,
						    sizeof(policy_text) - 1, &errs);
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(what_if) / sizeof(what_if[0]); i++) {
		struct tg_addr addr;
		assert_int_equal(tg_addr_parse(what_if[i].ip, strlen(what_if[i].ip), &addr), 0);
		struct tg_login login = {
			.user = what_if[i].user,
			.service = (enum tg_service)tg_service_parse(what_if[i].service, strlen(what_if[i].service)),
			.client = &addr, .tls = TG_TLS_NONE, .today = 20261129,
			.mode_override = -1, .assume_domain_require = true,
		};
		struct tg_decision d;
		tg_decide(p, &login, &d);
		if (strcmp(tg_verdict_name(d.verdict), what_if[i].verdict) != 0)
			fail_msg("row %zu: %s, want %s", i, tg_verdict_name(d.verdict), what_if[i].verdict);
		if (what_if[i].rule_line == 0)
			assert_null(d.rule.file);
		else
			assert_int_equal(d.rule.line, what_if[i].rule_line);
	}
	tg_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_details),
		cmocka_unit_test(test_empty_policy),
		cmocka_unit_test(test_refusal_text_per_reason),
		cmocka_unit_test(test_assume_domain_require),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
