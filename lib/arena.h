/*
 * arena - a bump allocator for the strings of one policy snapshot, and the
 * memory advice for the large tables of a snapshot.
 *
 * Everything allocated from an arena lives until tg_arena_free(); that is
 * the lifetime of the snapshot. Allocation failure returns NULL.
 */
#ifndef TLSGATE_ARENA_H
#define TLSGATE_ARENA_H

#include <stddef.h>

struct tg_arena_block;
struct tg_arena {
	struct tg_arena_block *head;
	size_t used;		/* in head */
	size_t total;		/* bytes handed out, for statistics */
};

void tg_arena_init(struct tg_arena *arena);
void tg_arena_free(struct tg_arena *arena);
void *tg_arena_alloc(struct tg_arena *arena, size_t size);	/* 8-aligned */
char *tg_arena_strndup(struct tg_arena *arena, const char *s, size_t len);

/* Memory advice for large, randomly read tables (the arena's blocks and
 * the policy's arrays): madvise(MADV_HUGEPAGE) for the 2 MiB pages inside
 * [p, p + size). Advisory only; nothing fails. */
void tg_advise_huge(void *p, size_t size);

#endif
