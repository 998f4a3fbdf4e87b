/* test_client_broker.c - libshoal and the broker core against fake nodes.
 *
 * A fake node pair runs in an actor thread: two ROUTER sockets that speak the node side of
 * docs/CONTRACTS.md with an in-memory store. Only node `leader` serves; the other answers
 * STATUS_NOT_LEADER with a hint. The leader remembers (client_id, seq) of every write it
 * applies, so the tests can check that a retried write carries the same id and seq and is
 * applied once. The broker runs in-process as a czmq actor with short timeouts. */
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
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/shoal.h"
#include "engine/error.h"
#include "engine/ring.h"
#include "proto/codec.h"

typedef struct {
    int leader;      /* node index that serves */
    int drop_next;   /* leader ignores this many client requests (silence) */
    int applied;     /* distinct writes applied */
    int duplicates;  /* writes seen again with a (client, seq) already applied */
    int requests[2]; /* client requests received per node */
    int batched;     /* of them, requests that came in a Frame{batch} */
    int moves[2];    /* move-replica requests received per node */
    int meta_down;   /* set: both nodes answer a map change NOT_LEADER (no metadata leader) */
    char ep[2][64], pub[2][64];
    zhashx_t *store;    /* key -> value (strings) */
    zhashx_t *sessions; /* "client:seq" -> "1" */
    struct {
        uint32_t shard;
        uint64_t index;
        uint32_t seq, count; /* op seq of count in its entry */
        char key[16];
    } log[64]; /* change window */
    int n_log;
    uint64_t window_from; /* changes at or before this index are gone (WINDOW_GONE) */
    /* the shard map node i answers (the bootstrap placement, nodes 0 and 1 listed) of
     * cluster map_cluster[i] at map_version[i]; a cluster 0 answers "not supported" */
    uint64_t map_cluster[2], map_version[2];
} fake_t;

static fake_t fake;
static int base_port;

static void send_resp(zsock_t *router, zframe_t *id, Shoal__ClientResponse *r)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = 1;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    f.client_resp = r;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    zframe_send(&id, router, ZFRAME_MORE | ZFRAME_REUSE);
    zmq_send(zsock_resolve(router), buf, len, 0);
    free(buf);
}

