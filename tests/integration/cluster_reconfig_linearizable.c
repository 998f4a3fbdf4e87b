/* cluster_reconfig_linearizable.c - linearizability and durability under online
 * reconfiguration (Jepsen-style, black box).
 *
 * Starts `shoalctl cluster up` (3 nodes, 2 shards x 3 replicas) in a temporary folder
 * ($TMPDIR, else /tmp) on free ports and runs two workloads through the broker the whole
 * time:
 *   - the linearizability workload of cluster_proc.c (shared with cluster_linearizable):
 *     get / put / cas / del / two-key batches on a few shared keys, every call recorded;
 *   - fill writers, each putting fresh keys (one by one, and three at a time in batches that
 *     usually span shards) and deleting some it wrote, recording what was acknowledged.
 * Meanwhile a seeded nemesis changes the cluster's shape, one change at a time, through
 * libshoal's admin calls and `shoalctl` (docs/OPERATIONS.md, "Changing the placement"):
 *   add-node   `shoalctl cluster add-node` (up to MAX_LIVE nodes); the first action always
 *   move       move-replica SHARD FROM TO of a data shard or the metadata group, and at
 *              once kill -9 or SIGSTOP its FROM, its TO (while it streams its snapshot) or
 *              the group's leader for 1-3 s; now and then cancelled (move-replica --cancel)
 *   split      add-shard (up to MAX_SHARDS), and at once kill -9 or SIGSTOP the metadata
 *              group's leader or the source shard's leader
 *   transfer   transfer-leader of a shard or the metadata group
 *   rebalance  `shoalctl rebalance` while a node is killed or paused midway
 *   drain      `shoalctl drain-node N` of a node (while 4+ are live) with a fault on
 *              another node midway, then remove-node N (its shoald stops by itself)
 *   kill       kill -9 a node and restart it; broker: kill -9 the broker and restart it
 * At most one node is down or stopped at any time and every group keeps 3 replicas, so no
 * group ever loses more than a minority. Between changes the nemesis waits (up to 30 s) for
 * every node of the map to be up, every group led and no move left open.
 * At the end (healed, writers stopped):
 *   - one more get per shared key joins the history, which linearizable_check.py checks as
 *     a linearizable register per key;
 *   - a scan through the broker of the run's prefix must hold every acknowledged fill key
 *     with its value (an acknowledged delete: absent; an ambiguous write: either), no key
 *     the run never wrote and no key twice, and a linearizable get of every acknowledged
 *     fill key must return its value;
 *   - every shard is scanned on its own, straight at its leader (a DEALER, as node_client): each
 *     key the broker's scan returned must be held by exactly one shard (a split or move that
 *     kept a key on two shards, or on none, fails here: the broker's merged scan hides twins);
 *   - no node or broker died on its own, every removed node's shoald stopped by itself, no
 *     sanitizer report or failed assertion in a log.
 * A failure prints the seed and the replay command and keeps the logs.
 *
 *   cluster_reconfig_linearizable [--seed S] [--duration S] [--clients N] [--keys K]
 *       [--fillers N] [--op-timeout MS] [--actions LIST] [--base-port P] [--history FILE]
 *       [--overlap]   (changes follow each other without waiting for the cluster to settle:
 *                      moves, splits and cancels overlap; still one node down at a time)
 *   LIST: comma-separated actions of add-node,move,cancel,split,transfer,rebalance,drain,
 *         kill,broker,fault (fault: the kill or pause that goes with a move, split,
 *         rebalance or drain), or "all" (the default)
 * Env: SHOAL_BUILD_DIR, SHOAL_SOURCE_DIR as cluster_linearizable; RECONFIG_SEED fixes the
 * seed. Exit 0: all checks passed; 1: a failure; 2: usage. */
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

#include <czmq.h>

#include "broker/shoal.h"
#include "cluster_proc.h"
#include "proto/codec.h"

#define START_NODES 3
#define START_SHARDS 2
#define MAX_IDS 10 /* node ids the run may create (ports base+100 .. base+119) */
#define MAX_LIVE 5 /* nodes in the map at once */
#define MAX_SHARDS 6
#define MAX_FILLERS 16
#define OP_TIMEOUT_MS 3000
#define HEAL_MS 30000

enum {
    A_ADD_NODE,
    A_MOVE,
    A_CANCEL,
    A_SPLIT,
    A_TRANSFER,
    A_REBALANCE,
    A_DRAIN,
    A_KILL,
    A_BROKER,
    A_FAULT,
    A_COUNT
};
static const char *action_names[] = {"add-node",  "move",  "cancel", "split",  "transfer",
                                     "rebalance", "drain", "kill",   "broker", "fault"};
/* how often the nemesis picks each action (A_CANCEL and A_FAULT ride on others) */
static const int action_weight[] = {2, 6, 0, 3, 2, 1, 1, 2, 1, 0};

/* A fill key's fate, as its writer saw it. */
enum { F_NONE, F_PUT_ACK, F_PUT_AMBIG, F_DEL_ACK, F_DEL_AMBIG };

typedef struct run run_t;

typedef struct {
    run_t *run;
    int id;
    uint64_t rng;
    uint8_t *state; /* per key number: F_* */
    size_t n, cap;
    uint64_t oks, ambs;
    pthread_t th;
} filler_t;

struct run {
    uint64_t seed;
    int duration_s, clients, nkeys, fillers, op_timeout_ms;
    bool overlap; /* --overlap: no wait for the cluster to settle between changes */
    bool enabled[A_COUNT];
    const char *actions_arg;
    const char *build, *source;
    char dir[256], ctl[512], broker_ep[64], history[512], prefix[48];
    int base;
    int64_t t0_ns;
    pthread_mutex_t lock;
    int failures;
    lin_workload_t w;
    filler_t fill[MAX_FILLERS];
    atomic_bool stop_fill;
    /* the cluster as the nemesis made it */
    int ids;               /* node ids 0..ids-1 exist (a DIR/node-I.cfg) */
    bool removed[MAX_IDS]; /* taken out with remove-node */
    pid_t stopped;         /* a node under SIGSTOP, 0 none */
    int done[A_COUNT], refused[A_COUNT];
};

/* ---- helpers ------------------------------------------------------------------------ */

static double since(run_t *run)
{
    return (double)(cluster_mono_ns() - run->t0_ns) / 1e9;
}

