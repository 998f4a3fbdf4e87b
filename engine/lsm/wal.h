/* wal.h - the record log used by the write-ahead log and the manifest.
 *
 * A log file is a sequence of records:
 *     fixed32 checksum | fixed32 length | payload (length bytes)
 * where checksum = shoal_checksum32 of the 4 length bytes followed by the payload. A record
 * is written with one append, so a crash leaves at most one incomplete record at the end.
 *
 * Reading tells a torn tail from corruption: a bad record (length past the end, checksum
 * mismatch) with no well-formed record anywhere after it is a torn tail (the write that was
 * cut was never acknowledged as synced) and reading stops there; a bad record followed by a
 * good one is damage in the middle: SHOAL_ECORRUPT, naming the file and the record's offset.
 * (A flipped byte in the very last record looks like a torn tail and that record is
 * dropped: no checksum scheme can tell those two apart.) */
#ifndef SHOAL_LSM_WAL_H
#define SHOAL_LSM_WAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/coding.h"
#include "engine/lsm/env.h"
#include "engine/lsm/errlog.h"

#define LSM_WAL_HEADER 8
#define LSM_WAL_MAX_RECORD (1u << 30)

typedef struct {
    lsm_env_t *env;
    lsm_file_t *file;
    uint64_t size;   /* bytes appended so far */
    uint64_t number; /* the file number, for the owner's bookkeeping */
} lsm_wal_writer_t;

/* Creates (truncates) the log at path; mode LSM_OPEN_WRITE or LSM_OPEN_LOG (the WAL: the env
 * may allocate ahead, so a crash can leave zeros after the last record; env.h). */
int lsm_wal_writer_open(lsm_env_t *env, const char *path, int mode, lsm_wal_writer_t *w);
/* Appends one record. buf[0..8) is space for the header, which this fills; the payload is
 * buf[8..len). One append call: the record reaches the OS whole or not at all. */
int lsm_wal_add(lsm_wal_writer_t *w, char *buf, size_t len);
/* Fills the 8-byte header at buf for the payload buf[8..8+payload_len). */
void lsm_wal_frame(char *buf, size_t payload_len);
/* Convenience for small records (the manifest): copies payload after a header. */
int lsm_wal_add_copy(lsm_wal_writer_t *w, const void *payload, size_t len);
int lsm_wal_sync(lsm_wal_writer_t *w);
void lsm_wal_writer_close(lsm_wal_writer_t *w);

typedef struct {
    const char *data; /* the whole log (borrowed) */
    size_t len;
    size_t off;        /* next record */
    const char *path;  /* for messages */
    lsm_errlog_t *log; /* may be NULL */
    bool torn;         /* reading stopped at a torn tail at offset `off` */
} lsm_wal_reader_t;

void lsm_wal_reader_init(lsm_wal_reader_t *r, const char *data, size_t len, const char *path,
                         lsm_errlog_t *log);
/* 1 and *payload (borrowed) for a record; 0 at the end (clean, or torn: see r->torn; zero
 * bytes from a record boundary to the end of the data are a clean end: see LSM_OPEN_LOG);
 * SHOAL_ECORRUPT for a bad record before the end. */
int lsm_wal_read(lsm_wal_reader_t *r, lsm_slice_t *payload);

/* Reads a whole file into a malloc'd buffer (recovery reads logs whole). */
int lsm_read_file(lsm_env_t *env, const char *path, char **data, size_t *len);

#endif
