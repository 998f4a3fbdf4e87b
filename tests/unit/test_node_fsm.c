/* test_node_fsm.c - the state machine actor (actors/fsm_actor.c) over a real storage
 * engine: writes apply and answer, a retried (client_id, seq) is applied once, CAS
 * compares, scans honour prefix/start/end/limit, the change window answers catch-up
 * requests and WINDOW_GONE, is refilled at a restart from the log's entries exactly as live
 * apply left it, and a snapshot exported by the compactor installs into another replica
 * with the same data, sessions and applied index. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "actors/node_int.h"
#include "engine/error.h"
#include "engine/lsm/env.h"
#include "engine/ring.h"
#include "proto/codec.h"

static char dir[256];

typedef struct {
    lsm_t *lsm;
    fsm_group_t *fg;
    zactor_t *fsm;
    fsm_done_t done; /* the actor's finished jobs */
    fsm_args_t args;
    uint64_t index;
    /* with keep_log: a copy of every entry apply_job made, what a Raft log would hold (the
     * entry of index i at log[i - 1]); kept across reopens, freed by log_free */
    bool keep_log;
    raft_entry_t *log;
    size_t n_log, cap_log;
    bool found;     /* the last write answer's `found` */
    size_t val_len; /* ...and the length of its value */
} fixture_t;

static void fx_start(fixture_t *fx)
{
    fx->done = (fsm_done_t){.lock = PTHREAD_MUTEX_INITIALIZER};
    fx->args.done = &fx->done;
    fx->fsm = zactor_new(fsm_actor, &fx->args);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_node_fsm.%d.XXXXXX", (int)getpid());
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The engine on env (NULL: the posix one). */
static void fx_open_env(fixture_t *fx, const char *name, lsm_env_t *env)
{
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = path;
    o.env = env;
    assert_int_equal(lsm_open(&o, &fx->lsm, err, sizeof err), 0);
    uint64_t applied;
    fx->fg = fsm_group_new(1, fx->lsm, &applied, err, sizeof err);
    assert_non_null(fx->fg);
    fx->index = applied;
    fx_start(fx);
}

static void fx_open(fixture_t *fx, const char *name)
{
    fx_open_env(fx, name, NULL);
}

static void fx_close(fixture_t *fx)
{
    zactor_destroy(&fx->fsm);
    fsm_group_destroy(&fx->fg);
    lsm_close(&fx->lsm);
}

/* Runs one job through the actor and returns it (caller destroys). */
static fsm_job_t *run(fixture_t *fx, fsm_job_t *job)
{
    job->group = 1;
    job->fg = fx->fg;
    zsock_send(fx->fsm, "sp", "JOB", job);
    /* every job run here is waited for: one DONE wakes the node, the job is in the queue */
    char *cmd = NULL;
    void *ptr = NULL;
    assert_int_equal(zsock_recv(fx->fsm, "sp", &cmd, &ptr), 0);
    assert_string_equal(cmd, "DONE");
    assert_null(ptr);
    zstr_free(&cmd);
    assert_ptr_equal(fsm_done_take(&fx->done), job);
    assert_null(job->next);
    return job;
}

static waiter_t *waiter_for(Shoal__ClientRequest *req)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
    f.client_req = req;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    waiter_t *w = calloc(1, sizeof *w);
    char err[128];
    assert_int_equal(shoal_frame_decode(buf, len, &w->frame, err, sizeof err), 0);
    free(buf);
    return w;
}

static Shoal__ClientResponse *answer_of(waiter_t *w, Shoal__Frame **hold)
{
    char err[128];
    assert_non_null(w->reply);
    assert_int_equal(shoal_frame_decode(w->reply, w->reply_len, hold, err, sizeof err), 0);
    return (*hold)->client_resp;
}

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* An APPLY job of one entry, cmd as the next index, with no waiter in its slot yet. */
static fsm_job_t *apply_job(fixture_t *fx, const Shoal__WriteCommand *cmd)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_APPLY;
    job->n_entries = 1;
    job->entries = calloc(1, sizeof *job->entries);
    job->waiters = calloc(1, sizeof *job->waiters);
    job->entries[0].index = ++fx->index;
    job->entries[0].term = 1;
    job->entries[0].len = shoal__write_command__get_packed_size(cmd);
    job->entries[0].data = malloc(job->entries[0].len);
    shoal__write_command__pack(cmd, job->entries[0].data);
    if (fx->keep_log) {
        if (fx->n_log == fx->cap_log) {
            fx->cap_log = fx->cap_log ? fx->cap_log * 2 : 64;
            fx->log = realloc(fx->log, fx->cap_log * sizeof *fx->log);
        }
        raft_entry_t *e = &fx->log[fx->n_log++];
        *e = job->entries[0];
        e->data = malloc(e->len + 1);
        memcpy(e->data, job->entries[0].data, e->len);
    }
    return job;
}

/* Applies one write command as the next entry; returns its answer status (and value). */
static int apply(fixture_t *fx, uint64_t cid, uint64_t seq, Shoal__ClientRequest *req,
                 char *value_out)
{
    Shoal__WriteCommand cmd = SHOAL__WRITE_COMMAND__INIT;
    cmd.client_id = cid;
    cmd.seq = seq;
    cmd.op_case = (Shoal__WriteCommand__OpCase)(req->op_case); /* same numbers 10..13 + 1 */
    switch (req->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_PUT:
        cmd.op_case = SHOAL__WRITE_COMMAND__OP_PUT;
        cmd.put = req->put;
        break;
    case SHOAL__CLIENT_REQUEST__OP_DEL:
        cmd.op_case = SHOAL__WRITE_COMMAND__OP_DEL;
        cmd.del = req->del;
        break;
    case SHOAL__CLIENT_REQUEST__OP_CAS:
        cmd.op_case = SHOAL__WRITE_COMMAND__OP_CAS;
        cmd.cas = req->cas;
        break;
    default:
        cmd.op_case = SHOAL__WRITE_COMMAND__OP_BATCH;
        cmd.batch = req->batch;
        break;
    }
    req->client_id = cid;
    req->seq = seq;
    fsm_job_t *job = apply_job(fx, &cmd);
    job->waiters[0] = waiter_for(req);
    run(fx, job);
    assert_non_null(job->done);
    Shoal__Frame *hold = NULL;
    Shoal__ClientResponse *r = answer_of(job->done, &hold);
    int status = (int)r->status;
    if (value_out)
        snprintf(value_out, 64, "%.*s", (int)r->value.len, (char *)r->value.data);
    fx->found = r->found;
    fx->val_len = r->value.len;
    shoal_frame_free(&hold);
    fsm_job_destroy(&job);
    return status;
}

static int put(fixture_t *fx, uint64_t cid, uint64_t seq, const char *k, const char *v)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__PutRequest p = SHOAL__PUT_REQUEST__INIT;
    p.key = bin(k);
    p.value = bin(v);
    req.op_case = SHOAL__CLIENT_REQUEST__OP_PUT;
    req.put = &p;
    return apply(fx, cid, seq, &req, NULL);
}

