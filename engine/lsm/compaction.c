/* compaction.c - the background work: memtable flushes and leveled compaction.
 *
 * Why leveled (LevelDB/RocksDB style) rather than tiered: Shoal's replicas serve point
 * reads and range scans under a steady write load, and keep one copy of the data per replica
 * on small disks. Leveled keeps at most one table per level >= 1 on a lookup path (plus the
 * few level-0 tables) and ~1.1x space amplification; tiered writes less (each byte is
 * rewritten about once per tier instead of ~10x per level) but multiplies read and space
 * amplification. With a 64 MiB write buffer and 1 GB-scale shards the extra write
 * amplification of leveled is a few passes over the data, which the background thread on
 * its own core absorbs. The choice is written down in docs/ARCHITECTURE.md.
 *
 * Scores: level 0 by table count (4 tables = 1.0), level L >= 1 by bytes over its target
 * (max_bytes_level1 * 10^(L-1)). The highest score >= 1 is compacted: all level-0 tables, or
 * the next table of level L after a round-robin pointer, merged with the overlapping tables
 * of L+1. A table with nothing to merge below is moved by a manifest edit, not rewritten.
 * While a compaction runs, a pending immutable memtable is flushed first (checked every
 * 1024 entries), so a long compaction never stalls writers behind a full memtable.
 *
 * Compression (when on) skips level 0: a level-0 table lives only until the next level-0
 * compaction, so compressing it costs background CPU while writers are busy and buys
 * almost no space (RocksDB deployments commonly configure the same). Every table written
 * below level 0, by a flush that goes deeper or by a compaction, is compressed.
 *
 * What a merge drops (smallest_snapshot = oldest live snapshot, or the last sequence):
 * an entry shadowed by a newer entry of the same user key whose sequence is <= the smallest
 * snapshot (no reader can see the older one), and a tombstone <= the smallest snapshot when
 * no deeper level holds the key (nothing left for it to hide). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

#define L0_TRIGGER 4
#define MAX_MEM_COMPACT_LEVEL 2

/* ---- outputs ---- */

void lsm_outputs_init(lsm_outputs_t *o, lsm_t *db, int level, lsm_edit_t *edit)
{
    memset(o, 0, sizeof *o);
    o->db = db;
    o->level = level;
    o->edit = edit;
    o->target = db->o.target_file_size;
    o->compress = db->o.compression;
}

static int outputs_open(lsm_outputs_t *o)
{
    char path[4096];
    pthread_mutex_lock(&o->db->mu);
    o->number = lsm_db_new_file_number(o->db);
    lsm_db_pending_add(o->db, o->number);
    pthread_mutex_unlock(&o->db->mu);
    lsm_db_path(o->db, path, sizeof path, o->number, "sst");
    o->smallest.len = o->largest.len = 0;
    lsm_table_options_t topt = o->db->topt;
    topt.compression = o->compress;
    int rc = lsm_table_builder_new(o->db->env, path, &topt, &o->b);
    return rc ? lsm_err(&o->db->log, rc, "cannot create %s", path) : 0;
}

int lsm_outputs_finish(lsm_outputs_t *o)
{
    if (!o->b)
        return 0;
    uint64_t size;
    int rc = lsm_table_builder_finish(&o->b, &size);
    if (rc)
        return lsm_err(&o->db->log, rc, "cannot write table %06" PRIu64, o->number);
    o->bytes_written += size;
    return lsm_edit_add_file(o->edit, o->level, o->number, size,
                             lsm_slice(o->smallest.data, o->smallest.len),
                             lsm_slice(o->largest.data, o->largest.len));
}

int lsm_outputs_add(lsm_outputs_t *o, lsm_slice_t ikey, lsm_slice_t value)
{
    int rc = 0;
    if (o->b && lsm_table_builder_size(o->b) >= o->target &&
        lsm_slice_cmp(lsm_ikey_user(ikey),
                      lsm_ikey_user(lsm_slice(o->largest.data, o->largest.len))) != 0)
        rc = lsm_outputs_finish(o);
    if (!rc && !o->b)
        rc = outputs_open(o);
    if (!rc && o->smallest.len == 0)
        rc = lsm_buf_append(&o->smallest, ikey.data, ikey.len);
    if (!rc) {
        o->largest.len = 0;
        rc = lsm_buf_append(&o->largest, ikey.data, ikey.len);
    }
    if (!rc)
        rc = lsm_table_builder_add(o->b, ikey, value);
    return rc;
}

