/* replication.c - the leader's side of the log (§5.3) and the follower's answers:
 * per-follower flow control, AppendEntries and its fast back-off, commit by majority,
 * heartbeats, and leadership transfer.
 *
 * Flow control per follower (as in etcd/raft): PROBE sends one append at a time until a
 * follower's match is found; REPLICATE streams appends optimistically (next moves on
 * send) with at most max_inflight unacknowledged messages; SNAPSHOT waits for an
 * InstallSnapshot transfer to finish.
 * Fast back-off: a follower that rejects an append answers with the last index it could
 * agree on by term (reject_hint, conflict_term); the leader then skips a whole term of
 * mismatching entries per round trip instead of one entry.
 * Commit (§5.4.2): the leader commits the largest index that a majority of voters have
 * persisted, and only if that entry is of its own term. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_int.h"

raft_progress_t *progress_of(raft_t *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

void progress_free(raft_progress_t *pr)
{
    free(pr->inflight);
    pr->inflight = NULL;
}

void progress_reset(raft_t *r, raft_progress_t *pr, uint64_t id, bool learner)
{
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->learner = learner;
    pr->next = log_last_index(&r->log) + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->last_heard = r->now; /* optimistic: a new leader assumes everyone is alive */
    pr->inflight = calloc(r->cfg.max_inflight, sizeof(*pr->inflight));
}

void progress_become_probe(raft_progress_t *pr)
{
    if (pr->state == RAFT_PROGRESS_SNAPSHOT && pr->snap_index + 1 > pr->match + 1)
        pr->next = pr->snap_index + 1;
    else
        pr->next = pr->match + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->in_count = 0;
}

static void become_replicate(raft_progress_t *pr)
{
    pr->state = RAFT_PROGRESS_REPLICATE;
    pr->next = pr->match + 1;
    pr->in_count = 0;
}

static bool inflight_full(const raft_t *r, const raft_progress_t *pr)
{
    return !pr->inflight || pr->in_count >= r->cfg.max_inflight;
}

static void inflight_add(raft_t *r, raft_progress_t *pr, uint64_t last)
{
    unsigned slot = (pr->in_start + pr->in_count) % r->cfg.max_inflight;
    pr->inflight[slot] = last;
    pr->in_count++;
}

static void inflight_free_to(raft_t *r, raft_progress_t *pr, uint64_t index)
{
    while (pr->in_count && pr->inflight[pr->in_start] <= index) {
        pr->in_start = (pr->in_start + 1) % r->cfg.max_inflight;
        pr->in_count--;
    }
}

static bool paused(const raft_t *r, const raft_progress_t *pr)
{
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE: return pr->probe_sent;
    case RAFT_PROGRESS_REPLICATE: return inflight_full(r, pr);
    default: return true;
    }
}

bool peer_active(const raft_t *r, const raft_progress_t *pr)
{
    return pr->id == r->id || r->now - pr->last_heard <= r->cfg.election_tick;
}

/* How many entries from `from` fit in one message (at least one), and their bytes. */
static size_t batch_size(const raft_t *r, uint64_t from, size_t *bytes_out)
{
    uint64_t last = log_last_index(&r->log);
    size_t n = 0, bytes = 0;
    for (uint64_t i = from; i <= last && n < r->cfg.max_msg_entries; i++) {
        size_t len = log_entry(&r->log, i)->len;
        if (n > 0 && bytes + len > r->cfg.max_msg_bytes)
            break;
        bytes += len;
        n++;
    }
    *bytes_out = bytes;
    return n;
}

