/* watch.c - libshoal change streams: a SUB socket on the broker's XPUB plus catch-up
 * through `changes` requests (see shoal.h for the contract).
 *
 * Per shard the watch remembers the last change it delivered: its Raft index and its op
 * in that entry (a batch's ops share the index: op_seq of op_count). A live event at or
 * before it is a duplicate (catch-up and live stream overlap) and is dropped; a live event
 * that skips ops (prev_index past the last entry, a later op of the same entry, an entry
 * left unfinished) shows a gap (the broker's XPUB dropped messages for this subscriber at
 * its high-water mark, or the subscription started late), and the watch fills the gap
 * from the shard's retained changes before delivering anything newer. With a prefix,
 * prev_index legitimately points at events of other keys, so a filtered watch sees its
 * drops in the broker's count of the events it sent for the prefix (a third frame,
 * StreamSeqs: stream_seqs.c) and then catches every shard up. */
#include "broker/client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/endpoint.h"
#include "engine/error.h"

typedef struct {
    uint32_t shard;
    uint64_t last;      /* index of the last entry delivered (or resumed after) */
    uint32_t next, ops; /* of entry `last`: ops delivered and its op count (0: all of it) */
    bool gone;          /* the changes after `last` are not retained: told once, not asked again */
    /* the stream was cut (broker restart): catch up before delivering more, and at this
     * many more progress notices (the new broker's subscription to the nodes' changes
     * takes effect some time after the watch is back: changes in between reach no one) */
    int resync;
} shard_pos_t;

/* Whether every op of entry p->last was delivered. */
static bool entry_done(const shard_pos_t *p)
{
    return p->ops == 0 || p->next >= p->ops;
}

/* Whether a change at (index, seq) was delivered already. */
static bool delivered(const shard_pos_t *p, uint64_t index, uint32_t seq)
{
    return index < p->last || (index == p->last && (entry_done(p) || seq < p->next));
}

static void advance(shard_pos_t *p, uint64_t index, uint32_t seq, uint32_t count)
{
    p->last = index;
    p->next = seq + 1;
    p->ops = count ? count : 1;
}

/* With several brokers, how long the SUB may go without a connection to the current one
 * before it moves to the next: long enough for a restarting broker to come back, short
 * against the progress notices' second. */
#define WATCH_FAILOVER_MS 1000

struct shoal_watch_t {
    shoal_t *client; /* borrowed; may be NULL */
    zsock_t *sub;
    zsock_t *mon; /* the SUB's connects and disconnects (zmq_socket_monitor), or NULL */
    char *pubs[SHOAL_MAX_BROKERS]; /* the brokers' XPUB endpoints; the SUB is on pubs[cur] */
    size_t n_pubs, cur;
    bool up;            /* connected to pubs[cur] */
    int64_t down_since; /* when it last lost (or began to look for) its connection */
    uint8_t *prefix;
    size_t plen;
    zlistx_t *queue; /* shoal_watch_event_t *, ready to deliver */
    shoal_watch_event_t *current;
    shard_pos_t *pos;
    size_t n_pos;
    /* the broker's count of events sent for this prefix, as of the last frame that had it */
    bool have_seq;
    uint64_t seq_epoch, seq;
};

static void event_free(shoal_watch_event_t **ev_p)
{
    if (!ev_p || !*ev_p)
        return;
    free((*ev_p)->change.key);
    free((*ev_p)->change.value);
    free(*ev_p);
    *ev_p = NULL;
}

/* The XPUB endpoint of a broker with client endpoint ep: same host, port + 1. */
static char *pub_of(const char *ep)
{
    const char *colon = strrchr(ep, ':');
    if (!colon || strncmp(ep, "tcp://", 6) != 0)
        return NULL;
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port >= 65535)
        return NULL;
    return zsys_sprintf("%.*s:%ld", (int)(colon - ep), ep, port + 1);
}

/* Fills self->pubs from a comma-separated list: the XPUB endpoints themselves, or (derive)
 * the brokers' client endpoints. false on an empty, malformed or too long list. */
