/* lsm.h - the public API of Shoal's storage engine: an embeddable LSM tree.
 *
 * One lsm_t is one database in one directory. Keys and values are byte strings, keys
 * ordered bytewise (memcmp, shorter first on a common prefix). Every call is thread-safe:
 * many threads may write (writes are grouped: one WAL append and at most one fdatasync per
 * group) and read at once; one background thread flushes memtables and compacts.
 *
 * Errors: every call that can fail returns 0 or a negative SHOAL_E* code (engine/error.h);
 * lsm_last_error() copies a one-line detail of the last failure seen by this database
 * (for SHOAL_ECORRUPT it names the file and the byte offset). Reads never return wrong
 * data: a checksum mismatch is an error, not a silent skip.
 *
 * Durability: a write acknowledged with sync = true survives any crash (power loss
 * included); one with sync = false survives a process crash (it is in the OS page cache)
 * but may be lost on power loss. Both are atomic: a batch is applied whole or not at all.
 *
 * Ownership: values returned by lsm_get are malloc'd and the caller takes them (free());
 * pointers returned by iterator accessors are borrowed and valid until the iterator moves.
 */
#ifndef SHOAL_LSM_H
#define SHOAL_LSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lsm lsm_t;
typedef struct lsm_env lsm_env_t; /* file I/O interface: engine/lsm/env.h */
typedef struct lsm_batch lsm_batch_t;
typedef struct lsm_snapshot lsm_snapshot_t;
typedef struct lsm_iter lsm_iter_t;
typedef struct lsm_export lsm_export_t;
typedef struct lsm_ingest lsm_ingest_t;
typedef struct lsm_pool lsm_pool_t; /* background threads shared by engines: pool.h */

#define LSM_MAX_LEVELS 7

typedef enum {
    LSM_SYNC_NONE = 0,   /* default writes are appended to the WAL, not fdatasync'ed */
    LSM_SYNC_ALWAYS = 1, /* default writes are fdatasync'ed before they return (grouped) */
} lsm_sync_t;

enum { LSM_MMAP_OFF = 0, LSM_MMAP_ON = 1, LSM_MMAP_UNCOMPRESSED = 2, LSM_MMAP_UNBOUNDED = 3 };

typedef struct {
    const char *dir;          /* database directory (created if create_if_missing) */
    bool create_if_missing;   /* default true */
    bool error_if_exists;     /* default false */
    size_t write_buffer_size; /* memtable size that triggers a flush; default 64 MiB */
    size_t max_write_buffers; /* memtables (active + immutable) before writes stall; default 2 */
    /* Target data block size of uncompressed tables; default 2 KiB: with pread a block
     * cache miss copies the whole block, and 2 KiB blocks made a 1M-key readrandom ~10%
     * faster than 4 KiB (4 of 4 interleaved pairs; +2.5 MiB of in-memory fences). */
    size_t block_size;
    size_t block_cache_size;  /* most bytes of blocks kept in memory; default 0: the memory
                               * budget decides (32 MiB when there is no budget) */
    bool compression;         /* zstd-compress table blocks; default false */
    int compression_level;    /* zstd level; default -1: fast decompression (see ARCHITECTURE) */
    int bloom_bits_per_key;   /* bloom filter size; 0 disables; default 10 */
    lsm_sync_t sync;          /* durability of writes whose options pass NULL */
    int l0_slowdown_trigger;  /* L0 tables at which each write is delayed 1 ms; default 8 */
    int l0_stop_trigger;      /* L0 tables at which writes wait for compaction; default 12 */
    uint64_t max_bytes_level1;   /* size target of level 1; default 64 MiB, x10 per level */
    uint64_t target_file_size;   /* size of a table written by compaction; default 8 MiB */
    lsm_env_t *env;              /* NULL: the POSIX environment; borrowed, must outlive db */
    /* No write-ahead log: for callers that keep their own (a Raft log). Writes then live
     * in the memtable until a flush (background, lsm_flush, or lsm_close), so a crash loses
     * the writes since the last flush, always a suffix of the history: tables hold a prefix.
     * write options' sync is ignored. Default false. */
    bool disable_wal;
    /* Target uncompressed size of a data block in compressed tables; default 2 KiB (0: the
     * block_size). Half the uncompressed size because a zstd block decodes in less than half
     * the time at half the size (a random read decodes one); each compressed table's first
     * block is its zstd dictionary, which keeps the small blocks' size down. */
    size_t compressed_block_size;
    /* Map table files (mmap) instead of reading blocks with pread: LSM_MMAP_OFF, LSM_MMAP_ON,
     * or LSM_MMAP_UNCOMPRESSED (the default): map only when the database does not compress.
     * Mapped reads skip a system call and a copy per block and use uncompressed blocks in
     * place (no cache entry: 1.9-2.5x the uncompressed random reads of pread), but every
     * table page read counts in the process's resident memory. So the pages the mappings
     * hold are bounded by the memory budget (the share the memtables leave, as the block
     * cache's is): past it, blocks are read with pread (engine/lsm/mapres.h). A compressed
     * block must be decoded into memory anyway, so mapping it buys little; an uncompressed
     * one is where it pays. LSM_MMAP_UNBOUNDED maps an uncompressed database without the
     * bound: every table page read stays resident (the fastest random reads of a database
     * larger than the budget, and the most memory). The posix env maps only where the kernel
     * can map one page per fault (Linux 6.7+ with userfaultfd), else tables use pread.
     * docs/BENCHMARKS.md has them measured. */
    int mmap_reads;
    /* Bytes of memory the memtables and the block cache share: the cache holds what the
     * memtables leave (budget minus their arenas, at least 4 MiB, at most block_cache_size
     * when that is set), and a write waits for the flush of an immutable memtable rather than
     * grow the memtables past the budget. So the engine's heap stays near the budget in every
     * phase (fills, reads, both at once). 0: no shared budget (the cache is block_cache_size,
     * memtables grow to max_write_buffers write buffers). Default 64 MiB. */
    size_t memory_budget;
    /* Background threads shared with other engines (lsm_pool_new in engine/lsm/pool.h):
     * this engine's flushes and compactions run there, one unit at a time in turn with
     * the others'. NULL (the default): the engine starts a thread of its own. Borrowed;
     * the pool must outlive the engine. */
    lsm_pool_t *pool;
} lsm_options_t;