static char *str_of(ProtobufCBinaryData b)
{
    char *s = malloc(b.len + 1);
    memcpy(s, b.data, b.len);
    s[b.len] = 0;
    return s;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Applies a write once per (shard, client_id, seq): as on real nodes, each shard keeps its
 * own sessions, and a batch's parts on two shards carry the same client id and seq. */
static bool fresh_write(Shoal__ClientRequest *q)
{
    char sk[80];
    snprintf(sk, sizeof sk, "%" PRIu32 ":%" PRIu64 ":%" PRIu64, q->shard, q->client_id, q->seq);
    if (zhashx_lookup(fake.sessions, sk)) {
        __atomic_add_fetch(&fake.duplicates, 1, __ATOMIC_SEQ_CST);
        return false;
    }
    zhashx_insert(fake.sessions, sk, "1");
    __atomic_add_fetch(&fake.applied, 1, __ATOMIC_SEQ_CST);
    return true;
}

static void serve_scan(Shoal__ClientRequest *q, Shoal__ClientResponse *r)
{
    /* This fake holds every key on the leader, but answers per shard: the keys the broker
     * would route to that shard are the ones whose hash lands there. Simplify: shard 0
     * returns keys of even length, shard 1 keys of odd length. */
    static zlistx_t *keys; /* kept until the next scan: the answer points into it */
    zlistx_destroy(&keys);
    keys = zhashx_keys(fake.store);
    size_t n = zlistx_size(keys), k = 0;
    char **sorted = calloc(n + 1, sizeof *sorted);
    for (char *key = zlistx_first(keys); key; key = zlistx_next(keys))
        if (strlen(key) % 2 == q->shard || !strncmp(key, "twin/", 5)) /* twin/: both shards */
            sorted[k++] = key;
    qsort(sorted, k, sizeof *sorted, key_cmp);
    static Shoal__KeyValue kvs[64];
    static Shoal__KeyValue *kvp[64];
    size_t lim = q->scan->limit < 64 ? q->scan->limit : 64;
    r->n_kvs = 0;
    for (size_t i = 0; i < k && r->n_kvs < lim; i++) {
        shoal__key_value__init(&kvs[r->n_kvs]);
        kvs[r->n_kvs].key = (ProtobufCBinaryData){strlen(sorted[i]), (uint8_t *)sorted[i]};
        char *v = zhashx_lookup(fake.store, sorted[i]);
        kvs[r->n_kvs].value = (ProtobufCBinaryData){strlen(v), (uint8_t *)v};
        kvp[r->n_kvs] = &kvs[r->n_kvs];
        r->n_kvs++;
    }
    r->kvs = kvp;
    r->more = k > lim;
    free(sorted);
}

static void serve_leader(zsock_t *router, zframe_t *id, Shoal__ClientRequest *q)
{
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.request_id = q->request_id;
    r.client_id = q->client_id;
    r.seq = q->seq;
    char *k = NULL;
    switch (q->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_PUT:
        k = str_of(q->put->key);
        if (fresh_write(q))
            zhashx_update(fake.store, k, str_of(q->put->value));
        r.index = 7;
        break;
    case SHOAL__CLIENT_REQUEST__OP_GET: {
        k = str_of(q->get->key);
        char *v = zhashx_lookup(fake.store, k);
        r.status = v ? SHOAL__STATUS__STATUS_OK : SHOAL__STATUS__STATUS_NOT_FOUND;
        r.found = v != NULL;
        if (v)
            r.value = (ProtobufCBinaryData){strlen(v), (uint8_t *)v};
        break;
    }
    case SHOAL__CLIENT_REQUEST__OP_BATCH:
        if (fresh_write(q))
            for (size_t i = 0; i < q->batch->n_ops; i++)
                if (q->batch->ops[i]->op_case == SHOAL__BATCH_OP__OP_PUT) {
                    char *bk = str_of(q->batch->ops[i]->put->key);
                    zhashx_update(fake.store, bk, str_of(q->batch->ops[i]->put->value));
                    free(bk);
                }
        break;
    case SHOAL__CLIENT_REQUEST__OP_SCAN: serve_scan(q, &r); break;
    case SHOAL__CLIENT_REQUEST__OP_CHANGES: {
        if (q->changes->after_index < fake.window_from) {
            r.status = SHOAL__STATUS__STATUS_WINDOW_GONE;
            r.error = (char *)"changes at that index are no longer retained; rescan";
            break;
        }
        static Shoal__Change ch[64];
        static Shoal__Change *chp[64];
        r.n_changes = 0;
        for (int i = 0; i < fake.n_log; i++)
            if (fake.log[i].shard == q->changes->shard &&
                (fake.log[i].index > q->changes->after_index ||
                 (fake.log[i].index == q->changes->after_index && q->changes->after_ops &&
                  fake.log[i].seq >= q->changes->after_ops))) {
                Shoal__Change *c = &ch[r.n_changes];
                shoal__change__init(c);
                c->shard = fake.log[i].shard;
                c->index = fake.log[i].index;
                c->op_seq = fake.log[i].seq;
                c->op_count = fake.log[i].count;
                c->key = (ProtobufCBinaryData){strlen(fake.log[i].key), (uint8_t *)fake.log[i].key};
                chp[r.n_changes++] = c;
            }
        r.changes = chp;
        break;
    }
    default: r.status = SHOAL__STATUS__STATUS_BAD_REQUEST;
    }
    send_resp(router, id, &r);
    free(k);
}

static void serve_admin(zsock_t *router, zframe_t *id, int me, Shoal__AdminRequest *q)
{
    Shoal__AdminResponse r = SHOAL__ADMIN_RESPONSE__INIT;
    Shoal__ClusterStatus cs = SHOAL__CLUSTER_STATUS__INIT;
    Shoal__ShardStatus ss[3], *ssp[3];
    /* the metadata row as its leader reports it: a configuration with a node 7 that no
     * map (the bootstrap one: nodes 0 and 1) places it on */
    Shoal__PeerProgress mp[3], *mpp[3];
    Shoal__ShardMap map = SHOAL__SHARD_MAP__INIT;
    Shoal__ShardInfo si[2], *sip[2];
    Shoal__NodeInfo ni[2], *nip[2];
    uint64_t reps[2][2];
    r.request_id = q->request_id;
    if (q->op_case == SHOAL__ADMIN_REQUEST__OP_STATUS) {
        for (int s = 0; s < 3; s++) {
            shoal__shard_status__init(&ss[s]);
            ss[s].id = s < 2 ? (uint32_t)s : 4294967295u;
            /* the metadata group "led" by node 0, which answers a map change NOT_LEADER:
             * test_admin_map_change_finds_meta_leader */
            ss[s].leader = s < 2 ? (uint64_t)fake.leader : 0;
            ss[s].term = 3;
            ss[s].commit_index = ss[s].apply_index = 10;
            ssp[s] = &ss[s];
        }
        for (int k = 0; k < 3; k++) {
            shoal__peer_progress__init(&mp[k]);
            mp[k].peer = k < 2 ? (uint64_t)k : 7;
            mp[k].match_index = 8 + (uint64_t)k;
            mpp[k] = &mp[k];
        }
        ss[2].replicas = mpp;
        ss[2].n_replicas = 3;
        cs.n_shards = 3;
        cs.shards = ssp;
        r.cluster = &cs;
    } else if (q->op_case == SHOAL__ADMIN_REQUEST__OP_SHARD_MAP &&
               __atomic_load_n(&fake.map_cluster[me], __ATOMIC_SEQ_CST)) {
        map.version = __atomic_load_n(&fake.map_version[me], __ATOMIC_SEQ_CST);
        map.cluster_id = __atomic_load_n(&fake.map_cluster[me], __ATOMIC_SEQ_CST);
        map.vnodes_per_shard = 16;
        for (int k = 0; k < 2; k++) {
            shoal__shard_info__init(&si[k]);
            si[k].id = (uint32_t)k;
            reps[k][0] = (uint64_t)k; /* shard s on nodes (s + i) mod 2 */
            reps[k][1] = (uint64_t)(1 - k);
            si[k].replicas = reps[k];
            si[k].n_replicas = 2;
            sip[k] = &si[k];
            shoal__node_info__init(&ni[k]);
            ni[k].id = (uint64_t)k;
            ni[k].endpoint = fake.ep[k];
            ni[k].pub_endpoint = fake.pub[k];
            nip[k] = &ni[k];
        }
        map.shards = sip;
        map.n_shards = 2;
        map.nodes = nip;
        map.n_nodes = 2;
        r.shard_map = &map;
    } else if (q->op_case == SHOAL__ADMIN_REQUEST__OP_COMPACT) {
        r.status = SHOAL__STATUS__STATUS_OK;
    } else if (q->op_case == SHOAL__ADMIN_REQUEST__OP_MOVE &&
               (me != fake.leader || __atomic_load_n(&fake.meta_down, __ATOMIC_SEQ_CST))) {
        /* as a node that does not lead the metadata group answers (actors/meta.c) */
        __atomic_add_fetch(&fake.moves[me], 1, __ATOMIC_SEQ_CST);
        r.status = SHOAL__STATUS__STATUS_NOT_LEADER;
        r.error = (char *)"fake node: does not lead the metadata group";
    } else {
        if (q->op_case == SHOAL__ADMIN_REQUEST__OP_MOVE)
            __atomic_add_fetch(&fake.moves[me], 1, __ATOMIC_SEQ_CST);
        r.status = SHOAL__STATUS__STATUS_BAD_REQUEST;
        r.error = (char *)"fake node: not supported";
    }
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = 1;
    f.body_case = SHOAL__FRAME__BODY_ADMIN_RESP;
    f.admin_resp = &r;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    zframe_send(&id, router, ZFRAME_MORE | ZFRAME_REUSE);
    zmq_send(zsock_resolve(router), buf, len, 0);
    free(buf);
}

static void serve_client(zsock_t *router, zframe_t *id, int me, Shoal__ClientRequest *q)
{
    __atomic_add_fetch(&fake.requests[me], 1, __ATOMIC_SEQ_CST);
    if (me != fake.leader) {
        Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
        Shoal__LeaderHint h = SHOAL__LEADER_HINT__INIT;
        h.node_id = (uint64_t)fake.leader;
        h.term = 3;
        r.status = SHOAL__STATUS__STATUS_NOT_LEADER;
        r.leader = &h;
        r.request_id = q->request_id;
        send_resp(router, id, &r);
    } else if (__atomic_load_n(&fake.drop_next, __ATOMIC_SEQ_CST) > 0) {
        __atomic_sub_fetch(&fake.drop_next, 1, __ATOMIC_SEQ_CST);
    } else
        serve_leader(router, id, q);
}

static void serve_one(zsock_t *router, int me)
{
    zmsg_t *m = zmsg_recv(router);
    zframe_t *id = zmsg_pop(m);
    zframe_t *body = zmsg_pop(m);
    Shoal__Frame *f = NULL;
    char err[128];
    if (body &&
        shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err) == 0) {
        if (f->body_case == SHOAL__FRAME__BODY_ADMIN_REQ)
            serve_admin(router, id, me, f->admin_req);
        else if (f->body_case == SHOAL__FRAME__BODY_CLIENT_REQ)
            serve_client(router, id, me, f->client_req);
        /* the broker sends a loop turn's requests as one batch; answered one by one here */
        for (size_t i = 0; f->body_case == SHOAL__FRAME__BODY_BATCH && i < f->batch->n_frames;
             i++) {
            Shoal__Frame *e = NULL;
            assert_int_equal(shoal_batch_element(f, i, &e, err, sizeof err), 0);
            assert_int_equal(e->body_case, SHOAL__FRAME__BODY_CLIENT_REQ);
            __atomic_add_fetch(&fake.batched, 1, __ATOMIC_SEQ_CST);
            serve_client(router, id, me, e->client_req);
            shoal_frame_free(&e);
        }
    }
    shoal_frame_free(&f);
    zframe_destroy(&id);
    zframe_destroy(&body);
    zmsg_destroy(&m);
}

