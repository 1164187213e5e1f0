#!/usr/bin/python3
"""Checkers for a Hato Jepsen-style fault-injection campaign.

Usage:  jepsen/checker.py OUT [--lin-time-limit SECS] [--lin-max-configs N]
                               [--info-horizon SECS] [--quiet]

Reads the campaign directory OUT (history.jsonl, sink.jsonl, faults.jsonl,
summary.json), writes OUT/results.json, prints a human summary and exits 0 when
every check passed, 1 otherwise (including a linearizability verdict of
"unknown" and unreadable input), 2 on usage errors.

Checks
------
* delivery    -- every acknowledged send (type "ok") must reach the sink MX
                 (lost == 0).  Duplicates (a uid received more than once) are
                 reported, not failures.  Sink uids that were never acked are
                 classified: "indeterminate" (the send completed "info" or never
                 completed: allowed), "false_failure" (the client was told
                 "fail" yet it was delivered: violation) and "never_sent" (no
                 such uid was ever invoked: violation).
* recovered   -- summary.json must say "recovered": true.
* linearizability of the block list (add/remove/list against a set model),
  see "Linearizability algorithm" below.
* latency     -- p50/p95/p99/max of ok-op latencies per op kind (and per
                 kind+protocol); informational.

results.json schema (top level)
-------------------------------
  valid: bool, verdict: "PASS"|"FAIL"|"UNKNOWN", problems: [str], warnings: [str],
  input: {...record/bad-line counts...}, summary: {...summary.json...},
  faults: [...], delivery: {...}, recovered: {...}, linearizability: {...},
  latency: {f: {count, p50, p95, p99, max, mean}}, latency_by_proto: {"f/proto": {...}}
  (all times in seconds).

Linearizability algorithm
-------------------------
Model: state S = set of addresses; add(a): S |= {a}; remove(a): S -= {a}; both
always return ok; list returns exactly sorted(S).

Ops are paired invoke->completion per process.  Then:
  * "fail" ops are dropped (definitely not applied).
  * list ops whose completion is info/missing are dropped (an unknown read
    constrains nothing).
  * ok ops must be linearized inside [invoke, return].
  * add/remove with an info or missing completion ("indeterminate writes") may
    take effect at any instant after their invoke, or never.  The classic way
    (Knossos/Porcupine) is to give them return time = +infinity; they then stay
    pending forever and the search has to branch on "applied yet or not" at
    every step, which is exponential in the number of such ops: exactly what a
    partition campaign produces dozens of.  We avoid that with a reduction
    that is exact for this model:

      Lemma.  Writes are blind and only lists observe state.  In any valid
      linearization, an indeterminate write w(a) placed at point p can be
      moved to immediately before the first list L linearized after p
      (w may take effect arbitrarily late), or dropped if some other write
      on `a` lies between p and L (it is overwritten) or no list follows.
      Neither change alters any list's result.

    So an indeterminate write is a *token* "(a, add)" or "(a, remove)",
    available from its invoke on, that can be spent at most once, only right
    before a list.  Spending is forced, not a choice: when linearizing
    list(V) from state S, every address in V-S needs one (a, add) token and
    every address in S-V one (a, remove) token; if any is missing the list
    cannot be linearized there; spending a token when not needed never helps.
    Tokens of the same (address, kind) are interchangeable once invoked.

  * The search itself is "just-in-time" linearization (Lowe; Knossos'
    "linear" algorithm) -- a breadth-first sweep over the events in time
    order carrying the *frontier*: every configuration
        (S, set of in-flight ok ops already linearized, tokens spent)
    reachable by a valid linearization of the prefix.  At an ok op's return
    we extend each configuration by linearizing in-flight ops (depth-first,
    all orders, deduplicated by a memo of configurations -- the same
    (linearized set, state) memoization WGL/Porcupine use) until that op is
    linearized; configurations in which it cannot be are dropped.  Ops
    linearized after it in the same batch can always be deferred to their
    own return, so this is complete.  A configuration is dropped if another
    with the same (S, linearized set) has spent componentwise fewer tokens
    (it can do everything the first can).  Spent-token counts common to
    every configuration are folded into the global pool, so vectors stay
    small.  Two more subsumptions keep the frontier small, both exact:
      - at the return of a write x on address a, a batch ending
        "last list, w1..wk, x" with some wi on another address is not kept:
        wi commutes with x and nothing observed it, so the configuration
        with wi still pending covers it;
      - an in-flight list already linearized whose value equals the current
        state is un-linearized (it can be re-linearized at no cost).

    Segmentation: the frontier *is* the "set of possible states carried
    across a cut".  At a quiescent cut (no ok op in flight) a configuration
    is just (S, spent tokens), so the history is effectively checked as
    independent segments chained through this set; pending indeterminate
    writes cross cuts as unspent tokens (they may still take effect later),
    which is what makes carrying them correct.  P-compositionality per
    address is NOT used: a list reads the whole set at one instant.

    Cost: per return event, (frontier size) x (subsets/orders of the ops in
    flight): exponential in the concurrency c, independent of history length
    and of the number of indeterminate writes.  Measured on generated
    histories of 3000 ops: c=4 well under 1 s, c=8 ~15 s, c=16 exceeds the
    budget.  A wall-clock and configuration budget turns the verdict into
    "unknown" (which is not valid) instead of running forever.

  * Optional assumption --info-horizon H: an indeterminate write takes effect
    within [invoke, invoke+H] or never (not the default: the default is the
    sound "any time later").  Implemented as an extra event at invoke+H where
    a configuration still holding that token (tokens of one key are spent
    oldest-first, optimal with a fixed H) either drops it or applies it,
    possibly after linearizing in-flight ops first.  Useful because with few
    addresses, once an (a, add) and an (a, remove) token are pending, every
    later read of `a` is explainable and the check weakens.

  Verification: jepsen/test_checker.py compares the verdict with a brute-force
  search (all orders of ok ops plus any subset of indeterminate writes, no
  token reduction) on thousands of random small histories, with and without
  a horizon.

  Ties: op A precedes op B in real time iff A.return < B.invoke strictly;
  at equal timestamps invokes are processed before returns (permissive).

On a violation we report the op whose return could not be linearized, the
ops in flight with it, the candidate states right before (with spare
tokens), and a small window: the ops overlapping [invoke of the last ok list
completed before the failing op (which pinned the state), failing return],
plus indeterminate writes on the addresses involved.
"""

