#!/usr/bin/env bash
# Build the container images for a Hato cluster, without pulling anything from a registry:
#   hato-base:bookworm   Debian 12 minbase made with debootstrap (rootfs cached in
#                        $HOME/.cache/hato-docker/, so later runs only re-import it)
#   hato:<version>       hato-base + the hato binary + entrypoint (also tagged hato:latest)
#   hato-lb:<version>    hato-base + HAProxy and deploy/container/haproxy.cfg (also :latest)
#   hato-sink:latest     (only with --with-sink) an aiosmtpd sink MX for deploy/container/test.sh
# Usage: deploy/container/build.sh [--rebuild-base] [--base-only] [--with-sink]
# Env:   HATO_BIN (default ~/.cache/hato-target/release/hato, else .../debug/hato),
#        DEBIAN_MIRROR (default: the host's apt mirror, else http://deb.debian.org/debian).
# Needs root (debootstrap), docker, and the Debian mirror reachable (also from docker build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../lib.sh"

rebuild_base=0 with_sink=0 base_only=0
for arg in "$@"; do
    case "$arg" in
        --rebuild-base) rebuild_base=1 ;;
        --base-only) base_only=1 ;;
        --with-sink) with_sink=1 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

cache="$HOME/.cache/hato-docker"
rootfs_tar="$cache/bookworm-minbase.tar"
mkdir -p "$cache"

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror="$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
fi
if [ -z "$mirror" ]; then
    mirror="$(awk '/^deb / && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

t0=$(date +%s)
if [ "$rebuild_base" -eq 1 ] || [ ! -s "$rootfs_tar" ]; then
    ensure_packages debootstrap
    work="$(mktemp -d /tmp/hato-rootfs.XXXXXX)"
    trap 'as_root rm -rf "$work"' EXIT
    echo "debootstrap bookworm from $mirror (a few minutes)..."
    # apt pulls in libstdc++6 and libgcc-s1, which the hato binary links against.
    as_root debootstrap --variant=minbase --include=ca-certificates,netbase \
        bookworm "$work/rootfs" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
        { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # Security and point-release updates for images built FROM it (apt-get in Dockerfiles).
    security="${DEBIAN_SECURITY_MIRROR:-$(awk '/^URIs:/ && $2 ~ /debian-security\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
    security="${security:-http://deb.debian.org/debian-security}"
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
        "$mirror" "$mirror" "$security" | as_root tee "$work/rootfs/etc/apt/sources.list" >/dev/null
    as_root chroot "$work/rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
        >> "$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    as_root rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/cache/apt/*.bin \
        "$work"/rootfs/var/lib/apt/lists/* \
        "$work"/rootfs/var/log/* "$work"/rootfs/tmp/*
    as_root tar -C "$work/rootfs" --numeric-owner -cf "$rootfs_tar.tmp" .
    mv "$rootfs_tar.tmp" "$rootfs_tar"
    as_root rm -rf "$work"
    trap - EXIT
    docker rmi -f hato-base:bookworm >/dev/null 2>&1 || true
fi
if [ "$rebuild_base" -eq 1 ] || ! docker image inspect hato-base:bookworm >/dev/null 2>&1; then
    docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$rootfs_tar" hato-base:bookworm >/dev/null
fi
t1=$(date +%s)
echo "base image hato-base:bookworm ready ($((t1 - t0)) s)"
[ "$base_only" -eq 0 ] || exit 0

hato_bin="${HATO_BIN:-}"
if [ -z "$hato_bin" ]; then
    for c in "$HOME/.cache/hato-target/release/hato" "$HOME/.cache/hato-target/debug/hato"; do
        if [ -x "$c" ]; then hato_bin="$c"; break; fi
    done
fi
if [ -z "$hato_bin" ] || [ ! -x "$hato_bin" ]; then
    echo "no hato binary: build one (cargo build --release) or set HATO_BIN" >&2
    exit 1
fi
version="$("$hato_bin" --version | awk '{print $2}')"
echo "hato binary: $hato_bin (version $version)"


# A small build context: the Dockerfile, the entrypoint and a stripped copy of the binary.
ctx="$(mktemp -d /tmp/hato-ctx.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$here/entrypoint.sh" "$ctx/"
cp "$hato_bin" "$ctx/hato"
strip --strip-debug "$ctx/hato" 2>/dev/null || true
docker build -q -t "hato:$version" -t hato:latest "$ctx" >/dev/null
t2=$(date +%s)
echo "image hato:$version ready ($((t2 - t1)) s)"

docker build -q -t "hato-lb:$version" -t hato-lb:latest -f "$here/Dockerfile.lb" "$here" >/dev/null
t3=$(date +%s)
echo "image hato-lb:$version ready ($((t3 - t2)) s)"

if [ "$with_sink" -eq 1 ]; then
    docker build -q -t hato-sink:latest -f "$here/sink/Dockerfile" "$here/sink" >/dev/null
    t4=$(date +%s)
    echo "image hato-sink:latest ready ($((t4 - t3)) s)"
fi
