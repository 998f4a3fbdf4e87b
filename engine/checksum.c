/* checksum.c - thin wrappers over XXH3; see checksum.h. */
#include "engine/checksum.h"

#include <xxhash.h>

uint32_t shoal_checksum32(const void *data, size_t len)
{
    return (uint32_t)XXH3_64bits(data, len);
}

uint64_t shoal_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

uint64_t shoal_hash64_seed(const void *data, size_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(data, len, seed);
}
