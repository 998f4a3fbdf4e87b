/* sockset.c - waiting on a few ZeroMQ sockets with few system calls (see sockset.h). */
#include "actors/sockset.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

struct sockset {
    int n;
    void *sock[SOCKSET_MAX];
    struct pollfd pfd[SOCKSET_MAX];
    bool marked[SOCKSET_MAX]; /* used, or its descriptor fired: ask before waiting */
    bool ready[SOCKSET_MAX];
};

sockset_t *sockset_new(void)
{
    return calloc(1, sizeof(sockset_t));
}

void sockset_destroy(sockset_t **self_p)
{
    free(*self_p);
    *self_p = NULL;
}

int sockset_add(sockset_t *self, zsock_t *sock)
{
    if (self->n == SOCKSET_MAX)
        return -1;
    void *s = zsock_resolve(sock);
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(s, ZMQ_FD, &fd, &len) != 0 || fd < 0)
        return -1;
    int i = self->n++;
    self->sock[i] = s;
    self->pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    self->marked[i] = true;
    return i;
}

void sockset_touch(sockset_t *self, int i)
{
    if (self && i >= 0 && i < self->n) /* NULL: no loop yet (a node's start) or any more */
        self->marked[i] = true;
}

/* ZMQ_EVENTS processes the socket's pending commands (and consumes its signal). */
static bool has_input(void *s)
{
    uint32_t ev = 0;
    size_t len = sizeof ev;
    return zmq_getsockopt(s, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/* Asks the marked sockets; returns how many have input. */
static int ask_marked(sockset_t *self)
{
    int k = 0;
    for (int i = 0; i < self->n; i++) {
        self->ready[i] = false;
        if (!self->marked[i])
            continue;
        /* one with input stays marked: the caller reads it, maybe not to the end */
        self->marked[i] = self->ready[i] = has_input(self->sock[i]);
        k += self->ready[i];
    }
    return k;
}

int sockset_wait(sockset_t *self, int timeout_ms)
{
    int k = ask_marked(self);
    if (k)
        return k;
    int rc = poll(self->pfd, (nfds_t)self->n, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    if (rc == 0)
        return 0;
    for (int i = 0; i < self->n; i++)
        if (self->pfd[i].revents)
            self->marked[i] = true;
    return ask_marked(self); /* 0 when only commands without input came */
}

bool sockset_ready(const sockset_t *self, int i)
{
    return i >= 0 && i < self->n && self->ready[i];
}

void sockset_touch_all(sockset_t *self)
{
    for (int i = 0; i < self->n; i++)
        self->marked[i] = true;
}
