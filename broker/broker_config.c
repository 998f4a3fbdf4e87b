/* broker_config.c - reads shoal-broker's ZPL configuration (docs/CONTRACTS.md, keys in
 * docs/OPERATIONS.md) into a zconfig tree. Every value is range-checked and a bad one is
 * refused with a line naming the key, a key the loader does not read is refused, and every
 * endpoint must be tcp://HOST:PORT with a port of 1-65535: a typo must never start a broker
 * on a silent default.
 * The text is read by actors/zpl.c, not zconfig_load (which prints syntax errors on stdout). */
#include "broker/broker.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/zpl.h"
#include "engine/endpoint.h"
#include "engine/error.h"

/* Reads an unsigned number at path into *out, within [lo, hi]; absent keeps *out. */

static int get_uint(zconfig_t *root, const char *path, unsigned dflt, unsigned lo, unsigned hi,
                    unsigned *out, char *err, size_t errlen)
{
    char *v = zconfig_get(root, path, NULL);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        snprintf(err, errlen, "config key %s = \"%s\": expected a number in %u..%u", path, v, lo,
                 hi);
        return SHOAL_EINVAL;
    }
    *out = (unsigned)n;
    return 0;
}

static int get_str(zconfig_t *root, const char *path, const char *dflt, char *out, size_t cap,
                   char *err, size_t errlen)
{
    char *v = zconfig_get(root, path, (char *)dflt);
    if (!v || !*v) {
        snprintf(err, errlen, "config key %s is missing", path);
        return SHOAL_EINVAL;
    }
    if (strlen(v) >= cap) {
        snprintf(err, errlen, "config key %s is longer than %zu bytes", path, cap - 1);
        return SHOAL_EINVAL;
    }
    snprintf(out, cap, "%s", v);
    return 0;
}

/* An endpoint key (after get_str): tcp://HOST:PORT with a port of 1-65535, since ZeroMQ
 * would take port 99999 as 34463. HOST may be * or an interface to bind. */
static int check_endpoint(const char *path, const char *ep, char *err, size_t errlen)
{
    if (shoal_tcp_endpoint_ok(ep))
        return 0;
    snprintf(err, errlen, "config key %s = \"%s\": expected tcp://HOST:PORT with a port of 1-65535",
             path, ep);
    return SHOAL_EINVAL;
}

static int load_nodes(zconfig_t *root, broker_config_t *c, char *err, size_t errlen)
{
    zconfig_t *nodes = zconfig_locate(root, "cluster/nodes");
    if (!nodes || !zconfig_child(nodes)) {
        snprintf(err, errlen, "config section cluster/nodes is missing or empty");
        return SHOAL_EINVAL;
    }
    for (zconfig_t *n = zconfig_child(nodes); n; n = zconfig_next(n)) {
        if (c->n_nodes == BROKER_MAX_NODES) {
            snprintf(err, errlen, "cluster/nodes lists more than %d nodes", BROKER_MAX_NODES);
            return SHOAL_EINVAL;
        }
        broker_node_cfg_t *d = &c->nodes[c->n_nodes];
        char *end, *name = zconfig_name(n);
        errno = 0;
        unsigned long id = strtoul(name, &end, 10);
        if (errno || end == name || *end || id >= BROKER_MAX_NODES) {
            snprintf(err, errlen, "cluster/nodes/%s: node ids are numbers 0..%d", name,
                     BROKER_MAX_NODES - 1);
            return SHOAL_EINVAL;
        }
        for (size_t i = 0; i < c->n_nodes; i++)
            if (c->nodes[i].id == id) {
                snprintf(err, errlen, "cluster/nodes/%s is listed twice", name);
                return SHOAL_EINVAL;
            }
        d->id = id;
        char path[64];
        snprintf(path, sizeof path, "cluster/nodes/%s/endpoint", name);
        int rc = get_str(root, path, NULL, d->endpoint, sizeof d->endpoint, err, errlen);
        if (!rc)
            rc = check_endpoint(path, d->endpoint, err, errlen);
        snprintf(path, sizeof path, "cluster/nodes/%s/pub_endpoint", name);
        if (!rc)
            rc = get_str(root, path, NULL, d->pub_endpoint, sizeof d->pub_endpoint, err, errlen);
        if (!rc)
            rc = check_endpoint(path, d->pub_endpoint, err, errlen);
        if (rc)
            return rc;
        c->n_nodes++;
    }
    return 0;
}

