/* fsm_actor.c - the state machine actors: apply committed entries of data shards to their
 * LSM engines, serve reads, keep client sessions, emit change events.
 *
 * A node runs a small pool of these; each group is always handled by the same one, which
 * processes that group's jobs in the order the node sent them. That order is the whole
 * read-consistency argument: the node sends a linearizable read only after it has sent
 * the APPLY job holding the read index, so the read sees every write up to it.
 *
 * Exactly-once writes: every WriteCommand carries (client_id, seq). The group keeps, per
 * client, the last seq applied and its outcome, in the LSM (key 's' + client id) inside
 * the same atomic batch as the write (the applied index comes along every APPLIED_LAG
 * entries: flush_batch). A command whose seq is not newer is not applied again; its
 * stored outcome is returned. Sessions travel with Raft
 * snapshots because they are ordinary keys.
 *
 * Change window: the last changes of each group stay in memory (a ring bounded by count
 * and bytes) for catch-up requests; older ones answer WINDOW_GONE. When a replica opens,
 * its window is filled again from the entries its Raft log still holds (fsm_group_refill):
 * the changes an entry makes follow from its command alone (emit_cmd), except when apply
 * skips it (a retry, a key moved by a split, a compare that failed), which apply records
 * with a KEY_NOCHANGE key in the entry's own engine batch; those keys go once the log no
 * longer holds their entries (do_snapshot). An entry applied again after a restart (the
 * applied index is stored every APPLIED_LAG entries) finds its session and is skipped;
 * when the session shows the engine already holds that entry's outcome, its changes go
 * back into the window (not published again).
 *
 * Protocol: in "sp" JOB fsm_job_t* (a list linked by `next`: every job the node queued for
 * this actor in one loop turn), out "sp" DONE with the same list. */
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "actors/le_bytes.h"
#include "actors/node_config.h"
#include "actors/node_int.h"
#include "actors/split.h"
#include "actors/split_fsm.h"
#include "engine/error.h"
#include "proto/codec.h"

#define WINDOW_MAX 4096
#define WINDOW_BYTES (4u << 20)
#define SCAN_DEFAULT 1000
#define SCAN_MAX 10000
#define CHANGES_MAX 1000
/* The applied index is written with an engine batch only once it moved this far, so a
 * small group's batch (one write at many shards) is two engine inserts, not three. */
#define APPLIED_LAG 64

typedef struct {
    uint64_t index;
    uint32_t seq, count; /* the op's place in its entry (a batch changes several keys) */
    bool del;
    uint8_t *key, *val;
    size_t klen, vlen;
} win_change_t;

typedef struct {
    uint64_t seq;
    uint32_t status;
    uint64_t index;
} session_t;

/* A cached session; its cid is also the item's key in fsm_group_t.sessions (not copied). */
typedef struct {
    uint64_t cid;
    session_t s;
} cached_session_t;

struct fsm_group_t {
    uint32_t group;
    lsm_t *lsm;
    uint64_t applied;
    uint64_t last_change; /* index of the last change event (prev_index of the next) */
    uint64_t entry_prev;  /* prev_index of the ops of the entry being applied */
    zhashx_t *sessions;   /* client id -> cached_session_t*: a cache over the LSM */
    win_change_t win[WINDOW_MAX];
    size_t win_head, win_n, win_bytes;
    uint64_t win_from; /* every change after this index is in the window */
    uint64_t emitted;  /* changes recorded so far (emit_change) */
    /* KEY_NOCHANGE_FROM (NOCHANGE_UNKNOWN: not read nor set yet, see fsm_group_refill) */
    uint64_t nochange_from;
    uint64_t nochange_gone; /* the KEY_NOCHANGE keys at or below this index were deleted */
    uint64_t replay_upto;   /* the log's last index at the open: what may be applied again */
    lsm_batch_t *batch;
    uint64_t stored;      /* the applied index last written to the engine (KEY_APPLIED) */
    bool must_store;      /* the batch holds a change that replaying would not skip */
    split_fence_t *fence; /* keys moved away by splits of this shard (NULL: none) */
    /* a snapshot being received, ingested chunk by chunk (do_ingest) */
    lsm_ingest_t *ingest;
    uint64_t ingest_index, ingest_next;
    bool ingest_whole; /* its last chunk went in: do_install only finishes it */
};

/* ---- waiters ------------------------------------------------------------------------ */

void waiter_destroy(waiter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    waiter_t *w = *self_p;
    zframe_destroy(&w->identity);
    shoal_frame_free(&w->frame);
    free(w->reply);
    free(w);
    *self_p = NULL;
}

void waiter_answer(waiter_t *w, Shoal__ClientResponse *resp)
{
    Shoal__ClientRequest *req = w->frame->client_req;
    resp->request_id = req->request_id;
    resp->client_id = req->client_id;
    resp->seq = req->seq;
    resp->shard = req->shard;
    if (!resp->error)
        resp->error = (char *)"";
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    f.client_resp = resp;
    free(w->reply);
    w->reply = shoal_frame_encode(&f, &w->reply_len);
}

void waiter_answer_status(waiter_t *w, Shoal__Status status, const char *error)
{
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.status = status;
    r.error = (char *)(error ? error : "");
    waiter_answer(w, &r);
}

void fsm_job_destroy(fsm_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fsm_job_t *j = *self_p;
    for (size_t i = 0; i < j->n_entries; i++) {
        free(j->entries[i].data);
        if (j->waiters)
            waiter_destroy(&j->waiters[i]);
    }
    free(j->entries);
    free(j->waiters);
    for (waiter_t *w = j->reads, *n; w; w = n) {
        n = w->next;
        waiter_destroy(&w);
    }
    for (waiter_t *w = j->done, *n; w; w = n) {
        n = w->next;
        waiter_destroy(&w);
    }
    for (size_t i = 0; i < j->n_changes; i++)
        shoal__change_event__free_unpacked(j->changes[i], NULL);
    free(j->changes);
    free(j->splits);
    free(j->path);
    free(j->chunk);
    free(j);
    *self_p = NULL;
}

/* ---- group state -------------------------------------------------------------------- */

#define NOCHANGE_UNKNOWN UINT64_MAX

/* A u64 under key (native order); *out = dflt when there is none. */
static int read_u64(lsm_t *lsm, const char *key, uint64_t dflt, uint64_t *out)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = lsm_get(lsm, NULL, key, strlen(key), &v, &vl);
    *out = dflt;
    if (rc == SHOAL_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (vl == 8)
        memcpy(out, v, 8);
    free(v);
    return vl == 8 ? 0 : SHOAL_ECORRUPT;
}

static int read_applied(lsm_t *lsm, uint64_t *applied)
{
    return read_u64(lsm, KEY_APPLIED, 0, applied);
}

/* Where an empty window starts: every change after the applied index is still to come.
 * No group has a change at index SPLIT_TARGET_BASE (1) or before: a bootstrapped group's
 * first entries are its configuration, a split target's index 1 is the base its copied
 * data sits at. So a group that applied no further has lost no change, and its window
 * starts at 0: "the changes after 0" of a shard born from a split are those after its
 * base (it answered WINDOW_GONE, though it held every one). */
static uint64_t window_start(const fsm_group_t *g)
{
    return g->applied > SPLIT_TARGET_BASE ? g->applied : 0;
}

