/* chaos_cluster.c - end-to-end fault test of a whole local cluster through libshoal.
 *
 * Starts `shoalctl cluster up` (3 nodes, 4 shards, 3 replicas, one broker; its nodes serve
 * linearizable reads from leader leases, raft/read_mode = "lease") in a temporary
 * folder on free ports, then runs W writer threads, each with its own libshoal connection,
 * while a nemesis driven by one seed injects faults, one at a time (never more than a
 * minority of the nodes is out):
 *   - kill -9 a node (`cluster stop-node --kill`), restart it after a while (`start-node`),
 *     sometimes kill it again while it recovers (0-700 ms after its restart);
 *   - SIGSTOP a node for longer than an election timeout, then SIGCONT;
 *   - kill -9 the broker and start a new one from the cluster's broker.cfg;
 *   - transfer the leadership of a random shard to a random node;
 *   - take a snapshot of a random shard now (admin `snapshot`: log truncation).
 * Half the seeds also restart the nodes with a small storage/snapshot_entries (200..2000)
 * and snapshot_trailing_entries (0 or a quarter of that) first, so that log truncation and
 * InstallSnapshot to a restarted node happen under the faults; the others keep shoald's
 * defaults.
 * Most faults wait until every replica has caught up before the next; some follow at once,
 * so a node can be killed while another one is still catching up.
 * Writers put unique keys, overwrite and delete their own keys, re-create deleted ones,
 * read their own keys back (linearizable: exactly their last acknowledged write), and
 * increment a few shared counters by get + compare-and-swap. Every operation's
 * outcome is recorded with its time. An outcome of TIMEOUT / UNAVAILABLE / INTERNAL is
 * ambiguous (the write may or may not have applied, possibly later): the key is then never
 * touched again, so its final state is one of exactly two.
 *
 * After the faults stop and the cluster heals (every node up, every shard with a leader,
 * every replica caught up) the test checks, with linearizable reads:
 *   - every acknowledged put reads back with its value (or the key's later acknowledged
 *     state), every acknowledged delete is absent unless the key was written again;
 *   - each counter equals the number of its applied increments: at least the acknowledged
 *     ones, at most those plus the ambiguous ones, no two acknowledged increments produced
 *     the same number (a lost update), and the final value is one some client wrote;
 *   - a scan across all shards returns exactly the keys the point reads found, with the
 *     same values;
 *   - no process died on its own, no sanitizer report in any log, `cluster down` is clean.
 * A failure prints the seed and the command that replays the same fault schedule.
 *
 * Processes are tracked by pid (the cluster's pid files); a guardian process forked first
 * kills them and removes the folder if this process dies in any way (assert, signal,
 * ctest timeout). Logs of a failed run are copied to /tmp/shoal-chaos-logs.<seed>.<pid>.
 *
 *   chaos_cluster [--seed S] [--duration SECONDS] [--writers W] [--verbose] [--plant]
 *                 [--snapshot-entries N]
 * Needs SHOAL_BUILD_DIR (the build tree with tools/shoalctl, actors/shoald,
 * broker/shoal-broker). Exit 0 when every check passed, 1 otherwise. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/shoal.h"
#include "cluster_proc.h"

#define NODES 3
#define SHARDS 4
#define NCTR 4
#define MAX_WRITERS 32
#define OP_TIMEOUT_MS 6000
#define CHECK_TIMEOUT_MS 10000

/* ---- the run: configuration and shared state ---------------------------------------- */

typedef struct {
    uint64_t seed;
    int duration_s;
    int writers;
    bool verbose;
    bool plant;                 /* self-test: plant a lost write and a doubled increment */
    int seen_lost, seen_double; /* lost writes / counters past their increments found */
    int planted_hits;           /* failures reported for those two */
    const char *build;
    char dir[256];
    char ctl[512];
    char broker_ep[64];
    int base;
    int64_t t0; /* monotonic ms at the start */
    atomic_bool stop_writers;
    pthread_mutex_t lock; /* failures and the nemesis log */
    int failures;
    char **log; /* nemesis actions, time-stamped */
    size_t n_log, cap_log;
    pid_t stopped;      /* a node under SIGSTOP, 0 when none */
    pid_t broker_child; /* a broker this process started (to reap), 0 when none */
    int faults[5];
    int snap_entries;  /* storage/snapshot_entries of the nodes, 0: shoald's default */
    int snap_trailing; /* storage/snapshot_trailing_entries with snap_entries */
} run_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double since(run_t *run)
{
    return (double)(mono_ms() - run->t0) / 1000.0;
}

static void note(run_t *run, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "[%7.3f s] ", since(run));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&run->lock);
    if (run->n_log == run->cap_log) {
        run->cap_log = run->cap_log ? run->cap_log * 2 : 64;
        run->log = realloc(run->log, run->cap_log * sizeof *run->log);
    }
    run->log[run->n_log++] = strdup(line);
    pthread_mutex_unlock(&run->lock);
    if (run->verbose)
        fprintf(stderr, "%s\n", line);
}

static void fail(run_t *run, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&run->lock);
    if (run->failures++ < 40)
        fprintf(stderr, "FAIL [%7.3f s]: %s\n", since(run), line);
    pthread_mutex_unlock(&run->lock);
}

/* ---- processes (the shared helpers are in cluster_proc.c) ---------------------------- */

