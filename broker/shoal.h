/* shoal.h - libshoal, the C client of Shoal (installed as <shoal.h>).
 *
 * A shoal_t is one connection to a shoal-broker: one ZeroMQ DEALER socket, used by one
 * thread at a time. Every call is either synchronous (shoal_get, shoal_put, ...: send,
 * wait for the answer or the timeout) or asynchronous (shoal_submit: many requests in
 * flight on the same socket, answers matched by request id and handed to a callback from
 * shoal_pump). Synchronous calls may be mixed with asynchronous ones.
 *
 * Threads may connect at once. The first connect of a process runs czmq's process setup
 * (zsys_init), once: among others its SIGINT/SIGTERM handler, which sets zsys_interrupted
 * and so ends a waiting call (set ZSYS_SIGHANDLER=false before it to keep the program's
 * own handlers).
 *
 * Exactly-once writes: each shoal_t draws a random client id (48 random bits above 16 bits of
 * lane). A write travels as (client id + lane, seq): every request in flight holds its own
 * lane, and a lane's seq increases by one per write, so each (client id, seq) stream has at
 * most one write in flight - which is what a state machine session that remembers the last seq
 * per client needs to apply a retried write once. The library resends a request that got no
 * answer (broker restarted) with the same id and seq until its deadline.
 *
 * Status codes are the wire's (proto/client.proto) and never change meaning. */
#ifndef SHOAL_CLIENT_H
#define SHOAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SHOAL_STATUS_OK = 0,
    SHOAL_STATUS_NOT_FOUND = 1,
    SHOAL_STATUS_COMPARE_FAILED = 2,
    SHOAL_STATUS_UNAVAILABLE = 3, /* no leader, node down: retry later */
    SHOAL_STATUS_BAD_REQUEST = 4, /* malformed or unknown: do not retry. Also a key sent to a
                                   * node's endpoint instead of a broker's that the node's map
                                   * places in another shard than the request names ("key
                                   * belongs to shard S, not to shard 0 ...": nothing applied;
                                   * docs/CONTRACTS.md) */
    SHOAL_STATUS_NOT_LEADER = 5,  /* internal to the broker; never returned to clients */
    SHOAL_STATUS_TIMEOUT = 6,     /* deadline passed; a write may or may not have applied */
    SHOAL_STATUS_TOO_LARGE = 7,   /* key or value past SHOAL_MAX_KEY / SHOAL_MAX_VALUE, or a
                                   * batch's writes to one shard past 4 MiB: nothing applied */
    SHOAL_STATUS_INTERNAL = 8,
    SHOAL_STATUS_WINDOW_GONE = 9, /* changes older than the retained window */
} shoal_status_t;

/* The negative codes (SHOAL_E...) that shoal_submit, shoal_pump and the watch calls
 * return: Shoal's own error codes (engine/error.h, not installed), repeated here with the
 * same values under that header's guard, so either header may come first. A unit test
 * (tests/unit/test_shoal_header.c) checks the two copies agree. */
#ifndef SHOAL_ERROR_H
#define SHOAL_ERROR_H
enum {
    SHOAL_OK = 0,
    SHOAL_EIO = -1,
    SHOAL_ECORRUPT = -2,
    SHOAL_EINVAL = -3, /* bad argument */
    SHOAL_ENOTFOUND = -4,
    SHOAL_ENOMEM = -5,
    SHOAL_EBUSY = -6, /* SHOAL_MAX_INFLIGHT requests in flight */
    SHOAL_ENOTLEADER = -7,
    SHOAL_ETIMEDOUT = -8,
    SHOAL_EEXIST = -9,
    SHOAL_ECLOSED = -10, /* interrupted (SIGINT/SIGTERM) */
    SHOAL_ETOOLARGE = -11,
    SHOAL_ECOMPARE = -12,
    SHOAL_EUNAVAIL = -13,
    SHOAL_ENOSPC = -14,
};
/* A static, human string for a code; never NULL. */
const char *shoal_strerror(int code);
#endif

