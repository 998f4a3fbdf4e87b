/* env_mem.c - an in-memory file system for the tests, with a model of power loss.
 *
 * Files are inodes (a byte buffer, its length and its synced length) named by two tables:
 * `live` (what the running program sees) and `durable` (what a crash leaves). sync() moves
 * a file's synced length to its length; sync_dir(d) copies the live names under d into the
 * durable table. crash() makes durable the new live, cuts every inode to its synced length
 * and bumps an epoch so that files opened before the crash fail every call with SHOAL_EIO.
 * One mutex guards everything: this env is for correctness, not speed. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/lsm/env.h"

typedef struct inode {
    char *data;
    size_t len, cap, synced;
    int refs;    /* names in both tables + open files */
    bool locked; /* a lock() holder has it */
    bool log;    /* opened LSM_OPEN_LOG: a crash leaves a zero tail (see crash()) */
} inode_t;

typedef struct {
    char *path;
    inode_t *ino;
} name_t;

typedef struct {
    name_t *v;
    size_t n, cap;
} names_t;

typedef struct {
    lsm_env_t env; /* first: the vtable the engine sees */
    pthread_mutex_t mu;
    names_t live, durable;
    unsigned epoch;
    long fail_countdown; /* 0 = never fail; else fail when it reaches 1 */
    bool failing;
    unsigned sync_delay_us;
} mem_env_t;

struct lsm_file {
    mem_env_t *m;
    inode_t *ino;
    unsigned epoch;
    bool locked;
    char *lock_path;
};

static void ino_unref(inode_t *i)
{
    if (i && --i->refs == 0) {
        free(i->data);
        free(i);
    }
}

static name_t *names_find(names_t *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].path, path))
            return &t->v[i];
    return NULL;
}

static int names_set(names_t *t, const char *path, inode_t *ino)
{
    name_t *e = names_find(t, path);
    ino->refs++;
    if (e) {
        ino_unref(e->ino);
        e->ino = ino;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        name_t *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            ino->refs--;
            return SHOAL_ENOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n].path = strdup(path);
    t->v[t->n].ino = ino;
    t->n++;
    return 0;
}

static void names_del_at(names_t *t, size_t i)
{
    free(t->v[i].path);
    ino_unref(t->v[i].ino);
    t->v[i] = t->v[--t->n];
}

static bool names_del(names_t *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].path, path)) {
            names_del_at(t, i);
            return true;
        }
    return false;
}

/* True when path is directly inside dir. */
static bool in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return !strncmp(path, dir, n) && path[n] == '/' && !strchr(path + n + 1, '/');
}

/* Counts a mutating call; true when the injected failure point has been reached. */
static bool should_fail(mem_env_t *m)
{
    if (m->failing)
        return true;
    if (m->fail_countdown > 0 && --m->fail_countdown == 0)
        m->failing = true;
    return m->failing;
}

static int stale(lsm_file_t *f)
{
    return f->epoch != f->m->epoch;
}

