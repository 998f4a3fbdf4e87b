/* test_raftlog.c - the node's durable Raft log (actors/rlog.c): entries and hard states of
 * many groups survive a reopen, conflicts truncate, snapshots compact and let old segments
 * go, one sync covers all groups, a torn tail is cut off while a corrupt middle is refused
 * with the file and offset, and a randomized crash test (seeded, printed) never loses a
 * synced entry, with and without zeros written ahead of the data (prealloc_bytes). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "actors/rlog.h"
#include "engine/checksum.h"
#include "engine/error.h"

static char dir[256];
static uint64_t prealloc; /* prealloc_bytes of the logs open_log opens */

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_raftlog.%d.XXXXXX", (int)getpid());
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    prealloc = 0;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static rlog_t *open_log(const rlog_io_t *io, uint64_t segbytes)
{
    rlog_options_t o = {segbytes, prealloc};
    rlog_t *l = NULL;
    char err[512];
    int rc = rlog_open(dir, io, &o, &l, err, sizeof err);
    if (rc)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    return l;
}

static void put(rlog_t *l, uint32_t g, uint64_t term, uint64_t idx)
{
    char data[64];
    int n = snprintf(data, sizeof data, "g%u-t%llu-i%llu", g, (unsigned long long)term,
                     (unsigned long long)idx);
    assert_int_equal(rlog_append(l, g, term, idx, 0, data, (size_t)n), 0);
}

static void expect(rlog_t *l, uint32_t g, uint64_t term, uint64_t idx)
{
    uint64_t t;
    uint8_t et, *data;
    size_t len;
    char want[64];
    int n = snprintf(want, sizeof want, "g%u-t%llu-i%llu", g, (unsigned long long)term,
                     (unsigned long long)idx);
    assert_int_equal(rlog_entry(l, g, idx, &t, &et, &data, &len), 0);
    assert_int_equal(t, term);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(data, want, len);
    free(data);
}

static void test_roundtrip_many_groups(void **state)
{
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 100; i++)
        for (uint32_t g = 0; g < 5; g++)
            put(l, g, 1 + i / 50, i);
    assert_int_equal(rlog_set_hardstate(l, 3, 7, 2, 99), 0);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    assert_null(l);
    l = open_log(NULL, 0);
    uint32_t groups[8];
    assert_int_equal(rlog_groups(l, groups, 8), 5);
    for (uint32_t g = 0; g < 5; g++) {
        assert_int_equal(rlog_first_index(l, g), 1);
        assert_int_equal(rlog_last_index(l, g), 100);
        for (uint64_t i = 1; i <= 100; i++)
            expect(l, g, 1 + i / 50, i);
    }
    uint64_t t, v, c;
    assert_int_equal(rlog_hardstate(l, 3, &t, &v, &c), 0);
    assert_int_equal(t, 7);
    assert_int_equal(v, 2);
    assert_int_equal(c, 99);
    rlog_destroy(&l);
}

static void test_conflict_truncates(void **state)
{
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 10; i++)
        put(l, 1, 1, i);
    /* a new leader overwrites from index 6 with term 2 */
    put(l, 1, 2, 6);
    put(l, 1, 2, 7);
    assert_int_equal(rlog_last_index(l, 1), 7);
    assert_int_equal(rlog_append(l, 1, 2, 9, 0, "x", 1), SHOAL_EINVAL); /* a gap */
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    l = open_log(NULL, 0);
    assert_int_equal(rlog_last_index(l, 1), 7);
    expect(l, 1, 1, 5);
    expect(l, 1, 2, 6);
    expect(l, 1, 2, 7);
    rlog_destroy(&l);
}

