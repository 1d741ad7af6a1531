/*
 * test-policyd-server - the event loop over real sockets: a server runs in
 * a child process on a unix socket in a fresh directory, the test talks to
 * it. Pipelined requests, half-closed sockets, a peer that does not read
 * its replies, limits (line, EOF mid-request, NUL, max_connections, idle
 * timeout), 1,100 concurrent connections, reload (SIGHUP, file change,
 * broken policy) and SIGTERM finishing complete requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "reload.h"
#include "server.h"

#define POLICY_V1 "require @example.com\nexempt old@example.com 192.0.2.0/24\n"
#define POLICY_V2 "audit @example.com\n"
#define POLICY_BROKEN "require @example.com\nbogus line here\n"

#define REQ(user) "request=smtpd_access_policy\nclient_address=192.0.2.7\n" \
		  "sasl_username=" user "\nencryption_protocol=\n\n"
#define REJECT "action=530 5.7.0 use TLS\n\n"
#define DUNNO "action=DUNNO\n\n"

struct daemon {
	pid_t pid;
	char dir[64];
	char sock[128];
	char log[128];
	char policy[128];
};

static void write_file(const char *path, const char *text)
{
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static pid_t live_pid;	/* killed by the teardown if a test fails */
static unsigned per_peer_limit;	/* max_connections_per_peer of the next start() */

static int kill_live(void **state)
{
	(void)state;
	if (live_pid > 0) {
		kill(live_pid, SIGKILL);
		waitpid(live_pid, NULL, 0);
		live_pid = 0;
	}
	return 0;
}

static void child_main(const struct daemon *d, unsigned idle, unsigned maxconn)
{
	char why[256];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || dup2(fd, 2) < 0)
		_exit(90);
	pd_log_open(true);
	struct tg_holder *holder = tg_holder_new(d->policy);
	struct tg_errors errs;
	tg_errors_init(&errs);
	if (holder == NULL || tg_holder_reload(holder, &errs) < 0)
		_exit(91);
	struct pd_server_config cfg = {
		.answer = { .message = "use TLS", .log_tls = true },
		.idle_timeout = idle,
		.max_connections = maxconn,
		.max_connections_per_peer = per_peer_limit,
	};
	struct pd_server *srv = pd_server_new(&cfg, holder, why, sizeof(why));
	struct pd_endpoint ep;
	struct pd_socket_perms perms = { 0600, (uid_t)-1, (gid_t)-1 };
	int lfd;
	char spec[160];
	snprintf(spec, sizeof(spec), "unix:%s", d->sock);
	if (srv == NULL || pd_endpoint_parse(spec, &ep, why, sizeof(why)) < 0 ||
	    pd_endpoint_listen(&ep, &perms, &lfd, why, sizeof(why)) < 0 ||
	    pd_server_add_listener(srv, lfd, spec, why, sizeof(why)) < 0) {
		fprintf(stderr, "setup: %s\n", why);
		_exit(92);
	}
	int rc = pd_server_run(srv);
	pd_server_free(srv);
	tg_holder_free(holder);
	_exit(rc == 0 ? 0 : 93);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_daemon(const struct daemon *d)
{
	int fd = try_connect(d->sock);
	assert_true(fd >= 0);
	return fd;
}

static void start(struct daemon *d, unsigned idle, unsigned maxconn)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/tg-pd-test-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->sock, sizeof(d->sock), "%s/policy.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	snprintf(d->policy, sizeof(d->policy), "%s/policy.conf", d->dir);
	write_file(d->policy, POLICY_V1);
	d->pid = fork();
	assert_true(d->pid >= 0);
	if (d->pid == 0)
		child_main(d, idle, maxconn);
	live_pid = d->pid;
	for (int i = 0; i < 500; i++) {
		int fd = try_connect(d->sock);
		if (fd >= 0) {
			close(fd);
			return;
		}
		usleep(10000);
	}
	fail_msg("server did not start");
}

