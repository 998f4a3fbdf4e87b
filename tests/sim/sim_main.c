/* sim_main.c - runs the Raft simulator over a range of seeds.
 *
 *   raft_sim [--seeds N] [--start S]      N seeds from S (default 500 from 1)
 *   raft_sim --seed S --verbose           replay one seed with a trace on stderr
 *   raft_sim_buggy --bug B --expect WHAT --seeds N
 *                                         the planted-bug self-test: succeeds only if some
 *                                         seed of the N reports a violation containing WHAT
 * SHOAL_SIM_SEEDS in the environment caps N (the sanitizer build runs fewer seeds).
 * A failing seed is printed with the command that replays it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/sim/sim.h"

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    sim_options_t opt = {.fault_ticks = 3000, .settle_ticks = 500};
    uint64_t start = 1, count = 500;
    bool expect_violation = false;
    const char *expect = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--seeds"))
            count = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--start"))
            start = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--seed"))
            start = strtoull(v, NULL, 10), count = 1, i++;
        else if (!strcmp(a, "--bug"))
            opt.planted_bug = atoi(v), i++;
        else if (!strcmp(a, "--fault-ticks"))
            opt.fault_ticks = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--verbose"))
            opt.verbose = true;
        else if (!strcmp(a, "--expect-violation"))
            expect_violation = true;
        else if (!strcmp(a, "--expect"))
            expect = v, expect_violation = true, i++;
        else {
            fprintf(stderr,
                    "usage: %s [--seeds N] [--start S] [--seed S] [--verbose] "
                    "[--fault-ticks T] [--bug B --expect-violation]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *cap = getenv("SHOAL_SIM_SEEDS");
    if (cap && strtoull(cap, NULL, 10) > 0 && strtoull(cap, NULL, 10) < count)
        count = strtoull(cap, NULL, 10);
    double t0 = seconds();
    sim_result_t tot = {0}, res;
    uint64_t failed = 0;
    for (uint64_t seed = start; seed < start + count; seed++) {
        opt.seed = seed;
        if (!sim_run(&opt, &res)) {
            bool wanted = expect_violation && strstr(res.what, expect);
            failed += !expect_violation || wanted;
            printf("%s seed %llu: %s (tick %llu)\n  replay: %s --seed %llu --verbose",
                   wanted             ? "caught:"
                   : expect_violation ? "other:"
                                      : "FAIL",
                   (unsigned long long)seed, res.what, (unsigned long long)res.tick, argv[0],
                   (unsigned long long)seed);
            if (opt.planted_bug)
                printf(" --bug %d", opt.planted_bug);
            printf("\n");
            if (wanted)
                break;
        }
        tot.elections += res.elections;
        tot.commits += res.commits;
        tot.acked_writes += res.acked_writes;
        tot.reads += res.reads;
        tot.snapshots_sent += res.snapshots_sent;
        tot.conf_changes += res.conf_changes;
        tot.transfers += res.transfers;
        tot.crashes += res.crashes;
        if (res.settle_ticks > tot.settle_ticks)
            tot.settle_ticks = res.settle_ticks;
    }
    printf("raft_sim: %llu seeds from %llu in %.1f s, %llu failed; totals: %llu elections, "
           "%llu entries committed, %llu writes acked, %llu reads, %llu snapshots installed, "
           "%llu conf changes, %llu transfers, %llu crashes; slowest settle %llu ticks\n",
           (unsigned long long)count, (unsigned long long)start, seconds() - t0,
           (unsigned long long)failed, (unsigned long long)tot.elections,
           (unsigned long long)tot.commits, (unsigned long long)tot.acked_writes,
           (unsigned long long)tot.reads, (unsigned long long)tot.snapshots_sent,
           (unsigned long long)tot.conf_changes, (unsigned long long)tot.transfers,
           (unsigned long long)tot.crashes, (unsigned long long)tot.settle_ticks);
    if (expect_violation) {
        if (!failed)
            printf("planted bug %d was NOT caught (by \"%s\") in %llu seeds\n", opt.planted_bug,
                   expect, (unsigned long long)count);
        return failed ? 0 : 1;
    }
    return failed ? 1 : 0;
}
