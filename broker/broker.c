/* broker.c - shoal-broker's sockets and loop (see broker.h).
 *
 * The loop polls the client ROUTER, the XPUB (subscriptions), the SUB of node events and
 * a DEALER per node. Each wake-up drains a socket without blocking, so one poll serves a
 * burst of messages; a 10 ms tick drives retries, deadlines, node polls and progress
 * notices. Sends never block: DEALERs use ZMQ_IMMEDIATE, so a request for a node with no
 * live connection fails at once and is retried elsewhere instead of queueing behind a
 * dead peer. */
#include "broker/broker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/sockset.h"
#include "engine/error.h"

static size_t id_hash(const void *key)
{
    uint64_t k = *(const uint64_t *)key;
    return (size_t)(k * 0x9E3779B97F4A7C15ull >> 17);
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bnode_t *broker_node(broker_t *b, uint64_t id)
{
    for (size_t i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].id == id)
            return &b->nodes[i];
    return NULL;
}

bshard_t *broker_shard(broker_t *b, uint32_t id)
{
    if (id < b->n_shards && b->shards[id].id == id)
        return &b->shards[id];
    for (size_t i = 0; i < b->n_shards; i++)
        if (b->shards[i].id == id)
            return &b->shards[i];
    return NULL;
}

int broker_send_frame(zsock_t *sock, const Shoal__Frame *f)
{
    size_t len;
    uint8_t *buf = shoal_frame_encode(f, &len);
    if (!buf)
        return SHOAL_ENOMEM;
    int rc = zmq_send(zsock_resolve(sock), buf, len, ZMQ_DONTWAIT);
    free(buf);
    return rc < 0 ? SHOAL_EUNAVAIL : 0;
}

/* Sends f to a client (identity borrowed). */
int broker_reply(broker_t *b, zframe_t *client, Shoal__Frame *f)
{
    size_t len;
    uint8_t *buf = shoal_frame_encode(f, &len);
    if (!buf)
        return SHOAL_ENOMEM;
    void *s = zsock_resolve(b->front);
    int rc = zmq_send(s, zframe_data(client), zframe_size(client), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc >= 0)
        rc = zmq_send(s, buf, len, ZMQ_DONTWAIT);
    free(buf);
    return rc < 0 ? SHOAL_EUNAVAIL : 0;
}

/* Connects a node's DEALER and subscribes to its PUB; adds it to the node table. */
static bnode_t *add_node(broker_t *b, uint64_t id, const char *ep, const char *pub)
{
    if (b->n_nodes == BROKER_MAX_NODES)
        return NULL;
    bnode_t *n = &b->nodes[b->n_nodes];
    memset(n, 0, sizeof *n);
    n->id = id;
    n->endpoint = strdup(ep);
    n->pub_endpoint = strdup(pub);
    n->dealer = zsock_new(ZMQ_DEALER);
    if (!n->endpoint || !n->pub_endpoint || !n->dealer) {
        free(n->endpoint);
        free(n->pub_endpoint);
        zsock_destroy(&n->dealer);
        return NULL;
    }
    zsock_set_immediate(n->dealer, 1);
    zsock_set_linger(n->dealer, 0);
    zsock_set_sndhwm(n->dealer, 100000);
    zsock_set_rcvhwm(n->dealer, 100000);
    zsock_set_reconnect_ivl(n->dealer, 100);
    zsock_set_reconnect_ivl_max(n->dealer, 1000);
    if (zsock_connect(n->dealer, "%s", ep) != 0)
        zsys_warning("broker: cannot connect to node %" PRIu64 " at %s", id, ep);
    if (zsock_connect(b->sub, "%s", pub) != 0)
        zsys_warning("broker: cannot subscribe to node %" PRIu64 " at %s", id, pub);
    b->n_nodes++;
    return n;
}

/* A node id the map lists at new endpoints (removed, then added again elsewhere): the old
 * connections would retry the old addresses for ever. */