static void test_snapshot_compacts_and_gc(void **state)
{
    rlog_t *l = open_log(NULL, 4096); /* small segments: many rotations */
    for (uint64_t i = 1; i <= 500; i++) {
        put(l, 1, 1, i);
        if (i <= 20)
            put(l, 2, 1, i); /* group 2 goes idle early */
    }
    assert_int_equal(rlog_set_hardstate(l, 2, 1, 1, 20), 0);
    assert_int_equal(rlog_sync(l), 0);
    size_t before = rlog_segment_count(l);
    assert_true(before > 5);
    assert_int_equal(rlog_set_snapshot(l, 1, 450, 1, "conf", 4), 0);
    assert_int_equal(rlog_set_snapshot(l, 2, 20, 1, "c2", 2), 0);
    assert_int_equal(rlog_gc(l), 0);
    assert_true(rlog_segment_count(l) < before / 2);
    assert_int_equal(rlog_first_index(l, 1), 451);
    expect(l, 1, 1, 451);
    rlog_destroy(&l);
    l = open_log(NULL, 4096);
    assert_int_equal(rlog_first_index(l, 1), 451);
    assert_int_equal(rlog_last_index(l, 1), 500);
    expect(l, 1, 1, 500);
    uint64_t si, st, t, v, c;
    const uint8_t *conf;
    size_t cl;
    assert_int_equal(rlog_snapshot(l, 2, &si, &st, &conf, &cl), 0);
    assert_int_equal(si, 20);
    assert_int_equal(cl, 2);
    assert_memory_equal(conf, "c2", 2);
    assert_int_equal(rlog_hardstate(l, 2, &t, &v, &c), 0); /* carried forward by gc */
    assert_int_equal(c, 20);
    assert_int_equal(rlog_last_index(l, 2), 20);
    rlog_destroy(&l);
}

/* What a dropped group looks like: no entries, no snapshot mark, only its term and vote. */
static void expect_dropped(rlog_t *l, uint32_t g, uint64_t term, uint64_t vote)
{
    uint64_t si, st, t, v, c;
    const uint8_t *conf;
    size_t cl;
    assert_true(rlog_has_group(l, g));
    assert_int_equal(rlog_first_index(l, g), 1);
    assert_int_equal(rlog_last_index(l, g), 0);
    assert_int_equal(rlog_snapshot(l, g, &si, &st, &conf, &cl), 0);
    assert_int_equal(si, 0);
    assert_int_equal(cl, 0);
    assert_int_equal(rlog_hardstate(l, g, &t, &v, &c), 0);
    assert_int_equal(t, term);
    assert_int_equal(v, vote);
    assert_int_equal(c, 0);
    uint8_t et, *data;
    size_t len;
    assert_int_equal(rlog_entry(l, g, 1, &t, &et, &data, &len), SHOAL_ENOTFOUND);
}

/* A DROP record: recovery forgets the group's earlier entries and snapshot mark (keeping
 * its term and vote), later records of the group start it again from scratch (a replica
 * placed here again: snapshot first, then entries), other groups are untouched. */
static void test_drop_group(void **state)
{
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 10; i++) {
        put(l, 1, 2, i);
        put(l, 2, 2, i);
    }
    assert_int_equal(rlog_set_snapshot(l, 1, 5, 2, "conf", 4), 0);
    assert_int_equal(rlog_set_hardstate(l, 1, 3, 7, 10), 0);
    assert_int_equal(rlog_drop_group(l, 1), 0);
    expect_dropped(l, 1, 3, 7);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);

    l = open_log(NULL, 0);
    expect_dropped(l, 1, 3, 7);
    assert_int_equal(rlog_last_index(l, 2), 10);
    expect(l, 2, 2, 10);
    /* the group comes back: a snapshot far past its old log, then entries after it */
    assert_int_equal(rlog_append(l, 1, 9, 3, 0, "x", 1), SHOAL_EINVAL); /* not index 1 */
    assert_int_equal(rlog_set_snapshot(l, 1, 100, 8, "new", 3), 0);
    for (uint64_t i = 101; i <= 103; i++)
        put(l, 1, 9, i);
    assert_int_equal(rlog_set_hardstate(l, 1, 9, 4, 103), 0);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);

    l = open_log(NULL, 0);
    uint64_t si, st, t, v, c;
    const uint8_t *conf;
    size_t cl;
    assert_int_equal(rlog_snapshot(l, 1, &si, &st, &conf, &cl), 0);
    assert_int_equal(si, 100);
    assert_int_equal(st, 8);
    assert_int_equal(cl, 3);
    assert_memory_equal(conf, "new", 3);
    assert_int_equal(rlog_first_index(l, 1), 101);
    assert_int_equal(rlog_last_index(l, 1), 103);
    expect(l, 1, 9, 103);
    assert_int_equal(rlog_hardstate(l, 1, &t, &v, &c), 0);
    assert_int_equal(t, 9);
    assert_int_equal(c, 103);
    expect(l, 2, 2, 1);
    rlog_destroy(&l);
}

