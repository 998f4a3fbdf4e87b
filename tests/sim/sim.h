/* sim.h - the deterministic Raft simulator (tests/sim).
 *
 * One seed drives everything: a cluster of real Raft cores (engine/raft) over a fake
 * network (loss, delay, duplication, reordering, symmetric and one-way partitions) and
 * fake disks (persisted state survives a crash, the unpersisted ready does not; a slow disk
 * holds a ready for a while), with clients that write and read a small key-value map, and
 * a fault schedule of crashes, restarts, partitions, membership changes and leadership
 * transfers. Checkers run at every step (check.c) and at the end. */
#ifndef SHOAL_SIM_H
#define SHOAL_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t seed;
    bool verbose;
    int planted_bug;       /* 0 = none; with raft_sim_buggy only */
    unsigned fault_ticks;  /* length of the fault phase */
    unsigned settle_ticks; /* bound for liveness after the faults stop */
} sim_options_t;

typedef struct {
    bool ok;
    char what[512]; /* the first violation */
    uint64_t tick;
    uint64_t elections, commits, acked_writes, reads, snapshots_sent, conf_changes;
    uint64_t transfers, crashes;
    uint64_t settle_ticks; /* ticks from the end of faults to a settled group */
} sim_result_t;

/* Runs one seed. Returns true if no checker fired. */
bool sim_run(const sim_options_t *opt, sim_result_t *res);

#endif
