/* iter.h - the internal iterator: one interface over memtables, blocks, tables, levels and
 * their merge, all yielding (internal key, value) in internal-key order.
 *
 * An iterator starts unpositioned. key()/value() are borrowed until the next move. An error
 * (a corrupt block, a failed read) makes the iterator invalid and status() non-zero; a
 * caller that sees !valid() must check status() before concluding "end of data". */
#ifndef SHOAL_LSM_ITER_H
#define SHOAL_LSM_ITER_H

#include <stdbool.h>

#include "engine/lsm/coding.h"

typedef struct lsm_iiter lsm_iiter_t;

typedef struct {
    bool (*valid)(lsm_iiter_t *it);
    void (*seek_first)(lsm_iiter_t *it);
    void (*seek_last)(lsm_iiter_t *it);
    void (*seek)(lsm_iiter_t *it, lsm_slice_t ikey); /* first entry >= ikey */
    void (*next)(lsm_iiter_t *it);
    void (*prev)(lsm_iiter_t *it);
    lsm_slice_t (*key)(lsm_iiter_t *it);
    lsm_slice_t (*value)(lsm_iiter_t *it);
    int (*status)(lsm_iiter_t *it);
    void (*destroy)(lsm_iiter_t *it);
} lsm_iiter_ops_t;

struct lsm_iiter {
    const lsm_iiter_ops_t *ops;
};

static inline bool lsm_iiter_valid(lsm_iiter_t *it)
{
    return it->ops->valid(it);
}
static inline void lsm_iiter_seek_first(lsm_iiter_t *it)
{
    it->ops->seek_first(it);
}
static inline void lsm_iiter_seek_last(lsm_iiter_t *it)
{
    it->ops->seek_last(it);
}
static inline void lsm_iiter_seek(lsm_iiter_t *it, lsm_slice_t k)
{
    it->ops->seek(it, k);
}
static inline void lsm_iiter_next(lsm_iiter_t *it)
{
    it->ops->next(it);
}
static inline void lsm_iiter_prev(lsm_iiter_t *it)
{
    it->ops->prev(it);
}
static inline lsm_slice_t lsm_iiter_key(lsm_iiter_t *it)
{
    return it->ops->key(it);
}
static inline lsm_slice_t lsm_iiter_value(lsm_iiter_t *it)
{
    return it->ops->value(it);
}
static inline int lsm_iiter_status(lsm_iiter_t *it)
{
    return it->ops->status(it);
}
static inline void lsm_iiter_destroy(lsm_iiter_t *it)
{
    if (it)
        it->ops->destroy(it);
}

/* An iterator over nothing, or over nothing but an error; NULL when out of memory. */
lsm_iiter_t *lsm_iiter_empty(int status);

/* Merges n children (taken) into one ordered stream. When two children hold the same
 * internal key the lower-numbered child wins (callers never produce such ties). */
lsm_iiter_t *lsm_merging_iter_new(lsm_iiter_t **children, int n);

#endif
