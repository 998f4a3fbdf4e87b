/* raft_codec.c - raft_msg_t <-> protobuf (see raft_codec.h).
 *
 * Encoding borrows every byte buffer from the core message and allocates only the small
 * protobuf structs around them, in one block per message where it can; decoding copies,
 * because wire buffers die with the frame. Decoding is the trust boundary: anything the
 * core could misread (unknown enum values, oversize configurations, a chunk without a
 * meta) is refused here with SHOAL_EINVAL; the core checks the Raft-level consistency
 * itself (raft_step). */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_codec.h"

typedef struct {
    Shoal__SnapshotChunk chunk;
    Shoal__SnapshotMeta meta;
    Shoal__ConfState conf;
} snap_block_t;

static void conf_to_proto(const raft_conf_state_t *c, Shoal__ConfState *out)
{
    shoal__conf_state__init(out);
    out->n_voters = c->n_voters;
    out->voters = (uint64_t *)c->voters;
    out->n_learners = c->n_learners;
    out->learners = (uint64_t *)c->learners;
    out->n_voters_outgoing = c->n_voters_outgoing;
    out->voters_outgoing = (uint64_t *)c->voters_outgoing;
}

static int entries_to_proto(const raft_msg_t *m, Shoal__RaftMessage *out)
{
    if (!m->n_entries)
        return 0;
    Shoal__Entry *ents = calloc(m->n_entries, sizeof(*ents));
    Shoal__Entry **ptrs = calloc(m->n_entries, sizeof(*ptrs));
    if (!ents || !ptrs) {
        free(ents);
        free(ptrs);
        return SHOAL_ENOMEM;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        const raft_entry_t *e = &m->entries[i];
        shoal__entry__init(&ents[i]);
        ents[i].term = e->term;
        ents[i].index = e->index;
        ents[i].type = (Shoal__EntryType)e->type;
        ents[i].data.data = e->data;
        ents[i].data.len = e->len;
        ptrs[i] = &ents[i];
    }
    out->entries = ptrs;
    out->n_entries = m->n_entries;
    return 0;
}

int raft_msg_to_proto(const raft_msg_t *m, Shoal__RaftMessage *out)
{
    shoal__raft_message__init(out);
    out->type = (Shoal__RaftMessageType)m->type;
    out->group = m->group;
    out->from = m->from;
    out->to = m->to;
    out->term = m->term;
    out->log_term = m->log_term;
    out->index = m->index;
    out->commit = m->commit;
    out->reject = m->reject;
    out->reject_hint = m->reject_hint;
    out->conflict_term = m->conflict_term;
    out->context.data = m->context;
    out->context.len = m->context_len;
    if (entries_to_proto(m, out))
        return SHOAL_ENOMEM;
    if (!m->has_snapshot)
        return 0;
    snap_block_t *b = calloc(1, sizeof(*b));
    if (!b) {
        raft_msg_proto_release(out);
        return SHOAL_ENOMEM;
    }
    const raft_snapshot_chunk_t *c = &m->snapshot;
    shoal__snapshot_chunk__init(&b->chunk);
    shoal__snapshot_meta__init(&b->meta);
    conf_to_proto(&c->meta.conf, &b->conf);
    b->meta.index = c->meta.index;
    b->meta.term = c->meta.term;
    b->meta.conf = &b->conf;
    b->chunk.meta = &b->meta;
    b->chunk.offset = c->offset;
    b->chunk.data.data = c->data;
    b->chunk.data.len = c->len;
    b->chunk.last = c->last;
    b->chunk.total_size = c->total_size;
    b->chunk.checksum = c->checksum;
    out->snapshot = &b->chunk; /* first member: freeing it frees the block */
    return 0;
}

void raft_msg_proto_release(Shoal__RaftMessage *pm)
{
    if (!pm)
        return;
    if (pm->n_entries) {
        free(pm->entries[0]); /* the array of structs */
        free(pm->entries);
    }
    free(pm->snapshot);
    pm->entries = NULL;
    pm->n_entries = 0;
    pm->snapshot = NULL;
}

static int ids_from_proto(const uint64_t *src, size_t n, uint64_t *dst, size_t *n_out)
{
    if (n > RAFT_MAX_NODES || (n && !src))
        return SHOAL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (src[i] == RAFT_NONE)
            return SHOAL_EINVAL;
    if (n)
        memcpy(dst, src, n * sizeof(*dst));
    *n_out = n;
    return 0;
}

static int conf_from_proto(const Shoal__ConfState *c, raft_conf_state_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return 0;
    if (ids_from_proto(c->voters, c->n_voters, out->voters, &out->n_voters) ||
        ids_from_proto(c->learners, c->n_learners, out->learners, &out->n_learners) ||
        ids_from_proto(c->voters_outgoing, c->n_voters_outgoing, out->voters_outgoing,
                       &out->n_voters_outgoing) ||
        out->n_voters + out->n_learners > RAFT_MAX_NODES)
        return SHOAL_EINVAL;
    return 0;
}