import json
import math
import os
import sys
import time
from collections import Counter, defaultdict

ADD, REMOVE = 0, 1
WRITE_KIND = {"add": ADD, "remove": REMOVE}


# --------------------------------------------------------------------------- input

def read_jsonl(path):
    """Return (records, bad_lines).  Missing file -> ([], None).

    Lines that do not parse as a JSON object (typically a truncated last line
    when the writer was killed) are skipped and reported as (lineno, snippet).
    """
    if not os.path.exists(path):
        return [], None
    records, bad = [], []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                bad.append((lineno, line[:120]))
                continue
            if not isinstance(rec, dict):
                bad.append((lineno, line[:120]))
                continue
            records.append(rec)
    return records, bad


def read_json(path):
    try:
        with open(path) as fh:
            v = json.load(fh)
        return v if isinstance(v, dict) else None
    except (OSError, ValueError):
        return None


def _num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def pair_ops(records):
    """Pair invoke/completion records per process.

    Returns (ops, anomalies).  Each op is a dict: id, process, f, value (from
    the invoke), result (completion value), type ("ok"|"fail"|"info"|
    "missing"), inv, ret (None when missing), via, proto, error.
    """
    ops, anomalies, open_ = [], [], {}
    for idx, r in enumerate(records):
        typ = r.get("type")
        t = _num(r.get("t"))
        p = r.get("process")
        if t is None or typ not in ("invoke", "ok", "fail", "info"):
            anomalies.append("record %d: bad t/type: %s" % (idx, json.dumps(r)[:100]))
            continue
        try:
            hash(p)
        except TypeError:
            anomalies.append("record %d: unhashable process" % idx)
            continue
        if typ == "invoke":
            if p in open_:
                prev = open_.pop(p)
                anomalies.append("process %r invoked op %d while op %d was in flight"
                                 " (treating the earlier one as never completed)"
                                 % (p, len(ops), prev["id"]))
            op = {"id": len(ops), "process": p, "f": r.get("f"), "value": r.get("value"),
                  "result": None, "type": "missing", "inv": t, "ret": None,
                  "via": r.get("via"), "proto": r.get("proto"), "error": None}
            ops.append(op)
            open_[p] = op
        else:
            op = open_.get(p)
            if op is None or (r.get("f") is not None and r.get("f") != op["f"]):
                anomalies.append("record %d: completion without matching invoke: %s"
                                 % (idx, json.dumps(r)[:100]))
                continue
            del open_[p]
            if op["f"] in ("send", "add", "remove") and r.get("value") is not None \
                    and op["value"] is not None and r.get("value") != op["value"]:
                anomalies.append("record %d: completion value %r differs from invoke value %r"
                                 " (process %r)" % (idx, r.get("value"), op["value"], p))
            op["type"] = typ
            op["ret"] = max(t, op["inv"])
            op["result"] = r.get("value")
            op["error"] = r.get("error")
            if r.get("via") is not None and op["via"] is None:
                op["via"] = r.get("via")
            if r.get("proto") is not None and op["proto"] is None:
                op["proto"] = r.get("proto")
    return ops, anomalies


def history_from_file(path):
    records, bad = read_jsonl(path)
    ops, anomalies = pair_ops(records)
    return ops, records, bad, anomalies


# --------------------------------------------------------------------------- delivery

def _uid(op):
    v = op["value"] if op["value"] is not None else op["result"]
    return None if v is None else str(v)


