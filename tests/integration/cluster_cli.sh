#!/usr/bin/env bash
# cluster_cli.sh - shoalctl against a real local cluster (3 nodes, 4 shards, 3 replicas):
# every data command with its output and exit code, scans merged across shards, a watch
# that sees the changes, status/events, the dashboard's status.json against status --json,
# bad input on a live cluster, stop/start of a node with the data kept, a shard without a
# leader (null in JSON), a broker restart, a node added by `cluster add-node` (up, stopped
# and started), a split, cluster down leaving no process behind, and cluster up again on
# the folder (printing the 4 nodes and 5 shards that run, not the 3 and 4 it was made with).
source "$(dirname "$0")/cluster_lib.sh"
# leader balancing off: transfer-leader is checked to move a leader where it is told
cl_up 3 4 3 --balance-leaders off

# put / get / del
check "put" ctl put alpha one
[ "$(ctl get alpha)" = one ] || { echo "FAIL: get alpha"; FAIL=1; }
[ "$(ctl get alpha --stale)" = one ] || { echo "FAIL: stale get alpha"; FAIL=1; }
want 1 "get of a missing key" ctl get missing
check "del" ctl del alpha
want 1 "get after del" ctl get alpha
want 0 "del of an absent key" ctl del alpha
[ "$(ctl --json get missing)" = '{"key":"missing","found":false}' ] || { echo "FAIL: json miss"; FAIL=1; }

# cas
check "cas --absent on a missing key" ctl cas c1 --absent v1
want 1 "cas --absent on a present key" ctl cas c1 --absent v2
out=$(ctl cas c1 wrong v3 2>/dev/null); code=$?
[ $code = 1 ] && [ "$out" = v1 ] || { echo "FAIL: cas mismatch: exit $code, printed '$out'"; FAIL=1; }
check "cas match" ctl cas c1 v1 v4
[ "$(ctl get c1)" = v4 ] || { echo "FAIL: value after cas"; FAIL=1; }

# scans across shards: 60 keys land on all 4 shards; the merge is in key order
for i in $(seq -w 1 60); do echo "s/$i"; done | while read -r k; do ctl put "$k" "val-$k" || echo "FAIL: put $k"; done
n=$(ctl scan --prefix s/ | wc -l)
[ "$n" = 60 ] || { echo "FAIL: scan --prefix s/ gave $n lines, want 60"; FAIL=1; }
ctl scan --prefix s/ | cut -f1 | sort -c || { echo "FAIL: scan not in key order"; FAIL=1; }
[ "$(ctl scan --prefix s/ --limit 7 2>/dev/null | wc -l)" = 7 ] || { echo "FAIL: scan --limit"; FAIL=1; }
[ "$(ctl scan --from s/10 --to s/20 | wc -l)" = 10 ] || { echo "FAIL: scan --from/--to"; FAIL=1; }
[ "$(ctl scan --prefix s/05)" = "$(printf 's/05\tval-s/05')" ] || { echo "FAIL: scan line format"; FAIL=1; }
ctl --json scan --prefix s/ | python3 -c '
import json, sys
d = json.load(sys.stdin)
keys = [kv["key"] for kv in d["kvs"]]
assert len(keys) == 60 and keys == sorted(keys) and d["more"] is False, d
assert d["kvs"][4] == {"key": "s/05", "value": "val-s/05"}, d["kvs"][4]' || { echo "FAIL: json scan"; FAIL=1; }
ctl --json scan --prefix s/ --limit 7 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["kvs"]) == 7 and d["more"] is True, d' || { echo "FAIL: json scan --limit: more"; FAIL=1; }
[ "$(ctl --json scan --prefix nothing/)" = '{"kvs":[],"more":false}' ] || { echo "FAIL: json scan, empty"; FAIL=1; }

# batch
check "batch" ctl batch put b/1 x put b/2 y del s/01
[ "$(ctl get b/2)" = y ] || { echo "FAIL: batch put"; FAIL=1; }
want 1 "batch del" ctl get s/01

# watch: sees the next changes with their shard and index
# (a warm-up key until the watcher shows one: its subscription is then in place, where a
# fixed sleep races with a loaded machine)
# shoalctl itself, not the ctl function: a kill of the function's subshell left the watcher
# running after the test
warm_watch() { # puts key $1 until the watcher writing to $2 shows it
    for _ in $(seq 100); do
        ctl put "$1" warm
        grep -q $'\tput\t'"$1" "$2" && break
        sleep 0.1
    done
}
"$CTL" watch --prefix w/ >"$DIR/watch.out" 2>&1 &
wpid=$!
warm_watch w/0 "$DIR/watch.out"
for i in 1 2 3 4 5; do ctl put "w/$i" "x$i"; done
for _ in $(seq 100); do
    [ "$(grep -c $'\tput\tw/[1-5]\t' "$DIR/watch.out")" = 5 ] && break
    sleep 0.1
