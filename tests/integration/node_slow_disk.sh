#!/usr/bin/env bash
# node_slow_disk.sh - a slow disk must not cause elections: every log sync that writes
# entries takes 1.5 s more (storage/fsync_delay_ms; longer than the 0.5-1 s election
# timeout) on every node while clients write; the leader and its term stay the same and
# every write is acknowledged. (The election timeout is 50 ticks here, not 20: a process
# starved for 200 ms by a loaded CI host, ASan builds, would time out for lack of CPU, not
# because of the disk.)
source "$(dirname "$0")/node_lib.sh"
ELECTION_TICKS=50 STORAGE_EXTRA="    fsync_delay_ms = 1500" cluster_init 3 1
CLIENT_ATTEMPT=8000 # a write takes seconds here: do not resend it every second
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
L=$(leader_of 0)
before=$(cat "$DIR"/node-*.log | grep -c "shard 0: leader is")
load_and_check 0 4 4
after=$(cat "$DIR"/node-*.log | grep -c "shard 0: leader is")
[ "$(leader_of 0)" = "$L" ] || fail "leadership moved while the disk was slow"
[ "$after" = "$before" ] || fail "elections happened while the disk was slow ($before -> $after leader lines)"
echo "PASS node_slow_disk"
