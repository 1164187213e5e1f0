#!/usr/bin/env bash
# End-to-end check of the container cluster: build the images, start compose.yaml (3 nodes +
# HAProxy) plus a sink MX, send mail through the load balancer by SMTP (swaks) and the HTTP
# API (curl), SIGKILL the Raft leader, keep sending through the load balancer, check that
# every accepted message reached the sink, restart the node and check that it rejoins.
# Stops by itself (HATO_TEST_TIMEOUT, default 600 s) and always removes its containers,
# network and volumes. Prints PASS or FAIL; exit status 0 only on PASS.
# Usage: deploy/container/test.sh     (env: HATO_BIN, HATO_TEST_TIMEOUT, KEEP_LOGS=DIR)
set -euo pipefail
if [ -z "${HATO_TEST_WRAPPED:-}" ]; then
    exec timeout --kill-after=60 "${HATO_TEST_TIMEOUT:-600}" env HATO_TEST_WRAPPED=1 "$0" "$@"
fi
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../lib.sh"
ensure_packages swaks curl jq

project=hatotest
# Published on 127.0.0.1 only; ports away from a local hato's defaults.
export HATO_LB_SMTP_PORT="${HATO_LB_SMTP_PORT:-12525}"
export HATO_LB_SUBMISSION_PORT="${HATO_LB_SUBMISSION_PORT:-12587}"
export HATO_LB_HTTP_PORT="${HATO_LB_HTTP_PORT:-18400}"
export HATO_LB_CONSOLE_PORT="${HATO_LB_CONSOLE_PORT:-18443}"
export HATO_LB_STATS_PORT="${HATO_LB_STATS_PORT:-18404}"
# Recipients leased by the killed node are retried by the others after this long.
export HATO_DELIVERY_LEASE_SECS=30 HATO_DELIVERY_CONNECT_TIMEOUT_SECS=3
export HATO_DELIVERY_COMMAND_TIMEOUT_SECS=5 HATO_DELIVERY_DATA_TIMEOUT_SECS=10
export HATO_DELIVERY_RETRY_SCHEDULE_SECS=1,2,5
export HATO_VERSION=latest
compose() { docker-compose -p "$project" -f "$here/compose.yaml" -f "$here/compose.test.yaml" "$@"; }
smtp_lb="127.0.0.1:$HATO_LB_SMTP_PORT"
http_lb="http://127.0.0.1:$HATO_LB_HTTP_PORT"

