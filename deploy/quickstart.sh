#!/usr/bin/env bash
# Build and start Hato on this machine.
#   deploy/quickstart.sh             one node, data in ./hato-data, internode 127.0.0.1:9400,
#                                    HTTP 127.0.0.1:8400, console https://127.0.0.1:8443
#                                    (user admin, password in hato-data/console-admin-password)
#   deploy/quickstart.sh --cluster   three nodes on loopback (data in ./hato-local/nodeN),
#                                    internode 127.0.0.1:9401-9403, HTTP 127.0.0.1:8401-8403,
#                                    SMTP relay 127.0.0.1:2521-2523, submission 5581-5583,
#                                    console https://127.0.0.1:8441-8443 (user admin, password
#                                    in hato-local/node1/data/console-admin-password)
# Ctrl-C stops everything. Running it again keeps the data.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_build_deps
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hato-target}"
cargo build --release --locked --bin hato
HATO="$CARGO_TARGET_DIR/release/hato"

if [ "${1:-}" != "--cluster" ]; then
    exec "$HATO" serve
fi

mkdir -p hato-local
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2 3; do
    mkdir -p "hato-local/node$i"
    if [ "$i" -eq 1 ]; then cluster='bootstrap = true'; else cluster=$'bootstrap = false\njoin = ["127.0.0.1:9401"]'; fi
    cat > "hato-local/node$i/hato.toml" <<TOML
node_id = $i
data_dir = "hato-local/node$i/data"
[listen]
raft = "127.0.0.1:940$i"
http = "127.0.0.1:840$i"
console = "127.0.0.1:844$i"
[cluster]
$cluster
[smtp]
hostname = "node$i.hato.local"
[[smtp.listener]]
addr = "127.0.0.1:252$i"
mode = "relay"
tls = "starttls"
[[smtp.listener]]
addr = "127.0.0.1:558$i"
mode = "submission"
tls = "starttls"
TOML
    "$HATO" serve --config "hato-local/node$i/hato.toml" 2>>"hato-local/node$i/hato.log" &
    pids+=("$!")
    sleep 1
done
echo "waiting for the cluster to form..."
for _ in $(seq 1 60); do
    if "$HATO" cluster status --node 127.0.0.1:9403 2>/dev/null | grep -q '"voters": \[' &&
       [ "$("$HATO" cluster status --node 127.0.0.1:9401 | tr -d ' \n' | grep -o '"voters":\[[0-9,]*\]')" = '"voters":[1,2,3]' ]; then
        break
    fi
    sleep 1
done
"$HATO" cluster status --all --node 127.0.0.1:9401
echo "cluster running (logs in hato-local/node*/hato.log); Ctrl-C to stop"
echo "console: https://127.0.0.1:8441 (admin / $(cat hato-local/node1/data/console-admin-password 2>/dev/null))"
wait
