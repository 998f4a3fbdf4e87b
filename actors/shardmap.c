/* shardmap.c - the shard map as a value (see shardmap.h): built, decoded, looked up and
 * edited; no node, no sockets, so the rules of every change are unit-tested on their own
 * (tests/unit/test_shardmap.c). Maps are protobuf-c messages unpacked with the default
 * allocator, so arrays grown here with realloc are freed by shardmap_free. */
#include "actors/shardmap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/node_config.h"
#include "engine/endpoint.h"
#include "engine/error.h"
#include "engine/ring.h"

void shardmap_free(Shoal__ShardMap **m_p)
{
    if (m_p && *m_p) {
        shoal__shard_map__free_unpacked(*m_p, NULL);
        *m_p = NULL;
    }
}

/* Explicit points must be strictly ascending and fit a ring (RING_MAX_VNODES). */
static bool points_valid(const Shoal__ShardInfo *si)
{
    if (si->n_points > RING_MAX_VNODES)
        return false;
    for (size_t i = 1; i < si->n_points; i++)
        if (si->points[i] <= si->points[i - 1])
            return false;
    return true;
}

Shoal__ShardMap *shardmap_decode(const uint8_t *buf, size_t len)
{
    Shoal__ShardMap *m = shoal__shard_map__unpack(NULL, len, buf);
    if (m && (m->version == 0 || m->n_shards == 0)) /* never a map anyone wrote */
        shardmap_free(&m);
    for (size_t i = 0; m && i < m->n_shards; i++)
        if (!points_valid(m->shards[i])) /* the split edit and SPLIT check rely on it */
            shardmap_free(&m);
    /* the metadata group's placement, when recorded, is a placement and nothing else */
    if (m && m->meta &&
        (m->meta->id != SHOAL_META_GROUP || m->meta->n_replicas == 0 || m->meta->n_points ||
         m->meta->splitting))
        shardmap_free(&m);
    /* removed nodes are each sent the map: ids a node can have, each once at most */
    if (m && m->n_removed > NODE_MAX_NODES)
        shardmap_free(&m);
    for (size_t i = 0; m && i < m->n_removed; i++)
        if (m->removed[i]->id >= NODE_MAX_NODES)
            shardmap_free(&m);
    return m;
}

Shoal__ShardMap *shardmap_copy(const Shoal__ShardMap *m)
{
    size_t len = shoal__shard_map__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    shoal__shard_map__pack(m, buf);
    Shoal__ShardMap *c = shoal__shard_map__unpack(NULL, len, buf);
    free(buf);
    return c;
}

Shoal__ShardMap *shardmap_bootstrap(const node_config_t *c)
{
    /* built as packed bytes of a stack map, then unpacked: one owner, one free function */
    Shoal__ShardMap m = SHOAL__SHARD_MAP__INIT;
    Shoal__ShardInfo *si = calloc(c->shards, sizeof *si);
    Shoal__ShardInfo **sip = calloc(c->shards, sizeof *sip);
    uint64_t *reps = calloc((size_t)c->shards * NODE_MAX_NODES, sizeof *reps);
    Shoal__NodeInfo ni[NODE_MAX_NODES], *nip[NODE_MAX_NODES];
    Shoal__ShardMap *out = NULL;
    if (si && sip && reps) {
        for (unsigned s = 0; s < c->shards; s++) {
            shoal__shard_info__init(&si[s]);
            si[s].id = s;
            si[s].replicas = reps + (size_t)s * NODE_MAX_NODES;
            si[s].n_replicas = node_config_replicas(c, s, si[s].replicas, NODE_MAX_NODES);
            si[s].leader_hint = UINT64_MAX;
            sip[s] = &si[s];
        }
        for (size_t i = 0; i < c->n_nodes; i++) {
            shoal__node_info__init(&ni[i]);
            ni[i].id = c->nodes[i].id;
            ni[i].endpoint = (char *)c->nodes[i].endpoint;
            ni[i].pub_endpoint = (char *)c->nodes[i].pub_endpoint;
            nip[i] = &ni[i];
        }
        m.version = 1;
        m.cluster_id = c->cluster_id;
        m.vnodes_per_shard = c->vnodes;
        m.shards = sip;
        m.n_shards = c->shards;
        m.nodes = nip;
        m.n_nodes = c->n_nodes;
        out = shardmap_copy(&m);
    }
    free(si);
    free(sip);
    free(reps);
    return out;
}

