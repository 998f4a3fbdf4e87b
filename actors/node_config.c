/* node_config.c - ZPL configuration of shoald; see node_config.h.
 *
 * Every key has a default except the ones that identify the node (id, endpoints, data
 * directory) and the cluster's node list. Values are parsed strictly (the whole string must
 * be a number in range) because a half-parsed number is the worst kind of default; a key
 * the loader does not read is refused (a misspelt key would silently leave its default),
 * and every endpoint must be tcp://HOST:PORT with a port of 1-65535 (engine/endpoint.h).
 * The text is read by actors/zpl.c, not zconfig_load (which prints syntax errors on stdout). */
#include "actors/node_config.h"

#include <ctype.h>
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/zpl.h"
#include "engine/endpoint.h"
#include "engine/error.h"

/* Reads an unsigned number at path into *out, within [lo, hi]; absent keeps *out. */
static int get_num(zconfig_t *root, const char *path, uint64_t lo, uint64_t hi, uint64_t *out,
                   char *err, size_t errlen)
{
    char *v = zconfig_get(root, path, NULL);
    if (!v)
        return 0;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v == '\0' || *v == '-' || *end != '\0' || errno || n < lo || n > hi) {
        snprintf(err, errlen, "config key %s = \"%s\": expected a whole number in [%llu, %llu]",
                 path, v, (unsigned long long)lo, (unsigned long long)hi);
        return SHOAL_EINVAL;
    }
    *out = n;
    return 0;
}

static int get_uint(zconfig_t *root, const char *path, unsigned lo, unsigned hi, unsigned *out,
                    char *err, size_t errlen)
{
    uint64_t v = *out;
    int rc = get_num(root, path, lo, hi, &v, err, errlen);
    *out = (unsigned)v;
    return rc;
}

static int get_bool(zconfig_t *root, const char *path, bool *out, char *err, size_t errlen)
{
    uint64_t v = *out;
    int rc = get_num(root, path, 0, 1, &v, err, errlen);
    *out = v != 0;
    return rc;
}

/* Copies a string key; required keys must be present and non-empty. */
static int get_str(zconfig_t *root, const char *path, bool required, char *out, size_t cap,
                   char *err, size_t errlen)
{
    char *v = zconfig_get(root, path, NULL);
    if (!v || !*v) {
        if (!required)
            return 0;
        snprintf(err, errlen, "config key %s is missing", path);
        return SHOAL_EINVAL;
    }
    if (strlen(v) >= cap) {
        snprintf(err, errlen, "config key %s is too long (max %zu bytes)", path, cap - 1);
        return SHOAL_EINVAL;
    }
    strcpy(out, v);
    return 0;
}

/* An endpoint key: as get_str, and tcp://HOST:PORT with a port of 1-65535 when present
 * (ZeroMQ would take port 99999 as 34463). HOST may be * or an interface to bind. */
static int get_endpoint(zconfig_t *root, const char *path, bool required, char *out, size_t cap,
                        char *err, size_t errlen)
{
    int rc = get_str(root, path, required, out, cap, err, errlen);
    if (rc == 0 && *out && !shoal_tcp_endpoint_ok(out)) {
        snprintf(err, errlen,
                 "config key %s = \"%s\": expected tcp://HOST:PORT with a port of 1-65535", path,
                 out);
        return SHOAL_EINVAL;
    }
    return rc;
}

static void set_defaults(node_config_t *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->log_level, "info");
    c->tick_ms = 10;
    c->election_ticks = 50;
    c->heartbeat_ticks = 5;
    c->prevote = true;
    c->check_quorum = true;
    c->balance_leaders = true;
    c->sched_batch = true;
    c->read_mode = NODE_READ_INDEX;
    c->max_clock_drift_ms = 50;
    c->fsync = NODE_FSYNC_BATCH;
    c->snapshot_entries = 10000;
    c->snapshot_trailing = 50000;
    c->snapshot_trail_bytes = 32u << 20;
    c->snapshot_interval_ms = 60000;
    c->snapshot_rate_kbps = 100 * 1024;
    c->metrics_ms = 1000;
    c->quiesce_ticks = 100;
    c->lsm_cache_kb = 1024;
    c->lsm_buffer_kb = 4096;
    c->engine_threads = 2;
    c->shards = 1;
    c->replicas = 3;
    c->vnodes = 64;
}

