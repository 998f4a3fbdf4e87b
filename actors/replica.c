/* replica.c - one Raft group's replica inside the node actor: recovery from the shared log
 * and the engine, the stages of a ready batch, snapshot files, and the waiting requests.
 * See replica.h for the stages and node_int.h for the thread model.
 *
 * Invariants:
 *  - nothing the core asked to persist is acknowledged to a peer (msgs_after_persist) or
 *    applied before the log actor reported it durable;
 *  - a committed entry reaches the fsm before any linearizable read whose read index
 *    covers it (same fsm actor, FIFO), and a received snapshot is ingested into the engine
 *    before the log forgets the entries it replaces;
 *  - the log is marked "snapshot at i" (and old segments deleted) only after the engine
 *    holds everything up to i durably (compactor flush).
 */
#define _GNU_SOURCE /* nftw */
#include "actors/replica.h"

#include "actors/placement.h"
#include "actors/rlog_io_hold.h"
#include "actors/split_node.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/error.h"
#include "engine/lsm/env_hold.h"
#include "proto/codec.h"

#define MAX_PROPOSALS 8192
#define SNAP_CHUNK (256u << 10)

/* ---- snapshot files (the core's snapshot_io) ---------------------------------------- */

static void snap_path(const replica_t *r, uint64_t index, char *out, size_t cap)
{
    snprintf(out, cap, "%s/snap-%" PRIu64, r->snapdir, index);
}

static int file_checksum(const char *path, uint64_t *size, uint64_t *sum)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return SHOAL_ENOTFOUND;
    XXH3_state_t *h = XXH3_createState();
    uint8_t *buf = malloc(1 << 20);
    size_t n;
    *size = 0;
    XXH3_64bits_reset(h);
    while (buf && (n = fread(buf, 1, 1 << 20, f)) > 0) {
        XXH3_64bits_update(h, buf, n);
        *size += n;
    }
    *sum = XXH3_64bits_digest(h);
    int rc = buf && !ferror(f) ? 0 : SHOAL_EIO;
    XXH3_freeState(h);
    free(buf);
    fclose(f);
    return rc;
}

/* Leader side: bytes of the snapshot file at index. */
/* Whether the newest mark has a snapshot file (marks only make the engine durable). */
static bool mark_has_file(const replica_t *r)
{
    return r->snap_file != 0 && r->snap_file == r->snap_index;
}

static int64_t snap_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                         uint64_t *total, uint64_t *checksum)
{
    replica_t *r = ctx;
    r->snap_served_ms = zclock_mono();
    /* The newest mark has no file (or it is a split target's base): export one now. The
     * core asks again and sends the file once it is marked. */
    if (!mark_has_file(r))
        replica_maybe_snapshot(r, true);
    if (index != r->snap_file || r->snap_file == 0)
        return SHOAL_ENOTFOUND;
    char path[1200];
    snap_path(r, index, path, sizeof path);
    if (r->snap_size == 0 && file_checksum(path, &r->snap_size, &r->snap_checksum) != 0)
        return SHOAL_ENOTFOUND;
    *total = r->snap_size;
    *checksum = r->snap_checksum;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SHOAL_ENOTFOUND;
    ssize_t n = offset >= r->snap_size ? 0 : pread(fd, buf, cap, (off_t)offset);
    close(fd);
    return n < 0 ? SHOAL_EIO : n;
}

/* Chunk copies queued for the fsm actor at most (512 x 256 KiB). The pacer's second of
 * credit lets ~100 MiB arrive in ~0.3 s, faster than the ingest takes it: the queue peaked
 * at 85-157 chunks for a 113.5 MiB snapshot (logged as "queue peak"); a cap of 64 made
 * every such install fall back to the file. With the rate set very high the queue would
 * otherwise hold a whole snapshot in memory. A chunk not sent leaves a gap, so the install
 * reads the file instead. */
#define INGEST_QUEUE_MAX 512

/* Hands a chunk to the fsm as well, which ingests the snapshot as it arrives (do_ingest);
 * a chunk it cannot take only means the install reads the file instead. */
static void ingest_chunk(replica_t *r, const raft_snapshot_chunk_t *c)
{
    if (r->ingest_out >= INGEST_QUEUE_MAX)
        return;
    fsm_job_t *job = calloc(1, sizeof *job);
    if (!job || (c->len && !(job->chunk = malloc(c->len)))) {
        free(job);
        return;
    }
    if (c->len)
        memcpy(job->chunk, c->data, c->len);
    job->type = FSM_INGEST;
    job->snap_index = c->meta.index;
    job->chunk_len = c->len;
    job->chunk_off = c->offset;
    job->chunk_last = c->last;
    r->ingest_out++;
    if (r->ingest_out > r->ingest_peak)
        r->ingest_peak = r->ingest_out;
    replica_send_job(r, job);
}

