/* test_lsm_table.c - unit tests of the in-memory and on-disk containers: the arena skiplist
 * memtable (ordering, versions, concurrent readers), sorted tables (build, read back with and
 * without compression, point lookups through bloom and index, iteration both ways) and the
 * sharded LRU block cache (bounded usage, pinning). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/lsm/block.h"
#include "engine/lsm/bloom.h"
#include "engine/lsm/cache.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/fence.h"
#include "engine/lsm/memtable.h"
#include "engine/lsm/table.h"

static lsm_slice_t key_s(char *buf, int i)
{
    return lsm_slice(buf, (size_t)snprintf(buf, 32, "key%07d", i));
}

static void test_memtable_versions(void **state)
{
    lsm_memtable_t *m = lsm_memtable_new(1, 1 << 20);
    char k[32];
    assert_int_equal(lsm_memtable_add(m, 10, LSM_TYPE_VALUE, key_s(k, 5), lsm_slice("a", 1)), 0);
    assert_int_equal(lsm_memtable_add(m, 20, LSM_TYPE_DELETE, key_s(k, 5), lsm_slice("", 0)), 0);
    assert_int_equal(lsm_memtable_add(m, 30, LSM_TYPE_VALUE, key_s(k, 5), lsm_slice("c", 1)), 0);
    lsm_slice_t v;
    bool del;
    assert_true(lsm_memtable_get(m, key_s(k, 5), 15, &v, &del));
    assert_false(del);
    assert_memory_equal(v.data, "a", 1);
    assert_true(lsm_memtable_get(m, key_s(k, 5), 25, &v, &del));
    assert_true(del);
    assert_true(lsm_memtable_get(m, key_s(k, 5), 99, &v, &del));
    assert_memory_equal(v.data, "c", 1);
    assert_false(lsm_memtable_get(m, key_s(k, 5), 5, &v, &del)); /* before the first write */
    assert_false(lsm_memtable_get(m, key_s(k, 6), 99, &v, &del));
    lsm_memtable_unref(m);
}

static void test_memtable_order_and_iter(void **state)
{
    lsm_memtable_t *m = lsm_memtable_new(1, 1 << 20);
    char k[32];
    for (int i = 0; i < 5000; i++) { /* scrambled insert order */
        int x = (i * 7919) % 5000;
        assert_int_equal(
            lsm_memtable_add(m, (uint64_t)i + 1, LSM_TYPE_VALUE, key_s(k, x), lsm_slice(k, 3)), 0);
    }
    lsm_iiter_t *it = lsm_memtable_iter(m);
    lsm_memtable_unref(m); /* the iterator keeps it alive */
    int n = 0;
    char prev[64] = "";
    size_t prev_len = 0;
    for (lsm_iiter_seek_first(it); lsm_iiter_valid(it); lsm_iiter_next(it), n++) {
        lsm_slice_t ik = lsm_iiter_key(it);
        if (n)
            assert_true(lsm_ikey_cmp(lsm_slice(prev, prev_len), ik) < 0);
        memcpy(prev, ik.data, ik.len);
        prev_len = ik.len;
    }
    assert_int_equal(n, 5000);
    for (lsm_iiter_seek_last(it), n = 0; lsm_iiter_valid(it); lsm_iiter_prev(it))
        n++;
    assert_int_equal(n, 5000);
    char ik[64];
    lsm_iiter_seek(it, lsm_make_ikey(ik, "key0002500", 10, LSM_MAX_SEQ, LSM_TYPE_SEEK));
    assert_memory_equal(lsm_iiter_key(it).data, "key0002500", 10);
    lsm_iiter_destroy(it);
}

/* Staged entries (a write group's, inserted side by side, lsm_skiplist_insert_many) land
 * where single inserts would: groups of 1 to 40 entries in scrambled order, with several
 * versions of one key in a group and entries between two of the group's own, after and
 * between single inserts. Every level of the list stays sorted, every entry is found. */
