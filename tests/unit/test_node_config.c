/* test_node_config.c - shoald's ZPL configuration (actors/node_config.c): a full config
 * loads with every value, defaults fill what is absent, and every kind of bad value fails
 * with one line naming the key: unknown keys, endpoints that are not tcp://HOST:PORT with a
 * port of 1-65535, and syntax errors (named by line, with nothing on stdout). Also the
 * bootstrap placement of CONTRACTS.md. */
#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "actors/node_config.h"
#include "engine/error.h"

static const char *good = "node\n"
                          "    id = 1\n"
                          "    endpoint = \"tcp://127.0.0.1:7110\"\n"
                          "    pub_endpoint = \"tcp://127.0.0.1:7111\"\n"
                          "    data_dir = \"/tmp/x/node-1\"\n"
                          "raft\n"
                          "    tick_ms = 5\n"
                          "    election_ticks = 30\n"
                          "    heartbeat_ticks = 3\n"
                          "    prevote = 0\n"
                          "storage\n"
                          "    fsync = \"never\"\n"
                          "cluster\n"
                          "    shards = 4\n"
                          "    replicas = 3\n"
                          "    nodes\n"
                          "        0\n"
                          "            endpoint = \"tcp://127.0.0.1:7100\"\n"
                          "        1\n"
                          "            endpoint = \"tcp://127.0.0.1:7110\"\n"
                          "        2\n"
                          "            endpoint = \"tcp://127.0.0.1:7120\"\n"
                          "        3\n"
                          "            endpoint = \"tcp://127.0.0.1:7130\"\n";

static void test_good(void **state)
{
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_parse(good, &c, err, sizeof err), 0);
    assert_int_equal(c.id, 1);
    assert_string_equal(c.endpoint, "tcp://127.0.0.1:7110");
    assert_string_equal(c.data_dir, "/tmp/x/node-1");
    assert_int_equal(c.tick_ms, 5);
    assert_int_equal(c.election_ticks, 30);
    assert_int_equal(c.heartbeat_ticks, 3);
    assert_false(c.prevote);
    assert_true(c.check_quorum);    /* default */
    assert_true(c.balance_leaders); /* default */
    assert_true(c.sched_batch);     /* default */
    assert_int_equal(c.fsync, NODE_FSYNC_NEVER);
    assert_int_equal(c.shards, 4);
    assert_int_equal(c.n_nodes, 4);
    assert_string_equal(node_config_peer(&c, 2)->endpoint, "tcp://127.0.0.1:7120");
    uint64_t r[8];
    /* shard s on nodes (s + k) mod N */
    assert_int_equal(node_config_replicas(&c, 3, r, 8), 3);
    assert_int_equal(r[0], 3);
    assert_int_equal(r[1], 0);
    assert_int_equal(r[2], 1);
    assert_int_equal(node_config_replicas(&c, SHOAL_META_GROUP, r, 8), 3);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[2], 2);
}

/* Replaces the first occurrence of from in good by to, parses, expects failure naming key. */
static void expect_bad(const char *from, const char *to, const char *key)
{
    char text[4096];
    const char *p = strstr(good, from);
    assert_non_null(p);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(p - good), good, to, p + strlen(from));
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_parse(text, &c, err, sizeof err), SHOAL_EINVAL);
    if (!strstr(err, key))
        fail_msg("error \"%s\" does not name %s", err, key);
}

static void test_bad(void **state)
{
    expect_bad("tick_ms = 5", "tick_ms = 5x", "raft/tick_ms");
    expect_bad("tick_ms = 5", "tick_ms = -1", "raft/tick_ms");
    expect_bad("tick_ms = 5", "tick_ms = 0", "raft/tick_ms");
    expect_bad("id = 1", "id = 9", "node/id");
    expect_bad("    id = 1\n", "", "node/id");
    expect_bad("fsync = \"never\"", "fsync = \"sometimes\"", "storage/fsync");
    expect_bad("heartbeat_ticks = 3", "heartbeat_ticks = 30", "heartbeat_ticks");
    expect_bad("    data_dir = \"/tmp/x/node-1\"\n", "", "node/data_dir");
    expect_bad("prevote = 0", "prevote = 2", "raft/prevote");
    expect_bad("prevote = 0", "balance_leaders = yes", "raft/balance_leaders");
    expect_bad("    data_dir", "    sched_batch = 2\n    data_dir", "node/sched_batch");
    expect_bad("        3\n", "        x\n", "cluster/nodes/x");
}