def check_delivery(ops, sink_records, list_limit=200):
    sends = [o for o in ops if o["f"] == "send"]
    status = {}          # uid -> "ok" | "indeterminate" | "fail"
    rank = {"fail": 0, "indeterminate": 1, "ok": 2}
    counts = Counter()
    for o in sends:
        counts["invoked"] += 1
        typ = o["type"]
        if typ == "ok":
            counts["acked"] += 1
            st = "ok"
        elif typ == "fail":
            counts["failed"] += 1
            st = "fail"
        else:
            counts["indeterminate"] += 1
            counts["info" if typ == "info" else "no_completion"] += 1
            st = "indeterminate"
        uid = _uid(o)
        if uid is None:
            continue
        if uid in status:
            counts["reused_uids"] += 1
        if uid not in status or rank[st] > rank[status[uid]]:
            status[uid] = st

    received = Counter()
    first_seen = {}
    bad_sink = 0
    for r in sink_records:
        uid = r.get("uid")
        if uid is None:
            bad_sink += 1
            continue
        uid = str(uid)
        received[uid] += 1
        t = _num(r.get("t"))
        if t is not None and (uid not in first_seen or t < first_seen[uid]):
            first_seen[uid] = t

    acked = {u for u, s in status.items() if s == "ok"}
    lost = sorted(acked - set(received))
    dups = {u: n for u, n in received.items() if n > 1}
    indeterminate, false_fail, never = [], [], []
    for u in received:
        s = status.get(u)
        if s == "ok":
            continue
        if s == "indeterminate":
            indeterminate.append(u)
        elif s == "fail":
            false_fail.append(u)
        else:
            never.append(u)
    indeterminate.sort(); false_fail.sort(); never.sort()
    valid = not lost and not false_fail and not never

    def cap(xs):
        return xs[:list_limit]

    return {
        "valid": valid,
        "sends_invoked": counts["invoked"],
        "sends_acked": counts["acked"],
        "sends_failed": counts["failed"],
        "sends_indeterminate": counts["indeterminate"],
        "sends_info": counts["info"],
        "sends_no_completion": counts["no_completion"],
        "reused_uids": counts["reused_uids"],
        "acked_uids": len(acked),
        "sink_records": sum(received.values()),
        "sink_unique_uids": len(received),
        "sink_records_without_uid": bad_sink,
        "delivered_acked": len(acked) - len(lost),
        "lost_count": len(lost),
        "lost": cap(lost),
        "duplicate_count": len(dups),
        "duplicate_extra_deliveries": sum(n - 1 for n in dups.values()),
        "duplicates": dict(sorted(dups.items())[:list_limit]),
        "unexpected_count": len(indeterminate) + len(false_fail) + len(never),
        "unexpected_indeterminate_count": len(indeterminate),
        "unexpected_indeterminate": cap(indeterminate),
        "false_failure_count": len(false_fail),
        "false_failures": cap(false_fail),
        "never_sent_count": len(never),
        "never_sent": cap(never),
    }


# --------------------------------------------------------------------------- latency

def percentile(sorted_xs, q):
    """Linear-interpolated percentile (q in [0,100]) of an ascending list."""
    if not sorted_xs:
        return None
    if len(sorted_xs) == 1:
        return sorted_xs[0]
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def latency_stats(xs):
    xs = sorted(xs)
    if not xs:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {"count": len(xs), "p50": percentile(xs, 50), "p95": percentile(xs, 95),
            "p99": percentile(xs, 99), "max": xs[-1], "mean": sum(xs) / len(xs)}


def check_latency(ops):
    by_f, by_fp = defaultdict(list), defaultdict(list)
    for o in ops:
        if o["type"] == "ok" and o["ret"] is not None:
            d = o["ret"] - o["inv"]
            by_f[str(o["f"])].append(d)
            by_fp["%s/%s" % (o["f"], o["proto"])].append(d)
    return ({k: latency_stats(v) for k, v in sorted(by_f.items())},
            {k: latency_stats(v) for k, v in sorted(by_fp.items())})


# --------------------------------------------------------------------------- linearizability

class _Budget(Exception):
    pass


def _describe(op):
    d = {"id": op["id"], "process": op["process"], "f": op["f"], "type": op["type"],
         "invoke": round(op["inv"], 6),
         "return": None if op["ret"] is None else round(op["ret"], 6)}
    if op["f"] == "list":
        d["value"] = op["result"]
    else:
        d["value"] = op["value"]
    if op.get("via") is not None:
        d["via"] = op["via"]
    if op.get("error"):
        d["error"] = op["error"]
    return d


