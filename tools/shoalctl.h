/* shoalctl.h - what the shoalctl command files share: the common options of SPEC's
 * command-line contract (--broker, --json, --timeout, --help), the exit codes, and small
 * output helpers. Each command is `int cmd_x(ctl_t *c, int argc, char **argv)` and
 * returns the process exit status. */
#ifndef SHOAL_TOOLS_SHOALCTL_H
#define SHOAL_TOOLS_SHOALCTL_H

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/shoal.h"

enum {
    EXIT_OK = 0,
    EXIT_MISS = 1,    /* not found, compare failed */
    EXIT_USAGE = 2,   /* bad usage or input */
    EXIT_UNAVAIL = 3, /* unavailable, timed out */
};

enum { OPT_BROKER = 1000, OPT_JSON, OPT_TIMEOUT, OPT_FIRST_CMD = 1100 };

#define BROKER_ADMIN_MAX_REPLICAS 7

#define CTL_COMMON_OPTS                                                                            \
    {"broker", required_argument, 0, OPT_BROKER}, {"json", no_argument, 0, OPT_JSON},              \
        {"timeout", required_argument, 0, OPT_TIMEOUT},                                            \
    {                                                                                              \
        "help", no_argument, 0, 'h'                                                                \
    }

typedef struct {
    const char *cmd;   /* "put", "cluster up", ... */
    const char *usage; /* the command's help text */
    const char *broker;
    bool json;
    int timeout_ms;
    bool timeout_set;
    bool dry_run; /* $SHOALCTL_DRY_RUN: check arguments, contact nothing */
} ctl_t;

/* Prints "shoalctl CMD: <message>" as one line on stderr and returns code. */
int ctl_fail(ctl_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Handles a common option or getopt's error return; returns -1 to go on, else the exit
 * status to return now (0 after --help). */
int ctl_common(ctl_t *c, int opt, int argc, char **argv);
/* Checks the count of positional arguments left after getopt. */
int ctl_want_args(ctl_t *c, int have, int lo, int hi);
/* Parses an unsigned number within [lo, hi]; prints the error and returns -1 if bad. */
int ctl_parse_u64(ctl_t *c, const char *what, const char *s, uint64_t lo, uint64_t hi,
                  uint64_t *out);
/* A broker list of --broker, $SHOAL_BROKER or --pub: 1-SHOAL_MAX_BROKERS tcp://HOST:PORT
 * endpoints separated by commas. */
bool ctl_endpoints_ok(const char *list);
/* Connects to the broker (NULL after printing an error: bad endpoint). */
shoal_t *ctl_connect(ctl_t *c);
/* What a command returns when ctl_connect gave NULL: 0 in a dry run (arguments were
 * good), else 2 (the endpoint was bad; already reported). */
int ctl_no_client(ctl_t *c);
/* Exit status for a status code, printing err (one line) when it is not OK. */
int ctl_status_exit(ctl_t *c, int status, const char *err);
/* JSON string literal of bytes (escaped) on f. */
void ctl_json_str(FILE *f, const void *data, size_t len);
/* A key or value as a JSON member: "name":"text" when the bytes are UTF-8, else
 * "name_base64":"..." (JSON strings are Unicode: other bytes would not parse). */
void ctl_json_bytes(FILE *f, const char *name, const void *data, size_t len);
/* Human size "12.3 MiB". */
const char *ctl_size(uint64_t bytes, char *buf, size_t cap);

int cmd_put(ctl_t *c, int argc, char **argv);
int cmd_get(ctl_t *c, int argc, char **argv);
int cmd_del(ctl_t *c, int argc, char **argv);
int cmd_cas(ctl_t *c, int argc, char **argv);
int cmd_scan(ctl_t *c, int argc, char **argv);
int cmd_batch(ctl_t *c, int argc, char **argv);
int cmd_watch(ctl_t *c, int argc, char **argv);
int cmd_status(ctl_t *c, int argc, char **argv);
int cmd_top(ctl_t *c, int argc, char **argv);
int cmd_events(ctl_t *c, int argc, char **argv);
int cmd_admin(ctl_t *c, int argc, char **argv);
int cmd_cluster(ctl_t *c, int argc, char **argv);
int cmd_place(ctl_t *c, int argc, char **argv); /* drain-node, rebalance */
int cmd_bench(ctl_t *c, int argc, char **argv);

#endif
