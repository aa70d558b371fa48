#!/usr/bin/env bash
# Build the Node package (bindings/node) in the dev profile, check that the committed index.d.ts
# equals a fresh generation, and run its suite (node --test). Client-mode tests drive the built
# `mod` (target/debug/mod), so it is built first.
# Every cargo call here selects the whole workspace, as scripts/test.sh does: a `-p` build resolves
# the dependencies' features differently and compiles tokio, hyper, russh … a second time (which
# once filled CI's disk). After scripts/test.sh these builds are no-ops, except mo-node itself.
# Usage: ./scripts/test-node.sh   (from anywhere; exits non-zero on the first failure)
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=${MO_TEST_JOBS:-2}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> node: %s\n' "$*"; }

step "building mod for the client-mode tests (cargo build -j$jobs --workspace --all-targets)"
cargo build -j"$jobs" --workspace --all-targets

cd bindings/node
step "installing the build tools (npm ci)"
npm ci --no-audit --no-fund

committed=$(mktemp)
trap 'rm -f "$committed"' EXIT
cp index.d.ts "$committed"

step "building the addon and index.d.ts (node build.mjs --workspace, dev profile)"
node build.mjs --jobs "$jobs" --workspace

step "checking the committed index.d.ts against the fresh one"
if ! diff -u "$committed" index.d.ts; then
  echo "test-node: index.d.ts was out of date (now regenerated): review and commit it" >&2
  exit 1
fi

# The client-mode tests drive the `mod` just built, wherever cargo put it (CARGO_TARGET_DIR or a
# cargo config may move the target directory): never a stale one in target/, never none.
MO_MOD_BIN="$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/debug/mod"
export MO_MOD_BIN

if [[ ${MO_SUITES_RAN_INSTALLED:-0} == 1 ]]; then
  # scripts/test.sh: the whole suite already ran against the installed package
  # (scripts/test-install.sh); here only what the source tree adds (the addon, index.d.ts above).
  step "the suite ran against the installed package (test-install.sh), not again"
  exit 0
fi
step "running the suite (node --test)"
node --test --test-concurrency=1 test/*.test.mjs

step "node suite passed"
