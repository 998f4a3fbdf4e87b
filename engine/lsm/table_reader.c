/* table_reader.c - reads tables (table.h): point lookups and iterators.
 *
 * Index, filter and dictionary are read once at open and kept in memory. Data blocks come
 * from, in order of preference: the file mapping when the database maps tables (option
 * mmap_reads; uncompressed blocks are used in place, no copy), the block cache (decompressed
 * blocks), or a pread (into an iterator's readahead window when it reads sequentially), the
 * block then entering the cache. The checksum of a block is verified on its first read by
 * this reader, from the mapping or a pread alike, and remembered in a bitmap (check_stored):
 * the file is immutable. Without the mapping, the table pages the OS caches are not part of
 * the process's resident memory. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "engine/error.h"
#include "engine/lsm/block.h"
#include "engine/lsm/bloom.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/fence.h"
#include "engine/lsm/mapres.h"
#include "engine/lsm/table.h"

struct lsm_dctx_pool {
    pthread_mutex_t mu;
    ZSTD_DCtx *free[16];
    int n;
};

lsm_dctx_pool_t *lsm_dctx_pool_new(void)
{
    lsm_dctx_pool_t *p = calloc(1, sizeof *p);
    if (p)
        pthread_mutex_init(&p->mu, NULL);
    return p;
}

void lsm_dctx_pool_destroy(lsm_dctx_pool_t **p_p)
{
    lsm_dctx_pool_t *p = *p_p;
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        ZSTD_freeDCtx(p->free[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *p_p = NULL;
}

static ZSTD_DCtx *dctx_get(lsm_dctx_pool_t *p)
{
    ZSTD_DCtx *c = NULL;
    if (p) {
        pthread_mutex_lock(&p->mu);
        if (p->n > 0)
            c = p->free[--p->n];
        pthread_mutex_unlock(&p->mu);
    }
    return c ? c : ZSTD_createDCtx();
}

static void dctx_put(lsm_dctx_pool_t *p, ZSTD_DCtx *c)
{
    if (p) {
        pthread_mutex_lock(&p->mu);
        if (p->n < 16) {
            p->free[p->n++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    ZSTD_freeDCtx(c);
}

struct lsm_table {
    lsm_env_t *env;
    lsm_dctx_pool_t *dctx;
    lsm_file_t *file;
    char *path;
    uint64_t number, size;
    const char *map; /* whole file, or NULL when the env cannot map */
    lsm_mapped_t mapped; /* the mapping's charge against the memory budget (mapres.h) */
    /* One bit per 256 bytes of file: the block starting there has been verified (see
     * check_stored). Only blocks of >= 256 stored bytes use it, so bits never collide. */
    _Atomic uint64_t *verified;
    lsm_cache_t *cache;
    lsm_errlog_t *log;
    const char *index;
    size_t index_len;
    char *index_owned;
    lsm_fence_t fence; /* the index as arrays, for gets (fence.h) */
    lsm_slice_t filter;
    char *filter_owned;
    ZSTD_DDict *ddict; /* NULL: the table has no dictionary */
    uint64_t entries;
};

/* The stored block at off in the mapping, its pages charged to the memory budget; NULL when
 * the table is not mapped or the budget has no room for them (then it is read with pread). */
static const char *mapped_at(lsm_table_t *t, uint64_t off, size_t len)
{
    return t->map && lsm_mapped_admit(&t->mapped, t->map + off, len) ? t->map + off : NULL;
}

/* A data block in use: in the mapping, pinned in the cache, or owned. */
typedef struct {
    const char *data;
    size_t len;
    lsm_cache_handle_t *h;
    char *owned;
} blockref_t;

/* A block's bytes in memory, allocated as a cache entry (lsm_cache_entry_new) whether or not
 * it is then inserted: one allocation, the cache's handle in front of it. */
typedef struct {
    size_t len;
    char data[];
} cblock_t;

static cblock_t *cblock_new(size_t n)
{
    return lsm_cache_entry_new(sizeof(cblock_t) + n);
}

static void cblock_free(cblock_t *c)
{
    lsm_cache_entry_free(c);
}

/* Decompresses a zstd frame of n stored bytes into dst (exactly raw bytes), with the
 * table's dictionary for type 2. 0, SHOAL_ECORRUPT, or SHOAL_ENOMEM (no context). */
