# node_lib.sh - helpers for the shoald integration tests (sourced): a cluster of N nodes on
# 127.0.0.1 with random free ports in a temporary directory, started and stopped by pid.
#   cluster_init N SHARDS [extra ZPL lines for the raft section]
#   node_start I / node_stop I (SIGTERM, waits) / node_kill I (SIGKILL) / node_pause I / node_resume I
#   client ARGS...   node_client against every node's endpoint
# Every test calls cluster_cleanup on exit (trap), which kills what it started and removes
# the directory.
set -uo pipefail
# The tests run python3 dozens of times (JSON of `status --json`); a pyenv shim first on
# PATH costs 0.4 s per call idle and 1.5 s under a test's load, Debian's own 0.06 s.
[ -x /usr/bin/python3 ] && python3() { /usr/bin/python3 "$@"; }

BUILD=${SHOAL_BUILD_DIR:?set SHOAL_BUILD_DIR to the build directory}
SHOALD=${SHOALD:-$BUILD/actors/shoald}
NODE_CLIENT=${NODE_CLIENT:-$BUILD/tests/node_client}
source "$(dirname "${BASH_SOURCE[0]}")/ports_lib.sh"
DIR=$(mktemp -d /tmp/shoal-node-test.XXXXXX)
declare -a PIDS PORTS
N=0

# COUNT distinct free ports below the kernel's ephemeral range (32768+), so that no
# outgoing connection of another process takes one between this check and the node's
# bind. One call for all: ports drawn one call at a time could repeat (a node then failed
# to bind its neighbour's port).
free_ports() {
    python3 - "$1" "$(test_ports)" <<'PY'
import random, socket, sys
want, got = int(sys.argv[1]), []
lo, hi = (int(x) for x in sys.argv[2].split("-"))
while len(got) < want:
    p = random.randrange(lo, hi)
    if p in got:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); got.append(p)
    except OSError: pass
    finally: s.close()
print(" ".join(map(str, got)))
PY
}

