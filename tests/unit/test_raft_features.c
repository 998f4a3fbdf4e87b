/* test_raft_features.c - the features beyond Figure 2, each on the synchronous harness
 * (tests/sim/harness.h): pre-vote, check-quorum, pipelining, heartbeats, restart,
 * snapshots, membership, leadership transfer, ReadIndex, lease reads, and the error
 * returns for misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/sim/harness.h"

static harness_t *new_cluster(int count, int voters, void (*tweak)(raft_config_t *))
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, count, voters, tweak);
    h_elect(h, 1);
    assert_int_equal(h_status(h, 1).role, RAFT_LEADER);
    return h;
}

static void free_cluster(harness_t *h)
{
    h_destroy(h);
    free(h);
}

/* Bootstrap: the initial configuration is written as committed entries 1..n of term 1. */
static void test_bootstrap_entries(void **state)
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, 3, 3, NULL);
    h_ready_all(h);
    assert_int_equal(h->n[1].n_log, 3);
    assert_int_equal(h->n[1].hs.commit, 3);
    assert_int_equal(h->n[1].hs.term, 1);
    raft_conf_change_t cc;
    assert_int_equal(raft_conf_change_decode(h->n[1].log[2].data, h->n[1].log[2].len, &cc), 0);
    assert_int_equal(cc.type, RAFT_CONF_ADD_VOTER);
    assert_int_equal(cc.node_id, 3);
    free_cluster(h);
}

/* Replication: proposals commit on every node and are applied in order, once. */
static void test_replicate_and_apply(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    for (int i = 0; i < 20; i++) {
        char c = (char)('a' + i);
        assert_true(raft_propose(h->n[1].r, &c, 1, NULL) > 0);
    }
    h_run(h, 2);
    for (int n = 1; n <= 3; n++) {
        size_t k = 0;
        for (size_t i = 0; i < h->n[n].n_applied; i++)
            if (h->n[n].applied[i].type == RAFT_ENTRY_NORMAL) {
                assert_int_equal(h->n[n].applied[i].data[0], 'a' + (int)k);
                k++;
            }
        assert_int_equal(k, 20);
    }
    free_cluster(h);
}

/* Misuse: a follower refuses proposals with the leader's id as hint; bad arguments and a
 * second ready before advance are errors, not crashes. */
static void test_misuse_errors(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    uint64_t hint = 0;
    assert_int_equal(raft_propose(h->n[2].r, "x", 1, &hint), SHOAL_ENOTLEADER);
    assert_int_equal(hint, 1);
    assert_int_equal(raft_propose(NULL, "x", 1, NULL), SHOAL_EINVAL);
    assert_int_equal(raft_propose(h->n[1].r, NULL, 3, NULL), SHOAL_EINVAL);
    assert_int_equal(raft_transfer_leader(h->n[2].r, 3), SHOAL_ENOTLEADER);
    assert_int_equal(raft_transfer_leader(h->n[1].r, 1), SHOAL_EINVAL);
    assert_int_equal(raft_transfer_leader(h->n[1].r, 9), SHOAL_EINVAL);
    assert_int_equal(raft_snapshot_taken(h->n[1].r, 1000, NULL), SHOAL_EINVAL);
    char big[300] = {0};
    assert_int_equal(raft_read_index(h->n[1].r, big, sizeof(big)), SHOAL_EINVAL);
    raft_msg_t bad = {.type = 99, .group = 7, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_step(h->n[1].r, &bad), SHOAL_EINVAL);
    bad.type = RAFT_MSG_APPEND;
    bad.group = 8;
    assert_int_equal(raft_step(h->n[1].r, &bad), SHOAL_EINVAL);
    raft_propose(h->n[1].r, "y", 1, NULL);
    raft_ready_t rd, rd2;
    assert_int_equal(raft_ready(h->n[1].r, &rd), 0);
    assert_int_equal(raft_ready(h->n[1].r, &rd2), SHOAL_EBUSY);
    assert_false(raft_has_ready(h->n[1].r));
    raft_advance(h->n[1].r, &rd);
    raft_config_t c;
    h_config(&c, 0);
    raft_restore_t rs = {0};
    int err = 0;
    assert_null(raft_new(&c, &rs, &err));
    assert_int_equal(err, SHOAL_EINVAL);
    h_config(&c, 1);
    c.lease_read = true;
    c.check_quorum = false;
    assert_null(raft_new(&c, &rs, &err));
    free_cluster(h);
}

/* Pre-vote: a node cut off keeps campaigning without raising its term, so it does not
 * depose the leader when it comes back. */
static void test_prevote_keeps_term(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    uint64_t term = h_status(h, 1).term;
    h_cut_node(h, 3, true);
    for (int i = 0; i < 100; i++) {
        h_tick(h, 3);
        h_deliver(h);
    }
    assert_int_equal(h_status(h, 3).term, term);
    assert_int_equal(h_status(h, 3).role, RAFT_PRECANDIDATE);
    h_cut_node(h, 3, false);
    h_run(h, 5);
    assert_int_equal(h_status(h, 1).role, RAFT_LEADER);
    assert_int_equal(h_status(h, 1).term, term);
    assert_int_equal(h_status(h, 3).leader, 1);
    free_cluster(h);
}

