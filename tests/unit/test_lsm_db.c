/* test_lsm_db.c - unit tests of the public API (lsm.h) on the in-memory env and on disk:
 * put/get/delete, batches, iterators with bounds and both directions, snapshots, flush and
 * compaction keeping content, statistics, the directory lock, concurrent writers sharing
 * WAL writes (group commit), and export/ingest including refusal of damaged streams. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

typedef struct {
    lsm_env_t *env;
    lsm_options_t o;
    lsm_t *db;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->env = lsm_env_mem_new();
    lsm_options_init(&f->o);
    f->o.env = f->env;
    f->o.dir = "/mem/db";
    f->o.write_buffer_size = 64 << 10;
    f->o.target_file_size = 64 << 10;
    f->o.block_size = 1024;
    char err[256];
    assert_int_equal(lsm_open(&f->o, &f->db, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    lsm_close(&f->db);
    assert_null(f->db);
    lsm_env_mem_destroy(&f->env);
    free(f);
    return 0;
}

static void reopen(fx_t *f)
{
    char err[256];
    lsm_close(&f->db);
    assert_int_equal(lsm_open(&f->o, &f->db, err, sizeof err), 0);
}

static void put_s(lsm_t *db, const char *k, const char *v)
{
    assert_int_equal(lsm_put(db, NULL, k, strlen(k), v, strlen(v)), 0);
}

/* Asserts key k holds v (NULL: absent). */
static void expect(lsm_t *db, const lsm_snapshot_t *snap, const char *k, const char *v)
{
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;
    void *got;
    size_t n;
    int rc = lsm_get(db, &ro, k, strlen(k), &got, &n);
    if (!v) {
        assert_int_equal(rc, SHOAL_ENOTFOUND);
        assert_null(got);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, strlen(v));
    assert_memory_equal(got, v, n);
    assert_int_equal(((char *)got)[n], '\0');
    free(got);
}

static void test_put_get_delete(void **state)
{
    fx_t *f = *state;
    put_s(f->db, "a", "1");
    put_s(f->db, "b", "2");
    put_s(f->db, "a", "3");
    assert_int_equal(lsm_delete(f->db, NULL, "b", 1), 0);
    assert_int_equal(lsm_delete(f->db, NULL, "zz", 2), 0); /* absent: still fine */
    expect(f->db, NULL, "a", "3");
    expect(f->db, NULL, "b", NULL);
    assert_int_equal(lsm_put(f->db, NULL, "e", 1, "", 0), 0); /* empty value is a value */
    expect(f->db, NULL, "e", "");
    reopen(f);
    expect(f->db, NULL, "a", "3");
    expect(f->db, NULL, "b", NULL);
    expect(f->db, NULL, "e", "");
    assert_int_equal(lsm_flush(f->db), 0);
    expect(f->db, NULL, "a", "3");
    expect(f->db, NULL, "b", NULL);
}

static void test_batch_atomic_order(void **state)
{
    fx_t *f = *state;
    lsm_batch_t *b = lsm_batch_new();
    lsm_batch_put(b, "x", 1, "old", 3);
    lsm_batch_delete(b, "x", 1);
    lsm_batch_put(b, "x", 1, "new", 3); /* later ops of a batch win */
    lsm_batch_put(b, "y", 1, "yy", 2);
    lsm_write_options_t wo = {.sync = true};
    assert_int_equal(lsm_write(f->db, &wo, b), 0);
    expect(f->db, NULL, "x", "new");
    expect(f->db, NULL, "y", "yy");
    lsm_stats_t st;
    lsm_stats(f->db, &st);
    assert_true(st.last_sequence == 4);
    assert_true(st.wal_syncs >= 1);
    lsm_batch_destroy(&b);
}

static void fill_keys(lsm_t *db, int n, const char *prefix)
{
    char k[32], v[64];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s%05d", prefix, i);
        snprintf(v, sizeof v, "value-%d-%s", i, prefix);
        put_s(db, k, v);
    }
}

