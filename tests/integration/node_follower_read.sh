#!/usr/bin/env bash
# node_follower_read.sh - a follower serves linearizable reads (ReadIndex from its leader,
# then its own apply), in both read modes:
#   1. every write acknowledged by the leader is seen by a read sent right after it to a
#      follower only (never redirected; a NOT_LEADER during an election is asked again
#      there), 40 times per mode, and 8 times by
#      a follower that was paused while the write committed and is read as it resumes;
#   2. a follower cut off from both other nodes (paused) never answers with a value: its
#      forwarded read is failed (NOT_LEADER) or times out;
#   3. after a new leader wrote a new value, the old leader, resumed, never answers with
#      the old one, and once it follows it serves the new one.
source "$(dirname "$0")/node_lib.sh"
MODE=${1:-read_index}
cluster_init 3 1 "    read_mode = \"$MODE\""
for i in 0 1 2; do node_start $i; done
only() { "$NODE_CLIENT" --only "$1" --timeout "${2:-5000}" --attempt 1000 "$ENDPOINTS" "${@:3}"; }
# read_on NODE WANT WHAT: a linearizable get of k on NODE alone must give WANT. NOT_LEADER
# (exit 4: it heard of an election and failed its forwarded read) is retried; a value
# other than WANT, or no answer, fails the test.
read_on() {
    local v rc
    for _ in $(seq 1 50); do
        v=$(only "$1" 5000 get 0 k)
        rc=$?
        [ $rc = 4 ] || break
        sleep 0.05
    done
    [ $rc = 0 ] || fail "$MODE: $3: node $1 did not serve a linearizable read (exit $rc)"
    [ "$v" = "$2" ] || fail "$MODE: $3: node $1 read '$v' after '$2' was acknowledged"
}

for mode in read_index lease; do
    if [ "$mode" != "$MODE" ]; then # the same cluster, restarted in the other mode
        for i in 0 1 2; do node_stop $i; done
        sed -i "s/read_mode = \"$MODE\"/read_mode = \"$mode\"/" "$DIR"/node-*.cfg
        for i in 0 1 2; do node_start $i; done
        MODE=$mode
    fi
    client wait-leaders 0 || fail "$mode: no leader"
    L=$(leader_of 0)
    F=$(((L + 1) % 3))
    G=$(((L + 2) % 3))
    for f in $F $G; do # a follower serves reads once it has heard from its leader
        for _ in $(seq 1 50); do only "$f" 1000 get 0 k >/dev/null 2>&1; [ $? -le 1 ] && break; sleep 0.1; done
    done
    # 1. read-your-acknowledged-write on a follower
    for i in $(seq 1 40); do
        client put 0 k "$mode-$i" >/dev/null || fail "$mode: put $i"
        f=$F; [ $((i % 2)) = 0 ] && f=$G
        read_on "$f" "$mode-$i" "follower"
    done
    echo "$mode: 40 follower reads saw the write acknowledged before them"
    # 1b. a follower that missed the write (paused) and is read at once when it resumes:
    # its own state is behind, so only the read index makes it wait for the write
    for i in $(seq 1 8); do
        node_pause "$F"
        client put 0 k "$mode-behind-$i" >/dev/null || { node_resume "$F"; fail "$mode: put behind $i"; }
        node_resume "$F"
        read_on "$F" "$mode-behind-$i" "resumed follower"
    done
    echo "$mode: 8 reads on a follower that missed the write saw it"

    # 2. a follower cut off from the others (both paused: it cannot become leader either)
    # answers no value
    L=$(leader_of 0)
    F=$(((L + 1) % 3))
    G=$(((L + 2) % 3))
    node_pause "$L"
    node_pause "$G"
    if out=$(only "$F" 1500 get 0 k 2>&1); then
        node_resume "$L"
        node_resume "$G"
        fail "$mode: follower node $F answered '$out' while nodes $L and $G were paused"
    fi
    # 3. F and G elect a leader and write; the old leader never shows the old value
    node_resume "$G"
    client put 0 k "$mode-new" >/dev/null || fail "$mode: put on the new leader"
    node_resume "$L"
    served=0
    for _ in $(seq 1 50); do
        v=$(only "$L" 2000 get 0 k 2>/dev/null)
        rc=$?
        [ $rc = 0 ] && [ "$v" != "$mode-new" ] && fail "$mode: old leader node $L read '$v' after '$mode-new'"
        [ $rc = 0 ] && { served=1; break; }
        sleep 0.1
    done
    [ $served = 1 ] || fail "$mode: old leader node $L never served a read as a follower"
    read_on "$F" "$mode-new" "after the election"
done
echo "PASS node_follower_read"
