/* checksum.h - the checksum and key hash used everywhere (XXH3 from libxxhash), so that one
 * function defines what "checksum" means in every file format and on the wire. */
#ifndef SHOAL_CHECKSUM_H
#define SHOAL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* 32-bit checksum of a record or block: the low half of XXH3-64. */
uint32_t shoal_checksum32(const void *data, size_t len);
uint64_t shoal_hash64(const void *data, size_t len);
uint64_t shoal_hash64_seed(const void *data, size_t len, uint64_t seed);

#endif
