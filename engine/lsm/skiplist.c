/* skiplist.c - see skiplist.h. Heights are drawn with branching 4 (a node reaches level
 * i+1 with probability 1/4), which keeps the expected search at about 4 log4(n) steps with
 * 1.33 pointers per node. */
#include "engine/lsm/skiplist.h"

#include <stddef.h>

#include "engine/lsm/dbformat.h"

static inline lsm_sl_node_t *next_at(const lsm_sl_node_t *n, int level)
{
    return atomic_load_explicit(&((lsm_sl_node_t *)n)->next[level], memory_order_acquire);
}

static inline int node_cmp(const lsm_sl_node_t *n, lsm_slice_t ikey)
{
    return lsm_ikey_cmp(lsm_slice(n->key, n->klen), ikey);
}

static lsm_sl_node_t *new_node(lsm_skiplist_t *sl, int height, size_t extra)
{
    size_t sz = sizeof(lsm_sl_node_t) + (size_t)height * sizeof(lsm_sl_node_t *);
    lsm_sl_node_t *n = lsm_arena_alloc(sl->arena, sz + extra);
    if (!n)
        return NULL;
    n->height = (uint32_t)height;
    n->key = NULL;
    n->klen = 0;
    for (int i = 0; i < height; i++)
        atomic_init(&n->next[i], NULL);
    return n;
}

int lsm_skiplist_init(lsm_skiplist_t *sl, lsm_arena_t *arena)
{
    sl->arena = arena;
    sl->rnd = 0x9E3779B97F4A7C15ull;
    atomic_init(&sl->height, 1);
    sl->head = new_node(sl, LSM_SKIPLIST_MAX_HEIGHT, 0);
    return sl->head ? 0 : -1;
}

static int random_height(lsm_skiplist_t *sl)
{
    sl->rnd ^= sl->rnd << 13;
    sl->rnd ^= sl->rnd >> 7;
    sl->rnd ^= sl->rnd << 17;
    uint64_t r = sl->rnd;
    int h = 1;
    while (h < LSM_SKIPLIST_MAX_HEIGHT && (r & 3) == 0) {
        h++;
        r >>= 2;
    }
    return h;
}

lsm_sl_node_t *lsm_skiplist_alloc(lsm_skiplist_t *sl, size_t extra, char **extra_p)
{
    int h = random_height(sl);
    lsm_sl_node_t *n = new_node(sl, h, extra);
    if (n)
        *extra_p = (char *)&n->next[h];
    return n;
}

/* Finds, per level, the last node < ikey (prev[]) and returns the first node >= ikey. */
static lsm_sl_node_t *find_ge(const lsm_skiplist_t *sl, lsm_slice_t ikey, lsm_sl_node_t **prev)
{
    lsm_sl_node_t *x = sl->head;
    int level = atomic_load_explicit(&((lsm_skiplist_t *)sl)->height, memory_order_relaxed) - 1;
    for (;;) {
        lsm_sl_node_t *nx = next_at(x, level);
        /* Start loading the node one level down while nx is compared: if the search goes
         * down there, its miss overlaps this one instead of following it. */
        if (level > 0)
            __builtin_prefetch(next_at(x, level - 1));
        if (nx && node_cmp(nx, ikey) < 0) {
            x = nx;
            continue;
        }
        if (prev)
            prev[level] = x;
        if (level == 0)
            return nx;
        level--;
    }
}

/* Links node after prev[i] at each of its levels. prev[i] was the last node < node's key
 * when it was searched; nodes inserted since may lie between, so each level walks on past
 * them (a few steps over nodes just written, in cache). Levels above the list's height at
 * search time start at the head. */
