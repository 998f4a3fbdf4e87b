/* broker_internal.h - the broker's private state, shared by broker.c (sockets and loop),
 * route.c (client requests), admin.c (cluster state and admin requests) and streams.c
 * (change-stream fan-out). One thread touches all of it: no locks. */
#ifndef SHOAL_BROKER_INTERNAL_H
#define SHOAL_BROKER_INTERNAL_H

#include <string.h>

#include "broker/broker.h"
#include "engine/ring.h"
#include "proto/codec.h"

#define BROKER_NO_LEADER (-1)
#define BROKER_RECENT 128                   /* recent Raft events kept for status and `events` */
#define BROKER_POLL_BIT ((uint64_t)1 << 62) /* request ids of the broker's own node polls */
#define BROKER_DOWN_MS 3000                 /* silence after which a node is shown down */
#define BROKER_MAX_PENDING 200000           /* requests in flight before new ones are refused */

typedef struct {
    uint64_t id;
    char *endpoint;
    char *pub_endpoint;
    zsock_t *dealer;
    bool up;
    int64_t last_seen;     /* zclock_mono ms of the last message heard from it; 0 never */
    uint64_t last_seen_us; /* wall clock of the same */
    uint32_t replicas;
    uint64_t rss_bytes, bytes_on_disk;
    uint64_t follower_reads; /* linearizable reads its replicas took as followers */
    bool removed;            /* no longer in the shard map (remove-node): kept for ids, not shown */
    /* client requests of this loop turn, sent as one Frame{batch} at its end (node_out.c) */
    struct bqueued_t *q;
    size_t q_n, q_cap;
} bnode_t;

typedef struct {
    uint32_t id;
    uint64_t replicas[BROKER_MAX_REPLICAS];
    uint64_t match[BROKER_MAX_REPLICAS];
    size_t n_replicas;
    uint64_t leaving[BROKER_MAX_REPLICAS]; /* replicas being moved away (map's leaving list) */
    size_t n_leaving;
    bool splitting; /* created by a split of split_from that is not closed yet */
    uint32_t split_from;
    int64_t leader; /* node id, or BROKER_NO_LEADER */
    uint64_t term, commit, apply, size;
    uint64_t last_change; /* highest change index republished */
    uint32_t last_seq;    /* and the highest op of that entry (a batch's ops share it) */
    unsigned rr; /* round robin for stale reads */
} bshard_t;

typedef struct gather_t gather_t;
typedef struct prefix_seq_t prefix_seq_t;

/* A request on its way to a node. */
typedef struct {
    uint64_t id;               /* broker-local request id, the node echoes it */
    zframe_t *client;          /* ROUTER identity of the client (NULL in fan-out children) */
    uint64_t client_rid;       /* the client's request id, restored in the answer */
    Shoal__Frame *frame;       /* owned original frame (singles) */
    Shoal__ClientRequest *req; /* what to send: in frame, in the gather, or `sub` below */
    Shoal__ClientRequest sub;  /* a batch child's own request... */
    Shoal__BatchRequest sub_batch;
    Shoal__BatchOp **sub_ops;   /* ...borrowing the parent's ops */
    Shoal__AdminRequest *admin; /* admin forward: borrowed from frame or gather */
    uint32_t shard;
    bool is_write;
    int64_t deadline;
    int64_t attempt_deadline; /* 0 when not sent */
    int64_t retry_at;         /* 0 when not waiting to retry */
    int attempts;
    int waits;       /* attempt timeouts passed waiting on a node heard from (route_sweep) */
    int last_status; /* UNAVAILABLE once a node refused or was unreachable */
    bool delivered;  /* some attempt reached a node */
    int64_t sent_to; /* node id or -1 */
    unsigned rotate;
    gather_t *gather;
    size_t slot;
} pending_t;

typedef enum { GATHER_SCAN, GATHER_BATCH, GATHER_ADMIN } gather_kind_t;

/* A client request fanned out to several shards or nodes. */
struct gather_t {
    gather_kind_t kind;
    zframe_t *client;
    uint64_t client_rid;
    Shoal__Frame *frame; /* the original frame, owned */
    size_t expected, got;
    Shoal__Frame **answers; /* per child, owned; NULL until it answered */
    int status;             /* first failure seen */
    char error[256];
    uint32_t limit;
    size_t n_shards;      /* scans: the shards of the map it was divided by */
    uint32_t *slot_shard; /* scans: the shard each child (slot) asked */
};

struct broker_t {
    broker_config_t cfg;
    zsock_t *front; /* ROUTER */
    zsock_t *xpub;
    zsock_t *sub;
    zsock_t *http; /* ZMQ_STREAM web dashboard, or NULL */
    zsock_t *pipe; /* actor pipe or NULL */
    bnode_t nodes[BROKER_MAX_NODES];
    size_t n_nodes;
    bshard_t *shards;
    size_t n_shards;
    ring_t *ring;
    uint64_t map_version;
    /* ShardMap.cluster_id of the cluster served: cluster/id of the config, else the id of the
     * first node's map that carries one (admin.c, same_cluster); 0 while unknown */
    uint64_t cluster_id;
    int64_t foreign_log_ms; /* the last warning about a map of another cluster */
    int64_t meta_leader;
    bshard_t meta;          /* the metadata group as its leader's status last showed it (leader:
                             * meta_leader) */
    size_t meta_guess_next; /* where the next guess at the metadata leader starts */
    size_t change_topics;   /* distinct "change/..." topics subscribed on the XPUB */
    prefix_seq_t *prefixes; /* those topics' prefixes, with the changes sent per prefix */
    size_t n_prefixes;
    uint64_t stream_epoch; /* random per broker run: the prefix counts restart with it */
    zhashx_t *pending;      /* id -> pending_t */
    uint64_t next_id;
    Shoal__RaftEvent *recent[BROKER_RECENT];
    size_t recent_head, n_recent;
    int64_t next_sweep, next_poll, next_progress;
    uint64_t stats_requests, stats_retries, stats_changes, stats_polls;
    uint64_t stats_node_msgs; /* messages with client requests sent to nodes */
};

