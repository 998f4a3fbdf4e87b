/* fuzz_cli.c - fuzz target for shoalctl's command-line decoding: the input is split into
 * arguments (at newlines and NULs) and handed to shoalctl's main (built here as
 * shoalctl_main) with SHOALCTL_DRY_RUN=1, so every command parses and checks its
 * arguments and then stops before contacting a broker or starting processes. Any argv
 * must end in exit 0 or 2 with no crash and no leak. shoalctl's stdout and stderr go to
 * /dev/null during each call (the one-line errors would flood the log); set
 * SHOAL_FUZZ_VERBOSE=1 to see them, and a sanitizer's report, when replaying a crash file. */
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int shoalctl_main(int argc, char **argv);

#define MAX_ARGS 24

static int null_fd = -1; /* where stdout and stderr go during a call, unless verbose */

static void init_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    setenv("SHOALCTL_DRY_RUN", "1", 1);
    unsetenv("SHOAL_BROKER");
    const char *v = getenv("SHOAL_FUZZ_VERBOSE");
    if (!v || strcmp(v, "1") != 0)
        null_fd = open("/dev/null", O_WRONLY);
}

/* Runs shoalctl with its output silenced; the fuzzer's own reports stay visible. */
static int run_quiet(int argc, char **argv)
{
    int out = -1, err = -1;
    if (null_fd >= 0) {
        fflush(stdout);
        fflush(stderr);
        out = dup(1);
        err = dup(2);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
    }
    int rc = shoalctl_main(argc, argv);
    if (null_fd >= 0) {
        fflush(stdout);
        fflush(stderr);
        dup2(out, 1);
        dup2(err, 2);
        close(out);
        close(err);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS + 2] = {"shoalctl"};
    int argc = 1;
    char *p = buf, *end = buf + size;
    while (p <= end && argc <= MAX_ARGS) {
        size_t n = strcspn(p, "\n");
        p[n] = 0;
        argv[argc++] = p;
        p += n + 1;
    }
    argv[argc] = NULL;
    int rc = run_quiet(argc, argv);
    assert(rc == 0 || rc == 2);
    (void)rc;
    free(buf);
    return 0;
}

size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t shoal_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    static const char *seeds[] = {
        "put\nkey\nvalue",
        "get\nkey\n--stale\n--json",
        "--broker\ntcp://127.0.0.1:7000\ndel\nk",
        "cas\nk\n--absent\nnew",
        "cas\nk\nold\nnew\n--timeout\n100",
        "scan\n--prefix\na\n--from\nb\n--to\nc\n--limit\n10",
        "batch\nput\na\n1\ndel\nb",
        "watch\n--prefix\np\n--from-index\n0:5,1:7\n--count\n3",
        "status\n--json",
        "top\n--interval\n100\n--count\n1",
        "events\n--no-follow",
        "transfer-leader\n1\n2",
        "add-node\n3\ntcp://a:1\ntcp://a:2",
        "move-replica\n0\n1\n2",
        "compact\n1",
        "drain-node\n2\n--plan\n--move-timeout\n30",
        "rebalance\n--json\n--plan",
        "cluster\nup\n--dir\n/tmp/x\n--nodes\n3\n--shards\n4\n--base-port\n9000",
        "cluster\nstop-node\n--dir\n/tmp/x\n1\n--kill",
        "bench\nmixed\n--clients\n8\n--duration\n1\n--keys\n100\n--read-percent\n90",
    };
    const char *s = seeds[i % (sizeof seeds / sizeof *seeds)];
    size_t n = strlen(s);
    if (n > cap)
        return 0;
    memcpy(buf, s, n);
    return n;
}
