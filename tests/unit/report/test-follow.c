/*
 * test-follow - the reader behind `tlsgate notify --follow` (follow.h):
 * start at the end, partial lines, over-long lines, rotation by rename +
 * create, copytruncate (shorter, and rewritten to the same length), a
 * file that appears later; and the sender queue (sendq.h): the hourly cap,
 * the bounded queue, one notice per account at a time, a slow delivery
 * stopped at its timeout while others go on; and whole runs of
 * `notify --follow -` over a stream that ends (which events call for a
 * notice, the state file, the recipient domains, forged lines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "report/follow.h"
#include "report/sendq.h"

static char dir[64], path[128];

static int setup(void **state)
{
	strcpy(dir, "/tmp/tg-test-follow-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mail.log", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void append(const char *p, const char *text)
{
	FILE *f = fopen(p, "a");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void rewrite(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The next line as a string, or NULL when there is none yet. */
static const char *next(struct follow *f)
{
	static char got[FOLLOW_MAX_LINE + 1];
	char why[256];
	const char *line;
	size_t len;
	int r = follow_next(f, &line, &len, why, sizeof(why));
	assert_int_not_equal(r, -1);
	if (r == 0)
		return NULL;
	memcpy(got, line, len);
	got[len] = '\0';
	return got;
}

static void open_follow(struct follow *f, bool from_start)
{
	char why[256];
	assert_int_equal(follow_open(f, path, from_start, why, sizeof(why)), 0);
}

static void test_starts_at_end_and_drops_cut_line(void **state)
{
	struct follow f;
	rewrite(path, "old 1\nold 2\ncut in the midd");
	open_follow(&f, false);
	assert_null(next(&f));
	append(path, "le\nnew 1\n");
	assert_string_equal(next(&f), "new 1");
	assert_null(next(&f));
	follow_close(&f);

	open_follow(&f, true);
	assert_string_equal(next(&f), "old 1");
	assert_string_equal(next(&f), "old 2");
	assert_string_equal(next(&f), "cut in the middle");
	assert_string_equal(next(&f), "new 1");
	follow_close(&f);
}

static void test_partial_line_waits_for_its_newline(void **state)
{
	struct follow f;
	rewrite(path, "");
	open_follow(&f, false);
	append(path, "half a ");
	assert_null(next(&f));
	assert_null(next(&f));
	append(path, "line\r\nnext");
	assert_string_equal(next(&f), "half a line");
	assert_null(next(&f));
	append(path, "\n");
	assert_string_equal(next(&f), "next");
	assert_int_equal(f.lines, 2);
	follow_close(&f);
}

static void test_long_line_skipped_whole(void **state)
{
	struct follow f;
	rewrite(path, "");
	open_follow(&f, false);
	char *big = malloc(3 * FOLLOW_MAX_LINE + 2);
	assert_non_null(big);
	memset(big, 'x', 3 * FOLLOW_MAX_LINE);
	big[3 * FOLLOW_MAX_LINE] = '\0';
	/* written in pieces: the reader sees it grow */
	append(path, "before\n");
	append(path, big);
	assert_string_equal(next(&f), "before");
	assert_null(next(&f));
	append(path, big);
	assert_null(next(&f));
	append(path, "\nafter\n");
	assert_string_equal(next(&f), "after");
	assert_int_equal(f.long_lines, 1);
	/* just at the limit is a line */
	big[FOLLOW_MAX_LINE] = '\0';
	append(path, big);
	append(path, "\n");
	const char *l = next(&f);
	assert_non_null(l);
	assert_int_equal(strlen(l), FOLLOW_MAX_LINE);
	free(big);
	follow_close(&f);
}

static void test_rename_and_create(void **state)
{
	struct follow f;
	char old[160];
	snprintf(old, sizeof(old), "%s.1", path);
	rewrite(path, "");
	open_follow(&f, false);
	append(path, "a\n");
	assert_string_equal(next(&f), "a");
	assert_null(next(&f));
	/* the writer adds a line, then the file is renamed and made anew */
	append(path, "b\npartial");
	assert_int_equal(rename(path, old), 0);
	/* the old file is read to its end; no new file yet: wait */
	assert_string_equal(next(&f), "b");
	assert_null(next(&f));
	rewrite(path, "c\n");
	assert_string_equal(next(&f), "c");
	assert_null(next(&f));
	assert_int_equal(f.rotations, 1);
	assert_int_equal(f.dropped_partial, 1);
	follow_close(&f);
}

