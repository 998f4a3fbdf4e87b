#!/usr/bin/env bash
# cluster_window_restart.sh - a shard's change window outlives a restart of every node:
# after `cluster down` + `up`, and again after every process was killed (-9), `watch
# --from-index` from before the restart replays exactly the acknowledged changes since the
# log's snapshot mark (a batch writing one key twice, a delete, a compare-and-swap; nothing
# for a failed compare), at the indexes they were written at, in order; an index older
# than the log (cut by `snapshot`) is still told "no longer retained". The window is
# refilled from the entries each node's Raft log still holds (fsm_group_refill): before,
# it was only in memory and every such resume was answered WINDOW_GONE.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 3 1 3
# Only `snapshot` below cuts the log: no periodic mark (60 s by default) in the middle.
ctl cluster down --dir "$DIR" >/dev/null || { echo "FAIL: cluster down"; FAIL=1; }
for i in 0 1 2; do
    sed -i 's/^storage$/storage\n    snapshot_interval_ms = 3600000/' "$DIR/node-$i.cfg"
done
ctl cluster up --dir "$DIR" >/dev/null || { echo "FAIL: cluster up (configs)"; FAIL=1; exit 1; }

EXP=$DIR/expected # INDEX<TAB>put|del<TAB>KEY[<TAB>VALUE] per acknowledged change, in order
index_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["index"])'; }
wput() { # put KEY VALUE, recorded with the index it was applied at
    local ix
    ix=$(ctl --json put "$1" "$2" | index_of) || { echo "FAIL: put $1"; FAIL=1; return; }
    printf '0:%s\tput\t%s\t%s\n' "$ix" "$1" "$2" >>"$EXP"
}
wdel() {
    local ix
    ix=$(ctl --json del "$1" | index_of) || { echo "FAIL: del $1"; FAIL=1; return; }
    printf '0:%s\tdel\t%s\n' "$ix" "$1" >>"$EXP"
}
# a batch (B: one index for all its ops) and a CAS (?) answer no index: theirs is checked
# against their neighbours' below
wnoindex() { printf '%s\t%s\n' "$1" "$2" >>"$EXP"; }

# before the mark: these leave the log
first=$(ctl --json put old/1 a | index_of)
ctl put old/2 b >/dev/null || { echo "FAIL: put old/2"; FAIL=1; }
sleep 1 # every replica applied them
check "snapshot" ctl snapshot 0
for _ in $(seq 100); do # every node exported and marked (a snapshot file is made, then the mark)
    [ "$(grep -l "shard 0: snapshot at [0-9]* exported" "$DIR"/logs/node-*.log | wc -l)" = 3 ] && break
    sleep 0.1
done
[ "$(grep -l "shard 0: snapshot at [0-9]* exported" "$DIR"/logs/node-*.log | wc -l)" = 3 ] ||
    { echo "FAIL: not every node took the snapshot"; FAIL=1; }
sleep 1

# after the mark: what the replays must show
wput k/1 v1
from=$(($(cut -f1 "$EXP" | head -n 1 | cut -d: -f2) - 1))
check "a batch writing one key twice" ctl batch put b/1 x1 put b/1 x2 del k/1 put b/2 y
for op in $'put\tb/1\tx1' $'put\tb/1\tx2' $'del\tk/1' $'put\tb/2\ty'; do wnoindex B "$op"; done
check "cas" ctl cas b/1 x2 x3
wnoindex '?' $'put\tb/1\tx3'
want 1 "a failed cas" ctl cas b/1 wrong nope # no change: nothing to replay
wdel b/2
for i in $(seq 1 5); do wput "k/$i" "value-$i"; done

# Replays from $from and checks the lines against $EXP: the same ops, keys and values in
# the same order, the recorded indexes, one index for the batch's ops, rising indexes.
# A sentinel written last (after the restart) must come right after them: nothing extra.
replay_check() {
    local what=$1 n out
    wput "end/$what" done
    n=$(wc -l <"$EXP")
    out=$(timeout 30 "$CTL" watch --from-index "0:$from" --count "$n" 2>"$DIR/watch.err")
    echo "$out" >"$DIR/replay-$what"
    python3 - "$EXP" "$DIR/replay-$what" "$what" <<'PY' || FAIL=1
import sys
exp = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
got = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if l.strip()]
what = sys.argv[3]
bad = []
if [g[1] for g in got] != [e[1] for e in exp]:
    bad.append("ops differ")
for e, g in zip(exp, got):
    if e[0] not in ("?", "B") and e[0] != g[0]:
        bad.append(f"{e[1]!r} at {g[0]}, written at {e[0]}")
idx = [int(g[0].split(":")[1]) for g in got]
if idx != sorted(idx):
    bad.append("indexes not in order")
batch = {g[0] for e, g in zip(exp, got) if e[0] == "B"}
if len(batch) != 1:
    bad.append(f"the batch's ops at {sorted(batch)}")
if bad:
    print(f"FAIL: replay after {what}: {'; '.join(bad)}")
    print("want:\n" + "\n".join("\t".join(e) for e in exp))
    print("got:\n" + "\n".join("\t".join(g) for g in got))
    sys.exit(1)
print(f"replay after {what}: {len(got)} changes as written")
PY
    [ -s "$DIR/watch.err" ] && echo "watch --from-index 0:$from said: $(cat "$DIR/watch.err")"
    # after a restart, an index the log no longer holds: told once, exit 1 (a running
    # node's window still has it: the mark cut only the log)
    [ "$what" = live ] && return
    out=$(timeout 30 "$CTL" watch --from-index "0:$((first - 1))" 2>&1 >/dev/null)
    code=$?
    [ $code = 1 ] && [ "$(echo "$out" | grep -c "no longer retained")" = 1 ] ||
        { echo "FAIL: watch from before the mark after $what: exit $code: $out"; FAIL=1; }
}

replay_check live
ctl cluster down --dir "$DIR" >/dev/null || { echo "FAIL: cluster down"; FAIL=1; }
ctl cluster up --dir "$DIR" >/dev/null || { echo "FAIL: cluster up after down"; FAIL=1; exit 1; }
replay_check down
grep -h "change window refilled" "$DIR"/logs/node-*.log | tail -n 3

# every process killed: the engines' applied index is stored only every 64 entries, so
# these writes are applied again at the start (their sessions skip them) and must still
# come back, the retried-looking ones as the changes they were
for i in $(seq 6 15); do wput "k/$i" "value-$i"; done
check "cas after the restart" ctl cas k/6 value-6 value-6b
wnoindex '?' $'put\tk/6\tvalue-6b'
for f in "$DIR"/pids/node-*.pid "$DIR"/pids/broker.pid; do kill -KILL "$(cat "$f")" 2>/dev/null; done
for f in "$DIR"/pids/node-*.pid "$DIR"/pids/broker.pid; do
    while kill -0 "$(cat "$f")" 2>/dev/null; do sleep 0.05; done
done
ctl cluster up --dir "$DIR" >/dev/null || { echo "FAIL: cluster up after kill -9"; FAIL=1; exit 1; }
replay_check kill
[ "$FAIL" = 0 ] && echo "cluster_window_restart: ok"
exit "$FAIL"
