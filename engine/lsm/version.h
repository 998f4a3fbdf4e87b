/* version.h - a version: the set of live tables, per level, at one moment.
 *
 * Level 0 holds tables flushed from memtables; they may overlap and are kept newest first
 * (by file number, which grows with time). Levels 1.. hold tables with disjoint key ranges,
 * sorted by smallest key, so a lookup reads at most one table per level.
 *
 * Versions are immutable and reference counted: a read or an iterator pins the version it
 * started on, so a compaction that replaces tables never pulls a file from under it. A file's
 * metadata (and its open table reader) is shared by every version that contains it and
 * closed when the last one goes; the file on disk is removed later, by the database, once no
 * live version names it. */
#ifndef SHOAL_LSM_VERSION_H
#define SHOAL_LSM_VERSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/coding.h"
#include "engine/lsm/iter.h"
#include "engine/lsm/lsm.h"
#include "engine/lsm/manifest.h"
#include "engine/lsm/table.h"

typedef struct {
    uint64_t number, size;
    lsm_buf_t smallest, largest; /* internal keys */
    lsm_table_t *table;          /* open reader */
    atomic_int refs;
    bool being_compacted; /* guarded by the database mutex */
} lsm_file_meta_t;

typedef struct lsm_version lsm_version_t;
struct lsm_version {
    lsm_file_meta_t **files[LSM_MAX_LEVELS];
    int nfiles[LSM_MAX_LEVELS];
    atomic_int refs;
    lsm_version_t *prev, *next; /* list of live versions (database mutex) */
};

lsm_file_meta_t *lsm_file_meta_new(uint64_t number, uint64_t size, lsm_slice_t smallest,
                                   lsm_slice_t largest, lsm_table_t *table); /* takes table */
void lsm_file_meta_unref(lsm_file_meta_t *f);

static inline lsm_slice_t lsm_meta_smallest(const lsm_file_meta_t *f)
{
    return lsm_slice(f->smallest.data, f->smallest.len);
}
static inline lsm_slice_t lsm_meta_largest(const lsm_file_meta_t *f)
{
    return lsm_slice(f->largest.data, f->largest.len);
}

lsm_version_t *lsm_version_new(void); /* empty, refs = 1 */
void lsm_version_ref(lsm_version_t *v);
/* Returns true when that was the last reference (the version was freed). */
bool lsm_version_unref(lsm_version_t *v);

/* Opens tables for added files: called with a path and the number, returns a table. */
typedef int (*lsm_open_table_fn)(void *arg, uint64_t number, uint64_t size, lsm_table_t **t);

/* Builds base + edit into a new version (refs = 1). Tables of added files are opened with
 * open_fn unless `opened` supplies them (index-aligned with edit->added, may be NULL). */
int lsm_version_apply(const lsm_version_t *base, const lsm_edit_t *edit,
                      lsm_table_t **opened, lsm_open_table_fn open_fn, void *arg,
                      lsm_version_t **out);

/* Point lookup of user key at snapshot seq. Returns 0 with *state = 0 (not found in tables),
 * 1 (found: value copied into a malloc'd *val and *vlen), 2 (deleted); or an error. */
int lsm_version_get(lsm_version_t *v, lsm_slice_t key, uint64_t seq, bool fill_cache,
                    int *state, void **val, size_t *vlen, uint64_t *bloom_useful);

/* Appends to kids the iterators of the version (one per L0 table, one per deeper level). */
int lsm_version_iters(lsm_version_t *v, bool fill_cache, lsm_iiter_t **kids, int *n);

/* An iterator over a sorted, disjoint list of files (borrowed: the version must outlive it). */
lsm_iiter_t *lsm_level_iter_new(lsm_file_meta_t **files, int n, bool fill_cache);

uint64_t lsm_version_level_bytes(const lsm_version_t *v, int level);

/* Files of `level` overlapping user-key range [begin, end] (NULL = unbounded); malloc'd.
 * For level 0 the range grows to cover every file it picks, transitively. */
int lsm_version_overlaps(const lsm_version_t *v, int level, const lsm_slice_t *begin,
                         const lsm_slice_t *end, lsm_file_meta_t ***out, int *n);

#endif
