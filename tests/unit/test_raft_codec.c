/* test_raft_codec.c - raft_msg_t survives the trip through protobuf (pack and unpack on the
 * wire) unchanged for every message shape, heartbeats survive coalescing into
 * GroupHeartbeat, and malformed wire messages are refused with SHOAL_EINVAL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/raft/raft_codec.h"
#include "tests/sim/harness.h"

static void assert_msg_equal(const raft_msg_t *a, const raft_msg_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->group, b->group);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->log_term, b->log_term);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->commit, b->commit);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->reject_hint, b->reject_hint);
    assert_int_equal(a->conflict_term, b->conflict_term);
    assert_int_equal(a->context_len, b->context_len);
    if (a->context_len)
        assert_memory_equal(a->context, b->context, a->context_len);
    assert_int_equal(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        if (a->entries[i].len)
            assert_memory_equal(a->entries[i].data, b->entries[i].data, a->entries[i].len);
    }
    assert_int_equal(a->has_snapshot, b->has_snapshot);
    if (!a->has_snapshot)
        return;
    const raft_snapshot_chunk_t *x = &a->snapshot, *y = &b->snapshot;
    assert_int_equal(x->meta.index, y->meta.index);
    assert_int_equal(x->meta.term, y->meta.term);
    assert_memory_equal(&x->meta.conf, &y->meta.conf, sizeof(x->meta.conf));
    assert_int_equal(x->offset, y->offset);
    assert_int_equal(x->len, y->len);
    assert_memory_equal(x->data, y->data, x->len);
    assert_int_equal(x->last, y->last);
    assert_int_equal(x->total_size, y->total_size);
    assert_int_equal(x->checksum, y->checksum);
}

/* to proto, pack, unpack, from proto */
static void round_trip(const raft_msg_t *m)
{
    Shoal__RaftMessage pm;
    assert_int_equal(raft_msg_to_proto(m, &pm), 0);
    size_t len = shoal__raft_message__get_packed_size(&pm);
    uint8_t *buf = malloc(len + 1);
    shoal__raft_message__pack(&pm, buf);
    raft_msg_proto_release(&pm);
    Shoal__RaftMessage *up = shoal__raft_message__unpack(NULL, len, buf);
    assert_non_null(up);
    raft_msg_t back;
    assert_int_equal(raft_msg_from_proto(up, &back), 0);
    assert_msg_equal(m, &back);
    raft_msg_free_contents(&back);
    shoal__raft_message__free_unpacked(up, NULL);
    free(buf);
}

static void test_round_trip_every_shape(void **state)
{
    raft_entry_t ents[3] = {
        {.term = 3, .index = 10, .type = RAFT_ENTRY_NORMAL, .data = (uint8_t *)"abc", .len = 3},
        {.term = 3, .index = 11, .type = RAFT_ENTRY_NOOP},
        {.term = 4,
         .index = 12,
         .type = RAFT_ENTRY_CONF_CHANGE,
         .data = (uint8_t *)"\x01\x02\0\0\0\0\0\0\0",
         .len = 9}};
    raft_msg_t m = {.type = RAFT_MSG_APPEND,
                    .group = 0xFFFFFFFF,
                    .from = 1,
                    .to = 2,
                    .term = 4,
                    .log_term = 3,
                    .index = 9,
                    .entries = ents,
                    .n_entries = 3,
                    .commit = 8};
    round_trip(&m);
    raft_msg_t r = {.type = RAFT_MSG_APPEND_RESP,
                    .group = 1,
                    .from = 2,
                    .to = 1,
                    .term = 4,
                    .index = 9,
                    .reject = true,
                    .reject_hint = 5,
                    .conflict_term = 2};
    round_trip(&r);
    raft_msg_t rd = {.type = RAFT_MSG_READ_INDEX,
                     .group = 1,
                     .from = 2,
                     .to = 1,
                     .term = 4,
                     .context = (uint8_t *)"ctx-1",
                     .context_len = 5};
    round_trip(&rd);
    raft_msg_t s = {
        .type = RAFT_MSG_SNAPSHOT, .group = 1, .from = 1, .to = 3, .term = 4, .has_snapshot = true};
    s.snapshot.meta.index = 100;
    s.snapshot.meta.term = 3;
    s.snapshot.meta.conf.n_voters = 3;
    s.snapshot.meta.conf.voters[0] = 1;
    s.snapshot.meta.conf.voters[1] = 2;
    s.snapshot.meta.conf.voters[2] = 3;
    s.snapshot.meta.conf.n_learners = 1;
    s.snapshot.meta.conf.learners[0] = 4;
    s.snapshot.offset = 4096;
    s.snapshot.data = (uint8_t *)"chunk";
    s.snapshot.len = 5;
    s.snapshot.last = true;
    s.snapshot.total_size = 4101;
    s.snapshot.checksum = 0x1234567890ABCDEFull;
    round_trip(&s);
    for (int t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
        if (t == RAFT_MSG_SNAPSHOT)
            continue;
        raft_msg_t bare = {.type = (raft_msg_type_t)t, .group = 2, .from = 3, .to = 4, .term = 5};
        round_trip(&bare);
    }
}