#define SHOAL_MAX_KEY 4096u /* bytes */
#ifndef SHOAL_MAX_BROKERS
#define SHOAL_MAX_BROKERS 8 /* endpoints in one shoal_connect or watch list */
#endif
#define SHOAL_MAX_VALUE (1u << 20) /* bytes */
/* A batch's writes to any one shard (keys and values) also total at most 4 MiB, the most
 * a node takes in one Raft entry (docs/OPERATIONS.md, "Limits"). */
#define SHOAL_MAX_BATCH 1000u /* operations per batch */
#define SHOAL_DEFAULT_TIMEOUT_MS 5000
#define SHOAL_DEFAULT_ENDPOINT "tcp://127.0.0.1:7000"

/* A static name for a status ("ok", "not found", ...). */
const char *shoal_status_str(int status);

typedef struct {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    uint64_t mod_index;
} shoal_kv_t;

typedef struct {
    uint32_t shard;
    uint64_t index;
    bool is_delete;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    uint32_t op_seq, op_count; /* a batch entry's ops share its index: op op_seq of op_count */
} shoal_change_t;

/* What a call returns. Owns its buffers: free with shoal_result_clear. */
typedef struct {
    int status;      /* shoal_status_t */
    char error[256]; /* one line when status is not OK */
    bool found;
    uint8_t *value; /* get; cas: the current value when the compare failed */
    size_t value_len;
    uint32_t shard;  /* the key's shard (a batch: its one shard; 0 when it spans several) */
    uint64_t index;  /* Raft index a write applied at (a batch over several shards: 0) */
    shoal_kv_t *kvs; /* scan, in key order */
    size_t n_kvs;
    bool more; /* scan stopped at its limit */
    shoal_change_t *changes;
    size_t n_changes;
    uint64_t latency_us;
} shoal_result_t;

void shoal_result_clear(shoal_result_t *r);

typedef enum {
    SHOAL_OP_GET = 1,
    SHOAL_OP_PUT,
    SHOAL_OP_DEL,
    SHOAL_OP_CAS,
    SHOAL_OP_SCAN,
    SHOAL_OP_BATCH,
    SHOAL_OP_CHANGES,
} shoal_op_type_t;

typedef struct {
    bool is_delete;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} shoal_batch_op_t;

/* One request. Buffers are borrowed: shoal_submit copies what it needs before returning. */
typedef struct {
    shoal_op_type_t type;
    const void *key; /* get put del cas */
    size_t key_len;
    const void *value; /* put; cas: the new value */
    size_t value_len;
    const void *expected; /* cas */
    size_t expected_len;
    bool expect_absent;   /* cas: swap only if the key is missing */
    bool delete_on_match; /* cas: compare-and-delete */
    bool stale;           /* get, scan: a follower may answer */
    const void *prefix;   /* scan */
    size_t prefix_len;
    const void *start; /* scan: inclusive, NULL = first key */
    size_t start_len;
    const void *end; /* scan: exclusive, NULL = last key */
    size_t end_len;
    uint32_t limit;              /* scan, changes: 0 = server default */
    const shoal_batch_op_t *ops; /* batch */
    size_t n_ops;
    uint32_t shard;       /* changes */
    uint64_t after_index; /* changes */
    uint32_t after_ops;   /* changes: ops of entry after_index had (0: all) */
} shoal_op_t;

typedef struct shoal_t shoal_t;

/* Connects to a broker's client endpoint (NULL: $SHOAL_BROKER, else
 * SHOAL_DEFAULT_ENDPOINT), or to several brokers of one cluster given as a comma-separated
 * list (at most 8): each request then goes to one of those connected, and
 * one whose broker died is resent to another when the connection drops, so a client
 * keeps working while a broker is down; a watch (and `shoalctl events`) moves to another
 * broker's XPUB when its broker is gone. ZeroMQ connects lazily, so this fails
 * (NULL) only on a malformed endpoint (tcp://HOST:PORT wants a port of 1-65535; no empty list
 * entry; an empty endpoint or $SHOAL_BROKER is one too, never the default) or when out of
 * resources. */
