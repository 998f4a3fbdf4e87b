/* test_node_transport.c - the node's peer transport (actors/transport.c): one loop turn's
 * messages to a peer leave as one Frame{peer} that the wire codec accepts, heartbeats of
 * many groups are coalesced into GroupHeartbeat lists and expanded back into per-group
 * Raft messages, entries and snapshot chunks survive the trip, snapshot chunks are paced
 * by the rate limit, and configurations round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "actors/transport.h"
#include "proto/codec.h"

static node_config_t cfg;
static zsock_t *peer; /* plays node 1's ROUTER */

static int setup(void **state)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 0;
    cfg.n_nodes = 2;
    cfg.snapshot_rate_kbps = 64; /* 64 KiB/s: a 256 KiB chunk waits */
    cfg.nodes[0].id = 0;
    strcpy(cfg.nodes[0].endpoint, "inproc://node-0");
    cfg.nodes[1].id = 1;
    strcpy(cfg.nodes[1].endpoint, "inproc://node-1");
    peer = zsock_new_router("inproc://node-1");
    return peer ? 0 : -1;
}

static int teardown(void **state)
{
    zsock_destroy(&peer);
    return 0;
}

/* Receives one frame on the peer ROUTER (1 s at most). */
static Shoal__Frame *recv_frame(void)
{
    zpoller_t *p = zpoller_new(peer, NULL);
    void *s = zpoller_wait(p, 1000);
    zpoller_destroy(&p);
    if (!s)
        return NULL;
    zmsg_t *m = zmsg_recv(peer);
    zframe_t *id = zmsg_pop(m), *body = zmsg_pop(m);
    Shoal__Frame *f = NULL;
    char err[128];
    int rc = shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err);
    assert_int_equal(rc, 0);
    zframe_destroy(&id);
    zframe_destroy(&body);
    zmsg_destroy(&m);
    return f;
}

typedef struct {
    raft_msg_t got[16];
    uint8_t data[16][64];
    int n;
} sink_t;

static void collect(void *arg, raft_msg_t *m)
{
    sink_t *s = arg;
    if (s->n == 16)
        return;
    s->got[s->n] = *m;
    /* keep the first entry's bytes: the message only borrows them during the call */
    if (m->n_entries && m->entries[0].len <= 64)
        memcpy(s->data[s->n], m->entries[0].data, m->entries[0].len);
    s->got[s->n].entries = NULL;
    s->n++;
}

static void test_batch_and_coalesce(void **state)
{
    transport_t *t = transport_new(&cfg);
    raft_entry_t e = {
        .term = 3, .index = 10, .type = RAFT_ENTRY_NORMAL, .data = (uint8_t *)"payload", .len = 7};
    raft_msg_t app = {.type = RAFT_MSG_APPEND,
                      .group = 5,
                      .from = 1,
                      .to = 2,
                      .term = 3,
                      .log_term = 3,
                      .index = 9,
                      .commit = 8,
                      .entries = &e,
                      .n_entries = 1};
    transport_send(t, &app);
    for (uint64_t g = 0; g < 3; g++) {
        raft_msg_t hb = {
            .type = RAFT_MSG_HEARTBEAT, .group = g, .from = 1, .to = 2, .term = 3, .commit = 7};
        transport_send(t, &hb);
    }
    raft_msg_t resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .group = 9, .from = 1, .to = 2, .term = 4};
    transport_send(t, &resp);
    transport_flush(t);
    Shoal__Frame *f = recv_frame();
    assert_non_null(f);
    assert_int_equal(f->body_case, SHOAL__FRAME__BODY_PEER);
    assert_int_equal(f->peer->from_node, 0);
    assert_int_equal(f->peer->to_node, 1);
    assert_int_equal(f->peer->n_msgs, 1);       /* the append */
    assert_int_equal(f->peer->n_heartbeats, 3); /* three groups, one envelope */
    assert_int_equal(f->peer->n_heartbeat_resps, 1);
    sink_t s = {0};
    transport_receive(f->peer, collect, &s);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.got[0].type, RAFT_MSG_APPEND);
    assert_int_equal(s.got[0].group, 5);
    assert_int_equal(s.got[0].n_entries, 1);
    assert_memory_equal(s.data[0], "payload", 7);
    assert_int_equal(s.got[1].type, RAFT_MSG_HEARTBEAT);
    assert_int_equal(s.got[1].from, 1); /* node 0 is Raft id 1 */
    assert_int_equal(s.got[1].to, 2);
    assert_int_equal(s.got[3].group, 2);
    assert_int_equal(s.got[3].commit, 7);
    assert_int_equal(s.got[4].type, RAFT_MSG_HEARTBEAT_RESP);
    assert_int_equal(s.got[4].term, 4);
    shoal_frame_free(&f);
    transport_flush(t); /* nothing queued: nothing sent */
    assert_null(recv_frame());
    transport_destroy(&t);
    assert_null(t);
}

/* 80 appends of 1 MiB in one loop turn (many clients' big values): they leave as several
 * envelopes, each one a frame the peer's codec accepts (under SHOAL_MAX_FRAME), none
 * lost. As one envelope (80 MiB) the peer dropped them all, heartbeats included. */
