/* batch.h - the encoding of a write batch, which is also the payload of a WAL record:
 *     fixed64 first sequence | fixed32 count | op*
 *     op = byte type (1 put, 0 delete) | varint key length | key | [varint value length | value]
 * The i-th op gets sequence first+i. The write path concatenates the ops of a group of
 * batches under one header, so a group is one WAL record and one sequence range. */
#ifndef SHOAL_LSM_BATCH_H
#define SHOAL_LSM_BATCH_H

#include <stdint.h>

#include "engine/lsm/coding.h"
#include "engine/lsm/lsm.h"

#define LSM_BATCH_HEADER 12

struct lsm_batch {
    lsm_buf_t rep; /* header + ops; the header's sequence is filled by the write path */
    uint32_t count;
};

/* Calls fn for each op of an encoded batch (header included), after checking every length:
 * returns SHOAL_ECORRUPT for a malformed batch (nothing is applied for ops after the bad one;
 * use lsm_batch_check first when all-or-nothing matters), or the first non-zero fn result. */
typedef int (*lsm_batch_fn)(void *arg, uint64_t seq, int type, lsm_slice_t key,
                            lsm_slice_t value);
int lsm_batch_iterate(lsm_slice_t rep, lsm_batch_fn fn, void *arg);
/* Checks an encoded batch without applying it; 0 or SHOAL_ECORRUPT. */
int lsm_batch_check(lsm_slice_t rep);

static inline uint64_t lsm_batch_rep_seq(lsm_slice_t rep)
{
    return lsm_get_fixed64(rep.data);
}
static inline uint32_t lsm_batch_rep_count(lsm_slice_t rep)
{
    return lsm_get_fixed32(rep.data + 8);
}

#endif
