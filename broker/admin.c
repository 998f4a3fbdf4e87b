/* admin.c - the broker's admin service: the cluster state it keeps and the admin requests
 * it answers.
 *
 * State comes from two feeds: the Raft events every node publishes (leader elected, term,
 * commit/apply progress, node up/down, metrics), and a status poll the broker sends each
 * node every poll_ms (which also tells whether the node is alive: a node silent for
 * BROKER_DOWN_MS is shown down and stops being used as a cached leader). The same feeds
 * keep the leader cache of route.c warm, so a leader change is usually known before a
 * request hits the old leader.
 *
 * status and shard_map are answered from this state; transfer, compaction and snapshots
 * go to the nodes that hold the shard; membership and map changes go to the metadata
 * group's leader (node 0 until one is known). */
#include "broker/broker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/shoal.h"

#define META_GROUP 4294967295u

static uint64_t wall_us(void)
{
    return (uint64_t)zclock_time() * 1000;
}

void admin_seen(broker_t *b, uint64_t node_id)
{
    bnode_t *n = broker_node(b, node_id);
    if (!n)
        return;
    n->last_seen = zclock_mono();
    n->last_seen_us = wall_us();
}

void admin_set_leader(broker_t *b, bshard_t *s, int64_t leader, uint64_t term)
{
    if (term && term < s->term)
        return; /* an older term's news */
    if (term > s->term)
        s->term = term;
    s->leader = leader;
}

static void remember(broker_t *b, Shoal__RaftEvent *ev)
{
    size_t at = (b->recent_head + b->n_recent) % BROKER_RECENT;
    if (b->n_recent == BROKER_RECENT) {
        at = b->recent_head;
        b->recent_head = (b->recent_head + 1) % BROKER_RECENT;
    } else
        b->n_recent++;
    if (b->recent[at])
        shoal__raft_event__free_unpacked(b->recent[at], NULL);
    b->recent[at] = ev; /* takes */
}

/* A broker-made event (node up/down seen by the broker), for status and `events`. */
static void remember_synthetic(broker_t *b, Shoal__RaftEventType type, uint64_t node,
                               const char *detail)
{
    Shoal__RaftEvent ev = SHOAL__RAFT_EVENT__INIT;
    ev.type = type;
    ev.node_id = node;
    ev.leader_id = UINT64_MAX; /* no group's event: no leader (null in JSON) */
    ev.timestamp_us = wall_us();
    ev.detail = (char *)detail;
    size_t len = shoal__raft_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return;
    shoal__raft_event__pack(&ev, buf);
    Shoal__RaftEvent *copy = shoal__raft_event__unpack(NULL, len, buf);
    if (copy) {
        remember(b, copy);
        zsock_send(b->xpub, "sb", "raft/broker", buf, len); /* visible to `events` */
    }
    free(buf);
}

void admin_destroy(broker_t *b)
{
    for (size_t i = 0; i < BROKER_RECENT; i++)
        if (b->recent[i])
            shoal__raft_event__free_unpacked(b->recent[i], NULL);
    memset(b->recent, 0, sizeof b->recent);
    b->n_recent = 0;
}

static void node_metrics(bnode_t *n, const Shoal__NodeMetrics *m)
{
    if (!m)
        return;
    n->replicas = m->replicas;
    n->rss_bytes = m->rss_bytes;
    n->bytes_on_disk = m->bytes_on_disk;
    n->follower_reads = m->follower_reads;
}

static void fetch_map(broker_t *b, bnode_t *n)
{
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__ShardMapRequest mr = SHOAL__SHARD_MAP_REQUEST__INIT;
    Shoal__Frame f = shoal_admin_frame(&req);
    mr.have_version = b->map_version;
    req.request_id = BROKER_POLL_BIT | 2;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_SHARD_MAP;
    req.shard_map = &mr;
    broker_send_frame(n->dealer, &f);
}

/* Where a map change goes while no metadata leader is known: a node that is up and still in
 * the map (the metadata group may have moved off the first configured node); the node
 * answers NOT_LEADER with a hint if it does not lead. */
