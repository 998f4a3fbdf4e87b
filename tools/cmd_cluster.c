/* cmd_cluster.c - `shoalctl cluster up|down|stop-node|start-node|add-node`: a local cluster
 * of shoald processes and one shoal-broker on 127.0.0.1, laid out as docs/CONTRACTS.md says:
 * configs DIR/node-I.cfg and DIR/broker.cfg, data DIR/node-I/, pid files DIR/pids/, logs
 * DIR/logs/.
 *
 * The nodes of a cluster are the DIR/node-I.cfg files: `up` writes those of the bootstrap
 * list (broker.cfg's cluster/nodes, which never changes), `add-node` writes one more with
 * node/join = 1 and registers it in the shard map. Every other sub-command goes over ids
 * 0 .. highest config and skips the ids without one.
 *
 * Ports from --base-port P (default 7000): the broker's client ROUTER on P, its XPUB on
 * P+1 and its web dashboard on P+2; node I's ROUTER on P+100+2I and its PUB on P+101+2I.
 * `up` refuses (exit 2) a port something already listens on, and counts a cluster as up
 * only once the very processes it spawned serve (a node's "serving" line, the broker's own
 * listening socket), the broker shows the shard map the nodes loaded (a cluster changed
 * since it was made) and every shard has a leader: a broker of another cluster on the same
 * port must not answer for it; it then prints what runs, not what it was made with. One of
 * them dying fails it (exit 3, its log's last line) and it stops what it started.
 *
 * Binaries: $SHOAL_BIN_DIR/<name>, else the build tree next to this shoalctl
 * (../actors/shoald, ../broker/shoal-broker), else this shoalctl's own folder (an install
 * tree), else $PATH. Processes run in their own session so they outlive shoalctl. */
#include "engine/proc.h"
#include "tools/shoalctl.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#define MAX_NODES 64

typedef struct {
    char dir[PATH_MAX];
    uint64_t nodes, shards, replicas, base_port;
    uint64_t boot_nodes; /* broker.cfg's cluster/nodes: the nodes `up` made */
    const char *fsync;
    const char *read_mode;
    bool no_balance; /* raft/balance_leaders = 0 */
    bool kill;
    bool have_nodes, have_replicas, have_shards, have_port, have_fsync, have_read_mode,
        have_balance;
    char saved_fsync[16], saved_read_mode[16]; /* read back from a cluster's config */
} cl_opts_t;

/* What one `up` started, by the pids it spawned (0: not started, or reaped: never signalled,
 * the pid may be reused), and where each node's log stood before its start. */
typedef struct {
    pid_t node[MAX_NODES];
    long log_from[MAX_NODES];
    pid_t broker;
    bool any; /* a process was spawned */
} started_t;

enum {
    OPT_DIR = OPT_FIRST_CMD,
    OPT_NODES,
    OPT_SHARDS,
    OPT_REPLICAS,
    OPT_BASE_PORT,
    OPT_KILL,
    OPT_FSYNC,
    OPT_READ_MODE,
    OPT_BALANCE
};

static int cl_opt(ctl_t *c, int opt, cl_opts_t *o)
{
    switch (opt) {
    case OPT_DIR:
        if (!*optarg || strlen(optarg) >= sizeof o->dir - 64)
            return ctl_fail(c, EXIT_USAGE, "--dir wants a folder path");
        snprintf(o->dir, sizeof o->dir, "%s", optarg);
        return -1;
    case OPT_NODES:
        o->have_nodes = true;
        return ctl_parse_u64(c, "--nodes", optarg, 1, MAX_NODES, &o->nodes) ? EXIT_USAGE : -1;
    case OPT_SHARDS:
        o->have_shards = true;
        return ctl_parse_u64(c, "--shards", optarg, 1, 4096, &o->shards) ? EXIT_USAGE : -1;
    case OPT_REPLICAS:
        o->have_replicas = true;
        return ctl_parse_u64(c, "--replicas", optarg, 1, 7, &o->replicas) ? EXIT_USAGE : -1;
    case OPT_BASE_PORT:
        o->have_port = true;
        return ctl_parse_u64(c, "--base-port", optarg, 1024, 65535 - 100 - 2 * MAX_NODES,
                             &o->base_port)
                   ? EXIT_USAGE
                   : -1;
    case OPT_KILL: o->kill = true; return -1;
    case OPT_FSYNC:
        if (strcmp(optarg, "batch") && strcmp(optarg, "always") && strcmp(optarg, "never"))
            return ctl_fail(c, EXIT_USAGE, "--fsync is batch, always or never, not '%s'", optarg);
        o->fsync = optarg;
        o->have_fsync = true;
        return -1;
    case OPT_READ_MODE:
        if (strcmp(optarg, "lease") && strcmp(optarg, "read_index"))
            return ctl_fail(c, EXIT_USAGE, "--read-mode is lease or read_index, not '%s'", optarg);
        o->read_mode = optarg;
        o->have_read_mode = true;
        return -1;
    case OPT_BALANCE:
        if (strcmp(optarg, "on") && strcmp(optarg, "off"))
            return ctl_fail(c, EXIT_USAGE, "--balance-leaders is on or off, not '%s'", optarg);
        o->no_balance = !strcmp(optarg, "off");
        o->have_balance = true;
        return -1;
    }
    return -1;
}

static int parse(ctl_t *c, int argc, char **argv, cl_opts_t *o)
{
    static const struct option opts[] = {CTL_COMMON_OPTS,
                                         {"dir", required_argument, 0, OPT_DIR},
                                         {"nodes", required_argument, 0, OPT_NODES},
                                         {"shards", required_argument, 0, OPT_SHARDS},
                                         {"replicas", required_argument, 0, OPT_REPLICAS},
                                         {"base-port", required_argument, 0, OPT_BASE_PORT},
                                         {"kill", no_argument, 0, OPT_KILL},
                                         {"fsync", required_argument, 0, OPT_FSYNC},
                                         {"read-mode", required_argument, 0, OPT_READ_MODE},
                                         {"balance-leaders", required_argument, 0, OPT_BALANCE},
                                         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int rc = opt >= OPT_FIRST_CMD ? cl_opt(c, opt, o) : ctl_common(c, opt, argc, argv);
        if (rc >= 0)
            return rc;
    }
    if (!o->dir[0])
        return ctl_fail(c, EXIT_USAGE, "--dir DIR is required");
    return -1;
}

static char *path_of(const cl_opts_t *o, const char *fmt, uint64_t i)
{
    char name[64];
    snprintf(name, sizeof name, fmt, i);
    return zsys_sprintf("%s/%s", o->dir, name);
}

static bool has_node_cfg(const cl_opts_t *o, uint64_t i)
{
    char *cfg = path_of(o, "node-%" PRIu64 ".cfg", i);
    bool has = access(cfg, F_OK) == 0;
    zstr_free(&cfg);
    return has;
}

/* The lowest and highest I with a DIR/node-I.cfg; false when there is none. */
static bool node_cfg_range(const cl_opts_t *o, uint64_t *lo, uint64_t *hi)
{
    bool any = false;
    for (uint64_t i = 0; i < MAX_NODES; i++) {
        if (!has_node_cfg(o, i))
            continue;
        if (!any)
            *lo = i;
        *hi = i;
        any = true;
    }
    return any;
}

/* Finds a binary as described at the top of this file; NULL if nowhere. */
static char *find_bin(const char *name, const char *build_sub)
{
    const char *env = getenv("SHOAL_BIN_DIR");
    if (env && *env) {
        char *p = zsys_sprintf("%s/%s", env, name);
        if (access(p, X_OK) == 0)
            return p;
        zstr_free(&p);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *dir = dirname(self);
        char *p = zsys_sprintf("%s/../%s/%s", dir, build_sub, name);
        if (access(p, X_OK) == 0)
            return p;
        zstr_free(&p);
        p = zsys_sprintf("%s/%s", dir, name);
        if (access(p, X_OK) == 0)
            return p;
        zstr_free(&p);
    }
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *p = zsys_sprintf("%s/%s", d, name);
        if (access(p, X_OK) == 0) {
            free(copy);
            return p;
        }
        zstr_free(&p);
    }
    free(copy);
    return NULL;
}

static bool alive(pid_t pid)
{
    return shoal_proc_running(pid);
}

/* Whether pid is a process this folder's cluster started: named shoald or shoal-broker (or
 * shoalctl: forked, not yet exec'd), or with a command line that names dir or a file in it
 * (a renamed binary). A pid file outlives a process that exited by itself, and that pid may
 * belong to another program since, which must not be signalled. */
static bool started_here(pid_t pid, const char *dir, size_t dir_len)
{
    char path[64], buf[4096] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    bool named =
        f && fgets(buf, sizeof buf, f) &&
        (streq(buf, "shoald\n") || streq(buf, "shoal-broker\n") || streq(buf, "shoalctl\n"));
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    if (named || !(f = fopen(path, "r")))
        return named;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, dir, dir_len) == 0 && (!buf[i + dir_len] || buf[i + dir_len] == '/'))
            return true;
    return false;
}

/* The pid in pid file DIR/pids/NAME.pid, or 0 when there is none or it is no longer a
 * process of DIR (started_here). */
