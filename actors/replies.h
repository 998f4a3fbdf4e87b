/* replies.h - a node's answers to requests that came in batches (Frame{batch}, a broker's
 * requests of one loop turn): gathered during a loop turn and sent at the pump as one
 * Frame{batch} per sender, instead of one ROUTER message per answer.
 *
 * Why: at 8 shards the node's answers were its most frequent message (one per write, next
 * to ~0.5 peer envelopes and ~0.3 fsm messages) and each cost a routing-id copy, two
 * ROUTER frames, an I/O-thread hand-over and, on the broker, its own receive, decode and
 * wake-up. Only senders that batch get batches, so a client speaking to the node directly
 * (tests, tools) still gets one frame per answer. */
#ifndef SHOAL_ACTORS_REPLIES_H
#define SHOAL_ACTORS_REPLIES_H

#include <czmq.h>
#include <stdint.h>

typedef struct replies_t replies_t;

replies_t *replies_new(void);
/* Frees what is still queued, unsent. */
void replies_destroy(replies_t **self_p);
/* Queues an encoded Frame{client_resp}; takes *id and *buf (both set to NULL). When out of
 * memory it is sent at once instead. */
void replies_add(replies_t *q, zsock_t *router, zframe_t **id, uint8_t **buf, size_t len);
/* Sends everything queued: per sender, batches under SHOAL_BATCH_BYTES (a lone answer or
 * one over SHOAL_BATCH_ALONE as a plain frame). Returns the ROUTER messages sent. */
uint64_t replies_flush(replies_t *q, zsock_t *router);

#endif
