/* shoal_broker.c - the shoal-broker daemon: `shoal-broker --config FILE`.
 * Reads the ZPL config, serves until SIGTERM or SIGINT (czmq's handler sets
 * zsys_interrupted), exits 0 on a clean stop, 2 on a bad command line or config and 1
 * when the endpoints cannot be bound. Logs go to stderr through zsys. */
#include <stdio.h>
#include <string.h>

#include "actors/sched_batch.h"
#include "broker/broker.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: shoal-broker --config FILE\n"
                "Routes client requests to shard leaders, fans out change streams and\n"
                "serves the admin service. Keys: docs/OPERATIONS.md.\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--config")) {
            fprintf(stderr, "shoal-broker: --config needs a FILE\n");
            return 2;
        } else {
            fprintf(stderr, "shoal-broker: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "shoal-broker: --config FILE is required\n");
        return 2;
    }
    broker_config_t cfg;
    char err[512];
    if (broker_config_load(path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "shoal-broker: %s\n", err);
        return 2;
    }
    zsys_init();
    zsys_set_logident("shoal-broker");
    zsys_set_logstream(stderr);                          /* CONTRACTS: logs on stderr */
    int src = cfg.sched_batch ? shoal_sched_batch() : 0; /* before the first thread */
    if (src)
        zsys_warning("broker: cannot use SCHED_BATCH (%s); threads keep the default policy",
                     strerror(-src));
    broker_t *b = broker_new(&cfg, err, sizeof err);
    if (!b) {
        fprintf(stderr, "shoal-broker: %s\n", err);
        return 1;
    }
    broker_run(b, NULL);
    broker_destroy(&b);
    return 0;
}