static void note(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(run_t *run, const char *fmt, ...)
{
    char line[700];
    int n = snprintf(line, sizeof line, "[%7.3f s] ", since(run));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

static void fail(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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

static void on_client_error(void *arg, const char *line)
{
    fail(arg, "%s", line);
}

/* shoalctl with its output appended to DIR/logs/reconfig-ctl.log; returns its exit code. */
static int ctl(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl(run_t *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cluster_vctl(run->ctl, run->dir, "reconfig-ctl.log", fmt, ap);
    va_end(ap);
    return rc;
}

static bool ambiguous(int st)
{
    return st == SHOAL_STATUS_TIMEOUT || st == SHOAL_STATUS_UNAVAILABLE ||
           st == SHOAL_STATUS_INTERNAL;
}

/* ---- the fill writers --------------------------------------------------------------- */

static void fill_key(const run_t *run, int w, size_t n, char *out, size_t len)
{
    snprintf(out, len, "%sf%d/%zu", run->prefix, w, n);
}

static void fill_val(int w, size_t n, char *out, size_t len)
{
    snprintf(out, len, "v%d.%zu", w, n);
}

static size_t fill_next(filler_t *f)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4096;
        f->state = realloc(f->state, f->cap);
        if (!f->state)
            abort();
    }
    f->state[f->n] = F_NONE;
    return f->n++;
}

static void fill_settle(filler_t *f, int st, const char *what, const char *err)
{
    if (st == SHOAL_STATUS_OK || st == SHOAL_STATUS_NOT_FOUND)
        f->oks++;
    else if (ambiguous(st))
        f->ambs++;
    else
        fail(f->run, "fill writer %d: %s answered %s (%s)", f->id, what, shoal_status_str(st), err);
}

static void fill_one(filler_t *f, shoal_t *s)
{
    run_t *run = f->run;
    shoal_result_t res;
    memset(&res, 0, sizeof res);
    char key[3][96], val[3][32];
    int p = cluster_rnd(&f->rng, 0, 99);
    if (p < 12 && f->n > 8) { /* delete a key written and acknowledged before */
        size_t n = (size_t)cluster_rnd(&f->rng, 0, (int)f->n - 1);
        if (f->state[n] == F_PUT_ACK) {
            fill_key(run, f->id, n, key[0], sizeof key[0]);
            int st = shoal_del(s, key[0], strlen(key[0]), &res);
            fill_settle(f, st, "del", res.error);
            f->state[n] = st == SHOAL_STATUS_OK || st == SHOAL_STATUS_NOT_FOUND ? F_DEL_ACK
                          : ambiguous(st)                                       ? F_DEL_AMBIG
                                                                                : F_PUT_ACK;
            shoal_result_clear(&res);
            return;
        }
    }
    if (p >= 85) { /* three fresh keys in one batch, mostly on more than one shard */
        size_t n[3];
        shoal_batch_op_t ops[3];
        for (int i = 0; i < 3; i++) {
            n[i] = fill_next(f);
            fill_key(run, f->id, n[i], key[i], sizeof key[i]);
            fill_val(f->id, n[i], val[i], sizeof val[i]);
            ops[i] = (shoal_batch_op_t){false, key[i], strlen(key[i]), val[i], strlen(val[i])};
        }
        int st = shoal_batch(s, ops, 3, &res);
        fill_settle(f, st, "batch", res.error);
        for (int i = 0; i < 3; i++)
            f->state[n[i]] = st == SHOAL_STATUS_OK ? F_PUT_ACK : F_PUT_AMBIG;
        shoal_result_clear(&res);
        return;
    }
    size_t n = fill_next(f);
    fill_key(run, f->id, n, key[0], sizeof key[0]);
    fill_val(f->id, n, val[0], sizeof val[0]);
    int st = shoal_put(s, key[0], strlen(key[0]), val[0], strlen(val[0]), &res);
    fill_settle(f, st, "put", res.error);
    f->state[n] = st == SHOAL_STATUS_OK ? F_PUT_ACK : F_PUT_AMBIG;
    shoal_result_clear(&res);
}

static void *filler_main(void *arg)
{
    filler_t *f = arg;
    shoal_t *s = shoal_connect(f->run->broker_ep);
    if (!s) {
        fail(f->run, "fill writer %d: cannot connect", f->id);
        return NULL;
    }
    shoal_set_timeout(s, f->run->op_timeout_ms);
    while (!atomic_load(&f->run->stop_fill)) {
        fill_one(f, s);
        cluster_sleep_ms(2); /* a steady stream, not a flood: the final checks read it all */
    }
    shoal_destroy(&s);
    return NULL;
}

/* ---- the cluster's state ------------------------------------------------------------ */

static bool get_status(shoal_t *admin, shoal_cluster_t *cl)
{
    char err[256];
    memset(cl, 0, sizeof *cl);
    return shoal_status(admin, false, cl, err, sizeof err) == SHOAL_STATUS_OK;
}

/* Node ids in the map and up (live) into out; returns how many. */
static int map_nodes(const shoal_cluster_t *cl, int *out, bool up_only)
{
    int n = 0;
    for (size_t i = 0; i < cl->n_nodes && n < MAX_IDS; i++)
        if (!up_only || cl->nodes[i].up)
            out[n++] = (int)cl->nodes[i].id;
    return n;
}

static bool holds(const shoal_shard_status_t *sh, int node)
{
    for (size_t i = 0; i < sh->n_replicas; i++)
        if ((int)sh->replicas[i] == node)
            return true;
    for (size_t i = 0; i < sh->n_leaving; i++)
        if ((int)sh->leaving[i] == node)
            return true;
    return false;
}

/* Healthy: every node of the map up, every group (the metadata group too) led, no move
 * open, the shard count the map shows stable. Waits up to ms; false when it never was. */
static bool wait_healthy(run_t *run, shoal_t *admin, int ms, char *why, size_t wlen)
{
    int64_t until = cluster_mono_ns() + (int64_t)ms * 1000000;
    snprintf(why, wlen, "no status");
    while (cluster_mono_ns() < until) {
        shoal_cluster_t cl;
        if (get_status(admin, &cl)) {
            bool ok = true;
            for (size_t i = 0; ok && i < cl.n_nodes; i++)
                if (!cl.nodes[i].up)
                    ok = false, snprintf(why, wlen, "node %" PRIu64 " down", cl.nodes[i].id);
            for (size_t i = 0; ok && i < cl.n_shards; i++) {
                if (cl.shards[i].leader < 0)
                    ok = false, snprintf(why, wlen, "shard %u has no leader", cl.shards[i].id);
                else if (cl.shards[i].n_leaving)
                    ok = false, snprintf(why, wlen, "shard %u still moving", cl.shards[i].id);
            }
            if (ok && cl.has_meta && cl.meta.leader < 0)
                ok = false, snprintf(why, wlen, "the metadata group has no leader");
            if (ok && cl.has_meta && cl.meta.n_leaving)
                ok = false, snprintf(why, wlen, "the metadata group still moving");
            shoal_cluster_clear(&cl);
            if (ok)
                return true;
        }
        (void)run;
        cluster_sleep_ms(150);
    }
    return false;
}

/* ---- faults ------------------------------------------------------------------------- */

/* kill -9 node (then restart it after hold ms) or SIGSTOP it for hold ms: the fault that
 * goes with a change. Returns at once when pause is false and wait is false (the caller
 * restarts it with fault_end). */
typedef struct {
    int node; /* -1: none */
    bool pause;
    int hold_ms;
    int64_t since_ns;
} fault_t;

static fault_t fault_begin(run_t *run, uint64_t *rng, int node, const char *why)
{
    fault_t f = {.node = -1};
    if (node < 0 || !run->enabled[A_FAULT] || node >= run->ids || run->removed[node])
        return f;
    f.node = node;
    f.pause = cluster_rnd(rng, 0, 1);
    f.hold_ms = cluster_rnd(rng, 1000, 3000);
    f.since_ns = cluster_mono_ns();
    if (f.pause) {
        pid_t pid = cluster_node_pid(run->dir, node);
        run->stopped = pid;
        kill(pid, SIGSTOP);
    } else {
        ctl(run, "cluster stop-node --dir %s %d --kill", run->dir, node);
    }
    run->done[A_FAULT]++;
    note(run, "  %s node %d (%s) for %d ms", f.pause ? "SIGSTOP" : "kill -9", node, why, f.hold_ms);
    return f;
}

static void fault_end(run_t *run, fault_t *f)
{
    if (f->node < 0)
        return;
    int64_t left = f->since_ns + (int64_t)f->hold_ms * 1000000 - cluster_mono_ns();
    if (left > 0)
        cluster_sleep_ms((int)(left / 1000000));
    if (f->pause) {
        kill(run->stopped, SIGCONT);
        run->stopped = 0;
        note(run, "  SIGCONT node %d", f->node);
    } else {
        int rc = ctl(run, "cluster start-node --dir %s %d --timeout 30000", run->dir, f->node);
        note(run, "  start node %d: exit %d", f->node, rc);
        if (rc && !run->removed[f->node])
            fail(run, "cluster start-node %d exited %d", f->node, rc);
    }
    f->node = -1;
}

/* ---- the nemesis's actions ---------------------------------------------------------- */

static const char *group_name(uint32_t shard, char *buf, size_t len)
{
    if (shard == SHOAL_META_SHARD)
        snprintf(buf, len, "meta");
    else
        snprintf(buf, len, "%u", shard);
    return buf;
}

static void act_add_node(run_t *run, shoal_t *admin)
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl))
        return;
    int live[MAX_IDS];
    int n = map_nodes(&cl, live, false);
    shoal_cluster_clear(&cl);
    if (n >= MAX_LIVE || run->ids >= MAX_IDS) {
        run->refused[A_ADD_NODE]++;
        return;
    }
    int rc = ctl(run, "cluster add-node --dir %s --timeout 30000", run->dir);
    note(run, "add-node: node %d, exit %d", run->ids, rc);
    if (rc == 0) {
        run->ids++;
        run->done[A_ADD_NODE]++;
    } else
        fail(run, "cluster add-node exited %d", rc);
}

