/* db_iter.c - the user iterator (lsm_iter_t): turns the merged stream of internal entries
 * (memtables + tables, every version of every key) into the visible key/value pairs at one
 * sequence number, within optional bounds, forward and backward.
 *
 * Forward, the internal iterator sits on the visible entry itself. Backward (as in
 * LevelDB's DBIter), it sits just before all entries of the current user key, and the
 * current key and value are copied into saved_key/saved_value, because finding the newest
 * visible version of a key walking backward means passing it. Changing direction re-seeks.
 * The iterator pins its memtables and version (via the merged children), so it sees one
 * consistent state however long it lives. */
#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

struct lsm_iter {
    lsm_t *db;
    lsm_iiter_t *it;
    lsm_version_t *v;
    uint64_t seq;
    lsm_buf_t lower, upper;
    bool has_lower, has_upper;
    bool valid, forward;
    int status;
    lsm_buf_t saved_key, saved_value; /* backward: the current entry; forward: a skip key */
    lsm_buf_t seek_buf;
};

lsm_iiter_t *lsm_db_internal_iter(lsm_t *db, bool fill_cache, lsm_version_t **v_out)
{
    lsm_iiter_t *kids[LSM_MAX_IMM + 1 + 64 + LSM_MAX_LEVELS];
    int n = 0, rc = 0;
    pthread_mutex_lock(&db->mu);
    lsm_version_t *v = db->current;
    lsm_version_ref(v);
    if (atomic_load(&db->mem->entries) > 0)
        kids[n++] = lsm_memtable_iter(db->mem);
    for (int i = db->nimm - 1; i >= 0; i--)
        kids[n++] = lsm_memtable_iter(db->imm[i]);
    if (v->nfiles[0] > 64) /* the stop trigger keeps level 0 far below this */
        rc = SHOAL_EBUSY;
    pthread_mutex_unlock(&db->mu);
    if (!rc)
        rc = lsm_version_iters(v, fill_cache, kids, &n);
    for (int i = 0; i < n; i++)
        if (!kids[i])
            rc = SHOAL_ENOMEM;
    if (rc) {
        for (int i = 0; i < n; i++)
            lsm_iiter_destroy(kids[i]);
        lsm_db_unref_version(db, v);
        return NULL;
    }
    *v_out = v;
    return lsm_merging_iter_new(kids, n);
}

int lsm_iter_new(lsm_t *db, const lsm_read_options_t *ro, lsm_iter_t **it_p)
{
    lsm_read_options_t def;
    if (!ro) {
        lsm_read_options_init(&def);
        ro = &def;
    }
    *it_p = NULL;
    lsm_iter_t *it = calloc(1, sizeof *it);
    if (!it)
        return SHOAL_ENOMEM;
    it->db = db;
    it->seq = ro->snapshot ? ro->snapshot->seq : atomic_load(&db->last_seq);
    int rc = 0;
    if (ro->lower_bound)
        rc |= lsm_buf_append(&it->lower, ro->lower_bound, ro->lower_len), it->has_lower = true;
    if (ro->upper_bound)
        rc |= lsm_buf_append(&it->upper, ro->upper_bound, ro->upper_len), it->has_upper = true;
    if (!rc && !(it->it = lsm_db_internal_iter(db, ro->fill_cache, &it->v)))
        rc = SHOAL_ENOMEM;
    if (rc) {
        lsm_iter_destroy(&it);
        return rc ? rc : SHOAL_ENOMEM;
    }
    *it_p = it;
    return 0;
}

void lsm_iter_destroy(lsm_iter_t **it_p)
{
    if (!it_p || !*it_p)
        return;
    lsm_iter_t *it = *it_p;
    lsm_iiter_destroy(it->it);
    if (it->v)
        lsm_db_unref_version(it->db, it->v);
    lsm_buf_free(&it->lower);
    lsm_buf_free(&it->upper);
    lsm_buf_free(&it->saved_key);
    lsm_buf_free(&it->saved_value);
    lsm_buf_free(&it->seek_buf);
    free(it);
    *it_p = NULL;
}

