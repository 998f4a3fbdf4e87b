/* split_fsm.h - the state machine applying a SPLIT command to a source shard (called by
 * fsm_actor.c on the source's fsm actor; the target's engine came with the job). */
#ifndef SHOAL_ACTORS_SPLIT_FSM_H
#define SHOAL_ACTORS_SPLIT_FSM_H

#include "actors/node_int.h"
#include "actors/split_fence.h"

/* Applies c, the entry at index of source's log: checks it (refused whole:
 * STATUS_BAD_REQUEST, nothing changed), skips a split the fence already holds, else cuts
 * the data (split_apply: the target synced first) and queues the deletes and the new
 * fence into batch, replacing *fence. The source's earlier entries must be written
 * already (the cut reads the engine). An engine failure sets *io_rc (the node stops and
 * applies the entry again at its restart). */
Shoal__Status split_fsm_apply(uint32_t source, lsm_t *src, lsm_batch_t *batch,
                              const fsm_job_t *job, const Shoal__SplitCommand *c, uint64_t index,
                              split_fence_t **fence, int *io_rc);

#endif
