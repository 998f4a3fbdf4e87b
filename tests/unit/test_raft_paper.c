/* test_raft_paper.c - one test per rule of Figure 2 of the Raft paper (and §5.4's commit
 * restriction, Figure 8), driven by hand-made messages on single cores or on the tiny
 * synchronous cluster of tests/sim/harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/sim/harness.h"

/* A single node 1 of voters {1,2,3} with a given persisted log of terms (index 1..n). */
static raft_t *node_with_log(uint64_t term, const uint64_t *terms, size_t n, uint64_t commit)
{
    raft_config_t c;
    h_config(&c, 1);
    c.check_quorum = false; /* Figure 2 alone: no leader stickiness */
    static raft_entry_t ents[32];
    for (size_t i = 0; i < n; i++)
        ents[i] = (raft_entry_t){.term = terms[i], .index = i + 1, .type = RAFT_ENTRY_NORMAL};
    raft_restore_t rs = {
        .hard_state = {term, 0, commit}, .entries = ents, .n_entries = n, .applied = 0};
    rs.snapshot.conf.n_voters = 3;
    for (int v = 0; v < 3; v++)
        rs.snapshot.conf.voters[v] = (uint64_t)v + 1;
    raft_t *r = raft_new(&c, &rs, NULL);
    assert_non_null(r);
    return r;
}

/* Drains a ready and returns a copy of the first message of `type` (0 if none). */
static bool take_msg(raft_t *r, raft_msg_type_t type, raft_msg_t *out, bool *after_persist)
{
    raft_ready_t rd;
    bool found = false;
    if (!raft_has_ready(r) || raft_ready(r, &rd))
        return false;
    for (int pass = 0; pass < 2 && !found; pass++) {
        raft_msg_t *v = pass ? rd.msgs_after_persist : rd.msgs;
        size_t n = pass ? rd.n_msgs_after_persist : rd.n_msgs;
        for (size_t i = 0; i < n && !found; i++)
            if (v[i].type == type) {
                raft_msg_copy(out, &v[i]);
                found = true;
                if (after_persist)
                    *after_persist = pass == 1;
            }
    }
    raft_advance(r, &rd);
    return found;
}

static raft_msg_t append_msg(uint64_t term, uint64_t prev, uint64_t prev_term, raft_entry_t *ents,
                             size_t n, uint64_t commit)
{
    return (raft_msg_t){.type = RAFT_MSG_APPEND,
                        .group = 7,
                        .from = 2,
                        .to = 1,
                        .term = term,
                        .index = prev,
                        .log_term = prev_term,
                        .entries = ents,
                        .n_entries = n,
                        .commit = commit};
}

/* All servers: a higher term in any message makes us follower of that term. */
static void test_higher_term_converts_to_follower(void **state)
{
    uint64_t terms[] = {1, 1};
    raft_t *r = node_with_log(2, terms, 2, 0);
    raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT, .group = 7, .from = 3, .to = 1, .term = 5};
    assert_int_equal(raft_step(r, &hb), 0);
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.term, 5);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.leader, 3);
    assert_int_equal(st.vote, 0);
    raft_destroy(&r);
}

/* AppendEntries 1: reply false if term < currentTerm (the answer carries our term). */
static void test_append_stale_term_rejected(void **state)
{
    uint64_t terms[] = {1, 2};
    raft_t *r = node_with_log(3, terms, 2, 0);
    raft_entry_t e = {.term = 1, .index = 3};
    raft_msg_t m = append_msg(1, 2, 2, &e, 1, 0);
    assert_int_equal(raft_step(r, &m), 0);
    raft_msg_t resp;
    assert_true(take_msg(r, RAFT_MSG_APPEND_RESP, &resp, NULL));
    assert_int_equal(resp.term, 3);
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.last_index, 2);
    raft_msg_free_contents(&resp);
    raft_destroy(&r);
}

/* AppendEntries 2: reply false if the log has no entry at prevLogIndex with prevLogTerm,
 * with the hint of fast back-off (largest index whose term <= prevLogTerm). */
