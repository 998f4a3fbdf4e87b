/* cmd_place.c - `shoalctl drain-node ID` and `shoalctl rebalance`: replica moves planned
 * from `status` and made one at a time with move-replica, each waited for until the map
 * shows it finished: what an operator would type by hand (TiKV's PD does the same from
 * its scheduler: `store delete` drains a store, balance-region evens the stores out).
 *
 * One move at a time: a move copies a whole shard to its target (a snapshot, then the log
 * after it); several at once would compete for the same disks and links, and a shard's
 * next move is refused until its last one finished anyway. The plan is made again from a
 * fresh status before every move, so a cluster that changed meanwhile (a node went down,
 * another operator moved something) is planned as it is now. */
#include "tools/shoalctl.h"

#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#define MAX_NODES 64
#define MAX_MOVES 4096
#define POLL_MS 200
#define DEFAULT_MOVE_S 600 /* a move of a big shard is a snapshot transfer: minutes */

typedef struct {
    uint32_t shard; /* SHOAL_META_SHARD for the metadata group */
    uint64_t from, to;
} move_t;

typedef struct {
    bool drain;     /* drain-node, else rebalance */
    uint64_t node;  /* drain-node: the node to empty */
    bool plan_only; /* --plan: print the moves, make none */
    uint64_t move_s;
} place_opts_t;

static const char *group_name(uint32_t shard, char *buf, size_t cap)
{
    if (shard == SHOAL_META_SHARD)
        return "the metadata group";
    snprintf(buf, cap, "shard %u", shard);
    return buf;
}

static const shoal_shard_status_t *find_group(const shoal_cluster_t *cl, uint32_t shard)
{
    if (shard == SHOAL_META_SHARD)
        return cl->has_meta ? &cl->meta : NULL;
    for (size_t i = 0; i < cl->n_shards; i++)
        if (cl->shards[i].id == shard)
            return &cl->shards[i];
    return NULL;
}

static bool in_list(const uint64_t *list, size_t n, uint64_t node)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == node)
            return true;
    return false;
}

static bool member(const shoal_shard_status_t *s, uint64_t node)
{
    return in_list(s->replicas, s->n_replicas, node);
}

/* A replica on the node, or one it is still deleting after a move. */
static bool holds(const shoal_shard_status_t *s, uint64_t node)
{
    return member(s, node) || in_list(s->leaving, s->n_leaving, node);
}

static const shoal_node_status_t *node_of(const shoal_cluster_t *cl, uint64_t id)
{
    for (size_t i = 0; i < cl->n_nodes; i++)
        if (cl->nodes[i].id == id)
            return &cl->nodes[i];
    return NULL;
}

/* Data replicas per node (the metadata group is small and not counted). */
static void count_replicas(const shoal_cluster_t *cl, uint32_t count[MAX_NODES])
{
    memset(count, 0, MAX_NODES * sizeof *count);
    for (size_t i = 0; i < cl->n_shards; i++)
        for (size_t k = 0; k < cl->shards[i].n_replicas; k++)
            if (cl->shards[i].replicas[k] < MAX_NODES)
                count[cl->shards[i].replicas[k]]++;
}

/* The up node other than `not` without a replica of s that has the fewest replicas. */
static int64_t pick_target(const shoal_cluster_t *cl, const shoal_shard_status_t *s, uint64_t not,
                           const uint32_t count[MAX_NODES])
{
    int64_t best = -1;
    for (size_t i = 0; i < cl->n_nodes; i++) {
        const shoal_node_status_t *n = &cl->nodes[i];
        if (!n->up || n->id == not || n->id >= MAX_NODES || holds(s, n->id))
            continue;
        if (best < 0 || count[n->id] < count[best] ||
            (count[n->id] == count[best] && n->id < (uint64_t)best))
            best = (int64_t)n->id;
    }
    return best;
}

/* drain-node: each group on the node goes to the least loaded node that can take it.
 * Returns the number of moves, or -1 with err set when a group has nowhere to go. */
static int plan_drain(const shoal_cluster_t *cl, uint64_t node, move_t *mv, char *err, size_t cap)
{
    uint32_t count[MAX_NODES];
    count_replicas(cl, count);
    int n = 0;
    for (size_t i = 0; i <= cl->n_shards && n < MAX_MOVES; i++) {
        if (i == cl->n_shards && !cl->has_meta)
            break;
        const shoal_shard_status_t *s = i < cl->n_shards ? &cl->shards[i] : &cl->meta;
        uint32_t id = i < cl->n_shards ? s->id : SHOAL_META_SHARD;
        if (!member(s, node))
            continue;
        int64_t to = pick_target(cl, s, node, count);
        if (to < 0) {
            char b[32];
            snprintf(err, cap,
                     "no up node can take %s's replica: every other up node holds one (add a "
                     "node, or start the ones that are down)",
                     group_name(id, b, sizeof b));
            return -1;
        }
        count[to]++;
        mv[n++] = (move_t){id, node, (uint64_t)to};
    }
    return n;
}

