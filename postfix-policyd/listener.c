/*
 * listener - parsing endpoints and opening listening sockets. See listener.h.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

static int parse_port(const char *s, in_port_t *port)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long n = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n > 65535)
		return -1;
	*port = htons((in_port_t)n);
	return 0;
}

static int parse_inet(const char *spec, struct pd_endpoint *ep, char *why,
		      size_t whylen)
{
	char host[64];
	const char *rest = spec, *port_text;
	size_t host_len;

	if (*rest == '[') {
		const char *close = strchr(rest, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		host_len = (size_t)(close - rest - 1);
		rest++;
		port_text = close + 2;
	} else {
		const char *colon = strrchr(rest, ':');
		if (colon == NULL)
			goto bad;
		host_len = (size_t)(colon - rest);
		port_text = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(host))
		goto bad;
	memcpy(host, rest, host_len);
	host[host_len] = '\0';

	in_port_t port;
	if (parse_port(port_text, &port) < 0) {
		snprintf(why, whylen, "bad port in \"inet:%.100s\" (1..65535)", spec);
		return -1;
	}
	memset(&ep->addr, 0, sizeof(ep->addr));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;
	if (spec[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		ep->addr_len = sizeof(*sin);
	} else if (spec[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		ep->addr_len = sizeof(*sin6);
	} else {
		goto bad;
	}
	return 0;
bad:
	snprintf(why, whylen, "bad endpoint \"inet:%.100s\": expected inet:IPV4:PORT "
		 "or inet:[IPV6]:PORT (numeric addresses only)", spec);
	return -1;
}

int pd_endpoint_parse(const char *spec, struct pd_endpoint *ep,
		      char *why, size_t whylen)
{
	memset(ep, 0, sizeof(*ep));
	snprintf(ep->text, sizeof(ep->text), "%s", spec);
	if (strncmp(spec, "inet:", 5) == 0)
		return parse_inet(spec + 5, ep, why, whylen);
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		if (path[0] != '/') {
			snprintf(why, whylen, "unix socket path must be absolute: \"%.100s\"", path);
			return -1;
		}
		if (strlen(path) >= sizeof(ep->path)) {
			snprintf(why, whylen, "unix socket path longer than %zu bytes",
				 sizeof(ep->path) - 1);
			return -1;
		}
		ep->is_unix = true;
		strcpy(ep->path, path);
		struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		ep->addr_len = (socklen_t)sizeof(*sun);
		return 0;
	}
	snprintf(why, whylen, "bad endpoint \"%.100s\": expected inet:HOST:PORT or unix:PATH",
		 spec);
	return -1;
}

/* A socket file left by an earlier run may go; any other file may not. */
static int remove_stale_socket(const char *path, char *why, size_t whylen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket; not removing it", path);
		return -1;
	}
	if (unlink(path) < 0) {
		snprintf(why, whylen, "cannot remove old socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Gives the socket file just bound its owner without following the path:
 * whoever can write the socket's directory (postfix, for
 * /var/spool/postfix/private) may have put something else there since the
 * bind. The name is opened without following a symlink (O_PATH |
 * O_NOFOLLOW) and changed through that descriptor only if it is a socket
 * owned by us with the mode we gave it and one link (not a hard link to
 * someone's socket); otherwise the daemon refuses to start. */
static int set_socket_owner(const struct pd_endpoint *ep,
			    const struct pd_socket_perms *perms, char *why, size_t whylen)
{
	if (perms->uid == (uid_t)-1 && perms->gid == (gid_t)-1)
		return 0;
	int fd = open(ep->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", ep->text, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_nlink != 1 || (st.st_mode & 07777) != (perms->mode & 0777)) {
		snprintf(why, whylen, "%s: the socket file was replaced after bind "
			 "(someone else can write its directory); not changing its owner",
			 ep->text);
		close(fd);
		return -1;
	}
	if (fchownat(fd, "", perms->uid, perms->gid, AT_EMPTY_PATH) < 0) {
		snprintf(why, whylen, "%s: chown: %s", ep->text, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int pd_endpoint_listen(const struct pd_endpoint *ep,
		       const struct pd_socket_perms *perms, int *fd,
		       char *why, size_t whylen)
{
	int family = ep->addr.ss_family;
	int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(why, whylen, "%s: socket: %s", ep->text, strerror(errno));
		return -1;
	}
	if (!ep->is_unix) {
		int on = 1;
		(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (family == AF_INET6)
			(void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	} else if (remove_stale_socket(ep->path, why, whylen) < 0) {
		close(s);
		return -1;
	}
	/* The file gets its final mode at bind: the socket's own mode
	 * (fchmod before bind) is what bind gives the file, less the umask,
	 * which is 0 meanwhile. No path is ever chmodded. */
	mode_t old_mask = 0;
	if (ep->is_unix) {
		if (fchmod(s, perms->mode & 0777) < 0) {
			snprintf(why, whylen, "%s: fchmod: %s", ep->text, strerror(errno));
			close(s);
			return -1;
		}
		old_mask = umask(0);
	}
	int r = bind(s, (const struct sockaddr *)&ep->addr, ep->addr_len);
	int bind_errno = errno;
	if (ep->is_unix)
		umask(old_mask);
	if (r < 0) {
		snprintf(why, whylen, "%s: bind: %s", ep->text, strerror(bind_errno));
		close(s);
		return -1;
	}
	if (ep->is_unix && set_socket_owner(ep, perms, why, whylen) < 0) {
		close(s);
		return -1;
	}
	if (listen(s, PD_LISTEN_BACKLOG) < 0) {
		snprintf(why, whylen, "%s: listen: %s", ep->text, strerror(errno));
		close(s);
		return -1;
	}
	*fd = s;
	return 0;
}
