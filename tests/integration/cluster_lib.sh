# cluster_lib.sh - helpers for the broker/shoalctl integration tests (sourced): a local
# cluster started with `shoalctl cluster up` in a temporary folder on a free port range,
# and stopped (plus anything left) on exit.
#   cl_up NODES SHARDS [REPLICAS [cluster up options]]   sets DIR, BASE, export SHOAL_BROKER
#   ctl ARGS...                      shoalctl
#   check DESC CMD...                runs CMD, fails the test on a non-zero exit
#   want CODE DESC CMD...            runs CMD, fails unless it exits CODE
set -uo pipefail
# The tests run python3 dozens of times (JSON of `status --json`); a pyenv shim first on
# PATH costs 0.4 s per call idle and 1.5 s under a test's load, Debian's own 0.06 s.
[ -x /usr/bin/python3 ] && python3() { /usr/bin/python3 "$@"; }
BUILD=${SHOAL_BUILD_DIR:?set SHOAL_BUILD_DIR to the build directory}
CTL=$BUILD/tools/shoalctl
BROKER_BIN=$BUILD/broker/shoal-broker
source "$(dirname "${BASH_SOURCE[0]}")/ports_lib.sh"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/shoal-cluster-test.XXXXXX")
FAIL=0

ctl() { "$CTL" "$@"; }

