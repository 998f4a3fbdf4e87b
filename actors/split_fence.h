/* split_fence.h - a source shard's fence after it split (docs/ARCHITECTURE.md, "Adding a
 * shard"): which of the keys it once owned now belong to a shard split from it. The source
 * refuses writes (in apply) and gets of those keys, and scans routed with a map older than
 * its last split, with STATUS_UNAVAILABLE and the new owner in ClientResponse.shard; the
 * broker retries them on the newer map (broker/route.c).
 *
 * Kept in the source's engine under "m/fence", written in the same batch as the SPLIT's
 * deletes, so the fence and the cut data are durable together (FORMATS.md). */
#ifndef SHOAL_ACTORS_SPLIT_FENCE_H
#define SHOAL_ACTORS_SPLIT_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/split.h"
#include "engine/lsm/lsm.h"
#include "proto/client.pb-c.h"

#define SPLIT_FENCE_KEY "m/fence"

typedef struct split_fence split_fence_t;

/* The source's fence from its engine: *out NULL (and 0) when it never split; SHOAL_ECORRUPT
 * with one line in err when the stored value does not decode. */
int split_fence_load(lsm_t *lsm, uint32_t source, split_fence_t **out, char *err, size_t errlen);
void split_fence_destroy(split_fence_t **self_p);

/* Whether the fence already holds the split to target (a SPLIT applied twice is a no-op). */
bool split_fence_has(const split_fence_t *f, uint32_t target);
/* The map version of the newest split: scans routed with an older map are refused. */
uint64_t split_fence_version(const split_fence_t *f);
/* true (and *to = the shard that owns it now) when user key k moved away. */
bool split_fence_key(const split_fence_t *f, const uint8_t *k, size_t len, uint32_t *to);
/* true when any key cmd writes moved away (a batch whole), *to = one new owner. */
bool split_fence_write(const split_fence_t *f, const Shoal__WriteCommand *cmd, uint32_t *to);

/* The fence f (NULL: none yet) extended by split sp at map_version, as a new fence in
 * *out, with its stored form put into batch (the batch that carries the SPLIT's deletes).
 * 0 or a SHOAL_E* code. */
int split_fence_extend(const split_fence_t *f, const split_t *sp, uint64_t map_version,
                       lsm_batch_t *batch, split_fence_t **out);

#endif
