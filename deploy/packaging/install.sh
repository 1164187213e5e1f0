#!/bin/sh
# Install Hato from this tarball on a machine where the .deb is not an option.
#   sudo ./install.sh              install or upgrade (keeps /etc/hato/hato.toml and data)
#   sudo ./install.sh --uninstall  stop and remove the service and binary (keeps config + data)
#   sudo ./install.sh --purge      --uninstall, then delete /etc/hato and /var/lib/hato (all data)
# Installs /usr/local/bin/hato, /etc/systemd/system/hato.service, /etc/hato/hato.toml (only
# if absent), the system user "hato" and /var/lib/hato (0750). The service is not started on
# a fresh install: edit /etc/hato/hato.toml, then `systemctl enable --now hato`.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
BIN=/usr/local/bin/hato
UNIT=/etc/systemd/system/hato.service

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
has_systemd() { [ -d /run/systemd/system ]; }

uninstall() {
    if has_systemd; then
        systemctl stop hato.service 2>/dev/null || true
        systemctl disable hato.service 2>/dev/null || true
    fi
    rm -f "$UNIT" "$BIN"
    if has_systemd; then systemctl daemon-reload; fi
    echo "removed $BIN and $UNIT (kept /etc/hato and /var/lib/hato)"
}

case "${1:-}" in
    --uninstall)
        uninstall
        exit 0
        ;;
    --purge)
        uninstall
        rm -rf /etc/hato /var/lib/hato
        echo "deleted /etc/hato and /var/lib/hato (the system user hato is kept)"
        exit 0
        ;;
    "") ;;
    *) echo "usage: $0 [--uninstall | --purge]" >&2; exit 2 ;;
esac

if command -v dpkg-query >/dev/null 2>&1 &&
   dpkg-query -W -f '${Status}' hato 2>/dev/null | grep -q 'install ok installed'; then
    echo "the hato Debian package is installed; upgrade it with the .deb instead" >&2
    exit 1
fi

getent group hato >/dev/null || groupadd --system hato
getent passwd hato >/dev/null ||
    useradd --system --gid hato --home-dir /var/lib/hato --no-create-home \
        --shell /usr/sbin/nologin --comment "Hato email delivery" hato

running=0
if has_systemd && systemctl is-active --quiet hato.service; then running=1; fi

install -m 0755 "$here/bin/hato" "$BIN.new"
mv -f "$BIN.new" "$BIN"
sed -e "s#/usr/bin/hato#$BIN#g" -e "s#/usr/share/doc/hato#/usr/local/share/doc/hato#g" "$here/systemd/hato.service" > "$UNIT.new"
chmod 0644 "$UNIT.new"
mv -f "$UNIT.new" "$UNIT"

install -d -o root -g hato -m 0750 /etc/hato
if [ ! -e /etc/hato/hato.toml ]; then
    install -o root -g hato -m 0640 "$here/hato.toml" /etc/hato/hato.toml
    echo "installed /etc/hato/hato.toml: edit it (node_id, advertise, bootstrap/join, hostname)"
else
    install -o root -g hato -m 0640 "$here/hato.toml" /etc/hato/hato.toml.dist
    echo "kept /etc/hato/hato.toml (the shipped template is /etc/hato/hato.toml.dist)"
fi
install -d -o hato -g hato -m 0750 /var/lib/hato
chown hato:hato /var/lib/hato
chmod 0750 /var/lib/hato
install -d -m 0755 /usr/local/share/doc/hato
install -m 0644 "$here/hato.example.toml" "$here/README.md" /usr/local/share/doc/hato/

"$BIN" --version
if has_systemd; then
    systemctl daemon-reload
    if [ "$running" -eq 1 ]; then
        systemctl restart hato.service
        echo "restarted hato.service"
    else
        echo "next: edit /etc/hato/hato.toml, then: systemctl enable --now hato"
    fi
else
    echo "systemd is not running here: start the node with"
    echo "  runuser -u hato -- $BIN serve --config /etc/hato/hato.toml"
fi
