/* test_lsm_model.c - randomized model test of the storage engine: thousands of random
 * puts, deletes, batches, point reads, forward and backward iterations (with bounds),
 * snapshots, flushes, compactions, reopens and export/ingest round trips, each checked
 * against an in-memory model of what the store must hold.
 *
 * Runs on the in-memory env with tiny buffers so flushes and compactions happen often.
 * Seed: LSM_SEED=<n> replays a run (printed at start and on failure); LSM_OPS=<n> sets the
 * length. The `slow` variant (argument "long") runs 10x longer on the POSIX env. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/lsm/env.h"
#include "engine/lsm/lsm.h"
#include "engine/lsm/pool.h"

#define NKEYS 1500
#define MAXV 300

typedef struct {
    bool present[NKEYS];
    char *val[NKEYS];
    size_t vlen[NKEYS];
} model_t;

static uint64_t rs;
static uint64_t seed;
static long nops = 20000;
static bool use_posix;
static bool trace; /* LSM_TRACE=1: print every operation (to find the one that broke) */
static char posix_dir[256];

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "model test failed (replay: LSM_SEED=%llu): ",                 \
                    (unsigned long long)seed);                                             \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

static void key_of(int i, char *buf)
{
    snprintf(buf, 16, "k%05d", i);
}

static void model_set(model_t *m, int i, const char *v, size_t n)
{
    free(m->val[i]);
    m->val[i] = NULL;
    m->present[i] = v != NULL;
    if (v) {
        m->val[i] = malloc(n + 1);
        memcpy(m->val[i], v, n);
        m->vlen[i] = n;
    }
}

static void model_copy(model_t *dst, const model_t *src)
{
    for (int i = 0; i < NKEYS; i++)
        model_set(dst, i, src->present[i] ? src->val[i] : NULL, src->vlen[i]);
}

static void model_free(model_t *m)
{
    for (int i = 0; i < NKEYS; i++)
        free(m->val[i]);
    memset(m, 0, sizeof *m);
}

static size_t rand_value(char *buf, int key)
{
    size_t n = rnd() % MAXV;
    for (size_t j = 0; j < n; j++)
        buf[j] = (char)('a' + (rnd() + (uint64_t)key) % 26);
    return n;
}

typedef struct {
    lsm_env_t *env;
    lsm_pool_t *pool; /* NULL: the engine's own background thread */
    lsm_options_t o;
    lsm_t *db;
    char dir[512];
} fixture_t;

static void open_db(fixture_t *f)
{
    char err[512];
    int rc = lsm_open(&f->o, &f->db, err, sizeof err);
    CHECK(rc == 0, "open: %d %s", rc, err);
}

static void check_get(fixture_t *f, const model_t *m, int i, const lsm_snapshot_t *snap)
{
    char k[16];
    void *v;
    size_t n;
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;
    key_of(i, k);
    int rc = lsm_get(f->db, &ro, k, strlen(k), &v, &n);
    if (!m->present[i]) {
        CHECK(rc == SHOAL_ENOTFOUND, "get %s: want not found, got %d", k, rc);
        return;
    }
    CHECK(rc == 0, "get %s: want value, got %d", k, rc);
    CHECK(n == m->vlen[i] && memcmp(v, m->val[i], n) == 0, "get %s: wrong value", k);
    free(v);
}

static int next_present(const model_t *m, int i, int step, int lo, int hi)
{
    while (i >= lo && i < hi && !m->present[i])
        i += step;
    return (i >= lo && i < hi) ? i : -1;
}

static void check_entry(lsm_iter_t *it, const model_t *m, int want, const char *what)
{
    if (want < 0) {
        CHECK(!lsm_iter_valid(it) && lsm_iter_status(it) == 0, "%s: want end, st=%d", what,
              lsm_iter_status(it));
        return;
    }
    char k[16];
    key_of(want, k);
    CHECK(lsm_iter_valid(it), "%s: want %s, got end (st=%d)", what, k, lsm_iter_status(it));
    size_t kl, vl;
    const void *kk = lsm_iter_key(it, &kl), *vv = lsm_iter_value(it, &vl);
    CHECK(kl == strlen(k) && memcmp(kk, k, kl) == 0, "%s: want key %s, got %.*s", what, k,
          (int)kl, (const char *)kk);
    CHECK(vl == m->vlen[want] && memcmp(vv, m->val[want], vl) == 0, "%s: value of %s", what, k);
}

