/* log_actor.c - the node's log actor: the one thread that writes the shared Raft log.
 *
 * It receives PERSIST batches from the node actor (entries and hard states of any number
 * of groups), drains every batch already queued, writes them all and makes them durable
 * with one fdatasync (group commit across shards and across batches), then answers each
 * batch with PERSISTED. It never holds a Raft core or a socket to peers, so a slow disk
 * delays only the messages that must wait for durability (votes, append acks), never the
 * heartbeats the node actor sends meanwhile.
 *
 * Protocol (czmq pictures on the actor pipe): in "sp" PERSIST persist_batch_t*; out "sp"
 * PERSISTED persist_batch_t*. $TERM ends the actor after the batches in hand. Nothing else
 * ends it: every batch it is sent before $TERM is answered. A signal that interrupts the
 * wait (EINTR: the SIGTERM that stops shoald may land on this thread) is not a reason to
 * stop, or the batch sent next would never come back and the node's writes would stall. */
#include <czmq.h>
#include <errno.h>

#include "actors/node_config.h"
#include "actors/node_int.h"
#include "engine/error.h"

#define MAX_DRAIN 256

static int write_item(rlog_t *log, persist_item_t *it)
{
    if (it->drop)
        return rlog_drop_group(log, it->group);
    int rc = 0;
    if (it->has_snap)
        rc = rlog_set_snapshot(log, it->group, it->snap_index, it->snap_term, it->conf,
                               it->conf_len);
    for (size_t i = 0; rc == 0 && i < it->n_entries; i++) {
        const raft_entry_t *e = &it->entries[i];
        rc = rlog_append(log, it->group, e->term, e->index, (uint8_t)e->type, e->data, e->len);
    }
    if (rc == 0 && it->has_hs)
        rc = rlog_set_hardstate(log, it->group, it->hs.term, it->hs.vote, it->hs.commit);
    return rc;
}

/* Writes every batch, syncs once, answers them all. */
static void commit_batches(zsock_t *pipe, log_args_t *a, persist_batch_t **b, size_t n)
{
    int rc = 0;
    bool snaps = false, entries = false;
    rlog_lock(a->log);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < b[k]->n; i++) {
            entries |= b[k]->items[i].n_entries > 0;
            int r = write_item(a->log, &b[k]->items[i]);
            if (r && rc == 0) {
                rc = r;
                zsys_error("log: group %u: write failed: %s", b[k]->items[i].group,
                           shoal_strerror(r));
            }
            snaps |= b[k]->items[i].has_snap || b[k]->items[i].drop; /* old segments may go */
        }
    uint64_t t0 = zclock_usecs();
    /* never: the records still go to the files (the kernel keeps them through a process
     * crash); left in the log's buffer they were lost with it, and the cluster came back
     * with every follower's log far behind the commit index it had acknowledged */
    if (rc == 0)
        rc = a->fsync_mode != NODE_FSYNC_NEVER ? rlog_sync(a->log) : rlog_flush(a->log);
    /* testing only: a disk slow to write entries (votes stay fast, so elections can still
     * finish), for the test that heartbeats never wait for the disk */
    if (a->delay_ms && entries)
        zclock_sleep((int)a->delay_ms);
    uint64_t took = zclock_usecs() - t0;
    if (rc)
        zsys_error("log: sync failed: %s", shoal_strerror(rc));
    if (rc == 0 && snaps && rlog_gc(a->log) != 0)
        zsys_warning("log: deleting old segments failed (retried at the next snapshot)");
    rlog_unlock(a->log);
    for (size_t k = 0; k < n; k++) {
        b[k]->rc = rc;
        b[k]->sync_us = took;
        b[k]->synced = a->fsync_mode != NODE_FSYNC_NEVER;
        zsock_send(pipe, "sp", "PERSISTED", b[k]);
    }
}

void log_actor(zsock_t *pipe, void *args)
{
    log_args_t *a = args;
    zsock_signal(pipe, 0);
    persist_batch_t *batch[MAX_DRAIN];
    bool stop = false;
    while (!stop) {
        char *cmd = NULL;
        void *ptr = NULL;
        size_t n = 0;
        if (zsock_recv(pipe, "sp", &cmd, &ptr) != 0) {
            zstr_free(&cmd);
            if (errno == EINTR)
                continue;
            break; /* the context is gone (ETERM): nobody is left to answer */
        }
        /* Drain what is already queued: their writes share the one fdatasync. */
        while (cmd) {
            if (streq(cmd, "$TERM"))
                stop = true;
            else if (streq(cmd, "PERSIST") && ptr)
                batch[n++] = ptr;
            zstr_free(&cmd);
            if (stop || n == MAX_DRAIN || !(zsock_events(pipe) & ZMQ_POLLIN))
                break;
            if (zsock_recv(pipe, "sp", &cmd, &ptr) != 0)
                break;
        }
        if (n)
            commit_batches(pipe, a, batch, n);
    }
}
