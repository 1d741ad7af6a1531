/*
 * test-window - brownout windows: the START/DURATION grammar, overlaps,
 * the brownout= and brownout_message= keys of mode rules, and decisions
 * inside and outside a window (with exemptions and TLS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"
#include "decide.h"
#include "event.h"
#include "policy.h"
#include "window.h"

static int setup(void **state)
{
	/* Local times below are in this zone (CET/CEST, with a spring gap). */
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	return 0;
}

static void test_time_parse(void **state)
{
	static const struct {
		const char *text;
		int64_t want;		/* -1: an error */
	} rows[] = {
		{ "2027-02-01T08:00Z", 1801468800 },
		{ "2027-02-01T09:00+01:00", 1801468800 },
		{ "2027-02-01T03:30-04:30", 1801468800 },
		{ "2027-02-01T09:00", 1801468800 },		/* CET */
		{ "2027-02-01T09:00:00", 1801468800 },
		{ "2027-02-01T09:00:59", 1801468859 },
		{ "2027-02-01", 1801436400 },			/* local midnight */
		{ "2027-02-01Z", 1801440000 },
		{ "2027-07-01T09:00", 1814425200 },		/* CEST */
		{ "2027-03-28T02:30", -1 },			/* skipped by the clock change */
		{ "2027-02-30T09:00", -1 },
		{ "2027-02-01T24:00", -1 },
		{ "2027-02-01T09:60", -1 },
		{ "2027-02-01T09", -1 },
		{ "2027-02-01T9:00", -1 },
		{ "2027-02-01 09:00", -1 },
		{ "2027-02-01T09:00+1", -1 },
		{ "2027-02-01T09:00+01:00x", -1 },
		{ "2027-02-01T09:00z", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t when = 0;
		int r = tg_time_parse(rows[i].text, strlen(rows[i].text), &when);
		if (rows[i].want < 0) {
			if (r != -1)
				fail_msg("row %zu '%s': parsed as %lld", i, rows[i].text,
					 (long long)when);
		} else if (r != 0 || when != rows[i].want) {
			fail_msg("row %zu '%s': r=%d when=%lld want %lld", i, rows[i].text,
				 r, (long long)when, (long long)rows[i].want);
		}
	}
}

static void test_windows_parse(void **state)
{
	static const struct {
		const char *text;
		size_t count;		/* 0: an error containing why */
		const char *why;
	} rows[] = {
		{ "2027-02-01T09:00/4h", 1, NULL },
		{ "2027-02-15/24h,2027-02-01T09:00/4h", 2, NULL },	/* sorted */
		{ "2027-02-01T09:00Z/90s,2027-02-01T09:01:30Z/1s", 2, NULL },	/* touching */
		{ "2027-02-01/30d", 1, NULL },
		{ "2027-02-01/31d", 0, "from 1s to 30d" },
		{ "2027-02-01/0s", 0, "from 1s to 30d" },
		{ "2027-02-01/4", 0, "the duration" },
		{ "2027-02-01/h", 0, "the duration" },
		{ "2027-02-01/4w", 0, "the duration" },
		{ "2027-02-01/-4h", 0, "the duration" },
		{ "2027-02-01", 0, "expected START/DURATION" },
		{ "tomorrow/4h", 0, "expected START/DURATION" },
		{ "2027-02-01/4h,", 0, "empty item" },
		{ ",2027-02-01/4h", 0, "empty item" },
		{ "2027-02-01/4h,2027-02-01T03:00/2h", 0, "overlap" },
		{ "2027-02-01/2d,2027-02-02/1h", 0, "overlap" },
		{ "2027-01-01/1h,2027-01-02/1h,2027-01-03/1h,2027-01-04/1h,2027-01-05/1h,"
		  "2027-01-06/1h,2027-01-07/1h,2027-01-08/1h,2027-01-09/1h,2027-01-10/1h,"
		  "2027-01-11/1h,2027-01-12/1h,2027-01-13/1h,2027-01-14/1h,2027-01-15/1h,"
		  "2027-01-16/1h,2027-01-17/1h", 0, "more than 16 windows" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_window w[TG_WINDOW_MAX];
		size_t n = 99;
		char why[200] = "";
		int r = tg_windows_parse(rows[i].text, strlen(rows[i].text), w, &n,
					 why, sizeof(why));
		if (rows[i].count == 0) {
			if (r != -1 || strstr(why, rows[i].why) == NULL)
				fail_msg("row %zu: r=%d why='%s', want '%s'", i, r, why,
					 rows[i].why);
			continue;
		}
		if (r != 0 || n != rows[i].count)
			fail_msg("row %zu: r=%d n=%zu why='%s'", i, r, n, why);
		for (size_t k = 1; k < n; k++)
			assert_true(w[k - 1].end <= w[k].start);
	}
	/* [start, end): the end second is outside */
	struct tg_window w[2];
	size_t n;
	char why[200];
	assert_int_equal(tg_windows_parse("2027-02-01T08:00Z/1h", 20, w, &n, why, sizeof(why)), 0);
	assert_non_null(tg_window_at(w, n, 1801468800));
	assert_non_null(tg_window_at(w, n, 1801468800 + 3599));
	assert_null(tg_window_at(w, n, 1801468800 + 3600));
	assert_null(tg_window_at(w, n, 1801468800 - 1));
}

static void test_policy_keys(void **state)
{
	static const struct {
		const char *text;
		const char *want;	/* NULL: loads */
	} rows[] = {
		{ "require @a.example from=2027-03-01 brownout=2027-02-01T09:00/4h\n", NULL },
		{ "require @a.example from=2027-03-01 brownout=2027-02-28/24h\n", NULL },
		{ "audit @a.example brownout=2027-02-01/1h brownout_message=\"test\"\n", NULL },
		{ "require @a.example from=2027-03-01 brownout=2027-02-28T12:00/13h\n",
		  "ends after from=2027-03-01" },
		{ "require @a.example from=2027-03-01 brownout=2027-03-02/1h\n",
		  "ends after from=2027-03-01" },
		{ "require @a.example brownout=2027-02-01/1h\n", "brownout= needs from=" },
		{ "off @a.example brownout=2027-02-01/1h\n", "brownout= does not go with off" },
		{ "exempt @a.example 192.0.2.1 brownout=2027-02-01/1h\n", "brownout= does not go with exempt" },
		{ "audit @a.example brownout_message=x\n", "brownout_message= without brownout=" },
		{ "audit @a.example brownout=2027-02-01/1h brownout_message=\"\"\n",
		  "brownout_message= is empty" },
		{ "audit @a.example brownout=2027-02-01/1h brownout=2027-02-02/1h\n",
		  "brownout= given twice" },
		{ "audit @a.example brownout=2027-02-01/1h,2027-02-01T00:30/1h\n",
		  "a.conf:1: brownout=: the windows starting 2027-02-01 00:00 and "
		  "2027-02-01 00:30 overlap" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_errors errs;
		tg_errors_init(&errs);
		struct tg_policy *p = tg_policy_load_buffer("a.conf", rows[i].text,
							    strlen(rows[i].text), &errs);
		if (rows[i].want == NULL) {
			if (p == NULL)
				fail_msg("row %zu: %s", i, errs.msgs[0]);
		} else {
			assert_null(p);
			if (errs.count == 0 || strstr(errs.msgs[0], rows[i].want) == NULL)
				fail_msg("row %zu: got '%s', want '%s'", i,
					 errs.count ? errs.msgs[0] : "(none)", rows[i].want);
		}
		tg_policy_free(p);
		tg_errors_clear(&errs);
	}
}

static const char POLICY[] =
	"require @a.example from=2027-03-01 brownout=2027-02-01T09:00/4h\n"
	"audit @b.example brownout=2027-02-01T09:00/1h brownout_message=\"Test outage\"\n"
	"require @c.example from=2027-03-01 brownout=2027-02-01T09:00/4h min_tls=TLSv1.2\n"
	"exempt scanner@a.example 192.0.2.10\n"
	"require @d.example from=2027-03-01\n";

static void test_decisions(void **state)
{
	static const struct {
		const char *user;
		const char *at;		/* local time */
		enum tg_tls tls;
		const char *ip;
		enum tg_verdict verdict;
		bool brownout;
	} rows[] = {
		{ "u@a.example", "2027-02-01T08:59:59", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_AUDIT, false },
		{ "u@a.example", "2027-02-01T09:00", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_REJECT, true },
		{ "u@a.example", "2027-02-01T12:59:59", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_REJECT, true },
		{ "u@a.example", "2027-02-01T13:00", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_AUDIT, false },
		{ "u@a.example", "2027-02-01T10:00", TG_TLS_V1_3, "203.0.113.5", TG_VERDICT_ALLOW, true },
		{ "scanner@a.example", "2027-02-01T10:00", TG_TLS_NONE, "192.0.2.10", TG_VERDICT_EXEMPT, true },
		{ "u@a.example", "2027-03-01T10:00", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_REJECT, false },
		{ "u@b.example", "2027-02-01T09:30", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_REJECT, true },
		{ "u@b.example", "2027-02-01T10:00", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_AUDIT, false },
		{ "u@c.example", "2027-02-01T10:00", TG_TLS_V1_1, "203.0.113.5", TG_VERDICT_REJECT, true },
		{ "u@c.example", "2027-02-01T10:00", TG_TLS_V1_2, "203.0.113.5", TG_VERDICT_ALLOW, true },
		{ "u@d.example", "2027-02-01T10:00", TG_TLS_NONE, "203.0.113.5", TG_VERDICT_AUDIT, false },
	};
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("p.conf", POLICY, strlen(POLICY), &errs);
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_addr ip;
		int64_t now;
		assert_int_equal(tg_time_parse(rows[i].at, strlen(rows[i].at), &now), 0);
		assert_int_equal(tg_addr_parse(rows[i].ip, strlen(rows[i].ip), &ip), 0);
		struct tg_login login = {
			.user = rows[i].user, .service = TG_SERVICE_IMAP, .client = &ip,
			.tls = rows[i].tls, .today = tg_date_of((time_t)now),
			.mode_override = -1, .now = now,
		};
		struct tg_decision d;
		tg_decide(p, &login, &d);
		if (d.verdict != rows[i].verdict || d.brownout != rows[i].brownout)
			fail_msg("row %zu: verdict %s brownout %d", i,
				 tg_verdict_name(d.verdict), d.brownout);
		/* without a time, no window applies */
		login.now = 0;
		tg_decide(p, &login, &d);
		assert_false(d.brownout);
	}
	tg_policy_free(p);
}

static void test_texts_and_event(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("p.conf", POLICY, strlen(POLICY), &errs);
	assert_non_null(p);
	int64_t now;
	assert_int_equal(tg_time_parse("2027-02-01T09:30", 16, &now), 0);
	struct tg_login login = {
		.user = "u@a.example", .service = TG_SERVICE_IMAP, .tls = TG_TLS_NONE,
		.today = tg_date_of((time_t)now), .mode_override = -1, .now = now,
	};
	struct tg_decision d;
	char buf[600];
	tg_decide(p, &login, &d);
	assert_string_equal(tg_refusal_text(&d, "global", buf, sizeof(buf)),
			    "TLS will be required from 2027-03-01. " TG_BROWNOUT_MESSAGE);
	struct tg_event ev;
	struct tg_event_texts texts;
	char line[TG_EVENT_MAX_LINE];
	tg_event_from_decision(&ev, &texts, &d, login.user, login.service, NULL,
			       login.tls, "PLAIN", NULL);
	assert_true(tg_event_format(&ev, line, sizeof(line)) > 0);
	assert_non_null(strstr(line, " mode=require "));
	assert_non_null(strstr(line, " brownout=yes"));

	login.user = "u@b.example";
	tg_decide(p, &login, &d);
	assert_string_equal(tg_refusal_text(&d, "global", buf, sizeof(buf)), "Test outage");

	login.user = "u@d.example";		/* no window: audit, no text */
	tg_decide(p, &login, &d);
	assert_int_equal(d.verdict, TG_VERDICT_AUDIT);
	tg_event_from_decision(&ev, &texts, &d, login.user, login.service, NULL,
			       login.tls, NULL, NULL);
	assert_true(tg_event_format(&ev, line, sizeof(line)) > 0);
	assert_null(strstr(line, "brownout"));
	tg_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_windows_parse),
		cmocka_unit_test(test_policy_keys),
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_texts_and_event),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
