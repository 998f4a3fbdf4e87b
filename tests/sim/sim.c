/* sim.c - a cluster of Raft cores on a fake network and fake disks, driven by one seed.
 *
 * Model:
 *  - Five nodes (ids 1..5); the group starts with voters {1,2,3} (or {1..5}, or {1}), the
 *    other nodes run with an empty configuration and join through membership changes.
 *  - Time is ticks. Each tick: due messages are delivered, every live node ticks, clients
 *    act, faults are drawn, every live node's ready is processed, the checkers run.
 *  - Network: each message gets a random delay (so reordering), may be dropped or
 *    duplicated, and is dropped when a partition blocks its direction at send or delivery.
 *  - Disk: a node's disk holds hard state, log and snapshot. A ready is written before
 *    its after-persist messages go out; a slow disk keeps it pending for some ticks; a crash
 *    throws away the pending ready and the in-memory state machine.
 *  - State machine: K keys, each holding the id of the last write; snapshots serialize it.
 *  - Clients: one op at a time each; writes are proposals, reads use ReadIndex on any node
 *    (followers forward). Each op records invoke/complete on a global event clock.
 * After fault_ticks the faults stop, everything heals and restarts, and the run must
 * reach a leader with all members applied to its commit within settle_ticks.
 *
 * Everything random comes from one xorshift generator, so a seed replays exactly. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "engine/checksum.h"
#include "engine/raft/raft.h"
#include "tests/sim/check.h"
#include "tests/sim/sim.h"

#ifdef SHOAL_RAFT_PLANTED_BUGS
extern int raft_planted_bug;
#endif

#define NODES 5
#define KEYS 3
#define CLIENTS 4
#define OP_TIMEOUT 60

typedef struct {
    uint64_t at, seq, from, to;
    raft_msg_t m;
} net_msg_t;

typedef struct {
    uint64_t id;
    bool up;
    raft_t *r;
    /* disk */
    raft_hard_state_t hs;
    raft_snapshot_meta_t snap;
    uint8_t *snap_data;
    size_t snap_len;
    raft_entry_t *log;
    size_t n_log, cap_log;
    unsigned disk_delay; /* >0: slow disk */
    /* pending ready */
    bool rd_pending;
    raft_ready_t rd;
    uint64_t rd_done_at;
    /* memory */
    uint64_t kv[KEYS];
    uint64_t applied;
    uint64_t commit_seen;
    raft_role_t role;
    uint8_t *recv;
    size_t recv_len, recv_cap;
    bool corrupt_next; /* the next received snapshot fails its checksum */
} node_t;

typedef struct {
    bool busy;
    int op;        /* index into the history */
    uint64_t node; /* where the op waits */
    uint64_t index;
    uint64_t read_index;
    bool read_ready;
    uint64_t started;
    uint64_t guess; /* which node this client believes is the leader */
} client_t;

typedef struct sim {
    sim_options_t opt;
    sim_result_t *res;
    uint64_t rng;
    bool drop_trailing; /* raft_drop_trailing after some snapshots */
    uint64_t now;
    node_t nodes[NODES + 1];
    net_msg_t *net;
    size_t n_net, cap_net;
    uint64_t net_seq;
    bool blocked[NODES + 1][NODES + 1];
    unsigned drop_pct, dup_pct, max_delay;
    raft_config_t cfg;
    unsigned snap_every;
    client_t clients[CLIENTS];
    uint64_t next_op_id;
    check_t chk;
    bool failed;
} sim_t;

static uint64_t rnd(sim_t *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 2685821657736338717ull;
}

static unsigned below(sim_t *s, unsigned n)
{
    return n ? (unsigned)(rnd(s) % n) : 0;
}

static bool chance(sim_t *s, unsigned pct)
{
    return below(s, 100) < pct;
}

static void trace(sim_t *s, const char *fmt, ...)
{
    if (!s->opt.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%6llu] ", (unsigned long long)s->now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* First violation wins; the run stops at the end of the tick. */
void sim_fail(sim_t *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    s->res->ok = false;
    s->res->tick = s->now;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->what, sizeof(s->res->what), fmt, ap);
    va_end(ap);
    trace(s, "VIOLATION %s", s->res->what);
}

uint64_t sim_now(const sim_t *s)
{
    return s->now;
}

/* ---- network ---- */

