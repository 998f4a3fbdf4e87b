/* client_admin.c - libshoal's admin calls: cluster status and the admin operations, each a
 * Frame{admin_req} to the broker answered by a Frame{admin_resp} (proto/admin.proto).
 * Admin calls are synchronous and one at a time per shoal_t; client requests in flight
 * keep completing while one waits. */
#include "broker/client_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec.h"

static const char *ev_names[] = {"none",           "node-up",        "node-down",
                                 "election",       "leader-elected", "term-changed",
                                 "leader-changed", "commit",         "apply",
                                 "membership",     "snapshot-sent",  "snapshot-installed",
                                 "compaction",     "log-truncated",  "metrics"};

const char *shoal_event_type_name(int type)
{
    if (type < 0 || type >= (int)(sizeof ev_names / sizeof *ev_names))
        return "unknown";
    return ev_names[type];
}

/* Sends req, waits for the answer; returns the frame (caller frees) or NULL on timeout. */
static Shoal__Frame *admin_call(shoal_t *self, Shoal__AdminRequest *req, char *err, size_t errlen)
{
    assert(self); /* the public calls check it */
    req->request_id = ((uint64_t)1 << 63) | ++self->admin_counter;
    Shoal__Frame f = shoal_admin_frame(req);
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->admin_wait = true;
    self->admin_rid = req->request_id;
    self->admin_resp = NULL;
    int64_t deadline = zclock_mono() + self->timeout_ms;
    int64_t resend = 0;
    while (!self->admin_resp && zclock_mono() < deadline && !zsys_interrupted) {
        if (zclock_mono() >= resend) {
            zmq_send(zsock_resolve(self->sock), buf, len, ZMQ_DONTWAIT);
            resend = zclock_mono() + 1000;
        }
        shoal_pump(self, 20);
    }
    free(buf);
    self->admin_wait = false;
    Shoal__Frame *resp = self->admin_resp;
    self->admin_resp = NULL;
    if (!resp)
        snprintf(err, errlen, "no answer from broker %s within %d ms", self->endpoint,
                 self->timeout_ms);
    return resp;
}

/* The answer's status, with its error (or the status's name) in err when not OK. */
static int admin_status(const Shoal__Frame *f, char *err, size_t errlen)
{
    int st = f->admin_resp->status;
    if (st != SHOAL_STATUS_OK)
        snprintf(err, errlen, "%s",
                 f->admin_resp->error && *f->admin_resp->error ? f->admin_resp->error
                                                               : shoal_status_str(st));
    return st;
}

/* BAD_REQUEST with a line in err unless self (and out, when the call fills one) are set. */
static int args_check(shoal_t *self, const void *out, char *err, size_t errlen)
{
    if (self && out)
        return SHOAL_STATUS_OK;
    snprintf(err, errlen, "%s is NULL", self ? "the result" : "the client");
    return SHOAL_STATUS_BAD_REQUEST;
}

/* A shard argument that takes -1 for every shard: BAD_REQUEST past a 32-bit shard id. */
static int shard_check(int64_t shard, const char *what, char *err, size_t errlen)
{
    if (shard <= (int64_t)UINT32_MAX)
        return SHOAL_STATUS_OK;
    snprintf(err, errlen, "%s %" PRId64 " is past the largest shard id %" PRIu32, what, shard,
             UINT32_MAX);
    return SHOAL_STATUS_BAD_REQUEST;
}

/* Runs an admin op that returns only a status. */
static int admin_simple(shoal_t *self, Shoal__AdminRequest *req, char *err, size_t errlen)
{
    int ck = args_check(self, self, err, errlen);
    if (ck)
        return ck;
    Shoal__Frame *f = admin_call(self, req, err, errlen);
    if (!f)
        return SHOAL_STATUS_TIMEOUT;
    int st = admin_status(f, err, errlen);
    shoal_frame_free(&f);
    return st;
}

void shoal_cluster_clear(shoal_cluster_t *c)
{
    if (!c)
        return;
    free(c->nodes);
    free(c->shards);
    free(c->events);
    memset(c, 0, sizeof *c);
}

