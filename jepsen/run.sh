#!/bin/bash
# Run one fault-injection campaign against a real Hato cluster, then check and report it.
#
#   jepsen/run.sh [--duration SECS] [--seed N] [--nodes 3|5] [--out DIR] [--nemesis LIST]
#                 [any other campaign.py option, see jepsen/campaign.py --help]
#
# Needs root (network namespaces, a bridge, iptables, tc, tmpfs mounts). The hato binary is
# $HATO_BIN, else ~/.cache/hato-target/release/hato, else the debug build. Exits non-zero
# when the campaign could not run or the checker finds a problem. See jepsen/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
py=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
    echo "jepsen/run.sh must run as root: it creates network namespaces, a bridge, iptables" >&2
    echo "rules, tc qdiscs and tmpfs mounts. Run it with sudo." >&2
    exit 1
fi

duration=60
seed=""
out=""
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exec "$py" "$here/campaign.py" --help ;;
        --nodes|--nemesis|--bin|--smtp-clients|--http-clients|--block-clients|--send-pause-min|\
        --send-pause-max|--cli-timeout|--recovery-timeout|--lease-secs|--write-timeout-ms|\
        --snapshot-every|--disk-mb|--stop-grace)
            pass+=("$1" "$2"); shift 2 ;;
        *) echo "unknown option $1 (see jepsen/run.sh --help)" >&2; exit 2 ;;
    esac
done
[ -n "$seed" ] || seed=$(( $(od -An -N4 -tu4 /dev/urandom) % 2147483647 + 1 ))
[ -n "$out" ] || out="$here/out/$(date -u +%Y%m%dT%H%M%SZ)-seed$seed"

# shellcheck source=../deploy/lib.sh
. "$repo/deploy/lib.sh"
ensure_packages haproxy iproute2 iptables faketime libfaketime python3-aiosmtpd python3-matplotlib

# Whatever happens to the campaign process, leave no namespace, bridge, mount or process.
trap '"$py" "$here/campaign.py" --cleanup >/dev/null 2>&1 || true' EXIT

if [ -e "$out/history.jsonl" ]; then
    # The files of two campaigns must not mix (the same seed even reuses message ids).
    echo "jepsen: $out already holds a campaign; choose another --out or remove it" >&2
    exit 2
fi
echo "jepsen: seed $seed, duration ${duration}s, out $out"
mkdir -p "$out"
# Run the campaign as a child we can pass SIGINT/SIGTERM on to (it then tears down).
rc=0
interrupted=0
"$py" "$here/campaign.py" --duration "$duration" --seed "$seed" --out "$out" "${pass[@]}" &
child=$!
trap 'interrupted=1; kill -TERM "$child" 2>/dev/null || true' INT TERM HUP
wait "$child" || rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done
trap - INT TERM HUP
if [ "$interrupted" -ne 0 ]; then
    echo "jepsen: interrupted; results so far in $out" >&2
    exit 130
fi
if [ "$rc" -ne 0 ]; then
    echo "jepsen: campaign failed (exit $rc); see $out/campaign.log" >&2
fi

check=0
if [ -f "$here/checker.py" ] && [ -f "$out/history.jsonl" ]; then
    "$py" "$here/checker.py" "$out" || check=$?
fi
if [ -f "$here/report.py" ] && [ -f "$out/history.jsonl" ]; then
    "$py" "$here/report.py" "$out" || echo "jepsen: report.py failed (exit $?)" >&2
fi
echo "jepsen: seed $seed, results in $out"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
if [ "$check" -ne 0 ]; then
    echo "jepsen: CHECK FAILED (checker exit $check); rerun with --seed $seed" >&2
    exit 1
fi
exit 0
