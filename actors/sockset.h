/* sockset.h - waiting on a few ZeroMQ sockets, asking libzmq for a socket's events only
 * when its descriptor fired or the caller used the socket since it was last found empty.
 *
 * Why not zmq_poll: it asks every socket for ZMQ_EVENTS before its wait and again after it,
 * and each ask of a socket with no command pending is a poll() system call on that
 * socket's mailbox: ~12 system calls per wake-up of the node's loop with 5 sockets, 1.2-1.4
 * per put in each node (docs/BENCHMARKS.md, session 20), at ~1 us or more each on a
 * virtual machine. A socket's new input only ever becomes visible through a command in its
 * mailbox, which signals its descriptor (ZMQ_FD), so a socket nobody touched needs no ask
 * until its descriptor fires. A send or receive on the socket may process those commands
 * itself, leaving input behind an unsignalled descriptor, so the caller marks every socket
 * it sent on (sockset_touch) and that socket is asked before the next wait; a socket the
 * wait reported ready stays marked, as its reader may leave input behind.
 * The node also marks every socket once per tick (sockset_touch_all), so a use it failed
 * to mark would cost at most a tick, not a hang. */
#ifndef SHOAL_ACTORS_SOCKSET_H
#define SHOAL_ACTORS_SOCKSET_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define SOCKSET_MAX 16

typedef struct sockset sockset_t;

sockset_t *sockset_new(void);
void sockset_destroy(sockset_t **self_p);
/* Adds a socket (every socket starts marked); returns its index, or -1 when full or the
 * socket has no descriptor. */
int sockset_add(sockset_t *self, zsock_t *sock);
/* The caller sent or received on socket i: ask it before the next wait. A NULL set (no
 * loop yet) is left alone. */
void sockset_touch(sockset_t *self, int i);
/* Waits up to timeout_ms (-1: no limit) until a socket has input. Returns how many have
 * (sockset_ready), 0 when the time ran out or a signal came, -1 when the context ended. */
int sockset_wait(sockset_t *self, int timeout_ms);
bool sockset_ready(const sockset_t *self, int i);
void sockset_touch_all(sockset_t *self);

#endif
