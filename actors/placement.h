/* placement.h - the shard map as this node knows it, and what the node does to follow it
 * (internal to actors/; docs/ARCHITECTURE.md, "Online shard-map changes").
 *
 * The map (proto ShardMap: shards -> replica nodes, nodes -> endpoints, version) is owned
 * by the metadata Raft group: it is the value of key "shardmap" there, changed only by
 * compare-and-swap commands of that group (meta.c), so changes apply in log order and a
 * change computed from a stale map loses its compare. Every node holds the newest version
 * it has seen, kept in DATA/shardmap (written atomically before it acts on it):
 *  - metadata replicas adopt a version when their state machine applies it;
 *  - the metadata leader pushes its map to every node of the map (one-way MapPush frames
 *    through the transport) at once after a change and every 5 s after that, so a node
 *    that was down or was just added catches up without asking; every 500 ms in between
 *    it pushes only the version (a map without shards), which keeps nodes fresh;
 *  - brokers poll nodes for the map, fetch it when a node announces a new version, and
 *    adopt newer versions (broker/admin.c).
 *
 * Following the map (placement_sweep, every node sweep):
 *  - a shard whose replicas or leaving list names this node gets a replica (a new one
 *    starts with an empty Raft configuration and learns it from the group's leader);
 *  - a shard whose lists no longer name this node has its replica closed and its data
 *    deleted; the metadata leader writes such a map only after the shard's leader reported
 *    that its Raft configuration no longer holds this node (MoveDone), so no voter ever
 *    loses its data;
 *  - the leader of a shard converges its Raft configuration to the map's replicas one
 *    change at a time: add a missing node as learner, promote a caught-up learner, hand
 *    leadership away if it is itself leaving, remove a voter that is not in the map; when
 *    the configuration equals the map while a move is recorded, it tells the metadata
 *    nodes (MoveDone), which close the move in the next map version. A leader does this
 *    only while fresh: the metadata leader said within 3 s that the node's version is the
 *    newest, so a node cut off or behind never undoes a move with a stale map;
 *  - a leader hands its group's leadership to the group's preferred node (leader_balance.h)
 *    under the same freshness rule.
 * Opening a replica (an empty engine) and writing DATA/shardmap happen on the node loop;
 * closing and deleting a replica happen on the compactor actor. */
#ifndef SHOAL_ACTORS_PLACEMENT_H
#define SHOAL_ACTORS_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/replica.h"
#include "actors/shardmap.h"
#include "proto/admin.pb-c.h"

#define PLACEMENT_ONEWAY ((uint64_t)1 << 63) /* request_id bit of node-to-node frames */
#define PLACEMENT_MAP_KEY "shardmap"         /* the map's key in the metadata group */

struct placement_t {
    Shoal__ShardMap *map; /* newest map this node has (owned) */
    uint64_t fresh_ms;    /* zclock_mono of the last word from the metadata leader */
    uint64_t push_ms;     /* metadata leader: when it last pushed (the map or its version) */
    uint64_t full_push_ms, pushed_version; /* metadata leader: last whole-map push */
    /* metadata leader: the one map change in flight (meta.c) */
    uint64_t inflight_version, inflight_deadline_ms;
    uint8_t *inflight_bytes;
    size_t inflight_len;
    zframe_t *waiter; /* ROUTER identity of the admin request answered when it applies */
    uint64_t waiter_rid;
    bool waiter_split; /* add_shard: the answer names the new shard and its source */
    uint32_t waiter_shard, waiter_source;
    /* groups whose replica was closed here and whose DROP record or data deletion is still
     * in flight: not opened again until both are done (the engine's folder is in use) */
    uint32_t *dropping;
    size_t n_dropping;
    bool removed; /* a map dropped this node (remove-node): it stops once nothing is held */
    /* ShardMap.cluster_id this node belongs to (cluster/id of its config, else its map's);
     * 0 until known. Maps and peer envelopes of another cluster are refused. */
    uint64_t cluster_id;
    uint64_t foreign_log_ms;        /* when a refusal was last logged (one line per 10 s) */
    struct leader_balance *balance; /* leader_balance.h; NULL: raft/balance_leaders = 0 */
};

/* Whether id (a map's or an envelope's cluster id) may be this node's cluster: 0 on either
 * side means not known yet. A refusal is logged (at most one line per 10 s). */
bool placement_same_cluster(node_t *n, uint64_t id, const char *what);
/* Loads DATA/shardmap, or the bootstrap map (version 1) computed from the config. */
int placement_init(node_t *n, char *err, size_t errlen);
void placement_destroy(node_t *n);
/* Connects the transport to every node of the map, and to the removed ones (meta.c tells
 * them they left). */
void placement_connect(node_t *n);
/* Whether this node should hold a replica of group now (the metadata group: ShardMap.meta,
 * else the bootstrap metadata nodes). */
bool placement_hosts(const node_t *n, uint32_t group);
/* Adopts map if it is newer than the node's: persists it, connects to new nodes, opens
 * the replicas it places here. from_leader: it came from the metadata leader (fresh). */
void placement_adopt(node_t *n, const Shoal__ShardMap *map, bool from_leader);
/* Same from packed bytes (the value of key "shardmap"); false when they do not decode. */
bool placement_adopt_bytes(node_t *n, const uint8_t *buf, size_t len, bool from_leader);
/* A replica's closing is done: its DROP record is durable and its data deleted (or the
 * node stops). The group may be opened here again. */
void placement_drop_done(node_t *n, uint32_t group);
/* Frees a drop job that never reached the compactor (the node stops): the engine is
 * closed, its folder stays. A later replica of the group here reads it as the group's
 * state at the engine's applied index, which the group's log agrees with. */
void placement_drop_release(node_t *n, void *drop_job);
/* Opens missing replicas, deletes unplaced ones when idle, converges led groups. */
void placement_sweep(node_t *n);
/* Sends a one-way admin request to node (through the transport). */
void placement_send_oneway(node_t *n, uint64_t node, Shoal__AdminRequest *req);

/* meta.c: the metadata group's side */
/* This node became the metadata leader: store the bootstrap map if none is stored. */
void meta_leader_elected(node_t *n, replica_t *r);
/* The metadata replica r applied a job: adopt a new map it wrote, answer the waiter. */
void meta_applied(node_t *n, replica_t *r, const fsm_job_t *job);
/* Admin ops move, add_node, remove_node, add_shard (answered now or when the change applies). Takes
 * nothing: identity is copied if kept. */
void meta_admin(node_t *n, zframe_t *identity, const Shoal__AdminRequest *req);
/* A shard leader reports its configuration equals the map: close the move. */
void meta_move_done(node_t *n, const Shoal__MoveDone *md);
/* Metadata leader: push the map, expire the change in flight. */
void meta_sweep(node_t *n);

#endif
