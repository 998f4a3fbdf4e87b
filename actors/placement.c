/* placement.c - the node's copy of the shard map and how the node follows it (see
 * placement.h for the rules). Runs inside the node actor; never blocks on anything but the
 * small atomic write of DATA/shardmap when a new version arrives. */
#include "actors/placement.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "actors/failpoint.h"
#include "actors/leader_balance.h"
#include "actors/rlog_io.h"
#include "actors/split_node.h"
#include "engine/error.h"
#include "proto/codec.h"

#define FRESH_MS 3000 /* a map not confirmed by the metadata leader for longer is not acted on */

/* ---- the map itself ----------------------------------------------------------------- */

bool placement_hosts(const node_t *n, uint32_t group)
{
    if (group == SHOAL_META_GROUP && !n->place->map->meta) {
        /* the bootstrap metadata nodes, until a move records the group in the map */
        uint64_t ids[NODE_MAX_NODES];
        size_t k = n->cfg->join ? 0 : node_config_replicas(n->cfg, group, ids, NODE_MAX_NODES);
        return shardmap_has(ids, k, n->cfg->id);
    }
    const Shoal__ShardInfo *si = shardmap_shard(n->place->map, group);
    return si && (shardmap_has(si->replicas, si->n_replicas, n->cfg->id) ||
                  shardmap_has(si->leaving, si->n_leaving, n->cfg->id));
}

bool placement_retired(const node_t *n, uint32_t group)
{
    const Shoal__ShardInfo *si = shardmap_shard(n->place->map, group);
    return si && shardmap_has(si->retired, si->n_retired, n->cfg->id);
}

static bool dropping(const node_t *n, uint32_t group)
{
    for (size_t i = 0; i < n->place->n_dropping; i++)
        if (n->place->dropping[i] == group)
            return true;
    return false;
}

void placement_drop_done(node_t *n, uint32_t group)
{
    placement_t *p = n->place;
    for (size_t i = 0; p && i < p->n_dropping; i++)
        if (p->dropping[i] == group) {
            p->dropping[i] = p->dropping[--p->n_dropping];
            return;
        }
}

void placement_drop_release(node_t *n, void *drop_job)
{
    snap_job_t *j = drop_job;
    lsm_close(&j->lsm);
    placement_drop_done(n, j->group);
    free(j->dir);
    free(j);
}

/* ---- DATA/shardmap ------------------------------------------------------------------ */

static void map_path(const node_t *n, char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "%s/shardmap%s", n->cfg->data_dir, suffix);
}

/* Written to a temporary file, synced, renamed, the folder synced: a crash or a power cut
 * leaves the old or the new map. */
static int map_store(const node_t *n, const Shoal__ShardMap *m)
{
    char tmp[1100], path[1100];
    map_path(n, tmp, sizeof tmp, ".tmp");
    map_path(n, path, sizeof path, "");
    size_t len = shoal__shard_map__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return SHOAL_ENOMEM;
    shoal__shard_map__pack(m, buf);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd >= 0 && write(fd, buf, len) == (ssize_t)len && fdatasync(fd) == 0 ? 0 : SHOAL_EIO;
    if (fd >= 0)
        close(fd);
    free(buf);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = SHOAL_EIO;
    if (rc == 0 && rlog_io_posix()->sync_dir(NULL, n->cfg->data_dir) != 0)
        rc = SHOAL_EIO;
    return rc;
}

/* DATA/removed records that a map took this node out (remove-node): the node stops once
 * its replicas are dropped and refuses to start again (node.c), as an etcd member removed
 * from its cluster does. Written before the map that removes it is stored, so a crash in
 * between still finds the node removed. */
