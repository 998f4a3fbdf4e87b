/* cmd_data.c - shoalctl's data commands: put, get, del, cas, scan, batch, watch.
 * Output: values raw (plus a newline), scans as KEY<TAB>VALUE lines, --json as one JSON
 * object (one per line for watch, a stream). */
#include "tools/shoalctl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "engine/error.h"

/* Runs getopt over common options plus extra ones; returns -1 to go on or an exit code.
 * handle() gets each extra option. */
typedef int (*extra_fn)(ctl_t *c, int opt, void *ctx);

static int parse(ctl_t *c, int argc, char **argv, const struct option *extra, size_t n_extra,
                 extra_fn handle, void *ctx)
{
    struct option opts[32] = {CTL_COMMON_OPTS};
    size_t n = 4;
    for (size_t i = 0; i < n_extra && n < 31; i++)
        opts[n++] = extra[i];
    opts[n] = (struct option){0, 0, 0, 0};
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int rc = o >= OPT_FIRST_CMD ? handle(c, o, ctx) : ctl_common(c, o, argc, argv);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

static int no_extra(ctl_t *c, int opt, void *ctx)
{
    return -1;
}

static void print_value(const shoal_result_t *r)
{
    fwrite(r->value, 1, r->value_len, stdout);
    fputc('\n', stdout);
}

enum { OPT_VALUE_FILE = OPT_FIRST_CMD + 50 };

static int put_opt(ctl_t *c, int opt, void *ctx)
{
    (void)c;
    if (opt == OPT_VALUE_FILE)
        *(const char **)ctx = optarg;
    return -1;
}

/* The value from a file ("-": stdin), any bytes, at most SHOAL_MAX_VALUE: a command line
 * argument holds at most 128 KiB and no NUL. NULL after reporting why. */
static char *read_value(ctl_t *c, const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        ctl_fail(c, EXIT_USAGE, "cannot read --value-file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(SHOAL_MAX_VALUE + 1);
    *len = buf ? fread(buf, 1, SHOAL_MAX_VALUE + 1, f) : 0;
    bool bad = !buf || ferror(f) || *len > SHOAL_MAX_VALUE;
    if (bad && (!buf || ferror(f)))
        ctl_fail(c, EXIT_USAGE, "--value-file %s: read failed", path);
    else if (bad)
        ctl_fail(c, EXIT_USAGE, "--value-file %s: more than the value limit of %u bytes", path,
                 SHOAL_MAX_VALUE);
    if (f != stdin)
        fclose(f);
    if (bad) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

int cmd_put(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: put KEY VALUE | put KEY --value-file FILE\nWrites VALUE (or the "
               "bytes of FILE, - for stdin) under KEY; prints nothing\non success.\n";
    const char *vfile = NULL;
    static const struct option extra[] = {{"value-file", required_argument, 0, OPT_VALUE_FILE}};
    int rc = parse(c, argc, argv, extra, 1, put_opt, &vfile);
    if (rc >= 0 || (rc = ctl_want_args(c, argc - optind, vfile ? 1 : 2, vfile ? 1 : 2)) >= 0)
        return rc;
    shoal_t *s = ctl_connect(c); /* first: a dry run reads no file */
    if (!s)
        return ctl_no_client(c);
    size_t vlen = 0;
    char *v = vfile ? read_value(c, vfile, &vlen) : strdup(argv[optind + 1]);
    if (!v) {
        shoal_destroy(&s);
        return EXIT_USAGE;
    }
    vlen = vfile ? vlen : strlen(v);
    shoal_result_t r;
    const char *k = argv[optind];
    int st = shoal_put(s, k, strlen(k), v, vlen, &r);
    if (st == SHOAL_STATUS_OK && c->json)
        printf("{\"status\":\"ok\",\"shard\":%u,\"index\":%" PRIu64 "}\n", r.shard, r.index);
    rc = ctl_status_exit(c, st, r.error);
    shoal_result_clear(&r);
    shoal_destroy(&s);
    free(v);
    return rc;
}

enum {
    OPT_STALE = OPT_FIRST_CMD,
    OPT_ABSENT,
    OPT_PREFIX,
    OPT_FROM,
    OPT_TO,
    OPT_LIMIT,
    OPT_FROM_INDEX,
    OPT_COUNT,
    OPT_PUB
};

static int get_opt(ctl_t *c, int opt, void *ctx)
{
    *(bool *)ctx = true;
    return -1;
}

int cmd_get(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: get KEY [--stale]\nPrints the value and a newline (linearizable read; "
               "--stale lets a follower answer).\nExit 1 when the key is missing.\n";
    bool stale = false;
    static const struct option extra[] = {{"stale", no_argument, 0, OPT_STALE}};
    int rc = parse(c, argc, argv, extra, 1, get_opt, &stale);
    if (rc >= 0 || (rc = ctl_want_args(c, argc - optind, 1, 1)) >= 0)
        return rc;
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    shoal_result_t r;
    const char *k = argv[optind];
    int st = shoal_get(s, k, strlen(k), stale, &r);
    if (c->json && (st == SHOAL_STATUS_OK || st == SHOAL_STATUS_NOT_FOUND)) {
        printf("{");
        ctl_json_bytes(stdout, "key", k, strlen(k));
        printf(",\"found\":%s", st == SHOAL_STATUS_OK ? "true" : "false");
        if (st == SHOAL_STATUS_OK) {
            printf(",");
            ctl_json_bytes(stdout, "value", r.value, r.value_len);
        }
        printf("}\n");
    } else if (st == SHOAL_STATUS_OK)
        print_value(&r);
    if (st == SHOAL_STATUS_NOT_FOUND && !c->json)
        ctl_fail(c, EXIT_MISS, "key '%s' not found", k);
    rc = ctl_status_exit(c, st, r.error);
    shoal_result_clear(&r);
    shoal_destroy(&s);
    return rc;
}

int cmd_del(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: del KEY\nDeletes KEY (exit 0 even when it is absent).\n";
    int rc = parse(c, argc, argv, NULL, 0, no_extra, NULL);
    if (rc >= 0 || (rc = ctl_want_args(c, argc - optind, 1, 1)) >= 0)
        return rc;
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    shoal_result_t r;
    const char *k = argv[optind];
    int st = shoal_del(s, k, strlen(k), &r);
    if (st == SHOAL_STATUS_NOT_FOUND)
        st = SHOAL_STATUS_OK; /* deleting an absent key succeeds */
    if (st == SHOAL_STATUS_OK && c->json)
        printf("{\"status\":\"ok\",\"shard\":%u,\"index\":%" PRIu64 "}\n", r.shard, r.index);
    rc = ctl_status_exit(c, st, r.error);
    shoal_result_clear(&r);
    shoal_destroy(&s);
    return rc;
}

int cmd_cas(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: cas KEY EXPECTED NEW | cas KEY --absent NEW\n"
               "Sets KEY to NEW if its value is EXPECTED (--absent: only if KEY is missing).\n"
               "Exit 1 and prints the current value when it differs.\n";
    bool absent = false;
    static const struct option extra[] = {{"absent", no_argument, 0, OPT_ABSENT}};
    int rc = parse(c, argc, argv, extra, 1, get_opt, &absent);
    if (rc >= 0 || (rc = ctl_want_args(c, argc - optind, absent ? 2 : 3, absent ? 2 : 3)) >= 0)
        return rc;
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    const char *k = argv[optind];
    const char *exp = absent ? NULL : argv[optind + 1];
    const char *nv = argv[optind + (absent ? 1 : 2)];
    shoal_result_t r;
    int st = shoal_cas(s, k, strlen(k), exp, exp ? strlen(exp) : 0, absent, nv, strlen(nv), &r);
    if (c->json && (st == SHOAL_STATUS_OK || st == SHOAL_STATUS_COMPARE_FAILED)) {
        printf("{\"swapped\":%s", st == SHOAL_STATUS_OK ? "true" : "false");
        if (st == SHOAL_STATUS_COMPARE_FAILED) {
            printf(",\"found\":%s", r.found ? "true" : "false");
            if (r.found) {
                printf(",");
                ctl_json_bytes(stdout, "current", r.value, r.value_len);
            }
        }
        printf("}\n");
    } else if (st == SHOAL_STATUS_COMPARE_FAILED) {
        if (r.found)
            print_value(&r);
        ctl_fail(c, EXIT_MISS,
                 r.found ? "compare failed: the current value differs"
                         : "compare failed: the key is missing");
    }
    rc = ctl_status_exit(c, st, r.error);
    shoal_result_clear(&r);
    shoal_destroy(&s);
    return rc;
}

typedef struct {
    const char *prefix, *from, *to;
    uint64_t limit;
    bool stale;
    int bad;
} scan_opts_t;

static int scan_opt(ctl_t *c, int opt, void *ctx)
{
    scan_opts_t *o = ctx;
    switch (opt) {
    case OPT_PREFIX: o->prefix = optarg; break;
    case OPT_FROM: o->from = optarg; break;
    case OPT_TO: o->to = optarg; break;
    case OPT_STALE: o->stale = true; break;
    case OPT_LIMIT:
        if (ctl_parse_u64(c, "--limit", optarg, 1, 1000000, &o->limit))
            return EXIT_USAGE;
        break;
    }
    return -1;
}

int cmd_scan(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: scan [--prefix P] [--from K] [--to K] [--limit N] [--stale]\n"
               "Prints KEY<TAB>VALUE lines in key order: keys starting with P, from K\n"
               "(inclusive) to K (exclusive), at most N (default 1000; the broker's\n"
               "broker/max_scan, 10000 by default, caps it, and so do 16 MiB of keys\n"
               "and values). A scan cut short says so on stderr; continue with --from\n"
               "the last key shown (inclusive: it comes again first). --json: one object,\n"
               "{\"kvs\":[{\"key\":..,\"value\":..},...],\"more\":true|false}.\n";
    scan_opts_t o = {.limit = 0};
    static const struct option extra[] = {{"prefix", required_argument, 0, OPT_PREFIX},
                                          {"from", required_argument, 0, OPT_FROM},
                                          {"to", required_argument, 0, OPT_TO},
                                          {"limit", required_argument, 0, OPT_LIMIT},
                                          {"stale", no_argument, 0, OPT_STALE}};
    int rc = parse(c, argc, argv, extra, 5, scan_opt, &o);
    if (rc >= 0 || (rc = ctl_want_args(c, argc - optind, 0, 0)) >= 0)
        return rc;
    if (o.from && o.to && strcmp(o.from, o.to) > 0)
        return ctl_fail(c, EXIT_USAGE, "--from '%s' is after --to '%s'", o.from, o.to);
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    shoal_op_t op = {.type = SHOAL_OP_SCAN, .limit = (uint32_t)o.limit, .stale = o.stale};
    if (o.prefix)
        op.prefix = o.prefix, op.prefix_len = strlen(o.prefix);
    if (o.from)
        op.start = o.from, op.start_len = strlen(o.from);
    if (o.to)
        op.end = o.to, op.end_len = strlen(o.to);
    shoal_result_t r;
    int st = shoal_call(s, &op, &r);
    if (st == SHOAL_STATUS_OK && c->json)
        printf("{\"kvs\":[");
    for (size_t i = 0; st == SHOAL_STATUS_OK && i < r.n_kvs; i++) {
        if (c->json) {
            printf("%s{", i ? "," : "");
            ctl_json_bytes(stdout, "key", r.kvs[i].key, r.kvs[i].key_len);
            printf(",");
            ctl_json_bytes(stdout, "value", r.kvs[i].value, r.kvs[i].value_len);
            printf("}");
        } else {
            fwrite(r.kvs[i].key, 1, r.kvs[i].key_len, stdout);
            fputc('\t', stdout);
            fwrite(r.kvs[i].value, 1, r.kvs[i].value_len, stdout);
            fputc('\n', stdout);
        }
    }
    if (st == SHOAL_STATUS_OK && c->json)
        printf("],\"more\":%s}\n", r.more ? "true" : "false");
    if (st == SHOAL_STATUS_OK && r.more && o.limit && r.n_kvs < o.limit)
        fprintf(stderr,
                "shoalctl scan: stopped at %zu keys (below --limit %" PRIu64
                ": the broker's broker/max_scan, or the 16 MiB one answer carries); more "
                "follow: go on with --from the last key\n",
                r.n_kvs, o.limit);
    else if (st == SHOAL_STATUS_OK && r.more)
        fprintf(stderr, "shoalctl scan: stopped at the limit of %zu keys; more follow\n", r.n_kvs);
    rc = ctl_status_exit(c, st, r.error);
    shoal_result_clear(&r);
    shoal_destroy(&s);
    return rc;
}

int cmd_batch(ctl_t *c, int argc, char **argv)
{
    c->usage = "usage: batch (put KEY VALUE | del KEY)...\n"
               "Applies the writes; atomic within a shard, not across shards.\n";
    int rc = parse(c, argc, argv, NULL, 0, no_extra, NULL);
    /* no upper bound here: the op count is checked below, with its own message */
    if (rc >= 0 || (rc = ctl_want_args(c, argc - optind, 2, INT_MAX)) >= 0)
        return rc;
    shoal_batch_op_t *ops = calloc((size_t)(argc - optind), sizeof *ops);
    size_t n = 0;
    for (int i = optind; ops && i < argc;) {
        bool put = !strcmp(argv[i], "put");
        if (!put && strcmp(argv[i], "del")) {
            free(ops);
            return ctl_fail(c, EXIT_USAGE, "expected 'put' or 'del', not '%s'", argv[i]);
        }
        if (i + (put ? 2 : 1) >= argc) {
            free(ops);
            return ctl_fail(c, EXIT_USAGE, "'%s' at the end lacks its arguments", argv[i]);
        }
        ops[n].is_delete = !put;
        ops[n].key = argv[i + 1];
        ops[n].key_len = strlen(argv[i + 1]);
        if (put) {
            ops[n].value = argv[i + 2];
            ops[n].value_len = strlen(argv[i + 2]);
        }
        n++;
        i += put ? 3 : 2;
    }
    shoal_t *s = ctl_connect(c);
    if (!s) {
        free(ops);
        return ctl_no_client(c);
    }
    shoal_result_t r;
    int st = shoal_batch(s, ops, n, &r);
    if (st == SHOAL_STATUS_OK && c->json)
        printf("{\"status\":\"ok\",\"ops\":%zu}\n", n);
    rc = ctl_status_exit(c, st, r.error);
    shoal_result_clear(&r);
    shoal_destroy(&s);
    free(ops);
    return rc;
}

#define MAX_FROM 64
typedef struct {
    const char *prefix, *pub;
    uint64_t count;
    uint32_t shard[MAX_FROM];
    uint64_t index[MAX_FROM];
    uint32_t after_ops[MAX_FROM]; /* SHARD:INDEX.OP: after op OP (OP + 1 ops had); 0: all */
    size_t n_from;
} watch_opts_t;

static int watch_opt(ctl_t *c, int opt, void *ctx)
{
    watch_opts_t *o = ctx;
    switch (opt) {
    case OPT_PREFIX: o->prefix = optarg; break;
    case OPT_PUB:
        if (!ctl_endpoints_ok(optarg))
            return ctl_fail(c, EXIT_USAGE,
                            "--pub '%s': want tcp://HOST:PORT (port 1-65535), or several "
                            "separated by commas",
                            optarg);
        o->pub = optarg;
        break;
    case OPT_COUNT:
        if (ctl_parse_u64(c, "--count", optarg, 1, UINT64_MAX - 1, &o->count))
            return EXIT_USAGE;
        break;
    case OPT_FROM_INDEX: {
        /* SHARD:INDEX[.OP], possibly several separated by commas */
        char *copy = strdup(optarg), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *colon = strchr(t, ':'), *dot = colon ? strchr(colon, '.') : NULL;
            uint64_t sh, ix, op = 0;
            if (!colon || o->n_from == MAX_FROM) {
                ctl_fail(c, EXIT_USAGE,
                         "--from-index wants SHARD:INDEX[.OP] (at most %d), not '%s'", MAX_FROM, t);
                free(copy);
                return EXIT_USAGE;
            }
            *colon = 0;
            if (dot)
                *dot = 0;
            if (ctl_parse_u64(c, "--from-index SHARD", t, 0, UINT32_MAX - 1, &sh) ||
                ctl_parse_u64(c, "--from-index INDEX", colon + 1, 0, UINT64_MAX - 1, &ix) ||
                (dot && ctl_parse_u64(c, "--from-index OP", dot + 1, 0, UINT32_MAX - 2, &op))) {
                free(copy);
                return EXIT_USAGE;
            }
            o->shard[o->n_from] = (uint32_t)sh;
            o->after_ops[o->n_from] = dot ? (uint32_t)op + 1 : 0;
            o->index[o->n_from++] = ix;
        }
        free(copy);
        break;
    }
    }
    return -1;
}

static void print_change(ctl_t *c, const shoal_watch_event_t *ev)
{
    const shoal_change_t *ch = &ev->change;
    if (c->json) {
        printf("{\"shard\":%u,\"index\":%" PRIu64 ",", ch->shard, ch->index);
        if (ch->op_count > 1)
            printf("\"op_seq\":%u,\"op_count\":%u,", ch->op_seq, ch->op_count);
        printf("\"op\":\"%s\",", ch->is_delete ? "del" : "put");
        ctl_json_bytes(stdout, "key", ch->key, ch->key_len);
        if (!ch->is_delete) {
            printf(",");
            ctl_json_bytes(stdout, "value", ch->value, ch->value_len);
        }
        printf("}\n");
    } else {
        /* a batch's ops are consecutive lines with one index (op_seq in --json); the
         * text stays SHARD:INDEX, which scripts parse */
        printf("%u:%" PRIu64 "\t%s\t", ch->shard, ch->index, ch->is_delete ? "del" : "put");
        fwrite(ch->key, 1, ch->key_len, stdout);
        if (!ch->is_delete) {
            fputc('\t', stdout);
            fwrite(ch->value, 1, ch->value_len, stdout);
        }
        fputc('\n', stdout);
    }
    fflush(stdout);
}

/* The catch-up of --from-index: -1 to go on, else the exit status (the loop reports a
 * window that is gone). */
static int start_from(ctl_t *c, shoal_watch_t *w, const watch_opts_t *o)
{
    for (size_t i = 0; i < o->n_from; i++) {
        int rc = shoal_watch_from_op(w, o->shard[i], o->index[i], o->after_ops[i]);
        if (rc == SHOAL_EINVAL)
            return ctl_fail(c, EXIT_USAGE, "--from-index: the cluster has no shard %u",
                            o->shard[i]);
        if (rc == SHOAL_EUNAVAIL)
            return ctl_fail(c, EXIT_UNAVAIL,
                            "the broker did not answer for the changes of shard %u within %d ms",
                            o->shard[i], c->timeout_ms);
    }
    return -1;
}

/* Prints changes until count, an interrupt, a lost range (exit 1) or a silent stream: the
 * broker publishes progress every second, so --timeout ms of nothing means it is gone. */
static int follow(ctl_t *c, shoal_watch_t *w, uint64_t count)
{
    uint64_t seen = 0;
    int64_t heard = zclock_mono();
    while (!zsys_interrupted && (!count || seen < count)) {
        shoal_watch_event_t ev;
        int got = shoal_watch_next(w, &ev, 200);
        if (got < 0)
            break;
        if (got == 0) {
            if (zclock_mono() - heard >= c->timeout_ms)
                return ctl_fail(c, EXIT_UNAVAIL,
                                "nothing from the broker's change stream for %d ms "
                                "(is the broker running?)",
                                c->timeout_ms);
            continue;
        }
        heard = zclock_mono();
        if (ev.kind == SHOAL_WATCH_CHANGE) {
            print_change(c, &ev);
            seen++;
        } else if (ev.kind == SHOAL_WATCH_FELL_BEHIND) {
            fflush(stdout);
            return ctl_fail(c, EXIT_MISS,
                            "shard %u's changes after index %" PRIu64
                            " are no longer retained: scan for the current state, then "
                            "watch again",
                            ev.change.shard, ev.change.index);
        }
    }
    return EXIT_OK;
}

int cmd_watch(ctl_t *c, int argc, char **argv)
{
    c->usage =
        "usage: watch [--prefix P] [--from-index SHARD:INDEX[.OP] ...] [--count N] [--pub EP]\n"
        "Prints one line per change (SHARD:INDEX<TAB>put|del<TAB>KEY[<TAB>VALUE]; a\n"
        "batch's ops share its index, op_seq 0.. in --json) until stopped (or N\n"
        "changes). --from-index first replays the shard's changes after INDEX (after\n"
        "op OP of entry INDEX with .OP). --pub is the broker's XPUB (default: broker\n"
        "port + 1); with several brokers (a list) it moves to the next one when its\n"
        "broker is gone for 1 s, and catches up what it missed.\n"
        "Ends with exit 1 when changes it should show are no longer retained (scan,\n"
        "then watch again), and exit 3 when the stream is silent for --timeout ms\n"
        "(default 5000; the broker sends progress every second).\n";
    watch_opts_t o = {0};
    static const struct option extra[] = {{"prefix", required_argument, 0, OPT_PREFIX},
                                          {"from-index", required_argument, 0, OPT_FROM_INDEX},
                                          {"count", required_argument, 0, OPT_COUNT},
                                          {"pub", required_argument, 0, OPT_PUB}};
    int rc = parse(c, argc, argv, extra, 4, watch_opt, &o);
    if (rc >= 0)
        return rc;
    /* extra positional SHARD:INDEX after --from-index ("--from-index 0:5 1:7") */
    for (int i = optind; i < argc; i++) {
        optarg = argv[i];
        if (!strchr(argv[i], ':'))
            return ctl_fail(c, EXIT_USAGE, "unexpected argument '%s'", argv[i]);
        if ((rc = watch_opt(c, OPT_FROM_INDEX, &o)) >= 0)
            return rc;
    }
    if (o.prefix && strlen(o.prefix) > SHOAL_MAX_KEY)
        return ctl_fail(c, EXIT_USAGE, "--prefix of %zu bytes exceeds the %u-byte key limit",
                        strlen(o.prefix), SHOAL_MAX_KEY);
    shoal_t *s = ctl_connect(c);
    if (!s)
        return ctl_no_client(c);
    const char *p = o.prefix ? o.prefix : "";
    shoal_watch_t *w = shoal_watch_new(s, o.pub, p, strlen(p));
    if (!w) {
        shoal_destroy(&s);
        return ctl_fail(c, EXIT_USAGE,
                        "cannot derive or connect the broker's pub endpoint "
                        "(give --pub tcp://HOST:PORT)");
    }
    zclock_sleep(500); /* the subscription reaches the broker, and the broker's the nodes */
    rc = start_from(c, w, &o);
    if (rc < 0)
        rc = follow(c, w, o.count);
    shoal_watch_destroy(&w);
    shoal_destroy(&s);
    return rc;
}
