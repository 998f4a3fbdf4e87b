#!/usr/bin/env python3
"""linearizable_check.py - linearizability checker for Shoal histories (per-key registers).

Input: the JSON-lines history written by tests/integration/cluster_linearizable.c, one
operation per line (a first {"meta": ...} line is optional):

    {"p": 3, "f": "get"|"put"|"del"|"cas"|"batch", "k": KEY, "inv": NS, "ret": NS,
     "out": "ok"|"notfound"|"casfail"|"ambiguous"|"error",
     "v": NEW (put, cas, batch), "exp": EXPECTED or null (cas; null = expect absent),
     "got": VALUE or null (get ok, failed cas: the value the node reported),
     "k2": KEY2, "v2": NEW2 (batch: a second key written by the same operation)}

Each key is checked independently as a register (None = absent) whose operations are:
  get ok          observes state == got (null: absent)
  get notfound    observes state == None
  put ok          state := v
  del ok/notfound state := None (a blind write: NOT_FOUND is not taken as an observation)
  cas ok          requires state == exp, then state := v
  cas casfail     observes state == got (and got != exp)
  batch ok        writes v to k and v2 to k2 (one write in each key's history)
An ambiguous (or error) write may take effect at any time after its invocation, or never:
it never has to be linearized and has no completion time (+infinity). Ambiguous reads are
dropped. An ambiguous write whose value nobody ever observed is dropped too (sound: every
observation compares the exact state, so such a write can always be taken out of a
linearization); an ambiguous delete is kept only if an "absent" is observed after it began.

The search is Wing & Gong's with Lowe's memoization, as in Porcupine: walk the list of
call/return events, linearize a call whose operation is legal in the current state, cache
(set of linearized ops, state), backtrack when the next event is the return of an
operation not yet linearized. Success once every required operation is linearized.

Exit 0: every key linearizable; 1: a violation (printed with the operations around the
point where every linearization got stuck); 2: bad input; 3: the search gave up (budget).

    linearizable_check.py HISTORY [--budget STATES] [--quiet] [--weak-casfail]
    linearizable_check.py --self-test
"""
import json
import sys
from collections import defaultdict

INF = float("inf")
# --weak-casfail: a failed cas that reports the key absent is taken only as "the compare
# failed" (state != expected), not as a read of "absent". Shoal answers a retried cas whose
# first attempt already applied from the client's session without the current value (so
# found = false), which a strict check reports; this lets the search look past that.
WEAK_CASFAIL = False


class Op:
    __slots__ = ("idx", "p", "f", "key", "inv", "ret", "out", "v", "exp", "got", "optional",
                 "src", "line")

    def __init__(self, **kw):
        for s in self.__slots__:
            setattr(self, s, kw.get(s))

    def describe(self):
        t = lambda x: "inf" if x == INF else "%.6f" % (x / 1e9)
        if self.f == "get":
            what = "get -> %s" % (repr(self.got) if self.out == "ok" else "not found")
        elif self.f == "put":
            what = "put %r" % self.v
        elif self.f == "del":
            what = "del"
        elif self.f == "cas":
            what = "cas %s -> %r" % ("absent" if self.exp is None else repr(self.exp), self.v)
            if self.out == "casfail":
                what += " FAILED, current %s" % ("absent" if self.got is None else repr(self.got))
        else:
            what = "batch put %r" % self.v
        return "client %2s [%s, %s] %-9s %s" % (self.p, t(self.inv), t(self.ret), self.out, what)


def parse(lines):
    """Operations per key from history lines; raises ValueError on bad input."""
    per_key = defaultdict(list)
    meta = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError("line %d: %s" % (n, e))
        if "meta" in d:
            meta = d["meta"]
            continue
        f, out = d["f"], d["out"]
        amb = out in ("ambiguous", "error")
        inv = d["inv"]
        ret = INF if amb else d["ret"]
        if f == "get":
            if amb:
                continue  # a read that did not happen
            got = d.get("got") if out == "ok" else None
            per_key[d["k"]].append(Op(p=d["p"], f="get", key=d["k"], inv=inv, ret=ret, out=out,
                                      got=got, line=n))
        elif f in ("put", "del"):
            per_key[d["k"]].append(Op(p=d["p"], f=f, key=d["k"], inv=inv, ret=ret, out=out,
                                      v=d.get("v"), optional=amb, line=n))
        elif f == "cas":
            got = d.get("got") if out == "casfail" else None
            if out == "casfail" and got is None and WEAK_CASFAIL:
                out = "casfail?"  # only "the compare failed": state != exp
            per_key[d["k"]].append(Op(p=d["p"], f="cas", key=d["k"], inv=inv, ret=ret, out=out,
                                      v=d["v"], exp=d.get("exp"), got=got, optional=amb, line=n))
        elif f == "batch":
            if out == "casfail" or out == "notfound":
                continue
            for k, v in ((d["k"], d["v"]), (d["k2"], d["v2"])):
                per_key[k].append(Op(p=d["p"], f="batch", key=k, inv=inv, ret=ret, out=out, v=v,
                                     optional=amb, line=n))
        else:
            raise ValueError("line %d: unknown op %r" % (n, f))
    return meta, per_key


