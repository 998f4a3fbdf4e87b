/* raft.h - Raft as a pure, deterministic state machine (the public API of engine/raft).
 *
 * The core owns no threads, sockets, clocks or files, and takes its randomness from a seed
 * in its configuration, so the same inputs always give the same outputs. It is driven by
 *   raft_tick()            one logical clock tick (the caller decides how long a tick is),
 *   raft_step(msg)         a message from a peer,
 *   raft_propose*()        client commands and membership changes (leader only),
 *   raft_read_index(ctx)   a linearizable read barrier,
 * and hands back its work in a "ready" batch (the etcd/raft pattern):
 *
 *   while (raft_has_ready(r)) {
 *       raft_ready_t rd;
 *       raft_ready(r, &rd);
 *       send(rd.msgs);                        // may go out in parallel with the write below
 *       if (rd.snapshot) install + persist the snapshot meta;
 *       persist(rd.entries, rd.hard_state);   // entries overwrite any suffix from their index
 *       fsync();
 *       send(rd.msgs_after_persist);          // votes and acks: only once the write is durable
 *       apply(rd.committed);                  // in order, after the snapshot if any
 *       serve(rd.reads);                      // once applied >= read.index
 *       raft_advance(r, &rd);                 // frees rd
 *   }
 *
 * Only one ready may be outstanding: raft_ready() returns SHOAL_EBUSY until raft_advance()
 * (or raft_ready_free() after a crash) is called for the previous one. Between the two the
 * core may still be ticked, stepped and proposed to (a slow disk does not stall the core).
 * A ready owns deep copies of everything it holds, so it stays valid whatever the core does
 * meanwhile.
 *
 * Logs live in memory: the core keeps every entry after the last snapshot (raft_new takes
 * them back after a restart), so the caller bounds memory by taking snapshots
 * (raft_snapshot_taken) which compacts the log; raft_status reports the bytes it holds
 * (log_bytes), so the caller can take them by bytes as well as by entries.
 *
 * Membership changes are one server at a time (the single-server rule of Ongaro's thesis,
 * §4.1): any two adjacent configurations share a majority. A configuration takes effect when
 * its entry is committed; a second change is refused while one is pending, and a new leader
 * must commit an entry of its own term before it accepts a change. voters_outgoing is kept
 * for the wire format (joint consensus) but is always empty.
 *
 * Heartbeats carry only (group, term, commit, context) and responses only (group, term,
 * context, reject), so a node hosting many groups can coalesce every MSG_HEARTBEAT and
 * MSG_HEARTBEAT_RESP it sends to one peer into GroupHeartbeat lists of one PeerEnvelope
 * (proto/raft.proto) and split them back into per-group raft_msg_t on receipt. Heartbeat
 * commit is min(follower match, leader commit), so a follower never commits past what it has.
 *
 * Snapshots are streamed in chunks. The leader reads bytes of its latest snapshot through
 * raft_snapshot_io_t.read; the follower hands each received chunk to .write, which verifies
 * the checksum on the last chunk. Once the last chunk is accepted, the next ready carries the
 * snapshot meta to install (the application restores its state from the bytes it stored).
 *
 * Errors are negative SHOAL_E* codes (engine/error.h); misuse never asserts.
 */
#ifndef SHOAL_RAFT_H
#define SHOAL_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

#define RAFT_MAX_NODES 16 /* voters + learners in one group */
#define RAFT_NONE 0       /* "no node": node ids are > 0 */

typedef enum {
    RAFT_ENTRY_NORMAL = 0,
    RAFT_ENTRY_CONF_CHANGE = 1, /* data is a raft_conf_change_t, see raft_conf_change_decode */
    RAFT_ENTRY_NOOP = 2,        /* appended by a new leader to commit its term */
} raft_entry_type_t;

typedef struct {
    uint64_t term;
    uint64_t index;
    raft_entry_type_t type;
    uint8_t *data; /* owned by whatever holds the entry (ready, message, log) */
    size_t len;
} raft_entry_t;

/* Same numbers as proto/raft.proto RaftMessageType. */
typedef enum {
    RAFT_MSG_NONE = 0,
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP = 2,
    RAFT_MSG_VOTE = 3,
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_APPEND = 5,
    RAFT_MSG_APPEND_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9,
    RAFT_MSG_SNAPSHOT_RESP = 10,
    RAFT_MSG_TIMEOUT_NOW = 11,
    RAFT_MSG_READ_INDEX = 12,
    RAFT_MSG_READ_INDEX_RESP = 13,
} raft_msg_type_t;
#define RAFT_MSG_TYPE_MAX RAFT_MSG_READ_INDEX_RESP

