/* test_watch_seqs.c - a libshoal watch with a key prefix and the broker's per-prefix counts
 * of the change events it sent (StreamSeqs, broker/stream_seqs.c). A filtered stream's
 * indexes skip other keys' changes, so only a jump in its prefix's count shows that the
 * XPUB dropped some: the watch must then fill them from the shards' retained changes, in
 * order and once, before anything newer (a jump on a change event: the lost ones came
 * before it; on a progress notice: a lost tail). Without a jump it must ask for nothing,
 * and a new broker run (another epoch) starts counting afresh.
 *
 * The "broker" is a ROUTER answering `changes` from a table (an actor thread, since the
 * watch asks synchronously) and a PUB this thread publishes on, both inproc. */
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

#define ROUTER_EP "inproc://fake-broker"
#define PUB_EP "inproc://fake-broker-pub"
#define EPOCH 0x5eedULL

/* The shard-0 changes the fake broker retains (index order; written before publishing). */
static struct {
    uint64_t index;
    const char *key;
} retained[32];
static int n_retained;
static int changes_asked; /* `changes` requests answered (atomic) */

static void retain(uint64_t index, const char *key)
{
    retained[n_retained].index = index;
    retained[n_retained].key = key;
    __atomic_store_n(&n_retained, n_retained + 1, __ATOMIC_SEQ_CST);
}

static void answer_changes(zsock_t *router, zframe_t *id, const Shoal__ClientRequest *q)
{
    static Shoal__Change ch[32];
    static Shoal__Change *chp[32];
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.request_id = q->request_id;
    int n = __atomic_load_n(&n_retained, __ATOMIC_SEQ_CST);
    for (int i = 0; i < n; i++)
        if (retained[i].index > q->changes->after_index) {
            shoal__change__init(&ch[r.n_changes]);
            ch[r.n_changes].index = retained[i].index;
            ch[r.n_changes].op_count = 1;
            ch[r.n_changes].key =
                (ProtobufCBinaryData){strlen(retained[i].key), (uint8_t *)retained[i].key};
            chp[r.n_changes] = &ch[r.n_changes];
            r.n_changes++;
        }
    r.changes = chp;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = 1;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    f.client_resp = &r;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    /* counted before the answer goes: the test reads the count once the watch delivered
     * what the answer held, which can come before this thread runs again (a loaded host) */
    __atomic_add_fetch(&changes_asked, 1, __ATOMIC_SEQ_CST);
    zframe_send(&id, router, ZFRAME_MORE);
    zmq_send(zsock_resolve(router), buf, len, 0);
    free(buf);
}

static void fake_broker(zsock_t *pipe, void *arg)
{
    (void)arg;
    zsock_t *router = zsock_new_router(ROUTER_EP);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait(poller, -1);
        if (which != router)
            break; /* $TERM or interrupted */
        zmsg_t *m = zmsg_recv(router);
        zframe_t *id = zmsg_pop(m), *body = zmsg_pop(m);
        Shoal__Frame *f = NULL;
        char err[256];
        if (body &&
            shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err) == 0 &&
            f->body_case == SHOAL__FRAME__BODY_CLIENT_REQ &&
            f->client_req->op_case == SHOAL__CLIENT_REQUEST__OP_CHANGES)
            answer_changes(router, id, f->client_req);
        else
            zframe_destroy(&id);
        shoal__frame__free_unpacked(f, NULL);
        zframe_destroy(&body);
        zmsg_destroy(&m);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

/* The StreamSeqs frame: prefix "p/" at count seq in run epoch. */
static zframe_t *seqs_frame(uint64_t epoch, uint64_t seq)
{
    Shoal__PrefixSeq ps = SHOAL__PREFIX_SEQ__INIT, *pp = &ps;
    ps.prefix = (ProtobufCBinaryData){2, (uint8_t *)"p/"};
    ps.seq = seq;
    Shoal__StreamSeqs s = SHOAL__STREAM_SEQS__INIT;
    s.epoch = epoch;
    s.n_seqs = 1;
    s.seqs = &pp;
    zframe_t *f = zframe_new(NULL, shoal__stream_seqs__get_packed_size(&s));
    shoal__stream_seqs__pack(&s, zframe_data(f));
    return f;
}

static void publish_change(zsock_t *pub, uint64_t index, const char *key, uint64_t epoch,
                           uint64_t seq)
{
    Shoal__ChangeEvent ev = SHOAL__CHANGE_EVENT__INIT;
    ev.index = index;
    ev.op_count = 1;
    ev.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
    zframe_t *body = zframe_new(NULL, shoal__change_event__get_packed_size(&ev));
    shoal__change_event__pack(&ev, zframe_data(body));
    zframe_t *seqs = seqs_frame(epoch, seq);
    zstr_sendfm(pub, "change/%s", key);
    zframe_send(&body, pub, ZFRAME_MORE);
    zframe_send(&seqs, pub, 0);
}