shoal_t *shoal_connect(const char *endpoint);
/* Requests still in flight are dropped: their callbacks never run. */
void shoal_destroy(shoal_t **self_p);

/* Per-request deadline for later calls, milliseconds (default SHOAL_DEFAULT_TIMEOUT_MS,
 * also for timeout_ms <= 0). A NULL self: no effect, NULL endpoint, client id 0, nothing
 * in flight. */
void shoal_set_timeout(shoal_t *self, int timeout_ms);
const char *shoal_endpoint(shoal_t *self);
uint64_t shoal_client_id(shoal_t *self);

/* Synchronous calls: return the status (shoal_status_t) and fill *out when not NULL.
 * A NULL self, or a NULL buffer with a non-zero length, is SHOAL_STATUS_BAD_REQUEST, as is
 * an empty key. With SHOAL_MAX_INFLIGHT requests in flight a call is
 * SHOAL_STATUS_UNAVAILABLE; one ended by SIGINT/SIGTERM is SHOAL_STATUS_TIMEOUT
 * ("interrupted"; its request may still be applied). */
int shoal_call(shoal_t *self, const shoal_op_t *op, shoal_result_t *out);
int shoal_get(shoal_t *self, const void *key, size_t klen, bool stale, shoal_result_t *out);
int shoal_put(shoal_t *self, const void *key, size_t klen, const void *val, size_t vlen,
              shoal_result_t *out);
int shoal_del(shoal_t *self, const void *key, size_t klen, shoal_result_t *out);
/* expected == NULL with expect_absent: swap only when the key is missing. On
 * SHOAL_STATUS_COMPARE_FAILED, out->value holds the current value (out->found false when
 * the key is missing). */
int shoal_cas(shoal_t *self, const void *key, size_t klen, const void *expected, size_t elen,
              bool expect_absent, const void *val, size_t vlen, shoal_result_t *out);
int shoal_scan(shoal_t *self, const void *prefix, size_t plen, const void *start, size_t slen,
               const void *end, size_t elen, uint32_t limit, shoal_result_t *out);
/* Batches are split by shard by the broker: atomic within a shard, not across shards. */
int shoal_batch(shoal_t *self, const shoal_batch_op_t *ops, size_t n, shoal_result_t *out);
/* The changes of one shard after a Raft index (catch-up for watchers). */
int shoal_changes(shoal_t *self, uint32_t shard, uint64_t after_index, uint32_t limit,
                  shoal_result_t *out);
/* Same from the middle of an entry: also entry after_index's ops from op_seq after_ops on
 * (0: none of them, as shoal_changes). */
int shoal_changes_after(shoal_t *self, uint32_t shard, uint64_t after_index, uint32_t after_ops,
                        uint32_t limit, shoal_result_t *out);

/* Asynchronous calls. done runs from shoal_pump (or from a synchronous call) with a
 * result that is cleared when done returns. shoal_submit returns 0, or a negative
 * SHOAL_E... code (SHOAL_EBUSY when SHOAL_MAX_INFLIGHT requests are in flight). */
#define SHOAL_MAX_INFLIGHT 4096
typedef void(shoal_done_fn)(shoal_result_t *r, void *arg);
int shoal_submit(shoal_t *self, const shoal_op_t *op, shoal_done_fn *done, void *arg);
/* Waits up to timeout_ms for answers (0: only what is ready; negative: until one comes,
 * or returns 0 at once when nothing is in flight), runs their callbacks and expires
 * requests past their deadline; returns as soon as any completed, or on SIGINT/SIGTERM.
 * Returns the number of requests completed (SHOAL_EINVAL for a NULL self). */
int shoal_pump(shoal_t *self, int timeout_ms);
size_t shoal_inflight(shoal_t *self);

/* Admin calls. Results are JSON-free C structs kept small on purpose: shoalctl prints
 * them. Each returns a status and fills err (one line) when not OK. */
