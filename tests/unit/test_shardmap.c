/* test_shardmap.c - the shard map as a value (actors/shardmap.c): the bootstrap map, its
 * decoding, and every edit the metadata leader makes, accepted or refused (a refusal names
 * the reason and leaves the map as it was). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "actors/shardmap.h"
#include "engine/ring.h"
#include "tests/unit/shardmap_fixture.h"

static uint8_t *packed(const Shoal__ShardMap *m, size_t *len)
{
    *len = shoal__shard_map__get_packed_size(m);
    uint8_t *b = malloc(*len + 1);
    shoal__shard_map__pack(m, b);
    return b;
}

static bool same_map(const Shoal__ShardMap *a, const uint8_t *b, size_t blen)
{
    size_t len;
    uint8_t *p = packed(a, &len);
    bool same = len == blen && memcmp(p, b, len) == 0;
    free(p);
    return same;
}

static const uint64_t META[3] = {0, 1, 2};

static void test_bootstrap_and_decode(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    assert_int_equal(m->version, 1);
    assert_int_equal(m->n_shards, 4);
    assert_int_equal(m->n_nodes, 4);
    const Shoal__ShardInfo *s3 = shardmap_shard(m, 3);
    assert_int_equal(s3->n_replicas, 3);
    assert_true(shardmap_has(s3->replicas, 3, 3) && shardmap_has(s3->replicas, 3, 0) &&
                shardmap_has(s3->replicas, 3, 1));
    assert_string_equal(shardmap_node(m, 2)->endpoint, "tcp://127.0.0.1:7104");
    assert_null(shardmap_shard(m, 4));
    assert_null(shardmap_node(m, 9));
    size_t len;
    uint8_t *b = packed(m, &len);
    Shoal__ShardMap *d = shardmap_decode(b, len);
    assert_non_null(d);
    assert_true(same_map(d, b, len));
    uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    assert_null(shardmap_decode(junk, sizeof junk));
    Shoal__ShardMap empty = SHOAL__SHARD_MAP__INIT; /* version 0: nobody wrote it */
    size_t elen;
    uint8_t *e = packed(&empty, &elen);
    assert_null(shardmap_decode(e, elen));
    free(e);
    free(b);
    shardmap_free(&d);
    shardmap_free(&m);
    assert_null(m);
}

/* shardmap_move answers want (-1 refused, 1 busy: retry later) with why in its error and
 * leaves the map as it was. */
static void expect_move_rc(Shoal__ShardMap *m, uint32_t shard, uint64_t from, uint64_t to, int want,
                           const char *why)
{
    size_t len;
    uint8_t *before = packed(m, &len);
    Shoal__MoveReplicaRequest mv = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    mv.shard = shard;
    mv.from_node = from;
    mv.to_node = to;
    char err[256] = "";
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), want);
    if (!strstr(err, why))
        fail_msg("move %u %" PRIu64 "->%" PRIu64 ": error \"%s\" does not say \"%s\"", shard, from,
                 to, err, why);
    assert_true(same_map(m, before, len));
    free(before);
}

static void expect_move_refused(Shoal__ShardMap *m, uint32_t shard, uint64_t from, uint64_t to,
                                const char *why)
{
    expect_move_rc(m, shard, from, to, -1, why);
}

/* A move that must wait (busy, not bad input). */
static void expect_move_busy(Shoal__ShardMap *m, uint32_t shard, uint64_t from, uint64_t to,
                             const char *why)
{
    expect_move_rc(m, shard, from, to, 1, why);
}