static int load_nodes(zconfig_t *root, node_config_t *c, char *err, size_t errlen)
{
    zconfig_t *nodes = zconfig_locate(root, "cluster/nodes");
    if (!nodes) {
        snprintf(err, errlen, "config section cluster/nodes is missing");
        return SHOAL_EINVAL;
    }
    for (zconfig_t *n = zconfig_child(nodes); n; n = zconfig_next(n)) {
        if (c->n_nodes == NODE_MAX_NODES) {
            snprintf(err, errlen, "cluster/nodes: more than %d nodes", NODE_MAX_NODES);
            return SHOAL_EINVAL;
        }
        node_peer_t *p = &c->nodes[c->n_nodes];
        char *end, *name = zconfig_name(n);
        p->id = strtoull(name, &end, 10);
        if (!*name || *end) {
            snprintf(err, errlen, "cluster/nodes/%s: a node's name must be its numeric id", name);
            return SHOAL_EINVAL;
        }
        char path[64];
        snprintf(path, sizeof path, "cluster/nodes/%s/endpoint", name);
        int rc = get_endpoint(root, path, true, p->endpoint, sizeof p->endpoint, err, errlen);
        snprintf(path, sizeof path, "cluster/nodes/%s/pub_endpoint", name);
        if (rc == 0)
            rc = get_endpoint(root, path, false, p->pub_endpoint, sizeof p->pub_endpoint, err,
                              errlen);
        if (rc)
            return rc;
        if (node_config_peer(c, p->id)) {
            snprintf(err, errlen, "cluster/nodes/%s: node listed twice", name);
            return SHOAL_EINVAL;
        }
        c->n_nodes++;
    }
    if (c->n_nodes == 0) {
        snprintf(err, errlen, "config section cluster/nodes lists no node");
        return SHOAL_EINVAL;
    }
    return 0;
}

static int parse_fsync(zconfig_t *root, node_config_t *c, char *err, size_t errlen)
{
    char *v = zconfig_get(root, "storage/fsync", "batch");
    if (strcmp(v, "batch") == 0)
        c->fsync = NODE_FSYNC_BATCH;
    else if (strcmp(v, "always") == 0)
        c->fsync = NODE_FSYNC_ALWAYS;
    else if (strcmp(v, "never") == 0)
        c->fsync = NODE_FSYNC_NEVER;
    else {
        snprintf(err, errlen, "config key storage/fsync = \"%s\": expected batch, always or never",
                 v);
        return SHOAL_EINVAL;
    }
    return 0;
}

static int parse_read_mode(zconfig_t *root, node_config_t *c, char *err, size_t errlen)
{
    char *v = zconfig_get(root, "raft/read_mode", "read_index");
    if (strcmp(v, "read_index") == 0)
        c->read_mode = NODE_READ_INDEX;
    else if (strcmp(v, "lease") == 0)
        c->read_mode = NODE_READ_LEASE;
    else {
        snprintf(err, errlen, "config key raft/read_mode = \"%s\": expected read_index or lease",
                 v);
        return SHOAL_EINVAL;
    }
    return get_uint(root, "raft/max_clock_drift_ms", 0, 3600000, &c->max_clock_drift_ms, err,
                    errlen);
}

/* A lease shorter than a heartbeat interval would never be valid when a read comes. */
static int check_lease(const node_config_t *c, char *err, size_t errlen)
{
    if (c->read_mode != NODE_READ_LEASE)
        return 0;
    if (!c->check_quorum) {
        snprintf(err, errlen, "raft/read_mode = lease needs raft/check_quorum = true");
        return SHOAL_EINVAL;
    }
    if (node_config_lease_margin(c) + c->heartbeat_ticks >= c->election_ticks) {
        snprintf(err, errlen,
                 "raft/max_clock_drift_ms (%u) leaves no lease: it must be well below "
                 "raft/election_ticks x raft/tick_ms minus a heartbeat interval",
                 c->max_clock_drift_ms);
        return SHOAL_EINVAL;
    }
    return 0;
}

unsigned node_config_lease_margin(const node_config_t *c)
{
    unsigned drift_ticks = (c->max_clock_drift_ms + c->tick_ms - 1) / c->tick_ms;
    return 1 + 2 * drift_ticks;
}

/* A second fsm actor applies other groups in parallel, but on a host with two cores it
 * only splits a pump's answers into two bursts and wakes the node twice: 8 shards, 3
 * nodes on 2 cores, 1 actor against 2: +11% puts/s and +19% lease gets/s (BENCHMARKS.md,
 * session 19). */