def check_set_linearizability(ops, time_limit=60.0, max_configs=100000, window_limit=60,
                              info_horizon=None):
    """Check the add/remove/list ops of `ops` (as produced by pair_ops).

    info_horizon: None (default, sound) lets an indeterminate write take effect
    at any time after its invoke.  A number H is an *assumption* that it takes
    effect within [invoke, invoke + H] or never (e.g. Raft drops or commits an
    uncommitted entry once a new leader is established); it makes late reads on
    a small key set checkable but can report violations that are not real if H
    is too small.

    Returns a dict with "valid": True | False | "unknown" plus statistics and,
    when invalid, a "failure" explanation (see module docstring).
    """
    t_start = time.monotonic()
    deadline = t_start + time_limit
    addr_ix, addr_names = {}, []

    def aix(a):
        a = str(a)
        i = addr_ix.get(a)
        if i is None:
            i = addr_ix[a] = len(addr_names)
            addr_names.append(a)
        return i

    def names(mask):
        out, i = [], 0
        while mask:
            if mask & 1:
                out.append(addr_names[i])
            mask >>= 1
            i += 1
        return sorted(out)

    stats = Counter()
    events = []          # (t, phase, op_id, kind)   phase 0 = invoke/token, 1 = return
    opinfo = {}          # op id -> (kind, arg): kind "w" arg=(bit, ADD/REMOVE); "l" arg=mask
    malformed = []
    for o in ops:
        f = o["f"]
        if f not in ("add", "remove", "list"):
            continue
        stats["ops_" + f] += 1
        typ = o["type"]
        if typ == "fail":
            stats["dropped_fail"] += 1
            continue
        if f == "list":
            if typ != "ok":
                stats["dropped_indeterminate_list"] += 1
                continue
            val = o["result"]
            if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
                malformed.append(_describe(o))
                continue
            mask = 0
            for a in val:
                mask |= 1 << aix(a)
            if len(set(val)) != len(val):
                stats["lists_with_repeated_entries"] += 1
            opinfo[o["id"]] = ("l", mask)
            stats["ok_list"] += 1
            events.append((o["inv"], 0, o["id"], "call"))
            events.append((o["ret"], 1, o["id"], "ret"))
        else:
            if o["value"] is None:
                malformed.append(_describe(o))
                continue
            bit = 1 << aix(o["value"])
            opinfo[o["id"]] = ("w", (bit, WRITE_KIND[f]))
            if typ == "ok":
                stats["ok_" + f] += 1
                events.append((o["inv"], 0, o["id"], "call"))
                events.append((o["ret"], 1, o["id"], "ret"))
            else:
                stats["indeterminate_" + f] += 1
                events.append((o["inv"], 0, o["id"], "token"))
                if info_horizon is not None:
                    events.append((o["inv"] + info_horizon, 2, o["id"], "expire"))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    by_id = {o["id"]: o for o in ops}

    result = {
        "valid": None, "model": "set (add/remove blind writes, list = whole-set linearizable read)",
        "algorithm": "JIT linearization frontier + indeterminate writes as tokens",
        "ops": {k: stats[k] for k in sorted(stats)},
        "malformed_ops": malformed[:20], "malformed_count": len(malformed),
        "addresses": len(addr_names),
        "info_horizon": info_horizon,
    }
    if malformed:
        # a harness problem, not evidence against Hato: cannot decide
        result["valid"] = "unknown"
        result["unknown_reason"] = ("%d malformed add/remove/list op(s), e.g. an ok list whose "
                                    "value is not a list of strings (see malformed_ops)"
                                    % len(malformed))
        result["elapsed"] = time.monotonic() - t_start
        return result

    # Token pool (global): key = addr_index*2 + kind -> number invoked so far,
    # minus spends that every configuration has made (normalization).
    avail = defaultdict(int)
    created = defaultdict(int)   # key -> tokens invoked so far (index source)
    folded = defaultdict(int)    # key -> spends folded out of every configuration
    tok_index = {}               # info op id -> index among its key's tokens
    # frontier: (S, lin frozenset) -> list of spent-token vectors (sorted tuples)
    frontier = {(0, frozenset()): [()]}
    inflight = {}        # ok op id -> op
    max_frontier = 1
    steps = 0
    returns = 0
    quiescent_cuts = 0
    last_list_id = None

    def bits(mask):
        while mask:
            low = mask & -mask
            yield low.bit_length() - 1
            mask ^= low

    def apply(oid, S, spent):
        kind, arg = opinfo[oid]
        if kind == "w":
            bit, k = arg
            return (S | bit if k == ADD else S & ~bit), spent
        V = arg
        if S == V:
            return V, spent
        sp = dict(spent)
        # Elements the list shows but S lacks need an add token; those S has but the list
        # lacks need a remove token.
        for mask, k in ((V & ~S, ADD), (S & ~V, REMOVE)):
            for i in bits(mask):
                key = 2 * i + k
                n = sp.get(key, 0)
                if avail.get(key, 0) - n < 1:
                    return None
                sp[key] = n + 1
        return V, tuple(sorted(sp.items()))

    def size(fr):
        return sum(len(v) for v in fr.values())

    def settle(new):
        """Keep minimal spent vectors per (S, lin); fold spends common to every
        configuration into the global pool so the vectors stay short."""
        for k in list(new):
            new[k] = _minimal(new[k])
        allkeys = set()
        for sps in new.values():
            for sp in sps:
                allkeys.update(x for x, _ in sp)
        if not allkeys:
            return new
        common = {}
        for key in allkeys:
            m = None
            for sps in new.values():
                for sp in sps:
                    c = dict(sp).get(key, 0)
                    m = c if m is None else min(m, c)
                    if m == 0:
                        break
                if m == 0:
                    break
            if m:
                common[key] = m
        if not common:
            return new
        for key, m in common.items():
            avail[key] -= m
            folded[key] += m
        return {k: [tuple((x, c - common.get(x, 0)) for x, c in sp if c - common.get(x, 0) > 0)
                    for sp in sps] for k, sps in new.items()}

    try:
        for t, phase, oid, what in events:
            if time.monotonic() > deadline:
                raise _Budget("time limit %.1fs exceeded" % time_limit)
            if what == "token":
                bit, k = opinfo[oid][1]
                key = 2 * (bit.bit_length() - 1) + k
                tok_index[oid] = created[key]
                created[key] += 1
                avail[key] += 1
                continue
            if what == "expire":
                # Horizon reached for this indeterminate write w.  Tokens of one key
                # are spent oldest first (optimal: with a fixed horizon the oldest
                # expires first), so a configuration that has spent fewer than
                # index+1 tokens of this key still holds w's token.  w now either
                # never takes effect (advance the counter), or takes effect now --
                # possibly after some in-flight ops are linearized first (explored
                # depth-first as at a return), or its token is spent by one of
                # those in-flight lists before it expires.
                bit, k = opinfo[oid][1]
                key = 2 * (bit.bit_length() - 1) + k
                i = tok_index[oid]
                new = defaultdict(set)
                seen = set()
                stack = []
                for (S, lin), sps in frontier.items():
                    for sp in sps:
                        d = dict(sp)
                        c = folded[key] + d.get(key, 0)
                        if c > i:
                            new[(S, lin)].add(sp)
                            continue
                        d[key] = d.get(key, 0) + (i + 1 - c)
                        new[(S, lin)].add(tuple(sorted(d.items())))              # never
                        if (S, lin, sp, False, False) not in seen:
                            seen.add((S, lin, sp, False, False))
                            stack.append((S, lin, sp, False, False))
                while stack:
                    # dangle_any: a write was linearized after the last list of this
                    # batch; dangle_other: one on another address than w's.
                    S, lin, sp, dangle_any, dangle_other = stack.pop()
                    steps += 1
                    if steps & 4095 == 0 and time.monotonic() > deadline:
                        raise _Budget("time limit %.1fs exceeded" % time_limit)
                    d = dict(sp)
                    c = folded[key] + d.get(key, 0)
                    if c > i:                      # an in-flight list spent w's token
                        if not dangle_any:
                            new[(S, lin)].add(sp)
                        continue
                    if not dangle_other:           # w takes effect now
                        d[key] = d.get(key, 0) + (i + 1 - c)
                        new[((S | bit) if k == ADD else (S & ~bit), lin)].add(
                            tuple(sorted(d.items())))
                    for yid in inflight:
                        if yid in lin:
                            continue
                        r = apply(yid, S, sp)
                        if r is None:
                            continue
                        S2, sp2 = r
                        ykind, yarg = opinfo[yid]
                        if ykind == "l":
                            st = (S2, lin | {yid}, sp2, False, False)
                        else:
                            st = (S2, lin | {yid}, sp2, True, dangle_other or yarg[0] != bit)
                        if st not in seen:
                            seen.add(st)
                            stack.append(st)
                    if len(seen) > 20 * max_configs:
                        raise _Budget("search exceeded %d configurations" % (20 * max_configs))
                canon = defaultdict(set)
                for (S, lin), sps in new.items():
                    canon[(S, frozenset(y for y in lin if opinfo[y] != ("l", S)))].update(sps)
                frontier = settle(dict(canon))
                n = size(frontier)
                max_frontier = max(max_frontier, n)
                if n > max_configs:
                    raise _Budget("frontier exceeded %d configurations" % max_configs)
                continue
            if what == "call":
                inflight[oid] = by_id[oid]
                continue
            # ---- return of ok op `oid`: extend every configuration until it is linearized
            returns += 1
            seen = set()
            out = defaultdict(set)
            stack = []
            # When the returning op x is a write on address a, a sequence that
            # ends "... last list, w1..wk, x" with some wi on another address is
            # not emitted: wi commutes with x and nothing observes it before x,
            # so the configuration with wi still pending (reachable by emitting
            # without it) subsumes it.  `dangling` = such a wi was linearized
            # after the last list of this batch.
            xkind, xarg = opinfo[oid]
            xbit = xarg[0] if xkind == "w" else None
            for (S, lin), spents in frontier.items():
                for sp in spents:
                    key = (S, lin, sp, False)
                    if key not in seen:
                        seen.add(key)
                        stack.append(key)
            while stack:
                S, lin, sp, dangling = stack.pop()
                steps += 1
                if oid in lin:           # linearized earlier in some batch: done
                    out[(S, lin)].add(sp)
                    continue
                if steps & 4095 == 0 and time.monotonic() > deadline:
                    raise _Budget("time limit %.1fs exceeded" % time_limit)
                for yid in inflight:
                    if yid in lin:
                        continue
                    ykind, yarg = opinfo[yid]
                    if ykind == "w":
                        S2 = S | yarg[0] if yarg[1] == ADD else S & ~yarg[0]
                        sp2 = sp
                    elif yarg == S:
                        S2, sp2 = S, sp
                    else:
                        r = apply(yid, S, sp)
                        if r is None:
                            continue
                        S2, sp2 = r
                    if yid == oid:
                        if not dangling:
                            out[(S2, lin)].add(sp2)
                    else:
                        if ykind == "l":
                            d2 = False
                        else:
                            d2 = dangling or (xbit is not None and yarg[0] != xbit)
                        key = (S2, lin | {yid}, sp2, d2)
                        if key not in seen:
                            seen.add(key)
                            stack.append(key)
                if len(seen) > 20 * max_configs:
                    raise _Budget("search exceeded %d configurations" % (20 * max_configs))
            if not out:
                result["valid"] = False
                result["failure"] = _explain_failure(
                    by_id[oid], inflight, frontier, avail, opinfo, by_id, ops,
                    last_list_id, names, bits, window_limit)
                break
            del inflight[oid]
            if opinfo[oid][0] == "l":
                last_list_id = oid
            # Drop the finished op from `lin`.  Canonicalize: an in-flight list
            # already linearized whose value equals the current state is "un-
            # linearized" -- removing a list from a valid sequence keeps it valid
            # (lists do not change state; tokens spent before it may be spent at
            # the same place anyway), and it can be re-linearized at no cost, so
            # (S, lin - {y}) subsumes (S, lin).  Then keep minimal spent vectors.
            new = {}
            for (S, lin), sps in out.items():
                lin2 = frozenset(y for y in lin if y != oid and opinfo[y] != ("l", S))
                cur = new.setdefault((S, lin2), set())
                cur.update(sps)
            new = settle(new)
            frontier = new
            n = size(frontier)
            max_frontier = max(max_frontier, n)
            if n > max_configs:
                raise _Budget("frontier exceeded %d configurations" % max_configs)
            if not inflight:
                quiescent_cuts += 1
        else:
            result["valid"] = True
            states = sorted({S for (S, _lin) in frontier})
            result["final_possible_states"] = [names(S) for S in states[:10]]
            result["final_possible_state_count"] = len(states)
    except _Budget as e:
        result["valid"] = "unknown"
        result["unknown_reason"] = str(e)
    result.update({"elapsed": round(time.monotonic() - t_start, 4), "search_steps": steps,
                   "return_events": returns, "quiescent_cuts": quiescent_cuts,
                   "max_frontier": max_frontier})
    return result