const Shoal__ShardInfo *shardmap_shard(const Shoal__ShardMap *m, uint32_t shard)
{
    if (m && shard == SHOAL_META_GROUP)
        return m->meta; /* not on the ring; NULL while it is the bootstrap placement */
    for (size_t i = 0; m && i < m->n_shards; i++)
        if (m->shards[i]->id == shard)
            return m->shards[i];
    return NULL;
}

const Shoal__NodeInfo *shardmap_node(const Shoal__ShardMap *m, uint64_t node)
{
    for (size_t i = 0; m && i < m->n_nodes; i++)
        if (m->nodes[i]->id == node)
            return m->nodes[i];
    return NULL;
}

size_t shardmap_meta_nodes(const Shoal__ShardMap *m, const node_config_t *c, uint64_t *out,
                           size_t cap)
{
    const Shoal__ShardInfo *si = m ? m->meta : NULL;
    if (!si)
        return node_config_replicas(c, SHOAL_META_GROUP, out, cap);
    size_t k = 0;
    for (size_t i = 0; i < si->n_replicas && k < cap; i++)
        out[k++] = si->replicas[i];
    for (size_t i = 0; i < si->n_leaving && k < cap; i++)
        if (!shardmap_has(out, k, si->leaving[i]))
            out[k++] = si->leaving[i];
    return k;
}

int shardmap_record_meta(Shoal__ShardMap *m, const node_config_t *c)
{
    if (m->meta)
        return 0;
    uint64_t ids[NODE_MAX_NODES];
    size_t k = node_config_replicas(c, SHOAL_META_GROUP, ids, NODE_MAX_NODES);
    Shoal__ShardInfo *si = malloc(sizeof *si);
    uint64_t *reps = malloc((k ? k : 1) * sizeof *reps);
    if (!si || !reps) {
        free(si);
        free(reps);
        return SHOAL_ENOMEM;
    }
    shoal__shard_info__init(si);
    si->id = SHOAL_META_GROUP;
    si->leader_hint = UINT64_MAX;
    memcpy(reps, ids, k * sizeof *reps);
    si->replicas = reps;
    si->n_replicas = k;
    m->meta = si;
    return 0;
}

bool shardmap_has(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* ---- edits ---------------------------------------------------------------------- */

static bool ids_add(uint64_t **ids, size_t *n, uint64_t id)
{
    uint64_t *a = realloc(*ids, (*n + 1) * sizeof *a);
    if (!a)
        return false;
    a[(*n)++] = id;
    *ids = a;
    return true;
}

static Shoal__ShardInfo *shard_of(Shoal__ShardMap *m, uint32_t shard)
{
    return (Shoal__ShardInfo *)shardmap_shard(m, shard);
}

/* Validates and applies a move to m; 0, -1 with a BAD_REQUEST reason in err, or 1 with a
 * reason to retry later (busy, not bad input) in err. */
int shardmap_move(Shoal__ShardMap *m, const Shoal__MoveReplicaRequest *mv, char *err, size_t errlen)
{
    Shoal__ShardInfo *si = shard_of(m, mv->shard);
    if (!si && mv->shard == SHOAL_META_GROUP)
        return snprintf(err, errlen, "the map does not record the metadata group's nodes"), -1;
    if (!si)
        return snprintf(err, errlen, "no shard %u in the shard map (version %" PRIu64 ")",
                        mv->shard, m->version),
               -1;
    if (mv->from_node == mv->to_node)
        return snprintf(err, errlen, "FROM and TO are the same node (%" PRIu64 ")", mv->from_node),
               -1;
    if (!shardmap_has(si->replicas, si->n_replicas, mv->from_node))
        return snprintf(err, errlen, "node %" PRIu64 " holds no replica of %s", mv->from_node,
                        GROUP_NAME(mv->shard)),
               -1;
    if (!shardmap_node(m, mv->to_node))
        return snprintf(err, errlen,
                        "node %" PRIu64 " is not in the shard map (add it first: "
                        "shoalctl add-node)",
                        mv->to_node),
               -1;
    if (shardmap_has(si->replicas, si->n_replicas, mv->to_node))
        return snprintf(err, errlen, "node %" PRIu64 " already holds a replica of %s", mv->to_node,
                        GROUP_NAME(mv->shard)),
               -1;
    if (si->n_leaving)
        return snprintf(err, errlen,
                        "%s is already moving a replica (node %" PRIu64
                        " leaving); retry when it is done",
                        GROUP_NAME(mv->shard), si->leaving[0]),
               1;
    for (size_t i = 0; i < m->n_shards; i++) /* the split's first configuration is fixed */
        if (m->shards[i]->splitting &&
            (m->shards[i]->id == mv->shard || m->shards[i]->split_from == mv->shard))
            return snprintf(err, errlen,
                            "shard %u is splitting (shard %u from %u); retry when it is done",
                            mv->shard, m->shards[i]->id, m->shards[i]->split_from),
                   1;
    /* a node in retired may take the shard again: its log dropped the group's records
     * (rlog_drop_group) and it stays in retired, so its new replica starts empty */
    for (size_t i = 0; i < si->n_replicas; i++)
        if (si->replicas[i] == mv->from_node)
            si->replicas[i] = mv->to_node;
    si->n_arriving = 0;
    if (!ids_add(&si->leaving, &si->n_leaving, mv->from_node) ||
        !ids_add(&si->arriving, &si->n_arriving, mv->to_node))
        return snprintf(err, errlen, "out of memory"), -1;
    return 0;
}

int shardmap_cancel_move(Shoal__ShardMap *m, uint32_t shard, char *err, size_t errlen)
{
    Shoal__ShardInfo *si = shard_of(m, shard);
    if (!si || !si->n_leaving)
        return snprintf(err, errlen, "%s has no move in progress", GROUP_NAME(shard)), -1;
    if (si->n_leaving != 1 || si->n_arriving != 1)
        return snprintf(err, errlen,
                        "%s: the open move does not record its target (written by an "
                        "older version); it cannot be cancelled",
                        GROUP_NAME(shard)),
               -1;
    uint64_t from = si->leaving[0], to = si->arriving[0];
    if (!shardmap_has(si->replicas, si->n_replicas, to) ||
        shardmap_has(si->replicas, si->n_replicas, from))
        return snprintf(err, errlen,
                        "%s: the open move's nodes do not match its replicas; not "
                        "cancelled",
                        GROUP_NAME(shard)),
               -1;
    for (size_t i = 0; i < si->n_replicas; i++)
        if (si->replicas[i] == to)
            si->replicas[i] = from;
    /* the same move the other way: TO keeps its replica until the group's configuration
     * no longer holds it, FROM's data was never deleted (a move deletes only once closed) */
    si->leaving[0] = to;
    si->arriving[0] = from;
    return 0;
}

static void forget_removed(Shoal__ShardMap *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_removed; i++)
        if (m->removed[i]->id == id) {
            shoal__node_info__free_unpacked(m->removed[i], NULL);
            m->removed[i] = m->removed[--m->n_removed];
            return;
        }
}

