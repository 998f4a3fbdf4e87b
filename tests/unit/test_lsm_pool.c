/* test_lsm_pool.c - engines sharing background threads (engine/lsm/pool.h): many engines
 * written at once on one pool worker keep every key, flush and compact, and start no thread
 * of their own; engines closed while their work is queued or running lose nothing; bad
 * pool sizes are refused. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/lsm/env.h"
#include "engine/lsm/lsm.h"
#include "engine/lsm/pool.h"

#define NDB 6
#define NKEYS 12000

typedef struct {
    lsm_env_t *env;
    lsm_pool_t *pool;
    lsm_options_t o[NDB];
    char dir[NDB][32];
    lsm_t *db[NDB];
} fx_t;

static int threads_of_process(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void open_all(fx_t *f, lsm_pool_t *pool)
{
    char err[256];
    for (int i = 0; i < NDB; i++) {
        lsm_options_init(&f->o[i]);
        snprintf(f->dir[i], sizeof f->dir[i], "/mem/db%d", i);
        f->o[i].env = f->env;
        f->o[i].dir = f->dir[i];
        f->o[i].write_buffer_size = 64 << 10;
        f->o[i].target_file_size = 64 << 10;
        f->o[i].max_bytes_level1 = 256 << 10;
        f->o[i].block_size = 1024;
        f->o[i].disable_wal = i % 3 == 2; /* close must flush through the pool */
        f->o[i].pool = pool;
        assert_int_equal(lsm_open(&f->o[i], &f->db[i], err, sizeof err), 0);
    }
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->env = lsm_env_mem_new();
    assert_int_equal(lsm_pool_new(1, &f->pool), 0);
    open_all(f, f->pool);
    *state = f;
    return 0;
}

static void close_all(fx_t *f)
{
    for (int i = 0; i < NDB; i++)
        lsm_close(&f->db[i]);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    close_all(f);
    lsm_pool_destroy(&f->pool);
    assert_null(f->pool);
    lsm_env_mem_destroy(&f->env);
    free(f);
    return 0;
}

static void key_of(int db, int i, char *k)
{
    snprintf(k, 17, "k%02d-%011d", db, (int)((uint32_t)i * 2654435761u % 100000000u));
}

static void value_of(int i, char *v)
{
    memset(v, 'a' + i % 26, 100);
    snprintf(v, 100, "v%d", i);
}

typedef struct {
    lsm_t *db;
    int idx;
} writer_t;

static void *write_keys(void *arg)
{
    writer_t *w = arg;
    char k[17], v[100];
    for (int i = 0; i < NKEYS; i++) {
        key_of(w->idx, i, k);
        value_of(i, v);
        if (lsm_put(w->db, NULL, k, 16, v, sizeof v) != 0)
            return (void *)1;
    }
    return NULL;
}

static void write_all_at_once(fx_t *f)
{
    pthread_t t[NDB];
    writer_t w[NDB];
    for (int i = 0; i < NDB; i++) {
        w[i] = (writer_t){f->db[i], i};
        assert_int_equal(pthread_create(&t[i], NULL, write_keys, &w[i]), 0);
    }
    for (int i = 0; i < NDB; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
}

static void check_all(fx_t *f)
{
    char k[17], v[100];
    for (int d = 0; d < NDB; d++)
        for (int i = 0; i < NKEYS; i++) {
            void *got = NULL;
            size_t len = 0;
            key_of(d, i, k);
            value_of(i, v);
            assert_int_equal(lsm_get(f->db[d], NULL, k, 16, &got, &len), 0);
            assert_int_equal(len, sizeof v);
            assert_memory_equal(got, v, sizeof v);
            free(got);
        }
}

/* Six engines written at once share one worker: each flushes and compacts, every key
 * reads back, and the process runs no thread per engine. */
static void test_shared_worker_serves_every_engine(void **state)
{
    fx_t *f = *state;
    assert_int_equal(lsm_pool_threads(f->pool), 1);
    assert_int_equal(threads_of_process(), 2); /* main + the pool's worker, for six engines */
    write_all_at_once(f);
    for (int d = 0; d < NDB; d++) { /* wait for the queued work, then look at what ran */
        assert_int_equal(lsm_compact_range(f->db[d], NULL, 0, NULL, 0), 0);
        lsm_stats_t s;
        lsm_stats(f->db[d], &s);
        assert_true(s.flushes >= 10); /* ~1.4 MiB through 64 KiB memtables */
        assert_true(s.compactions >= 1);
        assert_int_equal(s.background_error, 0);
        int l0 = s.files[0];
        assert_int_equal(l0, 0); /* compact_range moved everything down */
    }
    check_all(f);
    assert_int_equal(threads_of_process(), 2);
}

/* Engines closed with their work queued or running keep everything: reopened without
 * the pool, every key is there (the engines without a WAL flushed at close). */
static void test_close_with_work_pending(void **state)
{
    fx_t *f = *state;
    write_all_at_once(f);
    close_all(f); /* right away: memtables and compactions are still queued */
    open_all(f, NULL);
    check_all(f);
    close_all(f);
    open_all(f, f->pool); /* teardown closes these */
    check_all(f);
}

/* Background work continues for the engines still open after others closed. */
static void test_close_some_keep_others(void **state)
{
    fx_t *f = *state;
    write_all_at_once(f);
    for (int d = 0; d < NDB; d += 2)
        lsm_close(&f->db[d]);
    for (int d = 1; d < NDB; d += 2) {
        assert_int_equal(lsm_flush(f->db[d]), 0);
        lsm_stats_t s;
        lsm_stats(f->db[d], &s);
        assert_true(s.flushes >= 10);
    }
    char err[256];
    for (int d = 0; d < NDB; d += 2)
        assert_int_equal(lsm_open(&f->o[d], &f->db[d], err, sizeof err), 0);
    check_all(f);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    lsm_pool_t *p = (lsm_pool_t *)&p; /* not NULL: a refusal must clear it */
    assert_int_equal(lsm_pool_new(0, &p), SHOAL_EINVAL);
    assert_null(p);
    assert_int_equal(lsm_pool_new(65, &p), SHOAL_EINVAL);
    assert_null(p);
    assert_int_equal(lsm_pool_new(3, &p), 0);
    assert_int_equal(lsm_pool_threads(p), 3);
    lsm_pool_destroy(&p);
    lsm_pool_destroy(&p); /* NULL: nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shared_worker_serves_every_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_work_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_some_keep_others, setup, teardown),
        cmocka_unit_test(test_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
