/* route.c - the broker's request path: key -> shard (ring) -> leader (cache) -> node, and
 * the answer back to the client.
 *
 * A request in flight is a pending_t in b->pending under a broker-local id that the node
 * echoes. It is retried - always with the client's own client id and seq, so a write
 * that already applied is answered from the node's session instead of applying twice -
 * when the node says it is not the leader (at once to the hinted leader, else after a
 * short back-off at the next replica), when it is unavailable, when the send fails
 * (no live connection) and when it stays silent past attempt_timeout_ms. Nothing is held
 * past its deadline: the client then gets STATUS_TIMEOUT (or the last UNAVAILABLE). A
 * shard-map change answered NOT_LEADER by the node the broker took for the metadata leader
 * goes on to the next guess the same way (the node refused it before proposing it).
 *
 * Scans go to every shard and batches to the shards of their keys ("fan-out": children
 * of a gather_t); their answers are merged when the last child is done. A batch is atomic
 * within a shard (one Raft entry) and NOT across shards. */
#include "broker/broker_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/shoal.h"

#define HINT_FOLLOWS 8 /* immediate resends to hinted leaders before backing off */
/* A map change that finds no metadata leader is answered this long before its deadline,
 * so that a client whose timeout equals the broker's hears why. */
#define ADMIN_GIVE_UP_EARLY_MS 250
#define SCAN_DEFAULT 1000

static void finish(broker_t *b, pending_t *p, Shoal__Frame *resp, int status, const char *err);

void route_reply_error(broker_t *b, zframe_t *client, uint64_t rid, int status, const char *fmt,
                       ...)
{
    char line[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
    }
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.status = (Shoal__Status)status;
    r.error = line;
    r.request_id = rid;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    f.client_resp = &r;
    broker_reply(b, client, &f);
}

static int64_t backoff_ms(int attempts)
{
    int64_t ms = (int64_t)5 << (attempts < 6 ? attempts : 6);
    return ms < 200 ? ms : 200;
}

static pending_t *pending_new(broker_t *b, uint32_t shard, int64_t deadline)
{
    pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->id = b->next_id++;
    p->shard = shard;
    p->deadline = deadline;
    p->sent_to = -1;
    zhashx_insert(b->pending, &p->id, p);
    return p;
}

static void pending_free(broker_t *b, pending_t **p_p)
{
    pending_t *p = *p_p;
    zhashx_delete(b->pending, &p->id);
    zframe_destroy(&p->client);
    shoal_frame_free(&p->frame);
    free(p->sub_ops);
    free(p);
    *p_p = NULL;
}

static void gather_free(gather_t **g_p)
{
    gather_t *g = *g_p;
    for (size_t i = 0; i < g->expected; i++)
        shoal_frame_free(&g->answers[i]);
    free(g->answers);
    free(g->slot_shard);
    zframe_destroy(&g->client);
    shoal_frame_free(&g->frame);
    free(g);
    *g_p = NULL;
}

void route_free_all(broker_t *b)
{
    zlistx_t *all = zhashx_values(b->pending);
    for (pending_t *p = zlistx_first(all); p; p = zlistx_next(all)) {
        gather_t *g = p->gather;
        if (g && ++g->got == g->expected)
            gather_free(&g);
        pending_free(b, &p);
    }
    zlistx_destroy(&all);
}

/* A read any replica may serve: a stale one, or any read when broker/read_from = replicas
 * (a follower then confirms it with its leader by ReadIndex). */
static bool spread_read(const broker_t *b, const pending_t *p)
{
    const Shoal__ClientRequest *q = p->req;
    if (!q)
        return false;
    if (q->op_case == SHOAL__CLIENT_REQUEST__OP_GET)
        return q->get->stale || b->cfg.read_replicas;
    if (q->op_case == SHOAL__CLIENT_REQUEST__OP_SCAN)
        return q->scan->stale || b->cfg.read_replicas;
    return false;
}

/* The node to try next: the cached leader, else the replicas in turn. A spread read's first
 * attempt goes to the replicas in turn; its retries go to the leader. */
static bnode_t *pick_node(broker_t *b, bshard_t *s, pending_t *p)
{
    if (spread_read(b, p) && p->attempts == 0 && s->n_replicas)
        return broker_node(b, s->replicas[s->rr++ % s->n_replicas]);
    if (s->leader != BROKER_NO_LEADER)
        return broker_node(b, (uint64_t)s->leader);
    if (!s->n_replicas)
        return NULL;
    return broker_node(b, s->replicas[p->rotate % s->n_replicas]);
}

/* No live connection to the node an attempt was for: forget it as leader, try the next. */
static void unsent(pending_t *p, bshard_t *s, bnode_t *n, int64_t now)
{
    if (n && s && s->leader == (int64_t)n->id)
        s->leader = BROKER_NO_LEADER;
    p->last_status = SHOAL_STATUS_UNAVAILABLE;
    p->rotate++;
    p->attempt_deadline = 0;
    p->retry_at = now + backoff_ms(p->attempts);
}

