/* node.c - the node actor: hosts every replica of this node behind one ROUTER endpoint and
 * one PUB endpoint, and drives them (see node_int.h for the thread model, replica.h for the
 * life of a ready batch).
 *
 * One loop turn: handle whatever arrived (a client or admin frame, a peer envelope, an
 * actor's answer, a timer), then pump: move every replica's readies forward, send this
 * turn's log batch to the log actor (one fdatasync for all groups), and flush one envelope
 * per peer. The loop never waits on a disk: heartbeats go out on time however slow fsync,
 * snapshot export or LSM compaction are.
 *
 * Requests (docs/CONTRACTS.md): Frame{client_req} with `shard` set, answered with
 * Frame{client_resp} and the same request_id; Frame{admin_req} ops status, shard_map,
 * transfer, snapshot, compact, and the shard-map changes (move, add_node, remove_node:
 * meta.c) plus the node-to-node one-way map_push and move_done (placement.h);
 * Frame{peer} from other nodes.
 *
 * Idle groups quiesce (raft/quiesce_ticks > 0): a group whose leader has had nothing to do
 * for that many ticks, with every follower caught up, stops ticking and sends its followers
 * a quiesce marker (a heartbeat with context "Q"); they stop ticking too. A quiet group
 * sends no heartbeats; instead every node sends each peer something at least every two
 * heartbeat intervals (an empty envelope if need be), and a quiet follower whose leader's
 * node has been silent for an election timeout wakes up and may start an election. Any
 * proposal, read or non-heartbeat message wakes the group. */
#include "actors/node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "actors/lease_clock.h"
#include "actors/placement.h"
#include "actors/replica.h"
#include "actors/rlog_io_hold.h"
#include "actors/split_node.h"
#include "engine/error.h"
#include "engine/lsm/pool.h"
#include "proto/admin.pb-c.h"
#include "proto/codec.h"

#define DEFAULT_TIMEOUT_MS 5000
/* A request for a key of another shard (keys_fit; docs/CONTRACTS.md): the key's shard, then
 * the shard the request names. */
#define SHOAL_ERR_WRONG_SHARD "key belongs to shard %u, not to shard %u"
#define SWEEP_MS 100

const uint64_t node_fsync_bounds_us[FSYNC_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, UINT64_MAX};

/* ---- helpers ------------------------------------------------------------------------ */

static replica_t *find_replica(node_t *n, uint64_t group)
{
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->group == group)
            return n->replicas[i];
    return NULL;
}

void node_reply(node_t *node, waiter_t **w_p)
{
    waiter_t *w = *w_p;
    if (w->reply && w->identity && w->batched && node->replies) {
        replies_add(node->replies, node->router, &w->identity, &w->reply, w->reply_len);
        sockset_touch(node->socks, node->sk_router); /* sent at once when it cannot queue */
    } else if (w->reply && w->identity) {
        node->n_client_out++;
        zframe_t *id = zframe_dup(w->identity);
        zframe_send(&id, node->router, ZFRAME_MORE);
        zmq_send(zsock_resolve(node->router), w->reply, w->reply_len, 0);
        sockset_touch(node->socks, node->sk_router);
    }
    waiter_destroy(w_p);
}

void node_send_compactor(node_t *node, snap_job_t *j)
{
    zsock_send(node->compactor, "sp", "EXPORT", j);
    sockset_touch(node->socks, node->sk_compactor);
}

static void send_frame(node_t *n, zframe_t *identity, Shoal__Frame *f)
{
    size_t len;
    uint8_t *buf = shoal_frame_encode(f, &len);
    if (!buf)
        return;
    zframe_t *id = zframe_dup(identity);
    zframe_send(&id, n->router, ZFRAME_MORE);
    zmq_send(zsock_resolve(n->router), buf, len, 0);
    sockset_touch(n->socks, n->sk_router);
    free(buf);
}

/* ---- client requests ---------------------------------------------------------------- */

static void read_now(replica_t *r, waiter_t *w)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_READ;
    job->reads = w;
    replica_send_job(r, job);
}

/* A leader confirms the read itself; a follower that knows its leader asks it for the
 * read index (the core sends MSG_READ_INDEX) and serves the read once it has applied that
 * far, which is what etcd's members do for a linearizable read. */
static void linear_read(replica_t *r, waiter_t *w)
{
    if (r->role != RAFT_LEADER && (r->role != RAFT_FOLLOWER || !r->leader)) {
        replica_not_leader(r, w);
        node_reply(r->node, &w);
        return;
    }
    w->read_id = ++r->next_read_id;
    int rc = raft_read_index(r->raft, &w->read_id, sizeof w->read_id);
    if (rc) {
        replica_not_leader(r, w);
        node_reply(r->node, &w);
        return;
    }
    r->quiet = false;
    r->idle_ticks = 0;
    r->node->follower_reads += r->role != RAFT_LEADER;
    w->next = r->reads_wait;
    r->reads_wait = w;
}

static bool too_large(const ProtobufCBinaryData *k, const ProtobufCBinaryData *v)
{
    return (k && k->len > SHOAL_NODE_MAX_KEY) || (v && v->len > SHOAL_NODE_MAX_VALUE);
}

/* Builds the WriteCommand of a write request; false for a malformed one, with its status in
 * *status, and the reason in err (when not NULL) for a batch over its limit. */
static bool write_command(Shoal__ClientRequest *req, Shoal__WriteCommand *cmd, int *status,
                          char *err, size_t errlen)
{
    shoal__write_command__init(cmd);
    cmd->client_id = req->client_id;
    cmd->seq = req->seq;
    *status = SHOAL__STATUS__STATUS_BAD_REQUEST;
    switch (req->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_PUT:
        if (!req->put->key.len)
            return false;
        if (too_large(&req->put->key, &req->put->value))
            return *status = SHOAL__STATUS__STATUS_TOO_LARGE, false;
        cmd->op_case = SHOAL__WRITE_COMMAND__OP_PUT;
        cmd->put = req->put;
        return true;
    case SHOAL__CLIENT_REQUEST__OP_DEL:
        if (!req->del->key.len)
            return false;
        if (too_large(&req->del->key, NULL))
            return *status = SHOAL__STATUS__STATUS_TOO_LARGE, false;
        cmd->op_case = SHOAL__WRITE_COMMAND__OP_DEL;
        cmd->del = req->del;
        return true;
    case SHOAL__CLIENT_REQUEST__OP_CAS:
        if (!req->cas->key.len)
            return false;
        if (too_large(&req->cas->key, &req->cas->value) || too_large(NULL, &req->cas->expected))
            return *status = SHOAL__STATUS__STATUS_TOO_LARGE, false;
        cmd->op_case = SHOAL__WRITE_COMMAND__OP_CAS;
        cmd->cas = req->cas;
        return true;
    case SHOAL__CLIENT_REQUEST__OP_BATCH: {
        size_t bytes = 0;
        for (size_t i = 0; i < req->batch->n_ops; i++) {
            Shoal__BatchOp *op = req->batch->ops[i];
            const ProtobufCBinaryData *k = op->op_case == SHOAL__BATCH_OP__OP_PUT   ? &op->put->key
                                           : op->op_case == SHOAL__BATCH_OP__OP_DEL ? &op->del->key
                                                                                    : NULL;
            if (!k || !k->len)
                return false;
            bytes += shoal_batch_op_bytes(op);
        }
        if (bytes > SHOAL_NODE_MAX_BATCH_BYTES) {
            if (err)
                snprintf(err, errlen, SHOAL_ERR_BATCH_BYTES, req->shard, bytes,
                         SHOAL_NODE_MAX_BATCH_BYTES);
            return *status = SHOAL__STATUS__STATUS_TOO_LARGE, false;
        }
        cmd->op_case = SHOAL__WRITE_COMMAND__OP_BATCH;
        cmd->batch = req->batch;
        return true;
    }
    default: return false;
    }
}

/* Hands one checked write to the core (or answers it at once when the core refuses). */
/* Appends w to a waiter queue kept as head and tail. */
static void push_waiter(waiter_t **head, waiter_t **tail, waiter_t *w)
{
    w->next = NULL;
    if (*tail)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
}

/* Entry bytes proposed per log batch (all groups together). A loop turn's writes used to
 * go to the cores all at once: 96 clients putting 1 MB values made one ready of ~100 MB,
 * a log write of seconds on a busy disk and appends past the frame limit, and the cluster
 * lost its leaders; past this budget, writes wait held for the next batch, which also
 * bounds what followers write per ready. */
#define PROPOSE_BUDGET (4u << 20)

/* The bytes of w's entry (its command as the core gets it). */
static size_t entry_bytes(const waiter_t *w)
{
    Shoal__WriteCommand cmd;
    int status;
    write_command(w->frame->client_req, &cmd, &status, NULL, 0); /* checked by propose */
    return shoal__write_command__get_packed_size(&cmd);
}

/* Whether an entry of this many bytes fits the budget of the next log batch (one always
 * does: a batch's first entry, however big). */
static bool budget_fits(const node_t *n, size_t bytes)
{
    return n->proposed_bytes == 0 || n->proposed_bytes + bytes <= PROPOSE_BUDGET;
}