typedef struct {
    uint64_t voters[RAFT_MAX_NODES];
    size_t n_voters;
    uint64_t learners[RAFT_MAX_NODES];
    size_t n_learners;
    uint64_t voters_outgoing[RAFT_MAX_NODES]; /* joint consensus: unused, always empty */
    size_t n_voters_outgoing;
} raft_conf_state_t;

typedef struct {
    uint64_t index; /* last entry the snapshot covers */
    uint64_t term;  /* its term */
    raft_conf_state_t conf;
} raft_snapshot_meta_t;

/* One InstallSnapshot chunk (proto SnapshotChunk). */
typedef struct {
    raft_snapshot_meta_t meta;
    uint64_t offset;
    uint8_t *data; /* owned by the message */
    size_t len;
    bool last;
    uint64_t total_size;
    uint64_t checksum; /* of the whole snapshot, as the application defines it (XXH3-64) */
} raft_snapshot_chunk_t;

/* Mirrors proto RaftMessage. Messages the core emits own their entries, data and context;
 * messages given to raft_step are borrowed (the core copies what it keeps). */
typedef struct {
    raft_msg_type_t type;
    uint64_t group;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    raft_entry_t *entries;
    size_t n_entries;
    uint64_t commit;
    bool reject;
    uint64_t reject_hint;
    uint64_t conflict_term;
    uint8_t *context;
    size_t context_len;
    bool has_snapshot; /* snapshot is meaningful (MSG_SNAPSHOT) */
    raft_snapshot_chunk_t snapshot;
} raft_msg_t;

typedef struct {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
} raft_hard_state_t;

typedef enum {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
} raft_role_t;

typedef struct {
    uint64_t leader; /* RAFT_NONE when unknown */
    raft_role_t role;
} raft_soft_state_t;

/* A read that is now linearizable: serve it once the state machine applied >= index. */
typedef struct {
    uint64_t index;
    uint8_t *ctx; /* the caller's context from raft_read_index, owned by the ready */
    size_t ctx_len;
} raft_read_state_t;

/* Snapshot bytes live with the application; the core reaches them through this interface.
 * Both callbacks are optional: without them the leader never sends snapshots (a follower
 * behind the compacted log then waits) and a follower rejects them. */
typedef struct {
    void *ctx;
    /* Leader: copy up to cap bytes of the snapshot covering `index`, from `offset`, into buf.
     * Returns the number of bytes copied (0 only past the end) or a negative SHOAL_E* code
     * (the snapshot is gone: the core retries later with the newest one). Sets *total_size
     * and *checksum for the whole snapshot. */
    int64_t (*read)(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                    uint64_t *total_size, uint64_t *checksum);
    /* Follower: store a chunk (chunks arrive in order from offset 0; offset 0 restarts).
     * On the last chunk, verify total size and checksum. 0, or a negative code to reject
     * (the leader restarts the transfer). After an accepted last chunk, no new transfer
     * starts until the ready that carries that snapshot is advanced, so the application
     * keeps the received bytes until it installs them. */
    int (*write)(void *ctx, const raft_snapshot_chunk_t *chunk);
} raft_snapshot_io_t;

typedef struct {
    uint64_t id;             /* this node, > 0 */
    uint64_t group;          /* copied into every message */
    unsigned election_tick;  /* election timeout is random in [election_tick, 2*election_tick) */
    unsigned heartbeat_tick; /* leader heartbeat interval, < election_tick */
    bool prevote;            /* pre-vote before raising the term */
    bool check_quorum;       /* leader steps down without a quorum for election_tick ticks */
    bool lease_read;         /* serve reads from a leader lease (needs check_quorum) */
    unsigned lease_margin;   /* ticks of clock drift subtracted from the lease */
    unsigned max_inflight;   /* append messages in flight per follower (pipelining) */
    size_t max_msg_entries;  /* entries per append message */
    size_t max_msg_bytes;    /* payload bytes per append message (at least one entry) */
    /* A probe carrying at least this many bytes of entries is sent again on a heartbeat
     * answer only if the follower lacks it, or half an election timeout after it went out
     * (a smaller one with every answer, as in etcd/raft). */
    size_t probe_hold_bytes;
    size_t snapshot_chunk_bytes;
    /* Entries kept in memory behind a snapshot, so a follower that was briefly away
     * catches up by appends instead of a whole snapshot (etcd's catch-up entries). */
    uint64_t snapshot_trailing_entries;
    /* ...and at most this many bytes of their data, counted back from the snapshot: with
     * big values a count alone bounds nothing (50,000 entries of 1 MB). 0 keeps none. */
    uint64_t snapshot_trailing_bytes;
    uint64_t seed; /* randomness of election timeouts */
    raft_snapshot_io_t snapshot_io;
} raft_config_t;

