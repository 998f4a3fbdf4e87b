#!/usr/bin/env bash
# node_sigstop.sh - SIGSTOP of the leader for longer than the election timeout while a
# client writes, then SIGCONT: the old leader steps down, nothing acknowledged is lost.
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 1
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
L=$(leader_of 0)
client load 0 p 0 2000 >"$DIR/acks" &
LOADER=$!
sleep 1
echo "pausing leader node $L"
node_pause "$L"
sleep 1.5     # election timeout is 200-400 ms
node_resume "$L"
wait $LOADER
client check 0 p "$DIR/acks" || fail "acknowledged writes lost"
for i in 0 1 2; do
    ok=0
    for t in $(seq 100); do
        v=$("$NODE_CLIENT" --node $i --timeout 1000 "$ENDPOINTS" get 0 p1999 stale)
        [ "$v" = v1999 ] && { ok=1; break; }
        sleep 0.1
    done
    [ $ok = 1 ] || fail "node $i did not converge"
done
echo "PASS node_sigstop"
