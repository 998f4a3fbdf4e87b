/* fuzz_lsm_block.c - fuzz target for the table block decoders (engine/lsm/block.c and
 * lsm_block_decode in table_reader.c): any input, taken as a stored block (bytes + trailer)
 * or as raw block bytes, must be decoded or refused without reading out of bounds, and an
 * iteration must end (forward and backward) with every key well formed. Stored blocks are
 * decoded with a fixed table dictionary, so zstd blocks of both kinds (type 1 plain, type 2
 * with the dictionary) are reached; the seeds hold valid ones of each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "engine/lsm/block.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/table.h"

/* A check that stays in release builds (assert would vanish under NDEBUG). */
#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c))                                                                          \
            abort();                                                                       \
    } while (0)

static void walk(const char *data, size_t len)
{
    lsm_block_iter_t it = {0};
    lsm_block_iter_init(&it, data, len);
    size_t steps = 0;
    for (lsm_block_iter_seek_first(&it); lsm_block_iter_valid(&it); lsm_block_iter_next(&it)) {
        FZ_CHECK(lsm_block_iter_key(&it).len >= LSM_TRAILER);
        FZ_CHECK(++steps <= len); /* each entry takes at least one byte: no endless loop */
    }
    steps = 0;
    for (lsm_block_iter_seek_last(&it); lsm_block_iter_valid(&it); lsm_block_iter_prev(&it))
        FZ_CHECK(++steps <= len);
    char k[16];
    lsm_block_iter_init(&it, data, len);
    lsm_block_iter_seek(&it, lsm_make_ikey(k, "key", 3, 7, LSM_TYPE_SEEK));
    lsm_block_iter_free(&it);
}

/* The dictionary of every input: raw content, shaped like a table's first data block. */
static const char dict_bytes[] = "\0\x0b\x02key00000\x01\0\0\0\0\0\0\0v0key00003v1";

static ZSTD_DDict *fuzz_ddict(void)
{
    static ZSTD_DDict *dd;
    if (!dd)
        dd = ZSTD_createDDict(dict_bytes, sizeof dict_bytes - 1);
    return dd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *out;
    size_t out_len;
    char *owned;
    if (lsm_block_decode((const char *)data, size, NULL, fuzz_ddict(), &out, &out_len,
                         &owned) == 0) {
        walk(out, out_len);
        free(owned);
    }
    walk((const char *)data, size);
    return 0;
}

/* Stores blk + trailer in buf: raw (type 0), zstd (1) or zstd with the fuzz dictionary (2). */
static size_t store(lsm_slice_t blk, int type, uint8_t *buf, size_t cap)
{
    size_t n = blk.len;
    if (type == LSM_BLOCK_RAW) {
        if (n + LSM_BLOCK_TRAILER > cap)
            return 0;
        memcpy(buf, blk.data, n);
    } else {
        ZSTD_CCtx *zc = ZSTD_createCCtx();
        ZSTD_CDict *cd = ZSTD_createCDict(dict_bytes, sizeof dict_bytes - 1, -1);
        n = type == LSM_BLOCK_ZSTD
                ? ZSTD_compressCCtx(zc, buf, cap - LSM_BLOCK_TRAILER, blk.data, blk.len, -1)
                : ZSTD_compress_usingCDict(zc, buf, cap - LSM_BLOCK_TRAILER, blk.data, blk.len,
                                           cd);
        ZSTD_freeCDict(cd);
        ZSTD_freeCCtx(zc);
        if (ZSTD_isError(n))
            return 0;
    }
    buf[n] = (uint8_t)type;
    lsm_put_fixed32((char *)buf + n + 1, lsm_block_crc((const char *)buf, n, type));
    return n + LSM_BLOCK_TRAILER;
}

/* Valid samples: a block of i%50+1 entries, stored raw, zstd or zstd with the dictionary. */
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    lsm_block_builder_t b;
    lsm_block_builder_init(&b, 1 + (int)(i % 8));
    char kb[64], v[32];
    for (unsigned j = 0; j < i % 50 + 1; j++) {
        int n = snprintf(kb, 40, "key%05u", j * 3);
        lsm_slice_t k = lsm_make_ikey(kb, kb, (size_t)n, 9, LSM_TYPE_VALUE);
        lsm_block_builder_add(&b, k, lsm_slice(v, (size_t)snprintf(v, sizeof v, "v%u", j)));
    }
    lsm_slice_t blk;
    size_t n = 0;
    if (lsm_block_builder_finish(&b, &blk) == 0)
        n = store(blk, (int)(i % 3), buf, cap);
    lsm_block_builder_free(&b);
    return n;
}
