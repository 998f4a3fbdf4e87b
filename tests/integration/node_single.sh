#!/usr/bin/env bash
# node_single.sh - a one-node cluster (replicas capped at the node count): its groups elect
# themselves, serve, and recover after kill -9.
source "$(dirname "$0")/node_lib.sh"
cluster_init 1 2
node_start 0
client wait-leaders 0,1 || fail "no leader"
client put 0 a 1 || fail put
client put 1 b 2 || fail put
[ "$(client get 1 b)" = 2 ] || fail get
node_kill 0; node_start 0
[ "$(client get 1 b)" = 2 ] || fail "get after restart"
echo "PASS node_single"
