/* util.c - small helpers of the public API that hold no Raft logic: default configuration,
 * names for enums, and ownership helpers for messages. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft.h"

void raft_config_default(raft_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->election_tick = 10;
    c->heartbeat_tick = 1;
    c->prevote = true;
    c->check_quorum = true;
    c->lease_read = false;
    c->lease_margin = 1;
    c->max_inflight = 256;
    c->max_msg_entries = 256;
    c->max_msg_bytes = 1u << 20;
    c->snapshot_chunk_bytes = 1u << 20;
}

const char *raft_role_name(raft_role_t role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRECANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

const char *raft_msg_type_name(raft_msg_type_t type)
{
    static const char *names[] = {"none",       "prevote",      "prevote_resp",  "vote",
                                  "vote_resp",  "append",       "append_resp",   "heartbeat",
                                  "heartbeat_resp", "snapshot", "snapshot_resp", "timeout_now",
                                  "read_index", "read_index_resp"};
    if ((unsigned)type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}
