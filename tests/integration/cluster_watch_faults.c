/* cluster_watch_faults.c - change streams checked end to end under faults.
 *
 * Starts `shoalctl cluster up` (3 nodes, 4 shards x 3 replicas) in a temporary folder on
 * free ports, then runs writer threads, each with its own libshoal connection and its own
 * keys ("a/wW/kI" for even I, "b/wW/kI" for odd I, so that a prefix watcher sees about
 * half), doing put / del / cas (swap, compare-and-delete, failing on purpose) / batches of
 * 2-4 keys (spread over the shards), every written value unique. Each write is recorded
 * with its outcome: ok (with the shard and Raft index it applied at), not applied (a cas
 * whose compare failed), ambiguous (TIMEOUT / UNAVAILABLE / INTERNAL: it may apply once,
 * at any later time, or never).
 *
 * Watchers (`shoal_watch_*`), each a thread with its own connection, record every event
 * they deliver (changes, progress, fell-behind):
 *   all      unfiltered, from the start (shoal_watch_from every shard after 0)
 *   prefix   prefix "a/", from the start
 *   resumer  unfiltered; every 1-3 s it drops its watch and, 0.2-1.5 s later, opens a new one
 *            resuming after the last change it delivered per shard, inside a batch entry
 *            after its op (shoal_watch_from_op(shard, index, op_seq + 1), `shoalctl watch
 *            --from-index SHARD:INDEX.OP`; resuming after the index alone lost the rest
 *            of a batch, QA); --resume-from before resumes from the index before instead
 *            and drops the ops it had
 *   laggard  prefix "b/"; once, mid-run, it drops its watch while a writer pushes ~24 MiB
 *            of 256 KiB values (more than a shard's 4 MiB change window), then resumes
 *            from its last index per shard (change or progress): it must be told it fell
 *            behind, with a resume point, and must then go on
 * Meanwhile a nemesis injects one fault at a time:
 *   pause     SIGSTOP the leader of a random shard 1.2-3 s (past an election timeout)
 *   kill      kill -9 a node (a shard's leader half the time), restart it 1-3 s later
 *   broker    kill -9 the broker, start a new one 0.2-1.5 s later
 *   transfer  move a shard's leadership to another node
 *   mixed     any of them (default); none: no faults
 * After the faults stop and the last ambiguous write can no longer apply, a sentinel write
 * per shard gives each shard's final index T; every watcher must deliver a progress event
 * at >= T for every shard (and the unfiltered ones the sentinels). Then, per watcher:
 *   - per shard, change events in index order: an index never goes back, and the changes of
 *     one index (a batch entry) come together, no key twice;
 *   - every event is a write some client made (key, op, value), and its key has the
 *     watcher's prefix;
 *   - per key, the events are a subsequence of its writer's writes in order: every
 *     acknowledged write exactly once (at the shard and index it was acknowledged with),
 *     an ambiguous one at most once, a failed cas never (unless the watcher was told it
 *     fell behind on that shard: then only the order and the origin are checked);
 *   - a batch's changes on one shard appear all together under one index or not at all;
 *   - watchers that were not told they fell behind saw the same changes (the prefix
 *     watcher: those of its prefix), and the state folded from the events equals a scan
 *     through the broker;
 *   - a fell-behind event names a shard and an index, and a new watch from that index
 *     either replays or says again (ENOTFOUND) that it is gone; the laggard then rescans
 *     and watches from the shard's current progress index, which must work.
 * Changes that arrive after a progress event covering their index are reported too (the
 * contract: every change up to a progress notice's index comes before it).
 *
 *   cluster_watch_faults [--seed S] [--duration S] [--writers N] [--keys K]
 *       [--nemesis mixed|pause|kill|broker|transfer|none] [--op-timeout MS]
 *       [--base-port P] [--no-laggard] [--resume-from last|before] [--verbose]
 * Env: SHOAL_BUILD_DIR (tools/shoalctl, actors/shoald, broker/shoal-broker);
 * SHOAL_WATCH_FAULTS_LONG=1 runs 60 s of faults instead of the short default (9 s);
 * WATCH_FAULTS_SEED fixes the seed. Exit 0: no violation, no crash; 1: a failure; 2: usage. */
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
#define SHARDS 4
#define MAX_WRITERS 16
#define MAX_KPW 128 /* keys per writer */
#define N_SENT 64   /* candidate sentinel keys ("s/NN"), one per shard is used */
#define N_BIG 96    /* big values of the laggard's burst */
#define BIG_LEN (256u * 1024u)
#define VHEAD 24 /* bytes of a value kept (values are unique by their head) */
#define OP_TIMEOUT_MS 3000
#define BROKER_RETRY_MS 5500 /* broker/request_timeout_ms (5000) and a margin */

enum { N_MIXED, N_PAUSE, N_KILL, N_BROKER, N_TRANSFER, N_NONE };
static const char *nemesis_names[] = {"mixed", "pause", "kill", "broker", "transfer", "none"};

/* key ids: writer keys, then sentinels, then big keys */
#define KEY_SENT(run) ((run)->writers * (run)->kpw)
#define KEY_BIG(run) (KEY_SENT(run) + N_SENT)
#define N_KEYS(run) (KEY_BIG(run) + N_BIG)
#define KEY_NONE 0xFFFFFFFFu

/* ---- the write history --------------------------------------------------------------- */

typedef enum { K_PUT, K_DEL, K_CAS, K_CASDEL, K_BATCH } wkind_t;
static const char *wkind_name[] = {"put", "del", "cas", "cas-del", "batch"};
typedef enum { RES_OK, RES_NOTAPPLIED, RES_AMBIG, RES_ERROR } wout_t;
static const char *wout_name[] = {"ok", "not-applied", "ambiguous", "error"};

typedef struct {
    uint32_t key;
    bool del;
    char val[VHEAD]; /* head of the value, NUL-terminated */
    uint32_t vlen;
} wop_t;

typedef struct {
    int64_t t_inv, t_ret; /* ms since t0 */
    uint8_t kind, out, n;
    int status;
    uint32_t shard;
    uint64_t index;
    wop_t ops[4];
} wrec_t;

typedef struct run run_t;

typedef struct {
    run_t *run;
    int id;
    uint64_t rng;
    wrec_t *recs;
    size_t n, cap;
    uint32_t next_val;
    pthread_t th;
    uint64_t oks, ambs, notapp;
} writer_t;

/* ---- the watchers' records ----------------------------------------------------------- */

typedef enum { WT_ALL, WT_PREFIX, WT_RESUME, WT_LAG, WT_COUNT } wtype_t;
static const char *wtype_name[] = {"all", "prefix", "resumer", "laggard"};

typedef struct {
    int64_t t;    /* ms since t0 */
    uint8_t kind; /* shoal_watch_kind_t */
    bool del;
    uint16_t gen; /* the watch it came from (resumer, laggard: one per reconnect) */
    uint32_t shard;
    uint64_t index;
    uint32_t key; /* KEY_NONE: not a key any client wrote */
    uint32_t vlen;
    char val[VHEAD];
    char rawkey[32]; /* for KEY_NONE */
} wev_t;

typedef struct {
    run_t *run;
    int id;
    wtype_t type;
    const char *prefix;
    uint64_t rng;
    pthread_t th;
    pthread_mutex_t lock; /* evs, reached */
    wev_t *evs;
    size_t n, cap;
    uint16_t gen;
    uint64_t last_change[SHARDS], last_progress[SHARDS];
    uint32_t last_ops[SHARDS]; /* ops of entry last_change delivered (0: a single-op entry) */
    bool fell_behind[SHARDS], fb_pending[SHARDS];
    uint64_t fb_index[SHARDS];
    int fb_from_rc[SHARDS];   /* shoal_watch_from at the fell-behind index */
    int fb_resume_rc[SHARDS]; /* shoal_watch_from at the progress index after a rescan */
    /* --resume-from before: the keys delivered at each shard's last index, to drop their
     * replay after a reconnect that resumed from the index before */
    uint32_t at_last[SHARDS][8];
    int n_at_last[SHARDS];
    uint64_t replay_index[SHARDS];
    uint32_t replay_keys[SHARDS][8];
    int n_replay[SHARDS];
    bool reached;
    int64_t t_reached;
    int reconnects;
    int from_fails; /* shoal_watch_from answered EUNAVAIL at a reconnect (retried) */
} watcher_t;

struct run {
    uint64_t seed;
    int duration_s, writers, kpw, nemesis, op_timeout_ms;
    bool verbose, laggard, resume_before;
    const char *build;
    char dir[256], ctl[512], broker_ep[64];
    int base;
    int64_t t0_ns;
    atomic_bool stop_writers, stop_watchers, final_phase;
    atomic_int lag_state; /* 0 before, 1 laggard down (burst may run), 2 burst done */
    pthread_mutex_t lock;
    int failures;
    char (*keys)[32];
    int32_t *key_shard;      /* -1 unknown */
    int sent_key[SHARDS];    /* the sentinel key id of each shard */
    uint64_t target[SHARDS]; /* final index per shard (sentinels) */
    pid_t stopped;
    int faults;
    writer_t ws[MAX_WRITERS + 2]; /* writers, then the big writer, then the sentinel writer */
    watcher_t wa[WT_COUNT];
    atomic_llong last_ambig_ms;
};

