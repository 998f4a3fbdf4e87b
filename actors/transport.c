/* transport.c - peer messages: conversion, batching, heartbeat coalescing, snapshot pacing;
 * see transport.h.
 *
 * Envelopes are built without a tree of protobuf-c structs per message: a repeated message
 * field on the wire is just (tag, length, bytes) repeated, so each outgoing message is packed
 * once, straight into its peer's buffer, and flush prefixes the Frame and envelope headers.
 * The result is byte-for-byte a valid Frame{peer} that proto/codec.c decodes. */
#include "actors/transport.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "proto/codec.h"
#include "proto/wire.pb-c.h"

#define PEER_HWM 2000
#define SNAP_QUEUE_MAX 64
/* A peer's envelope goes out as soon as it holds this much, not only at the end of the loop
 * turn: a turn's appends of big entries (1 MiB values from many clients) made one envelope
 * of ~100 MB, past SHOAL_MAX_FRAME, which the peer dropped with every heartbeat in it. */
#define ENVELOPE_FULL (4u << 20)

/* Wire tags (field << 3 | type) of Frame and PeerEnvelope, see proto/wire.proto, raft.proto */
#define TAG_FRAME_VERSION 0x08 /* Frame.version, varint */
#define TAG_FRAME_PEER 0x62    /* Frame.peer (12), length-delimited */
#define TAG_ENV_FROM 0x08      /* PeerEnvelope.from_node (1) */
#define TAG_ENV_TO 0x10        /* PeerEnvelope.to_node (2) */
#define TAG_ENV_MSG 0x1a       /* PeerEnvelope.msgs (3) */
#define TAG_ENV_HB 0x22        /* PeerEnvelope.heartbeats (4) */
#define TAG_ENV_HB_RESP 0x2a   /* PeerEnvelope.heartbeat_resps (5) */
#define TAG_ENV_CLUSTER 0x30   /* PeerEnvelope.cluster_id (6) */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buf_t;

typedef struct {
    uint8_t *data;
    size_t len;
} chunk_t;

typedef struct {
    uint64_t id;
    zsock_t *dealer;
    char *endpoint;
    buf_t out;                     /* packed envelope fields since the last flush */
    chunk_t snaps[SNAP_QUEUE_MAX]; /* complete Frames holding one snapshot chunk each */
    size_t snap_head, snap_n;
    double tokens;         /* bytes the rate limit allows now */
    uint64_t last_sent_ms; /* keepalive: when the peer last got anything */
    uint64_t last_refill_ms;
} peer_t;

struct transport_t {
    uint64_t self_id;
    uint64_t cluster_id; /* stamped on every envelope once known */
    peer_t peers[NODE_MAX_NODES];
    size_t n_peers;
    double rate_bytes_per_ms;
    uint64_t dropped;
    uint64_t envelopes, msgs; /* sent, for the node's work counters */
};

static bool buf_reserve(buf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *n = realloc(b->data, cap);
    if (!n)
        return false;
    b->data = n;
    b->cap = cap;
    return true;
}

static size_t varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Appends tag + length + packed message to b. */
static bool buf_add_msg(buf_t *b, uint8_t tag, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (!buf_reserve(b, 1 + 10 + n))
        return false;
    b->data[b->len++] = tag;
    b->len += varint(b->data + b->len, n);
    b->len += protobuf_c_message_pack(m, b->data + b->len);
    return true;
}

static peer_t *peer_of(transport_t *self, uint64_t node);

/* A node id the map lists at a new address (removed, then added again elsewhere): the
 * old connection would retry the old address for ever. */
static int readdress(peer_t *p, const char *endpoint)
{
    char *ep = strdup(endpoint);
    if (!ep)
        return SHOAL_ENOMEM;
    zsock_disconnect(p->dealer, "%s", p->endpoint);
    zsock_connect(p->dealer, "%s", ep);
    zsys_info("transport: node %" PRIu64 " moved from %s to %s", p->id, p->endpoint, ep);
    free(p->endpoint);
    p->endpoint = ep;
    return 0;
}

