/* arena.h - bump allocator for a memtable: entries are never freed one by one, the whole
 * arena goes when the memtable does. One writer allocates at a time (the write-group
 * leader); lsm_arena_usage may be read from any thread. */
#ifndef SHOAL_LSM_ARENA_H
#define SHOAL_LSM_ARENA_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct lsm_arena_block lsm_arena_block_t;

typedef struct {
    char *ptr;   /* next free byte in the current block */
    size_t left; /* bytes left in the current block */
    lsm_arena_block_t *blocks;
    atomic_size_t usage; /* bytes allocated so far (block headers included) */
    size_t block;        /* bytes per block */
} lsm_arena_t;

/* A block of this size is a 2 MiB-aligned anonymous mapping advised to use a huge page
 * (see arena.c); other sizes come from malloc. */
#define LSM_ARENA_HUGE ((size_t)2 << 20)

/* block_size: bytes per block, header included (the usage granularity); at least 4 KiB. */
void lsm_arena_init(lsm_arena_t *a, size_t block_size);
/* Returns n bytes aligned to 8, or NULL when out of memory. */
void *lsm_arena_alloc(lsm_arena_t *a, size_t n);
size_t lsm_arena_usage(const lsm_arena_t *a);
void lsm_arena_free(lsm_arena_t *a);

#endif
