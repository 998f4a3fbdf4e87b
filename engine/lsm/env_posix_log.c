/* env_posix_log.c - see env_posix_log.h. */
#define _GNU_SOURCE
#include "engine/lsm/env_posix_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/error.h"

/* A window of 1 MiB is ~9,000 100-byte puts per mmap/munmap/fallocate. Space is allocated
 * one window at a time: allocated blocks count in the store's size on disk (du), so a
 * bigger step (8 MiB was tried) shows as up to that much more disk per open WAL. */
#define WINDOW ((size_t)1 << 20)
#define PROBE 4096 /* allocated at open to learn whether this file system can */

struct px_log {
    int fd;
    char *win;        /* mapping of [win_off, win_off + WINDOW), or NULL */
    uint64_t win_off;
    uint64_t size;    /* bytes appended */
    uint64_t alloc;   /* bytes allocated (the file's length until close) */
};

static int alloc_ahead(px_log_t *l, uint64_t need)
{
    if (l->alloc >= need)
        return 0;
    if (fallocate(l->fd, 0, (off_t)l->alloc, (off_t)(need - l->alloc)) != 0)
        /* the write fails, as write() would; a full disk says so in the messages */
        return errno == ENOSPC || errno == EDQUOT ? SHOAL_ENOSPC : SHOAL_EIO;
    l->alloc = need;
    return 0;
}

/* Cuts the file to the bytes appended. A failure only leaves zeros past them, which the log
 * reader takes as the end, so it is not reported. */
static void trim(px_log_t *l)
{
    if (ftruncate(l->fd, (off_t)l->size) != 0)
        return;
}

px_log_t *px_log_new(int fd)
{
    px_log_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->fd = fd;
    if (alloc_ahead(l, PROBE) != 0) { /* e.g. EOPNOTSUPP: no allocation ahead here */
        trim(l); /* in case it allocated part: plain appends start at 0 */
        free(l);
        return NULL;
    }
    return l;
}

/* Maps the window that starts at the current end (windows are contiguous, so the end of a
 * full one is the start of the next, and it is WINDOW-aligned as mmap needs). */
static int next_window(px_log_t *l)
{
    if (l->win)
        munmap(l->win, WINDOW);
    l->win = NULL;
    l->win_off = l->size;
    int rc = alloc_ahead(l, l->win_off + WINDOW);
    if (rc)
        return rc;
    void *m = mmap(NULL, WINDOW, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, (off_t)l->win_off);
    if (m == MAP_FAILED)
        return errno == ENOMEM ? SHOAL_ENOMEM : SHOAL_EIO;
    l->win = m;
    return 0;
}

int px_log_append(px_log_t *l, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        if (!l->win || l->size == l->win_off + WINDOW) {
            int rc = next_window(l);
            if (rc)
                return rc;
        }
        size_t room = (size_t)(l->win_off + WINDOW - l->size);
        size_t k = n < room ? n : room;
        memcpy(l->win + (l->size - l->win_off), p, k);
        l->size += k;
        p += k;
        n -= k;
    }
    return 0;
}

uint64_t px_log_size(const px_log_t *l)
{
    return l->size;
}

void px_log_close(px_log_t *l)
{
    if (l->win)
        munmap(l->win, WINDOW);
    trim(l);
    free(l);
}