static pid_t read_pid(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    const char *pids = NULL; /* the last "/pids/": DIR may hold one too */
    for (const char *p = strstr(file, "/pids/"); p; p = strstr(p + 1, "/pids/"))
        pids = p;
    if (pid > 0 && pids && !started_here((pid_t)pid, file, (size_t)(pids - file)))
        pid = 0;
    return (pid_t)pid;
}

static int write_pid(const char *file, pid_t pid)
{
    FILE *f = fopen(file, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", (int)pid);
    return fclose(f);
}

static pid_t spawn(const char *bin, const char *cfg, const char *log)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setsid();
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int nul = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    if (nul >= 0)
        dup2(nul, 0);
    execl(bin, bin, "--config", cfg, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
}

/* Sends sig to pid and waits up to ms for it to go; SIGKILL after that. */
static void stop_pid(pid_t pid, int sig, int ms)
{
    if (!alive(pid))
        return;
    kill(pid, sig);
    for (int t = 0; t < ms && alive(pid); t += 20) {
        waitpid(pid, NULL, WNOHANG);
        zclock_sleep(20);
    }
    if (alive(pid)) {
        kill(pid, SIGKILL);
        for (int t = 0; t < 2000 && alive(pid); t += 20) {
            waitpid(pid, NULL, WNOHANG);
            zclock_sleep(20);
        }
    }
}

/* The cluster section; its id makes the nodes refuse maps and peers of any other cluster
 * (a later cluster on reused ports, a node removed from this one and reused elsewhere). */
static void write_cluster_section(FILE *f, const cl_opts_t *o, uint64_t id)
{
    fprintf(f,
            "cluster\n    id = %016" PRIx64 "\n    shards = %" PRIu64 "\n    replicas = %" PRIu64
            "\n    vnodes = 64\n    nodes\n",
            id, o->shards, o->replicas);
    for (uint64_t i = 0; i < o->nodes; i++)
        fprintf(f,
                "        %" PRIu64 "\n            endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n"
                "            pub_endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n",
                i, o->base_port + 100 + 2 * i, o->base_port + 101 + 2 * i);
}

static int write_configs(ctl_t *c, const cl_opts_t *o)
{
    uint64_t id = 0;
    while (!id)
        if (getrandom(&id, sizeof id, 0) != sizeof id)
            id = (uint64_t)zclock_time() ^ ((uint64_t)getpid() << 32);
    for (uint64_t i = 0; i <= o->nodes; i++) {
        bool broker = i == o->nodes;
        char *path =
            broker ? zsys_sprintf("%s/broker.cfg", o->dir) : path_of(o, "node-%" PRIu64 ".cfg", i);
        FILE *f = fopen(path, "w");
        if (!f) {
            int rc = ctl_fail(c, EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
            zstr_free(&path);
            return rc;
        }
        fprintf(f, "# generated by shoalctl cluster up; keys in docs/OPERATIONS.md\n");
        if (broker)
            fprintf(f,
                    "broker\n    client_endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n"
                    "    pub_endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n"
                    "    http_endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n"
                    "    request_timeout_ms = 5000\n",
                    o->base_port, o->base_port + 1, o->base_port + 2);
        else
            fprintf(
                f,
                "node\n    id = %" PRIu64 "\n    endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n"
                "    pub_endpoint = \"tcp://127.0.0.1:%" PRIu64 "\"\n"
                "    data_dir = \"%s/node-%" PRIu64 "\"\n"
                "raft\n    tick_ms = 10\n    election_ticks = 50\n    heartbeat_ticks = 5\n"
                "    prevote = 1\n    check_quorum = 1\n"
                "%s"
                "    read_mode = \"%s\"\n    max_clock_drift_ms = 20\n"
                "    balance_leaders = %d\n"
                "storage\n    fsync = \"%s\"\n",
                i, o->base_port + 100 + 2 * i, o->base_port + 101 + 2 * i, o->dir, i,
                streq(o->read_mode, "lease")
                    ? "    # every node of this cluster runs on this host, on one clock, so a\n"
                      "    # leader may answer linearizable reads from its lease (no heartbeat\n"
                      "    # round per read); the drift bound is room for late timer ticks\n"
                    : "    # a leader confirms each linearizable read with a heartbeat round\n",
                o->read_mode, !o->no_balance, o->fsync);
        write_cluster_section(f, o, id);
        fclose(f);
        zstr_free(&path);
    }
    return -1;
}

static int make_dirs(ctl_t *c, cl_opts_t *o)
{
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST)
        return ctl_fail(c, EXIT_USAGE, "cannot create %s: %s", o->dir, strerror(errno));
    char real[PATH_MAX];
    if (!realpath(o->dir, real))
        return ctl_fail(c, EXIT_USAGE, "cannot resolve %s: %s", o->dir, strerror(errno));
    snprintf(o->dir, sizeof o->dir, "%s", real);
    const char *subs[] = {"pids", "logs"};
    for (int i = 0; i < 2; i++) {
        char *p = zsys_sprintf("%s/%s", o->dir, subs[i]);
        int rc = mkdir(p, 0755);
        zstr_free(&p);
        if (rc != 0 && errno != EEXIST)
            return ctl_fail(c, EXIT_USAGE, "cannot create %s/%s: %s", o->dir, subs[i],
                            strerror(errno));
    }
    for (uint64_t i = 0; i < o->nodes; i++) {
        char *p = path_of(o, "node-%" PRIu64, i);
        mkdir(p, 0755);
        zstr_free(&p);
    }
    return -1;
}

/* Starts node i; its pid in *out (if not NULL; 0 if none), even when the pid file fails. */
static int start_node(ctl_t *c, const cl_opts_t *o, const char *bin, uint64_t i, pid_t *out)
{
    char *cfg = path_of(o, "node-%" PRIu64 ".cfg", i);
    char *log = path_of(o, "logs/node-%" PRIu64 ".log", i);
    char *pidf = path_of(o, "pids/node-%" PRIu64 ".pid", i);
    pid_t pid = spawn(bin, cfg, log);
    if (out)
        *out = pid > 0 ? pid : 0;
    int rc =
        pid > 0 && write_pid(pidf, pid) == 0
            ? -1
            : ctl_fail(c, EXIT_UNAVAIL, "cannot start node %" PRIu64 ": %s", i, strerror(errno));
    zstr_free(&cfg);
    zstr_free(&log);
    zstr_free(&pidf);
    return rc;
}

static int start_broker(ctl_t *c, const cl_opts_t *o, const char *bin, pid_t *out)
{
    char *cfg = zsys_sprintf("%s/broker.cfg", o->dir);
    char *log = zsys_sprintf("%s/logs/broker.log", o->dir);
    char *pidf = zsys_sprintf("%s/pids/broker.pid", o->dir);
    pid_t pid = spawn(bin, cfg, log);
    *out = pid > 0 ? pid : 0;
    int rc = pid > 0 && write_pid(pidf, pid) == 0
                 ? -1
                 : ctl_fail(c, EXIT_UNAVAIL, "cannot start the broker: %s", strerror(errno));
    zstr_free(&cfg);
    zstr_free(&log);
    zstr_free(&pidf);
    return rc;
}

/* The last line of a log, to say why a process died. */
static void last_log_line(const char *log, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (line[0] != '\n')
            snprintf(out, cap, "%s", line);
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

/* Why a node died, from its log after byte `from` (where this start's output begins): its
 * first error line ("E: ...", e.g. "cannot start: No space left on device: ...": what
 * follows it are consequences), else the last line. A node that stops on an error logs its
 * work counters after it, so the last line alone named those, not the error. */
static void node_exit_reason(const char *log, long from, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char line[512], last[512] = "";
    if (fseek(f, from, SEEK_SET) == 0)
        while (fgets(line, sizeof line, f)) {
            if (line[0] == '\n')
                continue;
            snprintf(last, sizeof last, "%s", line);
            if (!out[0] && strncmp(line, "E: ", 3) == 0)
                snprintf(out, cap, "%s", line);
        }
    fclose(f);
    if (!out[0])
        snprintf(out, cap, "%s", last);
    out[strcspn(out, "\n")] = 0;
}

static bool node_file(const cl_opts_t *o, uint64_t i, const char *name)
{
    char *f = zsys_sprintf("%s/node-%" PRIu64 "/%s", o->dir, i, name);
    bool there = access(f, F_OK) == 0;
    zstr_free(&f);
    return there;
}

/* A process this `up` started (by the pid it spawned, not a pid file) died: name it, with
 * its last log line (exit 3); it is reaped and forgotten, so never signalled. A node removed
 * from the map while it was down learns so from the metadata group and leaves (exit 0,
 * DATA/removed): not a failure of `up`, and no longer waited for. */
static int check_children(ctl_t *c, const cl_opts_t *o, started_t *sp)
{
    for (uint64_t i = 0; i <= o->nodes; i++) { /* o->nodes <= MAX_NODES */
        bool broker = i == o->nodes;
        pid_t *pid = broker ? &sp->broker : &sp->node[i];
        int st = 0;
        if (*pid <= 0)
            continue;
        pid_t r = waitpid(*pid, &st, WNOHANG);
        if (r == 0 || (r < 0 && alive(*pid)))
            continue;
        bool clean = r == *pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        *pid = 0;
        if (!broker && clean && node_file(o, i, "removed")) {
            fprintf(stderr,
                    "shoalctl cluster up: node %" PRIu64 " left: it was removed from the cluster\n",
                    i);
            char *gone = path_of(o, "pids/node-%" PRIu64 ".pid", i);
            unlink(gone);
            zstr_free(&gone);
            continue;
        }
        char *log = broker ? zsys_sprintf("%s/logs/broker.log", o->dir)
                           : path_of(o, "logs/node-%" PRIu64 ".log", i);
        char why[512];
        if (broker)
            last_log_line(log, why, sizeof why);
        else
            node_exit_reason(log, sp->log_from[i], why, sizeof why);
        char who[32];
        snprintf(who, sizeof who, broker ? "the broker" : "node %" PRIu64, i);
        int rc = ctl_fail(c, EXIT_UNAVAIL, "%s exited during start-up (%s): %s", who, log,
                          why[0] ? why : "no log output");
        zstr_free(&log);
        return rc;
    }
    return -1;
}

static char *broker_ep(const cl_opts_t *o)
{
    return zsys_sprintf("tcp://127.0.0.1:%" PRIu64, o->base_port);
}

/* The settings `up` wrote into every node's config, read back from the lowest node's
 * (for a restart to compare with what it was asked). */
static void load_settings(cl_opts_t *o)
{
    uint64_t lo = 0, hi = 0;
    node_cfg_range(o, &lo, &hi);
    char *path = path_of(o, "node-%" PRIu64 ".cfg", lo);
    zconfig_t *cfg = zconfig_load(path);
    zstr_free(&path);
    snprintf(o->saved_fsync, sizeof o->saved_fsync, "%s",
             cfg ? zconfig_get(cfg, "storage/fsync", "batch") : "batch");
    snprintf(o->saved_read_mode, sizeof o->saved_read_mode, "%s",
             cfg ? zconfig_get(cfg, "raft/read_mode", "read_index") : "read_index");
    o->fsync = o->saved_fsync;
    o->read_mode = o->saved_read_mode;
    o->no_balance = cfg && !strcmp(zconfig_get(cfg, "raft/balance_leaders", "1"), "0");
    zconfig_destroy(&cfg);
}

/* Reads back the generated broker config: the cluster's shape and ports. */
static int load_layout(ctl_t *c, cl_opts_t *o)
{
    char real[PATH_MAX];
    if (!realpath(o->dir, real))
        return ctl_fail(c, EXIT_USAGE, "no cluster in %s: %s", o->dir, strerror(errno));
    snprintf(o->dir, sizeof o->dir, "%s", real);
    char *path = zsys_sprintf("%s/broker.cfg", o->dir);
    zconfig_t *cfg = zconfig_load(path);
    zstr_free(&path);
    if (!cfg)
        return ctl_fail(c, EXIT_USAGE, "no cluster in %s (no readable broker.cfg)", o->dir);
    const char *ep = zconfig_get(cfg, "broker/client_endpoint", "");
    const char *colon = strrchr(ep, ':');
    o->base_port = colon ? strtoull(colon + 1, NULL, 10) : 0;
    o->shards = strtoull(zconfig_get(cfg, "cluster/shards", "0"), NULL, 10);
    o->replicas = strtoull(zconfig_get(cfg, "cluster/replicas", "0"), NULL, 10);
    o->nodes = 0;
    zconfig_t *nodes = zconfig_locate(cfg, "cluster/nodes");
    for (zconfig_t *n = nodes ? zconfig_child(nodes) : NULL; n; n = zconfig_next(n))
        o->nodes++;
    o->boot_nodes = o->nodes;
    zconfig_destroy(&cfg);
    if (!o->base_port || !o->nodes)
        return ctl_fail(c, EXIT_USAGE, "%s/broker.cfg is not a shoalctl cluster config", o->dir);
    /* and the nodes added since (add-node): ids up to the highest node-I.cfg */
    uint64_t lo = 0, hi = 0;
    if (node_cfg_range(o, &lo, &hi) && hi + 1 > o->nodes)
        o->nodes = hi + 1;
    if (o->nodes > MAX_NODES)
        o->nodes = MAX_NODES;
    return -1;
}

static long node_log_size(const cl_opts_t *o, uint64_t id);
static bool node_serving(const cl_opts_t *o, uint64_t id, long from);
static uint64_t node_map_version(const cl_opts_t *o, uint64_t id, long from);

/* Whether process pid listens on TCP port `port`: a LISTEN socket of /proc/net/tcp whose
 * inode is one of pid's fds. An answer on the port does not say whose it is (a cluster
 * already there answers for one whose broker could not bind); this does. Without /proc
 * there is no telling: true. */
static bool listens_on(pid_t pid, uint64_t port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return true;
    unsigned long inodes[8];
    size_t n = 0;
    char line[512];
    while (n < 8 && fgets(line, sizeof line, f)) {
        unsigned lport, state;
        unsigned long inode;
        /* sl: local rem st tx:rx tr:when retrnsmt uid timeout inode (the header fails) */
        if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport, &state,
                   &inode) == 3 &&
            lport == port && state == 0x0A)
            inodes[n++] = inode;
    }
    fclose(f);
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%d/fd", (int)pid);
    DIR *d = n ? opendir(fds) : NULL;
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char link[sizeof fds + sizeof e->d_name], to[64];
        snprintf(link, sizeof link, "%s/%s", fds, e->d_name);
        ssize_t len = readlink(link, to, sizeof to - 1);
        unsigned long ino;
        if (len <= 0)
            continue;
        to[len] = 0;
        if (sscanf(to, "socket:[%lu]", &ino) == 1)
            for (size_t k = 0; k < n; k++)
                found = found || ino == inodes[k];
    }
    if (d)
        closedir(d);
    return found;
}

