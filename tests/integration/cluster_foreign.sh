#!/usr/bin/env bash
# cluster_foreign.sh - a cluster keeps to itself (ShardMap.cluster_id, cluster/id of the
# configs `cluster up` writes): node 3 of cluster A is removed (A's metadata leader keeps
# sending the map to removed nodes, so that one down at the time learns it), and an
# unrelated one-node cluster B is started with its node on node 3's old endpoint. B's node
# must refuse A's maps and peer messages (before cluster ids it adopted A's newer map and
# its replicas); both clusters must keep serving their own data.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 4 1 3 # shard 0 and the metadata group on nodes 0-2; node 3 holds nothing
A=$SHOAL_BROKER
BDIR=$DIR/b
B_BASE=$((BASE + 6)) # B's node 0 gets BASE+106: A's node 3
both_down() {
    "$CTL" cluster down --dir "$BDIR" >/dev/null 2>&1
    for f in "$BDIR"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    cl_cleanup
}
trap both_down EXIT

check "a write to A" ctl put --timeout 10000 a-key a-value
retry_admin remove-node 3
for _ in $(seq 1 100); do # node 3 learns it was removed and stops
    kill -0 "$(cat "$DIR/pids/node-3.pid")" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$(cat "$DIR/pids/node-3.pid")" 2>/dev/null && { echo "FAIL: removed node 3 still runs"; FAIL=1; }

out=$(ctl cluster up --dir "$BDIR" --nodes 1 --shards 1 --replicas 1 --base-port "$B_BASE" \
      --timeout 30000) || { echo "FAIL: cluster B up: $out"; FAIL=1; exit 1; }
B=$(echo "$out" | tail -n 1)
grep -q "tcp://127.0.0.1:$((BASE + 106))" "$BDIR/node-0.cfg" ||
    { echo "FAIL: B's node is not on A's node 3 endpoint"; FAIL=1; }
SHOAL_BROKER=$B check "a write to B" ctl put --timeout 10000 b-key b-value

# A's metadata leader pushes its map to node 3's endpoint, and A's nodes their keepalives
refused=0
for _ in $(seq 1 100); do
    grep -q "refused .* of cluster" "$BDIR/logs/node-0.log" && refused=1 && break
    sleep 0.1
done
[ "$refused" = 1 ] || { echo "FAIL: B's node logged nothing refused of cluster A"; FAIL=1; }
sleep 2
b_map=$(SHOAL_BROKER=$B status_py "print(len(st['nodes']), len(st['shards']), st['map_version'])")
[ "$b_map" = "1 1 1" ] || { echo "FAIL: B's map (nodes shards version) is '$b_map', want '1 1 1'"; FAIL=1; }
[ "$(ls "$BDIR/node-0" | grep -c '^shard-')" = 1 ] ||
    { echo "FAIL: B's node holds $(ls "$BDIR/node-0" | tr '\n' ' ')"; FAIL=1; }
[ "$(SHOAL_BROKER=$B ctl get b-key 2>&1)" = b-value ] || { echo "FAIL: B lost its key"; FAIL=1; }
SHOAL_BROKER=$B want 1 "A's key is not in B" ctl get a-key
[ "$(SHOAL_BROKER=$A ctl get a-key 2>&1)" = a-value ] || { echo "FAIL: A lost its key"; FAIL=1; }
SHOAL_BROKER=$A check "a write to A after B started" ctl put --timeout 10000 a-key2 v
[ "$(SHOAL_BROKER=$A status_py "print(len(st['nodes']))")" = 3 ] ||
    { echo "FAIL: A does not list 3 nodes"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "cluster_foreign: ok"
exit "$FAIL"
