/* node_client.c - a small client that talks to shoald directly (DEALER + proto/codec.c),
 * for the node integration tests and the node benchmark; it does not use libshoal so the
 * node can be tested on its own.
 *
 * Keys and shards: a node serves a key only from the shard its shard map places it in
 * (docs/CONTRACTS.md), while these tests name the shard they exercise. So a KEY below is
 * the name a test gives: the tool asks the nodes for their map (the first to answer) and
 * stores KEY itself when the map places it in shard S, else KEY~N with the smallest N
 * (1, 2, ...) that it places there; scan and changes print names with such a "~N" suffix
 * cut off. A test therefore writes, reads and scans the names it chose in the shard it
 * chose, through the node's real checks. Keys of the metadata group (not on the ring) are
 * sent as they are.
 *
 *   node_client [--timeout MS] [--attempt MS] [--node I | --only I] ENDPOINTS CMD ARGS...
 *     --node I    ask node I first, then follow NOT_LEADER hints
 *     --only I    ask node I only: a NOT_LEADER answer is final (exit 4)
 *     ENDPOINTS   comma-separated ROUTER endpoints of the nodes
 *     put S K V | get S K [stale] | del S K | cas S K EXPECTED NEW | cas-absent S K NEW
 *     scan S PREFIX LIMIT       prints KEY<TAB>VALUE lines
 *     batch S K V [K V ...]     puts all pairs in one atomic batch
 *     load S PREFIX FROM TO     writes PREFIX<i> = v<i>, printing "ack <i>" per acknowledged
 *                               write (the test's record of what must survive)
 *     check S PREFIX FILE       every "ack <i>" in FILE must read back as v<i> (linearizable)
 *     wait-leaders S1,S2,...    waits until each shard answers a linearizable read
 *     leader S                  prints the node index (position in ENDPOINTS) of the leader
 *     changes S AFTER           prints INDEX<TAB>KEY lines of the retained changes
 *     events PUB MS             prints the topics (and Raft event types) published on a
 *                               node's PUB endpoint during MS milliseconds
 *     disk-bytes I              prints node I's bytes_on_disk (its status metrics)
 *     commit I S                prints node I's commit index of shard S
 *
 * A request goes to the leader it last heard of, follows NOT_LEADER hints, and retries on
 * UNAVAILABLE, TIMEOUT or silence with the same (client_id, seq), so a write is applied once
 * even when it is retried on a new leader. Exit 0 ok, 1 not found / compare failed / check
 * failed, 3 unavailable until the deadline. */
#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ring.h"
#include "proto/admin.pb-c.h"
#include "proto/codec.h"
#include "proto/events.pb-c.h"

#define MAX_NODES 16

typedef struct {
    char *ep[MAX_NODES];
    zsock_t *sock[MAX_NODES];
    int n;
    int leader[1024]; /* per shard: node index, -1 unknown */
    uint64_t client_id, seq, rid;
    int timeout_ms;
    int attempt_ms; /* silence after which a request is sent again */
    int only;       /* >= 0: every attempt goes to this node, NOT_LEADER is an answer */
    ring_t *ring;   /* the nodes' shard map as a ring (placed_key), fetched on first use */
    char placed[8192];
} client_t;

static int node_of_endpoint(client_t *c, const char *ep)
{
    for (int i = 0; i < c->n; i++)
        if (streq(c->ep[i], ep))
            return i;
    return -1;
}

/* The ring of the shard map the first node to answer holds (admin shard_map), built as
 * the nodes build theirs (ShardInfo.points, else vnodes_per_shard derived points); NULL
 * when no node answers within the client's timeout. */
