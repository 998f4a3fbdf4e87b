/* rlog.c - the node's durable Raft log: segment files shared by all groups; see rlog.h.
 *
 * Layout: dir/<seq as 16 hex digits>.seg, seq increasing. A record is
 *   u32 checksum (XXH3 low 32 of the next 4+len bytes) | u32 len | body[len]
 * body = u8 type | u32 group | fields (little-endian); see docs/FORMATS.md.
 *
 * Invariants kept here:
 *  - a group's entries are contiguous: index first..last, first = snapshot index + 1;
 *  - a record is written only at the end of the newest segment, so damage after a crash
 *    can only be at the end of the newest segment (everything else was synced before);
 *  - the newest hard state and snapshot mark of every group live in a segment that is not
 *    deleted: rlog_gc rewrites them into the active segment before deleting older ones.
 */
#include "actors/rlog.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/checksum.h"
#include "engine/error.h"

#define DEFAULT_SEGMENT_BYTES (64ull << 20)

typedef struct {
    uint32_t seg; /* index into self->segs of the segment holding it */
    uint32_t len; /* payload length */
    uint64_t off; /* payload offset in the segment */
    uint64_t term;
    uint8_t etype;
} ent_loc_t;

typedef struct {
    uint32_t id;
    uint64_t snap_index, snap_term;
    uint8_t *snap_conf;
    size_t snap_conf_len;
    uint64_t snap_seq; /* segment seq holding the newest snapshot mark (0: none) */
    uint64_t hs_term, hs_vote, hs_commit;
    uint64_t hs_seq;  /* segment seq holding the newest hard state (0: none) */
    bool provisional; /* recovery: entries began past the snapshot mark seen so far */
    ent_loc_t *ents;  /* ents[i] is index snap_index + 1 + i */
    size_t n, cap;
} group_t;

typedef struct {
    uint64_t seq;
    int fd;
    uint64_t size;  /* bytes of records written */
    uint64_t alloc; /* file length: size plus zero bytes written ahead (prealloc_bytes) */
    bool dirty;     /* written since the last sync */
} segment_t;

struct rlog_t {
    char *dir;
    const rlog_io_t *io;
    uint64_t segment_bytes;
    uint64_t prealloc_bytes;
    segment_t *segs;
    size_t nsegs, capsegs;
    group_t **groups;
    size_t ngroups, capgroups;
    uint8_t *buf; /* records not yet written to the active segment */
    size_t buflen, bufcap;
    pthread_mutex_t mu; /* rlog_lock: the log actor's batch against a runtime replica open */
};

/* ---- little-endian helpers ---------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- record codec ------------------------------------------------------------------- */

#define BODY_ENTRY_FIXED (1 + 4 + 8 + 8 + 1)
#define BODY_HS (1 + 4 + 8 + 8 + 8)
#define BODY_SNAP_FIXED (1 + 4 + 8 + 8)
#define BODY_DROP (1 + 4 + 8 + 8)

static size_t body_size(const rlog_record_t *r)
{
    switch (r->type) {
    case RLOG_REC_ENTRY: return BODY_ENTRY_FIXED + r->len;
    case RLOG_REC_HARDSTATE: return BODY_HS;
    case RLOG_REC_SNAPSHOT: return BODY_SNAP_FIXED + r->len;
    case RLOG_REC_DROP: return BODY_DROP;
    default: return 0;
    }
}

size_t rlog_record_encode(const rlog_record_t *r, uint8_t *out, size_t cap)
{
    size_t blen = body_size(r);
    if (blen == 0 || blen > RLOG_MAX_BODY || RLOG_HEADER + blen > cap)
        return 0;
    uint8_t *b = out + RLOG_HEADER;
    b[0] = r->type;
    put32(b + 1, r->group);
    put64(b + 5, r->term);
    put64(b + 13, r->index);
    if (r->type == RLOG_REC_ENTRY) {
        b[21] = r->etype;
        if (r->len)
            memcpy(b + 22, r->data, r->len);
    } else if (r->type == RLOG_REC_HARDSTATE) {
        put64(b + 21, r->commit);
    } else if (r->type == RLOG_REC_SNAPSHOT && r->len) {
        memcpy(b + 21, r->data, r->len);
    }
    put32(out + 4, (uint32_t)blen);
    put32(out, shoal_checksum32(out + 4, 4 + blen));
    return RLOG_HEADER + blen;
}

