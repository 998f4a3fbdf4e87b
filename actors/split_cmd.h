/* split_cmd.h - the SPLIT command of add-shard by split (proto SplitCommand inside a
 * WriteCommand): built from the shard map by the source shard's leader, checked by every
 * replica before it cuts its data (split.h). A command that does not check out is refused
 * as a whole, so no replica applies half a split.
 *
 * The source's leader proposes it (split_node.c) and the fsm applies it (split_fsm.c). */
#ifndef SHOAL_ACTORS_SPLIT_CMD_H
#define SHOAL_ACTORS_SPLIT_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/split.h"
#include "proto/admin.pb-c.h"
#include "proto/client.pb-c.h"

/* The packed WriteCommand (client id 0: not a client's write) that splits target's source
 * as map records it; target must be marked splitting. malloc'd into *buf; 0, or -1 with
 * one line in err. */
int split_cmd_encode(const Shoal__ShardMap *m, uint32_t target, uint8_t **buf, size_t *len,
                     char *err, size_t errlen);

/* Fills sp from a decoded command applied at index of source's log; sp borrows c's point
 * arrays. Refused (-1, one line in err) for a target equal to source or the metadata
 * group, an empty or oversized point list, points not strictly ascending, or a point in
 * both lists. */
int split_cmd_check(const Shoal__SplitCommand *c, uint32_t source, uint64_t index, split_t *sp,
                    char *err, size_t errlen);

/* The source's fence after it applied a SPLIT: true when any key cmd writes is on the
 * target's points of r (split_ring), so the source must not apply it (the whole command:
 * a batch stays atomic) and answers with a retryable status instead. A SPLIT itself and
 * an unknown op are not fenced (they write no user key). */
bool split_cmd_fenced(const ring_t *r, uint32_t target, const Shoal__WriteCommand *cmd);

#endif
