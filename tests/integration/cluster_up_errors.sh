#!/usr/bin/env bash
# cluster_up_errors.sh - `shoalctl cluster` refusing and failing cleanly (docs/OPERATIONS.md,
# "A local cluster"; SPEC's command-line contract: exit 2 bad usage or input, 3 unavailable,
# one line on stderr):
#   - an unknown sub-command is named as such, --dir or not;
#   - a wrong count of arguments shows the usage of the sub-command given, not of `up`;
#   - a refused `up` (bad options) makes no folder and leaves no DIR/.lock;
#   - `up` on the ports of a running cluster is refused (exit 2, naming the port) before
#     anything starts, and the running cluster is left alone (once it printed "is up" and
#     the other cluster's endpoint while every process it started had died);
#   - `up` whose processes die at start (a stand-in shoald or shoal-broker from
#     SHOAL_BIN_DIR) fails with exit 3 naming the process and its log's last line, stops
#     what it started and leaves no pid file;
#   - `status` right after `up` on a stopped cluster's folder shows the indexes the nodes
#     loaded (it showed APPLIED 0 until the broker's next poll).
# Ports: a free base port (SHOAL_TEST_BASE_PORT to choose it; it and +200 are used).
source "$(dirname "$0")/cluster_lib.sh"
if [ -n "${SHOAL_TEST_BASE_PORT:-}" ]; then
    free_base() { echo "$SHOAL_TEST_BASE_PORT"; }
fi
T=$(mktemp -d /tmp/shoal-up-errors.XXXXXX) # the folders of the `up`s meant to fail
LPID=                                      # a stand-in listener on a node's port

