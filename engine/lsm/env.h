/* env.h - the file I/O interface of the storage engine. Every byte the engine reads or
 * writes goes through an lsm_env_t, so tests can swap the disk: lsm_env_posix() is the real
 * one, lsm_env_mem_new() an in-memory file system that can "crash" by throwing away every
 * byte that was not fdatasync'ed (the crash tests' model of power loss).
 *
 * Durability model (both implementations honour it; the engine relies on nothing more):
 * - file data is durable once sync() returns for that file;
 * - create, rename and remove are durable once sync_dir() returns for the directory;
 * - rename() replaces the target atomically.
 * Files the engine reads are immutable once written (tables, manifests); the WAL is read only
 * at recovery, before any write. */
#ifndef SHOAL_LSM_ENV_H
#define SHOAL_LSM_ENV_H

#include <stddef.h>
#include <stdint.h>

typedef struct lsm_env lsm_env_t;
typedef struct lsm_file lsm_file_t; /* an open file; its layout is private to each env */

enum {
    LSM_OPEN_READ = 0,   /* existing file, read only */
    LSM_OPEN_WRITE = 1,  /* create or truncate, append only */
    LSM_OPEN_APPEND = 2, /* create or keep, append at the end */
    /* Create or truncate, append only, for a log read back only by recovery: an env may
     * store appends through a shared mapping of space allocated ahead, so after a crash the
     * file may end in zero bytes past the last append (close trims them). Appended bytes
     * survive a process crash as with LSM_OPEN_WRITE. */
    LSM_OPEN_LOG = 3,
};

struct lsm_env {
    int (*open)(lsm_env_t *env, const char *path, int mode, lsm_file_t **f);
    /* Reads up to n bytes at off; *got < n only at end of file. */
    int (*pread)(lsm_file_t *f, uint64_t off, void *buf, size_t n, size_t *got);
    int (*append)(lsm_file_t *f, const void *buf, size_t n);
    int (*sync)(lsm_file_t *f); /* fdatasync */
    int (*size)(lsm_file_t *f, uint64_t *size);
    int (*truncate)(lsm_file_t *f, uint64_t size);
    /* Optional (may be NULL or return NULL): a read-only view of a whole immutable file,
     * valid until close. Lets table reads skip the copy of pread. A fault in it must make
     * only the page read resident (mapres.h counts pages so): an env that cannot promise it
     * returns NULL, and tables are then read with pread. */
    const char *(*map)(lsm_file_t *f, uint64_t size);
    void (*close)(lsm_file_t *f);
    int (*rename)(lsm_env_t *env, const char *from, const char *to);
    int (*remove)(lsm_env_t *env, const char *path); /* SHOAL_ENOTFOUND if absent */
    int (*mkdir)(lsm_env_t *env, const char *path);  /* with parents; 0 if it exists */
    int (*rmdir)(lsm_env_t *env, const char *path);
    /* Calls cb for each entry name of dir (not "." or ".."); stops when cb returns non-0. */
    int (*list)(lsm_env_t *env, const char *dir, int (*cb)(void *arg, const char *name),
                void *arg);
    int (*exists)(lsm_env_t *env, const char *path); /* 1, 0, or a negative error */
    int (*sync_dir)(lsm_env_t *env, const char *dir);
    /* Takes an exclusive lock held until close (SHOAL_EBUSY if another holder has it). */
    int (*lock)(lsm_env_t *env, const char *path, lsm_file_t **f);
    /* Optional (may be NULL): drops the pages of [off, off + len) of the file's mapping from
     * the process's resident memory; the view stays valid (a later read faults them in again
     * from the OS page cache). Bounds the memory mapped reads hold (mapres.h). */
    void (*map_release)(lsm_file_t *f, uint64_t off, uint64_t len);
};

/* The POSIX environment: a stateless singleton, never destroyed. */
lsm_env_t *lsm_env_posix(void);

/* The in-memory environment of the tests. */
lsm_env_t *lsm_env_mem_new(void);
/* Simulates power loss: every file is cut to its last synced length, files created or
 * renamed since the last sync_dir of their directory vanish or revert. Open files become
 * stale: the engine using them must be closed (its writes then fail harmlessly). */
void lsm_env_mem_crash(lsm_env_t *env);
/* Counts writes; after `countdown` more append/sync/rename calls every call fails with
 * SHOAL_EIO (0 = never). Used to cut a run at an arbitrary point. */
void lsm_env_mem_fail_after(lsm_env_t *env, long countdown);
/* Makes every sync() sleep this long (a slow disk), so tests can watch group commit. */
void lsm_env_mem_set_sync_delay(lsm_env_t *env, unsigned micros);
void lsm_env_mem_destroy(lsm_env_t **env_p);

#endif
