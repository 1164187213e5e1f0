#!/bin/bash
# Container entrypoint for a Hato node.
#   serve (default)  write /etc/hato/hato.toml from the environment (unless HATO_CONFIG names
#                    a mounted file) and exec `hato serve`
#   ready            exit 0 if this node's GET /ready answers 200 (the image's health check)
#   anything else    run `hato ARGS...` (client subcommands, e.g. `cluster status`)
#
# Environment (only NODE_ID is required):
#   NODE_ID            this node's id (positive integer, never reused)
#   BOOTSTRAP          "true" on exactly one node of a new cluster (default false)
#   JOIN               comma-separated internode addresses to join, e.g. "hato1:9400"
#   ADVERTISE          host name or IP other nodes and clients use for this node
#                      (default: the container's host name)
#   SMTP_HOSTNAME      greeting / EHLO name (default: ADVERTISE)
#   CONSOLE            "true" (default) serves the HTTPS console on 8443, "false" turns it off
#   LOG_LEVEL          tracing filter (default info)
#   HATO_CLUSTER_SECRET  cluster.secret (>= 16 characters; same on every node; the CLI reads it too)
#   WRITE_TIMEOUT_MS, DELIVERY_ENABLED, DELIVERY_LEASE_SECS, DELIVERY_RETRY_SCHEDULE_SECS
#   ("60,300,900"), DELIVERY_EXPIRE_AFTER_SECS, DELIVERY_CONNECT_TIMEOUT_SECS,
#   DELIVERY_COMMAND_TIMEOUT_SECS, DELIVERY_DATA_TIMEOUT_SECS: the keys of the same name
#   (see hato.example.toml); unset = the built-in default.
#   HATO_CONFIG        path of a complete config file to use instead (mount it read-only)
set -euo pipefail

die() { echo "hato-entrypoint: $*" >&2; exit 64; }

# Checks run first, in this shell (a `die` inside $(...) would only end the subshell).
check_str() {
    case "$2" in *'"'* | *'\'* | *$'\n'*) die "$1 must not contain quotes, backslashes or newlines: $2" ;; esac
}
check_int() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, got '$2'"; }
check_bool() { [[ "$2" =~ ^(true|false)$ ]] || die "$1 must be true or false, got '$2'"; }

check_env() {
    [ -n "${NODE_ID:-}" ] || die "NODE_ID is required (a positive integer, unique in the cluster)"
    check_int NODE_ID "$NODE_ID"
    check_bool BOOTSTRAP "${BOOTSTRAP:-false}"
    check_bool CONSOLE "${CONSOLE:-true}"
    check_str ADVERTISE "${ADVERTISE:-}"
    check_str JOIN "${JOIN:-}"
    check_str SMTP_HOSTNAME "${SMTP_HOSTNAME:-}"
    check_str HATO_CLUSTER_SECRET "${HATO_CLUSTER_SECRET:-}"
    check_str LOG_LEVEL "${LOG_LEVEL:-}"
    [ -z "${DELIVERY_ENABLED:-}" ] || check_bool DELIVERY_ENABLED "$DELIVERY_ENABLED"
    local v
    for v in WRITE_TIMEOUT_MS DELIVERY_LEASE_SECS DELIVERY_EXPIRE_AFTER_SECS DELIVERY_CONNECT_TIMEOUT_SECS \
             DELIVERY_COMMAND_TIMEOUT_SECS DELIVERY_DATA_TIMEOUT_SECS; do
        [ -z "${!v:-}" ] || check_int "$v" "${!v}"
    done
    [ -z "${DELIVERY_RETRY_SCHEDULE_SECS:-}" ] || [[ "$DELIVERY_RETRY_SCHEDULE_SECS" =~ ^[0-9]+(,[0-9]+)*$ ]] ||
        die "DELIVERY_RETRY_SCHEDULE_SECS must look like 60,300,900"
}

str() { printf '"%s"' "$1"; }