static void no_prevote(raft_config_t *c)
{
    c->prevote = false;
    c->check_quorum = false;
}

/* Without pre-vote the same node raises its term and the leader steps down on return. */
static void test_without_prevote_term_grows(void **state)
{
    harness_t *h = new_cluster(3, 3, no_prevote);
    uint64_t term = h_status(h, 1).term;
    h_cut_node(h, 3, true);
    for (int i = 0; i < 100; i++)
        h_tick(h, 3);
    h_deliver(h);
    assert_true(h_status(h, 3).term > term + 2);
    free_cluster(h);
}

/* Check-quorum: a leader that hears from no majority for an election timeout steps down;
 * followers that heard from a leader recently ignore vote requests. */
static void test_check_quorum(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_cut_node(h, 1, true);
    for (int i = 0; i < 25; i++)
        h_tick(h, 1);
    h_deliver(h);
    assert_int_equal(h_status(h, 1).role, RAFT_FOLLOWER);
    h_cut_node(h, 1, false);
    h_run(h, 40);
    int l = h_leader(h);
    assert_true(l > 0);
    /* stickiness: a vote request from a higher term is ignored by a follower in lease */
    int f = l == 2 ? 3 : 2;
    raft_status_t before = h_status(h, f);
    raft_msg_t v = {.type = RAFT_MSG_VOTE,
                    .group = 7,
                    .from = l == 1 ? 3 : 1,
                    .to = (uint64_t)f,
                    .term = before.term + 5,
                    .index = 1000,
                    .log_term = before.term + 4};
    assert_int_equal(raft_step(h->n[f].r, &v), 0);
    assert_int_equal(h_status(h, f).term, before.term);
    free_cluster(h);
}

/* With check-quorum, a node that just started ignores vote requests for an election
 * timeout: before a crash it may have acknowledged a leader whose lease still runs. */
static void test_restarted_node_waits_out_lease(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_crash(h, 3);
    h_start(h, 3);
    raft_status_t st = h_status(h, 3);
    raft_msg_t v = {.type = RAFT_MSG_VOTE,
                    .group = 7,
                    .from = 2,
                    .to = 3,
                    .term = st.term + 1,
                    .index = 1000,
                    .log_term = st.term + 1};
    assert_int_equal(raft_step(h->n[3].r, &v), 0);
    assert_int_equal(h_status(h, 3).term, st.term); /* ignored */
    for (int i = 0; i < 10; i++)
        raft_tick(h->n[3].r);
    assert_int_equal(raft_step(h->n[3].r, &v), 0);
    assert_int_equal(h_status(h, 3).vote, 2);
    free_cluster(h);
}

static void small_window(raft_config_t *c)
{
    c->max_inflight = 3;
    c->max_msg_entries = 1;
}

/* Pipelining: in replicate state a leader keeps up to max_inflight appends in flight
 * without waiting for acknowledgements, and no more. */
static void test_pipelining_window(void **state)
{
    harness_t *h = new_cluster(3, 3, small_window);
    h_run(h, 2); /* followers in replicate state */
    size_t before = h->sent[RAFT_MSG_APPEND];
    for (int i = 0; i < 10; i++)
        raft_propose(h->n[1].r, "p", 1, NULL);
    h_ready(h, 1);
    size_t sent = h->sent[RAFT_MSG_APPEND] - before;
    assert_int_equal(sent, 2 * 3); /* 3 in flight to each of 2 followers */
    raft_status_t st = h_status(h, 1);
    for (size_t i = 0; i < st.n_peers; i++)
        assert_int_equal(st.peers[i].state, RAFT_PROGRESS_REPLICATE);
    h_deliver(h);
    h_run(h, 2);
    assert_int_equal(h_status(h, 2).commit, h_status(h, 1).last_index);
    free_cluster(h);
}

/* Appends with entries to `to` queued by the leader since the queue was last delivered. */
static int queued_appends(harness_t *h, uint64_t to)
{
    int n = 0;
    for (size_t i = 0; i < h->nq; i++)
        n += h->q[i].type == RAFT_MSG_APPEND && h->q[i].to == to && h->q[i].n_entries > 0;
    return n;
}

/* A heartbeat answer from `from` whose last log index is `last`. */
static void heartbeat_answer(harness_t *h, uint64_t from, uint64_t last)
{
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT_RESP,
                    .group = 7,
                    .from = from,
                    .to = 1,
                    .term = h_status(h, 1).term,
                    .index = last};
    raft_step(h->n[1].r, &m);
    h_ready(h, 1);
}

/* Cuts node 3 off, has leader 1 append 12 bytes in 4 entries, and has node 3 reject the
 * last append: the leader sends a probe with those entries (lost). Returns node 3's match. */
