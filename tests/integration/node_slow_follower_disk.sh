#!/usr/bin/env bash
# node_slow_follower_disk.sh - followers whose disk is slow must not depose a leader whose
# disk is fast: the leader is idle between its quick syncs while both followers spend 1.5 s
# in each log sync (storage/fsync_delay_ms on the followers only), so the leader's own
# heartbeats (read rounds, with a context) reach followers that are waiting for the disk.
# They must answer at once; answered only after the sync, the leader hears no quorum within
# its 0.5 s check-quorum window and steps down every few seconds (CI saw it under load in
# node_slow_disk). The leader and its term stay the same and every write is acknowledged.
source "$(dirname "$0")/node_lib.sh"
ELECTION_TICKS=50 cluster_init 3 1
CLIENT_ATTEMPT=8000 # a write takes seconds here: do not resend it every second
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
L=$(leader_of 0)
slow_follower_disks "$L" 1500
[ "$(leader_of 0)" = "$L" ] || fail "leadership moved while the followers restarted"
before=$(cat "$DIR"/node-*.log | grep -c "shard 0: leader is")
load_and_check 0 4 4
after=$(cat "$DIR"/node-*.log | grep -c "shard 0: leader is")
grep -h "stepped down" "$DIR"/node-*.log && fail "a leader stepped down while the followers' disks were slow"
[ "$(leader_of 0)" = "$L" ] || fail "leadership moved while the followers' disks were slow"
[ "$after" = "$before" ] || fail "elections happened while the disks were slow ($before -> $after leader lines)"
echo "PASS node_slow_follower_disk"
