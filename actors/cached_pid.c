/* cached_pid.c - getpid() answered from memory in the daemons and shoalctl.
 *
 * libzmq calls getpid() on every signal between threads (a fork-safety check in its
 * signaler), and glibc makes that a system call every time (it stopped caching the pid
 * in 2.25). On this project's virtual machines a system call is dear: at 8 shards
 * `__getpid` was 7-8% of the nodes' samples and 4% of the broker's (docs/BENCHMARKS.md,
 * session 19). Linked into an executable, this definition takes the place of libc's for
 * the shared libraries too (the executable's symbols come first in the lookup). The pid is
 * read once and read again in the child after a fork (pthread_atfork), so the answer is
 * always the caller's pid; the processes that link it do not call clone() or vfork()
 * directly. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static _Atomic pid_t cached;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void forget(void)
{
    atomic_store_explicit(&cached, 0, memory_order_relaxed);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget);
}

pid_t getpid(void)
{
    pid_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (p)
        return p;
    pthread_once(&once, watch_forks);
    p = (pid_t)syscall(SYS_getpid);
    atomic_store_explicit(&cached, p, memory_order_relaxed);
    return p;
}