static uint64_t probe_lost(harness_t *h)
{
    h_run(h, 2);
    h_cut_node(h, 3, true);
    for (int i = 0; i < 4; i++)
        raft_propose(h->n[1].r, "big", 3, NULL);
    h_deliver(h);
    uint64_t match3 = 0, last = h_status(h, 1).last_index;
    raft_status_t st = h_status(h, 1);
    for (size_t i = 0; i < st.n_peers; i++)
        if (st.peers[i].id == 3)
            match3 = st.peers[i].match;
    assert_true(match3 < last);
    raft_msg_t rej = {.type = RAFT_MSG_APPEND_RESP,
                      .group = 7,
                      .from = 3,
                      .to = 1,
                      .term = st.term,
                      .index = last - 1,
                      .reject = true,
                      .reject_hint = match3};
    raft_step(h->n[1].r, &rej);
    h_ready(h, 1);
    assert_int_equal(queued_appends(h, 3), 1);
    h_deliver(h);
    return match3;
}

static void hold_12_bytes(raft_config_t *c)
{
    c->probe_hold_bytes = 12;
}

/* A big probe is not sent again on every heartbeat answer while the follower holds it (a
 * follower slow to persist a 4 MiB append got it again and again): only when the answer's
 * last index shows it never arrived, or half an election timeout later. */
static void test_probe_not_resent_per_heartbeat(void **state)
{
    harness_t *h = new_cluster(3, 3, hold_12_bytes);
    uint64_t match3 = probe_lost(h), last = h_status(h, 1).last_index;
    for (int i = 0; i < 5; i++) /* it holds the probe, still persisting it */
        heartbeat_answer(h, 3, last);
    assert_int_equal(queued_appends(h, 3), 0);
    heartbeat_answer(h, 3, match3); /* it never got it */
    assert_int_equal(queued_appends(h, 3), 1);
    h_deliver(h);
    heartbeat_answer(h, 3, last);
    assert_int_equal(queued_appends(h, 3), 0);
    for (unsigned t = 0; t < h->n[1].cfg.election_tick / 2; t++)
        h_tick(h, 1);
    h_deliver(h);
    heartbeat_answer(h, 3, last); /* no answer for half an election timeout */
    assert_int_equal(queued_appends(h, 3), 1);
    h_deliver(h);
    h_cut_node(h, 3, false);
    for (unsigned t = 0; t < h->n[1].cfg.election_tick; t++)
        h_tick(h, 1), h_deliver(h);
    assert_int_equal(h_status(h, 3).last_index, h_status(h, 1).last_index);
    free_cluster(h);

    /* below probe_hold_bytes (64 KiB by default) a probe goes again with every answer */
    h = new_cluster(3, 3, NULL);
    probe_lost(h);
    last = h_status(h, 1).last_index;
    for (int i = 0; i < 3; i++) {
        heartbeat_answer(h, 3, last);
        assert_int_equal(queued_appends(h, 3), 1);
        h_deliver(h);
    }
    free_cluster(h);
}

/* Heartbeats carry commit = min(follower match, leader commit) and nothing else. */
static void test_heartbeat_commit_min(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_cut_node(h, 3, true);
    for (int i = 0; i < 5; i++)
        raft_propose(h->n[1].r, "h", 1, NULL);
    h_deliver(h);
    h_ready_all(h);
    raft_status_t st = h_status(h, 1);
    uint64_t match3 = 0;
    for (size_t i = 0; i < st.n_peers; i++)
        if (st.peers[i].id == 3)
            match3 = st.peers[i].match;
    assert_true(match3 < st.commit);
    raft_tick(h->n[1].r);
    raft_ready_t rd;
    assert_int_equal(raft_ready(h->n[1].r, &rd), 0);
    bool seen = false;
    for (size_t i = 0; i < rd.n_msgs; i++) {
        raft_msg_t *m = &rd.msgs[i];
        if (m->type != RAFT_MSG_HEARTBEAT)
            continue;
        assert_int_equal(m->n_entries, 0);
        assert_int_equal(m->commit, m->to == 3 ? match3 : st.commit);
        seen |= m->to == 3;
    }
    assert_true(seen);
    raft_advance(h->n[1].r, &rd);
    free_cluster(h);
}

/* A commit that moves while the leader's ready is out reaches each follower on the next
 * ready's append with entries: one message per follower, not an empty append for the
 * commit next to it (each would cost the follower an answer). */
