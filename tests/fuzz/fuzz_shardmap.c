/* fuzz_shardmap.c - fuzz target for the shard-map decoder (DATA/shardmap, MapPush, the
 * metadata group's stored value; actors/shardmap.c) and the edits made on what it decodes:
 * any bytes are refused or decode to a map on which every edit either applies (and the
 * result still encodes and decodes) or is refused with one line; never a crash. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "actors/shardmap.h"

static void roundtrip(const Shoal__ShardMap *m)
{
    size_t len = shoal__shard_map__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    assert(buf);
    shoal__shard_map__pack(m, buf);
    Shoal__ShardMap *d = shoal__shard_map__unpack(NULL, len, buf);
    assert(d);
    shardmap_free(&d);
    free(buf);
}

static void check_err(int rc, const char *err)
{
    if (rc != 0)
        assert(rc == -1 && err[0] && !strchr(err, '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Shoal__ShardMap *m = shardmap_decode(data, size);
    if (!m)
        return 0;
    assert(m->version > 0 && m->n_shards > 0);
    /* edit arguments drawn from the input's last bytes */
    uint8_t a = size ? data[size - 1] : 0, b = size > 1 ? data[size - 2] : 0;
    char err[256] = "";
    Shoal__MoveReplicaRequest mv = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    mv.shard = m->shards[a % m->n_shards]->id;
    mv.from_node = a % 8;
    mv.to_node = b % 8;
    check_err(shardmap_move(m, &mv, err, sizeof err), err);
    if (b % 3 == 0) { /* a cancel, of this move or of one the input holds */
        err[0] = '\0';
        check_err(shardmap_cancel_move(m, mv.shard, err, sizeof err), err);
    }
    const Shoal__ShardInfo *si = shardmap_shard(m, mv.shard);
    if (si)
        (void)shardmap_close_move(m, mv.shard, si->replicas, si->n_replicas);
    Shoal__AddNodeRequest an = SHOAL__ADD_NODE_REQUEST__INIT;
    Shoal__NodeInfo ni = SHOAL__NODE_INFO__INIT;
    ni.id = b % 70;
    ni.endpoint = (char *)"tcp://127.0.0.1:1";
    ni.pub_endpoint = (char *)"tcp://127.0.0.1:2";
    an.node = &ni;
    err[0] = '\0';
    check_err(shardmap_add_node(m, &an, err, sizeof err), err);
    uint64_t meta[] = {0, 1, 2};
    err[0] = '\0';
    check_err(shardmap_remove_node(m, a % 8, meta, 3, err, sizeof err), err);
    uint32_t id = 0;
    err[0] = '\0';
    uint32_t src = a % 2 ? SHOAL_META_GROUP : m->shards[b % m->n_shards]->id;
    check_err(shardmap_split(m, src, &id, err, sizeof err), err);
    if (err[0] == '\0')
        (void)shardmap_close_split(m, id);
    roundtrip(m);
    shardmap_free(&m);
    return 0;
}

size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    node_config_t c;
    memset(&c, 0, sizeof c);
    c.shards = 1 + i % 5;
    c.replicas = 3;
    c.vnodes = 8;
    c.n_nodes = 3 + i % 3;
    for (size_t k = 0; k < c.n_nodes; k++) {
        c.nodes[k].id = k;
        strcpy(c.nodes[k].endpoint, "tcp://127.0.0.1:7100");
        c.nodes[k].endpoint[19] = (char)('0' + k);
        strcpy(c.nodes[k].pub_endpoint, "tcp://127.0.0.1:7200");
        c.nodes[k].pub_endpoint[19] = (char)('0' + k);
    }
    Shoal__ShardMap *m = shardmap_bootstrap(&c);
    size_t len = m ? shoal__shard_map__get_packed_size(m) : 0;
    if (!m || len > cap) {
        shardmap_free(&m);
        return 0;
    }
    shoal__shard_map__pack(m, buf);
    shardmap_free(&m);
    return len;
}