/* Info lines unless broker/log_level is error or warning. */
#define broker_info(b, ...)                                                                        \
    do {                                                                                           \
        if (strcmp((b)->cfg.log_level, "error") && strcmp((b)->cfg.log_level, "warning"))          \
            zsys_info(__VA_ARGS__);                                                                \
    } while (0)

/* broker.c */
bnode_t *broker_node(broker_t *b, uint64_t id);
bshard_t *broker_shard(broker_t *b, uint32_t id);
int broker_send_frame(zsock_t *sock, const Shoal__Frame *f);
int broker_reply(broker_t *b, zframe_t *client, Shoal__Frame *f);
int broker_set_map(broker_t *b, const Shoal__ShardMap *map);

/* route.c */
void route_client_request(broker_t *b, zframe_t *client, Shoal__Frame *f);
void route_node_response(broker_t *b, bnode_t *n, Shoal__Frame *f);
void route_sweep(broker_t *b);
/* A request queued for node n that could not be sent (no connection, or its queue full):
 * the same as a failed send at once (route.c). was_delivered: before this attempt. */
void route_unsent(broker_t *b, bnode_t *n, uint64_t rid, bool was_delivered);
/* node_out.c: queues an encoded client request frame for n (takes buf); 0, or SHOAL_EUNAVAIL
 * when it cannot go (a frame over SHOAL_BATCH_ALONE is sent at once, not queued). */
int node_out_queue(bnode_t *n, uint8_t *buf, size_t len, uint64_t rid, bool was_delivered);
/* Sends every node's queue: one message per node (a batch, or the lone frame); the
 * requests of a send that fails go to route_unsent. Returns the messages sent. */
uint64_t node_out_flush(broker_t *b);
/* Frees a node's queue unsent (broker_destroy). */
void node_out_free(bnode_t *n);
void route_free_all(broker_t *b);
/* Before each attempt (reroute.c): a single-key request follows its key to the current
 * map's shard; false (err filled) when a fan-out child's division no longer holds. */
bool reroute_attempt(broker_t *b, pending_t *p, char *err, size_t errlen);
/* Whether a batch divided among shards ids[0..n) must wait: it has parts on both a shard
 * whose split is still open and on that split's source (reroute.c says why); err then
 * holds the SHOAL_ERR_MAP_CHANGED answer. */
bool reroute_batch_waits(broker_t *b, const uint32_t *ids, size_t n, char *err, size_t errlen);
void route_admin_response(broker_t *b, bnode_t *n, Shoal__Frame *f);
/* Whether the client's admin request rid is still on its way (libshoal sends it again
 * every second while it waits). */
bool route_admin_in_flight(broker_t *b, zframe_t *client, uint64_t rid);
void route_forward_admin(broker_t *b, zframe_t *client, Shoal__Frame *f, const uint64_t *nodes,
                         size_t n);
void route_reply_error(broker_t *b, zframe_t *client, uint64_t rid, int status, const char *fmt,
                       ...);

/* admin.c */
void admin_client_request(broker_t *b, zframe_t *client, Shoal__Frame *f);
void admin_node_response(broker_t *b, bnode_t *n, Shoal__Frame *f);
void admin_on_raft_event(broker_t *b, const uint8_t *data, size_t len, bool metrics);
void admin_poll_nodes(broker_t *b);
void admin_check_liveness(broker_t *b);
void admin_seen(broker_t *b, uint64_t node_id);
void admin_set_leader(broker_t *b, bshard_t *s, int64_t leader, uint64_t term);
void admin_destroy(broker_t *b);
/* Where a shard-map change goes: the known metadata leader, else the next guess. */
uint64_t admin_meta_target(broker_t *b);
bool admin_is_map_change(const Shoal__AdminRequest *q);

/* dashboard.c */
int dashboard_drain(broker_t *b);
char *dashboard_status_json(broker_t *b, size_t *len);
char *dashboard_metrics(broker_t *b, size_t *len);

/* streams.c */
void streams_on_change(broker_t *b, zframe_t *topic, zframe_t *body);
void streams_on_progress(broker_t *b, const uint8_t *data, size_t len);
void streams_publish_progress(broker_t *b);

/* stream_seqs.c: counts of change events sent per subscribed prefix */
uint64_t stream_seqs_epoch(void);
void stream_seqs_subscribed(broker_t *b, const uint8_t *prefix, size_t len, bool on);
/* Counts the event of this key against the prefixes it matches: their StreamSeqs frame,
 * or NULL when no prefix is subscribed. */
zframe_t *stream_seqs_count(broker_t *b, const uint8_t *key, size_t klen);
zframe_t *stream_seqs_all(broker_t *b); /* every prefix's count, NULL when none */
void stream_seqs_destroy(broker_t *b);

#endif
