/* db.c - the database object: options, open and close, the background thread's loop,
 * manifest edits (the atomic commit point of every change to the set of tables), removal
 * of obsolete files, snapshots, flush / compact_range and statistics. The write path is in
 * write.c, point reads in read.c, recovery in recovery.c.
 *
 * Manifest edits are written under the mutex: they are rare (one per flush or compaction)
 * and small, and doing them there keeps "the current version" and "what the manifest says"
 * one and the same at every moment anyone can look. A new table's directory entry is synced
 * before the edit that names it, so a crash never leaves a manifest pointing at a table
 * whose name was lost. */
#include <dirent.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"


void lsm_options_init(lsm_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->create_if_missing = true;
    o->write_buffer_size = 64u << 20;
    o->max_write_buffers = 2;
    o->block_size = 2048;
    o->compressed_block_size = 2048;
    o->mmap_reads = LSM_MMAP_UNCOMPRESSED;
    o->block_cache_size = 0;
    o->memory_budget = 64u << 20;
    o->compression_level = -1;
    o->bloom_bits_per_key = 10;
    o->sync = LSM_SYNC_NONE;
    o->l0_slowdown_trigger = 8;
    o->l0_stop_trigger = 12;
    o->max_bytes_level1 = 64u << 20;
    o->target_file_size = 8u << 20;
}

void lsm_read_options_init(lsm_read_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->fill_cache = true;
}

/* ---- small helpers ---- */

void lsm_db_path(const lsm_t *db, char *buf, size_t cap, uint64_t number, const char *suffix)
{
    if (!strcmp(suffix, "MANIFEST"))
        snprintf(buf, cap, "%s/MANIFEST-%06" PRIu64, db->dir, number);
    else
        snprintf(buf, cap, "%s/%06" PRIu64 ".%s", db->dir, number, suffix);
}

int lsm_db_open_table(void *arg, uint64_t number, uint64_t size, lsm_table_t **t)
{
    lsm_t *db = arg;
    char path[4096];
    lsm_db_path(db, path, sizeof path, number, "sst");
    lsm_mapres_t *bound = db->o.mmap_reads == LSM_MMAP_UNBOUNDED ? NULL : db->mapres;
    lsm_table_ctx_t ctx = {db->env, db->cache, &db->log, db->dctx, lsm_db_maps_tables(db), bound};
    return lsm_table_open(&ctx, path, number, size, t);
}

uint64_t lsm_db_new_file_number(lsm_t *db)
{
    return db->next_file++;
}

void lsm_db_pending_add(lsm_t *db, uint64_t number)
{
    if (db->npending == db->cap_pending) {
        int cap = db->cap_pending ? db->cap_pending * 2 : 16;
        uint64_t *p = realloc(db->pending, (size_t)cap * sizeof *p);
        if (!p)
            return; /* then the file is unprotected: obsolete removal skips numbers >= next */
        db->pending = p;
        db->cap_pending = cap;
    }
    db->pending[db->npending++] = number;
}

void lsm_db_pending_remove(lsm_t *db, uint64_t number)
{
    for (int i = 0; i < db->npending; i++)
        if (db->pending[i] == number) {
            db->pending[i] = db->pending[--db->npending];
            return;
        }
}

void lsm_db_set_bg_error(lsm_t *db, int rc)
{
    if (rc && !db->bg_error)
        db->bg_error = rc;
    pthread_cond_broadcast(&db->bg_cv);
}

uint64_t lsm_db_smallest_snapshot(lsm_t *db)
{
    if (db->snapshots.next != &db->snapshots)
        return db->snapshots.next->seq;
    return atomic_load(&db->last_seq);
}

static void version_list_add(lsm_t *db, lsm_version_t *v)
{
    v->next = &db->versions;
    v->prev = db->versions.prev;
    v->prev->next = v;
    db->versions.prev = v;
}

