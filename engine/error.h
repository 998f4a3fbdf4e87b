/* error.h - the error codes every part of Shoal returns: 0 is success, negative is failure.
 * Functions that fail on input or I/O return one of these and never abort. */
#ifndef SHOAL_ERROR_H
#define SHOAL_ERROR_H

enum {
    SHOAL_OK = 0,
    SHOAL_EIO = -1,      /* the OS failed a read, write or sync */
    SHOAL_ECORRUPT = -2, /* a checksum or a format check failed */
    SHOAL_EINVAL = -3,   /* bad argument or malformed input */
    SHOAL_ENOTFOUND = -4,
    SHOAL_ENOMEM = -5,
    SHOAL_EBUSY = -6, /* try again: stalled, pending change, locked */
    SHOAL_ENOTLEADER = -7,
    SHOAL_ETIMEDOUT = -8,
    SHOAL_EEXIST = -9,
    SHOAL_ECLOSED = -10,
    SHOAL_ETOOLARGE = -11,
    SHOAL_ECOMPARE = -12, /* compare-and-swap mismatch */
    SHOAL_EUNAVAIL = -13, /* no quorum, no leader, node down */
    SHOAL_ENOSPC = -14,   /* the OS failed a write: the disk is full (ENOSPC, EDQUOT); as
                           * fatal as SHOAL_EIO wherever that is, only named apart */
};

/* A static, human string for a code; never NULL. */
const char *shoal_strerror(int code);

#endif
