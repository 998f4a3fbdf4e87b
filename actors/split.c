/* split.c - the data cut of a shard split (see split.h). The target's copy goes through
 * ordinary batches and one synced write at the end rather than export/ingest: ingest
 * replaces a whole database, and the target here takes only part of the source. */
#include "actors/split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/le_bytes.h"
#include "actors/node_int.h"
#include "engine/error.h"

#define KEY_SPLIT "m/split"
#define KEY_SPLIT_CONF "m/splitconf" /* u32 count, u64 node ids, little-endian */
#define COPY_BATCH_BYTES (1u << 20) /* bounds the memory of a big cut */

ring_t *split_ring(const split_t *sp)
{
    ring_t *r = ring_new(1); /* vnodes unused: both sides have explicit points */
    if (r && (ring_add_points(r, sp->source, sp->keep, sp->n_keep) ||
              ring_add_points(r, sp->target, sp->give, sp->n_give)))
        ring_destroy(&r);
    return r;
}

#define RAFT_CONF_MAX 64 /* at most NODE_MAX_NODES voters */

static void marker(uint32_t source, uint64_t index, uint8_t out[12])
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(source >> (8 * i));
    for (int i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(index >> (8 * i));
}

bool split_done(lsm_t *dst, uint32_t source, uint64_t index)
{
    uint8_t want[12];
    marker(source, index, want);
    void *v = NULL;
    size_t vl = 0;
    bool done = lsm_get(dst, NULL, KEY_SPLIT, strlen(KEY_SPLIT), &v, &vl) == 0 &&
                vl == sizeof want && memcmp(v, want, sizeof want) == 0;
    free(v);
    return done;
}

bool split_target_conf(lsm_t *dst, uint64_t *voters, size_t cap, size_t *n_voters)
{
    void *v = NULL;
    size_t vl = 0;
    *n_voters = 0;
    if (lsm_get(dst, NULL, KEY_SPLIT_CONF, strlen(KEY_SPLIT_CONF), &v, &vl) != 0)
        return false;
    const uint8_t *p = v;
    size_t n = vl >= 4 ? (size_t)get_le(p, 4) : 0;
    bool ok = n > 0 && n <= cap && vl == 4 + 8 * n;
    for (size_t i = 0; ok && i < n; i++)
        voters[i] = get_le(p + 4 + 8 * i, 8);
    *n_voters = ok ? n : 0;
    free(v);
    return ok;
}

/* Iterates src's keys with first byte prefix; calls fn for each. */
typedef int (*visit_fn)(void *ctx, const uint8_t *k, size_t kl, const void *v, size_t vl);

static int each_key(lsm_t *src, uint8_t prefix, visit_fn fn, void *ctx)
{
    uint8_t lo = prefix, hi = (uint8_t)(prefix + 1);
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.lower_bound = &lo;
    ro.lower_len = 1;
    ro.upper_bound = &hi;
    ro.upper_len = 1;
    ro.fill_cache = false; /* a one-off full pass */
    lsm_iter_t *it = NULL;
    int rc = lsm_iter_new(src, &ro, &it);
    if (rc)
        return rc;
    for (lsm_iter_seek_to_first(it); rc == 0 && lsm_iter_valid(it); lsm_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = lsm_iter_key(it, &kl);
        const void *v = lsm_iter_value(it, &vl);
        rc = fn(ctx, k, kl, v, vl);
    }
    if (rc == 0)
        rc = lsm_iter_status(it);
    lsm_iter_destroy(&it);
    return rc;
}

typedef struct {
    const split_t *sp;
    const ring_t *ring;
    lsm_t *dst;
    lsm_batch_t *out;       /* the target's batch being filled (NULL: no copy) */
    lsm_batch_t *src_batch; /* the source's deletes (NULL: sessions pass) */
    size_t moved;
} cut_t;

static int spill(cut_t *c)
{
    if (!c->out || lsm_batch_size(c->out) < COPY_BATCH_BYTES)
        return 0;
    int rc = lsm_write(c->dst, NULL, c->out);
    lsm_batch_clear(c->out);
    return rc;
}

static int cut_data(void *ctx, const uint8_t *k, size_t kl, const void *v, size_t vl)
{
    cut_t *c = ctx;
    /* the user key follows the 'd' prefix; the ring hashes user keys */
    if (ring_shard_for(c->ring, k + 1, kl - 1) != c->sp->target)
        return 0;
    c->moved++;
    int rc = c->out ? lsm_batch_put(c->out, k, kl, v, vl) : 0;
    if (rc == 0)
        rc = lsm_batch_delete(c->src_batch, k, kl);
    return rc ? rc : spill(c);
}

static int copy_session(void *ctx, const uint8_t *k, size_t kl, const void *v, size_t vl)
{
    cut_t *c = ctx;
    int rc = lsm_batch_put(c->out, k, kl, v, vl);
    return rc ? rc : spill(c);
}

/* The last batch holds the marker and is synced: the WAL is appended in order, so every
 * earlier batch is durable with it. */
static int finish_copy(cut_t *c)
{
    uint8_t m[12];
    marker(c->sp->source, c->sp->index, m);
    int rc = lsm_batch_put(c->out, KEY_SPLIT, strlen(KEY_SPLIT), m, sizeof m);
    uint8_t conf[4 + 8 * RAFT_CONF_MAX];
    size_t nv = c->sp->n_voters < RAFT_CONF_MAX ? c->sp->n_voters : RAFT_CONF_MAX;
    put_le(conf, nv, 4);
    for (size_t i = 0; i < nv; i++)
        put_le(conf + 4 + 8 * i, c->sp->voters[i], 8);
    uint64_t base = SPLIT_TARGET_BASE; /* the fsm's applied index (native order, as it does) */
    if (rc == 0 && nv)
        rc = lsm_batch_put(c->out, KEY_SPLIT_CONF, strlen(KEY_SPLIT_CONF), conf, 4 + 8 * nv);
    if (rc == 0 && nv)
        rc = lsm_batch_put(c->out, KEY_APPLIED, strlen(KEY_APPLIED), &base, sizeof base);
    lsm_write_options_t wo = {.sync = true};
    return rc ? rc : lsm_write(c->dst, &wo, c->out);
}

int split_apply(lsm_t *src, lsm_t *dst, const split_t *sp, lsm_batch_t *src_batch, size_t *moved,
                char *err, size_t errlen)
{
    *moved = 0;
    ring_t *ring = split_ring(sp);
    if (!ring || sp->source == sp->target)
        return ring_destroy(&ring),
               snprintf(err, errlen, "split %u -> %u: bad ring points", sp->source, sp->target),
               SHOAL_EINVAL;
    bool again = sp->skip_copy || split_done(dst, sp->source, sp->index);
    cut_t c = {sp, ring, dst, again ? NULL : lsm_batch_new(), src_batch, 0};
    int rc = !again && !c.out ? SHOAL_ENOMEM : 0;
    if (rc == 0)
        rc = each_key(src, KEY_DATA, cut_data, &c);
    if (rc == 0 && c.out)
        rc = each_key(src, KEY_SESSION, copy_session, &c);
    if (rc == 0 && c.out)
        rc = finish_copy(&c);
    if (rc)
        snprintf(err, errlen, "split %u -> %u at %llu: %s", sp->source, sp->target,
                 (unsigned long long)sp->index, shoal_strerror(rc));
    *moved = c.moved;
    lsm_batch_destroy(&c.out);
    ring_destroy(&ring);
    return rc;
}
