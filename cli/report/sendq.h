/*
 * sendq - notices handed to a mail command without waiting for it, for
 * `tlsgate notify --follow`: the reader of the log keeps reading while a
 * slow sendmail runs.
 *
 * Each notice is delivered by a child process (its own process group)
 * that runs the caller's deliver function; at most SENDQ_SLOTS run at
 * once, each given `timeout` seconds before its whole group is killed.
 * Notices wait in a queue of SENDQ_MAX_WAITING; an account already waiting
 * or being sent is not queued twice (sendq_pending).
 *
 * Limits, counted and never silent: a notice that finds the queue full is
 * dropped (`overflow`); more than `max_per_hour` notices queued within an
 * hour are dropped (`over_rate`). The caller records an account only
 * after its delivery succeeded, so a dropped, failed or timed-out notice
 * is tried again at the account's next event.
 *
 * Times are the caller's monotonic seconds. Errors: sendq_init and
 * sendq_add return -1 when memory runs out; a failed fork() counts as a
 * failed delivery. Nothing here exits or prints.
 */
#ifndef TLSGATE_SENDQ_H
#define TLSGATE_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SENDQ_SLOTS 4
#define SENDQ_MAX_WAITING 64
#define SENDQ_MAX_PER_HOUR_LIMIT 100000

/* Runs in the child: returns 0 when the notice was accepted. */
typedef int sendq_deliver_fn(void *ctx, const char *data, size_t len);
/* Called in the parent for each finished notice. */
typedef void sendq_done_fn(void *ctx, const char *account, bool ok, bool timed_out);

struct sendq_job {
	char *account;		/* NULL: free slot */
	char *data;
	size_t len;
	pid_t pid;
	int64_t deadline;
};

struct sendq {
	struct sendq_job waiting[SENDQ_MAX_WAITING];
	size_t nwaiting;
	struct sendq_job running[SENDQ_SLOTS];
	unsigned timeout;
	unsigned max_per_hour;
	int64_t *hour;		/* ring of the last max_per_hour queue times */
	size_t hour_next, hour_used;
	sendq_deliver_fn *deliver;
	void *ctx;
	uint64_t queued, delivered, failed, timed_out, overflow, over_rate;
};

enum sendq_add_result {
	SENDQ_QUEUED,
	SENDQ_FULL,		/* dropped: the queue is full */
	SENDQ_OVER_RATE,	/* dropped: max_per_hour reached */
	SENDQ_NOMEM = -1,
};

int sendq_init(struct sendq *q, unsigned timeout, unsigned max_per_hour,
	       sendq_deliver_fn *deliver, void *ctx);
/* Whether a notice would be queued now; a no is counted as sendq_add
 * counts it, so that a caller can skip building a notice that would be
 * dropped. */
enum sendq_add_result sendq_check(struct sendq *q, int64_t now);
/* Queues a copy of data[0..len) for account. */
enum sendq_add_result sendq_add(struct sendq *q, const char *account,
				const char *data, size_t len, int64_t now);
bool sendq_pending(const struct sendq *q, const char *account);
/* Notices waiting or being sent. */
size_t sendq_busy(const struct sendq *q);
/* Reaps finished children, kills those past their deadline, starts
 * waiting notices; calls done for each finished one. */
void sendq_run(struct sendq *q, int64_t now, sendq_done_fn *done, void *dctx);
/* For a stop: gives running notices until `until` (polling), kills the
 * rest (done with ok false), drops the waiting ones. Returns how many
 * waiting notices were dropped. */
size_t sendq_stop(struct sendq *q, int64_t until, int64_t (*clock)(void),
		  sendq_done_fn *done, void *dctx);
void sendq_free(struct sendq *q);

#endif
