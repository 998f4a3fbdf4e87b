/* fuzz_broker_config.c - fuzz target for the broker's configuration decoder
 * (broker/broker_config.c): any text must be accepted with every value in range, or
 * refused with a one-line reason; never a crash. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    broker_config_t *cfg = malloc(sizeof *cfg);
    char err[512] = "";
    if (broker_config_parse(text, cfg, err, sizeof err) == 0) {
        assert(cfg->n_nodes >= 1 && cfg->n_nodes <= BROKER_MAX_NODES);
        assert(cfg->replicas >= 1 && cfg->replicas <= cfg->n_nodes);
        assert(cfg->shards >= 1 && cfg->vnodes >= 1);
        assert(cfg->client_endpoint[0] && cfg->pub_endpoint[0]);
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
        "broker\n    client_endpoint = \"tcp://127.0.0.1:7000\"\n    pub_endpoint = "
        "\"tcp://127.0.0.1:7001\"\n    request_timeout_ms = 5000\ncluster\n    shards = 4\n"
        "    replicas = 1\n    vnodes = 64\n    nodes\n        0\n            endpoint = "
        "\"tcp://127.0.0.1:7100\"\n            pub_endpoint = \"tcp://127.0.0.1:7101\"\n",
        "cluster\n    replicas = 2\n    nodes\n        0\n            endpoint = \"tcp://a:1\"\n"
        "            pub_endpoint = \"tcp://b:2\"\n        1\n            endpoint = "
        "\"tcp://c:3\"\n"
        "            pub_endpoint = \"tcp://d:4\"\nbroker\n    max_scan = 10\n    log_level = "
        "\"debug\"\n",
    };
    const char *s = seeds[i % 2];
    size_t n = strlen(s);
    if (n > cap)
        return 0;
    memcpy(buf, s, n);
    return n;
}