done
kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
[ "$(grep -c $'\tput\tw/[1-5]\t' "$DIR/watch.out")" = 5 ] || { echo "FAIL: watch saw: $(cat "$DIR/watch.out")"; FAIL=1; }
# catch-up from an index replays earlier changes
line=$(head -n 1 "$DIR/watch.out"); shard=${line%%:*}
replay=$(timeout 10 "$CTL" watch --from-index "$shard:0" --count 1)
[ -n "$replay" ] || { echo "FAIL: watch --from-index replayed nothing"; FAIL=1; }
# a batch entry's ops share one index: every op reaches a watcher, live and replayed, in
# order, the same key several times included (only the first op did before)
"$CTL" watch >"$DIR/watch-b.out" 2>&1 &
wpid=$!
warm_watch bw/0 "$DIR/watch-b.out"
check "a batch writing one key four times" ctl batch put bd v1 put bd v2 del bd put bd v4
want_ops=$'put\tbd\tv1\nput\tbd\tv2\ndel\tbd\nput\tbd\tv4'
for _ in $(seq 100); do
    [ "$(grep -c $'\tbd' "$DIR/watch-b.out")" -ge 4 ] && break
    sleep 0.1
done
kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
got=$(grep $'\tbd' "$DIR/watch-b.out" | cut -f2- | sed 's/\t$//')
[ "$got" = "$want_ops" ] || { echo "FAIL: live watch of a batch saw: $got"; FAIL=1; }
bline=$(grep -m1 $'\tbd' "$DIR/watch-b.out"); bpos=${bline%%$'\t'*}
[ "$(grep $'\tbd' "$DIR/watch-b.out" | cut -f1 | sort -u)" = "$bpos" ] ||
    { echo "FAIL: a batch's ops at different indexes: $(cat "$DIR/watch-b.out")"; FAIL=1; }
got=$(timeout 10 "$CTL" watch --from-index "${bpos%%:*}:$((${bpos##*:} - 1))" --count 4 |
      cut -f2- | sed 's/\t$//')
[ "$got" = "$want_ops" ] || { echo "FAIL: replayed batch: $got"; FAIL=1; }
# --json numbers a batch's ops; resumed after its op 1: ops 2 and 3 (a plain INDEX
# skipped them: QA)
got=$(timeout 10 "$CTL" --json watch --from-index "${bpos%%:*}:$((${bpos##*:} - 1))" --count 4 |
      python3 -c "import json,sys; print(' '.join('%d/%d' % (e['op_seq'], e['op_count']) for e in map(json.loads, sys.stdin)))")
[ "$got" = "0/4 1/4 2/4 3/4" ] || { echo "FAIL: --json op_seq/op_count of a batch: $got"; FAIL=1; }
got=$(timeout 10 "$CTL" watch --from-index "$bpos.1" --count 2 | cut -f2- | sed 's/\t$//')
[ "$got" = $'del\tbd\nput\tbd\tv4' ] || { echo "FAIL: resumed in the middle of a batch: $got"; FAIL=1; }
want 2 "watch --from-index with a bad op" timeout 10 "$CTL" watch --from-index "$bpos.x"
want 2 "watch --from-index of a shard the cluster lacks" timeout 10 "$CTL" watch --from-index 9:1
want 2 "watch --prefix over the key limit" "$CTL" watch --prefix "$(head -c 4097 /dev/zero | tr '\0' p)"
# a watcher from an index the shard no longer retains (window: the last 4096 changes or
# 4 MiB: ~525 of these 8 KB values) is
# told once and ends with exit 1; the changes go to one key, so to one shard
ctl bench put --clients 8 --duration 3 --keys 1 --key-size 8 --value-size 8000 >/dev/null 2>&1
wshard=$(ctl --json put 00000000 x | python3 -c 'import json,sys; print(json.load(sys.stdin)["shard"])')
out=$(timeout 20 "$CTL" watch --from-index "$wshard:1" 2>&1 >/dev/null); code=$?
[ $code = 1 ] && [ "$(echo "$out" | grep -c "no longer retained")" = 1 ] ||
    { echo "FAIL: watch from a lost index: exit $code: $out"; FAIL=1; }

# status and events
ctl status >"$DIR/status.out" || { echo "FAIL: status"; FAIL=1; }
grep -q "nodes 3/3 up" "$DIR/status.out" || { echo "FAIL: status: $(cat "$DIR/status.out")"; FAIL=1; }
grep -q "shards 4/4 with a leader" "$DIR/status.out" || { echo "FAIL: status leaders"; FAIL=1; }
ctl --json status | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["shards"])==4 and len(d["nodes"])==3' ||
    { echo "FAIL: status --json"; FAIL=1; }
[ "$(ctl events --no-follow | grep -c leader)" -ge 1 ] || { echo "FAIL: events has no leader event"; FAIL=1; }
# --no-follow --count N: the newest N (tried thrice: an event may come between the calls)
for _ in 1 2 3; do
    newest=$(ctl events --no-follow --count 2); all=$(ctl events --no-follow)
    [ "$newest" = "$(echo "$all" | tail -n 2)" ] && break
