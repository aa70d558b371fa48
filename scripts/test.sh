#!/usr/bin/env bash
# Run every test of mo: install the test peers, build the whole workspace (the end-to-end tests
# run the built `mod` and `mo` binaries) and the fuzz targets, test the whole workspace, run every
# benchmark once at a tiny size, build the Debian packages, the Python wheel and the npm tarball
# and test them (the Debian ones in a fresh Debian root, as root; the wheel and the tarball
# installed into a fresh venv and an empty directory with no Rust on the PATH), then test the Node
# and Python packages from the source tree and the web console (its bundle rebuilt and compared
# with the committed one, then the browser tests).
# Usage: ./scripts/test.sh   (from anywhere; exits non-zero on the first failure)
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=${MO_TEST_JOBS:-2}
# Incremental caches are for editing, not for one full run: they added 3.8 GB to a clean build.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# Each step says how long the run has taken so far, so a slow stage shows in the CI log.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "installing test peers (scripts/setup.sh)"
./scripts/setup.sh

step "building the workspace (cargo build -j$jobs --workspace --all-targets)"
cargo build -j"$jobs" --workspace --all-targets

# The release build the packages need (12 minutes of both cores) runs from here on in the
# background at the lowest CPU and I/O priority, taking the time the tests leave idle (they
# mostly wait on peers and timers): it writes target/release, the tests use target/debug (cargo
# locks each separately). Its output is shown when the packages are built; it is stopped if
# this script ends first.
release_log=target/release-build.log
step "the release build starts in the background (scripts/package.sh --build-only, nice 19; log $release_log)"
setsid nice -n 19 ionice -c3 ./scripts/package.sh --build-only >"$release_log" 2>&1 &
release_pid=$!
stop_release() {
  if kill -0 "$release_pid" 2>/dev/null; then
    kill -TERM -- "-$release_pid" 2>/dev/null || true
  fi
}
trap stop_release EXIT

step "building the fuzz targets on stable, reusing the workspace build (scripts/fuzz-build.sh)"
./scripts/fuzz-build.sh

step "testing the workspace (cargo test -j$jobs --workspace --no-fail-fast)"
cargo test -j"$jobs" --workspace --no-fail-fast

step "the HTTP API against its OpenAPI document, Schemathesis (scripts/test-api-contract.sh)"
./scripts/test-api-contract.sh

step "every benchmark once at a tiny size, checks on (scripts/bench-smoke.sh)"
./scripts/bench-smoke.sh

step "waiting for the background release build (its log follows)"
release_status=0
wait "$release_pid" || release_status=$?
cat "$release_log"
if ((release_status != 0)); then
  echo "test: the release build (scripts/package.sh --build-only) failed with status $release_status" >&2
  exit 1
fi

step "the Debian packages: completions, man pages, cargo-deb, wheel, tarball (scripts/package.sh)"
./scripts/package.sh

step "the packages installed into a fresh Debian root (scripts/test-packages.sh)"
./scripts/test-packages.sh

step "the Python wheel and the npm tarball installed without Rust, their suites (scripts/test-install.sh)"
./scripts/test-install.sh

# Their suites ran whole against the installed packages above: from the source tree only what it
# adds (the dev addon and index.d.ts, stubtest and mypy).
step "the Node package from the source tree (scripts/test-node.sh)"
MO_SUITES_RAN_INSTALLED=1 ./scripts/test-node.sh

step "the Python package from the source tree (scripts/test-python.sh)"
MO_SUITES_RAN_INSTALLED=1 ./scripts/test-python.sh

step "the web console's committed bundle is what web/src builds (scripts/web-build.sh)"
./scripts/web-build.sh
if [[ -n $(git status --porcelain -- web/dist) ]]; then
  git status --short -- web/dist >&2
  git diff --stat -- web/dist >&2
  echo "test: web/dist differs from a rebuild: run scripts/web-build.sh and commit web/dist" >&2
  exit 1
fi

step "browser tests of the web console (scripts/test-web.sh)"
MO_WEB_NO_BUILD=1 ./scripts/test-web.sh

step "all tests passed"