/* Follower side: chunks arrive in order into snapdir/incoming. */
static int snap_write(void *ctx, const raft_snapshot_chunk_t *c)
{
    replica_t *r = ctx;
    char path[1200];
    snprintf(path, sizeof path, "%s/incoming", r->snapdir);
    if (c->offset == 0) {
        if (r->in_fd >= 0)
            close(r->in_fd);
        r->in_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        r->in_written = 0;
        r->in_started_ms = zclock_mono();
        r->ingest_peak = 0;
    }
    if (r->in_fd < 0 || c->offset != r->in_written)
        return SHOAL_EINVAL;
    if (c->len && pwrite(r->in_fd, c->data, c->len, (off_t)c->offset) != (ssize_t)c->len)
        return SHOAL_EIO;
    r->in_written += c->len;
    if (!c->last) {
        ingest_chunk(r, c);
        return 0;
    }
    close(r->in_fd);
    r->in_fd = -1;
    uint64_t size, sum;
    if (r->in_written != c->total_size || file_checksum(path, &size, &sum) != 0 ||
        sum != c->checksum) {
        zsys_warning("shard %u: snapshot at %" PRIu64 " failed its checksum; refused", r->group,
                     c->meta.index);
        return SHOAL_ECORRUPT;
    }
    ingest_chunk(r, c);
    uint64_t now = zclock_mono();
    zsys_info("shard %u: snapshot at %" PRIu64 " received, %.1f MiB in %" PRIu64
              " ms (ingest queue peak %u chunks)",
              r->group, c->meta.index, (double)size / (1 << 20), now - r->in_started_ms,
              r->ingest_peak);
    r->in_started_ms = now;
    return 0;
}

/* ---- open / close ------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : SHOAL_EIO;
}

static int open_lsm(const node_t *n, const char *dir, lsm_t **lsm, char *err, size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/lsm", dir);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = path;
    o.write_buffer_size = (size_t)n->cfg->lsm_buffer_kb << 10;
    o.block_cache_size = (size_t)n->cfg->lsm_cache_kb << 10;
    o.sync = LSM_SYNC_NONE; /* the Raft log is the write-ahead log of the replica */
    o.pool = n->lsm_pool;
    if (unsynced_hold_on()) /* test only (failpoint.h): the power-cut model of the files */
        o.env = lsm_env_hold();
    return lsm_open(&o, lsm, err, errlen);
}

void replica_group_dir(const node_t *node, uint32_t group, char *out, size_t cap)
{
    if (group == SHOAL_META_GROUP)
        snprintf(out, cap, "%s/meta", node->cfg->data_dir);
    else
        snprintf(out, cap, "%s/shard-%u", node->cfg->data_dir, group);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int replica_delete_tree(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : SHOAL_EIO;
}

int replica_delete_dir(const char *dir)
{
    char dead[1200];
    snprintf(dead, sizeof dead, "%s.deleted", dir);
    if (rename(dir, dead) != 0 && (errno != ENOENT || access(dead, F_OK) != 0))
        return errno == ENOENT ? 0 : SHOAL_EIO; /* ENOENT: nothing left to delete */
    return replica_delete_tree(dead);
}

static int make_dirs(const char *dir, const char *snapdir, char *err, size_t errlen)
{
    if (mkdir_p(dir) == 0 && mkdir_p(snapdir) == 0)
        return 0;
    snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
    return SHOAL_EIO;
}

int replica_open_engine(node_t *node, uint32_t group, lsm_t **lsm, char *err, size_t errlen)
{
    char dir[1024], snapdir[1100];
    replica_group_dir(node, group, dir, sizeof dir);
    snprintf(snapdir, sizeof snapdir, "%s/snap", dir);
    int rc = make_dirs(dir, snapdir, err, errlen);
    return rc ? rc : open_lsm(node, dir, lsm, err, errlen);
}

/* Marks the log of a group whose first state came from elsewhere (a split target's cut
 * data, split.h) as starting after base, with base's configuration, before its first
 * entry is written (items of a batch are written in order). */
static void log_base(replica_t *r, const raft_snapshot_meta_t *base)
{
    persist_item_t *it = node_batch_item(r->node);
    if (!it)
        return;
    it->group = r->group;
    it->has_snap = true;
    it->snap_index = base->index;
    it->snap_term = base->term;
    it->conf = transport_conf_encode(&base->conf, &it->conf_len);
}

/* Everything the core needs from disk: hard state, snapshot mark, entries after it. */
static int restore_raft(replica_t *r, uint64_t applied, char *err, size_t errlen)
{
    node_t *n = r->node;
    raft_restore_t rs;
    memset(&rs, 0, sizeof rs);
    uint64_t ids[NODE_MAX_NODES];
    const uint8_t *conf = NULL;
    size_t conf_len = 0;
    /* a replica opened at runtime reads the log while the log actor may write it */
    rlog_lock(n->rlog);
    if (rlog_has_group(n->rlog, r->group)) {
        rlog_hardstate(n->rlog, r->group, &rs.hard_state.term, &rs.hard_state.vote,
                       &rs.hard_state.commit);
        rlog_snapshot(n->rlog, r->group, &rs.snapshot.index, &rs.snapshot.term, &conf, &conf_len);
    }
    if (conf_len && transport_conf_decode(conf, conf_len, &rs.snapshot.conf) != 0) {
        rlog_unlock(n->rlog);
        snprintf(err, errlen, "shard %u: configuration in the log does not decode", r->group);
        return SHOAL_ECORRUPT;
    }
    if (!conf_len && split_node_restore(r, &rs)) {
        /* a split target (based at a snapshot of its cut data) or a shard added later */
    } else if (!conf_len) { /* bootstrap: the placement of CONTRACTS.md */
        /* a node that gave the group away once (retired) is no bootstrap member any more:
         * a replica placed here again starts empty like any added one */
        size_t k = n->cfg->join || placement_retired(n, r->group)
                       ? 0
                       : node_config_replicas(n->cfg, r->group, ids, NODE_MAX_NODES);
        bool member = false;
        for (size_t i = 0; i < k; i++)
            member |= ids[i] == n->cfg->id;
        /* a replica placed here by a map change joins with an empty configuration and
         * learns it from the group's leader (placement.c) */
        for (size_t i = 0; member && i < k; i++)
            rs.snapshot.conf.voters[i] = raft_id_of(ids[i]);
        rs.snapshot.conf.n_voters = member ? k : 0;
    }
    if (applied < rs.snapshot.index) {
        rlog_unlock(n->rlog);
        snprintf(err, errlen,
                 "shard %u: engine applied index %" PRIu64 " is behind the log's snapshot %" PRIu64,
                 r->group, applied, rs.snapshot.index);
        return SHOAL_ECORRUPT;
    }
    uint64_t first = rs.snapshot.index + 1, last = rlog_last_index(n->rlog, r->group);
    if (last < rs.snapshot.index)
        last = rs.snapshot.index; /* a split target's base, before its first entry */
    size_t cnt = last >= first ? (size_t)(last - first + 1) : 0;
    raft_entry_t *ents = calloc(cnt ? cnt : 1, sizeof *ents);
    int rc = ents ? 0 : SHOAL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < cnt; i++) {
        uint8_t et;
        rc = rlog_entry(n->rlog, r->group, first + i, &ents[i].term, &et, &ents[i].data,
                        &ents[i].len);
        ents[i].index = first + i;
        ents[i].type = (raft_entry_type_t)et;
    }
    rlog_unlock(n->rlog);
    if (applied > last)
        applied = last > rs.snapshot.index ? last : rs.snapshot.index;
    if (rs.hard_state.commit < applied)
        rs.hard_state.commit = applied;
    if (rs.hard_state.commit > last)
        rs.hard_state.commit = last;
    rs.entries = ents;
    rs.n_entries = cnt;
    rs.applied = applied;
    raft_config_t c;
    raft_config_default(&c);
    c.id = raft_id_of(n->cfg->id);
    c.group = r->group;
    c.election_tick = n->cfg->election_ticks;
    c.heartbeat_tick = n->cfg->heartbeat_ticks;
    c.prevote = n->cfg->prevote;
    c.check_quorum = n->cfg->check_quorum;
    c.lease_read = n->cfg->read_mode == NODE_READ_LEASE;
    c.lease_margin = node_config_lease_margin(n->cfg);
    c.snapshot_chunk_bytes = SNAP_CHUNK;
    /* a follower that was away for a few seconds of writes catches up by appends, not by
     * a whole-shard snapshot (FINDINGS.md #1); the durable log is still truncated at the
     * snapshot, these entries live only in the core's memory */
    c.snapshot_trailing_entries = n->cfg->snapshot_trailing;
    c.snapshot_trailing_bytes = n->cfg->snapshot_trail_bytes;
    c.seed = zclock_usecs() ^ ((uint64_t)r->group << 32) ^ n->cfg->id;
    c.snapshot_io = (raft_snapshot_io_t){r, snap_read, snap_write};
    int e = 0;
    if (rc == 0 && !(r->raft = raft_new(&c, &rs, &e)))
        rc = e ? e : SHOAL_EINVAL;
    if (rc == 0 && !conf_len && rs.snapshot.index)
        log_base(r, &rs.snapshot); /* a split target: its log starts after the copied data */
    if (rc)
        snprintf(err, errlen, "shard %u: Raft restore failed: %s", r->group, shoal_strerror(rc));
    /* the changes of the entries up to the applied index (committed, not applied again)
     * back into the window, so that `changes` serves what the log still holds */
    if (rc == 0 && (e = fsm_group_refill(r->fg, ents, cnt, rs.snapshot.index, applied, last)))
        zsys_warning("shard %u: change window not refilled from the log: %s", r->group,
                     shoal_strerror(e));
    for (size_t i = 0; i < cnt; i++)
        free(ents[i].data);
    free(ents);
    r->submitted = r->applied = applied;
    r->durable = last > rs.snapshot.index ? last : rs.snapshot.index;
    r->commit = rs.hard_state.commit;
    r->term = rs.hard_state.term;
    r->hs_term = rs.hard_state.term;
    r->hs_vote = rs.hard_state.vote;
    r->snap_index = rs.snapshot.index;
    r->log_mark = conf_len ? rs.snapshot.index : 0; /* a split target's base: not yet */
    return rc;
}

