/*
 * sendq - notices delivered by child processes with a timeout. See
 * sendq.h.
 */
#include "sendq.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int sendq_init(struct sendq *q, unsigned timeout, unsigned max_per_hour,
	       sendq_deliver_fn *deliver, void *ctx)
{
	memset(q, 0, sizeof(*q));
	q->timeout = timeout;
	q->max_per_hour = max_per_hour;
	q->deliver = deliver;
	q->ctx = ctx;
	if (max_per_hour > 0) {
		q->hour = calloc(max_per_hour, sizeof(*q->hour));
		if (q->hour == NULL)
			return -1;
	}
	return 0;
}

static void job_free(struct sendq_job *j)
{
	free(j->account);
	free(j->data);
	memset(j, 0, sizeof(*j));
}

/* Whether one more notice fits in the last hour; takes its place. */
static bool hour_take(struct sendq *q, int64_t now)
{
	if (q->max_per_hour == 0)
		return true;
	if (q->hour_used == q->max_per_hour && q->hour[q->hour_next] > now - 3600)
		return false;	/* the oldest of the last N is within the hour */
	q->hour[q->hour_next] = now;
	q->hour_next = (q->hour_next + 1) % q->max_per_hour;
	if (q->hour_used < q->max_per_hour)
		q->hour_used++;
	return true;
}

bool sendq_pending(const struct sendq *q, const char *account)
{
	for (size_t i = 0; i < q->nwaiting; i++)
		if (strcasecmp(q->waiting[i].account, account) == 0)
			return true;
	for (size_t i = 0; i < SENDQ_SLOTS; i++)
		if (q->running[i].account != NULL &&
		    strcasecmp(q->running[i].account, account) == 0)
			return true;
	return false;
}

size_t sendq_busy(const struct sendq *q)
{
	size_t n = q->nwaiting;
	for (size_t i = 0; i < SENDQ_SLOTS; i++)
		n += q->running[i].account != NULL;
	return n;
}

enum sendq_add_result sendq_check(struct sendq *q, int64_t now)
{
	if (q->nwaiting == SENDQ_MAX_WAITING) {
		q->overflow++;
		return SENDQ_FULL;
	}
	if (q->max_per_hour > 0 && q->hour_used == q->max_per_hour &&
	    q->hour[q->hour_next] > now - 3600) {
		q->over_rate++;
		return SENDQ_OVER_RATE;
	}
	return SENDQ_QUEUED;
}

enum sendq_add_result sendq_add(struct sendq *q, const char *account,
				const char *data, size_t len, int64_t now)
{
	if (q->nwaiting == SENDQ_MAX_WAITING) {
		q->overflow++;
		return SENDQ_FULL;
	}
	if (!hour_take(q, now)) {
		q->over_rate++;
		return SENDQ_OVER_RATE;
	}
	struct sendq_job *j = &q->waiting[q->nwaiting];
	j->account = strdup(account);
	j->data = malloc(len ? len : 1);
	if (j->account == NULL || j->data == NULL) {
		job_free(j);
		return SENDQ_NOMEM;
	}
	memcpy(j->data, data, len);
	j->len = len;
	q->nwaiting++;
	q->queued++;
	return SENDQ_QUEUED;
}

/* The child: its own process group, so that a timeout kills what it
 * started too; default signal handling for the mail command. */
static void run_child(struct sendq *q, const struct sendq_job *j)
{
	setpgid(0, 0);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	_exit(q->deliver(q->ctx, j->data, j->len) == 0 ? 0 : 1);
}

static bool start_one(struct sendq *q, struct sendq_job *slot, int64_t now)
{
	*slot = q->waiting[0];
	memmove(&q->waiting[0], &q->waiting[1], (q->nwaiting - 1) * sizeof(q->waiting[0]));
	q->nwaiting--;
	memset(&q->waiting[q->nwaiting], 0, sizeof(q->waiting[0]));
	fflush(NULL);	/* nothing buffered is written twice, by the child too */
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0)
		run_child(q, slot);
	setpgid(pid, pid);	/* also here: a kill may come before the child runs */
	slot->pid = pid;
	slot->deadline = now + (int64_t)q->timeout;
	return true;
}

static void finish(struct sendq *q, struct sendq_job *j, bool ok, bool timed_out,
		   sendq_done_fn *done, void *dctx)
{
	if (ok)
		q->delivered++;
	else if (timed_out)
		q->timed_out++;
	else
		q->failed++;
	if (done != NULL)
		done(dctx, j->account, ok, timed_out);
	job_free(j);
}

static void kill_and_reap(struct sendq_job *j)
{
	kill(-j->pid, SIGKILL);
	kill(j->pid, SIGKILL);
	while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
		;
}

void sendq_run(struct sendq *q, int64_t now, sendq_done_fn *done, void *dctx)
{
	for (size_t i = 0; i < SENDQ_SLOTS; i++) {
		struct sendq_job *j = &q->running[i];
		if (j->account == NULL)
			continue;
		int status;
		pid_t r = waitpid(j->pid, &status, WNOHANG);
		if (r == j->pid) {
			kill(-j->pid, SIGKILL);	/* what the command left behind */
			finish(q, j, WIFEXITED(status) && WEXITSTATUS(status) == 0, false,
			       done, dctx);
		} else if (r < 0 && errno != EINTR) {
			finish(q, j, false, false, done, dctx);
		} else if (now >= j->deadline) {
			kill_and_reap(j);
			finish(q, j, false, true, done, dctx);
		}
	}
	for (size_t i = 0; i < SENDQ_SLOTS && q->nwaiting > 0; i++) {
		struct sendq_job *slot = &q->running[i];
		if (slot->account != NULL)
			continue;
		if (!start_one(q, slot, now))
			finish(q, slot, false, false, done, dctx);
	}
}

size_t sendq_stop(struct sendq *q, int64_t until, int64_t (*clock)(void),
		  sendq_done_fn *done, void *dctx)
{
	size_t dropped = q->nwaiting;
	for (size_t i = 0; i < q->nwaiting; i++)
		job_free(&q->waiting[i]);
	q->nwaiting = 0;
	for (;;) {
		int64_t now = clock();
		bool any = false;
		for (size_t i = 0; i < SENDQ_SLOTS; i++) {
			struct sendq_job *j = &q->running[i];
			if (j->account != NULL && now >= until)
				j->deadline = now;	/* time is up: killed below */
		}
		sendq_run(q, now, done, dctx);
		for (size_t i = 0; i < SENDQ_SLOTS; i++)
			any |= q->running[i].account != NULL;
		if (!any)
			return dropped;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

void sendq_free(struct sendq *q)
{
	for (size_t i = 0; i < q->nwaiting; i++)
		job_free(&q->waiting[i]);
	for (size_t i = 0; i < SENDQ_SLOTS; i++)
		if (q->running[i].account != NULL) {
			kill_and_reap(&q->running[i]);
			job_free(&q->running[i]);
		}
	free(q->hour);
	memset(q, 0, sizeof(*q));
}