static void readdress_node(broker_t *b, bnode_t *n, const char *ep, const char *pub)
{
    char *e = strdup(ep), *p = strdup(pub);
    if (!e || !p) {
        free(e);
        free(p);
        return;
    }
    zsock_disconnect(n->dealer, "%s", n->endpoint);
    zsock_connect(n->dealer, "%s", e);
    zsock_disconnect(b->sub, "%s", n->pub_endpoint);
    zsock_connect(b->sub, "%s", p);
    broker_info(b, "broker: node %" PRIu64 " moved from %s to %s", n->id, n->endpoint, e);
    free(n->endpoint);
    free(n->pub_endpoint);
    n->endpoint = e;
    n->pub_endpoint = p;
}

/* The first three node ids of the configuration: the metadata group's bootstrap placement
 * (docs/CONTRACTS.md), which the map records only once the group is first moved. */
static size_t meta_bootstrap(const broker_t *b, uint64_t out[3])
{
    size_t k = 0; /* out[0..k) holds the smallest ids seen so far, ascending */
    for (size_t i = 0; i < b->cfg.n_nodes; i++) {
        uint64_t id = b->cfg.nodes[i].id;
        size_t at = k;
        while (at > 0 && out[at - 1] > id)
            at--;
        if (at == 3)
            continue;
        for (size_t j = k < 3 ? k : 2; j > at; j--)
            out[j] = out[j - 1];
        out[at] = id;
        k += k < 3;
    }
    return k;
}

/* The metadata group's members and move in progress, from the map; the match index of a
 * member that stays is kept until its leader's next status answer (merge_meta). */
static void set_meta_placement(broker_t *b, const Shoal__ShardInfo *mi)
{
    bshard_t *m = &b->meta;
    uint64_t ids[BROKER_MAX_REPLICAS], match[BROKER_MAX_REPLICAS] = {0};
    size_t n = 0;
    if (mi)
        for (; n < mi->n_replicas && n < BROKER_MAX_REPLICAS; n++)
            ids[n] = mi->replicas[n];
    else
        n = meta_bootstrap(b, ids);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m->n_replicas; k++)
            if (m->replicas[k] == ids[i])
                match[i] = m->match[k];
    memcpy(m->replicas, ids, n * sizeof *ids);
    memcpy(m->match, match, n * sizeof *match);
    m->n_replicas = n;
    size_t nl = mi ? mi->n_leaving : 0;
    m->n_leaving = nl < BROKER_MAX_REPLICAS ? nl : BROKER_MAX_REPLICAS;
    for (size_t r = 0; r < m->n_leaving; r++)
        m->leaving[r] = mi->leaving[r];
}

/* Rebuilds the ring and shard table from a map, keeping what is known of leaders. */
int broker_set_map(broker_t *b, const Shoal__ShardMap *map)
{
    ring_t *ring = ring_new(map->vnodes_per_shard ? map->vnodes_per_shard : 64);
    bshard_t *shards = calloc(map->n_shards + 1, sizeof *shards);
    if (!ring || !shards) {
        ring_destroy(&ring);
        free(shards);
        return SHOAL_ENOMEM;
    }
    for (size_t i = 0; i < map->n_nodes; i++) {
        const Shoal__NodeInfo *ni = map->nodes[i];
        bnode_t *known = broker_node(b, ni->id);
        if (!ni->endpoint || !ni->pub_endpoint)
            continue;
        if (!known)
            add_node(b, ni->id, ni->endpoint, ni->pub_endpoint);
        else if (ni->endpoint[0] && (strcmp(known->endpoint, ni->endpoint) ||
                                     strcmp(known->pub_endpoint, ni->pub_endpoint)))
            readdress_node(b, known, ni->endpoint, ni->pub_endpoint);
    }
    /* a node the map dropped (remove-node) keeps its slot, so ids stay resolvable, but is
     * no longer polled or shown; the bootstrap map lists no nodes and removes nothing */
    for (size_t k = 0; map->n_nodes && k < b->n_nodes; k++) {
        bool listed = false;
        for (size_t i = 0; i < map->n_nodes; i++)
            listed |= map->nodes[i]->id == b->nodes[k].id;
        b->nodes[k].removed = !listed;
    }
    for (size_t i = 0; i < map->n_shards; i++) {
        const Shoal__ShardInfo *si = map->shards[i];
        bshard_t *d = &shards[i];
        bshard_t *old = broker_shard(b, si->id);
        if (old)
            *d = *old;
        else
            d->leader = BROKER_NO_LEADER;
        d->id = si->id;
        d->n_replicas = si->n_replicas < BROKER_MAX_REPLICAS ? si->n_replicas : BROKER_MAX_REPLICAS;
        /* a match index stays with its node: a move puts TO where FROM was in the list */
        for (size_t r = 0; r < d->n_replicas; r++) {
            d->replicas[r] = si->replicas[r];
            d->match[r] = 0;
            for (size_t k = 0; old && k < old->n_replicas; k++)
                if (old->replicas[k] == si->replicas[r])
                    d->match[r] = old->match[k];
        }
        d->n_leaving = si->n_leaving < BROKER_MAX_REPLICAS ? si->n_leaving : BROKER_MAX_REPLICAS;
        for (size_t r = 0; r < d->n_leaving; r++)
            d->leaving[r] = si->leaving[r];
        d->splitting = si->splitting;
        d->split_from = si->split_from;
        /* a split shard owns explicit points (ShardInfo.points), the others derived ones */
        if (si->n_points)
            ring_add_points(ring, si->id, si->points, si->n_points);
        else
            ring_add_shard(ring, si->id);
    }
    set_meta_placement(b, map->meta);
    ring_destroy(&b->ring);
    free(b->shards);
    b->ring = ring;
    b->shards = shards;
    b->n_shards = map->n_shards;
    b->map_version = map->version;
    broker_info(b, "broker: shard map version %" PRIu64 ": %zu shards on %zu nodes", map->version,
                map->n_shards, b->n_nodes);
    return 0;
}

