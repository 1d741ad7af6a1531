/*
 * test-formats - tlsgate autoconfig: the autoconfig_* keys of tlsgate.conf,
 * DNS name checks, and what each client file holds (TLS endpoints only,
 * services left out or marked "not offered", escaping, stable UUIDs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig/formats.h"
#include "config.h"
#include "text.h"

static void test_dns_names(void **state)
{
	static const struct {
		const char *name;
		bool valid;
	} rows[] = {
		{ "example.com", true },
		{ "mail.example.net", true },
		{ "localhost", true },
		{ "xn--mller-kva.example", true },
		{ "a-b.c9", true },
		{ "", false },
		{ ".example.com", false },
		{ "example.com.", false },
		{ "exa..mple", false },
		{ "-mail.example", false },
		{ "mail-.example", false },
		{ "mail_1.example", false },
		{ "müller.example", false },
		{ "a/b", false },
		{ "..", false },
		{ "mail example", false },
		{ "mail.example.com:993", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(tg_dns_name_valid(rows[i].name, strlen(rows[i].name)),
				 rows[i].valid);
	char label[70];
	memset(label, 'a', 64);
	label[64] = '\0';
	assert_false(tg_dns_name_valid(label, 64));
	assert_true(tg_dns_name_valid(label, 63));
	char longname[300];
	for (int i = 0; i < 300; i += 2) {
		longname[i] = 'a';
		longname[i + 1] = '.';
	}
	assert_true(tg_dns_name_valid(longname, 253));
	assert_false(tg_dns_name_valid(longname, 255));
}

static void test_config_keys(void **state)
{
	static const struct {
		const char *text;
		const char *want;	/* NULL: loads */
	} rows[] = {
		{ "autoconfig_imap = imap.example.net\n", NULL },
		{ "autoconfig_imap = imap.example.net:10993\nautoconfig_pop3 = pop.example.net\n"
		  "autoconfig_submission = smtp.example.net:587\nautoconfig_name = \"Example & Co <Mail>\"\n", NULL },
		{ "autoconfig_imap = 192.0.2.1\n", NULL },	/* all digits labels are names */
		{ "autoconfig_imap = imap.example.net:0\n", "port from 1 to 65535" },
		{ "autoconfig_imap = imap.example.net:99999\n", "port from 1 to 65535" },
		{ "autoconfig_imap = imap.example.net:\n", "port from 1 to 65535" },
		{ "autoconfig_imap = [::1]:993\n", "expected a server name" },
		{ "autoconfig_imap = imap_1.example.net\n", "expected a server name" },
		{ "autoconfig_pop3 = :995\n", "expected a server name" },
		{ "autoconfig_submission = smtp.example.net:25\n", "port 465 (implicit TLS) or 587 (STARTTLS)" },
		{ "autoconfig_submission = smtp.example.net:143\n", "port 465 (implicit TLS) or 587 (STARTTLS)" },
		{ "autoconfig_name = \"01234567890123456789012345678901234567890123456789012345678901234\"\n",
		  "longer than 64 bytes" },
		{ "autoconfig_imap = a.example\nautoconfig_imap = b.example\n", "given twice" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), "policy = /p\n%s", rows[i].text);
		struct tg_config cfg;
		struct tg_errors errs;
		tg_config_init(&cfg);
		tg_errors_init(&errs);
		int r = tg_config_parse(&cfg, "c.conf", text, strlen(text), &errs);
		if (rows[i].want == NULL) {
			if (r != 0)
				fail_msg("row %zu: %s", i, errs.count ? errs.msgs[0] : "?");
		} else {
			assert_int_equal(r, -1);
			assert_true(errs.count >= 1);
			if (strstr(errs.msgs[0], rows[i].want) == NULL)
				fail_msg("row %zu: got '%s', want '%s'", i, errs.msgs[0],
					 rows[i].want);
		}
		tg_errors_clear(&errs);
		tg_config_free(&cfg);
	}

	/* the default ports */
	struct tg_config cfg;
	struct tg_errors errs;
	const char *text = "policy = /p\nautoconfig_imap = i.example\n"
			   "autoconfig_pop3 = p.example\nautoconfig_submission = s.example\n";
	tg_config_init(&cfg);
	tg_errors_init(&errs);
	assert_int_equal(tg_config_parse(&cfg, "c.conf", text, strlen(text), &errs), 0);
	assert_string_equal(cfg.autoconfig_imap.host, "i.example");
	assert_int_equal(cfg.autoconfig_imap.port, 993);
	assert_int_equal(cfg.autoconfig_pop3.port, 995);
	assert_int_equal(cfg.autoconfig_submission.port, 465);
	tg_config_free(&cfg);
}

