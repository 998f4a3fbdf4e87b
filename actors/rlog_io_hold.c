/* rlog_io_hold.c - the power-cut I/O table of the Raft log (rlog_io_hold.h).
 *
 * Each file written through it has a list of the writes and truncations made since its
 * last sync, in order, and its size as the process sees it. A read takes the real file's
 * bytes and replays the list over them; sync replays the list onto the real file, then
 * fdatasyncs. Writes that continue the previous one (the log's appends, its zeros written
 * ahead) are merged into it, so the list stays short. A file closed unsynced keeps its list
 * (by path) for the next open; unlink drops it. One mutex guards everything: the log's I/O
 * comes from its actor and, for reads, the node's thread. */
#include "actors/rlog_io_hold.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t off;
    size_t len;
    uint8_t *data; /* NULL: a truncation to off */
} hold_op_t;

typedef struct hold_file {
    char *path;
    int fd;        /* -1 once closed */
    uint64_t size; /* as the process sees it */
    hold_op_t *ops;
    size_t nops, capops;
    struct hold_file *next;
} hold_file_t;

typedef struct {
    rlog_io_t io;
    const rlog_io_t *base;
    pthread_mutex_t mu;
    hold_file_t *files;
} hold_t;

static hold_t hold; /* the process's one table (rlog_io_hold.h) */

bool unsynced_hold_on(void)
{
    const char *v = getenv(UNSYNCED_ENV);
    return v && strcmp(v, "hold") == 0;
}

static hold_file_t **find(bool by_path, const char *path, int fd)
{
    hold_file_t **p = &hold.files;
    while (*p && (by_path ? strcmp((*p)->path, path) != 0 : (*p)->fd != fd))
        p = &(*p)->next;
    return p;
}

static void clear_ops(hold_file_t *f)
{
    for (size_t i = 0; i < f->nops; i++)
        free(f->ops[i].data);
    f->nops = 0;
}

static void drop(hold_file_t **p)
{
    hold_file_t *f = *p;
    *p = f->next;
    clear_ops(f);
    free(f->ops);
    free(f->path);
    free(f);
}

static int add_op(hold_file_t *f, uint64_t off, const void *buf, size_t len)
{
    hold_op_t *last = f->nops ? &f->ops[f->nops - 1] : NULL;
    if (buf && last && last->data && last->off + last->len == off) { /* an append: merge */
        uint8_t *d = realloc(last->data, last->len + len);
        if (!d)
            return -ENOMEM;
        memcpy(d + last->len, buf, len);
        last->data = d;
        last->len += len;
        return 0;
    }
    if (f->nops == f->capops) {
        size_t cap = f->capops ? f->capops * 2 : 8;
        hold_op_t *o = realloc(f->ops, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        f->ops = o;
        f->capops = cap;
    }
    uint8_t *d = NULL;
    if (buf && !(d = malloc(len ? len : 1)))
        return -ENOMEM;
    if (buf)
        memcpy(d, buf, len);
    f->ops[f->nops++] = (hold_op_t){off, len, d};
    return 0;
}

static int hd_open(void *ctx, const char *path, bool create)
{
    int fd = hold.base->open(hold.base->ctx, path, create);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&hold.mu);
    hold_file_t *f = *find(true, path, -1);
    if (f) { /* closed unsynced, open again: its writes are still there */
        f->fd = fd;
    } else if ((f = calloc(1, sizeof *f)) && (f->path = strdup(path))) {
        int64_t sz = hold.base->size(hold.base->ctx, fd);
        f->fd = fd;
        f->size = sz > 0 ? (uint64_t)sz : 0;
        f->next = hold.files;
        hold.files = f;
    } else {
        free(f);
        hold.base->close(hold.base->ctx, fd);
        fd = -ENOMEM;
    }
    pthread_mutex_unlock(&hold.mu);
    return fd;
}

static ssize_t hd_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&hold.mu);
    hold_file_t *f = *find(false, NULL, fd);
    int rc = f ? add_op(f, off, buf, len) : -EBADF;
    if (rc == 0 && off + len > f->size)
        f->size = off + len;
    pthread_mutex_unlock(&hold.mu);
    return rc ? rc : (ssize_t)len;
}