static char *read_log(const struct daemon *d)
{
	static char buf[1 << 20];
	FILE *f = fopen(d->log, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

static void wait_log(const struct daemon *d, const char *needle)
{
	for (int i = 0; i < 400; i++) {
		if (strstr(read_log(d), needle) != NULL)
			return;
		usleep(10000);
	}
	fail_msg("log lacks \"%s\":\n%s", needle, read_log(d));
}

static void stop(struct daemon *d)
{
	int status;
	char cmd[128];
	kill(d->pid, SIGTERM);
	assert_int_equal(waitpid(d->pid, &status, 0), d->pid);
	live_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("server exit status %d\n%s", status, read_log(d));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	assert_int_equal(system(cmd), 0);
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

/* Like send_all, for a peer that may close first (a limit was hit). */
static void send_may_fail(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			assert_true(errno == EPIPE || errno == ECONNRESET);
			return;
		}
		data += n;
		len -= (size_t)n;
	}
}

/* Reads until EOF (returns the length) or until `want` bytes came; -1 if
 * neither happens within timeout_ms. */
static ssize_t read_reply(int fd, char *buf, size_t cap, size_t want, int timeout_ms)
{
	size_t have = 0;
	while (have < cap - 1 && (want == 0 || have < want)) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		ssize_t n = read(fd, buf + have, cap - 1 - have);
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		have += (size_t)n;
	}
	buf[have] = '\0';
	return (ssize_t)have;
}

static void test_pipelined_in_order(void **state)
{
	(void)state;
	struct daemon d;
	char want[4096] = "", got[4096], req[8192] = "";
	start(&d, 60, 100);
	for (int i = 0; i < 40; i++) {
		bool exempt = i % 3 == 0;
		strcat(req, exempt ? REQ("old@example.com") : REQ("new@example.com"));
		strcat(want, exempt ? DUNNO : REJECT);
	}
	int fd = connect_daemon(&d);
	send_all(fd, req, strlen(req));
	assert_int_equal(read_reply(fd, got, sizeof(got), strlen(want), 5000), strlen(want));
	assert_string_equal(got, want);
	/* the connection stays open for more */
	send_all(fd, REQ("new@example.com"), strlen(REQ("new@example.com")));
	assert_int_equal(read_reply(fd, got, sizeof(got), strlen(REJECT), 5000), strlen(REJECT));
	close(fd);
	stop(&d);
}

static void test_half_closed(void **state)
{
	(void)state;
	struct daemon d;
	char got[1024];
	start(&d, 60, 100);
	int fd = connect_daemon(&d);
	send_all(fd, REQ("new@example.com") REQ("old@example.com"),
		 strlen(REQ("new@example.com") REQ("old@example.com")));
	shutdown(fd, SHUT_WR);
	assert_true(read_reply(fd, got, sizeof(got), 0, 5000) >= 0);
	assert_string_equal(got, REJECT DUNNO);
	close(fd);
	stop(&d);
}

#define NUL_REQ "request=smtpd_access_policy\nsasl_username=a\0b\n\n"

static const struct bad_row {
	const char *name;
	const char *data;	/* NULL: an over-long line */
	size_t len;		/* 0: strlen */
	bool half_close;	/* shutdown(SHUT_WR) after sending */
	const char *log;
	const char *replies;	/* what comes before the close */
} bad_rows[] = {
	{ "long line", NULL, 0, false, "line longer than 2048 bytes; closing", "" },
	{ "no '='", "request=smtpd_access_policy\nno equals\n\n", 0, false,
	  "line without '='", "" },
	{ "NUL", NUL_REQ, sizeof(NUL_REQ) - 1, false,
	  "NUL byte in attribute line 2", "" },
	{ "EOF mid-request", REQ("new@example.com") "request=smtpd_access_policy\nsasl_user", 0,
	  true, "connection closed in mid-request", REJECT },
	{ "not a policy request", "request=junk\x1b[2J\nsasl_username=a\n\n", 0, false,
	  "unsupported request=\"junk?[2J\"", "" },
	{ "bad after good", REQ("old@example.com") "x y\n", 0, false,
	  "line without '='", DUNNO },
};

