#!/usr/bin/env bash
# node_replicate.sh - a 3-node group elects a leader and replicates: every operation works
# through the leader (put, get, del, cas, scan, batch, changes) and a
# stale read on each follower sees the write; the PUB stream carries events; the metadata
# group stores the shard map; a clean SIGTERM stops every node with exit 0.
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 1
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader elected"
L=$(leader_of 0) || fail "no leader"
echo "leader of shard 0: node $L"
client put 0 alpha one || fail "put"
[ "$(client get 0 alpha)" = one ] || fail "get after put"
client cas 0 alpha one two >/dev/null || fail "cas that should match"
out=$(client cas 0 alpha one three); [ $? = 1 ] || fail "cas that should fail"
[ "$out" = two ] || fail "cas failure should print the current value, got '$out'"
client cas-absent 0 beta b1 >/dev/null || fail "cas-absent on a missing key"
client cas-absent 0 beta b2 >/dev/null; [ $? = 1 ] || fail "cas-absent on a present key"
client put 0 alpine x || fail "put alpine"
[ "$(client scan 0 alp 10 | cut -f1 | tr '\n' ' ')" = "alpha alpine " ] || fail "scan by prefix"
client del 0 alpine || fail "del"
client get 0 alpine >/dev/null; [ $? = 1 ] || fail "get after del should be not found"
client del 0 never-there || fail "del of a missing key is ok"
client batch 0 bat1 x bat2 y bat3 z || fail "batch"
[ "$(client scan 0 bat 10 | tr '\t\n' '= ')" = "bat1=x bat2=y bat3=z " ] || fail "batch contents"
# every replica has the data: stale reads answered by each node itself
for i in 0 1 2; do
    ok=0
    for t in $(seq 50); do
        v=$("$NODE_CLIENT" --node $i --timeout 2000 "$ENDPOINTS" get 0 alpha stale)
        [ "$v" = two ] && { ok=1; break; }
        sleep 0.1
    done
    [ $ok = 1 ] || fail "node $i did not replicate alpha"
done
n=$(client changes 0 0 | wc -l); [ "$n" -ge 5 ] || fail "expected the change window to hold the writes, got $n"
# the PUB endpoints stream metrics, progress, Raft events and change events; every node's
# is read, since progress and change events come from whichever node leads shard 0 by then
EVS=""
for i in 0 1 2; do
    client events "tcp://127.0.0.1:${PORTS[$((i + 100))]}" 2500 >"$DIR/events-$i" &
    EVS="$EVS $!"
done
sleep 0.5
client put 0 gamma g || fail "put gamma"
wait $EVS
cat "$DIR"/events-[012] >"$DIR/events"
grep -q "^metrics/$L 14 2$" "$DIR/events" || fail "no metrics event (type 14, 2 replicas) from node $L"
grep -q "^progress$" "$DIR/events" || fail "no progress notice"
grep -q "^raft/0 8 " "$DIR/events" || fail "no apply-progress event (type 8) of shard 0"
grep -q "^change/gamma$" "$DIR/events" || fail "no change event for gamma"
# the metadata group (id 4294967295) stores the shard map on every meta replica
for i in 0 1 2; do
    ok=0
    for t in $(seq 50); do
        "$NODE_CLIENT" --node $i --timeout 2000 "$ENDPOINTS" get 4294967295 shardmap stale >/dev/null && { ok=1; break; }
        sleep 0.1
    done
    [ $ok = 1 ] || fail "node $i has no shard map in the metadata group"
done
for i in 0 1 2; do node_stop $i || fail "node $i did not exit 0 on SIGTERM"; done
echo "PASS node_replicate"
