/* raft_int.h - the inside of the Raft core, shared by its files (never included outside
 * engine/raft and its tests).
 *
 * Files, one concern each: raft.c (construction, step dispatch and the term rules, tick,
 * ready/advance, status), log.c (the in-memory log), election.c (pre-vote, vote,
 * roles), replication.c (appends, flow control, commit, heartbeats, transfer),
 * snapshot.c (chunked InstallSnapshot, compaction), membership.c (configuration
 * changes), read_index.c (ReadIndex and lease reads), util.c (messages, names).
 *
 * Invariants kept everywhere:
 *  - log.offset <= log.applied <= log.committed <= last index; entries [offset+1, last] are
 *    in memory; log.stable <= last (entries above stable go out in the next ready).
 *  - A leader counts its own match as log.stable: it never commits on entries it has
 *    not persisted itself.
 *  - Messages that promise something about durable state (votes, acks) go in the
 *    after-persist outbox, so they leave only after the ready that holds that state is
 *    durable.
 */
#ifndef SHOAL_RAFT_INT_H
#define SHOAL_RAFT_INT_H

#include "engine/raft/raft.h"

typedef struct {
    raft_entry_t *ents; /* ents[i].index == offset + 1 + i */
    size_t n, cap;
    uint64_t bytes;       /* sum of ents[].len: the entries' data held in memory */
    uint64_t offset;      /* index of the last entry covered by the snapshot */
    uint64_t offset_term; /* its term */
    uint64_t stable;      /* last index handed out for persistence */
    uint64_t persisted;   /* last index known durable (acknowledged by raft_advance) */
    uint64_t committed;
    uint64_t applied; /* last index handed out for applying */
} raft_log_t;

typedef struct {
    uint64_t id;
    bool learner;
    uint64_t match, next;
    raft_progress_state_t state;
    bool probe_sent;     /* probe: one append is out, wait for an answer or a heartbeat */
    uint64_t probe_last; /* ...its last entry (0: it carried none) */
    uint64_t probe_at;   /* ...the tick it was sent */
    uint64_t last_heard; /* tick of the last message from this peer */
    uint64_t *inflight;  /* replicate: ring of the last index of each append in flight */
    unsigned in_start, in_count;
    uint64_t snap_index; /* snapshot state: the snapshot being sent and the next offset */
    uint64_t snap_offset;
    unsigned snap_elapsed;
    uint64_t read_ack; /* highest heartbeat round acknowledged */
} raft_progress_t;

typedef struct {
    uint64_t index, round, from;
    uint8_t *ctx;
    size_t len;
} raft_read_t;

typedef struct {
    uint64_t index;
    raft_conf_state_t conf;
} raft_conf_hist_t;

typedef struct {
    raft_msg_t *v;
    size_t n, cap;
} raft_msgvec_t;

#define RAFT_ROUND_RING 64

struct raft {
    raft_config_t cfg;
    uint64_t id;
    uint64_t term, vote, lead;
    raft_role_t role;
    raft_log_t log;

    raft_conf_state_t conf;      /* in effect: the last committed configuration */
    uint64_t conf_scanned;       /* conf entries up to here are applied to conf */
    raft_conf_state_t snap_conf; /* configuration at log.offset */
    raft_snapshot_meta_t snap;   /* the latest snapshot (index >= log.offset): what a
                                    follower missing compacted entries is sent */
    uint64_t trail_bytes;        /* data bytes of the entries in memory at or below
                                    snap.index (the trailing entries) */
    raft_conf_hist_t *hist;      /* committed configurations above log.offset */
    size_t n_hist, cap_hist;
    bool step_down_pending; /* the leader's own removal committed */

    raft_progress_t prs[RAFT_MAX_NODES]; /* leader: every voter and learner, self included */
    size_t n_prs;

    uint64_t votes[RAFT_MAX_NODES]; /* candidates: who answered, and how */
    bool granted[RAFT_MAX_NODES];
    size_t n_votes;

    uint64_t now;            /* ticks since raft_new */
    uint64_t leader_contact; /* tick of the last message from a leader (0 at start) */
    unsigned election_elapsed, heartbeat_elapsed, randomized_timeout;
    uint64_t rng;

    uint64_t lead_transferee;
    unsigned transfer_elapsed;
    uint64_t pending_conf_index;

    /* read index */
    raft_read_t *reads;
    size_t n_reads, cap_reads;
    uint64_t read_round;
    uint64_t round_tick[RAFT_ROUND_RING];
    uint64_t lease_until;
    uint64_t lease_min_round; /* rounds below this never extend the lease (raft_lease_drop) */
    bool lease_disabled;      /* a TIMEOUT_NOW went out this term: no lease until the next one */
    raft_read_state_t *rstates;
    size_t n_rstates, cap_rstates;

    /* receiving a snapshot */
    uint64_t recv_snap_index, recv_offset;
    raft_snapshot_meta_t pending_snapshot;
    bool has_pending_snapshot;
    bool snap_installing; /* from the last chunk until the ready holding it is advanced */

    raft_msgvec_t out, out_after;
    raft_hard_state_t prev_hs;
    raft_soft_state_t prev_ss;
    bool ready_outstanding;
    bool append_pending; /* proposals since the last ready: sent in one batch per peer */
    bool commit_pending; /* the commit index moved: every follower hears it in the next ready */
};

