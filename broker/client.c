/* client.c - libshoal: requests to a broker over one DEALER socket (see shoal.h).
 *
 * Requests in flight live in a fixed table of SHOAL_MAX_INFLIGHT slots. A request id is
 * (generation << 16 | slot), so an answer finds its slot in O(1) and a late answer to a
 * slot that was since reused is recognised by its generation and dropped. The slot index
 * is also the write "lane": writes travel with client_id = base id + slot and the slot's
 * own seq, so every (client_id, seq) stream has one write in flight at a time.
 *
 * Each slot keeps its encoded frame so it can be resent unchanged (same id, same seq)
 * when its broker connection dropped after it was sent (a broker restarted or died: a
 * socket monitor counts the disconnects, and ZMTP heartbeats turn a silent peer into one),
 * at once, to whichever broker is connected. A broker that stays connected answers every
 * request by its deadline, so without a disconnect a request is resent only after
 * SHOAL_RESEND_MS, and each further time twice as late: a broker forwards a resend of a
 * request it still has in flight as a new one, so copies sent on a timer were load on an
 * already slow cluster (96 clients resending 1 MB writes every second were 96 MB/s of
 * copies; duplicate Raft entries for each slow 1 MiB write; the broker's in-flight cap
 * filled with copies). */
#include "broker/client_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine/endpoint.h"
#include "engine/error.h"
#include "proto/codec.h"

#define SHOAL_RESEND_MS 5000 /* connected: the broker answers by the deadline */
/* The broker gets the request's timeout less a grace, so that its answer (TIMEOUT, with
 * what it knows) arrives before the caller's own deadline, and a call never outlasts the
 * timeout it was given, reachable broker or not. */
#define SHOAL_GRACE_MS 250
#define SHOAL_REROUTE_MAX 20     /* whole retries of one scan or batch (each split costs ~1) */
#define SHOAL_REROUTE_BACKOFF 25 /* ms before the first: the broker fetches the new map */
#define SHOAL_REROUTE_CAP 400    /* ms, the longest backoff */

static int grace_ms(int timeout_ms)
{
    return timeout_ms / 4 < SHOAL_GRACE_MS ? timeout_ms / 4 : SHOAL_GRACE_MS;
}

static const char *status_names[] = {
    "ok",         "not found", "compare failed", "unavailable",    "bad request",
    "not leader", "timed out", "too large",      "internal error", "window gone"};

const char *shoal_status_str(int status)
{
    if (status < 0 || status >= (int)(sizeof status_names / sizeof *status_names))
        return "unknown status";
    return status_names[status];
}

void shoal_result_clear(shoal_result_t *r)
{
    if (!r)
        return;
    free(r->value);
    for (size_t i = 0; i < r->n_kvs; i++) {
        free(r->kvs[i].key);
        free(r->kvs[i].value);
    }
    free(r->kvs);
    for (size_t i = 0; i < r->n_changes; i++) {
        free(r->changes[i].key);
        free(r->changes[i].value);
    }
    free(r->changes);
    memset(r, 0, sizeof *r);
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n + 1); /* +1: callers may print values as C strings */
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

/* 48 random bits from the kernel, shifted past the 16 lane bits: two processes (or two
 * connections) must never share a write session, or one's writes would be answered as
 * the other's duplicates. */
static uint64_t random_client_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
        /* no entropy source: time, pid and address are still distinct per connection */
        id = (uint64_t)zclock_usecs() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() << 20 ^
             (uint64_t)(uintptr_t)&id;
    }
    id <<= 16;
    return id ? id : (uint64_t)1 << 16;
}

/* czmq's process setup: its context, socket registry, atexit shutdown and SIGINT/SIGTERM
 * handler (which sets zsys_interrupted, ending a waiting call). zsys_init is not
 * thread-safe - two threads in it at once abort the process in zsys.c - and the sockets
 * created here would otherwise run it from whichever threads connect first, so it runs
 * once per process, before any socket of ours. */
static pthread_once_t czmq_once = PTHREAD_ONCE_INIT;

static void czmq_setup(void)
{
    zsys_init();
}

