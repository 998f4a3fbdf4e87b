/* codec.c - the checked entry point for frames from the wire; see codec.h. */
#include "proto/codec.h"

#include <stdio.h>
#include <stdlib.h>

int shoal_frame_decode(const uint8_t *buf, size_t len, Shoal__Frame **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (len > SHOAL_MAX_FRAME) {
        snprintf(err, errlen, "frame of %zu bytes exceeds the %u-byte limit", len,
                 SHOAL_MAX_FRAME);
        return -1;
    }
    Shoal__Frame *f = shoal__frame__unpack(NULL, len, buf);
    if (!f) {
        snprintf(err, errlen, "malformed frame (%zu bytes): not a valid protobuf Frame", len);
        return -1;
    }
    if (f->version > SHOAL_WIRE_VERSION) {
        snprintf(err, errlen, "frame wire version %u is newer than %u", f->version,
                 SHOAL_WIRE_VERSION);
        shoal__frame__free_unpacked(f, NULL);
        return -1;
    }
    if (f->body_case == SHOAL__FRAME__BODY__NOT_SET) {
        snprintf(err, errlen, "frame has no body");
        shoal__frame__free_unpacked(f, NULL);
        return -1;
    }
    if (f->body_case == SHOAL__FRAME__BODY_BATCH && f->batch->n_frames > SHOAL_BATCH_MAX) {
        snprintf(err, errlen, "batch of %zu frames exceeds the %u-frame limit",
                 f->batch->n_frames, SHOAL_BATCH_MAX);
        shoal__frame__free_unpacked(f, NULL);
        return -1;
    }
    *out = f;
    return 0;
}

uint8_t *shoal_frame_encode(const Shoal__Frame *f, size_t *len)
{
    size_t n = shoal__frame__get_packed_size(f);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = shoal__frame__pack(f, buf);
    return buf;
}

void shoal_frame_free(Shoal__Frame **f)
{
    if (f && *f) {
        shoal__frame__free_unpacked(*f, NULL);
        *f = NULL;
    }
}

uint8_t *shoal_batch_encode(uint8_t *const *frames, const size_t *lens, size_t n, size_t *len)
{
    ProtobufCBinaryData *items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return NULL;
    for (size_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){lens[i], frames[i]};
    Shoal__FrameBatch b = SHOAL__FRAME_BATCH__INIT;
    b.n_frames = n;
    b.frames = items;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_BATCH;
    f.batch = &b;
    uint8_t *buf = shoal_frame_encode(&f, len);
    free(items);
    return buf;
}

int shoal_batch_element(const Shoal__Frame *batch, size_t i, Shoal__Frame **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    if (batch->body_case != SHOAL__FRAME__BODY_BATCH || i >= batch->batch->n_frames) {
        snprintf(err, errlen, "no element %zu in this frame", i);
        return -1;
    }
    const ProtobufCBinaryData *d = &batch->batch->frames[i];
    Shoal__Frame *f = NULL;
    if (shoal_frame_decode(d->data, d->len, &f, err, errlen) != 0)
        return -1;
    if (f->body_case != SHOAL__FRAME__BODY_CLIENT_REQ &&
        f->body_case != SHOAL__FRAME__BODY_CLIENT_RESP) {
        snprintf(err, errlen, "batch element %zu is not a client request or answer", i);
        shoal__frame__free_unpacked(f, NULL);
        return -1;
    }
    *out = f;
    return 0;
}

size_t shoal_batch_op_bytes(const Shoal__BatchOp *op)
{
    switch (op->op_case) {
    case SHOAL__BATCH_OP__OP_PUT: return op->put->key.len + op->put->value.len;
    case SHOAL__BATCH_OP__OP_DEL: return op->del->key.len;
    default: return 0;
    }
}