static uint64_t meta_guess(broker_t *b)
{
    /* Each guess starts after the last one: a node that is up but not (or no longer) a
     * metadata host answers "not leader" without a hint, and a client's retries must
     * reach the others rather than ask it again. */
    for (size_t k = 0; k < b->n_nodes; k++) {
        size_t i = (b->meta_guess_next + k) % b->n_nodes;
        if (!b->nodes[i].removed && b->nodes[i].up) {
            b->meta_guess_next = i + 1;
            return b->nodes[i].id;
        }
    }
    return b->nodes[0].id;
}

uint64_t admin_meta_target(broker_t *b)
{
    return b->meta_leader != BROKER_NO_LEADER ? (uint64_t)b->meta_leader : meta_guess(b);
}

bool admin_is_map_change(const Shoal__AdminRequest *q)
{
    switch (q ? q->op_case : SHOAL__ADMIN_REQUEST__OP__NOT_SET) {
    case SHOAL__ADMIN_REQUEST__OP_ADD_NODE:
    case SHOAL__ADMIN_REQUEST__OP_REMOVE_NODE:
    case SHOAL__ADMIN_REQUEST__OP_MOVE:
    case SHOAL__ADMIN_REQUEST__OP_ADD_SHARD: return true;
    default: return false;
    }
}

/* Whether a node's claim that leader leads is news to take: a node speaks for itself, but
 * another node's word (a follower's view, possibly queued behind the leader's exit) about
 * a node this broker hears nothing from is stale. Taken, it named a stopped node as the
 * metadata leader in `status` after the whole cluster stopped, and `cluster start-node`
 * then waited its full timeout for that group. */
static bool leader_claim_live(broker_t *b, uint64_t from, uint64_t leader)
{
    if (leader == from)
        return true;
    bnode_t *l = broker_node(b, leader);
    return !l || (l->last_seen && zclock_mono() - l->last_seen < BROKER_DOWN_MS);
}

void admin_on_raft_event(broker_t *b, const uint8_t *data, size_t len, bool metrics)
{
    Shoal__RaftEvent *ev = shoal__raft_event__unpack(NULL, len, data);
    if (!ev)
        return;
    admin_seen(b, ev->node_id);
    bnode_t *n = broker_node(b, ev->node_id);
    bshard_t *s = broker_shard(b, ev->shard);
    switch (ev->type) {
    case SHOAL__RAFT_EVENT_TYPE__EV_LEADER_ELECTED:
    case SHOAL__RAFT_EVENT_TYPE__EV_LEADER_CHANGED:
        if (!leader_claim_live(b, ev->node_id, ev->leader_id))
            break;
        if (ev->shard == META_GROUP && ev->term >= b->meta.term) {
            /* the row's term moves with its leader; match indexes come with the new
             * leader's next status answer (merge_meta) */
            b->meta_leader = (int64_t)ev->leader_id;
            b->meta.term = ev->term;
        } else if (ev->shard != META_GROUP && s)
            admin_set_leader(b, s, (int64_t)ev->leader_id, ev->term);
        break;
    case SHOAL__RAFT_EVENT_TYPE__EV_TERM_CHANGED:
        if (s && ev->term > s->term) {
            s->term = ev->term;
            s->leader = ev->leader_id == ev->node_id ? (int64_t)ev->leader_id : s->leader;
        }
        break;
    case SHOAL__RAFT_EVENT_TYPE__EV_COMMIT_PROGRESS:
    case SHOAL__RAFT_EVENT_TYPE__EV_APPLY_PROGRESS:
        if (s) {
            if (ev->commit_index > s->commit)
                s->commit = ev->commit_index;
            if (ev->apply_index > s->apply)
                s->apply = ev->apply_index;
            if (ev->size_bytes)
                s->size = ev->size_bytes;
        }
        break;
    case SHOAL__RAFT_EVENT_TYPE__EV_NODE_DOWN:
        if (n) {
            n->last_seen = 0; /* liveness check marks it down and drops its leaderships */
        }
        break;
    case SHOAL__RAFT_EVENT_TYPE__EV_METRICS:
        if (n)
            node_metrics(n, ev->metrics);
        break;
    case SHOAL__RAFT_EVENT_TYPE__EV_MEMBERSHIP_CHANGED:
        /* a node adopted a new shard map: fetch it now rather than at the next map poll */
        if (n && ev->shard == META_GROUP)
            fetch_map(b, n);
        break;
    default: break;
    }
    bool noisy = metrics || ev->type == SHOAL__RAFT_EVENT_TYPE__EV_COMMIT_PROGRESS ||
                 ev->type == SHOAL__RAFT_EVENT_TYPE__EV_APPLY_PROGRESS ||
                 ev->type == SHOAL__RAFT_EVENT_TYPE__EV_METRICS;
    if (noisy)
        shoal__raft_event__free_unpacked(ev, NULL);
    else
        remember(b, ev);
}

