#!/usr/bin/env bash
# cluster_drop_crash.sh - a node stopped while it deletes a replica the shard map moved away
# finishes the deletion at its next start (docs/ARCHITECTURE.md, "Online shard-map changes",
# placement.c reap_unplaced); test-only crash points (actors/failpoint.h) stop it there:
#   1. shard 0 moves from node 1 to node 3; node 1 exits after the drop record is durable
#      and before the folder is deleted (drop_before_delete);
#   2. shard 1 moves from node 2 to node 0; node 2 exits before it writes the drop record
#      (drop_before_record);
# each time the folder must still be there after the exit, gone after the restart (with the
# log line that says why), and every acknowledged write readable; the restarted nodes keep
# serving the shard they still hold.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 4 2 3 --balance-leaders off # shard s on nodes s, s+1, s+2 (mod 4)

N=0
put_some() { # $1 more keys k<n> = v<n>, one shoalctl put each, by 3 loops at once
    local from=$((N + 1)) to=$((N + $1)) j p pids=()
    N=$to
    for j in 0 1 2; do
        (
            for ((i = from + j; i <= to; i += 3)); do retry_put "k$i" "v$i"; done
            [ "$FAIL" = 0 ]
        ) &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || FAIL=1; done
}
retry_put() { # a put may meet an election after a node stopped: retried, must then succeed
    for _ in $(seq 1 20); do
        ctl put --timeout 5000 "$1" "$2" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    echo "FAIL: put $1 not acknowledged"
    FAIL=1
}
check_all() { # every key written so far reads back with its value
    ctl scan --prefix k --limit 100000 >"$DIR/scan" || { echo "FAIL: scan"; FAIL=1; return; }
    python3 - "$DIR/scan" "$N" "$1" <<'PY' || FAIL=1
import sys
seen = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip())
want = {f"k{i}": f"v{i}" for i in range(1, int(sys.argv[2]) + 1)}
bad = [k for k, v in want.items() if seen.get(k) != v]
print(f"{sys.argv[3]}: {len(want) - len(bad)} of {len(want)} writes readable")
if bad:
    print(f"FAIL: lost or wrong: {bad[:5]}"); sys.exit(1)
PY
}
node_pid() { cat "$DIR/pids/node-$1.pid"; }
wait_leaders() { # every shard has a leader (at most 20 s)
    for _ in $(seq 1 100); do
        status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) else 1)" 2>/dev/null && break
        sleep 0.2
    done
}

# Moves shard $1 from node $2 to node $3 with node $2 running under failpoint $4; checks
# that node $2 exits there with the shard's folder left, then that a restart deletes it.
crash_drop() {
    local shard=$1 from=$2 to=$3 fp=$4 pid folder
    folder=$DIR/node-$from/shard-$shard
    ctl cluster stop-node --dir "$DIR" "$from" >/dev/null
    SHOAL_FAILPOINT=$fp ctl cluster start-node --dir "$DIR" "$from" >/dev/null ||
        { echo "FAIL: start node $from"; FAIL=1; }
    pid=$(node_pid "$from")
    wait_leaders # elections settle
    put_some 50
    retry_admin move-replica "$shard" "$from" "$to"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "FAIL: node $from did not reach failpoint $fp in 30 s"; FAIL=1; return
    fi
    grep -q "failpoint $fp: exiting now" "$DIR/logs/node-$from.log" ||
        { echo "FAIL: node $from stopped, but not at failpoint $fp"; FAIL=1; }
    [ -d "$folder" ] || { echo "FAIL: $fp: the folder was gone before the restart"; FAIL=1; }
    put_some 50 # the other replicas serve on
    ctl cluster start-node --dir "$DIR" "$from" >/dev/null || { echo "FAIL: restart $from"; FAIL=1; }
    for _ in $(seq 1 100); do [ -d "$folder" ] || break; sleep 0.1; done
    [ -d "$folder" ] && { echo "FAIL: $fp: node $from kept $folder after its restart"; FAIL=1; }
    grep -q "shard $shard is not placed here (map version [0-9]*): its data, left by a stop" \
        "$DIR/logs/node-$from.log" || { echo "FAIL: $fp: no deletion line at start"; FAIL=1; }
    check_all "after $fp on node $from"
}

wait_leaders
put_some 50
crash_drop 0 1 3 drop_before_delete
crash_drop 1 2 0 drop_before_record
[ "$(replicas_of 0)" = "0 2 3" ] || { echo "FAIL: shard 0 on '$(replicas_of 0)'"; FAIL=1; }
[ "$(replicas_of 1)" = "0 1 3" ] || { echo "FAIL: shard 1 on '$(replicas_of 1)'"; FAIL=1; }
# with node 3 stopped, each shard's majority needs a restarted node (shard 0: nodes 0 and
# 2, shard 1: nodes 0 and 1): they still serve the shard they kept
ctl cluster stop-node --dir "$DIR" 3 >/dev/null
sleep 1
put_some 20
check_all "with node 3 stopped"
[ "$FAIL" = 0 ] && echo "PASS"
exit "$FAIL"