static void window_clear(fsm_group_t *g)
{
    for (size_t i = 0; i < g->win_n; i++) {
        win_change_t *c = &g->win[(g->win_head + i) % WINDOW_MAX];
        free(c->key);
        free(c->val);
    }
    g->win_head = g->win_n = g->win_bytes = 0;
    g->win_from = window_start(g);
}

static size_t cid_hash(const void *key)
{
    return (size_t)(*(const uint64_t *)key * 0x9E3779B97F4A7C15ull >> 17);
}

static int cid_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void session_free(void **item)
{
    free(*item);
    *item = NULL;
}

fsm_group_t *fsm_group_new(uint32_t group, lsm_t *lsm, uint64_t *applied, char *err, size_t errlen)
{
    fsm_group_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->group = group;
    g->lsm = lsm;
    g->sessions = zhashx_new();
    g->batch = lsm_batch_new();
    /* uint64 keys held in the item: no hex formatting, key copy or string hash per write */
    zhashx_set_destructor(g->sessions, session_free);
    zhashx_set_key_hasher(g->sessions, cid_hash);
    zhashx_set_key_comparator(g->sessions, cid_cmp);
    zhashx_set_key_duplicator(g->sessions, NULL);
    zhashx_set_key_destructor(g->sessions, NULL);
    int rc = read_applied(lsm, &g->applied);
    if (rc == 0)
        rc = read_u64(lsm, KEY_NOCHANGE_FROM, NOCHANGE_UNKNOWN, &g->nochange_from);
    if (rc || !g->batch) {
        snprintf(err, errlen, "shard %u: cannot read the applied index: %s", group,
                 shoal_strerror(rc ? rc : SHOAL_ENOMEM));
        fsm_group_destroy(&g);
        return NULL;
    }
    if (split_fence_load(lsm, group, &g->fence, err, errlen) != 0) {
        fsm_group_destroy(&g);
        return NULL;
    }
    g->win_from = window_start(g);
    g->last_change = g->applied;
    g->stored = g->applied;
    *applied = g->applied;
    return g;
}

void fsm_group_destroy(fsm_group_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fsm_group_t *g = *self_p;
    /* a clean stop stores the exact applied index: nothing to apply again at the start */
    if (g->lsm && g->applied != g->stored)
        lsm_put(g->lsm, NULL, KEY_APPLIED, strlen(KEY_APPLIED), &g->applied, 8);
    window_clear(*self_p);
    lsm_ingest_abort(&g->ingest);
    split_fence_destroy(&g->fence);
    zhashx_destroy(&(*self_p)->sessions);
    lsm_batch_destroy(&(*self_p)->batch);
    free(*self_p);
    *self_p = NULL;
}

/* ---- sessions ----------------------------------------------------------------------- */

/* A session in the engine: u64 seq | u32 status | u64 index, little-endian (20 bytes);
 * after a failed compare also u8 found | the value the compare saw, so that a retry of it
 * is answered with that value, as the first answer was (docs/FORMATS.md). */
#define SESSION_BYTES 20

static void session_encode(session_t s, uint8_t *out)
{
    put_le(out, s.seq, 8);
    put_le(out + 8, s.status, 4);
    put_le(out + 12, s.index, 8);
}

static session_t session_decode(const uint8_t *p)
{
    return (session_t){get_le(p, 8), (uint32_t)get_le(p + 8, 4), get_le(p + 12, 8)};
}

static void session_key(uint64_t cid, uint8_t out[9])
{
    out[0] = KEY_SESSION;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(cid >> (56 - 8 * i));
}

/* The session of cid (from the cache or the LSM); a zeroed one when unknown. */
static session_t session_get(fsm_group_t *g, uint64_t cid)
{
    cached_session_t *c = zhashx_lookup(g->sessions, &cid);
    if (c)
        return c->s;
    session_t out = {0, 0, 0};
    uint8_t k[9];
    session_key(cid, k);
    void *v = NULL;
    size_t vl = 0;
    if (lsm_get(g->lsm, NULL, k, sizeof k, &v, &vl) == 0 && vl >= SESSION_BYTES)
        out = session_decode(v);
    free(v);
    return out;
}

/* Records s for cid; cur (NULL: the key was absent) is what a failed compare saw. */
static int session_put(fsm_group_t *g, uint64_t cid, session_t s, const void *cur, size_t curlen)
{
    cached_session_t *c = zhashx_lookup(g->sessions, &cid);
    if (c)
        c->s = s;
    else if ((c = malloc(sizeof *c))) {
        *c = (cached_session_t){cid, s};
        zhashx_insert(g->sessions, &c->cid, c);
    }
    uint8_t k[9], st[SESSION_BYTES + 1 + 256];
    bool failed = s.status == SHOAL__STATUS__STATUS_COMPARE_FAILED;
    size_t len = failed ? SESSION_BYTES + 1 + (cur ? curlen : 0) : SESSION_BYTES;
    uint8_t *v = len <= sizeof st ? st : malloc(len);
    if (!v)
        return SHOAL_ENOMEM;
    session_key(cid, k);
    session_encode(s, v);
    if (failed) {
        v[SESSION_BYTES] = cur != NULL;
        if (cur && curlen)
            memcpy(v + SESSION_BYTES + 1, cur, curlen);
    }
    int rc = lsm_batch_put(g->batch, k, sizeof k, v, len);
    if (v != st)
        free(v);
    return rc;
}

/* The value a failed compare of cid's last write saw, into *cur (NULL: absent). Returns
 * false for a session written before the value was kept (the answer then has none). */
static bool session_compared(fsm_group_t *g, uint64_t cid, void **cur, size_t *curlen)
{
    uint8_t k[9];
    session_key(cid, k);
    void *v = NULL;
    size_t vl = 0;
    bool known = lsm_get(g->lsm, NULL, k, sizeof k, &v, &vl) == 0 && vl > SESSION_BYTES;
    *cur = NULL;
    *curlen = 0;
    if (known && ((uint8_t *)v)[SESSION_BYTES]) {
        *curlen = vl - SESSION_BYTES - 1;
        *cur = malloc(*curlen ? *curlen : 1);
        if (*cur)
            memcpy(*cur, (uint8_t *)v + SESSION_BYTES + 1, *curlen);
        else
            known = false;
    }
    free(v);
    return known;
}

/* ---- applying writes ---------------------------------------------------------------- */

static void data_key(const ProtobufCBinaryData *key, uint8_t *stack, size_t cap, uint8_t **out,
                     size_t *len)
{
    *len = key->len + 1;
    *out = *len <= cap ? stack : malloc(*len);
    if (!*out)
        return;
    (*out)[0] = KEY_DATA;
    if (key->len)
        memcpy(*out + 1, key->data, key->len);
}

/* One change of an entry: its index and the op's place in it (op seq of count). */
typedef struct {
    uint64_t index;
    uint32_t seq, count;
} change_at_t;

