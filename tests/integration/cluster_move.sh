#!/usr/bin/env bash
# cluster_move.sh - online shard-map changes (docs/OPERATIONS.md, "Changing the placement"):
# writers keep writing through libshoal (3 shoalctl put loops, and move_writer with 64 puts
# in flight on one pipelined connection) while
#   1. shard 0's replica is moved away from its *leader* to node 3 (leadership handed over),
#   2. a follower replica of shard 1 is moved to node 0,
#   3. node 4 joins by `shoalctl cluster add-node` (its config node-0.cfg's with node/join =
#      1, started, registered in the map) and is given a replica of shard 2;
#   4. shard 3's replica is moved from its leader to node 2 and both are killed (SIGKILL)
#      right after the move was recorded, then restarted: the move completes;
#   5. shard 0 is moved back onto the node it left in step 1, and the metadata group from
#      node 0 to node 3 and back: each returning node starts an empty replica (snapshot),
#      then both nodes restart;
# then every acknowledged write must be readable with its value, the map version must have
# moved by exactly the changes made, `shoalctl status` must show the new placement, the old
# nodes' replica data must be gone, and bad admin input must get exit 2 with one clear line.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 4 4 3 # shard s on nodes s, s+1, s+2 (mod 4)

# Snapshots often and no trailing entries behind them: a moved replica then has to catch
# up by InstallSnapshot and then the log, not by the log alone.
for i in 0 1 2 3; do ctl cluster stop-node --dir "$DIR" "$i" >/dev/null; done
for i in 0 1 2 3; do
    sed -i 's/^storage$/storage\n    snapshot_entries = 64\n    snapshot_trailing_entries = 0/' \
        "$DIR/node-$i.cfg"
    ctl cluster start-node --dir "$DIR" "$i" >/dev/null || { echo "FAIL: restart node $i"; FAIL=1; }
done


# Waits until the map reaches version $1 and shard $2 sits on nodes "$3" (sorted).
wait_placement() {
    local want_v=$1 shard=$2 want=$3 v r end=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$end" ]; do
        v=$(map_version 2>/dev/null) && r=$(replicas_of "$shard" 2>/dev/null) &&
            [ "$v" -ge "$want_v" ] && [ "$r" = "$want" ] && return 0
        sleep 0.2
    done
    echo "FAIL: shard $shard: map v$v on '$r', want v$want_v on '$want'"
    FAIL=1
}

for _ in $(seq 1 100); do # every shard has a leader again
    status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) else 1)" 2>/dev/null && break
    sleep 0.2
done
# and leader balancing settled (one each), so that step 1 most likely moves a replica off
# its leader (balancing stays on through the moves; an election on a loaded host may still
# move a leader, as it could before, so this is a wait, not a check)
wait_balanced 30 "0 1 2 3" >/dev/null || echo "note: leaders not steady after 30 s; going on"

# ---- writers --------------------------------------------------------------------------
cl_start_writers 3 # and the pipelined writer: cluster_lib.sh
sleep 1

# ---- 1. move shard 0 away from its leader ---------------------------------------------
L0=$(leader_of 0)
check "snapshot of shard 0" ctl snapshot 0
sleep 0.5
retry_admin move-replica 0 "$L0" 3 # the leader leaves (exit 3: the metadata leader changed, retry)
# exit 3 means "another change is in flight, retry" (the first move's own steps); the
# answer once the first move is recorded must be exit 2
for _ in $(seq 1 50); do
    ctl move-replica 0 "$L0" 3 >/dev/null 2>&1
    rc=$?
    [ "$rc" = 3 ] || break
    sleep 0.1
done
[ "$rc" = 2 ] || { echo "FAIL: a second move of the same replica: exit $rc, want 2"; FAIL=1; }
want_set=$(echo 0 1 2 3 | tr ' ' '\n' | grep -vx "$L0" | sort -n | tr '\n' ' ' | sed 's/ $//')
wait_placement 3 0 "$want_set"
for _ in $(seq 1 200); do [ -d "$DIR/node-$L0/shard-0" ] || break; sleep 0.1; done
[ -d "$DIR/node-$L0/shard-0" ] && { echo "FAIL: node $L0 still has shard-0 data"; FAIL=1; }
[ -d "$DIR/node-3/shard-0" ] || { echo "FAIL: node 3 has no shard-0 data"; FAIL=1; }
grep -q "shard 0: installed snapshot" "$DIR/logs/node-3.log" ||
    { echo "FAIL: node 3 caught up on shard 0 without a snapshot"; FAIL=1; }