int shardmap_add_node(Shoal__ShardMap *m, const Shoal__AddNodeRequest *an, char *err, size_t errlen)
{
    const Shoal__NodeInfo *ni = an->node;
    if (!ni || !shoal_tcp_endpoint_ok(ni->endpoint) || !shoal_tcp_endpoint_ok(ni->pub_endpoint))
        return snprintf(err, errlen,
                        "a new node needs endpoint and pub_endpoint as tcp://HOST:PORT, "
                        "port 1-65535"),
               -1;
    if (!strcmp(ni->endpoint, ni->pub_endpoint))
        return snprintf(err, errlen, "a node's endpoint and pub_endpoint must differ"), -1;
    if (ni->id >= NODE_MAX_NODES)
        return snprintf(err, errlen, "node id %" PRIu64 " is out of range (0..%d)", ni->id,
                        NODE_MAX_NODES - 1),
               -1;
    if (m->n_nodes >= NODE_MAX_NODES)
        return snprintf(err, errlen, "the map has %d nodes already", NODE_MAX_NODES), -1;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const Shoal__NodeInfo *o = m->nodes[i];
        if (o->id == ni->id)
            return snprintf(err, errlen, "node %" PRIu64 " is already in the shard map", ni->id),
                   -1;
        if (!strcmp(o->endpoint, ni->endpoint) || !strcmp(o->pub_endpoint, ni->pub_endpoint))
            return snprintf(err, errlen, "node %" PRIu64 " already uses one of those endpoints",
                            o->id),
                   -1;
    }
    Shoal__NodeInfo *add = malloc(sizeof *add);
    Shoal__NodeInfo **nodes = realloc(m->nodes, (m->n_nodes + 1) * sizeof *nodes);
    if (nodes)
        m->nodes = nodes;
    if (!add || !nodes) {
        free(add);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    forget_removed(m, ni->id); /* the id returns */
    shoal__node_info__init(add);
    add->id = ni->id;
    add->endpoint = strdup(ni->endpoint);
    add->pub_endpoint = strdup(ni->pub_endpoint);
    m->nodes[m->n_nodes++] = add;
    return 0;
}

