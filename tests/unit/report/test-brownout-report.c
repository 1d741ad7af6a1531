/*
 * test-brownout-report - the brownout lists of `tlsgate report`: who was
 * refused in a brownout window (brownout=yes), who moved to TLS after the
 * last refusal and who is still seen in plaintext, with inputs in and out
 * of time order, the client limit, and every output form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "report/logscan.h"
#include "report/tally.h"
#include "tally-find.h"

/* 2026-11-29 12:00:00 UTC */
#define REF ((time_t)1795953600)
/* 2026-11-29 10:00:00 UTC */
#define T10 ((int64_t)1795946400)

#define LINE(time, rest) "Nov 29 " time " mx tlsgate-policyd[3]: tlsgate: " rest
#define REFUSED(time, svc, user, client) LINE(time, "service=" svc " user=" user \
	" client=" client " tls=none verdict=reject mode=require rule=p.conf:1 " \
	"enforce_from=2026-12-24 brownout=yes")
#define TLS(time, user) LINE(time, "service=imap user=" user \
	" client=192.0.2.50 tls=TLSv1.3 verdict=allow mode=audit rule=p.conf:1")
#define AUDIT(time, user) LINE(time, "service=imap user=" user \
	" client=192.0.2.7 tls=none verdict=audit mode=audit rule=p.conf:1")

static const char *const lines[] = {
	/* moved: refused twice (imap, pop3, two addresses), then TLS only */
	AUDIT("10:00:00", "moved@b.example"),
	REFUSED("10:01:00", "imap", "moved@b.example", "192.0.2.7"),
	REFUSED("10:01:30", "pop3", "moved@b.example", "192.0.2.8"),
	TLS("10:02:00", "moved@b.example"),
	TLS("10:03:00", "moved@b.example"),
	/* still: refused, a TLS login, then plaintext (audit) again */
	REFUSED("10:01:00", "imap", "still@b.example", "192.0.2.9"),
	TLS("10:02:00", "still@b.example"),
	AUDIT("10:05:00", "still@b.example"),
	/* gone: TLS before the refusal only */
	TLS("09:00:00", "gone@b.example"),
	REFUSED("10:01:00", "smtp", "gone@b.example", "192.0.2.10"),
	/* late: read out of order - a TLS login at 10:20 before the refusal
	 * at 10:10, then one at 10:15: the first after it is 10:15 */
	TLS("10:20:00", "late@c.example"),
	REFUSED("10:10:00", "imap", "late@c.example", "192.0.2.11"),
	TLS("10:15:00", "late@c.example"),
	/* again: TLS after a first window, refused in a second one, TLS again */
	REFUSED("10:01:00", "imap", "again@c.example", "192.0.2.12"),
	TLS("10:02:00", "again@c.example"),
	REFUSED("10:30:00", "imap", "again@c.example", "192.0.2.12"),
	TLS("10:40:00", "again@c.example"),
	/* refused for good (no brownout=yes): no brownout entry, enforced */
	LINE("10:01:00", "service=imap user=real@c.example client=192.0.2.13 tls=none "
	     "verdict=reject mode=require rule=p.conf:2"),
	/* brownout=yes on anything but a rejection is no refusal */
	LINE("10:01:00", "service=imap user=odd@c.example client=192.0.2.14 tls=none "
	     "verdict=audit mode=audit rule=p.conf:2 brownout=yes"),
	/* brownout=no is no refusal either */
	LINE("10:01:00", "service=imap user=no@c.example client=192.0.2.15 tls=none "
	     "verdict=reject mode=require rule=p.conf:2 brownout=no"),
};
#define NLINES (sizeof(lines) / sizeof(lines[0]))

static int setup_utc(void **state)
{
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void add_lines(struct tally *t, const char *const *v, size_t n)
{
	struct logtime lt;
	logtime_init(&lt, REF);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tally_add_line(t, &lt, v[i], strlen(v[i])), 0);
}