def _minimal(vectors):
    """Keep spent-token vectors not dominated by (>=) another one."""
    if len(vectors) == 1:
        return list(vectors)
    vs = sorted(set(vectors), key=lambda v: (sum(c for _, c in v), v))
    keep = []
    for v in vs:
        dv = dict(v)
        dominated = False
        for w in keep:
            if all(dv.get(x, 0) >= c for x, c in w):
                dominated = True
                break
        if not dominated:
            keep.append(v)
    return keep


def _explain_failure(op, inflight, frontier, avail, opinfo, by_id, ops, last_list_id,
                     names, bits, window_limit):
    kind, arg = opinfo[op["id"]]
    states = []
    relevant = 0
    for (S, lin), sps in sorted(frontier.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        for sp in sps:
            if len(states) < 8:
                spare = {}
                for key, n in sorted(avail.items()):
                    left = n - dict(sp).get(key, 0)
                    if left > 0:
                        spare["%s %s" % ("add" if key % 2 == ADD else "remove",
                                         names(1 << (key // 2))[0])] = left
                states.append({"set": names(S), "already_linearized_in_flight": sorted(lin),
                               "unspent_indeterminate_writes": spare})
            if kind == "l":
                relevant |= S ^ arg
    if kind == "w":
        relevant = arg[0]
    elif not relevant:
        relevant = arg
    if kind == "l":
        reason = ("list returned %s, which no linearization of the concurrent ops can produce"
                  " from any possible prior state" % json.dumps(names(arg)))
    else:
        reason = "%s could not be linearized within its interval" % op["f"]
    t0 = min([o["inv"] for o in inflight.values()] + [op["inv"]])
    if last_list_id is not None:
        t0 = min(t0, by_id[last_list_id]["inv"])
    t1 = op["ret"]
    rel_names = set(names(relevant))
    window, pending = [], []
    for o in ops:
        if o["f"] not in ("add", "remove", "list") or o["type"] == "fail":
            continue
        if o["f"] == "list" and o["type"] != "ok":
            continue
        ret = o["ret"] if o["type"] == "ok" else math.inf
        if o["type"] == "ok" and o["inv"] <= t1 and ret >= t0:
            window.append(o)
        elif o["type"] != "ok" and o["inv"] <= t1 and str(o["value"]) in rel_names:
            pending.append(o)
    window.sort(key=lambda o: o["inv"])
    return {
        "reason": reason,
        "failed_op": _describe(op),
        "concurrent_ok_ops": [_describe(o) for o in sorted(inflight.values(), key=lambda o: o["inv"])
                              if o["id"] != op["id"]],
        "possible_states_before": states,
        "possible_state_count_before": sum(len(v) for v in frontier.values()),
        "addresses_involved": sorted(rel_names),
        "window_interval": [round(t0, 6), round(t1, 6)],
        "window": [_describe(o) for o in window[-window_limit:]],
        "window_truncated": max(0, len(window) - window_limit),
        "indeterminate_writes_on_involved_addresses": [_describe(o) for o in pending[-20:]],
    }


# --------------------------------------------------------------------------- driver

def run_checks(out, lin_time_limit=60.0, lin_max_configs=100000, info_horizon=None):
    problems, warnings = [], []
    hist_path = os.path.join(out, "history.jsonl")
    records, bad_hist = read_jsonl(hist_path)
    if bad_hist is None:
        problems.append("history.jsonl missing")
        bad_hist = []
    ops, anomalies = pair_ops(records)
    sink, bad_sink = read_jsonl(os.path.join(out, "sink.jsonl"))
    if bad_sink is None:
        warnings.append("sink.jsonl missing (treated as empty)")
        bad_sink = []
    faults, bad_faults = read_jsonl(os.path.join(out, "faults.jsonl"))
    bad_faults = bad_faults or []
    summary = read_json(os.path.join(out, "summary.json"))
    for name, bad in (("history.jsonl", bad_hist), ("sink.jsonl", bad_sink),
                      ("faults.jsonl", bad_faults)):
        if bad:
            warnings.append("%s: skipped %d unparseable line(s) (first: line %d)"
                            % (name, len(bad), bad[0][0]))
    if anomalies:
        warnings.append("history pairing anomalies: %d (first: %s)" % (len(anomalies), anomalies[0]))

    delivery = check_delivery(ops, sink)
    if delivery["lost_count"]:
        problems.append("%d acknowledged message(s) lost" % delivery["lost_count"])
    if delivery["false_failure_count"]:
        problems.append("%d message(s) delivered although the send failed definitely"
                        % delivery["false_failure_count"])
    if delivery["never_sent_count"]:
        problems.append("%d message(s) delivered that were never sent" % delivery["never_sent_count"])
    if delivery["sends_acked"] == 0:
        warnings.append("no send was acknowledged")

    if summary is None:
        recovered = {"valid": False, "recovered": None, "reason": "summary.json missing or unreadable"}
        problems.append("summary.json missing or unreadable")
    else:
        rec = summary.get("recovered")
        recovered = {"valid": rec is True, "recovered": rec,
                     "drain_seconds": summary.get("drain_seconds")}
        if rec is not True:
            problems.append("cluster did not recover (summary.recovered = %r)%s" % (
                rec, (": %s" % summary["recovery_reason"]) if summary.get("recovery_reason") else ""))
        # node health reported by the runner: surfaced, not failures by themselves
        lf = summary.get("log_findings")
        if isinstance(lf, dict) and lf:
            warnings.append("suspicious lines (panic/fatal) in node logs: %s" % ", ".join(
                "%s x%s" % (k, v.get("count") if isinstance(v, dict) else v) for k, v in sorted(lf.items())))
        elif isinstance(lf, list) and lf:
            warnings.append("suspicious lines (panic/fatal) in node logs: %d" % len(lf))
        ue = summary.get("unexpected_exits")
        if isinstance(ue, list) and ue:
            warnings.append("%d unexpected node exit(s): %s" % (len(ue), "; ".join(
                json.dumps(e, sort_keys=True) for e in ue[:5])))

    lin = check_set_linearizability(ops, time_limit=lin_time_limit, max_configs=lin_max_configs,
                                    info_horizon=info_horizon)
    if lin["valid"] is False:
        problems.append("block list history is NOT linearizable: %s"
                        % lin.get("failure", {}).get("reason"))
    elif lin["valid"] == "unknown":
        problems.append("block list linearizability UNKNOWN: %s" % lin.get("unknown_reason"))
    if sum(lin["ops"].get(k, 0) for k in ("ok_add", "ok_remove", "ok_list")) == 0:
        warnings.append("no completed block-list ops to check")

    lat, lat_proto = check_latency(ops)
    valid = delivery["valid"] and recovered["valid"] and lin["valid"] is True and \
        "history.jsonl missing" not in problems
    if valid:
        verdict = "PASS"
    elif lin["valid"] == "unknown" and delivery["valid"] and recovered["valid"] \
            and len(problems) == 1:
        verdict = "UNKNOWN"
    else:
        verdict = "FAIL"
    counts = Counter((o["f"], o["type"]) for o in ops)
    return {
        "out": os.path.abspath(out),
        "valid": valid,
        "verdict": verdict,
        "problems": problems,
        "warnings": warnings,
        "input": {"history_records": len(records), "ops": len(ops),
                  "ops_by_kind": {"%s/%s" % k: v for k, v in sorted(counts.items())},
                  "history_bad_lines": len(bad_hist), "sink_records": len(sink),
                  "sink_bad_lines": len(bad_sink), "faults": len(faults),
                  "faults_bad_lines": len(bad_faults), "pairing_anomalies": anomalies[:50],
                  "pairing_anomaly_count": len(anomalies)},
        "summary": summary,
        "faults": faults,
        "delivery": delivery,
        "recovered": recovered,
        "linearizability": lin,
        "latency": lat,
        "latency_by_proto": lat_proto,
    }


def _fmt(x, unit="s"):
    if x is None:
        return "-"
    if unit == "s":
        return "%.1fms" % (x * 1000) if x < 1 else "%.2fs" % x
    return str(x)


def human_summary(res):
    d, lin, rec = res["delivery"], res["linearizability"], res["recovered"]
    lines = ["Hato campaign %s: %s" % (res["out"], res["verdict"])]
    s = res.get("summary") or {}
    if s:
        lines.append("  seed=%s duration=%s nodes=%s nemeses=%s" % (
            s.get("seed"), s.get("duration"), s.get("nodes"), s.get("nemeses")))
    lines.append("  faults injected: %d" % len(res["faults"]))
    lines.append("  sends: invoked %d, acked %d, failed %d, indeterminate %d" % (
        d["sends_invoked"], d["sends_acked"], d["sends_failed"], d["sends_indeterminate"]))
    lines.append("  delivery: lost %d, duplicates %d (%d extra), unexpected %d "
                 "(indeterminate %d, false failure %d, never sent %d) -> %s" % (
                     d["lost_count"], d["duplicate_count"], d["duplicate_extra_deliveries"],
                     d["unexpected_count"], d["unexpected_indeterminate_count"],
                     d["false_failure_count"], d["never_sent_count"],
                     "ok" if d["valid"] else "VIOLATION"))
    if d["lost"]:
        lines.append("    lost uids: %s%s" % (", ".join(d["lost"][:10]),
                                               " ..." if d["lost_count"] > 10 else ""))
    if d["false_failures"]:
        lines.append("    false failures: %s" % ", ".join(d["false_failures"][:10]))
    if d["never_sent"]:
        lines.append("    never sent: %s" % ", ".join(d["never_sent"][:10]))
    lines.append("  recovered: %s (drain %s s)" % (rec.get("recovered"), rec.get("drain_seconds")))
    o = lin["ops"]
    lines.append("  block list: %s  [ok add %d, ok remove %d, ok list %d, indeterminate writes %d, "
                 "dropped fail %d; %.2fs, max frontier %d]" % (
                     {True: "linearizable", False: "NOT LINEARIZABLE"}.get(lin["valid"], "UNKNOWN"),
                     o.get("ok_add", 0), o.get("ok_remove", 0), o.get("ok_list", 0),
                     o.get("indeterminate_add", 0) + o.get("indeterminate_remove", 0),
                     o.get("dropped_fail", 0), lin.get("elapsed", 0), lin.get("max_frontier", 0)))
    if lin.get("info_horizon") is not None:
        lines.append("    ASSUMPTION: indeterminate writes take effect within %gs of invoke or never"
                     % lin["info_horizon"])
    if lin["valid"] is False and "failure" in lin:
        fl = lin["failure"]
        lines.append("    " + str(fl.get("reason")))
        if "failed_op" in fl:
            lines.append("    failed op: %s" % json.dumps(fl["failed_op"]))
            for st in fl.get("possible_states_before", [])[:3]:
                lines.append("    possible state before: %s" % json.dumps(st))
            lines.append("    window %s: %d ops (see results.json linearizability.failure)"
                         % (fl["window_interval"], len(fl["window"])))
    elif lin["valid"] == "unknown":
        lines.append("    " + str(lin.get("unknown_reason")))
    for f, st in res["latency"].items():
        lines.append("  latency %-6s n=%-5d p50 %s p95 %s p99 %s max %s" % (
            f, st["count"], _fmt(st["p50"]), _fmt(st["p95"]), _fmt(st["p99"]), _fmt(st["max"])))
    for w in res["warnings"]:
        lines.append("  warning: " + w)
    for p in res["problems"]:
        lines.append("  PROBLEM: " + p)
    return "\n".join(lines)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Check a Hato Jepsen campaign directory.")
    ap.add_argument("out", help="campaign directory")
    ap.add_argument("--lin-time-limit", type=float, default=120.0,
                    help="wall-clock budget for the linearizability search (s)")
    ap.add_argument("--lin-max-configs", type=int, default=200000,
                    help="frontier size budget for the linearizability search")
    ap.add_argument("--info-horizon", type=float, default=None, metavar="SECS",
                    help="ASSUME an indeterminate add/remove takes effect within SECS of its "
                         "invoke or never (default: any time later; sound)")
    ap.add_argument("--quiet", action="store_true", help="do not print the summary")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.out):
        print("checker: %s is not a directory" % a.out, file=sys.stderr)
        return 2
    res = run_checks(a.out, a.lin_time_limit, a.lin_max_configs, a.info_horizon)
    tmp = os.path.join(a.out, "results.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(res, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
    os.replace(tmp, os.path.join(a.out, "results.json"))
    if not a.quiet:
        print(human_summary(res))
    return 0 if res["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