static int zstd_into(lsm_dctx_pool_t *dctx, const ZSTD_DDict *ddict, int type, char *dst,
                     size_t raw, const char *src, size_t n)
{
    if (type == LSM_BLOCK_ZSTD_DICT && !ddict)
        return SHOAL_ECORRUPT;
    ZSTD_DCtx *dc = dctx_get(dctx);
    if (!dc)
        return SHOAL_ENOMEM;
    size_t got = type == LSM_BLOCK_ZSTD_DICT
                     ? ZSTD_decompress_usingDDict(dc, dst, raw, src, n, ddict)
                     : ZSTD_decompressDCtx(dc, dst, raw, src, n);
    dctx_put(dctx, dc);
    return ZSTD_isError(got) || got != raw ? SHOAL_ECORRUPT : 0;
}

/* The decompressed size a zstd frame declares, or 0 with *ok = false when it is unusable. */
static size_t frame_size(const char *src, size_t n, bool *ok)
{
    unsigned long long raw = ZSTD_getFrameContentSize(src, n);
    *ok = raw != ZSTD_CONTENTSIZE_ERROR && raw != ZSTD_CONTENTSIZE_UNKNOWN && raw <= LSM_MAX_BLOCK;
    return *ok ? (size_t)raw : 0;
}

int lsm_block_decode(const char *stored, size_t stored_len, lsm_dctx_pool_t *dctx,
                     const void *ddict, const char **out, size_t *out_len, char **owned)
{
    *owned = NULL;
    if (stored_len < LSM_BLOCK_TRAILER)
        return SHOAL_ECORRUPT;
    size_t n = stored_len - LSM_BLOCK_TRAILER;
    int type = (unsigned char)stored[n];
    if (lsm_get_fixed32(stored + n + 1) != lsm_block_crc(stored, n, type))
        return SHOAL_ECORRUPT;
    if (type == LSM_BLOCK_RAW) {
        *out = stored;
        *out_len = n;
        return 0;
    }
    if (type != LSM_BLOCK_ZSTD && type != LSM_BLOCK_ZSTD_DICT)
        return SHOAL_ECORRUPT;
    bool ok;
    size_t raw = frame_size(stored, n, &ok);
    if (!ok)
        return SHOAL_ECORRUPT;
    char *buf = malloc(raw ? raw : 1);
    if (!buf)
        return SHOAL_ENOMEM;
    int rc = zstd_into(dctx, ddict, type, buf, raw, stored, n);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = raw;
    *owned = buf;
    return 0;
}

static int corrupt(lsm_table_t *t, uint64_t off, const char *what)
{
    return lsm_corrupt(t->log, t->path, off, what);
}

/* Reads the stored bytes of block (off, size) + trailer into a new cblock. */
static int read_stored(lsm_table_t *t, uint64_t off, uint64_t size, cblock_t **cb_p)
{
    size_t n = (size_t)size + LSM_BLOCK_TRAILER, got;
    cblock_t *cb = cblock_new(n);
    if (!cb)
        return SHOAL_ENOMEM;
    int rc = t->env->pread(t->file, off, cb->data, n, &got);
    if (rc == 0 && got != n)
        rc = corrupt(t, off, "block runs past the end of the file");
    else if (rc)
        rc = lsm_err(t->log, rc, "%s: read of %zu bytes at offset %llu failed", t->path, n,
                     (unsigned long long)off);
    if (rc) {
        cblock_free(cb);
        return rc;
    }
    *cb_p = cb;
    return 0;
}

static int check_handle(lsm_table_t *t, uint64_t off, uint64_t size)
{
    if (size > LSM_MAX_BLOCK || off > t->size || t->size - off < size + LSM_BLOCK_TRAILER)
        return corrupt(t, off, "block handle out of the file");
    return 0;
}

/* The verified bitmap (see lsm_table_t): whether the block at off was checked. */
static bool block_verified(const lsm_table_t *t, uint64_t off)
{
    uint64_t bit = off >> 8;
    return atomic_load_explicit(&t->verified[bit >> 6], memory_order_relaxed) &
           (UINT64_C(1) << (bit & 63));
}

static void mark_verified(lsm_table_t *t, uint64_t off)
{
    uint64_t bit = off >> 8;
    atomic_fetch_or_explicit(&t->verified[bit >> 6], UINT64_C(1) << (bit & 63),
                             memory_order_relaxed);
}

/* Verifies the checksum of the stored block at off (stored_len includes the trailer), once
 * per table reader: a table file is immutable, so bytes read again at the same offset are the
 * bytes already checked, whether they come from the mapping or from a pread (as the mapped
 * path always did). The checksum was 6% of a compressed readseq (callgrind) and ~9% of a
 * pread readrandom (perf), paid again on every re-read of an evicted block. A block shorter
 * than 256 stored bytes is checked every time: its bit could be a neighbour's. */
