/* cluster_proc.c - process helpers of the C tests that run a whole local cluster, and the
 * linearizability workload two of them share; see cluster_proc.h. Everything here finds the
 * cluster's processes by the pid files of its folder, never by name: tests of other runs on
 * the same machine are left alone. */
#define _GNU_SOURCE /* pipe2, vasprintf */
#include "cluster_proc.h"

#include "broker/shoal.h"
#include "engine/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

int64_t cluster_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *cluster_tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
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

pid_t cluster_spawn(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    free(cmd);
    return pid;
}

int cluster_wait_child(pid_t pid)
{
    int rc;
    pid_t r;
    while ((r = waitpid(pid, &rc, 0)) < 0 && errno == EINTR)
        ;
    if (r != pid)
        return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

/* ---- processes by their pid files --------------------------------------------------- */

bool cluster_pid_alive(pid_t pid)
{
    return shoal_proc_running(pid);
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

int cluster_leader_of(shoal_t *admin, uint32_t shard)
{
    shoal_cluster_t cl;
    char err[256];
    if (shoal_status(admin, false, &cl, err, sizeof err) != SHOAL_STATUS_OK)
        return -1;
    int leader = -1;
    for (size_t i = 0; i < cl.n_shards; i++)
        if (cl.shards[i].id == shard)
            leader = (int)cl.shards[i].leader;
    shoal_cluster_clear(&cl);
    return leader;
}

bool cluster_wait_healthy(shoal_t *admin, int nodes, int shards, int ms)
{
    int64_t until = cluster_mono_ns() + (int64_t)ms * 1000000;
    while (cluster_mono_ns() < until) {
        shoal_cluster_t cl;
        char err[256];
        if (shoal_status(admin, false, &cl, err, sizeof err) == SHOAL_STATUS_OK) {
            size_t up = 0, led = 0;
            for (size_t i = 0; i < cl.n_nodes; i++)
                up += cl.nodes[i].up;
            for (size_t i = 0; i < cl.n_shards; i++)
                led += cl.shards[i].leader >= 0;
            bool ok = up == (size_t)nodes && led == cl.n_shards && cl.n_shards == (size_t)shards;
            shoal_cluster_clear(&cl);
            if (ok)
                return true;
        }
        cluster_sleep_ms(100);
    }
    return false;
}

bool cluster_logs_clean(const char *dir)
{
    static const char *pattern =
        "'runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer|Assertion .* failed'";
    if (cluster_shell("grep -l -E %s %s/logs/*.log >/dev/null 2>&1", pattern, dir) != 0)
        return true;
    cluster_shell("grep -h -A20 -E %s %s/logs/*.log | head -60 >&2", pattern, dir);
    return false;
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

/* This test's port range, as tests/integration/ports_lib.sh computes it. */
static void test_ports(int *lo, int *hi)
{
    const char *slot = getenv("CTEST_RESOURCE_GROUP_0_PORTS");
    const char *range = getenv("SHOAL_TEST_PORTS");
    *lo = 10000;
    *hi = 32000;
    if (slot && !strncmp(slot, "id:0,", 5))
        *hi = 20999;
    else if (slot && !strncmp(slot, "id:1,", 5))
        *lo = 21000, *hi = 31999;
    else if (range && sscanf(range, "%d-%d", lo, hi) != 2)
        *lo = 10000, *hi = 32000;
}

int cluster_pick_base(int nodes, int offset)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)getpid() * 2654435761u ^
                 ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    int lo, hi;
    test_ports(&lo, &hi);
    int slots = (hi - lo - 100 - 2 * nodes - offset) / 200; /* bases whose ports fit */
    for (int i = 0; slots > 0 && i < 1000; i++) {
        int b = lo + (int)(cluster_xorshift(&s) % (uint64_t)slots) * 200 + offset;
        if (cluster_base_free(b, nodes))
            return b;
    }
    return 0;
}

/* ---- the linearizability workload -------------------------------------------------- */

/* One operation. Values are short ASCII ("c3.17"), so they are stored inline. */
typedef enum { O_GET, O_PUT, O_DEL, O_CAS, O_BATCH } opkind_t;
typedef enum { OUT_OK, OUT_NOTFOUND, OUT_CASFAIL, OUT_AMBIG, OUT_ERROR } outcome_t;

static const char *kind_name[] = {"get", "put", "del", "cas", "batch"};
static const char *outcome_name[] = {"ok", "notfound", "casfail", "ambiguous", "error"};

typedef struct {
    int64_t t_inv, t_ret; /* ns since t0 */
    uint8_t kind, outcome, key, key2;
    bool absent;   /* cas: expect absent */
    bool found;    /* get ok / cas failed: a current value was returned */
    char val[24];  /* put/cas: the new value; batch: key's value */
    char val2[24]; /* batch: key2's value */
    char exp[24];  /* cas: expected */
    char got[24];  /* get / failed cas: the value read */
    int status;
} rec_t;

struct lin_client {
    lin_workload_t *w;
    int id;
    uint64_t rng;
    rec_t *recs;
    size_t n, cap;
    uint32_t next_val;
    char last_seen[LIN_MAX_KEYS][24]; /* the last value this client saw per key ("" none) */
    uint64_t oks, ambs, errs;
};

static rec_t *new_rec(lin_client_t *c)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        rec_t *r = realloc(c->recs, c->cap * sizeof *c->recs);
        if (!r)
            abort();
        c->recs = r;
    }
    rec_t *r = &c->recs[c->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static void copy_val(char *dst, const uint8_t *v, size_t len)
{
    size_t l = len < 23 ? len : 23;
    memcpy(dst, v, l);
    dst[l] = 0;
}

static bool lin_ambiguous(int st)
{
    return st == SHOAL_STATUS_TIMEOUT || st == SHOAL_STATUS_UNAVAILABLE ||
           st == SHOAL_STATUS_INTERNAL;
}

/* Sets r's outcome from st and counts it; an error goes to the workload's on_error. */
static void lin_settle(lin_client_t *c, rec_t *r, int st, const shoal_result_t *res)
{
    lin_workload_t *w = c->w;
    r->status = st;
    r->t_inv -= w->t0_ns;
    r->t_ret -= w->t0_ns;
    if (st == SHOAL_STATUS_OK)
        r->outcome = OUT_OK;
    else if (st == SHOAL_STATUS_NOT_FOUND)
        r->outcome = OUT_NOTFOUND;
    else if (st == SHOAL_STATUS_COMPARE_FAILED)
        r->outcome = OUT_CASFAIL;
    else if (lin_ambiguous(st))
        r->outcome = OUT_AMBIG;
    else
        r->outcome = OUT_ERROR;
    if (r->outcome == OUT_AMBIG)
        c->ambs++;
    else if (r->outcome == OUT_ERROR) {
        c->errs++;
        if (w->on_error) {
            char line[400];
            snprintf(line, sizeof line, "client %d: %s of %s answered %s (%s)", c->id,
                     kind_name[r->kind], w->keys[r->key], shoal_status_str(st), res->error);
            w->on_error(w->arg, line);
        }
    } else
        c->oks++;
}

static void one_op(lin_client_t *c, shoal_t *s)
{
    lin_workload_t *w = c->w;
    rec_t *r = new_rec(c);
    int k = cluster_rnd(&c->rng, 0, w->nkeys - 1);
    const char *key = w->keys[k];
    size_t kl = strlen(key);
    r->key = (uint8_t)k;
    int p = cluster_rnd(&c->rng, 0, 99);
    shoal_result_t res;
    memset(&res, 0, sizeof res);
    int st;
    if (p < 45) {
        r->kind = O_GET;
        r->t_inv = cluster_mono_ns();
        st = shoal_get(s, key, kl, false, &res);
        r->t_ret = cluster_mono_ns();
        if (st == SHOAL_STATUS_OK) {
            r->found = true;
            copy_val(r->got, res.value, res.value_len);
        }
    } else if (p < 65) {
        r->kind = O_PUT;
        snprintf(r->val, sizeof r->val, "c%d.%u", c->id, ++c->next_val);
        r->t_inv = cluster_mono_ns();
        st = shoal_put(s, key, kl, r->val, strlen(r->val), &res);
        r->t_ret = cluster_mono_ns();
    } else if (p < 90) {
        r->kind = O_CAS;
        snprintf(r->val, sizeof r->val, "c%d.%u", c->id, ++c->next_val);
        r->absent = c->last_seen[k][0] == 0 || cluster_rnd(&c->rng, 0, 9) == 0;
        if (!r->absent)
            snprintf(r->exp, sizeof r->exp, "%s", c->last_seen[k]);
        r->t_inv = cluster_mono_ns();
        st = shoal_cas(s, key, kl, r->absent ? NULL : r->exp, r->absent ? 0 : strlen(r->exp),
                       r->absent, r->val, strlen(r->val), &res);
        r->t_ret = cluster_mono_ns();
        if (st == SHOAL_STATUS_COMPARE_FAILED && res.found) {
            r->found = true;
            copy_val(r->got, res.value, res.value_len);
        }
    } else if (p < 96) {
        r->kind = O_DEL;
        r->t_inv = cluster_mono_ns();
        st = shoal_del(s, key, kl, &res);
        r->t_ret = cluster_mono_ns();
    } else { /* two keys in one batch: each key sees a write of its own */
        r->kind = O_BATCH;
        int k2 = cluster_rnd(&c->rng, 0, w->nkeys - 1);
        if (k2 == k)
            k2 = (k + 1) % w->nkeys;
        r->key2 = (uint8_t)k2;
        snprintf(r->val, sizeof r->val, "c%d.%u", c->id, ++c->next_val);
        snprintf(r->val2, sizeof r->val2, "c%d.%u", c->id, ++c->next_val);
        shoal_batch_op_t ops[2] = {
            {false, key, kl, r->val, strlen(r->val)},
            {false, w->keys[k2], strlen(w->keys[k2]), r->val2, strlen(r->val2)},
        };
        r->t_inv = cluster_mono_ns();
        st = shoal_batch(s, ops, 2, &res);
        r->t_ret = cluster_mono_ns();
    }
    lin_settle(c, r, st, &res);
    /* what this client believes the key holds, for its next cas */
    if (r->outcome == OUT_OK && (r->kind == O_PUT || r->kind == O_CAS))
        snprintf(c->last_seen[k], 24, "%s", r->val);
    else if (r->kind == O_GET && r->outcome == OUT_OK)
        snprintf(c->last_seen[k], 24, "%s", r->got);
    else if ((r->kind == O_GET && r->outcome == OUT_NOTFOUND) ||
             (r->kind == O_DEL && r->outcome != OUT_AMBIG))
        c->last_seen[k][0] = 0;
    else if (r->kind == O_CAS && r->outcome == OUT_CASFAIL)
        snprintf(c->last_seen[k], 24, "%s", r->found ? r->got : "");
    shoal_result_clear(&res);
}

static void *lin_client_main(void *arg)
{
    lin_client_t *c = arg;
    shoal_t *s = shoal_connect(c->w->broker_ep);
    if (!s) {
        if (c->w->on_error)
            c->w->on_error(c->w->arg, "a client cannot connect");
        return NULL;
    }
    shoal_set_timeout(s, c->w->op_timeout_ms);
    while (!atomic_load(&c->w->stop))
        one_op(c, s);
    shoal_destroy(&s);
    return NULL;
}

void lin_start(lin_workload_t *w)
{
    atomic_store(&w->stop, false);
    w->cs = calloc((size_t)w->clients + 1, sizeof *w->cs);
    if (!w->cs)
        abort();
    for (int i = 0; i <= w->clients; i++) {
        lin_client_t *c = &w->cs[i];
        c->w = w;
        c->id = i;
        c->rng = w->seed * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1;
    }
    for (int i = 0; i < w->clients; i++)
        pthread_create(&w->th[i], NULL, lin_client_main, &w->cs[i]);
}

void lin_stop(lin_workload_t *w, uint64_t *ops, uint64_t *ambiguous)
{
    atomic_store(&w->stop, true);
    for (int i = 0; i < w->clients; i++)
        pthread_join(w->th[i], NULL);
    for (int i = 0; i < w->clients; i++) {
        *ops += w->cs[i].n;
        *ambiguous += w->cs[i].ambs;
    }
}

int lin_final_reads(lin_workload_t *w, struct shoal_t *admin)
{
    lin_client_t *c = &w->cs[w->clients];
    int unanswered = 0;
    for (int k = 0; k < w->nkeys; k++) {
        rec_t *r = new_rec(c);
        r->kind = O_GET;
        r->key = (uint8_t)k;
        shoal_result_t res;
        memset(&res, 0, sizeof res);
        r->t_inv = cluster_mono_ns();
        int st = shoal_get(admin, w->keys[k], strlen(w->keys[k]), false, &res);
        r->t_ret = cluster_mono_ns();
        if (st == SHOAL_STATUS_OK) {
            r->found = true;
            copy_val(r->got, res.value, res.value_len);
        }
        lin_settle(c, r, st, &res);
        unanswered += r->outcome == OUT_AMBIG;
        shoal_result_clear(&res);
    }
    return unanswered;
}

int lin_write_history(const lin_workload_t *w, const char *path, const char *meta_json)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"meta\":%s}\n", meta_json);
    for (int i = 0; i <= w->clients; i++)
        for (size_t j = 0; j < w->cs[i].n; j++) {
            const rec_t *r = &w->cs[i].recs[j];
            fprintf(f,
                    "{\"p\":%d,\"f\":\"%s\",\"k\":\"%s\",\"inv\":%" PRId64 ",\"ret\":%" PRId64
                    ",\"out\":\"%s\",\"st\":%d",
                    i, kind_name[r->kind], w->keys[r->key], r->t_inv, r->t_ret,
                    outcome_name[r->outcome], r->status);
            if (r->kind == O_PUT || r->kind == O_CAS || r->kind == O_BATCH)
                fprintf(f, ",\"v\":\"%s\"", r->val);
            if (r->kind == O_BATCH)
                fprintf(f, ",\"k2\":\"%s\",\"v2\":\"%s\"", w->keys[r->key2], r->val2);
            if (r->kind == O_CAS) {
                if (r->absent)
                    fprintf(f, ",\"exp\":null");
                else
                    fprintf(f, ",\"exp\":\"%s\"", r->exp);
            }
            if ((r->kind == O_GET && r->outcome == OUT_OK) ||
                (r->kind == O_CAS && r->outcome == OUT_CASFAIL)) {
                if (r->found)
                    fprintf(f, ",\"got\":\"%s\"", r->got);
                else
                    fprintf(f, ",\"got\":null");
            }
            fprintf(f, "}\n");
        }
    return fclose(f) == 0 ? 0 : -1;
}

void lin_free(lin_workload_t *w)
{
    if (!w->cs)
        return;
    for (int i = 0; i <= w->clients; i++)
        free(w->cs[i].recs);
    free(w->cs);
    w->cs = NULL;
}
