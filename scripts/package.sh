#!/usr/bin/env bash
# Build the Debian packages of mo into target/debian/ (docs/packaging.md):
#   mod       the daemon, its systemd unit, the system user `mo`, /etc/mo/mod.toml
#   mo        the command-line tool
#   mo-agent  the console-server agent and its (not enabled) systemd unit
# each with bash, zsh and fish completions and man pages; and the language packages, which install
# without Rust (tested by scripts/test-install.sh; docs/sdk.md):
#   target/wheels/mo-VERSION-cp39-abi3-PLATFORM.whl   the Python package `mo`
#   target/npm/mo-console-VERSION.tgz                 the Node package @mo/console, with its
#                                                     prebuilt addon for this platform
# and, for scripts/test-ffi.sh, the uniffi bindings' library target/release/libmo_ffi.so and the
# workspace's target/release/uniffi-bindgen (docs/ffi.md).
#
# One release build of only the packaged binaries and the three bindings' libraries (`cargo build
# --release -p mo-daemon -p mo-cli -p mo-agent -p mo-python -p mo-node -p mo-ffi`, mo-ffi with its
# `bindgen` feature for the uniffi-bindgen command; with MO_PACKAGE_BENCH=1
# also mo-bench, for scripts/bench-smoke.sh): one call, so the dependencies' features are unified
# once and every dependency is compiled once for all of them. Then the completions and man pages
# those binaries print (`--generate-completions`, `--generate-man`), then cargo-deb with --no-build
# on those binaries. cargo-deb comes from apt if installed, else it is installed once with `cargo
# install --locked` into target/tools/cargo-deb and reused. The wheel is assembled from the built
# lib_mo.so by scripts/build-wheel.py and the tarball packed from the built libmo_node.so by
# bindings/node/pack.mjs: neither compiles again (maturin would, see scripts/build-wheel.py).
# Usage: scripts/package.sh [--build-only]   (exits non-zero on the first failure; prints the
# packages' paths). --build-only stops after the release build (and installing cargo-deb):
# scripts/test.sh runs that in the background while the tests run, then this script whole, whose
# build is then up to date.
set -euo pipefail

build_only=0
case ${1:-} in
  '') ;;
  --build-only) build_only=1 ;;
  *) echo "package.sh: unknown argument \`$1\` (usage: scripts/package.sh [--build-only])" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
jobs=${MO_TEST_JOBS:-2}
target=${CARGO_TARGET_DIR:-target}
release=$target/release
# cargo-deb's asset paths say target/release/generated (it maps target/release to the real
# target directory).
generated=$release/generated

step() { printf '\n==> package: %s\n' "$*"; }

cargo_deb=
if command -v cargo-deb >/dev/null 2>&1; then
  cargo_deb=$(command -v cargo-deb)
else
  tools=$target/tools/cargo-deb
  cargo_deb=$tools/bin/cargo-deb
  if [[ ! -x $cargo_deb ]]; then
    step "installing cargo-deb into $tools (once; about a minute)"
    cargo install --locked --root "$tools" -j"$jobs" cargo-deb
  fi
fi

# mo-python with pyo3's extension-module feature, as maturin builds it (no libpython linked: the
# interpreter that imports the module provides it); no other crate depends on pyo3.
crates=(-p mo-daemon -p mo-cli -p mo-agent -p mo-python -p mo-node -p mo-ffi
  --features mo-python/extension-module --features mo-ffi/bindgen)
if [[ ${MO_PACKAGE_BENCH:-0} == 1 ]]; then
  crates+=(-p mo-bench)
fi
step "release build: cargo build --release -j$jobs ${crates[*]}"
t0=$SECONDS
cargo build --release -j"$jobs" "${crates[@]}"
printf 'package: release build took %d s\n' $((SECONDS - t0))
if ((build_only)); then
  exit 0
fi

step "completions and man pages into $generated"
rm -rf "$generated"
mkdir -p "$generated"
for bin in mod mo mo-agent; do
  "$release/$bin" --generate-completions bash >"$generated/$bin.bash"
  "$release/$bin" --generate-completions zsh >"$generated/_$bin"
  "$release/$bin" --generate-completions fish >"$generated/$bin.fish"
  "$release/$bin" --generate-man "$generated/man-$bin"
done
# `mo agent` has a page mo-agent.1 like the mo-agent program: the mo-agent package keeps that
# name (the `mo agent` subcommands keep theirs: mo-agent-add.1 …; mo.1 lists `mo agent`).
rm -f "$generated/man-mo/mo-agent.1"
gzip -9n "$generated"/man-*/*.1

step "cargo deb --no-build"
mkdir -p "$target/debian"
for crate in mo-daemon mo-cli mo-agent; do
  "$cargo_deb" --no-build --strip -p "$crate" --output "$target/debian/"
done
ls -l "$target"/debian/*.deb

version=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "mo-python"))')
step "the Python wheel from $release/lib_mo.so (scripts/build-wheel.py)"
rm -rf "$target/wheels"
python3 scripts/build-wheel.py "$release/lib_mo.so" "$version" "$target/wheels"
step "the npm tarball with $release/libmo_node.so as its prebuilt addon (bindings/node/pack.mjs)"
rm -rf "$target/npm"
node bindings/node/pack.mjs "$release/libmo_node.so" "$target/npm"
ls -l "$target"/wheels/*.whl "$target"/npm/*.tgz
