/* pool.h - background threads shared by engines (flushes and compactions).
 *
 * A node hosts one engine per replica; a thread per engine made a node's thread count grow
 * with its replicas (8 + 64 for 64 replicas), each thread with its own stack and wake-ups,
 * though a node rarely has more than one or two engines with work at once. A pool runs the
 * background work of every engine opened with it on a fixed number of threads: an engine
 * with work is queued once; a worker takes it, runs one unit of its work (one memtable
 * flush or one compaction), and queues it again at the tail if it did something, so an
 * engine with a long compaction backlog does not keep a busy one waiting for its flush
 * longer than one unit. An engine is never run by two workers at once. */
#ifndef SHOAL_LSM_POOL_H
#define SHOAL_LSM_POOL_H

#include <stdbool.h>

typedef struct lsm_pool lsm_pool_t;

/* One engine's place in a pool. The fields belong to the pool (its mutex). */
typedef struct lsm_pool_member {
    struct lsm_pool_member *next;
    bool (*step)(void *arg); /* one unit of work, without any pool lock; false: none done */
    void *arg;
    bool queued, running, again, detached;
} lsm_pool_member_t;

/* threads: 1-64. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM. */
int lsm_pool_new(int threads, lsm_pool_t **out);
/* Stops the workers; every member must have been detached (every engine closed). */
void lsm_pool_destroy(lsm_pool_t **pool);

/* Membership, used by the engine (db.c). */
void lsm_pool_attach(lsm_pool_t *p, lsm_pool_member_t *m, bool (*step)(void *), void *arg);
/* Work may be waiting: queue m unless queued; if a worker runs it, run it once more after. */
void lsm_pool_schedule(lsm_pool_t *p, lsm_pool_member_t *m);
/* Takes m out of the queue and waits for a worker running it; no step of m starts after. */
void lsm_pool_detach(lsm_pool_t *p, lsm_pool_member_t *m);
int lsm_pool_threads(const lsm_pool_t *p);

#endif
