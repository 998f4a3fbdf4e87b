/* node_bench.c - benchmark of the node runtime alone (no broker): starts a local cluster of
 * shoald processes, then measures either
 *   write throughput through the node's own request path (ROUTER -> Raft -> log fsync ->
 *   apply -> reply) with C closed-loop clients spread over S shards, or
 *   the idle cost of a node (CPU % over a window from /proc, RSS, threads).
 *
 *   node_bench --shoald PATH [--nodes 3] [--shards S] [--clients C] [--duration SEC]
 *              [--value-size V] [--fsync batch|always|never] [--idle SEC]
 *              [--quiesce TICKS] [--recovery KEYS] [--keep DIR]
 *
 * --recovery KEYS loads KEYS keys, kills node 0 with SIGKILL, restarts it and reports how
 * long until it serves a read of data written before the kill from its own engine.
 *
 * Each client keeps one write in flight (put of a random 16-byte key), sends it straight to
 * the shard's leader (learnt from NOT_LEADER hints), and records its latency. Output: one
 * line "writes/s p50 p99 p999" or "cpu% rss threads", easy to paste into BENCHMARKS.md. */
#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/ring.h"
#include "proto/codec.h"

#define MAX_NODES 8
#define MAX_CLIENTS 4096

typedef struct {
    const char *shoald;
    int nodes, shards, clients, duration, value_size, idle, quiesce;
    long recovery; /* keys to load before the kill -9 / restart measurement */
    const char *fsync;
    char dir[512];
    bool keep;
    int port[MAX_NODES], pub[MAX_NODES];
    pid_t pid[MAX_NODES];
    zsock_t *sock[MAX_NODES];
    int leader[4096];
    ring_t *ring; /* the bootstrap map's (64 points per shard): which shard holds a key */
} bench_t;

typedef struct {
    uint64_t rid;
    int64_t sent_us;
    uint32_t shard;
    int node;
    uint8_t key[16];
} inflight_t;

/* A free port below the kernel's ephemeral range (32768+), so no outgoing connection of
 * another process takes it before the node binds it. */
static int free_port(void)
{
    for (int tries = 0; tries < 1000; tries++) {
        int port = 20000 + (int)(random() % 12000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    return -1;
}

static void write_config(bench_t *b, int i)
{
    char path[600];
    snprintf(path, sizeof path, "%s/node-%d.cfg", b->dir, i);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "node\n    id = %d\n    endpoint = \"tcp://127.0.0.1:%d\"\n"
            "    pub_endpoint = \"tcp://127.0.0.1:%d\"\n    data_dir = \"%s/node-%d\"\n"
            "    log_level = \"warning\"\n",
            i, b->port[i], b->pub[i], b->dir, i);
    fprintf(f,
            "raft\n    tick_ms = 10\n    election_ticks = 50\n    heartbeat_ticks = 5\n"
            "    quiesce_ticks = %d\n",
            b->quiesce);
    fprintf(f, "storage\n    fsync = \"%s\"\n    snapshot_entries = 100000\n", b->fsync);
    fprintf(f, "cluster\n    shards = %d\n    replicas = 3\n    nodes\n", b->shards);
    for (int k = 0; k < b->nodes; k++)
        fprintf(f,
                "        %d\n            endpoint = \"tcp://127.0.0.1:%d\"\n"
                "            pub_endpoint = \"tcp://127.0.0.1:%d\"\n",
                k, b->port[k], b->pub[k]);
    fclose(f);
}

static void start_node(bench_t *b, int i)
{
    char cfg[600], log[600];
    snprintf(cfg, sizeof cfg, "%s/node-%d.cfg", b->dir, i);
    snprintf(log, sizeof log, "%s/node-%d.log", b->dir, i);
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        execl(b->shoald, b->shoald, "--config", cfg, (char *)NULL);
        _exit(127);
    }
    b->pid[i] = p;
}

static void start_cluster(bench_t *b)
{
    for (int i = 0; i < b->nodes; i++) {
        b->port[i] = free_port();
        b->pub[i] = free_port();
    }
    for (int i = 0; i < b->nodes; i++) {
        write_config(b, i);
        start_node(b, i);
        b->sock[i] = zsock_new(ZMQ_DEALER);
        zsock_set_sndhwm(b->sock[i], 0);
        zsock_set_rcvhwm(b->sock[i], 0);
        zsock_connect(b->sock[i], "tcp://127.0.0.1:%d", b->port[i]);
    }
}