/* Drops a reference (mu held); the last one unlinks the version from the live list. */
void lsm_db_release_version(lsm_t *db, lsm_version_t *v)
{
    if (atomic_load(&v->refs) == 1 && v->prev) {
        v->prev->next = v->next;
        v->next->prev = v->prev;
    }
    lsm_version_unref(v);
}

void lsm_db_unref_version(lsm_t *db, lsm_version_t *v)
{
    pthread_mutex_lock(&db->mu);
    lsm_db_release_version(db, v);
    pthread_mutex_unlock(&db->mu);
}

void lsm_db_install_version(lsm_t *db, lsm_version_t *v)
{
    version_list_add(db, v);
    lsm_version_t *old = db->current;
    db->current = v;
    if (old)
        lsm_db_release_version(db, old);
}

/* ---- manifest ---- */

static int set_current(lsm_t *db, uint64_t manifest_number)
{
    char tmp[4096], cur[4096], line[64];
    lsm_db_path(db, tmp, sizeof tmp, manifest_number, "dbtmp");
    snprintf(cur, sizeof cur, "%s/CURRENT", db->dir);
    int n = snprintf(line, sizeof line, "MANIFEST-%06" PRIu64 "\n", manifest_number);
    lsm_file_t *f;
    int rc = db->env->open(db->env, tmp, LSM_OPEN_WRITE, &f);
    if (rc)
        return lsm_err(&db->log, rc, "cannot create %s", tmp);
    rc = db->env->append(f, line, (size_t)n);
    if (!rc)
        rc = db->env->sync(f);
    db->env->close(f);
    if (!rc)
        rc = db->env->rename(db->env, tmp, cur);
    if (!rc)
        rc = db->env->sync_dir(db->env, db->dir);
    return rc ? lsm_err(&db->log, rc, "cannot install %s", cur) : 0;
}

/* An edit that recreates the current version from nothing (the first record of a new
 * manifest). */
static int snapshot_edit(lsm_t *db, lsm_edit_t *e)
{
    lsm_version_t *v = db->current;
    for (int l = 0; l < LSM_MAX_LEVELS; l++)
        for (int i = 0; i < v->nfiles[l]; i++) {
            lsm_file_meta_t *f = v->files[l][i];
            int rc = lsm_edit_add_file(e, l, f->number, f->size, lsm_meta_smallest(f),
                                       lsm_meta_largest(f));
            if (rc)
                return rc;
        }
    return 0;
}

static void fill_edit_counters(lsm_t *db, lsm_edit_t *e)
{
    if (!e->has_log_number) {
        e->has_log_number = true;
        e->log_number = db->log_number;
    }
    e->has_next_file = true;
    e->next_file = db->next_file;
    e->has_last_seq = true;
    e->last_seq = atomic_load(&db->last_seq);
}

static int write_edit(lsm_t *db, lsm_wal_writer_t *w, const lsm_edit_t *e)
{
    lsm_buf_t buf = {0};
    int rc = lsm_edit_encode(e, &buf);
    if (!rc)
        rc = lsm_wal_add_copy(w, buf.data, buf.len);
    if (!rc)
        rc = lsm_wal_sync(w);
    lsm_buf_free(&buf);
    return rc;
}

/* Starts a new manifest holding the current version (open, ingest). */
int lsm_db_new_manifest(lsm_t *db)
{
    char path[4096];
    uint64_t number = lsm_db_new_file_number(db);
    lsm_db_path(db, path, sizeof path, number, "MANIFEST");
    lsm_wal_writer_t w;
    lsm_edit_t e;
    lsm_edit_init(&e);
    int rc = lsm_wal_writer_open(db->env, path, LSM_OPEN_WRITE, &w);
    if (rc)
        return lsm_err(&db->log, rc, "cannot create %s", path);
    rc = snapshot_edit(db, &e);
    fill_edit_counters(db, &e);
    if (!rc)
        rc = write_edit(db, &w, &e);
    lsm_edit_free(&e);
    if (!rc)
        rc = set_current(db, number);
    if (rc) {
        lsm_wal_writer_close(&w);
        return lsm_err(&db->log, rc, "cannot write %s", path);
    }
    lsm_wal_writer_close(&db->manifest);
    db->manifest = w;
    db->manifest_number = number;
    return 0;
}

