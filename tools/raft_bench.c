/* raft_bench.c - the Raft core alone, in simulation, with no I/O.
 *
 *   raft_bench throughput [--entries N] [--size B] [--batch K]
 *       3 replicas in one process; messages are handed over in memory, "persisting" is
 *       acknowledging the ready. Prints committed entries per second at the leader.
 *   raft_bench election [--trials N] [--min MS] [--nodes N] [--delay MS] [--prevote]
 *       The experiment of Figure 16 of the Raft paper: a tick is 1 ms, the election timeout
 *       is random in [min, 2*min) (the core draws from [election_tick, 2*election_tick)),
 *       heartbeats every min/2, a fixed one-way network delay (default 1 ms), prevote and
 *       check-quorum off unless --prevote (the paper has neither). The leader is crashed at a
 *       uniformly random moment of its heartbeat interval; the time until another node
 *       becomes leader is measured. Prints the distribution.
 *
 * Everything but the clock used for entries/s comes from fixed seeds: runs repeat. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/raft/raft.h"

#define MAXN 9

typedef struct {
    raft_msg_t m;
    uint64_t at;
} qmsg_t;

typedef struct {
    raft_t *r[MAXN + 1];
    bool up[MAXN + 1];
    int n;
    qmsg_t *q;
    size_t nq, cap;
    uint64_t now;
    uint64_t rng;
    uint64_t committed; /* at the leader */
    int delay;          /* ticks of network delay; 0 = deliver at once */
} bench_t;

