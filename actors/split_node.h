/* split_node.h - the node's side of add-shard by split (docs/ARCHITECTURE.md, "Adding a
 * shard"): small hooks the node runtime calls, so the split lives in one place.
 *
 *  - the source's leader proposes the SPLIT while its map shows a shard splitting from it
 *    and this node has not applied it (again after a leader change or 2 s: applying it
 *    twice is a no-op, split_fsm.c);
 *  - before an APPLY job of the source holding a SPLIT goes to the fsm, the target's
 *    engine is opened here (a "pending" engine, not a replica yet) and handed to the job;
 *  - when that job is done (the target's data synced), the target's replica starts from
 *    that engine with the configuration the SPLIT named, its log based at a snapshot at
 *    index SPLIT_TARGET_BASE (split.h);
 *  - a node placed in a splitting shard whose engine holds no split data waits (the
 *    engine stays pending) until its source applies the SPLIT here; if the split closes
 *    first (this node's source replica skipped the SPLIT by installing a snapshot), it
 *    starts as an empty replica that the target's leader fills by snapshot. */
#ifndef SHOAL_ACTORS_SPLIT_NODE_H
#define SHOAL_ACTORS_SPLIT_NODE_H

#include <stdbool.h>

#include "actors/replica.h"
#include "proto/admin.pb-c.h"

/* Closes the pending engines (node stop). */
void split_node_destroy(node_t *n);
/* submit_committed of a data shard: attaches the target engine of every SPLIT in job.
 * false (node must stop) when an engine cannot be opened. */
bool split_node_attach(replica_t *r, fsm_job_t *job);
/* The source's APPLY job with SPLITs is done: start the targets it cut. */
void split_node_applied(replica_t *r, const fsm_job_t *job);
/* follow_hosting for shard si placed here and not open: true when handled here (started
 * or waiting), false for the ordinary open. */
bool split_node_host(node_t *n, const Shoal__ShardInfo *si);
/* A leader's sweep: propose the SPLIT when the map shows a shard splitting from r. */
void split_node_propose(node_t *n, replica_t *r);
/* restore_raft without a configuration in the log: fills rs for a target (split data:
 * based at SPLIT_TARGET_BASE with its voters) or a shard created later (empty: learns it).
 * false for a bootstrap shard (the caller's placement of CONTRACTS.md). */
bool split_node_restore(replica_t *r, raft_restore_t *rs);

#endif