static void test_heartbeat_coalescing(void **state)
{
    uint8_t ctx[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT,
                     .group = 42,
                     .from = 1,
                     .to = 2,
                     .term = 7,
                     .commit = 99,
                     .context = ctx,
                     .context_len = 8};
    assert_true(raft_msg_is_heartbeat(&hb));
    Shoal__GroupHeartbeat g;
    raft_msg_to_group_heartbeat(&hb, &g);
    raft_msg_t back;
    assert_int_equal(raft_msg_from_group_heartbeat(&g, false, 1, 2, &back), 0);
    assert_msg_equal(&hb, &back);
    raft_msg_free_contents(&back);
    raft_msg_t resp = {.type = RAFT_MSG_HEARTBEAT_RESP,
                       .group = 42,
                       .from = 2,
                       .to = 1,
                       .term = 7,
                       .index = 1234, /* the follower's last index */
                       .context = ctx,
                       .context_len = 8};
    raft_msg_to_group_heartbeat(&resp, &g);
    assert_int_equal(raft_msg_from_group_heartbeat(&g, true, 2, 1, &back), 0);
    assert_msg_equal(&resp, &back);
    raft_msg_free_contents(&back);
    raft_msg_t app = {.type = RAFT_MSG_APPEND};
    assert_false(raft_msg_is_heartbeat(&app));
}

static void test_malformed_refused(void **state)
{
    raft_msg_t out;
    Shoal__RaftMessage pm;
    shoal__raft_message__init(&pm);
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL); /* MSG_NONE */
    pm.type = 99;
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL);
    pm.type = SHOAL__RAFT_MESSAGE_TYPE__MSG_SNAPSHOT; /* no chunk */
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL);
    Shoal__SnapshotChunk chunk;
    shoal__snapshot_chunk__init(&chunk);
    pm.snapshot = &chunk; /* chunk without meta */
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL);
    Shoal__SnapshotMeta meta;
    shoal__snapshot_meta__init(&meta);
    Shoal__ConfState conf;
    shoal__conf_state__init(&conf);
    uint64_t many[RAFT_MAX_NODES + 1];
    for (int i = 0; i <= RAFT_MAX_NODES; i++)
        many[i] = (uint64_t)i + 1;
    conf.voters = many;
    conf.n_voters = RAFT_MAX_NODES + 1;
    meta.conf = &conf;
    chunk.meta = &meta;
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL); /* too many voters */
    conf.n_voters = 3;
    assert_int_equal(raft_msg_from_proto(&pm, &out), 0);
    raft_msg_free_contents(&out);
    pm.type = SHOAL__RAFT_MESSAGE_TYPE__MSG_APPEND; /* a chunk on a non-snapshot message */
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL);
    pm.snapshot = NULL;
    Shoal__Entry e;
    shoal__entry__init(&e);
    e.type = 7;
    Shoal__Entry *ep = &e;
    pm.entries = &ep;
    pm.n_entries = 1;
    assert_int_equal(raft_msg_from_proto(&pm, &out), SHOAL_EINVAL); /* bad entry type */
    /* garbage bytes never get this far: protobuf-c refuses them */
    uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_null(shoal__raft_message__unpack(NULL, sizeof(junk), junk));
}

