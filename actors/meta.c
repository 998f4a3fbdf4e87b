/* meta.c - the metadata group's side of shard-map changes (see placement.h).
 *
 * The map is the value of key "shardmap" in the metadata group, written only by
 * compare-and-swap commands proposed by the group's leader:
 *   - bootstrap: CAS "absent" -> version 1, by every new leader (a no-op once stored, so a
 *     leader that has not applied the log yet can never overwrite a newer map);
 *   - a change: CAS stored bytes -> the same map edited, version + 1.
 * The state machine applies them in log order; a change computed from a stale copy loses
 * its compare and changes nothing. The leader keeps one change in flight at a time and
 * answers the admin request that asked for it when a replica of this node applies it.
 *
 * Operations (admin requests forwarded by the broker to the metadata leader):
 *   move SHARD FROM TO   records the target placement (FROM replaced by TO) and FROM as
 *                        leaving; the shard's leader then converges (placement.c) and
 *                        reports MoveDone, and the next version drops FROM from leaving
 *                        (and lists it as retired), upon which FROM deletes its data;
 *   add_node ID EP PUB   adds a node to the map (it was started with node/join = 1);
 *   remove_node ID       refused while the node holds or is leaving any replica, or hosts
 *                        the metadata group: move its replicas off first;
 *   move meta FROM TO    the same for the metadata group itself (SHARD 4294967295): the
 *                        first such move records the bootstrap metadata nodes in the map
 *                        (ShardMap.meta); this leader then converges its own group
 *                        (placement.c), handing leadership away if it is FROM;
 *   add_shard [SOURCE]   splits SOURCE (default: the shard with the most ring points): the
 *                        new shard G, marked splitting, takes half its points and lists its
 *                        replicas; SOURCE's leader then proposes the SPLIT (split_node.c),
 *                        G's leader reports (MoveDone) once G serves, and the next version
 *                        clears the mark. Answered when the first version applies. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "actors/failpoint.h"
#include "actors/placement.h"
#include "engine/error.h"
#include "proto/codec.h"

#define PUSH_MS 500
#define FULL_PUSH_MS 5000
#define CHANGE_TIMEOUT_MS 5000

static replica_t *meta_replica(node_t *n)
{
    return node_find_replica(n, SHOAL_META_GROUP);
}

static bool meta_leads(node_t *n)
{
    replica_t *r = meta_replica(n);
    return r && r->role == RAFT_LEADER;
}

/* The stored map bytes of the metadata replica's engine (malloc'd) or NULL. */
static uint8_t *stored_bytes(replica_t *r, size_t *len)
{
    uint8_t key[1 + sizeof PLACEMENT_MAP_KEY - 1];
    key[0] = KEY_DATA;
    memcpy(key + 1, PLACEMENT_MAP_KEY, sizeof key - 1);
    void *v = NULL;
    if (lsm_get(r->lsm, NULL, key, sizeof key, &v, len) != 0)
        return NULL;
    return v;
}

/* Proposes CAS(shardmap: expected -> value); expected NULL means "only if absent". */
static int64_t propose_cas(replica_t *r, const uint8_t *expected, size_t elen, const uint8_t *value,
                           size_t vlen)
{
    Shoal__CasRequest cas = SHOAL__CAS_REQUEST__INIT;
    cas.key.data = (uint8_t *)PLACEMENT_MAP_KEY;
    cas.key.len = strlen(PLACEMENT_MAP_KEY);
    cas.expect_absent = expected == NULL;
    cas.expected.data = (uint8_t *)expected;
    cas.expected.len = expected ? elen : 0;
    cas.value.data = (uint8_t *)value;
    cas.value.len = vlen;
    Shoal__WriteCommand cmd = SHOAL__WRITE_COMMAND__INIT;
    cmd.op_case = SHOAL__WRITE_COMMAND__OP_CAS;
    cmd.cas = &cas;
    size_t len = shoal__write_command__get_packed_size(&cmd);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return SHOAL_ENOMEM;
    shoal__write_command__pack(&cmd, buf);
    int64_t idx = raft_propose(r->raft, buf, len, NULL);
    free(buf);
    if (idx > 0) {
        r->quiet = false;
        r->idle_ticks = 0;
    }
    return idx;
}

