/* split.h - the data side of add-shard by split (docs/ARCHITECTURE.md, "Adding a shard"):
 * what every replica of a source shard does when it applies the SPLIT command at one log
 * index, so every replica cuts the same data. Pure engine work (no node, no sockets): the
 * caller owns both engines and the source's apply batch.
 *
 * Wired by split_fsm.c (the fsm applying a SPLIT) and split_node.c (the node opening the
 * target's engine and starting its group). */
#ifndef SHOAL_ACTORS_SPLIT_H
#define SHOAL_ACTORS_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/lsm/lsm.h"
#include "engine/ring.h"

/* A split as the source's log carries it. */
typedef struct {
    uint32_t source, target;
    const uint64_t *keep; /* the source's ring points after the split */
    size_t n_keep;
    const uint64_t *give; /* the target's ring points */
    size_t n_give;
    uint64_t index; /* the SPLIT entry's index in the source's log */
    const uint64_t *voters; /* the target group's first configuration (node ids) */
    size_t n_voters;
    bool skip_copy; /* the target runs here already (filled by its leader): deletes only */
} split_t;

/* The target's log starts after this index: its copied data is a snapshot at index 1, so a
 * replica that joins without that data (a move, or a source replica that skipped the SPLIT
 * by installing a snapshot) gets a Raft snapshot instead of entries from index 1. */
#define SPLIT_TARGET_BASE 1

/* A ring of just the source's kept points and the target's points. For a key the source
 * owned before the split it names the same owner as the cluster's ring (test_ring), so a
 * source replica decides which keys moved (and which requests to refuse afterwards) from
 * the command alone. NULL on bad points or no memory. */
ring_t *split_ring(const split_t *sp);

/* Copies into dst every data key of src that the split gives to the target, every client
 * session (a write retried on the target after the split must not apply twice) and a
 * marker naming (source, index), the target's first configuration (voters) and its
 * applied index SPLIT_TARGET_BASE, and makes dst durable (synced) before returning; then
 * queues the deletes of the moved data keys into src_batch, which the caller commits with
 * the source's applied index. So the target's data is durable before the source's applied
 * index passes the SPLIT. If dst already holds this split's marker (the source applies the
 * SPLIT again after a crash lost its applied index), the copy is skipped: the target may
 * have taken writes since. Likewise with sp->skip_copy. 0, or a SHOAL_E* code with one line in err; *moved = the number
 * of data keys moved. */
int split_apply(lsm_t *src, lsm_t *dst, const split_t *sp, lsm_batch_t *src_batch, size_t *moved,
                char *err, size_t errlen);

/* true when dst holds the marker of split (source, index). */
bool split_done(lsm_t *dst, uint32_t source, uint64_t index);

/* When dst holds a split's data (any marker): true, with the target group's first
 * configuration (node ids, at most cap) in voters/n_voters. */
bool split_target_conf(lsm_t *dst, uint64_t *voters, size_t cap, size_t *n_voters);

#endif
