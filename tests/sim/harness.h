/* harness.h - a tiny synchronous cluster for the Raft unit tests (tests/unit/test_raft_*.c).
 *
 * Unlike the simulator it has no randomness of its own: tests decide which messages are
 * delivered (h_deliver, with a per-link cut), when nodes tick, crash and restart. Each
 * node's ready is processed at once: entries and hard state go to its "disk", committed
 * entries to its applied list, read states to its reads. Header-only, static functions. */
#ifndef SHOAL_RAFT_HARNESS_H
#define SHOAL_RAFT_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft.h"

#define H_MAX 6

typedef struct {
    raft_t *r;
    bool up;
    raft_config_t cfg;
    /* disk */
    raft_hard_state_t hs;
    raft_snapshot_meta_t snap;
    uint8_t snap_data[64];
    size_t snap_len;
    raft_entry_t log[512];
    size_t n_log;
    /* applied */
    raft_entry_t applied[512];
    size_t n_applied;
    uint64_t applied_index;
    raft_read_state_t reads[64];
    size_t n_reads;
    /* snapshot receive */
    uint8_t recv[64];
    size_t recv_len;
    bool corrupt_next; /* the write callback rejects the next last chunk */
    unsigned chunks_written;
} h_node_t;

typedef struct {
    h_node_t n[H_MAX + 1];
    int count;
    raft_msg_t q[4096];
    size_t nq;
    bool cut[H_MAX + 1][H_MAX + 1];
    size_t sent[RAFT_MSG_TYPE_MAX + 1];
} harness_t;

static inline int64_t h_snap_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf,
                                  size_t cap, uint64_t *total, uint64_t *checksum)
{
    h_node_t *n = ctx;
    if (n->snap.index != index)
        return SHOAL_ENOTFOUND;
    *total = n->snap_len;
    *checksum = 0;
    for (size_t i = 0; i < n->snap_len; i++)
        *checksum = *checksum * 31 + n->snap_data[i];
    size_t len = offset < n->snap_len ? n->snap_len - offset : 0;
    if (len > cap)
        len = cap;
    memcpy(buf, n->snap_data + offset, len);
    return (int64_t)len;
}

static inline int h_snap_write(void *ctx, const raft_snapshot_chunk_t *c)
{
    h_node_t *n = ctx;
    if (c->offset == 0)
        n->recv_len = 0;
    if (c->offset != n->recv_len || n->recv_len + c->len > sizeof(n->recv))
        return SHOAL_EINVAL;
    memcpy(n->recv + n->recv_len, c->data, c->len);
    n->recv_len += c->len;
    n->chunks_written++;
    if (c->last) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n->recv_len; i++)
            sum = sum * 31 + n->recv[i];
        if (n->corrupt_next) {
            n->corrupt_next = false;
            return SHOAL_ECORRUPT;
        }
        if (sum != c->checksum || n->recv_len != c->total_size)
            return SHOAL_ECORRUPT;
    }
    return 0;
}

static inline void h_config(raft_config_t *c, uint64_t id)
{
    raft_config_default(c);
    c->id = id;
    c->group = 7;
    c->election_tick = 10;
    c->heartbeat_tick = 1;
    c->seed = 42;
    c->snapshot_chunk_bytes = 4;
}

static raft_t *h_start(harness_t *h, int id)
{
    h_node_t *n = &h->n[id];
    n->cfg.snapshot_io = (raft_snapshot_io_t){n, h_snap_read, h_snap_write};
    raft_restore_t rs = {.hard_state = n->hs,
                         .snapshot = n->snap,
                         .entries = n->log,
                         .n_entries = n->n_log,
                         .applied = n->snap.index};
    n->r = raft_new(&n->cfg, &rs, NULL);
    n->up = n->r != NULL;
    n->applied_index = n->snap.index;
    return n->r;
}

/* count nodes, voters 1..voters, each with the test config; nodes above voters join empty */
static inline void h_init(harness_t *h, int count, int voters, void (*tweak)(raft_config_t *))
{
    memset(h, 0, sizeof(*h));
    h->count = count;
    for (int i = 1; i <= count; i++) {
        h_node_t *n = &h->n[i];
        h_config(&n->cfg, (uint64_t)i);
        if (tweak)
            tweak(&n->cfg);
        if (i <= voters) {
            n->snap.conf.n_voters = (size_t)voters;
            for (int v = 0; v < voters; v++)
                n->snap.conf.voters[v] = (uint64_t)v + 1;
        }
        h_start(h, i);
    }
}

static inline void h_free_entries(raft_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].data);
}

static inline void h_crash(harness_t *h, int id)
{
    raft_destroy(&h->n[id].r);
    h->n[id].up = false;
    h_free_entries(h->n[id].applied, h->n[id].n_applied);
    h->n[id].n_applied = 0;
}

static inline void h_destroy(harness_t *h)
{
    for (int i = 1; i <= h->count; i++) {
        raft_destroy(&h->n[i].r);
        h_free_entries(h->n[i].log, h->n[i].n_log);
        h_free_entries(h->n[i].applied, h->n[i].n_applied);
        for (size_t k = 0; k < h->n[i].n_reads; k++)
            free(h->n[i].reads[k].ctx);
    }
    for (size_t i = 0; i < h->nq; i++)
        raft_msg_free_contents(&h->q[i]);
}

