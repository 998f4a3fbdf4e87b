/* split_node.c - the node's side of add-shard by split (see split_node.h). Runs on the
 * node actor; the only disk work here is opening a target's engine. */
#include "actors/split_node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/placement.h"
#include "actors/split_cmd.h"
#include "engine/error.h"

#define REPROPOSE_MS 2000
#define SPLIT_TAG 0x72 /* WriteCommand field 14 (split), length-delimited: (14 << 3) | 2 */

typedef struct {
    uint32_t target;
    lsm_t *lsm;
} pending_t;

struct split_node_t {
    pending_t *p;
    size_t n;
    uint32_t proposed; /* target of the last SPLIT proposed by this node */
    uint64_t proposed_term, proposed_ms;
};

static split_node_t *state(node_t *n)
{
    if (!n->split)
        n->split = calloc(1, sizeof *n->split);
    return n->split;
}

void split_node_destroy(node_t *n)
{
    split_node_t *s = n->split;
    for (size_t i = 0; s && i < s->n; i++)
        lsm_close(&s->p[i].lsm);
    if (s)
        free(s->p);
    free(s);
    n->split = NULL;
}

static pending_t *find(split_node_t *s, uint32_t target)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (s->p[i].target == target)
            return &s->p[i];
    return NULL;
}

/* The target's engine: its replica's when it runs, else a pending one (opened here). */
static lsm_t *engine(node_t *n, uint32_t target, char *err, size_t errlen)
{
    replica_t *g = node_find_replica(n, target);
    if (g)
        return g->lsm;
    split_node_t *s = state(n);
    pending_t *p = find(s, target);
    if (p)
        return p->lsm;
    pending_t *np = s ? realloc(s->p, (s->n + 1) * sizeof *np) : NULL;
    if (!np)
        return snprintf(err, errlen, "out of memory"), NULL;
    s->p = np;
    lsm_t *lsm = NULL;
    if (replica_open_engine(n, target, &lsm, err, errlen) != 0)
        return NULL;
    s->p[s->n++] = (pending_t){target, lsm};
    return lsm;
}

/* Takes the pending engine of target out of the table (NULL when none). */
static lsm_t *take(node_t *n, uint32_t target)
{
    split_node_t *s = n->split;
    pending_t *p = find(s, target);
    if (!p)
        return NULL;
    lsm_t *lsm = p->lsm;
    *p = s->p[--s->n];
    return lsm;
}

static void start(node_t *n, uint32_t target, const char *why)
{
    lsm_t *lsm = take(n, target);
    if (!lsm || node_find_replica(n, target))
        return;
    char err[512] = "";
    if (node_add_replica_with(n, target, lsm, err, sizeof err) != 0) {
        zsys_error("node %" PRIu64 ": cannot start shard %u: %s", n->cfg->id, target, err);
        n->fatal = true;
        return;
    }
    zsys_info("node %" PRIu64 ": shard %u started (%s)", n->cfg->id, target, why);
}

bool split_node_attach(replica_t *r, fsm_job_t *job)
{
    for (size_t i = 0; i < job->n_entries; i++) {
        const raft_entry_t *e = &job->entries[i];
        if (e->type != RAFT_ENTRY_NORMAL || e->len == 0 || !e->data || e->data[0] != SPLIT_TAG)
            continue; /* a client's command starts with its client id or its op */
        Shoal__WriteCommand *cmd = shoal__write_command__unpack(NULL, e->len, e->data);
        uint32_t target = cmd && cmd->op_case == SHOAL__WRITE_COMMAND__OP_SPLIT
                              ? cmd->split->target
                              : SHOAL_META_GROUP;
        if (cmd)
            shoal__write_command__free_unpacked(cmd, NULL);
        bool have = target == SHOAL_META_GROUP || target == r->group; /* refused by the fsm */
        for (size_t k = 0; k < job->n_splits; k++)
            have |= job->splits[k].target == target;
        if (have)
            continue;
        char err[512] = "";
        bool live = node_find_replica(r->node, target) != NULL;
        lsm_t *lsm = engine(r->node, target, err, sizeof err);
        split_dst_t *d = lsm ? realloc(job->splits, (job->n_splits + 1) * sizeof *d) : NULL;
        if (!d) {
            zsys_error("shard %u: SPLIT at %" PRIu64 ": cannot open shard %u's engine: %s",
                       r->group, e->index, target, err[0] ? err : "out of memory");
            return false;
        }
        job->splits = d;
        job->splits[job->n_splits++] = (split_dst_t){target, lsm, live};
    }
    return true;
}

