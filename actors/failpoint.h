/* failpoint.h - crash and hold points for tests. SHOAL_FAILPOINT=<name> in a process's
 * environment turns on the point of that name; SHOAL_FAILPOINT=<name>@<file> turns it on
 * only while <file> exists (a test flips it without a restart). Off unless set; a shoald in
 * production never has it.
 *   drop_before_record   exit: placement.c, a replica moved away, before its drop record
 *   drop_before_delete   exit: compactor_actor.c, the drop record is durable, the folder
 *                        not yet deleted
 *   meta_hold_moves      hold: meta.c, the metadata leader ignores MoveDone reports, so a
 *                        move stays open after its group's configuration matched the map
 *
 * SHOAL_TEST_UNSYNCED=hold, a test mode of the same kind (its own variable, so that it
 * combines with a failpoint), makes a kill -9 a power cut: every file write of the Raft log
 * (node.c: rlog_io_hold.h) and of the replicas' engines (replica.c: engine/lsm/env_hold.h)
 * stays in the process's memory until that file is synced; the process reads its own
 * unsynced bytes, the disk never sees them unless synced. Creates, renames and removes are
 * not held; files written outside those two layers (snapshot files, the shard map, node.id,
 * drop records) are not covered. Used by tests/integration/cluster_power_cut.sh. */
#ifndef SHOAL_ACTORS_FAILPOINT_H
#define SHOAL_ACTORS_FAILPOINT_H

#include <czmq.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAILPOINT_EXIT 86

static inline bool failpoint_active(const char *name)
{
    const char *want = getenv("SHOAL_FAILPOINT");
    size_t len = strlen(name);
    if (!want || strncmp(want, name, len) != 0)
        return false;
    if (want[len] == '\0')
        return true;
    return want[len] == '@' && access(want + len + 1, F_OK) == 0;
}

/* Exits at once (exit code 86, no cleanup: what a kill -9 would leave) if name is on. */
static inline void failpoint(const char *name)
{
    if (failpoint_active(name)) {
        zsys_warning("failpoint %s: exiting now (SHOAL_FAILPOINT)", name);
        _exit(FAILPOINT_EXIT);
    }
}

#endif
