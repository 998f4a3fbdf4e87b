/* power_cut_writer.c - the writer and the checker of tests/integration/cluster_power_cut.sh.
 *
 *   power_cut_writer put BROKER PREFIX LANES ACKED     runs until killed
 *   power_cut_writer check BROKER ACKED...             exit 0: every write in ACKED reads back
 *
 * put keeps LANES puts in flight through one libshoal connection, each key written once
 * ("<PREFIX><lane>-<n>" = "v-<PREFIX><lane>-<n>"), and appends "key value\n" to ACKED with
 * one write(2) as soon as the put is acknowledged (so a kill -9 of the writer loses no line
 * of an acknowledged put it had recorded). Failed puts are not recorded (they may or may not
 * have applied). check reads every such file and gets each key back (linearizable gets,
 * 256 in flight; unavailable and timeouts retried for up to 30 s, then 512 such failures
 * end it); it prints one summary
 * line and up to 5 examples, and exits 1 if a write is lost (read back absent or with another
 * value), 2 if one could not be read at all. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "broker/shoal.h"

typedef struct {
    char key[64], val[80];
    int lane;
    unsigned n;
} kv_t;

/* ---- put ----------------------------------------------------------------------------- */

typedef struct {
    shoal_t *s;
    const char *prefix;
    int out;
    kv_t inflight[SHOAL_MAX_INFLIGHT];
    unsigned next[SHOAL_MAX_INFLIGHT];
} writer_t;

static writer_t w;

static void submit_put(int lane);

static void put_done(shoal_result_t *r, void *arg)
{
    kv_t *kv = arg;
    if (r->status == SHOAL_STATUS_OK) {
        char line[160];
        int len = snprintf(line, sizeof line, "%s %s\n", kv->key, kv->val);
        if (write(w.out, line, (size_t)len) != len) {
            perror("power_cut_writer: write");
            exit(2);
        }
    }
    submit_put(kv->lane);
}

static void submit_put(int lane)
{
    kv_t *kv = &w.inflight[lane];
    kv->lane = lane;
    kv->n = ++w.next[lane];
    snprintf(kv->key, sizeof kv->key, "%s%d-%u", w.prefix, lane, kv->n);
    snprintf(kv->val, sizeof kv->val, "v-%s%d-%u", w.prefix, lane, kv->n);
    shoal_op_t op = {.type = SHOAL_OP_PUT};
    op.key = kv->key;
    op.key_len = strlen(kv->key);
    op.value = kv->val;
    op.value_len = strlen(kv->val);
    while (shoal_submit(w.s, &op, put_done, kv) != 0)
        shoal_pump(w.s, 10);
}

static int run_put(const char *broker, const char *prefix, int lanes, const char *acked)
{
    w.prefix = prefix;
    w.out = open(acked, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    w.s = shoal_connect(broker);
    if (w.out < 0 || !w.s) {
        fprintf(stderr, "power_cut_writer: cannot open %s or connect to %s\n", acked, broker);
        return 2;
    }
    shoal_set_timeout(w.s, 5000);
    for (int i = 0; i < lanes; i++)
        submit_put(i);
    while (!zsys_interrupted)
        shoal_pump(w.s, 100);
    shoal_destroy(&w.s);
    close(w.out);
    return 0;
}

/* ---- check --------------------------------------------------------------------------- */

typedef struct {
    kv_t *kv;
    size_t n, cap;
    size_t next, done, lost, unreadable;
    size_t *retry; /* indexes to submit again */
    size_t n_retry;
    int64_t deadline;
    shoal_t *s;
} checker_t;

static checker_t c;

static void get_done(shoal_result_t *r, void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    kv_t *kv = &c.kv[i];
    if ((r->status == SHOAL_STATUS_UNAVAILABLE || r->status == SHOAL_STATUS_TIMEOUT) &&
        zclock_mono() < c.deadline) {
        c.retry[c.n_retry++] = i;
        return;
    }
    c.done++;
    bool found = r->status == SHOAL_STATUS_OK && r->found;
    if (r->status != SHOAL_STATUS_OK && r->status != SHOAL_STATUS_NOT_FOUND) {
        if (c.unreadable++ < 5)
            fprintf(stderr, "unreadable: %s (%s)\n", kv->key, shoal_status_str(r->status));
    } else if (!found || r->value_len != strlen(kv->val) ||
               memcmp(r->value, kv->val, r->value_len) != 0) {
        if (c.lost++ < 5)
            fprintf(stderr, "LOST: acknowledged %s = %s reads back %s\n", kv->key, kv->val,
                    found ? "with another value" : "absent");
    }
}

static void submit_get(size_t i)
{
    shoal_op_t op = {.type = SHOAL_OP_GET};
    op.key = c.kv[i].key;
    op.key_len = strlen(c.kv[i].key);
    while (shoal_submit(c.s, &op, get_done, (void *)(uintptr_t)i) != 0)
        shoal_pump(c.s, 10);
}

static int load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* a writer that never got an acknowledgement */
    char key[64], val[80];
    while (fscanf(f, "%63s %79s", key, val) == 2) {
        if (c.n == c.cap) {
            c.cap = c.cap ? c.cap * 2 : 4096;
            if (!(c.kv = realloc(c.kv, c.cap * sizeof *c.kv)))
                return -1;
        }
        kv_t *kv = &c.kv[c.n++];
        snprintf(kv->key, sizeof kv->key, "%s", key);
        snprintf(kv->val, sizeof kv->val, "%s", val);
    }
    fclose(f);
    return 0;
}

static int run_check(const char *broker, int nfiles, char **files)
{
    for (int i = 0; i < nfiles; i++)
        if (load(files[i]) != 0) {
            fprintf(stderr, "power_cut_writer: out of memory\n");
            return 2;
        }
    c.s = shoal_connect(broker);
    c.retry = calloc(c.n + 1, sizeof *c.retry);
    if (!c.s || !c.retry) {
        fprintf(stderr, "power_cut_writer: cannot connect to %s\n", broker);
        return 2;
    }
    shoal_set_timeout(c.s, 3000);
    c.deadline = zclock_mono() + 30000;
    while (c.done < c.n) {
        if (c.unreadable >= 512) { /* past the deadline and still nothing: the rest too */
            fprintf(stderr, "giving up: %zu more not read\n", c.n - c.done);
            c.unreadable += c.n - c.done;
            c.done = c.n;
            break;
        }
        while (c.next < c.n && shoal_inflight(c.s) < 256)
            submit_get(c.next++);
        if (c.n_retry && shoal_inflight(c.s) == 0) {
            zclock_sleep(200); /* an election after the restart: ask again a little later */
            size_t k = c.n_retry;
            c.n_retry = 0;
            for (size_t j = 0; j < k; j++)
                submit_get(c.retry[j]);
        }
        shoal_pump(c.s, 50);
    }
    printf("acknowledged writes checked: %zu, read back: %zu, lost: %zu, unreadable: %zu\n", c.n,
           c.n - c.lost - c.unreadable, c.lost, c.unreadable);
    shoal_destroy(&c.s);
    free(c.kv);
    free(c.retry);
    return c.lost ? 1 : c.unreadable ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "put") == 0 && atoi(argv[4]) >= 1 &&
        atoi(argv[4]) <= SHOAL_MAX_INFLIGHT)
        return run_put(argv[2], argv[3], atoi(argv[4]), argv[5]);
    if (argc >= 4 && strcmp(argv[1], "check") == 0)
        return run_check(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: power_cut_writer put BROKER PREFIX LANES ACKED\n"
                    "       power_cut_writer check BROKER ACKED...\n");
    return 2;
}
