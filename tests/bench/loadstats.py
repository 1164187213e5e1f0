"""Latency and error figures of the HTTP load generator (http_load.py): nearest-rank
percentiles in milliseconds over successful requests, error counts by kind, and the client's
own CPU time."""
import math


def pct(sorted_vals, p):
    """Nearest-rank percentile, in ms."""
    if not sorted_vals:
        return None
    return round(sorted_vals[max(0, math.ceil(p / 100 * len(sorted_vals)) - 1)] * 1000, 2)


def summary(stats, total, cpu):
    """Count never-sent requests as errors; return (sorted latencies, the common JSON fields)."""
    unsent = total - stats["sent"]
    if unsent > 0:
        stats["kinds"]["unsent"] += unsent
    lat = sorted(stats["lat"])
    return lat, {
        "ok": len(lat), "errors": sum(stats["kinds"].values()),
        "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "error_kinds": dict(stats["kinds"]), "client_cpu_s": round(cpu, 2),
    }


def report(out, cpu, rate_text, file):
    """The two human-readable lines on stderr."""
    print(f"ok {out['ok']} ({rate_text}), errors {out['errors']} {out['error_kinds'] or ''}",
          file=file)
    print(f"latency ms: p50 {out['p50_ms']}  p90 {out['p90_ms']}  p99 {out['p99_ms']}  "
          f"max {out['max_ms']}; client CPU {cpu:.2f} s", file=file)
