/* lsm_bench.c - benchmark of the storage engine, shaped like db_bench and like the
 * reference harness (/work/shared/bench/lsmbench.c) so figures compare side by side:
 * keys are "%0Nllu" of an index, values are V bytes of printable noise whose halves repeat
 * (about 50% compressible), fills measure the put loop only (background work may go on).
 *
 *   lsm_bench --dir D --num N --key-size 16 --value-size 100
 *             --benchmarks fillseq,fillrandom,overwrite,readrandom,compact,readrandom,
 *                          readseq,seekrandom,fillsync
 *             [--compression 0|1] [--compression-level L] [--write-buffer-size BYTES]
 *             [--cache-size BYTES] [--block-size BYTES] [--mmap 0|1|2|3 (lsm.h)]
 *             [--sync-num 10000] [--json] [--keep (leave the database at the end)]
 *
 * fillseq, fillrandom and fillsync start from an empty database; the others use the
 * current one. readrandom before any `compact` since the last fill reports as
 * readrandom_nocompact. Each benchmark prints ops/s, MB/s (key + value bytes), latency
 * p50/p99/p999 (sampled every 8th op), on-disk size, peak RSS (getrusage: includes mapped
 * table pages, as the reference harness measures) and the anonymous RSS at the end. */
#define _GNU_SOURCE
#include <ftw.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/error.h"
#include "engine/lsm/lsm.h"

typedef struct {
    const char *dir;
    long num, sync_num;
    int key_size, value_size;
    char *benchmarks;
    bool compression, json;
    int mmap; /* -1: the engine's default */
    bool keep;
    int level;
    size_t write_buffer, cache, block_size;
    long budget; /* -1: the engine's default */
} config_t;

static uint64_t rs = 88172645463325252ULL;

static inline uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double rss_mb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / 1024.0;
}

/* A "Field: N kB" line of /proc/self/status, in MiB. */
static double status_mb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && sscanf(line + n, ": %lf", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb / 1024.0;
}

/* Anonymous resident memory now (heap, arenas, cache), without mapped table pages. */
static double anon_mb(void)
{
    return status_mb("RssAnon");
}

static long long du_total;

static int du_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    if (f == FTW_F)
        du_total += s->st_size;
    return 0;
}

static double du_mb(const char *d)
{
    du_total = 0;
    nftw(d, du_cb, 16, FTW_PHYS);
    return (double)du_total / 1048576.0;
}

/* ---- latency histogram: 1 us .. ~1 s in log-spaced buckets ---- */

#define NBUCKETS 400

typedef struct {
    uint64_t count[NBUCKETS];
    uint64_t n;
} hist_t;

static double log2_approx(double x);

static int bucket_of(double us)
{
    if (us < 1)
        return 0;
    int b = (int)(log2_approx(us) * 20);
    return b >= NBUCKETS ? NBUCKETS - 1 : b;
}

static double log2_approx(double x)
{
    int e = 0;
    while (x >= 2) {
        x /= 2;
        e++;
    }
    return e + (x - 1); /* piecewise-linear log2: fine for percentiles at 3.5% resolution */
}

static double bucket_us(int b)
{
    double v = (double)b / 20, r = 1;
    int e = (int)v;
    for (int i = 0; i < e; i++)
        r *= 2;
    return r * (1 + (v - e));
}

static void hist_add(hist_t *h, double secs)
{
    h->count[bucket_of(secs * 1e6)]++;
    h->n++;
}

static double hist_pct(const hist_t *h, double p)
{
    uint64_t want = (uint64_t)((double)h->n * p), seen = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        seen += h->count[b];
        if (seen > want)
            return bucket_us(b + 1);
    }
    return bucket_us(NBUCKETS);
}

/* ---- data ---- */

static char *valpool;
static size_t poolsz = 1 << 20;

static void make_pool(int vlen)
{
    valpool = malloc(poolsz + (size_t)vlen);
    for (size_t i = 0; i + (size_t)vlen <= poolsz + (size_t)vlen; i += (size_t)vlen) {
        for (int j = 0; j < vlen / 2; j++)
            valpool[i + (size_t)j] = (char)(' ' + (char)(rnd() % 95));
        memcpy(valpool + i + vlen / 2, valpool + i, (size_t)(vlen - vlen / 2));
    }
}

static inline const char *val(const config_t *c, uint64_t i)
{
    return valpool + ((i * (uint64_t)c->value_size) % poolsz);
}

