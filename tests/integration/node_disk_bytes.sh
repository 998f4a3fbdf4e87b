#!/usr/bin/env bash
# node_disk_bytes.sh - a node's bytes_on_disk (the DISK column of `shoalctl status`) counts
# what it keeps under its data folder: the Raft log segments and the snapshot files as well
# as the engines' tables and WAL. (A snapshot file is exported only for a follower or an
# admin `snapshot`: here there are seldom any, the log segments are what must count.)
source "$(dirname "$0")/node_lib.sh"
cluster_init 1 1
node_start 0
client wait-leaders 0 || fail "no leader"
client load 0 k 0 400 >"$DIR/acks" || fail "load"
files() { find "$DIR/node-0/raftlog" "$DIR/node-0/shard-0/snap" -type f -printf '%s\n' 2>/dev/null |
    awk '{s += $1} END {print s + 0}'; }
want=$(files)
[ "$want" -gt 0 ] || fail "no log or snapshot bytes"
got=$(client disk-bytes 0) || fail "no status from node 0"
echo "bytes_on_disk $got; raftlog + snapshot files $want"
[ "$got" -ge "$want" ] || fail "bytes_on_disk $got < $want (raft log and snapshot files)"
echo "PASS node_disk_bytes"
