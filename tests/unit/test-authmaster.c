/*
 * test-authmaster - the auth-master client: reply lines (table), the
 * stream reader, and look-ups against a scripted server on a socket in a
 * temporary directory (pipelined answers out of order, garbage, a server
 * that goes away, one that never answers); the account answer cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "authmaster.h"
#include "names.h"
#include "ucache.h"

static const struct {
	const char *line;
	int want;		/* return value */
	enum tg_am_status status;
	unsigned id;
	int mode;
	const char *text;	/* part of why (want -1) or of reason (FAIL) */
} rows[] = {
	{ "VERSION\t1\t2", 0, 0, 0, 0, NULL },
	{ "SPID\t4242", 0, 0, 0, 0, NULL },
	{ "VERSION\t2\t0", -1, 0, 0, 0, "another auth-master protocol version" },
	{ "USER\t1\talice@example.com\tuid=8\ttlsgate_mode=require", 1, TG_AM_FOUND, 1, TG_MODE_REQUIRE, NULL },
	{ "USER\t2\tb\ttlsgate_mode=off", 1, TG_AM_FOUND, 2, TG_MODE_OFF, NULL },
	{ "USER\t3\tb\ttlsgate_mode=audit\tx=y", 1, TG_AM_FOUND, 3, TG_MODE_AUDIT, NULL },
	/* as the Dovecot module reads the field: the words in any case */
	{ "USER\t3\tb\ttlsgate_mode=OFF", 1, TG_AM_FOUND, 3, TG_MODE_OFF, NULL },
	{ "USER\t3\tb\ttlsgate_mode=Require", 1, TG_AM_FOUND, 3, TG_MODE_REQUIRE, NULL },
	{ "USER\t3\tb\ttlsgate_mode=require ", 1, TG_AM_FOUND, 3, TG_AM_MODE_INVALID, NULL },
	{ "USER\t4\tb\tuid=1", 1, TG_AM_FOUND, 4, TG_AM_MODE_NONE, NULL },
	{ "USER\t5\tb\ttlsgate_mode=", 1, TG_AM_FOUND, 5, TG_AM_MODE_NONE, NULL },
	{ "USER\t6\tb\ttlsgate_mode=yes", 1, TG_AM_FOUND, 6, TG_AM_MODE_INVALID, NULL },
	{ "USER\t7\tb\ttlsgate_mode=off\001tx", 1, TG_AM_FOUND, 7, TG_AM_MODE_INVALID, NULL },
	{ "USER\t8\tb\ttlsgate_mode=of\001", 1, TG_AM_FOUND, 8, TG_AM_MODE_INVALID, NULL },
	{ "USER\t9\tb\ttlsgate_mode=of\0010f", 1, TG_AM_FOUND, 9, TG_AM_MODE_INVALID, NULL },
	{ "USER\t10\tb\ttlsgate_mode=off\ttlsgate_mode=require", 1, TG_AM_FOUND, 10, TG_MODE_REQUIRE, NULL },
	{ "USER\t11\tb\tuserdb_tlsgate_mode=off", 1, TG_AM_FOUND, 11, TG_AM_MODE_NONE, NULL },
	{ "USER\t12\tb\txtlsgate_mode=off", 1, TG_AM_FOUND, 12, TG_AM_MODE_NONE, NULL },
	{ "USER\t4294967295\tb", 1, TG_AM_FOUND, 4294967295u, TG_AM_MODE_NONE, NULL },
	{ "NOTFOUND\t13", 1, TG_AM_NOTFOUND, 13, TG_AM_MODE_NONE, NULL },
	{ "FAIL\t14", 1, TG_AM_FAIL, 14, TG_AM_MODE_NONE, "" },
	{ "FAIL\t15\treason=db down", 1, TG_AM_FAIL, 15, TG_AM_MODE_NONE, "db down" },
	{ "FAIL\t16\treason=\033[31m", 1, TG_AM_FAIL, 16, TG_AM_MODE_NONE, "?[31m" },
	{ "USER\t17", -1, 0, 0, 0, "without the user name" },
	{ "USER\t4294967296\tb", -1, 0, 0, 0, "without a request id" },
	{ "USER\t-1\tb", -1, 0, 0, 0, "without a request id" },
	{ "USER\t\tb", -1, 0, 0, 0, "without a request id" },
	{ "NOTFOUND", -1, 0, 0, 0, "without a request id" },
	{ "NOTFOUND\t1x", -1, 0, 0, 0, "without a request id" },
	{ "MECH\tPLAIN\tplaintext", -1, 0, 0, 0, "auth client socket" },
	{ "DONE", -1, 0, 0, 0, "auth client socket" },
	{ "PASS\t1\tuser=x", -1, 0, 0, 0, "unexpected reply \"PASS\"" },
	{ "", -1, 0, 0, 0, "unexpected reply" },
	{ "\033]0;x", -1, 0, 0, 0, "unexpected reply \"?]0;x\"" },
};