static void window_add(fsm_group_t *g, change_at_t at, bool del, const ProtobufCBinaryData *k,
                       const ProtobufCBinaryData *v)
{
    while (g->win_n && (g->win_n == WINDOW_MAX || g->win_bytes > WINDOW_BYTES)) {
        win_change_t *old = &g->win[g->win_head];
        if (old->index > g->win_from) /* changes up to it are no longer all here */
            g->win_from = old->index;
        g->win_bytes -= old->klen + old->vlen;
        free(old->key);
        free(old->val);
        g->win_head = (g->win_head + 1) % WINDOW_MAX;
        g->win_n--;
    }
    win_change_t *c = &g->win[(g->win_head + g->win_n) % WINDOW_MAX];
    c->index = at.index;
    c->seq = at.seq;
    c->count = at.count;
    c->del = del;
    c->klen = k->len;
    c->vlen = del ? 0 : v->len;
    c->key = malloc(c->klen + 1);
    c->val = malloc(c->vlen + 1);
    if (c->klen)
        memcpy(c->key, k->data, c->klen);
    if (c->vlen)
        memcpy(c->val, v->data, c->vlen);
    g->win_bytes += c->klen + c->vlen;
    g->win_n++;
}

/* Records one change: the window and, with a job, a change event for the node to publish
 * (without one: a change refilled into the window, published before the restart). */
static void emit_change(fsm_group_t *g, fsm_job_t *job, change_at_t at, bool del,
                        const ProtobufCBinaryData *k, const ProtobufCBinaryData *v)
{
    if (at.seq == 0)
        g->entry_prev = g->last_change;
    window_add(g, at, del, k, v);
    g->emitted++;
    g->last_change = at.index;
    if (!job)
        return;
    if (job->n_changes == job->cap_changes) {
        size_t cap = job->cap_changes ? job->cap_changes * 2 : 16;
        Shoal__ChangeEvent **nc = realloc(job->changes, cap * sizeof *nc);
        if (!nc)
            return;
        job->changes = nc;
        job->cap_changes = cap;
    }
    Shoal__ChangeEvent *ev = malloc(sizeof *ev);
    if (!ev)
        return;
    shoal__change_event__init(ev);
    ev->shard = g->group;
    ev->index = at.index;
    ev->op_seq = at.seq;
    ev->op_count = at.count;
    ev->op = del ? SHOAL__CHANGE_OP__CHANGE_DELETE : SHOAL__CHANGE_OP__CHANGE_PUT;
    ev->prev_index = g->entry_prev;
    ev->key.len = k->len;
    ev->key.data = malloc(k->len + 1);
    ev->value.len = del ? 0 : v->len;
    ev->value.data = malloc(ev->value.len + 1);
    if (k->len)
        memcpy(ev->key.data, k->data, k->len);
    if (ev->value.len)
        memcpy(ev->value.data, v->data, v->len);
    job->changes[job->n_changes++] = ev;
}

/* The changes cmd makes when it applies: a put, a delete or a compare-and-swap that
 * matched change one key, a batch each of its puts and deletes. */
static uint32_t cmd_changes(const Shoal__WriteCommand *cmd)
{
    uint32_t n = 0;
    switch (cmd->op_case) {
    case SHOAL__WRITE_COMMAND__OP_PUT:
    case SHOAL__WRITE_COMMAND__OP_DEL:
    case SHOAL__WRITE_COMMAND__OP_CAS: return 1;
    case SHOAL__WRITE_COMMAND__OP_BATCH:
        for (size_t i = 0; i < cmd->batch->n_ops; i++)
            n += cmd->batch->ops[i]->op_case == SHOAL__BATCH_OP__OP_PUT ||
                 cmd->batch->ops[i]->op_case == SHOAL__BATCH_OP__OP_DEL;
        return n;
    default: return 0;
    }
}

/* Records the changes cmd makes at index (cmd_changes), in order: a batch's ops share the
 * index, op i of n. Live apply and the refill at a replica's open both come here, so a
 * refilled change is the one that was published. */
static void emit_cmd(fsm_group_t *g, fsm_job_t *job, const Shoal__WriteCommand *cmd, uint64_t index)
{
    change_at_t at = {index, 0, cmd_changes(cmd)};
    switch (cmd->op_case) {
    case SHOAL__WRITE_COMMAND__OP_PUT:
        emit_change(g, job, at, false, &cmd->put->key, &cmd->put->value);
        break;
    case SHOAL__WRITE_COMMAND__OP_DEL: emit_change(g, job, at, true, &cmd->del->key, NULL); break;
    case SHOAL__WRITE_COMMAND__OP_CAS:
        emit_change(g, job, at, cmd->cas->delete_on_match, &cmd->cas->key, &cmd->cas->value);
        break;
    case SHOAL__WRITE_COMMAND__OP_BATCH:
        for (size_t i = 0; i < cmd->batch->n_ops; i++) {
            const Shoal__BatchOp *op = cmd->batch->ops[i];
            if (op->op_case == SHOAL__BATCH_OP__OP_PUT)
                emit_change(g, job, at, false, &op->put->key, &op->put->value);
            else if (op->op_case == SHOAL__BATCH_OP__OP_DEL)
                emit_change(g, job, at, true, &op->del->key, NULL);
            else
                continue;
            at.seq++;
        }
        break;
    default: break;
    }
}

static void batch_put(fsm_group_t *g, const ProtobufCBinaryData *k, const ProtobufCBinaryData *v)
{
    uint8_t st[256], *dk;
    size_t dl;
    data_key(k, st, sizeof st, &dk, &dl);
    if (!dk)
        return;
    lsm_batch_put(g->batch, dk, dl, v->data, v->len);
    if (dk != st)
        free(dk);
}

static void batch_del(fsm_group_t *g, const ProtobufCBinaryData *k)
{
    uint8_t st[256], *dk;
    size_t dl;
    data_key(k, st, sizeof st, &dk, &dl);
    if (!dk)
        return;
    lsm_batch_delete(g->batch, dk, dl);
    if (dk != st)
        free(dk);
}

/* Compare-and-swap: *cur gets the current value when the compare fails (malloc'd). */
static Shoal__Status apply_cas(fsm_group_t *g, fsm_job_t *job, uint64_t index,
                               const Shoal__WriteCommand *cmd, void **cur, size_t *curlen)
{
    const Shoal__CasRequest *c = cmd->cas;
    uint8_t st[256], *dk;
    size_t dl;
    data_key(&c->key, st, sizeof st, &dk, &dl);
    if (!dk)
        return SHOAL__STATUS__STATUS_INTERNAL;
    int rc = lsm_get(g->lsm, NULL, dk, dl, cur, curlen);
    if (dk != st)
        free(dk);
    if (rc && rc != SHOAL_ENOTFOUND)
        return SHOAL__STATUS__STATUS_INTERNAL;
    bool found = rc == 0;
    bool match = c->expect_absent
                     ? !found
                     : found && *curlen == c->expected.len &&
                           (c->expected.len == 0 || memcmp(*cur, c->expected.data, *curlen) == 0);
    if (!match)
        return SHOAL__STATUS__STATUS_COMPARE_FAILED;
    free(*cur);
    *cur = NULL;
    *curlen = 0;
    if (c->delete_on_match)
        batch_del(g, &c->key);
    else
        batch_put(g, &c->key, &c->value);
    emit_cmd(g, job, cmd, index);
    return SHOAL__STATUS__STATUS_OK;
}