static int check_stored(lsm_table_t *t, uint64_t off, const char *stored, size_t stored_len)
{
    bool tracked = stored_len >= 256;
    if (tracked && block_verified(t, off))
        return 0;
    size_t n = stored_len - LSM_BLOCK_TRAILER;
    if (lsm_get_fixed32(stored + n + 1) != lsm_block_crc(stored, n, (unsigned char)stored[n]))
        return SHOAL_ECORRUPT;
    if (tracked)
        mark_verified(t, off);
    return 0;
}

/* A raw stored block, verified (check_stored): its bytes are the block. */
static int check_raw(lsm_table_t *t, uint64_t off, const char *stored, size_t stored_len)
{
    int rc = check_stored(t, off, stored, stored_len);
    if (rc == 0 && (unsigned char)stored[stored_len - LSM_BLOCK_TRAILER] != LSM_BLOCK_RAW)
        rc = SHOAL_ECORRUPT;
    return rc;
}

/* Verifies a stored zstd block (check_stored) and reads its decompressed size from the
 * frame header into *raw. */
static int zstd_check(lsm_table_t *t, uint64_t off, const char *stored, size_t stored_len,
                      size_t *raw)
{
    size_t n = stored_len - LSM_BLOCK_TRAILER;
    if (check_stored(t, off, stored, stored_len))
        return SHOAL_ECORRUPT;
    bool ok;
    *raw = frame_size(stored, n, &ok);
    return ok ? 0 : SHOAL_ECORRUPT;
}

/* Verifies stored block bytes (stored_len includes the trailer) and decompresses a zstd
 * block straight into a new cblock, so a cached block is one allocation holding only the
 * decompressed bytes (no second copy, no stored copy kept beside it). */
static int decode_zstd_cblock(lsm_table_t *t, uint64_t off, const char *stored,
                              size_t stored_len, int type, cblock_t **cb_p)
{
    size_t n = stored_len - LSM_BLOCK_TRAILER, raw;
    int rc = zstd_check(t, off, stored, stored_len, &raw);
    if (rc)
        return rc;
    cblock_t *cb = cblock_new(raw);
    if (!cb)
        return SHOAL_ENOMEM;
    rc = zstd_into(t->dctx, t->ddict, type, cb->data, raw, stored, n);
    if (rc) {
        cblock_free(cb);
        return rc;
    }
    cb->len = raw;
    *cb_p = cb;
    return 0;
}

/* Sequential reads of one iterator: once two block loads in a row were contiguous, the
 * iterator reads RA_BYTES at a time into its own buffer instead of one pread per block (a
 * scan or a compaction input), also when the table is mapped: pages a scan passes through
 * the mapping would stay in the process's resident memory (a full compaction or readseq
 * made every table page resident: peak RSS ~290 MiB for a ~110 MiB DB), while a pread into
 * one reused window costs a copy. Point reads never use it. Blocks taken from the window do
 * not enter the block cache (read_block). */
#define RA_BYTES (256u << 10)
#define STACK_READ 4096 /* compressed blocks up to this size are read into the stack */

typedef struct {
    char *buf;
    uint64_t off;      /* file bytes [off, off + len) are in buf */
    size_t len;
    uint64_t next_off; /* where the previous load ended */
    int run;           /* contiguous loads in a row */
    char *raw;         /* the scan's current decompressed block (reused: no malloc per block) */
    size_t raw_cap;
} readahead_t;

/* Counts contiguous block loads: true once the iterator reads sequentially. */
static bool ra_sequential(readahead_t *ra, uint64_t off, size_t stored_len)
{
    if (!ra)
        return false;
    ra->run = off == ra->next_off ? ra->run + 1 : 0;
    ra->next_off = off + stored_len;
    return ra->run >= 2;
}

/* Points *stored at the stored block (off, stored_len) in the readahead window, refilling
 * the window (the iterator reads sequentially). false: read it another way. */
static bool ra_window(lsm_table_t *t, readahead_t *ra, uint64_t off, size_t stored_len,
                      const char **stored)
{
    if (off >= ra->off && off + stored_len <= ra->off + ra->len) {
        *stored = ra->buf + (off - ra->off);
        return true;
    }
    if (stored_len > RA_BYTES)
        return false;
    if (!ra->buf && !(ra->buf = malloc(RA_BYTES)))
        return false;
    size_t got;
    if (t->env->pread(t->file, off, ra->buf, RA_BYTES, &got) || got < stored_len) {
        ra->len = 0;
        return false; /* the ordinary read will report it */
    }
    ra->off = off;
    ra->len = got;
    *stored = ra->buf;
    return true;
}

