#!/usr/bin/env bash
# cluster_meta.sh - moving the metadata group's replicas online (docs/OPERATIONS.md,
# "Changing the placement"): with writers running through libshoal (2 shoalctl put loops
# and move_writer with 64 puts in flight),
#   1. the metadata replica on its *leader* is moved to node 3 (`move-replica meta L 3`):
#      learner, promote, leadership handed over, removal, and the old host deletes it;
#   2. node 0's data replica is moved off too, then node 0 is removed from the map and
#      stopped (a node that hosted the metadata group at bootstrap);
#   3. node 3 (not a bootstrap metadata node: its config still lists 0, 1, 2) is restarted
#      and must host the metadata group from DATA/shardmap and its log: with node 1 then
#      stopped, the metadata group (now nodes 1, 2, 3) needs node 3's vote to change the
#      map, and add-node/remove-node must still succeed through a restarted broker;
#   4. the metadata leader is killed and one bare `shoalctl add-node` right after succeeds
#      (the broker finds the new leader itself);
# then every acknowledged write must be readable with its value.
source "$(dirname "$0")/cluster_lib.sh"

# leader balancing off: ML below must still lead the metadata group when its replica is
# moved (balancing would move it, and restore it after every election on a loaded host)
cl_up 4 2 3 --balance-leaders off # shard 0 on nodes 0 1 2, shard 1 on 1 2 3; the metadata group on 0 1 2

meta_leader() { # the metadata leader of the highest term any node logged
    cat "$DIR"/logs/node-*.log | python3 -c "
import re, sys
seen = [(int(t), int(l)) for l, t in re.findall(r'shard 4294967295: leader is node (\d+) \(term (\d+)\)', sys.stdin.read())]
print(max(seen)[1] if seen else '')"
}

for _ in $(seq 1 100); do
    status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) else 1)" 2>/dev/null && break
    sleep 0.2
done
ML=""
for _ in $(seq 1 50); do ML=$(meta_leader); [ -n "$ML" ] && break; sleep 0.2; done
[ -n "$ML" ] || { echo "FAIL: no metadata leader in the events"; FAIL=1; ML=0; }

# ---- writers --------------------------------------------------------------------------
cl_start_writers 2 # and the pipelined writer: cluster_lib.sh
sleep 1

# ---- 1. the metadata replica leaves its leader for node 3 -----------------------------
want 2 "move-replica meta from a node without it" ctl move-replica meta 3 0
ML=$(meta_leader) # again: an election may have happened while the writers started
check "move-replica meta $ML 3 (the metadata leader leaves)" ctl move-replica meta "$ML" 3
wait_version 3 # v2 records the move, v3 closes it once the group's voters match
# the leader that recorded the move must hand over; an election just before it (a loaded
# machine) makes the move a follower's: then there is nothing to hand over
V2=$(grep -l "proposing shard map version 2 at" "$DIR"/logs/node-*.log | sed 's/.*node-\([0-9]*\)\.log/\1/')
for _ in $(seq 1 200); do [ -d "$DIR/node-$ML/meta" ] || break; sleep 0.1; done
[ -d "$DIR/node-$ML/meta" ] && { echo "FAIL: node $ML still has the metadata group's data"; FAIL=1; }
[ -d "$DIR/node-3/meta" ] || { echo "FAIL: node 3 has no metadata replica"; FAIL=1; }
grep -q "metadata group placed here" "$DIR/logs/node-3.log" ||
    { echo "FAIL: node 3 did not open the metadata group"; FAIL=1; }
if [ "$V2" = "$ML" ]; then
    grep -hq "shard 4294967295: leaving this node: leadership handed" "$DIR/logs/node-$ML.log" ||
        { echo "FAIL: the metadata leader $ML did not hand leadership over"; FAIL=1; }
else
    echo "note: node ${V2:-?} led the metadata group when the move was recorded, not $ML: no hand-over to check"