/* Every op of a batch is a change at the entry's index, in order (emit_cmd). */
static void apply_batch(fsm_group_t *g, fsm_job_t *job, uint64_t index,
                        const Shoal__WriteCommand *cmd)
{
    for (size_t i = 0; i < cmd->batch->n_ops; i++) {
        Shoal__BatchOp *op = cmd->batch->ops[i];
        if (op->op_case == SHOAL__BATCH_OP__OP_PUT)
            batch_put(g, &op->put->key, &op->put->value);
        else if (op->op_case == SHOAL__BATCH_OP__OP_DEL)
            batch_del(g, &op->del->key);
    }
    emit_cmd(g, job, cmd, index);
}

static Shoal__Status apply_op(fsm_group_t *g, fsm_job_t *job, uint64_t index,
                              const Shoal__WriteCommand *cmd, void **cur, size_t *curlen)
{
    switch (cmd->op_case) {
    case SHOAL__WRITE_COMMAND__OP_PUT:
        batch_put(g, &cmd->put->key, &cmd->put->value);
        emit_cmd(g, job, cmd, index);
        return SHOAL__STATUS__STATUS_OK;
    case SHOAL__WRITE_COMMAND__OP_DEL:
        batch_del(g, &cmd->del->key);
        emit_cmd(g, job, cmd, index);
        return SHOAL__STATUS__STATUS_OK;
    case SHOAL__WRITE_COMMAND__OP_CAS: return apply_cas(g, job, index, cmd, cur, curlen);
    case SHOAL__WRITE_COMMAND__OP_BATCH:
        apply_batch(g, job, index, cmd);
        return SHOAL__STATUS__STATUS_OK;
    case SHOAL__WRITE_COMMAND__OP_SPLIT:
        return split_fsm_apply(g->group, g->lsm, g->batch, job, cmd->split, index, &g->fence,
                               &job->rc);
    default: return SHOAL__STATUS__STATUS_BAD_REQUEST;
    }
}

/* Writes the group's pending batch: one atomic engine write for all the entries of a job
 * (or up to the next compare-and-swap, which must read them).
 *
 * The applied index goes with it only every APPLIED_LAG entries, or when the batch holds a
 * change without a client session. After a restart the entries since the stored index are
 * applied again, which leaves the state as it is: every write with a session carries its
 * session in the same batch, so a replayed one finds its seq applied and is skipped (no
 * change, no event); no-ops and configuration entries change nothing here. Snapshots
 * store the exact index (FSM_SNAPSHOT). */
static int flush_batch(fsm_group_t *g)
{
    bool store = g->must_store || g->applied - g->stored >= APPLIED_LAG;
    if (store && g->applied != g->stored)
        lsm_batch_put(g->batch, KEY_APPLIED, strlen(KEY_APPLIED), &g->applied, 8);
    if (lsm_batch_count(g->batch) == 0)
        return 0;
    int rc = lsm_write(g->lsm, NULL, g->batch);
    if (rc)
        zsys_error("fsm: shard %u: engine write up to index %" PRIu64 " failed: %s", g->group,
                   g->applied, shoal_strerror(rc));
    else if (store) {
        g->stored = g->applied;
        g->must_store = false;
    }
    lsm_batch_clear(g->batch);
    return rc;
}

/* ---- entries that changed nothing (KEY_NOCHANGE) ----------------------------------- */

static void nochange_key(uint64_t index, uint8_t out[9])
{
    out[0] = KEY_NOCHANGE;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(index >> (56 - 8 * i));
}

/* 1 if the entry at index is marked as having changed nothing, 0 if not, or an error. */
static int nochange_has(fsm_group_t *g, uint64_t index)
{
    uint8_t k[9];
    nochange_key(index, k);
    void *v = NULL;
    size_t vl = 0;
    int rc = lsm_get(g->lsm, NULL, k, sizeof k, &v, &vl);
    free(v);
    return rc == 0 ? 1 : rc == SHOAL_ENOTFOUND ? 0 : rc;
}

/* The indexes in (after, upto] marked as having changed nothing, ascending (*out malloc'd,
 * NULL when there are none). They are few: retries, moved keys, failed compares. */
static int nochange_list(fsm_group_t *g, uint64_t after, uint64_t upto, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (upto <= after)
        return 0;
    uint8_t lo[9], hi[9];
    assert(upto < UINT64_MAX);
    nochange_key(after + 1, lo);
    nochange_key(upto + 1, hi); /* exclusive */
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    ro.lower_bound = lo;
    ro.lower_len = sizeof lo;
    ro.upper_bound = hi;
    ro.upper_len = sizeof hi;
    ro.fill_cache = false;
    lsm_iter_t *it = NULL;
    int rc = lsm_iter_new(g->lsm, &ro, &it);
    size_t cap = 0;
    if (rc == 0)
        lsm_iter_seek(it, lo, sizeof lo);
    for (; rc == 0 && lsm_iter_valid(it); lsm_iter_next(it)) {
        size_t kl;
        const uint8_t *k = lsm_iter_key(it, &kl);
        if (kl != sizeof lo) /* only marks are 'n' + 8 bytes */
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *grown = realloc(*out, cap * sizeof *grown);
            if (!grown) {
                rc = SHOAL_ENOMEM;
                break;
            }
            *out = grown;
        }
        uint64_t index = 0;
        for (int i = 1; i < 9; i++)
            index = index << 8 | k[i];
        (*out)[(*n)++] = index;
    }
    if (rc == 0 && it)
        rc = lsm_iter_status(it);
    lsm_iter_destroy(&it);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* Deletes, into b, the marks of the entries at or below upto: the log no longer holds
 * them, so no refill will look for their marks. */
static int nochange_forget(fsm_group_t *g, uint64_t upto, lsm_batch_t *b)
{
    uint64_t *gone;
    size_t n;
    int rc = nochange_list(g, g->nochange_gone, upto, &gone, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t k[9];
        nochange_key(gone[i], k);
        rc = lsm_batch_delete(b, k, sizeof k);
    }
    free(gone);
    return rc;
}

/* Applies one normal entry into the group's batch: decode, dedupe by session, answer.
 * The answer may go out before the batch is written: the entry is committed in the Raft
 * log, so it is durable whatever happens to this write (a failed write stops the node and
 * the entry is applied again at restart). */