static void test_rename_seen_after_rest(void **state)
{
	struct follow f;
	char old[160];
	snprintf(old, sizeof(old), "%s.1", path);
	rewrite(path, "");
	open_follow(&f, false);
	assert_null(next(&f));
	assert_int_equal(rename(path, old), 0);
	rewrite(path, "new file\n");
	assert_string_equal(next(&f), "new file");
	follow_close(&f);
}

static void test_copytruncate(void **state)
{
	struct follow f;
	rewrite(path, "");
	open_follow(&f, false);
	append(path, "a long first line of the old file\nsecond\n");
	assert_string_equal(next(&f), "a long first line of the old file");
	assert_string_equal(next(&f), "second");
	assert_null(next(&f));
	/* shorter after the truncation */
	rewrite(path, "x\n");
	assert_string_equal(next(&f), "x");
	assert_int_equal(f.truncations, 1);
	/* truncated and written again to the same length while resting */
	rewrite(path, "y\n");
	assert_string_equal(next(&f), "y");
	assert_int_equal(f.truncations, 2);
	assert_null(next(&f));
	/* and grown past the old position */
	rewrite(path, "z1\nz2\n");
	assert_string_equal(next(&f), "z1");
	assert_string_equal(next(&f), "z2");
	follow_close(&f);
}

static void test_file_appears_later(void **state)
{
	struct follow f;
	unlink(path);
	open_follow(&f, false);
	assert_int_equal(f.fd, -1);
	assert_null(next(&f));
	rewrite(path, "first\n");
	assert_string_equal(next(&f), "first");
	follow_close(&f);
}

