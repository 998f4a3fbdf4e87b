/* test_ring.c - the consistent-hash ring: lookups are deterministic, keys spread evenly
 * over shards, adding a shard moves only the keys it takes over (about 1/(S+1) of them),
 * removing a shard restores the previous mapping exactly, and the ring wraps around. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/ring.h"

#define NKEYS 20000

static size_t key_of(unsigned i, char *buf)
{
    return (size_t)snprintf(buf, 32, "user/%08u", i);
}

static ring_t *ring_with(uint32_t vnodes, uint32_t shards)
{
    ring_t *r = ring_new(vnodes);
    assert_non_null(r);
    for (uint32_t s = 0; s < shards; s++)
        assert_int_equal(ring_add_shard(r, s), SHOAL_OK);
    return r;
}

static void test_empty_and_bounds(void **state)
{
    assert_null(ring_new(0));
    assert_null(ring_new(RING_MAX_VNODES + 1));
    ring_t *r = ring_new(8);
    assert_int_equal(ring_shard_for(r, "a", 1), RING_NO_SHARD);
    assert_int_equal(ring_add_shard(r, RING_NO_SHARD), SHOAL_EINVAL);
    assert_int_equal(ring_add_shard(r, 3), SHOAL_OK);
    assert_int_equal(ring_add_shard(r, 3), SHOAL_EEXIST);
    assert_int_equal(ring_remove_shard(r, 4), SHOAL_ENOTFOUND);
    assert_int_equal(ring_shard_for(r, "a", 1), 3);
    assert_int_equal(ring_shard_for(r, "", 0), 3);
    assert_int_equal(ring_shard_count(r), 1);
    assert_int_equal(ring_remove_shard(r, 3), SHOAL_OK);
    assert_int_equal(ring_shard_for(r, "a", 1), RING_NO_SHARD);
    ring_destroy(&r);
    assert_null(r);
    ring_destroy(&r); /* safe on NULL */
}

static void test_deterministic_across_instances(void **state)
{
    /* Two rings built in different orders must agree: brokers and nodes depend on it. */
    ring_t *a = ring_with(64, 8);
    ring_t *b = ring_new(64);
    for (int s = 7; s >= 0; s--)
        ring_add_shard(b, (uint32_t)s);
    char k[32];
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t n = key_of(i, k);
        assert_int_equal(ring_shard_for(a, k, n), ring_shard_for(b, k, n));
    }
    ring_destroy(&a);
    ring_destroy(&b);
}

static void test_even_spread(void **state)
{
    ring_t *r = ring_with(64, 4);
    unsigned count[4] = {0};
    char k[32];
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t n = key_of(i, k);
        uint32_t s = ring_shard_for(r, k, n);
        assert_true(s < 4);
        count[s]++;
    }
    for (int s = 0; s < 4; s++) {
        /* 64 vnodes keep each shard within +-40% of its fair share of 5000. */
        assert_true(count[s] > NKEYS / 4 * 6 / 10);
        assert_true(count[s] < NKEYS / 4 * 14 / 10);
    }
    ring_destroy(&r);
}

static void test_add_moves_only_to_new_shard(void **state)
{
    ring_t *r = ring_with(64, 4);
    static uint32_t before[NKEYS];
    char k[32];
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t n = key_of(i, k);
        before[i] = ring_shard_for(r, k, n);
    }
    assert_int_equal(ring_add_shard(r, 4), SHOAL_OK);
    unsigned moved = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t n = key_of(i, k);
        uint32_t now = ring_shard_for(r, k, n);
        if (now != before[i]) {
            assert_int_equal(now, 4);
            moved++;
        }
    }
    /* Fair share of a fifth shard is 20%; accept 10%..30%. */
    assert_true(moved > NKEYS / 10);
    assert_true(moved < NKEYS * 3 / 10);
    assert_int_equal(ring_remove_shard(r, 4), SHOAL_OK);
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t n = key_of(i, k);
        assert_int_equal(ring_shard_for(r, k, n), before[i]);
    }
    ring_destroy(&r);
}

/* A split as the shard map records it: shard 1 keeps its even-ranked points, shard 4 takes
 * the odd-ranked ones. Only shard 1's keys move, all to shard 4, about half of them. */