static void test_iter_bounds_and_directions(void **state)
{
    fx_t *f = *state;
    fill_keys(f->db, 2000, "k");
    assert_int_equal(lsm_flush(f->db), 0);
    for (int i = 0; i < 2000; i += 2) { /* delete evens, some in memtable some in tables */
        char k[32];
        snprintf(k, sizeof k, "k%05d", i);
        assert_int_equal(lsm_delete(f->db, NULL, k, strlen(k)), 0);
    }
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.lower_bound = "k00100";
    ro.lower_len = 6;
    ro.upper_bound = "k00200";
    ro.upper_len = 6;
    lsm_iter_t *it;
    assert_int_equal(lsm_iter_new(f->db, &ro, &it), 0);
    int n = 0;
    size_t kl;
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it), n++) {
        char want[32];
        snprintf(want, sizeof want, "k%05d", 101 + 2 * n);
        const char *k = lsm_iter_key(it, &kl);
        assert_int_equal(kl, 6);
        assert_memory_equal(k, want, 6);
    }
    assert_int_equal(n, 50);
    assert_int_equal(lsm_iter_status(it), 0);
    n = 0;
    for (lsm_iter_seek_to_last(it); lsm_iter_valid(it); lsm_iter_prev(it), n++) {
        char want[32];
        snprintf(want, sizeof want, "k%05d", 199 - 2 * n);
        assert_memory_equal(lsm_iter_key(it, &kl), want, 6);
    }
    assert_int_equal(n, 50);
    lsm_iter_seek(it, "k00150", 6); /* deleted: lands on the next live key */
    assert_memory_equal(lsm_iter_key(it, &kl), "k00151", 6);
    lsm_iter_prev(it);
    assert_memory_equal(lsm_iter_key(it, &kl), "k00149", 6);
    lsm_iter_next(it);
    assert_memory_equal(lsm_iter_key(it, &kl), "k00151", 6);
    lsm_iter_seek_for_prev(it, "k00150", 6);
    assert_memory_equal(lsm_iter_key(it, &kl), "k00149", 6);
    lsm_iter_seek(it, "a", 1); /* before the lower bound: clamps */
    assert_memory_equal(lsm_iter_key(it, &kl), "k00101", 6);
    lsm_iter_seek(it, "z", 1);
    assert_false(lsm_iter_valid(it));
    lsm_iter_destroy(&it);
    assert_null(it);
}

static void test_snapshot_and_iter_isolation(void **state)
{
    fx_t *f = *state;
    put_s(f->db, "a", "1");
    const lsm_snapshot_t *s = lsm_snapshot_new(f->db);
    lsm_iter_t *it;
    assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
    put_s(f->db, "a", "2");
    put_s(f->db, "b", "2");
    fill_keys(f->db, 3000, "z"); /* forces flushes and compactions under the snapshot */
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
    expect(f->db, s, "a", "1");
    expect(f->db, s, "b", NULL);
    expect(f->db, NULL, "a", "2");
    int n = 0;
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
        n++;
    assert_int_equal(n, 1); /* the iterator still sees the state at its creation */
    lsm_iter_destroy(&it);
    lsm_snapshot_release(f->db, &s);
    assert_null(s);
}

/* Counts the entries an iterator at snap sees, forwards and backwards (they must agree). */
static int iter_count(lsm_t *db, const lsm_snapshot_t *snap)
{
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;
    lsm_iter_t *it;
    assert_int_equal(lsm_iter_new(db, &ro, &it), 0);
    int n = 0;
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
        n++;
    int back = 0;
    for (lsm_iter_seek_to_last(it); lsm_iter_valid(it); lsm_iter_prev(it))
        back++;
    assert_int_equal(n, back);
    lsm_iter_destroy(&it);
    return n;
}

/* A bottom-level merge rewrites the sequence of a value every reader sees to 0 (compaction.c);
 * newer versions, snapshots, tombstones and reopen must all still resolve correctly. */