static void copy_shard(shoal_shard_status_t *d, const Shoal__ShardStatus *s)
{
    d->id = s->id;
    d->leader = s->leader == UINT64_MAX ? -1 : (int64_t)s->leader;
    d->term = s->term;
    d->commit_index = s->commit_index;
    d->apply_index = s->apply_index;
    d->size_bytes = s->size_bytes;
    d->n_leaving = s->n_leaving < 16 ? s->n_leaving : 16;
    for (size_t j = 0; j < d->n_leaving; j++)
        d->leaving[j] = s->leaving[j];
    d->n_replicas = s->n_replicas < 16 ? s->n_replicas : 16;
    for (size_t j = 0; j < d->n_replicas; j++) {
        d->replicas[j] = s->replicas[j]->peer;
        d->match_index[j] = s->replicas[j]->match_index;
        uint64_t lag = s->commit_index > s->replicas[j]->match_index
                           ? s->commit_index - s->replicas[j]->match_index
                           : 0;
        if (lag > d->max_lag)
            d->max_lag = lag;
    }
}

static void copy_event(shoal_event_t *d, const Shoal__RaftEvent *e)
{
    d->node_id = e->node_id;
    d->shard = e->shard;
    d->type = e->type;
    d->type_name = shoal_event_type_name(e->type);
    d->term = e->term;
    d->leader_id = e->leader_id;
    d->commit_index = e->commit_index;
    d->apply_index = e->apply_index;
    d->timestamp_us = e->timestamp_us;
    snprintf(d->detail, sizeof d->detail, "%s", e->detail ? e->detail : "");
}

int shoal_status(shoal_t *self, bool with_events, shoal_cluster_t *out, char *err, size_t errlen)
{
    int ck = args_check(self, out, err, errlen);
    if (ck)
        return ck;
    memset(out, 0, sizeof *out);
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__StatusRequest sr = SHOAL__STATUS_REQUEST__INIT;
    sr.include_events = with_events;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_STATUS;
    req.status = &sr;
    Shoal__Frame *f = admin_call(self, &req, err, errlen);
    if (!f)
        return SHOAL_STATUS_TIMEOUT;
    Shoal__AdminResponse *r = f->admin_resp;
    int st = r->status;
    if (st != SHOAL_STATUS_OK || !r->cluster) {
        snprintf(err, errlen, "%s", r->error && *r->error ? r->error : shoal_status_str(st));
        shoal_frame_free(&f);
        return st ? st : SHOAL_STATUS_INTERNAL;
    }
    Shoal__ClusterStatus *c = r->cluster;
    out->map_version = c->map_version;
    out->nodes = calloc(c->n_nodes + 1, sizeof *out->nodes);
    out->shards = calloc(c->n_shards + 1, sizeof *out->shards);
    out->events = calloc(c->n_recent + 1, sizeof *out->events);
    if (!out->nodes || !out->shards || !out->events) {
        shoal_cluster_clear(out);
        shoal_frame_free(&f);
        snprintf(err, errlen, "out of memory");
        return SHOAL_STATUS_INTERNAL;
    }
    out->n_nodes = c->n_nodes;
    for (size_t i = 0; i < c->n_nodes; i++) {
        Shoal__NodeStatus *n = c->nodes[i];
        shoal_node_status_t *d = &out->nodes[i];
        d->id = n->id;
        snprintf(d->endpoint, sizeof d->endpoint, "%s", n->endpoint ? n->endpoint : "");
        d->up = n->up;
        d->last_seen_ms_ago = n->last_seen_us / 1000;
        if (n->metrics) {
            d->replicas = n->metrics->replicas;
            d->rss_bytes = n->metrics->rss_bytes;
            d->bytes_on_disk = n->metrics->bytes_on_disk;
            d->follower_reads = n->metrics->follower_reads;
        }
    }
    out->n_shards = c->n_shards;
    for (size_t i = 0; i < c->n_shards; i++)
        copy_shard(&out->shards[i], c->shards[i]);
    if ((out->has_meta = c->meta != NULL))
        copy_shard(&out->meta, c->meta);
    out->n_events = c->n_recent;
    for (size_t i = 0; i < c->n_recent; i++)
        copy_event(&out->events[i], c->recent[i]);
    shoal_frame_free(&f);
    return SHOAL_STATUS_OK;
}

int shoal_cluster_id(shoal_t *self, uint64_t *out, char *err, size_t errlen)
{
    int ck = args_check(self, out, err, errlen);
    if (ck)
        return ck;
    *out = 0;
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__ShardMapRequest mr = SHOAL__SHARD_MAP_REQUEST__INIT;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_SHARD_MAP;
    req.shard_map = &mr;
    Shoal__Frame *f = admin_call(self, &req, err, errlen);
    if (!f)
        return SHOAL_STATUS_TIMEOUT;
    int st = admin_status(f, err, errlen);
    if (st == SHOAL_STATUS_OK && f->admin_resp->shard_map)
        *out = f->admin_resp->shard_map->cluster_id;
    shoal_frame_free(&f);
    return st;
}

