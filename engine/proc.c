/* proc.c - process liveness from /proc (see proc.h). */
#include "engine/proc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* The state letter of /proc/<pid>/stat, or 0 when the process is gone. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the state follows the command name, which may hold ')' */
    return p && p[1] == ' ' ? p[2] : 0;
}

/* The thread count of /proc/<pid>/status; 0 when it cannot be read. */
static long proc_threads(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long n = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}

bool shoal_proc_running(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return false;
    char st = proc_state(pid);
    if (st == 0 || st == 'X')
        return false;
    /* The main thread of a killed process turns zombie before its other threads have
     * finished exiting; the last of them closes the files, so the process counts as
     * running until only the zombie main thread is left. */
    return st != 'Z' || proc_threads(pid) > 1;
}
