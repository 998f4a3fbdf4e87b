/* codec.h - encode and decode the wire Frame (proto/wire.proto).
 *
 * Every byte that arrives from a socket goes through shoal_frame_decode: it bounds the
 * size, lets protobuf-c validate the encoding, checks the wire version and that a body is
 * present, and answers anything else with an error string instead of a crash. */
#ifndef SHOAL_PROTO_CODEC_H
#define SHOAL_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.pb-c.h"

#define SHOAL_WIRE_VERSION 1
#define SHOAL_MAX_FRAME (64u << 20) /* 64 MiB: a snapshot chunk plus headroom */
/* The keys and values one scan answer carries, a node's part and the broker's merged reply
 * alike: past it the answer stops early with `more` (a page of 1 MiB values fits its frame). */
#define SHOAL_SCAN_MAX_BYTES (16u << 20)

/* What a node accepts in one write (actors/node.c answers more with STATUS_TOO_LARGE). A
 * client batch is split by shard and each shard's part is one Raft entry, whose keys and
 * put values (shoal_batch_op_bytes) total at most SHOAL_NODE_MAX_BATCH_BYTES. The broker
 * checks every part against it before it sends any (broker/route.c), so that a batch
 * refused for its size is applied nowhere; its own limits on one key or value are lower
 * (SHOAL_MAX_KEY, SHOAL_MAX_VALUE in broker/shoal.h). */
#define SHOAL_NODE_MAX_KEY (64u << 10)
#define SHOAL_NODE_MAX_VALUE (16u << 20)
#define SHOAL_NODE_MAX_BATCH_BYTES (4u << 20)
/* The refusal of such a part, by the broker and the node alike: shard, bytes, limit. */
#define SHOAL_ERR_BATCH_BYTES                                                                      \
    "a batch's writes to shard %u total %zu bytes, over the limit of %u per shard"

/* The bytes op counts against SHOAL_NODE_MAX_BATCH_BYTES: its key and a put's value. */
size_t shoal_batch_op_bytes(const Shoal__BatchOp *op);

/* Decodes buf into *out (free with shoal_frame_free). Returns 0, or -1 with a one-line
 * reason in err. */
int shoal_frame_decode(const uint8_t *buf, size_t len, Shoal__Frame **out, char *err,
                       size_t errlen);

/* Encodes f into a new malloc'd buffer (caller frees); *len gets its size. NULL on OOM. */
uint8_t *shoal_frame_encode(const Shoal__Frame *f, size_t *len);

void shoal_frame_free(Shoal__Frame **f);

/* Batches (FrameBatch, docs/CONTRACTS.md): a batch stays under SHOAL_BATCH_BYTES, and a frame
 * bigger than SHOAL_BATCH_ALONE goes alone, so no batch nears SHOAL_MAX_FRAME. */
#define SHOAL_BATCH_BYTES (1u << 20)
#define SHOAL_BATCH_ALONE (64u << 10)
#define SHOAL_BATCH_MAX 1024 /* elements in one batch; a decoder refuses more */

/* Encodes n already encoded frames as one Frame{batch}; NULL on OOM. */
uint8_t *shoal_batch_encode(uint8_t *const *frames, const size_t *lens, size_t n, size_t *len);

/* Decodes element i of a decoded Frame{batch} into *out: 0, or -1 with a reason in err when
 * it is not a valid frame, is itself a batch, or holds anything but a client_req or a
 * client_resp. */
int shoal_batch_element(const Shoal__Frame *batch, size_t i, Shoal__Frame **out, char *err,
                        size_t errlen);

/* A frame of this wire version carrying req (borrowed, not copied). */
static inline Shoal__Frame shoal_admin_frame(Shoal__AdminRequest *req)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_ADMIN_REQ;
    f.admin_req = req;
    return f;
}

#endif
