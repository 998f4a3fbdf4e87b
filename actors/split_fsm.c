/* split_fsm.c - a source shard's state machine applying a SPLIT (see split_fsm.h). Every
 * replica of the source applies it at the same index with the same command, so every
 * replica cuts the same keys and fences the same points. */
#include "actors/split_fsm.h"

#include <inttypes.h>
#include <stdio.h>

#include "actors/node_config.h"
#include "actors/split_cmd.h"
#include "engine/error.h"

static const split_dst_t *target_engine(const fsm_job_t *job, uint32_t target)
{
    for (size_t i = 0; i < job->n_splits; i++)
        if (job->splits[i].target == target)
            return &job->splits[i];
    return NULL;
}

Shoal__Status split_fsm_apply(uint32_t source, lsm_t *src, lsm_batch_t *batch,
                              const fsm_job_t *job, const Shoal__SplitCommand *c, uint64_t index,
                              split_fence_t **fence, int *io_rc)
{
    char err[256];
    split_t sp;
    if (split_cmd_check(c, source, index, &sp, err, sizeof err) != 0 || c->n_voters == 0 ||
        c->n_voters > NODE_MAX_NODES) {
        zsys_warning("fsm: %s", c->n_voters ? err : "SPLIT without voters refused");
        return SHOAL__STATUS__STATUS_BAD_REQUEST;
    }
    if (split_fence_has(*fence, c->target))
        return SHOAL__STATUS__STATUS_OK; /* a proposal retried after a leader change */
    const split_dst_t *dst = target_engine(job, c->target);
    if (!dst) { /* the node opens it before the job (split_node_attach): a bug, not input */
        zsys_error("fsm: shard %u: SPLIT at %" PRIu64 " without shard %u's engine", source,
                   index, c->target);
        *io_rc = SHOAL_EINVAL;
        return SHOAL__STATUS__STATUS_INTERNAL;
    }
    sp.voters = c->voters;
    sp.n_voters = c->n_voters;
    /* a target already running here (this replica replays the SPLIT after the split
     * closed without it) is filled by its own group: copying into it could only write
     * older data over what its group installed since */
    sp.skip_copy = dst->live;
    size_t moved = 0;
    int rc = split_apply(src, dst->lsm, &sp, batch, &moved, err, sizeof err);
    split_fence_t *nf = NULL;
    if (rc == 0 && (rc = split_fence_extend(*fence, &sp, c->map_version, batch, &nf)) != 0)
        snprintf(err, sizeof err, "SPLIT at %" PRIu64 ": fence: %s", index, shoal_strerror(rc));
    if (rc) {
        zsys_error("fsm: shard %u: %s", source, err);
        *io_rc = rc;
        return SHOAL__STATUS__STATUS_INTERNAL;
    }
    split_fence_destroy(fence);
    *fence = nf;
    zsys_info("fsm: shard %u: SPLIT at index %" PRIu64 ": %zu keys moved to shard %u (map "
              "version %" PRIu64 ")",
              source, index, moved, c->target, c->map_version);
    return SHOAL__STATUS__STATUS_OK;
}
