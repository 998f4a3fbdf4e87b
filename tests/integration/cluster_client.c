/* cluster_client.c - libshoal against a real local cluster (3 nodes, 4 shards, 3
 * replicas started with `shoalctl cluster up`): every operation, CAS races between many
 * clients (exactly one wins; counters incremented by CAS lose nothing), a write retried
 * with the same client id and seq applied once, a watch that sees every change once and in
 * index order per shard, a node killed (SIGKILL) while clients write with no acknowledged
 * write lost, and a broker restart under a waiting client. Needs SHOAL_BUILD_DIR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <czmq.h>
#include <netinet/in.h>

#include "cluster_proc.h"
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/client_internal.h"
#include "proto/codec.h"

static char dir[256], ctl[512], broker_ep[64];
static int base;

static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static pid_t reaper;

/* A child that stops the cluster if this test process dies without its teardown (an
 * assertion abort, a sanitizer report): no test leaves processes behind. */
static void start_reaper(void)
{
    pid_t parent = getpid();
    reaper = fork();
    if (reaper != 0)
        return;
    setsid();
    while (getppid() == parent)
        sleep(1);
    sh("%s cluster down --dir %s >/dev/null 2>&1", ctl, dir);
    _exit(0);
}

static int setup(void **state)
{
    const char *build = getenv("SHOAL_BUILD_DIR");
    if (!build) {
        fprintf(stderr, "set SHOAL_BUILD_DIR\n");
        return -1;
    }
    snprintf(ctl, sizeof ctl, "%s/tools/shoalctl", build);
    snprintf(dir, sizeof dir, "/tmp/shoal-client-test.%d", (int)getpid());
    base = cluster_pick_base(5, 31); /* ports_lib.sh: this test's range */
    snprintf(broker_ep, sizeof broker_ep, "tcp://127.0.0.1:%d", base);
    int rc = sh("%s cluster up --dir %s --nodes 3 --shards 4 --replicas 3 --base-port %d "
                "--timeout 60000 >/dev/null",
                ctl, dir, base);
    if (rc != 0)
        fprintf(stderr, "cluster up failed (%d); logs in %s/logs\n", rc, dir);
    start_reaper();
    return rc;
}

static int teardown(void **state)
{
    sh("%s cluster down --dir %s >/dev/null 2>&1", ctl, dir);
    if (reaper > 0) {
        kill(reaper, SIGKILL);
        waitpid(reaper, NULL, 0);
    }
    if (!getenv("KEEP_DIR"))
        sh("rm -rf %s", dir);
    return 0;
}

static shoal_t *client(void)
{
    shoal_t *c = shoal_connect(broker_ep);
    assert_non_null(c);
    shoal_set_timeout(c, 10000);
    return c;
}

