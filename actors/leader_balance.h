/* leader_balance.h - spreading the leaders of the groups evenly over the nodes that host
 * them (internal to actors/; docs/ARCHITECTURE.md, "Leader balancing").
 *
 * Every group ranks its replicas, computed from the shard map alone, so every node with
 * the same map version computes the same ranking (leader_balance_assign): the first is the
 * group's preferred leader, spread evenly over the nodes; the second is spread evenly
 * among the groups that prefer the same node, so that when a node is down its groups
 * still spread evenly over the others. The target is the first live node of the ranking.
 * A leader that is not the target hands leadership to it (raft_transfer_leader, as a move's
 * hand-over does) once it is a voter, caught up, heard from recently, and the group has no move,
 * split or configuration change open (leader_balance_decide). Against flapping: a leader waits a
 * while after its election before it hands over, and a group's transfers are at least an
 * interval apart, the interval doubling while transfers keep coming back (the preferred
 * node does not keep the leadership) up to a minute.
 *
 * The assignment and the decision are pure functions of their inputs (unit-tested in
 * tests/unit/test_leader_balance.c); leader_balance_step applies them to one led group in
 * the node's sweep (placement_sweep). Switched off by raft/balance_leaders = 0. */
#ifndef SHOAL_ACTORS_LEADER_BALANCE_H
#define SHOAL_ACTORS_LEADER_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/raft/raft.h"
#include "proto/admin.pb-c.h"

#define LB_NONE UINT64_MAX /* no preferred node */
#define LB_MAX_LAG 64      /* entries a transferee may still miss (the core waits for them) */
#define LB_MAX_BACKOFF_MS 60000

/* What a node remembers of its own leadership of one group. */
typedef struct {
    uint64_t term;       /* the term this node was last seen leading the group in */
    uint64_t since_ms;   /* when it was first seen leading in that term */
    uint64_t last_ms;    /* when it last started a transfer (0: never) */
    uint64_t backoff_ms; /* the next transfer waits this long after last_ms */
} lb_state_t;

#define LB_RANKS 8 /* replicas ranked per group (cluster/replicas is at most 7) */

/* A group's replicas in the order they should lead: rank[0] is the preferred leader;
 * when it is down, the first live one after it. */
typedef struct {
    uint32_t group;
    size_t n;
    uint64_t rank[LB_RANKS];
} lb_pref_t;

/* The ranking of every data shard of m and of the metadata group, whose target hosts are
 * meta[0..n_meta). rank[0]: the shards in id order, each to the replica that so far
 * prefers the fewest (ties: the one listed first, which the bootstrap placement rotates by
 * shard id), then the metadata group to its host preferring the fewest data shards.
 * rank[1]: likewise among the groups with the same rank[0], so that the groups of a node
 * that is down spread evenly over the others. Then the rest in map order. Fills at most
 * cap entries of out; returns the count. */
size_t leader_balance_assign(const Shoal__ShardMap *m, const uint64_t *meta, size_t n_meta,
                             lb_pref_t *out, size_t cap);

typedef struct {
    const raft_status_t *st;  /* this node's view of the group (a leader's: peers filled) */
    uint64_t self;            /* this node's id */
    const lb_pref_t *pref;    /* the group's ranking */
    const bool *alive;        /* per rank: a frame from that node arrived within the base
                               * interval below (this node counts as alive) */
    bool changing;            /* a move, its cancel or a split of the group is open */
    const uint64_t *replicas; /* the map's target placement of the group */
    size_t n_replicas;
    uint64_t now_ms;
    uint64_t election_ms; /* the election timeout: sets the waits below */
    const lb_state_t *gs;
} lb_input_t;

/* The node that should lead: the first live one in the ranking (LB_NONE: none). */
uint64_t leader_balance_target(const lb_input_t *in);
/* The Raft id to hand the group's leadership to now, or 0 (then *why, if not NULL, says
 * why not in a few words). */
uint64_t leader_balance_decide(const lb_input_t *in, const char **why);
/* Records that this node leads the group in term at now_ms (every sweep it leads it). */
void leader_balance_observe(lb_state_t *gs, uint64_t term, uint64_t now_ms);
/* Records a transfer started at now_ms: sets the wait before the next one, doubled when
 * the previous one was recent (it came back to this node), else the base interval. */
void leader_balance_started(lb_state_t *gs, uint64_t now_ms, uint64_t election_ms);
/* The waits, from the election timeout: after an election, and between transfers. */
uint64_t leader_balance_hold_ms(uint64_t election_ms);
uint64_t leader_balance_base_ms(uint64_t election_ms);

/* ---- the node's side (placement_sweep) ---------------------------------------------- */
typedef struct leader_balance leader_balance_t;
struct node_t;
struct replica_t;

leader_balance_t *leader_balance_new(void);
void leader_balance_destroy(leader_balance_t **self_p);
/* r is led here: hand its leadership to its preferred node if leader_balance_decide says
 * so. Does nothing when the node has balancing switched off (no leader_balance_t). */
void leader_balance_step(struct node_t *n, struct replica_t *r);

#endif
