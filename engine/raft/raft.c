/* raft.c - the core's front door: construction from persisted state, the term rules every
 * message passes first (Figure 2, "Rules for all servers"), dispatch by role, ticks,
 * proposals, and the ready/advance hand-off.
 *
 * Determinism: the only randomness is the election timeout, drawn from a xorshift
 * generator seeded by config.seed and the node id; nothing reads a clock. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_int.h"

#ifdef SHOAL_RAFT_PLANTED_BUGS
int raft_planted_bug = RAFT_BUG_NONE;
#endif

static uint64_t rng_next(raft_t *r)
{
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 2685821657736338717ull;
}

void raft_reset_timeout(raft_t *r)
{
    r->election_elapsed = 0;
    r->randomized_timeout = r->cfg.election_tick + (unsigned)(rng_next(r) % r->cfg.election_tick);
}

bool conf_has(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

bool raft_is_voter(const raft_t *r, uint64_t id)
{
    return conf_has(r->conf.voters, r->conf.n_voters, id);
}

bool raft_is_learner(const raft_t *r, uint64_t id)
{
    return conf_has(r->conf.learners, r->conf.n_learners, id);
}

size_t raft_quorum(const raft_t *r)
{
    return r->conf.n_voters / 2 + 1;
}

static int check_config(const raft_config_t *c)
{
    if (c->id == RAFT_NONE || c->election_tick < 2 || c->heartbeat_tick == 0 ||
        c->heartbeat_tick >= c->election_tick || c->max_inflight == 0 || c->max_msg_entries == 0 ||
        c->snapshot_chunk_bytes == 0)
        return SHOAL_EINVAL;
    if (c->lease_read && (!c->check_quorum || c->lease_margin >= c->election_tick))
        return SHOAL_EINVAL;
    return 0;
}

static int check_conf(const raft_conf_state_t *c)
{
    if (c->n_voters > RAFT_MAX_NODES || c->n_learners > RAFT_MAX_NODES ||
        c->n_voters + c->n_learners > RAFT_MAX_NODES || c->n_voters_outgoing != 0)
        return SHOAL_EINVAL;
    return 0;
}

static int restore(raft_t *r, const raft_restore_t *rs)
{
    const raft_snapshot_meta_t *sm = &rs->snapshot;
    int rc = 0;
    if (check_conf(&sm->conf))
        return SHOAL_EINVAL;
    log_reset(&r->log, sm->index, sm->term);
    for (size_t i = 0; i < rs->n_entries; i++) {
        const raft_entry_t *e = &rs->entries[i];
        if (e->index != sm->index + 1 + i || e->term < log_last_term(&r->log) ||
            e->term > rs->hard_state.term || (unsigned)e->type > RAFT_ENTRY_NOOP)
            return SHOAL_EINVAL;
        if ((rc = log_append(&r->log, e, true)))
            return rc;
    }
    uint64_t last = log_last_index(&r->log);
    if (rs->applied < sm->index || rs->applied > last)
        return SHOAL_EINVAL;
    r->log.stable = last;
    r->log.persisted = last;
    r->log.committed = rs->hard_state.commit;
    if (r->log.committed < sm->index)
        r->log.committed = sm->index;
    if (r->log.committed > last)
        r->log.committed = last;
    if (rs->applied > r->log.committed)
        return SHOAL_EINVAL;
    r->log.applied = rs->applied;
    r->term = rs->hard_state.term;
    r->vote = rs->hard_state.vote;
    r->conf = sm->conf;
    r->snap_conf = sm->conf;
    r->snap = *sm;
    r->conf_scanned = sm->index;
    conf_apply_committed(r);
    const raft_hard_state_t *hs = &rs->hard_state;
    if (!hs->term && !hs->vote && !hs->commit && !sm->index && !rs->n_entries &&
        sm->conf.n_voters) {
        rc = conf_bootstrap(r); /* stable stays 0: the first ready persists the entries */
        r->log.stable = r->log.persisted = 0;
    }
    return rc;
}

