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