def prune(ops):
    """Drops ambiguous writes that can never matter (see the module's doc)."""
    observed = set()
    absent_seen = []  # return times of observations of "absent"
    for o in ops:
        if o.f == "get" and o.out in ("ok", "notfound"):
            if o.got is None:
                absent_seen.append(o.ret)
            else:
                observed.add(o.got)
        elif o.f == "cas":
            if o.out == "casfail":
                if o.got is None:
                    absent_seen.append(o.ret)
                else:
                    observed.add(o.got)
            if o.exp is None:
                absent_seen.append(o.ret)  # cas ok (or maybe ok) expecting absent
            else:
                observed.add(o.exp)
    last_absent = max(absent_seen) if absent_seen else -INF
    # a weak failed cas (state != exp) is not an exact observation: keep every ambiguous
    # write that might precede one
    last_weak = max([o.ret for o in ops if o.out == "casfail?"], default=-INF)
    kept = []
    for o in ops:
        if o.optional and o.inv < last_weak:
            pass
        elif o.optional:
            if o.f == "del":
                if o.inv >= last_absent:
                    continue
            elif o.v not in observed:
                continue
        kept.append(o)
    return kept


def step(state, o):
    """(legal, new state) of applying o to state."""
    f = o.f
    if f == "get":
        return state == o.got, state
    if f in ("put", "batch"):
        return True, o.v
    if f == "del":
        return True, None
    # cas
    if o.out == "casfail":
        return state == o.got and o.got != o.exp, state
    if o.out == "casfail?":
        return state != o.exp, state
    return state == o.exp, o.v


class Entry:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op, self.is_call = op, is_call
        self.match = self.prev = self.next = None


def check_key(ops, budget):
    """Returns ("ok", n) | ("fail", info) | ("unknown", n)."""
    ops = prune(ops)
    for i, o in enumerate(ops):
        o.idx = i
    events = []
    for o in ops:
        events.append((o.inv, 0, o.idx, o))
        if o.ret != INF:
            events.append((o.ret, 1, o.idx, o))
    # at equal times a call comes before a return: the two count as concurrent (lenient)
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = Entry(None, False)
    prev = head
    calls = {}
    for t, kind, idx, o in events:
        e = Entry(o, kind == 0)
        if kind == 0:
            calls[idx] = e
        else:
            calls[idx].match = e
            e.match = calls[idx]
        prev.next = e
        e.prev = prev
        prev = e
    required = sum(1 for o in ops if not o.optional)

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        m = e.match
        if m:
            m.prev.next = m.next
            if m.next:
                m.next.prev = m.prev

    def unlift(e):
        m = e.match
        if m:
            m.prev.next = m
            if m.next:
                m.next.prev = m
        e.prev.next = e
        if e.next:
            e.next.prev = e

    state = None
    linearized = 0
    done_required = 0
    stack = []
    cache = set()
    best = (-1, None, set())  # (required ops linearized, blocking op, states there)
    entry = head.next
    explored = 0
    while done_required < required:
        if entry is None:
            # only optional calls left after the last return: cannot happen while a
            # required op is pending (its return is in the list)
            raise AssertionError("walked off the list with required ops pending")
        if entry.is_call:
            o = entry.op
            ok, new_state = step(state, o)
            if ok:
                new_lin = linearized | (1 << o.idx)
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    explored += 1
                    if explored > budget:
                        return "unknown", explored
                    stack.append((entry, state, linearized, done_required))
                    state, linearized = new_state, new_lin
                    if not o.optional:
                        done_required += 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # the return of an op not linearized yet: this path is stuck
            if done_required > best[0]:
                best = (done_required, entry.op, {state})
            elif done_required == best[0] and entry.op is best[1]:
                best[2].add(state)
            if not stack:
                return "fail", {"blocked": best[1], "states": best[2], "depth": best[0],
                                "ops": ops}
            entry, state, linearized, done_required = stack.pop()
            unlift(entry)
            entry = entry.next
    return "ok", len(ops)


