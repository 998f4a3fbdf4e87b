/* node.h - the node actor of shoald: every replica of this node, one ROUTER endpoint and
 * one PUB endpoint (see node.c and docs/ARCHITECTURE.md, "Node runtime").
 *
 * Start with zactor_new(node_actor, cfg) (cfg borrowed, must outlive the actor); the actor
 * then sends "READY" or "FAILED" (reason logged) on the pipe, and "FATAL" if it must stop
 * later (a disk error). zactor_destroy stops it cleanly. */
#ifndef SHOAL_ACTORS_NODE_H
#define SHOAL_ACTORS_NODE_H

#include <czmq.h>

#include "actors/node_config.h"

void node_actor(zsock_t *pipe, void *args);

#endif
