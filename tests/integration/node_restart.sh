#!/usr/bin/env bash
# node_restart.sh - a restarted node recovers from its log and engine: writes survive a
# clean restart of every node and then a kill -9 of every node at once.
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 2
for i in 0 1 2; do node_start $i; done
client wait-leaders 0,1 || fail "no leaders"
client load 0 a 0 300 >"$DIR/acks0" || fail "load 0"
client load 1 b 0 300 >"$DIR/acks1" || fail "load 1"
for i in 0 1 2; do node_stop $i || fail "stop $i"; done
for i in 0 1 2; do node_start $i; done
client check 0 a "$DIR/acks0" || fail "lost writes after a clean restart"
client load 0 a 300 600 >>"$DIR/acks0" || fail "load after restart"
for i in 0 1 2; do node_kill $i; done
for i in 0 1 2; do node_start $i; done
client check 0 a "$DIR/acks0" || fail "lost writes after kill -9 of every node"
client check 1 b "$DIR/acks1" || fail "lost writes of shard 1"
echo "PASS node_restart"
