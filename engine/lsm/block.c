/* block.c - see block.h. The iterator keeps the current key in a reusable buffer (prefix
 * compression means a key is only whole after decoding) and points the value straight into
 * the block: a scan copies only the unshared key bytes. */
#include "engine/lsm/block.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/dbformat.h"

void lsm_block_builder_init(lsm_block_builder_t *b, int restart_interval)
{
    memset(b, 0, sizeof *b);
    b->interval = restart_interval > 0 ? restart_interval : 16;
}

static int push_restart(lsm_block_builder_t *b, uint32_t off)
{
    if (b->nrestarts == b->cap_restarts) {
        size_t cap = b->cap_restarts ? b->cap_restarts * 2 : 64;
        uint32_t *r = realloc(b->restarts, cap * sizeof *r);
        if (!r)
            return SHOAL_ENOMEM;
        b->restarts = r;
        b->cap_restarts = cap;
    }
    b->restarts[b->nrestarts++] = off;
    return 0;
}

int lsm_block_builder_add(lsm_block_builder_t *b, lsm_slice_t key, lsm_slice_t value)
{
    size_t shared = 0;
    if (b->counter < b->interval && b->entries > 0) {
        size_t n = key.len < b->last_key.len ? key.len : b->last_key.len;
        while (shared < n && key.data[shared] == b->last_key.data[shared])
            shared++;
    } else {
        int rc = push_restart(b, (uint32_t)b->buf.len);
        if (rc)
            return rc;
        b->counter = 0;
    }
    size_t unshared = key.len - shared;
    int rc = lsm_buf_reserve(&b->buf, 30 + unshared + value.len);
    if (rc)
        return rc;
    char *p = b->buf.data + b->buf.len;
    p = lsm_put_varint64(p, shared);
    p = lsm_put_varint64(p, unshared);
    p = lsm_put_varint64(p, value.len);
    memcpy(p, key.data + shared, unshared);
    p += unshared;
    if (value.len)
        memcpy(p, value.data, value.len);
    p += value.len;
    b->buf.len = (size_t)(p - b->buf.data);
    b->last_key.len = shared;
    rc = lsm_buf_append(&b->last_key, key.data + shared, unshared);
    b->counter++;
    b->entries++;
    return rc;
}

int lsm_block_builder_finish(lsm_block_builder_t *b, lsm_slice_t *out)
{
    if (b->nrestarts == 0 && push_restart(b, 0))
        return SHOAL_ENOMEM;
    for (size_t i = 0; i < b->nrestarts; i++)
        if (lsm_buf_append_fixed32(&b->buf, b->restarts[i]))
            return SHOAL_ENOMEM;
    if (lsm_buf_append_fixed32(&b->buf, (uint32_t)b->nrestarts))
        return SHOAL_ENOMEM;
    *out = lsm_slice(b->buf.data, b->buf.len);
    return 0;
}

size_t lsm_block_builder_size(const lsm_block_builder_t *b)
{
    return b->buf.len + (b->nrestarts + 1) * 4;
}

void lsm_block_builder_reset(lsm_block_builder_t *b)
{
    b->buf.len = 0;
    b->nrestarts = 0;
    b->counter = 0;
    b->last_key.len = 0;
    b->entries = 0;
}

void lsm_block_builder_free(lsm_block_builder_t *b)
{
    lsm_buf_free(&b->buf);
    lsm_buf_free(&b->last_key);
    free(b->restarts);
    memset(b, 0, sizeof *b);
}

/* ---- iterator ---- */

static void corrupt(lsm_block_iter_t *it)
{
    it->status = SHOAL_ECORRUPT;
    it->cur = it->next = it->restarts;
    it->key.len = 0;
}

/* Appends to the current key, moving it off the inline buffer when it outgrows it. Once
 * per entry of every scan: the room check is inline (the call into lsm_buf_append was 5%
 * of a compressed readseq's instructions). */
static inline int key_append(lsm_block_iter_t *it, const char *p, size_t n)
{
    lsm_buf_t *k = &it->key;
    if (k->cap - k->len >= n) {
        memcpy(k->data + k->len, p, n);
        k->len += n;
        return 0;
    }
    if (k->data == it->inline_key) {
        size_t cap = k->len + n > 256 ? k->len + n : 256;
        char *d = malloc(cap);
        if (!d)
            return SHOAL_ENOMEM;
        memcpy(d, k->data, k->len);
        k->data = d;
        k->cap = cap;
    }
    return lsm_buf_append(k, p, n);
}

