/* test_leader_balance.c - leader balancing's pure parts (actors/leader_balance.c): the
 * preferred leaders computed from a map (even over the nodes, the same whatever order the
 * map lists its shards in, still even after a move), the decision of a leader to hand over
 * (only to a live, caught-up voter of a settled group, not right after an election, not
 * while backing off) and the back-off that doubles while transfers do not stick. Times
 * are passed in, so nothing here waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "actors/leader_balance.h"
#include "actors/node_config.h"
#include "actors/shardmap.h"
#include "actors/transport.h"

/* nodes 0..n-1, s shards of 3 replicas: the bootstrap placement of cluster up */
static Shoal__ShardMap *bootstrap(size_t nodes, unsigned shards)
{
    node_config_t c;
    memset(&c, 0, sizeof c);
    c.shards = shards;
    c.replicas = 3;
    c.vnodes = 16;
    c.n_nodes = nodes;
    for (size_t i = 0; i < nodes; i++) {
        c.nodes[i].id = i;
        snprintf(c.nodes[i].endpoint, sizeof c.nodes[i].endpoint, "tcp://127.0.0.1:%zu",
                 7100 + 2 * i);
    }
    Shoal__ShardMap *m = shardmap_bootstrap(&c);
    assert_non_null(m);
    return m;
}

static const uint64_t META[3] = {0, 1, 2};

/* Leaders each node is preferred for, data shards and metadata group apart. */
static void tally(const lb_pref_t *p, size_t k, size_t *data, size_t *meta, size_t nodes)
{
    memset(data, 0, nodes * sizeof *data);
    memset(meta, 0, nodes * sizeof *meta);
    for (size_t i = 0; i < k; i++) {
        assert_true(p[i].n > 0 && p[i].rank[0] < nodes);
        (p[i].group == SHOAL_META_GROUP ? meta : data)[p[i].rank[0]]++;
    }
}

