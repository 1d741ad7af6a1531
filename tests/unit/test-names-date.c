/*
 * test-names-date - service lists, TLS names, calendar days.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "date.h"
#include "names.h"

static void test_service_list(void **state)
{
	static const struct {
		const char *in;
		int mask;	/* -1: error */
		const char *why;
	} rows[] = {
		{ "imap", 1 << TG_SERVICE_IMAP, NULL },
		{ "imap,pop3", (1 << TG_SERVICE_IMAP) | (1 << TG_SERVICE_POP3), NULL },
		{ "IMAP,Smtp", (1 << TG_SERVICE_IMAP) | (1 << TG_SERVICE_SMTP), NULL },
		{ "imap,pop3,smtp,submission,sieve", TG_SERVICES_ALL, NULL },
		{ "", -1, "empty protocol list" },
		{ "imap,", -1, "empty item" },
		{ ",imap", -1, "empty item" },
		{ "imap,,pop3", -1, "empty item" },
		{ "imaps", -1, "unknown protocol 'imaps'" },
		{ "lmtp", -1, "unknown protocol 'lmtp'" },
		{ "imap,imap", -1, "listed twice" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint8_t mask = 0;
		char why[200] = "";
		int r = tg_service_list_parse(rows[i].in, strlen(rows[i].in), &mask, why, sizeof(why));
		if (rows[i].mask >= 0) {
			assert_int_equal(r, 0);
			assert_int_equal(mask, rows[i].mask);
		} else {
			assert_int_equal(r, -1);
			if (strstr(why, rows[i].why) == NULL)
				fail_msg("row %zu: '%s' lacks '%s'", i, why, rows[i].why);
		}
	}
	char buf[64];
	assert_string_equal(tg_service_list_format((1 << TG_SERVICE_SIEVE) | 1, buf, sizeof(buf)),
			    "imap,sieve");
}

static void test_tls_names(void **state)
{
	static const struct {
		const char *in;
		int version;	/* tg_tls_version_parse */
		int tls;	/* tg_tls_parse */
	} rows[] = {
		{ "TLSv1", TG_TLS_V1_0, TG_TLS_V1_0 },
		{ "TLSv1.1", TG_TLS_V1_1, TG_TLS_V1_1 },
		{ "TLSv1.2", TG_TLS_V1_2, TG_TLS_V1_2 },
		{ "TLSv1.3", TG_TLS_V1_3, TG_TLS_V1_3 },
		{ "none", -1, TG_TLS_NONE },
		{ "yes", -1, TG_TLS_UNKNOWN },
		{ "tlsv1.2", -1, -1 },
		{ "SSLv3", -1, -1 },
		{ "TLSv1.4", -1, -1 },
		{ "", -1, -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(tg_tls_version_parse(rows[i].in, strlen(rows[i].in)), rows[i].version);
		assert_int_equal(tg_tls_parse(rows[i].in, strlen(rows[i].in)), rows[i].tls);
	}
	assert_true(TG_TLS_V1_3 > TG_TLS_V1_2 && TG_TLS_V1_2 > TG_TLS_V1_1);
}

static void test_date_parse(void **state)
{
	static const struct {
		const char *in;
		int32_t want;	/* 0: error */
	} rows[] = {
		{ "2027-03-01", 20270301 },
		{ "2024-02-29", 20240229 },	/* leap year */
		{ "2000-02-29", 20000229 },	/* divisible by 400 */
		{ "1900-02-28", 0 },		/* before 1970 */
		{ "2100-02-29", 0 },		/* divisible by 100 */
		{ "2027-02-29", 0 },
		{ "2027-02-30", 0 },
		{ "2027-04-31", 0 },
		{ "2027-12-31", 20271231 },
		{ "2027-13-01", 0 },
		{ "2027-00-10", 0 },
		{ "2027-01-00", 0 },
		{ "2027-1-01", 0 },
		{ "27-01-01", 0 },
		{ "2027/01/01", 0 },
		{ "2027-01-01T00", 0 },
		{ "+027-01-01", 0 },
		{ "", 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int32_t day = 0;
		int r = tg_date_parse(rows[i].in, strlen(rows[i].in), &day);
		if (rows[i].want == 0) {
			if (r != -1)
				fail_msg("row %zu '%s' accepted", i, rows[i].in);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(day, rows[i].want);
		}
	}
}

static void test_date_diff(void **state)
{
	static const struct {
		int32_t a, b;
		long want;
	} rows[] = {
		{ 20270301, 20270301, 0 },
		{ 20270228, 20270301, 1 },
		{ 20240228, 20240301, 2 },
		{ 20261231, 20270101, 1 },
		{ 20270101, 20261231, -1 },
		{ 19700101, 20000101, 10957 },
		{ 20261129, 20261229, 30 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(tg_date_diff(rows[i].a, rows[i].b), rows[i].want);
	char buf[TG_DATE_STRLEN];
	assert_string_equal(tg_date_format(20270301, buf, sizeof(buf)), "2027-03-01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_list),
		cmocka_unit_test(test_tls_names),
		cmocka_unit_test(test_date_parse),
		cmocka_unit_test(test_date_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