/* Whether every process this `up` started has shown that it bound its ports: each node
 * logged "serving" since its start, the broker listens on the client port. Else a line
 * in why saying who is not there yet. */
static bool started_serving(const cl_opts_t *o, const started_t *sp, char *why, size_t cap)
{
    for (uint64_t i = 0; i < o->nodes; i++)
        if (sp->node[i] > 0 && !node_serving(o, i, sp->log_from[i])) {
            snprintf(why, cap, "node %" PRIu64 " not serving yet", i);
            return false;
        }
    if (sp->broker > 0 && !listens_on(sp->broker, o->base_port)) {
        snprintf(why, cap, "the broker not listening on port %" PRIu64 " yet", o->base_port);
        return false;
    }
    return true;
}

/* The running cluster as the broker's status showed it when `up` found it ready: what `up`
 * prints, which for a cluster started again is not what it was made with (add-node,
 * remove-node, add-shard changed it since). */
typedef struct {
    uint64_t map_version;
    size_t nodes, shards;
    size_t replicas_lo, replicas_hi; /* replicas per shard, fewest and most */
} running_t;

static void note_running(running_t *run, const shoal_cluster_t *cl)
{
    run->map_version = cl->map_version;
    run->nodes = cl->n_nodes;
    run->shards = cl->n_shards;
    run->replicas_lo = run->replicas_hi = cl->n_shards ? cl->shards[0].n_replicas : 0;
    for (size_t i = 1; i < cl->n_shards; i++) {
        size_t r = cl->shards[i].n_replicas;
        run->replicas_lo = r < run->replicas_lo ? r : run->replicas_lo;
        run->replicas_hi = r > run->replicas_hi ? r : run->replicas_hi;
    }
}

/* Waits until the processes this `up` started serve (started_serving), the broker answers
 * and every shard has a leader; fails (exit 3) as soon as one of those processes dies,
 * before and after the wait. The broker starts from the bootstrap map of broker.cfg
 * (version 1) and takes the nodes' own from its next map poll: a cluster started again
 * after add-node or add-shard is ready only once the broker shows the map its nodes loaded
 * (node_map_version), else "every shard has a leader" would count the shards it was made
 * with. And until the broker heard every group's state from a replica (a status poll
 * answer or a progress event, each with that replica's indexes: a commit index above 0,
 * which every group has from its bootstrap or base on): a leader is known from its
 * election event, which carries no index, so a status right after an `up` that waited
 * only for leaders showed APPLIED 0 (and COMMIT 0) until the broker's next poll, up to
 * broker/poll_ms later. On success *run holds the cluster then shown. */