/* One message through the wire as the node sends it: heartbeats as GroupHeartbeat (only
 * group, term, commit, context, reject survive), everything else as RaftMessage. */
static void over_the_wire(const raft_msg_t *m, raft_msg_t *out)
{
    uint8_t buf[1 << 16];
    if (raft_msg_is_heartbeat(m)) {
        Shoal__GroupHeartbeat g;
        raft_msg_to_group_heartbeat(m, &g);
        size_t len = shoal__group_heartbeat__pack(&g, buf);
        Shoal__GroupHeartbeat *up = shoal__group_heartbeat__unpack(NULL, len, buf);
        assert_non_null(up);
        assert_int_equal(raft_msg_from_group_heartbeat(up, m->type == RAFT_MSG_HEARTBEAT_RESP,
                                                       m->from, m->to, out),
                         0);
        shoal__group_heartbeat__free_unpacked(up, NULL);
        return;
    }
    Shoal__RaftMessage pm;
    assert_int_equal(raft_msg_to_proto(m, &pm), 0);
    size_t len = shoal__raft_message__pack(&pm, buf);
    raft_msg_proto_release(&pm);
    Shoal__RaftMessage *up = shoal__raft_message__unpack(NULL, len, buf);
    assert_non_null(up);
    assert_int_equal(raft_msg_from_proto(up, out), 0);
    shoal__raft_message__free_unpacked(up, NULL);
}

static void deliver_via_wire(harness_t *h)
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
            raft_msg_t w;
            over_the_wire(&batch[i], &w);
            if (h->n[w.to].up && !h->cut[w.from][w.to])
                assert_int_equal(raft_step(h->n[w.to].r, &w), 0);
            raft_msg_free_contents(&w);
            raft_msg_free_contents(&batch[i]);
        }
        free(batch);
    }
}

/* A group whose messages all cross the wire, heartbeats coalesced to GroupHeartbeat: it
 * elects, replicates, brings a lagging follower's commit forward by heartbeats, confirms
 * ReadIndex rounds and streams a snapshot. */
static void test_group_over_the_wire(void **state)
{
    harness_t *h = malloc(sizeof(*h));
    h_init(h, 3, 3, NULL);
    raft_msg_t tn = {.type = RAFT_MSG_TIMEOUT_NOW, .group = 7, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_step(h->n[1].r, &tn), 0);
    deliver_via_wire(h);
    assert_int_equal(h_status(h, 1).role, RAFT_LEADER);
    h_cut_node(h, 3, true);
    for (int i = 0; i < 5; i++)
        assert_true(raft_propose(h->n[1].r, "w", 1, NULL) > 0);
    deliver_via_wire(h);
    h_node_t *l = &h->n[1];
    memcpy(l->snap_data, "snapshot-bytes", 14);
    l->snap_len = 14;
    assert_int_equal(raft_snapshot_taken(l->r, l->applied_index, &l->snap), 0);
    h_cut_node(h, 3, false);
    for (int t = 0; t < 30; t++) {
        for (int i = 1; i <= 3; i++)
            h_tick(h, i);
        deliver_via_wire(h);
    }
    assert_int_equal(h_status(h, 3).commit, h_status(h, 1).commit);
    assert_int_equal(h->n[3].snap.index, l->snap.index);
    assert_int_equal(raft_read_index(h->n[1].r, "rd", 2), 0);
    deliver_via_wire(h);
    assert_int_equal(h->n[1].n_reads, 1);
    assert_int_equal(h->n[1].reads[0].index, h_status(h, 1).commit);
    h_destroy(h);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_shape),
        cmocka_unit_test(test_heartbeat_coalescing),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_group_over_the_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
