/* lead_log.h - a leader's own copy of the entries it handed to the log in its term, so that
 * the node can apply them as soon as the Raft core counts them committed.
 *
 * Why: the core hands committed entries out only in a ready, and a group has one ready
 * outstanding at a time. Under load a leader's group always has a ready waiting for the
 * log's fdatasync, so an entry whose commit the core learns from a follower's ack waited
 * for the end of that ready (up to one more sync period; ~1.5 ms of every 8-shard write,
 * docs/BENCHMARKS.md). A leader's log is never overwritten in its term, so a copy taken
 * when the entries were staged is exactly what the core holds at those indices.
 *
 * The copy is valid only while its owner stays leader in the term it was taken in; the
 * caller clears it otherwise (lead_log_clear). Indices are contiguous. */
#ifndef SHOAL_ACTORS_LEAD_LOG_H
#define SHOAL_ACTORS_LEAD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/raft/raft.h"

typedef struct {
    raft_entry_t *ents; /* owned copies, contiguous indices from ents[0].index */
    size_t n, cap;
    uint64_t term; /* the leader term the copies were taken in */
} lead_log_t;

/* Appends copies of ents (taken in `term`); entries that do not continue the copy (another
 * term, or a gap) replace it. 0, or SHOAL_ENOMEM with the copy cleared. */
int lead_log_add(lead_log_t *l, uint64_t term, const raft_entry_t *ents, size_t n);
/* Forgets every entry at or below index. */
void lead_log_drop(lead_log_t *l, uint64_t index);
/* How many leading entries are at or below index. */
size_t lead_log_count(const lead_log_t *l, uint64_t index);
/* Moves the first n entries (data ownership included) into out and forgets them. */
void lead_log_take(lead_log_t *l, raft_entry_t *out, size_t n);
void lead_log_clear(lead_log_t *l);

#endif
