/* reroute.c - requests in flight across a shard-map change (add-shard splits a shard).
 *
 * A split source refuses, with STATUS_UNAVAILABLE, writes and gets of keys it gave away
 * and scans routed with a map older than the split (actors/split_fence.h). The broker
 * retries such answers like any UNAVAILABLE, always with the client's own id and seq; this
 * file decides where each retry goes:
 *  - a single-key request follows its key through the current ring, so once the broker
 *    holds the newer map (fetched on the metadata group's membership event or the next
 *    poll) the retry reaches the new shard, whose copied sessions answer a write that
 *    already applied instead of applying it twice;
 *  - a scan or batch was divided among the shards of the map it arrived with; if that
 *    division no longer holds (a scan: the map gained a shard; a batch child: one of its
 *    keys belongs to another shard now), the child ends with UNAVAILABLE
 *    (SHOAL_ERR_MAP_CHANGED) and libshoal retries the whole request, divided anew;
 *  - a batch with parts on both a new shard G whose split is still open and on its source
 *    S is not sent at all (the same answer, so the client retries it whole) until the
 *    split closed: its part on S could apply before the SPLIT, whose copy of S's sessions
 *    would then tell G that the batch's seq already applied and G would skip its part (a
 *    write acknowledged and lost; seen in cluster_split's split_scanner before this rule).
 *    Once the map says the split closed, G serves, so the SPLIT is committed in S's log
 *    and any new part for S applies after it. */
#include <stdio.h>

#include "broker/broker_internal.h"
#include "broker/shoal.h"

static const ProtobufCBinaryData *single_key(const Shoal__ClientRequest *q)
{
    switch (q->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_GET: return &q->get->key;
    case SHOAL__CLIENT_REQUEST__OP_PUT: return &q->put->key;
    case SHOAL__CLIENT_REQUEST__OP_DEL: return &q->del->key;
    case SHOAL__CLIENT_REQUEST__OP_CAS: return &q->cas->key;
    default: return NULL;
    }
}

/* Whether every op of a batch child still belongs to its shard. */
static bool batch_child_holds(broker_t *b, const pending_t *p)
{
    for (size_t i = 0; i < p->sub_batch.n_ops; i++) {
        const Shoal__BatchOp *op = p->sub_batch.ops[i];
        const ProtobufCBinaryData *k = op->op_case == SHOAL__BATCH_OP__OP_PUT   ? &op->put->key
                                       : op->op_case == SHOAL__BATCH_OP__OP_DEL ? &op->del->key
                                                                                : NULL;
        if (k && ring_shard_for(b->ring, k->data, k->len) != p->shard)
            return false;
    }
    return true;
}

bool reroute_batch_waits(broker_t *b, const uint32_t *ids, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const bshard_t *g = broker_shard(b, ids[i]);
        if (!g || !g->splitting)
            continue;
        for (size_t j = 0; j < n; j++)
            if (ids[j] == g->split_from) {
                snprintf(err, errlen, "%s (shard %u is still splitting from shard %u); retry",
                         SHOAL_ERR_MAP_CHANGED, g->id, g->split_from);
                return true;
            }
    }
    return false;
}

bool reroute_attempt(broker_t *b, pending_t *p, char *err, size_t errlen)
{
    if (p->admin || !p->req)
        return true;
    if (!p->gather) {
        const ProtobufCBinaryData *k = single_key(p->req);
        uint32_t s = k ? ring_shard_for(b->ring, k->data, k->len) : RING_NO_SHARD;
        if (s != RING_NO_SHARD && s != p->shard) {
            p->shard = s; /* the key's shard in the newer map */
            p->rotate = 0;
        }
        return true;
    }
    bool holds = p->gather->kind == GATHER_SCAN ? b->n_shards == p->gather->n_shards
                                                : batch_child_holds(b, p);
    if (!holds)
        snprintf(err, errlen, "%s (add-shard); retry", SHOAL_ERR_MAP_CHANGED);
    return holds;
}
