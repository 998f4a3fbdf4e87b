/* replica.h - one replica of one Raft group on this node, as the node actor sees it, and
 * the node actor's own state (internal to actors/).
 *
 * A replica is not a thread: it is a Raft core plus the bookkeeping that moves each of its
 * ready batches through the shared actors (node_int.h). A ready goes through stages:
 *   READY    msgs sent at once (heartbeats never wait for the disk)
 *   INSTALL  a received snapshot is being ingested by the fsm actor (only if present)
 *   PERSIST  entries, hard state and snapshot mark are in a batch of the log actor
 *   FINISH   after-persist msgs sent, committed entries handed to the fsm, reads queued,
 *            raft_advance
 * Only one ready is outstanding per replica (the core's rule); other replicas' readies go
 * on, and the ones that reach PERSIST in the same loop turn share one fdatasync. */
#ifndef SHOAL_ACTORS_REPLICA_H
#define SHOAL_ACTORS_REPLICA_H

#include <czmq.h>

#include "actors/events.h"
#include "actors/lead_log.h"
#include "actors/node_config.h"
#include "actors/node_int.h"
#include "actors/replies.h"
#include "actors/sockset.h"
#include "actors/transport.h"
#include "engine/ring.h"
#include "proto/admin.pb-c.h"

enum { STAGE_NONE = 0, STAGE_INSTALL = 1, STAGE_PERSIST = 2 };
#define RECENT_WRITES 4096

#define NODE_MAX_FSM NODE_MAX_APPLY_THREADS
#define FSYNC_BUCKETS 12

typedef struct node_t node_t;
typedef struct placement_t placement_t;   /* placement.h */
typedef struct split_node_t split_node_t; /* split_node.c */
typedef struct lease_clock lease_clock_t;

typedef struct replica_t {
    uint32_t group;
    node_t *node;
    raft_t *raft;
    lsm_t *lsm;
    fsm_group_t *fg; /* used only by fsm actor fsm_idx after open */
    int fsm_idx;
    char dir[1024]; /* DATA/shard-<S> or DATA/meta */
    char snapdir[1100];
    raft_ready_t rd;
    bool rd_out;
    int stage;
    uint64_t submitted;            /* last index handed to the fsm */
    uint64_t durable;              /* last log index this node holds durably (fsync done) */
    size_t n_committed_sent;       /* committed entries of rd already handed to the fsm */
    lead_log_t lead;               /* leader: copies of its staged entries (lead_log.h) */
    uint64_t applied;              /* last index the fsm reported applied */
    uint64_t commit, term, leader; /* leader: raft id, 0 unknown */
    uint64_t hs_term, hs_vote;     /* the term and vote handed to the log last */
    raft_role_t role;
    waiter_t *props, *props_tail; /* proposals waiting to commit, by index */
    size_t n_props;
    waiter_t *held, *held_tail; /* writes not proposed yet: the log was busy (node.c) */
    size_t n_held;
    /* fingerprints of (client id, seq) of writes held or proposed here, direct-mapped
     * (node.c, first_copy): a match is checked in held and props, a stale one costs that
     * scan, an overwritten one a duplicate proposal (deduped at apply, as before) */
    uint64_t recent_writes[RECENT_WRITES];
    waiter_t *reads_wait;  /* linearizable reads waiting for their read index */
    waiter_t *reads_ready; /* read index known, waiting for the fsm to reach it */
    uint64_t next_read_id;
    uint64_t snap_index; /* the newest snapshot mark: the log may be cut up to it */
    uint64_t log_mark;   /* the newest snapshot mark the log holds durably (node.c) */
    uint64_t snap_file;  /* index of the newest snapshot file (0: none), what a leader sends */
    uint64_t snap_size, snap_checksum; /* of snap_file */
    uint64_t snap_served_ms;           /* zclock_mono when snap_file was made or last read */
    bool snap_busy;                    /* a snapshot is being taken */
    uint32_t compacts_out;             /* admin compactions of its engine at the compactor */
    uint64_t unplaced_ms;              /* placement.c: when the map moved it away (0: placed) */
    uint64_t snap_time_ms;             /* zclock_mono of the last snapshot started (or of open) */
    uint64_t snap_taken_pending;       /* snapshot done while a ready was out: apply at advance */
    int in_fd;                         /* incoming snapshot file, -1 when none */
    uint64_t in_written;
    uint64_t in_started_ms;         /* first chunk of the incoming snapshot, then its install */
    unsigned ingest_out;            /* INGEST jobs (chunk copies) at the fsm actor */
    unsigned ingest_peak;           /* its most during this transfer (logged) */
    uint64_t jobs_out;              /* fsm jobs in flight */
    uint64_t ev_commit, ev_applied; /* last values published */
    uint64_t idle_ticks;            /* ticks without any activity (quiescence) */
    bool quiet;                     /* not ticked while idle */
    uint64_t persist_since_ms;      /* when the outstanding ready started waiting for the log */
    uint64_t synth_hb_ms;           /* last heartbeat round sent by the node on the core's behalf */
    uint64_t conf_sig;              /* placement.c: hash of the configuration last announced */
} replica_t;