static ring_t *fetch_ring(client_t *c)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__ShardMapRequest sm = SHOAL__SHARD_MAP_REQUEST__INIT;
    req.request_id = ++c->rid;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_SHARD_MAP;
    req.shard_map = &sm;
    Shoal__Frame f = shoal_admin_frame(&req);
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    zpoller_t *p = zpoller_new(NULL);
    for (int i = 0; i < c->n; i++) {
        zmq_send(zsock_resolve(c->sock[i]), buf, len, ZMQ_DONTWAIT);
        zpoller_add(p, c->sock[i]);
    }
    free(buf);
    ring_t *ring = NULL;
    for (int64_t until = zclock_mono() + c->timeout_ms; !ring && zclock_mono() < until;) {
        zsock_t *s = zpoller_wait(p, (int)(until - zclock_mono()));
        if (!s)
            break;
        zframe_t *fr = zframe_recv(s);
        Shoal__Frame *resp = NULL;
        char err[128];
        if (fr &&
            shoal_frame_decode(zframe_data(fr), zframe_size(fr), &resp, err, sizeof err) == 0 &&
            resp->body_case == SHOAL__FRAME__BODY_ADMIN_RESP &&
            resp->admin_resp->request_id == req.request_id && resp->admin_resp->shard_map) {
            const Shoal__ShardMap *m = resp->admin_resp->shard_map;
            ring = ring_new(m->vnodes_per_shard ? m->vnodes_per_shard : 64);
            for (size_t k = 0; ring && k < m->n_shards; k++) {
                const Shoal__ShardInfo *si = m->shards[k];
                if (si->n_points)
                    ring_add_points(ring, si->id, si->points, si->n_points);
                else
                    ring_add_shard(ring, si->id);
            }
        }
        shoal_frame_free(&resp);
        zframe_destroy(&fr);
    }
    zpoller_destroy(&p);
    return ring;
}

/* The key to store a test's key name under in shard (see the head comment): name, or
 * name~N. Borrowed from c (valid until the next call); NULL when no node told its map. */
static const char *placed_key(client_t *c, uint32_t shard, const char *name)
{
    if (!c->ring && !(c->ring = fetch_ring(c)))
        return NULL;
    size_t len = strlen(name);
    if (!ring_has_shard(c->ring, shard) || len + 12 > sizeof c->placed)
        return name;
    memcpy(c->placed, name, len + 1);
    for (unsigned i = 1; ring_shard_for(c->ring, c->placed, strlen(c->placed)) != shard; i++)
        snprintf(c->placed + len, sizeof c->placed - len, "~%u", i);
    return c->placed;
}

/* A stored key's length without the ~N suffix placed_key may have added. */
static int name_len(const uint8_t *k, size_t len)
{
    size_t i = len;
    while (i > 0 && k[i - 1] >= '0' && k[i - 1] <= '9')
        i--;
    return (int)(i > 0 && i < len && k[i - 1] == '~' ? i - 1 : len);
}

/* One attempt: send req to node i, wait up to ms for the reply with the same request id. */
static Shoal__Frame *attempt(client_t *c, int i, Shoal__ClientRequest *req, int ms,
                             uint64_t first_rid)
{
    req->request_id = ++c->rid;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
    f.client_req = req;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    zmq_send(zsock_resolve(c->sock[i]), buf, len, ZMQ_DONTWAIT);
    free(buf);
    int64_t until = zclock_mono() + ms;
    while (zclock_mono() < until) {
        zpoller_t *p = zpoller_new(c->sock[i], NULL);
        void *s = zpoller_wait(p, (int)(until - zclock_mono()));
        zpoller_destroy(&p);
        if (!s)
            break;
        zframe_t *fr = zframe_recv(c->sock[i]);
        Shoal__Frame *resp = NULL;
        char err[128];
        if (fr &&
            shoal_frame_decode(zframe_data(fr), zframe_size(fr), &resp, err, sizeof err) == 0 &&
            resp->body_case == SHOAL__FRAME__BODY_CLIENT_RESP &&
            resp->client_resp->request_id >= first_rid) { /* any attempt of this call */
            zframe_destroy(&fr);
            return resp;
        }
        shoal_frame_free(&resp);
        zframe_destroy(&fr);
    }
    return NULL;
}