int transport_add_peer(transport_t *self, uint64_t id, const char *endpoint)
{
    peer_t *known = id == self->self_id ? NULL : peer_of(self, id);
    if (known && strcmp(known->endpoint, endpoint))
        return readdress(known, endpoint);
    if (id == self->self_id || known)
        return 0;
    if (self->n_peers == NODE_MAX_NODES)
        return SHOAL_EINVAL;
    peer_t *p = &self->peers[self->n_peers];
    memset(p, 0, sizeof *p);
    p->id = id;
    p->dealer = zsock_new(ZMQ_DEALER);
    p->endpoint = strdup(endpoint);
    if (!p->dealer || !p->endpoint) {
        zsock_destroy(&p->dealer);
        free(p->endpoint);
        return SHOAL_ENOMEM;
    }
    zsock_set_sndhwm(p->dealer, PEER_HWM);
    zsock_set_linger(p->dealer, 0);
    zsock_set_immediate(p->dealer, 1); /* nothing queues for a peer that is down */
    zsock_connect(p->dealer, "%s", endpoint);
    p->last_refill_ms = zclock_mono();
    self->n_peers++;
    return 0;
}

transport_t *transport_new(const node_config_t *cfg)
{
    transport_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->self_id = cfg->id;
    self->rate_bytes_per_ms = cfg->snapshot_rate_kbps * 1024.0 / 1000.0;
    for (size_t i = 0; i < cfg->n_nodes; i++)
        if (transport_add_peer(self, cfg->nodes[i].id, cfg->nodes[i].endpoint) != 0) {
            transport_destroy(&self);
            return NULL;
        }
    return self;
}

bool transport_has_peer(transport_t *self, uint64_t id)
{
    return peer_of(self, id) != NULL;
}

void transport_destroy(transport_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    transport_t *self = *self_p;
    for (size_t i = 0; i < self->n_peers; i++) {
        peer_t *p = &self->peers[i];
        zsock_destroy(&p->dealer);
        free(p->endpoint);
        free(p->out.data);
        for (size_t k = 0; k < p->snap_n; k++)
            free(p->snaps[(p->snap_head + k) % SNAP_QUEUE_MAX].data);
    }
    free(self);
    *self_p = NULL;
}

static peer_t *peer_of(transport_t *self, uint64_t node)
{
    for (size_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].id == node)
            return &self->peers[i];
    return NULL;
}

/* ---- conversion --------------------------------------------------------------------- */

static void conf_to_proto(const raft_conf_state_t *c, Shoal__ConfState *p)
{
    shoal__conf_state__init(p);
    p->voters = (uint64_t *)c->voters;
    p->n_voters = c->n_voters;
    p->learners = (uint64_t *)c->learners;
    p->n_learners = c->n_learners;
    p->voters_outgoing = (uint64_t *)c->voters_outgoing;
    p->n_voters_outgoing = c->n_voters_outgoing;
}

static int conf_from_proto(const Shoal__ConfState *p, raft_conf_state_t *c)
{
    memset(c, 0, sizeof *c);
    if (!p)
        return 0;
    if (p->n_voters > RAFT_MAX_NODES || p->n_learners > RAFT_MAX_NODES ||
        p->n_voters_outgoing > RAFT_MAX_NODES)
        return -1;
    for (size_t i = 0; i < p->n_voters; i++)
        c->voters[i] = p->voters[i];
    c->n_voters = p->n_voters;
    for (size_t i = 0; i < p->n_learners; i++)
        c->learners[i] = p->learners[i];
    c->n_learners = p->n_learners;
    for (size_t i = 0; i < p->n_voters_outgoing; i++)
        c->voters_outgoing[i] = p->voters_outgoing[i];
    c->n_voters_outgoing = p->n_voters_outgoing;
    return 0;
}

uint8_t *transport_conf_encode(const raft_conf_state_t *c, size_t *len)
{
    Shoal__ConfState p;
    conf_to_proto(c, &p);
    *len = shoal__conf_state__get_packed_size(&p);
    uint8_t *b = malloc(*len + 1);
    if (b)
        shoal__conf_state__pack(&p, b);
    return b;
}

