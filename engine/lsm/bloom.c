/* bloom.c - see bloom.h. The line is picked with the high 32 bits of the hash, the bit
 * positions inside the line from the low 32 bits by double hashing (h += delta). */
#include "engine/lsm/bloom.h"

#include "engine/checksum.h"
#include "engine/error.h"

#define LINE_BITS 512

uint64_t lsm_bloom_hash(lsm_slice_t user_key)
{
    return shoal_hash64(user_key.data, user_key.len);
}

int lsm_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, lsm_buf_t *out)
{
    if (bits_per_key < 1)
        bits_per_key = 1;
    int k = (int)(bits_per_key * 0.69);
    k = k < 1 ? 1 : k > 30 ? 30 : k;
    size_t bits = n * (size_t)bits_per_key;
    size_t lines = (bits + LINE_BITS - 1) / LINE_BITS;
    if (lines == 0)
        lines = 1;
    size_t bytes = lines * (LINE_BITS / 8);
    int rc = lsm_buf_reserve(out, bytes + 1);
    if (rc)
        return rc;
    unsigned char *arr = (unsigned char *)out->data + out->len;
    memset(arr, 0, bytes);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hashes[i];
        unsigned char *line = arr + ((h >> 32) % lines) * (LINE_BITS / 8);
        uint32_t a = (uint32_t)h, delta = (a >> 17) | (a << 15);
        for (int j = 0; j < k; j++) {
            uint32_t bit = a % LINE_BITS;
            line[bit / 8] |= (unsigned char)(1u << (bit % 8));
            a += delta;
        }
    }
    arr[bytes] = (unsigned char)k;
    out->len += bytes + 1;
    return 0;
}

bool lsm_bloom_may_contain(lsm_slice_t filter, uint64_t hash)
{
    if (filter.len < 1 + LINE_BITS / 8 || (filter.len - 1) % (LINE_BITS / 8) != 0)
        return true;
    const unsigned char *arr = (const unsigned char *)filter.data;
    size_t lines = (filter.len - 1) / (LINE_BITS / 8);
    int k = arr[filter.len - 1];
    if (k < 1 || k > 30)
        return true;
    const unsigned char *line = arr + ((hash >> 32) % lines) * (LINE_BITS / 8);
    uint32_t a = (uint32_t)hash, delta = (a >> 17) | (a << 15);
    for (int j = 0; j < k; j++) {
        uint32_t bit = a % LINE_BITS;
        if (!(line[bit / 8] & (1u << (bit % 8))))
            return false;
        a += delta;
    }
    return true;
}