static void test_append_rejects_mismatch_with_hint(void **state)
{
    uint64_t terms[] = {1, 1, 2, 2, 2};
    raft_t *r = node_with_log(3, terms, 5, 0);
    raft_msg_t m = append_msg(3, 5, 3, NULL, 0, 0);
    assert_int_equal(raft_step(r, &m), 0);
    raft_msg_t resp;
    bool after;
    assert_true(take_msg(r, RAFT_MSG_APPEND_RESP, &resp, &after));
    assert_true(resp.reject);
    assert_true(after); /* acks and refusals leave after persist */
    assert_int_equal(resp.reject_hint, 5);
    assert_int_equal(resp.conflict_term, 2);
    raft_msg_free_contents(&resp);
    /* prev beyond our log: hint is our last index */
    m = append_msg(3, 9, 3, NULL, 0, 0);
    assert_int_equal(raft_step(r, &m), 0);
    assert_true(take_msg(r, RAFT_MSG_APPEND_RESP, &resp, NULL));
    assert_true(resp.reject);
    assert_int_equal(resp.reject_hint, 5);
    raft_msg_free_contents(&resp);
    /* prev term 1 at index 4: skip the whole term 2 */
    m = append_msg(3, 4, 1, NULL, 0, 0);
    assert_int_equal(raft_step(r, &m), 0);
    assert_true(take_msg(r, RAFT_MSG_APPEND_RESP, &resp, NULL));
    assert_int_equal(resp.reject_hint, 2);
    assert_int_equal(resp.conflict_term, 1);
    raft_msg_free_contents(&resp);
    raft_destroy(&r);
}

/* AppendEntries 3 and 4: a conflicting entry and all after it are deleted; new entries
 * not already in the log are appended; existing matching entries are kept. */
static void test_append_truncates_conflicts(void **state)
{
    uint64_t terms[] = {1, 1, 2, 2};
    raft_t *r = node_with_log(3, terms, 4, 0);
    raft_entry_t ents[] = {{.term = 1, .index = 2}, {.term = 3, .index = 3}};
    raft_msg_t m = append_msg(3, 1, 1, ents, 2, 0);
    assert_int_equal(raft_step(r, &m), 0);
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.last_index, 3);
    assert_int_equal(raft_term_at(r, 2), 1);
    assert_int_equal(raft_term_at(r, 3), 3);
    raft_msg_t resp;
    assert_true(take_msg(r, RAFT_MSG_APPEND_RESP, &resp, NULL));
    assert_false(resp.reject);
    assert_int_equal(resp.index, 3);
    raft_msg_free_contents(&resp);
    /* a stale shorter append must not truncate what matches */
    m = append_msg(3, 1, 1, ents, 1, 0);
    assert_int_equal(raft_step(r, &m), 0);
    raft_status(r, &st);
    assert_int_equal(st.last_index, 3);
    raft_destroy(&r);
}

/* AppendEntries 5: commitIndex = min(leaderCommit, index of last new entry). */
static void test_append_commit_is_min(void **state)
{
    uint64_t terms[] = {1};
    raft_t *r = node_with_log(1, terms, 1, 0);
    raft_entry_t e = {.term = 1, .index = 2};
    raft_msg_t m = append_msg(1, 1, 1, &e, 1, 10);
    assert_int_equal(raft_step(r, &m), 0);
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.commit, 2);
    raft_destroy(&r);
}

static raft_msg_t vote_msg(uint64_t from, uint64_t term, uint64_t last, uint64_t last_term)
{
    return (raft_msg_t){.type = RAFT_MSG_VOTE,
                        .group = 7,
                        .from = from,
                        .to = 1,
                        .term = term,
                        .index = last,
                        .log_term = last_term};
}

/* RequestVote 1 and 2: reply false for an old term; grant once per term, to a candidate
 * whose log is at least as up-to-date; the grant leaves only after persist. */
