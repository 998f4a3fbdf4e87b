/* errlog.h - where the engine writes the detail of a failure (one line: what, which file,
 * which offset) for lsm_last_error(); each database has one, shared by its tables, WAL and
 * manifest code. A NULL log is allowed (the fuzz targets and unit tests pass one). */
#ifndef SHOAL_LSM_ERRLOG_H
#define SHOAL_LSM_ERRLOG_H

#include <pthread.h>
#include <stdint.h>

typedef struct {
    pthread_mutex_t mu;
    char msg[512];
} lsm_errlog_t;

void lsm_errlog_init(lsm_errlog_t *l);
void lsm_errlog_destroy(lsm_errlog_t *l);
/* Records the message; returns code, so callers can write `return lsm_err(l, rc, ...)`. */
int lsm_err(lsm_errlog_t *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "corruption in FILE at offset OFF: WHAT"; returns SHOAL_ECORRUPT. */
int lsm_corrupt(lsm_errlog_t *l, const char *file, uint64_t off, const char *what);
void lsm_errlog_copy(lsm_errlog_t *l, char *buf, size_t cap);

#endif
