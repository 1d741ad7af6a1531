/*
 * userdb - non-blocking account look-ups for the event loop. See
 * userdb.h.
 *
 * Pending queries live in a table indexed by request id modulo its size;
 * a reply whose id does not match its slot (an answer after a timeout)
 * is dropped.
 */
#include "userdb.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "authmaster.h"
#include "errors.h"
#include "log.h"
#include "names.h"
#include "ucache.h"

#define RETRY_SECONDS 1

struct pending {
	void *waiter;		/* NULL: free, or cancelled */
	bool used;
	unsigned id;
	time_t deadline;
	char user[TG_AM_MAX_USER + 1];
};

struct pd_userdb {
	struct pd_userdb_config cfg;
	char *socket;
	pd_userdb_done_fn *done;
	void *ctx;
	struct tg_ucache *cache;
	struct tg_am_conn conn;		/* conn.fd -1: not connected */
	int epfd;
	void *tag;
	uint32_t interest;
	time_t retry_at;		/* no new connection before */
	size_t inflight;
	/* the failure period */
	bool failing;
	time_t failing_logged;
	unsigned long failed_since_log;
	struct pending pending[PD_USERDB_INFLIGHT];
};

static const char *failure_name(const struct pd_userdb *u)
{
	return u->cfg.failure == TG_FAILURE_ALLOW ? "allow (DUNNO)" : "tempfail (451 4.7.0)";
}

/* One line when a failure period starts, one a minute while it lasts. */
static void note_failure(struct pd_userdb *u, time_t now, const char *what)
{
	u->failed_since_log++;
	if (!u->failing) {
		u->failing = true;
		u->failing_logged = now;
		u->failed_since_log = 0;
		pd_log(LOG_ERR, "userdb: %s; answering per failure = %s until it answers "
		       "again (logged once a minute)", what, failure_name(u));
	} else if (now - u->failing_logged >= PD_USERDB_LOG_EVERY) {
		pd_log(LOG_ERR, "userdb: still failing: %s; %lu request(s) answered per "
		       "failure = %s in the last minute", what, u->failed_since_log,
		       failure_name(u));
		u->failing_logged = now;
		u->failed_since_log = 0;
	}
}

/* Once a minute while a failure period lasts, also without new failures
 * noted by a request (the tick). */
static void log_summary(struct pd_userdb *u, time_t now)
{
	if (!u->failing || u->failed_since_log == 0 ||
	    now - u->failing_logged < PD_USERDB_LOG_EVERY)
		return;
	pd_log(LOG_ERR, "userdb: still failing; %lu request(s) answered per failure = %s "
	       "in the last minute", u->failed_since_log, failure_name(u));
	u->failing_logged = now;
	u->failed_since_log = 0;
}

static void note_success(struct pd_userdb *u)
{
	if (!u->failing)
		return;
	u->failing = false;
	pd_log(LOG_INFO, "userdb: %s answers again", u->socket);
}

static void set_interest(struct pd_userdb *u)
{
	if (u->conn.fd < 0 || u->epfd < 0)
		return;
	uint32_t want = EPOLLIN | (u->conn.out_len > 0 ? EPOLLOUT : 0);
	if (want == u->interest)
		return;
	struct epoll_event ev = { .events = want, .data.ptr = u->tag };
	if (epoll_ctl(u->epfd, u->interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
		      u->conn.fd, &ev) == 0)
		u->interest = want;
}

static void finish(struct pd_userdb *u, struct pending *p, int outcome, int mode)
{
	void *waiter = p->waiter;
	p->used = false;
	p->waiter = NULL;
	u->inflight--;
	if (waiter != NULL)
		u->done(u->ctx, waiter, outcome, mode);
}

