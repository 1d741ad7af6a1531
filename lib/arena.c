/*
 * arena - bump allocator. See arena.h.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BLOCK_SIZE (256 * 1024)
#define MAX_BLOCK_SIZE (8 * 1024 * 1024)

struct tg_arena_block {
	struct tg_arena_block *next;
	size_t size;
	_Alignas(8) unsigned char data[];
};

/* Large tables are read at random: ask for huge pages so that a look-up
 * costs cache misses, not TLB misses as well. Advisory only. */
void tg_advise_huge(void *p, size_t size)
{
	const uintptr_t huge = 2u << 20;
	if (size < 2 * huge)
		return;
	uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t end = ((uintptr_t)p + size) & ~(huge - 1);
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

void tg_arena_init(struct tg_arena *arena)
{
	memset(arena, 0, sizeof(*arena));
}

void tg_arena_free(struct tg_arena *arena)
{
	struct tg_arena_block *b = arena->head;
	while (b != NULL) {
		struct tg_arena_block *next = b->next;
		free(b);
		b = next;
	}
	tg_arena_init(arena);
}

void *tg_arena_alloc(struct tg_arena *arena, size_t size)
{
	size = (size + 7) & ~(size_t)7;
	if (arena->head == NULL || arena->head->size - arena->used < size) {
		/* Blocks grow with the arena, so that a large policy gets
		 * few blocks that can live on huge pages. */
		size_t normal = arena->total / 8;
		normal = normal < BLOCK_SIZE ? BLOCK_SIZE :
			 normal > MAX_BLOCK_SIZE ? MAX_BLOCK_SIZE : normal;
		size_t block = size > normal / 4 ? size : normal;
		struct tg_arena_block *b = malloc(sizeof(*b) + block);
		if (b == NULL)
			return NULL;
		b->size = block;
		tg_advise_huge(b->data, block);
		if (block == size && arena->head != NULL) {
			/* A large piece gets a block of its own behind the
			 * current one, which keeps its free space. */
			b->next = arena->head->next;
			arena->head->next = b;
			arena->total += size;
			return b->data;
		}
		b->next = arena->head;
		arena->head = b;
		arena->used = 0;
	}
	void *p = arena->head->data + arena->used;
	arena->used += size;
	arena->total += size;
	return p;
}

char *tg_arena_strndup(struct tg_arena *arena, const char *s, size_t len)
{
	char *p = tg_arena_alloc(arena, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}
