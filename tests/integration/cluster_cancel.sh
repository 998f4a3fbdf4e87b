#!/usr/bin/env bash
# cluster_cancel.sh - cancelling an unfinished move (`shoalctl move-replica --cancel SHARD`,
# docs/OPERATIONS.md "Changing the placement") with writers running through libshoal:
#   1. node 3 is down; shard 0's replica is moved from its leader to node 3, so the move
#      stays open (node 3 is added as a learner that never catches up); the cancel puts the
#      leader back and lists node 3 as leaving, the group removes the learner, and the map
#      closes the move with shard 0 on its first three nodes again (a second move of shard 0
#      meanwhile is put off with exit 3);
#   2. the same for the metadata group (move-replica meta 0 3, then --cancel meta);
#   3. node 3 starts and holds no replica; bad --cancel input gets exit 2;
#   4. a cancel after FROM already left the group's configuration: the metadata nodes hold
#      MoveDone reports (test hold point meta_hold_moves, actors/failpoint.h), so shard 0's
#      move to node 3 stays open after its leader removed FROM from the group; the cancel
#      must bring FROM back (learner, promotion) with the data it kept, remove node 3, and
#      close; FROM must then serve (a majority needs it); a transfer of leadership to the
#      stopped member is refused and writes go on;
# then every acknowledged write must be readable with its value.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 4 1 3 # shard 0 on nodes 0 1 2; the metadata group on 0 1 2; node 3 holds nothing

# "replicas|leaving" of shard $1 (meta: the metadata group) in the map
placement_of() {
    status_py "
s = st['meta'] if '$1' == 'meta' else [s for s in st['shards'] if s['id'] == $1][0]
print(' '.join(str(r['node']) for r in sorted(s['replicas'], key=lambda r: r['node'])) + '|' + ' '.join(map(str, s['leaving'])))"
}

# Waits (15 s) until placement_of $1 is $2.
wait_placement_is() {
    local end=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$end" ] && [ "$(placement_of "$1")" != "$2" ]; do sleep 0.2; done
}

wait_leaders() {
    local end=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$end" ]; do
        status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) and st['meta']['leader'] is not None else 1)" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "FAIL: a group has no leader after 60 s: $(ctl status 2>&1)"
    FAIL=1
}
# Waits (10 s) until a leader of group $1 (a shard id, 4294967295: the metadata group) has
# proposed adding node 3 as a learner.
wait_learner_added() {
    for _ in $(seq 1 100); do
        grep -hq "shard $1: configuration change: add learner node 3 " "$DIR"/logs/node-*.log && return 0
        sleep 0.1
    done
}
wait_leaders
cl_start_writers 1
sleep 1
ctl cluster stop-node --dir "$DIR" 3 >/dev/null

# ---- 1. a data shard's move onto a node that is down, cancelled --------------------------
L=$(leader_of 0)
want 2 "cancel without a move in progress" ctl move-replica --cancel 0
retry_admin move-replica 0 "$L" 3
wait_version 2
wait_learner_added 0 # the leader adds node 3 as a learner, which never catches up
[ "$(placement_of 0)" = "$(echo 0 1 2 3 | tr ' ' '\n' | grep -vx "$L" | tr '\n' ' ' | sed 's/ $//')|$L" ] ||
    { echo "FAIL: open move: shard 0 placement '$(placement_of 0)'"; FAIL=1; }
# another move of shard 0 while this one is open: put off (exit 3, retry later), not refused
F=$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$L" | head -n 1)
for _ in $(seq 1 20); do
    out=$(ctl move-replica 0 "$F" "$L" 2>&1); code=$?
    echo "$out" | grep -q "already moving" && break
    sleep 0.25
done
[ $code = 3 ] && echo "$out" | grep -q "already moving a replica" ||
    { echo "FAIL: a second move of a moving shard: exit $code: $out"; FAIL=1; }
retry_admin move-replica --cancel 0
wait_version 4 # v3 the cancel, v4 the move closed once the learner was removed
wait_placement_is 0 "0 1 2|"
[ "$(placement_of 0)" = "0 1 2|" ] || { echo "FAIL: after the cancel: shard 0 placement '$(placement_of 0)'"; FAIL=1; }
grep -hq "shard 0: configuration change: remove node 3" "$DIR"/logs/node-*.log ||
    { echo "FAIL: no node removed node 3's learner from shard 0"; FAIL=1; }

