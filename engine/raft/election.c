/* election.c - roles and elections (§5.2, thesis §9.6 pre-vote, §6.2 check-quorum).
 *
 * Pre-vote: a node whose election timer fires first asks the voters whether they would
 * vote for it at term+1, without raising its own term, so a node cut off from the group
 * cannot inflate terms and depose a healthy leader when it comes back.
 * Stickiness: with check-quorum on, a voter that heard from a leader within the minimum
 * election timeout ignores (pre-)vote requests (raft.c term_rules), unless the request
 * comes from a leadership transfer. The same rule is what makes lease reads safe.
 *
 * Invariant: vote is granted at most once per term and is part of the hard state, so the
 * grant (MSG_VOTE_RESP) goes out only after it is durable (raft.c needs_persist). */
#include <string.h>

#include "engine/raft/raft_int.h"

static void reset_role_state(raft_t *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        progress_free(&r->prs[i]);
    r->n_prs = 0;
    r->n_votes = 0;
    r->lead_transferee = RAFT_NONE;
    r->heartbeat_elapsed = 0;
    r->step_down_pending = false;
    reads_drop(r);
    raft_reset_timeout(r);
}

void become_follower(raft_t *r, uint64_t term, uint64_t lead)
{
    if (term != r->term) {
        r->term = term;
        r->vote = RAFT_NONE;
    }
    reset_role_state(r);
    r->role = RAFT_FOLLOWER;
    r->lead = lead;
}

void become_leader(raft_t *r)
{
    reset_role_state(r);
    r->role = RAFT_LEADER;
    r->lead = r->id;
    r->lease_until = 0;
    r->lease_disabled = false;
    for (size_t i = 0; i < r->conf.n_voters; i++)
        progress_reset(r, &r->prs[r->n_prs++], r->conf.voters[i], false);
    for (size_t i = 0; i < r->conf.n_learners; i++)
        progress_reset(r, &r->prs[r->n_prs++], r->conf.learners[i], true);
    raft_progress_t *self = progress_of(r, r->id);
    if (!self) { /* removed while campaigning: not ours to lead */
        become_follower(r, r->term, RAFT_NONE);
        return;
    }
    self->match = r->log.persisted;
    self->next = log_last_index(&r->log) + 1;
    /* any configuration entry in the uncommitted tail may be pending */
    r->pending_conf_index = log_last_index(&r->log);
    /* §5.4.2: commit the previous terms' entries through an entry of our own term */
    leader_append(r, RAFT_ENTRY_NOOP, NULL, 0);
}

static size_t count_votes(const raft_t *r, bool granted)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_votes; i++)
        if (r->granted[i] == granted && raft_is_voter(r, r->votes[i]))
            n++;
    return n;
}

/* Records one answer (the first from each voter counts). Returns true if it was new. */
static bool record_vote(raft_t *r, uint64_t id, bool granted)
{
    for (size_t i = 0; i < r->n_votes; i++)
        if (r->votes[i] == id)
            return false;
    if (r->n_votes == RAFT_MAX_NODES)
        return false;
    r->votes[r->n_votes] = id;
    r->granted[r->n_votes] = granted;
    r->n_votes++;
    return true;
}

static void check_tally(raft_t *r);

void campaign(raft_t *r, bool prevote, bool forced)
{
    raft_msg_type_t type;
    uint64_t term;
    reset_role_state(r);
    r->lead = RAFT_NONE;
    if (prevote) {
        r->role = RAFT_PRECANDIDATE;
        type = RAFT_MSG_PREVOTE;
        term = r->term + 1;
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id;
        type = RAFT_MSG_VOTE;
        term = r->term;
    }
    record_vote(r, r->id, true);
    for (size_t i = 0; i < r->conf.n_voters; i++) {
        uint64_t id = r->conf.voters[i];
        if (id == r->id)
            continue;
        raft_msg_t m = {.type = type,
                        .to = id,
                        .term = term,
                        .index = log_last_index(&r->log),
                        .log_term = log_last_term(&r->log)};
        if (forced) {
            m.context = (uint8_t *)strdup("transfer");
            m.context_len = m.context ? 8 : 0;
        }
        raft_send(r, &m);
    }
    check_tally(r); /* a single voter wins at once */
}

static void check_tally(raft_t *r)
{
    size_t q = raft_quorum(r);
    if (count_votes(r, true) >= q) {
        if (r->role == RAFT_PRECANDIDATE)
            campaign(r, false, false);
        else
            become_leader(r);
    } else if (count_votes(r, false) >= q) {
        become_follower(r, r->term, RAFT_NONE);
    }
}

int handle_vote_request(raft_t *r, const raft_msg_t *m)
{
    bool prevote = m->type == RAFT_MSG_PREVOTE;
    bool can_vote = r->vote == m->from || (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
                    (prevote && m->term > r->term);
    bool grant = can_vote && (log_up_to_date(&r->log, m->index, m->log_term) ||
                              RAFT_BUG(RAFT_BUG_VOTE_ANY_LOG));
    if (RAFT_BUG(RAFT_BUG_VOTE_TWICE) && !prevote && r->role != RAFT_LEADER)
        grant = log_up_to_date(&r->log, m->index, m->log_term);
    raft_msg_t resp = {.type = prevote ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP,
                       .to = m->from,
                       .term = grant ? m->term : r->term,
                       .reject = !grant};
    if (grant && !prevote) {
        r->election_elapsed = 0;
        if (!RAFT_BUG(RAFT_BUG_VOTE_TWICE))
            r->vote = m->from;
    }
    return raft_send(r, &resp);
}

void handle_vote_response(raft_t *r, const raft_msg_t *m)
{
    if (r->role == RAFT_PRECANDIDATE && m->type == RAFT_MSG_PREVOTE_RESP) {
        /* a grant carries the term we asked for, a refusal the voter's (ours or lower) */
        if ((!m->reject && m->term == r->term + 1) || (m->reject && m->term == r->term))
            record_vote(r, m->from, !m->reject);
    } else if (r->role == RAFT_CANDIDATE && m->type == RAFT_MSG_VOTE_RESP && m->term == r->term) {
        record_vote(r, m->from, !m->reject);
    } else {
        return;
    }
    check_tally(r);
}
