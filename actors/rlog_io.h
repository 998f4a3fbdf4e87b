/* rlog_io.h - the file operations of the durable Raft log, behind a small table of
 * functions so that a test can stand between the log and the disk.
 *
 * The real implementation (rlog_io_posix) maps each call onto the POSIX call of the same
 * name. The fault implementation (rlog_io_fault_new) remembers how many bytes of every file
 * were made durable by a sync, and its crash function cuts every file back to that length
 * (optionally leaving a torn, garbage-filled fragment behind), which is exactly what a power
 * cut does to a file written without O_DIRECT. */
#ifndef SHOAL_ACTORS_RLOG_IO_H
#define SHOAL_ACTORS_RLOG_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rlog_io_t {
    void *ctx;
    /* Opens path read-write (creating it when create); returns an fd or -errno. */
    int (*open)(void *ctx, const char *path, bool create);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
    int (*sync)(void *ctx, int fd); /* fdatasync */
    int (*truncate)(void *ctx, int fd, uint64_t len);
    int64_t (*size)(void *ctx, int fd);
    int (*close)(void *ctx, int fd);
    int (*unlink)(void *ctx, const char *path);
    int (*sync_dir)(void *ctx, const char *dir); /* makes creates and unlinks durable */
} rlog_io_t;

/* The real disk; borrowed, static, never freed. */
const rlog_io_t *rlog_io_posix(void);

/* A wrapper over the real disk that tracks synced lengths. Free with rlog_io_fault_destroy. */
rlog_io_t *rlog_io_fault_new(void);
void rlog_io_fault_destroy(rlog_io_t **self_p);
/* Cuts every file written through io back to its synced length; when torn_bytes > 0 a
 * fragment of that many garbage bytes is left after the synced data (a torn write).
 * Files must be closed (the log destroyed) before the crash. */
void rlog_io_fault_crash(rlog_io_t *io, size_t torn_bytes, unsigned seed);
/* Number of sync calls seen (a test checks group commit with it). */
uint64_t rlog_io_fault_syncs(rlog_io_t *io);

#endif
