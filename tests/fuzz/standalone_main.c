/* standalone_main.c - runs a libFuzzer target without libFuzzer, so every build exercises
 * the decoders: `fuzz_x N` feeds N inputs, `fuzz_x FILE...` feeds files (crash repro).
 *
 * Inputs are random bytes, and, when the target defines shoal_fuzz_seed(), valid
 * encodings from it with random byte flips, truncations and splices: pure noise rarely
 * gets past the first check of a decoder, mutated valid input reaches the deep paths.
 * The run is seeded from SHOAL_FUZZ_SEED (default 1) and prints the seed on start. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: writes the i-th valid sample into buf (cap bytes); returns its length. */
__attribute__((weak)) size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static size_t mutate(uint8_t *buf, size_t n, size_t cap)
{
    unsigned edits = 1 + rnd() % 4;
    for (unsigned e = 0; e < edits && n > 0; e++) {
        switch (rnd() % 4) {
        case 0: buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8)); break;
        case 1: buf[rnd() % n] = (uint8_t)rnd(); break;
        case 2: n = rnd() % (n + 1); break;
        default:
            if (n < cap)
                buf[n++] = (uint8_t)rnd();
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *s = getenv("SHOAL_FUZZ_SEED");
    rng_state = s ? strtoull(s, NULL, 10) : 1;
    if (!rng_state)
        rng_state = 1;
    if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9') {
        long iters = atol(argv[1]);
        static uint8_t buf[1 << 16];
        fprintf(stderr, "%s: %ld inputs, SHOAL_FUZZ_SEED=%llu\n", argv[0], iters,
                (unsigned long long)rng_state);
        for (long i = 0; i < iters; i++) {
            size_t n;
            if (shoal_fuzz_seed && (i % 4) != 0) {
                n = shoal_fuzz_seed((unsigned)rnd(), buf, sizeof buf);
                n = mutate(buf, n, sizeof buf);
            } else {
                n = rnd() % 512;
                for (size_t j = 0; j < n; j++)
                    buf[j] = (uint8_t)rnd();
            }
            LLVMFuzzerTestOneInput(buf, n);
        }
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (run_file(argv[i]))
            return 1;
    return 0;
}
