/* db.c - the database: open and recovery, the write path with group commit, point reads,
 * snapshots, the background thread's loop, manifest edits and removal of obsolete files.
 *
 * Write path (LevelDB's leader-writer scheme): each writer queues itself under the mutex;
 * the writer at the head becomes the leader, makes room in the memtable (switching it and
 * the WAL when full, stalling when the background thread lags), then gathers the batches of
 * the writers queued behind it into one WAL record, releases the mutex, appends the record
 * with one write() (and one fdatasync if any of them asked for sync), inserts the entries
 * into the memtable, retakes the mutex, publishes the new last sequence and wakes the
 * writers it served. So N concurrent sync writers cost about one fdatasync, not N.
 *
 * Prefix durability: a synced write makes every earlier write durable too (the leader syncs
 * WALs switched out before it, old_wals), so after a crash the store holds a prefix of the
 * acknowledged history: a Raft state machine can trust an applied index it wrote.
 *
 * Recovery: read CURRENT -> MANIFEST (replay edits; a torn last record is ignored), open
 * every live table (checks footer, index, filter), replay WALs newer than the manifest's
 * log number into a memtable and write it to level 0, then write a fresh manifest and point
 * CURRENT at it. After open no old WAL is needed and the manifest is compact. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

struct lsm_writer {
    lsm_slice_t rep; /* a batch (header + ops); empty for control writers */
    bool sync;
    bool done;
    int rc;
    pthread_cond_t cv;
    lsm_writer_t *next;
};

#define MAX_GROUP (1u << 20)

void lsm_options_init(lsm_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->create_if_missing = true;
    o->write_buffer_size = 64u << 20;
    o->max_write_buffers = 2;
    o->block_size = 4096;
    o->block_cache_size = 32u << 20;
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
    lsm_table_ctx_t ctx = {db->env, db->cache, &db->log, db->dctx};
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

static void install_version(lsm_t *db, lsm_version_t *v)
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
static int new_manifest(lsm_t *db)
{
    char path[4096];
    uint64_t number = lsm_db_new_file_number(db);
    lsm_db_path(db, path, sizeof path, number, "MANIFEST");
    lsm_wal_writer_t w;
    lsm_edit_t e;
    lsm_edit_init(&e);
    int rc = lsm_wal_writer_open(db->env, path, &w);
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
    install_version(db, v);
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

/* ---- recovery ---- */

static int read_current(lsm_t *db, uint64_t *number)
{
    char path[4096], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/CURRENT", db->dir);
    int rc = lsm_read_file(db->env, path, &data, &len);
    if (rc)
        return lsm_err(&db->log, rc, "cannot read %s", path);
    unsigned long long n;
    int used = 0;
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)(len < 63 ? len : 63), data);
    free(data);
    if (sscanf(text, "MANIFEST-%llu\n%n", &n, &used) != 1 || (size_t)used != len)
        return lsm_corrupt(&db->log, path, 0, "CURRENT does not name a manifest");
    *number = n;
    return 0;
}

/* Folds one decoded edit into the accumulated state `all` (added files minus deleted). */
static int fold_edit(lsm_edit_t *all, lsm_edit_t *e)
{
    for (size_t d = 0; d < e->ndeleted; d++)
        for (size_t i = 0; i < all->nadded; i++)
            if (all->added[i].number == e->deleted[d].number &&
                all->added[i].level == e->deleted[d].level) {
                lsm_buf_free(&all->added[i].smallest);
                lsm_buf_free(&all->added[i].largest);
                all->added[i] = all->added[--all->nadded];
                break;
            }
    for (size_t i = 0; i < e->nadded; i++) {
        lsm_edit_file_t *f = &e->added[i];
        int rc = lsm_edit_add_file(all, f->level, f->number, f->size,
                                   lsm_slice(f->smallest.data, f->smallest.len),
                                   lsm_slice(f->largest.data, f->largest.len));
        if (rc)
            return rc;
    }
    if (e->has_log_number)
        all->has_log_number = true, all->log_number = e->log_number;
    if (e->has_next_file)
        all->has_next_file = true, all->next_file = e->next_file;
    if (e->has_last_seq)
        all->has_last_seq = true, all->last_seq = e->last_seq;
    return 0;
}

