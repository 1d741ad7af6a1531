/*
 * server - epoll loop, connections, signals and the once-a-second tick.
 * See server.h.
 *
 * Connections are kept on a list ordered by last activity (touched ones
 * move to the tail), so the idle sweep only looks at the head.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "log.h"
#include "peers.h"
#include "request.h"

#define MAX_LISTENERS 32
#define ACCEPTS_PER_WAKE 64
#define MAX_EVENTS 256

enum watch_kind { W_LISTENER, W_CONN, W_SIGNAL, W_TIMER, W_USERDB };

struct watch {
	enum watch_kind kind;
	void *obj;
};

struct listener {
	struct watch watch;
	int fd;
	bool paused;		/* out of descriptors: wait for the tick */
	char name[160];
};

struct conn {
	struct watch rwatch, wwatch;	/* wwatch used when wfd != rfd */
	int rfd, wfd;
	struct conn *prev, *next;	/* activity list */
	time_t last_active;
	uint32_t rinterest, winterest;	/* registered epoll events */
	bool eof;			/* nothing more will be read */
	bool hup;
	bool closed;			/* freed after the current batch */
	bool dirty;			/* on the settle list of the batch */
	bool waiting;			/* for the user database */
	struct conn *next_dirty;
	uint64_t last_event_hash;	/* of the last event line written */
	struct pd_peer_key key;		/* for the per-peer limit */
	bool peer_counted;		/* counted in srv->peers */
	char peer[64];
	size_t in_len, out_len, out_off;
	struct pd_reader reader;
	char in[PD_IN_BUFFER];
	char out[PD_OUT_BUFFER];
};

struct pd_server {
	struct pd_server_config cfg;
	struct tg_holder *holder;
	int epfd, sigfd, timerfd;
	struct watch sigwatch, timerwatch;
	struct listener listeners[MAX_LISTENERS];
	size_t listener_count;
	struct conn *head, *tail;
	struct conn *dead;		/* closed in this batch of events */
	struct conn *dirty;		/* to settle at the end of the batch */
	size_t conn_count;
	bool stopping;
	bool forced_reload;	/* a SIGHUP reload is under way */
	time_t stop_deadline;
	unsigned long refused;		/* over max_connections, not logged yet */
	struct pd_peers *peers;		/* connections per peer */
	unsigned long evicted, evicted_peer;	/* closed to make room, not logged yet */
	char evicted_peer_name[64];
	time_t today_at;		/* time() the cached day is for */
	int32_t today;
	struct pd_answer answer;
	struct pd_userdb *userdb;	/* NULL: the files alone */
	struct watch userdbwatch;
};

/* ---- connections ---- */

static void list_unlink(struct pd_server *srv, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		srv->tail = c->prev;
	c->prev = c->next = NULL;
}

static void list_append(struct pd_server *srv, struct conn *c)
{
	c->prev = srv->tail;
	c->next = NULL;
	if (srv->tail != NULL)
		srv->tail->next = c;
	else
		srv->head = c;
	srv->tail = c;
}

static void conn_touch(struct pd_server *srv, struct conn *c)
{
	c->last_active = time(NULL);
	if (srv->tail != c) {
		list_unlink(srv, c);
		list_append(srv, c);
	}
}

/* The memory stays until the batch of events that may still name c is
 * done (free_dead()). */
static void conn_close(struct pd_server *srv, struct conn *c)
{
	list_unlink(srv, c);
	if (c->waiting)
		pd_userdb_cancel(srv->userdb, c);
	c->waiting = false;
	if (c->peer_counted)
		pd_peers_remove(srv->peers, &c->key);
	c->peer_counted = false;
	close(c->rfd);
	if (c->wfd != c->rfd)
		close(c->wfd);
	srv->conn_count--;
	c->closed = true;
	c->next = srv->dead;
	srv->dead = c;
}

