/* shoalctl.c - the command-line tool: dispatch, common options, exit codes, output
 * helpers. The commands live in cmd_data.c (put get del cas scan batch watch),
 * cmd_admin.c (status top events and the admin operations), cmd_place.c (drain-node and
 * rebalance: moves planned from status), cmd_cluster.c (a local cluster) and cmd_bench.c
 * (load generator).
 *
 * Contract (SPEC.md): every command takes --broker (default $SHOAL_BROKER, else
 * tcp://127.0.0.1:7000), --json, --timeout MS and --help; exit 0 ok, 1 not found or
 * compare failed, 2 bad usage or input, 3 unavailable or timed out; errors are one line
 * on stderr. Common options may come before or after the command word.
 *
 * SHOALCTL_DRY_RUN=1 checks the arguments (exit 0 or 2) and contacts or starts nothing:
 * for scripts that want to validate a command line, and for the CLI fuzz target. */
#include "tools/shoalctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "engine/endpoint.h"

static const char *main_usage =
    "usage: shoalctl [--broker EP] [--json] [--timeout MS] COMMAND [ARGS]\n"
    "\n"
    "data:     put KEY VALUE | put KEY --value-file FILE|- | get KEY [--stale] | del KEY\n"
    "          cas KEY EXPECTED NEW | cas KEY --absent NEW\n"
    "          scan [--prefix P] [--from K] [--to K] [--limit N] [--stale]\n"
    "          batch put KEY VALUE | del KEY ...\n"
    "          watch [--prefix P] [--from-index SHARD:INDEX[.OP] ...] [--count N] [--pub EP]\n"
    "admin:    status | top [--interval MS] [--count N] | events [--no-follow] [--count N]\n"
    "          transfer-leader SHARD NODE | add-node ID ENDPOINT PUB_ENDPOINT\n"
    "          remove-node ID | move-replica SHARD FROM TO | add-shard [SHARD]\n"
    "          move-replica --cancel SHARD | compact [SHARD] | snapshot [SHARD]\n"
    "          drain-node ID [--plan] | rebalance [--plan]\n"
    "cluster:  cluster up --dir DIR [--nodes N] [--shards S] [--replicas R] [--base-port P]\n"
    "          cluster down --dir DIR | cluster stop-node --dir DIR I|broker [--kill]\n"
    "          cluster start-node --dir DIR I|broker | cluster add-node --dir DIR\n"
    "bench:    bench put|get|mixed --clients C --duration S --key-size K --value-size V\n"
    "          [--keys N] [--read-percent P (mixed)] [--no-load (get, mixed)]\n"
    "\n"
    "--broker defaults to $SHOAL_BROKER, else " SHOAL_DEFAULT_ENDPOINT "; several brokers of\n"
    "one cluster may be listed, separated by commas (a request goes to one that is up).\n"
    "A value or key that starts with '-' follows `--` (shoalctl put -- k -5).\n"
    "Exit status: 0 ok; 1 not found or compare failed; 2 bad usage or input;\n"
    "3 unavailable or timed out. `shoalctl COMMAND --help` for one command.\n";

typedef struct {
    const char *name;
    int (*fn)(ctl_t *, int, char **);
} command_t;

static const command_t commands[] = {
    {"put", cmd_put},
    {"get", cmd_get},
    {"del", cmd_del},
    {"cas", cmd_cas},
    {"scan", cmd_scan},
    {"batch", cmd_batch},
    {"watch", cmd_watch},
    {"status", cmd_status},
    {"top", cmd_top},
    {"events", cmd_events},
    {"transfer-leader", cmd_admin},
    {"add-node", cmd_admin},
    {"remove-node", cmd_admin},
    {"move-replica", cmd_admin},
    {"add-shard", cmd_admin},
    {"compact", cmd_admin},
    {"snapshot", cmd_admin},
    {"drain-node", cmd_place},
    {"rebalance", cmd_place},
    {"cluster", cmd_cluster},
    {"bench", cmd_bench},
};

