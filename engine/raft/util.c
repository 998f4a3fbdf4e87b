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
    c->probe_hold_bytes = 64u << 10;
    c->snapshot_chunk_bytes = 1u << 20;
    c->snapshot_trailing_bytes = 32u << 20;
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
    static const char *names[] = {
        "none",          "prevote",     "prevote_resp", "vote",           "vote_resp",
        "append",        "append_resp", "heartbeat",    "heartbeat_resp", "snapshot",
        "snapshot_resp", "timeout_now", "read_index",   "read_index_resp"};
    if ((unsigned)type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

void raft_msg_free_contents(raft_msg_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    free(m->context);
    free(m->snapshot.data);
    m->entries = NULL;
    m->n_entries = 0;
    m->context = NULL;
    m->context_len = 0;
    m->snapshot.data = NULL;
    m->snapshot.len = 0;
}

static void *dup_bytes(const void *p, size_t len, bool *fail)
{
    if (!len)
        return NULL;
    void *d = malloc(len);
    if (!d)
        *fail = true;
    else
        memcpy(d, p, len);
    return d;
}

int raft_msg_copy(raft_msg_t *dst, const raft_msg_t *src)
{
    bool fail = false;
    *dst = *src;
    dst->entries = NULL;
    dst->n_entries = 0;
    dst->context = dup_bytes(src->context, src->context_len, &fail);
    dst->snapshot.data = dup_bytes(src->snapshot.data, src->snapshot.len, &fail);
    if (src->n_entries) {
        dst->entries = calloc(src->n_entries, sizeof(*dst->entries));
        fail |= !dst->entries;
        for (size_t i = 0; dst->entries && i < src->n_entries; i++) {
            dst->entries[i] = src->entries[i];
            dst->entries[i].data = dup_bytes(src->entries[i].data, src->entries[i].len, &fail);
            dst->n_entries++;
        }
    }
    if (fail) {
        raft_msg_free_contents(dst);
        return SHOAL_ENOMEM;
    }
    return 0;
}