/* A raw stored block as a new cblock: the checksum verified, the bytes copied. */
static int raw_cblock(lsm_table_t *t, uint64_t off, const char *stored, size_t size,
                      cblock_t **cb_p)
{
    if (check_raw(t, off, stored, size + LSM_BLOCK_TRAILER))
        return SHOAL_ECORRUPT;
    cblock_t *cb = cblock_new(size);
    if (!cb)
        return SHOAL_ENOMEM;
    cb->len = size;
    memcpy(cb->data, stored, size);
    *cb_p = cb;
    return 0;
}

/* Verifies a stored zstd block and decompresses it into the scan's reused buffer. */
static int window_zstd(lsm_table_t *t, readahead_t *ra, uint64_t off, const char *stored,
                       size_t stored_len, int type, blockref_t *r)
{
    size_t n = stored_len - LSM_BLOCK_TRAILER, raw;
    int rc = zstd_check(t, off, stored, stored_len, &raw);
    if (rc)
        return rc;
    if (raw > ra->raw_cap) {
        char *b = realloc(ra->raw, raw);
        if (!b)
            return SHOAL_ENOMEM;
        ra->raw = b;
        ra->raw_cap = raw;
    }
    rc = zstd_into(t->dctx, t->ddict, type, ra->raw, raw, stored, n);
    if (rc == 0) {
        r->data = ra->raw;
        r->len = raw;
    }
    return rc;
}

/* A scan's block, stored in the readahead window or the mapping: a raw one is verified and
 * used in place, a zstd one is decompressed into the scan's buffer. Either stays valid
 * until the iterator loads its next block, which releases this one first. */
static int window_block(lsm_table_t *t, readahead_t *ra, uint64_t off, uint64_t size,
                        const char *stored, blockref_t *r)
{
    size_t stored_len = (size_t)size + LSM_BLOCK_TRAILER;
    int type = (unsigned char)stored[size];
    int rc;
    if (type == LSM_BLOCK_ZSTD || type == LSM_BLOCK_ZSTD_DICT) {
        rc = window_zstd(t, ra, off, stored, stored_len, type, r);
    } else if ((rc = check_raw(t, off, stored, stored_len)) == 0) {
        r->data = stored;
        r->len = (size_t)size;
    }
    return rc == SHOAL_ECORRUPT ? corrupt(t, off, "block checksum or encoding mismatch") : rc;
}

/* Reads, verifies and decompresses block (off, size) outside the cache into a new cblock.
 * The stored bytes come from the mapping (m, when not NULL), the stack (a small block of a
 * compressed table: no allocation for bytes about to be decompressed), or a pread into a new cblock
 * (then a raw block is used where it was read, with no copy). */
static int read_block_nocache(lsm_table_t *t, uint64_t off, uint64_t size, const char *m,
                              blockref_t *r)
{
    cblock_t *cb = NULL, *rd = NULL;
    int rc;
    size_t stored_len = (size_t)size + LSM_BLOCK_TRAILER, got;
    const char *stored;
    char stack[STACK_READ + LSM_BLOCK_TRAILER];
    if (m) {
        stored = m;
    } else if (t->ddict && stored_len <= sizeof stack) {
        rc = t->env->pread(t->file, off, stack, stored_len, &got);
        if (rc)
            return lsm_err(t->log, rc, "%s: read of %zu bytes at offset %llu failed", t->path,
                           stored_len, (unsigned long long)off);
        if (got != stored_len)
            return corrupt(t, off, "block runs past the end of the file");
        stored = stack;
    } else if ((rc = read_stored(t, off, size, &rd)) == 0) {
        stored = rd->data;
    } else {
        return rc;
    }
    int type = (unsigned char)stored[size];
    if (type == LSM_BLOCK_ZSTD || type == LSM_BLOCK_ZSTD_DICT) {
        rc = decode_zstd_cblock(t, off, stored, stored_len, type, &cb);
    } else if (rd) {
        rc = check_raw(t, off, stored, stored_len);
        if (rc == 0) {
            cb = rd;
            cb->len = (size_t)size;
            rd = NULL;
        }
    } else {
        rc = raw_cblock(t, off, stored, (size_t)size, &cb);
    }
    cblock_free(rd);
    if (rc)
        return rc == SHOAL_ECORRUPT ? corrupt(t, off, "block checksum or encoding mismatch")
                                    : rc;
    r->data = cb->data;
    r->len = cb->len;
    r->owned = (char *)cb;
    r->h = NULL;
    return 0;
}

/* An uncompressed block used in place in the mapping (m: its stored bytes there). */
static int mapped_block(lsm_table_t *t, uint64_t off, uint64_t size, const char *m, blockref_t *r)
{
    if (check_raw(t, off, m, (size_t)size + LSM_BLOCK_TRAILER))
        return corrupt(t, off, "block checksum mismatch");
    r->data = m;
    r->len = (size_t)size;
    return 0;
}