static void test_memtable_staged_groups(void **state)
{
    (void)state;
    lsm_memtable_t *m = lsm_memtable_new(1, 4 << 20);
    lsm_memtable_staged_t st = {.n = 0};
    char k[32];
    uint64_t seq = 1;
    int total = 0;
    for (int round = 0; round < 300; round++) {
        int group = 1 + round % 40;
        for (int j = 0; j < group; j++, total++) {
            int x = (int)((seq * 7919) % 3000); /* repeats: versions of one key */
            assert_int_equal(
                lsm_memtable_stage(m, &st, seq++, LSM_TYPE_VALUE, key_s(k, x), lsm_slice(k, 10)),
                0);
        }
        lsm_memtable_add_staged(m, &st);
        assert_int_equal(st.n, 0);
        int x = (int)((seq * 104729) % 3000);
        assert_int_equal(lsm_memtable_add(m, seq++, LSM_TYPE_VALUE, key_s(k, x), lsm_slice(k, 10)),
                         0);
        total++;
    }
    assert_int_equal(atomic_load(&m->entries), (uint64_t)total);
    int height = atomic_load(&m->list.height);
    for (int level = 0; level < height; level++) {
        int n = 0;
        const lsm_sl_node_t *prev = NULL;
        for (const lsm_sl_node_t *x = atomic_load(&m->list.head->next[level]); x;
             x = atomic_load(&((lsm_sl_node_t *)x)->next[level]), n++) {
            if (prev)
                assert_true(
                    lsm_ikey_cmp(lsm_slice(prev->key, prev->klen), lsm_slice(x->key, x->klen)) < 0);
            prev = x;
        }
        if (level == 0)
            assert_int_equal(n, total);
    }
    for (uint64_t s = 1; s < seq; s++) { /* each version is found at its own sequence */
        lsm_slice_t v;
        bool del;
        int x1 = (int)((s * 7919) % 3000), x2 = (int)((s * 104729) % 3000);
        bool a = lsm_memtable_get(m, key_s(k, x1), s, &v, &del);
        bool b = lsm_memtable_get(m, key_s(k, x2), s, &v, &del);
        assert_true(a || b);
    }
    lsm_memtable_unref(m);
}

/* A 64 MiB write buffer takes 2 MiB huge-page blocks (mapped, unmapped when the memtable
 * goes): entries spread over several blocks read back whole and in order, usage counts whole
 * blocks, and an entry larger than a block gets a block of its own. */
static void test_memtable_huge_blocks(void **state)
{
    lsm_memtable_t *m = lsm_memtable_new(1, (size_t)64 << 20);
    assert_int_equal(m->arena.block, LSM_ARENA_HUGE);
    char k[32], v[1000];
    int n = 12000; /* ~1.1 KiB per entry: about 7 blocks */
    for (int i = 0; i < n; i++) {
        int x = (i * 7919) % n;
        memset(v, 'a' + x % 26, sizeof v);
        assert_int_equal(lsm_memtable_add(m, (uint64_t)i + 1, LSM_TYPE_VALUE, key_s(k, x),
                                          lsm_slice(v, sizeof v)),
                         0);
    }
    size_t big_len = LSM_ARENA_HUGE + 4096;
    char *big = malloc(big_len);
    memset(big, 'Z', big_len);
    size_t before = lsm_memtable_usage(m);
    assert_int_equal(before % LSM_ARENA_HUGE, 0);
    assert_true(before >= (size_t)n * sizeof v);
    assert_int_equal(lsm_memtable_add(m, (uint64_t)n + 1, LSM_TYPE_VALUE, lsm_slice("zzbig", 5),
                                      lsm_slice(big, big_len)),
                     0);
    assert_true(lsm_memtable_usage(m) > before + big_len);
    lsm_slice_t got;
    bool del;
    assert_true(lsm_memtable_get(m, lsm_slice("zzbig", 5), LSM_MAX_SEQ, &got, &del));
    assert_int_equal(got.len, big_len);
    assert_memory_equal(got.data, big, big_len);
    free(big);
    lsm_iiter_t *it = lsm_memtable_iter(m);
    lsm_memtable_unref(m);
    int i = 0;
    for (lsm_iiter_seek_first(it); lsm_iiter_valid(it) && i < n; lsm_iiter_next(it), i++) {
        key_s(k, i);
        assert_memory_equal(lsm_iiter_key(it).data, k, 10);
        lsm_slice_t val = lsm_iiter_value(it);
        assert_int_equal(val.len, sizeof v);
        assert_true(val.data[0] == 'a' + i % 26 && val.data[sizeof v - 1] == 'a' + i % 26);
    }
    assert_int_equal(i, n);
    lsm_iiter_destroy(it);
}

