/* memtable.c - see memtable.h. A put costs one arena allocation holding the skiplist node,
 * the internal key and the value together, so a lookup touches one or two cache lines per
 * node visited and no malloc happens per write. */
#include "engine/lsm/memtable.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/dbformat.h"

lsm_memtable_t *lsm_memtable_new(uint64_t wal_number, size_t write_buffer_size)
{
    lsm_memtable_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    /* 1/64 of the buffer per block, huge-page blocks once that reaches 1 MiB (see arena.c) */
    size_t block = write_buffer_size / 64;
    lsm_arena_init(&m->arena, block >= (1u << 20) ? LSM_ARENA_HUGE : block);
    if (lsm_skiplist_init(&m->list, &m->arena) != 0) {
        lsm_arena_free(&m->arena);
        free(m);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    atomic_init(&m->entries, 0);
    m->wal_number = wal_number;
    return m;
}

void lsm_memtable_ref(lsm_memtable_t *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void lsm_memtable_unref(lsm_memtable_t *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        lsm_arena_free(&m->arena);
        free(m);
    }
}

static lsm_sl_node_t *build(lsm_memtable_t *m, uint64_t seq, int type, lsm_slice_t key,
                            lsm_slice_t value)
{
    size_t klen = key.len + LSM_TRAILER;
    char *p;
    lsm_sl_node_t *n =
        lsm_skiplist_alloc(&m->list, klen + (size_t)lsm_varint_len(value.len) + value.len, &p);
    if (!n)
        return NULL;
    lsm_make_ikey(p, key.data, key.len, seq, type);
    n->key = p;
    n->klen = (uint32_t)klen;
    p = lsm_put_varint64(p + klen, value.len);
    if (value.len)
        memcpy(p, value.data, value.len);
    return n;
}

int lsm_memtable_add(lsm_memtable_t *m, uint64_t seq, int type, lsm_slice_t key, lsm_slice_t value)
{
    lsm_sl_node_t *n = build(m, seq, type, key, value);
    if (!n)
        return SHOAL_ENOMEM;
    lsm_skiplist_insert(&m->list, n);
    atomic_fetch_add_explicit(&m->entries, 1, memory_order_relaxed);
    return 0;
}

void lsm_memtable_add_staged(lsm_memtable_t *m, lsm_memtable_staged_t *st)
{
    lsm_skiplist_insert_many(&m->list, st->nodes, st->n);
    atomic_fetch_add_explicit(&m->entries, st->n, memory_order_relaxed);
    st->n = 0;
}

int lsm_memtable_stage(lsm_memtable_t *m, lsm_memtable_staged_t *st, uint64_t seq, int type,
                       lsm_slice_t key, lsm_slice_t value)
{
    lsm_sl_node_t *n = build(m, seq, type, key, value);
    if (!n)
        return SHOAL_ENOMEM;
    st->nodes[st->n++] = n;
    if (st->n == LSM_SKIPLIST_GROUP)
        lsm_memtable_add_staged(m, st);
    return 0;
}

static lsm_slice_t node_value(const lsm_sl_node_t *n)
{
    const char *p = n->key + n->klen;
    uint64_t vlen = 0;
    p = lsm_get_varint64(p, p + 10, &vlen); /* written by us: well formed */
    return lsm_slice(p, (size_t)vlen);
}

bool lsm_memtable_get(lsm_memtable_t *m, lsm_slice_t key, uint64_t seq, lsm_slice_t *value,
                      bool *deleted)
{
    char stackbuf[256];
    char *buf = key.len + LSM_TRAILER <= sizeof stackbuf ? stackbuf : malloc(key.len + 8);
    if (!buf)
        return false;
    lsm_slice_t ik = lsm_make_ikey(buf, key.data, key.len, seq, LSM_TYPE_SEEK);
    lsm_sl_node_t *n = lsm_skiplist_seek(&m->list, ik);
    if (buf != stackbuf)
        free(buf);
    if (!n)
        return false;
    lsm_slice_t nk = lsm_slice(n->key, n->klen);
    if (lsm_slice_cmp(lsm_ikey_user(nk), key) != 0)
        return false;
    *deleted = lsm_ikey_type(nk) == LSM_TYPE_DELETE;
    if (!*deleted)
        *value = node_value(n);
    return true;
}

size_t lsm_memtable_usage(const lsm_memtable_t *m)
{
    return lsm_arena_usage(&m->arena);
}

/* ---- iterator ---- */

typedef struct {
    lsm_iiter_t base;
    lsm_memtable_t *m;
    lsm_sl_node_t *node;
} mem_iter_t;

static bool mi_valid(lsm_iiter_t *it)
{
    return ((mem_iter_t *)it)->node != NULL;
}

static void mi_seek_first(lsm_iiter_t *it)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    mi->node = lsm_skiplist_first(&mi->m->list);
}

static void mi_seek_last(lsm_iiter_t *it)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    mi->node = lsm_skiplist_last(&mi->m->list);
}

static void mi_seek(lsm_iiter_t *it, lsm_slice_t k)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    mi->node = lsm_skiplist_seek(&mi->m->list, k);
}

static void mi_next(lsm_iiter_t *it)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    mi->node = lsm_skiplist_next(mi->node);
}

static void mi_prev(lsm_iiter_t *it)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    mi->node = lsm_skiplist_seek_lt(&mi->m->list, lsm_slice(mi->node->key, mi->node->klen));
}

static lsm_slice_t mi_key(lsm_iiter_t *it)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    return lsm_slice(mi->node->key, mi->node->klen);
}

static lsm_slice_t mi_value(lsm_iiter_t *it)
{
    return node_value(((mem_iter_t *)it)->node);
}

static int mi_status(lsm_iiter_t *it)
{
    return 0;
}

static void mi_destroy(lsm_iiter_t *it)
{
    mem_iter_t *mi = (mem_iter_t *)it;
    lsm_memtable_unref(mi->m);
    free(mi);
}

static const lsm_iiter_ops_t mem_iter_ops = {
    mi_valid, mi_seek_first, mi_seek_last, mi_seek,   mi_next,
    mi_prev,  mi_key,        mi_value,     mi_status, mi_destroy,
};

lsm_iiter_t *lsm_memtable_iter(lsm_memtable_t *m)
{
    mem_iter_t *mi = calloc(1, sizeof *mi);
    if (!mi)
        return NULL;
    mi->base.ops = &mem_iter_ops;
    mi->m = m;
    lsm_memtable_ref(m);
    return &mi->base;
}
