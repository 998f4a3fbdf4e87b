/* transport.h - Raft messages between nodes: conversion between the core's raft_msg_t and
 * proto RaftMessage, batching into one PeerEnvelope per peer per loop turn, heartbeats of
 * all groups coalesced into GroupHeartbeat lists, and a separate rate-limited queue for
 * snapshot chunks.
 *
 * Runs inside the node actor (it needs the Raft cores synchronously); owns one DEALER per
 * peer, connected to the peer's ROUTER. Sends never block: a full pipe (peer slow or down)
 * drops the message, which Raft tolerates (it retries); snapshot chunks wait in their own
 * queue and leave at most at the configured rate, so a snapshot never delays heartbeats
 * or appends of other groups behind megabytes in the same pipe.
 *
 * Node ids on the wire are config node ids; the Raft cores use node id + 1 (they reserve
 * 0 for "none"). This file does the translation for envelopes. */
#ifndef SHOAL_ACTORS_TRANSPORT_H
#define SHOAL_ACTORS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/node_config.h"
#include "engine/raft/raft.h"
#include "proto/raft.pb-c.h"

typedef struct transport_t transport_t;

transport_t *transport_new(const node_config_t *cfg);
void transport_destroy(transport_t **self_p);

/* Connects to a peer learned from the shard map (a node added after bootstrap); 0 when
 * it is known already or is this node. A known peer listed at another endpoint (removed,
 * then added again elsewhere) is reconnected there. */
int transport_add_peer(transport_t *self, uint64_t id, const char *endpoint);
bool transport_has_peer(transport_t *self, uint64_t id);
/* Sends one complete encoded Frame (borrowed) to node at once, never blocking: the node
 * to node one-way admin messages (map pushes, move reports). Dropped if the peer is down. */
void transport_send_frame(transport_t *self, uint64_t node, const uint8_t *frame, size_t len);

/* Queues m (borrowed; encoded at once) for its destination node (m->to - 1). */
void transport_send(transport_t *self, const raft_msg_t *m);
/* Sends one envelope per peer with everything queued since the last flush, and the
 * snapshot chunks the rate limit allows. */
void transport_flush(transport_t *self);
/* Stamps every later envelope with the cluster's id (ShardMap.cluster_id; 0: none). */
void transport_set_cluster(transport_t *self, uint64_t cluster_id);
/* Sends an empty envelope to every peer that got nothing for interval_ms: the node-level
 * liveness signal that lets quiesced groups stay quiet (node.c). */
void transport_keepalive(transport_t *self, uint64_t interval_ms);
/* True when snapshot chunks wait for the rate limit (the node then flushes again soon). */
bool transport_snapshots_waiting(const transport_t *self);
uint64_t transport_dropped(const transport_t *self);
/* Envelopes flushed and messages queued since the start (the node's work counters). */
void transport_counts(const transport_t *self, uint64_t *envelopes, uint64_t *msgs);

/* Decoding an incoming envelope: calls fn for every message (heartbeats expanded),
 * with a raft_msg_t that borrows from env and is valid during the call only. */
typedef void(transport_msg_fn)(void *arg, raft_msg_t *m);
void transport_receive(const Shoal__PeerEnvelope *env, transport_msg_fn *fn, void *arg);

/* raft_conf_state_t <-> ConfState bytes (kept in the log with a snapshot mark). */
uint8_t *transport_conf_encode(const raft_conf_state_t *c, size_t *len);
int transport_conf_decode(const uint8_t *buf, size_t len, raft_conf_state_t *c);

/* Raft id of a config node id and back. */
static inline uint64_t raft_id_of(uint64_t node_id)
{
    return node_id + 1;
}
static inline uint64_t node_id_of(uint64_t raft_id)
{
    return raft_id - 1;
}

#endif
