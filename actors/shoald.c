/* shoald.c - the Shoal node daemon: `shoald --config FILE`.
 *
 * Loads the ZPL configuration (docs/OPERATIONS.md), starts the node actor and waits for
 * SIGTERM or SIGINT, then stops it cleanly (exit 0); also once a shard map removed the
 * node from the cluster and its replicas are dropped (exit 0). Exit 1 when the node cannot start or
 * stops on a fatal error, 2 on bad usage or a bad config. Logs go to stderr through zsys. */
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "actors/node.h"
#include "actors/node_config.h"
#include "actors/sched_batch.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: shoald --config FILE\n"
                "  Runs one Shoal node as described by FILE (ZPL, see docs/OPERATIONS.md).\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((streq(argv[i], "--config") || streq(argv[i], "-c")) && i + 1 < argc)
            path = argv[++i];
        else if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (streq(argv[i], "--config") || streq(argv[i], "-c")) {
            fprintf(stderr, "shoald: %s needs a FILE\n", argv[i]);
            return 2;
        } else {
            fprintf(stderr, "shoald: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "shoald: --config FILE is required\n");
        return 2;
    }
    static node_config_t cfg;
    char err[512];
    zsys_init();
    zsys_set_logstream(stderr);
    if (node_config_load(path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "shoald: %s\n", err);
        return 2;
    }
    char ident[32];
    snprintf(ident, sizeof ident, "shoald-%llu", (unsigned long long)cfg.id);
    zsys_set_logident(ident);
    int src = cfg.sched_batch ? shoal_sched_batch() : 0; /* before the first thread */
    if (src)
        zsys_warning("node %llu: cannot use SCHED_BATCH (%s); threads keep the default policy",
                     (unsigned long long)cfg.id, strerror(-src));
    zactor_t *node = zactor_new(node_actor, &cfg);
    char *status = zstr_recv(node);
    int rc = status && streq(status, "READY") ? 0 : 1;
    zstr_free(&status);
    bool left = false;
    while (rc == 0 && !left && !zsys_interrupted) {
        char *msg = zstr_recv(node); /* NULL when a signal interrupts the wait */
        if (msg && streq(msg, "FATAL"))
            rc = 1;
        left = msg && streq(msg, "LEFT");
        zstr_free(&msg);
    }
    /* A second SIGTERM (`shoalctl cluster down` sends one, then another while it waits)
     * would interrupt zactor_destroy's wait for the node actor, and main would tear ZeroMQ
     * down while the actor still closes its engines (dangling sockets, an assert in czmq).
     * The clean stop is bounded (drain waits at most 5 s); SIGKILL still ends it. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    zactor_destroy(&node);
    if (rc == 0)
        zsys_info("node %llu: %s", (unsigned long long)cfg.id,
                  left ? "left the cluster; stopped cleanly" : "stopped cleanly");
    return rc;
}