static void net_push(sim_t *s, const raft_msg_t *m, uint64_t at)
{
    if (s->n_net == s->cap_net) {
        s->cap_net = s->cap_net ? s->cap_net * 2 : 256;
        s->net = realloc(s->net, s->cap_net * sizeof(*s->net));
    }
    net_msg_t *n = &s->net[s->n_net++];
    n->at = at;
    n->seq = s->net_seq++;
    n->from = m->from;
    n->to = m->to;
    raft_msg_copy(&n->m, m);
}

static void send_msg(sim_t *s, const raft_msg_t *m)
{
    if (s->opt.verbose && m->type != RAFT_MSG_HEARTBEAT && m->type != RAFT_MSG_HEARTBEAT_RESP)
        trace(s, "send %llu->%llu %s term %llu index %llu log_term %llu commit %llu n %zu%s%s",
              (unsigned long long)m->from, (unsigned long long)m->to, raft_msg_type_name(m->type),
              (unsigned long long)m->term, (unsigned long long)m->index,
              (unsigned long long)m->log_term, (unsigned long long)m->commit, m->n_entries,
              m->reject ? " reject" : "", s->blocked[m->from][m->to] ? " (blocked)" : "");
    if (m->to == 0 || m->to > NODES || s->blocked[m->from][m->to] || chance(s, s->drop_pct))
        return;
    net_push(s, m, s->now + 1 + below(s, s->max_delay));
    if (chance(s, s->dup_pct))
        net_push(s, m, s->now + 1 + below(s, s->max_delay * 2 + 1));
}

static int cmp_net(const void *a, const void *b)
{
    const net_msg_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void deliver(sim_t *s)
{
    if (s->n_net == 0)
        return;
    qsort(s->net, s->n_net, sizeof(*s->net), cmp_net);
    size_t k = 0;
    while (k < s->n_net && s->net[k].at <= s->now)
        k++;
    if (k == 0)
        return;
    net_msg_t *due = malloc(k * sizeof(*due));
    memcpy(due, s->net, k * sizeof(*due));
    memmove(s->net, s->net + k, (s->n_net - k) * sizeof(*s->net));
    s->n_net -= k;
    for (size_t i = 0; i < k; i++) {
        node_t *n = &s->nodes[due[i].to];
        if (n->up && !s->blocked[due[i].from][due[i].to] && !s->failed) {
            int rc = raft_step(n->r, &due[i].m);
            if (rc < 0)
                sim_fail(s, "node %llu refused a %s from %llu: %s", (unsigned long long)n->id,
                         raft_msg_type_name(due[i].m.type), (unsigned long long)due[i].from,
                         shoal_strerror(rc));
        }
        raft_msg_free_contents(&due[i].m);
    }
    free(due);
}

/* ---- disk and state machine ---- */

static void disk_truncate(node_t *n, uint64_t from_index)
{
    while (n->n_log && n->log[n->n_log - 1].index >= from_index) {
        free(n->log[n->n_log - 1].data);
        n->n_log--;
    }
}

static void disk_drop_to(node_t *n, uint64_t index)
{
    size_t k = 0;
    while (k < n->n_log && n->log[k].index <= index)
        free(n->log[k++].data);
    if (k == 0)
        return;
    memmove(n->log, n->log + k, (n->n_log - k) * sizeof(*n->log));
    n->n_log -= k;
}

static uint64_t disk_term(const node_t *n, uint64_t index)
{
    if (index == n->snap.index)
        return n->snap.term;
    if (n->n_log && index >= n->log[0].index && index <= n->log[n->n_log - 1].index)
        return n->log[index - n->log[0].index].term;
    return 0;
}

static void disk_append(sim_t *s, node_t *n, const raft_entry_t *e)
{
    uint64_t last = n->n_log ? n->log[n->n_log - 1].index : n->snap.index;
    if (e->index > last + 1) {
        sim_fail(s, "node %llu persisted a gap: entry %llu after %llu", (unsigned long long)n->id,
                 (unsigned long long)e->index, (unsigned long long)last);
        return;
    }
    disk_truncate(n, e->index);
    check_log_entry(&s->chk, s, n->id, e, disk_term(n, e->index - 1));
    if (n->n_log == n->cap_log) {
        n->cap_log = n->cap_log ? n->cap_log * 2 : 64;
        n->log = realloc(n->log, n->cap_log * sizeof(*n->log));
    }
    raft_entry_t *d = &n->log[n->n_log++];
    *d = *e;
    d->data = NULL;
    if (e->len) {
        d->data = malloc(e->len);
        memcpy(d->data, e->data, e->len);
    }
}

static size_t sm_encode(const node_t *n, uint8_t *buf)
{
    memcpy(buf, &n->applied, 8);
    memcpy(buf + 8, n->kv, sizeof(n->kv));
    return 8 + sizeof(n->kv);
}

static void sm_decode(node_t *n, const uint8_t *buf, size_t len)
{
    memset(n->kv, 0, sizeof(n->kv));
    n->applied = 0;
    if (len != 8 + sizeof(n->kv))
        return;
    memcpy(&n->applied, buf, 8);
    memcpy(n->kv, buf + 8, sizeof(n->kv));
}

static int64_t snap_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                         uint64_t *total, uint64_t *checksum)
{
    node_t *n = ctx;
    if (n->snap.index != index || !n->snap_data)
        return SHOAL_ENOTFOUND;
    *total = n->snap_len;
    *checksum = shoal_hash64(n->snap_data, n->snap_len);
    if (offset >= n->snap_len)
        return 0;
    size_t len = n->snap_len - offset < cap ? n->snap_len - offset : cap;
    memcpy(buf, n->snap_data + offset, len);
    return (int64_t)len;
}

