/* split_fence.c - the source's fence after a split (see split_fence.h).
 *
 * The fence keeps every point the source ever gave away, each with its target, next to
 * the points it keeps; together they are the source's points before its first split. A
 * ring of just those names, for any key the source owned once, the shard that owns it in
 * the cluster's ring (splits only divide point sets), so a second split of the source
 * still fences the keys of the first. */
#include "actors/split_fence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/le_bytes.h"
#include "engine/error.h"
#include "engine/ring.h"

#define FENCE_FORMAT 1
#define HEAD_BYTES (1 + 8 + 4 + 4)
#define MOVED_BYTES 12 /* u64 point, u32 target */

struct split_fence {
    uint32_t source;
    uint64_t version;
    uint64_t *keep;
    size_t n_keep;
    uint64_t *moved; /* grouped by target, in split order */
    uint32_t *target;
    size_t n_moved;
    ring_t *ring;
};

void split_fence_destroy(split_fence_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    split_fence_t *f = *self_p;
    ring_destroy(&f->ring);
    free(f->keep);
    free(f->moved);
    free(f->target);
    free(f);
    *self_p = NULL;
}

/* The ring of keep (source) and each target's run of moved points. */
static int build_ring(split_fence_t *f)
{
    f->ring = ring_new(1);
    int rc = f->ring ? ring_add_points(f->ring, f->source, f->keep, f->n_keep) : SHOAL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < f->n_moved;) {
        size_t j = i;
        while (j < f->n_moved && f->target[j] == f->target[i])
            j++;
        rc = ring_add_points(f->ring, f->target[i], f->moved + i, j - i);
        i = j;
    }
    return rc;
}

static split_fence_t *fence_new(uint32_t source, size_t n_keep, size_t n_moved)
{
    split_fence_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->source = source;
    f->keep = malloc((n_keep + 1) * sizeof *f->keep);
    f->moved = malloc((n_moved + 1) * sizeof *f->moved);
    f->target = malloc((n_moved + 1) * sizeof *f->target);
    if (!f->keep || !f->moved || !f->target)
        split_fence_destroy(&f);
    return f;
}

static split_fence_t *decode(uint32_t source, const uint8_t *v, size_t len)
{
    if (len < HEAD_BYTES || v[0] != FENCE_FORMAT)
        return NULL;
    size_t nk = (size_t)get_le(v + 9, 4), nm = (size_t)get_le(v + 13, 4);
    if (nk == 0 || nk > RING_MAX_VNODES || nm == 0 || nm > 16 * RING_MAX_VNODES ||
        len != HEAD_BYTES + nk * 8 + nm * MOVED_BYTES)
        return NULL;
    split_fence_t *f = fence_new(source, nk, nm);
    if (!f)
        return NULL;
    f->version = get_le(v + 1, 8);
    const uint8_t *p = v + HEAD_BYTES;
    for (size_t i = 0; i < nk; i++, p += 8)
        f->keep[i] = get_le(p, 8);
    for (size_t i = 0; i < nm; i++, p += MOVED_BYTES) {
        f->moved[i] = get_le(p, 8);
        f->target[i] = (uint32_t)get_le(p + 8, 4);
    }
    f->n_keep = nk;
    f->n_moved = nm;
    if (build_ring(f) != 0)
        split_fence_destroy(&f);
    return f;
}

int split_fence_load(lsm_t *lsm, uint32_t source, split_fence_t **out, char *err, size_t errlen)
{
    *out = NULL;
    void *v = NULL;
    size_t vl = 0;
    int rc = lsm_get(lsm, NULL, SPLIT_FENCE_KEY, strlen(SPLIT_FENCE_KEY), &v, &vl);
    if (rc == SHOAL_ENOTFOUND)
        return 0;
    if (rc == 0 && !(*out = decode(source, v, vl)))
        rc = SHOAL_ECORRUPT;
    free(v);
    if (rc)
        snprintf(err, errlen, "shard %u: %s (%zu bytes) does not decode: %s", source,
                 SPLIT_FENCE_KEY, vl, shoal_strerror(rc));
    return rc;
}

