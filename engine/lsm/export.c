/* export.c - snapshot export and ingest (lsm.h), the engine's side of Raft snapshots.
 *
 * Stream format (docs/FORMATS.md):
 *     "SHOALSNP" | fixed32 version = 1
 *     frame*     = fixed32 len (> 0) | fixed32 checksum(payload) | payload
 *                  payload = (varint klen | key | varint vlen | value)+, keys strictly increasing
 *     end        = fixed32 0 | fixed32 checksum(count) | fixed64 count of entries
 * Frames hold up to 64 KiB of entries, so a reader of any chunk size streams with bounded
 * memory. The end frame makes truncation detectable: an ingest without it fails.
 *
 * Ingest writes the entries (sequence 0) into tables of the last level as they arrive;
 * finish swaps them in with one manifest edit that deletes every live table, after dropping
 * the memtables and starting a new WAL, with the background thread paused and no write in
 * flight. Existing snapshots see the new content (sequence 0 is below them all); iterators
 * keep the version they pinned. */
#include <stdlib.h>

#include "engine/checksum.h"
#include "engine/error.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

#define SNAP_MAGIC "SHOALSNP"
#define SNAP_VERSION 1
#define SNAP_HEADER 12
#define FRAME_TARGET (64u << 10)
#define FRAME_MAX (64u << 20)

struct lsm_export {
    lsm_t *db;
    const lsm_snapshot_t *snap;
    lsm_iter_t *it;
    lsm_buf_t out;
    size_t out_off;
    uint64_t count;
    bool header_done, end_done;
};

int lsm_export_begin(lsm_t *db, const lsm_snapshot_t *snap, lsm_export_t **ex_p)
{
    lsm_export_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        return SHOAL_ENOMEM;
    ex->db = db;
    ex->snap = lsm_snapshot_new(db);
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.fill_cache = false;
    ro.snapshot = snap ? snap : ex->snap;
    int rc = ex->snap ? lsm_iter_new(db, &ro, &ex->it) : SHOAL_ENOMEM;
    if (rc) {
        lsm_export_end(&ex);
        return rc;
    }
    lsm_iter_seek_to_first(ex->it);
    *ex_p = ex;
    return 0;
}

/* Encodes the next frame (or the end frame) into ex->out. */
static int fill(lsm_export_t *ex)
{
    lsm_buf_t *o = &ex->out;
    o->len = 0;
    ex->out_off = 0;
    if (!ex->header_done) {
        ex->header_done = true;
        int rc = lsm_buf_append(o, SNAP_MAGIC, 8);
        return rc ? rc : lsm_buf_append_fixed32(o, SNAP_VERSION);
    }
    if (lsm_buf_reserve(o, 8))
        return SHOAL_ENOMEM;
    o->len = 8;
    while (lsm_iter_valid(ex->it) && o->len < FRAME_TARGET) {
        size_t kl, vl;
        const void *k = lsm_iter_key(ex->it, &kl), *v = lsm_iter_value(ex->it, &vl);
        if (lsm_buf_append_lenprefixed(o, k, kl) || lsm_buf_append_lenprefixed(o, v, vl))
            return SHOAL_ENOMEM;
        ex->count++;
        lsm_iter_next(ex->it);
    }
    int rc = lsm_iter_status(ex->it);
    if (rc)
        return rc;
    if (o->len > 8) {
        lsm_put_fixed32(o->data, (uint32_t)(o->len - 8));
        lsm_put_fixed32(o->data + 4, shoal_checksum32(o->data + 8, o->len - 8));
        return 0;
    }
    ex->end_done = true;
    char cnt[8];
    lsm_put_fixed64(cnt, ex->count);
    lsm_put_fixed32(o->data, 0);
    lsm_put_fixed32(o->data + 4, shoal_checksum32(cnt, 8));
    return lsm_buf_append(o, cnt, 8);
}

