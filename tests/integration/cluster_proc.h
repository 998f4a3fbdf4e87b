/* cluster_proc.h - process helpers of the C tests that run a whole local cluster
 * (chaos_cluster, cluster_linearizable).
 *
 * Such a test starts `shoalctl cluster up` in a temporary folder DIR, which writes one pid
 * file per process (DIR/pids/node-N.pid, DIR/pids/broker.pid) and the processes' logs
 * (DIR/logs/). The test tracks the processes by those pid files only, never by name, so
 * that it kills nothing but its own cluster; a guardian process cleans up however the test
 * ends, and a watchdog ends a hung test before ctest's timeout does. */
#ifndef SHOAL_TESTS_CLUSTER_PROC_H
#define SHOAL_TESTS_CLUSTER_PROC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- small utilities ---------------------------------------------------------------- */

/* Sleeps ms milliseconds, the whole time even when a signal interrupts it. */
void cluster_sleep_ms(int ms);

/* The next number of a xorshift64 generator (*s: its state, never 0): the tests draw every
 * random choice from one seed so that a failing run replays with --seed. */
uint64_t cluster_xorshift(uint64_t *s);

/* A random int in [lo, hi] from the generator *s. */
int cluster_rnd(uint64_t *s, int lo, int hi);

/* ---- commands ----------------------------------------------------------------------- */

/* Runs a shell command made from fmt; returns its exit code, 128 + the signal that killed
 * it, or -1 when it could not be run. */
int cluster_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs `CTL ARGS` (CTL: the path of shoalctl, ARGS made from fmt and ap) with its output
 * appended to DIR/logs/LOG and stdin from /dev/null; returns as cluster_shell. For a test's
 * own printf-like `ctl` wrapper. */
int cluster_vctl(const char *ctl, const char *dir, const char *log, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

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

/* A free base port (as cluster_base_free) among 20000 + 200 k + offset, picked at random;
 * 0 when none was found. offset (0..99) keeps tests of different kinds that run at the
 * same time off each other's bases. */
int cluster_pick_base(int nodes, int offset);

#endif