static inline void mkkey(const config_t *c, char *k, uint64_t i)
{
    char t[64];
    snprintf(t, sizeof t, "%0*llu", c->key_size, (unsigned long long)i);
    memcpy(k, t, (size_t)c->key_size);
}

/* ---- runner ---- */

typedef struct {
    config_t *c;
    lsm_t *db;
    bool compacted;
    bool first_json;
    uint64_t *perm;
} bench_t;

static void die(const char *what, int rc)
{
    fprintf(stderr, "lsm_bench: %s: %s\n", what, shoal_strerror(rc));
    exit(1);
}

static void open_db(bench_t *b, bool fresh)
{
    if (b->db)
        lsm_close(&b->db);
    if (fresh)
        lsm_destroy(b->c->dir, NULL);
    lsm_options_t o;
    lsm_options_init(&o);
    o.dir = b->c->dir;
    o.write_buffer_size = b->c->write_buffer;
    o.compression = b->c->compression;
    o.compression_level = b->c->level;
    if (b->c->cache)
        o.block_cache_size = b->c->cache;
    if (b->c->budget >= 0)
        o.memory_budget = (size_t)b->c->budget;
    if (b->c->mmap >= 0)
        o.mmap_reads = b->c->mmap; /* 0 off, 1 on, 2 uncompressed only, 3 unbounded */
    if (b->c->block_size) /* both kinds of table */
        o.block_size = o.compressed_block_size = b->c->block_size;
    char err[512];
    int rc = lsm_open(&o, &b->db, err, sizeof err);
    if (rc) {
        fprintf(stderr, "lsm_bench: open %s: %s\n", b->c->dir, err);
        exit(1);
    }
    b->compacted = false;
}

static void report(bench_t *b, const char *name, long ops, double secs, const hist_t *h,
                   long found, bool show_found)
{
    config_t *c = b->c;
    double mb = (double)ops * (c->key_size + c->value_size) / 1e6 / secs;
    double du = du_mb(c->dir);
    double p50 = h->n ? hist_pct(h, 0.5) : 0, p99 = h->n ? hist_pct(h, 0.99) : 0;
    double p999 = h->n ? hist_pct(h, 0.999) : 0;
    const char *comp = c->compression ? "zstd" : "nocomp";
    if (c->json) {
        printf("%s{\"test\":\"%s\",\"compression\":\"%s\",\"ops\":%ld,\"ops_s\":%.0f,"
               "\"mb_s\":%.2f,\"secs\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
               "\"du_mb\":%.1f,\"rss_peak_mb\":%.1f,\"rss_anon_mb\":%.1f",
               b->first_json ? "[" : ",\n", name, comp, ops, (double)ops / secs, mb, secs, p50,
               p99, p999, du, rss_mb(), anon_mb());
        if (show_found)
            printf(",\"found\":%ld", found);
        printf("}");
        b->first_json = false;
    } else {
        printf("test=shoal_%s_%s ops_s=%.0f mb_s=%.2f secs=%.3f p50_us=%.1f p99_us=%.1f "
               "p999_us=%.1f du_mb=%.1f rss_peak_mb=%.1f rss_anon_mb=%.1f",
               comp, name, (double)ops / secs, mb, secs, p50, p99, p999, du, rss_mb(), anon_mb());
        if (show_found)
            printf(" found=%ld", found);
        printf("\n");
    }
    fflush(stdout);
    if (b->db) { /* mapped tables: what the engine charged against what the kernel maps */
        lsm_stats_t st;
        lsm_stats(b->db, &st);
        fprintf(stderr,
                "lsm_bench: %s: mapped pages %.1f MiB (RssFile %.1f), %llu releases, %llu "
                "reads refused, cache %.1f of %.1f MiB\n",
                name, (double)st.map_resident / 1048576, status_mb("RssFile"),
                (unsigned long long)st.map_releases, (unsigned long long)st.map_refused,
                (double)st.cache_usage / 1048576, (double)st.cache_capacity / 1048576);
    }
}