/* A random group of the status (the metadata group 1 time in 5). */
static const shoal_shard_status_t *pick_group(const shoal_cluster_t *cl, uint64_t *rng)
{
    if (cl->has_meta && cluster_rnd(rng, 0, 4) == 0)
        return &cl->meta;
    if (!cl->n_shards)
        return NULL;
    return &cl->shards[cluster_rnd(rng, 0, (int)cl->n_shards - 1)];
}

static void act_move(run_t *run, shoal_t *admin, uint64_t *rng)
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl))
        return;
    const shoal_shard_status_t *sh = pick_group(&cl, rng);
    int up[MAX_IDS], nup = map_nodes(&cl, up, true), cand[MAX_IDS], nc = 0;
    for (int i = 0; sh && i < nup; i++)
        if (!holds(sh, up[i]))
            cand[nc++] = up[i];
    if (!sh || !nc || !sh->n_replicas) {
        run->refused[A_MOVE]++;
        shoal_cluster_clear(&cl);
        return;
    }
    uint32_t shard = sh->id;
    int from = (int)sh->replicas[cluster_rnd(rng, 0, (int)sh->n_replicas - 1)];
    int to = cand[cluster_rnd(rng, 0, nc - 1)];
    int leader = (int)sh->leader;
    shoal_cluster_clear(&cl);
    char g[16], err[256] = "";
    group_name(shard, g, sizeof g);
    int st = shoal_admin_move_replica(admin, shard, (uint64_t)from, (uint64_t)to, err, sizeof err);
    note(run, "move-replica %s %d %d (leader %d): %s %s", g, from, to, leader, shoal_status_str(st),
         st ? err : "");
    if (st != SHOAL_STATUS_OK) {
        run->refused[A_MOVE]++;
        if (!ambiguous(st) && st != SHOAL_STATUS_BAD_REQUEST)
            fail(run, "move-replica %s %d %d answered %s (%s)", g, from, to, shoal_status_str(st),
                 err);
        return;
    }
    run->done[A_MOVE]++;
    /* the fault: TO while it catches up (snapshot), FROM, or the group's leader */
    int who = cluster_rnd(rng, 0, 2);
    int node = who == 0 ? to : who == 1 ? from : leader;
    fault_t f = {.node = -1};
    if (cluster_rnd(rng, 0, 2))
        f = fault_begin(run, rng, node,
                        who == 0   ? "the move's TO"
                        : who == 1 ? "the move's FROM"
                                   : "the leader");
    if (run->enabled[A_CANCEL] && cluster_rnd(rng, 0, 3) == 0) {
        cluster_sleep_ms(cluster_rnd(rng, 100, 900));
        st = shoal_admin_cancel_move(admin, shard, err, sizeof err);
        note(run, "move-replica --cancel %s: %s %s", g, shoal_status_str(st), st ? err : "");
        if (st == SHOAL_STATUS_OK)
            run->done[A_CANCEL]++;
        else
            run->refused[A_CANCEL]++;
    }
    fault_end(run, &f);
}

