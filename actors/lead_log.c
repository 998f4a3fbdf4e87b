/* lead_log.c - see lead_log.h. */
#include "actors/lead_log.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

void lead_log_clear(lead_log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ents[i].data);
    free(l->ents);
    memset(l, 0, sizeof *l);
}

static bool continues(const lead_log_t *l, uint64_t term, uint64_t index)
{
    return l->n && l->term == term && l->ents[l->n - 1].index + 1 == index;
}

int lead_log_add(lead_log_t *l, uint64_t term, const raft_entry_t *ents, size_t n)
{
    if (!n)
        return 0;
    if (l->n && !continues(l, term, ents[0].index))
        lead_log_clear(l);
    l->term = term;
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 64;
        while (cap < l->n + n)
            cap *= 2;
        raft_entry_t *ne = realloc(l->ents, cap * sizeof *ne);
        if (!ne) {
            lead_log_clear(l);
            return SHOAL_ENOMEM;
        }
        l->ents = ne;
        l->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        raft_entry_t *e = &l->ents[l->n];
        *e = ents[i];
        e->data = NULL;
        if (ents[i].len && !(e->data = malloc(ents[i].len))) {
            lead_log_clear(l);
            return SHOAL_ENOMEM;
        }
        if (ents[i].len)
            memcpy(e->data, ents[i].data, ents[i].len);
        l->n++;
    }
    return 0;
}

size_t lead_log_count(const lead_log_t *l, uint64_t index)
{
    if (!l->n || l->ents[0].index > index)
        return 0;
    uint64_t k = index - l->ents[0].index + 1;
    return k < l->n ? (size_t)k : l->n;
}

void lead_log_take(lead_log_t *l, raft_entry_t *out, size_t n)
{
    if (!n)
        return;
    memcpy(out, l->ents, n * sizeof *out);
    memmove(l->ents, l->ents + n, (l->n - n) * sizeof *l->ents);
    l->n -= n;
}

void lead_log_drop(lead_log_t *l, uint64_t index)
{
    size_t k = lead_log_count(l, index);
    if (!k)
        return; /* also: no memmove on an empty copy's NULL array */
    for (size_t i = 0; i < k; i++)
        free(l->ents[i].data);
    memmove(l->ents, l->ents + k, (l->n - k) * sizeof *l->ents);
    l->n -= k;
}
