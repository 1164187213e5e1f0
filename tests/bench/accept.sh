#!/usr/bin/env bash
# Acceptance-throughput benchmark: Hato (single node, and a 3-node cluster on this machine)
# against a durable aiosmtpd sink (fsync before 250), a private Postfix relay (its durable
# queue: fsync before 250; tests/bench/postfix.sh) and smtp-sink (a non-durable ceiling),
# all driven by Postfix's smtp-source in the same run, on loopback.
#
#   tests/bench/accept.sh [MESSAGES] [SIZE_BYTES] [CONNECTIONS]     (default 5000 4096 20)
#
# Prints messages/second per system and the ratios to the durable sink and to Postfix; then
# Hato's acceptance over the HTTP API (tests/bench/http_load.py, 20 keep-alive connections),
# accept latency p50/p99 at fixed offered loads (smtp-latency, tests/bench/loadgen: open loop) for
# Hato and the peers, and Hato's resource use: peak RSS per node, bytes written and fsyncs
# (perf tracepoints) per accepted message. Absolute numbers drift on shared machines; compare
# the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/lib.sh
N="${1:-5000}"; SIZE="${2:-4096}"; CONC="${3:-20}"
ensure_packages postfix python3-aiosmtpd curl
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hato-target}"
if [ -z "${HATO_BIN:-}" ]; then cargo build --release --locked --bin hato >/dev/null; fi
HATO="${HATO_BIN:-$CARGO_TARGET_DIR/release/hato}"
# The latency generator is small (tokio only): built here whatever HATO_BIN says.
cargo build --release --locked -p hato-loadgen >/dev/null
LOADGEN="$CARGO_TARGET_DIR/release/smtp-latency"
W="$(mktemp -d /tmp/hato-bench.XXXXXX)"
pids=()
cleanup() {
    if [ -f "$W/postfix/main.cf" ]; then
        as_root tests/bench/postfix.sh stop "$W/postfix" || true
        as_root rm -rf "$W/postfix" || true
    fi
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

# `smtp-source` sends N messages of SIZE bytes over CONC connections to $1; its CPU seconds
# (user + system) go to $W/source.cpu.
send() {
    local TIMEFORMAT='%U %S'
    { time smtp-source -s "$CONC" -m "$N" -l "$SIZE" -f bench@src.example -t rcpt@dest.example "$1" >/dev/null; } 2>"$W/source.time"
    awk '{print $1 + $2}' "$W/source.time" >"$W/source.cpu"
}
# Messages per second of send() to $1.
rate() {
    local t0 t1
    t0=$(date +%s.%N)
    send "$1"
    t1=$(date +%s.%N)
    echo "$N / ($t1 - $t0)" | bc -l
}
# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# Microseconds of CPU per message between two cpu() readings.
per_msg() { printf '%.0f' "$(echo "($2 - $1) * 1000000 / $N" | bc -l)"; }

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

# 1. smtp-sink: accepts and discards (not durable: a ceiling for the load generator).
smtp-sink -u "$(id -un | sed 's/^root$/nobody/')" 127.0.0.1:20025 1000 & pids+=("$!")
sink_pid=$!
wait_port 20025

# 2. The durable aiosmtpd sink: writes and fsyncs each message (and its log line) before 250.
mkdir -p "$W/sink"
/usr/bin/python3 tests/peers/scripted_mx.py --port 20026 --out "$W/sink" >/dev/null & pids+=("$!")
wait_port 20026

# 3. A private Postfix instance under $W/postfix (root only; not the system Postfix): relays
#    everything from loopback to smtp-sink, through its durable queue.
chmod 711 "$W"   # Postfix's master opens $W/postfix/data/master.lock as the postfix user
as_root tests/bench/postfix.sh start "$W/postfix" 20027 20025

# 4. Hato: one node and three nodes for acceptance (delivery off), and one node that also
#    delivers to smtp-sink (end to end). Relay is open to loopback.
node_cfg() { # id raft http smtp bootstrap join block delivery
    cat <<TOML
node_id = $1
data_dir = "$W/hato$1-$7/data"
[listen]
raft = "127.0.0.1:$2"
http = "127.0.0.1:$3"
console = ""
[cluster]
bootstrap = $5
join = [$6]
snapshot_every = 100000
[smtp]
hostname = "bench$1.local"
[[smtp.listener]]
addr = "127.0.0.1:$4"
mode = "relay"
tls = "none"
[delivery]
enabled = $8
TOML
}
start_hato() { # port block, node count, delivery (true|false)
    local blk=$1 count=$2 deliver=$3 i join b
    for i in $(seq 1 "$count"); do
        mkdir -p "$W/hato$i-$blk"
        if [ "$i" = 1 ]; then join=""; b=true; else join="\"127.0.0.1:$((21000 + blk * 10 + 1))\""; b=false; fi
        node_cfg "$i" $((21000 + blk * 10 + i)) $((22000 + blk * 10 + i)) $((23000 + blk * 10 + i)) "$b" "$join" "$blk" "$deliver" > "$W/hato$i-$blk/hato.toml"
        "$HATO" serve --config "$W/hato$i-$blk/hato.toml" 2>"$W/hato$i-$blk/log" & pids+=("$!")
        sleep 0.5
    done
    for _ in $(seq 1 100); do
        if "$HATO" cluster status --node "127.0.0.1:$((21000 + blk * 10 + 1))" 2>/dev/null | tr -d ' \n' | grep -q "\"voters\":\[$(seq -s, 1 "$count")\]"; then break; fi
        sleep 0.2
    done
    "$HATO" smtp allow add --node "127.0.0.1:$((21000 + blk * 10 + 1))" 127.0.0.0/8 >/dev/null
    sleep 1
}
start_hato 1 1 false   # one node, acceptance only
start_hato 3 3 false   # three nodes, acceptance only
start_hato 2 1 true    # one node that also delivers (end to end)
"$HATO" route set --node 127.0.0.1:21021 '*' --host 127.0.0.1 --port 20025 >/dev/null

echo "== acceptance: $N messages of $SIZE bytes over $CONC connections ($(nproc) cores, $(date -u +%F))"
# The disk's fsync latency bounds every durable system's accept latency, and it moves a lot
# between machines (and between hours on a shared host): 500 appends of 4 KB, each followed
# by fdatasync, before the systems are loaded.
/usr/bin/python3 - "$W/fsync-probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
block, lat = b"x" * 4096, []
for _ in range(500):
    t = time.perf_counter(); os.write(fd, block); os.fdatasync(fd); lat.append(time.perf_counter() - t)
lat.sort()
print("%-34s p50 %.2f ms, p99 %.2f ms (4 KB append + fdatasync, 500 times)" % ("disk", lat[250] * 1e3, lat[494] * 1e3))
PY
sink=$(rate 127.0.0.1:20025);    printf '%-34s %8.0f msg/s (not durable: ceiling)\n' "smtp-sink" "$sink"
durable=$(rate 127.0.0.1:20026); printf '%-34s %8.0f msg/s\n' "aiosmtpd durable sink (fsync)" "$durable"
# Postfix delivers to smtp-sink while it accepts (it is a relay); wait for its queue to be empty
# before measuring Hato, and report that too (end to end, as for Hato below).
t0=$(date +%s.%N)
pf=$(rate 127.0.0.1:20027)
for _ in $(seq 1 3000); do
    case "$(as_root postqueue -c "$W/postfix" -p)" in "Mail queue is empty"*) break ;; esac
    sleep 0.2
