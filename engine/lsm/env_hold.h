/* env_hold.h - a test-only "power cut" environment for the storage engine: the POSIX env
 * (env.h) with every appended byte held in the process's memory until sync() of its file.
 *
 * A running process sees its own unsynced bytes (reads and size() overlay them, as the page
 * cache would show them); the real file gets them only at sync(). So a kill -9 of the process
 * loses exactly the file data a power cut would lose. Creates, renames and removes reach the
 * file system at once: this env does not model a lost directory entry (env.h's sync_dir).
 * map() is absent (tables are read with pread); LSM_OPEN_LOG is a plain append file.
 *
 * Turned on in shoald by SHOAL_TEST_UNSYNCED=hold (actors/failpoint.h); never in production. */
#ifndef SHOAL_LSM_ENV_HOLD_H
#define SHOAL_LSM_ENV_HOLD_H

#include "engine/lsm/env.h"

/* The process's hold env over lsm_env_posix(): one per process (it stands for the page
 * cache, which every engine of the process shares), created on first use, never destroyed.
 * Borrowed. */
lsm_env_t *lsm_env_hold(void);

/* Bytes appended and not yet synced, over every file of the process (a test's probe). */
uint64_t lsm_env_hold_unsynced(void);

#endif