/* The bootstrap map of docs/CONTRACTS.md: shard s on nodes (s + k) mod N, version 1. */
static int set_bootstrap_map(broker_t *b)
{
    const broker_config_t *c = &b->cfg;
    Shoal__ShardMap map = SHOAL__SHARD_MAP__INIT;
    map.version = 1;
    map.vnodes_per_shard = c->vnodes;
    Shoal__ShardInfo *si = calloc(c->shards, sizeof *si);
    Shoal__ShardInfo **sp = calloc(c->shards, sizeof *sp);
    uint64_t *reps = calloc((size_t)c->shards * c->replicas, sizeof *reps);
    if (!si || !sp || !reps) {
        free(si);
        free(sp);
        free(reps);
        return SHOAL_ENOMEM;
    }
    for (unsigned s = 0; s < c->shards; s++) {
        shoal__shard_info__init(&si[s]);
        si[s].id = s;
        si[s].n_replicas = c->replicas;
        si[s].replicas = &reps[(size_t)s * c->replicas];
        for (unsigned k = 0; k < c->replicas; k++)
            si[s].replicas[k] = c->nodes[(s + k) % c->n_nodes].id;
        sp[s] = &si[s];
    }
    map.n_shards = c->shards;
    map.shards = sp;
    int rc = broker_set_map(b, &map);
    free(si);
    free(sp);
    free(reps);
    return rc;
}

