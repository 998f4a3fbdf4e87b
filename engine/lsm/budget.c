/* budget.c - the memory budget the memtables and the block cache share (option
 * memory_budget). Peak resident memory is what a deployment pays for, and the two big users
 * peak at different times: memtables during writes, the cache during reads. One budget
 * gives the cache whatever the memtables leave, and holds writes back while a flush is
 * pending rather than let two full memtables and a full cache coexist. */
#include "engine/lsm/db_impl.h"

/* The cache never shrinks below a 16th of the budget (at most 4 MiB): reads keep working
 * while writes fill the memtables. */
static size_t floor_of(size_t budget)
{
    return budget / 16 < (4u << 20) ? budget / 16 : 4u << 20;
}

/* Memtable growth that moves the cache's capacity: a 64th of the budget, at most 1 MiB. */
static size_t step_of(size_t budget)
{
    return budget / 64 < (1u << 20) ? budget / 64 : 1u << 20;
}

size_t lsm_db_memtable_bytes(const lsm_t *db)
{
    size_t n = db->mem ? lsm_memtable_usage(db->mem) : 0;
    for (int i = 0; i < db->nimm; i++)
        n += lsm_memtable_usage(db->imm[i]);
    return n;
}

/* What the memtables leave of the budget when they hold `used` bytes (the block cache's
 * share, or the mapping's and the cache's). */
static size_t read_share(const lsm_options_t *o, size_t used)
{
    if (o->memory_budget == 0)
        return o->block_cache_size;
    size_t low = floor_of(o->memory_budget);
    return o->memory_budget > used + low ? o->memory_budget - used : low;
}

static size_t capped(const lsm_options_t *o, size_t bytes)
{
    return o->block_cache_size && bytes > o->block_cache_size ? o->block_cache_size : bytes;
}

size_t lsm_db_initial_cache(const lsm_options_t *o)
{
    return capped(o, read_share(o, 0));
}

bool lsm_db_maps_tables(const lsm_t *db)
{
    int m = db->o.mmap_reads;
    return db->env->map &&
           (m == LSM_MMAP_ON ||
            ((m == LSM_MMAP_UNCOMPRESSED || m == LSM_MMAP_UNBOUNDED) && !db->o.compression));
}

/* A database whose mappings are bounded gives the mapping almost all of the share: its pages
 * are read in place (no copy, no cache lookup), and once it is full a block cache of a 64th
 * would hit too rarely to pay for its insert and eviction on every pread (a cache of 8 MiB
 * beside 54 MiB of pages was slower, 1M-key readrandom, 06:25 UTC). Compressed tables mapped
 * (LSM_MMAP_ON) are decoded into the cache, which gets half. block_cache_size caps the
 * cache, not the mapping: its pages are the file's, not heap. */
void lsm_db_budget_apply(lsm_t *db, size_t used)
{
    size_t share = read_share(&db->o, used);
    if (!lsm_db_maps_tables(db) || db->o.mmap_reads == LSM_MMAP_UNBOUNDED) {
        lsm_cache_set_capacity(db->cache, capped(&db->o, share));
        return;
    }
    size_t cache = db->o.compression ? share / 2 : share / 64;
    lsm_cache_set_capacity(db->cache, capped(&db->o, cache));
    lsm_mapres_set_limit(db->mapres, share - cache);
}

void lsm_db_budget_update(lsm_t *db)
{
    if (db->o.memory_budget == 0 || !db->cache)
        return;
    size_t used = lsm_db_memtable_bytes(db);
    /* Resize the cache per step of memtable growth (16 shard locks each time), and at once
     * when a flush frees a memtable. */
    if (used < db->budget_applied || used >= db->budget_applied + step_of(db->o.memory_budget)) {
        db->budget_applied = used;
        lsm_db_budget_apply(db, used);
    }
}

bool lsm_db_budget_full(const lsm_t *db)
{
    return db->o.memory_budget && db->nimm > 0 &&
           lsm_db_memtable_bytes(db) >= db->o.memory_budget;
}
