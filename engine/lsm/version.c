/* version.c - versions, file metadata, point lookups across levels and the level iterator
 * (version.h). */
#include "engine/lsm/version.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/bloom.h"
#include "engine/lsm/dbformat.h"

lsm_file_meta_t *lsm_file_meta_new(uint64_t number, uint64_t size, lsm_slice_t smallest,
                                   lsm_slice_t largest, lsm_table_t *table)
{
    lsm_file_meta_t *f = calloc(1, sizeof *f);
    if (!f || lsm_buf_append(&f->smallest, smallest.data, smallest.len) ||
        lsm_buf_append(&f->largest, largest.data, largest.len)) {
        if (f) {
            lsm_buf_free(&f->smallest);
            free(f);
        }
        lsm_table_close(&table);
        return NULL;
    }
    f->number = number;
    f->size = size;
    f->table = table;
    atomic_init(&f->refs, 1);
    return f;
}

void lsm_file_meta_unref(lsm_file_meta_t *f)
{
    if (f && atomic_fetch_sub(&f->refs, 1) == 1) {
        lsm_table_close(&f->table);
        lsm_buf_free(&f->smallest);
        lsm_buf_free(&f->largest);
        free(f);
    }
}

lsm_version_t *lsm_version_new(void)
{
    lsm_version_t *v = calloc(1, sizeof *v);
    if (v)
        atomic_init(&v->refs, 1);
    return v;
}

void lsm_version_ref(lsm_version_t *v)
{
    atomic_fetch_add(&v->refs, 1);
}

bool lsm_version_unref(lsm_version_t *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
        return false;
    for (int l = 0; l < LSM_MAX_LEVELS; l++) {
        for (int i = 0; i < v->nfiles[l]; i++)
            lsm_file_meta_unref(v->files[l][i]);
        free(v->files[l]);
    }
    free(v);
    return true;
}

static bool deleted_in(const lsm_edit_t *e, int level, uint64_t number)
{
    for (size_t i = 0; i < e->ndeleted; i++)
        if (e->deleted[i].level == level && e->deleted[i].number == number)
            return true;
    return false;
}

static int cmp_newest_first(const void *a, const void *b)
{
    const lsm_file_meta_t *x = *(lsm_file_meta_t *const *)a, *y = *(lsm_file_meta_t *const *)b;
    return x->number < y->number ? 1 : x->number > y->number ? -1 : 0;
}

static int cmp_smallest(const void *a, const void *b)
{
    const lsm_file_meta_t *x = *(lsm_file_meta_t *const *)a, *y = *(lsm_file_meta_t *const *)b;
    int r = lsm_ikey_cmp(lsm_meta_smallest(x), lsm_meta_smallest(y));
    return r ? r : (x->number > y->number) - (x->number < y->number);
}

/* Levels >= 1 must be disjoint: a violation means a corrupt manifest. */
static bool level_disjoint(const lsm_version_t *v, int l)
{
    for (int i = 1; i < v->nfiles[l]; i++)
        if (lsm_ikey_cmp(lsm_meta_largest(v->files[l][i - 1]),
                         lsm_meta_smallest(v->files[l][i])) >= 0)
            return false;
    return true;
}

static int add_file(lsm_version_t *v, int level, lsm_file_meta_t *f, int *cap)
{
    if (v->nfiles[level] == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        lsm_file_meta_t **a = realloc(v->files[level], (size_t)nc * sizeof *a);
        if (!a)
            return SHOAL_ENOMEM;
        v->files[level] = a;
        *cap = nc;
    }
    v->files[level][v->nfiles[level]++] = f;
    return 0;
}

static int add_new_files(lsm_version_t *v, const lsm_edit_t *e, lsm_table_t **opened,
                         lsm_open_table_fn open_fn, void *arg, int *caps)
{
    for (size_t i = 0; i < e->nadded; i++) {
        const lsm_edit_file_t *ef = &e->added[i];
        lsm_table_t *t = opened ? opened[i] : NULL;
        int rc = 0;
        if (!t)
            rc = open_fn(arg, ef->number, ef->size, &t);
        if (rc)
            return rc;
        if (opened)
            opened[i] = NULL; /* taken */
        lsm_file_meta_t *f =
            lsm_file_meta_new(ef->number, ef->size, lsm_slice(ef->smallest.data, ef->smallest.len),
                              lsm_slice(ef->largest.data, ef->largest.len), t);
        if (!f)
            return SHOAL_ENOMEM;
        rc = add_file(v, ef->level, f, &caps[ef->level]);
        if (rc) {
            lsm_file_meta_unref(f);
            return rc;
        }
    }
    return 0;
}

