/* skiplist.h - the ordered index of a memtable: a skiplist of internal keys whose nodes live
 * in the memtable's arena.
 *
 * Concurrency: one writer at a time (the caller serialises inserts), any number of readers
 * without locks. A node is fully built before it is published with a release store into its
 * predecessors' next pointers, and readers follow pointers with acquire loads, so a reader
 * sees either the old list or the new one with the node complete. Nodes are never removed.
 * Keys are unique: the sequence number in every internal key differs. */
#ifndef SHOAL_LSM_SKIPLIST_H
#define SHOAL_LSM_SKIPLIST_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/lsm/arena.h"
#include "engine/lsm/coding.h"

#define LSM_SKIPLIST_MAX_HEIGHT 12

typedef struct lsm_sl_node lsm_sl_node_t;
struct lsm_sl_node {
    const char *key; /* internal key (klen bytes); the memtable puts its value after it */
    uint32_t klen;
    uint32_t height;
    _Atomic(lsm_sl_node_t *) next[]; /* height pointers */
};

typedef struct {
    lsm_arena_t *arena;
    lsm_sl_node_t *head;
    atomic_int height;
    uint64_t rnd;
} lsm_skiplist_t;

int lsm_skiplist_init(lsm_skiplist_t *sl, lsm_arena_t *arena);
/* Allocates a node with `extra` bytes after it for the caller (key and value bytes); the
 * caller fills node->key/klen then calls insert. NULL when out of memory. */
lsm_sl_node_t *lsm_skiplist_alloc(lsm_skiplist_t *sl, size_t extra, char **extra_p);
void lsm_skiplist_insert(lsm_skiplist_t *sl, lsm_sl_node_t *node);
/* Inserts n nodes (distinct keys, any order), each as lsm_skiplist_insert would. Up to
 * LSM_SKIPLIST_GROUP of them are searched side by side, one step of each in turn with the
 * next node of each prefetched, so their cache misses overlap instead of following one
 * another: a random insert into a memtable of a few MiB is ~20 misses, one after the other. */
#define LSM_SKIPLIST_GROUP 16
void lsm_skiplist_insert_many(lsm_skiplist_t *sl, lsm_sl_node_t *const *nodes, size_t n);

/* First node with key >= ikey, or NULL. */
lsm_sl_node_t *lsm_skiplist_seek(const lsm_skiplist_t *sl, lsm_slice_t ikey);
/* Last node with key < ikey, or NULL. */
lsm_sl_node_t *lsm_skiplist_seek_lt(const lsm_skiplist_t *sl, lsm_slice_t ikey);
lsm_sl_node_t *lsm_skiplist_first(const lsm_skiplist_t *sl);
lsm_sl_node_t *lsm_skiplist_last(const lsm_skiplist_t *sl);

static inline lsm_sl_node_t *lsm_skiplist_next(const lsm_sl_node_t *n)
{
    return atomic_load_explicit(&((lsm_sl_node_t *)n)->next[0], memory_order_acquire);
}

#endif