int lsm_export_read(lsm_export_t *ex, void *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        if (ex->out_off == ex->out.len) {
            if (ex->end_done)
                break;
            int rc = fill(ex);
            if (rc)
                return rc;
        }
        size_t take = ex->out.len - ex->out_off;
        if (take > cap - *n)
            take = cap - *n;
        memcpy((char *)buf + *n, ex->out.data + ex->out_off, take);
        ex->out_off += take;
        *n += take;
    }
    return 0;
}

void lsm_export_end(lsm_export_t **ex_p)
{
    if (!ex_p || !*ex_p)
        return;
    lsm_export_t *ex = *ex_p;
    lsm_iter_destroy(&ex->it);
    lsm_snapshot_release(ex->db, &ex->snap);
    lsm_buf_free(&ex->out);
    free(ex);
    *ex_p = NULL;
}

/* ---- ingest ---- */

struct lsm_ingest {
    lsm_t *db;
    lsm_buf_t in; /* bytes received and not yet parsed */
    size_t in_off;
    bool header_done, end_seen;
    uint64_t count;
    lsm_buf_t last_key, ikey;
    lsm_edit_t edit;
    lsm_outputs_t out;
    int status;
};

int lsm_ingest_begin(lsm_t *db, lsm_ingest_t **in_p)
{
    lsm_ingest_t *in = calloc(1, sizeof *in);
    if (!in)
        return SHOAL_ENOMEM;
    in->db = db;
    lsm_edit_init(&in->edit);
    lsm_outputs_init(&in->out, db, LSM_MAX_LEVELS - 1, &in->edit);
    *in_p = in;
    return 0;
}

static int bad(lsm_ingest_t *in, const char *what)
{
    return lsm_err(&in->db->log, SHOAL_ECORRUPT, "snapshot stream at byte %zu: %s",
                   in->in_off, what);
}

static int ingest_entry(lsm_ingest_t *in, lsm_slice_t k, lsm_slice_t v)
{
    if (in->count > 0 && lsm_slice_cmp(k, lsm_slice(in->last_key.data, in->last_key.len)) <= 0)
        return bad(in, "keys out of order");
    in->last_key.len = 0;
    in->ikey.len = 0;
    if (lsm_buf_append(&in->last_key, k.data, k.len) ||
        lsm_buf_reserve(&in->ikey, k.len + LSM_TRAILER))
        return SHOAL_ENOMEM;
    lsm_slice_t ik = lsm_make_ikey(in->ikey.data, k.data, k.len, 0, LSM_TYPE_VALUE);
    in->count++;
    return lsm_outputs_add(&in->out, ik, v);
}

static int ingest_payload(lsm_ingest_t *in, const char *p, const char *end)
{
    while (p < end) {
        lsm_slice_t k, v;
        if (!(p = lsm_get_lenprefixed(p, end, &k)) || !(p = lsm_get_lenprefixed(p, end, &v)))
            return bad(in, "malformed entry");
        int rc = ingest_entry(in, k, v);
        if (rc)
            return rc;
    }
    return 0;
}

/* Parses whatever complete pieces the buffer holds. */
static int parse(lsm_ingest_t *in)
{
    for (;;) {
        const char *p = in->in.data + in->in_off;
        size_t left = in->in.len - in->in_off;
        if (!in->header_done) {
            if (left < SNAP_HEADER)
                return 0;
            if (memcmp(p, SNAP_MAGIC, 8) || lsm_get_fixed32(p + 8) != SNAP_VERSION)
                return bad(in, "not a Shoal snapshot stream (magic or version)");
            in->header_done = true;
            in->in_off += SNAP_HEADER;
            continue;
        }
        if (left > 0 && in->end_seen)
            return bad(in, "data after the end frame");
        if (left < 8)
            return 0;
        uint32_t len = lsm_get_fixed32(p), crc = lsm_get_fixed32(p + 4);
        size_t need = len ? (size_t)len : 8;
        if (len > FRAME_MAX)
            return bad(in, "frame too large");
        if (left < 8 + need)
            return 0;
        if (crc != shoal_checksum32(p + 8, need))
            return bad(in, "frame checksum mismatch");
        if (len == 0 && lsm_get_fixed64(p + 8) != in->count)
            return bad(in, "entry count mismatch");
        int rc = len ? ingest_payload(in, p + 8, p + 8 + len) : 0;
        if (rc)
            return rc;
        in->end_seen = len == 0;
        in->in_off += 8 + need;
    }
}