void lsm_outputs_abandon(lsm_outputs_t *o)
{
    lsm_table_builder_abandon(&o->b);
    lsm_buf_free(&o->smallest);
    lsm_buf_free(&o->largest);
}

static void drop_pending(lsm_t *db, const lsm_edit_t *e, uint64_t open_number)
{
    for (size_t i = 0; i < e->nadded; i++)
        lsm_db_pending_remove(db, e->added[i].number);
    if (open_number)
        lsm_db_pending_remove(db, open_number);
}

/* ---- flush ---- */

/* Copies every entry of an iterator into the outputs. */
static int copy_all(lsm_iiter_t *it, lsm_outputs_t *out)
{
    int rc = 0;
    for (lsm_iiter_seek_first(it); !rc && lsm_iiter_valid(it); lsm_iiter_next(it))
        rc = lsm_outputs_add(out, lsm_iiter_key(it), lsm_iiter_value(it));
    return rc ? rc : lsm_iiter_status(it);
}

int lsm_db_write_level0(lsm_t *db, lsm_memtable_t *m, int level, lsm_edit_t *edit)
{
    lsm_outputs_t out;
    lsm_outputs_init(&out, db, level, edit);
    out.target = UINT64_MAX;
    out.compress = db->o.compression && level > 0;
    lsm_iiter_t *it = lsm_memtable_iter(m);
    int rc = it ? copy_all(it, &out) : SHOAL_ENOMEM;
    lsm_iiter_destroy(it);
    if (!rc)
        rc = lsm_outputs_finish(&out);
    if (out.b) { /* failed mid-table: release its number (the file is garbage now) */
        pthread_mutex_lock(&db->mu);
        lsm_db_pending_remove(db, out.number);
        pthread_mutex_unlock(&db->mu);
    }
    lsm_outputs_abandon(&out);
    return rc;
}

static bool range_overlaps(lsm_version_t *v, int level, lsm_slice_t lo, lsm_slice_t hi)
{
    lsm_file_meta_t **fs;
    int n = 0;
    if (lsm_version_overlaps(v, level, &lo, &hi, &fs, &n) == 0)
        free(fs);
    return n > 0;
}

/* A flushed table that overlaps nothing in level 0 may go straight down to level 2, which
 * saves two rewrites of sequential loads. */
static int level_for_flush(lsm_t *db, lsm_slice_t smallest, lsm_slice_t largest)
{
    lsm_slice_t lo = lsm_ikey_user(smallest), hi = lsm_ikey_user(largest);
    int level = 0;
    if (range_overlaps(db->current, 0, lo, hi))
        return 0;
    while (level < MAX_MEM_COMPACT_LEVEL && !range_overlaps(db->current, level + 1, lo, hi))
        level++;
    return level;
}

/* The level a memtable's table will go to, from its first and last keys (mu held). */
static int flush_level(lsm_t *db, lsm_memtable_t *m)
{
    lsm_sl_node_t *first = lsm_skiplist_first(&m->list), *last = lsm_skiplist_last(&m->list);
    if (!first || !last)
        return 0;
    return level_for_flush(db, lsm_slice(first->key, first->klen),
                           lsm_slice(last->key, last->klen));
}

int lsm_db_flush_imm(lsm_t *db)
{
    lsm_memtable_t *m = db->imm[0];
    lsm_edit_t edit;
    lsm_edit_init(&edit);
    /* The level is chosen before writing (it decides compression); only this thread changes
     * versions meanwhile, and a compaction in flight never writes into the flushed range. */
    int level = flush_level(db, m);
    pthread_mutex_unlock(&db->mu);
    int rc = atomic_load(&m->entries) ? lsm_db_write_level0(db, m, level, &edit) : 0;
    pthread_mutex_lock(&db->mu);
    edit.has_log_number = true;
    edit.log_number = db->nimm > 1 ? db->imm[1]->wal_number : db->mem->wal_number;
    if (!rc)
        rc = lsm_db_log_and_apply(db, &edit, NULL);
    drop_pending(db, &edit, 0);
    lsm_edit_free(&edit);
    if (rc)
        return rc;
    memmove(db->imm, db->imm + 1, sizeof db->imm[0] * (size_t)(db->nimm - 1));
    db->nimm--;
    lsm_memtable_unref(m);
    db->flushes++;
    lsm_db_budget_update(db); /* the flushed memtable's bytes go back to the cache */
    lsm_db_remove_obsolete(db);
    pthread_cond_broadcast(&db->bg_cv);
    return 0;
}

