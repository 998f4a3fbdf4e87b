/* cluster_linearizable.c - a Jepsen-style linearizability test of a local cluster.
 *
 * Starts `shoalctl cluster up` (3 nodes, SHARDS shards x 3 replicas) in a temporary folder
 * ($TMPDIR, else /tmp) on free ports, then runs the linearizability workload of
 * cluster_proc.c (shared with cluster_reconfig_linearizable): C client threads, each with
 * its own libshoal connection, doing
 * random get / put / cas / del (and a few two-key batches) on a handful of shared keys
 * (high contention), every written value unique. Every operation is recorded with its
 * thread, arguments, invoke and completion time (CLOCK_MONOTONIC, ns) and outcome:
 *   ok (get: the value or not found; cas: swapped), cas failed (with the current value
 *   the node reported, so a failed cas is a read), or ambiguous (TIMEOUT / UNAVAILABLE /
 *   INTERNAL: a write may apply at any later time or never; a read simply did not happen).
 * Meanwhile a nemesis injects one fault at a time, each for longer than an election
 * timeout:
 *   pause     SIGSTOP the leader of a workload key's shard 1.2-3 s, then SIGCONT (the
 *             lease-read danger: a stale leader resuming and answering a read)
 *   kill      kill -9 a node (the leader of a key's shard half the time), restart it
 *   broker    kill -9 the broker, start a new one
 *   transfer  move the leadership of a key's shard to another node
 *   mixed     any of the above (the default)
 *   none      no faults
 * The cluster may run with --read-mode read_index (raft/read_mode) and with
 * --read-from replicas (broker/read_from: linearizable gets served by followers).
 * At the end one more get per key (the final reads) joins the history, and the history
 * (JSON lines) goes to tests/integration/linearizable_check.py,
 * which checks each key as a linearizable register; a violation, a crash of a node or
 * broker, or a sanitizer report fails the test, printing the seed and the replay command.
 *
 *   cluster_linearizable [--seed S] [--duration S] [--clients N] [--keys K] [--op-timeout MS]
 *       [--nemesis mixed|pause|kill|broker|transfer|none] [--read-mode lease|read_index]
 *       [--read-from leader|replicas] [--base-port P] [--history FILE] [--verbose]
 *       [--weak-casfail]   (the checker's: a failed cas reporting "absent" is taken only
 *                           as "the compare failed"; see linearizable_check.py)
 * Env: SHOAL_BUILD_DIR (tools/shoalctl, actors/shoald, broker/shoal-broker), SHOAL_SOURCE_DIR
 * (for the checker); SHOAL_LINEARIZABLE_LONG=1 runs 60 s instead of the short default, and
 * LIN_SEED fixes the seed. Exit 0: linearizable and no crash; 1: a failure; 2: usage. */
#define _GNU_SOURCE
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
#define SHARDS 2
#define OP_TIMEOUT_MS 3000 /* default; --op-timeout: shorter gives ambiguous writes */

enum { N_MIXED, N_PAUSE, N_KILL, N_BROKER, N_TRANSFER, N_NONE };
static const char *nemesis_names[] = {"mixed", "pause", "kill", "broker", "transfer", "none"};

typedef struct {
    uint64_t seed;
    int duration_s, clients, nkeys, nemesis, op_timeout_ms;
    const char *read_mode, *read_from;
    bool verbose, weak_casfail;
    const char *build, *source;
    char dir[256], ctl[512], broker_ep[64], history[512];
    int base;
    int64_t t0_ns;
    pthread_mutex_t lock;
    int failures;
    lin_workload_t w; /* the clients and their history (cluster_proc.h) */
    uint32_t key_shard[LIN_MAX_KEYS];
    pid_t stopped;
    int faults;
} run_t;

/* ---- helpers ------------------------------------------------------------------------ */

#define mono_ns cluster_mono_ns