static void test_commit_rides_on_appends(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_run(h, 2);
    raft_t *l = h->n[1].r;
    int64_t a = raft_propose(l, "a", 1, NULL);
    assert_true(a > 0);
    raft_ready_t rd1, rd2;
    assert_int_equal(raft_ready(l, &rd1), 0); /* out, as while the node's log syncs */
    for (size_t i = 0; i < rd1.n_msgs; i++)
        raft_step(h->n[rd1.msgs[i].to].r, &rd1.msgs[i]);
    h_ready(h, 2);
    h_ready(h, 3);
    for (size_t i = 0; i < h->nq; i++) { /* both acks: a majority without the leader */
        if (h->q[i].to == 1)
            raft_step(l, &h->q[i]);
        raft_msg_free_contents(&h->q[i]);
    }
    h->nq = 0;
    assert_int_equal(h_status(h, 1).commit, (uint64_t)a);
    int64_t b = raft_propose(l, "b", 1, NULL);
    assert_true(b > 0);
    h_persist(&h->n[1], &rd1);
    raft_advance(l, &rd1);
    assert_int_equal(raft_ready(l, &rd2), 0);
    size_t appends[4] = {0};
    for (size_t i = 0; i < rd2.n_msgs; i++) {
        raft_msg_t *m = &rd2.msgs[i];
        if (m->type != RAFT_MSG_APPEND)
            continue;
        appends[m->to]++;
        assert_int_equal(m->n_entries, 1);
        assert_int_equal(m->entries[0].index, (uint64_t)b);
        assert_int_equal(m->commit, (uint64_t)a);
    }
    assert_int_equal(appends[2], 1);
    assert_int_equal(appends[3], 1);
    for (size_t i = 0; i < rd2.n_msgs; i++)
        h_enqueue(h, &rd2.msgs[i]);
    h_persist(&h->n[1], &rd2);
    raft_advance(l, &rd2);
    h_deliver(h);
    assert_int_equal(h_status(h, 2).commit, (uint64_t)b);
    free_cluster(h);
}

/* Restart: term, vote and log come back from the persisted state; nothing committed is
 * lost and the node rejoins. */
static void test_restart_from_disk(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    for (int i = 0; i < 5; i++)
        raft_propose(h->n[1].r, "r", 1, NULL);
    h_run(h, 2);
    raft_status_t before = h_status(h, 2);
    h_crash(h, 2);
    assert_non_null(h_start(h, 2));
    raft_status_t after = h_status(h, 2);
    assert_int_equal(after.term, before.term);
    assert_int_equal(after.vote, before.vote);
    assert_int_equal(after.last_index, before.last_index);
    assert_int_equal(after.commit, before.commit);
    h_run(h, 3);
    assert_int_equal(h->n[2].applied_index, h_status(h, 1).commit);
    /* the whole group restarts; a leader is elected again with the same log */
    for (int i = 1; i <= 3; i++) {
        h_crash(h, i);
        h_start(h, i);
    }
    h_run(h, 60);
    int l = h_leader(h);
    assert_true(l > 0);
    assert_true(h_status(h, l).last_index > before.last_index);
    free_cluster(h);
}

/* Snapshots: the leader compacts, a follower behind the compacted log receives the
 * snapshot in chunks and resumes from it; a checksum failure restarts the transfer. */
static void test_snapshot_install(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_cut_node(h, 3, true);
    for (int i = 0; i < 10; i++)
        raft_propose(h->n[1].r, "s", 1, NULL);
    h_run(h, 2);
    h_node_t *l = &h->n[1];
    memcpy(l->snap_data, "0123456789abcdefghij", 20); /* the application's state */
    l->snap_len = 20;
    raft_snapshot_meta_t meta;
    assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &meta), 0);
    l->snap = meta;
    assert_int_equal(meta.index, h_status(h, 1).commit);
    assert_int_equal(meta.conf.n_voters, 3);
    assert_int_equal(h_status(h, 1).snapshot_index, meta.index);
    assert_int_equal(raft_term_at(l->r, meta.index - 1), 0); /* compacted */
    h->n[3].corrupt_next = true;
    h_cut_node(h, 3, false);
    h_run(h, 40);
    assert_true(h->n[3].chunks_written >= 10); /* 20 bytes in 4-byte chunks, twice */
    assert_int_equal(h->n[3].snap.index, meta.index);
    assert_memory_equal(h->n[3].snap_data, "0123456789abcdefghij", 20);
    assert_int_equal(h_status(h, 3).commit, h_status(h, 1).commit);
    raft_propose(l->r, "t", 1, NULL);
    h_run(h, 2);
    assert_int_equal(h->n[3].applied_index, h_status(h, 1).commit);
    free_cluster(h);
}

static void keep_five(raft_config_t *c)
{
    c->snapshot_trailing_entries = 5;
}

/* Trailing entries: a follower that missed fewer entries than are kept behind the
 * snapshot catches up by appends; one that missed more gets the snapshot. */
static void test_snapshot_trailing_entries(void **state)
{
    harness_t *h = new_cluster(3, 3, keep_five);
    h_node_t *l = &h->n[1];
    for (int round = 0; round < 2; round++) {
        int missed = round == 0 ? 4 : 9;
        h_cut_node(h, 3, true);
        for (int i = 0; i < missed; i++)
            raft_propose(l->r, "s", 1, NULL);
        h_run(h, 2);
        memcpy(l->snap_data, "state", 5);
        l->snap_len = 5;
        raft_snapshot_meta_t meta;
        assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &meta), 0);
        l->snap = meta;
        assert_int_equal(h_status(h, 1).snapshot_index, meta.index);
        assert_int_equal(h_status(h, 1).first_index, meta.index - 5 + 1);
        assert_int_not_equal(raft_term_at(l->r, meta.index - 5), 0); /* still held */
        assert_int_equal(raft_snapshot_taken(l->r, meta.index - 1, NULL), SHOAL_EINVAL);
        h_cut_node(h, 3, false);
        h_run(h, 40);
        assert_int_equal(h->n[3].applied_index, h_status(h, 1).commit);
        if (round == 0)
            assert_int_equal(h->n[3].chunks_written, 0);
        else
            assert_true(h->n[3].chunks_written > 0);
    }
    free_cluster(h);
}

