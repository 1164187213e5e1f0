#!/usr/bin/env bash
# Backlog benchmark: queue N messages in one Hato node with delivery off, note its memory with
# the backlog queued, then restart it with delivery on (to smtp-sink) and time the drain.
# Last, a fresh node with delivery on takes the same N messages while it delivers them
# (sustained end to end, against the acceptance-only rate of the first phase).
#
#   tests/bench/backlog.sh [MESSAGES] [SIZE_BYTES] [CONNECTIONS]   (default 1000000 4096 20)
#
# Prints acceptance rate, RSS with the backlog queued, drain time and rate, peak RSS, and the
# sustained end-to-end rate. Needs about MESSAGES x 3 x SIZE bytes of disk (1,000,000 x 4 KB:
# ~12 GB) under /tmp.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh
N="${1:-1000000}"; SIZE="${2:-4096}"; CONC="${3:-20}"
ensure_packages postfix
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hato-target}"
if [ -z "${HATO_BIN:-}" ]; then cargo build --release --locked --bin hato >/dev/null; fi
HATO="${HATO_BIN:-$CARGO_TARGET_DIR/release/hato}"
W="$(mktemp -d /tmp/hato-backlog.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
now() { date +%s.%N; }

smtp-sink -u "$(id -un | sed 's/^root$/nobody/')" 127.0.0.1:20225 1000 & pids+=("$!")
wait_port 20225

cfg() { # delivery enabled
    cat <<TOML
node_id = 1
data_dir = "$W/data"
[listen]
raft = "127.0.0.1:21201"
http = "127.0.0.1:22201"
console = ""
[cluster]
bootstrap = true
snapshot_every = 100000
[smtp]
hostname = "backlog.local"
[[smtp.listener]]
addr = "127.0.0.1:23201"
mode = "relay"
tls = "none"
[delivery]
enabled = $1
TOML
}
start() {
    cfg "$1" > "$W/hato.toml"
    "$HATO" serve --config "$W/hato.toml" 2>>"$W/log" & hpid=$!
    for _ in $(seq 1 100); do
        "$HATO" cluster status --node 127.0.0.1:21201 2>/dev/null | grep -q '"role": "leader"' && return 0
        sleep 0.2
    done
    echo "hato did not start; log:" >&2; tail -20 "$W/log" >&2; exit 1
}
rss() { awk "/^$1/ {print \$2 / 1024}" "/proc/$hpid/status"; }
pending() { "$HATO" queue stats --node 127.0.0.1:21201 | sed -n 's/.*"pending": \([0-9]*\).*/\1/p'; }
# smtp-source sends the N messages of SIZE bytes over CONC connections to the node.
load() { smtp-source -s "$CONC" -m "$N" -l "$SIZE" -f bench@src.example -t rcpt@dest.example 127.0.0.1:23201 >/dev/null; }
# Relay from loopback, everything routed to smtp-sink (kept in the node's data dir).
open_relay() {
    "$HATO" smtp allow add --node 127.0.0.1:21201 127.0.0.0/8 >/dev/null
    "$HATO" route set --node 127.0.0.1:21201 '*' --host 127.0.0.1 --port 20225 >/dev/null
}

start false
open_relay
echo "== backlog: $N messages of $SIZE bytes over $CONC connections ($(nproc) cores, $(date -u +%F))"
t0=$(now)
load
t1=$(now)
acc_rate=$(echo "$N / ($t1 - $t0)" | bc -l)
queued=$(pending)
printf 'accepted %d in %.1f s: %.0f msg/s; queued %s; RSS %.0f MB (peak %.0f MB)\n' "$N" "$(echo "$t1 - $t0" | bc -l)" "$acc_rate" "$queued" "$(rss VmRSS)" "$(rss VmHWM)"
du -sh "$W/data" | awk '{print "data dir: " $1}'

kill -TERM "$hpid"; wait "$hpid" 2>/dev/null || true
start true
rss_restart=$(rss VmRSS)
t0=$(now)
peak=0
while :; do
    p=$(pending)
    r=$(rss VmHWM); peak=$(echo "if ($r > $peak) $r else $peak" | bc -l)
    [ "$p" = 0 ] && break
    sleep 1
done
t1=$(now)
printf 'restarted with the backlog queued: RSS %.0f MB\n' "$rss_restart"
printf 'drained %d in %.1f s: %.0f msg/s end to end; peak RSS while draining %.0f MB\n' "$N" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$N / ($t1 - $t0)" | bc -l)" "$peak"
kill -TERM "$hpid"; wait "$hpid" 2>/dev/null || true

# Sustained end to end: a fresh node accepts the N messages while it delivers them.
rm -rf "$W/data"
start true
open_relay
t0=$(now)
load
t_acc=$(now)
left=$(pending)
while [ "$(pending)" != 0 ]; do
    sleep 0.1
done
t1=$(now)
printf 'accepted %d while delivering them in %.1f s (%.0f msg/s), %s still queued then; all delivered after %.1f s: %.0f msg/s end to end, %.2fx the acceptance-only rate above; peak RSS %.0f MB\n' \
    "$N" "$(echo "$t_acc - $t0" | bc -l)" "$(echo "$N / ($t_acc - $t0)" | bc -l)" "$left" "$(echo "$t1 - $t0" | bc -l)" \
    "$(echo "$N / ($t1 - $t0)" | bc -l)" "$(echo "($N / ($t1 - $t0)) / $acc_rate" | bc -l)" "$(rss VmHWM)"
kill -TERM "$hpid"; wait "$hpid" 2>/dev/null || true
