/* cache.c - see cache.h. Each shard is a chained hash table (doubled when the load passes 1/2)
 * plus a doubly linked LRU list of every cached entry, newest at the head. An entry's refs
 * count the cache itself (while it is in the table) and each handle out. Each entry knows
 * the link that points at it in its chain, so eviction unlinks it without walking the chain
 * again (that walk touched cold entries: 6% of a compressed readrandom). */
#include "engine/lsm/cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>


#define SHARDS 16

struct lsm_cache_handle {
    uint64_t file, off;
    uint64_t hash;
    void *value;
    void (*deleter)(void *);
    size_t charge;
    int refs;
    bool in_cache;
    bool embedded; /* shares its allocation with the value (lsm_cache_entry_new) */
    uint64_t tick; /* the shard's push count when this entry last went to the LRU head */
    lsm_cache_handle_t *hnext;      /* hash chain */
    lsm_cache_handle_t **hpprev;    /* the link that points at this entry */
    lsm_cache_handle_t *prev, *next; /* LRU list */
};

typedef struct {
    pthread_mutex_t mu;
    lsm_cache_handle_t **table;
    size_t buckets, count;
    lsm_cache_handle_t lru; /* sentinel: lru.next is the newest */
    size_t capacity, usage;
    uint64_t hits, misses;
    uint64_t ticks; /* pushes to the LRU head so far */
} shard_t;

struct lsm_cache {
    shard_t shards[SHARDS];
};

/* The handle in front of an embedded entry's value, rounded so the value stays aligned. */
#define HSIZE ((sizeof(lsm_cache_handle_t) + 15) & ~(size_t)15)

/* splitmix64's finalizer over the two words: inline (a library hash call was a visible part
 * of every lookup), and the top bits that pick the shard depend on every input bit. */
static uint64_t key_hash(uint64_t file, uint64_t off)
{
    uint64_t h = file * 0x9E3779B97F4A7C15u ^ off;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9u;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBu;
    return h ^ (h >> 31);
}

lsm_cache_t *lsm_cache_new(size_t capacity)
{
    lsm_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->buckets = 256;
        s->table = calloc(s->buckets, sizeof *s->table);
        s->lru.next = s->lru.prev = &s->lru;
        s->capacity = capacity / SHARDS;
        if (!s->table) {
            lsm_cache_destroy(&c);
            return NULL;
        }
    }
    return c;
}

static void unref(lsm_cache_handle_t *h)
{
    if (--h->refs == 0) {
        if (!h->embedded)
            h->deleter(h->value);
        free(h); /* an embedded entry's value goes with it */
    }
}

static void lru_unlink(lsm_cache_handle_t *h)
{
    h->prev->next = h->next;
    h->next->prev = h->prev;
}

static void lru_push(shard_t *s, lsm_cache_handle_t *h)
{
    h->tick = ++s->ticks;
    h->next = s->lru.next;
    h->prev = &s->lru;
    s->lru.next->prev = h;
    s->lru.next = h;
}

static lsm_cache_handle_t **find(shard_t *s, uint64_t file, uint64_t off, uint64_t hash)
{
    lsm_cache_handle_t **p = &s->table[hash & (s->buckets - 1)];
    while (*p && ((*p)->file != file || (*p)->off != off))
        p = &(*p)->hnext;
    return p;
}

static void chain_push(lsm_cache_handle_t **slot, lsm_cache_handle_t *h)
{
    h->hnext = *slot;
    if (h->hnext)
        h->hnext->hpprev = &h->hnext;
    h->hpprev = slot;
    *slot = h;
}

/* Drops h from the table and the LRU list (the caller holds the mutex). */
static void remove_entry(shard_t *s, lsm_cache_handle_t *h)
{
    *h->hpprev = h->hnext;
    if (h->hnext)
        h->hnext->hpprev = h->hpprev;
    lru_unlink(h);
    h->in_cache = false;
    s->count--;
    s->usage -= h->charge;
    unref(h);
}

static void grow(shard_t *s)
{
    size_t nb = s->buckets * 2;
    lsm_cache_handle_t **t = calloc(nb, sizeof *t);
    if (!t)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->buckets; i++)
        for (lsm_cache_handle_t *h = s->table[i], *nx; h; h = nx) {
            nx = h->hnext;
            chain_push(&t[h->hash & (nb - 1)], h);
        }
    free(s->table);
    s->table = t;
    s->buckets = nb;
}

static void evict(shard_t *s)
{
    lsm_cache_handle_t *h = s->lru.prev;
    while (s->usage > s->capacity && h != &s->lru) {
        lsm_cache_handle_t *older = h->prev;
        if (h->refs == 1) /* only the cache holds it */
            remove_entry(s, h);
        h = older;
    }
}