static void mark_removed(node_t *n, uint64_t version)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/removed", n->cfg->data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char line[32];
    int len = snprintf(line, sizeof line, "%" PRIu64 "\n", version);
    /* the folder synced too: the file's name must outlast a power cut as its data does */
    if (fd < 0 || write(fd, line, (size_t)len) != len || fdatasync(fd) != 0 ||
        rlog_io_posix()->sync_dir(NULL, n->cfg->data_dir) != 0)
        zsys_warning("node %" PRIu64 ": cannot write %s: %s (it stops anyway)", n->cfg->id, path,
                     strerror(errno));
    if (fd >= 0)
        close(fd);
    n->place->removed = true;
    zsys_info("node %" PRIu64 ": removed from the cluster by shard map version %" PRIu64
              "; stopping once its replicas are dropped",
              n->cfg->id, version);
}

static int map_load(const node_t *n, Shoal__ShardMap **out, char *err, size_t errlen)
{
    char path[1100];
    map_path(n, path, sizeof path, "");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : SHOAL_EIO;
    uint8_t *buf = malloc(SHOAL_MAX_FRAME);
    size_t len = buf ? fread(buf, 1, SHOAL_MAX_FRAME, f) : 0;
    fclose(f);
    *out = buf ? shardmap_decode(buf, len) : NULL;
    free(buf);
    if (!*out) {
        snprintf(err, errlen, "%.1000s: not a valid shard map (%zu bytes)", path, len);
        return SHOAL_ECORRUPT;
    }
    return 0;
}

void placement_connect(node_t *n)
{
    const Shoal__ShardMap *m = n->place->map;
    for (size_t i = 0; i < m->n_nodes; i++)
        if (m->nodes[i]->endpoint && m->nodes[i]->endpoint[0])
            transport_add_peer(n->transport, m->nodes[i]->id, m->nodes[i]->endpoint);
    for (size_t i = 0; i < m->n_removed; i++) /* the metadata leader tells them they left */
        if (m->removed[i]->endpoint && m->removed[i]->endpoint[0] &&
            m->removed[i]->id != n->cfg->id)
            transport_add_peer(n->transport, m->removed[i]->id, m->removed[i]->endpoint);
}

/* A replica deletion cut short by a crash left DATA/<name>.deleted: finish it. */
static void finish_deletions(const node_t *n)
{
    DIR *d = opendir(n->cfg->data_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 8 && !strcmp(e->d_name + len - 8, ".deleted")) {
            char path[1100];
            snprintf(path, sizeof path, "%s/%s", n->cfg->data_dir, e->d_name);
            replica_delete_tree(path);
        }
    }
    if (d)
        closedir(d);
}

/* Whether this node still holds anything of a group: its folder or log entries. */
static bool holds_group(node_t *n, uint32_t group, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return true;
    rlog_lock(n->rlog);
    bool has = rlog_has_group(n->rlog, group) && rlog_last_index(n->rlog, group) > 0;
    rlog_unlock(n->rlog);
    return has;
}

/* Finishes at start what drop_replica began before a stop: the drop record (again, harmless
 * if it was durable), synced, then the folder. */
static int reap_group(node_t *n, uint32_t group, const char *dir)
{
    rlog_lock(n->rlog);
    int rc = rlog_drop_group(n->rlog, group);
    if (rc == 0)
        rc = rlog_sync(n->rlog);
    rlog_unlock(n->rlog);
    if (rc)
        return rc;
    if ((rc = replica_delete_dir(dir)) != 0)
        return rc;
    zsys_info("node %" PRIu64 ": shard %u is not placed here (map version %" PRIu64
              "): its data, left by a stop before its deletion finished, is deleted",
              n->cfg->id, group, n->place->map->version);
    return 0;
}

/* A node stopped after the map moved a replica away but before its deletion finished
 * (before the drop record, or between it and the folder's removal) left the folder and
 * maybe the group's log entries, which nothing would open or remove again. The map on disk
 * is the newest this node acted on, and it names a node in neither `replicas` nor
 * `leaving` only once the group's committed configuration excludes it (the move's last
 * step), so the data is no voter's. Shards the map does not list are left alone: a split
 * target is newer than the map. */