static void fake_actor(zsock_t *pipe, void *args)
{
    zsock_t *r0 = zsock_new_router(fake.ep[0]);
    zsock_t *r1 = zsock_new_router(fake.ep[1]);
    zsock_t *p0 = zsock_new_pub(fake.pub[0]);
    zsock_t *p1 = zsock_new_pub(fake.pub[1]);
    zpoller_t *poller = zpoller_new(pipe, r0, r1, NULL);
    zsock_signal(pipe, 0);
    while (true) {
        void *w = zpoller_wait(poller, -1);
        if (!w)
            break;
        if (w == pipe) {
            /* "PUB shard index prev key send seq count": log the change; publish it from
             * both nodes (as every replica does) unless send is "0" (a change the stream
             * lost); seq/count: its op in a batch entry */
            char *cmd = NULL, *sh = NULL, *ix = NULL, *pv = NULL, *key = NULL, *send = NULL;
            char *sq = NULL, *cn = NULL;
            zstr_recvx(pipe, &cmd, &sh, &ix, &pv, &key, &send, &sq, &cn, NULL);
            bool stop = !cmd || strcmp(cmd, "PUB") != 0;
            if (!stop) {
                Shoal__ChangeEvent ev = SHOAL__CHANGE_EVENT__INIT;
                ev.shard = (uint32_t)atoi(sh);
                ev.index = strtoull(ix, NULL, 10);
                ev.prev_index = strtoull(pv, NULL, 10);
                ev.op_seq = (uint32_t)atoi(sq);
                ev.op_count = (uint32_t)atoi(cn);
                ev.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
                if (fake.n_log == (int)(sizeof fake.log / sizeof fake.log[0]))
                    abort(); /* the test publishes more than the window holds */
                fake.log[fake.n_log].shard = ev.shard;
                fake.log[fake.n_log].index = ev.index;
                fake.log[fake.n_log].seq = ev.op_seq;
                fake.log[fake.n_log].count = ev.op_count;
                snprintf(fake.log[fake.n_log++].key, 16, "%s", key);
                uint8_t buf[128];
                size_t len = shoal__change_event__pack(&ev, buf);
                char topic[64];
                snprintf(topic, sizeof topic, "change/%s", key);
                if (strcmp(send, "0") != 0) {
                    zsock_send(p0, "sb", topic, buf, len);
                    zsock_send(p1, "sb", topic, buf, len);
                }
                zsock_signal(pipe, 0);
            }
            zstr_free(&cmd);
            zstr_free(&sh);
            zstr_free(&ix);
            zstr_free(&pv);
            zstr_free(&key);
            zstr_free(&send);
            zstr_free(&sq);
            zstr_free(&cn);
            if (stop)
                break;
            continue;
        }
        serve_one(w, w == r0 ? 0 : 1);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&r0);
    zsock_destroy(&r1);
    zsock_destroy(&p0);
    zsock_destroy(&p1);
}

static zactor_t *fake_nodes, *broker;
static char broker_ep[64];

/* Whether 127.0.0.1:port can be bound now (as ZeroMQ binds: SO_REUSEADDR). */
static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A base port whose ports (base .. base+2, base+10 .. base+13) are free, below the
 * ephemeral range: tests run in parallel, and a port taken made the fake nodes' binds fail
 * (every request timed out, then an assertion in czmq on the NULL socket). */
static int free_base(void)
{
    static const int offs[] = {0, 1, 2, 10, 11, 12, 13};
    int base = 10000 + (int)(getpid() % 2200) * 10;
    for (int tries = 0; tries < 2200; tries++, base = base + 10 >= 32000 ? 10000 : base + 10) {
        bool ok = true;
        for (size_t i = 0; ok && i < sizeof offs / sizeof *offs; i++)
            ok = port_free(base + offs[i]);
        if (ok)
            return base;
    }
    return base;
}

static int setup(void **state)
{
    base_port = free_base();
    for (int i = 0; i < 2; i++) {
        snprintf(fake.ep[i], 64, "tcp://127.0.0.1:%d", base_port + 10 + 2 * i);
        snprintf(fake.pub[i], 64, "tcp://127.0.0.1:%d", base_port + 11 + 2 * i);
    }
    fake.leader = 1;
    fake.store = zhashx_new();
    zhashx_set_destructor(fake.store, (zhashx_destructor_fn *)zstr_free);
    fake.sessions = zhashx_new();
    zhashx_set_destructor(fake.sessions, NULL);
    zhashx_set_duplicator(fake.sessions, NULL);
    fake_nodes = zactor_new(fake_actor, NULL);
    char cfgtext[2048];
    snprintf(broker_ep, sizeof broker_ep, "tcp://127.0.0.1:%d", base_port);
    snprintf(cfgtext, sizeof cfgtext,
             "broker\n    client_endpoint = \"%s\"\n    pub_endpoint = \"tcp://127.0.0.1:%d\"\n"
             "    attempt_timeout_ms = 200\n    poll_ms = 100\n"
             "    http_endpoint = \"tcp://127.0.0.1:%d\"\n"
             "cluster\n    shards = 2\n    replicas = 2\n    vnodes = 16\n    nodes\n"
             "        0\n            endpoint = \"%s\"\n            pub_endpoint = \"%s\"\n"
             "        1\n            endpoint = \"%s\"\n            pub_endpoint = \"%s\"\n",
             broker_ep, base_port + 1, base_port + 2, fake.ep[0], fake.pub[0], fake.ep[1],
             fake.pub[1]);
    static broker_config_t cfg;
    char err[256];
    assert_int_equal(broker_config_parse(cfgtext, &cfg, err, sizeof err), 0);
    broker = zactor_new(broker_actor, &cfg);
    return 0;
}

static int teardown(void **state)
{
    zactor_destroy(&broker);
    zactor_destroy(&fake_nodes);
    zhashx_destroy(&fake.store);
    zhashx_destroy(&fake.sessions);
    return 0;
}

static void test_put_get_follows_leader_hint(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    assert_non_null(c);
    shoal_result_t r;
    int before = __atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST);
    assert_int_equal(shoal_put(c, "alpha", 5, "one", 3, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.index, 7);
    shoal_result_clear(&r);
    assert_int_equal(fake.applied, before + 1);
    assert_int_equal(shoal_get(c, "alpha", 5, false, &r), SHOAL_STATUS_OK);
    assert_true(r.found);
    assert_int_equal(r.value_len, 3);
    assert_memory_equal(r.value, "one", 3);
    shoal_result_clear(&r);
    assert_int_equal(shoal_get(c, "missing", 7, false, &r), SHOAL_STATUS_NOT_FOUND);
    assert_false(r.found);
    shoal_result_clear(&r);
    shoal_destroy(&c);
}

