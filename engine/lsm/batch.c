/* batch.c - lsm_batch_t (lsm.h) and the batch decoder of batch.h. */
#include "engine/lsm/batch.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/dbformat.h"

lsm_batch_t *lsm_batch_new(void)
{
    lsm_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    lsm_batch_clear(b);
    if (!b->rep.data) {
        free(b);
        return NULL;
    }
    return b;
}

void lsm_batch_clear(lsm_batch_t *b)
{
    b->rep.len = 0;
    b->count = 0;
    if (lsm_buf_reserve(&b->rep, 256) == 0) {
        memset(b->rep.data, 0, LSM_BATCH_HEADER);
        b->rep.len = LSM_BATCH_HEADER;
    }
}

static int add_op(lsm_batch_t *b, int type, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    if (b->rep.len < LSM_BATCH_HEADER)
        return SHOAL_ENOMEM; /* clear() failed to allocate */
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return SHOAL_ETOOLARGE;
    size_t old = b->rep.len;
    int rc = lsm_buf_reserve(&b->rep, 21 + klen + vlen);
    if (rc)
        return rc;
    b->rep.data[b->rep.len++] = (char)type;
    rc = lsm_buf_append_lenprefixed(&b->rep, key, klen);
    if (!rc && type == LSM_TYPE_VALUE)
        rc = lsm_buf_append_lenprefixed(&b->rep, val, vlen);
    if (rc) {
        b->rep.len = old;
        return rc;
    }
    b->count++;
    lsm_put_fixed32(b->rep.data + 8, b->count);
    return 0;
}

int lsm_batch_put(lsm_batch_t *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    return add_op(b, LSM_TYPE_VALUE, key, klen, val, vlen);
}

int lsm_batch_delete(lsm_batch_t *b, const void *key, size_t klen)
{
    return add_op(b, LSM_TYPE_DELETE, key, klen, NULL, 0);
}

uint32_t lsm_batch_count(const lsm_batch_t *b)
{
    return b->count;
}

size_t lsm_batch_size(const lsm_batch_t *b)
{
    return b->rep.len;
}

void lsm_batch_destroy(lsm_batch_t **b_p)
{
    if (!b_p || !*b_p)
        return;
    lsm_buf_free(&(*b_p)->rep);
    free(*b_p);
    *b_p = NULL;
}

int lsm_batch_iterate(lsm_slice_t rep, lsm_batch_fn fn, void *arg)
{
    if (rep.len < LSM_BATCH_HEADER)
        return SHOAL_ECORRUPT;
    uint64_t seq = lsm_batch_rep_seq(rep);
    uint32_t count = lsm_batch_rep_count(rep), seen = 0;
    const char *p = rep.data + LSM_BATCH_HEADER, *end = rep.data + rep.len;
    while (p < end) {
        int type = (unsigned char)*p++;
        lsm_slice_t key, val = lsm_slice("", 0);
        if (type > LSM_TYPE_VALUE || !(p = lsm_get_lenprefixed(p, end, &key)))
            return SHOAL_ECORRUPT;
        if (type == LSM_TYPE_VALUE && !(p = lsm_get_lenprefixed(p, end, &val)))
            return SHOAL_ECORRUPT;
        if (seen >= count || seq + seen > LSM_MAX_SEQ)
            return SHOAL_ECORRUPT;
        int rc = fn ? fn(arg, seq + seen, type, key, val) : 0;
        if (rc)
            return rc;
        seen++;
    }
    return seen == count ? 0 : SHOAL_ECORRUPT;
}

int lsm_batch_check(lsm_slice_t rep)
{
    return lsm_batch_iterate(rep, NULL, NULL);
}