/* Sends req to the shard's leader until a final answer or the deadline. */
static Shoal__Frame *call(client_t *c, Shoal__ClientRequest *req)
{
    int64_t deadline = zclock_mono() + c->timeout_ms;
    uint32_t s = req->shard % 1024;
    int next = c->leader[s] >= 0 ? c->leader[s] : (int)(req->shard % (uint32_t)c->n);
    int backoff = 10;
    uint64_t first_rid = c->rid + 1;
    while (zclock_mono() < deadline) {
        Shoal__Frame *f = attempt(c, next, req, c->attempt_ms, first_rid);
        if (f) {
            Shoal__ClientResponse *r = f->client_resp;
            if (r->status == SHOAL__STATUS__STATUS_NOT_LEADER && c->only < 0) {
                int hinted = r->leader ? node_of_endpoint(c, r->leader->endpoint) : -1;
                next = hinted >= 0 && hinted != next ? hinted : (next + 1) % c->n;
                shoal_frame_free(&f);
                if (hinted < 0)
                    zclock_sleep(backoff);
                continue;
            }
            if (r->status != SHOAL__STATUS__STATUS_UNAVAILABLE &&
                r->status != SHOAL__STATUS__STATUS_TIMEOUT) {
                c->leader[s] = next;
                return f;
            }
            shoal_frame_free(&f);
        }
        next = c->only >= 0 ? c->only : (next + 1) % c->n;
        zclock_sleep(backoff);
        backoff = backoff < 200 ? backoff * 2 : 200;
    }
    return NULL;
}

static int status_exit(Shoal__ClientResponse *r)
{
    switch (r->status) {
    case SHOAL__STATUS__STATUS_OK: return 0;
    case SHOAL__STATUS__STATUS_NOT_FOUND:
    case SHOAL__STATUS__STATUS_COMPARE_FAILED: return 1;
    case SHOAL__STATUS__STATUS_BAD_REQUEST:
    case SHOAL__STATUS__STATUS_TOO_LARGE: return 2;
    case SHOAL__STATUS__STATUS_NOT_LEADER: return 4; /* only with --only */
    default: return 3;
    }
}

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static int do_put(client_t *c, uint32_t shard, const char *k, const char *v, bool quiet)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__PutRequest put = SHOAL__PUT_REQUEST__INIT;
    const char *pk = placed_key(c, shard, k);
    if (!pk) {
        if (!quiet)
            fprintf(stderr, "put %s: no node told its shard map\n", k);
        return 3;
    }
    put.key = bin(pk);
    put.value = bin(v);
    req.client_id = c->client_id;
    req.seq = ++c->seq;
    req.shard = shard;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_PUT;
    req.put = &put;
    Shoal__Frame *f = call(c, &req);
    if (!f) {
        if (!quiet)
            fprintf(stderr, "put %s: unavailable\n", k);
        return 3;
    }
    int rc = status_exit(f->client_resp);
    if (rc && !quiet)
        fprintf(stderr, "put %s: status %d %s\n", k, f->client_resp->status, f->client_resp->error);
    shoal_frame_free(&f);
    return rc;
}

/* Reads key; *val (malloc'd) gets the value. */
static int do_get(client_t *c, uint32_t shard, const char *k, bool stale, char **val)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__GetRequest get = SHOAL__GET_REQUEST__INIT;
    const char *pk = placed_key(c, shard, k);
    if (!pk)
        return 3;
    get.key = bin(pk);
    get.stale = stale;
    req.client_id = c->client_id;
    req.shard = shard;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_GET;
    req.get = &get;
    Shoal__Frame *f = call(c, &req);
    if (!f)
        return 3;
    int rc = status_exit(f->client_resp);
    if (rc == 0 && val)
        *val = strndup((char *)f->client_resp->value.data, f->client_resp->value.len);
    shoal_frame_free(&f);
    return rc;
}

