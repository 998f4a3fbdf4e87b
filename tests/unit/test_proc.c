/* test_proc.c - shoal_proc_running says "stopped" only once a killed process's files are
 * closed, so a node restarted right after `stop-node --kill` finds its data folder's lock
 * free, also when nothing reaps the killed process. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/proc.h"

enum { THREADS = 4, THREAD_MB = 48 };

/* Each thread dirties memory of its own, so the process's exit has pages to free. */
static void *hold_memory(void *arg)
{
    size_t len = (size_t)THREAD_MB << 20;
    void *p =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    (void)write(*(int *)arg, p == MAP_FAILED ? "f" : "t", 1);
    for (;;)
        pause();
    return NULL;
}

/* A child that holds an exclusive flock on path with THREADS threads running; returns once
 * all of them are up. */
static pid_t spawn_holder(const char *path)
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        if (fd < 0 || flock(fd, LOCK_EX) != 0)
            _exit(1);
        pthread_t t;
        for (int i = 0; i < THREADS; i++)
            pthread_create(&t, NULL, hold_memory, &ready[1]);
        for (;;)
            pause();
    }
    char c;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(read(ready[0], &c, 1), 1);
        assert_int_equal(c, 't');
    }
    close(ready[0]);
    close(ready[1]);
    return pid;
}

static void test_lock_free_once_stopped(void **state)
{
    (void)state;
    char path[] = "/tmp/shoal-test-proc-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    for (int round = 0; round < 8; round++) {
        pid_t pid = spawn_holder(path);
        assert_true(shoal_proc_running(pid));
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1); /* the child holds it */
        kill(pid, SIGKILL);
        while (shoal_proc_running(pid))
            usleep(100);
        /* Not reaped yet: the zombie main thread may still be there. */
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
        assert_int_equal(flock(fd, LOCK_UN), 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_false(shoal_proc_running(pid));
    }
    close(fd);
    unlink(path);
}

static void test_exited_child_not_running(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    for (int i = 0; i < 5000 && shoal_proc_running(pid); i++) /* a zombie, never reaped here */
        usleep(1000);
    assert_false(shoal_proc_running(pid));
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_false(shoal_proc_running(0));
    assert_false(shoal_proc_running(-1));
    assert_true(shoal_proc_running(getpid()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_free_once_stopped),
        cmocka_unit_test(test_exited_child_not_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