static int snap_write(void *ctx, const raft_snapshot_chunk_t *c)
{
    node_t *n = ctx;
    if (c->offset == 0)
        n->recv_len = 0;
    if (c->offset != n->recv_len)
        return SHOAL_EINVAL;
    if (n->recv_len + c->len > n->recv_cap) {
        n->recv_cap = n->recv_len + c->len + 64;
        n->recv = realloc(n->recv, n->recv_cap);
    }
    memcpy(n->recv + n->recv_len, c->data, c->len);
    n->recv_len += c->len;
    if (c->last && n->corrupt_next && n->recv_len) { /* a bit flipped on the way */
        n->corrupt_next = false;
        n->recv[0] ^= 1;
    }
    if (c->last &&
        (n->recv_len != c->total_size || shoal_hash64(n->recv, n->recv_len) != c->checksum))
        return SHOAL_ECORRUPT;
    return 0;
}

/* ---- clients ---- */

static void client_done(sim_t *s, client_t *c, op_result_t how, uint64_t value, uint64_t pos)
{
    check_op_complete(&s->chk, c->op, how, value, pos);
    c->busy = false;
}

/* A node applied index: complete the write waiting for it, if any. */
static void clients_on_apply(sim_t *s, node_t *n, uint64_t index, uint64_t op_id)
{
    for (int i = 0; i < CLIENTS; i++) {
        client_t *c = &s->clients[i];
        if (!c->busy || c->node != n->id || check_op_is_read(&s->chk, c->op) || c->index != index)
            continue;
        if (check_op_id(&s->chk, c->op) == op_id) {
            s->res->acked_writes++;
            client_done(s, c, OP_OK, 0, index);
        } else {
            client_done(s, c, OP_FAILED, 0, 0); /* another entry took the index */
        }
    }
}

/* Reads whose index is applied are served from the local state machine. */
static void clients_serve_reads(sim_t *s, node_t *n)
{
    for (int i = 0; i < CLIENTS; i++) {
        client_t *c = &s->clients[i];
        if (c->busy && c->node == n->id && check_op_is_read(&s->chk, c->op) && c->read_ready &&
            n->applied >= c->read_index) {
            s->res->reads++;
            client_done(s, c, OP_OK, n->kv[check_op_key(&s->chk, c->op)], n->applied);
        }
    }
}

static void clients_on_read_state(sim_t *s, node_t *n, const raft_read_state_t *rs)
{
    uint64_t op_id;
    if (rs->ctx_len != 8)
        return;
    memcpy(&op_id, rs->ctx, 8);
    for (int i = 0; i < CLIENTS; i++) {
        client_t *c = &s->clients[i];
        if (c->busy && c->node == n->id && check_op_id(&s->chk, c->op) == op_id && !c->read_ready) {
            c->read_ready = true;
            c->read_index = rs->index;
        }
    }
}

