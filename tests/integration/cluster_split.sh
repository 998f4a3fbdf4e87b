#!/usr/bin/env bash
# cluster_split.sh - add-shard online (docs/ARCHITECTURE.md, "Adding a shard"): move_writer
# keeps 16 puts in flight through libshoal, split_scanner keeps 8 scans and batches in
# flight, and a loop of `shoalctl scan` runs (no scan or batch may fail: one the broker
# ends because a split changed the shards is retried whole by libshoal) while
#   1. `add-shard` splits the shard with the most ring points, and the source's leader is
#      killed (SIGKILL) right after the split was recorded, then restarted;
#   2. the new shard is split again as soon as the first split is done (exit 3 while it is
#      still open);
#   3. shard 1 is split while one of its followers is down, and the source's log is
#      truncated behind a snapshot before that node returns: its source replica skips the
#      SPLIT (it installs a snapshot), so its replica of the new shard starts empty and is
#      filled by the new shard's leader (a snapshot); at the end it is made that shard's
#      leader and the scans must return the same keys and values as before;
# then every acknowledged write must read back with its value, `scan` must return each key
# once, `status` must show the three new shards with a leader and the map version moved by
# 6 (three splits recorded, three closed), and bad add-shard input must get exit 2.
source "$(dirname "$0")/cluster_lib.sh"

# leader balancing off: step 4 makes node F lead shard 4 and checks that it does
cl_up 3 2 3 --balance-leaders off
# no trailing entries behind a snapshot: a node that was down must install one (step 3)
for i in 0 1 2; do ctl cluster stop-node --dir "$DIR" "$i" >/dev/null; done
for i in 0 1 2; do
    sed -i 's/^storage$/storage\n    snapshot_trailing_entries = 0/' "$DIR/node-$i.cfg"
    ctl cluster start-node --dir "$DIR" "$i" >/dev/null || { echo "FAIL: restart node $i"; FAIL=1; }
done

# Waits until shard $1 is listed with a leader and the map reached version $2.
wait_serving() {
    local end=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$end" ]; do
        status_py "sys.exit(0 if st['map_version'] >= $2 and any(s['id'] == $1 and s['leader'] is not None for s in st['shards']) else 1)" \
            2>/dev/null && return 0
        sleep 0.2
    done
    echo "FAIL: shard $1 has no leader at map version >= $2"; ctl status; FAIL=1
}

for _ in $(seq 1 100); do
    status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) else 1)" 2>/dev/null && break
    sleep 0.2
done
V0=$(map_version)

STOP=$DIR/stop-writer
MWPID=
SCPID=
SSPID=
stop_writer() {
    touch "$STOP" 2>/dev/null
    [ -n "$MWPID" ] && kill "$MWPID" 2>/dev/null
    [ -n "$SSPID" ] && kill "$SSPID" 2>/dev/null
    [ -n "$SCPID" ] && kill "$SCPID" 2>/dev/null
    cl_cleanup
}
trap stop_writer EXIT
"$BUILD/tests/move_writer" "$SHOAL_BROKER" "$STOP" 16 >"$DIR/move_writer.out" 2>&1 &
MWPID=$!
# scans across every shard throughout the splits; each one that fails is logged
scan_loop() {
    local n=0
    while [ ! -e "$STOP" ] && [ -d "$DIR" ]; do
        n=$((n + 1))
        ctl scan --timeout 15000 --prefix m --limit 2000 >/dev/null 2>"$DIR/scan.err" ||
            { echo "scan $n: exit $?: $(cat "$DIR/scan.err")" >>"$DIR/scan-failures"; }
        echo "$n" >"$DIR/scan-count"
    done
}
scan_loop &
SCPID=$!
"$BUILD/tests/split_scanner" "$SHOAL_BROKER" "$STOP" 8 >"$DIR/split_scanner.out" 2>&1 &
SSPID=$!
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

# ---- 3. a split while a follower of the source is down --------------------------------
L1=$(leader_of 1)
F=$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$L1" | head -n 1)
ctl cluster stop-node --dir "$DIR" --kill "$F" >/dev/null
# node $F may have led the metadata group: exit 3 (not reachable, no leader yet) is retried
# as long as the map shows no shard 4 (a retry after an applied split would split again)
for _ in $(seq 1 100); do
    out=$(ctl add-shard --json 1 2>&1)
    rc=$?
    [ "$rc" = 3 ] || break
    sleep 0.2
    status_py "sys.exit(0 if any(s['id'] == 4 for s in st['shards']) else 1)" 2>/dev/null && rc=0 && break