static void test_bad_input_closes(void **state)
{
	(void)state;
	struct daemon d;
	static char got[8192], big[4000];
	start(&d, 60, 100);
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		const struct bad_row *r = &bad_rows[i];
		const char *data = r->data;
		size_t len = r->len ? r->len : data ? strlen(data) : 0;
		if (data == NULL) {
			len = (size_t)snprintf(big, sizeof(big), "request=smtpd_access_policy\nccert_subject=");
			memset(big + len, 'x', sizeof(big) - len);
			len = sizeof(big);
			data = big;
		}
		int fd = connect_daemon(&d);
		send_may_fail(fd, data, len);
		if (r->half_close)
			shutdown(fd, SHUT_WR);
		ssize_t n = read_reply(fd, got, sizeof(got), 0, 5000);
		if (n < 0)
			fail_msg("%s: connection not closed", r->name);
		assert_string_equal(got, r->replies);
		close(fd);
		wait_log(&d, r->log);
	}
	/* the log holds no raw control bytes from peers */
	assert_null(strchr(read_log(&d), '\x1b'));
	/* and the daemon still serves */
	int fd = connect_daemon(&d);
	send_all(fd, REQ("new@example.com"), strlen(REQ("new@example.com")));
	assert_int_equal(read_reply(fd, got, sizeof(got), strlen(REJECT), 5000), strlen(REJECT));
	close(fd);
	stop(&d);
}

/* A peer that writes requests without reading replies is not read any
 * more once its output buffer is full; when it reads again, every reply
 * comes, in order. */
static void test_peer_not_reading(void **state)
{
	(void)state;
	struct daemon d;
	enum { N = 20000 };
	const char *one = REQ("new@example.com");
	size_t one_len = strlen(one), total = N * one_len;
	char *data = malloc(total), *got = malloc(N * strlen(REJECT) + 1);
	assert_non_null(data);
	assert_non_null(got);
	for (size_t i = 0; i < N; i++)
		memcpy(data + i * one_len, one, one_len);
	start(&d, 60, 100);
	int fd = connect_daemon(&d);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	size_t sent = 0, have = 0, want = N * strlen(REJECT);
	/* phase 1: write only, until the pipe is full both ways */
	for (;;) {
		ssize_t n = write(fd, data + sent, total - sent);
		if (n < 0) {
			assert_true(errno == EAGAIN);
			struct pollfd p = { fd, POLLOUT, 0 };
			if (poll(&p, 1, 300) == 0)
				break;	/* the server stopped reading */
			continue;
		}
		sent += (size_t)n;
		assert_true(sent < total);	/* N must exceed what buffers hold */
	}
	/* phase 2: read everything while writing the rest */
	while (have < want) {
		struct pollfd p = { fd, POLLIN | (sent < total ? POLLOUT : 0), 0 };
		assert_true(poll(&p, 1, 5000) > 0);
		if (p.revents & POLLOUT) {
			ssize_t n = write(fd, data + sent, total - sent);
			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & POLLIN) {
			ssize_t n = read(fd, got + have, want - have);
			assert_true(n > 0);
			have += (size_t)n;
		}
	}
	for (size_t i = 0; i < N; i++)
		assert_memory_equal(got + i * strlen(REJECT), REJECT, strlen(REJECT));
	close(fd);
	stop(&d);
	free(data);
	free(got);
}

static void test_many_connections(void **state)
{
	(void)state;
	enum { N = 1100 };
	struct daemon d;
	static int fds[N];
	char got[256];
	struct rlimit rl = { 4096, 4096 };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		skip();
	start(&d, 60, 2000);
	for (int i = 0; i < N; i++)
		fds[i] = connect_daemon(&d);
	for (int i = 0; i < N; i++)
		send_all(fds[i], REQ("old@example.com"), strlen(REQ("old@example.com")));
	for (int i = 0; i < N; i++) {
		assert_int_equal(read_reply(fds[i], got, sizeof(got), strlen(DUNNO), 5000),
				 strlen(DUNNO));
		assert_string_equal(got, DUNNO);
	}
	/* all still open: a second round on each */
	for (int i = 0; i < N; i++)
		send_all(fds[i], REQ("new@example.com"), strlen(REQ("new@example.com")));
	for (int i = 0; i < N; i++) {
		assert_int_equal(read_reply(fds[i], got, sizeof(got), strlen(REJECT), 5000),
				 strlen(REJECT));
		close(fds[i]);
	}
	stop(&d);
}

