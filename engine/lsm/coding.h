/* coding.h - byte-level encoding shared by every on-disk format of the engine: fixed-width
 * little-endian integers, LEB128 varints, and the slice (pointer + length) that the engine
 * passes around instead of NUL-terminated strings.
 *
 * Decoders take an end pointer and return NULL instead of reading past it: every caller
 * that decodes bytes from disk must check for NULL, which is how malformed input becomes
 * SHOAL_ECORRUPT instead of a crash. */
#ifndef SHOAL_LSM_CODING_H
#define SHOAL_LSM_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *data;
    size_t len;
} lsm_slice_t;

static inline lsm_slice_t lsm_slice(const void *p, size_t n)
{
    lsm_slice_t s = {(const char *)p, n};
    return s;
}

/* Bytewise order: memcmp on the common prefix, then the shorter first. Compares 8 bytes at
 * a time inline (as big-endian words) because keys are short and this runs ~25 times per
 * memtable insert: a call to memcmp costs more than the comparison itself. */
static inline int lsm_slice_cmp(lsm_slice_t a, lsm_slice_t b)
{
    size_t n = a.len < b.len ? a.len : b.len, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a.data + i, 8);
        memcpy(&y, b.data + i, 8);
        if (x != y)
            return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
    }
    for (; i < n; i++)
        if (a.data[i] != b.data[i])
            return (unsigned char)a.data[i] < (unsigned char)b.data[i] ? -1 : 1;
    return (a.len < b.len) ? -1 : (a.len > b.len);
}

static inline void lsm_put_fixed32(char *p, uint32_t v)
{
    memcpy(p, &v, 4); /* little-endian hosts only: checked in lsm_open */
}

static inline void lsm_put_fixed64(char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static inline uint32_t lsm_get_fixed32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t lsm_get_fixed64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Writes v as a varint at p (up to 10 bytes); returns the byte after it. */
static inline char *lsm_put_varint64(char *p, uint64_t v)
{
    unsigned char *u = (unsigned char *)p;
    while (v >= 128) {
        *u++ = (unsigned char)(v | 128);
        v >>= 7;
    }
    *u++ = (unsigned char)v;
    return (char *)u;
}

static inline char *lsm_put_varint32(char *p, uint32_t v)
{
    return lsm_put_varint64(p, v);
}

static inline int lsm_varint_len(uint64_t v)
{
    int n = 1;
    while (v >= 128) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a varint from [p, end); returns the byte after it, or NULL if malformed. */
static inline const char *lsm_get_varint64(const char *p, const char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t b = (unsigned char)*p++;
        r |= (b & 127) << shift;
        if (b < 128) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

static inline const char *lsm_get_varint32(const char *p, const char *end, uint32_t *v)
{
    if (p < end && (unsigned char)*p < 128) { /* the common one-byte case */
        *v = (unsigned char)*p;
        return p + 1;
    }
    uint64_t r;
    p = lsm_get_varint64(p, end, &r);
    if (!p || r > UINT32_MAX)
        return NULL;
    *v = (uint32_t)r;
    return p;
}

/* Reads a varint length then that many bytes as a slice; NULL if it runs past end. */
static inline const char *lsm_get_lenprefixed(const char *p, const char *end, lsm_slice_t *s)
{
    uint32_t n;
    p = lsm_get_varint32(p, end, &n);
    if (!p || (size_t)(end - p) < n)
        return NULL;
    *s = lsm_slice(p, n);
    return p + n;
}

/* A growable byte buffer for building encodings. */
typedef struct {
    char *data;
    size_t len, cap;
} lsm_buf_t;

int lsm_buf_reserve(lsm_buf_t *b, size_t extra); /* 0 or SHOAL_ENOMEM */
int lsm_buf_append(lsm_buf_t *b, const void *p, size_t n);
int lsm_buf_append_varint(lsm_buf_t *b, uint64_t v);
int lsm_buf_append_fixed32(lsm_buf_t *b, uint32_t v);
int lsm_buf_append_fixed64(lsm_buf_t *b, uint64_t v);
int lsm_buf_append_lenprefixed(lsm_buf_t *b, const void *p, size_t n);
void lsm_buf_free(lsm_buf_t *b);

#endif
