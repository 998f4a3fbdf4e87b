/* test_sockset.c - the node's socket wait (actors/sockset.c): input from a peer wakes it, a
 * socket is asked again only when marked or when its descriptor fired, and the reason the
 * caller must mark a socket it used: an operation on it can take the signal its input came
 * with, after which only a mark brings that input to light. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actors/sockset.h"

typedef struct {
    zsock_t *mine[2], *peer[2];
    sockset_t *set;
    int idx[2];
} fixture_t;

static int setup(void **state)
{
    static int seq; /* inproc names are freed late: never reuse one */
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->set = sockset_new();
    assert_non_null(f->set);
    for (int i = 0; i < 2; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://sockset-%d", seq++);
        f->mine[i] = zsock_new(ZMQ_PAIR);
        f->peer[i] = zsock_new(ZMQ_PAIR);
        assert_non_null(f->mine[i]);
        assert_int_equal(zsock_bind(f->mine[i], "%s", ep), 0);
        assert_int_equal(zsock_connect(f->peer[i], "%s", ep), 0);
        f->idx[i] = sockset_add(f->set, f->mine[i]);
        assert_true(f->idx[i] >= 0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sockset_destroy(&f->set);
    for (int i = 0; i < 2; i++) {
        zsock_destroy(&f->mine[i]);
        zsock_destroy(&f->peer[i]);
    }
    free(f);
    return 0;
}

static void drain(zsock_t *s)
{
    while (zsock_events(s) & ZMQ_POLLIN) {
        char *m = zstr_recv(s);
        zstr_free(&m);
    }
}

static void test_input_wakes_the_wait(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sockset_wait(f->set, 0), 0); /* new sockets are asked: nothing yet */
    assert_int_equal(zstr_send(f->peer[1], "hello"), 0);
    assert_int_equal(sockset_wait(f->set, 5000), 1);
    assert_false(sockset_ready(f->set, f->idx[0]));
    assert_true(sockset_ready(f->set, f->idx[1]));
    char *m = zstr_recv(f->mine[1]);
    assert_string_equal(m, "hello");
    zstr_free(&m);
    sockset_touch(f->set, f->idx[1]);
    assert_int_equal(sockset_wait(f->set, 0), 0);
    assert_false(sockset_ready(f->set, f->idx[1]));
}

/* Input left behind (a burst cut short) is found again through the mark. */
static void test_marked_socket_is_asked_again(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sockset_wait(f->set, 0), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(zstr_send(f->peer[0], "m"), 0);
    assert_int_equal(sockset_wait(f->set, 5000), 1);
    char *m = zstr_recv(f->mine[0]); /* one of three */
    zstr_free(&m);
    sockset_touch(f->set, f->idx[0]);
    assert_int_equal(sockset_wait(f->set, 0), 1);
    assert_true(sockset_ready(f->set, f->idx[0]));
    drain(f->mine[0]);
    sockset_touch(f->set, f->idx[0]);
    assert_int_equal(sockset_wait(f->set, 0), 0);
}

/* ZMQ_EVENTS on the socket (as zsock_events, a receive or a send may do) takes the signal:
 * the descriptor stays quiet while the message waits. Unmarked, the socket is not asked and
 * the wait times out; marked, the message is found at once. */
static void test_a_used_socket_needs_its_mark(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sockset_wait(f->set, 0), 0);
    assert_int_equal(zstr_send(f->peer[0], "late"), 0);
    zclock_sleep(20);                                   /* the command reaches the mailbox */
    assert_true(zsock_events(f->mine[0]) & ZMQ_POLLIN); /* a use that was not marked */
    assert_int_equal(sockset_wait(f->set, 50), 0);
    sockset_touch(f->set, f->idx[0]);
    assert_int_equal(sockset_wait(f->set, 0), 1);
    assert_true(sockset_ready(f->set, f->idx[0]));
    drain(f->mine[0]);
}

static void test_touch_all_asks_every_socket(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sockset_wait(f->set, 0), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(zstr_send(f->peer[i], "x"), 0);
        zclock_sleep(20);
        assert_true(zsock_events(f->mine[i]) & ZMQ_POLLIN); /* signals taken */
    }
    sockset_touch_all(f->set);
    assert_int_equal(sockset_wait(f->set, 0), 2);
    assert_true(sockset_ready(f->set, f->idx[0]) && sockset_ready(f->set, f->idx[1]));
    drain(f->mine[0]);
    drain(f->mine[1]);
}

static void test_full_set_refuses(void **state)
{
    (void)state;
    sockset_t *s = sockset_new();
    zsock_t *socks[SOCKSET_MAX + 1];
    for (int i = 0; i <= SOCKSET_MAX; i++) {
        socks[i] = zsock_new(ZMQ_PAIR);
        assert_int_equal(sockset_add(s, socks[i]), i < SOCKSET_MAX ? i : -1);
    }
    for (int i = 0; i <= SOCKSET_MAX; i++)
        zsock_destroy(&socks[i]);
    sockset_destroy(&s);
    assert_null(s);
    sockset_touch(NULL, 0); /* a node replying before its loop exists */
}

int main(void)
{
    zsys_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_input_wakes_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marked_socket_is_asked_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_used_socket_needs_its_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_all_asks_every_socket, setup, teardown),
        cmocka_unit_test(test_full_set_refuses),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