/* Bytes of entry data on node id's disk log for indexes from..to: what its core's log
 * must count for the same range. */
static uint64_t disk_bytes(harness_t *h, int id, uint64_t from, uint64_t to)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < h->n[id].n_log; i++)
        if (h->n[id].log[i].index >= from && h->n[id].log[i].index <= to)
            sum += h->n[id].log[i].len;
    return sum;
}

static void assert_bytes_match_disk(harness_t *h, int id)
{
    raft_status_t st = h_status(h, id);
    assert_int_equal(st.log_bytes, disk_bytes(h, id, st.first_index, st.last_index));
    assert_int_equal(st.trailing_bytes, disk_bytes(h, id, st.first_index, st.snapshot_index));
}

/* The log counts its entries' data bytes through appends, truncation of a deposed
 * leader's suffix, compaction and a snapshot install (reset). */
static void test_log_bytes_accounting(void **state)
{
    char buf[100] = {0};
    harness_t *h = new_cluster(3, 3, NULL);
    uint64_t before = h_status(h, 1).log_bytes;
    for (int n = 1; n <= 3; n++)
        assert_bytes_match_disk(h, n);
    for (size_t len = 10; len <= 100; len += 10)
        assert_true(raft_propose(h->n[1].r, buf, len, NULL) > 0);
    h_run(h, 2);
    assert_int_equal(h_status(h, 1).log_bytes, before + 550);
    for (int n = 1; n <= 3; n++)
        assert_bytes_match_disk(h, n);

    /* truncation: node 1's uncommitted suffix (150 bytes) is replaced by node 2's (14) */
    h_cut_node(h, 1, true);
    for (int i = 0; i < 3; i++)
        raft_propose(h->n[1].r, buf, 50, NULL);
    h_ready(h, 1);
    assert_int_equal(h_status(h, 1).log_bytes, before + 550 + 150);
    assert_bytes_match_disk(h, 1);
    h_elect(h, 2);
    assert_int_equal(h_status(h, 2).role, RAFT_LEADER);
    for (int i = 0; i < 2; i++)
        assert_true(raft_propose(h->n[2].r, buf, 7, NULL) > 0);
    h_run(h, 2);
    h_cut_node(h, 1, false);
    h_run(h, 30);
    raft_status_t s1 = h_status(h, 1), s2 = h_status(h, 2);
    assert_int_equal(s1.last_index, s2.last_index);
    assert_int_equal(s1.log_bytes, s2.log_bytes);
    assert_int_equal(s1.log_bytes, before + 550 + 14); /* + the new leader's empty no-op */
    for (int n = 1; n <= 3; n++)
        assert_bytes_match_disk(h, n);

    /* compaction (no trailing entries by default), then an install on node 3 (reset) */
    h_cut_node(h, 3, true);
    for (int i = 0; i < 4; i++)
        raft_propose(h->n[2].r, buf, 25, NULL);
    h_run(h, 2);
    h_node_t *l = &h->n[2];
    memcpy(l->snap_data, "state", 5);
    l->snap_len = 5;
    raft_snapshot_meta_t meta;
    assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &meta), 0);
    l->snap = meta;
    assert_int_equal(h_status(h, 2).log_bytes, 0);
    assert_bytes_match_disk(h, 2);
    assert_true(h_status(h, 3).log_bytes > 0);
    h_cut_node(h, 3, false);
    h_run(h, 40);
    assert_true(h->n[3].chunks_written > 0);
    assert_int_equal(h_status(h, 3).snapshot_index, meta.index);
    assert_int_equal(h_status(h, 3).log_bytes, 0);
    assert_bytes_match_disk(h, 3);
    assert_true(raft_propose(l->r, buf, 33, NULL) > 0);
    h_run(h, 2);
    for (int n = 1; n <= 3; n++) /* node 1 took no snapshot: it holds everything */
        assert_int_equal(h_status(h, n).log_bytes, n == 1 ? before + 550 + 14 + 100 + 33 : 33);
    for (int n = 1; n <= 3; n++)
        assert_bytes_match_disk(h, n);
    free_cluster(h);
}

static void keep_250_bytes(raft_config_t *c)
{
    c->snapshot_trailing_entries = 100;
    c->snapshot_trailing_bytes = 250;
}

/* Trailing entries are bounded by bytes as well as by count, walking back from the
 * snapshot (an entry bigger than the bound is not kept); raft_drop_trailing gives them
 * back, and a follower that needs one of them then gets the snapshot. */
