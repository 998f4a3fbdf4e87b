#!/usr/bin/env bash
# cluster_balance.sh - leader balancing (raft/balance_leaders, docs/ARCHITECTURE.md "Leader
# balancing") on 3 nodes with 6 shards, writers running (3 shoalctl put loops and
# move_writer's 64 pipelined puts):
#   1. after `cluster up` the leaders end up 2/2/2 and stay put (no flapping: steady below);
#   2. the node that leads shard 0 (and one more shard) is killed: the other two take
#      over, 3/3, and writes go on;
#   3. it is restarted: leaders return to 2/2/2 within 45 s, it leads 2 again, and they
#      stay put (no flapping);
# then every acknowledged write must read back with its value.
source "$(dirname "$0")/cluster_lib.sh"

handovers() { cat "$DIR"/logs/node-*.log 2>/dev/null | grep -c "balancing: leadership handed"; }
# Shards node $1 led in the view wait_balanced last found steady: a fresh status could
# already show an election that followed (a starved node on a shared machine), which the
# steady check after it allows and waits out.
leads() { python3 -c "import ast; print(sum(1 for _, l in ast.literal_eval(open('$DIR/balanced').read()) if l == $1))"; }
view() { python3 -c "import ast; print([l for _, l in ast.literal_eval(open('$DIR/balanced').read())])" 2>/dev/null; }
# No flapping for $1 s: a hand-over in the window may only restore a preferred leader that
# lost its leadership to an election (this machine is shared: a starved node misses its
# heartbeats), at most 3 per group (the back-off doubles while they do not stick), and the
# leaders must be balanced and steady again afterwards.
steady() {
    local before
    before=$(handovers)
    sleep "$1"
    cat "$DIR"/logs/node-*.log | grep "balancing: leadership handed" | tail -n +"$((before + 1))" |
        python3 -c "
import re, sys
lines = sys.stdin.read().splitlines()
per = {}
for l in lines:
    g = re.search(r'shard (\d+): balancing', l).group(1)
    per[g] = per.get(g, 0) + 1
    if 'preferred is down' in l:
        print('FAIL: a hand-over to a fallback while every node is up: ' + l); sys.exit(1)
if any(v > 3 for v in per.values()):
    print(f'FAIL: groups handed over more than 3 times in $1 s: {per}'); sys.exit(1)
print(f'{len(lines)} hand-overs in the $1 s after $2 (restoring leaders lost to elections): {per}')
" || FAIL=1
    local t
    t=$(wait_balanced 45 "0 1 2") || { echo "$t"; FAIL=1; }
}

cl_up 3 6

# ---- 1. balanced after start ------------------------------------------------------------
t=$(wait_balanced 45 "0 1 2") || { echo "$t"; FAIL=1; }
echo "balanced after start in ${t}s: $(view), metadata leader $(status_py "print(st['meta']['leader'])")"
for i in 0 1 2; do
    [ "$(leads "$i")" = 2 ] || { echo "FAIL: node $i leads $(leads "$i") shards, want 2"; FAIL=1; }
done
status_py "sys.exit(0 if st['meta']['leader'] is not None else 1)" || { echo "FAIL: no metadata leader"; FAIL=1; }
steady 4 "start"

cl_start_writers 3
sleep 1

# ---- 2. the leader of two shards is killed ---------------------------------------------
K=$(leader_of 0)
acked_before=$(cat "$DIR"/acked-* 2>/dev/null | wc -l)
echo "$(date +%T) killing node $K"
ctl cluster stop-node --dir "$DIR" --kill "$K" >/dev/null
others=$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$K" | tr '\n' ' ')
t=$(wait_balanced 45 "$others") || { echo "$t"; FAIL=1; }
echo "node $K killed: the others lead $(view) after ${t}s"
for i in $others; do
    [ "$(leads "$i")" = 3 ] || { echo "FAIL: node $i leads $(leads "$i") shards with node $K down, want 3"; FAIL=1; }
done
sleep 2
acked_down=$(cat "$DIR"/acked-* 2>/dev/null | wc -l)
[ "$acked_down" -gt "$acked_before" ] ||
    { echo "FAIL: no write acknowledged with node $K down ($acked_before before, $acked_down after)"; FAIL=1; }

# ---- 3. it comes back: leaders return to it ----------------------------------------------
echo "$(date +%T) restarting node $K"
ctl cluster start-node --dir "$DIR" "$K" >/dev/null || { echo "FAIL: restart node $K"; FAIL=1; }
t=$(wait_balanced 45 "0 1 2") || { echo "$t"; FAIL=1; }
echo "node $K restarted: leaders $(view) after ${t}s"
[ "$(leads "$K")" = 2 ] || { echo "FAIL: node $K leads $(leads "$K") shards after its restart, want 2"; FAIL=1; }
steady 4 "the restart"
echo "balancing hand-overs in all: $(handovers)"
cat "$DIR"/logs/node-*.log | grep -E "balancing: |leader is node .*this node" | sort -k4 | cut -c12-200

cl_check_writers "a leader kill and restart with leader balancing"
[ "$FAIL" = 0 ] && echo "cluster_balance: ok"
exit "$FAIL"
