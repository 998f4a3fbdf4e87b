#!/usr/bin/env bash
# node_dir_lock.sh - a second shoald given the data folder of a running node (same id, same
# data_dir, other ports) refuses to start before it touches anything there: it exits 1 at
# once naming the folder and the pid that holds it, the running node's Raft log segments are
# byte for byte unchanged (its recovery would have cut the live node's newest segment as a
# "torn tail"), and the running node still serves and restarts. Then the same for a node
# with no replicas (node/join = 1), which opens no engine, so nothing else would stop it.
source "$(dirname "$0")/node_lib.sh"

# A copy of node I's config on fresh ports: the same id and data_dir.
twin_config() {
    local ports
    read -r -a ports <<<"$(free_ports 2)"
    sed -e "s|^    endpoint = .*|    endpoint = \"tcp://127.0.0.1:${ports[0]}\"|" \
        -e "s|^    pub_endpoint = .*|    pub_endpoint = \"tcp://127.0.0.1:${ports[1]}\"|" \
        "$DIR/node-$1.cfg" >"$DIR/twin-$1.cfg"
    grep -q "127.0.0.1:${ports[0]}" "$DIR/twin-$1.cfg" || fail "twin config has no new endpoint"
}

# Sizes and checksums of node I's Raft log segments.
seg_sums() { (cd "$DIR/node-$1/raftlog" && stat -c '%n %s' ./*.seg && md5sum ./*.seg); }

# Starts the twin of node I; it must exit 1 within 5 s with the message naming the folder
# and the pid of node I's process.
twin_refused() {
    local i=$1 t0 rc=0
    t0=$(date +%s%N)
    timeout 10 "$SHOALD" --config "$DIR/twin-$i.cfg" 2>"$DIR/twin-$i.log" || rc=$?
    local ms=$((($(date +%s%N) - t0) / 1000000))
    cat "$DIR/twin-$i.log"
    [ "$rc" = 1 ] || fail "the second shoald on node $i's folder exited $rc, not 1"
    [ "$ms" -lt 5000 ] || fail "the second shoald took $ms ms to give up"
    grep -q "data folder $DIR/node-$i is in use by another process (pid ${PIDS[$i]})" \
        "$DIR/twin-$i.log" || fail "no message naming the folder and pid ${PIDS[$i]}"
    ! grep -q "torn tail" "$DIR/twin-$i.log" || fail "the second shoald recovered the log"
}

cluster_init 1 2
node_start 0
client wait-leaders 0,1 || fail "no leader"
client load 0 a 0 200 >"$DIR/acks0" || fail "load"
sleep 0.5 # idle: nothing more is written to the log meanwhile
before=$(seg_sums 0)
twin_config 0
twin_refused 0
sleep 0.2
[ "$(seg_sums 0)" = "$before" ] || fail "the running node's log changed: $before // $(seg_sums 0)"
kill -0 "${PIDS[0]}" || fail "the running node died"
client put 1 b 2 || fail "put after the refused start"
[ "$(client get 1 b)" = 2 ] || fail "get after the refused start"
node_stop 0 || fail "stop"
node_start 0 # its own restart finds the lock free
client check 0 a "$DIR/acks0" || fail "lost writes after a restart"
[ "$(client get 1 b)" = 2 ] || fail "get after restart"
node_kill 0
node_start 0 # and again after kill -9 (the kernel dropped the lock with the process)
[ "$(client get 1 b)" = 2 ] || fail "get after kill -9 and restart"
node_stop 0 || fail "stop"
# An empty node.id (a claim cut short by a power cut before its sync) is this node's to
# claim again, not a folder of "node 0" that no config may open.
: >"$DIR/node-0/node.id"
node_start 0
[ "$(client get 1 b)" = 2 ] || fail "get after a restart with an empty node.id"
[ "$(cat "$DIR/node-0/node.id")" = 0 ] || fail "node.id not written again: '$(cat "$DIR/node-0/node.id")'"
node_stop 0 || fail "stop"

# A joining node that holds no replica: two of them would write the same log.
sed -e 's|^    id = 0$|    id = 7\n    join = 1|' -e "s|$DIR/node-0\"|$DIR/node-1\"|" \
    "$DIR/node-0.cfg" >"$DIR/node-1.cfg"
grep -q "join = 1" "$DIR/node-1.cfg" || fail "no joining config"
node_start 1
for _ in $(seq 100); do grep -q "joining" "$DIR/node-1.log" && break; sleep 0.1; done
grep -q "joining" "$DIR/node-1.log" || fail "the joining node did not start"
before=$(seg_sums 1)
twin_config 1
twin_refused 1
[ "$(seg_sums 1)" = "$before" ] || fail "the joining node's log changed"
kill -0 "${PIDS[1]}" || fail "the joining node died"
node_stop 1 || fail "stop the joining node"
echo "PASS node_dir_lock"
