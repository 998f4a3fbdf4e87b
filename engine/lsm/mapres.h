/* mapres.h - keeps the resident pages of mapped tables inside the memory budget.
 *
 * Every page of a mapped table that a read touches stays in the process's resident memory
 * until it is unmapped: a uniform random read of a 110 MiB database made all of it resident
 * (and ~250 MiB before compaction, over the tables of every level). So a mapped table asks
 * the database's tracker before a read touches pages of its mapping for the first time; the
 * tracker admits them while the charged bytes stay under its limit (the share of the memory
 * budget the mapping gets, mapres_limit in budget.c), and a table reads blocks whose pages it
 * was refused with pread, as an unmapped table does. Admitted pages stay: a uniform read load
 * gains nothing from churning them (on this machine a minor fault plus the later unmapping
 * cost 3-5 us a page, more than a pread), so the mapping is a static cache of the pages read
 * first. When the limit shrinks (the memtables grew) whole tables' pages are released
 * (env->map_release) in clock order until the charge fits again.
 *
 * The count is exact only if a fault maps no page the reader did not ask for: the posix env
 * maps tables so that the kernel maps one page per fault (env_posix.c, no fault-around, no
 * whole large folios). Pages are counted as 4 KiB. */
#ifndef SHOAL_LSM_MAPRES_H
#define SHOAL_LSM_MAPRES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/lsm/env.h"

#define LSM_MAPRES_PAGE_SHIFT 12

typedef struct lsm_mapres lsm_mapres_t;

/* One mapped table's share of the tracker; embedded in the table reader. */
typedef struct lsm_mapped {
    struct lsm_mapped *prev, *next; /* the tracker's clock ring (its mutex) */
    lsm_mapres_t *mr;               /* NULL: not tracked (every page admitted) */
    lsm_env_t *env;
    lsm_file_t *file;
    uint64_t size;   /* bytes mapped from offset 0 */
    uintptr_t first; /* the page number of the mapping's first byte (address >> shift) */
    size_t npages;
    _Atomic uint64_t *admitted; /* one bit per page: admitted since the last release */
    _Atomic size_t charged;     /* bytes this table has charged */
} lsm_mapped_t;

/* limit 0: no page is admitted (every read of a tracked table uses pread). */
lsm_mapres_t *lsm_mapres_new(size_t limit);
void lsm_mapres_destroy(lsm_mapres_t **mr_p);
/* A new limit; releases tables' pages at once while the charge is over it. */
void lsm_mapres_set_limit(lsm_mapres_t *mr, size_t limit);

typedef struct {
    uint64_t resident; /* bytes charged now */
    uint64_t limit;
    uint64_t releases; /* tables' mappings released so far */
    uint64_t refused;  /* block reads refused the mapping (read with pread instead) */
} lsm_mapres_stats_t;
void lsm_mapres_stats(lsm_mapres_t *mr, lsm_mapres_stats_t *out);

/* Joins the tracker (mr may be NULL: m is then untracked). SHOAL_ENOMEM or 0. */
int lsm_mapped_init(lsm_mapped_t *m, lsm_mapres_t *mr, lsm_env_t *env, lsm_file_t *file,
                    const char *map, uint64_t size);
/* Leaves the tracker, returning the table's charge; before the mapping is unmapped. */
void lsm_mapped_fini(lsm_mapped_t *m);

bool lsm_mapped_admit_slow(lsm_mapped_t *m, uintptr_t page, uintptr_t last);

/* Whether a read may touch [p, p + len) of the mapping: its pages were admitted before, or
 * are admitted now within the limit. The first check is one bit, for the usual one page. */
static inline bool lsm_mapped_admit(lsm_mapped_t *m, const char *p, size_t len)
{
    if (!m->mr || len == 0)
        return true;
    uintptr_t pg = ((uintptr_t)p >> LSM_MAPRES_PAGE_SHIFT) - m->first;
    uintptr_t last = ((uintptr_t)(p + len - 1) >> LSM_MAPRES_PAGE_SHIFT) - m->first;
    if (pg == last && (atomic_load_explicit(&m->admitted[pg >> 6], memory_order_relaxed) &
                       (UINT64_C(1) << (pg & 63))))
        return true;
    return lsm_mapped_admit_slow(m, pg, last);
}

#endif