int lsm_db_log_and_apply(lsm_t *db, lsm_edit_t *edit, lsm_table_t **opened)
{
    lsm_version_t *v;
    fill_edit_counters(db, edit);
    int rc = lsm_version_apply(db->current, edit, opened, lsm_db_open_table, db, &v);
    if (rc)
        return lsm_err(&db->log, rc, "cannot build the new version");
    if (edit->nadded > 0) /* the new tables' names must be durable before the manifest */
        rc = db->env->sync_dir(db->env, db->dir);
    if (!rc)
        rc = write_edit(db, &db->manifest, edit);
    if (rc) {
        lsm_version_unref(v);
        return lsm_err(&db->log, rc, "cannot write MANIFEST-%06" PRIu64, db->manifest_number);
    }
    db->log_number = edit->log_number;
    lsm_db_install_version(db, v);
    return 0;
}

/* ---- obsolete files ---- */

typedef struct {
    lsm_t *db;
    uint64_t *live;
    size_t nlive;
    uint64_t limit, log_number, manifest;
    char **doomed;
    size_t ndoomed, cap;
} gc_t;

static bool is_live(const gc_t *g, uint64_t n)
{
    for (size_t i = 0; i < g->nlive; i++)
        if (g->live[i] == n)
            return true;
    return false;
}

static int gc_visit(void *arg, const char *name)
{
    gc_t *g = arg;
    unsigned long long n;
    char suffix[16];
    int used = 0;
    bool doom = false;
    if (sscanf(name, "%llu.%15s%n", &n, suffix, &used) == 2 && name[used] == '\0') {
        if (!strcmp(suffix, "sst"))
            doom = n < g->limit && !is_live(g, n);
        else if (!strcmp(suffix, "log"))
            doom = n < g->log_number;
        else if (!strcmp(suffix, "dbtmp"))
            doom = n < g->limit && !is_live(g, n);
    } else if (sscanf(name, "MANIFEST-%llu%n", &n, &used) == 1 && name[used] == '\0') {
        doom = n < g->manifest;
    }
    if (!doom)
        return 0;
    if (g->ndoomed == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        char **d = realloc(g->doomed, cap * sizeof *d);
        if (!d)
            return 1;
        g->doomed = d;
        g->cap = cap;
    }
    if ((g->doomed[g->ndoomed] = strdup(name)) != NULL)
        g->ndoomed++;
    return 0;
}

static int collect_live(lsm_t *db, gc_t *g)
{
    size_t n = (size_t)db->npending;
    for (lsm_version_t *v = db->versions.next; v != &db->versions; v = v->next)
        for (int l = 0; l < LSM_MAX_LEVELS; l++)
            n += (size_t)v->nfiles[l];
    g->live = malloc((n + 1) * sizeof *g->live);
    if (!g->live)
        return SHOAL_ENOMEM;
    for (int i = 0; i < db->npending; i++)
        g->live[g->nlive++] = db->pending[i];
    for (lsm_version_t *v = db->versions.next; v != &db->versions; v = v->next)
        for (int l = 0; l < LSM_MAX_LEVELS; l++)
            for (int i = 0; i < v->nfiles[l]; i++)
                g->live[g->nlive++] = v->files[l][i]->number;
    return 0;
}

void lsm_db_remove_obsolete(lsm_t *db)
{
    gc_t g = {.db = db, .limit = db->next_file, .log_number = db->log_number,
              .manifest = db->manifest_number};
    if (db->bg_error || collect_live(db, &g))
        return; /* after an error, keep every file: a human may need them */
    for (int i = 0; i < db->nimm; i++)
        if (db->imm[i]->wal_number < g.log_number)
            g.log_number = db->imm[i]->wal_number;
    pthread_mutex_unlock(&db->mu);
    db->env->list(db->env, db->dir, gc_visit, &g);
    for (size_t i = 0; i < g.ndoomed; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", db->dir, g.doomed[i]);
        db->env->remove(db->env, path);
        free(g.doomed[i]);
    }
    free(g.doomed);
    free(g.live);
    pthread_mutex_lock(&db->mu);
}

