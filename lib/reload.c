/*
 * reload - a holder of the current policy snapshot. See reload.h.
 */
#include "reload.h"

#include "policy_int.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The loader needs little stack; a small one keeps the address space
 * small (Dovecot limits it with vsz_limit). */
#define LOADER_STACK_BYTES (1024 * 1024)

/* One load of the files, in the caller's thread or a loader thread. */
struct load {
	const char *path;
	uint64_t fingerprint;	/* of the files, taken before reading */
	struct tg_policy *policy;	/* NULL: failed, see errs */
	struct tg_errors errs;
};

struct tg_holder {
	char *path;
	struct tg_policy *current;
	time_t loaded_at;
	time_t last_check;
	/* After a failed load, the fingerprint of the broken files, so that
	 * a broken edit is reported once, not at every poll. */
	bool failed;
	uint64_t failed_fingerprint;
	/* A background load; only `done` is shared while it runs. */
	bool loading;
	/* A reload was asked for while a load was running: that load may
	 * have read the files before the change the caller wants in force,
	 * so its result is dropped and a new load started. */
	bool again;
	pthread_t loader;
	atomic_bool done;
	struct load pending;
};

struct tg_holder *tg_holder_new(const char *policy_path)
{
	struct tg_holder *holder = calloc(1, sizeof(*holder));
	if (holder == NULL)
		return NULL;
	holder->path = strdup(policy_path);
	if (holder->path == NULL) {
		free(holder);
		return NULL;
	}
	return holder;
}

static void join_loader(struct tg_holder *holder)
{
	if (!holder->loading)
		return;
	pthread_join(holder->loader, NULL);
	holder->loading = false;
}

/* Waits for a running load and throws its result away. */
static void drop_pending(struct tg_holder *holder)
{
	join_loader(holder);
	tg_policy_free(holder->pending.policy);
	holder->pending.policy = NULL;
	tg_errors_clear(&holder->pending.errs);
}