void split_node_applied(replica_t *r, const fsm_job_t *job)
{
    if (job->rc)
        return;
    uint64_t voters[NODE_MAX_NODES];
    size_t nv;
    for (size_t i = 0; i < job->n_splits; i++) {
        uint32_t g = job->splits[i].target;
        pending_t *p = find(r->node->split, g);
        if (p && split_target_conf(p->lsm, voters, NODE_MAX_NODES, &nv))
            start(r->node, g, "split from its source; data durable");
    }
}

bool split_node_host(node_t *n, const Shoal__ShardInfo *si)
{
    if (!si->splitting && !find(n->split, si->id))
        return false;
    char err[512] = "";
    lsm_t *lsm = engine(n, si->id, err, sizeof err);
    if (!lsm) {
        zsys_error("node %" PRIu64 ": cannot open shard %u's engine: %s", n->cfg->id, si->id, err);
        n->fatal = true;
        return true;
    }
    uint64_t voters[NODE_MAX_NODES];
    size_t nv;
    if (split_target_conf(lsm, voters, NODE_MAX_NODES, &nv))
        start(n, si->id, "holds its split data");
    else if (!si->splitting)
        start(n, si->id, "split closed without this node's data: it gets a snapshot");
    return true; /* else it waits for its source to apply the SPLIT here */
}

void split_node_propose(node_t *n, replica_t *r)
{
    const Shoal__ShardMap *m = n->place->map;
    const Shoal__ShardInfo *g = NULL;
    for (size_t i = 0; i < m->n_shards && !g; i++)
        if (m->shards[i]->splitting && m->shards[i]->split_from == r->group)
            g = m->shards[i];
    if (!g || node_find_replica(n, g->id))
        return; /* nothing to split, or applied here (the target runs) */
    split_node_t *s = state(n);
    uint64_t now = zclock_mono();
    if (!s || (s->proposed == g->id && s->proposed_term == r->term &&
               now - s->proposed_ms < REPROPOSE_MS))
        return;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    if (split_cmd_encode(m, g->id, &buf, &len, err, sizeof err) != 0) {
        zsys_warning("shard %u: %s", r->group, err);
        return;
    }
    int64_t idx = raft_propose(r->raft, buf, len, NULL);
    free(buf);
    if (idx <= 0)
        return;
    s->proposed = g->id;
    s->proposed_term = r->term;
    s->proposed_ms = now;
    r->quiet = false;
    r->idle_ticks = 0;
    zsys_info("shard %u: SPLIT into shard %u proposed at index %" PRId64 " (map version %" PRIu64
              ")",
              r->group, g->id, idx, m->version);
}

bool split_node_restore(replica_t *r, raft_restore_t *rs)
{
    node_t *n = r->node;
    uint64_t voters[NODE_MAX_NODES];
    size_t nv = 0;
    if (split_target_conf(r->lsm, voters, NODE_MAX_NODES, &nv)) {
        rs->snapshot.index = SPLIT_TARGET_BASE;
        rs->snapshot.term = 1;
        for (size_t i = 0; i < nv && i < RAFT_MAX_NODES; i++)
            rs->snapshot.conf.voters[i] = raft_id_of(voters[i]);
        rs->snapshot.conf.n_voters = nv < RAFT_MAX_NODES ? nv : RAFT_MAX_NODES;
        if (rs->hard_state.term < 1)
            rs->hard_state.term = 1;
        return true;
    }
    /* a shard that is not in the bootstrap map joins with an empty configuration */
    return r->group != SHOAL_META_GROUP && r->group >= n->cfg->shards;
}