static void client_start(sim_t *s, client_t *c)
{
    uint64_t key = below(s, KEYS), op_id = ++s->next_op_id;
    bool read = chance(s, 40);
    if (read && chance(s, 50))
        c->guess = 1 + below(s, NODES); /* reads may go to any replica (followers forward) */
    node_t *n = &s->nodes[c->guess];
    if (!n->up) {
        c->guess = 1 + below(s, NODES);
        return;
    }
    uint64_t hint = 0;
    if (read) {
        int rc = raft_read_index(n->r, &op_id, 8);
        if (rc < 0) {
            c->guess = 1 + below(s, NODES);
            return;
        }
        c->op = check_op_invoke(&s->chk, true, key, op_id);
        c->read_ready = false;
    } else {
        uint64_t data[2] = {key, op_id};
        c->op = check_op_invoke(&s->chk, false, key, op_id);
        int64_t idx = raft_propose(n->r, data, sizeof(data), &hint);
        if (idx < 0) {
            client_done(s, c, OP_FAILED, 0, 0);
            c->guess = hint ? hint : 1 + below(s, NODES);
            return;
        }
        c->index = (uint64_t)idx;
    }
    c->busy = true;
    c->node = n->id;
    c->started = s->now;
}

static void clients_tick(sim_t *s, bool start_new)
{
    for (int i = 0; i < CLIENTS; i++) {
        client_t *c = &s->clients[i];
        if (c->busy && (s->now - c->started > OP_TIMEOUT || !s->nodes[c->node].up))
            client_done(s, c, OP_UNKNOWN, 0, 0);
        if (c->busy && !check_op_is_read(&s->chk, c->op)) {
            /* the node lost leadership: the runtime would fail the proposal (outcome
             * unknown) and the client would follow the new leader */
            raft_status_t st;
            raft_status(s->nodes[c->node].r, &st);
            if (st.role != RAFT_LEADER) {
                client_done(s, c, OP_UNKNOWN, 0, 0);
                c->guess = st.leader ? st.leader : 1 + below(s, NODES);
            }
        }
        if (!c->busy && start_new && chance(s, 30))
            client_start(s, c);
    }
}

static void clients_abandon_node(sim_t *s, uint64_t id)
{
    for (int i = 0; i < CLIENTS; i++)
        if (s->clients[i].busy && s->clients[i].node == id)
            client_done(s, &s->clients[i], OP_UNKNOWN, 0, 0);
}

/* ---- nodes ---- */

static void apply_entry(sim_t *s, node_t *n, const raft_entry_t *e)
{
    if (e->index != n->applied + 1) {
        sim_fail(s, "node %llu applied %llu after %llu", (unsigned long long)n->id,
                 (unsigned long long)e->index, (unsigned long long)n->applied);
        return;
    }
    check_apply(&s->chk, s, n->id, e);
    n->applied = e->index;
    uint64_t op_id = 0;
    if (e->type == RAFT_ENTRY_NORMAL && e->len == 16) {
        uint64_t d[2];
        memcpy(d, e->data, 16);
        if (d[0] < KEYS)
            n->kv[d[0]] = d[1];
        op_id = d[1];
    }
    clients_on_apply(s, n, e->index, op_id);
}

static void install_snapshot(sim_t *s, node_t *n, const raft_snapshot_meta_t *meta)
{
    free(n->snap_data);
    n->snap_data = malloc(n->recv_len ? n->recv_len : 1);
    memcpy(n->snap_data, n->recv, n->recv_len);
    n->snap_len = n->recv_len;
    n->snap = *meta;
    disk_truncate(n, 0);
    sm_decode(n, n->snap_data, n->snap_len);
    if (n->applied != meta->index)
        sim_fail(s, "node %llu installed a snapshot of %llu labelled %llu",
                 (unsigned long long)n->id, (unsigned long long)n->applied,
                 (unsigned long long)meta->index);
    check_snapshot(&s->chk, s, n->id, meta->index, n->kv, KEYS);
    s->res->snapshots_sent++;
}

