/* check.c - what the simulator asserts about a run.
 *
 * At every step (Raft paper, Figure 3):
 *  - Election safety: at most one leader per term (leader_of[term]).
 *  - Log matching: two persisted entries with the same index and term hold the same data and
 *    follow the same previous term; by induction their logs are equal up to there. Kept as
 *    a table (index, term) -> (hash, previous term) over every entry any node persists.
 *  - Leader completeness: when a leader of term T is first seen, its log holds every entry
 *    known committed in a term below T (commit_term[i] is the lowest term of a leader seen
 *    with commit >= i).
 *  - State machine safety: every node applies the same entry at each index, in order.
 *  - Persisted hard state: a node never persists two different votes in one term, and its
 *    persisted commit never goes backwards.
 * At the end:
 *  - Linearizability, per key (linearizability is compositional). Writes are placed at
 *    their Raft index, reads at the index of the last write to their key that the serving
 *    node had applied. The history is linearizable in that order iff it respects real time:
 *    W1 done before W2 starts => w1 < w2; W before R => w <= r; R before W => r < w;
 *    R1 before R2 => r1 <= r2. Reads with equal positions order among themselves by time.
 *    Writes whose outcome the client never learned count if they were applied, with no end.
 *  - A write reported failed was never applied; every acknowledged write is applied on
 *    every voter. */
#include <stdlib.h>
#include <string.h>

#include "engine/checksum.h"
#include "tests/sim/check.h"

#define NO_END UINT64_MAX

void check_init(check_t *c)
{
    memset(c, 0, sizeof(*c));
}

void check_free(check_t *c)
{
    free(c->applied);
    free(c->commit_term);
    free(c->leader_of);
    free(c->lm);
    free(c->ops);
    free(c->op_index);
    memset(c, 0, sizeof(*c));
}

static void grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need < *cap)
        return;
    size_t n = *cap ? *cap : 64;
    while (n <= need)
        n *= 2;
    *p = realloc(*p, n * elem);
    memset((char *)*p + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
}

static uint64_t entry_hash(const raft_entry_t *e)
{
    return shoal_hash64_seed(e->data, e->len, (uint64_t)e->type + 1);
}

/* ---- log matching ---- */

static size_t lm_slot(const check_t *c, uint64_t index, uint64_t term)
{
    uint64_t h = (index * 0x9E3779B97F4A7C15ull) ^ (term * 0xC2B2AE3D27D4EB4Full);
    size_t i = (size_t)(h ^ (h >> 29)) & (c->cap_lm - 1);
    while (c->lm[i].index && (c->lm[i].index != index || c->lm[i].term != term))
        i = (i + 1) & (c->cap_lm - 1);
    return i;
}

static void lm_grow(check_t *c)
{
    lm_slot_t *old = c->lm;
    size_t old_cap = c->cap_lm;
    c->cap_lm = old_cap ? old_cap * 2 : 1024;
    c->lm = calloc(c->cap_lm, sizeof(*c->lm));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].index)
            c->lm[lm_slot(c, old[i].index, old[i].term)] = old[i];
    free(old);
}

void check_log_entry(check_t *c, sim_t *s, uint64_t node, const raft_entry_t *e, uint64_t prev_term)
{
    if (c->n_lm * 2 >= c->cap_lm)
        lm_grow(c);
    lm_slot_t *slot = &c->lm[lm_slot(c, e->index, e->term)];
    uint64_t h = entry_hash(e);
    if (!slot->index) {
        *slot = (lm_slot_t){e->index, e->term, h, prev_term};
        c->n_lm++;
        return;
    }
    if (slot->hash != h || (prev_term && slot->prev_term && slot->prev_term != prev_term))
        sim_fail(s,
                 "log matching: node %llu persisted entry %llu term %llu (prev term %llu) "
                 "unlike another node's (prev term %llu)",
                 (unsigned long long)node, (unsigned long long)e->index,
                 (unsigned long long)e->term, (unsigned long long)prev_term,
                 (unsigned long long)slot->prev_term);
    if (!slot->prev_term)
        slot->prev_term = prev_term;
}

/* ---- state machine safety ---- */

void check_apply(check_t *c, sim_t *s, uint64_t node, const raft_entry_t *e)
{
    grow((void **)&c->applied, &c->cap_applied, e->index, sizeof(*c->applied));
    applied_t *a = &c->applied[e->index];
    uint64_t h = entry_hash(e);
    if (a->set) {
        if (a->term != e->term || a->hash != h)
            sim_fail(s,
                     "state machine safety: node %llu applied term %llu at index %llu where "
                     "another node applied term %llu",
                     (unsigned long long)node, (unsigned long long)e->term,
                     (unsigned long long)e->index, (unsigned long long)a->term);
        return;
    }
    *a = (applied_t){.term = e->term, .hash = h, .set = true};
    if (e->type == RAFT_ENTRY_NORMAL && e->len == 16) {
        uint64_t d[2];
        memcpy(d, e->data, 16);
        a->key = d[0];
        a->op_id = d[1];
        a->is_write = true;
        grow((void **)&c->op_index, &c->cap_op_index, d[1], sizeof(*c->op_index));
        c->op_index[d[1]] = e->index;
    }
    if (e->index > c->max_applied)
        c->max_applied = e->index;
}

