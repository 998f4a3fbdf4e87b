/* compactor_actor.c - the node's compactor: turns a consistent view of a replica's engine
 * into a Raft snapshot file, and makes the engine durable so the log behind it can go.
 *
 * Export runs here, never on the node actor (heartbeats) nor the log actor (fsyncs): it
 * reads the whole shard. Steps per job, in this order because each makes the next safe:
 *   1. export the view into snap-<index>.tmp, computing its XXH3-64 as it goes, fsync it;
 *   2. rename to snap-<index> (the leader serves InstallSnapshot chunks from this file);
 *   3. lsm_flush: every write up to the index is now in durable tables, so the Raft log up
 *      to the index may be dropped (the node then marks the snapshot in the log);
 *   4. delete older snapshot files of the group.
 *
 * A job with compact_only set instead compacts the whole engine (admin op `compact`).
 *
 * Protocol: in "sp" EXPORT snap_job_t*; out "sp" SNAPPED snap_job_t* (rc set). */
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "actors/failpoint.h"
#include "actors/node_int.h"
#include "actors/replica.h"
#include "engine/error.h"

#define EXPORT_CHUNK (1u << 20)

static int export_file(snap_job_t *j, const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return SHOAL_EIO;
    lsm_export_t *ex = NULL;
    XXH3_state_t *h = XXH3_createState();
    uint8_t *buf = malloc(EXPORT_CHUNK);
    int rc = h && buf ? lsm_export_begin(j->lsm, j->snap, &ex) : SHOAL_ENOMEM;
    if (h)
        XXH3_64bits_reset(h);
    j->size = 0;
    while (rc == 0) {
        size_t n = 0;
        rc = lsm_export_read(ex, buf, EXPORT_CHUNK, &n);
        if (rc || n == 0)
            break;
        XXH3_64bits_update(h, buf, n);
        if (write(fd, buf, n) != (ssize_t)n)
            rc = SHOAL_EIO;
        j->size += n;
    }
    lsm_export_end(&ex);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = SHOAL_EIO;
    if (h) {
        j->checksum = XXH3_64bits_digest(h);
        XXH3_freeState(h);
    }
    free(buf);
    close(fd);
    return rc;
}

/* Removes snap-<i> files of the group older than keep. */
static void remove_older(const char *dir, uint64_t keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t idx;
        char tail;
        if (sscanf(e->d_name, "snap-%" SCNu64 "%c", &idx, &tail) == 1 && idx < keep) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

static void run_job(snap_job_t *j)
{
    if (j->compact_only) { /* admin `compact`: drop deleted and overwritten data now */
        j->rc = lsm_compact_range(j->lsm, NULL, 0, NULL, 0);
        if (j->rc)
            snprintf(j->err, sizeof j->err, "shard %u: compaction failed: %s", j->group,
                     shoal_strerror(j->rc));
        return;
    }
    char tmp[2048], final[2048];
    snprintf(tmp, sizeof tmp, "%s/snap-%" PRIu64 ".tmp", j->dir, j->index);
    snprintf(final, sizeof final, "%s/snap-%" PRIu64, j->dir, j->index);
    int64_t t0 = zclock_mono();
    int rc = export_file(j, tmp);
    lsm_snapshot_release(j->lsm, &j->snap);
    if (rc == 0 && rename(tmp, final) != 0)
        rc = SHOAL_EIO;
    int64_t t1 = zclock_mono();
    if (rc == 0)
        rc = lsm_flush(j->lsm);
    if (rc == 0) {
        remove_older(j->dir, j->index);
        zsys_info("shard %u: snapshot at %" PRIu64 " exported, %.1f MiB in %" PRId64
                  " ms, engine flushed in %" PRId64 " ms",
                  j->group, j->index, (double)j->size / (1 << 20), t1 - t0, zclock_mono() - t1);
    } else {
        unlink(tmp);
        snprintf(j->err, sizeof j->err, "shard %u: snapshot at %" PRIu64 " failed: %s", j->group,
                 j->index, shoal_strerror(rc));
    }
    j->rc = rc;
}

/* A replica the shard map moved away: its engine is closed here (a close flushes) and its
 * folder renamed to <dir>.deleted, then deleted, off the node actor's loop. A crash halfway
 * leaves either the folder or <dir>.deleted, which the next start deletes (placement.c,
 * reap_unplaced and finish_deletions). */
static void drop_job(snap_job_t *j)
{
    failpoint("drop_before_delete");
    lsm_close(&j->lsm);
    if (replica_delete_dir(j->dir) != 0) {
        j->rc = SHOAL_EIO;
        snprintf(j->err, sizeof j->err, "shard %u: deleting %s: %s", j->group, j->dir,
                 strerror(errno));
    }
}

void compactor_actor(zsock_t *pipe, void *args)
{
    zsock_signal(pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv(pipe, "sp", &cmd, &ptr) != 0) {
            zstr_free(&cmd);
            if (errno == EINTR) /* a signal, not $TERM: the next job must still be answered */
                continue;
            break;
        }
        bool term = cmd && streq(cmd, "$TERM");
        if (!term && cmd && streq(cmd, "EXPORT") && ptr) {
            if (((snap_job_t *)ptr)->drop)
                drop_job(ptr);
            else
                run_job(ptr);
            zsock_send(pipe, "sp", "SNAPPED", ptr);
        }
        zstr_free(&cmd);
        if (term)
            break;
    }
}