static void test_silent_leader_retry_same_seq(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_result_t r;
    /* Warm the leader cache, then make the leader drop the next request: the broker must
     * resend after attempt_timeout_ms with the same client id and seq, applied once. */
    assert_int_equal(shoal_put(c, "warm", 4, "x", 1, NULL), SHOAL_STATUS_OK);
    int applied = fake.applied, dups = fake.duplicates;
    __atomic_store_n(&fake.drop_next, 1, __ATOMIC_SEQ_CST);
    assert_int_equal(shoal_put(c, "beta", 4, "two", 3, &r), SHOAL_STATUS_OK);
    shoal_result_clear(&r);
    assert_int_equal(fake.applied, applied + 1);
    assert_int_equal(fake.duplicates, dups); /* dropped copy was never applied */
    /* Drop none, but replay: a resend of the same write is a duplicate at the node. */
    assert_int_equal(shoal_get(c, "beta", 4, false, &r), SHOAL_STATUS_OK);
    assert_memory_equal(r.value, "two", 3);
    shoal_result_clear(&r);
    shoal_destroy(&c);
}

static void test_deadline_when_all_silent(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_set_timeout(c, 300);
    __atomic_store_n(&fake.drop_next, 1000000, __ATOMIC_SEQ_CST);
    int64_t t0 = zclock_mono();
    shoal_result_t r;
    assert_int_equal(shoal_put(c, "gamma", 5, "three", 5, &r), SHOAL_STATUS_TIMEOUT);
    int64_t took = zclock_mono() - t0;
    /* the broker's deadline is the timeout less libshoal's grace (75 ms of 300): its answer,
     * which says what it knows, ends the call before the caller's own deadline */
    assert_true(took >= 200 && took < 1000);
    assert_non_null(strstr(r.error, "may or may not"));
    shoal_result_clear(&r);
    __atomic_store_n(&fake.drop_next, 0, __ATOMIC_SEQ_CST);
    shoal_destroy(&c);
}

static void test_limits_and_bad_input(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_result_t r;
    char *big = calloc(1, SHOAL_MAX_VALUE + 2);
    memset(big, 'v', SHOAL_MAX_VALUE + 1);
    assert_int_equal(shoal_put(c, big, SHOAL_MAX_KEY + 1, "v", 1, &r), SHOAL_STATUS_TOO_LARGE);
    assert_non_null(strstr(r.error, "4096"));
    shoal_result_clear(&r);
    assert_int_equal(shoal_put(c, "k", 1, big, SHOAL_MAX_VALUE + 1, &r), SHOAL_STATUS_TOO_LARGE);
    shoal_result_clear(&r);
    assert_int_equal(shoal_put(c, "", 0, "v", 1, &r), SHOAL_STATUS_BAD_REQUEST);
    shoal_result_clear(&r);
    free(big);
    assert_null(shoal_connect("bogus://x"));
    /* Raw garbage to the broker gets a BAD_REQUEST answer, and the broker stays up. */
    zsock_t *raw = zsock_new_dealer(broker_ep);
    zstr_send(raw, "garbage");
    zsock_set_rcvtimeo(raw, 2000);
    zframe_t *ans = zframe_recv(raw);
    assert_non_null(ans);
    Shoal__Frame *f = NULL;
    char err[128];
    assert_int_equal(shoal_frame_decode(zframe_data(ans), zframe_size(ans), &f, err, sizeof err),
                     0);
    assert_int_equal(f->client_resp->status, SHOAL_STATUS_BAD_REQUEST);
    shoal_frame_free(&f);
    zframe_destroy(&ans);
    zsock_destroy(&raw);
    assert_int_equal(shoal_put(c, "after", 5, "ok", 2, NULL), SHOAL_STATUS_OK);
    shoal_destroy(&c);
}

static void test_batch_and_scan_fan_out(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_batch_op_t ops[6];
    const char *keys[6] = {"s/a", "s/bb", "s/ccc", "s/dddd", "s/e", "s/ff"};
    for (int i = 0; i < 6; i++)
        ops[i] = (shoal_batch_op_t){false, keys[i], strlen(keys[i]), "v", 1};
    shoal_result_t r;
    assert_int_equal(shoal_batch(c, ops, 6, &r), SHOAL_STATUS_OK);
    shoal_result_clear(&r);
    /* The fake splits keys over shards 0 and 1 by length; the broker must merge in order. */
    assert_int_equal(shoal_scan(c, "s/", 2, NULL, 0, NULL, 0, 4, &r), SHOAL_STATUS_OK);
    assert_int_equal(r.n_kvs, 4);
    assert_true(r.more);
    for (size_t i = 1; i < r.n_kvs; i++)
        assert_true(strcmp((char *)r.kvs[i - 1].key, (char *)r.kvs[i].key) < 0);
    assert_string_equal((char *)r.kvs[0].key, "after"); /* fake ignores the prefix */
    shoal_result_clear(&r);
    /* Keys both shards answer for (a split's source and target around its close) come
     * once each, and the limit counts them once. */
    const char *twins[3] = {"twin/1", "twin/22", "twin/333"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(shoal_put(c, twins[i], strlen(twins[i]), "t", 1, NULL), SHOAL_STATUS_OK);
    assert_int_equal(shoal_scan(c, "twin/", 5, NULL, 0, NULL, 0, 64, &r), SHOAL_STATUS_OK);
    size_t twin_rows = 0;
    for (size_t i = 0; i < r.n_kvs; i++)
        twin_rows += !strncmp((char *)r.kvs[i].key, "twin/", 5);
    assert_int_equal(twin_rows, 3);
    for (size_t i = 1; i < r.n_kvs; i++)
        assert_true(strcmp((char *)r.kvs[i - 1].key, (char *)r.kvs[i].key) < 0);
    shoal_result_clear(&r);
    shoal_destroy(&c);
}

/* A batch whose writes to one shard pass what a node takes in one Raft entry
 * (SHOAL_NODE_MAX_BATCH_BYTES) is refused whole by the broker with TOO_LARGE, naming that
 * limit, before any part is sent: its parts for the other shard are not applied either
 * (they were, while only the node refused its own part). Exactly the limit is accepted:
 * the broker counts as the node does (keys and put values). */
static void test_batch_part_over_node_limit(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_set_timeout(c, 10000);
    /* the broker's ring: 2 shards, 16 points each (setup's config) */
    ring_t *ring = ring_new(16);
    assert_int_equal(ring_add_shard(ring, 0), 0);
    assert_int_equal(ring_add_shard(ring, 1), 0);
    const char *big = "zbig"; /* every big op on this one key: all on one shard */
    uint32_t big_shard = ring_shard_for(ring, big, 4);
    enum { N_BIG = SHOAL_NODE_MAX_BATCH_BYTES / SHOAL_MAX_VALUE, N_SMALL = 8 };
    shoal_batch_op_t ops[N_BIG + N_SMALL + 1];
    char small[N_SMALL][16];
    int elsewhere = 0;
    size_t with_big = 0; /* bytes of the small ops on big's shard */
    for (int i = 0; i < N_SMALL; i++) {
        snprintf(small[i], sizeof small[i], "zsmall/%d", i);
        ops[i] = (shoal_batch_op_t){false, small[i], strlen(small[i]), "s", 1};
        if (ring_shard_for(ring, small[i], strlen(small[i])) != big_shard)
            elsewhere++;
        else
            with_big += strlen(small[i]) + 1;
    }
    assert_true(elsewhere > 0); /* the batch has a part on the other shard */
    ring_destroy(&ring);
    /* N_BIG ops of about 1 MiB (key and value) on big's shard: exactly the limit */
    assert_int_equal(N_BIG * (size_t)SHOAL_MAX_VALUE, SHOAL_NODE_MAX_BATCH_BYTES);
    size_t vlen = SHOAL_MAX_VALUE - 4;
    assert_true(with_big < vlen);
    char *value = malloc(vlen);
    memset(value, 'x', vlen);
    for (int i = 0; i < N_BIG; i++)
        ops[N_SMALL + i] = (shoal_batch_op_t){false, big, 4, value, vlen};
    ops[N_SMALL].value_len -= with_big;
    /* and a delete of big, whose key counts too: 4 bytes over the limit, refused whole */
    ops[N_SMALL + N_BIG] = (shoal_batch_op_t){true, big, 4, NULL, 0};
    int applied = __atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST);
    shoal_result_t r;
    assert_int_equal(shoal_batch(c, ops, N_SMALL + N_BIG + 1, &r), SHOAL_STATUS_TOO_LARGE);
    char want[160];
    snprintf(want, sizeof want, SHOAL_ERR_BATCH_BYTES, big_shard,
             (size_t)SHOAL_NODE_MAX_BATCH_BYTES + 4, SHOAL_NODE_MAX_BATCH_BYTES);
    assert_string_equal(r.error, want);
    shoal_result_clear(&r);
    assert_int_equal(__atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST), applied);
    for (int i = 0; i < N_SMALL; i++)
        assert_int_equal(shoal_get(c, small[i], strlen(small[i]), false, NULL),
                         SHOAL_STATUS_NOT_FOUND);
    /* exactly the limit: both parts go and apply */
    assert_int_equal(shoal_batch(c, ops, N_SMALL + N_BIG, &r), SHOAL_STATUS_OK);
    shoal_result_clear(&r);
    assert_int_equal(__atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST), applied + 2);
    for (int i = 0; i < N_SMALL; i++)
        assert_int_equal(shoal_get(c, small[i], strlen(small[i]), false, NULL), SHOAL_STATUS_OK);
    free(value);
    shoal_destroy(&c);
}