/* Fills c with defaults: election 10, heartbeat 1, prevote and check-quorum on, lease off,
 * 256 inflight, 256 entries / 1 MiB per message, probes of 64 KiB or more held, 1 MiB
 * chunks, no trailing entries
 * behind a snapshot (snapshot_trailing_bytes 32 MiB bounds them once snapshot_trailing_entries
 * is set). id and group are zero. */
void raft_config_default(raft_config_t *c);

/* What the caller reloaded from disk. A fresh node of a new group passes a zero hard state,
 * an empty log and the initial voters in snapshot.conf (index and term 0): the core then
 * writes that configuration as committed entries 1..n of term 1 (CONF_ADD_VOTER per voter
 * in id order, identical on every initial member), which its first ready persists, so that
 * nodes added later learn the configuration from the log. A node joining an existing group
 * passes an empty conf and learns it from the leader (it never campaigns before). */
typedef struct {
    raft_hard_state_t hard_state;
    raft_snapshot_meta_t snapshot;
    const raft_entry_t *entries; /* borrowed: indexes snapshot.index+1 .. , contiguous */
    size_t n_entries;
    uint64_t applied; /* last index the application already applied (>= snapshot.index) */
} raft_restore_t;

typedef struct raft raft_t;

/* New core. Returns NULL on a bad config or restore; *err (if not NULL) gets the code. */
raft_t *raft_new(const raft_config_t *config, const raft_restore_t *restore, int *err);
void raft_destroy(raft_t **self_p);

void raft_tick(raft_t *r);

/* A message from a peer (borrowed). SHOAL_EINVAL for a malformed message, which is
 * dropped; other failures are only SHOAL_ENOMEM. Messages for another group or node are
 * refused with SHOAL_EINVAL. */
int raft_step(raft_t *r, const raft_msg_t *m);

/* Appends a normal entry (data copied); the appends to followers go out with the next ready,
 * one batch per follower for all proposals since the last one. Returns its index (> 0),
 * or SHOAL_ENOTLEADER with *leader_hint set (RAFT_NONE if unknown; leader_hint may be
 * NULL), or SHOAL_EBUSY while a leadership transfer is in progress. */
int64_t raft_propose(raft_t *r, const void *data, size_t len, uint64_t *leader_hint);

typedef enum {
    RAFT_CONF_ADD_VOTER = 0, /* same numbers as proto ConfChangeType */
    RAFT_CONF_ADD_LEARNER = 1,
    RAFT_CONF_REMOVE = 2,
    RAFT_CONF_PROMOTE = 3,
} raft_conf_change_type_t;

typedef struct {
    raft_conf_change_type_t type;
    uint64_t node_id;
    const uint8_t *context; /* opaque to the core (e.g. the endpoint), borrowed */
    size_t context_len;
} raft_conf_change_t;

/* Proposes a membership change. Returns its index, or
 *   SHOAL_ENOTLEADER (+hint)  not the leader;
 *   SHOAL_EBUSY    a change is pending, the leader has not committed in its term yet, a
 *                  transfer is running, or a learner to promote has not caught up;
 *   SHOAL_EEXIST   the node already has that role; SHOAL_ENOTFOUND removing/promoting an
 *                  unknown node; SHOAL_EINVAL a bad id or too many nodes;
 *   SHOAL_EUNAVAIL the new configuration would have no live quorum (counting the voters
 *                  the leader heard from recently), or no voter at all. */
int64_t raft_propose_conf_change(raft_t *r, const raft_conf_change_t *cc, uint64_t *leader_hint);

/* Decodes the data of a RAFT_ENTRY_CONF_CHANGE entry; cc->context borrows from data. */
int raft_conf_change_decode(const uint8_t *data, size_t len, raft_conf_change_t *cc);

/* Hands leadership to voter `to` (sends MSG_TIMEOUT_NOW once it is caught up; proposals
 * get SHOAL_EBUSY until it completes or an election timeout passes). SHOAL_ENOTLEADER,
 * SHOAL_EINVAL (self, not a voter), SHOAL_EBUSY (a transfer to another node is running),
 * SHOAL_EUNAVAIL (not heard from within an election timeout). */
int raft_transfer_leader(raft_t *r, uint64_t to);

