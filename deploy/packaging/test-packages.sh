#!/usr/bin/env bash
# Check the packages built by deploy/package.sh on throwaway Debian 12 containers that run
# systemd as PID 1 (nothing is installed on this host):
#   .deb:     dpkg -i, user/dirs/permissions/conffile, start as user hato on port 25, accept a
#             mail, Restart=on-failure after SIGKILL, upgrade while running, graceful stop,
#             systemd-analyze security, dpkg -r (data kept), dpkg -P (data gone)
#   tarball:  install.sh, start, stop, install.sh --purge
# Usage: deploy/packaging/test-packages.sh   (after deploy/package.sh; needs docker and the
# hato-base:bookworm image from deploy/container/build.sh --base-only). Ends within 10 min.
set -euo pipefail
if [ -z "${HATO_TEST_WRAPPED:-}" ]; then
    exec timeout --kill-after=15 600 env HATO_TEST_WRAPPED=1 "$0" "$@"
fi
deploy="$(cd "$(dirname "$0")/.." && pwd)"
deb="$(ls -t "$deploy"/dist/hato_*.deb 2>/dev/null | head -1 || true)"
tarball="$(ls -t "$deploy"/dist/hato-*-linux-*.tar.gz 2>/dev/null | head -1 || true)"
[ -n "$deb" ] && [ -n "$tarball" ] || { echo "run deploy/package.sh first" >&2; exit 1; }
docker image inspect hato-base:bookworm >/dev/null 2>&1 || "$deploy/container/build.sh" --base-only

echo "== building the systemd test image"
docker build -q -t hato-systemd-test -f "$deploy/packaging/systemd-test.Dockerfile" "$deploy/packaging" >/dev/null

# systemd needs CAP_SYS_ADMIN (mount namespaces for the sandbox) and friends; not --privileged.
caps=()
for c in SYS_ADMIN NET_ADMIN SYS_PTRACE SYS_NICE MKNOD IPC_LOCK IPC_OWNER LINUX_IMMUTABLE \
         AUDIT_CONTROL AUDIT_READ SYSLOG DAC_READ_SEARCH LEASE NET_BROADCAST; do
    caps+=(--cap-add "$c")
done
# Every container carries this label, so cleanup finds them (machine runs in a subshell).
label="hato-test-packages=$$"
cleanup() {
    local ids
    ids="$(docker ps -aq --filter "label=$label")"
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'echo "interrupted (timeout?)"; exit 124' INT TERM

machine() {
    local cid
    cid="$(docker run -d --label "$label" "${caps[@]}" --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --cgroupns=private --tmpfs /run --tmpfs /run/lock --tmpfs /tmp hato-systemd-test)"
    for _ in $(seq 1 30); do
        case "$(docker exec "$cid" systemctl is-system-running 2>/dev/null || true)" in
            running | degraded) echo "$cid"; return ;;
        esac
        sleep 1
    done
    echo "systemd did not come up in the container" >&2
    return 1
}

failures=0
cid=""
ok() { echo "  ok   $*"; }
bad() { echo "  FAIL $*"; failures=$((failures + 1)); }
# check DESCRIPTION COMMAND...: run COMMAND in the current container.
check() {
    local what="$1"; shift
    if docker exec "$cid" bash -c "$*" >/tmp/hato-check.$$ 2>&1; then ok "$what"; else
        bad "$what"; sed 's/^/       /' /tmp/hato-check.$$ | tail -15
    fi
    rm -f /tmp/hato-check.$$
}
in_c() { docker exec "$cid" bash -c "$*"; }

# Make the shipped template a runnable one-node cluster inside the container.
configure='sed -i -e "s/10\.0\.0\.1/127.0.0.1/" -e "s/^bootstrap = false/bootstrap = true/" /etc/hato/hato.toml'
wait_ready='for i in $(seq 1 60); do
    if exec 3<>/dev/tcp/127.0.0.1/8400 2>/dev/null; then
        printf "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" >&3
        read -r -t 3 _ s _ <&3 || true; exec 3>&-
        [ "$s" = 200 ] && exit 0
    fi
    sleep 1
done; exit 1'

echo "== .deb: $(basename "$deb")"
cid="$(machine)"
docker cp "$deb" "$cid:/root/hato.deb"
check "dpkg -i" 'dpkg -i /root/hato.deb'
check "system user hato" 'id hato && [ "$(getent passwd hato | cut -d: -f7)" = /usr/sbin/nologin ]'
check "/var/lib/hato hato:hato 0750" '[ "$(stat -c "%U:%G %a" /var/lib/hato)" = "hato:hato 750" ]'
check "/etc/hato/hato.toml root:hato 0640, conffile" \
    '[ "$(stat -c "%U:%G %a" /etc/hato/hato.toml)" = "root:hato 640" ] && dpkg-query -W -f="\${Conffiles}" hato | grep -q /etc/hato/hato.toml'