lsm_cache_handle_t *lsm_cache_lookup(lsm_cache_t *c, uint64_t file, uint64_t off)
{
    uint64_t hash = key_hash(file, off);
    shard_t *s = &c->shards[hash >> 60];
    pthread_mutex_lock(&s->mu);
    lsm_cache_handle_t *h = *find(s, file, off, hash);
    if (h) {
        h->refs++;
        /* An entry still in the newer half of the list stays where it is: moving it touches
         * its two neighbours, cold in a cache much larger than the CPU's (the move was ~16%
         * of the lookup in a pread readrandom, perf). Eviction takes from the older end, so
         * a block used again before it reaches the older half is as safe as if it moved. */
        if (s->ticks - h->tick > s->count / 2) {
            lru_unlink(h);
            lru_push(s, h);
        }
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return h;
}

void *lsm_cache_entry_new(size_t bytes)
{
    char *p = malloc(HSIZE + (bytes ? bytes : 1));
    return p ? p + HSIZE : NULL;
}

void lsm_cache_entry_free(void *value)
{
    if (value)
        free((char *)value - HSIZE);
}

/* Fills a new handle and adds it to its shard (evicting down to the capacity). */
static lsm_cache_handle_t *insert_handle(lsm_cache_t *c, lsm_cache_handle_t *h, uint64_t file,
                                         uint64_t off, void *value, size_t charge)
{
    h->in_cache = false; /* every field set one by one: a memset would become calloc */
    h->hnext = h->prev = h->next = NULL;
    h->hpprev = NULL;
    h->file = file;
    h->off = off;
    h->hash = key_hash(file, off);
    h->value = value;
    h->charge = charge;
    h->refs = 1; /* the caller's handle */
    shard_t *s = &c->shards[h->hash >> 60];
    pthread_mutex_lock(&s->mu);
    if (s->capacity > 0) {
        lsm_cache_handle_t *old = *find(s, file, off, h->hash);
        if (old)
            remove_entry(s, old);
        chain_push(&s->table[h->hash & (s->buckets - 1)], h);
        h->refs++;
        h->in_cache = true;
        lru_push(s, h);
        s->usage += charge;
        if (++s->count > s->buckets / 2) /* short chains: a miss mostly finds an empty bucket */
            grow(s);
        evict(s);
    }
    pthread_mutex_unlock(&s->mu);
    return h;
}

lsm_cache_handle_t *lsm_cache_insert(lsm_cache_t *c, uint64_t file, uint64_t off, void *value,
                                     size_t charge, void (*deleter)(void *))
{
    /* malloc, not calloc: glibc's calloc bypasses its per-thread cache, so the handles that
     * evictions free piled up in the fastbins and every 2 KiB block allocation then ran
     * malloc_consolidate (5% of a compressed readrandom with _int_free). */
    lsm_cache_handle_t *h = malloc(sizeof *h);
    if (!h) {
        deleter(value);
        return NULL;
    }
    h->embedded = false;
    h->deleter = deleter;
    return insert_handle(c, h, file, off, value, charge);
}

lsm_cache_handle_t *lsm_cache_insert_entry(lsm_cache_t *c, uint64_t file, uint64_t off,
                                           void *value, size_t charge)
{
    lsm_cache_handle_t *h = (lsm_cache_handle_t *)((char *)value - HSIZE);
    h->embedded = true;
    h->deleter = NULL;
    return insert_handle(c, h, file, off, value, charge);
}

size_t lsm_cache_entry_overhead(void)
{
    return HSIZE + 16; /* an embedded entry: its handle and one malloc header */
}

void *lsm_cache_value(lsm_cache_handle_t *h)
{
    return h->value;
}

void lsm_cache_release(lsm_cache_t *c, lsm_cache_handle_t *h)
{
    if (!h)
        return;
    shard_t *s = &c->shards[h->hash >> 60];
    pthread_mutex_lock(&s->mu);
    unref(h);
    pthread_mutex_unlock(&s->mu);
}

void lsm_cache_set_capacity(lsm_cache_t *c, size_t capacity)
{
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        s->capacity = capacity / SHARDS;
        evict(s);
        pthread_mutex_unlock(&s->mu);
    }
}

void lsm_cache_stats(lsm_cache_t *c, lsm_cache_stats_t *out)
{
    out->capacity = out->usage = out->hits = out->misses = 0;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->capacity += s->capacity;
        out->usage += s->usage;
        out->hits += s->hits;
        out->misses += s->misses;
        pthread_mutex_unlock(&s->mu);
    }
}

void lsm_cache_destroy(lsm_cache_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    lsm_cache_t *c = *c_p;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        while (s->table && s->lru.next != &s->lru)
            remove_entry(s, s->lru.next);
        free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
    *c_p = NULL;
}