broker_t *broker_new(const broker_config_t *cfg, char *err, size_t errlen)
{
    broker_t *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    b->meta_leader = BROKER_NO_LEADER;
    b->meta.id = 4294967295u; /* the metadata group (SHOAL_META_SHARD) */
    b->cluster_id = cfg->cluster_id;
    b->next_id = 1;
    b->stream_epoch = stream_seqs_epoch();
    b->front = zsock_new(ZMQ_ROUTER);
    b->xpub = zsock_new(ZMQ_XPUB);
    b->sub = zsock_new(ZMQ_SUB);
    b->pending = zhashx_new();
    if (!b->front || !b->xpub || !b->sub || !b->pending) {
        snprintf(err, errlen, "cannot create sockets: %s", zmq_strerror(zmq_errno()));
        broker_destroy(&b);
        return NULL;
    }
    zhashx_set_key_hasher(b->pending, id_hash);
    zhashx_set_key_comparator(b->pending, id_cmp);
    zhashx_set_key_duplicator(b->pending, NULL);
    zhashx_set_key_destructor(b->pending, NULL);
    zsock_set_router_mandatory(b->front, 0);
    zsock_set_sndhwm(b->front, 100000);
    zsock_set_rcvhwm(b->front, 100000);
    zsock_set_linger(b->front, 0);
    zsock_set_sndhwm(b->xpub, (int)cfg->subscriber_hwm);
    zsock_set_linger(b->xpub, 0);
    zsock_set_rcvhwm(b->sub, 1000000);
    /* Change events only while someone watches (see drain_xpub): the nodes' PUB then
     * filters them at the source, so an unwatched cluster pays nothing for them. */
    zsock_set_subscribe(b->sub, "raft/");
    zsock_set_subscribe(b->sub, "metrics/");
    zsock_set_subscribe(b->sub, "progress");
    if (zsock_bind(b->front, "%s", cfg->client_endpoint) < 0) {
        snprintf(err, errlen, "cannot bind client endpoint %s: %s", cfg->client_endpoint,
                 zmq_strerror(zmq_errno()));
        broker_destroy(&b);
        return NULL;
    }
    if (zsock_bind(b->xpub, "%s", cfg->pub_endpoint) < 0) {
        snprintf(err, errlen, "cannot bind pub endpoint %s: %s", cfg->pub_endpoint,
                 zmq_strerror(zmq_errno()));
        broker_destroy(&b);
        return NULL;
    }
    if (cfg->http_endpoint[0]) {
        b->http = zsock_new(ZMQ_STREAM);
        if (!b->http || zsock_bind(b->http, "%s", cfg->http_endpoint) < 0) {
            snprintf(err, errlen, "cannot bind http endpoint %s: %s", cfg->http_endpoint,
                     zmq_strerror(zmq_errno()));
            broker_destroy(&b);
            return NULL;
        }
        zsock_set_linger(b->http, 0);
    }
    for (size_t i = 0; i < cfg->n_nodes; i++)
        add_node(b, cfg->nodes[i].id, cfg->nodes[i].endpoint, cfg->nodes[i].pub_endpoint);
    if (set_bootstrap_map(b) != 0) {
        snprintf(err, errlen, "out of memory");
        broker_destroy(&b);
        return NULL;
    }
    return b;
}

void broker_destroy(broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *b = *self_p;
    if (b->pending) {
        route_free_all(b);
        zhashx_destroy(&b->pending);
    }
    admin_destroy(b);
    for (size_t i = 0; i < b->n_nodes; i++) {
        node_out_free(&b->nodes[i]);
        zsock_destroy(&b->nodes[i].dealer);
        free(b->nodes[i].endpoint);
        free(b->nodes[i].pub_endpoint);
    }
    zsock_destroy(&b->front);
    zsock_destroy(&b->xpub);
    stream_seqs_destroy(b);
    zsock_destroy(&b->sub);
    zsock_destroy(&b->http);
    ring_destroy(&b->ring);
    free(b->shards);
    free(b);
    *self_p = NULL;
}

/* Client ROUTER: [identity][Frame]. Returns the number of messages handled. */
static int drain_front(broker_t *b)
{
    int i;
    for (i = 0; i < 1024; i++) {
        zmsg_t *msg = zmsg_recv_nowait(b->front);
        if (!msg)
            break;
        zframe_t *id = zmsg_pop(msg);
        zframe_t *body = zmsg_pop(msg);
        zmsg_destroy(&msg);
        Shoal__Frame *f = NULL;
        char err[256];
        if (!id || !body) {
            zframe_destroy(&id);
        } else if (shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err) !=
                   0) {
            route_reply_error(b, id, 0, 4, "bad frame: %s", err);
        } else if (f->body_case == SHOAL__FRAME__BODY_CLIENT_REQ) {
            route_client_request(b, id, f); /* takes id and f */
            id = NULL;
            f = NULL;
        } else if (f->body_case == SHOAL__FRAME__BODY_ADMIN_REQ) {
            admin_client_request(b, id, f); /* takes id and f */
            id = NULL;
            f = NULL;
        } else {
            route_reply_error(b, id, 0, 4, "a broker answers client and admin requests only");
        }
        shoal_frame_free(&f);
        zframe_destroy(&id);
        zframe_destroy(&body);
    }
    return i;
}

/* A node's answers of one pump (Frame{batch}), each handled as if it came alone. */
static void node_batch(broker_t *b, bnode_t *n, Shoal__Frame *f)
{
    for (size_t i = 0; i < f->batch->n_frames; i++) {
        Shoal__Frame *e = NULL;
        char err[256];
        if (shoal_batch_element(f, i, &e, err, sizeof err) != 0)
            zsys_warning("broker: bad batch element from node %" PRIu64 ": %s", n->id, err);
        else if (e->body_case == SHOAL__FRAME__BODY_CLIENT_RESP)
            route_node_response(b, n, e); /* takes e */
        else
            shoal_frame_free(&e);
    }
    shoal_frame_free(&f);
}