static void test_parse_rows(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tg_am_reply r;
		char why[256] = "";
		int got = tg_am_parse_line(rows[i].line, strlen(rows[i].line), &r, why, sizeof(why));
		if (got != rows[i].want)
			fail_msg("row %zu (%s): got %d, want %d (%s)", i, rows[i].line, got,
				 rows[i].want, why);
		if (got < 0 && strstr(why, rows[i].text) == NULL)
			fail_msg("row %zu: why \"%s\" lacks \"%s\"", i, why, rows[i].text);
		if (got <= 0)
			continue;
		assert_int_equal(r.status, rows[i].status);
		assert_int_equal(r.id, rows[i].id);
		assert_int_equal(r.mode, rows[i].mode);
		if (rows[i].text != NULL)
			assert_string_equal(r.reason, rows[i].text);
	}
}

static void test_parse_nul_and_length(void **state)
{
	struct tg_am_reply r;
	char why[256];
	static const char nul[] = "NOTFOUND\t1\0x";
	assert_int_equal(tg_am_parse_line(nul, sizeof(nul) - 1, &r, why, sizeof(why)), -1);
	char *big = malloc(TG_AM_MAX_LINE + 2);
	assert_non_null(big);
	memset(big, 'a', TG_AM_MAX_LINE + 1);
	assert_int_equal(tg_am_parse_line(big, TG_AM_MAX_LINE + 1, &r, why, sizeof(why)), -1);
	free(big);
}

