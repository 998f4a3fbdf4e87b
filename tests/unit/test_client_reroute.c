/* test_client_reroute.c - libshoal retrying a scan or batch whole when the broker ended it
 * because add-shard changed the shard map while it was divided (SHOAL_ERR_MAP_CHANGED,
 * broker/reroute.c). The "broker" is a ROUTER socket in this thread that answers each
 * request as the test scripts it and records what it received, so the tests see that a
 * retry is the same request (same request id, client id and seq: a batch stays
 * exactly-once through the shards' sessions), that other answers are not retried, and that
 * the retries stop within the request's deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "broker/shoal.h"
#include "proto/codec.h"

#define CHANGED SHOAL_ERR_MAP_CHANGED " (add-shard); retry"

typedef struct {
    zsock_t *router;
    shoal_t *client;
    int seen;                     /* requests received */
    uint64_t rid, client_id, seq; /* of the first one */
    bool same;                    /* every later one carried the same three */
    bool done;
    shoal_result_t res;
} rig_t;

static void rig_up(rig_t *g, int timeout_ms)
{
    memset(g, 0, sizeof *g);
    g->router = zsock_new_router("tcp://127.0.0.1:*");
    assert_non_null(g->router);
    g->client = shoal_connect(zsock_endpoint(g->router));
    assert_non_null(g->client);
    shoal_set_timeout(g->client, timeout_ms);
    g->same = true;
}

static void rig_down(rig_t *g)
{
    shoal_result_clear(&g->res);
    shoal_destroy(&g->client);
    zsock_destroy(&g->router);
}

static void on_done(shoal_result_t *r, void *arg)
{
    rig_t *g = arg;
    g->done = true;
    g->res = *r;
    memset(r, 0, sizeof *r); /* the rig owns the buffers now */
}

/* Answers the next request: OK once `fail` answers with (status, error) were given. */
static void serve_one(rig_t *g, int fail, int status, const char *error)
{
    zmsg_t *m = zmsg_recv(g->router);
    assert_non_null(m);
    zframe_t *id = zmsg_pop(m), *body = zmsg_pop(m);
    Shoal__Frame *f = NULL;
    char err[256];
    assert_int_equal(shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err),
                     0);
    assert_int_equal(f->body_case, SHOAL__FRAME__BODY_CLIENT_REQ);
    const Shoal__ClientRequest *q = f->client_req;
    if (g->seen++ == 0) {
        g->rid = q->request_id;
        g->client_id = q->client_id;
        g->seq = q->seq;
    } else {
        g->same &= q->request_id == g->rid && q->client_id == g->client_id && q->seq == g->seq;
    }
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.request_id = q->request_id;
    r.status = g->seen > fail ? SHOAL__STATUS__STATUS_OK : (Shoal__Status)status;
    r.error = (char *)(g->seen > fail ? "" : error);
    Shoal__Frame out = SHOAL__FRAME__INIT;
    out.version = 1;
    out.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    out.client_resp = &r;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&out, &len);
    zframe_send(&id, g->router, ZFRAME_MORE);
    zmq_send(zsock_resolve(g->router), buf, len, 0);
    free(buf);
    shoal_frame_free(&f);
    zframe_destroy(&body);
    zmsg_destroy(&m);
}

/* Pumps the client and serves the router until the request completes. */
static void run(rig_t *g, const shoal_op_t *op, int fail, int status, const char *error)
{
    assert_int_equal(shoal_submit(g->client, op, on_done, g), 0);
    zpoller_t *p = zpoller_new(g->router, NULL);
    while (!g->done) {
        shoal_pump(g->client, 5);
        if (zpoller_wait(p, 5))
            serve_one(g, fail, status, error);
    }
    zpoller_destroy(&p);
}

static const shoal_op_t scan_op = {.type = SHOAL_OP_SCAN, .prefix = "m", .prefix_len = 1};

static void test_scan_retried_whole(void **state)
{
    (void)state;
    rig_t g;
    rig_up(&g, 5000);
    run(&g, &scan_op, 3, SHOAL_STATUS_UNAVAILABLE, CHANGED);
    assert_int_equal(g.res.status, SHOAL_STATUS_OK);
    assert_int_equal(g.seen, 4); /* three answers "map changed", then served */
    assert_true(g.same);
    rig_down(&g);
}

