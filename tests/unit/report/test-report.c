/*
 * test-cli-report - reading event lines for `tlsgate report`: timestamps of
 * every supported log format, lines that must be skipped, hostile values,
 * duplicates, gzip and over-long lines, would-break with and without a
 * policy, credentials exposed, and safe output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"
#include "date.h"
#include "report/logscan.h"
#include "report/outfmt.h"
#include "policy.h"
#include "report/tally.h"
#include "tally-find.h"

/* 2026-11-29 12:00:00 UTC */
#define REF ((time_t)1795953600)

static int setup_utc(void **state)
{
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void test_timestamps(void **state)
{
	static const struct {
		const char *line;
		int ok;
		int64_t want;
	} rows[] = {
		/* syslog (rsyslog default, Dovecot log_path) */
		{ "Nov 29 10:00:01 mx dovecot: auth: Info: tlsgate: ...", 0, 1795946401 },
		{ "Nov  9 10:00:01 mx x: y", 0, 1794218401 },
		/* Postfix maillog_file: microseconds */
		{ "Nov 29 10:00:01.123456 mx postfix/smtpd[9]: y", 0, 1795946401 },
		/* Dovecot log_path without host */
		{ "Nov 29 10:00:01 auth: Info: tlsgate: x", 0, 1795946401 },
		/* year rule: more than a day after the reference is last year */
		{ "Dec 31 23:00:00 mx x: y", 0, 1767222000 },
		{ "Nov 30 11:00:00 mx x: y", 0, 1796036400 },
		/* RFC 3339: rsyslog high precision and journalctl -o short-iso */
		{ "2026-11-29T10:00:01.123456+00:00 mx x: y", 0, 1795946401 },
		{ "2026-11-29T11:00:01+0100 mx x[1]: y", 0, 1795946401 },
		{ "2026-11-29T10:00:01Z mx x: y", 0, 1795946401 },
		{ "2026-11-29T05:00:01-05:00 mx x: y", 0, 1795946401 },
		/* Dovecot log_timestamp with a year, local time */
		{ "2026-11-29 10:00:01 auth: Info: x", 0, 1795946401 },
		/* not timestamps */
		{ "tlsgate: service=imap", -1, 0 },
		{ "Foo 29 10:00:01 mx", -1, 0 },
		{ "Nov 32 10:00:01 mx", -1, 0 },
		{ "Nov 29 25:00:01 mx", -1, 0 },
		{ "Feb 30 10:00:01 mx", -1, 0 },
		{ "2026-13-29T10:00:01Z", -1, 0 },
		{ "2026-11-29T10:00:01+2", -1, 0 },
		{ "2026-02-29 10:00:01 x", -1, 0 },
		{ "Nov 29 10:00", -1, 0 },
		{ "", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct logtime lt;
		int64_t when = 0;
		logtime_init(&lt, REF);
		int r = logtime_parse(&lt, rows[i].line, strlen(rows[i].line), &when);
		if (r != rows[i].ok || (r == 0 && when != rows[i].want))
			fail_msg("row %zu '%s': r=%d when=%lld", i, rows[i].line, r, (long long)when);
	}
}


/* Zone-less stamps are local time, summer and winter alike. */
static void test_local_zone(void **state)
{
	static const struct {
		const char *line;
		int64_t want;
	} rows[] = {
		{ "Nov 29 10:00:01 mx x: y", 1795942801 },		/* CET, +1 */
		{ "Jul  1 10:00:00 mx x: y", 1782892800 },		/* CEST, +2 */
		{ "2026-07-01 10:00:00 auth: x", 1782892800 },
		{ "2026-07-01T10:00:00+02:00 mx x: y", 1782892800 },	/* zone given */
		{ "2026-07-01T10:00:00Z mx x: y", 1782900000 },
	};
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct logtime lt;
		int64_t when = 0;
		logtime_init(&lt, REF);
		int r = logtime_parse(&lt, rows[i].line, strlen(rows[i].line), &when);
		if (r != 0 || when != rows[i].want)
			fail_msg("row %zu '%s': r=%d when=%lld", i, rows[i].line, r, (long long)when);
	}
	setenv("TZ", "UTC", 1);
	tzset();
}

static void test_time_args(void **state)
{
	static const struct {
		const char *arg;
		int ok;
		int64_t want;
	} rows[] = {
		{ "2026-11-29", 0, 1795910400 },
		{ "2026-11-29 10:00", 0, 1795946400 },
		{ "2026-11-29T10:00:01", 0, 1795946401 },
		{ "7d", 0, (int64_t)REF - 7 * 86400 },
		{ "12h", 0, (int64_t)REF - 12 * 3600 },
		{ "2026-11-31", -1, 0 },
		{ "yesterday", -1, 0 },
		{ "d", -1, 0 },
		{ "-3d", -1, 0 },
		{ "2026-11-29 25:00", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char why[200] = "";
		int64_t when = 0;
		int r = logtime_parse_arg(rows[i].arg, REF, &when, why, sizeof(why));
		if (r != rows[i].ok || (r == 0 && when != rows[i].want))
			fail_msg("row %zu '%s': r=%d when=%lld", i, rows[i].arg, r, (long long)when);
		if (r < 0)
			assert_true(why[0] != '\0');
	}
}

#define EV(user, rest) "tlsgate: service=imap user=" user " client=192.0.2.7 " rest
static const char *const sample_lines[] = {
	/* counted: 1 alice audit */
	"Nov 29 10:00:01 mx dovecot: auth: Info: " EV("alice@example.com",
		"tls=none verdict=audit mode=audit rule=p.conf:1 mech=PLAIN session=s1"),
	/* duplicate of the line above (a retried policy request) */
	"Nov 29 10:00:02 mx dovecot: auth: Info: " EV("alice@example.com",
		"tls=none verdict=audit mode=audit rule=p.conf:1 mech=PLAIN session=s1"),
	/* same content without session: counted */
	"Nov 29 10:00:03 mx dovecot: auth: Info: " EV("alice@example.com",
		"tls=none verdict=audit mode=audit rule=p.conf:1 mech=PLAIN"),
	/* TLS use of another account */
	"2026-11-29T10:01:00+00:00 mx dovecot[1]: auth: " EV("carol@Example.COM",
		"tls=TLSv1.3 verdict=allow mode=audit rule=p.conf:1"),
	/* TLS below min_tls: plaintext */
	"2026-11-29 10:02:00 auth: Info: " EV("dave@example.com",
		"tls=TLSv1 verdict=audit mode=audit rule=p.conf:1"),
	/* exempt */
	"Nov 29 10:03:00.000001 mx tlsgate-policyd[2]: tlsgate: service=smtp user=scan@example.com "
		"client=192.0.2.10 tls=none verdict=exempt mode=audit rule=p.conf:1 exemption=p.conf:3",
	/* credentials exposed */
	"Nov 29 10:04:00 mx dovecot: auth: Info: " EV("eve@example.com",
		"tls=none verdict=reject mode=require rule=p.conf:2 mech=LOGIN"),
	/* rejected but not a cleartext mechanism */
	"Nov 29 10:04:30 mx dovecot: auth: Info: " EV("frank@example.com",
		"tls=none verdict=reject mode=require rule=p.conf:2 mech=CRAM-MD5"),
	/* hostile value: quoted, escapes, an embedded fake tag: not a
	 * plausible account name, skipped */
	"Nov 29 10:05:00 mx dovecot: auth: Info: tlsgate: service=pop3 "
		"user=\"x\\x1b[31m\\\"<b> tlsgate: service=imap user=root@example.com\" "
		"client=192.0.2.8 tls=none verdict=audit mode=audit rule=p.conf:1",
	/* no domain */
	"Nov 29 10:06:00 mx dovecot: auth: Info: " EV("legacy",
		"tls=none verdict=allow mode=off rule=default"),
	/* skipped: no event, broken events, unknown names */
	"Nov 29 10:07:00 mx postfix/smtpd[9]: connect from unknown[192.0.2.1]",
	"Nov 29 10:07:00 mx tlsgate-policyd[9]: tlsgate: service=imap user=\"unterminated",
	"Nov 29 10:07:00 mx tlsgate-policyd[9]: tlsgate: service=imap user=a@b",
	"Nov 29 10:07:00 mx tlsgate-policyd[9]: " EV("a@b", "tls=none verdict=maybe mode=audit rule=x"),
	"Nov 29 10:07:00 mx tlsgate-policyd[9]: tlsgate: service=ftp user=a@b client=1 tls=none verdict=audit mode=audit rule=x",
	"Nov 29 10:07:00 mx tlsgate-policyd[9]: " EV("\"\"", "tls=none verdict=audit mode=audit rule=x"),
	"",
	"tlsgate: something else",
	/* the tag where others put it (foreign, not events): a Message-ID
	 * logged by Postfix's cleanup, a login name logged by Dovecot's
	 * auth_verbose, a program that is not ours, the tag mid-message */
	"Nov 29 10:08:00 mx postfix/cleanup[7]: 4XyZ1: message-id=<" EV("mallory@gmail.example",
		"tls=none verdict=reject mode=require rule=r mech=PLAIN") ">",
	"Nov 29 10:08:01 mx dovecot: auth: Info: passwd-file(" EV("mallory@gmail.example",
		"tls=none verdict=reject mode=require rule=r mech=PLAIN") ",192.0.2.1): unknown user",
	"Nov 29 10:08:02 auth: Info: passwd-file(" EV("mallory@gmail.example",
		"tls=none verdict=reject mode=require rule=r mech=PLAIN") ",192.0.2.1): unknown user",
	"Nov 29 10:08:03 mx evil: " EV("mallory@gmail.example",
		"tls=none verdict=reject mode=require rule=r mech=PLAIN"),
	"Nov 29 10:08:04 mx tlsgate-policyd[3]: x " EV("mallory@gmail.example",
		"tls=none verdict=reject mode=require rule=r mech=PLAIN"),
	"Nov 29 10:08:05 mx dovecot: imap-login: Info: " EV("mallory@gmail.example",
		"tls=none verdict=reject mode=require rule=r mech=PLAIN"),
	/* plausible origin, implausible values: client is free text */
	"Nov 29 10:08:06 mx tlsgate-policyd[3]: tlsgate: service=smtp user=mallory@gmail.example "
		"client=\"Your mailbox is locked\" tls=none verdict=reject mode=require rule=r mech=PLAIN",
	/* a user holding a right-to-left override */
	"Nov 29 10:08:07 mx tlsgate-policyd[3]: " EV("\"a\\xe2\\x80\\xaeb@example.com\"",
		"tls=none verdict=audit mode=audit rule=r"),
};
#define NSAMPLES (sizeof(sample_lines) / sizeof(sample_lines[0]))

static void add_samples(struct tally *t)
{
	struct logtime lt;
	logtime_init(&lt, REF);
	for (size_t i = 0; i < NSAMPLES; i++)
		assert_int_equal(tally_add_line(t, &lt, sample_lines[i], strlen(sample_lines[i])), 0);
}

static void test_sample_counts(void **state)
{
	struct tally t;
	assert_int_equal(tally_init(&t), 0);
	add_samples(&t);
	assert_int_equal(tally_finish(&t, NULL, 20261129), 0);
	assert_int_equal(t.lines, NSAMPLES);
	assert_int_equal(t.duplicates, 1);
	assert_int_equal(t.events, 8);
	assert_int_equal(t.bad_events, 3);
	assert_int_equal(t.implausible, 5);
	assert_int_equal(t.foreign, 6);
	assert_null(find_account(&t, "mallory@gmail.example"));
	assert_null(find_domain(&t, "gmail.example"));

	static const struct {
		const char *account;
		uint32_t events, plain, audits, rejects, exempt, exposed;
		bool would_break;
	} rows[] = {
		{ "alice@example.com", 2, 2, 2, 0, 0, 0, true },
		{ "carol@example.com", 1, 0, 0, 0, 0, 0, false },
		{ "dave@example.com", 1, 1, 1, 0, 0, 0, true },
		{ "scan@example.com", 1, 1, 0, 0, 1, 0, false },
		{ "eve@example.com", 1, 1, 0, 1, 0, 1, true },
		{ "frank@example.com", 1, 1, 0, 1, 0, 0, true },
		{ "legacy", 1, 1, 0, 0, 0, 0, true },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tally_account *a = find_account(&t, rows[i].account);
		if (a == NULL)
			fail_msg("account %s not found", rows[i].account);
		if (a->events != rows[i].events || a->plain_events != rows[i].plain ||
		    a->audits != rows[i].audits || a->rejects != rows[i].rejects ||
		    a->exempt_hits != rows[i].exempt || a->exposed != rows[i].exposed ||
		    a->would_break != rows[i].would_break)
			fail_msg("row %zu %s: events=%u plain=%u audits=%u rejects=%u exempt=%u exposed=%u wb=%d",
				 i, rows[i].account, a->events, a->plain_events, a->audits,
				 a->rejects, a->exempt_hits, a->exposed, a->would_break);
	}
	/* the hostile user is no account, nor is the name inside it */
	struct tally_account *h = find_account(&t, "x\x1b[31m\"<b> tlsgate: service=imap user=root@example.com");
	assert_null(h);
	assert_null(find_account(&t, "root@example.com"));

	struct tally_account *alice = find_account(&t, "alice@example.com");
	assert_int_equal(alice->first_plain, 1795946401);
	assert_int_equal(alice->last_plain, 1795946403);
	assert_string_equal(alice->devices->client, "192.0.2.7");
	assert_null(alice->devices->next);

	struct tally_domain *d = find_domain(&t, "example.com");
	assert_non_null(d);
	/* alice carol dave scan eve frank */
	assert_int_equal(d->accounts, 6);
	assert_int_equal(d->tls_only_accounts, 1);
	assert_int_equal(d->plain_accounts, 5);
	assert_int_equal(d->would_break_accounts, 4);
	assert_int_equal(d->exposed_accounts, 1);
	assert_int_equal(d->rejects, 2);
	assert_int_equal(d->exempt_hits, 1);
	assert_non_null(find_domain(&t, ""));
	assert_non_null(tally_exemption_find(&t, "p.conf:3"));
	tally_free(&t);
}

static void test_window_and_domain(void **state)
{
	static const struct {
		int64_t since, until;
		const char *domain;
		uint64_t events, outside, filtered;
	} rows[] = {
		{ TALLY_NO_TIME, TALLY_NO_TIME, NULL, 8, 0, 0 },
		/* since 10:04:00: eve, frank, legacy */
		{ 1795946640, TALLY_NO_TIME, NULL, 3, 6, 0 },	/* the duplicate is outside too */
		/* until 10:01:00 (exclusive): alice twice */
		{ TALLY_NO_TIME, 1795946460, NULL, 2, 7, 0 },	/* incl. verdict=maybe */
		{ TALLY_NO_TIME, TALLY_NO_TIME, "example.com", 7, 0, 1 },
		{ TALLY_NO_TIME, TALLY_NO_TIME, "example.org", 0, 0, 9 },	/* incl. the duplicate */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tally t;
		assert_int_equal(tally_init(&t), 0);
		t.since = rows[i].since;
		t.until = rows[i].until;
		t.only_domain = rows[i].domain;
		add_samples(&t);
		if (t.events != rows[i].events || t.outside_window != rows[i].outside ||
		    t.filtered != rows[i].filtered)
			fail_msg("row %zu: events=%llu outside=%llu filtered=%llu", i,
				 (unsigned long long)t.events, (unsigned long long)t.outside_window,
				 (unsigned long long)t.filtered);
		tally_free(&t);
	}
}

static void test_untimed_events(void **state)
{
	static const char line[] = EV("a@x.org", "tls=none verdict=audit mode=audit rule=r");
	struct tally t;
	struct logtime lt;
	logtime_init(&lt, REF);
	assert_int_equal(tally_init(&t), 0);
	assert_int_equal(tally_add_line(&t, &lt, line, strlen(line)), 0);
	assert_int_equal(t.events, 1);
	assert_int_equal(t.untimed, 1);
	tally_free(&t);
	/* with a window they cannot be placed: skipped, counted */
	assert_int_equal(tally_init(&t), 0);
	t.since = 0;
	assert_int_equal(tally_add_line(&t, &lt, line, strlen(line)), 0);
	assert_int_equal(t.events, 0);
	assert_int_equal(t.untimed, 1);
	tally_free(&t);
}

static const char policy_text[] =
	"audit *\n"
	"require @example.com from=2027-03-01\n"
	"exempt scan@example.com 192.0.2.10/32 protocols=smtp until=2027-12-31\n"
	"exempt alice@example.com 192.0.2.0/24 protocols=pop3\n"
	"exempt old@example.com 192.0.2.99 until=2026-01-01\n"
	"off legacy\n";

static void test_would_break_policy(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load_buffer("p.conf", policy_text, strlen(policy_text), &errs);
	assert_non_null(p);
	struct tally t;
	assert_int_equal(tally_init(&t), 0);
	add_samples(&t);
	assert_int_equal(tally_finish(&t, p, 20261129), 0);
	static const struct {
		const char *account;
		bool would_break;
		int32_t enforce_from;
	} rows[] = {
		{ "alice@example.com", true, 20270301 },	/* exemption is pop3 only */
		{ "scan@example.com", false, 20270301 },
		{ "dave@example.com", true, 20270301 },
		/* an account's own 'off' rule survives enforcing its domain */
		{ "legacy", false, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tally_account *a = find_account(&t, rows[i].account);
		assert_non_null(a);
		if (a->would_break != rows[i].would_break ||
		    a->policy_enforce_from != rows[i].enforce_from)
			fail_msg("row %zu %s: wb=%d from=%d", i, rows[i].account, a->would_break,
				 a->policy_enforce_from);
	}
	/* after the exemption expires, scan would break */
	assert_int_equal(tally_finish(&t, p, 20280101), 0);
	assert_true(find_account(&t, "scan@example.com")->would_break);
	tally_free(&t);
	tg_policy_free(p);
	tg_errors_clear(&errs);
}

static void test_duplicates_need_session(void **state)
{
	static const char *const lines[] = {
		/* same session, different content: both count */
		"Nov 29 10:00:01 h tlsgate-policyd[1]: " EV("a@x.org", "tls=none verdict=audit mode=audit rule=r session=1"),
		"Nov 29 10:00:01 h tlsgate-policyd[1]: " EV("a@x.org", "tls=none verdict=audit mode=audit rule=r mech=PLAIN session=1"),
		/* other session: counts */
		"Nov 29 10:00:01 h tlsgate-policyd[1]: " EV("a@x.org", "tls=none verdict=audit mode=audit rule=r session=2"),
		/* repeats of the first three: none count, even interleaved */
		"Nov 29 10:00:02 h tlsgate-policyd[1]: " EV("a@x.org", "tls=none verdict=audit mode=audit rule=r session=2"),
		"Nov 29 10:00:02 h tlsgate-policyd[1]: " EV("a@x.org", "tls=none verdict=audit mode=audit rule=r session=1"),
		"Nov 29 10:00:03 h tlsgate-policyd[1]: " EV("a@x.org", "tls=none verdict=audit mode=audit rule=r mech=PLAIN session=1"),
	};
	struct tally t;
	struct logtime lt;
	logtime_init(&lt, REF);
	assert_int_equal(tally_init(&t), 0);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_int_equal(tally_add_line(&t, &lt, lines[i], strlen(lines[i])), 0);
	assert_int_equal(t.events, 3);
	assert_int_equal(t.duplicates, 3);
	tally_free(&t);
}

static void test_device_limit(void **state)
{
	struct tally t;
	struct logtime lt;
	logtime_init(&lt, REF);
	assert_int_equal(tally_init(&t), 0);
	for (int i = 0; i < TALLY_MAX_DEVICES + 5; i++) {
		char line[300];
		snprintf(line, sizeof(line), "Nov 29 10:00:01 h tlsgate-policyd: tlsgate: service=imap user=a@x.org "
			 "client=10.0.0.%d tls=none verdict=audit mode=audit rule=r", i);
		assert_int_equal(tally_add_line(&t, &lt, line, strlen(line)), 0);
	}
	struct tally_account *a = find_account(&t, "a@x.org");
	assert_int_equal(a->device_count, TALLY_MAX_DEVICES);
	assert_int_equal(a->devices_dropped, 5);
	assert_int_equal(a->plain_events, TALLY_MAX_DEVICES + 5);
	tally_free(&t);
}

/* Devices: address + program (IMAP ID) + EHLO name; counts and first and
 * last use per device; made-up names past the limit counted, not kept. */
static void test_device_grouping(void **state)
{
#define DEV(time, client, extra) "Nov 29 " time " h tlsgate-policyd: tlsgate: service=imap " \
	"user=d@x.org client=" client " tls=none verdict=audit mode=audit rule=r" extra
	static const char *const lines[] = {
		DEV("10:00:01", "10.0.0.1", " imap_id_name=scanner-x imap_id_version=1.0 client_port=1"),
		DEV("10:00:05", "10.0.0.1", " imap_id_name=scanner-x imap_id_version=1.0 client_port=2"),
		DEV("10:00:03", "10.0.0.1", ""),			/* same address, no ID */
		DEV("10:00:04", "10.0.0.1", " imap_id_name=scanner-x imap_id_version=2.0"),
		DEV("10:00:06", "10.0.0.2", " helo=pc17.lan"),
		DEV("10:00:07", "10.0.0.2", " helo=pc17.lan"),
		DEV("10:00:08", "10.0.0.2", " imap_id_version=9"),	/* version only */
		/* hostile: NUL, control and bidi bytes, 200 bytes */
		DEV("10:00:09", "10.0.0.3", " imap_id_name=\"a\\x00b\\x1b[2J\\xe2\\x80\\xaeexe\""),
		DEV("10:00:10", "10.0.0.3", " helo=\"HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH\""),
		/* TLS logins make no device */
		"Nov 29 10:00:11 h tlsgate-policyd: tlsgate: service=imap user=d@x.org client=10.0.0.9 "
		"tls=TLSv1.3 verdict=allow mode=audit rule=r imap_id_name=tb",
	};
	static const struct {
		const char *client, *software, *helo;
		uint32_t count;
		const char *first, *last;
		const char *label;
	} want[] = {
		{ "10.0.0.1", "scanner-x 1.0", NULL, 2, "10:00:01", "10:00:05", "10.0.0.1 (scanner-x 1.0)" },
		{ "10.0.0.1", NULL, NULL, 1, "10:00:03", "10:00:03", "10.0.0.1" },
		{ "10.0.0.1", "scanner-x 2.0", NULL, 1, "10:00:04", "10:00:04", "10.0.0.1 (scanner-x 2.0)" },
		{ "10.0.0.2", NULL, "pc17.lan", 2, "10:00:06", "10:00:07", "10.0.0.2 (EHLO pc17.lan)" },
		{ "10.0.0.2", "? 9", NULL, 1, "10:00:08", "10:00:08", "10.0.0.2 (? 9)" },
		{ "10.0.0.3", "a", NULL, 1, "10:00:09", "10:00:09", "10.0.0.3 (a)" },
		{ "10.0.0.3", NULL, NULL, 1, "10:00:10", "10:00:10", NULL },
	};
	struct tally t;
	struct logtime lt;
	logtime_init(&lt, REF);
	assert_int_equal(tally_init(&t), 0);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_int_equal(tally_add_line(&t, &lt, lines[i], strlen(lines[i])), 0);
	struct tally_account *a = find_account(&t, "d@x.org");
	assert_non_null(a);
	assert_int_equal(a->device_count, sizeof(want) / sizeof(want[0]));
	const struct tally_device *d = a->devices;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++, d = d->next) {
		char label[300], t1[32], t2[32];
		assert_non_null(d);
		assert_string_equal(d->client, want[i].client);
		if (want[i].software)
			assert_string_equal(d->software, want[i].software);
		if (i != 6) {
			if (!want[i].software)
				assert_null(d->software);
			if (want[i].helo)
				assert_string_equal(d->helo, want[i].helo);
			else
				assert_null(d->helo);
		}
		assert_int_equal(d->count, want[i].count);
		assert_non_null(strstr(outfmt_time_iso(d->first, t1, sizeof(t1)), want[i].first));
		assert_non_null(strstr(outfmt_time_iso(d->last, t2, sizeof(t2)), want[i].last));
		if (want[i].label)
			assert_string_equal(tally_device_label(d, label, sizeof(label)), want[i].label);
	}
	/* the 200-byte EHLO name is kept to TALLY_DEVICE_TEXT bytes */
	d = a->devices;
	for (int i = 0; i < 6; i++)
		d = d->next;
	assert_int_equal(strlen(d->helo), TALLY_DEVICE_TEXT);
	tally_free(&t);

	/* a flood of made-up names: TALLY_MAX_DEVICES kept, the rest counted */
	assert_int_equal(tally_init(&t), 0);
	for (int i = 0; i < TALLY_MAX_DEVICES + 50; i++) {
		char line[300];
		snprintf(line, sizeof(line), "Nov 29 10:00:01 h tlsgate-policyd: tlsgate: service=imap "
			 "user=f@x.org client=10.0.0.1 tls=none verdict=audit mode=audit rule=r "
			 "imap_id_name=prog%d", i);
		assert_int_equal(tally_add_line(&t, &lt, line, strlen(line)), 0);
	}
	a = find_account(&t, "f@x.org");
	assert_int_equal(a->device_count, TALLY_MAX_DEVICES);
	assert_int_equal(a->devices_dropped, 50);
	tally_free(&t);
#undef DEV
}

static void test_logscan_files(void **state)
{
	char plain[] = "/tmp/tg-test-logscan-XXXXXX";
	int fd = mkstemp(plain);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("line one\n", f);
	for (int i = 0; i < LOGSCAN_MAX_LINE + 10; i++)
		putc('x', f);
	fputs("\nline three\nno newline", f);
	fclose(f);

	char gzpath[64];
	snprintf(gzpath, sizeof(gzpath), "%s.gz", plain);
	gzFile gz = gzopen(gzpath, "wb");
	assert_non_null(gz);
	for (int i = 0; i < 100000; i++)
		gzprintf(gz, "gz line %d\n", i);
	gzclose(gz);

	static const struct {
		int gz;
		size_t lines, long_lines;
		const char *last;
	} rows[] = {
		{ 0, 3, 1, "no newline" },
		{ 1, 100000, 0, "gz line 99999" },
	};
	for (size_t i = 0; i < 2; i++) {
		struct logscan ls;
		char why[200], last[64] = "";
		const char *line;
		size_t len;
		int r;
		assert_int_equal(logscan_open(&ls, rows[i].gz ? gzpath : plain, why, sizeof(why)), 0);
		while ((r = logscan_next(&ls, &line, &len, why, sizeof(why))) > 0) {
			assert_true(len <= LOGSCAN_MAX_LINE);
			snprintf(last, sizeof(last), "%.*s", (int)(len < 60 ? len : 60), line);
		}
		assert_int_equal(r, 0);
		assert_int_equal(ls.lines, rows[i].lines);
		assert_int_equal(ls.long_lines, rows[i].long_lines);
		assert_string_equal(last, rows[i].last);
		logscan_close(&ls);
	}
	/* the .gz cut short (half its bytes): the lines before the cut are
	 * handed out, then an error, never a quiet end */
	struct stat gst;
	assert_int_equal(stat(gzpath, &gst), 0);
	assert_int_equal(truncate(gzpath, gst.st_size / 2), 0);
	{
		struct logscan ls;
		char why[200];
		const char *line;
		size_t len;
		int r;
		assert_int_equal(logscan_open(&ls, gzpath, why, sizeof(why)), 0);
		while ((r = logscan_next(&ls, &line, &len, why, sizeof(why))) > 0)
			;
		assert_int_equal(r, -1);
		assert_non_null(strstr(why, "truncated"));
		assert_true(ls.lines > 0 && ls.lines < 100000);
		logscan_close(&ls);
	}
	/* and `tlsgate report` exits 2 with the message */
	{
		struct cli_context ctx = { .progname = "tlsgate" };
		char *argv_r[] = { "report", "--json", gzpath, NULL };
		fflush(stdout);
		int saved = dup(1), devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		int r = cmd_report(3, argv_r, &ctx);
		fflush(stdout);
		dup2(saved, 1);
		close(saved);
		close(devnull);
		assert_int_equal(r, 2);
	}
	struct logscan ls;
	char why[200];
	assert_int_equal(logscan_open(&ls, "/nonexistent/x.log", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "/nonexistent/x.log"));
	assert_int_equal(logscan_open(&ls, "/tmp", why, sizeof(why)), -1);
	unlink(plain);
	unlink(gzpath);
}

/* An unused exemption without until= (policy line 4) right after a used
 * one with until=2027-12-31 (line 3): its row shows no date. */
static void test_exemption_rows_until(void **state)
{
	char dir[] = "/tmp/tg-test-until-XXXXXX", pol[64], log[64], out[64];
	assert_non_null(mkdtemp(dir));
	snprintf(pol, sizeof(pol), "%s/p.conf", dir);
	snprintf(log, sizeof(log), "%s/mail.log", dir);
	snprintf(out, sizeof(out), "%s/out.json", dir);
	FILE *f = fopen(pol, "w");
	fputs(policy_text, f);
	fclose(f);
	f = fopen(log, "w");
	fprintf(f, "Nov 29 10:03:00 mx tlsgate-policyd[2]: tlsgate: service=smtp "
		"user=scan@example.com client=192.0.2.10 tls=none verdict=exempt mode=audit "
		"rule=%s:2 exemption=%s:3\n", pol, pol);
	fclose(f);
	struct cli_context ctx = { .policy_path = pol, .progname = "tlsgate" };
	char *argv_j[] = { "report", "--json", "--at", "2026-11-29", log, NULL };
	fflush(stdout);
	int saved = dup(1);
	FILE *o = fopen(out, "w");
	dup2(fileno(o), 1);
	int r = cmd_report(5, argv_j, &ctx);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	fclose(o);
	assert_int_equal(r, 0);
	static char page[65536];
	f = fopen(out, "r");
	size_t n = fread(page, 1, sizeof(page) - 1, f);
	page[n] = '\0';
	fclose(f);
	const char *alice = strstr(page, "\"subject\":\"alice@example.com\"");
	if (alice == NULL)
		fail_msg("no alice exemption row in %s", page);
	assert_true(strncmp(alice, "\"subject\":\"alice@example.com\",\"until\":\"\"", 40) == 0);
	/* the used one is not listed, the expired one is, with its date */
	assert_null(strstr(page, "\"subject\":\"scan@example.com\""));
	assert_non_null(strstr(page, "\"subject\":\"old@example.com\",\"until\":\"2026-01-01\""));
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static char *capture(void (*fn)(FILE *, const char *), const char *s)
{
	static char buf[1024];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	fn(f, s);
	fclose(f);
	return buf;
}

static void test_safe_output(void **state)
{
	static const struct {
		const char *in, *json, *csv, *html, *text;
	} rows[] = {
		{ "alice@example.com", "\"alice@example.com\"", "\"alice@example.com\"",
		  "alice@example.com", "alice@example.com" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"", "\"a\"\"b\\c\"", "a&quot;b\\c", "a\"b\\c" },
		{ "x\x1b[31m\n", "\"x\\u001b[31m\\u000a\"", "\"x?[31m?\"", "x?[31m?", "x?[31m?" },
		{ "<script>&'", "\"<script>&'\"", "\"<script>&'\"",
		  "&lt;script&gt;&amp;&#39;", "<script>&'" },
		{ "=cmd|' /C calc'!A0", "\"=cmd|' /C calc'!A0\"", "\"'=cmd|' /C calc'!A0\"",
		  "=cmd|&#39; /C calc&#39;!A0", "=cmd|' /C calc'!A0" },
		{ "j\xc3\xbcrgen", "\"j\xc3\xbcrgen\"", "\"j\xc3\xbcrgen\"", "j\xc3\xbcrgen", "j??rgen" },
		{ "bad\xff\xc3", "\"bad\\ufffd\\ufffd\"", "\"bad\xff\xc3\"", "bad&#xfffd;&#xfffd;", "bad??" },
		/* bidirectional overrides and isolates never pass raw */
		{ "moc.\xe2\x80\xae" "exe", "\"moc.\\u202eexe\"", "\"moc.[U+202E]exe\"",
		  "moc.[U+202E]exe", "moc.???exe" },
		{ "a\xe2\x81\xa6" "b\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c",
		  "\"a\\u2066b\\u2069\\u200f\\u061c\"", "\"a[U+2066]b[U+2069][U+200F][U+061C]\"",
		  "a[U+2066]b[U+2069][U+200F][U+061C]", "a???b????????" },
		{ "em\xe2\x80\x94" "dash", "\"em\xe2\x80\x94" "dash\"", "\"em\xe2\x80\x94" "dash\"",
		  "em\xe2\x80\x94" "dash", "em???dash" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[200];
		assert_string_equal(capture(outfmt_json_string, rows[i].in), rows[i].json);
		assert_string_equal(capture(outfmt_csv_field, rows[i].in), rows[i].csv);
		assert_string_equal(capture(outfmt_html, rows[i].in), rows[i].html);
		assert_string_equal(outfmt_text(rows[i].in, 100, text, sizeof(text)), rows[i].text);
	}
	char text[32];
	assert_string_equal(outfmt_text("abcdefghij", 4, text, sizeof(text)), "abcd...");
}


/* The whole command on the sample lines: the HTML page and the CSV keep
 * every hostile value inert. */
static void test_cmd_report_outputs(void **state)
{
	char dir[] = "/tmp/tg-test-report-XXXXXX", log[64], html[64], csv[64];
	assert_non_null(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/mail.log", dir);
	snprintf(html, sizeof(html), "%s/r.html", dir);
	snprintf(csv, sizeof(csv), "%s/r.csv", dir);
	FILE *f = fopen(log, "w");
	for (size_t i = 0; i < NSAMPLES; i++)
		fprintf(f, "%s\n", sample_lines[i]);
	fclose(f);

	/* --no-config: this machine's /etc/tlsgate is never read */
	struct cli_context ctx = { .progname = "tlsgate", .no_config = 1 };
	char *argv_html[] = { "report", "--html", html, log, NULL };
	assert_int_equal(cmd_report(4, argv_html, &ctx), 0);
	static char page[65536];
	f = fopen(html, "r");
	assert_non_null(f);
	size_t n = fread(page, 1, sizeof(page) - 1, f);
	page[n] = '\0';
	fclose(f);
	assert_true(strncmp(page, "<!DOCTYPE html>", 15) == 0);
	assert_non_null(strstr(page, "alice@example.com"));
	assert_null(strstr(page, "root@example.com"));
	assert_null(strstr(page, "mallory"));
	assert_null(strstr(page, "<b>"));
	assert_null(strchr(page, 0x1b));
	assert_non_null(strstr(page, "(no domain)"));

	/* --csv to a file through stdout */
	fflush(stdout);
	int saved = dup(1);
	FILE *out = fopen(csv, "w");
	dup2(fileno(out), 1);
	char *argv_csv[] = { "report", "--csv", log, NULL };
	int r = cmd_report(3, argv_csv, &ctx);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	fclose(out);
	assert_int_equal(r, 0);
	f = fopen(csv, "r");
	n = fread(page, 1, sizeof(page) - 1, f);
	page[n] = '\0';
	fclose(f);
	assert_true(strncmp(page, "account,domain,", 15) == 0);
	assert_non_null(strstr(page, "\"eve@example.com\",\"example.com\",\"imap\",\"192.0.2.7\""));
	assert_null(strchr(page, 0x1b));
	/* one header and one line per plaintext account */
	size_t lines = 0;
	for (char *p = page; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 1 + 6);

	/* bad arguments and unreadable input: exit 2 */
	char *bad1[] = { "report", "--json", "--csv", log, NULL };
	char *bad2[] = { "report", "--since", "yesterday", log, NULL };
	char *bad3[] = { "report", "/nonexistent/mail.log", NULL };
	char *bad4[] = { "report", "--would-break", "a.org", "--domain", "b.org", log, NULL };
	assert_int_equal(cmd_report(4, bad1, &ctx), 2);
	assert_int_equal(cmd_report(4, bad2, &ctx), 2);
	assert_int_equal(cmd_report(2, bad3, &ctx), 2);
	assert_int_equal(cmd_report(6, bad4, &ctx), 2);
	unlink(log);
	unlink(html);
	unlink(csv);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_local_zone),
		cmocka_unit_test(test_time_args),
		cmocka_unit_test(test_sample_counts),
		cmocka_unit_test(test_device_grouping),
		cmocka_unit_test(test_window_and_domain),
		cmocka_unit_test(test_untimed_events),
		cmocka_unit_test(test_would_break_policy),
		cmocka_unit_test(test_duplicates_need_session),
		cmocka_unit_test(test_device_limit),
		cmocka_unit_test(test_logscan_files),
		cmocka_unit_test(test_exemption_rows_until),
		cmocka_unit_test(test_safe_output),
		cmocka_unit_test(test_cmd_report_outputs),
	};
	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
