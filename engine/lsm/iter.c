/* iter.c - the empty iterator and the merging iterator of iter.h.
 *
 * The merging iterator keeps its children positioned around the current key: moving
 * forward, every child is at its first entry > key(); moving backward, at its last entry <
 * key(). Changing direction re-seeks the other children (as LevelDB does). A child that
 * fails stops the merge: the merge becomes invalid with the child's error, because skipping
 * a broken child would silently hide its keys. Children are few (memtables, level-0 tables,
 * one per deeper level), so the smallest is found by a linear scan: no heap upkeep. */
#include "engine/lsm/iter.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/dbformat.h"

typedef struct {
    lsm_iiter_t base;
    int status;
} empty_iter_t;

static bool e_valid(lsm_iiter_t *it)
{
    return false;
}
static void e_move(lsm_iiter_t *it)
{
}
static void e_seek(lsm_iiter_t *it, lsm_slice_t k)
{
}
static lsm_slice_t e_slice(lsm_iiter_t *it)
{
    return lsm_slice("", 0);
}
static int e_status(lsm_iiter_t *it)
{
    return ((empty_iter_t *)it)->status;
}
static void e_destroy(lsm_iiter_t *it)
{
    free(it);
}

static const lsm_iiter_ops_t empty_ops = {e_valid, e_move,  e_move,  e_seek,   e_move,
                                          e_move,  e_slice, e_slice, e_status, e_destroy};

lsm_iiter_t *lsm_iiter_empty(int status)
{
    empty_iter_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->base.ops = &empty_ops;
    e->status = status;
    return &e->base;
}

/* ---- merging iterator ---- */

typedef struct {
    lsm_iiter_t base;
    lsm_iiter_t **kids;
    int n;
    lsm_iiter_t *cur;
    bool forward;
    int status;
} merge_iter_t;

/* True (and the merge stopped) when a child that is not valid failed. */
static bool kid_failed(merge_iter_t *m, lsm_iiter_t *k)
{
    int st = lsm_iiter_status(k);
    if (st && !m->status)
        m->status = st;
    return st != 0;
}

static void find_smallest(merge_iter_t *m)
{
    lsm_iiter_t *best = NULL;
    lsm_slice_t bk = {0};
    for (int i = 0; i < m->n; i++) {
        lsm_iiter_t *k = m->kids[i];
        if (!lsm_iiter_valid(k)) {
            if (kid_failed(m, k)) {
                m->cur = NULL;
                return;
            }
            continue;
        }
        lsm_slice_t kk = lsm_iiter_key(k);
        if (!best || lsm_ikey_cmp(kk, bk) < 0) {
            best = k;
            bk = kk;
        }
    }
    m->cur = best;
}

static void find_largest(merge_iter_t *m)
{
    lsm_iiter_t *best = NULL;
    lsm_slice_t bk = {0};
    for (int i = m->n - 1; i >= 0; i--) {
        lsm_iiter_t *k = m->kids[i];
        if (!lsm_iiter_valid(k)) {
            if (kid_failed(m, k)) {
                m->cur = NULL;
                return;
            }
            continue;
        }
        lsm_slice_t kk = lsm_iiter_key(k);
        if (!best || lsm_ikey_cmp(kk, bk) > 0) {
            best = k;
            bk = kk;
        }
    }
    m->cur = best;
}

static bool mg_valid(lsm_iiter_t *it)
{
    return ((merge_iter_t *)it)->cur != NULL;
}

static void mg_seek_first(lsm_iiter_t *it)
{
    merge_iter_t *m = (merge_iter_t *)it;
    for (int i = 0; i < m->n; i++)
        lsm_iiter_seek_first(m->kids[i]);
    m->forward = true;
    find_smallest(m);
}

static void mg_seek_last(lsm_iiter_t *it)
{
    merge_iter_t *m = (merge_iter_t *)it;
    for (int i = 0; i < m->n; i++)
        lsm_iiter_seek_last(m->kids[i]);
    m->forward = false;
    find_largest(m);
}

static void mg_seek(lsm_iiter_t *it, lsm_slice_t k)
{
    merge_iter_t *m = (merge_iter_t *)it;
    for (int i = 0; i < m->n; i++)
        lsm_iiter_seek(m->kids[i], k);
    m->forward = true;
    find_smallest(m);
}

static void mg_next(lsm_iiter_t *it)
{
    merge_iter_t *m = (merge_iter_t *)it;
    if (!m->forward) {
        lsm_slice_t key = lsm_iiter_key(m->cur);
        for (int i = 0; i < m->n; i++) {
            lsm_iiter_t *k = m->kids[i];
            if (k == m->cur)
                continue;
            lsm_iiter_seek(k, key);
            if (lsm_iiter_valid(k) && lsm_ikey_cmp(lsm_iiter_key(k), key) == 0)
                lsm_iiter_next(k);
        }
        m->forward = true;
    }
    lsm_iiter_next(m->cur);
    if (m->n == 1) { /* the common case after a full compaction: no scan needed */
        if (!lsm_iiter_valid(m->cur)) {
            kid_failed(m, m->cur);
            m->cur = NULL;
        }
        return;
    }
    find_smallest(m);
}

static void mg_prev(lsm_iiter_t *it)
{
    merge_iter_t *m = (merge_iter_t *)it;
    if (m->forward) {
        lsm_slice_t key = lsm_iiter_key(m->cur);
        for (int i = 0; i < m->n; i++) {
            lsm_iiter_t *k = m->kids[i];
            if (k == m->cur)
                continue;
            lsm_iiter_seek(k, key);
            if (lsm_iiter_valid(k))
                lsm_iiter_prev(k);
            else if (!lsm_iiter_status(k))
                lsm_iiter_seek_last(k);
        }
        m->forward = false;
    }
    lsm_iiter_prev(m->cur);
    find_largest(m);
}

static lsm_slice_t mg_key(lsm_iiter_t *it)
{
    return lsm_iiter_key(((merge_iter_t *)it)->cur);
}

static lsm_slice_t mg_value(lsm_iiter_t *it)
{
    return lsm_iiter_value(((merge_iter_t *)it)->cur);
}

static int mg_status(lsm_iiter_t *it)
{
    merge_iter_t *m = (merge_iter_t *)it;
    if (m->status)
        return m->status;
    for (int i = 0; i < m->n; i++) {
        int st = lsm_iiter_status(m->kids[i]);
        if (st)
            return st;
    }
    return 0;
}

static void mg_destroy(lsm_iiter_t *it)
{
    merge_iter_t *m = (merge_iter_t *)it;
    for (int i = 0; i < m->n; i++)
        lsm_iiter_destroy(m->kids[i]);
    free(m->kids);
    free(m);
}

static const lsm_iiter_ops_t merge_ops = {mg_valid, mg_seek_first, mg_seek_last, mg_seek,
                                          mg_next,  mg_prev,       mg_key,       mg_value,
                                          mg_status, mg_destroy};

lsm_iiter_t *lsm_merging_iter_new(lsm_iiter_t **children, int n)
{
    merge_iter_t *m = calloc(1, sizeof *m);
    lsm_iiter_t **kids = malloc(sizeof *kids * (size_t)(n ? n : 1));
    if (!m || !kids) {
        for (int i = 0; i < n; i++)
            lsm_iiter_destroy(children[i]);
        free(m);
        free(kids);
        return NULL;
    }
    memcpy(kids, children, sizeof *kids * (size_t)n);
    m->base.ops = &merge_ops;
    m->kids = kids;
    m->n = n;
    m->forward = true;
    return &m->base;
}