done
[ "$newest" = "$(echo "$all" | tail -n 2)" ] && [ "$(echo "$all" | wc -l)" -gt 2 ] ||
    { echo "FAIL: events --no-follow --count 2 is not the newest two: '$newest'"; FAIL=1; }
# --json: every events line an object with the detail and time; top a status object per refresh
ctl events --no-follow --json | python3 -c '
import json, sys
evs = [json.loads(l) for l in sys.stdin]
assert evs and all("ts_us" in e and "detail" in e for e in evs), evs[:3]
assert any(e["leader"] is None for e in evs) or all(isinstance(e["leader"], int) for e in evs)
# a node coming up or going down is no group'"'"'s event: no leader, not node 0
node_evs = [e for e in evs if e["type"] in ("node-up", "node-down")]
assert node_evs and all(e["leader"] is None for e in node_evs), node_evs' ||
    { echo "FAIL: events --json"; FAIL=1; }
ctl top --json --count 2 --interval 100 | python3 -c '
import json, sys
tops = [json.loads(l) for l in sys.stdin]
assert len(tops) == 2 and all(len(t["shards"]) == 4 for t in tops), tops' ||
    { echo "FAIL: top --json"; FAIL=1; }
# bytes that are not UTF-8 come back in JSON as base64, exactly
check "put of non-UTF-8 bytes" ctl put bin/k $'\xff\x80ab'
ctl --json get bin/k | python3 -c '
import json, sys, base64
d = json.load(sys.stdin)
assert base64.b64decode(d["value_base64"]) == b"\xff\x80ab" and "value" not in d, d' ||
    { echo "FAIL: json of non-UTF-8 bytes"; FAIL=1; }
# a value too big for a command line argument, through --value-file (and stdin)
head -c 600000 /dev/urandom >"$DIR/big.bin"
check "put --value-file" ctl put big/k --value-file "$DIR/big.bin"
ctl get big/k | head -c 600000 | cmp -s - "$DIR/big.bin" || { echo "FAIL: big value read back"; FAIL=1; }
printf 'from\0stdin' | ctl put big/s --value-file - || { echo "FAIL: put --value-file -"; FAIL=1; }
[ "$(ctl get big/s | od -c | head -1)" = "$(printf 'from\0stdin\n' | od -c | head -1)" ] ||
    { echo "FAIL: value from stdin"; FAIL=1; }
head -c 1048577 /dev/zero >"$DIR/toobig.bin"
want 2 "put --value-file over the value limit" ctl put big/x --value-file "$DIR/toobig.bin"
out=$(ctl put big/x --value-file "$DIR/toobig.bin" 2>&1)
echo "$out" | grep -q "value limit of 1048576 bytes" ||
    { echo "FAIL: the value-file limit message lacks the limit: $out"; FAIL=1; }
# 1001 operations: the batch limit's own message whatever the operations (puts said "too
# many arguments", deletes named the limit)
ops=$(for i in $(seq 1001); do printf 'put b%s v ' "$i"; done)
# shellcheck disable=SC2086
out=$(ctl batch $ops 2>&1); code=$?
[ $code = 2 ] && echo "$out" | grep -q "1 to 1000 operations" ||
    { echo "FAIL: a batch of 1001 puts: exit $code: $out"; FAIL=1; }
# the metadata group's row: its leader, its three members with match indexes, an applied
# index (the shard map is stored); `shards` still lists the data shards only
for _ in $(seq 50); do
    ctl --json status >"$DIR/status.json"
    python3 - "$DIR/status.json" <<'PY' && break
import json, sys
m = json.load(open(sys.argv[1]))["meta"]
ok = (m and m["id"] == 4294967295 and m["leader"] in (0, 1, 2) and m["applied"] >= 1
      and sorted(r["node"] for r in m["replicas"]) == [0, 1, 2] and m["commit"] >= m["applied"])
sys.exit(0 if ok else 1)
PY
    sleep 0.2