int shardmap_remove_node(Shoal__ShardMap *m, uint64_t id, const uint64_t *meta, size_t n_meta,
                         char *err, size_t errlen)
{
    if (!shardmap_node(m, id))
        return snprintf(err, errlen, "node %" PRIu64 " is not in the shard map", id), -1;
    if (shardmap_has(meta, n_meta, id))
        return snprintf(err, errlen,
                        "node %" PRIu64 " hosts the metadata group; move that replica off "
                        "first (shoalctl move-replica meta %" PRIu64 " TO)",
                        id, id),
               -1;
    for (size_t i = 0; i < m->n_shards; i++) {
        const Shoal__ShardInfo *si = m->shards[i];
        if (shardmap_has(si->replicas, si->n_replicas, id) ||
            shardmap_has(si->leaving, si->n_leaving, id))
            return snprintf(err, errlen,
                            "node %" PRIu64 " still holds a replica of shard %u; "
                            "move its replicas off first (shoalctl move-replica)",
                            id, si->id),
                   -1;
    }
    Shoal__NodeInfo **gone = realloc(m->removed, (m->n_removed + 1) * sizeof *gone);
    if (!gone)
        return snprintf(err, errlen, "out of memory"), -1;
    m->removed = gone;
    for (size_t i = 0; i < m->n_nodes; i++)
        if (m->nodes[i]->id == id) {
            m->removed[m->n_removed++] = m->nodes[i];
            memmove(m->nodes + i, m->nodes + i + 1, (m->n_nodes - i - 1) * sizeof *m->nodes);
            m->n_nodes--;
            break;
        }
    return 0;
}

bool shardmap_close_move(Shoal__ShardMap *m, uint32_t shard, const uint64_t *voters,
                         size_t n_voters)
{
    Shoal__ShardInfo *si = shard_of(m, shard);
    /* only a report of exactly the current placement closes the move */
    bool same = si && si->n_leaving && n_voters == si->n_replicas;
    for (size_t i = 0; same && i < n_voters; i++)
        same = shardmap_has(si->replicas, si->n_replicas, voters[i]);
    if (!same)
        return false;
    for (size_t i = 0; i < si->n_leaving; i++)
        if (!shardmap_has(si->retired, si->n_retired, si->leaving[i]) &&
            !ids_add(&si->retired, &si->n_retired, si->leaving[i]))
            return false;
    si->n_leaving = 0;
    si->n_arriving = 0;
    return true;
}

/* ---- add-shard by split ---------------------------------------------------------- */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t shardmap_points(const Shoal__ShardMap *m, const Shoal__ShardInfo *si, uint64_t *out)
{
    size_t n = si->n_points;
    if (n) {
        n = n < RING_MAX_VNODES ? n : RING_MAX_VNODES;
        memcpy(out, si->points, n * sizeof *out);
    } else {
        n = m->vnodes_per_shard ? m->vnodes_per_shard : 64; /* the broker's default too */
        n = n < RING_MAX_VNODES ? n : RING_MAX_VNODES;
        for (size_t i = 0; i < n; i++)
            out[i] = ring_point(si->id, (uint32_t)i);
    }
    qsort(out, n, sizeof *out, u64_cmp);
    return n;
}

ring_t *shardmap_ring(const Shoal__ShardMap *m)
{
    ring_t *r = ring_new(m->vnodes_per_shard ? m->vnodes_per_shard : 64);
    for (size_t i = 0; r && i < m->n_shards; i++) {
        const Shoal__ShardInfo *si = m->shards[i];
        /* as the broker: a shard the ring refuses (a duplicate id, bad points) is left
         * out, so both send its keys to the same other shard */
        int rc = si->n_points ? ring_add_points(r, si->id, si->points, si->n_points)
                              : ring_add_shard(r, si->id);
        if (rc == SHOAL_ENOMEM)
            ring_destroy(&r);
    }
    return r;
}

bool shardmap_key_fits(const Shoal__ShardMap *m, uint32_t shard, uint32_t owner)
{
    if (owner == shard)
        return true;
    const Shoal__ShardInfo *si = owner != RING_NO_SHARD ? shardmap_shard(m, owner) : NULL;
    return si && si->splitting && si->split_from == shard;
}

/* The shard with the most points, lowest id among equals. */
static Shoal__ShardInfo *largest(const Shoal__ShardMap *m, uint64_t *scratch)
{
    Shoal__ShardInfo *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < m->n_shards; i++) {
        size_t n = shardmap_points(m, m->shards[i], scratch);
        if (!best || n > best_n || (n == best_n && m->shards[i]->id < best->id))
            best = m->shards[i], best_n = n;
    }
    return best;
}