static void propose_now(replica_t *r, waiter_t *w)
{
    node_t *n = r->node;
    Shoal__WriteCommand cmd;
    int status;
    write_command(w->frame->client_req, &cmd, &status, NULL, 0); /* checked by propose */
    size_t len = shoal__write_command__get_packed_size(&cmd);
    uint8_t st[4096], *buf = len <= sizeof st ? st : malloc(len);
    if (!buf) {
        waiter_answer_status(w, SHOAL__STATUS__STATUS_INTERNAL, "out of memory");
        node_reply(n, &w);
        return;
    }
    shoal__write_command__pack(&cmd, buf);
    int64_t idx = raft_propose(r->raft, buf, len, NULL);
    if (buf != st)
        free(buf);
    if (idx <= 0) {
        if (idx == SHOAL_ENOTLEADER)
            replica_not_leader(r, w);
        else
            waiter_answer_status(w, SHOAL__STATUS__STATUS_UNAVAILABLE,
                                 "leadership transfer in progress; retry");
        node_reply(n, &w);
        return;
    }
    r->quiet = false;
    r->idle_ticks = 0;
    w->index = (uint64_t)idx;
    n->proposed_bytes += len;
    push_waiter(&r->props, &r->props_tail, w);
    r->n_props++;
}

static uint64_t write_fingerprint(const Shoal__ClientRequest *req)
{
    uint64_t ids[2] = {req->client_id, req->seq};
    return XXH3_64bits(ids, sizeof ids);
}

static waiter_t *find_write(waiter_t *list, const Shoal__ClientRequest *req)
{
    for (waiter_t *x = list; x; x = x->next) {
        const Shoal__ClientRequest *q = x->frame->client_req;
        if (q->client_id == req->client_id && q->seq == req->seq)
            return x;
    }
    return NULL;
}

/* A resend of a write still held or proposed here (libshoal resends after 1-8 s without
 * an answer, a broker after its attempt timeout, a client through another broker): its
 * first copy takes the resend's routing and deadline, so the answer goes to the newest
 * sender, and the copy is not proposed again. It used to be: under an overload of 1 MB
 * writes every resend was another 1 MB entry to replicate, sync and skip at apply. The
 * older sender gets no answer; a broker matches answers by request id, which its own
 * resends keep, and times out one that a client resent through another broker. Returns
 * false (propose w) for a write not seen here. */
static bool join_first_copy(replica_t *r, waiter_t *w)
{
    const Shoal__ClientRequest *req = w->frame->client_req;
    if (!req->client_id)
        return false;
    uint64_t fp = write_fingerprint(req);
    uint64_t *slot = &r->recent_writes[fp % RECENT_WRITES];
    waiter_t *first = NULL;
    if (*slot == fp && !(first = find_write(r->held, req)))
        first = find_write(r->props, req);
    *slot = fp;
    if (!first)
        return false;
    zframe_t *identity = first->identity;
    Shoal__Frame *frame = first->frame;
    bool batched = first->batched;
    first->identity = w->identity;
    first->frame = w->frame;
    first->batched = w->batched;
    if (w->deadline_ms > first->deadline_ms)
        first->deadline_ms = w->deadline_ms;
    w->identity = identity;
    w->frame = frame;
    w->batched = batched;
    waiter_destroy(&w);
    r->node->n_resends_joined++;
    return true;
}

static void propose(replica_t *r, waiter_t *w)
{
    node_t *n = r->node;
    Shoal__WriteCommand cmd;
    int status;
    char why[160];
    why[0] = 0;
    if (!write_command(w->frame->client_req, &cmd, &status, why, sizeof why)) {
        if (!why[0] && status == SHOAL__STATUS__STATUS_TOO_LARGE)
            snprintf(why, sizeof why, "key or value too large (key <= %u KiB, value <= %u MiB)",
                     SHOAL_NODE_MAX_KEY >> 10, SHOAL_NODE_MAX_VALUE >> 20);
        else if (!why[0])
            snprintf(why, sizeof why, "malformed write: empty key or unknown op");
        waiter_answer_status(w, (Shoal__Status)status, why);
        node_reply(n, &w);
        return;
    }
    if (r->role != RAFT_LEADER) {
        replica_not_leader(r, w);
        node_reply(n, &w);
        return;
    }
    if (join_first_copy(r, w))
        return;
    if (r->n_props + r->n_held >= 8192) {
        waiter_answer_status(w, SHOAL__STATUS__STATUS_UNAVAILABLE, "too many writes pending");
        node_reply(n, &w);
        return;
    }
    /* While a log batch is in flight, the new entries could not be written before it
     * answers anyway: held here, every group's writes are proposed together right after
     * the answer (pump), so each group's ready carries more of them and one envelope per
     * peer carries every group's appends, instead of a ready and an envelope per group per
     * loop turn (docs/ARCHITECTURE.md, "Life of a ready batch"). Also held: what would take
     * the next batch past its budget, and anything behind a held write of its group (a
     * group's writes are proposed in arrival order). */
    if (n->batches_out || r->held || !budget_fits(n, entry_bytes(w))) {
        push_waiter(&r->held, &r->held_tail, w);
        r->n_held++;
        r->quiet = false;
        r->idle_ticks = 0;
        return;
    }
    propose_now(r, w);
}

/* The writes held while the log was busy go to their cores, in arrival order, as far as
 * the next batch's budget goes; the replica served first rotates, so a group of big
 * writes does not keep the others' waiting. */
static void propose_held(node_t *n)
{
    if (n->n_replicas == 0)
        return;
    size_t first = n->held_from++ % n->n_replicas;
    for (size_t k = 0; k < n->n_replicas; k++) {
        replica_t *r = n->replicas[(first + k) % n->n_replicas];
        while (r->held && budget_fits(n, entry_bytes(r->held))) {
            waiter_t *w = r->held;
            r->held = w->next;
            if (!r->held)
                r->held_tail = NULL;
            r->n_held--;
            w->next = NULL;
            propose_now(r, w);
        }
    }
}

/* The ring of the map this node holds, rebuilt when the map changes (one allocation per
 * map version, never per request); NULL only when memory is short. */
static const ring_t *key_ring(node_t *n)
{
    const Shoal__ShardMap *m = n->place->map;
    if (n->key_ring && n->key_ring_map == m && n->key_ring_version == m->version)
        return n->key_ring;
    ring_t *r = shardmap_ring(m);
    if (!r)
        return n->key_ring; /* the older map's ring: a key it places wrong is refused */
    ring_destroy(&n->key_ring);
    n->key_ring = r;
    n->key_ring_map = m;
    n->key_ring_version = m->version;
    return r;
}

/* The key a get, put, del or cas names; NULL for other ops (a batch: batch_key). */
static const ProtobufCBinaryData *single_key(const Shoal__ClientRequest *req)
{
    switch (req->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_GET: return &req->get->key;
    case SHOAL__CLIENT_REQUEST__OP_PUT: return &req->put->key;
    case SHOAL__CLIENT_REQUEST__OP_DEL: return &req->del->key;
    case SHOAL__CLIENT_REQUEST__OP_CAS: return &req->cas->key;
    default: return NULL;
    }
}

static const ProtobufCBinaryData *batch_key(const Shoal__BatchOp *op)
{
    return op->op_case == SHOAL__BATCH_OP__OP_PUT   ? &op->put->key
           : op->op_case == SHOAL__BATCH_OP__OP_DEL ? &op->del->key
                                                    : NULL;
}

/* Whether every key request req reads or writes belongs to the shard it names under this
 * node's map (shardmap_key_fits: a key still splitting away counts as its source's). A
 * client that talks to a node instead of a broker (libshoal, shoalctl --broker NODE) names
 * shard 0 and map version 0 for every key; served, its writes landed in shard 0, where no
 * broker's get looks, while a broker's scan showed them. So a key of another shard is
 * refused before anything is proposed or read: BAD_REQUEST when no broker routed the
 * request (map_version 0: sending it again cannot help), UNAVAILABLE when a broker routed
 * it with an older map (a split closed since), which the broker retries on its newer map.
 * Cost: one XXH3 and one binary search per key. Scans and change reads name no key: a
 * scan is checked against the split fence by map version (fsm_actor.c). The metadata
 * group is not on the ring: its keys may be read, never written by a client (its map
 * changes only through meta.c's own proposals). On false the reason is in why. */
static bool keys_fit(node_t *n, const Shoal__ClientRequest *req, int *status, char *why,
                     size_t whylen)
{
    const ProtobufCBinaryData *k = single_key(req);
    size_t n_keys = k ? 1 : req->op_case == SHOAL__CLIENT_REQUEST__OP_BATCH ? req->batch->n_ops : 0;
    if (n_keys == 0)
        return true;
    if (req->shard == SHOAL_META_GROUP) { /* off the ring: its keys are the map's own */
        if (req->op_case == SHOAL__CLIENT_REQUEST__OP_GET)
            return true;
        *status = SHOAL__STATUS__STATUS_BAD_REQUEST;
        snprintf(why, whylen,
                 "the metadata group takes no client writes (the shard map "
                 "changes through admin requests)");
        return false;
    }
    const ring_t *ring = key_ring(n);
    if (!ring) {
        *status = SHOAL__STATUS__STATUS_UNAVAILABLE;
        snprintf(why, whylen, "out of memory");
        return false;
    }
    const Shoal__ShardMap *m = n->place->map;
    for (size_t i = 0; i < n_keys; i++) {
        if (!k || i > 0)
            k = batch_key(req->batch->ops[i]);
        if (!k) /* a malformed op: write_command refuses it */
            continue;
        uint32_t owner = ring_shard_for(ring, k->data, k->len);
        if (shardmap_key_fits(m, req->shard, owner))
            continue;
        if (req->map_version == 0) {
            *status = SHOAL__STATUS__STATUS_BAD_REQUEST;
            snprintf(why, whylen,
                     SHOAL_ERR_WRONG_SHARD " (shard map v%" PRIu64 "): send requests to a "
                                           "broker, not to a node",
                     owner, req->shard, m->version);
        } else {
            *status = SHOAL__STATUS__STATUS_UNAVAILABLE;
            snprintf(why, whylen,
                     SHOAL_ERR_WRONG_SHARD " in shard map v%" PRIu64 " (routed with v%" PRIu64
                                           "); retry",
                     owner, req->shard, m->version, req->map_version);
        }
        return false;
    }
    return true;
}

