/* test_lsm_format.c - unit tests of the engine's encodings: varints, blocks (prefix
 * compression, restarts, seek/next/prev), the bloom filter, write batches, version edits and
 * the record log (torn tail vs corruption). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/block.h"
#include "engine/lsm/bloom.h"
#include "engine/lsm/coding.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/manifest.h"
#include "engine/lsm/wal.h"

static void test_varint(void **state)
{
    uint64_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
    char buf[16];
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char *end = lsm_put_varint64(buf, vals[i]);
        assert_int_equal(end - buf, lsm_varint_len(vals[i]));
        uint64_t v;
        assert_ptr_equal(lsm_get_varint64(buf, end, &v), end);
        assert_true(v == vals[i]);
        /* Truncated input is refused, never over-read. */
        assert_null(lsm_get_varint64(buf, end - 1, &v));
    }
    uint32_t v32;
    lsm_put_varint64(buf, (uint64_t)UINT32_MAX + 1);
    assert_null(lsm_get_varint32(buf, buf + 10, &v32));
}

static lsm_slice_t ikey(char *buf, int i, uint64_t seq)
{
    char k[32];
    int n = snprintf(k, sizeof k, "key%06d", i);
    return lsm_make_ikey(buf, k, (size_t)n, seq, LSM_TYPE_VALUE);
}

static void build_block(lsm_block_builder_t *b, int n, lsm_slice_t *out)
{
    char kb[64], vb[32];
    lsm_block_builder_init(b, 4);
    for (int i = 0; i < n; i++) {
        int vn = snprintf(vb, sizeof vb, "v%d", i);
        assert_int_equal(lsm_block_builder_add(b, ikey(kb, i * 2, 5), lsm_slice(vb, (size_t)vn)), 0);
    }
    assert_int_equal(lsm_block_builder_finish(b, out), 0);
}

static void test_block(void **state)
{
    lsm_block_builder_t b;
    lsm_slice_t blk;
    build_block(&b, 50, &blk);
    lsm_block_iter_t it = {0};
    lsm_block_iter_init(&it, blk.data, blk.len);
    int n = 0;
    char kb[64];
    for (lsm_block_iter_seek_first(&it); lsm_block_iter_valid(&it); lsm_block_iter_next(&it)) {
        assert_int_equal(lsm_ikey_cmp(lsm_block_iter_key(&it), ikey(kb, n * 2, 5)), 0);
        n++;
    }
    assert_int_equal(n, 50);
    assert_int_equal(it.status, 0);
    /* Seek to an absent key lands on the next one; prev walks back across restarts. */
    lsm_block_iter_seek(&it, ikey(kb, 21, 5));
    assert_true(lsm_block_iter_valid(&it));
    assert_int_equal(lsm_ikey_cmp(lsm_block_iter_key(&it), ikey(kb, 22, 5)), 0);
    for (int i = 10; i >= 0; i--) {
        lsm_block_iter_prev(&it);
        assert_true(lsm_block_iter_valid(&it));
        assert_int_equal(lsm_ikey_cmp(lsm_block_iter_key(&it), ikey(kb, i * 2, 5)), 0);
    }
    lsm_block_iter_prev(&it);
    assert_false(lsm_block_iter_valid(&it));
    lsm_block_iter_seek_last(&it);
    assert_int_equal(lsm_ikey_cmp(lsm_block_iter_key(&it), ikey(kb, 98, 5)), 0);
    lsm_block_iter_seek(&it, ikey(kb, 99, 5));
    assert_false(lsm_block_iter_valid(&it));
    assert_int_equal(it.status, 0);
    lsm_block_iter_free(&it);
    lsm_block_builder_free(&b);
}

static void test_block_malformed(void **state)
{
    lsm_block_builder_t b;
    lsm_slice_t blk;
    build_block(&b, 20, &blk);
    char *copy = malloc(blk.len);
    lsm_block_iter_t it = {0};
    /* Restart count beyond the block: refused at init. */
    memcpy(copy, blk.data, blk.len);
    lsm_put_fixed32(copy + blk.len - 4, 100000);
    lsm_block_iter_init(&it, copy, blk.len);
    assert_int_equal(it.status, SHOAL_ECORRUPT);
    assert_false(lsm_block_iter_valid(&it));
    /* A shared length larger than the previous key: corrupt, not an over-read. */
    memcpy(copy, blk.data, blk.len);
    copy[0] = 50;
    lsm_block_iter_init(&it, copy, blk.len);
    lsm_block_iter_seek_first(&it);
    assert_int_equal(it.status, SHOAL_ECORRUPT);
    lsm_block_iter_init(&it, copy, 3);
    assert_int_equal(it.status, SHOAL_ECORRUPT);
    lsm_block_iter_free(&it);
    lsm_block_builder_free(&b);
    free(copy);
}

