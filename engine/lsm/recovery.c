/* recovery.c - opening a database: read CURRENT, replay the MANIFEST (a torn last record is
 * ignored: that edit was never acknowledged), open every live table (footer, index and
 * filter are checked; a missing one is corruption naming it), replay the WALs at or after
 * the manifest's log number into memtables written to level 0, then write a fresh manifest
 * and point CURRENT at it. After open no old WAL is needed and the manifest is compact.
 *
 * A torn WAL tail ends the replay (the cut write was never acknowledged as synced); any
 * other bad record or malformed batch fails the open with SHOAL_ECORRUPT naming the file
 * and offset. Runs single-threaded, before the background thread starts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

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
        lsm_db_install_version(db, v);
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
            rc = lsm_db_write_level0(db, r->mem, 0, edit);
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
        rc = lsm_db_write_level0(db, r.mem, 0, edit);
    lsm_memtable_unref(r.mem);
    free(ns.v);
    if (!rc)
        atomic_store(&db->last_seq, r.max_seq);
    return rc;
}

static int create_db(lsm_t *db)
{
    lsm_version_t *v = lsm_version_new();
    if (!v)
        return SHOAL_ENOMEM;
    lsm_db_install_version(db, v);
    db->next_file = 1;
    db->log_number = 0;
    return 0;
}

int lsm_db_recover(lsm_t *db)
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
            lsm_db_install_version(db, v);
    }
    lsm_edit_free(&edit);
    if (!rc)
        rc = lsm_db_open_new_wal(db, &db->wal, &db->wal_number);
    if (!rc) {
        db->log_number = db->wal_number;
        rc = lsm_db_new_manifest(db);
    }
    if (!rc && !(db->mem = lsm_memtable_new(db->wal_number, db->o.write_buffer_size)))
        rc = SHOAL_ENOMEM;
    return rc;
}
