/* test_split_fsm.c - a source shard's state machine applying SPLIT commands
 * (actors/split_fsm.c) and its fence (actors/split_fence.c), on the in-memory engine
 * environment: the cut leaves every key in exactly one engine and the fence names the
 * moved ones; applying the same SPLIT again changes nothing; the fence survives a reload
 * from the engine and a second split of the same source keeps fencing the first one's
 * keys; a bad command is refused whole, a missing target engine is an I/O error (the node
 * stops, nothing half done), and a stored fence that does not decode is a clear error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "actors/split_fence.h"
#include "actors/split_fsm.h"
#include "engine/error.h"
#include "engine/lsm/env.h"
#include "engine/ring.h"

#define NKEYS 2000
#define VNODES 64
#define SOURCE 3

typedef struct {
    lsm_env_t *env;
    lsm_t *src, *dst, *dst2;
    uint64_t keep[VNODES / 2], give[VNODES / 2];
    uint64_t keep2[VNODES / 4], give2[VNODES / 4];
    uint64_t voters[3];
    Shoal__SplitCommand cmd, cmd2;
    split_fence_t *fence;
} fx_t;

static lsm_t *open_db(lsm_env_t *env, const char *dir)
{
    lsm_options_t o;
    lsm_options_init(&o);
    o.env = env;
    o.dir = dir;
    lsm_t *db = NULL;
    char err[256];
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    return db;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void user_key(int i, char *k)
{
    snprintf(k, 32, "user/%05d", i);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->env = lsm_env_mem_new();
    f->src = open_db(f->env, "/src");
    f->dst = open_db(f->env, "/dst");
    f->dst2 = open_db(f->env, "/dst2");
    for (int i = 0; i < NKEYS; i++) {
        char k[40] = "d", v[32];
        user_key(i, k + 1);
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(lsm_put(f->src, NULL, k, strlen(k), v, strlen(v)), 0);
    }
    uint64_t pts[VNODES];
    for (uint32_t i = 0; i < VNODES; i++)
        pts[i] = ring_point(SOURCE, i);
    qsort(pts, VNODES, sizeof *pts, u64_cmp);
    for (size_t i = 0; i < VNODES; i++)
        (i % 2 ? f->give : f->keep)[i / 2] = pts[i];
    for (size_t i = 0; i < VNODES / 2; i++) /* the second split halves what the first kept */
        (i % 2 ? f->give2 : f->keep2)[i / 2] = f->keep[i];
    f->voters[0] = 0, f->voters[1] = 1, f->voters[2] = 2;
    shoal__split_command__init(&f->cmd);
    f->cmd.target = 9;
    f->cmd.map_version = 5;
    f->cmd.keep = f->keep, f->cmd.n_keep = VNODES / 2;
    f->cmd.give = f->give, f->cmd.n_give = VNODES / 2;
    f->cmd.voters = f->voters, f->cmd.n_voters = 3;
    f->cmd2 = f->cmd;
    f->cmd2.target = 10;
    f->cmd2.map_version = 7;
    f->cmd2.keep = f->keep2, f->cmd2.n_keep = VNODES / 4;
    f->cmd2.give = f->give2, f->cmd2.n_give = VNODES / 4;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    split_fence_destroy(&f->fence);
    lsm_close(&f->src);
    lsm_close(&f->dst);
    lsm_close(&f->dst2);
    lsm_env_mem_destroy(&f->env);
    free(f);
    return 0;
}

/* Applies c with the given target engines; writes the source's batch as the fsm would. */
static Shoal__Status apply(fx_t *f, const Shoal__SplitCommand *c, uint64_t index,
                           split_dst_t *dsts, size_t n, int *io, size_t *batch_ops)
{
    fsm_job_t job;
    memset(&job, 0, sizeof job);
    job.splits = dsts;
    job.n_splits = n;
    lsm_batch_t *b = lsm_batch_new();
    *io = 0;
    Shoal__Status st = split_fsm_apply(SOURCE, f->src, b, &job, c, index, &f->fence, io);
    *batch_ops = lsm_batch_count(b);
    if (st == SHOAL__STATUS__STATUS_OK && *io == 0)
        assert_int_equal(lsm_write(f->src, NULL, b), 0);
    lsm_batch_destroy(&b);
    return st;
}

static bool has(lsm_t *db, const char *uk)
{
    char k[40] = "d";
    strcpy(k + 1, uk);
    void *v = NULL;
    size_t vl;
    int rc = lsm_get(db, NULL, k, strlen(k), &v, &vl);
    free(v);
    return rc == 0;
}

/* Every key in exactly one engine, and the fence names the moved ones with their owner. */
static size_t check_cut(fx_t *f, const split_fence_t *fence)
{
    size_t moved = 0;
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        user_key(i, k);
        bool in_src = has(f->src, k), in9 = has(f->dst, k), in10 = has(f->dst2, k);
        assert_int_equal(in_src + in9 + in10, 1);
        uint32_t to = 0;
        bool fenced = split_fence_key(fence, (const uint8_t *)k, strlen(k), &to);
        assert_int_equal(fenced, !in_src);
        if (fenced)
            assert_int_equal(to, in9 ? 9 : 10);
        moved += !in_src;
    }
    return moved;
}

