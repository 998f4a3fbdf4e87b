#!/bin/bash
ROOT=$(cd "$(dirname "$0")/.." && pwd) # the repository; binaries from build-rel (Release)
# etcd puts, then Shoal puts at 8 and 4 shards, 8 with leader balancing off, and 1 (docs/BENCHMARKS.md).
export PATH=$ROOT/build-rel/tools:$ROOT/build-rel/actors:$ROOT/build-rel/broker:$PATH
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
# a fresh machine has neither etcd nor wrk: the anchors' own installer brings them
command -v etcd >/dev/null && command -v wrk >/dev/null || bash "$SHARED/install_deps.sh" >/dev/null ||
    { echo "cannot install etcd and wrk ($SHARED/install_deps.sh)" >&2; exit 1; }
[ -x "$ROOT/build-rel/tools/shoalctl" ] || { echo "no Release build: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel" >&2; exit 1; }
echo "etcd start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
BENCH_DIR=/tmp/perf-etcd2 REPS=1 SIZES=3 bash "$SHARED/etcd_bench.sh" 2>&1 | grep "^test=n3_put128\|^test=n3_get128"
for cfg in "8 on" "4 on" "8 off" "1 on"; do
  set -- $cfg; S=$1; B=$2
  rm -rf /tmp/cq$S
  ep=$(shoalctl cluster up --dir /tmp/cq$S --nodes 3 --shards $S --replicas 3 --base-port 23500 --balance-leaders $B | tail -n 1)
  sleep 3
  echo "== shards $S balance $B put $(date +%T) leaders $(SHOAL_BROKER=$ep shoalctl status --json | python3 -c 'import json,sys; st=json.load(sys.stdin); print(sorted(-1 if s["leader"] is None else s["leader"] for s in st["shards"]))')"
  SHOAL_BROKER=$ep shoalctl bench put --clients 128 --duration 15 --key-size 16 --value-size 100 2>&1 | tail -2
  shoalctl cluster down --dir /tmp/cq$S >/dev/null; rm -rf /tmp/cq$S
done