done
t1=$(date +%s.%N)
pf_e2e=$(echo "$N / ($t1 - $t0)" | bc -l)
printf '%-34s %8.0f msg/s  %.2fx the durable sink (end to end %.0f msg/s, drained %d in %.1f s)\n' "Postfix relay (durable queue)" "$pf" "$(echo "$pf/$durable" | bc -l)" "$pf_e2e" "$N" "$(echo "$t1 - $t0" | bc -l)"
pid_h1=$(pgrep -f "$W/hato1-1/hato.toml" | head -1)
c0=$(cpu "$pid_h1")
h1=$(rate 127.0.0.1:23011)
acc_hato_us=$(per_msg "$c0" "$(cpu "$pid_h1")"); acc_source_us=$(per_msg 0 "$(cat "$W/source.cpu")")
printf '%-34s %8.0f msg/s  %.2fx the durable sink, %.2fx Postfix\n' "Hato, 1 node" "$h1" "$(echo "$h1/$durable" | bc -l)" "$(echo "$h1/$pf" | bc -l)"
h3=$(rate 127.0.0.1:23031)
printf '%-34s %8.0f msg/s  %.2fx the durable sink, %.2fx Postfix\n' "Hato, 3 nodes (via node 1)" "$h3" "$(echo "$h3/$durable" | bc -l)" "$(echo "$h3/$pf" | bc -l)"