replica_t *replica_open(node_t *node, uint32_t group, char *err, size_t errlen)
{
    return replica_open_with(node, group, NULL, err, errlen);
}

replica_t *replica_open_with(node_t *node, uint32_t group, lsm_t *lsm, char *err, size_t errlen)
{
    replica_t *r = calloc(1, sizeof *r);
    if (!r) {
        lsm_close(&lsm);
        return NULL;
    }
    r->group = group;
    r->node = node;
    r->lsm = lsm;
    r->in_fd = -1;
    r->fsm_idx = (int)(group % (uint32_t)node->n_fsm);
    r->snap_time_ms = zclock_mono();
    replica_group_dir(node, group, r->dir, sizeof r->dir);
    snprintf(r->snapdir, sizeof r->snapdir, "%s/snap", r->dir);
    uint64_t applied = 0;
    int rc = make_dirs(r->dir, r->snapdir, err, errlen);
    if (rc == 0 && !r->lsm)
        rc = open_lsm(node, r->dir, &r->lsm, err, errlen);
    if (rc == 0 && !(r->fg = fsm_group_new(group, r->lsm, &applied, err, errlen)))
        rc = SHOAL_EIO;
    if (rc == 0)
        rc = restore_raft(r, applied, err, errlen);
    if (rc) {
        replica_close(&r);
        return NULL;
    }
    /* the newest snapshot file, if its index matches the log's snapshot mark */
    char path[1200];
    snap_path(r, r->snap_index, path, sizeof path);
    r->snap_file = r->snap_index && access(path, R_OK) == 0 ? r->snap_index : 0;
    return r;
}

