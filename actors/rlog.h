/* rlog.h - the durable Raft log of a node: one set of segment files shared by every Raft
 * group (shard) the node hosts, so that one fdatasync makes everything ready durable.
 *
 * Records (format in docs/FORMATS.md, "Node runtime"): entries, hard states and snapshot
 * marks, each tagged with its group and checksummed. An in-memory index per group maps a
 * Raft index to (segment, offset) for random access; entries are read back with pread.
 *
 * Writes are buffered by the append calls and reach the disk in rlog_sync: one write and
 * one fdatasync per dirty segment, whatever the number of groups (group commit).
 *
 * Recovery reads every segment in order. In the newest segment a record that is cut short
 * or fails its checksum with nothing valid after it is a torn tail: it is cut off and the
 * log opens. Anything else that fails (a bad record followed by a good one, a bad record in
 * an older segment, an index gap) is corruption: open fails with an error naming the file
 * and the byte offset, and the node refuses to start rather than serve a damaged log.
 *
 * Not thread-safe: one actor (the node's log actor) owns it. */
#ifndef SHOAL_ACTORS_RLOG_H
#define SHOAL_ACTORS_RLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/rlog_io.h"

typedef struct rlog_t rlog_t;

enum { RLOG_REC_ENTRY = 1, RLOG_REC_HARDSTATE = 2, RLOG_REC_SNAPSHOT = 3, RLOG_REC_DROP = 4 };

#define RLOG_HEADER 8             /* u32 checksum, u32 body length */
#define RLOG_MAX_BODY (65u << 20) /* a frame is at most 64 MiB */

/* One decoded record; data points into the decoded buffer (borrowed). */
typedef struct {
    uint8_t type;
    uint32_t group;
    uint64_t term;   /* entry: term; hardstate, drop: term; snapshot: term of the snapshot index */
    uint64_t index;  /* entry: index; hardstate, drop: vote; snapshot: snapshot index */
    uint64_t commit; /* hardstate: commit */
    uint8_t etype;   /* entry: the entry type (proto EntryType) */
    const uint8_t *data; /* entry payload, or snapshot conf-state blob */
    size_t len;
} rlog_record_t;

enum { RLOG_DEC_OK = 0, RLOG_DEC_SHORT = 1, RLOG_DEC_BAD = 2 };

/* Decodes one record at buf. RLOG_DEC_OK: *rec filled, *used = its size on disk.
 * RLOG_DEC_SHORT: buf ends before the record does. RLOG_DEC_BAD: checksum or field check
 * failed; why says which. Never reads past buf+avail. */
int rlog_record_decode(const uint8_t *buf, size_t avail, rlog_record_t *rec, size_t *used,
                       const char **why);
/* Encodes rec into out (capacity cap); returns the size, or 0 when it does not fit. */
size_t rlog_record_encode(const rlog_record_t *rec, uint8_t *out, size_t cap);

typedef struct {
    uint64_t segment_bytes; /* rotate after this many bytes (default 64 MiB) */
    /* 0: the active segment grows with each write. Otherwise it is extended ahead of the
     * data by this many zero bytes at a time (written and synced once), so that the
     * fdatasync of a commit batch finds the file size and blocks unchanged and writes the
     * data alone, without the inode; recovery reads an all-zero remainder of the newest
     * segment as its end. */
    uint64_t prealloc_bytes;
} rlog_options_t;

/* Opens (creating) the log in dir. io may be NULL for the real disk. On failure returns a
 * negative SHOAL_E* code and a one-line reason in err; on success err is empty or holds a
 * note worth logging (a torn tail that was cut off). */
int rlog_open(const char *dir, const rlog_io_t *io, const rlog_options_t *opts, rlog_t **out,
              char *err, size_t errlen);
void rlog_destroy(rlog_t **self_p);

/* Appends one entry of group. index must be at most last+1 of that group (and above its
 * snapshot): an index at or below last replaces that entry and drops all after it (the
 * Raft conflict rule). Buffered until rlog_sync. */
int rlog_append(rlog_t *self, uint32_t group, uint64_t term, uint64_t index, uint8_t etype,
                const void *data, size_t len);
int rlog_set_hardstate(rlog_t *self, uint32_t group, uint64_t term, uint64_t vote, uint64_t commit);
/* Marks that group's state up to index is held by a snapshot (the state machine or a
 * received snapshot): entries at or below index are dropped; entries above are kept when
 * the term at index matches, otherwise all are dropped. conf is an opaque blob kept with
 * it (the configuration at index). */
int rlog_set_snapshot(rlog_t *self, uint32_t group, uint64_t index, uint64_t term, const void *conf,
                      size_t conf_len);
/* Drops every entry and the snapshot mark of group (its replica left this node and its
 * data is deleted): a DROP record, after which recovery forgets the group's earlier
 * records, so that a replica of it placed here again starts empty (learner, snapshot).
 * The group's term and vote stay (the record carries them): the node never votes twice
 * in a term it already voted in. Buffered until rlog_sync. */
int rlog_drop_group(rlog_t *self, uint32_t group);
/* Writes every buffered record and fdatasyncs each segment that changed: the group commit. */
int rlog_sync(rlog_t *self);
/* Writes every buffered record to its segment without a sync: what storage/fsync = never
 * does per batch, so that a process crash (not a power cut) loses nothing written. */
int rlog_flush(rlog_t *self);
/* Deletes segments that hold nothing any group still needs; rewrites the hard state and
 * snapshot marks of idle groups forward first so old segments can go. */
int rlog_gc(rlog_t *self);

/* The log is not thread-safe. The log actor holds this lock while it writes, syncs and
 * collects a batch; the node thread takes it to read the log while the log actor may be
 * working (a replica opened at runtime by a move or a split). */
void rlog_lock(rlog_t *self);
void rlog_unlock(rlog_t *self);

/* Reading. All return SHOAL_ENOTFOUND for an unknown group or index out of range. */
bool rlog_has_group(rlog_t *self, uint32_t group);
uint64_t rlog_first_index(rlog_t *self, uint32_t group); /* snapshot index + 1 */
uint64_t rlog_last_index(rlog_t *self, uint32_t group);  /* snapshot index if empty */
int rlog_term(rlog_t *self, uint32_t group, uint64_t index, uint64_t *term);
/* Reads one entry; *data is malloc'd (caller frees), *len its size. */
int rlog_entry(rlog_t *self, uint32_t group, uint64_t index, uint64_t *term, uint8_t *etype,
               uint8_t **data, size_t *len);
int rlog_hardstate(rlog_t *self, uint32_t group, uint64_t *term, uint64_t *vote, uint64_t *commit);
/* The snapshot mark; *conf borrowed until the next call that changes the group. */
int rlog_snapshot(rlog_t *self, uint32_t group, uint64_t *index, uint64_t *term,
                  const uint8_t **conf, size_t *conf_len);
/* Group ids present in the log (recovered or written); returns the count, fills up to cap. */
size_t rlog_groups(rlog_t *self, uint32_t *out, size_t cap);
size_t rlog_segment_count(rlog_t *self);
uint64_t rlog_bytes(rlog_t *self);

#endif