int lsm_ingest_write(lsm_ingest_t *in, const void *buf, size_t len)
{
    if (in->status)
        return in->status;
    if (in->in_off > 0) { /* drop parsed bytes */
        memmove(in->in.data, in->in.data + in->in_off, in->in.len - in->in_off);
        in->in.len -= in->in_off;
        in->in_off = 0;
    }
    int rc = lsm_buf_append(&in->in, buf, len);
    if (!rc)
        rc = parse(in);
    return in->status = rc;
}

typedef struct {
    lsm_ingest_t *in;
} swap_arg_t;

/* As write leader, with mu held: replaces every table and memtable by the ingested tables. */
static int swap_in(lsm_t *db, void *arg)
{
    lsm_ingest_t *in = ((swap_arg_t *)arg)->in;
    db->bg_paused++;
    while (db->bg_busy)
        pthread_cond_wait(&db->bg_cv, &db->mu);
    int rc = db->bg_error;
    for (int l = 0; l < LSM_MAX_LEVELS && !rc; l++)
        for (int i = 0; i < db->current->nfiles[l] && !rc; i++)
            rc = lsm_edit_delete_file(&in->edit, l, db->current->files[l][i]->number);
    if (!rc)
        rc = lsm_db_reset_memtables(db);
    if (!rc) {
        in->edit.has_log_number = true;
        in->edit.log_number = db->wal_number;
        rc = lsm_db_log_and_apply(db, &in->edit, NULL);
        if (rc)
            lsm_db_set_bg_error(db, rc); /* memtables are gone: refuse writes until reopen */
    }
    for (size_t i = 0; i < in->edit.nadded; i++)
        lsm_db_pending_remove(db, in->edit.added[i].number);
    if (!rc)
        lsm_db_remove_obsolete(db);
    db->bg_paused--;
    lsm_db_wake_bg(db);
    return rc;
}

static void ingest_free(lsm_ingest_t *in, bool remove_files)
{
    lsm_t *db = in->db;
    uint64_t open_number = in->out.b ? in->out.number : 0;
    lsm_outputs_abandon(&in->out);
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < in->edit.nadded; i++) {
        char path[4096];
        lsm_db_path(db, path, sizeof path, in->edit.added[i].number, "sst");
        if (remove_files)
            db->env->remove(db->env, path);
        lsm_db_pending_remove(db, in->edit.added[i].number);
    }
    if (open_number) {
        char path[4096];
        lsm_db_path(db, path, sizeof path, open_number, "sst");
        db->env->remove(db->env, path);
        lsm_db_pending_remove(db, open_number);
    }
    pthread_mutex_unlock(&db->mu);
    lsm_edit_free(&in->edit);
    lsm_buf_free(&in->in);
    lsm_buf_free(&in->last_key);
    lsm_buf_free(&in->ikey);
    free(in);
}

int lsm_ingest_finish(lsm_ingest_t **in_p)
{
    lsm_ingest_t *in = *in_p;
    int rc = in->status;
    if (!rc && (!in->end_seen || in->in_off != in->in.len))
        rc = bad(in, "stream ended before its end frame");
    if (!rc)
        rc = lsm_outputs_finish(&in->out);
    if (!rc) {
        swap_arg_t a = {in};
        rc = lsm_db_as_leader(in->db, swap_in, &a);
    }
    ingest_free(in, rc != 0);
    *in_p = NULL;
    return rc;
}

void lsm_ingest_abort(lsm_ingest_t **in_p)
{
    if (!in_p || !*in_p)
        return;
    ingest_free(*in_p, true);
    *in_p = NULL;
}