static void test_move(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    Shoal__MoveReplicaRequest mv = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    mv.shard = 0;
    mv.from_node = 1;
    mv.to_node = 3;
    char err[256] = "";
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), 0);
    const Shoal__ShardInfo *s0 = shardmap_shard(m, 0);
    assert_int_equal(s0->n_replicas, 3);
    assert_true(shardmap_has(s0->replicas, 3, 3));
    assert_false(shardmap_has(s0->replicas, 3, 1));
    assert_int_equal(s0->n_leaving, 1);
    assert_int_equal(s0->leaving[0], 1);

    expect_move_busy(m, 0, 0, 1, "already moving");
    expect_move_refused(m, 7, 0, 3, "no shard 7");
    expect_move_refused(m, 4294967295u, 0, 3, "metadata group"); /* not recorded yet */
    expect_move_refused(m, 1, 2, 2, "same node");
    expect_move_refused(m, 1, 0, 2, "holds no replica");
    expect_move_refused(m, 1, 1, 2, "already holds");
    expect_move_refused(m, 1, 1, 9, "not in the shard map");

    /* cancel: FROM back in TO's place, TO leaving (the same move the other way); a second
     * cancel restores the move; a shard without an open move has nothing to cancel */
    char cerr[256] = "";
    assert_int_equal(shardmap_cancel_move(m, 1, cerr, sizeof cerr), -1);
    assert_non_null(strstr(cerr, "no move in progress"));
    assert_int_equal(shardmap_cancel_move(m, 0, cerr, sizeof cerr), 0);
    s0 = shardmap_shard(m, 0);
    assert_true(shardmap_has(s0->replicas, 3, 1));
    assert_false(shardmap_has(s0->replicas, 3, 3));
    assert_int_equal(s0->n_leaving, 1);
    assert_int_equal(s0->leaving[0], 3);
    assert_int_equal(s0->arriving[0], 1);
    uint64_t undone[] = {0, 1, 2};
    Shoal__ShardMap *c2 = shardmap_copy(m); /* closing the cancelled move retires TO */
    assert_true(shardmap_close_move(c2, 0, undone, 3));
    assert_true(shardmap_has(shardmap_shard(c2, 0)->retired, shardmap_shard(c2, 0)->n_retired, 3));
    assert_int_equal(shardmap_shard(c2, 0)->n_arriving, 0);
    assert_int_equal(shardmap_cancel_move(c2, 0, cerr, sizeof cerr), -1);
    shardmap_free(&c2);
    assert_int_equal(shardmap_cancel_move(m, 0, cerr, sizeof cerr), 0);
    s0 = shardmap_shard(m, 0);
    assert_true(shardmap_has(s0->replicas, 3, 3));
    assert_int_equal(s0->leaving[0], 1);
    assert_int_equal(s0->arriving[0], 3);

    /* the move closes only on exactly the new placement */
    uint64_t wrong[] = {0, 1, 2}, partial[] = {0, 2}, right[] = {3, 2, 0};
    assert_false(shardmap_close_move(m, 0, wrong, 3));
    assert_false(shardmap_close_move(m, 0, partial, 2));
    assert_false(shardmap_close_move(m, 1, right, 3)); /* shard 1 has no open move */
    assert_true(shardmap_close_move(m, 0, right, 3));
    s0 = shardmap_shard(m, 0);
    assert_int_equal(s0->n_leaving, 0);
    assert_int_equal(s0->n_retired, 1);
    assert_int_equal(s0->retired[0], 1);
    assert_false(shardmap_close_move(m, 0, right, 3)); /* closed once */
    /* back onto the node that deleted it: allowed, and it stays retired (its new replica
     * starts empty, not from the bootstrap configuration) */
    Shoal__MoveReplicaRequest back = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    back.shard = 0;
    back.from_node = 3;
    back.to_node = 1;
    char berr[256] = "";
    assert_int_equal(shardmap_move(m, &back, berr, sizeof berr), 0);
    s0 = shardmap_shard(m, 0);
    assert_true(shardmap_has(s0->replicas, 3, 1));
    assert_int_equal(s0->leaving[0], 3);
    uint64_t back_voters[] = {1, 2, 0};
    assert_true(shardmap_close_move(m, 0, back_voters, 3));
    s0 = shardmap_shard(m, 0);
    assert_int_equal(s0->n_retired, 2); /* 1 stays, 3 joins */
    assert_true(shardmap_has(s0->retired, 2, 1));
    assert_true(shardmap_has(s0->retired, 2, 3));

    /* edits survive a round trip through the stored bytes */
    size_t len;
    uint8_t *b = packed(m, &len);
    Shoal__ShardMap *d = shardmap_decode(b, len);
    assert_non_null(d);
    assert_int_equal(shardmap_shard(d, 0)->retired[0], 1);
    shardmap_free(&d);
    free(b);
    shardmap_free(&m);
}

