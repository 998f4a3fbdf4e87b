/* log.c - the in-memory Raft log: the entries after the last snapshot, plus the marks that
 * say what is persisted (stable), committed and handed to the state machine (applied).
 *
 * The log is one growable array; index i lives at ents[i - offset - 1]. Truncation frees
 * the suffix (only uncommitted entries are ever truncated: the callers check), compaction
 * frees a prefix that a snapshot covers. Entry data is owned by the log, and `bytes` counts
 * it (the sum of the entries' len) through every append, truncation, compaction and reset,
 * so that the caller can bound the log's memory by bytes as well as by entries. */
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_int.h"

uint64_t log_last_index(const raft_log_t *l)
{
    return l->offset + l->n;
}

uint64_t log_last_term(const raft_log_t *l)
{
    return l->n ? l->ents[l->n - 1].term : l->offset_term;
}

uint64_t log_term(const raft_log_t *l, uint64_t index)
{
    if (index == l->offset)
        return l->offset_term;
    if (index < l->offset || index > log_last_index(l))
        return 0;
    return l->ents[index - l->offset - 1].term;
}

/* True when the entry at index has this term; index 0 term 0 is the empty prefix. */
bool log_match_term(const raft_log_t *l, uint64_t index, uint64_t term)
{
    if (index == 0)
        return term == 0;
    if (index < l->offset || index > log_last_index(l))
        return false;
    return log_term(l, index) == term;
}

raft_entry_t *log_entry(const raft_log_t *l, uint64_t index)
{
    if (index <= l->offset || index > log_last_index(l))
        return NULL;
    return &l->ents[index - l->offset - 1];
}

int entry_copy(raft_entry_t *dst, const raft_entry_t *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len) {
        dst->data = malloc(src->len);
        if (!dst->data)
            return SHOAL_ENOMEM;
        memcpy(dst->data, src->data, src->len);
    }
    return 0;
}

/* Appends e at last+1 (the caller set e->index). copy_data false: the log takes e->data. */
int log_append(raft_log_t *l, const raft_entry_t *e, bool copy_data)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        raft_entry_t *v = realloc(l->ents, cap * sizeof(*v));
        if (!v)
            return SHOAL_ENOMEM;
        l->ents = v;
        l->cap = cap;
    }
    if (copy_data) {
        int rc = entry_copy(&l->ents[l->n], e);
        if (rc)
            return rc;
    } else {
        l->ents[l->n] = *e;
    }
    l->bytes += e->len;
    l->n++;
    return 0;
}

/* Drops entries >= index. What was handed out for persistence above index-1 is stale. */
void log_truncate_from(raft_log_t *l, uint64_t index)
{
    while (l->n && log_last_index(l) >= index) {
        l->bytes -= l->ents[l->n - 1].len;
        free(l->ents[l->n - 1].data);
        l->n--;
    }
    if (l->stable >= index)
        l->stable = index - 1;
    if (l->persisted >= index)
        l->persisted = index - 1;
}

/* Drops entries <= index (covered by a snapshot at index). */
void log_compact_to(raft_log_t *l, uint64_t index)
{
    if (index <= l->offset || index > log_last_index(l))
        return;
    size_t k = index - l->offset;
    uint64_t term = log_term(l, index);
    for (size_t i = 0; i < k; i++) {
        l->bytes -= l->ents[i].len;
        free(l->ents[i].data);
    }
    memmove(l->ents, l->ents + k, (l->n - k) * sizeof(*l->ents));
    l->n -= k;
    l->offset = index;
    l->offset_term = term;
}

/* Empties the log so that it starts after (index, term): a snapshot replaces it. */
void log_reset(raft_log_t *l, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ents[i].data);
    l->n = 0;
    l->bytes = 0;
    l->offset = index;
    l->offset_term = term;
    l->stable = index;
    if (l->persisted > index)
        l->persisted = index;
    l->committed = index;
    l->applied = index;
}

void log_free(raft_log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ents[i].data);
    free(l->ents);
    memset(l, 0, sizeof(*l));
}

/* The largest index <= index whose term is <= term (or the snapshot index): where a leader
 * and a follower whose logs diverge can next agree. Used by fast back-off on both sides. */
uint64_t log_find_conflict_by_term(const raft_log_t *l, uint64_t index, uint64_t term)
{
    if (index > log_last_index(l))
        index = log_last_index(l);
    while (index > l->offset && log_term(l, index) > term)
        index--;
    return index;
}

/* §5.4.1: a candidate's log is at least as up-to-date as ours. */
bool log_up_to_date(const raft_log_t *l, uint64_t last_index, uint64_t last_term)
{
    uint64_t t = log_last_term(l);
    return last_term > t || (last_term == t && last_index >= log_last_index(l));
}