static int reap_unplaced(node_t *n, char *err, size_t errlen)
{
    const Shoal__ShardMap *m = n->place->map;
    for (size_t i = 0; i <= m->n_shards; i++) {
        uint32_t g = i < m->n_shards ? m->shards[i]->id : SHOAL_META_GROUP;
        if ((g == SHOAL_META_GROUP && !m->meta) || placement_hosts(n, g))
            continue;
        char dir[1100];
        replica_group_dir(n, g, dir, sizeof dir);
        if (!holds_group(n, g, dir))
            continue;
        int rc = reap_group(n, g, dir);
        if (rc) {
            snprintf(err, errlen, "shard %u is not placed here; deleting %.900s: %s", g, dir,
                     shoal_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* The node learns its cluster's id from the first map that carries one. */
static void learn_cluster(node_t *n, uint64_t id)
{
    if (n->place->cluster_id || !id)
        return;
    n->place->cluster_id = id;
    transport_set_cluster(n->transport, id);
    zsys_info("node %" PRIu64 ": cluster %016" PRIx64, n->cfg->id, id);
}

int placement_init(node_t *n, char *err, size_t errlen)
{
    finish_deletions(n);
    if (!(n->place = calloc(1, sizeof *n->place)))
        return SHOAL_ENOMEM;
    if (n->cfg->balance_leaders && !(n->place->balance = leader_balance_new()))
        return SHOAL_ENOMEM;
    Shoal__ShardMap *m = NULL;
    int rc = map_load(n, &m, err, errlen);
    if (rc)
        return rc;
    n->place->map = m ? m : shardmap_bootstrap(n->cfg);
    if (!n->place->map)
        return SHOAL_ENOMEM;
    if (m && m->cluster_id && n->cfg->cluster_id && m->cluster_id != n->cfg->cluster_id) {
        snprintf(err, errlen,
                 "%s/shardmap belongs to cluster %016" PRIx64 ", the config names cluster/id "
                 "%016" PRIx64,
                 n->cfg->data_dir, m->cluster_id, n->cfg->cluster_id);
        return SHOAL_EINVAL;
    }
    learn_cluster(n, n->cfg->cluster_id ? n->cfg->cluster_id : n->place->map->cluster_id);
    if (!m)
        return 0;
    zsys_info("node %" PRIu64 ": shard map version %" PRIu64 " from %s/shardmap", n->cfg->id,
              m->version, n->cfg->data_dir);
    return reap_unplaced(n, err, errlen);
}

void placement_destroy(node_t *n)
{
    if (!n->place)
        return;
    shardmap_free(&n->place->map);
    free(n->place->inflight_bytes);
    free(n->place->dropping);
    leader_balance_destroy(&n->place->balance);
    zframe_destroy(&n->place->waiter);
    free(n->place);
    n->place = NULL;
}

bool placement_same_cluster(node_t *n, uint64_t id, const char *what)
{
    placement_t *p = n->place;
    if (!id || !p->cluster_id || id == p->cluster_id)
        return true;
    uint64_t now = (uint64_t)zclock_mono();
    if (!p->foreign_log_ms || now - p->foreign_log_ms >= 10000) {
        p->foreign_log_ms = now;
        zsys_warning("node %" PRIu64 ": refused %s of cluster %016" PRIx64 " (this node is in "
                     "cluster %016" PRIx64 "): an endpoint reused by another cluster?",
                     n->cfg->id, what, id, p->cluster_id);
    }
    return false;
}

void placement_adopt(node_t *n, const Shoal__ShardMap *map, bool from_leader)
{
    placement_t *p = n->place;
    if (!map || !placement_same_cluster(n, map->cluster_id, "a shard map"))
        return;
    learn_cluster(n, map->cluster_id);
    /* fresh: the metadata leader's version is the one this node holds (or will, below) */
    if (from_leader && map->version <= p->map->version)
        p->fresh_ms = zclock_mono();
    /* the same version with the id: the stored first map replacing the local bootstrap one */
    bool named = map->version == p->map->version && !p->map->cluster_id && map->cluster_id;
    if ((map->version <= p->map->version && !named) || map->n_shards == 0)
        return;
    Shoal__ShardMap *c = shardmap_copy(map);
    if (!c)
        return;
    /* only a map after one that listed this node removes it: a joining node is not listed
     * until add-node registers it */
    if (shardmap_node(p->map, n->cfg->id) && !shardmap_node(c, n->cfg->id))
        mark_removed(n, c->version);
    /* durable before acted on: a restart must host what this map places here */
    if (map_store(n, c) != 0) {
        zsys_error("node %" PRIu64 ": cannot write %s/shardmap; stopping", n->cfg->id,
                   n->cfg->data_dir);
        shardmap_free(&c);
        n->fatal = true;
        return;
    }
    zsys_info("node %" PRIu64 ": shard map version %" PRIu64 " (was %" PRIu64 ")", n->cfg->id,
              c->version, p->map->version);
    shardmap_free(&p->map);
    p->map = c;
    if (from_leader)
        p->fresh_ms = zclock_mono();
    placement_connect(n);
    char detail[64];
    snprintf(detail, sizeof detail, "shard map version %" PRIu64, c->version);
    events_raft_simple(n->events, SHOAL__RAFT_EVENT_TYPE__EV_MEMBERSHIP_CHANGED, SHOAL_META_GROUP,
                       0, UINT64_MAX, detail);
    /* replicas open and close in the next sweep (never from inside another replica's
     * callback, which may be what delivered this map) */
}

bool placement_adopt_bytes(node_t *n, const uint8_t *buf, size_t len, bool from_leader)
{
    Shoal__ShardMap *m = shardmap_decode(buf, len);
    if (!m)
        return false;
    placement_adopt(n, m, from_leader);
    shardmap_free(&m);
    return true;
}

void placement_send_oneway(node_t *n, uint64_t node, Shoal__AdminRequest *req)
{
    req->request_id = PLACEMENT_ONEWAY;
    Shoal__Frame f = shoal_admin_frame(req);
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    if (buf)
        transport_send_frame(n->transport, node, buf, len);
    free(buf);
}

/* ---- hosting: open what the map places here, delete what it no longer does ---------- */

/* A replica can be freed when no actor and no log batch holds anything of it. Its own
 * counts only: a node-wide "no compactor job out" was rarely true under load with frequent
 * snapshots of the other groups, and held a moved-away replica for seconds. */
static bool replica_idle(const replica_t *r)
{
    return !r->rd_out && r->stage == STAGE_NONE && r->jobs_out == 0 && !r->snap_busy &&
           r->compacts_out == 0;
}

/* A replica the map moved away that something still holds is named once after 3 s, with
 * what holds it: a drop that never comes keeps the data and the group's records. */
static void note_held(const node_t *n, replica_t *r)
{
    uint64_t now = (uint64_t)zclock_mono();
    if (r->unplaced_ms == 0)
        r->unplaced_ms = now;
    if (r->unplaced_ms == UINT64_MAX || now - r->unplaced_ms < 3000)
        return;
    r->unplaced_ms = UINT64_MAX;
    zsys_warning("node %" PRIu64 ": shard %u is no longer placed here but is still busy: "
                 "ready out %d, stage %d, fsm jobs %" PRIu64 ", snapshot %d, compactions %u",
                 n->cfg->id, r->group, (int)r->rd_out, (int)r->stage, r->jobs_out,
                 (int)r->snap_busy, r->compacts_out);
}

/* Closes the replica here, writes a DROP record of its group into the log batch, and
 * once that is durable (node.c, log_answer) hands its engine and folder to the compactor,
 * which closes (flushes) and deletes them off this loop (compactor_actor.c, drop_job).
 * In that order a crash leaves either the log's records with the data, or the DROP with
 * or without the data, never records that describe deleted data; and a replica of the
 * group placed here again starts empty (learner, snapshot) instead of from old records. */
static void drop_replica(node_t *n, size_t i)
{
    failpoint("drop_before_record");
    replica_t *r = n->replicas[i];
    placement_t *p = n->place;
    snap_job_t *j = calloc(1, sizeof *j);
    char *dir = strdup(r->dir);
    uint32_t *nd = realloc(p->dropping, (p->n_dropping + 1) * sizeof *nd);
    if (nd)
        p->dropping = nd;
    persist_item_t *it = j && dir && nd ? node_batch_item(n) : NULL;
    if (!it) {
        free(j);
        free(dir);
        return; /* tried again next sweep */
    }
    uint32_t group = r->group;
    n->replicas[i] = n->replicas[--n->n_replicas];
    p->dropping[p->n_dropping++] = group;
    j->group = group;
    j->drop = true;
    j->lsm = r->lsm;
    j->dir = dir;
    r->lsm = NULL; /* the drop job closes it */
    replica_close(&r);
    it->group = group;
    it->drop = true;
    it->drop_job = j; /* the batch owns it until the DROP is durable */
    zsys_info("node %" PRIu64 ": shard %u is no longer placed here; replica closed, %s deleted "
              "once the log drops the group",
              n->cfg->id, group, dir);
    events_raft_simple(n->events, SHOAL__RAFT_EVENT_TYPE__EV_MEMBERSHIP_CHANGED, group, 0,
                       UINT64_MAX, "replica removed from this node; data deleted");
}

/* A node the map makes a metadata host opens the group empty (replica.c: not a bootstrap
 * member) and learns its configuration from the metadata leader, like any moved shard. */
static void follow_meta(node_t *n)
{
    char err[512] = "";
    if (!n->place->map->meta || !placement_hosts(n, SHOAL_META_GROUP) ||
        node_find_replica(n, SHOAL_META_GROUP) || dropping(n, SHOAL_META_GROUP))
        return;
    if (node_add_replica(n, SHOAL_META_GROUP, err, sizeof err) != 0) {
        zsys_error("node %" PRIu64 ": cannot open the metadata group placed here: %s", n->cfg->id,
                   err);
        n->fatal = true;
        return;
    }
    zsys_info("node %" PRIu64 ": metadata group placed here: replica opened, waiting for its "
              "leader",
              n->cfg->id);
}

static void follow_hosting(node_t *n)
{
    const Shoal__ShardMap *m = n->place->map;
    follow_meta(n);
    for (size_t i = 0; i < m->n_shards; i++) {
        uint32_t g = m->shards[i]->id;
        if (!placement_hosts(n, g) || node_find_replica(n, g) || dropping(n, g) ||
            split_node_host(n, m->shards[i]))
            continue;
        char err[512] = "";
        if (node_add_replica(n, g, err, sizeof err) != 0) {
            zsys_error("node %" PRIu64 ": cannot open shard %u placed here: %s", n->cfg->id, g,
                       err);
            n->fatal = true;
            return;
        }
        zsys_info("node %" PRIu64 ": shard %u placed here: replica opened, waiting for its "
                  "leader",
                  n->cfg->id, g);
    }
    for (size_t i = n->n_replicas; i-- > 0;) {
        replica_t *r = n->replicas[i];
        /* a shard this map does not list is newer than the map (a split target started
         * from its source's log): only a newer map can tell */
        if (r->group != SHOAL_META_GROUP && !shardmap_shard(m, r->group))
            continue;
        if (placement_hosts(n, r->group))
            r->unplaced_ms = 0;
        else if (replica_idle(r))
            drop_replica(n, i);
        else
            note_held(n, r);
    }
}

/* ---- a leader converges its group's configuration to the map ------------------------ */

static int64_t propose_cc(replica_t *r, raft_conf_change_type_t type, uint64_t node)
{
    const Shoal__NodeInfo *ni = shardmap_node(r->node->place->map, node);
    const char *ep = ni && ni->endpoint ? ni->endpoint : "";
    raft_conf_change_t cc = {type, raft_id_of(node), (const uint8_t *)ep, strlen(ep)};
    int64_t rc = raft_propose_conf_change(r->raft, &cc, NULL);
    if (rc > 0) {
        static const char *what[] = {"add voter", "add learner", "remove", "promote"};
        zsys_info("shard %u: configuration change: %s node %" PRIu64 " (index %" PRId64 ")",
                  r->group, what[type], node, rc);
        r->quiet = false;
        r->idle_ticks = 0;
    }
    return rc;
}

static void report_done(node_t *n, replica_t *r, uint64_t *voters, size_t n_voters)
{
    Shoal__MoveDone md = SHOAL__MOVE_DONE__INIT;
    md.shard = r->group;
    md.map_version = n->place->map->version;
    md.voters = voters;
    md.n_voters = n_voters;
    if (placement_hosts(n, SHOAL_META_GROUP))
        meta_move_done(n, &md);
    uint64_t meta[NODE_MAX_NODES]; /* the map's metadata nodes: the group may have moved */
    size_t k = shardmap_meta_nodes(n->place->map, n->cfg, meta, NODE_MAX_NODES);
    Shoal__AdminRequest req = SHOAL__ADMIN_REQUEST__INIT;
    req.op_case = SHOAL__ADMIN_REQUEST__OP_MOVE_DONE;
    req.move_done = &md;
    for (size_t i = 0; i < k; i++)
        if (meta[i] != n->cfg->id)
            placement_send_oneway(n, meta[i], &req);
}

/* Transfers leadership to the most caught-up voter the map keeps among the nodes heard
 * from: a silent one (down) would take the transfer and answer nothing, every sweep. */
static void hand_over(replica_t *r, const raft_status_t *st, const Shoal__ShardInfo *si)
{
    const node_t *n = r->node;
    uint64_t election_ms = (uint64_t)n->cfg->election_ticks * n->cfg->tick_ms;
    uint64_t best = 0, best_match = 0;
    for (size_t i = 0; i < st->n_peers; i++) {
        const raft_peer_status_t *p = &st->peers[i];
        uint64_t node = node_id_of(p->id);
        if (!p->learner && shardmap_has(si->replicas, si->n_replicas, node) &&
            node_heard_within(n, node, election_ms) && (best == 0 || p->match > best_match)) {
            best = p->id;
            best_match = p->match;
        }
    }
    if (best && st->lead_transferee == 0 && raft_transfer_leader(r->raft, best) == 0) {
        zsys_info("shard %u: leaving this node: leadership handed to node %" PRIu64, r->group,
                  node_id_of(best));
        r->quiet = false;
        r->idle_ticks = 0;
    }
}

/* One step toward the map's placement; nothing while a change is pending (the core refuses
 * a second one), so each sweep retries until the configuration matches. */
static void announce_conf(node_t *n, replica_t *r, const raft_status_t *st);

static void converge(node_t *n, replica_t *r)
{
    raft_status_t st;
    raft_status(r->raft, &st);
    announce_conf(n, r, &st);
    const Shoal__ShardInfo *si = shardmap_shard(n->place->map, r->group);
    if (!si || si->n_replicas == 0)
        return;
    const raft_conf_state_t *c = &st.conf;
    uint64_t voters[RAFT_MAX_NODES], learners[RAFT_MAX_NODES];
    for (size_t i = 0; i < c->n_voters; i++)
        voters[i] = node_id_of(c->voters[i]);
    for (size_t i = 0; i < c->n_learners; i++)
        learners[i] = node_id_of(c->learners[i]);
    for (size_t i = 0; i < si->n_replicas; i++) {
        uint64_t t = si->replicas[i];
        if (!shardmap_has(voters, c->n_voters, t) && !shardmap_has(learners, c->n_learners, t)) {
            propose_cc(r, RAFT_CONF_ADD_LEARNER, t);
            return;
        }
    }
    for (size_t i = 0; i < c->n_learners; i++) {
        bool wanted = shardmap_has(si->replicas, si->n_replicas, learners[i]);
        propose_cc(r, wanted ? RAFT_CONF_PROMOTE : RAFT_CONF_REMOVE, learners[i]);
        return; /* a learner not caught up yet is refused (SHOAL_EBUSY): next sweep */
    }
    for (size_t i = 0; i < c->n_voters; i++) {
        if (shardmap_has(si->replicas, si->n_replicas, voters[i]))
            continue;
        if (voters[i] == n->cfg->id)
            hand_over(r, &st, si);
        else
            propose_cc(r, RAFT_CONF_REMOVE, voters[i]);
        return;
    }
    /* the configuration equals the map (a move), or a split target serves: the metadata
     * leader closes the move or the split */
    if ((si->n_leaving > 0 || si->splitting) && c->n_learners == 0 && st.commit >= st.last_index)
        report_done(n, r, voters, c->n_voters);
}

/* A leader announces each configuration its group commits (EV_MEMBERSHIP_CHANGED), so
 * `shoalctl events` shows every step of a move. */
static void announce_conf(node_t *n, replica_t *r, const raft_status_t *st)
{
    const raft_conf_state_t *c = &st->conf;
    uint64_t ids[2 * RAFT_MAX_NODES + 1];
    size_t k = 0;
    for (size_t i = 0; i < c->n_voters; i++)
        ids[k++] = c->voters[i];
    ids[k++] = 0; /* voters and learners apart */
    for (size_t i = 0; i < c->n_learners; i++)
        ids[k++] = c->learners[i];
    uint64_t sig = XXH3_64bits(ids, k * sizeof *ids) | 1; /* never 0: 0 is "none yet" */
    if (sig == r->conf_sig)
        return;
    bool first = r->conf_sig == 0;
    r->conf_sig = sig;
    if (first)
        return; /* the configuration it found when it became leader is no news */
    char detail[256];
    k = (size_t)snprintf(detail, sizeof detail, "configuration: voters");
    for (size_t i = 0; i < c->n_voters && k + 24 < sizeof detail; i++)
        k += (size_t)snprintf(detail + k, sizeof detail - k, " %" PRIu64, node_id_of(c->voters[i]));
    if (c->n_learners && k + 24 < sizeof detail)
        k += (size_t)snprintf(detail + k, sizeof detail - k, ", learners");
    for (size_t i = 0; i < c->n_learners && k + 24 < sizeof detail; i++)
        k += (size_t)snprintf(detail + k, sizeof detail - k, " %" PRIu64,
                              node_id_of(c->learners[i]));
    zsys_info("shard %u: %s", r->group, detail);
    events_raft_simple(n->events, SHOAL__RAFT_EVENT_TYPE__EV_MEMBERSHIP_CHANGED, r->group, st->term,
                       n->cfg->id, detail);
}

void placement_sweep(node_t *n)
{
    if (!n->place || n->stopping || n->fatal)
        return;
    follow_hosting(n);
    if (n->place->removed && n->n_replicas == 0 && n->place->n_dropping == 0) {
        n->left = true;
        return;
    }
    bool fresh = zclock_mono() - n->place->fresh_ms < FRESH_MS;
    for (size_t i = 0; fresh && i < n->n_replicas; i++) {
        replica_t *r = n->replicas[i];
        if (r->role != RAFT_LEADER)
            r->conf_sig = 0;
        else if (r->group != SHOAL_META_GROUP) {
            converge(n, r);
            split_node_propose(n, r);
            leader_balance_step(n, r);
        } else {
            converge(n, r); /* nothing until the map records the group's nodes */
            leader_balance_step(n, r);
        }
    }
    meta_sweep(n);
}
