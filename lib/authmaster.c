/*
 * authmaster - the auth-master client. See authmaster.h.
 *
 * Invariants: in[in_off..in_len) holds bytes read and not yet parsed, at
 * most one unfinished line among them; out[0..out_len) holds bytes queued
 * and not yet written. Nothing is allocated.
 */
#include "authmaster.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "names.h"
#include "text.h"

#define MODE_FIELD "tlsgate_mode="
#define MAJOR_VERSION "1"

/* ---- reply lines ---- */

/* The next tab-separated field of line[*pos..len); false at the end. */
static bool next_field(const char *line, size_t len, size_t *pos,
		       const char **field, size_t *flen)
{
	if (*pos > len)
		return false;
	const char *start = line + *pos;
	const char *tab = memchr(start, '\t', len - *pos);
	*field = start;
	*flen = tab != NULL ? (size_t)(tab - start) : len - *pos;
	*pos += *flen + 1;
	return true;
}

static bool field_is(const char *f, size_t flen, const char *word)
{
	return flen == strlen(word) && memcmp(f, word, flen) == 0;
}

static int parse_id(const char *s, size_t len, unsigned *out)
{
	unsigned long n = 0;
	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n > UINT_MAX)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* Undoes Dovecot's tab escaping into buf; -1 for a broken escape or a
 * value that does not fit. */
static int tab_unescape(const char *s, size_t len, char *buf, size_t size,
			size_t *out_len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\001') {
			if (++i >= len)
				return -1;
			switch (s[i]) {
			case '1': c = '\001'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'n': c = '\n'; break;
			case '0': c = '\0'; break;
			default: return -1;
			}
		}
		if (n + 1 >= size)
			return -1;
		buf[n++] = c;
	}
	buf[n] = '\0';
	*out_len = n;
	return 0;
}

static void read_mode(const char *value, size_t vlen, struct tg_am_reply *out)
{
	char raw[64];
	size_t rlen;
	tg_sanitize(value, vlen, 48, out->mode_text, sizeof(out->mode_text));
	if (tab_unescape(value, vlen, raw, sizeof(raw), &rlen) < 0) {
		out->mode = TG_AM_MODE_INVALID;
		return;
	}
	if (rlen == 0) {
		out->mode = TG_AM_MODE_NONE;
		return;
	}
	int mode = memchr(raw, '\0', rlen) != NULL ? -1 : tg_mode_field_parse(raw, rlen);
	out->mode = mode < 0 ? TG_AM_MODE_INVALID : mode;
}

static void reset_reply(struct tg_am_reply *out)
{
	out->status = TG_AM_FAIL;
	out->id = 0;
	out->mode = TG_AM_MODE_NONE;
	out->mode_text[0] = '\0';
	out->reason[0] = '\0';
}

static int parse_fields(const char *line, size_t len, size_t pos,
			struct tg_am_reply *out)
{
	const char *f;
	size_t flen;
	while (next_field(line, len, &pos, &f, &flen)) {
		size_t klen = sizeof(MODE_FIELD) - 1;
		if (out->status == TG_AM_FOUND && flen >= klen &&
		    memcmp(f, MODE_FIELD, klen) == 0)
			read_mode(f + klen, flen - klen, out);	/* the last one wins */
		else if (out->status == TG_AM_FAIL && flen >= 7 &&
			 memcmp(f, "reason=", 7) == 0)
			tg_sanitize(f + 7, flen - 7, 120, out->reason, sizeof(out->reason));
	}
	return 1;
}

int tg_am_parse_line(const char *line, size_t len, struct tg_am_reply *out,
		     char *why, size_t whylen)
{
	const char *cmd, *f;
	size_t clen, flen, pos = 0;

	reset_reply(out);
	if (len > TG_AM_MAX_LINE || memchr(line, '\0', len) != NULL) {
		snprintf(why, whylen, "broken reply line (NUL byte or too long)");
		return -1;
	}
	next_field(line, len, &pos, &cmd, &clen);
	if (field_is(cmd, clen, "VERSION")) {
		if (!next_field(line, len, &pos, &f, &flen) ||
		    !field_is(f, flen, MAJOR_VERSION)) {
			snprintf(why, whylen, "the server speaks another auth-master protocol version");
			return -1;
		}
		return 0;
	}
	if (field_is(cmd, clen, "SPID"))
		return 0;
	if (field_is(cmd, clen, "MECH") || field_is(cmd, clen, "CUID") ||
	    field_is(cmd, clen, "COOKIE") || field_is(cmd, clen, "DONE")) {
		snprintf(why, whylen, "this is Dovecot's auth client socket, not an auth-userdb socket");
		return -1;
	}
	if (field_is(cmd, clen, "USER"))
		out->status = TG_AM_FOUND;
	else if (field_is(cmd, clen, "NOTFOUND"))
		out->status = TG_AM_NOTFOUND;
	else if (field_is(cmd, clen, "FAIL"))
		out->status = TG_AM_FAIL;
	else {
		char shown[48];
		snprintf(why, whylen, "unexpected reply \"%s\"",
			 tg_sanitize(cmd, clen, 24, shown, sizeof(shown)));
		return -1;
	}
	if (!next_field(line, len, &pos, &f, &flen) || parse_id(f, flen, &out->id) < 0) {
		snprintf(why, whylen, "reply without a request id");
		return -1;
	}
	if (out->status == TG_AM_FOUND && !next_field(line, len, &pos, &f, &flen)) {
		snprintf(why, whylen, "USER reply without the user name");
		return -1;
	}
	return parse_fields(line, len, pos, out);
}

