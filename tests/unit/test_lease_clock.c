/* test_lease_clock.c - the node's check that its Raft ticks kept up with real time before
 * it uses a tick-counted lease (actors/lease_clock.c): punctual ticks keep leases, a stall
 * or ticks that fall behind by more than the room the margin leaves drop them, and leases
 * are usable again once a whole window of punctual ticks follows. Times are passed in, so
 * nothing here waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actors/lease_clock.h"

/* tick 10 ms, election 20 ticks, margin 5, drift 20 ms: window 15 ticks, bound 170 ms */
static lease_clock_t *clock20(uint64_t start)
{
    lease_clock_t *lc = lease_clock_new(10, 20, 5, 20, start);
    assert_non_null(lc);
    return lc;
}

static void test_punctual_ticks_keep_the_lease(void **state)
{
    lease_clock_t *lc = clock20(1000);
    uint64_t t = 1000;
    for (int i = 0; i < 100; i++) {
        t += 10;
        lease_clock_tick(lc, t);
        assert_true(lease_clock_ok(lc, t + 9)); /* just before the next tick */
    }
    lease_clock_destroy(&lc);
    assert_null(lc);
}

static void test_stall_drops_until_a_window_passes(void **state)
{
    lease_clock_t *lc = clock20(0);
    uint64_t t = 0;
    for (int i = 0; i < 20; i++)
        lease_clock_tick(lc, t += 10);
    t += 500; /* SIGSTOP: the next tick comes half a second late */
    assert_false(lease_clock_ok(lc, t));
    lease_clock_tick(lc, t);
    for (int i = 0; i < 14; i++) {
        assert_false(lease_clock_ok(lc, t)); /* the stall is still inside the window */
        lease_clock_tick(lc, t += 10);
    }
    assert_true(lease_clock_ok(lc, t));
    lease_clock_destroy(&lc);
}

static void test_late_ticks_within_room_only(void **state)
{
    lease_clock_t *a = clock20(0), *b = clock20(0);
    uint64_t ta = 0, tb = 0;
    for (int i = 0; i < 30; i++) {
        lease_clock_tick(a, ta += 11); /* 1 ms late each: 14 ms behind over the window */
        lease_clock_tick(b, tb += 13); /* 3 ms late each: 42 ms behind, past the 20 ms room */
    }
    assert_true(lease_clock_ok(a, ta + 5));
    assert_false(lease_clock_ok(b, tb));
    lease_clock_destroy(&a);
    lease_clock_destroy(&b);
}

static void test_bad_arguments(void **state)
{
    assert_null(lease_clock_new(10, 20, 20, 0, 0));  /* no window left */
    assert_null(lease_clock_new(0, 20, 5, 0, 0));    /* no tick length */
    assert_null(lease_clock_new(10, 20, 5, 190, 0)); /* drift eats the followers' wait */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctual_ticks_keep_the_lease),
        cmocka_unit_test(test_stall_drops_until_a_window_passes),
        cmocka_unit_test(test_late_ticks_within_room_only),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