int rlog_record_decode(const uint8_t *buf, size_t avail, rlog_record_t *r, size_t *used,
                       const char **why)
{
    *why = NULL;
    if (avail < RLOG_HEADER)
        return RLOG_DEC_SHORT;
    uint32_t blen = get32(buf + 4);
    if (blen > RLOG_MAX_BODY || blen < 1 + 4 + 16) {
        *why = "record length out of range";
        return RLOG_DEC_BAD;
    }
    if (avail - RLOG_HEADER < blen)
        return RLOG_DEC_SHORT;
    if (shoal_checksum32(buf + 4, 4 + (size_t)blen) != get32(buf)) {
        *why = "record checksum mismatch";
        return RLOG_DEC_BAD;
    }
    const uint8_t *b = buf + RLOG_HEADER;
    memset(r, 0, sizeof *r);
    r->type = b[0];
    r->group = get32(b + 1);
    r->term = get64(b + 5);
    r->index = get64(b + 13);
    if (r->type == RLOG_REC_ENTRY && blen >= BODY_ENTRY_FIXED) {
        r->etype = b[21];
        r->data = b + 22;
        r->len = blen - BODY_ENTRY_FIXED;
    } else if (r->type == RLOG_REC_HARDSTATE && blen == BODY_HS) {
        r->commit = get64(b + 21);
    } else if (r->type == RLOG_REC_SNAPSHOT && blen >= BODY_SNAP_FIXED) {
        r->data = b + 21;
        r->len = blen - BODY_SNAP_FIXED;
    } else if (r->type == RLOG_REC_DROP && blen == BODY_DROP) {
        /* term and vote only */
    } else {
        *why = "unknown record type or bad size for its type";
        return RLOG_DEC_BAD;
    }
    *used = RLOG_HEADER + blen;
    return RLOG_DEC_OK;
}

/* ---- groups -------------------------------------------------------------------------- */

static group_t *group_find(rlog_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->ngroups; i++)
        if (self->groups[i]->id == id)
            return self->groups[i];
    return NULL;
}

static group_t *group_get(rlog_t *self, uint32_t id)
{
    group_t *g = group_find(self, id);
    if (g)
        return g;
    if (self->ngroups == self->capgroups) {
        size_t cap = self->capgroups ? self->capgroups * 2 : 16;
        group_t **ng = realloc(self->groups, cap * sizeof *ng);
        if (!ng)
            return NULL;
        self->groups = ng;
        self->capgroups = cap;
    }
    g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->id = id;
    self->groups[self->ngroups++] = g;
    return g;
}

static uint64_t group_last(const group_t *g)
{
    return g->snap_index + g->n;
}

/* Applies an entry to the in-memory index (recovery and append share this). */
static int group_put_entry(group_t *g, uint64_t index, ent_loc_t loc)
{
    if (index <= g->snap_index || index > group_last(g) + 1)
        return SHOAL_EINVAL;
    g->n = index - g->snap_index - 1; /* conflict: drop index and everything after */
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        ent_loc_t *ne = realloc(g->ents, cap * sizeof *ne);
        if (!ne)
            return SHOAL_ENOMEM;
        g->ents = ne;
        g->cap = cap;
    }
    g->ents[g->n++] = loc;
    return 0;
}