int ctl_fail(ctl_t *c, int code, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* one line: fold any newline a server message might carry */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "shoalctl %s: %s\n", c->cmd, line);
    return code;
}

int ctl_common(ctl_t *c, int opt, int argc, char **argv)
{
    uint64_t v;
    switch (opt) {
    case OPT_BROKER: c->broker = optarg; return -1;
    case OPT_JSON: c->json = true; return -1;
    case OPT_TIMEOUT:
        if (ctl_parse_u64(c, "--timeout", optarg, 1, 3600000, &v))
            return EXIT_USAGE;
        c->timeout_ms = (int)v;
        c->timeout_set = true;
        return -1;
    case 'h': fputs(c->usage, stdout); return EXIT_OK;
    case ':':
        return ctl_fail(c, EXIT_USAGE, "option %s needs a value (see --help)", argv[optind - 1]);
    default:
        if (optopt && optopt < 256)
            return ctl_fail(c, EXIT_USAGE, "unknown option '-%c' (see --help)", optopt);
        return ctl_fail(c, EXIT_USAGE, "unknown option '%s' (see --help)",
                        optind - 1 < argc ? argv[optind - 1] : "?");
    }
}

int ctl_want_args(ctl_t *c, int have, int lo, int hi)
{
    if (have < lo)
        return ctl_fail(c, EXIT_USAGE, "missing arguments (usage: %.*s)",
                        (int)strcspn(c->usage + 7, "\n"), c->usage + 7);
    if (have > hi)
        return ctl_fail(c, EXIT_USAGE, "too many arguments (usage: %.*s)",
                        (int)strcspn(c->usage + 7, "\n"), c->usage + 7);
    return -1;
}

int ctl_parse_u64(ctl_t *c, const char *what, const char *s, uint64_t lo, uint64_t hi,
                  uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') {
        ctl_fail(c, EXIT_USAGE, "%s wants a number from %" PRIu64 " to %" PRIu64 ", not '%s'", what,
                 lo, hi, s ? s : "");
        return -1;
    }
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        ctl_fail(c, EXIT_USAGE, "%s wants a number from %" PRIu64 " to %" PRIu64 ", not '%s'", what,
                 lo, hi, s);
        return -1;
    }
    *out = n;
    return 0;
}

int ctl_no_client(ctl_t *c)
{
    return c->dry_run ? EXIT_OK : EXIT_USAGE;
}

/* One endpoint, or several brokers of one cluster separated by commas (at most
 * SHOAL_MAX_BROKERS, none empty); each tcp://HOST:PORT with a port of 1-65535, the only
 * kind a broker binds (libshoal also takes ipc:// and inproc://, for brokers in tests). */
bool ctl_endpoints_ok(const char *list)
{
    char ep[256];
    int n = 0;
    for (const char *p = list;; p += strlen(ep) + 1) {
        if (++n > SHOAL_MAX_BROKERS || !shoal_first_endpoint(p, ep, sizeof ep) ||
            !shoal_tcp_endpoint_ok(ep))
            return false;
        if (!p[strlen(ep)])
            return true;
    }
}

/* The endpoint to use, or NULL after reporting a bad or empty one: an empty --broker or
 * $SHOAL_BROKER is a mistake (a script's unset variable), not a request for the default. */
static const char *broker_endpoint(ctl_t *c)
{
    const char *env = getenv("SHOAL_BROKER");
    const char *ep = c->broker ? c->broker : env ? env : SHOAL_DEFAULT_ENDPOINT;
    if (!*ep) {
        ctl_fail(c, EXIT_USAGE, "%s is empty (want tcp://HOST:PORT)",
                 c->broker ? "--broker" : "$SHOAL_BROKER");
        return NULL;
    }
    if (!ctl_endpoints_ok(ep)) {
        ctl_fail(c, EXIT_USAGE,
                 "bad broker endpoint '%s' (want tcp://HOST:PORT, port 1-65535, or several "
                 "separated by commas)",
                 ep);
        return NULL;
    }
    return ep;
}

