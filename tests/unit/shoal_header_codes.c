/* shoal_header_codes.c - engine/error.h's codes, in the order test_shoal_header.c lists
 * shoal.h's (this file must not include shoal.h: both define them). */
#include <stddef.h>

#include "engine/error.h"

const int engine_codes[] = {
    SHOAL_OK,      SHOAL_EIO,       SHOAL_ECORRUPT,   SHOAL_EINVAL,    SHOAL_ENOTFOUND,
    SHOAL_ENOMEM,  SHOAL_EBUSY,     SHOAL_ENOTLEADER, SHOAL_ETIMEDOUT, SHOAL_EEXIST,
    SHOAL_ECLOSED, SHOAL_ETOOLARGE, SHOAL_ECOMPARE,   SHOAL_EUNAVAIL,  SHOAL_ENOSPC,
};
const size_t n_engine_codes = sizeof engine_codes / sizeof *engine_codes;