static int wait_ready(ctl_t *c, const cl_opts_t *o, started_t *sp, int timeout_ms, running_t *run)
{
    char *ep = broker_ep(o);
    shoal_t *s = shoal_connect(ep);
    zstr_free(&ep);
    if (!s)
        return ctl_fail(c, EXIT_UNAVAIL, "cannot connect to the broker");
    shoal_set_timeout(s, 1000);
    int64_t deadline = zclock_mono() + timeout_ms;
    char err[256] = "broker not answering";
    int rc = EXIT_UNAVAIL;
    size_t led = 0, total = o->shards;
    while (zclock_mono() < deadline && !zsys_interrupted) {
        int dead = check_children(c, o, sp);
        if (dead >= 0) {
            shoal_destroy(&s);
            return dead;
        }
        shoal_cluster_t cl;
        if (started_serving(o, sp, err, sizeof err) &&
            shoal_status(s, false, &cl, err, sizeof err) == SHOAL_STATUS_OK) {
            led = 0;
            total = cl.n_shards;
            size_t heard = cl.has_meta && cl.meta.commit_index == 0 ? 0 : 1;
            for (size_t i = 0; i < cl.n_shards; i++) {
                led += cl.shards[i].leader >= 0;
                heard += cl.shards[i].commit_index > 0;
            }
            note_running(run, &cl);
            shoal_cluster_clear(&cl);
            uint64_t loaded = 0; /* all serve: each logged the map it loaded before */
            for (uint64_t i = 0; i < o->nodes; i++) {
                uint64_t v = sp->node[i] > 0 ? node_map_version(o, i, sp->log_from[i]) : 0;
                loaded = v > loaded ? v : loaded;
            }
            if (run->map_version < loaded)
                snprintf(err, sizeof err,
                         "the broker shows shard map v%" PRIu64 ", the nodes hold v%" PRIu64,
                         run->map_version, loaded);
            else if (total && led == total && heard == total + 1) {
                rc = -1;
                break;
            } else if (led < total || !total)
                snprintf(err, sizeof err, "%zu of %zu shards have a leader", led, total);
            else
                snprintf(err, sizeof err,
                         "the broker has heard the state of %zu of %zu groups (shards and "
                         "the metadata group)",
                         heard, total + 1);
        }
        zclock_sleep(100);
    }
    shoal_destroy(&s);
    if (rc >= 0)
        return ctl_fail(c, rc, "cluster not ready within %d ms: %s (logs in %s/logs)", timeout_ms,
                        err, o->dir);
    return check_children(c, o, sp); /* and still there now that it is ready */
}

/* Stops the broker first (clients get UNAVAILABLE, not half answers), then all nodes at
 * once, and removes their pid files. */
static void stop_all(const cl_opts_t *o)
{
    char *pidf = zsys_sprintf("%s/pids/broker.pid", o->dir);
    pid_t bp = read_pid(pidf);
    stop_pid(bp, SIGTERM, 5000);
    unlink(pidf);
    zstr_free(&pidf);
    pid_t pids[MAX_NODES] = {0};
    for (uint64_t i = 0; i < o->nodes && i < MAX_NODES; i++) {
        pidf = path_of(o, "pids/node-%" PRIu64 ".pid", i);
        pids[i] = read_pid(pidf);
        if (alive(pids[i]))
            kill(pids[i], SIGTERM);
        zstr_free(&pidf);
    }
    for (uint64_t i = 0; i < o->nodes && i < MAX_NODES; i++) {
        stop_pid(pids[i], SIGTERM, 10000);
        pidf = path_of(o, "pids/node-%" PRIu64 ".pid", i);
        unlink(pidf);
        zstr_free(&pidf);
    }
}

/* Stops what this `up` started, by the pids it spawned (the broker first, then the nodes
 * at once), and removes the pid files: none is left claiming a process (check_not_running
 * found none of this folder's alive before). */
static void stop_started(const cl_opts_t *o, started_t *sp)
{
    stop_pid(sp->broker, SIGTERM, 5000);
    for (uint64_t i = 0; i < o->nodes; i++)
        if (alive(sp->node[i]))
            kill(sp->node[i], SIGTERM);
    for (uint64_t i = 0; i < o->nodes; i++)
        stop_pid(sp->node[i], SIGTERM, 10000);
    for (uint64_t i = 0; i <= o->nodes; i++) {
        char *pidf = i == o->nodes ? zsys_sprintf("%s/pids/broker.pid", o->dir)
                                   : path_of(o, "pids/node-%" PRIu64 ".pid", i);
        unlink(pidf);
        zstr_free(&pidf);
    }
}

/* Whether nothing listens on 127.0.0.1:port. With SO_REUSEADDR, as ZeroMQ binds: the
 * TIME_WAIT of a cluster just stopped does not count, a listener does. */
static bool port_free(uint64_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* no telling: the process that fails to bind will say */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 || errno != EADDRINUSE;
    close(fd);
    return ok;
}

/* Why node i of an existing cluster stays stopped on `up`, or NULL if it starts: started
 * empty, a bootstrap node would make up a fresh store of its own; a node removed from the
 * map marks its folder, and shoald refuses to start it. */
static const char *stays_stopped(const cl_opts_t *o, uint64_t i)
{
    return !node_file(o, i, "node.id")  ? "holds no data"
           : node_file(o, i, "removed") ? "was removed from the cluster"
                                        : NULL;
}

/* Refuses (exit 2, before anything starts) a port of the processes `up` would start that
 * something already listens on: they would die unable to bind it, and a broker already
 * there would answer for this cluster. again: an existing cluster (nodes with a config
 * that start). */
static int check_ports(ctl_t *c, const cl_opts_t *o, bool again)
{
    static const char *broker_port[] = {"client", "pub", "dashboard"};
    char what[64] = "";
    uint64_t port = 0;
    for (uint64_t k = 0; !what[0] && k < 3; k++)
        if (!port_free(port = o->base_port + k))
            snprintf(what, sizeof what, "the broker's %s port", broker_port[k]);
    for (uint64_t i = 0; !what[0] && i < o->nodes; i++) {
        if (again && (!has_node_cfg(o, i) || stays_stopped(o, i)))
            continue;
        for (uint64_t k = 0; !what[0] && k < 2; k++)
            if (!port_free(port = o->base_port + 100 + 2 * i + k))
                snprintf(what, sizeof what, "node %" PRIu64 "'s %s port", i, k ? "pub" : "router");
    }
    if (!what[0])
        return -1;
    return ctl_fail(c, EXIT_USAGE,
                    "port %" PRIu64 " (%s) on 127.0.0.1 is already in use: another cluster or "
                    "program listens there; nothing started (%s)",
                    port, what, again ? "stop it first" : "choose another --base-port");
}

/* An option of `up` that differs from the cluster already in the folder: exit 2 naming
 * it, since a running store cannot be re-shaped by regenerating its configs. */
static int same_shape(ctl_t *c, const cl_opts_t *asked, const cl_opts_t *o)
{
    char what[96] = "";
    if (asked->have_nodes && asked->nodes != o->boot_nodes)
        snprintf(what, sizeof what, "--nodes %" PRIu64 " (it was made with %" PRIu64 ")",
                 asked->nodes, o->boot_nodes);
    else if (asked->have_shards && asked->shards != o->shards)
        snprintf(what, sizeof what, "--shards %" PRIu64 " (it was made with %" PRIu64 ")",
                 asked->shards, o->shards);
    else if (asked->have_replicas && asked->replicas != o->replicas)
        snprintf(what, sizeof what, "--replicas %" PRIu64 " (it was made with %" PRIu64 ")",
                 asked->replicas, o->replicas);
    else if (asked->have_port && asked->base_port != o->base_port)
        snprintf(what, sizeof what, "--base-port %" PRIu64 " (it uses %" PRIu64 ")",
                 asked->base_port, o->base_port);
    else if (asked->have_fsync && strcmp(asked->fsync, o->fsync))
        snprintf(what, sizeof what, "--fsync %s (it has %s)", asked->fsync, o->fsync);
    else if (asked->have_read_mode && strcmp(asked->read_mode, o->read_mode))
        snprintf(what, sizeof what, "--read-mode %s (it has %s)", asked->read_mode, o->read_mode);
    else if (asked->have_balance && asked->no_balance != o->no_balance)
        snprintf(what, sizeof what, "--balance-leaders %s (it has %s)",
                 asked->no_balance ? "off" : "on", o->no_balance ? "off" : "on");
    if (!what[0])
        return -1;
    return ctl_fail(c, EXIT_USAGE,
                    "%s already holds a cluster that differs in %s; `cluster up --dir %s` "
                    "restarts it as it is, another shape needs another --dir",
                    o->dir, what, o->dir);
}

/* Starts node i, noting its pid and where its log stood in *sp. */
static int start_tracked(ctl_t *c, const cl_opts_t *o, const char *bin, uint64_t i, started_t *sp)
{
    sp->log_from[i] = node_log_size(o, i);
    int rc = start_node(c, o, bin, i, &sp->node[i]);
    sp->any = sp->any || sp->node[i] > 0;
    return rc;
}

/* Starts every node of the existing cluster in o->dir, the added ones too, except those
 * that stay stopped (stays_stopped: a node whose data folder is gone, a removed one). */
static int restart_nodes(ctl_t *c, const cl_opts_t *o, const char *bin, started_t *sp)
{
    int rc = -1;
    for (uint64_t i = 0; rc < 0 && i < o->nodes; i++) {
        if (!has_node_cfg(o, i))
            continue;
        const char *why = stays_stopped(o, i);
        if (!why)
            rc = start_tracked(c, o, bin, i, sp);
        else
            fprintf(stderr,
                    "shoalctl cluster up: node %" PRIu64 " left stopped: %s/node-%" PRIu64 " %s\n",
                    i, o->dir, i, why);
    }
    return rc;
}

/* A fresh cluster: configs from the options, data folders, every node started. */
static int start_fresh(ctl_t *c, cl_opts_t *o, const char *bin, started_t *sp)
{
    int rc = make_dirs(c, o);
    if (rc < 0)
        rc = write_configs(c, o);
    for (uint64_t i = 0; rc < 0 && i < o->nodes; i++)
        rc = start_tracked(c, o, bin, i, sp);
    return rc;
}