static int group_put_snapshot(group_t *g, uint64_t index, uint64_t term, const uint8_t *conf,
                              size_t len, uint64_t seq)
{
    uint8_t *c = NULL;
    if (len) {
        c = malloc(len);
        if (!c)
            return SHOAL_ENOMEM;
        memcpy(c, conf, len);
    }
    free(g->snap_conf);
    g->snap_conf = c;
    g->snap_conf_len = len;
    g->snap_seq = seq;
    bool keep = index >= g->snap_index && index <= group_last(g) &&
                (index == g->snap_index ? (g->provisional || term == g->snap_term)
                                        : g->ents[index - g->snap_index - 1].term == term);
    if (keep) {
        size_t drop = (size_t)(index - g->snap_index);
        memmove(g->ents, g->ents + drop, (g->n - drop) * sizeof *g->ents);
        g->n -= drop;
    } else {
        g->n = 0;
    }
    g->snap_index = index;
    g->snap_term = term;
    g->provisional = false;
    return 0;
}

/* A DROP: the group's entries and snapshot mark are gone, its term and vote stay. */
static void group_reset(group_t *g, uint64_t term, uint64_t vote, uint64_t seq)
{
    g->n = 0;
    g->snap_index = g->snap_term = 0;
    free(g->snap_conf);
    g->snap_conf = NULL;
    g->snap_conf_len = 0;
    g->snap_seq = 0;
    g->provisional = false;
    g->hs_term = term;
    g->hs_vote = vote;
    g->hs_commit = 0;
    g->hs_seq = seq; /* the DROP record holds the hard state now */
}

/* ---- segments ------------------------------------------------------------------------ */

static void seg_path(const rlog_t *self, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIx64 ".seg", self->dir, seq);
}

/* The code of what an rlog_io call that writes returned: 0, or -errno. A full disk gets its
 * own code so that the messages say so; it stops the node as any other write failure does. */
static int io_rc(int64_t r)
{
    if (r == 0)
        return 0;
    return r == -ENOSPC || r == -EDQUOT ? SHOAL_ENOSPC : SHOAL_EIO;
}

/* The same for a pwrite of len bytes that returned n (a short count is an I/O error). */
static int write_rc(ssize_t n, size_t len)
{
    return n == (ssize_t)len ? 0 : n < 0 ? io_rc(n) : SHOAL_EIO;
}

static int seg_add(rlog_t *self, uint64_t seq, int fd, uint64_t size)
{
    if (self->nsegs == self->capsegs) {
        size_t cap = self->capsegs ? self->capsegs * 2 : 8;
        segment_t *ns = realloc(self->segs, cap * sizeof *ns);
        if (!ns)
            return SHOAL_ENOMEM;
        self->segs = ns;
        self->capsegs = cap;
    }
    self->segs[self->nsegs++] = (segment_t){seq, fd, size, size, false};
    return 0;
}

static int seg_create(rlog_t *self, uint64_t seq)
{
    char path[4096];
    seg_path(self, seq, path, sizeof path);
    int fd = self->io->open(self->io->ctx, path, true);
    if (fd < 0)
        return io_rc(fd);
    int rc = seg_add(self, seq, fd, 0);
    if (rc == 0)
        rc = io_rc(self->io->sync_dir(self->io->ctx, self->dir));
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists segment seqs in dir, sorted. Returns the count or a negative code. */
static long list_segments(const char *dir, uint64_t **out)
{
    DIR *d = opendir(dir);
    if (!d)
        return SHOAL_EIO;
    size_t n = 0, cap = 16;
    uint64_t *v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l != 20 || strcmp(e->d_name + 16, ".seg") != 0)
            continue;
        char *end;
        uint64_t seq = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16)
            continue;
        if (n == cap) {
            uint64_t *nv = realloc(v, cap * 2 * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap *= 2;
        }
        v[n++] = seq;
    }
    closedir(d);
    if (!v)
        return SHOAL_ENOMEM;
    qsort(v, n, sizeof *v, cmp_u64);
    *out = v;
    return (long)n;
}

/* ---- recovery ------------------------------------------------------------------------ */

