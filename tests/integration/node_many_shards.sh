#!/usr/bin/env bash
# node_many_shards.sh - 16 shards on 3 nodes (plus the metadata group): every shard elects
# a leader and serves writes and linearizable reads.
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 16
for i in 0 1 2; do node_start $i; done
client wait-leaders "$(seq -s, 0 15)" || fail "not every shard elected a leader"
for s in $(seq 0 15); do
    client put $s "key-$s" "value-$s" || fail "put on shard $s"
done
for s in $(seq 0 15); do
    [ "$(client get $s "key-$s")" = "value-$s" ] || fail "get on shard $s"
done
echo "PASS node_many_shards"
