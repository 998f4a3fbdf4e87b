/* test_proto.c - every message type of proto/ round-trips (encode, decode, compare), and
 * the frame codec refuses truncated and garbage input with an error instead of crashing.
 *
 * Messages are filled by walking their protobuf-c descriptors, so a field added to a
 * schema is covered without touching this test; each oneof member gets its own run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/admin.pb-c.h"
#include "proto/client.pb-c.h"
#include "proto/codec.h"
#include "proto/events.pb-c.h"
#include "proto/raft.pb-c.h"
#include "proto/wire.pb-c.h"

static const ProtobufCMessageDescriptor *all_types[] = {
    &shoal__get_request__descriptor, &shoal__put_request__descriptor,
    &shoal__delete_request__descriptor, &shoal__cas_request__descriptor,
    &shoal__scan_request__descriptor, &shoal__batch_op__descriptor,
    &shoal__batch_request__descriptor, &shoal__changes_request__descriptor,
    &shoal__client_request__descriptor, &shoal__key_value__descriptor,
    &shoal__leader_hint__descriptor, &shoal__change__descriptor,
    &shoal__client_response__descriptor, &shoal__write_command__descriptor,
    &shoal__entry__descriptor, &shoal__conf_state__descriptor,
    &shoal__conf_change__descriptor, &shoal__snapshot_meta__descriptor,
    &shoal__snapshot_chunk__descriptor, &shoal__raft_message__descriptor,
    &shoal__group_heartbeat__descriptor, &shoal__peer_envelope__descriptor,
    &shoal__hard_state__descriptor, &shoal__peer_progress__descriptor,
    &shoal__node_metrics__descriptor, &shoal__raft_event__descriptor,
    &shoal__change_event__descriptor, &shoal__shard_progress__descriptor,
    &shoal__stream_notice__descriptor, &shoal__node_info__descriptor,
    &shoal__shard_info__descriptor, &shoal__shard_map__descriptor,
    &shoal__node_status__descriptor, &shoal__shard_status__descriptor,
    &shoal__cluster_status__descriptor, &shoal__transfer_leader_request__descriptor,
    &shoal__add_node_request__descriptor, &shoal__remove_node_request__descriptor,
    &shoal__move_replica_request__descriptor, &shoal__add_shard_request__descriptor,
    &shoal__compact_request__descriptor, &shoal__snapshot_request__descriptor,
    &shoal__status_request__descriptor, &shoal__shard_map_request__descriptor,
    &shoal__admin_request__descriptor, &shoal__admin_response__descriptor,
    &shoal__frame__descriptor,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static unsigned counter;

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    default: return 4;
    }
}

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, unsigned variant, int depth);

/* Writes one non-default value of the field's type at p. */
static void fill_value(const ProtobufCFieldDescriptor *fd, void *p, unsigned variant, int depth)
{
    unsigned v = ++counter;
    char s[32];
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = 0x100000000ull * v + v;
        break;
    case PROTOBUF_C_TYPE_DOUBLE: *(double *)p = v + 0.5; break;
    case PROTOBUF_C_TYPE_FLOAT: *(float *)p = v + 0.5f; break;
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)p = 1; break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = fd->descriptor;
        *(int *)p = e->values[e->n_values - 1 - v % e->n_values].value;
        if (*(int *)p == 0)
            *(int *)p = e->values[e->n_values - 1].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        snprintf(s, sizeof s, "str-%u", v);
        *(char **)p = strdup(s);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        b->len = 1 + v % 7;
        b->data = malloc(b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)(v * 31 + i);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p = fill(fd->descriptor, variant, depth + 1);
        break;
    default: *(uint32_t *)p = v; break;
    }
}

/* The position of fd among the members of its oneof, and how many members it has. */
static unsigned oneof_rank(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *fd,
                           unsigned *members)
{
    unsigned rank = 0, n = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *o = &d->fields[i];
        if ((o->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && o->quantifier_offset == fd->quantifier_offset) {
            if (o == fd)
                rank = n;
            n++;
        }
    }
    *members = n;
    return rank;
}

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, unsigned variant, int depth)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    d->message_init(m);
    if (depth > 3)
        return m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        char *base = (char *)m;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            unsigned members, rank = oneof_rank(d, fd, &members);
            if (rank != variant % members)
                continue;
            *(uint32_t *)(base + fd->quantifier_offset) = fd->id;
            fill_value(fd, base + fd->offset, variant, depth);
        } else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 2, sz = elem_size(fd->type);
            char *arr = calloc(n, sz);
            for (size_t k = 0; k < n; k++)
                fill_value(fd, arr + k * sz, variant, depth);
            *(size_t *)(base + fd->quantifier_offset) = n;
            *(void **)(base + fd->offset) = arr;
        } else {
            fill_value(fd, base + fd->offset, variant, depth);
        }
    }
    return m;
}