static void free_dead(struct pd_server *srv)
{
	while (srv->dead != NULL) {
		struct conn *c = srv->dead;
		srv->dead = c->next;
		free(c);
	}
}

static int watch_set(struct pd_server *srv, int fd, struct watch *w,
		     uint32_t *registered, uint32_t want)
{
	if (*registered == want)
		return 0;
	struct epoll_event ev = { .events = want, .data.ptr = w };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -1;
	*registered = want;
	return 0;
}

static bool out_has_room(const struct conn *c)
{
	return PD_OUT_BUFFER - c->out_len >= PD_MAX_REPLY;
}

/* Reads while there is room for a reply and for input, and the peer has
 * more to say. */
static int conn_update_interest(struct pd_server *srv, struct conn *c)
{
	uint32_t want_in = (!c->eof && out_has_room(c) && c->in_len < PD_IN_BUFFER)
			   ? EPOLLIN | EPOLLRDHUP : 0;
	uint32_t want_out = c->out_len > 0 ? EPOLLOUT : 0;
	if (c->rfd == c->wfd)
		return watch_set(srv, c->rfd, &c->rwatch, &c->rinterest, want_in | want_out);
	if (watch_set(srv, c->wfd, &c->wwatch, &c->winterest, want_out) < 0)
		return -1;
	if (c->eof && c->rinterest != (uint32_t)-1) {
		/* A pipe at EOF keeps reporting EPOLLHUP: stop watching it. */
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->rfd, NULL);
		c->rinterest = (uint32_t)-1;
		return 0;
	}
	if (c->rinterest == (uint32_t)-1)
		return 0;
	return watch_set(srv, c->rfd, &c->rwatch, &c->rinterest, want_in);
}

static struct conn *conn_new(struct pd_server *srv, int rfd, int wfd,
			     const char *peer, char *why, size_t whylen)
{
	struct conn *c = malloc(sizeof(*c));
	if (c == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->rwatch = (struct watch){ W_CONN, c };
	c->wwatch = (struct watch){ W_CONN, c };
	c->rfd = rfd;
	c->wfd = wfd;
	c->prev = c->next = NULL;
	c->eof = c->hup = c->closed = c->dirty = c->waiting = false;
	c->next_dirty = NULL;
	c->last_event_hash = 0;
	memset(&c->key, 0, sizeof(c->key));
	c->peer_counted = false;
	c->in_len = c->out_len = c->out_off = 0;
	c->rinterest = c->winterest = 0;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	pd_reader_init(&c->reader);

	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = &c->rwatch };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, rfd, &ev) < 0) {
		snprintf(why, whylen, "epoll_ctl: %s", strerror(errno));
		free(c);
		return NULL;
	}
	c->rinterest = ev.events;
	if (wfd != rfd) {
		struct epoll_event wev = { .events = 0, .data.ptr = &c->wwatch };
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, wfd, &wev) < 0) {
			snprintf(why, whylen, "epoll_ctl: %s", strerror(errno));
			epoll_ctl(srv->epfd, EPOLL_CTL_DEL, rfd, NULL);
			free(c);
			return NULL;
		}
	}
	c->last_active = time(NULL);
	list_append(srv, c);
	srv->conn_count++;
	return c;
}

/* ---- requests ---- */