void tg_holder_free(struct tg_holder *holder)
{
	if (holder == NULL)
		return;
	drop_pending(holder);
	tg_policy_free(holder->current);
	free(holder->path);
	free(holder);
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool stamp_matches(const struct tg_source_stamp *s)
{
	struct stat st;
	if (stat(s->path, &st) < 0)
		return false;
	return st.st_dev == s->dev && st.st_ino == s->ino &&
	       st.st_size == s->size && same_time(&st.st_mtim, &s->mtime) &&
	       same_time(&st.st_ctim, &s->ctime);
}

static bool policy_changed(const struct tg_policy *policy)
{
	size_t n = tg_policy_source_count(policy);
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (!stamp_matches(tg_policy_source(policy, i)))
			return true;
	return false;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static uint64_t stat_hash(const struct stat *st)
{
	uint64_t h = 0;
	h = mix(h, (uint64_t)st->st_dev);
	h = mix(h, (uint64_t)st->st_ino);
	h = mix(h, (uint64_t)st->st_size);
	h = mix(h, (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec);
	h = mix(h, (uint64_t)st->st_ctim.tv_sec * 1000000000ull + (uint64_t)st->st_ctim.tv_nsec);
	return h;
}

/* Owner and mode of the directories above path: the file-trust checks
 * look at them, so fixing one (chmod go-w) must count as a change. Their
 * times do not count: /tmp changes all the time. */
static uint64_t ancestors_hash(const char *path)
{
	char real[PATH_MAX];
	uint64_t h = 0;
	struct stat st;

	if (realpath(path, real) == NULL)
		return 0;
	for (char *slash = strrchr(real, '/'); slash != NULL; slash = strrchr(real, '/')) {
		*slash = '\0';
		if (stat(real[0] != '\0' ? real : "/", &st) == 0) {
			h = mix(h, (uint64_t)st.st_uid << 32 | (uint64_t)st.st_gid);
			h = mix(h, (uint64_t)st.st_mode);
		}
		if (slash == real)
			break;
	}
	return h;
}

/* A hash of the stamps of every file a load would read, and of the trust
 * of the directories above them. Entries of a directory are combined
 * order-independently. */
static uint64_t fingerprint(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	uint64_t h = mix(stat_hash(&st), ancestors_hash(path));
	if (!S_ISDIR(st.st_mode))
		return h;
	DIR *dir = opendir(path);
	if (dir == NULL)
		return h;
	int fd = dirfd(dir);
	struct dirent *de;
	uint64_t entries = 0;
	while ((de = readdir(dir)) != NULL) {
		if (!tg_policy_is_conf_name(de->d_name))
			continue;
		struct stat est;
		if (fstatat(fd, de->d_name, &est, 0) < 0)
			memset(&est, 0, sizeof(est));
		entries += mix(tg_subject_hash(de->d_name, strlen(de->d_name)),
			       stat_hash(&est));
	}
	closedir(dir);
	return mix(h, entries);
}

static void run_load(struct load *load)
{
	/* Taken before the load: a change made while loading shows up as a
	 * difference at the next poll. */
	load->fingerprint = fingerprint(load->path);
	load->policy = tg_policy_load(load->path, &load->errs);
}

/* Puts a finished load in force, or records its failure. */
static int install(struct tg_holder *holder, struct load *load,
		   struct tg_errors *errs)
{
	if (load->policy == NULL) {
		holder->failed = true;
		holder->failed_fingerprint = load->fingerprint;
		tg_errors_move(errs, &load->errs);
		return -1;
	}
	tg_errors_clear(&load->errs);
	tg_policy_free(holder->current);
	holder->current = load->policy;
	load->policy = NULL;
	holder->loaded_at = time(NULL);
	holder->failed = false;
	return 0;
}

int tg_holder_reload(struct tg_holder *holder, struct tg_errors *errs)
{
	/* A background load of older files is of no use now. */
	drop_pending(holder);

	struct load load = { .path = holder->path };
	tg_errors_init(&load.errs);
	run_load(&load);
	return install(holder, &load, errs);
}

static void *loader_main(void *arg)
{
	struct tg_holder *holder = arg;
	run_load(&holder->pending);
	atomic_store_explicit(&holder->done, true, memory_order_release);
	return NULL;
}

int tg_holder_start_reload(struct tg_holder *holder)
{
	if (holder->loading) {
		holder->again = true;
		return 0;
	}
	holder->again = false;
	holder->pending = (struct load){ .path = holder->path };
	tg_errors_init(&holder->pending.errs);
	atomic_store(&holder->done, false);

	/* The loader blocks every signal: they belong to the caller. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	int err = pthread_attr_init(&attr);
	if (err == 0) {
		(void)pthread_attr_setstacksize(&attr, LOADER_STACK_BYTES);
		err = pthread_create(&holder->loader, &attr, loader_main, holder);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		return -1;
	holder->loading = true;
	return 0;
}

int tg_holder_finish(struct tg_holder *holder, struct tg_errors *errs)
{
	if (!holder->loading)
		return 0;
	join_loader(holder);
	return install(holder, &holder->pending, errs) < 0 ? -1 : 1;
}

bool tg_holder_loading(const struct tg_holder *holder)
{
	return holder->loading;
}

/* Whether a check is due and finds the files changed. */
static bool due_and_changed(struct tg_holder *holder, time_t now,
			    unsigned interval)
{
	if (holder->last_check != 0 && now >= holder->last_check &&
	    now - holder->last_check < (time_t)interval)
		return false;
	holder->last_check = now;
	if (holder->failed)
		return fingerprint(holder->path) != holder->failed_fingerprint;
	return holder->current == NULL || policy_changed(holder->current);
}

int tg_holder_poll(struct tg_holder *holder, time_t now, unsigned interval,
		   struct tg_errors *errs)
{
	if (!due_and_changed(holder, now, interval))
		return 0;
	return tg_holder_reload(holder, errs) < 0 ? -1 : 1;
}

int tg_holder_poll_async(struct tg_holder *holder, time_t now,
			 unsigned interval, struct tg_errors *errs)
{
	if (holder->loading) {
		if (!atomic_load_explicit(&holder->done, memory_order_acquire))
			return 0;
		if (holder->again) {
			/* Stale: started before the reload asked for. */
			drop_pending(holder);
			if (tg_holder_start_reload(holder) == 0)
				return 0;
			return tg_holder_reload(holder, errs) < 0 ? -1 : 1;
		}
		return tg_holder_finish(holder, errs);
	}
	if (!due_and_changed(holder, now, interval))
		return 0;
	if (tg_holder_start_reload(holder) == 0)
		return 0;
	return tg_holder_reload(holder, errs) < 0 ? -1 : 1;
}

const struct tg_policy *tg_holder_current(const struct tg_holder *holder)
{
	return holder->current;
}

time_t tg_holder_loaded_at(const struct tg_holder *holder)
{
	return holder->loaded_at;
}

const char *tg_holder_path(const struct tg_holder *holder)
{
	return holder->path;
}
