/* cmd_bench.c - `shoalctl bench put|get|mixed`: a closed-loop load generator on libshoal's
 * pipelined mode. C clients each keep one request in flight on a single DEALER socket
 * (each on its own write lane, as C separate clients would), so C is the concurrency the
 * cluster sees. get and mixed first load --keys keys. A progress line is printed every
 * second; the end prints ops/s and latency percentiles (p50, p99, p999, max) measured
 * from submit to answer, errors counted apart (a get of a missing key is not an error). */
#include "tools/shoalctl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

enum { MODE_PUT, MODE_GET, MODE_MIXED };
#define EXIT_INTERRUPTED 130 /* 128 + SIGINT, what a shell reports for Ctrl-C */
enum {
    OPT_CLIENTS = OPT_FIRST_CMD,
    OPT_DURATION,
    OPT_KEY_SIZE,
    OPT_VALUE_SIZE,
    OPT_KEYS,
    OPT_READS,
    OPT_NO_LOAD
};

typedef struct {
    uint64_t clients, duration, key_size, value_size, keys, read_pct;
    bool no_load;
    bool read_pct_set;
} bench_opts_t;

typedef struct {
    shoal_t *s;
    const bench_opts_t *o;
    int mode;
    char *value;
    uint64_t rng;
    bool stopping;
    bool measuring;
    uint64_t ops, errors, window_ops, next_load;
    uint32_t *lat;
    size_t n_lat, cap_lat;
    size_t window_start; /* first latency of the current progress second */
    char last_error[320];
} bench_t;