/* The write of a ready is durable: the rest of it may happen. */
static void finish_ready(sim_t *s, node_t *n)
{
    raft_ready_t *rd = &n->rd;
    check_ready(&s->chk, s, n->id, rd);
    if (rd->snapshot)
        install_snapshot(s, n, rd->snapshot);
    for (size_t i = 0; i < rd->n_entries && !s->failed; i++)
        disk_append(s, n, &rd->entries[i]);
    if (rd->hard_state_changed)
        n->hs = rd->hard_state;
    for (size_t i = 0; i < rd->n_msgs_after_persist; i++)
        send_msg(s, &rd->msgs_after_persist[i]);
    for (size_t i = 0; i < rd->n_committed && !s->failed; i++)
        apply_entry(s, n, &rd->committed[i]);
    for (size_t i = 0; i < rd->n_reads; i++)
        clients_on_read_state(s, n, &rd->reads[i]);
    raft_advance(n->r, rd);
    n->rd_pending = false;
    clients_serve_reads(s, n);
}

static void maybe_snapshot(sim_t *s, node_t *n)
{
    if (n->rd_pending || n->applied < n->snap.index + s->snap_every)
        return;
    uint8_t buf[8 + 8 * KEYS];
    size_t len = sm_encode(n, buf);
    raft_snapshot_meta_t meta;
    if (raft_snapshot_taken(n->r, n->applied, &meta) < 0) {
        sim_fail(s, "node %llu: snapshot at applied %llu refused", (unsigned long long)n->id,
                 (unsigned long long)n->applied);
        return;
    }
    free(n->snap_data);
    n->snap_data = malloc(len);
    memcpy(n->snap_data, buf, len);
    n->snap_len = len;
    n->snap = meta;
    disk_drop_to(n, meta.index);
    if (s->drop_trailing && (meta.index & 1))
        raft_drop_trailing(n->r);
}

static void process_ready(sim_t *s, node_t *n)
{
    if (n->rd_pending) {
        if (s->now < n->rd_done_at)
            return;
        finish_ready(s, n);
    }
    for (int rounds = 0; rounds < 8 && !s->failed && raft_has_ready(n->r); rounds++) {
        if (raft_ready(n->r, &n->rd) < 0) {
            sim_fail(s, "node %llu: ready failed", (unsigned long long)n->id);
            return;
        }
        n->rd_pending = true;
        if (n->rd.soft_state_changed && n->rd.soft_state.role == RAFT_LEADER &&
            n->role != RAFT_LEADER)
            s->res->elections++;
        n->role = n->rd.soft_state.role;
        if (n->rd.soft_state_changed || n->rd.hard_state_changed)
            trace(s, "node %llu: %s term %llu vote %llu commit %llu leader %llu",
                  (unsigned long long)n->id, raft_role_name(n->role),
                  (unsigned long long)n->rd.hard_state.term,
                  (unsigned long long)n->rd.hard_state.vote,
                  (unsigned long long)n->rd.hard_state.commit,
                  (unsigned long long)n->rd.soft_state.leader);
        for (size_t i = 0; i < n->rd.n_msgs; i++)
            send_msg(s, &n->rd.msgs[i]);
        bool writes = n->rd.n_entries || n->rd.hard_state_changed || n->rd.snapshot;
        if (writes && n->disk_delay) {
            n->rd_done_at = s->now + n->disk_delay;
            return;
        }
        finish_ready(s, n);
    }
    maybe_snapshot(s, n);
}

static void node_start(sim_t *s, node_t *n)
{
    raft_config_t c = s->cfg;
    c.id = n->id;
    c.snapshot_io = (raft_snapshot_io_t){n, snap_read, snap_write};
    raft_restore_t rs = {.hard_state = n->hs,
                         .snapshot = n->snap,
                         .entries = n->log,
                         .n_entries = n->n_log,
                         .applied = n->snap.index};
    int err = 0;
    n->r = raft_new(&c, &rs, &err);
    if (!n->r) {
        sim_fail(s, "node %llu: restart refused its own disk: %s", (unsigned long long)n->id,
                 shoal_strerror(err));
        return;
    }
    sm_decode(n, n->snap_data, n->snap_len);
    n->applied = n->snap.index;
    n->up = true;
    n->role = RAFT_FOLLOWER;
    n->rd_pending = false;
}

static void node_crash(sim_t *s, node_t *n)
{
    if (n->rd_pending)
        raft_ready_free(NULL, &n->rd); /* never reached the disk */
    n->rd_pending = false;
    raft_destroy(&n->r);
    n->up = false;
    clients_abandon_node(s, n->id);
    s->res->crashes++;
    trace(s, "crash node %llu", (unsigned long long)n->id);
}

