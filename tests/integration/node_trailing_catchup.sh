#!/usr/bin/env bash
# node_trailing_catchup.sh - a follower that misses a few thousand writes across several
# snapshots catches up by appends from the entries the leader keeps behind its snapshot
# (storage/snapshot_trailing_entries), without a whole-shard snapshot.
source "$(dirname "$0")/node_lib.sh"
SNAPSHOT_ENTRIES=200 STORAGE_EXTRA="    snapshot_trailing_entries = 5000" cluster_init 3 1
start_all_stop_follower 0
client load 0 t 0 2000 >"$DIR/acks" || fail "load"
sleep 1
grep -q "snapshot" "$DIR/node-$L.log" || true
node_start $D
ok=0
for t in $(seq 150); do
    v=$("$NODE_CLIENT" --node $D --timeout 1000 "$ENDPOINTS" get 0 t1999 stale)
    [ "$v" = v1999 ] && { ok=1; break; }
    sleep 0.1
done
[ $ok = 1 ] || fail "node $D did not catch up"
! grep -q "installed snapshot" "$DIR/node-$D.log" || fail "node $D needed a whole snapshot"
echo "PASS node_trailing_catchup"
