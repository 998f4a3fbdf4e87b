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

/* Entries whose handle shares one allocation with the value: lsm_cache_entry_new returns
 * `bytes` of value memory with room for the handle in front (no second malloc per insert, and
 * a hit reads the handle and the head of the value from adjacent memory). The caller fills
 * it, then either inserts it (lsm_cache_insert_entry: the cache owns it from then on and
 * frees it with its handle) or frees it (lsm_cache_entry_free, NULL is fine). */
void *lsm_cache_entry_new(size_t bytes);
void lsm_cache_entry_free(void *value);
lsm_cache_handle_t *lsm_cache_insert_entry(lsm_cache_t *c, uint64_t file, uint64_t off,
                                           void *value, size_t charge);

/* Bytes an embedded entry costs beyond its value (its handle and malloc header): callers add
 * it to the charge so that the capacity bounds memory, not payload. */
size_t lsm_cache_entry_overhead(void);

/* A pinned handle, or NULL (a miss). */
lsm_cache_handle_t *lsm_cache_lookup(lsm_cache_t *c, uint64_t file, uint64_t off);
/* Takes value (freed with deleter when evicted and unpinned); returns a pinned handle, or
 * NULL when out of memory (then value has been deleted). Replaces an older entry. */
lsm_cache_handle_t *lsm_cache_insert(lsm_cache_t *c, uint64_t file, uint64_t off, void *value,
                                     size_t charge, void (*deleter)(void *value));
void *lsm_cache_value(lsm_cache_handle_t *h);
void lsm_cache_release(lsm_cache_t *c, lsm_cache_handle_t *h);

/* Changes the capacity; a smaller one evicts unpinned blocks at once (the database's memory
 * budget gives the cache what the memtables leave, so the cache shrinks as they grow). */
void lsm_cache_set_capacity(lsm_cache_t *c, size_t capacity);

typedef struct {
    uint64_t capacity, usage, hits, misses;
} lsm_cache_stats_t;

void lsm_cache_stats(lsm_cache_t *c, lsm_cache_stats_t *out);

#endif