# ---- 2. the metadata group's move, cancelled ---------------------------------------------
retry_admin move-replica meta 0 3
wait_version 5
wait_learner_added 4294967295
retry_admin move-replica --cancel meta
wait_version 7
# no wait: the metadata row's members are the map's, so one status answer agrees with itself
# (they came from the leader's status, polled every 500 ms, and trailed the map's version)
got=$(status_py "
m = st['meta']
print(st['map_version'], ' '.join(str(r['node']) for r in sorted(m['replicas'], key=lambda r: r['node'])) + '|' + ' '.join(map(str, m['leaving'])))")
[ "$got" = "7 0 1 2|" ] || { echo "FAIL: after the cancel: map version and metadata placement '$got'"; FAIL=1; }

# ---- 3. node 3 comes back and holds nothing; bad input ---------------------------------
ctl cluster start-node --dir "$DIR" 3 >/dev/null || { echo "FAIL: start node 3"; FAIL=1; }
sleep 2
[ -d "$DIR/node-3/shard-0" ] && { echo "FAIL: node 3 opened shard 0"; FAIL=1; }
[ -d "$DIR/node-3/meta" ] && { echo "FAIL: node 3 opened the metadata group"; FAIL=1; }
want 2 "cancel after the move closed" ctl move-replica --cancel 0
want 2 "cancel of an unknown shard" ctl move-replica --cancel 77
want 2 "cancel without a shard" ctl move-replica --cancel
want 2 "cancel with FROM and TO" ctl move-replica --cancel 0 1 2
want 2 "cancel as an option of another command" ctl transfer-leader --cancel 0 1
err=$(ctl move-replica --cancel 0 2>&1 >/dev/null)
[ "$(echo "$err" | wc -l)" = 1 ] && echo "$err" | grep -q "no move in progress" ||
    { echo "FAIL: unclear error for a cancel without a move: '$err'"; FAIL=1; }
[ "$(map_version)" = 7 ] || { echo "FAIL: map version $(map_version), want 7"; FAIL=1; }

# ---- 4. a cancel after FROM left the group's configuration ------------------------------
HOLD=$DIR/hold-moves
touch "$HOLD"
for i in 0 1 2; do # the metadata nodes, one at a time
    ctl cluster stop-node --dir "$DIR" "$i" >/dev/null
    SHOAL_FAILPOINT=meta_hold_moves@$HOLD ctl cluster start-node --dir "$DIR" "$i" >/dev/null ||
        { echo "FAIL: restart node $i"; FAIL=1; }
    wait_leaders
done
L=$(leader_of 0)
REST=$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$L" | tr '\n' ' ' | sed 's/ $//')
retry_admin move-replica 0 "$L" 3
wait_version 8
for _ in $(seq 1 300); do # node 3 added, caught up, promoted; then FROM removed
    grep -hq "shard 0: configuration change: remove node $L " "$DIR"/logs/node-*.log && break
    sleep 0.1
done
grep -hq "shard 0: configuration change: remove node $L " "$DIR"/logs/node-*.log ||
    { echo "FAIL: shard 0's leader did not remove node $L within 30 s"; FAIL=1; }
sleep 1 # the removal commits; the move stays open (MoveDone held)
[ "$(placement_of 0)" = "$REST 3|$L" ] ||
    { echo "FAIL: held move: shard 0 placement '$(placement_of 0)', want '$REST 3|$L'"; FAIL=1; }
[ "$(map_version)" = 8 ] || { echo "FAIL: the held move closed (map version $(map_version))"; FAIL=1; }
retry_admin move-replica --cancel 0
wait_version 9
rm -f "$HOLD" # MoveDone reports count again: the cancel can close
wait_version 10
wait_placement_is 0 "0 1 2|"
[ "$(placement_of 0)" = "0 1 2|" ] ||
    { echo "FAIL: after the late cancel: shard 0 placement '$(placement_of 0)'"; FAIL=1; }
for what in "add learner node $L " "promote node $L " "remove node 3 "; do
    [ "$(grep -h "shard 0: configuration change: $what" "$DIR"/logs/node-*.log | wc -l)" -ge 1 ] ||
        { echo "FAIL: late cancel: no '$what' in shard 0's configuration changes"; FAIL=1; }
done
for _ in $(seq 1 200); do [ -d "$DIR/node-3/shard-0" ] || break; sleep 0.1; done
[ -d "$DIR/node-3/shard-0" ] && { echo "FAIL: node 3 kept shard 0 after the late cancel"; FAIL=1; }
M=${REST%% *} # with another member stopped, shard 0's majority needs node L
ctl cluster stop-node --dir "$DIR" "$M" >/dev/null
ok=0
for _ in $(seq 1 40); do
    ctl put --timeout 5000 late-cancel "node $L serves" >/dev/null 2>&1 && ok=1 && break
    sleep 0.25
done
[ "$ok" = 1 ] && [ "$(ctl get late-cancel 2>/dev/null)" = "node $L serves" ] ||
    { echo "FAIL: shard 0 does not serve with node $M stopped (node $L back?)"; FAIL=1; }
# a transfer to the stopped voter is refused (it would stop the shard's writes for nothing)
sleep 1 # past an election timeout since node M's last frame
err=$(ctl transfer-leader 0 "$M" 2>&1 >/dev/null); code=$?
[ $code = 3 ] && echo "$err" | grep -q "node $M not heard from" ||
    { echo "FAIL: transfer of shard 0 to stopped node $M: exit $code: $err"; FAIL=1; }
ctl put --timeout 2000 after-transfer yes >/dev/null 2>&1 ||
    { echo "FAIL: shard 0 stopped taking writes after a refused transfer"; FAIL=1; }
ctl cluster start-node --dir "$DIR" "$M" >/dev/null || { echo "FAIL: restart node $M"; FAIL=1; }
wait_leaders

sleep 1
cl_check_writers "the cancelled moves"
[ "$FAIL" = 0 ] && echo "cluster_cancel: ok"
exit "$FAIL"