raft_t *raft_new(const raft_config_t *config, const raft_restore_t *rs, int *err)
{
    int rc = check_config(config);
    raft_t *r = NULL;
    if (!rc && !(r = calloc(1, sizeof(*r))))
        rc = SHOAL_ENOMEM;
    if (!rc) {
        r->cfg = *config;
        r->id = config->id;
        r->rng = (config->seed ^ (config->id * 0x9E3779B97F4A7C15ull)) | 1;
        rc = restore(r, rs);
    }
    if (rc) {
        raft_destroy(&r);
        if (err)
            *err = rc;
        return NULL;
    }
    r->role = RAFT_FOLLOWER;
    raft_reset_timeout(r);
    r->prev_hs = rs->hard_state; /* a bootstrap changes it: the first ready persists it */
    r->prev_ss = (raft_soft_state_t){RAFT_NONE, RAFT_FOLLOWER};
    if (err)
        *err = 0;
    return r;
}

static void msgvec_free(raft_msgvec_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        raft_msg_free_contents(&v->v[i]);
    free(v->v);
    memset(v, 0, sizeof(*v));
}

void raft_destroy(raft_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    raft_t *r = *self_p;
    log_free(&r->log);
    for (size_t i = 0; i < r->n_prs; i++)
        progress_free(&r->prs[i]);
    reads_drop(r);
    free(r->reads);
    for (size_t i = 0; i < r->n_rstates; i++)
        free(r->rstates[i].ctx);
    free(r->rstates);
    free(r->hist);
    msgvec_free(&r->out);
    msgvec_free(&r->out_after);
    free(r);
    *self_p = NULL;
}

/* Messages that vouch for durable state wait for the persist of the ready they are in. */
static bool needs_persist(raft_msg_type_t t)
{
    return t == RAFT_MSG_VOTE || t == RAFT_MSG_VOTE_RESP || t == RAFT_MSG_APPEND_RESP ||
           t == RAFT_MSG_HEARTBEAT_RESP || t == RAFT_MSG_SNAPSHOT_RESP;
}

int raft_send(raft_t *r, raft_msg_t *m)
{
    raft_msgvec_t *v = needs_persist(m->type) ? &r->out_after : &r->out;
    m->group = r->cfg.group;
    m->from = r->id;
    /* pre-vote carries the term it would campaign in; its answers carry the asker's */
    if (m->type != RAFT_MSG_PREVOTE && m->type != RAFT_MSG_PREVOTE_RESP &&
        m->type != RAFT_MSG_VOTE_RESP)
        m->term = r->term;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        raft_msg_t *nv = realloc(v->v, cap * sizeof(*nv));
        if (!nv) {
            raft_msg_free_contents(m);
            return SHOAL_ENOMEM;
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = *m;
    return 0;
}

void raft_commit_to(raft_t *r, uint64_t index)
{
    if (index > log_last_index(&r->log))
        index = log_last_index(&r->log);
    if (index <= r->log.committed)
        return;
    r->log.committed = index;
    conf_apply_committed(r);
}

/* §5.1: a message from a higher term moves us to it; one from a lower term is stale.
 * Returns true when the message should be processed further. */
static bool term_rules(raft_t *r, const raft_msg_t *m)
{
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
            bool forced = m->context_len == 8 && !memcmp(m->context, "transfer", 8);
            /* Within an election timeout of hearing from a leader we do not help depose
             * it (and the leader's lease relies on it). Counted from the last leader
             * contact, whatever happened to our term or role since, and from our start:
             * before a crash we may have acknowledged a leader whose lease still runs. */
            bool in_lease =
                r->cfg.check_quorum &&
                (r->role == RAFT_LEADER || r->now < r->leader_contact + r->cfg.election_tick ||
                 (r->lead != RAFT_NONE && r->election_elapsed < r->cfg.election_tick));
            if (!forced && in_lease)
                return false; /* we heard from a live leader: do not help depose it */
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject))
            return true; /* pre-vote never changes terms */
        bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                           m->type == RAFT_MSG_SNAPSHOT;
        become_follower(r, m->term, from_leader ? m->from : RAFT_NONE);
        return true;
    }
    if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.prevote) &&
            (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APPEND)) {
            /* tell a stale leader about our term, or it may never step down */
            raft_msg_t resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
            raft_send(r, &resp);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft_msg_t resp = {
                .type = RAFT_MSG_PREVOTE_RESP, .to = m->from, .term = r->term, .reject = true};
            raft_send(r, &resp);
        }
        return false;
    }
    return true;
}

