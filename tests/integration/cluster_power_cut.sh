#!/usr/bin/env bash
# cluster_power_cut.sh - power cuts of a whole cluster: nothing acknowledged may be lost.
#
# A kill -9 does not test fsync (the kernel keeps the page cache), so the nodes run with
# SHOAL_TEST_UNSYNCED=hold (actors/failpoint.h): every write of the Raft log and of the
# engines stays in the process's memory until its file is synced, and a kill -9 then loses
# exactly what a power cut loses. Each round: two pipelined writers (power_cut_writer.c, 64
# puts in flight each) record every acknowledged put; all three nodes are killed at once
# (kill -9, by pid) in the middle of it; they restart; every write acknowledged in this and
# the earlier rounds must read back (linearizable gets) and a scan must agree.
#   round 1: the default config (fsync per commit batch);
#   round 2+: snapshot marks every 64 entries (the engine synced, the log truncated behind
#             it), so the kills land in marks and truncations;
#   round 3+: also `shoalctl snapshot` (snapshot files exported) and `shoalctl compact` just
#             before the kill.
# --selftest: the same with --fsync never, where acknowledged writes must be LOST (the check
# must see it): proves the hold mode drops the unsynced bytes and the check notices.
# --crash-never: --fsync never without the hold mode, so the kills are process crashes,
# which `never` must survive with nothing lost (the log used to keep its records in its
# buffer until a sync that never came: after the crash no shard took a write for 30 s).
# POWER_CUT_ROUNDS (default 3; selftest 2, crash-never 1) and POWER_CUT_WRITE_S (default 3)
# tune it.
source "$(dirname "$0")/cluster_lib.sh"

SELFTEST=0 HOLD=1
[ "${1:-}" = --selftest ] && SELFTEST=1
[ "${1:-}" = --crash-never ] && HOLD=0
ROUNDS=${POWER_CUT_ROUNDS:-$((SELFTEST ? 2 : HOLD ? 3 : 1))}
WRITE_S=${POWER_CUT_WRITE_S:-3}
PCW=$BUILD/tests/power_cut_writer
[ -x "$PCW" ] || { echo "SKIP: $PCW not built"; exit 77; }

[ "$HOLD" = 1 ] && export SHOAL_TEST_UNSYNCED=hold # inherited by the nodes `cluster up` starts
cl_up 3 4 3 --fsync "$([ "$SELFTEST" = 1 ] || [ "$HOLD" = 0 ] && echo never || echo batch)"
[ "$FAIL" = 0 ] || exit 1
[ "$HOLD" = 0 ] || grep -q "SHOAL_TEST_UNSYNCED=hold: unsynced file data is kept in memory" \
    "$DIR/logs/node-0.log" || { echo "FAIL: the nodes did not turn the hold mode on"; FAIL=1; exit 1; }

wait_leaders() { # every shard has a leader (at most 30 s; selftest: 10 s, and no failure)
    local end=$((SECONDS + (SELFTEST ? 10 : 30)))
    while [ "$SECONDS" -lt "$end" ]; do
        status_py "sys.exit(0 if all(s['leader'] is not None for s in st['shards']) else 1)" \
            2>/dev/null && return 0
        sleep 0.2
    done
    if [ "$SELFTEST" = 1 ]; then # the nodes lost their logs' tails: a group may be stuck
        echo "selftest: shards without a leader after the cut (expected damage)"
        return 0
    fi
    echo "FAIL: shards without a leader 30 s after the restart: $(ctl status 2>&1)"
    FAIL=1
    return 1
}

# A scan of every key written (in pages of the broker's 10000 at most) agrees with the
# acknowledged writes: prints the count missing or wrong (-1: the scan failed).
scan_lost() {
    cat "$DIR"/acked-* >"$DIR/acked" 2>/dev/null
    python3 - "$CTL" "$DIR/acked" <<'PY'
import subprocess, sys
acked = dict(l.split() for l in open(sys.argv[2]) if l.strip())
seen, start = {}, None
while True:
    cmd = [sys.argv[1], "scan", "--prefix", "r", "--limit", "10000"] + (["--from", start] if start else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"scan: {' '.join(cmd[1:])} failed: {p.stderr.strip()}", file=sys.stderr)
        print(-1); sys.exit()
    page = [l.split("\t", 1) for l in p.stdout.splitlines() if l]
    seen.update(page)
    if len(page) < 2 or page[-1][0] == start:
        break
    start = page[-1][0]  # --from is inclusive: that key comes again
lost = sorted(k for k, v in acked.items() if seen.get(k) != v)
if lost:
    print(f"scan: {len(lost)} of {len(acked)} acknowledged writes missing or wrong, e.g. {lost[:5]}", file=sys.stderr)
print(len(lost))
PY
}