static uint64_t fnv1a(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* What makes two events of one connection the same: the transaction
 * (instance), the subject and the outcome. Never 0 ("nothing logged"). */
static uint64_t event_key(const struct pd_request *req, const struct pd_answer *a)
{
	uint64_t h = 1469598103934665603ULL;
	h = fnv1a(h, req->value[PD_ATTR_INSTANCE], req->len[PD_ATTR_INSTANCE]);
	h = fnv1a(h, "\n", 1);
	h = fnv1a(h, a->user, strlen(a->user));
	h = fnv1a(h, req->value[PD_ATTR_ENCRYPTION_PROTOCOL],
		  req->len[PD_ATTR_ENCRYPTION_PROTOCOL]);
	h = (h ^ (uint64_t)a->verdict) * 1099511628211ULL;
	return h | 1;
}

static int32_t today(struct pd_server *srv)
{
	time_t now = time(NULL);
	if (now != srv->today_at) {
		srv->today_at = now;
		srv->today = tg_date_of(now);
	}
	return srv->today;
}

/* Answers the complete request with the account's mode from the user
 * database (-1: none; outcome < 0: the database could not tell). */
static int conn_answer_mode(struct pd_server *srv, struct conn *c, int outcome,
			    int mode)
{
	char why[256];
	struct pd_answer *a = &srv->answer;
	const struct tg_policy *policy = tg_holder_current(srv->holder);

	int32_t day = today(srv);	/* also sets today_at: now */
	if (outcome < 0) {
		pd_answer_userdb_failure(srv->cfg.failure, a);
	} else if (pd_answer_mode(&c->reader.req, policy, &srv->cfg.answer, day,
				  (int64_t)srv->today_at, mode, a, why, sizeof(why)) < 0) {
		pd_log(LOG_WARNING, "%s: %s; closing the connection", c->peer, why);
		return -1;
	}
	if (a->has_event) {
		uint64_t h = event_key(&c->reader.req, a);
		bool has_instance = c->reader.req.len[PD_ATTR_INSTANCE] > 0;
		if (!has_instance || h != c->last_event_hash)
			pd_log_line(LOG_INFO, a->event);
		c->last_event_hash = has_instance ? h : 0;
	}
	memcpy(c->out + c->out_len, a->reply, a->reply_len);
	c->out_len += a->reply_len;
	return 0;
}

/* Answers one complete request into the output buffer, or starts the
 * look-up of its account and leaves c waiting. */
static int conn_answer(struct pd_server *srv, struct conn *c)
{
	int mode = -1, outcome = 1;
	const char *subject = srv->userdb != NULL ?
			      pd_answer_subject(&c->reader.req, &srv->cfg.answer) : NULL;
	if (subject != NULL) {
		int r = pd_userdb_query(srv->userdb, subject, c, time(NULL), &mode);
		if (r == 0) {
			c->waiting = true;
			return 0;
		}
		outcome = r > 0 ? 1 : -1;
	}
	return conn_answer_mode(srv, c, outcome, mode);
}

static void mark_dirty(struct pd_server *srv, struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->next_dirty = srv->dirty;
		srv->dirty = c;
	}
}

/* The user database answered for the request c waits with. */
static void userdb_done(void *ctx, void *waiter, int outcome, int mode)
{
	struct pd_server *srv = ctx;
	struct conn *c = waiter;
	if (c->closed || !c->waiting)
		return;
	c->waiting = false;
	if (conn_answer_mode(srv, c, outcome, mode) < 0) {
		c->in_len = 0;
		c->eof = true;
		pd_reader_init(&c->reader);
	}
	mark_dirty(srv, c);
}

/* Answers the complete requests in the input buffer while replies fit.
 * After a broken request the connection only flushes its earlier replies
 * and closes. */
