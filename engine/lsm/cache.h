/* cache.h - the block cache: uncompressed table blocks by (file number, offset), bounded by
 * the total bytes of the blocks it holds (their "charge").
 *
 * Sharded by hash into 16 LRU caches, each with its own mutex, so concurrent readers rarely
 * contend. Entries are reference counted: a handle returned by lookup or insert pins the
 * block until released, so a block in use is never freed under a reader; eviction takes the
 * least recently used unpinned blocks. Usage can exceed the capacity only by pinned blocks. */
#ifndef SHOAL_LSM_CACHE_H
#define SHOAL_LSM_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lsm_cache lsm_cache_t;
typedef struct lsm_cache_handle lsm_cache_handle_t;

lsm_cache_t *lsm_cache_new(size_t capacity);
void lsm_cache_destroy(lsm_cache_t **c_p);

/* A pinned handle, or NULL (a miss). */
lsm_cache_handle_t *lsm_cache_lookup(lsm_cache_t *c, uint64_t file, uint64_t off);
/* Takes value (freed with deleter when evicted and unpinned); returns a pinned handle, or
 * NULL when out of memory (then value has been deleted). Replaces an older entry. */
lsm_cache_handle_t *lsm_cache_insert(lsm_cache_t *c, uint64_t file, uint64_t off, void *value,
                                     size_t charge, void (*deleter)(void *value));
void *lsm_cache_value(lsm_cache_handle_t *h);
void lsm_cache_release(lsm_cache_t *c, lsm_cache_handle_t *h);

typedef struct {
    uint64_t capacity, usage, hits, misses;
} lsm_cache_stats_t;

void lsm_cache_stats(lsm_cache_t *c, lsm_cache_stats_t *out);

#endif