TOTAL=0
DETECTED=0
for r in $(seq 1 "$ROUNDS"); do
    t0=$SECONDS
    pids=() apids=()
    "$CTL" events --count 10000000 >"$DIR/events-r$r" 2>&1 & # the marks' "log truncated"
    evpid=$!
    for w in a b; do
        "$PCW" put "$SHOAL_BROKER" "r$r$w-" 64 "$DIR/acked-r$r$w" 2>>"$DIR/writer.err" &
        pids+=($!)
    done
    if [ "$r" -ge 3 ]; then
        sleep "$((WRITE_S - 1))"
        "$CTL" compact >/dev/null 2>&1 &
        apids+=($!)
        sleep 0.7
        "$CTL" snapshot >/dev/null 2>&1 &
        apids+=($!)
        sleep 0.3
    else
        sleep "$WRITE_S"
    fi
    # the power cut: every node at once, the writers right after (a put acknowledged after
    # its writer recorded nothing more is simply not checked)
    node_pids=$(cat "$DIR"/pids/node-*.pid)
    # shellcheck disable=SC2086
    kill -KILL $node_pids
    kill -KILL "${pids[@]}" "$evpid" 2>/dev/null
    wait "${pids[@]}" "$evpid" 2>/dev/null
    truncs=$(grep -c "log truncated" "$DIR/events-r$r")
    for p in $node_pids; do # gone (a dying process still holds its data folder's lock)
        for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    done
    acked=$(cat "$DIR"/acked-r"$r"* 2>/dev/null | wc -l)
    TOTAL=$((TOTAL + acked))
    if [ "$r" = 1 ]; then # from now on: snapshot marks every 64 entries
        for i in 0 1 2; do
            sed -i 's/^storage$/storage\n    snapshot_entries = 64/' "$DIR/node-$i.cfg"
        done
    fi
    # the power comes back: every node at once, started as `cluster up` starts them (not
    # by start-node, which waits for each node to reach the commit index the broker last
    # saw, which needs the nodes started after it)
    for i in 0 1 2; do
        setsid "$BUILD/actors/shoald" --config "$DIR/node-$i.cfg" >>"$DIR/logs/node-$i.log" 2>&1 </dev/null &
        echo $! >"$DIR/pids/node-$i.pid"
        disown $! # not this shell's job: no "Killed" line at the next cut
    done
    wait_leaders
    for i in 0 1 2; do
        kill -0 "$(cat "$DIR/pids/node-$i.pid")" 2>/dev/null ||
            { echo "FAIL: round $r: node $i did not restart: $(tail -n 3 "$DIR/logs/node-$i.log")"; FAIL=1; }
    done
    [ "${#apids[@]}" = 0 ] || wait "${apids[@]}" 2>/dev/null # snapshot, compact: answered or not
    "$PCW" check "$SHOAL_BROKER" "$DIR"/acked-* >"$DIR/check.out" 2>&1
    rc=$?
    lost=$(scan_lost 2>>"$DIR/check.out")
    echo "round $r: $acked writes acknowledged ($TOTAL in all rounds), $truncs log truncations;" \
        "after the power cut:" \
        "$(grep -o '^acknowledged writes checked.*' "$DIR/check.out" || echo "gets: no summary");" \
        "scan: ${lost:-?} missing ($((SECONDS - t0)) s)"
    grep -E "^(LOST|unreadable|scan)" "$DIR/check.out" | head -n 5
    [ "$acked" -ge 50 ] || { echo "FAIL: round $r: only $acked writes acknowledged"; FAIL=1; }
    [ "$r" = 1 ] || [ "$truncs" -gt 0 ] ||
        { echo "FAIL: round $r: no snapshot mark truncated the log before the cut"; FAIL=1; }
    if [ "$SELFTEST" = 1 ]; then
        if [ "$rc" = 1 ] || [ "${lost:-0}" -gt 0 ]; then
            DETECTED=1
            break
        fi
    else
        [ "$rc" = 0 ] || { echo "FAIL: round $r: the gets found acknowledged writes lost or unreadable"; FAIL=1; }
        [ "${lost:-x}" = 0 ] || { echo "FAIL: round $r: the scan disagrees"; FAIL=1; }
        [ "$FAIL" = 0 ] || break
    fi
done

if [ "$SELFTEST" = 1 ]; then
    if [ "$DETECTED" = 1 ]; then
        echo "selftest: with --fsync never the power cut lost acknowledged writes, and the check saw it"
    else
        echo "FAIL: selftest: with --fsync never no acknowledged write was lost in $ROUNDS power cuts:" \
            "the hold mode does not drop unsynced data, or the check does not see it"
        FAIL=1
    fi
fi
[ "$FAIL" = 0 ] && echo "PASS"
exit "$FAIL"