/* Puts keys idx(i) for i < n, timing every 8th op. */
static void fill(bench_t *b, const char *name, long n, int mode, bool sync)
{
    config_t *c = b->c;
    char k[64];
    hist_t h = {0};
    lsm_write_options_t wo = {.sync = sync};
    double t0 = now();
    for (long i = 0; i < n; i++) {
        uint64_t x = mode == 0 ? (uint64_t)i : mode == 1 ? b->perm[i] : rnd() % (uint64_t)c->num;
        mkkey(c, k, x);
        double s = (i & 7) == 0 ? now() : 0;
        int rc = lsm_put(b->db, &wo, k, (size_t)c->key_size, val(c, x + (mode == 2)),
                         (size_t)c->value_size);
        if (rc)
            die("put", rc);
        if (s > 0)
            hist_add(&h, now() - s);
    }
    report(b, name, n, now() - t0, &h, 0, false);
}

static void readrandom(bench_t *b)
{
    config_t *c = b->c;
    char k[64];
    hist_t h = {0};
    long found = 0;
    double t0 = now();
    for (long i = 0; i < c->num; i++) {
        mkkey(c, k, rnd() % (uint64_t)c->num);
        double s = (i & 7) == 0 ? now() : 0;
        void *v;
        size_t vl;
        int rc = lsm_get(b->db, NULL, k, (size_t)c->key_size, &v, &vl);
        if (rc == 0) {
            found += vl == (size_t)c->value_size;
            free(v);
        } else if (rc != SHOAL_ENOTFOUND) {
            die("get", rc);
        }
        if (s > 0)
            hist_add(&h, now() - s);
    }
    report(b, b->compacted ? "readrandom" : "readrandom_nocompact", c->num, now() - t0, &h,
           found, true);
}

static void readseq(bench_t *b)
{
    lsm_iter_t *it;
    hist_t h = {0};
    long n = 0;
    long long bytes = 0;
    double t0 = now();
    int rc = lsm_iter_new(b->db, NULL, &it);
    if (rc)
        die("iter", rc);
    for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
        size_t kl, vl;
        lsm_iter_key(it, &kl);
        lsm_iter_value(it, &vl);
        bytes += (long long)(kl + vl);
        n++;
    }
    if ((rc = lsm_iter_status(it)) != 0)
        die("readseq", rc);
    lsm_iter_destroy(&it);
    report(b, "readseq", n, now() - t0, &h, n, true);
}

static void seekrandom(bench_t *b)
{
    config_t *c = b->c;
    lsm_iter_t *it;
    char k[64];
    hist_t h = {0};
    long found = 0, n = c->num / 10 > 0 ? c->num / 10 : 1;
    int rc = lsm_iter_new(b->db, NULL, &it);
    if (rc)
        die("iter", rc);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        mkkey(c, k, rnd() % (uint64_t)c->num);
        double s = (i & 7) == 0 ? now() : 0;
        lsm_iter_seek(it, k, (size_t)c->key_size);
        if (lsm_iter_valid(it)) {
            size_t kl;
            const void *kk = lsm_iter_key(it, &kl);
            found += kl == (size_t)c->key_size && !memcmp(kk, k, kl);
        }
        if (s > 0)
            hist_add(&h, now() - s);
    }
    lsm_iter_destroy(&it);
    report(b, "seekrandom", n, now() - t0, &h, found, true);
}

static void compact(bench_t *b)
{
    hist_t h = {0};
    double t0 = now();
    int rc = lsm_compact_range(b->db, NULL, 0, NULL, 0);
    if (rc)
        die("compact", rc);
    b->compacted = true;
    report(b, "compact", 1, now() - t0, &h, 0, false);
    lsm_stats_t st;
    lsm_stats(b->db, &st);
    fprintf(stderr, "lsm_bench: after compact: files per level");
    for (int l = 0; l < LSM_MAX_LEVELS; l++)
        fprintf(stderr, " %d", st.files[l]);
    fprintf(stderr, "; flushes %llu compactions %llu stalls %llu (%.1f ms)\n",
            (unsigned long long)st.flushes, (unsigned long long)st.compactions,
            (unsigned long long)st.stalls, (double)st.stall_micros / 1000);
}

