#!/usr/bin/env bash
# node_stop_drain.sh - a node stopped by SIGTERM while a log batch is out gets that batch
# back from its log actor and frees it: the stop waits for the batch (never the whole
# 5 s bound), logs no "work still out" and exits cleanly. Every log sync that writes
# entries takes 300 ms more (storage/fsync_delay_ms) while clients write, so a batch is
# almost always out when the signal comes. Under ASan, LeakSanitizer checks the rest.
# (It failed before the drain's poller was made nonstop: the signal that stops shoald sets
# zsys_interrupted, after which zpoller_wait returned at once without polling, so the drain
# spun for 5 s and never took the log actor's answer.)
source "$(dirname "$0")/node_lib.sh"
LOADERS=""
# the writers first: cluster_cleanup waits for every child
# SIGKILL: node_client, a czmq program, takes SIGTERM as a flag it does not check
trap '[ -n "$LOADERS" ] && kill -KILL $LOADERS 2>/dev/null; cluster_cleanup' EXIT
STORAGE_EXTRA="    fsync_delay_ms = 300" cluster_init 3 1
CLIENT_ATTEMPT=5000
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
for round in 1 2 3; do
    L=$(leader_of 0)
    LOADERS=""
    # node_client itself in the background (not the `client` function, whose subshell a
    # kill would leave the client of running on), with a short deadline per write
    for c in 1 2 3 4; do
        "$NODE_CLIENT" --timeout 3000 --attempt 1000 "$ENDPOINTS" load 0 "r$round-c$c-" 0 1000 \
            >/dev/null 2>&1 &
        LOADERS="$LOADERS $!"
    done
    sleep 1.5
    # the leader and one follower: both have a batch out while writes run
    F=$(( (L + 1) % 3 ))
    for i in $L $F; do
        t0=$(date +%s%N)
        node_stop $i || fail "node $i: exit code $? after SIGTERM"
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        echo "round $round: node $i stopped in $ms ms"
        grep -q "work still out" "$DIR/node-$i.log" && fail "node $i stopped with work still out"
        [ "$ms" -lt 4000 ] || fail "node $i took $ms ms to stop (the drain's bound is 5 s)"
        grep -q "stopped cleanly" "$DIR/node-$i.log" || fail "node $i did not stop cleanly"
        node_start $i
    done
    kill -KILL $LOADERS 2>/dev/null
    wait $LOADERS 2>/dev/null
    LOADERS=""
    client wait-leaders 0 || fail "no leader after round $round"
done
echo "PASS node_stop_drain"