static void test_brownout_accounts(void **state)
{
	static const struct {
		const char *account;
		uint32_t refusals;	/* 0: no brownout entry */
		uint8_t services;
		uint8_t clients;
		int64_t last;
		enum tally_after_brownout after;
		int64_t first_tls_after;
		bool would_break, enforced;
	} rows[] = {
		{ "moved@b.example", 2, 1u << TG_SERVICE_IMAP | 1u << TG_SERVICE_POP3, 2,
		  T10 + 90, TALLY_AFTER_TLS, T10 + 120, true, false },
		{ "still@b.example", 1, 1u << TG_SERVICE_IMAP, 1,
		  T10 + 60, TALLY_AFTER_PLAINTEXT, T10 + 120, true, false },
		{ "gone@b.example", 1, 1u << TG_SERVICE_SMTP, 1,
		  T10 + 60, TALLY_AFTER_NOT_SEEN, TALLY_NO_TIME, true, false },
		{ "late@c.example", 1, 1u << TG_SERVICE_IMAP, 1,
		  T10 + 600, TALLY_AFTER_TLS, T10 + 900, true, false },
		{ "again@c.example", 2, 1u << TG_SERVICE_IMAP, 1,
		  T10 + 1800, TALLY_AFTER_TLS, T10 + 2400, true, false },
		{ "real@c.example", 0, 0, 0, 0, 0, 0, true, true },
		{ "odd@c.example", 0, 0, 0, 0, 0, 0, true, false },
		{ "no@c.example", 0, 0, 0, 0, 0, 0, true, true },
	};
	struct tally t;
	assert_int_equal(tally_init(&t), 0);
	add_lines(&t, lines, NLINES);
	assert_int_equal(tally_finish(&t, NULL, 20261129), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tally_account *a = find_account(&t, rows[i].account);
		if (a == NULL)
			fail_msg("%s not found", rows[i].account);
		if (a->would_break != rows[i].would_break || a->enforced != rows[i].enforced)
			fail_msg("%s: would_break=%d enforced=%d", rows[i].account,
				 a->would_break, a->enforced);
		if (rows[i].refusals == 0) {
			if (a->brownout != NULL)
				fail_msg("%s: a brownout entry", rows[i].account);
			continue;
		}
		const struct tally_brownout *b = a->brownout;
		if (b == NULL)
			fail_msg("%s: no brownout entry", rows[i].account);
		/* a refusal in a window stays a rejection like any other */
		if (a->rejects < b->refusals)
			fail_msg("%s: rejects=%u", rows[i].account, a->rejects);
		if (b->refusals != rows[i].refusals || b->services != rows[i].services ||
		    b->client_count != rows[i].clients || b->last != rows[i].last ||
		    b->after != rows[i].after)
			fail_msg("%s: refusals=%u services=%x clients=%u last=%lld after=%d",
				 rows[i].account, b->refusals, b->services, b->client_count,
				 (long long)b->last, (int)b->after);
		if (rows[i].after == TALLY_AFTER_TLS && b->first_tls_after != rows[i].first_tls_after)
			fail_msg("%s: first_tls_after=%lld", rows[i].account,
				 (long long)b->first_tls_after);
	}
	struct tally_account *still = find_account(&t, "still@b.example");
	assert_int_equal(still->last_plain_unrefused, T10 + 300);

	static const struct {
		const char *domain;
		uint32_t refused, tls, plain, would_break;
	} doms[] = {
		{ "b.example", 3, 1, 1, 3 },
		{ "c.example", 2, 2, 0, 5 },
	};
	for (size_t i = 0; i < sizeof(doms) / sizeof(doms[0]); i++) {
		struct tally_domain *d = find_domain(&t, doms[i].domain);
		assert_non_null(d);
		if (d->brownout_accounts != doms[i].refused || d->brownout_tls_accounts != doms[i].tls ||
		    d->brownout_plain_accounts != doms[i].plain ||
		    d->would_break_accounts != doms[i].would_break)
			fail_msg("%s: refused=%u tls=%u plain=%u would_break=%u", doms[i].domain,
				 d->brownout_accounts, d->brownout_tls_accounts,
				 d->brownout_plain_accounts, d->would_break_accounts);
	}
	size_t n;
	struct tally_account **v = tally_brownout_accounts(&t, &n);
	assert_non_null(v);
	assert_int_equal(n, 5);
	/* by domain, then account */
	assert_string_equal(v[0]->name, "gone@b.example");
	assert_string_equal(v[4]->name, "late@c.example");
	free(v);
	tally_free(&t);
}

/* Refusals from more addresses than are kept: the rest are counted. */
static void test_brownout_client_limit(void **state)
{
	struct tally t;
	struct logtime lt;
	logtime_init(&lt, REF);
	assert_int_equal(tally_init(&t), 0);
	for (int i = 0; i < TALLY_MAX_DEVICES + 3; i++) {
		char line[400];
		snprintf(line, sizeof(line), "Nov 29 10:00:%02d mx tlsgate-policyd[3]: tlsgate: "
			 "service=imap user=many@x.org client=10.0.0.%d tls=none verdict=reject "
			 "mode=require rule=r brownout=yes", i, i);
		assert_int_equal(tally_add_line(&t, &lt, line, strlen(line)), 0);
	}
	assert_int_equal(tally_finish(&t, NULL, 20261129), 0);
	struct tally_account *a = find_account(&t, "many@x.org");
	assert_non_null(a->brownout);
	assert_int_equal(a->brownout->refusals, TALLY_MAX_DEVICES + 3);
	assert_int_equal(a->brownout->client_count, TALLY_MAX_DEVICES);
	assert_int_equal(a->brownout->clients_dropped, 3);
	tally_free(&t);
}

