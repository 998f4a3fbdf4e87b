/* node_config.h - the configuration of one shoald, read from a ZPL file into a zconfig tree
 * (format in docs/CONTRACTS.md, every key in docs/OPERATIONS.md).
 *
 * Loading checks every value (numbers in range, endpoints tcp://HOST:PORT with a port of
 * 1-65535, this node listed in the cluster section), refuses a key it does not read, and
 * fails with one line that names the key (or, for a syntax error, the line; nothing is
 * printed), so a typo never starts a node with a silent default. Also computes the
 * bootstrap placement of CONTRACTS.md. */
#ifndef SHOAL_ACTORS_NODE_CONFIG_H
#define SHOAL_ACTORS_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NODE_MAX_NODES 64
#define NODE_MAX_APPLY_THREADS 4
#define SHOAL_META_GROUP 4294967295u /* the metadata group's id (CONTRACTS.md) */

/* A group as messages name it: "shard N", or "the metadata group" rather than its id. */
#define SHOAL_GROUP_NAME_LEN 24
static inline const char *shoal_group_name(uint32_t group, char buf[SHOAL_GROUP_NAME_LEN])
{
    if (group == SHOAL_META_GROUP)
        return "the metadata group";
    snprintf(buf, SHOAL_GROUP_NAME_LEN, "shard %u", group);
    return buf;
}
#define GROUP_NAME(g) shoal_group_name((g), (char[SHOAL_GROUP_NAME_LEN]){0})

enum { NODE_FSYNC_BATCH = 0, NODE_FSYNC_ALWAYS = 1, NODE_FSYNC_NEVER = 2 };
enum { NODE_READ_INDEX = 0, NODE_READ_LEASE = 1 };

typedef struct {
    uint64_t id;
    char endpoint[256];
    char pub_endpoint[256];
} node_peer_t;

typedef struct {
    uint64_t id;
    char endpoint[256];
    char pub_endpoint[256];
    char data_dir[512];
    char log_level[16]; /* error | warning | info | debug */
    bool join; /* added to a running cluster: not in cluster/nodes, no bootstrap replicas */
    unsigned tick_ms;
    unsigned election_ticks;
    unsigned heartbeat_ticks;
    bool prevote;
    bool check_quorum;
    bool balance_leaders;          /* hand leadership to each group's preferred node */
    int read_mode;                 /* NODE_READ_*: how a leader confirms a linearizable read */
    unsigned max_clock_drift_ms;   /* lease mode: clock drift and tick lateness tolerated */
    int fsync;                     /* NODE_FSYNC_* */
    unsigned snapshot_entries;     /* take a snapshot after this many applied entries */
    unsigned snapshot_trailing;    /* entries the Raft core keeps behind a snapshot */
    unsigned snapshot_trail_bytes; /* ...and at most this many bytes of them */
    unsigned snapshot_interval_ms; /* snapshot a group with any new entries this often */
    unsigned snapshot_rate_kbps;   /* snapshot bytes per second to one peer, KiB */
    unsigned metrics_ms;           /* period of metrics and progress events */
    unsigned quiesce_ticks;        /* idle ticks before a group stops ticking (0: never) */
    unsigned apply_threads;        /* fsm actors (0: from the CPU count, node_apply_threads) */
    bool sched_batch;              /* threads under SCHED_BATCH (actors/sched_batch.h) */
    unsigned lsm_cache_kb;         /* block cache per replica */
    unsigned lsm_buffer_kb;        /* memtable size per replica */
    unsigned engine_threads;       /* flush and compaction threads shared by the replicas */
    unsigned fsync_delay_ms;       /* testing only: extra latency after every log sync */
    uint64_t cluster_id; /* cluster/id (hex; 0: absent): the map and peers must match it */
    unsigned shards;
    unsigned replicas;
    unsigned vnodes;
    node_peer_t nodes[NODE_MAX_NODES];
    size_t n_nodes;
} node_config_t;

/* Loads path into *cfg. 0, or a negative SHOAL_E* code and one line in err. */
int node_config_load(const char *path, node_config_t *cfg, char *err, size_t errlen);
/* Same from ZPL text (tests). */
int node_config_parse(const char *text, node_config_t *cfg, char *err, size_t errlen);

/* Replica node ids of group (data shard or SHOAL_META_GROUP) under bootstrap placement;
 * returns the count. */
size_t node_config_replicas(const node_config_t *cfg, uint32_t group, uint64_t *out, size_t cap);
/* Lease mode: ticks the Raft core takes off every lease. One tick because a follower's
 * first election tick may come at once after it heard the leader, max_clock_drift_ms
 * rounded up to ticks for the clocks' drift, and as much again as room for the leader's
 * own timer lateness (lease_clock.h: past that room the node drops its leases). */
unsigned node_config_lease_margin(const node_config_t *c);

/* The fsm actors to run: node/apply_threads, or when that is 0 one per two online CPUs,
 * 1 to NODE_MAX_APPLY_THREADS. */
unsigned node_config_apply_threads(const node_config_t *c);
/* The peer entry of node id, or NULL. Borrowed. */
const node_peer_t *node_config_peer(const node_config_t *cfg, uint64_t id);

#endif