static uint64_t random_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id) /* never short for 8 bytes; be sure */
        id = (uint64_t)zclock_time() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    return id;
}

void meta_leader_elected(node_t *n, replica_t *r)
{
    Shoal__ShardMap *m = shardmap_bootstrap(n->cfg);
    if (!m)
        return;
    while (!m->cluster_id) /* no cluster/id in the config: the first stored map names one */
        m->cluster_id = random_id();
    size_t len = shoal__shard_map__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (buf) {
        shoal__shard_map__pack(m, buf);
        if (propose_cas(r, NULL, 0, buf, len) > 0)
            zsys_info("metadata group: stores shard map version 1 (%zu shards) unless one is "
                      "stored",
                      m->n_shards);
        free(buf);
    }
    shardmap_free(&m);
    n->place->push_ms = 0; /* push at once: nodes learn who leads the metadata group */
}

/* ---- answers ------------------------------------------------------------------------ */

static void answer(node_t *n, zframe_t *identity, uint64_t rid, Shoal__Status st, const char *err)
{
    Shoal__AdminResponse resp = SHOAL__ADMIN_RESPONSE__INIT;
    resp.request_id = rid;
    resp.status = st;
    resp.error = (char *)(err ? err : "");
    node_send_admin(n, identity, &resp);
}

static void settle(node_t *n, Shoal__Status st, const char *err)
{
    placement_t *p = n->place;
    if (p->waiter) {
        Shoal__AdminResponse resp = SHOAL__ADMIN_RESPONSE__INIT;
        resp.request_id = p->waiter_rid;
        resp.status = st;
        resp.error = (char *)(err ? err : "");
        resp.new_shard = p->waiter_split ? p->waiter_shard : 0;
        resp.source_shard = p->waiter_split ? p->waiter_source : 0;
        node_send_admin(n, p->waiter, &resp);
    }
    p->waiter_split = false;
    zframe_destroy(&p->waiter);
    free(p->inflight_bytes);
    p->inflight_bytes = NULL;
    p->inflight_len = 0;
    p->inflight_version = 0;
}

void meta_applied(node_t *n, replica_t *r, const fsm_job_t *job)
{
    (void)r;
    for (size_t i = 0; i < job->n_changes; i++) {
        const Shoal__ChangeEvent *ev = job->changes[i];
        if (ev->op != SHOAL__CHANGE_OP__CHANGE_PUT || ev->key.len != strlen(PLACEMENT_MAP_KEY) ||
            memcmp(ev->key.data, PLACEMENT_MAP_KEY, ev->key.len) != 0)
            continue;
        placement_t *p = n->place;
        bool mine = p->inflight_bytes && ev->value.len == p->inflight_len &&
                    memcmp(ev->value.data, p->inflight_bytes, p->inflight_len) == 0;
        if (!placement_adopt_bytes(n, ev->value.data, ev->value.len, meta_leads(n)))
            zsys_warning("metadata group: applied a shard map that does not decode; ignored");
        if (mine)
            settle(n, SHOAL__STATUS__STATUS_OK, NULL);
        else if (p->inflight_version && p->map->version >= p->inflight_version)
            settle(n, SHOAL__STATUS__STATUS_UNAVAILABLE,
                   "another shard-map change was applied first; check `shoalctl status` and retry");
        p->push_ms = 0; /* tell every node now */
    }
}

/* ---- editing a map ------------------------------------------------------------------ */

/* ---- proposing a change ------------------------------------------------------------- */

/* Proposes the edited map m (version set here) over the stored bytes cur. */
static int propose_change(node_t *n, replica_t *r, Shoal__ShardMap *m, const uint8_t *cur,
                          size_t clen, char *err, size_t errlen)
{
    placement_t *p = n->place;
    m->version++;
    for (size_t i = 0; i < m->n_shards; i++)
        m->shards[i]->leader_hint = UINT64_MAX; /* hints are never part of the stored map */
    if (m->meta)
        m->meta->leader_hint = UINT64_MAX;
    size_t len = shoal__shard_map__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return snprintf(err, errlen, "out of memory"), -1;
    shoal__shard_map__pack(m, buf);
    int64_t idx = propose_cas(r, cur, clen, buf, len);
    if (idx <= 0) {
        free(buf);
        return snprintf(err, errlen, "metadata leader refused the proposal: %s",
                        shoal_strerror((int)idx)),
               -1;
    }
    p->inflight_bytes = buf;
    p->inflight_len = len;
    p->inflight_version = m->version;
    p->inflight_deadline_ms = zclock_mono() + CHANGE_TIMEOUT_MS;
    zsys_info("metadata group: proposing shard map version %" PRIu64 " at index %" PRId64,
              m->version, idx);
    return 0;
}