static void test_batch_retried_same_seq(void **state)
{
    (void)state;
    shoal_batch_op_t ops[2] = {{false, "a", 1, "1", 1}, {false, "b", 1, "2", 1}};
    shoal_op_t op = {.type = SHOAL_OP_BATCH, .ops = ops, .n_ops = 2};
    rig_t g;
    rig_up(&g, 5000);
    run(&g, &op, 2, SHOAL_STATUS_UNAVAILABLE, CHANGED);
    assert_int_equal(g.res.status, SHOAL_STATUS_OK);
    assert_int_equal(g.seen, 3);
    assert_true(g.seq > 0); /* a write: sessioned by (client id, seq)... */
    assert_true(g.same);    /* ...and every retry carried the same pair */
    rig_down(&g);
}

static void test_other_answers_not_retried(void **state)
{
    (void)state;
    rig_t g;
    rig_up(&g, 5000); /* an UNAVAILABLE that is not a map change: the broker retried already */
    run(&g, &scan_op, 1, SHOAL_STATUS_UNAVAILABLE, "shard 1 has no leader");
    assert_int_equal(g.res.status, SHOAL_STATUS_UNAVAILABLE);
    assert_int_equal(g.seen, 1);
    rig_down(&g);
    /* a single-key request is re-routed by the broker itself, never resent whole */
    shoal_op_t put = {.type = SHOAL_OP_PUT, .key = "k", .key_len = 1, .value = "v", .value_len = 1};
    rig_up(&g, 5000);
    run(&g, &put, 1, SHOAL_STATUS_UNAVAILABLE, CHANGED);
    assert_int_equal(g.res.status, SHOAL_STATUS_UNAVAILABLE);
    assert_int_equal(g.seen, 1);
    rig_down(&g);
}

static void test_retries_end_within_deadline(void **state)
{
    (void)state;
    rig_t g;
    rig_up(&g, 300); /* the map changes forever: the caller gets the broker's answer */
    run(&g, &scan_op, 1000, SHOAL_STATUS_UNAVAILABLE, CHANGED);
    assert_int_equal(g.res.status, SHOAL_STATUS_UNAVAILABLE);
    assert_non_null(strstr(g.res.error, SHOAL_ERR_MAP_CHANGED));
    assert_true(g.seen > 1 && g.seen <= 21); /* retried, at most SHOAL_REROUTE_MAX times */
    assert_true(g.same);
    rig_down(&g);
}

/* Takes the next request from the router (waiting up to ms); its identity and request id. */
static zframe_t *take_request(rig_t *g, int ms, uint64_t *rid)
{
    zpoller_t *p = zpoller_new(g->router, NULL);
    int64_t until = zclock_mono() + ms;
    while (!zpoller_wait(p, 5) && zclock_mono() < until)
        shoal_pump(g->client, 5);
    zpoller_destroy(&p);
    zmsg_t *m = zmsg_recv_nowait(g->router);
    assert_non_null(m);
    zframe_t *id = zmsg_pop(m), *body = zmsg_pop(m);
    Shoal__Frame *f = NULL;
    char err[256];
    assert_int_equal(shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err),
                     0);
    *rid = f->client_req->request_id;
    g->seen++;
    shoal_frame_free(&f);
    zframe_destroy(&body);
    zmsg_destroy(&m);
    return id;
}

static void answer(rig_t *g, zframe_t **id, uint64_t rid, int status, const char *error)
{
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.request_id = rid;
    r.status = (Shoal__Status)status;
    r.error = (char *)error;
    Shoal__Frame out = SHOAL__FRAME__INIT;
    out.version = 1;
    out.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    out.client_resp = &r;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&out, &len);
    zframe_send(id, g->router, ZFRAME_MORE);
    zmq_send(zsock_resolve(g->router), buf, len, 0);
    free(buf);
}

static void pump_for(rig_t *g, int ms)
{
    for (int64_t until = zclock_mono() + ms; zclock_mono() < until && !g->done;)
        shoal_pump(g->client, 5);
}

/* Submits op on a rig with timeout_ms, takes its first copy and its timed resend (after
 * ~5 s), and answers the resend "overloaded"; returns the first copy, unanswered. */
