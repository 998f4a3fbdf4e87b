/* bloom.h - the bloom filter of a table: one filter over all user keys of the table, checked
 * before any block is read, so a lookup for a key the table does not hold costs one cache
 * line instead of an index search and a block read.
 *
 * Cache-blocked: each key sets k bits inside one 64-byte line chosen by its hash, so a probe
 * touches one cache line. Format: nlines * 64 bytes of bits, then 1 byte k. The false
 * positive rate at 10 bits per key is about 1%. A filter that does not parse (wrong length,
 * k out of range) answers "may contain": a bad filter costs speed, never correctness. */
#ifndef SHOAL_LSM_BLOOM_H
#define SHOAL_LSM_BLOOM_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/coding.h"

/* The hash the filter is built from (64-bit XXH3 of the user key). */
uint64_t lsm_bloom_hash(lsm_slice_t user_key);

/* Appends to out a filter over n key hashes. */
int lsm_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, lsm_buf_t *out);

bool lsm_bloom_may_contain(lsm_slice_t filter, uint64_t hash);

#endif
