/* test_lsm_mapres.c - the bound on mapped table pages (engine/lsm/mapres.h): the tracker
 * admits pages up to its limit and refuses the rest, releases whole tables when the limit
 * shrinks, gives a closed table's charge back; and a real database read through the posix
 * env keeps its mapped pages (the process's RssFile) within the budget while every read
 * still returns the right value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/lsm/lsm.h"
#include "engine/lsm/mapres.h"

#define PG 4096

/* ---- the tracker alone, over fake mappings (no page is touched) ---- */

static int releases;
static uint64_t released_len;

static void fake_release(lsm_file_t *f, uint64_t off, uint64_t len)
{
    (void)f;
    (void)off;
    releases++;
    released_len += len;
}

static lsm_env_t fake_env = {.map_release = fake_release};

static void test_admit_until_limit(void **state)
{
    (void)state;
    lsm_mapres_t *mr = lsm_mapres_new(4 * PG);
    lsm_mapped_t a, b;
    char *base = aligned_alloc(PG, 16 * PG); /* only its addresses are used */
    assert_int_equal(lsm_mapped_init(&a, mr, &fake_env, NULL, base, 8 * PG), 0);
    assert_int_equal(lsm_mapped_init(&b, mr, &fake_env, NULL, base + 8 * PG, 8 * PG), 0);
    assert_true(lsm_mapped_admit(&a, base, 100));           /* page 0 */
    assert_true(lsm_mapped_admit(&a, base + 10, 100));      /* page 0 again: no charge */
    assert_true(lsm_mapped_admit(&a, base + PG - 50, 100)); /* pages 0 and 1 */
    assert_true(lsm_mapped_admit(&b, base + 8 * PG, 1));    /* b's page 0 */
    lsm_mapres_stats_t st;
    lsm_mapres_stats(mr, &st);
    assert_int_equal(st.resident, 3 * PG);
    assert_true(lsm_mapped_admit(&b, base + 9 * PG, 1));   /* the fourth page: full */
    assert_false(lsm_mapped_admit(&b, base + 10 * PG, 1)); /* no room: pread */
    assert_false(lsm_mapped_admit(&a, base + 5 * PG, 1));
    assert_true(lsm_mapped_admit(&a, base, 1)); /* admitted pages stay usable */
    lsm_mapres_stats(mr, &st);
    assert_int_equal(st.resident, 4 * PG);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.releases, 0);
    lsm_mapped_fini(&a); /* its two pages go back */
    lsm_mapres_stats(mr, &st);
    assert_int_equal(st.resident, 2 * PG);
    assert_true(lsm_mapped_admit(&b, base + 10 * PG, 2 * PG)); /* pages 10, 11 (12 untouched) */
    assert_false(lsm_mapped_admit(&b, base + 12 * PG, 1));
    lsm_mapped_fini(&b);
    lsm_mapres_stats(mr, &st);
    assert_int_equal(st.resident, 0);
    lsm_mapres_destroy(&mr);
    free(base);
}

static void test_shrink_releases(void **state)
{
    (void)state;
    releases = 0;
    released_len = 0;
    lsm_mapres_t *mr = lsm_mapres_new(8 * PG);
    lsm_mapped_t t[3];
    char *base = aligned_alloc(PG, 12 * PG);
    for (int i = 0; i < 3; i++)
        assert_int_equal(lsm_mapped_init(&t[i], mr, &fake_env, NULL, base + 4 * PG * i, 4 * PG), 0);
    for (int i = 0; i < 3; i++) /* 2 + 2 + 2 pages */
        assert_true(lsm_mapped_admit(&t[i], base + 4 * PG * i, 2 * PG));
    lsm_mapres_set_limit(mr, 3 * PG); /* the memtables grew: 6 pages must fit in 3 */
    lsm_mapres_stats_t st;
    lsm_mapres_stats(mr, &st);
    assert_true(st.resident <= 3 * PG);
    assert_int_equal(st.releases, 2); /* whole tables, in order, until it fits */
    assert_int_equal(releases, 2);
    assert_int_equal(released_len, 8 * PG);
    assert_true(lsm_mapped_admit(&t[2], base + 8 * PG, 1)); /* still admitted */
    assert_true(lsm_mapped_admit(&t[0], base, 1));          /* re-admitted within the limit */
    assert_false(lsm_mapped_admit(&t[1], base + 4 * PG, 1));
    lsm_mapres_set_limit(mr, 0); /* nothing may stay */
    lsm_mapres_stats(mr, &st);
    assert_int_equal(st.resident, 0);
    for (int i = 0; i < 3; i++)
        lsm_mapped_fini(&t[i]);
    lsm_mapres_destroy(&mr);
    free(base);
}