typedef struct {
    uint64_t id;
    char endpoint[128];
    bool up;
    uint64_t last_seen_ms_ago;
    uint32_t replicas;
    uint64_t rss_bytes;
    uint64_t bytes_on_disk;
    uint64_t follower_reads; /* linearizable reads served as a follower (read index) */
} shoal_node_status_t;

typedef struct {
    uint32_t id;
    int64_t leader; /* -1 when unknown */
    uint64_t term, commit_index, apply_index, size_bytes;
    uint64_t max_lag; /* commit index minus the slowest replica's match index */
    size_t n_replicas;
    uint64_t replicas[16];
    uint64_t match_index[16];
    size_t n_leaving; /* a move in progress: nodes still holding a replica being moved away */
    uint64_t leaving[16];
} shoal_shard_status_t;

typedef struct {
    uint64_t node_id;
    uint32_t shard;
    int type; /* RaftEventType of proto/events.proto */
    const char *type_name;
    uint64_t term, leader_id, commit_index, apply_index, timestamp_us;
    char detail[160];
} shoal_event_t;

typedef struct {
    uint64_t map_version;
    size_t n_nodes, n_shards, n_events;
    shoal_node_status_t *nodes;
    shoal_shard_status_t *shards;
    shoal_event_t *events;
    /* the metadata group (id SHOAL_META_SHARD): leader (-1 unknown), its members in the
     * map of map_version with their match index, commit and applied index. has_meta is
     * false from a broker that does not report it. Not counted in shards. */
    bool has_meta;
    shoal_shard_status_t meta;
} shoal_cluster_t;

void shoal_cluster_clear(shoal_cluster_t *c);
int shoal_status(shoal_t *self, bool with_events, shoal_cluster_t *out, char *err, size_t errlen);
/* The id of the cluster the broker serves (ShardMap.cluster_id, `cluster/id`), from its
 * shard map answer: *out is 0 while the broker knows none (or predates cluster ids). */
int shoal_cluster_id(shoal_t *self, uint64_t *out, char *err, size_t errlen);
int shoal_admin_transfer_leader(shoal_t *self, uint32_t shard, uint64_t to_node, char *err,
                                size_t errlen);
int shoal_admin_add_node(shoal_t *self, uint64_t id, const char *endpoint, const char *pub_endpoint,
                         char *err, size_t errlen);
int shoal_admin_remove_node(shoal_t *self, uint64_t id, char *err, size_t errlen);
/* The error text an UNAVAILABLE scan or batch starts with when the broker divided it among
 * the shards of a map that add-shard changed before it finished. libshoal retries such a
 * request whole (the same frame: same client id and seq, so a batch part that applied is
 * answered from its session, not applied again) with a short backoff while its deadline
 * allows; callers see it only when the deadline runs out. */
#define SHOAL_ERR_MAP_CHANGED "the shard map changed during the request"

/* shard SHOAL_META_SHARD moves a replica of the metadata group (shoalctl: `meta`). */
#define SHOAL_META_SHARD 4294967295u
int shoal_admin_move_replica(shoal_t *self, uint32_t shard, uint64_t from, uint64_t to, char *err,
                             size_t errlen);
/* Cancels shard's unfinished move: the map puts its FROM back and lists its TO as leaving,
 * and the group converges back like a move (TO deletes its replica when done). Answered
 * once the map records it; BAD_REQUEST when the shard has no move in progress. */
int shoal_admin_cancel_move(shoal_t *self, uint32_t shard, char *err, size_t errlen);
/* Adds a shard by splitting source (< 0: the shard with the most ring points); the new
 * shard keeps the source's replicas. On OK *new_shard and *from name the new shard and the
 * shard it was split from (either pointer may be NULL). Answered once the shard map records
 * the split; the new shard serves soon after (`shoal_status`). */
int shoal_admin_add_shard(shoal_t *self, int64_t source, uint32_t *new_shard, uint32_t *from,
                          char *err, size_t errlen);