static void test_vote_rules(void **state)
{
    uint64_t terms[] = {1, 2};
    raft_t *r = node_with_log(2, terms, 2, 0);
    raft_msg_t resp;
    bool after = false;
    raft_msg_t v = vote_msg(2, 1, 5, 2); /* old term */
    assert_int_equal(raft_step(r, &v), 0);
    assert_false(take_msg(r, RAFT_MSG_VOTE_RESP, &resp, NULL));
    v = vote_msg(2, 3, 1, 2); /* shorter log of the same last term */
    assert_int_equal(raft_step(r, &v), 0);
    assert_true(take_msg(r, RAFT_MSG_VOTE_RESP, &resp, NULL));
    assert_true(resp.reject);
    raft_msg_free_contents(&resp);
    v = vote_msg(2, 3, 1, 3); /* higher last term wins even if shorter */
    assert_int_equal(raft_step(r, &v), 0);
    assert_true(take_msg(r, RAFT_MSG_VOTE_RESP, &resp, &after));
    assert_false(resp.reject);
    assert_true(after);
    raft_msg_free_contents(&resp);
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.vote, 2);
    v = vote_msg(3, 3, 9, 3); /* a second candidate in the same term */
    assert_int_equal(raft_step(r, &v), 0);
    assert_true(take_msg(r, RAFT_MSG_VOTE_RESP, &resp, NULL));
    assert_true(resp.reject);
    raft_msg_free_contents(&resp);
    v = vote_msg(2, 3, 1, 3); /* the same candidate again: granted again (lost reply) */
    assert_int_equal(raft_step(r, &v), 0);
    assert_true(take_msg(r, RAFT_MSG_VOTE_RESP, &resp, NULL));
    assert_false(resp.reject);
    raft_msg_free_contents(&resp);
    raft_destroy(&r);
}

/* Followers: with no leader contact for an election timeout, become candidate: increment
 * the term, vote for self, ask every other voter. Leaders: a majority makes a leader,
 * which appends a no-op of its term. */
static void test_candidate_and_leader(void **state)
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, 3, 3, NULL);
    h_elect(h, 1);
    raft_status_t st = h_status(h, 1);
    assert_int_equal(st.role, RAFT_LEADER);
    assert_int_equal(st.term, 2); /* bootstrap entries are term 1 */
    assert_int_equal(st.vote, 1);
    assert_int_equal(raft_term_at(h->n[1].r, st.last_index), 2);
    assert_int_equal(h->n[1].log[h->n[1].n_log - 1].type, RAFT_ENTRY_NOOP);
    assert_int_equal(h_status(h, 2).leader, 1);
    assert_int_equal(h_status(h, 3).leader, 1);
    assert_int_equal(h_status(h, 2).commit, st.last_index);
    h_destroy(h);
    free(h);
}

/* Candidates: an AppendEntries from a leader of the same term makes us its follower; an
 * election timeout without a result starts a new election in the next term. */
static void test_candidate_rules(void **state)
{
    uint64_t terms[] = {1};
    raft_t *r = node_with_log(1, terms, 1, 0);
    raft_msg_t tn = {.type = RAFT_MSG_TIMEOUT_NOW, .group = 7, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_step(r, &tn), 0);
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 2);
    for (int i = 0; i < 20; i++) /* at most 2 * election_tick */
        raft_tick(r);
    raft_status(r, &st);
    assert_int_equal(st.role, RAFT_PRECANDIDATE); /* a new election, pre-vote first */
    raft_msg_t pv = {.type = RAFT_MSG_PREVOTE_RESP, .group = 7, .from = 2, .to = 1, .term = 3};
    assert_int_equal(raft_step(r, &pv), 0);
    raft_status(r, &st);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 3);
    raft_msg_t app = append_msg(st.term, 1, 1, NULL, 0, 1);
    app.from = 3;
    assert_int_equal(raft_step(r, &app), 0);
    raft_status(r, &st);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.leader, 3);
    raft_destroy(&r);
}

/* Makes a restored single core leader of term+1 by a forced election and a grant from 2. */
static void make_leader(raft_t *r)
{
    raft_status_t st;
    raft_status(r, &st);
    raft_msg_t tn = {.type = RAFT_MSG_TIMEOUT_NOW, .group = 7, .from = 2, .to = 1, .term = st.term};
    assert_int_equal(raft_step(r, &tn), 0);
    raft_msg_t grant = {
        .type = RAFT_MSG_VOTE_RESP, .group = 7, .from = 2, .to = 1, .term = st.term + 1};
    assert_int_equal(raft_step(r, &grant), 0);
    raft_status(r, &st);
    assert_int_equal(st.role, RAFT_LEADER);
    raft_ready_t rd;
    while (raft_has_ready(r) && raft_ready(r, &rd) == 0)
        raft_advance(r, &rd); /* persist the no-op: the leader's own match */
}