static bool set_pubs(shoal_watch_t *self, const char *list, bool derive)
{
    while (*list) {
        char ep[256];
        if (self->n_pubs == SHOAL_MAX_BROKERS || !shoal_first_endpoint(list, ep, sizeof ep) || !*ep)
            return false;
        char *pub = derive ? pub_of(ep) : shoal_client_endpoint_ok(ep) ? strdup(ep) : NULL;
        if (!pub)
            return false;
        self->pubs[self->n_pubs++] = pub;
        list += strlen(ep);
        if (*list == ',' && !*++list)
            return false; /* a trailing comma */
    }
    return self->n_pubs > 0;
}

/* Changes published while the SUB is disconnected (a broker restart) are lost to it, and a
 * watch with a prefix cannot see that from the indexes: so every disconnect marks every
 * shard for a catch-up (resync) at its next event or progress notice. The connects tell a
 * broker that is back from one that stays away (see failover). */
static void watch_monitor(shoal_watch_t *self)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://shoal-watch-%p", (void *)self);
    if (zmq_socket_monitor(zsock_resolve(self->sub), ep,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED) != 0)
        return;
    self->mon = zsock_new(ZMQ_PAIR);
    if (self->mon && zsock_connect(self->mon, "%s", ep) != 0)
        zsock_destroy(&self->mon);
}

static void resync_all(shoal_watch_t *self)
{
    for (size_t i = 0; i < self->n_pos; i++)
        self->pos[i].resync = 3;
}

/* With several brokers, a SUB that has had no connection for WATCH_FAILOVER_MS moves to
 * the next broker, as etcd's clients move a watch to another endpoint; what the old
 * broker's stream did not bring is caught up from the new one (resync). A dead broker
 * whose host stays silent shows as a disconnect through the ZMTP heartbeats. */
static void failover(shoal_watch_t *self)
{
    if (self->up || self->n_pubs < 2 || zclock_mono() - self->down_since < WATCH_FAILOVER_MS)
        return;
    zsock_disconnect(self->sub, "%s", self->pubs[self->cur]);
    self->cur = (self->cur + 1) % self->n_pubs;
    zsock_connect(self->sub, "%s", self->pubs[self->cur]);
    self->down_since = zclock_mono();
    resync_all(self);
}

shoal_watch_t *shoal_watch_new(shoal_t *client, const char *pub_endpoint, const void *prefix,
                               size_t plen)
{
    if ((!prefix && plen) || plen > SHOAL_MAX_KEY || (!pub_endpoint && !client))
        return NULL; /* no key could match a longer prefix */
    shoal_watch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->client = client;
    self->queue = zlistx_new();
    self->prefix = malloc(plen + 1);
    self->sub = zsock_new(ZMQ_SUB);
    if (!self->queue || !self->prefix || !self->sub ||
        !set_pubs(self, pub_endpoint ? pub_endpoint : shoal_endpoint(client), !pub_endpoint) ||
        zsock_connect(self->sub, "%s", self->pubs[0]) != 0) {
        shoal_watch_destroy(&self);
        return NULL;
    }
    self->down_since = zclock_mono();
    if (plen)
        memcpy(self->prefix, prefix, plen);
    self->plen = plen;
    zsock_set_rcvhwm(self->sub, 100000);
    zsock_set_heartbeat_ivl(self->sub, 1000);
    zsock_set_heartbeat_timeout(self->sub, 3000);
    /* topic "change/<prefix>" (binary prefix, so build it by hand) and "progress" */
    uint8_t *topic = malloc(7 + plen);
    if (!topic) {
        shoal_watch_destroy(&self);
        return NULL;
    }
    memcpy(topic, "change/", 7);
    if (plen)
        memcpy(topic + 7, prefix, plen);
    zmq_setsockopt(zsock_resolve(self->sub), ZMQ_SUBSCRIBE, topic, 7 + plen);
    free(topic);
    zsock_set_subscribe(self->sub, "progress");
    watch_monitor(self);
    return self;
}

void shoal_watch_destroy(shoal_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_watch_t *self = *self_p;
    if (self->queue) {
        shoal_watch_event_t *ev;
        while ((ev = zlistx_detach(self->queue, NULL)))
            event_free(&ev);
        zlistx_destroy(&self->queue);
    }
    event_free(&self->current);
    if (self->mon)
        zmq_socket_monitor(zsock_resolve(self->sub), NULL, 0);
    zsock_destroy(&self->mon);
    zsock_destroy(&self->sub);
    for (size_t i = 0; i < self->n_pubs; i++)
        zstr_free(&self->pubs[i]);
    free(self->prefix);
    free(self->pos);
    free(self);
    *self_p = NULL;
}