# End to end: accepted by one node, delivered to smtp-sink; time until the queue is empty
# (its /status, polled every 10 ms: the run takes about a second at the default size, so a
# coarser poll would count its own granularity as delivery time). The CPU each process spent
# per message shows what relaying costs, and what smtp-sink, sharing the two cores, costs.
pid_e2e=$(pgrep -f "$W/hato1-2/hato.toml" | head -1)
c0=$(cpu "$pid_e2e"); k0=$(cpu "$sink_pid")
t0=$(date +%s.%N)
send 127.0.0.1:23021
t_acc=$(date +%s.%N)
for _ in $(seq 1 30000); do
    curl -s http://127.0.0.1:22021/status | grep -q '"pending":0[,}]' && break
    sleep 0.01
done
t1=$(date +%s.%N)
e2e_hato_us=$(per_msg "$c0" "$(cpu "$pid_e2e")"); e2e_sink_us=$(per_msg "$k0" "$(cpu "$sink_pid")")
e2e_source_us=$(per_msg 0 "$(cat "$W/source.cpu")")
e2e=$(echo "$N / ($t1 - $t0)" | bc -l)
acc=$(echo "$N / ($t_acc - $t0)" | bc -l)
printf '%-34s %8.0f msg/s  (%.2fx its own acceptance, %.2fx the acceptance-only node, %.2fx Postfix end to end, drained %d in %.2f s)\n' "Hato, 1 node, end to end" "$e2e" "$(echo "$e2e/$acc" | bc -l)" "$(echo "$e2e/$h1" | bc -l)" "$(echo "$e2e/$pf_e2e" | bc -l)" "$N" "$(echo "$t1 - $t0" | bc -l)"
printf '%-34s acceptance only: Hato %s + smtp-source %s; end to end: Hato %s + smtp-source %s + smtp-sink %s\n' "  CPU us per message" "$acc_hato_us" "$acc_source_us" "$e2e_hato_us" "$e2e_source_us" "$e2e_sink_us"

