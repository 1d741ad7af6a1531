/*
 * bindsource - an LD_PRELOAD shim for the mail-client tests: an IPv4 TCP
 * socket that connects to 127.0.0.1 without being bound first is bound to
 * $TG_BIND_SOURCE (127.0.0.2) before, so that the servers see a client
 * that is not their own address (Dovecot counts a login from its own
 * address as secured). Mail programs such as fetchmail or mutt have no
 * option to pick their source address. Loopback only: any other
 * destination is left alone.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	static connect_fn real;
	if (real == NULL)
		real = (connect_fn)dlsym(RTLD_NEXT, "connect");
	const char *source = getenv("TG_BIND_SOURCE");
	if (source != NULL && addr != NULL && addr->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *to = (const struct sockaddr_in *)addr;
		struct sockaddr_in bound;
		socklen_t blen = sizeof(bound);
		int type = 0;
		socklen_t tlen = sizeof(type);
		if (to->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 &&
		    type == SOCK_STREAM &&
		    getsockname(fd, (struct sockaddr *)&bound, &blen) == 0 &&
		    bound.sin_port == 0) {
			struct sockaddr_in src;
			memset(&src, 0, sizeof(src));
			src.sin_family = AF_INET;
			if (inet_pton(AF_INET, source, &src.sin_addr) == 1)
				(void)bind(fd, (struct sockaddr *)&src, sizeof(src));
		}
	}
	return real(fd, addr, len);
}