/* Refuses to start over processes of this folder that still run. */
static int check_not_running(ctl_t *c, const cl_opts_t *o)
{
    char *pidf = zsys_sprintf("%s/pids/broker.pid", o->dir);
    int rc = -1;
    if (alive(read_pid(pidf)))
        rc = ctl_fail(c, EXIT_USAGE,
                      "a cluster is already running in %s (shoalctl cluster down --dir %s)", o->dir,
                      o->dir);
    zstr_free(&pidf);
    for (uint64_t i = 0; rc < 0 && i < MAX_NODES; i++) { /* added nodes too */
        pidf = path_of(o, "pids/node-%" PRIu64 ".pid", i);
        if (alive(read_pid(pidf)))
            rc = ctl_fail(c, EXIT_USAGE, "node %" PRIu64 " is already running in %s", i, o->dir);
        zstr_free(&pidf);
    }
    return rc;
}

enum { MADE_DIR = 1, MADE_LOCK = 2 };
static int lock_dir(ctl_t *c, const cl_opts_t *o, bool make, int *made);

/* `cluster up`. What can refuse it without looking into the folder (arguments, --replicas,
 * the binaries, the ports of a new cluster) is checked before the folder and its lock are
 * made, and a refused `up` takes back what it made: it leaves no trace. A process it
 * started that dies (or a cluster not ready in time) fails it, and it stops what it
 * started. */
static int cluster_up(ctl_t *c, cl_opts_t *o, int nargs)
{
    int rc = ctl_want_args(c, nargs, 0, 0);
    if (rc >= 0)
        return rc;
    if (!o->have_replicas)
        o->replicas = o->nodes < 3 ? o->nodes : 3;
    if (o->replicas > o->nodes)
        return ctl_fail(c, EXIT_USAGE,
                        "--replicas %" PRIu64 " needs at least as many nodes, "
                        "not %" PRIu64,
                        o->replicas, o->nodes);
    if (c->dry_run)
        return EXIT_OK;
    char *shoald = find_bin("shoald", "actors");
    char *broker = find_bin("shoal-broker", "broker");
    if (!shoald || !broker) {
        zstr_free(&shoald);
        zstr_free(&broker);
        return ctl_fail(c, EXIT_UNAVAIL, "cannot find %s (build it, or set SHOAL_BIN_DIR)",
                        !shoald ? "shoald" : "shoal-broker");
    }
    char *bcfg = zsys_sprintf("%s/broker.cfg", o->dir);
    int made = 0;
    if (access(bcfg, F_OK) != 0) /* a new cluster: its ports before its folder */
        rc = check_ports(c, o, false);
    if (rc < 0)
        rc = lock_dir(c, o, true, &made);
    bool again = access(bcfg, F_OK) == 0; /* under the lock */
    zstr_free(&bcfg);
    cl_opts_t asked = *o;
    if (rc < 0 && again)
        rc = load_layout(c, o);
    if (rc < 0)
        rc = check_not_running(c, o);
    if (rc < 0 && again) {
        load_settings(o);
        rc = same_shape(c, &asked, o);
    }
    if (rc < 0)
        rc = check_ports(c, o, again);
    bool started = rc < 0;
    started_t sp = {.broker = 0};
    if (rc < 0)
        rc = again ? restart_nodes(c, o, shoald, &sp) : start_fresh(c, o, shoald, &sp);
    if (rc < 0) {
        rc = start_broker(c, o, broker, &sp.broker);
        sp.any = sp.any || sp.broker > 0;
    }
    zstr_free(&shoald);
    zstr_free(&broker);
    running_t run = {0};
    if (rc < 0)
        rc = wait_ready(c, o, &sp, c->timeout_set ? c->timeout_ms : 60000, &run);
    if (rc >= 0 && started) /* nothing left running that the caller would have to find */
        stop_started(o, &sp);
    if (rc >= 0 && !sp.any) { /* refused: take back the lock and folder it made */
        char *lock = zsys_sprintf("%s/.lock", o->dir);
        if (made & MADE_LOCK) /* one that waited on it now holds a lock nobody else sees; */
            unlink(lock);     /* but it was made moments ago, for a folder without a cluster */
        if (made & MADE_DIR)
            rmdir(o->dir); /* only if it stayed empty */
        zstr_free(&lock);
    }
    if (rc >= 0)
        return rc;
    /* what runs now (the broker's status), not what the folder was made with */
    char *ep = broker_ep(o);
    char replicas[48];
    if (run.replicas_lo == run.replicas_hi)
        snprintf(replicas, sizeof replicas, "%zu", run.replicas_hi);
    else
        snprintf(replicas, sizeof replicas, "%zu-%zu", run.replicas_lo, run.replicas_hi);
    if (c->json) {
        printf("{\"broker\":\"%s\",\"pub\":\"tcp://127.0.0.1:%" PRIu64 "\",\"nodes\":%zu"
               ",\"shards\":%zu,\"replicas\":%zu,\"map_version\":%" PRIu64 ",\"dir\":",
               ep, o->base_port + 1, run.nodes, run.shards, run.replicas_hi, run.map_version);
        ctl_json_str(stdout, o->dir, strlen(o->dir));
        printf("}\n");
    } else {
        printf("cluster of %zu nodes, %zu shards x %s replicas (shard map v%" PRIu64
               ") is up%s in %s\ndashboard: http://127.0.0.1:%" PRIu64 "/\n%s\n",
               run.nodes, run.shards, replicas, run.map_version, again ? " again" : "", o->dir,
               o->base_port + 2, ep);
    }
    zstr_free(&ep);
    return EXIT_OK;
}

static int cluster_down(ctl_t *c, cl_opts_t *o)
{
    if (c->dry_run)
        return EXIT_OK;
    int rc = load_layout(c, o);
    if (rc >= 0)
        return rc;
    stop_all(o);
    if (c->json)
        printf("{\"status\":\"ok\"}\n");
    else
        printf("cluster in %s stopped\n", o->dir);
    return EXIT_OK;
}

static int node_arg(ctl_t *c, cl_opts_t *o, int argc, char **argv, uint64_t *id)
{
    int rc = ctl_want_args(c, argc - optind, 1, 1);
    if (rc >= 0)
        return rc;
    if (c->dry_run) /* the node number is checked against the cluster's size: not here */
        return ctl_parse_u64(c, "node number", argv[optind], 0, 63, id) ? EXIT_USAGE : EXIT_OK;
    if ((rc = load_layout(c, o)) >= 0)
        return rc;
    if (ctl_parse_u64(c, "node number", argv[optind], 0, o->nodes - 1, id))
        return EXIT_USAGE;
    if (!has_node_cfg(o, *id))
        return ctl_fail(c, EXIT_USAGE, "no node %" PRIu64 " in %s (no node-%" PRIu64 ".cfg)", *id,
                        o->dir, *id);
    return -1;
}

/* `stop-node broker` / `start-node broker` name the broker alone (it holds no state that
 * matters, so it may be stopped and started at any time). */
static bool names_broker(int argc, char **argv)
{
    return argc - optind == 1 && strcmp(argv[optind], "broker") == 0;
}

/* Stops the process of pid file pidf (taken away) and says so: "node 3 stopped". name is
 * the text one ("node 3", "broker"), json_key its JSON member ("\"node\":3"). */
static int stop_by_pidfile(ctl_t *c, const cl_opts_t *o, char *pidf, const char *name,
                           const char *json_key)
{
    pid_t pid = read_pid(pidf);
    bool was = alive(pid);
    stop_pid(pid, o->kill ? SIGKILL : SIGTERM, 10000);
    unlink(pidf);
    zstr_free(&pidf);
    if (c->json)
        printf("{%s,\"was_running\":%s}\n", json_key, was ? "true" : "false");
    else
        printf("%s %s\n", name, was ? (o->kill ? "killed" : "stopped") : "was not running");
    return EXIT_OK;
}

static int start_broker_only(ctl_t *c, cl_opts_t *o)
{
    char *pidf = zsys_sprintf("%s/pids/broker.pid", o->dir);
    bool running = alive(read_pid(pidf));
    zstr_free(&pidf);
    if (running) {
        printf("the broker is already running\n");
        return EXIT_OK;
    }
    char *bin = find_bin("shoal-broker", "broker");
    if (!bin)
        return ctl_fail(c, EXIT_UNAVAIL,
                        "cannot find shoal-broker (build it, or set SHOAL_BIN_DIR)");
    pid_t pid = 0;
    int rc = start_broker(c, o, bin, &pid);
    zstr_free(&bin);
    if (rc >= 0)
        return rc;
    int64_t deadline = zclock_mono() + (c->timeout_set ? c->timeout_ms : 60000);
    while (!listens_on(pid, o->base_port)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid || zclock_mono() >= deadline) {
            char *log = zsys_sprintf("%s/logs/broker.log", o->dir);
            char why[512];
            last_log_line(log, why, sizeof why);
            rc = ctl_fail(c, EXIT_UNAVAIL, "the broker did not start (%s): %s", log,
                          why[0] ? why : "no log output");
            zstr_free(&log);
            return rc;
        }
        zclock_sleep(50);
    }
    if (c->json)
        printf("{\"broker\":true,\"pid\":%d}\n", (int)pid);
    else
        printf("broker started (pid %d)\n", (int)pid);
    return EXIT_OK;
}