/* The connection broke: every query on it fails. */
static void conn_fail(struct pd_userdb *u, time_t now, const char *why)
{
	if (u->inflight == 0 && u->conn.fd >= 0 && u->conn.version_seen &&
	    u->conn.in_len == u->conn.in_off) {
		/* Dovecot closed an idle connection (a restart, a reload):
		 * nothing was lost; the next query connects again at once. */
		if (u->epfd >= 0 && u->interest != 0)
			epoll_ctl(u->epfd, EPOLL_CTL_DEL, u->conn.fd, NULL);
		tg_am_close(&u->conn);
		u->interest = 0;
		u->retry_at = 0;
		pd_log(LOG_INFO, "userdb: %s; will connect again when asked", why);
		return;
	}
	if (u->conn.fd >= 0) {
		if (u->epfd >= 0 && u->interest != 0)
			epoll_ctl(u->epfd, EPOLL_CTL_DEL, u->conn.fd, NULL);
		tg_am_close(&u->conn);
	}
	u->interest = 0;
	u->retry_at = now + RETRY_SECONDS;
	note_failure(u, now, why);
	for (size_t i = 0; i < PD_USERDB_INFLIGHT && u->inflight > 0; i++)
		if (u->pending[i].used)
			finish(u, &u->pending[i], -1, -1);
}

static int ensure_connected(struct pd_userdb *u, time_t now)
{
	char why[512];
	if (u->conn.fd >= 0)
		return 0;
	if (now < u->retry_at) {
		note_failure(u, now, "not connected");
		return -1;
	}
	if (tg_am_connect(&u->conn, u->socket, true, why, sizeof(why)) < 0) {
		u->retry_at = now + RETRY_SECONDS;
		note_failure(u, now, why);
		return -1;
	}
	u->interest = 0;
	return 0;
}

static void apply_reply(struct pd_userdb *u, const struct tg_am_reply *r, time_t now)
{
	struct pending *p = &u->pending[r->id % PD_USERDB_INFLIGHT];
	char text[600];
	if (!p->used || p->id != r->id)
		return;		/* answered late, after its timeout */
	if (r->status == TG_AM_FAIL) {
		tg_am_fail_text(&u->conn, r, text, sizeof(text));
		note_failure(u, now, text);
		finish(u, p, -1, -1);
		return;
	}
	note_success(u);
	int mode = -1;
	if (r->status == TG_AM_FOUND && r->mode >= 0) {
		mode = r->mode;
	} else if (r->status == TG_AM_FOUND && r->mode == TG_AM_MODE_INVALID) {
		char user[128];
		tg_sanitize(p->user, strlen(p->user), 64, user, sizeof(user));
		pd_log(LOG_WARNING, "user %s: ignoring tlsgate_mode=\"%s\" from the user "
		       "database (want off, audit or require): the policy files decide",
		       user, r->mode_text);
	}
	tg_ucache_put(u->cache, p->user, mode, now);
	finish(u, p, 1, mode);
}

void pd_userdb_event(struct pd_userdb *u, uint32_t events, time_t now)
{
	char why[512];
	struct tg_am_reply r;
	if (u->conn.fd < 0)
		return;
	if ((events & EPOLLOUT) && tg_am_flush(&u->conn, why, sizeof(why)) < 0) {
		conn_fail(u, now, why);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		int rr;
		while ((rr = tg_am_read(&u->conn, why, sizeof(why))) > 0) {
			int n;
			while ((n = tg_am_next_reply(&u->conn, &r, why, sizeof(why))) > 0)
				apply_reply(u, &r, now);
			if (n < 0) {
				conn_fail(u, now, why);
				return;
			}
		}
		if (rr < 0) {
			conn_fail(u, now, why);
			return;
		}
	}
	set_interest(u);
}

