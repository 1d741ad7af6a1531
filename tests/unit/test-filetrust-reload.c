/*
 * test-filetrust-reload - which files a policy may come from, directory
 * loading order, and reloads that keep the old snapshot on failure.
 * Works in a private directory under /tmp (sticky, so trusted).
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
#include <sys/time.h>
#include <unistd.h>

#include "decide.h"
#include "filetrust.h"
#include "policy.h"
#include "reload.h"

static char base[64];

static int setup(void **state)
{
	strcpy(base, "/tmp/tlsgate-test-XXXXXX");
	assert_non_null(mkdtemp(base));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(const char *name)
{
	static char buf[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", base, name);
	return buf[k];
}

static void write_file(const char *name, const char *text, mode_t mode)
{
	char *p = path_of(name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
}

/* Loads a policy; returns NULL when it loads, else the first error. */
static const char *load_error(const char *name, char *buf, size_t size)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load(path_of(name), &errs);
	if (p != NULL) {
		tg_policy_free(p);
		return NULL;
	}
	snprintf(buf, size, "%s", errs.msgs[0]);
	tg_errors_clear(&errs);
	return buf;
}

static void expect_error(const char *name, const char *want)
{
	char buf[1024];
	const char *err = load_error(name, buf, sizeof(buf));
	if (err == NULL)
		fail_msg("%s loaded", name);
	if (strstr(err, want) == NULL)
		fail_msg("%s: '%s' lacks '%s'", name, err, want);
}

static void expect_loads(const char *name)
{
	char buf[1024];
	const char *err = load_error(name, buf, sizeof(buf));
	if (err != NULL)
		fail_msg("%s: %s", name, err);
}

static void test_file_trust(void **state)
{
	write_file("good.conf", "audit *\n", 0644);
	expect_loads("good.conf");

	write_file("gw.conf", "audit *\n", 0664);
	expect_error("gw.conf", "is writable by its group; run: chmod go-w");
	write_file("ww.conf", "audit *\n", 0646);
	expect_error("ww.conf", "is writable by everyone");

	write_file("owner.conf", "audit *\n", 0644);
	assert_int_equal(chown(path_of("owner.conf"), 65534, 65534), 0);
	expect_error("owner.conf", "is owned by uid 65534; it must be owned by root");

	/* a writable directory above the file */
	assert_int_equal(mkdir(path_of("open"), 0777), 0);
	assert_int_equal(chmod(path_of("open"), 0777), 0);
	write_file("open/p.conf", "audit *\n", 0644);
	expect_error("open/p.conf", "directory ");
	expect_error("open/p.conf", "is writable by everyone");
	assert_int_equal(chmod(path_of("open"), 01777), 0);	/* sticky: fine */
	expect_loads("open/p.conf");

	/* FIFO, directory-as-file, missing */
	assert_int_equal(mkfifo(path_of("fifo.conf"), 0644), 0);
	expect_error("fifo.conf", "not a regular file");
	expect_error("missing.conf", "No such file or directory");

	/* a symlink is followed, and its target is checked */
	assert_int_equal(symlink(path_of("good.conf"), path_of("link.conf")), 0);
	expect_loads("link.conf");
	assert_int_equal(symlink(path_of("gw.conf"), path_of("badlink.conf")), 0);
	expect_error("badlink.conf", "is writable by its group");
	assert_int_equal(symlink(path_of("open/p.conf"), path_of("link2.conf")), 0);
	assert_int_equal(chmod(path_of("open"), 0777), 0);
	expect_error("link2.conf", "is writable by everyone");
	assert_int_equal(chmod(path_of("open"), 0755), 0);
}