static void add(Shoal__ShardMap *m, uint64_t id, const char *ep, const char *pub, int want,
                const char *why)
{
    Shoal__AddNodeRequest an = SHOAL__ADD_NODE_REQUEST__INIT;
    Shoal__NodeInfo ni = SHOAL__NODE_INFO__INIT;
    ni.id = id;
    ni.endpoint = (char *)ep;
    ni.pub_endpoint = (char *)pub;
    an.node = &ni;
    char err[256] = "";
    size_t n = m->n_nodes;
    assert_int_equal(shardmap_add_node(m, &an, err, sizeof err), want);
    if (want == 0) {
        assert_int_equal(m->n_nodes, n + 1);
        assert_string_equal(shardmap_node(m, id)->endpoint, ep);
    } else {
        assert_int_equal(m->n_nodes, n);
        if (!strstr(err, why))
            fail_msg("add-node %" PRIu64 ": error \"%s\" does not say \"%s\"", id, err, why);
    }
}

static void test_add_node(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    add(m, 4, "tcp://127.0.0.1:7108", "tcp://127.0.0.1:7109", 0, NULL);
    add(m, 4, "tcp://127.0.0.1:7110", "tcp://127.0.0.1:7111", -1, "already in the shard map");
    add(m, 5, "tcp://127.0.0.1:7108", "tcp://127.0.0.1:7111", -1, "already uses");
    add(m, 5, "http://x", "tcp://127.0.0.1:7111", -1, "tcp://");
    add(m, 5, "tcp://127.0.0.1:7110", "", -1, "tcp://");
    /* endpoints ZeroMQ would take (a port past 65535 wraps) or refuse only when connecting */
    const char *bad[] = {"tcp://127.0.0.1:99999", "tcp://127.0.0.1:0",     "tcp://127.0.0.1:abc",
                         "tcp://:7110",           "tcp://127.0.0.1:-5",    "tcp://127.0.0.1:",
                         "tcp://127.0.0.1:7110x", "tcp://127.0.0.1:007110"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        add(m, 5, bad[i], "tcp://127.0.0.1:7111", -1, "port 1-65535");
        add(m, 5, "tcp://127.0.0.1:7110", bad[i], -1, "port 1-65535");
    }
    add(m, 5, "tcp://127.0.0.1:7110", "tcp://127.0.0.1:7110", -1, "must differ");
    add(m, 5, "tcp://127.0.0.1:65535", "tcp://localhost:1", 0, NULL);
    add(m, 64, "tcp://127.0.0.1:7110", "tcp://127.0.0.1:7111", -1, "out of range");
    Shoal__AddNodeRequest none = SHOAL__ADD_NODE_REQUEST__INIT; /* no NodeInfo at all */
    char err[256];
    assert_int_equal(shardmap_add_node(m, &none, err, sizeof err), -1);
    shardmap_free(&m);
}

/* The metadata group: the bootstrap nodes until a move records them in ShardMap.meta, then
 * moved, closed and refused like a shard; its hosts may not be removed, its old host may. */