static void act_split(run_t *run, shoal_t *admin, uint64_t *rng)
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl))
        return;
    if (cl.n_shards >= MAX_SHARDS) {
        run->refused[A_SPLIT]++;
        shoal_cluster_clear(&cl);
        return;
    }
    int64_t source = cluster_rnd(rng, 0, 1)
                         ? -1
                         : (int64_t)cl.shards[cluster_rnd(rng, 0, (int)cl.n_shards - 1)].id;
    int meta_leader = cl.has_meta ? (int)cl.meta.leader : -1;
    shoal_cluster_clear(&cl);
    uint32_t g = 0, from = 0;
    char err[256] = "";
    int st = shoal_admin_add_shard(admin, source, &g, &from, err, sizeof err);
    note(run, "add-shard %" PRId64 ": %s %s -> shard %u from %u", source, shoal_status_str(st),
         st ? err : "", g, from);
    if (st != SHOAL_STATUS_OK) {
        run->refused[A_SPLIT]++;
        if (!ambiguous(st) && st != SHOAL_STATUS_BAD_REQUEST)
            fail(run, "add-shard answered %s (%s)", shoal_status_str(st), err);
        return;
    }
    run->done[A_SPLIT]++;
    if (cluster_rnd(rng, 0, 2)) {
        int node = meta_leader;
        const char *why = "the metadata leader";
        if (cluster_rnd(rng, 0, 1) && get_status(admin, &cl)) {
            for (size_t i = 0; i < cl.n_shards; i++)
                if (cl.shards[i].id == from)
                    node = (int)cl.shards[i].leader, why = "the split's source leader";
            shoal_cluster_clear(&cl);
        }
        fault_t f = fault_begin(run, rng, node, why);
        fault_end(run, &f);
    }
}

static void act_transfer(run_t *run, shoal_t *admin, uint64_t *rng)
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl))
        return;
    const shoal_shard_status_t *sh = pick_group(&cl, rng);
    if (!sh || !sh->n_replicas) {
        shoal_cluster_clear(&cl);
        return;
    }
    uint32_t shard = sh->id;
    int to = (int)sh->replicas[cluster_rnd(rng, 0, (int)sh->n_replicas - 1)];
    int leader = (int)sh->leader;
    shoal_cluster_clear(&cl);
    char g[16], err[256] = "";
    int st = shoal_admin_transfer_leader(admin, shard, (uint64_t)to, err, sizeof err);
    note(run, "transfer-leader %s %d -> %d: %s %s", group_name(shard, g, sizeof g), leader, to,
         shoal_status_str(st), st ? err : "");
    run->done[A_TRANSFER] += st == SHOAL_STATUS_OK;
    run->refused[A_TRANSFER] += st != SHOAL_STATUS_OK;
}

/* A random live node other than not, or -1. */
static int other_live(shoal_t *admin, uint64_t *rng, int not )
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl))
        return -1;
    int up[MAX_IDS], n = map_nodes(&cl, up, true), c[MAX_IDS], nc = 0;
    shoal_cluster_clear(&cl);
    for (int i = 0; i < n; i++)
        if (up[i] != not )
            c[nc++] = up[i];
    return nc ? c[cluster_rnd(rng, 0, nc - 1)] : -1;
}

/* A shoalctl command that waits for moves, run in the background while a node is faulted
 * partway through it. */
static int ctl_with_fault(run_t *run, shoal_t *admin, uint64_t *rng, int not, const char *what,
                          const char *args)
{
    pid_t pid = cluster_spawn(
        "%s --broker %s --timeout 10000 %s >>%s/logs/reconfig-ctl.log 2>&1 </dev/null", run->ctl,
        run->broker_ep, args, run->dir);
    if (pid < 0)
        return -1;
    cluster_sleep_ms(cluster_rnd(rng, 300, 2000));
    fault_t f = {.node = -1};
    if (cluster_rnd(rng, 0, 2))
        f = fault_begin(run, rng, other_live(admin, rng, not ), what);
    fault_end(run, &f);
    return cluster_wait_child(pid);
}

static void act_rebalance(run_t *run, shoal_t *admin, uint64_t *rng)
{
    int rc = ctl_with_fault(run, admin, rng, -1, "during rebalance", "rebalance --move-timeout 40");
    note(run, "rebalance: exit %d", rc);
    run->done[A_REBALANCE] += rc == 0;
    run->refused[A_REBALANCE] += rc != 0;
}

static void act_drain(run_t *run, shoal_t *admin, uint64_t *rng)
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl))
        return;
    int up[MAX_IDS], n = map_nodes(&cl, up, true), in_map = (int)cl.n_nodes;
    shoal_cluster_clear(&cl);
    if (n < 4 || in_map != n) { /* 3 must stay, and everyone up */
        run->refused[A_DRAIN]++;
        return;
    }
    int node = up[cluster_rnd(rng, 0, n - 1)];
    char args[96];
    snprintf(args, sizeof args, "drain-node %d --move-timeout 40", node);
    int rc = ctl_with_fault(run, admin, rng, node, "during drain-node", args);
    note(run, "drain-node %d: exit %d", node, rc);
    if (rc != 0) {
        run->refused[A_DRAIN]++;
        return;
    }
    char err[256] = "";
    int st = SHOAL_STATUS_UNAVAILABLE;
    for (int t = 0; t < 10 && ambiguous(st); t++) {
        st = shoal_admin_remove_node(admin, (uint64_t)node, err, sizeof err);
        if (ambiguous(st))
            cluster_sleep_ms(500);
    }
    note(run, "remove-node %d: %s %s", node, shoal_status_str(st), st ? err : "");
    if (st == SHOAL_STATUS_OK) {
        run->removed[node] = true;
        run->done[A_DRAIN]++;
    } else
        fail(run, "remove-node %d after its drain answered %s (%s)", node, shoal_status_str(st),
             err);
}

static void act_kill(run_t *run, shoal_t *admin, uint64_t *rng)
{
    int node = other_live(admin, rng, -1);
    if (node < 0)
        return;
    bool was = run->enabled[A_FAULT];
    run->enabled[A_FAULT] = true;
    fault_t f = fault_begin(run, rng, node, "a plain fault");
    run->enabled[A_FAULT] = was;
    fault_end(run, &f);
    run->done[A_KILL]++;
}