/* The value of key after applying up to index, per the global applied sequence. */
static uint64_t model_value(const check_t *c, uint64_t key, uint64_t index, uint64_t *at)
{
    *at = 0;
    for (uint64_t i = index; i >= 1; i--)
        if (i < c->cap_applied && c->applied[i].set && c->applied[i].is_write &&
            c->applied[i].key == key) {
            *at = i;
            return c->applied[i].op_id;
        }
    return 0;
}

void check_snapshot(check_t *c, sim_t *s, uint64_t node, uint64_t index, const uint64_t *kv,
                    unsigned nkeys)
{
    for (unsigned k = 0; k < nkeys; k++) {
        uint64_t at;
        if (model_value(c, k, index, &at) != kv[k])
            sim_fail(s, "snapshot at %llu installed on node %llu differs on key %u",
                     (unsigned long long)index, (unsigned long long)node, k);
    }
}

/* ---- persisted state ---- */

void check_ready(check_t *c, sim_t *s, uint64_t node, const raft_ready_t *rd)
{
    raft_hard_state_t *last = &c->last_hs[node & 31];
    const raft_hard_state_t *hs = &rd->hard_state;
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry_t *e = &rd->entries[i];
        if ((i &&
             (e->index != rd->entries[i - 1].index + 1 || e->term < rd->entries[i - 1].term)) ||
            e->term > hs->term)
            sim_fail(s, "node %llu: ready entries out of order at %llu", (unsigned long long)node,
                     (unsigned long long)e->index);
    }
    for (size_t i = 1; i < rd->n_committed; i++)
        if (rd->committed[i].index != rd->committed[i - 1].index + 1)
            sim_fail(s, "node %llu: committed entries not contiguous", (unsigned long long)node);
    if (!rd->hard_state_changed)
        return;
    if (hs->term == last->term && last->vote && hs->vote != last->vote)
        sim_fail(s, "node %llu persisted two votes in term %llu: %llu then %llu",
                 (unsigned long long)node, (unsigned long long)hs->term,
                 (unsigned long long)last->vote, (unsigned long long)hs->vote);
    if (hs->term < last->term || hs->commit < last->commit)
        sim_fail(s, "node %llu persisted hard state went backwards", (unsigned long long)node);
    *last = *hs;
}

/* ---- every step: elections, leader completeness ---- */

static void note_commit(check_t *c, uint64_t term, uint64_t commit)
{
    grow((void **)&c->commit_term, &c->cap_commit, commit, sizeof(*c->commit_term));
    for (uint64_t i = commit; i >= 1; i--) {
        if (c->commit_term[i] && c->commit_term[i] <= term)
            break;
        c->commit_term[i] = term;
    }
}

static void leader_complete(check_t *c, sim_t *s, raft_t *r, const raft_status_t *st)
{
    for (uint64_t i = st->snapshot_index + 1;
         i <= c->max_applied && i < c->cap_applied && i < c->cap_commit; i++) {
        if (!c->commit_term[i] || c->commit_term[i] >= st->term)
            break;
        if (!c->applied[i].set)
            continue;
        if (raft_term_at(r, i) != c->applied[i].term)
            sim_fail(s,
                     "leader completeness: leader %llu of term %llu lacks entry %llu (term "
                     "%llu) committed in term %llu",
                     (unsigned long long)st->id, (unsigned long long)st->term,
                     (unsigned long long)i, (unsigned long long)c->applied[i].term,
                     (unsigned long long)c->commit_term[i]);
    }
}

void check_step(check_t *c, sim_t *s)
{
    for (int id = 1; id <= sim_node_count(); id++) {
        raft_t *r = sim_node_raft(s, (uint64_t)id);
        raft_status_t st;
        if (!r)
            continue;
        raft_status(r, &st);
        if (st.role != RAFT_LEADER)
            continue;
        grow((void **)&c->leader_of, &c->cap_terms, st.term, sizeof(*c->leader_of));
        if (c->leader_of[st.term] && c->leader_of[st.term] != st.id) {
            sim_fail(s, "election safety: nodes %llu and %llu both lead term %llu",
                     (unsigned long long)c->leader_of[st.term], (unsigned long long)st.id,
                     (unsigned long long)st.term);
            return;
        }
        if (!c->leader_of[st.term]) {
            c->leader_of[st.term] = st.id;
            leader_complete(c, s, r, &st);
        }
        note_commit(c, st.term, st.commit);
    }
}

/* ---- client history ---- */

int check_op_invoke(check_t *c, bool is_read, uint64_t key, uint64_t op_id)
{
    grow((void **)&c->ops, &c->cap_ops, c->n_ops, sizeof(*c->ops));
    check_op_t *o = &c->ops[c->n_ops];
    *o = (check_op_t){
        .is_read = is_read, .key = key, .op_id = op_id, .invoke = ++c->clock, .complete = NO_END};
    return (int)c->n_ops++;
}