void admin_check_liveness(broker_t *b)
{
    int64_t now = zclock_mono();
    for (size_t i = 0; i < b->n_nodes; i++) {
        bnode_t *n = &b->nodes[i];
        if (n->removed)
            continue;
        bool up = n->last_seen && now - n->last_seen < BROKER_DOWN_MS;
        if (up == n->up)
            continue;
        n->up = up;
        char line[160];
        snprintf(line, sizeof line, "broker: node %" PRIu64 " (%s) is %s", n->id, n->endpoint,
                 up ? "up" : "down");
        broker_info(b, "%s", line);
        remember_synthetic(
            b, up ? SHOAL__RAFT_EVENT_TYPE__EV_NODE_UP : SHOAL__RAFT_EVENT_TYPE__EV_NODE_DOWN,
            n->id, line);
        if (!up)
            for (size_t s = 0; s < b->n_shards; s++)
                if (b->shards[s].leader == (int64_t)n->id)
                    b->shards[s].leader = BROKER_NO_LEADER;
        if (!up && b->meta_leader == (int64_t)n->id)
            b->meta_leader = BROKER_NO_LEADER;
    }
}

void admin_poll_nodes(broker_t *b)
{
    static const int map_every = 4; /* shard map checks are rarer than status polls */
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    Shoal__StatusRequest st = SHOAL__STATUS_REQUEST__INIT;
    Shoal__ShardMapRequest mr = SHOAL__SHARD_MAP_REQUEST__INIT;
    Shoal__Frame f = shoal_admin_frame(&req);
    b->stats_polls++;
    for (size_t i = 0; i < b->n_nodes; i++) {
        if (b->nodes[i].removed)
            continue;
        req.request_id = BROKER_POLL_BIT | 1;
        req.op_case = SHOAL__ADMIN_REQUEST__OP_STATUS;
        req.status = &st;
        broker_send_frame(b->nodes[i].dealer, &f);
        if (b->stats_polls % map_every == 1) {
            mr.have_version = b->map_version;
            req.request_id = BROKER_POLL_BIT | 2;
            req.op_case = SHOAL__ADMIN_REQUEST__OP_SHARD_MAP;
            req.shard_map = &mr;
            broker_send_frame(b->nodes[i].dealer, &f);
        }
    }
}

/* Whether the map places group s on node (a replica, or one being moved away). */
static bool places(const bshard_t *s, uint64_t node)
{
    for (size_t k = 0; k < s->n_replicas; k++)
        if (s->replicas[k] == node)
            return true;
    for (size_t k = 0; k < s->n_leaving; k++)
        if (s->leaving[k] == node)
            return true;
    return false;
}

/* A replica's commit and applied index (the highest seen win): every replica loaded its
 * applied index at its start, so a broker started with the nodes shows it from their first
 * answers. Only the leader's applied index used to count, and a leader known from its
 * election event (no indexes) showed APPLIED 0 until its next poll answer. Only a node the
 * map places the group on counts: another cluster's node on a listed endpoint answers for
 * its own groups of the same ids. */
static void merge_indexes(bshard_t *s, uint64_t node, const Shoal__ShardStatus *ss)
{
    if (!places(s, node))
        return;
    if (ss->commit_index > s->commit)
        s->commit = ss->commit_index;
    if (ss->apply_index > s->apply)
        s->apply = ss->apply_index;
}

