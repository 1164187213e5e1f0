#!/usr/bin/env bash
# The test command: installs what the tests need, then format check, clippy, build, and every
# test (unit, openraft storage suite, end-to-end with real hato processes).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/lib.sh
. deploy/lib.sh

ensure_build_deps
# Real SMTP peers used by the end-to-end tests.
ensure_packages swaks openssl postfix python3-aiosmtpd python3-dkim python3-nacl python3-venv \
    chromium chromium-driver
# Python peers from PyPI for the API tests: the official Customers Mail Cloud SDK and
# schemathesis (OpenAPI-driven fuzzing), in a venv kept next to the build cache.
export HATO_PY_VENV="${HATO_PY_VENV:-$HOME/.cache/hato-py}"
[ -x "$HATO_PY_VENV/bin/python" ] || /usr/bin/python3 -m venv "$HATO_PY_VENV"
"$HATO_PY_VENV/bin/pip" install -q --disable-pip-version-check \
    customersmailcloud==1.2.2 schemathesis==4.32.5 selenium==4.38.0
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hato-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo build"
cargo build --workspace --all-targets --locked
step "cargo test"
# Two test threads: each end-to-end test runs a cluster of real processes, and the machine
# has two cores.
cargo test --workspace --locked -- --test-threads=2
step "jepsen checker unit tests"
/usr/bin/python3 -m unittest jepsen/test_checker.py
step "jepsen: a short fault-injection campaign (3 nodes in network namespaces, every nemesis)"
if [ "$(id -u)" -eq 0 ]; then
    rm -rf "$CARGO_TARGET_DIR/tmp/jepsen-ci"
    HATO_BIN="$CARGO_TARGET_DIR/debug/hato" jepsen/run.sh --duration 60 --seed 20261127 \
        --out "$CARGO_TARGET_DIR/tmp/jepsen-ci"
else
    echo "not root: the campaign needs network namespaces; run jepsen/run.sh as root"
fi
step "deployment kit: .deb and tarball under systemd, the compose cluster behind HAProxy"
if docker info >/dev/null 2>&1; then
    HATO_BIN="$CARGO_TARGET_DIR/debug/hato" deploy/package.sh
    deploy/packaging/test-packages.sh
    HATO_BIN="$CARGO_TARGET_DIR/debug/hato" deploy/container/test.sh
else
    echo "no Docker engine: the deployment kit tests need one (see deploy/README.md)"
fi
step "done"