/* ---- faults ---- */

static node_t *find_leader(sim_t *s)
{
    node_t *best = NULL;
    uint64_t best_term = 0;
    for (int i = 1; i <= NODES; i++) {
        node_t *n = &s->nodes[i];
        raft_status_t st;
        if (!n->up)
            continue;
        raft_status(n->r, &st);
        if (st.role == RAFT_LEADER && st.term >= best_term) {
            best = n;
            best_term = st.term;
        }
    }
    return best;
}

static void fault_membership(sim_t *s)
{
    node_t *l = find_leader(s);
    if (!l)
        return;
    raft_status_t st;
    raft_status(l->r, &st);
    raft_conf_change_t cc = {.node_id = 1 + below(s, NODES)};
    bool voter = false, learner = false;
    for (size_t i = 0; i < st.conf.n_voters; i++)
        voter |= st.conf.voters[i] == cc.node_id;
    for (size_t i = 0; i < st.conf.n_learners; i++)
        learner |= st.conf.learners[i] == cc.node_id;
    if (learner)
        cc.type = chance(s, 70) ? RAFT_CONF_PROMOTE : RAFT_CONF_REMOVE;
    else if (voter)
        cc.type = st.conf.n_voters > 2 ? RAFT_CONF_REMOVE : RAFT_CONF_ADD_LEARNER;
    else
        cc.type = chance(s, 70) ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER;
    int64_t rc = raft_propose_conf_change(l->r, &cc, NULL);
    trace(s, "conf change %d node %llu on leader %llu: %lld", cc.type,
          (unsigned long long)cc.node_id, (unsigned long long)l->id, (long long)rc);
    if (rc > 0)
        s->res->conf_changes++;
}

static void fault_transfer(sim_t *s)
{
    node_t *l = find_leader(s);
    if (!l)
        return;
    int rc = raft_transfer_leader(l->r, 1 + below(s, NODES));
    if (rc == 0)
        s->res->transfers++;
}

static void fault_partition(sim_t *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
    if (chance(s, 50)) { /* symmetric: split into two sides */
        bool side[NODES + 1];
        for (int i = 1; i <= NODES; i++)
            side[i] = chance(s, 50);
        for (int a = 1; a <= NODES; a++)
            for (int b = 1; b <= NODES; b++)
                s->blocked[a][b] = side[a] != side[b];
        trace(s, "partition (symmetric)");
    } else { /* one-way links */
        for (int k = 0; k < 3; k++)
            s->blocked[1 + below(s, NODES)][1 + below(s, NODES)] = true;
        trace(s, "partition (one-way)");
    }
}

/* Cut the leader (and maybe one follower) off from the rest: the classic stale leader. */
static void fault_isolate_leader(sim_t *s)
{
    node_t *l = find_leader(s);
    if (!l)
        return;
    uint64_t buddy = chance(s, 50) ? 1 + below(s, NODES) : l->id;
    memset(s->blocked, 0, sizeof(s->blocked));
    for (int a = 1; a <= NODES; a++)
        for (int b = 1; b <= NODES; b++) {
            bool sa = (uint64_t)a == l->id || (uint64_t)a == buddy;
            bool sb = (uint64_t)b == l->id || (uint64_t)b == buddy;
            s->blocked[a][b] = sa != sb;
        }
    trace(s, "isolate leader %llu with %llu", (unsigned long long)l->id, (unsigned long long)buddy);
}

/* Cut only the link between the leader and one follower: a non-transitive partition, where
 * the follower hears nothing from the leader but everyone else does (the disruptive
 * candidate of pre-vote and check-quorum fame). */
static void fault_partial_partition(sim_t *s)
{
    node_t *l = find_leader(s);
    if (!l)
        return;
    uint64_t f = 1 + below(s, NODES);
    if (f == l->id)
        return;
    s->blocked[l->id][f] = s->blocked[f][l->id] = true;
    trace(s, "cut link %llu <-> %llu", (unsigned long long)l->id, (unsigned long long)f);
}