void replica_close(replica_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    replica_t *r = *self_p;
    if (r->rd_out)
        raft_ready_free(r->raft, &r->rd);
    raft_destroy(&r->raft);
    waiter_t *lists[4] = {r->props, r->held, r->reads_wait, r->reads_ready};
    for (int i = 0; i < 4; i++)
        for (waiter_t *w = lists[i], *n; w; w = n) {
            n = w->next;
            waiter_destroy(&w);
        }
    lead_log_clear(&r->lead);
    fsm_group_destroy(&r->fg);
    lsm_close(&r->lsm);
    if (r->in_fd >= 0)
        close(r->in_fd);
    free(r);
    *self_p = NULL;
}

/* ---- answers ------------------------------------------------------------------------ */

#define NO_LEADER UINT64_MAX /* "no leader known" in events and statuses (node ids from 0) */

void replica_not_leader(replica_t *r, waiter_t *w)
{
    Shoal__ClientResponse resp = SHOAL__CLIENT_RESPONSE__INIT;
    Shoal__LeaderHint hint = SHOAL__LEADER_HINT__INIT;
    resp.status = SHOAL__STATUS__STATUS_NOT_LEADER;
    resp.error = (char *)"this node is not the shard's leader";
    const node_peer_t *p = r->leader ? node_config_peer(r->node->cfg, node_id_of(r->leader)) : NULL;
    if (p && r->leader != raft_id_of(r->node->cfg->id)) {
        hint.node_id = p->id;
        hint.endpoint = (char *)p->endpoint;
        hint.term = r->term;
        resp.leader = &hint;
    }
    waiter_answer(w, &resp);
}

/* Leadership lost: every waiting proposal and read is told to go to the new leader. The
 * proposals may still commit; the client's retry with the same (client_id, seq) is then
 * answered from the session instead of applied twice. */
static void fail_waiters(replica_t *r)
{
    waiter_t *lists[3] = {r->props, r->held, r->reads_wait};
    for (int i = 0; i < 3; i++)
        for (waiter_t *w = lists[i], *n; w; w = n) {
            n = w->next;
            replica_not_leader(r, w);
            node_reply(r->node, &w);
        }
    r->props = r->props_tail = r->held = r->held_tail = r->reads_wait = NULL;
    r->n_props = r->n_held = 0;
}

/* A follower's reads wait for a read index from the leader it asked; when that leader is
 * gone the answer may never come, so they are told to retry instead of waiting for their
 * deadline. Reads that already have their index stay: they only wait for the apply. */
static void fail_forwarded_reads(replica_t *r)
{
    for (waiter_t *w = r->reads_wait, *n; w; w = n) {
        n = w->next;
        replica_not_leader(r, w);
        node_reply(r->node, &w);
    }
    r->reads_wait = NULL;
}

static uint64_t leader_node(const replica_t *r)
{
    return r->leader ? node_id_of(r->leader) : NO_LEADER;
}

/* A leader that became a follower in its own term without a leader to follow gave up for
 * lack of a quorum heard within the election timeout (check-quorum) or left the
 * configuration. Operators see which nodes went silent to this node (any frame counts). */
static void warn_stepped_down(replica_t *r)
{
    node_t *n = r->node;
    uint64_t now = zclock_mono();
    char heard[256] = "";
    size_t len = 0;
    for (uint64_t i = 0; i < NODE_MAX_NODES && len < sizeof heard - 40; i++)
        if (i != n->cfg->id && n->last_heard[i])
            len += (size_t)snprintf(heard + len, sizeof heard - len,
                                    " node %" PRIu64 " %" PRIu64 " ms ago;", i,
                                    now - n->last_heard[i]);
    zsys_warning("shard %u: stepped down in term %" PRIu64 " (no quorum heard, or removed); "
                 "last frames:%s its last log write began %" PRIu64 " ms ago",
                 r->group, r->term, heard, r->persist_since_ms ? now - r->persist_since_ms : 0);
}

static void on_soft_state(replica_t *r)
{
    node_t *n = r->node;
    raft_soft_state_t *s = &r->rd.soft_state;
    bool was_leader = r->role == RAFT_LEADER;
    if ((s->role == RAFT_CANDIDATE || s->role == RAFT_PRECANDIDATE) && s->role != r->role)
        events_raft_simple(n->events, SHOAL__RAFT_EVENT_TYPE__EV_ELECTION_STARTED, r->group,
                           r->term, NO_LEADER, raft_role_name(s->role));
    if (s->leader != r->leader) {
        r->leader = s->leader;
        if (!was_leader) /* the hint names the new leader */
            fail_forwarded_reads(r);
        n->leader_changes++;
        bool me = s->leader == raft_id_of(n->cfg->id);
        if (s->leader)
            zsys_info("shard %u: leader is node %" PRIu64 " (term %" PRIu64 ")%s", r->group,
                      node_id_of(s->leader), r->term, me ? ", this node" : "");
        else
            zsys_info("shard %u: no leader known (term %" PRIu64 ")", r->group, r->term);
        events_raft_simple(n->events,
                           me ? SHOAL__RAFT_EVENT_TYPE__EV_LEADER_ELECTED
                              : SHOAL__RAFT_EVENT_TYPE__EV_LEADER_CHANGED,
                           r->group, r->term, leader_node(r), me ? "this node leads" : "");
    }
    /* same term: hs_term is still the last ready's (stage_persist updates it later) */
    bool same_term = !r->rd.hard_state_changed || r->rd.hard_state.term == r->hs_term;
    if (was_leader && s->role == RAFT_FOLLOWER && !s->leader && same_term)
        warn_stepped_down(r);
    r->role = s->role;
    if (was_leader && s->role != RAFT_LEADER)
        fail_waiters(r);
    if (!was_leader && s->role == RAFT_LEADER && r->group == SHOAL_META_GROUP)
        node_meta_leader(n, r);
}

