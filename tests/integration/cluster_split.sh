#!/usr/bin/env bash
# cluster_split.sh - add-shard online (docs/ARCHITECTURE.md, "Adding a shard"): move_writer
# keeps 32 puts in flight through libshoal while
#   1. `add-shard` splits the shard with the most ring points, and the source's leader is
#      killed (SIGKILL) right after the split was recorded, then restarted;
#   2. the new shard is split again as soon as the first split is done (exit 3 while it is
#      still open);
# then every acknowledged write must read back with its value, `scan` must return each key
# once, `status` must show both new shards with a leader and the map version moved by 4
# (two splits recorded, two closed), and bad add-shard input must get exit 2.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 3 2 3

status_py() { ctl status --json | python3 -c "import json,sys; st=json.load(sys.stdin); $1"; }
leader_of() { status_py "print([s['leader'] for s in st['shards'] if s['id']==$1][0])"; }
map_version() { status_py "print(st['map_version'])"; }
# Waits until shard $1 is listed with a leader and the map reached version $2.
wait_serving() {
    for _ in $(seq 1 150); do
        status_py "sys.exit(0 if st['map_version'] >= $2 and any(s['id'] == $1 and s['leader'] >= 0 for s in st['shards']) else 1)" \
            2>/dev/null && return 0
        sleep 0.2
    done
    echo "FAIL: shard $1 has no leader at map version >= $2"; ctl status; FAIL=1
}

for _ in $(seq 1 100); do
    status_py "sys.exit(0 if all(s['leader'] >= 0 for s in st['shards']) else 1)" 2>/dev/null && break
    sleep 0.2
done
V0=$(map_version)

STOP=$DIR/stop-writer
MWPID=
stop_writer() {
    touch "$STOP" 2>/dev/null
    [ -n "$MWPID" ] && kill "$MWPID" 2>/dev/null
    cl_cleanup
}
trap stop_writer EXIT
"$BUILD/tests/move_writer" "$SHOAL_BROKER" "$STOP" 32 >"$DIR/move_writer.out" 2>&1 &
MWPID=$!
sleep 1.5

# ---- 1. split, and kill the source's leader at once ----------------------------------
out=$(ctl add-shard --json) || { echo "FAIL: add-shard: $out"; FAIL=1; }
G=$(echo "$out" | python3 -c "import json,sys; print(json.load(sys.stdin)['shard'])")
S=$(echo "$out" | python3 -c "import json,sys; print(json.load(sys.stdin)['source'])")
[ "$G" = 2 ] || { echo "FAIL: the new shard is $G, want 2 (highest id + 1)"; FAIL=1; }
LS=$(leader_of "$S")
if [ "$LS" -ge 0 ] 2>/dev/null; then
    ctl cluster stop-node --dir "$DIR" --kill "$LS" >/dev/null
    sleep 1
    ctl cluster start-node --dir "$DIR" "$LS" >/dev/null || { echo "FAIL: restart node $LS"; FAIL=1; }
else
    echo "FAIL: source shard $S has no leader right after add-shard"; FAIL=1
fi
wait_serving "$G" $((V0 + 2))

# ---- 2. the new shard splits again ------------------------------------------------------
for _ in $(seq 1 100); do
    out=$(ctl add-shard --json "$G" 2>&1)
    rc=$?
    [ "$rc" = 3 ] || break # the first split is still closing: retry
    sleep 0.1
done
[ "$rc" = 0 ] || { echo "FAIL: add-shard $G: exit $rc: $out"; FAIL=1; }
G2=$(echo "$out" | python3 -c "import json,sys; print(json.load(sys.stdin)['shard'])" 2>/dev/null)
[ "$G2" = 3 ] || { echo "FAIL: the second new shard is '$G2', want 3"; FAIL=1; }
wait_serving 3 $((V0 + 4))
sleep 1 # writes land on the new shards too

# ---- bad input ----------------------------------------------------------------------------
want 2 "add-shard of an unknown shard" ctl add-shard 77
want 2 "add-shard of a bad number" ctl add-shard x
want 2 "add-shard with two shards" ctl add-shard 0 1
want 2 "add-shard of the metadata group" ctl add-shard 4294967295
err=$(ctl add-shard 77 2>&1 >/dev/null)
[ "$(echo "$err" | wc -l)" = 1 ] && echo "$err" | grep -q "no shard 77" ||
    { echo "FAIL: unclear error for add-shard 77: '$err'"; FAIL=1; }

# ---- every acknowledged write, once -------------------------------------------------------
touch "$STOP"
wait "$MWPID" || { echo "FAIL: move_writer: $(cat "$DIR/move_writer.out")"; FAIL=1; }
MWPID=
cat "$DIR/move_writer.out"
for lane in $(seq 0 31); do
    ctl scan --prefix "m$lane-" --limit 10000 >"$DIR/scan-$lane" || { echo "FAIL: scan m$lane-"; FAIL=1; }
done
python3 - "$DIR" <<'PY' || FAIL=1
import sys, glob
keys = []
for f in glob.glob(sys.argv[1] + "/scan-*"):
    for line in open(f):
        k, v = line.rstrip("\n").split("\t")
        lane, n = k[1:].split("-")
        if v != f"value-{lane}-{n}":
            print(f"FAIL: scan: {k} = {v}"); sys.exit(1)
        keys.append(k)
dups = len(keys) - len(set(keys))
if dups or not keys:
    print(f"FAIL: scan returned {len(keys)} keys, {dups} more than once"); sys.exit(1)
print(f"scan: {len(keys)} keys, each once")
PY
acked=$(sed -n 's/^move_writer: \([0-9]*\) writes acknowledged.*/\1/p' "$DIR/move_writer.out")
total=$(cat "$DIR"/scan-* | wc -l)
[ -n "$acked" ] && [ "$total" -ge "$acked" ] ||
    { echo "FAIL: scan has $total keys, fewer than the $acked acknowledged"; FAIL=1; }
[ "$(map_version)" = $((V0 + 4)) ] || { echo "FAIL: map version $(map_version), want $((V0 + 4))"; FAIL=1; }
status_py "sys.exit(0 if sorted(s['id'] for s in st['shards'] if s['leader'] >= 0) == [0, 1, 2, 3] else 1)" ||
    { echo "FAIL: status does not show shards 0-3 with a leader"; ctl status; FAIL=1; }
for i in 0 1 2; do
    grep -q "SPLIT at index" "$DIR/logs/node-$i.log" || { echo "FAIL: node $i never applied a SPLIT"; FAIL=1; }
done
[ "$FAIL" = 0 ] && echo "cluster_split: OK"
exit "$FAIL"