static void handle_client(node_t *n, zframe_t *identity, Shoal__Frame *f, bool batched)
{
    waiter_t *w = calloc(1, sizeof *w);
    if (!w) {
        zframe_destroy(&identity);
        shoal_frame_free(&f);
        return;
    }
    Shoal__ClientRequest *req = f->client_req;
    w->identity = identity;
    w->frame = f;
    w->batched = batched;
    w->deadline_ms = zclock_mono() + (req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    n->requests++;
    replica_t *r = find_replica(n, req->shard);
    if (!r) {
        waiter_answer_status(w, SHOAL__STATUS__STATUS_NOT_LEADER, "shard not hosted on this node");
        node_reply(n, &w);
        return;
    }
    int status;
    char why[200];
    if (!keys_fit(n, req, &status, why, sizeof why)) {
        waiter_answer_status(w, (Shoal__Status)status, why);
        node_reply(n, &w);
        return;
    }
    switch (req->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_GET:
        if (req->get->stale)
            read_now(r, w);
        else
            linear_read(r, w);
        return;
    case SHOAL__CLIENT_REQUEST__OP_SCAN:
        if (req->scan->stale)
            read_now(r, w);
        else
            linear_read(r, w);
        return;
    case SHOAL__CLIENT_REQUEST__OP_CHANGES: read_now(r, w); return;
    case SHOAL__CLIENT_REQUEST__OP_PUT:
    case SHOAL__CLIENT_REQUEST__OP_DEL:
    case SHOAL__CLIENT_REQUEST__OP_CAS:
    case SHOAL__CLIENT_REQUEST__OP_BATCH: propose(r, w); return;
    default:
        waiter_answer_status(w, SHOAL__STATUS__STATUS_BAD_REQUEST, "request without an op");
        node_reply(n, &w);
    }
}

/* ---- admin -------------------------------------------------------------------------- */

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Bytes of the regular files directly in dir (0 if it cannot be read): one readdir and one
 * fstatat per file, no descent, so cheap enough for every metrics period (a few files per
 * folder: segments of 64 MiB, one or two snapshot files). */
static uint64_t dir_file_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            sum += (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

/* Fills m (with arrays in the given storage) with this node's metrics. bytes_on_disk counts
 * what the node keeps under its data folder: the files at its top (shard maps), the Raft log
 * segments (their zeros written ahead too), every engine's tables and WAL (the engine's
 * own count) and every replica's snapshot files (exported or coming in). */
static void fill_metrics(node_t *n, Shoal__NodeMetrics *m, uint64_t *bounds, uint64_t *counts,
                         Shoal__PeerProgress *pp, Shoal__PeerProgress **ppp)
{
    shoal__node_metrics__init(m);
    for (int i = 0; i < FSYNC_BUCKETS; i++) {
        bounds[i] = node_fsync_bounds_us[i];
        counts[i] = n->fsync_hist[i];
    }
    m->fsync_hist_us_bounds = bounds;
    m->n_fsync_hist_us_bounds = FSYNC_BUCKETS;
    m->fsync_hist_counts = counts;
    m->n_fsync_hist_counts = FSYNC_BUCKETS;
    size_t npeers = 0;
    for (size_t i = 0; i < n->cfg->n_nodes; i++) {
        if (n->cfg->nodes[i].id == n->cfg->id)
            continue;
        shoal__peer_progress__init(&pp[npeers]);
        pp[npeers].peer = n->cfg->nodes[i].id;
        ppp[npeers] = &pp[npeers];
        npeers++;
    }
    char logdir[1100];
    snprintf(logdir, sizeof logdir, "%s/raftlog", n->cfg->data_dir);
    uint64_t disk = dir_file_bytes(n->cfg->data_dir) + dir_file_bytes(logdir);
    for (size_t i = 0; i < n->n_replicas; i++) {
        replica_t *r = n->replicas[i];
        disk += dir_file_bytes(r->snapdir);
        m->proposals_pending += r->n_props + r->n_held;
        m->commit_apply_lag += r->commit > r->applied ? r->commit - r->applied : 0;
        m->snapshots_in_flight += r->snap_busy || r->stage == STAGE_INSTALL;
        lsm_stats_t ls;
        lsm_stats(r->lsm, &ls);
        disk += ls.total_table_bytes + ls.wal_bytes;
        if (r->role != RAFT_LEADER)
            continue;
        raft_status_t st;
        raft_status(r->raft, &st);
        for (size_t k = 0; k < st.n_peers; k++) {
            m->snapshots_in_flight += st.peers[k].state == RAFT_PROGRESS_SNAPSHOT;
            for (size_t j = 0; j < npeers; j++)
                if (pp[j].peer == node_id_of(st.peers[k].id))
                    pp[j].match_index += st.peers[k].match;
        }
    }
    m->leader_changes = n->leader_changes;
    m->follower_reads = n->follower_reads;
    m->peers = ppp;
    m->n_peers = npeers;
    m->rss_bytes = rss_bytes();
    m->replicas = (uint32_t)n->n_replicas;
    m->bytes_on_disk = disk;
}

static void shard_status(replica_t *r, Shoal__ShardStatus *s, Shoal__PeerProgress *pp,
                         Shoal__PeerProgress **ppp)
{
    shoal__shard_status__init(s);
    raft_status_t st;
    raft_status(r->raft, &st);
    s->id = r->group;
    s->leader = st.leader ? node_id_of(st.leader) : UINT64_MAX;
    s->term = st.term;
    s->commit_index = st.commit;
    s->apply_index = r->applied;
    size_t k = 0;
    shoal__peer_progress__init(&pp[k]);
    pp[k].peer = r->node->cfg->id;
    pp[k].match_index = st.last_index;
    ppp[k] = &pp[k];
    k++;
    for (size_t i = 0; i < st.n_peers && k < RAFT_MAX_NODES; i++, k++) {
        shoal__peer_progress__init(&pp[k]);
        pp[k].peer = node_id_of(st.peers[i].id);
        pp[k].match_index = st.peers[i].match;
        ppp[k] = &pp[k];
    }
    s->replicas = ppp;
    s->n_replicas = st.role == RAFT_LEADER ? k : 1;
    lsm_stats_t ls;
    lsm_stats(r->lsm, &ls);
    s->size_bytes = ls.total_table_bytes + ls.wal_bytes;
}

static void send_admin(node_t *n, zframe_t *identity, Shoal__AdminResponse *resp)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_ADMIN_RESP;
    f.admin_resp = resp;
    if (!resp->error)
        resp->error = (char *)"";
    send_frame(n, identity, &f);
}

/* This node's view: itself with its metrics, and each replica it hosts. */
static void admin_status(node_t *n, zframe_t *identity, Shoal__AdminResponse *resp)
{
    size_t nr = n->n_replicas, per = RAFT_MAX_NODES + 1;
    size_t npp = (nr + 1) * per + NODE_MAX_NODES;
    Shoal__ShardStatus *ss = calloc(nr + 1, sizeof *ss);
    Shoal__ShardStatus **ssp = calloc(nr + 1, sizeof *ssp);
    Shoal__PeerProgress *pp = calloc(npp, sizeof *pp);
    Shoal__PeerProgress **ppp = calloc(npp, sizeof *ppp);
    Shoal__ClusterStatus cs = SHOAL__CLUSTER_STATUS__INIT;
    Shoal__NodeStatus ns = SHOAL__NODE_STATUS__INIT, *nsp = &ns;
    Shoal__NodeMetrics m;
    uint64_t bounds[FSYNC_BUCKETS], counts[FSYNC_BUCKETS];
    if (ss && ssp && pp && ppp) {
        for (size_t i = 0; i < nr; i++) {
            shard_status(n->replicas[i], &ss[i], pp + i * per, ppp + i * per);
            ssp[i] = &ss[i];
        }
        fill_metrics(n, &m, bounds, counts, pp + nr * per, ppp + nr * per);
        ns.id = n->cfg->id;
        ns.endpoint = n->cfg->endpoint;
        ns.up = true;
        ns.last_seen_us = events_now_us();
        ns.metrics = &m;
        cs.map_version = n->place->map->version;
        cs.nodes = &nsp;
        cs.n_nodes = 1;
        cs.shards = ssp;
        cs.n_shards = nr;
        resp->cluster = &cs;
    } else {
        resp->status = SHOAL__STATUS__STATUS_INTERNAL;
        resp->error = (char *)"out of memory";
    }
    send_admin(n, identity, resp);
    free(ss);
    free(ssp);
    free(pp);
    free(ppp);
}

/* The map this node holds, with the leaders it knows as hints. */
static void admin_shard_map(node_t *n, zframe_t *identity, Shoal__AdminResponse *resp)
{
    Shoal__ShardMap *m = n->place->map;
    for (size_t i = 0; i < m->n_shards; i++) {
        replica_t *r = find_replica(n, m->shards[i]->id);
        m->shards[i]->leader_hint = r && r->leader ? node_id_of(r->leader) : UINT64_MAX;
    }
    resp->shard_map = m;
    send_admin(n, identity, resp);
    for (size_t i = 0; i < m->n_shards; i++)
        m->shards[i]->leader_hint = UINT64_MAX;
}

void node_meta_leader(node_t *n, replica_t *r)
{
    meta_leader_elected(n, r);
}

/* Node-to-node one-way frames (placement.h): never answered. */
static void handle_oneway(node_t *n, Shoal__AdminRequest *req)
{
    if (req->op_case == SHOAL__ADMIN_REQUEST__OP_MAP_PUSH && req->map_push)
        placement_adopt(n, req->map_push->map, true);
    else if (req->op_case == SHOAL__ADMIN_REQUEST__OP_MOVE_DONE && req->move_done)
        meta_move_done(n, req->move_done);
}

bool node_heard_within(const node_t *n, uint64_t node, uint64_t within_ms)
{
    if (node == n->cfg->id)
        return true;
    return node < NODE_MAX_NODES && n->last_heard[node] &&
           (uint64_t)zclock_mono() - n->last_heard[node] <= within_ms;
}

/* A transfer to a node that does not answer would stop the group's writes for an election
 * timeout and leave it without a leader if repeated, so it is refused up front. */
static void admin_transfer(node_t *n, replica_t *r, uint64_t to, Shoal__AdminResponse *resp)
{
    static char why[160];
    uint64_t election_ms = (uint64_t)n->cfg->election_ticks * n->cfg->tick_ms;
    int rc = node_heard_within(n, to, election_ms) ? raft_transfer_leader(r->raft, raft_id_of(to))
                                                   : SHOAL_EUNAVAIL;
    if (rc == 0) {
        r->quiet = false; /* the core must tick for the transfer to finish or expire */
        r->idle_ticks = 0;
        return;
    }
    resp->status = rc == SHOAL_EUNAVAIL ? SHOAL__STATUS__STATUS_UNAVAILABLE
                                        : SHOAL__STATUS__STATUS_BAD_REQUEST;
    if (rc == SHOAL_EUNAVAIL)
        snprintf(why, sizeof why, "transfer refused: node %" PRIu64 " not heard from", to);
    else if (rc == SHOAL_EBUSY)
        snprintf(why, sizeof why, "transfer refused: a transfer of %s is running",
                 GROUP_NAME(r->group));
    else
        snprintf(why, sizeof why, "transfer refused: node %" PRIu64 " is not a voter of %s", to,
                 GROUP_NAME(r->group));
    resp->error = why;
}

static void handle_admin(node_t *n, zframe_t *identity, Shoal__Frame *f)
{
    Shoal__AdminRequest *req = f->admin_req;
    Shoal__AdminResponse resp = SHOAL__ADMIN_RESPONSE__INIT;
    resp.request_id = req->request_id;
    replica_t *r;
    if (req->request_id & PLACEMENT_ONEWAY) {
        handle_oneway(n, req);
        return;
    }
    switch (req->op_case) {
    case SHOAL__ADMIN_REQUEST__OP_STATUS: admin_status(n, identity, &resp); return;
    case SHOAL__ADMIN_REQUEST__OP_SHARD_MAP: admin_shard_map(n, identity, &resp); return;
    case SHOAL__ADMIN_REQUEST__OP_TRANSFER:
        r = find_replica(n, req->transfer->shard);
        if (!r || r->role != RAFT_LEADER) {
            resp.status = SHOAL__STATUS__STATUS_NOT_LEADER;
            resp.error = (char *)"this node does not lead that shard";
        } else {
            admin_transfer(n, r, req->transfer->to_node, &resp);
        }
        break;
    case SHOAL__ADMIN_REQUEST__OP_COMPACT:
        for (size_t i = 0; i < n->n_replicas; i++) {
            r = n->replicas[i];
            if (!req->compact->all_shards && r->group != req->compact->shard)
                continue;
            snap_job_t *j = calloc(1, sizeof *j);
            if (!j)
                break;
            j->group = r->group;
            j->compact_only = true;
            j->lsm = r->lsm;
            j->replica = r;
            n->snaps_out++;
            r->compacts_out++;
            node_send_compactor(n, j);
        }
        break;
    case SHOAL__ADMIN_REQUEST__OP_SNAPSHOT:
        for (size_t i = 0; i < n->n_replicas; i++)
            if (req->snapshot->all_shards || n->replicas[i]->group == req->snapshot->shard)
                replica_maybe_snapshot(n->replicas[i], true);
        break;
    case SHOAL__ADMIN_REQUEST__OP_MOVE:
    case SHOAL__ADMIN_REQUEST__OP_ADD_NODE:
    case SHOAL__ADMIN_REQUEST__OP_REMOVE_NODE:
    case SHOAL__ADMIN_REQUEST__OP_ADD_SHARD: meta_admin(n, identity, req); return;
    default:
        resp.status = SHOAL__STATUS__STATUS_BAD_REQUEST;
        resp.error = (char *)"admin op not supported by shoald";
    }
    send_admin(n, identity, &resp);
}

/* ---- peers -------------------------------------------------------------------------- */

/* The quiesce marker: a heartbeat with this one-byte context, sent by a leader that stops
 * ticking an idle group. It is consumed here, never stepped into a core. */
static const uint8_t QUIESCE_CTX = 'Q';

static bool is_quiesce(const raft_msg_t *m)
{
    return m->type == RAFT_MSG_HEARTBEAT && m->context_len == 1 && m->context[0] == QUIESCE_CTX;
}

/* A follower whose ready waits on a slow fsync answers its leader's heartbeats itself, as
 * the core would (same term, no reject, the same context), so the leader's check-quorum
 * sees it alive: the core's own answer waits for the sync (a follower's messages go after
 * its persist). Both kinds need it: the node's heartbeats (heartbeat_for_core, below) while
 * the leader's disk is slow, and the core's (read rounds, with a context) while the
 * leader's disk is fast and only the followers' are slow. The answer claims nothing the
 * sync would make true: the core has stepped the heartbeat (its election timer is reset),
 * and its term is the leader's; the core's late duplicate is harmless (a round is acked
 * once, check-quorum counts any). Only a sync that has taken a heartbeat interval already
 * is slow: under load a follower is nearly always syncing, and answering every heartbeat
 * twice would only add messages. */
static void answer_heartbeat_for_core(node_t *n, replica_t *r, const raft_msg_t *m)
{
    uint64_t every = (uint64_t)n->cfg->heartbeat_ticks * n->cfg->tick_ms;
    if (m->type != RAFT_MSG_HEARTBEAT || !r->rd_out || r->stage != STAGE_PERSIST ||
        zclock_mono() - r->persist_since_ms < every)
        return; /* a sync of usual length: the core's answer follows it soon enough */
    raft_status_t st;
    raft_status(r->raft, &st);
    if (st.role != RAFT_FOLLOWER || st.term != m->term || st.leader != m->from)
        return;
    raft_msg_t resp;
    memset(&resp, 0, sizeof resp);
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.group = r->group;
    resp.from = st.id;
    resp.to = m->from;
    resp.term = st.term;
    resp.index = st.last_index; /* the leader does not send a probe we hold again */
    resp.context = m->context;
    resp.context_len = m->context_len;
    transport_send(n->transport, &resp);
}

static void step_msg(void *arg, raft_msg_t *m)
{
    node_t *n = arg;
    replica_t *r = find_replica(n, m->group);
    if (!r || m->to != raft_id_of(n->cfg->id))
        return;
    if (is_quiesce(m)) {
        /* follow the leader to sleep only if it is our leader in our term */
        if (r->role == RAFT_FOLLOWER && r->leader == m->from && r->term == m->term) {
            r->quiet = true;
            raft_drop_trailing(r->raft); /* idle: give the entries behind the mark back */
        }
        return;
    }
    /* Heartbeats never wake a group: the leader's last round may trail its marker in the
     * same envelope, and a read round of an awake leader needs no ticking follower. */
    if (m->type != RAFT_MSG_HEARTBEAT && m->type != RAFT_MSG_HEARTBEAT_RESP) {
        r->quiet = false;
        r->idle_ticks = 0;
    }
    raft_step(r->raft, m);
    answer_heartbeat_for_core(n, r, m);
}

/* A leader puts an idle group to sleep and tells its followers. */
static void quiesce(node_t *n, replica_t *r)
{
    raft_status_t st;
    raft_status(r->raft, &st);
    r->quiet = true;
    /* the core's clock stops with its ticks: a lease counted on it would outlive real time */
    raft_lease_drop(r->raft);
    /* every follower is caught up (leader_idle): none needs the entries behind the mark */
    raft_drop_trailing(r->raft);
    for (size_t i = 0; i < st.n_peers; i++) {
        raft_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_HEARTBEAT;
        m.group = r->group;
        m.from = st.id;
        m.to = st.peers[i].id;
        m.term = st.term;
        m.commit = st.commit;
        m.context = (uint8_t *)&QUIESCE_CTX;
        m.context_len = 1;
        transport_send(n->transport, &m);
    }
}

/* ---- the loop ----------------------------------------------------------------------- */

/* Lease reads are released while the readies are built below; first make sure the ticks
 * the leases are counted in kept up with real time (lease_clock.h). */
static void check_leases(node_t *n)
{
    if (!n->lease_clock || lease_clock_ok(n->lease_clock, zclock_mono()))
        return;
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->role == RAFT_LEADER)
            raft_lease_drop(n->replicas[i]->raft);
}