static int conn_process(struct pd_server *srv, struct conn *c)
{
	char why[256];
	size_t pos = 0;
	int rc = 0;

	while (pos < c->in_len && out_has_room(c) && !c->waiting) {
		size_t used;
		int r = pd_reader_feed(&c->reader, c->in + pos, c->in_len - pos,
				       &used, why, sizeof(why));
		pos += used;
		if (r < 0) {
			pd_log(LOG_WARNING, "%s: %s; closing the connection", c->peer, why);
			rc = -1;
			break;
		}
		if (r == 0)
			break;
		if (conn_answer(srv, c) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc < 0) {
		/* Replies to the requests before the bad one still go out;
		 * nothing after it is read or answered. */
		c->in_len = 0;
		c->eof = true;
		pd_reader_init(&c->reader);
		return 0;
	}
	if (pos > 0) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	return 0;
}

/* Whether complete lines wait in the input buffer. */
static bool conn_has_pending_lines(const struct conn *c)
{
	return memchr(c->in, '\n', c->in_len) != NULL;
}

static int conn_read(struct pd_server *srv, struct conn *c)
{
	if (c->eof || c->in_len >= PD_IN_BUFFER || !out_has_room(c))
		return 0;
	ssize_t n = read(c->rfd, c->in + c->in_len, PD_IN_BUFFER - c->in_len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		if (errno != ECONNRESET)
			pd_log(LOG_WARNING, "%s: read: %s", c->peer, strerror(errno));
		return -1;
	}
	if (n == 0) {
		c->eof = true;
		return 0;
	}
	c->in_len += (size_t)n;
	conn_touch(srv, c);
	return conn_process(srv, c);
}

static int conn_write(struct pd_server *srv, struct conn *c)
{
	/* An event line is out before the reply it records. */
	if (c->out_off < c->out_len && pd_log_pending())
		pd_log_flush();
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->wfd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			if (errno != EPIPE && errno != ECONNRESET)
				pd_log(LOG_WARNING, "%s: write: %s", c->peer, strerror(errno));
			return -1;
		}
		c->out_off += (size_t)n;
		conn_touch(srv, c);
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	} else if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	return 0;
}

/* After any work on c: more requests may fit now; close when done. */
static void conn_settle(struct pd_server *srv, struct conn *c)
{
	for (;;) {
		if (conn_write(srv, c) < 0)
			goto close;
		if (!out_has_room(c) || !conn_has_pending_lines(c) || c->waiting)
			break;
		if (conn_process(srv, c) < 0)
			goto close;
	}
	if (c->out_len > 0 && c->hup)
		goto close;	/* nobody left to read the replies */
	if (c->eof && c->out_len == 0 && !conn_has_pending_lines(c) && !c->waiting) {
		if (c->in_len > 0 || pd_reader_started(&c->reader))
			pd_log(LOG_WARNING, "%s: connection closed in mid-request "
			       "(%zu bytes unanswered)", c->peer,
			       c->in_len + c->reader.req.bytes);
		goto close;
	}
	if (conn_update_interest(srv, c) < 0) {
		pd_log(LOG_ERR, "%s: epoll_ctl: %s", c->peer, strerror(errno));
		goto close;
	}
	return;
close:
	conn_close(srv, c);
}

static void conn_event(struct pd_server *srv, struct conn *c, uint32_t events)
{
	if (c->closed)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		if (conn_read(srv, c) < 0) {
			conn_close(srv, c);
			return;
		}
	}
	if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
		c->hup = c->eof = true;
	}
	/* Replies go out after the whole batch, so that the event lines of
	 * the batch take one write (conn_write flushes them first). */
	if (!c->dirty) {
		c->dirty = true;
		c->next_dirty = srv->dirty;
		srv->dirty = c;
	}
}

static void settle_dirty(struct pd_server *srv)
{
	pd_log_flush();
	while (srv->dirty != NULL) {
		struct conn *c = srv->dirty;
		srv->dirty = c->next_dirty;
		c->dirty = false;
		if (!c->closed)
			conn_settle(srv, c);
	}
}

/* ---- listeners ---- */

static void peer_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(buf, size, "fd %d", fd);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		snprintf(buf, size, "%s:%u", addr, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		snprintf(buf, size, "[%s]:%u", addr, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "unix peer (fd %d)", fd);
	}
}

static void listener_pause(struct pd_server *srv, struct listener *l, bool pause)
{
	struct epoll_event ev = { .events = pause ? 0 : EPOLLIN, .data.ptr = &l->watch };
	if (l->paused != pause && epoll_ctl(srv->epfd, EPOLL_CTL_MOD, l->fd, &ev) == 0)
		l->paused = pause;
}