static int msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

static int value_equal(const ProtobufCFieldDescriptor *fd, const void *a, const void *b)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING:
        return strcmp(*(char *const *)a, *(char *const *)b) == 0;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *x = a, *y = b;
        return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return msg_equal(*(ProtobufCMessage *const *)a, *(ProtobufCMessage *const *)b);
    default:
        return memcmp(a, b, elem_size(fd->type)) == 0;
    }
}

static int msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!a || !b)
        return a == b;
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (d != b->descriptor)
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *pa = (const char *)a + fd->offset, *pb = (const char *)b + fd->offset;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t ca = *(const uint32_t *)((const char *)a + fd->quantifier_offset);
            uint32_t cb = *(const uint32_t *)((const char *)b + fd->quantifier_offset);
            if (ca != cb)
                return 0;
            if (ca == fd->id && !value_equal(fd, pa, pb))
                return 0;
        } else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t na = *(const size_t *)((const char *)a + fd->quantifier_offset);
            size_t nb = *(const size_t *)((const char *)b + fd->quantifier_offset);
            if (na != nb)
                return 0;
            size_t sz = elem_size(fd->type);
            for (size_t k = 0; k < na; k++)
                if (!value_equal(fd, *(char *const *)pa + k * sz, *(char *const *)pb + k * sz))
                    return 0;
        } else if (!value_equal(fd, pa, pb)) {
            return 0;
        }
    }
    return 1;
}

static void test_every_type_round_trips(void **state)
{
    for (size_t t = 0; t < N_TYPES; t++) {
        for (unsigned variant = 0; variant < 10; variant++) {
            ProtobufCMessage *m = fill(all_types[t], variant, 0);
            size_t n = protobuf_c_message_get_packed_size(m);
            uint8_t *buf = malloc(n + 1);
            assert_int_equal(protobuf_c_message_pack(m, buf), n);
            ProtobufCMessage *back = protobuf_c_message_unpack(all_types[t], NULL, n, buf);
            if (!back || !msg_equal(m, back))
                fail_msg("%s variant %u does not round-trip", all_types[t]->name, variant);
            /* a changed value must be seen as a difference, or the compare proves nothing */
            if (n > 0) {
                buf[n - 1] ^= 0x01;
                ProtobufCMessage *bent = protobuf_c_message_unpack(all_types[t], NULL, n, buf);
                if (bent) {
                    assert_false(msg_equal(m, bent));
                    protobuf_c_message_free_unpacked(bent, NULL);
                }
            }
            protobuf_c_message_free_unpacked(back, NULL);
            protobuf_c_message_free_unpacked(m, NULL);
            free(buf);
        }
    }
}

static uint8_t *sample_frame(size_t *len)
{
    Shoal__Frame *f = (Shoal__Frame *)fill(&shoal__frame__descriptor, 2, 0); /* peer body */
    f->version = 1;
    uint8_t *buf = shoal_frame_encode(f, len);
    protobuf_c_message_free_unpacked(&f->base, NULL);
    return buf;
}

static void test_frame_decodes(void **state)
{
    size_t n;
    uint8_t *buf = sample_frame(&n);
    Shoal__Frame *f = NULL;
    char err[128];
    assert_int_equal(shoal_frame_decode(buf, n, &f, err, sizeof err), 0);
    assert_int_equal(f->body_case, SHOAL__FRAME__BODY_PEER);
    assert_true(f->peer->n_msgs == 2);
    shoal_frame_free(&f);
    assert_null(f);
    free(buf);
}

static void test_truncated_frame_is_refused(void **state)
{
    size_t n;
    uint8_t *buf = sample_frame(&n);
    char err[128];
    int refused = 0;
    for (size_t cut = 0; cut < n; cut++) {
        Shoal__Frame *f = NULL;
        err[0] = 0;
        if (shoal_frame_decode(buf, cut, &f, err, sizeof err) != 0) {
            assert_null(f);
            assert_true(strlen(err) > 0);
            refused++;
        }
        shoal_frame_free(&f);
    }
    /* cutting inside the one top-level length-delimited body always breaks it */
    assert_true(refused >= (int)n - 4);
    free(buf);
}