/* Whether anything in the batch waits for its sync: entries, a term or vote (an item
 * with a replica), a snapshot mark, a DROP. A ready whose only change is the commit index
 * left an item that Raft does not need durable: it rides with the next batch that is
 * synced anyway instead of costing a sync, a log actor wake-up and an answer of its own
 * (and holding the writes that arrive meanwhile, `propose`). */
static bool batch_needs_sync(const persist_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const persist_item_t *it = &b->items[i];
        if (it->replica || it->n_entries || it->has_snap || it->drop)
            return true;
    }
    return false;
}

static void take_done(node_t *n, int i);

static int pump(node_t *n)
{
    n->n_pumps++;
    for (int i = 0; i < n->n_fsm; i++)
        take_done(n, i);
    check_leases(n);
    if (!n->batches_out)
        propose_held(n);
    for (size_t i = 0; i < n->n_replicas; i++)
        replica_pump(n->replicas[i]);
    /* One batch in flight: the log actor is busy with it (fdatasync), so what the groups
     * add meanwhile is gathered here and goes out as one batch when it answers, instead of
     * one message (and one PERSISTED answer, loop turn and envelope per peer) per turn. */
    if (n->batch && batch_needs_sync(n->batch) && n->batches_out == 0) {
        n->proposed_bytes = 0;
        n->batches_out++;
        n->n_batches++;
        n->n_items += n->batch->n;
        zsock_send(n->log, "sp", "PERSIST", n->batch);
        sockset_touch(n->socks, n->sk_log);
        n->batch = NULL;
    }
    for (int i = 0; i < n->n_fsm; i++)
        if (n->jobq[i]) {
            n->n_fsm_msgs++;
            zsock_send(n->fsm[i], "sp", "JOB", n->jobq[i]);
            sockset_touch(n->socks, n->sk_fsm[i]);
            n->jobq[i] = n->jobq_tail[i] = NULL;
        }
    uint64_t answered = replies_flush(n->replies, n->router);
    n->n_client_out += answered;
    if (answered)
        sockset_touch(n->socks, n->sk_router);
    transport_flush(n->transport);
    if (n->fatal) {
        zsys_error("node %" PRIu64 ": stopping after a fatal error", n->cfg->id);
        zstr_send(n->pipe, "FATAL");
        return -1;
    }
    if (n->left) {
        zstr_send(n->pipe, "LEFT");
        return -1;
    }
    return n->stopping ? -1 : 0;
}