static void faults(sim_t *s)
{
    unsigned up = 0;
    for (int i = 1; i <= NODES; i++)
        up += s->nodes[i].up;
    unsigned roll = below(s, 1000);
    node_t *n = &s->nodes[1 + below(s, NODES)];
    node_t *l = find_leader(s);
    if (roll < 6) {
        if (n->up && up > 3)
            node_crash(s, n);
    } else if (roll < 12) {
        if (l && up > 3)
            node_crash(s, l);
    } else if (roll < 24) {
        if (!n->up) {
            node_start(s, n);
            trace(s, "restart node %llu", (unsigned long long)n->id);
        }
    } else if (roll < 28)
        fault_partition(s);
    else if (roll < 32)
        fault_isolate_leader(s);
    else if (roll < 34)
        fault_partial_partition(s);
    else if (roll < 39)
        memset(s->blocked, 0, sizeof(s->blocked));
    else if (roll < 43) {
        s->drop_pct = below(s, 25);
        s->dup_pct = below(s, 10);
        s->max_delay = 1 + below(s, 6);
    } else if (roll < 49) {
        n->disk_delay = chance(s, 50) ? 1 + below(s, 8) : 0;
        n->corrupt_next = chance(s, 30);
    } else if (roll < 55)
        fault_membership(s);
    else if (roll < 59)
        fault_transfer(s);
}

static void heal(sim_t *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
    s->drop_pct = s->dup_pct = 0;
    s->max_delay = 2;
    for (int i = 1; i <= NODES; i++) {
        s->nodes[i].disk_delay = 0;
        if (!s->nodes[i].up && !s->failed)
            node_start(s, &s->nodes[i]);
    }
    trace(s, "heal");
}

/* ---- the run ---- */

static void step_all(sim_t *s, bool with_faults, bool clients)
{
    s->now++;
    deliver(s);
    for (int i = 1; i <= NODES && !s->failed; i++)
        if (s->nodes[i].up)
            raft_tick(s->nodes[i].r);
    clients_tick(s, clients);
    if (with_faults)
        faults(s);
    for (int i = 1; i <= NODES && !s->failed; i++)
        if (s->nodes[i].up)
            process_ready(s, &s->nodes[i]);
    for (int i = 1; i <= NODES && !s->failed; i++)
        if (s->nodes[i].up) {
            process_ready(s, &s->nodes[i]); /* reads served after others applied */
            clients_serve_reads(s, &s->nodes[i]);
        }
    if (!s->failed)
        check_step(&s->chk, s);
}

raft_t *sim_node_raft(sim_t *s, uint64_t id)
{
    return id >= 1 && id <= NODES && s->nodes[id].up ? s->nodes[id].r : NULL;
}

int sim_node_count(void)
{
    return NODES;
}

/* Liveness: a leader whose term is the highest, committed in its term, and every member
 * applied up to its commit. */
static bool settled(sim_t *s)
{
    node_t *l = find_leader(s);
    if (!l)
        return false;
    raft_status_t st;
    raft_status(l->r, &st);
    if (raft_term_at(l->r, st.commit) != st.term || st.lead_transferee)
        return false;
    uint64_t members[2 * RAFT_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < st.conf.n_voters; i++)
        members[n++] = st.conf.voters[i];
    for (size_t i = 0; i < st.conf.n_learners; i++)
        members[n++] = st.conf.learners[i];
    for (size_t i = 0; i < n; i++) {
        node_t *m = &s->nodes[members[i]];
        raft_status_t o;
        raft_status(m->r, &o);
        if (!m->up || m->applied != st.commit || o.term > st.term)
            return false;
    }
    return true;
}