/* A random walk with an iterator (random bounds, start and moves) checked step by step. */
static void check_iter(fixture_t *f, const model_t *m, const lsm_snapshot_t *snap)
{
    int lo = 0, hi = NKEYS;
    char lk[16], hk[16];
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;
    if (rnd() % 2) {
        lo = (int)(rnd() % NKEYS);
        key_of(lo, lk);
        ro.lower_bound = lk;
        ro.lower_len = strlen(lk);
    }
    if (rnd() % 2) {
        hi = lo + (int)(rnd() % (NKEYS - lo + 1));
        key_of(hi, hk);
        ro.upper_bound = hk;
        ro.upper_len = strlen(hk);
    }
    lsm_iter_t *it;
    CHECK(lsm_iter_new(f->db, &ro, &it) == 0, "iter_new");
    int pos;
    switch (rnd() % 4) {
    case 0:
        lsm_iter_seek_to_first(it);
        pos = next_present(m, lo, 1, lo, hi);
        break;
    case 1:
        lsm_iter_seek_to_last(it);
        pos = next_present(m, hi - 1, -1, lo, hi);
        break;
    case 2: {
        int t = (int)(rnd() % NKEYS);
        char k[16];
        key_of(t, k);
        lsm_iter_seek(it, k, strlen(k));
        pos = next_present(m, t < lo ? lo : t, 1, lo, hi);
        break;
    }
    default: {
        int t = (int)(rnd() % NKEYS);
        char k[16];
        key_of(t, k);
        lsm_iter_seek_for_prev(it, k, strlen(k));
        pos = next_present(m, t >= hi ? hi - 1 : t, -1, lo, hi);
    }
    }
    check_entry(it, m, pos, "seek");
    int steps = (int)(rnd() % 40);
    for (int s = 0; s < steps && pos >= 0; s++) {
        if (rnd() % 3) {
            lsm_iter_next(it);
            pos = next_present(m, pos + 1, 1, lo, hi);
            check_entry(it, m, pos, "next");
        } else {
            lsm_iter_prev(it);
            pos = next_present(m, pos - 1, -1, lo, hi);
            check_entry(it, m, pos, "prev");
        }
    }
    lsm_iter_destroy(&it);
}

static void do_batch(fixture_t *f, model_t *m, char *vbuf)
{
    lsm_batch_t *b = lsm_batch_new();
    int n = 1 + (int)(rnd() % 20);
    for (int j = 0; j < n; j++) {
        int i = (int)(rnd() % NKEYS);
        char k[16];
        key_of(i, k);
        if (rnd() % 4 == 0) {
            lsm_batch_delete(b, k, strlen(k));
            model_set(m, i, NULL, 0);
        } else {
            size_t vn = rand_value(vbuf, i);
            lsm_batch_put(b, k, strlen(k), vbuf, vn);
            model_set(m, i, vbuf, vn);
        }
    }
    lsm_write_options_t wo = {.sync = rnd() % 8 == 0};
    CHECK(lsm_write(f->db, &wo, b) == 0, "write batch");
    lsm_batch_destroy(&b);
}

/* Exports the db into a stream, ingests it into a fresh db, compares both with the model,
 * then ingests into the db itself (content unchanged by construction). */
static void do_export_ingest(fixture_t *f, model_t *m)
{
    lsm_export_t *ex;
    lsm_ingest_t *in;
    CHECK(lsm_export_begin(f->db, NULL, &ex) == 0, "export_begin");
    CHECK(lsm_ingest_begin(f->db, &in) == 0, "ingest_begin");
    char buf[777];
    size_t n;
    do {
        CHECK(lsm_export_read(ex, buf, 1 + rnd() % sizeof buf, &n) == 0, "export_read");
        CHECK(lsm_ingest_write(in, buf, n) == 0, "ingest_write");
    } while (n > 0);
    lsm_export_end(&ex);
    CHECK(lsm_ingest_finish(&in) == 0, "ingest_finish");
    for (int i = 0; i < NKEYS; i += 7)
        check_get(f, m, i, NULL);
}

static void reopen(fixture_t *f)
{
    lsm_close(&f->db);
    open_db(f);
}

