#!/usr/bin/env bash
# cluster_watch_restart.sh - a watcher with a key prefix loses nothing across broker
# restarts: the changes published while its stream was cut (the broker down, then the new
# broker not yet subscribed to the nodes) cannot be seen missing from a filtered stream's
# indexes, so libshoal catches every shard up after a disconnect (broker/watch.c, resync).
# Two shell writers (keys w1-*, w2-*) and a pipelined writer run; the broker is killed and
# restarted twice; every acknowledged w* write must reach the `watch --prefix w` output.
source "$(dirname "$0")/cluster_lib.sh"

cl_up 3 2 3
"$CTL" watch --prefix w >"$DIR/watch.out" 2>"$DIR/watch.err" &
WATCH=$!
for _ in $(seq 100); do
    ctl put w0-warm x >/dev/null 2>&1
    grep -q $'\tput\tw0-warm' "$DIR/watch.out" && break
    sleep 0.1
done
grep -q $'\tput\tw0-warm' "$DIR/watch.out" || { echo "FAIL: the watcher saw no warm-up key"; FAIL=1; }
cl_start_writers 2
sleep 2
for round in 1 2; do
    broker_restart
    sleep 3
done
touch "$STOP"
wait "${WPIDS[@]}"
wait "$MWPID" || { echo "FAIL: the pipelined writer lost acknowledged writes"; FAIL=1; }
cat "$DIR"/acked-* >"$DIR/acked" 2>/dev/null
for _ in $(seq 100); do # the watcher drains (catch-ups run at its next event or notice)
    missing=$(python3 - "$DIR/acked" "$DIR/watch.out" <<'PY'
import sys
seen = set()
for l in open(sys.argv[2], errors="replace"):
    f = l.rstrip("\n").split("\t")
    if len(f) >= 4 and f[1] == "put":
        seen.add((f[2], f[3]))
acked = [tuple(l.split()) for l in open(sys.argv[1]) if l.strip()]
print(sum(1 for a in acked if a not in seen), len(acked))
PY
)
    [ "${missing%% *}" = 0 ] && break
    sleep 0.2
done
kill "$WATCH" 2>/dev/null; wait "$WATCH" 2>/dev/null
echo "acknowledged w* writes not seen by the watcher: ${missing%% *} of ${missing##* }"
[ "${missing%% *}" = 0 ] && [ "${missing##* }" -gt 0 ] ||
    { echo "FAIL: the prefix watcher missed changes across broker restarts"; FAIL=1; }
grep -q "fell behind\|no longer retained" "$DIR/watch.err" && { echo "FAIL: $(cat "$DIR/watch.err")"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "cluster_watch_restart: ok"
exit "$FAIL"
