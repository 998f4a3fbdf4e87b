#!/bin/bash
ROOT=$(cd "$(dirname "$0")/.." && pwd) # the repository; binaries from build-rel (Release)
# One quiet-machine comparison with etcd: etcd_bench.sh, then Shoal 1/8/4 shards put and lease get (docs/BENCHMARKS.md).
export PATH=$ROOT/build-rel/tools:$ROOT/build-rel/actors:$ROOT/build-rel/broker:$PATH
echo "etcd start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
BENCH_DIR=/tmp/perf-etcd REPS=1 SIZES=3 bash ${SHARED_BENCH:-$ROOT/../shared/bench}/etcd_bench.sh 2>&1 | tail -15
for S in 1 8 4; do
  rm -rf /tmp/cq$S
  ep=$(shoalctl cluster up --dir /tmp/cq$S --nodes 3 --shards $S --replicas 3 --base-port 23500 | tail -n 1)
  echo "== shards $S put $(date +%T)"
  SHOAL_BROKER=$ep shoalctl bench put --clients 128 --duration 15 --key-size 16 --value-size 100 2>&1 | tail -3
  echo "== shards $S get (lease) $(date +%T)"
  SHOAL_BROKER=$ep shoalctl bench get --clients 128 --duration 15 --key-size 16 --value-size 100 --keys 20000 2>&1 | tail -3
  shoalctl cluster down --dir /tmp/cq$S >/dev/null; rm -rf /tmp/cq$S
done