void route_unsent(broker_t *b, bnode_t *n, uint64_t rid, bool was_delivered)
{
    pending_t *p = zhashx_lookup(b->pending, &rid);
    if (!p || p->sent_to != (int64_t)n->id)
        return;
    unsent(p, broker_shard(b, p->shard), n, zclock_mono());
    p->delivered = was_delivered;
    p->sent_to = -1;
}

static void send_attempt(broker_t *b, pending_t *p)
{
    int64_t now = zclock_mono();
    if (now >= p->deadline) {
        finish(b, p, NULL, SHOAL_STATUS_TIMEOUT, NULL);
        return;
    }
    char why[160];
    if (!reroute_attempt(b, p, why, sizeof why)) {
        finish(b, p, NULL, SHOAL_STATUS_UNAVAILABLE, why);
        return;
    }
    bshard_t *s = broker_shard(b, p->shard);
    if (!s) {
        finish(b, p, NULL, SHOAL_STATUS_BAD_REQUEST, "no such shard in the shard map");
        return;
    }
    bnode_t *n = pick_node(b, s, p);
    p->attempts++;
    if (p->attempts > 1)
        b->stats_retries++;
    p->req->shard = p->shard;
    p->req->request_id = p->id;
    p->req->map_version = b->map_version;
    p->req->timeout_ms = (uint32_t)(p->deadline - now);
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_REQ;
    f.client_req = p->req;
    size_t len = 0;
    uint8_t *buf = n ? shoal_frame_encode(&f, &len) : NULL;
    /* queued for the end of this loop turn (node_out.c), which may still fail: route_unsent */
    if (!buf || node_out_queue(n, buf, len, p->id, p->delivered) != 0) {
        unsent(p, s, n, now);
        return;
    }
    p->sent_to = (int64_t)n->id;
    p->delivered = true;
    int64_t left = p->deadline - now;
    int64_t attempt = (int64_t)b->cfg.attempt_timeout_ms;
    p->attempt_deadline = now + (left < attempt ? left : attempt);
    p->retry_at = 0;
    p->waits = 0;
}

/* Attempt timeouts a request waits on a node that is heard from (alive but slow) before it
 * is sent again; MAX_WAITS + 1 attempt timeouts (5 s by default) at most. */
#define MAX_WAITS 4

/* Whether p's attempt timed out on a node heard from since the attempt went out: the node
 * has the request and is slow (big writes on a busy disk, or a long scan), not silent.
 * Sending it again would only make that node decode and propose it once more: with 96
 * clients writing 1 MB values, every write was sent again each second, the leader spent its
 * time decoding copies, the log filled with duplicates and the cluster lost its leaders. A
 * node that died, restarted or lost leadership is not heard from or answers NOT_LEADER. */
static bool slow_not_silent(broker_t *b, const pending_t *p, int64_t now)
{
    bnode_t *n = p->sent_to >= 0 ? broker_node(b, (uint64_t)p->sent_to) : NULL;
    int64_t attempt = (int64_t)b->cfg.attempt_timeout_ms;
    return n && p->waits < MAX_WAITS && n->last_seen && now - n->last_seen < attempt;
}

static void send_frame_to_client(broker_t *b, zframe_t *client, uint64_t rid, Shoal__Frame *f)
{
    f->client_resp->request_id = rid;
    broker_reply(b, client, f);
}

/* Scan children answered: merge their key-ordered pages, apply the limit. */
static int kv_cmp(const void *x, const void *y)
{
    const Shoal__KeyValue *a = *(Shoal__KeyValue *const *)x, *b = *(Shoal__KeyValue *const *)y;
    size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
    int c = n ? memcmp(a->key.data, b->key.data, n) : 0;
    if (c)
        return c;
    return a->key.len < b->key.len ? -1 : a->key.len > b->key.len;
}

/* A row of a merged scan and the child (slot) that answered it. */
typedef struct {
    Shoal__KeyValue *kv;
    size_t slot;
} row_t;

static int row_cmp(const void *x, const void *y)
{
    return kv_cmp(&((const row_t *)x)->kv, &((const row_t *)y)->kv);
}

/* A key two shards both answered for (the source and the target of a split, around the
 * map change that closes it) is kept once: from the shard the map now places it on, else
 * the first. rows[] is sorted; returns the rows kept. */
static size_t drop_twins(broker_t *b, const gather_t *g, row_t *rows, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && kv_cmp(&rows[k - 1].kv, &rows[i].kv) == 0) {
            uint32_t owner = ring_shard_for(b->ring, rows[i].kv->key.data, rows[i].kv->key.len);
            if (g->slot_shard && g->slot_shard[rows[i].slot] == owner)
                rows[k - 1] = rows[i];
            continue;
        }
        rows[k++] = rows[i];
    }
    return k;
}