static void test_user_ok(void **state)
{
	assert_true(tg_am_user_ok("alice@example.com"));
	assert_true(tg_am_user_ok("j\xc3\xbcrgen@example.com"));
	assert_false(tg_am_user_ok(""));
	assert_false(tg_am_user_ok("a\tb"));
	assert_false(tg_am_user_ok("a\nUSER\t1\tx"));
	assert_false(tg_am_user_ok("a\001"));
	assert_false(tg_am_user_ok("\xff"));
	char big[TG_AM_MAX_USER + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(tg_am_user_ok(big));
	big[TG_AM_MAX_USER] = '\0';
	assert_true(tg_am_user_ok(big));
}

/* Stream: replies cut anywhere, several per read, lines that never end. */
static void test_stream(void **state)
{
	static struct tg_am_conn c;
	struct tg_am_reply r;
	char why[256];
	static const char text[] = "VERSION\t1\t2\nSPID\t9\nNOTFOUND\t2\nUSER\t1\tx\ttlsgate_mode=off\nFA";
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	memcpy(c.in, text, sizeof(text) - 1);
	c.in_len = sizeof(text) - 1;
	assert_int_equal(tg_am_next_reply(&c, &r, why, sizeof(why)), 1);
	assert_int_equal(r.status, TG_AM_NOTFOUND);
	assert_int_equal(r.id, 2);
	assert_true(c.version_seen);
	assert_int_equal(tg_am_next_reply(&c, &r, why, sizeof(why)), 1);
	assert_int_equal(r.mode, TG_MODE_OFF);
	assert_int_equal(tg_am_next_reply(&c, &r, why, sizeof(why)), 0);
	/* a line that fills the buffer without its end */
	memset(c.in, 'x', sizeof(c.in));
	c.in_off = 0;
	c.in_len = sizeof(c.in);
	assert_int_equal(tg_am_next_reply(&c, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "longer than"));
}

/* ---- a scripted server ---- */

static char sockdir[48], sockpath[64];

/* Forks a server that accepts one connection, reads what comes for a
 * moment, then writes `script` (and keeps the connection open for
 * linger_ms). Returns its pid. */
static pid_t serve(const char *script, int linger_ms, mode_t mode)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
	unlink(sockpath);
	assert_true(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	chmod(sockpath, mode);
	assert_true(listen(fd, 4) == 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c = accept(fd, NULL, NULL);
		char buf[4096];
		usleep(50000);
		(void)!read(c, buf, sizeof(buf));
		if (script != NULL)
			(void)!write(c, script, strlen(script));
		usleep((useconds_t)linger_ms * 1000);
		_exit(0);
	}
	close(fd);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int setup_dir(void **state)
{
	snprintf(sockdir, sizeof(sockdir), "/tmp/tg-am-XXXXXX");
	if (mkdtemp(sockdir) == NULL)
		return -1;
	snprintf(sockpath, sizeof(sockpath), "%s/userdb", sockdir);
	return 0;
}

static int teardown_dir(void **state)
{
	unlink(sockpath);
	rmdir(sockdir);
	return 0;
}

static void test_lookup_blocking(void **state)
{
	struct tg_am_conn *c = malloc(sizeof(*c));
	struct tg_am_reply r;
	char why[512];
	assert_non_null(c);
	pid_t pid = serve("VERSION\t1\t2\nSPID\t1\nUSER\t1\talice\ttlsgate_mode=off\n", 200, 0600);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), 0);
	assert_false(c->restricted);
	assert_int_equal(tg_am_lookup(c, "alice", 2000, &r, why, sizeof(why)), 0);
	assert_int_equal(r.status, TG_AM_FOUND);
	assert_int_equal(r.mode, TG_MODE_OFF);
	/* a name Dovecot could not be asked about: not found, nothing sent */
	assert_int_equal(tg_am_lookup(c, "a\tb", 2000, &r, why, sizeof(why)), 0);
	assert_int_equal(r.status, TG_AM_NOTFOUND);
	tg_am_close(c);
	reap(pid);

	/* never answers: bounded wait */
	pid = serve(NULL, 3000, 0600);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), 0);
	assert_int_equal(tg_am_lookup(c, "bob", 300, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no answer within 300 ms"));
	assert_int_equal(c->fd, -1);
	reap(pid);

	/* garbage */
	pid = serve("HELLO\tworld\n", 200, 0600);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), 0);
	assert_int_equal(tg_am_lookup(c, "bob", 2000, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "unexpected reply"));
	reap(pid);

	/* goes away */
	pid = serve("VERSION\t1\t2\n", 0, 0600);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), 0);
	assert_int_equal(tg_am_lookup(c, "bob", 2000, &r, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "closed the connection"));
	reap(pid);
	free(c);
}

