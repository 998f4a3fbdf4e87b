/* check.h - the simulator's checkers (check.c): the safety properties of the Raft paper
 * (Figure 3) at every step, and at the end linearizability of the clients' history and
 * durability of every acknowledged write. */
#ifndef SHOAL_SIM_CHECK_H
#define SHOAL_SIM_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/raft/raft.h"

typedef struct sim sim_t;

typedef enum { OP_PENDING = 0, OP_OK, OP_FAILED, OP_UNKNOWN } op_result_t;

typedef struct {
    bool is_read;
    uint64_t key, op_id;
    uint64_t invoke, complete;
    op_result_t how;
    uint64_t value, pos;
} check_op_t;

typedef struct {
    uint64_t term, hash, op_id, key;
    bool set, is_write;
} applied_t;

typedef struct {
    uint64_t index, term, hash, prev_term;
} lm_slot_t;

typedef struct {
    applied_t *applied; /* by Raft index */
    size_t cap_applied;
    uint64_t max_applied;
    uint64_t *commit_term; /* by index: lowest leader term seen with commit >= index */
    size_t cap_commit;
    uint64_t *leader_of; /* by term */
    size_t cap_terms;
    lm_slot_t *lm; /* (index, term) -> entry hash, previous term: log matching */
    size_t cap_lm, n_lm;
    check_op_t *ops;
    size_t n_ops, cap_ops;
    uint64_t *op_index; /* op id -> Raft index where it was applied */
    size_t cap_op_index;
    uint64_t clock;
    raft_hard_state_t last_hs[32];
} check_t;

void check_init(check_t *c);
void check_free(check_t *c);

/* sim.c calls these; each reports through sim_fail. */
void check_log_entry(check_t *c, sim_t *s, uint64_t node, const raft_entry_t *e,
                     uint64_t prev_term);
void check_apply(check_t *c, sim_t *s, uint64_t node, const raft_entry_t *e);
void check_snapshot(check_t *c, sim_t *s, uint64_t node, uint64_t index, const uint64_t *kv,
                    unsigned nkeys);
void check_ready(check_t *c, sim_t *s, uint64_t node, const raft_ready_t *rd);
void check_step(check_t *c, sim_t *s);
void check_final(check_t *c, sim_t *s);
void check_acked_applied(check_t *c, sim_t *s, uint64_t node, uint64_t applied);
uint64_t check_max_applied(const check_t *c);

int check_op_invoke(check_t *c, bool is_read, uint64_t key, uint64_t op_id);
void check_op_complete(check_t *c, int op, op_result_t how, uint64_t value, uint64_t pos);
bool check_op_is_read(const check_t *c, int op);
uint64_t check_op_id(const check_t *c, int op);
uint64_t check_op_key(const check_t *c, int op);

/* from sim.c */
void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
raft_t *sim_node_raft(sim_t *s, uint64_t id);
int sim_node_count(void);

#endif
