/* error.c - names for the codes of error.h. */
#include "engine/error.h"

const char *shoal_strerror(int code)
{
    switch (code) {
    case SHOAL_OK: return "ok";
    case SHOAL_EIO: return "I/O error";
    case SHOAL_ECORRUPT: return "corruption detected";
    case SHOAL_EINVAL: return "invalid argument";
    case SHOAL_ENOTFOUND: return "not found";
    case SHOAL_ENOMEM: return "out of memory";
    case SHOAL_EBUSY: return "busy";
    case SHOAL_ENOTLEADER: return "not leader";
    case SHOAL_ETIMEDOUT: return "timed out";
    case SHOAL_EEXIST: return "already exists";
    case SHOAL_ECLOSED: return "closed";
    case SHOAL_ETOOLARGE: return "too large";
    case SHOAL_ECOMPARE: return "compare failed";
    case SHOAL_EUNAVAIL: return "unavailable";
    case SHOAL_ENOSPC: return "No space left on device";
    default: return "unknown error";
    }
}
