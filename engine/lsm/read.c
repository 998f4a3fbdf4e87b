/* read.c - point reads (lsm_get). A read pins the active and immutable memtables and the
 * current version (reference counts taken under the mutex, released after), then looks from
 * newest to oldest: active memtable, immutable memtables, then the version's tables
 * (version.c: level 0 newest first, one table per deeper level, bloom filter before any
 * block). The first entry found for the key decides: a value, or a tombstone = not found. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

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