static void test_bottom_sequence_zeroing(void **state)
{
    fx_t *f = *state;
    put_s(f->db, "a", "1");
    put_s(f->db, "b", "1");
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0); /* a@0, b@0 */
    expect(f->db, NULL, "a", "1");
    const lsm_snapshot_t *s = lsm_snapshot_new(f->db);
    put_s(f->db, "a", "2");
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0); /* a@n kept, a@0 kept */
    expect(f->db, s, "a", "1");
    expect(f->db, NULL, "a", "2");
    assert_int_equal(iter_count(f->db, s), 2);
    lsm_snapshot_release(f->db, &s);
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0); /* a@0 = "2" only */
    expect(f->db, NULL, "a", "2");
    assert_int_equal(iter_count(f->db, NULL), 2);
    put_s(f->db, "a", "3"); /* newer than a zeroed version, in the memtable, then level 0 */
    expect(f->db, NULL, "a", "3");
    assert_int_equal(lsm_flush(f->db), 0);
    expect(f->db, NULL, "a", "3");
    assert_int_equal(iter_count(f->db, NULL), 2);
    reopen(f);
    expect(f->db, NULL, "a", "3");
    assert_int_equal(lsm_delete(f->db, NULL, "a", 1), 0);
    assert_int_equal(lsm_flush(f->db), 0);
    expect(f->db, NULL, "a", NULL);
    assert_int_equal(iter_count(f->db, NULL), 1);
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
    expect(f->db, NULL, "a", NULL);
    expect(f->db, NULL, "b", "1");
    put_s(f->db, "a", "4");
    fill_keys(f->db, 3000, "z"); /* flushes and compactions through every level */
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
    reopen(f);
    expect(f->db, NULL, "a", "4");
    expect(f->db, NULL, "b", "1");
    assert_int_equal(iter_count(f->db, NULL), 3002);
}

static void test_flush_compact_stats(void **state)
{
    fx_t *f = *state;
    fill_keys(f->db, 5000, "s");
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
    lsm_stats_t st;
    lsm_stats(f->db, &st);
    assert_true(st.flushes >= 1);
    assert_true(st.compactions >= 1);
    assert_int_equal(st.files[0], 0); /* a full compaction empties level 0 */
    assert_true(st.files[LSM_MAX_LEVELS - 1] > 1);
    assert_int_equal(st.background_error, 0);
    for (int i = 0; i < 5000; i++) {
        char k[32];
        snprintf(k, sizeof k, "s%05d", i);
        assert_int_equal(lsm_delete(f->db, NULL, k, strlen(k)), 0);
    }
    assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
    lsm_stats(f->db, &st);
    assert_true(st.total_table_bytes == 0); /* tombstones at the bottom are dropped */
    expect(f->db, NULL, "s00042", NULL);
}

static void test_lock_and_errors(void **state)
{
    fx_t *f = *state;
    lsm_t *other;
    char err[256];
    assert_int_equal(lsm_open(&f->o, &other, err, sizeof err), SHOAL_EBUSY);
    assert_null(other);
    assert_non_null(strstr(err, "LOCK"));
    lsm_options_t o = f->o;
    o.dir = "/mem/none";
    o.create_if_missing = false;
    assert_int_equal(lsm_open(&o, &other, err, sizeof err), SHOAL_ENOTFOUND);
    o = f->o;
    o.error_if_exists = true;
    lsm_close(&f->db);
    assert_int_equal(lsm_open(&o, &other, err, sizeof err), SHOAL_EEXIST);
    reopen(f);
}

typedef struct {
    lsm_t *db;
    int id;
} writer_arg_t;

static void *writer(void *p)
{
    writer_arg_t *a = p;
    char k[32];
    lsm_write_options_t wo = {.sync = true};
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "t%d-%04d", a->id, i);
        assert_int_equal(lsm_put(a->db, &wo, k, strlen(k), k, strlen(k)), 0);
    }
    return NULL;
}