static int apply_entry(fsm_group_t *g, fsm_job_t *job, const raft_entry_t *e, waiter_t *w)
{
    int rc = 0;
    Shoal__WriteCommand *cmd = e->len ? shoal__write_command__unpack(NULL, e->len, e->data) : NULL;
    if (cmd && (cmd->op_case == SHOAL__WRITE_COMMAND__OP_CAS ||
                cmd->op_case == SHOAL__WRITE_COMMAND__OP_SPLIT))
        rc = flush_batch(g); /* the compare (or the cut) must see the writes before it */
    g->applied = e->index;
    Shoal__ClientResponse resp = SHOAL__CLIENT_RESPONSE__INIT;
    void *cur = NULL;
    size_t curlen = 0;
    uint32_t moved_to; /* the broker finds the new owner in its newer map */
    uint64_t emitted = g->emitted;
    bool held = false;     /* the engine holds this entry's outcome already */
    bool compared = false; /* cur is what the compare saw (NULL: the key was absent) */
    resp.index = e->index;
    if (!cmd) {
        resp.status = SHOAL__STATUS__STATUS_BAD_REQUEST;
    } else {
        session_t s = cmd->client_id ? session_get(g, cmd->client_id) : (session_t){0, 0, 0};
        if (cmd->client_id && cmd->seq <= s.seq) {
            /* a retry of a write that already applied: answer, change nothing */
            resp.status = cmd->seq == s.seq ? (Shoal__Status)s.status : SHOAL__STATUS__STATUS_OK;
            resp.index = s.index;
            if (w && cmd->seq == s.seq && resp.status == SHOAL__STATUS__STATUS_COMPARE_FAILED)
                compared = session_compared(g, cmd->client_id, &cur, &curlen);
            /* Or this very entry applied again after a restart: a session written at or
             * after its index is in the engine, so its own batch is too (the engine keeps
             * its writes in order), with a mark if it changed nothing. What it changed
             * goes back into the window (published before the restart, not again). Only
             * a session at most the log's last index at the open can be one this group
             * wrote before it: a split target's first sessions are its source's, at the
             * source's indexes. */
            held = s.index >= e->index && s.index <= g->replay_upto;
            int mark = held && e->index > g->nochange_from ? nochange_has(g, e->index) : 1;
            if (mark < 0)
                rc = mark;
            else if (!mark)
                emit_cmd(g, NULL, cmd, e->index);
        } else if (g->fence && split_fence_write(g->fence, cmd, &moved_to)) {
            /* moved by a split: not applied, no session, so the new shard applies it once */
            resp.status = SHOAL__STATUS__STATUS_UNAVAILABLE;
            resp.error = (char *)"the key moved to a new shard (add-shard); retry";
        } else {
            resp.status = apply_op(g, job, e->index, cmd, &cur, &curlen);
            compared = true;
            if (!cmd->client_id)
                g->must_store = true; /* nothing would skip it when replayed */
            else if (!rc)
                rc = session_put(g, cmd->client_id, (session_t){cmd->seq, resp.status, e->index},
                                 cur, curlen);
        }
        if (!held && g->emitted == emitted && cmd_changes(cmd)) {
            /* skipped (a retry, a moved key, a failed compare): the refill must know */
            uint8_t k[9];
            nochange_key(e->index, k);
            lsm_batch_put(g->batch, k, sizeof k, "", 0);
        }
    }
    if (w) {
        /* the waiter's own command, or another leader's entry at its index */
        Shoal__ClientRequest *req = w->frame->client_req;
        if (cmd && (cmd->client_id != req->client_id || cmd->seq != req->seq)) {
            resp.status = SHOAL__STATUS__STATUS_UNAVAILABLE;
            resp.error = (char *)"proposal lost to a leader change; retry";
        }
        if (resp.status == SHOAL__STATUS__STATUS_COMPARE_FAILED)
            resp.error = (char *)"current value differs from the expected one";
        if (resp.status == SHOAL__STATUS__STATUS_COMPARE_FAILED && compared && cur) {
            resp.value.data = cur;
            resp.value.len = curlen;
            resp.found = true;
        }
        waiter_answer(w, &resp);
    }
    free(cur);
    if (cmd)
        shoal__write_command__free_unpacked(cmd, NULL);
    return rc;
}

static void job_done_waiter(fsm_job_t *job, waiter_t *w)
{
    w->next = job->done;
    job->done = w;
}

static void do_apply(fsm_job_t *job)
{
    fsm_group_t *g = job->fg;
    lsm_batch_clear(g->batch);
    for (size_t i = 0; i < job->n_entries; i++) {
        raft_entry_t *e = &job->entries[i];
        waiter_t *w = job->waiters ? job->waiters[i] : NULL;
        if (e->index <= g->applied) {
            if (w) /* replayed after a restart or a snapshot: already in the state */
                waiter_answer_status(w, SHOAL__STATUS__STATUS_UNAVAILABLE, "retry");
        } else if (e->type == RAFT_ENTRY_NORMAL && e->len) {
            if (apply_entry(g, job, e, w))
                job->rc = SHOAL_EIO;
        } else {
            g->applied = e->index; /* no-ops and configuration changes */
            if (w)
                waiter_answer_status(w, SHOAL__STATUS__STATUS_UNAVAILABLE, "retry");
        }
        if (w) {
            job_done_waiter(job, w);
            job->waiters[i] = NULL;
        }
    }
    if (flush_batch(g))
        job->rc = SHOAL_EIO;
}

/* ---- the window refilled at open ---------------------------------------------------- */

/* The bytes the window keeps for cmd's changes (keys and values, as window_add counts). */
static uint64_t cmd_bytes(const Shoal__WriteCommand *cmd)
{
    uint64_t n = 0;
    switch (cmd->op_case) {
    case SHOAL__WRITE_COMMAND__OP_PUT: return cmd->put->key.len + cmd->put->value.len;
    case SHOAL__WRITE_COMMAND__OP_DEL: return cmd->del->key.len;
    case SHOAL__WRITE_COMMAND__OP_CAS:
        return cmd->cas->key.len + (cmd->cas->delete_on_match ? 0 : cmd->cas->value.len);
    case SHOAL__WRITE_COMMAND__OP_BATCH:
        for (size_t i = 0; i < cmd->batch->n_ops; i++) {
            const Shoal__BatchOp *op = cmd->batch->ops[i];
            if (op->op_case == SHOAL__BATCH_OP__OP_PUT)
                n += op->put->key.len + op->put->value.len;
            else if (op->op_case == SHOAL__BATCH_OP__OP_DEL)
                n += op->del->key.len;
        }
        return n;
    default: return 0;
    }
}

/* The command of a log entry when it names changes (cmd_changes), else NULL: no-ops,
 * configuration changes, splits and entries that do not decode change nothing when
 * applied either. The caller frees it. */
