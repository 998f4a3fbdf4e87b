#!/usr/bin/env bash
# cluster_start_full_disk.sh - `shoalctl cluster start-node` on a disk that is still full:
# the node starts, logs "serving", and dies when it writes the entries it missed. start-node
# must not say "started" (it did, before it waited for the node to catch up): exit 3 with
# the node's own error (No space left on device). Once space is freed it starts, exit 0,
# and serves what it missed. Needs a small tmpfs (mount: root); skipped (77) without.
source "$(dirname "$0")/cluster_lib.sh"

MNT=$(mktemp -d /tmp/shoal-full-disk.XXXXXX)
if ! mount -t tmpfs -o size=16m tmpfs "$MNT" 2>/dev/null; then
    rmdir "$MNT"
    echo "SKIP: cannot mount a tmpfs (not root?)"
    exit 77
fi
full_cleanup() {
    cl_cleanup
    umount "$MNT" 2>/dev/null
    rmdir "$MNT" 2>/dev/null
}
trap full_cleanup EXIT

cl_up 3 2 3
check "put before" ctl put before v
check "stop node 2" ctl cluster stop-node --dir "$DIR" 2
# node 2's data folder onto the small disk
cp -a "$DIR/node-2/." "$MNT/" || { echo "FAIL: copy node 2's data"; FAIL=1; exit 1; }
mv "$DIR/node-2" "$DIR/node-2.orig" && ln -s "$MNT" "$DIR/node-2"
# what it misses while down: 1.6 MB, more than the disk will have left
big=$(head -c 40000 /dev/zero | tr '\0' v)
for i in $(seq 1 40); do
    ctl put "missed-$i" "$big" || { echo "FAIL: put missed-$i"; FAIL=1; }
done
avail=$(df --output=avail -k "$MNT" | tail -n 1)
dd if=/dev/zero of="$MNT/filler" bs=1k count=$((avail - 200)) 2>/dev/null
echo "node 2's disk: $(df -h --output=avail "$MNT" | tail -n 1 | tr -d ' ') left"

ctl cluster start-node --dir "$DIR" 2 >"$DIR/start.out" 2>"$DIR/start.err"
rc=$?
echo "start-node on the full disk: exit $rc: $(cat "$DIR/start.out" "$DIR/start.err")"
[ "$rc" = 3 ] || { echo "FAIL: start-node on a full disk: exit $rc, want 3"; FAIL=1; }
grep -q "started" "$DIR/start.out" && { echo "FAIL: start-node said started"; FAIL=1; }
grep -q "node 2 exited during start-up .*No space left on device" "$DIR/start.err" ||
    { echo "FAIL: start-node did not give the node's error"; FAIL=1; }
kill -0 "$(cat "$DIR/pids/node-2.pid" 2>/dev/null)" 2>/dev/null && { echo "FAIL: node 2 still runs"; FAIL=1; }

# space freed: it starts, catches up and serves what it missed
rm -f "$MNT/filler"
check "start-node once space is freed" ctl cluster start-node --dir "$DIR" 2
kill -0 "$(cat "$DIR/pids/node-2.pid")" 2>/dev/null || { echo "FAIL: node 2 not running"; FAIL=1; }
[ "$(ctl get missed-40 | wc -c)" = 40001 ] || { echo "FAIL: read after the restart"; FAIL=1; }
ctl status | grep -Eq "^2 +up " || { echo "FAIL: node 2 not up: $(ctl status)"; FAIL=1; }

[ "$FAIL" = 0 ] && echo "PASS cluster_start_full_disk"
exit "$FAIL"