/* add_shard: the split edit of the source named, else of the shard with most points; 1
 * (retry later) while another split is open. */
static int add_shard(Shoal__ShardMap *m, const Shoal__AddShardRequest *a, uint32_t *new_id,
                     char *err, size_t errlen)
{
    if (a->n_replicas)
        return snprintf(err, errlen,
                        "add-shard splits an existing shard and keeps its replicas: name a "
                        "source shard, not nodes"),
               -1;
    if (a->has_source && a->source == SHOAL_META_GROUP)
        return snprintf(err, errlen, "the metadata group cannot be split"), -1;
    for (size_t i = 0; i < m->n_shards; i++) /* one split at a time: busy, not bad input */
        if (m->shards[i]->splitting)
            return snprintf(err, errlen,
                            "shard %u is still splitting from shard %u; retry when it is done",
                            m->shards[i]->id, m->shards[i]->split_from),
                   1;
    return shardmap_split(m, a->has_source ? a->source : SHOAL_META_GROUP, new_id, err, errlen);
}

/* The stored map of the leader's metadata replica, decoded, with its bytes. */
static Shoal__ShardMap *current(replica_t *r, uint8_t **bytes, size_t *len)
{
    *bytes = stored_bytes(r, len);
    Shoal__ShardMap *m = *bytes ? shardmap_decode(*bytes, *len) : NULL;
    if (!m) {
        free(*bytes);
        *bytes = NULL;
    }
    return m;
}

void meta_admin(node_t *n, zframe_t *identity, const Shoal__AdminRequest *req)
{
    replica_t *r = meta_replica(n);
    placement_t *p = n->place;
    char err[256] = "";
    if (!r || r->role != RAFT_LEADER) {
        snprintf(err, sizeof err, "node %" PRIu64 " does not lead the metadata group%s", n->cfg->id,
                 r && r->leader ? "; retry (the broker follows the leader)" : "");
        answer(n, identity, req->request_id, SHOAL__STATUS__STATUS_NOT_LEADER, err);
        return;
    }
    uint8_t *cur = NULL;
    size_t clen = 0;
    Shoal__ShardMap *m = current(r, &cur, &clen);
    if (!m) {
        answer(n, identity, req->request_id, SHOAL__STATUS__STATUS_UNAVAILABLE,
               "the metadata group has not stored a shard map yet; retry");
        return;
    }
    uint64_t meta[NODE_MAX_NODES];
    size_t n_meta = shardmap_meta_nodes(m, n->cfg, meta, NODE_MAX_NODES);
    int rc = -1;
    uint32_t new_shard = 0;
    if (req->op_case == SHOAL__ADMIN_REQUEST__OP_MOVE && req->move) {
        /* the first move of a metadata replica writes down where the group is */
        if (req->move->cancel)
            rc = shardmap_cancel_move(m, req->move->shard, err, sizeof err);
        else if (req->move->shard == SHOAL_META_GROUP && shardmap_record_meta(m, n->cfg) != 0)
            snprintf(err, sizeof err, "out of memory");
        else
            rc = shardmap_move(m, req->move, err, sizeof err);
    } else if (req->op_case == SHOAL__ADMIN_REQUEST__OP_ADD_NODE && req->add_node)
        rc = shardmap_add_node(m, req->add_node, err, sizeof err);
    else if (req->op_case == SHOAL__ADMIN_REQUEST__OP_REMOVE_NODE && req->remove_node)
        rc = shardmap_remove_node(m, req->remove_node->node_id, meta, n_meta, err, sizeof err);
    else if (req->op_case == SHOAL__ADMIN_REQUEST__OP_ADD_SHARD && req->add_shard)
        rc = add_shard(m, req->add_shard, &new_shard, err, sizeof err);
    else
        snprintf(err, sizeof err, "admin request without its body");
    /* bad input is answered as such even while another change is in flight */
    if (rc > 0) {
        answer(n, identity, req->request_id, SHOAL__STATUS__STATUS_UNAVAILABLE, err);
    } else if (rc) {
        answer(n, identity, req->request_id, SHOAL__STATUS__STATUS_BAD_REQUEST, err);
    } else if (p->inflight_version) {
        answer(n, identity, req->request_id, SHOAL__STATUS__STATUS_UNAVAILABLE,
               "another shard-map change is in flight; retry");
    } else if (propose_change(n, r, m, cur, clen, err, sizeof err) != 0) {
        answer(n, identity, req->request_id, SHOAL__STATUS__STATUS_UNAVAILABLE, err);
    } else {
        p->waiter = zframe_dup(identity);
        p->waiter_rid = req->request_id;
        p->waiter_split = req->op_case == SHOAL__ADMIN_REQUEST__OP_ADD_SHARD;
        const Shoal__ShardInfo *g = p->waiter_split ? shardmap_shard(m, new_shard) : NULL;
        p->waiter_shard = new_shard;
        p->waiter_source = g ? g->split_from : 0;
    }
    shardmap_free(&m);
    free(cur);
}

