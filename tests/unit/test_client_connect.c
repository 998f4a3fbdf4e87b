/* test_client_connect.c - shoal_connect and shoal_destroy from many threads at once.
 *
 * czmq's process setup (zsys_init: the global context, its socket registry, its signal
 * handler) is not thread-safe, and the first sockets of a process are what trigger it:
 * two threads running it together used to abort the process in zsys.c ("not valid after
 * creating sockets", assertion s_open_sockets == 0) about one run in five with 16 threads.
 * The setup only happens once per process, so each round runs in a fresh child process:
 * THREADS threads released together by a barrier each connect (nothing listens: a ZeroMQ
 * connect is lazy) and destroy. A round fails when its child dies from a signal (the
 * abort, or the alarm when it hangs) or when a connect returned NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/shoal.h"

#define THREADS 16
#define ROUNDS 100
#define ENDPOINT "tcp://127.0.0.1:1" /* nothing listens there */

static pthread_barrier_t start;

static void *connect_destroy(void *arg)
{
    pthread_barrier_wait(&start);
    shoal_t *c = shoal_connect(ENDPOINT);
    bool ok = c != NULL;
    shoal_destroy(&c);
    return ok ? &start : NULL; /* non-NULL: connected */
}

/* One round in this (child) process: the exit code of the child. */
static int round_in_child(void)
{
    alarm(30); /* a hang is a failure too */
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, connect_destroy, NULL) != 0)
            return 2;
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ok = NULL;
        pthread_join(t[i], &ok);
        failed += ok == NULL;
    }
    pthread_barrier_destroy(&start);
    return failed ? 1 : 0;
}

static void test_concurrent_connect(void **state)
{
    int aborted = 0, refused = 0;
    for (int r = 0; r < ROUNDS; r++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            exit(round_in_child()); /* exit: czmq's atexit shutdown runs as in a real program */
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status)) {
            aborted++;
            fprintf(stderr, "round %d: child killed by signal %d\n", r, WTERMSIG(status));
        } else if (WEXITSTATUS(status) != 0) {
            refused++;
            fprintf(stderr, "round %d: child exited %d (a connect failed)\n", r,
                    WEXITSTATUS(status));
        }
    }
    if (aborted || refused)
        fprintf(stderr, "%d of %d rounds aborted, %d had a failed connect\n", aborted, ROUNDS,
                refused);
    assert_int_equal(aborted, 0);
    assert_int_equal(refused, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