/* Asks for a linearizable read barrier; ctx (copied, at most 256 bytes) comes back in a
 * raft_read_state_t of a later ready. A follower forwards it to the leader. Returns 0,
 * SHOAL_ENOTLEADER when no leader is known, SHOAL_EINVAL for a too long ctx. A read can
 * be lost (leader change, lost message): the caller times out and retries. */
int raft_read_index(raft_t *r, const void *ctx, size_t ctx_len);

/* Ends the leader's lease now: reads wait for a heartbeat round sent after this call until
 * a new lease is acknowledged. For a caller whose ticks stopped or fell behind real time
 * (a quiesced group, a stalled process), since the lease is counted in ticks. */
void raft_lease_drop(raft_t *r);

typedef struct {
    bool soft_state_changed;
    raft_soft_state_t soft_state;
    bool hard_state_changed;
    raft_hard_state_t hard_state; /* persist when changed */
    raft_entry_t *entries;        /* persist (overwrite from entries[0].index) */
    size_t n_entries;
    raft_snapshot_meta_t *snapshot; /* non-NULL: install and persist it before the rest */
    raft_entry_t *committed;        /* apply in order */
    size_t n_committed;
    raft_msg_t *msgs; /* send now */
    size_t n_msgs;
    raft_msg_t *msgs_after_persist; /* send after entries, hard state and snapshot are durable */
    size_t n_msgs_after_persist;
    raft_read_state_t *reads;
    size_t n_reads;
    /* bookkeeping for raft_advance */
    uint64_t last_index, last_term, applied_to, snapshot_index;
} raft_ready_t;

bool raft_has_ready(const raft_t *r);
/* Fills rd (owned by the caller until raft_advance/raft_ready_free). SHOAL_EBUSY if the
 * previous ready was not advanced yet; SHOAL_ENOMEM. */
int raft_ready(raft_t *r, raft_ready_t *rd);
/* Everything in rd is durable, sent and applied (handed to the state machine). Frees rd. */
void raft_advance(raft_t *r, raft_ready_t *rd);
/* Frees a ready without acknowledging it (e.g. the node crashed). If r is not NULL the core
 * forgets it was outstanding (use only before destroying r). */
void raft_ready_free(raft_t *r, raft_ready_t *rd);

/* The application took a snapshot of its state at applied index `index`: the core compacts
 * its log up to `index`, keeping behind it at most snapshot_trailing_entries entries and
 * snapshot_trailing_bytes bytes of their data, and will send the snapshot to followers
 * that need an entry it no longer holds. *meta (may be NULL) gets the
 * term and configuration at index, to store with the snapshot. SHOAL_EINVAL if index is
 * above applied or below the current snapshot. */
int raft_snapshot_taken(raft_t *r, uint64_t index, raft_snapshot_meta_t *meta);

/* Drops the trailing entries: compacts the log up to the latest snapshot, as a snapshot
 * taken with no trailing entries would have. For a group gone idle, whose followers are
 * all caught up; one that needs a dropped entry later gets the snapshot. */
void raft_drop_trailing(raft_t *r);

typedef enum {
    RAFT_PROGRESS_PROBE = 0,
    RAFT_PROGRESS_REPLICATE = 1,
    RAFT_PROGRESS_SNAPSHOT = 2,
} raft_progress_state_t;

typedef struct {
    uint64_t id;
    bool learner;
    uint64_t match;
    uint64_t next;
    raft_progress_state_t state;
    bool recent_active;
} raft_peer_status_t;

typedef struct {
    uint64_t id;
    raft_role_t role;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index; /* first entry in memory (snapshot index + 1) */
    uint64_t last_index;
    uint64_t snapshot_index;
    uint64_t log_bytes;      /* data bytes of the entries in memory (first_index..last_index) */
    uint64_t trailing_bytes; /* of those, the entries at or below snapshot_index */
    uint64_t lead_transferee;
    raft_conf_state_t conf;
    raft_peer_status_t peers[RAFT_MAX_NODES]; /* leader only: every node but self */
    size_t n_peers;
} raft_status_t;

void raft_status(const raft_t *r, raft_status_t *st);

/* Term of the entry at index, or 0 when it is compacted or beyond the log. */
uint64_t raft_term_at(const raft_t *r, uint64_t index);

/* Frees what a message owns (entries, their data, context, chunk data); m itself is not
 * freed. Use on messages of a ready if they are taken out of it, and on decoded messages. */
void raft_msg_free_contents(raft_msg_t *m);
/* Deep copy of src into dst. SHOAL_ENOMEM. */
int raft_msg_copy(raft_msg_t *dst, const raft_msg_t *src);

const char *raft_role_name(raft_role_t role);
const char *raft_msg_type_name(raft_msg_type_t type);

#endif
