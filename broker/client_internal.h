/* client_internal.h - libshoal's private state, shared by client.c, client_admin.c and
 * watch.c, and the encode/decode helpers the unit tests call directly. */
#ifndef SHOAL_CLIENT_INTERNAL_H
#define SHOAL_CLIENT_INTERNAL_H

#include <czmq.h>

#include "broker/shoal.h"
#include "proto/wire.pb-c.h"

typedef struct {
    bool in_use;
    uint64_t gen;
    uint64_t rid; /* gen << 16 | slot index */
    uint8_t *buf; /* the encoded frame, kept to resend it unchanged */
    size_t len;
    int64_t start_us;
    int64_t deadline; /* zclock_mono ms */
    int64_t resend_at;
    uint32_t resends;  /* sends so far: each timed resend waits twice as long, up to 8x */
    uint64_t epoch;    /* the client's disconnect count when it was last sent */
    bool whole;        /* a scan or batch: retried whole when a split changed its division */
    bool write;        /* put, del, cas, batch */
    bool refused;      /* a resent copy was refused: only a copy's definite answer may end it */
    uint32_t rerouted; /* such retries so far */
    shoal_done_fn *done;
    void *arg;
} slot_t;

struct shoal_t {
    zsock_t *sock;
    char *endpoint;
    int timeout_ms;
    uint64_t client_id; /* low 16 bits zero: + slot index gives the lane's client id */
    slot_t slots[SHOAL_MAX_INFLIGHT];
    uint64_t lane_seq[SHOAL_MAX_INFLIGHT];
    uint32_t free_list[SHOAL_MAX_INFLIGHT];
    uint32_t n_free;
    size_t inflight;
    int64_t next_sweep;
    zsock_t *mon;   /* the DEALER's disconnects (zmq_socket_monitor), or NULL */
    uint64_t epoch; /* disconnects seen: a request sent before one may be lost */
    /* one synchronous admin call at a time */
    bool admin_wait;
    uint64_t admin_rid;
    uint64_t admin_counter;
    Shoal__Frame *admin_resp;
};

int shoal_op_check(const shoal_op_t *op, char *err, size_t errlen);
uint8_t *shoal_op_encode(const shoal_op_t *op, uint64_t client_id, uint64_t seq,
                         uint64_t request_id, uint32_t timeout_ms, size_t *len);
void shoal_result_from(shoal_result_t *r, const Shoal__ClientResponse *resp);

#endif
