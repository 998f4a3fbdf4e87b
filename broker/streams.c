/* streams.c - change-stream fan-out: node change events in, the broker's XPUB out.
 *
 * Every replica of a shard may publish the change events it applies, and a broker
 * subscribes to every node, so one change can arrive up to R times. The broker republishes
 * the first copy only - an event of a shard is new when its (Raft index, op of the entry)
 * is past the last one republished; every replica publishes an entry's ops in order - which
 * also keeps each shard's events in order on the XPUB. Frames are forwarded unchanged
 * (topic "change/<key>", body ChangeEvent): no re-encoding on the fan-out path.
 *
 * Nothing is paid for unwatched streams: the broker subscribes to the nodes' change/ topic
 * only while some XPUB subscriber wants a change/ topic (broker.c, drain_xpub), and PUB
 * sockets filter at the sender, so the nodes do not even send them.
 *
 * Slow subscribers: the XPUB's send high-water mark (broker/subscriber_hwm) bounds each
 * subscriber's queue and ZeroMQ drops that subscriber's messages past it, so writers and
 * other subscribers never wait. The dropped subscriber sees the gap through prev_index and
 * the progress notices, or with a key prefix through its prefix's count of events sent (a
 * third frame, stream_seqs.c), and catches up with `changes` requests (libshoal does this). */
#include "broker/broker_internal.h"

#include <stdlib.h>
#include <string.h>

void streams_on_change(broker_t *b, zframe_t *topic, zframe_t *body)
{
    Shoal__ChangeEvent *ev =
        shoal__change_event__unpack(NULL, zframe_size(body), zframe_data(body));
    if (!ev)
        return;
    bshard_t *s = broker_shard(b, ev->shard);
    bool fresh = false;
    if (s) {
        fresh =
            ev->index > s->last_change || (ev->index == s->last_change && ev->op_seq > s->last_seq);
        if (fresh) {
            s->last_change = ev->index;
            s->last_seq = ev->op_seq;
        }
        if (fresh && ev->index > s->apply)
            s->apply = ev->index;
    }
    zframe_t *seqs = fresh ? stream_seqs_count(b, ev->key.data, ev->key.len) : NULL;
    shoal__change_event__free_unpacked(ev, NULL);
    if (!fresh)
        return;
    b->stats_changes++;
    zframe_send(&topic, b->xpub, ZFRAME_MORE | ZFRAME_REUSE | ZFRAME_DONTWAIT);
    zframe_send(&body, b->xpub, (seqs ? ZFRAME_MORE : 0) | ZFRAME_REUSE | ZFRAME_DONTWAIT);
    if (seqs)
        zframe_send(&seqs, b->xpub, ZFRAME_DONTWAIT);
}

void streams_on_progress(broker_t *b, const uint8_t *data, size_t len)
{
    Shoal__StreamNotice *n = shoal__stream_notice__unpack(NULL, len, data);
    if (!n)
        return;
    for (size_t i = 0; i < n->n_progress; i++) {
        bshard_t *s = broker_shard(b, n->progress[i]->shard);
        if (s && n->progress[i]->applied_index > s->apply)
            s->apply = n->progress[i]->applied_index;
    }
    shoal__stream_notice__free_unpacked(n, NULL);
}

/* Each shard's applied index, so an idle subscriber knows it is up to date. */
void streams_publish_progress(broker_t *b)
{
    size_t ns = b->n_shards;
    Shoal__ShardProgress *sp = calloc(ns + 1, sizeof *sp);
    Shoal__ShardProgress **pp = calloc(ns + 1, sizeof *pp);
    if (!sp || !pp) {
        free(sp);
        free(pp);
        return;
    }
    for (size_t i = 0; i < ns; i++) {
        shoal__shard_progress__init(&sp[i]);
        sp[i].shard = b->shards[i].id;
        sp[i].applied_index = b->shards[i].last_change > b->shards[i].apply
                                  ? b->shards[i].last_change
                                  : b->shards[i].apply;
        pp[i] = &sp[i];
    }
    Shoal__StreamNotice n = SHOAL__STREAM_NOTICE__INIT;
    n.type = SHOAL__STREAM_NOTICE_TYPE__NOTICE_PROGRESS;
    n.n_progress = ns;
    n.progress = pp;
    size_t len = shoal__stream_notice__get_packed_size(&n);
    uint8_t *buf = malloc(len + 1);
    if (buf) {
        shoal__stream_notice__pack(&n, buf);
        zframe_t *seqs = stream_seqs_all(b);
        if (seqs) {
            zstr_sendm(b->xpub, "progress");
            zmq_send(zsock_resolve(b->xpub), buf, len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zframe_send(&seqs, b->xpub, ZFRAME_DONTWAIT);
        } else
            zsock_send(b->xpub, "sb", "progress", buf, len);
        free(buf);
    }
    free(sp);
    free(pp);
}
