/* rlog_io.c - the POSIX file operations of the durable log and a fault-injecting wrapper
 * for tests; see rlog_io.h.
 *
 * The fault wrapper keeps, per path, the length that the last sync made durable and the
 * lowest offset written since. It never buffers data itself: writes go to the real file at
 * once, and a "crash" afterwards truncates the files to their durable length and zeroes
 * what was written since the last sync below it (the log writes there only into zeros it
 * wrote ahead), which is what survives a power cut. */
#include "actors/rlog_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int px_open(void *ctx, const char *path, bool create)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    return fd < 0 ? -errno : fd;
}

static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static ssize_t px_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int px_sync(void *ctx, int fd)
{
    return fdatasync(fd) == 0 ? 0 : -errno;
}

static int px_truncate(void *ctx, int fd, uint64_t len)
{
    return ftruncate(fd, (off_t)len) == 0 ? 0 : -errno;
}

static int64_t px_size(void *ctx, int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    return end < 0 ? -errno : (int64_t)end;
}

static int px_close(void *ctx, int fd)
{
    return close(fd) == 0 ? 0 : -errno;
}

static int px_unlink(void *ctx, const char *path)
{
    return unlink(path) == 0 ? 0 : -errno;
}

static int px_sync_dir(void *ctx, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static const rlog_io_t posix_io = {NULL,        px_open, px_pwrite, px_pread,  px_sync,
                                   px_truncate, px_size, px_close,  px_unlink, px_sync_dir};

const rlog_io_t *rlog_io_posix(void)
{
    return &posix_io;
}

/* ---- fault wrapper ---------------------------------------------------------------- */

#define FAULT_MAX_FILES 4096

typedef struct {
    char *path;
    int fd;              /* -1 when closed */
    uint64_t synced;     /* durable length */
    uint64_t dirty_from; /* lowest offset written since the last sync (UINT64_MAX: none) */
} fault_file_t;

typedef struct {
    fault_file_t files[FAULT_MAX_FILES];
    size_t n;
    uint64_t syncs;
} fault_t;

static fault_file_t *fault_by_fd(fault_t *f, int fd)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->files[i].fd == fd)
            return &f->files[i];
    return NULL;
}

static int ft_open(void *ctx, const char *path, bool create)
{
    fault_t *f = ctx;
    int fd = px_open(NULL, path, create);
    if (fd < 0)
        return fd;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->files[i].path, path) == 0) {
            f->files[i].fd = fd;
            return fd;
        }
    if (f->n == FAULT_MAX_FILES) {
        close(fd);
        return -EMFILE;
    }
    /* A file that existed before the wrapper saw it counts as fully durable. */
    int64_t sz = px_size(NULL, fd);
    f->files[f->n++] = (fault_file_t){strdup(path), fd, sz > 0 ? (uint64_t)sz : 0, UINT64_MAX};
    return fd;
}

static ssize_t ft_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    fault_file_t *ff = fault_by_fd(ctx, fd);
    if (ff && off < ff->dirty_from)
        ff->dirty_from = off;
    return px_pwrite(NULL, fd, buf, len, off);
}

static int ft_sync(void *ctx, int fd)
{
    fault_t *f = ctx;
    f->syncs++;
    fault_file_t *ff = fault_by_fd(f, fd);
    int64_t sz = px_size(NULL, fd);
    if (ff && sz >= 0) {
        ff->synced = (uint64_t)sz;
        ff->dirty_from = UINT64_MAX;
    }
    return px_sync(NULL, fd);
}

static int ft_truncate(void *ctx, int fd, uint64_t len)
{
    fault_file_t *ff = fault_by_fd(ctx, fd);
    /* Truncation is metadata: treat it as durable at once, never growing the durable part. */
    if (ff && ff->synced > len)
        ff->synced = len;
    return px_truncate(NULL, fd, len);
}

static int ft_close(void *ctx, int fd)
{
    fault_file_t *ff = fault_by_fd(ctx, fd);
    if (ff)
        ff->fd = -1;
    return px_close(NULL, fd);
}

static int ft_unlink(void *ctx, const char *path)
{
    fault_t *f = ctx;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->files[i].path, path) == 0) {
            free(f->files[i].path);
            f->files[i] = f->files[--f->n];
            break;
        }
    return px_unlink(NULL, path);
}

static int ft_sync_dir(void *ctx, const char *dir)
{
    ((fault_t *)ctx)->syncs++;
    return px_sync_dir(NULL, dir);
}

rlog_io_t *rlog_io_fault_new(void)
{
    rlog_io_t *io = calloc(1, sizeof *io);
    fault_t *f = calloc(1, sizeof *f);
    if (!io || !f) {
        free(io);
        free(f);
        return NULL;
    }
    *io = posix_io;
    io->ctx = f;
    io->open = ft_open;
    io->pwrite = ft_pwrite;
    io->sync = ft_sync;
    io->truncate = ft_truncate;
    io->close = ft_close;
    io->unlink = ft_unlink;
    io->sync_dir = ft_sync_dir;
    return io;
}

void rlog_io_fault_destroy(rlog_io_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fault_t *f = (*self_p)->ctx;
    for (size_t i = 0; i < f->n; i++)
        free(f->files[i].path);
    free(f);
    free(*self_p);
    *self_p = NULL;
}

static void zero_range(int fd, uint64_t from, uint64_t to)
{
    static const uint8_t zero[4096];
    for (uint64_t off = from; off < to;) {
        size_t len = to - off < sizeof zero ? (size_t)(to - off) : sizeof zero;
        px_pwrite(NULL, fd, zero, len, off);
        off += len;
    }
}

void rlog_io_fault_crash(rlog_io_t *io, size_t torn_bytes, unsigned seed)
{
    fault_t *f = io->ctx;
    for (size_t i = 0; i < f->n; i++) {
        int fd = px_open(NULL, f->files[i].path, false);
        if (fd < 0)
            continue;
        fault_file_t *ff = &f->files[i];
        int64_t sz = px_size(NULL, fd);
        if (sz < 0) {
            close(fd);
            continue;
        }
        uint64_t lost_from = ff->synced;
        if ((uint64_t)sz > ff->synced)
            px_truncate(NULL, fd, ff->synced);
        /* writes below the durable length went into zeros written (and synced) ahead:
         * those bytes read as zeros again */
        if (ff->dirty_from < ff->synced) {
            lost_from = ff->dirty_from;
            zero_range(fd, lost_from, ff->synced);
        }
        uint64_t end = (uint64_t)sz > ff->synced ? (uint64_t)sz : ff->synced;
        size_t lost = (size_t)(end - lost_from);
        size_t torn = torn_bytes < lost ? torn_bytes : lost;
        for (size_t k = 0; k < torn; k++) {
            seed = seed * 1103515245u + 12345u;
            uint8_t b = (uint8_t)(seed >> 16);
            px_pwrite(NULL, fd, &b, 1, lost_from + k);
        }
        ff->dirty_from = UINT64_MAX;
        close(fd);
    }
}

uint64_t rlog_io_fault_syncs(rlog_io_t *io)
{
    return ((fault_t *)io->ctx)->syncs;
}
