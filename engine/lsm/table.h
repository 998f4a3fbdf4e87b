/* table.h - sorted tables (SSTs): immutable files of internal keys in order.
 *
 * Layout (docs/FORMATS.md has every byte):
 *     data block* | filter block | index block | footer (48 or 64 bytes)
 * Every block is followed by a 5-byte trailer: 1 byte type (0 raw, 1 zstd, 2 zstd with the
 * table's dictionary) and a fixed32 checksum (engine/checksum.h) of the stored block bytes
 * and the type byte. The index block maps the last internal key of each data block to its
 * handle (varint offset, varint size). The filter is one bloom filter over the table's user
 * keys (bloom.h). The footer holds the filter and index handles, the entry count, a checksum
 * and a magic number; the 64-byte footer (its own magic) adds the handle of the dictionary.
 *
 * Compressed tables: small blocks decode fast but compress worse alone, so the first data
 * block of a compressed table is written raw at LSM_DICT_BYTES and its bytes serve as a zstd
 * raw-content dictionary for every later block of the table (type 2): the size of 4 KiB
 * blocks at the decode cost of 2 KiB ones. Tables without a dictionary keep the 48-byte
 * footer, so older tables read as before.
 *
 * A reader verifies a block's checksum the first time it reads the block (the file is
 * immutable: a bitmap remembers the blocks it checked) and answers a mismatch with
 * SHOAL_ECORRUPT and a message naming the file and offset, never with the damaged bytes. */
#ifndef SHOAL_LSM_TABLE_H
#define SHOAL_LSM_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/checksum.h"
#include "engine/lsm/cache.h"
#include "engine/lsm/coding.h"
#include "engine/lsm/env.h"
#include "engine/lsm/errlog.h"
#include "engine/lsm/iter.h"
#include "engine/lsm/mapres.h"

#define LSM_TABLE_MAGIC 0x4C54534Fu /* "OSTL" little-endian */
#define LSM_TABLE_MAGIC_DICT 0x4454534Fu /* "OSTD": the 64-byte footer with a dictionary */
#define LSM_FOOTER_SIZE 48
#define LSM_FOOTER_DICT_SIZE 64
#define LSM_DICT_BYTES 8192 /* first block of a compressed table = its dictionary */
#define LSM_BLOCK_TRAILER 5
#define LSM_MAX_BLOCK (64u << 20) /* no sane block is bigger: refuse to allocate more */

enum { LSM_BLOCK_RAW = 0, LSM_BLOCK_ZSTD = 1, LSM_BLOCK_ZSTD_DICT = 2 };

typedef struct {
    size_t block_size;            /* data blocks of uncompressed tables */
    size_t compressed_block_size; /* of compressed tables (0: block_size) */
    bool compression;
    int compression_level;
    int bloom_bits_per_key;
    bool no_dict; /* compressed tables without a dictionary (the older layout; tests) */
} lsm_table_options_t;

/* The checksum in a block trailer: it covers the stored bytes and the type byte, so a
 * flipped type is caught as surely as a flipped data byte. */
static inline uint32_t lsm_block_crc(const char *data, size_t len, int type)
{
    unsigned char t = (unsigned char)type;
    return shoal_checksum32(&t, 1) ^ (shoal_checksum32(data, len) * 0x9E3779B1u);
}

/* ---- builder ---- */

typedef struct lsm_table_builder lsm_table_builder_t;

/* Creates the file (takes nothing: the builder opens and owns it). */
int lsm_table_builder_new(lsm_env_t *env, const char *path, const lsm_table_options_t *o,
                          lsm_table_builder_t **b_p);
/* Keys in strictly increasing internal-key order. */
int lsm_table_builder_add(lsm_table_builder_t *b, lsm_slice_t ikey, lsm_slice_t value);
uint64_t lsm_table_builder_entries(const lsm_table_builder_t *b);
uint64_t lsm_table_builder_size(const lsm_table_builder_t *b); /* bytes so far, estimate */
/* Writes filter, index and footer, fdatasyncs and closes the file; *size = file size.
 * Frees the builder either way. */
int lsm_table_builder_finish(lsm_table_builder_t **b_p, uint64_t *size);
/* Closes and frees without finishing (the caller removes the file). */
void lsm_table_builder_abandon(lsm_table_builder_t **b_p);

/* ---- reader ---- */

typedef struct lsm_table lsm_table_t;

/* Reusable zstd decompression contexts: creating one per block would cost more than
 * decompressing the block. Thread-safe; shared by every table of a database. */
typedef struct lsm_dctx_pool lsm_dctx_pool_t;
lsm_dctx_pool_t *lsm_dctx_pool_new(void);
void lsm_dctx_pool_destroy(lsm_dctx_pool_t **p_p);

/* What a table reader borrows from its database (all must outlive the table; cache, log,
 * dctx and mapres may be NULL), whether to map the file (when the env can) or read it with
 * pread, and the tracker that bounds the mapped pages (mapres.h; NULL: unbounded). */
typedef struct {
    lsm_env_t *env;
    lsm_cache_t *cache;
    lsm_errlog_t *log;
    lsm_dctx_pool_t *dctx;
    bool mmap_reads;
    lsm_mapres_t *mapres;
} lsm_table_ctx_t;

/* Opens a table of file_size bytes; reads and verifies footer, index and filter. */
int lsm_table_open(const lsm_table_ctx_t *ctx, const char *path, uint64_t file_number,
                   uint64_t file_size, lsm_table_t **t_p);
void lsm_table_close(lsm_table_t **t_p);

/* Point lookup: finds the first entry >= ikey. Returns 0 and sets *found; when found,
 * key and value are copied out by the callback (they are borrowed only during the call). */
typedef void (*lsm_table_get_cb)(void *arg, lsm_slice_t ikey, lsm_slice_t value);
int lsm_table_get(lsm_table_t *t, lsm_slice_t ikey, uint64_t user_hash, bool fill_cache,
                  lsm_table_get_cb cb, void *arg, bool *found);
bool lsm_table_may_contain(lsm_table_t *t, uint64_t user_hash);

/* An iterator over the table's entries (the table must outlive it). */
lsm_iiter_t *lsm_table_iter(lsm_table_t *t, bool fill_cache);

uint64_t lsm_table_entries(const lsm_table_t *t);

/* Decodes one stored block (bytes + trailer) as read from disk: checks the checksum and
 * decompresses. ddict is the table's ZSTD_DDict (NULL when it has none: a type-2 block is
 * then corrupt). On success *out is the raw block, pointing into `stored` when uncompressed
 * (then *owned = NULL) or into a malloc'd *owned. Exposed for the fuzz target. */
int lsm_block_decode(const char *stored, size_t stored_len, lsm_dctx_pool_t *dctx,
                     const void *ddict, const char **out, size_t *out_len, char **owned);

#endif