static uint64_t rnd(bench_t *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void push(bench_t *b, raft_msg_t *m)
{
    if (b->nq == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->q = realloc(b->q, b->cap * sizeof(*b->q));
    }
    b->q[b->nq].m = *m; /* takes the message out of the ready */
    b->q[b->nq].at = b->now + (b->delay ? (uint64_t)b->delay : 0);
    b->nq++;
    memset(m, 0, sizeof(*m));
}

static void ready(bench_t *b, int i)
{
    raft_ready_t rd;
    while (b->up[i] && raft_has_ready(b->r[i]) && raft_ready(b->r[i], &rd) == 0) {
        for (size_t k = 0; k < rd.n_msgs; k++)
            push(b, &rd.msgs[k]);
        for (size_t k = 0; k < rd.n_msgs_after_persist; k++)
            push(b, &rd.msgs_after_persist[k]);
        if (rd.soft_state.role == RAFT_LEADER)
            for (size_t k = 0; k < rd.n_committed; k++)
                b->committed += rd.committed[k].type == RAFT_ENTRY_NORMAL;
        raft_advance(b->r[i], &rd);
    }
}

/* Delivers the messages due now; returns how many. */
static size_t deliver(bench_t *b)
{
    size_t n = 0, keep = 0;
    for (size_t k = 0; k < b->nq; k++) {
        qmsg_t *x = &b->q[k];
        if (x->at > b->now) {
            b->q[keep++] = *x;
            continue;
        }
        if (b->up[x->m.to])
            raft_step(b->r[x->m.to], &x->m);
        raft_msg_free_contents(&x->m);
        n++;
    }
    b->nq = keep; /* stepping only fills the cores' outboxes: nothing was pushed */
    return n;
}

static void setup(bench_t *b, int n, unsigned etick, unsigned htick, bool prevote, uint64_t seed)
{
    memset(b, 0, sizeof(*b));
    b->n = n;
    b->rng = seed * 0x9E3779B97F4A7C15ull | 1;
    for (int i = 1; i <= n; i++) {
        raft_config_t c;
        raft_config_default(&c);
        c.id = (uint64_t)i;
        c.election_tick = etick;
        c.heartbeat_tick = htick;
        c.prevote = prevote;
        c.check_quorum = prevote;
        c.seed = seed;
        raft_restore_t rs = {0};
        rs.snapshot.conf.n_voters = (size_t)n;
        for (int v = 0; v < n; v++)
            rs.snapshot.conf.voters[v] = (uint64_t)v + 1;
        b->r[i] = raft_new(&c, &rs, NULL);
        b->up[i] = true;
    }
}

static void teardown(bench_t *b)
{
    for (int i = 1; i <= b->n; i++)
        raft_destroy(&b->r[i]);
    for (size_t k = 0; k < b->nq; k++)
        raft_msg_free_contents(&b->q[k].m);
    free(b->q);
}

static int leader(bench_t *b)
{
    for (int i = 1; i <= b->n; i++) {
        raft_status_t st;
        if (!b->up[i])
            continue;
        raft_status(b->r[i], &st);
        if (st.role == RAFT_LEADER)
            return i;
    }
    return 0;
}

static void tick_all(bench_t *b)
{
    b->now++;
    for (int i = 1; i <= b->n; i++)
        if (b->up[i])
            raft_tick(b->r[i]);
    for (int round = 0; round < 4; round++) {
        for (int i = 1; i <= b->n; i++)
            ready(b, i);
        if (!deliver(b))
            break;
    }
    for (int i = 1; i <= b->n; i++)
        ready(b, i);
}

static int throughput(uint64_t entries, size_t size, int batch)
{
    bench_t b;
    setup(&b, 3, 10, 1, true, 1);
    while (!leader(&b))
        tick_all(&b);
    int l = leader(&b);
    uint8_t *payload = calloc(1, size ? size : 1);
    double t0 = seconds();
    uint64_t proposed = 0;
    while (b.committed < entries) {
        for (int k = 0; k < batch && proposed < entries; k++, proposed++)
            raft_propose(b.r[l], payload, size, NULL);
        for (int round = 0; round < 8; round++) {
            for (int i = 1; i <= 3; i++)
                ready(&b, i);
            if (!deliver(&b))
                break;
        }
    }
    double dt = seconds() - t0;
    printf("throughput: 3 replicas, %llu entries of %zu bytes, batch %d: %.2f s, "
           "%.0f committed entries/s, %.1f MB/s\n",
           (unsigned long long)entries, size, batch, dt, (double)entries / dt,
           (double)entries * (double)size / dt / 1e6);
    free(payload);
    teardown(&b);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int election(int trials, unsigned min_ms, int nodes, bool prevote, int delay)
{
    uint64_t *ms = calloc((size_t)trials, sizeof(*ms));
    uint64_t splits = 0;
    unsigned hb = min_ms / 2 ? min_ms / 2 : 1;
    for (int t = 0; t < trials; t++) {
        bench_t b;
        setup(&b, nodes, min_ms, hb, prevote, (uint64_t)t + 1);
        b.delay = delay;
        while (!leader(&b))
            tick_all(&b);
        int l = leader(&b);
        raft_status_t st;
        raft_status(b.r[l], &st);
        uint64_t term = st.term;
        /* settle, then crash at a random moment of the heartbeat interval */
        unsigned settle = 3 * min_ms + (unsigned)(rnd(&b) % hb);
        for (unsigned k = 0; k < settle; k++)
            tick_all(&b);
        b.up[l] = false;
        uint64_t crashed = b.now;
        while (!leader(&b))
            tick_all(&b);
        ms[t] = b.now - crashed;
        raft_status(b.r[leader(&b)], &st);
        splits += st.term > term + 1;
        teardown(&b);
    }
    qsort(ms, (size_t)trials, sizeof(*ms), cmp_u64);
    double sum = 0;
    for (int t = 0; t < trials; t++)
        sum += (double)ms[t];
    printf("election: %d nodes, timeouts %u-%u ms, heartbeat %u ms, delay %d ms, prevote %s: "
           "%d trials\n  time to a new leader (ms): mean %.0f, min %llu, p50 %llu, p90 %llu, "
           "p99 %llu, max %llu; elections needing more than one term: %llu\n",
           nodes, min_ms, 2 * min_ms, hb, delay, prevote ? "on" : "off", trials, sum / trials,
           (unsigned long long)ms[0], (unsigned long long)ms[trials / 2],
           (unsigned long long)ms[trials * 9 / 10], (unsigned long long)ms[trials * 99 / 100],
           (unsigned long long)ms[trials - 1], (unsigned long long)splits);
    printf("  cumulative: ");
    for (unsigned f = 1; f <= 8; f++) {
        uint64_t lim = min_ms * f / 2;
        int k = 0;
        while (k < trials && ms[k] <= lim)
            k++;
        printf("<=%llums %.0f%%%s", (unsigned long long)lim, 100.0 * k / trials,
               f < 8 ? ", " : "\n");
    }
    free(ms);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    uint64_t entries = 1000000;
    size_t size = 128;
    int batch = 64, trials = 1000, nodes = 5, delay = 1;
    unsigned min_ms = 150;
    bool prevote = false;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--entries"))
            entries = strtoull(v, NULL, 10), i++;
        else if (!strcmp(argv[i], "--size"))
            size = strtoull(v, NULL, 10), i++;
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(v), i++;
        else if (!strcmp(argv[i], "--trials"))
            trials = atoi(v), i++;
        else if (!strcmp(argv[i], "--min"))
            min_ms = (unsigned)atoi(v), i++;
        else if (!strcmp(argv[i], "--nodes"))
            nodes = atoi(v), i++;
        else if (!strcmp(argv[i], "--delay"))
            delay = atoi(v), i++;
        else if (!strcmp(argv[i], "--prevote"))
            prevote = true;
        else
            mode = "";
    }
    if (batch < 1 || trials < 1 || nodes < 1 || nodes > MAXN || min_ms < 2 || delay < 1)
        mode = "";
    if (!strcmp(mode, "throughput"))
        return throughput(entries, size, batch);
    if (!strcmp(mode, "election"))
        return election(trials, min_ms, nodes, prevote, delay);
    fprintf(stderr, "usage: raft_bench throughput [--entries N] [--size B] [--batch K]\n"
                    "       raft_bench election [--trials N] [--min MS] [--nodes N] "
                    "[--delay MS] [--prevote]\n");
    return 2;
}