static void test_concurrent_writers_group_commit(void **state)
{
    fx_t *f = *state;
    pthread_t th[8];
    lsm_env_mem_set_sync_delay(f->env, 300); /* a disk whose fdatasync takes 0.3 ms */
    writer_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (writer_arg_t){f->db, i};
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    lsm_stats_t st;
    lsm_stats(f->db, &st);
    assert_true(st.writes == 1600);
    assert_true(st.last_sequence == 1600);
    assert_true(st.wal_syncs <= st.write_groups);
    /* While one leader syncs, the others queue up and share its next sync. */
    assert_true(st.write_groups < st.writes / 2);
    lsm_env_mem_set_sync_delay(f->env, 0);
    fprintf(stderr, "group commit: %llu writes in %llu groups\n",
            (unsigned long long)st.writes, (unsigned long long)st.write_groups);
    reopen(f);
    for (int t = 0; t < 8; t++)
        for (int i = 0; i < 200; i += 37) {
            char k[32];
            snprintf(k, sizeof k, "t%d-%04d", t, i);
            expect(f->db, NULL, k, k);
        }
}

/* Streams db's content into an ingest of dst, in odd-sized chunks; returns the stream. */
static char *export_all(lsm_t *db, size_t *len)
{
    lsm_export_t *ex;
    assert_int_equal(lsm_export_begin(db, NULL, &ex), 0);
    size_t cap = 1 << 16, n;
    char *buf = malloc(cap);
    *len = 0;
    do {
        if (cap - *len < 1000)
            buf = realloc(buf, cap *= 2);
        assert_int_equal(lsm_export_read(ex, buf + *len, 999, &n), 0);
        *len += n;
    } while (n > 0);
    lsm_export_end(&ex);
    return buf;
}

static int ingest_all(lsm_t *db, const char *s, size_t len)
{
    lsm_ingest_t *in;
    assert_int_equal(lsm_ingest_begin(db, &in), 0);
    for (size_t off = 0; off < len; off += 333) {
        size_t n = len - off < 333 ? len - off : 333;
        int rc = lsm_ingest_write(in, s + off, n);
        if (rc) {
            lsm_ingest_abort(&in);
            return rc;
        }
    }
    return lsm_ingest_finish(&in);
}

static void test_export_ingest(void **state)
{
    fx_t *f = *state;
    fill_keys(f->db, 3000, "e");
    assert_int_equal(lsm_delete(f->db, NULL, "e00007", 6), 0);
    size_t len;
    char *s = export_all(f->db, &len);
    lsm_t *dst;
    lsm_options_t o = f->o;
    o.dir = "/mem/dst";
    char err[256];
    assert_int_equal(lsm_open(&o, &dst, err, sizeof err), 0);
    put_s(dst, "old", "gone after ingest");
    assert_int_equal(ingest_all(dst, s, len), 0);
    expect(dst, NULL, "old", NULL);
    expect(dst, NULL, "e00007", NULL);
    expect(dst, NULL, "e00008", "value-8-e");
    expect(dst, NULL, "e02999", "value-2999-e");
    put_s(dst, "after", "x"); /* writes continue after an ingest, and survive a reopen */
    lsm_close(&dst);
    assert_int_equal(lsm_open(&o, &dst, err, sizeof err), 0);
    expect(dst, NULL, "e02999", "value-2999-e");
    expect(dst, NULL, "after", "x");
    /* Damaged streams are refused and leave the content as it was. */
    assert_int_not_equal(ingest_all(dst, s, len - 3), 0);
    s[len / 2] ^= 0x10;
    assert_int_equal(ingest_all(dst, s, len), SHOAL_ECORRUPT);
    assert_int_equal(ingest_all(dst, "not a snapshot stream", 21), SHOAL_ECORRUPT);
    expect(dst, NULL, "after", "x");
    expect(dst, NULL, "e01000", "value-1000-e");
    lsm_close(&dst);
    free(s);
}

/* Without a WAL: writes survive a close (it flushes) and a flush, and a crash loses exactly
 * the writes after the last flush. */