bool send_append(raft_t *r, raft_progress_t *pr, bool allow_empty)
{
    if (pr->id == r->id || paused(r, pr))
        return false;
    uint64_t last = log_last_index(&r->log);
    if (pr->next > last + 1)
        pr->next = last + 1;
    uint64_t prev = pr->next - 1;
    if (prev < r->log.offset) { /* compacted away: only a snapshot can help */
        send_snapshot(r, pr);
        return false;
    }
    size_t bytes;
    size_t n = batch_size(r, pr->next, &bytes);
    if (n == 0 && !allow_empty)
        return false;
    raft_msg_t m = {.type = RAFT_MSG_APPEND,
                    .to = pr->id,
                    .index = prev,
                    .log_term = log_term(&r->log, prev),
                    .commit = r->log.committed};
    if (n) {
        m.entries = calloc(n, sizeof(*m.entries));
        for (size_t i = 0; m.entries && i < n; i++)
            if (entry_copy(&m.entries[m.n_entries], log_entry(&r->log, pr->next + i)) == 0)
                m.n_entries++;
        if (m.n_entries != n) {
            raft_msg_free_contents(&m);
            return false;
        }
    }
    if (pr->state == RAFT_PROGRESS_REPLICATE && n) {
        pr->next += n;
        inflight_add(r, pr, pr->next - 1);
    } else if (pr->state == RAFT_PROGRESS_PROBE) {
        pr->probe_sent = true;
        pr->probe_last = n && bytes >= r->cfg.probe_hold_bytes ? prev + n : 0;
        pr->probe_at = r->now;
    }
    raft_send(r, &m);
    return n > 0;
}

/* A new commit index reaches the followers with the next ready, like proposals: built
 * then, it rides on that ready's appends with entries, and only a follower that gets none
 * is sent an empty one. Queued at once (an empty append per follower per commit move,
 * next to the appends of the same ready) it cost a message and an answer per follower
 * each time, and a ready and an envelope on every follower (docs/BENCHMARKS.md). */
void commit_moved(raft_t *r)
{
    r->commit_pending = true;
}

/* Batching: proposals only append to the log; the appends for all of them go out when the
 * next ready is built, as few messages per follower as the window and size limits allow;
 * every message carries the commit index of that moment. */