void check_op_complete(check_t *c, int op, op_result_t how, uint64_t value, uint64_t pos)
{
    check_op_t *o = &c->ops[op];
    o->how = how;
    o->value = value;
    o->pos = pos;
    if (how == OP_OK)
        o->complete = ++c->clock;
}

bool check_op_is_read(const check_t *c, int op)
{
    return c->ops[op].is_read;
}

uint64_t check_op_id(const check_t *c, int op)
{
    return c->ops[op].op_id;
}

uint64_t check_op_key(const check_t *c, int op)
{
    return c->ops[op].key;
}

uint64_t check_max_applied(const check_t *c)
{
    return c->max_applied;
}

typedef struct {
    uint64_t invoke, complete, pos;
    bool is_read;
    uint64_t op_id;
} lin_op_t;

static int by_invoke(const void *a, const void *b)
{
    const lin_op_t *x = a, *y = b;
    return x->invoke < y->invoke ? -1 : x->invoke > y->invoke;
}

static int by_complete(const void *a, const void *b)
{
    const lin_op_t *x = *(lin_op_t *const *)a, *y = *(lin_op_t *const *)b;
    return x->complete < y->complete ? -1 : x->complete > y->complete;
}

static uint64_t applied_index_of(const check_t *c, uint64_t op_id)
{
    return op_id < c->cap_op_index ? c->op_index[op_id] : 0;
}

/* Builds the ops of one key with their positions; checks read values on the way. */
static size_t collect_key(check_t *c, sim_t *s, uint64_t key, lin_op_t *v)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_ops; i++) {
        check_op_t *o = &c->ops[i];
        if (o->key != key)
            continue;
        uint64_t idx = o->is_read ? 0 : applied_index_of(c, o->op_id);
        if (!o->is_read && o->how == OP_FAILED && idx)
            sim_fail(s, "write %llu was reported failed but applied at %llu",
                     (unsigned long long)o->op_id, (unsigned long long)idx);
        if (o->is_read && o->how == OP_OK) {
            uint64_t at, want = model_value(c, key, o->pos, &at);
            if (want != o->value)
                sim_fail(s, "read %llu returned %llu, the log says %llu at %llu",
                         (unsigned long long)o->op_id, (unsigned long long)o->value,
                         (unsigned long long)want, (unsigned long long)o->pos);
            v[n++] = (lin_op_t){o->invoke, o->complete, at, true, o->op_id};
        } else if (!o->is_read && idx &&
                   (o->how == OP_OK || o->how == OP_UNKNOWN || o->how == OP_PENDING)) {
            v[n++] =
                (lin_op_t){o->invoke, o->how == OP_OK ? o->complete : NO_END, idx, false, o->op_id};
        }
    }
    return n;
}

static void check_key(check_t *c, sim_t *s, uint64_t key)
{
    lin_op_t *v = calloc(c->n_ops + 1, sizeof(*v));
    lin_op_t **done = calloc(c->n_ops + 1, sizeof(*done));
    size_t n = collect_key(c, s, key, v);
    qsort(v, n, sizeof(*v), by_invoke);
    for (size_t i = 0; i < n; i++)
        done[i] = &v[i];
    qsort(done, n, sizeof(*done), by_complete);
    uint64_t max_w = 0, max_r = 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        lin_op_t *b = &v[i];
        for (; j < n && done[j]->complete < b->invoke; j++) {
            if (done[j]->is_read && done[j]->pos > max_r)
                max_r = done[j]->pos;
            if (!done[j]->is_read && done[j]->pos > max_w)
                max_w = done[j]->pos;
        }
        bool ok =
            b->is_read ? (b->pos >= max_w && b->pos >= max_r) : (b->pos > max_w && b->pos > max_r);
        if (!ok) {
            sim_fail(s,
                     "linearizability: %s %llu on key %llu at position %llu, but earlier "
                     "completed ops reached write %llu / read %llu",
                     b->is_read ? "read" : "write", (unsigned long long)b->op_id,
                     (unsigned long long)key, (unsigned long long)b->pos, (unsigned long long)max_w,
                     (unsigned long long)max_r);
            break;
        }
    }
    free(v);
    free(done);
}

void check_final(check_t *c, sim_t *s)
{
    for (uint64_t k = 0; k < 64; k++) {
        bool any = false;
        for (size_t i = 0; i < c->n_ops && !any; i++)
            any = c->ops[i].key == k;
        if (any)
            check_key(c, s, k);
    }
}

void check_acked_applied(check_t *c, sim_t *s, uint64_t node, uint64_t applied)
{
    for (size_t i = 0; i < c->n_ops; i++) {
        check_op_t *o = &c->ops[i];
        if (o->is_read || o->how != OP_OK)
            continue;
        if (o->pos > applied)
            sim_fail(s, "acknowledged write %llu (index %llu) not applied on voter %llu (%llu)",
                     (unsigned long long)o->op_id, (unsigned long long)o->pos,
                     (unsigned long long)node, (unsigned long long)applied);
    }
}