unsigned node_config_apply_threads(const node_config_t *c)
{
    if (c->apply_threads)
        return c->apply_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long n = cpus / 2;
    return n < 1 ? 1 : n > NODE_MAX_APPLY_THREADS ? NODE_MAX_APPLY_THREADS : (unsigned)n;
}

static int check(node_config_t *c, char *err, size_t errlen)
{
    /* A joining node is not part of the bootstrap placement (which cluster/nodes defines
     * for every node and broker alike); it learns its place from the metadata group once
     * `shoalctl add-node` registered it. */
    if (!c->join && !node_config_peer(c, c->id)) {
        snprintf(err, errlen,
                 "node/id %llu is not listed in cluster/nodes (set node/join = 1 "
                 "for a node added to a running cluster)",
                 (unsigned long long)c->id);
        return SHOAL_EINVAL;
    }
    if (c->join && node_config_peer(c, c->id)) {
        snprintf(err, errlen,
                 "node/join = 1 but node/id %llu is listed in cluster/nodes (a "
                 "bootstrap node never joins)",
                 (unsigned long long)c->id);
        return SHOAL_EINVAL;
    }
    if (c->heartbeat_ticks >= c->election_ticks) {
        snprintf(err, errlen, "raft/heartbeat_ticks (%u) must be below raft/election_ticks (%u)",
                 c->heartbeat_ticks, c->election_ticks);
        return SHOAL_EINVAL;
    }
    if (check_lease(c, err, errlen))
        return SHOAL_EINVAL;
    if (strcmp(c->log_level, "error") && strcmp(c->log_level, "warning") &&
        strcmp(c->log_level, "info") && strcmp(c->log_level, "debug")) {
        snprintf(err, errlen,
                 "config key node/log_level = \"%s\": expected error, warning, info "
                 "or debug",
                 c->log_level);
        return SHOAL_EINVAL;
    }
    return 0;
}

