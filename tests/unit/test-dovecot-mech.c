/*
 * test-dovecot-mech - the Dovecot-free parts of the passdb's answers to
 * enumeration and unchecked mechanisms (dovecot-plugin/tgdc.h): the decoy
 * password handed to credentials-lookup mechanisms on a refusal, and the
 * warning about ANONYMOUS in auth_mechanisms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tgdc.h"

static void test_decoy(void **state)
{
	char a[TGDC_DECOY_SIZE], b[TGDC_DECOY_SIZE];
	tgdc_decoy_password(a, sizeof(a));
	tgdc_decoy_password(b, sizeof(b));
	assert_int_equal(strlen(a), strlen("tlsgate-decoy-") + 32);
	assert_true(strncmp(a, "tlsgate-decoy-", 14) == 0);
	assert_string_not_equal(a, b);		/* random each time */
	for (const char *p = a + 14; *p; p++)
		assert_non_null(strchr("0123456789abcdef", *p));
	char small[8];
	tgdc_decoy_password(small, sizeof(small));
	assert_int_equal(strlen(small), 7);	/* cut, terminated */
}

static int warnings;
static char last[512];

static void log_fn(void *ctx, enum tgdc_level level, const char *line)
{
	(void)ctx;
	if (level == TGDC_LOG_WARNING)
		warnings++;
	strncpy(last, line, sizeof(last) - 1);
}

static void test_mechanisms(void **state)
{
	static const struct {
		const char *mechs;
		int found;
	} rows[] = {
		{ "plain login", 0 },
		{ "plain login cram-md5 scram-sha-256", 0 },
		{ "plain anonymous", 1 },
		{ "PLAIN,ANONYMOUS", 1 },
		{ "anonymousx plain", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		warnings = 0;
		int n = tgdc_check_mechanisms(rows[i].mechs, log_fn, NULL);
		if (n != rows[i].found || warnings != (rows[i].found ? 1 : 0))
			fail_msg("row %zu: found %d warnings %d", i, n, warnings);
	}
	(void)tgdc_check_mechanisms("anonymous", log_fn, NULL);
	assert_non_null(strstr(last, "ANONYMOUS"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decoy),
		cmocka_unit_test(test_mechanisms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
