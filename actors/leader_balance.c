/* leader_balance.c - preferred leaders from the map and the hand-over to them (see
 * leader_balance.h for the rules). The node's side runs in the node actor's sweep. */
#include "actors/leader_balance.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "actors/placement.h"
#include "actors/replica.h"
#include "actors/shardmap.h"
#include "actors/transport.h"

/* ---- the assignment ------------------------------------------------------------------ */

/* How many groups rank node at a given place (under a given first node, for the second). */
typedef struct {
    uint64_t under, node;
    size_t count;
} tally_t;

typedef struct {
    tally_t *t;
    size_t n;
} tallies_t;

static size_t *tally_of(tallies_t *ts, uint64_t under, uint64_t node)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->t[i].under == under && ts->t[i].node == node)
            return &ts->t[i].count;
    ts->t[ts->n] = (tally_t){under, node, 0};
    return &ts->t[ts->n++].count;
}

/* The first of ids[] (other than skip) counted least so far under `under`; LB_NONE if none. */
static uint64_t least(tallies_t *ts, uint64_t under, const uint64_t *ids, size_t k, uint64_t skip)
{
    uint64_t best = LB_NONE;
    size_t best_count = SIZE_MAX;
    for (size_t i = 0; i < k; i++) {
        size_t c = ids[i] == skip ? SIZE_MAX : *tally_of(ts, under, ids[i]);
        if (c < best_count) {
            best = ids[i];
            best_count = c;
        }
    }
    return best;
}

/* Ranks ids[]: first the least counted in first, then the least counted in second under
 * the first, then the others in order. Only the first is counted when !count. */
static lb_pref_t rank(uint32_t group, const uint64_t *ids, size_t k, tallies_t *first,
                      tallies_t *second)
{
    lb_pref_t p = {.group = group};
    uint64_t a = least(first, LB_NONE, ids, k, LB_NONE);
    uint64_t b = a == LB_NONE ? LB_NONE : least(second, a, ids, k, a);
    if (a != LB_NONE)
        p.rank[p.n++] = a;
    if (b != LB_NONE)
        p.rank[p.n++] = b;
    for (size_t i = 0; i < k && p.n < LB_RANKS; i++)
        if (ids[i] != a && ids[i] != b)
            p.rank[p.n++] = ids[i];
    return p;
}

static void count(tallies_t *first, tallies_t *second, const lb_pref_t *p)
{
    if (p->n > 0)
        (*tally_of(first, LB_NONE, p->rank[0]))++;
    if (p->n > 1)
        (*tally_of(second, p->rank[0], p->rank[1]))++;
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = (*(const Shoal__ShardInfo *const *)a)->id;
    uint32_t y = (*(const Shoal__ShardInfo *const *)b)->id;
    return x < y ? -1 : x > y;
}

size_t leader_balance_assign(const Shoal__ShardMap *m, const uint64_t *meta, size_t n_meta,
                             lb_pref_t *out, size_t cap)
{
    size_t ns = m ? m->n_shards : 0, k = 0, max_pairs = n_meta + 1;
    for (size_t i = 0; i < ns; i++)
        max_pairs += m->shards[i]->n_replicas;
    const Shoal__ShardInfo **order = malloc((ns ? ns : 1) * sizeof *order);
    tallies_t first = {malloc(max_pairs * sizeof(tally_t)), 0};
    tallies_t second = {malloc(max_pairs * sizeof(tally_t)), 0};
    if (order && first.t && second.t) {
        for (size_t i = 0; i < ns; i++)
            order[i] = m->shards[i];
        /* id order, not the map's: any node computes the same from the same map */
        qsort(order, ns, sizeof *order, by_id);
        for (size_t i = 0; i < ns && k < cap; i++) {
            const Shoal__ShardInfo *si = order[i];
            out[k] = rank(si->id, si->replicas, si->n_replicas, &first, &second);
            count(&first, &second, &out[k++]);
        }
        /* the metadata group goes where it adds the least to the data shards */
        if (k < cap)
            out[k++] = rank(SHOAL_META_GROUP, meta, n_meta, &first, &second);
    }
    free(order);
    free(first.t);
    free(second.t);
    return k;
}

/* ---- the decision -------------------------------------------------------------------- */

/* Long against an election (500 ms by default): on a loaded host elections come in bursts,
 * and a hand-over at each would add to them. */
uint64_t leader_balance_hold_ms(uint64_t election_ms)
{
    return election_ms * 4 > 2000 ? election_ms * 4 : 2000;
}

uint64_t leader_balance_base_ms(uint64_t election_ms)
{
    return election_ms * 8 > 4000 ? election_ms * 8 : 4000;
}

