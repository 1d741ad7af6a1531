/*
 * authmaster - a client for Dovecot's auth-master protocol, the USER
 * look-ups that LMTP and `doveadm user` make, to read an account's
 * tlsgate_mode field from whatever database Dovecot's userdb uses.
 *
 * Protocol (Dovecot 2.3, src/auth/auth-master-connection.c): both sides
 * send "VERSION\t1\tMINOR"; the server adds "SPID\tPID". A request is
 * "USER\tID\tNAME\tservice=tlsgate"; the answer, in any order, is
 * "USER\tID\tNAME\tkey=value...", "NOTFOUND\tID" or "FAIL\tID[\treason=..]".
 * Values are tab-escaped (\001 + '1', 't', 'r', 'n'). Requests are
 * pipelined: several may be in flight on one connection.
 *
 * Limits: a reply line is at most TG_AM_MAX_LINE bytes (longer: the
 * connection is broken, -1); a name to look up is at most TG_AM_MAX_USER
 * bytes of printable text without tabs (others are refused before they
 * are sent: Dovecot would read a tab as a field separator); the output
 * queue holds at most TG_AM_MAX_QUEUE bytes. Nothing here aborts on peer
 * input: every parser returns -1 and fills a caller-owned `why`.
 *
 * The connection works blocking (the CLI: tg_am_lookup()) or
 * non-blocking from an event loop (tlsgate-policyd: tg_am_queue_user(),
 * tg_am_flush(), tg_am_read(), tg_am_next_reply()).
 */
#ifndef TLSGATE_AUTHMASTER_H
#define TLSGATE_AUTHMASTER_H

#include <stdbool.h>
#include <stddef.h>

#define TG_AM_MAX_LINE 16384
#define TG_AM_MAX_USER 255
#define TG_AM_MAX_QUEUE (256 * 1024)
#define TG_AM_SERVICE "tlsgate"

enum tg_am_status {
	TG_AM_FOUND,		/* USER: the account exists */
	TG_AM_NOTFOUND,		/* NOTFOUND: no such account */
	TG_AM_FAIL,		/* FAIL: Dovecot could not tell */
};

/* The mode a reply gives: TG_AM_MODE_NONE without a tlsgate_mode field
 * (or an empty one), TG_AM_MODE_INVALID for a value that is not off,
 * audit or require (exact words, as the Dovecot module reads the field),
 * else enum tg_mode. */
#define TG_AM_MODE_NONE (-1)
#define TG_AM_MODE_INVALID (-2)

struct tg_am_reply {
	enum tg_am_status status;
	unsigned id;
	int mode;
	char mode_text[72];	/* the raw field, sanitised, for a log line */
	char reason[160];	/* FAIL reason=, sanitised; may be empty */
};

/* Parses one line the server sent (without its '\n'). Returns 1 with a
 * reply, 0 for a line that is not a reply (VERSION, SPID), -1 with `why`
 * for anything else (a client socket's MECH lines, garbage). */
int tg_am_parse_line(const char *line, size_t len, struct tg_am_reply *out,
		     char *why, size_t whylen);

/* Whether a name can be asked about (length, no control characters,
 * valid UTF-8). */
bool tg_am_user_ok(const char *user);

struct tg_am_conn {
	int fd;			/* -1: closed */
	bool version_seen;	/* the server's VERSION line came */
	bool restricted;	/* world-accessible socket not ours: Dovecot
				 * only answers for users of our uid */
	unsigned next_id;
	char path[108];
	size_t in_off, in_len, out_len;	/* in[in_off..in_len) unread */
	char in[TG_AM_MAX_LINE];
	char out[TG_AM_MAX_QUEUE];
};

/* Connects (non-blocking descriptor when `nonblock`) and queues our
 * VERSION line. -1 with a message that names the socket and what to
 * change (missing, refused, permission denied). */
int tg_am_connect(struct tg_am_conn *c, const char *path, bool nonblock,
		  char *why, size_t whylen);
void tg_am_close(struct tg_am_conn *c);

/* Queues a USER request; *id is its id. -1 when the name cannot be asked
 * about or the queue is full. */
int tg_am_queue_user(struct tg_am_conn *c, const char *user, unsigned *id,
		     char *why, size_t whylen);
/* Writes what is queued: 1 all written, 0 some left (wait for POLLOUT),
 * -1 error. */
int tg_am_flush(struct tg_am_conn *c, char *why, size_t whylen);
/* Reads what is there: 1 bytes came, 0 nothing yet (EAGAIN), -1 EOF or
 * error, or a line longer than TG_AM_MAX_LINE. */
int tg_am_read(struct tg_am_conn *c, char *why, size_t whylen);
/* Takes the next reply out of what was read: 1 a reply, 0 none complete,
 * -1 the server sent something that is not the protocol. */
int tg_am_next_reply(struct tg_am_conn *c, struct tg_am_reply *out,
		     char *why, size_t whylen);

/* A blocking look-up on a connected `c`, waiting at most timeout_ms for
 * the reply. -1 with `why` when the connection failed (then closed). */
int tg_am_lookup(struct tg_am_conn *c, const char *user, int timeout_ms,
		 struct tg_am_reply *out, char *why, size_t whylen);

/* A message for a FAIL reply: on a restricted socket it names the socket
 * and the listener to add; else Dovecot's reason. */
void tg_am_fail_text(const struct tg_am_conn *c, const struct tg_am_reply *r,
		     char *buf, size_t size);

#endif