int lsm_version_apply(const lsm_version_t *base, const lsm_edit_t *edit, lsm_table_t **opened,
                      lsm_open_table_fn open_fn, void *arg, lsm_version_t **out)
{
    lsm_version_t *v = lsm_version_new();
    int caps[LSM_MAX_LEVELS] = {0}, rc = v ? 0 : SHOAL_ENOMEM;
    for (int l = 0; l < LSM_MAX_LEVELS && !rc && base; l++)
        for (int i = 0; i < base->nfiles[l] && !rc; i++) {
            lsm_file_meta_t *f = base->files[l][i];
            if (deleted_in(edit, l, f->number))
                continue;
            atomic_fetch_add(&f->refs, 1);
            if ((rc = add_file(v, l, f, &caps[l])) != 0)
                lsm_file_meta_unref(f);
        }
    if (!rc)
        rc = add_new_files(v, edit, opened, open_fn, arg, caps);
    for (int l = 0; l < LSM_MAX_LEVELS && !rc; l++) {
        if (v->nfiles[l] > 1)
            qsort(v->files[l], (size_t)v->nfiles[l], sizeof(lsm_file_meta_t *),
                  l == 0 ? cmp_newest_first : cmp_smallest);
        if (l > 0 && !level_disjoint(v, l))
            rc = SHOAL_ECORRUPT;
    }
    if (rc) {
        lsm_version_unref(v);
        return rc;
    }
    *out = v;
    return 0;
}

uint64_t lsm_version_level_bytes(const lsm_version_t *v, int level)
{
    uint64_t n = 0;
    for (int i = 0; i < v->nfiles[level]; i++)
        n += v->files[level][i]->size;
    return n;
}

/* ---- point lookup ---- */

typedef struct {
    lsm_slice_t key;
    int state;
    void *val;
    size_t vlen;
    int rc;
} get_state_t;

static void get_cb(void *arg, lsm_slice_t ikey, lsm_slice_t value)
{
    get_state_t *g = arg;
    if (lsm_slice_cmp(lsm_ikey_user(ikey), g->key) != 0)
        return; /* the first entry >= the seek key belongs to another user key */
    if (lsm_ikey_type(ikey) == LSM_TYPE_DELETE) {
        g->state = 2;
        return;
    }
    char *p = malloc(value.len + 1);
    if (!p) {
        g->rc = SHOAL_ENOMEM;
        return;
    }
    memcpy(p, value.data, value.len);
    p[value.len] = '\0';
    g->val = p;
    g->vlen = value.len;
    g->state = 1;
}

static int search_file(lsm_file_meta_t *f, lsm_slice_t ikey, uint64_t hash, bool fill_cache,
                       get_state_t *g, uint64_t *bloom_useful)
{
    if (!lsm_table_may_contain(f->table, hash)) {
        (*bloom_useful)++;
        return 0;
    }
    bool found;
    int rc = lsm_table_get(f->table, ikey, hash, fill_cache, get_cb, g, &found);
    return rc ? rc : g->rc;
}