static void act_broker(run_t *run, uint64_t *rng)
{
    int hold = cluster_rnd(rng, 200, 1500);
    int rc = ctl(run, "cluster stop-node --dir %s broker --kill", run->dir);
    note(run, "kill -9 broker%s; start again in %d ms", rc ? " [failed]" : "", hold);
    cluster_sleep_ms(hold);
    rc = ctl(run, "cluster start-node --dir %s broker", run->dir);
    if (rc)
        fail(run, "cluster start-node broker exited %d", rc);
    run->done[A_BROKER]++;
}

static void nemesis(run_t *run, shoal_t *admin, uint64_t *rng, int64_t until_ns)
{
    int total = 0;
    for (int a = 0; a < A_COUNT; a++)
        total += run->enabled[a] ? action_weight[a] : 0;
    bool first = true;
    while (cluster_mono_ns() < until_ns && total) {
        int a = A_ADD_NODE;
        if (!first || !run->enabled[A_ADD_NODE]) {
            int r = cluster_rnd(rng, 0, total - 1);
            for (a = 0; a < A_COUNT; a++) {
                int wgt = run->enabled[a] ? action_weight[a] : 0;
                if (r < wgt)
                    break;
                r -= wgt;
            }
        }
        first = false;
        switch (a) {
        case A_ADD_NODE: act_add_node(run, admin); break;
        case A_MOVE: act_move(run, admin, rng); break;
        case A_SPLIT: act_split(run, admin, rng); break;
        case A_TRANSFER: act_transfer(run, admin, rng); break;
        case A_REBALANCE: act_rebalance(run, admin, rng); break;
        case A_DRAIN: act_drain(run, admin, rng); break;
        case A_KILL: act_kill(run, admin, rng); break;
        case A_BROKER: act_broker(run, rng); break;
        default: break;
        }
        char why[128];
        if (!run->overlap && !wait_healthy(run, admin, HEAL_MS, why, sizeof why))
            note(run, "not healthy %d s after the change: %s", HEAL_MS / 1000, why);
        cluster_sleep_ms(cluster_rnd(rng, 200, 800));
    }
}

/* ---- the final checks --------------------------------------------------------------- */

/* A key and how often it was seen. */
typedef struct {
    char *key, *val;
    int count;
} seen_t;

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const seen_t *)a)->key, ((const seen_t *)b)->key);
}

static seen_t *seen_find(seen_t *v, size_t n, const char *key)
{
    seen_t k = {.key = (char *)key};
    return bsearch(&k, v, n, sizeof *v, seen_cmp);
}

/* Every key under the run's prefix through the broker's scan (paged); sorted. */
static seen_t *broker_scan(run_t *run, shoal_t *admin, size_t *count)
{
    size_t n = 0, cap = 0;
    seen_t *v = NULL;
    char *from = NULL;
    for (;;) {
        shoal_result_t r;
        int st = SHOAL_STATUS_UNAVAILABLE;
        for (int t = 0; t < 5 && st != SHOAL_STATUS_OK; t++) {
            st = shoal_scan(admin, run->prefix, strlen(run->prefix), from, from ? strlen(from) : 0,
                            NULL, 0, 0, &r);
            if (st != SHOAL_STATUS_OK) {
                note(run, "final scan: %s (%s)", shoal_status_str(st), r.error);
                shoal_result_clear(&r);
                cluster_sleep_ms(1000);
            }
        }
        if (st != SHOAL_STATUS_OK) {
            fail(run, "the final scan through the broker failed: %s", shoal_status_str(st));
            break;
        }
        for (size_t i = 0; i < r.n_kvs; i++) {
            if (from && i == 0 && r.kvs[i].key_len == strlen(from) &&
                !memcmp(r.kvs[i].key, from, r.kvs[i].key_len))
                continue; /* start is inclusive */
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                v = realloc(v, cap * sizeof *v);
            }
            v[n].key = strndup((const char *)r.kvs[i].key, r.kvs[i].key_len);
            v[n].val = strndup((const char *)r.kvs[i].value, r.kvs[i].value_len);
            v[n].count = 1;
            n++;
        }
        bool more = r.more && r.n_kvs > 0;
        if (more) {
            free(from);
            shoal_kv_t *last = &r.kvs[r.n_kvs - 1];
            from = strndup((const char *)last->key, last->key_len);
        }
        shoal_result_clear(&r);
        if (!more)
            break;
    }
    free(from);
    qsort(v, n, sizeof *v, seen_cmp);
    *count = n;
    return v;
}

static void check_fill_keys(run_t *run, shoal_t *admin, seen_t *v, size_t n)
{
    /* no key twice in the merged scan */
    for (size_t i = 1; i < n; i++)
        if (!strcmp(v[i].key, v[i - 1].key))
            fail(run, "the broker's scan returned %s twice", v[i].key);
    size_t acked = 0, lost = 0, wrong = 0, resurrected = 0, checked_gets = 0;
    for (int w = 0; w < run->fillers; w++) {
        filler_t *f = &run->fill[w];
        for (size_t k = 0; k < f->n; k++) {
            char key[96], val[32];
            fill_key(run, w, k, key, sizeof key);
            fill_val(w, k, val, sizeof val);
            seen_t *s = seen_find(v, n, key);
            if (s)
                s->count = -1; /* accounted for */
            uint8_t st = f->state[k];
            if (st == F_PUT_ACK) {
                acked++;
                if (!s) {
                    if (lost++ < 10)
                        fail(run, "acknowledged write %s = %s is missing from the scan", key, val);
                } else if (strcmp(s->val, val)) {
                    if (wrong++ < 10)
                        fail(run, "%s holds %s, want %s", key, s->val, val);
                }
                /* and a linearizable read of it */
                shoal_result_t r;
                int gs = shoal_get(admin, key, strlen(key), false, &r);
                checked_gets++;
                if (gs == SHOAL_STATUS_NOT_FOUND)
                    fail(run, "get of acknowledged %s: not found", key);
                else if (gs == SHOAL_STATUS_OK &&
                         (r.value_len != strlen(val) || memcmp(r.value, val, r.value_len)))
                    fail(run, "get of acknowledged %s: %.*s, want %s", key, (int)r.value_len,
                         (const char *)r.value, val);
                else if (gs != SHOAL_STATUS_OK)
                    fail(run, "get of acknowledged %s: %s", key, shoal_status_str(gs));
                shoal_result_clear(&r);
            } else if (st == F_DEL_ACK) {
                if (s && resurrected++ < 10)
                    fail(run, "%s was deleted (acknowledged) but the scan holds it (%s)", key,
                         s->val);
            } else if (s && strcmp(s->val, val)) {
                if (wrong++ < 10)
                    fail(run, "%s holds %s, want %s or nothing", key, s->val, val);
            }
        }
    }
    /* the shared register keys are checked by the history; anything else is foreign */
    for (size_t i = 0; i < n; i++)
        if (v[i].count != -1 && strncmp(v[i].key + strlen(run->prefix), "lin/", 4))
            fail(run, "the scan holds %s = %s, which the run never wrote", v[i].key, v[i].val);
    note(run,
         "final scan: %zu keys; %zu acknowledged fill keys (%zu missing, %zu wrong), %zu "
         "gets",
         n, acked, lost, wrong, checked_gets);
}