/* shard < 0: every shard; past UINT32_MAX: SHOAL_STATUS_BAD_REQUEST. */
int shoal_admin_compact(shoal_t *self, int64_t shard, char *err, size_t errlen);
int shoal_admin_snapshot(shoal_t *self, int64_t shard, char *err, size_t errlen);
const char *shoal_event_type_name(int type);

/* Change streams. A watch subscribes to the broker's XPUB (pub_endpoint NULL: the client
 * endpoint's port + 1, the broker's default layout) for keys starting with prefix. With
 * several brokers (a client connected to a list, or a comma-separated list of XPUB endpoints)
 * it follows one at a time and moves to the next when it has had no connection for a second,
 * catching up what the stream lost meanwhile (below). The place to catch up from in a shard is
 * its last change delivered, else the last progress notice (every second): a stream cut before
 * either reached the watch loses what was published until it is back, unless shoal_watch_from
 * gave the shard a place. Events of one shard come in Raft index order; when the library sees
 * a gap (an event whose prev_index is past the last one delivered; with a prefix, a jump in
 * the broker's count of events sent for it, or a disconnect) it fetches the missing range with
 * shoal_changes through client before going on; when that range is no longer retained it
 * delivers SHOAL_WATCH_FELL_BEHIND with the shard (change.index: the last change it delivered
 * there, or the shard's applied index when the broker said so; not a point to resume from, the
 * window no longer reaches back). To go on: scan for the current state, then watch the shard
 * from a progress event's index that came after the scan began. */
typedef enum {
    SHOAL_WATCH_CHANGE = 1,
    SHOAL_WATCH_PROGRESS,    /* idle stream: change.shard applied up to change.index */
    SHOAL_WATCH_FELL_BEHIND, /* change.shard lost changes (see above) */
} shoal_watch_kind_t;

typedef struct {
    shoal_watch_kind_t kind;
    shoal_change_t change; /* owned by the watch until the next call */
} shoal_watch_event_t;

typedef struct shoal_watch_t shoal_watch_t;

/* client is borrowed (may be NULL: no catch-up); it must outlive the watch. NULL when
 * plen > SHOAL_MAX_KEY, prefix is NULL with a non-zero plen, both client and pub_endpoint
 * are NULL, or the endpoint list is malformed (an empty entry or endpoint, more than
 * SHOAL_MAX_BROKERS). */
shoal_watch_t *shoal_watch_new(shoal_t *client, const char *pub_endpoint, const void *prefix,
                               size_t plen);
void shoal_watch_destroy(shoal_watch_t **self_p);
/* Delivers the changes of shard after index first (catch-up), before live events.
 * 0; SHOAL_ENOTFOUND: they are no longer retained (FELL_BEHIND is queued, once per lost
 * range); SHOAL_EINVAL: no such shard, or a watch without a client; SHOAL_EUNAVAIL: the
 * broker did not answer. */
int shoal_watch_from(shoal_watch_t *self, uint32_t shard, uint64_t after_index);
/* Same from the middle of an entry: also entry after_index's ops from op_seq after_ops on
 * (after_ops 0: after the whole entry). To resume after a delivered change c:
 * shoal_watch_from_op(w, c.shard, c.index, c.op_seq + 1); resuming from c.index alone
 * skips the rest of a batch's ops. */
int shoal_watch_from_op(shoal_watch_t *self, uint32_t shard, uint64_t after_index,
                        uint32_t after_ops);
/* Waits up to timeout_ms (negative: until an event or an interrupt).
 * 1: *ev filled; 0: timed out; negative: SHOAL_E... (SHOAL_ECLOSED: interrupted;
 * SHOAL_EINVAL: self or ev NULL). */
int shoal_watch_next(shoal_watch_t *self, shoal_watch_event_t *ev, int timeout_ms);
/* The DEALER/SUB sockets' native handles are not exposed: poll with timeouts. */

#ifdef __cplusplus
}
#endif
#endif
