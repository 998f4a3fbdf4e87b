#!/usr/bin/env bash
# recovery_bench.sh - how long a killed node takes to serve again (SPEC bar: "a killed node
# restarts and serves within 2 s with 1,000,000 keys").
#
# Starts a local cluster (3 nodes, SHARDS shards, 3 replicas, fsync per batch), loads KEYS
# keys (16-byte keys, 100-byte values) with `shoalctl bench get --keys`, then ROUNDS times
# for a follower and ROUNDS times for the leader of shard 0:
#   1. kill -9 the node (`cluster stop-node --kill`); for the leader, the time until the
#      cluster takes a write again (new leader elected) is measured too;
#   2. while it is down, overwrite keys for DOWN_S seconds (`bench put`; none with
#      DOWN_S=0) and write a marker key last, so the node has entries to catch up;
#   3. `cluster start-node` (in the background) and, from the moment it is called, poll:
#        up      - the node answers on its own ROUTER (a stale get sent to it alone);
#        read    - that stale get, answered by the node itself from its own engine, returns
#                  the marker's value: it has recovered and applied what it missed;
#        caught  - the broker's status shows the node up and its match index on every shard
#                  it holds at or past the commit index when it was restarted (the broker
#                  polls nodes every 500 ms, so this lags the node by up to that much).
#      "serves" is `read`: the node answers from its own engine with every write made
#      before its restart applied. `caught` must follow within 60 s too.
# Figures are printed per round, then min / median / max. The node's stale get goes through
# tests/node_client (a client that talks to one node directly); polls are ~20 ms apart and
# a ZeroMQ connect to a port not yet bound is retried every 100 ms, so `up` is known to
# ~100 ms.
#
#   tools/recovery_bench.sh [BUILD_DIR]        (default: $SHOAL_BUILD_DIR, else build)
#   env: KEYS=1000000 SHARDS=1 ROUNDS=3 DOWN_S=3 CLIENTS=64 KEEP_DIR=1
#        SNAPSHOT_ENTRIES=N  sets storage/snapshot_entries on every node (restarted before
#                            the load) instead of shoald's default
#        SNAPSHOT_RATE_KBPS=N  likewise storage/snapshot_rate_kbps
# Uses its own temporary folder and free ports; stops its processes by pid on exit.
set -euo pipefail
BUILD=$(cd "${1:-${SHOAL_BUILD_DIR:-build}}" && pwd)
KEYS=${KEYS:-1000000}
SHARDS=${SHARDS:-1}
ROUNDS=${ROUNDS:-3}
DOWN_S=${DOWN_S:-3}
CLIENTS=${CLIENTS:-64}
CTL=$BUILD/tools/shoalctl
NODE_CLIENT=$BUILD/tests/node_client
for b in "$CTL" "$NODE_CLIENT" "$BUILD/actors/shoald" "$BUILD/broker/shoal-broker"; do
    [ -x "$b" ] || { echo "recovery_bench: $b missing (build it first)" >&2; exit 2; }
done
DIR=$(mktemp -d /tmp/shoal-recovery.XXXXXX)