static int check_proto(const Shoal__RaftMessage *pm)
{
    if ((unsigned)pm->type == 0 || (unsigned)pm->type > RAFT_MSG_TYPE_MAX)
        return SHOAL_EINVAL;
    if (pm->context.len > RAFT_CODEC_MAX_CONTEXT || (pm->n_entries && !pm->entries))
        return SHOAL_EINVAL;
    for (size_t i = 0; i < pm->n_entries; i++)
        if (!pm->entries[i] || (unsigned)pm->entries[i]->type > RAFT_ENTRY_NOOP)
            return SHOAL_EINVAL;
    bool is_snap = pm->type == SHOAL__RAFT_MESSAGE_TYPE__MSG_SNAPSHOT;
    if (is_snap != (pm->snapshot != NULL) || (is_snap && !pm->snapshot->meta))
        return SHOAL_EINVAL;
    return 0;
}

static void *dup(const void *p, size_t len, bool *fail)
{
    if (!len)
        return NULL;
    void *d = malloc(len);
    if (d)
        memcpy(d, p, len);
    else
        *fail = true;
    return d;
}

int raft_msg_from_proto(const Shoal__RaftMessage *pm, raft_msg_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!pm || check_proto(pm))
        return SHOAL_EINVAL;
    if (pm->snapshot && conf_from_proto(pm->snapshot->meta->conf, &out->snapshot.meta.conf))
        return SHOAL_EINVAL;
    bool fail = false;
    out->type = (raft_msg_type_t)pm->type;
    out->group = pm->group;
    out->from = pm->from;
    out->to = pm->to;
    out->term = pm->term;
    out->log_term = pm->log_term;
    out->index = pm->index;
    out->commit = pm->commit;
    out->reject = pm->reject;
    out->reject_hint = pm->reject_hint;
    out->conflict_term = pm->conflict_term;
    out->context = dup(pm->context.data, pm->context.len, &fail);
    out->context_len = out->context ? pm->context.len : 0;
    if (pm->n_entries) {
        out->entries = calloc(pm->n_entries, sizeof(*out->entries));
        fail |= !out->entries;
        for (size_t i = 0; out->entries && i < pm->n_entries; i++) {
            const Shoal__Entry *e = pm->entries[i];
            raft_entry_t *d = &out->entries[out->n_entries++];
            d->term = e->term;
            d->index = e->index;
            d->type = (raft_entry_type_t)e->type;
            d->data = dup(e->data.data, e->data.len, &fail);
            d->len = d->data ? e->data.len : 0;
        }
    }
    if (pm->snapshot) {
        const Shoal__SnapshotChunk *c = pm->snapshot;
        out->has_snapshot = true;
        out->snapshot.meta.index = c->meta->index;
        out->snapshot.meta.term = c->meta->term;
        out->snapshot.offset = c->offset;
        out->snapshot.data = dup(c->data.data, c->data.len, &fail);
        out->snapshot.len = out->snapshot.data ? c->data.len : 0;
        out->snapshot.last = c->last;
        out->snapshot.total_size = c->total_size;
        out->snapshot.checksum = c->checksum;
    }
    if (fail) {
        raft_msg_free_contents(out);
        return SHOAL_ENOMEM;
    }
    return 0;
}

bool raft_msg_is_heartbeat(const raft_msg_t *m)
{
    return m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_HEARTBEAT_RESP;
}

void raft_msg_to_group_heartbeat(const raft_msg_t *m, Shoal__GroupHeartbeat *out)
{
    shoal__group_heartbeat__init(out);
    out->group = m->group;
    out->term = m->term;
    out->commit = m->commit;
    out->context.data = m->context;
    out->context.len = m->context_len;
    out->reject = m->reject;
    out->last_index = m->index;
}

int raft_msg_from_group_heartbeat(const Shoal__GroupHeartbeat *hb, bool resp, uint64_t from,
                                  uint64_t to, raft_msg_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!hb || hb->context.len > RAFT_CODEC_MAX_CONTEXT)
        return SHOAL_EINVAL;
    bool fail = false;
    out->type = resp ? RAFT_MSG_HEARTBEAT_RESP : RAFT_MSG_HEARTBEAT;
    out->group = hb->group;
    out->from = from;
    out->to = to;
    out->term = hb->term;
    out->commit = hb->commit;
    out->reject = hb->reject;
    out->index = hb->last_index;
    out->context = dup(hb->context.data, hb->context.len, &fail);
    out->context_len = out->context ? hb->context.len : 0;
    return fail ? SHOAL_ENOMEM : 0;
}