static void run_one(bench_t *b, const char *name)
{
    config_t *c = b->c;
    if (!strcmp(name, "fillseq")) {
        open_db(b, true);
        fill(b, name, c->num, 0, false);
    } else if (!strcmp(name, "fillrandom")) {
        open_db(b, true);
        fill(b, name, c->num, 1, false);
    } else if (!strcmp(name, "overwrite")) {
        if (!b->db)
            open_db(b, false);
        fill(b, name, c->num, 2, false);
        b->compacted = false;
    } else if (!strcmp(name, "fillsync")) {
        open_db(b, true);
        fill(b, name, c->sync_num, 2, true);
    } else {
        if (!b->db)
            open_db(b, false);
        if (!strcmp(name, "readrandom"))
            readrandom(b);
        else if (!strcmp(name, "readseq"))
            readseq(b);
        else if (!strcmp(name, "seekrandom"))
            seekrandom(b);
        else if (!strcmp(name, "compact"))
            compact(b);
        else {
            fprintf(stderr, "lsm_bench: unknown benchmark %s\n", name);
            exit(2);
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: lsm_bench --dir D [--num N] [--key-size K] [--value-size V]\n"
                    "  [--benchmarks a,b,...] [--compression 0|1] [--compression-level L]\n"
                    "  [--write-buffer-size B]"
                    "  [--cache-size B] [--block-size B] [--mmap 0|1|2|3] [--sync-num N] [--json]\n"
                    "  [--memory-budget B] [--keep]\n");
    exit(2);
}

static void parse(int argc, char **argv, config_t *c)
{
    static const struct option opts[] = {
        {"dir", 1, 0, 'd'},         {"num", 1, 0, 'n'},
        {"key-size", 1, 0, 'k'},    {"value-size", 1, 0, 'v'},
        {"benchmarks", 1, 0, 'b'},  {"compression", 1, 0, 'c'},
        {"write-buffer-size", 1, 0, 'w'}, {"cache-size", 1, 0, 'C'},
        {"sync-num", 1, 0, 's'},    {"json", 0, 0, 'j'},
        {"compression-level", 1, 0, 'L'}, {"block-size", 1, 0, 'B'},
        {"mmap", 1, 0, 'M'},        {"keep", 0, 0, 'K'},
        {"memory-budget", 1, 0, 'm'},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': c->dir = optarg; break;
        case 'n': c->num = atol(optarg); break;
        case 'k': c->key_size = atoi(optarg); break;
        case 'v': c->value_size = atoi(optarg); break;
        case 'b': c->benchmarks = strdup(optarg); break;
        case 'c': c->compression = atoi(optarg) != 0; break;
        case 'w': c->write_buffer = (size_t)atoll(optarg); break;
        case 'C': c->cache = (size_t)atoll(optarg); break;
        case 'B': c->block_size = (size_t)atoll(optarg); break;
        case 'M': c->mmap = atoi(optarg); break;
        case 's': c->sync_num = atol(optarg); break;
        case 'j': c->json = true; break;
        case 'L': c->level = atoi(optarg); break;
        case 'K': c->keep = true; break;
        case 'm': c->budget = atol(optarg); break;
        default: usage();
        }
    }
    if (!c->dir || c->num <= 0 || c->key_size < 1 || c->key_size > 40 || c->value_size < 2)
        usage();
}

int main(int argc, char **argv)
{
    config_t c = {.num = 1000000, .sync_num = 10000, .key_size = 16, .value_size = 100,
                  .write_buffer = 64u << 20, .level = -1, .mmap = -1, .budget = -1};
    parse(argc, argv, &c);
    if (!c.benchmarks)
        c.benchmarks = strdup("fillseq,fillrandom,overwrite,readrandom,compact,readrandom,"
                              "readseq,seekrandom,fillsync");
    rs ^= (uint64_t)time(NULL) * 2654435761u;
    make_pool(c.value_size);
    bench_t b = {.c = &c, .first_json = true};
    b.perm = malloc(sizeof *b.perm * (size_t)c.num);
    for (long i = 0; i < c.num; i++)
        b.perm[i] = (uint64_t)i;
    for (long i = c.num - 1; i > 0; i--) {
        long j = (long)(rnd() % (uint64_t)(i + 1));
        uint64_t x = b.perm[i];
        b.perm[i] = b.perm[j];
        b.perm[j] = x;
    }
    for (char *save, *name = strtok_r(c.benchmarks, ",", &save); name;
         name = strtok_r(NULL, ",", &save))
        run_one(&b, name);
    if (c.json)
        printf("%s\n", b.first_json ? "[]" : "]");
    lsm_close(&b.db);
    if (!c.keep) /* --keep: leave the database for a later run (profiling one phase) */
        lsm_destroy(c.dir, NULL);
    free(b.perm);
    free(valpool);
    free(c.benchmarks);
    return 0;
}