/* ---- picking ---- */

static uint64_t max_bytes(const lsm_t *db, int level)
{
    uint64_t r = db->o.max_bytes_level1;
    for (int l = 1; l < level; l++)
        r *= 10;
    return r;
}

/* The level with the highest score, and its score. */
static double best_score(lsm_t *db, int *level)
{
    lsm_version_t *v = db->current;
    double best = (double)v->nfiles[0] / L0_TRIGGER;
    *level = 0;
    for (int l = 1; l < LSM_MAX_LEVELS - 1; l++) {
        double s = (double)lsm_version_level_bytes(v, l) / (double)max_bytes(db, l);
        if (s > best) {
            best = s;
            *level = l;
        }
    }
    return best;
}

bool lsm_db_needs_compaction(lsm_t *db)
{
    int level;
    return best_score(db, &level) >= 1.0;
}

typedef struct {
    int level;
    lsm_file_meta_t **in[2];
    int n[2];
    lsm_version_t *v;
    bool manual;
} compaction_t;

static void compaction_free(lsm_t *db, compaction_t *c)
{
    for (int w = 0; w < 2; w++) {
        for (int i = 0; i < c->n[w]; i++)
            c->in[w][i]->being_compacted = false;
        free(c->in[w]);
    }
    if (c->v)
        lsm_db_release_version(db, c->v);
}

/* User-key range covered by a list of files. */
static void files_range(lsm_file_meta_t **fs, int n, lsm_slice_t *lo, lsm_slice_t *hi)
{
    *lo = lsm_ikey_user(lsm_meta_smallest(fs[0]));
    *hi = lsm_ikey_user(lsm_meta_largest(fs[0]));
    for (int i = 1; i < n; i++) {
        lsm_slice_t a = lsm_ikey_user(lsm_meta_smallest(fs[i]));
        lsm_slice_t b = lsm_ikey_user(lsm_meta_largest(fs[i]));
        if (lsm_slice_cmp(a, *lo) < 0)
            *lo = a;
        if (lsm_slice_cmp(b, *hi) > 0)
            *hi = b;
    }
}

static int pick_auto(lsm_t *db, compaction_t *c)
{
    lsm_version_t *v = db->current;
    c->n[0] = 0;
    if (best_score(db, &c->level) < 1.0)
        return 0;
    int l = c->level, pick = 0;
    if (l == 0)
        return lsm_version_overlaps(v, 0, NULL, NULL, &c->in[0], &c->n[0]);
    lsm_buf_t *ptr = &db->compact_pointer[l];
    for (int i = 0; i < v->nfiles[l]; i++)
        if (ptr->len == 0 ||
            lsm_ikey_cmp(lsm_meta_largest(v->files[l][i]), lsm_slice(ptr->data, ptr->len)) > 0) {
            pick = i;
            break;
        }
    if (!(c->in[0] = malloc(sizeof *c->in[0])))
        return SHOAL_ENOMEM;
    c->in[0][0] = v->files[l][pick];
    c->n[0] = 1;
    return 0;
}

static int pick(lsm_t *db, compaction_t *c)
{
    memset(c, 0, sizeof *c);
    int rc;
    lsm_manual_t *m = db->manual;
    if (m && !m->done) {
        lsm_slice_t b = lsm_slice(m->begin.data, m->begin.len);
        lsm_slice_t e = lsm_slice(m->end.data, m->end.len);
        c->manual = true;
        c->level = m->level;
        rc = lsm_version_overlaps(db->current, m->level, m->has_begin ? &b : NULL,
                                  m->has_end ? &e : NULL, &c->in[0], &c->n[0]);
    } else {
        rc = pick_auto(db, c);
    }
    if (rc || c->n[0] == 0)
        return rc;
    lsm_slice_t lo, hi;
    files_range(c->in[0], c->n[0], &lo, &hi);
    rc = lsm_version_overlaps(db->current, c->level + 1, &lo, &hi, &c->in[1], &c->n[1]);
    if (rc)
        return rc;
    c->v = db->current;
    lsm_version_ref(c->v);
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < c->n[w]; i++)
            c->in[w][i]->being_compacted = true;
    if (!c->manual && c->level > 0) {
        lsm_slice_t k = lsm_meta_largest(c->in[0][c->n[0] - 1]);
        db->compact_pointer[c->level].len = 0;
        lsm_buf_append(&db->compact_pointer[c->level], k.data, k.len);
    }
    return 0;
}