/* raft/balance_leaders = 0 switches leader balancing off. */
static void test_balance_off(void **state)
{
    (void)state;
    node_config_t c;
    char err[256] = "", text[4096];
    const char *p = strstr(good, "prevote = 0\n");
    snprintf(text, sizeof text, "%.*sbalance_leaders = 0\n    %s", (int)(p - good), good, p);
    assert_int_equal(node_config_parse(text, &c, err, sizeof err), 0);
    assert_false(c.balance_leaders);
}

/* node/apply_threads: 0 (the default) takes one fsm actor per two online CPUs, 1 to 4;
 * a set value is kept; past 4 is refused. */
static void test_apply_threads(void **state)
{
    (void)state;
    node_config_t c;
    char err[256] = "", text[4096];
    assert_int_equal(node_config_parse(good, &c, err, sizeof err), 0);
    assert_int_equal(c.apply_threads, 0);
    long half = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    unsigned want = half < 1                        ? 1
                    : half > NODE_MAX_APPLY_THREADS ? NODE_MAX_APPLY_THREADS
                                                    : (unsigned)half;
    assert_int_equal(node_config_apply_threads(&c), want);
    const char *p = strstr(good, "    data_dir");
    snprintf(text, sizeof text, "%.*s    apply_threads = 3\n%s", (int)(p - good), good, p);
    assert_int_equal(node_config_parse(text, &c, err, sizeof err), 0);
    assert_int_equal(node_config_apply_threads(&c), 3);
    expect_bad("    data_dir", "    apply_threads = 5\n    data_dir", "node/apply_threads");
    expect_bad("    data_dir", "    apply_threads = two\n    data_dir", "node/apply_threads");
}

/* storage/engine_threads: the replicas' shared flush and compaction threads, 2 by
 * default, 1 to 16. */
static void test_engine_threads(void **state)
{
    (void)state;
    node_config_t c;
    char err[256] = "", text[4096];
    assert_int_equal(node_config_parse(good, &c, err, sizeof err), 0);
    assert_int_equal(c.engine_threads, 2);
    const char *p = strstr(good, "    fsync");
    snprintf(text, sizeof text, "%.*s    engine_threads = 1\n%s", (int)(p - good), good, p);
    assert_int_equal(node_config_parse(text, &c, err, sizeof err), 0);
    assert_int_equal(c.engine_threads, 1);
    expect_bad("    fsync", "    engine_threads = 0\n    fsync", "storage/engine_threads");
    expect_bad("    fsync", "    engine_threads = 17\n    fsync", "storage/engine_threads");
}

/* A node added to a running cluster: node/join = 1, its id absent from cluster/nodes (the
 * bootstrap placement every node computes must not change); a listed id never joins. */
static void test_join(void **state)
{
    (void)state;
    char text[2048], err[256] = "";
    node_config_t c;
    const char *at = strstr(good, "    id = 1\n");
    snprintf(text, sizeof text, "%.*s    id = 9\n    join = 1\n%s", (int)(at - good), good,
             at + strlen("    id = 1\n"));
    assert_int_equal(node_config_parse(text, &c, err, sizeof err), 0);
    assert_true(c.join);
    assert_int_equal(c.id, 9);
    assert_int_equal(c.n_nodes, 4);
    expect_bad("    id = 1\n", "    id = 1\n    join = 1\n", "node/join");
    expect_bad("id = 1", "id = 9", "node/join = 1"); /* the error names the way to join */
    expect_bad("    id = 1\n", "    id = 9\n    join = 2\n", "node/join");
}

/* Read modes: ReadIndex by default; a lease takes twice the drift (rounded up to ticks)
 * plus one tick off, and must stay longer than a heartbeat interval and need check-quorum. */
static void test_read_mode(void **state)
{
    node_config_t c;
    char err[256] = "", text[4096];
    assert_int_equal(node_config_parse(good, &c, err, sizeof err), 0);
    assert_int_equal(c.read_mode, NODE_READ_INDEX);
    const char *p = strstr(good, "prevote = 0\n");
    snprintf(text, sizeof text, "%.*sread_mode = \"lease\"\n    max_clock_drift_ms = 12\n    %s",
             (int)(p - good), good, p);
    assert_int_equal(node_config_parse(text, &c, err, sizeof err), 0);
    assert_int_equal(c.read_mode, NODE_READ_LEASE);
    assert_int_equal(c.max_clock_drift_ms, 12);
    assert_int_equal(node_config_lease_margin(&c), 1 + 2 * 3); /* 12 ms at 5 ms a tick */
    expect_bad("prevote = 0", "read_mode = \"fast\"", "raft/read_mode");
    expect_bad("prevote = 0", "read_mode = \"lease\"\n    max_clock_drift_ms = 65",
               "raft/max_clock_drift_ms");
    expect_bad("prevote = 0", "read_mode = \"lease\"\n    check_quorum = 0", "check_quorum");
}

