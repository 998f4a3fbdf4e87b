/* fuzz_lsm_manifest.c - fuzz target for the manifest decoders (engine/lsm/manifest.c version
 * edits, read through the record log as at recovery): any input must decode to a
 * well-formed edit (levels in range, internal keys with trailers, smallest <= largest) or be
 * refused with SHOAL_ECORRUPT; a decoded edit re-encodes to bytes that decode the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/lsm.h"
#include "engine/lsm/manifest.h"
#include "engine/lsm/wal.h"

/* A check that stays in release builds (assert would vanish under NDEBUG). */
#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c))                                                                          \
            abort();                                                                       \
    } while (0)

static void check_edit(lsm_slice_t in)
{
    lsm_edit_t e, again;
    if (lsm_edit_decode(in, &e) != 0)
        return;
    for (size_t i = 0; i < e.nadded; i++) {
        FZ_CHECK(e.added[i].level >= 0 && e.added[i].level < LSM_MAX_LEVELS);
        FZ_CHECK(e.added[i].smallest.len >= LSM_TRAILER && e.added[i].largest.len >= LSM_TRAILER);
    }
    lsm_buf_t out = {0};
    FZ_CHECK(lsm_edit_encode(&e, &out) == 0);
    FZ_CHECK(lsm_edit_decode(lsm_slice(out.data, out.len), &again) == 0);
    FZ_CHECK(again.nadded == e.nadded && again.ndeleted == e.ndeleted);
    FZ_CHECK(again.log_number == e.log_number && again.last_seq == e.last_seq);
    lsm_edit_free(&again);
    lsm_buf_free(&out);
    lsm_edit_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_edit(lsm_slice(data, size));
    lsm_wal_reader_t r;
    lsm_slice_t rec;
    lsm_wal_reader_init(&r, (const char *)data, size, "MANIFEST-fuzz", NULL);
    while (lsm_wal_read(&r, &rec) == 1)
        check_edit(rec);
    return 0;
}

/* Valid samples: an edit with counters, deletions and added files. */
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    lsm_edit_t e;
    lsm_edit_init(&e);
    e.has_log_number = i % 2;
    e.log_number = i;
    e.has_next_file = true;
    e.next_file = i + 10;
    e.has_last_seq = i % 3 != 0;
    e.last_seq = (uint64_t)i * 1000;
    char a[32], z[32];
    for (unsigned j = 0; j < i % 4; j++) {
        lsm_edit_delete_file(&e, (int)(j % LSM_MAX_LEVELS), j + 1);
        lsm_edit_add_file(&e, (int)((i + j) % LSM_MAX_LEVELS), j + 5, 4096 * j,
                          lsm_make_ikey(a, "aaa", 3, j, LSM_TYPE_VALUE),
                          lsm_make_ikey(z, "zzz", 3, j, LSM_TYPE_DELETE));
    }
    lsm_buf_t out = {0};
    size_t n = 0;
    lsm_edit_encode(&e, &out);
    if (i % 2 == 0 && out.len <= cap) { /* a bare edit */
        memcpy(buf, out.data, out.len);
        n = out.len;
    } else if (out.len + LSM_WAL_HEADER <= cap) { /* a manifest record */
        memcpy(buf + LSM_WAL_HEADER, out.data, out.len);
        lsm_wal_frame((char *)buf, out.len);
        n = out.len + LSM_WAL_HEADER;
    }
    lsm_buf_free(&out);
    lsm_edit_free(&e);
    return n;
}
