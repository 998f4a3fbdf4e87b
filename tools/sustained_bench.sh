#!/bin/bash
# sustained_bench.sh - puts over a loaded store, the case short runs on an empty store miss
# (snapshot and compaction work grows with the shard): `cluster up` with SHARDS shards,
# 1,000,000 keys loaded (`bench get --keys 1000000`), then SECONDS of `bench put` over the
# same keys with 128 clients (16-byte keys, 100-byte values), and the nodes' plus the
# broker's CPU per put read from /proc.
#
# usage: tools/sustained_bench.sh BIN_DIR SHARDS [SECONDS]
#   BIN_DIR holds shoalctl, shoald and shoal-broker. Port base 27700 unless
#   SHOAL_BENCH_PORT is set. Uses its own temporary folder; stops the cluster on exit.
set -u
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
B=$1 S=$2 D=${3:-20}
export SHOAL_BIN_DIR=$B
dir=$(mktemp -d /tmp/shoal-sustained.XXXXXX)
trap '$B/shoalctl cluster down --dir $dir >/dev/null 2>&1; rm -rf "$dir"' EXIT
ep=$($B/shoalctl cluster up --dir "$dir" --nodes 3 --shards "$S" --replicas 3 \
     --base-port "${SHOAL_BENCH_PORT:-27700}" | tail -n 1) || exit 1
export SHOAL_BROKER=$ep
$B/shoalctl bench get --keys 1000000 --duration 1 --clients 64 >/dev/null 2>&1
pids=$(pgrep -f "$dir/(node-|broker)" | tr '\n' ' ')
cpu() { for p in $pids; do awk '{print $14 + $15}' /proc/$p/stat; done | awk '{s += $1} END {print s}'; }
c0=$(cpu)
out=$($B/shoalctl bench put --keys 1000000 --duration "$D" --clients 128 --key-size 16 \
      --value-size 100 2>&1 | tr '\r' '\n' | grep -v '^\[' | grep -v '^$' | tail -n 2)
c1=$(cpu)
echo "$out"
ops=$(echo "$out" | grep -oP '= \K[0-9]+(?= ops/s)')
[ -n "$ops" ] && [ "$ops" -gt 0 ] || exit 1
echo "nodes + broker: $(( (c1 - c0) * 10000 / (ops * D) )) us CPU per put"
