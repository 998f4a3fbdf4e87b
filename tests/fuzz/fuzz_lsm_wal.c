/* fuzz_lsm_wal.c - fuzz target for the WAL decoders (engine/lsm/wal.c record reader and the
 * write-batch decoder of batch.c): any input must read as records up to a clean end, a torn
 * tail, or a corruption error; every record's batch is applied or refused whole. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/wal.h"

/* A check that stays in release builds (assert would vanish under NDEBUG). */
#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c))                                                                          \
            abort();                                                                       \
    } while (0)

static int count_op(void *arg, uint64_t seq, int type, lsm_slice_t k, lsm_slice_t v)
{
    (*(int *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lsm_wal_reader_t r;
    lsm_slice_t rec;
    int rc;
    lsm_wal_reader_init(&r, (const char *)data, size, "fuzz.log", NULL);
    while ((rc = lsm_wal_read(&r, &rec)) == 1) {
        int ops = 0;
        if (lsm_batch_check(rec) == 0) {
            FZ_CHECK(lsm_batch_iterate(rec, count_op, &ops) == 0);
            FZ_CHECK((uint32_t)ops == lsm_batch_rep_count(rec));
        }
    }
    FZ_CHECK(rc == 0 || rc == SHOAL_ECORRUPT);
    FZ_CHECK(r.off <= size);
    return 0;
}

/* Valid samples: a log of i%5+1 records, each a batch of a few puts and deletes. */
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    for (unsigned r = 0; r < i % 5 + 1; r++) {
        lsm_batch_t *b = lsm_batch_new();
        for (unsigned j = 0; j < (i + r) % 4 + 1; j++) {
            char k[16];
            snprintf(k, sizeof k, "k%u", j + r);
            if ((i + j) % 3)
                lsm_batch_put(b, k, strlen(k), "value", 5);
            else
                lsm_batch_delete(b, k, strlen(k));
        }
        lsm_put_fixed64(b->rep.data, 1 + r * 10);
        size_t len = lsm_batch_size(b);
        if (n + LSM_WAL_HEADER + len <= cap) {
            memcpy(buf + n + LSM_WAL_HEADER, b->rep.data, len);
            lsm_wal_frame((char *)buf + n, len);
            n += LSM_WAL_HEADER + len;
        }
        lsm_batch_destroy(&b);
    }
    return n;
}
