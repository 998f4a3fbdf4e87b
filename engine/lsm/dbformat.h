/* dbformat.h - internal keys: how the engine orders versions of a user key.
 *
 * Every entry in a memtable or table is stored under an internal key:
 *     user key bytes | 8-byte little-endian trailer = (sequence << 8) | type
 * Order: user key ascending (bytewise), then trailer descending, so the newest version of
 * a key comes first and a lookup at snapshot S seeks to (key, S, LSM_TYPE_SEEK) and takes
 * the first entry with the same user key. Sequence numbers are 56-bit and strictly grow with
 * every applied put or delete. */
#ifndef SHOAL_LSM_DBFORMAT_H
#define SHOAL_LSM_DBFORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/coding.h"

enum {
    LSM_TYPE_DELETE = 0,
    LSM_TYPE_VALUE = 1,
    LSM_TYPE_SEEK = LSM_TYPE_VALUE, /* highest type: sorts first among equal sequences */
};

#define LSM_MAX_SEQ ((UINT64_C(1) << 56) - 1)
#define LSM_TRAILER 8

static inline uint64_t lsm_pack_trailer(uint64_t seq, int type)
{
    return (seq << 8) | (uint64_t)type;
}

static inline lsm_slice_t lsm_ikey_user(lsm_slice_t ikey)
{
    return lsm_slice(ikey.data, ikey.len - LSM_TRAILER);
}

static inline uint64_t lsm_ikey_trailer(lsm_slice_t ikey)
{
    return lsm_get_fixed64(ikey.data + ikey.len - LSM_TRAILER);
}

static inline uint64_t lsm_ikey_seq(lsm_slice_t ikey)
{
    return lsm_ikey_trailer(ikey) >> 8;
}

static inline int lsm_ikey_type(lsm_slice_t ikey)
{
    return (int)(lsm_ikey_trailer(ikey) & 0xff);
}

/* A well-formed internal key has a trailer and a known type. */
static inline bool lsm_ikey_valid(lsm_slice_t ikey)
{
    return ikey.len >= LSM_TRAILER && lsm_ikey_type(ikey) <= LSM_TYPE_VALUE;
}

/* The internal-key order described above. Both keys must have a trailer. */
static inline int lsm_ikey_cmp(lsm_slice_t a, lsm_slice_t b)
{
    int r = lsm_slice_cmp(lsm_ikey_user(a), lsm_ikey_user(b));
    if (r)
        return r;
    uint64_t ta = lsm_ikey_trailer(a), tb = lsm_ikey_trailer(b);
    return ta > tb ? -1 : ta < tb;
}

/* Writes user key + trailer into buf (klen + 8 bytes); returns the internal key. */
static inline lsm_slice_t lsm_make_ikey(char *buf, const void *ukey, size_t klen, uint64_t seq,
                                        int type)
{
    memcpy(buf, ukey, klen);
    lsm_put_fixed64(buf + klen, lsm_pack_trailer(seq, type));
    return lsm_slice(buf, klen + LSM_TRAILER);
}

#endif
