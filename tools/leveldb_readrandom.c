/* leveldb_readrandom.c - LevelDB's readrandom alone (Debian's LevelDB through its C API), so
 * it can run interleaved with lsm_bench's readrandom on a compacted DB (docs/BENCHMARKS.md,
 * session 13). Not built by CMake (LevelDB is not a project dependency):
 *   cc -O2 -o leveldb_readrandom tools/leveldb_readrandom.c -lleveldb
 *   leveldb_readrandom fill DIR N   (N puts of the harness's keys and values, no compression,
 *                                    64 MiB write buffer, then compact_range)
 *   leveldb_readrandom read DIR N   (N gets of uniformly random keys) */
#include <leveldb/c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char **argv)
{
    long N = atol(argv[3]);
    char *e = NULL;
    char k[32], v[100];
    leveldb_options_t *o = leveldb_options_create();
    leveldb_options_set_create_if_missing(o, 1);
    leveldb_options_set_write_buffer_size(o, 64u << 20);
    leveldb_options_set_compression(o, leveldb_no_compression);
    leveldb_t *db = leveldb_open(o, argv[2], &e);
    if (e) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    if (!strcmp(argv[1], "fill")) {
        leveldb_writeoptions_t *w = leveldb_writeoptions_create();
        for (long i = 0; i < N; i++) {
            snprintf(k, sizeof k, "%016llu", (unsigned long long)i);
            for (int j = 0; j < 50; j++)
                v[j] = ' ' + (char)(rnd() % 95);
            memcpy(v + 50, v, 50);
            leveldb_put(db, w, k, 16, v, 100, &e);
            if (e)
                return 1;
        }
        leveldb_compact_range(db, NULL, 0, NULL, 0);
    } else {
        leveldb_readoptions_t *r = leveldb_readoptions_create();
        long found = 0;
        double t = now();
        for (long i = 0; i < N; i++) {
            snprintf(k, sizeof k, "%016llu", (unsigned long long)(rnd() % N));
            size_t vl;
            char *x = leveldb_get(db, r, k, 16, &vl, &e);
            if (x) {
                found += vl == 100;
                leveldb_free(x);
            }
        }
        t = now() - t;
        printf("leveldb readrandom ops_s=%.0f found=%ld\n", N / t, found);
    }
    leveldb_close(db);
    return 0;
}