static void test_every_operation(void **state)
{
    shoal_t *c = client();
    shoal_result_t r;
    assert_int_equal(shoal_put(c, "op/a", 4, "1", 1, &r), SHOAL_STATUS_OK);
    assert_true(r.index > 0);
    shoal_result_clear(&r);
    assert_int_equal(shoal_get(c, "op/a", 4, false, &r), SHOAL_STATUS_OK);
    assert_true(r.found);
    assert_memory_equal(r.value, "1", 1);
    shoal_result_clear(&r);
    /* a stale read may come from a follower that has not applied the put yet */
    int st = shoal_get(c, "op/a", 4, true, &r);
    assert_true(st == SHOAL_STATUS_OK || st == SHOAL_STATUS_NOT_FOUND);
    shoal_result_clear(&r);
    assert_int_equal(shoal_cas(c, "op/a", 4, "1", 1, false, "2", 1, &r), SHOAL_STATUS_OK);
    shoal_result_clear(&r);
    assert_int_equal(shoal_cas(c, "op/a", 4, "1", 1, false, "3", 1, &r),
                     SHOAL_STATUS_COMPARE_FAILED);
    assert_true(r.found);
    assert_memory_equal(r.value, "2", 1); /* the current value comes back */
    shoal_result_clear(&r);
    assert_int_equal(shoal_cas(c, "op/b", 4, NULL, 0, true, "x", 1, NULL), SHOAL_STATUS_OK);
    assert_int_equal(shoal_cas(c, "op/b", 4, NULL, 0, true, "y", 1, NULL),
                     SHOAL_STATUS_COMPARE_FAILED);
    assert_int_equal(shoal_del(c, "op/b", 4, NULL), SHOAL_STATUS_OK);
    assert_int_equal(shoal_get(c, "op/b", 4, false, NULL), SHOAL_STATUS_NOT_FOUND);
    /* a batch over many shards, then scans merged across them */
    shoal_batch_op_t ops[40];
    char keys[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof keys[i], "scan/%02d", i);
        ops[i] = (shoal_batch_op_t){false, keys[i], strlen(keys[i]), keys[i], strlen(keys[i])};
    }
    assert_int_equal(shoal_batch(c, ops, 40, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.index, 0); /* several shards: no one (shard, index) */
    shoal_result_clear(&r);
    /* a batch on one shard says where it applied, as a put does: right after the put */
    assert_int_equal(shoal_put(c, "one/k", 5, "1", 1, &r), SHOAL_STATUS_OK);
    uint32_t put_shard = r.shard;
    uint64_t put_index = r.index;
    shoal_result_clear(&r);
    shoal_batch_op_t one[2] = {{false, "one/k", 5, "2", 1}, {true, "one/k", 5, NULL, 0}};
    assert_int_equal(shoal_batch(c, one, 2, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.shard, put_shard);
    assert_true(r.index > put_index);
    shoal_result_clear(&r);
    assert_int_equal(shoal_scan(c, "scan/", 5, NULL, 0, NULL, 0, 0, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.n_kvs, 40);
    assert_false(r.more);
    for (size_t i = 0; i < r.n_kvs; i++)
        assert_string_equal((char *)r.kvs[i].key, keys[i]);
    shoal_result_clear(&r);
    assert_int_equal(shoal_scan(c, "scan/", 5, NULL, 0, NULL, 0, 7, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.n_kvs, 7);
    assert_true(r.more);
    assert_string_equal((char *)r.kvs[6].key, "scan/06");
    shoal_result_clear(&r);
    assert_int_equal(shoal_scan(c, NULL, 0, "scan/10", 7, "scan/15", 7, 0, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.n_kvs, 5);
    assert_string_equal((char *)r.kvs[0].key, "scan/10");
    shoal_result_clear(&r);
    shoal_destroy(&c);
}

/* A batch whose writes to one shard pass what a node takes in one Raft entry
 * (SHOAL_NODE_MAX_BATCH_BYTES, 4 MiB) is refused whole with TOO_LARGE naming that limit,
 * and none of its keys is written on any shard: the broker checks every shard's part
 * before it sends one. (It used to send them all: the node refused the big part as "key
 * or value too large" and the parts for the other shards applied.) Accepting exactly the
 * limit is tested against fake nodes (test_client_broker). */
static void test_batch_over_shard_limit(void **state)
{
    shoal_t *c = client();
    enum { N_BIG = SHOAL_NODE_MAX_BATCH_BYTES / SHOAL_MAX_VALUE + 1, N_SMALL = 16 };
    const char *big = "lim/big";                 /* every big op on one key: one shard's part */
    size_t vlen = SHOAL_MAX_VALUE - strlen(big); /* a big op is 1 MiB, key and value */
    char *value = malloc(vlen);
    assert_non_null(value);
    memset(value, 'x', vlen);
    shoal_batch_op_t ops[N_SMALL + N_BIG];
    char small[N_SMALL][16];
    for (int i = 0; i < N_SMALL; i++) { /* spread over the shards */
        snprintf(small[i], sizeof small[i], "lim/small/%02d", i);
        ops[i] = (shoal_batch_op_t){false, small[i], strlen(small[i]), "s", 1};
    }
    for (int i = 0; i < N_BIG; i++)
        ops[N_SMALL + i] = (shoal_batch_op_t){false, big, strlen(big), value, vlen};
    shoal_result_t r;
    assert_int_equal(shoal_batch(c, ops, N_SMALL + N_BIG, &r), SHOAL_STATUS_TOO_LARGE);
    for (int i = 0; i < N_SMALL; i++)
        assert_int_equal(shoal_get(c, small[i], strlen(small[i]), false, NULL),
                         SHOAL_STATUS_NOT_FOUND);
    assert_int_equal(shoal_get(c, big, strlen(big), false, NULL), SHOAL_STATUS_NOT_FOUND);
    char limit[64];
    snprintf(limit, sizeof limit, "over the limit of %u per shard", SHOAL_NODE_MAX_BATCH_BYTES);
    if (!strstr(r.error, limit) || !strstr(r.error, "a batch's writes to shard"))
        fail_msg("TOO_LARGE without naming the batch limit: %s", r.error);
    shoal_result_clear(&r);
    /* the same batch without the big part applies */
    assert_int_equal(shoal_batch(c, ops, N_SMALL, &r), SHOAL_STATUS_OK);
    shoal_result_clear(&r);
    assert_int_equal(shoal_get(c, small[0], strlen(small[0]), false, NULL), SHOAL_STATUS_OK);
    free(value);
    shoal_destroy(&c);
}

#define RACERS 12
typedef struct {
    int id;
    const char *key;
    int status;
    int increments;
} racer_t;

static void *race_absent(void *arg)
{
    racer_t *rc = arg;
    shoal_t *c = client();
    char v[16];
    snprintf(v, sizeof v, "winner-%d", rc->id);
    rc->status = shoal_cas(c, rc->key, strlen(rc->key), NULL, 0, true, v, strlen(v), NULL);
    shoal_destroy(&c);
    return NULL;
}

static void *race_increment(void *arg)
{
    racer_t *rc = arg;
    shoal_t *c = client();
    while (rc->increments < 10) {
        shoal_result_t r;
        if (shoal_get(c, rc->key, strlen(rc->key), false, &r) != SHOAL_STATUS_OK) {
            shoal_result_clear(&r);
            continue;
        }
        char next[32];
        snprintf(next, sizeof next, "%ld", strtol((char *)r.value, NULL, 10) + 1);
        int st = shoal_cas(c, rc->key, strlen(rc->key), r.value, r.value_len, false, next,
                           strlen(next), NULL);
        shoal_result_clear(&r);
        if (st == SHOAL_STATUS_OK)
            rc->increments++;
    }
    shoal_destroy(&c);
    return NULL;
}

static void test_cas_races(void **state)
{
    for (int round = 0; round < 3; round++) {
        char key[32];
        snprintf(key, sizeof key, "race/%d", round);
        pthread_t t[RACERS];
        racer_t rc[RACERS];
        for (int i = 0; i < RACERS; i++) {
            rc[i] = (racer_t){i, key, -1, 0};
            pthread_create(&t[i], NULL, race_absent, &rc[i]);
        }
        int wins = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(t[i], NULL);
            if (rc[i].status == SHOAL_STATUS_OK) {
                wins++;
                winner = i;
            } else
                assert_int_equal(rc[i].status, SHOAL_STATUS_COMPARE_FAILED);
        }
        assert_int_equal(wins, 1);
        shoal_t *c = client();
        shoal_result_t r;
        assert_int_equal(shoal_get(c, key, strlen(key), false, &r), SHOAL_STATUS_OK);
        char want[32];
        snprintf(want, sizeof want, "winner-%d", winner);
        assert_string_equal((char *)r.value, want);
        shoal_result_clear(&r);
        shoal_destroy(&c);
    }
    /* counters by get + cas: every successful swap is one increment, none lost */
    shoal_t *c = client();
    assert_int_equal(shoal_put(c, "race/counter", 12, "0", 1, NULL), SHOAL_STATUS_OK);
    pthread_t t[8];
    racer_t rc[8];
    for (int i = 0; i < 8; i++) {
        rc[i] = (racer_t){i, "race/counter", 0, 0};
        pthread_create(&t[i], NULL, race_increment, &rc[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    shoal_result_t r;
    assert_int_equal(shoal_get(c, "race/counter", 12, false, &r), SHOAL_STATUS_OK);
    assert_string_equal((char *)r.value, "80");
    shoal_result_clear(&r);
    shoal_destroy(&c);
}

/* Sends one encoded request on a raw DEALER and returns the answer's status. */
static int raw_call(zsock_t *s, const shoal_op_t *op, uint64_t cid, uint64_t seq, uint64_t rid)
{
    size_t len;
    uint8_t *buf = shoal_op_encode(op, cid, seq, rid, 5000, &len);
    zmq_send(zsock_resolve(s), buf, len, 0);
    free(buf);
    zframe_t *f = zframe_recv(s);
    assert_non_null(f);
    Shoal__Frame *fr = NULL;
    char err[128];
    assert_int_equal(shoal_frame_decode(zframe_data(f), zframe_size(f), &fr, err, sizeof err), 0);
    assert_int_equal(fr->client_resp->request_id, rid);
    int st = fr->client_resp->status;
    shoal_frame_free(&fr);
    zframe_destroy(&f);
    return st;
}

static void test_retried_write_applied_once(void **state)
{
    zsock_t *s = zsock_new_dealer(broker_ep);
    zsock_set_rcvtimeo(s, 10000);
    uint64_t cid = ((uint64_t)getpid() << 32 | 0xabcd) << 16;
    shoal_op_t first = {
        .type = SHOAL_OP_PUT, .key = "once", .key_len = 4, .value = "first", .value_len = 5};
    shoal_op_t again = first;
    again.value = "second";
    again.value_len = 6;
    assert_int_equal(raw_call(s, &first, cid, 1, 1), SHOAL_STATUS_OK);
    /* A retry carries the same (client id, seq): answered, not applied again. */
    assert_int_equal(raw_call(s, &again, cid, 1, 2), SHOAL_STATUS_OK);
    shoal_t *c = client();
    shoal_result_t r;
    assert_int_equal(shoal_get(c, "once", 4, false, &r), SHOAL_STATUS_OK);
    assert_string_equal((char *)r.value, "first");
    shoal_result_clear(&r);
    /* The next seq applies. */
    assert_int_equal(raw_call(s, &again, cid, 2, 3), SHOAL_STATUS_OK);
    assert_int_equal(shoal_get(c, "once", 4, false, &r), SHOAL_STATUS_OK);
    assert_string_equal((char *)r.value, "second");
    shoal_result_clear(&r);
    /* An increment by CAS retried: applied once, the retry answered from the session. */
    shoal_op_t cas = {.type = SHOAL_OP_CAS,
                      .key = "once",
                      .key_len = 4,
                      .expected = "second",
                      .expected_len = 6,
                      .value = "third",
                      .value_len = 5};
    assert_int_equal(raw_call(s, &cas, cid, 3, 4), SHOAL_STATUS_OK);
    assert_int_equal(raw_call(s, &cas, cid, 3, 5), SHOAL_STATUS_OK);
    shoal_destroy(&c);
    zsock_destroy(&s);
}

#define WATCH_N 300
typedef struct {
    int done;
} count_t;

static void count_done(shoal_result_t *r, void *arg)
{
    ((count_t *)arg)->done += r->status == SHOAL_STATUS_OK;
}

/* The watch's subscription reaches the broker some time after connect; a change made
 * before that is not delivered. Put a warm-up key until its change arrives, then drain. */
static void wait_subscribed(shoal_t *c, shoal_watch_t *w)
{
    shoal_watch_event_t ev;
    bool seen = false;
    for (int i = 0; i < 50 && !seen; i++) {
        assert_int_equal(shoal_put(c, "watchwarm", 9, "x", 1, NULL), SHOAL_STATUS_OK);
        while (!seen && shoal_watch_next(w, &ev, 200) == 1)
            seen = ev.kind == SHOAL_WATCH_CHANGE && ev.change.key_len == 9 &&
                   memcmp(ev.change.key, "watchwarm", 9) == 0;
    }
    assert_true(seen);
    while (shoal_watch_next(w, &ev, 300) == 1)
        ;
}

static void test_watch_sees_every_change_in_order(void **state)
{
    shoal_t *c = client();
    shoal_watch_t *w = shoal_watch_new(c, NULL, "", 0);
    assert_non_null(w);
    wait_subscribed(c, w);
    count_t cnt = {0};
    char key[32];
    for (int i = 0; i < WATCH_N; i++) {
        snprintf(key, sizeof key, "watch/%03d", i);
        shoal_op_t op = {.type = SHOAL_OP_PUT,
                         .key = key,
                         .key_len = strlen(key),
                         .value = key,
                         .value_len = strlen(key)};
        assert_int_equal(shoal_submit(c, &op, count_done, &cnt), 0);
    }
    while (shoal_inflight(c))
        shoal_pump(c, 50);
    assert_int_equal(cnt.done, WATCH_N);
    static bool seen[WATCH_N];
    uint64_t last[8] = {0};
    int got = 0;
    int64_t until = zclock_mono() + 15000;
    while (got < WATCH_N && zclock_mono() < until) {
        shoal_watch_event_t ev;
        if (shoal_watch_next(w, &ev, 500) != 1 || ev.kind != SHOAL_WATCH_CHANGE)
            continue;
        if (strncmp((char *)ev.change.key, "watch/", 6) != 0)
            continue;
        int i = atoi((char *)ev.change.key + 6);
        assert_true(i >= 0 && i < WATCH_N);
        assert_false(seen[i]); /* once */
        seen[i] = true;
        got++;
        assert_true(ev.change.shard < 8);
        assert_true(ev.change.index > last[ev.change.shard]); /* in order per shard */
        last[ev.change.shard] = ev.change.index;
    }
    assert_int_equal(got, WATCH_N);
    shoal_watch_destroy(&w);
    shoal_destroy(&c);
}

typedef struct {
    uint8_t *acked;
    int errors;
} writer_t;

typedef struct {
    writer_t *w;
    int key;
} wreq_t;

static void write_done(shoal_result_t *r, void *arg)
{
    wreq_t *q = arg;
    if (r->status == SHOAL_STATUS_OK)
        q->w->acked[q->key] = 1;
    else
        q->w->errors++;
    free(q);
}

#define KILL_KEYS 200000

typedef struct {
    int lost, checked;
} check_t;

typedef struct {
    check_t *c;
    int key;
} ckreq_t;

static void check_done(shoal_result_t *r, void *arg)
{
    ckreq_t *q = arg;
    char val[32];
    snprintf(val, sizeof val, "v%d", q->key);
    q->c->checked++;
    if (r->status != SHOAL_STATUS_OK || strcmp((char *)r->value, val) != 0) {
        if (q->c->lost++ < 5)
            fprintf(stderr, "acknowledged kill/%06d lost: %s\n", q->key,
                    shoal_status_str(r->status));
    }
    free(q);
}

static void test_node_kill_loses_no_acked_write(void **state)
{
    shoal_t *c = client();
    shoal_set_timeout(c, 8000);
    writer_t w = {calloc(KILL_KEYS, 1), 0};
    int next = 0;
    int64_t start = zclock_mono(), killed_at = 0;
    while (zclock_mono() - start < 6000 && next < KILL_KEYS) {
        while (shoal_inflight(c) < 64 && next < KILL_KEYS) {
            char key[32], val[32];
            snprintf(key, sizeof key, "kill/%06d", next);
            snprintf(val, sizeof val, "v%d", next);
            wreq_t *q = malloc(sizeof *q);
            *q = (wreq_t){&w, next++};
            shoal_op_t op = {.type = SHOAL_OP_PUT,
                             .key = key,
                             .key_len = strlen(key),
                             .value = val,
                             .value_len = strlen(val)};
            assert_int_equal(shoal_submit(c, &op, write_done, q), 0);
        }
        shoal_pump(c, 10);
        if (!killed_at && zclock_mono() - start > 1500) {
            assert_int_equal(sh("%s cluster stop-node --dir %s 0 --kill >/dev/null", ctl, dir), 0);
            killed_at = zclock_mono();
        }
    }
    while (shoal_inflight(c))
        shoal_pump(c, 50);
    /* Read every acknowledged key back (pipelined, linearizable): none may be missing. */
    int acked = 0;
    check_t chk = {0, 0};
    for (int i = 0; i < next; i++) {
        if (!w.acked[i])
            continue;
        acked++;
        char key[32];
        snprintf(key, sizeof key, "kill/%06d", i);
        ckreq_t *q = malloc(sizeof *q);
        *q = (ckreq_t){&chk, i};
        shoal_op_t op = {.type = SHOAL_OP_GET, .key = key, .key_len = strlen(key)};
        while (shoal_inflight(c) >= 256)
            shoal_pump(c, 10);
        assert_int_equal(shoal_submit(c, &op, check_done, q), 0);
    }
    while (shoal_inflight(c))
        shoal_pump(c, 50);
    int lost = chk.lost;
    assert_int_equal(chk.checked, acked);
    fprintf(stderr, "node kill: %d writes sent, %d acknowledged, %d errors, %d lost\n", next, acked,
            w.errors, lost);
    assert_true(acked > 100);
    assert_int_equal(lost, 0);
    sh("%s cluster start-node --dir %s 0 >/dev/null", ctl, dir);
    free(w.acked);
    shoal_destroy(&c);
}

static void test_broker_restart(void **state)
{
    char pidf[300];
    snprintf(pidf, sizeof pidf, "%s/pids/broker.pid", dir);
    FILE *f = fopen(pidf, "r");
    assert_non_null(f);
    int pid = 0;
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    shoal_t *c = client();
    assert_int_equal(shoal_put(c, "br/before", 9, "1", 1, NULL), SHOAL_STATUS_OK);
    kill(pid, SIGKILL);
    zclock_sleep(200);
    /* Broker down: a request waits (libshoal resends) and succeeds once a broker is back. */
    assert_int_equal(sh("setsid %s/broker/shoal-broker --config %s/broker.cfg >>%s/logs/broker.log "
                        "2>&1 </dev/null & echo $! > %s",
                        getenv("SHOAL_BUILD_DIR"), dir, dir, pidf),
                     0);
    shoal_result_t r;
    assert_int_equal(shoal_get(c, "br/before", 9, false, &r), SHOAL_STATUS_OK);
    shoal_result_clear(&r);
    assert_int_equal(shoal_put(c, "br/after", 8, "2", 1, NULL), SHOAL_STATUS_OK);
    shoal_destroy(&c);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_operation),
        cmocka_unit_test(test_batch_over_shard_limit),
        cmocka_unit_test(test_cas_races),
        cmocka_unit_test(test_retried_write_applied_once),
        cmocka_unit_test(test_watch_sees_every_change_in_order),
        cmocka_unit_test(test_broker_restart),
        cmocka_unit_test(test_node_kill_loses_no_acked_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