static void test_snapshot_trailing_bytes(void **state)
{
    raft_config_t def;
    raft_config_default(&def);
    assert_int_equal(def.snapshot_trailing_bytes, 32u << 20);
    char buf[300] = {0};
    harness_t *h = new_cluster(3, 3, keep_250_bytes);
    h_node_t *l = &h->n[1];
    for (int i = 0; i < 10; i++)
        assert_true(raft_propose(l->r, buf, 100, NULL) > 0);
    h_run(h, 2);
    memcpy(l->snap_data, "state", 5);
    l->snap_len = 5;
    raft_snapshot_meta_t meta;
    assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &meta), 0);
    l->snap = meta;
    raft_status_t st = h_status(h, 1);
    assert_int_equal(st.first_index, meta.index - 2 + 1); /* 200 bytes; a third is 300 */
    assert_int_equal(st.trailing_bytes, 200);
    assert_int_equal(st.log_bytes, 200);
    assert_bytes_match_disk(h, 1);

    /* the newest entry alone is bigger than the bound: nothing is kept */
    assert_true(raft_propose(l->r, buf, 300, NULL) > 0);
    h_run(h, 2);
    assert_int_equal(h_status(h, 1).log_bytes, 500);
    assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &meta), 0);
    l->snap = meta;
    st = h_status(h, 1);
    assert_int_equal(st.first_index, meta.index + 1);
    assert_int_equal(st.log_bytes, 0);
    assert_int_equal(st.trailing_bytes, 0);

    /* small entries: the count binds first (100 entries of 1 byte would fit in 250) */
    h_cut_node(h, 3, true);
    for (int i = 0; i < 3; i++)
        assert_true(raft_propose(l->r, buf, 1, NULL) > 0);
    h_run(h, 2);
    assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &meta), 0);
    l->snap = meta;
    st = h_status(h, 1);
    assert_int_equal(st.first_index, meta.index - 3 + 1);
    assert_int_equal(st.trailing_bytes, 3);

    /* dropped: node 3, which missed those three entries, now needs the snapshot */
    raft_drop_trailing(l->r);
    st = h_status(h, 1);
    assert_int_equal(st.first_index, meta.index + 1);
    assert_int_equal(st.log_bytes, 0);
    assert_int_equal(st.trailing_bytes, 0);
    assert_int_equal(raft_term_at(l->r, meta.index - 1), 0);
    raft_drop_trailing(l->r); /* twice is harmless */
    raft_drop_trailing(NULL);
    h_cut_node(h, 3, false);
    h_run(h, 40);
    assert_true(h->n[3].chunks_written > 0);
    assert_int_equal(h->n[3].applied_index, h_status(h, 1).commit);
    assert_true(raft_propose(l->r, buf, 1, NULL) > 0);
    h_run(h, 2);
    assert_int_equal(h->n[3].applied_index, h_status(h, 1).commit);
    free_cluster(h);
}

static int64_t change(harness_t *h, int leader, raft_conf_change_type_t type, uint64_t id)
{
    raft_conf_change_t cc = {
        .type = type, .node_id = id, .context = (const uint8_t *)"ep", .context_len = 2};
    return raft_propose_conf_change(h->n[leader].r, &cc, NULL);
}

/* Membership: a learner catches up, is promoted, and then counts; one change at a time;
 * errors for changes that make no sense or would lose the quorum. */
static void test_membership_learner_promote(void **state)
{
    harness_t *h = new_cluster(4, 3, NULL);
    assert_true(change(h, 1, RAFT_CONF_ADD_LEARNER, 4) > 0);
    assert_int_equal(change(h, 1, RAFT_CONF_ADD_LEARNER, 5), SHOAL_EBUSY); /* pending */
    h_run(h, 3);
    raft_status_t st = h_status(h, 4);
    assert_int_equal(st.conf.n_learners, 1);
    assert_int_equal(st.commit, h_status(h, 1).commit);
    assert_int_equal(change(h, 1, RAFT_CONF_ADD_LEARNER, 4), SHOAL_EEXIST);
    assert_int_equal(change(h, 1, RAFT_CONF_PROMOTE, 2), SHOAL_EEXIST);
    assert_int_equal(change(h, 1, RAFT_CONF_REMOVE, 6), SHOAL_ENOTFOUND);
    assert_int_equal(change(h, 1, RAFT_CONF_ADD_VOTER, 0), SHOAL_EINVAL);
    assert_true(change(h, 1, RAFT_CONF_PROMOTE, 4) > 0);
    h_run(h, 3);
    assert_int_equal(h_status(h, 1).conf.n_voters, 4);
    assert_int_equal(h_status(h, 4).conf.n_voters, 4);
    free_cluster(h);
}

/* With node 3 down, removing 2 leaves {1,3} with one live voter, and adding a fresh voter
 * gives {1,2,3,4} with two: both would lose the quorum and are refused. */
static void test_change_that_loses_quorum(void **state)
{
    harness_t *h = new_cluster(4, 3, NULL);
    h_run(h, 2);
    h_crash(h, 3);
    h_run(h, 12);
    assert_int_equal(h_status(h, 1).role, RAFT_LEADER);
    assert_int_equal(change(h, 1, RAFT_CONF_REMOVE, 2), SHOAL_EUNAVAIL);
    assert_int_equal(change(h, 1, RAFT_CONF_ADD_VOTER, 4), SHOAL_EUNAVAIL);
    assert_true(change(h, 1, RAFT_CONF_ADD_LEARNER, 4) > 0); /* a learner is fine */
    free_cluster(h);
}

