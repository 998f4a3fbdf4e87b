#!/usr/bin/env bash
# cluster_quorum_lost.sh - status tells the truth about idle groups that lose their quorum:
# an idle group's leader stops ticking (quiescence, docs/ARCHITECTURE.md), so without the
# node waking it when its voters' nodes fall silent it went on being shown (and answering
# as) the leader of a group that cannot commit. With 3 nodes, 2 shards and the metadata
# group idle, the two nodes that do not lead shard 0 are killed: within a few seconds no
# group may show a leader; after the nodes come back every group elects one and serves
# again.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 3 2 3
check "a first write" ctl put --timeout 10000 before yes
sleep 2 # every group idle for its quiesce ticks (1 s): leaders and followers stop ticking

# every group's leader as "shard:leader" (none: -1 or null)
leaders() {
    status_py "
rows = [(str(s['id']), s['leader']) for s in st['shards']] + [('meta', st['meta']['leader'])]
print(' '.join(k + ':' + ('none' if l is None or l < 0 else str(l)) for k, l in rows))"
}
for _ in $(seq 75); do # an election under a loaded host (tests two at a time) may be late
    before=$(leaders)
    echo "$before" | grep -q ":none" || break
    sleep 0.2
done
echo "$before" | grep -q ":none" && { echo "FAIL: a group without a leader 15 s before the kills: $before"; FAIL=1; }

L=$(leader_of 0) # it survives: the two other nodes go
OTHERS=$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$L" | tr '\n' ' ')
for i in $OTHERS; do ctl cluster stop-node --dir "$DIR" "$i" --kill >/dev/null; done
end=$((SECONDS + 10))
now=$(leaders)
while [ "$SECONDS" -lt "$end" ] && [ "$now" != "0:none 1:none meta:none" ]; do
    sleep 0.25
    now=$(leaders)
done
[ "$now" = "0:none 1:none meta:none" ] ||
    { echo "FAIL: 10 s after losing two of three nodes: leaders $now (before: $before)"; FAIL=1; }
want 3 "a write without a quorum" ctl put --timeout 1000 during no

for i in $OTHERS; do check "start node $i" ctl cluster start-node --dir "$DIR" "$i"; done
ok=0
for _ in $(seq 1 60); do
    ctl put --timeout 5000 after yes >/dev/null 2>&1 && ok=1 && break
    sleep 0.5
done
[ "$ok" = 1 ] || { echo "FAIL: no write after the nodes came back"; FAIL=1; }
[ "$(ctl get before 2>/dev/null)" = yes ] || { echo "FAIL: the first write was lost"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "cluster_quorum_lost: ok"
exit "$FAIL"
