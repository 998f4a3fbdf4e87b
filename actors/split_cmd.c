/* split_cmd.c - the SPLIT command built from the map and checked before it is applied
 * (see split_cmd.h). */
#include "actors/split_cmd.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "actors/node_config.h"
#include "actors/shardmap.h"

int split_cmd_encode(const Shoal__ShardMap *m, uint32_t target, uint8_t **buf, size_t *len,
                     char *err, size_t errlen)
{
    const Shoal__ShardInfo *g = shardmap_shard(m, target);
    const Shoal__ShardInfo *s = g && g->splitting ? shardmap_shard(m, g->split_from) : NULL;
    if (!s || !g->n_points || !s->n_points)
        return snprintf(err, errlen, "shard %u is not splitting in map version %" PRIu64, target,
                        m->version),
               -1;
    Shoal__SplitCommand sc = SHOAL__SPLIT_COMMAND__INIT;
    sc.target = target;
    sc.map_version = m->version;
    sc.keep = s->points;
    sc.n_keep = s->n_points;
    sc.give = g->points;
    sc.n_give = g->n_points;
    sc.voters = g->replicas; /* the source's, recorded by the split edit */
    sc.n_voters = g->n_replicas;
    Shoal__WriteCommand wc = SHOAL__WRITE_COMMAND__INIT;
    wc.op_case = SHOAL__WRITE_COMMAND__OP_SPLIT;
    wc.split = &sc;
    *len = shoal__write_command__get_packed_size(&wc);
    *buf = malloc(*len + 1);
    if (!*buf)
        return snprintf(err, errlen, "out of memory"), -1;
    shoal__write_command__pack(&wc, *buf);
    return 0;
}

static bool ascending(const uint64_t *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i] <= p[i - 1])
            return false;
    return true;
}

/* Both lists are sorted: one merge pass finds a shared point. */
static bool overlap(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j])
            return true;
        if (a[i] < b[j])
            i++;
        else
            j++;
    }
    return false;
}

int split_cmd_check(const Shoal__SplitCommand *c, uint32_t source, uint64_t index, split_t *sp,
                    char *err, size_t errlen)
{
    const char *why = NULL;
    if (c->target == source || c->target == SHOAL_META_GROUP)
        why = "the target is the source or the metadata group";
    else if (!c->n_keep || !c->n_give || c->n_keep > RING_MAX_VNODES || c->n_give > RING_MAX_VNODES)
        why = "a point list is empty or too long";
    else if (!ascending(c->keep, c->n_keep) || !ascending(c->give, c->n_give))
        why = "points are not strictly ascending";
    else if (overlap(c->keep, c->n_keep, c->give, c->n_give))
        why = "a point is in both lists";
    if (why)
        return snprintf(err, errlen, "SPLIT of shard %u into %u at %" PRIu64 " refused: %s", source,
                        c->target, index, why),
               -1;
    *sp = (split_t){source, c->target, c->keep, c->n_keep, c->give, c->n_give, index, NULL, 0, false};
    return 0;
}

static bool moved(const ring_t *r, uint32_t target, const ProtobufCBinaryData *k)
{
    return ring_shard_for(r, k->data, k->len) == target;
}

bool split_cmd_fenced(const ring_t *r, uint32_t target, const Shoal__WriteCommand *cmd)
{
    switch (cmd->op_case) {
    case SHOAL__WRITE_COMMAND__OP_PUT: return moved(r, target, &cmd->put->key);
    case SHOAL__WRITE_COMMAND__OP_DEL: return moved(r, target, &cmd->del->key);
    case SHOAL__WRITE_COMMAND__OP_CAS: return moved(r, target, &cmd->cas->key);
    case SHOAL__WRITE_COMMAND__OP_BATCH:
        for (size_t i = 0; i < cmd->batch->n_ops; i++) {
            const Shoal__BatchOp *op = cmd->batch->ops[i];
            if ((op->op_case == SHOAL__BATCH_OP__OP_PUT && moved(r, target, &op->put->key)) ||
                (op->op_case == SHOAL__BATCH_OP__OP_DEL && moved(r, target, &op->del->key)))
                return true;
        }
        return false;
    default: return false;
    }
}