static int replay_manifest(lsm_t *db, const char *path, lsm_edit_t *all)
{
    char *data;
    size_t len;
    int rc = lsm_read_file(db->env, path, &data, &len);
    if (rc)
        return lsm_err(&db->log, rc, "cannot read %s", path);
    lsm_wal_reader_t r;
    lsm_slice_t rec;
    lsm_wal_reader_init(&r, data, len, path, &db->log);
    while ((rc = lsm_wal_read(&r, &rec)) == 1) {
        lsm_edit_t e;
        size_t at = r.off - rec.len - LSM_WAL_HEADER;
        if ((rc = lsm_edit_decode(rec, &e)) != 0) {
            rc = lsm_corrupt(&db->log, path, at, "malformed version edit");
            break;
        }
        rc = fold_edit(all, &e);
        lsm_edit_free(&e);
        if (rc)
            break;
    }
    free(data);
    if (rc == 0 && (!all->has_log_number || !all->has_next_file || !all->has_last_seq))
        rc = lsm_corrupt(&db->log, path, 0, "manifest lacks log number, next file or sequence");
    return rc;
}

static int recover_manifest(lsm_t *db)
{
    uint64_t number = 0;
    char path[4096];
    int rc = read_current(db, &number);
    if (rc)
        return rc;
    lsm_db_path(db, path, sizeof path, number, "MANIFEST");
    lsm_edit_t all;
    lsm_edit_init(&all);
    rc = replay_manifest(db, path, &all);
    lsm_version_t *v = NULL;
    if (!rc && (rc = lsm_version_apply(NULL, &all, NULL, lsm_db_open_table, db, &v)) != 0 &&
        rc != SHOAL_ECORRUPT && rc != SHOAL_ENOTFOUND)
        rc = lsm_err(&db->log, rc, "cannot open the tables named by %s", path);
    else if (rc == SHOAL_ENOTFOUND) { /* the table's own message names it: keep it */
        char what[400];
        lsm_errlog_copy(&db->log, what, sizeof what);
        rc = lsm_err(&db->log, SHOAL_ECORRUPT, "%s is missing a table (%s)", path, what);
    }
    if (!rc) {
        db->log_number = all.log_number;
        db->next_file = all.next_file;
        atomic_store(&db->last_seq, all.last_seq);
        db->manifest_number = number;
        install_version(db, v);
    }
    lsm_edit_free(&all);
    return rc;
}

typedef struct {
    uint64_t *v;
    size_t n, cap;
    uint64_t min;
} numbers_t;

static int collect_logs(void *arg, const char *name)
{
    numbers_t *ns = arg;
    unsigned long long n;
    int used = 0;
    if (sscanf(name, "%llu.log%n", &n, &used) != 1 || name[used] != '\0' || n < ns->min)
        return 0;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 8;
        uint64_t *v = realloc(ns->v, cap * sizeof *v);
        if (!v)
            return 1;
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = n;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    lsm_memtable_t *mem;
    uint64_t max_seq;
} replay_t;

static int replay_op(void *arg, uint64_t seq, int type, lsm_slice_t key, lsm_slice_t value)
{
    replay_t *r = arg;
    if (seq > r->max_seq)
        r->max_seq = seq;
    return lsm_memtable_add(r->mem, seq, type, key, value);
}

/* Replays one WAL into *mem, writing full memtables to level-0 tables. */
static int replay_wal(lsm_t *db, uint64_t number, replay_t *r, lsm_edit_t *edit)
{
    char path[4096], *data;
    size_t len;
    lsm_db_path(db, path, sizeof path, number, "log");
    int rc = lsm_read_file(db->env, path, &data, &len);
    if (rc)
        return lsm_err(&db->log, rc, "cannot read %s", path);
    lsm_wal_reader_t rd;
    lsm_slice_t rec;
    lsm_wal_reader_init(&rd, data, len, path, &db->log);
    while ((rc = lsm_wal_read(&rd, &rec)) == 1) {
        size_t at = rd.off - rec.len - LSM_WAL_HEADER;
        if (lsm_batch_check(rec) != 0) {
            rc = lsm_corrupt(&db->log, path, at, "malformed write batch");
            break;
        }
        if ((rc = lsm_batch_iterate(rec, replay_op, r)) != 0)
            break;
        if (lsm_memtable_usage(r->mem) >= db->o.write_buffer_size) {
            rc = lsm_db_write_level0(db, r->mem, edit);
            lsm_memtable_unref(r->mem);
            r->mem = lsm_memtable_new(0, db->o.write_buffer_size);
            if (!rc && !r->mem)
                rc = SHOAL_ENOMEM;
            if (rc)
                break;
        }
    }
    free(data);
    return rc;
}