static void test_not_a_file(void **state)
{
	struct follow f;
	char why[256];
	assert_int_equal(follow_open(&f, dir, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not a regular file"));
}

/* ---- sendq ---- */

static int deliveries_ok(void *ctx, const char *data, size_t len)
{
	/* "slow" sleeps past any timeout of the tests; "fail" fails */
	if (len >= 4 && memcmp(data, "slow", 4) == 0)
		sleep(30);
	return len >= 4 && memcmp(data, "fail", 4) == 0 ? -1 : 0;
}

struct outcome {
	char account[64];
	bool ok, timed_out;
};
static struct outcome outcomes[16];
static size_t noutcomes;

static void record(void *ctx, const char *account, bool ok, bool timed_out)
{
	assert_true(noutcomes < 16);
	snprintf(outcomes[noutcomes].account, sizeof(outcomes[0].account), "%s", account);
	outcomes[noutcomes].ok = ok;
	outcomes[noutcomes].timed_out = timed_out;
	noutcomes++;
}

static int64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static const struct outcome *outcome_of(const char *account)
{
	for (size_t i = 0; i < noutcomes; i++)
		if (strcmp(outcomes[i].account, account) == 0)
			return &outcomes[i];
	return NULL;
}

static void test_sendq_hourly_cap(void **state)
{
	struct sendq q;
	assert_int_equal(sendq_init(&q, 5, 3, deliveries_ok, NULL), 0);
	assert_int_equal(sendq_add(&q, "a@x", "m", 1, 1000), SENDQ_QUEUED);
	assert_int_equal(sendq_add(&q, "b@x", "m", 1, 1100), SENDQ_QUEUED);
	assert_int_equal(sendq_add(&q, "c@x", "m", 1, 1200), SENDQ_QUEUED);
	assert_int_equal(sendq_add(&q, "d@x", "m", 1, 4599), SENDQ_OVER_RATE);
	/* an hour after the first, one more fits */
	assert_int_equal(sendq_add(&q, "d@x", "m", 1, 4600), SENDQ_QUEUED);
	assert_int_equal(sendq_add(&q, "e@x", "m", 1, 4601), SENDQ_OVER_RATE);
	assert_int_equal(q.over_rate, 2);
	assert_true(sendq_pending(&q, "A@X"));
	assert_false(sendq_pending(&q, "e@x"));
	assert_int_equal(sendq_busy(&q), 4);
	sendq_free(&q);
}

static void test_sendq_bounded_queue(void **state)
{
	struct sendq q;
	char name[32];
	assert_int_equal(sendq_init(&q, 5, SENDQ_MAX_PER_HOUR_LIMIT, deliveries_ok, NULL), 0);
	for (int i = 0; i < SENDQ_MAX_WAITING; i++) {
		snprintf(name, sizeof(name), "u%d@x", i);
		assert_int_equal(sendq_add(&q, name, "m", 1, 0), SENDQ_QUEUED);
	}
	assert_int_equal(sendq_add(&q, "late@x", "m", 1, 0), SENDQ_FULL);
	assert_int_equal(q.overflow, 1);
	sendq_free(&q);
}

static void test_sendq_slow_does_not_stop_others(void **state)
{
	struct sendq q;
	noutcomes = 0;
	assert_int_equal(sendq_init(&q, 2, 100, deliveries_ok, NULL), 0);
	assert_int_equal(sendq_add(&q, "slow@x", "slow", 4, mono()), SENDQ_QUEUED);
	assert_int_equal(sendq_add(&q, "fast@x", "fast", 4, mono()), SENDQ_QUEUED);
	assert_int_equal(sendq_add(&q, "fail@x", "fail", 4, mono()), SENDQ_QUEUED);
	int64_t start = mono();
	while (outcome_of("fast@x") == NULL || outcome_of("fail@x") == NULL) {
		sendq_run(&q, mono(), record, NULL);
		assert_true(mono() - start < 2);	/* not held up by slow@x */
		usleep(10000);
	}
	assert_true(outcome_of("fast@x")->ok);
	assert_false(outcome_of("fail@x")->ok);
	assert_false(outcome_of("fail@x")->timed_out);
	assert_null(outcome_of("slow@x"));
	while (outcome_of("slow@x") == NULL) {
		sendq_run(&q, mono(), record, NULL);
		assert_true(mono() - start < 5);
		usleep(10000);
	}
	assert_false(outcome_of("slow@x")->ok);
	assert_true(outcome_of("slow@x")->timed_out);
	assert_int_equal(q.delivered, 1);
	assert_int_equal(q.failed, 1);
	assert_int_equal(q.timed_out, 1);
	assert_int_equal(sendq_busy(&q), 0);
	sendq_free(&q);
}

static void test_sendq_stop_kills_and_drops(void **state)
{
	struct sendq q;
	char name[32];
	noutcomes = 0;
	assert_int_equal(sendq_init(&q, 60, 100, deliveries_ok, NULL), 0);
	for (int i = 0; i < SENDQ_SLOTS + 2; i++) {
		snprintf(name, sizeof(name), "s%d@x", i);
		assert_int_equal(sendq_add(&q, name, "slow", 4, mono()), SENDQ_QUEUED);
	}
	sendq_run(&q, mono(), record, NULL);
	int64_t start = mono();
	assert_int_equal(sendq_stop(&q, mono() + 1, mono, record, NULL), 2);
	assert_true(mono() - start <= 3);
	assert_int_equal(noutcomes, SENDQ_SLOTS);
	for (size_t i = 0; i < noutcomes; i++)
		assert_false(outcomes[i].ok);
	assert_int_equal(sendq_busy(&q), 0);
	sendq_free(&q);
}

/* ---- notify --follow over stdin ---- */

static int run_follow_bytes(const char *policy, const char *input, size_t input_len,
			    const char *extra);

static int run_follow(const char *policy, const char *input, const char *extra)
{
	return run_follow_bytes(policy, input, strlen(input), extra);
}

static int run_follow_bytes(const char *policy, const char *input, size_t input_len,
			    const char *extra)
{
	char p_policy[160], p_in[160], p_tpl[160], p_mailer[160], p_state[160], cmd[400];
	snprintf(p_policy, sizeof(p_policy), "%s/policy.conf", dir);
	snprintf(p_in, sizeof(p_in), "%s/in.log", dir);
	snprintf(p_tpl, sizeof(p_tpl), "%s/t.txt", dir);
	snprintf(p_mailer, sizeof(p_mailer), "%s/mailer.sh", dir);
	snprintf(p_state, sizeof(p_state), "%s/state", dir);
	rewrite(p_policy, policy);
	FILE *fin = fopen(p_in, "wb");
	assert_non_null(fin);
	assert_int_equal(fwrite(input, 1, input_len, fin), input_len);
	fclose(fin);
	rewrite(p_tpl, "Subject: TLS for {{account}}\n\n{{services}} from {{clients}}\n");
	rewrite(p_mailer, "#!/bin/sh\nsed -n 's/^To: //p' >> \"$1\"\n");
	chmod(p_mailer, 0700);
	snprintf(cmd, sizeof(cmd), "%s %s/mailed", p_mailer, dir);
	char *argv[20];
	int argc = 0;
	argv[argc++] = "notify";
	argv[argc++] = "--follow";
	argv[argc++] = "--send";
	argv[argc++] = "--sendmail";
	argv[argc++] = cmd;
	argv[argc++] = "--from";
	argv[argc++] = "postmaster@example.com";
	argv[argc++] = "--state";
	argv[argc++] = p_state;
	argv[argc++] = "--template";
	argv[argc++] = p_tpl;
	if (extra != NULL)
		argv[argc++] = (char *)extra;
	argv[argc++] = "-";
	argv[argc] = NULL;
	assert_non_null(freopen(p_in, "r", stdin));
	struct cli_context ctx = { .policy_path = p_policy, .progname = "tlsgate" };
	int r = cmd_notify(argc, argv, &ctx);
	clearerr(stdin);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *mailed(void)
{
	static char buf[4096];
	char p[160];
	snprintf(p, sizeof(p), "%s/mailed", dir);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The recipients so far, sorted (notices go out in parallel). */
static const char *mailed_sorted(void)
{
	static char out[4096];
	char copy[4096], *lines[64];
	size_t n = 0;
	snprintf(copy, sizeof(copy), "%s", mailed());
	for (char *tok = strtok(copy, "\n"); tok != NULL && n < 64; tok = strtok(NULL, "\n"))
		lines[n++] = tok;
	qsort(lines, n, sizeof(lines[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
	}
	return out;
}

#define EV(user, rest) "Dec  1 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=" \
	user " client=192.0.2.7 tls=none " rest "\n"

static void test_follow_which_events_notify(void **state)
{
	const char *policy = "audit *\nrequire @example.com\nrequire @later.example from=2099-01-01\n";
	const char *input =
		EV("alice@example.com", "verdict=reject mode=require rule=p:2 mech=PLAIN")
		EV("alice@example.com", "verdict=reject mode=require rule=p:2 mech=PLAIN")
		EV("bob@later.example", "verdict=audit mode=audit rule=p:3 enforce_from=2099-01-01")
		EV("carol@other.example", "verdict=audit mode=audit rule=p:1")
		EV("dave@outside.example", "verdict=reject mode=require rule=p:2")
		"Dec  1 10:00:02 mx postfix/cleanup[7]: 4XyZ1: message-id=<tlsgate: service=imap "
		"user=eve@example.com client=192.0.2.7 tls=none verdict=reject mode=require rule=p:2>\n"
		EV("\"x/../y@example.com\"", "verdict=reject mode=require rule=p:2")
		"Dec  1 10:00:03 mx dovecot: auth: Info: tlsgate: service=imap user=frank@example.com "
		"client=192.0.2.7 tls=TLSv1.3 verdict=allow mode=require rule=p:2\n"
		"Dec  1 10:00:04 mx dovecot: auth: Info: tlsgate: service=imap user=gina@example.com";
	assert_int_equal(run_follow(policy, input, NULL), 0);
	/* once for alice (refused twice), bob (audit before a from= date);
	 * not carol (no date), dave (a domain the policy does not name),
	 * eve (forged in a Message-ID), frank (TLS), gina (cut off) */
	assert_string_equal(mailed_sorted(), "alice@example.com\nbob@later.example\n");

	/* a second run with the same state file: nobody again */
	assert_int_equal(run_follow(policy, input, NULL), 0);
	assert_string_equal(mailed_sorted(), "alice@example.com\nbob@later.example\n");

	/* --every 1h: told recently still holds */
	assert_int_equal(run_follow(policy, input, "--every=1h"), 0);
	assert_string_equal(mailed_sorted(), "alice@example.com\nbob@later.example\n");
}

static void test_follow_hourly_cap(void **state)
{
	const char *policy = "require @example.com\n";
	const char *input =
		EV("a1@example.com", "verdict=reject mode=require rule=p:1")
		EV("a2@example.com", "verdict=reject mode=require rule=p:1")
		EV("a3@example.com", "verdict=reject mode=require rule=p:1");
	assert_int_equal(run_follow(policy, input, "--max-per-hour=2"), 0);
	assert_string_equal(mailed_sorted(), "a1@example.com\na2@example.com\n");
}

/* docs/events.md's reading rules against a hostile stream: binary bytes,
 * NULs, an over-long line holding a valid event, forged and implausible
 * events; only the one plain event at the end gets a notice. */
#define ADD(lit) add(in, &n, cap, lit, sizeof(lit) - 1)

static void add(char *buf, size_t *n, size_t cap, const char *data, size_t len)
{
	assert_true(*n + len <= cap);
	memcpy(buf + *n, data, len);
	*n += len;
}

static void test_follow_hostile_stream(void **state)
{
	size_t cap = 200000, n = 0;
	char *in = malloc(cap);
	assert_non_null(in);
	srand(7);
	for (int i = 0; i < 4000; i++)		/* random bytes, NULs and newlines */
		in[n++] = (char)(rand() % 256);
	ADD("\n");
	/* a valid event, then 40000 bytes more on its line: skipped whole */
	ADD(EV("big@example.com", "verdict=reject mode=require rule=p:1"));
	n--;
	memset(in + n, 'x', 40000);
	n += 40000;
	ADD("\n");
	ADD("Dec  1 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=a\0b@example.com "
	    "client=192.0.2.7 tls=none verdict=reject mode=require rule=p:1\n");
	ADD(EV("bidi\xe2\x80\xaeuser@example.com", "verdict=reject mode=require rule=p:1"));
	ADD(EV("half@example.com", "verdict=reject mode=require rule=p:1 mech=\"unclosed"));
	ADD("Dec  1 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=x@example.com "
	    "client=not-an-address tls=none verdict=reject mode=require rule=p:1\n");
	ADD("Dec  1 10:00:01 mx evil: dovecot: auth: Info: tlsgate: service=imap user=y@example.com "
	    "client=192.0.2.7 tls=none verdict=reject mode=require rule=p:1\n");
	ADD("Dec  1 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=cr@example.com\r"
	    "client=192.0.2.7 tls=none verdict=reject mode=require rule=p:1\n");
	ADD(EV("ok@example.com", "verdict=reject mode=require rule=p:1"));
	ADD("Dec  1 10:00:01 mx dovecot: auth: Info: tlsgate: service=imap user=cut@example.com");
	assert_int_equal(run_follow_bytes("require @example.com\n", in, n, NULL), 0);
	free(in);
	assert_string_equal(mailed_sorted(), "ok@example.com\n");
}

static void test_follow_arguments(void **state)
{
	char *no_state[] = { "notify", "--follow", "--send", "--from", "a@b.c", "-", NULL };
	char *no_send[] = { "notify", "--follow", "--dry-run", "--state", "/tmp/x", "-", NULL };
	char *two_logs[] = { "notify", "--follow", "--send", "--from", "a@b.c", "--state", "/tmp/x",
			     "a", "b", NULL };
	char *bad_rate[] = { "notify", "--follow", "--send", "--from", "a@b.c", "--state", "/tmp/x",
			     "--max-per-hour", "0", "-", NULL };
	struct cli_context ctx = { .no_config = 1, .progname = "tlsgate" };
	assert_int_equal(cmd_notify(6, no_state, &ctx), 2);
	assert_int_equal(cmd_notify(6, no_send, &ctx), 2);
	assert_int_equal(cmd_notify(9, two_logs, &ctx), 2);
	assert_int_equal(cmd_notify(10, bad_rate, &ctx), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_starts_at_end_and_drops_cut_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_line_waits_for_its_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_skipped_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_and_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_seen_after_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copytruncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_appears_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_file, setup, teardown),
		cmocka_unit_test(test_sendq_hourly_cap),
		cmocka_unit_test(test_sendq_bounded_queue),
		cmocka_unit_test(test_sendq_slow_does_not_stop_others),
		cmocka_unit_test(test_sendq_stop_kills_and_drops),
		cmocka_unit_test_setup_teardown(test_follow_which_events_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_hourly_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_hostile_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_arguments, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
