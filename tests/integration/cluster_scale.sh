#!/usr/bin/env bash
# cluster_scale.sh - scaling a cluster out and in with the planned moves of cmd_place.c,
# while writers keep writing through libshoal:
#   1. on 3 nodes with 4 shards x 3 replicas every node holds every shard: `rebalance` has
#      nothing to do and `drain-node` has nowhere to go (exit 2, one clear line);
#   2. node 3 joins; `rebalance --plan` lists 3 moves onto it, `rebalance` makes them, and
#      every node then holds 3 data replicas;
#   3. node 3 is drained, removed and stopped; its id returns at a new address with an
#      empty folder and gets its share again (broker and nodes follow the new address);
#   4. `drain-node 0` empties node 0 (its data replicas and its metadata replica), after
#      which `remove-node 0` is accepted; node 0 stops by itself, marks its folder and
#      refuses to start again;
#   5. node 4 joins, node 1 is killed and, while down, drained onto it and removed;
# then every acknowledged write must read back with its value, the data must still be
# served by the nodes left, and bad input must get exit 2;
#   6. `cluster down` and `cluster up` again: node 0 stays stopped, node 1 starts, learns
#      it was removed and leaves, and the data is served by nodes 2, 3 and 4.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 3 4 3

# data replicas per node ("0:4 1:4 2:4"), and whether node $1 holds anything at all
per_node() {
    status_py "
c = {}
for s in st['shards']:
    for r in s['replicas']: c[r['node']] = c.get(r['node'], 0) + 1
print(' '.join(f'{n}:{c.get(n, 0)}' for n in sorted(set(c) | {n['id'] for n in st['nodes']})))"
}
holds_any() {
    status_py "
n = $1
groups = st['shards'] + [st['meta']]
print(any(n in [r['node'] for r in g['replicas']] or n in g.get('leaving', []) for g in groups))"
}

# ---- 1. nothing to move, nowhere to go --------------------------------------------------
out=$(ctl rebalance) || { echo "FAIL: rebalance on a balanced cluster"; FAIL=1; }
[ "$out" = "nothing to move" ] || { echo "FAIL: rebalance printed '$out'"; FAIL=1; }
err=$(ctl drain-node 0 2>&1 >/dev/null)
rc=$?
[ "$rc" = 2 ] || { echo "FAIL: drain-node with no spare node: exit $rc, want 2"; FAIL=1; }
echo "$err" | grep -q "no up node can take shard" ||
    { echo "FAIL: drain-node with no spare node said '$err'"; FAIL=1; }
[ "$(echo "$err" | wc -l)" = 1 ] || { echo "FAIL: more than one error line: $err"; FAIL=1; }
want 2 "drain-node of a node not in the map" ctl drain-node 9
want 2 "drain-node without a node" ctl drain-node
want 2 "drain-node with two nodes" ctl drain-node 0 1
want 2 "drain-node of a bad id" ctl drain-node x
want 2 "rebalance with an argument" ctl rebalance 1
want 2 "--move-timeout 0" ctl rebalance --move-timeout 0
want 2 "unknown option" ctl rebalance --fast

cl_start_writers 2
sleep 1

# ---- 2. node 3 joins and gets its share -------------------------------------------------
out=$(ctl cluster add-node --dir "$DIR") || { echo "FAIL: cluster add-node: $out"; FAIL=1; }
echo "$out" | grep -q "^node 3 added" || { echo "FAIL: cluster add-node printed '$out'"; FAIL=1; }
plan=$(ctl rebalance --plan) || { echo "FAIL: rebalance --plan"; FAIL=1; }
[ "$(echo "$plan" | grep -c "to node 3$")" = 3 ] && [ "$(echo "$plan" | wc -l)" = 3 ] ||
    { echo "FAIL: rebalance --plan with an empty node 3 printed: $plan"; FAIL=1; }
[ "$(per_node)" = "0:4 1:4 2:4 3:0" ] || { echo "FAIL: --plan moved something: $(per_node)"; FAIL=1; }
ctl --json rebalance >"$DIR/rebalance.json" || { echo "FAIL: rebalance"; FAIL=1; }
python3 - "$DIR/rebalance.json" <<'PY' || FAIL=1
import json, sys
r = json.load(open(sys.argv[1]))
if r["status"] != "ok" or len(r["moves"]) != 3 or any(m["to"] != 3 for m in r["moves"]):
    print(f"FAIL: rebalance --json: {r}"); sys.exit(1)