/* ---- helpers ------------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_ms(run_t *run)
{
    return (mono_ns() - run->t0_ns) / 1000000;
}

static void note(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(run_t *run, const char *fmt, ...)
{
    char line[700];
    int n = snprintf(line, sizeof line, "[%7.3f s] ", (double)now_ms(run) / 1e3);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

static void fail(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(run_t *run, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&run->lock);
    if (run->failures++ < 60)
        fprintf(stderr, "FAIL [%7.3f s]: %s\n", (double)now_ms(run) / 1e3, line);
    pthread_mutex_unlock(&run->lock);
}

static int ctl(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl(run_t *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cluster_vctl(run->ctl, run->dir, "wf-ctl.log", fmt, ap);
    va_end(ap);
    return rc;
}

static bool ambiguous(int st)
{
    return st == SHOAL_STATUS_TIMEOUT || st == SHOAL_STATUS_UNAVAILABLE ||
           st == SHOAL_STATUS_INTERNAL;
}

/* The key id of a key, KEY_NONE when no client writes it. */
static uint32_t key_id(run_t *run, const uint8_t *k, size_t len)
{
    char s[40];
    if (len >= sizeof s)
        return KEY_NONE;
    memcpy(s, k, len);
    s[len] = 0;
    unsigned w, i;
    char p, end;
    uint32_t id = KEY_NONE;
    if (sscanf(s, "%c/w%u/k%u%c", &p, &w, &i, &end) == 3 && (int)w < run->writers &&
        (int)i < run->kpw)
        id = w * (unsigned)run->kpw + i;
    else if (sscanf(s, "s/%u%c", &i, &end) == 1 && i < N_SENT)
        id = (uint32_t)KEY_SENT(run) + i;
    else if (sscanf(s, "big/%u%c", &i, &end) == 1 && i < N_BIG)
        id = (uint32_t)KEY_BIG(run) + i;
    return id != KEY_NONE && strcmp(run->keys[id], s) == 0 ? id : KEY_NONE;
}

static bool has_prefix(const char *key, const char *prefix)
{
    return !prefix || strncmp(key, prefix, strlen(prefix)) == 0;
}

static void head_of(char *dst, const uint8_t *v, size_t len)
{
    size_t l = len < VHEAD - 1 ? len : VHEAD - 1;
    if (l)
        memcpy(dst, v, l);
    dst[l] = 0;
}

/* ---- writers ------------------------------------------------------------------------- */

