#!/usr/bin/env bash
# cluster_foreign.sh - a cluster keeps to itself (ShardMap.cluster_id, cluster/id of the
# configs `cluster up` writes): node 3 of cluster A is removed (A's metadata leader keeps
# sending the map to removed nodes, so that one down at the time learns it), and an
# unrelated one-node cluster B is started with its node on node 3's old endpoint. B's node
# must refuse A's maps and peer messages (before cluster ids it adopted A's newer map and
# its replicas); both clusters must keep serving their own data.
# Then B's map is made newer than A's (a split), and A's brokers must keep A's map too: A's
# broker restarted from its config (which lists node 3, now B's node, and names A's
# cluster/id), and a second broker of A whose config names no cluster/id (it learns A's id
# from A's nodes). Before brokers checked the id, both adopted B's newer map from B's node
# and served B's keys to A's clients.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 4 1 3 # shard 0 and the metadata group on nodes 0-2; node 3 holds nothing
A=$SHOAL_BROKER
BDIR=$DIR/b
B_BASE=$((BASE + 6)) # B's node 0 gets BASE+106: A's node 3
A_NODES=
both_down() {
    [ -n "$A_NODES" ] && kill -CONT $A_NODES 2>/dev/null
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
# B's map newer than A's: a split of B's shard (recorded, then closed: 2 versions)
SHOAL_BROKER=$B retry_admin add-shard
for _ in $(seq 1 150); do
    [ "$(SHOAL_BROKER=$B map_version 2>/dev/null)" -ge 3 ] 2>/dev/null && break
    sleep 0.1
done
a_v=$(map_version)
b_v=$(SHOAL_BROKER=$B map_version)
[ "$b_v" -gt "$a_v" ] 2>/dev/null || { echo "FAIL: B's map v$b_v is not newer than A's v$a_v"; FAIL=1; }
a_id=$(status_py "print(st['cluster_id'])")
b_id=$(SHOAL_BROKER=$B status_py "print(st['cluster_id'])")
grep -q "^    id = $a_id\$" "$DIR/broker.cfg" ||
    { echo "FAIL: A's broker shows cluster $a_id, not its config's"; FAIL=1; }
[ "$a_id" != "$b_id" ] || { echo "FAIL: A and B both show cluster $a_id"; FAIL=1; }

# A's brokers start while A's nodes are stopped (SIGSTOP), so that the first maps they are
# given are B's, from B's node on node 3's endpoint (else A's nodes may answer first, the
# brokers drop node 3 with A's map, and never ask B's node at all)
A_NODES=$(cat "$DIR"/pids/node-[0-2].pid)
kill -STOP $A_NODES
broker_restart # A's broker, from its config: node 3 at B's node endpoint, A's cluster/id
A2_BASE=$((BASE + 3)) # A's second broker, on BASE+3 and BASE+4, with no cluster/id
sed -e '/^    id = /d' -e '/http_endpoint/d' -e "s/:$BASE\"/:$A2_BASE\"/" \
    -e "s/:$((BASE + 1))\"/:$((A2_BASE + 1))\"/" "$DIR/broker.cfg" >"$DIR/broker2.cfg"
grep -q '^    id = ' "$DIR/broker2.cfg" && { echo "FAIL: broker2.cfg names a cluster/id"; FAIL=1; }
setsid "$BROKER_BIN" --config "$DIR/broker2.cfg" >"$DIR/logs/broker2.log" 2>&1 </dev/null &
echo $! >"$DIR/pids/broker2.pid"
A2=tcp://127.0.0.1:$A2_BASE
sleep 4.5 # two map polls of every node (every 4th status poll: 2 s): B's node answers
kill -CONT $A_NODES
for ep in "$A" "$A2"; do # both answer, with A's map (from its nodes' next map poll)
    for _ in $(seq 1 100); do
        [ "$(SHOAL_BROKER=$ep map_version 2>/dev/null)" -ge "$a_v" ] 2>/dev/null && break
        sleep 0.1
    done
done
sleep 2.5 # another map poll
for ep in "$A" "$A2"; do
    got=$(SHOAL_BROKER=$ep status_py "print(st['map_version'], len(st['nodes']), len(st['shards']), st['cluster_id'])")
    [ "$got" = "$a_v 3 1 $a_id" ] ||
        { echo "FAIL: broker $ep shows (map version, nodes, shards, cluster) '$got', want '$a_v 3 1 $a_id'"; FAIL=1; }
    [ "$(SHOAL_BROKER=$ep ctl get --timeout 10000 a-key 2>&1)" = a-value ] || { echo "FAIL: broker $ep lost A's key"; FAIL=1; }
    SHOAL_BROKER=$ep want 1 "B's key is not in A (broker $ep)" ctl get b-key
    SHOAL_BROKER=$ep check "a write to A through broker $ep" ctl put --timeout 10000 a-key3 v
done
# the broker that knew its cluster from its config says why it refused B's map, naming both
# ids (the other one refused it too, but knew no id yet: B's map does not list node 3)
grep -q "refused a shard map .* of cluster $b_id .* serves cluster $a_id" "$DIR/logs/broker.log" ||
    { echo "FAIL: broker.log has no refusal of cluster $b_id's map: $(grep -i cluster "$DIR/logs/broker.log" | tail -n 3)"; FAIL=1; }
grep -q "broker: cluster $a_id (from node [0-2]'s shard map)" "$DIR/logs/broker2.log" ||
    { echo "FAIL: broker2 did not learn cluster $a_id from A's nodes: $(grep -i cluster "$DIR/logs/broker2.log" | tail -n 3)"; FAIL=1; }
[ "$(SHOAL_BROKER=$B ctl get b-key 2>&1)" = b-value ] || { echo "FAIL: B lost its key"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "cluster_foreign: ok"
exit "$FAIL"