static int do_simple(client_t *c, Shoal__ClientRequest *req, bool print_value)
{
    req->client_id = c->client_id;
    if (req->op_case != SHOAL__CLIENT_REQUEST__OP_SCAN &&
        req->op_case != SHOAL__CLIENT_REQUEST__OP_CHANGES)
        req->seq = ++c->seq;
    Shoal__Frame *f = call(c, req);
    if (!f) {
        fprintf(stderr, "unavailable\n");
        return 3;
    }
    Shoal__ClientResponse *r = f->client_resp;
    if (print_value && r->value.len)
        printf("%.*s\n", (int)r->value.len, (char *)r->value.data);
    for (size_t i = 0; i < r->n_kvs; i++)
        printf("%.*s\t%.*s\n", name_len(r->kvs[i]->key.data, r->kvs[i]->key.len),
               (char *)r->kvs[i]->key.data, (int)r->kvs[i]->value.len,
               (char *)r->kvs[i]->value.data);
    for (size_t i = 0; i < r->n_changes; i++)
        printf("%llu\t%s\t%.*s\n", (unsigned long long)r->changes[i]->index,
               r->changes[i]->is_delete ? "del" : "put",
               name_len(r->changes[i]->key.data, r->changes[i]->key.len),
               (char *)r->changes[i]->key.data);
    int rc = status_exit(r);
    if (rc)
        fprintf(stderr, "status %d: %s\n", r->status, r->error);
    shoal_frame_free(&f);
    return rc;
}

static int cmd_load(client_t *c, uint32_t shard, const char *prefix, long from, long to)
{
    char k[256], v[64];
    for (long i = from; i < to; i++) {
        snprintf(k, sizeof k, "%s%ld", prefix, i);
        snprintf(v, sizeof v, "v%ld", i);
        if (do_put(c, shard, k, v, true) == 0) {
            printf("ack %ld\n", i);
            fflush(stdout);
        }
    }
    return 0;
}

static int cmd_check(client_t *c, uint32_t shard, const char *prefix, const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "check: cannot open %s\n", file);
        return 2;
    }
    long i, n = 0, bad = 0;
    while (fscanf(f, "ack %ld\n", &i) == 1) {
        char k[256], want[64], *got = NULL;
        snprintf(k, sizeof k, "%s%ld", prefix, i);
        snprintf(want, sizeof want, "v%ld", i);
        int rc = do_get(c, shard, k, false, &got);
        if (rc != 0 || !got || strcmp(got, want) != 0) {
            fprintf(stderr, "check: acknowledged %s lost (rc %d, got %s)\n", k, rc,
                    got ? got : "nothing");
            bad++;
        }
        free(got);
        n++;
    }
    fclose(f);
    printf("checked %ld acknowledged writes, %ld missing\n", n, bad);
    return bad ? 1 : 0;
}

/* Subscribes to a node's PUB endpoint for ms and prints one line per message:
 * the topic, and for Raft events their type number (metrics: the replica count too). */
static int cmd_events(const char *pub, int ms)
{
    zsock_t *sub = zsock_new_sub(pub, "");
    if (!sub)
        return 2;
    int64_t until = zclock_mono() + ms;
    zpoller_t *p = zpoller_new(sub, NULL);
    while (zclock_mono() < until) {
        if (!zpoller_wait(p, (int)(until - zclock_mono())))
            continue;
        zmsg_t *m = zmsg_recv(sub);
        char *topic = zmsg_popstr(m);
        zframe_t *body = zmsg_pop(m);
        if (topic && body &&
            (strncmp(topic, "raft/", 5) == 0 || strncmp(topic, "metrics/", 8) == 0)) {
            Shoal__RaftEvent *ev =
                shoal__raft_event__unpack(NULL, zframe_size(body), zframe_data(body));
            if (ev)
                printf("%s %d %u\n", topic, (int)ev->type, ev->metrics ? ev->metrics->replicas : 0);
            if (ev)
                shoal__raft_event__free_unpacked(ev, NULL);
        } else if (topic)
            printf("%s\n", topic);
        fflush(stdout);
        zstr_free(&topic);
        zframe_destroy(&body);
        zmsg_destroy(&m);
    }
    zpoller_destroy(&p);
    zsock_destroy(&sub);
    return 0;
}

/* Node i's own status answer (its ClusterStatus, within the frame: the caller frees the
 * frame), or NULL if it does not answer within timeout_ms. */
