/* table_builder.c - writes a table (table.h) in one pass: data blocks are cut at
 * block_size, compressed when it saves at least 1/8, and collected with the filter's key
 * hashes; output goes through a 256 KiB buffer so the file sees few large writes. A
 * compressed table's first block is cut at LSM_DICT_BYTES, written raw and loaded as the
 * zstd dictionary of the rest (table.h says why). A finished table is fdatasync'ed before
 * it is reported: the manifest may only name durable tables. */
#include <stdlib.h>
#include <zstd.h>

#include "engine/checksum.h"
#include "engine/error.h"
#include "engine/lsm/block.h"
#include "engine/lsm/bloom.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/table.h"

#define OUT_BUF (256u << 10)

struct lsm_table_builder {
    lsm_env_t *env;
    lsm_file_t *file;
    lsm_table_options_t o;
    lsm_block_builder_t data, index;
    lsm_buf_t out;       /* bytes not yet handed to the file */
    uint64_t offset;     /* file offset of out.data[0] + out.len */
    lsm_buf_t last_key;  /* last key added */
    uint64_t *hashes;
    size_t nhashes, cap_hashes;
    uint64_t prev_hash;
    uint64_t entries;
    ZSTD_CCtx *zc;
    ZSTD_CDict *cdict;   /* made from the first data block; NULL until then */
    uint64_t dict_off, dict_size;
    lsm_buf_t zbuf;
    int status;
};

int lsm_table_builder_new(lsm_env_t *env, const char *path, const lsm_table_options_t *o,
                          lsm_table_builder_t **b_p)
{
    lsm_table_builder_t *b = calloc(1, sizeof *b);
    if (!b)
        return SHOAL_ENOMEM;
    b->env = env;
    b->o = *o;
    if (o->compression && o->compressed_block_size)
        b->o.block_size = o->compressed_block_size;
    if (b->o.block_size < 256)
        b->o.block_size = 256;
    lsm_block_builder_init(&b->data, 16);
    lsm_block_builder_init(&b->index, 1);
    int rc = env->open(env, path, LSM_OPEN_WRITE, &b->file);
    if (rc == 0 && o->compression && !(b->zc = ZSTD_createCCtx()))
        rc = SHOAL_ENOMEM;
    if (rc) {
        lsm_table_builder_abandon(&b);
        return rc;
    }
    *b_p = b;
    return 0;
}

static int flush_out(lsm_table_builder_t *b)
{
    if (b->out.len == 0)
        return 0;
    int rc = b->env->append(b->file, b->out.data, b->out.len);
    b->out.len = 0;
    return rc;
}

/* Appends a stored block + trailer; *handle_off/size describe it for the index. */
static int write_raw_block(lsm_table_builder_t *b, lsm_slice_t blk, int type, uint64_t *off,
                           uint64_t *size)
{
    char trailer[LSM_BLOCK_TRAILER];
    trailer[0] = (char)type;
    lsm_put_fixed32(trailer + 1, lsm_block_crc(blk.data, blk.len, type));
    *off = b->offset;
    *size = blk.len;
    if (lsm_buf_append(&b->out, blk.data, blk.len) || lsm_buf_append(&b->out, trailer, 5))
        return SHOAL_ENOMEM;
    b->offset += blk.len + LSM_BLOCK_TRAILER;
    return b->out.len >= OUT_BUF ? flush_out(b) : 0;
}

static int write_block(lsm_table_builder_t *b, lsm_slice_t raw, uint64_t *off, uint64_t *size)
{
    if (b->zc) {
        size_t bound = ZSTD_compressBound(raw.len);
        b->zbuf.len = 0;
        if (lsm_buf_reserve(&b->zbuf, bound))
            return SHOAL_ENOMEM;
        size_t n = b->cdict ? ZSTD_compress_usingCDict(b->zc, b->zbuf.data, bound, raw.data,
                                                       raw.len, b->cdict)
                            : ZSTD_compressCCtx(b->zc, b->zbuf.data, bound, raw.data, raw.len,
                                                b->o.compression_level);
        int type = b->cdict ? LSM_BLOCK_ZSTD_DICT : LSM_BLOCK_ZSTD;
        if (!ZSTD_isError(n) && n < raw.len - raw.len / 8)
            return write_raw_block(b, lsm_slice(b->zbuf.data, n), type, off, size);
    }
    return write_raw_block(b, raw, LSM_BLOCK_RAW, off, size);
}

/* The first data block of a compressed table: stored raw, then its bytes become the
 * dictionary every later block is compressed with. */
static int write_dict_block(lsm_table_builder_t *b, lsm_slice_t raw, uint64_t *off,
                            uint64_t *size)
{
    int rc = write_raw_block(b, raw, LSM_BLOCK_RAW, off, size);
    if (rc)
        return rc;
    /* The block starts with varint 0 (a restart entry), never the zstd dictionary magic, so
     * zstd takes it as raw content. */
    b->cdict = ZSTD_createCDict(raw.data, raw.len, b->o.compression_level);
    b->dict_off = *off;
    b->dict_size = *size;
    return b->cdict ? 0 : SHOAL_ENOMEM;
}

static int add_index_entry(lsm_table_builder_t *b, uint64_t off, uint64_t size)
{
    char h[20], *p = lsm_put_varint64(h, off);
    p = lsm_put_varint64(p, size);
    return lsm_block_builder_add(&b->index, lsm_slice(b->last_key.data, b->last_key.len),
                                 lsm_slice(h, (size_t)(p - h)));
}