/* A dropped group pins no segment: gc deletes the segments of its old records (the DROP's
 * too, its term and vote carried forward), and the log still opens with the group dropped. */
static void test_drop_group_gc(void **state)
{
    rlog_t *l = open_log(NULL, 4096);
    for (uint64_t i = 1; i <= 800; i++)
        put(l, 1, 1, i);
    assert_int_equal(rlog_set_hardstate(l, 1, 1, 1, 800), 0);
    assert_int_equal(rlog_sync(l), 0);
    size_t before = rlog_segment_count(l);
    assert_true(before > 5);
    assert_int_equal(rlog_drop_group(l, 1), 0);
    put(l, 2, 1, 1); /* another group writes on */
    assert_int_equal(rlog_sync(l), 0);
    assert_int_equal(rlog_gc(l), 0);
    assert_true(rlog_segment_count(l) <= 2);
    expect_dropped(l, 1, 1, 1);
    rlog_destroy(&l);
    l = open_log(NULL, 4096);
    expect_dropped(l, 1, 1, 1);
    expect(l, 2, 1, 1);
    rlog_destroy(&l);
}

static void test_snapshot_past_log_clears(void **state)
{
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 5; i++)
        put(l, 1, 1, i);
    /* a snapshot received from a leader beyond our log: everything we had is dropped */
    assert_int_equal(rlog_set_snapshot(l, 1, 100, 3, NULL, 0), 0);
    assert_int_equal(rlog_last_index(l, 1), 100);
    assert_int_equal(rlog_first_index(l, 1), 101);
    put(l, 1, 3, 101);
    assert_int_equal(rlog_set_snapshot(l, 1, 50, 3, NULL, 0), SHOAL_EINVAL);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    l = open_log(NULL, 0);
    uint64_t t;
    assert_int_equal(rlog_term(l, 1, 100, &t), 0);
    assert_int_equal(t, 3);
    expect(l, 1, 3, 101);
    rlog_destroy(&l);
}

static void test_group_commit_one_sync(void **state)
{
    rlog_io_t *io = rlog_io_fault_new();
    rlog_t *l = open_log(io, 0);
    uint64_t s0 = rlog_io_fault_syncs(io);
    for (uint32_t g = 0; g < 64; g++) {
        put(l, g, 1, 1);
        assert_int_equal(rlog_set_hardstate(l, g, 1, 1, 0), 0);
    }
    assert_int_equal(rlog_sync(l), 0);
    assert_int_equal(rlog_io_fault_syncs(io) - s0, 1); /* 64 groups, one fdatasync */
    assert_int_equal(rlog_sync(l), 0);
    assert_int_equal(rlog_io_fault_syncs(io) - s0, 1); /* nothing new: no sync */
    rlog_destroy(&l);
    rlog_io_fault_destroy(&io);
}

