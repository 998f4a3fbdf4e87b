/* env_hold.c - the power-cut env of the tests (env_hold.h): lsm_env_posix() with the bytes
 * appended to a file held in memory until the file is synced.
 *
 * The engine only appends (env.h), so what a file holds is its real file on disk (the
 * durable part, `durable` bytes long) followed by a tail of unsynced bytes in memory.
 * sync() writes the tail to the real file, then fdatasyncs it. The tail belongs to the path,
 * not to the handle (like the page cache belongs to the inode): a file closed unsynced keeps
 * its tail, a reader opened later sees it, rename carries it along, remove and a truncating
 * open drop it. A path's entry lives while a handle is open or its tail is not empty.
 *
 * Locks: `mu` guards the table of paths; each entry's rwlock its durable length and tail
 * (reads share it, append and sync take it alone). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lsm/env_hold.h"

typedef struct hold_node {
    char *path;
    pthread_rwlock_t lock;
    uint64_t durable; /* length of the real file */
    char *tail;       /* unsynced bytes after it */
    size_t tail_len, tail_cap;
    int refs;    /* open handles */
    bool listed; /* in the table (false once removed or replaced by a rename) */
    struct hold_node *next;
} hold_node_t;

struct lsm_file {
    lsm_env_t *base;
    lsm_file_t *inner;
    hold_node_t *node; /* NULL for the lock file */
};

typedef struct {
    lsm_env_t vt; /* first: the env pointer is the hold_env_t pointer */
    lsm_env_t *base;
    pthread_mutex_t mu;
    hold_node_t *nodes;
} hold_env_t;

static hold_env_t *env_of(lsm_env_t *env)
{
    return (hold_env_t *)env;
}

/* ---- the table of paths (under mu) ------------------------------------------------- */

static hold_node_t **find(hold_env_t *h, const char *path)
{
    hold_node_t **p = &h->nodes;
    while (*p && strcmp((*p)->path, path) != 0)
        p = &(*p)->next;
    return p;
}

static void node_free(hold_node_t *n)
{
    pthread_rwlock_destroy(&n->lock);
    free(n->path);
    free(n->tail);
    free(n);
}

/* Takes the node out of the table; freed now if no handle has it open. */
static void unlist(hold_env_t *h, const char *path)
{
    hold_node_t **p = find(h, path), *n = *p;
    if (!n)
        return;
    *p = n->next;
    n->listed = false;
    if (n->refs == 0)
        node_free(n);
}

/* The node of path with one more reference; a new one when none is listed or the listed
 * one does not match the real file (real_size is not its durable length: the file was
 * replaced behind the env's back). truncating: the open empties the file. */
static hold_node_t *attach(hold_env_t *h, const char *path, uint64_t real_size, bool truncating)
{
    hold_node_t *n = *find(h, path);
    if (n && !truncating && n->durable != real_size)
        unlist(h, path), n = NULL;
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n || !(n->path = strdup(path))) {
            free(n);
            return NULL;
        }
        pthread_rwlock_init(&n->lock, NULL);
        n->durable = real_size;
        n->listed = true;
        n->next = h->nodes;
        h->nodes = n;
    }
    if (truncating) {
        pthread_rwlock_wrlock(&n->lock);
        n->durable = 0;
        n->tail_len = 0;
        pthread_rwlock_unlock(&n->lock);
    }
    n->refs++;
    return n;
}

/* ---- files ------------------------------------------------------------------------- */