fi
NL=$(meta_leader)
[ -n "$NL" ] && [ "$NL" != "$ML" ] || { echo "FAIL: metadata leader '$NL' after the move"; FAIL=1; }
# `status` shows the metadata group's new members and a leader among them
want_meta=$(echo 0 1 2 3 | tr ' ' '\n' | grep -vx "$ML" | tr '\n' ' ' | sed 's/ $//')
got_meta=""
end=$((SECONDS + 45))
while [ "$SECONDS" -lt "$end" ]; do
    got_meta=$(status_py "m=st['meta']; print(' '.join(str(r['node']) for r in sorted(m['replicas'], key=lambda r: r['node'])) if m['leader'] in [r['node'] for r in m['replicas']] else '')" 2>/dev/null)
    [ "$got_meta" = "$want_meta" ] && break
    sleep 0.2
done
[ "$got_meta" = "$want_meta" ] || { echo "FAIL: status meta members '$got_meta', want '$want_meta'"; FAIL=1; }
ctl status | grep -E "^meta " | grep -q " 3:" || { echo "FAIL: status table: no node 3 in the meta row"; FAIL=1; }

# ---- 2. node ML gives up its data replicas too, then is removed -----------------------
v=$(map_version)
for s in 0 1; do
    if replicas_of "$s" | tr ' ' '\n' | grep -qx "$ML"; then
        to=$(echo 0 1 2 3 | tr ' ' '\n' | grep -vxF -f <(replicas_of "$s" | tr ' ' '\n') | head -n 1)
        retry_admin move-replica "$s" "$ML" "$to"
        v=$((v + 2))
        wait_version "$v"
    fi
done
retry_admin remove-node "$ML"
v=$((v + 1))
wait_version "$v"
ctl cluster stop-node --dir "$DIR" "$ML" >/dev/null

# ---- 3. node 3 restarts and must host the metadata group from its own files -----------
ctl cluster stop-node --dir "$DIR" 3 >/dev/null
ctl cluster start-node --dir "$DIR" 3 >/dev/null || { echo "FAIL: restart node 3"; FAIL=1; }
sleep 1
# the metadata group is now {1,2,3} minus ML; stop another of its hosts so node 3's vote
# is needed for every map change
OTHER=$(echo 1 2 | tr ' ' '\n' | grep -vx "$ML" | head -n 1)
ctl cluster stop-node --dir "$DIR" "$OTHER" >/dev/null
broker_restart # a broker that starts now must find the moved metadata group's leader too
P5=$((BASE + 120))
retry_admin add-node 5 "tcp://127.0.0.1:$P5" "tcp://127.0.0.1:$((P5 + 1))"
retry_admin remove-node 5
wait_version $((v + 2))
grep -q "shard map version $((v + 2))" "$DIR/logs/node-3.log" ||
    { echo "FAIL: node 3 did not adopt map version $((v + 2))"; FAIL=1; }
ctl cluster start-node --dir "$DIR" "$OTHER" >/dev/null || { echo "FAIL: restart node $OTHER"; FAIL=1; }

# ---- 4. a bare map change right after the metadata leader was killed -------------------
# The broker's guess is then dead (or, once it moved on, answers NOT_LEADER while the
# others elect): the broker itself tries the next node until one leads, so one shoalctl
# call, without retry_admin, succeeds.
for _ in $(seq 1 50); do
    ML2=$(status_py "l = st['meta']['leader']; print(-1 if l is None else l)" 2>/dev/null) && [ "${ML2:--1}" -ge 0 ] && break
    sleep 0.2
done
ctl cluster stop-node --dir "$DIR" "$ML2" --kill >/dev/null
check "add-node at once after the metadata leader $ML2 was killed" \
    ctl add-node 6 "tcp://127.0.0.1:$((P5 + 2))" "tcp://127.0.0.1:$((P5 + 3))"
ctl cluster start-node --dir "$DIR" "$ML2" >/dev/null || { echo "FAIL: restart node $ML2"; FAIL=1; }
retry_admin remove-node 6
wait_version $((v + 4))

# ---- every acknowledged write is there ------------------------------------------------
sleep 1
cl_check_writers "the metadata move"
[ "$FAIL" = 0 ] && echo "cluster_meta: ok"
exit "$FAIL"