/* The least recently active connection, of one peer or (key NULL) of all. */
static struct conn *least_active(struct pd_server *srv, const struct pd_peer_key *key)
{
	for (struct conn *c = srv->head; c != NULL; c = c->next)
		if (key == NULL || (c->peer_counted && pd_peer_key_eq(&c->key, key)))
			return c;
	return NULL;
}

/* Room for a new connection from `key`: a peer at its limit loses its
 * least recently active connection, and a full server its least recently
 * active one overall. Connections that are answered are the most recently
 * active, so a flood of idle connections, from one peer or from many,
 * closes its own connections, not those of Postfix. Returns false when
 * there is no room (max_connections and nothing to close). */
static bool make_room(struct pd_server *srv, const struct pd_peer_key *key)
{
	if (key->kind != PD_PEER_NONE && srv->cfg.max_connections_per_peer > 0 &&
	    pd_peers_count(srv->peers, key) >= srv->cfg.max_connections_per_peer) {
		struct conn *old = least_active(srv, key);
		if (old != NULL) {
			conn_close(srv, old);
			srv->evicted_peer++;
			pd_peer_key_text(key, srv->evicted_peer_name,
					 sizeof(srv->evicted_peer_name));
		}
	}
	if (srv->conn_count >= srv->cfg.max_connections) {
		struct conn *old = least_active(srv, NULL);
		if (old == NULL)
			return false;
		conn_close(srv, old);
		srv->evicted++;
	}
	return true;
}

static void listener_event(struct pd_server *srv, struct listener *l)
{
	char why[128], peer[64];
	struct pd_peer_key key;

	for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				pd_log(LOG_ERR, "%s: accept: %s; not accepting for a second",
				       l->name, strerror(errno));
				listener_pause(srv, l, true);
			}
			return;	/* EAGAIN, or a connection that went away */
		}
		pd_peer_key_of(fd, &key);
		if (!make_room(srv, &key)) {
			close(fd);
			srv->refused++;
			continue;
		}
		peer_name(fd, peer, sizeof(peer));
		struct conn *c = conn_new(srv, fd, fd, peer, why, sizeof(why));
		if (c == NULL) {
			pd_log(LOG_ERR, "%s: %s", peer, why);
			close(fd);
		} else if (key.kind != PD_PEER_NONE) {
			if (pd_peers_add(srv->peers, &key) == 0) {
				c->key = key;
				c->peer_counted = true;
			}
		}
	}
}

/* ---- signals, tick ---- */