static wrec_t *new_rec(writer_t *w)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->recs = realloc(w->recs, w->cap * sizeof *w->recs);
        if (!w->recs) {
            perror("realloc");
            exit(1);
        }
    }
    wrec_t *r = &w->recs[w->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static void finish(writer_t *w, wrec_t *r, int st, shoal_result_t *res)
{
    run_t *run = w->run;
    r->t_ret = now_ms(run);
    r->status = st;
    if (st == SHOAL_STATUS_OK) {
        r->out = RES_OK;
        r->shard = res->shard;
        r->index = res->index;
        w->oks++;
        if (r->kind != K_BATCH)
            run->key_shard[r->ops[0].key] = (int32_t)res->shard;
    } else if (st == SHOAL_STATUS_COMPARE_FAILED) {
        r->out = RES_NOTAPPLIED;
        w->notapp++;
    } else if (ambiguous(st)) {
        r->out = RES_AMBIG;
        w->ambs++;
        atomic_store(&run->last_ambig_ms, (long long)r->t_ret);
    } else {
        r->out = RES_ERROR;
        fail(run, "writer %d: %s of %s answered %s (%s)", w->id, wkind_name[r->kind],
             run->keys[r->ops[0].key], shoal_status_str(st), res->error);
    }
}

/* One write of writer w on its own keys; known[] is what w believes each key holds
 * (NULL: absent, "?": unknown after an ambiguous write). */
typedef struct {
    char v[VHEAD];
    int state; /* 0 absent, 1 value v, 2 unknown */
} kstate_t;

static void one_write(writer_t *w, shoal_t *s, kstate_t *ks)
{
    run_t *run = w->run;
    wrec_t *r = new_rec(w);
    shoal_result_t res;
    memset(&res, 0, sizeof res);
    int p = cluster_rnd(&w->rng, 0, 99);
    int ki = cluster_rnd(&w->rng, 0, run->kpw - 1);
    uint32_t key = (uint32_t)(w->id * run->kpw + ki);
    const char *k = run->keys[key];
    int st;
    r->n = 1;
    r->ops[0].key = key;
    if (p < 40) {
        r->kind = K_PUT;
        snprintf(r->ops[0].val, VHEAD, "w%d.%u", w->id, ++w->next_val);
        r->ops[0].vlen = (uint32_t)strlen(r->ops[0].val);
        r->t_inv = now_ms(run);
        st = shoal_put(s, k, strlen(k), r->ops[0].val, r->ops[0].vlen, &res);
    } else if (p < 52) {
        r->kind = K_DEL;
        r->ops[0].del = true;
        r->t_inv = now_ms(run);
        st = shoal_del(s, k, strlen(k), &res);
    } else if (p < 80) {
        /* cas: usually with what the key holds, sometimes a compare that must fail */
        bool wrong = cluster_rnd(&w->rng, 0, 4) == 0;
        bool casdel = !wrong && ks[ki].state == 1 && cluster_rnd(&w->rng, 0, 3) == 0;
        r->kind = casdel ? K_CASDEL : K_CAS;
        r->ops[0].del = casdel;
        if (!casdel) {
            snprintf(r->ops[0].val, VHEAD, "w%d.%u", w->id, ++w->next_val);
            r->ops[0].vlen = (uint32_t)strlen(r->ops[0].val);
        }
        bool absent = !wrong && ks[ki].state == 0;
        const char *exp = wrong ? "never-written" : ks[ki].state == 1 ? ks[ki].v : "unknown";
        shoal_op_t op = {.type = SHOAL_OP_CAS,
                         .key = k,
                         .key_len = strlen(k),
                         .value = r->ops[0].val,
                         .value_len = r->ops[0].vlen,
                         .expected = absent ? NULL : exp,
                         .expected_len = absent ? 0 : strlen(exp),
                         .expect_absent = absent,
                         .delete_on_match = casdel};
        r->t_inv = now_ms(run);
        st = shoal_call(s, &op, &res);
    } else {
        r->kind = K_BATCH;
        r->n = (uint8_t)cluster_rnd(&w->rng, 2, 4);
        shoal_batch_op_t bops[4];
        int kis[4];
        for (int i = 0; i < r->n; i++) {
            kis[i] = cluster_rnd(&w->rng, 0, run->kpw - 1);
            for (int j = 0; j < i; j++)
                if (kis[j] == kis[i]) {
                    kis[i] = (kis[i] + 1) % run->kpw;
                    j = -1;
                }
            wop_t *o = &r->ops[i];
            o->key = (uint32_t)(w->id * run->kpw + kis[i]);
            o->del = cluster_rnd(&w->rng, 0, 4) == 0;
            if (!o->del) {
                snprintf(o->val, VHEAD, "w%d.%u", w->id, ++w->next_val);
                o->vlen = (uint32_t)strlen(o->val);
            }
            bops[i] = (shoal_batch_op_t){o->del, run->keys[o->key], strlen(run->keys[o->key]),
                                         o->del ? NULL : o->val, o->vlen};
        }
        r->t_inv = now_ms(run);
        st = shoal_batch(s, bops, r->n, &res);
    }
    finish(w, r, st, &res);
    /* what w now believes */
    if (r->kind == K_BATCH) {
        for (int i = 0; i < r->n; i++) {
            int j = (int)(r->ops[i].key - (uint32_t)(w->id * run->kpw));
            if (r->out == RES_OK) {
                ks[j].state = r->ops[i].del ? 0 : 1;
                snprintf(ks[j].v, VHEAD, "%s", r->ops[i].val);
            } else if (r->out != RES_NOTAPPLIED)
                ks[j].state = 2;
        }
    } else if (r->out == RES_OK) {
        ks[ki].state = r->ops[0].del ? 0 : 1;
        snprintf(ks[ki].v, VHEAD, "%s", r->ops[0].val);
    } else if (r->out == RES_NOTAPPLIED) {
        ks[ki].state = res.found ? 1 : 0;
        head_of(ks[ki].v, res.value, res.value_len);
    } else
        ks[ki].state = 2;
    shoal_result_clear(&res);
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    run_t *run = w->run;
    kstate_t *ks = calloc((size_t)run->kpw, sizeof *ks);
    for (int i = 0; i < run->kpw; i++)
        ks[i].state = 2; /* the setup deleted them, but who knows */
    shoal_t *s = shoal_connect(run->broker_ep);
    if (!s || !ks) {
        fail(run, "writer %d: cannot connect", w->id);
        free(ks);
        return NULL;
    }
    shoal_set_timeout(s, run->op_timeout_ms);
    while (!atomic_load(&run->stop_writers))
        one_write(w, s, ks);
    shoal_destroy(&s);
    free(ks);
    return NULL;
}

/* The laggard's burst: 96 unique 256 KiB values, ~6 MiB per shard (windows hold 4 MiB). */
static void *big_main(void *arg)
{
    writer_t *w = arg;
    run_t *run = w->run;
    while (atomic_load(&run->lag_state) == 0 && !atomic_load(&run->stop_writers))
        cluster_sleep_ms(20);
    if (atomic_load(&run->stop_writers))
        return NULL;
    shoal_t *s = shoal_connect(run->broker_ep);
    char *big = malloc(BIG_LEN);
    if (!s || !big) {
        fail(run, "big writer: cannot connect");
        free(big);
        return NULL;
    }
    shoal_set_timeout(s, run->op_timeout_ms);
    memset(big, 'x', BIG_LEN);
    note(run, "burst: %d values of %u KiB", N_BIG, BIG_LEN / 1024);
    for (int i = 0; i < N_BIG && !atomic_load(&run->stop_writers); i++) {
        wrec_t *r = new_rec(w);
        r->kind = K_PUT;
        r->n = 1;
        r->ops[0].key = (uint32_t)KEY_BIG(run) + (uint32_t)i;
        int hl = snprintf(big, 32, "B%d.%u.", i, ++w->next_val);
        big[hl] = 'x';
        head_of(r->ops[0].val, (const uint8_t *)big, BIG_LEN);
        r->ops[0].vlen = BIG_LEN;
        const char *k = run->keys[r->ops[0].key];
        shoal_result_t res;
        memset(&res, 0, sizeof res);
        r->t_inv = now_ms(run);
        int st = shoal_put(s, k, strlen(k), big, BIG_LEN, &res);
        finish(w, r, st, &res);
        shoal_result_clear(&res);
    }
    note(run, "burst done");
    atomic_store(&run->lag_state, 2);
    shoal_destroy(&s);
    free(big);
    return NULL;
}

/* ---- watchers ------------------------------------------------------------------------ */

static void record(watcher_t *wt, const shoal_watch_event_t *ev)
{
    run_t *run = wt->run;
    pthread_mutex_lock(&wt->lock);
    if (wt->n == wt->cap) {
        wt->cap = wt->cap ? wt->cap * 2 : 65536;
        wt->evs = realloc(wt->evs, wt->cap * sizeof *wt->evs);
        if (!wt->evs) {
            perror("realloc");
            exit(1);
        }
    }
    wev_t *e = &wt->evs[wt->n++];
    memset(e, 0, sizeof *e);
    e->t = now_ms(run);
    e->kind = (uint8_t)ev->kind;
    e->gen = wt->gen;
    e->shard = ev->change.shard;
    e->index = ev->change.index;
    e->key = KEY_NONE;
    if (ev->kind == SHOAL_WATCH_CHANGE) {
        e->del = ev->change.is_delete;
        e->key = key_id(run, ev->change.key, ev->change.key_len);
        e->vlen = (uint32_t)ev->change.value_len;
        head_of(e->val, ev->change.value, ev->change.value_len);
        if (e->key == KEY_NONE)
            head_of((char *)e->rawkey, ev->change.key,
                    ev->change.key_len < sizeof e->rawkey ? ev->change.key_len
                                                          : sizeof e->rawkey - 1);
    }
    pthread_mutex_unlock(&wt->lock);
}

/* A new watch resuming each shard after from[shard] (0: from the start), and after op
 * ops[shard] - 1 of that entry when ops is given; retried while the broker does not
 * answer. */
static shoal_watch_t *open_watch(watcher_t *wt, shoal_t *c, const uint64_t *from,
                                 const uint32_t *ops)
{
    run_t *run = wt->run;
    shoal_watch_t *w = NULL;
    while (!w && !atomic_load(&run->stop_watchers)) {
        w = shoal_watch_new(c, NULL, wt->prefix, wt->prefix ? strlen(wt->prefix) : 0);
        if (!w)
            cluster_sleep_ms(100);
    }
    wt->gen++;
    for (uint32_t s = 0; w && s < SHARDS; s++) {
        int rc;
        int tries = 0;
        while ((rc = shoal_watch_from_op(w, s, from[s], ops ? ops[s] : 0)) == SHOAL_EUNAVAIL &&
               tries++ < 30 && !atomic_load(&run->stop_watchers)) {
            wt->from_fails++;
            cluster_sleep_ms(200);
        }
        if (rc == SHOAL_EUNAVAIL)
            fail(run, "watcher %s: shoal_watch_from(%u, %" PRIu64 ") unanswered for 6 s",
                 wtype_name[wt->type], s, from[s]);
        else if (rc != 0 && rc != SHOAL_ENOTFOUND)
            fail(run, "watcher %s: shoal_watch_from(%u, %" PRIu64 ") = %d (%s)",
                 wtype_name[wt->type], s, from[s], rc, shoal_strerror(rc));
        if (run->verbose || rc == SHOAL_ENOTFOUND)
            note(run, "watcher %s (gen %u): from shard %u after %" PRIu64 ": %d",
                 wtype_name[wt->type], wt->gen, s, from[s], rc);
    }
    return w;
}

/* Whether every shard's final index was reached by this watcher (progress, and the
 * sentinel's change for an unfiltered one). */
static bool reached(watcher_t *wt)
{
    run_t *run = wt->run;
    if (!atomic_load(&run->final_phase))
        return false;
    for (int s = 0; s < SHARDS; s++) {
        if (wt->last_progress[s] < run->target[s])
            return false;
        if (!wt->prefix && !wt->fell_behind[s] && wt->last_change[s] < run->target[s])
            return false;
    }
    return true;
}

static void handle(watcher_t *wt, shoal_t *c, const shoal_watch_event_t *ev)
{
    run_t *run = wt->run;
    uint32_t s = ev->change.shard;
    if (ev->kind == SHOAL_WATCH_CHANGE && s < SHARDS && wt->n_replay[s] &&
        ev->change.index == wt->replay_index[s]) {
        uint32_t k = key_id(run, ev->change.key, ev->change.key_len);
        for (int i = 0; i < wt->n_replay[s]; i++)
            if (wt->replay_keys[s][i] == k)
                return; /* delivered before the reconnect */
    }
    if (ev->kind == SHOAL_WATCH_CHANGE && s < SHARDS) {
        uint32_t k = key_id(run, ev->change.key, ev->change.key_len);
        if (ev->change.index != wt->last_change[s])
            wt->n_at_last[s] = 0;
        if (wt->n_at_last[s] < 8)
            wt->at_last[s][wt->n_at_last[s]++] = k;
    }
    record(wt, ev);
    if (s >= SHARDS) {
        fail(run, "watcher %s: an event of shard %u (the cluster has %d)", wtype_name[wt->type], s,
             SHARDS);
        return;
    }
    if (ev->kind == SHOAL_WATCH_CHANGE) {
        if (ev->change.index >= wt->last_change[s]) {
            wt->last_change[s] = ev->change.index;
            wt->last_ops[s] = ev->change.op_count > 1 ? ev->change.op_seq + 1 : 0;
        }
    } else if (ev->kind == SHOAL_WATCH_PROGRESS) {
        if (ev->change.index > wt->last_progress[s])
            wt->last_progress[s] = ev->change.index;
    } else if (ev->kind == SHOAL_WATCH_FELL_BEHIND) {
        note(run, "watcher %s: FELL_BEHIND shard %u, resume point %" PRIu64, wtype_name[wt->type],
             s, ev->change.index);
        if (wt->fell_behind[s])
            return;
        wt->fell_behind[s] = true;
        wt->fb_index[s] = ev->change.index;
        wt->fb_pending[s] = true;
        /* the resume point it gave: a second watch from there (shoal.h: "rescan, then watch
         * from there") either replays or says it is gone */
        shoal_watch_t *probe =
            shoal_watch_new(c, NULL, wt->prefix, wt->prefix ? strlen(wt->prefix) : 0);
        wt->fb_from_rc[s] = probe ? shoal_watch_from(probe, s, ev->change.index) : -999;
        shoal_watch_destroy(&probe);
        note(run,
             "watcher %s: shard %u: a new watch from the fell-behind point %" PRIu64 ": %d (%s)",
             wtype_name[wt->type], s, ev->change.index, wt->fb_from_rc[s],
             shoal_strerror(wt->fb_from_rc[s]));
    }
    /* what an application does after a fell-behind: rescan, then watch from where the
     * stream is now (the next progress index: every change up to it came before it) */
    if (ev->kind == SHOAL_WATCH_PROGRESS && wt->fb_pending[s]) {
        wt->fb_pending[s] = false;
        shoal_result_t r;
        memset(&r, 0, sizeof r);
        int st = shoal_scan(c, wt->prefix, wt->prefix ? strlen(wt->prefix) : 0, NULL, 0, NULL, 0,
                            10000, &r);
        shoal_result_clear(&r);
        shoal_watch_t *again =
            shoal_watch_new(c, NULL, wt->prefix, wt->prefix ? strlen(wt->prefix) : 0);
        wt->fb_resume_rc[s] = again ? shoal_watch_from(again, s, ev->change.index) : -999;
        shoal_watch_destroy(&again);
        /* a notice queued while this watcher lagged may be older than the shard's window
         * by now (a burst moved it on): then it is gone, rightly, and the application rescans
         * again at the next notice; the run's end still wants one that resumes */
        if (wt->fb_resume_rc[s] == SHOAL_ENOTFOUND)
            wt->fb_pending[s] = true;
        note(run,
             "watcher %s: shard %u: rescan (%s), then a new watch from progress %" PRIu64
             ": %d (%s)",
             wtype_name[wt->type], s, shoal_status_str(st), ev->change.index, wt->fb_resume_rc[s],
             shoal_strerror(wt->fb_resume_rc[s]));
    }
}

static void *watcher_main(void *arg)
{
    watcher_t *wt = arg;
    run_t *run = wt->run;
    shoal_t *c = shoal_connect(run->broker_ep);
    if (!c) {
        fail(run, "watcher %s: cannot connect", wtype_name[wt->type]);
        return NULL;
    }
    shoal_set_timeout(c, 2000);
    uint64_t zero[SHARDS] = {0};
    shoal_watch_t *w = open_watch(wt, c, zero, NULL);
    int64_t next_cut = now_ms(run) + cluster_rnd(&wt->rng, 1000, 3000);
    int64_t drain_until = 0;
    while (!atomic_load(&run->stop_watchers)) {
        shoal_watch_event_t ev;
        int got = w ? shoal_watch_next(w, &ev, 100) : 0;
        if (got < 0) {
            fail(run, "watcher %s: shoal_watch_next: %s", wtype_name[wt->type],
                 shoal_strerror(got));
            break;
        }
        if (got == 1)
            handle(wt, c, &ev);
        if (!wt->reached && reached(wt)) {
            pthread_mutex_lock(&wt->lock);
            wt->reached = true;
            wt->t_reached = now_ms(run);
            pthread_mutex_unlock(&wt->lock);
            drain_until = now_ms(run) + 1000; /* late events are looked for a while */
        }
        if (wt->reached && now_ms(run) >= drain_until)
            break;
        bool final = atomic_load(&run->final_phase);
        /* the resumer: drop the watch now and then, resume from the last index delivered */
        if (wt->type == WT_RESUME && !final && now_ms(run) >= next_cut) {
            shoal_watch_destroy(&w);
            int down = cluster_rnd(&wt->rng, 200, 1500);
            if (run->verbose)
                note(run, "watcher resumer: down for %d ms", down);
            cluster_sleep_ms(down);
            uint64_t from[SHARDS];
            uint32_t ops[SHARDS];
            for (int i = 0; i < SHARDS; i++) {
                from[i] = wt->last_change[i];
                ops[i] = wt->last_ops[i]; /* after the op it last had, inside a batch too */
                wt->n_replay[i] = 0;
                if (run->resume_before && from[i] > 0) {
                    /* the workaround: an index tells not whether its entry was whole */
                    from[i]--;
                    ops[i] = 0;
                    wt->replay_index[i] = wt->last_change[i];
                    wt->n_replay[i] = wt->n_at_last[i];
                    memcpy(wt->replay_keys[i], wt->at_last[i], sizeof wt->at_last[i]);
                }
            }
            w = open_watch(wt, c, from, ops);
            wt->reconnects++;
            next_cut = now_ms(run) + cluster_rnd(&wt->rng, 1000, 3000);
        }
        /* the laggard: once, down while the burst passes every shard's window */
        if (wt->type == WT_LAG && !final && atomic_load(&run->lag_state) == 0 &&
            now_ms(run) >= (int64_t)run->duration_s * 200) {
            shoal_watch_destroy(&w);
            note(run, "watcher laggard: down until the burst is done");
            atomic_store(&run->lag_state, 1);
            while (atomic_load(&run->lag_state) == 1 && !atomic_load(&run->stop_writers))
                cluster_sleep_ms(50);
            uint64_t from[SHARDS];
            for (int i = 0; i < SHARDS; i++)
                from[i] = wt->last_progress[i] > wt->last_change[i] ? wt->last_progress[i]
                                                                    : wt->last_change[i];
            w = open_watch(wt, c, from, NULL);
            wt->reconnects++;
        }
    }
    shoal_watch_destroy(&w);
    shoal_destroy(&c);
    return NULL;
}

/* ---- the nemesis --------------------------------------------------------------------- */

static void nemesis(run_t *run, shoal_t *admin, uint64_t *rng, int64_t until_ns)
{
    while (mono_ns() < until_ns && run->nemesis != N_NONE) {
        cluster_sleep_ms(cluster_rnd(rng, 400, 1200));
        if (mono_ns() >= until_ns - 1500000000LL) /* no fault that would end past the end */
            break;
        int f = run->nemesis;
        if (f == N_MIXED)
            f = cluster_rnd(rng, N_PAUSE, N_TRANSFER);
        uint32_t shard = (uint32_t)cluster_rnd(rng, 0, SHARDS - 1);
        int leader = cluster_leader_of(admin, shard);
        int node = leader >= 0 && (f == N_PAUSE || cluster_rnd(rng, 0, 1))
                       ? leader
                       : cluster_rnd(rng, 0, NODES - 1);
        run->faults++;
        if (f == N_PAUSE) {
            int hold = cluster_rnd(rng, 1200, 3000);
            pid_t pid = cluster_node_pid(run->dir, node);
            note(run, "nemesis: SIGSTOP node %d (leader of shard %u: %d) for %d ms", node, shard,
                 leader, hold);
            run->stopped = pid;
            kill(pid, SIGSTOP);
            cluster_sleep_ms(hold);
            kill(pid, SIGCONT);
            run->stopped = 0;
        } else if (f == N_KILL) {
            int hold = cluster_rnd(rng, 1000, 3000);
            int rc = ctl(run, "cluster stop-node --dir %s %d --kill", run->dir, node);
            note(run, "nemesis: kill -9 node %d (leader of shard %u: %d)%s; restart in %d ms", node,
                 shard, leader, rc ? " [stop-node failed]" : "", hold);
            cluster_sleep_ms(hold);
            rc = ctl(run, "cluster start-node --dir %s %d", run->dir, node);
            if (rc)
                fail(run, "cluster start-node %d exited %d", node, rc);
        } else if (f == N_BROKER) {
            int hold = cluster_rnd(rng, 200, 1500);
            int rc = ctl(run, "cluster stop-node --dir %s broker --kill", run->dir);
            note(run, "nemesis: kill -9 broker%s; start again in %d ms", rc ? " [failed]" : "",
                 hold);
            cluster_sleep_ms(hold);
            rc = ctl(run, "cluster start-node --dir %s broker", run->dir);
            if (rc)
                fail(run, "cluster start-node broker exited %d", rc);
        } else if (f == N_TRANSFER) {
            int to = cluster_rnd(rng, 0, NODES - 1);
            if (to == leader)
                to = (to + 1) % NODES;
            char err[256] = "";
            int st = shoal_admin_transfer_leader(admin, shard, (uint64_t)to, err, sizeof err);
            note(run, "nemesis: transfer leader of shard %u from %d to node %d: %s %s", shard,
                 leader, to, shoal_status_str(st), st ? err : "");
        }
        cluster_reap();
        if (!cluster_wait_healthy(admin, NODES, SHARDS, 20000))
            note(run, "cluster not healthy 20 s after the fault");
    }
}

/* ---- the checks ---------------------------------------------------------------------- */

/* One write op of the history, in its key's list. */
typedef struct {
    wrec_t *r;
    int op;
    int writer;
    bool reserved; /* claimed by a del event that names it (per watcher) */
} kop_t;

typedef struct {
    kop_t *ops;
    size_t n, cap;
} klist_t;

static void print_rec(run_t *run, const char *tag, const kop_t *ko)
{
    const wrec_t *r = ko->r;
    const wop_t *o = &r->ops[ko->op];
    fprintf(stderr,
            "    %s writer %d: %s %s%s%s (op %d of %d) [%" PRId64 "-%" PRId64
            " ms] -> %s (status %d) at %u:%" PRIu64 "\n",
            tag, ko->writer, wkind_name[r->kind], run->keys[o->key], o->del ? " (del)" : " = ",
            o->del ? "" : o->val, ko->op, r->n, r->t_inv, r->t_ret, wout_name[r->out], r->status,
            r->shard, r->index);
}

static void print_ev(run_t *run, const char *tag, const wev_t *e)
{
    fprintf(stderr, "    %s [%" PRId64 " ms, gen %u] %u:%" PRIu64 " %s %s%s%s\n", tag, e->t, e->gen,
            e->shard, e->index,
            e->kind == SHOAL_WATCH_CHANGE     ? (e->del ? "del" : "put")
            : e->kind == SHOAL_WATCH_PROGRESS ? "progress"
                                              : "FELL_BEHIND",
            e->kind != SHOAL_WATCH_CHANGE ? ""
            : e->key == KEY_NONE          ? e->rawkey
                                          : run->keys[e->key],
            e->kind == SHOAL_WATCH_CHANGE && !e->del ? " = " : "",
            e->kind == SHOAL_WATCH_CHANGE && !e->del ? e->val : "");
}

/* The history of key k and the events of watcher wt for it, on stderr. */
static void excerpt(run_t *run, klist_t *kl, watcher_t *wt, uint32_t k)
{
    fprintf(stderr, "  history of %s (shard %d):\n", run->keys[k], run->key_shard[k]);
    size_t from = kl[k].n > 30 ? kl[k].n - 30 : 0;
    for (size_t i = from; i < kl[k].n; i++)
        print_rec(run, "write", &kl[k].ops[i]);
    fprintf(stderr, "  events of %s for it:\n", run->keys[k]);
    size_t shown = 0;
    for (size_t i = 0; i < wt->n && shown < 40; i++)
        if (wt->evs[i].kind == SHOAL_WATCH_CHANGE && wt->evs[i].key == k) {
            print_ev(run, "event", &wt->evs[i]);
            shown++;
        }
}

static bool same_value(const wop_t *o, const wev_t *e)
{
    return o->del == e->del && (o->del || (o->vlen == e->vlen && strcmp(o->val, e->val) == 0));
}

/* A delete carries no value: the write a del event is, when one acknowledged alone at the
 * event's shard and index is still to come in its key's list; else SIZE_MAX. */
static size_t exact_match(const klist_t *l, size_t from, const wev_t *e)
{
    for (size_t j = from; e->del && j < l->n; j++) {
        const wrec_t *r = l->ops[j].r;
        if (r->out == RES_OK && r->kind != K_BATCH && r->ops[l->ops[j].op].del &&
            r->shard == e->shard && r->index == e->index)
            return j;
    }
    return SIZE_MAX;
}

/* The op a del event names for sure: by its batch (hint) or its acknowledged index. */
static size_t named_op(const klist_t *l, size_t from, const wev_t *e, const wrec_t *hint)
{
    for (size_t x = from; hint && x < l->n; x++)
        if (l->ops[x].r == hint && l->ops[x].r->ops[l->ops[x].op].del)
            return x;
    return exact_match(l, from, e);
}

/* For each del event of a batch entry, the batch record it belongs to, from a put of the
 * same entry (shard, index) near it in the stream (put values are unique); NULL unknown. */
static const wrec_t **del_hints(watcher_t *wt, klist_t *kl)
{
    const wrec_t **put_rec = calloc(wt->n + 1, sizeof *put_rec);
    const wrec_t **hint = calloc(wt->n + 1, sizeof *hint);
    for (size_t i = 0; i < wt->n; i++) {
        const wev_t *e = &wt->evs[i];
        if (e->kind != SHOAL_WATCH_CHANGE || e->key == KEY_NONE || e->del)
            continue;
        const klist_t *l = &kl[e->key];
        for (size_t j = 0; j < l->n; j++)
            if (l->ops[j].r->kind == K_BATCH && l->ops[j].r->out != RES_NOTAPPLIED &&
                same_value(&l->ops[j].r->ops[l->ops[j].op], e)) {
                put_rec[i] = l->ops[j].r;
                break;
            }
    }
    for (size_t i = 0; i < wt->n; i++) {
        const wev_t *e = &wt->evs[i];
        if (e->kind != SHOAL_WATCH_CHANGE || !e->del)
            continue;
        size_t lo = i > 16 ? i - 16 : 0, hi = i + 16 < wt->n ? i + 16 : wt->n - 1;
        for (size_t j = lo; j <= hi && !hint[i]; j++) {
            const wev_t *q = &wt->evs[j];
            if (put_rec[j] && q->shard == e->shard && q->index == e->index && q->gen == e->gen)
                hint[i] = put_rec[j];
        }
    }
    free(put_rec);
    return hint;
}

/* The per-watcher checks; returns the number of change events checked. The final state
 * folded from the events goes to fold[] (value heads; "" absent) when the watcher did not
 * fall behind. */
static size_t check_watcher(run_t *run, watcher_t *wt, klist_t *kl, char (*fold)[VHEAD],
                            uint32_t *fold_len, bool *fold_set)
{
    const char *name = wtype_name[wt->type];
    int fails0 = run->failures;
    size_t nk = (size_t)N_KEYS(run);
    size_t checked = 0;
    /* per shard: order, one index's changes together, no key twice at one index */
    uint64_t last_idx[SHARDS] = {0};
    size_t last_pos[SHARDS];
    uint64_t progress_at[SHARDS] = {0};
    bool fb[SHARDS] = {false};
    size_t late = 0;
    for (int s = 0; s < SHARDS; s++)
        last_pos[s] = SIZE_MAX;
    const wrec_t **hints = del_hints(wt, kl);
    for (size_t k = 0; k < nk; k++)
        for (size_t j = 0; j < kl[k].n; j++)
            kl[k].ops[j].reserved = false;
    for (size_t i = 0; i < wt->n; i++) { /* the ops del events name are not guessed for others */
        const wev_t *e = &wt->evs[i];
        if (e->kind != SHOAL_WATCH_CHANGE || !e->del || e->key == KEY_NONE)
            continue;
        size_t j = named_op(&kl[e->key], 0, e, hints[i]);
        if (j != SIZE_MAX)
            kl[e->key].ops[j].reserved = true;
    }
    size_t *pos = calloc(nk, sizeof *pos); /* per key: next op of its list to match */
    size_t *cur = calloc(nk, sizeof *cur); /* per key: events matched so far */
    uint16_t gen = 0;
    for (size_t i = 0; i < wt->n; i++) {
        wev_t *e = &wt->evs[i];
        uint32_t s = e->shard;
        if (s >= SHARDS)
            continue;
        if (e->gen != gen) { /* a new watch: its catch-up may replay what progress covered */
            gen = e->gen;
            memset(progress_at, 0, sizeof progress_at);
        }
        if (e->kind == SHOAL_WATCH_FELL_BEHIND) {
            fb[s] = true;
            continue;
        }
        if (e->kind == SHOAL_WATCH_PROGRESS) {
            if (e->index > progress_at[s])
                progress_at[s] = e->index;
            continue;
        }
        checked++;
        if (e->key == KEY_NONE) {
            fail(run, "watcher %s: a change of a key no client wrote: %u:%" PRIu64 " %s", name, s,
                 e->index, e->rawkey);
            continue;
        }
        const char *key = run->keys[e->key];
        if (!has_prefix(key, wt->prefix))
            fail(run, "watcher %s (prefix %s): a change of key %s", name, wt->prefix, key);
        if (run->key_shard[e->key] >= 0 && (uint32_t)run->key_shard[e->key] != s)
            fail(run, "watcher %s: %s is on shard %d, its change came as %u:%" PRIu64, name, key,
                 run->key_shard[e->key], s, e->index);
        if (e->index <= progress_at[s]) {
            if (late++ < 5)
                fprintf(stderr,
                        "note: watcher %s: change %u:%" PRIu64 " of %s delivered after a "
                        "progress event at %" PRIu64 "\n",
                        name, s, e->index, key, progress_at[s]);
        }
        if (last_pos[s] != SIZE_MAX) {
            wev_t *p = &wt->evs[last_pos[s]];
            if (e->index < last_idx[s])
                fail(run,
                     "watcher %s: shard %u went back from index %" PRIu64 " to %" PRIu64
                     " (%s, gen %u -> %u)",
                     name, s, last_idx[s], e->index, key, p->gen, e->gen);
            else if (e->index == last_idx[s]) {
                /* same entry: must be a batch, the keys distinct, the run contiguous */
                for (size_t j = last_pos[s] + 1; j-- > 0;) {
                    wev_t *q = &wt->evs[j];
                    if (q->kind != SHOAL_WATCH_CHANGE || q->shard != s)
                        continue;
                    if (q->index != e->index)
                        break;
                    if (q->key == e->key) {
                        fail(run, "watcher %s: %s twice at %u:%" PRIu64 " (gen %u, %u)", name, key,
                             s, e->index, q->gen, e->gen);
                        break;
                    }
                }
            }
        }
        last_idx[s] = e->index;
        last_pos[s] = i;
        /* the key's history: the next op (in its writer's order) this event can be */
        klist_t *l = &kl[e->key];
        size_t j = named_op(l, pos[e->key], e, hints[i]);
        size_t first_mand = SIZE_MAX;
        if (j != SIZE_MAX) {
            for (size_t x = pos[e->key]; x < j; x++)
                if (l->ops[x].r->out == RES_OK) {
                    first_mand = x;
                    break;
                }
            goto matched;
        }
        for (j = pos[e->key]; j < l->n; j++) {
            const wrec_t *r = l->ops[j].r;
            const wop_t *o = &r->ops[l->ops[j].op];
            bool can = (r->out == RES_OK || r->out == RES_AMBIG) && !l->ops[j].reserved;
            if (can && same_value(o, e))
                break;
            if (r->out == RES_OK && first_mand == SIZE_MAX)
                first_mand = j;
        }
        if (j == l->n) {
            /* a change that matches no write still to come: a duplicate, one out of order,
             * or one nobody made */
            bool any = false;
            for (size_t x = 0; x < l->n && !any; x++)
                any = same_value(&l->ops[x].r->ops[l->ops[x].op], e) &&
                      l->ops[x].r->out != RES_NOTAPPLIED;
            fail(run, "watcher %s: change %u:%" PRIu64 " %s %s%s %s", name, s, e->index,
                 e->del ? "del" : "put", key, e->del ? "" : e->val,
                 any ? "matches no write left in its writer's order (duplicate or reordered)"
                     : "is no write a client made (or one that failed)");
            excerpt(run, kl, wt, e->key);
            continue;
        }
    matched:
        if (first_mand != SIZE_MAX && !fb[s]) {
            fail(run,
                 "watcher %s: acknowledged write missing: its key's next change %u:%" PRIu64
                 " came without it",
                 name, s, e->index);
            print_rec(run, "missing", &l->ops[first_mand]);
            excerpt(run, kl, wt, e->key);
        }
        const wrec_t *r = l->ops[j].r;
        if (r->out == RES_OK && r->kind != K_BATCH && !(fb[s] && e->del) &&
            (r->shard != s || r->index != e->index))
            fail(run,
                 "watcher %s: %s acknowledged at %u:%" PRIu64 ", its change came at %u:%" PRIu64,
                 name, key, r->shard, r->index, s, e->index);
        pos[e->key] = j + 1;
        cur[e->key]++;
    }
    /* acknowledged writes never delivered (their key had no later change) */
    for (size_t k = 0; k < nk; k++) {
        if (!has_prefix(run->keys[k], wt->prefix))
            continue;
        klist_t *l = &kl[k];
        int sh = run->key_shard[k];
        if (sh >= 0 && fb[sh])
            continue;
        for (size_t j = pos[k]; j < l->n; j++)
            if (l->ops[j].r->out == RES_OK) {
                fail(run,
                     "watcher %s: acknowledged write never delivered (%zu of its key's "
                     "changes came)",
                     name, cur[k]);
                print_rec(run, "missing", &l->ops[j]);
                excerpt(run, kl, wt, (uint32_t)k);
                break;
            }
    }
    /* batches: on each shard all of a batch's changes under one index, or none */
    typedef struct {
        const wrec_t *r;
        int op;
        uint64_t index;
        uint32_t shard;
    } seen_t;
    size_t nseen = 0, capseen = 1024;
    seen_t *seen = malloc(capseen * sizeof *seen);
    {
        /* redo the matching cheaply: an event's batch record, by its value (unique) */
        memset(pos, 0, nk * sizeof *pos);
        for (size_t i = 0; i < wt->n; i++) {
            wev_t *e = &wt->evs[i];
            if (e->kind != SHOAL_WATCH_CHANGE || e->key == KEY_NONE || e->shard >= SHARDS)
                continue;
            klist_t *l = &kl[e->key];
            size_t j = named_op(l, pos[e->key], e, hints[i]);
            for (j = j == SIZE_MAX ? pos[e->key] : j; j < l->n; j++) {
                const wrec_t *r = l->ops[j].r;
                if (j == named_op(l, pos[e->key], e, hints[i]) ||
                    ((r->out == RES_OK || r->out == RES_AMBIG) && !l->ops[j].reserved &&
                     same_value(&r->ops[l->ops[j].op], e)))
                    break;
            }
            if (j == l->n)
                continue;
            pos[e->key] = j + 1;
            if (l->ops[j].r->kind != K_BATCH)
                continue;
            if (nseen == capseen)
                seen = realloc(seen, (capseen *= 2) * sizeof *seen);
            seen[nseen++] = (seen_t){l->ops[j].r, l->ops[j].op, e->index, e->shard};
        }
    }
    for (size_t i = 0; i < nseen; i++) {
        const wrec_t *r = seen[i].r;
        if (fb[seen[i].shard])
            continue;
        /* every op of r on the same shard must be seen at the same index */
        for (int op = 0; op < r->n; op++) {
            uint32_t k = r->ops[op].key;
            if (run->key_shard[k] != (int32_t)seen[i].shard ||
                !has_prefix(run->keys[k], wt->prefix))
                continue;
            bool found = false;
            for (size_t x = 0; x < nseen && !found; x++)
                found = seen[x].r == r && seen[x].op == op;
            for (size_t x = 0; x < nseen; x++)
                if (seen[x].r == r && seen[x].op == op && seen[x].index != seen[i].index)
                    fail(run,
                         "watcher %s: a batch's changes on shard %u at indexes %" PRIu64
                         " and %" PRIu64,
                         name, seen[i].shard, seen[i].index, seen[x].index);
            if (!found) {
                fail(run,
                     "watcher %s: a batch (%s) applied on shard %u at %" PRIu64
                     " only in part: op %d (%s) missing",
                     name, wout_name[r->out], seen[i].shard, seen[i].index, op, run->keys[k]);
                break;
            }
        }
    }
    free(seen);
    /* fold */
    bool any_fb = false;
    for (int s = 0; s < SHARDS; s++)
        any_fb |= fb[s];
    if (!any_fb) {
        *fold_set = true;
        for (size_t k = 0; k < nk; k++)
            fold[k][0] = 0, fold_len[k] = 0;
        for (size_t i = 0; i < wt->n; i++) {
            wev_t *e = &wt->evs[i];
            if (e->kind != SHOAL_WATCH_CHANGE || e->key == KEY_NONE)
                continue;
            if (e->del)
                fold[e->key][0] = 0, fold_len[e->key] = 0;
            else
                memcpy(fold[e->key], e->val, VHEAD), fold_len[e->key] = e->vlen;
        }
    }
    fprintf(stderr,
            "watcher %s%s%s: %zu changes checked, %d reconnects, %zu delivered after a progress "
            "event covering them, fell behind on shards:%s%s%s%s%s, %s\n",
            name, wt->prefix ? " " : "", wt->prefix ? wt->prefix : "", checked, wt->reconnects,
            late, fb[0] ? " 0" : "", fb[1] ? " 1" : "", fb[2] ? " 2" : "", fb[3] ? " 3" : "",
            any_fb ? "" : " none", run->failures == fails0 ? "ok" : "VIOLATIONS");
    if (late)
        fail(run,
             "watcher %s: %zu changes came after a progress event at or past their index "
             "(progress must follow every change up to its index)",
             name, late);
    free(pos);
    free(cur);
    free(hints);
    return checked;
}

/* The state through the broker: scan of prefix (keys of writers, sentinels), gets of big
 * keys; compared with a watcher's fold. */
static void check_state(run_t *run, shoal_t *c, watcher_t *wt, char (*fold)[VHEAD],
                        uint32_t *fold_len)
{
    size_t nk = (size_t)N_KEYS(run);
    char(*state)[VHEAD] = calloc(nk, VHEAD);
    uint32_t *slen = calloc(nk, sizeof *slen);
    const char *prefixes[] = {"a/", "b/", "s/"};
    int bad = 0;
    for (int p = 0; p < 3; p++) {
        if (!has_prefix(prefixes[p], wt->prefix))
            continue;
        shoal_result_t r;
        memset(&r, 0, sizeof r);
        int st = SHOAL_STATUS_UNAVAILABLE;
        for (int t = 0; t < 10 && st != SHOAL_STATUS_OK; t++) {
            shoal_result_clear(&r);
            st = shoal_scan(c, prefixes[p], 2, NULL, 0, NULL, 0, 10000, &r);
            if (st != SHOAL_STATUS_OK)
                cluster_sleep_ms(300);
        }
        if (st != SHOAL_STATUS_OK || r.more) {
            fail(run, "scan %s: %s%s", prefixes[p], shoal_status_str(st), r.more ? " (cut)" : "");
            shoal_result_clear(&r);
            continue;
        }
        for (size_t i = 0; i < r.n_kvs; i++) {
            uint32_t k = key_id(run, r.kvs[i].key, r.kvs[i].key_len);
            if (k == KEY_NONE) {
                fail(run, "scan: a key no client wrote: %.*s", (int)r.kvs[i].key_len,
                     (const char *)r.kvs[i].key);
                continue;
            }
            head_of(state[k], r.kvs[i].value, r.kvs[i].value_len);
            slen[k] = (uint32_t)r.kvs[i].value_len;
        }
        shoal_result_clear(&r);
    }
    if (!wt->prefix)
        for (int i = 0; i < N_BIG; i++) {
            uint32_t k = (uint32_t)KEY_BIG(run) + (uint32_t)i;
            shoal_result_t r;
            memset(&r, 0, sizeof r);
            int st = shoal_get(c, run->keys[k], strlen(run->keys[k]), false, &r);
            if (st == SHOAL_STATUS_OK) {
                head_of(state[k], r.value, r.value_len);
                slen[k] = (uint32_t)r.value_len;
            } else if (st != SHOAL_STATUS_NOT_FOUND)
                fail(run, "get %s: %s", run->keys[k], shoal_status_str(st));
            shoal_result_clear(&r);
        }
    for (size_t k = 0; k < nk; k++) {
        if (!has_prefix(run->keys[k], wt->prefix) || (wt->prefix && k >= (size_t)KEY_SENT(run)))
            continue;
        if (strcmp(state[k], fold[k]) != 0 || slen[k] != fold_len[k]) {
            if (bad++ < 10)
                fail(run,
                     "watcher %s: %s folds to \"%s\" (%u bytes), the broker's scan has "
                     "\"%s\" (%u bytes)",
                     wtype_name[wt->type], run->keys[k], fold[k], fold_len[k], state[k], slen[k]);
        }
    }
    if (bad)
        fail(run, "watcher %s: %d keys differ from the scan", wtype_name[wt->type], bad);
    free(state);
    free(slen);
}

/* Watchers that were told nothing: the same changes (by key and value, in each key's
 * order), the prefix ones those of their prefix. */
static void cross_check(run_t *run, watcher_t *a, watcher_t *b)
{
    size_t nk = (size_t)N_KEYS(run);
    size_t *ia = calloc(nk, sizeof *ia), *ib = calloc(nk, sizeof *ib);
    /* per key, the sequence of (del, value) each saw; compare counts and order */
    for (size_t k = 0; k < nk; k++) {
        if (!has_prefix(run->keys[k], a->prefix) || !has_prefix(run->keys[k], b->prefix))
            continue;
        size_t x = 0, y = 0;
        for (;;) {
            while (x < a->n && (a->evs[x].kind != SHOAL_WATCH_CHANGE || a->evs[x].key != k))
                x++;
            while (y < b->n && (b->evs[y].kind != SHOAL_WATCH_CHANGE || b->evs[y].key != k))
                y++;
            if (x >= a->n && y >= b->n)
                break;
            if (x >= a->n || y >= b->n || a->evs[x].del != b->evs[y].del ||
                strcmp(a->evs[x].val, b->evs[y].val) != 0 || a->evs[x].index != b->evs[y].index) {
                fail(run, "watchers %s and %s disagree on %s:", wtype_name[a->type],
                     wtype_name[b->type], run->keys[k]);
                if (x < a->n)
                    print_ev(run, wtype_name[a->type], &a->evs[x]);
                else
                    fprintf(stderr, "    %s: nothing more\n", wtype_name[a->type]);
                if (y < b->n)
                    print_ev(run, wtype_name[b->type], &b->evs[y]);
                else
                    fprintf(stderr, "    %s: nothing more\n", wtype_name[b->type]);
                break;
            }
            x++, y++;
        }
    }
    free(ia);
    free(ib);
}

/* On a failure: the writes and every watcher's events, as text, for a closer look. */
static void dump(run_t *run)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/shoal-wf-history.%" PRIu64 ".txt", run->seed);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    for (int i = 0; i < run->writers + 2; i++)
        for (size_t j = 0; j < run->ws[i].n; j++) {
            const wrec_t *r = &run->ws[i].recs[j];
            fprintf(f, "W %d %" PRId64 " %" PRId64 " %s %s %d %u:%" PRIu64, i, r->t_inv, r->t_ret,
                    wkind_name[r->kind], wout_name[r->out], r->status, r->shard, r->index);
            for (int op = 0; op < r->n; op++)
                fprintf(f, " %s%s%s", run->keys[r->ops[op].key], r->ops[op].del ? ":del" : "=",
                        r->ops[op].del ? "" : r->ops[op].val);
            fputc('\n', f);
        }
    for (int t = 0; t < WT_COUNT; t++)
        for (size_t i = 0; i < run->wa[t].n; i++) {
            const wev_t *e = &run->wa[t].evs[i];
            fprintf(f, "E %s %" PRId64 " %u %u:%" PRIu64 " %s %s %s\n", wtype_name[t], e->t, e->gen,
                    e->shard, e->index,
                    e->kind == SHOAL_WATCH_CHANGE     ? (e->del ? "del" : "put")
                    : e->kind == SHOAL_WATCH_PROGRESS ? "progress"
                                                      : "fell-behind",
                    e->kind != SHOAL_WATCH_CHANGE ? "-"
                    : e->key == KEY_NONE          ? e->rawkey
                                                  : run->keys[e->key],
                    e->kind == SHOAL_WATCH_CHANGE && !e->del ? e->val : "-");
        }
    fclose(f);
    fprintf(stderr, "writes and events kept in %s\n", path);
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: cluster_watch_faults [--seed S] [--duration S] [--writers N] [--keys K]\n"
            "  [--nemesis mixed|pause|kill|broker|transfer|none] [--op-timeout MS]\n"
            "  [--base-port P] [--no-laggard] [--resume-from last|before] [--verbose]\n");
    exit(2);
}