/* The example files in config/ must load (and place every shard on 3 nodes). */
static void test_example_files(void **state)
{
    const char *src = getenv("SHOAL_SOURCE_DIR");
    const char *files[] = {"dev.cfg", "node-3.cfg", "node-5.cfg"};
    if (!src)
        skip();
    for (size_t i = 0; i < 3; i++) {
        char path[1024], err[512] = "";
        node_config_t c;
        snprintf(path, sizeof path, "%s/config/%s", src, files[i]);
        if (node_config_load(path, &c, err, sizeof err) != 0)
            fail_msg("%s", err);
        uint64_t r[8];
        assert_int_equal(node_config_replicas(&c, 0, r, 8), 3);
    }
}

/* A key or section the loader does not read is refused by its full path, so a typo never
 * leaves a default in place without a word. */
static void test_unknown_keys(void **state)
{
    (void)state;
    expect_bad("    fsync", "    engine_thread = 4\n    fsync",
               "unknown key \"storage/engine_thread\"");
    expect_bad("storage\n", "stroage\n", "unknown key \"stroage\"");
    expect_bad("raft\n", "raft\n    tick_msec = 5\n", "unknown key \"raft/tick_msec\"");
    expect_bad("            endpoint = \"tcp://127.0.0.1:7120\"\n",
               "            endpoint = \"tcp://127.0.0.1:7120\"\n            pub_endpiont = 1\n",
               "unknown key \"cluster/nodes/2/pub_endpiont\"");
    expect_bad("    prevote = 0\n", "    prevote = 0\n        strict = 1\n",
               "unknown key \"raft/prevote/strict\"");
    expect_bad("cluster\n", "cluster\n    node\n        x = 1\n", "unknown key \"cluster/node\"");
    /* a section given a value, and a path written as one name, which zconfig would keep as
     * a key nobody reads */
    expect_bad("raft\n", "raft = fast\n", "raft is a section");
    expect_bad("storage\n", "storage/engine_threads = 4\nstorage\n", "storage/engine_threads");
}

/* Every key docs/OPERATIONS.md lists for a node loads. */
static void test_every_key(void **state)
{
    (void)state;
    const char *text = "node\n    id = 0\n    join = 0\n    endpoint = \"tcp://*:7100\"\n"
                       "    pub_endpoint = \"tcp://*:7101\"\n    data_dir = \"/tmp/x\"\n"
                       "    log_level = \"debug\"\n    sched_batch = 0\n    apply_threads = 2\n"
                       "    metrics_ms = 500\n"
                       "raft\n    tick_ms = 10\n    election_ticks = 50\n    heartbeat_ticks = 5\n"
                       "    prevote = 1\n    check_quorum = 1\n    balance_leaders = 0\n"
                       "    quiesce_ticks = 0\n    read_mode = \"lease\"\n"
                       "    max_clock_drift_ms = 20\n"
                       "storage\n    fsync = \"always\"\n    snapshot_entries = 100\n"
                       "    snapshot_interval_ms = 1000\n    snapshot_trailing_entries = 0\n"
                       "    snapshot_rate_kbps = 1024\n    lsm_cache_kb = 2048\n"
                       "    lsm_buffer_kb = 1024\n    engine_threads = 3\n    fsync_delay_ms = 1\n"
                       "cluster\n    id = 00c0ffee1234abcd\n    shards = 2\n    replicas = 1\n"
                       "    vnodes = 8\n    nodes\n"
                       "        0\n            endpoint = \"tcp://node-0.example:7100\"\n"
                       "            pub_endpoint = \"tcp://node-0.example:7101\"\n";
    node_config_t c;
    char err[256] = "";
    if (node_config_parse(text, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.endpoint, "tcp://*:7100");
    assert_int_equal(c.engine_threads, 3);
    assert_int_equal(c.fsync_delay_ms, 1);
    assert_string_equal(c.nodes[0].pub_endpoint, "tcp://node-0.example:7101");
    assert_true(c.cluster_id == 0xc0ffee1234abcdULL);
}

/* cluster/id: hex, 1-16 digits, not zero; absent is 0 ("learn it from the map"). */
static void test_cluster_id(void **state)
{
    (void)state;
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_parse(good, &c, err, sizeof err), 0);
    assert_true(c.cluster_id == 0);
    const char *bad[] = {"0", "00", "xyz", "12345678901234567", "-1", "0x12", "12 34", "\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char with[64];
        snprintf(with, sizeof with, "cluster\n    id = %s\n", bad[i]);
        expect_bad("cluster\n", with, "cluster/id");
    }
}

