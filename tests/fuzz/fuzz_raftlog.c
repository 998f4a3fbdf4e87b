/* fuzz_raftlog.c - fuzz target for the Raft log record decoder (actors/rlog.c): any bytes
 * decode to records or are refused as short or bad, never read out of bounds; a decoded
 * record re-encodes to the same bytes. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "actors/rlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        rlog_record_t r;
        size_t used;
        const char *why = NULL;
        int rc = rlog_record_decode(data + off, size - off, &r, &used, &why);
        if (rc != RLOG_DEC_OK) {
            assert(rc == RLOG_DEC_SHORT || why != NULL);
            break;
        }
        assert(used <= size - off);
        uint8_t *again = malloc(used);
        size_t n = rlog_record_encode(&r, again, used);
        assert(n == used && memcmp(again, data + off, used) == 0);
        (void)n;
        free(again);
        off += used;
    }
    return 0;
}

size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    size_t off = 0;
    for (unsigned k = 0; k < 1 + i % 4; k++) {
        rlog_record_t r = {.type = (uint8_t)(1 + (i + k) % 4), /* DROP too */
                           .group = i,
                           .term = k + 1,
                           .index = i + k,
                           .commit = 7,
                           .etype = 0,
                           .data = (const uint8_t *)"payload-bytes",
                           .len = (i + k) % 4 == 3 ? 0 : (i + k) % 14};
        size_t n = rlog_record_encode(&r, buf + off, cap - off);
        if (n == 0)
            break;
        off += n;
    }
    return off;
}
