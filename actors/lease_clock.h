/* lease_clock.h - whether the node's Raft ticks still keep up with real time, so that a
 * leader lease counted in ticks (raft_config_t.lease_read) is still safe to use.
 *
 * The core's lease ends election_ticks - margin ticks after the heartbeat round that
 * established it; followers wait at least (election_ticks - 1) tick periods of their own
 * before electing another leader. A timer that fires late (a loaded or stopped process)
 * stretches the leader's ticks, so the node checks, before any lease read can be served,
 * that the last election_ticks - margin ticks did not take longer than the followers'
 * guaranteed wait minus the configured drift; if they did, it drops the leases and reads
 * take a heartbeat round until a round sent after that confirms a new lease. */
#ifndef SHOAL_ACTORS_LEASE_CLOCK_H
#define SHOAL_ACTORS_LEASE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct lease_clock lease_clock_t;

/* NULL on a bad argument (window >= election ticks) or no memory. now_ms: zclock_mono. */
lease_clock_t *lease_clock_new(unsigned tick_ms, unsigned election_ticks, unsigned margin,
                               unsigned drift_ms, uint64_t now_ms);
void lease_clock_destroy(lease_clock_t **self_p);
/* Records a tick of the node's Raft timer. */
void lease_clock_tick(lease_clock_t *lc, uint64_t now_ms);
/* Whether a lease counted in the recorded ticks is still safe to use at now_ms. */
bool lease_clock_ok(const lease_clock_t *lc, uint64_t now_ms);

#endif