static int apply_record(rlog_t *self, const rlog_record_t *r, uint32_t segidx, uint64_t off)
{
    group_t *g = group_get(self, r->group);
    if (!g)
        return SHOAL_ENOMEM;
    uint64_t seq = self->segs[segidx].seq;
    switch (r->type) {
    case RLOG_REC_ENTRY: {
        ent_loc_t loc = {segidx, (uint32_t)r->len, off + RLOG_HEADER + BODY_ENTRY_FIXED, r->term,
                         r->etype};
        if (g->n == 0 && r->index > g->snap_index + 1) {
            /* Segments before this one were deleted behind a snapshot whose mark lives in
             * a later segment: accept the entries until the mark arrives (checked after). */
            g->snap_index = r->index - 1;
            g->snap_term = 0;
            g->provisional = true;
        }
        return group_put_entry(g, r->index, loc);
    }
    case RLOG_REC_HARDSTATE:
        g->hs_term = r->term;
        g->hs_vote = r->index;
        g->hs_commit = r->commit;
        g->hs_seq = seq;
        return 0;
    case RLOG_REC_DROP: group_reset(g, r->term, r->index, seq); return 0;
    default: return group_put_snapshot(g, r->index, r->term, r->data, r->len, seq);
    }
}

/* Zero bytes written ahead of the data (prealloc_bytes) end the records of the newest
 * segment: a record never starts with 8 zero bytes (its length is at least 21). */
static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Decides whether a bad record at off in the newest segment is a torn tail: it is when no
 * valid record follows it (a write cut by a crash leaves nothing good behind it). */
static bool valid_record_follows(const uint8_t *buf, size_t size, size_t off)
{
    for (size_t p = off + 1; p + RLOG_HEADER <= size; p++) {
        rlog_record_t r;
        size_t used;
        const char *why;
        if (rlog_record_decode(buf + p, size - p, &r, &used, &why) == RLOG_DEC_OK)
            return true;
    }
    return false;
}

static int recover_segment(rlog_t *self, uint32_t segidx, bool newest, char *err, size_t errlen)
{
    segment_t *s = &self->segs[segidx];
    char path[4096];
    seg_path(self, s->seq, path, sizeof path);
    int64_t size = self->io->size(self->io->ctx, s->fd);
    if (size < 0) {
        snprintf(err, errlen, "%s: cannot read size: %s", path, strerror((int)-size));
        return SHOAL_EIO;
    }
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return SHOAL_ENOMEM;
    if (self->io->pread(self->io->ctx, s->fd, buf, (size_t)size, 0) != size) {
        free(buf);
        snprintf(err, errlen, "%s: short read", path);
        return SHOAL_EIO;
    }
    size_t off = 0;
    int rc = 0;
    uint64_t alloc = (uint64_t)size;
    while (off < (size_t)size) {
        rlog_record_t r;
        size_t used;
        const char *why = "record cut short";
        int d = rlog_record_decode(buf + off, (size_t)size - off, &r, &used, &why);
        if (d == RLOG_DEC_OK) {
            rc = apply_record(self, &r, segidx, off);
            if (rc == SHOAL_EINVAL) {
                snprintf(err, errlen,
                         "%s: offset %zu: entry %" PRIu64 " of group %" PRIu32
                         " leaves a gap in the log",
                         path, off, r.index, r.group);
                rc = SHOAL_ECORRUPT;
            }
            if (rc)
                break;
            off += used;
            continue;
        }
        if (newest && all_zero(buf + off, (size_t)size - off)) {
            size = (int64_t)off; /* the preallocated rest: writing goes on from here */
            break;
        }
        if (newest && !valid_record_follows(buf, (size_t)size, off)) {
            alloc = off;
            rc = self->io->truncate(self->io->ctx, s->fd, off) == 0 ? 0 : SHOAL_EIO;
            if (rc == 0)
                rc = self->io->sync(self->io->ctx, s->fd) == 0 ? 0 : SHOAL_EIO;
            snprintf(err, errlen, "%s: torn tail of %zu bytes at offset %zu cut off", path,
                     (size_t)size - off, off);
            size = (int64_t)off;
            break;
        }
        snprintf(err, errlen, "%s: corrupt record at offset %zu: %s", path, off, why);
        rc = SHOAL_ECORRUPT;
        break;
    }
    s->size = (uint64_t)size;
    s->alloc = alloc;
    free(buf);
    return rc;
}