int pd_userdb_query(struct pd_userdb *u, const char *user, void *waiter,
		    time_t now, int *mode)
{
	char why[512];
	unsigned id;
	if (tg_ucache_get(u->cache, user, now, mode))
		return 1;
	if (!tg_am_user_ok(user)) {
		*mode = -1;	/* not a name Dovecot could know */
		return 1;
	}
	if (u->inflight >= PD_USERDB_INFLIGHT) {
		note_failure(u, now, "too many look-ups in flight");
		return -1;
	}
	if (ensure_connected(u, now) < 0)
		return -1;
	if (tg_am_queue_user(&u->conn, user, &id, why, sizeof(why)) < 0) {
		note_failure(u, now, why);
		return -1;
	}
	struct pending *p = &u->pending[id % PD_USERDB_INFLIGHT];
	if (p->used) {
		/* an id that wrapped onto an unanswered query: give that one up */
		finish(u, p, -1, -1);
	}
	p->used = true;
	p->waiter = waiter;
	p->id = id;
	p->deadline = now + (time_t)u->cfg.timeout;
	snprintf(p->user, sizeof(p->user), "%s", user);
	u->inflight++;
	if (tg_am_flush(&u->conn, why, sizeof(why)) < 0) {
		p->waiter = NULL;	/* answered -1 by our return */
		conn_fail(u, now, why);
		return -1;
	}
	set_interest(u);
	return 0;
}

void pd_userdb_cancel(struct pd_userdb *u, void *waiter)
{
	for (size_t i = 0; i < PD_USERDB_INFLIGHT && waiter != NULL; i++)
		if (u->pending[i].used && u->pending[i].waiter == waiter)
			u->pending[i].waiter = NULL;
}

void pd_userdb_tick(struct pd_userdb *u, time_t now)
{
	size_t expired = 0;
	for (size_t i = 0; i < PD_USERDB_INFLIGHT && u->inflight > 0; i++) {
		struct pending *p = &u->pending[i];
		if (p->used && now >= p->deadline) {
			finish(u, p, -1, -1);
			expired++;
		}
	}
	if (expired > 0) {
		char what[600];
		snprintf(what, sizeof(what), "userdb socket %s: no answer within %us",
			 u->socket, u->cfg.timeout);
		note_failure(u, now, what);
	}
	log_summary(u, now);
}

struct pd_userdb *pd_userdb_new(const struct pd_userdb_config *cfg,
				pd_userdb_done_fn *done, void *ctx,
				char *why, size_t whylen)
{
	struct pd_userdb *u = calloc(1, sizeof(*u));
	if (u == NULL || (u->socket = strdup(cfg->socket)) == NULL ||
	    (u->cache = tg_ucache_new(cfg->cache_size, cfg->ttl)) == NULL) {
		if (u != NULL)
			free(u->socket);
		free(u);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	u->cfg = *cfg;
	u->cfg.socket = u->socket;
	u->done = done;
	u->ctx = ctx;
	u->conn.fd = -1;
	u->epfd = -1;
	return u;
}

void pd_userdb_free(struct pd_userdb *u)
{
	if (u == NULL)
		return;
	tg_am_close(&u->conn);
	tg_ucache_free(u->cache);
	free(u->socket);
	free(u);
}

void pd_userdb_attach(struct pd_userdb *u, int epfd, void *tag)
{
	u->epfd = epfd;
	u->tag = tag;
}

int pd_userdb_probe(const char *socket, char *why, size_t whylen)
{
	struct tg_am_conn *c = malloc(sizeof(*c));
	struct tg_am_reply r;
	if (c == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	int rc = tg_am_connect(c, socket, false, why, whylen);
	if (rc == 0 && c->restricted) {
		/* Dovecot would answer FAIL for every account not of our uid */
		memset(&r, 0, sizeof(r));
		tg_am_fail_text(c, &r, why, whylen);
		rc = -1;
	}
	tg_am_close(c);
	free(c);
	return rc;
}

void pd_userdb_forget(struct pd_userdb *u)
{
	tg_ucache_clear(u->cache);
}

size_t pd_userdb_cached(const struct pd_userdb *u)
{
	return tg_ucache_count(u->cache);
}