static void test_directory(void **state)
{
	assert_int_equal(mkdir(path_of("d"), 0755), 0);
	/* byte order of names: 10- before 9-; "B" before "a" */
	write_file("d/9-late.conf", "require @late.example\n", 0644);
	write_file("d/10-early.conf", "audit *\n", 0644);
	write_file("d/B.conf", "require @b.example\n", 0644);
	write_file("d/.hidden.conf", "this is not read\n", 0644);
	write_file("d/notes.txt", "neither is this\n", 0644);
	write_file("d/example.conf~", "nor an editor backup\n", 0644);
	struct tg_errors errs;
	tg_errors_init(&errs);
	struct tg_policy *p = tg_policy_load(path_of("d"), &errs);
	assert_non_null(p);
	struct tg_mode_rule_info m;
	assert_int_equal(tg_policy_mode_rule_count(p), 3);
	tg_policy_mode_rule(p, 0, &m);
	assert_string_equal(m.ref.file, path_of("d/10-early.conf"));
	tg_policy_mode_rule(p, 1, &m);
	assert_string_equal(m.ref.file, path_of("d/9-late.conf"));
	tg_policy_mode_rule(p, 2, &m);
	assert_string_equal(m.ref.file, path_of("d/B.conf"));
	tg_policy_free(p);

	/* an error in one file names that file and fails the whole load */
	write_file("d/C.conf", "require @c.example\nrequire @b.example\n", 0644);
	expect_error("d", "d/C.conf:2: a second mode rule for '@b.example'");
	assert_int_equal(unlink(path_of("d/C.conf")), 0);

	/* an untrusted file in the directory fails the load */
	write_file("d/gw.conf", "audit @x\n", 0666);
	expect_error("d", "d/gw.conf: file");
	assert_int_equal(chmod(path_of("d/gw.conf"), 0644), 0);
	expect_loads("d");
	/* a directory named *.conf is not a regular file */
	assert_int_equal(mkdir(path_of("d/sub.conf"), 0755), 0);
	expect_error("d", "not a regular file");
	assert_int_equal(rmdir(path_of("d/sub.conf")), 0);

	/* the directory itself must be trusted */
	assert_int_equal(chmod(path_of("d"), 0775), 0);
	expect_error("d", "is writable by its group");
	assert_int_equal(chmod(path_of("d"), 0755), 0);

	/* an empty directory is an empty policy */
	assert_int_equal(mkdir(path_of("empty"), 0755), 0);
	expect_loads("empty");
}

/* Sets a file's mtime into the past so a rewrite within the same clock
 * tick still changes it. */