static void link_after(lsm_skiplist_t *sl, lsm_sl_node_t *node, lsm_sl_node_t **prev,
                       int searched_height)
{
    lsm_slice_t key = lsm_slice(node->key, node->klen);
    int h = (int)node->height, cur = atomic_load_explicit(&sl->height, memory_order_relaxed);
    for (int i = searched_height; i < h; i++)
        prev[i] = sl->head;
    if (h > cur) /* readers that see the old height just skip the new top levels */
        atomic_store_explicit(&sl->height, h, memory_order_relaxed);
    for (int i = 0; i < h; i++) {
        lsm_sl_node_t *p = prev[i], *q;
        while ((q = next_at(p, i)) && node_cmp(q, key) < 0)
            p = q;
        atomic_store_explicit(&node->next[i], q, memory_order_relaxed);
        atomic_store_explicit(&p->next[i], node, memory_order_release);
    }
}

void lsm_skiplist_insert(lsm_skiplist_t *sl, lsm_sl_node_t *node)
{
    lsm_sl_node_t *prev[LSM_SKIPLIST_MAX_HEIGHT];
    int height = atomic_load_explicit(&sl->height, memory_order_relaxed);
    find_ge(sl, lsm_slice(node->key, node->klen), prev);
    link_after(sl, node, prev, height);
}

static void insert_group(lsm_skiplist_t *sl, lsm_sl_node_t *const *nodes, size_t k)
{
    lsm_sl_node_t *prev[LSM_SKIPLIST_GROUP][LSM_SKIPLIST_MAX_HEIGHT], *x[LSM_SKIPLIST_GROUP];
    int level[LSM_SKIPLIST_GROUP];
    int height = atomic_load_explicit(&sl->height, memory_order_relaxed);
    for (size_t i = 0; i < k; i++) {
        x[i] = sl->head;
        level[i] = height - 1;
    }
    for (size_t active = k; active;) {
        active = 0;
        for (size_t i = 0; i < k; i++) {
            if (level[i] < 0)
                continue;
            lsm_sl_node_t *nx = next_at(x[i], level[i]);
            if (nx && node_cmp(nx, lsm_slice(nodes[i]->key, nodes[i]->klen)) < 0) {
                x[i] = nx;
            } else {
                prev[i][level[i]] = x[i];
                if (--level[i] < 0)
                    continue;
            }
            /* the node this search compares next: loading while the others take a step */
            __builtin_prefetch(next_at(x[i], level[i]));
            active++;
        }
    }
    for (size_t i = 0; i < k; i++)
        link_after(sl, nodes[i], prev[i], height);
}

void lsm_skiplist_insert_many(lsm_skiplist_t *sl, lsm_sl_node_t *const *nodes, size_t n)
{
    for (size_t at = 0; at < n; at += LSM_SKIPLIST_GROUP)
        insert_group(sl, nodes + at, n - at < LSM_SKIPLIST_GROUP ? n - at : LSM_SKIPLIST_GROUP);
}

lsm_sl_node_t *lsm_skiplist_seek(const lsm_skiplist_t *sl, lsm_slice_t ikey)
{
    return find_ge(sl, ikey, NULL);
}

lsm_sl_node_t *lsm_skiplist_seek_lt(const lsm_skiplist_t *sl, lsm_slice_t ikey)
{
    lsm_sl_node_t *x = sl->head;
    int level = atomic_load_explicit(&((lsm_skiplist_t *)sl)->height, memory_order_relaxed) - 1;
    for (;;) {
        lsm_sl_node_t *nx = next_at(x, level);
        if (nx && node_cmp(nx, ikey) < 0) {
            x = nx;
        } else if (level == 0) {
            return x == sl->head ? NULL : x;
        } else {
            level--;
        }
    }
}

lsm_sl_node_t *lsm_skiplist_first(const lsm_skiplist_t *sl)
{
    return next_at(sl->head, 0);
}

lsm_sl_node_t *lsm_skiplist_last(const lsm_skiplist_t *sl)
{
    lsm_sl_node_t *x = sl->head;
    int level = atomic_load_explicit(&((lsm_skiplist_t *)sl)->height, memory_order_relaxed) - 1;
    for (;;) {
        lsm_sl_node_t *nx = next_at(x, level);
        if (nx)
            x = nx;
        else if (level == 0)
            return x == sl->head ? NULL : x;
        else
            level--;
    }
}
