/* block.h - the data and index blocks of a table.
 *
 * A block is a run of entries sorted by internal key, then a restart array:
 *     entry*  = varint shared | varint unshared | varint value_len | key[shared..] | value
 *     restart = fixed32 offset of an entry whose shared = 0, every `interval` entries
 *     fixed32 restart count
 * Keys share their prefix with the previous key (prefix compression); restart points let a
 * seek binary-search the block and then scan at most `interval` entries.
 *
 * The decoder (lsm_block_parse and the iterator) checks every length against the block's
 * end: a malformed block makes the iterator invalid with SHOAL_ECORRUPT, never a read out of
 * bounds. Blocks on disk are checksummed (table.h), so this is the second line of defence. */
#ifndef SHOAL_LSM_BLOCK_H
#define SHOAL_LSM_BLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/coding.h"

typedef struct {
    lsm_buf_t buf;
    uint32_t *restarts;
    size_t nrestarts, cap_restarts;
    int interval, counter;
    lsm_buf_t last_key;
    uint32_t entries;
} lsm_block_builder_t;

void lsm_block_builder_init(lsm_block_builder_t *b, int restart_interval);
/* Keys must be added in increasing internal-key order. 0 or SHOAL_ENOMEM. */
int lsm_block_builder_add(lsm_block_builder_t *b, lsm_slice_t key, lsm_slice_t value);
/* Appends the restart array; returns the finished block (borrowed until reset). */
int lsm_block_builder_finish(lsm_block_builder_t *b, lsm_slice_t *out);
size_t lsm_block_builder_size(const lsm_block_builder_t *b); /* estimate once finished */
void lsm_block_builder_reset(lsm_block_builder_t *b);
void lsm_block_builder_free(lsm_block_builder_t *b);

/* An iterator over one block's bytes (borrowed: they must outlive it). Embeddable. */
typedef struct {
    const char *data;
    uint32_t restarts;  /* offset of the restart array: the end of the entries */
    uint32_t nrestarts;
    uint32_t cur;       /* offset of the current entry; == restarts when not valid */
    uint32_t next;      /* offset just past the current entry */
    uint32_t restart_idx;
    lsm_buf_t key;      /* points at inline_key until a key outgrows it */
    lsm_slice_t value;
    int status;
    char inline_key[64]; /* lets a point lookup run on the stack without malloc */
} lsm_block_iter_t;

/* Sets the iterator over data[0..len); invalid (status SHOAL_ECORRUPT) if the restart array
 * does not fit. Zero the struct before the first init; later inits reuse its key buffer.
 * The struct must not move once initialised. */
void lsm_block_iter_init(lsm_block_iter_t *it, const char *data, size_t len);
void lsm_block_iter_free(lsm_block_iter_t *it);
static inline bool lsm_block_iter_valid(const lsm_block_iter_t *it)
{
    return it->cur < it->restarts;
}
void lsm_block_iter_seek_first(lsm_block_iter_t *it);
void lsm_block_iter_seek_last(lsm_block_iter_t *it);
void lsm_block_iter_seek(lsm_block_iter_t *it, lsm_slice_t ikey); /* first >= ikey */
void lsm_block_iter_next(lsm_block_iter_t *it);
void lsm_block_iter_prev(lsm_block_iter_t *it);
static inline lsm_slice_t lsm_block_iter_key(const lsm_block_iter_t *it)
{
    return lsm_slice(it->key.data, it->key.len);
}

#endif
