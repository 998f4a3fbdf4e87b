#!/usr/bin/env bash
# test_shoalctl_args.sh - shoalctl's command-line contract without a cluster: bad usage or
# input to every command exits 2 with exactly one line on stderr naming the command; --help
# exits 0; a broker that does not answer exits 3; the broker daemon refuses bad configs.
set -u
ctl=${SHOAL_BUILD_DIR:?}/tools/shoalctl
brk=${SHOAL_BUILD_DIR}/broker/shoal-broker
fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# A port nobody listens on: requests there time out.
export SHOAL_BROKER=tcp://127.0.0.1:$((40000 + $$ % 20000))

expect() { # expect CODE ARGS...
  local want=$1; shift
  "$ctl" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local got=$? lines
  lines=$(wc -l <"$tmp/err")
  if [ "$got" != "$want" ]; then
    echo "FAIL: shoalctl $* -> exit $got, want $want; stderr: $(cat "$tmp/err")"; fail=1
  elif [ "$want" != 0 ] && [ "$lines" != 1 ]; then
    echo "FAIL: shoalctl $* -> $lines stderr lines, want 1: $(cat "$tmp/err")"; fail=1
  elif [ "$want" != 0 ] && ! grep -q '^shoalctl' "$tmp/err"; then
    echo "FAIL: shoalctl $* -> stderr does not start with shoalctl: $(cat "$tmp/err")"; fail=1
  fi
}

