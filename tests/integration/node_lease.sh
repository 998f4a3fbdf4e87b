#!/usr/bin/env bash
# node_lease.sh - lease reads (raft/read_mode = "lease"): a leader answers linearizable
# reads from its lease, a leader cut off from its followers stops answering them once the
# lease is gone, and a leader paused while the others elected a new one and wrote never
# answers with the old value after it resumes.
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 1 '    read_mode = "lease"
    max_clock_drift_ms = 10'
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
client put 0 k v1 || fail "put v1"
L=$(leader_of 0)
v=$("$NODE_CLIENT" --node "$L" --timeout 5000 "$ENDPOINTS" get 0 k) || fail "lease read failed"
[ "$v" = v1 ] || fail "lease read returned '$v', expected v1"

echo "cutting leader node $L off: pausing its followers"
for i in 0 1 2; do [ "$i" = "$L" ] || node_pause "$i"; done
sleep 1 # 5x the election timeout: the lease ended long ago
if out=$("$NODE_CLIENT" --node "$L" --timeout 1500 --attempt 500 "$ENDPOINTS" get 0 k 2>&1); then
    fail "a leader without a quorum answered a linearizable read after its lease ended: $out"
fi
for i in 0 1 2; do [ "$i" = "$L" ] || node_resume "$i"; done
client wait-leaders 0 || fail "no leader after the followers resumed"

L=$(leader_of 0)
echo "pausing leader node $L while the others elect a leader and write v2"
node_pause "$L"
sleep 1
client put 0 k v2 || fail "put v2 on the new leader"
node_resume "$L"
# whatever the resumed node answers (redirect, timeout, or a read it confirmed) is not v1
v=$("$NODE_CLIENT" --node "$L" --timeout 5000 "$ENDPOINTS" get 0 k) || fail "read after resume failed"
[ "$v" = v2 ] || fail "stale read after the old leader resumed: '$v', expected v2"
echo "PASS node_lease"