static void test_pipelined_out_of_order(void **state)
{
	struct tg_am_conn *c = malloc(sizeof(*c));
	struct tg_am_reply r;
	char why[512];
	unsigned id1, id2, id3;
	assert_non_null(c);
	pid_t pid = serve("VERSION\t1\t2\nNOTFOUND\t3\nUSER\t2\tb\ttlsgate_mode=audit\nFAIL\t1\n", 300, 0600);
	assert_int_equal(tg_am_connect(c, sockpath, true, why, sizeof(why)), 0);
	assert_int_equal(tg_am_queue_user(c, "a", &id1, why, sizeof(why)), 0);
	assert_int_equal(tg_am_queue_user(c, "b", &id2, why, sizeof(why)), 0);
	assert_int_equal(tg_am_queue_user(c, "c", &id3, why, sizeof(why)), 0);
	assert_int_equal(id1 + 1, id2);
	assert_int_equal(tg_am_flush(c, why, sizeof(why)), 1);
	int got = 0;
	for (int i = 0; i < 100 && got < 3; i++) {
		usleep(10000);
		if (tg_am_read(c, why, sizeof(why)) < 0)
			break;
		while (tg_am_next_reply(c, &r, why, sizeof(why)) > 0) {
			got++;
			if (r.id == id2)
				assert_int_equal(r.mode, TG_MODE_AUDIT);
			else if (r.id == id3)
				assert_int_equal(r.status, TG_AM_NOTFOUND);
			else
				assert_int_equal(r.status, TG_AM_FAIL);
		}
	}
	assert_int_equal(got, 3);
	tg_am_close(c);
	reap(pid);
	free(c);
}

static void test_connect_errors(void **state)
{
	struct tg_am_conn *c = malloc(sizeof(*c));
	char why[512];
	assert_non_null(c);
	unlink(sockpath);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "does not exist"));
	assert_non_null(strstr(why, sockpath));
	/* a socket nobody listens on */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
	assert_true(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "refuses connections"));
	unlink(sockpath);
	free(c);
}

/* A mode-0666 socket owned by someone else: Dovecot would only answer
 * for our uid; FAIL then says what to change. */
static void test_restricted_message(void **state)
{
	struct tg_am_conn *c = malloc(sizeof(*c));
	struct tg_am_reply r;
	char why[512], text[600];
	assert_non_null(c);
	pid_t pid = serve("VERSION\t1\t2\nFAIL\t1\n", 300, 0666);
	if (geteuid() == 0)
		assert_int_equal(chown(sockpath, 65534, 65534), 0);
	assert_int_equal(tg_am_connect(c, sockpath, false, why, sizeof(why)), 0);
	assert_int_equal(tg_am_lookup(c, "alice", 2000, &r, why, sizeof(why)), 0);
	assert_int_equal(r.status, TG_AM_FAIL);
	tg_am_fail_text(c, &r, text, sizeof(text));
	if (geteuid() == 0) {
		assert_true(c->restricted);
		assert_non_null(strstr(text, "world-accessible"));
		assert_non_null(strstr(text, "unix_listener tlsgate-userdb"));
	}
	assert_non_null(strstr(text, sockpath));
	tg_am_close(c);
	reap(pid);
	free(c);
}

/* ---- cache ---- */

static void test_cache(void **state)
{
	struct tg_ucache *c = tg_ucache_new(100, 60);
	int mode = 99;
	assert_non_null(c);
	assert_int_equal(tg_ucache_get(c, "a", 1000, &mode), 0);
	assert_int_equal(tg_ucache_put(c, "a", TG_MODE_OFF, 1000), 0);
	assert_int_equal(tg_ucache_put(c, "nobody", -1, 1000), 0);	/* negative */
	assert_int_equal(tg_ucache_get(c, "a", 1059, &mode), 1);
	assert_int_equal(mode, TG_MODE_OFF);
	assert_int_equal(tg_ucache_get(c, "nobody", 1000, &mode), 1);
	assert_int_equal(mode, -1);
	assert_int_equal(tg_ucache_get(c, "a", 1060, &mode), 0);	/* expired */
	assert_int_equal(tg_ucache_put(c, "a", TG_MODE_REQUIRE, 1060), 0);
	assert_int_equal(tg_ucache_get(c, "a", 1061, &mode), 1);
	assert_int_equal(mode, TG_MODE_REQUIRE);
	assert_int_equal(tg_ucache_count(c), 2);
	tg_ucache_clear(c);
	assert_int_equal(tg_ucache_count(c), 0);
	assert_int_equal(tg_ucache_get(c, "a", 1061, &mode), 0);
	assert_int_equal(tg_ucache_put(c, "a", TG_MODE_OFF, 1061), 0);
	assert_int_equal(tg_ucache_get(c, "a", 1061, &mode), 1);
	tg_ucache_free(c);

	/* ttl 0: nothing remembered */
	c = tg_ucache_new(100, 0);
	assert_int_equal(tg_ucache_put(c, "a", TG_MODE_OFF, 1), 0);
	assert_int_equal(tg_ucache_get(c, "a", 1, &mode), 0);
	tg_ucache_free(c);
}

