/* ring.h - the consistent-hash ring that maps keys to shards.
 *
 * Each shard owns `vnodes` points on a 64-bit ring; point i of shard s is
 * ring_point(s, i) = XXH3-64 of the 8 bytes (s as little-endian u32, i as little-endian
 * u32). A key hashes to XXH3-64(key) and belongs to the shard of the first point at or
 * after that hash, wrapping at the top. Every broker and node computes the same mapping
 * from (shard ids, vnodes) alone, so nothing but the shard map needs to be shared.
 *
 * A shard that was split owns an explicit set of points instead (ring_add_points): the
 * source keeps half of its points and the new shard takes the other half, so only the
 * source's keys move.
 *
 * Invariants: points are kept sorted by (hash, shard) so ties break the same way
 * everywhere; adding a shard moves only keys to the new shard, removing one moves only
 * its keys. Pure C, no I/O, no locks: callers own synchronisation. */
#ifndef SHOAL_RING_H
#define SHOAL_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_NO_SHARD UINT32_MAX
#define RING_MAX_VNODES 4096

typedef struct ring_t ring_t;

/* A new, empty ring whose shards get vnodes points each (1..RING_MAX_VNODES); NULL if
 * vnodes is out of range or memory is short. */
ring_t *ring_new(uint32_t vnodes);
void ring_destroy(ring_t **self_p);

/* Adds shard's points. SHOAL_EEXIST if it is already on the ring, SHOAL_EINVAL for
 * RING_NO_SHARD, SHOAL_ENOMEM. */
int ring_add_shard(ring_t *self, uint32_t shard);
/* Adds shard with an explicit set of n points (1..RING_MAX_VNODES) instead of its derived
 * ones: the shards on both sides of a split (shard map ShardInfo.points). SHOAL_EEXIST if
 * the shard is already on the ring, SHOAL_EINVAL for RING_NO_SHARD or a bad count. */
int ring_add_points(ring_t *self, uint32_t shard, const uint64_t *hashes, size_t n);
/* Removes shard's points; SHOAL_ENOTFOUND if absent. */
int ring_remove_shard(ring_t *self, uint32_t shard);

/* The shard that owns key, or RING_NO_SHARD when the ring is empty. */
uint32_t ring_shard_for(const ring_t *self, const void *key, size_t len);
/* The shard that owns a raw 64-bit hash position (for tests and tools). */
uint32_t ring_shard_for_hash(const ring_t *self, uint64_t hash);

size_t ring_shard_count(const ring_t *self);
uint32_t ring_vnodes(const ring_t *self);
int ring_has_shard(const ring_t *self, uint32_t shard);

uint64_t ring_point(uint32_t shard, uint32_t i);
uint64_t ring_key_hash(const void *key, size_t len);

#endif
