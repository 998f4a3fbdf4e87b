/* stream_seqs.c - per-prefix counts of the change events a broker sends on its XPUB.
 *
 * ZeroMQ drops a slow subscriber's messages at its high-water mark without telling anyone.
 * An unfiltered subscriber sees the drop in the shards' indexes (prev_index), but one with
 * a key prefix cannot: its events' indexes skip the other keys' changes anyway. So the
 * broker counts, for every "change/<prefix>" topic subscribed on its XPUB, the events it
 * sends that match it, and sends the counts of the matching prefixes as a third frame of
 * each event (StreamSeqs) and every prefix's count with each progress notice. A subscriber
 * whose prefix's count jumps past the events it got lost some, and catches up from the
 * shards' retained changes (libshoal, watch.c).
 *
 * The XPUB passes a topic's first subscription and its last unsubscription only, so the
 * set here is the set of subscribed prefixes; a prefix's count starts at 0 each time it
 * is added. Matching is a scan of the set per event: there are as many entries as distinct
 * watched prefixes, not subscribers, and at most MAX_PREFIXES (a prefix past that gets no
 * counts: its watchers work as before counts existed, blind to drops). */
#include "broker/broker_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MAX_PREFIXES 1024

struct prefix_seq_t {
    uint8_t *prefix;
    size_t len;
    uint64_t seq;
};

uint64_t stream_seqs_epoch(void)
{
    uint64_t e = 0;
    if (getrandom(&e, sizeof e, 0) != (ssize_t)sizeof e)
        e = (uint64_t)zclock_time() ^ ((uint64_t)getpid() << 32);
    return e;
}

static ssize_t find(const broker_t *b, const uint8_t *prefix, size_t len)
{
    for (size_t i = 0; i < b->n_prefixes; i++)
        if (b->prefixes[i].len == len && (len == 0 || !memcmp(b->prefixes[i].prefix, prefix, len)))
            return (ssize_t)i;
    return -1;
}

void stream_seqs_subscribed(broker_t *b, const uint8_t *prefix, size_t len, bool on)
{
    ssize_t at = find(b, prefix, len);
    if (!on) {
        if (at >= 0) {
            free(b->prefixes[at].prefix);
            b->prefixes[at] = b->prefixes[--b->n_prefixes];
        }
        return;
    }
    if (at >= 0 || b->n_prefixes >= MAX_PREFIXES)
        return;
    prefix_seq_t *grown = realloc(b->prefixes, (b->n_prefixes + 1) * sizeof *grown);
    uint8_t *copy = malloc(len + 1);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            b->prefixes = grown;
        return; /* untracked: its subscribers see no counts, as before counts existed */
    }
    b->prefixes = grown;
    if (len)
        memcpy(copy, prefix, len);
    b->prefixes[b->n_prefixes++] = (prefix_seq_t){.prefix = copy, .len = len};
}

void stream_seqs_destroy(broker_t *b)
{
    for (size_t i = 0; i < b->n_prefixes; i++)
        free(b->prefixes[i].prefix);
    free(b->prefixes);
    b->prefixes = NULL;
    b->n_prefixes = 0;
}

/* Packs the entries of the prefixes picked (NULL: all) into a frame. */
static zframe_t *pack(const broker_t *b, const bool *picked)
{
    Shoal__PrefixSeq *ps = calloc(b->n_prefixes + 1, sizeof *ps);
    Shoal__PrefixSeq **pp = calloc(b->n_prefixes + 1, sizeof *pp);
    zframe_t *f = NULL;
    if (!ps || !pp)
        goto done;
    Shoal__StreamSeqs s = SHOAL__STREAM_SEQS__INIT;
    s.epoch = b->stream_epoch;
    for (size_t i = 0; i < b->n_prefixes; i++) {
        if (picked && !picked[i])
            continue;
        shoal__prefix_seq__init(&ps[s.n_seqs]);
        ps[s.n_seqs].prefix = (ProtobufCBinaryData){b->prefixes[i].len, b->prefixes[i].prefix};
        ps[s.n_seqs].seq = b->prefixes[i].seq;
        pp[s.n_seqs] = &ps[s.n_seqs];
        s.n_seqs++;
    }
    s.seqs = pp;
    f = zframe_new(NULL, shoal__stream_seqs__get_packed_size(&s));
    if (f)
        shoal__stream_seqs__pack(&s, zframe_data(f));
done:
    free(ps);
    free(pp);
    return f;
}

zframe_t *stream_seqs_count(broker_t *b, const uint8_t *key, size_t klen)
{
    if (b->n_prefixes == 0)
        return NULL;
    bool *picked = calloc(b->n_prefixes, sizeof *picked);
    if (!picked)
        return NULL;
    for (size_t i = 0; i < b->n_prefixes; i++) {
        prefix_seq_t *p = &b->prefixes[i];
        if (p->len <= klen && (p->len == 0 || !memcmp(p->prefix, key, p->len))) {
            p->seq++;
            picked[i] = true;
        }
    }
    zframe_t *f = pack(b, picked);
    free(picked);
    return f;
}

zframe_t *stream_seqs_all(broker_t *b)
{
    return b->n_prefixes ? pack(b, NULL) : NULL;
}
