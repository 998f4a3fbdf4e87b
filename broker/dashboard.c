/* dashboard.c - the admin service's web dashboard: a ZMQ_STREAM socket speaking just
 * enough HTTP/1.1 for a browser (one GET per connection, then close).
 *
 *   GET /             a self-contained HTML page that polls /status.json every second
 *   GET /status.json  the cluster state the broker keeps: the object `shoalctl status --json`
 *                     prints (nodes, shards, the metadata group, moves, recent events)
 *   GET /metrics      the same state in Prometheus' text format, for a scraper
 *   anything else     404
 *
 * No HTTP library: the socket delivers [peer id][bytes] and the request line is all we
 * read, so the parser is one sscanf; requests larger than one frame or with bodies are not
 * expected from a browser's GET. The page and the JSON are built from the same state as
 * `shoalctl status`, on the broker's own thread, so nothing here needs a lock. */
#include "broker/broker_internal.h"
#include "broker/shoal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *page =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shoal</title><style>"
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{padding:.25em .8em;text-align:right;"
    "border-bottom:1px solid #ddd}th{background:#f4f4f4}td.l,th.l{text-align:left}"
    ".down{color:#b00;font-weight:bold}.up{color:#070}#ev{font:12px monospace;white-space:pre}"
    "</style></head><body><h1>Shoal cluster</h1><div id=\"sum\">loading...</div>"
    "<h2>Nodes</h2><table id=\"nodes\"></table><h2>Shards</h2><table id=\"shards\"></table>"
    "<h2>Recent events</h2><div id=\"ev\"></div><script>"
    "function h(t){return String(t).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]))}"
    "function row(c,th){return '<tr>'+c.map((x,i)=>'<'+(th?'th':'td')+(i<2?' class=l':'')+'>'+x+"
    "'</'+(th?'th':'td')+'>').join('')+'</tr>'}"
    "function mib(b){return b?(b/1048576).toFixed(1)+' MiB':'-'}"
    "async function tick(){try{const s=await (await fetch('status.json')).json();"
    "let up=s.nodes.filter(n=>n.up).length,led=s.shards.filter(x=>x.leader!=null).length;"
    "document.getElementById('sum').textContent='map v'+s.map_version+' | nodes '+up+'/'+"
    "s.nodes.length+' up | shards '+led+'/'+s.shards.length+' with a leader | '+"
    "new Date().toLocaleTimeString();"
    "document.getElementById('nodes').innerHTML=row(['node','endpoint','state','replicas',"
    "'rss','disk'],1)+s.nodes.map(n=>row([n.id,h(n.endpoint),'<span class='+(n.up?'up>up':"
    "'down>DOWN')+'</span>',n.replicas,mib(n.rss_bytes),mib(n.disk_bytes)])).join('');"
    "document.getElementById('shards').innerHTML=row(['shard','leader','term','commit',"
    "'applied','max lag','size','replicas node:match'],1)+s.shards.concat(s.meta?[s.meta]:[])"
    ".map(x=>row([x.id==4294967295?'meta':x.id,x.leader==null?"
    "'<span class=down>none</span>':x.leader,x.term,x.commit,x.applied,x.max_lag,"
    "mib(x.size_bytes),x.replicas.map(r=>r.node+':'+r.match).join(' ')+(x.leaving.length?"
    "'  leaving: '+x.leaving.join(' '):'')])).join('');"
    "document.getElementById('ev').textContent=s.events.slice(-30).reverse().map(e=>"
    "new Date(e.ts_us/1000).toLocaleTimeString()+'  node '+e.node+'  '+(e.shard==4294967295?"
    "'meta':'shard '+e.shard)+'  '+e.type+'  term '+e.term+'  '+e.detail).join('\\n')}"
    "catch(e){document.getElementById('sum').textContent='broker unreachable: '+e}}"
    "tick();setInterval(tick,1000)</script></body></html>";

/* A growing string buffer for the JSON answer. */
typedef struct {
    char *buf;
    size_t len, cap;
} sbuf_t;

static void put(sbuf_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf_t *s, const char *fmt, ...)
{
    for (int tries = 0; tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (s->len + (size_t)n < s->cap) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = (s->cap + (size_t)n) * 2;
        char *nb = realloc(s->buf, cap);
        if (!nb)
            return;
        s->buf = nb;
        s->cap = cap;
    }
}

static void put_str(sbuf_t *s, const char *str)
{
    put(s, "\"");
    for (const unsigned char *p = (const unsigned char *)(str ? str : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            put(s, "\\%c", *p);
        else if (*p == '\n')
            put(s, "\\n");
        else if (*p == '\t')
            put(s, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            put(s, "\\u%04x", *p);
        else
            put(s, "%c", *p);
    }
    put(s, "\"");
}

/* A leader id, or null when none is known (as `shoalctl status --json` and `events --json`
 * print it). */
static void put_leader(sbuf_t *s, uint64_t leader)
{
    if (leader == UINT64_MAX)
        put(s, "null");
    else
        put(s, "%" PRIu64, leader);
}

/* One shard object: the keys of `shoalctl status --json`'s (tools/cmd_admin.c) in its order;
 * the metadata group's ("meta") has the same. The numbers are those the broker's `status`
 * answer carries (admin.c, shard_row) and max_lag the one libshoal derives from them. */
static bool node_up(const bnode_t *n, int64_t now)
{
    return n->last_seen && now - n->last_seen < BROKER_DOWN_MS;
}

/* A shard's commit index as shown (never behind its applied one) and the largest lag of a
 * replica behind it (the leader's own match is the commit). */
static uint64_t shard_commit(const bshard_t *x, int64_t leader, uint64_t *max_lag)
{
    uint64_t commit = x->commit > x->apply ? x->commit : x->apply, lag = 0;
    for (size_t k = 0; k < x->n_replicas; k++) {
        uint64_t m = leader == (int64_t)x->replicas[k] ? commit : x->match[k];
        if (commit > m && commit - m > lag)
            lag = commit - m;
    }
    *max_lag = lag;
    return commit;
}

static void put_shard(sbuf_t *s, const char *sep, const bshard_t *x, int64_t leader)
{
    uint64_t lag, commit = shard_commit(x, leader, &lag);
    put(s, "%s{\"id\":%u,\"leader\":", sep, x->id);
    put_leader(s, leader == BROKER_NO_LEADER ? UINT64_MAX : (uint64_t)leader);
    put(s,
        ",\"term\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"applied\":%" PRIu64 ",\"max_lag\":%" PRIu64
        ",\"size_bytes\":%" PRIu64 ",\"replicas\":[",
        x->term, commit, x->apply, lag, x->size);
    for (size_t k = 0; k < x->n_replicas; k++)
        put(s, "%s{\"node\":%" PRIu64 ",\"match\":%" PRIu64 "}", k ? "," : "", x->replicas[k],
            leader == (int64_t)x->replicas[k] ? commit : x->match[k]);
    put(s, "],\"leaving\":[");
    for (size_t k = 0; k < x->n_leaving; k++)
        put(s, "%s%" PRIu64, k ? "," : "", x->leaving[k]);
    put(s, "]}");
}

/* The broker's cluster state as JSON: the object `shoalctl status --json` prints, key for
 * key (nodes, shards, the metadata group as "meta", recent events), from the same state the
 * broker's `status` admin answer is built from. */
char *dashboard_status_json(broker_t *b, size_t *len)
{
    sbuf_t s = {malloc(4096), 0, 4096};
    if (!s.buf)
        return NULL;
    int64_t now = zclock_mono();
    put(&s, "{\"map_version\":%" PRIu64 ",\"cluster_id\":", b->map_version);
    if (b->cluster_id)
        put(&s, "\"%016" PRIx64 "\"", b->cluster_id);
    else
        put(&s, "null");
    put(&s, ",\"nodes\":[");
    for (size_t i = 0, shown = 0; i < b->n_nodes; i++) {
        bnode_t *n = &b->nodes[i];
        if (n->removed)
            continue;
        put(&s, "%s{\"id\":%" PRIu64 ",\"endpoint\":", shown++ ? "," : "", n->id);
        put_str(&s, n->endpoint);
        put(&s,
            ",\"up\":%s,\"replicas\":%u,\"rss_bytes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
            ",\"follower_reads\":%" PRIu64 "}",
            node_up(n, now) ? "true" : "false", n->replicas, n->rss_bytes, n->bytes_on_disk,
            n->follower_reads);
    }
    put(&s, "],\"shards\":[");
    for (size_t i = 0; i < b->n_shards; i++)
        put_shard(&s, i ? "," : "", &b->shards[i], b->shards[i].leader);
    put(&s, "],\"meta\":");
    put_shard(&s, "", &b->meta, b->meta_leader);
    put(&s, ",\"events\":[");
    for (size_t i = 0; i < b->n_recent; i++) {
        Shoal__RaftEvent *e = b->recent[(b->recent_head + i) % BROKER_RECENT];
        put(&s,
            "%s{\"node\":%" PRIu64 ",\"shard\":%u,\"type\":\"%s\",\"term\":%" PRIu64 ",\"leader\":",
            i ? "," : "", e->node_id, e->shard, shoal_event_type_name(e->type), e->term);
        put_leader(&s, e->leader_id);
        put(&s, ",\"ts_us\":%" PRIu64 ",\"detail\":", e->timestamp_us);
        put_str(&s, e->detail);
        put(&s, "}");
    }
    put(&s, "]}\n");
    *len = s.len;
    return s.buf;
}

/* One metric family's header lines. */
static void put_family(sbuf_t *s, const char *name, const char *type, const char *help)
{
    put(s, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The shard rows of one metric: every shard, then the metadata group as shard="meta". */
static void put_shard_metric(sbuf_t *s, broker_t *b, const char *name, int what)
{
    for (size_t i = 0; i <= b->n_shards; i++) {
        const bshard_t *x = i < b->n_shards ? &b->shards[i] : &b->meta;
        int64_t leader = i < b->n_shards ? x->leader : b->meta_leader;
        uint64_t lag, commit = shard_commit(x, leader, &lag);
        uint64_t v[] = {leader != BROKER_NO_LEADER, x->term, commit, x->apply, lag, x->size};
        char id[16] = "meta";
        if (i < b->n_shards)
            snprintf(id, sizeof id, "%u", x->id);
        put(s, "%s{shard=\"%s\"} %" PRIu64 "\n", name, id, v[what]);
    }
}

/* The cluster as the broker sees it, in Prometheus' text format (version 0.0.4): what
 * `status` shows, as gauges and counters a scraper can alert on (a shard without a leader,
 * a replica lagging, a node down). */
char *dashboard_metrics(broker_t *b, size_t *len)
{
    sbuf_t s = {malloc(4096), 0, 4096};
    if (!s.buf)
        return NULL;
    static const struct {
        const char *name, *type, *help;
    } shard_families[] = {
        {"shoal_shard_has_leader", "gauge", "1 when the group has a known leader"},
        {"shoal_shard_term", "gauge", "Raft term of the group's leader"},
        {"shoal_shard_commit_index", "gauge", "Raft commit index"},
        {"shoal_shard_applied_index", "gauge", "highest index applied, as the leader reports"},
        {"shoal_shard_max_lag_entries", "gauge", "entries the slowest replica is behind"},
        {"shoal_shard_size_bytes", "gauge", "bytes of the group's engine on its leader"},
    };
    put_family(&s, "shoal_map_version", "gauge", "version of the shard map the broker holds");
    put(&s, "shoal_map_version %" PRIu64 "\n", b->map_version);
    int64_t now = zclock_mono();
    static const char *node_families[][3] = {
        {"shoal_node_up", "gauge", "1 when the broker heard from the node within 3 s"},
        {"shoal_node_replicas", "gauge", "replicas the node hosts"},
        {"shoal_node_rss_bytes", "gauge", "resident memory of the node process"},
        {"shoal_node_disk_bytes", "gauge", "bytes under the node's data_dir"},
        {"shoal_node_follower_reads_total", "counter", "linearizable reads served as a follower"},
    };
    for (int f = 0; f < 5; f++) {
        put_family(&s, node_families[f][0], node_families[f][1], node_families[f][2]);
        for (size_t i = 0; i < b->n_nodes; i++) {
            const bnode_t *n = &b->nodes[i];
            uint64_t v[] = {node_up(n, now), n->replicas, n->rss_bytes, n->bytes_on_disk,
                            n->follower_reads};
            if (!n->removed)
                put(&s, "%s{node=\"%" PRIu64 "\"} %" PRIu64 "\n", node_families[f][0], n->id, v[f]);
        }
    }
    for (int f = 0; f < 6; f++) {
        put_family(&s, shard_families[f].name, shard_families[f].type, shard_families[f].help);
        put_shard_metric(&s, b, shard_families[f].name, f);
    }
    put_family(&s, "shoal_broker_requests_total", "counter", "client requests received");
    put(&s, "shoal_broker_requests_total %" PRIu64 "\n", b->stats_requests);
    put_family(&s, "shoal_broker_retries_total", "counter", "requests sent again to a node");
    put(&s, "shoal_broker_retries_total %" PRIu64 "\n", b->stats_retries);
    put_family(&s, "shoal_broker_changes_total", "counter", "change events republished");
    put(&s, "shoal_broker_changes_total %" PRIu64 "\n", b->stats_changes);
    put_family(&s, "shoal_broker_requests_in_flight", "gauge", "requests waiting on nodes");
    put(&s, "shoal_broker_requests_in_flight %zu\n", zhashx_size(b->pending));
    *len = s.len;
    return s.buf;
}

/* One STREAM message [peer][bytes]. The peer frame fails when the peer is gone already
 * (EHOSTUNREACH: a client that closed right after its request); then the bytes must not
 * be sent: the socket would take them for the next message's peer frame, and from then on
 * every answer would be one frame out of step and lost. */
static void stream_send(void *s, zframe_t *peer, const void *data, size_t len)
{
    if (zmq_send(s, zframe_data(peer), zframe_size(peer), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send(s, data, len, ZMQ_DONTWAIT);
}

static void respond(zsock_t *http, zframe_t *peer, const char *status, const char *type,
                    const char *body, size_t len)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      status, type, len);
    /* A STREAM message is exactly [peer][bytes]: head and body go in one frame. */
    char *all = malloc((size_t)hl + len);
    if (!all)
        return;
    memcpy(all, head, (size_t)hl);
    if (len)
        memcpy(all + hl, body, len);
    void *s = zsock_resolve(http);
    stream_send(s, peer, all, (size_t)hl + len);
    free(all);
    stream_send(s, peer, "", 0); /* [peer][empty] closes the connection */
}

/* Answers with a body built now from the broker's state (500 when out of memory). */
static void respond_built(broker_t *b, zframe_t *peer, char *(*build)(broker_t *, size_t *),
                          const char *type)
{
    size_t len = 0;
    char *body = build(b, &len);
    respond(b->http, peer, body ? "200 OK" : "500 Internal Server Error", type, body ? body : "",
            body ? len : 0);
    free(body);
}

/* One message from the STREAM socket: a connect/close notice (empty) or request bytes. */
int dashboard_drain(broker_t *b)
{
    int n = 0;
    while (n < 256) {
        zmsg_t *m = zmsg_recv_nowait(b->http);
        if (!m)
            break;
        n++;
        zframe_t *peer = zmsg_first(m), *data = zmsg_next(m);
        if (peer && data && zframe_size(data) > 0) {
            char line[256] = "", method[16] = "", path[200] = "";
            size_t l = zframe_size(data) < sizeof line - 1 ? zframe_size(data) : sizeof line - 1;
            memcpy(line, zframe_data(data), l);
            line[l] = 0;
            if (sscanf(line, "%15s %199s", method, path) == 2 && !strcmp(method, "GET")) {
                if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
                    respond(b->http, peer, "200 OK", "text/html; charset=utf-8", page,
                            strlen(page));
                } else if (!strcmp(path, "/status.json")) {
                    respond_built(b, peer, dashboard_status_json, "application/json");
                } else if (!strcmp(path, "/metrics")) {
                    respond_built(b, peer, dashboard_metrics, "text/plain; version=0.0.4");
                } else
                    respond(b->http, peer, "404 Not Found", "text/plain", "not found\n", 10);
            } else
                respond(b->http, peer, "400 Bad Request", "text/plain", "GET only\n", 9);
        }
        zmsg_destroy(&m);
    }
    return n;
}
