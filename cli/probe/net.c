/*
 * probe/net - resolution, timed connect and bounded line I/O for the
 * probe. See net.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net.h"

int64_t probe_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int probe_wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - probe_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = { .fd = fd, .events = events };
		int r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int64_t probe_step_deadline(const struct probe_conn *c, const char *what,
			    char *why, size_t why_size)
{
	int64_t step_end = probe_now_ms() + c->timeout_ms;

	if (c->session_end_ms > 0 && c->session_end_ms < step_end) {
		snprintf(why, why_size, "%s: the connection took longer than "
			 "%d ms in all", what, PROBE_SESSION_TIMEOUTS * c->timeout_ms);
		return c->session_end_ms;
	}
	snprintf(why, why_size, "%s within %d ms", what, c->timeout_ms);
	return step_end;
}

int probe_resolve(const char *host, uint16_t port, struct probe_addrs *out,
		  char *why, size_t why_size)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	char service[8];

	snprintf(service, sizeof(service), "%u", (unsigned)port);
	int r = getaddrinfo(host, service, &hints, &res);
	if (r == EAI_ADDRFAMILY || r == EAI_NONAME) {
		/* AI_ADDRCONFIG hides ::1 on hosts with only loopback IPv6 */
		hints.ai_flags = AI_NUMERICSERV;
		r = getaddrinfo(host, service, &hints, &res);
	}
	if (r != 0) {
		snprintf(why, why_size, "cannot resolve %s: %s", host,
			 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	out->count = 0;
	for (struct addrinfo *ai = res; ai != NULL && out->count < PROBE_ADDRS_MAX;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out->addr[0].sa))
			continue;
		memcpy(&out->addr[out->count].sa, ai->ai_addr, ai->ai_addrlen);
		out->addr[out->count].len = ai->ai_addrlen;
		out->count++;
	}
	freeaddrinfo(res);
	if (out->count == 0) {
		snprintf(why, why_size, "cannot resolve %s: no usable address", host);
		return -1;
	}
	return 0;
}

int probe_source_parse(const char *addr, struct probe_addr *out,
		       char *why, size_t why_size)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		out->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		out->len = sizeof(*sin6);
		return 0;
	}
	snprintf(why, why_size, "not an IP address: '%.64s'", addr);
	return -1;
}

void probe_addr_format(const struct probe_addr *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
	}
}

int probe_connect(struct probe_conn *c, const struct probe_addr *to,
		  const struct probe_addr *from, int timeout_ms,
		  enum probe_connect_error *err_r, char *why, size_t why_size)
{
	int64_t deadline = probe_now_ms() + timeout_ms;
	int err = 0;
	socklen_t errlen = sizeof(err);

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	*err_r = PROBE_CONNECT_OTHER;

	int fd = socket(to->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_size, "socket: %s", strerror(errno));
		return -1;
	}
	if (from != NULL) {
		if (from->sa.ss_family != to->sa.ss_family) {
			snprintf(why, why_size,
				 "source address is of another family than the server's");
			goto fail;
		}
		if (bind(fd, (const struct sockaddr *)&from->sa, from->len) < 0) {
			snprintf(why, why_size, "cannot bind the source address: %s",
				 strerror(errno));
			goto fail;
		}
	}
	if (connect(fd, (const struct sockaddr *)&to->sa, to->len) < 0) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto connect_failed;
		}
		int w = probe_wait_fd(fd, POLLOUT, deadline);
		if (w == 0) {
			*err_r = PROBE_CONNECT_TIMEOUT;
			snprintf(why, why_size, "connect timed out after %d ms",
				 timeout_ms);
			goto fail;
		}
		if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
			err = errno;
		if (err != 0)
			goto connect_failed;
	}
	c->fd = fd;
	c->session_end_ms = probe_now_ms() + (int64_t)PROBE_SESSION_TIMEOUTS * timeout_ms;
	return 0;

connect_failed:
	if (err == ECONNREFUSED)
		*err_r = PROBE_CONNECT_REFUSED;
	snprintf(why, why_size, "connect failed: %s", strerror(err));
fail:
	close(fd);
	return -1;
}

