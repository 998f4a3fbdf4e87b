/* db_impl.h - the database object shared by db.c (open, close, manifest, background
 * thread), recovery.c, write.c, read.c, compaction.c, db_iter.c and export.c. Not part of
 * the public API.
 *
 * Locking: `mu` guards every field marked (mu). The write path (writers queue, leader),
 * readers (to pin mem/imm/version) and the background thread take it briefly; no file I/O
 * is done under it except manifest edits (rare: one per flush or compaction).
 * last_seq is atomic so readers can take a snapshot without the mutex.
 *
 * Threads: callers, and one background thread that flushes immutable memtables and runs
 * compactions (compaction.c). */
#ifndef SHOAL_LSM_DB_IMPL_H
#define SHOAL_LSM_DB_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "engine/lsm/cache.h"
#include "engine/lsm/env.h"
#include "engine/lsm/errlog.h"
#include "engine/lsm/lsm.h"
#include "engine/lsm/memtable.h"
#include "engine/lsm/pool.h"
#include "engine/lsm/table.h"
#include "engine/lsm/version.h"
#include "engine/lsm/wal.h"

#define LSM_MAX_IMM 8

typedef struct lsm_writer lsm_writer_t;

struct lsm_snapshot {
    uint64_t seq;
    lsm_snapshot_t *prev, *next; /* (mu) */
};

typedef struct {
    int level; /* -1: none */
    lsm_buf_t begin, end;
    bool has_begin, has_end;
    bool done;
    int rc;
} lsm_manual_t;

struct lsm {
    lsm_options_t o;
    char *dir;
    lsm_env_t *env;
    lsm_file_t *lock;
    lsm_errlog_t log;
    lsm_cache_t *cache;
    lsm_mapres_t *mapres; /* bounds mapped table pages by the cache's share (mapres.h) */
    lsm_dctx_pool_t *dctx;
    lsm_table_options_t topt;

    pthread_mutex_t mu;
    pthread_cond_t bg_cv;   /* background work finished something / new work */
    pthread_t bg_thread;     /* without o.pool */
    lsm_pool_member_t bg_member; /* with o.pool */
    bool bg_started;
    bool shutting_down;      /* (mu) */
    bool bg_busy;            /* (mu) a job is running outside the mutex */
    int bg_paused;           /* (mu) ingest holds the background thread off */
    int bg_error;            /* (mu) sticky: writes fail once set */

    /* write path */
    lsm_writer_t *wq_head, *wq_tail; /* (mu) */
    lsm_buf_t group;                 /* leader only */
    lsm_memtable_t *mem;             /* (mu) */
    lsm_memtable_t *imm[LSM_MAX_IMM]; /* (mu) oldest first */
    int nimm;
    lsm_wal_writer_t wal;               /* leader only (and close) */
    uint64_t wal_number;                /* (mu) */
    lsm_wal_writer_t old_wals[LSM_MAX_IMM + 1]; /* leader only: closed WALs not yet synced */
    int nold_wals;
    atomic_uint_fast64_t last_seq;

    /* versions and the manifest */
    lsm_version_t *current;   /* (mu) */
    lsm_version_t versions;   /* (mu) sentinel of the list of live versions */
    lsm_wal_writer_t manifest;
    uint64_t manifest_number;
    uint64_t next_file;       /* (mu) */
    uint64_t log_number;      /* (mu) oldest WAL still needed */
    uint64_t *pending;        /* (mu) file numbers being written, not yet in a version */
    int npending, cap_pending;
    lsm_buf_t compact_pointer[LSM_MAX_LEVELS]; /* (mu) round-robin start per level */
    lsm_manual_t *manual;     /* (mu) a compact_range request */
    lsm_snapshot_t snapshots; /* (mu) sentinel */

    /* statistics (mu, or atomics) */
    uint64_t flushes, compactions, comp_read, comp_written, stalls, stall_micros;
    size_t budget_applied; /* (mu) memtable bytes the cache's capacity was last set for */
    atomic_uint_fast64_t bloom_useful, writes, write_groups, wal_syncs;
};

/* db.c */
void lsm_db_path(const lsm_t *db, char *buf, size_t cap, uint64_t number, const char *suffix);
int lsm_db_open_table(void *db, uint64_t number, uint64_t size, lsm_table_t **t);
uint64_t lsm_db_new_file_number(lsm_t *db);           /* (mu) */
void lsm_db_pending_add(lsm_t *db, uint64_t number);   /* (mu) */
void lsm_db_pending_remove(lsm_t *db, uint64_t number); /* (mu) */
/* Writes the edit to the manifest (synced) and installs the new version; (mu) held. The
 * opened tables, if given, are index-aligned with edit->added and taken. */