/* Names inline and out of line (longer than the record holds), around
 * that length, differing only past it or only in case: each keeps its
 * own answer; evicted and cleared long names are freed (valgrind). */
static void test_cache_names(void **state)
{
	char names[8][TG_AM_MAX_USER + 1];
	const size_t lens[8] = { 1, 23, 24, 25, 27, 100, TG_AM_MAX_USER, TG_AM_MAX_USER };
	struct tg_ucache *c = tg_ucache_new(4 * TG_UCACHE_WAYS, 60);
	int mode;
	assert_non_null(c);
	for (int i = 0; i < 8; i++) {
		memset(names[i], 'a', lens[i]);
		names[i][lens[i]] = '\0';
	}
	names[7][TG_AM_MAX_USER - 1] = 'b';	/* differs from names[6] in its last byte */
	for (int i = 0; i < 8; i++)
		assert_int_equal(tg_ucache_put(c, names[i], i % 3, 1000), 0);
	assert_int_equal(tg_ucache_put(c, "A", TG_MODE_REQUIRE, 1000), 0);
	assert_int_equal(tg_ucache_count(c), 9);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(tg_ucache_get(c, names[i], 1001, &mode), 1);
		assert_int_equal(mode, i % 3);
	}
	assert_int_equal(tg_ucache_get(c, "A", 1001, &mode), 1);
	assert_int_equal(mode, TG_MODE_REQUIRE);
	names[5][99] = 'c';	/* a long name not cached */
	assert_int_equal(tg_ucache_get(c, names[5], 1001, &mode), 0);
	names[4][26] = '\0';	/* 26 bytes: a prefix of cached names, not cached */
	assert_int_equal(tg_ucache_get(c, names[4], 1001, &mode), 0);
	assert_int_equal(tg_ucache_get(c, "", 1001, &mode), 0);

	tg_ucache_free(c);

	/* long names pushed out by more names than a set holds */
	char name[64];
	c = tg_ucache_new(TG_UCACHE_WAYS, 60);	/* one set */
	assert_non_null(c);
	for (int i = 0; i < TG_UCACHE_WAYS; i++)
		assert_int_equal(tg_ucache_put(c, names[6 + i % 2], TG_MODE_OFF, 1001), 0);
	for (int i = 0; i < 3 * TG_UCACHE_WAYS; i++) {
		snprintf(name, sizeof(name), "%050d", i);
		assert_int_equal(tg_ucache_put(c, name, TG_MODE_AUDIT, 1002 + i), 0);
	}
	assert_int_equal(tg_ucache_count(c), TG_UCACHE_WAYS);
	snprintf(name, sizeof(name), "%050d", 3 * TG_UCACHE_WAYS - 1);
	assert_int_equal(tg_ucache_get(c, name, 1002, &mode), 1);
	assert_int_equal(mode, TG_MODE_AUDIT);
	tg_ucache_clear(c);
	assert_int_equal(tg_ucache_get(c, name, 1002, &mode), 0);
	assert_int_equal(tg_ucache_put(c, names[6], TG_MODE_OFF, 1003), 0);
	tg_ucache_free(c);
}

