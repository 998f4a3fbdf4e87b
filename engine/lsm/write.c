/* write.c - the write path (LevelDB's leader-writer scheme, i.e. group commit).
 *
 * Each writer queues itself under the mutex; the writer at the head becomes the leader,
 * makes room in the memtable (switching it and the WAL when full, stalling when the
 * background thread lags), gathers the batches of the writers queued behind it into one WAL
 * record, releases the mutex, appends the record with one write() (and one fdatasync if any
 * of them asked for sync), inserts the entries into the memtable, retakes the mutex,
 * publishes the new last sequence and wakes the writers it served. N concurrent sync writers
 * cost about one fdatasync, not N. Only the leader touches the WAL, the group buffer and the
 * list of switched-out WALs, so those need no lock.
 *
 * Prefix durability: a synced write makes every earlier write durable too (the leader first
 * syncs the WALs switched out before it), so after a crash the store holds a prefix of the
 * acknowledged history: a Raft state machine can trust an applied index it wrote. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/lsm/batch.h"
#include "engine/lsm/db_impl.h"
#include "engine/lsm/dbformat.h"

struct lsm_writer {
    lsm_slice_t rep; /* a batch (header + ops); empty for control writers */
    bool sync;
    bool done;
    int rc;
    pthread_cond_t cv;
    lsm_writer_t *next;
};

#define MAX_GROUP (1u << 20)

int lsm_db_open_new_wal(lsm_t *db, lsm_wal_writer_t *w, uint64_t *number)
{
    char path[4096];
    *number = lsm_db_new_file_number(db);
    lsm_db_path(db, path, sizeof path, *number, "log");
    int rc = lsm_wal_writer_open(db->env, path, LSM_OPEN_LOG, w);
    w->number = *number;
    if (!rc) /* the WAL's name must be durable before a synced write in it is acknowledged */
        rc = db->env->sync_dir(db->env, db->dir);
    if (rc) {
        lsm_wal_writer_close(w);
        return lsm_err(&db->log, rc, "cannot create %s", path);
    }
    return 0;
}

/* Closes old WALs whose memtables are in tables by now (their data is durable there);
 * leader only, mu held. */
static void prune_old_wals(lsm_t *db)
{
    int k = 0;
    for (int i = 0; i < db->nold_wals; i++) {
        if (db->old_wals[i].number < db->log_number)
            lsm_wal_writer_close(&db->old_wals[i]);
        else
            db->old_wals[k++] = db->old_wals[i];
    }
    db->nold_wals = k;
}

/* Syncs and closes every switched-out WAL; leader (or close) only, without mu. */
int lsm_db_sync_old_wals(lsm_t *db)
{
    int rc = 0;
    for (int i = 0; i < db->nold_wals; i++) {
        if (!rc)
            rc = lsm_wal_sync(&db->old_wals[i]);
        lsm_wal_writer_close(&db->old_wals[i]);
    }
    db->nold_wals = 0;
    return rc;
}

