/* failpoint.h - crash points for tests: with SHOAL_FAILPOINT=<name> in its environment, the
 * process exits at once (exit code 86, no cleanup, as a kill -9 would leave it) where the
 * code calls failpoint("<name>"). Off unless set; a shoald in production never has it.
 *   drop_before_record   placement.c: a replica moved away, before its drop record
 *   drop_before_delete   compactor_actor.c: the drop record is durable, the folder not
 *                        yet deleted */
#ifndef SHOAL_ACTORS_FAILPOINT_H
#define SHOAL_ACTORS_FAILPOINT_H

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAILPOINT_EXIT 86

static inline void failpoint(const char *name)
{
    const char *want = getenv("SHOAL_FAILPOINT");
    if (want && strcmp(want, name) == 0) {
        zsys_warning("failpoint %s: exiting now (SHOAL_FAILPOINT)", name);
        _exit(FAILPOINT_EXIT);
    }
}

#endif