/* The metadata group's row of `status`: taken whole from its leader's own report (the
 * leader lists every member of its configuration with its match index), never from a
 * follower's, which knows only itself; only the commit and applied indexes come from any
 * member (merge_indexes), as for a shard. */
static void merge_meta(broker_t *b, bnode_t *n, const Shoal__ShardStatus *ss)
{
    bshard_t *m = &b->meta;
    merge_indexes(m, n->id, ss);
    if (ss->leader != n->id || ss->term < m->term)
        return;
    b->meta_leader = (int64_t)n->id;
    m->term = ss->term;
    m->commit = ss->commit_index;
    m->size = ss->size_bytes;
    /* the members are the map's (broker_set_map), as for every shard: only their progress
     * comes from the leader, so one status answer never shows members of another map */
    for (size_t r = 0; r < ss->n_replicas; r++)
        for (size_t k = 0; k < m->n_replicas; k++)
            if (m->replicas[k] == ss->replicas[r]->peer)
                m->match[k] = ss->replicas[r]->match_index;
}

/* A node's own view of its replicas: trust leadership only from the leader itself. */
static void merge_node_view(broker_t *b, bnode_t *n, const Shoal__ClusterStatus *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i]->id == n->id)
            node_metrics(n, c->nodes[i]->metrics);
    for (size_t i = 0; i < c->n_shards; i++) {
        const Shoal__ShardStatus *ss = c->shards[i];
        if (ss->id == META_GROUP) {
            merge_meta(b, n, ss);
            continue;
        }
        bshard_t *s = broker_shard(b, ss->id);
        if (!s)
            continue;
        merge_indexes(s, n->id, ss);
        if (ss->leader != n->id || ss->term < s->term)
            continue;
        admin_set_leader(b, s, (int64_t)n->id, ss->term);
        if (ss->size_bytes)
            s->size = ss->size_bytes;
        for (size_t r = 0; r < ss->n_replicas; r++)
            for (size_t k = 0; k < s->n_replicas; k++)
                if (s->replicas[k] == ss->replicas[r]->peer)
                    s->match[k] = ss->replicas[r]->match_index;
    }
}

/* Whether map (sent by node n) is of the cluster this broker serves (ShardMap.cluster_id;
 * docs/ARCHITECTURE.md, "Cluster identity"): the id of its config's cluster/id, else of the
 * first map that carries one and lists the node that sent it under the id the broker knows
 * it by. An endpoint of this cluster may now be served by another cluster's node (a removed
 * node's, say), whose map lists itself under its own id: the broker does not learn from
 * it, and once it knows its id it refuses every map of another one, with a warning at most
 * every 10 s. A map without an id (written before ids existed) matches any. */
static bool same_cluster(broker_t *b, bnode_t *n, const Shoal__ShardMap *map)
{
    uint64_t id = map->cluster_id;
    if (!id || id == b->cluster_id)
        return true;
    if (!b->cluster_id) {
        bool lists = false;
        for (size_t i = 0; i < map->n_nodes; i++)
            lists |= map->nodes[i]->id == n->id;
        if (!lists)
            return false;
        b->cluster_id = id;
        broker_info(b, "broker: cluster %016" PRIx64 " (from node %" PRIu64 "'s shard map)", id,
                    n->id);
        return true;
    }
    int64_t now = zclock_mono();
    if (!b->foreign_log_ms || now - b->foreign_log_ms >= 10000) {
        b->foreign_log_ms = now;
        zsys_warning("broker: refused a shard map (version %" PRIu64 ") of cluster %016" PRIx64
                     " from node %" PRIu64 " at %s: this broker serves cluster %016" PRIx64
                     " (an endpoint reused by another cluster?)",
                     map->version, id, n->id, n->endpoint, b->cluster_id);
    }
    return false;
}