# usage errors: exit 2
expect 2
expect 2 frobnicate
expect 2 put
expect 2 put onlykey
expect 2 put k v extra
expect 2 put --bogus k v
expect 2 get
expect 2 get a b
expect 2 get --stale
expect 2 del
expect 2 del a b
expect 2 cas k
expect 2 cas k old
expect 2 cas k --absent
expect 2 cas k --absent new extra
expect 2 scan extra
expect 2 scan --limit
expect 2 scan --limit 0
expect 2 scan --limit -5
expect 2 scan --limit 12abc
expect 2 scan --from b --to a
expect 2 batch
expect 2 batch put k
expect 2 batch frob k v
expect 2 watch --from-index 3
expect 2 watch --from-index x:1
expect 2 watch --from-index 1:y
expect 2 watch --count 0
expect 2 status extra
expect 2 top --interval 1
expect 2 events --count nope
expect 2 --broker ipc:///tmp/shoal-no-broker get k # a broker binds tcp:// only
expect 2 --broker tcp://127.0.0.1:7000,inproc://x get k
expect 2 watch --pub ipc:///tmp/shoal-no-broker-pub
expect 2 transfer-leader 1
expect 2 transfer-leader x 1
expect 2 add-node 1 tcp://a:1
expect 2 add-node 1 notanendpoint tcp://a:2
expect 2 remove-node
expect 2 move-replica 1 2
expect 2 add-shard 1 2
expect 2 add-shard x
expect 2 add-shard -1
expect 2 compact 1 2
expect 2 compact -1
expect 2 snapshot x
expect 2 drain-node
expect 2 drain-node 0 1
expect 2 drain-node x
expect 2 drain-node 64
expect 2 drain-node 0 --move-timeout 0
expect 2 drain-node 0 --move-timeout soon
expect 2 rebalance 1
expect 2 rebalance --plan --fast
expect 2 cluster
expect 2 cluster sideways --dir "$tmp/c"
expect 2 cluster up
expect 2 cluster up --dir "$tmp/c" --nodes 0
expect 2 cluster up --dir "$tmp/c" --nodes 65
expect 2 cluster up --dir "$tmp/c" --nodes 2 --replicas 3
expect 2 cluster up --dir "$tmp/c" --shards 0
expect 2 cluster up --dir "$tmp/c" --base-port 80
expect 2 cluster up --dir "$tmp/c" --fsync sometimes
expect 2 cluster up --dir "$tmp/c" --read-mode eventually
expect 2 cluster down
expect 2 cluster down --dir "$tmp/nothing-here"
expect 2 cluster stop-node --dir "$tmp/nothing-here" 0
expect 2 cluster add-node
expect 2 cluster add-node --dir "$tmp/c" extra
expect 2 cluster add-node --dir "$tmp/nothing-here"
# the common options parse before and after every command's own (move-replica's --cancel
# once took --broker for itself)
while read -r args; do
  # shellcheck disable=SC2086 # word splitting of the command line is the point
  { SHOALCTL_DRY_RUN=1 expect 0 --broker tcp://127.0.0.1:1 --json --timeout 100 $args
    SHOALCTL_DRY_RUN=1 expect 0 $args --broker tcp://127.0.0.1:1 --json --timeout 100; }
done <<'CMDS'
put k v
get k
del k
cas k a b
scan --limit 3
batch put k v del j
status
events --no-follow
transfer-leader 0 1
add-node 3 tcp://127.0.0.1:1 tcp://127.0.0.1:2
remove-node 3
move-replica 0 1 2
move-replica --cancel 0
add-shard
compact 0
snapshot
drain-node 1 --plan
rebalance --plan
CMDS
SHOALCTL_DRY_RUN=1 expect 2 cluster add-node
SHOALCTL_DRY_RUN=1 expect 2 cluster add-node --dir "$tmp/c" 5
SHOALCTL_DRY_RUN=1 expect 0 cluster add-node --dir "$tmp/c"
# node ids end at 63: no next id after a node-63.cfg
mkdir -p "$tmp/full"
printf 'broker\n    client_endpoint = "tcp://127.0.0.1:1"\ncluster\n    nodes\n        0\n' >"$tmp/full/broker.cfg"
touch "$tmp/full/node-0.cfg" "$tmp/full/node-63.cfg"
expect 2 cluster add-node --dir "$tmp/full"
grep -q "63" "$tmp/err" || { echo "FAIL: add-node past node 63 does not say why: $(cat "$tmp/err")"; fail=1; }
expect 2 cluster start-node --dir "$tmp/full" 5
expect 2 bench
expect 2 bench sideways
expect 2 bench put --clients 0
expect 2 bench put --duration 0
expect 2 bench put --key-size 2 --keys 1000
expect 2 bench put --value-size -1
expect 2 --timeout 0 get k
expect 2 --timeout soon get k
expect 2 --broker nonsense get k
expect 2 put "" v --timeout 300
expect 2 get "$(head -c 5000 /dev/zero | tr '\0' k)" --timeout 300
# help: exit 0 and text on stdout
for c in "" put get del cas scan batch watch status top events compact drain-node rebalance \
         cluster bench; do
  "$ctl" $c --help >"$tmp/out" 2>&1 </dev/null || { echo "FAIL: shoalctl $c --help exit $?"; fail=1; }
  [ -s "$tmp/out" ] || { echo "FAIL: shoalctl $c --help printed nothing"; fail=1; }
done
# nobody answers: exit 3, one line
expect 3 --timeout 300 get k
expect 3 put k v --timeout 300
expect 3 status --timeout 300
expect 3 rebalance --timeout 300
expect 3 drain-node 1 --plan --timeout 300
expect 3 --json --timeout 300 scan --prefix a
# top into a pipe or file: no terminal escapes (they cluttered logs)
expect 3 --timeout 300 top --count 1
grep -q $'\033' "$tmp/out" && { echo "FAIL: top wrote terminal escapes to a pipe"; fail=1; }
grep -q "shoalctl top" "$tmp/out" || { echo "FAIL: top printed no header: $(cat "$tmp/out")"; fail=1; }
# bench stopped by Ctrl-C: exit 130, the rate over the time measured (not --duration) and
# marked interrupted; stopped while loading keys: no results, one line saying so
bench_int() { # bench_int ARGS...: runs shoalctl bench ARGS, sends SIGINT after 1.5 s
  "$ctl" bench "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
  local pid=$!
  sleep 1.5; kill -INT $pid; wait $pid
}
bench_int put --duration 30 --clients 2; rc=$?
[ $rc = 130 ] && grep -q "interrupted" "$tmp/out" && ! grep -q "in 30.0 s" "$tmp/out" ||
  { echo "FAIL: bench put interrupted -> exit $rc: $(cat "$tmp/out" "$tmp/err")"; fail=1; }
bench_int --json put --duration 30 --clients 2; rc=$?
[ $rc = 130 ] && grep -q '"interrupted":true' "$tmp/out" && ! grep -q '"seconds":30.0' "$tmp/out" ||
  { echo "FAIL: bench --json put interrupted -> exit $rc: $(cat "$tmp/out" "$tmp/err")"; fail=1; }
bench_int get --keys 10 --duration 30 --clients 2; rc=$?
[ $rc = 130 ] && grep -q "interrupted while loading" "$tmp/err" && ! grep -q "loaded" "$tmp/err" &&
  [ ! -s "$tmp/out" ] ||
  { echo "FAIL: bench get interrupted loading -> exit $rc: $(cat "$tmp/out" "$tmp/err")"; fail=1; }
# the daemon: bad command lines and configs exit 2 with a reason
"$brk" >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: shoal-broker without --config"; fail=1; }
"$brk" --config 2>"$tmp/err"; [ $? = 2 ] && grep -q -- "--config needs a FILE" "$tmp/err" ||
  { echo "FAIL: shoal-broker --config without a file: $(cat "$tmp/err")"; fail=1; }
"$brk" --config "$tmp/missing.cfg" 2>"$tmp/err"; [ $? = 2 ] && grep -q "cannot open" "$tmp/err" ||
  { echo "FAIL: shoal-broker with a missing config"; fail=1; }
printf 'broker\n    request_timeout_ms = abc\ncluster\n    nodes\n        0\n            endpoint = "tcp://127.0.0.1:1"\n            pub_endpoint = "tcp://127.0.0.1:2"\n' >"$tmp/bad.cfg"
"$brk" --config "$tmp/bad.cfg" 2>"$tmp/err"; [ $? = 2 ] && grep -q "request_timeout_ms" "$tmp/err" ||
  { echo "FAIL: shoal-broker with a bad value: $(cat "$tmp/err")"; fail=1; }
[ $fail = 0 ] && echo "shoalctl argument contract: all checks passed"
exit $fail