int transport_conf_decode(const uint8_t *buf, size_t len, raft_conf_state_t *c)
{
    Shoal__ConfState *p = shoal__conf_state__unpack(NULL, len, buf);
    if (!p)
        return -1;
    int rc = conf_from_proto(p, c);
    shoal__conf_state__free_unpacked(p, NULL);
    return rc;
}

/* Packs a full message into the peer's buffer (entries point into the core's memory). */
static bool pack_msg(buf_t *b, const raft_msg_t *m)
{
    Shoal__RaftMessage p = SHOAL__RAFT_MESSAGE__INIT;
    Shoal__Entry ents_st[64], *eptr_st[64];
    Shoal__Entry *ents = ents_st;
    Shoal__Entry **eptr = eptr_st;
    Shoal__SnapshotChunk chunk = SHOAL__SNAPSHOT_CHUNK__INIT;
    Shoal__SnapshotMeta meta = SHOAL__SNAPSHOT_META__INIT;
    Shoal__ConfState conf;
    if (m->n_entries > 64) {
        ents = malloc(m->n_entries * sizeof *ents);
        eptr = malloc(m->n_entries * sizeof *eptr);
        if (!ents || !eptr) {
            free(ents);
            free(eptr);
            return false;
        }
    }
    p.type = (Shoal__RaftMessageType)m->type;
    p.group = m->group;
    p.from = m->from;
    p.to = m->to;
    p.term = m->term;
    p.log_term = m->log_term;
    p.index = m->index;
    p.commit = m->commit;
    p.reject = m->reject;
    p.reject_hint = m->reject_hint;
    p.conflict_term = m->conflict_term;
    p.context.data = m->context;
    p.context.len = m->context_len;
    for (size_t i = 0; i < m->n_entries; i++) {
        shoal__entry__init(&ents[i]);
        ents[i].term = m->entries[i].term;
        ents[i].index = m->entries[i].index;
        ents[i].type = (Shoal__EntryType)m->entries[i].type;
        ents[i].data.data = m->entries[i].data;
        ents[i].data.len = m->entries[i].len;
        eptr[i] = &ents[i];
    }
    p.entries = eptr;
    p.n_entries = m->n_entries;
    if (m->has_snapshot) {
        conf_to_proto(&m->snapshot.meta.conf, &conf);
        meta.index = m->snapshot.meta.index;
        meta.term = m->snapshot.meta.term;
        meta.conf = &conf;
        chunk.meta = &meta;
        chunk.offset = m->snapshot.offset;
        chunk.data.data = m->snapshot.data;
        chunk.data.len = m->snapshot.len;
        chunk.last = m->snapshot.last;
        chunk.total_size = m->snapshot.total_size;
        chunk.checksum = m->snapshot.checksum;
        p.snapshot = &chunk;
    }
    bool ok = buf_add_msg(b, TAG_ENV_MSG, &p.base);
    if (ents != ents_st) {
        free(ents);
        free(eptr);
    }
    return ok;
}

static bool pack_heartbeat(buf_t *b, const raft_msg_t *m)
{
    Shoal__GroupHeartbeat hb = SHOAL__GROUP_HEARTBEAT__INIT;
    hb.group = m->group;
    hb.term = m->term;
    hb.commit = m->commit;
    hb.context.data = m->context;
    hb.context.len = m->context_len;
    hb.reject = m->reject;
    return buf_add_msg(b, m->type == RAFT_MSG_HEARTBEAT ? TAG_ENV_HB : TAG_ENV_HB_RESP, &hb.base);
}