static void run(fixture_t *f, long ops)
{
    model_t m = {0}, snapm = {0};
    const lsm_snapshot_t *snap = NULL;
    char *vbuf = malloc(MAXV + 1);
    open_db(f);
    for (long op = 0; op < ops; op++) {
        int r = (int)(rnd() % 1000), i = (int)(rnd() % NKEYS);
        char k[16];
        key_of(i, k);
        if (trace)
            fprintf(stderr, "op %ld: r=%d key=%s\n", op, r, k);
        if (r < 400) {
            size_t vn = rand_value(vbuf, i);
            CHECK(lsm_put(f->db, NULL, k, strlen(k), vbuf, vn) == 0, "put");
            model_set(&m, i, vbuf, vn);
        } else if (r < 500) {
            CHECK(lsm_delete(f->db, NULL, k, strlen(k)) == 0, "delete");
            model_set(&m, i, NULL, 0);
        } else if (r < 560) {
            do_batch(f, &m, vbuf);
        } else if (r < 800) {
            check_get(f, &m, i, NULL);
        } else if (r < 900) {
            check_iter(f, &m, NULL);
        } else if (r < 940) {
            if (snap) {
                check_get(f, &snapm, i, snap);
                check_iter(f, &snapm, snap);
                if (rnd() % 4 == 0)
                    lsm_snapshot_release(f->db, &snap);
            } else {
                snap = lsm_snapshot_new(f->db);
                model_copy(&snapm, &m);
            }
        } else if (r < 960) {
            CHECK(lsm_flush(f->db) == 0, "flush");
        } else if (r < 972) {
            char k2[16];
            int j = i + (int)(rnd() % 300);
            key_of(j, k2);
            int rc = rnd() % 3 ? lsm_compact_range(f->db, k, strlen(k), k2, strlen(k2))
                               : lsm_compact_range(f->db, NULL, 0, NULL, 0);
            CHECK(rc == 0, "compact_range %d", rc);
        } else if (r < 985) {
            if (snap)
                lsm_snapshot_release(f->db, &snap);
            reopen(f);
        } else if (r < 990) {
            if (snap)
                lsm_snapshot_release(f->db, &snap);
            do_export_ingest(f, &m);
        } else {
            lsm_stats_t st;
            lsm_stats(f->db, &st);
            CHECK(st.background_error == 0, "background error %d", st.background_error);
        }
    }
    if (snap)
        lsm_snapshot_release(f->db, &snap);
    for (int i = 0; i < NKEYS; i++)
        check_get(f, &m, i, NULL);
    reopen(f);
    for (int i = 0; i < NKEYS; i++)
        check_get(f, &m, i, NULL);
    lsm_close(&f->db);
    model_free(&m);
    model_free(&snapm);
    free(vbuf);
}

static void setup_fixture(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    lsm_options_init(&f->o);
    if (use_posix) {
        snprintf(f->dir, sizeof f->dir, "%s/model", posix_dir);
        lsm_destroy(f->dir, NULL);
    } else {
        f->env = lsm_env_mem_new();
        snprintf(f->dir, sizeof f->dir, "/mem/model");
    }
    f->o.env = f->env;
    f->o.dir = f->dir;
    f->o.write_buffer_size = 64 << 10;
    f->o.block_size = 512;
    f->o.target_file_size = 64 << 10;
    f->o.max_bytes_level1 = 1 << 20;
    f->o.block_cache_size = 256 << 10;
    f->o.compression = rnd() % 2;
    f->o.disable_wal = rnd() % 4 == 0; /* reopens then rely on close's flush */
    if (rnd() % 3 == 0) /* background work on a shared pool's workers */
        assert_int_equal(lsm_pool_new(1 + (int)((rnd() >> 9) % 2), &f->pool), 0);
    f->o.pool = f->pool;
}

static void test_model(void **state)
{
    fixture_t f;
    setup_fixture(&f);
    fprintf(stderr, "model test: LSM_SEED=%llu ops=%ld compression=%d wal=%d env=%s pool=%d\n",
            (unsigned long long)seed, nops, f.o.compression, !f.o.disable_wal,
            use_posix ? "posix" : "mem", f.pool ? lsm_pool_threads(f.pool) : 0);
    run(&f, nops);
    if (use_posix)
        lsm_destroy(f.dir, NULL);
    lsm_pool_destroy(&f.pool);
    lsm_env_mem_destroy(&f.env);
}

int main(int argc, char **argv)
{
    const char *s = getenv("LSM_SEED"), *o = getenv("LSM_OPS");
    seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (!seed)
        seed = 1;
    rs = seed;
    if (argc > 1 && !strcmp(argv[1], "long")) {
        nops = 60000;
        use_posix = true;
        snprintf(posix_dir, sizeof posix_dir, "%s/lsm-model-%d",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    }
    if (o)
        nops = atol(o);
    trace = getenv("LSM_TRACE") != NULL;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (use_posix)
        rmdir(posix_dir);
    return rc;
}