/* One page of shard's scan at node endpoint ep (a DEALER of its own): the response frame,
 * NULL when the node did not answer within ms. The request carries the map version the
 * broker showed, as the broker's would (a source shard refuses scans routed with a map
 * older than its newest split). */
static Shoal__Frame *node_scan_page(zsock_t *sock, uint32_t shard, uint64_t map_version,
                                    const char *prefix, const char *start, uint64_t rid, int ms)
{
    Shoal__ScanRequest scan = SHOAL__SCAN_REQUEST__INIT;
    scan.prefix = (ProtobufCBinaryData){strlen(prefix), (uint8_t *)prefix};
    if (start)
        scan.start = (ProtobufCBinaryData){strlen(start), (uint8_t *)start};
    scan.limit = 5000;
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    req.request_id = rid;
    req.shard = shard;
    req.map_version = map_version;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_SCAN;
    req.scan = &scan;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
    f.client_req = &req;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    if (!buf)
        return NULL;
    zmq_send(zsock_resolve(sock), buf, len, ZMQ_DONTWAIT);
    free(buf);
    int64_t until = zclock_mono() + ms;
    while (zclock_mono() < until) {
        zpoller_t *p = zpoller_new(sock, NULL);
        void *r = zpoller_wait(p, (int)(until - zclock_mono()));
        zpoller_destroy(&p);
        if (!r)
            break;
        zframe_t *fr = zframe_recv(sock);
        Shoal__Frame *resp = NULL;
        char err[128];
        if (fr &&
            shoal_frame_decode(zframe_data(fr), zframe_size(fr), &resp, err, sizeof err) == 0 &&
            resp->body_case == SHOAL__FRAME__BODY_CLIENT_RESP &&
            resp->client_resp->request_id == rid) {
            zframe_destroy(&fr);
            return resp;
        }
        shoal_frame_free(&resp);
        zframe_destroy(&fr);
    }
    return NULL;
}

/* Every key under prefix that shard holds, asked of its leader straight (not through the
 * broker, whose merged scan keeps a key two shards answered once); each key goes to
 * on_key. Returns the keys seen, or -1 when no leader answered within 20 s. */
static long node_scan(run_t *run, const shoal_cluster_t *cl, uint32_t shard, const char *prefix,
                      void (*on_key)(run_t *, uint32_t, const char *, const char *, void *),
                      void *arg)
{
    zsock_t *socks[MAX_IDS];
    int n = 0;
    for (size_t i = 0; i < cl->n_nodes && n < MAX_IDS; i++)
        if (cl->nodes[i].up) {
            socks[n] = zsock_new(ZMQ_DEALER);
            zsock_set_linger(socks[n], 0);
            zsock_connect(socks[n], "%s", cl->nodes[i].endpoint);
            n++;
        }
    long seen = 0;
    char *start = NULL;
    uint64_t rid = 1;
    int next = 0;
    int64_t deadline = zclock_mono() + 20000;
    while (n && zclock_mono() < deadline) {
        Shoal__Frame *f =
            node_scan_page(socks[next], shard, cl->map_version, prefix, start, rid++, 1000);
        Shoal__ClientResponse *r = f ? f->client_resp : NULL;
        if (!r || r->status != SHOAL__STATUS__STATUS_OK) {
            if (r && r->status != SHOAL__STATUS__STATUS_NOT_LEADER &&
                r->status != SHOAL__STATUS__STATUS_UNAVAILABLE &&
                r->status != SHOAL__STATUS__STATUS_TIMEOUT)
                note(run, "scan of shard %u at a node: status %d (%s)", shard, r->status, r->error);
            shoal_frame_free(&f);
            next = (next + 1) % n;
            zclock_sleep(20);
            continue;
        }
        for (size_t i = 0; i < r->n_kvs; i++) {
            char *k = strndup((const char *)r->kvs[i]->key.data, r->kvs[i]->key.len);
            char *v = strndup((const char *)r->kvs[i]->value.data, r->kvs[i]->value.len);
            if (!start || strcmp(k, start)) { /* start is inclusive */
                on_key(run, shard, k, v, arg);
                seen++;
            }
            free(v);
            if (i + 1 == r->n_kvs) {
                free(start);
                start = k;
            } else
                free(k);
        }
        bool more = r->more && r->n_kvs > 0;
        shoal_frame_free(&f);
        if (!more) {
            deadline = 0;
            break;
        }
    }
    free(start);
    for (int i = 0; i < n; i++)
        zsock_destroy(&socks[i]);
    return deadline ? -1 : seen;
}

typedef struct {
    seen_t *v;
    size_t n;
} shard_check_t;

static void on_shard_key(run_t *run, uint32_t shard, const char *key, const char *val, void *arg)
{
    shard_check_t *c = arg;
    seen_t *e = seen_find(c->v, c->n, key);
    if (!e)
        fail(run, "shard %u holds %s = %s, which the broker's scan did not return", shard, key,
             val);
    else if (e->count++ == 1)
        fail(run, "%s is on two shards (again on shard %u, value %s; broker's scan: %s)", key,
             shard, val, e->val);
}

/* Every shard scanned on its own at its leader; each key the broker's scan returned must be
 * on exactly one shard. */