static void test_move_meta(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    node_config_t c;
    memset(&c, 0, sizeof c);
    c.n_nodes = 4;
    c.replicas = 3;
    for (size_t i = 0; i < 4; i++)
        c.nodes[i].id = i;
    uint64_t ids[8];
    assert_null(shardmap_shard(m, SHOAL_META_GROUP));
    assert_int_equal(shardmap_meta_nodes(m, &c, ids, 8), 3); /* bootstrap: nodes 0, 1, 2 */
    assert_true(shardmap_has(ids, 3, 0) && shardmap_has(ids, 3, 1) && shardmap_has(ids, 3, 2));
    assert_int_equal(shardmap_record_meta(m, &c), 0);
    assert_int_equal(shardmap_record_meta(m, &c), 0); /* a record stays as it is */
    const Shoal__ShardInfo *meta = shardmap_shard(m, SHOAL_META_GROUP);
    assert_non_null(meta);
    assert_int_equal(meta->n_replicas, 3);

    Shoal__MoveReplicaRequest mv = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    mv.shard = SHOAL_META_GROUP;
    mv.from_node = 0;
    mv.to_node = 3;
    char err[256] = "";
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), 0);
    assert_true(shardmap_has(meta->replicas, 3, 3) && !shardmap_has(meta->replicas, 3, 0));
    assert_int_equal(meta->n_leaving, 1);
    /* while it moves, FROM still hosts it (keeps its data, gets move_done reports) */
    assert_int_equal(shardmap_meta_nodes(m, &c, ids, 8), 4);
    assert_true(shardmap_has(ids, 4, 0) && shardmap_has(ids, 4, 3));
    expect_move_busy(m, SHOAL_META_GROUP, 1, 0, "already moving");
    assert_int_equal(shardmap_remove_node(m, 0, ids, 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "move-replica meta 0"));

    /* the record survives packing; a record that is not a placement does not decode */
    size_t len;
    uint8_t *b = packed(m, &len);
    Shoal__ShardMap *d = shardmap_decode(b, len);
    assert_non_null(d);
    assert_non_null(shardmap_shard(d, SHOAL_META_GROUP));
    assert_true(same_map(d, b, len));
    free(b);
    d->meta->splitting = true;
    b = packed(d, &len);
    assert_null(shardmap_decode(b, len));
    free(b);
    d->meta->splitting = false;
    d->meta->n_replicas = 0;
    b = packed(d, &len);
    assert_null(shardmap_decode(b, len));
    free(b);
    d->meta->n_replicas = 3;
    shardmap_free(&d);

    uint64_t wrong[] = {0, 1, 2}, right[] = {1, 2, 3};
    assert_false(shardmap_close_move(m, SHOAL_META_GROUP, wrong, 3));
    assert_true(shardmap_close_move(m, SHOAL_META_GROUP, right, 3));
    assert_int_equal(meta->n_leaving, 0);
    assert_int_equal(meta->n_retired, 1);
    expect_move_refused(m, SHOAL_META_GROUP, 1, 2, "already holds");
    assert_int_equal(shardmap_meta_nodes(m, &c, ids, 8), 3);
    assert_false(shardmap_has(ids, 3, 0));
    shardmap_free(&m);
}

static void test_remove_node(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    char err[256] = "";
    assert_int_equal(shardmap_remove_node(m, 3, META, 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "move its replicas off first"));
    assert_int_equal(shardmap_remove_node(m, 1, META, 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "metadata group"));
    assert_int_equal(shardmap_remove_node(m, 8, META, 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "not in the shard map"));
    add(m, 4, "tcp://127.0.0.1:7108", "tcp://127.0.0.1:7109", 0, NULL);
    /* a node that is still leaving a shard keeps its data: not removable yet */
    Shoal__MoveReplicaRequest mv = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    mv.shard = 1;
    mv.from_node = 3;
    mv.to_node = 4;
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), 0);
    mv.shard = 2;
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), 0);
    mv.shard = 3;
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), 0);
    assert_int_equal(shardmap_remove_node(m, 3, META, 3, err, sizeof err), -1);
    assert_non_null(strstr(err, "move its replicas off first"));
    for (uint32_t s = 1; s <= 3; s++) {
        const Shoal__ShardInfo *si = shardmap_shard(m, s);
        assert_true(shardmap_close_move(m, s, si->replicas, si->n_replicas));
    }
    assert_int_equal(shardmap_remove_node(m, 3, META, 3, err, sizeof err), 0);
    assert_null(shardmap_node(m, 3));
    assert_int_equal(m->n_nodes, 4);
    /* kept as removed, with its address, so the metadata leader can tell it; through a copy
     * (the map travels packed) */
    Shoal__ShardMap *c = shardmap_copy(m);
    assert_non_null(c);
    assert_int_equal(c->n_removed, 1);
    assert_int_equal(c->removed[0]->id, 3);
    assert_non_null(c->removed[0]->endpoint);
    shardmap_free(&c);
    /* the id added again (any address) is no longer removed */
    add(m, 3, "tcp://127.0.0.1:7130", "tcp://127.0.0.1:7131", 0, NULL);
    assert_non_null(shardmap_node(m, 3));
    assert_int_equal(m->n_removed, 0);
    shardmap_free(&m);
}