typedef struct {
    int done, ok;
} counter_t;

static void count_done(shoal_result_t *r, void *arg)
{
    counter_t *c = arg;
    c->done++;
    c->ok += r->status == SHOAL_STATUS_OK;
}

static void test_async_pipelined(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    counter_t cnt = {0, 0};
    char key[32];
    int applied = fake.applied;
    int batched = __atomic_load_n(&fake.batched, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "async-%d", i);
        shoal_op_t op = {
            .type = SHOAL_OP_PUT, .key = key, .key_len = strlen(key), .value = "v", .value_len = 1};
        assert_int_equal(shoal_submit(c, &op, count_done, &cnt), 0);
    }
    assert_int_equal(shoal_inflight(c), 500);
    int64_t until = zclock_mono() + 10000;
    while (cnt.done < 500 && zclock_mono() < until)
        shoal_pump(c, 50);
    assert_int_equal(cnt.done, 500);
    assert_int_equal(cnt.ok, 500);
    assert_int_equal(fake.applied, applied + 500); /* 500 lanes, 500 distinct (id, seq) */
    /* 500 requests sent at once reach the broker in a few loop turns: batched to the node */
    assert_true(__atomic_load_n(&fake.batched, __ATOMIC_SEQ_CST) - batched >= 100);
    shoal_destroy(&c);
}

static void test_admin_status(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_cluster_t cl;
    char err[256];
    zclock_sleep(300); /* a couple of node polls */
    assert_int_equal(shoal_status(c, true, &cl, err, sizeof err), SHOAL_STATUS_OK);
    assert_int_equal(cl.n_nodes, 2);
    assert_int_equal(cl.n_shards, 2);
    assert_true(cl.nodes[0].up && cl.nodes[1].up);
    assert_int_equal(cl.shards[0].leader, 1);
    assert_int_equal(cl.shards[1].term, 3);
    assert_int_equal(cl.map_version, 1);
    /* the metadata row's members are the map's (bootstrap: the first three node ids, here
     * 0 and 1), each with its match index from the leader's status, which also listed a
     * node 7: a status answer never mixes members of one map with the version of another */
    assert_true(cl.has_meta);
    assert_int_equal(cl.meta.leader, 0);
    assert_int_equal(cl.meta.n_replicas, 2);
    assert_int_equal(cl.meta.replicas[0], 0);
    assert_int_equal(cl.meta.match_index[0], 10); /* the leader's: its commit index */
    assert_int_equal(cl.meta.replicas[1], 1);
    assert_int_equal(cl.meta.match_index[1], 9);
    shoal_cluster_clear(&cl);
    assert_int_equal(shoal_admin_compact(c, -1, err, sizeof err), SHOAL_STATUS_OK);
    shoal_destroy(&c);
}

/* A map change goes to the metadata leader; node 0 claims the lead in its status answer,
 * so the broker's first try is node 0, which answers NOT_LEADER: the broker tries the
 * next node itself, and the client sees the leader's own answer. With no leader anywhere
 * the client gets UNAVAILABLE within the deadline, naming the metadata group. */
static void test_admin_map_change_finds_meta_leader(void **state)
{
    (void)state;
    shoal_t *c = shoal_connect(broker_ep);
    char err[256];
    int before0 = __atomic_load_n(&fake.moves[0], __ATOMIC_SEQ_CST);
    int before1 = __atomic_load_n(&fake.moves[1], __ATOMIC_SEQ_CST);
    assert_int_equal(shoal_admin_move_replica(c, 0, 0, 1, err, sizeof err),
                     SHOAL_STATUS_BAD_REQUEST); /* the leader's answer: it got there */
    assert_non_null(strstr(err, "not supported"));
    assert_true(__atomic_load_n(&fake.moves[0], __ATOMIC_SEQ_CST) > before0);
    assert_int_equal(__atomic_load_n(&fake.moves[1], __ATOMIC_SEQ_CST), before1 + 1);

    __atomic_store_n(&fake.meta_down, 1, __ATOMIC_SEQ_CST);
    int64_t t0 = zclock_mono();
    assert_int_equal(shoal_admin_move_replica(c, 0, 0, 1, err, sizeof err),
                     SHOAL_STATUS_UNAVAILABLE);
    assert_non_null(strstr(err, "metadata group"));
    assert_true(zclock_mono() - t0 < 10000);
    __atomic_store_n(&fake.meta_down, 0, __ATOMIC_SEQ_CST);
    /* and tried both nodes more than once meanwhile */
    assert_true(__atomic_load_n(&fake.moves[0], __ATOMIC_SEQ_CST) > before0 + 2);
    assert_true(__atomic_load_n(&fake.moves[1], __ATOMIC_SEQ_CST) > before1 + 2);
    shoal_destroy(&c);
}