static int stop_node(ctl_t *c, cl_opts_t *o, int argc, char **argv)
{
    int rc = -1;
    if (names_broker(argc, argv) && (c->dry_run || (rc = load_layout(c, o)) >= 0))
        return c->dry_run ? EXIT_OK : rc;
    if (names_broker(argc, argv))
        return stop_by_pidfile(c, o, zsys_sprintf("%s/pids/broker.pid", o->dir), "broker",
                               "\"broker\":true");
    uint64_t id;
    if ((rc = node_arg(c, o, argc, argv, &id)) >= 0)
        return rc;
    char name[32], key[40];
    snprintf(name, sizeof name, "node %" PRIu64, id);
    snprintf(key, sizeof key, "\"node\":%" PRIu64, id);
    return stop_by_pidfile(c, o, path_of(o, "pids/node-%" PRIu64 ".pid", id), name, key);
}

/* True if pid, a child of this process, has exited (and reaps it). */
static bool exited(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == pid;
}

/* Node id's process ended: says so with the error its log shows since byte `from` (exit 3).
 * how: "during start-up", "". */
static int node_exited(ctl_t *c, const cl_opts_t *o, uint64_t id, long from, const char *how)
{
    char *log = path_of(o, "logs/node-%" PRIu64 ".log", id);
    char why[512];
    node_exit_reason(log, from, why, sizeof why);
    int rc = ctl_fail(c, EXIT_UNAVAIL, "node %" PRIu64 " exited%s%s (%s): %s", id, *how ? " " : "",
                      how, log, why[0] ? why : "no log output");
    zstr_free(&log);
    return rc;
}

static long node_log_size(const cl_opts_t *o, uint64_t id)
{
    char *log = path_of(o, "logs/node-%" PRIu64 ".log", id);
    struct stat sb;
    long size = stat(log, &sb) == 0 ? (long)sb.st_size : 0;
    zstr_free(&log);
    return size;
}

/* Whether node id's log, from byte `from` on, has the line the node writes once it
 * serves (node_actor: "node N: serving K replicas on ..."). */
static bool node_serving(const cl_opts_t *o, uint64_t id, long from)
{
    char *log = path_of(o, "logs/node-%" PRIu64 ".log", id);
    FILE *f = fopen(log, "r");
    zstr_free(&log);
    if (!f)
        return false;
    char line[512], want[64];
    snprintf(want, sizeof want, "node %" PRIu64 ": serving ", id);
    bool found = false;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!found && fgets(line, sizeof line, f))
            found = strstr(line, want) != NULL;
    fclose(f);
    return found;
}

/* The shard map version node id loaded from its data folder at its start, as its log from
 * byte `from` on says (placement_init: "node N: shard map version V from DIR/shardmap"); 0
 * when none is logged: a node that never stored one starts from the bootstrap map. */
static uint64_t node_map_version(const cl_opts_t *o, uint64_t id, long from)
{
    char *log = path_of(o, "logs/node-%" PRIu64 ".log", id);
    FILE *f = fopen(log, "r");
    zstr_free(&log);
    if (!f)
        return 0;
    char line[512], want[64];
    snprintf(want, sizeof want, "node %" PRIu64 ": shard map version ", id);
    size_t wlen = strlen(want);
    uint64_t version = 0;
    if (fseek(f, from, SEEK_SET) == 0)
        while (fgets(line, sizeof line, f)) {
            const char *at = strstr(line, want);
            uint64_t v;
            char src[8];
            if (at && sscanf(at + wlen, "%" SCNu64 " %7s", &v, src) == 2 && !strcmp(src, "from"))
                version = v > version ? v : version;
        }
    fclose(f);
    return version;
}

/* Group g of the broker's status (the metadata group: its own row); NULL if absent. */
static const shoal_shard_status_t *status_group(const shoal_cluster_t *cl, uint32_t g)
{
    if (g == SHOAL_META_SHARD)
        return cl->has_meta ? &cl->meta : NULL;
    for (size_t i = 0; i < cl->n_shards; i++)
        if (cl->shards[i].id == g)
            return &cl->shards[i];
    return NULL;
}

/* Node id's match index in group s as its leader reported it; -1 if id is no replica. */
static int64_t node_match(const shoal_shard_status_t *s, uint64_t id)
{
    for (size_t k = 0; k < s->n_replicas && k < 16; k++)
        if (s->replicas[k] == id)
            return (int64_t)s->match_index[k];
    return -1;
}

/* Whether group s has a leader on a node the broker sees up. A leader it still names on a
 * node it sees down (its last hint) leads nothing: waiting for that commit index lasted
 * until the deadline (every node of the cluster killed, then started one by one); a group
 * whose leader goes down during the wait stops counting too. */
static bool led_from_up_node(const shoal_cluster_t *cl, const shoal_shard_status_t *s)
{
    for (size_t j = 0; s->leader >= 0 && j < cl->n_nodes; j++)
        if ((int64_t)cl->nodes[j].id == s->leader)
            return cl->nodes[j].up;
    return false;
}

#define CAUGHT_UP_GRACE_MS 500 /* still alive this long after catching up */
#define CAUGHT_UP_GROUPS 1024  /* groups waited for, at most */

/* Node id logged "serving": waits, as `up` waits for a cluster to be ready, until the
 * broker's status shows it up and caught up, so that a node that cannot write (a full
 * disk) dies while start-node still watches it, not after it said "started". Caught up:
 * in every group that lists it as a replica and had a leader when the wait began, its
 * match index (its log, synced, as the leader reports it) reached the group's commit
 * index of then; it applies those entries to its engine as soon as it learns they are
 * committed, which the grace after covers. A group whose leader reports match 0 (it has not
 * heard of the node since it started) is not waited for. Groups without a leader, or with one on
 * a node the broker sees down (the first node of a stopped cluster to start), are not waited for,
 * nor a node the map does not list yet (a joining node before add-node registers it: register_node
 * waits for it to be up), and without a running broker there is no status to compare with: serving
 * and the grace are all it can tell. -1 when caught up (or still catching up at deadline: a note
 * says so), else the exit code of the failure.
 */
static int wait_caught_up(ctl_t *c, const cl_opts_t *o, uint64_t id, long log_from, pid_t pid,
                          int64_t deadline)
{
    char *pidf = zsys_sprintf("%s/pids/broker.pid", o->dir);
    bool broker = alive(read_pid(pidf));
    zstr_free(&pidf);
    char *bep = broker_ep(o);
    shoal_t *b = broker ? shoal_connect(bep) : NULL;
    zstr_free(&bep);
    if (b)
        shoal_set_timeout(b, 1000);
    uint64_t want[CAUGHT_UP_GROUPS]; /* per group waited for: the commit index to reach */
    uint32_t gid[CAUGHT_UP_GROUPS];
    size_t n_want = 0;
    bool begun = false, caught = !b, dead = false; /* exited() reaps: asked once each time */
    char err[256], behind[160] = "the broker's status not answered";
    while (!caught && !(dead = exited(pid)) && zclock_mono() < deadline && !zsys_interrupted) {
        shoal_cluster_t cl;
        if (shoal_status(b, false, &cl, err, sizeof err) == SHOAL_STATUS_OK) {
            for (size_t i = 0; !begun && i <= cl.n_shards && n_want < CAUGHT_UP_GROUPS; i++) {
                const shoal_shard_status_t *s = i < cl.n_shards ? &cl.shards[i]
                                                : cl.has_meta   ? &cl.meta
                                                                : NULL;
                if (s && led_from_up_node(&cl, s) && node_match(s, id) >= 0) {
                    gid[n_want] = s->id;
                    want[n_want++] = s->commit_index;
                }
            }
            begun = true;
            bool up = false, listed = false; /* a joining node is listed once registered */
            for (size_t i = 0; i < cl.n_nodes; i++) {
                listed |= cl.nodes[i].id == id;
                up |= cl.nodes[i].id == id && cl.nodes[i].up;
            }
            caught = up || !listed;
            if (!up)
                snprintf(behind, sizeof behind, "the broker does not see it up yet");
            for (size_t k = 0; caught && k < n_want; k++) {
                const shoal_shard_status_t *s = status_group(&cl, gid[k]);
                int64_t m = s ? node_match(s, id) : -1;
                /* a group it left no longer counts, nor one whose leader has not heard of it
                 * since the leader's start (match 0): an idle group's leader sends nothing
                 * until its next write, so that wait never ended (60 s in cluster_split) */
                if (m > 0 && (uint64_t)m < want[k] && led_from_up_node(&cl, s)) {
                    caught = false;
                    snprintf(behind, sizeof behind, "group %" PRIu32 " at %" PRId64 " of %" PRIu64,
                             gid[k], m, want[k]);
                }
            }
            shoal_cluster_clear(&cl);
        }
        if (!caught)
            zclock_sleep(100);
    }
    shoal_destroy(&b);
    for (int64_t until = zclock_mono() + CAUGHT_UP_GRACE_MS; !dead && zclock_mono() < until;) {
        zclock_sleep(50);
        dead = exited(pid);
    }
    if (dead || exited(pid))
        return node_exited(c, o, id, log_from, "during start-up");
    if (!caught)
        fprintf(stderr,
                "shoalctl cluster: node %" PRIu64 " serves but is still catching up (%s; see "
                "logs/node-%" PRIu64 ".log)\n",
                id, behind, id);
    return -1;
}

/* Node id was just started, its log then `log_from` bytes long: waits until it serves and
 * has caught up (wait_caught_up), and fails (exit 3, with the error its log shows) if it
 * exits first (a bad config, a removed node, a full disk: a loaded host can take seconds to
 * get there). -1 and its pid in *pid when it serves, or still starts after the timeout (a
 * long log replay; a note says so). */