static int read_block(lsm_table_t *t, uint64_t off, uint64_t size, bool fill_cache,
                      readahead_t *ra, blockref_t *r)
{
    memset(r, 0, sizeof *r);
    int rc = check_handle(t, off, size);
    if (rc)
        return rc;
    /* A scan does not fill the cache: it costs no insert and eviction per block and does
     * not flush the blocks that point reads keep coming back to (scan resistance). A bulk
     * reader (fill_cache off: compaction inputs, exports) reads through its readahead
     * window, so the pages it passes do not stay resident; a user scan of a mapped table
     * uses the mapping where the budget lets it map (no copy: the window's pread cost ~5% of
     * a compressed readseq), the window elsewhere. */
    const char *stored, *m = NULL;
    size_t stored_len = (size_t)size + LSM_BLOCK_TRAILER;
    bool seq = ra_sequential(ra, off, stored_len);
    bool bulk = seq && !fill_cache;
    /* A table with a dictionary is compressed: its blocks are looked up in the cache before
     * the mapping, whose type byte would cost a touch of a cold page on every cache hit. */
    bool raw_first = !t->ddict;
    if (raw_first && !bulk)
        m = mapped_at(t, off, stored_len);
    if (raw_first && seq && !m && ra_window(t, ra, off, stored_len, &stored))
        return window_block(t, ra, off, size, stored, r);
    if (m && (unsigned char)m[size] == LSM_BLOCK_RAW)
        return mapped_block(t, off, size, m, r);
    if (t->cache && (r->h = lsm_cache_lookup(t->cache, t->number, off)) != NULL) {
        cblock_t *cb = lsm_cache_value(r->h);
        r->data = cb->data;
        r->len = cb->len;
        return 0;
    }
    if (!raw_first && !bulk)
        m = mapped_at(t, off, stored_len);
    if (seq && !m && ra_window(t, ra, off, stored_len, &stored))
        return window_block(t, ra, off, size, stored, r);
    if (!raw_first && m && (unsigned char)m[size] == LSM_BLOCK_RAW)
        return mapped_block(t, off, size, m, r);
    if (seq && m) /* a user scan: decoded from the mapping into the scan's buffer */
        return window_block(t, ra, off, size, m, r);
    rc = read_block_nocache(t, off, size, m, r);
    if (rc || !fill_cache || !t->cache || seq)
        return rc;
    cblock_t *cb = (cblock_t *)r->owned;
    r->owned = NULL;
    /* Charged for what it holds: the decompressed bytes (the stored copy is not kept). */
    size_t charge = sizeof *cb + cb->len + lsm_cache_entry_overhead();
    r->h = lsm_cache_insert_entry(t->cache, t->number, off, cb, charge);
    return r->h ? 0 : SHOAL_ENOMEM;
}

static void release_block(lsm_table_t *t, blockref_t *r)
{
    if (r->h)
        lsm_cache_release(t->cache, r->h);
    if (r->owned)
        cblock_free((cblock_t *)r->owned);
    memset(r, 0, sizeof *r);
}

/* Reads a metadata block (index, filter) into memory owned by the table. */
static int read_meta_block(lsm_table_t *t, uint64_t off, uint64_t size, const char **data,
                           size_t *len, char **owned)
{
    blockref_t r;
    int rc = check_handle(t, off, size);
    if (rc == 0)
        rc = read_block_nocache(t, off, size, NULL, &r);
    if (rc)
        return rc;
    cblock_t *cb = (cblock_t *)r.owned;
    *owned = malloc(r.len ? r.len : 1);
    if (!*owned) {
        cblock_free(cb);
        return SHOAL_ENOMEM;
    }
    memcpy(*owned, r.data, r.len);
    *data = *owned;
    *len = r.len;
    cblock_free(cb);
    return 0;
}

/* Reads the footer: h[0..4] = filter offset, filter size, index offset, index size, entry
 * count; h[5..6] = dictionary offset and size (0 when the 48-byte footer has none). */
