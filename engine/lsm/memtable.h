/* memtable.h - the in-memory write buffer: an arena skiplist of entries
 *     internal key | varint value length | value
 * Writes go to the active memtable; when it reaches the write-buffer size it becomes
 * immutable and the background thread writes it to a level-0 table.
 *
 * Reference counted: the database, each iterator and each running flush hold a reference;
 * the last unref frees the arena. One writer at a time may add (the write-group leader);
 * readers need no lock (see skiplist.h). */
#ifndef SHOAL_LSM_MEMTABLE_H
#define SHOAL_LSM_MEMTABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/arena.h"
#include "engine/lsm/coding.h"
#include "engine/lsm/iter.h"
#include "engine/lsm/skiplist.h"

typedef struct {
    lsm_arena_t arena;
    lsm_skiplist_t list;
    atomic_int refs;
    uint64_t wal_number; /* the WAL that holds this memtable's writes */
    atomic_uint_fast64_t entries;
} lsm_memtable_t;

/* refs = 1; write_buffer_size sizes the arena's blocks (usage grows in 1/64 steps, 2 MiB
 * huge-page blocks from a 64 MiB buffer up). */
lsm_memtable_t *lsm_memtable_new(uint64_t wal_number, size_t write_buffer_size);
void lsm_memtable_ref(lsm_memtable_t *m);
void lsm_memtable_unref(lsm_memtable_t *m);

/* 0 or SHOAL_ENOMEM. */
int lsm_memtable_add(lsm_memtable_t *m, uint64_t seq, int type, lsm_slice_t key, lsm_slice_t value);

/* A write group's entries, built one by one and inserted together (skiplist.h,
 * lsm_skiplist_insert_many): stage each, then lsm_memtable_add_staged. Readers do not see
 * a staged entry before that, nor do they look: its sequence is not published yet. */
typedef struct {
    lsm_sl_node_t *nodes[LSM_SKIPLIST_GROUP];
    size_t n;
} lsm_memtable_staged_t;

/* Builds the entry into st, inserting what st holds when it is full. 0 or SHOAL_ENOMEM. */
int lsm_memtable_stage(lsm_memtable_t *m, lsm_memtable_staged_t *st, uint64_t seq, int type,
                       lsm_slice_t key, lsm_slice_t value);
void lsm_memtable_add_staged(lsm_memtable_t *m, lsm_memtable_staged_t *st);

/* Looks up the newest version of key with sequence <= seq. Returns true when the memtable
 * decides: *deleted tells a tombstone, else *value (borrowed from the arena) is the value. */
bool lsm_memtable_get(lsm_memtable_t *m, lsm_slice_t key, uint64_t seq, lsm_slice_t *value,
                      bool *deleted);

size_t lsm_memtable_usage(const lsm_memtable_t *m);

/* An iterator over every entry; holds a reference to m until destroyed. */
lsm_iiter_t *lsm_memtable_iter(lsm_memtable_t *m);

#endif
