/* broker.h - shoal-broker's core: configuration and the broker loop, usable in-process
 * (tests run it as a czmq actor) or from the daemon's main (shoal_broker.c).
 *
 * The broker is one thread owning every socket: a ROUTER for clients and admins, an XPUB
 * for change streams, a DEALER per node (requests to shard leaders) and one SUB connected
 * to every node's PUB (Raft events, change events, metrics). It keeps no state that
 * matters: the shard map, leader cache and cluster state are rebuilt from the nodes, so
 * any number of brokers can serve one cluster and a broker can be restarted at will. */
#ifndef SHOAL_BROKER_H
#define SHOAL_BROKER_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BROKER_MAX_NODES 64
#define BROKER_MAX_REPLICAS 7

typedef struct {
    uint64_t id;
    char endpoint[256];
    char pub_endpoint[256];
} broker_node_cfg_t;

typedef struct {
    char client_endpoint[256];         /* broker/client_endpoint: ROUTER, clients and admin */
    char pub_endpoint[256];            /* broker/pub_endpoint: XPUB, change streams */
    unsigned request_timeout_ms;       /* broker/request_timeout_ms: default deadline */
    unsigned attempt_timeout_ms;       /* broker/attempt_timeout_ms: silence before a retry */
    unsigned subscriber_hwm;           /* broker/subscriber_hwm: messages buffered per watcher */
    unsigned progress_ms;              /* broker/progress_ms: period of progress notices */
    unsigned poll_ms;                  /* broker/poll_ms: period of node status polls */
    unsigned max_scan;                 /* broker/max_scan: cap on a scan's limit */
    unsigned sched_batch;              /* broker/sched_batch: 1 = SCHED_BATCH threads */
    char log_level[16];                /* broker/log_level: error | warning | info | debug */
    bool read_replicas;                /* broker/read_from = replicas: spread linearizable reads */
    char http_endpoint[256];           /* broker/http_endpoint: web dashboard; "" = none */
    unsigned shards, replicas, vnodes; /* cluster section: bootstrap placement */
    uint64_t cluster_id; /* cluster/id (hex; 0: absent, learned from the first node's map) */
    broker_node_cfg_t nodes[BROKER_MAX_NODES];
    size_t n_nodes;
} broker_config_t;

/* Loads and checks a ZPL file (or text); 0, or a negative SHOAL_E* and one line in err. */
int broker_config_load(const char *path, broker_config_t *cfg, char *err, size_t errlen);
int broker_config_parse(const char *text, broker_config_t *cfg, char *err, size_t errlen);

typedef struct broker_t broker_t;

/* Binds the client and XPUB endpoints and connects to every node. NULL with err. */
broker_t *broker_new(const broker_config_t *cfg, char *err, size_t errlen);
void broker_destroy(broker_t **self_p);
/* Serves until zsys_interrupted, or until "$TERM" arrives on pipe (may be NULL). */
void broker_run(broker_t *self, zsock_t *pipe);
/* czmq actor: args is a broker_config_t * (borrowed until the actor signals ready; the
 * signal carries 0 on success, -1 when the broker could not start). */
void broker_actor(zsock_t *pipe, void *args);

#endif
