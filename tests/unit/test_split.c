/* test_split.c - the data cut of a shard split (actors/split.c) on the in-memory engine
 * environment: every key ends in exactly one of source and target, the target's copy
 * survives a power loss right after the call (before the source commits its deletes), a
 * second apply after the source lost its applied index keeps the target's newer writes,
 * and bad points are refused with a message. The SPLIT command carries the map's points
 * and a malformed one is refused whole; the source's fence refuses any write (a batch
 * whole) that touches a moved key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "actors/shardmap.h"
#include "actors/split.h"
#include "actors/split_cmd.h"
#include "engine/error.h"
#include "engine/lsm/env.h"
#include "tests/unit/shardmap_fixture.h"

#define NKEYS 3000
#define VNODES 64

typedef struct {
    lsm_env_t *env;
    lsm_t *src, *dst;
    uint64_t keep[VNODES / 2], give[VNODES / 2];
    split_t sp;
} fx_t;

static lsm_t *open_db(lsm_env_t *env, const char *dir)
{
    lsm_options_t o;
    lsm_options_init(&o);
    o.env = env;
    o.dir = dir;
    o.write_buffer_size = 64 << 10; /* several tables: the cut reads across levels */
    lsm_t *db = NULL;
    char err[256];
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    return db;
}

static void dkey(int i, char *k, size_t *kl)
{
    *kl = (size_t)snprintf(k, 32, "duser/%05d", i); /* 'd' prefix + user key */
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->env = lsm_env_mem_new();
    f->src = open_db(f->env, "/src");
    f->dst = open_db(f->env, "/dst");
    char k[32], v[64];
    size_t kl;
    for (int i = 0; i < NKEYS; i++) {
        dkey(i, k, &kl);
        snprintf(v, sizeof v, "value-%05d", i);
        assert_int_equal(lsm_put(f->src, NULL, k, kl, v, strlen(v)), 0);
    }
    assert_int_equal(lsm_put(f->src, NULL, "s\x01\x02", 3, "session", 7), 0);
    assert_int_equal(lsm_put(f->src, NULL, "m/applied", 9, "12345678", 8), 0);
    /* durable as a node's would be after replaying its Raft log: a crash below tests the
     * target's copy, not the source's unsynced writes */
    assert_int_equal(lsm_flush(f->src), 0);
    for (uint32_t i = 0; i < VNODES; i++)
        (i % 2 ? f->give : f->keep)[i / 2] = ring_point(3, i);
    /* split_t wants sorted points, as the shard map keeps them */
    for (size_t a = 0; a < VNODES / 2; a++)
        for (size_t b = a + 1; b < VNODES / 2; b++) {
            if (f->keep[b] < f->keep[a]) {
                uint64_t t = f->keep[a];
                f->keep[a] = f->keep[b];
                f->keep[b] = t;
            }
            if (f->give[b] < f->give[a]) {
                uint64_t t = f->give[a];
                f->give[a] = f->give[b];
                f->give[b] = t;
            }
        }
    static const uint64_t voters[] = {4, 5, 6};
    f->sp = (split_t){3, 9, f->keep, VNODES / 2, f->give, VNODES / 2, 77, voters, 3, false};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    lsm_close(&f->src);
    lsm_close(&f->dst);
    lsm_env_mem_destroy(&f->env);
    free(f);
    return 0;
}

static bool has(lsm_t *db, const char *k, size_t kl)
{
    void *v = NULL;
    size_t vl;
    int rc = lsm_get(db, NULL, k, kl, &v, &vl);
    free(v);
    return rc == 0;
}

static size_t apply(fx_t *f, lsm_batch_t **b)
{
    *b = lsm_batch_new();
    size_t moved = 0;
    char err[256] = "";
    assert_int_equal(split_apply(f->src, f->dst, &f->sp, *b, &moved, err, sizeof err), 0);
    assert_string_equal(err, "");
    return moved;
}

