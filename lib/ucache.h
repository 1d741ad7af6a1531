/*
 * ucache - the account database answers tlsgate-policyd remembers: per
 * account name, the mode the user database gave (or none: no field, or
 * no such account - a negative entry), for `ttl` seconds.
 *
 * Bounded: at most `max_entries` names (rounded up to a multiple of
 * TG_UCACHE_WAYS); a full set of TG_UCACHE_WAYS slots drops its expired
 * entry or else the one that expires first. Memory is at most 36 bytes
 * per entry (names of up to 24 bytes kept inline), plus its own
 * allocation for each longer name, plus one pointer per set; sets are
 * allocated (64 at a time) as names fall in them, so it grows with use.
 * Names are hashed with a per-process random seed, so a peer that picks
 * names cannot aim them at one set beyond evicting in it. Names are
 * compared byte for byte (case matters).
 *
 * Error contract: tg_ucache_new() returns NULL when out of memory;
 * tg_ucache_put() returns -1 when out of memory (nothing cached). A cache
 * with ttl 0 or max_entries 0 remembers nothing.
 */
#ifndef TLSGATE_UCACHE_H
#define TLSGATE_UCACHE_H

#include <stddef.h>
#include <time.h>

#define TG_UCACHE_WAYS 16

struct tg_ucache;

struct tg_ucache *tg_ucache_new(size_t max_entries, unsigned ttl);
void tg_ucache_free(struct tg_ucache *cache);

/* 1 with *mode (-1: none, else enum tg_mode) when `user` has an entry
 * that has not expired at `now`; else 0. */
int tg_ucache_get(struct tg_ucache *cache, const char *user, time_t now, int *mode);
int tg_ucache_put(struct tg_ucache *cache, const char *user, int mode, time_t now);
size_t tg_ucache_count(const struct tg_ucache *cache);
/* Forgets every entry (the memory of the sets stays for reuse). */
void tg_ucache_clear(struct tg_ucache *cache);

#endif