/* rebalance: while the most loaded up node has 2 or more data replicas more than the least
 * loaded one, move one of its shards there (a follower's rather than a leader's: moving a
 * leader first hands its leadership away). */
static int plan_rebalance(const shoal_cluster_t *cl, move_t *mv)
{
    uint32_t count[MAX_NODES];
    count_replicas(cl, count);
    bool moved[4096] = {0}; /* one move per shard per plan: the map refuses a second */
    int n = 0;
    while (n < MAX_MOVES) {
        int64_t hi = -1, lo = -1;
        for (size_t i = 0; i < cl->n_nodes; i++) {
            const shoal_node_status_t *nd = &cl->nodes[i];
            if (!nd->up || nd->id >= MAX_NODES)
                continue;
            if (hi < 0 || count[nd->id] > count[hi])
                hi = (int64_t)nd->id;
            if (lo < 0 || count[nd->id] < count[lo])
                lo = (int64_t)nd->id;
        }
        if (hi < 0 || count[hi] < count[lo] + 2)
            break;
        int64_t pick = -1;
        for (size_t i = 0; i < cl->n_shards && i < 4096; i++) {
            const shoal_shard_status_t *s = &cl->shards[i];
            if (moved[i] || s->n_leaving || !member(s, (uint64_t)hi) || holds(s, (uint64_t)lo))
                continue;
            if (pick < 0 || (cl->shards[pick].leader == hi && s->leader != hi))
                pick = (int64_t)i;
        }
        if (pick < 0)
            break;
        moved[pick] = true;
        count[hi]--;
        count[lo]++;
        mv[n++] = (move_t){cl->shards[pick].id, (uint64_t)hi, (uint64_t)lo};
    }
    return n;
}

/* Whether the move is over: the target is a member, the source neither a member nor
 * still deleting its replica, and the group has a leader. */
static bool move_finished(const shoal_cluster_t *cl, const move_t *m)
{
    const shoal_shard_status_t *s = find_group(cl, m->shard);
    return s && member(s, m->to) && !holds(s, m->from) && s->leader >= 0;
}

/* Whether the map already took the move (an UNAVAILABLE answer may have applied it). */
static bool move_started(const shoal_cluster_t *cl, const move_t *m)
{
    const shoal_shard_status_t *s = find_group(cl, m->shard);
    return s && (member(s, m->to) || in_list(s->leaving, s->n_leaving, m->from));
}

/* Asks for the move, through leader changes of the metadata group; then waits for it.
 * Returns -1 when finished, else the exit status (after the error line). */
static int run_move(ctl_t *c, shoal_t *s, const move_t *m, const place_opts_t *o)
{
    char err[256] = "", b[32];
    int64_t deadline = zclock_mono() + (int64_t)o->move_s * 1000;
    bool asked = false;
    while (zclock_mono() < deadline && !zsys_interrupted) {
        shoal_cluster_t cl;
        int st = shoal_status(s, false, &cl, err, sizeof err);
        if (st == SHOAL_STATUS_OK) {
            bool fin = move_finished(&cl, m), started = asked || move_started(&cl, m);
            shoal_cluster_clear(&cl);
            if (fin)
                return -1;
            if (!started) {
                st = shoal_admin_move_replica(s, m->shard, m->from, m->to, err, sizeof err);
                if (st == SHOAL_STATUS_BAD_REQUEST)
                    return ctl_fail(c, EXIT_USAGE,
                                    "move of %s from node %" PRIu64 " to node %" PRIu64
                                    " refused: %s",
                                    group_name(m->shard, b, sizeof b), m->from, m->to, err);
                asked = st == SHOAL_STATUS_OK;
            }
        }
        zclock_sleep(POLL_MS);
    }
    if (zsys_interrupted)
        return ctl_fail(c, EXIT_UNAVAIL,
                        "interrupted; the move of %s from node %" PRIu64 " to node %" PRIu64
                        " goes on (see `shoalctl status`)",
                        group_name(m->shard, b, sizeof b), m->from, m->to);
    return ctl_fail(c, EXIT_UNAVAIL,
                    "move of %s from node %" PRIu64 " to node %" PRIu64
                    " not finished within %" PRIu64 " s (it goes on; see `shoalctl status`)%s%s",
                    group_name(m->shard, b, sizeof b), m->from, m->to, o->move_s,
                    err[0] ? ": " : "", err);
}

static void print_move(ctl_t *c, const move_t *m, size_t k, int64_t ms, bool *first)
{
    char b[32];
    if (c->json) {
        printf("%s{\"shard\":", *first ? "" : ",");
        if (m->shard == SHOAL_META_SHARD)
            printf("\"meta\"");
        else
            printf("%u", m->shard);
        printf(",\"from\":%" PRIu64 ",\"to\":%" PRIu64, m->from, m->to);
        if (ms >= 0)
            printf(",\"ms\":%" PRId64, ms);
        printf("}");
    } else if (ms < 0) {
        printf("%s from node %" PRIu64 " to node %" PRIu64 "\n", group_name(m->shard, b, sizeof b),
               m->from, m->to);
    } else {
        printf("move %zu: %s from node %" PRIu64 " to node %" PRIu64 ": done in %.1f s\n", k,
               group_name(m->shard, b, sizeof b), m->from, m->to, (double)ms / 1000.0);
    }
    *first = false;
    fflush(stdout);
}