static void stop_cluster(bench_t *b)
{
    for (int i = 0; i < b->nodes; i++) {
        zsock_destroy(&b->sock[i]);
        if (b->pid[i] > 0) {
            kill(b->pid[i], SIGTERM);
            waitpid(b->pid[i], NULL, 0);
        }
    }
    if (!b->keep) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "node_bench: could not remove %s\n", b->dir);
    }
}

static void send_req(bench_t *b, int node, Shoal__ClientRequest *req)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
    f.client_req = req;
    size_t len;
    uint8_t *buf = shoal_frame_encode(&f, &len);
    zmq_send(zsock_resolve(b->sock[node]), buf, len, 0);
    free(buf);
}

static void send_put(bench_t *b, inflight_t *w, uint64_t client_id, uint64_t seq,
                     const uint8_t *val)
{
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__PutRequest put = SHOAL__PUT_REQUEST__INIT;
    put.key.data = w->key;
    put.key.len = sizeof w->key;
    put.value.data = (uint8_t *)val;
    put.value.len = (size_t)b->value_size;
    req.client_id = client_id;
    req.seq = seq;
    req.shard = w->shard;
    req.request_id = w->rid;
    req.op_case = SHOAL__CLIENT_REQUEST__OP_PUT;
    req.put = &put;
    w->node = b->leader[w->shard] >= 0 ? b->leader[w->shard] : (int)(w->shard % (uint32_t)b->nodes);
    send_req(b, w->node, &req);
}

/* A random key, sent to the shard that holds it: a node serves a key only from the shard
 * its map places it in (docs/CONTRACTS.md). */
static void new_key(const bench_t *b, inflight_t *w)
{
    for (size_t i = 0; i < sizeof w->key; i++)
        w->key[i] = (uint8_t)('a' + random() % 26);
    w->shard = ring_shard_for(b->ring, w->key, sizeof w->key);
}

/* A key of shard s: random keys until one lands there. */
static void key_in(const bench_t *b, inflight_t *w, uint32_t s)
{
    do
        new_key(b, w);
    while (w->shard != s);
}

/* Receives one reply; returns its request id, follows NOT_LEADER hints (*retry = true). */
static uint64_t recv_reply(bench_t *b, zsock_t *s, bool *retry, uint32_t *shard_out, int *hint)
{
    zframe_t *fr = zframe_recv(s);
    Shoal__Frame *f = NULL;
    char err[128];
    uint64_t rid = 0;
    *retry = false;
    *hint = -1;
    if (fr && shoal_frame_decode(zframe_data(fr), zframe_size(fr), &f, err, sizeof err) == 0 &&
        f->body_case == SHOAL__FRAME__BODY_CLIENT_RESP) {
        Shoal__ClientResponse *r = f->client_resp;
        rid = r->request_id;
        *shard_out = r->shard;
        if (r->status != SHOAL__STATUS__STATUS_OK) {
            *retry = true;
            if (r->status == SHOAL__STATUS__STATUS_NOT_LEADER && r->leader)
                *hint = (int)r->leader->node_id;
        }
    }
    shoal_frame_free(&f);
    zframe_destroy(&fr);
    return rid;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_writes(bench_t *b)
{
    inflight_t *w = calloc((size_t)b->clients, sizeof *w);
    size_t cap = 1 << 22, nlat = 0;
    int64_t *lat = malloc(cap * sizeof *lat);
    uint8_t *val = malloc((size_t)b->value_size + 1);
    memset(val, 'v', (size_t)b->value_size);
    /* one session per client, one write in flight on it: the node's exactly-once rule */
    uint64_t cid = (uint64_t)getpid() << 32;
    uint64_t *seq = calloc((size_t)b->clients, sizeof *seq);
    zpoller_t *p = zpoller_new(NULL);
    for (int i = 0; i < b->nodes; i++)
        zpoller_add(p, b->sock[i]);
    for (int c = 0; c < b->clients; c++) {
        new_key(b, &w[c]);
        w[c].rid = (uint64_t)c + 1;
        w[c].sent_us = zclock_usecs();
        send_put(b, &w[c], cid + (uint64_t)c, ++seq[c], val);
    }
    int64_t start = zclock_usecs(), warm = start + 1000000,
            end = warm + (int64_t)b->duration * 1000000;
    uint64_t done = 0;
    int64_t last_print = warm;
    if (b->recovery) /* load a count of keys, however long it takes */
        end = INT64_MAX, warm = start;
    while (zclock_usecs() < end && (!b->recovery || done < (uint64_t)b->recovery)) {
        zsock_t *s = zpoller_wait(p, 100);
        if (!s)
            continue;
        bool retry;
        uint32_t shard;
        int hint;
        uint64_t rid = recv_reply(b, s, &retry, &shard, &hint);
        if (rid == 0 || rid > (uint64_t)b->clients)
            continue;
        inflight_t *x = &w[rid - 1];
        if (hint >= 0 && hint < b->nodes)
            b->leader[x->shard] = hint;
        else if (retry)
            b->leader[x->shard] = (x->node + 1) % b->nodes;
        int64_t now = zclock_usecs();
        if (!retry) {
            if (now >= warm) {
                done++;
                if (nlat < cap)
                    lat[nlat++] = now - x->sent_us;
            }
            b->leader[x->shard] = x->node;
            new_key(b, x);
            x->sent_us = now;
            send_put(b, x, cid + rid - 1, ++seq[rid - 1], val);
        } else {
            send_put(b, x, cid + rid - 1, seq[rid - 1], val); /* a retry: applied once */
        }
        if (now - last_print > 2000000) {
            fprintf(stderr, "  ... %.0f writes/s\n", done / ((now - warm) / 1e6));
            last_print = now;
        }
    }
    if (b->recovery)
        end = zclock_usecs();
    qsort(lat, nlat, sizeof *lat, cmp_i64);
    double secs = (double)(end - warm) / 1e6;
    printf("shards=%d clients=%d value=%dB fsync=%s: %.0f writes/s, p50 %.2f ms, p99 %.2f ms, "
           "p999 %.2f ms\n",
           b->shards, b->clients, b->value_size, b->fsync, done / secs,
           nlat ? lat[nlat / 2] / 1000.0 : 0, nlat ? lat[nlat * 99 / 100] / 1000.0 : 0,
           nlat ? lat[nlat * 999 / 1000] / 1000.0 : 0);
    zpoller_destroy(&p);
    free(w);
    free(seq);
    free(lat);
    free(val);
    return 0;
}

static void proc_sample(pid_t pid, uint64_t *ticks, uint64_t *rss_kb, int *threads)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    *ticks = 0;
    if (f && fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        unsigned long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            *ticks = ut + st;
    }
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %lu kB", (unsigned long *)rss_kb);
        sscanf(line, "Threads: %d", threads);
    }
    if (f)
        fclose(f);
}