def report(key, info, out):
    b = info["blocked"]
    ops = info["ops"]
    states = sorted(("absent" if s is None else repr(s)) for s in info["states"])
    print("NOT LINEARIZABLE: key %s" % key, file=out)
    print("  every linearization gets stuck at the completion of:\n    %s   (history line %d)"
          % (b.describe(), b.line), file=out)
    print("  after %d of the key's required operations; the register could then hold: %s"
          % (info["depth"], ", ".join(states[:8]) + (" ..." if len(states) > 8 else "")),
          file=out)
    # the operations concurrent with the blocked one, and the writes just before
    lo = min([o.inv for o in ops if o.ret >= b.inv and o.inv <= b.ret] + [b.inv])
    before = [o for o in ops if o.ret < lo and o.f != "get" and not o.optional][-4:]
    window = [o for o in ops if (o.ret >= lo and o.inv <= b.ret)]
    print("  the last completed writes before, then every operation overlapping it "
          "(times in s since the start):", file=out)
    for o in sorted(before + window, key=lambda o: (o.inv, o.ret)):
        mark = "  <== " if o is b else ""
        print("    %s%s" % (o.describe(), mark), file=out)


def check_history(lines, budget=2_000_000, out=sys.stdout, quiet=False):
    meta, per_key = parse(lines)
    bad = unknown = 0
    total = 0
    for key in sorted(per_key):
        ops = per_key[key]
        total += len(ops)
        res, info = check_key(ops, budget)
        if res == "ok":
            if not quiet:
                print("key %s: linearizable (%d operations, %d checked)" % (key, len(ops), info),
                      file=out)
        elif res == "unknown":
            unknown += 1
            print("key %s: UNKNOWN, search budget of %d states exhausted (%d operations)"
                  % (key, budget, len(ops)), file=out)
        else:
            bad += 1
            report(key, info, out)
    if meta and not quiet:
        print("history: %s" % json.dumps(meta), file=out)
    print("%s: %d keys, %d operations, %d not linearizable, %d unknown"
          % ("FAIL" if bad else "UNKNOWN" if unknown else "OK", len(per_key), total, bad,
             unknown), file=out)
    return 1 if bad else 3 if unknown else 0


# ---- self-test --------------------------------------------------------------------------

def _h(*ops):
    """History lines from tuples (p, f, inv, ret, out, extra dict)."""
    lines = []
    for p, f, inv, ret, out, extra in ops:
        d = {"p": p, "f": f, "k": extra.pop("k", "x"), "inv": inv, "ret": ret, "out": out}
        d.update(extra)
        lines.append(json.dumps(d))
    return lines