bool split_fence_has(const split_fence_t *f, uint32_t target)
{
    for (size_t i = 0; f && i < f->n_moved; i++)
        if (f->target[i] == target)
            return true;
    return false;
}

uint64_t split_fence_version(const split_fence_t *f)
{
    return f ? f->version : 0;
}

bool split_fence_key(const split_fence_t *f, const uint8_t *k, size_t len, uint32_t *to)
{
    if (!f)
        return false;
    uint32_t s = ring_shard_for(f->ring, k, len);
    if (s == f->source)
        return false;
    *to = s;
    return true;
}

bool split_fence_write(const split_fence_t *f, const Shoal__WriteCommand *cmd, uint32_t *to)
{
    switch (cmd->op_case) {
    case SHOAL__WRITE_COMMAND__OP_PUT: return split_fence_key(f, cmd->put->key.data, cmd->put->key.len, to);
    case SHOAL__WRITE_COMMAND__OP_DEL: return split_fence_key(f, cmd->del->key.data, cmd->del->key.len, to);
    case SHOAL__WRITE_COMMAND__OP_CAS: return split_fence_key(f, cmd->cas->key.data, cmd->cas->key.len, to);
    case SHOAL__WRITE_COMMAND__OP_BATCH:
        for (size_t i = 0; i < cmd->batch->n_ops; i++) {
            const Shoal__BatchOp *op = cmd->batch->ops[i];
            const ProtobufCBinaryData *k = op->op_case == SHOAL__BATCH_OP__OP_PUT   ? &op->put->key
                                           : op->op_case == SHOAL__BATCH_OP__OP_DEL ? &op->del->key
                                                                                    : NULL;
            if (k && split_fence_key(f, k->data, k->len, to))
                return true;
        }
        return false;
    default: return false;
    }
}

static uint8_t *encode(const split_fence_t *f, size_t *len)
{
    *len = HEAD_BYTES + f->n_keep * 8 + f->n_moved * MOVED_BYTES;
    uint8_t *v = malloc(*len), *p = v;
    if (!v)
        return NULL;
    p[0] = FENCE_FORMAT;
    put_le(p + 1, f->version, 8);
    put_le(p + 9, f->n_keep, 4);
    put_le(p + 13, f->n_moved, 4);
    p += HEAD_BYTES;
    for (size_t i = 0; i < f->n_keep; i++, p += 8)
        put_le(p, f->keep[i], 8);
    for (size_t i = 0; i < f->n_moved; i++, p += MOVED_BYTES) {
        put_le(p, f->moved[i], 8);
        put_le(p + 8, f->target[i], 4);
    }
    return v;
}

int split_fence_extend(const split_fence_t *f, const split_t *sp, uint64_t map_version,
                       lsm_batch_t *batch, split_fence_t **out)
{
    size_t old = f ? f->n_moved : 0;
    split_fence_t *n = fence_new(sp->source, sp->n_keep, old + sp->n_give);
    if (!n)
        return SHOAL_ENOMEM;
    n->version = map_version > split_fence_version(f) ? map_version : split_fence_version(f);
    memcpy(n->keep, sp->keep, sp->n_keep * sizeof *n->keep);
    n->n_keep = sp->n_keep;
    if (old) {
        memcpy(n->moved, f->moved, old * sizeof *n->moved);
        memcpy(n->target, f->target, old * sizeof *n->target);
    }
    for (size_t i = 0; i < sp->n_give; i++) {
        n->moved[old + i] = sp->give[i];
        n->target[old + i] = sp->target;
    }
    n->n_moved = old + sp->n_give;
    size_t len = 0;
    uint8_t *v = NULL;
    int rc = build_ring(n);
    if (rc == 0 && !(v = encode(n, &len)))
        rc = SHOAL_ENOMEM;
    if (rc == 0)
        rc = lsm_batch_put(batch, SPLIT_FENCE_KEY, strlen(SPLIT_FENCE_KEY), v, len);
    free(v);
    if (rc)
        split_fence_destroy(&n);
    *out = n;
    return rc;
}