static void expect_split_refused(Shoal__ShardMap *m, uint32_t source, const char *why)
{
    size_t len;
    uint8_t *before = packed(m, &len);
    char err[256] = "";
    uint32_t id = 12345;
    assert_int_equal(shardmap_split(m, source, &id, err, sizeof err), -1);
    assert_int_equal(id, 12345);
    if (!strstr(err, why))
        fail_msg("split %u: error \"%s\" does not say \"%s\"", source, err, why);
    assert_true(same_map(m, before, len));
    free(before);
}

/* source's points before the split are exactly the union of both sides after it, each
 * side sorted and about half of them */
static void check_halves(const Shoal__ShardMap *m, const uint64_t *was, size_t n_was,
                         uint32_t source, uint32_t added)
{
    const Shoal__ShardInfo *s = shardmap_shard(m, source), *g = shardmap_shard(m, added);
    assert_non_null(g);
    assert_true(g->splitting);
    assert_int_equal(g->split_from, source);
    assert_int_equal(g->n_replicas, s->n_replicas);
    for (size_t i = 0; i < s->n_replicas; i++)
        assert_int_equal(g->replicas[i], s->replicas[i]);
    assert_int_equal(s->n_points, (n_was + 1) / 2);
    assert_int_equal(g->n_points, n_was / 2);
    for (size_t i = 0; i < n_was; i++) {
        bool in_s = shardmap_has(s->points, s->n_points, was[i]);
        bool in_g = shardmap_has(g->points, g->n_points, was[i]);
        assert_true(in_s != in_g);
    }
    for (size_t i = 1; i < s->n_points; i++)
        assert_true(s->points[i] > s->points[i - 1]);
    for (size_t i = 1; i < g->n_points; i++)
        assert_true(g->points[i] > g->points[i - 1]);
}

static void test_split(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    uint64_t was[RING_MAX_VNODES];
    size_t n_was = shardmap_points(m, shardmap_shard(m, 0), was);
    assert_int_equal(n_was, 16);
    for (uint32_t i = 0; i < 16; i++)
        assert_true(shardmap_has(was, n_was, ring_point(0, i)));
    char err[256] = "";
    uint32_t id = 0;
    /* no source named: the largest (all have 16 points), lowest id: shard 0 */
    assert_int_equal(shardmap_split(m, SHOAL_META_GROUP, &id, err, sizeof err), 0);
    assert_int_equal(id, 4);
    assert_int_equal(m->n_shards, 5);
    check_halves(m, was, n_was, 0, 4);
    /* neither side of an open split moves a replica until it closes: busy, not bad input */
    expect_move_busy(m, 0, 1, 3, "is splitting");
    expect_move_busy(m, 4, 1, 3, "is splitting");

    expect_split_refused(m, 1, "still splitting from shard 0");
    assert_false(shardmap_close_split(m, 1)); /* not splitting */
    assert_true(shardmap_close_split(m, 4));
    assert_false(shardmap_shard(m, 4)->splitting);
    assert_false(shardmap_close_split(m, 4)); /* closed once */

    /* the largest is now shard 1 (16 points; 0 and 4 have 8) */
    n_was = shardmap_points(m, shardmap_shard(m, 1), was);
    assert_int_equal(shardmap_split(m, SHOAL_META_GROUP, &id, err, sizeof err), 0);
    assert_int_equal(id, 5);
    check_halves(m, was, n_was, 1, 5);
    assert_true(shardmap_close_split(m, 5));

    expect_split_refused(m, 9, "no shard 9");
    Shoal__MoveReplicaRequest mv = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    mv.shard = 2;
    mv.from_node = 2;
    mv.to_node = 1;
    assert_int_equal(shardmap_move(m, &mv, err, sizeof err), 0);
    expect_split_refused(m, 2, "moving a replica");

    /* a split shard splits again from its explicit points, down to one point */
    for (size_t want = 8; want > 1; want /= 2) {
        n_was = shardmap_points(m, shardmap_shard(m, 0), was);
        assert_int_equal(n_was, want);
        assert_int_equal(shardmap_split(m, 0, &id, err, sizeof err), 0);
        check_halves(m, was, n_was, 0, id);
        assert_true(shardmap_close_split(m, id));
    }
    assert_int_equal(shardmap_shard(m, 0)->n_points, 1);
    expect_split_refused(m, 0, "cannot be split");

    Shoal__ShardInfo *s3 = (Shoal__ShardInfo *)shardmap_shard(m, 3);
    size_t n_rep = s3->n_replicas;
    s3->n_replicas = 0; /* a decoded map may say so */
    expect_split_refused(m, 3, "lists no replica");
    s3->n_replicas = n_rep;

    /* points and marks survive the stored bytes; unsorted points do not decode */
    assert_int_equal(shardmap_split(m, 3, &id, err, sizeof err), 0);
    size_t len;
    uint8_t *b = packed(m, &len);
    Shoal__ShardMap *d = shardmap_decode(b, len);
    assert_non_null(d);
    assert_true(same_map(d, b, len));
    assert_true(shardmap_shard(d, id)->splitting);
    shardmap_free(&d);
    free(b);
    Shoal__ShardInfo *g = (Shoal__ShardInfo *)shardmap_shard(m, id);
    uint64_t t = g->points[0];
    g->points[0] = g->points[1];
    g->points[1] = t;
    b = packed(m, &len);
    assert_null(shardmap_decode(b, len));
    free(b);
    shardmap_free(&m);
}