/* A learner that has not caught up cannot be promoted yet. */
static void test_promote_needs_catch_up(void **state)
{
    harness_t *h = new_cluster(4, 3, NULL);
    for (int i = 0; i < 10; i++)
        raft_propose(h->n[1].r, "c", 1, NULL);
    h_run(h, 2);
    h_cut_node(h, 4, true);
    assert_true(change(h, 1, RAFT_CONF_ADD_LEARNER, 4) > 0);
    h_run(h, 3);
    assert_int_equal(change(h, 1, RAFT_CONF_PROMOTE, 4), SHOAL_EBUSY);
    assert_int_equal(change(h, 1, RAFT_CONF_ADD_VOTER, 4), SHOAL_EBUSY);
    h_cut_node(h, 4, false);
    h_run(h, 3);
    assert_true(change(h, 1, RAFT_CONF_PROMOTE, 4) > 0);
    free_cluster(h);
}

/* Removing the leader: it commits its removal, hands over and steps down; the others go on
 * with a leader among themselves. */
static void test_remove_leader(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_run(h, 2);
    assert_true(change(h, 1, RAFT_CONF_REMOVE, 1) > 0);
    h_run(h, 40);
    assert_int_not_equal(h_status(h, 1).role, RAFT_LEADER);
    int l = h_leader(h);
    assert_true(l == 2 || l == 3);
    assert_int_equal(h_status(h, l).conf.n_voters, 2);
    assert_true(raft_propose(h->n[l].r, "z", 1, NULL) > 0);
    h_run(h, 2);
    assert_int_equal(h_status(h, 5 - l).commit, h_status(h, l).commit);
    /* the removed node never campaigns again */
    for (int i = 0; i < 50; i++)
        h_tick(h, 1);
    h_deliver(h);
    assert_int_equal(h_status(h, 1).role, RAFT_FOLLOWER);
    free_cluster(h);
}

/* Leadership transfer: the target catches up, gets TIMEOUT_NOW and wins; proposals are
 * refused while the transfer runs. */
static void test_transfer_leader(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_cut_node(h, 3, true);
    raft_propose(h->n[1].r, "q", 1, NULL);
    h_run(h, 1);
    assert_int_equal(raft_transfer_leader(h->n[1].r, 3), 0);
    assert_int_equal(raft_propose(h->n[1].r, "q", 1, NULL), SHOAL_EBUSY);
    assert_int_equal(raft_transfer_leader(h->n[1].r, 2), SHOAL_EBUSY);
    h_cut_node(h, 3, false);
    h_run(h, 3);
    assert_int_equal(h_leader(h), 3);
    assert_int_equal(h_status(h, 1).leader, 3);
    /* a transfer to a node that never answers times out and proposals resume */
    h_cut_node(h, 1, true);
    assert_int_equal(raft_transfer_leader(h->n[3].r, 1), 0);
    for (int i = 0; i < 12; i++) {
        h_tick(h, 3);
        h_tick(h, 2);
        h_deliver(h);
    }
    assert_int_equal(h_status(h, 3).lead_transferee, 0);
    assert_true(raft_propose(h->n[3].r, "q", 1, NULL) > 0);
    /* once silent for an election timeout it is refused outright: proposals never stop */
    assert_int_equal(raft_transfer_leader(h->n[3].r, 1), SHOAL_EUNAVAIL);
    assert_int_equal(h_status(h, 3).lead_transferee, 0);
    assert_true(raft_propose(h->n[3].r, "q", 1, NULL) > 0);
    free_cluster(h);
}

/* ReadIndex: the leader answers only after a heartbeat round confirms it; a follower's
 * read is forwarded and answered with the leader's commit index. */
static void test_read_index(void **state)
{
    harness_t *h = new_cluster(3, 3, NULL);
    h_run(h, 2);
    h_cut_node(h, 1, true);
    assert_int_equal(raft_read_index(h->n[1].r, "r1", 2), 0);
    h_deliver(h);
    assert_int_equal(h->n[1].n_reads, 0); /* no confirmation without the others */
    h_cut_node(h, 1, false);
    assert_int_equal(raft_read_index(h->n[1].r, "r2", 2), 0);
    h_deliver(h);
    assert_int_equal(h->n[1].n_reads, 2); /* r1 rides on r2's round */
    assert_int_equal(h->n[1].reads[1].index, h_status(h, 1).commit);
    assert_memory_equal(h->n[1].reads[1].ctx, "r2", 2);
    assert_int_equal(raft_read_index(h->n[2].r, "f", 1), 0);
    h_deliver(h);
    assert_int_equal(h->n[2].n_reads, 1);
    assert_int_equal(h->n[2].reads[0].index, h_status(h, 1).commit);
    /* no leader known: refused */
    harness_t *g = malloc(sizeof(*g));
    h_init(g, 3, 3, NULL);
    assert_int_equal(raft_read_index(g->n[2].r, "x", 1), SHOAL_ENOTLEADER);
    free_cluster(g);
    free_cluster(h);
}

