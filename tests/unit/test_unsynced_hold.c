/* test_unsynced_hold.c - the power-cut I/O wrappers of shoald's test mode
 * (SHOAL_TEST_UNSYNCED=hold): actors/rlog_io_hold.c for the Raft log and
 * engine/lsm/env_hold.c for the storage engine. Unsynced writes are seen by the process
 * (reads, size) but not by the real file; sync puts them there; a child process that writes
 * and dies (SIGKILL, no close) leaves exactly its synced bytes on disk; a file closed
 * unsynced keeps its bytes for the next open, rename carries them, remove drops them; and a
 * whole engine opened on the hold env loses its unsynced writes when its process dies. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "actors/rlog_io_hold.h"
#include "engine/error.h"
#include "engine/lsm/env_hold.h"
#include "engine/lsm/lsm.h"

static char dir[256];
static char path[300];

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_unsynced_hold.%d.XXXXXX", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    snprintf(path, sizeof path, "%s/f", mkdtemp(dir) ? dir : "/nonexistent");
    return access(dir, F_OK);
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The real file's length (what a power cut would leave), -1 if absent. */
static long long real_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* The real file's bytes, read with plain POSIX calls (NUL-terminated). */
static size_t real_read(const char *p, char *buf, size_t cap)
{
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return n;
}

/* Runs fn in a child that then kills itself with SIGKILL (no close, no exit handlers: a
 * kill -9); fn calls _exit(non-0) on a failure of its own. */
