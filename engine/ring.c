/* ring.c - consistent-hash ring with virtual nodes; see ring.h for the mapping rules.
 *
 * The ring is a sorted array of (hash, shard) points searched by binary search: lookups
 * are O(log points) with no allocation, and membership changes (rare: adding a shard,
 * which also rewrites the shard map) rebuild the array. */
#include "engine/ring.h"

#include <stdlib.h>
#include <string.h>

#include "engine/checksum.h"
#include "engine/error.h"

typedef struct {
    uint64_t hash;
    uint32_t shard;
} ring_pt_t;

struct ring_t {
    uint32_t vnodes;
    ring_pt_t *pts; /* sorted by (hash, shard) */
    size_t n_pts;
    size_t n_shards;
};

ring_t *ring_new(uint32_t vnodes)
{
    if (vnodes == 0 || vnodes > RING_MAX_VNODES)
        return NULL;
    ring_t *self = calloc(1, sizeof *self);
    if (self)
        self->vnodes = vnodes;
    return self;
}

void ring_destroy(ring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->pts);
    free(*self_p);
    *self_p = NULL;
}

uint64_t ring_point(uint32_t shard, uint32_t i)
{
    uint8_t b[8];
    for (int k = 0; k < 4; k++) {
        b[k] = (uint8_t)(shard >> (8 * k));
        b[4 + k] = (uint8_t)(i >> (8 * k));
    }
    return shoal_hash64(b, sizeof b);
}

uint64_t ring_key_hash(const void *key, size_t len)
{
    return shoal_hash64(key, len);
}

static int pt_cmp(const void *a, const void *b)
{
    const ring_pt_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->shard < y->shard ? -1 : x->shard > y->shard;
}

int ring_has_shard(const ring_t *self, uint32_t shard)
{
    /* a scan, not a lookup of point 0: a split shard owns an explicit set of points that
     * need not include its derived point 0 (membership changes are rare) */
    for (size_t i = 0; i < self->n_pts; i++)
        if (self->pts[i].shard == shard)
            return 1;
    return 0;
}

/* Appends n points of shard and re-sorts; the caller checked shard is absent. */
static int add_points(ring_t *self, uint32_t shard, const uint64_t *hashes, uint32_t first,
                      size_t n)
{
    ring_pt_t *pts = realloc(self->pts, (self->n_pts + n) * sizeof *pts);
    if (!pts)
        return SHOAL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        pts[self->n_pts + i] =
            (ring_pt_t){hashes ? hashes[i] : ring_point(shard, first + (uint32_t)i), shard};
    self->pts = pts;
    self->n_pts += n;
    self->n_shards++;
    qsort(self->pts, self->n_pts, sizeof *pts, pt_cmp);
    return SHOAL_OK;
}

int ring_add_shard(ring_t *self, uint32_t shard)
{
    if (shard == RING_NO_SHARD)
        return SHOAL_EINVAL;
    if (ring_has_shard(self, shard))
        return SHOAL_EEXIST;
    return add_points(self, shard, NULL, 0, self->vnodes);
}

int ring_add_points(ring_t *self, uint32_t shard, const uint64_t *hashes, size_t n)
{
    if (shard == RING_NO_SHARD || n == 0 || n > RING_MAX_VNODES || !hashes)
        return SHOAL_EINVAL;
    if (ring_has_shard(self, shard))
        return SHOAL_EEXIST;
    return add_points(self, shard, hashes, 0, n);
}

int ring_remove_shard(ring_t *self, uint32_t shard)
{
    if (!ring_has_shard(self, shard))
        return SHOAL_ENOTFOUND;
    size_t w = 0;
    for (size_t r = 0; r < self->n_pts; r++)
        if (self->pts[r].shard != shard)
            self->pts[w++] = self->pts[r];
    self->n_pts = w;
    self->n_shards--;
    return SHOAL_OK;
}

uint32_t ring_shard_for_hash(const ring_t *self, uint64_t hash)
{
    if (self->n_pts == 0)
        return RING_NO_SHARD;
    /* First point with point.hash >= hash; past the last point wraps to the first. */
    size_t lo = 0, hi = self->n_pts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->pts[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return self->pts[lo == self->n_pts ? 0 : lo].shard;
}

uint32_t ring_shard_for(const ring_t *self, const void *key, size_t len)
{
    return ring_shard_for_hash(self, ring_key_hash(key, len));
}

size_t ring_shard_count(const ring_t *self)
{
    return self->n_shards;
}

uint32_t ring_vnodes(const ring_t *self)
{
    return self->vnodes;
}