# ---- 2. move a follower replica of shard 1 to node 0 ----------------------------------
L1=$(leader_of 1)
F1=$(echo 1 2 3 | tr ' ' '\n' | grep -vx "$L1" | head -n 1)
retry_admin move-replica 1 "$F1" 0 # a follower leaves
want_set=$(echo 0 1 2 3 | tr ' ' '\n' | grep -vx "$F1" | sort -n | tr '\n' ' ' | sed 's/ $//')
wait_placement 5 1 "$want_set"

# ---- 3. a new node joins and takes a replica of shard 2 -------------------------------
P4=$((BASE + 108))
want 2 "move to a node not in the map" ctl move-replica 2 2 4
out=$(ctl cluster add-node --dir "$DIR" --json) || { echo "FAIL: cluster add-node (exit $?)"; FAIL=1; }
[ "$out" = "{\"node\":4,\"pid\":$(cat "$DIR/pids/node-4.pid" 2>/dev/null),\"endpoint\":\"tcp://127.0.0.1:$P4\",\"pub_endpoint\":\"tcp://127.0.0.1:$((P4 + 1))\"}" ] ||
    { echo "FAIL: cluster add-node printed '$out'"; FAIL=1; }
grep -q "snapshot_entries" "$DIR/node-4.cfg" ||
    { echo "FAIL: node-4.cfg lost node-0.cfg's storage settings"; FAIL=1; }
want 2 "add-node of a node already in the map" \
    ctl add-node 4 "tcp://127.0.0.1:$P4" "tcp://127.0.0.1:$((P4 + 1))"
retry_admin move-replica 2 2 4 # onto the new node
wait_placement 8 2 "0 3 4"

# ---- 4. a move interrupted at once by killing its leader and its target -------------
L3=$(leader_of 3)
retry_admin move-replica 3 "$L3" 2 # then both killed
ctl cluster stop-node --dir "$DIR" --kill "$L3" >/dev/null
ctl cluster stop-node --dir "$DIR" --kill 2 >/dev/null
# with its target down the move stays open (version 9): status shows who is leaving
ctl status --json >"$DIR/open.json"
python3 - "$DIR/open.json" "$L3" <<'PY' || FAIL=1
import json, sys
st = json.load(open(sys.argv[1]))
s3 = [s for s in st["shards"] if s["id"] == 3][0]
if st["map_version"] == 9 and s3["leaving"] != [int(sys.argv[2])]:
    print(f"FAIL: map v9 (move open) but shard 3 shows leaving {s3['leaving']}"); sys.exit(1)
if st["map_version"] not in (9, 10):
    print(f"FAIL: map version {st['map_version']} during move 4"); sys.exit(1)
PY
ctl status | grep -E "^3 " | grep -q "leaving: $L3" || [ "$(map_version)" != 9 ] ||
    { echo "FAIL: the status table does not show node $L3 leaving shard 3"; FAIL=1; }
sleep 1
ctl cluster start-node --dir "$DIR" "$L3" >/dev/null || { echo "FAIL: restart node $L3"; FAIL=1; }
ctl cluster start-node --dir "$DIR" 2 >/dev/null || { echo "FAIL: restart node 2"; FAIL=1; }
want_set=$(echo 0 1 2 3 | tr ' ' '\n' | grep -vx "$L3" | sort -n | tr '\n' ' ' | sed 's/ $//')
wait_placement 10 3 "$want_set"

# ---- 5. back onto nodes that deleted them: shard 0 to L0, the metadata group 0->3->0 --
# Each node deleted its replica and its log dropped the group (a DROP record): the new
# replica starts empty (a learner filled by a snapshot), never from the old records or
# from the bootstrap configuration, and survives a restart.
snaps_before=$(grep -c "shard 0: installed snapshot" "$DIR/logs/node-$L0.log")
retry_admin move-replica 0 3 "$L0"
wait_placement 12 0 "0 1 2"
for _ in $(seq 1 200); do [ -d "$DIR/node-3/shard-0" ] || break; sleep 0.1; done
[ -d "$DIR/node-3/shard-0" ] && { echo "FAIL: node 3 still has shard-0 data"; FAIL=1; }
[ "$(grep -c "shard 0: installed snapshot" "$DIR/logs/node-$L0.log")" -gt "$snaps_before" ] ||
    { echo "FAIL: node $L0 took shard 0 back without a snapshot"; FAIL=1; }