void admin_node_response(broker_t *b, bnode_t *n, Shoal__Frame *f)
{
    Shoal__AdminResponse *r = f->admin_resp;
    if (!(r->request_id & BROKER_POLL_BIT)) {
        route_admin_response(b, n, f);
        return;
    }
    if ((int)r->status == SHOAL_STATUS_OK && r->cluster)
        merge_node_view(b, n, r->cluster);
    if ((int)r->status == SHOAL_STATUS_OK && r->shard_map && same_cluster(b, n, r->shard_map) &&
        r->shard_map->version > b->map_version && r->shard_map->n_shards > 0)
        broker_set_map(b, r->shard_map);
    shoal_frame_free(&f);
}

static void reply_admin(broker_t *b, zframe_t *client, Shoal__AdminResponse *r)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_ADMIN_RESP;
    f.admin_resp = r;
    broker_reply(b, client, &f);
}

/* One shard's status row; pp/ppp have room for BROKER_MAX_REPLICAS. */
static void shard_row(const bshard_t *s, int64_t leader, Shoal__ShardStatus *d,
                      Shoal__PeerProgress *pp, Shoal__PeerProgress **ppp)
{
    shoal__shard_status__init(d);
    d->id = s->id;
    d->leader = leader == BROKER_NO_LEADER ? UINT64_MAX : (uint64_t)leader;
    d->term = s->term;
    /* apply is fed live by change events, commit by polls: commit >= apply always */
    d->commit_index = s->commit > s->apply ? s->commit : s->apply;
    d->apply_index = s->apply;
    d->size_bytes = s->size;
    d->replicas = ppp;
    for (size_t k = 0; k < s->n_replicas; k++) {
        Shoal__PeerProgress *p = &pp[k];
        shoal__peer_progress__init(p);
        p->peer = s->replicas[k];
        p->match_index = leader == (int64_t)s->replicas[k] ? d->commit_index : s->match[k];
        d->replicas[d->n_replicas++] = p;
    }
    d->leaving = (uint64_t *)s->leaving;
    d->n_leaving = s->n_leaving;
}

static void reply_status(broker_t *b, zframe_t *client, uint64_t rid, bool events)
{
    Shoal__ClusterStatus cs = SHOAL__CLUSTER_STATUS__INIT;
    size_t nn = b->n_nodes, ns = b->n_shards;
    Shoal__NodeStatus *nodes = calloc(nn + 1, sizeof *nodes);
    Shoal__NodeStatus **np = calloc(nn + 1, sizeof *np);
    Shoal__NodeMetrics *nm = calloc(nn + 1, sizeof *nm);
    Shoal__ShardStatus *shards = calloc(ns + 1, sizeof *shards);
    Shoal__ShardStatus **sp = calloc(ns + 1, sizeof *sp);
    /* one row per shard and one for the metadata group */
    Shoal__PeerProgress *pp = calloc((ns + 1) * BROKER_MAX_REPLICAS, sizeof *pp);
    Shoal__PeerProgress **ppp = calloc((ns + 1) * BROKER_MAX_REPLICAS, sizeof *ppp);
    Shoal__ShardStatus meta;
    Shoal__RaftEvent **rec = calloc(BROKER_RECENT + 1, sizeof *rec);
    Shoal__AdminResponse r = SHOAL__ADMIN_RESPONSE__INIT;
    r.request_id = rid;
    if (!nodes || !np || !nm || !shards || !sp || !pp || !ppp || !rec) {
        r.status = SHOAL__STATUS__STATUS_INTERNAL;
        r.error = (char *)"out of memory";
        reply_admin(b, client, &r);
        goto done;
    }
    int64_t now = zclock_mono();
    size_t shown = 0;
    for (size_t k = 0; k < nn; k++) {
        bnode_t *n = &b->nodes[k];
        if (n->removed)
            continue;
        size_t i = shown++;
        shoal__node_status__init(&nodes[i]);
        shoal__node_metrics__init(&nm[i]);
        nodes[i].id = n->id;
        nodes[i].endpoint = n->endpoint;
        nodes[i].up = n->last_seen && now - n->last_seen < BROKER_DOWN_MS;
        nodes[i].last_seen_us = n->last_seen_us;
        nm[i].replicas = n->replicas;
        nm[i].rss_bytes = n->rss_bytes;
        nm[i].bytes_on_disk = n->bytes_on_disk;
        nm[i].follower_reads = n->follower_reads;
        nodes[i].metrics = &nm[i];
        np[i] = &nodes[i];
    }
    for (size_t i = 0; i < ns; i++) {
        shard_row(&b->shards[i], b->shards[i].leader, &shards[i], &pp[i * BROKER_MAX_REPLICAS],
                  &ppp[i * BROKER_MAX_REPLICAS]);
        sp[i] = &shards[i];
    }
    shard_row(&b->meta, b->meta_leader, &meta, &pp[ns * BROKER_MAX_REPLICAS],
              &ppp[ns * BROKER_MAX_REPLICAS]);
    cs.meta = &meta;
    cs.map_version = b->map_version;
    cs.n_nodes = shown;
    cs.nodes = np;
    cs.n_shards = ns;
    cs.shards = sp;
    if (events)
        for (size_t i = 0; i < b->n_recent; i++)
            rec[cs.n_recent++] = b->recent[(b->recent_head + i) % BROKER_RECENT];
    cs.recent = rec;
    r.status = SHOAL__STATUS__STATUS_OK;
    r.cluster = &cs;
    reply_admin(b, client, &r);
done:
    free(nodes);
    free(np);
    free(nm);
    free(shards);
    free(sp);
    free(pp);
    free(ppp);
    free(rec);
}

