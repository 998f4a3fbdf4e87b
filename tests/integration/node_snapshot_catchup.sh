#!/usr/bin/env bash
# node_snapshot_catchup.sh - a node that is down while many writes happen (and the log is
# compacted behind snapshots meanwhile) catches up by InstallSnapshot when it returns.
source "$(dirname "$0")/node_lib.sh"
# no entries kept behind a snapshot: the returning node can only catch up by snapshot
SNAPSHOT_ENTRIES=200 STORAGE_EXTRA="    snapshot_trailing_entries = 100" cluster_init 3 1
start_all_stop_follower 0
client load 0 s 0 2000 >"$DIR/acks" || fail "load"
[ "$(wc -l <"$DIR/acks")" = 2000 ] || fail "writes failed with two of three nodes up"
sleep 1   # let the snapshot after the last writes be taken
node_start $D
ok=0
for t in $(seq 150); do
    v=$("$NODE_CLIENT" --node $D --timeout 1000 "$ENDPOINTS" get 0 s1999 stale)
    [ "$v" = v1999 ] && { ok=1; break; }
    sleep 0.1
done
[ $ok = 1 ] || fail "node $D did not catch up"
grep -q "installed snapshot" "$DIR/node-$D.log" || fail "node $D caught up without a snapshot"
# the chunks went into the engine as they arrived: the install only swapped them in
grep "installed snapshot" "$DIR/node-$D.log" | grep -q "ingested as it came" ||
    fail "node $D installed the snapshot from the file, not from the chunks' ingest"
v=$("$NODE_CLIENT" --node $D --timeout 1000 "$ENDPOINTS" get 0 s7 stale)
[ "$v" = v7 ] || fail "old key missing on the caught-up node"
echo "PASS node_snapshot_catchup"