T0=$(date +%s)
log() { printf '[%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
status=FAIL
problems=()
problem() { problems+=("$*"); log "PROBLEM: $*"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$status" != PASS ]; then
        log "logs (last 60 lines per container):"
        compose logs --no-color --tail 60 2>&1 | sed 's/^/    /' || true
    fi
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS" && compose logs --no-color > "$KEEP_LOGS/compose.log" 2>&1 || true
    fi
    compose down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted (timeout?)"; exit 124' INT TERM

declare -A cid=()  # service -> container id (stable across docker kill / docker start)
container_of() { [ -n "${cid[$1]:-}" ] || cid[$1]="$(compose ps -q "$1")"; echo "${cid[$1]}"; }
hato_in() { local svc="$1"; shift; docker exec "$(container_of "$svc")" hato "$@"; }
# wait_for SECONDS DESCRIPTION COMMAND...
wait_for() {
    local secs="$1" what="$2" end; shift 2
    end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$end" ]; then log "timed out after ${secs}s waiting for: $what"; return 1; fi
        sleep 1
    done
}

# --- build and start -----------------------------------------------------------------------
tb=$(date +%s)
"$here/build.sh" --with-sink
build_secs=$(( $(date +%s) - tb ))
log "images built in ${build_secs}s"
compose down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
tu=$(date +%s)
compose up -d
log "compose up -d: $(( $(date +%s) - tu ))s"
for svc in hato1 hato2 hato3 lb sink; do container_of "$svc" >/dev/null; done

three_voters() {
    local s
    s="$(hato_in "$1" cluster status)" &&
        jq -e '(.voters | length) == 3 and .leader_id != null' <<<"$s" >/dev/null
}
tw=$(date +%s)
for n in hato1 hato2 hato3; do
    wait_for 120 "$n to see 3 voters and a leader" three_voters "$n"
done
log "cluster formed: 3 voters after $(( $(date +%s) - tw ))s"
hato_in hato1 cluster status --all | sed 's/^/    /' || true

lb_backend_up() {  # lb_backend_up BACKEND COUNT: COUNT servers UP in the HAProxy backend
    [ "$(curl -fsS "http://127.0.0.1:$HATO_LB_STATS_PORT/;csv" | awk -F, -v b="$1" '$1 == b && $2 ~ /^hato/ && $18 == "UP"' | wc -l)" -ge "$2" ]
}
wait_for 60 "HAProxy to see 3 ready nodes" lb_backend_up smtp_relay 3
wait_for 30 "HAProxy HTTP backend" lb_backend_up http_api 3
log "load balancer: 3 nodes UP in smtp_relay and http_api"

# --- cluster settings: relay permission, route to the sink, API user, sending domain ----------
net="${project}_hato"
subnet="$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' "$net")"
gateway="$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$net")"
lb_ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$(container_of lb)")"
sink_ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$(container_of sink)")"
log "network $subnet, gateway $gateway, lb $lb_ip, sink $sink_ip"
# Clients reach the LB through Docker's port publishing, from the network's gateway address;
# with the PROXY protocol hato sees that address, not the LB's.
hato_in hato1 smtp allow add "$gateway"
hato_in hato1 route set '*' --host "$sink_ip" --port 2599
api_key="$(hato_in hato1 api user add app | jq -r .api_key)"
[ -n "$api_key" ] && [ "$api_key" != null ] || { problem "no API key from 'hato api user add'"; exit 1; }
hato_in hato1 domain add shop.test --algorithm ed25519 >/dev/null

# --- senders ---------------------------------------------------------------------------------
declare -A accepted=()   # subject -> queue id
declare -A attempted=()  # subject -> 1 (sent at least once, maybe with unknown outcome)
first_try_failures=0
retries_total=0

send_smtp() {  # send_smtp SUBJECT: 0 when "250 ... queued as" was received
    local out
    out="$(swaks --server "$smtp_lb" --timeout 30 --from app@shop.test --to "rcpt@sink.test" \
        --h-Subject "$1" --body "hello from test.sh: $1" 2>&1)" || true
    local id
    # swaks marks server lines "<-" ("<~" inside TLS) and failures "<**" / "***".
    id="$(sed -En 's/^<[-~] +250 2\.0\.0 Ok: queued as ([^ ]+).*/\1/p' <<<"$out" | tail -1)"
    if [ -n "$id" ]; then echo "$id"; return 0; fi
    echo "$(grep -E '^(<[-~]?\*\*|\*\*\*)' <<<"$out" | tail -1 | tr -s ' ')"
    return 1
}
send_http() {  # send_http SUBJECT
    local body out code
    body="$(jq -nc --arg k "$api_key" --arg s "$1" '{api_user:"app", api_key:$k,
        to:[{address:"rcpt@sink.test"}], from:{address:"app@shop.test"}, subject:$s,
        text:("hello from test.sh: " + $s)}')"
    out="$(curl -sS -m 30 -o - -w '\n%{http_code}' -H 'content-type: application/json' \
        -d "$body" "$http_lb/api/v2/emails/send.json" 2>&1)" || true
    code="$(tail -1 <<<"$out")"
    if [ "$code" = 200 ] && jq -e .id <<<"$(head -n -1 <<<"$out")" >/dev/null 2>&1; then
        jq -r .id <<<"$(head -n -1 <<<"$out")"; return 0
    fi
    echo "HTTP $code $(head -n -1 <<<"$out" | tr -d '\n' | cut -c1-200)"
    return 1
}
# send KIND SUBJECT: like a real client, retry a failed or unknown outcome (451/503/connection
# error) for up to 60 s; a message counts as accepted once a 250/200 came back.
send() {
    local kind="$1" subject="$2" try=0 res end=$(( $(date +%s) + 60 ))
    attempted[$subject]=1
    while :; do
        try=$((try + 1))
        if res="$("send_$kind" "$subject")"; then
            accepted[$subject]="$res"
            [ "$try" -eq 1 ] || log "  $subject accepted on attempt $try"
            return 0
        fi
        [ "$try" -gt 1 ] || first_try_failures=$((first_try_failures + 1))
        retries_total=$((retries_total + 1))
        log "  $subject attempt $try failed: $res"
        [ "$(date +%s)" -lt "$end" ] || { problem "$subject never accepted"; return 1; }
        sleep 1
    done
}
batch() {  # batch PHASE COUNT
    local i
    for i in $(seq 1 "$2"); do
        send smtp "hato-test $1-smtp-$i" || true
        send http "hato-test $1-http-$i" || true
    done
}

sink_subjects() { docker exec "$(container_of sink)" cat /sink/received.log | cut -f1; }
missing_subjects() {  # accepted subjects not (yet) at the sink, one per line
    local got s
    got="$(sink_subjects | sort -u)"
    for s in "${!accepted[@]}"; do grep -qxF "$s" <<<"$got" || echo "$s"; done
}
all_delivered() { [ -z "$(missing_subjects)" ]; }

# --- phase 1: healthy cluster ----------------------------------------------------------------
t1=$(date +%s)
batch before 20
log "phase 1: ${#accepted[@]} messages accepted through the LB in $(( $(date +%s) - t1 ))s"
wait_for 60 "phase 1 messages at the sink" all_delivered && log "phase 1: all delivered" ||
    problem "phase 1: not all accepted messages reached the sink"

# PROXY protocol: hato must have seen the client's address (the gateway), not the LB's.
rcv="$(docker exec "$(container_of sink)" grep -m1 'before-smtp-1' /sink/received.log | cut -f4)"
log "Received: $rcv"
if grep -qF "[$gateway]" <<<"$rcv" && ! grep -qF "[$lb_ip]" <<<"$rcv"; then
    log "PROXY protocol: hato saw the client address $gateway"
else
    problem "Received: header does not show the client address $gateway (PROXY protocol)"
fi

# --- phase 2: SIGKILL the leader, keep sending through the LB --------------------------------
leader="$(hato_in hato1 cluster status | jq -r .leader_id)"
victim="hato$leader"
log "phase 2: docker kill $victim (the leader)"
docker kill "$(container_of "$victim")" >/dev/null
tk=$(date +%s)
before_kill=${#accepted[@]}
batch after 20
log "phase 2: $(( ${#accepted[@]} - before_kill )) messages accepted in $(( $(date +%s) - tk ))s with $victim down ($first_try_failures first attempts failed, $retries_total retries)"
survivor=hato1; [ "$victim" != hato1 ] || survivor=hato2
new_leader="$(hato_in "$survivor" cluster status | jq -r .leader_id)"
log "new leader: hato$new_leader"
[ "$new_leader" != "$leader" ] || problem "the leader did not change after the kill"
lb_backend_down() { ! lb_backend_up smtp_relay 3 && lb_backend_up smtp_relay 2; }
wait_for 5 "HAProxy to mark $victim down" lb_backend_down || problem "HAProxy did not take $victim out"
wait_for 120 "every accepted message at the sink" all_delivered && log "phase 2: all ${#accepted[@]} accepted messages delivered" ||
    problem "messages accepted but not delivered: $(missing_subjects | tr '\n' ';')"

# --- phase 3: restart the killed node, it rejoins ---------------------------------------------
log "phase 3: docker start $victim"
tr0=$(date +%s)
docker start "$(container_of "$victim")" >/dev/null
wait_for 90 "$victim to see 3 voters and a leader" three_voters "$victim" ||
    problem "$victim did not rejoin"
node_ready() { docker exec "$(container_of "$victim")" hato-entrypoint ready; }
wait_for 60 "$victim /ready" node_ready || problem "$victim not ready after restart"
wait_for 30 "HAProxy to use $victim again" lb_backend_up smtp_relay 3 ||
    problem "HAProxy did not put $victim back"
log "$victim rejoined and is ready in $(( $(date +%s) - tr0 ))s"
caught_up() {
    local v l
    v="$(hato_in "$victim" cluster status | jq -r '.last_applied_index // empty')"
    l="$(hato_in "$survivor" cluster status | jq -r '.last_applied_index // empty')"
    [ -n "$v" ] && [ "$v" = "$l" ]
}
wait_for 30 "$victim to apply what the others applied" caught_up || log "(could not compare applied indexes)"
hato_in "$survivor" cluster status --all | sed 's/^/    /' || true
before_rejoin=${#accepted[@]}
batch rejoined 5
log "phase 3: $(( ${#accepted[@]} - before_rejoin )) more accepted"
wait_for 60 "phase 3 messages at the sink" all_delivered && log "phase 3: all delivered" ||
    problem "phase 3: not all accepted messages reached the sink"

# --- graceful stop: SIGTERM to PID 1 of a container drains and exits 0 -----------------------
for n in hato1 hato2 hato3; do [ "$n" = "$victim" ] || [ "$n" = "$survivor" ] || third="$n"; done
ts=$(date +%s%N)
docker stop -t 30 "$(container_of "$third")" >/dev/null
stop_ms=$(( ($(date +%s%N) - ts) / 1000000 ))
code="$(docker inspect -f '{{.State.ExitCode}}' "$(container_of "$third")")"
if [ "$code" = 0 ] && [ "$stop_ms" -lt 20000 ]; then
    log "docker stop $third: exit code 0 after ${stop_ms} ms (graceful)"
else
    problem "docker stop $third: exit code $code after ${stop_ms} ms"
fi

# --- summary ---------------------------------------------------------------------------------
received_lines="$(sink_subjects | wc -l)"
unique="$(sink_subjects | sort -u | wc -l)"
queue="$(hato_in "$survivor" queue stats 2>/dev/null | tr -d '\n' | tr -s ' ')"
log "attempted ${#attempted[@]}, accepted ${#accepted[@]}, sink lines $received_lines ($unique unique subjects, $((received_lines - unique)) duplicates), queue: $queue"
missing="$(missing_subjects | wc -l)"
[ "$missing" -eq 0 ] || problem "$missing accepted messages missing at the sink"
[ "${#accepted[@]}" -eq "${#attempted[@]}" ] || problem "$(( ${#attempted[@]} - ${#accepted[@]} )) messages never accepted"

log "timings: images ${build_secs}s, total $(( $(date +%s) - T0 ))s"
if [ "${#problems[@]}" -eq 0 ]; then
    status=PASS
    echo "PASS: container cluster (${#accepted[@]} messages accepted and delivered; leader $victim killed, rejoined)"
else
    echo "FAIL: container cluster"
    printf '  - %s\n' "${problems[@]}"
    exit 1
fi