static int recover(rlog_t *self, char *err, size_t errlen)
{
    uint64_t *seqs = NULL;
    long n = list_segments(self->dir, &seqs);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot list directory", self->dir);
        return (int)n;
    }
    int rc = 0;
    long newest = n - 1; /* the last segment with data: empty ones may follow a crash */
    for (long i = n - 1; i > 0; i--) {
        char path[4096];
        struct stat st;
        seg_path(self, seqs[i], path, sizeof path);
        if (stat(path, &st) == 0 && st.st_size > 0)
            break;
        newest = i - 1;
    }
    for (long i = 0; i < n && rc == 0; i++) {
        char path[4096];
        seg_path(self, seqs[i], path, sizeof path);
        int fd = self->io->open(self->io->ctx, path, false);
        if (fd < 0) {
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-fd));
            rc = SHOAL_EIO;
            break;
        }
        rc = seg_add(self, seqs[i], fd, 0);
        if (rc == 0)
            rc = recover_segment(self, (uint32_t)(self->nsegs - 1), i >= newest, err, errlen);
    }
    free(seqs);
    for (size_t i = 0; rc == 0 && i < self->ngroups; i++)
        if (self->groups[i]->provisional) {
            snprintf(err, errlen,
                     "%s: entries of group %" PRIu32 " start at %" PRIu64
                     " but no snapshot covers the indexes before",
                     self->dir, self->groups[i]->id, self->groups[i]->snap_index + 1);
            rc = SHOAL_ECORRUPT;
        }
    if (rc == 0 && self->nsegs == 0)
        rc = seg_create(self, 1);
    return rc;
}

