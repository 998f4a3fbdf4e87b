/* replies.c - answers to batched requests, one Frame{batch} per sender and pump (replies.h). */
#include "actors/replies.h"

#include <stdbool.h>
#include <stdlib.h>

#include "proto/codec.h"

typedef struct {
    zframe_t *id;
    uint8_t *buf;
    size_t len;
} reply_t;

struct replies_t {
    reply_t *v;
    size_t n, cap;
    uint8_t **bufs; /* scratch for one batch */
    size_t *lens;
};

replies_t *replies_new(void)
{
    return calloc(1, sizeof(replies_t));
}

void replies_destroy(replies_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    replies_t *q = *self_p;
    for (size_t i = 0; i < q->n; i++) {
        zframe_destroy(&q->v[i].id);
        free(q->v[i].buf);
    }
    free(q->v);
    free(q->bufs);
    free(q->lens);
    free(q);
    *self_p = NULL;
}

static void send_one(zsock_t *router, zframe_t *id, const uint8_t *buf, size_t len)
{
    void *s = zsock_resolve(router);
    if (zmq_send(s, zframe_data(id), zframe_size(id), ZMQ_SNDMORE) >= 0)
        zmq_send(s, buf, len, 0);
}

static bool grow(replies_t *q)
{
    size_t cap = q->cap ? q->cap * 2 : 64;
    reply_t *v = realloc(q->v, cap * sizeof *v);
    if (v)
        q->v = v;
    uint8_t **bufs = v ? realloc(q->bufs, cap * sizeof *bufs) : NULL;
    if (bufs)
        q->bufs = bufs;
    size_t *lens = bufs ? realloc(q->lens, cap * sizeof *lens) : NULL;
    if (lens)
        q->lens = lens;
    if (!lens)
        return false;
    q->cap = cap;
    return true;
}

void replies_add(replies_t *q, zsock_t *router, zframe_t **id, uint8_t **buf, size_t len)
{
    if (q->n == q->cap && !grow(q)) {
        send_one(router, *id, *buf, len);
        zframe_destroy(id);
        free(*buf);
        *buf = NULL;
        return;
    }
    q->v[q->n++] = (reply_t){*id, *buf, len};
    *id = NULL;
    *buf = NULL;
}

/* Sends the answers gathered in bufs/lens to id: plain when one, else as a batch. */
static void send_batch(replies_t *q, zsock_t *router, zframe_t *id, size_t n)
{
    if (n == 1) {
        send_one(router, id, q->bufs[0], q->lens[0]);
        return;
    }
    size_t len;
    uint8_t *b = shoal_batch_encode(q->bufs, q->lens, n, &len);
    if (b)
        send_one(router, id, b, len);
    else /* out of memory for the batch: one by one */
        for (size_t i = 0; i < n; i++)
            send_one(router, id, q->bufs[i], q->lens[i]);
    free(b);
}

uint64_t replies_flush(replies_t *q, zsock_t *router)
{
    uint64_t msgs = 0;
    for (size_t i = 0; i < q->n; i++) {
        zframe_t *id = q->v[i].id;
        if (!id)
            continue; /* sent with an earlier sender's batch */
        size_t n = 0, bytes = 0;
        for (size_t j = i; j < q->n; j++) {
            reply_t *r = &q->v[j];
            if (!r->id || (j > i && !zframe_eq(r->id, id)))
                continue;
            if (r->len > SHOAL_BATCH_ALONE) { /* big answers go alone */
                send_one(router, r->id, r->buf, r->len);
                msgs++;
            } else {
                if (n == SHOAL_BATCH_MAX || bytes + r->len > SHOAL_BATCH_BYTES) {
                    send_batch(q, router, id, n);
                    msgs++;
                    for (size_t k = 0; k < n; k++)
                        free(q->bufs[k]);
                    n = bytes = 0;
                }
                q->bufs[n] = r->buf;
                q->lens[n++] = r->len;
                bytes += r->len;
                r->buf = NULL;
            }
            free(r->buf);
            r->buf = NULL;
            if (j > i)
                zframe_destroy(&r->id);
        }
        if (n) {
            send_batch(q, router, id, n);
            msgs++;
        }
        for (size_t k = 0; k < n; k++)
            free(q->bufs[k]);
        zframe_destroy(&q->v[i].id);
    }
    q->n = 0;
    return msgs;
}
