/* test_shoal_header.c - the installed <shoal.h> alone is enough to use the SHOAL_E... codes
 * libshoal returns (this file includes nothing else of Shoal's), and its copy of them has
 * engine/error.h's values: shoal_header_codes.c, which includes only engine/error.h, lists
 * those, and this compares the two. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/shoal.h"

extern const int engine_codes[];
extern const size_t n_engine_codes;

static const int public_codes[] = {
    SHOAL_OK,      SHOAL_EIO,       SHOAL_ECORRUPT,   SHOAL_EINVAL,    SHOAL_ENOTFOUND,
    SHOAL_ENOMEM,  SHOAL_EBUSY,     SHOAL_ENOTLEADER, SHOAL_ETIMEDOUT, SHOAL_EEXIST,
    SHOAL_ECLOSED, SHOAL_ETOOLARGE, SHOAL_ECOMPARE,   SHOAL_EUNAVAIL,  SHOAL_ENOSPC,
};

static void test_codes_match(void **state)
{
    (void)state;
    assert_int_equal(sizeof public_codes / sizeof *public_codes, n_engine_codes);
    for (size_t i = 0; i < n_engine_codes; i++)
        assert_int_equal(public_codes[i], engine_codes[i]);
    assert_string_equal(shoal_strerror(SHOAL_EBUSY), shoal_strerror(engine_codes[6]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_codes_match)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