static Shoal__Frame *node_status(client_t *c, int i, int64_t timeout_ms)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__StatusRequest st = SHOAL__STATUS_REQUEST__INIT;
    req.request_id = ++c->rid;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_STATUS;
    req.status = &st;
    Shoal__Frame f = shoal_admin_frame(&req);
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    zmq_send(zsock_resolve(c->sock[i]), buf, len, ZMQ_DONTWAIT);
    free(buf);
    Shoal__Frame *found = NULL;
    zpoller_t *p = zpoller_new(c->sock[i], NULL);
    for (int64_t until = zclock_mono() + timeout_ms; !found && zclock_mono() < until;) {
        if (!zpoller_wait(p, (int)(until - zclock_mono())))
            break;
        zframe_t *fr = zframe_recv(c->sock[i]);
        Shoal__Frame *resp = NULL;
        char err[128];
        if (fr &&
            shoal_frame_decode(zframe_data(fr), zframe_size(fr), &resp, err, sizeof err) == 0 &&
            resp->body_case == SHOAL__FRAME__BODY_ADMIN_RESP &&
            resp->admin_resp->request_id == req.request_id && resp->admin_resp->cluster)
            found = resp;
        else
            shoal_frame_free(&resp);
        zframe_destroy(&fr);
    }
    zpoller_destroy(&p);
    return found;
}

/* Node i's own view: does it lead the shard, and in which term (0: it does not). */
static uint64_t claims_lead(client_t *c, int i, uint32_t shard)
{
    Shoal__Frame *resp = node_status(c, i, 500);
    if (!resp)
        return 0;
    const Shoal__ClusterStatus *cs = resp->admin_resp->cluster;
    uint64_t self = cs->n_nodes ? cs->nodes[0]->id : UINT64_MAX, term = 0;
    for (size_t k = 0; k < cs->n_shards; k++)
        if (cs->shards[k]->id == shard && cs->shards[k]->leader == self)
            term = cs->shards[k]->term ? cs->shards[k]->term : 1;
    shoal_frame_free(&resp);
    return term;
}

/* Node i's own count of the bytes it keeps on disk (NodeMetrics.bytes_on_disk, the DISK
 * column of `shoalctl status`); prints it, exit 0, or 3 if the node does not answer. */
static int cmd_disk_bytes(client_t *c, int i)
{
    Shoal__Frame *resp = node_status(c, i, c->timeout_ms);
    const Shoal__ClusterStatus *cs = resp ? resp->admin_resp->cluster : NULL;
    int rc = 3;
    if (cs && cs->n_nodes && cs->nodes[0]->metrics) {
        printf("%" PRIu64 "\n", cs->nodes[0]->metrics->bytes_on_disk);
        rc = 0;
    }
    shoal_frame_free(&resp);
    return rc;
}

/* Node i's commit index of shard; prints it, exit 0, or 3 if the node does not answer. */
static int cmd_commit(client_t *c, int i, uint32_t shard)
{
    Shoal__Frame *resp = node_status(c, i, c->timeout_ms);
    const Shoal__ClusterStatus *cs = resp ? resp->admin_resp->cluster : NULL;
    int rc = 3;
    for (size_t k = 0; cs && k < cs->n_shards; k++)
        if (cs->shards[k]->id == shard) {
            printf("%" PRIu64 "\n", cs->shards[k]->commit_index);
            rc = 0;
        }
    shoal_frame_free(&resp);
    return rc;
}

/* The node that leads the shard: the one that says so in the highest term and answers a
 * linearizable read (a deposed leader that has not heard of the new term yet fails it).
 * Reads alone cannot tell: followers serve them too. */
static int find_leader(client_t *c, uint32_t shard)
{
    for (int64_t deadline = zclock_mono() + c->timeout_ms; zclock_mono() < deadline;) {
        int best = -1;
        uint64_t best_term = 0;
        for (int i = 0; i < c->n; i++) {
            uint64_t t = claims_lead(c, i, shard);
            if (t > best_term) {
                best = i;
                best_term = t;
            }
        }
        if (best >= 0) {
            client_t one = *c;
            one.only = best;
            one.leader[shard % 1024] = best;
            one.timeout_ms = 1000;
            int rc = do_get(&one, shard, "leader-probe", false, NULL);
            c->rid = one.rid;
            c->ring = one.ring; /* fetched by the copy, if not before */
            if (rc == 0 || rc == 1)
                return best;
        }
        zclock_sleep(50);
    }
    return -1;
}