/* Splits a comma-separated list of broker endpoints into eps (each checked: ZeroMQ takes a
 * tcp port modulo 65536, so a typo would reach some other process); the count, 0 if bad. */
static int split_endpoints(char *list, char *eps[SHOAL_MAX_BROKERS])
{
    int n = 0;
    for (char *ep; (ep = strsep(&list, ",")) != NULL;) { /* an empty entry is bad too */
        if (!shoal_client_endpoint_ok(ep) || n == SHOAL_MAX_BROKERS)
            return 0;
        eps[n++] = ep;
    }
    return n;
}

/* Several brokers: requests go only to those connected (ZMQ_IMMEDIATE), round robin, and
 * one that a dead broker held is resent to another when the disconnect shows; with one, a
 * request waits in the socket until its broker is reachable again. */
static int connect_brokers(shoal_t *self, const char *endpoint)
{
    char *copy = strdup(endpoint), *eps[SHOAL_MAX_BROKERS];
    int n = copy ? split_endpoints(copy, eps) : 0;
    if (n > 1)
        zsock_set_immediate(self->sock, 1);
    for (int i = 0; i < n; i++)
        if (zsock_connect(self->sock, "%s", eps[i]) != 0)
            n = 0;
    free(copy);
    return n > 0 ? 0 : -1;
}

/* A monitor of the DEALER's disconnects: what was sent before one may be lost with it. */
static void watch_disconnects(shoal_t *self)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://shoal-client-%p", (void *)self);
    if (zmq_socket_monitor(zsock_resolve(self->sock), ep, ZMQ_EVENT_DISCONNECTED) != 0)
        return;
    self->mon = zsock_new(ZMQ_PAIR);
    if (self->mon && zsock_connect(self->mon, "%s", ep) != 0)
        zsock_destroy(&self->mon);
}

/* Counts the disconnects reported since the last look. */
static void take_disconnects(shoal_t *self)
{
    while (self->mon && (zsock_events(self->mon) & ZMQ_POLLIN)) {
        zmsg_t *m = zmsg_recv(self->mon);
        zmsg_destroy(&m);
        self->epoch++;
    }
}

shoal_t *shoal_connect(const char *endpoint)
{
    if (!endpoint)
        endpoint = getenv("SHOAL_BROKER");
    if (!endpoint)
        endpoint = SHOAL_DEFAULT_ENDPOINT;
    if (!*endpoint)
        return NULL; /* an empty one is a mistake, never the default */
    shoal_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_once(&czmq_once, czmq_setup);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock || connect_brokers(self, endpoint) != 0) {
        shoal_destroy(&self);
        return NULL;
    }
    zsock_set_linger(self->sock, 0);
    zsock_set_sndhwm(self->sock, 0);
    zsock_set_rcvhwm(self->sock, 0);
    zsock_set_heartbeat_ivl(self->sock, 1000);
    zsock_set_heartbeat_timeout(self->sock, 3000);
    watch_disconnects(self);
    self->endpoint = strdup(endpoint);
    self->timeout_ms = SHOAL_DEFAULT_TIMEOUT_MS;
    self->client_id = random_client_id();
    self->n_free = SHOAL_MAX_INFLIGHT;
    for (uint32_t i = 0; i < SHOAL_MAX_INFLIGHT; i++)
        self->free_list[i] = SHOAL_MAX_INFLIGHT - 1 - i;
    return self;
}

