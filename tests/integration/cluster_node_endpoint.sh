#!/usr/bin/env bash
# cluster_node_endpoint.sh - a client pointed at a node's client endpoint instead of the
# broker (`shoalctl --broker NODE`, libshoal): nobody routes its requests, so each names
# shard 0 and shard map version 0. Before, the node applied every key into shard 0, where
# the broker's `get` never looks while its `scan` showed them. Now a node refuses a key its
# shard map places in another shard (exit 2, "key belongs to shard S, not to shard 0 ...:
# send requests to a broker") and applies nothing: put, get, del, cas and batch; keys of
# shard 0 are served as before, since that is where they belong. Through the broker every
# key reads back where it belongs, and the scan shows exactly the keys a get finds.
source "$(dirname "$0")/cluster_lib.sh"

# leader balancing off: the requests go to shard 0's leader, as a user's would that picked
# the node that accepted writes, and it must stay the leader meanwhile
cl_up 3 4 3 --balance-leaders off
L0=$(leader_of 0)
[ "$L0" -ge 0 ] || { echo "FAIL: shard 0 has no leader"; FAIL=1; exit 1; }
NODE=tcp://127.0.0.1:$((BASE + 100 + 2 * L0))
echo "shard 0 leads on node $L0 ($NODE)"
node_ctl() { "$CTL" --broker "$NODE" --timeout 3000 "$@"; }

refused=0
served=0
declare -A SHARD NODE_RC
for i in $(seq 1 12); do
    k=ne-$i
    node_ctl put "$k" "via-node-$i" >"$DIR/out" 2>"$DIR/err"
    rc=$?
    NODE_RC[$k]=$rc
    # through the broker: the key is where it belongs, or nowhere
    got=$(ctl get "$k" 2>&1)
    grc=$?
    case $rc in
    0)
        served=$((served + 1))
        [ "$grc" = 0 ] && [ "$got" = "via-node-$i" ] ||
            { echo "FAIL: $k acknowledged by the node but the broker's get says (exit $grc) '$got'"; FAIL=1; }
        ;;
    2)
        refused=$((refused + 1))
        [ "$grc" = 1 ] || { echo "FAIL: $k refused by the node but the broker's get finds it: '$got'"; FAIL=1; }
        grep -q "shoalctl put: key belongs to shard [1-9][0-9]*, not to shard 0 (shard map v[0-9]*): send requests to a broker, not to a node" "$DIR/err" ||
            { echo "FAIL: $k refused without the clear line: $(cat "$DIR/err")"; FAIL=1; }
        ;;
    *)
        echo "FAIL: put $k through node $L0: exit $rc: $(cat "$DIR/err")"
        FAIL=1
        ;;
    esac
done
echo "through node $L0: $served keys of shard 0 served, $refused keys of other shards refused"
[ "$refused" -ge 3 ] || { echo "FAIL: only $refused of 12 keys refused"; FAIL=1; }

# the broker's scan shows exactly the keys its gets find: none landed in a wrong shard
want_keys=$(for i in $(seq 1 12); do [ "${NODE_RC[ne-$i]}" = 0 ] && echo "ne-$i"; done | sort | tr '\n' ' ')
scan_keys=$(ctl scan --prefix ne- | cut -f1 | sort | tr '\n' ' ')
[ "$scan_keys" = "$want_keys" ] ||
    { echo "FAIL: the broker's scan shows '$scan_keys', want '$want_keys'"; FAIL=1; }

# each key's shard (the broker's put names it): refused exactly when it is not shard 0
for i in $(seq 1 12); do
    k=ne-$i
    SHARD[$k]=$(ctl --json put "$k" "via-broker-$i" | python3 -c "import json,sys; print(json.load(sys.stdin)['shard'])")
    if [ "${SHARD[$k]}" = 0 ]; then
        [ "${NODE_RC[$k]}" = 0 ] || { echo "FAIL: $k (shard 0) refused by shard 0's leader"; FAIL=1; }
    else
        [ "${NODE_RC[$k]}" = 2 ] || { echo "FAIL: $k (shard ${SHARD[$k]}) not refused"; FAIL=1; }
    fi
done

# reads and the other writes of a key of another shard, through the node: refused too,
# and nothing they would change is changed
for i in $(seq 1 12); do
    k=ne-$i
    [ "${SHARD[$k]}" = 0 ] && continue
    s=${SHARD[$k]}
    node_ctl get "$k" >/dev/null 2>"$DIR/err"; rc=$?
    [ "$rc" = 2 ] && grep -q "shoalctl get: key belongs to shard $s, not to shard 0" "$DIR/err" ||
        { echo "FAIL: get $k (shard $s) through the node: exit $rc: $(cat "$DIR/err")"; FAIL=1; }
    node_ctl get "$k" --stale >/dev/null 2>&1; rc=$?
    [ "$rc" = 2 ] || { echo "FAIL: stale get $k (shard $s) through the node: exit $rc"; FAIL=1; }
    want 2 "del $k (shard $s) through the node" node_ctl del "$k"
    want 2 "cas $k (shard $s) through the node" node_ctl cas "$k" "via-broker-$i" changed
    want 2 "batch with $k (shard $s) through the node" node_ctl batch put "$k" batched
    [ "$(ctl get "$k")" = "via-broker-$i" ] ||
        { echo "FAIL: $k changed by writes the node refused: '$(ctl get "$k" 2>&1)'"; FAIL=1; }
done
scan_all=$(ctl scan --prefix ne- | wc -l)
[ "$scan_all" = 12 ] || { echo "FAIL: the broker's scan shows $scan_all keys, want 12"; FAIL=1; }

[ "$FAIL" = 0 ] && echo "PASS cluster_node_endpoint"
exit "$FAIL"