static int cmd_wait_leaders(client_t *c, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        int r = do_get(c, (uint32_t)atoi(t), "wait-leaders-probe", false, NULL);
        if (r == 3) {
            fprintf(stderr, "shard %s: no leader\n", t);
            rc = 3;
        }
    }
    free(copy);
    return rc;
}

int main(int argc, char **argv)
{
    zsys_init();
    zsys_set_logstream(stderr);
    client_t c;
    memset(&c, 0, sizeof c);
    memset(c.leader, -1, sizeof c.leader);
    c.timeout_ms = 20000;
    c.only = -1;
    c.attempt_ms = 1000;
    int a = 1;
    int first_node = -1;
    while (a + 1 < argc && argv[a][0] == '-') {
        if (streq(argv[a], "--timeout"))
            c.timeout_ms = atoi(argv[a + 1]);
        else if (streq(argv[a], "--node")) /* ask this node first (stale reads from it) */
            first_node = atoi(argv[a + 1]);
        else if (streq(argv[a], "--only"))
            first_node = c.only = atoi(argv[a + 1]);
        else if (streq(argv[a], "--attempt"))
            c.attempt_ms = atoi(argv[a + 1]);
        a += 2;
    }
    for (int i = 0; first_node >= 0 && i < 1024; i++)
        c.leader[i] = first_node;
    if (argc - a < 2) {
        fprintf(stderr, "usage: node_client [--timeout MS] ENDPOINTS CMD ARGS...\n");
        return 2;
    }
    char *eps = strdup(argv[a++]), *save = NULL;
    for (char *t = strtok_r(eps, ",", &save); t && c.n < MAX_NODES;
         t = strtok_r(NULL, ",", &save)) {
        c.ep[c.n] = t;
        c.sock[c.n] = zsock_new(ZMQ_DEALER);
        zsock_set_linger(c.sock[c.n], 0);
        zsock_connect(c.sock[c.n], "%s", t);
        c.n++;
    }
    c.client_id = ((uint64_t)getpid() << 32) ^ zclock_usecs();
    const char *cmd = argv[a++];
    int n = argc - a, rc = 2;
    char **v = argv + a;
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__DeleteRequest del = SHOAL__DELETE_REQUEST__INIT;
    Shoal__CasRequest cas = SHOAL__CAS_REQUEST__INIT;
    Shoal__ScanRequest scan = SHOAL__SCAN_REQUEST__INIT;
    Shoal__ChangesRequest ch = SHOAL__CHANGES_REQUEST__INIT;
    if (n >= 1)
        req.shard = (uint32_t)strtoul(v[0], NULL, 10);
    /* del, cas and batch name a key second (a batch's first one fetches the map) */
    bool keyed = n >= 2 && (streq(cmd, "del") || streq(cmd, "cas") || streq(cmd, "cas-absent") ||
                            streq(cmd, "batch"));
    const char *key = NULL;
    if (streq(cmd, "put") && n == 3)
        rc = do_put(&c, req.shard, v[1], v[2], false);
    else if (streq(cmd, "get") && (n == 2 || n == 3)) {
        char *val = NULL;
        rc = do_get(&c, req.shard, v[1], n == 3, &val);
        if (val)
            printf("%s\n", val);
        free(val);
    } else if (keyed && !(key = placed_key(&c, req.shard, v[1]))) {
        fprintf(stderr, "%s: no node told its shard map\n", cmd);
        rc = 3;
    } else if (streq(cmd, "del") && n == 2) {
        del.key = bin(key);
        req.op_case = SHOAL__CLIENT_REQUEST__OP_DEL;
        req.del = &del;
        rc = do_simple(&c, &req, false);
    } else if ((streq(cmd, "cas") && n == 4) || (streq(cmd, "cas-absent") && n == 3)) {
        cas.key = bin(key);
        cas.expect_absent = n == 3;
        cas.expected = n == 4 ? bin(v[2]) : bin("");
        cas.value = bin(v[n - 1]);
        req.op_case = SHOAL__CLIENT_REQUEST__OP_CAS;
        req.cas = &cas;
        rc = do_simple(&c, &req, true);
    } else if (streq(cmd, "scan") && n == 3) {
        scan.prefix = bin(v[1]);
        scan.limit = (uint32_t)atoi(v[2]);
        req.op_case = SHOAL__CLIENT_REQUEST__OP_SCAN;
        req.scan = &scan;
        rc = do_simple(&c, &req, false);
    } else if (streq(cmd, "changes") && n == 2) {
        ch.shard = req.shard;
        ch.after_index = strtoull(v[1], NULL, 10);
        req.op_case = SHOAL__CLIENT_REQUEST__OP_CHANGES;
        req.changes = &ch;
        rc = do_simple(&c, &req, false);
    } else if (streq(cmd, "load") && n == 4)
        rc = cmd_load(&c, req.shard, v[1], atol(v[2]), atol(v[3]));
    else if (streq(cmd, "check") && n == 3)
        rc = cmd_check(&c, req.shard, v[1], v[2]);
    else if (streq(cmd, "batch") && n >= 3 && n % 2 == 1) { /* batch S K V [K V ...]: puts */
        size_t ops = (size_t)(n - 1) / 2;
        Shoal__BatchRequest br = SHOAL__BATCH_REQUEST__INIT;
        Shoal__BatchOp *bo = calloc(ops, sizeof *bo), **bop = calloc(ops, sizeof *bop);
        Shoal__PutRequest *pr = calloc(ops, sizeof *pr);
        char **keys = calloc(ops, sizeof *keys);
        for (size_t i = 0; i < ops; i++) {
            shoal__batch_op__init(&bo[i]);
            shoal__put_request__init(&pr[i]);
            keys[i] = strdup(placed_key(&c, req.shard, v[1 + 2 * i])); /* fetched above */
            pr[i].key = bin(keys[i]);
            pr[i].value = bin(v[2 + 2 * i]);
            bo[i].op_case = SHOAL__BATCH_OP__OP_PUT;
            bo[i].put = &pr[i];
            bop[i] = &bo[i];
        }
        br.ops = bop;
        br.n_ops = ops;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_BATCH;
        req.batch = &br;
        rc = do_simple(&c, &req, false);
        for (size_t i = 0; i < ops; i++)
            free(keys[i]);
        free(keys);
        free(bo);
        free(bop);
        free(pr);
    } else if (streq(cmd, "events") && n == 2) /* events PUB_ENDPOINT MS */
        rc = cmd_events(v[0], atoi(v[1]));
    else if (streq(cmd, "disk-bytes") && n == 1 && atoi(v[0]) >= 0 && atoi(v[0]) < c.n)
        rc = cmd_disk_bytes(&c, atoi(v[0])); /* disk-bytes NODE_INDEX */
    else if (streq(cmd, "commit") && n == 2 && atoi(v[0]) >= 0 && atoi(v[0]) < c.n)
        rc = cmd_commit(&c, atoi(v[0]), (uint32_t)atoi(v[1])); /* commit NODE_INDEX SHARD */
    else if (streq(cmd, "wait-leaders") && n == 1)
        rc = cmd_wait_leaders(&c, v[0]);
    else if (streq(cmd, "leader") && n == 1) {
        int l = find_leader(&c, req.shard);
        rc = l < 0 ? 3 : 0;
        if (l >= 0)
            printf("%d\n", l);
    } else
        fprintf(stderr, "node_client: bad command or arguments: %s\n", cmd);
    for (int i = 0; i < c.n; i++)
        zsock_destroy(&c.sock[i]);
    ring_destroy(&c.ring);
    free(eps);
    return rc;
}