static int validate_msg(const raft_t *r, const raft_msg_t *m)
{
    if (m->type == RAFT_MSG_NONE || (unsigned)m->type > RAFT_MSG_TYPE_MAX)
        return SHOAL_EINVAL;
    if (m->to != r->id || m->from == RAFT_NONE || m->from == r->id || m->group != r->cfg.group)
        return SHOAL_EINVAL;
    if (m->n_entries && !m->entries)
        return SHOAL_EINVAL;
    if (m->context_len && !m->context)
        return SHOAL_EINVAL;
    return 0;
}

static int step_leader(raft_t *r, const raft_msg_t *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP: handle_append_response(r, m); break;
    case RAFT_MSG_HEARTBEAT_RESP: handle_heartbeat_response(r, m); break;
    case RAFT_MSG_SNAPSHOT_RESP: handle_snapshot_response(r, m); break;
    case RAFT_MSG_READ_INDEX: handle_read_index(r, m); break;
    default: break; /* stale votes and answers of an old role */
    }
    return 0;
}

static int step_follower(raft_t *r, const raft_msg_t *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role != RAFT_FOLLOWER)
            become_follower(r, m->term, m->from); /* a leader of our term exists */
        r->election_elapsed = 0;
        r->lead = m->from;
        r->leader_contact = r->now;
        if (m->type == RAFT_MSG_APPEND)
            return handle_append(r, m);
        if (m->type == RAFT_MSG_SNAPSHOT)
            return handle_snapshot(r, m);
        handle_heartbeat(r, m);
        return 0;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: handle_vote_response(r, m); return 0;
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role == RAFT_FOLLOWER && raft_is_voter(r, r->id))
            campaign(r, false, true);
        return 0;
    case RAFT_MSG_READ_INDEX: return 0; /* we are not the leader: the asker retries */
    case RAFT_MSG_READ_INDEX_RESP: return read_state_push(r, m->index, m->context, m->context_len);
    default: return 0;
    }
}

int raft_step(raft_t *r, const raft_msg_t *m)
{
    if (!r || !m)
        return SHOAL_EINVAL;
    int rc = validate_msg(r, m);
    if (rc)
        return rc;
    if (!term_rules(r, m))
        return 0;
    if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE)
        return handle_vote_request(r, m);
    rc = r->role == RAFT_LEADER ? step_leader(r, m) : step_follower(r, m);
    if (r->step_down_pending && r->role == RAFT_LEADER) {
        r->step_down_pending = false;
        become_follower(r, r->term, RAFT_NONE);
    }
    return rc;
}

void raft_tick(raft_t *r)
{
    if (!r)
        return;
    r->now++;
    if (r->role == RAFT_LEADER) {
        leader_tick(r);
        return;
    }
    r->election_elapsed++;
    if (r->election_elapsed >= r->randomized_timeout && raft_is_voter(r, r->id))
        campaign(r, r->cfg.prevote, false);
}

static int not_leader(const raft_t *r, uint64_t *leader_hint)
{
    if (leader_hint)
        *leader_hint = r->lead;
    return SHOAL_ENOTLEADER;
}