/* A table outside any tracker is always admitted (LSM_MMAP_UNBOUNDED). */
static void test_untracked(void **state)
{
    (void)state;
    lsm_mapped_t m;
    char *base = aligned_alloc(PG, PG);
    assert_int_equal(lsm_mapped_init(&m, NULL, &fake_env, NULL, base, PG), 0);
    assert_true(lsm_mapped_admit(&m, base, PG));
    lsm_mapped_fini(&m);
    free(base);
}

/* ---- a database on disk ---- */

static double rss_file_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssFile: %lf", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb / 1024;
}

static void key_of(char *k, unsigned i)
{
    snprintf(k, 17, "%016u", i);
}

static void val_of(char *v, unsigned i)
{
    memset(v, 'a' + (char)(i % 26), 100);
    memcpy(v, &i, sizeof i);
}

/* 60,000 keys (~7 MiB of tables) under a 4 MiB budget: the mapping holds at most its share
 * however many pages the random reads touch, blocks past it come from pread, and every value
 * is right. */
static void test_db_bounded(void **state)
{
    (void)state;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/lsm-mapres-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    lsm_destroy(dir, NULL);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    o.memory_budget = 4u << 20;
    o.write_buffer_size = 1u << 20;
    lsm_t *db;
    char err[256], k[17], v[100];
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    const unsigned n = 60000;
    for (unsigned i = 0; i < n; i++) {
        key_of(k, i);
        val_of(v, i);
        assert_int_equal(lsm_put(db, NULL, k, 16, v, 100), 0);
    }
    assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
    double before = rss_file_mib();
    uint64_t s = 88172645463325252ULL;
    for (unsigned r = 0; r < 3 * n; r++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        unsigned i = (unsigned)(s % n);
        key_of(k, i);
        val_of(v, i);
        void *got = NULL;
        size_t len = 0;
        assert_int_equal(lsm_get(db, NULL, k, 16, &got, &len), 0);
        assert_int_equal(len, 100);
        assert_memory_equal(got, v, 100);
        free(got);
    }
    lsm_stats_t st;
    lsm_stats(db, &st);
    double grew = rss_file_mib() - before;
    print_message("tables %.1f MiB, mapped %.2f MiB, RssFile +%.2f MiB, refused %llu, cache %.2f\n",
                  (double)st.total_table_bytes / 1048576, (double)st.map_resident / 1048576, grew,
                  (unsigned long long)st.map_refused, (double)st.cache_capacity / 1048576);
    assert_true(st.map_resident <= (4u << 20) - st.memtable_bytes);
    if (st.map_resident > 0) {           /* the kernel maps one page per fault here (env_posix.c) */
        assert_true(st.map_refused > 0); /* the tables are larger than the share */
        assert_true(grew <= (double)st.map_resident / 1048576 + 0.5);
    } else {
        print_message("no page-per-fault mapping here: every table read with pread\n");
    }
    lsm_close(&db);
    lsm_destroy(dir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_until_limit),
        cmocka_unit_test(test_shrink_releases),
        cmocka_unit_test(test_untracked),
        cmocka_unit_test(test_db_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