static void reply_shard_map(broker_t *b, zframe_t *client, uint64_t rid)
{
    Shoal__ShardMap map = SHOAL__SHARD_MAP__INIT;
    Shoal__ShardInfo *si = calloc(b->n_shards + 1, sizeof *si);
    Shoal__ShardInfo **sp = calloc(b->n_shards + 1, sizeof *sp);
    Shoal__NodeInfo *ni = calloc(b->n_nodes + 1, sizeof *ni);
    Shoal__NodeInfo **np = calloc(b->n_nodes + 1, sizeof *np);
    Shoal__AdminResponse r = SHOAL__ADMIN_RESPONSE__INIT;
    r.request_id = rid;
    if (si && sp && ni && np) {
        for (size_t i = 0; i < b->n_shards; i++) {
            shoal__shard_info__init(&si[i]);
            si[i].id = b->shards[i].id;
            si[i].n_replicas = b->shards[i].n_replicas;
            si[i].replicas = b->shards[i].replicas;
            si[i].leader_hint =
                b->shards[i].leader < 0 ? UINT64_MAX : (uint64_t)b->shards[i].leader;
            sp[i] = &si[i];
        }
        size_t k = 0;
        for (size_t i = 0; i < b->n_nodes; i++) {
            if (b->nodes[i].removed)
                continue;
            shoal__node_info__init(&ni[k]);
            ni[k].id = b->nodes[i].id;
            ni[k].endpoint = b->nodes[i].endpoint;
            ni[k].pub_endpoint = b->nodes[i].pub_endpoint;
            np[k] = &ni[k];
            k++;
        }
        map.version = b->map_version;
        map.cluster_id = b->cluster_id;
        map.vnodes_per_shard = ring_vnodes(b->ring);
        map.n_shards = b->n_shards;
        map.shards = sp;
        map.n_nodes = k;
        map.nodes = np;
        r.shard_map = &map;
    } else {
        r.status = SHOAL__STATUS__STATUS_INTERNAL;
        r.error = (char *)"out of memory";
    }
    reply_admin(b, client, &r);
    free(si);
    free(sp);
    free(ni);
    free(np);
}

static void reply_error(broker_t *b, zframe_t *client, uint64_t rid, int status, const char *line)
{
    Shoal__AdminResponse r = SHOAL__ADMIN_RESPONSE__INIT;
    r.request_id = rid;
    r.status = (Shoal__Status)status;
    r.error = (char *)line;
    reply_admin(b, client, &r);
}