static int replay_wals(lsm_t *db, lsm_edit_t *edit)
{
    numbers_t ns = {.min = db->log_number};
    replay_t r = {.mem = lsm_memtable_new(0, db->o.write_buffer_size), .max_seq = atomic_load(&db->last_seq)};
    int rc = r.mem ? db->env->list(db->env, db->dir, collect_logs, &ns) : SHOAL_ENOMEM;
    if (!rc && ns.n)
        qsort(ns.v, ns.n, sizeof *ns.v, cmp_u64);
    for (size_t i = 0; i < ns.n && !rc; i++) {
        rc = replay_wal(db, ns.v[i], &r, edit);
        if (ns.v[i] >= db->next_file)
            db->next_file = ns.v[i] + 1;
    }
    if (!rc && r.mem && atomic_load(&r.mem->entries) > 0)
        rc = lsm_db_write_level0(db, r.mem, edit);
    lsm_memtable_unref(r.mem);
    free(ns.v);
    if (!rc)
        atomic_store(&db->last_seq, r.max_seq);
    return rc;
}

static int open_new_wal(lsm_t *db, lsm_wal_writer_t *w, uint64_t *number)
{
    char path[4096];
    *number = lsm_db_new_file_number(db);
    lsm_db_path(db, path, sizeof path, *number, "log");
    int rc = lsm_wal_writer_open(db->env, path, w);
    w->number = *number;
    if (!rc) /* the WAL's name must be durable before a synced write in it is acknowledged */
        rc = db->env->sync_dir(db->env, db->dir);
    if (rc) {
        lsm_wal_writer_close(w);
        return lsm_err(&db->log, rc, "cannot create %s", path);
    }
    return 0;
}

static int create_db(lsm_t *db)
{
    lsm_version_t *v = lsm_version_new();
    if (!v)
        return SHOAL_ENOMEM;
    install_version(db, v);
    db->next_file = 1;
    db->log_number = 0;
    return 0;
}

static int recover(lsm_t *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/CURRENT", db->dir);
    int exists = db->env->exists(db->env, path), rc;
    if (exists < 0)
        return lsm_err(&db->log, exists, "cannot stat %s", path);
    if (!exists && !db->o.create_if_missing)
        return lsm_err(&db->log, SHOAL_ENOTFOUND, "no database in %s", db->dir);
    if (exists && db->o.error_if_exists)
        return lsm_err(&db->log, SHOAL_EEXIST, "a database exists in %s", db->dir);
    rc = exists ? recover_manifest(db) : create_db(db);
    lsm_edit_t edit;
    lsm_edit_init(&edit);
    if (!rc && exists)
        rc = replay_wals(db, &edit);
    if (!rc && edit.nadded) { /* tables from the WALs join the version before the rewrite */
        lsm_version_t *v;
        rc = lsm_version_apply(db->current, &edit, NULL, lsm_db_open_table, db, &v);
        if (!rc)
            install_version(db, v);
    }
    lsm_edit_free(&edit);
    if (!rc)
        rc = open_new_wal(db, &db->wal, &db->wal_number);
    if (!rc) {
        db->log_number = db->wal_number;
        rc = new_manifest(db);
    }
    if (!rc && !(db->mem = lsm_memtable_new(db->wal_number, db->o.write_buffer_size)))
        rc = SHOAL_ENOMEM;
    return rc;
}

/* ---- background thread ---- */