static uint64_t now_micros(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void stall_wait(lsm_t *db)
{
    uint64_t t0 = now_micros();
    db->stalls++;
    pthread_cond_wait(&db->bg_cv, &db->mu);
    db->stall_micros += now_micros() - t0;
}

/* Moves the active memtable to the immutable list and starts a new WAL (mu held). */
static int switch_memtable(lsm_t *db)
{
    lsm_wal_writer_t w;
    uint64_t number;
    int rc = lsm_db_open_new_wal(db, &w, &number);
    lsm_memtable_t *m = rc ? NULL : lsm_memtable_new(number, db->o.write_buffer_size);
    if (rc || !m) {
        lsm_wal_writer_close(&w);
        return rc ? rc : SHOAL_ENOMEM;
    }
    prune_old_wals(db);
    if (db->nold_wals == LSM_MAX_IMM + 1) { /* cannot happen with nimm bounded; be safe */
        lsm_wal_sync(&db->old_wals[0]);
        lsm_wal_writer_close(&db->old_wals[0]);
        memmove(db->old_wals, db->old_wals + 1, sizeof db->old_wals[0] * LSM_MAX_IMM);
        db->nold_wals--;
    }
    db->old_wals[db->nold_wals++] = db->wal;
    db->wal = w;
    db->wal_number = number;
    db->imm[db->nimm++] = db->mem;
    db->mem = m;
    lsm_db_wake_bg(db);
    return 0;
}

int lsm_db_reset_memtables(lsm_t *db)
{
    lsm_wal_writer_t w;
    uint64_t number;
    int rc = lsm_db_open_new_wal(db, &w, &number);
    lsm_memtable_t *m = rc ? NULL : lsm_memtable_new(number, db->o.write_buffer_size);
    if (rc || !m) {
        lsm_wal_writer_close(&w);
        return rc ? rc : SHOAL_ENOMEM;
    }
    lsm_wal_writer_close(&db->wal); /* its content is being replaced: no sync needed */
    db->wal = w;
    db->wal_number = number;
    lsm_memtable_unref(db->mem);
    db->mem = m;
    for (int i = 0; i < db->nimm; i++)
        lsm_memtable_unref(db->imm[i]);
    db->nimm = 0;
    return 0;
}

/* Makes sure the memtable can take a write (mu held, leader). `force` switches a non-empty
 * memtable even if it is not full (lsm_flush). */
int lsm_db_make_room(lsm_t *db, bool force)
{
    bool allow_delay = !force;
    for (;;) {
        int l0 = db->current->nfiles[0];
        if (db->bg_error)
            return db->bg_error;
        if (allow_delay && l0 >= db->o.l0_slowdown_trigger) {
            /* Slow each write a little rather than stop them all later. */
            pthread_mutex_unlock(&db->mu);
            usleep(1000);
            pthread_mutex_lock(&db->mu);
            db->stalls++;
            db->stall_micros += 1000;
            allow_delay = false;
        } else if (atomic_load(&db->mem->entries) == 0) {
            return 0; /* an empty memtable never needs switching, whatever its arena holds */
        } else if (!force && lsm_memtable_usage(db->mem) < db->o.write_buffer_size) {
            if (!lsm_db_budget_full(db)) {
                lsm_db_budget_update(db);
                return 0;
            }
            stall_wait(db); /* the memtables hold the budget: wait for the pending flush */
        } else if ((size_t)db->nimm >= db->o.max_write_buffers - 1 || l0 >= db->o.l0_stop_trigger) {
            stall_wait(db);
        } else {
            int rc = switch_memtable(db);
            if (rc)
                return rc;
            force = false;
        }
    }
}

typedef struct {
    lsm_memtable_t *mem;
    lsm_memtable_staged_t staged;
} insert_t;

static int insert_op(void *arg, uint64_t seq, int type, lsm_slice_t key, lsm_slice_t value)
{
    insert_t *ins = arg;
    return lsm_memtable_stage(ins->mem, &ins->staged, seq, type, key, value);
}

/* Builds the group record from the queue head on; returns the last writer included. */
static lsm_writer_t *build_group(lsm_t *db, lsm_writer_t *first, uint32_t *count, bool *sync)
{
    size_t max = first->rep.len <= (128u << 10) ? first->rep.len + (128u << 10) : MAX_GROUP;
    lsm_writer_t *last = first;
    lsm_buf_t *g = &db->group;
    g->len = 0;
    *count = 0;
    *sync = first->sync;
    if (lsm_buf_reserve(g, LSM_WAL_HEADER + first->rep.len))
        return NULL;
    g->len = LSM_WAL_HEADER + LSM_BATCH_HEADER;
    for (lsm_writer_t *w = first; w; w = w->next) {
        if (w->rep.len == 0 || (w->sync && !first->sync))
            break; /* a control writer, or a sync write must not ride a non-sync group */
        if (w != first && g->len + w->rep.len > max)
            break;
        if (lsm_buf_append(g, w->rep.data + LSM_BATCH_HEADER, w->rep.len - LSM_BATCH_HEADER))
            break;
        *count += lsm_batch_rep_count(w->rep);
        last = w;
    }
    return last;
}

/* The leader's unlocked part: WAL append (+ sync), then the memtable. */
static int commit_group(lsm_t *db, uint64_t seq, uint32_t count, bool sync)
{
    lsm_buf_t *g = &db->group;
    int rc = 0;
    lsm_put_fixed64(g->data + LSM_WAL_HEADER, seq);
    lsm_put_fixed32(g->data + LSM_WAL_HEADER + 8, count);
    if (db->o.disable_wal)
        sync = false; /* the caller's own log is the WAL; lsm_flush makes data durable */
    if (sync)
        rc = lsm_db_sync_old_wals(db);
    if (!rc && !db->o.disable_wal)
        rc = lsm_wal_add(&db->wal, g->data, g->len);
    if (!rc && sync) {
        rc = lsm_wal_sync(&db->wal);
        atomic_fetch_add(&db->wal_syncs, 1);
    }
    if (rc)
        return lsm_err(&db->log, rc, "WAL %06" PRIu64 ": write failed", db->wal_number);
    insert_t ins = {.mem = db->mem};
    lsm_slice_t rep = lsm_slice(g->data + LSM_WAL_HEADER, g->len - LSM_WAL_HEADER);
    rc = lsm_batch_iterate(rep, insert_op, &ins);
    lsm_memtable_add_staged(db->mem, &ins.staged); /* what was built, even after an error */
    return rc ? lsm_err(&db->log, rc, "memtable insert failed") : 0;
}

/* Queues w and waits until it is done (served by a leader) or at the head (then the caller
 * is the leader). mu held. */
static bool wait_turn(lsm_t *db, lsm_writer_t *w)
{
    pthread_cond_init(&w->cv, NULL);
    w->next = NULL;
    if (db->wq_tail)
        db->wq_tail->next = w;
    else
        db->wq_head = w;
    db->wq_tail = w;
    while (!w->done && db->wq_head != w)
        pthread_cond_wait(&w->cv, &db->mu);
    return !w->done;
}

/* Pops the head through `last`, handing rc to the writers served; wakes the next leader. */
static void finish_turn(lsm_t *db, lsm_writer_t *leader, lsm_writer_t *last, int rc)
{
    for (;;) {
        lsm_writer_t *x = db->wq_head;
        db->wq_head = x->next;
        if (x != leader) {
            x->rc = rc;
            x->done = true;
            pthread_cond_signal(&x->cv);
        }
        if (x == last)
            break;
    }
    if (!db->wq_head)
        db->wq_tail = NULL;
    else
        pthread_cond_signal(&db->wq_head->cv);
}

static int write_rep(lsm_t *db, lsm_slice_t rep, bool sync)
{
    lsm_writer_t w = {.rep = rep, .sync = sync};
    pthread_mutex_lock(&db->mu);
    if (!wait_turn(db, &w)) {
        pthread_mutex_unlock(&db->mu);
        pthread_cond_destroy(&w.cv);
        return w.rc;
    }
    int rc = lsm_db_make_room(db, false);
    lsm_writer_t *last = &w;
    if (!rc) {
        uint32_t count;
        bool gsync;
        last = build_group(db, &w, &count, &gsync);
        uint64_t seq = atomic_load(&db->last_seq) + 1;
        if (!last) {
            last = &w;
            rc = SHOAL_ENOMEM;
        } else {
            pthread_mutex_unlock(&db->mu);
            rc = commit_group(db, seq, count, gsync);
            pthread_mutex_lock(&db->mu);
            atomic_fetch_add(&db->write_groups, 1);
            if (rc)
                lsm_db_set_bg_error(db, rc); /* the WAL may hold half a record: stop */
            else
                atomic_store(&db->last_seq, seq + count - 1);
        }
    }
    finish_turn(db, &w, last, rc);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

int lsm_write(lsm_t *db, const lsm_write_options_t *wo, const lsm_batch_t *b)
{
    bool sync = wo ? wo->sync : db->o.sync == LSM_SYNC_ALWAYS;
    if (b->rep.len < LSM_BATCH_HEADER)
        return SHOAL_EINVAL;
    atomic_fetch_add_explicit(&db->writes, 1, memory_order_relaxed);
    if (b->count == 0)
        return 0;
    return write_rep(db, lsm_slice(b->rep.data, b->rep.len), sync);
}

/* Single-op writes encode a one-op batch on the stack when it fits. */
static int write_one(lsm_t *db, const lsm_write_options_t *wo, int type, const void *key,
                     size_t klen, const void *val, size_t vlen)
{
    char stack[512];
    size_t need = LSM_BATCH_HEADER + 1 + 10 + klen + 10 + vlen;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return SHOAL_ETOOLARGE;
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf)
        return SHOAL_ENOMEM;
    memset(buf, 0, LSM_BATCH_HEADER);
    lsm_put_fixed32(buf + 8, 1);
    char *p = buf + LSM_BATCH_HEADER;
    *p++ = (char)type;
    p = lsm_put_varint64(p, klen);
    memcpy(p, key, klen);
    p += klen;
    if (type == LSM_TYPE_VALUE) {
        p = lsm_put_varint64(p, vlen);
        if (vlen)
            memcpy(p, val, vlen);
        p += vlen;
    }
    bool sync = wo ? wo->sync : db->o.sync == LSM_SYNC_ALWAYS;
    atomic_fetch_add_explicit(&db->writes, 1, memory_order_relaxed);
    int rc = write_rep(db, lsm_slice(buf, (size_t)(p - buf)), sync);
    if (buf != stack)
        free(buf);
    return rc;
}

int lsm_put(lsm_t *db, const lsm_write_options_t *wo, const void *key, size_t klen, const void *val,
            size_t vlen)
{
    return write_one(db, wo, LSM_TYPE_VALUE, key, klen, val, vlen);
}

int lsm_delete(lsm_t *db, const lsm_write_options_t *wo, const void *key, size_t klen)
{
    return write_one(db, wo, LSM_TYPE_DELETE, key, klen, NULL, 0);
}

/* Runs fn as the write leader (no write in flight, none starts until it returns), with mu
 * held. Used by flush and ingest, which swap the memtable and the WAL. */
int lsm_db_as_leader(lsm_t *db, int (*fn)(lsm_t *db, void *arg), void *arg)
{
    lsm_writer_t w = {.rep = {NULL, 0}};
    pthread_mutex_lock(&db->mu);
    int rc = wait_turn(db, &w) ? fn(db, arg) : w.rc;
    finish_turn(db, &w, &w, rc);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}