struct node_t {
    node_config_t *cfg;
    zsock_t *pipe;
    sockset_t *socks; /* the loop's sockets (sockset.h), at these indexes: */
    int sk_pipe, sk_router, sk_log, sk_compactor, sk_fsm[NODE_MAX_FSM];
    zsock_t *router;
    events_t *events;
    transport_t *transport;
    rlog_t *rlog;
    lsm_pool_t *lsm_pool; /* every replica engine's flushes and compactions */
    log_args_t log_args;
    zactor_t *log;
    zactor_t *fsm[NODE_MAX_FSM];
    int n_fsm;
    fsm_args_t fsm_args[NODE_MAX_FSM];
    fsm_done_t fsm_done[NODE_MAX_FSM]; /* each fsm actor's finished jobs (node_int.h) */
    zactor_t *compactor;
    replica_t **replicas;
    size_t n_replicas;
    persist_batch_t *batch;                                  /* being filled this loop turn */
    fsm_job_t *jobq[NODE_MAX_FSM], *jobq_tail[NODE_MAX_FSM]; /* this turn's jobs per fsm */
    uint64_t batches_out;
    size_t proposed_bytes; /* entry bytes proposed since the last log batch went out */
    size_t held_from;      /* the replica propose_held serves first (turns rotate) */
    uint64_t snaps_out;
    bool fatal;
    bool stopping;
    bool left; /* removed from the map and its replicas dropped: stops (placement.c) */
    bool debug;
    uint64_t last_heard[NODE_MAX_NODES]; /* zclock_mono of the last frame from each node */
    placement_t *place;                  /* the shard map and its changes (placement.h) */
    split_node_t *split;                 /* split targets' engines not started yet */
    lease_clock_t *lease_clock;          /* raft/read_mode = lease only, else NULL */
    /* the ring of place->map, which shard holds a key (node.c, keys_fit); rebuilt when the
     * map changes */
    ring_t *key_ring;
    const Shoal__ShardMap *key_ring_map;
    uint64_t key_ring_version;
    /* metrics */
    uint64_t fsync_hist[FSYNC_BUCKETS];
    uint64_t leader_changes;
    uint64_t follower_reads; /* linearizable reads taken as a follower (node.c, linear_read) */
    uint64_t requests;
    /* work counters, logged at stop: what a write costs in node cycles (BENCHMARKS.md) */
    uint64_t n_pumps, n_readies, n_batches, n_items, n_fsm_msgs, n_fsm_jobs;
    uint64_t n_rd_leader, n_rd_nosync;  /* readies built as leader / needing no sync */
    uint64_t n_client_in, n_client_out; /* ROUTER messages with client requests / answers */
    uint64_t n_resends_joined; /* resent writes answered by their first copy (first_copy) */
    replies_t *replies;        /* answers to batched requests of this loop turn (replies.h) */
};

extern const uint64_t node_fsync_bounds_us[FSYNC_BUCKETS];

replica_t *replica_open(node_t *node, uint32_t group, char *err, size_t errlen);
/* Same with the group's engine already open (taken, closed on failure): a split target. */
replica_t *replica_open_with(node_t *node, uint32_t group, lsm_t *lsm, char *err, size_t errlen);
/* Opens group's engine (DATA/shard-<G>/lsm, the folders made) with the replica options. */
int replica_open_engine(node_t *node, uint32_t group, lsm_t **lsm, char *err, size_t errlen);
void replica_close(replica_t **self_p);
/* DATA/shard-<group>, or DATA/meta for the metadata group. */
void replica_group_dir(const node_t *node, uint32_t group, char *out, size_t cap);
/* Deletes a replica's folder: renamed to <dir>.deleted first, so that a crash halfway leaves
 * a name the next start finishes (placement.c); 0 when nothing is left of it. */
int replica_delete_dir(const char *dir);
/* Deletes a file tree (a <dir>.deleted left by a crash). */
int replica_delete_tree(const char *path);
/* Moves the replica's readies forward as far as they go without waiting. */
void replica_pump(replica_t *r);
/* The log actor made the replica's batch item durable (rc 0) or failed. */
void replica_persisted(replica_t *r);
/* The fsm finished a job of this replica. */
void replica_fsm_done(replica_t *r, fsm_job_t *job);
/* The compactor finished a snapshot of this replica. */
void replica_snapped(replica_t *r, snap_job_t *job);
/* Starts a snapshot if enough was applied since the last one (or force). */
void replica_maybe_snapshot(replica_t *r, bool force);
/* Answers proposals and reads whose deadline passed. */
void replica_expire(replica_t *r, uint64_t now_ms);
/* Sends a job to the replica's fsm actor (takes it). */
void replica_send_job(replica_t *r, fsm_job_t *job);
/* This node just became leader of the metadata group: store the shard map if absent. */
void node_meta_leader(node_t *node, replica_t *r);
/* Whether a frame came from node within the last within_ms (always for this node). */
bool node_heard_within(const node_t *node, uint64_t node_id, uint64_t within_ms);
/* The replica of group on this node, or NULL. Borrowed. */
replica_t *node_find_replica(node_t *node, uint64_t group);
/* Opens a replica of group and adds it to the node. */
int node_add_replica(node_t *node, uint32_t group, char *err, size_t errlen);
/* Same with its engine open already (taken). */
int node_add_replica_with(node_t *node, uint32_t group, lsm_t *lsm, char *err, size_t errlen);
/* Sends an admin answer to identity (borrowed) on the ROUTER. */
void node_send_admin(node_t *node, zframe_t *identity, Shoal__AdminResponse *resp);
/* A new item in the node's log batch of this loop turn (NULL: out of memory). */
persist_item_t *node_batch_item(node_t *node);
/* Whether the shard map lists this node among the nodes that deleted group (placement.c). */
bool placement_retired(const node_t *node, uint32_t group);
/* Answers a waiter on the ROUTER and frees it. */
void node_reply(node_t *node, waiter_t **w_p);
/* Hands a snapshot, compaction or drop job to the compactor actor. */
void node_send_compactor(node_t *node, snap_job_t *j);
/* A NOT_LEADER answer with the replica's leader hint. */
void replica_not_leader(replica_t *r, waiter_t *w);
/* Queues reads that the fsm can serve now (read index <= submitted). */
void replica_flush_reads(replica_t *r);

#endif
