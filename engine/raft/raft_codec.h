/* raft_codec.h - conversion between the core's raft_msg_t and the wire's
 * Shoal__RaftMessage / Shoal__GroupHeartbeat (proto/raft.proto). Lives outside the core
 * (library shoal_raft_codec) so that shoal_raft never depends on protobuf.
 *
 * Heartbeat coalescing: a MSG_HEARTBEAT from the core carries only (group, term, commit,
 * context) and a MSG_HEARTBEAT_RESP only (group, term, context, reject), so a node puts
 * every heartbeat it sends to one peer in one PeerEnvelope as GroupHeartbeat entries
 * (heartbeats / heartbeat_resps) instead of full RaftMessages, and turns them back into
 * raft_msg_t with the envelope's from_node/to_node on receipt. */
#ifndef SHOAL_RAFT_CODEC_H
#define SHOAL_RAFT_CODEC_H

#include "engine/raft/raft.h"
#include "proto/raft.pb-c.h"

#define RAFT_CODEC_MAX_CONTEXT 4096

/* Fills *out (initialised here) borrowing m's bytes: entries, context and chunk data are
 * not copied, so m must outlive *out. Release what the codec allocated with
 * raft_msg_proto_release (never protobuf's free_unpacked). 0 or SHOAL_ENOMEM. */
int raft_msg_to_proto(const raft_msg_t *m, Shoal__RaftMessage *out);
void raft_msg_proto_release(Shoal__RaftMessage *pm);

/* Copies a decoded wire message into *out after checking it (types in range, entries
 * well-formed, a snapshot chunk exactly on MSG_SNAPSHOT, configuration sizes, context
 * size). 0, SHOAL_EINVAL (nothing to free) or SHOAL_ENOMEM. Free with
 * raft_msg_free_contents. */
int raft_msg_from_proto(const Shoal__RaftMessage *pm, raft_msg_t *out);

/* True for the messages that travel as GroupHeartbeat. */
bool raft_msg_is_heartbeat(const raft_msg_t *m);
/* Fills *out (initialised here) borrowing m's context. */
void raft_msg_to_group_heartbeat(const raft_msg_t *m, Shoal__GroupHeartbeat *out);
/* Rebuilds the core message (resp: a MSG_HEARTBEAT_RESP) from a GroupHeartbeat of an
 * envelope from node `from` to node `to`; copies the context. 0, SHOAL_EINVAL, ENOMEM. */
int raft_msg_from_group_heartbeat(const Shoal__GroupHeartbeat *hb, bool resp, uint64_t from,
                                  uint64_t to, raft_msg_t *out);

#endif