static void test_cut_and_power_loss(void **state)
{
    fx_t *f = *state;
    lsm_batch_t *b;
    size_t moved = apply(f, &b);
    assert_true(moved > NKEYS / 4 && moved < NKEYS * 3 / 4);
    assert_int_equal(lsm_batch_count(b), moved); /* one delete per moved key */
    /* power loss before the source commits its deletes: the target keeps its copy */
    lsm_env_mem_crash(f->env);
    lsm_close(&f->dst);
    lsm_close(&f->src);
    f->dst = open_db(f->env, "/dst");
    f->src = open_db(f->env, "/src");
    assert_true(split_done(f->dst, 3, 77));
    assert_false(split_done(f->dst, 3, 78));
    assert_true(has(f->dst, "s\x01\x02", 3));
    /* the target's own log starts after its base: the copy is its snapshot at that index */
    void *v = NULL;
    size_t vl = 0;
    uint64_t base = 0;
    assert_int_equal(lsm_get(f->dst, NULL, "m/applied", 9, &v, &vl), 0);
    assert_int_equal(vl, 8);
    memcpy(&base, v, 8);
    free(v);
    assert_int_equal(base, SPLIT_TARGET_BASE);
    uint64_t got[8];
    size_t n_got = 0;
    assert_true(split_target_conf(f->dst, got, 8, &n_got));
    assert_int_equal(n_got, 3);
    assert_int_equal(got[0], 4);
    assert_int_equal(got[2], 6);
    assert_false(split_target_conf(f->src, got, 8, &n_got)); /* no split data there */
    lsm_batch_destroy(&b);
    moved = apply(f, &b); /* the source applies the SPLIT again */
    assert_int_equal(lsm_write(f->src, NULL, b), 0);
    lsm_batch_destroy(&b);
    ring_t *r = split_ring(&f->sp);
    assert_non_null(r);
    char k[32];
    size_t kl, in_dst = 0;
    for (int i = 0; i < NKEYS; i++) {
        dkey(i, k, &kl);
        bool to_target = ring_shard_for(r, k + 1, kl - 1) == 9;
        assert_true(has(f->dst, k, kl) == to_target);
        assert_true(has(f->src, k, kl) == !to_target);
        in_dst += to_target;
    }
    assert_int_equal(in_dst, moved);
    ring_destroy(&r);
}

static void test_again_keeps_target_writes(void **state)
{
    fx_t *f = *state;
    lsm_batch_t *b;
    size_t moved = apply(f, &b);
    lsm_batch_destroy(&b); /* the source's applied index was lost: deletes never landed */
    ring_t *r = split_ring(&f->sp);
    char k[32];
    size_t kl;
    int i = 0;
    for (;; i++) {
        dkey(i, k, &kl);
        if (ring_shard_for(r, k + 1, kl - 1) == 9)
            break;
    }
    assert_int_equal(lsm_put(f->dst, NULL, k, kl, "newer", 5), 0); /* the target serves */
    assert_int_equal(apply(f, &b), moved);
    assert_int_equal(lsm_batch_count(b), moved);
    void *v = NULL;
    size_t vl;
    assert_int_equal(lsm_get(f->dst, NULL, k, kl, &v, &vl), 0);
    assert_int_equal(vl, 5);
    assert_memory_equal(v, "newer", 5);
    free(v);
    lsm_batch_destroy(&b);
    ring_destroy(&r);
}

static void test_bad_points(void **state)
{
    fx_t *f = *state;
    lsm_batch_t *b = lsm_batch_new();
    size_t moved = 5;
    char err[256] = "";
    split_t bad = f->sp;
    bad.n_give = 0;
    assert_int_equal(split_apply(f->src, f->dst, &bad, b, &moved, err, sizeof err), SHOAL_EINVAL);
    assert_non_null(strstr(err, "bad ring points"));
    assert_int_equal(moved, 0);
    bad = f->sp;
    bad.target = bad.source;
    assert_int_equal(split_apply(f->src, f->dst, &bad, b, &moved, err, sizeof err), SHOAL_EINVAL);
    assert_int_equal(lsm_batch_count(b), 0);
    assert_false(split_done(f->dst, 3, 77));
    lsm_batch_destroy(&b);
}

static void expect_check_refused(const Shoal__SplitCommand *c, uint32_t source, const char *why)
{
    split_t sp;
    char err[256] = "";
    assert_int_equal(split_cmd_check(c, source, 50, &sp, err, sizeof err), -1);
    if (!strstr(err, why))
        fail_msg("error \"%s\" does not say \"%s\"", err, why);
}

