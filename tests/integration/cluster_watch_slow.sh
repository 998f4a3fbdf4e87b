#!/usr/bin/env bash
# cluster_watch_slow.sh - a watcher with a key prefix that stops reading never loses changes
# silently. The broker's XPUB drops a slow subscriber's messages past its high-water mark
# (here 10, so the drop comes once the sockets' buffers are full), and a filtered stream's
# indexes cannot show the drop; the broker's per-prefix count of events sent can
# (broker/stream_seqs.c). The watcher is stopped (SIGSTOP) while a benchmark writes tens of
# MB of changes under its prefix, then continued: it must either be told it fell behind
# (exit 1, the changes are past the retained window) or have seen every change (its mirror
# of the keys equals a scan). Before the counts it went on silently with a stale mirror.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 3 2 3
python3 - "$DIR/broker.cfg" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
if re.search(r"^\s*subscriber_hwm\s*=", s, re.M):
    s = re.sub(r"^(\s*)subscriber_hwm\s*=.*$", r"\1subscriber_hwm = 10", s, flags=re.M)
else:
    s = re.sub(r"^broker\s*$", "broker\n    subscriber_hwm = 10", s, count=1, flags=re.M)
open(p, "w").write(s)
PY
broker_restart
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done

"$CTL" watch --prefix 000 >"$DIR/watch.out" 2>"$DIR/watch.err" &
WATCH=$!
for _ in $(seq 100); do
    ctl put 000warm x >/dev/null 2>&1
    grep -q $'\tput\t000warm' "$DIR/watch.out" && break
    sleep 0.1
done
grep -q $'\tput\t000warm' "$DIR/watch.out" || { echo "FAIL: the watcher saw no warm-up key"; FAIL=1; }

kill -STOP "$WATCH"
# bench keys are 16 digits, zero-padded: all under the prefix
check "bench put" ctl bench put --clients 32 --duration 4 --keys 5000 --value-size 4000
kill -CONT "$WATCH"

# Told it fell behind (exit 1), or still running: then once its output stops growing,
# its mirror of the keys must equal a scan.
rc="" size=-1 still=0
for _ in $(seq 600); do
    if ! kill -0 "$WATCH" 2>/dev/null; then
        wait "$WATCH"
        rc=$?
        break
    fi
    now=$(stat -c %s "$DIR/watch.out")
    if [ "$now" = "$size" ]; then still=$((still + 1)); else still=0 size=$now; fi
    [ "$still" -ge 30 ] && break
    sleep 0.1
done
if [ -n "$rc" ]; then
    echo "watcher exited $rc: $(head -c 300 "$DIR/watch.err")"
    [ "$rc" = 1 ] && grep -q "fell behind\|no longer retained" "$DIR/watch.err" ||
        { echo "FAIL: the watcher ended without saying it fell behind"; FAIL=1; }
else
    ctl scan --prefix 000 --limit 10000 >"$DIR/scan.out"
    python3 - "$DIR/watch.out" "$DIR/scan.out" <<'PY' || FAIL=1
import sys
mirror = {}
for l in open(sys.argv[1], errors="replace"):
    f = l.rstrip("\n").split("\t")
    if len(f) >= 4 and f[1] == "put":
        mirror[f[2]] = f[3]
    elif len(f) >= 3 and f[1] == "del":
        mirror.pop(f[2], None)
want = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if "\t" in l)
wrong = sum(1 for k in want if mirror.get(k) != want[k]) + sum(1 for k in mirror if k not in want)
print(f"watcher still running; keys {len(want)}, its mirror {len(mirror)}, {wrong} differ")
if wrong:
    print("FAIL: the watcher lost changes without being told")
sys.exit(1 if wrong else 0)
PY
fi
echo "the watcher printed $(grep -c $'\tput\t' "$DIR/watch.out") puts"
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null
[ "$FAIL" = 0 ] && echo "cluster_watch_slow: ok"
exit "$FAIL"