/* A new leader serves reads only after committing an entry of its term. */
static void test_read_waits_for_own_term_commit(void **state)
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, 3, 3, NULL);
    h->n[2].up = h->n[3].up = true;
    h_cut_node(h, 2, true);
    h_cut_node(h, 3, true);
    raft_status_t st = h_status(h, 1);
    raft_msg_t tn = {.type = RAFT_MSG_TIMEOUT_NOW, .group = 7, .from = 2, .to = 1, .term = st.term};
    raft_step(h->n[1].r, &tn);
    raft_msg_t grant = {
        .type = RAFT_MSG_VOTE_RESP, .group = 7, .from = 2, .to = 1, .term = st.term + 1};
    raft_step(h->n[1].r, &grant);
    assert_int_equal(h_status(h, 1).role, RAFT_LEADER);
    assert_int_equal(raft_read_index(h->n[1].r, "w", 1), 0);
    h_deliver(h);
    assert_int_equal(h->n[1].n_reads, 0);
    h_cut_node(h, 2, false);
    h_cut_node(h, 3, false);
    h_run(h, 2);
    assert_int_equal(h->n[1].n_reads, 1);
    assert_int_equal(raft_term_at(h->n[1].r, h->n[1].reads[0].index), h_status(h, 1).term);
    free_cluster(h);
}

static void with_lease(raft_config_t *c)
{
    c->lease_read = true;
    c->lease_margin = 2;
}

/* Lease reads: answered at once while the lease from the last acknowledged round runs,
 * by heartbeat round otherwise. */
static void test_lease_read(void **state)
{
    harness_t *h = new_cluster(3, 3, with_lease);
    h_run(h, 3);
    h_cut_node(h, 1, true);
    assert_int_equal(raft_read_index(h->n[1].r, "l", 1), 0);
    h_ready(h, 1);
    assert_int_equal(h->n[1].n_reads, 1); /* without any message */
    for (int i = 0; i < 10; i++)
        h_tick(h, 1);
    h_deliver(h);
    assert_int_equal(raft_read_index(h->n[1].r, "m", 1), 0);
    h_ready(h, 1);
    assert_int_equal(h->n[1].n_reads, 1); /* lease over: waits for a round */
    free_cluster(h);
}

/* raft_lease_drop ends the lease at once, and acknowledgements of rounds sent before the
 * drop (counted on the stopped clock) never bring it back; a round sent after it does. */
static void test_lease_drop(void **state)
{
    harness_t *h = new_cluster(3, 3, with_lease);
    h_run(h, 3);
    h_tick(h, 1);
    h_ready(h, 1); /* a heartbeat round is on its way */
    raft_lease_drop(h->n[1].r);
    h_deliver(h); /* its acknowledgements arrive after the drop */
    h_cut_node(h, 1, true);
    assert_int_equal(raft_read_index(h->n[1].r, "d", 1), 0);
    h_ready(h, 1);
    assert_int_equal(h->n[1].n_reads, 0); /* no lease: waits for a round */
    h_cut_node(h, 1, false);
    h_run(h, 2);
    assert_int_equal(h->n[1].n_reads, 1);
    h_cut_node(h, 1, true);
    assert_int_equal(raft_read_index(h->n[1].r, "e", 1), 0);
    h_ready(h, 1);
    assert_int_equal(h->n[1].n_reads, 2); /* a new lease from a round after the drop */
    free_cluster(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_entries),
        cmocka_unit_test(test_replicate_and_apply),
        cmocka_unit_test(test_misuse_errors),
        cmocka_unit_test(test_prevote_keeps_term),
        cmocka_unit_test(test_without_prevote_term_grows),
        cmocka_unit_test(test_check_quorum),
        cmocka_unit_test(test_restarted_node_waits_out_lease),
        cmocka_unit_test(test_pipelining_window),
        cmocka_unit_test(test_probe_not_resent_per_heartbeat),
        cmocka_unit_test(test_heartbeat_commit_min),
        cmocka_unit_test(test_commit_rides_on_appends),
        cmocka_unit_test(test_restart_from_disk),
        cmocka_unit_test(test_snapshot_install),
        cmocka_unit_test(test_snapshot_trailing_entries),
        cmocka_unit_test(test_log_bytes_accounting),
        cmocka_unit_test(test_snapshot_trailing_bytes),
        cmocka_unit_test(test_membership_learner_promote),
        cmocka_unit_test(test_change_that_loses_quorum),
        cmocka_unit_test(test_promote_needs_catch_up),
        cmocka_unit_test(test_remove_leader),
        cmocka_unit_test(test_transfer_leader),
        cmocka_unit_test(test_read_index),
        cmocka_unit_test(test_read_waits_for_own_term_commit),
        cmocka_unit_test(test_lease_read),
        cmocka_unit_test(test_lease_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