static void corrupt_byte(uint64_t seq, long off)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%016llx.seg", dir, (unsigned long long)seq);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void test_corrupt_middle_refused(void **state)
{
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 20; i++)
        put(l, 1, 1, i);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    corrupt_byte(1, 100);
    char err[512];
    rlog_options_t o = {0};
    assert_int_equal(rlog_open(dir, NULL, &o, &l, err, sizeof err), SHOAL_ECORRUPT);
    assert_null(l);
    assert_non_null(strstr(err, "0000000000000001.seg"));
    assert_non_null(strstr(err, "offset"));
}

static void test_torn_tail_cut(void **state)
{
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 20; i++)
        put(l, 1, 1, i);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    char path[512];
    snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size - 5), 0); /* the last record is cut in half */
    char err[512];
    rlog_options_t o = {0};
    assert_int_equal(rlog_open(dir, NULL, &o, &l, err, sizeof err), 0);
    assert_non_null(strstr(err, "torn tail"));
    assert_int_equal(rlog_last_index(l, 1), 19);
    put(l, 1, 1, 20); /* appending continues where the good data ends */
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    l = open_log(NULL, 0);
    expect(l, 1, 1, 20);
    rlog_destroy(&l);
}

/* Writes random batches of 4 groups, syncing some; crashes (dropping unsynced bytes,
 * sometimes leaving torn garbage); reopens; checks every synced entry is there with the
 * right content and that the log continues from what survived. Seeded and printed. */
static void test_crash_keeps_synced(void **state)
{
    unsigned seed = getenv("SHOAL_TEST_SEED") ? (unsigned)atoi(getenv("SHOAL_TEST_SEED"))
                                              : (unsigned)time(NULL);
    fprintf(stderr, "test_crash_keeps_synced seed=%u (replay: SHOAL_TEST_SEED=%u)\n", seed, seed);
    srand(seed);
    rlog_io_t *io = rlog_io_fault_new();
    uint64_t synced[4] = {0};
    for (int round = 0; round < 40; round++) {
        rlog_t *l = open_log(io, 2048);
        uint64_t last[4];
        for (uint32_t g = 0; g < 4; g++) {
            last[g] = rlog_last_index(l, g);
            assert_true(last[g] >= synced[g]);
            for (uint64_t i = 1; i <= last[g]; i++)
                expect(l, g, 1, i);
        }
        int batches = 1 + rand() % 5;
        for (int b = 0; b < batches; b++) {
            for (uint32_t g = 0; g < 4; g++)
                for (int k = rand() % 6; k > 0; k--)
                    put(l, g, 1, ++last[g]);
            if (rand() % 2) {
                assert_int_equal(rlog_sync(l), 0);
                memcpy(synced, last, sizeof last);
            }
        }
        rlog_destroy(&l);
        rlog_io_fault_crash(io, (size_t)(rand() % 3 == 0 ? 1 + rand() % 40 : 0),
                            seed + (unsigned)round);
    }
    rlog_io_fault_destroy(&io);
}

static void test_crash_keeps_synced_prealloc(void **state)
{
    prealloc = 512; /* below the 2048-byte segments: extensions and rotations both happen */
    test_crash_keeps_synced(state);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    return size;
}

/* The zeros written ahead are not data: a reopen ends the records there without a note,
 * appends go on where the records end, and a full segment keeps records only. */