/* Appends one entry of the leader's term and replicates it. Returns its index. */
int64_t leader_append(raft_t *r, raft_entry_type_t type, const void *data, size_t len)
{
    raft_entry_t e = {.term = r->term,
                      .index = log_last_index(&r->log) + 1,
                      .type = type,
                      .data = (uint8_t *)data,
                      .len = len};
    int rc = log_append(&r->log, &e, true);
    if (rc)
        return rc;
    r->append_pending = true; /* sent by the next raft_ready (flush_appends) */
    return (int64_t)e.index;
}

int64_t raft_propose(raft_t *r, const void *data, size_t len, uint64_t *leader_hint)
{
    if (!r || (len && !data))
        return SHOAL_EINVAL;
    if (r->role != RAFT_LEADER)
        return not_leader(r, leader_hint);
    if (r->lead_transferee != RAFT_NONE)
        return SHOAL_EBUSY;
    return leader_append(r, RAFT_ENTRY_NORMAL, data, len);
}

uint64_t raft_term_at(const raft_t *r, uint64_t index)
{
    return r ? log_term(&r->log, index) : 0;
}

static raft_hard_state_t hard_state(const raft_t *r)
{
    return (raft_hard_state_t){r->term, r->vote, r->log.committed};
}

bool raft_has_ready(const raft_t *r)
{
    if (!r || r->ready_outstanding)
        return false;
    raft_hard_state_t hs = hard_state(r);
    if (memcmp(&hs, &r->prev_hs, sizeof(hs)) || r->lead != r->prev_ss.leader ||
        r->role != r->prev_ss.role)
        return true;
    if (log_last_index(&r->log) > r->log.stable || r->has_pending_snapshot || r->append_pending ||
        r->commit_pending)
        return true;
    if (r->log.committed > r->log.applied || r->out.n || r->out_after.n || r->n_rstates)
        return true;
    /* reads waiting for a round that this ready would start */
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].round == 0 && r->role == RAFT_LEADER &&
            log_term(&r->log, r->log.committed) == r->term)
            return true;
    return false;
}

static int copy_entries(raft_t *r, uint64_t from, uint64_t to, raft_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (to < from)
        return 0;
    raft_entry_t *v = calloc(to - from + 1, sizeof(*v));
    if (!v)
        return SHOAL_ENOMEM;
    for (uint64_t i = from; i <= to; i++) {
        int rc = entry_copy(&v[i - from], log_entry(&r->log, i));
        if (rc) {
            *out = v;
            *n = i - from;
            return rc;
        }
    }
    *out = v;
    *n = to - from + 1;
    return 0;
}

static void take_msgs(raft_msgvec_t *v, raft_msg_t **out, size_t *n)
{
    *out = v->v;
    *n = v->n;
    memset(v, 0, sizeof(*v));
}

int raft_ready(raft_t *r, raft_ready_t *rd)
{
    if (!r || !rd)
        return SHOAL_EINVAL;
    memset(rd, 0, sizeof(*rd));
    if (r->ready_outstanding)
        return SHOAL_EBUSY;
    flush_appends(r);
    reads_flush(r);
    raft_soft_state_t ss = {r->lead, r->role};
    rd->soft_state = ss;
    rd->soft_state_changed = ss.leader != r->prev_ss.leader || ss.role != r->prev_ss.role;
    rd->hard_state = hard_state(r);
    rd->hard_state_changed = memcmp(&rd->hard_state, &r->prev_hs, sizeof(rd->hard_state)) != 0;
    uint64_t applied = r->log.applied;
    if (r->has_pending_snapshot) {
        rd->snapshot = malloc(sizeof(*rd->snapshot));
        if (!rd->snapshot)
            return SHOAL_ENOMEM;
        *rd->snapshot = r->pending_snapshot;
        rd->snapshot_index = r->pending_snapshot.index;
        applied = r->pending_snapshot.index;
    }
    uint64_t last = log_last_index(&r->log);
    int rc = copy_entries(r, r->log.stable + 1, last, &rd->entries, &rd->n_entries);
    if (!rc)
        rc = copy_entries(r, applied + 1, r->log.committed, &rd->committed, &rd->n_committed);
    rd->last_index = last;
    rd->last_term = log_last_term(&r->log);
    rd->applied_to = rd->n_committed ? rd->committed[rd->n_committed - 1].index : applied;
    take_msgs(&r->out, &rd->msgs, &rd->n_msgs);
    take_msgs(&r->out_after, &rd->msgs_after_persist, &rd->n_msgs_after_persist);
    rd->reads = r->rstates;
    rd->n_reads = r->n_rstates;
    r->rstates = NULL;
    r->n_rstates = r->cap_rstates = 0;
    r->has_pending_snapshot = false;
    r->prev_ss = ss;
    r->prev_hs = rd->hard_state;
    r->log.stable = last; /* handed out: the next ready starts after these */
    r->ready_outstanding = true;
    if (rc) {
        raft_ready_free(r, rd);
        return rc;
    }
    return 0;
}