static int drain_node(broker_t *b, bnode_t *n)
{
    void *s = zsock_resolve(n->dealer);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    int i;
    for (i = 0; i < 1024; i++) {
        if (zmq_msg_recv(&msg, s, ZMQ_DONTWAIT) < 0)
            break;
        Shoal__Frame *f = NULL;
        char err[256];
        if (shoal_frame_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &f, err, sizeof err)) {
            zsys_warning("broker: bad frame from node %" PRIu64 ": %s", n->id, err);
            continue;
        }
        admin_seen(b, n->id);
        if (f->body_case == SHOAL__FRAME__BODY_CLIENT_RESP)
            route_node_response(b, n, f); /* takes f */
        else if (f->body_case == SHOAL__FRAME__BODY_BATCH)
            node_batch(b, n, f); /* takes f */
        else if (f->body_case == SHOAL__FRAME__BODY_ADMIN_RESP)
            admin_node_response(b, n, f); /* takes f */
        else
            shoal_frame_free(&f);
    }
    zmq_msg_close(&msg);
    return i;
}

/* Node PUB: [topic][protobuf]. */
static int drain_sub(broker_t *b)
{
    int i;
    for (i = 0; i < 4096; i++) {
        zmsg_t *msg = zmsg_recv_nowait(b->sub);
        if (!msg)
            break;
        zframe_t *topic = zmsg_first(msg);
        zframe_t *body = zmsg_next(msg);
        if (topic && body) {
            const char *t = (const char *)zframe_data(topic);
            size_t tl = zframe_size(topic);
            if (tl >= 7 && memcmp(t, "change/", 7) == 0)
                streams_on_change(b, topic, body);
            else if (tl >= 5 && memcmp(t, "raft/", 5) == 0) {
                admin_on_raft_event(b, zframe_data(body), zframe_size(body), false);
                zmsg_send(&msg, b->xpub); /* `shoalctl events` tails these */
            } else if (tl >= 8 && memcmp(t, "metrics/", 8) == 0)
                admin_on_raft_event(b, zframe_data(body), zframe_size(body), true);
            else if (tl == 8 && memcmp(t, "progress", 8) == 0)
                streams_on_progress(b, zframe_data(body), zframe_size(body));
        }
        zmsg_destroy(&msg);
    }
    return i;
}

/* XPUB delivers subscription messages (first byte 1 subscribe, 0 unsubscribe, then the
 * topic; each distinct topic once). The broker subscribes to the nodes' change events while
 * at least one "change/..." topic is wanted, and drops that subscription when none is. */
static int drain_xpub(broker_t *b)
{
    int i;
    for (i = 0; i < 1024; i++) {
        zframe_t *f = zframe_recv_nowait(b->xpub);
        if (!f)
            break;
        const uint8_t *d = zframe_data(f);
        size_t n = zframe_size(f);
        if (n >= 8 && memcmp(d + 1, "change/", 7) == 0) {
            if (d[0] == 1 && b->change_topics++ == 0)
                zsock_set_subscribe(b->sub, "change/");
            else if (d[0] == 0 && b->change_topics > 0 && --b->change_topics == 0)
                zsock_set_unsubscribe(b->sub, "change/");
            stream_seqs_subscribed(b, d + 8, n - 8, d[0] == 1);
        }
        zframe_destroy(&f);
    }
    return i;
}

static void tick(broker_t *b)
{
    int64_t now = zclock_mono();
    if (now >= b->next_sweep) {
        route_sweep(b);
        b->next_sweep = now + 10;
    }
    if (now >= b->next_poll) {
        admin_check_liveness(b);
        admin_poll_nodes(b);
        b->next_poll = now + b->cfg.poll_ms;
    }
    if (now >= b->next_progress) {
        streams_publish_progress(b);
        b->next_progress = now + b->cfg.progress_ms;
    }
}

/* The wait set (actors/sockset.h): one entry per socket, rebuilt when nodes are added.
 * Every socket with input is drained in the same wake-up (clients first, then every node's
 * answers, then events); a busy client socket cannot starve the nodes' answers. kind[i]
 * says what entry i is: IT_* or IT_NODES + node index. */