/* Runs a read request; returns the decoded answer in *hold (caller frees). */
static Shoal__ClientResponse *read_req(fixture_t *fx, Shoal__ClientRequest *req,
                                       Shoal__Frame **hold)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_READ;
    job->reads = waiter_for(req);
    run(fx, job);
    Shoal__ClientResponse *r = answer_of(job->done, hold);
    fsm_job_destroy(&job);
    return r;
}

static int get(fixture_t *fx, const char *k, char *out)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__GetRequest g = SHOAL__GET_REQUEST__INIT;
    g.key = bin(k);
    req.op_case = SHOAL__CLIENT_REQUEST__OP_GET;
    req.get = &g;
    Shoal__Frame *hold = NULL;
    Shoal__ClientResponse *r = read_req(fx, &req, &hold);
    int st = (int)r->status;
    if (out)
        snprintf(out, 64, "%.*s", (int)r->value.len, (char *)r->value.data);
    shoal_frame_free(&hold);
    return st;
}

static void test_exactly_once_and_cas(void **state)
{
    fixture_t fx = {0};
    fx_open(&fx, "a");
    char v[64];
    assert_int_equal(put(&fx, 7, 1, "k", "one"), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(put(&fx, 7, 2, "k", "two"), SHOAL__STATUS__STATUS_OK);
    /* a retry of seq 1 (e.g. on a new leader) must not overwrite "two" */
    assert_int_equal(put(&fx, 7, 1, "k", "one"), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(get(&fx, "k", v), SHOAL__STATUS__STATUS_OK);
    assert_string_equal(v, "two");
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__CasRequest c = SHOAL__CAS_REQUEST__INIT;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_CAS;
    req.cas = &c;
    c.key = bin("k");
    c.expected = bin("one");
    c.value = bin("three");
    assert_int_equal(apply(&fx, 8, 1, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_string_equal(v, "two"); /* the current value comes back */
    c.expected = bin("two");
    assert_int_equal(apply(&fx, 8, 2, &req, NULL), SHOAL__STATUS__STATUS_OK);
    c.key = bin("new");
    c.expect_absent = true;
    assert_int_equal(apply(&fx, 8, 3, &req, NULL), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(apply(&fx, 8, 4, &req, NULL), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    /* the retry of a failed CAS answers the stored outcome */
    assert_int_equal(apply(&fx, 8, 4, &req, NULL), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_int_equal(get(&fx, "k", v), SHOAL__STATUS__STATUS_OK);
    assert_string_equal(v, "three");
    /* sessions survive a restart (they live in the engine) */
    fx_close(&fx);
    fx_open(&fx, "a");
    assert_int_equal(fx.index, 8); /* 8 entries applied before the restart */
    assert_int_equal(put(&fx, 7, 2, "k", "stale retry"), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(get(&fx, "k", v), SHOAL__STATUS__STATUS_OK);
    assert_string_equal(v, "three");
    fx_close(&fx);
}

/* A retried compare that failed is answered as the first time: the value the compare saw
 * (found or absent), not whatever the key holds now, nor "absent" for a present key. */
static void test_failed_cas_retry_answer(void **state)
{
    fixture_t fx = {0};
    fx_open(&fx, "a");
    char v[64], big[1001];
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__CasRequest c = SHOAL__CAS_REQUEST__INIT;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_CAS;
    req.cas = &c;
    assert_int_equal(put(&fx, 7, 1, "k", "two"), SHOAL__STATUS__STATUS_OK);
    c.key = bin("k");
    c.expected = bin("one");
    c.value = bin("three");
    for (int round = 0; round < 2; round++) { /* the first answer, then a retry */
        assert_int_equal(apply(&fx, 9, 1, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
        assert_true(fx.found);
        assert_string_equal(v, "two");
        assert_int_equal(put(&fx, 7, 2 + round, "k", round ? "four" : "two"),
                         SHOAL__STATUS__STATUS_OK);
    }
    c.expect_absent = true; /* present: fails with the value */
    assert_int_equal(apply(&fx, 9, 2, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_int_equal(put(&fx, 7, 4, "k", "five"), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(apply(&fx, 9, 2, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_true(fx.found);
    assert_string_equal(v, "four");
    c.expect_absent = false; /* absent: fails, absent, also when retried after a put */
    c.key = bin("none");
    assert_int_equal(apply(&fx, 9, 3, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_false(fx.found);
    assert_int_equal(put(&fx, 7, 5, "none", "one"), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(apply(&fx, 9, 3, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_false(fx.found);
    memset(big, 'b', 1000); /* a value past the session's stack buffer */
    big[1000] = 0;
    assert_int_equal(put(&fx, 7, 6, "big", big), SHOAL__STATUS__STATUS_OK);
    c.key = bin("big");
    assert_int_equal(apply(&fx, 9, 4, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_int_equal(put(&fx, 7, 7, "big", "small"), SHOAL__STATUS__STATUS_OK);
    fx_close(&fx); /* and after a restart: the value is in the session, in the engine */
    fx_open(&fx, "a");
    assert_int_equal(apply(&fx, 9, 4, &req, v), SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_true(fx.found);
    assert_int_equal(fx.val_len, 1000);
    assert_memory_equal(v, big, 63);
    /* the next write of the client replaces the session and its value */
    c.expected = bin("small");
    assert_int_equal(apply(&fx, 9, 5, &req, NULL), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(apply(&fx, 9, 5, &req, NULL), SHOAL__STATUS__STATUS_OK);
    fx_close(&fx);
}

static void test_scan_and_changes(void **state)
{
    fixture_t fx = {0};
    fx_open(&fx, "b");
    const char *keys[] = {"a1", "b1", "b2", "b3", "c1"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(put(&fx, 1, (uint64_t)i + 1, keys[i], "v"), 0);
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__ScanRequest sc = SHOAL__SCAN_REQUEST__INIT;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_SCAN;
    req.scan = &sc;
    sc.prefix = bin("b");
    Shoal__Frame *hold = NULL;
    Shoal__ClientResponse *r = read_req(&fx, &req, &hold);
    assert_int_equal(r->n_kvs, 3);
    assert_memory_equal(r->kvs[0]->key.data, "b1", 2);
    shoal_frame_free(&hold);
    sc.limit = 2;
    r = read_req(&fx, &req, &hold);
    assert_int_equal(r->n_kvs, 2);
    assert_true(r->more);
    shoal_frame_free(&hold);
    sc.prefix = bin("");
    sc.limit = 0;
    sc.start = bin("b2");
    sc.end = bin("c1");
    r = read_req(&fx, &req, &hold);
    assert_int_equal(r->n_kvs, 2); /* b2, b3: start inclusive, end exclusive */
    assert_memory_equal(r->kvs[1]->key.data, "b3", 2);
    shoal_frame_free(&hold);

    Shoal__ChangesRequest ch = SHOAL__CHANGES_REQUEST__INIT;
    Shoal__ClientRequest creq = SHOAL__CLIENT_REQUEST__INIT;
    creq.op_case = SHOAL__CLIENT_REQUEST__OP_CHANGES;
    creq.changes = &ch;
    ch.after_index = 3;
    r = read_req(&fx, &creq, &hold);
    assert_int_equal(r->status, SHOAL__STATUS__STATUS_OK);
    assert_int_equal(r->n_changes, 2);
    assert_int_equal(r->changes[0]->index, 4);
    shoal_frame_free(&hold);
    /* after a restart the window starts at the applied index: older asks are told so */
    fx_close(&fx);
    fx_open(&fx, "b");
    ch.after_index = 2;
    r = read_req(&fx, &creq, &hold);
    assert_int_equal(r->status, SHOAL__STATUS__STATUS_WINDOW_GONE);
    shoal_frame_free(&hold);
    fx_close(&fx);
}

/* A shard born from a split opens at applied index SPLIT_TARGET_BASE (its copied data, a
 * snapshot at index 1), and no change of it sits at or before that index: the changes
 * after 0 are all in its window (they were answered WINDOW_GONE); reopened past its base
 * with nothing refilled, the window starts at its applied index again. */
static void test_split_target_window(void **state)
{
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/target", dir);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = path;
    lsm_t *lsm = NULL;
    assert_int_equal(lsm_open(&o, &lsm, err, sizeof err), 0);
    uint64_t base = 1; /* what split_apply leaves in the target's engine (split.h) */
    assert_int_equal(lsm_put(lsm, NULL, KEY_APPLIED, strlen(KEY_APPLIED), &base, 8), 0);
    lsm_close(&lsm);
    fixture_t fx = {0};
    fx_open(&fx, "target");
    assert_int_equal(fx.index, 1);
    /* as the node opens it (restore_raft): its log based at the split's snapshot at index
     * 1, no entry yet, an engine without window marks (split_apply writes none) */
    assert_int_equal(fsm_group_refill(fx.fg, NULL, 0, 1, 1, 1), 0);
    assert_int_equal(put(&fx, 1, 1, "x", "v"), SHOAL__STATUS__STATUS_OK); /* index 2 */
    assert_int_equal(put(&fx, 1, 2, "y", "v"), SHOAL__STATUS__STATUS_OK); /* index 3 */
    Shoal__ChangesRequest ch = SHOAL__CHANGES_REQUEST__INIT;
    Shoal__ClientRequest creq = SHOAL__CLIENT_REQUEST__INIT;
    creq.op_case = SHOAL__CLIENT_REQUEST__OP_CHANGES;
    creq.changes = &ch;
    Shoal__Frame *hold = NULL;
    for (uint64_t after = 0; after <= 1; after++) {
        ch.after_index = after;
        Shoal__ClientResponse *r = read_req(&fx, &creq, &hold);
        assert_int_equal(r->status, SHOAL__STATUS__STATUS_OK);
        assert_int_equal(r->n_changes, 2);
        assert_int_equal(r->changes[0]->index, 2);
        shoal_frame_free(&hold);
    }
    fx_close(&fx);
    fx_open(&fx, "target");
    ch.after_index = 0;
    Shoal__ClientResponse *r = read_req(&fx, &creq, &hold);
    assert_int_equal(r->status, SHOAL__STATUS__STATUS_WINDOW_GONE);
    shoal_frame_free(&hold);
    fx_close(&fx);
}

/* Entry i of the crash test: puts over a few keys, a delete now and then, a CAS chain. */
static int crash_entry(fixture_t *fx, int i)
{
    char k[16], v[16], prev[16];
    snprintf(k, sizeof k, "k%d", i % 7);
    snprintf(v, sizeof v, "v%d", i);
    snprintf(prev, sizeof prev, "v%d", i - 10);
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__CasRequest c = SHOAL__CAS_REQUEST__INIT;
    Shoal__DeleteRequest d = SHOAL__DELETE_REQUEST__INIT;
    if (i % 10 == 0) {
        req.op_case = SHOAL__CLIENT_REQUEST__OP_CAS;
        req.cas = &c;
        c.key = bin("c");
        c.expect_absent = i == 10;
        c.expected = bin(prev);
        c.value = bin(v);
        return apply(fx, 4, (uint64_t)i / 10, &req, NULL);
    }
    if (i % 13 == 0) {
        req.op_case = SHOAL__CLIENT_REQUEST__OP_DEL;
        req.del = &d;
        d.key = bin(k);
        return apply(fx, 3, (uint64_t)i, &req, NULL);
    }
    return put(fx, 3, (uint64_t)i, k, v);
}

/* The applied index is stored only every so many entries: after a crash the entries since
 * the stored index are applied again over a state that already holds them, and must leave
 * it as it was (sessions skip them), CAS outcomes included. */
static void test_crash_replays_idempotently(void **state)
{
    enum { N = 90 };
    fixture_t live = {0}, ref = {0}, crashed = {0};
    fx_open(&live, "live");
    for (int i = 1; i <= N; i++)
        assert_int_equal(crash_entry(&live, i), SHOAL__STATUS__STATUS_OK);
    /* the engine's files now are what a crash would leave (its log reached the OS) */
    zactor_destroy(&live.fsm);
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "cp -r %s/live %s/crashed", dir, dir);
    assert_int_equal(system(cmd), 0);
    fx_open(&ref, "ref"); /* the same entries applied once, for comparison */
    for (int i = 1; i <= N; i++)
        crash_entry(&ref, i);
    fx_open(&crashed, "crashed");
    assert_true(crashed.index < N); /* some entries are applied again */
    for (int i = (int)crashed.index + 1; i <= N; i++)
        assert_int_equal(crash_entry(&crashed, i), SHOAL__STATUS__STATUS_OK);
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "c"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char a[64] = "", b[64] = "";
        int sa = get(&ref, keys[i], a), sb = get(&crashed, keys[i], b);
        assert_int_equal(sa, sb);
        assert_string_equal(a, b);
    }
    char c[64];
    assert_int_equal(get(&crashed, "c", c), SHOAL__STATUS__STATUS_OK);
    assert_string_equal(c, "v90");
    fx_start(&live);
    fx_close(&live);
    fx_close(&ref);
    fx_close(&crashed);
}

/* 200 keys written by client 5 into a fresh fixture, exported by the compactor as
 * dir/snap-200 (the fixture stays open). */
static void export_200(fixture_t *a)
{
    fx_open(a, "src");
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%03d", i);
        assert_int_equal(put(a, 5, (uint64_t)i + 1, k, k), 0);
    }
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_SNAPSHOT;
    run(a, job);
    assert_non_null(job->lsnap);
    assert_int_equal(job->applied, 200);
    zactor_t *comp = zactor_new(compactor_actor, NULL);
    snap_job_t sj = {
        .group = 1, .lsm = a->lsm, .snap = job->lsnap, .index = job->applied, .dir = dir};
    job->lsnap = NULL;
    fsm_job_destroy(&job);
    zsock_send(comp, "sp", "EXPORT", &sj);
    char *cmd = NULL;
    void *ptr = NULL;
    assert_int_equal(zsock_recv(comp, "sp", &cmd, &ptr), 0);
    zstr_free(&cmd);
    assert_int_equal(sj.rc, 0);
    assert_true(sj.size > 0);
    zactor_destroy(&comp);
}

/* Installs the snapshot at index 200 from path; returns the job's rc and sets *streamed
 * (when not NULL) to whether the chunks' ingest was swapped in rather than the file read. */
static int install_200(fixture_t *b, const char *path, bool *streamed)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_INSTALL;
    job->path = strdup(path);
    job->snap_index = 200;
    run(b, job);
    int rc = job->rc;
    if (rc == 0)
        assert_int_equal(job->applied, 200);
    if (streamed)
        *streamed = job->streamed;
    fsm_job_destroy(&job);
    return rc;
}

static void test_snapshot_roundtrip(void **state)
{
    fixture_t a = {0}, b = {0};
    export_200(&a);
    fx_open(&b, "dst");
    put(&b, 9, 1, "only-in-b", "x"); /* replaced by the snapshot */
    char path[400];
    snprintf(path, sizeof path, "%s/snap-200", dir);
    bool streamed = true;
    assert_int_equal(install_200(&b, path, &streamed), 0);
    assert_false(streamed); /* nothing was streamed: the file */
    char v[64];
    assert_int_equal(get(&b, "key123", v), 0);
    assert_string_equal(v, "key123");
    assert_int_equal(get(&b, "only-in-b", NULL), SHOAL__STATUS__STATUS_NOT_FOUND);
    b.index = 200;
    /* the session came with the snapshot: a retry of client 5's last write is not applied */
    assert_int_equal(put(&b, 5, 200, "key199", "changed"), 0);
    assert_int_equal(get(&b, "key199", v), 0);
    assert_string_equal(v, "key199");
    fx_close(&a);
    fx_close(&b);
}

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *buf = malloc(*size);
    assert_int_equal(fread(buf, 1, *size, f), *size);
    fclose(f);
    return buf;
}

/* Sends an FSM_INGEST job of bytes [off, off + len) of snap (nobody waits for those: no
 * DONE) and waits until the actor handed it back. */
static void ingest(fixture_t *fx, const uint8_t *snap, size_t off, size_t len, bool last)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_INGEST;
    job->group = 1;
    job->fg = fx->fg;
    job->snap_index = 200;
    job->chunk = malloc(len ? len : 1);
    memcpy(job->chunk, snap + off, len);
    job->chunk_len = len;
    job->chunk_off = off;
    job->chunk_last = last;
    zsock_send(fx->fsm, "sp", "JOB", job);
    fsm_job_t *back = NULL;
    for (int t = 0; t < 5000 && !back; t++) {
        back = fsm_done_take(&fx->done);
        if (!back)
            zclock_sleep(1);
    }
    assert_ptr_equal(back, job);
    assert_int_equal(job->rc, 0);
    fsm_job_destroy(&job);
}

/* Streams bytes [0, upto) of snap in 1000-byte chunks; the last one is marked if upto is
 * the whole size. */
static void stream(fixture_t *fx, const uint8_t *snap, size_t size, size_t upto)
{
    for (size_t off = 0; off < upto; off += 1000) {
        size_t len = upto - off < 1000 ? upto - off : 1000;
        ingest(fx, snap, off, len, off + len == size);
    }
}

/* A snapshot ingested chunk by chunk as it arrives is installed by the swap alone (no file
 * read: the install is given a path that does not exist), also after a transfer restarted
 * halfway and with writes applied between chunks; a stream that is corrupt, or restarted
 * with a chunk missing, is never swapped in: the install reads the file instead. */
static void test_snapshot_streamed(void **state)
{
    fixture_t a = {0}, b = {0};
    export_200(&a);
    char path[400];
    snprintf(path, sizeof path, "%s/snap-200", dir);
    size_t size;
    uint8_t *snap = read_all(path, &size);
    assert_non_null(snap);
    assert_true(size > 3000);
    fx_open(&b, "dst");
    put(&b, 9, 1, "only-in-b", "x");
    stream(&b, snap, size, size / 2); /* a transfer that restarts at offset 0 */
    put(&b, 9, 2, "mid", "x");        /* applied meanwhile, replaced by the install */
    stream(&b, snap, size, size);
    char v[64];
    bool streamed = false;
    assert_int_equal(install_200(&b, "/nonexistent/snap", &streamed), 0);
    assert_true(streamed);
    assert_int_equal(get(&b, "key123", v), 0);
    assert_string_equal(v, "key123");
    assert_int_equal(get(&b, "only-in-b", NULL), SHOAL__STATUS__STATUS_NOT_FOUND);
    assert_int_equal(get(&b, "mid", NULL), SHOAL__STATUS__STATUS_NOT_FOUND);
    fx_close(&b);

    fixture_t c = {0};
    fx_open(&c, "dst2");
    put(&c, 9, 1, "only-in-c", "x");
    uint8_t *bad = malloc(size);
    memcpy(bad, snap, size);
    bad[size / 2] ^= 0x5a;
    stream(&c, bad, size, size); /* refused by the ingest's own frame checksums */
    assert_int_not_equal(install_200(&c, "/nonexistent/snap", NULL), 0);
    assert_int_equal(get(&c, "only-in-c", NULL), 0); /* nothing was swapped in */
    stream(&c, snap, size, 2000);
    ingest(&c, snap, 3000, size - 3000, true); /* bytes 2000..3000 lost */
    assert_int_not_equal(install_200(&c, "/nonexistent/snap", NULL), 0);
    assert_int_equal(get(&c, "only-in-c", NULL), 0);
    assert_int_equal(install_200(&c, path, &streamed), 0); /* from the file */
    assert_false(streamed);
    assert_int_equal(get(&c, "key042", v), 0);
    assert_string_equal(v, "key042");
    assert_int_equal(get(&c, "only-in-c", NULL), SHOAL__STATUS__STATUS_NOT_FOUND);
    free(bad);
    free(snap);
    fx_close(&c);
    fx_close(&a);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Group 1 splits into 9 through the actor: writes, gets and stale scans of moved keys are
 * refused with UNAVAILABLE (nothing applied, no session: shard 9 applies the retry), kept
 * keys go on; a replica that installs a snapshot taken after the SPLIT fences the same. */
static void test_split_fences(void **state)
{
    (void)state;
    fixture_t a = {0}, b = {0}, t = {0};
    fx_open(&a, "src");
    fx_open(&t, "target");
    char keys[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof keys[i], "key%03d", i);
        assert_int_equal(put(&a, 5, (uint64_t)i + 1, keys[i], keys[i]), 0);
    }
    uint64_t pts[64], keep[32], give[32], voters[3] = {0, 1, 2};
    for (uint32_t i = 0; i < 64; i++)
        pts[i] = ring_point(1, i);
    qsort(pts, 64, sizeof *pts, u64_cmp);
    for (int i = 0; i < 64; i++)
        (i % 2 ? give : keep)[i / 2] = pts[i];
    Shoal__SplitCommand sc = SHOAL__SPLIT_COMMAND__INIT;
    sc.target = 9;
    sc.map_version = 4;
    sc.keep = keep, sc.n_keep = 32;
    sc.give = give, sc.n_give = 32;
    sc.voters = voters, sc.n_voters = 3;
    Shoal__WriteCommand wc = SHOAL__WRITE_COMMAND__INIT;
    wc.op_case = SHOAL__WRITE_COMMAND__OP_SPLIT;
    wc.split = &sc;
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_APPLY;
    job->n_entries = 1;
    job->entries = calloc(1, sizeof *job->entries);
    job->entries[0].index = ++a.index;
    job->entries[0].term = 1;
    job->entries[0].len = shoal__write_command__get_packed_size(&wc);
    job->entries[0].data = malloc(job->entries[0].len);
    shoal__write_command__pack(&wc, job->entries[0].data);
    job->splits = calloc(1, sizeof *job->splits);
    job->splits[0] = (split_dst_t){9, t.lsm, false};
    job->n_splits = 1;
    run(&a, job);
    assert_int_equal(job->rc, 0);
    fsm_job_destroy(&job);
    ring_t *ring = ring_new(1);
    assert_int_equal(ring_add_points(ring, 1, keep, 32), 0);
    assert_int_equal(ring_add_points(ring, 9, give, 32), 0);
    int moved = -1, kept = -1;
    for (int i = 0; i < 200; i++)
        *(ring_shard_for(ring, keys[i], strlen(keys[i])) == 9 ? &moved : &kept) = i;
    ring_destroy(&ring);
    assert_true(moved >= 0 && kept >= 0);
    fixture_t *both[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        fixture_t *fx = both[k];
        char v[64];
        assert_int_equal(get(fx, keys[moved], NULL), SHOAL__STATUS__STATUS_UNAVAILABLE);
        uint64_t cid = 6 + (uint64_t)k; /* a's client 6 session travels in the snapshot */
        assert_int_equal(put(fx, cid, 1, keys[moved], "new"), SHOAL__STATUS__STATUS_UNAVAILABLE);
        assert_int_equal(get(&t, keys[moved], v), 0); /* the target holds it, unchanged */
        assert_string_equal(v, keys[moved]);
        assert_int_equal(put(fx, cid, 1, keys[kept], "new"), 0); /* seq 1 was not used up */
        assert_int_equal(get(fx, keys[kept], v), 0);
        assert_string_equal(v, "new");
        Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
        Shoal__ScanRequest scr = SHOAL__SCAN_REQUEST__INIT;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_SCAN;
        req.scan = &scr;
        req.map_version = 3; /* routed before the split */
        Shoal__Frame *hold = NULL;
        assert_int_equal(read_req(fx, &req, &hold)->status, SHOAL__STATUS__STATUS_UNAVAILABLE);
        shoal_frame_free(&hold);
        req.map_version = 4;
        Shoal__ClientResponse *r = read_req(fx, &req, &hold);
        assert_int_equal(r->status, 0);
        for (size_t i = 0; i < r->n_kvs; i++) /* only kept keys are left */
            assert_false(r->kvs[i]->key.len == strlen(keys[moved]) &&
                         !memcmp(r->kvs[i]->key.data, keys[moved], strlen(keys[moved])));
        shoal_frame_free(&hold);
        if (k == 1)
            break;
        /* b installs a snapshot of a taken after the SPLIT */
        job = calloc(1, sizeof *job);
        job->type = FSM_SNAPSHOT;
        run(&a, job);
        zactor_t *comp = zactor_new(compactor_actor, NULL);
        snap_job_t sj = {
            .group = 1, .lsm = a.lsm, .snap = job->lsnap, .index = job->applied, .dir = dir};
        uint64_t at = job->applied;
        job->lsnap = NULL;
        fsm_job_destroy(&job);
        zsock_send(comp, "sp", "EXPORT", &sj);
        char *cmd = NULL;
        void *ptr = NULL;
        assert_int_equal(zsock_recv(comp, "sp", &cmd, &ptr), 0);
        zstr_free(&cmd);
        assert_int_equal(sj.rc, 0);
        zactor_destroy(&comp);
        fx_open(&b, "dst");
        job = calloc(1, sizeof *job);
        job->type = FSM_INSTALL;
        char path[400];
        snprintf(path, sizeof path, "%s/snap-%" PRIu64, dir, at);
        job->path = strdup(path);
        job->snap_index = at;
        run(&b, job);
        assert_int_equal(job->rc, 0);
        fsm_job_destroy(&job);
        b.index = at;
    }
    fx_close(&a);
    fx_close(&b);
    fx_close(&t);
}

/* A follower's apply (no waiter) wakes nobody: it waits in the queue, and the next job
 * that is waited for (a read) brings one DONE for both, in the order they finished. */
/* Applies 10 puts, takes a mark (a snapshot without a file) if asked, applies 3 more, then
 * crashes the engine's env (every byte not fdatasync'ed is lost) and reopens it: returns
 * the applied index the state machine finds, and in *k10 the status of a get of k10. */
static uint64_t crash_after_puts(bool mark, int *k10)
{
    lsm_env_t *env = lsm_env_mem_new();
    fixture_t fx = {0};
    fx_open_env(&fx, "mark", env);
    char k[16];
    for (int i = 1; i <= 13; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(put(&fx, 5, (uint64_t)i, k, "v"), SHOAL__STATUS__STATUS_OK);
        if (i == 10 && mark) {
            fsm_job_t *job = calloc(1, sizeof *job);
            job->type = FSM_SNAPSHOT;
            job->mark_only = true;
            run(&fx, job);
            assert_int_equal(job->rc, 0);
            assert_null(job->lsnap); /* no view: nothing is exported */
            assert_int_equal(job->applied, 10);
            fsm_job_destroy(&job);
        }
    }
    zactor_destroy(&fx.fsm);
    lsm_env_mem_crash(env);
    fsm_group_destroy(&fx.fg);
    lsm_close(&fx.lsm);
    fx_open_env(&fx, "mark", env);
    uint64_t applied = fx.index;
    *k10 = get(&fx, "k10", NULL);
    fx_close(&fx);
    lsm_env_mem_destroy(&env);
    return applied;
}

/* A mark makes the applied index and every write before it durable (the Raft log is cut
 * behind it with no copy of the state anywhere else); without one a power loss keeps
 * nothing here, which shows the crash model drops what a mark must keep. */
static void test_snapshot_mark_is_durable(void **state)
{
    int k10;
    assert_int_equal(crash_after_puts(true, &k10), 10);
    assert_int_equal(k10, SHOAL__STATUS__STATUS_OK);
    assert_int_equal(crash_after_puts(false, &k10), 0);
    assert_int_equal(k10, SHOAL__STATUS__STATUS_NOT_FOUND);
}

static void test_quiet_apply(void **state)
{
    fixture_t fx = {0};
    fx_open(&fx, "quiet");
    Shoal__WriteCommand cmd = SHOAL__WRITE_COMMAND__INIT;
    Shoal__PutRequest p = SHOAL__PUT_REQUEST__INIT;
    p.key = bin("k");
    p.value = bin("v1");
    cmd.client_id = 9;
    cmd.seq = 1;
    cmd.op_case = SHOAL__WRITE_COMMAND__OP_PUT;
    cmd.put = &p;
    fsm_job_t *job = apply_job(&fx, &cmd); /* a follower's: nobody to answer */
    job->group = 1;
    job->fg = fx.fg;
    zsock_send(fx.fsm, "sp", "JOB", job);

    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__GetRequest g = SHOAL__GET_REQUEST__INIT;
    g.key = bin("k");
    req.op_case = SHOAL__CLIENT_REQUEST__OP_GET;
    req.get = &g;
    fsm_job_t *rd = calloc(1, sizeof *rd);
    rd->type = FSM_READ;
    rd->group = 1;
    rd->fg = fx.fg;
    rd->reads = waiter_for(&req);
    zsock_send(fx.fsm, "sp", "JOB", rd);

    char *c = NULL;
    void *ptr = NULL;
    assert_int_equal(zsock_recv(fx.fsm, "sp", &c, &ptr), 0);
    assert_string_equal(c, "DONE");
    zstr_free(&c);
    assert_ptr_equal(fsm_done_take(&fx.done), job); /* the apply first, then the read */
    assert_ptr_equal(job->next, rd);
    assert_null(rd->next);
    assert_false(zsock_events(zactor_sock(fx.fsm)) & ZMQ_POLLIN); /* one wake-up only */
    assert_int_equal(job->applied, fx.index);
    assert_int_equal(job->n_changes, 1);
    Shoal__Frame *hold = NULL;
    Shoal__ClientResponse *r = answer_of(rd->done, &hold);
    assert_int_equal(r->status, SHOAL__STATUS__STATUS_OK);
    assert_int_equal(r->value.len, 2);
    assert_memory_equal(r->value.data, "v1", 2);
    shoal_frame_free(&hold);
    job->next = NULL;
    fsm_job_destroy(&job);
    fsm_job_destroy(&rd);
    fx_close(&fx);
}

/* ---- the change window refilled from the log at a restart ---------------------------- */

static void log_free(fixture_t *fx)
{
    for (size_t i = 0; i < fx->n_log; i++)
        free(fx->log[i].data);
    free(fx->log);
    fx->log = NULL;
    fx->n_log = fx->cap_log = 0;
}

/* Runs a job nobody waits for (a follower's apply), then a read behind it for the DONE. */
static void run_quiet(fixture_t *fx, fsm_job_t *job)
{
    job->group = 1;
    job->fg = fx->fg;
    zsock_send(fx->fsm, "sp", "JOB", job);
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__GetRequest g = SHOAL__GET_REQUEST__INIT;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_GET;
    req.get = &g;
    fsm_job_t *rd = calloc(1, sizeof *rd);
    rd->type = FSM_READ;
    rd->group = 1;
    rd->fg = fx->fg;
    rd->reads = waiter_for(&req);
    zsock_send(fx->fsm, "sp", "JOB", rd);
    char *c = NULL;
    void *ptr = NULL;
    assert_int_equal(zsock_recv(fx->fsm, "sp", &c, &ptr), 0);
    zstr_free(&c);
    assert_ptr_equal(fsm_done_take(&fx->done), job);
    assert_int_equal(job->rc, 0);
    fsm_job_destroy(&job);
    fsm_job_destroy(&rd);
}

/* An APPLY job of the logged entries after fx->index (a restart's replay), no waiters. */
static void replay_log(fixture_t *fx)
{
    size_t from = (size_t)fx->index, n = fx->n_log - from;
    if (!n)
        return;
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_APPLY;
    job->n_entries = n;
    job->entries = calloc(n, sizeof *job->entries);
    for (size_t i = 0; i < n; i++) {
        job->entries[i] = fx->log[from + i];
        job->entries[i].data = malloc(job->entries[i].len + 1);
        memcpy(job->entries[i].data, fx->log[from + i].data, job->entries[i].len);
    }
    fx->index = fx->n_log;
    run_quiet(fx, job);
}

/* A logged entry of type with data that is not a write command (a no-op, a configuration
 * change, bytes that do not decode), applied. */
static void raw_entry(fixture_t *fx, raft_entry_type_t type, const char *data)
{
    Shoal__WriteCommand none = SHOAL__WRITE_COMMAND__INIT;
    fsm_job_t *job = apply_job(fx, &none);
    raft_entry_t *e[2] = {&job->entries[0], &fx->log[fx->n_log - 1]};
    for (int i = 0; i < 2; i++) {
        e[i]->type = type;
        e[i]->len = strlen(data);
        e[i]->data = realloc(e[i]->data, e[i]->len + 1);
        memcpy(e[i]->data, data, e[i]->len);
    }
    run_quiet(fx, job);
}

/* The open of a replica: its window refilled from the logged entries after mark. */
static void fx_reopen_refill(fixture_t *fx, const char *name, uint64_t mark)
{
    fx_open(fx, name);
    uint64_t applied = fx->index < fx->n_log ? fx->index : fx->n_log;
    assert_int_equal(
        fsm_group_refill(fx->fg, fx->log + mark, fx->n_log - mark, mark, applied, fx->n_log), 0);
}

/* Every change the window serves after (index, ops), one line each, paging as libshoal
 * does; "GONE" when the window no longer has them. */
static char *dump_changes(fixture_t *fx, uint64_t index, uint32_t ops)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    while (true) {
        Shoal__ChangesRequest ch = SHOAL__CHANGES_REQUEST__INIT;
        Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_CHANGES;
        req.changes = &ch;
        ch.after_index = index;
        ch.after_ops = ops;
        Shoal__Frame *hold = NULL;
        Shoal__ClientResponse *r = read_req(fx, &req, &hold);
        if (r->status == SHOAL__STATUS__STATUS_WINDOW_GONE)
            len += (size_t)snprintf(out + len, cap - len, "GONE\n");
        for (size_t i = 0; r->status == 0 && i < r->n_changes; i++) {
            Shoal__Change *c = r->changes[i];
            if (cap - len < c->key.len + c->value.len + 64) {
                cap = 2 * cap + c->key.len + c->value.len;
                out = realloc(out, cap);
            }
            len += (size_t)snprintf(out + len, cap - len, "%" PRIu64 " %u/%u %s %.*s=%.*s\n",
                                    c->index, c->op_seq, c->op_count, c->is_delete ? "del" : "put",
                                    (int)c->key.len, (char *)c->key.data, (int)c->value.len,
                                    (char *)c->value.data);
            index = c->index;
            ops = c->op_seq + 1 == c->op_count ? 0 : c->op_seq + 1;
        }
        bool more = r->status == 0 && r->more;
        shoal_frame_free(&hold);
        if (!more)
            return out;
    }
}

/* The oldest index the window answers changes after (its win_from). */
static uint64_t window_from(fixture_t *fx)
{
    uint64_t lo = 0, hi = fx->index; /* the answer is in [lo, hi] */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        char *d = dump_changes(fx, mid, 0);
        bool gone = !strcmp(d, "GONE\n");
        free(d);
        if (gone)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int cas(fixture_t *fx, uint64_t cid, uint64_t seq, const char *k, const char *expected,
               const char *v, bool del)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__CasRequest c = SHOAL__CAS_REQUEST__INIT;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_CAS;
    req.cas = &c;
    c.key = bin(k);
    c.expected = bin(expected);
    c.value = bin(v);
    c.delete_on_match = del;
    return apply(fx, cid, seq, &req, NULL);
}

/* A batch of ops "put K V" / "del K" separated by ';'. */
static int batch(fixture_t *fx, uint64_t cid, uint64_t seq, const char *ops)
{
    char copy[256], *save = NULL;
    Shoal__BatchOp o[8], *po[8];
    Shoal__PutRequest p[8];
    Shoal__DeleteRequest d[8];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", ops);
    for (char *t = strtok_r(copy, ";", &save); t && n < 8; t = strtok_r(NULL, ";", &save), n++) {
        char *w = strtok(t, " "), *k = strtok(NULL, " "), *v = strtok(NULL, " ");
        shoal__batch_op__init(&o[n]);
        po[n] = &o[n];
        if (!strcmp(w, "put")) {
            shoal__put_request__init(&p[n]);
            p[n].key = bin(k);
            p[n].value = bin(v);
            o[n].op_case = SHOAL__BATCH_OP__OP_PUT;
            o[n].put = &p[n];
        } else {
            shoal__delete_request__init(&d[n]);
            d[n].key = bin(k);
            o[n].op_case = SHOAL__BATCH_OP__OP_DEL;
            o[n].del = &d[n];
        }
    }
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__BatchRequest b = SHOAL__BATCH_REQUEST__INIT;
    b.ops = po;
    b.n_ops = n;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_BATCH;
    req.batch = &b;
    return apply(fx, cid, seq, &req, NULL);
}

/* A log of every kind of entry: what live apply left in the window comes back after a
 * restart from the log alone, the same changes at the same (index, op) in the same order,
 * and nothing for the entries that changed nothing (a retry, an older seq, a failed
 * compare, a no-op, a configuration change, bytes that do not decode, a batch of no put
 * or delete); a refill from a later mark answers WINDOW_GONE before it. */
static void test_window_refill(void **state)
{
    fixture_t fx = {.keep_log = true};
    fx_open(&fx, "w");
    assert_int_equal(fsm_group_refill(fx.fg, NULL, 0, 0, 0, 0), 0); /* a new replica */
    assert_int_equal(put(&fx, 1, 1, "a", "1"), 0);
    raw_entry(&fx, RAFT_ENTRY_NOOP, "");
    assert_int_equal(batch(&fx, 1, 2, "put b 1;put b 2;del a;put b 3"), 0);
    assert_int_equal(batch(&fx, 1, 2, "put b 1;put b 2;del a;put b 3"), 0); /* a retry */
    assert_int_equal(cas(&fx, 2, 1, "b", "wrong", "x", false),
                     SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_int_equal(cas(&fx, 2, 2, "b", "3", "4", false), 0);
    raw_entry(&fx, RAFT_ENTRY_CONF_CHANGE, "\x01\x02");
    raw_entry(&fx, RAFT_ENTRY_NORMAL, "\xff\xff\xff garbage");
    assert_int_equal(put(&fx, 0, 0, "c", "no session"), 0);
    assert_int_equal(put(&fx, 1, 1, "a", "older seq"), 0); /* answered, not applied */
    assert_int_equal(cas(&fx, 2, 3, "b", "4", "", true), 0);
    assert_int_equal(batch(&fx, 3, 1, ""), SHOAL__STATUS__STATUS_OK);
    assert_int_equal(put(&fx, 3, 2, "d", "last"), 0);
    char *live = dump_changes(&fx, 0, 0);
    assert_string_equal(live, "1 0/1 put a=1\n"
                              "3 0/4 put b=1\n3 1/4 put b=2\n3 2/4 del a=\n3 3/4 put b=3\n"
                              "6 0/1 put b=4\n"
                              "9 0/1 put c=no session\n"
                              "11 0/1 del b=\n"
                              "13 0/1 put d=last\n");
    char *live_mid = dump_changes(&fx, 3, 2); /* inside the batch */
    fx_close(&fx);

    fx_reopen_refill(&fx, "w", 0);
    char *got = dump_changes(&fx, 0, 0);
    assert_string_equal(got, live);
    free(got);
    got = dump_changes(&fx, 3, 2);
    assert_string_equal(got, live_mid);
    free(got);
    /* the next change chains on the last one refilled, as if there was no restart */
    Shoal__WriteCommand cmd = SHOAL__WRITE_COMMAND__INIT;
    Shoal__PutRequest p = SHOAL__PUT_REQUEST__INIT;
    p.key = bin("e");
    p.value = bin("after");
    cmd.client_id = 3;
    cmd.seq = 3;
    cmd.op_case = SHOAL__WRITE_COMMAND__OP_PUT;
    cmd.put = &p;
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_PUT;
    req.put = &p;
    req.client_id = 3;
    req.seq = 3;
    fsm_job_t *job = apply_job(&fx, &cmd);
    job->waiters[0] = waiter_for(&req);
    run(&fx, job);
    assert_int_equal(job->n_changes, 1);
    assert_int_equal(job->changes[0]->prev_index, 13);
    fsm_job_destroy(&job);
    fx_close(&fx);

    /* the log cut at 5 (a mark): changes after 5 only, older asks are told */
    fx_reopen_refill(&fx, "w", 5);
    got = dump_changes(&fx, 4, 0);
    assert_string_equal(got, "GONE\n");
    free(got);
    got = dump_changes(&fx, 5, 0);
    assert_string_equal(got, "6 0/1 put b=4\n9 0/1 put c=no session\n11 0/1 del b=\n"
                             "13 0/1 put d=last\n14 0/1 put e=after\n");
    free(got);
    fx_close(&fx);
    free(live);
    free(live_mid);
    log_free(&fx);
}

/* Entry i of the replay test: client 3 puts (values of every size, so the window's byte
 * cap drops changes too), a 3-op batch writing one key twice every 7th, client 4's CAS
 * chain with a failed compare every 5th, client 5's retry of its previous entry every 11th. */
static void replay_entry(fixture_t *fx, int i, int big)
{
    char k[16], v[16], prev[16];
    snprintf(k, sizeof k, "k%d", i % 13);
    snprintf(prev, sizeof prev, "v%d", i - 2);
    snprintf(v, sizeof v, "v%d", i);
    if (i % 11 == 0) {
        assert_int_equal(put(fx, 5, (uint64_t)i - 1, "r", "retried"), 0);
    } else if (i % 11 == 10) {
        assert_int_equal(put(fx, 5, (uint64_t)i, "r", "retried"), 0);
    } else if (i % 5 == 0) {
        assert_int_equal(cas(fx, 4, (uint64_t)i, "c", "never", v, false),
                         SHOAL__STATUS__STATUS_COMPARE_FAILED);
    } else if (i % 7 == 0) {
        char ops[128];
        snprintf(ops, sizeof ops, "put %s %s;del %s;put %s x%d", k, v, k, k, i);
        assert_int_equal(batch(fx, 3, (uint64_t)i, ops), 0);
    } else {
        size_t len = (size_t)(i * 7919 % 97) * (size_t)big + 1;
        char *val = malloc(len + 1);
        memset(val, 'a' + i % 26, len);
        val[len] = 0;
        assert_int_equal(put(fx, 3, (uint64_t)i, k, val), 0);
        free(val);
    }
}

/* A crash (the engine's files as a killed process leaves them: the applied index stored
 * up to 63 entries back) then a restart: the refill covers the log up to the stored index,
 * the entries after it are applied again (skipped by their sessions) and their changes
 * still come back, retries and failed compares excepted. With n entries past the window's
 * bounds (big: bytes), the ring drops what it dropped live. */
static void crash_and_compare(int n, int big)
{
    fixture_t live = {.keep_log = true}, crashed = {0};
    char name[64], copy[64];
    snprintf(name, sizeof name, "live-%d-%d", n, big);
    snprintf(copy, sizeof copy, "crashed-%d-%d", n, big);
    fx_open(&live, name);
    assert_int_equal(fsm_group_refill(live.fg, NULL, 0, 0, 0, 0), 0);
    for (int i = 1; i <= n; i++)
        replay_entry(&live, i, big);
    zactor_destroy(&live.fsm); /* killed: the applied index is not stored at the end */
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "cp -r %s/%s %s/%s", dir, name, dir, copy);
    assert_int_equal(system(cmd), 0);
    fx_start(&live);
    uint64_t from = window_from(&live);
    assert_true(n < 4096 ? from == 0 : from > 0); /* the ring dropped the oldest */
    char *want = dump_changes(&live, from, 0);
    crashed.keep_log = true;
    crashed.log = live.log;
    crashed.n_log = live.n_log;
    fx_reopen_refill(&crashed, copy, 0);
    assert_true(crashed.index < (uint64_t)n); /* some entries are applied again */
    replay_log(&crashed);
    assert_int_equal(window_from(&crashed), from);
    char *got = dump_changes(&crashed, from, 0);
    assert_string_equal(got, want);
    free(got);
    /* and once more from a clean stop (the exact applied index stored) */
    fx_close(&crashed);
    fx_reopen_refill(&crashed, copy, 0);
    assert_int_equal(crashed.index, n);
    assert_int_equal(window_from(&crashed), from);
    got = dump_changes(&crashed, from, 0);
    assert_string_equal(got, want);
    free(got);
    free(want);
    fx_close(&crashed);
    fx_close(&live);
    log_free(&live);
}

static void test_window_refill_after_crash(void **state)
{
    crash_and_compare(200, 0);
}

static void test_window_refill_bounds(void **state)
{
    crash_and_compare(6000, 0);   /* more changes than the window holds */
    crash_and_compare(6000, 200); /* values up to 19 KB: the 4 MiB cap first */
}

/* An engine written by a version that marked no skipped entry: nothing it applied comes
 * back (a retry would look like a change), the window starts after the log's last entry. */
static void test_window_refill_old_engine(void **state)
{
    fixture_t fx = {.keep_log = true};
    fx_open(&fx, "old");
    assert_int_equal(put(&fx, 1, 1, "a", "1"), 0);
    assert_int_equal(put(&fx, 1, 1, "a", "1"), 0); /* a retry: marked, but who knows */
    fx_close(&fx);
    fx_reopen_refill(&fx, "old", 0);
    char *got = dump_changes(&fx, 1, 0);
    assert_string_equal(got, "GONE\n");
    free(got);
    got = dump_changes(&fx, 2, 0);
    assert_string_equal(got, "");
    free(got);
    assert_int_equal(put(&fx, 1, 2, "a", "2"), 0);
    fx_close(&fx);
    fx_reopen_refill(&fx, "old", 0); /* the next start knows the marks from then on */
    got = dump_changes(&fx, 2, 0);
    assert_string_equal(got, "3 0/1 put a=2\n");
    free(got);
    fx_close(&fx);
    log_free(&fx);
}

/* The marks of skipped entries that a durable snapshot mark cut from the log are deleted
 * at the next mark (and at an open, below the log's mark); later ones stay. A refill from
 * before the cut, which no node does, shows which are gone: their entries come back as
 * the changes they did not make. */
static void test_window_marks_forgotten(void **state)
{
    fixture_t fx = {.keep_log = true};
    fx_open(&fx, "gc");
    assert_int_equal(fsm_group_refill(fx.fg, NULL, 0, 0, 0, 0), 0);
    assert_int_equal(put(&fx, 1, 1, "a", "1"), 0);
    assert_int_equal(cas(&fx, 2, 1, "a", "wrong", "x", false),
                     SHOAL__STATUS__STATUS_COMPARE_FAILED);
    assert_int_equal(put(&fx, 1, 2, "a", "2"), 0);
    assert_int_equal(cas(&fx, 2, 2, "a", "wrong", "y", false),
                     SHOAL__STATUS__STATUS_COMPARE_FAILED);
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_SNAPSHOT;
    job->mark_only = true;
    job->log_mark = 2; /* the log holds entries 3 and 4 only */
    run(&fx, job);
    assert_int_equal(job->rc, 0);
    fsm_job_destroy(&job);
    fx_close(&fx);
    fx_reopen_refill(&fx, "gc", 2);
    char *got = dump_changes(&fx, 2, 0);
    assert_string_equal(got, "3 0/1 put a=2\n");
    free(got);
    fx_close(&fx);
    fx_reopen_refill(&fx, "gc", 0);
    got = dump_changes(&fx, 0, 0);
    assert_string_equal(got, "1 0/1 put a=1\n2 0/1 put a=x\n3 0/1 put a=2\n");
    free(got);
    fx_close(&fx);
    fx_reopen_refill(&fx, "gc", 4); /* the open forgets what its log's mark cut */
    fx_close(&fx);
    fx_reopen_refill(&fx, "gc", 0);
    got = dump_changes(&fx, 0, 0);
    assert_string_equal(got, "1 0/1 put a=1\n2 0/1 put a=x\n3 0/1 put a=2\n4 0/1 put a=y\n");
    free(got);
    fx_close(&fx);
    log_free(&fx);
}

/* A split target starts with its source's sessions, at the source's indexes: a retry of
 * a write the source applied is a retry here too, not this group's entry applied again. */
static void test_window_foreign_session(void **state)
{
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/tgt", dir);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = path;
    lsm_t *lsm = NULL;
    assert_int_equal(lsm_open(&o, &lsm, err, sizeof err), 0);
    uint8_t k[9] = {KEY_SESSION, 0, 0, 0, 0, 0, 0, 0, 7}, v[20] = {9}; /* client 7: seq 9 */
    v[12] = 0xf4, v[13] = 0x01; /* applied at the source's index 500 */
    uint64_t base = 1;
    assert_int_equal(lsm_put(lsm, NULL, k, sizeof k, v, sizeof v), 0);
    assert_int_equal(lsm_put(lsm, NULL, KEY_APPLIED, strlen(KEY_APPLIED), &base, 8), 0);
    lsm_close(&lsm);
    fixture_t fx = {.keep_log = true};
    Shoal__WriteCommand none = SHOAL__WRITE_COMMAND__INIT;
    fsm_job_t *job = apply_job(&fx, &none); /* entry 1: the base, before its first entry */
    fsm_job_destroy(&job);
    fx_reopen_refill(&fx, "tgt", 0);
    assert_int_equal(put(&fx, 7, 9, "x", "retried"), 0);
    assert_int_equal(put(&fx, 7, 10, "x", "new"), 0);
    char *got = dump_changes(&fx, 1, 0);
    assert_string_equal(got, "3 0/1 put x=new\n");
    free(got);
    fx_close(&fx);
    fx_reopen_refill(&fx, "tgt", 1);
    got = dump_changes(&fx, 1, 0);
    assert_string_equal(got, "3 0/1 put x=new\n");
    free(got);
    fx_close(&fx);
    log_free(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exactly_once_and_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_cas_retry_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_and_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_target_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_replays_idempotently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_fences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_mark_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_refill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_refill_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_refill_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_refill_old_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_marks_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_foreign_session, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