static void free_entries(raft_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].data);
    free(v);
}

void raft_ready_free(raft_t *r, raft_ready_t *rd)
{
    if (!rd)
        return;
    free_entries(rd->entries, rd->n_entries);
    free_entries(rd->committed, rd->n_committed);
    free(rd->snapshot);
    for (size_t i = 0; i < rd->n_msgs; i++)
        raft_msg_free_contents(&rd->msgs[i]);
    free(rd->msgs);
    for (size_t i = 0; i < rd->n_msgs_after_persist; i++)
        raft_msg_free_contents(&rd->msgs_after_persist[i]);
    free(rd->msgs_after_persist);
    for (size_t i = 0; i < rd->n_reads; i++)
        free(rd->reads[i].ctx);
    free(rd->reads);
    memset(rd, 0, sizeof(*rd));
    if (r)
        r->ready_outstanding = false;
}

void raft_advance(raft_t *r, raft_ready_t *rd)
{
    if (!r || !rd)
        return;
    /* What was handed out is durable unless the log was rewritten meanwhile; log.stable
     * already dropped below any truncation, so only a matching tail moves the leader. */
    if (rd->applied_to > r->log.applied && rd->applied_to <= r->log.committed)
        r->log.applied = rd->applied_to;
    /* Everything handed out and not rewritten since (log.stable drops on truncation) is
     * durable now. */
    r->log.persisted = r->log.stable < rd->last_index ? r->log.stable : rd->last_index;
    if (r->role == RAFT_LEADER) {
        raft_progress_t *self = progress_of(r, r->id);
        if (self && r->log.persisted > self->match) {
            self->match = r->log.persisted;
            self->next = self->match + 1;
            if (maybe_commit(r))
                commit_moved(r);
        }
    }
    if (rd->snapshot)
        r->snap_installing = false;
    raft_ready_free(r, rd);
    if (r->step_down_pending && r->role == RAFT_LEADER) {
        r->step_down_pending = false;
        become_follower(r, r->term, RAFT_NONE);
    }
}

void raft_status(const raft_t *r, raft_status_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!r)
        return;
    st->id = r->id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->lead;
    st->commit = r->log.committed;
    st->applied = r->log.applied;
    st->first_index = r->log.offset + 1;
    st->last_index = log_last_index(&r->log);
    st->snapshot_index = r->snap.index;
    st->log_bytes = r->log.bytes;
    st->trailing_bytes = r->trail_bytes;
    st->lead_transferee = r->lead_transferee;
    st->conf = r->conf;
    if (r->role != RAFT_LEADER)
        return;
    for (size_t i = 0; i < r->n_prs; i++) {
        const raft_progress_t *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        st->peers[st->n_peers++] = (raft_peer_status_t){pr->id,   pr->learner, pr->match,
                                                        pr->next, pr->state,   peer_active(r, pr)};
    }
}