static zframe_t *refuse_resend(rig_t *g, const shoal_op_t *op, int timeout_ms, uint64_t *rid)
{
    rig_up(g, timeout_ms);
    assert_int_equal(shoal_submit(g->client, op, on_done, g), 0);
    uint64_t rid2;
    zframe_t *first = take_request(g, 1000, rid);
    zframe_t *copy = take_request(g, 7000, &rid2);
    assert_int_equal(*rid, rid2);
    answer(g, &copy, rid2, SHOAL_STATUS_UNAVAILABLE, "broker overloaded: 200000 requests");
    return first;
}

/* A broker takes a resend as a new request: when it refuses the resent copy (overloaded),
 * the first copy may still be applied, so the refusal must not end the write; the first
 * copy's answer does, or else the deadline, with a TIMEOUT that says it may have applied.
 * (A connected broker gets a copy after 5 s without an answer, SHOAL_RESEND_MS.) */
static void test_refused_resend_not_final(void **state)
{
    (void)state;
    shoal_op_t put = {.type = SHOAL_OP_PUT, .key = "k", .key_len = 1, .value = "v", .value_len = 1};
    rig_t g;
    uint64_t rid;
    zframe_t *first = refuse_resend(&g, &put, 12000, &rid);
    pump_for(&g, 300);
    assert_false(g.done);
    answer(&g, &first, rid, SHOAL_STATUS_OK, "");
    pump_for(&g, 1000);
    assert_true(g.done);
    assert_int_equal(g.res.status, SHOAL_STATUS_OK);
    rig_down(&g);
    /* no copy answers: TIMEOUT at the deadline, not the refusal */
    first = refuse_resend(&g, &put, 6500, &rid);
    pump_for(&g, 3000);
    assert_true(g.done);
    assert_int_equal(g.res.status, SHOAL_STATUS_TIMEOUT);
    assert_non_null(strstr(g.res.error, "may have applied"));
    zframe_destroy(&first);
    rig_down(&g);
    /* a read's copy refused is just a refused read */
    shoal_op_t get = {.type = SHOAL_OP_GET, .key = "k", .key_len = 1};
    first = refuse_resend(&g, &get, 12000, &rid);
    pump_for(&g, 300);
    assert_true(g.done);
    assert_int_equal(g.res.status, SHOAL_STATUS_UNAVAILABLE);
    zframe_destroy(&first);
    rig_down(&g);
}

/* A request its broker took and then died with is resent as soon as the connection drops
 * (to the broker back on the same endpoint here), not after SHOAL_RESEND_MS. */
static void test_resent_after_disconnect(void **state)
{
    (void)state;
    shoal_op_t put = {.type = SHOAL_OP_PUT, .key = "k", .key_len = 1, .value = "v", .value_len = 1};
    rig_t g;
    rig_up(&g, 12000);
    char ep[128];
    snprintf(ep, sizeof ep, "%s", zsock_endpoint(g.router));
    assert_int_equal(shoal_submit(g.client, &put, on_done, &g), 0);
    uint64_t rid1, rid2;
    zframe_t *first = take_request(&g, 1000, &rid1);
    zframe_destroy(&first);
    zsock_destroy(&g.router);                    /* the broker dies holding the request */
    for (int i = 0; i < 100 && !g.router; i++) { /* the port is freed asynchronously */
        g.router = zsock_new_router(ep);
        if (!g.router)
            zclock_sleep(10);
    }
    assert_non_null(g.router);
    int64_t t0 = zclock_mono();
    zframe_t *copy = take_request(&g, 4000, &rid2);
    assert_int_equal(rid1, rid2);
    assert_true(zclock_mono() - t0 < 3000);
    answer(&g, &copy, rid2, SHOAL_STATUS_OK, "");
    pump_for(&g, 1000);
    assert_true(g.done);
    assert_int_equal(g.res.status, SHOAL_STATUS_OK);
    rig_down(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_retried_whole),
        cmocka_unit_test(test_batch_retried_same_seq),
        cmocka_unit_test(test_other_answers_not_retried),
        cmocka_unit_test(test_retries_end_within_deadline),
        cmocka_unit_test(test_refused_resend_not_final),
        cmocka_unit_test(test_resent_after_disconnect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