# Shard map and status helpers over `shoalctl status --json`.
status_py() { # runs python over `status --json` (as st) with the statements in $1
    ctl status --json | python3 -c "import json,sys; st=json.load(sys.stdin); $1"
}
map_version() { status_py "print(st['map_version'])"; }
# Shard $1's leader. A status taken during an election or a hand-over (leader balancing
# after a restart) shows none (null), so it asks again for up to 30 s before printing -1.
leader_of() {
    local l=-1
    for _ in $(seq 1 150); do
        l=$(status_py "l = [s['leader'] for s in st['shards'] if s['id']==$1][0]; print(-1 if l is None else l)" 2>/dev/null)
        [ "${l:--1}" -ge 0 ] 2>/dev/null && break
        sleep 0.2
    done
    echo "${l:--1}"
}
replicas_of() { # the replica nodes of shard $1, sorted
    status_py "print(' '.join(str(r['node']) for r in sorted([s for s in st['shards'] if s['id']==$1][0]['replicas'], key=lambda r: r['node'])))"
}
# Waits (at most $1 s) until the data shards' leaders are spread evenly over the nodes that
# lead any or are listed in $2 (counts differ by at most one) and have not changed for 3 s
# (leader balancing has nothing left to do). Prints the seconds until that steady state
# began; returns 1 if it timed out.
wait_balanced() {
    local deadline=$(( $(date +%s) + $1 )) start=$(date +%s) prev="" since=0 cur
    rm -f "$DIR/balanced"
    while [ "$(date +%s)" -lt "$deadline" ]; do
        cur=$(status_py "
nodes = set(int(x) for x in '${2:-}'.split())
lead = {s['id']: s['leader'] for s in st['shards']}
if any(l is None for l in lead.values()): print('none'); sys.exit()
nodes |= set(lead.values())
counts = [list(lead.values()).count(n) for n in nodes]
print(sorted(lead.items()) if max(counts) - min(counts) <= 1 else 'uneven')" 2>/dev/null)
        if [ -z "$cur" ]; then # status not answered this time (a busy machine): look again
            sleep 0.5
            continue
        fi
        if [ "$cur" != "$prev" ]; then
            prev=$cur
            since=$(date +%s)
        elif [ "$cur" != none ] && [ "$cur" != uneven ] && [ $(( $(date +%s) - since )) -ge 3 ]; then
            echo "$cur" >"$DIR/balanced" # the steady view, for checks on that same view
            echo $(( since - start ))
            return 0
        fi
        sleep 0.5
    done
    echo "FAIL: leaders not balanced and steady within $1 s: $(ctl status 2>&1)"
    return 1
}
# The waits below are budgets of time, not of polls: a poll's own cost varies with the
# host's load (it was 1.5 s under load with a pyenv python3) and must not set the budget.
wait_version() { # map version >= $1, within 90 s
    local end=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$end" ]; do
        [ "$(map_version 2>/dev/null || echo 0)" -ge "$1" ] && return 0
        sleep 0.2
    done
    echo "FAIL: map version $(map_version 2>/dev/null), want >= $1"
    FAIL=1
}
# Runs an admin command until it is not "retry" (exit 3/4): a map change in flight, or the
# metadata group electing after a node stopped.
retry_admin() {
    local rc
    for _ in $(seq 1 60); do
        ctl "$@" >"$DIR/admin.out" 2>&1
        rc=$?
        [ "$rc" = 3 ] || [ "$rc" = 4 ] || break
        sleep 0.25
    done
    [ "$rc" = 0 ] || { echo "FAIL: shoalctl $* (exit $rc): $(cat "$DIR/admin.out")"; FAIL=1; }
}

# A base port whose broker ports and first 16 node ports are free, in this test's port
# range (ports_lib.sh).
free_base() {
    python3 - "$(test_ports)" <<'PY'
import random, socket, sys
lo, hi = (int(x) for x in sys.argv[1].split("-"))
for _ in range(200):
    base = random.randrange(lo, hi - 131, 200 if hi - lo > 2000 else 1)  # below 32768+
    ok = True
    for p in [base, base + 1, base + 2, base + 50, base + 51] + list(range(base + 100, base + 132)):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
        if not ok:
            break
    if ok:
        print(base)
        break
PY
}

cl_cleanup() {
    "$CTL" cluster down --dir "$DIR" >/dev/null 2>&1 || true
    for f in "$DIR"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    if [ "$FAIL" != 0 ] || [ "${KEEP_DIR:-0}" = 1 ]; then
        echo "logs kept in $DIR/logs"; tail -n 5 "$DIR"/logs/*.log 2>/dev/null
        touch "$DIR/.kept"
    else
        rm -rf "$DIR"
    fi
}
trap cl_cleanup EXIT

# A ctest timeout kills the test's process tree, so no trap runs, and the cluster's daemons
# are not in that tree (`cluster up` starts them in sessions of their own): this guardian,
# outside the tree too (double fork), kills whatever still runs from $DIR once the test's
# shell is gone, and removes the folder. After a normal exit the trap has already done so
# and the guardian just ends (a kept folder is marked .kept and left alone).
cl_guard() {
    local shell=$$
    (setsid bash -c '
        while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
        [ -d "$2" ] && [ ! -e "$2/.kept" ] || exit 0
        for f in $(find "$2" -name "*.pid" 2>/dev/null); do kill -KILL "$(cat "$f")" 2>/dev/null; done
        for p in $(pgrep -f "$2/"); do kill -KILL "$p" 2>/dev/null; done
        rm -rf "$2"' cl_guard "$shell" "$DIR" </dev/null >/dev/null 2>&1 &)
}
cl_guard

cl_up() {
    BASE=$(free_base)
    local out
    out=$("$CTL" cluster up --dir "$DIR" --nodes "$1" --shards "$2" --replicas "${3:-3}" \
          --base-port "$BASE" --timeout 60000 "${@:4}") || { echo "FAIL: cluster up"; FAIL=1; exit 1; }
    SHOAL_BROKER=$(echo "$out" | tail -n 1)
    export SHOAL_BROKER
    [ "$SHOAL_BROKER" = "tcp://127.0.0.1:$BASE" ] || { echo "FAIL: cluster up printed '$out'"; FAIL=1; }
}

check() {
    local desc=$1; shift
    "$@" || { echo "FAIL: $desc (exit $?)"; FAIL=1; }
}

# An exit 3 ("unavailable, retry": an admin request that reached a node that no longer
# leads the metadata group while the broker learns the new leader) is retried for up to
# 10 s unless 3 is the code wanted; a command that keeps answering 3 still fails.
want() {
    local code=$1 desc=$2 got; shift 2
    for _ in $(seq 1 40); do
        "$@" >/dev/null 2>&1
        got=$?
        [ "$got" = 3 ] && [ "$code" != 3 ] || break
        sleep 0.25
    done
    [ "$got" = "$code" ] || { echo "FAIL: $desc: exit $got, want $code"; FAIL=1; }
}

# Restarts the broker from the cluster's own config, as `cluster up` started it.
broker_restart() {
    local pid
    pid=$(cat "$DIR/pids/broker.pid")
    kill -KILL "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    setsid "$BROKER_BIN" --config "$DIR/broker.cfg" >>"$DIR/logs/broker.log" 2>&1 </dev/null &
    echo $! >"$DIR/pids/broker.pid"
}

# ---- writers through a move, a split or a metadata move ---------------------------------
# cl_start_writers N starts N shell writers (keys w<id>-<n>; a key goes into
# $DIR/acked-<id> only after its put was acknowledged) and one pipelined libshoal writer
# (64 puts in flight, tests/move_writer.c). They stop when $STOP exists; whatever ends the
# script, they stop before the cluster is torn down.
STOP=$DIR/stop-writers
WPIDS=()
MWPID=
cl_writer() {
    local id=$1 i=0
    while [ ! -e "$STOP" ] && [ -d "$DIR" ]; do
        i=$((i + 1))
        if ctl put --timeout 15000 "w$id-$i" "value-$id-$i" 2>>"$DIR/writer-$id.err"; then
            echo "w$id-$i value-$id-$i" >>"$DIR/acked-$id"
        fi
    done
}
cl_stop_writers() {
    touch "$STOP" 2>/dev/null
    # -KILL: a writer past its STOP is reading back its writes, for hours against a dead
    # cluster (czmq turns SIGTERM into a flag that move_writer does not look at then)
    kill -KILL "${WPIDS[@]}" $MWPID 2>/dev/null
    cl_cleanup
}
cl_start_writers() {
    trap cl_stop_writers EXIT
    for w in $(seq 1 "$1"); do
        cl_writer "$w" &
        WPIDS+=($!)
    done
    "$BUILD/tests/move_writer" "$SHOAL_BROKER" "$STOP" 64 >"$DIR/move_writer.out" 2>&1 &
    MWPID=$!
}
# cl_check_writers WHAT stops the writers and checks that every write they had acknowledged
# reads back with its value (WHAT names the operations they ran through, for the summary).
cl_check_writers() {
    touch "$STOP"
    wait "${WPIDS[@]}"
    wait "$MWPID" || { echo "FAIL: the pipelined writer lost acknowledged writes"; FAIL=1; }
    cat "$DIR/move_writer.out"
    cat "$DIR"/acked-* >"$DIR/acked" 2>/dev/null
    ctl scan --prefix w --limit 100000 >"$DIR/scan" || { echo "FAIL: scan"; FAIL=1; }
    python3 - "$DIR/acked" "$DIR/scan" "$1" <<'PY' || FAIL=1
import sys
acked = dict(l.split() for l in open(sys.argv[1]) if l.strip())
seen = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if l.strip())
lost = [k for k, v in acked.items() if seen.get(k) != v]
print(f"writes acknowledged during {sys.argv[3]}: {len(acked)}, readable after: {len(acked) - len(lost)}")
if len(acked) < 50:
    print("FAIL: the writers acknowledged too few writes to mean anything"); sys.exit(1)
if lost:
    print(f"FAIL: {len(lost)} acknowledged writes lost, e.g. {lost[:5]}"); sys.exit(1)
PY
}