check "shipped template validates" 'hato config check /etc/hato/hato.toml'
check "not started or enabled on a fresh install" '! systemctl is-active --quiet hato && ! systemctl is-enabled --quiet hato'
check "systemd-analyze verify" 'systemd-analyze verify hato.service'
in_c "$configure"
check "systemctl enable --now hato" 'systemctl enable --now hato'
check "/ready answers 200" "$wait_ready"
check "runs as hato with only CAP_NET_BIND_SERVICE" \
    'pid=$(systemctl show -p MainPID --value hato); [ "$(ps -o user= -p $pid)" = hato ] && getpcaps $pid 2>&1 | tee /dev/stderr | grep -q "cap_net_bind_service=eip" && ! getpcaps $pid 2>&1 | grep -q cap_sys'
check "listens on :25 and :587" 'ss -ltn | grep -q ":25 " && ss -ltn | grep -q ":587 "'
check "accepts a mail on port 25" \
    'hato smtp allow add 127.0.0.1 && hato route set "*" --host 127.0.0.1 --port 2599 &&
     swaks --server 127.0.0.1:25 --from a@example.com --to b@example.net --h-Subject "deb test" | grep "queued as"'
check "data written under /var/lib/hato only, mode 0077 umask" \
    '[ -n "$(ls -A /var/lib/hato)" ] && [ -z "$(find /var/lib/hato -mindepth 1 -perm /077 -print -quit)" ]'
echo "  systemd-analyze security: $(in_c 'systemd-analyze security hato --no-pager | tail -1')"
check "Restart=on-failure after SIGKILL" \
    'pid=$(systemctl show -p MainPID --value hato); kill -9 $pid; sleep 4; systemctl is-active --quiet hato &&
     [ "$(systemctl show -p NRestarts --value hato)" -ge 1 ] && [ "$(systemctl show -p MainPID --value hato)" != "$pid" ]'
check "/ready again after the restart" "$wait_ready"
check "upgrade (dpkg -i again) restarts a running node" \
    'pid=$(systemctl show -p MainPID --value hato); dpkg -i /root/hato.deb && sleep 2 && systemctl is-active --quiet hato &&
     [ "$(systemctl show -p MainPID --value hato)" != "$pid" ]'
check "/ready after the upgrade" "$wait_ready"
check "the mail is still queued after restarts" 'hato queue stats | tee /dev/stderr | grep -Eq "\"pending\": *[1-9]|pending[^0-9]*[1-9]"'
t0=$(date +%s%N)
check "systemctl stop: clean exit (SIGTERM drain, no SIGKILL)" \
    'systemctl stop hato && [ "$(systemctl show -p Result --value hato)" = success ]'
echo "  stop took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check "journald has the node's log" 'journalctl -u hato --no-pager | grep -qi hato'
check "dpkg -r: binary and unit gone, config and data kept" \
    'dpkg -r hato && [ ! -e /usr/bin/hato ] && [ ! -e /lib/systemd/system/hato.service ] && [ -f /etc/hato/hato.toml ] && [ -d /var/lib/hato ]'
check "dpkg -P: config and data gone" 'dpkg -P hato && [ ! -e /var/lib/hato ] && [ ! -e /etc/hato ]'

echo "== tarball: $(basename "$tarball")"
cid="$(machine)"
docker cp "$tarball" "$cid:/root/hato.tar.gz"
check "install.sh" 'cd /root && tar xzf hato.tar.gz && ./hato-*/install.sh'
check "files, user, permissions" \
    '[ -x /usr/local/bin/hato ] && grep -q "^ExecStart=/usr/local/bin/hato serve" /etc/systemd/system/hato.service &&
     id hato && [ "$(stat -c "%U:%G %a" /var/lib/hato)" = "hato:hato 750" ] && [ "$(stat -c "%U:%G %a" /etc/hato/hato.toml)" = "root:hato 640" ]'
in_c "$configure"
check "systemctl enable --now hato" 'systemctl enable --now hato'
check "/ready answers 200" "$wait_ready"
check "install.sh again (upgrade) keeps the config and restarts" \
    'cd /root && ./hato-*/install.sh && grep -q "^bootstrap = true" /etc/hato/hato.toml && systemctl is-active --quiet hato'
check "/ready after the upgrade" "$wait_ready"
check "install.sh --purge" \
    'cd /root && ./hato-*/install.sh --purge && [ ! -e /usr/local/bin/hato ] && [ ! -e /etc/systemd/system/hato.service ] && [ ! -e /var/lib/hato ] && ! systemctl is-active --quiet hato'

if [ "$failures" -eq 0 ]; then echo "PASS: packages"; else echo "FAIL: packages ($failures checks failed)"; exit 1; fi
