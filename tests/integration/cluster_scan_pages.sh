#!/usr/bin/env bash
# cluster_scan_pages.sh - a scan over values of 1 MB comes back in pages of at most
# SHOAL_SCAN_MAX_BYTES (16 MiB) with `more`, and paging on from the last key shown reads
# every key once, in order. Before, 80 MB of values made the merged reply bigger than a
# frame may be (64 MiB): the client dropped it and timed out, and a shard's part past that
# made the node's answer too big for the broker, which retried it until the deadline while
# the nodes' memory grew to gigabytes and their groups lost their leaders.
source "$(dirname "$0")/cluster_lib.sh"
if ldd "$BUILD/actors/shoald" 2>/dev/null | grep -q libasan; then
    echo "cluster_scan_pages: skipped under ASan (1 MB writes cost it ~1 s each)"
    exit 77
fi

cl_up 3 4 3
head -c 1000000 /dev/zero | tr '\0' v >"$DIR/value"
N=80
for i in $(seq -w 1 $N); do
    ctl --timeout 30000 put "page/$i" --value-file "$DIR/value" ||
        { echo "FAIL: put page/$i"; FAIL=1; break; }
done
# pages: each at most 16 MiB of values, in key order, ending with more=false; every key once
from=""
: >"$DIR/seen"
for page in $(seq 1 30); do
    args=(--json scan --prefix page/ --limit $N)
    [ -n "$from" ] && args+=(--from "$from")
    ctl --timeout 30000 "${args[@]}" >"$DIR/page.json" || { echo "FAIL: scan page $page (exit $?)"; FAIL=1; break; }
    out=$(python3 - "$DIR/page.json" "$from" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
keys = [kv["key"] for kv in d["kvs"]]
assert keys == sorted(keys), keys
assert sum(len(kv["value"]) for kv in d["kvs"]) <= 16 << 20, len(keys)
assert all(len(kv["value"]) == 1000000 for kv in d["kvs"])
if sys.argv[2]:
    assert keys and keys[0] == sys.argv[2], (keys[:1], sys.argv[2])  # --from is inclusive
    keys = keys[1:]
print(("more " if d["more"] else "done ") + " ".join(keys))
PY
) || { echo "FAIL: scan page $page: $(head -c 300 "$DIR/page.json")"; FAIL=1; break; }
    echo "${out#* }" | tr ' ' '\n' | grep . >>"$DIR/seen"
    [ "${out%% *}" = done ] && break
    from=$(tail -n 1 "$DIR/seen")
done
echo "scan of $N values of 1 MB: $page pages"
[ "$page" -gt 1 ] || { echo "FAIL: one page held $N MB of values"; FAIL=1; }
[ "$(sort "$DIR/seen" | uniq | wc -l)" = $N ] && [ "$(wc -l <"$DIR/seen")" = $N ] &&
    sort -c "$DIR/seen" || { echo "FAIL: pages gave $(wc -l <"$DIR/seen") keys, $(sort -u "$DIR/seen" | wc -l) distinct"; FAIL=1; }
[ "$FAIL" = 0 ] && echo "PASS: cluster_scan_pages"
exit $FAIL