static void on_hard_state(replica_t *r)
{
    uint64_t leader = r->rd.soft_state_changed ? r->rd.soft_state.leader : r->leader;
    if (r->rd.hard_state.term != r->term)
        events_raft_simple(r->node->events, SHOAL__RAFT_EVENT_TYPE__EV_TERM_CHANGED, r->group,
                           r->rd.hard_state.term, leader ? node_id_of(leader) : NO_LEADER, "");
    r->term = r->rd.hard_state.term;
}

/* ---- ready stages ------------------------------------------------------------------- */

void replica_send_job(replica_t *r, fsm_job_t *job)
{
    job->group = r->group;
    job->fg = r->fg;
    job->replica = r;
    r->jobs_out++;
    /* queued: the node sends each fsm actor all of a loop turn's jobs in one message */
    node_t *n = r->node;
    n->n_fsm_jobs++;
    job->next = NULL;
    if (n->jobq_tail[r->fsm_idx])
        n->jobq_tail[r->fsm_idx]->next = job;
    else
        n->jobq[r->fsm_idx] = job;
    n->jobq_tail[r->fsm_idx] = job;
}

persist_item_t *node_batch_item(node_t *n)
{
    if (!n->batch && !(n->batch = calloc(1, sizeof *n->batch)))
        return NULL;
    persist_batch_t *b = n->batch;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        persist_item_t *ni = realloc(b->items, cap * sizeof *ni);
        if (!ni)
            return NULL;
        b->items = ni;
        b->cap = cap;
    }
    persist_item_t *it = &b->items[b->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* Hands entries (owned copies, moved into the job) to the fsm as an APPLY job, attaching
 * the proposals they answer. */
static void send_apply(replica_t *r, raft_entry_t *ents, size_t n)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    job->type = FSM_APPLY;
    job->entries = ents;
    job->waiters = calloc(n, sizeof *job->waiters);
    job->n_entries = n;
    for (size_t i = 0; i < n; i++) {
        const raft_entry_t *e = &ents[i];
        /* proposals are queued in index order: those at or below e->index are settled */
        while (r->props && r->props->index <= e->index) {
            waiter_t *w = r->props;
            r->props = w->next;
            r->n_props--;
            w->next = NULL;
            if (w->index == e->index)
                job->waiters[i] = w;
            else {
                waiter_answer_status(w, SHOAL__STATUS__STATUS_UNAVAILABLE,
                                     "proposal dropped by a leader change; retry");
                node_reply(r->node, &w);
            }
        }
    }
    if (!r->props)
        r->props_tail = NULL;
    r->submitted = ents[n - 1].index;
    if (r->group != SHOAL_META_GROUP && !split_node_attach(r, job))
        r->node->fatal = true; /* the SPLIT cannot apply without its target's engine */
    replica_send_job(r, job);
}

/* Copies the ready's committed entries up to index `upto` that were not handed over yet
 * (by an earlier call, or ahead of the ready from the leader's copy) into an APPLY job. */
static void submit_committed(replica_t *r, uint64_t upto)
{
    size_t from = r->n_committed_sent, end = from;
    while (end < r->rd.n_committed && r->rd.committed[end].index <= upto)
        end++;
    r->n_committed_sent = end;
    while (from < end && r->rd.committed[from].index <= r->submitted)
        from++;
    if (from == end)
        return;
    size_t n = end - from;
    raft_entry_t *ents = calloc(n, sizeof *ents);
    for (size_t i = 0; ents && i < n; i++) {
        const raft_entry_t *e = &r->rd.committed[from + i];
        ents[i] = *e;
        ents[i].data = NULL;
        if (e->len && (ents[i].data = malloc(e->len)))
            memcpy(ents[i].data, e->data, e->len);
    }
    if (!ents) {
        r->node->fatal = true; /* out of memory: an entry can never be skipped */
        return;
    }
    send_apply(r, ents, n);
}

/* A leader whose group has a ready outstanding applies what the core counts committed
 * from its own copy of the entries, without waiting for that ready (lead_log.h). */
static void apply_ahead(replica_t *r)
{
    if (!r->lead.n)
        return;
    raft_status_t st;
    raft_status(r->raft, &st);
    if (st.role != RAFT_LEADER || st.term != r->lead.term) {
        lead_log_clear(&r->lead);
        return;
    }
    lead_log_drop(&r->lead, r->submitted);
    uint64_t upto = st.commit < r->durable ? st.commit : r->durable;
    size_t k = lead_log_count(&r->lead, upto);
    if (!k || r->lead.ents[0].index != r->submitted + 1)
        return;
    raft_entry_t *ents = malloc(k * sizeof *ents);
    if (!ents)
        return; /* the ready hands them over later */
    lead_log_take(&r->lead, ents, k);
    send_apply(r, ents, k);
    replica_flush_reads(r);
}

void replica_flush_reads(replica_t *r)
{
    fsm_job_t *job = NULL;
    waiter_t **pp = &r->reads_ready;
    while (*pp) {
        waiter_t *w = *pp;
        if (w->index > r->submitted) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (!job && (job = calloc(1, sizeof *job)))
            job->type = FSM_READ;
        w->next = job->reads;
        job->reads = w;
    }
    if (job)
        replica_send_job(r, job);
}