static int read_footer(lsm_table_t *t, uint64_t h[7])
{
    char f[LSM_FOOTER_DICT_SIZE];
    size_t got, n = t->size < LSM_FOOTER_DICT_SIZE ? LSM_FOOTER_SIZE : LSM_FOOTER_DICT_SIZE;
    if (t->size < LSM_FOOTER_SIZE)
        return corrupt(t, 0, "file too short for a table footer");
    uint64_t off = t->size - n;
    int rc = t->env->pread(t->file, off, f, n, &got);
    if (rc)
        return lsm_err(t->log, rc, "%s: cannot read the footer", t->path);
    uint32_t magic = got == n ? lsm_get_fixed32(f + n - 4) : 0;
    if (magic == LSM_TABLE_MAGIC && n > LSM_FOOTER_SIZE) { /* the short footer: its tail */
        memmove(f, f + n - LSM_FOOTER_SIZE, LSM_FOOTER_SIZE);
        off += n - LSM_FOOTER_SIZE;
        n = LSM_FOOTER_SIZE;
    } else if (magic != (n == LSM_FOOTER_SIZE ? LSM_TABLE_MAGIC : LSM_TABLE_MAGIC_DICT)) {
        return corrupt(t, off, "bad table magic number");
    }
    if (lsm_get_fixed32(f + n - 8) != shoal_checksum32(f, n - 8))
        return corrupt(t, off, "footer checksum mismatch");
    for (int i = 0; i < 7; i++)
        h[i] = i < 5 || n == LSM_FOOTER_DICT_SIZE ? lsm_get_fixed64(f + 8 * i) : 0;
    return 0;
}

/* Loads the dictionary block named by the footer (a raw data block) into a ZSTD_DDict. */
static int load_dict(lsm_table_t *t, uint64_t off, uint64_t size)
{
    const char *d;
    char *owned;
    size_t len;
    int rc = read_meta_block(t, off, size, &d, &len, &owned);
    if (rc)
        return rc;
    /* A data block starts with varint 0 (shared), so zstd never mistakes it for a trained
     * dictionary (those start with a magic number): it is loaded as raw content. */
    if (len == 0 || (unsigned char)d[0] != 0)
        rc = corrupt(t, off, "bad table dictionary");
    else if (!(t->ddict = ZSTD_createDDict(d, len)))
        rc = SHOAL_ENOMEM;
    free(owned); /* the DDict keeps its own copy */
    return rc;
}

int lsm_table_open(const lsm_table_ctx_t *ctx, const char *path, uint64_t file_number,
                   uint64_t file_size, lsm_table_t **t_p)
{
    lsm_table_t *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return SHOAL_ENOMEM;
    }
    lsm_env_t *env = ctx->env;
    t->env = env;
    /* Before any block is read: the metadata blocks read at open are checked through it. */
    if (!(t->verified = calloc((file_size >> 14) + 1, sizeof *t->verified))) {
        free(t->path);
        free(t);
        return SHOAL_ENOMEM;
    }
    t->number = file_number;
    t->size = file_size;
    t->cache = ctx->cache;
    t->log = ctx->log;
    t->dctx = ctx->dctx;
    lsm_errlog_t *log = ctx->log;
    uint64_t h[7];
    size_t flen = 0;
    int rc = env->open(env, path, LSM_OPEN_READ, &t->file);
    if (rc)
        rc = lsm_err(log, rc, "cannot open table %s", path);
    if (!rc)
        rc = read_footer(t, h);
    if (!rc && h[6] > 0)
        rc = load_dict(t, h[5], h[6]);
    if (!rc && h[1] > 0)
        rc = read_meta_block(t, h[0], h[1], &t->filter.data, &flen, &t->filter_owned);
    t->filter.len = flen;
    if (!rc)
        rc = read_meta_block(t, h[2], h[3], &t->index, &t->index_len, &t->index_owned);
    if (rc) {
        lsm_table_close(&t);
        return rc;
    }
    t->entries = h[4];
    lsm_fence_build(&t->fence, t->index, t->index_len);
    if (ctx->mmap_reads && env->map)
        t->map = env->map(t->file, file_size);
    if (t->map &&
        (rc = lsm_mapped_init(&t->mapped, ctx->mapres, env, t->file, t->map, file_size)) != 0) {
        lsm_table_close(&t);
        return rc;
    }
    *t_p = t;
    return 0;
}

void lsm_table_close(lsm_table_t **t_p)
{
    lsm_table_t *t = *t_p;
    if (!t)
        return;
    lsm_mapped_fini(&t->mapped); /* before the mapping goes with the file */
    if (t->file)
        t->env->close(t->file);
    lsm_fence_free(&t->fence);
    free(t->index_owned);
    free(t->filter_owned);
    ZSTD_freeDDict(t->ddict);
    free((void *)t->verified);
    free(t->path);
    free(t);
    *t_p = NULL;
}

uint64_t lsm_table_entries(const lsm_table_t *t)
{
    return t->entries;
}

bool lsm_table_may_contain(lsm_table_t *t, uint64_t user_hash)
{
    return t->filter.len == 0 || lsm_bloom_may_contain(t->filter, user_hash);
}

