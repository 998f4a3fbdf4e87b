/* test_node_fsm.c - the state machine actor (actors/fsm_actor.c) over a real storage
 * engine: writes apply and answer, a retried (client_id, seq) is applied once, CAS
 * compares, scans honour prefix/start/end/limit, the change window answers catch-up
 * requests and WINDOW_GONE, and a snapshot exported by the compactor installs into another
 * replica with the same data, sessions and applied index. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exactly_once_and_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_and_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_replays_idempotently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_streamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_fences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_mark_is_durable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
