/* shardmap_fixture.h - the bootstrap map the shard-map tests start from. Include after
 * <cmocka.h>. */
#ifndef SHOAL_TESTS_SHARDMAP_FIXTURE_H
#define SHOAL_TESTS_SHARDMAP_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "actors/node_config.h"
#include "actors/shardmap.h"

/* 4 nodes, 4 shards, 3 replicas: shard s on nodes s, s+1, s+2 (mod 4). */
static inline Shoal__ShardMap *shardmap_fixture_four(void)
{
    node_config_t c;
    memset(&c, 0, sizeof c);
    c.shards = 4;
    c.replicas = 3;
    c.vnodes = 16;
    c.n_nodes = 4;
    for (size_t i = 0; i < 4; i++) {
        c.nodes[i].id = i;
        snprintf(c.nodes[i].endpoint, sizeof c.nodes[i].endpoint, "tcp://127.0.0.1:%zu",
                 7100 + 2 * i);
        snprintf(c.nodes[i].pub_endpoint, sizeof c.nodes[i].pub_endpoint, "tcp://127.0.0.1:%zu",
                 7101 + 2 * i);
    }
    Shoal__ShardMap *m = shardmap_bootstrap(&c);
    assert_non_null(m);
    return m;
}

#endif
