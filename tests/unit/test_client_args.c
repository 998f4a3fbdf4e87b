/* test_client_args.c - libshoal's answers to bad arguments: a NULL buffer with a non-zero
 * length, a NULL client, result or event, an oversized watch prefix, a tcp port outside
 * 1-65535, a shard number past 32 bits. Each must be refused (BAD_REQUEST, SHOAL_EINVAL or
 * NULL) before anything is sent, never crash or act on another shard. Also: the "too
 * large" message names the argument that is too large, and shoal_pump with a negative
 * timeout returns at once when nothing is in flight. No broker: the client points at a
 * port nobody listens on, so anything that got past the checks would time out instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <czmq.h>
#include <pthread.h>

#include "broker/shoal.h"
#include "engine/endpoint.h"

#define NOBODY "tcp://127.0.0.1:27613"

static shoal_t *client(void)
{
    shoal_t *c = shoal_connect(NOBODY);
    assert_non_null(c);
    shoal_set_timeout(c, 300);
    return c;
}

static void test_null_buffers(void **state)
{
    (void)state;
    shoal_t *c = client();
    shoal_result_t r;
    assert_int_equal(shoal_put(c, NULL, 5, "v", 1, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_non_null(strstr(r.error, "key"));
    assert_int_equal(shoal_put(c, "k", 1, NULL, 5, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_non_null(strstr(r.error, "value"));
    assert_int_equal(shoal_get(c, NULL, 3, false, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_del(c, NULL, 3, NULL), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_batch(c, NULL, 5, &r), SHOAL_STATUS_BAD_REQUEST);
    shoal_batch_op_t ops[2] = {{false, "a", 1, "x", 1}, {false, "b", 1, NULL, 7}};
    assert_int_equal(shoal_batch(c, ops, 2, &r), SHOAL_STATUS_BAD_REQUEST);
    ops[1] = (shoal_batch_op_t){true, NULL, 4, NULL, 0};
    assert_int_equal(shoal_batch(c, ops, 2, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_scan(c, NULL, 0, NULL, 5, NULL, 0, 0, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_scan(c, NULL, 3, NULL, 0, NULL, 0, 0, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_scan(c, NULL, 0, NULL, 0, NULL, 2, 0, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_cas(c, "k", 1, NULL, 5, false, "v", 1, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_non_null(strstr(r.error, "expected"));
    assert_int_equal(shoal_cas(c, "k", 1, "o", 1, false, NULL, 5, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_submit(c, NULL, NULL, NULL), SHOAL_EINVAL);
    shoal_op_t op = {.type = SHOAL_OP_PUT, .key = "k", .key_len = 1, .value_len = 9};
    assert_int_equal(shoal_submit(c, &op, NULL, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_call(c, NULL, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_inflight(c), 0); /* nothing was sent */
    shoal_destroy(&c);
}