static void log_reload_failure(struct pd_server *srv, struct tg_errors *errs)
{
	char when[32] = "?";
	time_t at = tg_holder_loaded_at(srv->holder);
	struct tm tm;
	if (localtime_r(&at, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	pd_log(LOG_ERR, "policy %s did not load; still serving the policy loaded at %s:",
	       tg_holder_path(srv->holder), when);
	pd_log_errors(LOG_ERR, errs);
}

/* Logs the outcome of a reload that finished (r from the holder). */
static void report_reload(struct pd_server *srv, int r, struct tg_errors *errs)
{
	if (r < 0)
		log_reload_failure(srv, errs);
	else if (r > 0 && srv->forced_reload)
		pd_log(LOG_INFO, "policy reloaded from %s", tg_holder_path(srv->holder));
	else if (r > 0)
		pd_log(LOG_INFO, "policy files changed; reloaded %s",
		       tg_holder_path(srv->holder));
	if (r != 0)
		srv->forced_reload = false;
}

/* Puts a finished background reload in force; at most once a second,
 * starts one when the files changed. Reading a large policy takes up to
 * a second: it runs in a thread, and requests are answered from the old
 * policy meanwhile. */
static void poll_reload(struct pd_server *srv, time_t now)
{
	struct tg_errors errs;
	tg_errors_init(&errs);
	report_reload(srv, tg_holder_poll_async(srv->holder, now, 1, &errs), &errs);
	tg_errors_clear(&errs);
}

static void reload_now(struct pd_server *srv)
{
	srv->forced_reload = true;
	if (tg_holder_start_reload(srv->holder) == 0)
		return;
	/* no thread to be had: load here, requests wait */
	struct tg_errors errs;
	tg_errors_init(&errs);
	report_reload(srv, tg_holder_reload(srv->holder, &errs) < 0 ? -1 : 1, &errs);
	tg_errors_clear(&errs);
}

static void begin_stop(struct pd_server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	srv->stop_deadline = time(NULL) + PD_STOP_GRACE;
	for (size_t i = 0; i < srv->listener_count; i++)
		close(srv->listeners[i].fd);
	srv->listener_count = 0;
	/* Take in what peers already sent, then read no more. */
	struct conn *next;
	for (struct conn *c = srv->head; c != NULL; c = next) {
		next = c->next;
		if (conn_read(srv, c) < 0) {
			conn_close(srv, c);
			continue;
		}
		c->eof = true;
		conn_settle(srv, c);
	}
}

static void signal_event(struct pd_server *srv)
{
	struct signalfd_siginfo si;
	while (read(srv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			pd_log(LOG_INFO, "SIGHUP: reloading the policy");
			reload_now(srv);
			if (srv->userdb != NULL) {
				pd_log(LOG_INFO, "SIGHUP: forgetting %zu cached account answer(s)",
				       pd_userdb_cached(srv->userdb));
				pd_userdb_forget(srv->userdb);
			}
		} else {
			pd_log(LOG_INFO, "%s: finishing %zu connection(s), then stopping",
			       si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
			       srv->conn_count);
			begin_stop(srv);
		}
	}
}

static void tick(struct pd_server *srv)
{
	uint64_t expirations;
	if (read(srv->timerfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	time_t now = time(NULL);

	if (!srv->stopping)
		poll_reload(srv, now);
	if (srv->refused > 0) {
		pd_log(LOG_WARNING, "refused %lu connection(s): max_connections (%u) reached",
		       srv->refused, srv->cfg.max_connections);
		srv->refused = 0;
	}
	if (srv->evicted_peer > 0) {
		pd_log(LOG_WARNING, "closed %lu least recently active connection(s) of a peer "
		       "at max_connections_per_peer (%u), last %s",
		       srv->evicted_peer, srv->cfg.max_connections_per_peer,
		       srv->evicted_peer_name);
		srv->evicted_peer = 0;
	}
	if (srv->evicted > 0) {
		pd_log(LOG_WARNING, "closed %lu least recently active connection(s) to make room: "
		       "max_connections (%u) reached", srv->evicted, srv->cfg.max_connections);
		srv->evicted = 0;
	}
	for (size_t i = 0; i < srv->listener_count; i++)
		listener_pause(srv, &srv->listeners[i], false);
	if (srv->userdb != NULL)
		pd_userdb_tick(srv->userdb, now);

	while (srv->head != NULL &&
	       (now - srv->head->last_active >= (time_t)srv->cfg.idle_timeout ||
		(srv->stopping && now >= srv->stop_deadline))) {
		struct conn *c = srv->head;
		pd_log(LOG_INFO, "%s: %s; closing the connection", c->peer,
		       srv->stopping ? "still busy at stop" : "idle timeout");
		conn_close(srv, c);
	}
}

/* ---- setup, loop ---- */

struct pd_server *pd_server_new(const struct pd_server_config *cfg,
				struct tg_holder *holder, char *why, size_t whylen)
{
	struct pd_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	srv->cfg = *cfg;
	srv->holder = holder;
	srv->sigfd = srv->timerfd = -1;
	srv->peers = pd_peers_new();
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0 || srv->peers == NULL)
		goto fail;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		goto fail;
	signal(SIGPIPE, SIG_IGN);
	srv->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sigfd < 0)
		goto fail;
	srv->sigwatch = (struct watch){ W_SIGNAL, srv };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->sigwatch };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->sigfd, &ev) < 0)
		goto fail;

	srv->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (srv->timerfd < 0)
		goto fail;
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	if (timerfd_settime(srv->timerfd, 0, &its, NULL) < 0)
		goto fail;
	srv->timerwatch = (struct watch){ W_TIMER, srv };
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &srv->timerwatch };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->timerfd, &ev) < 0)
		goto fail;
	if (cfg->userdb.socket != NULL) {
		srv->userdb = pd_userdb_new(&cfg->userdb, userdb_done, srv, why, whylen);
		if (srv->userdb == NULL) {
			pd_server_free(srv);
			return NULL;
		}
		srv->userdbwatch = (struct watch){ W_USERDB, srv->userdb };
		pd_userdb_attach(srv->userdb, srv->epfd, &srv->userdbwatch);
	}
	return srv;