static bool above_upper(const lsm_iter_t *it, lsm_slice_t uk)
{
    return it->has_upper && lsm_slice_cmp(uk, lsm_slice(it->upper.data, it->upper.len)) >= 0;
}

static bool below_lower(const lsm_iter_t *it, lsm_slice_t uk)
{
    return it->has_lower && lsm_slice_cmp(uk, lsm_slice(it->lower.data, it->lower.len)) < 0;
}

static void set_invalid(lsm_iter_t *it)
{
    it->valid = false;
    if (!it->status)
        it->status = lsm_iiter_status(it->it);
}

static bool save(lsm_buf_t *b, lsm_slice_t s)
{
    b->len = 0;
    return lsm_buf_append(b, s.data, s.len) == 0;
}

/* Forward: moves to the first visible entry at or after the internal position; entries of
 * the user key in saved_key are skipped when `skipping`. */
static void find_next_user_entry(lsm_iter_t *it, bool skipping)
{
    lsm_iiter_t *in = it->it;
    for (; lsm_iiter_valid(in); lsm_iiter_next(in)) {
        lsm_slice_t ik = lsm_iiter_key(in);
        if (lsm_ikey_seq(ik) > it->seq)
            continue;
        lsm_slice_t uk = lsm_ikey_user(ik);
        if (skipping && lsm_slice_cmp(uk, lsm_slice(it->saved_key.data, it->saved_key.len)) <= 0)
            continue;
        if (lsm_ikey_type(ik) == LSM_TYPE_DELETE) {
            skipping = save(&it->saved_key, uk); /* hide older versions of this key */
            continue;
        }
        if (above_upper(it, uk))
            break;
        it->valid = true;
        return;
    }
    set_invalid(it);
}

/* Backward: collects the newest visible version of the user key before the position. */
static void find_prev_user_entry(lsm_iter_t *it)
{
    lsm_iiter_t *in = it->it;
    int type = LSM_TYPE_DELETE;
    for (; lsm_iiter_valid(in); lsm_iiter_prev(in)) {
        lsm_slice_t ik = lsm_iiter_key(in);
        if (lsm_ikey_seq(ik) > it->seq)
            continue;
        lsm_slice_t uk = lsm_ikey_user(ik);
        if (type != LSM_TYPE_DELETE &&
            lsm_slice_cmp(uk, lsm_slice(it->saved_key.data, it->saved_key.len)) < 0)
            break; /* passed the whole key: saved_* holds its newest visible version */
        type = lsm_ikey_type(ik);
        if (type == LSM_TYPE_DELETE) {
            it->saved_key.len = it->saved_value.len = 0;
        } else if (!save(&it->saved_key, uk) || !save(&it->saved_value, lsm_iiter_value(in))) {
            it->status = SHOAL_ENOMEM;
            set_invalid(it);
            return;
        }
    }
    if (type == LSM_TYPE_DELETE ||
        below_lower(it, lsm_slice(it->saved_key.data, it->saved_key.len))) {
        set_invalid(it);
        it->forward = true;
        return;
    }
    it->valid = true;
}

static lsm_slice_t seek_key(lsm_iter_t *it, const void *key, size_t klen, uint64_t seq)
{
    it->seek_buf.len = 0;
    if (lsm_buf_reserve(&it->seek_buf, klen + LSM_TRAILER))
        return lsm_slice(NULL, 0);
    return lsm_make_ikey(it->seek_buf.data, key, klen, seq, LSM_TYPE_SEEK);
}

void lsm_iter_seek(lsm_iter_t *it, const void *key, size_t klen)
{
    if (below_lower(it, lsm_slice(key, klen))) {
        key = it->lower.data;
        klen = it->lower.len;
    }
    lsm_slice_t ik = seek_key(it, key, klen, it->seq);
    if (!ik.data) {
        it->status = SHOAL_ENOMEM;
        it->valid = false;
        return;
    }
    it->forward = true;
    lsm_iiter_seek(it->it, ik);
    find_next_user_entry(it, false);
}