enum { IT_FRONT, IT_SUB, IT_XPUB, IT_HTTP, IT_PIPE, IT_NODES };

static sockset_t *build_set(broker_t *b, size_t *kind, size_t *n)
{
    sockset_t *set = sockset_new();
    zsock_t *fixed[IT_NODES] = {b->front, b->sub, b->xpub, b->http, b->pipe};
    *n = 0;
    for (size_t i = 0; set && i < IT_NODES; i++)
        if (fixed[i] && sockset_add(set, fixed[i]) == (int)*n)
            kind[(*n)++] = i;
    for (size_t i = 0; set && i < b->n_nodes; i++)
        if (sockset_add(set, b->nodes[i].dealer) == (int)*n)
            kind[(*n)++] = IT_NODES + i;
    return set;
}

/* The sockets a loop turn sends on (answers, requests, republished events) are asked again
 * before the next wait, since a send can take the signal their input came with
 * (sockset.h); the others when their descriptor fires, and every socket once per 10 ms
 * (a bound on a use left unmarked). */
static void touch_senders(sockset_t *set, const size_t *kind, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (kind[i] == IT_FRONT || kind[i] == IT_XPUB || kind[i] >= IT_NODES)
            sockset_touch(set, (int)i);
}

/* The actor pipe: true when told to stop. */
static bool pipe_says_stop(zsock_t *pipe)
{
    char *cmd = zstr_recv(pipe);
    bool term = !cmd || streq(cmd, "$TERM");
    zstr_free(&cmd);
    return term;
}

/* Drains what items[i] stands for; true when the actor pipe said stop. */
static bool serve_item(broker_t *b, size_t kind)
{
    switch (kind) {
    case IT_FRONT: drain_front(b); break;
    case IT_SUB: drain_sub(b); break;
    case IT_XPUB: drain_xpub(b); break;
    case IT_HTTP: dashboard_drain(b); break;
    case IT_PIPE: return pipe_says_stop(b->pipe);
    default: drain_node(b, &b->nodes[kind - IT_NODES]);
    }
    return false;
}

void broker_run(broker_t *b, zsock_t *pipe)
{
    b->pipe = pipe;
    broker_info(b, "broker: clients on %s, change streams on %s, %zu nodes, %zu shards",
                b->cfg.client_endpoint, b->cfg.pub_endpoint, b->n_nodes, b->n_shards);
    if (b->http)
        broker_info(b, "broker: dashboard on %s", b->cfg.http_endpoint);
    size_t kind[IT_NODES + BROKER_MAX_NODES];
    size_t n_items = 0, built_for = SIZE_MAX;
    sockset_t *set = NULL;
    int64_t next_all = 0;
    bool stop = false;
    while (!stop && !zsys_interrupted) {
        if (built_for != b->n_nodes) {
            sockset_destroy(&set);
            if (!(set = build_set(b, kind, &n_items))) {
                zsys_error("broker: out of memory");
                break;
            }
            built_for = b->n_nodes;
        }
        int64_t now = zclock_mono();
        if (now >= next_all) {
            sockset_touch_all(set);
            next_all = now + 10;
        }
        int rc = sockset_wait(set, 10);
        if (rc < 0)
            break;
        for (size_t i = 0; rc > 0 && i < n_items && !stop; i++)
            if (sockset_ready(set, (int)i))
                stop = serve_item(b, kind[i]);
        tick(b);
        b->stats_node_msgs += node_out_flush(b); /* this turn's requests, a message per node */
        touch_senders(set, kind, n_items);
    }
    sockset_destroy(&set);
    broker_info(b,
                "broker: stopping (%" PRIu64 " requests, %" PRIu64 " retries, %" PRIu64
                " changes republished, %" PRIu64 " messages of requests to nodes)",
                b->stats_requests, b->stats_retries, b->stats_changes, b->stats_node_msgs);
}

void broker_actor(zsock_t *pipe, void *args)
{
    char err[256];
    broker_t *b = broker_new(args, err, sizeof err);
    if (!b) {
        zsys_error("broker: %s", err);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    broker_run(b, pipe);
    broker_destroy(&b);
}
