/* wal.c - see wal.h. */
#include "engine/lsm/wal.h"

#include <stdlib.h>

#include "engine/checksum.h"
#include "engine/error.h"

int lsm_wal_writer_open(lsm_env_t *env, const char *path, int mode, lsm_wal_writer_t *w)
{
    w->env = env;
    w->size = 0;
    w->number = 0;
    w->file = NULL;
    int rc = env->open(env, path, mode, &w->file);
    if (rc)
        w->file = NULL;
    return rc;
}

void lsm_wal_frame(char *buf, size_t payload_len)
{
    lsm_put_fixed32(buf + 4, (uint32_t)payload_len);
    lsm_put_fixed32(buf, shoal_checksum32(buf + 4, payload_len + 4));
}

int lsm_wal_add(lsm_wal_writer_t *w, char *buf, size_t len)
{
    size_t n = len - LSM_WAL_HEADER;
    if (n > LSM_WAL_MAX_RECORD)
        return SHOAL_ETOOLARGE;
    lsm_wal_frame(buf, n);
    int rc = w->env->append(w->file, buf, len);
    if (rc == 0)
        w->size += len;
    return rc;
}

int lsm_wal_add_copy(lsm_wal_writer_t *w, const void *payload, size_t len)
{
    char *buf = malloc(len + LSM_WAL_HEADER);
    if (!buf)
        return SHOAL_ENOMEM;
    memcpy(buf + LSM_WAL_HEADER, payload, len);
    int rc = lsm_wal_add(w, buf, len + LSM_WAL_HEADER);
    free(buf);
    return rc;
}

int lsm_wal_sync(lsm_wal_writer_t *w)
{
    return w->env->sync(w->file);
}

void lsm_wal_writer_close(lsm_wal_writer_t *w)
{
    if (w->file)
        w->env->close(w->file);
    w->file = NULL;
}

void lsm_wal_reader_init(lsm_wal_reader_t *r, const char *data, size_t len, const char *path,
                         lsm_errlog_t *log)
{
    r->data = data;
    r->len = len;
    r->off = 0;
    r->path = path;
    r->log = log;
    r->torn = false;
}

/* True when some well-formed record starts after `from`: then the bad record at `from` is
 * not the torn end of the log but damage in its middle. Only run on the error path. */
static bool valid_record_after(const lsm_wal_reader_t *r, size_t from)
{
    for (size_t off = from + 1; off + LSM_WAL_HEADER <= r->len; off++) {
        const char *p = r->data + off;
        uint32_t n = lsm_get_fixed32(p + 4);
        if (n <= r->len - off - LSM_WAL_HEADER &&
            lsm_get_fixed32(p) == shoal_checksum32(p + 4, (size_t)n + 4))
            return true;
    }
    return false;
}

/* A record at r->off does not check out: torn tail or corruption (see wal.h). */
static int bad_record(lsm_wal_reader_t *r, const char *what)
{
    if (valid_record_after(r, r->off))
        return lsm_corrupt(r->log, r->path, r->off, what);
    r->torn = true;
    return 0;
}

/* True when data[off..len) is all zero: the space a mapped log allocated ahead and never
 * reached (a real record header is never zero: its checksum covers a non-zero length). */
static bool zero_tail(const lsm_wal_reader_t *r)
{
    for (size_t i = r->off; i < r->len; i++)
        if (r->data[i])
            return false;
    return true;
}

int lsm_wal_read(lsm_wal_reader_t *r, lsm_slice_t *payload)
{
    size_t left = r->len - r->off;
    const char *p = r->data + r->off;
    if (left == 0)
        return 0;
    if (p[0] == 0 && zero_tail(r)) /* only a zero byte at a boundary pays the scan */
        return 0;
    if (left < LSM_WAL_HEADER) {
        r->torn = true;
        return 0;
    }
    uint32_t n = lsm_get_fixed32(p + 4);
    if (n > left - LSM_WAL_HEADER)
        return bad_record(r, "record length runs past the end of the log");
    if (lsm_get_fixed32(p) != shoal_checksum32(p + 4, (size_t)n + 4))
        return bad_record(r, "record checksum mismatch");
    *payload = lsm_slice(p + LSM_WAL_HEADER, n);
    r->off += LSM_WAL_HEADER + (size_t)n;
    return 1;
}

int lsm_read_file(lsm_env_t *env, const char *path, char **data, size_t *len)
{
    lsm_file_t *f;
    uint64_t size;
    int rc = env->open(env, path, LSM_OPEN_READ, &f);
    if (rc)
        return rc;
    rc = env->size(f, &size);
    char *buf = rc ? NULL : malloc(size ? size : 1);
    size_t got = 0;
    if (!rc && !buf)
        rc = SHOAL_ENOMEM;
    if (!rc)
        rc = env->pread(f, 0, buf, (size_t)size, &got);
    env->close(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return 0;
}