/* A broker's requests of one loop turn (Frame{batch}); answered in batches (replies.h). */
static void handle_batch(node_t *n, zframe_t *id, Shoal__Frame *f)
{
    for (size_t i = 0; i < f->batch->n_frames; i++) {
        Shoal__Frame *e = NULL;
        char err[256];
        if (shoal_batch_element(f, i, &e, err, sizeof err) != 0)
            zsys_debug("node: dropped a bad batch element: %s", err);
        else if (e->body_case != SHOAL__FRAME__BODY_CLIENT_REQ)
            shoal_frame_free(&e); /* answers are for brokers */
        else
            handle_client(n, zframe_dup(id), e, true); /* takes both */
    }
    zframe_destroy(&id);
    shoal_frame_free(&f);
}

/* Bytes one loop turn reads from the ROUTER before it pumps and runs its timers: 256
 * messages of 1 MB writes were a turn of ~1 s of decoding on a busy host, past a
 * follower's election timeout, with the heartbeats waiting behind it. */
#define ROUTER_TURN_BYTES (8u << 20)

static int on_router(node_t *n, zsock_t *sock)
{
    size_t bytes = 0;
    for (int burst = 0; burst < 256 && (zsock_events(sock) & ZMQ_POLLIN); burst++) {
        if (bytes >= ROUTER_TURN_BYTES) {
            sockset_touch(n->socks, n->sk_router); /* the rest at the next turn */
            break;
        }
        zmsg_t *msg = zmsg_recv(sock);
        if (!msg)
            break;
        zframe_t *id = zmsg_pop(msg), *body = zmsg_pop(msg);
        zmsg_destroy(&msg);
        bytes += body ? zframe_size(body) : 0;
        Shoal__Frame *f = NULL;
        char err[256];
        if (!id || !body ||
            shoal_frame_decode(zframe_data(body), zframe_size(body), &f, err, sizeof err)) {
            if (body)
                zsys_debug("node: dropped a bad frame: %s", err);
            zframe_destroy(&id);
            zframe_destroy(&body);
            continue;
        }
        zframe_destroy(&body);
        if (f->body_case == SHOAL__FRAME__BODY_PEER &&
            !placement_same_cluster(n, f->peer->cluster_id, "peer messages")) {
            zframe_destroy(&id);
            shoal_frame_free(&f);
        } else if (f->body_case == SHOAL__FRAME__BODY_PEER) {
            if (f->peer->from_node < NODE_MAX_NODES)
                n->last_heard[f->peer->from_node] = zclock_mono();
            transport_receive(f->peer, step_msg, n);
            zframe_destroy(&id);
            shoal_frame_free(&f);
        } else if (f->body_case == SHOAL__FRAME__BODY_CLIENT_REQ) {
            n->n_client_in++;
            handle_client(n, id, f, false); /* takes id and f */
        } else if (f->body_case == SHOAL__FRAME__BODY_BATCH) {
            n->n_client_in++;
            handle_batch(n, id, f);
        } else if (f->body_case == SHOAL__FRAME__BODY_ADMIN_REQ) {
            handle_admin(n, id, f);
            zframe_destroy(&id);
            shoal_frame_free(&f);
        } else {
            zframe_destroy(&id);
            shoal_frame_free(&f);
        }
    }
    return pump(n);
}

static void free_batch(node_t *n, persist_batch_t **b_p)
{
    persist_batch_t *b = *b_p;
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].conf);
        if (b->items[i].drop_job) /* not handed to the compactor: the node stops or failed */
            placement_drop_release(n, b->items[i].drop_job);
    }
    free(b->items);
    free(b);
    *b_p = NULL;
}

/* A snapshot mark is durable in the log: what the fsm keeps for the entries it cut may go
 * at the replica's next mark (fsm_job_t.log_mark). A mark of a replica closed since, or of
 * an earlier replica of the group on this node, is found above the replica's own marks. */
static void log_marked(node_t *n, const persist_item_t *it)
{
    replica_t *r = node_find_replica(n, it->group);
    if (r && it->snap_index <= r->snap_index && it->snap_index > r->log_mark)
        r->log_mark = it->snap_index;
}

static void record_fsync(node_t *n, uint64_t us)
{
    int i = 0;
    while (i < FSYNC_BUCKETS - 1 && us > node_fsync_bounds_us[i])
        i++;
    n->fsync_hist[i]++;
}

static void log_answer(node_t *n, zsock_t *sock)
{
    char *cmd = NULL;
    void *ptr = NULL;
    if (zsock_recv(sock, "sp", &cmd, &ptr) == 0 && cmd && streq(cmd, "PERSISTED") && ptr) {
        persist_batch_t *b = ptr;
        n->batches_out--;
        if (b->rc) {
            zsys_error("node: the Raft log failed (%s); refusing to continue",
                       shoal_strerror(b->rc));
            n->fatal = true;
        } else {
            if (b->synced)
                record_fsync(n, b->sync_us);
            for (size_t i = 0; i < b->n; i++) {
                if (b->items[i].has_snap)
                    log_marked(n, &b->items[i]);
                if (b->items[i].replica)
                    replica_persisted(b->items[i].replica);
                if (b->items[i].drop_job) { /* the DROP is durable: the data may go */
                    n->snaps_out++;
                    node_send_compactor(n, b->items[i].drop_job);
                    b->items[i].drop_job = NULL;
                }
            }
        }
        free_batch(n, &b);
    }
    zstr_free(&cmd);
}

/* Every answer already queued is taken before the one pump: a pump per answer would cost
 * a loop turn, a batch, a job message and an envelope per peer each. */
#define ANSWER_BURST 64

static int on_log(node_t *n, zsock_t *sock)
{
    for (int k = 0; k < ANSWER_BURST && (k == 0 || (zsock_events(sock) & ZMQ_POLLIN)); k++)
        log_answer(n, sock);
    return pump(n);
}

/* The jobs fsm actor i finished, in its order: replies, events, applied indexes. */
static void take_done(node_t *n, int i)
{
    for (fsm_job_t *job = fsm_done_take(&n->fsm_done[i]), *next; job; job = next) {
        next = job->next;
        replica_fsm_done(job->replica, job);
    }
}