/* How many of the merged rows (sorted, twins dropped) the reply may show: at most the
 * limit and SHOAL_SCAN_MAX_BYTES, and none past the last key of a shard that stopped early
 * (`more`: at its limit or its byte bound), since that shard's later keys were not read. */
static size_t scan_page(gather_t *g, const row_t *rows, size_t total)
{
    const Shoal__KeyValue *cut = NULL;
    for (size_t i = 0; i < g->expected; i++) {
        const Shoal__ClientResponse *a = g->answers[i]->client_resp;
        if (a->more && a->n_kvs && (!cut || kv_cmp(&a->kvs[a->n_kvs - 1], &cut) < 0))
            cut = a->kvs[a->n_kvs - 1];
    }
    size_t n = 0, bytes = 0;
    for (; n < total && n < g->limit; n++) {
        bytes += rows[n].kv->key.len + rows[n].kv->value.len;
        if ((n && bytes > SHOAL_SCAN_MAX_BYTES) || (cut && kv_cmp(&rows[n].kv, &cut) > 0))
            break;
    }
    return n;
}

static void reply_scan(broker_t *b, gather_t *g)
{
    size_t total = 0;
    bool more = false;
    for (size_t i = 0; i < g->expected; i++) {
        total += g->answers[i]->client_resp->n_kvs;
        more |= g->answers[i]->client_resp->more;
    }
    Shoal__KeyValue **all = calloc(total + 1, sizeof *all);
    if (!all) {
        route_reply_error(b, g->client, g->client_rid, SHOAL_STATUS_INTERNAL, "out of memory");
        return;
    }
    row_t *rows = calloc(total + 1, sizeof *rows);
    if (!rows) {
        free(all);
        route_reply_error(b, g->client, g->client_rid, SHOAL_STATUS_INTERNAL, "out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < g->expected; i++)
        for (size_t j = 0; j < g->answers[i]->client_resp->n_kvs; j++)
            rows[k++] = (row_t){g->answers[i]->client_resp->kvs[j], i};
    qsort(rows, total, sizeof *rows, row_cmp);
    total = drop_twins(b, g, rows, total);
    size_t shown = scan_page(g, rows, total);
    for (size_t i = 0; i < total; i++)
        all[i] = rows[i].kv;
    free(rows);
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.status = SHOAL__STATUS__STATUS_OK;
    r.kvs = all;
    r.n_kvs = shown;
    r.more = more || shown < total;
    r.request_id = g->client_rid;
    r.found = r.n_kvs > 0;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    f.client_resp = &r;
    broker_reply(b, g->client, &f);
    free(all);
}

static void reply_batch(broker_t *b, gather_t *g)
{
    Shoal__ClientResponse r = SHOAL__CLIENT_RESPONSE__INIT;
    r.status = SHOAL__STATUS__STATUS_OK;
    r.request_id = g->client_rid;
    /* One shard: where the batch applied, as a put says (a watch may resume there). Across
     * shards no one (shard, index) says it: each part has its own, so both stay 0. */
    if (g->expected == 1) {
        r.shard = g->answers[0]->client_resp->shard;
        r.index = g->answers[0]->client_resp->index;
    }
    r.client_id = g->frame->client_req->client_id;
    r.seq = g->frame->client_req->seq;
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_CLIENT_RESP;
    f.client_resp = &r;
    broker_reply(b, g->client, &f);
}

static void reply_admin(broker_t *b, gather_t *g)
{
    Shoal__AdminResponse r = SHOAL__ADMIN_RESPONSE__INIT;
    r.request_id = g->client_rid;
    r.status = (Shoal__Status)g->status;
    r.error = g->error;
    /* add_shard goes to one node: its answer names the new shard */
    if (g->expected == 1 && g->answers[0] && g->answers[0]->admin_resp) {
        r.new_shard = g->answers[0]->admin_resp->new_shard;
        r.source_shard = g->answers[0]->admin_resp->source_shard;
    }
    Shoal__Frame f = SHOAL__FRAME__INIT;
    f.version = SHOAL_WIRE_VERSION;
    f.body_case = SHOAL__FRAME__BODY_ADMIN_RESP;
    f.admin_resp = &r;
    broker_reply(b, g->client, &f);
}

/* One child of a fan-out is done (resp taken, NULL on failure). */
static void gather_child_done(broker_t *b, gather_t *g, size_t slot, Shoal__Frame *resp, int status,
                              const char *err)
{
    g->answers[slot] = resp;
    if (status != SHOAL_STATUS_OK && g->status == SHOAL_STATUS_OK) {
        g->status = status;
        snprintf(g->error, sizeof g->error, "%s", err && *err ? err : shoal_status_str(status));
    }
    if (++g->got < g->expected)
        return;
    if (g->kind == GATHER_ADMIN)
        reply_admin(b, g);
    else if (g->status != SHOAL_STATUS_OK)
        route_reply_error(b, g->client, g->client_rid, g->status, "%s", g->error);
    else if (g->kind == GATHER_SCAN)
        reply_scan(b, g);
    else
        reply_batch(b, g);
    gather_free(&g);
}

/* Ends a request: resp (taken) is the node's answer, or NULL with status/err. */
static void finish(broker_t *b, pending_t *p, Shoal__Frame *resp, int status, const char *err)
{
    char line[256];
    if (!resp && !err && status == SHOAL_STATUS_TIMEOUT && !p->delivered) {
        /* Never reached a node: nothing can have applied, and the cause is known. */
        status = SHOAL_STATUS_UNAVAILABLE;
        snprintf(line, sizeof line, "shard %u: no replica reachable (%d attempts)", p->shard,
                 p->attempts);
        err = line;
    } else if (!resp && !err && status == SHOAL_STATUS_TIMEOUT &&
               p->last_status == SHOAL_STATUS_UNAVAILABLE) {
        snprintf(line, sizeof line,
                 "shard %u: no leader answered within the deadline (%d attempts)%s", p->shard,
                 p->attempts, p->is_write ? "; the write may or may not have applied" : "");
        err = line;
    }
    if (!resp && !err) {
        if (status == SHOAL_STATUS_TIMEOUT)
            snprintf(line, sizeof line, "shard %u: no answer within the deadline%s", p->shard,
                     p->is_write ? "; the write may or may not have applied" : "");
        else
            snprintf(line, sizeof line, "shard %u: %s", p->shard, shoal_status_str(status));
        err = line;
    }
    if (p->gather) {
        int st = resp ? (p->admin ? (int)resp->admin_resp->status : (int)resp->client_resp->status)
                      : status;
        const char *e =
            resp ? (p->admin ? resp->admin_resp->error : resp->client_resp->error) : err;
        gather_child_done(b, p->gather, p->slot, resp, st, e);
    } else if (resp) {
        send_frame_to_client(b, p->client, p->client_rid, resp);
        shoal_frame_free(&resp);
    } else {
        route_reply_error(b, p->client, p->client_rid, status, "%s", err);
    }
    pending_free(b, &p);
}

static bool retryable(int st)
{
    return st == SHOAL_STATUS_NOT_LEADER || st == SHOAL_STATUS_UNAVAILABLE;
}

void route_node_response(broker_t *b, bnode_t *n, Shoal__Frame *f)
{
    Shoal__ClientResponse *r = f->client_resp;
    uint64_t rid = r->request_id;
    pending_t *p = zhashx_lookup(b->pending, &rid);
    if (!p || p->admin || (retryable(r->status) && p->sent_to != (int64_t)n->id)) {
        shoal_frame_free(&f); /* late or stale: another attempt is in flight */
        return;
    }
    bshard_t *s = broker_shard(b, p->shard);
    int64_t now = zclock_mono();
    if ((int)r->status == SHOAL_STATUS_NOT_LEADER && s) {
        bool hinted =
            r->leader && r->leader->node_id != n->id && broker_node(b, r->leader->node_id);
        p->last_status = SHOAL_STATUS_UNAVAILABLE;
        if (hinted)
            admin_set_leader(b, s, (int64_t)r->leader->node_id, r->leader->term);
        else if (s->leader == (int64_t)n->id)
            s->leader = BROKER_NO_LEADER;
        p->rotate++;
        p->attempt_deadline = 0;
        shoal_frame_free(&f);
        if (hinted && p->attempts < HINT_FOLLOWS)
            send_attempt(b, p);
        else
            p->retry_at = now + backoff_ms(p->attempts);
        return;
    }
    if ((int)r->status == SHOAL_STATUS_UNAVAILABLE && s) {
        p->last_status = SHOAL_STATUS_UNAVAILABLE;
        if (s->leader == (int64_t)n->id)
            s->leader = BROKER_NO_LEADER;
        p->rotate++;
        p->attempt_deadline = 0;
        p->retry_at = now + backoff_ms(p->attempts);
        shoal_frame_free(&f);
        return;
    }
    /* A final answer to a leader-only request shows who leads now. */
    bool leader_only =
        p->is_write || (p->req->op_case == SHOAL__CLIENT_REQUEST__OP_GET && !p->req->get->stale);
    if (s && leader_only && (int)r->status != SHOAL_STATUS_BAD_REQUEST &&
        s->leader != (int64_t)n->id)
        s->leader = (int64_t)n->id;
    if (!r->shard)
        r->shard = p->shard;
    finish(b, p, f, r->status, NULL);
}

/* A map change that node `to` did not take (it answered NOT_LEADER, or it could not be
 * sent: no live connection) goes to the next guess after the back-off. */
static void map_change_retry(broker_t *b, pending_t *p, uint64_t to)
{
    if (b->meta_leader == (int64_t)to)
        b->meta_leader = BROKER_NO_LEADER;
    p->attempt_deadline = 0;
    p->last_status = SHOAL_STATUS_NOT_LEADER;
    p->retry_at = zclock_mono() + backoff_ms(p->attempts);
}

static void meta_not_found(broker_t *b, pending_t *p)
{
    char line[128];
    snprintf(line, sizeof line,
             "no node led the metadata group within the deadline (%d attempts); retry",
             p->attempts + 1);
    finish(b, p, NULL, SHOAL_STATUS_UNAVAILABLE, line);
}

/* Admin answers forwarded to a node (the broker's own polls are handled by admin.c). */
void route_admin_response(broker_t *b, bnode_t *n, Shoal__Frame *f)
{
    uint64_t rid = f->admin_resp->request_id;
    pending_t *p = zhashx_lookup(b->pending, &rid);
    if (!p || !p->admin) {
        shoal_frame_free(&f);
        return;
    }
    if ((int)f->admin_resp->status == SHOAL_STATUS_NOT_LEADER && admin_is_map_change(p->admin)) {
        /* a metadata leader the broker believed in that says it is not one: guess next time */
        if (b->meta_leader == (int64_t)n->id)
            b->meta_leader = BROKER_NO_LEADER;
        /* The node refused before proposing anything (a proposal that loses its leader is
         * answered UNAVAILABLE), so the change can go to the next guess until the deadline,
         * as a write goes to the next replica: an election takes 0.5-1 s. */
        shoal_frame_free(&f);
        if (p->sent_to != (int64_t)n->id)
            return; /* a late answer to an earlier attempt */
        map_change_retry(b, p, n->id);
        if (p->retry_at >= p->deadline - ADMIN_GIVE_UP_EARLY_MS) /* before the client gives up */
            meta_not_found(b, p);
        return;
    }
    finish(b, p, f, f->admin_resp->status, f->admin_resp->error);
}

/* Sends a map change again, to the metadata leader the broker knows now or its next guess. */
static void resend_map_change(broker_t *b, pending_t *p)
{
    uint64_t to = admin_meta_target(b);
    bnode_t *node = broker_node(b, to);
    p->retry_at = 0;
    p->attempts++;
    p->sent_to = (int64_t)to;
    p->admin->request_id = p->id;
    Shoal__Frame out = shoal_admin_frame(p->admin);
    if (node && broker_send_frame(node->dealer, &out) == 0)
        p->attempt_deadline = p->deadline;
    else
        map_change_retry(b, p, to);
}

void route_sweep(broker_t *b)
{
    int64_t now = zclock_mono();
    size_t n = 0, cap = zhashx_size(b->pending);
    if (!cap)
        return;
    pending_t **due = malloc(cap * sizeof *due);
    if (!due)
        return;
    for (pending_t *p = zhashx_first(b->pending); p; p = zhashx_next(b->pending))
        if (now >= p->deadline || (p->retry_at && now >= p->retry_at) ||
            (p->attempt_deadline && now >= p->attempt_deadline))
            due[n++] = p;
    for (size_t i = 0; i < n; i++) {
        pending_t *p = due[i];
        if (now >= p->deadline && p->admin && p->last_status == SHOAL_STATUS_NOT_LEADER) {
            meta_not_found(b, p);
        } else if (now >= p->deadline) {
            finish(b, p, NULL, SHOAL_STATUS_TIMEOUT, NULL);
        } else if (p->admin && p->retry_at && now >= p->retry_at) {
            resend_map_change(b, p);
        } else if (p->admin) {
            finish(b, p, NULL, SHOAL_STATUS_UNAVAILABLE, "node did not answer the admin request");
        } else if (p->retry_at && now >= p->retry_at) {
            send_attempt(b, p);
        } else if (slow_not_silent(b, p, now)) {
            int64_t next = now + (int64_t)b->cfg.attempt_timeout_ms;
            p->attempt_deadline = next < p->deadline ? next : p->deadline;
            p->waits++;
        } else {
            /* Silent node: suspect it as leader and move on; same id and seq. */
            bshard_t *s = broker_shard(b, p->shard);
            if (s && s->leader == p->sent_to)
                s->leader = BROKER_NO_LEADER;
            p->rotate++;
            send_attempt(b, p);
        }
    }
    free(due);
}

/* Checks key and value sizes: 0, or replies and returns the status. */
static int check_kv(broker_t *b, zframe_t *client, uint64_t rid, ProtobufCBinaryData key,
                    size_t vlen, bool need_key)
{
    if (need_key && key.len == 0) {
        route_reply_error(b, client, rid, SHOAL_STATUS_BAD_REQUEST, "key is empty");
        return SHOAL_STATUS_BAD_REQUEST;
    }
    if (key.len > SHOAL_MAX_KEY) {
        route_reply_error(b, client, rid, SHOAL_STATUS_TOO_LARGE,
                          "key of %zu bytes exceeds the %u-byte limit", key.len, SHOAL_MAX_KEY);
        return SHOAL_STATUS_TOO_LARGE;
    }
    if (vlen > SHOAL_MAX_VALUE) {
        route_reply_error(b, client, rid, SHOAL_STATUS_TOO_LARGE,
                          "value of %zu bytes exceeds the %u-byte limit", vlen, SHOAL_MAX_VALUE);
        return SHOAL_STATUS_TOO_LARGE;
    }
    return 0;
}

static uint32_t shard_of(broker_t *b, ProtobufCBinaryData key)
{
    return ring_shard_for(b->ring, key.data, key.len);
}

static gather_t *gather_new(gather_kind_t kind, zframe_t *client, uint64_t rid, Shoal__Frame *f,
                            size_t expected)
{
    gather_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->answers = calloc(expected + 1, sizeof *g->answers);
    if (!g->answers) {
        free(g);
        return NULL;
    }
    g->kind = kind;
    g->client = client;
    g->client_rid = rid;
    g->frame = f;
    g->expected = expected;
    return g;
}

static void route_scan(broker_t *b, zframe_t *client, Shoal__Frame *f, int64_t deadline)
{
    Shoal__ClientRequest *req = f->client_req;
    Shoal__ScanRequest *sc = req->scan;
    if (check_kv(b, client, req->request_id, sc->prefix, 0, false) ||
        check_kv(b, client, req->request_id, sc->start, 0, false) ||
        check_kv(b, client, req->request_id, sc->end, 0, false)) {
        zframe_destroy(&client);
        shoal_frame_free(&f);
        return;
    }
    uint32_t limit = sc->limit ? sc->limit : SCAN_DEFAULT;
    if (limit > b->cfg.max_scan)
        limit = b->cfg.max_scan;
    sc->limit = limit;
    gather_t *g = gather_new(GATHER_SCAN, client, req->request_id, f, b->n_shards);
    if (!g) {
        route_reply_error(b, client, req->request_id, SHOAL_STATUS_INTERNAL, "out of memory");
        zframe_destroy(&client);
        shoal_frame_free(&f);
        return;
    }
    g->limit = limit;
    g->n_shards = b->n_shards;
    size_t n = b->n_shards;
    g->slot_shard = calloc(n ? n : 1, sizeof *g->slot_shard);
    pending_t *kids[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        if (g->slot_shard)
            g->slot_shard[i] = b->shards[i].id;
        kids[i] = pending_new(b, b->shards[i].id, deadline);
        kids[i]->req = req;
        kids[i]->gather = g;
        kids[i]->slot = i;
    }
    for (size_t i = 0; i < n; i++)
        send_attempt(b, kids[i]);
}

static void route_batch(broker_t *b, zframe_t *client, Shoal__Frame *f, int64_t deadline)
{
    Shoal__ClientRequest *req = f->client_req;
    Shoal__BatchRequest *br = req->batch;
    uint64_t rid = req->request_id;
    if (br->n_ops == 0 || br->n_ops > SHOAL_MAX_BATCH) {
        route_reply_error(b, client, rid, SHOAL_STATUS_BAD_REQUEST,
                          "a batch holds 1 to %u operations, not %zu", SHOAL_MAX_BATCH, br->n_ops);
        goto drop;
    }
    uint32_t *shard = calloc(br->n_ops, sizeof *shard);
    if (!shard)
        goto drop;
    for (size_t i = 0; i < br->n_ops; i++) {
        Shoal__BatchOp *op = br->ops[i];
        ProtobufCBinaryData key = op->op_case == SHOAL__BATCH_OP__OP_PUT ? op->put->key
                                  : op->op_case == SHOAL__BATCH_OP__OP_DEL
                                      ? op->del->key
                                      : (ProtobufCBinaryData){0, NULL};
        size_t vlen = op->op_case == SHOAL__BATCH_OP__OP_PUT ? op->put->value.len : 0;
        if (op->op_case == SHOAL__BATCH_OP__OP__NOT_SET) {
            route_reply_error(b, client, rid, SHOAL_STATUS_BAD_REQUEST, "batch op %zu is empty", i);
            free(shard);
            goto drop;
        }
        if (check_kv(b, client, rid, key, vlen, true)) {
            free(shard);
            goto drop;
        }
        shard[i] = shard_of(b, key);
    }
    /* distinct shards, in order of first appearance, and the bytes of each one's part */
    uint32_t *ids = calloc(br->n_ops, sizeof *ids);
    size_t *bytes = calloc(br->n_ops, sizeof *bytes);
    size_t n_ids = 0;
    if (!ids || !bytes) {
        free(ids);
        free(bytes);
        free(shard);
        route_reply_error(b, client, rid, SHOAL_STATUS_INTERNAL, "out of memory");
        goto drop;
    }
    for (size_t i = 0; i < br->n_ops; i++) {
        size_t j = 0;
        while (j < n_ids && ids[j] != shard[i])
            j++;
        if (j == n_ids)
            ids[n_ids++] = shard[i];
        bytes[j] += shoal_batch_op_bytes(br->ops[i]);
    }
    /* Each part is one Raft entry, which its node refuses past SHOAL_NODE_MAX_BATCH_BYTES.
     * A batch is not atomic across shards, so one part over it refuses the whole batch
     * here, before any part is sent: TOO_LARGE means that nothing applied. */
    for (size_t k = 0; k < n_ids; k++) {
        if (bytes[k] > SHOAL_NODE_MAX_BATCH_BYTES) {
            route_reply_error(b, client, rid, SHOAL_STATUS_TOO_LARGE, SHOAL_ERR_BATCH_BYTES, ids[k],
                              bytes[k], SHOAL_NODE_MAX_BATCH_BYTES);
            free(ids);
            free(bytes);
            free(shard);
            goto drop;
        }
    }
    free(bytes);
    char why[192];
    if (reroute_batch_waits(b, ids, n_ids, why, sizeof why)) {
        free(ids);
        free(shard);
        route_reply_error(b, client, rid, SHOAL_STATUS_UNAVAILABLE, "%s", why);
        goto drop;
    }
    gather_t *g = gather_new(GATHER_BATCH, client, rid, f, n_ids);
    if (!g) {
        free(ids);
        free(shard);
        route_reply_error(b, client, rid, SHOAL_STATUS_INTERNAL, "out of memory");
        goto drop;
    }
    pending_t **kids = calloc(n_ids, sizeof *kids);
    for (size_t k = 0; kids && k < n_ids; k++) {
        pending_t *p = kids[k] = pending_new(b, ids[k], deadline);
        p->gather = g;
        p->slot = k;
        p->is_write = true;
        p->sub_ops = calloc(br->n_ops, sizeof *p->sub_ops);
        shoal__client_request__init(&p->sub);
        shoal__batch_request__init(&p->sub_batch);
        p->sub.client_id = req->client_id;
        p->sub.seq = req->seq;
        p->sub.op_case = SHOAL__CLIENT_REQUEST__OP_BATCH;
        p->sub.batch = &p->sub_batch;
        p->sub_batch.ops = p->sub_ops;
        for (size_t i = 0; p->sub_ops && i < br->n_ops; i++)
            if (shard[i] == ids[k])
                p->sub_ops[p->sub_batch.n_ops++] = br->ops[i];
        p->req = &p->sub;
    }
    free(ids);
    free(shard);
    for (size_t k = 0; kids && k < n_ids; k++)
        send_attempt(b, kids[k]);
    free(kids);
    return;
drop:
    zframe_destroy(&client);
    shoal_frame_free(&f);
}

static void route_single(broker_t *b, zframe_t *client, Shoal__Frame *f, int64_t deadline)
{
    Shoal__ClientRequest *req = f->client_req;
    uint64_t rid = req->request_id;
    ProtobufCBinaryData key = {0, NULL};
    size_t vlen = 0;
    bool write = true;
    uint32_t shard;
    switch (req->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_GET:
        key = req->get->key;
        write = false;
        break;
    case SHOAL__CLIENT_REQUEST__OP_PUT:
        key = req->put->key;
        vlen = req->put->value.len;
        break;
    case SHOAL__CLIENT_REQUEST__OP_DEL: key = req->del->key; break;
    case SHOAL__CLIENT_REQUEST__OP_CAS:
        key = req->cas->key;
        vlen = req->cas->value.len > req->cas->expected.len ? req->cas->value.len
                                                            : req->cas->expected.len;
        break;
    default: write = false;
    }
    if (req->op_case == SHOAL__CLIENT_REQUEST__OP_CHANGES) {
        shard = req->changes->shard;
        if (!broker_shard(b, shard)) {
            route_reply_error(b, client, rid, SHOAL_STATUS_BAD_REQUEST,
                              "no shard %u (the map has %zu shards)", shard, b->n_shards);
            goto drop;
        }
    } else {
        if (check_kv(b, client, rid, key, vlen, true))
            goto drop;
        shard = shard_of(b, key);
    }
    pending_t *p = pending_new(b, shard, deadline);
    if (!p) {
        route_reply_error(b, client, rid, SHOAL_STATUS_INTERNAL, "out of memory");
        goto drop;
    }
    p->client = client;
    p->client_rid = rid;
    p->frame = f;
    p->req = req;
    p->is_write = write;
    send_attempt(b, p);
    return;
drop:
    zframe_destroy(&client);
    shoal_frame_free(&f);
}

void route_client_request(broker_t *b, zframe_t *client, Shoal__Frame *f)
{
    Shoal__ClientRequest *req = f->client_req;
    b->stats_requests++;
    uint32_t t = req->timeout_ms ? req->timeout_ms : b->cfg.request_timeout_ms;
    if (t > 600000)
        t = 600000;
    int64_t deadline = zclock_mono() + t;
    if (zhashx_size(b->pending) >= BROKER_MAX_PENDING) {
        /* Shed load instead of growing without bound; clients back off and retry. */
        route_reply_error(b, client, req->request_id, SHOAL_STATUS_UNAVAILABLE,
                          "broker overloaded: %d requests in flight", BROKER_MAX_PENDING);
        zframe_destroy(&client);
        shoal_frame_free(&f);
        return;
    }
    if (b->n_shards == 0) {
        route_reply_error(b, client, req->request_id, SHOAL_STATUS_UNAVAILABLE,
                          "the broker has no shard map yet");
        zframe_destroy(&client);
        shoal_frame_free(&f);
        return;
    }
    switch (req->op_case) {
    case SHOAL__CLIENT_REQUEST__OP_SCAN: route_scan(b, client, f, deadline); break;
    case SHOAL__CLIENT_REQUEST__OP_BATCH: route_batch(b, client, f, deadline); break;
    case SHOAL__CLIENT_REQUEST__OP_GET:
    case SHOAL__CLIENT_REQUEST__OP_PUT:
    case SHOAL__CLIENT_REQUEST__OP_DEL:
    case SHOAL__CLIENT_REQUEST__OP_CAS:
    case SHOAL__CLIENT_REQUEST__OP_CHANGES: route_single(b, client, f, deadline); break;
    default:
        route_reply_error(b, client, req->request_id, SHOAL_STATUS_BAD_REQUEST,
                          "request has no operation");
        zframe_destroy(&client);
        shoal_frame_free(&f);
    }
}

bool route_admin_in_flight(broker_t *b, zframe_t *client, uint64_t rid)
{
    for (pending_t *p = zhashx_first(b->pending); p; p = zhashx_next(b->pending))
        if (p->admin && p->gather && p->gather->client_rid == rid &&
            zframe_eq(p->gather->client, client))
            return true;
    return false;
}

/* Forwards an admin request (f taken) to the given nodes; one answer per node, merged. */
void route_forward_admin(broker_t *b, zframe_t *client, Shoal__Frame *f, const uint64_t *nodes,
                         size_t n)
{
    uint64_t rid = f->admin_req->request_id;
    gather_t *g = n ? gather_new(GATHER_ADMIN, client, rid, f, n) : NULL;
    if (!g) {
        Shoal__AdminResponse r = SHOAL__ADMIN_RESPONSE__INIT;
        r.request_id = rid;
        r.status = SHOAL__STATUS__STATUS_UNAVAILABLE;
        r.error = (char *)"no node to send the admin request to";
        Shoal__Frame out = SHOAL__FRAME__INIT;
        out.version = SHOAL_WIRE_VERSION;
        out.body_case = SHOAL__FRAME__BODY_ADMIN_RESP;
        out.admin_resp = &r;
        broker_reply(b, client, &out);
        zframe_destroy(&client);
        shoal_frame_free(&f);
        return;
    }
    int64_t deadline = zclock_mono() + b->cfg.request_timeout_ms;
    pending_t *kids[n];
    for (size_t i = 0; i < n; i++) {
        pending_t *p = kids[i] = pending_new(b, 0, deadline);
        p->admin = f->admin_req;
        p->gather = g;
        p->slot = i;
        p->sent_to = (int64_t)nodes[i];
    }
    for (size_t i = 0; i < n; i++) {
        pending_t *p = kids[i];
        bnode_t *node = broker_node(b, nodes[i]);
        f->admin_req->request_id = p->id;
        Shoal__Frame out = shoal_admin_frame(f->admin_req);
        if (!node || broker_send_frame(node->dealer, &out) != 0) {
            if (admin_is_map_change(p->admin)) { /* a dead metadata leader: the next guess */
                map_change_retry(b, p, nodes[i]);
                continue;
            }
            char line[128];
            snprintf(line, sizeof line, "node %" PRIu64 " is not reachable", nodes[i]);
            finish(b, p, NULL, SHOAL_STATUS_UNAVAILABLE, line);
        } else
            p->attempt_deadline = deadline;
    }
}
