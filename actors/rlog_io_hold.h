/* rlog_io_hold.h - a test-only "power cut" I/O table for the durable Raft log (rlog_io.h):
 * the POSIX calls, with every write held in the process's memory until its file is synced.
 *
 * Reads and size() see the process's own unsynced writes (an overlay, as the page cache
 * would show them); sync() applies them, in order, to the real file, then fdatasyncs it. A
 * truncate is held the same way. So a kill -9 loses exactly the file data a power cut loses.
 * Creating and unlinking a file reach the file system at once (not modelled: a directory
 * entry lost for want of sync_dir).
 *
 * shoald turns it on (and the engine's twin, engine/lsm/env_hold.h) when its environment
 * has SHOAL_TEST_UNSYNCED=hold (actors/failpoint.h); never in production. */
#ifndef SHOAL_ACTORS_RLOG_IO_HOLD_H
#define SHOAL_ACTORS_RLOG_IO_HOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/rlog_io.h"

#define UNSYNCED_ENV "SHOAL_TEST_UNSYNCED"

/* True if the environment has SHOAL_TEST_UNSYNCED=hold (any other value: false). */
bool unsynced_hold_on(void);

/* The process's hold table over rlog_io_posix(): one per process (it stands for the page
 * cache), created on first use, never destroyed. Borrowed. */
const rlog_io_t *rlog_io_hold(void);

/* Bytes written and not yet synced, over every file (a test's probe). */
uint64_t rlog_io_hold_unsynced(void);

#endif