int lsm_db_log_and_apply(lsm_t *db, lsm_edit_t *edit, lsm_table_t **opened);
void lsm_db_remove_obsolete(lsm_t *db); /* (mu) held; drops it during the file removal */
void lsm_db_set_bg_error(lsm_t *db, int rc); /* (mu) */
void lsm_db_wake_bg(lsm_t *db);              /* (mu) background work may be waiting */
uint64_t lsm_db_smallest_snapshot(lsm_t *db); /* (mu) */
void lsm_db_unref_version(lsm_t *db, lsm_version_t *v);   /* takes mu */
void lsm_db_release_version(lsm_t *db, lsm_version_t *v); /* mu held */

void lsm_db_install_version(lsm_t *db, lsm_version_t *v); /* mu held; takes v's ref */
int lsm_db_new_manifest(lsm_t *db); /* writes a manifest of the current version + CURRENT */

/* recovery.c */
int lsm_db_recover(lsm_t *db);

/* write.c */
int lsm_db_open_new_wal(lsm_t *db, lsm_wal_writer_t *w, uint64_t *number); /* + dir sync */
int lsm_db_make_room(lsm_t *db, bool force); /* mu held, as leader; see write.c */
int lsm_db_sync_old_wals(lsm_t *db);         /* leader (or close) only, without mu */

/* Runs fn as the write leader: no write is in flight and none starts until it returns;
 * fn runs with mu held. Used by flush and ingest, which swap the memtable and the WAL. */
int lsm_db_as_leader(lsm_t *db, int (*fn)(lsm_t *db, void *arg), void *arg);

/* Starts a new WAL + memtable and drops the current and immutable ones without flushing
 * them (ingest replaces their content); mu held, as leader. */
int lsm_db_reset_memtables(lsm_t *db);

/* compaction.c: background work, called by the background thread with mu held. */
bool lsm_db_needs_compaction(lsm_t *db);
/* The memory budget (budget.c), mu held: bytes in memtables; the cache's capacity after the
 * memtables changed; whether a write must wait for a pending flush. */
size_t lsm_db_memtable_bytes(const lsm_t *db);
size_t lsm_db_initial_cache(const lsm_options_t *o);
void lsm_db_budget_update(lsm_t *db);
/* Sets the cache's capacity and the mapping's limit for `used` memtable bytes. */
void lsm_db_budget_apply(lsm_t *db, size_t used);
bool lsm_db_maps_tables(const lsm_t *db); /* per the option mmap_reads */
bool lsm_db_budget_full(const lsm_t *db);

int lsm_db_flush_imm(lsm_t *db);    /* writes the oldest immutable memtable to level 0 */
int lsm_db_compact_once(lsm_t *db); /* runs one picked or manual compaction */
/* Writes memtable m to one table recorded at `level` in edit; no mu needed. Level-0 tables
 * are written uncompressed (see compaction.c). */
int lsm_db_write_level0(lsm_t *db, lsm_memtable_t *m, int level, lsm_edit_t *edit);

/* A sink of sorted entries that cuts them into tables of target_file_size (never splitting
 * one user key across two tables) and records each finished table in an edit. Used by
 * compaction and ingest. Takes mu briefly to allocate file numbers. */
typedef struct {
    lsm_t *db;
    int level;
    lsm_edit_t *edit;
    lsm_table_builder_t *b;
    uint64_t number;
    lsm_buf_t smallest, largest;
    uint64_t target;      /* cut tables at this size (UINT64_MAX: one table) */
    bool compress;        /* zstd blocks (default: the database's option) */
    uint64_t bytes_written;
} lsm_outputs_t;

void lsm_outputs_init(lsm_outputs_t *o, lsm_t *db, int level, lsm_edit_t *edit);
int lsm_outputs_add(lsm_outputs_t *o, lsm_slice_t ikey, lsm_slice_t value);
int lsm_outputs_finish(lsm_outputs_t *o); /* finishes the open table, if any */
/* Abandons the open table and frees; file numbers stay pending for the caller to drop. */
void lsm_outputs_abandon(lsm_outputs_t *o);

/* db_iter.c */
lsm_iiter_t *lsm_db_internal_iter(lsm_t *db, bool fill_cache, lsm_version_t **v_out);

#endif