retry_admin move-replica meta 0 3
wait_version 14
for _ in $(seq 1 200); do [ -d "$DIR/node-0/meta" ] || break; sleep 0.1; done
[ -d "$DIR/node-0/meta" ] && { echo "FAIL: node 0 still has the metadata group's data"; FAIL=1; }
retry_admin move-replica meta 3 0
wait_version 16
for _ in $(seq 1 200); do [ -d "$DIR/node-3/meta" ] || break; sleep 0.1; done
[ -d "$DIR/node-3/meta" ] && { echo "FAIL: node 3 still has the metadata group's data"; FAIL=1; }
[ -d "$DIR/node-0/meta" ] || { echo "FAIL: node 0 did not take the metadata group back"; FAIL=1; }
# both restart from their logs (the returned groups' records after the DROP)
for i in $(echo "$L0" 0 | tr ' ' '\n' | sort -u); do
    ctl cluster stop-node --dir "$DIR" "$i" >/dev/null
    ctl cluster start-node --dir "$DIR" "$i" >/dev/null || { echo "FAIL: restart node $i"; FAIL=1; }
done
# both were metadata hosts: wait for every shard's leader and the metadata group's too,
# so the admin checks below do not meet an election
for _ in $(seq 1 100); do
    status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) and st['meta']['leader'] is not None else 1)" 2>/dev/null && break
    sleep 0.2
done

# ---- stop the writers, check every acknowledged write ---------------------------------
cl_check_writers "the moves"

# ---- status shows the placement; bad input gets exit 2 --------------------------------
ctl status >"$DIR/status.txt"
grep -q "^shard map v16 " "$DIR/status.txt" || { echo "FAIL: status header:"; head -1 "$DIR/status.txt"; FAIL=1; }
grep -Eq "^4 +up " "$DIR/status.txt" || { echo "FAIL: node 4 not shown up"; cat "$DIR/status.txt"; FAIL=1; }
want 2 "move to the same node" ctl move-replica 0 3 3
want 2 "move of an unknown shard" ctl move-replica 77 0 1
want 2 "move from a node without the shard" ctl move-replica 2 1 4
want 2 "move with a bad shard number" ctl move-replica x 1 2
want 2 "move with a missing argument" ctl move-replica 0 1
want 2 "remove-node of a node holding replicas" ctl remove-node 4
want 2 "remove-node of an unknown node" ctl remove-node 42
want 2 "remove-node of a metadata node" ctl remove-node 1
want 2 "add-node with a bad endpoint" ctl add-node 5 http://x tcp://127.0.0.1:1
want 2 "add-shard of an unknown shard" ctl add-shard 77
err=$(ctl add-shard 77 2>&1)
echo "$err" | grep -q "no shard 77" || { echo "FAIL: add-shard error unclear: '$err'"; FAIL=1; }
err=$(ctl move-replica 0 3 3 2>&1 >/dev/null)
[ "$(echo "$err" | wc -l)" = 1 ] && echo "$err" | grep -q "same node" ||
    { echo "FAIL: unclear error for a bad move: '$err'"; FAIL=1; }
err=$(ctl remove-node 4 2>&1 >/dev/null)
echo "$err" | grep -q "move its replicas off first" ||
    { echo "FAIL: unclear error for remove-node: '$err'"; FAIL=1; }

# a node that holds nothing is removed (registered, never started)
retry_admin add-node 5 "tcp://127.0.0.1:$((P4 + 2))" "tcp://127.0.0.1:$((P4 + 3))"
retry_admin remove-node 5
for _ in $(seq 1 50); do
    [ "$(map_version)" -ge 18 ] && ! status_py "print([n['id'] for n in st['nodes']])" | grep -q 5 && break
    sleep 0.2
done
[ "$(map_version)" = 18 ] || { echo "FAIL: map version $(map_version), want 18"; FAIL=1; }
status_py "print([n['id'] for n in st['nodes']])" | grep -q 5 && { echo "FAIL: node 5 still shown"; FAIL=1; }

[ "$FAIL" = 0 ] && echo "cluster_move: ok"
exit "$FAIL"
