/*
 * listener - the sockets tlsgate-policyd accepts connections on.
 *
 * Endpoints are written as Postfix writes them:
 *   inet:ADDRESS:PORT   ADDRESS an IPv4 address, or an IPv6 address in
 *                       brackets ("inet:[::1]:10040"); numeric only
 *   unix:PATH           an absolute path
 * A stale socket at PATH is removed before binding (anything else there is
 * an error); the new one gets the configured mode, owner and group so that
 * Postfix's (possibly chrooted) smtpd can connect. The mode is set on the
 * socket before bind (so the file is created with it), the owner through a
 * descriptor of the file opened without following links: no path is
 * followed after bind, so the owner of the directory cannot swap in a
 * symlink and have another file chowned (docs/security.md).
 *
 * Error contract: functions return -1 and fill `why`; nothing is logged.
 */
#ifndef TLSGATE_POLICYD_LISTENER_H
#define TLSGATE_POLICYD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define PD_LISTEN_BACKLOG 1024

struct pd_endpoint {
	bool is_unix;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char text[160];			/* as given, for logs */
};

struct pd_socket_perms {
	unsigned mode;			/* e.g. 0666 */
	uid_t uid;			/* (uid_t)-1: leave */
	gid_t gid;			/* (gid_t)-1: leave */
};

int pd_endpoint_parse(const char *spec, struct pd_endpoint *ep,
		      char *why, size_t whylen);
/* A listening, non-blocking, close-on-exec socket in *fd. */
int pd_endpoint_listen(const struct pd_endpoint *ep,
		       const struct pd_socket_perms *perms, int *fd,
		       char *why, size_t whylen);

#endif