fail:
	snprintf(why, whylen, "event loop setup: %s", strerror(errno));
	pd_server_free(srv);
	return NULL;
}

void pd_server_free(struct pd_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->head != NULL)
		conn_close(srv, srv->head);
	free_dead(srv);
	pd_userdb_free(srv->userdb);
	for (size_t i = 0; i < srv->listener_count; i++)
		close(srv->listeners[i].fd);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->timerfd >= 0)
		close(srv->timerfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	pd_peers_free(srv->peers);
	free(srv);
}

int pd_server_add_listener(struct pd_server *srv, int fd, const char *name,
			   char *why, size_t whylen)
{
	if (srv->listener_count >= MAX_LISTENERS) {
		snprintf(why, whylen, "more than %d listeners", MAX_LISTENERS);
		return -1;
	}
	struct listener *l = &srv->listeners[srv->listener_count];
	l->watch = (struct watch){ W_LISTENER, l };
	l->fd = fd;
	l->paused = false;
	snprintf(l->name, sizeof(l->name), "%s", name);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->watch };
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		snprintf(why, whylen, "%s: epoll_ctl: %s", name, strerror(errno));
		return -1;
	}
	srv->listener_count++;
	return 0;
}

int pd_server_add_session(struct pd_server *srv, int rfd, int wfd,
			  const char *name, char *why, size_t whylen)
{
	return conn_new(srv, rfd, wfd, name, why, whylen) != NULL ? 0 : -1;
}

/* Lines logged outside a batch of replies (warnings, reloads) are written
 * before the loop sleeps. */
static int wait_events(struct pd_server *srv, struct epoll_event *events)
{
	pd_log_flush();
	return epoll_wait(srv->epfd, events, MAX_EVENTS, -1);
}

int pd_server_run(struct pd_server *srv)
{
	struct epoll_event events[MAX_EVENTS];
	bool had_listeners = srv->listener_count > 0;

	for (;;) {
		if ((srv->stopping || !had_listeners) && srv->conn_count == 0) {
			/* stopped, or (spawn mode) the session is over */
			pd_log_flush();
			return 0;
		}
		int n = wait_events(srv, events);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pd_log(LOG_ERR, "epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct watch *w = events[i].data.ptr;
			switch (w->kind) {
			case W_LISTENER:
				if (!srv->stopping)
					listener_event(srv, w->obj);
				break;
			case W_CONN:
				conn_event(srv, w->obj, events[i].events);
				break;
			case W_SIGNAL:
				signal_event(srv);
				break;
			case W_TIMER:
				tick(srv);
				break;
			case W_USERDB:
				pd_userdb_event(w->obj, events[i].events, time(NULL));
				break;
			}
		}
		settle_dirty(srv);
		free_dead(srv);
		if (tg_holder_loading(srv->holder) && !srv->stopping)
			poll_reload(srv, time(NULL));
	}
}