static void take_reads(replica_t *r)
{
    for (size_t i = 0; i < r->rd.n_reads; i++) {
        raft_read_state_t *rs = &r->rd.reads[i];
        uint64_t id;
        if (rs->ctx_len != sizeof id)
            continue;
        memcpy(&id, rs->ctx, sizeof id);
        for (waiter_t **pp = &r->reads_wait; *pp; pp = &(*pp)->next)
            if ((*pp)->read_id == id) {
                waiter_t *w = *pp;
                *pp = w->next;
                w->index = rs->index;
                w->next = r->reads_ready;
                r->reads_ready = w;
                break;
            }
    }
}

static void apply_deferred_snapshot(replica_t *r);

static void finish_ready(replica_t *r)
{
    for (size_t i = 0; i < r->rd.n_msgs_after_persist; i++)
        transport_send(r->node->transport, &r->rd.msgs_after_persist[i]);
    if (r->rd.hard_state_changed)
        r->commit = r->rd.hard_state.commit;
    if (r->rd.n_entries)
        r->durable = r->rd.entries[r->rd.n_entries - 1].index;
    else if (r->rd.snapshot)
        r->durable = r->rd.snapshot->index;
    submit_committed(r, UINT64_MAX);
    lead_log_drop(&r->lead, r->submitted);
    take_reads(r);
    replica_flush_reads(r);
    raft_advance(r->raft, &r->rd);
    r->n_committed_sent = 0;
    r->rd_out = false;
    r->stage = STAGE_NONE;
    apply_deferred_snapshot(r);
}

/* Hands entries, hard state and snapshot mark to this turn's log batch; false when
 * nothing needs to be durable (the ready finishes at once). */
static bool stage_persist(replica_t *r)
{
    raft_ready_t *rd = &r->rd;
    if (!rd->n_entries && !rd->hard_state_changed && !rd->snapshot)
        return false;
    persist_item_t *it = node_batch_item(r->node);
    if (!it) {
        r->node->fatal = true;
        return true;
    }
    /* Only the commit index moved: Raft does not need it durable (a restarted node learns
     * it again from the leader), so it is written with the next batch and the ready goes
     * on without waiting for an fsync. Term and vote must be durable before any message. */
    bool must_sync = rd->n_entries || rd->snapshot || rd->hard_state.term != r->hs_term ||
                     rd->hard_state.vote != r->hs_vote;
    if (rd->hard_state_changed) {
        r->hs_term = rd->hard_state.term;
        r->hs_vote = rd->hard_state.vote;
    }
    if (!must_sync) {
        it->group = r->group;
        it->has_hs = true;
        it->hs = rd->hard_state;
        it->replica = NULL;
        return false;
    }
    /* entries overwrite the log from their first index, a snapshot replaces it: what they
     * replace is no longer this node's durable log until the batch is synced */
    if (rd->snapshot)
        r->durable = 0;
    else if (rd->n_entries && r->durable >= rd->entries[0].index)
        r->durable = rd->entries[0].index - 1;
    if (r->role == RAFT_LEADER && rd->n_entries && !rd->snapshot)
        lead_log_add(&r->lead, r->term, rd->entries, rd->n_entries);
    else if (r->lead.n)
        lead_log_clear(&r->lead);
    it->group = r->group;
    it->entries = rd->entries;
    it->n_entries = rd->n_entries;
    it->has_hs = rd->hard_state_changed;
    it->hs = rd->hard_state;
    it->replica = r;
    if (rd->snapshot) {
        it->has_snap = true;
        it->snap_index = rd->snapshot->index;
        it->snap_term = rd->snapshot->term;
        it->conf = transport_conf_encode(&rd->snapshot->conf, &it->conf_len);
    }
    r->stage = STAGE_PERSIST;
    r->persist_since_ms = zclock_mono();
    return true;
}

void replica_pump(replica_t *r)
{
    if (r->rd_out && r->stage == STAGE_PERSIST)
        apply_ahead(r);
    while (!r->rd_out && !r->node->fatal && raft_has_ready(r->raft)) {
        if (raft_ready(r->raft, &r->rd) != 0)
            return;
        r->rd_out = true;
        r->node->n_readies++;
        r->node->n_rd_leader += r->role == RAFT_LEADER;
        if (r->rd.hard_state_changed) /* first: leader lines and events carry the new term */
            on_hard_state(r);
        if (r->rd.soft_state_changed)
            on_soft_state(r);
        for (size_t i = 0; i < r->rd.n_msgs; i++) {
            raft_msg_t *m = &r->rd.msgs[i];
            transport_send(r->node->transport, m);
            if (m->type == RAFT_MSG_SNAPSHOT && m->has_snapshot && m->snapshot.last) {
                char detail[96];
                snprintf(detail, sizeof detail,
                         "snapshot at %" PRIu64 " (%" PRIu64 " bytes) sent to node %" PRIu64,
                         m->snapshot.meta.index, m->snapshot.total_size, node_id_of(m->to));
                events_raft_simple(r->node->events, SHOAL__RAFT_EVENT_TYPE__EV_SNAPSHOT_SENT,
                                   r->group, r->term, leader_node(r), detail);
            }
        }
        if (r->rd.snapshot) {
            /* the engine takes the snapshot before the log forgets what it replaces */
            fsm_job_t *job = calloc(1, sizeof *job);
            char path[1200];
            snprintf(path, sizeof path, "%s/incoming", r->snapdir);
            job->type = FSM_INSTALL;
            job->path = strdup(path);
            job->snap_index = r->rd.snapshot->index;
            r->stage = STAGE_INSTALL;
            replica_send_job(r, job);
            return;
        }
        if (stage_persist(r)) {
            /* Committed entries this node already holds durably are applied now, not after
             * the sync of the new entries of the same ready: under load a group always has
             * new entries, and waiting cost every write one more sync period (commit to
             * apply ~2 syncs instead of ~1 at 8 shards). Entries beyond `durable` (a
             * follower's in this very ready) still wait for the sync. */
            submit_committed(r, r->durable);
            replica_flush_reads(r);
            return;
        }
        r->node->n_rd_nosync++;
        finish_ready(r);
    }
}