static void check_shards(run_t *run, shoal_t *admin, seen_t *v, size_t n)
{
    shoal_cluster_t cl;
    if (!get_status(admin, &cl)) {
        fail(run, "no status for the per-shard scans");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i].count = 0;
    shard_check_t c = {v, n};
    long total = 0;
    for (size_t s = 0; s < cl.n_shards; s++) {
        long here = node_scan(run, &cl, cl.shards[s].id, run->prefix, on_shard_key, &c);
        if (here < 0)
            fail(run, "no leader of shard %u answered its scan", cl.shards[s].id);
        else
            total += here;
        note(run, "shard %u: %ld keys of the run", cl.shards[s].id, here);
    }
    size_t none = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].count == 0 && none++ < 10)
            fail(run, "%s (scan: %s) is on no shard when each is scanned alone", v[i].key,
                 v[i].val);
    note(run, "per-shard scans: %ld keys on %zu shards (map v%" PRIu64 ")", total, cl.n_shards,
         cl.map_version);
    shoal_cluster_clear(&cl);
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: cluster_reconfig_linearizable [--seed S] [--duration S] [--clients N]\n"
            "  [--keys K] [--fillers N] [--op-timeout MS] [--actions all|LIST]\n"
            "  [--base-port P] [--history FILE] [--overlap]\n"
            "  LIST: comma-separated of add-node,move,cancel,split,transfer,rebalance,drain,\n"
            "        kill,broker,fault\n");
    exit(2);
}

static bool parse_actions(run_t *run, const char *v)
{
    memset(run->enabled, 0, sizeof run->enabled);
    if (!strcmp(v, "all")) {
        for (int a = 0; a < A_COUNT; a++)
            run->enabled[a] = true;
        return true;
    }
    char *copy = strdup(v), *save = NULL;
    bool ok = true;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int a = 0; a < A_COUNT; a++)
            if (!strcmp(t, action_names[a]))
                found = a;
        if (found < 0)
            ok = false;
        else
            run->enabled[found] = true;
    }
    free(copy);
    return ok;
}

