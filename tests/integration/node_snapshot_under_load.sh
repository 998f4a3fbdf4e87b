#!/usr/bin/env bash
# node_snapshot_under_load.sh - a follower that needs a whole snapshot catches up while
# writes go on. Before, every snapshot taken during the transfer (here one per 200
# entries) replaced the one being sent and the transfer started over, so a lagging replica
# caught up only once the writes stopped.
source "$(dirname "$0")/node_lib.sh"
SNAPSHOT_ENTRIES=200 STORAGE_EXTRA="    snapshot_trailing_entries = 100
    snapshot_rate_kbps = 256" cluster_init 3 1
start_all_stop_follower 0
# ~900 KiB of state: a snapshot of four 256 KiB chunks, ~3.5 s at 256 KiB/s
big=$(head -c 1500 /dev/zero | tr '\0' x)
for b in $(seq 0 59); do
    args=()
    for k in $(seq 0 9); do args+=("b$b-$k" "$big$b"); done
    client batch 0 "${args[@]}" >/dev/null || fail "batch $b"
done
client load 0 s 0 500 >"$DIR/acks0" || fail "load"
# goes on for the whole catch-up (the binary itself in the background, so $W is its pid)
"$NODE_CLIENT" --timeout 20000 --attempt 1000 "$ENDPOINTS" load 0 w 0 1000000 >"$DIR/acks1" &
W=$!
trap 'kill -KILL $W 2>/dev/null; cluster_cleanup' EXIT
sleep 0.5
node_start $D
ok=0
SECONDS=0
while [ $SECONDS -lt 40 ]; do
    v=$("$NODE_CLIENT" --node $D --timeout 1000 "$ENDPOINTS" get 0 s499 stale)
    [ "$v" = v499 ] && { ok=1; break; }
    sleep 0.1
done
echo "node $D: caught up $ok after $SECONDS s"
kill -0 $W 2>/dev/null || fail "the writer stopped before node $D was checked"
kill -KILL $W
wait $W 2>/dev/null
[ $ok = 1 ] || fail "node $D did not catch up while writes went on ($(wc -l <"$DIR/acks1") writes)"
grep -q "installed snapshot" "$DIR/node-$D.log" || fail "node $D caught up without a snapshot"
v=$("$NODE_CLIENT" --node $D --timeout 1000 "$ENDPOINTS" get 0 b59-9 stale)
[ "$v" = "${big}59" ] || fail "a big value is missing on the caught-up node"
echo "PASS node_snapshot_under_load ($(wc -l <"$DIR/acks1") writes during the catch-up)"