static void age(const char *name)
{
	struct timeval tv[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	assert_int_equal(utimes(path_of(name), tv), 0);
}

static enum tg_verdict verdict_for(struct tg_holder *h, const char *user)
{
	struct tg_decision d;
	struct tg_login login = {
		.user = user, .service = TG_SERVICE_IMAP, .tls = TG_TLS_NONE,
		.today = 20261129, .mode_override = -1,
	};
	tg_decide(tg_holder_current(h), &login, &d);
	return d.verdict;
}

static void test_reload(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	assert_int_equal(mkdir(path_of("r"), 0755), 0);
	write_file("r/a.conf", "require @a.example\n", 0644);

	struct tg_holder *h = tg_holder_new(path_of("r"));
	assert_non_null(h);
	assert_null(tg_holder_current(h));
	assert_int_equal(tg_holder_poll(h, 100, 1, &errs), 1);	/* first load */
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_REJECT);
	assert_int_equal(tg_holder_poll(h, 101, 1, &errs), 0);	/* unchanged */

	/* edit in place */
	age("r/a.conf");
	write_file("r/a.conf", "audit @a.example\n", 0644);
	assert_int_equal(tg_holder_poll(h, 101, 1, &errs), 0);	/* same second */
	assert_int_equal(tg_holder_poll(h, 102, 1, &errs), 1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);

	/* a broken edit: old snapshot stays, error reported once */
	age("r/a.conf");
	write_file("r/a.conf", "audit @a.example\nrequire @b.example from=tomorrow\n", 0644);
	assert_int_equal(tg_holder_poll(h, 103, 1, &errs), -1);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.msgs[0], "r/a.conf:2: from='tomorrow'"));
	tg_errors_clear(&errs);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);
	assert_int_equal(tg_holder_poll(h, 104, 1, &errs), 0);	/* not retried */
	assert_int_equal(errs.count, 0);

	/* fixed: loads */
	age("r/a.conf");
	write_file("r/a.conf", "off @a.example\n", 0644);
	assert_int_equal(tg_holder_poll(h, 105, 1, &errs), 1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_ALLOW);

	/* a new file in the directory */
	write_file("r/b.conf", "require @b.example\n", 0644);
	assert_int_equal(tg_holder_poll(h, 106, 1, &errs), 1);
	assert_int_equal(verdict_for(h, "u@b.example"), TG_VERDICT_REJECT);

	/* a file removed */
	assert_int_equal(unlink(path_of("r/b.conf")), 0);
	assert_int_equal(tg_holder_poll(h, 107, 1, &errs), 1);
	assert_int_equal(verdict_for(h, "u@b.example"), TG_VERDICT_ALLOW);

	/* the directory removed: old policy keeps serving */
	assert_int_equal(unlink(path_of("r/a.conf")), 0);
	assert_int_equal(rmdir(path_of("r")), 0);
	assert_int_equal(tg_holder_poll(h, 108, 1, &errs), -1);
	assert_non_null(strstr(errs.msgs[0], "No such file or directory"));
	tg_errors_clear(&errs);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_ALLOW);

	/* and comes back */
	assert_int_equal(mkdir(path_of("r"), 0755), 0);
	write_file("r/a.conf", "require @a.example\n", 0644);
	assert_int_equal(tg_holder_poll(h, 109, 1, &errs), 1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_REJECT);

	/* a writable directory above fails the reload; fixing it (nothing
	 * in the policy itself changes) is noticed */
	age("r/a.conf");
	write_file("r/a.conf", "audit @a.example\n", 0644);
	assert_int_equal(chmod(base, 0777), 0);
	assert_int_equal(tg_holder_poll(h, 110, 1, &errs), -1);
	assert_non_null(strstr(errs.msgs[0], "is writable by everyone"));
	tg_errors_clear(&errs);
	assert_int_equal(tg_holder_poll(h, 111, 1, &errs), 0);	/* not retried */
	assert_int_equal(chmod(base, 0700), 0);
	assert_int_equal(tg_holder_poll(h, 112, 1, &errs), 1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);

	/* forced reload with a broken file keeps the old snapshot */
	write_file("r/z.conf", "bogus\n", 0644);
	assert_int_equal(tg_holder_reload(h, &errs), -1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);
	tg_errors_clear(&errs);
	tg_holder_free(h);
}

static void test_size_limit(void **state)
{
	char *data;
	size_t len;
	struct stat st;
	char why[256];
	write_file("big.conf", "# 0123456789012345678901234567890123456789\n", 0644);
	assert_int_equal(tg_read_trusted(path_of("big.conf"), 0, 10, &data, &len, &st,
					 why, sizeof(why)), -1);
	assert_non_null(strstr(why, "larger than 10 bytes"));
	assert_int_equal(tg_read_trusted(path_of("big.conf"), 0, 1000, &data, &len, &st,
					 why, sizeof(why)), 0);
	assert_int_equal(len, 43);
	free(data);
}

/* Background reloads: the snapshot changes only when the caller polls,
 * failures keep the old one, a broken edit is not retried. */
