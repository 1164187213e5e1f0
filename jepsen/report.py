#!/usr/bin/python3
"""Render a Hato Jepsen campaign: OUT/report.md and OUT/timeline.png.

Usage:  jepsen/report.py OUT [--recheck]

Runs the checker (jepsen/checker.py) first when OUT/results.json is missing
(or with --recheck).  Exit status: 0 when the report was written (whatever
the verdict -- the checker's exit status is the verdict), 2 on usage errors,
1 on other errors.

timeline.png (matplotlib, Agg backend): top panel = send acks per second,
send fail/indeterminate completions per second and sink arrivals per second;
bottom panel = send ack latency p50/p99 per second (log scale) and block-list
op latency p99; every fault window is shaded and labelled with its kind.
matplotlib comes from Debian's python3-matplotlib; when the running
interpreter lacks it, the script re-executes itself with /usr/bin/python3.
"""

import json
import math
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def load_results(out, recheck=False):
    path = os.path.join(out, "results.json")
    if recheck or not os.path.exists(path):
        checker.main([out, "--quiet"])
    with open(path) as fh:
        return json.load(fh)


# --------------------------------------------------------------------------- markdown

def _s(x):
    if x is None:
        return "-"
    if isinstance(x, float):
        return "%.3f" % x
    if isinstance(x, (list, tuple)):
        return ", ".join(str(v) for v in x) if x else "-"
    return str(x).replace("|", "\\|")


def _t(x):
    x = checker._num(x)
    return "-" if x is None else "%.1f" % x


def _clip(x, n):
    return x if len(x) <= n else x[:n - 3] + "..."


def _nodes(v):
    if isinstance(v, list):
        return "%d (%s)" % (len(v), ", ".join(map(str, v)))
    return v


def _sorted_faults(faults):
    return sorted(faults, key=lambda f: checker._num(f.get("start")) or 0)


def _ms(x):
    if x is None:
        return "-"
    return "%.1f ms" % (x * 1000) if x < 1 else "%.2f s" % x


def _table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_s(c) if not isinstance(c, str) else c.replace("|", "\\|")
                                     for c in r) + " |")
    return "\n".join(out)


def _uids(xs, total, n=20):
    if not total:
        return "-"
    s = ", ".join("`%s`" % x for x in xs[:n])
    return s + (" ... (%d total)" % total if total > n else "")