up_errors_cleanup() {
    [ -n "$LPID" ] && kill "$LPID" 2>/dev/null
    # whatever an `up` under $T left running: by its pid files, then by its folder's path
    for f in "$T"/*/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    for p in $(pgrep -f "$T/"); do kill -KILL "$p" 2>/dev/null; done
    [ "$FAIL" != 0 ] && tail -n 3 "$T"/*/logs/*.log 2>/dev/null
    rm -rf "$T"
    cl_cleanup
}
trap up_errors_cleanup EXIT

# expect CODE TEXT DESC CMD...: CMD exits CODE with one line on stderr that holds TEXT
expect() {
    local code=$1 text=$2 desc=$3 err got
    shift 3
    err=$("$@" 2>&1 >/dev/null)
    got=$?
    [ "$got" = "$code" ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && grep -qF -- "$text" <<<"$err" ||
        { echo "FAIL: $desc: exit $got (want $code), stderr '$err' (want one line with '$text')"; FAIL=1; }
}
# no_live_pids FOLDER DESC: no pid file in FOLDER/pids claims a running process
no_live_pids() {
    for f in "$1"/pids/*.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f")
        kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null &&
            { echo "FAIL: $2: $f claims running pid $p"; FAIL=1; }
    done
    left=$(pgrep -f "$1/" | while read -r p; do
        grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null || echo "$p"; done)
    [ -z "$left" ] || { echo "FAIL: $2: processes of $1 still running: $left"; FAIL=1; }
}

# ---- an unknown sub-command, before any option is looked at ----------------------------
expect 2 "unknown sub-command 'bogus'" "cluster bogus" ctl cluster bogus
expect 2 "unknown sub-command 'bogus'" "cluster bogus --dir" ctl cluster bogus --dir "$T/none"

# ---- each sub-command's own usage ------------------------------------------------------
u_stop="(usage: cluster stop-node --dir DIR I|broker [--kill])"
u_start="(usage: cluster start-node --dir DIR I|broker)"
expect 2 "missing arguments $u_stop" "stop-node without a node" ctl cluster stop-node --dir "$T/none"
expect 2 "too many arguments $u_stop" "stop-node 0 1" ctl cluster stop-node --dir "$T/none" 0 1
expect 2 "missing arguments $u_start" "start-node without a node" ctl cluster start-node --dir "$T/none"
expect 2 "too many arguments $u_start" "start-node 0 1" ctl cluster start-node --dir "$T/none" 0 1
expect 2 "too many arguments (usage: cluster down --dir DIR)" "down extra" ctl cluster down --dir "$T/none" extra
expect 2 "too many arguments (usage: cluster add-node --dir DIR)" "add-node extra" \
    ctl cluster add-node --dir "$T/none" extra
expect 2 "too many arguments (usage: cluster up --dir DIR [--nodes N]" "up extra" ctl cluster up --dir "$T/none" extra
[ -e "$T/none" ] && { echo "FAIL: a refused command made $T/none"; FAIL=1; }

# ---- a refused `up` leaves no trace: no folder, no lock ----------------------------------
expect 2 "--replicas 3 needs at least as many nodes" "up --nodes 2 --replicas 3" \
    ctl cluster up --dir "$T/x" --nodes 2 --replicas 3
expect 2 "--replicas wants a number" "up --replicas 9" ctl cluster up --dir "$T/x" --replicas 9
expect 2 "--nodes wants a number" "up --nodes 0" ctl cluster up --dir "$T/x" --nodes 0
expect 2 "--fsync is batch, always or never" "up --fsync sometimes" ctl cluster up --dir "$T/x" --fsync sometimes
expect 2 "--base-port wants a number" "up --base-port 80" ctl cluster up --dir "$T/x" --base-port 80
expect 2 "too many arguments" "up with an argument" ctl cluster up --dir "$T/x" extra
[ -e "$T/x" ] && { echo "FAIL: refused ups left $T/x: $(ls -A "$T/x")"; FAIL=1; }
mkdir "$T/y"
expect 2 "--replicas 2 needs at least as many nodes" "up --nodes 1 --replicas 2 in an empty folder" \
    ctl cluster up --dir "$T/y" --nodes 1 --replicas 2
[ -z "$(ls -A "$T/y")" ] || { echo "FAIL: a refused up left in $T/y: $(ls -A "$T/y")"; FAIL=1; }

# ---- `up` on the ports of a running cluster ----------------------------------------------
cl_up 3 4 3
if [ -n "${SHOAL_TEST_BASE_PORT:-}" ]; then
    BASE2=$((BASE + 200))
else
    BASE2=$BASE
    while [ "$BASE2" = "$BASE" ]; do BASE2=$(free_base); done
fi
pids_a=$(cat "$DIR"/pids/*.pid)
out=$(ctl cluster up --dir "$T/b" --base-port "$BASE" 2>"$T/b.err")
code=$?
err=$(cat "$T/b.err")
[ "$code" = 2 ] && grep -q "port $BASE (the broker's client port) on 127.0.0.1 is already in use" <<<"$err" ||
    { echo "FAIL: up on a running cluster's ports: exit $code, stderr '$err'"; FAIL=1; }
[ -z "$out" ] || { echo "FAIL: up on a running cluster's ports printed '$out'"; FAIL=1; }
[ -e "$T/b" ] && { echo "FAIL: up refused for its ports left $T/b: $(ls -A "$T/b")"; FAIL=1; }
no_live_pids "$T/b" "up on a running cluster's ports"
for p in $pids_a; do
    kill -0 "$p" 2>/dev/null || { echo "FAIL: the running cluster's pid $p is gone"; FAIL=1; }
done
ctl status | grep -q "nodes 3/3 up" || { echo "FAIL: the running cluster after the clash: $(ctl status 2>&1)"; FAIL=1; }

# a node's port taken (by a listener that is no cluster) is refused the same way; python
# itself in the background, not cluster_lib's python3 function (a kill would miss it)
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open(sys.argv[2], "w").close(); time.sleep(60)' \
    "$((BASE2 + 104))" "$T/listening" &
LPID=$!
for _ in $(seq 100); do [ -e "$T/listening" ] && break; sleep 0.05; done
expect 2 "port $((BASE2 + 104)) (node 2's router port) on 127.0.0.1 is already in use" \
    "up with a node's port taken" ctl cluster up --dir "$T/c" --base-port "$BASE2"
kill "$LPID"
wait "$LPID" 2>/dev/null
LPID=
[ -e "$T/c" ] && { echo "FAIL: up refused for a node's port left $T/c"; FAIL=1; }

# ---- processes that die at start: exit 3, named with their log's last line -------------
mkdir -p "$T/bin-node" "$T/bin-broker"
printf '#!/bin/sh\necho "stand-in shoald: cannot start: no disk today" >&2\nexit 1\n' >"$T/bin-node/shoald"
printf '#!/bin/sh\necho "stand-in broker: cannot start: no sockets today" >&2\nexit 1\n' >"$T/bin-broker/shoal-broker"
chmod +x "$T/bin-node/shoald" "$T/bin-broker/shoal-broker"
ln -s "$(dirname "$CTL")/../broker/shoal-broker" "$T/bin-node/shoal-broker"
ln -s "$(dirname "$CTL")/../actors/shoald" "$T/bin-broker/shoald"
# up_dies BIN_DIR FOLDER WHO WANT: an `up` whose WHO dies must end with exit 3 and the line
# WANT (a regex), print nothing, and leave no pid file and no process
up_dies() {
    local bin=$1 f=$2 who=$3 want=$4 out code err
    out=$(SHOAL_BIN_DIR=$bin ctl cluster up --dir "$f" --base-port "$BASE2" --timeout 30000 2>"$f.err")
    code=$?
    err=$(cat "$f.err")
    [ "$code" = 3 ] && grep -Eq "$want" <<<"$err" ||
        { echo "FAIL: up whose $who: exit $code, stderr '$err'"; FAIL=1; }
    [ -z "$out" ] || { echo "FAIL: up whose $who printed '$out'"; FAIL=1; }
    [ -z "$(ls -A "$f/pids" 2>/dev/null)" ] || { echo "FAIL: up whose $who left pid files: $(ls "$f/pids")"; FAIL=1; }
    no_live_pids "$f" "up whose $who"
}
up_dies "$T/bin-node" "$T/f" "nodes die" \
    "^shoalctl cluster up: node [0-2] exited during start-up \(.*/logs/node-[0-2].log\): stand-in shoald: cannot start: no disk today$"
