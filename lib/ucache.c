/*
 * ucache - a set-associative table of account answers. See ucache.h.
 *
 * Laid out for the warm look-up, which touches two cache lines: a set's
 * first 64 bytes hold the tags (32 bits of each name's hash; 0: a free
 * slot) of its TG_UCACHE_WAYS slots; the slot whose tag matches is then
 * read in one 32-byte record: its name (up to NAME_INLINE bytes inline,
 * a longer one in its own allocation), mode and expiry time. Sixteen
 * ways keep a set from overflowing while the cache is half full (a
 * million names in the default two million: about 1 in 2,000 names finds
 * its set full, against 1 in 150 with eight ways). Sets are carved from
 * chunks of SETS_PER_CHUNK, allocated when a name first falls in one of
 * their sets (they are freed with the cache).
 *
 * Times are kept as 32-bit seconds after `epoch` (the first put, less
 * EPOCH_SLACK so that a clock set back stays in range); an entry is live
 * while now < expires.
 */
#include "ucache.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define NAME_INLINE 24		/* longer names get their own allocation */
#define LONG_NAME 0xff		/* name.len of one kept out of line */
#define SETS_PER_CHUNK 64
#define CACHE_LINE 64
#define EPOCH_SLACK ((int64_t)1 << 30)

struct name {
	uint32_t expires;	/* seconds after epoch */
	uint8_t mode_1;		/* the mode + 1 (0: none) */
	uint8_t len;		/* bytes in text, or LONG_NAME: the name is in long_name */
	union {
		char text[NAME_INLINE];	/* not NUL-terminated */
		char *long_name;
	} u;
};

struct set {
	uint32_t tag[TG_UCACHE_WAYS];		/* 0: free */
	struct name name[TG_UCACHE_WAYS];
};

_Static_assert(sizeof(struct name) == 32, "a name record is 32 bytes");
_Static_assert(offsetof(struct set, name) == CACHE_LINE, "the tags fill one line");
_Static_assert(sizeof(struct set) % CACHE_LINE == 0, "sets start on a line");

struct tg_ucache {
	struct set **sets;
	size_t set_count;	/* a power of two */
	struct set **chunks;	/* set_count / SETS_PER_CHUNK + 1 of them at most */
	size_t chunk_count;
	size_t chunk_used;	/* sets taken from the last chunk */
	size_t count;
	unsigned ttl;
	bool has_epoch;
	time_t epoch;
	uint64_t seed;
};