static int check_started(ctl_t *c, const cl_opts_t *o, uint64_t id, long log_from, pid_t *pid)
{
    char *pidf = path_of(o, "pids/node-%" PRIu64 ".pid", id);
    *pid = read_pid(pidf);
    zstr_free(&pidf);
    int64_t wait_ms = c->timeout_set ? c->timeout_ms : 60000;
    int64_t deadline = zclock_mono() + wait_ms;
    while (!node_serving(o, id, log_from)) {
        if (exited(*pid))
            return node_exited(c, o, id, log_from, "during start-up");
        if (zclock_mono() >= deadline || zsys_interrupted) {
            fprintf(stderr,
                    "shoalctl cluster: node %" PRIu64 " still starting after %" PRId64
                    " ms (see logs/node-%" PRIu64 ".log)\n",
                    id, wait_ms, id);
            return -1;
        }
        zclock_sleep(50);
    }
    return wait_caught_up(c, o, id, log_from, *pid, deadline);
}

/* Whether node i's config makes it join a running cluster (node/join = 1). */
static bool joins(const cl_opts_t *o, uint64_t i)
{
    char *path = path_of(o, "node-%" PRIu64 ".cfg", i);
    zconfig_t *cfg = zconfig_load(path);
    bool join = cfg && streq(zconfig_get(cfg, "node/join", "0"), "1");
    zconfig_destroy(&cfg);
    zstr_free(&path);
    return join;
}

static int start_one(ctl_t *c, cl_opts_t *o, int argc, char **argv)
{
    int rc = -1;
    if (names_broker(argc, argv) && (c->dry_run || (rc = load_layout(c, o)) >= 0))
        return c->dry_run ? EXIT_OK : rc;
    if (names_broker(argc, argv))
        return start_broker_only(c, o);
    uint64_t id;
    rc = node_arg(c, o, argc, argv, &id);
    if (rc >= 0)
        return rc;
    char *pidf = path_of(o, "pids/node-%" PRIu64 ".pid", id);
    bool running = alive(read_pid(pidf));
    zstr_free(&pidf);
    if (running) {
        printf("node %" PRIu64 " is already running\n", id);
        return EXIT_OK;
    }
    if (has_node_cfg(o, id) && !node_file(o, id, "node.id") && !joins(o, id))
        return ctl_fail(c, EXIT_USAGE,
                        "node %" PRIu64 " not started: %s/node-%" PRIu64
                        " holds no data, and a bootstrap node started empty would make up a "
                        "store of its own (docs/OPERATIONS.md, \"Changing the placement\")",
                        id, o->dir, id);
    char *shoald = find_bin("shoald", "actors");
    if (!shoald)
        return ctl_fail(c, EXIT_UNAVAIL, "cannot find shoald (build it, or set SHOAL_BIN_DIR)");
    long log_from = node_log_size(o, id);
    rc = start_node(c, o, shoald, id, NULL);
    zstr_free(&shoald);
    if (rc >= 0)
        return rc;
    pid_t pid;
    if ((rc = check_started(c, o, id, log_from, &pid)) >= 0)
        return rc;
    if (c->json)
        printf("{\"node\":%" PRIu64 ",\"pid\":%d}\n", id, (int)pid);
    else
        printf("node %" PRIu64 " started (pid %d)\n", id, (int)pid);
    return EXIT_OK;
}

/* Writes DIR/node-<id>.cfg for a joining node: the config of node `from` with this node's
 * id, endpoints and data folder and node/join = 1; every other key, the cluster section (the
 * bootstrap list) first of all, stays as it is. */
static int write_join_cfg(ctl_t *c, const cl_opts_t *o, uint64_t from, uint64_t id, const char *ep,
                          const char *pub)
{
    char *src = path_of(o, "node-%" PRIu64 ".cfg", from);
    char *dst = path_of(o, "node-%" PRIu64 ".cfg", id);
    zconfig_t *cfg = zconfig_load(src);
    int rc = -1;
    if (!cfg)
        rc = ctl_fail(c, EXIT_USAGE, "cannot read %s", src);
    else {
        zconfig_putf(cfg, "node/id", "%" PRIu64, id);
        zconfig_put(cfg, "node/endpoint", ep);
        zconfig_put(cfg, "node/pub_endpoint", pub);
        zconfig_putf(cfg, "node/data_dir", "%s/node-%" PRIu64, o->dir, id);
        zconfig_put(cfg, "node/join", "1");
        zconfig_set_comment(cfg, NULL);
        zconfig_set_comment(cfg,
                            " generated by shoalctl cluster add-node from node-%" PRIu64
                            ".cfg; keys in docs/OPERATIONS.md",
                            from);
        if (zconfig_save(cfg, dst) != 0)
            rc = ctl_fail(c, EXIT_USAGE, "cannot write %s: %s", dst, strerror(errno));
    }
    zconfig_destroy(&cfg);
    zstr_free(&src);
    zstr_free(&dst);
    return rc;
}

/* True if the broker's status lists node id with endpoint ep (up or not, when want_up is
 * false). */
static bool node_listed(shoal_t *s, uint64_t id, const char *ep, bool want_up)
{
    shoal_cluster_t cl;
    char err[256];
    if (shoal_status(s, false, &cl, err, sizeof err) != SHOAL_STATUS_OK)
        return false;
    bool found = false;
    for (size_t i = 0; i < cl.n_nodes; i++)
        if (cl.nodes[i].id == id && !strcmp(cl.nodes[i].endpoint, ep))
            found = !want_up || cl.nodes[i].up;
    shoal_cluster_clear(&cl);
    return found;
}

/* Registers the started node id in the shard map (retrying while the broker or the
 * metadata group is unavailable) and waits until the broker sees it up, until deadline. */
static int register_node(ctl_t *c, const cl_opts_t *o, uint64_t id, pid_t pid, long log_from,
                         const char *ep, const char *pub, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    char *bep = broker_ep(o);
    shoal_t *s = shoal_connect(bep);
    zstr_free(&bep);
    if (!s)
        return ctl_fail(c, EXIT_UNAVAIL, "cannot connect to the broker");
    shoal_set_timeout(s, 3000);
    char err[256] = "broker not answering";
    int rc = EXIT_UNAVAIL;
    bool registered = false;
    while (zclock_mono() < deadline && !zsys_interrupted) {
        if (exited(pid)) {
            shoal_destroy(&s);
            return node_exited(c, o, id, log_from, "");
        }
        if (!registered) {
            int st = shoal_admin_add_node(s, id, ep, pub, err, sizeof err);
            /* refused as already there: an earlier try that timed out applied, or someone
             * registered it by hand with the same endpoint; anything else is a real no */
            for (int k = 0; st == SHOAL_STATUS_BAD_REQUEST && k < 10; k++) {
                if (node_listed(s, id, ep, false))
                    st = SHOAL_STATUS_OK;
                else if (!strstr(err, "already"))
                    break;
                else /* the broker learns a map change a moment after it is made */
                    zclock_sleep(200);
            }
            if (st == SHOAL_STATUS_BAD_REQUEST) {
                rc = ctl_fail(c, EXIT_USAGE, "cannot register node %" PRIu64 ": %s", id, err);
                break;
            }
            /* NOT_LEADER: a broker from before it retried map changes itself asked a node
             * that led the metadata group before an election; it asks another next time */
            if (st != SHOAL_STATUS_OK && st != SHOAL_STATUS_UNAVAILABLE &&
                st != SHOAL_STATUS_TIMEOUT && st != SHOAL_STATUS_NOT_LEADER) {
                rc = ctl_fail(c, EXIT_UNAVAIL, "cannot register node %" PRIu64 ": %s: %s", id,
                              shoal_status_str(st), err[0] ? err : "no details");
                break;
            }
            registered = st == SHOAL_STATUS_OK;
            if (registered)
                snprintf(err, sizeof err, "registered, but the broker does not see it up");
        }
        if (registered && node_listed(s, id, ep, true)) {
            rc = -1;
            break;
        }
        zclock_sleep(200);
    }
    shoal_destroy(&s);
    if (rc == EXIT_UNAVAIL)
        rc = ctl_fail(c, rc, "node %" PRIu64 " not %s within %d ms: %s", id,
                      registered ? "up" : "registered", timeout_ms, err);
    return rc;
}

/* `cluster add-node`: the next node id with a config copied from the lowest node's, started
 * as a joining node, registered in the shard map and seen up. A failure after the start
 * stops the process and removes its config (and its data folder if this made it), so a
 * retry takes the same id and starts clean. */