/* Publishes op seq of count of entry index (a batch's ops share the index). */
static void publish_op(int shard, int index, int prev, int seq, int count, const char *key,
                       bool send)
{
    char sh[16], ix[16], pv[16], sq[16], cn[16];
    snprintf(sh, sizeof sh, "%d", shard);
    snprintf(ix, sizeof ix, "%d", index);
    snprintf(pv, sizeof pv, "%d", prev);
    snprintf(sq, sizeof sq, "%d", seq);
    snprintf(cn, sizeof cn, "%d", count);
    zstr_sendx(fake_nodes, "PUB", sh, ix, pv, key, send ? "1" : "0", sq, cn, NULL);
    zsock_wait(fake_nodes);
}

static void publish(int shard, int index, int prev, const char *key, bool send)
{
    publish_op(shard, index, prev, 0, 1, key, send);
}

/* A SUB's subscription reaches the broker's XPUB some time after connect, and changes
 * published before that are not delivered. Publish warm-up changes on shard 1 (consecutive
 * indexes, so no gap) until one arrives, then drain, so the test's own changes on shard 0
 * are all published after the subscription is in place. */
static void wait_subscribed(shoal_watch_t *w)
{
    shoal_watch_event_t ev;
    bool seen = false;
    for (int i = 1; i <= 40 && !seen; i++) {
        publish(1, i, i - 1, "warm", true);
        while (!seen && shoal_watch_next(w, &ev, 200) == 1)
            seen = ev.kind == SHOAL_WATCH_CHANGE && ev.change.shard == 1;
    }
    assert_true(seen);
    while (shoal_watch_next(w, &ev, 300) == 1)
        ;
}

static void test_watch_dedupe_and_gap_fill(void **state)
{
    shoal_t *c = shoal_connect(broker_ep);
    shoal_watch_t *w = shoal_watch_new(c, NULL, "", 0); /* XPUB at broker port + 1 */
    assert_non_null(w);
    wait_subscribed(w);
    /* Both replicas publish every change: the watcher must see each once, in order. */
    publish(0, 5, 0, "w/a", true);
    publish(0, 6, 5, "w/b", true);
    /* Index 8 never reaches the stream; 9 says its predecessor was 8: a gap, filled from
     * the shard's changes (served by the leader) before 9 is delivered. */
    publish(0, 8, 6, "w/lost", false);
    publish(0, 9, 8, "w/c", true);
    const char *want[] = {"w/a", "w/b", "w/lost", "w/c"};
    uint64_t idx[] = {5, 6, 8, 9};
    int got = 0;
    int64_t until = zclock_mono() + 5000;
    while (got < 4 && zclock_mono() < until) {
        shoal_watch_event_t ev;
        if (shoal_watch_next(w, &ev, 200) != 1 || ev.kind != SHOAL_WATCH_CHANGE)
            continue;
        assert_string_equal((char *)ev.change.key, want[got]);
        assert_int_equal(ev.change.index, idx[got]);
        got++;
    }
    assert_int_equal(got, 4);
    /* nothing more: the second copies were dropped by the broker */
    shoal_watch_event_t ev;
    while (shoal_watch_next(w, &ev, 300) == 1)
        assert_int_not_equal(ev.kind, SHOAL_WATCH_CHANGE);
    /* A gap the shard no longer retains: the watcher is told it fell behind and where to
     * resume (after index 9, its last), then gets the live event. */
    fake.window_from = 12;
    publish(0, 15, 9, "w/gone", false);
    publish(0, 20, 15, "w/d", true);
    bool fell = false, got20 = false;
    until = zclock_mono() + 5000;
    while (!got20 && zclock_mono() < until) {
        if (shoal_watch_next(w, &ev, 200) != 1)
            continue;
        if (ev.kind == SHOAL_WATCH_FELL_BEHIND) {
            assert_int_equal(ev.change.shard, 0);
            assert_int_equal(ev.change.index, 9);
            assert_false(got20); /* told before anything newer */
            fell = true;
        } else if (ev.kind == SHOAL_WATCH_CHANGE) {
            assert_int_equal(ev.change.index, 20);
            got20 = true;
        }
    }
    assert_true(fell);
    assert_true(got20);
    /* A batch entry: ops 0-3 of entry 21, the same key twice; op 1 never reaches the
     * stream, and op 3 (the entry's tail) neither: both are filled from the shard's changes,
     * in order, each once, before entry 22. */
    const char *bkeys[] = {"w/k", "w/lost1", "w/k", "w/lost3"};
    for (int i = 0; i < 4; i++)
        publish_op(0, 21, 20, i, 4, bkeys[i], i == 0 || i == 2);
    publish_op(0, 22, 21, 0, 1, "w/e", true);
    const char *bwant[] = {"w/k", "w/lost1", "w/k", "w/lost3", "w/e"};
    got = 0;
    until = zclock_mono() + 5000;
    while (got < 5 && zclock_mono() < until) {
        if (shoal_watch_next(w, &ev, 200) != 1 || ev.kind != SHOAL_WATCH_CHANGE)
            continue;
        assert_string_equal((char *)ev.change.key, bwant[got]);
        assert_int_equal(ev.change.index, got < 4 ? 21 : 22);
        got++;
    }
    assert_int_equal(got, 5);
    while (shoal_watch_next(w, &ev, 300) == 1)
        assert_int_not_equal(ev.kind, SHOAL_WATCH_CHANGE);
    shoal_watch_destroy(&w);
    shoal_destroy(&c);
}

/* One HTTP GET over a plain TCP socket; returns the whole answer (caller frees). */
static char *http_get(const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base_port + 2))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap + 1);
    ssize_t r;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)r; /* the broker closes the connection after the answer */
    close(fd);
    return buf;
}