static void *bg_main(void *arg)
{
    lsm_t *db = arg;
    pthread_mutex_lock(&db->mu);
    while (!db->shutting_down) {
        int rc = 0;
        if (db->bg_paused || db->bg_error) {
            pthread_cond_wait(&db->bg_cv, &db->mu);
            continue;
        }
        if (db->nimm > 0) {
            db->bg_busy = true;
            rc = lsm_db_flush_imm(db);
        } else if ((db->manual && !db->manual->done) || lsm_db_needs_compaction(db)) {
            db->bg_busy = true;
            rc = lsm_db_compact_once(db);
        } else {
            pthread_cond_wait(&db->bg_cv, &db->mu);
            continue;
        }
        db->bg_busy = false;
        lsm_db_set_bg_error(db, rc); /* also wakes waiters */
    }
    db->bg_busy = false;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    return NULL;
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
    if (o->l0_slowdown_trigger < 2)
        o->l0_slowdown_trigger = 2;
    if (o->l0_stop_trigger <= o->l0_slowdown_trigger)
        o->l0_stop_trigger = o->l0_slowdown_trigger + 1;
    if (o->max_bytes_level1 < (1u << 20))
        o->max_bytes_level1 = 1u << 20;
    if (o->target_file_size < (64u << 10))
        o->target_file_size = 64u << 10;
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
    db->topt = (lsm_table_options_t){db->o.block_size, db->o.compression,
                                     db->o.compression_level, db->o.bloom_bits_per_key};
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
    if (!(db->cache = lsm_cache_new(db->o.block_cache_size)) ||
        !(db->dctx = lsm_dctx_pool_new()))
        return SHOAL_ENOMEM;
    rc = recover(db); /* single-threaded still: recover takes mu only where helpers need it */
    pthread_mutex_lock(&db->mu);
    if (!rc)
        lsm_db_remove_obsolete(db);
    pthread_mutex_unlock(&db->mu);
    if (!rc && pthread_create(&db->bg_thread, NULL, bg_main, db) != 0)
        rc = lsm_err(&db->log, SHOAL_ENOMEM, "cannot start the background thread");
    db->bg_started = rc == 0;
    return rc;
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

static int sync_old_wals(lsm_t *db);

void lsm_close(lsm_t **db_p)
{
    if (!db_p || !*db_p)
        return;
    lsm_t *db = *db_p;
    pthread_mutex_lock(&db->mu);
    db->shutting_down = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    if (db->bg_started)
        pthread_join(db->bg_thread, NULL);
    sync_old_wals(db);
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

/* ---- write path ---- */

/* Closes old WALs whose memtables are in tables by now (their data is durable there);
 * leader only, mu held. */
static void prune_old_wals(lsm_t *db)
{
    int k = 0;
    for (int i = 0; i < db->nold_wals; i++) {
        if (db->old_wals[i].number < db->log_number)
            lsm_wal_writer_close(&db->old_wals[i]);
        else
            db->old_wals[k++] = db->old_wals[i];
    }
    db->nold_wals = k;
}

/* Syncs and closes every switched-out WAL; leader (or close) only, without mu. */
static int sync_old_wals(lsm_t *db)
{
    int rc = 0;
    for (int i = 0; i < db->nold_wals; i++) {
        if (!rc)
            rc = lsm_wal_sync(&db->old_wals[i]);
        lsm_wal_writer_close(&db->old_wals[i]);
    }
    db->nold_wals = 0;
    return rc;
}

static uint64_t now_micros(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void stall_wait(lsm_t *db)
{
    uint64_t t0 = now_micros();
    db->stalls++;
    pthread_cond_wait(&db->bg_cv, &db->mu);
    db->stall_micros += now_micros() - t0;
}

/* Moves the active memtable to the immutable list and starts a new WAL (mu held). */
static int switch_memtable(lsm_t *db)
{
    lsm_wal_writer_t w;
    uint64_t number;
    int rc = open_new_wal(db, &w, &number);
    lsm_memtable_t *m = rc ? NULL : lsm_memtable_new(number, db->o.write_buffer_size);
    if (rc || !m) {
        lsm_wal_writer_close(&w);
        return rc ? rc : SHOAL_ENOMEM;
    }
    prune_old_wals(db);
    if (db->nold_wals == LSM_MAX_IMM + 1) { /* cannot happen with nimm bounded; be safe */
        lsm_wal_sync(&db->old_wals[0]);
        lsm_wal_writer_close(&db->old_wals[0]);
        memmove(db->old_wals, db->old_wals + 1, sizeof db->old_wals[0] * LSM_MAX_IMM);
        db->nold_wals--;
    }
    db->old_wals[db->nold_wals++] = db->wal;
    db->wal = w;
    db->wal_number = number;
    db->imm[db->nimm++] = db->mem;
    db->mem = m;
    pthread_cond_broadcast(&db->bg_cv);
    return 0;
}

int lsm_db_reset_memtables(lsm_t *db)
{
    lsm_wal_writer_t w;
    uint64_t number;
    int rc = open_new_wal(db, &w, &number);
    lsm_memtable_t *m = rc ? NULL : lsm_memtable_new(number, db->o.write_buffer_size);
    if (rc || !m) {
        lsm_wal_writer_close(&w);
        return rc ? rc : SHOAL_ENOMEM;
    }
    lsm_wal_writer_close(&db->wal); /* its content is being replaced: no sync needed */
    db->wal = w;
    db->wal_number = number;
    lsm_memtable_unref(db->mem);
    db->mem = m;
    for (int i = 0; i < db->nimm; i++)
        lsm_memtable_unref(db->imm[i]);
    db->nimm = 0;
    return 0;
}

/* Makes sure the memtable can take a write (mu held, leader). `force` switches a non-empty
 * memtable even if it is not full (lsm_flush). */
static int make_room(lsm_t *db, bool force)
{
    bool allow_delay = !force;
    for (;;) {
        int l0 = db->current->nfiles[0];
        if (db->bg_error)
            return db->bg_error;
        if (allow_delay && l0 >= db->o.l0_slowdown_trigger) {
            /* Slow each write a little rather than stop them all later. */
            pthread_mutex_unlock(&db->mu);
            usleep(1000);
            pthread_mutex_lock(&db->mu);
            db->stalls++;
            db->stall_micros += 1000;
            allow_delay = false;
        } else if (atomic_load(&db->mem->entries) == 0 ||
                   (!force && lsm_memtable_usage(db->mem) < db->o.write_buffer_size)) {
            return 0; /* an empty memtable never needs switching, whatever its arena holds */
        } else if ((size_t)db->nimm >= db->o.max_write_buffers - 1 ||
                   l0 >= db->o.l0_stop_trigger) {
            stall_wait(db);
        } else {
            int rc = switch_memtable(db);
            if (rc)
                return rc;
            force = false;
        }
    }
}

typedef struct {
    lsm_memtable_t *mem;
    int rc;
} insert_t;

static int insert_op(void *arg, uint64_t seq, int type, lsm_slice_t key, lsm_slice_t value)
{
    return lsm_memtable_add(((insert_t *)arg)->mem, seq, type, key, value);
}

/* Builds the group record from the queue head on; returns the last writer included. */
static lsm_writer_t *build_group(lsm_t *db, lsm_writer_t *first, uint32_t *count, bool *sync)
{
    size_t max = first->rep.len <= (128u << 10) ? first->rep.len + (128u << 10) : MAX_GROUP;
    lsm_writer_t *last = first;
    lsm_buf_t *g = &db->group;
    g->len = 0;
    *count = 0;
    *sync = first->sync;
    if (lsm_buf_reserve(g, LSM_WAL_HEADER + first->rep.len))
        return NULL;
    g->len = LSM_WAL_HEADER + LSM_BATCH_HEADER;
    for (lsm_writer_t *w = first; w; w = w->next) {
        if (w->rep.len == 0 || (w->sync && !first->sync))
            break; /* a control writer, or a sync write must not ride a non-sync group */
        if (w != first && g->len + w->rep.len > max)
            break;
        if (lsm_buf_append(g, w->rep.data + LSM_BATCH_HEADER, w->rep.len - LSM_BATCH_HEADER))
            break;
        *count += lsm_batch_rep_count(w->rep);
        last = w;
    }
    return last;
}

/* The leader's unlocked part: WAL append (+ sync), then the memtable. */
static int commit_group(lsm_t *db, uint64_t seq, uint32_t count, bool sync)
{
    lsm_buf_t *g = &db->group;
    int rc = 0;
    lsm_put_fixed64(g->data + LSM_WAL_HEADER, seq);
    lsm_put_fixed32(g->data + LSM_WAL_HEADER + 8, count);
    if (sync)
        rc = sync_old_wals(db);
    if (!rc)
        rc = lsm_wal_add(&db->wal, g->data, g->len);
    if (!rc && sync) {
        rc = lsm_wal_sync(&db->wal);
        atomic_fetch_add(&db->wal_syncs, 1);
    }
    if (rc)
        return lsm_err(&db->log, rc, "WAL %06" PRIu64 ": write failed", db->wal_number);
    insert_t ins = {db->mem, 0};
    lsm_slice_t rep = lsm_slice(g->data + LSM_WAL_HEADER, g->len - LSM_WAL_HEADER);
    rc = lsm_batch_iterate(rep, insert_op, &ins);
    return rc ? lsm_err(&db->log, rc, "memtable insert failed") : 0;
}

/* Queues w and waits until it is done (served by a leader) or at the head (then the caller
 * is the leader). mu held. */
static bool wait_turn(lsm_t *db, lsm_writer_t *w)
{
    pthread_cond_init(&w->cv, NULL);
    w->next = NULL;
    if (db->wq_tail)
        db->wq_tail->next = w;
    else
        db->wq_head = w;
    db->wq_tail = w;
    while (!w->done && db->wq_head != w)
        pthread_cond_wait(&w->cv, &db->mu);
    return !w->done;
}

/* Pops the head through `last`, handing rc to the writers served; wakes the next leader. */
static void finish_turn(lsm_t *db, lsm_writer_t *leader, lsm_writer_t *last, int rc)
{
    for (;;) {
        lsm_writer_t *x = db->wq_head;
        db->wq_head = x->next;
        if (x != leader) {
            x->rc = rc;
            x->done = true;
            pthread_cond_signal(&x->cv);
        }
        if (x == last)
            break;
    }
    if (!db->wq_head)
        db->wq_tail = NULL;
    else
        pthread_cond_signal(&db->wq_head->cv);
}

static int write_rep(lsm_t *db, lsm_slice_t rep, bool sync)
{
    lsm_writer_t w = {.rep = rep, .sync = sync};
    pthread_mutex_lock(&db->mu);
    if (!wait_turn(db, &w)) {
        pthread_mutex_unlock(&db->mu);
        pthread_cond_destroy(&w.cv);
        return w.rc;
    }
    int rc = make_room(db, false);
    lsm_writer_t *last = &w;
    if (!rc) {
        uint32_t count;
        bool gsync;
        last = build_group(db, &w, &count, &gsync);
        uint64_t seq = atomic_load(&db->last_seq) + 1;
        if (!last) {
            last = &w;
            rc = SHOAL_ENOMEM;
        } else {
            pthread_mutex_unlock(&db->mu);
            rc = commit_group(db, seq, count, gsync);
            pthread_mutex_lock(&db->mu);
            atomic_fetch_add(&db->write_groups, 1);
            if (rc)
                lsm_db_set_bg_error(db, rc); /* the WAL may hold half a record: stop */
            else
                atomic_store(&db->last_seq, seq + count - 1);
        }
    }
    finish_turn(db, &w, last, rc);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

int lsm_write(lsm_t *db, const lsm_write_options_t *wo, const lsm_batch_t *b)
{
    bool sync = wo ? wo->sync : db->o.sync == LSM_SYNC_ALWAYS;
    if (b->rep.len < LSM_BATCH_HEADER)
        return SHOAL_EINVAL;
    atomic_fetch_add_explicit(&db->writes, 1, memory_order_relaxed);
    if (b->count == 0)
        return 0;
    return write_rep(db, lsm_slice(b->rep.data, b->rep.len), sync);
}

/* Single-op writes encode a one-op batch on the stack when it fits. */
static int write_one(lsm_t *db, const lsm_write_options_t *wo, int type, const void *key,
                     size_t klen, const void *val, size_t vlen)
{
    char stack[512];
    size_t need = LSM_BATCH_HEADER + 1 + 10 + klen + 10 + vlen;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return SHOAL_ETOOLARGE;
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf)
        return SHOAL_ENOMEM;
    memset(buf, 0, LSM_BATCH_HEADER);
    lsm_put_fixed32(buf + 8, 1);
    char *p = buf + LSM_BATCH_HEADER;
    *p++ = (char)type;
    p = lsm_put_varint64(p, klen);
    memcpy(p, key, klen);
    p += klen;
    if (type == LSM_TYPE_VALUE) {
        p = lsm_put_varint64(p, vlen);
        if (vlen)
            memcpy(p, val, vlen);
        p += vlen;
    }
    bool sync = wo ? wo->sync : db->o.sync == LSM_SYNC_ALWAYS;
    atomic_fetch_add_explicit(&db->writes, 1, memory_order_relaxed);
    int rc = write_rep(db, lsm_slice(buf, (size_t)(p - buf)), sync);
    if (buf != stack)
        free(buf);
    return rc;
}

int lsm_put(lsm_t *db, const lsm_write_options_t *wo, const void *key, size_t klen,
            const void *val, size_t vlen)
{
    return write_one(db, wo, LSM_TYPE_VALUE, key, klen, val, vlen);
}

int lsm_delete(lsm_t *db, const lsm_write_options_t *wo, const void *key, size_t klen)
{
    return write_one(db, wo, LSM_TYPE_DELETE, key, klen, NULL, 0);
}

/* Runs fn as the write leader (no write in flight, none starts until it returns), with mu
 * held. Used by flush and ingest, which swap the memtable and the WAL. */
int lsm_db_as_leader(lsm_t *db, int (*fn)(lsm_t *db, void *arg), void *arg)
{
    lsm_writer_t w = {.rep = {NULL, 0}};
    pthread_mutex_lock(&db->mu);
    int rc = wait_turn(db, &w) ? fn(db, arg) : w.rc;
    finish_turn(db, &w, &w, rc);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

/* ---- reads ---- */

typedef struct {
    lsm_memtable_t *mem, *imm[LSM_MAX_IMM];
    int nimm;
    lsm_version_t *v;
} pinned_t;

static void pin(lsm_t *db, pinned_t *p)
{
    pthread_mutex_lock(&db->mu);
    p->mem = db->mem;
    lsm_memtable_ref(p->mem);
    p->nimm = db->nimm;
    for (int i = 0; i < db->nimm; i++) {
        p->imm[i] = db->imm[i];
        lsm_memtable_ref(p->imm[i]);
    }
    p->v = db->current;
    lsm_version_ref(p->v);
    pthread_mutex_unlock(&db->mu);
}

static void unpin(lsm_t *db, pinned_t *p)
{
    lsm_memtable_unref(p->mem);
    for (int i = 0; i < p->nimm; i++)
        lsm_memtable_unref(p->imm[i]);
    lsm_db_unref_version(db, p->v);
}

static int copy_value(lsm_slice_t v, void **val, size_t *vlen)
{
    char *p = malloc(v.len + 1);
    if (!p)
        return SHOAL_ENOMEM;
    memcpy(p, v.data, v.len);
    p[v.len] = '\0';
    *val = p;
    *vlen = v.len;
    return 0;
}

int lsm_get(lsm_t *db, const lsm_read_options_t *ro, const void *key, size_t klen, void **val,
            size_t *vlen)
{
    uint64_t seq = ro && ro->snapshot ? ro->snapshot->seq : atomic_load(&db->last_seq);
    bool fill = ro ? ro->fill_cache : true, deleted = false;
    lsm_slice_t k = lsm_slice(key, klen), v;
    pinned_t p;
    *val = NULL;
    *vlen = 0;
    pin(db, &p);
    int rc = SHOAL_ENOTFOUND;
    bool decided = lsm_memtable_get(p.mem, k, seq, &v, &deleted);
    for (int i = p.nimm - 1; i >= 0 && !decided; i--)
        decided = lsm_memtable_get(p.imm[i], k, seq, &v, &deleted);
    if (decided) {
        rc = deleted ? SHOAL_ENOTFOUND : copy_value(v, val, vlen);
    } else {
        int state = 0;
        uint64_t useful = 0;
        rc = lsm_version_get(p.v, k, seq, fill, &state, val, vlen, &useful);
        if (useful)
            atomic_fetch_add_explicit(&db->bloom_useful, useful, memory_order_relaxed);
        if (!rc && state != 1)
            rc = SHOAL_ENOTFOUND;
    }
    unpin(db, &p);
    return rc;
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
    return make_room(db, true);
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
        pthread_cond_broadcast(&db->bg_cv);
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