cleanup() {
    "$CTL" cluster down --dir "$DIR" >/dev/null 2>&1 || true
    for f in "$DIR"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    if [ "${KEEP_DIR:-0}" = 1 ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

BASE=$(python3 - <<'PY'
import random, socket
for _ in range(500):
    base = random.randrange(20000, 60000, 200)
    ok = True
    for p in [base, base + 1, base + 2] + list(range(base + 100, base + 106)):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
        if not ok:
            break
    if ok:
        print(base)
        break
PY
)
export SHOAL_BROKER
SHOAL_BROKER=$("$CTL" cluster up --dir "$DIR" --nodes 3 --shards "$SHARDS" --replicas 3 \
               --base-port "$BASE" --timeout 60000 | tail -n 1)
storage=""
[ -n "${SNAPSHOT_ENTRIES:-}" ] && storage+="\n    snapshot_entries = $SNAPSHOT_ENTRIES"
[ -n "${SNAPSHOT_RATE_KBPS:-}" ] && storage+="\n    snapshot_rate_kbps = $SNAPSHOT_RATE_KBPS"
if [ -n "$storage" ]; then
    for i in 0 1 2; do
        "$CTL" cluster stop-node --dir "$DIR" $i >/dev/null
        sed -i "s/^storage\$/storage$storage/" "$DIR/node-$i.cfg"
        "$CTL" cluster start-node --dir "$DIR" $i >/dev/null
    done
    for _ in $(seq 200); do "$CTL" --timeout 500 put recovery/ready 1 2>/dev/null && break; sleep 0.1; done
fi
echo "cluster: 3 nodes, $SHARDS shard(s) x 3 replicas, broker $SHOAL_BROKER, dir $DIR"
echo "settings: KEYS=$KEYS DOWN_S=$DOWN_S CLIENTS=$CLIENTS storage/snapshot_entries=${SNAPSHOT_ENTRIES:-default} snapshot_rate_kbps=${SNAPSHOT_RATE_KBPS:-default}"
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

t=$(date +%s.%N)
"$CTL" bench get --clients "$CLIENTS" --duration 1 --key-size 16 --value-size 100 \
    --keys "$KEYS" 2>&1 | grep -E "^loaded|error" || true
echo "load of $KEYS keys: $(python3 -c "import time; print(round(time.time() - $t, 1))") s (incl. 1 s of gets)"
"$CTL" status | sed -n '1p;/^SHARD/,$p'
du -sh "$DIR"/node-0 | sed 's/^/node-0 data: /'

export BUILD DIR CTL NODE_CLIENT ROUNDS DOWN_S CLIENTS BASE
python3 - <<'PY'
import json, os, statistics, subprocess, time

CTL, DIR, NC = os.environ["CTL"], os.environ["DIR"], os.environ["NODE_CLIENT"]
BASE, ROUNDS, DOWN_S = int(os.environ["BASE"]), int(os.environ["ROUNDS"]), int(os.environ["DOWN_S"])
CLIENTS = os.environ["CLIENTS"]

def ctl(*args, check=True, timeout=120):
    r = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise SystemExit(f"shoalctl {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r

def status():
    r = ctl("--json", "--timeout", "1000", "status", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None

def node_ep(i):
    return f"tcp://127.0.0.1:{BASE + 100 + 2 * i}"

def wait_caught_up(victim=None, timeout=60):
    """Until every node is up and every replica has what was committed when called."""
    t0 = time.time()
    target = None
    while time.time() - t0 < timeout:
        st = status()
        if st:
            if target is None:
                target = {s["id"]: s["commit"] for s in st["shards"]}
            up = all(n["up"] for n in st["nodes"])
            ok = up and all(s["leader"] is not None and
                            all(r["match"] >= target[s["id"]] for r in s["replicas"])
                            for s in st["shards"])
            if ok:
                return time.time() - t0
        time.sleep(0.02)
    return None

results = {"follower": [], "leader": []}
for role in ["follower", "leader"]:
    for rnd in range(ROUNDS):
        if wait_caught_up(timeout=120) is None:
            raise SystemExit("cluster not caught up before the round")
        st = status()
        leader = st["shards"][0]["leader"]
        victim = leader if role == "leader" else (leader + 1 + rnd % 2) % 3
        ctl("cluster", "stop-node", "--dir", DIR, str(victim), "--kill")
        t_kill = time.time()
        unavail = None
        if role == "leader":  # time until a write to shard 0 is taken again
            while time.time() - t_kill < 30:
                r = ctl("--timeout", "300", "put", f"recovery/probe/{rnd}", "x", check=False)
                if r.returncode == 0:
                    unavail = time.time() - t_kill
                    break
        # writes the node will have to catch up, then the marker as the last write
        if DOWN_S > 0:
            ctl("bench", "put", "--clients", CLIENTS, "--duration", str(DOWN_S), "--key-size",
                "16", "--value-size", "100", "--keys", "1000000", check=False)
        marker = f"marker-{role}-{rnd}-{time.time()}"
        r = ctl("--json", "put", "recovery/marker", marker)
        shard = json.loads(r.stdout).get("shard", 0)
        commit_at_start = {s["id"]: s["commit"] for s in status()["shards"]}
        missed = sum(commit_at_start.values()) - sum(s["commit"] for s in st["shards"])
        # restart, and poll from the moment start-node is called
        t0 = time.time()
        p = subprocess.Popen([CTL, "cluster", "start-node", "--dir", DIR, str(victim)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t_up = t_read = t_caught = None
        while time.time() - t0 < 60 and (t_read is None or t_caught is None):
            g = subprocess.run([NC, "--timeout", "200", node_ep(victim), "get", str(shard),
                                "recovery/marker", "stale"], capture_output=True, text=True)
            now = time.time() - t0
            if g.returncode in (0, 1) and t_up is None:
                t_up = now
            if g.returncode == 0 and g.stdout.strip() == marker and t_read is None:
                t_read = now
            if t_caught is None:
                s = status()
                if s and all(n["up"] for n in s["nodes"]) and all(
                        r["match"] >= commit_at_start[sh["id"]]
                        for sh in s["shards"] for r in sh["replicas"] if r["node"] == victim):
                    t_caught = time.time() - t0
            time.sleep(0.02)
        err = p.communicate()[1]
        if p.returncode != 0:
            raise SystemExit(f"start-node {victim}: exit {p.returncode}: {err.strip()}")
        if t_read is None or t_caught is None:
            raise SystemExit(f"node {victim} not serving 60 s after start-node "
                             f"(up {t_up}, read {t_read}, caught up {t_caught})")
        serves = t_read
        results[role].append((t_up, t_read, t_caught, serves, unavail))
        fmt = lambda x: "-" if x is None else f"{x * 1000:.0f} ms"
        print(f"{role} node {victim} (round {rnd + 1}): up {fmt(t_up)}, reads marker "
              f"{fmt(t_read)}, caught up {fmt(t_caught)} -> serves {fmt(serves)} after "
              f"start-node; ~{missed} entries missed (broker view)" + (f"; writes taken again {fmt(unavail)} after the kill"
                               if role == "leader" else ""), flush=True)

print()
print("| node killed | rounds | up (ms, median) | caught up, broker view (ms, median) | serves: reads the last write itself (ms) min / median / max |")
print("| --- | ---: | ---: | ---: | --- |")
for role, rs in results.items():
    med = lambda i: statistics.median(r[i] for r in rs) * 1000
    serves = sorted(r[3] * 1000 for r in rs)
    print(f"| {role} | {len(rs)} | {med(0):.0f} | {med(2):.0f} | "
          f"{serves[0]:.0f} / {statistics.median(serves):.0f} / {serves[-1]:.0f} |")
un = [r[4] * 1000 for r in results["leader"] if r[4] is not None]
if un:
    print(f"\nleader killed: writes taken again after {min(un):.0f} / {statistics.median(un):.0f}"
          f" / {max(un):.0f} ms (min / median / max)")
worst = max(r[3] for rs in results.values() for r in rs)
snaps = [f"node {i}: {open(f'{DIR}/logs/node-{i}.log', errors='replace').read().count('installed snapshot')}"
         for i in range(3)]
print(f"\nsnapshots installed (InstallSnapshot, from the node logs): {', '.join(snaps)}")
print(f"\nworst restart-to-serving: {worst * 1000:.0f} ms (bar: 2000 ms) -> "
      f"{'MET' if worst <= 2.0 else 'NOT MET'}")
PY
