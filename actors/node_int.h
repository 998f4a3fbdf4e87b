/* node_int.h - what the node's actors hand each other (internal to actors/).
 *
 * Thread model (docs/ARCHITECTURE.md, "Node runtime"): a node runs a fixed set of actors
 * shared by all its replicas, so its thread count does not grow with the shard count:
 *   node actor   (1)  every Raft core, the ROUTER and PUB sockets, the peer DEALERs
 *                     (the transport), timers; never touches a disk except snapshot chunks
 *   log actor    (1)  the shared durable log (rlog): writes + one fdatasync per batch
 *   fsm actors   (N)  apply committed entries to the LSM engines, serve reads; a group is
 *                     always served by the same fsm actor (group mod N), which keeps its
 *                     applies and reads in order
 *   compactor    (1)  snapshot export to a file, LSM flush before log truncation
 * Messages between actors are czmq pictures carrying one pointer ("sp": command, job);
 * ownership of the job passes with the message, and the reply passes it back.
 *
 * Commands:
 *   node -> log:        "PERSIST" persist_batch_t*     log -> node: "PERSISTED" same
 *   node -> fsm:        "JOB" fsm_job_t*                fsm -> node: the same jobs (replies
 *                                                       and change events filled in) in its
 *                                                       fsm_done_t queue, and "DONE" NULL
 *                                                       when one of them is waited for
 *   node -> compactor:  "EXPORT" snap_job_t*            compactor -> node: "SNAPPED" same
 *                       (compact_only: a full engine compaction, admin op `compact`;
 *                       drop: close a removed replica's engine and delete its folder)
 */
#ifndef SHOAL_ACTORS_NODE_INT_H
#define SHOAL_ACTORS_NODE_INT_H

#include <czmq.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/rlog.h"
#include "engine/lsm/lsm.h"
#include "engine/raft/raft.h"
#include "proto/client.pb-c.h"
#include "proto/events.pb-c.h"
#include "proto/wire.pb-c.h"

/* A client request waiting for its answer; owned by whoever holds it now. */
typedef struct waiter_t {
    zframe_t *identity;   /* ROUTER routing id of the sender */
    Shoal__Frame *frame;  /* the decoded request (owned) */
    uint64_t deadline_ms; /* zclock_mono time to answer TIMEOUT */
    uint64_t read_id;     /* ReadIndex context */
    uint64_t index;       /* proposal index, or read index */
    uint8_t *reply;       /* encoded Frame{client_resp} (malloc'd), set by whoever answers */
    size_t reply_len;
    bool batched; /* came in a Frame{batch}: answered in one too (replies.h) */
    struct waiter_t *next;
} waiter_t;

/* ---- log actor ---------------------------------------------------------------------- */

typedef struct {
    uint32_t group;
    const raft_entry_t *entries; /* borrowed from the replica's outstanding ready */
    size_t n_entries;
    bool has_hs;
    raft_hard_state_t hs;
    bool has_snap;
    uint64_t snap_index, snap_term;
    uint8_t *conf; /* owned: encoded ConfState */
    size_t conf_len;
    void *replica; /* the node's replica_t, opaque to the log actor */
    /* drop: a DROP record of group (rlog_drop_group) and nothing else; drop_job is the
     * snap_job_t that deletes the replica's engine, sent to the compactor only once the
     * DROP is durable (a crash in between must not leave the log's records without the
     * data they describe) */
    bool drop;
    void *drop_job;
} persist_item_t;

typedef struct {
    persist_item_t *items;
    size_t n, cap;
    int rc;           /* set by the log actor */
    uint64_t sync_us; /* how long the fdatasync took */
    bool synced;
} persist_batch_t;

/* ---- fsm actors --------------------------------------------------------------------- */

enum {
    FSM_APPLY = 1,
    FSM_READ = 2,
    FSM_INSTALL = 3,
    FSM_SNAPSHOT = 4,
    FSM_OPEN = 5,
    FSM_INGEST = 6
};

typedef struct fsm_group_t fsm_group_t; /* per-group state of the fsm (fsm_actor.c) */

/* The engine of a split's target, opened by the node before the source's APPLY job that
 * holds the SPLIT (split_node.c); borrowed by the job. */
typedef struct {
    uint32_t target;
    lsm_t *lsm;
    bool live; /* the target already runs here: its data comes from its own group */
} split_dst_t;