int main(int argc, char **argv)
{
    static run_t run_s;
    run_t *run = &run_s;
    run->duration_s = 18;
    run->clients = 6;
    run->nkeys = 4;
    run->fillers = 3;
    run->op_timeout_ms = OP_TIMEOUT_MS;
    run->actions_arg = "all";
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
        else if (!strcmp(a, "--fillers") && v)
            run->fillers = atoi(v), i++;
        else if (!strcmp(a, "--op-timeout") && v)
            run->op_timeout_ms = atoi(v), i++;
        else if (!strcmp(a, "--actions") && v)
            run->actions_arg = v, i++;
        else if (!strcmp(a, "--base-port") && v)
            base = atoi(v), i++;
        else if (!strcmp(a, "--history") && v)
            hist = v, i++;
        else if (!strcmp(a, "--overlap"))
            run->overlap = true;
        else
            usage();
    }
    if (!parse_actions(run, run->actions_arg) || run->clients < 1 ||
        run->clients > LIN_MAX_CLIENTS || run->nkeys < 2 || run->nkeys > LIN_MAX_KEYS ||
        run->fillers < 0 || run->fillers > MAX_FILLERS || run->duration_s < 1 ||
        run->op_timeout_ms < 100)
        usage();
    if (!run->seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        run->seed = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid()) | 1;
        if (getenv("RECONFIG_SEED"))
            run->seed = strtoull(getenv("RECONFIG_SEED"), NULL, 0);
    }
    run->build = getenv("SHOAL_BUILD_DIR");
    run->source = getenv("SHOAL_SOURCE_DIR");
    if (!run->build || !run->source) {
        fprintf(stderr, "set SHOAL_BUILD_DIR and SHOAL_SOURCE_DIR\n");
        return 2;
    }
    pthread_mutex_init(&run->lock, NULL);
    run->t0_ns = cluster_mono_ns();
    fprintf(stderr,
            "cluster_reconfig_linearizable: seed %" PRIu64 ", %d s, %d clients, %d keys, "
            "%d fill writers, actions %s\n",
            run->seed, run->duration_s, run->clients, run->nkeys, run->fillers, run->actions_arg);
    snprintf(run->dir, sizeof run->dir, "%s/shoal-reconfig.XXXXXX", cluster_tmp_root());
    if (!mkdtemp(run->dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (hist)
        snprintf(run->history, sizeof run->history, "%s", hist);
    else
        snprintf(run->history, sizeof run->history, "%s/shoal-reconfig-history.%" PRIu64 ".jsonl",
                 cluster_tmp_root(), run->seed);
    snprintf(run->prefix, sizeof run->prefix, "rc/%08" PRIx64 "/", run->seed & 0xffffffff);
    cluster_start_guardian(run->dir, NULL, NULL);
    cluster_watchdog((unsigned)(run->duration_s + 400),
                     "FAIL: cluster_reconfig_linearizable hung (seed %" PRIu64 ")\n", run->seed);
    snprintf(run->ctl, sizeof run->ctl, "%s/tools/shoalctl", run->build);
    if (base && !cluster_base_free(base, MAX_IDS)) {
        fprintf(stderr, "ports of --base-port %d are in use\n", base);
        return 2;
    }
    run->base = base ? base : cluster_pick_base(MAX_IDS, 23);
    snprintf(run->broker_ep, sizeof run->broker_ep, "tcp://127.0.0.1:%d", run->base);
    run->ids = START_NODES;
    /* moves must stream snapshots: often, and with no trailing entries behind them; one
     * node restarted at a time, so that each start finds its groups led */
    int rc = cluster_shell("%s cluster up --dir %s --nodes %d --shards %d --replicas 3 "
                           "--base-port %d --timeout 60000 >%s/up.out 2>&1",
                           run->ctl, run->dir, START_NODES, START_SHARDS, run->base, run->dir);
    for (int i = 0; !rc && i < START_NODES; i++) {
        rc = ctl(run, "cluster stop-node --dir %s %d", run->dir, i);
        rc = rc ? rc
                : cluster_shell("sed -i 's/^storage$/storage\\n    snapshot_entries = 200\\n    "
                                "snapshot_trailing_entries = 0/' %s/node-%d.cfg",
                                run->dir, i);
        rc = rc ? rc : ctl(run, "cluster start-node --dir %s %d", run->dir, i);
    }
    if (rc != 0) {
        fail(run, "cluster up (and the restart with frequent snapshots) exited %d", rc);
        cluster_shell("cat %s/up.out >&2", run->dir);
    }
    shoal_t *admin = shoal_connect(run->broker_ep);
    shoal_set_timeout(admin, 8000);
    uint64_t total = 0, ambs = 0, fill_ok = 0, fill_amb = 0;
    lin_workload_t *w = &run->w;
    char why[128];
    if (!run->failures) {
        if (!wait_healthy(run, admin, 30000, why, sizeof why))
            fail(run, "cluster not healthy after start: %s", why);
        for (int k = 0; k < run->nkeys && !run->failures; k++) {
            snprintf(w->keys[k], sizeof w->keys[k], "%.24slin/k%d", run->prefix, k);
            int st = SHOAL_STATUS_UNAVAILABLE;
            for (int t = 0; t < 10 && st != SHOAL_STATUS_OK; t++) {
                st = shoal_del(admin, w->keys[k], strlen(w->keys[k]), NULL);
                if (st == SHOAL_STATUS_NOT_FOUND)
                    st = SHOAL_STATUS_OK;
                if (st != SHOAL_STATUS_OK)
                    cluster_sleep_ms(300);
            }
            if (st != SHOAL_STATUS_OK)
                fail(run, "first delete of %s: %s", w->keys[k], shoal_status_str(st));
        }
    }
    if (!run->failures) {
        run->t0_ns = cluster_mono_ns();
        w->seed = run->seed;
        w->clients = run->clients;
        w->nkeys = run->nkeys;
        w->op_timeout_ms = run->op_timeout_ms;
        memcpy(w->broker_ep, run->broker_ep, sizeof w->broker_ep);
        w->t0_ns = run->t0_ns;
        w->on_error = on_client_error;
        w->arg = run;
        lin_start(w);
        for (int i = 0; i < run->fillers; i++) {
            filler_t *f = &run->fill[i];
            f->run = run;
            f->id = i;
            f->rng = (run->seed ^ 0xf111) * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1;
            pthread_create(&f->th, NULL, filler_main, f);
        }
        note(run, "%d clients and %d fill writers started; reconfiguration for %d s", run->clients,
             run->fillers, run->duration_s);
        uint64_t rng = run->seed ^ 0x2ec0;
        int64_t until = cluster_mono_ns() + (int64_t)run->duration_s * 1000000000LL;
        nemesis(run, admin, &rng, until);
        if (run->stopped) {
            kill(run->stopped, SIGCONT);
            run->stopped = 0;
        }
        /* heal: every node of the map up again, then a last second of load */
        if (!wait_healthy(run, admin, 60000, why, sizeof why))
            fail(run, "the cluster did not heal within 60 s of the last change: %s", why);
        cluster_sleep_ms(1000);
        lin_stop(w, &total, &ambs);
        atomic_store(&run->stop_fill, true);
        for (int i = 0; i < run->fillers; i++) {
            pthread_join(run->fill[i].th, NULL);
            fill_ok += run->fill[i].oks;
            fill_amb += run->fill[i].ambs;
        }
        if (lin_final_reads(w, admin))
            fail(run, "a final read of a shared key was not answered on the healed cluster");
        note(run,
             "stopped: %" PRIu64 " register operations (%" PRIu64 " ambiguous), %" PRIu64
             " fill writes (%" PRIu64 " ambiguous)",
             total, ambs, fill_ok + fill_amb, fill_amb);
        char acts[512];
        size_t len = 0;
        for (int a = 0; a < A_COUNT; a++)
            len += (size_t)snprintf(acts + len, sizeof acts - len, "%s%s %d/%d", a ? ", " : "",
                                    action_names[a], run->done[a], run->refused[a]);
        note(run, "changes made/refused: %s", acts);
        char meta[600];
        snprintf(meta, sizeof meta,
                 "{\"seed\":%" PRIu64 ",\"nemesis\":\"reconfig:%s\",\"clients\":%d,"
                 "\"keys\":%d,\"duration\":%d}",
                 run->seed, run->actions_arg, run->clients, run->nkeys, run->duration_s);
        if (lin_write_history(w, run->history, meta) != 0)
            fail(run, "cannot write %s", run->history);
        size_t n = 0;
        seen_t *v = broker_scan(run, admin, &n);
        check_fill_keys(run, admin, v, n);
        check_shards(run, admin, v, n);
        for (size_t i = 0; i < n; i++)
            free(v[i].key), free(v[i].val);
        free(v);
        for (int i = 0; i < run->ids; i++)
            if (!run->removed[i] && !cluster_pid_alive(cluster_node_pid(run->dir, i)))
                fail(run, "node %d is not running after the changes (it died on its own)", i);
        /* a removed node stops by itself once it holds nothing (docs/OPERATIONS.md) */
        for (int i = 0; i < run->ids; i++) {
            for (int t = 0; run->removed[i] && t < 100; t++) {
                if (!cluster_pid_alive(cluster_node_pid(run->dir, i)))
                    break;
                cluster_sleep_ms(100);
            }
            if (run->removed[i] && cluster_pid_alive(cluster_node_pid(run->dir, i)))
                fail(run, "node %d was removed but its shoald still runs", i);
        }
        if (!cluster_pid_alive(cluster_read_pid(run->dir, "broker")))
            fail(run, "the broker is not running after the changes (it died on its own)");
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
    if (total) {
        rc = cluster_shell("python3 %s/tests/integration/linearizable_check.py %s >&2", run->source,
                           run->history);
        if (rc != 0)
            fail(run, "the history is NOT linearizable (checker exit %d); history kept in %s", rc,
                 run->history);
    }
    if (run->failures) {
        fprintf(stderr,
                "cluster_reconfig_linearizable FAILED (%d failures), seed %" PRIu64 "\nreplay: "
                "SHOAL_BUILD_DIR=%s SHOAL_SOURCE_DIR=%s %s --seed %" PRIu64 " --duration %d "
                "--clients %d --keys %d --fillers %d --op-timeout %d --actions %s%s\n"
                "re-check: python3 %s/tests/integration/linearizable_check.py %s\n",
                run->failures, run->seed, run->build, run->source, argv[0], run->seed,
                run->duration_s, run->clients, run->nkeys, run->fillers, run->op_timeout_ms,
                run->actions_arg, run->overlap ? " --overlap" : "", run->source, run->history);
        char logs[512];
        snprintf(logs, sizeof logs, "%s/shoal-reconfig-logs.%" PRIu64, cluster_tmp_root(),
                 run->seed);
        cluster_keep_logs(run->dir, logs);
    } else {
        fprintf(stderr,
                "cluster_reconfig_linearizable: passed (%" PRIu64 " operations), seed %" PRIu64
                ", %.1f s\n",
                total, run->seed, since(run));
        if (!hist)
            unlink(run->history);
    }
    cluster_remove_dir(run->dir);
    lin_free(w);
    for (int i = 0; i < run->fillers; i++)
        free(run->fill[i].state);
    return run->failures ? 1 : 0;
}