/* A full set drops an expired entry, else the one that expires first;
 * answers survive a clock set back. */
static void test_cache_eviction(void **state)
{
	struct tg_ucache *c = tg_ucache_new(TG_UCACHE_WAYS, 60);	/* one set */
	char name[32];
	int mode;
	assert_non_null(c);
	for (int i = 0; i < TG_UCACHE_WAYS; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(tg_ucache_put(c, name, TG_MODE_OFF, 1000 + i), 0);
	}
	/* u1 answered again: now u0 then u2 expire first */
	assert_int_equal(tg_ucache_put(c, "u1", TG_MODE_REQUIRE, 1030), 0);
	assert_int_equal(tg_ucache_put(c, "new1", TG_MODE_AUDIT, 1031), 0);
	assert_int_equal(tg_ucache_get(c, "u0", 1031, &mode), 0);
	assert_int_equal(tg_ucache_get(c, "u1", 1031, &mode), 1);
	assert_int_equal(mode, TG_MODE_REQUIRE);
	assert_int_equal(tg_ucache_put(c, "new2", TG_MODE_AUDIT, 1032), 0);
	assert_int_equal(tg_ucache_get(c, "u2", 1032, &mode), 0);
	assert_int_equal(tg_ucache_get(c, "u3", 1032, &mode), 1);
	assert_int_equal(tg_ucache_count(c), TG_UCACHE_WAYS);

	/* at 1065 u3..u5 have expired (1063..1065); the newcomer takes the
	 * first expired slot, the live u6 stays */
	assert_int_equal(tg_ucache_put(c, "new3", TG_MODE_OFF, 1065), 0);
	assert_int_equal(tg_ucache_get(c, "new3", 1065, &mode), 1);
	assert_int_equal(tg_ucache_get(c, "u6", 1065, &mode), 1);
	assert_int_equal(tg_ucache_get(c, "new1", 1065, &mode), 1);
	assert_int_equal(tg_ucache_count(c), TG_UCACHE_WAYS);

	/* the clock set back an hour: answers stay until their time */
	assert_int_equal(tg_ucache_get(c, "new3", 1065 - 3600, &mode), 1);
	assert_int_equal(tg_ucache_put(c, "back", TG_MODE_REQUIRE, 1065 - 3600), 0);
	assert_int_equal(tg_ucache_get(c, "back", 1065 - 3600 + 59, &mode), 1);
	assert_int_equal(tg_ucache_get(c, "back", 1065 - 3600 + 60, &mode), 0);
	tg_ucache_free(c);
}

/* A million names, far more than room: the count stays bounded, names
 * are found, and an answer is never another name's. */
static void test_cache_bounded(void **state)
{
	struct tg_ucache *c = tg_ucache_new(1024, 60);
	char name[32];
	int mode;
	assert_non_null(c);
	for (int i = 0; i < 1000000; i++) {
		snprintf(name, sizeof(name), "u%d@example.com", i);
		assert_int_equal(tg_ucache_put(c, name, i % 3, 1000 + i / 5000), 0);
	}
	assert_true(tg_ucache_count(c) <= 1024);
	int found = 0;
	for (int i = 0; i < 1000000; i++) {
		snprintf(name, sizeof(name), "u%d@example.com", i);
		if (tg_ucache_get(c, name, 1200, &mode)) {
			assert_int_equal(mode, i % 3);
			found++;
		}
	}
	assert_true(found > 0 && found <= 1024);
	tg_ucache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rows),
		cmocka_unit_test(test_parse_nul_and_length),
		cmocka_unit_test(test_user_ok),
		cmocka_unit_test(test_stream),
		cmocka_unit_test_setup_teardown(test_lookup_blocking, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_pipelined_out_of_order, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_connect_errors, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_restricted_message, setup_dir, teardown_dir),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_names),
		cmocka_unit_test(test_cache_eviction),
		cmocka_unit_test(test_cache_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