void flush_appends(raft_t *r)
{
    bool appends = r->append_pending, commit = r->commit_pending;
    if (!appends && !commit)
        return;
    r->append_pending = r->commit_pending = false;
    if (r->role != RAFT_LEADER)
        return;
    for (size_t i = 0; i < r->n_prs; i++) {
        bool sent = false;
        while (appends && send_append(r, &r->prs[i], false))
            sent = true;
        if (commit && !sent)
            send_append(r, &r->prs[i], true);
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Every heartbeat round has a number (its context) so that acknowledgements confirm
 * ReadIndex requests and extend the lease (read_index.c). */
void bcast_heartbeat(raft_t *r)
{
    r->read_round++;
    r->round_tick[r->read_round % RAFT_ROUND_RING] = r->now;
    progress_of(r, r->id)->read_ack = r->read_round;
    for (size_t i = 0; i < r->n_prs; i++) {
        raft_progress_t *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .to = pr->id};
        m.commit = pr->match < r->log.committed ? pr->match : r->log.committed;
        m.context = malloc(8);
        if (m.context) {
            put_u64(m.context, r->read_round);
            m.context_len = 8;
        }
        raft_send(r, &m);
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

bool maybe_commit(raft_t *r)
{
    uint64_t m[RAFT_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++)
        if (!r->prs[i].learner && raft_is_voter(r, r->prs[i].id))
            m[n++] = r->prs[i].match;
    if (n == 0)
        return false;
    qsort(m, n, sizeof(*m), cmp_desc);
    size_t q = raft_quorum(r);
    if (RAFT_BUG(RAFT_BUG_COMMIT_MINORITY) && q > 1)
        q--;
    uint64_t idx = m[q - 1];
    if (idx <= r->log.committed)
        return false;
    if (log_term(&r->log, idx) != r->term && !RAFT_BUG(RAFT_BUG_COMMIT_OLD_TERM))
        return false;
    raft_commit_to(r, idx);
    return true;
}

static int check_entries(const raft_msg_t *m)
{
    uint64_t prev_term = m->log_term;
    for (size_t i = 0; i < m->n_entries; i++) {
        const raft_entry_t *e = &m->entries[i];
        if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term ||
            (unsigned)e->type > RAFT_ENTRY_NOOP || (e->len && !e->data))
            return SHOAL_EINVAL;
        prev_term = e->term;
    }
    return 0;
}

static int reject_append(raft_t *r, const raft_msg_t *m)
{
    uint64_t hint = m->index < log_last_index(&r->log) ? m->index : log_last_index(&r->log);
    hint = log_find_conflict_by_term(&r->log, hint, m->log_term);
    raft_msg_t resp = {.type = RAFT_MSG_APPEND_RESP,
                       .to = m->from,
                       .index = m->index,
                       .reject = true,
                       .reject_hint = hint,
                       .conflict_term = log_term(&r->log, hint)};
    return raft_send(r, &resp);
}

/* Figure 2, AppendEntries receiver: 2) reject without a matching previous entry;
 * 3) delete a conflicting suffix; 4) append new entries; 5) advance commit. */
int handle_append(raft_t *r, const raft_msg_t *m)
{
    raft_msg_t resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    int rc = check_entries(m);
    if (rc)
        return rc;
    if (m->index < r->log.committed) { /* stale: tell the leader what we have */
        resp.index = r->log.committed;
        return raft_send(r, &resp);
    }
    if (!log_match_term(&r->log, m->index, m->log_term))
        return reject_append(r, m);
    uint64_t last = log_last_index(&r->log);
    size_t i = 0;
    while (i < m->n_entries && m->entries[i].index <= last &&
           log_term(&r->log, m->entries[i].index) == m->entries[i].term)
        i++;
    if (i < m->n_entries && m->entries[i].index <= last) {
        if (m->entries[i].index <= r->log.committed)
            return SHOAL_EINVAL; /* would rewrite committed history: refuse */
        if (RAFT_BUG(RAFT_BUG_NO_TRUNCATE)) {
            while (i < m->n_entries && m->entries[i].index <= last)
                i++;
        } else {
            log_truncate_from(&r->log, m->entries[i].index);
        }
    }
    for (; i < m->n_entries; i++)
        if ((rc = log_append(&r->log, &m->entries[i], true)))
            return rc;
    uint64_t last_new = m->index + m->n_entries;
    raft_commit_to(r, m->commit < last_new ? m->commit : last_new);
    resp.index = last_new;
    return raft_send(r, &resp);
}

static bool maybe_decr_to(raft_progress_t *pr, uint64_t rejected, uint64_t hint)
{
    if (pr->state == RAFT_PROGRESS_REPLICATE) {
        if (rejected <= pr->match)
            return false; /* stale rejection */
        pr->next = pr->match + 1;
        return true;
    }
    if (pr->next == 0 || pr->next - 1 != rejected)
        return false; /* answers an older probe */
    uint64_t next = rejected < hint + 1 ? rejected : hint + 1;
    if (next < pr->match + 1)
        next = pr->match + 1;
    pr->next = next ? next : 1;
    pr->probe_sent = false;
    return true;
}

static bool maybe_update(raft_progress_t *pr, uint64_t index)
{
    bool updated = false;
    if (pr->match < index) {
        pr->match = index;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < index + 1)
        pr->next = index + 1;
    return updated;
}

static void append_rejected(raft_t *r, raft_progress_t *pr, const raft_msg_t *m)
{
    uint64_t next_probe = m->reject_hint;
    if (m->conflict_term > 0)
        next_probe = log_find_conflict_by_term(&r->log, m->reject_hint, m->conflict_term);
    if (maybe_decr_to(pr, m->index, next_probe)) {
        if (pr->state == RAFT_PROGRESS_REPLICATE)
            progress_become_probe(pr);
        send_append(r, pr, true);
    }
}

void handle_append_response(raft_t *r, const raft_msg_t *m)
{
    raft_progress_t *pr = progress_of(r, m->from);
    if (!pr || m->index > log_last_index(&r->log))
        return;
    pr->last_heard = r->now;
    if (m->reject) {
        append_rejected(r, pr, m);
        return;
    }
    bool was_paused = paused(r, pr);
    if (!maybe_update(pr, m->index))
        return;
    if (pr->state == RAFT_PROGRESS_PROBE)
        become_replicate(pr);
    else if (pr->state == RAFT_PROGRESS_SNAPSHOT && pr->match >= pr->snap_index)
        progress_become_probe(pr);
    else if (pr->state == RAFT_PROGRESS_REPLICATE)
        inflight_free_to(r, pr, m->index);
    if (maybe_commit(r))
        commit_moved(r);
    else if (was_paused)
        send_append(r, pr, true);
    while (send_append(r, pr, false))
        ;
    if (pr->id == r->lead_transferee && pr->match == log_last_index(&r->log))
        send_timeout_now(r, pr->id);
}

void handle_heartbeat(raft_t *r, const raft_msg_t *m)
{
    raft_commit_to(r, m->commit);
    raft_msg_t resp = {
        .type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .index = log_last_index(&r->log)};
    if (m->context_len) {
        resp.context = malloc(m->context_len);
        if (resp.context) {
            memcpy(resp.context, m->context, m->context_len);
            resp.context_len = m->context_len;
        }
    }
    raft_send(r, &resp);
}

/* A heartbeat answer says the follower is alive, not whether the probe reached it: it
 * answers a heartbeat at once but an append only once persisted. It also carries the
 * follower's last log index, persisted or not: a big probe (probe_hold_bytes, up to
 * max_msg_bytes: 4 MiB of big values) that arrived is not sent again; it was sent again on
 * every heartbeat answer (and a read round sends heartbeats too) while the follower synced
 * it. Half an election timeout later it is sent again anyway: a last index past the
 * probe's can also be a stale tail the probe will replace. */
static bool probe_may_resend(const raft_t *r, const raft_progress_t *pr, const raft_msg_t *m)
{
    return !pr->probe_last || m->index < pr->probe_last ||
           r->now - pr->probe_at >= r->cfg.election_tick / 2;
}

void handle_heartbeat_response(raft_t *r, const raft_msg_t *m)
{
    raft_progress_t *pr = progress_of(r, m->from);
    if (!pr)
        return;
    pr->last_heard = r->now;
    if (probe_may_resend(r, pr, m))
        pr->probe_sent = false;
    if (pr->state == RAFT_PROGRESS_REPLICATE && inflight_full(r, pr) && pr->in_count)
        inflight_free_to(r, pr, pr->inflight[pr->in_start]); /* lost appends must not stall */
    if (pr->match < log_last_index(&r->log))
        send_append(r, pr, true);
    if (m->context_len == 8) {
        uint64_t round = get_u64(m->context);
        if (round > pr->read_ack && round <= r->read_round)
            pr->read_ack = round;
        reads_on_ack(r);
    }
}

void send_timeout_now(raft_t *r, uint64_t to)
{
    raft_msg_t m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
    r->lease_disabled = true; /* the target may win a forced election while our lease runs */
    raft_send(r, &m);
}

int raft_transfer_leader(raft_t *r, uint64_t to)
{
    if (!r)
        return SHOAL_EINVAL;
    if (r->role != RAFT_LEADER)
        return SHOAL_ENOTLEADER;
    if (to == r->id || !raft_is_voter(r, to))
        return SHOAL_EINVAL;
    if (r->lead_transferee == to)
        return 0;
    if (r->lead_transferee != RAFT_NONE)
        return SHOAL_EBUSY;
    raft_progress_t *pr = progress_of(r, to);
    if (!pr)
        return SHOAL_EINVAL;
    if (!peer_active(r, pr))
        return SHOAL_EUNAVAIL; /* it would not answer: proposals would stop for nothing */
    r->lead_transferee = to;
    r->transfer_elapsed = 0;
    if (pr->match == log_last_index(&r->log))
        send_timeout_now(r, to);
    else
        send_append(r, pr, true);
    return 0;
}

void leader_tick(raft_t *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->lead_transferee != RAFT_NONE && ++r->transfer_elapsed >= r->cfg.election_tick)
        r->lead_transferee = RAFT_NONE; /* the transfer failed: accept proposals again */
    if (r->election_elapsed >= r->cfg.election_tick) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            size_t active = 0;
            for (size_t i = 0; i < r->n_prs; i++)
                if (!r->prs[i].learner && raft_is_voter(r, r->prs[i].id) &&
                    peer_active(r, &r->prs[i]))
                    active++;
            if (active < raft_quorum(r)) {
                become_follower(r, r->term, RAFT_NONE);
                return;
            }
        }
    }
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].state == RAFT_PROGRESS_SNAPSHOT)
            snapshot_tick(r, &r->prs[i]);
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        bcast_heartbeat(r);
    }
}
