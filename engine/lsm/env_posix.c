/* env_posix.c - the real file system behind lsm_env_t (env.h): open/pread/write/fdatasync,
 * tables mapped read-only with mmap so a block read is a pointer, not a copy (one page
 * resident per fault, so the engine can bound what the mappings hold: mapres.h), logs
 * (LSM_OPEN_LOG) appended through a shared mapping (env_posix_log.c), and the database lock
 * taken with flock() so a second opener (another process, or the same process twice) cannot
 * open the same store.
 *
 * Stateless but for one userfaultfd per process (map_paged): the env is one static vtable;
 * each lsm_file_t owns its descriptor (and its mapping). Errors map errno to SHOAL_E* codes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "engine/error.h"
#include "engine/lsm/env.h"

#include "engine/lsm/env_posix_log.h"

struct lsm_file {
    int fd;
    void *map;
    size_t map_len;
    px_log_t *log; /* LSM_OPEN_LOG files: the mapped appender, NULL once it fell back */
};

static int err_of(int e)
{
    switch (e) {
    case ENOENT: return SHOAL_ENOTFOUND;
    case EEXIST: return SHOAL_EEXIST;
    case ENOMEM: return SHOAL_ENOMEM;
    case EAGAIN:
    case EACCES: return SHOAL_EBUSY;
    case ENOSPC:
    case EDQUOT: return SHOAL_ENOSPC; /* a full disk, named as such in the messages */
    default: return SHOAL_EIO;
    }
}

static int px_open(lsm_env_t *env, const char *path, int mode, lsm_file_t **out)
{
    int flags = O_CLOEXEC;
    if (mode == LSM_OPEN_READ)
        flags |= O_RDONLY;
    else if (mode == LSM_OPEN_WRITE)
        flags |= O_WRONLY | O_CREAT | O_TRUNC;
    else if (mode == LSM_OPEN_LOG)
        flags |= O_RDWR | O_CREAT | O_TRUNC; /* a shared writable mapping needs O_RDWR */
    else
        flags |= O_WRONLY | O_CREAT | O_APPEND;
    int fd = open(path, flags, 0644);
    if (fd < 0)
        return err_of(errno);
    lsm_file_t *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return SHOAL_ENOMEM;
    }
    f->fd = fd;
    if (mode == LSM_OPEN_LOG)
        f->log = px_log_new(fd); /* NULL: plain write()s, as for LSM_OPEN_WRITE */
    *out = f;
    return 0;
}