done
python3 - "$DIR/status.json" <<'PY' || { echo "FAIL: status --json meta: $(cat "$DIR/status.json")"; FAIL=1; }
import json, sys
d = json.load(open(sys.argv[1]))
m = d["meta"]
assert m["leader"] in (0, 1, 2) and m["applied"] >= 1, m
assert sorted(r["node"] for r in m["replicas"]) == [0, 1, 2], m
assert all(s["id"] != 4294967295 for s in d["shards"]), d["shards"]
PY
# the web dashboard's status.json is the object `status --json` prints: the same keys at
# every level (the metadata group under "meta", each shard's and meta's "leaving" list of a
# move in progress, follower_reads, events), the same shard map and placement
dash_json() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$((BASE + 2))/status.json', timeout=5).read().decode())"; }
dash_json >"$DIR/dash.json" || { echo "FAIL: GET /status.json"; FAIL=1; }
# /metrics: the same state in Prometheus' text format; every sample of a declared family,
# the map version, every node up and every group led (as status says just now)
dash_metrics() { python3 -c "import urllib.request; r = urllib.request.urlopen('http://127.0.0.1:$((BASE + 2))/metrics', timeout=5); assert r.headers['Content-Type'].startswith('text/plain; version=0.0.4'); print(r.read().decode(), end='')"; }
check_metrics() { # check_metrics FILE STATUS_JSON: python asserts over samples m and status st
    python3 - "$1" "$2" "$3" <<'PY'
import json, re, sys
m, families = {}, set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        families.add(line.split()[2])
        continue
    if line.startswith("#") or not line:
        continue
    g = re.fullmatch(r'([a-z_]+)(\{[a-z]+="[^"]*"\})? (-?[0-9]+)', line)
    assert g, line
    assert g.group(1) in families, line
    m[g.group(1) + (g.group(2) or "")] = int(g.group(3))
st = json.load(open(sys.argv[2]))
exec(sys.argv[3])
PY
}
ctl --json status >"$DIR/status.json"
python3 - "$DIR/status.json" "$DIR/dash.json" <<'PY' || { echo "FAIL: status.json differs from status --json: $(cat "$DIR/dash.json")"; FAIL=1; }
import json, sys
st, da = (json.load(open(f)) for f in sys.argv[1:3])
def paths(x, at=""):
    if isinstance(x, dict):
        return {at + "." + k for k in x} | {p for k, v in x.items() for p in paths(v, at + "." + k)}
    if isinstance(x, list):
        return {p for v in x for p in paths(v, at + "[]")}
    return set()
assert paths(st) == paths(da), (paths(st) ^ paths(da))
m = da["meta"]
assert m["id"] == 4294967295 and isinstance(m["leaving"], list) and m["replicas"], m
assert all(isinstance(s["leaving"], list) for s in da["shards"]), da["shards"]
assert "follower_reads" in da["nodes"][0], da["nodes"][0]
place = lambda d: (d["map_version"], [(s["id"], [r["node"] for r in s["replicas"]], s["leaving"])
                                      for s in d["shards"] + [d["meta"]]])
assert place(st) == place(da), (place(st), place(da))
PY
dash_metrics >"$DIR/metrics.prom" || { echo "FAIL: GET /metrics"; FAIL=1; }
check_metrics "$DIR/metrics.prom" "$DIR/status.json" '
assert m["shoal_map_version"] == st["map_version"], m
for n in st["nodes"]:
    assert m["shoal_node_up{node=\"%d\"}" % n["id"]] == 1, (n, m)
    assert m["shoal_node_replicas{node=\"%d\"}" % n["id"]] == n["replicas"], (n, m)
for x in st["shards"] + [st["meta"]]:
    sid = "meta" if x["id"] == 4294967295 else str(x["id"])
    assert m["shoal_shard_has_leader{shard=\"%s\"}" % sid] == 1, (sid, m)
    assert m["shoal_shard_commit_index{shard=\"%s\"}" % sid] >= x["commit"] > 0, (sid, m)
assert m["shoal_broker_requests_total"] > 0, m' ||
    { echo "FAIL: /metrics does not agree with status: $(head -c 3000 "$DIR/metrics.prom")"; FAIL=1; }
ctl status >"$DIR/status.out"
grep -Eq "^meta +[0-2] +[0-9]+ +[0-9]+ +[1-9][0-9]* .* [0-2]:[0-9]+ [0-2]:[0-9]+ [0-2]:[0-9]+" "$DIR/status.out" ||
    { echo "FAIL: status table has no metadata row: $(cat "$DIR/status.out")"; FAIL=1; }

# admin: move shard 0's leadership to another node; a snapshot of every shard
leader=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["shards"][0]["leader"])')
to=$(( (leader + 1) % 3 ))
check "transfer-leader" ctl transfer-leader 0 "$to"
moved=0
for _ in $(seq 50); do
    now=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["shards"][0]["leader"])')
    [ "$now" = "$to" ] && { moved=1; break; }
    sleep 0.1
done
[ $moved = 1 ] || { echo "FAIL: shard 0 leader still $now after transfer to $to"; FAIL=1; }
check "transfer to the current leader is a no-op" ctl transfer-leader 0 "$to"
[ "$(ctl get c1)" = v4 ] || { echo "FAIL: read after transfer"; FAIL=1; }
check "snapshot" ctl snapshot
want 2 "transfer of a missing shard" ctl transfer-leader 99 0
# the metadata group's leadership moves as a shard's does (`meta`, as move-replica takes it)
ml=$(status_py "print(st['meta']['leader'])")
mto=$(( (ml + 1) % 3 ))
check "transfer-leader meta" ctl transfer-leader meta "$mto"
for _ in $(seq 50); do
    [ "$(status_py "print(st['meta']['leader'])")" = "$mto" ] && break
    sleep 0.1
done
[ "$(status_py "print(st['meta']['leader'])")" = "$mto" ] ||
    { echo "FAIL: metadata leader not moved from $ml to $mto"; FAIL=1; }