static void setup(sim_t *s, const sim_options_t *opt, sim_result_t *res)
{
    memset(s, 0, sizeof(*s));
    s->opt = *opt;
    s->res = res;
    memset(res, 0, sizeof(*res));
    res->ok = true;
    s->rng = (opt->seed * 0x9E3779B97F4A7C15ull) ^ 0xD1B54A32D192ED03ull;
    if (!s->rng)
        s->rng = 1;
    raft_config_default(&s->cfg);
    s->cfg.seed = rnd(s);
    s->cfg.election_tick = 10;
    s->cfg.heartbeat_tick = 1 + below(s, 3);
    s->cfg.prevote = chance(s, 85);
    /* without both, a removed node that never learns it was removed can disrupt forever */
    s->cfg.check_quorum = s->cfg.prevote ? chance(s, 85) : true;
    s->cfg.lease_read = s->cfg.check_quorum && chance(s, 30);
    s->cfg.lease_margin = 1;
    s->cfg.max_inflight = 1 + below(s, 16);
    s->cfg.max_msg_entries = 1 + below(s, 8);
    s->cfg.max_msg_bytes = 64;
    s->cfg.snapshot_chunk_bytes = 8 + below(s, 24);
    s->snap_every = 5 + below(s, 40);
    s->max_delay = 1 + below(s, 4);
    /* from its own hash of the seed, so the other draws (and known seeds) stay as they were */
    uint64_t th = (opt->seed + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull;
    th ^= th >> 31;
    s->cfg.snapshot_trailing_entries = (th & 1) ? 0 : (th >> 8) % 30;
    /* on half the seeds a byte bound of a few entries cuts them shorter, and on half the
     * trailing entries are dropped at every other snapshot (as an idle group does) */
    s->cfg.snapshot_trailing_bytes = ((th >> 40) & 1) ? (th >> 16) % 48 : 32u << 20;
    s->drop_trailing = (th >> 41) & 1;
    /* on half the seeds every probe with entries is held while its follower has it */
    s->cfg.probe_hold_bytes = ((th >> 42) & 1) ? 0 : 64u << 10;
    int voters = chance(s, 70) ? 3 : chance(s, 70) ? 5 : 1; /* the initial group */
    for (int i = 1; i <= NODES; i++) {
        node_t *n = &s->nodes[i];
        n->id = (uint64_t)i;
        if (i <= voters) {
            n->snap.conf.n_voters = (size_t)voters;
            for (int v = 0; v < voters; v++)
                n->snap.conf.voters[v] = (uint64_t)v + 1;
        }
        node_start(s, n);
    }
    for (int i = 0; i < CLIENTS; i++)
        s->clients[i].guess = 1 + below(s, NODES);
    check_init(&s->chk);
#ifdef SHOAL_RAFT_PLANTED_BUGS
    raft_planted_bug = opt->planted_bug;
#endif
    trace(s, "seed %llu: heartbeat %u prevote %d check_quorum %d lease %d inflight %u",
          (unsigned long long)opt->seed, s->cfg.heartbeat_tick, s->cfg.prevote, s->cfg.check_quorum,
          s->cfg.lease_read, s->cfg.max_inflight);
}

static void teardown(sim_t *s)
{
    for (int i = 1; i <= NODES; i++) {
        node_t *n = &s->nodes[i];
        if (n->rd_pending)
            raft_ready_free(NULL, &n->rd);
        raft_destroy(&n->r);
        disk_truncate(n, 0);
        free(n->log);
        free(n->snap_data);
        free(n->recv);
    }
    for (size_t i = 0; i < s->n_net; i++)
        raft_msg_free_contents(&s->net[i].m);
    free(s->net);
    check_free(&s->chk);
}

bool sim_run(const sim_options_t *opt, sim_result_t *res)
{
    sim_t *s = calloc(1, sizeof(*s));
    setup(s, opt, res);
    for (unsigned t = 0; t < opt->fault_ticks && !s->failed; t++)
        step_all(s, true, true);
    if (!s->failed)
        heal(s);
    unsigned t = 0;
    for (; t < opt->settle_ticks && !s->failed; t++) {
        step_all(s, false, false);
        if (settled(s))
            break;
    }
    res->settle_ticks = t + 1;
    if (!s->failed && t == opt->settle_ticks)
        sim_fail(s, "liveness: no settled leader %u ticks after the faults stopped",
                 opt->settle_ticks);
    /* let the last clients finish or time out, then judge the history */
    for (unsigned k = 0; k <= OP_TIMEOUT + 1 && !s->failed; k++)
        step_all(s, false, false);
    if (!s->failed)
        check_final(&s->chk, s);
    res->commits = check_max_applied(&s->chk);
    if (!s->failed) {
        /* every acknowledged write is applied on every member */
        node_t *l = find_leader(s);
        raft_status_t st;
        raft_status(l ? l->r : NULL, &st);
        for (size_t i = 0; l && i < st.conf.n_voters; i++)
            check_acked_applied(&s->chk, s, st.conf.voters[i], s->nodes[st.conf.voters[i]].applied);
    }
    teardown(s);
    free(s);
    return res->ok;
}