/* Every fsm actor's wake-ups are read here, ready or not (so each is marked). */
static int on_fsm(node_t *n)
{
    for (int i = 0; i < n->n_fsm; i++) {
        zsock_t *s = zactor_sock(n->fsm[i]);
        sockset_touch(n->socks, n->sk_fsm[i]);
        for (int k = 0; k < ANSWER_BURST && (zsock_events(s) & ZMQ_POLLIN); k++) {
            char *cmd = NULL;
            void *ptr = NULL;
            zsock_recv(s, "sp", &cmd, &ptr); /* "DONE" NULL: the jobs are in the queue */
            zstr_free(&cmd);
        }
    }
    return pump(n); /* takes the queues */
}

static int on_compactor(node_t *n, zsock_t *sock)
{
    char *cmd = NULL;
    void *ptr = NULL;
    if (zsock_recv(sock, "sp", &cmd, &ptr) == 0 && cmd && streq(cmd, "SNAPPED") && ptr) {
        snap_job_t *j = ptr;
        n->snaps_out--;
        replica_t *r = j->replica;
        if (j->drop) {
            if (j->rc) /* the folder stays; a later replica of the group reads it as the
                        * group's state at its applied index, which the log agrees with */
                zsys_warning("%s", j->err);
            placement_drop_done(n, j->group);
        } else if (!j->compact_only) {
            replica_snapped(r, j);
        } else {
            r->compacts_out--;
            if (j->rc)
                zsys_warning("%s", j->err);
            else
                events_raft_simple(n->events, SHOAL__RAFT_EVENT_TYPE__EV_COMPACTION, r->group,
                                   r->term, r->leader ? node_id_of(r->leader) : UINT64_MAX,
                                   "engine compacted (admin)");
        }
        free(j->dir);
        free(j);
    }
    zstr_free(&cmd);
    return pump(n);
}

static int on_pipe(node_t *n, zsock_t *sock)
{
    char *cmd = zstr_recv(sock);
    if (!cmd || streq(cmd, "$TERM"))
        n->stopping = true;
    zstr_free(&cmd);
    return n->stopping ? -1 : 0;
}

/* Whether a leader's group has nothing in flight and every follower has everything. */
static bool leader_idle(replica_t *r)
{
    if (r->n_props || r->held || r->reads_wait || r->reads_ready || r->rd_out)
        return false;
    raft_status_t st;
    raft_status(r->raft, &st);
    if (st.commit != st.last_index || r->applied < st.commit)
        return false;
    for (size_t i = 0; i < st.n_peers; i++)
        if (st.peers[i].match != st.last_index)
            return false;
    return true;
}

/* A leader whose ready waits for a slow fsync cannot get the core's heartbeats (they come
 * with the next ready), so the node sends the same heartbeat round itself: term and
 * min(match, commit) from the core's status, exactly what the core would send. Followers
 * keep their election timers reset however slow the disk is. */
static void heartbeat_for_core(node_t *n, replica_t *r, uint64_t now)
{
    uint64_t every = (uint64_t)n->cfg->heartbeat_ticks * n->cfg->tick_ms;
    if (!r->rd_out || r->stage != STAGE_PERSIST || now - r->persist_since_ms < every ||
        now - r->synth_hb_ms < every)
        return;
    raft_status_t st;
    raft_status(r->raft, &st);
    if (st.role != RAFT_LEADER)
        return;
    r->synth_hb_ms = now;
    for (size_t i = 0; i < st.n_peers; i++) {
        raft_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_HEARTBEAT;
        m.group = r->group;
        m.from = st.id;
        m.to = st.peers[i].id;
        m.term = st.term;
        m.commit = st.peers[i].match < st.commit ? st.peers[i].match : st.commit;
        transport_send(n->transport, &m);
    }
}

/* A quiet follower wakes when its leader's node went silent for an election timeout. */
static bool leader_silent(node_t *n, replica_t *r, uint64_t now)
{
    if (!r->leader || node_id_of(r->leader) >= NODE_MAX_NODES)
        return true;
    uint64_t timeout = (uint64_t)n->cfg->election_ticks * n->cfg->tick_ms;
    return now - n->last_heard[node_id_of(r->leader)] > timeout;
}

/* A quiet leader wakes when fewer than a quorum of its voters' nodes (itself included)
 * were heard from for an election timeout: its core's check-quorum then steps it down, so
 * status stops naming a leader that cannot serve; and such a leader does not quiesce. */
static bool quorum_silent(node_t *n, replica_t *r)
{
    uint64_t timeout = (uint64_t)n->cfg->election_ticks * n->cfg->tick_ms;
    raft_status_t st;
    raft_status(r->raft, &st);
    size_t heard = 0;
    for (size_t i = 0; i < st.conf.n_voters; i++)
        heard += node_heard_within(n, node_id_of(st.conf.voters[i]), timeout);
    return heard < st.conf.n_voters / 2 + 1;
}

static bool wakes(node_t *n, replica_t *r, uint64_t now)
{
    return r->role == RAFT_LEADER ? quorum_silent(n, r) : leader_silent(n, r, now);
}

static int on_tick(node_t *n)
{
    unsigned q = n->cfg->quiesce_ticks;
    uint64_t now = zclock_mono();
    if (n->lease_clock)
        lease_clock_tick(n->lease_clock, now);
    for (size_t i = 0; i < n->n_replicas; i++) {
        replica_t *r = n->replicas[i];
        if (r->quiet && wakes(n, r, now))
            r->quiet = false;
        if (r->quiet)
            continue;
        raft_tick(r->raft);
        heartbeat_for_core(n, r, now);
        if (!q || r->role != RAFT_LEADER)
            continue;
        r->idle_ticks = leader_idle(r) ? r->idle_ticks + 1 : 0;
        if (r->idle_ticks >= q && !quorum_silent(n, r))
            quiesce(n, r);
    }
    if (q) /* node liveness for quiet groups: something reaches every peer regularly */
        transport_keepalive(n->transport, (uint64_t)n->cfg->heartbeat_ticks * n->cfg->tick_ms * 2);
    return pump(n);
}

static void publish_progress(node_t *n)
{
    Shoal__ShardProgress sp[64], *spp[64];
    size_t k = 0;
    for (size_t i = 0; i < n->n_replicas; i++) {
        replica_t *r = n->replicas[i];
        if (r->commit != r->ev_commit || r->applied != r->ev_applied) {
            Shoal__RaftEvent ev = SHOAL__RAFT_EVENT__INIT;
            ev.type = SHOAL__RAFT_EVENT_TYPE__EV_APPLY_PROGRESS;
            ev.shard = r->group;
            ev.term = r->term;
            ev.leader_id = r->leader ? node_id_of(r->leader) : UINT64_MAX;
            ev.commit_index = r->commit;
            ev.apply_index = r->applied;
            ev.detail = (char *)"";
            events_raft(n->events, &ev);
            r->ev_commit = r->commit;
            r->ev_applied = r->applied;
        }
        if (r->role == RAFT_LEADER && r->group != SHOAL_META_GROUP) {
            shoal__shard_progress__init(&sp[k]);
            sp[k].shard = r->group;
            sp[k].applied_index = r->applied;
            spp[k] = &sp[k];
            if (++k == 64) {
                events_progress(n->events, spp, k);
                k = 0;
            }
        }
    }
    if (k)
        events_progress(n->events, spp, k);
}

static int on_metrics(node_t *n)
{
    Shoal__NodeMetrics m;
    uint64_t bounds[FSYNC_BUCKETS], counts[FSYNC_BUCKETS];
    Shoal__PeerProgress pp[NODE_MAX_NODES], *ppp[NODE_MAX_NODES];
    fill_metrics(n, &m, bounds, counts, pp, ppp);
    Shoal__RaftEvent ev = SHOAL__RAFT_EVENT__INIT;
    ev.type = SHOAL__RAFT_EVENT_TYPE__EV_METRICS;
    ev.metrics = &m;
    ev.endpoint = n->cfg->endpoint;
    ev.detail = (char *)"";
    events_raft(n->events, &ev);
    publish_progress(n);
    if (n->debug) {
        size_t quiet = 0;
        for (size_t i = 0; i < n->n_replicas; i++) {
            replica_t *r = n->replicas[i];
            quiet += r->quiet;
            if (!r->quiet && n->cfg->quiesce_ticks)
                zsys_debug("node: shard %u awake: role %s, idle %" PRIu64 " ticks, applied %" PRIu64
                           ", commit %" PRIu64,
                           r->group, raft_role_name(r->role), r->idle_ticks, r->applied, r->commit);
        }
        zsys_debug("node %" PRIu64 ": %zu of %zu replicas quiet, %" PRIu64 " requests", n->cfg->id,
                   quiet, n->n_replicas, n->requests);
    }
    return 0;
}

static int on_sweep(node_t *n)
{
    uint64_t now = zclock_mono();
    for (size_t i = 0; i < n->n_replicas; i++) {
        replica_expire(n->replicas[i], now);
        replica_maybe_snapshot(n->replicas[i], false);
    }
    placement_sweep(n);
    return pump(n);
}

/* ---- start and stop ----------------------------------------------------------------- */

static int mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* DATA/LOCK: an exclusive flock(2) on it, taken before anything else reads or writes the
 * folder and held (the descriptor open) until the node actor ends, so that a second process
 * given the same folder stops before its recovery touches the Raft log or the engines of the
 * first (it would cut a "torn tail" the live node is still writing). The holder's pid is
 * written into the file for the message of the one refused. The kernel drops the lock when
 * the process dies, however it dies. Returns the descriptor, or -1 with err set. */
