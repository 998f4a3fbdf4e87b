/* cluster_proc.h - process helpers of the C tests that run a whole local cluster
 * (chaos_cluster, cluster_linearizable, cluster_reconfig_linearizable, cluster_watch_faults),
 * and the linearizability workload that cluster_linearizable and
 * cluster_reconfig_linearizable share.
 *
 * Such a test starts `shoalctl cluster up` in a temporary folder DIR, which writes one pid
 * file per process (DIR/pids/node-N.pid, DIR/pids/broker.pid) and the processes' logs
 * (DIR/logs/). The test tracks the processes by those pid files only, never by name, so
 * that it kills nothing but its own cluster; a guardian process cleans up however the test
 * ends, and a watchdog ends a hung test before ctest's timeout does. */
#ifndef SHOAL_TESTS_CLUSTER_PROC_H
#define SHOAL_TESTS_CLUSTER_PROC_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/shoal.h"

/* ---- small utilities ---------------------------------------------------------------- */

/* Sleeps ms milliseconds, the whole time even when a signal interrupts it. */
void cluster_sleep_ms(int ms);

/* The next number of a xorshift64 generator (*s: its state, never 0): the tests draw every
 * random choice from one seed so that a failing run replays with --seed. */
uint64_t cluster_xorshift(uint64_t *s);

/* A random int in [lo, hi] from the generator *s. */
int cluster_rnd(uint64_t *s, int lo, int hi);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t cluster_mono_ns(void);

/* The folder temporary clusters and histories go under: $TMPDIR, else /tmp. */
const char *cluster_tmp_root(void);

/* ---- commands ----------------------------------------------------------------------- */

/* Runs a shell command made from fmt; returns its exit code, 128 + the signal that killed
 * it, or -1 when it could not be run. */
int cluster_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs `CTL ARGS` (CTL: the path of shoalctl, ARGS made from fmt and ap) with its output
 * appended to DIR/logs/LOG and stdin from /dev/null; returns as cluster_shell. For a test's
 * own printf-like `ctl` wrapper. */
