/* env_posix_log.h - appends to a log file (LSM_OPEN_LOG) through a shared mapping, for the
 * posix env only (env_posix.c owns the descriptor and calls these).
 *
 * Why: a WAL append with write() was ~54% of a sequential fill's writer thread (perf: the
 * ext4 buffered-write path per call), and a record must reach the page cache before the put
 * returns (sync=false survives a process crash). A store into a MAP_SHARED page is in the
 * page cache as soon as it is made, and fdatasync writes those pages like written ones.
 *
 * How: space is allocated ahead with fallocate (so a store never meets ENOSPC, which
 * through a mapping would be SIGBUS), and the file is mapped one window at a time (so the
 * process keeps at most one window of the log resident). Close trims the file to the bytes
 * appended; after a crash it ends in zeros, which the log reader takes as its end. */
#ifndef SHOAL_LSM_ENV_POSIX_LOG_H
#define SHOAL_LSM_ENV_POSIX_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_log px_log_t;

/* NULL when the file system cannot allocate ahead (or no memory): then use write(). */
px_log_t *px_log_new(int fd);
int px_log_append(px_log_t *l, const void *buf, size_t n);
uint64_t px_log_size(const px_log_t *l);
/* Unmaps, trims the file to the bytes appended, frees l (the descriptor stays open). */
void px_log_close(px_log_t *l);

#endif