/* log.c */
uint64_t log_last_index(const raft_log_t *l);
uint64_t log_last_term(const raft_log_t *l);
uint64_t log_term(const raft_log_t *l, uint64_t index); /* 0 if unknown */
bool log_match_term(const raft_log_t *l, uint64_t index, uint64_t term);
raft_entry_t *log_entry(const raft_log_t *l, uint64_t index); /* NULL if not in memory */
int log_append(raft_log_t *l, const raft_entry_t *e, bool copy_data);
void log_truncate_from(raft_log_t *l, uint64_t index);
void log_compact_to(raft_log_t *l, uint64_t index);
void log_reset(raft_log_t *l, uint64_t index, uint64_t term);
void log_free(raft_log_t *l);
uint64_t log_find_conflict_by_term(const raft_log_t *l, uint64_t index, uint64_t term);
bool log_up_to_date(const raft_log_t *l, uint64_t last_index, uint64_t last_term);
int entry_copy(raft_entry_t *dst, const raft_entry_t *src);

/* raft.c */
int raft_send(raft_t *r, raft_msg_t *m); /* takes m's contents; fills group, from, term */
void raft_reset_timeout(raft_t *r);
bool raft_is_voter(const raft_t *r, uint64_t id);
bool raft_is_learner(const raft_t *r, uint64_t id);
size_t raft_quorum(const raft_t *r);
void raft_commit_to(raft_t *r, uint64_t index);
int64_t leader_append(raft_t *r, raft_entry_type_t type, const void *data, size_t len);

/* election.c */
void become_follower(raft_t *r, uint64_t term, uint64_t lead);
void become_leader(raft_t *r);
void campaign(raft_t *r, bool prevote, bool forced);
int handle_vote_request(raft_t *r, const raft_msg_t *m);
void handle_vote_response(raft_t *r, const raft_msg_t *m);

/* replication.c */
raft_progress_t *progress_of(raft_t *r, uint64_t id);
void progress_reset(raft_t *r, raft_progress_t *pr, uint64_t id, bool learner);
void progress_free(raft_progress_t *pr);
void progress_become_probe(raft_progress_t *pr);
bool send_append(raft_t *r, raft_progress_t *pr, bool allow_empty);
void commit_moved(raft_t *r);
void flush_appends(raft_t *r);
void bcast_heartbeat(raft_t *r);
bool maybe_commit(raft_t *r);
int handle_append(raft_t *r, const raft_msg_t *m);
void handle_append_response(raft_t *r, const raft_msg_t *m);
void handle_heartbeat(raft_t *r, const raft_msg_t *m);
void handle_heartbeat_response(raft_t *r, const raft_msg_t *m);
void send_timeout_now(raft_t *r, uint64_t to);
bool peer_active(const raft_t *r, const raft_progress_t *pr);
void leader_tick(raft_t *r);

/* snapshot.c */
void send_snapshot(raft_t *r, raft_progress_t *pr);
void snapshot_tick(raft_t *r, raft_progress_t *pr);
int handle_snapshot(raft_t *r, const raft_msg_t *m);
void handle_snapshot_response(raft_t *r, const raft_msg_t *m);

/* membership.c */
void conf_apply_committed(raft_t *r);
void conf_sync_progress(raft_t *r);
const raft_conf_state_t *conf_at(const raft_t *r, uint64_t index);
void conf_drop_hist_to(raft_t *r, uint64_t index);
bool conf_has(const uint64_t *ids, size_t n, uint64_t id);
size_t conf_change_encode(const raft_conf_change_t *cc, uint8_t *buf);
int conf_bootstrap(raft_t *r);

/* read_index.c */
int leader_read(raft_t *r, uint64_t from, const uint8_t *ctx, size_t len);
void reads_flush(raft_t *r);
void reads_on_ack(raft_t *r);
void reads_drop(raft_t *r);
int read_state_push(raft_t *r, uint64_t index, const uint8_t *ctx, size_t len);
void handle_read_index(raft_t *r, const raft_msg_t *m);

/* Test hook: when set, the core breaks the rule named (planted bugs for the simulator's
 * self-test). Only honoured in a build with SHOAL_RAFT_PLANTED_BUGS defined. */
enum {
    RAFT_BUG_NONE = 0,
    RAFT_BUG_COMMIT_MINORITY = 1, /* commit what one node less than a majority has */
    RAFT_BUG_VOTE_TWICE = 2,      /* grant a vote without remembering it */
    RAFT_BUG_STALE_READ = 3,      /* serve ReadIndex without the heartbeat round */
    RAFT_BUG_NO_TRUNCATE = 4,     /* keep conflicting entries on a follower */
    RAFT_BUG_VOTE_ANY_LOG = 5,    /* grant votes without the up-to-date log check */
    RAFT_BUG_COMMIT_OLD_TERM = 6, /* commit entries of earlier terms by counting (Figure 8) */
};
#ifdef SHOAL_RAFT_PLANTED_BUGS
extern int raft_planted_bug;
#define RAFT_BUG(b) (raft_planted_bug == (b))
#else
#define RAFT_BUG(b) 0
#endif

#endif
