/* proc.h - whether a process still runs, for the tools and tests that start and stop
 * shoald and shoal-broker by pid. */
#ifndef SHOAL_PROC_H
#define SHOAL_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* True while any thread of process pid runs, so its files (the data folder's LOCK) may still
 * be open. A zombie whose threads are all gone counts as stopped: in a container nothing may
 * ever reap it. */
bool shoal_proc_running(pid_t pid);

#endif