static uint64_t rnd(bench_t *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

static size_t make_key(const bench_opts_t *o, uint64_t i, char *buf)
{
    snprintf(buf, o->key_size + 1, "%0*" PRIu64, (int)o->key_size, i);
    return strlen(buf);
}

static void on_done(shoal_result_t *r, void *arg);

static int submit_next(bench_t *b, bool load)
{
    char key[1100];
    uint64_t k = load ? b->next_load++ : rnd(b) % b->o->keys;
    size_t klen = make_key(b->o, k, key);
    bool read =
        !load && (b->mode == MODE_GET || (b->mode == MODE_MIXED && rnd(b) % 100 < b->o->read_pct));
    shoal_op_t op = {.type = read ? SHOAL_OP_GET : SHOAL_OP_PUT,
                     .key = key,
                     .key_len = klen,
                     .value = b->value,
                     .value_len = b->o->value_size};
    return shoal_submit(b->s, &op, on_done, b);
}

static void on_done(shoal_result_t *r, void *arg)
{
    bench_t *b = arg;
    bool ok = r->status == SHOAL_STATUS_OK || r->status == SHOAL_STATUS_NOT_FOUND;
    if (!ok) {
        b->errors++;
        snprintf(b->last_error, sizeof b->last_error, "%s: %s", shoal_status_str(r->status),
                 r->error);
    }
    if (b->measuring && ok) {
        if (b->n_lat == b->cap_lat) {
            size_t cap = b->cap_lat ? b->cap_lat * 2 : 1 << 16;
            uint32_t *l = realloc(b->lat, cap * sizeof *l);
            if (l) {
                b->lat = l;
                b->cap_lat = cap;
            }
        }
        if (b->n_lat < b->cap_lat)
            b->lat[b->n_lat++] = r->latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)r->latency_us;
        b->ops++;
        b->window_ops++;
    }
    if (b->stopping)
        return;
    if (!b->measuring) { /* loading */
        if (b->next_load < b->o->keys)
            submit_next(b, true);
        return;
    }
    submit_next(b, false);
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static double pct(const bench_t *b, double p)
{
    if (!b->n_lat)
        return 0;
    size_t i = (size_t)(p * (double)(b->n_lat - 1) + 0.5);
    return b->lat[i] / 1000.0;
}

/* p99 of the last second's latencies only: sorting every latency so far each second would
 * cost the load generator CPU that the cluster under test needs on a small machine. */
static double window_p99(bench_t *b)
{
    size_t n = b->n_lat - b->window_start;
    double p = 0;
    uint32_t *w = n ? malloc(n * sizeof *w) : NULL;
    if (w) {
        memcpy(w, b->lat + b->window_start, n * sizeof *w);
        qsort(w, n, sizeof *w, cmp_u32);
        p = w[(size_t)(0.99 * (double)(n - 1) + 0.5)] / 1000.0;
        free(w);
    }
    b->window_start = b->n_lat;
    return p;
}

static int bench_opt(ctl_t *c, int opt, bench_opts_t *o)
{
    switch (opt) {
    case OPT_CLIENTS:
        return ctl_parse_u64(c, "--clients", optarg, 1, SHOAL_MAX_INFLIGHT, &o->clients)
                   ? EXIT_USAGE
                   : -1;
    case OPT_DURATION:
        return ctl_parse_u64(c, "--duration", optarg, 1, 86400, &o->duration) ? EXIT_USAGE : -1;
    case OPT_KEY_SIZE:
        return ctl_parse_u64(c, "--key-size", optarg, 1, 1024, &o->key_size) ? EXIT_USAGE : -1;
    case OPT_VALUE_SIZE:
        return ctl_parse_u64(c, "--value-size", optarg, 0, SHOAL_MAX_VALUE, &o->value_size)
                   ? EXIT_USAGE
                   : -1;
    case OPT_KEYS:
        return ctl_parse_u64(c, "--keys", optarg, 1, 100000000, &o->keys) ? EXIT_USAGE : -1;
    case OPT_READS:
        o->read_pct_set = true;
        return ctl_parse_u64(c, "--read-percent", optarg, 0, 100, &o->read_pct) ? EXIT_USAGE : -1;
    case OPT_NO_LOAD: o->no_load = true; return -1;
    }
    return -1;
}

/* Pumps until nothing is in flight, ms pass or Ctrl-C. */
static void drain(bench_t *b, int ms)
{
    int64_t until = zclock_mono() + ms;
    while (shoal_inflight(b->s) && zclock_mono() < until && !zsys_interrupted)
        shoal_pump(b->s, 20);
}

static int load_keys(ctl_t *c, bench_t *b)
{
    bool tty = isatty(2);
    b->next_load = 0;
    int64_t t0 = zclock_mono(), next = t0 + 1000;
    for (uint64_t i = 0; i < b->o->clients && b->next_load < b->o->keys; i++)
        submit_next(b, true);
    while (shoal_inflight(b->s) && !zsys_interrupted) {
        shoal_pump(b->s, 50);
        if (zclock_mono() >= next) {
            fprintf(stderr, "%sloading keys: %" PRIu64 "/%" PRIu64 "%s", tty ? "\r" : "",
                    b->next_load, b->o->keys, tty ? "" : "\n");
            next += 1000;
        }
    }
    if (tty)
        fprintf(stderr, "\r\033[K");
    if (zsys_interrupted) {
        uint64_t done = b->next_load - shoal_inflight(b->s);
        ctl_fail(c, EXIT_INTERRUPTED,
                 "interrupted while loading keys: %" PRIu64 " of %" PRIu64 " answered (%" PRIu64
                 " errors); nothing measured",
                 done, b->o->keys, b->errors);
        return EXIT_INTERRUPTED;
    }
    if (b->errors)
        return ctl_fail(c, EXIT_UNAVAIL, "loading %" PRIu64 " keys: %" PRIu64 " errors, last %s",
                        b->o->keys, b->errors, b->last_error);
    fprintf(stderr, "loaded %" PRIu64 " keys in %.1f s\n", b->o->keys,
            (zclock_mono() - t0) / 1000.0);
    return -1;
}

/* Runs the measured phase; returns its length in seconds, from the first submit to the
 * end of the run (Ctrl-C ends it early: the rate is over what was measured). */
static double run_measured(bench_t *b, const char *name)
{
    bool tty = isatty(2);
    b->measuring = true;
    int64_t t0 = zclock_mono(), end = t0 + (int64_t)b->o->duration * 1000, tick = t0 + 1000;
    for (uint64_t i = 0; i < b->o->clients; i++)
        submit_next(b, false);
    while (zclock_mono() < end && !zsys_interrupted) {
        shoal_pump(b->s, 20);
        int64_t now = zclock_mono();
        if (now >= tick) {
            double p99 = window_p99(b);
            fprintf(stderr,
                    "%s[%3" PRId64 "/%" PRIu64 " s] %s %8" PRIu64 " ops/s  p99 %.2f ms  "
                    "errors %" PRIu64 "%s",
                    tty ? "\r" : "", (now - t0) / 1000, b->o->duration, name, b->window_ops, p99,
                    b->errors, tty ? "\033[K" : "\n");
            b->window_ops = 0;
            tick += 1000;
        }
    }
    b->stopping = true;
    double secs = (zclock_mono() - t0) / 1000.0;
    drain(b, 10000);
    if (tty)
        fprintf(stderr, "\r\033[K");
    b->measuring = false;
    return secs;
}

int cmd_bench(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: bench put|get|mixed --clients C --duration S --key-size K "
               "--value-size V [--keys N]\n"
               "                 [--read-percent P] [--no-load]\n"
               "Closed-loop load: C clients (default 16) with one request in flight each, for\n"
               "S seconds (10), keys of K bytes (16) drawn from N keys (100000), values of V\n"
               "bytes (100). get and mixed (P% reads, default 50) load the N keys first\n"
               "unless --no-load. Prints ops/s and latency p50/p99/p999.\n";
    bench_opts_t o = {.clients = 16,
                      .duration = 10,
                      .key_size = 16,
                      .value_size = 100,
                      .keys = 100000,
                      .read_pct = 50};
    static const struct option opts[] = {CTL_COMMON_OPTS,
                                         {"clients", required_argument, 0, OPT_CLIENTS},
                                         {"duration", required_argument, 0, OPT_DURATION},
                                         {"key-size", required_argument, 0, OPT_KEY_SIZE},
                                         {"value-size", required_argument, 0, OPT_VALUE_SIZE},
                                         {"keys", required_argument, 0, OPT_KEYS},
                                         {"read-percent", required_argument, 0, OPT_READS},
                                         {"no-load", no_argument, 0, OPT_NO_LOAD},
                                         {0, 0, 0, 0}};
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        rc = opt >= OPT_FIRST_CMD ? bench_opt(c, opt, &o) : ctl_common(c, opt, argc, argv);
        if (rc >= 0)
            return rc;
    }
    if ((rc = ctl_want_args(c, argc - optind, 1, 1)) >= 0)
        return rc;
    const char *name = argv[optind];
    int mode = !strcmp(name, "put")     ? MODE_PUT
               : !strcmp(name, "get")   ? MODE_GET
               : !strcmp(name, "mixed") ? MODE_MIXED
                                        : -1;
    if (mode < 0)
        return ctl_fail(c, EXIT_USAGE, "workload is put, get or mixed, not '%s'", name);
    if (o.read_pct_set && mode != MODE_MIXED)
        return ctl_fail(c, EXIT_USAGE, "--read-percent is for the mixed workload, not '%s'", name);
    if (o.no_load && mode == MODE_PUT)
        return ctl_fail(c, EXIT_USAGE, "--no-load is for the get and mixed workloads");
    char probe[32];
    if (o.key_size < (size_t)snprintf(probe, sizeof probe, "%" PRIu64, o.keys - 1))
        return ctl_fail(c, EXIT_USAGE, "--key-size %" PRIu64 " is too short for %" PRIu64 " keys",
                        o.key_size, o.keys);
    bench_t b = {.o = &o, .mode = mode, .rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid()};
    b.s = ctl_connect(c);
    if (!b.s)
        return ctl_no_client(c);
    b.value = malloc(o.value_size + 1);
    for (uint64_t i = 0; b.value && i < o.value_size; i++)
        b.value[i] = (char)('a' + rnd(&b) % 26);
    rc = -1;
    if (mode != MODE_PUT && !o.no_load)
        rc = load_keys(c, &b);
    if (rc < 0) {
        fprintf(stderr,
                "bench %s: %" PRIu64 " clients, %" PRIu64 " s, keys %" PRIu64 " B of %" PRIu64
                ", values %" PRIu64 " B, broker %s\n",
                name, o.clients, o.duration, o.key_size, o.keys, o.value_size, shoal_endpoint(b.s));
        double secs = run_measured(&b, name);
        bool interrupted = zsys_interrupted;
        if (b.n_lat) /* qsort of NULL, even for 0 items, is undefined */
            qsort(b.lat, b.n_lat, sizeof *b.lat, cmp_u32);
        double rate = secs > 0 ? b.ops / secs : 0;
        if (c->json)
            printf("{\"workload\":\"%s\",\"clients\":%" PRIu64 ",\"seconds\":%.1f,\"ops\":%" PRIu64
                   ",\"ops_per_sec\":%.0f,\"errors\":%" PRIu64 ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                   "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"interrupted\":%s}\n",
                   name, o.clients, secs, b.ops, rate, b.errors, pct(&b, 0.5), pct(&b, 0.99),
                   pct(&b, 0.999), pct(&b, 1.0), interrupted ? "true" : "false");
        else
            printf("%s: %" PRIu64 " ops in %.1f s = %.0f ops/s, %" PRIu64 " errors%s\n"
                   "latency ms: p50 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
                   name, b.ops, secs, rate, b.errors,
                   interrupted ? " (interrupted: partial run)" : "", pct(&b, 0.5), pct(&b, 0.99),
                   pct(&b, 0.999), pct(&b, 1.0));
        rc = interrupted  ? EXIT_INTERRUPTED
             : b.ops == 0 ? ctl_fail(c, EXIT_UNAVAIL, "no operation succeeded: %s",
                                     b.last_error[0] ? b.last_error : "no answers")
                          : EXIT_OK;
    }
    free(b.lat);
    free(b.value);
    shoal_destroy(&b.s);
    return rc;
}