void meta_move_done(node_t *n, const Shoal__MoveDone *md)
{
    replica_t *r = meta_replica(n);
    if (!r || r->role != RAFT_LEADER || n->place->inflight_version ||
        failpoint_active("meta_hold_moves"))
        return;
    uint8_t *cur = NULL;
    size_t clen = 0;
    Shoal__ShardMap *m = current(r, &cur, &clen);
    const Shoal__ShardInfo *si = m ? shardmap_shard(m, md->shard) : NULL;
    bool split = si && si->splitting; /* its leader serves: the cut data is in its group */
    if (m && (split ? shardmap_close_split(m, md->shard)
                    : shardmap_close_move(m, md->shard, md->voters, md->n_voters))) {
        char err[256];
        if (propose_change(n, r, m, cur, clen, err, sizeof err) == 0)
            zsys_info("metadata group: shard %u %s", md->shard,
                      split ? "split done (its group has a leader)"
                            : "move done (configuration matches the map)");
    }
    shardmap_free(&m);
    free(cur);
}

/* ---- pushing the map ---------------------------------------------------------------- */

/* The whole map goes out after a change and every FULL_PUSH_MS (a node that was down or
 * just added gets it, and so do the removed ones: placement.c, mark_removed); in between only its
 * version (a ShardMap without shards), which keeps nodes fresh (placement.h) for a few bytes
 * whatever the map's size. */
static void push(node_t *n)
{
    placement_t *p = n->place;
    uint64_t now = zclock_mono();
    bool full = p->map->version != p->pushed_version || now - p->full_push_ms >= FULL_PUSH_MS;
    Shoal__ShardMap beat = SHOAL__SHARD_MAP__INIT;
    beat.version = p->map->version;
    Shoal__MapPush mp = SHOAL__MAP_PUSH__INIT;
    mp.map = full ? p->map : &beat;
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_MAP_PUSH;
    req.map_push = &mp;
    for (size_t i = 0; i < p->map->n_nodes; i++)
        if (p->map->nodes[i]->id != n->cfg->id)
            placement_send_oneway(n, p->map->nodes[i]->id, &req);
    for (size_t i = 0; full && i < p->map->n_removed; i++) /* so that they learn it and stop */
        placement_send_oneway(n, p->map->removed[i]->id, &req);
    if (full) {
        p->full_push_ms = now;
        p->pushed_version = p->map->version;
    }
    p->push_ms = now;
    p->fresh_ms = now;
}

void meta_sweep(node_t *n)
{
    placement_t *p = n->place;
    uint64_t now = zclock_mono();
    if (p->inflight_version && now >= p->inflight_deadline_ms)
        settle(n, SHOAL__STATUS__STATUS_UNAVAILABLE,
               "the shard-map change did not apply in time (leader change or concurrent "
               "change); check `shoalctl status` and retry");
    if (!meta_leads(n))
        return;
    /* the leader's own applied map: adopt what its engine holds before telling others */
    size_t len = 0;
    uint8_t *b = stored_bytes(meta_replica(n), &len);
    if (b)
        placement_adopt_bytes(n, b, len, true);
    free(b);
    if (now - p->push_ms >= PUSH_MS)
        push(n);
}