write_config() {
    local file="$1" advertise join="" j
    check_env
    advertise="${ADVERTISE:-$(hostname)}"
    local seeds=()
    IFS=, read -r -a seeds <<<"${JOIN:-}"
    for j in "${seeds[@]}"; do
        j="${j// /}"
        [ -n "$j" ] || continue
        join+="${join:+, }$(str "$j")"
    done
    {
        echo "# Written by hato-entrypoint from the container environment at $(date -u +%FT%TZ)."
        echo "node_id = $NODE_ID"
        echo 'data_dir = "/var/lib/hato"'
        echo '[listen]'
        echo 'raft = "0.0.0.0:9400"'
        echo 'http = "0.0.0.0:8400"'
        if [ "${CONSOLE:-true}" = true ]; then
            echo 'console = "0.0.0.0:8443"'
        else
            echo 'console = ""'
        fi
        echo '[advertise]'
        echo "raft = $(str "$advertise:9400")"
        echo "http = $(str "$advertise:8400")"
        echo '[cluster]'
        echo "bootstrap = ${BOOTSTRAP:-false}"
        echo "join = [$join]"
        [ -z "${HATO_CLUSTER_SECRET:-}" ] || echo "secret = $(str "$HATO_CLUSTER_SECRET")"
        [ -z "${WRITE_TIMEOUT_MS:-}" ] || echo "write_timeout_ms = $WRITE_TIMEOUT_MS"
        echo '[smtp]'
        echo "hostname = $(str "${SMTP_HOSTNAME:-$advertise}")"
        local addr mode proxy
        for l in "0.0.0.0:25 relay false" "0.0.0.0:587 submission false" \
                 "0.0.0.0:10025 relay true" "0.0.0.0:10587 submission true"; do
            read -r addr mode proxy <<<"$l"
            echo '[[smtp.listener]]'
            echo "addr = \"$addr\""
            echo "mode = \"$mode\""
            echo 'tls = "starttls"'
            echo "proxy_protocol = $proxy"
        done
        echo '[delivery]'
        [ -z "${DELIVERY_ENABLED:-}" ] || echo "enabled = $DELIVERY_ENABLED"
        [ -z "${DELIVERY_LEASE_SECS:-}" ] || echo "lease_secs = $DELIVERY_LEASE_SECS"
        [ -z "${DELIVERY_RETRY_SCHEDULE_SECS:-}" ] || echo "retry_schedule_secs = [$DELIVERY_RETRY_SCHEDULE_SECS]"
        [ -z "${DELIVERY_EXPIRE_AFTER_SECS:-}" ] || echo "expire_after_secs = $DELIVERY_EXPIRE_AFTER_SECS"
        [ -z "${DELIVERY_CONNECT_TIMEOUT_SECS:-}" ] || echo "connect_timeout_secs = $DELIVERY_CONNECT_TIMEOUT_SECS"
        [ -z "${DELIVERY_COMMAND_TIMEOUT_SECS:-}" ] || echo "command_timeout_secs = $DELIVERY_COMMAND_TIMEOUT_SECS"
        [ -z "${DELIVERY_DATA_TIMEOUT_SECS:-}" ] || echo "data_timeout_secs = $DELIVERY_DATA_TIMEOUT_SECS"
        echo '[log]'
        echo "level = $(str "${LOG_LEVEL:-info}")"
    } > "$file.tmp"
    mv "$file.tmp" "$file"
}

case "${1:-serve}" in
    serve)
        [ "$#" -eq 0 ] || shift
        if [ -n "${HATO_CONFIG:-}" ]; then
            [ -r "$HATO_CONFIG" ] || die "HATO_CONFIG=$HATO_CONFIG is not a readable file"
            config="$HATO_CONFIG"
        else
            config=/etc/hato/hato.toml
            write_config "$config"
        fi
        exec /usr/bin/hato serve --config "$config" "$@"
        ;;
    ready)
        # GET /ready on the local HTTP port with bash's /dev/tcp (no curl in the image).
        exec 3<>/dev/tcp/127.0.0.1/8400 || exit 1
        printf 'GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
        read -r -t 3 _ status _ <&3 || exit 1
        [ "$status" = 200 ]
        ;;
    *)
        exec /usr/bin/hato "$@"
        ;;
esac
