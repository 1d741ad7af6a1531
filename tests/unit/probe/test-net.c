/*
 * test-cli-probe-net - the probe's bounded, timed line reader and connect
 * (probe_net) over socketpairs and loopback: CRLF handling, the line
 * limit, timeouts, early close, a refused port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "probe/net.h"

static int peer_fd;

static void open_pair(struct probe_conn *c, int timeout_ms)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(c, 0, sizeof(*c));
	c->fd = sv[0];
	c->timeout_ms = timeout_ms;
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	peer_fd = sv[1];
}

static void peer_send(const char *data, size_t len)
{
	assert_int_equal(write(peer_fd, data, len), (ssize_t)len);
}

static int read_line(struct probe_conn *c, char *line, size_t *len, char *why)
{
	return probe_read_line(c, line, PROBE_LINE_MAX + 1, len, why, 200);
}

static void test_lines(void **state)
{
	static const struct {
		const char *sent;
		const char *want[4];
	} rows[] = {
		{ "a\r\nb\n", { "a", "b", NULL } },
		{ "\r\n\n", { "", "", NULL } },
		{ "x\ry\r\n", { "x\ry", NULL } },
		{ "one\r\ntwo\r\nthree\r\n", { "one", "two", "three", NULL } },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct probe_conn c;
		char line[PROBE_LINE_MAX + 1], why[200];
		size_t len;
		open_pair(&c, 500);
		peer_send(rows[i].sent, strlen(rows[i].sent));
		for (size_t k = 0; rows[i].want[k] != NULL; k++) {
			assert_int_equal(read_line(&c, line, &len, why), 0);
			assert_string_equal(line, rows[i].want[k]);
			assert_int_equal(len, strlen(rows[i].want[k]));
		}
		close(peer_fd);
		assert_int_equal(read_line(&c, line, &len, why), -1);
		assert_non_null(strstr(why, "closed by the server"));
		probe_close(&c);
	}
}

/* A line of exactly PROBE_LINE_MAX bytes passes; one byte more fails,
 * with or without its line end having arrived. */
static void test_line_limit(void **state)
{
	static char big[PROBE_LINE_MAX + 8];
	(void)state;
	for (int extra = 0; extra <= 1; extra++) {
		for (int with_end = 0; with_end <= 1; with_end++) {
			struct probe_conn c;
			char line[PROBE_LINE_MAX + 1], why[200] = "";
			size_t len, n = PROBE_LINE_MAX + (size_t)extra;
			open_pair(&c, 300);
			memset(big, 'x', n);
			if (with_end)
				memcpy(big + n, "\r\n", 2);
			peer_send(big, n + (with_end ? 2 : 0));
			int rc = read_line(&c, line, &len, why);
			if (extra == 0 && with_end) {
				assert_int_equal(rc, 0);
				assert_int_equal(len, PROBE_LINE_MAX);
			} else if (extra == 1) {
				assert_int_equal(rc, -1);
				assert_non_null(strstr(why, "longer than"));
			} else {	/* full length, no end yet: waits, times out */
				assert_int_equal(rc, -1);
				assert_non_null(strstr(why, "no reply within"));
			}
			close(peer_fd);
			probe_close(&c);
		}
	}
}

static void test_timeout(void **state)
{
	struct probe_conn c;
	char line[PROBE_LINE_MAX + 1], why[200];
	size_t len;
	(void)state;
	open_pair(&c, 150);
	int64_t start = probe_now_ms();
	assert_int_equal(read_line(&c, line, &len, why), -1);
	int64_t took = probe_now_ms() - start;
	assert_non_null(strstr(why, "no reply within 150 ms"));
	assert_true(took >= 140 && took < 2000);
	/* a partial line also ends at the deadline */
	peer_send("* OK no end", 11);
	assert_int_equal(read_line(&c, line, &len, why), -1);
	assert_non_null(strstr(why, "no reply within"));
	close(peer_fd);
	probe_close(&c);
}

/* A server answering just in time, line after line, is cut off when the
 * connection's whole allowance is used up. */
static void test_session_cap(void **state)
{
	struct probe_conn c;
	char line[PROBE_LINE_MAX + 1], why[200];
	size_t len;
	(void)state;
	open_pair(&c, 100);
	c.session_end_ms = probe_now_ms() + PROBE_SESSION_TIMEOUTS * 100;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 40; i++) {
			if (write(peer_fd, "* trickle\r\n", 11) != 11)
				break;
			usleep(60 * 1000);
		}
		_exit(0);
	}
	close(peer_fd);
	int64_t start = probe_now_ms();
	int lines = 0;
	while (read_line(&c, line, &len, why) == 0)
		lines++;
	int64_t took = probe_now_ms() - start;
	assert_non_null(strstr(why, "took longer than 400 ms in all"));
	assert_true(lines >= 3 && lines <= 8);
	assert_true(took >= 350 && took < 1500);
	probe_close(&c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_close_mid_line(void **state)
{
	struct probe_conn c;
	char line[PROBE_LINE_MAX + 1], why[200];
	size_t len;
	(void)state;
	open_pair(&c, 500);
	peer_send("+OK half", 8);
	close(peer_fd);
	assert_int_equal(read_line(&c, line, &len, why), -1);
	assert_non_null(strstr(why, "middle of a line"));
	probe_close(&c);
}

static void test_write(void **state)
{
	struct probe_conn c;
	char why[200], got[16] = "";
	(void)state;
	open_pair(&c, 500);
	assert_int_equal(probe_write(&c, "CAPA\r\n", 6, why, sizeof(why)), 0);
	assert_int_equal(read(peer_fd, got, sizeof(got) - 1), 6);
	assert_string_equal(got, "CAPA\r\n");
	close(peer_fd);
	assert_int_equal(probe_write(&c, "X\r\n", 3, why, sizeof(why)), -1);
	probe_close(&c);
}

static void test_connect_refused_and_source(void **state)
{
	struct probe_addrs addrs;
	struct probe_addr src;
	struct probe_conn c;
	enum probe_connect_error err;
	char why[200];
	(void)state;

	/* a port nothing listens on: bind, learn it, close. (The names used
	 * below fail inside the resolver: no DNS query leaves the host.) */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &slen), 0);
	close(s);

	assert_int_equal(probe_resolve("127.0.0.1", ntohs(sin.sin_port), &addrs,
				       why, sizeof(why)), 0);
	assert_int_equal(addrs.count, 1);
	assert_int_equal(probe_connect(&c, &addrs.addr[0], NULL, 500, &err,
				       why, sizeof(why)), -1);
	assert_int_equal(err, PROBE_CONNECT_REFUSED);
	assert_non_null(strstr(why, "refused"));

	assert_int_equal(probe_source_parse("::1", &src, why, sizeof(why)), 0);
	assert_int_equal(probe_connect(&c, &addrs.addr[0], &src, 500, &err,
				       why, sizeof(why)), -1);
	assert_non_null(strstr(why, "another family"));
	assert_int_equal(probe_source_parse("localhost", &src, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not an IP address"));

	assert_int_equal(probe_resolve("bad..name", 143, &addrs, why,
				       sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot resolve bad..name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_session_cap),
		cmocka_unit_test(test_close_mid_line),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_connect_refused_and_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