static int me_open(lsm_env_t *env, const char *path, int mode, lsm_file_t **out)
{
    mem_env_t *m = (mem_env_t *)env;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    name_t *e = names_find(&m->live, path);
    inode_t *ino = e ? e->ino : NULL;
    if (mode == LSM_OPEN_READ && !ino) {
        rc = SHOAL_ENOTFOUND;
    } else if (mode != LSM_OPEN_READ && should_fail(m)) {
        rc = SHOAL_EIO;
    } else if (!ino || mode == LSM_OPEN_WRITE || mode == LSM_OPEN_LOG) {
        ino = calloc(1, sizeof *ino);
        rc = ino ? names_set(&m->live, path, ino) : SHOAL_ENOMEM;
    }
    lsm_file_t *f = NULL;
    if (rc == 0 && (f = calloc(1, sizeof *f)) == NULL)
        rc = SHOAL_ENOMEM;
    if (rc == 0) {
        if (mode == LSM_OPEN_LOG)
            ino->log = true;
        f->m = m;
        f->ino = ino;
        f->epoch = m->epoch;
        ino->refs++;
        *out = f;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int me_pread(lsm_file_t *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    pthread_mutex_lock(&f->m->mu);
    int rc = stale(f) ? SHOAL_EIO : 0;
    size_t len = f->ino->len;
    *got = 0;
    if (rc == 0 && off < len) {
        *got = n < len - off ? n : (size_t)(len - off);
        memcpy(buf, f->ino->data + off, *got);
    }
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int me_append(lsm_file_t *f, const void *buf, size_t n)
{
    pthread_mutex_lock(&f->m->mu);
    inode_t *i = f->ino;
    int rc = (stale(f) || should_fail(f->m)) ? SHOAL_EIO : 0;
    if (rc == 0 && i->cap - i->len < n) {
        size_t cap = i->cap ? i->cap : 4096;
        while (cap - i->len < n)
            cap *= 2;
        char *d = realloc(i->data, cap);
        if (d) {
            i->data = d;
            i->cap = cap;
        } else {
            rc = SHOAL_ENOMEM;
        }
    }
    if (rc == 0) {
        memcpy(i->data + i->len, buf, n);
        i->len += n;
    }
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int me_sync(lsm_file_t *f)
{
    if (f->m->sync_delay_us) /* outside the mutex: other threads keep going, as on a disk */
        usleep(f->m->sync_delay_us);
    pthread_mutex_lock(&f->m->mu);
    int rc = (stale(f) || should_fail(f->m)) ? SHOAL_EIO : 0;
    if (rc == 0)
        f->ino->synced = f->ino->len;
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int me_size(lsm_file_t *f, uint64_t *size)
{
    pthread_mutex_lock(&f->m->mu);
    int rc = stale(f) ? SHOAL_EIO : 0;
    *size = f->ino->len;
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int me_truncate(lsm_file_t *f, uint64_t size)
{
    pthread_mutex_lock(&f->m->mu);
    int rc = (stale(f) || should_fail(f->m)) ? SHOAL_EIO : 0;
    if (rc == 0 && size < f->ino->len) {
        f->ino->len = (size_t)size;
        if (f->ino->synced > size)
            f->ino->synced = (size_t)size;
    }
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static void me_close(lsm_file_t *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->m->mu);
    ino_unref(f->ino);
    pthread_mutex_unlock(&f->m->mu);
    free(f->lock_path);
    free(f);
}

static int me_rename(lsm_env_t *env, const char *from, const char *to)
{
    mem_env_t *m = (mem_env_t *)env;
    pthread_mutex_lock(&m->mu);
    name_t *e = names_find(&m->live, from);
    int rc = should_fail(m) ? SHOAL_EIO : e ? 0 : SHOAL_ENOTFOUND;
    if (rc == 0) {
        inode_t *ino = e->ino;
        ino->refs++;
        names_del(&m->live, from);
        rc = names_set(&m->live, to, ino);
        ino_unref(ino);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int me_remove(lsm_env_t *env, const char *path)
{
    mem_env_t *m = (mem_env_t *)env;
    pthread_mutex_lock(&m->mu);
    int rc = names_del(&m->live, path) ? 0 : SHOAL_ENOTFOUND;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int me_mkdir(lsm_env_t *env, const char *path)
{
    return 0; /* directories are implicit in the paths */
}

static int me_rmdir(lsm_env_t *env, const char *path)
{
    return 0;
}

static int me_list(lsm_env_t *env, const char *dir, int (*cb)(void *, const char *), void *arg)
{
    mem_env_t *m = (mem_env_t *)env;
    /* Copy the names first: cb may call back into the env (remove). */
    pthread_mutex_lock(&m->mu);
    size_t n = 0;
    char **names = malloc((m->live.n + 1) * sizeof *names);
    for (size_t i = 0; names && i < m->live.n; i++)
        if (in_dir(m->live.v[i].path, dir))
            names[n++] = strdup(strrchr(m->live.v[i].path, '/') + 1);
    pthread_mutex_unlock(&m->mu);
    if (!names)
        return SHOAL_ENOMEM;
    size_t i = 0;
    for (; i < n && !cb(arg, names[i]); i++)
        free(names[i]);
    for (; i < n; i++)
        free(names[i]);
    free(names);
    return 0;
}

static int me_exists(lsm_env_t *env, const char *path)
{
    mem_env_t *m = (mem_env_t *)env;
    pthread_mutex_lock(&m->mu);
    int r = names_find(&m->live, path) != NULL;
    pthread_mutex_unlock(&m->mu);
    return r;
}

static int me_sync_dir(lsm_env_t *env, const char *dir)
{
    mem_env_t *m = (mem_env_t *)env;
    pthread_mutex_lock(&m->mu);
    int rc = should_fail(m) ? SHOAL_EIO : 0;
    for (size_t i = 0; rc == 0 && i < m->durable.n;)
        if (in_dir(m->durable.v[i].path, dir))
            names_del_at(&m->durable, i);
        else
            i++;
    for (size_t i = 0; rc == 0 && i < m->live.n; i++)
        if (in_dir(m->live.v[i].path, dir))
            rc = names_set(&m->durable, m->live.v[i].path, m->live.v[i].ino);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int me_lock(lsm_env_t *env, const char *path, lsm_file_t **out)
{
    mem_env_t *m = (mem_env_t *)env;
    int rc = me_open(env, path, LSM_OPEN_APPEND, out);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->mu);
    if ((*out)->ino->locked) {
        rc = SHOAL_EBUSY;
    } else {
        (*out)->ino->locked = true;
        (*out)->locked = true;
    }
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        me_close(*out);
        *out = NULL;
    }
    return rc;
}

static void me_unlock_close(lsm_file_t *f)
{
    if (f && f->locked && !stale(f)) {
        pthread_mutex_lock(&f->m->mu);
        f->ino->locked = false;
        pthread_mutex_unlock(&f->m->mu);
    }
    me_close(f);
}

lsm_env_t *lsm_env_mem_new(void)
{
    mem_env_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->env = (lsm_env_t){
        .open = me_open,
        .pread = me_pread,
        .append = me_append,
        .sync = me_sync,
        .size = me_size,
        .truncate = me_truncate,
        .map = NULL,
        .close = me_unlock_close,
        .rename = me_rename,
        .remove = me_remove,
        .mkdir = me_mkdir,
        .rmdir = me_rmdir,
        .list = me_list,
        .exists = me_exists,
        .sync_dir = me_sync_dir,
        .lock = me_lock,
    };
    return &m->env;
}

/* A log the posix env wrote through a mapping ends, after a crash, in zeros it allocated
 * ahead; leave some here too so recovery's zero-tail path runs in every crash test. */
static void log_zero_tail(inode_t *ino)
{
    size_t tail = 3000 + ino->len % 4096;
    if (ino->cap - ino->len < tail) {
        char *d = realloc(ino->data, ino->len + tail);
        if (!d)
            return;
        ino->data = d;
        ino->cap = ino->len + tail;
    }
    memset(ino->data + ino->len, 0, tail);
    ino->len += tail;
    ino->synced = ino->len;
}

void lsm_env_mem_crash(lsm_env_t *env)
{
    mem_env_t *m = (mem_env_t *)env;
    pthread_mutex_lock(&m->mu);
    while (m->live.n)
        names_del_at(&m->live, m->live.n - 1);
    for (size_t i = 0; i < m->durable.n; i++) {
        inode_t *ino = m->durable.v[i].ino;
        ino->len = ino->synced;
        if (ino->log)
            log_zero_tail(ino);
        ino->locked = false; /* a crash releases every lock */
        names_set(&m->live, m->durable.v[i].path, ino);
    }
    m->epoch++;
    m->failing = false;
    m->fail_countdown = 0;
    pthread_mutex_unlock(&m->mu);
}

void lsm_env_mem_fail_after(lsm_env_t *env, long countdown)
{
    mem_env_t *m = (mem_env_t *)env;
    pthread_mutex_lock(&m->mu);
    m->fail_countdown = countdown;
    m->failing = false;
    pthread_mutex_unlock(&m->mu);
}

void lsm_env_mem_set_sync_delay(lsm_env_t *env, unsigned micros)
{
    ((mem_env_t *)env)->sync_delay_us = micros;
}

void lsm_env_mem_destroy(lsm_env_t **env_p)
{
    if (!env_p || !*env_p)
        return;
    mem_env_t *m = (mem_env_t *)*env_p;
    while (m->live.n)
        names_del_at(&m->live, m->live.n - 1);
    while (m->durable.n)
        names_del_at(&m->durable, m->durable.n - 1);
    free(m->live.v);
    free(m->durable.v);
    pthread_mutex_destroy(&m->mu);
    free(m);
    *env_p = NULL;
}
