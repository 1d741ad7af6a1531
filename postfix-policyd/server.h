/*
 * server - the event loop of tlsgate-policyd: one thread, epoll (level
 * triggered), non-blocking sockets.
 *
 * Each connection has a bounded input buffer (PD_IN_BUFFER bytes: one
 * unfinished line at most PD_MAX_LINE bytes plus room to read) and a
 * bounded output buffer (PD_OUT_BUFFER). Requests are answered in the
 * order they arrive, also when pipelined. A connection is not read while
 * its output buffer lacks room for one more reply, so a peer that does not
 * read its replies stops being read and cannot grow our memory.
 *
 * Limits: max_connections open connections, and max_connections_per_peer
 * per client address (inet) or user id (unix, SO_PEERCRED; peers.h). A
 * new connection over either limit is taken and the least recently active
 * connection (of that peer, or of all) is closed instead, so that a flood
 * of idle connections cannot lock Postfix out (Postfix would then apply
 * its default_action); logged at most once a second. idle_timeout seconds without a
 * byte in either direction closes a connection; a request over the reader's
 * limits (request.h) or not a policy request is logged (sanitised) and gets
 * no reply: the replies to the requests before it are written, then the
 * connection is closed. The daemon goes on in all these cases.
 *
 * Signals (signalfd): SIGHUP reloads the policy now (and forgets the
 * cached account answers); SIGTERM and SIGINT
 * stop: listeners close, what peers already sent is read once more, every
 * complete request is answered, and the loop returns when all replies are
 * written (or after PD_STOP_GRACE seconds). Once a second the policy files
 * are checked for changes (tg_holder_poll). A reload that fails is logged
 * with every file:line error and the old policy keeps serving.
 *
 * Event lines: written (flushed) before the replies they record, one write
 * per batch of events; one per decision answer.h makes an event for; when Postfix
 * asks again on the same connection about the same transaction (same
 * `instance`: one request per recipient) with the same subject, TLS and
 * verdict, no second line is written.
 *
 * With a user database (cfg.userdb), a request whose account is not in
 * the cache waits for the look-up; the connection answers nothing after
 * it meanwhile (the order stays), and other connections go on.
 *
 * Error contract: setup functions return -1 and fill `why`; the loop logs
 * peer and system errors and goes on; pd_server_run() returns -1 only when
 * epoll itself fails.
 */
#ifndef TLSGATE_POLICYD_SERVER_H
#define TLSGATE_POLICYD_SERVER_H

#include <stddef.h>

#include "answer.h"
#include "reload.h"
#include "userdb.h"

#define PD_IN_BUFFER 8192
#define PD_OUT_BUFFER (4 * PD_MAX_REPLY)
#define PD_STOP_GRACE 5

struct pd_server_config {
	struct pd_answer_config answer;
	unsigned idle_timeout;		/* seconds */
	unsigned max_connections;
	/* The account database; userdb.socket NULL: the files alone. A
	 * request waits for its account's answer (userdb.h) and later ones
	 * on its connection wait behind it; when there is none, the reply
	 * follows `failure`. */
	struct pd_userdb_config userdb;
	enum tg_failure failure;
	unsigned max_connections_per_peer;	/* 0: no per-peer limit */
};

struct pd_server;

/* Blocks SIGHUP, SIGTERM and SIGINT (they are read by the loop) and
 * ignores SIGPIPE. holder must have a policy loaded; it stays the
 * caller's. */
struct pd_server *pd_server_new(const struct pd_server_config *cfg,
				struct tg_holder *holder, char *why, size_t whylen);
void pd_server_free(struct pd_server *srv);

/* A listening socket, taken over (closed by the server). */
int pd_server_add_listener(struct pd_server *srv, int fd, const char *name,
			   char *why, size_t whylen);
/* One connection on two descriptors (spawn mode: stdin and stdout). With
 * no listener, the loop returns when its connections are gone. */
int pd_server_add_session(struct pd_server *srv, int rfd, int wfd,
			  const char *name, char *why, size_t whylen);

int pd_server_run(struct pd_server *srv);

#endif