/* Renders one file into a string (freed by the caller). */
static char *render(int (*writer)(FILE *, const struct ac_settings *),
		    const struct ac_settings *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(writer(f, s), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static const struct tg_endpoint none = { NULL, 0 };
static const struct tg_endpoint imap = { (char *)"imap.example.net", 993 };
static const struct tg_endpoint pop3 = { (char *)"pop.example.net", 995 };
static const struct tg_endpoint smtps = { (char *)"smtp.example.net", 465 };
static const struct tg_endpoint starttls = { (char *)"smtp.example.net", 587 };

static const struct {
	const struct tg_endpoint *imap, *pop3, *sub;
	const char *file;	/* m: mozilla, a: autodiscover, p: profile, z: zone */
	const char *has[6];
	const char *lacks[4];
} cases[] = {
	{ &imap, &pop3, &smtps, "m",
	  { "<incomingServer type=\"imap\">", "<port>993</port>", "<incomingServer type=\"pop3\">",
	    "<outgoingServer type=\"smtp\">", "<port>465</port>", "<domain>example.com</domain>" },
	  { "STARTTLS", "plain\"", ">143<", ">110<" } },
	{ &imap, &none, &starttls, "m",
	  { "<port>587</port>\n      <socketType>STARTTLS</socketType>", "<socketType>SSL</socketType>",
	    NULL },
	  { "pop3", NULL } },
	{ &imap, &pop3, &smtps, "a",
	  { "<Type>IMAP</Type>", "<Type>POP3</Type>", "<Type>SMTP</Type>", "<Encryption>SSL</Encryption>",
	    "<SSL>on</SSL>", "<SPA>off</SPA>" },
	  { "<SSL>off</SSL>", "<Encryption>None</Encryption>", "TLS<", NULL } },
	{ &imap, &none, &starttls, "a",
	  { "<Encryption>TLS</Encryption>", "<Port>587</Port>", NULL },
	  { "POP3", NULL } },
	{ &imap, &pop3, &smtps, "p",
	  { "<string>EmailTypeIMAP</string>", "<integer>993</integer>",
	    "<key>IncomingMailServerUseSSL</key>\n\t\t\t<true/>",
	    "<key>OutgoingMailServerUseSSL</key>\n\t\t\t<true/>",
	    "<string>com.example.mail</string>", "FCE5EBFB-9B35-552D-8378-04219901287C" },
	  { "<false/>", "pop.example.net", NULL } },
	{ &none, &pop3, &starttls, "p",
	  { "<string>EmailTypePOP</string>", "<integer>995</integer>", "<integer>587</integer>", NULL },
	  { "<false/>", NULL } },
	{ &imap, &pop3, &smtps, "z",
	  { "_imaps._tcp.example.com.", " 3600 IN SRV 0 1 993 imap.example.net.\n",
	    "_submissions._tcp.example.com.           3600 IN SRV 0 1 465 smtp.example.net.\n",
	    "_submission._tcp.example.com.            3600 IN SRV 0 0 0 .\n",
	    "_imap._tcp.example.com.                  3600 IN SRV 0 0 0 .\n",
	    "_pop3._tcp.example.com.                  3600 IN SRV 0 0 0 .\n" },
	  { " 143 ", " 110 ", NULL } },
	{ &imap, &none, &starttls, "z",
	  { "_pop3s._tcp.example.com.                 3600 IN SRV 0 0 0 .\n",
	    "_submissions._tcp.example.com.           3600 IN SRV 0 0 0 .\n",
	    "_submission._tcp.example.com.            3600 IN SRV 0 1 587 smtp.example.net.\n", NULL },
	  { NULL } },
};

static void test_files(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ac_settings s = {
			.domain = "example.com", .name = "Example Mail",
			.imap = cases[i].imap, .pop3 = cases[i].pop3,
			.submission = cases[i].sub, .ttl = 3600,
		};
		int (*w)(FILE *, const struct ac_settings *) =
			cases[i].file[0] == 'm' ? ac_write_mozilla :
			cases[i].file[0] == 'a' ? ac_write_autodiscover :
			cases[i].file[0] == 'p' ? ac_write_mobileconfig : ac_write_zone;
		char *text = render(w, &s);
		for (size_t k = 0; k < 6 && cases[i].has[k]; k++)
			if (strstr(text, cases[i].has[k]) == NULL)
				fail_msg("case %zu: no '%s' in:\n%s", i, cases[i].has[k], text);
		for (size_t k = 0; k < 4 && cases[i].lacks[k]; k++)
			if (strstr(text, cases[i].lacks[k]) != NULL)
				fail_msg("case %zu: '%s' in:\n%s", i, cases[i].lacks[k], text);
		/* the same settings give the same bytes */
		char *again = render(w, &s);
		assert_string_equal(text, again);
		free(again);
		free(text);
	}
}

static void test_display_name_escaped(void **state)
{
	struct ac_settings s = {
		.domain = "example.com", .name = "A&B <x> \"q\" 'a'",
		.imap = &imap, .pop3 = &none, .submission = &smtps, .ttl = 3600,
	};
	int (*writers[])(FILE *, const struct ac_settings *) = {
		ac_write_mozilla, ac_write_autodiscover, ac_write_mobileconfig,
	};
	for (size_t i = 0; i < 3; i++) {
		char *text = render(writers[i], &s);
		assert_non_null(strstr(text, "A&amp;B &lt;x&gt; &quot;q&quot; &#39;a&#39;"));
		assert_null(strstr(text, "<x>"));
		free(text);
	}
}

static void test_uuid(void **state)
{
	char buf[40];
	/* RFC 4122 version 5, DNS name space: the same as Python's
	 * uuid.uuid5(uuid.NAMESPACE_DNS, name). */
	assert_string_equal(ac_uuid("tlsgate-autoconfig-profile.example.com", buf),
			    "FCE5EBFB-9B35-552D-8378-04219901287C");
	assert_int_equal(strlen(ac_uuid("x", buf)), 36);
	assert_int_equal(buf[14], '5');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_display_name_escaped),
		cmocka_unit_test(test_uuid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