/* ---- running ---- */

static int trivial_move(lsm_t *db, compaction_t *c)
{
    lsm_edit_t e;
    lsm_edit_init(&e);
    int rc = 0;
    for (int i = 0; i < c->n[0] && !rc; i++) {
        lsm_file_meta_t *f = c->in[0][i];
        rc = lsm_edit_delete_file(&e, c->level, f->number);
        if (!rc)
            rc = lsm_edit_add_file(&e, c->level + 1, f->number, f->size, lsm_meta_smallest(f),
                                   lsm_meta_largest(f));
    }
    if (!rc)
        rc = lsm_db_log_and_apply(db, &e, NULL);
    lsm_edit_free(&e);
    return rc;
}

/* True when no level below `level` holds user key k (in version v). */
static bool is_base_level(lsm_version_t *v, int level, lsm_slice_t k)
{
    for (int l = level + 1; l < LSM_MAX_LEVELS; l++)
        for (int i = 0; i < v->nfiles[l]; i++) {
            lsm_file_meta_t *f = v->files[l][i];
            if (lsm_slice_cmp(k, lsm_ikey_user(lsm_meta_largest(f))) <= 0) {
                if (lsm_slice_cmp(k, lsm_ikey_user(lsm_meta_smallest(f))) >= 0)
                    return false;
                break; /* sorted and disjoint: later files start after k */
            }
        }
    return true;
}

static lsm_iiter_t *inputs_iter(compaction_t *c)
{
    lsm_iiter_t **kids = malloc(sizeof *kids * (size_t)(c->n[0] + 2));
    int n = 0;
    if (!kids)
        return NULL;
    if (c->level == 0) {
        for (int i = 0; i < c->n[0]; i++)
            kids[n++] = lsm_table_iter(c->in[0][i]->table, false);
    } else {
        kids[n++] = lsm_level_iter_new(c->in[0], c->n[0], false);
    }
    if (c->n[1])
        kids[n++] = lsm_level_iter_new(c->in[1], c->n[1], false);
    lsm_iiter_t *m = NULL;
    bool ok = true;
    for (int i = 0; i < n; i++)
        ok &= kids[i] != NULL;
    if (ok)
        m = lsm_merging_iter_new(kids, n);
    else
        for (int j = 0; j < n; j++)
            lsm_iiter_destroy(kids[j]);
    free(kids);
    return m;
}

