/*
 * test-policyd-listener - the unix socket's mode and owner (listener.h)
 * against a racing attacker: while tlsgate-policyd's listener binds and
 * sets the owner, a child process keeps renaming a symlink to a root-owned
 * file over the socket's path, as the owner of the socket's directory can.
 * The file must never change owner or mode; the sockets made get exactly
 * the mode and owner asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listener.h"

#define ROUNDS 3000

static char dir[64], victim[128], sock_path[128], link_tmp[128];

static int setup(void **state)
{
	strcpy(dir, "/tmp/tg-test-listener-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	snprintf(link_tmp, sizeof(link_tmp), "%s/link", dir);
	FILE *f = fopen(victim, "w");
	assert_non_null(f);
	fputs("root's secret\n", f);
	fclose(f);
	assert_int_equal(chmod(victim, 0600), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_mode_and_owner(void **state)
{
	struct pd_endpoint ep;
	char why[256];
	char spec[160];
	snprintf(spec, sizeof(spec), "unix:%s", sock_path);
	assert_int_equal(pd_endpoint_parse(spec, &ep, why, sizeof(why)), 0);
	static const unsigned modes[] = { 0666, 0660, 0600 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct pd_socket_perms perms = { .mode = modes[i], .uid = 65534, .gid = 65534 };
		if (getuid() != 0)
			perms.uid = perms.gid = (uid_t)-1;
		int fd;
		if (pd_endpoint_listen(&ep, &perms, &fd, why, sizeof(why)) < 0)
			fail_msg("%s", why);
		struct stat st;
		assert_int_equal(lstat(sock_path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 07777, modes[i]);
		if (getuid() == 0)
			assert_int_equal(st.st_uid, 65534);
		close(fd);
		unlink(sock_path);
	}
}

/* The attacker: a symlink to the victim, renamed over the socket's path
 * as fast as possible. */
static void attacker(void)
{
	for (;;) {
		(void)symlink(victim, link_tmp);
		(void)rename(link_tmp, sock_path);
	}
}

static void test_racing_symlink(void **state)
{
	if (getuid() != 0)
		skip();	/* the attack is on root's chown */
	struct pd_endpoint ep;
	char why[256], spec[160];
	snprintf(spec, sizeof(spec), "unix:%s", sock_path);
	assert_int_equal(pd_endpoint_parse(spec, &ep, why, sizeof(why)), 0);
	struct pd_socket_perms perms = { .mode = 0666, .uid = 65534, .gid = 65534 };

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		attacker();
	int bound = 0, refused = 0;
	for (int i = 0; i < ROUNDS; i++) {
		int fd;
		(void)unlink(sock_path);	/* the stale-file check would refuse a symlink */
		if (pd_endpoint_listen(&ep, &perms, &fd, why, sizeof(why)) == 0) {
			bound++;
			close(fd);
		} else {
			refused++;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	struct stat st;
	assert_int_equal(stat(victim, &st), 0);
	if (st.st_uid != 0 || st.st_gid != 0 || (st.st_mode & 07777) != 0600)
		fail_msg("victim chowned/chmodded: uid %u gid %u mode %o after %d binds",
			 (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777),
			 bound);
	print_message("%d binds, %d refused while racing\n", bound, refused);
	assert_true(bound > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_and_owner),
		cmocka_unit_test(test_racing_symlink),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
