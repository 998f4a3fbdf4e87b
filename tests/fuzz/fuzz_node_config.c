/* fuzz_node_config.c - fuzz target for shoald's configuration decoder (actors/node_config.c
 * over the ZPL reader actors/zpl.c): any text must be accepted with every value in range,
 * or refused with a one-line reason; never a crash. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "actors/node_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    node_config_t *cfg = malloc(sizeof *cfg);
    char err[512] = "";
    if (node_config_parse(text, cfg, err, sizeof err) == 0) {
        assert(cfg->n_nodes >= 1 && cfg->n_nodes <= NODE_MAX_NODES);
        assert(cfg->replicas >= 1 && cfg->shards >= 1 && cfg->vnodes >= 1);
        assert(cfg->endpoint[0] && cfg->pub_endpoint[0] && cfg->data_dir[0]);
        assert(cfg->tick_ms >= 1 && cfg->heartbeat_ticks < cfg->election_ticks);
    } else {
        assert(err[0] != '\0' && strchr(err, '\n') == NULL);
    }
    free(cfg);
    free(text);
    return 0;
}

size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    static const char *seeds[] = {
        "node\n    id = 1\n    endpoint = \"tcp://127.0.0.1:7110\"\n    pub_endpoint = "
        "\"tcp://127.0.0.1:7111\"\n    data_dir = \"/tmp/x/node-1\"\nraft\n    tick_ms = 5\n"
        "    election_ticks = 30\n    heartbeat_ticks = 3\nstorage\n    fsync = \"never\"\n"
        "cluster\n    id = 1f2e3d4c\n    shards = 4\n    replicas = 3\n    nodes\n        0\n"
        "            endpoint = \"tcp://127.0.0.1:7100\"\n        1\n"
        "            endpoint = \"tcp://127.0.0.1:7110\"\n        2\n"
        "            endpoint = \"tcp://127.0.0.1:7120\"\n",
        "node = \"\"\n    id = \"7\"\n    join = \"1\"\n    endpoint = \"tcp://*:7170\"\n"
        "    pub_endpoint = \"tcp://*:7171\"\n    data_dir = \"d\"\n    # a comment\n"
        "raft = \"\"\n    read_mode = \"lease\"\n    max_clock_drift_ms = 5\n"
        "cluster = \"\"\n    nodes = \"\"\n        0 = \"\"\n"
        "            endpoint = \"tcp://h:1\"\n            pub_endpoint = \"tcp://h:2\"\n",
    };
    const char *s = seeds[i % 2];
    size_t n = strlen(s);
    if (n > cap)
        return 0;
    memcpy(buf, s, n);
    return n;
}
