/* mapres.c - see mapres.h. The tables form a ring with a clock hand; a release takes a whole
 * table (one madvise, whatever it holds) rather than single pages, as releases only follow a
 * shrinking limit and are rare. */
#include "engine/lsm/mapres.h"

#include <pthread.h>
#include <stdlib.h>

#include "engine/error.h"

#define PAGE ((size_t)1 << LSM_MAPRES_PAGE_SHIFT)

struct lsm_mapres {
    pthread_mutex_t mu;      /* the ring, the hand, releases */
    lsm_mapped_t ring;       /* sentinel */
    lsm_mapped_t *hand;      /* the next table to release, or &ring */
    _Atomic size_t resident; /* bytes charged by every table */
    _Atomic size_t limit;
    _Atomic uint64_t refused;
    uint64_t releases;
};

lsm_mapres_t *lsm_mapres_new(size_t limit)
{
    lsm_mapres_t *mr = calloc(1, sizeof *mr);
    if (!mr)
        return NULL;
    pthread_mutex_init(&mr->mu, NULL);
    mr->ring.next = mr->ring.prev = &mr->ring;
    mr->hand = &mr->ring;
    atomic_init(&mr->limit, limit);
    return mr;
}

void lsm_mapres_destroy(lsm_mapres_t **mr_p)
{
    lsm_mapres_t *mr = *mr_p;
    if (!mr)
        return;
    pthread_mutex_destroy(&mr->mu);
    free(mr);
    *mr_p = NULL;
}

/* Clears the table's charge, then drops its pages from the mapping. A read admitted in
 * between has its page dropped too and stays charged: an overcount until the next release,
 * never an undercount. */
static void release_table(lsm_mapres_t *mr, lsm_mapped_t *m)
{
    for (size_t i = 0; i < (m->npages + 63) / 64; i++)
        atomic_store_explicit(&m->admitted[i], 0, memory_order_relaxed);
    atomic_fetch_sub(&mr->resident, atomic_exchange(&m->charged, 0));
    if (m->env->map_release)
        m->env->map_release(m->file, 0, m->size);
    mr->releases++;
}

/* mu held: releases tables in clock order until the charge fits the limit or every table
 * was released once. */
static void trim(lsm_mapres_t *mr)
{
    size_t limit = atomic_load(&mr->limit);
    for (lsm_mapped_t *start = NULL; atomic_load(&mr->resident) > limit;) {
        if (mr->hand == &mr->ring)
            mr->hand = mr->ring.next;
        if (mr->hand == &mr->ring || mr->hand == start)
            return; /* no table, or a full turn */
        if (!start)
            start = mr->hand;
        lsm_mapped_t *m = mr->hand;
        mr->hand = m->next;
        if (atomic_load_explicit(&m->charged, memory_order_relaxed))
            release_table(mr, m);
    }
}

void lsm_mapres_set_limit(lsm_mapres_t *mr, size_t limit)
{
    if (!mr)
        return;
    atomic_store(&mr->limit, limit);
    if (atomic_load(&mr->resident) > limit) {
        pthread_mutex_lock(&mr->mu);
        trim(mr);
        pthread_mutex_unlock(&mr->mu);
    }
}

void lsm_mapres_stats(lsm_mapres_t *mr, lsm_mapres_stats_t *out)
{
    pthread_mutex_lock(&mr->mu);
    out->resident = atomic_load(&mr->resident);
    out->limit = atomic_load(&mr->limit);
    out->releases = mr->releases;
    out->refused = atomic_load(&mr->refused);
    pthread_mutex_unlock(&mr->mu);
}

/* Reserves one page of the charge if it fits under the limit. */
static bool reserve(lsm_mapres_t *mr)
{
    size_t limit = atomic_load_explicit(&mr->limit, memory_order_relaxed);
    size_t cur = atomic_load_explicit(&mr->resident, memory_order_relaxed);
    do {
        if (cur + PAGE > limit)
            return false;
    } while (!atomic_compare_exchange_weak(&mr->resident, &cur, cur + PAGE));
    return true;
}

bool lsm_mapped_admit_slow(lsm_mapped_t *m, uintptr_t pg, uintptr_t last)
{
    lsm_mapres_t *mr = m->mr;
    if (last >= m->npages)
        return false; /* not in the mapping (the caller checked the block handle) */
    for (; pg <= last; pg++) {
        uint64_t bit = UINT64_C(1) << (pg & 63);
        if (atomic_load_explicit(&m->admitted[pg >> 6], memory_order_relaxed) & bit)
            continue;
        if (!reserve(mr)) {
            atomic_fetch_add_explicit(&mr->refused, 1, memory_order_relaxed);
            return false; /* pages admitted so far stay: the next read of them is in budget */
        }
        if (atomic_fetch_or(&m->admitted[pg >> 6], bit) & bit)
            atomic_fetch_sub(&mr->resident, PAGE); /* another reader admitted it first */
        else
            atomic_fetch_add(&m->charged, PAGE);
    }
    return true;
}

int lsm_mapped_init(lsm_mapped_t *m, lsm_mapres_t *mr, lsm_env_t *env, lsm_file_t *file,
                    const char *map, uint64_t size)
{
    *m = (lsm_mapped_t){.env = env, .file = file, .size = size};
    if (!mr || !map || size == 0)
        return 0;
    m->first = (uintptr_t)map >> LSM_MAPRES_PAGE_SHIFT;
    m->npages = (((uintptr_t)map + size - 1) >> LSM_MAPRES_PAGE_SHIFT) - m->first + 1;
    if (!(m->admitted = calloc((m->npages + 63) / 64, sizeof *m->admitted)))
        return SHOAL_ENOMEM;
    m->mr = mr;
    pthread_mutex_lock(&mr->mu);
    m->next = &mr->ring;
    m->prev = mr->ring.prev;
    m->prev->next = m;
    mr->ring.prev = m;
    pthread_mutex_unlock(&mr->mu);
    return 0;
}

void lsm_mapped_fini(lsm_mapped_t *m)
{
    lsm_mapres_t *mr = m->mr;
    if (mr) {
        pthread_mutex_lock(&mr->mu);
        if (mr->hand == m)
            mr->hand = m->next;
        m->prev->next = m->next;
        m->next->prev = m->prev;
        atomic_fetch_sub(&mr->resident, atomic_exchange(&m->charged, 0));
        pthread_mutex_unlock(&mr->mu);
    }
    free((void *)m->admitted);
    *m = (lsm_mapped_t){0};
}