/* Nodes holding shard (all nodes when all is set); returns the count. */
static size_t shard_nodes(broker_t *b, uint32_t shard, bool all, uint64_t *out)
{
    size_t n = 0;
    if (all) {
        for (size_t i = 0; i < b->n_nodes; i++)
            if (!b->nodes[i].removed)
                out[n++] = b->nodes[i].id;
        return n;
    }
    bshard_t *s = broker_shard(b, shard);
    for (size_t k = 0; s && k < s->n_replicas; k++)
        out[n++] = s->replicas[k];
    return n;
}

/* Where a transfer goes: its group's leader (the metadata group's for SHOAL_META_SHARD).
 * BROKER_NO_LEADER with *st and line set for an unknown shard or node, no known leader,
 * or nothing to do (the target leads already: SHOAL_STATUS_OK). */
static int64_t transfer_target(broker_t *b, const Shoal__TransferLeaderRequest *t, char *line,
                               size_t cap, int *st)
{
    bool meta = t->shard == SHOAL_META_SHARD;
    bshard_t *s = meta ? NULL : broker_shard(b, t->shard);
    int64_t leader = meta ? b->meta_leader : s ? s->leader : BROKER_NO_LEADER;
    *st = SHOAL_STATUS_BAD_REQUEST;
    line[0] = '\0';
    if (!meta && !s)
        snprintf(line, cap, "no shard %u (the map has %zu)", t->shard, b->n_shards);
    else if (!broker_node(b, t->to_node))
        snprintf(line, cap, "no node %" PRIu64 " in the shard map", t->to_node);
    else if (leader == (int64_t)t->to_node)
        *st = SHOAL_STATUS_OK;
    else if (leader == BROKER_NO_LEADER) {
        *st = SHOAL_STATUS_UNAVAILABLE;
        if (meta)
            snprintf(line, cap, "the metadata group has no known leader");
        else
            snprintf(line, cap, "shard %u has no known leader", t->shard);
    } else
        return leader;
    return BROKER_NO_LEADER;
}

void admin_client_request(broker_t *b, zframe_t *client, Shoal__Frame *f)
{
    Shoal__AdminRequest *req = f->admin_req;
    uint64_t rid = req->request_id;
    uint64_t targets[BROKER_MAX_NODES];
    size_t n = 0;
    char line[160];
    switch (req->op_case) {
    case SHOAL__ADMIN_REQUEST__OP_STATUS:
        reply_status(b, client, rid, req->status->include_events);
        goto done;
    case SHOAL__ADMIN_REQUEST__OP_SHARD_MAP: reply_shard_map(b, client, rid); goto done;
    case SHOAL__ADMIN_REQUEST__OP_TRANSFER: {
        int st;
        int64_t to = transfer_target(b, req->transfer, line, sizeof line, &st);
        if (to == BROKER_NO_LEADER) {
            reply_error(b, client, rid, st, line);
            goto done;
        }
        targets[n++] = (uint64_t)to;
        break;
    }
    case SHOAL__ADMIN_REQUEST__OP_COMPACT:
        n = shard_nodes(b, req->compact->shard, req->compact->all_shards, targets);
        break;
    case SHOAL__ADMIN_REQUEST__OP_SNAPSHOT:
        n = shard_nodes(b, req->snapshot->shard, req->snapshot->all_shards, targets);
        break;
    case SHOAL__ADMIN_REQUEST__OP_ADD_NODE:
    case SHOAL__ADMIN_REQUEST__OP_REMOVE_NODE:
    case SHOAL__ADMIN_REQUEST__OP_MOVE:
    case SHOAL__ADMIN_REQUEST__OP_ADD_SHARD:
        /* a copy libshoal sent again while the broker still retries the first one would
         * reach the metadata leader as a second change */
        if (route_admin_in_flight(b, client, rid))
            goto done;
        targets[n++] = admin_meta_target(b);
        break;
    default:
        reply_error(b, client, rid, SHOAL_STATUS_BAD_REQUEST, "admin request has no operation");
        goto done;
    }
    if (n == 0) {
        reply_error(b, client, rid, SHOAL_STATUS_BAD_REQUEST, "no such shard");
        goto done;
    }
    route_forward_admin(b, client, f, targets, n); /* takes client and f */
    return;
done:
    zframe_destroy(&client);
    shoal_frame_free(&f);
}