static int split_refused(const Shoal__ShardMap *m, const Shoal__ShardInfo *si, uint32_t source,
                         size_t n_pts, char *err, size_t errlen)
{
    if (source == SHOAL_META_GROUP && !si)
        return snprintf(err, errlen, "the shard map has no shard to split"), -1;
    if (!si)
        return snprintf(err, errlen, "no shard %u in the shard map (version %" PRIu64 ")", source,
                        m->version),
               -1;
    for (size_t i = 0; i < m->n_shards; i++)
        if (m->shards[i]->splitting)
            return snprintf(err, errlen,
                            "shard %u is still splitting from shard %u; wait until it is done",
                            m->shards[i]->id, m->shards[i]->split_from),
                   -1;
    if (si->n_leaving)
        return snprintf(err, errlen,
                        "shard %u is moving a replica (node %" PRIu64
                        " leaving); wait until it is done",
                        si->id, si->leaving[0]),
               -1;
    if (!si->n_replicas)
        return snprintf(err, errlen, "shard %u lists no replica; it cannot be split", si->id), -1;
    if (n_pts < 2)
        return snprintf(err, errlen, "shard %u has %zu ring point; it cannot be split", si->id,
                        n_pts),
               -1;
    return 0;
}

/* Fills g as the new shard split from si with points give[0..n). */
static int fill_new(Shoal__ShardInfo *g, const Shoal__ShardInfo *si, uint32_t id,
                    const uint64_t *give, size_t n)
{
    g->id = id;
    g->leader_hint = UINT64_MAX;
    g->splitting = true;
    g->split_from = si->id;
    g->replicas = malloc((si->n_replicas + 1) * sizeof *g->replicas);
    g->points = malloc(n * sizeof *g->points);
    if (!g->replicas || !g->points)
        return -1;
    if (si->n_replicas) /* a decoded map may list none: memcpy wants a real pointer */
        memcpy(g->replicas, si->replicas, si->n_replicas * sizeof *g->replicas);
    g->n_replicas = si->n_replicas;
    memcpy(g->points, give, n * sizeof *g->points);
    g->n_points = n;
    return 0;
}

int shardmap_split(Shoal__ShardMap *m, uint32_t source, uint32_t *new_id, char *err, size_t errlen)
{
    uint64_t *pts = malloc(RING_MAX_VNODES * sizeof *pts);
    uint64_t *keep = malloc(RING_MAX_VNODES * sizeof *keep);
    Shoal__ShardInfo *si = NULL, *g = calloc(1, sizeof *g);
    Shoal__ShardInfo **shards = NULL;
    int rc = -1;
    if (g)
        shoal__shard_info__init(g); /* freed as a message on every path below */
    if (!pts || !keep || !g) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    si = source == SHOAL_META_GROUP ? largest(m, pts) : shard_of(m, source);
    size_t n = si ? shardmap_points(m, si, pts) : 0;
    if (split_refused(m, si, source, n, err, errlen))
        goto out;
    uint32_t id = 0;
    for (size_t i = 0; i < m->n_shards; i++)
        if (m->shards[i]->id >= id)
            id = m->shards[i]->id + 1;
    if (id == SHOAL_META_GROUP) {
        snprintf(err, errlen, "no shard id left");
        goto out;
    }
    /* every other point in hash order: the new shard's keys are spread like the source's */
    size_t nk = 0, ng = 0;
    for (size_t i = 0; i < n; i++)
        if (i % 2)
            pts[ng++] = pts[i];
        else
            keep[nk++] = pts[i];
    shards = realloc(m->shards, (m->n_shards + 1) * sizeof *shards);
    if (shards)
        m->shards = shards;
    uint64_t *sp = malloc(nk * sizeof *sp);
    if (!shards || !sp || fill_new(g, si, id, pts, ng)) {
        free(sp);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(sp, keep, nk * sizeof *sp);
    free(si->points);
    si->points = sp;
    si->n_points = nk;
    m->shards[m->n_shards++] = g;
    g = NULL;
    *new_id = id;
    rc = 0;
out:
    if (g)
        shoal__shard_info__free_unpacked(g, NULL);
    free(pts);
    free(keep);
    return rc;
}

bool shardmap_close_split(Shoal__ShardMap *m, uint32_t shard)
{
    Shoal__ShardInfo *si = shard_of(m, shard);
    if (!si || !si->splitting)
        return false;
    si->splitting = false;
    si->split_from = 0;
    return true;
}