/* Decodes an index entry's value into a block handle. */
static int index_handle(lsm_table_t *t, lsm_slice_t v, uint64_t *off, uint64_t *size)
{
    const char *p = lsm_get_varint64(v.data, v.data + v.len, off);
    if (!p || !lsm_get_varint64(p, v.data + v.len, size))
        return corrupt(t, t->size - LSM_FOOTER_SIZE, "bad block handle in the index");
    return 0;
}

/* Finds the data block that may hold ikey: *off and *size, or *past = true when ikey is past
 * the table's last block. The fence arrays answer when they can; else the index block. */
static int find_block(lsm_table_t *t, lsm_slice_t ikey, uint64_t *off, uint64_t *size,
                      bool *past)
{
    long i = lsm_fence_find(&t->fence, ikey);
    *past = false;
    if (i >= 0) {
        *past = (size_t)i == t->fence.n;
        if (!*past) {
            *off = t->fence.ent[i].off;
            *size = t->fence.ent[i].size;
        }
        return 0;
    }
    lsm_block_iter_t ix = {0};
    int rc = 0;
    lsm_block_iter_init(&ix, t->index, t->index_len);
    lsm_block_iter_seek(&ix, ikey);
    if (!lsm_block_iter_valid(&ix)) {
        *past = true;
        rc = ix.status ? corrupt(t, t->size - LSM_FOOTER_SIZE, "corrupt index block") : 0;
    } else {
        rc = index_handle(t, ix.value, off, size);
    }
    lsm_block_iter_free(&ix);
    return rc;
}

/* The data block of a point read. A raw block the bounded mapping refused (mapres.h) is read
 * with pread into buf (the caller's stack: no malloc) and bypasses the block cache: such a
 * database gives the cache a 64th of the share, which would rarely hold the block again, and
 * its insert and eviction cost every read. */
static int point_block(lsm_table_t *t, uint64_t off, uint64_t size, bool fill_cache, char *buf,
                       size_t cap, blockref_t *r)
{
    size_t stored_len = (size_t)size + LSM_BLOCK_TRAILER, got;
    if (!t->mapped.mr || t->ddict || stored_len > cap || check_handle(t, off, size) ||
        mapped_at(t, off, stored_len))
        return read_block(t, off, size, fill_cache, NULL, r);
    memset(r, 0, sizeof *r);
    int rc = t->env->pread(t->file, off, buf, stored_len, &got);
    if (rc)
        return lsm_err(t->log, rc, "%s: read of %zu bytes at offset %llu failed", t->path,
                       stored_len, (unsigned long long)off);
    if (got != stored_len)
        return corrupt(t, off, "block runs past the end of the file");
    if (check_raw(t, off, buf, stored_len))
        return corrupt(t, off, "block checksum mismatch");
    r->data = buf;
    r->len = (size_t)size;
    return 0;
}

int lsm_table_get(lsm_table_t *t, lsm_slice_t ikey, uint64_t user_hash, bool fill_cache,
                  lsm_table_get_cb cb, void *arg, bool *found)
{
    char buf[STACK_READ + LSM_BLOCK_TRAILER];
    *found = false;
    if (!lsm_table_may_contain(t, user_hash))
        return 0;
    lsm_block_iter_t dt = {0};
    blockref_t r = {0};
    uint64_t off = 0, size = 0;
    bool past;
    int rc = find_block(t, ikey, &off, &size, &past);
    if (rc || past || (rc = point_block(t, off, size, fill_cache, buf, sizeof buf, &r)) != 0)
        return rc;
    lsm_block_iter_init(&dt, r.data, r.len);
    lsm_block_iter_seek(&dt, ikey);
    if (lsm_block_iter_valid(&dt)) {
        *found = true;
        cb(arg, lsm_block_iter_key(&dt), dt.value);
    } else if (dt.status) {
        rc = corrupt(t, off, "corrupt data block");
    }
    release_block(t, &r);
    lsm_block_iter_free(&dt);
    return rc;
}

/* ---- two-level iterator: index block -> data blocks ---- */

typedef struct {
    lsm_iiter_t base;
    lsm_table_t *t;
    bool fill_cache;
    lsm_block_iter_t index, data;
    blockref_t ref;
    bool have_block;
    uint64_t block_off;
    readahead_t ra;
    int status;
} table_iter_t;

static void ti_set_error(table_iter_t *ti, int rc)
{
    if (!ti->status)
        ti->status = rc;
    if (ti->have_block) {
        release_block(ti->t, &ti->ref);
        ti->have_block = false;
    }
}