static void test_apply_twice_and_reload(void **state)
{
    fx_t *f = *state;
    split_dst_t d = {9, f->dst, false};
    int io;
    size_t ops;
    assert_int_equal(apply(f, &f->cmd, 100, &d, 1, &io, &ops), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(io, 0);
    size_t moved = check_cut(f, f->fence);
    assert_true(moved > NKEYS / 4 && moved < NKEYS * 3 / 4);
    assert_int_equal(ops, moved + 1); /* the deletes and the fence */
    assert_int_equal(split_fence_version(f->fence), 5);
    assert_true(split_fence_has(f->fence, 9));
    /* the same SPLIT again (a retried proposal): a no-op */
    assert_int_equal(apply(f, &f->cmd, 130, &d, 1, &io, &ops), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(ops, 0);
    /* the fence as a restart finds it */
    split_fence_t *loaded = NULL;
    char err[256] = "";
    assert_int_equal(split_fence_load(f->src, SOURCE, &loaded, err, sizeof err), 0);
    assert_non_null(loaded);
    assert_int_equal(check_cut(f, loaded), moved);
    assert_int_equal(split_fence_version(loaded), 5);
    split_fence_destroy(&loaded);
    uint64_t voters[4];
    size_t nv;
    assert_true(split_target_conf(f->dst, voters, 4, &nv));
    assert_int_equal(nv, 3);
}

static void test_second_split_keeps_first_fence(void **state)
{
    fx_t *f = *state;
    split_dst_t d[2] = {{9, f->dst, false}, {10, f->dst2, false}};
    int io;
    size_t ops;
    assert_int_equal(apply(f, &f->cmd, 100, d, 1, &io, &ops), SHOAL__STATUS__STATUS_OK);
    size_t first = check_cut(f, f->fence);
    assert_int_equal(apply(f, &f->cmd2, 200, d + 1, 1, &io, &ops), SHOAL__STATUS__STATUS_OK);
    size_t both = check_cut(f, f->fence);
    assert_true(both > first);
    assert_int_equal(split_fence_version(f->fence), 7);
    /* a write command: a batch with one moved key is fenced whole */
    Shoal__PutRequest p1 = SHOAL__PUT_REQUEST__INIT, p2 = SHOAL__PUT_REQUEST__INIT;
    Shoal__BatchOp o1 = SHOAL__BATCH_OP__INIT, o2 = SHOAL__BATCH_OP__INIT;
    char kept[32] = "", moved[32] = "";
    for (int i = 0; i < NKEYS && (!kept[0] || !moved[0]); i++) {
        char k[32];
        user_key(i, k);
        strcpy(has(f->src, k) ? kept : moved, k);
    }
    p1.key = (ProtobufCBinaryData){strlen(kept), (uint8_t *)kept};
    p2.key = (ProtobufCBinaryData){strlen(moved), (uint8_t *)moved};
    o1.op_case = o2.op_case = SHOAL__BATCH_OP__OP_PUT;
    o1.put = &p1, o2.put = &p2;
    Shoal__BatchOp *ops2[2] = {&o1, &o2};
    Shoal__BatchRequest br = SHOAL__BATCH_REQUEST__INIT;
    br.ops = ops2;
    br.n_ops = 1;
    Shoal__WriteCommand wc = SHOAL__WRITE_COMMAND__INIT;
    wc.op_case = SHOAL__WRITE_COMMAND__OP_BATCH;
    wc.batch = &br;
    uint32_t to;
    assert_false(split_fence_write(f->fence, &wc, &to));
    br.n_ops = 2;
    assert_true(split_fence_write(f->fence, &wc, &to));
}

static void test_refusals(void **state)
{
    fx_t *f = *state;
    split_dst_t d = {9, f->dst, false};
    int io;
    size_t ops;
    Shoal__SplitCommand bad = f->cmd;
    bad.target = SOURCE;
    assert_int_equal(apply(f, &bad, 100, &d, 1, &io, &ops), SHOAL__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(ops, 0);
    bad = f->cmd;
    bad.n_voters = 0;
    assert_int_equal(apply(f, &bad, 100, &d, 1, &io, &ops), SHOAL__STATUS__STATUS_BAD_REQUEST);
    assert_int_equal(ops, 0);
    assert_null(f->fence);
    /* no target engine: the node's bug, not input: an error that stops the node */
    assert_int_equal(apply(f, &f->cmd, 100, NULL, 0, &io, &ops), SHOAL__STATUS__STATUS_INTERNAL);
    assert_int_not_equal(io, 0);
    assert_int_equal(ops, 0);
    assert_null(f->fence);
    /* a stored fence that does not decode */
    assert_int_equal(lsm_put(f->src, NULL, SPLIT_FENCE_KEY, strlen(SPLIT_FENCE_KEY), "\x01xx", 3),
                     0);
    split_fence_t *loaded = NULL;
    char err[256] = "";
    assert_int_equal(split_fence_load(f->src, SOURCE, &loaded, err, sizeof err), SHOAL_ECORRUPT);
    assert_null(loaded);
    assert_non_null(strstr(err, SPLIT_FENCE_KEY));
}

/* The target already runs on this node (started empty after the split closed without this
 * replica): the source only deletes and fences; nothing is written into the live engine. */
static void test_live_target_not_copied(void **state)
{
    fx_t *f = *state;
    split_dst_t d = {9, f->dst, true};
    int io;
    size_t ops;
    assert_int_equal(apply(f, &f->cmd, 100, &d, 1, &io, &ops), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(io, 0);
    assert_true(ops > 1); /* the deletes and the fence */
    size_t in_src = 0;
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        user_key(i, k);
        assert_false(has(f->dst, k));
        in_src += has(f->src, k);
    }
    assert_int_equal(in_src + ops - 1, NKEYS);
    uint64_t voters[4];
    size_t nv;
    assert_false(split_target_conf(f->dst, voters, 4, &nv));
    assert_true(split_fence_has(f->fence, 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_twice_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_split_keeps_first_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_target_not_copied, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