static void test_bloom(void **state)
{
    enum { N = 10000 };
    uint64_t *h = malloc(N * sizeof *h);
    char k[32];
    for (int i = 0; i < N; i++)
        h[i] = lsm_bloom_hash(lsm_slice(k, (size_t)snprintf(k, sizeof k, "in%d", i)));
    lsm_buf_t f = {0};
    assert_int_equal(lsm_bloom_build(h, N, 10, &f), 0);
    lsm_slice_t fs = lsm_slice(f.data, f.len);
    for (int i = 0; i < N; i++)
        assert_true(lsm_bloom_may_contain(fs, h[i])); /* no false negatives, ever */
    int fp = 0;
    for (int i = 0; i < N; i++)
        fp += lsm_bloom_may_contain(
            fs, lsm_bloom_hash(lsm_slice(k, (size_t)snprintf(k, sizeof k, "out%d", i))));
    assert_true(fp < N * 3 / 100); /* ~1% expected at 10 bits per key */
    /* A malformed filter answers "may contain" (slower, never wrong). */
    assert_true(lsm_bloom_may_contain(lsm_slice(f.data, 7), 12345));
    lsm_buf_free(&f);
    free(h);
}

typedef struct {
    int n;
    char keys[8][16];
    int types[8];
} seen_t;

static int batch_cb(void *arg, uint64_t seq, int type, lsm_slice_t k, lsm_slice_t v)
{
    seen_t *s = arg;
    assert_true(seq == 100 + (uint64_t)s->n);
    snprintf(s->keys[s->n], 16, "%.*s", (int)k.len, k.data);
    s->types[s->n++] = type;
    return 0;
}