/* One read of up to `size` bytes, waiting until the deadline; 0 is EOF.
 * On timeout, why keeps the message the caller prepared. */
static int conn_read_some(struct probe_conn *c, char *dst, size_t size,
			  int64_t deadline, char *why, size_t why_size)
{
	for (;;) {
		short want = POLLIN;
		if (c->ssl != NULL) {
			ERR_clear_error();
			int n = SSL_read(c->ssl, dst, (int)size);
			if (n > 0)
				return n;
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (e == SSL_ERROR_WANT_WRITE)
				want = POLLOUT;
			else if (e != SSL_ERROR_WANT_READ) {
				unsigned long ec = ERR_peek_error();
				if (e == SSL_ERROR_SYSCALL && ec == 0)
					return 0;	/* closed without close_notify */
				snprintf(why, why_size, "TLS read failed: %s",
					 ec ? ERR_reason_error_string(ec) : strerror(errno));
				return -1;
			}
		} else {
			ssize_t n = recv(c->fd, dst, size, 0);
			if (n >= 0)
				return (int)n;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				snprintf(why, why_size, "read failed: %s", strerror(errno));
				return -1;
			}
		}
		int w = probe_wait_fd(c->fd, want, deadline);
		if (w == 0)
			return -1;	/* why: set by probe_step_deadline */
		if (w < 0) {
			snprintf(why, why_size, "poll failed: %s", strerror(errno));
			return -1;
		}
	}
}

int probe_read_line(struct probe_conn *c, char *line, size_t size,
		    size_t *len_r, char *why, size_t why_size)
{
	int64_t deadline = probe_step_deadline(c, "no reply", why, why_size);

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl != NULL) {
			size_t take = (size_t)(nl - c->buf) + 1;
			size_t n = take - 1;
			if (n > 0 && c->buf[n - 1] == '\r')
				n--;
			if (n > PROBE_LINE_MAX || n >= size) {
				snprintf(why, why_size,
					 "reply line longer than %d bytes", PROBE_LINE_MAX);
				return -1;
			}
			memcpy(line, c->buf, n);
			line[n] = '\0';
			*len_r = n;
			memmove(c->buf, c->buf + take, c->len - take);
			c->len -= take;
			return 0;
		}
		/* no line end yet: over the limit unless only "\r" is extra */
		if (c->len > PROBE_LINE_MAX &&
		    !(c->len == PROBE_LINE_MAX + 1 && c->buf[PROBE_LINE_MAX] == '\r')) {
			snprintf(why, why_size, "reply line longer than %d bytes",
				 PROBE_LINE_MAX);
			return -1;
		}
		int n = conn_read_some(c, c->buf + c->len, sizeof(c->buf) - c->len,
				       deadline, why, why_size);
		if (n < 0)
			return -1;
		if (n == 0) {
			snprintf(why, why_size, c->len > 0 ?
				 "connection closed in the middle of a line" :
				 "connection closed by the server");
			return -1;
		}
		c->len += (size_t)n;
	}
}

int probe_write(struct probe_conn *c, const char *data, size_t len,
		char *why, size_t why_size)
{
	int64_t deadline = probe_step_deadline(c, "write not possible", why,
					       why_size);
	size_t done = 0;

	while (done < len) {
		short want = POLLOUT;
		if (c->ssl != NULL) {
			ERR_clear_error();
			int n = SSL_write(c->ssl, data + done, (int)(len - done));
			if (n > 0) {
				done += (size_t)n;
				continue;
			}
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				want = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE) {
				snprintf(why, why_size, "TLS write failed");
				return -1;
			}
		} else {
			ssize_t n = send(c->fd, data + done, len - done, MSG_NOSIGNAL);
			if (n >= 0) {
				done += (size_t)n;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				snprintf(why, why_size, "write failed: %s", strerror(errno));
				return -1;
			}
		}
		int w = probe_wait_fd(c->fd, want, deadline);
		if (w == 0)
			return -1;	/* why: set by probe_step_deadline */
		if (w < 0) {
			snprintf(why, why_size, "poll failed: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

void probe_close(struct probe_conn *c)
{
	if (c->ssl != NULL) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);	/* best effort, never waits */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	ERR_clear_error();
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}