static void test_command(void **state)
{
    (void)state;
    Shoal__ShardMap *m = shardmap_fixture_four();
    char err[256] = "";
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t id = 0;
    assert_int_equal(split_cmd_encode(m, 1, &buf, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "not splitting"));
    assert_int_equal(shardmap_split(m, 2, &id, err, sizeof err), 0);
    assert_int_equal(split_cmd_encode(m, id, &buf, &len, err, sizeof err), 0);
    Shoal__WriteCommand *wc = shoal__write_command__unpack(NULL, len, buf);
    assert_non_null(wc);
    assert_int_equal(wc->op_case, SHOAL__WRITE_COMMAND__OP_SPLIT);
    assert_int_equal(wc->client_id, 0);
    Shoal__SplitCommand *c = wc->split;
    assert_int_equal(c->map_version, m->version);
    split_t sp;
    assert_int_equal(split_cmd_check(c, 2, 50, &sp, err, sizeof err), 0);
    const Shoal__ShardInfo *s = shardmap_shard(m, 2), *g = shardmap_shard(m, id);
    assert_int_equal(sp.source, 2);
    assert_int_equal(sp.target, id);
    assert_int_equal(sp.index, 50);
    assert_int_equal(sp.n_keep, s->n_points);
    assert_int_equal(sp.n_give, g->n_points);
    assert_memory_equal(sp.keep, s->points, s->n_points * sizeof *s->points);
    assert_memory_equal(sp.give, g->points, g->n_points * sizeof *g->points);

    expect_check_refused(c, id, "the target is the source");
    uint64_t t = c->give[0];
    c->give[0] = c->give[1];
    c->give[1] = t;
    expect_check_refused(c, 2, "not strictly ascending");
    c->give[1] = c->give[0];
    c->give[0] = t;
    /* ranks alternate (keep 0, 2, ..; give 1, 3, ..): keep[0] < give[1], still ascending */
    uint64_t g0 = c->give[0];
    c->give[0] = c->keep[0];
    expect_check_refused(c, 2, "in both lists");
    c->give[0] = g0;
    c->n_give = 0;
    expect_check_refused(c, 2, "empty");
    c->n_give = 1;
    assert_int_equal(split_cmd_check(c, 2, 50, &sp, err, sizeof err), 0);
    shoal__write_command__free_unpacked(wc, NULL);
    free(buf);

    assert_true(shardmap_close_split(m, id));
    assert_int_equal(split_cmd_encode(m, id, &buf, &len, err, sizeof err), -1);
    shardmap_free(&m);
}

/* The first of user/00000.. that r gives to want, as a protobuf key in buf. */
static ProtobufCBinaryData key_on(const ring_t *r, uint32_t want, char *buf)
{
    for (int i = 0;; i++) {
        int n = snprintf(buf, 32, "user/%05d", i);
        if (ring_shard_for(r, buf, (size_t)n) == want)
            return (ProtobufCBinaryData){(size_t)n, (uint8_t *)buf};
    }
}

static void test_fence(void **state)
{
    fx_t *f = *state;
    ring_t *r = split_ring(&f->sp);
    assert_non_null(r);
    char kb[32], sb[32];
    ProtobufCBinaryData moved = key_on(r, 9, kb), stays = key_on(r, 3, sb);
    Shoal__PutRequest put = SHOAL__PUT_REQUEST__INIT;
    Shoal__DeleteRequest del = SHOAL__DELETE_REQUEST__INIT;
    Shoal__CasRequest cas = SHOAL__CAS_REQUEST__INIT;
    Shoal__WriteCommand wc = SHOAL__WRITE_COMMAND__INIT;
    wc.op_case = SHOAL__WRITE_COMMAND__OP_PUT;
    wc.put = &put;
    put.key = moved;
    assert_true(split_cmd_fenced(r, 9, &wc));
    put.key = stays;
    assert_false(split_cmd_fenced(r, 9, &wc));
    wc.op_case = SHOAL__WRITE_COMMAND__OP_DEL;
    wc.del = &del;
    del.key = moved;
    assert_true(split_cmd_fenced(r, 9, &wc));
    wc.op_case = SHOAL__WRITE_COMMAND__OP_CAS;
    wc.cas = &cas;
    cas.key = stays;
    assert_false(split_cmd_fenced(r, 9, &wc));
    cas.key = moved;
    assert_true(split_cmd_fenced(r, 9, &wc));
    /* a batch with one moved key is fenced whole: it stays atomic */
    Shoal__BatchOp o1 = SHOAL__BATCH_OP__INIT, o2 = SHOAL__BATCH_OP__INIT, *ops[] = {&o1, &o2};
    Shoal__PutRequest p1 = SHOAL__PUT_REQUEST__INIT;
    Shoal__DeleteRequest d2 = SHOAL__DELETE_REQUEST__INIT;
    o1.op_case = SHOAL__BATCH_OP__OP_PUT;
    o1.put = &p1;
    p1.key = stays;
    o2.op_case = SHOAL__BATCH_OP__OP_DEL;
    o2.del = &d2;
    d2.key = stays;
    Shoal__BatchRequest br = SHOAL__BATCH_REQUEST__INIT;
    br.ops = ops;
    br.n_ops = 2;
    wc.op_case = SHOAL__WRITE_COMMAND__OP_BATCH;
    wc.batch = &br;
    assert_false(split_cmd_fenced(r, 9, &wc));
    d2.key = moved;
    assert_true(split_cmd_fenced(r, 9, &wc));
    wc.op_case = SHOAL__WRITE_COMMAND__OP_SPLIT;
    assert_false(split_cmd_fenced(r, 9, &wc));
    ring_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cut_and_power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_again_keeps_target_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_points, setup, teardown),
        cmocka_unit_test(test_command),
        cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