static shard_pos_t *pos_of(shoal_watch_t *self, uint32_t shard)
{
    for (size_t i = 0; i < self->n_pos; i++)
        if (self->pos[i].shard == shard)
            return &self->pos[i];
    shard_pos_t *p = realloc(self->pos, (self->n_pos + 1) * sizeof *p);
    if (!p)
        return NULL;
    self->pos = p;
    self->pos[self->n_pos] = (shard_pos_t){.shard = shard};
    return &self->pos[self->n_pos++];
}

static bool matches(shoal_watch_t *self, const uint8_t *key, size_t klen)
{
    return klen >= self->plen && memcmp(key, self->prefix, self->plen) == 0;
}

/* Position of a change in its entry: op op_seq of op_count (a batch's ops share the index),
 * so that a watcher can resume after any op (shoal_watch_from_op). */
typedef struct {
    uint32_t seq, count;
} op_at_t;

static void enqueue(shoal_watch_t *self, shoal_watch_kind_t kind, uint32_t shard, uint64_t index,
                    op_at_t at, bool is_delete, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen)
{
    shoal_watch_event_t *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->kind = kind;
    ev->change.shard = shard;
    ev->change.index = index;
    ev->change.op_seq = at.seq;
    ev->change.op_count = at.count;
    ev->change.is_delete = is_delete;
    ev->change.key = malloc(klen + 1);
    ev->change.value = malloc(vlen + 1);
    if (!ev->change.key || !ev->change.value) {
        event_free(&ev);
        return;
    }
    if (klen)
        memcpy(ev->change.key, key, klen);
    ev->change.key[klen] = 0;
    ev->change.key_len = klen;
    if (vlen)
        memcpy(ev->change.value, val, vlen);
    ev->change.value[vlen] = 0;
    ev->change.value_len = vlen;
    zlistx_add_end(self->queue, ev);
}

static void fell_behind(shoal_watch_t *self, shard_pos_t *p)
{
    p->resync = 0;
    enqueue(self, SHOAL_WATCH_FELL_BEHIND, p->shard, p->last, (op_at_t){0, 0}, false, NULL, 0, NULL,
            0);
    p->gone = true;
}

/* Fetches and queues the changes of shard after p->last. A lost window queues
 * FELL_BEHIND once (SHOAL_ENOTFOUND); an unknown shard is SHOAL_EINVAL; a broker that
 * does not answer leaves the gap for a later try (SHOAL_EUNAVAIL). */
static int catch_up(shoal_watch_t *self, shard_pos_t *p)
{
    if (p->gone)
        return SHOAL_ENOTFOUND;
    if (!self->client) {
        fell_behind(self, p);
        return SHOAL_ENOTFOUND;
    }
    for (int round = 0; round < 1000; round++) {
        shoal_result_t r;
        int st = shoal_changes_after(self->client, p->shard, p->last, entry_done(p) ? 0 : p->next,
                                     1000, &r);
        if (st != SHOAL_STATUS_OK) {
            shoal_result_clear(&r);
            if (st == SHOAL_STATUS_WINDOW_GONE)
                fell_behind(self, p);
            return st == SHOAL_STATUS_WINDOW_GONE   ? SHOAL_ENOTFOUND
                   : st == SHOAL_STATUS_BAD_REQUEST ? SHOAL_EINVAL
                                                    : SHOAL_EUNAVAIL;
        }
        for (size_t i = 0; i < r.n_changes; i++) {
            shoal_change_t *c = &r.changes[i];
            if (delivered(p, c->index, c->op_seq))
                continue;
            if (matches(self, c->key, c->key_len))
                enqueue(self, SHOAL_WATCH_CHANGE, p->shard, c->index,
                        (op_at_t){c->op_seq, c->op_count}, c->is_delete, c->key, c->key_len,
                        c->value, c->value_len);
            advance(p, c->index, c->op_seq, c->op_count);
        }
        bool more = r.more && r.n_changes > 0;
        shoal_result_clear(&r);
        if (!more)
            break;
    }
    return 0;
}

int shoal_watch_from(shoal_watch_t *self, uint32_t shard, uint64_t after_index)
{
    return shoal_watch_from_op(self, shard, after_index, 0);
}

