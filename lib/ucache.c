/*
 * ucache - a set-associative table of account answers. See ucache.h.
 *
 * Each set is allocated when a name first falls in it; a slot owns its
 * name (malloc). An entry is live while now < expires.
 */
#include "ucache.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct slot {
	char *user;		/* NULL: free */
	time_t expires;
	uint32_t hash;
	int16_t mode;
};

struct set {
	struct slot slot[TG_UCACHE_WAYS];
};

struct tg_ucache {
	struct set **sets;
	size_t set_count;	/* a power of two */
	size_t count;
	unsigned ttl;
	uint64_t seed;
};

static uint64_t hash_name(uint64_t seed, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ seed;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ^ (h >> 29);
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
		if (c->sets == NULL) {
			free(c);
			return NULL;
		}
	}
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
		c->seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	return c;
}

void tg_ucache_free(struct tg_ucache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; c->sets != NULL && i < c->set_count; i++) {
		if (c->sets[i] == NULL)
			continue;
		for (int w = 0; w < TG_UCACHE_WAYS; w++)
			free(c->sets[i]->slot[w].user);
		free(c->sets[i]);
	}
	free(c->sets);
	free(c);
}

static struct slot *find(struct set *set, uint32_t hash, const char *user)
{
	for (int w = 0; w < TG_UCACHE_WAYS; w++) {
		struct slot *s = &set->slot[w];
		if (s->user != NULL && s->hash == hash && strcmp(s->user, user) == 0)
			return s;
	}
	return NULL;
}

int tg_ucache_get(struct tg_ucache *c, const char *user, time_t now, int *mode)
{
	if (c->ttl == 0)
		return 0;
	uint64_t h = hash_name(c->seed, user);
	struct set *set = c->sets[h & (c->set_count - 1)];
	if (set == NULL)
		return 0;
	struct slot *s = find(set, (uint32_t)(h >> 32), user);
	if (s == NULL || now >= s->expires)
		return 0;
	*mode = s->mode;
	return 1;
}

/* The slot a new name takes: a free one, an expired one, or the one that
 * expires first. */
static struct slot *victim(struct set *set, time_t now)
{
	struct slot *best = &set->slot[0];
	for (int w = 0; w < TG_UCACHE_WAYS; w++) {
		struct slot *s = &set->slot[w];
		if (s->user == NULL || now >= s->expires)
			return s;
		if (s->expires < best->expires)
			best = s;
	}
	return best;
}

int tg_ucache_put(struct tg_ucache *c, const char *user, int mode, time_t now)
{
	if (c->ttl == 0)
		return 0;
	uint64_t h = hash_name(c->seed, user);
	uint32_t tag = (uint32_t)(h >> 32);
	struct set **setp = &c->sets[h & (c->set_count - 1)];
	if (*setp == NULL && (*setp = calloc(1, sizeof(**setp))) == NULL)
		return -1;
	struct slot *s = find(*setp, tag, user);
	if (s == NULL) {
		char *copy = strdup(user);
		if (copy == NULL)
			return -1;
		s = victim(*setp, now);
		if (s->user == NULL)
			c->count++;
		free(s->user);
		s->user = copy;
		s->hash = tag;
	}
	s->mode = (int16_t)mode;
	s->expires = now + (time_t)c->ttl;
	return 0;
}

void tg_ucache_clear(struct tg_ucache *c)
{
	for (size_t i = 0; c->sets != NULL && i < c->set_count; i++) {
		if (c->sets[i] == NULL)
			continue;
		for (int w = 0; w < TG_UCACHE_WAYS; w++) {
			free(c->sets[i]->slot[w].user);
			c->sets[i]->slot[w].user = NULL;
		}
	}
	c->count = 0;
}

size_t tg_ucache_count(const struct tg_ucache *c)
{
	return c->count;
}