void shoal_destroy(shoal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_t *self = *self_p;
    for (uint32_t i = 0; i < SHOAL_MAX_INFLIGHT; i++)
        free(self->slots[i].buf);
    if (self->mon && self->sock)
        zmq_socket_monitor(zsock_resolve(self->sock), NULL, 0);
    zsock_destroy(&self->mon);
    zsock_destroy(&self->sock);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

void shoal_set_timeout(shoal_t *self, int timeout_ms)
{
    if (self)
        self->timeout_ms = timeout_ms > 0 ? timeout_ms : SHOAL_DEFAULT_TIMEOUT_MS;
}

const char *shoal_endpoint(shoal_t *self)
{
    return self ? self->endpoint : NULL;
}

uint64_t shoal_client_id(shoal_t *self)
{
    return self ? self->client_id : 0;
}

/* A buffer argument: NULL only with length 0. */
static bool buf_ok(const void *p, size_t n, const char *name, char *err, size_t errlen)
{
    if (p || n == 0)
        return true;
    snprintf(err, errlen, "%s is NULL with a length of %zu", name, n);
    return false;
}

/* Checks an op against the documented limits; 0 or a status with a line in err. */
int shoal_op_check(const shoal_op_t *op, char *err, size_t errlen)
{
    if (!op) {
        snprintf(err, errlen, "no operation");
        return SHOAL_STATUS_BAD_REQUEST;
    }
    if (!buf_ok(op->key, op->key_len, "key", err, errlen) ||
        !buf_ok(op->value, op->value_len, "value", err, errlen) ||
        !buf_ok(op->expected, op->expected_len, "expected", err, errlen) ||
        !buf_ok(op->prefix, op->prefix_len, "prefix", err, errlen) ||
        !buf_ok(op->start, op->start_len, "start", err, errlen) ||
        !buf_ok(op->end, op->end_len, "end", err, errlen) ||
        (op->type == SHOAL_OP_BATCH && !buf_ok(op->ops, op->n_ops, "ops", err, errlen)))
        return SHOAL_STATUS_BAD_REQUEST;
    bool keyed = op->type == SHOAL_OP_GET || op->type == SHOAL_OP_PUT || op->type == SHOAL_OP_DEL ||
                 op->type == SHOAL_OP_CAS;
    if (keyed && op->key_len == 0) {
        snprintf(err, errlen, "key is empty");
        return SHOAL_STATUS_BAD_REQUEST;
    }
    if (op->type == SHOAL_OP_CAS && op->expect_absent && op->expected) {
        snprintf(err, errlen, "a cas expects either a value or the key's absence, not both");
        return SHOAL_STATUS_BAD_REQUEST;
    }
    const struct {
        const char *name;
        size_t len;
    } keys[] = {{"key", op->key_len},
                {"scan prefix", op->prefix_len},
                {"scan start", op->start_len},
                {"scan end", op->end_len}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (keys[i].len > SHOAL_MAX_KEY) {
            snprintf(err, errlen, "%s of %zu bytes exceeds the %u-byte key limit", keys[i].name,
                     keys[i].len, SHOAL_MAX_KEY);
            return SHOAL_STATUS_TOO_LARGE;
        }
    if (op->value_len > SHOAL_MAX_VALUE || op->expected_len > SHOAL_MAX_VALUE) {
        bool value = op->value_len > SHOAL_MAX_VALUE;
        snprintf(err, errlen, "%s of %zu bytes exceeds the %u-byte limit",
                 value ? "value" : "expected value", value ? op->value_len : op->expected_len,
                 SHOAL_MAX_VALUE);
        return SHOAL_STATUS_TOO_LARGE;
    }
    if (op->type == SHOAL_OP_BATCH) {
        if (op->n_ops == 0 || op->n_ops > SHOAL_MAX_BATCH) {
            snprintf(err, errlen, "a batch holds 1 to %u operations, not %zu", SHOAL_MAX_BATCH,
                     op->n_ops);
            return SHOAL_STATUS_BAD_REQUEST;
        }
        for (size_t i = 0; i < op->n_ops; i++) {
            shoal_op_t one = {.type = op->ops[i].is_delete ? SHOAL_OP_DEL : SHOAL_OP_PUT,
                              .key = op->ops[i].key,
                              .key_len = op->ops[i].key_len,
                              .value = op->ops[i].value,
                              .value_len = op->ops[i].value_len};
            int st = shoal_op_check(&one, err, errlen);
            if (st)
                return st;
        }
    }
    if (op->type < SHOAL_OP_GET || op->type > SHOAL_OP_CHANGES) {
        snprintf(err, errlen, "unknown operation %d", (int)op->type);
        return SHOAL_STATUS_BAD_REQUEST;
    }
    return SHOAL_STATUS_OK;
}

static bool is_write(shoal_op_type_t t)
{
    return t == SHOAL_OP_PUT || t == SHOAL_OP_DEL || t == SHOAL_OP_CAS || t == SHOAL_OP_BATCH;
}

#define BIN(p, n) ((ProtobufCBinaryData){(n), (uint8_t *)(p)})

/* Encodes op as a Frame{client_req}; returns a malloc'd buffer or NULL. */
uint8_t *shoal_op_encode(const shoal_op_t *op, uint64_t client_id, uint64_t seq,
                         uint64_t request_id, uint32_t timeout_ms, size_t *len)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__GetRequest get = SHOAL__GET_REQUEST__INIT;
    Shoal__PutRequest put = SHOAL__PUT_REQUEST__INIT;
    Shoal__DeleteRequest del = SHOAL__DELETE_REQUEST__INIT;
    Shoal__CasRequest cas = SHOAL__CAS_REQUEST__INIT;
    Shoal__ScanRequest scan = SHOAL__SCAN_REQUEST__INIT;
    Shoal__BatchRequest batch = SHOAL__BATCH_REQUEST__INIT;
    Shoal__ChangesRequest ch = SHOAL__CHANGES_REQUEST__INIT;
    req.client_id = client_id;
    req.seq = seq;
    req.request_id = request_id;
    req.timeout_ms = timeout_ms;
    Shoal__BatchOp *bops = NULL, **bptrs = NULL;
    Shoal__PutRequest *bputs = NULL;
    Shoal__DeleteRequest *bdels = NULL;
    switch (op->type) {
    case SHOAL_OP_GET:
        get.key = BIN(op->key, op->key_len);
        get.stale = op->stale;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_GET;
        req.get = &get;
        break;
    case SHOAL_OP_PUT:
        put.key = BIN(op->key, op->key_len);
        put.value = BIN(op->value, op->value_len);
        req.op_case = SHOAL__CLIENT_REQUEST__OP_PUT;
        req.put = &put;
        break;
    case SHOAL_OP_DEL:
        del.key = BIN(op->key, op->key_len);
        req.op_case = SHOAL__CLIENT_REQUEST__OP_DEL;
        req.del = &del;
        break;
    case SHOAL_OP_CAS:
        cas.key = BIN(op->key, op->key_len);
        cas.expected = BIN(op->expected, op->expected_len);
        cas.expect_absent = op->expect_absent;
        cas.value = BIN(op->value, op->value_len);
        cas.delete_on_match = op->delete_on_match;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_CAS;
        req.cas = &cas;
        break;
    case SHOAL_OP_SCAN:
        scan.prefix = BIN(op->prefix, op->prefix_len);
        scan.start = BIN(op->start, op->start_len);
        scan.end = BIN(op->end, op->end_len);
        scan.limit = op->limit;
        scan.stale = op->stale;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_SCAN;
        req.scan = &scan;
        break;
    case SHOAL_OP_BATCH:
        bops = calloc(op->n_ops, sizeof *bops);
        bptrs = calloc(op->n_ops, sizeof *bptrs);
        bputs = calloc(op->n_ops, sizeof *bputs);
        bdels = calloc(op->n_ops, sizeof *bdels);
        if (!bops || !bptrs || !bputs || !bdels)
            goto fail;
        for (size_t i = 0; i < op->n_ops; i++) {
            const shoal_batch_op_t *o = &op->ops[i];
            shoal__batch_op__init(&bops[i]);
            if (o->is_delete) {
                shoal__delete_request__init(&bdels[i]);
                bdels[i].key = BIN(o->key, o->key_len);
                bops[i].op_case = SHOAL__BATCH_OP__OP_DEL;
                bops[i].del = &bdels[i];
            } else {
                shoal__put_request__init(&bputs[i]);
                bputs[i].key = BIN(o->key, o->key_len);
                bputs[i].value = BIN(o->value, o->value_len);
                bops[i].op_case = SHOAL__BATCH_OP__OP_PUT;
                bops[i].put = &bputs[i];
            }
            bptrs[i] = &bops[i];
        }
        batch.n_ops = op->n_ops;
        batch.ops = bptrs;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_BATCH;
        req.batch = &batch;
        break;
    case SHOAL_OP_CHANGES:
        ch.shard = op->shard;
        ch.after_index = op->after_index;
        ch.after_ops = op->after_ops;
        ch.limit = op->limit;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_CHANGES;
        req.changes = &ch;
        break;
    }
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
    f.client_req = &req;
    uint8_t *buf = shoal_frame_encode(&f, len);
    free(bops);
    free(bptrs);
    free(bputs);
    free(bdels);
    return buf;
fail:
    free(bops);
    free(bptrs);
    free(bputs);
    free(bdels);
    return NULL;
}

/* Copies a response into a result the caller owns. */
void shoal_result_from(shoal_result_t *r, const Shoal__ClientResponse *resp)
{
    r->status = resp->status;
    snprintf(r->error, sizeof r->error, "%s", resp->error ? resp->error : "");
    if (r->status != SHOAL_STATUS_OK && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", shoal_status_str(r->status));
    r->found = resp->found;
    if (resp->value.len || resp->found) {
        r->value = dup_bytes(resp->value.data, resp->value.len);
        r->value_len = resp->value.len;
    }
    r->shard = resp->shard;
    r->index = resp->index;
    r->more = resp->more;
    if (resp->n_kvs) {
        r->kvs = calloc(resp->n_kvs, sizeof *r->kvs);
        for (size_t i = 0; r->kvs && i < resp->n_kvs; i++) {
            const Shoal__KeyValue *kv = resp->kvs[i];
            r->kvs[i] = (shoal_kv_t){dup_bytes(kv->key.data, kv->key.len), kv->key.len,
                                     dup_bytes(kv->value.data, kv->value.len), kv->value.len,
                                     kv->mod_index};
        }
        r->n_kvs = r->kvs ? resp->n_kvs : 0;
    }
    if (resp->n_changes) {
        r->changes = calloc(resp->n_changes, sizeof *r->changes);
        for (size_t i = 0; r->changes && i < resp->n_changes; i++) {
            const Shoal__Change *c = resp->changes[i];
            r->changes[i] = (shoal_change_t){c->shard,     c->index,
                                             c->is_delete, dup_bytes(c->key.data, c->key.len),
                                             c->key.len,   dup_bytes(c->value.data, c->value.len),
                                             c->value.len, c->op_seq,
                                             c->op_count};
        }
        r->n_changes = r->changes ? resp->n_changes : 0;
    }
}

static void send_slot(shoal_t *self, slot_t *s)
{
    /* DONTWAIT: the HWM is unlimited, so this fails only with several brokers and none
     * connected yet (ZMQ_IMMEDIATE: a new client, or every broker down), or when the context
     * is gone; the sweep then tries again soon, not after a resend's wait. */
    if (zmq_send(zsock_resolve(self->sock), s->buf, s->len, ZMQ_DONTWAIT) < 0) {
        s->resend_at = zclock_mono() + 20;
        return;
    }
    s->resend_at = zclock_mono() + ((int64_t)SHOAL_RESEND_MS << (s->resends < 3 ? s->resends : 3));
    s->resends++;
    s->epoch = self->epoch;
}

int shoal_submit(shoal_t *self, const shoal_op_t *op, shoal_done_fn *done, void *arg)
{
    if (!self)
        return SHOAL_EINVAL;
    char err[256];
    int st = shoal_op_check(op, err, sizeof err);
    if (st == SHOAL_STATUS_TOO_LARGE)
        return SHOAL_ETOOLARGE;
    if (st)
        return SHOAL_EINVAL;
    if (self->n_free == 0)
        return SHOAL_EBUSY;
    uint32_t idx = self->free_list[--self->n_free];
    slot_t *s = &self->slots[idx];
    uint64_t seq = 0;
    if (is_write(op->type))
        seq = ++self->lane_seq[idx];
    s->gen++;
    s->rid = (s->gen << 16) | idx;
    free(s->buf);
    s->buf = shoal_op_encode(op, self->client_id + idx, seq, s->rid,
                             (uint32_t)(self->timeout_ms - grace_ms(self->timeout_ms)), &s->len);
    if (!s->buf) {
        self->free_list[self->n_free++] = idx;
        return SHOAL_ENOMEM;
    }
    s->in_use = true;
    s->whole = op->type == SHOAL_OP_SCAN || op->type == SHOAL_OP_BATCH;
    s->write = op->type == SHOAL_OP_PUT || op->type == SHOAL_OP_DEL || op->type == SHOAL_OP_CAS ||
               op->type == SHOAL_OP_BATCH;
    s->refused = false;
    s->rerouted = 0;
    s->resends = 0;
    s->done = done;
    s->arg = arg;
    s->start_us = zclock_usecs();
    s->deadline = zclock_mono() + self->timeout_ms;
    self->inflight++;
    send_slot(self, s);
    return 0;
}

size_t shoal_inflight(shoal_t *self)
{
    return self ? self->inflight : 0;
}

static void complete(shoal_t *self, slot_t *s, shoal_result_t *r)
{
    uint32_t idx = (uint32_t)(s->rid & 0xffff);
    r->latency_us = (uint64_t)(zclock_usecs() - s->start_us);
    s->in_use = false;
    free(s->buf);
    s->buf = NULL;
    self->free_list[self->n_free++] = idx;
    self->inflight--;
    if (s->done)
        s->done(r, s->arg);
    shoal_result_clear(r);
}

/* Resends what got no answer and fails what is past its deadline. */
static int sweep(shoal_t *self)
{
    int64_t now = zclock_mono();
    int n = 0;
    if (now < self->next_sweep)
        return 0; /* disconnects too are looked at every 50 ms, not at every pump */
    take_disconnects(self);
    self->next_sweep = now + 50;
    for (uint32_t i = 0; i < SHOAL_MAX_INFLIGHT && self->inflight; i++) {
        slot_t *s = &self->slots[i];
        if (!s->in_use)
            continue;
        if (now >= s->deadline) {
            shoal_result_t r = {.status = SHOAL_STATUS_TIMEOUT};
            if (s->refused)
                snprintf(r.error, sizeof r.error,
                         "no definite answer from broker %s within %d ms: a resent copy was "
                         "refused (overloaded or unavailable); an earlier one may have applied",
                         self->endpoint, self->timeout_ms);
            else
                snprintf(r.error, sizeof r.error, "no answer from broker %s within %d ms",
                         self->endpoint, self->timeout_ms);
            complete(self, s, &r);
            n++;
        } else if (now >= s->resend_at || (s->epoch != self->epoch && !s->refused))
            send_slot(self, s);
    }
    return n;
}

static void on_admin_resp(shoal_t *self, Shoal__Frame *f)
{
    if (self->admin_wait && f->admin_resp->request_id == self->admin_rid && !self->admin_resp) {
        self->admin_resp = f; /* the waiting admin call takes the frame */
        return;
    }
    shoal_frame_free(&f);
}

/* A scan or batch the broker ended because add-shard changed the map while it was divided
 * among shards is sent again unchanged after a backoff (the sweep resends it), within its
 * deadline: a read is repeatable, and a batch keeps its client id and seq, so its parts
 * that applied are answered from their shards' sessions (a split copies them to the new
 * shard) instead of applying twice. */
static bool reroute_whole(shoal_t *self, slot_t *s, const Shoal__ClientResponse *resp)
{
    if (!s->whole || resp->status != SHOAL__STATUS__STATUS_UNAVAILABLE || !resp->error ||
        strncmp(resp->error, SHOAL_ERR_MAP_CHANGED, strlen(SHOAL_ERR_MAP_CHANGED)) != 0 ||
        s->rerouted >= SHOAL_REROUTE_MAX)
        return false;
    int64_t wait = (int64_t)SHOAL_REROUTE_BACKOFF << (s->rerouted < 5 ? s->rerouted : 5);
    wait = wait < SHOAL_REROUTE_CAP ? wait : SHOAL_REROUTE_CAP;
    int64_t now = zclock_mono();
    if (now + wait >= s->deadline - grace_ms(self->timeout_ms))
        return false; /* no time left for another try: the caller gets the answer */
    s->rerouted++;
    s->resend_at = now + wait;
    self->next_sweep = self->next_sweep < s->resend_at ? self->next_sweep : s->resend_at;
    return true;
}

/* A write sent more than once may have several copies at the broker (a resend is a new
 * request there), and one copy's refusal (UNAVAILABLE: overloaded, no leader reached) says
 * nothing of an earlier copy that may yet be applied. Such an answer does not end the
 * write: it waits, without more copies, for a copy's definite answer or its deadline
 * (TIMEOUT, which may or may not have applied, as shoal.h says). */
static bool copy_refused(slot_t *s, const Shoal__ClientResponse *resp)
{
    if (!s->write || s->resends < 2 || resp->status != SHOAL__STATUS__STATUS_UNAVAILABLE)
        return false;
    s->refused = true;
    s->resend_at = s->deadline;
    return true;
}

/* Handles one message from the broker; returns 1 when it completed a request. */
static int on_message(shoal_t *self, const uint8_t *data, size_t len)
{
    Shoal__Frame *f = NULL;
    char err[256];
    if (shoal_frame_decode(data, len, &f, err, sizeof err) != 0) {
        zsys_warning("libshoal: dropped a bad frame from %s: %s", self->endpoint, err);
        return 0;
    }
    if (f->body_case == SHOAL__FRAME__BODY_ADMIN_RESP) {
        on_admin_resp(self, f);
        return 0;
    }
    int n = 0;
    if (f->body_case == SHOAL__FRAME__BODY_CLIENT_RESP) {
        uint64_t rid = f->client_resp->request_id;
        slot_t *s = &self->slots[rid & 0xffff];
        if (s->in_use && s->rid == rid && !reroute_whole(self, s, f->client_resp) &&
            !copy_refused(s, f->client_resp)) {
            shoal_result_t r = {0};
            shoal_result_from(&r, f->client_resp);
            complete(self, s, &r);
            n = 1;
        }
    }
    shoal_frame_free(&f);
    return n;
}

/* One wait of at most wait_ms (capped so that resends and expiries run on time) and the
 * answers it brings; the number of requests completed. */
static int pump_once(shoal_t *self, int wait_ms)
{
    int n = sweep(self);
    void *sock = zsock_resolve(self->sock);
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (self->inflight && (wait_ms < 0 || wait_ms > 50))
        wait_ms = 50; /* wake up to resend and expire */
    if (zmq_poll(&item, 1, wait_ms) <= 0)
        return n + sweep(self);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    /* Drain what is ready: one poll per batch of answers, not per answer. */
    for (int i = 0; i < 4096; i++) {
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0)
            break;
        n += on_message(self, zmq_msg_data(&msg), zmq_msg_size(&msg));
    }
    zmq_msg_close(&msg);
    return n;
}

int shoal_pump(shoal_t *self, int timeout_ms)
{
    if (!self)
        return SHOAL_EINVAL;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
    for (;;) {
        if (timeout_ms < 0 && !self->inflight)
            return 0; /* nothing would ever complete */
        int64_t left = deadline - zclock_mono();
        int n = pump_once(self, left <= 0 ? 0 : left > INT_MAX ? -1 : (int)left);
        if (n || self->admin_resp || zsys_interrupted || zclock_mono() >= deadline)
            return n; /* (an admin call waits for its answer through the pump) */
    }
}

typedef struct {
    shoal_result_t *out;
    bool done;
    int status;
} sync_wait_t;

/* Unhooks the callback of the request whose argument is arg: its caller is gone. */
static void detach(shoal_t *self, void *arg)
{
    for (uint32_t i = 0; i < SHOAL_MAX_INFLIGHT; i++)
        if (self->slots[i].in_use && self->slots[i].arg == arg) {
            self->slots[i].done = NULL;
            self->slots[i].arg = NULL;
        }
}

static void sync_done(shoal_result_t *r, void *arg)
{
    sync_wait_t *w = arg;
    w->done = true;
    w->status = r->status;
    if (w->out) {
        *w->out = *r;            /* move the buffers... */
        memset(r, 0, sizeof *r); /* ...so complete() does not free them */
    }
}

int shoal_call(shoal_t *self, const shoal_op_t *op, shoal_result_t *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    char err[256];
    int st = self ? shoal_op_check(op, err, sizeof err) : SHOAL_STATUS_BAD_REQUEST;
    if (!self)
        snprintf(err, sizeof err, "no client");
    if (st || self->n_free == 0) {
        if (!st) {
            st = SHOAL_STATUS_UNAVAILABLE;
            snprintf(err, sizeof err, "too many requests in flight");
        }
        if (out) {
            out->status = st;
            snprintf(out->error, sizeof out->error, "%s", err);
        }
        return st;
    }
    sync_wait_t w = {out, false, 0};
    if (shoal_submit(self, op, sync_done, &w) != 0) {
        if (out) {
            out->status = SHOAL_STATUS_INTERNAL;
            snprintf(out->error, sizeof out->error, "out of memory");
        }
        return SHOAL_STATUS_INTERNAL;
    }
    while (!w.done && !zsys_interrupted)
        shoal_pump(self, 50);
    if (!w.done) { /* interrupted: the request completes later, into no one's memory */
        detach(self, &w);
        if (out) {
            out->status = SHOAL_STATUS_TIMEOUT;
            snprintf(out->error, sizeof out->error, "interrupted");
        }
        return SHOAL_STATUS_TIMEOUT;
    }
    return w.status;
}

int shoal_get(shoal_t *self, const void *key, size_t klen, bool stale, shoal_result_t *out)
{
    shoal_op_t op = {.type = SHOAL_OP_GET, .key = key, .key_len = klen, .stale = stale};
    return shoal_call(self, &op, out);
}

int shoal_put(shoal_t *self, const void *key, size_t klen, const void *val, size_t vlen,
              shoal_result_t *out)
{
    shoal_op_t op = {
        .type = SHOAL_OP_PUT, .key = key, .key_len = klen, .value = val, .value_len = vlen};
    return shoal_call(self, &op, out);
}

int shoal_del(shoal_t *self, const void *key, size_t klen, shoal_result_t *out)
{
    shoal_op_t op = {.type = SHOAL_OP_DEL, .key = key, .key_len = klen};
    return shoal_call(self, &op, out);
}

int shoal_cas(shoal_t *self, const void *key, size_t klen, const void *expected, size_t elen,
              bool expect_absent, const void *val, size_t vlen, shoal_result_t *out)
{
    shoal_op_t op = {.type = SHOAL_OP_CAS,
                     .key = key,
                     .key_len = klen,
                     .expected = expected,
                     .expected_len = elen,
                     .expect_absent = expect_absent,
                     .value = val,
                     .value_len = vlen};
    return shoal_call(self, &op, out);
}

int shoal_scan(shoal_t *self, const void *prefix, size_t plen, const void *start, size_t slen,
               const void *end, size_t elen, uint32_t limit, shoal_result_t *out)
{
    shoal_op_t op = {.type = SHOAL_OP_SCAN,
                     .prefix = prefix,
                     .prefix_len = plen,
                     .start = start,
                     .start_len = slen,
                     .end = end,
                     .end_len = elen,
                     .limit = limit};
    return shoal_call(self, &op, out);
}

int shoal_batch(shoal_t *self, const shoal_batch_op_t *ops, size_t n, shoal_result_t *out)
{
    shoal_op_t op = {.type = SHOAL_OP_BATCH, .ops = ops, .n_ops = n};
    return shoal_call(self, &op, out);
}

int shoal_changes(shoal_t *self, uint32_t shard, uint64_t after_index, uint32_t limit,
                  shoal_result_t *out)
{
    return shoal_changes_after(self, shard, after_index, 0, limit, out);
}

int shoal_changes_after(shoal_t *self, uint32_t shard, uint64_t after_index, uint32_t after_ops,
                        uint32_t limit, shoal_result_t *out)
{
    shoal_op_t op = {.type = SHOAL_OP_CHANGES,
                     .shard = shard,
                     .after_index = after_index,
                     .after_ops = after_ops,
                     .limit = limit};
    return shoal_call(self, &op, out);
}