static void test_reload_async(void **state)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	assert_int_equal(mkdir(path_of("ra"), 0755), 0);
	write_file("ra/a.conf", "require @a.example\n", 0644);
	struct tg_holder *h = tg_holder_new(path_of("ra"));
	assert_int_equal(tg_holder_reload(h, &errs), 0);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_REJECT);
	assert_int_equal(tg_holder_poll_async(h, 100, 1, &errs), 0);	/* unchanged */
	assert_false(tg_holder_loading(h));

	age("ra/a.conf");
	write_file("ra/a.conf", "audit @a.example\n", 0644);
	assert_int_equal(tg_holder_poll_async(h, 102, 1, &errs), 0);	/* started */
	assert_true(tg_holder_loading(h));
	/* the old snapshot serves until the caller takes the new one */
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_REJECT);
	assert_int_equal(tg_holder_finish(h, &errs), 1);
	assert_false(tg_holder_loading(h));
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);
	assert_int_equal(tg_holder_finish(h, &errs), 0);		/* none running */

	/* a broken edit: old snapshot kept, errors returned once */
	age("ra/a.conf");
	write_file("ra/a.conf", "audit @a.example\nbogus\n", 0644);
	assert_int_equal(tg_holder_poll_async(h, 104, 1, &errs), 0);
	int r;
	while ((r = tg_holder_poll_async(h, 104, 1, &errs)) == 0)
		usleep(1000);
	assert_int_equal(r, -1);
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.msgs[0], "ra/a.conf:2: unknown verb 'bogus'"));
	tg_errors_clear(&errs);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);
	assert_int_equal(tg_holder_poll_async(h, 106, 1, &errs), 0);
	assert_false(tg_holder_loading(h));				/* not retried */

	/* SIGHUP-style forced reload in the background, then fixed files */
	write_file("ra/a.conf", "off @a.example\n", 0644);
	assert_int_equal(tg_holder_start_reload(h), 0);
	assert_int_equal(tg_holder_start_reload(h), 0);		/* one at a time */
	assert_int_equal(tg_holder_finish(h, &errs), 1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_ALLOW);

	/* a reload asked for while a load runs: the running load may have
	 * read the files before the edit, so its result is dropped and the
	 * files are read again (SIGHUP right after an edit) */
	write_file("ra/a.conf", "require @a.example\n", 0644);
	assert_int_equal(tg_holder_start_reload(h), 0);
	usleep(200 * 1000);		/* it has read the files by now */
	write_file("ra/a.conf", "audit @a.example\n", 0644);
	assert_int_equal(tg_holder_start_reload(h), 0);
	while ((r = tg_holder_poll_async(h, 108, 1, &errs)) == 0)
		usleep(1000);
	assert_int_equal(r, 1);
	assert_int_equal(verdict_for(h, "u@a.example"), TG_VERDICT_AUDIT);
	assert_false(tg_holder_loading(h));

	/* freeing a holder with a load running waits for it */
	assert_int_equal(tg_holder_start_reload(h), 0);
	tg_holder_free(h);
}

/* A file larger than the reader's chunk: lines across chunk boundaries,
 * an over-long line in the middle reported with its number and skipped,
 * the lines after it still read. */
static void test_large_file(void **state)
{
	char *p = path_of("large.conf");
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	long line = 0;
	for (long i = 0; i < 60000; i++, line++)
		fprintf(f, "require user%ld@d%ld.example protocols=imap\n", i, i % 97);
	long long_line = ++line;
	for (int i = 0; i < 3 * 4096; i++)
		fputc('x', f);
	fputc('\n', f);
	for (long i = 0; i < 60000; i++, line++)
		fprintf(f, "audit more%ld@d%ld.example\n", i, i % 97);
	long bad_line = ++line;
	fprintf(f, "require a@b from=never\n");
	assert_int_equal(fclose(f), 0);

	struct tg_errors errs;
	tg_errors_init(&errs);
	assert_null(tg_policy_load(p, &errs));
	assert_int_equal(errs.count, 2);
	char want[300];
	snprintf(want, sizeof(want), "%s:%ld: line longer than 4096 bytes", p, long_line);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:%ld: from='never'", p, bad_line);
	assert_non_null(strstr(errs.msgs[1], want));
	tg_errors_clear(&errs);

	/* without the two bad lines it loads every rule */
	f = fopen(p, "w");
	for (long i = 0; i < 60000; i++)
		fprintf(f, "require user%ld@d%ld.example protocols=imap\n", i, i % 97);
	for (long i = 0; i < 60000; i++)
		fprintf(f, "audit more%ld@d%ld.example", i, i % 97), fputs(i + 1 < 60000 ? "\r\n" : "", f);
	assert_int_equal(fclose(f), 0);
	struct tg_policy *policy = tg_policy_load(p, &errs);
	assert_non_null(policy);
	assert_int_equal(tg_policy_mode_rule_count(policy), 120000);
	struct tg_mode_rule_info m;
	tg_policy_mode_rule(policy, 119999, &m);
	assert_string_equal(m.subject, "more59999@d53.example");
	assert_int_equal(m.ref.line, 120000);
	tg_policy_free(policy);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test-filetrust-reload needs root (chown); run as root\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_trust),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_large_file),
		cmocka_unit_test(test_reload_async),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