static int px_pread(lsm_file_t *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return err_of(errno);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int px_append(lsm_file_t *f, const void *buf, size_t n)
{
    if (f->log)
        return px_log_append(f->log, buf, n);
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return err_of(errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int px_sync(lsm_file_t *f)
{
    return fdatasync(f->fd) == 0 ? 0 : err_of(errno);
}

static int px_size(lsm_file_t *f, uint64_t *size)
{
    struct stat st;
    if (f->log) { /* the file runs on into space allocated ahead */
        *size = px_log_size(f->log);
        return 0;
    }
    if (fstat(f->fd, &st) != 0)
        return err_of(errno);
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_truncate(lsm_file_t *f, uint64_t size)
{
    if (f->log)
        return SHOAL_EINVAL; /* logs are append only */
    return ftruncate(f->fd, (off_t)size) == 0 ? 0 : err_of(errno);
}

/* One userfaultfd per process, in write-protect mode with WP_ASYNC (Linux 6.7+), opened on
 * the first map and kept: registering a mapping with it makes the kernel map one page per
 * fault there (no fault-around of 64 KiB, no whole large folio of up to 2 MiB), so what a
 * read makes resident is what mapres.h counted. Nothing else changes: the mappings are
 * read-only, so no write-protect fault ever reaches it. -1: not available here. */
static int uffd = -1;
static pthread_once_t uffd_once = PTHREAD_ONCE_INIT;

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

static void uffd_open(void)
{
    /* User-mode faults only: allowed without privileges (vm.unprivileged_userfaultfd=0). */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
    if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) != 0) {
        close(fd);
        fd = -1;
    }
    uffd = fd;
}

/* Maps size bytes of fd read-only, one page per fault (uffd_open), or NULL. Private: a
 * write-protect registration needs a mapping that may be written, and a private one that
 * never is reads the page cache's pages like a shared one. */
static void *map_paged(int fd, size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (uffd < 0 || page != 4096) /* mapres.h counts 4 KiB pages */
        return NULL;
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return NULL;
    struct uffdio_register r = {
        .range = {.start = (uintptr_t)m, .len = (size + page - 1) & ~(page - 1)},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(uffd, UFFDIO_REGISTER, &r) != 0) {
        munmap(m, size);
        return NULL;
    }
    return m;
}

static const char *px_map(lsm_file_t *f, uint64_t size)
{
    if (f->map)
        return f->map;
    if (size == 0 || size > SIZE_MAX)
        return NULL;
    void *m = map_paged(f->fd, (size_t)size);
    if (!m)
        return NULL;
    f->map = m;
    f->map_len = (size_t)size;
    return m;
}

/* MADV_DONTNEED on a private file mapping never written unmaps the pages; the page cache
 * keeps them. */
static void px_map_release(lsm_file_t *f, uint64_t off, uint64_t len)
{
    if (!f->map || off >= f->map_len)
        return;
    uint64_t start = off - off % (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t end = off + len > f->map_len ? f->map_len : off + len;
    madvise((char *)f->map + start, (size_t)(end - start), MADV_DONTNEED);
}

static void px_close(lsm_file_t *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    if (f->log)
        px_log_close(f->log);
    close(f->fd);
    free(f);
}

static int px_rename(lsm_env_t *env, const char *from, const char *to)
{
    return rename(from, to) == 0 ? 0 : err_of(errno);
}

static int px_remove(lsm_env_t *env, const char *path)
{
    return unlink(path) == 0 ? 0 : err_of(errno);
}

/* Creates path and any missing parents (mkdir -p). */
static int px_mkdir(lsm_env_t *env, const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return SHOAL_EINVAL;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return err_of(errno);
        *p = '/';
    }
    if (mkdir(buf, 0755) == 0 || errno == EEXIST)
        return 0;
    return err_of(errno);
}

static int px_rmdir(lsm_env_t *env, const char *path)
{
    return rmdir(path) == 0 ? 0 : err_of(errno);
}

static int px_list(lsm_env_t *env, const char *dir, int (*cb)(void *, const char *), void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_of(errno);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (cb(arg, e->d_name))
            break;
    }
    closedir(d);
    return 0;
}

static int px_exists(lsm_env_t *env, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : err_of(errno);
}

static int px_sync_dir(lsm_env_t *env, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_of(errno);
    int rc = fsync(fd) == 0 ? 0 : err_of(errno);
    close(fd);
    return rc;
}

static int px_lock(lsm_env_t *env, const char *path, lsm_file_t **out)
{
    int rc = px_open(env, path, LSM_OPEN_APPEND, out);
    if (rc)
        return rc;
    if (flock((*out)->fd, LOCK_EX | LOCK_NB) != 0) {
        px_close(*out);
        *out = NULL;
        return SHOAL_EBUSY;
    }
    return 0;
}

static lsm_env_t posix_env = {
    .open = px_open,
    .pread = px_pread,
    .append = px_append,
    .sync = px_sync,
    .size = px_size,
    .truncate = px_truncate,
    .map = px_map,
    .close = px_close,
    .rename = px_rename,
    .remove = px_remove,
    .mkdir = px_mkdir,
    .rmdir = px_rmdir,
    .list = px_list,
    .exists = px_exists,
    .sync_dir = px_sync_dir,
    .lock = px_lock,
    .map_release = px_map_release,
};

static void posix_init(void)
{
    uffd_open();
    /* No page-per-fault mapping here (or pages mapres.h would miscount): pread it is. */
    if (uffd < 0 || sysconf(_SC_PAGESIZE) != 4096)
        posix_env.map = NULL;
}

lsm_env_t *lsm_env_posix(void)
{
    pthread_once(&uffd_once, posix_init);
    return &posix_env;
}