static int finish_data_block(lsm_table_builder_t *b)
{
    if (b->data.entries == 0)
        return 0;
    lsm_slice_t raw;
    uint64_t off, size;
    int rc = lsm_block_builder_finish(&b->data, &raw);
    if (!rc)
        rc = b->zc && !b->cdict && !b->o.no_dict ? write_dict_block(b, raw, &off, &size)
                                : write_block(b, raw, &off, &size);
    if (!rc)
        rc = add_index_entry(b, off, size);
    lsm_block_builder_reset(&b->data);
    return rc;
}

static int add_hash(lsm_table_builder_t *b, lsm_slice_t ikey)
{
    uint64_t h = lsm_bloom_hash(lsm_ikey_user(ikey));
    if (b->nhashes && b->prev_hash == h)
        return 0; /* versions of one key: one hash is enough */
    if (b->nhashes == b->cap_hashes) {
        size_t cap = b->cap_hashes ? b->cap_hashes * 2 : 4096;
        uint64_t *v = realloc(b->hashes, cap * sizeof *v);
        if (!v)
            return SHOAL_ENOMEM;
        b->hashes = v;
        b->cap_hashes = cap;
    }
    b->hashes[b->nhashes++] = h;
    b->prev_hash = h;
    return 0;
}

int lsm_table_builder_add(lsm_table_builder_t *b, lsm_slice_t ikey, lsm_slice_t value)
{
    if (b->status)
        return b->status;
    int rc = 0;
    size_t cut = b->zc && !b->cdict && !b->o.no_dict ? LSM_DICT_BYTES : b->o.block_size;
    if (lsm_block_builder_size(&b->data) >= cut)
        rc = finish_data_block(b);
    if (!rc && b->o.bloom_bits_per_key > 0)
        rc = add_hash(b, ikey);
    if (!rc)
        rc = lsm_block_builder_add(&b->data, ikey, value);
    if (!rc) {
        b->last_key.len = 0;
        rc = lsm_buf_append(&b->last_key, ikey.data, ikey.len);
    }
    b->entries++;
    return b->status = rc;
}

uint64_t lsm_table_builder_entries(const lsm_table_builder_t *b)
{
    return b->entries;
}

uint64_t lsm_table_builder_size(const lsm_table_builder_t *b)
{
    return b->offset + lsm_block_builder_size(&b->data);
}

/* The 48-byte footer, or the 64-byte one (own magic) when the table has a dictionary. */
static int write_footer(lsm_table_builder_t *b, uint64_t foff, uint64_t fsize, uint64_t ioff,
                        uint64_t isize)
{
    char f[LSM_FOOTER_DICT_SIZE];
    size_t n = b->cdict ? LSM_FOOTER_DICT_SIZE : LSM_FOOTER_SIZE;
    lsm_put_fixed64(f, foff);
    lsm_put_fixed64(f + 8, fsize);
    lsm_put_fixed64(f + 16, ioff);
    lsm_put_fixed64(f + 24, isize);
    lsm_put_fixed64(f + 32, b->entries);
    if (b->cdict) {
        lsm_put_fixed64(f + 40, b->dict_off);
        lsm_put_fixed64(f + 48, b->dict_size);
    }
    lsm_put_fixed32(f + n - 8, shoal_checksum32(f, n - 8));
    lsm_put_fixed32(f + n - 4, b->cdict ? LSM_TABLE_MAGIC_DICT : LSM_TABLE_MAGIC);
    if (lsm_buf_append(&b->out, f, n))
        return SHOAL_ENOMEM;
    b->offset += n;
    return 0;
}

static int finish_all(lsm_table_builder_t *b)
{
    uint64_t foff = 0, fsize = 0, ioff, isize;
    lsm_buf_t filter = {0};
    lsm_slice_t idx;
    int rc = finish_data_block(b);
    if (!rc && b->o.bloom_bits_per_key > 0)
        rc = lsm_bloom_build(b->hashes, b->nhashes, b->o.bloom_bits_per_key, &filter);
    if (!rc)
        rc = write_raw_block(b, lsm_slice(filter.data, filter.len), LSM_BLOCK_RAW, &foff, &fsize);
    lsm_buf_free(&filter);
    if (!rc)
        rc = lsm_block_builder_finish(&b->index, &idx);
    if (!rc)
        rc = write_block(b, idx, &ioff, &isize);
    if (!rc)
        rc = write_footer(b, foff, fsize, ioff, isize);
    if (!rc)
        rc = flush_out(b);
    if (!rc)
        rc = b->env->sync(b->file);
    return rc;
}

int lsm_table_builder_finish(lsm_table_builder_t **b_p, uint64_t *size)
{
    lsm_table_builder_t *b = *b_p;
    int rc = b->status ? b->status : finish_all(b);
    *size = b->offset;
    lsm_table_builder_abandon(b_p);
    return rc;
}

void lsm_table_builder_abandon(lsm_table_builder_t **b_p)
{
    lsm_table_builder_t *b = *b_p;
    if (!b)
        return;
    if (b->file)
        b->env->close(b->file);
    lsm_block_builder_free(&b->data);
    lsm_block_builder_free(&b->index);
    lsm_buf_free(&b->out);
    lsm_buf_free(&b->last_key);
    lsm_buf_free(&b->zbuf);
    free(b->hashes);
    ZSTD_freeCCtx(b->zc);
    ZSTD_freeCDict(b->cdict);
    free(b);
    *b_p = NULL;
}