# HTTP API acceptance (CMC send.json, 20 keep-alive connections, SIZE bytes of text). The API
# requires a sending domain, so every message is DKIM-signed (Ed25519 here).
"$HATO" domain add --node 127.0.0.1:21011 shop.example --algorithm ed25519 >/dev/null
"$HATO" domain add --node 127.0.0.1:21031 shop.example --algorithm ed25519 >/dev/null
key1=$("$HATO" api user add --node 127.0.0.1:21011 bench | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
key3=$("$HATO" api user add --node 127.0.0.1:21031 bench | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
sleep 1
http_rate() { # http_addr key
    /usr/bin/python3 tests/bench/http_load.py --url "http://$1/api/v2/emails/send.json" \
        --api-user bench --api-key "$2" --from sender@shop.example --to rcpt@dest.example \
        --messages "$N" --connections "$CONC" --size "$SIZE" 2>/dev/null | tail -1
}
j=$(http_rate 127.0.0.1:22011 "$key1"); hh1=$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate"])')
printf '%-34s %8.0f msg/s  %.2fx Postfix over SMTP (%s)\n' "Hato, 1 node, HTTP API" "$hh1" "$(echo "$hh1/$pf" | bc -l)" "$j"
j=$(http_rate 127.0.0.1:22031 "$key3"); hh3=$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate"])')
printf '%-34s %8.0f msg/s  %.2fx Postfix over SMTP (%s)\n' "Hato, 3 nodes, HTTP API" "$hh3" "$(echo "$hh3/$pf" | bc -l)" "$j"

# Accept latency at fixed offered loads (open loop, 20 connections, 20 s each): each system at
# half of the peak it reached above (and the cluster also at the single node's half peak).
lat() { # target rate
    "$LOADGEN" --target "$1" --rate "$2" --duration 20 \
        --connections "$CONC" --size "$SIZE" 2>/dev/null | tail -1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); f=lambda v: "-" if v is None else "%.1f" % v; print("%.0f/s offered, %.0f/s done, p50 %s ms, p99 %s ms, max %s ms, %d errors (generator CPU %.1f s)" % (d["offered_rate"], d["achieved_rate"], f(d["p50_ms"]), f(d["p99_ms"]), f(d["max_ms"]), d["errors"], d["client_cpu_s"]))'
}
half() { printf '%.0f' "$(echo "$1/2" | bc -l)"; }
# Before each latency run, let the machine settle (at most 30 s): the throughput run before
# leaves flushes, compactions and queued deliveries behind, and a latency figure taken while
# they finish measures the previous run, not the offered load. Quiet means under 2 MB/s
# written and under 20% CPU busy over one second (vmstat).
settle() {
    for _ in $(seq 1 30); do
        vmstat 1 2 | tail -1 | awk '{ exit !($10 < 2048 && $13 + $14 < 20) }' && return 0
    done
    return 0 # still busy: measure anyway
}
echo "== accept latency (open loop, $CONC connections, $SIZE bytes, each at half its own peak)"
settle; printf '%-34s %s\n' "Hato, 1 node" "$(lat 127.0.0.1:23011 "$(half "$h1")")"
settle; printf '%-34s %s\n' "Hato, 3 nodes" "$(lat 127.0.0.1:23031 "$(half "$h3")")"
settle; printf '%-34s %s\n' "Hato, 3 nodes, at 1 node's half" "$(lat 127.0.0.1:23031 "$(half "$h1")")"
settle; printf '%-34s %s\n' "Postfix" "$(lat 127.0.0.1:20027 "$(half "$pf")")"
settle; printf '%-34s %s\n' "aiosmtpd durable sink" "$(lat 127.0.0.1:20026 "$(half "$durable")")"
# The machine's own floor: smtp-sink answers at once and keeps nothing, so its tail at the
# single node's offered load is what the cores and the generator add to anyone's (on a shared
# host it moves from run to run, and every figure above carries it too).
settle; printf '%-34s %s\n' "smtp-sink at 1 node's half (floor)" "$(lat 127.0.0.1:20025 "$(half "$h1")")"

# Resources of the single acceptance node over one more run: bytes written and fsync calls
# per accepted message (perf counts the fsync/fdatasync syscalls of the process), peak RSS.
wb0=$(awk '/^write_bytes/ {print $2}' "/proc/$pid_h1/io")
perf stat -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync' -p "$pid_h1" -o "$W/perf.txt" &
perfpid=$!
sleep 0.5
rate 127.0.0.1:23011 >/dev/null
kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
wb1=$(awk '/^write_bytes/ {print $2}' "/proc/$pid_h1/io")
syncs=$(awk '/syscalls:sys_enter_f(data)?sync/ {gsub(",", "", $1); s += $1} END {print s + 0}' "$W/perf.txt")
echo "== resources ($N messages of $SIZE bytes into one node)"
printf '%-34s %8.2f KB written per message (%.1fx the message size)\n' "Hato, 1 node" "$(echo "($wb1 - $wb0) / $N / 1024" | bc -l)" "$(echo "($wb1 - $wb0) / $N / $SIZE" | bc -l)"
printf '%-34s %8.3f fsync/fdatasync calls per message\n' "Hato, 1 node" "$(echo "$syncs / $N" | bc -l)"
for p in $(pgrep -f "$W/hato"); do
    cfg=$(tr '\0' ' ' < "/proc/$p/cmdline" | sed 's/.*--config //; s/ .*//')
    printf '%-34s %8.0f MB peak RSS\n' "$(basename "$(dirname "$cfg")")" "$(awk '/^VmHWM/ {print $2 / 1024}' "/proc/$p/status")"
done