void replica_persisted(replica_t *r)
{
    if (r->stage != STAGE_PERSIST)
        return;
    finish_ready(r); /* the pump that follows every log answer builds the next ready */
}

static void installed(replica_t *r, fsm_job_t *job)
{
    if (job->rc) {
        zsys_error("shard %u: %s", r->group, job->err);
        r->node->fatal = true;
        return;
    }
    char from[1200], to[1200];
    snprintf(from, sizeof from, "%s/incoming", r->snapdir);
    snap_path(r, job->snap_index, to, sizeof to);
    rename(from, to);
    r->snap_index = r->snap_file = job->snap_index;
    r->snap_size = 0; /* checksum recomputed when the file is served */
    r->submitted = r->applied = job->applied;
    events_raft_simple(r->node->events, SHOAL__RAFT_EVENT_TYPE__EV_SNAPSHOT_INSTALLED, r->group,
                       r->term, leader_node(r), "snapshot installed");
    zsys_info("shard %u: installed snapshot at index %" PRIu64 " (%s, %" PRIu64
              " ms after it was received)",
              r->group, job->snap_index, job->streamed ? "ingested as it came" : "from the file",
              zclock_mono() - r->in_started_ms);
    if (!stage_persist(r))
        finish_ready(r);
}

static void marked(replica_t *r, fsm_job_t *job);

void replica_fsm_done(replica_t *r, fsm_job_t *job)
{
    node_t *n = r->node;
    r->jobs_out--;
    r->ingest_out -= job->type == FSM_INGEST;
    if (job->applied > r->applied)
        r->applied = job->applied;
    for (waiter_t *w = job->done, *next; w; w = next) {
        next = w->next;
        node_reply(n, &w);
    }
    job->done = NULL;
    for (size_t i = 0; i < job->n_changes; i++)
        events_change(n->events, job->changes[i]);
    if (r->group == SHOAL_META_GROUP && job->n_changes)
        meta_applied(n, r, job); /* a new shard map (placement.h) */
    if (job->n_splits)
        split_node_applied(r, job); /* start the targets it cut */
    if (job->type == FSM_INSTALL) {
        installed(r, job);
        replica_pump(r);
    } else if (job->type == FSM_SNAPSHOT) {
        if (job->mark_only) {
            marked(r, job);
        } else if (job->lsnap) {
            snap_job_t *sj = calloc(1, sizeof *sj);
            sj->group = r->group;
            sj->lsm = r->lsm;
            sj->snap = job->lsnap;
            sj->index = job->applied;
            sj->dir = strdup(r->snapdir);
            sj->replica = r;
            n->snaps_out++;
            node_send_compactor(n, sj);
        } else {
            r->snap_busy = false;
        }
    }
    if (job->rc && job->type == FSM_APPLY) {
        zsys_error("shard %u: applying committed entries failed; stopping the node", r->group);
        n->fatal = true;
    }
    fsm_job_destroy(&job);
}

/* ---- snapshots and log truncation --------------------------------------------------- */

/* How long after a snapshot file was made or last read no mark cuts the log: a follower
 * being sent the file needs the entries after it, and a mark would also make the core
 * restart the transfer with the newer snapshot (snapshot.c). Chunks are read every few
 * milliseconds while a transfer runs; a lost one is resent after an election timeout. */
#define SNAP_SERVE_HOLD_MS 5000
/* ...but only up to this many snapshot_entries behind the last mark: the core keeps every
 * entry after its last mark in memory, and a follower that rejects every transfer must not
 * make that grow without bound (50 x 10,000 entries of ~150 bytes: ~75 MB). */
#define SNAP_SERVE_MAX_MARKS 50
/* A mark is also taken once the entries after the last one hold more than
 * snapshot_trailing_bytes, and at least this many, bytes (with 1 MB values a count of
 * entries bounds nothing): the core's log then stays under about twice the trailing bytes.
 * The floor keeps a node configured with few trailing bytes from marking at every entry. */
#define SNAP_MIN_MARK_BYTES (8u << 20)
/* ...and a served snapshot holds marks back only until that log has grown to this many
 * times the mark's bytes (128 MiB of entries with the default 32 MiB). */
#define SNAP_SERVE_MAX_BYTE_MARKS 4

/* Bytes of the entries after the last mark at which a mark is due. */
static uint64_t mark_bytes(const replica_t *r)
{
    uint64_t b = r->node->cfg->snapshot_trail_bytes;
    return b > SNAP_MIN_MARK_BYTES ? b : SNAP_MIN_MARK_BYTES;
}

static void start_snapshot(replica_t *r, bool mark_only, uint64_t now)
{
    fsm_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return;
    job->type = FSM_SNAPSHOT;
    job->mark_only = mark_only;
    job->log_mark = r->log_mark;
    r->snap_busy = true;
    r->snap_time_ms = now;
    replica_send_job(r, job);
}