/* Fills o with the defaults above (dir = NULL). */
void lsm_options_init(lsm_options_t *o);

typedef struct {
    bool sync; /* fdatasync the WAL before returning */
} lsm_write_options_t;

typedef struct {
    const lsm_snapshot_t *snapshot; /* NULL: the latest state at the time of the call */
    const void *lower_bound;        /* iterators: first key allowed (inclusive), or NULL */
    size_t lower_len;
    const void *upper_bound; /* iterators: keys must be < upper_bound (exclusive), or NULL */
    size_t upper_len;
    bool fill_cache; /* default true; false for big scans that should not evict hot blocks */
} lsm_read_options_t;

/* Fills o with the defaults (no snapshot, no bounds, fill_cache = true). */
void lsm_read_options_init(lsm_read_options_t *o);

/* ---- open / close -------------------------------------------------------------------- */

/* Opens (recovering WAL and manifest) or creates the database in o->dir. On failure returns
 * a SHOAL_E* code, sets *db_p = NULL and writes a detail into err (if err != NULL). */
int lsm_open(const lsm_options_t *o, lsm_t **db_p, char *err, size_t errcap);

/* Waits for the background work in progress, syncs the WAL, closes; safe on NULL. */
void lsm_close(lsm_t **db_p);

/* Removes every file of a closed database in dir (and the directory if it is then empty). */
int lsm_destroy(const char *dir, lsm_env_t *env);

/* Copies the detail of the last failure (one line, NUL-terminated) into buf; returns buf. */
const char *lsm_last_error(lsm_t *db, char *buf, size_t cap);

/* ---- writes -------------------------------------------------------------------------- */

/* wo = NULL uses the database's default sync mode. */
int lsm_put(lsm_t *db, const lsm_write_options_t *wo, const void *key, size_t klen,
            const void *val, size_t vlen);
int lsm_delete(lsm_t *db, const lsm_write_options_t *wo, const void *key, size_t klen);

/* An atomic group of puts and deletes, applied in order by lsm_write. */
lsm_batch_t *lsm_batch_new(void);
int lsm_batch_put(lsm_batch_t *b, const void *key, size_t klen, const void *val, size_t vlen);
int lsm_batch_delete(lsm_batch_t *b, const void *key, size_t klen);
void lsm_batch_clear(lsm_batch_t *b);
uint32_t lsm_batch_count(const lsm_batch_t *b);
size_t lsm_batch_size(const lsm_batch_t *b); /* encoded bytes */
void lsm_batch_destroy(lsm_batch_t **b_p);

/* Applies the batch atomically (the batch is not consumed and can be reused). */
int lsm_write(lsm_t *db, const lsm_write_options_t *wo, const lsm_batch_t *b);

/* ---- reads --------------------------------------------------------------------------- */

/* On success *val (malloc'd, caller frees; NUL-terminated for convenience, not counted in
 * *vlen) holds the value. Returns SHOAL_ENOTFOUND when the key is absent or deleted. */
int lsm_get(lsm_t *db, const lsm_read_options_t *ro, const void *key, size_t klen, void **val,
            size_t *vlen);