static void test_split_points_move_only_source_keys(void **state)
{
    (void)state;
    ring_t *r = ring_with(64, 4);
    static uint32_t before[NKEYS];
    char k[32];
    for (unsigned i = 0; i < NKEYS; i++)
        before[i] = ring_shard_for(r, k, key_of(i, k));
    uint64_t keep[32], give[32];
    for (uint32_t i = 0; i < 64; i++)
        (i % 2 ? give : keep)[i / 2] = ring_point(1, i);
    assert_int_equal(ring_remove_shard(r, 1), SHOAL_OK);
    assert_int_equal(ring_add_points(r, 1, keep, 32), SHOAL_OK);
    assert_int_equal(ring_add_points(r, 4, give, 32), SHOAL_OK);
    assert_int_equal(ring_add_points(r, 4, give, 32), SHOAL_EEXIST);
    assert_int_equal(ring_add_points(r, 5, give, 0), SHOAL_EINVAL);
    assert_int_equal(ring_add_points(r, RING_NO_SHARD, give, 1), SHOAL_EINVAL);
    assert_int_equal(ring_shard_count(r), 5);
    unsigned of1 = 0, moved = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        uint32_t now = ring_shard_for(r, k, key_of(i, k));
        of1 += before[i] == 1;
        if (now != before[i]) {
            assert_int_equal(before[i], 1);
            assert_int_equal(now, 4);
            moved++;
        }
    }
    assert_true(moved > of1 / 4 && moved < of1 * 3 / 4);
    ring_destroy(&r);
}

/* What a source replica applying a split needs: for the source's own keys, a ring of
 * just the source's kept points and the new shard's points names the same owner as the
 * whole cluster's ring (the first point at or after a source key's hash is a source point
 * before the split, so it is the first of the source's points too). No map needed. */
static void test_split_decided_from_source_points_alone(void **state)
{
    (void)state;
    ring_t *all = ring_with(64, 4), *two = ring_new(64);
    assert_non_null(two);
    static uint32_t before[NKEYS];
    char k[32];
    for (unsigned i = 0; i < NKEYS; i++)
        before[i] = ring_shard_for(all, k, key_of(i, k));
    uint64_t keep[32], give[32];
    for (uint32_t i = 0; i < 64; i++)
        (i % 2 ? give : keep)[i / 2] = ring_point(2, i);
    assert_int_equal(ring_remove_shard(all, 2), SHOAL_OK);
    assert_int_equal(ring_add_points(all, 2, keep, 32), SHOAL_OK);
    assert_int_equal(ring_add_points(all, 7, give, 32), SHOAL_OK);
    assert_int_equal(ring_add_points(two, 2, keep, 32), SHOAL_OK);
    assert_int_equal(ring_add_points(two, 7, give, 32), SHOAL_OK);
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t n = key_of(i, k);
        if (before[i] == 2)
            assert_int_equal(ring_shard_for(two, k, n), ring_shard_for(all, k, n));
    }
    ring_destroy(&all);
    ring_destroy(&two);
}

static void test_wraparound(void **state)
{
    ring_t *r = ring_with(16, 3);
    /* A hash above every point belongs to the owner of the lowest point. */
    uint64_t lowest = UINT64_MAX;
    uint32_t owner = RING_NO_SHARD;
    for (uint32_t s = 0; s < 3; s++)
        for (uint32_t i = 0; i < 16; i++)
            if (ring_point(s, i) < lowest) {
                lowest = ring_point(s, i);
                owner = s;
            }
    assert_int_equal(ring_shard_for_hash(r, UINT64_MAX), owner);
    assert_int_equal(ring_shard_for_hash(r, 0), owner);
    assert_int_equal(ring_shard_for_hash(r, lowest), owner);
    ring_destroy(&r);
}

static void test_point_is_stable(void **state)
{
    /* The point function is part of the shard map format (admin.proto): pin it. */
    assert_int_equal(ring_point(0, 0), ring_point(0, 0));
    assert_true(ring_point(0, 1) != ring_point(1, 0));
    assert_true(ring_key_hash("a", 1) != ring_key_hash("b", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_bounds),
        cmocka_unit_test(test_deterministic_across_instances),
        cmocka_unit_test(test_even_spread),
        cmocka_unit_test(test_add_moves_only_to_new_shard),
        cmocka_unit_test(test_split_points_move_only_source_keys),
        cmocka_unit_test(test_split_decided_from_source_points_alone),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_point_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
