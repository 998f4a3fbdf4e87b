#!/usr/bin/env bash
# node_resend_joined.sh - a write resent while its first copy waits on the leader (here: both
# followers spend 1.5 s in each log sync) is not proposed again: the first copy answers
# the resend. Each resend used to be one more entry in the log (skipped at apply by the
# client's session), so an overload of big writes replicated every resend again.
source "$(dirname "$0")/node_lib.sh"
ELECTION_TICKS=50 cluster_init 3 1
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
L=$(leader_of 0)
slow_follower_disks "$L" 1500
[ "$(leader_of 0)" = "$L" ] || fail "leadership moved while the followers restarted"
before=$(client commit "$L" 0) || fail "no status from the leader"
# resent every 100 ms while it waits 1.5-3 s for a follower's sync
CLIENT_ATTEMPT=100 CLIENT_NODE=$L client put 0 resent value-1 || fail "the resent write failed"
after=$(client commit "$L" 0) || fail "no status from the leader"
[ "$(client get 0 resent)" = value-1 ] || fail "the resent write does not read back"
[ "$(leader_of 0)" = "$L" ] || fail "leadership moved during the write"
echo "commit index $before -> $after"
[ $((after - before)) = 1 ] || fail "one write took $((after - before)) log entries (resends proposed again)"
node_stop "$L" || fail "leader did not stop cleanly"
joined=$(grep -ho "resends_joined [0-9]*" "$DIR/node-$L.log" | tail -1 | cut -d' ' -f2)
echo "resends joined on the leader: $joined"
[ "${joined:-0}" -ge 5 ] || fail "fewer than 5 resends reached the leader's first copy (${joined:-none})"
echo "PASS node_resend_joined"