/* Waits until every shard answers a write (so every group has a leader). */
static int wait_leaders(bench_t *b)
{
    int64_t until = zclock_mono() + 60000;
    for (int s = 0; s < b->shards; s++) {
        bool ok = false;
        while (!ok && zclock_mono() < until) {
            inflight_t w = {.rid = 1};
            key_in(b, &w, (uint32_t)s);
            uint8_t v = 'x';
            int vs = b->value_size;
            b->value_size = 1;
            send_put(b, &w, 7, 0, &v);
            b->value_size = vs;
            zpoller_t *p = zpoller_new(b->sock[w.node], NULL);
            zsock_t *sock = zpoller_wait(p, 1000);
            zpoller_destroy(&p);
            if (!sock)
                continue;
            bool retry;
            uint32_t shard;
            int hint;
            recv_reply(b, sock, &retry, &shard, &hint);
            if (!retry)
                ok = true;
            else
                b->leader[s] = hint >= 0 ? hint : (w.node + 1) % b->nodes;
            if (retry)
                zclock_sleep(20);
        }
        if (!ok)
            return -1;
    }
    return 0;
}

/* Loads b->recovery keys, kills node 0 with SIGKILL, restarts it and measures how long
 * until it answers a read of a key written before the kill from its own engine. */
static int run_recovery(bench_t *b)
{
    run_writes(b);
    inflight_t w = {.rid = 1};
    key_in(b, &w, 0);
    uint8_t v = 'r';
    int vs = b->value_size;
    b->value_size = 1;
    send_put(b, &w, 99, 1, &v); /* the last write before the kill */
    zpoller_t *p = zpoller_new(b->sock[w.node], NULL);
    zpoller_wait(p, 5000);
    zpoller_destroy(&p);
    bool retry;
    uint32_t shard;
    int hint;
    recv_reply(b, b->sock[w.node], &retry, &shard, &hint);
    b->value_size = vs;
    zclock_sleep(500); /* let node 0 apply it */
    kill(b->pid[0], SIGKILL);
    waitpid(b->pid[0], NULL, 0);
    int64_t t0 = zclock_usecs();
    start_node(b, 0);
    bool ok = false;
    while (!ok && zclock_usecs() - t0 < 60000000) {
        Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
        Shoal__GetRequest get = SHOAL__GET_REQUEST__INIT;
        get.key.data = w.key;
        get.key.len = sizeof w.key;
        get.stale = true; /* node 0's own engine: recovered, not forwarded */
        req.shard = 0;
        req.request_id = 1ull << 40; /* no load request used it */
        req.op_case = SHOAL__CLIENT_REQUEST__OP_GET;
        req.get = &get;
        send_req(b, 0, &req);
        p = zpoller_new(b->sock[0], NULL);
        zsock_t *s = zpoller_wait(p, 50);
        zpoller_destroy(&p);
        if (s) {
            zframe_t *fr = zframe_recv(s);
            Shoal__Frame *f = NULL;
            char err[128];
            if (fr &&
                shoal_frame_decode(zframe_data(fr), zframe_size(fr), &f, err, sizeof err) == 0 &&
                f->body_case == SHOAL__FRAME__BODY_CLIENT_RESP &&
                f->client_resp->request_id == 1ull << 40 &&
                f->client_resp->status == SHOAL__STATUS__STATUS_OK)
                ok = true;
            shoal_frame_free(&f);
            zframe_destroy(&fr);
        }
    }
    printf("recovery after kill -9 with %ld keys: node 0 served a read of its data %.0f ms after "
           "exec%s\n",
           b->recovery, (zclock_usecs() - t0) / 1000.0, ok ? "" : " (NOT within 60 s)");
    return ok ? 0 : 1;
}

