/*
 * probe/net - the probe's network layer: name resolution, connecting with
 * a timeout, and bounded line I/O over a socket or a TLS session on it.
 *
 * Every blocking step waits at most `timeout_ms` (the socket is
 * non-blocking; poll() does the waiting): a connect, a whole reply line,
 * a write, a TLS handshake. A whole connection, however many steps it
 * takes, ends PROBE_SESSION_TIMEOUTS * timeout_ms after it was opened, so
 * a server answering just in time, line after line, cannot hold the probe
 * for long. A line longer than PROBE_LINE_MAX bytes (not
 * counting CRLF) is an error, never truncated. Errors return -1 and fill
 * the caller's `why`; nothing here exits or aborts.
 */
#ifndef TLSGATE_PROBE_NET_H
#define TLSGATE_PROBE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define PROBE_LINE_MAX 4096	/* longest reply line accepted, without CRLF */
#define PROBE_ADDRS_MAX 8	/* addresses of a name tried, in order */
#define PROBE_SESSION_TIMEOUTS 4	/* a connection's whole life, in timeouts */

struct probe_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

struct probe_addrs {
	size_t count;
	struct probe_addr addr[PROBE_ADDRS_MAX];
};

enum probe_connect_error {
	PROBE_CONNECT_REFUSED,
	PROBE_CONNECT_TIMEOUT,
	PROBE_CONNECT_OTHER,
};

struct probe_conn {
	int fd;
	SSL *ssl;		/* set once TLS is up; owned by the conn */
	int timeout_ms;
	int64_t session_end_ms;	/* CLOCK_MONOTONIC ms when the conn expires */
	size_t len;		/* bytes waiting in buf */
	char buf[PROBE_LINE_MAX + 2];
};

/* Resolves host (name or address) for port with getaddrinfo. */
int probe_resolve(const char *host, uint16_t port, struct probe_addrs *out,
		  char *why, size_t why_size);
/* Parses a numeric local address to bind to (port 0). */
int probe_source_parse(const char *addr, struct probe_addr *out,
		       char *why, size_t why_size);
/* "127.0.0.1:143" / "[::1]:143" */
void probe_addr_format(const struct probe_addr *a, char *buf, size_t size);

/* Connects to `to` (from `from` when not NULL); on success c is ready for
 * line I/O. On failure *err_r tells refused from timed out. */
int probe_connect(struct probe_conn *c, const struct probe_addr *to,
		  const struct probe_addr *from, int timeout_ms,
		  enum probe_connect_error *err_r, char *why, size_t why_size);
/* Reads one line into line (size > PROBE_LINE_MAX), CR LF stripped and
 * NUL-terminated; *len_r is its length (it may contain NUL bytes). */
int probe_read_line(struct probe_conn *c, char *line, size_t size,
		    size_t *len_r, char *why, size_t why_size);
int probe_write(struct probe_conn *c, const char *data, size_t len,
		char *why, size_t why_size);
/* Waits until fd is ready for `events` (POLLIN/POLLOUT) or the deadline
 * (CLOCK_MONOTONIC milliseconds) passes: 1 ready, 0 timeout, -1 error. */
int probe_wait_fd(int fd, short events, int64_t deadline_ms);
int64_t probe_now_ms(void);
/* The deadline for one step on c: now + timeout, capped by the session's
 * end; fills why with the matching message for when it passes. */
int64_t probe_step_deadline(const struct probe_conn *c, const char *what,
			    char *why, size_t why_size);
/* Closes the TLS session (one non-blocking close_notify) and the socket. */
void probe_close(struct probe_conn *c);

#endif