static void test_batch(void **state)
{
    lsm_batch_t *b = lsm_batch_new();
    assert_int_equal(lsm_batch_put(b, "a", 1, "1", 1), 0);
    assert_int_equal(lsm_batch_delete(b, "b", 1), 0);
    assert_int_equal(lsm_batch_put(b, "c", 1, "", 0), 0);
    assert_int_equal(lsm_batch_count(b), 3);
    lsm_put_fixed64(b->rep.data, 100);
    seen_t s = {0};
    lsm_slice_t rep = lsm_slice(b->rep.data, b->rep.len);
    assert_int_equal(lsm_batch_iterate(rep, batch_cb, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[1], "b");
    assert_int_equal(s.types[1], LSM_TYPE_DELETE);
    /* Truncations and a wrong count are refused. */
    for (size_t cut = 1; cut < rep.len; cut++)
        assert_int_equal(lsm_batch_check(lsm_slice(rep.data, rep.len - cut)), SHOAL_ECORRUPT);
    lsm_put_fixed32(b->rep.data + 8, 4);
    assert_int_equal(lsm_batch_check(rep), SHOAL_ECORRUPT);
    lsm_batch_clear(b);
    assert_int_equal(lsm_batch_count(b), 0);
    assert_int_equal(lsm_batch_size(b), LSM_BATCH_HEADER);
    lsm_batch_destroy(&b);
    assert_null(b);
}

static void test_edit(void **state)
{
    lsm_edit_t e, d;
    char a[32], z[32];
    lsm_edit_init(&e);
    e.has_log_number = true;
    e.log_number = 7;
    e.has_last_seq = true;
    e.last_seq = 99;
    assert_int_equal(lsm_edit_delete_file(&e, 2, 11), 0);
    assert_int_equal(lsm_edit_add_file(&e, 3, 12, 4096, ikey(a, 1, 3), ikey(z, 9, 3)), 0);
    lsm_buf_t buf = {0};
    assert_int_equal(lsm_edit_encode(&e, &buf), 0);
    assert_int_equal(lsm_edit_decode(lsm_slice(buf.data, buf.len), &d), 0);
    assert_true(d.has_log_number && d.log_number == 7 && !d.has_next_file);
    assert_true(d.last_seq == 99);
    assert_int_equal(d.ndeleted, 1);
    assert_int_equal(d.deleted[0].level, 2);
    assert_int_equal(d.nadded, 1);
    assert_true(d.added[0].number == 12 && d.added[0].size == 4096 && d.added[0].level == 3);
    lsm_edit_free(&d);
    /* A cut inside a field is refused; a cut between fields is a shorter valid edit (the
     * record checksum, not the edit, guards against that), so it must lack the added file. */
    for (size_t cut = 1; cut < buf.len; cut++) {
        int rc = lsm_edit_decode(lsm_slice(buf.data, buf.len - cut), &d);
        assert_true(rc == SHOAL_ECORRUPT || (rc == 0 && d.nadded == 0));
        lsm_edit_free(&d);
    }
    buf.data[0] = 42; /* unknown tag */
    assert_int_equal(lsm_edit_decode(lsm_slice(buf.data, buf.len), &d), SHOAL_ECORRUPT);
    lsm_buf_free(&buf);
    lsm_edit_free(&e);
}

/* Writes three records to a mem-env log and returns its bytes. */
static char *three_records(size_t *len)
{
    lsm_env_t *env = lsm_env_mem_new();
    lsm_wal_writer_t w;
    assert_int_equal(lsm_wal_writer_open(env, "/m/log", LSM_OPEN_WRITE, &w), 0);
    assert_int_equal(lsm_wal_add_copy(&w, "first", 5), 0);
    assert_int_equal(lsm_wal_add_copy(&w, "second!", 7), 0);
    assert_int_equal(lsm_wal_add_copy(&w, "third", 5), 0);
    lsm_wal_writer_close(&w);
    char *data;
    assert_int_equal(lsm_read_file(env, "/m/log", &data, len), 0);
    lsm_env_mem_destroy(&env);
    return data;
}

static int count_records(const char *data, size_t len, bool *torn, size_t *bad_off)
{
    lsm_wal_reader_t r;
    lsm_slice_t p;
    lsm_errlog_t log;
    lsm_errlog_init(&log);
    lsm_wal_reader_init(&r, data, len, "/m/log", &log);
    int n = 0, rc;
    while ((rc = lsm_wal_read(&r, &p)) == 1)
        n++;
    *torn = r.torn;
    *bad_off = r.off;
    if (rc < 0) {
        char msg[512];
        lsm_errlog_copy(&log, msg, sizeof msg);
        assert_non_null(strstr(msg, "/m/log at offset"));
        n = rc;
    }
    lsm_errlog_destroy(&log);
    return n;
}

static void test_wal_torn_and_corrupt(void **state)
{
    size_t len, off;
    bool torn;
    char *d = three_records(&len);
    assert_int_equal(count_records(d, len, &torn, &off), 3);
    assert_false(torn);
    /* Every cut inside the last record is a torn tail: two records survive. */
    for (size_t cut = 1; cut < 8 + 5; cut++) {
        assert_int_equal(count_records(d, len - cut, &torn, &off), 2);
        assert_true(torn);
    }
    /* A flipped byte in the middle record is corruption (a good record follows). */
    d[8 + 5 + 8 + 2] ^= 1;
    assert_int_equal(count_records(d, len, &torn, &off), SHOAL_ECORRUPT);
    assert_int_equal(off, 8 + 5);
    d[8 + 5 + 8 + 2] ^= 1;
    /* A flipped byte in the last record looks torn: the record is dropped, nothing else. */
    d[len - 1] ^= 1;
    assert_int_equal(count_records(d, len, &torn, &off), 2);
    assert_true(torn);
    free(d);
}

/* A mapped WAL (LSM_OPEN_LOG) left by a crash runs on in zeros it allocated ahead: that is
 * the end of the log, whatever its length. Zeros with a good record after them are not. */
static void test_wal_zero_tail(void **state)
{
    size_t len, off;
    bool torn;
    char *d3 = three_records(&len);
    size_t rec1 = 8 + 5, tail = 10000;
    char *d = calloc(1, len + tail);
    memcpy(d, d3, len);
    assert_int_equal(count_records(d, len + tail, &torn, &off), 3);
    assert_false(torn);
    assert_int_equal(off, len);
    /* A record cut inside, then zeros (the process died in the middle of the copy). */
    memset(d + len - 3, 0, 3);
    assert_int_equal(count_records(d, len + tail, &torn, &off), 2);
    assert_true(torn);
    /* The middle record zeroed, the last intact after it: damage, not an end. */
    memcpy(d, d3, len);
    memset(d + rec1, 0, 8 + 7);
    assert_int_equal(count_records(d, len + tail, &torn, &off), SHOAL_ECORRUPT);
    assert_int_equal(off, rec1);
    free(d);
    free(d3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint),   cmocka_unit_test(test_block),
        cmocka_unit_test(test_block_malformed), cmocka_unit_test(test_bloom),
        cmocka_unit_test(test_batch),    cmocka_unit_test(test_edit),
        cmocka_unit_test(test_wal_torn_and_corrupt), cmocka_unit_test(test_wal_zero_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
