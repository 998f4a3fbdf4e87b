/* cluster_proc.c - process helpers of the C tests that run a whole local cluster; see
 * cluster_proc.h. Everything here finds the cluster's processes by the pid files of its
 * folder, never by name: tests of other runs on the same machine are left alone. */
#define _GNU_SOURCE /* pipe2, vasprintf */
#include "cluster_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- small utilities ---------------------------------------------------------------- */

void cluster_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t cluster_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int cluster_rnd(uint64_t *s, int lo, int hi)
{
    return lo + (int)(cluster_xorshift(s) % (uint64_t)(hi - lo + 1));
}

/* ---- commands ----------------------------------------------------------------------- */

static int run_command(const char *cmd)
{
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

int cluster_shell(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int rc = run_command(cmd);
    free(cmd);
    return rc;
}

int cluster_vctl(const char *ctl, const char *dir, const char *log, const char *fmt, va_list ap)
{
    char *args;
    if (vasprintf(&args, fmt, ap) < 0)
        return -1;
    int rc = cluster_shell("%s %s >>%s/logs/%s 2>&1 </dev/null", ctl, args, dir, log);
    free(args);
    return rc;
}

/* ---- processes by their pid files --------------------------------------------------- */

bool cluster_pid_alive(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the state follows the command name */
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

pid_t cluster_read_pid(const char *dir, const char *name)
{
    char path[1400]; /* dir (<= 1024) + name (<= 256) + "/pids/.pid" */
    if (snprintf(path, sizeof path, "%s/pids/%s.pid", dir, name) >= (int)sizeof path)
        return 0;
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

pid_t cluster_node_pid(const char *dir, int i)
{
    char name[32];
    snprintf(name, sizeof name, "node-%d", i);
    return cluster_read_pid(dir, name);
}

void cluster_kill_all(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/pids", dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pid") != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 4), e->d_name);
        pid_t pid = cluster_read_pid(dir, name);
        if (pid > 0) {
            kill(pid, SIGCONT);
            kill(pid, SIGKILL);
        }
    }
    closedir(d);
}

void cluster_reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* ---- the folder --------------------------------------------------------------------- */

void cluster_remove_dir(const char *dir)
{
    if (getenv("KEEP_DIR")) {
        fprintf(stderr, "KEEP_DIR: %s kept\n", dir);
        return;
    }
    if (cluster_shell("rm -rf %s", dir) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int cluster_keep_logs(const char *dir, const char *dest)
{
    if (cluster_shell("cp -r %s/logs %s 2>/dev/null", dir, dest) != 0)
        return -1;
    fprintf(stderr, "logs kept in %s\n", dest);
    return 0;
}

/* ---- the guardian and the watchdog -------------------------------------------------- */

void cluster_start_guardian(const char *dir, void (*on_gone)(const char *dir, void *arg), void *arg)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(1);
    }
    pid_t g = fork();
    if (g < 0) {
        perror("fork");
        exit(1);
    }
    if (g == 0) {
        setpgid(0, 0); /* not killed with the test's process group */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        close(fds[1]);
        for (;;) {
            char c;
            ssize_t n = read(fds[0], &c, 1);
            if (n == 0 || (n < 0 && errno != EINTR))
                break;
        }
        struct stat st;
        if (stat(dir, &st) == 0) {
            /* again over 2 s: a `cluster start-node` the test had running may still start one */
            for (int i = 0; i < 5; i++) {
                cluster_kill_all(dir);
                cluster_sleep_ms(500);
            }
            if (on_gone)
                on_gone(dir, arg);
            cluster_remove_dir(dir);
        }
        _exit(0);
    }
    close(fds[0]); /* the write end stays open (close-on-exec) for the test's lifetime */
}

/* The watchdog's message, made when it is armed: the handler only writes it. */
static char watchdog_msg[256];
static size_t watchdog_len;

static void on_alarm(int sig)
{
    (void)sig;
    if (write(2, watchdog_msg, watchdog_len) < 0)
        _exit(1);
    _exit(1);
}

void cluster_watchdog(unsigned seconds, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(watchdog_msg, sizeof watchdog_msg, fmt, ap);
    va_end(ap);
    watchdog_len = n < 0                             ? 0
                   : (size_t)n < sizeof watchdog_msg ? (size_t)n
                                                     : sizeof watchdog_msg - 1;
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

/* ---- ports -------------------------------------------------------------------------- */

static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

bool cluster_base_free(int base, int nodes)
{
    bool ok = port_free(base) && port_free(base + 1) && port_free(base + 2);
    for (int p = base + 100; ok && p < base + 100 + 2 * nodes; p++)
        ok = port_free(p);
    return ok;
}

int cluster_pick_base(int nodes, int offset)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)getpid() * 2654435761u ^
                 ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    for (int i = 0; i < 1000; i++) {
        int b = 20000 + (int)(cluster_xorshift(&s) % 200) * 200 + offset;
        if (cluster_base_free(b, nodes))
            return b;
    }
    return 0;
}