static void test_dashboard(void **state)
{
    char *page = http_get("/");
    assert_non_null(page);
    assert_non_null(strstr(page, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(page, "status.json"));
    free(page);
    char *json = http_get("/status.json");
    assert_non_null(json);
    assert_non_null(strstr(json, "application/json"));
    assert_non_null(strstr(json, "\"shards\":[{\"id\":0,\"leader\":1"));
    /* the object `shoalctl status --json` prints: nodes with follower_reads, each shard's
     * leaving list (a move in progress), the metadata group as "meta" (led by node 0, its
     * members those of the map: test_admin_status) */
    assert_non_null(strstr(json, "\"disk_bytes\":0,\"follower_reads\":0}"));
    assert_non_null(strstr(json, "\"shards\":[{\"id\":0,\"leader\":1,\"term\":3,\"commit\":"));
    assert_non_null(strstr(json, ",\"max_lag\":"));
    assert_non_null(strstr(json, ",\"size_bytes\":0,\"replicas\":[{\"node\":0,\"match\":0},"
                                 "{\"node\":1,\"match\":"));
    assert_non_null(strstr(json, "}],\"leaving\":[]},{\"id\":1,\"leader\":1,"));
    assert_non_null(strstr(json, "],\"meta\":{\"id\":4294967295,\"leader\":0,\"term\":3,"
                                 "\"commit\":10,\"applied\":10,\"max_lag\":1,\"size_bytes\":0,"
                                 "\"replicas\":[{\"node\":0,\"match\":10},{\"node\":1,"
                                 "\"match\":9}],\"leaving\":[]},\"events\":["));
    assert_null(strstr(json, "\"leader\":-1")); /* no leader is null */
    free(json);
    char *missing = http_get("/nope");
    assert_non_null(strstr(missing, "404"));
    free(missing);
    /* Clients that leave before their answer (a request, then close at once: `nc -N`)
     * must not wedge the dashboard: a send to a peer already gone fails, and the frames
     * after it were once taken as the start of the next message, so every later answer
     * went astray and browsers waited forever. */
    for (int i = 0; i < 8; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)(base_port + 2))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        const char *req = i % 2 ? "GARBAGE\r\n\r\n" : "GET /status.json HTTP/1.1\r\n\r\n";
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    zclock_sleep(200);
    char *after = http_get("/status.json");
    assert_non_null(after);
    assert_non_null(strstr(after, "HTTP/1.1 200 OK"));
    free(after);
}

/* Asks the broker (status, cluster id) until it shows map version v of cluster id
 * (within 5 s): false if it does not. */
static bool wait_map(shoal_t *c, uint64_t v, uint64_t id)
{
    int64_t until = zclock_mono() + 5000;
    uint64_t got_v = 0, got_id = 0;
    do {
        shoal_cluster_t cl;
        char err[256];
        if (shoal_status(c, false, &cl, err, sizeof err) == SHOAL_STATUS_OK)
            got_v = cl.map_version;
        shoal_cluster_clear(&cl);
        shoal_cluster_id(c, &got_id, err, sizeof err);
        if (got_v == v && got_id == id)
            return true;
        zclock_sleep(50);
    } while (zclock_mono() < until);
    return false;
}

/* A broker keeps to the cluster it serves (ShardMap.cluster_id): its config names none
 * here, so it learns the id of the first map that carries one, and then refuses the maps of
 * another cluster, newer versions too: a node endpoint now served by another cluster's node
 * used to hand the broker that cluster's map, and the broker routed clients there. */
static void test_map_of_another_cluster(void **state)
{
    (void)state;
    shoal_t *c = shoal_connect(broker_ep);
    char err[256];
    uint64_t id = 1;
    assert_int_equal(shoal_cluster_id(c, &id, err, sizeof err), SHOAL_STATUS_OK);
    assert_true(id == 0); /* no node has answered a map yet */
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&fake.map_version[i], 2, __ATOMIC_SEQ_CST);
        __atomic_store_n(&fake.map_cluster[i], 0xa1, __ATOMIC_SEQ_CST);
    }
    assert_true(wait_map(c, 2, 0xa1));
    /* node 1 now answers cluster b2's map, newer; the broker polls maps every 400 ms */
    __atomic_store_n(&fake.map_version[1], 3, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fake.map_cluster[1], 0xb2, __ATOMIC_SEQ_CST);
    zclock_sleep(1500);
    assert_true(wait_map(c, 2, 0xa1));
    /* and a newer map of its own cluster is still taken */
    __atomic_store_n(&fake.map_version[0], 4, __ATOMIC_SEQ_CST);
    assert_true(wait_map(c, 4, 0xa1));
    char *json = http_get("/status.json");
    assert_non_null(json);
    assert_non_null(strstr(json, "{\"map_version\":4,\"cluster_id\":\"00000000000000a1\","));
    free(json);
    for (int i = 0; i < 2; i++)
        __atomic_store_n(&fake.map_cluster[i], 0, __ATOMIC_SEQ_CST);
    shoal_destroy(&c);
}

/* The cluster section of the config tests below: one node. */
static const char *nodes = "cluster\n    shards = 1\n    replicas = 1\n    nodes\n"
                           "        0\n            endpoint = \"tcp://127.0.0.1:1\"\n"
                           "            pub_endpoint = \"tcp://127.0.0.1:2\"\n";

/* broker/read_from: "leader" (default) or "replicas"; anything else is refused by name. */
static void test_config_read_from(void **state)
{
    (void)state;
    char text[512], err[256] = "";
    broker_config_t c;
    assert_int_equal(broker_config_parse(nodes, &c, err, sizeof err), 0);
    assert_false(c.read_replicas);
    snprintf(text, sizeof text, "broker\n    read_from = \"replicas\"\n%s", nodes);
    assert_int_equal(broker_config_parse(text, &c, err, sizeof err), 0);
    assert_true(c.read_replicas);
    snprintf(text, sizeof text, "broker\n    read_from = \"followers\"\n%s", nodes);
    assert_int_not_equal(broker_config_parse(text, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "broker/read_from"));
}

/* broker/sched_batch: 1 (default) or 0; anything else is refused by name. */
static void test_config_sched_batch(void **state)
{
    (void)state;
    char text[512], err[256] = "";
    broker_config_t c;
    assert_int_equal(broker_config_parse(nodes, &c, err, sizeof err), 0);
    assert_int_equal(c.sched_batch, 1);
    snprintf(text, sizeof text, "broker\n    sched_batch = 0\n%s", nodes);
    assert_int_equal(broker_config_parse(text, &c, err, sizeof err), 0);
    assert_int_equal(c.sched_batch, 0);
    snprintf(text, sizeof text, "broker\n    sched_batch = 2\n%s", nodes);
    assert_int_not_equal(broker_config_parse(text, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "broker/sched_batch"));
}

/* Parses text (the one-node cluster section appended) and expects a refusal naming want. */
static void expect_config_refused(const char *text, const char *want)
{
    char full[1024], err[256] = "";
    broker_config_t c;
    snprintf(full, sizeof full, "%s%s", text, nodes);
    assert_int_equal(broker_config_parse(full, &c, err, sizeof err), SHOAL_EINVAL);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not name %s", err, want);
}

/* A key or section the broker does not read is refused by its full path (a typo would
 * otherwise leave the default in place without a word). */