void lsm_iter_seek_to_first(lsm_iter_t *it)
{
    if (it->has_lower) {
        lsm_iter_seek(it, it->lower.data, it->lower.len);
        return;
    }
    it->forward = true;
    lsm_iiter_seek_first(it->it);
    find_next_user_entry(it, false);
}

void lsm_iter_seek_to_last(lsm_iter_t *it)
{
    it->forward = false;
    it->saved_value.len = 0;
    if (it->has_upper) {
        lsm_slice_t ik = seek_key(it, it->upper.data, it->upper.len, LSM_MAX_SEQ);
        if (!ik.data) {
            it->status = SHOAL_ENOMEM;
            it->valid = false;
            return;
        }
        lsm_iiter_seek(it->it, ik); /* first entry >= upper; step before it */
        if (lsm_iiter_valid(it->it))
            lsm_iiter_prev(it->it);
        else if (!lsm_iiter_status(it->it))
            lsm_iiter_seek_last(it->it);
    } else {
        lsm_iiter_seek_last(it->it);
    }
    find_prev_user_entry(it);
}

void lsm_iter_next(lsm_iter_t *it)
{
    if (!it->valid)
        return;
    if (!it->forward) {
        /* The internal iterator is before the current key's entries: go past them. */
        it->forward = true;
        if (!lsm_iiter_valid(it->it)) {
            if (lsm_iiter_status(it->it)) {
                set_invalid(it);
                return;
            }
            lsm_iiter_seek_first(it->it);
        } else {
            lsm_iiter_next(it->it);
        }
        find_next_user_entry(it, true); /* saved_key is the current key */
        return;
    }
    if (!save(&it->saved_key, lsm_ikey_user(lsm_iiter_key(it->it)))) {
        it->status = SHOAL_ENOMEM;
        it->valid = false;
        return;
    }
    lsm_iiter_next(it->it);
    find_next_user_entry(it, true);
}

void lsm_iter_prev(lsm_iter_t *it)
{
    if (!it->valid)
        return;
    if (it->forward) {
        /* Step back until before every entry of the current user key. */
        if (!save(&it->saved_key, lsm_ikey_user(lsm_iiter_key(it->it)))) {
            it->status = SHOAL_ENOMEM;
            it->valid = false;
            return;
        }
        for (;;) {
            lsm_iiter_prev(it->it);
            if (!lsm_iiter_valid(it->it)) {
                it->valid = false;
                if (!(it->status = lsm_iiter_status(it->it)))
                    it->saved_key.len = it->saved_value.len = 0;
                return;
            }
            if (lsm_slice_cmp(lsm_ikey_user(lsm_iiter_key(it->it)),
                              lsm_slice(it->saved_key.data, it->saved_key.len)) < 0)
                break;
        }
        it->forward = false;
    }
    find_prev_user_entry(it);
}

void lsm_iter_seek_for_prev(lsm_iter_t *it, const void *key, size_t klen)
{
    lsm_iter_seek(it, key, klen);
    if (it->valid) {
        size_t n;
        const void *k = lsm_iter_key(it, &n);
        if (lsm_slice_cmp(lsm_slice(k, n), lsm_slice(key, klen)) == 0)
            return;
        lsm_iter_prev(it);
    } else if (!it->status) {
        lsm_iter_seek_to_last(it);
    }
}

bool lsm_iter_valid(const lsm_iter_t *it)
{
    return it->valid;
}

const void *lsm_iter_key(const lsm_iter_t *it, size_t *klen)
{
    if (!it->forward) {
        *klen = it->saved_key.len;
        return it->saved_key.data;
    }
    lsm_slice_t uk = lsm_ikey_user(lsm_iiter_key(it->it));
    *klen = uk.len;
    return uk.data;
}

const void *lsm_iter_value(const lsm_iter_t *it, size_t *vlen)
{
    if (!it->forward) {
        *vlen = it->saved_value.len;
        return it->saved_value.data ? it->saved_value.data : "";
    }
    lsm_slice_t v = lsm_iiter_value(it->it);
    *vlen = v.len;
    return v.data;
}

int lsm_iter_status(const lsm_iter_t *it)
{
    return it->status;
}
