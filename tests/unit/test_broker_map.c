/* test_broker_map.c - the broker's shard table across shard-map versions: a replica's match
 * index stays with its node. A move puts TO where FROM was in the replica list, and
 * `status` showed FROM's match for TO (a node that was down and held nothing) until the
 * leader's next status answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker_internal.h"

static void set_map(broker_t *b, uint64_t version, uint64_t *replicas, size_t n, uint64_t *leaving,
                    size_t nl)
{
    Shoal__ShardInfo si = SHOAL__SHARD_INFO__INIT, meta = SHOAL__SHARD_INFO__INIT;
    si.id = 0;
    si.replicas = replicas;
    si.n_replicas = n;
    si.leaving = leaving;
    si.n_leaving = nl;
    uint64_t meta_nodes[3] = {0, 1, 2};
    meta.id = UINT32_MAX;
    meta.replicas = meta_nodes;
    meta.n_replicas = 3;
    Shoal__ShardInfo *shards[1] = {&si};
    Shoal__ShardMap map = SHOAL__SHARD_MAP__INIT;
    map.version = version;
    map.shards = shards;
    map.n_shards = 1;
    map.meta = &meta;
    assert_int_equal(broker_set_map(b, &map), 0);
}

static uint64_t match_of(broker_t *b, uint64_t node)
{
    bshard_t *s = broker_shard(b, 0);
    assert_non_null(s);
    for (size_t k = 0; k < s->n_replicas; k++)
        if (s->replicas[k] == node)
            return s->match[k];
    fail_msg("node %llu holds no replica", (unsigned long long)node);
    return 0;
}

static void test_match_stays_with_its_node(void **state)
{
    (void)state;
    broker_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    strcpy(b->cfg.log_level, "error");
    uint64_t v1[3] = {0, 1, 2};
    set_map(b, 1, v1, 3, NULL, 0);
    bshard_t *s = broker_shard(b, 0);
    for (size_t k = 0; k < 3; k++)
        s->match[k] = 4846 + k;                   /* as the leader's status answers set them */
    uint64_t v2[3] = {3, 1, 2}, leaving[1] = {0}; /* move 0 -> 3: 3 takes 0's place */
    set_map(b, 2, v2, 3, leaving, 1);
    assert_int_equal(match_of(b, 3), 0);
    assert_int_equal(match_of(b, 1), 4847);
    assert_int_equal(match_of(b, 2), 4848);
    uint64_t v3[3] = {1, 2, 3}; /* the same members in another order */
    set_map(b, 3, v3, 3, NULL, 0);
    assert_int_equal(match_of(b, 1), 4847);
    assert_int_equal(match_of(b, 2), 4848);
    assert_int_equal(match_of(b, 3), 0);
    ring_destroy(&b->ring);
    free(b->shards);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_stays_with_its_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
