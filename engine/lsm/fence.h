/* fence.h - a table's index block as flat arrays for point lookups.
 *
 * The index block (one entry per data block: separator key -> block handle) is binary
 * searched by decoding varints at each probe, which was the largest single cost of a get
 * in a compacted DB (14% of a compressed readrandom). At table open the entries are laid
 * out once as arrays: per block an 8-byte "fence" (the 8 user-key bytes after the prefix
 * every separator of the table shares, big-endian, so integer order is key order) and the
 * decoded handle. A lookup compares integers and only compares whole keys where two fences
 * tie. Built only from a well-formed index; anything else leaves the table on the block
 * iterator path, which reports the damage. */
#ifndef SHOAL_LSM_FENCE_H
#define SHOAL_LSM_FENCE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/lsm/coding.h"

typedef struct {
    uint64_t off, size; /* the data block's handle */
    uint32_t kpos, klen; /* its separator (an internal key) inside the index block */
} lsm_fence_ent_t;

typedef struct {
    uint64_t *fence;
    lsm_fence_ent_t *ent;
    size_t n;            /* 0: no fences (the caller uses the index block) */
    const char *index;   /* the index block the entries point into (not owned) */
    const char *prefix;  /* the shared user-key prefix (inside index) */
    size_t plen;
} lsm_fence_t;

/* Builds the fences of an index block; leaves f->n == 0 when the block is not in the
 * expected shape (every entry a restart) or out of memory. */
void lsm_fence_build(lsm_fence_t *f, const char *index, size_t len);
void lsm_fence_free(lsm_fence_t *f);

/* The first block whose separator is >= ikey (n when none), or -1 when the fences cannot
 * tell (no fences, or the key lacks the shared prefix). */
long lsm_fence_find(const lsm_fence_t *f, lsm_slice_t ikey);

#endif