static int lock_data_dir(const node_config_t *c, char *err, size_t errlen)
{
    char path[1100];
    if (mkdirs(c->data_dir) != 0) {
        snprintf(err, errlen, "%.300s: cannot create: %s", c->data_dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/LOCK", c->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%.300s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, pid, sizeof pid - 1, 0) : -1;
        close(fd);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e != EWOULDBLOCK)
            snprintf(err, errlen, "%.300s: cannot lock: %s", path, strerror(e));
        else
            snprintf(err, errlen,
                     "data folder %.300s is in use by another process%s%s%s (it holds the lock "
                     "on LOCK there); stop that one first, or give this node its own data_dir",
                     c->data_dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* the pid only helps a message: a failure to write it is not a reason to stop */
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        zsys_warning("node %" PRIu64 ": %s: cannot write the pid: %s", c->id, path,
                     strerror(errno));
    return fd;
}

/* DATA/removed: a shard map took this node out of the cluster (placement.c). */
static int refuse_removed(const node_config_t *c, char *err, size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/removed", c->data_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long version = 0;
    if (fscanf(f, "%llu", &version) != 1)
        version = 0;
    fclose(f);
    if (c->join)
        snprintf(err, errlen,
                 "node %llu was removed from the cluster (shard map version %llu); to bring id "
                 "%llu back, empty %.300s and register it again with `shoalctl add-node`",
                 (unsigned long long)c->id, version, (unsigned long long)c->id, c->data_dir);
    else /* started empty, a bootstrap id would make up bootstrap replicas of its own */
        snprintf(err, errlen,
                 "node %llu was removed from the cluster (shard map version %llu); a bootstrap "
                 "node comes back under a new id: an empty data_dir, node/join = 1, and "
                 "`shoalctl add-node` of that id",
                 (unsigned long long)c->id, version);
    return -1;
}

/* DATA/node.id names the node that owns the directory; another node refuses it. */
static int claim_data_dir(const node_config_t *c, char *err, size_t errlen)
{
    char path[1100];
    if (mkdirs(c->data_dir) != 0) {
        snprintf(err, errlen, "%.300s: cannot create: %s", c->data_dir, strerror(errno));
        return -1;
    }
    if (refuse_removed(c, err, errlen) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/node.id", c->data_dir);
    FILE *f = fopen(path, "r");
    struct stat st;
    /* empty: a claim cut short by a power cut before its sync (nodes before 2026-11-27 did
     * not sync it); the folder is this node's to claim again */
    if (f && fstat(fileno(f), &st) == 0 && st.st_size == 0) {
        fclose(f);
        f = NULL;
    }
    if (f) {
        unsigned long long id = 0;
        int ok = fscanf(f, "%llu", &id) == 1;
        fclose(f);
        if (!ok || id != c->id) {
            snprintf(err, errlen, "%.300s belongs to node %llu, not node %llu", c->data_dir, id,
                     (unsigned long long)c->id);
            return -1;
        }
        return 0;
    }
    f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%.300s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    /* synced with its folder: an empty or missing node.id after a power cut would let
     * another node's config take this folder, or stop this node from starting */
    int bad = fprintf(f, "%llu\n", (unsigned long long)c->id) < 0 || fflush(f) != 0 ||
              fdatasync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rlog_io_posix()->sync_dir(NULL, c->data_dir) != 0) {
        snprintf(err, errlen, "%.300s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int add_replica(node_t *n, uint32_t group, lsm_t *lsm, char *err, size_t errlen)
{
    replica_t *r = replica_open_with(n, group, lsm, err, errlen);
    if (!r)
        return -1;
    replica_t **nr = realloc(n->replicas, (n->n_replicas + 1) * sizeof *nr);
    if (!nr) {
        replica_close(&r);
        return -1;
    }
    n->replicas = nr;
    n->replicas[n->n_replicas++] = r;
    return 0;
}

/* Exported for placement.c and meta.c (replica.h). */
replica_t *node_find_replica(node_t *n, uint64_t group)
{
    return find_replica(n, group);
}

int node_add_replica(node_t *n, uint32_t group, char *err, size_t errlen)
{
    return add_replica(n, group, NULL, err, errlen);
}

int node_add_replica_with(node_t *n, uint32_t group, lsm_t *lsm, char *err, size_t errlen)
{
    return add_replica(n, group, lsm, err, errlen);
}

void node_send_admin(node_t *n, zframe_t *identity, Shoal__AdminResponse *resp)
{
    send_admin(n, identity, resp);
}

static int start(node_t *n, char *err, size_t errlen)
{
    node_config_t *c = n->cfg;
    if (claim_data_dir(c, err, errlen))
        return -1;
    n->router = zsock_new(ZMQ_ROUTER);
    if (!(n->replies = replies_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    zsock_set_rcvhwm(n->router, 100000);
    zsock_set_sndhwm(n->router, 100000);
    if (zsock_bind(n->router, "%s", c->endpoint) < 0) {
        snprintf(err, errlen, "cannot bind endpoint %s: %s", c->endpoint, zmq_strerror(errno));
        return -1;
    }
    if (!(n->events = events_new(c->pub_endpoint, c->id, err, errlen)))
        return -1;
    char logdir[1100];
    snprintf(logdir, sizeof logdir, "%s/raftlog", c->data_dir);
    /* zeros written 1 MiB ahead: a commit's fdatasync then writes the data blocks only,
     * not the inode as well (the file's size and block map stay unchanged) */
    rlog_options_t lo = {.prealloc_bytes = 1u << 20};
    /* test only (failpoint.h): file data held in memory until synced, a power-cut model */
    const rlog_io_t *io = unsynced_hold_on() ? rlog_io_hold() : NULL;
    if (io)
        zsys_warning("node %" PRIu64 ": %s=hold: unsynced file data is kept in memory (a test "
                     "mode: a kill -9 loses it as a power cut would)",
                     c->id, UNSYNCED_ENV);
    else if (getenv(UNSYNCED_ENV))
        zsys_warning("node %" PRIu64 ": %s=%s ignored (the one mode is \"hold\")", c->id,
                     UNSYNCED_ENV, getenv(UNSYNCED_ENV));
    if (rlog_open(logdir, io, &lo, &n->rlog, err, errlen) != 0)
        return -1;
    if (err[0]) /* a torn tail was cut: worth a line in the log */
        zsys_warning("node %" PRIu64 ": %s", c->id, err);
    err[0] = '\0';
    if (lsm_pool_new((int)c->engine_threads, &n->lsm_pool) != 0) {
        snprintf(err, errlen, "cannot start %u engine threads", c->engine_threads);
        return -1;
    }
    n->log_args = (log_args_t){n->rlog, c->fsync, c->fsync_delay_ms};
    n->log = zactor_new(log_actor, &n->log_args);
    n->compactor = zactor_new(compactor_actor, NULL);
    n->n_fsm = (int)node_config_apply_threads(c);
    for (int i = 0; i < n->n_fsm; i++) {
        pthread_mutex_init(&n->fsm_done[i].lock, NULL);
        n->fsm_args[i].done = &n->fsm_done[i];
        n->fsm[i] = zactor_new(fsm_actor, &n->fsm_args[i]);
    }
    if (!(n->transport = transport_new(c))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* the replicas the newest known shard map places here (bootstrap: the config's) */
    if (placement_init(n, err, errlen) != 0)
        return -1;
    const Shoal__ShardMap *m = n->place->map;
    placement_connect(n);
    for (size_t i = 0; i < m->n_shards; i++)
        if (placement_hosts(n, m->shards[i]->id) && !split_node_host(n, m->shards[i]) &&
            add_replica(n, m->shards[i]->id, NULL, err, errlen))
            return -1;
    if (placement_hosts(n, SHOAL_META_GROUP) && add_replica(n, SHOAL_META_GROUP, NULL, err, errlen))
        return -1;
    if (c->join && n->n_replicas == 0)
        zsys_info("node %" PRIu64 ": joining: waiting for `shoalctl add-node` to place it in "
                  "the shard map",
                  c->id);
    if (c->read_mode == NODE_READ_LEASE &&
        !(n->lease_clock =
              lease_clock_new(c->tick_ms, c->election_ticks, node_config_lease_margin(c),
                              c->max_clock_drift_ms, zclock_mono()))) {
        snprintf(err, errlen, "raft/max_clock_drift_ms leaves no lease");
        return -1;
    }
    return 0;
}

static int setup_loop(node_t *n)
{
    if (!(n->socks = sockset_new()))
        return -1;
    n->sk_pipe = sockset_add(n->socks, n->pipe);
    n->sk_router = sockset_add(n->socks, n->router);
    n->sk_log = sockset_add(n->socks, zactor_sock(n->log));
    n->sk_compactor = sockset_add(n->socks, zactor_sock(n->compactor));
    bool ok = n->sk_pipe >= 0 && n->sk_router >= 0 && n->sk_log >= 0 && n->sk_compactor >= 0;
    for (int i = 0; i < n->n_fsm; i++)
        ok = (n->sk_fsm[i] = sockset_add(n->socks, zactor_sock(n->fsm[i]))) >= 0 && ok;
    return ok ? 0 : -1;
}

typedef struct {
    uint64_t every, next; /* ms */
    int (*fn)(node_t *n);
} node_timer_t;

/* Runs the handlers of the sockets with input, in this order; -1 stops the loop. One
 * on_fsm reads every fsm actor's socket, so one pump takes all their answers. */
static int serve_sockets(node_t *n)
{
    struct {
        int i;
        int (*fn)(node_t *n, zsock_t *sock);
        zsock_t *sock;
    } h[] = {{n->sk_pipe, on_pipe, n->pipe},
             {n->sk_router, on_router, n->router},
             {n->sk_log, on_log, zactor_sock(n->log)},
             {n->sk_compactor, on_compactor, zactor_sock(n->compactor)}};
    for (size_t j = 0; j < sizeof h / sizeof *h; j++)
        if (sockset_ready(n->socks, h[j].i) && h[j].fn(n, h[j].sock) < 0)
            return -1;
    for (int i = 0; i < n->n_fsm; i++)
        if (sockset_ready(n->socks, n->sk_fsm[i]))
            return on_fsm(n);
    return 0;
}

/* The node's loop: its sockets (sockset.h) and three timers, until a handler says stop.
 * SIGTERM does not end it: shoald's main turns it into $TERM on the pipe. */
static void run_loop(node_t *n)
{
    uint64_t now = zclock_mono();
    node_timer_t t[3] = {{n->cfg->tick_ms, 0, on_tick},
                         {SWEEP_MS, 0, on_sweep},
                         {n->cfg->metrics_ms, 0, on_metrics}};
    for (int i = 0; i < 3; i++)
        t[i].next = now + t[i].every;
    for (;;) {
        uint64_t due = t[0].next;
        for (int i = 1; i < 3; i++)
            due = t[i].next < due ? t[i].next : due;
        now = zclock_mono();
        int rc = sockset_wait(n->socks, due > now ? (int)(due - now) : 0);
        if (rc < 0 || (rc > 0 && serve_sockets(n) < 0))
            return;
        now = zclock_mono();
        for (int i = 0; i < 3; i++) {
            if (now < t[i].next)
                continue;
            t[i].next = now + t[i].every;
            if (i == 0) /* a use left unmarked costs at most a tick (sockset.h) */
                sockset_touch_all(n->socks);
            if (t[i].fn(n) < 0)
                return;
        }
    }
}

static uint64_t jobs_out(node_t *n)
{
    uint64_t j = n->batches_out + n->snaps_out;
    for (size_t i = 0; i < n->n_replicas; i++)
        j += n->replicas[i]->jobs_out;
    return j;
}

/* At stop: the jobs fsm actor i finished are freed, not answered. */
static void drop_done(node_t *n, int i)
{
    for (fsm_job_t *j = fsm_done_take(&n->fsm_done[i]), *next; j; j = next) {
        next = j->next;
        ((replica_t *)j->replica)->jobs_out--;
        if (j->lsnap)
            lsm_snapshot_release(((replica_t *)j->replica)->lsm, &j->lsnap);
        fsm_job_destroy(&j);
    }
}

/* Waits (bounded) for the actors to hand back every job, so nothing is freed under them. */
static void drain(node_t *n)
{
    zpoller_t *p = zpoller_new(zactor_sock(n->log), zactor_sock(n->compactor), NULL);
    for (int i = 0; i < n->n_fsm; i++)
        zpoller_add(p, zactor_sock(n->fsm[i]));
    /* The SIGTERM that stops shoald set zsys_interrupted, and a poller that is not nonstop
     * then returns at once without polling: the drain spun for its whole bound and never
     * took the answers waiting on the pipes (LeakSanitizer: the log batch out at stop). */
    zpoller_set_nonstop(p, true);
    int64_t until = zclock_mono() + 5000;
    while (jobs_out(n) && zclock_mono() < until) {
        for (int i = 0; i < n->n_fsm; i++)
            drop_done(n, i);
        zsock_t *s = zpoller_wait(p, 100);
        if (!s)
            continue;
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv(s, "sp", &cmd, &ptr) != 0 || !cmd || !ptr) {
            zstr_free(&cmd);
            continue;
        }
        if (streq(cmd, "PERSISTED")) {
            persist_batch_t *b = ptr;
            n->batches_out--;
            free_batch(n, &b);
        } else if (streq(cmd, "SNAPPED")) {
            snap_job_t *j = ptr;
            n->snaps_out--;
            free(j->dir);
            free(j);
        }
        zstr_free(&cmd);
    }
    zpoller_destroy(&p);
    /* what is still out is not freed (an actor may hold it): LeakSanitizer names it */
    if (jobs_out(n))
        zsys_warning("node: stopping with work still out after 5 s: %" PRIu64 " log batches, "
                     "%" PRIu64 " snapshots, %" PRIu64 " jobs in all",
                     (uint64_t)n->batches_out, (uint64_t)n->snaps_out, jobs_out(n));
}

/* One line of what the node did since it started, for the cost of a write in node cycles
 * (tools/cluster_cpu_bench.sh divides it by the operations; docs/BENCHMARKS.md). */
static void log_counters(node_t *n)
{
    if (!n->transport)
        return;
    uint64_t env, msgs;
    transport_counts(n->transport, &env, &msgs);
    zsys_info("node %" PRIu64 ": work counters: requests %" PRIu64 " pumps %" PRIu64
              " readies %" PRIu64 " rd_leader %" PRIu64 " rd_nosync %" PRIu64
              " log_batches %" PRIu64 " log_items %" PRIu64 " fsm_msgs %" PRIu64
              " fsm_jobs %" PRIu64 " envelopes %" PRIu64 " msgs %" PRIu64 " client_in %" PRIu64
              " client_out %" PRIu64 " resends_joined %" PRIu64,
              n->cfg->id, n->requests, n->n_pumps, n->n_readies, n->n_rd_leader, n->n_rd_nosync,
              n->n_batches, n->n_items, n->n_fsm_msgs, n->n_fsm_jobs, env, msgs, n->n_client_in,
              n->n_client_out, n->n_resends_joined);
}

static void stop(node_t *n)
{
    log_counters(n);
    if (n->events)
        events_raft_simple(n->events, SHOAL__RAFT_EVENT_TYPE__EV_NODE_DOWN, 0, 0, UINT64_MAX,
                           "node stopping");
    if (n->log)
        drain(n);
    zactor_destroy(&n->log);
    zactor_destroy(&n->compactor);
    for (int i = 0; i < n->n_fsm; i++) {
        zactor_destroy(&n->fsm[i]);
        drop_done(n, i); /* finished after the drain's bound: freed once the actor is gone */
        pthread_mutex_destroy(&n->fsm_done[i].lock);
    }
    if (n->batch)
        free_batch(n, &n->batch);
    for (size_t i = 0; i < n->n_replicas; i++)
        replica_close(&n->replicas[i]);
    free(n->replicas);
    rlog_destroy(&n->rlog);
    placement_destroy(n);
    ring_destroy(&n->key_ring);
    split_node_destroy(n);
    lsm_pool_destroy(&n->lsm_pool); /* after the last engine closed */
    transport_destroy(&n->transport);
    lease_clock_destroy(&n->lease_clock);
    events_destroy(&n->events);
    if (n->replies && n->router) /* answers given while draining */
        replies_flush(n->replies, n->router);
    replies_destroy(&n->replies);
    zsock_destroy(&n->router);
    sockset_destroy(&n->socks);
}

void node_actor(zsock_t *pipe, void *args)
{
    node_t n;
    memset(&n, 0, sizeof n);
    n.cfg = args;
    n.pipe = pipe;
    n.debug = streq(n.cfg->log_level, "debug");
    zsock_signal(pipe, 0);
    char err[512] = "";
    /* the folder's lock first: nothing of the folder is read or written without it */
    int dir_lock = lock_data_dir(n.cfg, err, sizeof err);
    if (dir_lock < 0 || start(&n, err, sizeof err) != 0) {
        zsys_error("node %" PRIu64 ": cannot start: %s", n.cfg->id, err[0] ? err : "out of memory");
        zstr_send(pipe, "FAILED");
        stop(&n);
        if (dir_lock >= 0)
            close(dir_lock); /* after stop: the log and engines are closed */
        /* wait for $TERM so the owner's zactor_destroy returns */
        char *cmd = zstr_recv(pipe);
        zstr_free(&cmd);
        return;
    }
    Shoal__RaftEvent up = SHOAL__RAFT_EVENT__INIT;
    up.type = SHOAL__RAFT_EVENT_TYPE__EV_NODE_UP;
    up.leader_id = UINT64_MAX; /* no group's event: no leader (null in JSON) */
    up.endpoint = n.cfg->endpoint;
    up.detail = (char *)"node started";
    events_raft(n.events, &up);
    zsys_info("node %" PRIu64 ": serving %zu replicas on %s, events on %s, apply threads %d",
              n.cfg->id, n.n_replicas, n.cfg->endpoint, n.cfg->pub_endpoint, n.n_fsm);
    zstr_send(pipe, "READY");
    if (setup_loop(&n) == 0)
        run_loop(&n);
    else {
        zsys_error("node %" PRIu64 ": cannot poll its sockets", n.cfg->id);
        n.fatal = true;
        zstr_send(pipe, "FATAL");
    }
    bool fatal = n.fatal;
    stop(&n);
    close(dir_lock); /* after stop: the log and engines are closed */
    if (fatal || !n.stopping) {
        char *cmd = zstr_recv(pipe); /* wait for $TERM */
        zstr_free(&cmd);
    }
}
