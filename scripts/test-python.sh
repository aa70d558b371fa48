#!/usr/bin/env bash
# Build the Python package `mo` without maturin (debug, in the shared target dir), stage it with
# its Python sources, check the stubs with mypy.stubtest and run its pytest suite.
# Usage: ./scripts/test-python.sh [pytest args]   (needs target/py-venv from scripts/setup.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=${MO_TEST_JOBS:-2}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
venv=${MO_PY_VENV:-target/py-venv}
stage=target/py-stage

if [ ! -x "$venv/bin/python" ]; then
  echo "test-python: $venv is missing; run ./scripts/setup.sh" >&2
  exit 1
fi

# The whole workspace, as scripts/test.sh builds it (a no-op after it): a `-p mo-python` build
# resolves the dependencies' features differently and compiles them all a second time. This
# builds lib_mo.so and the daemon `mod` for the client-mode tests.
echo "==> building mo-python and mod (cargo build -j$jobs --workspace --all-targets)"
cargo build -j"$jobs" --workspace --all-targets

# Where cargo put them: the shared target/ unless CARGO_TARGET_DIR (or a cargo config) says
# otherwise — the tests must find these binaries, not stale ones in target/.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

echo "==> staging the package in $stage"
rm -rf "$stage"
mkdir -p "$stage"
cp -r bindings/python/python/mo "$stage/mo"
cp "$target_dir/debug/lib_mo.so" "$stage/mo/_mo.abi3.so"

export PYTHONPATH="$PWD/$stage"
export MO_MOD_BIN="$target_dir/debug/mod"

echo "==> mypy.stubtest mo._mo"
"$venv/bin/python" -m mypy.stubtest mo._mo
echo "==> mypy on the package, the examples and the generator of its API types"
"$venv/bin/python" -m mypy --strict "$stage/mo" examples/python bindings/python/bench_read.py scripts/gen-sdk-types.py

if [[ ${MO_SUITES_RAN_INSTALLED:-0} == 1 ]]; then
  # scripts/test.sh: the whole suite already ran against the installed release wheel
  # (scripts/test-install.sh); here only what the source tree adds (stubtest, mypy above).
  echo "==> pytest: the suite ran against the installed wheel (test-install.sh), not again"
  exit 0
fi
echo "==> pytest bindings/python/tests"
"$venv/bin/python" -m pytest -q bindings/python/tests "$@"
