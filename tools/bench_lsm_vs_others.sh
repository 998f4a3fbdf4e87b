#!/bin/bash
ROOT=$(cd "$(dirname "$0")/.." && pwd) # the repository; binaries from build-rel (Release)
# interleaved Shoal / LevelDB / RocksDB, compression $1, reps $2
C=$1; R=$2; B=$ROOT/build-rel/tools/lsm_bench
H=${LSMBENCH:-/tmp/shoal-bench-lsm/bin/lsmbench} # built by BENCH_DIR=/tmp/shoal-bench-lsm ../shared/bench/lsm_bench.sh
BL=fillseq,fillrandom,overwrite,readrandom,compact,readrandom,readseq,fillsync
for r in $(seq 1 $R); do
  rm -rf /tmp/lq; mkdir -p /tmp/lq
  echo "== rep $r comp $C shoal $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $B --dir /tmp/lq/s --num 1000000 --key-size 16 --value-size 100 --compression $C --write-buffer-size 67108864 --benchmarks $BL
  rm -rf /tmp/lq/s
  echo "== rep $r comp $C leveldb $(date +%T)"
  $H leveldb /tmp/lq/l 1000000 $C 10000; rm -rf /tmp/lq/l
  echo "== rep $r comp $C rocksdb $(date +%T)"
  $H rocksdb /tmp/lq/r 1000000 $C 10000; rm -rf /tmp/lq/r
done