int cluster_vctl(const char *ctl, const char *dir, const char *log, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Starts `sh -c CMD` (CMD made from fmt) as a child in the background; returns its pid, or
 * -1. Wait for it with cluster_wait_child. */
pid_t cluster_spawn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Waits for the child pid (from cluster_spawn); returns as cluster_shell. */
int cluster_wait_child(pid_t pid);

/* ---- processes by their pid files --------------------------------------------------- */

/* Whether pid names a running process: it exists and is not a zombie (a killed child not
 * yet reaped still answers kill(pid, 0)). */
bool cluster_pid_alive(pid_t pid);

/* The pid in DIR/pids/NAME.pid, 0 when there is none. */
pid_t cluster_read_pid(const char *dir, const char *name);

/* The pid of node i (DIR/pids/node-I.pid), 0 when there is none. */
pid_t cluster_node_pid(const char *dir, int i);

/* Sends SIGCONT and SIGKILL to every process named by a pid file of DIR/pids (SIGCONT
 * first, so a stopped one dies at once). Allocates nothing beyond opendir/fopen: the
 * guardian calls it too. */
void cluster_kill_all(const char *dir);

/* Reaps every child that has ended, without waiting. */
void cluster_reap(void);

/* The node leading shard, as the broker's status shows it, or -1. */
int cluster_leader_of(shoal_t *admin, uint32_t shard);
/* Waits (up to ms) until the status shows nodes nodes up and shards shards, each with a
 * leader. */
bool cluster_wait_healthy(shoal_t *admin, int nodes, int shards, int ms);

/* Whether the logs in DIR/logs hold no sanitizer report and no failed assertion; when they
 * do, prints the reports (60 lines at most) to stderr and returns false. */
bool cluster_logs_clean(const char *dir);

/* ---- the folder --------------------------------------------------------------------- */

/* Removes dir (rm -rf) unless the environment sets KEEP_DIR (then says it kept it). */
void cluster_remove_dir(const char *dir);

/* Copies DIR/logs to dest (cp -r) and says so on stderr; 0 when copied. */
int cluster_keep_logs(const char *dir, const char *dest);

/* ---- the guardian and the watchdog -------------------------------------------------- */

/* Forks the guardian, first, before any cluster process: it waits for this process to end
 * in any way (assert, signal, ctest timeout: its end of a pipe closes), then, if dir is
 * still there, kills the cluster by its pid files (again for 2 s: a `cluster start-node`
 * that was running may still start one), calls on_gone(dir, arg) when it is not NULL (in
 * the guardian), and removes dir as cluster_remove_dir. On the normal path the test has
 * removed dir itself and the guardian has nothing to do. Exits on failure to fork. */
void cluster_start_guardian(const char *dir, void (*on_gone)(const char *dir, void *arg),
                            void *arg);

/* Arms a watchdog: after seconds, a SIGALRM prints the message made from fmt (now) to
 * stderr and ends the process with exit code 1, so a hung test fails with its seed rather
 * than by ctest's timeout (the guardian then cleans up). */
void cluster_watchdog(unsigned seconds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- ports -------------------------------------------------------------------------- */

/* Whether base and the ports `shoalctl cluster up --base-port base` uses for nodes nodes
 * are free on 127.0.0.1: base..base+2 (broker client, XPUB, dashboard) and
 * base+100..base+100+2*nodes-1 (each node's two). */
bool cluster_base_free(int base, int nodes);

/* A free base port (as cluster_base_free) among LO + 200 k + offset in this test's port
 * range (tests/integration/ports_lib.sh), picked at random; 0 when none was found. offset (0..99)
 * keeps tests of different kinds that run at the same time off each other's bases. */
int cluster_pick_base(int nodes, int offset);

/* ---- the linearizability workload -------------------------------------------------- */

/* Client threads, each with its own libshoal connection, doing random get / put / cas / del
 * and two-key batches on a few shared keys (high contention), every written value unique
 * ("c3.17"). Every operation is recorded with its client, arguments, invoke and completion
 * time (ns since t0_ns) and outcome: ok (get: the value or not found; cas: swapped), cas
 * failed (with the current value the node reported, so a failed cas is a read), ambiguous
 * (TIMEOUT / UNAVAILABLE / INTERNAL: a write may apply at any later time or never; a read
 * simply did not happen) or error (any other answer: reported through on_error). The
 * history is written as JSON lines for tests/integration/linearizable_check.py. */
#define LIN_MAX_CLIENTS 64
#define LIN_MAX_KEYS 64

typedef struct lin_client lin_client_t;
struct shoal_t;

typedef struct {
    /* set by the test before lin_start */
    uint64_t seed; /* the clients' random choices derive from it */
    int clients, nkeys, op_timeout_ms;
    char broker_ep[64];
    char keys[LIN_MAX_KEYS][48];
    int64_t t0_ns; /* the history's time zero (cluster_mono_ns) */
    /* an answer that is neither a result nor ambiguous: one line (any thread) */
    void (*on_error)(void *arg, const char *line);
    void *arg;
    /* the workload's own */
    atomic_bool stop;
    lin_client_t *cs; /* clients + 1: the last one holds the final reads */
    pthread_t th[LIN_MAX_CLIENTS];
} lin_workload_t;

/* Starts the client threads. */
void lin_start(lin_workload_t *w);

/* Stops and joins them; adds their operations and ambiguous ones to *ops and *ambiguous. */
void lin_stop(lin_workload_t *w, uint64_t *ops, uint64_t *ambiguous);

/* After lin_stop: one get of each key through admin, recorded in the history as operations
 * of an extra client (so the checker sees what the keys finally hold: an acknowledged
 * write that was lost shows up here if no client read the key after it). Returns how many
 * of the reads were not answered (ambiguous). */
int lin_final_reads(lin_workload_t *w, struct shoal_t *admin);

/* Writes the history (JSON lines; meta_json: the object of the first line's "meta") to
 * path; 0 when written. */
int lin_write_history(const lin_workload_t *w, const char *path, const char *meta_json);

/* Frees what lin_start allocated. */
void lin_free(lin_workload_t *w);

#endif
