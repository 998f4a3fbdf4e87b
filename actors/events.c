/* events.c - the node's event publisher; see events.h.
 *
 * Encodes with protobuf-c into a stack buffer when the message is small (every event but
 * big change values), so publishing costs no allocation on the common path. */
#include "actors/events.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct events_t {
    zsock_t *pub;
    uint64_t node_id;
    uint64_t published;
};

uint64_t events_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

events_t *events_new(const char *endpoint, uint64_t node_id, char *err, size_t errlen)
{
    events_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pub = zsock_new(ZMQ_PUB);
    if (!self->pub || zsock_bind(self->pub, "%s", endpoint) < 0) {
        snprintf(err, errlen, "cannot bind PUB endpoint %s: %s", endpoint, zmq_strerror(errno));
        zsock_destroy(&self->pub);
        free(self);
        return NULL;
    }
    zsock_set_sndhwm(self->pub, 100000);
    self->node_id = node_id;
    return self;
}

void events_destroy(events_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->pub);
    free(*self_p);
    *self_p = NULL;
}

/* Sends [topic][packed message]; drops the message if ZeroMQ would block. */
static void publish(events_t *self, const char *topic, size_t tlen, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t stackbuf[2048];
    uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf)
        return;
    protobuf_c_message_pack(m, buf);
    void *h = zsock_resolve(self->pub);
    if (zmq_send(h, topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)tlen) {
        zmq_send(h, buf, n, ZMQ_DONTWAIT);
        self->published++;
    }
    if (buf != stackbuf)
        free(buf);
}

void events_raft(events_t *self, Shoal__RaftEvent *ev)
{
    char topic[64];
    ev->node_id = self->node_id;
    ev->timestamp_us = events_now_us();
    int n = ev->type == SHOAL__RAFT_EVENT_TYPE__EV_METRICS
                ? snprintf(topic, sizeof topic, "metrics/%" PRIu64, self->node_id)
                : snprintf(topic, sizeof topic, "raft/%" PRIu32, ev->shard);
    publish(self, topic, (size_t)n, &ev->base);
}

void events_raft_simple(events_t *self, Shoal__RaftEventType type, uint32_t shard, uint64_t term,
                        uint64_t leader, const char *detail)
{
    Shoal__RaftEvent ev = SHOAL__RAFT_EVENT__INIT;
    ev.type = type;
    ev.shard = shard;
    ev.term = term;
    ev.leader_id = leader;
    ev.detail = (char *)(detail ? detail : "");
    events_raft(self, &ev);
}

void events_change(events_t *self, const Shoal__ChangeEvent *ev)
{
    char stackt[256];
    size_t tlen = 7 + ev->key.len;
    char *topic = tlen <= sizeof stackt ? stackt : malloc(tlen);
    if (!topic)
        return;
    memcpy(topic, "change/", 7);
    if (ev->key.len)
        memcpy(topic + 7, ev->key.data, ev->key.len);
    publish(self, topic, tlen, &ev->base);
    if (topic != stackt)
        free(topic);
}

void events_progress(events_t *self, Shoal__ShardProgress **progress, size_t n)
{
    Shoal__StreamNotice sn = SHOAL__STREAM_NOTICE__INIT;
    sn.type = SHOAL__STREAM_NOTICE_TYPE__NOTICE_PROGRESS;
    sn.progress = progress;
    sn.n_progress = n;
    sn.detail = "";
    publish(self, "progress", 8, &sn.base);
}

uint64_t events_published(events_t *self)
{
    return self->published;
}