int shoal_watch_from_op(shoal_watch_t *self, uint32_t shard, uint64_t after_index,
                        uint32_t after_ops)
{
    if (!self || !self->client)
        return SHOAL_EINVAL; /* nothing to catch up through */
    shard_pos_t *p = pos_of(self, shard);
    if (!p)
        return SHOAL_ENOMEM;
    /* the entry's op count is not known yet: unfinished until its catch-up tells */
    *p = (shard_pos_t){
        .shard = shard, .last = after_index, .next = after_ops, .ops = after_ops ? UINT32_MAX : 0};
    return catch_up(self, p);
}

/* Whether a live event not delivered yet leaves out changes before it: ops of the last
 * entry, or entries between it and the event's. */
static bool skips(const shard_pos_t *p, const Shoal__ChangeEvent *ev)
{
    if (ev->index == p->last)
        return ev->op_seq > p->next;
    return ev->op_seq > 0 || ev->prev_index > p->last || !entry_done(p);
}

/* Catches every shard up from its resume point: the stream lost changes, and which shard's
 * is not known. A broker not answering leaves them for the next progress notices. */
static void catch_up_all(shoal_watch_t *self)
{
    for (size_t i = 0; i < self->n_pos; i++)
        if (self->pos[i].last && catch_up(self, &self->pos[i]) == SHOAL_EUNAVAIL)
            self->pos[i].resync = 3;
}

/* Whether the broker's count for this watch's prefix in a StreamSeqs frame shows events
 * this watch never got: past the last count seen by more than the events this frame
 * brings (1 for a change event, 0 for a notice). A new broker run (epoch) or a count
 * that went back (the prefix was unsubscribed meanwhile) starts counting afresh. */
static bool seq_gap(shoal_watch_t *self, zframe_t *frame, uint64_t brings)
{
    if (!frame || self->plen == 0)
        return false;
    Shoal__StreamSeqs *ss =
        shoal__stream_seqs__unpack(NULL, zframe_size(frame), zframe_data(frame));
    if (!ss)
        return false;
    bool gap = false;
    for (size_t i = 0; i < ss->n_seqs; i++) {
        ProtobufCBinaryData pf = ss->seqs[i]->prefix;
        if (pf.len != self->plen || memcmp(pf.data, self->prefix, pf.len) != 0)
            continue;
        uint64_t seq = ss->seqs[i]->seq;
        if (self->have_seq && ss->epoch == self->seq_epoch && seq >= self->seq)
            gap = seq > self->seq + brings;
        self->have_seq = true;
        self->seq_epoch = ss->epoch;
        self->seq = seq;
        break;
    }
    shoal__stream_seqs__free_unpacked(ss, NULL);
    return gap;
}

static void on_change(shoal_watch_t *self, const uint8_t *data, size_t len, zframe_t *seqs)
{
    Shoal__ChangeEvent *ev = shoal__change_event__unpack(NULL, len, data);
    if (!ev)
        return;
    shard_pos_t *p = pos_of(self, ev->shard);
    if (!p)
        goto done;
    if (seq_gap(self, seqs, 1))
        catch_up_all(self); /* this event's shard included: likely delivers it too */
    /* what the cut stream lost, and likely this event too; a broker not answering yet
     * leaves both for the next try (the event is retained with the rest) */
    if (p->resync && p->last && catch_up(self, p) == SHOAL_EUNAVAIL)
        goto done;
    if (p->last && delivered(p, ev->index, ev->op_seq))
        goto done;
    if (self->plen == 0 && p->last && skips(p, ev)) {
        catch_up(self, p); /* the gap, and likely this event too */
        if (delivered(p, ev->index, ev->op_seq))
            goto done;
    }
    if (matches(self, ev->key.data, ev->key.len))
        enqueue(self, SHOAL_WATCH_CHANGE, ev->shard, ev->index, (op_at_t){ev->op_seq, ev->op_count},
                ev->op == SHOAL__CHANGE_OP__CHANGE_DELETE, ev->key.data, ev->key.len,
                ev->value.data, ev->value.len);
    advance(p, ev->index, ev->op_seq, ev->op_count);
    p->gone = false; /* a later gap is a new one */
done:
    shoal__change_event__free_unpacked(ev, NULL);
}

