#!/usr/bin/env bash
# Compile and link every fuzz target (fuzz/, a cargo workspace of its own) with the stable
# toolchain: a plain `cargo build` of the libfuzzer-sys targets, without cargo-fuzz's sanitizer and
# coverage flags (those need nightly). That proves the targets build against today's crates; to
# fuzz, see fuzz/README.md.
#
# The build goes into the main workspace's target directory, after `cargo build --workspace
# --all-targets`, so that the crates.io dependencies are reused rather than compiled a second
# time: fuzz/Cargo.toml matches the workspace's dev profile and features for that. If it no
# longer does, this script names the crates it compiled again (the build still passes). mo's own
# five library crates are always compiled again (cargo names them by their path from the
# workspace root, which differs for fuzz/), about a minute on two cores.
# Usage: scripts/fuzz-build.sh   (exits non-zero if a target does not compile)
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=${MO_TEST_JOBS:-2}
# The same settings as the main build (scripts/test.sh), or nothing could be reused.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo build -j"$jobs" --manifest-path fuzz/Cargo.toml --bins 2>&1 | tee "$log"; then
  echo "fuzz-build: a fuzz target does not compile" >&2
  exit 1
fi
# What compiled besides the fuzz package, the two crates only it uses and mo's own crates.
again=$(sed -n 's/^ *Compiling \([^ ]*\) v.*/\1/p' "$log" |
  grep -vx -e mo-fuzz -e libfuzzer-sys -e arbitrary -e mo-core -e mo-drivers -e mo-store -e mo-client -e mo-api ||
  true)
if [[ -n $again ]]; then
  echo "fuzz-build: note: compiled again for the fuzz build (not reused from the workspace build):" \
    "$(echo "$again" | tr '\n' ' ')" >&2
  echo "fuzz-build: if the workspace build ran first, align fuzz/Cargo.toml's profile or features" >&2
fi