/* The node's key check (node.c keys_fit): the map's ring is the broker's, and a key fits
 * the shard that owns it, or the source of a split still open that took it. */
static void test_key_fits(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    ring_t *r0 = shardmap_ring(m), *same = ring_new(m->vnodes_per_shard);
    assert_non_null(r0);
    for (uint32_t s = 0; s < 4; s++)
        assert_int_equal(ring_add_shard(same, s), 0);
    char k[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        uint32_t o = ring_shard_for(r0, k, strlen(k));
        assert_int_equal(o, ring_shard_for(same, k, strlen(k)));
        for (uint32_t s = 0; s < 5; s++)
            assert_int_equal(shardmap_key_fits(m, s, o), s == o);
        assert_false(shardmap_key_fits(m, SHOAL_META_GROUP, o)); /* not on the ring */
    }
    assert_false(shardmap_key_fits(m, 0, RING_NO_SHARD));
    ring_destroy(&same);

    char err[256] = "";
    uint32_t id = 0;
    assert_int_equal(shardmap_split(m, 0, &id, err, sizeof err), 0);
    assert_int_equal(id, 4);
    ring_t *r1 = shardmap_ring(m); /* from the split's explicit points */
    assert_non_null(r1);
    int moved = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        uint32_t o0 = ring_shard_for(r0, k, strlen(k)), o1 = ring_shard_for(r1, k, strlen(k));
        if (o0 != 0) { /* only the source's keys move */
            assert_int_equal(o1, o0);
            continue;
        }
        assert_true(o1 == 0 || o1 == 4);
        moved += o1 == 4;
        /* while the split is open the source still serves every key it had */
        assert_true(shardmap_key_fits(m, 0, o1));
        assert_int_equal(shardmap_key_fits(m, 4, o1), o1 == 4);
        assert_false(shardmap_key_fits(m, 1, o1));
    }
    assert_true(moved > 0);
    assert_true(shardmap_close_split(m, 4));
    assert_false(shardmap_key_fits(m, 0, 4)); /* closed: the key is shard 4's alone */
    assert_true(shardmap_key_fits(m, 4, 4));
    assert_true(shardmap_key_fits(m, 0, 0));
    ring_destroy(&r0);
    ring_destroy(&r1);
    shardmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_and_decode),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_move_meta),
        cmocka_unit_test(test_add_node),
        cmocka_unit_test(test_remove_node),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_key_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