/* Flushes a waiting immutable memtable in the middle of a long compaction. */
static int maybe_flush_between(lsm_t *db)
{
    int rc = 0;
    pthread_mutex_lock(&db->mu);
    if (db->nimm > 0 && !db->bg_error)
        rc = lsm_db_flush_imm(db);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

typedef struct {
    lsm_buf_t ukey;
    bool has_ukey;
    uint64_t last_seq_for_key;
} drop_state_t;

/* *zero_seq is set when a kept entry may have its sequence rewritten to 0: a value, the
 * newest version of its key in this merge, at or below the smallest snapshot (every reader
 * sees it, and the older versions are dropped), with no deeper level holding the key (so no
 * older version anywhere could sort before it). RocksDB does the same at the bottom level: a
 * constant 8-byte trailer compresses to almost nothing. */
static bool should_drop(compaction_t *c, drop_state_t *d, lsm_slice_t ikey, uint64_t snap,
                        bool *zero_seq)
{
    *zero_seq = false;
    lsm_slice_t uk = lsm_ikey_user(ikey);
    uint64_t seq = lsm_ikey_seq(ikey);
    if (!d->has_ukey || lsm_slice_cmp(uk, lsm_slice(d->ukey.data, d->ukey.len)) != 0) {
        d->ukey.len = 0;
        d->has_ukey = lsm_buf_append(&d->ukey, uk.data, uk.len) == 0;
        d->last_seq_for_key = UINT64_MAX;
    }
    bool drop = false;
    if (d->last_seq_for_key <= snap)
        drop = true;
    else if (lsm_ikey_type(ikey) == LSM_TYPE_DELETE && seq <= snap &&
             is_base_level(c->v, c->level + 1, uk))
        drop = true;
    else if (d->last_seq_for_key == UINT64_MAX && seq <= snap && seq != 0 &&
             lsm_ikey_type(ikey) == LSM_TYPE_VALUE && is_base_level(c->v, c->level + 1, uk))
        *zero_seq = true;
    d->last_seq_for_key = seq;
    return drop;
}

static int merge(lsm_t *db, compaction_t *c, uint64_t snap, lsm_edit_t *edit,
                 uint64_t *written)
{
    lsm_outputs_t out;
    lsm_outputs_init(&out, db, c->level + 1, edit);
    drop_state_t d = {0};
    lsm_buf_t zkey = {0};
    lsm_iiter_t *it = inputs_iter(c);
    int rc = it ? 0 : SHOAL_ENOMEM;
    long n = 0;
    if (it)
        lsm_iiter_seek_first(it);
    while (!rc && lsm_iiter_valid(it)) {
        if ((++n & 1023) == 0 && (rc = maybe_flush_between(db)) != 0)
            break;
        lsm_slice_t k = lsm_iiter_key(it);
        bool zero_seq;
        if (!should_drop(c, &d, k, snap, &zero_seq)) {
            if (zero_seq) {
                zkey.len = 0;
                if (lsm_buf_append(&zkey, k.data, k.len)) {
                    rc = SHOAL_ENOMEM;
                    break;
                }
                lsm_put_fixed64(zkey.data + k.len - LSM_TRAILER,
                                lsm_get_fixed64(k.data + k.len - LSM_TRAILER) & 0xff);
                k = lsm_slice(zkey.data, zkey.len);
            }
            rc = lsm_outputs_add(&out, k, lsm_iiter_value(it));
        }
        lsm_iiter_next(it);
    }
    if (!rc && it)
        rc = lsm_iiter_status(it);
    if (!rc)
        rc = lsm_outputs_finish(&out);
    uint64_t open_number = out.b ? out.number : 0;
    lsm_outputs_abandon(&out);
    lsm_iiter_destroy(it);
    lsm_buf_free(&d.ukey);
    lsm_buf_free(&zkey);
    *written = out.bytes_written;
    if (open_number) {
        pthread_mutex_lock(&db->mu);
        lsm_db_pending_remove(db, open_number);
        pthread_mutex_unlock(&db->mu);
    }
    return rc;
}

static int run_merge(lsm_t *db, compaction_t *c)
{
    lsm_edit_t edit;
    lsm_edit_init(&edit);
    uint64_t snap = lsm_db_smallest_snapshot(db), written = 0, read = 0;
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < c->n[w]; i++)
            read += c->in[w][i]->size;
    pthread_mutex_unlock(&db->mu);
    int rc = merge(db, c, snap, &edit, &written);
    pthread_mutex_lock(&db->mu);
    for (int w = 0; w < 2 && !rc; w++)
        for (int i = 0; i < c->n[w] && !rc; i++)
            rc = lsm_edit_delete_file(&edit, c->level + w, c->in[w][i]->number);
    if (!rc)
        rc = lsm_db_log_and_apply(db, &edit, NULL);
    drop_pending(db, &edit, 0);
    lsm_edit_free(&edit);
    if (!rc) {
        db->comp_read += read;
        db->comp_written += written;
    }
    return rc;
}

int lsm_db_compact_once(lsm_t *db)
{
    compaction_t c;
    int rc = pick(db, &c);
    if (!rc && c.n[0] > 0) {
        bool move = c.n[1] == 0 && (c.level > 0 || c.n[0] == 1);
        rc = move ? trivial_move(db, &c) : run_merge(db, &c);
        if (!rc)
            db->compactions++;
    }
    if (c.manual && db->manual && !db->manual->done) {
        db->manual->done = true;
        db->manual->rc = rc;
    }
    compaction_free(db, &c);
    lsm_db_remove_obsolete(db);
    pthread_cond_broadcast(&db->bg_cv);
    return rc;
}
