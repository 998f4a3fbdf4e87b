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
    atomic_size_t usage; /* bytes malloc'd so far */
    size_t block;        /* bytes per block */
} lsm_arena_t;

/* block_size: bytes per malloc'd block (the usage granularity). */
void lsm_arena_init(lsm_arena_t *a, size_t block_size);
/* Returns n bytes aligned to 8, or NULL when out of memory. */
void *lsm_arena_alloc(lsm_arena_t *a, size_t n);
size_t lsm_arena_usage(const lsm_arena_t *a);
void lsm_arena_free(lsm_arena_t *a);

#endif
