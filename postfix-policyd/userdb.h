/*
 * userdb - the account database for tlsgate-policyd: each account's
 * tlsgate_mode from Dovecot's auth service (lib/authmaster), asked
 * without blocking the event loop and remembered in lib/ucache.
 *
 * A query is answered at once from the cache, or queued on the one
 * connection to the auth socket (pipelined; at most PD_USERDB_INFLIGHT
 * in flight) and its waiter is called back with the answer, or with a
 * failure when Dovecot sends FAIL, the connection breaks, or no answer
 * comes within the timeout (checked by pd_userdb_tick(), once a second).
 * Answers of NOTFOUND and of accounts without the field are cached too
 * (negative entries): the files decide for them.
 *
 * While the socket fails, queries fail at once, a new connection is
 * tried at most once a second, and the log gets one line when the
 * failure starts, one a minute while it lasts (with the count of
 * requests answered per `failure =`), and one when it ends.
 *
 * Error contract: pd_userdb_new() returns NULL with `why`; nothing else
 * fails to its caller: failures reach the waiters.
 */
#ifndef TLSGATE_POLICYD_USERDB_H
#define TLSGATE_POLICYD_USERDB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

#define PD_USERDB_INFLIGHT 4096
#define PD_USERDB_LOG_EVERY 60

struct pd_userdb_config {
	const char *socket;
	unsigned ttl;			/* seconds; 0: no cache */
	size_t cache_size;
	unsigned timeout;		/* seconds */
	enum tg_failure failure;	/* for the log lines only */
};

/* outcome 1: *mode is -1 (the files decide) or an enum tg_mode;
 * outcome -1: no answer (answer per `failure =`). */
typedef void pd_userdb_done_fn(void *ctx, void *waiter, int outcome, int mode);

struct pd_userdb;

struct pd_userdb *pd_userdb_new(const struct pd_userdb_config *cfg,
				pd_userdb_done_fn *done, void *ctx,
				char *why, size_t whylen);
void pd_userdb_free(struct pd_userdb *u);

/* The loop's epoll set; the connection's events carry `tag`. */
void pd_userdb_attach(struct pd_userdb *u, int epfd, void *tag);

/* 1 with *mode from the cache; 0 when `waiter` will be called back;
 * -1 when the database cannot be asked now. */
int pd_userdb_query(struct pd_userdb *u, const char *user, void *waiter,
		    time_t now, int *mode);
/* The waiter goes away: its pending query is answered to nobody. */
void pd_userdb_cancel(struct pd_userdb *u, void *waiter);

void pd_userdb_event(struct pd_userdb *u, uint32_t events, time_t now);
void pd_userdb_tick(struct pd_userdb *u, time_t now);

/* Connects to the socket once (startup, no look-up: it must not make the
 * daemon wait): -1 with `why` when it is missing, refuses, is not ours
 * to open, or would restrict us to our own uid's accounts. */
int pd_userdb_probe(const char *socket, char *why, size_t whylen);

size_t pd_userdb_cached(const struct pd_userdb *u);
/* Forgets every cached answer (SIGHUP): the next request of each account
 * asks Dovecot again. */
void pd_userdb_forget(struct pd_userdb *u);

#endif