static void test_disable_wal(void **state)
{
    fx_t *f = *state;
    lsm_options_t o = f->o;
    o.dir = "/mem/nowal";
    o.disable_wal = true;
    lsm_t *db;
    char err[256];
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    put_s(db, "a", "1");
    lsm_close(&db);
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    expect(db, NULL, "a", "1");
    put_s(db, "b", "2");
    assert_int_equal(lsm_flush(db), 0);
    lsm_write_options_t wo = {.sync = true}; /* ignored without a WAL */
    assert_int_equal(lsm_put(db, &wo, "c", 1, "3", 1), 0);
    lsm_stats_t st;
    lsm_stats(db, &st);
    assert_true(st.wal_bytes == 0 && st.wal_syncs == 0);
    lsm_env_mem_crash(f->env); /* power loss: "c" was only in the memtable */
    lsm_close(&db);            /* its flush fails on the crashed env: harmless */
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    expect(db, NULL, "a", "1");
    expect(db, NULL, "b", "2");
    expect(db, NULL, "c", NULL);
    lsm_close(&db);
}

static void test_posix_env_roundtrip(void **state)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/lsm-db-test-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    o.write_buffer_size = 64 << 10;
    o.compression = true;
    lsm_t *db;
    char err[256];
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    fill_keys(db, 5000, "p");
    assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
    put_s(db, "p00001", "changed");
    lsm_close(&db);
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    expect(db, NULL, "p00001", "changed");
    expect(db, NULL, "p04321", "value-4321-p");
    lsm_close(&db);
    assert_int_equal(lsm_destroy(dir, NULL), 0);
    assert_int_equal(access(dir, F_OK), -1);
}

/* The disk of test_posix_disk_full: the POSIX env, except that once disk_full is set every
 * append goes to /dev/full (opened through the same env), so the kernel answers ENOSPC. */
static lsm_file_t *dev_full;
static bool disk_full;

static int full_append(lsm_file_t *f, const void *buf, size_t n)
{
    return lsm_env_posix()->append(disk_full ? dev_full : f, buf, n);
}

/* A write that meets a full disk fails with SHOAL_ENOSPC, and the engine's message says
 * "No space left on device" instead of a bare "I/O error". */
static void test_posix_disk_full(void **state)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/lsm-full-test-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    lsm_env_t env = *lsm_env_posix();
    env.append = full_append;
    assert_int_equal(env.open(&env, "/dev/full", LSM_OPEN_APPEND, &dev_full), 0);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    o.env = &env;
    lsm_t *db;
    char err[256];
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    lsm_write_options_t wo = {.sync = true};
    assert_int_equal(lsm_put(db, &wo, "a", 1, "1", 1), 0);
    disk_full = true;
    int rc = lsm_put(db, &wo, "b", 1, "2", 1);
    assert_int_equal(rc, SHOAL_ENOSPC);
    assert_string_equal(shoal_strerror(rc), "No space left on device");
    char msg[512];
    lsm_last_error(db, msg, sizeof msg);
    assert_non_null(strstr(msg, "No space left on device"));
    assert_non_null(strstr(msg, "WAL"));
    disk_full = false;
    lsm_close(&db);
    env.close(dev_full);
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    expect(db, NULL, "a", "1");
    lsm_close(&db);
    assert_int_equal(lsm_destroy(dir, NULL), 0);
}

/* Counts the entries a full scan sees; returns the iterator's status (0 or an error). */
static int scan_status(lsm_t *db, long *n)
{
    lsm_iter_t *it;
    assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
    *n = 0;
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
        (*n)++;
    int rc = lsm_iter_status(it);
    lsm_iter_destroy(&it);
    return rc;
}

/* On disk, tables mapped and compressed: a mapped block's checksum is checked once and
 * remembered, so a damaged block must never be remembered as good: every scan over it
 * fails, the first and the next. */