/* The real file's bytes, then every held write and truncation over them, in order. */
static ssize_t hd_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&hold.mu);
    hold_file_t *f = *find(false, NULL, fd);
    ssize_t n = -EBADF;
    if (f) {
        len = off >= f->size ? 0 : f->size - off < len ? (size_t)(f->size - off) : len;
        n = hold.base->pread(hold.base->ctx, fd, buf, len, off);
    }
    if (n >= 0) {
        memset((uint8_t *)buf + n, 0, len - (size_t)n); /* past the real end: zeros */
        uint64_t end = off + len;
        for (size_t i = 0; i < f->nops; i++) {
            const hold_op_t *o = &f->ops[i];
            uint64_t from = o->off > off ? o->off : off;
            uint64_t to = !o->data ? end : o->off + o->len < end ? o->off + o->len : end;
            if (from >= to)
                continue;
            if (o->data)
                memcpy((uint8_t *)buf + (from - off), o->data + (from - o->off), to - from);
            else
                memset((uint8_t *)buf + (from - off), 0, to - from);
        }
        n = (ssize_t)len;
    }
    pthread_mutex_unlock(&hold.mu);
    return n;
}

static int hd_sync(void *ctx, int fd)
{
    pthread_mutex_lock(&hold.mu);
    hold_file_t *f = *find(false, NULL, fd);
    int rc = f ? 0 : -EBADF;
    for (size_t i = 0; rc == 0 && f && i < f->nops; i++) {
        const hold_op_t *o = &f->ops[i];
        if (o->data) {
            ssize_t w = hold.base->pwrite(hold.base->ctx, fd, o->data, o->len, o->off);
            rc = w < 0 ? (int)w : w != (ssize_t)o->len ? -EIO : 0;
        } else {
            rc = hold.base->truncate(hold.base->ctx, fd, o->off);
        }
    }
    if (f)
        clear_ops(f);
    pthread_mutex_unlock(&hold.mu);
    return rc ? rc : hold.base->sync(hold.base->ctx, fd);
}

static int hd_truncate(void *ctx, int fd, uint64_t len)
{
    pthread_mutex_lock(&hold.mu);
    hold_file_t *f = *find(false, NULL, fd);
    int rc = f ? add_op(f, len, NULL, 0) : -EBADF;
    if (rc == 0)
        f->size = len;
    pthread_mutex_unlock(&hold.mu);
    return rc;
}

static int64_t hd_size(void *ctx, int fd)
{
    pthread_mutex_lock(&hold.mu);
    hold_file_t *f = *find(false, NULL, fd);
    int64_t sz = f ? (int64_t)f->size : -EBADF;
    pthread_mutex_unlock(&hold.mu);
    return sz;
}

static int hd_close(void *ctx, int fd)
{
    pthread_mutex_lock(&hold.mu);
    hold_file_t **p = find(false, NULL, fd);
    if (*p && (*p)->nops == 0)
        drop(p);
    else if (*p)
        (*p)->fd = -1; /* unsynced: kept for the next open of the path */
    pthread_mutex_unlock(&hold.mu);
    return hold.base->close(hold.base->ctx, fd);
}

static int hd_unlink(void *ctx, const char *path)
{
    pthread_mutex_lock(&hold.mu);
    int rc = hold.base->unlink(hold.base->ctx, path);
    hold_file_t **p = find(true, path, -1);
    if (rc == 0 && *p)
        drop(p);
    pthread_mutex_unlock(&hold.mu);
    return rc;
}

static int hd_sync_dir(void *ctx, const char *dir)
{
    return hold.base->sync_dir(hold.base->ctx, dir);
}

static pthread_once_t hold_once = PTHREAD_ONCE_INIT;

static void hold_init(void)
{
    hold.io = (rlog_io_t){NULL,        hd_open, hd_pwrite, hd_pread,  hd_sync,
                          hd_truncate, hd_size, hd_close,  hd_unlink, hd_sync_dir};
    hold.base = rlog_io_posix();
    pthread_mutex_init(&hold.mu, NULL);
}

const rlog_io_t *rlog_io_hold(void)
{
    pthread_once(&hold_once, hold_init);
    return &hold.io;
}

uint64_t rlog_io_hold_unsynced(void)
{
    uint64_t sum = 0;
    rlog_io_hold();
    pthread_mutex_lock(&hold.mu);
    for (hold_file_t *f = hold.files; f; f = f->next)
        for (size_t i = 0; i < f->nops; i++)
            sum += f->ops[i].len;
    pthread_mutex_unlock(&hold.mu);
    return sum;
}