void leader_balance_observe(lb_state_t *gs, uint64_t term, uint64_t now_ms)
{
    if (gs->term != term) {
        gs->term = term;
        gs->since_ms = now_ms;
    }
}

void leader_balance_started(lb_state_t *gs, uint64_t now_ms, uint64_t election_ms)
{
    uint64_t base = leader_balance_base_ms(election_ms);
    /* leadership back here within two intervals of the last transfer: it did not stick */
    bool recent = gs->last_ms && now_ms - gs->last_ms <= 2 * gs->backoff_ms;
    if (!recent)
        gs->backoff_ms = base;
    else if (gs->backoff_ms < LB_MAX_BACKOFF_MS)
        gs->backoff_ms =
            gs->backoff_ms * 2 < LB_MAX_BACKOFF_MS ? gs->backoff_ms * 2 : LB_MAX_BACKOFF_MS;
    gs->last_ms = now_ms;
}

static const raft_peer_status_t *peer_of(const raft_status_t *st, uint64_t raft_id)
{
    for (size_t i = 0; i < st->n_peers; i++)
        if (st->peers[i].id == raft_id)
            return &st->peers[i];
    return NULL;
}

/* Whether the committed configuration is exactly the map's placement, all voters. */
static bool conf_settled(const lb_input_t *in)
{
    const raft_conf_state_t *c = &in->st->conf;
    if (c->n_learners != 0 || c->n_voters != in->n_replicas)
        return false;
    for (size_t i = 0; i < c->n_voters; i++)
        if (!shardmap_has(in->replicas, in->n_replicas, node_id_of(c->voters[i])))
            return false;
    return true;
}

static uint64_t refuse(const char **why, const char *what)
{
    if (why)
        *why = what;
    return 0;
}

uint64_t leader_balance_target(const lb_input_t *in)
{
    for (size_t i = 0; i < in->pref->n; i++)
        if (in->pref->rank[i] == in->self || in->alive[i])
            return in->pref->rank[i];
    return LB_NONE;
}

uint64_t leader_balance_decide(const lb_input_t *in, const char **why)
{
    const raft_status_t *st = in->st;
    const lb_state_t *gs = in->gs;
    if (st->role != RAFT_LEADER)
        return refuse(why, "not the leader");
    uint64_t to = leader_balance_target(in);
    if (to == LB_NONE || to == in->self)
        return refuse(why, "the preferred leader leads");
    if (in->changing || !conf_settled(in))
        return refuse(why, "a placement change is open");
    if (st->lead_transferee != 0)
        return refuse(why, "a transfer is running");
    if (gs->term != st->term || in->now_ms - gs->since_ms < leader_balance_hold_ms(in->election_ms))
        return refuse(why, "elected just now");
    if (gs->last_ms && in->now_ms - gs->last_ms < gs->backoff_ms)
        return refuse(why, "backing off");
    const raft_peer_status_t *p = peer_of(st, raft_id_of(to));
    if (!p || p->learner)
        return refuse(why, "the preferred node is not a voter");
    if (!p->recent_active || p->state != RAFT_PROGRESS_REPLICATE ||
        p->match + LB_MAX_LAG < st->last_index)
        return refuse(why, "the preferred node lags");
    if (why)
        *why = "hand over";
    return p->id;
}

/* ---- the node's side ----------------------------------------------------------------- */

typedef struct {
    lb_pref_t pref;
    lb_state_t state;
} lb_group_t;

struct leader_balance {
    uint64_t map_version; /* the map the assignment was computed from (0: none yet) */
    lb_group_t *groups;   /* sorted by group id */
    size_t n_groups;
};

leader_balance_t *leader_balance_new(void)
{
    return calloc(1, sizeof(leader_balance_t));
}

void leader_balance_destroy(leader_balance_t **self_p)
{
    if (!*self_p)
        return;
    free((*self_p)->groups);
    free(*self_p);
    *self_p = NULL;
}

static int by_group(const void *a, const void *b)
{
    uint32_t x = ((const lb_group_t *)a)->pref.group, y = ((const lb_group_t *)b)->pref.group;
    return x < y ? -1 : x > y;
}

static lb_group_t *find(leader_balance_t *lb, uint32_t group)
{
    lb_group_t key = {.pref.group = group};
    if (lb->n_groups == 0) /* none computed yet: bsearch wants a table */
        return NULL;
    return bsearch(&key, lb->groups, lb->n_groups, sizeof key, by_group);
}