/* Index of the first file in a disjoint level whose largest key >= ikey. */
static int find_file(lsm_file_meta_t **files, int n, lsm_slice_t ikey)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (lsm_ikey_cmp(lsm_meta_largest(files[mid]), ikey) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int lsm_version_get(lsm_version_t *v, lsm_slice_t key, uint64_t seq, bool fill_cache, int *state,
                    void **val, size_t *vlen, uint64_t *bloom_useful)
{
    char sbuf[128];
    char *buf = key.len + LSM_TRAILER <= sizeof sbuf ? sbuf : malloc(key.len + LSM_TRAILER);
    if (!buf)
        return SHOAL_ENOMEM;
    lsm_slice_t ikey = lsm_make_ikey(buf, key.data, key.len, seq, LSM_TYPE_SEEK);
    uint64_t hash = lsm_bloom_hash(key);
    get_state_t g = {.key = key};
    int rc = 0;
    for (int i = 0; i < v->nfiles[0] && !rc && !g.state; i++) {
        lsm_file_meta_t *f = v->files[0][i];
        if (lsm_slice_cmp(key, lsm_ikey_user(lsm_meta_smallest(f))) >= 0 &&
            lsm_slice_cmp(key, lsm_ikey_user(lsm_meta_largest(f))) <= 0)
            rc = search_file(f, ikey, hash, fill_cache, &g, bloom_useful);
    }
    for (int l = 1; l < LSM_MAX_LEVELS && !rc && !g.state; l++) {
        int i = find_file(v->files[l], v->nfiles[l], ikey);
        if (i < v->nfiles[l] &&
            lsm_slice_cmp(key, lsm_ikey_user(lsm_meta_smallest(v->files[l][i]))) >= 0)
            rc = search_file(v->files[l][i], ikey, hash, fill_cache, &g, bloom_useful);
    }
    if (buf != sbuf)
        free(buf);
    if (rc) {
        free(g.val);
        return rc;
    }
    *state = g.state;
    *val = g.val;
    *vlen = g.vlen;
    return 0;
}

int lsm_version_overlaps(const lsm_version_t *v, int level, const lsm_slice_t *begin,
                         const lsm_slice_t *end, lsm_file_meta_t ***out, int *n)
{
    lsm_file_meta_t **r = malloc(sizeof *r * (size_t)(v->nfiles[level] + 1));
    if (!r)
        return SHOAL_ENOMEM;
    lsm_slice_t b = begin ? *begin : lsm_slice("", 0), e = end ? *end : lsm_slice("", 0);
    bool has_b = begin != NULL, has_e = end != NULL;
    int k = 0;
    for (int i = 0; i < v->nfiles[level]; i++) {
        lsm_file_meta_t *f = v->files[level][i];
        lsm_slice_t lo = lsm_ikey_user(lsm_meta_smallest(f));
        lsm_slice_t hi = lsm_ikey_user(lsm_meta_largest(f));
        if ((has_b && lsm_slice_cmp(hi, b) < 0) || (has_e && lsm_slice_cmp(lo, e) > 0))
            continue;
        r[k++] = f;
        if (level != 0)
            continue;
        /* Level-0 files overlap each other: a file that widens the range may pull in older
         * files that must come along (else newer data would sink below older). Restart. */
        if (has_b && lsm_slice_cmp(lo, b) < 0) {
            b = lo;
            k = 0;
            i = -1;
        }
        if (has_e && lsm_slice_cmp(hi, e) > 0) {
            e = hi;
            k = 0;
            i = -1;
        }
    }
    *out = r;
    *n = k;
    return 0;
}

/* ---- level iterator: concatenates the tables of one disjoint level ---- */

typedef struct {
    lsm_iiter_t base;
    lsm_file_meta_t **files;
    int n, idx; /* idx = file of `cur` */
    lsm_iiter_t *cur;
    bool fill_cache;
    int status;
} level_iter_t;

static bool open_file(level_iter_t *li, int idx)
{
    if (li->cur && li->idx == idx)
        return true;
    lsm_iiter_destroy(li->cur);
    li->cur = NULL;
    if (idx < 0 || idx >= li->n)
        return false;
    li->cur = lsm_table_iter(li->files[idx]->table, li->fill_cache);
    li->idx = idx;
    if (!li->cur)
        li->status = SHOAL_ENOMEM;
    return li->cur != NULL;
}

static void li_forward(level_iter_t *li)
{
    while (li->cur && !lsm_iiter_valid(li->cur)) {
        if ((li->status = lsm_iiter_status(li->cur)) != 0 || !open_file(li, li->idx + 1))
            return;
        lsm_iiter_seek_first(li->cur);
    }
}

static void li_backward(level_iter_t *li)
{
    while (li->cur && !lsm_iiter_valid(li->cur)) {
        if ((li->status = lsm_iiter_status(li->cur)) != 0 || !open_file(li, li->idx - 1))
            return;
        lsm_iiter_seek_last(li->cur);
    }
}

static bool li_valid(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    return li->cur && !li->status && lsm_iiter_valid(li->cur);
}

static void li_seek_first(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    if (open_file(li, 0))
        lsm_iiter_seek_first(li->cur);
    li_forward(li);
}

static void li_seek_last(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    if (open_file(li, li->n - 1))
        lsm_iiter_seek_last(li->cur);
    li_backward(li);
}

static void li_seek(lsm_iiter_t *it, lsm_slice_t k)
{
    level_iter_t *li = (level_iter_t *)it;
    if (open_file(li, find_file(li->files, li->n, k)))
        lsm_iiter_seek(li->cur, k);
    li_forward(li);
}

static void li_next(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    lsm_iiter_next(li->cur);
    li_forward(li);
}

static void li_prev(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    lsm_iiter_prev(li->cur);
    li_backward(li);
}

static lsm_slice_t li_key(lsm_iiter_t *it)
{
    return lsm_iiter_key(((level_iter_t *)it)->cur);
}

static lsm_slice_t li_value(lsm_iiter_t *it)
{
    return lsm_iiter_value(((level_iter_t *)it)->cur);
}

static int li_status(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    if (li->status)
        return li->status;
    return li->cur ? lsm_iiter_status(li->cur) : 0;
}

static void li_destroy(lsm_iiter_t *it)
{
    level_iter_t *li = (level_iter_t *)it;
    lsm_iiter_destroy(li->cur);
    free(li);
}

static const lsm_iiter_ops_t level_ops = {li_valid, li_seek_first, li_seek_last, li_seek,
                                          li_next,  li_prev,       li_key,       li_value,
                                          li_status, li_destroy};

lsm_iiter_t *lsm_level_iter_new(lsm_file_meta_t **files, int n, bool fill_cache)
{
    level_iter_t *li = calloc(1, sizeof *li);
    if (!li)
        return NULL;
    li->base.ops = &level_ops;
    li->files = files;
    li->n = n;
    li->idx = -1;
    li->fill_cache = fill_cache;
    return &li->base;
}

int lsm_version_iters(lsm_version_t *v, bool fill_cache, lsm_iiter_t **kids, int *n)
{
    for (int i = 0; i < v->nfiles[0]; i++)
        if (!(kids[(*n)++] = lsm_table_iter(v->files[0][i]->table, fill_cache)))
            return SHOAL_ENOMEM;
    for (int l = 1; l < LSM_MAX_LEVELS; l++)
        if (v->nfiles[l] > 0 &&
            !(kids[(*n)++] = lsm_level_iter_new(v->files[l], v->nfiles[l], fill_cache)))
            return SHOAL_ENOMEM;
    return 0;
}