static void test_garbage_is_refused(void **state)
{
    static const uint8_t bad_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t bad_len[] = {0x62, 0x7f, 0x01};     /* body of 127 bytes, has 1 */
    static const uint8_t bad_wire[] = {0x0f, 0x00};          /* wire type 7 does not exist */
    static const uint8_t newer[] = {0x08, 0x09, 0x62, 0x00}; /* version 9 */
    static const uint8_t empty_body[] = {0x08, 0x01};
    const struct { const uint8_t *p; size_t n; const char *why; } cases[] = {
        {bad_varint, sizeof bad_varint, "malformed"}, {bad_len, sizeof bad_len, "malformed"},
        {bad_wire, sizeof bad_wire, "malformed"},     {newer, sizeof newer, "newer"},
        {empty_body, sizeof empty_body, "no body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Shoal__Frame *f = NULL;
        char err[128] = "";
        assert_int_equal(shoal_frame_decode(cases[i].p, cases[i].n, &f, err, sizeof err), -1);
        assert_null(f);
        if (!strstr(err, cases[i].why))
            fail_msg("case %zu: error '%s' does not say '%s'", i, err, cases[i].why);
    }
    srand(42);
    uint8_t noise[300];
    for (int r = 0; r < 20000; r++) {
        size_t n = (size_t)rand() % sizeof noise;
        for (size_t j = 0; j < n; j++)
            noise[j] = (uint8_t)rand();
        Shoal__Frame *f = NULL;
        char err[128];
        shoal_frame_decode(noise, n, &f, err, sizeof err);
        shoal_frame_free(&f);
    }
}

static uint8_t *client_frame(bool resp, uint64_t id, size_t *len)
{
    Shoal__Frame f = SHOAL__FRAME__INIT;
    Shoal__ClientRequest req = SHOAL__CLIENT_REQUEST__INIT;
    Shoal__ClientResponse rsp = SHOAL__CLIENT_RESPONSE__INIT;
    f.version = 1;
    req.request_id = rsp.request_id = id;
    f.body_case = resp ? SHOAL__FRAME__BODY_CLIENT_RESP : SHOAL__FRAME__BODY_CLIENT_REQ;
    if (resp)
        f.client_resp = &rsp;
    else
        f.client_req = &req;
    return shoal_frame_encode(&f, len);
}

/* A batch carries client requests and answers; each element is decoded on its own and an
 * element that is a batch, a peer frame or garbage is refused with a reason. */
static void test_batch(void **state)
{
    uint8_t *el[6];
    size_t lens[6], n;
    el[0] = client_frame(false, 7, &lens[0]);
    el[1] = client_frame(true, 8, &lens[1]);
    el[2] = sample_frame(&lens[2]); /* a peer frame */
    el[3] = shoal_batch_encode(el, lens, 2, &lens[3]); /* a batch in a batch */
    el[4] = (uint8_t *)strdup("\xff\xff\xff");
    lens[4] = 3;
    el[5] = NULL; /* an empty element: a frame without a body */
    lens[5] = 0;
    uint8_t *buf = shoal_batch_encode(el, lens, 6, &n);
    Shoal__Frame *f = NULL, *e = NULL;
    char err[128];
    assert_int_equal(shoal_frame_decode(buf, n, &f, err, sizeof err), 0);
    assert_int_equal(f->body_case, SHOAL__FRAME__BODY_BATCH);
    assert_int_equal(f->batch->n_frames, 6);
    assert_int_equal(shoal_batch_element(f, 0, &e, err, sizeof err), 0);
    assert_int_equal(e->body_case, SHOAL__FRAME__BODY_CLIENT_REQ);
    assert_int_equal(e->client_req->request_id, 7);
    shoal_frame_free(&e);
    assert_int_equal(shoal_batch_element(f, 1, &e, err, sizeof err), 0);
    assert_int_equal(e->client_resp->request_id, 8);
    shoal_frame_free(&e);
    const char *why[] = {"not a client", "not a client", "malformed", "no body", "no element"};
    for (size_t i = 2; i < 7; i++) {
        err[0] = 0;
        assert_int_equal(shoal_batch_element(f, i, &e, err, sizeof err), -1);
        assert_null(e);
        if (!strstr(err, why[i - 2]))
            fail_msg("element %zu: error '%s' does not say '%s'", i, err, why[i - 2]);
    }
    shoal_frame_free(&f);
    free(buf);
    /* more elements than a decoder takes */
    uint8_t *many[SHOAL_BATCH_MAX + 1];
    size_t many_lens[SHOAL_BATCH_MAX + 1];
    for (size_t i = 0; i <= SHOAL_BATCH_MAX; i++)
        many[i] = el[0], many_lens[i] = lens[0];
    buf = shoal_batch_encode(many, many_lens, SHOAL_BATCH_MAX + 1, &n);
    assert_int_equal(shoal_frame_decode(buf, n, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit"));
    free(buf);
    for (size_t i = 0; i < 5; i++)
        free(el[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_frame_decodes),
        cmocka_unit_test(test_truncated_frame_is_refused),
        cmocka_unit_test(test_garbage_is_refused),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