/* ---- background thread ---- */

/* Gives the free pages of the heap back to the OS after a flush or compaction (mu held on
 * entry and exit, dropped meanwhile). A job frees megabytes of buffers (table builder, filter
 * hashes, readahead windows) that glibc keeps resident as free chunks, and the block cache
 * then grows around them: 9-15 MiB of free heap in the 1M-key benchmark (mallinfo2), counted
 * in the process's peak RSS beside the memory budget. malloc_trim walks the free lists
 * (well under a millisecond here) and madvises whole free pages away. */
static void release_free_heap(lsm_t *db)
{
#ifdef __GLIBC__
    if (db->o.memory_budget) {
        pthread_mutex_unlock(&db->mu);
        malloc_trim(0);
        pthread_mutex_lock(&db->mu);
    }
#else
    (void)db;
#endif
}

/* One unit of background work (mu held): flush the oldest immutable memtable, else one
 * compaction step. False when there is nothing it may do now. */
static bool bg_step(lsm_t *db)
{
    if (db->shutting_down || db->bg_paused || db->bg_error)
        return false;
    int rc;
    db->bg_busy = true;
    if (db->nimm > 0) {
        rc = lsm_db_flush_imm(db);
    } else if ((db->manual && !db->manual->done) || lsm_db_needs_compaction(db)) {
        rc = lsm_db_compact_once(db);
    } else {
        db->bg_busy = false;
        return false;
    }
    db->bg_busy = false;
    lsm_db_set_bg_error(db, rc); /* also wakes waiters */
    release_free_heap(db);
    return true;
}

