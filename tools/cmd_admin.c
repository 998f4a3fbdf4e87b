/* cmd_admin.c - shoalctl's admin commands: status (table or JSON), top (live view),
 * events (recent Raft events, then a live tail from the broker's XPUB), and the admin
 * operations (transfer-leader, add-node, remove-node, move-replica, add-shard, compact,
 * snapshot), each one request to the broker's admin service. */
#include "tools/shoalctl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "engine/endpoint.h"
#include "proto/events.pb-c.h"

enum { OPT_COUNT = OPT_FIRST_CMD, OPT_NO_FOLLOW, OPT_INTERVAL };

typedef struct {
    uint64_t count;
    uint64_t interval_ms;
    bool no_follow;
} view_opts_t;

static int view_opt(ctl_t *c, int opt, void *ctx)
{
    view_opts_t *o = ctx;
    if (opt == OPT_COUNT && ctl_parse_u64(c, "--count", optarg, 1, UINT64_MAX - 1, &o->count))
        return EXIT_USAGE;
    if (opt == OPT_INTERVAL && ctl_parse_u64(c, "--interval", optarg, 50, 3600000, &o->interval_ms))
        return EXIT_USAGE;
    if (opt == OPT_NO_FOLLOW)
        o->no_follow = true;
    return -1;
}

static int parse_view(ctl_t *c, int argc, char **argv, view_opts_t *o)
{
    static const struct option opts[] = {CTL_COMMON_OPTS,
                                         {"count", required_argument, 0, OPT_COUNT},
                                         {"interval", required_argument, 0, OPT_INTERVAL},
                                         {"no-follow", no_argument, 0, OPT_NO_FOLLOW},
                                         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int rc = opt >= OPT_FIRST_CMD ? view_opt(c, opt, o) : ctl_common(c, opt, argc, argv);
        if (rc >= 0)
            return rc;
    }
    return ctl_want_args(c, argc - optind, 0, 0);
}

static void print_event_line(FILE *f, const shoal_event_t *e)
{
    time_t secs = (time_t)(e->timestamp_us / 1000000);
    struct tm tm;
    char ts[32] = "-";
    if (secs && localtime_r(&secs, &tm))
        strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    fprintf(f, "%s.%03u  node %-3" PRIu64 " ", ts, (unsigned)(e->timestamp_us / 1000 % 1000),
            e->node_id);
    if (e->shard == UINT32_MAX)
        fprintf(f, "meta      ");
    else
        fprintf(f, "shard %-4u", e->shard);
    fprintf(f, "%-18s term %-4" PRIu64, e->type_name, e->term);
    if ((e->type == SHOAL__RAFT_EVENT_TYPE__EV_LEADER_ELECTED ||
         e->type == SHOAL__RAFT_EVENT_TYPE__EV_LEADER_CHANGED) &&
        e->leader_id == UINT64_MAX)
        fprintf(f, " leader none");
    else if (e->type == SHOAL__RAFT_EVENT_TYPE__EV_LEADER_ELECTED ||
             e->type == SHOAL__RAFT_EVENT_TYPE__EV_LEADER_CHANGED)
        fprintf(f, " leader %" PRIu64, e->leader_id);
    if (e->detail[0])
        fprintf(f, "  %s", e->detail);
    fputc('\n', f);
}

/* One event as a JSON object, the same in `status --json` and `events --json`; a leader
 * not known is null. */
static void print_event_json(const char *sep, const shoal_event_t *e)
{
    printf("%s{\"node\":%" PRIu64 ",\"shard\":%u,\"type\":\"%s\",\"term\":%" PRIu64 ",\"leader\":",
           sep, e->node_id, e->shard, e->type_name, e->term);
    if (e->leader_id == UINT64_MAX)
        printf("null");
    else
        printf("%" PRIu64, e->leader_id);
    printf(",\"ts_us\":%" PRIu64 ",\"detail\":", e->timestamp_us);
    ctl_json_str(stdout, e->detail, strlen(e->detail));
    printf("}");
}

/* One shard object of `status --json`; the metadata group's ("meta") has the same keys. A
 * leader not known is null, as in an event. broker/dashboard.c writes the same object for
 * the web dashboard's status.json: a change here is one there too. */