static inline void h_copy_entry(raft_entry_t *d, const raft_entry_t *e)
{
    *d = *e;
    d->data = e->len ? malloc(e->len) : NULL;
    if (e->len)
        memcpy(d->data, e->data, e->len);
}

static inline void h_enqueue(harness_t *h, const raft_msg_t *m)
{
    h->sent[m->type]++;
    if (h->nq < sizeof(h->q) / sizeof(h->q[0]))
        raft_msg_copy(&h->q[h->nq++], m);
}

static inline void h_persist(h_node_t *n, const raft_ready_t *rd)
{
    if (rd->snapshot) {
        n->snap = *rd->snapshot;
        memcpy(n->snap_data, n->recv, n->recv_len);
        n->snap_len = n->recv_len;
        h_free_entries(n->log, n->n_log);
        n->n_log = 0;
        n->applied_index = rd->snapshot->index;
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry_t *e = &rd->entries[i];
        while (n->n_log && n->log[n->n_log - 1].index >= e->index)
            free(n->log[--n->n_log].data);
        h_copy_entry(&n->log[n->n_log++], e);
    }
    if (rd->hard_state_changed)
        n->hs = rd->hard_state;
}

static inline void h_ready(harness_t *h, int id)
{
    h_node_t *n = &h->n[id];
    raft_ready_t rd;
    while (n->up && raft_has_ready(n->r) && raft_ready(n->r, &rd) == 0) {
        for (size_t i = 0; i < rd.n_msgs; i++)
            h_enqueue(h, &rd.msgs[i]);
        h_persist(n, &rd);
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++)
            h_enqueue(h, &rd.msgs_after_persist[i]);
        for (size_t i = 0; i < rd.n_committed; i++) {
            h_copy_entry(&n->applied[n->n_applied++], &rd.committed[i]);
            n->applied_index = rd.committed[i].index;
        }
        for (size_t i = 0; i < rd.n_reads && n->n_reads < 64; i++) {
            n->reads[n->n_reads] = rd.reads[i];
            n->reads[n->n_reads].ctx = malloc(rd.reads[i].ctx_len + 1);
            memcpy(n->reads[n->n_reads].ctx, rd.reads[i].ctx, rd.reads[i].ctx_len);
            n->n_reads++;
        }
        raft_advance(n->r, &rd);
    }
}

static inline void h_ready_all(harness_t *h)
{
    for (int i = 1; i <= h->count; i++)
        h_ready(h, i);
}

/* Delivers queued messages (and what they cause) until the network is quiet. */
static inline void h_deliver(harness_t *h)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        h_ready_all(h);
        if (h->nq == 0)
            return;
        size_t n = h->nq;
        raft_msg_t *batch = malloc(n * sizeof(*batch));
        memcpy(batch, h->q, n * sizeof(*batch));
        h->nq = 0;
        for (size_t i = 0; i < n; i++) {
            raft_msg_t *m = &batch[i];
            if (m->to <= (uint64_t)h->count && h->n[m->to].up && !h->cut[m->from][m->to])
                raft_step(h->n[m->to].r, m);
            raft_msg_free_contents(m);
        }
        free(batch);
    }
}

static inline void h_tick(harness_t *h, int id)
{
    if (h->n[id].up)
        raft_tick(h->n[id].r);
}

/* Ticks every live node `ticks` times, delivering after each tick. */
static inline void h_run(harness_t *h, int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (int i = 1; i <= h->count; i++)
            h_tick(h, i);
        h_deliver(h);
    }
}

static inline raft_status_t h_status(harness_t *h, int id)
{
    raft_status_t st;
    raft_status(h->n[id].up ? h->n[id].r : NULL, &st);
    return st;
}

static inline int h_leader(harness_t *h)
{
    int l = 0;
    uint64_t term = 0;
    for (int i = 1; i <= h->count; i++) {
        raft_status_t st = h_status(h, i);
        if (h->n[i].up && st.role == RAFT_LEADER && st.term >= term) {
            l = i;
            term = st.term;
        }
    }
    return l;
}

/* Makes node id campaign at once: a MSG_TIMEOUT_NOW as if a leader handed over (it skips
 * pre-vote and the voters' leader stickiness), then ticks if it is not leader yet. */
static inline void h_elect(harness_t *h, int id)
{
    raft_status_t st = h_status(h, id);
    raft_msg_t m = {.type = RAFT_MSG_TIMEOUT_NOW,
                    .group = 7,
                    .from = id == 1 ? 2 : 1,
                    .to = (uint64_t)id,
                    .term = st.term};
    if (st.role != RAFT_LEADER)
        raft_step(h->n[id].r, &m);
    h_deliver(h);
    for (int t = 0; t < 40 && h_status(h, id).role != RAFT_LEADER; t++) {
        h_tick(h, id);
        h_deliver(h);
    }
}

static inline void h_cut_node(harness_t *h, int id, bool cut)
{
    for (int i = 1; i <= H_MAX; i++) {
        h->cut[id][i] = cut;
        h->cut[i][id] = cut;
    }
}

#endif