static void *bg_main(void *arg)
{
    lsm_t *db = arg;
    pthread_mutex_lock(&db->mu);
    while (!db->shutting_down)
        if (!bg_step(db))
            pthread_cond_wait(&db->bg_cv, &db->mu);
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* A pool worker's turn for this engine (pool.h). */
static bool bg_pool_step(void *arg)
{
    lsm_t *db = arg;
    pthread_mutex_lock(&db->mu);
    bool did = bg_step(db);
    pthread_mutex_unlock(&db->mu);
    return did;
}

void lsm_db_wake_bg(lsm_t *db)
{
    pthread_cond_broadcast(&db->bg_cv);
    if (db->o.pool && db->bg_started)
        lsm_pool_schedule(db->o.pool, &db->bg_member);
}

/* Starts the background work: its own thread, or a place in the pool. */
static int start_bg(lsm_t *db)
{
    if (db->o.pool) {
        lsm_pool_attach(db->o.pool, &db->bg_member, bg_pool_step, db);
        db->bg_started = true;
        pthread_mutex_lock(&db->mu);
        lsm_db_wake_bg(db); /* recovery may have left a memtable to flush or levels to compact */
        pthread_mutex_unlock(&db->mu);
        return 0;
    }
    if (pthread_create(&db->bg_thread, NULL, bg_main, db) != 0)
        return lsm_err(&db->log, SHOAL_ENOMEM, "cannot start the background thread");
    db->bg_started = true;
    return 0;
}

static void stop_bg(lsm_t *db)
{
    pthread_mutex_lock(&db->mu);
    db->shutting_down = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    if (!db->bg_started)
        return;
    if (db->o.pool)
        lsm_pool_detach(db->o.pool, &db->bg_member);
    else
        pthread_join(db->bg_thread, NULL);
}

/* ---- open / close ---- */

static void sanitize(lsm_options_t *o)
{
    if (o->write_buffer_size < (64u << 10))
        o->write_buffer_size = 64u << 10;
    if (o->max_write_buffers < 2)
        o->max_write_buffers = 2;
    if (o->max_write_buffers > LSM_MAX_IMM + 1)
        o->max_write_buffers = LSM_MAX_IMM + 1;
    if (o->block_size < 256)
        o->block_size = 256;
    if (o->compressed_block_size == 0)
        o->compressed_block_size = o->block_size;
    if (o->compressed_block_size < 256)
        o->compressed_block_size = 256;
    if (o->l0_slowdown_trigger < 2)
        o->l0_slowdown_trigger = 2;
    if (o->l0_stop_trigger <= o->l0_slowdown_trigger)
        o->l0_stop_trigger = o->l0_slowdown_trigger + 1;
    if (o->max_bytes_level1 < (1u << 20))
        o->max_bytes_level1 = 1u << 20;
    if (o->target_file_size < (64u << 10))
        o->target_file_size = 64u << 10;
    if (o->memory_budget == 0 && o->block_cache_size == 0)
        o->block_cache_size = 32u << 20;
}

static lsm_t *db_alloc(const lsm_options_t *o)
{
    lsm_t *db = calloc(1, sizeof *db);
    if (!db || !(db->dir = strdup(o->dir))) {
        free(db);
        return NULL;
    }
    db->o = *o;
    db->o.dir = db->dir;
    sanitize(&db->o);
    db->env = o->env ? o->env : lsm_env_posix();
    lsm_errlog_init(&db->log);
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    db->versions.next = db->versions.prev = &db->versions;
    db->snapshots.next = db->snapshots.prev = &db->snapshots;
    db->topt = (lsm_table_options_t){db->o.block_size, db->o.compressed_block_size,
                                     db->o.compression, db->o.compression_level,
                                     db->o.bloom_bits_per_key, false};
    atomic_init(&db->last_seq, 0);
    return db;
}

static void db_free(lsm_t *db)
{
    lsm_memtable_unref(db->mem);
    for (int i = 0; i < db->nimm; i++)
        lsm_memtable_unref(db->imm[i]);
    if (db->current)
        lsm_db_release_version(db, db->current);
    lsm_wal_writer_close(&db->wal);
    for (int i = 0; i < db->nold_wals; i++)
        lsm_wal_writer_close(&db->old_wals[i]);
    lsm_wal_writer_close(&db->manifest);
    lsm_cache_destroy(&db->cache);
    lsm_mapres_destroy(&db->mapres); /* after the last version: no table is left */
    lsm_dctx_pool_destroy(&db->dctx);
    if (db->lock)
        db->env->close(db->lock);
    for (int l = 0; l < LSM_MAX_LEVELS; l++)
        lsm_buf_free(&db->compact_pointer[l]);
    lsm_buf_free(&db->group);
    free(db->pending);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->bg_cv);
    lsm_errlog_destroy(&db->log);
    free(db->dir);
    free(db);
}

static int open_locked(lsm_t *db)
{
    char path[4096];
    uint32_t probe = 1;
    if (*(char *)&probe != 1)
        return lsm_err(&db->log, SHOAL_EINVAL, "big-endian hosts are not supported");
    int rc = db->o.create_if_missing ? db->env->mkdir(db->env, db->dir) : 0;
    if (rc)
        return lsm_err(&db->log, rc, "cannot create directory %s", db->dir);
    snprintf(path, sizeof path, "%s/LOCK", db->dir);
    if ((rc = db->env->lock(db->env, path, &db->lock)) != 0)
        return lsm_err(&db->log, rc, "cannot lock %s (open elsewhere?)", path);
    if (!(db->cache = lsm_cache_new(lsm_db_initial_cache(&db->o))) ||
        !(db->mapres = lsm_mapres_new(0)) || !(db->dctx = lsm_dctx_pool_new()))
        return SHOAL_ENOMEM;
    lsm_db_budget_apply(db, 0);
    rc = lsm_db_recover(db); /* single-threaded still: recover takes mu only where helpers need it */
    pthread_mutex_lock(&db->mu);
    lsm_db_budget_update(db); /* the recovered memtable's bytes */
    if (!rc)
        lsm_db_remove_obsolete(db);
    pthread_mutex_unlock(&db->mu);
    return rc ? rc : start_bg(db);
}