cluster_cleanup() {
    for i in "${!PIDS[@]}"; do
        [ -n "${PIDS[$i]}" ] && kill -CONT "${PIDS[$i]}" 2>/dev/null || true
        [ -n "${PIDS[$i]}" ] && kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    # a sanitizer report in any node's log fails the test, whatever the client saw
    local bad=0
    if grep -l -E "runtime error|AddressSanitizer|LeakSanitizer" "$DIR"/node-*.log 2>/dev/null; then
        grep -h -A30 -E "runtime error|AddressSanitizer|LeakSanitizer" "$DIR"/node-*.log | head -60
        bad=1
    fi
    if [ "${KEEP_DIR:-0}" = 1 ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
    [ $bad = 0 ] || exit 1
}
trap cluster_cleanup EXIT

cluster_init() {
    N=$1
    local shards=$2 extra=${3:-}
    local ports
    read -r -a ports <<<"$(free_ports $((2 * N)))"
    for ((i = 0; i < N; i++)); do PORTS[$i]=${ports[$i]}; PORTS[$((i + 100))]=${ports[$((N + i))]}; done
    for ((i = 0; i < N; i++)); do
        {
            echo "node"
            echo "    id = $i"
            echo "    endpoint = \"tcp://127.0.0.1:${PORTS[$i]}\""
            echo "    pub_endpoint = \"tcp://127.0.0.1:${PORTS[$((i + 100))]}\""
            echo "    data_dir = \"$DIR/node-$i\""
            # two fsm actors, as on a host of 4+ CPUs: the default on a 2-CPU host is one,
            # which the cluster_* tests (cluster up, default config) run
            echo "    apply_threads = ${APPLY_THREADS:-2}"
            echo "raft"
            echo "    tick_ms = 10"
            echo "    election_ticks = ${ELECTION_TICKS:-50}"
            echo "    heartbeat_ticks = ${HEARTBEAT_TICKS:-5}"
            # leader balancing off: these tests find a group's leader and then act on it
            # (kill, pause, read its events); balancing would move it meanwhile. It is
            # tested on by cluster_balance, cluster_move, cluster_meta and chaos_cluster.
            echo "    balance_leaders = ${BALANCE_LEADERS:-0}"
            [ -n "$extra" ] && echo "$extra"
            echo "storage"
            echo "    fsync = \"batch\""
            echo "    snapshot_entries = ${SNAPSHOT_ENTRIES:-10000}"
            [ -n "${STORAGE_EXTRA:-}" ] && echo "$STORAGE_EXTRA"
            echo "cluster"
            echo "    shards = $shards"
            echo "    replicas = 3"
            echo "    nodes"
            for ((k = 0; k < N; k++)); do
                echo "        $k"
                echo "            endpoint = \"tcp://127.0.0.1:${PORTS[$k]}\""
                echo "            pub_endpoint = \"tcp://127.0.0.1:${PORTS[$((k + 100))]}\""
            done
        } >"$DIR/node-$i.cfg"
    done
    ENDPOINTS=$(for ((i = 0; i < N; i++)); do printf "tcp://127.0.0.1:%s," "${PORTS[$i]}"; done)
    ENDPOINTS=${ENDPOINTS%,}
}

node_start() {
    "$SHOALD" --config "$DIR/node-$1.cfg" 2>>"$DIR/node-$1.log" &
    PIDS[$1]=$!
}

node_stop() {
    kill -TERM "${PIDS[$1]}"
    local rc=0
    wait "${PIDS[$1]}" || rc=$?
    PIDS[$1]=""
    return $rc
}

node_kill() {
    kill -KILL "${PIDS[$1]}"
    wait "${PIDS[$1]}" 2>/dev/null || true
    PIDS[$1]=""
}

node_pause() { kill -STOP "${PIDS[$1]}"; }
node_resume() { kill -CONT "${PIDS[$1]}"; }

# CLIENT_NODE: the node a client asks first (start_all_stop_follower sets the leader, so
# that no request waits out an attempt at the stopped node, first in ENDPOINTS or not).
client() {
    "$NODE_CLIENT" --timeout "${CLIENT_TIMEOUT:-20000}" --attempt "${CLIENT_ATTEMPT:-1000}" \
        ${CLIENT_NODE:+--node "$CLIENT_NODE"} "$ENDPOINTS" "$@"
}

# C clients write N keys each (prefixes c1- .. cC-) into shard S at the same time; the test
# fails unless every write is acknowledged and then readable.
load_and_check() {
    local s=$1 c=$2 n=$3 pids="" k
    for ((k = 1; k <= c; k++)); do
        client load "$s" "c$k-" 0 "$n" >"$DIR/acks$k" &
        pids="$pids $!"
    done
    wait $pids
    for ((k = 1; k <= c; k++)); do
        [ "$(wc -l <"$DIR/acks$k")" = "$n" ] || fail "client $k: not every write acknowledged"
        client check "$s" "c$k-" "$DIR/acks$k" || fail "lost writes"
    done
}

# The node index that leads shard S (exits the test if none within the client's deadline).
leader_of() { client leader "$1"; }

# Starts every node, waits for shard S's leader and stops one of its followers: sets L (the
# leader) and D (the stopped follower).
start_all_stop_follower() {
    local i
    for ((i = 0; i < N; i++)); do node_start $i; done
    client wait-leaders "$1" || fail "no leader"
    L=$(leader_of "$1")
    D=$(((L + 1) % N))
    CLIENT_NODE=$L
    echo "stopping follower node $D"
    node_stop $D
}

# Gives every follower of leader L a disk whose log syncs take MS ms (storage/fsync_delay_ms),
# one follower at a time so that L keeps a quorum: stop, change its config, start, and
# write a key through shard 0 that needs it (the other follower is the one restarted next).
slow_follower_disks() {
    local l=$1 ms=$2 i
    for ((i = 0; i < N; i++)); do
        [ "$i" = "$l" ] && continue
        node_stop "$i" || fail "node $i did not stop cleanly"
        sed -i "s/^    fsync = \"batch\"\$/&\n    fsync_delay_ms = $ms/" "$DIR/node-$i.cfg"
        grep -q "fsync_delay_ms = $ms" "$DIR/node-$i.cfg" || fail "config of node $i not changed"
        node_start "$i"
        CLIENT_ATTEMPT=8000 client put 0 "warm-$i" v >/dev/null || fail "write after restarting node $i"
    done
}

fail() {
    echo "FAIL: $*" >&2
    for f in "$DIR"/node-*.log; do echo "--- $f (tail)"; tail -20 "$f"; done >&2
    exit 1
}