static int run_idle(bench_t *b)
{
    fprintf(stderr, "  all %d shards have leaders; settling 5 s, then measuring %d s\n", b->shards,
            b->idle);
    zclock_sleep(5000);
    uint64_t t0, t1, rss = 0;
    int threads = 0;
    proc_sample(b->pid[0], &t0, &rss, &threads);
    int64_t s0 = zclock_mono();
    zclock_sleep(b->idle * 1000);
    proc_sample(b->pid[0], &t1, &rss, &threads);
    double secs = (zclock_mono() - s0) / 1000.0;
    double cpu = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / secs * 100.0;
    printf("idle node with %d replicas (quiesce_ticks %d): cpu %.2f%% of a core over %.0f s, "
           "rss %.1f MiB, %d threads\n",
           b->shards + 1, b->quiesce, cpu, secs, rss / 1024.0, threads);
    return 0;
}

int main(int argc, char **argv)
{
    bench_t b = {.nodes = 3,
                 .shards = 1,
                 .clients = 64,
                 .duration = 10,
                 .value_size = 100,
                 .fsync = "batch",
                 .quiesce = 100};
    memset(b.leader, -1, sizeof b.leader);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (streq(k, "--shoald"))
            b.shoald = v;
        else if (streq(k, "--shards"))
            b.shards = atoi(v);
        else if (streq(k, "--clients"))
            b.clients = atoi(v);
        else if (streq(k, "--duration"))
            b.duration = atoi(v);
        else if (streq(k, "--value-size"))
            b.value_size = atoi(v);
        else if (streq(k, "--fsync"))
            b.fsync = v;
        else if (streq(k, "--idle"))
            b.idle = atoi(v);
        else if (streq(k, "--quiesce"))
            b.quiesce = atoi(v);
        else if (streq(k, "--recovery"))
            b.recovery = atol(v);
        else if (streq(k, "--keep")) {
            snprintf(b.dir, sizeof b.dir, "%s", v);
            b.keep = true;
        } else {
            fprintf(stderr, "node_bench: unknown option %s\n", k);
            return 2;
        }
    }
    if (!b.shoald || b.shards < 1 || b.shards > 4096 || b.clients < 1 || b.clients > MAX_CLIENTS) {
        fprintf(stderr,
                "usage: node_bench --shoald PATH [--shards S] [--clients C] [--duration SEC] "
                "[--value-size V] [--fsync MODE] [--idle SEC] [--keep DIR]\n");
        return 2;
    }
    zsys_init();
    srandom((unsigned)(getpid() ^ zclock_usecs()));
    if (!b.dir[0]) {
        snprintf(b.dir, sizeof b.dir, "/tmp/shoal-node-bench.XXXXXX");
        if (!mkdtemp(b.dir))
            return 1;
    } else
        mkdir(b.dir, 0755);
    b.ring = ring_new(64);
    for (int s = 0; b.ring && s < b.shards; s++)
        ring_add_shard(b.ring, (uint32_t)s);
    if (!b.ring)
        return 1;
    start_cluster(&b);
    int rc = wait_leaders(&b);
    if (rc)
        fprintf(stderr, "node_bench: not every shard elected a leader (logs in %s)\n", b.dir);
    else
        rc = b.idle ? run_idle(&b) : b.recovery ? run_recovery(&b) : run_writes(&b);
    stop_cluster(&b);
    ring_destroy(&b.ring);
    return rc ? 1 : 0;
}