int shoal_admin_transfer_leader(shoal_t *self, uint32_t shard, uint64_t to_node, char *err,
                                size_t errlen)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__TransferLeaderRequest t = SHOAL__TRANSFER_LEADER_REQUEST__INIT;
    t.shard = shard;
    t.to_node = to_node;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_TRANSFER;
    req.transfer = &t;
    return admin_simple(self, &req, err, errlen);
}

int shoal_admin_add_node(shoal_t *self, uint64_t id, const char *endpoint, const char *pub_endpoint,
                         char *err, size_t errlen)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__AddNodeRequest a = SHOAL__ADD_NODE_REQUEST__INIT;
    Shoal__NodeInfo n = SHOAL__NODE_INFO__INIT;
    n.id = id;
    n.endpoint = (char *)endpoint;
    n.pub_endpoint = (char *)(pub_endpoint ? pub_endpoint : "");
    a.node = &n;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_ADD_NODE;
    req.add_node = &a;
    return admin_simple(self, &req, err, errlen);
}

int shoal_admin_remove_node(shoal_t *self, uint64_t id, char *err, size_t errlen)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__RemoveNodeRequest r = SHOAL__REMOVE_NODE_REQUEST__INIT;
    r.node_id = id;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_REMOVE_NODE;
    req.remove_node = &r;
    return admin_simple(self, &req, err, errlen);
}

/* A move and its cancel are one request: the cancel names only the shard. */
static int admin_move(shoal_t *self, uint32_t shard, uint64_t from, uint64_t to, bool cancel,
                      char *err, size_t errlen)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__MoveReplicaRequest m = SHOAL__MOVE_REPLICA_REQUEST__INIT;
    m.shard = shard;
    m.from_node = from;
    m.to_node = to;
    m.cancel = cancel;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_MOVE;
    req.move = &m;
    return admin_simple(self, &req, err, errlen);
}

int shoal_admin_move_replica(shoal_t *self, uint32_t shard, uint64_t from, uint64_t to, char *err,
                             size_t errlen)
{
    return admin_move(self, shard, from, to, false, err, errlen);
}

int shoal_admin_cancel_move(shoal_t *self, uint32_t shard, char *err, size_t errlen)
{
    return admin_move(self, shard, 0, 0, true, err, errlen);
}

int shoal_admin_add_shard(shoal_t *self, int64_t source, uint32_t *new_shard, uint32_t *from,
                          char *err, size_t errlen)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__AddShardRequest a = SHOAL__ADD_SHARD_REQUEST__INIT;
    int ck = args_check(self, self, err, errlen);
    if (!ck)
        ck = shard_check(source, "source shard", err, errlen);
    if (ck)
        return ck;
    a.has_source = source >= 0;
    a.source = source >= 0 ? (uint32_t)source : 0;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_ADD_SHARD;
    req.add_shard = &a;
    Shoal__Frame *f = admin_call(self, &req, err, errlen);
    if (!f)
        return SHOAL_STATUS_TIMEOUT;
    int st = admin_status(f, err, errlen);
    if (new_shard)
        *new_shard = f->admin_resp->new_shard;
    if (from)
        *from = f->admin_resp->source_shard;
    shoal_frame_free(&f);
    return st;
}

int shoal_admin_compact(shoal_t *self, int64_t shard, char *err, size_t errlen)
{
    int ck = shard_check(shard, "shard", err, errlen);
    if (ck)
        return ck;
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__CompactRequest c = SHOAL__COMPACT_REQUEST__INIT;
    c.shard = shard < 0 ? 0 : (uint32_t)shard;
    c.all_shards = shard < 0;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_COMPACT;
    req.compact = &c;
    return admin_simple(self, &req, err, errlen);
}

int shoal_admin_snapshot(shoal_t *self, int64_t shard, char *err, size_t errlen)
{
    int ck = shard_check(shard, "shard", err, errlen);
    if (ck)
        return ck;
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__SnapshotRequest s = SHOAL__SNAPSHOT_REQUEST__INIT;
    s.shard = shard < 0 ? 0 : (uint32_t)shard;
    s.all_shards = shard < 0;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_SNAPSHOT;
    req.snapshot = &s;
    return admin_simple(self, &req, err, errlen);
}