static int cluster_add_node(ctl_t *c, cl_opts_t *o)
{
    if (c->dry_run)
        return EXIT_OK;
    int rc = load_layout(c, o);
    if (rc >= 0)
        return rc;
    uint64_t lo = 0, hi = 0;
    if (!node_cfg_range(o, &lo, &hi))
        return ctl_fail(c, EXIT_USAGE, "no node-I.cfg in %s to copy", o->dir);
    if (hi + 1 >= MAX_NODES)
        return ctl_fail(c, EXIT_USAGE,
                        "node-%" PRIu64 ".cfg exists: node ids end at %d, there is no next one", hi,
                        MAX_NODES - 1);
    uint64_t id = hi + 1;
    char *pidf = zsys_sprintf("%s/pids/broker.pid", o->dir);
    bool running = alive(read_pid(pidf));
    zstr_free(&pidf);
    if (!running)
        return ctl_fail(c, EXIT_UNAVAIL, "the cluster in %s is not running (no live broker)",
                        o->dir);
    char *shoald = find_bin("shoald", "actors");
    if (!shoald)
        return ctl_fail(c, EXIT_UNAVAIL, "cannot find shoald (build it, or set SHOAL_BIN_DIR)");
    char *ep = zsys_sprintf("tcp://127.0.0.1:%" PRIu64, o->base_port + 100 + 2 * id);
    char *pub = zsys_sprintf("tcp://127.0.0.1:%" PRIu64, o->base_port + 101 + 2 * id);
    char *data = path_of(o, "node-%" PRIu64, id);
    bool made_data = false, started = false;
    pid_t pid = 0;
    rc = write_join_cfg(c, o, lo, id, ep, pub); /* node-<id>.cfg did not exist: ours to undo */
    if (rc < 0) {
        if (mkdir(data, 0755) == 0)
            made_data = true;
        else if (errno != EEXIST)
            rc = ctl_fail(c, EXIT_USAGE, "cannot create %s: %s", data, strerror(errno));
    }
    long log_from = node_log_size(o, id);
    if (rc < 0) {
        rc = start_node(c, o, shoald, id, NULL);
        started = rc < 0;
    }
    if (rc < 0)
        rc = check_started(c, o, id, log_from, &pid);
    if (rc < 0)
        rc =
            register_node(c, o, id, pid, log_from, ep, pub, c->timeout_set ? c->timeout_ms : 30000);
    if (rc >= 0) { /* undo, so that a retry starts clean */
        if (started) {
            pidf = path_of(o, "pids/node-%" PRIu64 ".pid", id);
            stop_pid(read_pid(pidf), SIGTERM, 10000);
            unlink(pidf);
            zstr_free(&pidf);
        }
        char *cfg = path_of(o, "node-%" PRIu64 ".cfg", id);
        unlink(cfg);
        zstr_free(&cfg);
        if (made_data) {
            zdir_t *d = zdir_new(data, NULL);
            if (d)
                zdir_remove(d, true);
            zdir_destroy(&d);
        }
    } else if (c->json)
        printf("{\"node\":%" PRIu64 ",\"pid\":%d,\"endpoint\":\"%s\",\"pub_endpoint\":\"%s\"}\n",
               id, (int)pid, ep, pub);
    else
        printf("node %" PRIu64 " added (pid %d); it holds no replicas until one is moved to it "
               "(move-replica SHARD FROM %" PRIu64 ")\n",
               id, (int)pid, id);
    zstr_free(&shoald);
    zstr_free(&ep);
    zstr_free(&pub);
    zstr_free(&data);
    return rc >= 0 ? rc : EXIT_OK;
}

/* One `cluster` command at a time per folder: two add-node would take the same id, an up
 * and a down would race over the pid files. The lock is an flock on DIR/.lock held until
 * this process ends (close-on-exec: the daemons it starts must not inherit it). A folder
 * that does not exist is left to the command to report, except for up, which makes it;
 * *made (if not NULL) gets MADE_DIR and MADE_LOCK for what this call created. */
static int lock_dir(ctl_t *c, const cl_opts_t *o, bool make, int *made)
{
    bool new_dir = make && mkdir(o->dir, 0755) == 0;
    if (make && !new_dir && errno != EEXIST)
        return ctl_fail(c, EXIT_USAGE, "cannot create %s: %s", o->dir, strerror(errno));
    char *path = zsys_sprintf("%s/.lock", o->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    bool new_lock = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_RDWR | O_CLOEXEC);
    if (made) /* what a refused `up` takes back */
        *made = (new_dir ? MADE_DIR : 0) | (new_lock ? MADE_LOCK : 0);
    int rc = -1;
    if (fd < 0 && errno != ENOENT)
        rc = ctl_fail(c, EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    else if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "shoalctl %s: waiting for another shoalctl cluster command in %s\n", c->cmd,
                o->dir);
        if (flock(fd, LOCK_EX) != 0)
            rc = ctl_fail(c, EXIT_UNAVAIL, "cannot lock %s: %s", path, strerror(errno));
    }
    zstr_free(&path);
    return rc; /* fd stays open: the lock lasts as long as this command */
}

/* Options whose value is the next argument (so that value is not the sub-command). */
static bool takes_value(const char *a)
{
    static const char *with[] = {"--dir",       "--nodes",          "--shards", "--replicas",
                                 "--base-port", "--fsync",          "--broker", "--timeout",
                                 "--read-mode", "--balance-leaders"};
    for (size_t i = 0; i < sizeof with / sizeof *with; i++)
        if (!strcmp(a, with[i]))
            return true;
    return false;
}

/* The sub-commands, each with its usage line (the one a wrong count of arguments shows). */
static const char *const cl_subs[][2] = {
    {"up", "usage: cluster up --dir DIR [--nodes N] [--shards S] [--replicas R] [--base-port P] "
           "[--fsync batch|always|never] [--read-mode lease|read_index] "
           "[--balance-leaders on|off]\n"},
    {"down", "usage: cluster down --dir DIR\n"},
    {"stop-node", "usage: cluster stop-node --dir DIR I|broker [--kill]\n"},
    {"start-node", "usage: cluster start-node --dir DIR I|broker\n"},
    {"add-node", "usage: cluster add-node --dir DIR\n"},
};

int cmd_cluster(ctl_t *c, int argc, char **argv)
{
    static const char *usage =
        "usage: cluster up --dir DIR [--nodes N] [--shards S] [--replicas R] [--base-port P]\n"
        "                  [--fsync batch|always|never] [--read-mode lease|read_index]\n"
        "                  [--balance-leaders on|off]\n"
        "       cluster down --dir DIR\n"
        "       cluster stop-node --dir DIR I|broker [--kill]\n"
        "       cluster start-node --dir DIR I|broker\n"
        "       cluster add-node --dir DIR\n"
        "A local cluster on 127.0.0.1: N shoald (default 3) and one shoal-broker, S shards\n"
        "(default 4) of R replicas (default min(3, N)). Ports: broker P (default 7000),\n"
        "P+1 (XPUB), P+2 (dashboard), node I at P+100+2I and P+101+2I. `up` waits until\n"
        "every shard has a leader (--timeout, default 60000 ms) and prints the nodes, shards\n"
        "and replicas the running cluster has, then the broker endpoint last. Its nodes\n"
        "answer linearizable reads from a leader lease by default (one host, one clock);\n"
        "--read-mode read_index takes a heartbeat round per read.\n"
        "Leaders are spread over the nodes (raft/balance_leaders) unless --balance-leaders off.\n"
        "`up` on a folder that holds a stopped cluster restarts it from its own configs, the\n"
        "added nodes too; an option that differs from how it was made is refused (exit 2).\n"
        "`add-node` adds node I = highest node-I.cfg + 1 to the running cluster: writes\n"
        "node-I.cfg from node-0.cfg with node/join = 1, starts it, registers it in the shard\n"
        "map (add-node) and waits until it is up (--timeout, default 30000 ms). It holds no\n"
        "replicas until one is moved to it (move-replica SHARD FROM I).\n";
    c->usage = usage;
    cl_opts_t o = {.nodes = 3,
                   .shards = 4,
                   .replicas = 3,
                   .base_port = 7000,
                   .fsync = "batch",
                   .read_mode = "lease"};
    /* the sub-command is the first positional argument */
    const char *sub = NULL;
    int at = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (argv[i][0] != '-' && !(i > 1 && takes_value(argv[i - 1]))) {
            sub = argv[i];
            at = i;
            break;
        }
    }
    if (!sub)
        return ctl_fail(c, EXIT_USAGE, "which one: up, down, stop-node, start-node or add-node?");
    size_t k = 0; /* the name first: before any option is looked at */
    while (k < sizeof cl_subs / sizeof *cl_subs && strcmp(sub, cl_subs[k][0]))
        k++;
    if (k == sizeof cl_subs / sizeof *cl_subs)
        return ctl_fail(c, EXIT_USAGE,
                        "unknown sub-command '%s' (up, down, stop-node, start-node or add-node)",
                        sub);
    for (int i = at; i + 1 < argc; i++)
        argv[i] = argv[i + 1];
    argc--;
    static char name[32];
    snprintf(name, sizeof name, "cluster %s", sub);
    c->cmd = name;
    int rc = parse(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    c->usage = cl_subs[k][1]; /* --help has been answered: from here on, a usage error */
    if (!strcmp(sub, "up"))   /* takes its lock once its options are checked */
        return cluster_up(c, &o, argc - optind);
    if (!c->dry_run && (rc = lock_dir(c, &o, false, NULL)) >= 0)
        return rc;
    if (!strcmp(sub, "down")) {
        if ((rc = ctl_want_args(c, argc - optind, 0, 0)) >= 0)
            return rc;
        return cluster_down(c, &o);
    }
    if (!strcmp(sub, "add-node")) {
        if ((rc = ctl_want_args(c, argc - optind, 0, 0)) >= 0)
            return rc;
        return cluster_add_node(c, &o);
    }
    if (!strcmp(sub, "stop-node"))
        return stop_node(c, &o, argc, argv);
    return start_one(c, &o, argc, argv);
}
