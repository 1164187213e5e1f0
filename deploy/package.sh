#!/usr/bin/env bash
# Package Hato for installation on Debian 12 / Linux x86_64 hosts. Produces in deploy/dist/:
#   hato_<version>_<arch>.deb            dpkg -i / apt install ./hato_<version>_<arch>.deb
#   hato-<version>-linux-x86_64.tar.gz   tar xzf ...; sudo ./hato-<version>-linux-x86_64/install.sh
# Usage: deploy/package.sh [--build]
#   The binary is $HATO_BIN, else ~/.cache/hato-target/release/hato, else .../debug/hato.
#   --build (or no binary found) runs `cargo build --release --locked --bin hato` first.
# Env: HATO_MAINTAINER ("Name <email>", default: the last commit's author), NO_LINT=1.
set -euo pipefail
deploy="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$deploy/.." && pwd)"
. "$deploy/lib.sh"

build=0
case "${1:-}" in
    --build) build=1 ;;
    "") ;;
    *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac

target="${CARGO_TARGET_DIR:-$HOME/.cache/hato-target}"
bin="${HATO_BIN:-}"
if [ -z "$bin" ] && [ "$build" -eq 0 ]; then
    for c in "$target/release/hato" "$target/debug/hato"; do
        if [ -x "$c" ]; then bin="$c"; break; fi
    done
fi
if [ -z "$bin" ]; then
    ensure_build_deps
    (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release --locked --bin hato)
    bin="$target/release/hato"
fi
[ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 1; }
ensure_packages dpkg-dev fakeroot binutils

# Version: what the binary says, else the workspace's package version.
version="$("$bin" --version 2>/dev/null | awk '{print $2}')" || true
if [ -z "$version" ]; then
    version="$(awk -F'"' '/^\[workspace.package\]/{w=1} w && /^version *=/{print $2; exit}' "$root/Cargo.toml")"
fi
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "cannot tell the version ($version)" >&2; exit 1; }
arch="$(dpkg --print-architecture)"
march="$(uname -m)"
maintainer="${HATO_MAINTAINER:-$(git -C "$root" log -1 --format='%an <%ae>' 2>/dev/null || true)}"
maintainer="${maintainer:-Hato maintainers <hato@invalid>}"
echo "packaging hato $version ($arch) from $bin"

dist="$deploy/dist"
mkdir -p "$dist"
stage="$(mktemp -d /tmp/hato-pkg.XXXXXX)"
trap 'rm -rf "$stage"' EXIT

# --- Debian package -------------------------------------------------------------------
deb="$stage/deb"
install -d -m 0755 "$deb/DEBIAN" "$deb/usr/bin" "$deb/lib/systemd/system" "$deb/etc/hato" \
    "$deb/usr/share/doc/hato"
install -m 0755 "$bin" "$deb/usr/bin/hato"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$deb/usr/bin/hato"
install -m 0644 "$deploy/systemd/hato.service" "$deb/lib/systemd/system/hato.service"
# 0644 in the package; postinst makes it root:hato 0640 (it may hold cluster.secret).
install -m 0644 "$deploy/hato.toml" "$deb/etc/hato/hato.toml"
install -m 0644 "$deploy/hato.example.toml" "$deb/usr/share/doc/hato/hato.example.toml"
install -m 0644 "$deploy/README.md" "$deb/usr/share/doc/hato/README.md"
cat > "$deb/usr/share/doc/hato/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hato

Files: *
Copyright: $(git -C "$root" log -1 --format=%cd --date=format:%Y 2>/dev/null || date +%Y) the Hato authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
chmod 0644 "$deb/usr/share/doc/hato/copyright"
{
    echo "hato ($version) unstable; urgency=medium"
    echo
    echo "  * Build of $(git -C "$root" describe --always --dirty 2>/dev/null || echo "$version")."
    echo
    echo " -- $maintainer  $(date -R)"
} | gzip -9n > "$deb/usr/share/doc/hato/changelog.gz"
chmod 0644 "$deb/usr/share/doc/hato/changelog.gz"
install -m 0755 "$deploy/packaging/debian/postinst" "$deploy/packaging/debian/prerm" \
    "$deploy/packaging/debian/postrm" "$deb/DEBIAN/"
echo /etc/hato/hato.toml > "$deb/DEBIAN/conffiles"

# Shared-library dependencies (libc6, libgcc-s1, libstdc++6, ...) from dpkg-shlibdeps.
depends="$(
    cd "$stage" && mkdir -p debian && printf 'Source: hato\n\nPackage: hato\nArchitecture: any\n' > debian/control &&
    dpkg-shlibdeps -O "$deb/usr/bin/hato" 2>/dev/null | sed -n 's/^shlibs:Depends=//p'
)" || true
depends="${depends:-libc6 (>= 2.36), libgcc-s1, libstdc++6}"
installed_kb="$(du -sk --exclude=DEBIAN "$deb" | cut -f1)"
cat > "$deb/DEBIAN/control" <<CONTROL
Package: hato
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kb
Depends: $depends, passwd
Section: mail
Priority: optional
Description: Raft-replicated clustered email delivery appliance
 Hato accepts mail by SMTP relay/submission and a Customers Mail Cloud
 compatible HTTP API, replicates every accepted message to a quorum of
 nodes with Raft before acknowledging it, and delivers it with DKIM
 signing, retries and bounce handling. Run three or five nodes behind a
 TCP load balancer.
CONTROL
debfile="$dist/hato_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$deb" "$debfile" >/dev/null
echo "built $debfile ($(du -h "$debfile" | cut -f1))"

# --- tarball with install.sh ------------------------------------------------------------
name="hato-$version-linux-$march"
tb="$stage/$name"
install -d -m 0755 "$tb/bin" "$tb/systemd"
install -m 0755 "$deb/usr/bin/hato" "$tb/bin/hato"
install -m 0644 "$deploy/systemd/hato.service" "$tb/systemd/hato.service"
install -m 0644 "$deploy/hato.toml" "$deploy/hato.example.toml" "$deploy/README.md" "$tb/"
install -m 0755 "$deploy/packaging/install.sh" "$tb/install.sh"
tarfile="$dist/$name.tar.gz"
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$tarfile" "$name"
echo "built $tarfile ($(du -h "$tarfile" | cut -f1))"

(cd "$dist" && sha256sum "$(basename "$debfile")" "$(basename "$tarfile")" > "SHA256SUMS-$version")

if [ "${NO_LINT:-0}" != 1 ] && command -v lintian >/dev/null 2>&1; then
    echo "lintian:"
    lintian --tag-display-limit 0 "$debfile" || true
fi