/* shoalctl with its output appended to DIR/logs/chaos-ctl.log; returns its exit code. */
static int ctl(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl(run_t *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cluster_vctl(run->ctl, run->dir, "chaos-ctl.log", fmt, ap);
    va_end(ap);
    return rc;
}

/* Copies the logs of a failed run next to the folder (which is then removed). */
static void keep_logs(const char *dir, uint64_t seed)
{
    char dest[128];
    snprintf(dest, sizeof dest, "/tmp/shoal-chaos-logs.%" PRIu64 ".%d", seed, (int)getpid());
    cluster_keep_logs(dir, dest);
}

/* What the guardian does when this process is gone and the folder is still there, before
 * it removes the folder: say so and keep the logs. */
static void guardian_gone(const char *dir, void *arg)
{
    run_t *run = arg;
    fprintf(stderr, "chaos guardian: test process gone, cleaning %s (seed %" PRIu64 ")\n", dir,
            run->seed);
    keep_logs(dir, run->seed);
}

static void broker_start(run_t *run)
{
    char bin[1200], cfg[1200], logp[1200], pidf[1200];
    snprintf(bin, sizeof bin, "%s/broker/shoal-broker", run->build);
    snprintf(cfg, sizeof cfg, "%s/broker.cfg", run->dir);
    snprintf(logp, sizeof logp, "%s/logs/broker.log", run->dir);
    snprintf(pidf, sizeof pidf, "%s/pids/broker.pid", run->dir);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execl(bin, bin, "--config", cfg, (char *)NULL);
        _exit(127);
    }
    run->broker_child = pid;
    FILE *f = fopen(pidf, "w");
    if (f) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

static void wait_gone(pid_t pid, int ms)
{
    for (int t = 0; t < ms && cluster_pid_alive(pid); t += 10) {
        cluster_reap();
        cluster_sleep_ms(10);
    }
}

/* ---- cluster state through the admin API -------------------------------------------- */

typedef struct {
    int up, leaders;
    uint64_t worst_lag;
} health_t;

static int health(shoal_t *c, health_t *h)
{
    shoal_cluster_t cl;
    char err[256];
    memset(h, 0, sizeof *h);
    int st = shoal_status(c, false, &cl, err, sizeof err);
    if (st != SHOAL_STATUS_OK)
        return st;
    for (size_t i = 0; i < cl.n_nodes; i++)
        h->up += cl.nodes[i].up;
    for (size_t i = 0; i < cl.n_shards; i++) {
        h->leaders += cl.shards[i].leader >= 0;
        if (cl.shards[i].max_lag > h->worst_lag)
            h->worst_lag = cl.shards[i].max_lag;
    }
    shoal_cluster_clear(&cl);
    return st;
}

/* Waits until every node is up, every shard has a leader and every replica of every shard
 * holds (match index) what its shard had committed when this was called: a restarted or
 * resumed node has caught up. Returns the milliseconds it took, or -1 past ms. */
static int64_t wait_caught_up(run_t *run, shoal_t *c, int ms, char *why, size_t whylen)
{
    int64_t start = mono_ms(), until = start + ms;
    uint64_t target[SHARDS] = {0};
    bool have_target = false;
    snprintf(why, whylen, "no status");
    while (mono_ms() < until) {
        shoal_cluster_t cl;
        char err[256];
        if (shoal_status(c, false, &cl, err, sizeof err) != SHOAL_STATUS_OK) {
            snprintf(why, whylen, "status: %.100s", err);
            cluster_sleep_ms(100);
            continue;
        }
        bool done = have_target && cl.n_shards == SHARDS;
        size_t up = 0;
        for (size_t i = 0; i < cl.n_nodes; i++)
            up += cl.nodes[i].up;
        if (up != NODES) {
            snprintf(why, whylen, "%zu/%d nodes up", up, NODES);
            done = false;
        }
        for (size_t i = 0; i < cl.n_shards && i < SHARDS; i++) {
            shoal_shard_status_t *sh = &cl.shards[i];
            if (!have_target)
                target[i] = sh->commit_index;
            if (sh->leader < 0) {
                snprintf(why, whylen, "shard %u has no leader", sh->id);
                done = false;
            }
            for (size_t j = 0; have_target && j < sh->n_replicas && j < 16; j++)
                if (sh->match_index[j] < target[i]) {
                    snprintf(why, whylen, "shard %u: node %" PRIu64 " at %" PRIu64 " of %" PRIu64,
                             sh->id, sh->replicas[j], sh->match_index[j], target[i]);
                    done = false;
                }
        }
        have_target = have_target || cl.n_shards == SHARDS;
        shoal_cluster_clear(&cl);
        if (done)
            return mono_ms() - start;
        cluster_sleep_ms(50);
    }
    return -1;
}

/* ---- writers ------------------------------------------------------------------------ */

enum { ST_NONE = 0, ST_LIVE, ST_GONE };
enum { AMB_NONE = 0, AMB_PUT, AMB_DEL };

typedef struct {
    uint32_t ver;       /* versions written so far (value of the next put: ver + 1) */
    uint32_t acked_ver; /* value version of the last acknowledged put */
    uint32_t amb_ver;   /* value version of the ambiguous put */
    int8_t acked;       /* ST_*: the state after the last acknowledged operation */
    int8_t amb;         /* AMB_*: the last operation's outcome is unknown; key abandoned */
    float t_ack, t_amb; /* seconds since start */
    /* filled by the check */
    int8_t seen;       /* 0 not read, 1 found, 2 absent */
    uint32_t seen_ver; /* version of the value found (0: unrecognised value) */
    int8_t in_scan;
} kstate_t;

typedef struct {
    uint32_t n;  /* the number this increment wrote */
    uint32_t op; /* the writer's op number (in the value's tag) */
    int8_t ok;   /* 1 acknowledged, 0 ambiguous */
    float t;
} incr_t;

typedef struct {
    run_t *run;
    int id;
    uint64_t rng;
    kstate_t *keys;
    size_t n_keys, cap_keys;
    incr_t *incr[NCTR];
    size_t n_incr[NCTR], cap_incr[NCTR];
    uint64_t acked, ambiguous, cas_conflicts, read_errors, reads;
    uint32_t ops;
} writer_t;

static void key_name(int w, size_t n, char *buf, size_t len)
{
    snprintf(buf, len, "chaos/k/%02d/%07zu", w, n);
}

/* The value of version ver of key (w, n): recognisable and of varying length. */
static size_t key_value(int w, size_t n, uint32_t ver, char *buf, size_t len)
{
    int pad = (int)((w * 7919u + n * 104729u + ver * 31u) % 97u);
    int k = snprintf(buf, len, "w%02d.n%zu.v%u.", w, n, ver);
    for (int i = 0; i < pad && (size_t)k + 1 < len; i++)
        buf[k++] = (char)('a' + (i + ver) % 26);
    buf[k] = 0;
    return (size_t)k;
}

/* The version a value encodes for key (w, n), 0 when it is not one of that key's values. */
static uint32_t value_ver(int w, size_t n, const uint8_t *v, size_t vlen)
{
    char want[160], tmp[160];
    unsigned ww;
    size_t nn;
    uint32_t ver;
    if (vlen >= sizeof tmp)
        return 0;
    memcpy(tmp, v, vlen);
    tmp[vlen] = 0;
    if (sscanf(tmp, "w%u.n%zu.v%u.", &ww, &nn, &ver) != 3 || (int)ww != w || nn != n || !ver)
        return 0;
    size_t l = key_value(w, n, ver, want, sizeof want);
    return l == vlen && memcmp(want, v, vlen) == 0 ? ver : 0;
}

static bool ambiguous_status(int st)
{
    return st == SHOAL_STATUS_TIMEOUT || st == SHOAL_STATUS_UNAVAILABLE ||
           st == SHOAL_STATUS_INTERNAL;
}

static const char *state_str(int8_t st)
{
    return st == ST_LIVE ? "live" : st == ST_GONE ? "deleted" : "never acknowledged";
}

static kstate_t *new_key(writer_t *w)
{
    if (w->n_keys == w->cap_keys) {
        w->cap_keys = w->cap_keys ? w->cap_keys * 2 : 1024;
        w->keys = realloc(w->keys, w->cap_keys * sizeof *w->keys);
    }
    kstate_t *k = &w->keys[w->n_keys++];
    memset(k, 0, sizeof *k);
    return k;
}

/* A random key of w in the wanted state that is not abandoned, or -1. */
static long pick_key(writer_t *w, int state)
{
    if (!w->n_keys)
        return -1;
    for (int tries = 0; tries < 8; tries++) {
        size_t i = cluster_xorshift(&w->rng) % w->n_keys;
        if (w->keys[i].acked == state && !w->keys[i].amb)
            return (long)i;
    }
    return -1;
}

static void do_put(writer_t *w, shoal_t *c, size_t i)
{
    kstate_t *k = &w->keys[i];
    char key[64], val[160];
    key_name(w->id, i, key, sizeof key);
    uint32_t ver = ++k->ver;
    size_t vl = key_value(w->id, i, ver, val, sizeof val);
    shoal_result_t r;
    int st = shoal_put(c, key, strlen(key), val, vl, &r);
    float t = (float)since(w->run);
    if (st == SHOAL_STATUS_OK) {
        k->acked = ST_LIVE;
        k->acked_ver = ver;
        k->t_ack = t;
        w->acked++;
    } else if (ambiguous_status(st)) {
        k->amb = AMB_PUT;
        k->amb_ver = ver;
        k->t_amb = t;
        w->ambiguous++;
    } else {
        fail(w->run, "writer %d: put %s answered %s (%s)", w->id, key, shoal_status_str(st),
             r.error);
        k->amb = AMB_PUT; /* unknown: do not assume either way */
        k->amb_ver = ver;
        k->t_amb = t;
    }
    shoal_result_clear(&r);
}

static void do_del(writer_t *w, shoal_t *c, size_t i)
{
    kstate_t *k = &w->keys[i];
    char key[64];
    key_name(w->id, i, key, sizeof key);
    shoal_result_t r;
    int st = shoal_del(c, key, strlen(key), &r);
    float t = (float)since(w->run);
    if (st == SHOAL_STATUS_OK || st == SHOAL_STATUS_NOT_FOUND) {
        k->acked = ST_GONE;
        k->t_ack = t;
        w->acked++;
    } else if (ambiguous_status(st)) {
        k->amb = AMB_DEL;
        k->t_amb = t;
        w->ambiguous++;
    } else {
        fail(w->run, "writer %d: del %s answered %s (%s)", w->id, key, shoal_status_str(st),
             r.error);
        k->amb = AMB_DEL;
        k->t_amb = t;
    }
    shoal_result_clear(&r);
}

/* A linearizable get of a key only this writer writes, whose last write was acknowledged:
 * it must return exactly that (a stale leader or a lost write would not). */
static void do_read(writer_t *w, shoal_t *c, size_t i)
{
    kstate_t *k = &w->keys[i];
    char key[64];
    key_name(w->id, i, key, sizeof key);
    shoal_result_t r;
    int st = shoal_get(c, key, strlen(key), false, &r);
    w->reads++;
    if (st == SHOAL_STATUS_OK || st == SHOAL_STATUS_NOT_FOUND) {
        uint32_t ver = st == SHOAL_STATUS_OK ? value_ver(w->id, i, r.value, r.value_len) : 0;
        bool ok = k->acked == ST_LIVE ? st == SHOAL_STATUS_OK && ver == k->acked_ver
                                      : st == SHOAL_STATUS_NOT_FOUND;
        if (!ok)
            fail(w->run,
                 "writer %d: linearizable get of %s returned %s v%u; its last write, "
                 "acknowledged at %.3f s, left it %s (v%u)",
                 w->id, key, st == SHOAL_STATUS_OK ? "value" : "not found", ver, (double)k->t_ack,
                 state_str(k->acked), k->acked_ver);
    } else if (!ambiguous_status(st)) {
        fail(w->run, "writer %d: get %s answered %s (%s)", w->id, key, shoal_status_str(st),
             r.error);
    }
    shoal_result_clear(&r);
}

static void add_incr(writer_t *w, int ctr, uint32_t n, uint32_t op, bool ok)
{
    if (w->n_incr[ctr] == w->cap_incr[ctr]) {
        w->cap_incr[ctr] = w->cap_incr[ctr] ? w->cap_incr[ctr] * 2 : 256;
        w->incr[ctr] = realloc(w->incr[ctr], w->cap_incr[ctr] * sizeof *w->incr[ctr]);
    }
    w->incr[ctr][w->n_incr[ctr]++] = (incr_t){n, op, ok, (float)since(w->run)};
}

/* One increment attempt: linearizable get, then CAS from that value to the next number
 * tagged with this writer and op ("N|wWW.OP"). */
static void do_incr(writer_t *w, shoal_t *c, int ctr)
{
    char key[32];
    snprintf(key, sizeof key, "chaos/ctr/%d", ctr);
    shoal_result_t r;
    int st = shoal_get(c, key, strlen(key), false, &r);
    if (st != SHOAL_STATUS_OK) {
        if (!ambiguous_status(st))
            fail(w->run, "writer %d: get %s answered %s (%s)", w->id, key, shoal_status_str(st),
                 r.error);
        w->read_errors++;
        shoal_result_clear(&r);
        return;
    }
    char cur[64];
    size_t cl = r.value_len < sizeof cur - 1 ? r.value_len : sizeof cur - 1;
    memcpy(cur, r.value, cl);
    cur[cl] = 0;
    shoal_result_clear(&r);
    uint32_t n = (uint32_t)strtoul(cur, NULL, 10);
    uint32_t op = ++w->ops;
    char next[64];
    int nl = snprintf(next, sizeof next, "%u|w%02d.%u", n + 1, w->id, op);
    st = shoal_cas(c, key, strlen(key), cur, cl, false, next, (size_t)nl, &r);
    if (st == SHOAL_STATUS_OK) {
        add_incr(w, ctr, n + 1, op, true);
        w->acked++;
    } else if (st == SHOAL_STATUS_COMPARE_FAILED) {
        w->cas_conflicts++;
    } else if (ambiguous_status(st)) {
        add_incr(w, ctr, n + 1, op, false);
        w->ambiguous++;
    } else {
        fail(w->run, "writer %d: cas %s answered %s (%s)", w->id, key, shoal_status_str(st),
             r.error);
        add_incr(w, ctr, n + 1, op, false);
    }
    shoal_result_clear(&r);
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    shoal_t *c = shoal_connect(w->run->broker_ep);
    if (!c) {
        fail(w->run, "writer %d: cannot connect", w->id);
        return NULL;
    }
    shoal_set_timeout(c, OP_TIMEOUT_MS);
    while (!atomic_load(&w->run->stop_writers)) {
        int r = cluster_rnd(&w->rng, 0, 99);
        long i = -1;
        if (r >= 85) {
            do_incr(w, c, cluster_rnd(&w->rng, 0, NCTR - 1));
            continue;
        }
        if (r >= 77) { /* read one of its own keys back: no one else writes it */
            i = pick_key(w, cluster_rnd(&w->rng, 0, 3) ? ST_LIVE : ST_GONE);
            if (i >= 0)
                do_read(w, c, (size_t)i);
            continue;
        }
        if (r >= 45) /* overwrite or delete a live key, or write a deleted one again */
            i = pick_key(w, r < 72 ? ST_LIVE : ST_GONE);
        if (i < 0) {
            new_key(w);
            do_put(w, c, w->n_keys - 1);
        } else if (r >= 60 && r < 72) {
            do_del(w, c, (size_t)i);
        } else {
            do_put(w, c, (size_t)i);
        }
    }
    shoal_destroy(&c);
    return NULL;
}

/* ---- nemesis ------------------------------------------------------------------------ */

enum { F_KILL_NODE, F_STOP_NODE, F_KILL_BROKER, F_TRANSFER, F_SNAPSHOT, F_COUNT };
static const char *fault_name[] = {"kill-node", "sigstop-node", "kill-broker", "transfer",
                                   "snapshot"};

static void nemesis(run_t *run, shoal_t *admin, uint64_t *rng, int64_t until)
{
    while (mono_ms() < until && !run->failures) {
        cluster_sleep_ms(cluster_rnd(rng, 200, 1200));
        int r = cluster_rnd(rng, 0, 99);
        int f = r < 33   ? F_KILL_NODE
                : r < 56 ? F_STOP_NODE
                : r < 70 ? F_KILL_BROKER
                : r < 90 ? F_TRANSFER
                         : F_SNAPSHOT;
        int node = cluster_rnd(rng, 0, NODES - 1);
        int hold = f == F_KILL_NODE   ? cluster_rnd(rng, 300, 3000)
                   : f == F_STOP_NODE ? cluster_rnd(rng, 500, 2500)
                                      : cluster_rnd(rng, 0, 1000);
        run->faults[f]++;
        if (f == F_KILL_NODE) {
            pid_t pid = cluster_node_pid(run->dir, node);
            int rc = ctl(run, "cluster stop-node --dir %s %d --kill", run->dir, node);
            note(run, "kill -9 node %d (pid %d)%s; restart in %d ms", node, (int)pid,
                 rc ? " [stop-node failed]" : "", hold);
            if (rc)
                fail(run, "cluster stop-node --kill %d exited %d", node, rc);
            cluster_sleep_ms(hold);
            int64_t t = mono_ms();
            rc = ctl(run, "cluster start-node --dir %s %d", run->dir, node);
            note(run, "start node %d: exit %d in %" PRId64 " ms (pid %d)", node, rc, mono_ms() - t,
                 (int)cluster_node_pid(run->dir, node));
            if (rc)
                fail(run, "cluster start-node %d exited %d (see logs/node-%d.log)", node, rc, node);
            if (!rc && cluster_rnd(rng, 0, 99) < 25) { /* again, while it recovers */
                int again = cluster_rnd(rng, 0, 700);
                cluster_sleep_ms(again);
                rc = ctl(run, "cluster stop-node --dir %s %d --kill", run->dir, node);
                note(run, "kill -9 node %d again %d ms after its restart", node, again);
                cluster_sleep_ms(cluster_rnd(rng, 100, 1000));
                rc = rc ? rc : ctl(run, "cluster start-node --dir %s %d", run->dir, node);
                note(run, "start node %d: exit %d (pid %d)", node, rc,
                     (int)cluster_node_pid(run->dir, node));
                if (rc)
                    fail(run,
                         "second kill and restart of node %d: exit %d (see "
                         "logs/node-%d.log)",
                         node, rc, node);
            }
        } else if (f == F_STOP_NODE) {
            pid_t pid = cluster_node_pid(run->dir, node);
            if (!cluster_pid_alive(pid)) {
                fail(run, "node %d (pid %d) is not running before SIGSTOP", node, (int)pid);
                continue;
            }
            note(run, "SIGSTOP node %d (pid %d) for %d ms", node, (int)pid, hold);
            run->stopped = pid;
            kill(pid, SIGSTOP);
            cluster_sleep_ms(hold);
            kill(pid, SIGCONT);
            run->stopped = 0;
            note(run, "SIGCONT node %d", node);
        } else if (f == F_KILL_BROKER) {
            pid_t pid = cluster_read_pid(run->dir, "broker");
            if (!cluster_pid_alive(pid)) {
                fail(run, "broker (pid %d) is not running before its kill", (int)pid);
                continue;
            }
            kill(pid, SIGKILL);
            wait_gone(pid, 3000);
            note(run, "kill -9 broker (pid %d); new broker in %d ms", (int)pid, hold);
            cluster_sleep_ms(hold);
            broker_start(run);
            note(run, "broker started (pid %d)", (int)run->broker_child);
        } else if (f == F_TRANSFER) {
            uint32_t shard = (uint32_t)cluster_rnd(rng, 0, SHARDS - 1);
            char err[256] = "";
            int st = shoal_admin_transfer_leader(admin, shard, (uint64_t)node, err, sizeof err);
            note(run, "transfer leader of shard %u to node %d: %s %s", shard, node,
                 shoal_status_str(st), st ? err : "");
        } else { /* a snapshot (and log truncation) of one shard, now */
            int64_t shard = cluster_rnd(rng, 0, SHARDS - 1);
            char err[256] = "";
            int st = shoal_admin_snapshot(admin, shard, err, sizeof err);
            note(run, "snapshot of shard %" PRId64 ": %s %s", shard, shoal_status_str(st),
                 st ? err : "");
        }
        cluster_reap();
        /* One fault at a time. Mostly the next waits until every node is back and caught
         * up; sometimes it hits while a restarted node is still catching up (still never
         * more than one node down). */
        if (cluster_rnd(rng, 0, 99) < 30) {
            note(run, "next fault without waiting for catch-up");
            continue;
        }
        char why[160];
        int64_t took = wait_caught_up(run, admin, 30000, why, sizeof why);
        if (took < 0)
            fail(run, "cluster not caught up 30 s after the last fault: %s", why);
        else if (f == F_KILL_NODE || f == F_STOP_NODE || took > 2000)
            note(run, "every replica caught up %" PRId64 " ms later", took);
    }
}

/* ---- checks ------------------------------------------------------------------------- */

typedef struct {
    writer_t *w;
    size_t i;
    int *pending_retry;
} getreq_t;

static void get_done(shoal_result_t *r, void *arg)
{
    getreq_t *q = arg;
    kstate_t *k = &q->w->keys[q->i];
    if (r->status == SHOAL_STATUS_OK) {
        k->seen = 1;
        k->seen_ver = value_ver(q->w->id, q->i, r->value, r->value_len);
    } else if (r->status == SHOAL_STATUS_NOT_FOUND) {
        k->seen = 2;
    } else {
        k->seen = 0;
        (*q->pending_retry)++;
    }
    free(q);
}

/* Reads every key of every writer (pipelined linearizable gets), retrying transient errors. */
static bool read_all_keys(run_t *run, shoal_t *c, writer_t *ws)
{
    for (int pass = 0; pass < 6; pass++) {
        int retry = 0;
        for (int wi = 0; wi < run->writers; wi++)
            for (size_t i = 0; i < ws[wi].n_keys; i++) {
                if (ws[wi].keys[i].seen)
                    continue;
                char key[64];
                key_name(wi, i, key, sizeof key);
                getreq_t *q = malloc(sizeof *q);
                *q = (getreq_t){&ws[wi], i, &retry};
                shoal_op_t op = {.type = SHOAL_OP_GET, .key = key, .key_len = strlen(key)};
                while (shoal_inflight(c) >= 256)
                    shoal_pump(c, 10);
                if (shoal_submit(c, &op, get_done, q) != 0) {
                    free(q);
                    retry++;
                }
            }
        while (shoal_inflight(c))
            shoal_pump(c, 50);
        if (!retry)
            return true;
        note(run, "check: %d reads to retry", retry);
        cluster_sleep_ms(1000);
    }
    return false;
}

static void check_keys(run_t *run, writer_t *ws, uint64_t *live, uint64_t *amb_keys)
{
    for (int wi = 0; wi < run->writers; wi++)
        for (size_t i = 0; i < ws[wi].n_keys; i++) {
            kstate_t *k = &ws[wi].keys[i];
            char key[64];
            key_name(wi, i, key, sizeof key);
            if (!k->seen) {
                fail(run, "%s could not be read after the faults", key);
                continue;
            }
            if (k->seen == 1 && !k->seen_ver) {
                fail(run, "%s holds a value this key was never given", key);
                continue;
            }
            /* allowed: the state after the last acknowledged operation ... */
            bool ok = k->seen == 1 ? k->acked == ST_LIVE && k->seen_ver == k->acked_ver
                                   : k->acked != ST_LIVE;
            /* ... or the effect of the one ambiguous operation after it */
            if (k->amb == AMB_PUT)
                ok = ok || (k->seen == 1 && k->seen_ver == k->amb_ver);
            if (k->amb == AMB_DEL)
                ok = ok || k->seen == 2;
            *amb_keys += k->amb != AMB_NONE;
            *live += k->seen == 1;
            if (ok)
                continue;
            char amb[96] = "";
            if (k->amb)
                snprintf(amb, sizeof amb, "; then an ambiguous %s (v%u) at %.3f s",
                         k->amb == AMB_PUT ? "put" : "del", k->amb_ver, (double)k->t_amb);
            if (k->seen == 1)
                fail(run, "%s reads v%u; last acknowledged: %s (v%u) at %.3f s%s", key, k->seen_ver,
                     state_str(k->acked), k->acked_ver, (double)k->t_ack, amb);
            else if (++run->seen_lost && ++run->planted_hits)
                fail(run,
                     "%s is missing (acknowledged write LOST); last acknowledged: %s v%u "
                     "at %.3f s%s",
                     key, state_str(k->acked), k->acked_ver, (double)k->t_ack, amb);
        }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void check_counters(run_t *run, shoal_t *c, writer_t *ws)
{
    for (int ctr = 0; ctr < NCTR; ctr++) {
        char key[32];
        snprintf(key, sizeof key, "chaos/ctr/%d", ctr);
        shoal_result_t r;
        int st = SHOAL_STATUS_UNAVAILABLE;
        for (int t = 0; t < 5 && (st = shoal_get(c, key, strlen(key), false, &r)) != 0; t++) {
            shoal_result_clear(&r);
            cluster_sleep_ms(500);
        }
        if (st != SHOAL_STATUS_OK) {
            fail(run, "counter %s unreadable after the faults: %s", key, shoal_status_str(st));
            shoal_result_clear(&r);
            continue;
        }
        char val[64];
        size_t vl = r.value_len < sizeof val - 1 ? r.value_len : sizeof val - 1;
        memcpy(val, r.value, vl);
        val[vl] = 0;
        shoal_result_clear(&r);
        unsigned n = 0, tw = 0, top = 0;
        bool init = strcmp(val, "0|init") == 0;
        if (!init && sscanf(val, "%u|w%u.%u", &n, &tw, &top) != 3) {
            fail(run, "counter %s holds '%s', which no client wrote", key, val);
            continue;
        }
        size_t oks = 0, ambs = 0;
        uint32_t *nums = NULL;
        bool tag_known = init;
        for (int wi = 0; wi < run->writers; wi++)
            for (size_t j = 0; j < ws[wi].n_incr[ctr]; j++) {
                incr_t *in = &ws[wi].incr[ctr][j];
                if (in->ok) {
                    nums = realloc(nums, (oks + 1) * sizeof *nums);
                    nums[oks++] = in->n;
                } else {
                    ambs++;
                }
                if ((unsigned)wi == tw && in->op == top && in->n == n)
                    tag_known = true;
            }
        qsort(nums, oks, sizeof *nums, cmp_u32);
        for (size_t j = 1; j < oks; j++)
            if (nums[j] == nums[j - 1])
                fail(run, "counter %s: two acknowledged increments both wrote %u (lost update)",
                     key, nums[j]);
        run->seen_double += !tag_known || n > oks + ambs;
        run->planted_hits += !tag_known + (n > oks + ambs);
        if (!tag_known)
            fail(run, "counter %s holds '%s': no acknowledged or ambiguous CAS wrote that", key,
                 val);
        if (n < oks)
            fail(run, "counter %s = %u but %zu increments were acknowledged (LOST increments)", key,
                 n, oks);
        if (n > oks + ambs)
            fail(run,
                 "counter %s = %u but only %zu acknowledged + %zu ambiguous increments "
                 "(an increment applied TWICE, or one reported failed that applied)",
                 key, n, oks, ambs);
        if (oks && nums[oks - 1] > n)
            fail(run, "counter %s = %u below an acknowledged increment to %u", key, n,
                 nums[oks - 1]);
        fprintf(stderr, "counter %s = %u: %zu acknowledged, %zu ambiguous increments\n", key, n,
                oks, ambs);
        free(nums);
    }
}

/* Scans chaos/k/ across every shard, page by page, and compares with the point reads. */
static void check_scan(run_t *run, shoal_t *c, writer_t *ws, uint64_t live)
{
    char start[80] = "chaos/k/";
    size_t slen = strlen(start);
    const char *end = "chaos/k0"; /* '0' follows '/' */
    uint64_t got = 0;
    char prev[80] = "";
    for (;;) {
        shoal_result_t r;
        int st = SHOAL_STATUS_UNAVAILABLE;
        for (int t = 0; t < 5; t++) {
            st = shoal_scan(c, NULL, 0, start, slen, end, strlen(end), 1000, &r);
            if (st == SHOAL_STATUS_OK)
                break;
            shoal_result_clear(&r);
            cluster_sleep_ms(500);
        }
        if (st != SHOAL_STATUS_OK) {
            fail(run, "scan from %s failed: %s", start, shoal_status_str(st));
            return;
        }
        for (size_t j = 0; j < r.n_kvs; j++) {
            shoal_kv_t *kv = &r.kvs[j];
            char key[80];
            size_t kl = kv->key_len < sizeof key - 1 ? kv->key_len : sizeof key - 1;
            memcpy(key, kv->key, kl);
            key[kl] = 0;
            if (strcmp(key, prev) <= 0)
                fail(run, "scan out of order or repeated: %s after %s", key, prev);
            snprintf(prev, sizeof prev, "%s", key);
            unsigned w;
            size_t n;
            if (sscanf(key, "chaos/k/%u/%zu", &w, &n) != 2 || (int)w >= run->writers ||
                n >= ws[w].n_keys) {
                fail(run, "scan returned %s, a key no client wrote", key);
                continue;
            }
            kstate_t *k = &ws[w].keys[n];
            uint32_t ver = value_ver((int)w, n, kv->value, kv->value_len);
            if (k->seen != 1 || ver != k->seen_ver)
                fail(run, "scan returned %s = v%u but its point read found %s v%u", key, ver,
                     k->seen == 1 ? "value" : "nothing", k->seen_ver);
            k->in_scan = 1;
            got++;
        }
        bool more = r.more;
        if (r.n_kvs) {
            shoal_kv_t *last = &r.kvs[r.n_kvs - 1];
            slen = last->key_len < sizeof start - 1 ? last->key_len : sizeof start - 2;
            memcpy(start, last->key, slen);
            start[slen++] = 0; /* the first key after the last one */
        }
        shoal_result_clear(&r);
        if (!more)
            break;
    }
    for (int wi = 0; wi < run->writers; wi++)
        for (size_t i = 0; i < ws[wi].n_keys; i++)
            if (ws[wi].keys[i].seen == 1 && !ws[wi].keys[i].in_scan) {
                char key[64];
                key_name(wi, i, key, sizeof key);
                fail(run, "%s is readable but missing from the scan", key);
            }
    if (got != live)
        fail(run, "scan returned %" PRIu64 " keys, point reads found %" PRIu64, got, live);
}

/* Self-test of the checks: one acknowledged write deleted and one increment made behind
 * the writers' backs; the checks must report both (and nothing else). */
static void plant(run_t *run, shoal_t *c, writer_t *ws)
{
    for (size_t i = 0; i < ws[0].n_keys; i++)
        if (ws[0].keys[i].acked == ST_LIVE && !ws[0].keys[i].amb) {
            char key[64];
            key_name(0, i, key, sizeof key);
            int st = shoal_del(c, key, strlen(key), NULL);
            note(run, "planted: %s deleted behind the writers' backs (%s)", key,
                 shoal_status_str(st));
            break;
        }
    shoal_result_t r;
    if (shoal_get(c, "chaos/ctr/0", 11, false, &r) == SHOAL_STATUS_OK) {
        char next[64];
        int nl = snprintf(next, sizeof next, "%lu|w00.4000000000",
                          strtoul((char *)r.value, NULL, 10) + 1);
        int st =
            shoal_cas(c, "chaos/ctr/0", 11, r.value, r.value_len, false, next, (size_t)nl, NULL);
        note(run, "planted: chaos/ctr/0 incremented to %s (%s)", next, shoal_status_str(st));
    }
    shoal_result_clear(&r);
}

/* Lines of the node logs that contain what. */
static int count_in_logs(run_t *run, const char *what)
{
    int n = 0;
    for (int i = 0; i < NODES; i++) {
        char path[1200], line[1024];
        snprintf(path, sizeof path, "%s/logs/node-%d.log", run->dir, i);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, what) != NULL;
        if (f)
            fclose(f);
    }
    return n;
}

static void check_logs(run_t *run)
{
    if (!cluster_logs_clean(run->dir))
        fail(run, "sanitizer report or failed assertion in a log (above)");
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: chaos_cluster [--seed S] [--duration SECONDS] [--writers W] "
                    "[--verbose] [--plant]\n"
                    "       [--snapshot-entries N (0: shoald's default; default: by the seed)]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static run_t run_s;
    run_t *run = &run_s;
    run->seed = 0;
    run->duration_s = 25;
    run->writers = 6;
    run->snap_entries = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            run->seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
            run->duration_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--writers") && i + 1 < argc)
            run->writers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verbose"))
            run->verbose = true;
        else if (!strcmp(argv[i], "--plant"))
            run->plant = true;
        else if (!strcmp(argv[i], "--snapshot-entries") && i + 1 < argc)
            run->snap_entries = atoi(argv[++i]);
        else
            usage();
    }
    if (run->writers < 1 || run->writers > MAX_WRITERS || run->duration_s < 1)
        usage();
    if (!run->seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        run->seed = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid()) | 1;
        if (getenv("CHAOS_SEED"))
            run->seed = strtoull(getenv("CHAOS_SEED"), NULL, 0);
    }
    if (run->snap_entries < 0) { /* by the seed: half the runs snapshot often */
        uint64_t s = run->seed ^ 0x5eed;
        static const int choice[] = {0, 0, 0, 200, 500, 2000};
        run->snap_entries = choice[cluster_xorshift(&s) % 6];
    }
    if (run->snap_entries) { /* few entries kept behind a snapshot: restarted nodes need one */
        uint64_t s = run->seed ^ 0x7a11;
        run->snap_trailing = cluster_xorshift(&s) % 2 ? 0 : run->snap_entries / 4;
    }
    run->build = getenv("SHOAL_BUILD_DIR");
    if (!run->build) {
        fprintf(stderr, "set SHOAL_BUILD_DIR\n");
        return 2;
    }
    pthread_mutex_init(&run->lock, NULL);
    run->t0 = mono_ms();
    fprintf(stderr,
            "chaos_cluster: seed %" PRIu64 ", %d s of faults, %d writers, "
            "storage/snapshot_entries %d%s, snapshot_trailing_entries %d\n",
            run->seed, run->duration_s, run->writers, run->snap_entries,
            run->snap_entries ? "" : " (default)", run->snap_trailing);

    snprintf(run->dir, sizeof run->dir, "/tmp/shoal-chaos.XXXXXX");
    if (!mkdtemp(run->dir)) {
        perror("mkdtemp");
        return 1;
    }
    cluster_start_guardian(run->dir, guardian_gone, run);
    /* faults + heal + checks, well within ctest's timeout */
    cluster_watchdog((unsigned)(run->duration_s + 150),
                     "FAIL: chaos_cluster hung past its watchdog (seed %" PRIu64 ")\n", run->seed);
    snprintf(run->ctl, sizeof run->ctl, "%s/tools/shoalctl", run->build);
    run->base = cluster_pick_base(NODES, 0);
    snprintf(run->broker_ep, sizeof run->broker_ep, "tcp://127.0.0.1:%d", run->base);
    char cdir[1200];
    snprintf(cdir, sizeof cdir, "%s", run->dir);
    int rc =
        cluster_shell("%s cluster up --dir %s --nodes %d --shards %d --replicas 3 --base-port %d "
                      "--timeout 60000 >%s/up.out 2>&1",
                      run->ctl, cdir, NODES, SHARDS, run->base, cdir);
    if (rc != 0) {
        fail(run, "cluster up exited %d", rc);
        cluster_shell("cat %s/up.out >&2", cdir);
    }
    shoal_t *admin = shoal_connect(run->broker_ep);
    shoal_set_timeout(admin, 5000);
    for (int i = 0; i < NODES && run->snap_entries && !run->failures; i++) {
        /* frequent snapshots: log truncation and InstallSnapshot under the faults */
        rc = ctl(run, "cluster stop-node --dir %s %d", run->dir, i);
        rc = rc ? rc
                : cluster_shell("sed -i 's/^storage$/storage\\n    snapshot_entries = %d\\n"
                                "    snapshot_trailing_entries = %d/' %s/node-%d.cfg",
                                run->snap_entries, run->snap_trailing, cdir, i);
        rc = rc ? rc : ctl(run, "cluster start-node --dir %s %d", run->dir, i);
        if (rc)
            fail(run, "restart of node %d with snapshot_entries = %d failed (%d)", i,
                 run->snap_entries, rc);
    }
    if (run->snap_entries && !run->failures) {
        char why[160];
        if (wait_caught_up(run, admin, 30000, why, sizeof why) < 0)
            fail(run, "cluster not back after the restarts with snapshot_entries: %s", why);
    }
    uint64_t rng = run->seed;
    writer_t *ws = calloc((size_t)run->writers, sizeof *ws);
    pthread_t th[MAX_WRITERS];
    if (!run->failures) {
        for (int ctr = 0; ctr < NCTR; ctr++) {
            char key[32];
            snprintf(key, sizeof key, "chaos/ctr/%d", ctr);
            shoal_result_t r;
            int st = shoal_put(admin, key, strlen(key), "0|init", 6, &r);
            if (st)
                fail(run, "initial put of %s: %s", key, shoal_status_str(st));
            else
                note(run, "counter %s on shard %u", key, r.shard);
            shoal_result_clear(&r);
        }
    }
    if (!run->failures) {
        for (int i = 0; i < run->writers; i++) {
            ws[i] =
                (writer_t){.run = run, .id = i, .rng = run->seed * 0x9E3779B97F4A7C15ull + i + 1};
            pthread_create(&th[i], NULL, writer_main, &ws[i]);
        }
        note(run, "writers started; faults for %d s", run->duration_s);
        nemesis(run, admin, &rng, mono_ms() + run->duration_s * 1000L);
        note(run, "faults stop");
        atomic_store(&run->stop_writers, true);
        for (int i = 0; i < run->writers; i++)
            pthread_join(th[i], NULL);
        note(run, "writers stopped");

        /* heal: every node running, the broker running, every shard led */
        if (run->stopped)
            kill(run->stopped, SIGCONT);
        for (int i = 0; i < NODES; i++)
            if (!cluster_pid_alive(cluster_node_pid(run->dir, i))) {
                fail(run, "node %d is not running after the faults (died on its own?)", i);
                ctl(run, "cluster start-node --dir %s %d", run->dir, i);
            }
        if (!cluster_pid_alive(cluster_read_pid(run->dir, "broker"))) {
            fail(run, "the broker is not running after the faults (died on its own?)");
            broker_start(run);
        }
        char why[160];
        int64_t took = wait_caught_up(run, admin, 30000, why, sizeof why);
        if (took < 0)
            fail(run, "not healed 30 s after the faults: %s", why);
        note(run, "healed: every replica caught up after %" PRId64 " ms", took);
        health_t h;

        shoal_t *c = shoal_connect(run->broker_ep);
        shoal_set_timeout(c, CHECK_TIMEOUT_MS);
        uint64_t acked = 0, amb = 0, conflicts = 0, keys = 0, live = 0, amb_keys = 0, reads = 0;
        for (int i = 0; i < run->writers; i++) {
            acked += ws[i].acked;
            amb += ws[i].ambiguous;
            conflicts += ws[i].cas_conflicts;
            reads += ws[i].reads;
            keys += ws[i].n_keys;
        }
        if (run->plant)
            plant(run, c, ws);
        if (!read_all_keys(run, c, ws))
            fail(run, "some keys stayed unreadable after the faults");
        check_keys(run, ws, &live, &amb_keys);
        check_counters(run, c, ws);
        check_scan(run, c, ws, live);
        /* every replica catches up once the faults are over */
        int64_t until = mono_ms() + 30000;
        while (health(admin, &h) != SHOAL_STATUS_OK || h.worst_lag > 0) {
            if (mono_ms() > until) {
                fail(run, "replicas still %" PRIu64 " entries behind 30 s after healing",
                     h.worst_lag);
                break;
            }
            cluster_sleep_ms(200);
        }
        shoal_destroy(&c);
        fprintf(stderr,
                "chaos_cluster: %" PRIu64 " writes acknowledged, %" PRIu64 " ambiguous, "
                "%" PRIu64 " CAS conflicts, %" PRIu64 " read-backs; %" PRIu64 " keys (%" PRIu64
                " live, %" PRIu64 " with an ambiguous last write); faults:",
                acked, amb, conflicts, reads, keys, live, amb_keys);
        for (int f = 0; f < F_COUNT; f++)
            fprintf(stderr, " %d %s", run->faults[f], fault_name[f]);
        fprintf(stderr, "; %d snapshots installed (node logs)\n",
                count_in_logs(run, "installed snapshot"));
        if (acked < (uint64_t)run->writers * 20)
            fail(run, "only %" PRIu64 " operations acknowledged: the cluster barely served", acked);
        for (int i = 0; i < NODES; i++)
            if (!cluster_pid_alive(cluster_node_pid(run->dir, i)))
                fail(run, "node %d died during the checks", i);
    }
    shoal_destroy(&admin);

    /* stop: a clean shutdown of everything, then whatever is left by pid */
    if (run->stopped)
        kill(run->stopped, SIGCONT);
    rc = ctl(run, "cluster down --dir %s", run->dir);
    if (rc != 0)
        fail(run, "cluster down exited %d", rc);
    cluster_reap();
    cluster_kill_all(run->dir);
    cluster_reap();
    check_logs(run);
    if (!run->verbose) { /* always shown: ctest keeps it with the test's output */
        fprintf(stderr, "nemesis log (seed %" PRIu64 "):\n", run->seed);
        for (size_t i = 0; i < run->n_log; i++)
            fprintf(stderr, "  %s\n", run->log[i]);
    }
    if (run->plant) { /* the self-test passes when the checks found exactly what was planted */
        bool found =
            run->seen_lost == 1 && run->seen_double == 1 && run->failures == run->planted_hits;
        fprintf(stderr,
                "chaos_cluster --plant: planted faults %s (lost %d, doubled %d, %d "
                "failures in all)\n",
                found ? "detected" : "NOT detected as expected", run->seen_lost, run->seen_double,
                run->failures);
        run->failures = found ? 0 : run->failures + 1;
    }
    if (run->failures) {
        fprintf(stderr,
                "chaos_cluster FAILED (%d failures), seed %" PRIu64 "\nreplay: SHOAL_BUILD_DIR=%s "
                "%s/tests/chaos_cluster --seed %" PRIu64 " --duration %d --writers %d "
                "--snapshot-entries %d --verbose\n",
                run->failures, run->seed, run->build, run->build, run->seed, run->duration_s,
                run->writers, run->snap_entries);
        keep_logs(run->dir, run->seed);
    } else {
        fprintf(stderr, "chaos_cluster: all checks passed (seed %" PRIu64 ", %.1f s)\n", run->seed,
                since(run));
    }
    cluster_remove_dir(run->dir);
    for (int i = 0; i < run->writers; i++) {
        free(ws[i].keys);
        for (int ctr = 0; ctr < NCTR; ctr++)
            free(ws[i].incr[ctr]);
    }
    free(ws);
    for (size_t i = 0; i < run->n_log; i++)
        free(run->log[i]);
    free(run->log);
    return run->failures ? 1 : 0;
}
