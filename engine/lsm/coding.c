/* coding.c - the growable buffer of coding.h; the rest of coding.h is inline. */
#include "engine/lsm/coding.h"

#include <stdlib.h>

#include "engine/error.h"

int lsm_buf_reserve(lsm_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return SHOAL_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int lsm_buf_append(lsm_buf_t *b, const void *p, size_t n)
{
    int rc = lsm_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int lsm_buf_append_varint(lsm_buf_t *b, uint64_t v)
{
    int rc = lsm_buf_reserve(b, 10);
    if (rc)
        return rc;
    b->len = (size_t)(lsm_put_varint64(b->data + b->len, v) - b->data);
    return 0;
}

int lsm_buf_append_fixed32(lsm_buf_t *b, uint32_t v)
{
    char t[4];
    lsm_put_fixed32(t, v);
    return lsm_buf_append(b, t, 4);
}

int lsm_buf_append_fixed64(lsm_buf_t *b, uint64_t v)
{
    char t[8];
    lsm_put_fixed64(t, v);
    return lsm_buf_append(b, t, 8);
}

int lsm_buf_append_lenprefixed(lsm_buf_t *b, const void *p, size_t n)
{
    int rc = lsm_buf_append_varint(b, n);
    return rc ? rc : lsm_buf_append(b, p, n);
}

void lsm_buf_free(lsm_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
