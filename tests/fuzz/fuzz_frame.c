/* fuzz_frame.c - fuzz target for the wire frame decoder (proto/codec.c): any input must be
 * decoded or refused with an error, and whatever decodes must re-encode and decode again;
 * so must each element of a batch (Frame{batch}: what brokers and nodes exchange), which is
 * a client request or answer or is refused. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Shoal__Frame *f = NULL;
    char err[256];
    if (shoal_frame_decode(data, size, &f, err, sizeof err) != 0) {
        assert(f == NULL && err[0] != '\0');
        return 0;
    }
    for (size_t i = 0; f->body_case == SHOAL__FRAME__BODY_BATCH && i < f->batch->n_frames; i++) {
        Shoal__Frame *e = NULL;
        if (shoal_batch_element(f, i, &e, err, sizeof err) != 0) {
            assert(e == NULL && err[0] != '\0');
            continue;
        }
        assert(e->body_case == SHOAL__FRAME__BODY_CLIENT_REQ ||
               e->body_case == SHOAL__FRAME__BODY_CLIENT_RESP);
        shoal_frame_free(&e);
    }
    size_t n;
    uint8_t *again = shoal_frame_encode(f, &n);
    Shoal__Frame *g = NULL;
    int rc = shoal_frame_decode(again, n, &g, err, sizeof err);
    assert(rc == 0);
    (void)rc;
    shoal_frame_free(&g);
    free(again);
    shoal_frame_free(&f);
    return 0;
}

size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__PutRequest put = SHOAL__PUT_REQUEST__INIT;
    Shoal__PeerEnvelope env = SHOAL__PEER_ENVELOPE__INIT;
    Shoal__RaftMessage msg = SHOAL__RAFT_MESSAGE__INIT, *msgs[1] = {&msg};
    Shoal__Entry ent = SHOAL__ENTRY__INIT, *ents[1] = {&ent};
    f.version = 1;
    if (i % 2) {
        put.key.data = (uint8_t *)"key-123";
        put.key.len = 7;
        put.value.data = (uint8_t *)"value";
        put.value.len = 5;
        req.client_id = i;
        req.seq = 7;
        req.op_case = SHOAL__CLIENT_REQUEST__OP_PUT;
        req.put = &put;
        f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
        f.client_req = &req;
    } else {
        ent.term = 3;
        ent.index = 10;
        ent.data.data = (uint8_t *)"payload";
        ent.data.len = 7;
        msg.type = SHOAL__RAFT_MESSAGE_TYPE__MSG_APPEND;
        msg.term = 3;
        msg.n_entries = 1;
        msg.entries = ents;
        env.n_msgs = 1;
        env.msgs = msgs;
        f.body_case = SHOAL__FRAME__BODY_PEER;
        f.peer = &env;
    }
    size_t n = shoal__frame__get_packed_size(&f);
    if (n > cap)
        return 0;
    n = shoal__frame__pack(&f, buf);
    if (i % 3 == 0 && i % 2) { /* the put and a bad element in a batch */
        uint8_t *el[2] = {buf, (uint8_t *)"\xff\xff"};
        size_t lens[2] = {n, 2}, bl;
        uint8_t *b = shoal_batch_encode(el, lens, 2, &bl);
        if (!b || bl > cap)
            return free(b), 0;
        memcpy(buf, b, bl);
        free(b);
        n = bl;
    }
    return n;
}
