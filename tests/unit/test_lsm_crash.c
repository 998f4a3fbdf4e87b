/* test_lsm_crash.c - crash tests on the in-memory env's power-loss model (env.h): every
 * byte not fdatasync'ed vanishes, and so do directory changes not followed by a directory
 * sync. A random workload (puts, deletes, batches; some writes synced; flushes and
 * compactions running in the background) is cut by a crash at a random moment, or by I/O
 * errors injected from a random call on; then the store must open cleanly and hold exactly
 * the state after some prefix of the history that includes every synced write.
 *
 * LSM_SEED=<n> replays a run (printed at start and on failure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/lsm/env.h"
#include "engine/lsm/lsm.h"

#define NKEYS 400
#define MAXOPS 400 /* ops between crashes */

static uint64_t rs, seed;

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
            fprintf(stderr, "crash test failed (replay: LSM_SEED=%llu): ",                 \
                    (unsigned long long)seed);                                             \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* A state: per key, 0 = absent, else the version number written (values encode it). */
typedef struct {
    uint32_t v[NKEYS];
} state_t;

typedef struct {
    int key;
    uint32_t ver; /* 0 = delete */
} op_t;

static void key_of(int i, char *k)
{
    snprintf(k, 16, "key%04d", i);
}

static size_t value_of(int key, uint32_t ver, char *buf)
{
    /* Long values so memtables fill (64 KiB) and flush every few hundred writes. */
    int n = snprintf(buf, 64, "v%u-k%d-", ver, key);
    memset(buf + n, 'x', 200);
    return (size_t)n + 200;
}

static void open_db(lsm_env_t *env, lsm_t **db)
{
    lsm_options_t o;
    lsm_options_init(&o);
    o.env = env;
    o.dir = "/crash/db";
    o.write_buffer_size = 64 << 10;
    o.target_file_size = 64 << 10;
    o.max_bytes_level1 = 1 << 20;
    o.block_size = 1024;
    o.l0_slowdown_trigger = 3;
    o.l0_stop_trigger = 5;
    char err[512];
    int rc = lsm_open(&o, db, err, sizeof err);
    CHECK(rc == 0, "reopen after crash: %d %s", rc, err);
}

/* Reads the whole store into s. */
static void read_state(lsm_t *db, state_t *s)
{
    memset(s, 0, sizeof *s);
    lsm_iter_t *it;
    CHECK(lsm_iter_new(db, NULL, &it) == 0, "iter");
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
        size_t kl, vl;
        const char *k = lsm_iter_key(it, &kl), *v = lsm_iter_value(it, &vl);
        int key;
        unsigned ver;
        char kb[16];
        snprintf(kb, sizeof kb, "%.*s", (int)kl, k);
        CHECK(sscanf(kb, "key%d", &key) == 1 && key >= 0 && key < NKEYS, "bad key %s", kb);
        CHECK(vl > 1 && sscanf(v, "v%u-", &ver) == 1, "bad value for %s", kb);
        char want[300];
        size_t wn = value_of(key, ver, want);
        CHECK(wn == vl && memcmp(want, v, vl) == 0, "value of %s is damaged", kb);
        s->v[key] = ver;
    }
    CHECK(lsm_iter_status(it) == 0, "iteration failed: %d", lsm_iter_status(it));
    lsm_iter_destroy(&it);
}

/* The recovered state must equal base + ops[0..p) for some p >= synced. */
static int match_prefix(const state_t *got, const state_t *base, const op_t *ops, int n,
                        int synced)
{
    state_t s = *base;
    for (int p = 0; p <= n; p++) {
        if (p >= synced && memcmp(&s, got, sizeof s) == 0)
            return p;
        if (p < n)
            s.v[ops[p].key] = ops[p].ver;
    }
    return -1;
}

/* One round: random ops with occasional sync, then a crash (or injected failures first). */
static void round_trip(lsm_env_t *env, lsm_t **db, state_t *base, uint32_t *ver)
{
    op_t ops[MAXOPS];
    int n = 0, synced = 0, len = 50 + (int)(rnd() % (MAXOPS - 60));
    bool failing = rnd() % 3 == 0;
    char k[16], v[300];
    if (failing)
        lsm_env_mem_fail_after(env, 1 + (long)(rnd() % 400));
    while (n < len) {
        int r = (int)(rnd() % 100);
        lsm_write_options_t wo = {.sync = rnd() % 10 == 0};
        int rc;
        if (r < 80) {
            int key = (int)(rnd() % NKEYS);
            uint32_t nv = r < 70 ? ++*ver : 0;
            key_of(key, k);
            rc = nv ? lsm_put(*db, &wo, k, strlen(k), v, value_of(key, nv, v))
                    : lsm_delete(*db, &wo, k, strlen(k));
            if (rc == 0)
                ops[n++] = (op_t){key, nv};
        } else {
            lsm_batch_t *b = lsm_batch_new();
            int cnt = 1 + (int)(rnd() % 5), key[5];
            uint32_t vv[5];
            for (int j = 0; j < cnt; j++) {
                key[j] = (int)(rnd() % NKEYS);
                vv[j] = ++*ver;
                key_of(key[j], k);
                lsm_batch_put(b, k, strlen(k), v, value_of(key[j], vv[j], v));
            }
            rc = lsm_write(*db, &wo, b);
            for (int j = 0; rc == 0 && j < cnt && n < MAXOPS; j++)
                ops[n++] = (op_t){key[j], vv[j]};
            lsm_batch_destroy(&b);
        }
        if (rc != 0) {
            CHECK(failing, "write failed without injected failures: %d", rc);
            break; /* the store refuses writes once its disk failed */
        }
        if (wo.sync)
            synced = n;
        if (rnd() % 50 == 0)
            lsm_flush(*db); /* may fail under injected errors: fine */
    }
    if (rnd() % 2)
        usleep((useconds_t)(rnd() % 2000)); /* let background work get somewhere */
    lsm_env_mem_crash(env);
    lsm_close(db); /* the old handle's files are stale: close must still be clean */
    open_db(env, db);
    state_t got;
    read_state(*db, &got);
    int p = match_prefix(&got, base, ops, n, synced);
    CHECK(p >= 0, "recovered state is no prefix of the history (n=%d synced=%d)", n, synced);
    *base = got;
}

