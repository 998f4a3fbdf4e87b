/* split_scanner.c - scans and batches through add-shard splits, for
 * tests/integration/cluster_split.sh: keeps LANES requests in flight on one pipelined
 * libshoal connection, each lane alternating a scan over prefix "m" (every shard, up to
 * 500 keys) and a batch of two puts ("b<lane>-<n>-0" and "-1", usually on different
 * shards), until the file STOP exists; then reads every acknowledged batch key back.
 *
 *   split_scanner BROKER STOP LANES    exit 0: no scan or batch failed, every
 *                                      acknowledged batch key reads back
 *
 * A split that changes the shards while a scan or batch is divided among them makes the
 * broker end it with SHOAL_ERR_MAP_CHANGED; libshoal retries those whole, so none may
 * reach this program. Prints one summary line and the first failures. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/shoal.h"

typedef struct {
    struct scanner_t *sc;
    unsigned lane, n;
    bool scan;
    char key[2][32], val[32];
} lane_t;

typedef struct scanner_t {
    shoal_t *s;
    size_t scans, batches, failed, lost;
    char (*acked)[32];
    size_t n_acked, cap;
    bool stopping;
} scanner_t;

static void submit(lane_t *l);

static void remember(scanner_t *sc, const char *key)
{
    if (sc->n_acked == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 4096;
        if (!(sc->acked = realloc(sc->acked, sc->cap * sizeof *sc->acked))) {
            fprintf(stderr, "split_scanner: out of memory\n");
            exit(2);
        }
    }
    snprintf(sc->acked[sc->n_acked++], 32, "%s", key);
}

static void done(shoal_result_t *r, void *arg)
{
    lane_t *l = arg;
    scanner_t *sc = l->sc;
    if (r->status != SHOAL_STATUS_OK) {
        if (sc->failed++ < 5)
            fprintf(stderr, "split_scanner: %s failed: %s: %s\n", l->scan ? "scan" : "batch",
                    shoal_status_str(r->status), r->error);
    } else if (l->scan) {
        sc->scans++;
    } else {
        sc->batches++;
        remember(sc, l->key[0]);
        remember(sc, l->key[1]);
    }
    if (!sc->stopping)
        submit(l);
}

static void submit(lane_t *l)
{
    l->scan = !l->scan;
    shoal_op_t op = {.type = l->scan ? SHOAL_OP_SCAN : SHOAL_OP_BATCH};
    shoal_batch_op_t ops[2];
    if (l->scan) {
        op.prefix = "m";
        op.prefix_len = 1;
        op.limit = 500;
    } else {
        l->n++;
        snprintf(l->val, sizeof l->val, "bv-%u-%u", l->lane, l->n);
        for (int i = 0; i < 2; i++) {
            snprintf(l->key[i], sizeof l->key[i], "b%u-%u-%d", l->lane, l->n, i);
            ops[i] = (shoal_batch_op_t){false, l->key[i], strlen(l->key[i]), l->val,
                                        strlen(l->val)};
        }
        op.ops = ops;
        op.n_ops = 2;
    }
    if (shoal_submit(l->sc->s, &op, done, l) != 0)
        l->sc->failed++;
}

typedef struct {
    scanner_t *sc;
    const char *key;
} check_t;

static void get_done(shoal_result_t *r, void *arg)
{
    check_t *c = arg;
    if (r->status != SHOAL_STATUS_OK || !r->found) {
        if (c->sc->lost++ < 5)
            fprintf(stderr, "split_scanner: acknowledged batch key %s reads back as %s (shard %u)\n",
                    c->key, r->status == SHOAL_STATUS_OK ? "missing" : shoal_status_str(r->status),
                    r->shard);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[3]) < 1 || atoi(argv[3]) > 256) {
        fprintf(stderr, "usage: split_scanner BROKER STOP-FILE LANES(1..256)\n");
        return 2;
    }
    static scanner_t sc;
    static lane_t lanes[256];
    unsigned n = (unsigned)atoi(argv[3]);
    if (!(sc.s = shoal_connect(argv[1]))) {
        fprintf(stderr, "split_scanner: cannot connect to %s\n", argv[1]);
        return 2;
    }
    shoal_set_timeout(sc.s, 15000);
    for (unsigned i = 0; i < n; i++) {
        lanes[i] = (lane_t){.sc = &sc, .lane = i, .scan = i % 2 == 0};
        submit(&lanes[i]);
    }
    while (access(argv[2], F_OK) != 0)
        shoal_pump(sc.s, 100);
    sc.stopping = true;
    while (shoal_inflight(sc.s))
        shoal_pump(sc.s, 100);
    check_t *checks = calloc(sc.n_acked ? sc.n_acked : 1, sizeof *checks);
    if (!checks)
        return 2;
    for (size_t i = 0; i < sc.n_acked; i++) {
        checks[i] = (check_t){&sc, sc.acked[i]};
        shoal_op_t op = {.type = SHOAL_OP_GET, .key = sc.acked[i], .key_len = strlen(sc.acked[i])};
        while (shoal_submit(sc.s, &op, get_done, &checks[i]) != 0)
            shoal_pump(sc.s, 10);
    }
    while (shoal_inflight(sc.s))
        shoal_pump(sc.s, 100);
    printf("split_scanner: %zu scans and %zu batches ok, %zu failed; %zu batch keys read back, "
           "%zu missing\n",
           sc.scans, sc.batches, sc.failed, sc.n_acked - sc.lost, sc.lost);
    shoal_destroy(&sc.s);
    free(checks);
    free(sc.acked);
    return sc.failed || sc.lost || sc.scans == 0 || sc.batches == 0 ? 1 : 0;
}