def self_test():
    import io
    cases = [
        # (name, lines, expected exit)
        ("sequential put/get", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "get", 20, 30, "ok", {"got": "a"})), 0),
        ("stale read after a completed overwrite", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (0, "put", 20, 30, "ok", {"v": "b"}),
            (1, "get", 40, 50, "ok", {"got": "a"})), 1),
        ("read of absent after a completed put", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "get", 20, 30, "notfound", {})), 1),
        ("overlapping reads may see new then old", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (0, "put", 20, 60, "ok", {"v": "b"}),
            (1, "get", 25, 35, "ok", {"got": "b"}),
            (2, "get", 30, 70, "ok", {"got": "a"})), 0),  # get 2 before the put, get 1 after
        ("a read after a read that saw the new value sees the old one", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (0, "put", 20, 60, "ok", {"v": "b"}),
            (1, "get", 25, 35, "ok", {"got": "b"}),
            (2, "get", 40, 70, "ok", {"got": "a"})), 1),  # b was read before it began
        ("concurrent reads, legal order", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (0, "put", 20, 60, "ok", {"v": "b"}),
            (1, "get", 25, 35, "ok", {"got": "a"}),
            (2, "get", 30, 70, "ok", {"got": "b"})), 0),
        ("two cas from the same value both succeed (lost update)", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "cas", 20, 40, "ok", {"exp": "a", "v": "b"}),
            (2, "cas", 21, 41, "ok", {"exp": "a", "v": "c"})), 1),
        ("concurrent cas, one fails seeing the other's value", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "cas", 20, 40, "ok", {"exp": "a", "v": "b"}),
            (2, "cas", 21, 41, "casfail", {"exp": "a", "v": "c", "got": "b"}),
            (0, "get", 50, 60, "ok", {"got": "b"})), 0),
        ("ambiguous put observed long after it was sent", _h(
            (0, "put", 0, 10, "ambiguous", {"v": "a"}),
            (1, "get", 20, 30, "notfound", {}),
            (1, "get", 1000, 1010, "ok", {"got": "a"})), 0),
        ("ambiguous put seen, then unseen (applied twice?)", _h(
            (0, "put", 0, 10, "ambiguous", {"v": "a"}),
            (1, "get", 20, 30, "ok", {"got": "a"}),
            (1, "del", 40, 50, "ok", {}),
            (1, "get", 60, 70, "ok", {"got": "a"})), 1),
        ("value nobody wrote", _h(
            (1, "get", 20, 30, "ok", {"got": "zz"}),), 1),
        ("ambiguous delete explains a later absent", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "del", 20, 30, "ambiguous", {}),
            (2, "get", 40, 50, "ok", {"got": "a"}),
            (2, "get", 60, 70, "notfound", {})), 0),
        ("cas expecting absent on a present key", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "cas", 20, 30, "ok", {"exp": None, "v": "b"})), 1),
        ("cas expecting absent fails, reporting the key absent", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "cas", 20, 30, "casfail", {"exp": None, "v": "b", "got": None})), 1),
        ("failed cas reporting a stale current value", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (0, "put", 20, 30, "ok", {"v": "b"}),
            (1, "cas", 40, 50, "casfail", {"exp": "q", "v": "c", "got": "a"})), 1),
        ("batch writes both keys; a read of the second sees it", _h(
            (0, "batch", 0, 10, "ok", {"k": "x", "v": "a", "k2": "y", "v2": "b"}),
            (1, "get", 20, 30, "ok", {"k": "y", "got": "b"}),
            (1, "get", 20, 30, "ok", {"k": "x", "got": "a"})), 0),
        ("batch write lost on its second key", _h(
            (0, "batch", 0, 10, "ok", {"k": "x", "v": "a", "k2": "y", "v2": "b"}),
            (1, "get", 20, 30, "notfound", {"k": "y"})), 1),
        ("the lease-read anomaly: old leader answers after a new leader's write", _h(
            (0, "put", 0, 10, "ok", {"v": "a"}),
            (1, "get", 15, 3000, "ok", {"got": "a"}),    # paused leader, slow answer: fine
            (2, "put", 1000, 1100, "ok", {"v": "b"}),
            (3, "get", 1200, 2900, "ok", {"got": "a"})),  # began after b completed: stale
         1),
    ]
    # a bigger legal history: many clients, sequential truth with random overlaps
    import random
    rng = random.Random(7)
    lines, t, cur, n = [], 0, None, 0
    for i in range(3000):
        t += rng.randint(5, 20)
        kind = rng.choice(["put", "get", "get", "cas", "del"])
        inv = t - rng.randint(0, 60)
        ret = t + rng.randint(0, 60)  # the op takes effect at t, inside [inv, ret]
        p = i % 16
        if kind == "put":
            n += 1
            cur = "v%d" % n
            lines += _h((p, "put", inv, ret, "ok", {"v": cur}))
        elif kind == "get":
            lines += _h((p, "get", inv, ret, "ok" if cur else "notfound",
                         {"got": cur} if cur else {}))
        elif kind == "del":
            cur = None
            lines += _h((p, "del", inv, ret, "ok", {}))
        else:
            n += 1
            if rng.random() < 0.5:
                lines += _h((p, "cas", inv, ret, "ok", {"exp": cur, "v": "v%d" % n}))
                cur = "v%d" % n
            else:
                lines += _h((p, "cas", inv, ret, "casfail", {"exp": "nope", "v": "v%d" % n,
                                                             "got": cur}))
        if rng.random() < 0.02:  # an ambiguous write that never applied
            n += 1
            lines += _h((p, "put", inv, ret, "ambiguous", {"v": "v%d" % n}))
    # ops of one "client" overlap here; the checker does not rely on per-client order
    cases.append(("3000 random legal operations, overlapping", lines, 0))
    stale = list(lines)
    # a read, long after everything, of a value overwritten long before
    stale += _h((3, "get", t + 1000, t + 1010, "ok", {"got": "v1"}))
    cases.append(("the same plus one stale read at the end", stale, 1))
    ok = True
    import time
    for name, lines, want in cases:
        buf = io.StringIO()
        t0 = time.time()
        got = check_history(lines, out=buf, quiet=True)
        good = got == want
        ok &= good
        print("%s  %-62s expect %d got %d (%.2f s)" % ("pass" if good else "FAIL", name, want,
                                                      got, time.time() - t0))
        if not good or (want == 1 and "-v" in sys.argv):
            print("    " + buf.getvalue().replace("\n", "\n    "))
    print("self-test %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv):
    global WEAK_CASFAIL
    WEAK_CASFAIL = "--weak-casfail" in argv
    if "--self-test" in argv:
        return self_test()
    args = [a for a in argv[1:] if not a.startswith("--")]
    budget = 2_000_000
    if "--budget" in argv:
        budget = int(argv[argv.index("--budget") + 1])
        args = [a for a in args if a != str(budget)]
    if len(args) != 1:
        print(__doc__.split("\n\n")[-2].strip(), file=sys.stderr)
        return 2
    try:
        with open(args[0]) as f:
            lines = f.readlines()
        return check_history(lines, budget, quiet="--quiet" in argv)
    except (OSError, ValueError, KeyError) as e:
        print("linearizable_check: %s: %s" % (args[0], e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    sys.exit(main(sys.argv))