/* Writes one value to key k until acknowledged (setup and sentinels); its record goes to
 * writer w. Returns the record or NULL. */
static wrec_t *write_until_ok(run_t *run, writer_t *w, shoal_t *c, uint32_t k, bool del)
{
    for (int t = 0; t < 20; t++) {
        wrec_t *r = new_rec(w);
        r->kind = del ? K_DEL : K_PUT;
        r->n = 1;
        r->ops[0].key = k;
        r->ops[0].del = del;
        if (!del) {
            snprintf(r->ops[0].val, VHEAD, "S.%u", ++w->next_val);
            r->ops[0].vlen = (uint32_t)strlen(r->ops[0].val);
        }
        shoal_result_t res;
        memset(&res, 0, sizeof res);
        r->t_inv = now_ms(run);
        int st = del ? shoal_del(c, run->keys[k], strlen(run->keys[k]), &res)
                     : shoal_put(c, run->keys[k], strlen(run->keys[k]), r->ops[0].val,
                                 r->ops[0].vlen, &res);
        finish(w, r, st, &res);
        shoal_result_clear(&res);
        if (st == SHOAL_STATUS_OK)
            return r;
        cluster_sleep_ms(300);
    }
    fail(run, "could not write %s", run->keys[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    static run_t run_s;
    run_t *run = &run_s;
    const char *lv = getenv("SHOAL_WATCH_FAULTS_LONG");
    bool long_run = lv && *lv && strcmp(lv, "0") != 0;
    run->duration_s = long_run ? 60 : 9;
    run->writers = long_run ? 6 : 4;
    run->kpw = 24;
    run->op_timeout_ms = OP_TIMEOUT_MS;
    run->nemesis = N_MIXED;
    run->laggard = true;
    int base = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v)
            run->seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(a, "--duration") && v)
            run->duration_s = atoi(v), i++;
        else if (!strcmp(a, "--writers") && v)
            run->writers = atoi(v), i++;
        else if (!strcmp(a, "--keys") && v)
            run->kpw = atoi(v), i++;
        else if (!strcmp(a, "--op-timeout") && v)
            run->op_timeout_ms = atoi(v), i++;
        else if (!strcmp(a, "--base-port") && v)
            base = atoi(v), i++;
        else if (!strcmp(a, "--nemesis") && v) {
            int n = -1;
            for (int j = 0; j <= N_NONE; j++)
                if (!strcmp(v, nemesis_names[j]))
                    n = j;
            if (n < 0)
                usage();
            run->nemesis = n, i++;
        } else if (!strcmp(a, "--resume-from") && v &&
                   (!strcmp(v, "last") || !strcmp(v, "before"))) {
            run->resume_before = !strcmp(v, "before");
            i++;
        } else if (!strcmp(a, "--no-laggard"))
            run->laggard = false;
        else if (!strcmp(a, "--verbose"))
            run->verbose = true;
        else
            usage();
    }
    if (run->writers < 1 || run->writers > MAX_WRITERS || run->kpw < 4 || run->kpw > MAX_KPW ||
        run->duration_s < 1 || run->op_timeout_ms < 100)
        usage();
    if (!run->seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        run->seed = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid()) | 1;
        if (getenv("WATCH_FAULTS_SEED"))
            run->seed = strtoull(getenv("WATCH_FAULTS_SEED"), NULL, 0);
    }
    run->build = getenv("SHOAL_BUILD_DIR");
    if (!run->build) {
        fprintf(stderr, "set SHOAL_BUILD_DIR\n");
        return 2;
    }
    pthread_mutex_init(&run->lock, NULL);
    run->t0_ns = mono_ns();
    fprintf(stderr,
            "cluster_watch_faults: seed %" PRIu64 ", %d s of faults (%s), %d writers x %d keys%s\n",
            run->seed, run->duration_s, nemesis_names[run->nemesis], run->writers, run->kpw,
            run->laggard ? ", laggard with a 24 MiB burst" : "");
    /* the keys */
    size_t nk = (size_t)N_KEYS(run);
    run->keys = calloc(nk, sizeof *run->keys);
    run->key_shard = malloc(nk * sizeof *run->key_shard);
    for (size_t k = 0; k < nk; k++)
        run->key_shard[k] = -1;
    for (int w = 0; w < run->writers; w++)
        for (int i = 0; i < run->kpw; i++)
            snprintf(run->keys[w * run->kpw + i], 32, "%c/w%d/k%d", i % 2 ? 'b' : 'a', w, i);
    for (int i = 0; i < N_SENT; i++)
        snprintf(run->keys[KEY_SENT(run) + i], 32, "s/%d", i);
    for (int i = 0; i < N_BIG; i++)
        snprintf(run->keys[KEY_BIG(run) + i], 32, "big/%d", i);

    snprintf(run->dir, sizeof run->dir, "/tmp/shoal-wf.XXXXXX");
    if (!mkdtemp(run->dir)) {
        perror("mkdtemp");
        return 1;
    }
    cluster_start_guardian(run->dir, NULL, NULL);
    cluster_watchdog((unsigned)(run->duration_s + 180),
                     "FAIL: cluster_watch_faults hung (seed %" PRIu64 ")\n", run->seed);
    snprintf(run->ctl, sizeof run->ctl, "%s/tools/shoalctl", run->build);
    if (base && !cluster_base_free(base, NODES)) {
        fprintf(stderr, "ports of --base-port %d are in use\n", base);
        return 2;
    }
    run->base = base ? base : cluster_pick_base(NODES, 29);
    snprintf(run->broker_ep, sizeof run->broker_ep, "tcp://127.0.0.1:%d", run->base);
    int rc = cluster_shell("%s cluster up --dir %s --nodes %d --shards %d --replicas 3 "
                           "--base-port %d --timeout 60000 >%s/up.out 2>&1",
                           run->ctl, run->dir, NODES, SHARDS, run->base, run->dir);
    if (rc != 0) {
        fail(run, "cluster up exited %d", rc);
        cluster_shell("cat %s/up.out >&2", run->dir);
    }
    shoal_t *admin = shoal_connect(run->broker_ep);
    shoal_set_timeout(admin, 5000);
    writer_t *ws = run->ws;
    int big_id = run->writers, sent_id = run->writers + 1;
    for (int i = 0; i < run->writers + 2; i++)
        ws[i] = (writer_t){
            .run = run, .id = i, .rng = run->seed * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1};
    size_t total_events = 0;
    uint64_t total_writes = 0, ambs = 0;
    if (!run->failures && !cluster_wait_healthy(admin, NODES, SHARDS, 30000))
        fail(run, "cluster not healthy after start");
    /* the sentinel keys: one per shard */
    for (int s = 0; s < SHARDS; s++)
        run->sent_key[s] = -1;
    for (int i = 0; i < N_SENT && !run->failures; i++) {
        uint32_t k = (uint32_t)KEY_SENT(run) + (uint32_t)i;
        wrec_t *r = write_until_ok(run, &ws[sent_id], admin, k, false);
        if (r && r->shard < SHARDS && run->sent_key[r->shard] < 0)
            run->sent_key[r->shard] = (int)k;
    }
    for (int s = 0; s < SHARDS && !run->failures; s++)
        if (run->sent_key[s] < 0)
            fail(run, "no sentinel key of %d lands on shard %d", N_SENT, s);
    /* watchers */
    watcher_t *wa = run->wa;
    for (int t = 0; t < WT_COUNT; t++) {
        wa[t] = (watcher_t){.run = run,
                            .id = t,
                            .type = (wtype_t)t,
                            .prefix = t == WT_PREFIX ? "a/"
                                      : t == WT_LAG  ? "b/"
                                                     : NULL,
                            .rng = run->seed ^ (0x3779ull * (uint64_t)(t + 1))};
        pthread_mutex_init(&wa[t].lock, NULL);
    }
    int n_watchers = run->laggard ? WT_COUNT : WT_LAG;
    pthread_t big_th;
    bool big_started = false;
    if (!run->failures) {
        run->t0_ns = mono_ns();
        for (int t = 0; t < n_watchers; t++)
            pthread_create(&wa[t].th, NULL, watcher_main, &wa[t]);
        cluster_sleep_ms(300); /* the watches subscribe before the writes start */
        for (int i = 0; i < run->writers; i++)
            pthread_create(&ws[i].th, NULL, writer_main, &ws[i]);
        if (run->laggard) {
            pthread_create(&big_th, NULL, big_main, &ws[big_id]);
            big_started = true;
        }
        note(run, "%d writers, %d watchers; faults (%s) for %d s", run->writers, n_watchers,
             nemesis_names[run->nemesis], run->duration_s);
        uint64_t rng = run->seed ^ 0xfa17;
        int64_t until = mono_ns() + (int64_t)run->duration_s * 1000000000LL;
        nemesis(run, admin, &rng, until);
        while (mono_ns() < until)
            cluster_sleep_ms(50);
        if (run->stopped)
            kill(run->stopped, SIGCONT);
        if (!cluster_wait_healthy(admin, NODES, SHARDS, 20000))
            fail(run, "cluster not healthy after the faults");
        cluster_sleep_ms(1000); /* a last second of writes on a healthy cluster */
        atomic_store(&run->stop_writers, true);
        for (int i = 0; i < run->writers; i++)
            pthread_join(ws[i].th, NULL);
        if (big_started)
            pthread_join(big_th, NULL);
        for (int i = 0; i < run->writers + 2; i++) {
            total_writes += ws[i].n;
            ambs += ws[i].ambs;
        }
        /* an ambiguous write may still apply while a broker retries it */
        int64_t wait = (int64_t)atomic_load(&run->last_ambig_ms) + BROKER_RETRY_MS - now_ms(run);
        note(run, "writers stopped: %" PRIu64 " writes, %" PRIu64 " ambiguous, %d faults%s",
             total_writes, ambs, run->faults,
             ambs && wait > 0 ? "; waiting out the last ambiguous write" : "");
        if (ambs && wait > 0)
            cluster_sleep_ms((int)wait);
        /* the sentinels: each shard's final index */
        for (int s = 0; s < SHARDS; s++) {
            wrec_t *r = write_until_ok(run, &ws[sent_id], admin, (uint32_t)run->sent_key[s], false);
            run->target[s] = r ? r->index : UINT64_MAX;
        }
        note(run, "final indexes: %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, run->target[0],
             run->target[1], run->target[2], run->target[3]);
        atomic_store(&run->final_phase, true);
        int64_t give_up = now_ms(run) + 20000;
        for (;;) {
            bool all = true;
            for (int t = 0; t < n_watchers; t++) {
                pthread_mutex_lock(&wa[t].lock);
                all &= wa[t].reached;
                pthread_mutex_unlock(&wa[t].lock);
            }
            if (all || now_ms(run) > give_up)
                break;
            cluster_sleep_ms(100);
        }
        cluster_sleep_ms(1100); /* the watchers drain for late events */
        atomic_store(&run->stop_watchers, true);
        for (int t = 0; t < n_watchers; t++)
            pthread_join(wa[t].th, NULL);
        for (int t = 0; t < n_watchers; t++)
            if (!wa[t].reached) {
                fail(run,
                     "watcher %s never delivered progress at the final indexes (it got to "
                     "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 ", changes to %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %" PRIu64 ")",
                     wtype_name[t], wa[t].last_progress[0], wa[t].last_progress[1],
                     wa[t].last_progress[2], wa[t].last_progress[3], wa[t].last_change[0],
                     wa[t].last_change[1], wa[t].last_change[2], wa[t].last_change[3]);
            }
        /* the checks */
        klist_t *kl = calloc(nk, sizeof *kl);
        for (int i = 0; i < run->writers + 2; i++)
            for (size_t j = 0; j < ws[i].n; j++)
                for (int op = 0; op < ws[i].recs[j].n; op++) {
                    klist_t *l = &kl[ws[i].recs[j].ops[op].key];
                    if (l->n == l->cap) {
                        l->cap = l->cap ? l->cap * 2 : 64;
                        l->ops = realloc(l->ops, l->cap * sizeof *l->ops);
                    }
                    l->ops[l->n++] = (kop_t){&ws[i].recs[j], op, i, false};
                }
        /* batch ops' shards, from single-key writes of the same keys (each key was written
         * alone too, almost surely); a key never written alone: from its events */
        for (int t = 0; t < n_watchers; t++)
            for (size_t i = 0; i < wa[t].n; i++) {
                wev_t *e = &wa[t].evs[i];
                if (e->kind == SHOAL_WATCH_CHANGE && e->key != KEY_NONE &&
                    run->key_shard[e->key] < 0)
                    run->key_shard[e->key] = (int32_t)e->shard;
            }
        char(*fold)[VHEAD] = calloc(nk, VHEAD);
        uint32_t *fold_len = calloc(nk, sizeof *fold_len);
        int ref = -1;
        for (int t = 0; t < n_watchers; t++) {
            bool fold_set = false;
            total_events += check_watcher(run, &wa[t], kl, fold, fold_len, &fold_set);
            for (int s = 0; s < SHARDS; s++) {
                if (!wa[t].fell_behind[s])
                    continue;
                if (wa[t].fb_from_rc[s] != 0 && wa[t].fb_from_rc[s] != SHOAL_ENOTFOUND)
                    fail(run,
                         "watcher %s: a watch from its fell-behind point %u:%" PRIu64
                         " answered %d (%s)",
                         wtype_name[t], s, wa[t].fb_index[s], wa[t].fb_from_rc[s],
                         shoal_strerror(wa[t].fb_from_rc[s]));
                if (wa[t].fb_resume_rc[s] != 0)
                    fail(run,
                         "watcher %s: after a rescan, a watch of shard %u from its progress "
                         "index answered %d (%s)",
                         wtype_name[t], s, wa[t].fb_resume_rc[s],
                         shoal_strerror(wa[t].fb_resume_rc[s]));
            }
            if (fold_set)
                check_state(run, admin, &wa[t], fold, fold_len);
            bool any_fb = false;
            for (int s = 0; s < SHARDS; s++)
                any_fb |= wa[t].fell_behind[s];
            if (!any_fb) {
                if (ref < 0)
                    ref = t;
                else
                    cross_check(run, &wa[ref], &wa[t]);
            }
        }
        if (run->laggard) {
            /* a shard that took more than its window's 4 MiB of acknowledged big values
             * while the laggard was down lost the changes the laggard needed */
            int big_on[SHARDS] = {0};
            for (size_t j = 0; j < ws[big_id].n; j++)
                if (ws[big_id].recs[j].out == RES_OK && ws[big_id].recs[j].shard < SHARDS)
                    big_on[ws[big_id].recs[j].shard]++;
            for (int s = 0; s < SHARDS; s++)
                if (big_on[s] >= 18 && !wa[WT_LAG].fell_behind[s])
                    fail(run,
                         "the laggard resumed behind %d MiB of changes of shard %d (its "
                         "window holds 4) and was not told it fell behind",
                         big_on[s] / 4, s);
            note(run, "burst: %d %d %d %d values of 256 KiB on shards 0-3", big_on[0], big_on[1],
                 big_on[2], big_on[3]);
        }
        free(fold);
        free(fold_len);
        for (size_t k = 0; k < nk; k++)
            free(kl[k].ops);
        free(kl);
        for (int i = 0; i < NODES; i++)
            if (!cluster_pid_alive(cluster_node_pid(run->dir, i)))
                fail(run, "node %d is not running after the faults (it died on its own)", i);
        if (!cluster_pid_alive(cluster_read_pid(run->dir, "broker")))
            fail(run, "the broker is not running after the faults (it died on its own)");
        if (total_writes < (uint64_t)run->writers * 20)
            fail(run, "only %" PRIu64 " writes: the cluster barely served", total_writes);
    }
    shoal_destroy(&admin);
    if (ctl(run, "cluster down --dir %s", run->dir) != 0)
        fail(run, "cluster down failed");
    cluster_reap();
    cluster_kill_all(run->dir);
    if (!cluster_logs_clean(run->dir))
        fail(run, "a sanitizer report or failed assertion in a log (above)");
    if (run->failures) {
        fprintf(stderr,
                "cluster_watch_faults FAILED (%d failures), seed %" PRIu64 "\nreplay: "
                "SHOAL_BUILD_DIR=%s %s --seed %" PRIu64 " --duration %d --writers %d --keys %d "
                "--op-timeout %d --nemesis %s%s%s\n",
                run->failures, run->seed, run->build, argv[0], run->seed, run->duration_s,
                run->writers, run->kpw, run->op_timeout_ms, nemesis_names[run->nemesis],
                run->laggard ? "" : " --no-laggard",
                run->resume_before ? " --resume-from before" : "");
        char logs[64];
        snprintf(logs, sizeof logs, "/tmp/shoal-wf-logs.%" PRIu64, run->seed);
        cluster_keep_logs(run->dir, logs);
        dump(run);
    } else
        fprintf(stderr,
                "cluster_watch_faults: no violation (%" PRIu64 " writes, %zu change events "
                "checked), seed %" PRIu64 ", %.1f s\n",
                total_writes, total_events, run->seed, (double)now_ms(run) / 1e3);
    cluster_remove_dir(run->dir);
    for (int i = 0; i < run->writers + 2; i++)
        free(ws[i].recs);
    for (int t = 0; t < WT_COUNT; t++)
        free(wa[t].evs);
    free(run->keys);
    free(run->key_shard);
    return run->failures ? 1 : 0;
}
