#!/usr/bin/env python3
"""Scores hato-bounce against Sisimai 5's expected results (not run by cargo test).

Needs two public checkouts (not vendored here):
  SOE = sisimai/set-of-emails   (sample bounces: maildir/bsd/*.eml)
  P5  = sisimai/p5-sisimai      (t/*-lhost-*.t etc. hold the expected reasons)

Usage: python3 tests/eval_sisimai_corpus.py SOE_DIR P5_DIR [-v]
Prints the agreement on reasons (per expected recipient, in order) and the
most frequent disagreements. Sisimai 5 has a few reasons hato-bounce does not
(delivered, notcompliantrfc, suppressed, ...); those count as disagreements.
"""
import collections, glob, json, os, re, subprocess, sys

def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    soe, p5 = sys.argv[1], sys.argv[2]
    verbose = "-v" in sys.argv
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    subprocess.run(["cargo", "build", "-q", "--release", "--example", "dump"], cwd=root, check=True)
    dump = os.path.join(target, "release", "examples", "dump")

    samples = os.path.join(soe, "maildir", "bsd")
    expected = {}
    for tf in glob.glob(os.path.join(p5, "t", "*.t")):
        m = re.match(r"\d+-((?:lhost|rhost|rfc3464|rfc3834|arf)[^/]*)\.t$", os.path.basename(tf))
        if not m:
            continue
        prefix = {"rhost-goddady": "rhost-godaddy"}.get(m.group(1), m.group(1))
        src = open(tf, encoding="utf-8", errors="replace").read()
        block = re.search(r"\$isexpected\s*=\s*\{(.*?)\n\};", src, re.S)
        if not block:
            continue
        for em in re.finditer(r"'(\d+)'\s*=>\s*\[(.*?)\]\s*\]\s*,", block.group(1), re.S):
            items = re.findall(r"\[\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'", em.group(2) + "]")
            path = os.path.join(samples, f"{prefix}-{em.group(1)}.eml")
            if os.path.exists(path):
                expected[path] = [r for _, _, r in items]

    files = sorted(expected)
    out = subprocess.run([dump] + files, capture_output=True, text=True).stdout
    ours = collections.defaultdict(list)
    for line in out.splitlines():
        path, _rcpt, reason, *_ = line.split("\t")
        ours[path].append(reason)
    total = agree = 0
    confusion = collections.Counter()
    for path in files:
        got = ours.get(path, [])
        for i, want in enumerate(expected[path]):
            total += 1
            g = got[i] if i < len(got) else "(none)"
            if g == want:
                agree += 1
            else:
                confusion[(want, g)] += 1
                if verbose:
                    print(f"{os.path.basename(path)}: expected {want}, got {g}")
    print(f"samples {len(files)}, expected recipients {total}, agree {agree} ({100 * agree / max(total, 1):.1f}%)")
    for (want, got), n in confusion.most_common(20):
        print(f"{n:4d}  expected {want:16s} got {got}")

if __name__ == "__main__":
    main()