/* Loads the data block the index iterator points at. */
static bool load_block(table_iter_t *ti)
{
    uint64_t off, size;
    if (!lsm_block_iter_valid(&ti->index)) {
        if (ti->index.status)
            ti_set_error(ti, corrupt(ti->t, ti->t->size - LSM_FOOTER_SIZE, "corrupt index"));
        else if (ti->have_block) {
            release_block(ti->t, &ti->ref);
            ti->have_block = false;
        }
        return false;
    }
    int rc = index_handle(ti->t, ti->index.value, &off, &size);
    if (rc) {
        ti_set_error(ti, rc);
        return false;
    }
    if (ti->have_block && ti->block_off == off)
        return true;
    if (ti->have_block)
        release_block(ti->t, &ti->ref);
    ti->have_block = false;
    rc = read_block(ti->t, off, size, ti->fill_cache, &ti->ra, &ti->ref);
    if (rc) {
        ti_set_error(ti, rc);
        return false;
    }
    ti->have_block = true;
    ti->block_off = off;
    lsm_block_iter_init(&ti->data, ti->ref.data, ti->ref.len);
    return true;
}

static bool data_failed(table_iter_t *ti)
{
    if (ti->data.status) {
        ti_set_error(ti, corrupt(ti->t, ti->block_off, "corrupt data block"));
        return true;
    }
    return false;
}

static void skip_forward(table_iter_t *ti)
{
    while (ti->have_block && !lsm_block_iter_valid(&ti->data) && !data_failed(ti)) {
        lsm_block_iter_next(&ti->index);
        if (!load_block(ti))
            return;
        lsm_block_iter_seek_first(&ti->data);
    }
}

static void skip_backward(table_iter_t *ti)
{
    while (ti->have_block && !lsm_block_iter_valid(&ti->data) && !data_failed(ti)) {
        lsm_block_iter_prev(&ti->index);
        if (!load_block(ti))
            return;
        lsm_block_iter_seek_last(&ti->data);
    }
}

static bool ti_valid(lsm_iiter_t *it)
{
    table_iter_t *ti = (table_iter_t *)it;
    return ti->have_block && lsm_block_iter_valid(&ti->data);
}

static void ti_seek_first(lsm_iiter_t *it)
{
    table_iter_t *ti = (table_iter_t *)it;
    if (ti->status)
        return;
    lsm_block_iter_seek_first(&ti->index);
    if (load_block(ti))
        lsm_block_iter_seek_first(&ti->data);
    skip_forward(ti);
}

static void ti_seek_last(lsm_iiter_t *it)
{
    table_iter_t *ti = (table_iter_t *)it;
    if (ti->status)
        return;
    lsm_block_iter_seek_last(&ti->index);
    if (load_block(ti))
        lsm_block_iter_seek_last(&ti->data);
    skip_backward(ti);
}

static void ti_seek(lsm_iiter_t *it, lsm_slice_t k)
{
    table_iter_t *ti = (table_iter_t *)it;
    if (ti->status)
        return;
    lsm_block_iter_seek(&ti->index, k);
    if (load_block(ti))
        lsm_block_iter_seek(&ti->data, k);
    skip_forward(ti);
}

static void ti_next(lsm_iiter_t *it)
{
    table_iter_t *ti = (table_iter_t *)it;
    lsm_block_iter_next(&ti->data);
    skip_forward(ti);
}

static void ti_prev(lsm_iiter_t *it)
{
    table_iter_t *ti = (table_iter_t *)it;
    lsm_block_iter_prev(&ti->data);
    skip_backward(ti);
}

static lsm_slice_t ti_key(lsm_iiter_t *it)
{
    return lsm_block_iter_key(&((table_iter_t *)it)->data);
}

static lsm_slice_t ti_value(lsm_iiter_t *it)
{
    return ((table_iter_t *)it)->data.value;
}

static int ti_status(lsm_iiter_t *it)
{
    return ((table_iter_t *)it)->status;
}

static void ti_destroy(lsm_iiter_t *it)
{
    table_iter_t *ti = (table_iter_t *)it;
    if (ti->have_block)
        release_block(ti->t, &ti->ref);
    lsm_block_iter_free(&ti->index);
    lsm_block_iter_free(&ti->data);
    free(ti->ra.buf);
    free(ti->ra.raw);
    free(ti);
}

static const lsm_iiter_ops_t table_iter_ops = {ti_valid, ti_seek_first, ti_seek_last, ti_seek,
                                               ti_next,  ti_prev,       ti_key,       ti_value,
                                               ti_status, ti_destroy};

lsm_iiter_t *lsm_table_iter(lsm_table_t *t, bool fill_cache)
{
    table_iter_t *ti = calloc(1, sizeof *ti);
    if (!ti)
        return NULL;
    ti->base.ops = &table_iter_ops;
    ti->t = t;
    ti->fill_cache = fill_cache;
    lsm_block_iter_init(&ti->index, t->index, t->index_len);
    return &ti->base;
}