/* A consistent point-in-time view; cheap (a sequence number). Release every snapshot before
 * lsm_close. */
const lsm_snapshot_t *lsm_snapshot_new(lsm_t *db);
void lsm_snapshot_release(lsm_t *db, const lsm_snapshot_t **snap_p);
uint64_t lsm_snapshot_sequence(const lsm_snapshot_t *snap);

/* An iterator over a consistent view (ro->snapshot, or the state at creation), restricted
 * to [lower_bound, upper_bound). Starts unpositioned (not valid). The bounds are copied. */
int lsm_iter_new(lsm_t *db, const lsm_read_options_t *ro, lsm_iter_t **it_p);
void lsm_iter_seek(lsm_iter_t *it, const void *key, size_t klen); /* first key >= key */
void lsm_iter_seek_for_prev(lsm_iter_t *it, const void *key, size_t klen); /* last <= key */
void lsm_iter_seek_to_first(lsm_iter_t *it);
void lsm_iter_seek_to_last(lsm_iter_t *it);
void lsm_iter_next(lsm_iter_t *it); /* requires valid */
void lsm_iter_prev(lsm_iter_t *it); /* requires valid */
bool lsm_iter_valid(const lsm_iter_t *it);
const void *lsm_iter_key(const lsm_iter_t *it, size_t *klen);   /* borrowed */
const void *lsm_iter_value(const lsm_iter_t *it, size_t *vlen); /* borrowed */
/* 0, or the error that ended the iteration early (then valid() is false). */
int lsm_iter_status(const lsm_iter_t *it);
void lsm_iter_destroy(lsm_iter_t **it_p);

/* ---- maintenance --------------------------------------------------------------------- */

/* Writes the memtable to a level-0 table and waits until it is durable. */
int lsm_flush(lsm_t *db);

/* Flushes, then compacts every table overlapping [begin, end] (NULL = unbounded) down to
 * the last level, waiting for it; afterwards deleted and overwritten entries in the range
 * take no space. */
int lsm_compact_range(lsm_t *db, const void *begin, size_t blen, const void *end, size_t elen);

typedef struct {
    uint64_t last_sequence;
    uint64_t memtable_bytes;  /* active + immutable memtables */
    uint64_t wal_bytes;       /* bytes in the current WAL */
    int files[LSM_MAX_LEVELS];
    uint64_t bytes[LSM_MAX_LEVELS];
    uint64_t total_table_bytes;
    uint64_t cache_capacity, cache_usage, cache_hits, cache_misses;
    /* Mapped tables: bytes of their pages resident (admitted, within the mapping's share of
     * the budget), releases of a table's pages (the share shrank), block reads the mapping
     * refused for want of room (read with pread). */
    uint64_t map_resident, map_releases, map_refused;
    uint64_t bloom_useful; /* point lookups that a bloom filter answered without a read */
    uint64_t flushes, compactions;
    uint64_t compaction_bytes_read, compaction_bytes_written;
    uint64_t stalls, stall_micros; /* writes delayed or stopped by L0 or memtable limits */
    uint64_t wal_syncs, writes, write_groups;
    int background_error; /* 0, or the error that stopped background work (writes fail) */
} lsm_stats_t;

void lsm_stats(lsm_t *db, lsm_stats_t *out);

/* ---- snapshot export / ingest (Raft snapshots) ---------------------------------------- *
 * Export produces a self-checking byte stream of every live key and value at one snapshot,
 * in key order; it is read in chunks of any size (Raft InstallSnapshot chunks). Ingest takes
 * such a stream in chunks of any size, builds tables from it beside the live ones, and on
 * finish replaces the whole content of the database in one manifest edit: readers see the
 * old content or the new, never a mix; a crash before finish leaves the old content. The
 * stream format is in docs/FORMATS.md. */

/* Starts an export of the state at snap (NULL: now). The export holds its own snapshot. */
int lsm_export_begin(lsm_t *db, const lsm_snapshot_t *snap, lsm_export_t **ex_p);
/* Copies up to cap bytes of the stream into buf; *n = 0 at the end. */
int lsm_export_read(lsm_export_t *ex, void *buf, size_t cap, size_t *n);
void lsm_export_end(lsm_export_t **ex_p);

int lsm_ingest_begin(lsm_t *db, lsm_ingest_t **in_p);
int lsm_ingest_write(lsm_ingest_t *in, const void *buf, size_t len);
/* Checks the stream is complete and intact, then swaps it in atomically (and durably).
 * Always frees the ingest and nulls *in_p. */
int lsm_ingest_finish(lsm_ingest_t **in_p);
/* Drops a partial ingest, removing its files. */
void lsm_ingest_abort(lsm_ingest_t **in_p);

#ifdef __cplusplus
}
#endif

#endif