static void test_prealloc_zero_tail(void **state)
{
    prealloc = 4096;
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 20; i++)
        put(l, 1, 1, i);
    assert_int_equal(rlog_sync(l), 0);
    uint64_t bytes = rlog_bytes(l);
    rlog_destroy(&l);
    char path[512];
    snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
    assert_int_equal(file_size(path), 4096);
    char err[512];
    rlog_options_t o = {0, 4096};
    assert_int_equal(rlog_open(dir, NULL, &o, &l, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(rlog_bytes(l), bytes);
    expect(l, 1, 1, 20);
    for (uint64_t i = 21; i <= 200; i++) /* past 4096 bytes: extended again */
        put(l, 1, 1, i);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    assert_int_equal(file_size(path) % 4096, 0);
    l = open_log(NULL, 2048); /* a smaller segment size: the next append rotates */
    expect(l, 1, 1, 200);
    put(l, 1, 1, 201);
    assert_int_equal(rlog_sync(l), 0);
    assert_int_equal(rlog_segment_count(l), 2);
    /* the full segment was cut back to its records; entry 201 (a 40-byte record) is alone
     * in the new one, which has zeros ahead of it */
    assert_int_equal(file_size(path), (long)rlog_bytes(l) - 40);
    snprintf(path, sizeof path, "%s/0000000000000002.seg", dir);
    assert_int_equal(file_size(path), 4096);
    rlog_destroy(&l);
    l = open_log(NULL, 2048);
    for (uint64_t i = 1; i <= 201; i++)
        expect(l, 1, 1, i);
    rlog_destroy(&l);
}

/* A disk that fills up: once full is set, every pwrite goes to /dev/full, so the real POSIX
 * layer gets ENOSPC from the kernel; everything else is the real disk. */
typedef struct {
    const rlog_io_t *real;
    int devfull;
    bool full;
} full_disk_t;

static ssize_t full_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    full_disk_t *d = ctx;
    return d->real->pwrite(d->real->ctx, d->full ? d->devfull : fd, buf, len, off);
}

static int full_open(void *ctx, const char *path, bool create)
{
    full_disk_t *d = ctx;
    return d->real->open(d->real->ctx, path, create);
}

static ssize_t full_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    full_disk_t *d = ctx;
    return d->real->pread(d->real->ctx, fd, buf, len, off);
}

static int full_sync(void *ctx, int fd)
{
    full_disk_t *d = ctx;
    return d->real->sync(d->real->ctx, fd);
}

static int full_truncate(void *ctx, int fd, uint64_t len)
{
    full_disk_t *d = ctx;
    return d->real->truncate(d->real->ctx, fd, len);
}

static int64_t full_size(void *ctx, int fd)
{
    full_disk_t *d = ctx;
    return d->real->size(d->real->ctx, fd);
}

static int full_close(void *ctx, int fd)
{
    full_disk_t *d = ctx;
    return d->real->close(d->real->ctx, fd);
}

static int full_unlink(void *ctx, const char *path)
{
    full_disk_t *d = ctx;
    return d->real->unlink(d->real->ctx, path);
}

static int full_sync_dir(void *ctx, const char *path)
{
    full_disk_t *d = ctx;
    return d->real->sync_dir(d->real->ctx, path);
}

/* A full disk fails the sync of the group commit (the log actor stops the node on it) with
 * its own code, whose name says what happened instead of a bare "I/O error", with and
 * without zeros written ahead; the records synced before are intact. */