shoal_t *ctl_connect(ctl_t *c)
{
    const char *ep = broker_endpoint(c);
    if (!ep || c->dry_run) {
        c->dry_run = c->dry_run && ep; /* so ctl_no_client says 2 for a bad one */
        return NULL;
    }
    shoal_t *s = shoal_connect(ep);
    if (!s) {
        ctl_fail(c, EXIT_USAGE, "bad broker endpoint '%s' (want tcp://HOST:PORT)", ep);
        return NULL;
    }
    if (c->timeout_set)
        shoal_set_timeout(s, c->timeout_ms);
    return s;
}

int ctl_status_exit(ctl_t *c, int status, const char *err)
{
    switch (status) {
    case SHOAL_STATUS_OK: return EXIT_OK;
    case SHOAL_STATUS_NOT_FOUND:
    case SHOAL_STATUS_COMPARE_FAILED: return EXIT_MISS;
    case SHOAL_STATUS_BAD_REQUEST:
    case SHOAL_STATUS_TOO_LARGE:
        return ctl_fail(c, EXIT_USAGE, "%s", err && *err ? err : shoal_status_str(status));
    default:
        return ctl_fail(c, EXIT_UNAVAIL, "%s: %s", shoal_status_str(status),
                        err && *err ? err : "no details");
    }
}

void ctl_json_str(FILE *f, const void *data, size_t len)
{
    const unsigned char *p = data;
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char b = p[i];
        size_t n;
        unsigned cp;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf)
            n = 1, cp = b & 0x1f;
        else if ((b & 0xf0) == 0xe0)
            n = 2, cp = b & 0x0f;
        else if (b >= 0xf0 && b <= 0xf4)
            n = 3, cp = b & 0x07;
        else
            return false;
        if (len - i <= n)
            return false; /* cut short */
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += n + 1;
    }
    return true;
}

void ctl_json_bytes(FILE *f, const char *name, const void *data, size_t len)
{
    if (utf8_valid(data, len)) {
        fprintf(f, "\"%s\":", name);
        ctl_json_str(f, data, len);
        return;
    }
    zarmour_t *a = zarmour_new();
    char *b64 = a ? zarmour_encode(a, data, len) : NULL;
    fprintf(f, "\"%s_base64\":\"%s\"", name, b64 ? b64 : "");
    zstr_free(&b64);
    zarmour_destroy(&a);
}

const char *ctl_size(uint64_t bytes, char *buf, size_t cap)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

/* True for the common options that take a value (so their value is not the command). */
static bool takes_value(const char *a)
{
    return !strcmp(a, "--broker") || !strcmp(a, "--timeout");
}

int main(int argc, char **argv)
{
    ctl_t c = {.cmd = "", .usage = main_usage, .timeout_ms = SHOAL_DEFAULT_TIMEOUT_MS};
    const char *dry = getenv("SHOALCTL_DRY_RUN");
    c.dry_run = dry && *dry && strcmp(dry, "0") != 0;
    /* Find the command word: the first argument that is neither an option nor the value
     * of a common option placed before it. */
    int at = -1;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            at = i;
            break;
        }
        if (takes_value(argv[i]))
            i++;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(main_usage, stdout);
            return EXIT_OK;
        }
    }
    if (at < 0) {
        fprintf(stderr, "shoalctl: no command given (try shoalctl --help)\n");
        return EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof commands / sizeof *commands; k++) {
        if (strcmp(commands[k].name, argv[at]))
            continue;
        /* argv for the command: program name, then every argument but the command word */
        char **av = calloc((size_t)argc + 1, sizeof *av);
        if (!av)
            return EXIT_UNAVAIL;
        int n = 0;
        av[n++] = argv[0];
        for (int i = 1; i < argc; i++)
            if (i != at)
                av[n++] = argv[i];
        c.cmd = commands[k].name;
        opterr = 0;
        optind = 0;
        int rc = commands[k].fn(&c, n, av);
        free(av);
        fflush(stdout);
        return rc;
    }
    fprintf(stderr, "shoalctl: unknown command '%s' (try shoalctl --help)\n", argv[at]);
    return EXIT_USAGE;
}