static void print_shard_json(const char *sep, const shoal_shard_status_t *s)
{
    printf("%s{\"id\":%u,\"leader\":", sep, s->id);
    if (s->leader < 0)
        printf("null");
    else
        printf("%" PRId64, s->leader);
    printf(",\"term\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"applied\":%" PRIu64
           ",\"max_lag\":%" PRIu64 ",\"size_bytes\":%" PRIu64 ",\"replicas\":[",
           s->term, s->commit_index, s->apply_index, s->max_lag, s->size_bytes);
    for (size_t k = 0; k < s->n_replicas; k++)
        printf("%s{\"node\":%" PRIu64 ",\"match\":%" PRIu64 "}", k ? "," : "", s->replicas[k],
               s->match_index[k]);
    printf("],\"leaving\":[");
    for (size_t k = 0; k < s->n_leaving; k++)
        printf("%s%" PRIu64, k ? "," : "", s->leaving[k]);
    printf("]}");
}

/* cluster_id: the broker's (shoal_cluster_id), 0 when it knows none (printed null) */
static void print_json(const shoal_cluster_t *cl, uint64_t cluster_id)
{
    printf("{\"map_version\":%" PRIu64 ",\"cluster_id\":", cl->map_version);
    if (cluster_id)
        printf("\"%016" PRIx64 "\"", cluster_id);
    else
        printf("null");
    printf(",\"nodes\":[");
    for (size_t i = 0; i < cl->n_nodes; i++) {
        const shoal_node_status_t *n = &cl->nodes[i];
        printf("%s{\"id\":%" PRIu64 ",\"endpoint\":", i ? "," : "", n->id);
        ctl_json_str(stdout, n->endpoint, strlen(n->endpoint));
        printf(",\"up\":%s,\"replicas\":%u,\"rss_bytes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
               ",\"follower_reads\":%" PRIu64 "}",
               n->up ? "true" : "false", n->replicas, n->rss_bytes, n->bytes_on_disk,
               n->follower_reads);
    }
    printf("],\"shards\":[");
    for (size_t i = 0; i < cl->n_shards; i++)
        print_shard_json(i ? "," : "", &cl->shards[i]);
    printf("],\"meta\":");
    if (cl->has_meta)
        print_shard_json("", &cl->meta);
    else
        printf("null");
    printf(",\"events\":[");
    for (size_t i = 0; i < cl->n_events; i++)
        print_event_json(i ? "," : "", &cl->events[i]);
    printf("]}\n");
}

/* One row of the shard table; name replaces the id (the metadata group's "meta"). */
static void print_shard_row(const char *name, const shoal_shard_status_t *s)
{
    char leader[24], id[16], a[32];
    if (s->leader >= 0)
        snprintf(leader, sizeof leader, "%" PRId64, s->leader);
    else
        snprintf(leader, sizeof leader, "none");
    if (name)
        snprintf(id, sizeof id, "%s", name);
    else
        snprintf(id, sizeof id, "%u", s->id);
    printf("%-6s %-7s %-6" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %10s  ", id, leader,
           s->term, s->commit_index, s->apply_index, s->max_lag,
           s->size_bytes ? ctl_size(s->size_bytes, a, sizeof a) : "-");
    for (size_t k = 0; k < s->n_replicas; k++)
        printf("%s%" PRIu64 ":%" PRIu64, k ? " " : "", s->replicas[k], s->match_index[k]);
    for (size_t k = 0; k < s->n_leaving; k++) /* a move in progress */
        printf("%s%" PRIu64, k ? " " : "  leaving: ", s->leaving[k]);
    printf("\n");
}