print("rebalance: " + ", ".join(f"shard {m['shard']} {m['from']}->{m['to']} {m['ms']} ms" for m in r["moves"]))
PY
[ "$(per_node)" = "0:3 1:3 2:3 3:3" ] || { echo "FAIL: after rebalance: $(per_node)"; FAIL=1; }
out=$(ctl rebalance) && [ "$out" = "nothing to move" ] ||
    { echo "FAIL: a second rebalance: '$out'"; FAIL=1; }

# ---- 3. node 3 leaves and its id returns at a new address, empty ------------------------
# The broker and the nodes know node 3 at its old address: the map's new one must replace
# it, or nobody reaches the new node 3.
ctl drain-node 3 >"$DIR/drain3.out" || { echo "FAIL: drain-node 3: $(cat "$DIR/drain3.out")"; FAIL=1; }
[ "$(per_node)" = "0:4 1:4 2:4 3:0" ] || { echo "FAIL: after draining node 3: $(per_node)"; FAIL=1; }
retry_admin remove-node 3
ctl cluster stop-node --dir "$DIR" 3 >/dev/null
rm -rf "$DIR/node-3"
P3=$((BASE + 130))
sed -i -e "0,/endpoint = .*/s//endpoint = \"tcp:\/\/127.0.0.1:$P3\"/" \
    -e "0,/pub_endpoint = .*/s//pub_endpoint = \"tcp:\/\/127.0.0.1:$((P3 + 1))\"/" "$DIR/node-3.cfg"
ctl cluster start-node --dir "$DIR" 3 >/dev/null || { echo "FAIL: start the new node 3"; FAIL=1; }
retry_admin add-node 3 "tcp://127.0.0.1:$P3" "tcp://127.0.0.1:$((P3 + 1))"
end=$((SECONDS + 45))
while [ "$SECONDS" -lt "$end" ]; do
    status_py "sys.exit(0 if [n for n in st['nodes'] if n['id'] == 3 and n['up'] and n['endpoint'].endswith(':$P3')] else 1)" \
        2>/dev/null && break
    sleep 0.2
done
ctl rebalance >"$DIR/rebalance2.out" ||
    { echo "FAIL: rebalance onto the new node 3: $(cat "$DIR/rebalance2.out")"; FAIL=1; }
[ "$(per_node)" = "0:3 1:3 2:3 3:3" ] || { echo "FAIL: after the second rebalance: $(per_node)"; FAIL=1; }

# ---- 4. node 0 is drained, removed and stopped ------------------------------------------
want 2 "remove-node of a node holding replicas" ctl remove-node 0
ctl drain-node 0 >"$DIR/drain.out" || { echo "FAIL: drain-node 0: $(cat "$DIR/drain.out")"; FAIL=1; }
cat "$DIR/drain.out"
grep -q "the metadata group from node 0" "$DIR/drain.out" ||
    { echo "FAIL: drain-node 0 did not move the metadata group"; FAIL=1; }
# no wait: drain-node saw its moves finished in the same rows (the metadata row's members
# are the map's, as every shard's)
[ "$(holds_any 0)" = False ] || { echo "FAIL: node 0 still holds replicas: $(ctl status)"; FAIL=1; }
[ "$(per_node)" = "0:0 1:4 2:4 3:4" ] || { echo "FAIL: after the drain: $(per_node)"; FAIL=1; }
retry_admin remove-node 0
# a removed node stops by itself, marks its folder, and refuses to start again
P0=$(cat "$DIR/pids/node-0.pid")
for _ in $(seq 1 100); do kill -0 "$P0" 2>/dev/null || break; sleep 0.2; done
kill -0 "$P0" 2>/dev/null && { echo "FAIL: node 0 still runs 20 s after its removal"; FAIL=1; }
grep -q "node 0: removed from the cluster by shard map version" "$DIR/logs/node-0.log" &&
    grep -q "left the cluster; stopped cleanly" "$DIR/logs/node-0.log" && [ -f "$DIR/node-0/removed" ] ||
    { echo "FAIL: node 0 did not leave cleanly with its folder marked: $(tail -n 3 "$DIR/logs/node-0.log")"; FAIL=1; }
