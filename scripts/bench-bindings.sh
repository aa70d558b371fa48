#!/usr/bin/env bash
# Issue 19's per-binding benchmark: read throughput of a flooding sim console and expect latency
# (send_line of an `echo` + expect of its output line, p50/p99) through the Rust facade
# (`mo-bench facade`), Python (bindings/python/bench_read.py), Node (bindings/node/bench-read.mjs)
# and Ruby through uniffi (bindings/uniffi/bench_read.rb), one after another in the same run with the same parameters, then one table.
#
# Needs mo-bench, the Python module and the Node addon built in BIN_DIR (default target/debug):
#   cargo build -j2 -p mo-bench -p mo-python -p mo-node        (add --release for real figures,
#   with MO_BENCH_BIN_DIR=target/release)
# and target/py-venv (scripts/setup.sh). The Python module is staged in a temporary directory; the
# Node addon is copied next to bindings/node/native.js (as build.mjs does).
# Usage: scripts/bench-bindings.sh [SECONDS=5 [RATE=max [ITERATIONS=200]]]
# Debug builds on a shared machine give figures for comparing bindings in one run, not absolutes.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${1:-5}
rate=${2:-max}
iterations=${3:-200}
bin_dir=${MO_BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
venv=${MO_PY_VENV:-target/py-venv}
limit=$(( ${seconds%.*} * 3 + 120 ))

for f in "$bin_dir/mo-bench" "$bin_dir/lib_mo.so" "$bin_dir/libmo_node.so" "$venv/bin/python"; do
  if [[ ! -e $f ]]; then
    echo "bench-bindings: $f is missing (cargo build -j2 -p mo-bench -p mo-python -p mo-node; scripts/setup.sh)" >&2
    exit 1
  fi
done

stage=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$stage" "$out"' EXIT
cp -r bindings/python/python/mo "$stage/mo"
cp "$bin_dir/lib_mo.so" "$stage/mo/_mo.abi3.so"
addon=$(cd bindings/node && node -e 'import("./addon-name.mjs").then((m) => console.log(m.addonName()))')
cp "$bin_dir/libmo_node.so" "bindings/node/$addon"

# run NAME COMMAND...: one binding's benchmark; its `BENCH` line goes into the table.
run() {
  local name=$1
  shift
  printf '\n==> %s: %s\n' "$name" "$*"
  if ! timeout "$limit" "$@" | tee -a "$out"; then
    echo "bench-bindings: $name failed" >&2
    exit 1
  fi
}

run rust "$bin_dir/mo-bench" facade --seconds "$seconds" --rate "$rate" --iterations "$iterations"
run python env PYTHONPATH="$stage" "$venv/bin/python" bindings/python/bench_read.py "$seconds" "$rate" "$iterations"
run node node bindings/node/bench-read.mjs "$seconds" "$rate" "$iterations"
# Ruby through uniffi (bindings/uniffi/bench_read.rb), when BIN_DIR has the generator to make
# its bindings from libmo_ffi.so (scripts/package.sh's release build has; a debug one needs
# `cargo build -p mo-ffi --features bindgen`).
if [[ -x $bin_dir/uniffi-bindgen && -e $bin_dir/libmo_ffi.so ]]; then
  "$bin_dir/uniffi-bindgen" generate --library "$bin_dir/libmo_ffi.so" --language ruby --no-format \
    --out-dir "$stage/ruby" >/dev/null
  run ruby env MO_FFI_RUBY_DIR="$stage/ruby" LD_LIBRARY_PATH="$(realpath "$bin_dir")" \
    ruby bindings/uniffi/bench_read.rb "$seconds" "$rate" "$iterations"
else
  printf '\n==> ruby: not in this run: %s/uniffi-bindgen is missing (cargo build -p mo-ffi --features bindgen)\n' "$bin_dir"
fi

printf '\nflood %s for %s s, %s expect round trips (%s)\n' "$rate" "$seconds" "$iterations" "$bin_dir"
printf '%-8s %10s %12s %14s %14s\n' binding MB/s lines/s "expect p50 ms" "expect p99 ms"
awk '$1 == "BENCH" { printf "%-8s %10s %12s %14s %14s\n", $2, $3, $4, $5, $6 }' "$out"