/* Runs `tlsgate report ARGS LOG` with stdout in a buffer. */
static int run_report(char **argv, int argc, char *buf, size_t size)
{
	char out[] = "/tmp/tg-test-brownout-out-XXXXXX";
	int fd = mkstemp(out);
	assert_true(fd >= 0);
	struct cli_context ctx = { .progname = "tlsgate", .no_config = 1 };
	fflush(stdout);
	int saved = dup(1);
	dup2(fd, 1);
	int r = cmd_report(argc, argv, &ctx);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	ssize_t n = pread(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(out);
	return r;
}

static void test_brownout_outputs(void **state)
{
	char dir[] = "/tmp/tg-test-brownout-XXXXXX", log[64], html[64];
	assert_non_null(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/mail.log", dir);
	snprintf(html, sizeof(html), "%s/r.html", dir);
	FILE *f = fopen(log, "w");
	assert_non_null(f);
	for (size_t i = 0; i < NLINES; i++)
		fprintf(f, "%s\n", lines[i]);
	fclose(f);
	static char buf[65536];

	static const struct {
		const char *format;	/* option, NULL: text */
		const char *want[6];
	} rows[] = {
		{ NULL, {
			"REFUSED IN BROWNOUT WINDOWS - these break on the final date (5)\n",
			"b.example        3             1                1               1\n",
			"moved@b.example  imap,pop3  192.0.2.7,192.0.2.8         2  2026-11-29 10:01  moved to TLS\n",
			"MOVED TO TLS AFTER A BROWNOUT (3)\n",
			"STILL PLAINTEXT AFTER A BROWNOUT (1)\n",
			"still@b.example  2026-11-29 10:01  2026-11-29 10:05\n" } },
		{ "--json", {
			"\"brownout_refused_accounts\":3,\"brownout_moved_to_tls_accounts\":1,"
			"\"brownout_still_plaintext_accounts\":1}",
			"{\"account\":\"moved@b.example\",\"domain\":\"b.example\",\"services\":[\"imap\",\"pop3\"],"
			"\"clients\":[\"192.0.2.7\",\"192.0.2.8\"],\"clients_not_listed\":0,\"refusals\":2,"
			"\"first_refusal\":\"2026-11-29T10:01:00+00:00\","
			"\"last_refusal\":\"2026-11-29T10:01:30+00:00\",\"afterwards\":\"tls\"}",
			"\"moved_to_tls\":[\n{\"account\":\"moved@b.example\",\"domain\":\"b.example\","
			"\"last_refusal\":\"2026-11-29T10:01:30+00:00\","
			"\"first_tls_login\":\"2026-11-29T10:02:00+00:00\"}",
			"\"still_plaintext\":[\n{\"account\":\"still@b.example\",\"domain\":\"b.example\","
			"\"last_refusal\":\"2026-11-29T10:01:00+00:00\","
			"\"last_plaintext\":\"2026-11-29T10:05:00+00:00\"}]}}\n",
			NULL } },
		{ "--csv", {
			",enforce_from,exemption,brownout_refusals,last_brownout_refusal,"
			"after_brownout,after_brownout_time,devices\n",
			",2,\"2026-11-29T10:01:30+00:00\",\"tls\",\"2026-11-29T10:02:00+00:00\",\"",
			",1,\"2026-11-29T10:01:00+00:00\",\"not_seen\",\"\",\"",
			"\"real@c.example\",\"c.example\",\"imap\",\"192.0.2.13\"",
			",0,\"\",\"\",\"\",\"",
			NULL } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *argv[4] = { "report" };
		int argc = 1;
		if (rows[i].format)
			argv[argc++] = (char *)rows[i].format;
		argv[argc++] = log;
		argv[argc] = NULL;
		assert_int_equal(run_report(argv, argc, buf, sizeof(buf)), 0);
		for (size_t w = 0; w < 6 && rows[i].want[w]; w++)
			if (strstr(buf, rows[i].want[w]) == NULL)
				fail_msg("%s: no \"%s\" in:\n%s", rows[i].format ? rows[i].format : "text",
					 rows[i].want[w], buf);
	}

	char *argv_html[] = { "report", "--html", html, log, NULL };
	assert_int_equal(run_report(argv_html, 4, buf, sizeof(buf)), 0);
	f = fopen(html, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_non_null(strstr(buf, "Refused in brownout windows &mdash; these break on the final date (5)"));
	assert_non_null(strstr(buf, "<tr><td>still@b.example</td><td>imap</td><td>192.0.2.9</td>"
				    "<td class=\"n\">1</td><td>2026-11-29 10:01</td><td>still plaintext</td></tr>"));
	assert_non_null(strstr(buf, "<h3>Moved to TLS after a brownout</h3>"));
	assert_non_null(strstr(buf, "<tr><td>late@c.example</td><td>2026-11-29 10:10</td>"
				    "<td>2026-11-29 10:15</td></tr>"));

	/* no refusal in a window: no brownout section in the text */
	f = fopen(log, "w");
	fprintf(f, "%s\n", AUDIT("10:00:00", "a@b.example"));
	fclose(f);
	char *argv_text[] = { "report", log, NULL };
	assert_int_equal(run_report(argv_text, 2, buf, sizeof(buf)), 0);
	assert_null(strstr(buf, "BROWNOUT"));
	unlink(log);
	unlink(html);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_brownout_accounts),
		cmocka_unit_test(test_brownout_client_limit),
		cmocka_unit_test(test_brownout_outputs),
	};
	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