bool tg_am_user_ok(const char *user)
{
	size_t len = strlen(user);
	return len > 0 && len <= TG_AM_MAX_USER && tg_text_valid(user, len);
}

/* ---- connection ---- */

static void connect_error(const char *path, int err, char *why, size_t whylen)
{
	switch (err) {
	case ENOENT:
		snprintf(why, whylen, "userdb socket %s does not exist: is Dovecot running, "
			 "with a unix_listener for it in service auth?", path);
		break;
	case EACCES:
	case EPERM:
		snprintf(why, whylen, "userdb socket %s: permission denied: give tlsgate its own "
			 "listener, service auth { unix_listener tlsgate-userdb { user = tlsgate; "
			 "mode = 0600 } }, and set userdb = dovecot:/run/dovecot/tlsgate-userdb", path);
		break;
	case ECONNREFUSED:
		snprintf(why, whylen, "userdb socket %s refuses connections: is Dovecot's auth "
			 "service running?", path);
		break;
	default:
		snprintf(why, whylen, "userdb socket %s: connect: %s", path, strerror(err));
	}
}

/* Dovecot restricts a peer of a mode-0666 socket that it does not own
 * (neither uid nor gid) to users of the peer's uid
 * (auth_master_connection_set_permissions). */
static bool socket_restricts_us(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0 || (st.st_mode & 0777) != 0666)
		return false;
	return st.st_uid != geteuid() && st.st_gid != getegid();
}

static int queue_text(struct tg_am_conn *c, const char *text, size_t len)
{
	if (len > sizeof(c->out) - c->out_len)
		return -1;
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
	return 0;
}

int tg_am_connect(struct tg_am_conn *c, const char *path, bool nonblock,
		  char *why, size_t whylen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	c->fd = -1;
	c->version_seen = c->restricted = false;
	c->next_id = 1;
	c->in_off = c->in_len = c->out_len = 0;
	if (strlen(path) >= sizeof(sun.sun_path) || strlen(path) >= sizeof(c->path)) {
		snprintf(why, whylen, "userdb socket path too long");
		return -1;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = errno;
		close(fd);
		if (err == EAGAIN)
			snprintf(why, whylen, "userdb socket %s: busy (its queue of new "
				 "connections is full)", path);
		else
			connect_error(path, err, why, whylen);
		return -1;
	}
	c->fd = fd;
	c->restricted = socket_restricts_us(path);
	static const char version[] = "VERSION\t" MAJOR_VERSION "\t0\n";
	queue_text(c, version, sizeof(version) - 1);
	return 0;
}

void tg_am_close(struct tg_am_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->in_off = c->in_len = c->out_len = 0;
}

int tg_am_queue_user(struct tg_am_conn *c, const char *user, unsigned *id,
		     char *why, size_t whylen)
{
	char line[TG_AM_MAX_USER + 64];
	if (!tg_am_user_ok(user)) {
		snprintf(why, whylen, "a name that cannot be looked up (empty, over %d bytes, "
			 "or with control characters)", TG_AM_MAX_USER);
		return -1;
	}
	unsigned n = c->next_id++;
	if (c->next_id == 0)
		c->next_id = 1;
	int len = snprintf(line, sizeof(line), "USER\t%u\t%s\tservice=" TG_AM_SERVICE "\n", n, user);
	if (len < 0 || (size_t)len >= sizeof(line) || queue_text(c, line, (size_t)len) < 0) {
		snprintf(why, whylen, "userdb request queue full");
		return -1;
	}
	*id = n;
	return 0;
}