static void test_null_client(void **state)
{
    (void)state;
    shoal_result_t r;
    char err[128] = "";
    assert_int_equal(shoal_get(NULL, "k", 1, false, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_put(NULL, "k", 1, "v", 1, NULL), SHOAL_STATUS_BAD_REQUEST);
    shoal_op_t op = {.type = SHOAL_OP_GET, .key = "k", .key_len = 1};
    assert_int_equal(shoal_submit(NULL, &op, NULL, NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_pump(NULL, 0), SHOAL_EINVAL);
    shoal_cluster_t cl;
    assert_int_equal(shoal_status(NULL, false, &cl, err, sizeof err), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_admin_compact(NULL, 1, err, sizeof err), SHOAL_STATUS_BAD_REQUEST);
    shoal_t *c = client();
    assert_int_equal(shoal_status(c, false, NULL, err, sizeof err), SHOAL_STATUS_BAD_REQUEST);
    assert_int_equal(shoal_cluster_id(c, NULL, err, sizeof err), SHOAL_STATUS_BAD_REQUEST);
    shoal_destroy(&c);
}

static void test_cas_too_large_names_expected(void **state)
{
    (void)state;
    shoal_t *c = client();
    size_t big = SHOAL_MAX_VALUE + 1;
    char *buf = calloc(1, big);
    assert_non_null(buf);
    shoal_result_t r;
    assert_int_equal(shoal_cas(c, "k", 1, buf, big, false, "v", 1, &r), SHOAL_STATUS_TOO_LARGE);
    char want[80];
    snprintf(want, sizeof want, "expected value of %zu bytes", big);
    assert_non_null(strstr(r.error, want));
    assert_int_equal(shoal_cas(c, "k", 1, "o", 1, false, buf, big, &r), SHOAL_STATUS_TOO_LARGE);
    snprintf(want, sizeof want, "value of %zu bytes", big);
    assert_true(strncmp(r.error, want, strlen(want)) == 0);
    free(buf);
    shoal_destroy(&c);
}

static void test_pump_negative_idle(void **state)
{
    (void)state;
    shoal_t *c = client();
    alarm(10); /* the old code waited forever: fail instead of hanging the suite */
    assert_int_equal(shoal_pump(c, -1), 0);
    alarm(0);
    shoal_destroy(&c);
}

static void test_connect_ports(void **state)
{
    (void)state;
    const char *bad[] = {"tcp://127.0.0.1:92536", "tcp://127.0.0.1:0", "tcp://127.0.0.1:65536",
                         "tcp://127.0.0.1:", "tcp://127.0.0.1:12x", "tcp://:5000",
                         "tcp://127.0.0.1:1234567",
                         /* lists of brokers: every entry checked, none empty, at most 8 */
                         "tcp://127.0.0.1:1,tcp://127.0.0.1:0", "tcp://127.0.0.1:1,",
                         ",tcp://127.0.0.1:1", "tcp://127.0.0.1:1,,tcp://127.0.0.1:2",
                         "inproc://a,inproc://b,inproc://c,inproc://d,inproc://e,inproc://f,"
                         "inproc://g,inproc://h,inproc://i"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        shoal_t *c = shoal_connect(bad[i]);
        if (c)
            fail_msg("shoal_connect(%s) accepted", bad[i]);
    }
    const char *good[] = {"tcp://127.0.0.1:1", "tcp://127.0.0.1:65535", "ipc:///tmp/h6-x",
                          "inproc://x", "tcp://127.0.0.1:1,tcp://127.0.0.1:2,ipc:///tmp/h6-y"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        shoal_t *c = shoal_connect(good[i]);
        if (!c)
            fail_msg("shoal_connect(%s) refused", good[i]);
        shoal_destroy(&c);
    }
}

static void test_admin_shard_range(void **state)
{
    (void)state;
    shoal_t *c = client();
    char err[160] = "";
    int64_t big = ((int64_t)1 << 32) + 1;
    assert_int_equal(shoal_admin_compact(c, big, err, sizeof err), SHOAL_STATUS_BAD_REQUEST);
    assert_non_null(strstr(err, "4294967297"));
    err[0] = 0;
    assert_int_equal(shoal_admin_snapshot(c, big, err, sizeof err), SHOAL_STATUS_BAD_REQUEST);
    assert_non_null(strstr(err, "4294967297"));
    assert_int_equal(shoal_admin_add_shard(c, big, NULL, NULL, err, sizeof err),
                     SHOAL_STATUS_BAD_REQUEST);
    /* in range: sent (and, with nobody there, timed out) */
    assert_int_equal(shoal_admin_compact(c, UINT32_MAX, err, sizeof err), SHOAL_STATUS_TIMEOUT);
    assert_int_equal(shoal_admin_snapshot(c, -1, err, sizeof err), SHOAL_STATUS_TIMEOUT);
    shoal_destroy(&c);
}

static void test_watch_args(void **state)
{
    (void)state;
    shoal_t *c = client();
    assert_null(shoal_watch_new(NULL, "tcp://127.0.0.1:27614", "p", SIZE_MAX));
    assert_null(shoal_watch_new(c, NULL, "p", SIZE_MAX));
    assert_null(shoal_watch_new(c, NULL, "p", SHOAL_MAX_KEY + 1));
    assert_null(shoal_watch_new(NULL, "tcp://127.0.0.1:27614", NULL, 3));
    char *longest = calloc(1, SHOAL_MAX_KEY);
    assert_non_null(longest);
    shoal_watch_t *w = shoal_watch_new(c, NULL, longest, SHOAL_MAX_KEY);
    assert_non_null(w);
    shoal_watch_destroy(&w);
    free(longest);
    /* lists of XPUB endpoints: no empty entry, at most SHOAL_MAX_BROKERS */
    assert_null(shoal_watch_new(NULL, "tcp://127.0.0.1:27614,,tcp://127.0.0.1:27616", NULL, 0));
    assert_null(shoal_watch_new(NULL, "tcp://127.0.0.1:27614,", NULL, 0));
    assert_null(shoal_watch_new(NULL, "", NULL, 0));
    char nine[400] = "";
    for (int i = 0; i < SHOAL_MAX_BROKERS + 1; i++)
        snprintf(nine + strlen(nine), sizeof nine - strlen(nine), "%stcp://127.0.0.1:%d",
                 i ? "," : "", 27614 + 2 * i);
    assert_null(shoal_watch_new(NULL, nine, NULL, 0));
    *strrchr(nine, ',') = 0; /* 8 of them */
    w = shoal_watch_new(NULL, nine, NULL, 0);
    assert_non_null(w);
    shoal_watch_destroy(&w);
    w = shoal_watch_new(NULL, "tcp://127.0.0.1:27614", NULL, 0);
    assert_non_null(w);
    shoal_watch_event_t ev;
    assert_int_equal(shoal_watch_next(w, NULL, 10), SHOAL_EINVAL);
    assert_int_equal(shoal_watch_next(NULL, &ev, 10), SHOAL_EINVAL);
    assert_int_equal(shoal_watch_from(NULL, 0, 0), SHOAL_EINVAL);
    assert_int_equal(shoal_watch_next(w, &ev, 10), 0);
    shoal_watch_destroy(&w);
    shoal_destroy(&c);
}

/* A call ended by SIGINT leaves its request in flight; when that completes (here: expires),
 * nothing may be written into the caller's result or its stack. */
static void test_interrupted_call_detached(void **state)
{
    (void)state;
    shoal_t *c = client();
    shoal_result_t *out = calloc(1, sizeof *out);
    assert_non_null(out);
    zsys_interrupted = 1;
    assert_int_equal(shoal_get(c, "k", 1, false, out), SHOAL_STATUS_TIMEOUT);
    zsys_interrupted = 0;
    assert_string_equal(out->error, "interrupted");
    assert_int_equal(shoal_inflight(c), 1);
    out->status = 12345; /* the caller's to use again */
    while (shoal_inflight(c))
        shoal_pump(c, 50);
    assert_int_equal(out->status, 12345);
    free(out);
    shoal_destroy(&c);
}

/* pump with a negative or long timeout waits until a request completes, not 50 ms. */
static void test_pump_waits_for_completion(void **state)
{
    (void)state;
    shoal_t *c = client(); /* 300 ms deadlines, nobody answers */
    shoal_op_t op = {.type = SHOAL_OP_GET, .key = "k", .key_len = 1};
    assert_int_equal(shoal_submit(c, &op, NULL, NULL), 0);
    assert_int_equal(shoal_pump(c, -1), 1); /* the expiry */
    assert_int_equal(shoal_inflight(c), 0);
    assert_int_equal(shoal_submit(c, &op, NULL, NULL), 0);
    assert_int_equal(shoal_pump(c, 5000), 1);
    assert_int_equal(shoal_submit(c, &op, NULL, NULL), 0);
    assert_int_equal(shoal_pump(c, 100), 0); /* before the deadline: none */
    assert_int_equal(shoal_inflight(c), 1);
    shoal_destroy(&c);
}

static void test_connect_empty_and_null_accessors(void **state)
{
    (void)state;
    assert_null(shoal_connect(""));
    char *old = getenv("SHOAL_BROKER") ? strdup(getenv("SHOAL_BROKER")) : NULL;
    setenv("SHOAL_BROKER", "", 1);
    assert_null(shoal_connect(NULL)); /* never the default */
    if (old)
        setenv("SHOAL_BROKER", old, 1);
    else
        unsetenv("SHOAL_BROKER");
    free(old);
    assert_int_equal(shoal_inflight(NULL), 0);
    assert_null(shoal_endpoint(NULL));
    assert_int_equal(shoal_client_id(NULL), 0);
    shoal_set_timeout(NULL, 10);
}

static void test_op_checks_name_the_field(void **state)
{
    (void)state;
    shoal_t *c = client();
    shoal_result_t r;
    assert_int_equal(shoal_cas(c, "k", 1, "o", 1, true, "v", 1, &r), SHOAL_STATUS_BAD_REQUEST);
    assert_non_null(strstr(r.error, "not both"));
    char *big = calloc(1, SHOAL_MAX_KEY + 1);
    assert_non_null(big);
    assert_int_equal(shoal_scan(c, big, SHOAL_MAX_KEY + 1, NULL, 0, NULL, 0, 0, &r),
                     SHOAL_STATUS_TOO_LARGE);
    assert_non_null(strstr(r.error, "scan prefix of 4097 bytes"));
    assert_int_equal(shoal_scan(c, NULL, 0, NULL, 0, big, SHOAL_MAX_KEY + 1, 0, &r),
                     SHOAL_STATUS_TOO_LARGE);
    assert_non_null(strstr(r.error, "scan end"));
    free(big);
    assert_int_equal(shoal_inflight(c), 0);
    /* an explicit XPUB endpoint is checked as a broker's is; without a client, no catch-up */
    assert_null(shoal_watch_new(NULL, "tcp://127.0.0.1:0", NULL, 0));
    shoal_watch_t *w = shoal_watch_new(NULL, "tcp://127.0.0.1:27614", NULL, 0);
    assert_non_null(w);
    assert_int_equal(shoal_watch_from(w, 0, 5), SHOAL_EINVAL);
    shoal_watch_event_t ev;
    assert_int_equal(shoal_watch_next(w, &ev, 0), 0); /* no FELL_BEHIND queued */
    shoal_watch_destroy(&w);
    shoal_destroy(&c);
}

static void *interrupt_later(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    zsys_interrupted = 1;
    return NULL;
}

/* A negative timeout waits for an event (here: until the interrupt), not 0 ms. */
static void test_watch_next_negative_waits(void **state)
{
    (void)state;
    shoal_watch_t *w = shoal_watch_new(NULL, "tcp://127.0.0.1:27614", NULL, 0);
    assert_non_null(w);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, interrupt_later, NULL), 0);
    int64_t t0 = zclock_mono();
    shoal_watch_event_t ev;
    assert_int_equal(shoal_watch_next(w, &ev, -1), SHOAL_ECLOSED);
    assert_true(zclock_mono() - t0 >= 150);
    pthread_join(t, NULL);
    zsys_interrupted = 0;
    shoal_watch_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_buffers),
        cmocka_unit_test(test_null_client),
        cmocka_unit_test(test_cas_too_large_names_expected),
        cmocka_unit_test(test_pump_negative_idle),
        cmocka_unit_test(test_connect_ports),
        cmocka_unit_test(test_admin_shard_range),
        cmocka_unit_test(test_watch_args),
        cmocka_unit_test(test_interrupted_call_detached),
        cmocka_unit_test(test_pump_waits_for_completion),
        cmocka_unit_test(test_connect_empty_and_null_accessors),
        cmocka_unit_test(test_op_checks_name_the_field),
        cmocka_unit_test(test_watch_next_negative_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
