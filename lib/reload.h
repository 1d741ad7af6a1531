/*
 * reload - the policy a long-running process serves, and its reloads.
 *
 * A holder owns the current snapshot. A reload builds a new snapshot and
 * swaps the pointer only when the new one loaded without error; otherwise
 * the old one keeps serving and the errors are returned. Changes are
 * noticed by comparing the files' identity, size and times with those
 * recorded at load (tg_holder_poll(), at most once per interval); a
 * directory's own times catch files added, removed or renamed. A change
 * that failed to load is not retried until the files change again.
 *
 * A reload can also run in a thread of its own (tg_holder_poll_async,
 * tg_holder_start_reload), so that reading a large policy never holds up
 * the caller's logins or requests; the snapshot is swapped by the caller's
 * thread when it next polls. The loader thread touches nothing but its own
 * result and runs with all signals blocked.
 *
 * Not thread-safe otherwise: one thread polls and decides (Dovecot's auth
 * process and tlsgate-policyd are single-threaded). The snapshot returned
 * by tg_holder_current() stays valid until the next poll or reload.
 */
#ifndef TLSGATE_RELOAD_H
#define TLSGATE_RELOAD_H

#include <stdbool.h>
#include <time.h>

#include "errors.h"
#include "policy.h"

struct tg_holder;

struct tg_holder *tg_holder_new(const char *policy_path);
void tg_holder_free(struct tg_holder *holder);

/* Loads now, whatever changed. Returns 0 with a new snapshot in force, or
 * -1 with errors (the old snapshot, if any, stays). */
int tg_holder_reload(struct tg_holder *holder, struct tg_errors *errs);

/* If `interval` seconds have passed since the last check and the files
 * changed, reloads. Returns 1 after a successful reload, 0 when nothing
 * was done, -1 when a reload failed (errors filled, old snapshot kept). */
int tg_holder_poll(struct tg_holder *holder, time_t now, unsigned interval,
		   struct tg_errors *errs);

/* Like tg_holder_poll(), but a reload runs in the background: a load
 * that finished since the last call is put in force first (1, or -1 with
 * its errors); a due check that finds changed files starts a load and
 * returns 0. Without a thread (pthread_create failed) it loads here. */
int tg_holder_poll_async(struct tg_holder *holder, time_t now,
			 unsigned interval, struct tg_errors *errs);
/* Starts a background reload now, whatever changed (SIGHUP). If one is
 * running, it may have read the files before the change that prompted
 * this call: tg_holder_poll_async() then drops its result and starts a new
 * load, so the next result reported reflects files read after this call
 * (a stream of such calls keeps the old snapshot serving until they stop).
 * The result comes from the next tg_holder_poll_async() or
 * tg_holder_finish(). Returns -1 if no thread could be started. */
int tg_holder_start_reload(struct tg_holder *holder);
/* Waits for a running background load and puts it in force: 1, or -1
 * with its errors; 0 when none was running. */
int tg_holder_finish(struct tg_holder *holder, struct tg_errors *errs);
/* Whether a background load is running. */
bool tg_holder_loading(const struct tg_holder *holder);

/* The snapshot in force, NULL if none ever loaded. */
const struct tg_policy *tg_holder_current(const struct tg_holder *holder);
/* When the snapshot in force was loaded (0 if none). */
time_t tg_holder_loaded_at(const struct tg_holder *holder);
const char *tg_holder_path(const struct tg_holder *holder);

#endif