static void test_max_connections(void **state)
{
	(void)state;
	struct daemon d;
	int fds[3];
	char got[256];
	start(&d, 60, 3);
	for (int i = 0; i < 3; i++) {
		fds[i] = connect_daemon(&d);
		send_all(fds[i], REQ("new@example.com"), strlen(REQ("new@example.com")));
		assert_int_equal(read_reply(fds[i], got, sizeof(got), strlen(REJECT), 5000),
				 strlen(REJECT));
	}
	/* full: the new connection is served, the least recently active
	 * one (fds[0]) is closed to make room */
	int extra = connect_daemon(&d);
	send_all(extra, REQ("new@example.com"), strlen(REQ("new@example.com")));
	assert_int_equal(read_reply(extra, got, sizeof(got), strlen(REJECT), 5000), strlen(REJECT));
	assert_int_equal(read_reply(fds[0], got, sizeof(got), 0, 5000), 0);	/* closed */
	wait_log(&d, "closed 1 least recently active connection(s) to make room: "
		 "max_connections (3) reached");
	/* the others still answer */
	for (int i = 1; i < 3; i++) {
		send_all(fds[i], REQ("new@example.com"), strlen(REQ("new@example.com")));
		assert_int_equal(read_reply(fds[i], got, sizeof(got), strlen(REJECT), 5000),
				 strlen(REJECT));
	}
	close(extra);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	stop(&d);
}

/* One peer (here: one uid on the unix socket) floods idle connections
 * past max_connections_per_peer: it keeps at most that many, its oldest
 * go first, and a connection that asks is always answered. */
static void test_per_peer_limit(void **state)
{
	(void)state;
	struct daemon d;
	char got[256];
	int flood[40];
	per_peer_limit = 8;
	start(&d, 60, 1000);
	per_peer_limit = 0;
	for (int i = 0; i < 40; i++)
		flood[i] = connect_daemon(&d);
	int asker = connect_daemon(&d);
	send_all(asker, REQ("new@example.com"), strlen(REQ("new@example.com")));
	assert_int_equal(read_reply(asker, got, sizeof(got), strlen(REJECT), 5000), strlen(REJECT));
	/* the first 33 of the flood were closed, the last 7 are open */
	for (int i = 0; i < 40; i++) {
		struct pollfd p = { .fd = flood[i], .events = POLLIN };
		int closed = poll(&p, 1, i < 33 ? 5000 : 200) == 1 &&
			     read(flood[i], got, sizeof(got)) == 0;
		if (closed != (i < 33))
			fail_msg("flood connection %d: closed=%d", i, closed);
	}
	wait_log(&d, "at max_connections_per_peer (8), last uid ");
	for (int i = 0; i < 40; i++)
		close(flood[i]);
	close(asker);
	stop(&d);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	struct daemon d;
	char got[256];
	start(&d, 1, 100);
	int fd = connect_daemon(&d);
	send_all(fd, "request=smtpd_acc", 17);	/* unfinished, then silence */
	time_t t0 = time(NULL);
	assert_int_equal(read_reply(fd, got, sizeof(got), 0, 5000), 0);
	assert_true(time(NULL) - t0 <= 3);
	close(fd);
	wait_log(&d, "idle timeout; closing the connection");
	stop(&d);
}

static void ask(const struct daemon *d, const char *req, const char *want)
{
	char got[256];
	int fd = connect_daemon(d);
	send_all(fd, req, strlen(req));
	assert_true(read_reply(fd, got, sizeof(got), strlen(want), 5000) >= 0);
	assert_string_equal(got, want);
	close(fd);
}