typedef struct {
    lsm_memtable_t *m;
    atomic_int stop;
    long reads;
} reader_t;

static void *reader(void *p)
{
    reader_t *r = p;
    char k[32];
    while (!atomic_load(&r->stop)) {
        lsm_slice_t v;
        bool del;
        for (int i = 0; i < 2000; i += 13)
            if (lsm_memtable_get(r->m, key_s(k, i), LSM_MAX_SEQ, &v, &del))
                assert_memory_equal(v.data, k, v.len); /* never a torn entry */
        r->reads++;
    }
    return NULL;
}

static void test_memtable_concurrent_readers(void **state)
{
    reader_t r = {.m = lsm_memtable_new(1, 1 << 20)};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader, &r);
    char k[32];
    for (int i = 0; i < 2000; i++) {
        lsm_slice_t ks = key_s(k, i);
        assert_int_equal(lsm_memtable_add(r.m, (uint64_t)i + 1, LSM_TYPE_VALUE, ks, ks), 0);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    lsm_memtable_unref(r.m);
}

enum { RAW, ZSTD_DICT, ZSTD_NO_DICT }; /* table kinds: the last is the older layout */

static void build_table(lsm_env_t *env, int kind, int n, uint64_t *size)
{
    lsm_table_options_t o = {.block_size = 512,
                             .compression = kind != RAW,
                             .compression_level = 1,
                             .bloom_bits_per_key = 10,
                             .no_dict = kind == ZSTD_NO_DICT};
    lsm_table_builder_t *b;
    assert_int_equal(lsm_table_builder_new(env, "/t/1.sst", &o, &b), 0);
    char k[32], ik[64], v[128];
    for (int i = 0; i < n; i++) {
        lsm_slice_t ks = key_s(k, i * 2);
        int vn = snprintf(v, sizeof v, "value-%d-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i);
        assert_int_equal(
            lsm_table_builder_add(b, lsm_make_ikey(ik, ks.data, ks.len, 7, LSM_TYPE_VALUE),
                                  lsm_slice(v, (size_t)vn)),
            0);
    }
    assert_int_equal(lsm_table_builder_entries(b), (uint64_t)n);
    assert_int_equal(lsm_table_builder_finish(&b, size), 0);
    assert_null(b);
}

typedef struct {
    char val[128];
    size_t len;
    char key[64];
    size_t klen;
} got_t;

static void get_cb(void *arg, lsm_slice_t ik, lsm_slice_t v)
{
    got_t *g = arg;
    memcpy(g->val, v.data, v.len);
    g->len = v.len;
    memcpy(g->key, ik.data, ik.len);
    g->klen = ik.len;
}

/* Where the stored block starting at `from` ends: the first position whose trailer checks
 * out for the bytes before it (blocks follow each other with no gap). -1 if none. */
static long block_end(const char *buf, size_t from, size_t got)
{
    for (size_t e = from + 1; e + LSM_BLOCK_TRAILER <= got; e++) {
        int ty = (unsigned char)buf[e];
        if (ty <= LSM_BLOCK_ZSTD_DICT &&
            lsm_get_fixed32(buf + e + 1) == lsm_block_crc(buf + from, e - from, ty))
            return (long)e;
    }
    return -1;
}

/* The footer's magic number and the type byte of the table's second data block. */
static void table_kind(lsm_env_t *env, uint64_t size, uint32_t *magic, int *second_type)
{
    lsm_file_t *f;
    static char buf[32768];
    size_t got;
    assert_int_equal(env->open(env, "/t/1.sst", LSM_OPEN_READ, &f), 0);
    assert_int_equal(env->pread(f, size - 4, buf, 4, &got), 0);
    *magic = lsm_get_fixed32(buf);
    assert_int_equal(env->pread(f, 0, buf, sizeof buf, &got), 0);
    env->close(f);
    long e1 = block_end(buf, 0, got);
    assert_true(e1 > 0);
    long e2 = block_end(buf, (size_t)e1 + LSM_BLOCK_TRAILER, got);
    assert_true(e2 > 0);
    *second_type = (unsigned char)buf[e2];
}

static void table_roundtrip(int kind)
{
    lsm_env_t *env = lsm_env_mem_new();
    lsm_cache_t *cache = lsm_cache_new(64 << 10);
    uint64_t size;
    enum { N = 3000 };
    build_table(env, kind, N, &size);
    uint32_t magic;
    int second;
    table_kind(env, size, &magic, &second);
    /* A dictionary table: 64-byte footer, blocks after the first compressed with it. */
    assert_int_equal(magic, kind == ZSTD_DICT ? LSM_TABLE_MAGIC_DICT : LSM_TABLE_MAGIC);
    if (kind == ZSTD_DICT)
        assert_int_equal(second, LSM_BLOCK_ZSTD_DICT);
    if (kind == ZSTD_NO_DICT)
        assert_int_equal(second, LSM_BLOCK_ZSTD);
    lsm_table_t *t;
    lsm_dctx_pool_t *pool = lsm_dctx_pool_new();
    lsm_table_ctx_t ctx = {env, cache, NULL, pool, false, NULL};
    assert_int_equal(lsm_table_open(&ctx, "/t/1.sst", 1, size, &t), 0);
    assert_int_equal(lsm_table_entries(t), N);
    char k[32], ik[64];
    int misses_by_bloom = 0;
    for (int i = 0; i < 2 * N; i++) {
        lsm_slice_t ks = key_s(k, i);
        got_t g = {0};
        bool found;
        uint64_t h = lsm_bloom_hash(ks);
        if (!lsm_table_may_contain(t, h)) {
            assert_true(i % 2 == 1); /* no false negatives */
            misses_by_bloom++;
            continue;
        }
        assert_int_equal(lsm_table_get(t, lsm_make_ikey(ik, ks.data, ks.len, 9, LSM_TYPE_SEEK), h,
                                       true, get_cb, &g, &found),
                         0);
        if (i % 2 == 0) {
            char want[128];
            int wn = snprintf(want, sizeof want,
                              "value-%d-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i / 2);
            assert_true(found);
            assert_int_equal(g.len, wn);
            assert_memory_equal(g.val, want, g.len);
        }
    }
    assert_true(misses_by_bloom > N * 9 / 10);
    lsm_iiter_t *it = lsm_table_iter(t, true);
    int n = 0;
    for (lsm_iiter_seek_first(it); lsm_iiter_valid(it); lsm_iiter_next(it))
        n++;
    assert_int_equal(n, N);
    for (lsm_iiter_seek_last(it), n = 0; lsm_iiter_valid(it); lsm_iiter_prev(it))
        n++;
    assert_int_equal(n, N);
    assert_int_equal(lsm_iiter_status(it), 0);
    lsm_iiter_destroy(it);
    lsm_cache_stats_t cs;
    lsm_cache_stats(cache, &cs);
    assert_true(cs.usage <= cs.capacity + 8192); /* bounded (pinned blocks aside) */
    if (kind != RAW) /* compressed blocks go through the cache: it saw hits and misses */
        assert_true(cs.hits > 0 && cs.misses > 0);
    lsm_table_close(&t);
    lsm_dctx_pool_destroy(&pool);
    lsm_cache_destroy(&cache);
    lsm_env_mem_destroy(&env);
}

static void test_table_raw(void **state)
{
    table_roundtrip(RAW);
}

static void test_table_zstd(void **state)
{
    table_roundtrip(ZSTD_DICT);
}

static void test_table_zstd_no_dict(void **state)
{
    table_roundtrip(ZSTD_NO_DICT);
}

static int freed;

static void count_free(void *v)
{
    freed++;
    free(v);
}

static void test_cache_lru_and_pinning(void **state)
{
    lsm_cache_t *c = lsm_cache_new(16 * 1000); /* 16 shards of 1000 bytes */
    freed = 0;
    lsm_cache_handle_t *pinned = lsm_cache_insert(c, 1, 0, malloc(1), 100, count_free);
    for (uint64_t i = 1; i <= 2000; i++)
        lsm_cache_release(c, lsm_cache_insert(c, 2, i, malloc(1), 100, count_free));
    lsm_cache_stats_t st;
    lsm_cache_stats(c, &st);
    assert_true(st.usage <= 16 * 1000);
    assert_true(freed > 1500);                /* old blocks were evicted and freed */
    assert_non_null(lsm_cache_value(pinned)); /* a pinned block survives eviction */
    lsm_cache_release(c, pinned);
    lsm_cache_handle_t *h = lsm_cache_lookup(c, 2, 2000); /* the newest is still there */
    assert_non_null(h);
    lsm_cache_release(c, h);
    assert_null(lsm_cache_lookup(c, 2, 1));
    lsm_cache_destroy(&c);
    assert_int_equal(freed, 2001);
}

/* The fence arrays (fence.h) must pick the same block as a seek of the index block for any
 * key: keys of varied lengths that share a long prefix, fences that tie (keys equal in
 * their 8 bytes after the prefix, keys shorter than prefix + 8), several versions of one
 * user key across blocks, and probes before, between, on and after the separators. */
static lsm_slice_t fence_key(char *buf, int i, uint64_t seq)
{
    /* "pp...p" + 8 digits + a tail whose length varies, so ties on 8 bytes are common */
    int n = snprintf(buf, 64, "prefixprefix%08d%.*s", i / 3, i % 3 * 2, "zzzzzz");
    lsm_put_fixed64(buf + n, lsm_pack_trailer(seq, LSM_TYPE_VALUE));
    return lsm_slice(buf, (size_t)n + LSM_TRAILER);
}

static void test_fence_matches_index(void **state)
{
    (void)state;
    lsm_block_builder_t b;
    lsm_block_builder_init(&b, 1);
    char k[64], v[16];
    int n = 0;
    for (int i = 0; i < 600; i++)
        for (uint64_t seq = 3; seq >= 1 && (i % 5 == 0 || seq == 3); seq--, n++) {
            int vl = snprintf(v, sizeof v, "%c%c", (char)(n & 0x7f), 1);
            assert_int_equal(lsm_block_builder_add(&b, fence_key(k, i, seq), lsm_slice(v, vl)), 0);
        }
    lsm_slice_t blk;
    assert_int_equal(lsm_block_builder_finish(&b, &blk), 0);
    lsm_fence_t f;
    lsm_fence_build(&f, blk.data, blk.len);
    assert_int_equal((long)f.n, n);
    assert_int_equal((long)f.plen, 12 + 5); /* "prefixprefix00000" */
    lsm_block_iter_t it = {0};
    for (int i = -3; i < 610; i++)
        for (uint64_t seq = 0; seq <= 4; seq++) {
            lsm_slice_t probe = fence_key(k, i < 0 ? 0 : i, seq);
            long got = lsm_fence_find(&f, probe);
            lsm_block_iter_init(&it, blk.data, blk.len);
            lsm_block_iter_seek(&it, probe);
            long want = 0;
            if (!lsm_block_iter_valid(&it))
                want = (long)f.n;
            else
                for (; want < (long)f.n; want++)
                    if (f.ent[want].kpos == (uint32_t)(it.value.data - blk.data) - f.ent[want].klen)
                        break;
            assert_int_equal(got, want);
        }
    /* a key without the shared prefix: the fences cannot tell */
    char other[32] = "aaaa";
    lsm_put_fixed64(other + 4, 0);
    assert_int_equal(lsm_fence_find(&f, lsm_slice(other, 12)), -1);
    lsm_block_iter_free(&it);
    lsm_fence_free(&f);
    /* an index with prefix-compressed keys (restart interval > 1) gets no fences */
    lsm_block_builder_reset(&b);
    lsm_block_builder_free(&b);
    lsm_block_builder_init(&b, 16);
    for (int i = 0; i < 40; i++)
        assert_int_equal(lsm_block_builder_add(&b, fence_key(k, i, 1), lsm_slice("x", 1)), 0);
    assert_int_equal(lsm_block_builder_finish(&b, &blk), 0);
    lsm_fence_build(&f, blk.data, blk.len);
    assert_int_equal((long)f.n, 0);
    assert_int_equal(lsm_fence_find(&f, fence_key(k, 3, 1)), -1);
    lsm_block_builder_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memtable_versions),
        cmocka_unit_test(test_memtable_order_and_iter),
        cmocka_unit_test(test_memtable_staged_groups),
        cmocka_unit_test(test_memtable_concurrent_readers),
        cmocka_unit_test(test_memtable_huge_blocks),
        cmocka_unit_test(test_table_raw),
        cmocka_unit_test(test_table_zstd),
        cmocka_unit_test(test_table_zstd_no_dict),
        cmocka_unit_test(test_cache_lru_and_pinning),
        cmocka_unit_test(test_fence_matches_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
