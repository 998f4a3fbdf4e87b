/* test_lsm_corrupt.c - corruption tests: flip bytes in each kind of file the engine writes
 * (tables: data block, index, footer, a compressed table's dictionary; WAL: middle and last record; MANIFEST; CURRENT) and
 * check the engine answers with SHOAL_ECORRUPT and a message naming the file (and the
 * offset), or drops only a torn last WAL record, and never returns a wrong value. */
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
#include "engine/lsm/env.h"
#include "engine/lsm/lsm.h"

#define N 3000

typedef struct {
    lsm_env_t *env;
    bool posix;
    char dir[256];
    lsm_options_t o;
    char found[64];
} fx_t;

static fx_t *fixture(bool posix)
{
    fx_t *f = calloc(1, sizeof *f);
    f->posix = posix;
    f->env = posix ? lsm_env_posix() : lsm_env_mem_new();
    if (posix)
        snprintf(f->dir, sizeof f->dir, "%s/lsm-corrupt-%d",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    else
        snprintf(f->dir, sizeof f->dir, "/c/db");
    lsm_destroy(f->dir, f->env);
    lsm_options_init(&f->o);
    f->o.env = f->env;
    f->o.dir = f->dir;
    f->o.write_buffer_size = 1 << 20;
    f->o.block_size = 1024;
    return f;
}

static int setup(void **state)
{
    *state = fixture(false);
    return 0;
}

/* The POSIX env, tables mapped: the mapped-block path (checksum verified once, remembered)
 * must refuse a damaged block every time, not only the first. */
static int setup_posix(void **state)
{
    fx_t *f = fixture(true);
    f->o.mmap_reads = true;
    *state = f;
    return 0;
}

/* The POSIX env, tables mapped with a budget whose share holds a few pages: most blocks are
 * refused the mapping and read with pread (engine/lsm/mapres.h), a few used in place. */
static int setup_posix_small_map(void **state)
{
    fx_t *f = fixture(true);
    f->o.mmap_reads = LSM_MMAP_UNCOMPRESSED;
    f->o.memory_budget = 1u << 20;
    *state = f;
    return 0;
}

/* The POSIX env, tables read with pread. */
static int setup_posix_pread(void **state)
{
    fx_t *f = fixture(true);
    f->o.mmap_reads = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (f->posix)
        lsm_destroy(f->dir, f->env);
    else
        lsm_env_mem_destroy(&f->env);
    free(f);
    return 0;
}

static void value_of(int i, char *v)
{
    snprintf(v, 64, "value-%06d-padding-padding", i);
}

/* Writes N keys; `flush` puts them in a table, else they stay in the WAL only. */
static void populate(fx_t *f, bool flush)
{
    lsm_t *db;
    char err[256], k[32], v[64];
    assert_int_equal(lsm_open(&f->o, &db, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        value_of(i, v);
        assert_int_equal(lsm_put(db, NULL, k, strlen(k), v, strlen(v)), 0);
    }
    if (flush)
        assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
    lsm_close(&db);
}

static int find_cb(void *arg, const char *name)
{
    fx_t *f = arg;
    const char *part = f->found; /* in: a part of the name wanted; out: the name found */
    if (strstr(name, part)) {
        snprintf(f->found, sizeof f->found, "%s", name);
        return 1;
    }
    return 0;
}

/* Finds a file of the db whose name contains part; returns its path. */
static void find_file(fx_t *f, const char *part, char *path)
{
    snprintf(f->found, sizeof f->found, "%s", part);
    f->env->list(f->env, f->dir, find_cb, f);
    assert_non_null(strstr(f->found, part));
    snprintf(path, 512, "%s/%s", f->dir, f->found);
}

/* Rewrites path with the byte at off (from the end if negative) xor'ed with mask. */
static uint64_t flip(fx_t *f, const char *path, long off, int mask)
{
    lsm_file_t *fl;
    uint64_t size;
    size_t got;
    assert_int_equal(f->env->open(f->env, path, LSM_OPEN_READ, &fl), 0);
    assert_int_equal(f->env->size(fl, &size), 0);
    char *buf = malloc(size);
    assert_int_equal(f->env->pread(fl, 0, buf, size, &got), 0);
    f->env->close(fl);
    uint64_t at = off < 0 ? size + (uint64_t)off : (uint64_t)off;
    buf[at] ^= (char)mask;
    assert_int_equal(f->env->open(f->env, path, LSM_OPEN_WRITE, &fl), 0);
    assert_int_equal(f->env->append(fl, buf, size), 0);
    assert_int_equal(f->env->sync(fl), 0);
    f->env->close(fl);
    free(buf);
    return at;
}

static void expect_open_corrupt(fx_t *f, const char *name_part)
{
    lsm_t *db;
    char err[512];
    assert_int_equal(lsm_open(&f->o, &db, err, sizeof err), SHOAL_ECORRUPT);
    assert_null(db);
    if (!strstr(err, name_part))
        fail_msg("error '%s' does not name '%s'", err, name_part);
}

/* Reads every key: each is the right value or an error, never a wrong value; returns the
 * number of errors seen, and checks the message names the table and an offset. */
static int read_all(fx_t *f, lsm_t *db, const char *table)
{
    int errors = 0;
    char k[32], v[64], msg[512];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        value_of(i, v);
        void *got;
        size_t n;
        int rc = lsm_get(db, NULL, k, strlen(k), &got, &n);
        if (rc == 0) {
            assert_int_equal(n, strlen(v));
            assert_memory_equal(got, v, n);
            free(got);
            continue;
        }
        assert_int_equal(rc, SHOAL_ECORRUPT);
        lsm_last_error(db, msg, sizeof msg);
        assert_non_null(strstr(msg, table));
        assert_non_null(strstr(msg, "offset"));
        errors++;
    }
    return errors;
}

static void test_table_data_block(void **state)
{
    fx_t *f = *state;
    char path[512];
    populate(f, true);
    find_file(f, ".sst", path);
    flip(f, path, 100, 0x04); /* inside the first data block */
    lsm_t *db;
    char err[256];
    assert_int_equal(lsm_open(&f->o, &db, err, sizeof err), 0); /* footer and index are fine */
    int errors = read_all(f, db, strrchr(path, '/') + 1);
    assert_true(errors > 0);
    assert_int_equal(read_all(f, db, strrchr(path, '/') + 1), errors); /* and again */
    lsm_iter_t *it;
    assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
    int n = 0;
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
        n++;
    assert_int_equal(lsm_iter_status(it), SHOAL_ECORRUPT); /* the scan stops with an error */
    assert_true(n < N);
    lsm_iter_destroy(&it);
    lsm_close(&db);
}

static void test_table_footer_and_index(void **state)
{
    fx_t *f = *state;
    char path[512];
    populate(f, true);
    find_file(f, ".sst", path);
    flip(f, path, -10, 0x01); /* footer */
    expect_open_corrupt(f, strrchr(path, '/') + 1);
    flip(f, path, -10, 0x01);
    flip(f, path, -60, 0x01); /* end of the index block */
    expect_open_corrupt(f, strrchr(path, '/') + 1);
}

/* A compressed table: its first block is the dictionary of the others, loaded at open (a
 * damaged one fails the open); a damaged later block fails only the reads that need it,
 * point reads and a scan alike (a scan reads ahead past the first blocks: the damage is
 * two thirds into the file, in a block that comes through the readahead window). */
static void test_table_compressed(void **state)
{
    fx_t *f = *state;
    char path[512];
    f->o.compression = true;
    populate(f, true);
    find_file(f, ".sst", path);
    flip(f, path, 100, 0x04); /* inside the dictionary block */
    expect_open_corrupt(f, strrchr(path, '/') + 1);
    uint64_t size = flip(f, path, -1, 0) + 1;
    flip(f, path, 100, 0x04);
    flip(f, path, (long)(size * 2 / 3), 0x04); /* a block compressed with the dictionary */
    lsm_t *db;
    char err[256];
    assert_int_equal(lsm_open(&f->o, &db, err, sizeof err), 0);
    lsm_iter_t *it; /* first, while the cache is cold: every block is read */
    assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
    int n = 0;
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
        n++;
    assert_int_equal(lsm_iter_status(it), SHOAL_ECORRUPT);
    assert_true(n > N / 3 && n < N);
    lsm_iter_destroy(&it);
    assert_true(read_all(f, db, strrchr(path, '/') + 1) > 0);
    lsm_close(&db);
}

/* Compressed blocks of a few dozen bytes: several start within one 256-byte stretch, the
 * unit in which a table remembers which blocks it verified. Every byte of a stretch of
 * blocks is damaged in turn (the stretch holds whole blocks and their trailers' checksums):
 * each damage must fail the reads that need the block, also after its neighbours were read
 * and verified. (Found: on the mapped path a small block sharing a verified neighbour's bit
 * skipped its check, so a damaged checksum byte went unnoticed.) */
static void test_table_tiny_compressed_blocks(void **state)
{
    fx_t *f = *state;
    char path[512];
    f->o.compression = true;
    f->o.compressed_block_size = 256;
    populate(f, true);
    find_file(f, ".sst", path);
    uint64_t size = flip(f, path, -1, 0) + 1;
    for (long at = (long)size / 3; at < (long)size / 3 + 96; at++) {
        flip(f, path, at, 0x10);
        lsm_t *db;
        char err[256];
        assert_int_equal(lsm_open(&f->o, &db, err, sizeof err), 0);
        if (read_all(f, db, strrchr(path, '/') + 1) == 0) /* read_all: never a wrong value */
            fail_msg("damage at offset %ld of %s went unnoticed", at, path);
        lsm_close(&db);
        flip(f, path, at, 0x10);
    }
}

static void test_wal_middle_and_tail(void **state)
{
    fx_t *f = *state;
    char path[512];
    populate(f, false);
    find_file(f, ".log", path);
    flip(f, path, 5000, 0x20);
    expect_open_corrupt(f, strrchr(path, '/') + 1);
    lsm_t *db;
    char err[256];
    flip(f, path, 5000, 0x20); /* repair, then damage the last record: a torn tail */
    flip(f, path, -3, 0x20);
    assert_int_equal(lsm_open(&f->o, &db, err, sizeof err), 0);
    void *v;
    size_t n;
    char want[64];
    assert_int_equal(lsm_get(db, NULL, "key002999", 9, &v, &n), SHOAL_ENOTFOUND);
    assert_int_equal(lsm_get(db, NULL, "key002998", 9, &v, &n), 0);
    value_of(2998, want);
    assert_memory_equal(v, want, n);
    free(v);
    lsm_close(&db);
}

static void test_manifest_current_missing_table(void **state)
{
    fx_t *f = *state;
    char sst[512], cur[512], man[512];
    populate(f, true);
    find_file(f, ".sst", sst);
    find_file(f, "CURRENT", cur);
    find_file(f, "MANIFEST-", man);
    flip(f, man, 12, 0x08); /* the first edit; later edits follow it */
    expect_open_corrupt(f, "MANIFEST-");
    flip(f, man, 12, 0x08);
    flip(f, cur, 3, 0x01); /* CURRENT no longer names a manifest */
    expect_open_corrupt(f, "CURRENT");
    flip(f, cur, 3, 0x01);
    assert_int_equal(f->env->remove(f->env, sst), 0);
    expect_open_corrupt(f, strrchr(sst, '/') + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_data_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_data_block, setup_posix, teardown),
        cmocka_unit_test_setup_teardown(test_table_data_block, setup_posix_pread, teardown),
        cmocka_unit_test_setup_teardown(test_table_data_block, setup_posix_small_map, teardown),
        cmocka_unit_test_setup_teardown(test_table_footer_and_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_compressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_compressed, setup_posix, teardown),
        cmocka_unit_test_setup_teardown(test_table_compressed, setup_posix_pread, teardown),
        cmocka_unit_test_setup_teardown(test_table_tiny_compressed_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_tiny_compressed_blocks, setup_posix, teardown),
        cmocka_unit_test_setup_teardown(test_table_tiny_compressed_blocks, setup_posix_pread,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wal_middle_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_current_missing_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
