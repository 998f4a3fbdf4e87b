/* sched_batch.h - a daemon's threads under SCHED_BATCH (node/sched_batch, broker/sched_batch;
 * on by default).
 *
 * A write crosses several threads of several processes (libzmq I/O threads, node actor, log
 * actor, fsm actor, broker), each woken by the one before. Under the default policy a woken
 * thread preempts the one running, so on a busy host every hand-off is two context
 * switches, and the preempted thread is switched back later with its batch half done.
 * SCHED_BATCH keeps the CFS share but turns off wake-up preemption: the running thread
 * finishes its turn (and takes more input in it) before the woken one runs. On the 2-CPU
 * test host (3 nodes, a broker and the bench client), daemons under SCHED_BATCH against
 * the default, same binaries: 8 shards puts 10,304 / 10,227 against 9,326 / 7,289 per
 * second, context switches per put 1.40 / 1.46 against 2.01 / 2.02, p99 lower; lease gets
 * at 1 shard +44-65%; 1-shard puts unchanged (docs/BENCHMARKS.md, session 19). The price is
 * wake-up latency next to other busy processes: a woken thread waits for the running one's
 * slice (a few ms), which Raft's ticks (10 ms) and election timeouts (0.5-1 s) absorb; a
 * host shared with latency-critical work can turn it off.
 *
 * Called before the first thread is made: threads inherit their creator's policy. */
#ifndef SHOAL_SCHED_BATCH_H
#define SHOAL_SCHED_BATCH_H

#include <errno.h>
#include <sched.h>

#ifndef SCHED_BATCH
#define SCHED_BATCH 3 /* Linux's value; glibc declares it only under _GNU_SOURCE */
#endif

/* 0, or -errno (the policy stays as it was). */
static inline int shoal_sched_batch(void)
{
    struct sched_param p = {0};
    return sched_setscheduler(0, SCHED_BATCH, &p) == 0 ? 0 : -errno;
}

#endif