/* Recomputes the assignment for a new map version, keeping each group's own history. */
static void refresh(leader_balance_t *lb, const node_t *n)
{
    const Shoal__ShardMap *m = n->place->map;
    if (lb->map_version == m->version)
        return;
    size_t cap = m->n_shards + 1;
    lb_pref_t *prefs = malloc(cap * sizeof *prefs);
    lb_group_t *gs = calloc(cap, sizeof *gs);
    uint64_t meta[NODE_MAX_NODES];
    const Shoal__ShardInfo *mi = m->meta;
    size_t n_meta = mi ? 0 : node_config_replicas(n->cfg, SHOAL_META_GROUP, meta, NODE_MAX_NODES);
    for (size_t i = 0; mi && i < mi->n_replicas && i < NODE_MAX_NODES; i++)
        meta[n_meta++] = mi->replicas[i];
    size_t k = prefs && gs ? leader_balance_assign(m, meta, n_meta, prefs, cap) : 0;
    if (!k) {
        free(prefs);
        free(gs);
        return; /* out of memory: the old assignment stays, tried again next sweep */
    }
    for (size_t i = 0; i < k; i++) {
        lb_group_t *old = find(lb, prefs[i].group);
        gs[i].pref = prefs[i];
        if (old)
            gs[i].state = old->state;
    }
    qsort(gs, k, sizeof *gs, by_group);
    free(prefs);
    free(lb->groups);
    lb->groups = gs;
    lb->n_groups = k;
    lb->map_version = m->version;
}

/* The map's target placement of group and whether a move or split of it is open. */
static size_t target_of(const node_t *n, uint32_t group, uint64_t *out, bool *changing)
{
    const Shoal__ShardMap *m = n->place->map;
    const Shoal__ShardInfo *si = shardmap_shard(m, group);
    *changing = false;
    if (!si) /* the metadata group before any move: the bootstrap nodes */
        return group == SHOAL_META_GROUP ? node_config_replicas(n->cfg, group, out, NODE_MAX_NODES)
                                         : 0;
    *changing = si->n_leaving || si->n_arriving || si->splitting;
    for (size_t i = 0; i < m->n_shards; i++) /* a split of this shard into another */
        if (m->shards[i]->splitting && m->shards[i]->split_from == group)
            *changing = true;
    size_t k = 0;
    for (size_t i = 0; i < si->n_replicas && k < NODE_MAX_NODES; i++)
        out[k++] = si->replicas[i];
    return k;
}

/* Down for balancing only after a silence of the base interval, not one election timeout:
 * a node starved for a moment (a loaded host) must not send its groups to their fallback
 * and back. A node that comes back counts at its first frame. */
static bool heard_recently(const node_t *n, uint64_t node, uint64_t now, uint64_t election_ms)
{
    return node < NODE_MAX_NODES && n->last_heard[node] &&
           now - n->last_heard[node] <= leader_balance_base_ms(election_ms);
}

void leader_balance_step(node_t *n, replica_t *r)
{
    leader_balance_t *lb = n->place->balance;
    if (!lb)
        return;
    refresh(lb, n);
    lb_group_t *g = find(lb, r->group);
    if (!g)
        return; /* a split target newer than this node's map */
    raft_status_t st;
    raft_status(r->raft, &st);
    uint64_t now = zclock_mono(), election_ms = (uint64_t)n->cfg->election_ticks * n->cfg->tick_ms;
    leader_balance_observe(&g->state, st.term, now);
    uint64_t replicas[NODE_MAX_NODES];
    bool changing;
    size_t k = target_of(n, r->group, replicas, &changing);
    bool alive[LB_RANKS];
    for (size_t i = 0; i < g->pref.n; i++)
        alive[i] = heard_recently(n, g->pref.rank[i], now, election_ms);
    lb_input_t in = {.st = &st,
                     .self = n->cfg->id,
                     .pref = &g->pref,
                     .alive = alive,
                     .changing = changing,
                     .replicas = replicas,
                     .n_replicas = k,
                     .now_ms = now,
                     .election_ms = election_ms,
                     .gs = &g->state};
    uint64_t to = leader_balance_decide(&in, NULL);
    if (!to || raft_transfer_leader(r->raft, to) != 0)
        return;
    leader_balance_started(&g->state, now, election_ms);
    zsys_info("shard %u: balancing: leadership handed to node %" PRIu64 " (%s; next transfer "
              "of this group not before %" PRIu64 " ms)",
              r->group, node_id_of(to),
              node_id_of(to) == g->pref.rank[0] ? "preferred" : "preferred is down",
              g->state.backoff_ms);
    r->quiet = false; /* the core must tick and send for the transfer */
    r->idle_ticks = 0;
}