static void test_assign_is_even(void **state)
{
    (void)state;
    lb_pref_t p[16];
    size_t data[4], meta[4];
    /* 6 shards on 3 nodes: 2 each; the metadata group on one of its hosts */
    Shoal__ShardMap *m = bootstrap(3, 6);
    size_t k = leader_balance_assign(m, META, 3, p, 16);
    assert_int_equal(k, 7);
    tally(p, k, data, meta, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(data[i], 2);
    assert_int_equal(meta[0] + meta[1] + meta[2], 1);
    for (size_t i = 0; i < 6; i++) { /* a ranking of the shard's replicas, each once */
        const Shoal__ShardInfo *si = shardmap_shard(m, p[i].group);
        assert_int_equal(p[i].n, 3);
        for (size_t j = 0; j < 3; j++) {
            assert_true(shardmap_has(si->replicas, 3, p[i].rank[j]));
            assert_false(shardmap_has(p[i].rank, j, p[i].rank[j]));
        }
    }
    /* any node down: its two shards go one to each of the others */
    for (uint64_t down = 0; down < 3; down++) {
        size_t second[3] = {0};
        for (size_t i = 0; i < 6; i++)
            if (p[i].rank[0] == down)
                second[p[i].rank[1]]++;
        for (uint64_t o = 0; o < 3; o++)
            assert_int_equal(second[o], o == down ? 0 : 1);
    }
    shardmap_free(&m);
    /* 8 shards: 3/3/2 and the metadata group on the node with 2 (3 groups each) */
    m = bootstrap(3, 8);
    k = leader_balance_assign(m, META, 3, p, 16);
    assert_int_equal(k, 9);
    tally(p, k, data, meta, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(data[i] == 2 || data[i] == 3);
        assert_int_equal(data[i] + meta[i], 3);
    }
    shardmap_free(&m);
    /* 4 shards on 4 nodes: one each (node 3 hosts no metadata replica) */
    m = bootstrap(4, 4);
    k = leader_balance_assign(m, META, 3, p, 16);
    tally(p, k, data, meta, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(data[i], 1);
    assert_int_equal(meta[3], 0);
    shardmap_free(&m);
}

static void test_assign_ignores_map_order_and_follows_moves(void **state)
{
    (void)state;
    lb_pref_t a[8], b[8];
    Shoal__ShardMap *m = bootstrap(4, 4);
    size_t ka = leader_balance_assign(m, META, 3, a, 8);
    /* the same shards listed backwards: every node must compute the same assignment */
    for (size_t i = 0; i < m->n_shards / 2; i++) {
        Shoal__ShardInfo *t = m->shards[i];
        m->shards[i] = m->shards[m->n_shards - 1 - i];
        m->shards[m->n_shards - 1 - i] = t;
    }
    size_t kb = leader_balance_assign(m, META, 3, b, 8);
    assert_int_equal(ka, kb);
    for (size_t i = 0; i < ka; i++) {
        assert_int_equal(a[i].group, b[i].group);
        assert_int_equal(a[i].n, b[i].n);
        for (size_t j = 0; j < a[i].n; j++)
            assert_int_equal(a[i].rank[j], b[i].rank[j]);
    }
    /* shard 0 moved from node 0 to node 3 ([0,1,2] -> [3,1,2]): still one leader each */
    Shoal__ShardInfo *s0 = (Shoal__ShardInfo *)shardmap_shard(m, 0);
    s0->replicas[0] = 3;
    size_t data[4], meta[4];
    kb = leader_balance_assign(m, META, 3, b, 8);
    tally(b, kb, data, meta, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(data[i], 1);
    assert_int_equal(b[0].group, 0);
    assert_true(shardmap_has(s0->replicas, 3, b[0].rank[0]));
    shardmap_free(&m);
    /* a shard without replicas has no preferred leader; nothing breaks */
    Shoal__ShardMap empty = SHOAL__SHARD_MAP__INIT;
    assert_int_equal(leader_balance_assign(&empty, META, 0, b, 8), 1);
    assert_true(b[0].group == SHOAL_META_GROUP && b[0].n == 0);
    assert_int_equal(leader_balance_assign(&empty, META, 3, b, 0), 0);
}

/* ---- the decision: node 0 leads a group of nodes 0, 1, 2 ranked 1, 2, 0 ----------------- */

#define ELECTION_MS 500
#define NOW 100000

typedef struct {
    raft_status_t st;
    lb_state_t gs;
    lb_input_t in;
    lb_pref_t pref;
    bool alive[3];
    uint64_t replicas[3];
} fixture_t;

static void fixture(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    raft_status_t *st = &f->st;
    st->id = raft_id_of(0);
    st->role = RAFT_LEADER;
    st->term = 7;
    st->last_index = 1000;
    st->commit = 990;
    st->conf.n_voters = 3;
    for (uint64_t i = 0; i < 3; i++) {
        st->conf.voters[i] = raft_id_of(i);
        f->replicas[i] = i;
    }
    st->n_peers = 2;
    for (size_t i = 0; i < 2; i++)
        st->peers[i] = (raft_peer_status_t){.id = raft_id_of(i + 1),
                                            .match = 1000,
                                            .next = 1001,
                                            .state = RAFT_PROGRESS_REPLICATE,
                                            .recent_active = true};
    f->gs = (lb_state_t){.term = 7, .since_ms = NOW - 10000};
    f->pref = (lb_pref_t){.group = 0, .n = 3, .rank = {1, 2, 0}};
    f->alive[0] = f->alive[1] = f->alive[2] = true;
    f->in = (lb_input_t){.st = st,
                         .self = 0,
                         .pref = &f->pref,
                         .alive = f->alive,
                         .replicas = f->replicas,
                         .n_replicas = 3,
                         .now_ms = NOW,
                         .election_ms = ELECTION_MS,
                         .gs = &f->gs};
}

static void refused(const fixture_t *f, const char *want)
{
    const char *why = NULL;
    assert_int_equal(leader_balance_decide(&f->in, &why), 0);
    assert_non_null(why);
    assert_string_equal(why, want);
}

static void test_hands_over_to_live_caught_up_preferred(void **state)
{
    (void)state;
    fixture_t f;
    fixture(&f);
    assert_int_equal(leader_balance_decide(&f.in, NULL), raft_id_of(1));
    f.st.peers[0].match = 1000 - LB_MAX_LAG; /* a few entries in flight: the core waits */
    assert_int_equal(leader_balance_decide(&f.in, NULL), raft_id_of(1));
    f.st.peers[1].recent_active = false; /* another voter down does not matter */
    assert_int_equal(leader_balance_decide(&f.in, NULL), raft_id_of(1));
}

static void test_no_hand_over_when_not_needed_or_not_leader(void **state)
{
    (void)state;
    fixture_t f;
    fixture(&f);
    f.pref = (lb_pref_t){.group = 0, .n = 3, .rank = {0, 1, 2}};
    refused(&f, "the preferred leader leads");
    f.pref.n = 0; /* nothing ranked (a group the map has no replicas for) */
    refused(&f, "the preferred leader leads");
    fixture(&f);
    f.st.role = RAFT_FOLLOWER;
    refused(&f, "not the leader");
}

static void test_no_hand_over_to_a_lagging_node(void **state)
{
    (void)state;
    fixture_t f;
    fixture(&f);
    f.st.peers[0].match = 1000 - LB_MAX_LAG - 1;
    refused(&f, "the preferred node lags");
    fixture(&f);
    f.st.peers[0].state = RAFT_PROGRESS_SNAPSHOT; /* catching up from a snapshot */
    f.st.peers[0].match = 1000;
    refused(&f, "the preferred node lags");
    fixture(&f);
    f.st.peers[0].recent_active = false;
    refused(&f, "the preferred node lags");
}

static void test_preferred_down_falls_back_to_the_next_live_one(void **state)
{
    (void)state;
    fixture_t f;
    fixture(&f);
    f.alive[0] = false; /* node 1 silent: node 2, ranked next, should lead */
    f.st.peers[0].recent_active = false;
    assert_int_equal(leader_balance_target(&f.in), 2);
    assert_int_equal(leader_balance_decide(&f.in, NULL), raft_id_of(2));
    f.alive[1] = false; /* both silent: this node is the best there is */
    refused(&f, "the preferred leader leads");
    fixture(&f);
    f.alive[0] = false;
    f.pref = (lb_pref_t){.group = 0, .n = 3, .rank = {1, 0, 2}};
    refused(&f, "the preferred leader leads"); /* already led by the one ranked next */
    /* the preferred node is back but still catching up: wait for it, do not go elsewhere */
    fixture(&f);
    f.st.peers[0].match = 10;
    refused(&f, "the preferred node lags");
}

static void test_no_hand_over_to_a_learner_or_during_a_change(void **state)
{
    (void)state;
    fixture_t f;
    fixture(&f);
    /* node 1 is a learner (being added by a move): the configuration is not the map's */
    f.st.conf.n_voters = 2;
    f.st.conf.voters[1] = raft_id_of(2);
    f.st.conf.n_learners = 1;
    f.st.conf.learners[0] = raft_id_of(1);
    f.st.peers[0].learner = true;
    refused(&f, "a placement change is open");
    fixture(&f);
    f.in.changing = true; /* a move, cancel or split recorded in the map */
    refused(&f, "a placement change is open");
    fixture(&f);
    f.replicas[2] = 3; /* the map moved node 2's replica to node 3; the group has not yet */
    refused(&f, "a placement change is open");
    fixture(&f);
    f.st.peers[0].learner = true; /* the core still sees it as a learner */
    refused(&f, "the preferred node is not a voter");
    fixture(&f);
    f.st.n_peers = 1; /* no progress for it at all */
    f.st.peers[0] = f.st.peers[1];
    refused(&f, "the preferred node is not a voter");
    fixture(&f);
    f.st.lead_transferee = raft_id_of(2);
    refused(&f, "a transfer is running");
}

static void test_waits_after_election_and_backs_off(void **state)
{
    (void)state;
    fixture_t f;
    fixture(&f);
    uint64_t hold = leader_balance_hold_ms(ELECTION_MS), base = leader_balance_base_ms(ELECTION_MS);
    assert_true(hold >= 4 * ELECTION_MS && base >= 2 * hold);
    /* elected just now (first seen leading in this term) */
    leader_balance_observe(&f.gs, 8, NOW);
    f.st.term = 8;
    refused(&f, "elected just now");
    leader_balance_observe(&f.gs, 8, NOW + hold - 1); /* same term: the start stays */
    f.in.now_ms = NOW + hold - 1;
    refused(&f, "elected just now");
    f.in.now_ms = NOW + hold;
    assert_int_equal(leader_balance_decide(&f.in, NULL), raft_id_of(1));
    /* a transfer started: nothing until the base interval passed */
    uint64_t t = NOW + hold;
    leader_balance_started(&f.gs, t, ELECTION_MS);
    assert_int_equal(f.gs.backoff_ms, base);
    f.in.now_ms = t + base - 1;
    refused(&f, "backing off");
    f.in.now_ms = t + base;
    assert_int_equal(leader_balance_decide(&f.in, NULL), raft_id_of(1));
    /* the leadership keeps coming back: each interval doubles, up to the cap */
    uint64_t want = base;
    for (int i = 0; i < 10; i++) {
        t += f.gs.backoff_ms;
        leader_balance_started(&f.gs, t, ELECTION_MS);
        want = want * 2 < LB_MAX_BACKOFF_MS ? want * 2 : LB_MAX_BACKOFF_MS;
        assert_int_equal(f.gs.backoff_ms, want);
    }
    assert_int_equal(f.gs.backoff_ms, LB_MAX_BACKOFF_MS);
    f.in.now_ms = t + LB_MAX_BACKOFF_MS - 1;
    refused(&f, "backing off");
    /* a transfer that stuck for long: the next one starts from the base interval again */
    t += 2 * LB_MAX_BACKOFF_MS + 1;
    leader_balance_started(&f.gs, t, ELECTION_MS);
    assert_int_equal(f.gs.backoff_ms, base);
    /* a slow cluster (2 s election timeout) waits proportionally longer */
    assert_true(leader_balance_hold_ms(2000) > leader_balance_hold_ms(ELECTION_MS));
    assert_true(leader_balance_base_ms(2000) > leader_balance_base_ms(ELECTION_MS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_is_even),
        cmocka_unit_test(test_assign_ignores_map_order_and_follows_moves),
        cmocka_unit_test(test_hands_over_to_live_caught_up_preferred),
        cmocka_unit_test(test_no_hand_over_when_not_needed_or_not_leader),
        cmocka_unit_test(test_no_hand_over_to_a_lagging_node),
        cmocka_unit_test(test_preferred_down_falls_back_to_the_next_live_one),
        cmocka_unit_test(test_no_hand_over_to_a_learner_or_during_a_change),
        cmocka_unit_test(test_waits_after_election_and_backs_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