/* Plans from a fresh status: the number of moves (0: nothing left), or -1 with *exit_rc
 * set after the error line. */
static int plan_now(ctl_t *c, shoal_t *s, const place_opts_t *o, move_t *plan, int *exit_rc)
{
    shoal_cluster_t cl;
    char err[256] = "";
    int st = shoal_status(s, false, &cl, err, sizeof err);
    if (st != SHOAL_STATUS_OK) {
        *exit_rc = ctl_status_exit(c, st, err);
        return -1;
    }
    int n = -1;
    if (o->drain && !node_of(&cl, o->node)) {
        *exit_rc = ctl_fail(c, EXIT_USAGE, "node %" PRIu64 " is not in the shard map", o->node);
    } else if ((n = o->drain ? plan_drain(&cl, o->node, plan, err, sizeof err)
                             : plan_rebalance(&cl, plan)) < 0) {
        bool down = false; /* a node that is down might take it once started */
        for (size_t i = 0; i < cl.n_nodes; i++)
            down = down || !cl.nodes[i].up;
        *exit_rc = ctl_fail(c, down ? EXIT_UNAVAIL : EXIT_USAGE, "%s", err);
    }
    shoal_cluster_clear(&cl);
    return n;
}

/* Makes the plan's first move, plans again from the new status, and so on: each move is
 * chosen from the cluster as it is when the last one finished. */
static int run_plan(ctl_t *c, shoal_t *s, const place_opts_t *o)
{
    static move_t plan[MAX_MOVES];
    int rc = EXIT_OK, n = plan_now(c, s, o, plan, &rc);
    size_t made = 0;
    bool first = true;
    for (int i = 0; o->plan_only && i < n; i++)
        print_move(c, &plan[i], (size_t)i + 1, -1, &first);
    while (!o->plan_only && n > 0 && !zsys_interrupted) {
        int64_t t0 = zclock_mono();
        int mrc = run_move(c, s, &plan[0], o);
        if (mrc >= 0)
            return mrc;
        print_move(c, &plan[0], ++made, zclock_mono() - t0, &first);
        n = plan_now(c, s, o, plan, &rc);
    }
    if (zsys_interrupted)
        return ctl_fail(c, EXIT_UNAVAIL, "interrupted after %zu moves", made);
    if (rc == EXIT_OK && !c->json && !made && n == 0)
        printf("nothing to move\n");
    return rc;
}

static int place(ctl_t *c, const place_opts_t *o)
{
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    if (c->json)
        printf("{\"moves\":[");
    int rc = run_plan(c, s, o);
    if (c->json)
        printf("],\"status\":\"%s\"}\n", rc == EXIT_OK ? "ok" : "failed");
    shoal_destroy(&s);
    return rc;
}

int cmd_place(ctl_t *c, int argc, char **argv)
{
    static const char *drain_usage =
        "usage: drain-node ID [--plan] [--move-timeout S]\n"
        "Moves every replica off node ID (the metadata group's too), one move at a time,\n"
        "each to the up node with the fewest replicas that has none of that shard, and\n"
        "waits for each to finish; then `remove-node ID` can take the node out of the map.\n"
        "--plan prints the moves and makes none. A move not finished within --move-timeout\n"
        "seconds (default 600) ends the command with exit 3; the move itself goes on.\n";
    static const char *rebalance_usage =
        "usage: rebalance [--plan] [--move-timeout S]\n"
        "Evens out the data replicas over the up nodes (a node added with add-node holds\n"
        "none): while one node has 2 or more replicas more than another, moves one of its\n"
        "shards there, one move at a time, each waited for. --plan and --move-timeout as\n"
        "for drain-node.\n";
    place_opts_t o = {.drain = !strcmp(c->cmd, "drain-node"), .move_s = DEFAULT_MOVE_S};
    c->usage = o.drain ? drain_usage : rebalance_usage;
    enum { OPT_PLAN = OPT_FIRST_CMD, OPT_MOVE_TIMEOUT };
    static const struct option opts[] = {CTL_COMMON_OPTS,
                                         {"plan", no_argument, 0, OPT_PLAN},
                                         {"move-timeout", required_argument, 0, OPT_MOVE_TIMEOUT},
                                         {0, 0, 0, 0}};
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
        if (opt == OPT_PLAN)
            o.plan_only = true;
        else if (opt == OPT_MOVE_TIMEOUT) {
            if (ctl_parse_u64(c, "--move-timeout", optarg, 1, 86400, &o.move_s))
                return EXIT_USAGE;
        } else if ((rc = ctl_common(c, opt, argc, argv)) >= 0)
            return rc;
    if ((rc = ctl_want_args(c, argc - optind, o.drain, o.drain)) >= 0)
        return rc;
    if (o.drain && ctl_parse_u64(c, "ID", argv[optind], 0, MAX_NODES - 1, &o.node))
        return EXIT_USAGE;
    return place(c, &o);
}