/* Wraps envelope fields into a complete Frame{peer}. */
static uint8_t *frame_of(transport_t *self, uint64_t to, const buf_t *body, size_t *len)
{
    uint8_t head[40];
    size_t h = 0;
    head[h++] = TAG_ENV_FROM;
    h += varint(head + h, self->self_id);
    head[h++] = TAG_ENV_TO;
    h += varint(head + h, to);
    if (self->cluster_id) {
        head[h++] = TAG_ENV_CLUSTER;
        h += varint(head + h, self->cluster_id);
    }
    size_t envlen = h + body->len;
    uint8_t *f = malloc(4 + 10 + envlen);
    if (!f)
        return NULL;
    size_t n = 0;
    f[n++] = TAG_FRAME_VERSION;
    f[n++] = SHOAL_WIRE_VERSION;
    f[n++] = TAG_FRAME_PEER;
    n += varint(f + n, envlen);
    memcpy(f + n, head, h);
    n += h;
    if (body->len)
        memcpy(f + n, body->data, body->len);
    *len = n + body->len;
    return f;
}

static void send_bytes(transport_t *self, peer_t *p, const uint8_t *f, size_t len)
{
    if (zmq_send(zsock_resolve(p->dealer), f, len, ZMQ_DONTWAIT) < 0)
        self->dropped++;
    p->last_sent_ms = zclock_mono();
}

/* Sends the peer's envelope of the messages packed since its last one. */
static void flush_peer(transport_t *self, peer_t *p)
{
    size_t len;
    uint8_t *f = frame_of(self, p->id, &p->out, &len);
    if (f)
        send_bytes(self, p, f, len);
    free(f);
    self->envelopes++;
    p->out.len = 0;
    if (p->out.cap > (1u << 20)) { /* give back a buffer grown by a burst */
        free(p->out.data);
        p->out = (buf_t){0};
    }
}

void transport_send(transport_t *self, const raft_msg_t *m)
{
    peer_t *p = peer_of(self, node_id_of(m->to));
    if (!p)
        return;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        if (p->snap_n == SNAP_QUEUE_MAX) {
            self->dropped++;
            return;
        }
        buf_t one = {0};
        size_t len;
        uint8_t *f = pack_msg(&one, m) ? frame_of(self, p->id, &one, &len) : NULL;
        free(one.data);
        if (f)
            p->snaps[(p->snap_head + p->snap_n++) % SNAP_QUEUE_MAX] = (chunk_t){f, len};
        return;
    }
    bool ok = m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_HEARTBEAT_RESP
                  ? pack_heartbeat(&p->out, m)
                  : pack_msg(&p->out, m);
    if (!ok)
        self->dropped++;
    else
        self->msgs++;
    if (p->out.len >= ENVELOPE_FULL)
        flush_peer(self, p);
}

void transport_send_frame(transport_t *self, uint64_t node, const uint8_t *frame, size_t len)
{
    peer_t *p = peer_of(self, node);
    if (p)
        send_bytes(self, p, frame, len);
    else
        self->dropped++;
}

void transport_set_cluster(transport_t *self, uint64_t cluster_id)
{
    self->cluster_id = cluster_id;
}

void transport_keepalive(transport_t *self, uint64_t interval_ms)
{
    uint64_t now = zclock_mono();
    buf_t empty = {0};
    for (size_t i = 0; i < self->n_peers; i++) {
        peer_t *p = &self->peers[i];
        if (now - p->last_sent_ms < interval_ms)
            continue;
        size_t len;
        uint8_t *f = frame_of(self, p->id, &empty, &len);
        if (f)
            send_bytes(self, p, f, len);
        free(f);
    }
}

static void pump_snapshots(transport_t *self, peer_t *p)
{
    uint64_t now = zclock_mono();
    p->tokens += (double)(now - p->last_refill_ms) * self->rate_bytes_per_ms;
    double burst = self->rate_bytes_per_ms * 1000.0; /* at most one second of credit */
    if (p->tokens > burst)
        p->tokens = burst;
    p->last_refill_ms = now;
    while (p->snap_n && p->tokens > 0) {
        chunk_t *c = &p->snaps[p->snap_head];
        send_bytes(self, p, c->data, c->len);
        p->tokens -= (double)c->len;
        free(c->data);
        p->snap_head = (p->snap_head + 1) % SNAP_QUEUE_MAX;
        p->snap_n--;
    }
}

