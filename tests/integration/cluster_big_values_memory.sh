#!/usr/bin/env bash
# cluster_big_values_memory.sh - the Raft core's in-memory log is bounded by bytes, not only
# by counts: 8 clients write values of 1 MB for 10 s to a 3-node, 1-shard cluster with
# storage/snapshot_trailing_bytes = 4 MiB (a mark is then due past 8 MiB of entries), and
# every node's RSS must stay well below what keeping every entry costs. Before, a replica
# kept every entry after its last mark (taken every 10,000 entries or 60 s) plus 50,000
# behind it: ~200 entries of 1 MB stayed in every node's memory (and 0.9-1.2 GiB RSS after
# ~640 of them), and idle nodes never gave them back.
source "$(dirname "$0")/cluster_lib.sh"
# A measurement (label slow): RSS under ASan is the sanitizer's, and a loaded host moves it.
if ldd "$BUILD/actors/shoald" 2>/dev/null | grep -q libasan; then
    echo "cluster_big_values_memory: skipped under ASan"
    exit 77
fi

cl_up 3 1 3
for i in 0 1 2; do ctl cluster stop-node --dir "$DIR" "$i" >/dev/null; done
for i in 0 1 2; do
    sed -i 's/^storage$/storage\n    snapshot_trailing_bytes = 4194304/' "$DIR/node-$i.cfg"
    grep -q "snapshot_trailing_bytes = 4194304" "$DIR/node-$i.cfg" ||
        { echo "FAIL: config of node $i"; FAIL=1; }
    ctl cluster start-node --dir "$DIR" "$i" >/dev/null || { echo "FAIL: restart node $i"; FAIL=1; }
done
leader_of 0 >/dev/null

rss() { status_py "print(' '.join(str(n.get('rss_bytes', 0) // 1048576) for n in sorted(st['nodes'], key=lambda n: n['id'])))"; }
sleep 2
echo "RSS before (MiB): $(rss)"
ctl --timeout 30000 bench put --clients 8 --duration 10 --value-size 1000000 --keys 64 >"$DIR/bench.out" 2>&1
rc=$?
tail -2 "$DIR/bench.out"
[ "$rc" = 0 ] || { echo "FAIL: bench exited $rc"; FAIL=1; }
ops=$(sed -n 's/^put: \([0-9]*\) ops.*/\1/p' "$DIR/bench.out")
# the writes must be enough to tell: at least 40 MB through the log (a Debug build on a
# loaded host writes 60-100 in 10 s; the old code then held 190-200 MiB per node)
[ "${ops:-0}" -ge 40 ] || { echo "FAIL: only ${ops:-0} writes of 1 MB in 10 s (need 40)"; FAIL=1; }
sleep 3 # a metrics interval (1 s) and the marks due after the last writes
after=$(rss)
echo "RSS after $ops writes of 1 MB (MiB): $after"
# Bound: the daemon's own base (~20-40 MiB), the engine's memtables (at most 64 MiB of the
# engine's budget) and up to ~16 MiB of log (8 MiB due for a mark + 4 MiB behind it);
# the old code holds every entry (>= 100 MiB more here).
LIMIT_MIB=${LIMIT_MIB:-160}
for v in $after; do
    [ "$v" -gt 0 ] || { echo "FAIL: no RSS reported ($after)"; FAIL=1; }
    [ "$v" -le "$LIMIT_MIB" ] || { echo "FAIL: a node's RSS is $v MiB (limit $LIMIT_MIB)"; FAIL=1; }
done
up=$(status_py "print(sum(1 for n in st['nodes'] if n['up']))")
[ "$up" = 3 ] || { echo "FAIL: $up of 3 nodes up after the writes"; FAIL=1; }
size=$(ctl scan --limit 1 | cut -f2 | wc -c)
[ "$size" = 1000001 ] || { echo "FAIL: a 1 MB value read back as $size bytes"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "cluster_big_values_memory: ok"
exit "$FAIL"