static void test_reload(void **state)
{
	(void)state;
	struct daemon d;
	char path_line[200];
	start(&d, 60, 100);
	ask(&d, REQ("new@example.com"), REJECT);

	/* a broken policy: logged with file:line, the old one keeps serving */
	write_file(d.policy, POLICY_BROKEN);
	kill(d.pid, SIGHUP);
	snprintf(path_line, sizeof(path_line), "%s:2: ", d.policy);
	wait_log(&d, path_line);
	wait_log(&d, "did not load; still serving the policy loaded at");
	ask(&d, REQ("new@example.com"), REJECT);

	/* fixed: noticed by the once-a-second check, without a signal */
	write_file(d.policy, POLICY_V2);
	wait_log(&d, "policy files changed; reloaded");
	ask(&d, REQ("new@example.com"), DUNNO);

	/* SIGHUP reloads even when nothing changed */
	kill(d.pid, SIGHUP);
	wait_log(&d, "SIGHUP: reloading the policy");
	wait_log(&d, "policy reloaded from");
	stop(&d);
}

static void test_sigterm_answers_complete_requests(void **state)
{
	(void)state;
	struct daemon d;
	char got[1024];
	start(&d, 60, 100);
	int fd = connect_daemon(&d);
	/* make sure the connection is accepted before the signal */
	send_all(fd, REQ("old@example.com"), strlen(REQ("old@example.com")));
	assert_int_equal(read_reply(fd, got, sizeof(got), strlen(DUNNO), 5000), strlen(DUNNO));
	/* two complete requests and an unfinished one, then SIGTERM */
	const char *burst = REQ("new@example.com") REQ("old@example.com") "request=smtpd_acc";
	send_all(fd, burst, strlen(burst));
	usleep(50000);
	kill(d.pid, SIGTERM);
	assert_true(read_reply(fd, got, sizeof(got), 0, 5000) >= 0);
	assert_string_equal(got, REJECT DUNNO);
	close(fd);
	int status;
	assert_int_equal(waitpid(d.pid, &status, 0), d.pid);
	live_pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(read_log(&d), "SIGTERM: finishing 1 connection(s)"));
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d.dir);
	assert_int_equal(system(cmd), 0);
}

static void test_event_once_per_instance(void **state)
{
	(void)state;
	struct daemon d;
	char got[1024];
	start(&d, 60, 100);
	int fd = connect_daemon(&d);
#define INST(i, rcpt) "request=smtpd_access_policy\nclient_address=192.0.2.7\n" \
		"sasl_username=new@example.com\nencryption_protocol=\ninstance=" i \
		"\nrecipient=" rcpt "\n\n"
	const char *reqs = INST("aa.1", "r1@x") INST("aa.1", "r2@x") INST("bb.2", "r1@x");
	send_all(fd, reqs, strlen(reqs));
	assert_int_equal(read_reply(fd, got, sizeof(got), 3 * strlen(REJECT), 5000),
			 3 * strlen(REJECT));
	close(fd);
	wait_log(&d, "session=bb.2");
	const char *log = read_log(&d);
	int aa = 0;
	for (const char *p = log; (p = strstr(p, "session=aa.1")) != NULL; p++)
		aa++;
	assert_int_equal(aa, 1);
	stop(&d);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* a closed connection is a result here */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pipelined_in_order, kill_live),
		cmocka_unit_test_teardown(test_half_closed, kill_live),
		cmocka_unit_test_teardown(test_bad_input_closes, kill_live),
		cmocka_unit_test_teardown(test_peer_not_reading, kill_live),
		cmocka_unit_test_teardown(test_many_connections, kill_live),
		cmocka_unit_test_teardown(test_max_connections, kill_live),
		cmocka_unit_test_teardown(test_per_peer_limit, kill_live),
		cmocka_unit_test_teardown(test_idle_timeout, kill_live),
		cmocka_unit_test_teardown(test_reload, kill_live),
		cmocka_unit_test_teardown(test_sigterm_answers_complete_requests, kill_live),
		cmocka_unit_test_teardown(test_event_once_per_instance, kill_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