void transport_flush(transport_t *self)
{
    for (size_t i = 0; i < self->n_peers; i++) {
        peer_t *p = &self->peers[i];
        if (p->out.len)
            flush_peer(self, p);
        if (p->snap_n)
            pump_snapshots(self, p);
    }
}

bool transport_snapshots_waiting(const transport_t *self)
{
    for (size_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].snap_n)
            return true;
    return false;
}

void transport_counts(const transport_t *self, uint64_t *envelopes, uint64_t *msgs)
{
    *envelopes = self->envelopes;
    *msgs = self->msgs;
}

uint64_t transport_dropped(const transport_t *self)
{
    return self->dropped;
}

/* ---- receiving ---------------------------------------------------------------------- */

static void receive_msg(const Shoal__RaftMessage *p, transport_msg_fn *fn, void *arg)
{
    raft_msg_t m;
    memset(&m, 0, sizeof m);
    raft_entry_t st[64];
    raft_entry_t *ents = p->n_entries > 64 ? malloc(p->n_entries * sizeof *ents) : st;
    if (!ents)
        return;
    m.type = (raft_msg_type_t)p->type;
    m.group = p->group;
    m.from = p->from;
    m.to = p->to;
    m.term = p->term;
    m.log_term = p->log_term;
    m.index = p->index;
    m.commit = p->commit;
    m.reject = p->reject;
    m.reject_hint = p->reject_hint;
    m.conflict_term = p->conflict_term;
    m.context = p->context.data;
    m.context_len = p->context.len;
    for (size_t i = 0; i < p->n_entries; i++) {
        ents[i].term = p->entries[i]->term;
        ents[i].index = p->entries[i]->index;
        ents[i].type = (raft_entry_type_t)p->entries[i]->type;
        ents[i].data = p->entries[i]->data.data;
        ents[i].len = p->entries[i]->data.len;
    }
    m.entries = ents;
    m.n_entries = p->n_entries;
    bool ok = true;
    if (p->snapshot) {
        const Shoal__SnapshotChunk *c = p->snapshot;
        m.has_snapshot = true;
        if (c->meta) {
            m.snapshot.meta.index = c->meta->index;
            m.snapshot.meta.term = c->meta->term;
            ok = conf_from_proto(c->meta->conf, &m.snapshot.meta.conf) == 0;
        }
        m.snapshot.offset = c->offset;
        m.snapshot.data = c->data.data;
        m.snapshot.len = c->data.len;
        m.snapshot.last = c->last;
        m.snapshot.total_size = c->total_size;
        m.snapshot.checksum = c->checksum;
    }
    if (ok && m.type > RAFT_MSG_NONE && m.type <= RAFT_MSG_TYPE_MAX)
        fn(arg, &m);
    if (ents != st)
        free(ents);
}

static void receive_hb(const Shoal__PeerEnvelope *env, const Shoal__GroupHeartbeat *hb,
                       raft_msg_type_t type, transport_msg_fn *fn, void *arg)
{
    raft_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.group = hb->group;
    m.from = raft_id_of(env->from_node);
    m.to = raft_id_of(env->to_node);
    m.term = hb->term;
    m.commit = hb->commit;
    m.context = hb->context.data;
    m.context_len = hb->context.len;
    m.reject = hb->reject;
    fn(arg, &m);
}

void transport_receive(const Shoal__PeerEnvelope *env, transport_msg_fn *fn, void *arg)
{
    for (size_t i = 0; i < env->n_msgs; i++)
        receive_msg(env->msgs[i], fn, arg);
    for (size_t i = 0; i < env->n_heartbeats; i++)
        receive_hb(env, env->heartbeats[i], RAFT_MSG_HEARTBEAT, fn, arg);
    for (size_t i = 0; i < env->n_heartbeat_resps; i++)
        receive_hb(env, env->heartbeat_resps[i], RAFT_MSG_HEARTBEAT_RESP, fn, arg);
}
