/* node_out.c - the client requests a broker sends a node in one loop turn go as one message
 * (Frame{batch}, docs/CONTRACTS.md) at the end of the turn, instead of one message each.
 *
 * Why: per write the broker handled four messages (client in, node out, node answer in,
 * client answer out), each with its own libzmq hand-over to the I/O thread and, on the
 * node, its own receive and decode; at 8 shards the node answers in batches too
 * (actors/replies.h). A send that fails is treated as the immediate failure it used to be
 * (route_unsent), one loop turn later at most. */
#include <stdlib.h>

#include "broker/broker_internal.h"
#include "engine/error.h"

typedef struct bqueued_t {
    uint8_t *buf;
    size_t len;
    uint64_t rid;
    bool was_delivered;
} bqueued_t;

int node_out_queue(bnode_t *n, uint8_t *buf, size_t len, uint64_t rid, bool was_delivered)
{
    (void)was_delivered;
    if (len > SHOAL_BATCH_ALONE || n->q_n == SHOAL_BATCH_MAX) {
        int rc = zmq_send(zsock_resolve(n->dealer), buf, len, ZMQ_DONTWAIT);
        free(buf);
        return rc < 0 ? SHOAL_EUNAVAIL : 0;
    }
    if (n->q_n == n->q_cap) {
        size_t cap = n->q_cap ? n->q_cap * 2 : 64;
        bqueued_t *q = realloc(n->q, cap * sizeof *q);
        if (!q) {
            free(buf);
            return SHOAL_EUNAVAIL;
        }
        n->q = q;
        n->q_cap = cap;
    }
    n->q[n->q_n++] = (bqueued_t){buf, len, rid, was_delivered};
    return 0;
}

/* Sends q[from, to) as one message; false when it could not go. */
static bool send_part(bnode_t *n, size_t from, size_t to)
{
    void *s = zsock_resolve(n->dealer);
    if (to - from == 1)
        return zmq_send(s, n->q[from].buf, n->q[from].len, ZMQ_DONTWAIT) >= 0;
    uint8_t *bufs[SHOAL_BATCH_MAX];
    size_t lens[SHOAL_BATCH_MAX], len;
    for (size_t i = from; i < to; i++) {
        bufs[i - from] = n->q[i].buf;
        lens[i - from] = n->q[i].len;
    }
    uint8_t *b = shoal_batch_encode(bufs, lens, to - from, &len);
    bool ok = b && zmq_send(s, b, len, ZMQ_DONTWAIT) >= 0;
    free(b);
    return ok;
}

static uint64_t flush_node(broker_t *b, bnode_t *n)
{
    uint64_t msgs = 0;
    size_t from = 0;
    while (from < n->q_n) {
        size_t to = from, bytes = 0;
        while (to < n->q_n && (to == from || bytes + n->q[to].len <= SHOAL_BATCH_BYTES))
            bytes += n->q[to++].len;
        if (send_part(n, from, to))
            msgs++;
        else
            for (size_t i = from; i < to; i++)
                route_unsent(b, n, n->q[i].rid, n->q[i].was_delivered);
        for (size_t i = from; i < to; i++)
            free(n->q[i].buf);
        from = to;
    }
    n->q_n = 0;
    return msgs;
}

uint64_t node_out_flush(broker_t *b)
{
    uint64_t msgs = 0;
    for (size_t i = 0; i < b->n_nodes; i++)
        if (b->nodes[i].q_n)
            msgs += flush_node(b, &b->nodes[i]);
    return msgs;
}

void node_out_free(bnode_t *n)
{
    for (size_t i = 0; i < n->q_n; i++)
        free(n->q[i].buf);
    free(n->q);
    n->q = NULL;
    n->q_n = n->q_cap = 0;
}