static void test_disk_full_named(void **state)
{
    for (int pre = 0; pre < 2; pre++) {
        prealloc = pre ? 4096 : 0;
        full_disk_t d = {rlog_io_posix(), open("/dev/full", O_WRONLY | O_CLOEXEC), false};
        assert_true(d.devfull >= 0);
        rlog_io_t io = {&d,        full_open,  full_pwrite, full_pread,   full_sync, full_truncate,
                        full_size, full_close, full_unlink, full_sync_dir};
        rlog_t *l = open_log(&io, 0);
        for (uint64_t i = 1; i <= 10; i++)
            put(l, 1, 1, i);
        assert_int_equal(rlog_sync(l), 0);
        d.full = true;
        for (uint64_t i = 11; i <= 400; i++) /* past the 4096 bytes written ahead */
            put(l, 1, 1, i);
        int rc = rlog_sync(l);
        assert_int_equal(rc, SHOAL_ENOSPC);
        assert_string_equal(shoal_strerror(rc), "No space left on device");
        rlog_destroy(&l);
        close(d.devfull);
        l = open_log(NULL, 0);
        for (uint64_t i = 1; i <= 10; i++)
            expect(l, 1, 1, i);
        rlog_destroy(&l);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -f %s/*.seg", dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* A record cut short inside the zeros written ahead is a torn tail like any other. */
static void test_prealloc_torn_record(void **state)
{
    prealloc = 4096;
    rlog_t *l = open_log(NULL, 0);
    for (uint64_t i = 1; i <= 20; i++)
        put(l, 1, 1, i);
    assert_int_equal(rlog_sync(l), 0);
    uint64_t end = rlog_bytes(l);
    rlog_destroy(&l);
    char path[512];
    snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
    FILE *f = fopen(path, "r+b");
    fseek(f, (long)end, SEEK_SET);
    const uint8_t half[6] = {0x11, 0x22, 0x33, 0x44, 40, 0}; /* a header, no body */
    fwrite(half, 1, sizeof half, f);
    fclose(f);
    char err[512];
    rlog_options_t o = {0, 4096};
    assert_int_equal(rlog_open(dir, NULL, &o, &l, err, sizeof err), 0);
    assert_non_null(strstr(err, "torn tail"));
    assert_int_equal(rlog_last_index(l, 1), 20);
    put(l, 1, 1, 21);
    assert_int_equal(rlog_sync(l), 0);
    rlog_destroy(&l);
    l = open_log(NULL, 0);
    expect(l, 1, 1, 21);
    rlog_destroy(&l);
}

static void test_decoder_rejects(void **state)
{
    uint8_t buf[256];
    rlog_record_t r = {.type = RLOG_REC_ENTRY,
                       .group = 9,
                       .term = 2,
                       .index = 3,
                       .data = (const uint8_t *)"abc",
                       .len = 3};
    size_t n = rlog_record_encode(&r, buf, sizeof buf);
    assert_true(n > 0);
    rlog_record_t out;
    size_t used;
    const char *why;
    assert_int_equal(rlog_record_decode(buf, n, &out, &used, &why), RLOG_DEC_OK);
    assert_int_equal(used, n);
    assert_int_equal(out.group, 9);
    assert_int_equal(out.len, 3);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(rlog_record_decode(buf, cut, &out, &used, &why), RLOG_DEC_SHORT);
    buf[n - 1] ^= 1;
    assert_int_equal(rlog_record_decode(buf, n, &out, &used, &why), RLOG_DEC_BAD);
    assert_non_null(why);

    /* a DROP carries term and vote and nothing else: a longer body is refused even with a
     * good checksum */
    rlog_record_t d = {.type = RLOG_REC_DROP, .group = 4, .term = 6, .index = 2};
    n = rlog_record_encode(&d, buf, sizeof buf);
    assert_int_equal(n, RLOG_HEADER + 21);
    assert_int_equal(rlog_record_decode(buf, n, &out, &used, &why), RLOG_DEC_OK);
    assert_int_equal(out.type, RLOG_REC_DROP);
    assert_int_equal(out.group, 4);
    assert_int_equal(out.term, 6);
    assert_int_equal(out.index, 2);
    rlog_record_t s = {.type = RLOG_REC_SNAPSHOT, .group = 4, .data = (const uint8_t *)"x", .len = 1};
    n = rlog_record_encode(&s, buf, sizeof buf);
    buf[RLOG_HEADER] = RLOG_REC_DROP; /* a DROP of 22 bytes, checksum redone */
    buf[0] = buf[1] = buf[2] = buf[3] = 0;
    uint8_t fixed[64];
    memcpy(fixed, buf, n);
    uint32_t sum = shoal_checksum32(fixed + 4, 4 + 22);
    for (int i = 0; i < 4; i++)
        fixed[i] = (uint8_t)(sum >> (8 * i));
    assert_int_equal(rlog_record_decode(fixed, n, &out, &used, &why), RLOG_DEC_BAD);
    assert_non_null(strstr(why, "type"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_many_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_compacts_and_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_group_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_past_log_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_one_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_keeps_synced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_keeps_synced_prealloc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prealloc_zero_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prealloc_torn_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_named, setup, teardown),
        cmocka_unit_test(test_decoder_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