/* FNV-1a with a per-process seed; also measures the name. */
static uint64_t hash_name(uint64_t seed, const char *s, size_t *len)
{
	uint64_t h = 1469598103934665603ULL ^ seed;
	const char *p = s;
	for (; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	*len = (size_t)(p - s);
	return h ^ (h >> 29);
}

static uint32_t tag_of(uint64_t h)
{
	uint32_t tag = (uint32_t)(h >> 32);
	return tag != 0 ? tag : 1;
}

/* now as seconds after the epoch, held to the 32-bit range */
static uint32_t since_epoch(const struct tg_ucache *c, time_t now)
{
	int64_t d = (int64_t)now - (int64_t)c->epoch;
	if (d < 0)
		return 0;
	return d > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

struct tg_ucache *tg_ucache_new(size_t max_entries, unsigned ttl)
{
	struct tg_ucache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ttl = max_entries > 0 ? ttl : 0;
	c->set_count = 1;
	while (c->set_count * TG_UCACHE_WAYS < max_entries)
		c->set_count *= 2;
	if (c->ttl > 0) {
		c->sets = calloc(c->set_count, sizeof(struct set *));
		c->chunks = calloc(c->set_count / SETS_PER_CHUNK + 1, sizeof(struct set *));
		if (c->sets == NULL || c->chunks == NULL) {
			free(c->sets);
			free(c->chunks);
			free(c);
			return NULL;
		}
	}
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
		c->seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	return c;
}

static void drop_name(struct name *n)
{
	if (n->len == LONG_NAME)
		free(n->u.long_name);
	n->len = 0;
}

static void drop_names(struct set *set)
{
	for (int w = 0; w < TG_UCACHE_WAYS; w++)
		if (set->tag[w] != 0)
			drop_name(&set->name[w]);
}

void tg_ucache_free(struct tg_ucache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; c->sets != NULL && i < c->set_count; i++)
		if (c->sets[i] != NULL)
			drop_names(c->sets[i]);
	for (size_t i = 0; i < c->chunk_count; i++)
		free(c->chunks[i]);
	free(c->chunks);
	free(c->sets);
	free(c);
}

/* A zeroed set from the current chunk, or from a new one; NULL: no memory. */
static struct set *new_set(struct tg_ucache *c)
{
	size_t per_chunk = c->set_count < SETS_PER_CHUNK ? c->set_count : SETS_PER_CHUNK;
	if (c->chunk_count == 0 || c->chunk_used == per_chunk) {
		struct set *chunk = aligned_alloc(CACHE_LINE, per_chunk * sizeof(struct set));
		if (chunk == NULL)
			return NULL;
		memset(chunk, 0, per_chunk * sizeof(struct set));
		c->chunks[c->chunk_count++] = chunk;
		c->chunk_used = 0;
	}
	return &c->chunks[c->chunk_count - 1][c->chunk_used++];
}

static bool name_is(const struct name *n, const char *user, size_t len)
{
	if (n->len == LONG_NAME)
		return len > NAME_INLINE && strcmp(n->u.long_name, user) == 0;
	return n->len == len && memcmp(n->u.text, user, len) == 0;
}

/* The way that holds `user`, or -1. */
static int find(const struct set *set, uint32_t tag, const char *user, size_t len)
{
	for (int w = 0; w < TG_UCACHE_WAYS; w++)
		if (set->tag[w] == tag && name_is(&set->name[w], user, len))
			return w;
	return -1;
}

int tg_ucache_get(struct tg_ucache *c, const char *user, time_t now, int *mode)
{
	size_t len;
	if (c->ttl == 0)
		return 0;
	uint64_t h = hash_name(c->seed, user, &len);
	const struct set *set = c->sets[h & (c->set_count - 1)];
	if (set == NULL)
		return 0;
	int w = find(set, tag_of(h), user, len);
	if (w < 0 || since_epoch(c, now) >= set->name[w].expires)
		return 0;
	*mode = (int)set->name[w].mode_1 - 1;
	return 1;
}

/* The way a new name takes: a free one, an expired one, or the one that
 * expires first. */
static int victim(const struct set *set, uint32_t now)
{
	int best = 0;
	for (int w = 0; w < TG_UCACHE_WAYS; w++)
		if (set->tag[w] == 0)
			return w;
	for (int w = 0; w < TG_UCACHE_WAYS; w++) {
		if (now >= set->name[w].expires)
			return w;
		if (set->name[w].expires < set->name[best].expires)
			best = w;
	}
	return best;
}

/* Stores `user` (len bytes) in n; -1: out of memory (n unchanged). */
static int set_name(struct name *n, const char *user, size_t len)
{
	if (len <= NAME_INLINE) {
		drop_name(n);
		memcpy(n->u.text, user, len);
		n->len = (uint8_t)len;
		return 0;
	}
	char *copy = strdup(user);
	if (copy == NULL)
		return -1;
	drop_name(n);
	n->u.long_name = copy;
	n->len = LONG_NAME;
	return 0;
}

int tg_ucache_put(struct tg_ucache *c, const char *user, int mode, time_t now)
{
	size_t len;
	if (c->ttl == 0)
		return 0;
	if (!c->has_epoch) {
		c->epoch = now - (time_t)EPOCH_SLACK;
		c->has_epoch = true;
	}
	uint64_t h = hash_name(c->seed, user, &len);
	uint32_t tag = tag_of(h), t = since_epoch(c, now);
	struct set **setp = &c->sets[h & (c->set_count - 1)];
	if (*setp == NULL && (*setp = new_set(c)) == NULL)
		return -1;
	struct set *set = *setp;
	int w = find(set, tag, user, len);
	if (w < 0) {
		w = victim(set, t);
		if (set->tag[w] == 0)
			set->name[w].len = 0;	/* nothing to drop */
		if (set_name(&set->name[w], user, len) < 0)
			return -1;
		if (set->tag[w] == 0)
			c->count++;
		set->tag[w] = tag;
	}
	set->name[w].mode_1 = (uint8_t)(mode + 1);
	uint64_t expires = (uint64_t)t + c->ttl;
	set->name[w].expires = expires > UINT32_MAX ? UINT32_MAX : (uint32_t)expires;
	return 0;
}

void tg_ucache_clear(struct tg_ucache *c)
{
	for (size_t i = 0; c->sets != NULL && i < c->set_count; i++) {
		struct set *set = c->sets[i];
		if (set == NULL)
			continue;
		drop_names(set);
		memset(set->tag, 0, sizeof(set->tag));
	}
	c->count = 0;
}

size_t tg_ucache_count(const struct tg_ucache *c)
{
	return c->count;
}