static void print_table(const shoal_cluster_t *cl, size_t max_events)
{
    size_t up = 0, led = 0;
    for (size_t i = 0; i < cl->n_nodes; i++)
        up += cl->nodes[i].up;
    for (size_t i = 0; i < cl->n_shards; i++)
        led += cl->shards[i].leader >= 0;
    printf("shard map v%" PRIu64 " | nodes %zu/%zu up | shards %zu/%zu with a leader\n\n",
           cl->map_version, up, cl->n_nodes, led, cl->n_shards);
    printf("%-5s %-5s %-26s %8s %10s %10s\n", "NODE", "STATE", "ENDPOINT", "REPLICAS", "RSS",
           "DISK");
    char a[32], b[32];
    for (size_t i = 0; i < cl->n_nodes; i++) {
        const shoal_node_status_t *n = &cl->nodes[i];
        printf("%-5" PRIu64 " %-5s %-26s %8u %10s %10s\n", n->id, n->up ? "up" : "DOWN",
               n->endpoint, n->replicas, n->rss_bytes ? ctl_size(n->rss_bytes, a, sizeof a) : "-",
               n->bytes_on_disk ? ctl_size(n->bytes_on_disk, b, sizeof b) : "-");
    }
    printf("\n%-6s %-7s %-6s %10s %10s %8s %10s  %s\n", "SHARD", "LEADER", "TERM", "COMMIT",
           "APPLIED", "MAX LAG", "SIZE", "REPLICAS node:match");
    for (size_t i = 0; i < cl->n_shards; i++)
        print_shard_row(NULL, &cl->shards[i]);
    if (cl->has_meta) /* the metadata group last, named as `events` names it */
        print_shard_row("meta", &cl->meta);
    if (max_events && cl->n_events) {
        printf("\nrecent events\n");
        size_t from = cl->n_events > max_events ? cl->n_events - max_events : 0;
        for (size_t i = from; i < cl->n_events; i++)
            print_event_line(stdout, &cl->events[i]);
    }
}

