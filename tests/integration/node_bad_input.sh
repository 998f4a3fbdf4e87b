#!/usr/bin/env bash
# node_bad_input.sh - shoald refuses bad input with one clear line and never serves from a
# damaged log: a bad config exits 2 naming the key; a record corrupted in the middle of the
# Raft log makes the node refuse to start (exit 1) naming the segment file and offset; a
# torn tail (the last record cut short) is cut off and the node serves; a DATA/shardmap
# that does not decode makes it refuse to start naming the file.
source "$(dirname "$0")/node_lib.sh"
cluster_init 3 1
# 1. bad config values
sed 's/tick_ms = 10/tick_ms = ten/' "$DIR/node-0.cfg" >"$DIR/bad.cfg"
out=$("$SHOALD" --config "$DIR/bad.cfg" 2>&1); rc=$?
[ $rc = 2 ] || fail "bad config: exit $rc, expected 2"
echo "$out" | grep -q "raft/tick_ms" || fail "bad config: message does not name the key: $out"
out=$("$SHOALD" --config "$DIR/missing.cfg" 2>&1); [ $? = 2 ] || fail "missing config file: not exit 2"
out=$("$SHOALD" --bogus 2>&1); [ $? = 2 ] || fail "bad argument: not exit 2"
out=$("$SHOALD" --config 2>&1); [ $? = 2 ] && echo "$out" | grep -q -- "--config needs a FILE" ||
    fail "--config without a file: $out"
# 2. write something, stop node 2 cleanly
for i in 0 1 2; do node_start $i; done
client wait-leaders 0 || fail "no leader"
client load 0 x 0 50 >"$DIR/acks" || fail "load"
sleep 0.5
node_stop 2 || fail "stop 2"
seg=$(ls "$DIR/node-2/raftlog/"*.seg | head -1)
size=$(stat -c %s "$seg")
[ "$size" -gt 400 ] || fail "segment too small to corrupt ($size bytes)"
cp "$seg" "$DIR/seg.orig"
# 3. torn tail: cut the last record short -> starts, warns, serves. The segment ends in
# zeros written ahead of the records; its last non-zero byte is in the last record.
end=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(len(d.rstrip(b"\0")))' "$seg")
truncate -s $((end - 1)) "$seg"
node_start 2
sleep 1
kill -0 "${PIDS[2]}" 2>/dev/null || fail "node refused a log with a torn tail"
grep -q "torn tail" "$DIR/node-2.log" || fail "torn tail not reported"
node_stop 2 || fail "stop 2 after torn tail"
# 4. corrupt middle: flip a byte in the first record's body -> refuses to start
cp "$DIR/seg.orig" "$seg"
printf '\xff' | dd of="$seg" bs=1 seek=20 count=1 conv=notrunc 2>/dev/null
"$SHOALD" --config "$DIR/node-2.cfg" 2>"$DIR/corrupt.log"; rc=$?
[ $rc = 1 ] || fail "corrupt log: exit $rc, expected 1"
grep -q "$(basename "$seg").*offset" "$DIR/corrupt.log" || fail "corrupt log: no file and offset in: $(cat "$DIR/corrupt.log")"
# 5. a shard map file that does not decode -> refuses to start, naming the file (it would
#    otherwise host replicas by a placement it cannot vouch for)
cp "$DIR/seg.orig" "$seg"
printf 'not a shard map' >"$DIR/node-2/shardmap"
"$SHOALD" --config "$DIR/node-2.cfg" 2>"$DIR/badmap.log"; rc=$?
[ $rc = 1 ] || fail "corrupt shard map: exit $rc, expected 1"
grep -q "node-2/shardmap: not a valid shard map" "$DIR/badmap.log" ||
    fail "corrupt shard map: no file named in: $(cat "$DIR/badmap.log")"
# the cluster still serves with the other two
client check 0 x "$DIR/acks" || fail "writes lost"
echo "PASS node_bad_input"
