/*
 * policyd-dunno - the smallest useful Postfix policy server: it answers
 * "action=DUNNO" to every request (a request ends at an empty line). It
 * measures what the protocol itself costs on this machine: the ceiling
 * for tlsgate-policyd. Same I/O model as tlsgate-policyd (one thread,
 * epoll, non-blocking), no limits, no logging, no policy.
 *
 *   policyd-dunno PORT        listens on 127.0.0.1:PORT until killed
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY "action=DUNNO\n\n"

struct conn {
	int fd;
	bool prev_newline;	/* the last byte read was '\n' */
	bool at_line_start;
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: policyd-dunno PORT\n");
		return 2;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1024) < 0) {
		perror("policyd-dunno: bind");
		return 1;
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	static char in[65536], out[65536];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == NULL) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (fd < 0)
					continue;
				c = calloc(1, sizeof(*c));
				c->fd = fd;
				c->at_line_start = true;
				struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
				continue;
			}
			ssize_t r = read(c->fd, in, sizeof(in));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0) {
				close(c->fd);
				free(c);
				continue;
			}
			size_t replies = 0;
			for (ssize_t k = 0; k < r; k++) {
				if (in[k] != '\n') {
					c->at_line_start = false;
					continue;
				}
				if (c->at_line_start)
					replies++;	/* an empty line ends a request */
				c->at_line_start = true;
			}
			size_t len = 0;
			for (size_t k = 0; k < replies && len + sizeof(REPLY) <= sizeof(out); k++) {
				memcpy(out + len, REPLY, sizeof(REPLY) - 1);
				len += sizeof(REPLY) - 1;
			}
			/* The peer waits for each reply: one write suffices. */
			if (len > 0 && write(c->fd, out, len) < 0 && errno != EAGAIN) {
				close(c->fd);
				free(c);
			}
		}
	}
}
