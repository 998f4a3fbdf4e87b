/* snapshot.c - log compaction and InstallSnapshot in chunks (§7).
 *
 * The application owns snapshot bytes. raft_snapshot_taken() tells the core that the state
 * up to an applied index is saved; the core remembers the term and configuration at that
 * index (the snapshot meta) and drops the log up to it but for the trailing entries (at
 * most snapshot_trailing_entries entries and snapshot_trailing_bytes bytes behind it):
 * they let a follower that was briefly away catch up by appends, which costs its missed
 * entries instead of the whole state; raft_drop_trailing() gives them back (an idle group).
 * A follower whose next entry is compacted gets the snapshot instead, one chunk at a time
 * (stop-and-wait: the next chunk goes when the previous is acknowledged, a lost one is
 * resent after an election timeout). Each chunk carries the meta, so a follower restarts
 * cleanly at offset 0.
 * The follower stores chunks through raft_snapshot_io_t.write, and once the last one is
 * accepted (its checksum checked by the application) it replaces its log with the
 * snapshot, which the next ready hands out for installation: atomic from the core's view.
 * The final acknowledgement is an APPEND_RESP at the snapshot index, sent after persist. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_int.h"

static void send_chunk(raft_t *r, raft_progress_t *pr)
{
    const raft_snapshot_io_t *io = &r->cfg.snapshot_io;
    size_t cap = r->cfg.snapshot_chunk_bytes;
    uint8_t *buf = malloc(cap);
    uint64_t total = 0, checksum = 0;
    int64_t n =
        buf ? io->read(io->ctx, pr->snap_index, pr->snap_offset, buf, cap, &total, &checksum)
            : SHOAL_ENOMEM;
    if (n < 0 || (n == 0 && pr->snap_offset < total)) {
        free(buf);
        progress_become_probe(pr); /* the snapshot is gone: try again with a newer one */
        pr->next = pr->match + 1;
        return;
    }
    raft_msg_t m = {.type = RAFT_MSG_SNAPSHOT, .to = pr->id, .has_snapshot = true};
    m.snapshot.meta = r->snap;
    m.snapshot.offset = pr->snap_offset;
    m.snapshot.data = buf;
    m.snapshot.len = (size_t)n;
    m.snapshot.total_size = total;
    m.snapshot.checksum = checksum;
    m.snapshot.last = pr->snap_offset + (uint64_t)n >= total;
    pr->snap_elapsed = 0;
    raft_send(r, &m);
}

void send_snapshot(raft_t *r, raft_progress_t *pr)
{
    if (!r->cfg.snapshot_io.read || r->snap.index == 0)
        return; /* nothing to send: the follower waits (see raft.h) */
    pr->state = RAFT_PROGRESS_SNAPSHOT;
    pr->snap_index = r->snap.index;
    pr->snap_offset = 0;
    pr->in_count = 0;
    send_chunk(r, pr);
}

/* Resend the current chunk when no answer came for an election timeout, and restart
 * with the newest snapshot when the one being sent was replaced. */
void snapshot_tick(raft_t *r, raft_progress_t *pr)
{
    if (++pr->snap_elapsed < r->cfg.election_tick)
        return;
    if (pr->snap_index != r->snap.index) {
        pr->snap_index = r->snap.index;
        pr->snap_offset = 0;
    }
    send_chunk(r, pr);
}

void handle_snapshot_response(raft_t *r, const raft_msg_t *m)
{
    raft_progress_t *pr = progress_of(r, m->from);
    if (!pr)
        return;
    pr->last_heard = r->now;
    if (pr->state != RAFT_PROGRESS_SNAPSHOT || m->index != pr->snap_index)
        return;                            /* an answer about a transfer we gave up */
    if (pr->snap_index != r->snap.index) { /* a newer snapshot replaced it: restart */
        pr->snap_index = r->snap.index;
        pr->snap_offset = 0;
    } else if (m->reject) {
        pr->snap_offset = m->reject_hint <= pr->snap_offset ? m->reject_hint : 0;
    } else if (m->reject_hint > pr->snap_offset) {
        pr->snap_offset = m->reject_hint;
    } else {
        return; /* duplicate acknowledgement */
    }
    send_chunk(r, pr);
}

static int snapshot_resp(raft_t *r, const raft_msg_t *m, bool reject, uint64_t hint)
{
    raft_msg_t resp = {.type = RAFT_MSG_SNAPSHOT_RESP,
                       .to = m->from,
                       .index = m->snapshot.meta.index,
                       .reject = reject,
                       .reject_hint = hint};
    return raft_send(r, &resp);
}

