#!/usr/bin/env bash
# cluster_big_values.sh - many clients writing values of 1 MB (the broker's limit) slow the
# cluster down to what the disks can sync, and nothing else: every write is answered
# within a 30 s timeout and every node stays up. Before, one loop turn's writes (48 MB) became one Raft ready, one log
# write of seconds and one envelope past the frame limit: followers dropped it with its
# heartbeats, nodes missed the broker's polls, leaders were elected over and over, and a
# 10 s benchmark of 96 clients completed 0 to 2 writes.
source "$(dirname "$0")/cluster_lib.sh"
# Not under ASan: its allocator makes a 1 MB write cost about a second of a node's time
# (8 clients already took 10 s per write and leaders changed), so the run would measure
# the sanitizer; test_node_transport covers the envelope split under it. Skipped (77).
if ldd "$BUILD/actors/shoald" 2>/dev/null | grep -q libasan; then
    echo "cluster_big_values: skipped under ASan"
    exit 77
fi

cl_up 3 1 3
leader_of 0 >/dev/null
term() { status_py "print([s['term'] for s in st['shards'] if s['id']==0][0])"; }
t0=$(term)
ctl --timeout 30000 bench put --clients 48 --duration 6 --value-size 1000000 --keys 64 >"$DIR/bench.out" 2>&1
rc=$?
tail -2 "$DIR/bench.out"
[ "$rc" = 0 ] || { echo "FAIL: bench exited $rc"; FAIL=1; }
ops=$(sed -n 's/^put: \([0-9]*\) ops.*/\1/p' "$DIR/bench.out")
errors=$(sed -n 's/^put: .* \([0-9]*\) errors$/\1/p' "$DIR/bench.out")
[ "${ops:-0}" -ge 12 ] || { echo "FAIL: ${ops:-0} writes of 1 MB in 6 s"; FAIL=1; }
[ "${errors:-1}" = 0 ] || { echo "FAIL: ${errors:-?} writes failed (30 s timeout)"; FAIL=1; }
# Leaders may still change when the host is starved for long (a loaded CI machine): shown,
# not asserted; a lost write or a node that stops answering is.
echo "shard 0 term before $t0, after $(term)"
up=$(status_py "print(sum(1 for n in st['nodes'] if n['up']))")
[ "$up" = 3 ] || { echo "FAIL: $up of 3 nodes up after the writes"; FAIL=1; }
size=$(ctl scan --limit 1 | cut -f2 | wc -c)
[ "$size" = 1000001 ] || { echo "FAIL: a 1 MB value read back as $size bytes"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "cluster_big_values: ok"
exit "$FAIL"