int lsm_open(const lsm_options_t *o, lsm_t **db_p, char *err, size_t errcap)
{
    *db_p = NULL;
    if (!o || !o->dir || !o->dir[0]) {
        if (err && errcap)
            snprintf(err, errcap, "invalid argument: no directory");
        return SHOAL_EINVAL;
    }
    lsm_t *db = db_alloc(o);
    if (!db)
        return SHOAL_ENOMEM;
    int rc = open_locked(db);
    if (rc) {
        if (err && errcap) {
            lsm_errlog_copy(&db->log, err, errcap);
            if (!err[0])
                snprintf(err, errcap, "%s", shoal_strerror(rc));
        }
        db_free(db);
        return rc;
    }
    *db_p = db;
    return 0;
}

void lsm_close(lsm_t **db_p)
{
    if (!db_p || !*db_p)
        return;
    lsm_t *db = *db_p;
    if (db->o.disable_wal && db->bg_started)
        lsm_flush(db); /* without a WAL the memtable exists nowhere else */
    stop_bg(db);
    lsm_db_sync_old_wals(db);
    if (db->wal.file)
        lsm_wal_sync(&db->wal);
    db_free(db);
    *db_p = NULL;
}

typedef struct {
    lsm_env_t *env;
    const char *dir;
} destroy_t;

static int destroy_visit(void *arg, const char *name)
{
    destroy_t *d = arg;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", d->dir, name);
    d->env->remove(d->env, path);
    return 0;
}

int lsm_destroy(const char *dir, lsm_env_t *env)
{
    env = env ? env : lsm_env_posix();
    destroy_t d = {env, dir};
    char path[4096];
    lsm_file_t *lock;
    snprintf(path, sizeof path, "%s/LOCK", dir);
    if (env->exists(env, dir) == 0)
        return 0;
    int rc = env->lock(env, path, &lock);
    if (rc)
        return rc;
    env->close(lock);
    rc = env->list(env, dir, destroy_visit, &d);
    env->rmdir(env, dir);
    return rc;
}

const char *lsm_last_error(lsm_t *db, char *buf, size_t cap)
{
    lsm_errlog_copy(&db->log, buf, cap);
    return buf;
}

/* ---- snapshots ---- */

const lsm_snapshot_t *lsm_snapshot_new(lsm_t *db)
{
    lsm_snapshot_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_lock(&db->mu);
    s->seq = atomic_load(&db->last_seq);
    s->next = &db->snapshots;
    s->prev = db->snapshots.prev;
    s->prev->next = s;
    db->snapshots.prev = s;
    pthread_mutex_unlock(&db->mu);
    return s;
}

void lsm_snapshot_release(lsm_t *db, const lsm_snapshot_t **snap_p)
{
    if (!snap_p || !*snap_p)
        return;
    lsm_snapshot_t *s = (lsm_snapshot_t *)*snap_p;
    pthread_mutex_lock(&db->mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&db->mu);
    free(s);
    *snap_p = NULL;
}

uint64_t lsm_snapshot_sequence(const lsm_snapshot_t *snap)
{
    return snap->seq;
}

/* ---- flush, compact range, stats ---- */

static int force_switch(lsm_t *db, void *arg)
{
    return lsm_db_make_room(db, true);
}

/* Waits (mu held) until no immutable memtable is left. */
static int wait_imm_flushed(lsm_t *db)
{
    while (db->nimm > 0 && !db->bg_error)
        pthread_cond_wait(&db->bg_cv, &db->mu);
    return db->bg_error;
}