static void in_child(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        raise(SIGKILL);
        _exit(3);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* ---- the Raft log's table ----------------------------------------------------------- */

static void test_rlog_overlay_and_sync(void **state)
{
    const rlog_io_t *io = rlog_io_hold();
    int fd = io->open(io->ctx, path, true);
    assert_true(fd >= 0);
    assert_int_equal(io->pwrite(io->ctx, fd, "hello", 5, 0), 5);
    assert_int_equal(io->pwrite(io->ctx, fd, "world", 5, 5), 5);
    assert_int_equal(io->size(io->ctx, fd), 10);
    char buf[64] = {0};
    assert_int_equal(io->pread(io->ctx, fd, buf, sizeof buf, 0), 10);
    assert_memory_equal(buf, "helloworld", 10);
    assert_int_equal(real_size(path), 0); /* nothing reached the file */
    assert_true(rlog_io_hold_unsynced() >= 10);

    assert_int_equal(io->sync(io->ctx, fd), 0);
    assert_int_equal(real_size(path), 10);
    assert_int_equal(real_read(path, buf, sizeof buf), 10);
    assert_string_equal(buf, "helloworld");

    /* a write into the middle, a truncation, a write past the end: replayed in order */
    assert_int_equal(io->pwrite(io->ctx, fd, "XY", 2, 3), 2);
    assert_int_equal(io->truncate(io->ctx, fd, 4), 0);
    assert_int_equal(io->pwrite(io->ctx, fd, "Z", 1, 6), 1);
    assert_int_equal(io->size(io->ctx, fd), 7);
    memset(buf, '?', sizeof buf);
    assert_int_equal(io->pread(io->ctx, fd, buf, sizeof buf, 0), 7);
    assert_memory_equal(buf, "helX\0\0Z", 7);
    assert_int_equal(io->pread(io->ctx, fd, buf, 3, 2), 3);
    assert_memory_equal(buf, "lX\0", 3);
    assert_int_equal(io->pread(io->ctx, fd, buf, 4, 7), 0); /* at the end */
    assert_int_equal(real_size(path), 10);
    assert_int_equal(real_read(path, buf, sizeof buf), 10);
    assert_string_equal(buf, "helloworld"); /* still the synced bytes */

    assert_int_equal(io->sync(io->ctx, fd), 0);
    assert_int_equal(real_size(path), 7);
    real_read(path, buf, sizeof buf);
    assert_memory_equal(buf, "helX\0\0Z", 7);
    assert_int_equal(io->close(io->ctx, fd), 0);
}

static void test_rlog_close_reopen_unlink(void **state)
{
    const rlog_io_t *io = rlog_io_hold();
    int fd = io->open(io->ctx, path, true);
    assert_int_equal(io->pwrite(io->ctx, fd, "abc", 3, 0), 3);
    assert_int_equal(io->close(io->ctx, fd), 0); /* closed unsynced: kept in memory */
    assert_int_equal(real_size(path), 0);
    fd = io->open(io->ctx, path, false);
    char buf[8];
    assert_int_equal(io->size(io->ctx, fd), 3);
    assert_int_equal(io->pread(io->ctx, fd, buf, 8, 0), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(io->close(io->ctx, fd), 0);
    assert_int_equal(io->unlink(io->ctx, path), 0);
    assert_int_equal(real_size(path), -1);
    fd = io->open(io->ctx, path, true); /* a new file: nothing of the old one */
    assert_int_equal(io->size(io->ctx, fd), 0);
    assert_int_equal(io->close(io->ctx, fd), 0);
    assert_int_equal(rlog_io_hold_unsynced(), 0);
}

static void rlog_child(void)
{
    const rlog_io_t *io = rlog_io_hold();
    int fd = io->open(io->ctx, path, true);
    io->pwrite(io->ctx, fd, "durable|", 8, 0);
    io->sync(io->ctx, fd);
    io->pwrite(io->ctx, fd, "lost", 4, 8);
    io->pwrite(io->ctx, fd, "LOST", 4, 0); /* over synced bytes: lost too */
}

static void test_rlog_child_dies(void **state)
{
    in_child(rlog_child);
    char buf[64];
    assert_int_equal(real_read(path, buf, sizeof buf), 8);
    assert_string_equal(buf, "durable|");
}

/* ---- the engine's env ---------------------------------------------------------------- */

static void test_env_overlay_and_sync(void **state)
{
    lsm_env_t *env = lsm_env_hold();
    assert_null(env->map); /* tables are read with pread */
    lsm_file_t *w = NULL, *r = NULL;
    assert_int_equal(env->open(env, path, LSM_OPEN_WRITE, &w), 0);
    assert_int_equal(env->append(w, "0123", 4), 0);
    assert_int_equal(env->sync(w), 0);
    assert_int_equal(env->append(w, "4567", 4), 0);
    uint64_t size = 0;
    assert_int_equal(env->size(w, &size), 0);
    assert_int_equal(size, 8);
    assert_int_equal(real_size(path), 4);
    assert_true(lsm_env_hold_unsynced() >= 4);

    /* a reader opened now sees the unsynced tail, across the synced part */
    assert_int_equal(env->open(env, path, LSM_OPEN_READ, &r), 0);
    char buf[16];
    size_t got = 0;
    assert_int_equal(env->pread(r, 2, buf, sizeof buf, &got), 0);
    assert_int_equal(got, 6);
    assert_memory_equal(buf, "234567", 6);
    assert_int_equal(env->pread(r, 6, buf, 1, &got), 0);
    assert_int_equal(got, 1);
    assert_memory_equal(buf, "6", 1);
    env->close(r);

    assert_int_equal(env->sync(w), 0);
    assert_int_equal(real_size(path), 8);
    real_read(path, buf, sizeof buf);
    assert_string_equal(buf, "01234567");
    env->close(w);

    /* a log is an ordinary append file */
    assert_int_equal(env->open(env, path, LSM_OPEN_LOG, &w), 0);
    assert_int_equal(env->append(w, "log", 3), 0);
    assert_int_equal(real_size(path), 0); /* the open truncated it; the bytes are held */
    assert_int_equal(env->sync(w), 0);
    env->close(w);
    assert_int_equal(real_size(path), 3);
}

static void test_env_close_rename_remove(void **state)
{
    lsm_env_t *env = lsm_env_hold();
    char to[320];
    snprintf(to, sizeof to, "%s/g", dir);
    lsm_file_t *f = NULL;
    assert_int_equal(env->open(env, path, LSM_OPEN_WRITE, &f), 0);
    assert_int_equal(env->append(f, "tail", 4), 0);
    env->close(f); /* unsynced: the bytes stay with the path */
    assert_int_equal(env->rename(env, path, to), 0);
    assert_int_equal(real_size(to), 0);
    assert_int_equal(env->open(env, to, LSM_OPEN_READ, &f), 0);
    uint64_t size = 0;
    assert_int_equal(env->size(f, &size), 0);
    assert_int_equal(size, 4);
    char buf[8];
    size_t got = 0;
    assert_int_equal(env->pread(f, 0, buf, sizeof buf, &got), 0);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "tail", 4);
    env->close(f);
    assert_int_equal(env->remove(env, to), 0);
    assert_int_equal(env->exists(env, to), 0);
    assert_int_equal(lsm_env_hold_unsynced(), 0);
}

static void env_child(void)
{
    lsm_env_t *env = lsm_env_hold();
    lsm_file_t *f = NULL;
    if (env->open(env, path, LSM_OPEN_WRITE, &f) != 0)
        _exit(1);
    env->append(f, "synced|", 7);
    env->sync(f);
    env->append(f, "lost", 4);
}

static void test_env_child_dies(void **state)
{
    in_child(env_child);
    char buf[64];
    assert_int_equal(real_read(path, buf, sizeof buf), 7);
    assert_string_equal(buf, "synced|");
}

/* A whole engine on the hold env: a synced put survives its process's death, an unsynced
 * one does not (with lsm_env_posix the page cache would have kept both). */
static void engine_child(void)
{
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    o.env = lsm_env_hold();
    lsm_t *db = NULL;
    if (lsm_open(&o, &db, NULL, 0) != 0)
        _exit(1);
    lsm_write_options_t sync = {.sync = true}, nosync = {.sync = false};
    if (lsm_put(db, &sync, "a", 1, "1", 1) != 0 || lsm_put(db, &nosync, "b", 1, "2", 1) != 0)
        _exit(2);
}

static void test_engine_child_dies(void **state)
{
    in_child(engine_child);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    o.env = lsm_env_hold();
    lsm_t *db = NULL;
    assert_int_equal(lsm_open(&o, &db, NULL, 0), 0);
    void *v = NULL;
    size_t vlen = 0;
    assert_int_equal(lsm_get(db, NULL, "a", 1, &v, &vlen), 0);
    assert_memory_equal(v, "1", 1);
    free(v);
    assert_int_equal(lsm_get(db, NULL, "b", 1, &v, &vlen), SHOAL_ENOTFOUND);
    lsm_close(&db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rlog_overlay_and_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlog_close_reopen_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlog_child_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overlay_and_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_close_rename_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_child_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_child_dies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