static void test_posix_mapped_zstd_corruption(void **state)
{
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/lsm-db-zc-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    o.compression = true;
    o.mmap_reads = true;
    lsm_t *db;
    char err[256];
    long n;
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    fill_keys(db, 5000, "z");
    assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
    assert_int_equal(scan_status(db, &n), 0);
    assert_int_equal(n, 5000);
    assert_int_equal(scan_status(db, &n), 0); /* the remembered path */
    lsm_close(&db);
    /* the one table: flip a byte past the 8 KiB dictionary block, inside the data blocks */
    DIR *d = opendir(dir);
    struct dirent *e;
    path[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".sst"))
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    closedir(d);
    assert_true(path[0] != '\0');
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 12000, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, 12000, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
    assert_int_equal(lsm_open(&o, &db, err, sizeof err), 0);
    assert_int_equal(scan_status(db, &n), SHOAL_ECORRUPT);
    assert_int_equal(scan_status(db, &n), SHOAL_ECORRUPT);
    lsm_close(&db);
    assert_int_equal(lsm_destroy(dir, NULL), 0);
}

static void put_n(lsm_t *db, int from, int n, size_t vlen)
{
    char k[32], v[512];
    memset(v, 'v', sizeof v);
    for (int i = from; i < from + n; i++) {
        snprintf(k, sizeof k, "key%08d", i);
        assert_int_equal(lsm_put(db, NULL, k, strlen(k), v, vlen), 0);
    }
}

/* The memory budget: the block cache gets what the memtables leave (capacity + memtable
 * bytes stay at the budget as the memtable grows, and the capacity comes back after a
 * flush); block_cache_size caps the cache's share; without a budget the cache is
 * block_cache_size as before. While writes run, the memtables never hold more than the
 * budget (plus the arena block and entry of the write that crossed it). */
static void test_memory_budget(void **state)
{
    fx_t *f = *state;
    const size_t budget = 4u << 20, step = budget / 64;
    f->o.write_buffer_size = 1u << 20;
    f->o.memory_budget = budget;
    reopen(f);
    lsm_stats_t st;
    lsm_stats(f->db, &st);
    assert_true(st.cache_capacity + st.memtable_bytes <= budget + step);
    assert_true(st.cache_capacity + st.memtable_bytes + step >= budget);
    put_n(f->db, 0, 1500, 500); /* ~0.8 MiB: below the write buffer, no flush */
    lsm_stats(f->db, &st);
    assert_int_equal(st.flushes, 0);
    assert_true(st.memtable_bytes > (512u << 10));
    assert_true(st.cache_capacity + st.memtable_bytes <= budget + step);
    assert_true(st.cache_capacity + st.memtable_bytes + step >= budget);
    assert_true(st.cache_capacity < budget - (512u << 10));
    assert_int_equal(lsm_flush(f->db), 0);
    lsm_stats(f->db, &st);
    assert_true(st.cache_capacity + st.memtable_bytes + step >= budget); /* given back */

    f->o.memory_budget = 3u << 20; /* 1.5 write buffers: a pending flush holds writes */
    reopen(f);
    for (int round = 0; round < 40; round++) {
        put_n(f->db, round * 200, 200, 500);
        lsm_stats(f->db, &st);
        assert_true(st.memtable_bytes <= f->o.memory_budget + (64u << 10));
    }
    for (int i = 0; i < 8000; i += 997) { /* everything written is there */
        char k[32];
        void *v;
        size_t n;
        snprintf(k, sizeof k, "key%08d", i);
        assert_int_equal(lsm_get(f->db, NULL, k, strlen(k), &v, &n), 0);
        assert_int_equal(n, 500);
        free(v);
    }

    f->o.block_cache_size = 1u << 20; /* a cap on the cache's share */
    reopen(f);
    lsm_stats(f->db, &st);
    assert_int_equal(st.cache_capacity, 1u << 20);
    f->o.memory_budget = 0; /* no budget: the cache is block_cache_size */
    f->o.block_cache_size = 0;
    reopen(f);
    lsm_stats(f->db, &st);
    assert_int_equal(st.cache_capacity, 32u << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_bounds_and_directions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_iter_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_compact_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_ingest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bottom_sequence_zeroing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
        cmocka_unit_test(test_posix_env_roundtrip),
        cmocka_unit_test(test_posix_disk_full),
        cmocka_unit_test(test_posix_mapped_zstd_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