static void test_config_unknown_keys(void **state)
{
    (void)state;
    expect_config_refused("broker\n    request_timeout = 100\n",
                          "unknown key \"broker/request_timeout\"");
    expect_config_refused("brokr\n    poll_ms = 100\n", "unknown key \"brokr\"");
    expect_config_refused("node\n    id = 0\n", "unknown key \"node\"");
    expect_config_refused("broker\n    poll_ms = 100\n        fast = 1\n",
                          "unknown key \"broker/poll_ms/fast\"");
    expect_config_refused("broker = \"x\"\n", "broker is a section");
    char err[256] = "";
    broker_config_t c;
    const char *typo =
        "cluster\n    nodes\n        0\n            endpoint = \"tcp://127.0.0.1:1\"\n"
        "            pub_endpoint = \"tcp://127.0.0.1:2\"\n            pub = 1\n";
    assert_int_not_equal(broker_config_parse(typo, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown key \"cluster/nodes/0/pub\""));
}

/* cluster/id as a node reads it: 1 to 16 hex digits, not zero; absent is 0 (learned from
 * the first node's map). */
static void test_config_cluster_id(void **state)
{
    (void)state;
    char text[1024], err[256] = "";
    broker_config_t c;
    assert_int_equal(broker_config_parse(nodes, &c, err, sizeof err), 0);
    assert_true(c.cluster_id == 0);
    snprintf(text, sizeof text, "%s    id = 00c0ffee1234ABCD\n", nodes);
    if (broker_config_parse(text, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(c.cluster_id == 0xc0ffee1234abcdULL);
    const char *bad[] = {"0", "xyz", "12345678901234567", "-1", "0x12"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "%s    id = %s\n", nodes, bad[i]);
        assert_int_equal(broker_config_parse(text, &c, err, sizeof err), SHOAL_EINVAL);
        if (!strstr(err, "cluster/id"))
            fail_msg("error \"%s\" does not name cluster/id", err);
    }
}

/* A key written twice is refused with its path and both lines (it took its first value
 * without a word); so is a section. */
static void test_config_key_twice(void **state)
{
    (void)state;
    expect_config_refused("broker\n    poll_ms = 100\n    poll_ms = 200\n",
                          "line 3: broker/poll_ms is written twice (lines 2 and 3)");
    expect_config_refused("broker\n    poll_ms = 100\nbroker\n    max_scan = 5\n",
                          "line 3: broker is written twice (lines 1 and 3)");
    char text[1024], err[256] = "";
    broker_config_t c;
    snprintf(text, sizeof text, "%s    shards = 2\n", nodes);
    assert_int_equal(broker_config_parse(text, &c, err, sizeof err), SHOAL_EINVAL);
    if (!strstr(err, "cluster/shards is written twice (lines 2 and 8)"))
        fail_msg("error \"%s\" does not name cluster/shards and lines 2 and 8", err);
}

/* Every endpoint must be tcp://HOST:PORT with a port of 1-65535 (ZeroMQ takes port 99999 as
 * 34463); a bind to every interface, tcp://\*:PORT, is fine. */
static void test_config_endpoints(void **state)
{
    (void)state;
    expect_config_refused("broker\n    client_endpoint = \"tcp://127.0.0.1:99999\"\n",
                          "broker/client_endpoint = \"tcp://127.0.0.1:99999\"");
    expect_config_refused("broker\n    pub_endpoint = \"tcp://127.0.0.1\"\n",
                          "broker/pub_endpoint");
    expect_config_refused("broker\n    http_endpoint = \"tcp://127.0.0.1:0\"\n",
                          "broker/http_endpoint");
    expect_config_refused("broker\n    client_endpoint = \"127.0.0.1:7000\"\n",
                          "broker/client_endpoint");
    char text[1024], err[256] = "";
    broker_config_t c;
    snprintf(text, sizeof text, "broker\n    client_endpoint = \"tcp://*:7000\"\n%s", nodes);
    assert_int_equal(broker_config_parse(text, &c, err, sizeof err), 0);
    assert_string_equal(c.client_endpoint, "tcp://*:7000");
    const char *bad =
        "cluster\n    nodes\n        0\n            endpoint = \"tcp://127.0.0.1:65536\"\n"
        "            pub_endpoint = \"tcp://127.0.0.1:2\"\n";
    assert_int_not_equal(broker_config_parse(bad, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "cluster/nodes/0/endpoint"));
    bad = "cluster\n    nodes\n        0\n            endpoint = \"tcp://127.0.0.1:1\"\n"
          "            pub_endpoint = \"tcp://127.0.0.1:-2\"\n";
    assert_int_not_equal(broker_config_parse(bad, &c, err, sizeof err), 0);
    assert_non_null(strstr(err, "cluster/nodes/0/pub_endpoint"));
}

/* A syntax error is one line naming the file and the line, and nothing reaches stdout
 * (zconfig_load would print the offending bytes there); config/broker.cfg loads. */
static void test_config_syntax_error(void **state)
{
    (void)state;
    char path[] = "/tmp/test_client_broker_cfg.XXXXXX",
         out[] = "/tmp/test_client_broker_out.XXXXXX";
    int fd = mkstemp(path), ofd = mkstemp(out);
    assert_true(fd >= 0 && ofd >= 0);
    const char *text = "broker\n    poll_ms = 100\n    max_scan = \"10\" 0\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    broker_config_t c;
    char err[512] = "";
    fflush(stdout);
    int saved = dup(1);
    assert_true(saved >= 0 && dup2(ofd, 1) == 1);
    int rc = broker_config_load(path, &c, err, sizeof err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    long printed = (long)lseek(ofd, 0, SEEK_END);
    close(ofd);
    unlink(out);
    unlink(path);
    assert_int_not_equal(rc, 0);
    if (printed != 0)
        fail_msg("%ld bytes on stdout", printed);
    if (!strstr(err, path) || !strstr(err, "line 3") || strchr(err, '\n'))
        fail_msg("\"%s\" does not name the file and line 3 in one line", err);
    const char *src = getenv("SHOAL_SOURCE_DIR");
    if (src) {
        char example[1024];
        snprintf(example, sizeof example, "%s/config/broker.cfg", src);
        if (broker_config_load(example, &c, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_int_equal(c.n_nodes, 3);
    }
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_follows_leader_hint),
        cmocka_unit_test(test_silent_leader_retry_same_seq),
        cmocka_unit_test(test_deadline_when_all_silent),
        cmocka_unit_test(test_limits_and_bad_input),
        cmocka_unit_test(test_batch_and_scan_fan_out),
        cmocka_unit_test(test_batch_part_over_node_limit),
        cmocka_unit_test(test_async_pipelined),
        cmocka_unit_test(test_admin_status),
        cmocka_unit_test(test_admin_map_change_finds_meta_leader),
        cmocka_unit_test(test_watch_dedupe_and_gap_fill),
        cmocka_unit_test(test_dashboard),
        cmocka_unit_test(test_map_of_another_cluster),
        cmocka_unit_test(test_config_cluster_id),
        cmocka_unit_test(test_config_key_twice),
        cmocka_unit_test(test_config_read_from),
        cmocka_unit_test(test_config_sched_batch),
        cmocka_unit_test(test_config_unknown_keys),
        cmocka_unit_test(test_config_endpoints),
        cmocka_unit_test(test_config_syntax_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
