#!/bin/bash
# cluster_cpu_bench.sh - one `shoalctl bench` on a fresh local cluster, with the cost per
# operation: CPU and context switches of every node (all threads) and the broker, read
# from /proc before and after, and the whole machine's busy share (is the box saturated?).
# With --threads, node 0's threads one by one as well (which thread wakes per write);
# SHOAL_BENCH_THREADS_OF=broker (or node-1, node-2) lists that process's threads instead.
# At the end, the nodes' work counters (logged at stop) summed over the nodes and divided
# by the client requests they took: loop pumps, Raft readies, log batches and their items,
# fsm messages and jobs, peer envelopes and messages, ROUTER messages with client requests
# and answers per request (start-up included), and the broker's messages to nodes.
#
# usage: tools/cluster_cpu_bench.sh BIN_DIR SHARDS [CLIENTS [SECONDS [put|get]]] [--threads]
#   BIN_DIR holds shoalctl, shoald and shoal-broker (a build's copy, so that rebuilding
#   meanwhile cannot change them). Port base 24600 unless SHOAL_BENCH_PORT is set.
#   SHOAL_BENCH_PACK=1 turns leader balancing off and hands every shard's leadership to
#   node 0 before the run (one node's cycle drives every group, against leaders spread).
set -u
threads=0
args=()
for a in "$@"; do [ "$a" = --threads ] && threads=1 || args+=("$a"); done
set -- "${args[@]}"
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
B=$1 S=$2 C=${3:-128} D=${4:-10} OP=${5:-put}
export SHOAL_BIN_DIR=$B
dir=$(mktemp -d /tmp/shoal-cpu-bench.XXXXXX)
trap '$B/shoalctl cluster down --dir $dir >/dev/null 2>&1; rm -rf "$dir"' EXIT
pack=${SHOAL_BENCH_PACK:-0}
ep=$($B/shoalctl cluster up --dir "$dir" --nodes 3 --shards "$S" --replicas 3 \
     --base-port "${SHOAL_BENCH_PORT:-24600}" --balance-leaders $([ $pack = 1 ] && echo off || echo on) |
     tail -n 1) || exit 1
sleep 1
if [ "$pack" = 1 ]; then
    for ((s = 0; s < S; s++)); do SHOAL_BROKER=$ep $B/shoalctl transfer-leader $s 0 >/dev/null; done
    sleep 2
fi
echo "leaders per node: $(SHOAL_BROKER=$ep $B/shoalctl --json status | grep -oP '"id":[0-9]+,"leader":\K-?[0-9]+' |
    sort | uniq -c | awk '{print $2 ":" $1}' | paste -sd' ')"
pids=$(pgrep -f "$dir/(node-|broker)" | tr '\n' ' ')
node0=$(pgrep -f "$dir/${SHOAL_BENCH_THREADS_OF:-node-0}.cfg")
extra=()
if [ "$OP" = get ]; then
    extra=(--keys 20000)
    SHOAL_BROKER=$ep $B/shoalctl bench put --clients 128 --duration 3 --key-size 16 \
        --value-size 100 >/dev/null 2>&1
fi
machine() { awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat; }
# pid, name, CPU jiffies, context switches (voluntary + not, all threads)
procs() {
    for p in $pids; do
        cs=$(cat /proc/$p/task/*/status 2>/dev/null | awk '/ctxt_switches/{s+=$2} END{print s}')
        name=$(tr '\0' ' ' </proc/$p/cmdline | awk '{n=$1; sub(".*/","",n); print n "(" $NF ")"}')
        awk -v p=$p -v cs=$cs -v n="$name" '{print p, n, $14+$15, cs}' /proc/$p/stat
    done
}
thr() {
    for t in /proc/$node0/task/*; do
        cs=$(awk '/ctxt_switches/{s+=$2} END{print s}' $t/status)
        awk -v t=${t##*/} -v cs=$cs '{gsub(/[()]/,"",$2); print t, $2, $14+$15, cs}' $t/stat
    done | sort -n
}
read -r b0 i0 < <(machine); procs >"$dir/p0"; thr >"$dir/t0"
out=$(SHOAL_BROKER=$ep $B/shoalctl bench "$OP" --clients "$C" --duration "$D" --key-size 16 \
      --value-size 100 "${extra[@]}" 2>&1 | grep -v '^\[')
read -r b1 i1 < <(machine); procs >"$dir/p1"; thr >"$dir/t1"
echo "$out" | tail -n 2
ops=$(echo "$out" | grep -oP '= \K[0-9]+(?= ops/s)')
[ -n "$ops" ] && [ "$ops" -gt 0 ] || exit 1
echo "machine busy $(( 100 * (b1 - b0) / ((b1 - b0) + (i1 - i0)) ))%"
join <(sort "$dir/p0") <(sort "$dir/p1") | awk -v ops="$ops" -v d="$D" '
    { cpu = $6 - $3; cs = $7 - $4; printf "  %-28s cpu %5.1f%%  %6.1f us/op  %.2f cs/op\n", $2, cpu / d, cpu * 10000 / (ops * d), cs / (ops * d)
      if ($2 ~ /^shoald/) { ncpu += cpu; ncs += cs } }
    END { printf "  nodes together: %.1f us/op, %.2f context switches/op\n", ncpu * 10000 / (ops * d), ncs / (ops * d) }'
if [ $threads = 1 ]; then
    echo "node 0 threads in creation order (libzmq I/O, then the node actor, the log actor, the fsm actors, ...):"
    join "$dir/t0" "$dir/t1" | awk -v ops="$ops" -v d="$D" '
        { cpu = $6 - $3; cs = $7 - $4
          if (cpu > 0 || cs > 100) printf "  tid %s %-12s cpu %5.1f%%  %5.1f us/op  %.3f cs/op\n", $1, $2, cpu / d, cpu * 10000 / (ops * d), cs / (ops * d) }'
fi
$B/shoalctl cluster down --dir "$dir" >/dev/null 2>&1
cat "$dir"/logs/node-*.log 2>/dev/null | grep -h 'work counters' | sed 's/.*work counters: //' | awk '
    { for (i = 1; i < NF; i += 2) sum[$i] += $(i + 1); order = $0 }
    END { if (!sum["requests"]) exit
          n = split(order, f, " "); line = "  per request, nodes together:"
          for (i = 3; i <= n; i += 2) line = line sprintf(" %s %.3f", f[i], sum[f[i]] / sum["requests"])
          print line }'
# the broker's messages of client requests to the nodes (one per node and loop turn)
grep -h 'broker: stopping' "$dir"/logs/broker*.log 2>/dev/null | grep -oP '\(\K[0-9]+(?= requests)|[0-9]+(?= messages of requests)' |
    paste -sd' ' | awk 'NF == 2 && $1 { printf "  broker: %.3f messages to nodes per request\n", $2 / $1 }'