want 2 "transfer of the metadata group to a missing node" ctl transfer-leader meta 9
out=$(ctl move-replica --cancel meta 2>&1); code=$? # named as the user names it, not by its id
[ $code = 2 ] && echo "$out" | grep -q "the metadata group has no move in progress" ||
    { echo "FAIL: move-replica --cancel meta (no move): exit $code: $out"; FAIL=1; }
# a cancel names the shard the map lacks (not "no move in progress"), exit 2 as above
out=$(ctl move-replica --cancel 99 2>&1); code=$?
[ $code = 2 ] && echo "$out" | grep -q "no shard 99" ||
    { echo "FAIL: move-replica --cancel 99: exit $code: $out"; FAIL=1; }
out=$(ctl move-replica --cancel 0 2>&1); code=$?
[ $code = 2 ] && echo "$out" | grep -q "shard 0 has no move in progress" ||
    { echo "FAIL: move-replica --cancel 0 (no move): exit $code: $out"; FAIL=1; }

# bad input on a live cluster: exit 2, nothing written
want 2 "empty key" ctl put "" v
want 2 "key over the limit" ctl put "$(head -c 5000 /dev/zero | tr '\0' k)" v
want 2 "unknown option" ctl get alpha --frob
want 2 "cluster up on a running cluster" ctl cluster up --dir "$DIR" --base-port "$BASE"
want 2 "an empty --broker" ctl --broker "" get alpha
want 2 "a broker port out of range" ctl --broker tcp://127.0.0.1:99999 get alpha
want 2 "bench put --read-percent" ctl bench put --read-percent 50 --duration 1
# a broker nobody answers on: the call ends at its --timeout, not a second later
t0=$(date +%s%N)
want 3 "get from a silent broker" ctl --broker tcp://127.0.0.1:1 --timeout 300 get alpha
took=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $took -lt 900 ] || { echo "FAIL: get with --timeout 300 took $took ms"; FAIL=1; }
want 3 "watch on a silent broker" timeout 20 "$CTL" --broker tcp://127.0.0.1:1 --timeout 1000 watch

# broker restart: clients keep working against the new broker process
broker_restart
for _ in $(seq 100); do ctl --timeout 500 status 2>/dev/null | grep -q "4/4 with a leader" && break; sleep 0.1; done
[ "$(ctl get c1)" = v4 ] || { echo "FAIL: read after broker restart"; FAIL=1; }
check "write after broker restart" ctl put after/restart ok
# the broker alone through shoalctl: stop-node / start-node broker
check "stop-node broker" ctl cluster stop-node --dir "$DIR" broker --kill
want 3 "a request with the broker stopped" ctl --timeout 300 get c1
check "start-node broker" ctl cluster start-node --dir "$DIR" broker
for _ in $(seq 100); do ctl --timeout 500 status 2>/dev/null | grep -q "4/4 with a leader" && break; sleep 0.1; done
[ "$(ctl get c1)" = v4 ] || { echo "FAIL: read after start-node broker"; FAIL=1; }

# a second broker on the same cluster serves the same data (brokers hold no state); it
# sends linearizable reads to any replica (broker/read_from = replicas): a follower confirms
# each with its leader, so a write acknowledged through one broker is read through the other
sed -e "s#tcp://127.0.0.1:$BASE\"#tcp://127.0.0.1:$((BASE + 50))\"#" \
    -e "s#tcp://127.0.0.1:$((BASE + 1))\"#tcp://127.0.0.1:$((BASE + 51))\"#" \
    -e "/http_endpoint/d" -e "s#^broker\$#broker\n    read_from = \"replicas\"#" \
    "$DIR/broker.cfg" >"$DIR/broker2.cfg"