/* Every snapshot_entries applied entries a group takes a mark: the engine is made durable
 * up to its applied index and the log is cut behind it. No copy of the state is written:
 * exporting the whole shard at every mark cost a write of the shard per 10,000 entries,
 * continuous on a big shard under load, and a transfer to a lagging follower restarted at
 * every newer export, so it never finished while writes went on. A file is exported only
 * when one is to be sent (snap_read) or asked for (admin `snapshot`, force).
 *
 * A group that stopped short of snapshot_entries is still marked after
 * snapshot_interval_ms: otherwise its few entries would pin the oldest segment of the
 * shared log for ever, and the log (and every restart's replay) would grow without bound
 * while other groups write. One whose entries after its mark hold more than mark_bytes is
 * marked at once, whatever their count: the core keeps them all in memory. */
void replica_maybe_snapshot(replica_t *r, bool force)
{
    uint64_t since = r->applied > r->snap_index ? r->applied - r->snap_index : 0;
    uint64_t now = zclock_mono();
    if (r->snap_busy || r->applied == 0)
        return;
    if (force) {
        if (since || !mark_has_file(r))
            start_snapshot(r, false, now);
        return;
    }
    uint64_t every = r->node->cfg->snapshot_entries;
    bool stale = now - r->snap_time_ms >= r->node->cfg->snapshot_interval_ms;
    raft_status_t st;
    raft_status(r->raft, &st);
    uint64_t bytes = st.log_bytes - st.trailing_bytes; /* after the core's mark */
    bool big = bytes > mark_bytes(r);
    bool serving = now - r->snap_served_ms < SNAP_SERVE_HOLD_MS &&
                   since < SNAP_SERVE_MAX_MARKS * every &&
                   bytes < SNAP_SERVE_MAX_BYTE_MARKS * mark_bytes(r);
    if (since == 0 || (since < every && !stale && !big) || serving)
        return;
    start_snapshot(r, true, now);
}

static void mark_snapshot(replica_t *r, uint64_t index)
{
    raft_snapshot_meta_t meta;
    int rc = raft_snapshot_taken(r->raft, index, &meta);
    if (rc) {
        zsys_warning("shard %u: snapshot at %" PRIu64 " refused by the core: %s", r->group, index,
                     shoal_strerror(rc));
        return;
    }
    if (r->quiet) /* an idle group's followers are caught up: no one needs trailing entries */
        raft_drop_trailing(r->raft);
    persist_item_t *it = node_batch_item(r->node);
    if (!it)
        return;
    it->group = r->group;
    it->has_snap = true;
    it->snap_index = index;
    it->snap_term = meta.term;
    it->conf = transport_conf_encode(&meta.conf, &it->conf_len);
    it->replica = NULL; /* nothing waits on it */
    events_raft_simple(r->node->events, SHOAL__RAFT_EVENT_TYPE__EV_LOG_TRUNCATED, r->group, r->term,
                       leader_node(r), "log truncated behind a snapshot");
}

static void apply_deferred_snapshot(replica_t *r)
{
    if (!r->snap_taken_pending || r->rd_out)
        return;
    raft_status_t st;
    raft_status(r->raft, &st);
    if (r->snap_taken_pending > st.applied)
        return; /* applied ahead of the core (apply_ahead): its next ready catches it up */
    if (r->snap_taken_pending > st.snapshot_index) /* else an installed one is newer */
        mark_snapshot(r, r->snap_taken_pending);
    r->snap_taken_pending = 0;
}

/* The core takes a mark once it counts the entries applied: after the ready it has out,
 * and after the one that hands it what a leader applied from its own copy (apply_ahead);
 * before that it refuses an index above its applied one. */
static void take_mark(replica_t *r, uint64_t index)
{
    r->snap_index = index;
    r->snap_taken_pending = index;
    apply_deferred_snapshot(r);
}

/* The fsm made the engine durable up to job->applied (a mark, no file). */
static void marked(replica_t *r, fsm_job_t *job)
{
    r->snap_busy = false;
    if (job->rc) {
        zsys_warning("%s; the log is kept", job->err);
        return;
    }
    if (job->applied > r->snap_index)
        take_mark(r, job->applied);
}

void replica_snapped(replica_t *r, snap_job_t *job)
{
    r->snap_busy = false;
    if (job->rc) {
        zsys_warning("%s", job->err);
        return;
    }
    r->snap_file = job->index;
    r->snap_size = job->size;
    r->snap_checksum = job->checksum;
    r->snap_served_ms = zclock_mono(); /* made to be sent: no mark replaces it meanwhile */
    events_raft_simple(r->node->events, SHOAL__RAFT_EVENT_TYPE__EV_COMPACTION, r->group, r->term,
                       leader_node(r), "snapshot taken");
    take_mark(r, job->index);
}

/* ---- deadlines ---------------------------------------------------------------------- */

static void expire_list(replica_t *r, waiter_t **head, uint64_t now, bool props)
{
    for (waiter_t **pp = head; *pp;) {
        waiter_t *w = *pp;
        if (w->deadline_ms > now) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (props)
            r->n_props--;
        waiter_answer_status(w, SHOAL__STATUS__STATUS_TIMEOUT,
                             "deadline passed; the write may or may not have applied");
        node_reply(r->node, &w);
    }
}

void replica_expire(replica_t *r, uint64_t now_ms)
{
    expire_list(r, &r->props, now_ms, true);
    r->props_tail = NULL;
    for (waiter_t *w = r->props; w; w = w->next)
        r->props_tail = w;
    expire_list(r, &r->held, now_ms, false);
    r->held_tail = NULL;
    r->n_held = 0;
    for (waiter_t *w = r->held; w; w = w->next, r->n_held++)
        r->held_tail = w;
    expire_list(r, &r->reads_wait, now_ms, false);
    expire_list(r, &r->reads_ready, now_ms, false);
}