int rlog_open(const char *dir, const rlog_io_t *io, const rlog_options_t *opts, rlog_t **out,
              char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    char scratch[16];
    if (!err) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
        return SHOAL_EIO;
    }
    rlog_t *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        return SHOAL_ENOMEM;
    }
    pthread_mutex_init(&self->mu, NULL);
    self->io = io ? io : rlog_io_posix();
    self->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT_BYTES;
    self->prealloc_bytes = opts ? opts->prealloc_bytes : 0;
    int rc = recover(self, err, errlen);
    if (rc) {
        rlog_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void rlog_destroy(rlog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rlog_t *self = *self_p;
    for (size_t i = 0; i < self->nsegs; i++)
        self->io->close(self->io->ctx, self->segs[i].fd);
    for (size_t i = 0; i < self->ngroups; i++) {
        free(self->groups[i]->ents);
        free(self->groups[i]->snap_conf);
        free(self->groups[i]);
    }
    free(self->groups);
    free(self->segs);
    free(self->buf);
    free(self->dir);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

/* ---- writing ------------------------------------------------------------------------- */

static segment_t *active(rlog_t *self)
{
    return &self->segs[self->nsegs - 1];
}

/* Makes room for n more bytes in s by writing zeros ahead and syncing them, so that the
 * syncs of the data written there change neither the file's size nor its block map. */
static int prealloc(rlog_t *self, segment_t *s, size_t n)
{
    if (self->prealloc_bytes == 0 || s->size + n <= s->alloc)
        return 0;
    uint64_t step = self->prealloc_bytes;
    uint64_t end = (s->size + n + step - 1) / step * step;
    static const uint8_t zeros[64 * 1024];
    for (uint64_t off = s->alloc; off < end;) {
        size_t len = end - off < sizeof zeros ? (size_t)(end - off) : sizeof zeros;
        int rc = write_rc(self->io->pwrite(self->io->ctx, s->fd, zeros, len, off), len);
        if (rc)
            return rc;
        off += len;
    }
    /* records written before (s->dirty) are synced here too: harmless, they are older */
    int rc = io_rc(self->io->sync(self->io->ctx, s->fd));
    if (rc)
        return rc;
    s->alloc = end;
    s->dirty = false;
    return 0;
}

/* Writes the buffered records to the active segment (no sync). */
static int flush_buffer(rlog_t *self)
{
    if (self->buflen == 0)
        return 0;
    segment_t *s = active(self);
    int rc = prealloc(self, s, self->buflen);
    if (rc)
        return rc;
    rc = write_rc(self->io->pwrite(self->io->ctx, s->fd, self->buf, self->buflen, s->size),
                  self->buflen);
    if (rc)
        return rc;
    s->size += self->buflen;
    s->dirty = true;
    self->buflen = 0;
    return 0;
}

/* Starts a new segment when the active one is full; the old one is synced by rlog_sync. */
static int maybe_rotate(rlog_t *self)
{
    if (active(self)->size + self->buflen < self->segment_bytes)
        return 0;
    /* Sync the full segment before the next one gets data: then a crash can leave damage
     * only in the newest non-empty segment, which is what recovery assumes. */
    int rc = flush_buffer(self);
    segment_t *s = active(self);
    /* an older segment holds records only: recovery takes zeros there for corruption */
    if (rc == 0 && s->alloc > s->size) {
        rc = io_rc(self->io->truncate(self->io->ctx, s->fd, s->size));
        s->alloc = s->size;
        s->dirty = true;
    }
    if (rc == 0 && s->dirty) {
        rc = io_rc(self->io->sync(self->io->ctx, s->fd));
        s->dirty = false;
    }
    if (rc == 0)
        rc = seg_create(self, active(self)->seq + 1);
    return rc;
}

/* Appends an encoded record to the buffer; *off gets its offset in the active segment. */
static int buffer_record(rlog_t *self, const rlog_record_t *r, uint64_t *off)
{
    int rc = maybe_rotate(self);
    if (rc)
        return rc;
    size_t need = RLOG_HEADER + body_size(r);
    if (self->buflen + need > self->bufcap) {
        size_t cap = self->bufcap ? self->bufcap : 64 * 1024;
        while (cap < self->buflen + need)
            cap *= 2;
        uint8_t *nb = realloc(self->buf, cap);
        if (!nb)
            return SHOAL_ENOMEM;
        self->buf = nb;
        self->bufcap = cap;
    }
    size_t n = rlog_record_encode(r, self->buf + self->buflen, self->bufcap - self->buflen);
    if (n == 0)
        return SHOAL_ETOOLARGE;
    *off = active(self)->size + self->buflen;
    self->buflen += n;
    return 0;
}

int rlog_append(rlog_t *self, uint32_t group, uint64_t term, uint64_t index, uint8_t etype,
                const void *data, size_t len)
{
    group_t *g = group_get(self, group);
    if (!g)
        return SHOAL_ENOMEM;
    if (index <= g->snap_index || index > group_last(g) + 1)
        return SHOAL_EINVAL;
    if (len > RLOG_MAX_BODY - BODY_ENTRY_FIXED)
        return SHOAL_ETOOLARGE;
    rlog_record_t r = {.type = RLOG_REC_ENTRY,
                       .group = group,
                       .term = term,
                       .index = index,
                       .etype = etype,
                       .data = data,
                       .len = len};
    uint64_t off;
    int rc = buffer_record(self, &r, &off);
    if (rc)
        return rc;
    ent_loc_t loc = {(uint32_t)(self->nsegs - 1), (uint32_t)len,
                     off + RLOG_HEADER + BODY_ENTRY_FIXED, term, etype};
    return group_put_entry(g, index, loc);
}

int rlog_set_hardstate(rlog_t *self, uint32_t group, uint64_t term, uint64_t vote, uint64_t commit)
{
    group_t *g = group_get(self, group);
    if (!g)
        return SHOAL_ENOMEM;
    rlog_record_t r = {
        .type = RLOG_REC_HARDSTATE, .group = group, .term = term, .index = vote, .commit = commit};
    uint64_t off;
    int rc = buffer_record(self, &r, &off);
    if (rc)
        return rc;
    g->hs_term = term;
    g->hs_vote = vote;
    g->hs_commit = commit;
    g->hs_seq = active(self)->seq;
    return 0;
}

int rlog_set_snapshot(rlog_t *self, uint32_t group, uint64_t index, uint64_t term, const void *conf,
                      size_t conf_len)
{
    group_t *g = group_get(self, group);
    if (!g)
        return SHOAL_ENOMEM;
    if (index < g->snap_index)
        return SHOAL_EINVAL; /* snapshots only move forward */
    rlog_record_t r = {.type = RLOG_REC_SNAPSHOT,
                       .group = group,
                       .term = term,
                       .index = index,
                       .data = conf,
                       .len = conf_len};
    uint64_t off;
    int rc = buffer_record(self, &r, &off);
    if (rc)
        return rc;
    return group_put_snapshot(g, index, term, conf, conf_len, active(self)->seq);
}

void rlog_lock(rlog_t *self)
{
    pthread_mutex_lock(&self->mu);
}

void rlog_unlock(rlog_t *self)
{
    pthread_mutex_unlock(&self->mu);
}

int rlog_drop_group(rlog_t *self, uint32_t group)
{
    group_t *g = group_get(self, group);
    if (!g)
        return SHOAL_ENOMEM;
    rlog_record_t r = {
        .type = RLOG_REC_DROP, .group = group, .term = g->hs_term, .index = g->hs_vote};
    uint64_t off;
    int rc = buffer_record(self, &r, &off);
    if (rc == 0)
        group_reset(g, g->hs_term, g->hs_vote, active(self)->seq);
    return rc;
}

int rlog_sync(rlog_t *self)
{
    int rc = flush_buffer(self);
    for (size_t i = 0; rc == 0 && i < self->nsegs; i++) {
        if (!self->segs[i].dirty)
            continue;
        rc = io_rc(self->io->sync(self->io->ctx, self->segs[i].fd));
        self->segs[i].dirty = false;
    }
    return rc;
}

int rlog_flush(rlog_t *self)
{
    return flush_buffer(self);
}

/* The oldest segment seq that group still needs. */
static uint64_t group_oldest_seq(rlog_t *self, const group_t *g)
{
    uint64_t oldest = UINT64_MAX;
    if (g->n)
        oldest = self->segs[g->ents[0].seg].seq;
    if (g->hs_seq && g->hs_seq < oldest)
        oldest = g->hs_seq;
    if (g->snap_seq && g->snap_seq < oldest)
        oldest = g->snap_seq;
    return oldest;
}

/* Rewrites hard state and snapshot mark of a group with no entries in old segments. */
static int carry_forward(rlog_t *self, group_t *g, uint64_t below)
{
    int rc = 0;
    if (g->n && self->segs[g->ents[0].seg].seq < below)
        return 0; /* its entries pin the segment anyway */
    if (g->snap_seq && g->snap_seq < below) {
        uint8_t *conf = NULL;
        if (g->snap_conf_len && !(conf = malloc(g->snap_conf_len)))
            return SHOAL_ENOMEM;
        if (conf)
            memcpy(conf, g->snap_conf, g->snap_conf_len);
        rc = rlog_set_snapshot(self, g->id, g->snap_index, g->snap_term, conf, g->snap_conf_len);
        free(conf);
    }
    if (rc == 0 && g->hs_seq && g->hs_seq < below)
        rc = rlog_set_hardstate(self, g->id, g->hs_term, g->hs_vote, g->hs_commit);
    return rc;
}

int rlog_gc(rlog_t *self)
{
    if (self->nsegs < 2)
        return 0;
    uint64_t act = active(self)->seq;
    int rc = 0;
    for (size_t i = 0; i < self->ngroups && rc == 0; i++)
        rc = carry_forward(self, self->groups[i], act);
    if (rc == 0)
        rc = rlog_sync(self); /* the carried records must be durable before deleting */
    uint64_t keep = act;
    for (size_t i = 0; i < self->ngroups; i++) {
        uint64_t o = group_oldest_seq(self, self->groups[i]);
        if (o < keep)
            keep = o;
    }
    size_t drop = 0;
    while (rc == 0 && drop < self->nsegs - 1 && self->segs[drop].seq < keep) {
        char path[4096];
        seg_path(self, self->segs[drop].seq, path, sizeof path);
        self->io->close(self->io->ctx, self->segs[drop].fd);
        if (self->io->unlink(self->io->ctx, path) != 0)
            rc = SHOAL_EIO;
        drop++;
    }
    if (drop == 0)
        return rc;
    memmove(self->segs, self->segs + drop, (self->nsegs - drop) * sizeof *self->segs);
    self->nsegs -= drop;
    for (size_t i = 0; i < self->ngroups; i++) /* segment indexes moved down by drop */
        for (size_t k = 0; k < self->groups[i]->n; k++)
            self->groups[i]->ents[k].seg -= (uint32_t)drop;
    if (self->io->sync_dir(self->io->ctx, self->dir) != 0 && rc == 0)
        rc = SHOAL_EIO;
    return rc;
}

/* ---- reading ------------------------------------------------------------------------- */

bool rlog_has_group(rlog_t *self, uint32_t group)
{
    return group_find(self, group) != NULL;
}

uint64_t rlog_first_index(rlog_t *self, uint32_t group)
{
    group_t *g = group_find(self, group);
    return g ? g->snap_index + 1 : 1;
}

uint64_t rlog_last_index(rlog_t *self, uint32_t group)
{
    group_t *g = group_find(self, group);
    return g ? group_last(g) : 0;
}

int rlog_term(rlog_t *self, uint32_t group, uint64_t index, uint64_t *term)
{
    group_t *g = group_find(self, group);
    if (!g && index == 0) {
        *term = 0;
        return 0;
    }
    if (!g || index < g->snap_index || index > group_last(g))
        return SHOAL_ENOTFOUND;
    *term = index == g->snap_index ? g->snap_term : g->ents[index - g->snap_index - 1].term;
    return 0;
}

int rlog_entry(rlog_t *self, uint32_t group, uint64_t index, uint64_t *term, uint8_t *etype,
               uint8_t **data, size_t *len)
{
    group_t *g = group_find(self, group);
    if (!g || index <= g->snap_index || index > group_last(g))
        return SHOAL_ENOTFOUND;
    ent_loc_t *l = &g->ents[index - g->snap_index - 1];
    if (l->seg == self->nsegs - 1 && l->off + l->len > active(self)->size) {
        int rc = flush_buffer(self); /* the entry is still in the write buffer */
        if (rc)
            return rc;
    }
    uint8_t *b = malloc(l->len ? l->len : 1);
    if (!b)
        return SHOAL_ENOMEM;
    if (l->len &&
        self->io->pread(self->io->ctx, self->segs[l->seg].fd, b, l->len, l->off) != l->len) {
        free(b);
        return SHOAL_EIO;
    }
    *term = l->term;
    *etype = l->etype;
    *data = b;
    *len = l->len;
    return 0;
}

int rlog_hardstate(rlog_t *self, uint32_t group, uint64_t *term, uint64_t *vote, uint64_t *commit)
{
    group_t *g = group_find(self, group);
    if (!g)
        return SHOAL_ENOTFOUND;
    *term = g->hs_term;
    *vote = g->hs_vote;
    *commit = g->hs_commit;
    return 0;
}

int rlog_snapshot(rlog_t *self, uint32_t group, uint64_t *index, uint64_t *term,
                  const uint8_t **conf, size_t *conf_len)
{
    group_t *g = group_find(self, group);
    if (!g)
        return SHOAL_ENOTFOUND;
    *index = g->snap_index;
    *term = g->snap_term;
    *conf = g->snap_conf;
    *conf_len = g->snap_conf_len;
    return 0;
}

size_t rlog_groups(rlog_t *self, uint32_t *out, size_t cap)
{
    for (size_t i = 0; i < self->ngroups && i < cap; i++)
        out[i] = self->groups[i]->id;
    return self->ngroups;
}

size_t rlog_segment_count(rlog_t *self)
{
    return self->nsegs;
}

uint64_t rlog_bytes(rlog_t *self)
{
    uint64_t b = self->buflen;
    for (size_t i = 0; i < self->nsegs; i++)
        b += self->segs[i].size;
    return b;
}