int lsm_flush(lsm_t *db)
{
    int rc = lsm_db_as_leader(db, force_switch, NULL);
    if (rc)
        return rc;
    pthread_mutex_lock(&db->mu);
    rc = wait_imm_flushed(db);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static int run_manual(lsm_t *db, int level, const lsm_slice_t *b, const lsm_slice_t *e)
{
    lsm_manual_t m = {.level = level};
    int rc = 0;
    if (b)
        rc = lsm_buf_append(&m.begin, b->data, b->len), m.has_begin = true;
    if (e && !rc)
        rc = lsm_buf_append(&m.end, e->data, e->len), m.has_end = true;
    pthread_mutex_lock(&db->mu);
    while (!rc && db->manual && !db->bg_error) /* another compact_range runs: queue */
        pthread_cond_wait(&db->bg_cv, &db->mu);
    if (!rc && !db->bg_error) {
        db->manual = &m;
        lsm_db_wake_bg(db);
        while (!m.done && !db->bg_error)
            pthread_cond_wait(&db->bg_cv, &db->mu);
        if (db->manual == &m)
            db->manual = NULL;
        pthread_cond_broadcast(&db->bg_cv);
        rc = m.done ? m.rc : db->bg_error;
    }
    if (!rc)
        rc = db->bg_error;
    pthread_mutex_unlock(&db->mu);
    lsm_buf_free(&m.begin);
    lsm_buf_free(&m.end);
    return rc;
}

static bool level_overlaps(lsm_t *db, int level, const lsm_slice_t *b, const lsm_slice_t *e)
{
    lsm_file_meta_t **fs;
    int n = 0;
    pthread_mutex_lock(&db->mu);
    if (lsm_version_overlaps(db->current, level, b, e, &fs, &n) == 0)
        free(fs);
    pthread_mutex_unlock(&db->mu);
    return n > 0;
}

int lsm_compact_range(lsm_t *db, const void *begin, size_t blen, const void *end, size_t elen)
{
    lsm_slice_t b = lsm_slice(begin, blen), e = lsm_slice(end, elen);
    const lsm_slice_t *bp = begin ? &b : NULL, *ep = end ? &e : NULL;
    int rc = lsm_flush(db);
    for (int l = 0; l < LSM_MAX_LEVELS - 1 && !rc; l++)
        if (level_overlaps(db, l, bp, ep))
            rc = run_manual(db, l, bp, ep);
    return rc;
}

void lsm_stats(lsm_t *db, lsm_stats_t *out)
{
    memset(out, 0, sizeof *out);
    lsm_cache_stats_t cs;
    lsm_cache_stats(db->cache, &cs);
    out->cache_capacity = cs.capacity;
    out->cache_usage = cs.usage;
    out->cache_hits = cs.hits;
    out->cache_misses = cs.misses;
    lsm_mapres_stats_t ms;
    lsm_mapres_stats(db->mapres, &ms);
    out->map_resident = ms.resident;
    out->map_releases = ms.releases;
    out->map_refused = ms.refused;
    pthread_mutex_lock(&db->mu);
    out->last_sequence = atomic_load(&db->last_seq);
    out->memtable_bytes = lsm_memtable_usage(db->mem);
    for (int i = 0; i < db->nimm; i++)
        out->memtable_bytes += lsm_memtable_usage(db->imm[i]);
    out->wal_bytes = db->wal.size;
    for (int l = 0; l < LSM_MAX_LEVELS; l++) {
        out->files[l] = db->current->nfiles[l];
        out->bytes[l] = lsm_version_level_bytes(db->current, l);
        out->total_table_bytes += out->bytes[l];
    }
    out->flushes = db->flushes;
    out->compactions = db->compactions;
    out->compaction_bytes_read = db->comp_read;
    out->compaction_bytes_written = db->comp_written;
    out->stalls = db->stalls;
    out->stall_micros = db->stall_micros;
    out->background_error = db->bg_error;
    pthread_mutex_unlock(&db->mu);
    out->bloom_useful = atomic_load(&db->bloom_useful);
    out->wal_syncs = atomic_load(&db->wal_syncs);
    out->writes = atomic_load(&db->writes);
    out->write_groups = atomic_load(&db->write_groups);
}
