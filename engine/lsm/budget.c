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

/* The cache's share when the memtables hold `used` bytes. */
static size_t cache_share(const lsm_options_t *o, size_t used)
{
    if (o->memory_budget == 0)
        return o->block_cache_size;
    size_t low = floor_of(o->memory_budget);
    size_t share = o->memory_budget > used + low ? o->memory_budget - used : low;
    return o->block_cache_size && share > o->block_cache_size ? o->block_cache_size : share;
}

size_t lsm_db_initial_cache(const lsm_options_t *o)
{
    return cache_share(o, 0);
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
        lsm_cache_set_capacity(db->cache, cache_share(&db->o, used));
    }
}

bool lsm_db_budget_full(const lsm_t *db)
{
    return db->o.memory_budget && db->nimm > 0 &&
           lsm_db_memtable_bytes(db) >= db->o.memory_budget;
}