grep -q 'read_from = "replicas"' "$DIR/broker2.cfg" || { echo "FAIL: broker2.cfg has no read_from"; FAIL=1; }
setsid "$BROKER_BIN" --config "$DIR/broker2.cfg" >"$DIR/logs/broker2.log" 2>&1 </dev/null &
b2=$!
[ "$(ctl --broker "tcp://127.0.0.1:$((BASE + 50))" --timeout 10000 get c1)" = v4 ] ||
    { echo "FAIL: read through a second broker"; FAIL=1; }
check "write through the second broker" ctl --broker "tcp://127.0.0.1:$((BASE + 50))" put two/brokers yes
[ "$(ctl get two/brokers)" = yes ] || { echo "FAIL: first broker reads the second's write"; FAIL=1; }
fr_sum() { status_py "print(sum(n.get('follower_reads', 0) for n in st['nodes']))" 2>/dev/null || echo 0; }
sleep 1 # the broker's poll brings each node's follower_reads so far
fr0=$(fr_sum)
for i in $(seq 1 30); do
    ctl put "rr/$i" "v$i" >/dev/null || { echo "FAIL: put rr/$i"; FAIL=1; }
    got=$(ctl --broker "tcp://127.0.0.1:$((BASE + 50))" --timeout 10000 get "rr/$i")
    [ "$got" = "v$i" ] || { echo "FAIL: replica read of rr/$i through broker 2: '$got'"; FAIL=1; break; }
done
[ "$(ctl --broker "tcp://127.0.0.1:$((BASE + 50))" scan --prefix rr/ | wc -l)" = 30 ] ||
    { echo "FAIL: replica scan through broker 2 does not see the 30 rr/ keys"; FAIL=1; }
# and followers served most of them: the nodes' follower_reads (status, refreshed by the
# broker's poll) grow by at least 10 of the 30 gets (round robin over 3 replicas: ~20)
fr=0
for _ in $(seq 1 40); do
    fr=$(($(fr_sum) - fr0))
    [ "$fr" -ge 10 ] && break
    sleep 0.2
done
[ "$fr" -ge 10 ] || { echo "FAIL: followers served $fr of 30 reads through broker 2 (want >= 10)"; FAIL=1; }
# a client given both brokers (a list, as etcd's clients take) keeps working with one dead,
# the dead one first in the list; each request goes to the one that is up
BOTH="tcp://127.0.0.1:$((BASE + 50)),tcp://127.0.0.1:$BASE"
# a watch given the list follows the first broker, and moves to the other when it dies:
# the puts made meanwhile reach it too, each once (in order per shard only: what the dead
# broker's stream lost is caught up shard by shard)
"$CTL" --broker "$BOTH" watch --prefix list/ >"$DIR/list-watch.out" 2>"$DIR/list-watch.err" &
wpid=$!
# and so does an events tail (what broker 2 would have sent in between is lost to it)
"$CTL" --broker "$BOTH" --timeout 20000 --json events >"$DIR/list-events.out" 2>&1 &
epid=$!
for _ in $(seq 100); do # until its subscription reached broker 2 and the nodes
    ctl --broker "$BOTH" put list/0 x >/dev/null 2>&1
    grep -q "list/0" "$DIR/list-watch.out" && break
    sleep 0.1
done
grep -q "list/0" "$DIR/list-watch.out" || { echo "FAIL: the list's watch saw no put"; FAIL=1; }
sleep 1.5 # a progress notice gives the watch its place in every shard to resume from (shoal.h)
kill -KILL "$b2"
while kill -0 "$b2" 2>/dev/null; do sleep 0.05; done
t0=$(date +%s%N)
for i in 1 2 3 4 5; do
    check "put list/$i with the list's first broker dead" \
        env SHOAL_BROKER="$BOTH" "$CTL" --timeout 10000 put "list/$i" "v$i"
done
echo "5 puts through the list with its first broker dead: $((($(date +%s%N) - t0) / 1000000)) ms"
for _ in $(seq 200); do grep -q "list/5" "$DIR/list-watch.out" && break; sleep 0.1; done
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
got=$(grep -o "list/[1-5]" "$DIR/list-watch.out" | sort | tr '\n' ' ')
[ "$got" = "list/1 list/2 list/3 list/4 list/5 " ] ||
    { echo "FAIL: the list's watch after its broker died saw '$got' ($(cat "$DIR/list-watch.err"))"; FAIL=1; }
shard0() { ctl --json status | python3 -c "import json,sys; print(json.load(sys.stdin)['shards'][0]['$1'])"; }
t0=$(shard0 term)
new_events() { python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    n += e["shard"] == 0 and e["term"] > int(sys.argv[2])
print(n)' "$DIR/list-events.out" "$t0"; }
for _ in $(seq 10); do # the tail moves within ~2 s: leader changes until it shows one
    check "transfer-leader with the events tail's first broker dead" \
        ctl transfer-leader 0 $((($(shard0 leader) + 1) % 3))
    sleep 1
    [ "$(new_events)" -gt 0 ] && break
done
[ "$(new_events)" -gt 0 ] ||
    { echo "FAIL: the events tail did not move to the live broker: $(tail -3 "$DIR/list-events.out")"; FAIL=1; }
kill "$epid" 2>/dev/null
wait "$epid" 2>/dev/null
[ "$(ctl --broker "$BOTH" scan --prefix list/ | wc -l)" = 6 ] ||
    { echo "FAIL: the list's writes are not all there"; FAIL=1; }
want 2 "an empty entry in a broker list" ctl --broker "tcp://127.0.0.1:$BASE,,tcp://127.0.0.1:1" get x

# a node stopped and restarted keeps serving; its data is kept
wait_all_up() {
    for _ in $(seq 150); do ctl status 2>/dev/null | grep -q "nodes 3/3 up" && return 0; sleep 0.1; done
    echo "FAIL: $1: not all nodes up again within 15 s"; FAIL=1
}
check "stop-node" ctl cluster stop-node --dir "$DIR" 1
check "writes with a node down" ctl put down/1 yes
[ "$(ctl get s/30)" = val-s/30 ] || { echo "FAIL: read with a node down"; FAIL=1; }
check "start-node" ctl cluster start-node --dir "$DIR" 1
wait_all_up "restart of node 1"
check "kill -9 a node" ctl cluster stop-node --dir "$DIR" 2 --kill
check "writes with a node killed" ctl put down/2 yes
check "restart the killed node" ctl cluster start-node --dir "$DIR" 2
wait_all_up "restart of node 2"
[ "$(ctl get down/1)" = yes ] || { echo "FAIL: write made while node 1 was down"; FAIL=1; }
[ "$(ctl get down/2)" = yes ] || { echo "FAIL: write made while node 2 was down"; FAIL=1; }
# a shard without a leader: its leader is null in status --json and the dashboard's
# status.json (as in events --json), never -1; the table says none. Shard 0's leader and
# one more node stopped: no quorum, and the broker drops the leadership of a node it sees
# down.
L0=$(leader_of 0)
O0=$(( (L0 + 1) % 3 ))
check "stop shard 0's leader" ctl cluster stop-node --dir "$DIR" "$L0" --kill
check "stop a second node" ctl cluster stop-node --dir "$DIR" "$O0" --kill
for _ in $(seq 100); do
    status_py "sys.exit(0 if st['shards'][0]['leader'] is None else 1)" 2>/dev/null && break
    sleep 0.2
done
ctl --json status >"$DIR/noleader.json"
dash_json >"$DIR/noleader-dash.json"
python3 - "$DIR/noleader.json" "$DIR/noleader-dash.json" <<'PY' || { echo "FAIL: no leader in JSON: $(cat "$DIR/noleader.json")"; FAIL=1; }
import json, sys
for f in sys.argv[1:3]:
    d = json.load(open(f))
    assert d["shards"][0]["leader"] is None, (f, d["shards"][0])
    leaders = [s["leader"] for s in d["shards"] + [d["meta"]]] + [e["leader"] for e in d["events"]]
    assert all(l is None or (isinstance(l, int) and l >= 0) for l in leaders), (f, leaders)
PY
ctl status | grep -Eq "^0 +none " || { echo "FAIL: status table: shard 0 without a leader: $(ctl status)"; FAIL=1; }
dash_metrics >"$DIR/noleader.prom" && check_metrics "$DIR/noleader.prom" "$DIR/noleader.json" '
assert m["shoal_shard_has_leader{shard=\"0\"}"] == 0, m' ||
    { echo "FAIL: /metrics with shard 0 leaderless: $(cat "$DIR/noleader.prom")"; FAIL=1; }
check "restart shard 0's leader" ctl cluster start-node --dir "$DIR" "$L0"
check "restart the second node" ctl cluster start-node --dir "$DIR" "$O0"
wait_all_up "restart of nodes $L0 and $O0"
for _ in $(seq 150); do ctl status 2>/dev/null | grep -q "4/4 with a leader" && break; sleep 0.1; done

# cluster add-node: node 3 joins (node-0.cfg's config with node/join = 1, started,
# registered in the map, up); stop-node and start-node work on it; down below stops it
out=$(ctl cluster add-node --dir "$DIR" --json) || { echo "FAIL: cluster add-node (exit $?)"; FAIL=1; }
python3 - "$out" "$BASE" "$(cat "$DIR/pids/node-3.pid" 2>/dev/null)" <<'PY' || FAIL=1
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    d = {}
base = int(sys.argv[2])
want = {"node": 3, "pid": int(sys.argv[3] or 0), "endpoint": f"tcp://127.0.0.1:{base + 106}",
        "pub_endpoint": f"tcp://127.0.0.1:{base + 107}"}
if d != want or d["pid"] <= 0:
    print(f"FAIL: cluster add-node printed '{sys.argv[1]}', want {want}"); sys.exit(1)
PY
grep -Eq '^ +join = "?1"?$' "$DIR/node-3.cfg" || { echo "FAIL: node-3.cfg has no join = 1"; FAIL=1; }
[ "$(grep -c pub_endpoint "$DIR/node-3.cfg")" = 4 ] ||
    { echo "FAIL: node-3.cfg: its own endpoints and the bootstrap list of 3 expected"; FAIL=1; }
node3_up() { status_py "sys.exit(0 if [n['up'] for n in st['nodes'] if n['id'] == 3] == [True] else 1)" 2>/dev/null; }
node3_up || { echo "FAIL: status --json does not list node 3 up after add-node"; FAIL=1; }
ctl status | grep -q "nodes 4/4 up" || { echo "FAIL: status after add-node: $(ctl status)"; FAIL=1; }
want 2 "stop-node of a node that has no config" ctl cluster stop-node --dir "$DIR" 4
p3=$(cat "$DIR/pids/node-3.pid")
check "stop-node of the added node" ctl cluster stop-node --dir "$DIR" 3
kill -0 "$p3" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p3/status" 2>/dev/null &&
    { echo "FAIL: node 3 still running after stop-node"; FAIL=1; }
check "start-node of the added node" ctl cluster start-node --dir "$DIR" 3
for _ in $(seq 150); do node3_up && break; sleep 0.1; done
node3_up || { echo "FAIL: node 3 not up again after start-node"; FAIL=1; }
p3=$(cat "$DIR/pids/node-3.pid")

# one cluster command at a time per folder: one that finds DIR/.lock taken says so and waits
flock "$DIR/.lock" sleep 1.5 & holder=$!
sleep 0.3
t0=$(date +%s%N)
out=$(ctl cluster start-node --dir "$DIR" 3 2>&1); code=$?
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $holder
[ $code = 0 ] && echo "$out" | grep -q "waiting for another shoalctl cluster command" && [ $waited -ge 900 ] ||
    { echo "FAIL: start-node under a held lock: exit $code after $waited ms: $out"; FAIL=1; }

# a fifth shard (split), so that the running cluster differs from how it was made (3 nodes,
# 4 shards) in shards as well as nodes: `up` again prints what runs
retry_admin add-shard
for _ in $(seq 300); do ctl status 2>/dev/null | grep -q "5/5 with a leader" && break; sleep 0.1; done
ctl status | grep -q "5/5 with a leader" || { echo "FAIL: add-shard: $(ctl status)"; FAIL=1; }

# down: every process gone (the added node's too), pid files removed
pids=$(cat "$DIR"/pids/*.pid)
echo "$pids" | grep -qx "$p3" || { echo "FAIL: node 3's pid $p3 not among the pid files"; FAIL=1; }
all_before=$(ctl scan)
check "cluster down" ctl cluster down --dir "$DIR"
for p in $pids; do
    if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
        echo "FAIL: pid $p still running after cluster down"; FAIL=1
    fi
done
[ -z "$(ls "$DIR/pids")" ] || { echo "FAIL: pid files left: $(ls "$DIR/pids")"; FAIL=1; }
want 3 "a request after down" ctl --timeout 300 get c1
# a pid file left behind whose pid went to another program: not signalled
sleep 30 & other=$!
echo "$other" >"$DIR/pids/node-1.pid"
echo "$other" >"$DIR/pids/broker.pid"
check "stop-node over a reused pid" ctl cluster stop-node --dir "$DIR" 1 --kill
check "down over a reused pid" ctl cluster down --dir "$DIR"
kill -0 "$other" 2>/dev/null || { echo "FAIL: a stale pid file's pid (another program) was killed"; FAIL=1; }
kill "$other"; wait "$other" 2>/dev/null
rm -f "$DIR/pids/node-1.pid" "$DIR/pids/broker.pid"

# up again on the stopped cluster's folder: its own configs, the added node too, the data
# kept; an option that differs from how it was made is refused before anything starts
want 2 "cluster up again with other --shards" ctl cluster up --dir "$DIR" --shards 8
want 2 "cluster up again with another --base-port" ctl cluster up --dir "$DIR" --base-port 1999
[ -z "$(ls "$DIR/pids")" ] || { echo "FAIL: a refused up left pid files: $(ls "$DIR/pids")"; FAIL=1; }
out=$(ctl cluster up --dir "$DIR" --nodes 3 --shards 4 --timeout 60000) ||
    { echo "FAIL: cluster up again: $out"; FAIL=1; }
[ "$(echo "$out" | tail -n 1)" = "$SHOAL_BROKER" ] || { echo "FAIL: up again printed '$out'"; FAIL=1; }
echo "$out" | head -n 1 | grep -q "^cluster of 4 nodes, 5 shards x 3 replicas (shard map v[0-9]*) is up again" ||
    { echo "FAIL: up again did not print the running cluster (4 nodes, 5 shards): '$out'"; FAIL=1; }
[ "$(ctl get c1)" = v4 ] || { echo "FAIL: c1 after the restart"; FAIL=1; }
[ "$(ctl scan)" = "$all_before" ] || { echo "FAIL: scan after the restart differs"; FAIL=1; }
[ "$(echo "$all_before" | wc -l)" -gt 60 ] || { echo "FAIL: scan before down: $all_before"; FAIL=1; }
[ -f "$DIR/pids/node-3.pid" ] || { echo "FAIL: up again did not start the added node 3"; FAIL=1; }
for _ in $(seq 150); do node3_up && break; sleep 0.1; done
node3_up || { echo "FAIL: node 3 not up after up again"; FAIL=1; }
check "cluster down after up again" ctl cluster down --dir "$DIR"
# an up that fails (here: not ready in 1 ms) stops what it started
want 3 "cluster up that times out" ctl cluster up --dir "$DIR" --timeout 1
[ -z "$(ls "$DIR/pids")" ] || { echo "FAIL: a failed up left pid files: $(ls "$DIR/pids")"; FAIL=1; }
left=$(pgrep -f "$DIR/(node-|broker)" | while read -r p; do
    grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null || echo "$p"; done)
[ -z "$left" ] || { echo "FAIL: a failed up left processes running: $left"; FAIL=1; }

[ $FAIL = 0 ] && echo "cluster_cli: all checks passed"
exit $FAIL