done
[ "$rc" = 0 ] || { echo "FAIL: add-shard 1 with node $F down: exit $rc: $out"; FAIL=1; }
wait_serving 4 $((V0 + 6)) # two of three voters elect, the split closes without node $F
sleep 0.5
# the nodes that are up snapshot shard 1 (exit 3: node $F is not reachable), so node $F
# must install one and skip the SPLIT; shard 4's leader has no snapshot file yet and takes
# one when node $F first needs it
ctl snapshot 1 >/dev/null 2>&1
sleep 1
ctl cluster start-node --dir "$DIR" "$F" >/dev/null || { echo "FAIL: restart node $F"; FAIL=1; }
caught_up() { # node $F's replica of shard $1 matches the leader's commit
    status_py "s=[s for s in st['shards'] if s['id']==$1][0]; m=[r['match'] for r in s['replicas'] if r['node']==$F]; sys.exit(0 if m and m[0] > 0 and m[0] + 2000 >= s['commit'] else 1)" 2>/dev/null
}
for _ in $(seq 1 100); do caught_up 4 && caught_up 1 && break; sleep 0.2; done
caught_up 4 || { echo "FAIL: node $F's replica of shard 4 did not catch up"; ctl status; FAIL=1; }
grep -q "shard 1: installed snapshot" "$DIR/logs/node-$F.log" ||
    { echo "FAIL: node $F's shard 1 did not install a snapshot"; FAIL=1; }
grep -q "shard 4: installed snapshot" "$DIR/logs/node-$F.log" ||
    { echo "FAIL: node $F's shard 4 did not install a snapshot"; FAIL=1; }
grep -q "shard 1: SPLIT at index" "$DIR/logs/node-$F.log" &&
    { echo "FAIL: node $F applied shard 1's SPLIT (it should have skipped it)"; FAIL=1; }

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
wait "$SCPID"
SCPID=
wait "$SSPID" || { echo "FAIL: split_scanner:"; cat "$DIR/split_scanner.out"; FAIL=1; }
SSPID=
grep "^split_scanner:" "$DIR/split_scanner.out"
echo "scans during the splits: $(cat "$DIR/scan-count" 2>/dev/null || echo 0), failed: $(cat "$DIR/scan-failures" 2>/dev/null | wc -l)"
[ -s "$DIR/scan-failures" ] && { echo "FAIL: scans failed during the splits:"; head -5 "$DIR/scan-failures"; FAIL=1; }
[ "$(cat "$DIR/scan-count" 2>/dev/null || echo 0)" -ge 20 ] || { echo "FAIL: too few scans ran"; FAIL=1; }
cat "$DIR/move_writer.out"
scan_all() { # every "m" key into $DIR/$1, in pages of 10,000 (--from is inclusive)
    local from="" raw
    : >"$DIR/$1"
    while :; do
        ctl scan --prefix m ${from:+--from "$from"} --limit 10000 >"$DIR/page" 2>/dev/null ||
            { echo "FAIL: scan from '$from'"; FAIL=1; return; }
        raw=$(wc -l <"$DIR/page")
        [ -n "$from" ] && [ "$(head -n 1 "$DIR/page" | cut -f1)" = "$from" ] && sed -i 1d "$DIR/page"
        cat "$DIR/page" >>"$DIR/$1"
        [ "$raw" -lt 10000 ] && return
        from=$(tail -n 1 "$DIR/page" | cut -f1)
    done
}
scan_all scan
python3 - "$DIR" <<'PY' || FAIL=1
import sys
keys = []
for f in [sys.argv[1] + "/scan"]:
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
total=$(wc -l <"$DIR/scan")
[ -n "$acked" ] && [ "$total" -ge "$acked" ] ||
    { echo "FAIL: scan has $total keys, fewer than the $acked acknowledged"; FAIL=1; }
[ "$(map_version)" = $((V0 + 6)) ] || { echo "FAIL: map version $(map_version), want $((V0 + 6))"; FAIL=1; }
status_py "sys.exit(0 if sorted(s['id'] for s in st['shards'] if s['leader'] is not None) == [0, 1, 2, 3, 4] else 1)" ||
    { echo "FAIL: status does not show shards 0-4 with a leader"; ctl status; FAIL=1; }
# node $F (filled by snapshot) leads shard 4: the same keys and values must come back
end=$((SECONDS + 45))
while [ "$SECONDS" -lt "$end" ]; do
    [ "$(leader_of 4)" = "$F" ] && break
    ctl transfer-leader 4 "$F" >/dev/null 2>&1
    sleep 0.2
done
[ "$(leader_of 4)" = "$F" ] || { echo "FAIL: node $F does not lead shard 4"; FAIL=1; }
scan_all rescan
cmp -s "$DIR/scan" "$DIR/rescan" ||
    { echo "FAIL: with node $F leading shard 4 the scan differs"; diff "$DIR/scan" "$DIR/rescan" | head -5; FAIL=1; }
for i in 0 1 2; do
    grep -q "SPLIT at index" "$DIR/logs/node-$i.log" || { echo "FAIL: node $i never applied a SPLIT"; FAIL=1; }
done
[ "$FAIL" = 0 ] && echo "cluster_split: OK"
exit "$FAIL"