static void publish_progress(zsock_t *pub, uint64_t applied, uint64_t seq)
{
    Shoal__ShardProgress sp = SHOAL__SHARD_PROGRESS__INIT, *spp = &sp;
    sp.applied_index = applied;
    Shoal__StreamNotice n = SHOAL__STREAM_NOTICE__INIT;
    n.n_progress = 1;
    n.progress = &spp;
    zframe_t *body = zframe_new(NULL, shoal__stream_notice__get_packed_size(&n));
    shoal__stream_notice__pack(&n, zframe_data(body));
    zframe_t *seqs = seqs_frame(EPOCH, seq);
    zstr_sendm(pub, "progress");
    zframe_send(&body, pub, ZFRAME_MORE);
    zframe_send(&seqs, pub, 0);
}

/* The next event that is a change or (if want_progress) a progress notice. */
static bool next_event(shoal_watch_t *w, shoal_watch_event_t *ev, bool want_progress)
{
    int64_t until = zclock_mono() + 5000;
    while (zclock_mono() < until)
        if (shoal_watch_next(w, ev, 100) == 1 &&
            (ev->kind == SHOAL_WATCH_CHANGE || (want_progress && ev->kind == SHOAL_WATCH_PROGRESS)))
            return true;
    return false;
}

static void expect_change(shoal_watch_t *w, uint64_t index, const char *key)
{
    shoal_watch_event_t ev;
    assert_true(next_event(w, &ev, false));
    assert_int_equal(ev.change.index, index);
    assert_string_equal((char *)ev.change.key, key);
}

static void test_prefix_watch_fills_dropped_changes(void **state)
{
    (void)state;
    zactor_t *broker = zactor_new(fake_broker, NULL);
    zsock_t *pub = zsock_new_pub(PUB_EP);
    shoal_t *c = shoal_connect(ROUTER_EP);
    shoal_watch_t *w = shoal_watch_new(c, PUB_EP, "p/", 2);
    assert_non_null(w);
    /* Subscribed once a progress notice arrives; it sets shard 0's resume point (10) and
     * the count (0). */
    shoal_watch_event_t ev;
    bool subscribed = false;
    for (int i = 0; i < 50 && !subscribed; i++) {
        publish_progress(pub, 10, 0);
        subscribed = next_event(w, &ev, true) && ev.kind == SHOAL_WATCH_PROGRESS;
    }
    assert_true(subscribed);
    while (shoal_watch_next(w, &ev, 200) == 1)
        ;

    /* In step: counts 1 and 2 (q/x at 12 is another prefix's): nothing is asked. */
    retain(11, "p/a");
    retain(12, "q/x");
    retain(13, "p/b");
    publish_change(pub, 11, "p/a", EPOCH, 1);
    publish_change(pub, 13, "p/b", EPOCH, 2);
    expect_change(w, 11, "p/a");
    expect_change(w, 13, "p/b");
    assert_int_equal(__atomic_load_n(&changes_asked, __ATOMIC_SEQ_CST), 0);

    /* p/lost (count 3) dropped: p/c comes with count 4, so the watch fills 14 from the
     * retained changes first, and delivers p/c once. */
    retain(14, "p/lost");
    retain(15, "q/y");
    retain(16, "p/c");
    publish_change(pub, 16, "p/c", EPOCH, 4);
    expect_change(w, 14, "p/lost");
    expect_change(w, 16, "p/c");
    assert_true(__atomic_load_n(&changes_asked, __ATOMIC_SEQ_CST) >= 1);

    /* A lost tail: nothing follows p/tail (count 5) but a progress notice saying 5. */
    retain(17, "p/tail");
    publish_progress(pub, 17, 5);
    expect_change(w, 17, "p/tail");

    /* A new broker run counts from 1 again: no gap, nothing asked. */
    int asked = __atomic_load_n(&changes_asked, __ATOMIC_SEQ_CST);
    retain(18, "p/d");
    publish_change(pub, 18, "p/d", EPOCH + 1, 1);
    expect_change(w, 18, "p/d");
    assert_int_equal(__atomic_load_n(&changes_asked, __ATOMIC_SEQ_CST), asked);
    while (shoal_watch_next(w, &ev, 300) == 1)
        assert_int_not_equal(ev.kind, SHOAL_WATCH_CHANGE); /* each change once */

    shoal_watch_destroy(&w);
    shoal_destroy(&c);
    zsock_destroy(&pub);
    zactor_destroy(&broker);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_watch_fills_dropped_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
