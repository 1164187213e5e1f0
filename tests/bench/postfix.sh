#!/usr/bin/env bash
# A private Postfix relay for the benchmarks, entirely under one directory; the system Postfix
# (/etc/postfix, /var/spool/postfix, port 25) is neither used nor touched.
#
#   tests/bench/postfix.sh start DIR LISTEN_PORT RELAY_PORT
#   tests/bench/postfix.sh stop DIR
#
# `start` writes DIR/main.cf and DIR/master.cf (DIR is the instance's config_directory), with
# queue_directory DIR/queue, data_directory DIR/data and the log in DIR/maillog (postlogd).
# smtpd listens on 127.0.0.1:LISTEN_PORT only and relays everything from 127.0.0.0/8 to
# [127.0.0.1]:RELAY_PORT, without DNS. The queue stays durable as in any Postfix: cleanup
# fsyncs the queue file before smtpd answers 250 (that is the point of the comparison).
# Nothing is delivered locally. Then it waits (up to 20 s) for the port to accept connections.
# `stop` runs `postfix -c DIR stop` and kills whatever of this instance is still alive.
#
# Must run as root (Postfix's master starts as root and drops to the `postfix` user).
#
# Why `postfix -c DIR` works without touching /etc/postfix: Postfix insists that a non-default
# configuration directory be listed in the default main.cf's alternate_config_directories (or
# multi_instance_directories) only for its set-gid commands run by a non-root user (`postqueue
# -c DIR -p` as nobody: "unauthorized configuration directory name"); mail_conf_read() skips
# the check for euid 0. As root, `postfix -c DIR`, `postconf -c DIR` and `postqueue -c DIR`
# take DIR as it is: no postmulti, no alternate_config_directories (so run them as root). What does break a scratch instance,
# and is handled here: every directory above DIR must be searchable by the postfix user (the
# master opens DIR/data/master.lock as that user; `mktemp -d` gives 0700, so the caller must
# chmod 711 it; `start` checks and says so), the defaults that point at the system instance's
# queue and data directories, maillog_file outside maillog_file_prefixes (/var by default),
# a maillog_file without a postlog service in master.cf, chroot (Debian's master.cf chroots
# smtpd, cleanup, ... into the queue directory, which has no /etc in it here), and myhostname
# (else it comes from the resolver).
# Because the queue and data directories sit inside the config directory, `postfix start`
# logs harmless "not owned by root" warnings for them (its check walks config_directory).
set -euo pipefail

usage() { echo "usage: $0 start DIR LISTEN_PORT RELAY_PORT | stop DIR" >&2; exit 2; }

# PIDs of every process of the instance in $1: all of them (master and its children) run
# with the instance's queue directory as their working directory.
instance_pids() {
    local q p
    q="$(readlink -f "$1/queue")"
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/cwd" 2>/dev/null)" = "$q" ] && echo "${p#/proc/}"
    done
    return 0
}

write_config() { # dir listen relay
    local d=$1 listen=$2 relay=$3
    cat > "$d/main.cf" <<EOF
# Private benchmark instance written by tests/bench/postfix.sh; not the system Postfix.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydomain = localdomain
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
biff = no
readme_directory = no

# Log to a file in the instance directory (postlogd, see master.cf), not syslog.
maillog_file = $d/maillog
maillog_file_prefixes = $d

# Relay everything from loopback to one host, without DNS.
mynetworks = 127.0.0.0/8
mynetworks_style = host
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
relayhost = [127.0.0.1]:$relay
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no

# No local delivery.
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =

# No content inspection, no TLS.
header_checks =
mime_header_checks =
nested_header_checks =
body_checks =
smtpd_tls_security_level = none
smtp_tls_security_level = none

# Limits: room for the benchmark's concurrent clients, no anvil throttling.
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtpd_client_event_limit_exceptions = 127.0.0.0/8
EOF
    # No chroot anywhere (the queue directory has no /etc, resolver or libraries in it);
    # smtpd only on 127.0.0.1:listen; the services a relay needs, plus postlog for maillog_file.
    cat > "$d/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$listen inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

start() { # dir listen relay
    [ $# -eq 3 ] || usage
    local d listen=$2 relay=$3 _
    [ "$(id -u)" -eq 0 ] || { echo "$0: must run as root" >&2; exit 1; }
    mkdir -p "$1"
    d="$(readlink -f "$1")"
    if [ -n "$(instance_pids "$d")" ]; then echo "$0: an instance is already running in $d" >&2; exit 1; fi
    # Postfix wants its directories owned by root and not group/other writable; the queue and
    # data directories themselves are created by `postfix start` (post-install create-missing).
    chown root:root "$d"; chmod 755 "$d"
    mkdir -p "$d/queue" "$d/data"
    chown root:root "$d/queue"; chmod 755 "$d/queue"
    chown postfix: "$d/data"; chmod 700 "$d/data"
    # The master opens DIR/data/master.lock as the postfix user, so every directory above DIR
    # must be searchable by it (mktemp -d makes 0700 directories: chmod 711 those).
    if ! runuser -u postfix -- test -w "$d/data"; then
        echo "$0: user postfix cannot reach $d/data; make the directories above $d searchable (chmod o+x)" >&2
        exit 1
    fi
    touch "$d/maillog"
    write_config "$d" "$listen" "$relay"
    postconf -c "$d" >/dev/null   # parses the new main.cf; fails loudly on a typo
    if ! postfix -c "$d" start >>"$d/start.log" 2>&1; then
        echo "$0: postfix -c $d start failed:" >&2
        tail -n 20 "$d/start.log" "$d/maillog" >&2
        exit 1
    fi
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$0: private Postfix in $d is not accepting on 127.0.0.1:$listen after 20 s; maillog:" >&2
    tail -n 30 "$d/maillog" >&2
    stop "$d"
    exit 1
}

stop() { # dir
    [ $# -eq 1 ] || usage
    local d pids _
    d="$(readlink -f "$1")"
    [ -f "$d/main.cf" ] || { echo "$0: no Postfix instance in $d" >&2; exit 1; }
    postfix -c "$d" stop >>"$d/start.log" 2>&1 || true
    for _ in $(seq 1 50); do
        [ -z "$(instance_pids "$d")" ] && return 0
        sleep 0.1
    done
    pids="$(instance_pids "$d")"
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) usage ;;
esac