[ "$(ctl cluster stop-node --dir "$DIR" 0)" = "node 0 was not running" ] || { echo "FAIL: node 0 still running"; FAIL=1; }
err=$(ctl cluster start-node --dir "$DIR" 0 2>&1) && { echo "FAIL: a removed node started again"; FAIL=1; }
echo "$err" | grep -q "node 0 was removed from the cluster (shard map version" ||
    { echo "FAIL: unclear refusal to start a removed node: '$err'"; FAIL=1; }

# ---- 5. a dead node is replaced: node 4 joins, node 1 is killed, drained while down ------
ctl cluster add-node --dir "$DIR" >/dev/null || { echo "FAIL: cluster add-node (node 4)"; FAIL=1; }
ctl cluster stop-node --dir "$DIR" --kill 1 >/dev/null
ctl drain-node 1 >"$DIR/drain1.out" ||
    { echo "FAIL: drain-node 1 while it is down: $(cat "$DIR/drain1.out")"; FAIL=1; }
[ "$(per_node)" = "1:0 2:4 3:4 4:4" ] || { echo "FAIL: after draining the dead node 1: $(per_node)"; FAIL=1; }
retry_admin remove-node 1

cl_check_writers "two rebalances, four drains (one of a dead node) and a node's return"
end=$((SECONDS + 45))
while [ "$SECONDS" -lt "$end" ]; do # every shard served by the three nodes left
    status_py "sys.exit(0 if all(s['leader'] in (2, 3, 4) for s in st['shards']) and st['meta']['leader'] in (2, 3, 4) else 1)" \
        2>/dev/null && break
    sleep 0.2
done
check "put after the drain" ctl put scale-k scale-v
[ "$(ctl get scale-k)" = scale-v ] || { echo "FAIL: get after the drain"; FAIL=1; }

# ---- 6. the whole cluster restarts from its folder --------------------------------------
# node 0 (removed while running, its folder marked) stays stopped; node 1 (removed while
# down) starts, learns it was removed and leaves; `up` succeeds with nodes 2, 3 and 4
ctl cluster down --dir "$DIR" >/dev/null
up_err=$(ctl cluster up --dir "$DIR" 2>&1 >/dev/null) || { echo "FAIL: cluster up again: $up_err"; FAIL=1; }
echo "$up_err" | grep -q "node 0 left stopped: .* was removed from the cluster" ||
    { echo "FAIL: up again does not say node 0 stays stopped: '$up_err'"; FAIL=1; }
# gone: marked, and its pid file removed by `up` or its process ended
node1_left() {
    [ -f "$DIR/node-1/removed" ] &&
        ! { [ -f "$DIR/pids/node-1.pid" ] && kill -0 "$(cat "$DIR/pids/node-1.pid")" 2>/dev/null; }
}
for _ in $(seq 1 100); do node1_left && break; sleep 0.2; done
node1_left || { echo "FAIL: node 1 still runs 20 s after the restart"; FAIL=1; }
[ -f "$DIR/node-1/removed" ] && grep -q "left the cluster; stopped cleanly" "$DIR/logs/node-1.log" ||
    { echo "FAIL: node 1, removed while down, did not leave after the restart: $(tail -n 3 "$DIR/logs/node-1.log")"; FAIL=1; }
[ "$(ctl get scale-k)" = scale-v ] || { echo "FAIL: get after the restart"; FAIL=1; }
# node 0's folder emptied: started empty, a bootstrap node would serve bootstrap replicas of
# its own; start-node refuses it as `up` leaves it, and starts nothing
rm -rf "${DIR:?}/node-0"/*
err=$(ctl cluster start-node --dir "$DIR" 0 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$err" | grep -q "node 0 not started: .*/node-0 holds no data" &&
    [ ! -f "$DIR/pids/node-0.pid" ] ||
    { echo "FAIL: start-node of a wiped bootstrap node: exit $rc: '$err'"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "PASS: cluster_scale"
exit $FAIL
