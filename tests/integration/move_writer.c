/* move_writer.c - a pipelined writer for tests/integration/cluster_move.sh: keeps LANES
 * puts in flight through one libshoal connection (each key written once, "m<lane>-<n>" =
 * "value-<lane>-<n>") until the file STOP exists, remembers every acknowledged key, then
 * reads each one back with linearizable gets and reports any that is missing or differs.
 *
 *   move_writer BROKER STOP LANES      exit 0: every acknowledged write is readable
 *
 * Writes that fail (timeout, unavailable) are counted, not retried: whether they applied
 * is unknown, so they are not part of the check. Prints one summary line. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/shoal.h"

typedef struct writer_t writer_t;

typedef struct {
    char key[32], val[48];
    writer_t *w; /* set for the read-back */
    int tries;
} kv_t;

struct writer_t {
    shoal_t *s;
    kv_t *acked;
    size_t n_acked, cap;
    size_t failed, lost, checked;
    unsigned next[SHOAL_MAX_INFLIGHT];
    kv_t inflight[SHOAL_MAX_INFLIGHT];
    bool stopping;
};

typedef struct {
    writer_t *w;
    unsigned lane;
} lane_t;

static void submit_put(writer_t *w, lane_t *l);

static void put_done(shoal_result_t *r, void *arg)
{
    lane_t *l = arg;
    writer_t *w = l->w;
    kv_t *kv = &w->inflight[l->lane];
    if (r->status == SHOAL_STATUS_OK) {
        if (w->n_acked == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->acked = realloc(w->acked, w->cap * sizeof *w->acked);
            if (!w->acked) {
                fprintf(stderr, "move_writer: out of memory\n");
                exit(2);
            }
        }
        w->acked[w->n_acked++] = *kv;
    } else {
        w->failed++;
    }
    if (!w->stopping)
        submit_put(w, l);
}

static void submit_put(writer_t *w, lane_t *l)
{
    kv_t *kv = &w->inflight[l->lane];
    unsigned n = ++w->next[l->lane];
    snprintf(kv->key, sizeof kv->key, "m%u-%u", l->lane, n);
    snprintf(kv->val, sizeof kv->val, "value-%u-%u", l->lane, n);
    shoal_op_t op = {.type = SHOAL_OP_PUT};
    op.key = kv->key;
    op.key_len = strlen(kv->key);
    op.value = kv->val;
    op.value_len = strlen(kv->val);
    if (shoal_submit(w->s, &op, put_done, l) != 0)
        w->failed++;
}

static void submit_get(writer_t *w, kv_t *kv);

static void get_done(shoal_result_t *r, void *arg)
{
    kv_t *kv = arg;
    writer_t *w = kv->w;
    bool retry = r->status == SHOAL_STATUS_UNAVAILABLE || r->status == SHOAL_STATUS_TIMEOUT;
    if (retry && ++kv->tries < 5) {
        submit_get(w, kv);
        return;
    }
    w->checked++;
    if (r->status != SHOAL_STATUS_OK || !r->found || r->value_len != strlen(kv->val) ||
        memcmp(r->value, kv->val, r->value_len)) {
        if (w->lost < 5)
            fprintf(stderr, "move_writer: acknowledged %s=%s reads back as %s\n", kv->key, kv->val,
                    shoal_status_str(r->status));
        w->lost++;
    }
}

static void submit_get(writer_t *w, kv_t *kv)
{
    shoal_op_t op = {.type = SHOAL_OP_GET};
    op.key = kv->key;
    op.key_len = strlen(kv->key);
    while (shoal_submit(w->s, &op, get_done, kv) != 0)
        shoal_pump(w->s, 10);
}

/* Reads every acknowledged key back with linearizable gets, 512 in flight. */
static void verify(writer_t *w)
{
    for (size_t i = 0; i < w->n_acked; i++) {
        w->acked[i].w = w;
        while (shoal_inflight(w->s) >= 512)
            shoal_pump(w->s, 10);
        submit_get(w, &w->acked[i]);
    }
    while (shoal_inflight(w->s))
        shoal_pump(w->s, 100);
}

int main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[3]) < 1 || atoi(argv[3]) > 1024) {
        fprintf(stderr, "usage: move_writer BROKER STOP-FILE LANES(1..1024)\n");
        return 2;
    }
    static writer_t w;
    static lane_t lanes[SHOAL_MAX_INFLIGHT];
    unsigned n = (unsigned)atoi(argv[3]);
    w.s = shoal_connect(argv[1]);
    if (!w.s) {
        fprintf(stderr, "move_writer: cannot connect to %s\n", argv[1]);
        return 2;
    }
    shoal_set_timeout(w.s, 15000);
    for (unsigned i = 0; i < n; i++) {
        lanes[i] = (lane_t){&w, i};
        submit_put(&w, &lanes[i]);
    }
    while (access(argv[2], F_OK) != 0)
        shoal_pump(w.s, 50);
    w.stopping = true;
    while (shoal_inflight(w.s))
        shoal_pump(w.s, 100);
    verify(&w);
    printf("move_writer: %zu writes acknowledged (%zu failed, not counted), %zu read back, %zu "
           "lost\n",
           w.n_acked, w.failed, w.checked - w.lost, w.lost);
    shoal_destroy(&w.s);
    free(w.acked);
    return w.lost || w.n_acked == 0 ? 1 : 0;
}