/* The last chunk arrived and was accepted: replace the log with the snapshot. */
static int install(raft_t *r, const raft_msg_t *m)
{
    const raft_snapshot_meta_t *meta = &m->snapshot.meta;
    raft_msg_t resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from, .index = meta->index};
    if (log_match_term(&r->log, meta->index, meta->term)) {
        raft_commit_to(r, meta->index); /* we already have it all: just move commit */
        return raft_send(r, &resp);
    }
    log_reset(&r->log, meta->index, meta->term);
    r->trail_bytes = 0;
    r->conf = meta->conf;
    r->snap_conf = meta->conf;
    r->snap = *meta;
    r->conf_scanned = meta->index;
    r->n_hist = 0;
    r->pending_snapshot = *meta;
    r->has_pending_snapshot = true;
    r->snap_installing = true;
    return raft_send(r, &resp);
}

int handle_snapshot(raft_t *r, const raft_msg_t *m)
{
    const raft_snapshot_chunk_t *c = &m->snapshot;
    if (!m->has_snapshot || (c->len && !c->data) || c->meta.index == 0 || c->meta.term > m->term ||
        c->offset + c->len > c->total_size || c->meta.conf.n_voters > RAFT_MAX_NODES ||
        c->meta.conf.n_learners > RAFT_MAX_NODES ||
        c->meta.conf.n_voters + c->meta.conf.n_learners > RAFT_MAX_NODES)
        return SHOAL_EINVAL;
    if (c->meta.index <= r->log.committed) { /* nothing new in it */
        raft_msg_t resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from, .index = r->log.committed};
        return raft_send(r, &resp);
    }
    if (!r->cfg.snapshot_io.write)
        return snapshot_resp(r, m, true, 0);
    if (r->snap_installing)
        return 0; /* the application still holds the last one: the leader will resend */
    if (c->offset == 0) {
        r->recv_snap_index = c->meta.index;
        r->recv_offset = 0;
    }
    if (c->meta.index != r->recv_snap_index || c->offset != r->recv_offset)
        return snapshot_resp(r, m, true, c->meta.index == r->recv_snap_index ? r->recv_offset : 0);
    int rc = r->cfg.snapshot_io.write(r->cfg.snapshot_io.ctx, c);
    if (rc < 0) {
        r->recv_snap_index = 0;
        return snapshot_resp(r, m, true, 0);
    }
    r->recv_offset += c->len;
    if (!c->last)
        return snapshot_resp(r, m, false, r->recv_offset);
    r->recv_snap_index = 0;
    return install(r, m);
}

/* Drops the log up to `to`, keeping the configuration history after it. */
static void compact_log_to(raft_t *r, uint64_t to)
{
    if (to <= r->log.offset)
        return;
    r->snap_conf = *conf_at(r, to);
    log_compact_to(&r->log, to);
    conf_drop_hist_to(r, to);
}

/* Where to compact to for a snapshot at index: walking back from it, keep at most
 * snapshot_trailing_entries entries and snapshot_trailing_bytes bytes of their data (an
 * entry bigger than the byte bound is never kept). *kept gets the bytes kept. */
static uint64_t trailing_start(const raft_t *r, uint64_t index, uint64_t *kept)
{
    uint64_t to = index, bytes = 0;
    while (to > r->log.offset && index - to < r->cfg.snapshot_trailing_entries) {
        const raft_entry_t *e = log_entry(&r->log, to);
        if (e->len > r->cfg.snapshot_trailing_bytes - bytes)
            break;
        bytes += e->len;
        to--;
    }
    *kept = bytes;
    return to;
}

int raft_snapshot_taken(raft_t *r, uint64_t index, raft_snapshot_meta_t *meta)
{
    if (!r || index > r->log.applied || index < r->snap.index || index < r->log.offset)
        return SHOAL_EINVAL;
    if (index > r->snap.index) {
        r->snap.index = index;
        r->snap.term = log_term(&r->log, index);
        r->snap.conf = *conf_at(r, index);
        uint64_t kept = 0;
        compact_log_to(r, trailing_start(r, index, &kept));
        r->trail_bytes = kept;
    }
    if (meta)
        *meta = r->snap;
    return 0;
}

void raft_drop_trailing(raft_t *r)
{
    if (!r)
        return;
    compact_log_to(r, r->snap.index);
    r->trail_bytes = 0;
}