int tg_am_flush(struct tg_am_conn *c, char *why, size_t whylen)
{
	size_t off = 0;
	int rc = 1;
	while (off < c->out_len) {
		ssize_t n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				rc = 0;
				break;
			}
			snprintf(why, whylen, "userdb socket %s: write: %s", c->path, strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
	return rc;
}

int tg_am_read(struct tg_am_conn *c, char *why, size_t whylen)
{
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_len == sizeof(c->in)) {
		snprintf(why, whylen, "userdb socket %s: reply line longer than %d bytes",
			 c->path, TG_AM_MAX_LINE);
		return -1;
	}
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			return 1;
		}
		if (n == 0) {
			snprintf(why, whylen, "userdb socket %s: Dovecot closed the connection", c->path);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		snprintf(why, whylen, "userdb socket %s: read: %s", c->path, strerror(errno));
		return -1;
	}
}

int tg_am_next_reply(struct tg_am_conn *c, struct tg_am_reply *out,
		     char *why, size_t whylen)
{
	for (;;) {
		const char *line = c->in + c->in_off;
		const char *nl = memchr(line, '\n', c->in_len - c->in_off);
		if (nl == NULL) {
			if (c->in_len - c->in_off >= TG_AM_MAX_LINE) {
				snprintf(why, whylen, "userdb socket %s: reply line longer than %d bytes",
					 c->path, TG_AM_MAX_LINE);
				return -1;
			}
			return 0;
		}
		size_t len = (size_t)(nl - line);
		c->in_off += len + 1;
		char inner[200];
		int r = tg_am_parse_line(line, len, out, inner, sizeof(inner));
		if (r < 0) {
			snprintf(why, whylen, "userdb socket %s: %s", c->path, inner);
			return -1;
		}
		if (r == 0) {
			c->version_seen = true;
			continue;
		}
		return 1;
	}
}

/* ---- blocking use ---- */

static long ms_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000L;
}

static int wait_fd(struct tg_am_conn *c, short events, const struct timespec *start,
		   int timeout_ms, char *why, size_t whylen)
{
	for (;;) {
		long left = timeout_ms - ms_since(start);
		if (left <= 0) {
			snprintf(why, whylen, "userdb socket %s: no answer within %d ms",
				 c->path, timeout_ms);
			return -1;
		}
		struct pollfd p = { .fd = c->fd, .events = events };
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int lookup_steps(struct tg_am_conn *c, const char *user, int timeout_ms,
			struct tg_am_reply *out, char *why, size_t whylen)
{
	struct timespec start;
	unsigned id;
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (tg_am_queue_user(c, user, &id, why, whylen) < 0)
		return -1;
	int r;
	while ((r = tg_am_flush(c, why, whylen)) == 0)
		if (wait_fd(c, POLLOUT, &start, timeout_ms, why, whylen) < 0)
			return -1;
	if (r < 0)
		return -1;
	for (;;) {
		r = tg_am_next_reply(c, out, why, whylen);
		if (r < 0)
			return -1;
		if (r > 0 && out->id == id)
			return 0;
		if (r > 0)
			continue;	/* an answer to a request given up on */
		if (wait_fd(c, POLLIN, &start, timeout_ms, why, whylen) < 0 ||
		    tg_am_read(c, why, whylen) < 0)
			return -1;
	}
}

int tg_am_lookup(struct tg_am_conn *c, const char *user, int timeout_ms,
		 struct tg_am_reply *out, char *why, size_t whylen)
{
	if (!tg_am_user_ok(user)) {
		/* never sent: Dovecot could not know such a name */
		reset_reply(out);
		out->status = TG_AM_NOTFOUND;
		return 0;
	}
	int r = lookup_steps(c, user, timeout_ms, out, why, whylen);
	if (r < 0)
		tg_am_close(c);
	return r;
}

void tg_am_fail_text(const struct tg_am_conn *c, const struct tg_am_reply *r,
		     char *buf, size_t size)
{
	if (c->restricted)
		snprintf(buf, size, "Dovecot refused the look-up on %s: the socket is "
			 "world-accessible (mode 0666) and not ours (uid %u), so Dovecot only "
			 "answers for accounts of uid %u; give tlsgate its own listener, "
			 "service auth { unix_listener tlsgate-userdb { user = tlsgate; "
			 "mode = 0600 } }, and set userdb = dovecot:/run/dovecot/tlsgate-userdb",
			 c->path, (unsigned)geteuid(), (unsigned)geteuid());
	else
		snprintf(buf, size, "Dovecot's auth service could not look up the account "
			 "(FAIL on %s%s%s); see Dovecot's log", c->path,
			 r->reason[0] != '\0' ? ": " : "", r->reason);
}
