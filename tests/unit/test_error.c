/* test_error.c - every error code has its own name, and unknown codes do not crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "engine/checksum.h"
#include "engine/error.h"

static void test_names_are_distinct(void **state)
{
    for (int a = SHOAL_ENOSPC; a <= 0; a++)
        for (int b = a + 1; b <= 0; b++)
            assert_string_not_equal(shoal_strerror(a), shoal_strerror(b));
    assert_string_equal(shoal_strerror(12345), "unknown error");
}

static void test_checksum_sees_one_bit(void **state)
{
    char a[64] = "the quick brown fox", b[64];
    memcpy(b, a, sizeof a);
    b[3] ^= 1;
    assert_int_not_equal(shoal_checksum32(a, sizeof a), shoal_checksum32(b, sizeof b));
    assert_int_equal(shoal_checksum32(a, sizeof a), shoal_checksum32(a, sizeof a));
    assert_true(shoal_hash64_seed(a, 8, 1) != shoal_hash64_seed(a, 8, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_are_distinct),
        cmocka_unit_test(test_checksum_sees_one_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