static Shoal__WriteCommand *entry_cmd(const raft_entry_t *e)
{
    if (e->type != RAFT_ENTRY_NORMAL || !e->len)
        return NULL;
    Shoal__WriteCommand *cmd = shoal__write_command__unpack(NULL, e->len, e->data);
    if (cmd && cmd_changes(cmd))
        return cmd;
    if (cmd)
        shoal__write_command__free_unpacked(cmd, NULL);
    return NULL;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether the entry at index is in marks (ascending): it changed nothing when applied. */
static bool marked(const uint64_t *marks, size_t n, uint64_t index)
{
    return n && bsearch(&index, marks, n, sizeof *marks, u64_cmp);
}

/* The window gets the changes of the entries in (from, applied] the log holds, as live
 * apply recorded them: each entry's command makes its changes (emit_cmd) unless it is
 * marked as having changed nothing. Only the newest ones are decoded twice: a pass from
 * the newest back finds the oldest entry whose changes can still be in the window (the
 * window's ring then drops exactly what it dropped live, and sets win_from likewise), the
 * pass forward fills it. */
int fsm_group_refill(fsm_group_t *g, const raft_entry_t *ents, size_t n, uint64_t mark,
                     uint64_t applied, uint64_t last)
{
    assert(g->win_n == 0);
    g->replay_upto = last;
    if (g->nochange_from == NOCHANGE_UNKNOWN) {
        /* Applied by a version that marked no skipped entry: no entry it may have applied
         * (up to the log's last) can be told apart, those after the engine's applied index
         * included (applied again, skipped without a mark); the window starts after them. */
        uint64_t from = last > g->applied ? last : g->applied;
        int rc = lsm_put(g->lsm, NULL, KEY_NOCHANGE_FROM, strlen(KEY_NOCHANGE_FROM), &from, 8);
        if (rc)
            return rc;
        g->nochange_from = from;
        if (from > SPLIT_TARGET_BASE && from > g->win_from) /* as window_start */
            g->win_from = from;
        return 0;
    }
    /* the marks of entries the log no longer holds: nothing will look for them */
    lsm_batch_t *b = lsm_batch_new();
    int rc = b ? nochange_forget(g, mark, b) : SHOAL_ENOMEM;
    if (rc == 0 && lsm_batch_count(b))
        rc = lsm_write(g->lsm, NULL, b);
    if (rc == 0)
        g->nochange_gone = mark;
    lsm_batch_destroy(&b);
    uint64_t from = mark > g->nochange_from ? mark : g->nochange_from;
    /* not at the core's applied index: the state came from elsewhere (a snapshot installed
     * just before a crash); the window starts at the engine's applied index */
    if (rc || applied != g->applied || applied <= from || !n || ents[0].index > from + 1 ||
        ents[n - 1].index < applied)
        return rc;
    uint64_t t0 = zclock_usecs();
    uint64_t *marks = NULL;
    size_t n_marks = 0;
    if ((rc = nochange_list(g, from, applied, &marks, &n_marks)) != 0)
        return rc;
    size_t lo = (size_t)(from + 1 - ents[0].index), hi = (size_t)(applied - ents[0].index) + 1;
    /* back from the newest: the oldest entry to fill from is one past which the window
     * certainly drops a change (more than it holds, or its bytes past the cap before the
     * newest entry's), so that what remains is what live apply's ring kept */
    size_t start = lo;
    uint64_t ops = 0, bytes = 0;
    bool newest = true;
    for (size_t k = hi; k > lo; k--) {
        Shoal__WriteCommand *cmd =
            marked(marks, n_marks, ents[k - 1].index) ? NULL : entry_cmd(&ents[k - 1]);
        if (!cmd)
            continue;
        ops += cmd_changes(cmd);
        bytes += newest ? 0 : cmd_bytes(cmd);
        newest = false;
        shoal__write_command__free_unpacked(cmd, NULL);
        if (ops > WINDOW_MAX || bytes > WINDOW_BYTES) {
            start = k - 1;
            break;
        }
    }
    g->win_from = ents[start].index - 1; /* from, or moved on by the ring as it fills */
    for (size_t k = start; k < hi; k++) {
        Shoal__WriteCommand *cmd =
            marked(marks, n_marks, ents[k].index) ? NULL : entry_cmd(&ents[k]);
        if (cmd) {
            emit_cmd(g, NULL, cmd, ents[k].index);
            shoal__write_command__free_unpacked(cmd, NULL);
        }
    }
    free(marks);
    zsys_info("shard %u: change window refilled from the log's entries %" PRIu64 "-%" PRIu64
              ": %zu changes after index %" PRIu64 " (%zu entries skipped when applied), %.1f ms",
              g->group, ents[lo].index, applied, g->win_n, g->win_from, n_marks,
              (double)(zclock_usecs() - t0) / 1000);
    return 0;
}

/* ---- reads -------------------------------------------------------------------------- */

static void read_get(fsm_group_t *g, waiter_t *w, const Shoal__GetRequest *r)
{
    Shoal__ClientResponse resp = SHOAL__CLIENT_RESPONSE__INIT;
    uint32_t moved_to;
    if (split_fence_key(g->fence, r->key.data, r->key.len, &moved_to)) {
        resp.status = SHOAL__STATUS__STATUS_UNAVAILABLE;
        resp.error = (char *)"the key moved to a new shard (add-shard); retry";
        waiter_answer(w, &resp);
        return;
    }
    uint8_t st[256], *dk;
    size_t dl;
    data_key(&r->key, st, sizeof st, &dk, &dl);
    void *v = NULL;
    size_t vl = 0;
    int rc = dk ? lsm_get(g->lsm, NULL, dk, dl, &v, &vl) : SHOAL_ENOMEM;
    if (dk != st)
        free(dk);
    resp.index = g->applied;
    if (rc == 0) {
        resp.found = true;
        resp.value.data = v;
        resp.value.len = vl;
    } else if (rc == SHOAL_ENOTFOUND) {
        resp.status = SHOAL__STATUS__STATUS_NOT_FOUND;
    } else {
        resp.status = SHOAL__STATUS__STATUS_INTERNAL;
        resp.error = (char *)shoal_strerror(rc);
    }
    waiter_answer(w, &resp);
    free(v);
}

/* The first key after every key that starts with p (NULL when there is none). */
static bool prefix_end(uint8_t *p, size_t *len)
{
    while (*len > 0) {
        if (p[*len - 1] != 0xff) {
            p[*len - 1]++;
            return true;
        }
        (*len)--;
    }
    return false;
}

static int scan_bounds(const Shoal__ScanRequest *r, uint8_t **lo, size_t *lol, uint8_t **hi,
                       size_t *hil)
{
    const ProtobufCBinaryData *l =
        r->start.len > 0 &&
                (r->prefix.len == 0 ||
                 memcmp(r->start.data, r->prefix.data,
                        r->prefix.len < r->start.len ? r->prefix.len : r->start.len) >= 0)
            ? &r->start
            : &r->prefix;
    *lo = malloc(l->len + 1);
    *hi = malloc((r->end.len > r->prefix.len ? r->end.len : r->prefix.len) + 2);
    if (!*lo || !*hi)
        return SHOAL_ENOMEM;
    (*lo)[0] = KEY_DATA;
    if (l->len)
        memcpy(*lo + 1, l->data, l->len);
    *lol = l->len + 1;
    /* upper: the smaller of end and the prefix's end; the data namespace's end otherwise */
    uint8_t *pe = malloc(r->prefix.len + 2);
    size_t pel = r->prefix.len + 1;
    if (!pe)
        return SHOAL_ENOMEM;
    pe[0] = KEY_DATA;
    if (r->prefix.len)
        memcpy(pe + 1, r->prefix.data, r->prefix.len);
    prefix_end(pe, &pel); /* never empty: 'd' + 1 at worst */
    if (r->end.len) {
        (*hi)[0] = KEY_DATA;
        memcpy(*hi + 1, r->end.data, r->end.len);
        *hil = r->end.len + 1;
        size_t m = *hil < pel ? *hil : pel;
        int c = memcmp(*hi, pe, m);
        if (c > 0 || (c == 0 && *hil > pel)) {
            memcpy(*hi, pe, pel);
            *hil = pel;
        }
    } else {
        memcpy(*hi, pe, pel);
        *hil = pel;
    }
    free(pe);
    return 0;
}

static void read_scan(fsm_group_t *g, waiter_t *w, const Shoal__ScanRequest *r)
{
    Shoal__ClientResponse resp = SHOAL__CLIENT_RESPONSE__INIT;
    uint8_t *lo = NULL, *hi = NULL;
    size_t lol = 0, hil = 0;
    size_t limit = r->limit == 0 ? SCAN_DEFAULT : r->limit > SCAN_MAX ? SCAN_MAX : r->limit;
    Shoal__KeyValue *kvs = calloc(limit, sizeof *kvs);
    Shoal__KeyValue **ptrs = calloc(limit, sizeof *ptrs);
    lsm_iter_t *it = NULL;
    lsm_read_options_t ro;
    lsm_read_options_init(&ro);
    int rc = kvs && ptrs ? scan_bounds(r, &lo, &lol, &hi, &hil) : SHOAL_ENOMEM;
    if (rc == 0) {
        ro.lower_bound = lo;
        ro.lower_len = lol;
        ro.upper_bound = hi;
        ro.upper_len = hil;
        rc = lsm_iter_new(g->lsm, &ro, &it);
    }
    size_t n = 0, bytes = 0;
    if (rc == 0) {
        for (lsm_iter_seek(it, lo, lol); lsm_iter_valid(it); lsm_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = lsm_iter_key(it, &kl);
            const uint8_t *v = lsm_iter_value(it, &vl);
            if (n == limit || (n && bytes + kl + vl > SHOAL_SCAN_MAX_BYTES)) {
                resp.more = true;
                break;
            }
            bytes += kl + vl;
            shoal__key_value__init(&kvs[n]);
            kvs[n].key.data = malloc(kl);
            kvs[n].key.len = kl - 1;
            memcpy(kvs[n].key.data, k + 1, kl - 1);
            kvs[n].value.data = malloc(vl + 1);
            kvs[n].value.len = vl;
            if (vl)
                memcpy(kvs[n].value.data, v, vl);
            ptrs[n] = &kvs[n];
            n++;
        }
        rc = lsm_iter_status(it);
    }
    resp.kvs = ptrs;
    resp.n_kvs = n;
    resp.index = g->applied;
    if (rc) {
        resp.status = SHOAL__STATUS__STATUS_INTERNAL;
        resp.error = (char *)shoal_strerror(rc);
        resp.n_kvs = 0;
    }
    waiter_answer(w, &resp);
    for (size_t i = 0; i < n; i++) {
        free(kvs[i].key.data);
        free(kvs[i].value.data);
    }
    lsm_iter_destroy(&it);
    free(kvs);
    free(ptrs);
    free(lo);
    free(hi);
}

/* Whether changes the request wants left the window. The window drops single ops, so the
 * entry at win_from may have lost its first ops: a caller that has only some of that
 * entry's ops needs the oldest one retained to be of that entry and at most its next op. */
static bool window_lost(const fsm_group_t *g, const Shoal__ChangesRequest *r)
{
    if (r->after_index != g->win_from || !r->after_ops)
        return r->after_index < g->win_from;
    const win_change_t *first = g->win_n ? &g->win[g->win_head] : NULL;
    return !first || first->index != r->after_index || first->seq > r->after_ops;
}

static void read_changes(fsm_group_t *g, waiter_t *w, const Shoal__ChangesRequest *r)
{
    Shoal__ClientResponse resp = SHOAL__CLIENT_RESPONSE__INIT;
    resp.index = g->applied;
    if (window_lost(g, r)) {
        resp.status = SHOAL__STATUS__STATUS_WINDOW_GONE;
        resp.error = (char *)"changes at that index are no longer retained; rescan";
        waiter_answer(w, &resp);
        return;
    }
    size_t limit = r->limit == 0 || r->limit > CHANGES_MAX ? CHANGES_MAX : r->limit;
    Shoal__Change *cs = calloc(limit, sizeof *cs);
    Shoal__Change **ptrs = calloc(limit, sizeof *ptrs);
    size_t n = 0;
    for (size_t i = 0; cs && ptrs && i < g->win_n; i++) {
        win_change_t *c = &g->win[(g->win_head + i) % WINDOW_MAX];
        if (c->index < r->after_index ||
            (c->index == r->after_index && (r->after_ops == 0 || c->seq < r->after_ops)))
            continue;
        if (n == limit) {
            resp.more = true;
            break;
        }
        shoal__change__init(&cs[n]);
        cs[n].shard = g->group;
        cs[n].index = c->index;
        cs[n].op_seq = c->seq;
        cs[n].op_count = c->count;
        cs[n].is_delete = c->del;
        cs[n].key.data = c->key;
        cs[n].key.len = c->klen;
        cs[n].value.data = c->val;
        cs[n].value.len = c->vlen;
        ptrs[n] = &cs[n];
        n++;
    }
    resp.changes = ptrs;
    resp.n_changes = n;
    waiter_answer(w, &resp);
    free(cs);
    free(ptrs);
}

static void do_reads(fsm_job_t *job)
{
    for (waiter_t *w = job->reads, *next; w; w = next) {
        next = w->next;
        Shoal__ClientRequest *req = w->frame->client_req;
        if (req->op_case == SHOAL__CLIENT_REQUEST__OP_GET)
            read_get(job->fg, w, req->get);
        else if (req->op_case == SHOAL__CLIENT_REQUEST__OP_SCAN &&
                 req->map_version < split_fence_version(job->fg->fence))
            waiter_answer_status(w, SHOAL__STATUS__STATUS_UNAVAILABLE,
                                 "shard split since this scan was routed; retry");
        else if (req->op_case == SHOAL__CLIENT_REQUEST__OP_SCAN)
            read_scan(job->fg, w, req->scan);
        else if (req->op_case == SHOAL__CLIENT_REQUEST__OP_CHANGES)
            read_changes(job->fg, w, req->changes);
        else
            waiter_answer_status(w, SHOAL__STATUS__STATUS_BAD_REQUEST, "not a read");
        job_done_waiter(job, w);
    }
    job->reads = NULL;
}

/* ---- snapshots ---------------------------------------------------------------------- */

/* FSM_SNAPSHOT. The exact applied index is stored with the state: in a view, so an
 * installed copy knows it; for a mark (mark_only) with a synced write, which makes every
 * earlier write of the engine durable too (the engine's WAL is a prefix), so the Raft log
 * up to that index may go without a copy of the state being written anywhere. */
static void do_snapshot(fsm_job_t *job)
{
    fsm_group_t *g = job->fg;
    lsm_write_options_t wo = {.sync = job->mark_only};
    lsm_batch_t *b = lsm_batch_new();
    /* the marks of entries an earlier mark cut from the log go with it (a failure only
     * leaves them for the next one) */
    bool forget =
        b && job->log_mark > g->nochange_gone && nochange_forget(g, job->log_mark, b) == 0;
    if (b && !forget)
        lsm_batch_clear(b);
    int rc = b ? lsm_batch_put(b, KEY_APPLIED, strlen(KEY_APPLIED), &g->applied, 8) : SHOAL_ENOMEM;
    if (rc == 0)
        rc = lsm_write(g->lsm, &wo, b);
    lsm_batch_destroy(&b);
    if (rc == 0 && forget)
        g->nochange_gone = job->log_mark;
    if (rc == 0)
        g->stored = g->applied;
    if (job->mark_only && rc) {
        job->rc = rc;
        snprintf(job->err, sizeof job->err, "shard %u: syncing the engine at %" PRIu64 ": %s",
                 g->group, g->applied, shoal_strerror(rc));
    }
    if (!job->mark_only)
        job->lsnap = lsm_snapshot_new(g->lsm);
}

/* Replaces the whole state of the group with a received snapshot file. */
/* A chunk of a snapshot being received goes into the engine's side tables as it arrives,
 * so that installing it after the last chunk is only the swap (lsm_ingest_finish): the
 * ingest of a whole 1M-key shard after the transfer took ~0.4 s of a ~1.7 s recovery. A
 * transfer restarted at offset 0 starts over; a chunk out of order or a stream the ingest
 * refuses ends it, and the install then reads the file, which the last chunk's checksum
 * vouched for (the stream is not checked as a whole until then). */
static void do_ingest(fsm_job_t *job)
{
    fsm_group_t *g = job->fg;
    if (job->chunk_off == 0) {
        lsm_ingest_abort(&g->ingest);
        g->ingest_index = job->snap_index;
        g->ingest_next = 0;
        g->ingest_whole = false;
        if (lsm_ingest_begin(g->lsm, &g->ingest) != 0)
            g->ingest = NULL;
    }
    if (!g->ingest)
        return;
    if (job->snap_index != g->ingest_index || job->chunk_off != g->ingest_next ||
        lsm_ingest_write(g->ingest, job->chunk, job->chunk_len) != 0) {
        lsm_ingest_abort(&g->ingest);
        return;
    }
    g->ingest_next += job->chunk_len;
    g->ingest_whole = job->chunk_last;
}

/* The whole snapshot file into the engine, when it was not ingested as it came. */
static int ingest_file(fsm_group_t *g, const char *path)
{
    FILE *f = fopen(path, "rb");
    lsm_ingest_t *in = NULL;
    int rc = f ? lsm_ingest_begin(g->lsm, &in) : SHOAL_EIO;
    uint8_t *buf = malloc(1 << 20);
    size_t n;
    while (rc == 0 && buf && (n = fread(buf, 1, 1 << 20, f)) > 0)
        rc = lsm_ingest_write(in, buf, n);
    if (rc == 0 && (!buf || ferror(f)))
        rc = SHOAL_EIO;
    if (rc == 0)
        rc = lsm_ingest_finish(&in);
    else
        lsm_ingest_abort(&in);
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

/* 0 also when path does not exist: no file will be served then. */
static int sync_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = fdatasync(fd);
    close(fd);
    return rc;
}

static void do_install(fsm_job_t *job)
{
    fsm_group_t *g = job->fg;
    int rc = SHOAL_ENOTFOUND;
    if (g->ingest && g->ingest_whole && g->ingest_index == job->snap_index)
        rc = lsm_ingest_finish(&g->ingest); /* atomic: on failure nothing was swapped in */
    job->streamed = rc == 0;
    lsm_ingest_abort(&g->ingest);
    if (rc != 0)
        rc = ingest_file(g, job->path);
    /* The received file becomes snap-<index> (replica.c installed) and may be served to
     * another replica after a restart, its checksum computed from what it then holds: its
     * data must be on the disk before that name is. */
    if (rc == 0 && sync_file(job->path) != 0) {
        snprintf(job->err, sizeof job->err, "installing snapshot %s: sync: %s", job->path,
                 strerror(errno));
        rc = SHOAL_EIO;
    }
    uint64_t applied = 0;
    if (rc == 0)
        rc = read_applied(g->lsm, &applied);
    if (rc == 0 && applied != job->snap_index) {
        snprintf(job->err, sizeof job->err,
                 "snapshot holds applied index %" PRIu64 ", expected %" PRIu64, applied,
                 job->snap_index);
        rc = SHOAL_ECORRUPT;
    }
    if (rc) {
        if (!job->err[0])
            snprintf(job->err, sizeof job->err, "installing snapshot %s: %s", job->path,
                     shoal_strerror(rc));
        job->rc = rc;
        return;
    }
    /* This node's log holds nothing at or below the snapshot once it is installed: the
     * window starts there, and no refill may trust the marks the snapshot brought for
     * those entries (the sender may have deleted some). Synced: a crash before the log
     * records the snapshot leaves the log's older entries next to this state. */
    uint64_t from = NOCHANGE_UNKNOWN;
    rc = read_u64(g->lsm, KEY_NOCHANGE_FROM, NOCHANGE_UNKNOWN, &from);
    if (rc == 0 && (from == NOCHANGE_UNKNOWN || from < applied)) {
        lsm_write_options_t wo = {.sync = true};
        from = applied;
        rc = lsm_put(g->lsm, &wo, KEY_NOCHANGE_FROM, strlen(KEY_NOCHANGE_FROM), &from, 8);
    }
    if (rc) {
        snprintf(job->err, sizeof job->err, "installing snapshot %s: window marks: %s", job->path,
                 shoal_strerror(rc));
        job->rc = rc;
        return;
    }
    g->nochange_from = from;
    g->nochange_gone = 0; /* the snapshot's own marks may be anywhere below it */
    g->applied = applied;
    g->stored = applied;
    g->must_store = false;
    g->last_change = applied;
    zhashx_purge(g->sessions);
    window_clear(g);
    /* the snapshot may hold a split this replica never applied: its fence comes with it */
    split_fence_destroy(&g->fence);
    if (split_fence_load(g->lsm, g->group, &g->fence, job->err, sizeof job->err) != 0)
        job->rc = SHOAL_ECORRUPT;
}

fsm_job_t *fsm_done_take(fsm_done_t *q)
{
    pthread_mutex_lock(&q->lock);
    fsm_job_t *list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return list;
}

/* Whether the node must hear of the finished job at once (fsm_done_t). */
static bool waited_for(const fsm_job_t *j)
{
    bool quiet = j->type == FSM_APPLY || j->type == FSM_INGEST;
    return !quiet || j->done || j->n_splits || j->rc || j->group == SHOAL_META_GROUP;
}

/* Queues the finished list; true if the node should be woken for it. */
static bool hand_back(fsm_done_t *q, fsm_job_t *list)
{
    bool wake = false;
    fsm_job_t *last = list;
    for (fsm_job_t *j = list; j; j = j->next) {
        wake = wake || waited_for(j);
        last = j;
    }
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = list;
    else
        q->head = list;
    q->tail = last;
    pthread_mutex_unlock(&q->lock);
    return wake;
}

void fsm_actor(zsock_t *pipe, void *args)
{
    fsm_done_t *done = ((fsm_args_t *)args)->done;
    zsock_signal(pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv(pipe, "sp", &cmd, &ptr) != 0) {
            zstr_free(&cmd);
            if (errno == EINTR) /* a signal, not $TERM: the next job must still be answered */
                continue;
            break;
        }
        bool term = cmd && streq(cmd, "$TERM");
        for (fsm_job_t *job = ptr; !term && cmd && streq(cmd, "JOB") && job; job = job->next) {
            if (job->type == FSM_APPLY)
                do_apply(job);
            else if (job->type == FSM_READ)
                do_reads(job);
            else if (job->type == FSM_INSTALL)
                do_install(job);
            else if (job->type == FSM_SNAPSHOT)
                do_snapshot(job);
            else if (job->type == FSM_INGEST)
                do_ingest(job);
            job->applied = job->fg->applied;
        }
        if (!term && cmd && streq(cmd, "JOB") && ptr && hand_back(done, ptr))
            zsock_send(pipe, "sp", "DONE", NULL);
        zstr_free(&cmd);
        if (term)
            break;
    }
}