static int load(zconfig_t *root, broker_config_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int rc = get_str(root, "broker/client_endpoint", "tcp://127.0.0.1:7000", c->client_endpoint,
                     sizeof c->client_endpoint, err, errlen);
    if (!rc)
        rc = check_endpoint("broker/client_endpoint", c->client_endpoint, err, errlen);
    if (!rc)
        rc = get_str(root, "broker/pub_endpoint", "tcp://127.0.0.1:7001", c->pub_endpoint,
                     sizeof c->pub_endpoint, err, errlen);
    if (!rc)
        rc = check_endpoint("broker/pub_endpoint", c->pub_endpoint, err, errlen);
    if (!rc)
        rc = get_str(root, "broker/log_level", "info", c->log_level, sizeof c->log_level, err,
                     errlen);
    if (!rc) {
        char *http = zconfig_get(root, "broker/http_endpoint", "");
        if (strlen(http) >= sizeof c->http_endpoint) {
            snprintf(err, errlen, "config key broker/http_endpoint is too long");
            rc = SHOAL_EINVAL;
        } else
            snprintf(c->http_endpoint, sizeof c->http_endpoint, "%s", http);
        if (!rc && *http)
            rc = check_endpoint("broker/http_endpoint", http, err, errlen);
    }
    if (!rc)
        rc = get_uint(root, "broker/request_timeout_ms", 5000, 10, 600000, &c->request_timeout_ms,
                      err, errlen);
    if (!rc)
        rc = get_uint(root, "broker/attempt_timeout_ms", 1000, 10, 600000, &c->attempt_timeout_ms,
                      err, errlen);
    if (!rc)
        rc = get_uint(root, "broker/subscriber_hwm", 100000, 10, 100000000, &c->subscriber_hwm, err,
                      errlen);
    if (!rc)
        rc = get_uint(root, "broker/progress_ms", 1000, 10, 3600000, &c->progress_ms, err, errlen);
    if (!rc)
        rc = get_uint(root, "broker/poll_ms", 500, 10, 3600000, &c->poll_ms, err, errlen);
    if (!rc)
        rc = get_uint(root, "broker/max_scan", 10000, 1, 1000000, &c->max_scan, err, errlen);
    if (!rc)
        rc = get_uint(root, "broker/sched_batch", 1, 0, 1, &c->sched_batch, err, errlen);
    if (!rc)
        rc = get_uint(root, "cluster/shards", 4, 1, 4096, &c->shards, err, errlen);
    if (!rc)
        rc = get_uint(root, "cluster/replicas", 3, 1, BROKER_MAX_REPLICAS, &c->replicas, err,
                      errlen);
    if (!rc)
        rc = get_uint(root, "cluster/vnodes", 64, 1, 4096, &c->vnodes, err, errlen);
    if (!rc)
        rc = zpl_cluster_id(root, &c->cluster_id, err, errlen);
    if (!rc)
        rc = load_nodes(root, c, err, errlen);
    if (!rc && strcmp(c->log_level, "error") && strcmp(c->log_level, "warning") &&
        strcmp(c->log_level, "info") && strcmp(c->log_level, "debug")) {
        snprintf(err, errlen,
                 "config key broker/log_level = \"%s\": expected error, warning, "
                 "info or debug",
                 c->log_level);
        rc = SHOAL_EINVAL;
    }
    if (!rc) {
        const char *rf = zconfig_get(root, "broker/read_from", "leader");
        c->read_replicas = streq(rf, "replicas");
        if (!c->read_replicas && !streq(rf, "leader")) {
            snprintf(err, errlen,
                     "config key broker/read_from = \"%s\": expected leader or replicas", rf);
            rc = SHOAL_EINVAL;
        }
    }
    if (!rc && c->replicas > c->n_nodes) {
        snprintf(err, errlen, "cluster/replicas = %u but only %zu nodes are listed", c->replicas,
                 c->n_nodes);
        rc = SHOAL_EINVAL;
    }
    return rc;
}

/* Every key load reads (add a new one here too); "*" is a name the config chooses, a
 * node's id in cluster/nodes. */
static const char *const known_keys[] = {"broker/client_endpoint",
                                         "broker/pub_endpoint",
                                         "broker/log_level",
                                         "broker/http_endpoint",
                                         "broker/request_timeout_ms",
                                         "broker/attempt_timeout_ms",
                                         "broker/subscriber_hwm",
                                         "broker/progress_ms",
                                         "broker/poll_ms",
                                         "broker/max_scan",
                                         "broker/sched_batch",
                                         "broker/read_from",
                                         ZPL_CLUSTER_KEYS,
                                         NULL};

static int fill(zconfig_t *root, void *cfg, char *err, size_t errlen)
{
    return load(root, cfg, err, errlen);
}

int broker_config_parse(const char *text, broker_config_t *cfg, char *err, size_t errlen)
{
    return zpl_load_text(text, strlen(text), known_keys, fill, cfg, err, errlen);
}

int broker_config_load(const char *path, broker_config_t *cfg, char *err, size_t errlen)
{
    return zpl_load_file(path, known_keys, fill, cfg, err, errlen);
}