/* §5.4.2 / Figure 8: a leader never commits an entry of an earlier term by counting
 * replicas; it does once an entry of its own term is replicated on a majority. */
static void test_figure8_old_term_not_committed(void **state)
{
    uint64_t terms[] = {1, 1, 2};
    raft_t *r = node_with_log(3, terms, 3, 0);
    make_leader(r); /* term 4, no-op at index 4 */
    raft_status_t st;
    raft_status(r, &st);
    assert_int_equal(st.last_index, 4);
    raft_msg_t ack = {
        .type = RAFT_MSG_APPEND_RESP, .group = 7, .from = 2, .to = 1, .term = 4, .index = 3};
    assert_int_equal(raft_step(r, &ack), 0); /* a majority {1,2} holds index 3 (term 2) */
    raft_status(r, &st);
    assert_int_equal(st.commit, 0);
    ack.index = 4;
    assert_int_equal(raft_step(r, &ack), 0); /* now the term-4 entry: all of it commits */
    raft_status(r, &st);
    assert_int_equal(st.commit, 4);
    raft_destroy(&r);
}

/* Leaders: commit the largest N with a majority of matchIndex >= N and log[N].term ==
 * currentTerm; a leader counts only entries it has persisted itself. */
static void test_commit_needs_majority_and_own_persist(void **state)
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, 3, 3, NULL);
    h_elect(h, 1);
    uint64_t c0 = h_status(h, 1).commit;
    h_cut_node(h, 2, true);
    h_cut_node(h, 3, true);
    int64_t idx = raft_propose(h->n[1].r, "a", 1, NULL);
    h_deliver(h);
    assert_int_equal(h_status(h, 1).commit, c0); /* alone: no majority */
    h_cut_node(h, 3, false);
    h_run(h, 2);
    assert_int_equal(h_status(h, 1).commit, (uint64_t)idx);
    /* single voter: commits only after its own ready is advanced */
    harness_t *g = malloc(sizeof(*g));
    h_init(g, 1, 1, NULL);
    h_elect(g, 1);
    idx = raft_propose(g->n[1].r, "b", 1, NULL);
    assert_true(h_status(g, 1).commit < (uint64_t)idx);
    h_ready(g, 1);
    h_ready(g, 1);
    assert_int_equal(h_status(g, 1).commit, (uint64_t)idx);
    h_destroy(g);
    free(g);
    h_destroy(h);
    free(h);
}

/* Leaders: if last log index >= nextIndex for a follower, send entries from nextIndex;
 * on rejection, back off (here: a whole term per round trip). */
static void test_leader_brings_divergent_follower_in_line(void **state)
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, 3, 3, NULL);
    h_elect(h, 1);
    /* node 3 is cut off while leader 1 writes 30 entries */
    h_cut_node(h, 3, true);
    for (int i = 0; i < 30; i++)
        raft_propose(h->n[1].r, "w", 1, NULL);
    h_run(h, 1);
    h_cut_node(h, 3, false);
    size_t before = h->sent[RAFT_MSG_APPEND];
    h_run(h, 3);
    raft_status_t l = h_status(h, 1), f = h_status(h, 3);
    assert_int_equal(f.last_index, l.last_index);
    assert_int_equal(f.commit, l.commit);
    assert_true(h->sent[RAFT_MSG_APPEND] - before < 40);
    for (uint64_t i = 1; i <= l.last_index; i++)
        assert_int_equal(raft_term_at(h->n[3].r, i), raft_term_at(h->n[1].r, i));
    h_destroy(h);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_higher_term_converts_to_follower),
        cmocka_unit_test(test_append_stale_term_rejected),
        cmocka_unit_test(test_append_rejects_mismatch_with_hint),
        cmocka_unit_test(test_append_truncates_conflicts),
        cmocka_unit_test(test_append_commit_is_min),
        cmocka_unit_test(test_vote_rules),
        cmocka_unit_test(test_candidate_and_leader),
        cmocka_unit_test(test_candidate_rules),
        cmocka_unit_test(test_figure8_old_term_not_committed),
        cmocka_unit_test(test_commit_needs_majority_and_own_persist),
        cmocka_unit_test(test_leader_brings_divergent_follower_in_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
