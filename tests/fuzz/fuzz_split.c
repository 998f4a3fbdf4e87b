/* fuzz_split.c - fuzz target for the decoders of add-shard by split: a source's stored
 * fence (`m/fence`, actors/split_fence.c), a target's first configuration (`m/splitconf`,
 * actors/split.c) and a SPLIT command as a replica checks it (actors/split_cmd.c). The
 * first input byte picks one; any bytes are refused with one line or decode to something
 * every query answers; never a crash. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "actors/split_cmd.h"
#include "actors/split_fence.h"
#include "engine/error.h"
#include "engine/lsm/env.h"
#include "engine/ring.h"

static lsm_t *db(void)
{
    static lsm_t *lsm;
    if (!lsm) {
        lsm_options_t o;
        lsm_options_init(&o);
        o.env = lsm_env_mem_new();
        o.dir = "/fuzz";
        char err[256];
        if (lsm_open(&o, &lsm, err, sizeof err) != 0)
            abort();
    }
    return lsm;
}

static void fence(const uint8_t *v, size_t len)
{
    if (lsm_put(db(), NULL, SPLIT_FENCE_KEY, strlen(SPLIT_FENCE_KEY), v, len) != 0)
        abort();
    split_fence_t *f = NULL;
    char err[256] = "";
    int rc = split_fence_load(db(), 3, &f, err, sizeof err);
    if (rc) {
        assert(rc == SHOAL_ECORRUPT && !f && err[0] && !strchr(err, '\n'));
        return;
    }
    assert(f);
    uint32_t to = 0;
    for (int i = 0; i < 8; i++) {
        char k[8] = {'k', (char)i};
        if (split_fence_key(f, (const uint8_t *)k, 2, &to) && to == 3)
            abort(); /* a moved key never names the source */
    }
    (void)split_fence_has(f, 9);
    (void)split_fence_version(f);
    split_fence_destroy(&f);
}

static void splitconf(const uint8_t *v, size_t len)
{
    if (lsm_put(db(), NULL, "m/splitconf", 11, v, len) != 0)
        abort();
    uint64_t voters[64];
    size_t n = 99;
    if (split_target_conf(db(), voters, 64, &n))
        assert(n >= 1 && n <= 64);
    else
        assert(n == 0);
}

static void command(const uint8_t *v, size_t len)
{
    Shoal__WriteCommand *c = shoal__write_command__unpack(NULL, len, v);
    if (!c)
        return;
    if (c->op_case == SHOAL__WRITE_COMMAND__OP_SPLIT) {
        split_t sp;
        char err[256] = "";
        if (split_cmd_check(c->split, 3, 7, &sp, err, sizeof err) == 0) {
            ring_t *r = split_ring(&sp); /* a checked command always makes a ring */
            if (!r)
                abort();
            (void)split_cmd_fenced(r, sp.target, c);
            ring_destroy(&r);
        } else {
            assert(err[0] && !strchr(err, '\n'));
        }
    }
    shoal__write_command__free_unpacked(c, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: fence(data + 1, size - 1); break;
    case 1: splitconf(data + 1, size - 1); break;
    default: command(data + 1, size - 1);
    }
    return 0;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Valid samples: a fence of 4 kept and 4 given points, a configuration of 3 voters. */
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    if (cap < 1 + 17 + 4 * 8 + 4 * 12)
        return 0;
    if (i % 2 == 0) {
        buf[0] = 0;
        uint8_t *p = buf + 1;
        p[0] = 1;
        put_le(p + 1, 5, 8);
        put_le(p + 9, 4, 4);
        put_le(p + 13, 4, 4);
        p += 17;
        for (uint64_t k = 0; k < 4; k++, p += 8)
            put_le(p, (2 * k + 1) << 60, 8);
        for (uint64_t k = 0; k < 4; k++, p += 12) {
            put_le(p, (2 * k + 2) << 59, 8);
            put_le(p + 8, 9, 4);
        }
        return (size_t)(p - buf);
    }
    buf[0] = 1;
    put_le(buf + 1, 3, 4);
    for (int k = 0; k < 3; k++)
        put_le(buf + 5 + 8 * k, (uint64_t)k, 8);
    return 5 + 24;
}