static void on_notice(shoal_watch_t *self, const uint8_t *data, size_t len, zframe_t *seqs)
{
    Shoal__StreamNotice *n = shoal__stream_notice__unpack(NULL, len, data);
    if (!n)
        return;
    /* before the positions below move to the notice's indexes, past the lost changes */
    if (seq_gap(self, seqs, 0))
        catch_up_all(self);
    for (size_t i = 0; i < n->n_progress; i++) {
        shard_pos_t *p = pos_of(self, n->progress[i]->shard);
        uint64_t applied = n->progress[i]->applied_index;
        bool progress = n->type == SHOAL__STREAM_NOTICE_TYPE__NOTICE_PROGRESS;
        /* Unfiltered and behind the applied index with nothing in flight: a lost tail. */
        if (p && self->plen == 0 && !p->resync && p->last && progress &&
            (applied > p->last || (applied == p->last && !entry_done(p))))
            catch_up(self, p);
        if (p && p->resync && progress && (!p->last || catch_up(self, p) == 0))
            p->resync--;
        /* With a prefix and in sync, every change up to a progress notice's index came
         * before it on the stream (or was caught up just now): a later resync resumes from
         * there. */
        if (p && self->plen && !p->resync && progress && applied > p->last)
            *p = (shard_pos_t){.shard = p->shard, .last = applied};
        enqueue(self,
                n->type == SHOAL__STREAM_NOTICE_TYPE__NOTICE_PROGRESS ? SHOAL_WATCH_PROGRESS
                                                                      : SHOAL_WATCH_FELL_BEHIND,
                n->progress[i]->shard, applied, (op_at_t){0, 0}, false, NULL, 0, NULL, 0);
    }
    shoal__stream_notice__free_unpacked(n, NULL);
}

/* A monitor event: the SUB connected, or lost its connection (whatever was published until
 * it is back is lost to it). */
static void on_monitor(shoal_watch_t *self)
{
    zmsg_t *msg = zmsg_recv(self->mon); /* event frame (u16 event, u32 value), endpoint */
    zframe_t *f = msg ? zmsg_first(msg) : NULL;
    uint16_t event = 0;
    if (f && zframe_size(f) >= 2)
        memcpy(&event, zframe_data(f), 2);
    zmsg_destroy(&msg);
    if (event == ZMQ_EVENT_CONNECTED) {
        self->up = true;
        return;
    }
    if (self->up)
        self->down_since = zclock_mono();
    self->up = false;
    resync_all(self);
}

/* Reads one message from the SUB socket (already known readable). */
static void read_one(shoal_watch_t *self)
{
    zmsg_t *msg = zmsg_recv(self->sub);
    if (!msg)
        return;
    zframe_t *topic = zmsg_first(msg);
    zframe_t *body = zmsg_next(msg);
    zframe_t *seqs = body ? zmsg_next(msg) : NULL;
    if (topic && body) {
        if (zframe_size(topic) >= 7 && memcmp(zframe_data(topic), "change/", 7) == 0)
            on_change(self, zframe_data(body), zframe_size(body), seqs);
        else if (zframe_streq(topic, "progress"))
            on_notice(self, zframe_data(body), zframe_size(body), seqs);
    }
    zmsg_destroy(&msg);
}

int shoal_watch_next(shoal_watch_t *self, shoal_watch_event_t *ev, int timeout_ms)
{
    if (!self || !ev)
        return SHOAL_EINVAL;
    event_free(&self->current);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono() + timeout_ms;
    while (zlistx_size(self->queue) == 0) {
        if (zsys_interrupted)
            return SHOAL_ECLOSED;
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            return 0;
        zmq_pollitem_t items[2] = {{zsock_resolve(self->sub), 0, ZMQ_POLLIN, 0},
                                   {self->mon ? zsock_resolve(self->mon) : NULL, 0, ZMQ_POLLIN, 0}};
        failover(self);
        if (zmq_poll(items, self->mon ? 2 : 1, left > 100 ? 100 : left) <= 0)
            continue;
        if (items[1].revents & ZMQ_POLLIN)
            on_monitor(self);
        if (items[0].revents & ZMQ_POLLIN)
            read_one(self);
    }
    self->current = zlistx_detach(self->queue, NULL);
    *ev = *self->current;
    return 1;
}