static void test_big_turn_split(void **state)
{
    transport_t *t = transport_new(&cfg);
    static uint8_t value[1 << 20];
    memset(value, 5, sizeof value);
    raft_entry_t e = {.term = 3, .type = RAFT_ENTRY_NORMAL, .data = value, .len = sizeof value};
    for (int i = 0; i < 80; i++) {
        e.index = 10 + (uint64_t)i;
        raft_msg_t app = {.type = RAFT_MSG_APPEND,
                          .group = 5,
                          .from = 1,
                          .to = 2,
                          .term = 3,
                          .log_term = 3,
                          .index = e.index - 1,
                          .entries = &e,
                          .n_entries = 1};
        transport_send(t, &app);
    }
    raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT, .group = 1, .from = 1, .to = 2, .term = 3};
    transport_send(t, &hb);
    transport_flush(t);
    size_t appends = 0, heartbeats = 0, envelopes = 0;
    Shoal__Frame *f;
    while ((f = recv_frame())) { /* recv_frame asserts each one decodes */
        envelopes++;
        for (size_t i = 0; i < f->peer->n_msgs; i++)
            appends += f->peer->msgs[i]->n_entries;
        heartbeats += f->peer->n_heartbeats;
        shoal_frame_free(&f);
    }
    assert_int_equal(appends, 80);
    assert_int_equal(heartbeats, 1);
    assert_true(envelopes >= 80 * (sizeof value) / SHOAL_MAX_FRAME + 1);
    transport_destroy(&t);
}

/* Node 1 removed and added again at another endpoint: the transport follows the map, or
 * every message would go to the old address for ever. */
static void test_peer_readdressed(void **state)
{
    transport_t *t = transport_new(&cfg);
    zsock_t *moved = zsock_new_router("inproc://node-1-moved");
    assert_non_null(moved);
    raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT, .group = 1, .from = 1, .to = 2, .term = 3};
    assert_int_equal(transport_add_peer(t, 1, "inproc://node-1"), 0); /* known: nothing */
    transport_send(t, &hb);
    transport_flush(t);
    Shoal__Frame *f = recv_frame();
    assert_non_null(f);
    shoal_frame_free(&f);
    assert_int_equal(transport_add_peer(t, 1, "inproc://node-1-moved"), 0);
    assert_true(transport_has_peer(t, 1));
    transport_send(t, &hb);
    transport_flush(t);
    assert_null(recv_frame()); /* not at the old address... */
    zpoller_t *p = zpoller_new(moved, NULL);
    assert_ptr_equal(zpoller_wait(p, 1000), moved); /* ...at the new one */
    zpoller_destroy(&p);
    zmsg_t *m = zmsg_recv(moved);
    assert_int_equal(zmsg_size(m), 2);
    zmsg_destroy(&m);
    transport_destroy(&t);
    zsock_destroy(&moved);
}

static void test_snapshot_paced(void **state)
{
    transport_t *t = transport_new(&cfg);
    static uint8_t chunk[256 << 10];
    memset(chunk, 7, sizeof chunk);
    for (int i = 0; i < 3; i++) {
        raft_msg_t m = {.type = RAFT_MSG_SNAPSHOT,
                        .group = 1,
                        .from = 1,
                        .to = 2,
                        .term = 2,
                        .has_snapshot = true};
        m.snapshot.meta.index = 100;
        m.snapshot.meta.conf.voters[0] = 1;
        m.snapshot.meta.conf.n_voters = 1;
        m.snapshot.offset = (uint64_t)i * sizeof chunk;
        m.snapshot.data = chunk;
        m.snapshot.len = sizeof chunk;
        transport_send(t, &m);
    }
    zclock_sleep(20);
    transport_flush(t); /* a little credit: the first chunk goes, the rest wait */
    Shoal__Frame *f = recv_frame();
    assert_non_null(f);
    assert_int_equal(f->peer->n_msgs, 1);
    assert_non_null(f->peer->msgs[0]->snapshot);
    assert_int_equal(f->peer->msgs[0]->snapshot->data.len, sizeof chunk);
    assert_int_equal(f->peer->msgs[0]->snapshot->meta->conf->n_voters, 1);
    shoal_frame_free(&f);
    assert_true(transport_snapshots_waiting(t));
    transport_flush(t);
    assert_null(recv_frame()); /* 256 KiB at 64 KiB/s: nothing more for a while */
    transport_destroy(&t);
}

static void test_conf_roundtrip(void **state)
{
    raft_conf_state_t c = {0}, d;
    c.voters[0] = 1;
    c.voters[1] = 3;
    c.n_voters = 2;
    c.learners[0] = 9;
    c.n_learners = 1;
    size_t len;
    uint8_t *b = transport_conf_encode(&c, &len);
    assert_non_null(b);
    assert_int_equal(transport_conf_decode(b, len, &d), 0);
    assert_int_equal(d.n_voters, 2);
    assert_int_equal(d.voters[1], 3);
    assert_int_equal(d.learners[0], 9);
    free(b);
    assert_int_not_equal(transport_conf_decode((const uint8_t *)"\xff\xff", 2, &d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_and_coalesce),
        cmocka_unit_test(test_big_turn_split),
        cmocka_unit_test(test_peer_readdressed),
        cmocka_unit_test(test_snapshot_paced),
        cmocka_unit_test(test_conf_roundtrip),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    zsys_shutdown();
    return rc;
}
