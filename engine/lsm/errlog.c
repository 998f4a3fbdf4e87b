/* errlog.c - see errlog.h. */
#include "engine/lsm/errlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/error.h"

void lsm_errlog_init(lsm_errlog_t *l)
{
    pthread_mutex_init(&l->mu, NULL);
    l->msg[0] = '\0';
}

void lsm_errlog_destroy(lsm_errlog_t *l)
{
    pthread_mutex_destroy(&l->mu);
}

int lsm_err(lsm_errlog_t *l, int code, const char *fmt, ...)
{
    if (!l)
        return code;
    char tmp[sizeof l->msg];
    int n = snprintf(tmp, sizeof tmp, "%s: ", shoal_strerror(code));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp + n, sizeof tmp - (size_t)n, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&l->mu);
    memcpy(l->msg, tmp, sizeof tmp);
    pthread_mutex_unlock(&l->mu);
    return code;
}

int lsm_corrupt(lsm_errlog_t *l, const char *file, uint64_t off, const char *what)
{
    return lsm_err(l, SHOAL_ECORRUPT, "%s at offset %llu: %s", file, (unsigned long long)off,
                   what);
}

void lsm_errlog_copy(lsm_errlog_t *l, char *buf, size_t cap)
{
    if (!cap)
        return;
    pthread_mutex_lock(&l->mu);
    snprintf(buf, cap, "%s", l->msg);
    pthread_mutex_unlock(&l->mu);
}