static void test_crash_recovery(void **state)
{
    lsm_env_t *env = lsm_env_mem_new();
    lsm_t *db;
    state_t base = {{0}};
    uint32_t ver = 0;
    fprintf(stderr, "crash test: LSM_SEED=%llu\n", (unsigned long long)seed);
    open_db(env, &db);
    int rounds = getenv("LSM_ROUNDS") ? atoi(getenv("LSM_ROUNDS")) : 60;
    for (int r = 0; r < rounds; r++)
        round_trip(env, &db, &base, &ver);
    lsm_close(&db);
    lsm_env_mem_destroy(&env);
}

/* A crash in the middle of an ingest leaves the old content, whole. */
static void test_crash_during_ingest(void **state)
{
    lsm_env_t *env = lsm_env_mem_new();
    lsm_t *db;
    char k[16], v[300];
    open_db(env, &db);
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, k);
        lsm_write_options_t wo = {.sync = i == NKEYS - 1};
        CHECK(lsm_put(db, &wo, k, strlen(k), v, value_of(i, 1, v)) == 0, "put");
    }
    lsm_export_t *ex;
    lsm_ingest_t *in;
    CHECK(lsm_export_begin(db, NULL, &ex) == 0, "export");
    CHECK(lsm_ingest_begin(db, &in) == 0, "ingest");
    char buf[4096];
    size_t n;
    CHECK(lsm_export_read(ex, buf, sizeof buf, &n) == 0 && n > 0, "export read");
    CHECK(lsm_ingest_write(in, buf, n) == 0, "ingest write");
    lsm_env_mem_crash(env);
    lsm_ingest_abort(&in);
    lsm_export_end(&ex);
    lsm_close(&db);
    open_db(env, &db);
    state_t got;
    read_state(db, &got);
    for (int i = 0; i < NKEYS; i++)
        CHECK(got.v[i] == 1, "key %d lost by a crash during ingest", i);
    lsm_close(&db);
    lsm_env_mem_destroy(&env);
}

/* Puts key i (value of 1 + i % 251 bytes, so records straddle the posix env's window and
 * allocation boundaries) without sync, then dies by SIGKILL: no close, no trim. */
static void killed_writer(const char *dir, int n)
{
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    lsm_t *db;
    char err[256], k[16], v[256];
    if (lsm_open(&o, &db, err, sizeof err) != 0)
        _exit(2);
    memset(v, 'v', sizeof v);
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "k%08d", i);
        v[0] = (char)i;
        if (lsm_put(db, NULL, k, strlen(k), v, 1 + (size_t)i % 251) != 0)
            _exit(3);
    }
    raise(SIGKILL);
    _exit(4);
}

/* The killed writer's WAL must end in space allocated ahead (whole 1 MiB steps), else this
 * test ran the write() fallback (a file system without fallocate) and says so. */
static void log_is_allocated_ahead(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir %s", dir);
    struct dirent *e;
    int logs = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".log"))
            continue;
        char path[512];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        CHECK(stat(path, &sb) == 0, "stat %s", path);
        if (sb.st_size > 0 && sb.st_size % (1 << 20) == 0)
            logs++;
    }
    closedir(d);
    if (!logs)
        fprintf(stderr, "note: no WAL allocated ahead in %s (no fallocate?)\n", dir);
}

/* On disk (posix env): the WAL is stored through a shared mapping of space allocated
 * ahead; a process killed after unsynced puts must keep every one of them (they are in
 * the page cache), and recovery must stop at the zeros after the last record. 100k puts
 * of ~130 bytes cross a dozen 1 MiB mapping windows. */
static void test_posix_kill_keeps_unsynced_puts(void **state)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/lsm-crash-test-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    const int n = 100000;
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        killed_writer(dir, n);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "writer did not die by SIGKILL (%d)", st);
    log_is_allocated_ahead(dir);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = dir;
    lsm_t *db;
    char err[256], k[16];
    CHECK(lsm_open(&o, &db, err, sizeof err) == 0, "reopen after kill: %s", err);
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "k%08d", i);
        void *v;
        size_t vl;
        CHECK(lsm_get(db, NULL, k, strlen(k), &v, &vl) == 0, "put %d lost by the kill", i);
        CHECK(vl == 1 + (size_t)i % 251 && ((char *)v)[0] == (char)i, "put %d wrong", i);
        free(v);
    }
    lsm_close(&db);
    CHECK(lsm_destroy(dir, NULL) == 0, "destroy");
}

int main(void)
{
    const char *s = getenv("LSM_SEED");
    seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    rs = seed ? seed : 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_crash_during_ingest),
        cmocka_unit_test(test_posix_kill_keeps_unsynced_puts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
