/* fence.c - see fence.h. */
#include "engine/lsm/fence.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/lsm/block.h"
#include "engine/lsm/dbformat.h"

static uint64_t fence_of(const char *user, size_t ulen, size_t plen)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (plen + i < ulen ? (unsigned char)user[plen + i] : 0);
    return v;
}

/* Counts the entries and checks that each key is stored whole (shared == 0), so a key can
 * be used where it lies in the block. */
static size_t count_entries(const char *index, size_t len)
{
    lsm_block_iter_t it = {0};
    size_t n = 0;
    lsm_block_iter_init(&it, index, len);
    for (lsm_block_iter_seek_first(&it); lsm_block_iter_valid(&it); lsm_block_iter_next(&it)) {
        lsm_slice_t k = lsm_block_iter_key(&it);
        const char *at = it.value.data - k.len;
        if (at < index || memcmp(at, k.data, k.len) != 0) {
            n = 0;
            break;
        }
        n++;
    }
    if (it.status)
        n = 0;
    lsm_block_iter_free(&it);
    return n;
}

void lsm_fence_build(lsm_fence_t *f, const char *index, size_t len)
{
    memset(f, 0, sizeof *f);
    size_t n = count_entries(index, len);
    if (n == 0)
        return;
    f->fence = malloc(n * sizeof *f->fence);
    f->ent = malloc(n * sizeof *f->ent);
    if (!f->fence || !f->ent) {
        lsm_fence_free(f);
        return;
    }
    f->index = index;
    lsm_block_iter_t it = {0};
    size_t i = 0;
    lsm_block_iter_init(&it, index, len);
    for (lsm_block_iter_seek_first(&it); lsm_block_iter_valid(&it) && i < n;
         lsm_block_iter_next(&it), i++) {
        lsm_slice_t k = lsm_block_iter_key(&it), v = it.value;
        const char *p = lsm_get_varint64(v.data, v.data + v.len, &f->ent[i].off);
        if (!p || !lsm_get_varint64(p, v.data + v.len, &f->ent[i].size))
            break;
        f->ent[i].kpos = (uint32_t)(v.data - k.len - index);
        f->ent[i].klen = (uint32_t)k.len;
    }
    lsm_block_iter_free(&it);
    if (i != n) {
        lsm_fence_free(f);
        return;
    }
    /* Keys are sorted, so the prefix all of them share is that of the first and last. */
    lsm_slice_t a = lsm_ikey_user(lsm_slice(index + f->ent[0].kpos, f->ent[0].klen));
    lsm_slice_t b = lsm_ikey_user(lsm_slice(index + f->ent[n - 1].kpos, f->ent[n - 1].klen));
    size_t plen = 0;
    while (plen < a.len && plen < b.len && a.data[plen] == b.data[plen])
        plen++;
    f->prefix = a.data;
    f->plen = plen;
    for (i = 0; i < n; i++) {
        lsm_slice_t u = lsm_ikey_user(lsm_slice(index + f->ent[i].kpos, f->ent[i].klen));
        f->fence[i] = fence_of(u.data, u.len, plen);
    }
    f->n = n;
}

void lsm_fence_free(lsm_fence_t *f)
{
    free(f->fence);
    free(f->ent);
    memset(f, 0, sizeof *f);
}

long lsm_fence_find(const lsm_fence_t *f, lsm_slice_t ikey)
{
    lsm_slice_t u = lsm_ikey_user(ikey);
    if (f->n == 0 || u.len < f->plen || memcmp(u.data, f->prefix, f->plen) != 0)
        return -1;
    uint64_t want = fence_of(u.data, u.len, f->plen);
    size_t lo = 0, hi = f->n;
    while (lo < hi) { /* first entry whose key >= ikey */
        size_t mid = lo + (hi - lo) / 2;
        bool less = f->fence[mid] < want;
        if (f->fence[mid] == want) {
            const lsm_fence_ent_t *e = &f->ent[mid];
            less = lsm_ikey_cmp(lsm_slice(f->index + e->kpos, e->klen), ikey) < 0;
        }
        if (less)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo;
}