void lsm_block_iter_init(lsm_block_iter_t *it, const char *data, size_t len)
{
    lsm_buf_t key = it->key;
    if (!key.data) {
        key.data = it->inline_key;
        key.cap = sizeof it->inline_key;
    }
    it->restarts = it->nrestarts = it->cur = it->next = it->restart_idx = 0;
    it->status = 0;
    it->value = lsm_slice("", 0);
    it->key = key;
    it->key.len = 0;
    it->data = data;
    if (len < 4 || len > UINT32_MAX) {
        corrupt(it);
        return;
    }
    uint32_t n = lsm_get_fixed32(data + len - 4);
    if (n == 0 || n > (len - 4) / 4) {
        corrupt(it);
        return;
    }
    it->nrestarts = n;
    it->restarts = (uint32_t)(len - 4 - 4 * (size_t)n);
    it->cur = it->next = it->restarts;
}

void lsm_block_iter_free(lsm_block_iter_t *it)
{
    if (it->key.data != it->inline_key)
        lsm_buf_free(&it->key);
    it->key.data = NULL;
    it->key.len = it->key.cap = 0;
}

static uint32_t restart_at(const lsm_block_iter_t *it, uint32_t i)
{
    return lsm_get_fixed32(it->data + it->restarts + 4 * (size_t)i);
}

/* Decodes the entry at it->next into key/value; false (and corrupt) if malformed. */
static bool decode_next(lsm_block_iter_t *it)
{
    const char *p = it->data + it->next, *end = it->data + it->restarts;
    uint32_t shared, unshared, vlen;
    it->cur = it->next;
    if (it->cur >= it->restarts) {
        it->cur = it->next = it->restarts;
        return false;
    }
    if (!(p = lsm_get_varint32(p, end, &shared)) || !(p = lsm_get_varint32(p, end, &unshared)) ||
        !(p = lsm_get_varint32(p, end, &vlen)) || shared > it->key.len ||
        (size_t)(end - p) < (size_t)unshared + vlen) {
        corrupt(it);
        return false;
    }
    it->key.len = shared;
    if (key_append(it, p, unshared) || it->key.len < LSM_TRAILER) {
        corrupt(it);
        return false;
    }
    it->value = lsm_slice(p + unshared, vlen);
    it->next = (uint32_t)(p + unshared + vlen - it->data);
    while (it->restart_idx + 1 < it->nrestarts && restart_at(it, it->restart_idx + 1) <= it->cur)
        it->restart_idx++;
    return true;
}

static bool seek_restart(lsm_block_iter_t *it, uint32_t idx)
{
    uint32_t off = restart_at(it, idx);
    if (off >= it->restarts) {
        corrupt(it);
        return false;
    }
    it->key.len = 0;
    it->restart_idx = idx;
    it->next = off;
    return true;
}

void lsm_block_iter_seek_first(lsm_block_iter_t *it)
{
    if (it->status)
        return;
    if (seek_restart(it, 0))
        decode_next(it);
}

void lsm_block_iter_next(lsm_block_iter_t *it)
{
    decode_next(it);
}

void lsm_block_iter_seek_last(lsm_block_iter_t *it)
{
    if (it->status || !seek_restart(it, it->nrestarts - 1))
        return;
    while (decode_next(it) && it->next < it->restarts) {
    }
}

void lsm_block_iter_prev(lsm_block_iter_t *it)
{
    uint32_t target = it->cur;
    uint32_t idx = it->restart_idx;
    while (idx > 0 && restart_at(it, idx) >= target)
        idx--;
    if (restart_at(it, idx) >= target) { /* cur was the first entry */
        it->cur = it->next = it->restarts;
        return;
    }
    if (!seek_restart(it, idx))
        return;
    while (decode_next(it) && it->next < target) {
    }
}

/* Key at restart point i (shared must be 0 there); false if malformed. */
static bool restart_key(lsm_block_iter_t *it, uint32_t i, lsm_slice_t *key)
{
    uint32_t off = restart_at(it, i), shared, unshared, vlen;
    const char *end = it->data + it->restarts, *p = it->data + off;
    if (off >= it->restarts || !(p = lsm_get_varint32(p, end, &shared)) ||
        !(p = lsm_get_varint32(p, end, &unshared)) || !(p = lsm_get_varint32(p, end, &vlen)) ||
        shared != 0 || (size_t)(end - p) < unshared || unshared < LSM_TRAILER)
        return false;
    *key = lsm_slice(p, unshared);
    return true;
}

void lsm_block_iter_seek(lsm_block_iter_t *it, lsm_slice_t ikey)
{
    if (it->status)
        return;
    uint32_t lo = 0, hi = it->nrestarts - 1;
    while (lo < hi) { /* last restart whose key < ikey */
        uint32_t mid = (lo + hi + 1) / 2;
        lsm_slice_t k;
        if (!restart_key(it, mid, &k)) {
            corrupt(it);
            return;
        }
        if (lsm_ikey_cmp(k, ikey) < 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (!seek_restart(it, lo))
        return;
    while (decode_next(it))
        if (lsm_ikey_cmp(lsm_block_iter_key(it), ikey) >= 0)
            return;
}