static int parse_tree(zconfig_t *root, node_config_t *c, char *err, size_t errlen)
{
    set_defaults(c);
    uint64_t id = UINT64_MAX;
    int rc = get_num(root, "node/id", 0, NODE_MAX_NODES - 1, &id, err, errlen);
    if (rc == 0 && id == UINT64_MAX) {
        snprintf(err, errlen, "config key node/id is missing");
        rc = SHOAL_EINVAL;
    }
    c->id = id;
    if (rc == 0)
        rc =
            get_endpoint(root, "node/endpoint", true, c->endpoint, sizeof c->endpoint, err, errlen);
    if (rc == 0)
        rc = get_endpoint(root, "node/pub_endpoint", true, c->pub_endpoint, sizeof c->pub_endpoint,
                          err, errlen);
    if (rc == 0)
        rc = get_str(root, "node/data_dir", true, c->data_dir, sizeof c->data_dir, err, errlen);
    if (rc == 0)
        rc = get_bool(root, "node/join", &c->join, err, errlen);
    if (rc == 0)
        rc = get_str(root, "node/log_level", false, c->log_level, sizeof c->log_level, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "raft/tick_ms", 1, 10000, &c->tick_ms, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "raft/election_ticks", 2, 100000, &c->election_ticks, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "raft/heartbeat_ticks", 1, 100000, &c->heartbeat_ticks, err, errlen);
    if (rc == 0)
        rc = get_bool(root, "raft/prevote", &c->prevote, err, errlen);
    if (rc == 0)
        rc = get_bool(root, "raft/check_quorum", &c->check_quorum, err, errlen);
    if (rc == 0)
        rc = get_bool(root, "raft/balance_leaders", &c->balance_leaders, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "raft/quiesce_ticks", 0, 1000000, &c->quiesce_ticks, err, errlen);
    if (rc == 0)
        rc = parse_read_mode(root, c, err, errlen);
    if (rc == 0)
        rc = parse_fsync(root, c, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/snapshot_entries", 16, 100000000, &c->snapshot_entries, err,
                      errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/snapshot_trailing_entries", 0, 10000000, &c->snapshot_trailing,
                      err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/snapshot_trailing_bytes", 0, 1u << 30,
                      &c->snapshot_trail_bytes, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/snapshot_interval_ms", 100, 86400000, &c->snapshot_interval_ms,
                      err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/snapshot_rate_kbps", 64, 10000000, &c->snapshot_rate_kbps, err,
                      errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/lsm_cache_kb", 64, 16 << 20, &c->lsm_cache_kb, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/lsm_buffer_kb", 256, 1 << 20, &c->lsm_buffer_kb, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/engine_threads", 1, 16, &c->engine_threads, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "storage/fsync_delay_ms", 0, 60000, &c->fsync_delay_ms, err, errlen);
    if (rc == 0)
        rc = get_bool(root, "node/sched_batch", &c->sched_batch, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "node/apply_threads", 0, NODE_MAX_APPLY_THREADS, &c->apply_threads, err,
                      errlen);
    if (rc == 0)
        rc = get_uint(root, "node/metrics_ms", 50, 3600000, &c->metrics_ms, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "cluster/shards", 1, 4096, &c->shards, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "cluster/replicas", 1, 7, &c->replicas, err, errlen);
    if (rc == 0)
        rc = get_uint(root, "cluster/vnodes", 1, 4096, &c->vnodes, err, errlen);
    if (rc == 0)
        rc = zpl_cluster_id(root, &c->cluster_id, err, errlen);
    if (rc == 0)
        rc = load_nodes(root, c, err, errlen);
    if (rc == 0)
        rc = check(c, err, errlen);
    return rc;
}

/* Every key parse_tree reads (add a new one here too); "*" is a name the config chooses,
 * a node's id in cluster/nodes. */
static const char *const known_keys[] = {"node/id",
                                         "node/endpoint",
                                         "node/pub_endpoint",
                                         "node/data_dir",
                                         "node/join",
                                         "node/log_level",
                                         "node/sched_batch",
                                         "node/apply_threads",
                                         "node/metrics_ms",
                                         "raft/tick_ms",
                                         "raft/election_ticks",
                                         "raft/heartbeat_ticks",
                                         "raft/prevote",
                                         "raft/check_quorum",
                                         "raft/balance_leaders",
                                         "raft/quiesce_ticks",
                                         "raft/read_mode",
                                         "raft/max_clock_drift_ms",
                                         "storage/fsync",
                                         "storage/snapshot_entries",
                                         "storage/snapshot_trailing_entries",
                                         "storage/snapshot_trailing_bytes",
                                         "storage/snapshot_interval_ms",
                                         "storage/snapshot_rate_kbps",
                                         "storage/lsm_cache_kb",
                                         "storage/lsm_buffer_kb",
                                         "storage/engine_threads",
                                         "storage/fsync_delay_ms",
                                         ZPL_CLUSTER_KEYS,
                                         NULL};

static int fill(zconfig_t *root, void *cfg, char *err, size_t errlen)
{
    return parse_tree(root, cfg, err, errlen);
}

int node_config_load(const char *path, node_config_t *cfg, char *err, size_t errlen)
{
    return zpl_load_file(path, known_keys, fill, cfg, err, errlen);
}

int node_config_parse(const char *text, node_config_t *cfg, char *err, size_t errlen)
{
    return zpl_load_text(text, strlen(text), known_keys, fill, cfg, err, errlen);
}

/* Node ids sorted ascending, so placement is "the k-th node after s" in id order. */
static size_t sorted_ids(const node_config_t *cfg, uint64_t *ids)
{
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        uint64_t v = cfg->nodes[i].id;
        size_t j = i;
        while (j > 0 && ids[j - 1] > v) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = v;
    }
    return cfg->n_nodes;
}

size_t node_config_replicas(const node_config_t *cfg, uint32_t group, uint64_t *out, size_t cap)
{
    uint64_t ids[NODE_MAX_NODES];
    size_t n = sorted_ids(cfg, ids), k = 0;
    if (group == SHOAL_META_GROUP) {
        for (size_t i = 0; i < n && i < 3 && k < cap; i++)
            out[k++] = ids[i];
        return k;
    }
    size_t r = cfg->replicas < n ? cfg->replicas : n;
    for (size_t i = 0; i < r && k < cap; i++)
        out[k++] = ids[(group + i) % n];
    return k;
}

const node_peer_t *node_config_peer(const node_config_t *cfg, uint64_t id)
{
    for (size_t i = 0; i < cfg->n_nodes; i++)
        if (cfg->nodes[i].id == id)
            return &cfg->nodes[i];
    return NULL;
}
