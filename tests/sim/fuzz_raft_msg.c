/* fuzz_raft_msg.c - fuzz target for the Raft wire decoder and the core behind it: bytes
 * are unpacked as a RaftMessage, checked and converted by raft_msg_from_proto, then
 * stepped into a core (a follower with a log, or a leader, chosen by the input) whose
 * ready is drained. Whatever the bytes, nothing may crash, leak or trip a sanitizer, and
 * the core's invariants (commit <= last index, applied <= commit) must hold after. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/raft/raft_codec.h"

static int fz_write(void *ctx, const raft_snapshot_chunk_t *c)
{
    (void)ctx;
    return c->len > 1000 ? SHOAL_ECORRUPT : 0;
}

static int64_t fz_read(void *ctx, uint64_t index, uint64_t offset, uint8_t *buf, size_t cap,
                       uint64_t *total, uint64_t *checksum)
{
    (void)ctx;
    (void)index;
    *total = 10;
    *checksum = 0;
    size_t n = offset < 10 ? 10 - offset : 0;
    n = n < cap ? n : cap;
    memset(buf, 'x', n);
    return (int64_t)n;
}

static raft_t *make_core(bool leader)
{
    raft_config_t c;
    raft_config_default(&c);
    c.id = 1;
    c.group = 7;
    c.snapshot_chunk_bytes = 4;
    c.snapshot_io = (raft_snapshot_io_t){NULL, fz_read, fz_write};
    raft_entry_t ents[4];
    for (int i = 0; i < 4; i++)
        ents[i] = (raft_entry_t){.term = 2 + (uint64_t)i / 2, .index = 6 + (uint64_t)i};
    raft_restore_t rs = {.hard_state = {3, 0, 6}, .entries = ents, .n_entries = 4,
                         .applied = 5};
    rs.snapshot.index = 5;
    rs.snapshot.term = 2;
    rs.snapshot.conf.n_voters = 3;
    rs.snapshot.conf.voters[0] = 1;
    rs.snapshot.conf.voters[1] = 2;
    rs.snapshot.conf.voters[2] = 3;
    raft_t *r = raft_new(&c, &rs, NULL);
    if (r && leader) {
        raft_msg_t tn = {.type = RAFT_MSG_TIMEOUT_NOW, .group = 7, .from = 2, .to = 1, .term = 3};
        raft_step(r, &tn);
        raft_msg_t g = {.type = RAFT_MSG_VOTE_RESP, .group = 7, .from = 2, .to = 1, .term = 4};
        raft_step(r, &g);
    }
    return r;
}

static void drain(raft_t *r)
{
    raft_ready_t rd;
    for (int i = 0; i < 4 && raft_has_ready(r) && raft_ready(r, &rd) == 0; i++)
        raft_advance(r, &rd);
    raft_status_t st;
    raft_status(r, &st);
    if (st.commit > st.last_index || st.applied > st.commit)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    Shoal__RaftMessage *pm = shoal__raft_message__unpack(NULL, size - 1, data + 1);
    if (!pm)
        return 0;
    raft_msg_t m;
    if (raft_msg_from_proto(pm, &m) == 0) {
        m.to = 1; /* reach past the routing checks into the Raft logic */
        m.group = 7;
        m.from = 2 + (m.from & 1);
        raft_t *r = make_core(data[0] & 1);
        if (r) {
            raft_step(r, &m);
            drain(r);
            raft_step(r, &m); /* a duplicate */
            raft_tick(r);
            drain(r);
            raft_destroy(&r);
        }
        if (raft_msg_is_heartbeat(&m)) {
            Shoal__GroupHeartbeat g;
            raft_msg_t back;
            raft_msg_to_group_heartbeat(&m, &g);
            if (raft_msg_from_group_heartbeat(&g, m.type == RAFT_MSG_HEARTBEAT_RESP, m.from,
                                              m.to, &back) == 0)
                raft_msg_free_contents(&back);
        }
        raft_msg_free_contents(&m);
    }
    shoal__raft_message__free_unpacked(pm, NULL);
    return 0;
}

/* Valid messages of every shape, for the standalone runner to mutate. */
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    raft_entry_t ents[3] = {{.term = 3, .index = 8, .data = (uint8_t *)"ab", .len = 2},
                            {.term = 4, .index = 9, .type = RAFT_ENTRY_NOOP},
                            {.term = 4, .index = 10, .type = RAFT_ENTRY_CONF_CHANGE,
                             .data = (uint8_t *)"\x00\x04\0\0\0\0\0\0\0", .len = 9}};
    uint8_t ctx[8] = {1};
    raft_msg_t m = {.type = (raft_msg_type_t)(1 + i % RAFT_MSG_TYPE_MAX), .group = 7, .from = 2,
                    .to = 1, .term = 3 + i % 3, .log_term = 3, .index = 7, .commit = 9};
    if (m.type == RAFT_MSG_APPEND) {
        m.entries = ents;
        m.n_entries = 3;
    }
    if (m.type == RAFT_MSG_HEARTBEAT || m.type == RAFT_MSG_HEARTBEAT_RESP ||
        m.type == RAFT_MSG_READ_INDEX) {
        m.context = ctx;
        m.context_len = 8;
    }
    if (m.type == RAFT_MSG_APPEND_RESP) {
        m.reject = i & 1;
        m.reject_hint = 6;
        m.conflict_term = 2;
    }
    if (m.type == RAFT_MSG_SNAPSHOT) {
        m.has_snapshot = true;
        m.snapshot.meta.index = 20;
        m.snapshot.meta.term = 3;
        m.snapshot.meta.conf.n_voters = 3;
        for (int v = 0; v < 3; v++)
            m.snapshot.meta.conf.voters[v] = (uint64_t)v + 1;
        m.snapshot.data = (uint8_t *)"snap";
        m.snapshot.len = 4;
        m.snapshot.total_size = 4;
        m.snapshot.last = true;
    }
    Shoal__RaftMessage pm;
    if (raft_msg_to_proto(&m, &pm) != 0)
        return 0;
    size_t len = shoal__raft_message__get_packed_size(&pm);
    if (len + 1 > cap) {
        raft_msg_proto_release(&pm);
        return 0;
    }
    buf[0] = (uint8_t)(i / RAFT_MSG_TYPE_MAX);
    shoal__raft_message__pack(&pm, buf + 1);
    raft_msg_proto_release(&pm);
    return len + 1;
}