typedef struct fsm_job_t {
    int type;
    uint32_t group;
    fsm_group_t *fg;       /* the group's fsm state (owned by the fsm actor) */
    raft_entry_t *entries; /* FSM_APPLY: owned copies */
    size_t n_entries;
    waiter_t **waiters;  /* FSM_APPLY: per entry, or NULL */
    waiter_t *reads;     /* FSM_READ: list of reads to serve */
    char *path;          /* FSM_INSTALL: received snapshot file */
    uint64_t snap_index; /* FSM_INSTALL / FSM_SNAPSHOT / FSM_INGEST */
    uint8_t *chunk;      /* FSM_INGEST: snapshot bytes at chunk_off (owned) */
    size_t chunk_len;
    uint64_t chunk_off;
    bool chunk_last;
    uint64_t applied;             /* out: applied index after the job */
    bool mark_only;               /* FSM_SNAPSHOT: make `applied` durable, take no view */
    uint64_t log_mark;            /* FSM_SNAPSHOT: the log's durable mark (KEY_NOCHANGE) */
    bool streamed;                /* out, FSM_INSTALL: the chunks' ingest was swapped in */
    const lsm_snapshot_t *lsnap;  /* out, FSM_SNAPSHOT: the engine's view at `applied` */
    waiter_t *done;               /* out: answered waiters */
    Shoal__ChangeEvent **changes; /* out: change events to publish (owned) */
    size_t n_changes, cap_changes;
    int rc; /* out */
    char err[256];
    void *replica;       /* the node's replica_t */
    split_dst_t *splits; /* FSM_APPLY: target engines of the SPLITs in entries (owned array) */
    size_t n_splits;
    struct fsm_job_t *next;
} fsm_job_t;

/* ---- compactor ---------------------------------------------------------------------- */

typedef struct {
    uint32_t group;
    bool compact_only; /* COMPACT: lsm_compact_range of the whole engine */
    bool drop;         /* a replica removed from this node: close lsm (taken), delete dir */
    lsm_t *lsm;        /* borrowed */
    const lsm_snapshot_t *snap; /* released by the compactor */
    uint64_t index;             /* applied index the snapshot holds */
    char *dir;                  /* snapshot directory of the group */
    uint64_t size, checksum;    /* out */
    int rc;
    char err[256];
    void *replica;
} snap_job_t;

/* Where an fsm actor leaves the jobs it finished, in the order it finished them. Only a
 * job someone waits for (answered waiters, a read, a split, a snapshot or install, the
 * metadata group, an error) also costs a "DONE" message that wakes the node; the others
 * (a follower's applied writes) are taken at the node's next loop turn, which comes within
 * a tick anyway: a wake-up of the node per such job was ~a third of its loop turns at 8
 * shards (docs/BENCHMARKS.md, "Session 13"). One queue keeps one order for both kinds. */
typedef struct {
    pthread_mutex_t lock;
    fsm_job_t *head, *tail;
} fsm_done_t;

typedef struct {
    fsm_done_t *done; /* this actor's finished jobs (owned by the node) */
} fsm_args_t;

/* Every job in q, oldest first (NULL if none); the caller owns the list. */
fsm_job_t *fsm_done_take(fsm_done_t *q);

void log_actor(zsock_t *pipe, void *args);       /* args: rlog_t* with fsync mode below */
void fsm_actor(zsock_t *pipe, void *args);       /* args: fsm_args_t* */
void compactor_actor(zsock_t *pipe, void *args); /* args: NULL */

typedef struct {
    rlog_t *log;
    int fsync_mode;    /* NODE_FSYNC_* */
    unsigned delay_ms; /* testing only: a slow disk (storage/fsync_delay_ms) */
} log_args_t;

/* fsm group state: created by the node (fsm_group_new) and then used only by one fsm
 * actor; the applied index it recovered is returned for the Raft restore. */
fsm_group_t *fsm_group_new(uint32_t group, lsm_t *lsm, uint64_t *applied, char *err, size_t errlen);
/* Refills the change window of a group just made (before its first job) from the entries
 * its node restored from the Raft log: ents[0..n), ascending from mark + 1 (the log's
 * snapshot mark). applied is the index the Raft core was restored with: every entry up to
 * it is committed, and the ones at or below the engine's applied index are not applied
 * again, so this is how their changes get back into the window; last is the log's last
 * index. The window holds afterwards what live apply left in it (same bounds), up to what
 * the log still has; older asks stay WINDOW_GONE. Returns 0 or a SHOAL_E* code (the window
 * then starts at the applied index, as without a refill). */
int fsm_group_refill(fsm_group_t *g, const raft_entry_t *ents, size_t n, uint64_t mark,
                     uint64_t applied, uint64_t last);
/* Stores the applied index if it moved since the last stored one (the engine must still
 * be open; call only when the group's fsm actor is idle). */
void fsm_group_destroy(fsm_group_t **self_p);

void waiter_destroy(waiter_t **self_p);
/* Encodes a ClientResponse answer into w->reply (request_id, client_id, seq copied). */
void waiter_answer(waiter_t *w, Shoal__ClientResponse *resp);
void waiter_answer_status(waiter_t *w, Shoal__Status status, const char *error);
void fsm_job_destroy(fsm_job_t **self_p);

/* Keys in a replica's LSM: user data under 'd', client sessions under 's', metadata 'm'.
 * 'n' + big-endian u64 index: the entry at that index named changes and made none (a retry,
 * a key moved by a split, a compare that failed), so the change window refilled from the
 * log at a restart leaves it out (fsm_group_refill); KEY_NOCHANGE_FROM: the index after
 * which every such entry this engine applied has its 'n' key. */
#define KEY_DATA 'd'
#define KEY_SESSION 's'
#define KEY_NOCHANGE 'n'
#define KEY_APPLIED "m/applied"
#define KEY_NOCHANGE_FROM "m/nochange"

#endif
