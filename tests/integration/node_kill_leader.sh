#!/usr/bin/env bash
# node_kill_leader.sh - kill -9 of the leader while a client writes: a new leader takes
# over, every acknowledged write is still readable, and the killed node, restarted,
# recovers from its log and engine and catches up (stale read of the last write on it).
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 1
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader elected"
L=$(leader_of 0)
client load 0 k 0 3000 >"$DIR/acks" &
LOADER=$!
sleep 1.5
echo "killing leader node $L with SIGKILL"
node_kill "$L"
wait $LOADER
acks=$(wc -l <"$DIR/acks")
echo "$acks writes acknowledged"
[ "$acks" -gt 100 ] || fail "too few writes acknowledged ($acks)"
L2=$(leader_of 0) || fail "no new leader"
[ "$L2" != "$L" ] || fail "the killed node is still reported as leader"
client check 0 k "$DIR/acks" || fail "acknowledged writes lost"
node_start "$L"
last=$(tail -1 "$DIR/acks" | cut -d' ' -f2)
ok=0
for t in $(seq 100); do
    v=$("$NODE_CLIENT" --node "$L" --timeout 1000 "$ENDPOINTS" get 0 "k$last" stale)
    [ "$v" = "v$last" ] && { ok=1; break; }
    sleep 0.1
done
[ $ok = 1 ] || fail "restarted node $L did not catch up"
echo "PASS node_kill_leader"