static double since(run_t *run)
{
    return (double)(mono_ns() - run->t0_ns) / 1e9;
}

static void note(run_t *run, const char *fmt, ...)
{
    char line[600];
    int n = snprintf(line, sizeof line, "[%7.3f s] ", since(run));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
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

/* The workload's hook for an answer that is an error. */
static void on_client_error(void *arg, const char *line)
{
    fail(arg, "%s", line);
}

/* shoalctl with its output appended to DIR/logs/lin-ctl.log; returns its exit code. */
static int ctl(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl(run_t *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cluster_vctl(run->ctl, run->dir, "lin-ctl.log", fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the nemesis -------------------------------------------------------------------- */

static void nemesis(run_t *run, shoal_t *admin, uint64_t *rng, int64_t until_ns)
{
    while (mono_ns() < until_ns && run->nemesis != N_NONE) {
        cluster_sleep_ms(cluster_rnd(rng, 500, 1500));
        if (mono_ns() >= until_ns)
            break;
        int f = run->nemesis;
        if (f == N_MIXED)
            f = cluster_rnd(rng, N_PAUSE, N_TRANSFER);
        int k = cluster_rnd(rng, 0, run->nkeys - 1);
        uint32_t shard = run->key_shard[k];
        int leader = cluster_leader_of(admin, shard);
        int node = leader >= 0 && (f == N_PAUSE || cluster_rnd(rng, 0, 1))
                       ? leader
                       : cluster_rnd(rng, 0, NODES - 1);
        run->faults++;
        if (f == N_PAUSE) {
            int hold = cluster_rnd(rng, 1200, 3000);
            pid_t pid = cluster_node_pid(run->dir, node);
            note(run, "SIGSTOP node %d (pid %d, leader of shard %u: %d) for %d ms", node, (int)pid,
                 shard, leader, hold);
            run->stopped = pid;
            kill(pid, SIGSTOP);
            cluster_sleep_ms(hold);
            kill(pid, SIGCONT);
            run->stopped = 0;
            note(run, "SIGCONT node %d", node);
        } else if (f == N_KILL) {
            int hold = cluster_rnd(rng, 1000, 3000);
            int rc = ctl(run, "cluster stop-node --dir %s %d --kill", run->dir, node);
            note(run, "kill -9 node %d (leader of shard %u: %d)%s; restart in %d ms", node, shard,
                 leader, rc ? " [stop-node failed]" : "", hold);
            cluster_sleep_ms(hold);
            rc = ctl(run, "cluster start-node --dir %s %d", run->dir, node);
            note(run, "start node %d: exit %d", node, rc);
            if (rc)
                fail(run, "cluster start-node %d exited %d", node, rc);
        } else if (f == N_BROKER) {
            int hold = cluster_rnd(rng, 200, 1500);
            int rc = ctl(run, "cluster stop-node --dir %s broker --kill", run->dir);
            note(run, "kill -9 broker%s; start again in %d ms", rc ? " [failed]" : "", hold);
            cluster_sleep_ms(hold);
            rc = ctl(run, "cluster start-node --dir %s broker", run->dir);
            note(run, "start broker: exit %d", rc);
            if (rc)
                fail(run, "cluster start-node broker exited %d", rc);
        } else if (f == N_TRANSFER) {
            int to = cluster_rnd(rng, 0, NODES - 1);
            if (to == leader)
                to = (to + 1) % NODES;
            char err[256] = "";
            int st = shoal_admin_transfer_leader(admin, shard, (uint64_t)to, err, sizeof err);
            note(run, "transfer leader of shard %u from %d to node %d: %s %s", shard, leader, to,
                 shoal_status_str(st), st ? err : "");
        }
        cluster_reap();
        if (!cluster_wait_healthy(admin, NODES, SHARDS, 20000))
            note(run, "cluster not healthy 20 s after the fault");
    }
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: cluster_linearizable [--seed S] [--duration S] [--clients N] [--keys K]\n"
            "  [--op-timeout MS]\n"
            "  [--nemesis mixed|pause|kill|broker|transfer|none] [--read-mode lease|read_index]\n"
            "  [--read-from leader|replicas] [--base-port P] [--history FILE] [--verbose]\n"
            "  [--weak-casfail]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static run_t run_s;
    run_t *run = &run_s;
    bool long_run = getenv("SHOAL_LINEARIZABLE_LONG") && *getenv("SHOAL_LINEARIZABLE_LONG") &&
                    strcmp(getenv("SHOAL_LINEARIZABLE_LONG"), "0");
    run->duration_s = long_run ? 60 : 14;
    run->clients = long_run ? 12 : 8;
    run->nkeys = 5;
    run->op_timeout_ms = OP_TIMEOUT_MS;
    run->nemesis = N_MIXED;
    run->read_mode = "lease";
    run->read_from = "leader";
    int base = 0;
    const char *hist = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v)
            run->seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--duration") && v)
            run->duration_s = atoi(v), i++;
        else if (!strcmp(a, "--clients") && v)
            run->clients = atoi(v), i++;
        else if (!strcmp(a, "--keys") && v)
            run->nkeys = atoi(v), i++;
        else if (!strcmp(a, "--op-timeout") && v)
            run->op_timeout_ms = atoi(v), i++;
        else if (!strcmp(a, "--base-port") && v)
            base = atoi(v), i++;
        else if (!strcmp(a, "--history") && v)
            hist = v, i++;
        else if (!strcmp(a, "--read-mode") && v &&
                 (!strcmp(v, "lease") || !strcmp(v, "read_index")))
            run->read_mode = v, i++;
        else if (!strcmp(a, "--read-from") && v && (!strcmp(v, "leader") || !strcmp(v, "replicas")))
            run->read_from = v, i++;
        else if (!strcmp(a, "--nemesis") && v) {
            int n = -1;
            for (int j = 0; j <= N_NONE; j++)
                if (!strcmp(v, nemesis_names[j]))
                    n = j;
            if (n < 0)
                usage();
            run->nemesis = n, i++;
        } else if (!strcmp(a, "--verbose"))
            run->verbose = true;
        else if (!strcmp(a, "--weak-casfail"))
            run->weak_casfail = true;
        else
            usage();
    }
    if (run->clients < 1 || run->clients > LIN_MAX_CLIENTS || run->nkeys < 2 ||
        run->nkeys > LIN_MAX_KEYS || run->duration_s < 1 || run->op_timeout_ms < 100)
        usage();
    if (!run->seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        run->seed = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid()) | 1;
        if (getenv("LIN_SEED"))
            run->seed = strtoull(getenv("LIN_SEED"), NULL, 0);
    }
    run->build = getenv("SHOAL_BUILD_DIR");
    run->source = getenv("SHOAL_SOURCE_DIR");
    if (!run->build || !run->source) {
        fprintf(stderr, "set SHOAL_BUILD_DIR and SHOAL_SOURCE_DIR\n");
        return 2;
    }
    pthread_mutex_init(&run->lock, NULL);
    run->t0_ns = mono_ns();
    fprintf(stderr,
            "cluster_linearizable: seed %" PRIu64 ", %d s, %d clients, %d keys, "
            "nemesis %s, read_mode %s, read_from %s\n",
            run->seed, run->duration_s, run->clients, run->nkeys, nemesis_names[run->nemesis],
            run->read_mode, run->read_from);
    snprintf(run->dir, sizeof run->dir, "%s/shoal-lin.XXXXXX", cluster_tmp_root());
    if (!mkdtemp(run->dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (hist)
        snprintf(run->history, sizeof run->history, "%s", hist);
    else
        snprintf(run->history, sizeof run->history, "%s/shoal-lin-history.%" PRIu64 ".jsonl",
                 cluster_tmp_root(), run->seed);
    cluster_start_guardian(run->dir, NULL, NULL);
    cluster_watchdog((unsigned)(run->duration_s + 240),
                     "FAIL: cluster_linearizable hung (seed %" PRIu64 ")\n", run->seed);
    snprintf(run->ctl, sizeof run->ctl, "%s/tools/shoalctl", run->build);
    run->base = base ? base : cluster_pick_base(NODES, 17);
    if (base && !cluster_base_free(base, NODES)) {
        fprintf(stderr, "ports of --base-port %d are in use\n", base);
        return 2;
    }
    snprintf(run->broker_ep, sizeof run->broker_ep, "tcp://127.0.0.1:%d", run->base);
    int rc =
        cluster_shell("%s cluster up --dir %s --nodes %d --shards %d --replicas 3 --base-port %d "
                      "--read-mode %s --timeout 60000 >%s/up.out 2>&1",
                      run->ctl, run->dir, NODES, SHARDS, run->base, run->read_mode, run->dir);
    if (rc != 0) {
        fail(run, "cluster up exited %d", rc);
        cluster_shell("cat %s/up.out >&2", run->dir);
    }
    if (!rc && !strcmp(run->read_from, "replicas")) {
        rc = ctl(run, "cluster stop-node --dir %s broker", run->dir);
        rc = rc ? rc
                : cluster_shell(
                      "sed -i 's/^broker$/broker\\n    read_from = \"replicas\"/' %s/broker.cfg",
                      run->dir);
        rc = rc ? rc : ctl(run, "cluster start-node --dir %s broker", run->dir);
        if (rc)
            fail(run, "restart of the broker with read_from = replicas failed (%d)", rc);
    }
    shoal_t *admin = shoal_connect(run->broker_ep);
    shoal_set_timeout(admin, 5000);
    uint64_t total = 0, ambs = 0;
    if (!run->failures) {
        if (!cluster_wait_healthy(admin, NODES, SHARDS, 30000))
            fail(run, "cluster not healthy after start");
        /* the keys, fresh per run: a put learns their shard, a delete leaves them absent */
        for (int k = 0; k < run->nkeys && !run->failures; k++) {
            snprintf(run->w.keys[k], sizeof run->w.keys[k], "lin/%" PRIx64 "/k%d",
                     run->seed & 0xffffffff, k);
            shoal_result_t r;
            int st = SHOAL_STATUS_UNAVAILABLE;
            for (int t = 0; t < 10 && st != SHOAL_STATUS_OK; t++) {
                st = shoal_put(admin, run->w.keys[k], strlen(run->w.keys[k]), "init", 4, &r);
                run->key_shard[k] = r.shard;
                shoal_result_clear(&r);
                if (st == SHOAL_STATUS_OK)
                    st = shoal_del(admin, run->w.keys[k], strlen(run->w.keys[k]), NULL);
                if (st != SHOAL_STATUS_OK)
                    cluster_sleep_ms(300);
            }
            if (st != SHOAL_STATUS_OK)
                fail(run, "first put and delete of %s: %s", run->w.keys[k], shoal_status_str(st));
            note(run, "key %s on shard %u", run->w.keys[k], run->key_shard[k]);
        }
    }
    if (!run->failures) {
        run->t0_ns = mono_ns();
        lin_workload_t *w = &run->w;
        w->seed = run->seed;
        w->clients = run->clients;
        w->nkeys = run->nkeys;
        w->op_timeout_ms = run->op_timeout_ms;
        memcpy(w->broker_ep, run->broker_ep, sizeof w->broker_ep);
        w->t0_ns = run->t0_ns;
        w->on_error = on_client_error;
        w->arg = run;
        lin_start(w);
        note(run, "%d clients started; faults (%s) for %d s", run->clients,
             nemesis_names[run->nemesis], run->duration_s);
        uint64_t rng = run->seed ^ 0xfa17;
        int64_t until = mono_ns() + (int64_t)run->duration_s * 1000000000LL;
        nemesis(run, admin, &rng, until);
        while (mono_ns() < until)
            cluster_sleep_ms(50);
        /* a last second with no fault: the history ends on a healthy cluster */
        cluster_sleep_ms(1000);
        lin_stop(&run->w, &total, &ambs);
        if (run->stopped)
            kill(run->stopped, SIGCONT);
        if (lin_final_reads(&run->w, admin))
            note(run, "some final reads were not answered");
        note(run, "clients stopped: %" PRIu64 " operations, %" PRIu64 " ambiguous, %d faults",
             total, ambs, run->faults);
        char meta[512];
        snprintf(meta, sizeof meta,
                 "{\"seed\":%" PRIu64 ",\"nemesis\":\"%s\",\"read_mode\":\"%s\","
                 "\"read_from\":\"%s\",\"clients\":%d,\"keys\":%d,\"duration\":%d}",
                 run->seed, nemesis_names[run->nemesis], run->read_mode, run->read_from,
                 run->clients, run->nkeys, run->duration_s);
        if (lin_write_history(&run->w, run->history, meta) != 0)
            fail(run, "cannot write %s", run->history);
        for (int i = 0; i < NODES; i++)
            if (!cluster_pid_alive(cluster_node_pid(run->dir, i)))
                fail(run, "node %d is not running after the faults (it died on its own)", i);
        if (!cluster_pid_alive(cluster_read_pid(run->dir, "broker")))
            fail(run, "the broker is not running after the faults (it died on its own)");
        if (total < (uint64_t)run->clients * 20)
            fail(run, "only %" PRIu64 " operations: the cluster barely served", total);
    }
    shoal_destroy(&admin);
    if (ctl(run, "cluster down --dir %s", run->dir) != 0)
        fail(run, "cluster down failed");
    cluster_reap();
    cluster_kill_all(run->dir);
    if (!cluster_logs_clean(run->dir))
        fail(run, "a sanitizer report or failed assertion in a log (above)");
    bool checked = false;
    if (total) {
        rc = cluster_shell("python3 %s/tests/integration/linearizable_check.py %s%s >&2",
                           run->source, run->history, run->weak_casfail ? " --weak-casfail" : "");
        checked = true;
        if (rc != 0)
            fail(run, "the history is NOT linearizable (checker exit %d); history kept in %s", rc,
                 run->history);
    }
    if (run->failures) {
        fprintf(stderr,
                "cluster_linearizable FAILED (%d failures), seed %" PRIu64 "\nreplay: "
                "SHOAL_BUILD_DIR=%s SHOAL_SOURCE_DIR=%s %s --seed %" PRIu64 " --duration %d "
                "--clients %d --keys %d --op-timeout %d --nemesis %s --read-mode %s "
                "--read-from %s%s\n"
                "re-check: python3 %s/tests/integration/linearizable_check.py %s%s\n",
                run->failures, run->seed, run->build, run->source, argv[0], run->seed,
                run->duration_s, run->clients, run->nkeys, run->op_timeout_ms,
                nemesis_names[run->nemesis], run->read_mode, run->read_from,
                run->weak_casfail ? " --weak-casfail" : "", run->source, run->history,
                run->weak_casfail ? " --weak-casfail" : "");
        char logs[512];
        snprintf(logs, sizeof logs, "%s/shoal-lin-logs.%" PRIu64, cluster_tmp_root(), run->seed);
        cluster_keep_logs(run->dir, logs);
    } else {
        fprintf(stderr,
                "cluster_linearizable: linearizable (%" PRIu64 " operations%s), seed %" PRIu64
                ", %.1f s\n",
                total, checked ? "" : ", unchecked", run->seed, since(run));
        if (!hist)
            unlink(run->history);
    }
    cluster_remove_dir(run->dir);
    lin_free(&run->w);
    return run->failures ? 1 : 0;
}