int cmd_status(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: status\nPrints the cluster state kept by the broker's admin service:\n"
               "nodes (up/down, endpoint, replicas, memory, disk) and shards (leader, term,\n"
               "commit and applied index, replica lag, size), the metadata group (meta) and\n"
               "moves in progress (leaving). --json: one object, a leader not known null.\n"
               "Exit 3 if the broker is down.\n";
    view_opts_t o = {0};
    int rc = parse_view(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    shoal_cluster_t cl;
    char err[256];
    int st = shoal_status(s, c->json, &cl, err, sizeof err);
    if (st == SHOAL_STATUS_OK) {
        if (c->json) {
            uint64_t id = 0;
            shoal_cluster_id(s, &id, err, sizeof err); /* null when not known or no answer */
            print_json(&cl, id);
        } else
            print_table(&cl, 0);
    }
    shoal_cluster_clear(&cl);
    shoal_destroy(&s);
    return ctl_status_exit(c, st, err);
}

int cmd_top(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: top [--interval MS] [--count N]\nLive view of the cluster state and "
               "recent events, refreshed every MS (1000);\nstops on Ctrl-C or after N "
               "refreshes.\n";
    view_opts_t o = {.interval_ms = 1000};
    int rc = parse_view(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    rc = EXIT_OK;
    for (uint64_t i = 0; !zsys_interrupted && (!o.count || i < o.count); i++) {
        shoal_cluster_t cl;
        char err[256];
        int st = shoal_status(s, true, &cl, err, sizeof err);
        if (st != SHOAL_STATUS_OK)
            fprintf(stderr, "shoalctl top: broker unavailable: %s\n", err);
        if (c->json && st == SHOAL_STATUS_OK) {
            uint64_t id = 0;
            shoal_cluster_id(s, &id, err, sizeof err);
            print_json(&cl, id); /* one object per line, one line per refresh */
        } else if (!c->json) {
            if (isatty(STDOUT_FILENO))
                printf("\033[H\033[2J"); /* home + clear */
            else if (i)
                printf("\n"); /* piped or logged: one table after the other, no escapes */
            time_t now = time(NULL);
            printf("shoalctl top  %s  %s", shoal_endpoint(s), ctime(&now));
            if (st == SHOAL_STATUS_OK)
                print_table(&cl, 12);
        }
        fflush(stdout);
        shoal_cluster_clear(&cl);
        rc = st == SHOAL_STATUS_OK ? EXIT_OK : EXIT_UNAVAIL;
        if (!o.count || i + 1 < o.count)
            zclock_sleep((int)o.interval_ms);
    }
    shoal_destroy(&s);
    return rc;
}

/* The XPUB endpoint (client port + 1) of broker i of the client's list; NULL past its end. */
static char *broker_pub(shoal_t *s, size_t i)
{
    const char *list = shoal_endpoint(s);
    for (; i && list; i--)
        if ((list = strchr(list, ',')))
            list++;
    char ep[256];
    if (!list || !shoal_first_endpoint(list, ep, sizeof ep))
        return NULL;
    const char *colon = strrchr(ep, ':');
    if (!colon)
        return NULL;
    return zsys_sprintf("%.*s:%ld", (int)(colon - ep), ep, strtol(colon + 1, NULL, 10) + 1);
}

/* A SUB on broker i's XPUB for Raft events and progress notices. */
static zsock_t *events_sub(shoal_t *s, size_t i)
{
    char *pub = broker_pub(s, i);
    zsock_t *sub = pub ? zsock_new_sub(pub, "raft/") : NULL;
    zstr_free(&pub);
    if (sub) {
        zsock_set_subscribe(sub, "progress");
        zsock_set_rcvtimeo(sub, 200);
    }
    return sub;
}

/* With several brokers, a tail that has heard nothing (not even the progress notices of
 * every second) for this long moves to the next broker; the events in between are lost. */
#define EVENTS_FAILOVER_MS 2000

/* Live tail: the broker republishes node Raft events on its XPUB under raft/. Its
 * progress notices (every second) show it is there: --timeout ms without either ends the
 * tail with exit 3. */
static int follow_events(ctl_t *c, shoal_t *s, uint64_t count, uint64_t printed)
{
    size_t cur = 0, n_brokers = 1;
    for (const char *p = shoal_endpoint(s); (p = strchr(p, ',')); p++)
        n_brokers++;
    zsock_t *sub = events_sub(s, cur);
    if (!sub)
        return EXIT_OK;
    int64_t heard = zclock_mono(), since = heard;
    while (!zsys_interrupted && (!count || printed < count)) {
        zmsg_t *m = zmsg_recv(sub);
        if (!m) {
            int64_t now = zclock_mono();
            if (n_brokers > 1 && now - since >= EVENTS_FAILOVER_MS) {
                zsock_destroy(&sub);
                cur = (cur + 1) % n_brokers;
                if (!(sub = events_sub(s, cur)))
                    return EXIT_OK;
                since = now;
            }
            if (now - heard < c->timeout_ms)
                continue;
            zsock_destroy(&sub);
            return ctl_fail(c, EXIT_UNAVAIL,
                            "nothing from the broker's event stream for %d ms "
                            "(is the broker running?)",
                            c->timeout_ms);
        }
        heard = since = zclock_mono();
        zframe_t *topic = zmsg_first(m);
        if (topic && zframe_streq(topic, "progress")) {
            zmsg_destroy(&m);
            continue;
        }
        zframe_t *body = zmsg_last(m);
        Shoal__RaftEvent *ev =
            body ? shoal__raft_event__unpack(NULL, zframe_size(body), zframe_data(body)) : NULL;
        if (ev && ev->type != SHOAL__RAFT_EVENT_TYPE__EV_COMMIT_PROGRESS &&
            ev->type != SHOAL__RAFT_EVENT_TYPE__EV_APPLY_PROGRESS) {
            shoal_event_t e = {ev->node_id,      ev->shard,
                               ev->type,         shoal_event_type_name(ev->type),
                               ev->term,         ev->leader_id,
                               ev->commit_index, ev->apply_index,
                               ev->timestamp_us, ""};
            snprintf(e.detail, sizeof e.detail, "%s", ev->detail ? ev->detail : "");
            if (c->json) {
                print_event_json("", &e);
                putchar('\n');
            } else {
                print_event_line(stdout, &e);
            }
            fflush(stdout);
            printed++;
        }
        if (ev)
            shoal__raft_event__free_unpacked(ev, NULL);
        zmsg_destroy(&m);
    }
    zsock_destroy(&sub);
    return EXIT_OK;
}

int cmd_events(ctl_t *c, int argc, char **argv)
{
    c->usage =
        "usage: events [--no-follow] [--count N]\nPrints the recent Raft events the "
        "broker kept (elections, leader changes,\nnode up/down, snapshots, ...), then "
        "follows new ones until Ctrl-C\n(or N lines in all; --no-follow --count N: the newest "
        "N); --json: one object\nper line. Exit 3 when the broker's stream is silent for "
        "--timeout ms (default\n5000); with several brokers (a list) it moves to the next one "
        "after 2 s of\nsilence.\n";
    view_opts_t o = {0};
    int rc = parse_view(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    shoal_cluster_t cl;
    char err[256];
    int st = shoal_status(s, true, &cl, err, sizeof err);
    uint64_t printed = 0;
    size_t first = 0; /* --no-follow --count N: the newest N, as tail -n */
    if (st == SHOAL_STATUS_OK && o.no_follow && o.count && cl.n_events > o.count)
        first = cl.n_events - (size_t)o.count;
    for (size_t i = first; st == SHOAL_STATUS_OK && i < cl.n_events; i++) {
        if (o.count && printed >= o.count)
            break;
        if (c->json) {
            print_event_json("", &cl.events[i]);
            putchar('\n');
        } else {
            print_event_line(stdout, &cl.events[i]);
        }
        printed++;
    }
    shoal_cluster_clear(&cl);
    fflush(stdout);
    if (st == SHOAL_STATUS_OK && !o.no_follow && (!o.count || printed < o.count))
        rc = follow_events(c, s, o.count, printed);
    else
        rc = ctl_status_exit(c, st, err);
    shoal_destroy(&s);
    return rc;
}

/* add-shard: the split is recorded when this returns; the new shard's id is printed. */
static int add_shard(ctl_t *c, shoal_t *s, int64_t source, char *err, size_t errlen)
{
    uint32_t g = 0, from = 0;
    int st = shoal_admin_add_shard(s, source, &g, &from, err, errlen);
    if (st == SHOAL_STATUS_OK && c->json)
        printf("{\"status\":\"ok\",\"shard\":%u,\"source\":%u}\n", g, from);
    else if (st == SHOAL_STATUS_OK)
        printf("%u\n", g);
    return st;
}

/* move-replica --cancel SHARD. The metadata group answers an unknown shard as one without
 * a move in progress; the shard map (the broker's status) tells them apart: a shard it does
 * not list is exit 2, "no shard N", as for transfer-leader. */
static int cancel_move(shoal_t *s, uint32_t shard, char *err, size_t errlen)
{
    if (shard != SHOAL_META_SHARD) {
        shoal_cluster_t cl;
        int st = shoal_status(s, false, &cl, err, errlen);
        if (st != SHOAL_STATUS_OK)
            return st;
        bool known = false;
        for (size_t i = 0; i < cl.n_shards && !known; i++)
            known = cl.shards[i].id == shard;
        size_t n = cl.n_shards;
        uint64_t version = cl.map_version;
        shoal_cluster_clear(&cl);
        if (!known) {
            snprintf(err, errlen,
                     "no shard %u (the shard map, version %" PRIu64 ", has %zu shards)", shard,
                     version, n);
            return SHOAL_STATUS_BAD_REQUEST;
        }
    }
    return shoal_admin_cancel_move(s, shard, err, errlen);
}

/* The admin operations: one positional grammar per command. */
int cmd_admin(ctl_t *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int lo, hi;
        const char *usage;
    } ops[] = {
        {"transfer-leader", 2, 2,
         "usage: transfer-leader SHARD NODE\nMoves the leadership of "
         "SHARD to NODE (SHARD `meta`: the metadata group).\n"},
        {"add-node", 3, 3,
         "usage: add-node ID ENDPOINT PUB_ENDPOINT\nAdds a node to the "
         "shard map (metadata group).\n"},
        {"remove-node", 1, 1, "usage: remove-node ID\nRemoves a node from the shard map.\n"},
        {"move-replica", 3, 3,
         "usage: move-replica SHARD FROM TO | move-replica --cancel SHARD\nMoves a replica of "
         "SHARD from node FROM to node TO\n(learner, catch-up, promote, "
         "remove). SHARD `meta` moves the metadata group's replica.\n--cancel undoes SHARD's "
         "unfinished move: FROM keeps (or gets back) its replica, TO deletes its.\n"},
        {"add-shard", 0, 1,
         "usage: add-shard [SOURCE_SHARD]\nAdds a shard by splitting SOURCE_SHARD (default: "
         "the shard with the most ring points):\nthe new shard takes half of its ring points "
         "and keys and keeps its replicas;\nprints the new shard's id (--json: "
         "{\"status\":\"ok\",\"shard\":G,\"source\":S}).\n"},
        {"compact", 0, 1,
         "usage: compact [SHARD]\nTriggers LSM compaction of SHARD (all "
         "shards without one).\n"},
        {"snapshot", 0, 1,
         "usage: snapshot [SHARD]\nTriggers a Raft snapshot and log "
         "truncation of SHARD (all without one).\n"},
    };
    size_t k = 0;
    while (strcmp(ops[k].name, c->cmd))
        k++;
    c->usage = ops[k].usage;
    view_opts_t o = {0};
    enum { OPT_CANCEL = OPT_FIRST_CMD + 20 }; /* past the common options (shoalctl.h) */
    static const struct option opts[] = {
        CTL_COMMON_OPTS, {"cancel", no_argument, 0, OPT_CANCEL}, {0, 0, 0, 0}};
    int opt, rc;
    bool cancel = false;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
        if (opt == OPT_CANCEL && k == 3)
            cancel = true;
        else if (opt == OPT_CANCEL)
            return ctl_fail(c, EXIT_USAGE, "--cancel is an option of move-replica only");
        else if ((rc = ctl_common(c, opt, argc, argv)) >= 0)
            return rc;
    (void)o;
    int n = argc - optind;
    if ((rc = ctl_want_args(c, n, cancel ? 1 : ops[k].lo, cancel ? 1 : ops[k].hi)) >= 0)
        return rc;
    uint64_t v[BROKER_ADMIN_MAX_REPLICAS] = {0};
    for (int i = 0; i < n && k != 1; i++)
        if ((k == 0 || k == 3) && i == 0 && !strcmp(argv[optind], "meta"))
            v[0] = SHOAL_META_SHARD; /* the metadata group's id, named as in `shoalctl events` */
        else if (ctl_parse_u64(c, "argument", argv[optind + i], 0, UINT32_MAX - 1, &v[i]))
            return EXIT_USAGE;
    if (k == 1) {
        if (ctl_parse_u64(c, "ID", argv[optind], 0, 63, &v[0]))
            return EXIT_USAGE;
        if (strncmp(argv[optind + 1], "tcp://", 6) || strncmp(argv[optind + 2], "tcp://", 6))
            return ctl_fail(c, EXIT_USAGE, "endpoints are tcp://HOST:PORT");
    }
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    char err[256] = "";
    int st;
    switch (k) {
    case 0: st = shoal_admin_transfer_leader(s, (uint32_t)v[0], v[1], err, sizeof err); break;
    case 1:
        st = shoal_admin_add_node(s, v[0], argv[optind + 1], argv[optind + 2], err, sizeof err);
        break;
    case 2: st = shoal_admin_remove_node(s, v[0], err, sizeof err); break;
    case 3:
        st = cancel ? cancel_move(s, (uint32_t)v[0], err, sizeof err)
                    : shoal_admin_move_replica(s, (uint32_t)v[0], v[1], v[2], err, sizeof err);
        break;
    case 4: st = add_shard(c, s, n ? (int64_t)v[0] : -1, err, sizeof err); break;
    case 5: st = shoal_admin_compact(s, n ? (int64_t)v[0] : -1, err, sizeof err); break;
    default: st = shoal_admin_snapshot(s, n ? (int64_t)v[0] : -1, err, sizeof err); break;
    }
    if (st == SHOAL_STATUS_OK && c->json && k != 4)
        printf("{\"status\":\"ok\"}\n");
    shoal_destroy(&s);
    return ctl_status_exit(c, st, err);
}