static int hd_open(lsm_env_t *env, const char *path, int mode, lsm_file_t **out)
{
    hold_env_t *h = env_of(env);
    bool truncating = mode == LSM_OPEN_WRITE || mode == LSM_OPEN_LOG;
    lsm_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return SHOAL_ENOMEM;
    f->base = h->base;
    /* a log is an ordinary append file here: no shared mapping that the kernel would keep */
    int rc = h->base->open(h->base, path, mode == LSM_OPEN_LOG ? LSM_OPEN_WRITE : mode, &f->inner);
    uint64_t real = 0;
    if (rc == 0)
        rc = h->base->size(f->inner, &real);
    if (rc == 0) {
        pthread_mutex_lock(&h->mu);
        f->node = attach(h, path, real, truncating);
        pthread_mutex_unlock(&h->mu);
        rc = f->node ? 0 : SHOAL_ENOMEM;
    }
    if (rc) {
        if (f->inner)
            h->base->close(f->inner);
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int hd_pread(lsm_file_t *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    hold_node_t *nd = f->node;
    size_t done = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&nd->lock);
    if (off < nd->durable) {
        size_t want = nd->durable - off < n ? (size_t)(nd->durable - off) : n;
        rc = f->base->pread(f->inner, off, buf, want, &done);
    }
    if (rc == 0 && done < n && off + done >= nd->durable) {
        uint64_t t = off + done - nd->durable; /* offset in the tail */
        if (t < nd->tail_len) {
            size_t k = nd->tail_len - t < n - done ? (size_t)(nd->tail_len - t) : n - done;
            memcpy((char *)buf + done, nd->tail + t, k);
            done += k;
        }
    }
    pthread_rwlock_unlock(&nd->lock);
    *got = done;
    return rc;
}

static int hd_append(lsm_file_t *f, const void *buf, size_t n)
{
    hold_node_t *nd = f->node;
    int rc = 0;
    pthread_rwlock_wrlock(&nd->lock);
    if (nd->tail_len + n > nd->tail_cap) {
        size_t cap = nd->tail_cap ? nd->tail_cap : 4096;
        while (cap < nd->tail_len + n)
            cap *= 2;
        char *t = realloc(nd->tail, cap);
        if (t) {
            nd->tail = t;
            nd->tail_cap = cap;
        } else {
            rc = SHOAL_ENOMEM;
        }
    }
    if (rc == 0) {
        memcpy(nd->tail + nd->tail_len, buf, n);
        nd->tail_len += n;
    }
    pthread_rwlock_unlock(&nd->lock);
    return rc;
}

/* The tail reaches the real file (through this handle, opened for writing), then the disk. */
static int hd_sync(lsm_file_t *f)
{
    hold_node_t *nd = f->node;
    int rc = 0;
    pthread_rwlock_wrlock(&nd->lock);
    if (nd->tail_len > 0 && (rc = f->base->append(f->inner, nd->tail, nd->tail_len)) == 0) {
        nd->durable += nd->tail_len;
        nd->tail_len = 0;
        if (nd->tail_cap > (1u << 20)) { /* a big WAL tail: give the memory back */
            free(nd->tail);
            nd->tail = NULL;
            nd->tail_cap = 0;
        }
    }
    pthread_rwlock_unlock(&nd->lock);
    return rc ? rc : f->base->sync(f->inner);
}

static int hd_size(lsm_file_t *f, uint64_t *size)
{
    pthread_rwlock_rdlock(&f->node->lock);
    *size = f->node->durable + f->node->tail_len;
    pthread_rwlock_unlock(&f->node->lock);
    return 0;
}

/* Not used by the engine today; cuts the tail, or the real file (at once) below it. */
static int hd_truncate(lsm_file_t *f, uint64_t size)
{
    hold_node_t *nd = f->node;
    int rc = 0;
    pthread_rwlock_wrlock(&nd->lock);
    if (size >= nd->durable) {
        if (size - nd->durable < nd->tail_len)
            nd->tail_len = (size_t)(size - nd->durable);
    } else if ((rc = f->base->truncate(f->inner, size)) == 0) {
        nd->durable = size;
        nd->tail_len = 0;
    }
    pthread_rwlock_unlock(&nd->lock);
    return rc;
}

static hold_env_t hold_env; /* the process's one hold env (env_hold.h) */

static void hd_close(lsm_file_t *f)
{
    if (!f)
        return;
    f->base->close(f->inner);
    hold_node_t *nd = f->node;
    if (nd) {
        pthread_mutex_lock(&hold_env.mu);
        pthread_rwlock_rdlock(&nd->lock);
        bool empty = nd->tail_len == 0;
        pthread_rwlock_unlock(&nd->lock);
        /* closed unsynced: the bytes stay (in the page cache) for the next opener */
        if (--nd->refs == 0 && (empty || !nd->listed)) {
            if (nd->listed)
                unlist(&hold_env, nd->path);
            else
                node_free(nd);
        }
        pthread_mutex_unlock(&hold_env.mu);
    }
    free(f);
}

/* ---- names: at once on the real file system ---------------------------------------- */

static int hd_rename(lsm_env_t *env, const char *from, const char *to)
{
    hold_env_t *h = env_of(env);
    pthread_mutex_lock(&h->mu);
    int rc = h->base->rename(h->base, from, to);
    if (rc == 0) {
        unlist(h, to);
        hold_node_t *n = *find(h, from);
        char *p = n ? strdup(to) : NULL;
        if (p) {
            free(n->path);
            n->path = p;
        } else if (n) { /* out of memory: the tail cannot follow, drop it */
            unlist(h, from);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int hd_remove(lsm_env_t *env, const char *path)
{
    hold_env_t *h = env_of(env);
    pthread_mutex_lock(&h->mu);
    int rc = h->base->remove(h->base, path);
    if (rc == 0)
        unlist(h, path);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int hd_mkdir(lsm_env_t *env, const char *path)
{
    return env_of(env)->base->mkdir(env_of(env)->base, path);
}

static int hd_rmdir(lsm_env_t *env, const char *path)
{
    return env_of(env)->base->rmdir(env_of(env)->base, path);
}

static int hd_list(lsm_env_t *env, const char *dir, int (*cb)(void *, const char *), void *arg)
{
    return env_of(env)->base->list(env_of(env)->base, dir, cb, arg);
}

static int hd_exists(lsm_env_t *env, const char *path)
{
    return env_of(env)->base->exists(env_of(env)->base, path);
}

static int hd_sync_dir(lsm_env_t *env, const char *dir)
{
    return env_of(env)->base->sync_dir(env_of(env)->base, dir);
}

static int hd_lock(lsm_env_t *env, const char *path, lsm_file_t **out)
{
    lsm_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return SHOAL_ENOMEM;
    f->base = env_of(env)->base;
    int rc = f->base->lock(f->base, path, &f->inner);
    if (rc) {
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static pthread_once_t hold_once = PTHREAD_ONCE_INIT;

static void hold_init(void)
{
    hold_env.vt = (lsm_env_t){
        .open = hd_open,
        .pread = hd_pread,
        .append = hd_append,
        .sync = hd_sync,
        .size = hd_size,
        .truncate = hd_truncate,
        .map = NULL, /* a mapping would show the real file only */
        .close = hd_close,
        .rename = hd_rename,
        .remove = hd_remove,
        .mkdir = hd_mkdir,
        .rmdir = hd_rmdir,
        .list = hd_list,
        .exists = hd_exists,
        .sync_dir = hd_sync_dir,
        .lock = hd_lock,
        .map_release = NULL,
    };
    hold_env.base = lsm_env_posix();
    pthread_mutex_init(&hold_env.mu, NULL);
}

lsm_env_t *lsm_env_hold(void)
{
    pthread_once(&hold_once, hold_init);
    return &hold_env.vt;
}

uint64_t lsm_env_hold_unsynced(void)
{
    uint64_t sum = 0;
    lsm_env_hold();
    pthread_mutex_lock(&hold_env.mu);
    for (hold_node_t *n = hold_env.nodes; n; n = n->next) {
        pthread_rwlock_rdlock(&n->lock);
        sum += n->tail_len;
        pthread_rwlock_unlock(&n->lock);
    }
    pthread_mutex_unlock(&hold_env.mu);
    return sum;
}
