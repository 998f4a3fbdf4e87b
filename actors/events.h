/* events.h - the node's PUB socket: Raft events, change events, metrics and progress
 * notices, each as two frames [topic][protobuf] with the topics of docs/CONTRACTS.md:
 *   raft/<shard>      RaftEvent          (meta group: raft/4294967295)
 *   change/<key>      ChangeEvent
 *   metrics/<node>    RaftEvent with type EV_METRICS
 *   progress          StreamNotice (NOTICE_PROGRESS)
 * Owned by one thread (the node actor). A PUB socket never blocks: when a subscriber is
 * slow ZeroMQ drops its messages at the high-water mark, so writers never wait for it. */
#ifndef SHOAL_ACTORS_EVENTS_H
#define SHOAL_ACTORS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/client.pb-c.h"
#include "proto/events.pb-c.h"

typedef struct events_t events_t;

/* Binds a PUB socket on endpoint. NULL with a reason in err. */
events_t *events_new(const char *endpoint, uint64_t node_id, char *err, size_t errlen);
void events_destroy(events_t **self_p);

/* Publishes ev (borrowed) on raft/<ev->shard>, or metrics/<node> for EV_METRICS; fills
 * node_id and timestamp_us. */
void events_raft(events_t *self, Shoal__RaftEvent *ev);
/* Shorthand for a Raft event with a detail line. */
void events_raft_simple(events_t *self, Shoal__RaftEventType type, uint32_t shard, uint64_t term,
                        uint64_t leader, const char *detail);
void events_change(events_t *self, const Shoal__ChangeEvent *ev);
void events_progress(events_t *self, Shoal__ShardProgress **progress, size_t n);
uint64_t events_published(events_t *self);

/* Wall clock in microseconds. */
uint64_t events_now_us(void);

#endif
