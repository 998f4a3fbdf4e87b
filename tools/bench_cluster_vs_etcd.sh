#!/bin/bash
ROOT=$(cd "$(dirname "$0")/.." && pwd) # the repository; binaries from build-rel (Release)
# One quiet-machine comparison with etcd: etcd_bench.sh, then Shoal 1/8/4 shards put and lease get (docs/BENCHMARKS.md).
export PATH=$ROOT/build-rel/tools:$ROOT/build-rel/actors:$ROOT/build-rel/broker:$PATH
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
# a fresh machine has neither etcd nor wrk: the anchors' own installer brings them
command -v etcd >/dev/null && command -v wrk >/dev/null || bash "$SHARED/install_deps.sh" >/dev/null ||
    { echo "cannot install etcd and wrk ($SHARED/install_deps.sh)" >&2; exit 1; }
[ -x "$ROOT/build-rel/tools/shoalctl" ] || { echo "no Release build: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel" >&2; exit 1; }
echo "etcd start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
BENCH_DIR=/tmp/perf-etcd REPS=1 SIZES=3 bash "$SHARED/etcd_bench.sh" 2>&1 | tail -15
for S in 1 8 4; do
  rm -rf /tmp/cq$S
  ep=$(shoalctl cluster up --dir /tmp/cq$S --nodes 3 --shards $S --replicas 3 --base-port 23500 | tail -n 1)
  echo "== shards $S put $(date +%T)"
  SHOAL_BROKER=$ep shoalctl bench put --clients 128 --duration 15 --key-size 16 --value-size 100 2>&1 | tail -3
  echo "== shards $S get (lease) $(date +%T)"
  SHOAL_BROKER=$ep shoalctl bench get --clients 128 --duration 15 --key-size 16 --value-size 100 --keys 20000 2>&1 | tail -3
  shoalctl cluster down --dir /tmp/cq$S >/dev/null; rm -rf /tmp/cq$S
done