def render_markdown(res, png_ok):
    s = res.get("summary") or {}
    d, lin, rec = res["delivery"], res["linearizability"], res["recovered"]
    verdict = res["verdict"]
    L = ["# Hato Jepsen campaign: **%s**" % verdict, ""]
    if res["problems"]:
        L += ["**Problems:**", ""] + ["- %s" % p for p in res["problems"]] + [""]
    lin_counts = "ok add %d / remove %d / list %d; indeterminate writes %d" % (
        lin["ops"].get("ok_add", 0), lin["ops"].get("ok_remove", 0), lin["ops"].get("ok_list", 0),
        lin["ops"].get("indeterminate_add", 0) + lin["ops"].get("indeterminate_remove", 0))
    faults_run = ", ".join("%s %s-%s s" % (f.get("kind"), _t(f.get("start")), _t(f.get("end")))
                           for f in _sorted_faults(res["faults"])) or "none"
    L += ["## Summary", ""]
    rows = [("**Overall**", "**%s**" % verdict),
            ("Seed", s.get("seed")),
            ("Duration", "%s s" % s.get("duration") if s.get("duration") is not None else None),
            ("Nodes", _nodes(s.get("nodes"))),
            ("Nemeses", s.get("nemeses")),
            ("Faults run (%d)" % len(res["faults"]), faults_run),
            ("Sends invoked / acked / failed / indeterminate", "%d / %d / %d / %d" % (
                d["sends_invoked"], d["sends_acked"], d["sends_failed"], d["sends_indeterminate"])),
            ("Lost (must be 0)", "**%d**" % d["lost_count"] if d["lost_count"] else "0"),
            ("Duplicates", d["duplicate_count"]),
            ("Unexpected (indeterminate / false failure / never sent)", "%d (%d / %d / %d)" % (
                d["unexpected_count"], d["unexpected_indeterminate_count"],
                d["false_failure_count"], d["never_sent_count"])),
            ("Block list", "%s (%s)" % ({True: "linearizable", False: "**NOT LINEARIZABLE**"}.get(
                lin["valid"], "**UNKNOWN**"), lin_counts)),
            ("Send ack latency p50 / p99", "%s / %s" % (
                _ms(res["latency"].get("send", {}).get("p50")),
                _ms(res["latency"].get("send", {}).get("p99")))),
            ("Recovered", rec.get("recovered") if rec.get("recovered") is not None else "missing"),
            ("Drain time", "%s s" % s.get("drain_seconds") if s.get("drain_seconds") is not None
             else None)]
    L += [_table(["Item", "Value"], rows), ""]
    known = {"seed", "duration", "nodes", "nemeses", "recovered", "drain_seconds",
             "history_counts", "log_findings", "unexpected_exits", "node_exits", "faults"}
    extra = []
    for k in sorted(s):
        if k in known:
            continue
        v = s[k]
        if isinstance(v, (dict, list)):
            v = "`%s`" % _clip(json.dumps(v, sort_keys=True), 240)
        elif k == "started_wall" and checker._num(v):
            import datetime
            v = "%s (%s UTC)" % (v, datetime.datetime.fromtimestamp(
                checker._num(v), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
        extra.append((k, v))
    if extra:
        L += ["Other summary fields:", "", _table(["Field", "Value"], extra), ""]
    health = []
    lf = s.get("log_findings")
    if isinstance(lf, dict):
        for node, v in sorted(lf.items()):
            if isinstance(v, dict):
                health.append((node, "%s suspicious log line(s)" % v.get("count"),
                               "<br>".join("`%s`" % _clip(x, 160) for x in v.get("first", [])[:3])))
    for e in (s.get("unexpected_exits") or []):
        if isinstance(e, dict):
            health.append((e.get("node"), "unexpected exit at %s s (code %s)" % (
                e.get("t"), e.get("returncode")), "held down" if e.get("held") else "restarted"))
    if health:
        L += ["## Node health", "", _table(["Node", "Finding", "Detail"], health), ""]

    L += ["## Faults", ""]
    if res["faults"]:
        frows = []
        for i, f in enumerate(_sorted_faults(res["faults"]), 1):
            st, en = checker._num(f.get("start")), checker._num(f.get("end"))
            dur = en - st if st is not None and en is not None else None
            frows.append((i, f.get("kind"), _t(st), _t(en), _t(dur), _s(f.get("nodes")),
                          _clip(str(f.get("detail") or ""), 200)))
        L += [_table(["#", "Kind", "Start (s)", "End (s)", "Length (s)", "Nodes", "Detail"], frows), ""]
    else:
        L += ["No faults recorded.", ""]

    L += ["## Delivery (sends)", ""]
    L += [_table(["Metric", "Value"], [
        ("Sends invoked", d["sends_invoked"]),
        ("Acked (ok)", d["sends_acked"]),
        ("Failed (definite)", d["sends_failed"]),
        ("Indeterminate (info / no completion)", "%d (%d / %d)" % (
            d["sends_indeterminate"], d["sends_info"], d["sends_no_completion"])),
        ("Sink records / unique uids", "%d / %d" % (d["sink_records"], d["sink_unique_uids"])),
        ("Acked and delivered", d["delivered_acked"]),
        ("**Lost** (acked, never delivered; must be 0)", "**%d**" % d["lost_count"]),
        ("Duplicates (uids delivered > once)", "%d (%d extra deliveries)" % (
            d["duplicate_count"], d["duplicate_extra_deliveries"])),
        ("Unexpected deliveries", d["unexpected_count"]),
        ("&nbsp;&nbsp;of indeterminate sends (allowed)", d["unexpected_indeterminate_count"]),
        ("&nbsp;&nbsp;**false failures** (send failed, yet delivered)", "**%d**" % d["false_failure_count"]),
        ("&nbsp;&nbsp;**never sent**", "**%d**" % d["never_sent_count"]),
        ("Verdict", "ok" if d["valid"] else "**VIOLATION**"),
    ]), ""]
    if d["lost_count"]:
        L += ["Lost uids: " + _uids(d["lost"], d["lost_count"]), ""]
    if d["false_failure_count"]:
        L += ["False-failure uids: " + _uids(d["false_failures"], d["false_failure_count"]), ""]
    if d["never_sent_count"]:
        L += ["Never-sent uids: " + _uids(d["never_sent"], d["never_sent_count"]), ""]
    if d["duplicate_count"]:
        L += ["Duplicate uids: " + _uids(["%s x%d" % kv for kv in d["duplicates"].items()],
                                         d["duplicate_count"], 10), ""]

    L += ["## Block list linearizability", ""]
    o = lin["ops"]
    lv = {True: "linearizable", False: "**NOT LINEARIZABLE**"}.get(lin["valid"], "**UNKNOWN**")
    L += [_table(["Metric", "Value"], [
        ("Verdict", lv),
        ("add / remove / list invoked", "%d / %d / %d" % (o.get("ops_add", 0), o.get("ops_remove", 0),
                                                          o.get("ops_list", 0))),
        ("ok add / remove / list", "%d / %d / %d" % (o.get("ok_add", 0), o.get("ok_remove", 0),
                                                     o.get("ok_list", 0))),
        ("indeterminate add / remove (may apply any time after invoke, or never)",
         "%d / %d" % (o.get("indeterminate_add", 0), o.get("indeterminate_remove", 0))),
        ("dropped: failed writes / indeterminate lists", "%d / %d" % (
            o.get("dropped_fail", 0), o.get("dropped_indeterminate_list", 0))),
        ("addresses", lin.get("addresses")),
        ("search time / steps / max frontier", "%.2f s / %s / %s" % (
            lin.get("elapsed", 0), lin.get("search_steps"), lin.get("max_frontier"))),
        ("quiescent cuts", lin.get("quiescent_cuts")),
        ("indeterminate-write horizon", "none (may take effect any time later: sound)"
         if lin.get("info_horizon") is None else
         "**ASSUMED** %g s after invoke, or never" % lin["info_horizon"]),
    ]), ""]
    if lin["valid"] == "unknown":
        L += ["Search gave up: %s" % lin.get("unknown_reason"), ""]
    if lin["valid"] is False and lin.get("failure"):
        fl = lin["failure"]
        L += ["**Failure:** %s" % fl.get("reason"), ""]
        if fl.get("failed_op"):
            L += ["Failed op: `%s`" % json.dumps(fl["failed_op"]), ""]
            L += ["Possible states just before (first %d of %d):" % (
                len(fl["possible_states_before"]), fl["possible_state_count_before"]), ""]
            L += ["- `%s`" % json.dumps(st) for st in fl["possible_states_before"]] + [""]
            L += ["Window %s (ok ops overlapping it):" % fl["window_interval"], "", "```"]
            L += [json.dumps(w) for w in fl["window"]]
            L += ["```", ""]
            if fl.get("indeterminate_writes_on_involved_addresses"):
                L += ["Indeterminate writes on the involved addresses:", "", "```"]
                L += [json.dumps(w) for w in fl["indeterminate_writes_on_involved_addresses"]]
                L += ["```", ""]

    L += ["## Latency (ok ops)", ""]
    rows = []
    for f, st in res["latency"].items():
        rows.append((f, st["count"], _ms(st["p50"]), _ms(st["p95"]), _ms(st["p99"]), _ms(st["max"])))
    L += [_table(["Op", "n", "p50", "p95", "p99", "max"], rows) if rows else "No ok ops.", ""]
    rows = []
    for f, st in res.get("latency_by_proto", {}).items():
        rows.append((f, st["count"], _ms(st["p50"]), _ms(st["p95"]), _ms(st["p99"]), _ms(st["max"])))
    if rows:
        L += ["By protocol:", "", _table(["Op/proto", "n", "p50", "p95", "p99", "max"], rows), ""]

    if res["warnings"]:
        L += ["## Warnings", ""] + ["- %s" % w for w in res["warnings"]] + [""]
    L += ["## Timeline", ""]
    L += ["![timeline](timeline.png)" if png_ok else "_timeline.png not rendered (matplotlib unavailable)_", ""]
    L += ["_Generated by jepsen/report.py from results.json (checker: jepsen/checker.py)._", ""]
    return "\n".join(L)


# --------------------------------------------------------------------------- plot

def _per_second(ts, horizon):
    n = int(math.ceil(horizon)) + 1
    bins = [0] * n
    for t in ts:
        if 0 <= t < n:
            bins[int(t)] += 1
    return bins


def render_timeline(out, res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops, _records, _bad, _anom = checker.history_from_file(os.path.join(out, "history.jsonl"))
    sink, _ = checker.read_jsonl(os.path.join(out, "sink.jsonl"))
    faults = res["faults"]
    s = res.get("summary") or {}

    acks, bad, lat_by_sec, blk_lat = [], [], defaultdict(list), defaultdict(list)
    horizon = 0.0
    for o in ops:
        horizon = max(horizon, o["inv"], o["ret"] or 0)
        if o["f"] == "send":
            if o["type"] == "ok":
                acks.append(o["ret"])
                lat_by_sec[int(o["ret"])].append(o["ret"] - o["inv"])
            elif o["ret"] is not None:
                bad.append(o["ret"])
        elif o["f"] in ("add", "remove", "list") and o["type"] == "ok":
            blk_lat[int(o["ret"])].append(o["ret"] - o["inv"])
    arrivals = [t for t in (checker._num(r.get("t")) for r in sink) if t is not None]
    horizon = max([horizon] + arrivals + [checker._num(s.get("duration")) or 0] +
                  [checker._num(f.get("end")) or 0 for f in faults])
    horizon = max(horizon, 1.0)
    xs = list(range(int(math.ceil(horizon)) + 1))

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 8), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 1]})
    nodes = s.get("nodes")
    title = "Hato campaign: %s   seed=%s  nodes=%s  nemeses=%s" % (
        res["verdict"], s.get("seed"), len(nodes) if isinstance(nodes, list) else nodes,
        ",".join(map(str, s.get("nemeses") or [])) or "-")
    fig.suptitle(title, fontsize=12, fontweight="bold",
                 color={"PASS": "darkgreen"}.get(res["verdict"], "darkred"))

    ax1.step(xs, _per_second(acks, horizon), where="post", label="send acks/s", color="tab:blue", lw=1.3)
    ax1.step(xs, _per_second(arrivals, horizon), where="post", label="sink arrivals/s",
             color="tab:green", lw=1.1, alpha=0.85)
    if bad:
        ax1.step(xs, _per_second(bad, horizon), where="post", label="send fail+info/s",
                 color="tab:red", lw=1.0, alpha=0.8)
    ax1.set_ylabel("events per second")
    ax1.set_ylim(bottom=0)
    ax1.grid(True, alpha=0.3)

    def pct_series(d, q):
        px, py = [], []
        for sec in sorted(d):
            v = sorted(d[sec])
            px.append(sec + 0.5)
            py.append(checker.percentile(v, q) * 1000)
        return px, py

    for q, style, label in ((50, "-", "send ack p50"), (99, "--", "send ack p99")):
        px, py = pct_series(lat_by_sec, q)
        if px:
            ax2.plot(px, py, style, color="tab:blue", lw=1.2 if q == 50 else 1.0, label=label)
    px, py = pct_series(blk_lat, 99)
    if px:
        ax2.plot(px, py, ":", color="tab:purple", lw=1.0, label="block-list op p99")
    ax2.set_yscale("log")
    ax2.set_ylabel("latency (ms, log)")
    ax2.set_xlabel("seconds since campaign start")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.set_xlim(0, horizon)

    kinds = sorted({str(f.get("kind")) for f in faults})
    cmap = plt.get_cmap("tab10")
    colors = {k: cmap((i + 3) % 10) for i, k in enumerate(kinds)}
    ymax = ax1.get_ylim()[1] * 1.25 or 1
    ax1.set_ylim(0, ymax)
    for i, f in enumerate(sorted(faults, key=lambda f: checker._num(f.get("start")) or 0)):
        st = checker._num(f.get("start"))
        en = checker._num(f.get("end"))
        if st is None:
            continue
        if en is None or en < st:
            en = horizon
        k = str(f.get("kind"))
        for ax in (ax1, ax2):
            ax.axvspan(st, max(en, st + 0.2), color=colors[k], alpha=0.18, lw=0)
        level = 0.97 - 0.07 * (i % 3)
        ax1.text(st + 0.2, ymax * level, k, fontsize=8, va="top", ha="left", color="black",
                 bbox=dict(boxstyle="round,pad=0.15", fc=colors[k], alpha=0.45, lw=0))
    # violations: lost acks (at their ack time) and the non-linearizable op
    lost = set(res["delivery"].get("lost") or [])
    if lost:
        lt = [o["ret"] for o in ops if o["f"] == "send" and o["type"] == "ok"
              and checker._uid(o) in lost]
        ax1.plot(lt, [ymax * 0.03] * len(lt), "x", color="red", ms=8, mew=2,
                 label="LOST ack (%d)" % res["delivery"]["lost_count"])
    fl = (res["linearizability"].get("failure") or {}).get("failed_op")
    if fl and fl.get("return") is not None:
        for ax in (ax1, ax2):
            ax.axvline(fl["return"], color="red", lw=1.5)
        ax1.text(fl["return"], ymax * 0.5, " non-linearizable %s " % fl.get("f"), color="red",
                 fontsize=8, rotation=90, va="center", ha="right")
    dur = checker._num(s.get("duration"))
    if dur:
        for ax in (ax1, ax2):
            ax.axvline(dur, color="black", ls="--", lw=0.8, alpha=0.6)
        ax1.text(dur + 0.3, ymax * 0.97, "workload end\n(drain %ss)" % s.get("drain_seconds", "?"),
                 fontsize=8, va="top", ha="left")
    handles, labels = ax1.get_legend_handles_labels()
    import matplotlib.patches as mpatches
    for k in kinds:
        handles.append(mpatches.Patch(color=colors[k], alpha=0.35))
        labels.append("fault: " + k)
    ax1.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
               frameon=False)
    ax2.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    import argparse
    ap = argparse.ArgumentParser(description="Render report.md and timeline.png for a campaign.")
    ap.add_argument("out")
    ap.add_argument("--recheck", action="store_true", help="re-run the checker first")
    ap.add_argument("--no-png", action="store_true", help="skip timeline.png")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.out):
        print("report: %s is not a directory" % a.out, file=sys.stderr)
        return 2
    if not a.no_png and not _have_matplotlib() and os.path.exists(SYSTEM_PYTHON) \
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
            and not os.environ.get("HATO_REPORT_REEXEC"):
        os.environ["HATO_REPORT_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + list(argv))
    res = load_results(a.out, a.recheck)
    png = os.path.join(a.out, "timeline.png")
    png_ok = False
    if not a.no_png:
        try:
            render_timeline(a.out, res, png)
            png_ok = True
        except ImportError as e:
            print("report: matplotlib unavailable (%s); apt-get install -y python3-matplotlib"
                  % e, file=sys.stderr)
    md = render_markdown(res, png_ok)
    with open(os.path.join(a.out, "report.md"), "w") as fh:
        fh.write(md)
    print("report: wrote %s%s -> %s" % (os.path.join(a.out, "report.md"),
                                        " and timeline.png" if png_ok else "", res["verdict"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