up_dies "$T/bin-broker" "$T/g" "broker dies (its nodes stopped)" \
    "^shoalctl cluster up: the broker exited during start-up \(.*/logs/broker.log\): stand-in broker: cannot start: no sockets today$"

# ---- `status` right after `up` again: what the nodes loaded, not APPLIED 0 -------------
# `up` waited for leaders only, which the broker learns from their election events (no
# indexes), while it took applied indexes only from a leader's poll answer or the nodes'
# progress events: a `status` right after showed APPLIED 0 (and COMMIT 0) until then. A
# slower poll (2 s, under the 3 s that shows a node down) and slower progress events (5 s)
# widen that moment to the whole `up`, so that a check right after it sees it every time.
for i in $(seq 1 20); do ctl put "k$i" "v$i" || { echo "FAIL: put k$i"; FAIL=1; }; done
sleep 1 # idle: every replica applied what its leader did, as status then shows it
indexes() { # "id:commit:applied" of every shard and the metadata group (status --json)
    python3 -c "import json,sys; st=json.load(sys.stdin)
print(' '.join(f\"{s['id']}:{s['commit']}:{s['applied']}\" for s in st['shards'] + [st['meta']]))"
}
before_down=$(ctl status --json | indexes)
check "cluster down" ctl cluster down --dir "$DIR"
sed -i '/^    request_timeout_ms = /a\    poll_ms = 2000' "$DIR/broker.cfg"
sed -i '/^    data_dir = /a\    metrics_ms = 5000' "$DIR"/node-[0-2].cfg
check "cluster up again" ctl cluster up --dir "$DIR" --timeout 60000 >/dev/null
after_up=$(ctl status --json | indexes)
python3 - "$before_down" "$after_up" <<'PY' || { echo "FAIL: status right after up again: $after_up (before down: $before_down)"; FAIL=1; }
import sys
before, after = ({g.split(":")[0]: [int(x) for x in g.split(":")[1:]] for g in a.split()}
                 for a in sys.argv[1:3])
assert before.keys() == after.keys() and len(before) == 5, (before, after)
for g, (commit, applied) in before.items():
    assert applied > 0 and after[g][0] >= commit and after[g][1] >= applied, (g, before[g], after[g])
PY

[ $FAIL = 0 ] && echo "cluster_up_errors: all checks passed"
exit $FAIL
