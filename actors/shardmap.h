/* shardmap.h - the shard map as a value (proto ShardMap, admin.proto): the bootstrap map of
 * CONTRACTS.md, decoding, lookups, and the edits the metadata leader makes (meta.c). Pure
 * functions: no node, no I/O.
 *
 * Edits validate against the map they are given and change it in place (the caller bumps
 * the version and proposes the result as a compare-and-swap over the stored bytes). A
 * refusal returns -1 with one line in err meant for the operator (`shoalctl` prints it and
 * exits 2), and leaves the map unchanged. */
#ifndef SHOAL_ACTORS_SHARDMAP_H
#define SHOAL_ACTORS_SHARDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/node_config.h"
#include "engine/ring.h"
#include "proto/admin.pb-c.h"

void shardmap_free(Shoal__ShardMap **m_p);
/* Unpacks a stored or received map; NULL when it does not decode or is not a map anyone
 * wrote (version 0 or no shard). */
Shoal__ShardMap *shardmap_decode(const uint8_t *buf, size_t len);
Shoal__ShardMap *shardmap_copy(const Shoal__ShardMap *m);
/* Version 1: shard s on nodes (s + k) mod N, every node of cluster/nodes. */
Shoal__ShardMap *shardmap_bootstrap(const node_config_t *c);

/* Lookups (borrowed; NULL when absent). */
const Shoal__ShardInfo *shardmap_shard(const Shoal__ShardMap *m, uint32_t shard);
const Shoal__NodeInfo *shardmap_node(const Shoal__ShardMap *m, uint64_t node);
bool shardmap_has(const uint64_t *ids, size_t n, uint64_t id);
/* The nodes that host the metadata group (replicas, then leaving): the map's record
 * (ShardMap.meta, returned by shardmap_shard(m, SHOAL_META_GROUP)) when it has one, else
 * the bootstrap metadata nodes of c. Returns the count. */
size_t shardmap_meta_nodes(const Shoal__ShardMap *m, const node_config_t *c, uint64_t *out,
                           size_t cap);
/* Records the bootstrap metadata nodes of c in m (ShardMap.meta) unless m has a record, so
 * the metadata group can be moved like a shard; 0 or SHOAL_ENOMEM. */
int shardmap_record_meta(Shoal__ShardMap *m, const node_config_t *c);

/* move SHARD FROM TO: TO replaces FROM in replicas, FROM is listed as leaving. SHARD may be
 * SHOAL_META_GROUP once the map records its nodes (shardmap_record_meta). Refused (-1) for
 * an unknown shard or TO node, FROM == TO, FROM not holding the shard or TO holding it;
 * put off (1: retry later) while a move of that shard is still open or it takes part in a
 * split. TO may be in the shard's retired list (a node that deleted it): it stays there,
 * so its new replica starts empty. */
int shardmap_move(Shoal__ShardMap *m, const Shoal__MoveReplicaRequest *mv, char *err,
                  size_t errlen);
/* Cancels shard's open move: its FROM (leaving) takes TO's (arriving) place in replicas
 * again and TO is listed as leaving, FROM as arriving, so the leader converges back (TO
 * removed, FROM added back if it was removed) and the move closes as any other, TO then
 * deleting its replica. Refused when no move is open or it does not record its TO. */
int shardmap_cancel_move(Shoal__ShardMap *m, uint32_t shard, char *err, size_t errlen);
/* Appends a node; refused for a missing or non-tcp endpoint, an id out of range or in use,
 * or an endpoint another node uses. */
int shardmap_add_node(Shoal__ShardMap *m, const Shoal__AddNodeRequest *an, char *err,
                      size_t errlen);
/* Drops a node; refused while any shard lists it in replicas or leaving, or when it is one
 * of the metadata group's nodes (meta: shardmap_meta_nodes). */
int shardmap_remove_node(Shoal__ShardMap *m, uint64_t id, const uint64_t *meta, size_t n_meta,
                         char *err, size_t errlen);
/* Closes the open move of shard when voters (a leader's committed configuration) are
 * exactly its replicas: leaving is emptied into retired. false (map unchanged) otherwise. */
bool shardmap_close_move(Shoal__ShardMap *m, uint32_t shard, const uint64_t *voters,
                         size_t n_voters);

/* The ring points shard si owns, sorted ascending, into out (room for RING_MAX_VNODES):
 * its explicit points when set, else the derived ring_point(id, i) for i < vnodes. Returns
 * the count. */
size_t shardmap_points(const Shoal__ShardMap *m, const Shoal__ShardInfo *si, uint64_t *out);
/* The ring of m's shards, built as brokers build theirs (broker_set_map): a shard's explicit
 * points when set, else vnodes_per_shard (default 64) derived ones. NULL when memory is
 * short. The caller owns it (ring_destroy). */
ring_t *shardmap_ring(const Shoal__ShardMap *m);
/* Whether a client request naming shard may read or write a key that ring (built from m)
 * places in shard owner: owner is shard, or owner is still splitting from shard (until the
 * source applies the SPLIT it holds that key's data; its fence refuses the key after).
 * Anything else was routed with an older map (a split closed since) or by no broker at
 * all: a node must not serve it from shard's engine. */
bool shardmap_key_fits(const Shoal__ShardMap *m, uint32_t shard, uint32_t owner);

/* add-shard by split: a new shard (id = the highest shard id + 1, in *new_id) takes every
 * other of source's points in hash order and lists source's replicas, marked splitting
 * from source; source keeps the rest. source SHOAL_META_GROUP (never split: it is not on
 * the ring) picks the shard with the most points, the lowest id among equals. Refused for
 * an unknown shard, a shard listing no replica,
 * a shard with fewer than 2 points, a shard with a move open, or while another split is
 * not closed (one split at a time keeps the fence simple). */
int shardmap_split(Shoal__ShardMap *m, uint32_t source, uint32_t *new_id, char *err, size_t errlen);
/* Clears the splitting mark of shard once its group serves (its data was cut from the
 * source); false (map unchanged) when shard is not splitting. */
bool shardmap_close_split(Shoal__ShardMap *m, uint32_t shard);

#endif