/* A key or section written twice is refused with its path and both lines: zconfig kept
 * both and every lookup took the first, so `tick_ms = 5` then `tick_ms = 50` ran on 5
 * without a word. The same name under two sections is two keys, and a file ends with the
 * error naming it and the lines. */
static void test_key_twice(void **state)
{
    (void)state;
    /* good: node 1-5, raft 6-10 (tick_ms on 7), storage 11-12, cluster 13 */
    expect_bad("    election_ticks", "    tick_ms = 50\n    election_ticks",
               "line 8: raft/tick_ms is written twice (lines 7 and 8)");
    expect_bad("    shards = 4\n", "    shards = 4\n    shards = 8\n",
               "cluster/shards is written twice (lines 14 and 15)");
    /* a section again: its keys would have been skipped for the first one's */
    expect_bad("cluster\n", "raft\n    check_quorum = 0\ncluster\n",
               "line 13: raft is written twice (lines 6 and 13)");
    expect_bad("            endpoint = \"tcp://127.0.0.1:7100\"\n",
               "            endpoint = \"tcp://127.0.0.1:7100\"\n"
               "            endpoint = \"tcp://127.0.0.1:7101\"\n",
               "cluster/nodes/0/endpoint is written twice (lines 18 and 19)");
    expect_bad("        3\n", "        2\n", "cluster/nodes/2 is written twice (lines 21 and 23)");
    /* one name in two sections is two keys (id: node/id and cluster/id; endpoint under
     * node and every cluster/nodes/N) */
    char text[4096], err[256] = "";
    node_config_t c;
    const char *at = strstr(good, "cluster\n");
    snprintf(text, sizeof text, "%.*scluster\n    id = abc\n%s", (int)(at - good), good,
             at + strlen("cluster\n"));
    if (node_config_parse(text, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(c.id, 1);
    assert_true(c.cluster_id == 0xabc);
    /* from a file: the file, the path and both lines in one line */
    char path[] = "/tmp/test_node_config_twice.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *twice = "node\n    id = 1\n    id = 2\n";
    assert_int_equal(write(fd, twice, strlen(twice)), (ssize_t)strlen(twice));
    close(fd);
    char ferr[512] = "";
    assert_int_equal(node_config_load(path, &c, ferr, sizeof ferr), SHOAL_EINVAL);
    unlink(path);
    if (!strstr(ferr, path) || !strstr(ferr, "node/id is written twice (lines 2 and 3)") ||
        strchr(ferr, '\n'))
        fail_msg("\"%s\" does not name the file, node/id and lines 2 and 3 in one line", ferr);
}

/* The form zconfig_save writes (`shoalctl cluster add-node` copies a node's config with
 * it: sections as `node = ""`, every value quoted) loads. */
static void test_saved_by_zconfig(void **state)
{
    (void)state;
    zconfig_t *root = zconfig_str_load(good);
    assert_non_null(root);
    zconfig_put(root, "node/id", "7");
    zconfig_put(root, "node/join", "1");
    char *text = zconfig_str_save(root);
    zconfig_destroy(&root);
    assert_non_null(strstr(text, "node = \"\""));
    node_config_t c;
    char err[256] = "";
    int rc = node_config_parse(text, &c, err, sizeof err);
    free(text);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(c.id, 7);
    assert_true(c.join);
}

/* Endpoints must be tcp://HOST:PORT with a port of 1-65535: ZeroMQ would bind or connect
 * port 99999 as 34463. A bind to every interface (tcp://\*:PORT) is fine. */
static void test_endpoints(void **state)
{
    (void)state;
    expect_bad("127.0.0.1:7110\"\n    pub", "127.0.0.1:99999\"\n    pub",
               "node/endpoint = \"tcp://127.0.0.1:99999\"");
    expect_bad("127.0.0.1:7110\"\n    pub", "127.0.0.1:0\"\n    pub", "node/endpoint");
    expect_bad("127.0.0.1:7110\"\n    pub", "127.0.0.1\"\n    pub", "node/endpoint");
    expect_bad("tcp://127.0.0.1:7111", "127.0.0.1:7111", "node/pub_endpoint");
    expect_bad("tcp://127.0.0.1:7111", "tcp://:7111", "node/pub_endpoint");
    expect_bad("tcp://127.0.0.1:7111", "ipc:///tmp/n1", "node/pub_endpoint");
    expect_bad("tcp://127.0.0.1:7120", "tcp://127.0.0.1:70000", "cluster/nodes/2/endpoint");
    expect_bad("            endpoint = \"tcp://127.0.0.1:7130\"\n",
               "            endpoint = \"tcp://127.0.0.1:7130\"\n"
               "            pub_endpoint = \"tcp://127.0.0.1:7a31\"\n",
               "cluster/nodes/3/pub_endpoint");
    char text[4096], err[256] = "";
    node_config_t c;
    const char *p = strstr(good, "tcp://127.0.0.1:7110");
    snprintf(text, sizeof text, "%.*stcp://*:65535%s", (int)(p - good), good,
             p + strlen("tcp://127.0.0.1:7110"));
    if (node_config_parse(text, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.endpoint, "tcp://*:65535");
}

/* Loads path with stdout sent to a temporary file; returns how many bytes reached it. */
static long load_capturing_stdout(const char *path, int *rc, char *err, size_t errlen)
{
    char out[] = "/tmp/test_node_config_out.XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    assert_true(saved >= 0 && dup2(fd, 1) == 1);
    node_config_t c;
    *rc = node_config_load(path, &c, err, errlen);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    long n = (long)lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(out);
    return n;
}

/* A syntax error is one line naming the file and the line, and nothing reaches stdout
 * (zconfig_load would print the offending bytes there). */
static void test_syntax_error(void **state)
{
    (void)state;
    const char *bad[] = {
        "node\n    id = 1\n   endpoint = \"tcp://127.0.0.1:7110\"\n", /* 3 spaces */
        "node\n    id = 1\n    endpoint = \"tcp://127.0.0.1:7110\n",  /* no closing quote */
        "node\n    id = 1\n    endpoint \"tcp://127.0.0.1:7110\"\n",  /* no = */
        "node\n    id = 1\n    data_dir = \"/tmp/x\" y\n",            /* text after a value */
        "node\n    id = 1\n\tdata_dir = \"/tmp/x\"\n",                /* a tab */
        "node\n    id = 1\n            data_dir = \"/tmp/x\"\n",      /* two levels deeper */
        "node\n    id = 1\n= 5\n",                                    /* no name */
    };
    char path[] = "/tmp/test_node_config_cfg.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        char err[512] = "";
        int rc;
        long out = load_capturing_stdout(path, &rc, err, sizeof err);
        if (out != 0)
            fail_msg("case %zu: %ld bytes on stdout", i, out);
        assert_int_equal(rc, SHOAL_EINVAL);
        if (!strstr(err, path) || !strstr(err, "line 3") || strchr(err, '\n'))
            fail_msg("case %zu: \"%s\" does not name the file and line 3 in one line", i, err);
        node_config_t c;
        assert_int_equal(node_config_parse(bad[i], &c, err, sizeof err), SHOAL_EINVAL);
        assert_non_null(strstr(err, "line 3"));
    }
    unlink(path);
}

static void test_missing_file(void **state)
{
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_load("/nonexistent/shoal.cfg", &c, err, sizeof err), SHOAL_EIO);
    assert_non_null(strstr(err, "/nonexistent/shoal.cfg"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),           cmocka_unit_test(test_bad),
        cmocka_unit_test(test_balance_off),    cmocka_unit_test(test_join),
        cmocka_unit_test(test_read_mode),      cmocka_unit_test(test_example_files),
        cmocka_unit_test(test_missing_file),   cmocka_unit_test(test_apply_threads),
        cmocka_unit_test(test_engine_threads), cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_every_key),      cmocka_unit_test(test_saved_by_zconfig),
        cmocka_unit_test(test_endpoints),      cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_cluster_id),     cmocka_unit_test(test_key_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
