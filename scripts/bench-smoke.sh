#!/usr/bin/env bash
# Run every mo-bench benchmark once at a tiny size: a smoke test that each still runs and that its
# own correctness check passes (every flood line in the record log once and in order, every SOL
# byte as written, every shell answering, search agreeing with grep...). The figures are printed,
# never asserted: debug builds on a shared machine say nothing about speed.
#
# Needs the test peers (scripts/setup.sh: ipmi_sim, snmpd, sushy-emulator, sshd and the OpenSSH
# client, which rtt also types through, nats-server) and
# mo-bench and mod and mo-agent built side by side, as `cargo build --workspace --all-targets`
# leaves them in target/debug (rtt, ws-attach, agent and cluster start that mod; agent starts
# that mo-agent; cluster starts a nats-server from the peers venv; the bindings' comparison,
# scripts/bench-bindings.sh, takes the Python module and Node addon from there too).
# Usage: scripts/bench-smoke.sh [BIN_DIR]   (default target/debug; exits non-zero if any failed)
set -euo pipefail

cd "$(dirname "$0")/.."
bin_dir=${1:-${CARGO_TARGET_DIR:-target}/debug}
bench=$bin_dir/mo-bench
# A benchmark that hangs fails instead of holding up the run.
limit=${MO_BENCH_SMOKE_TIMEOUT:-180}

# Every benchmark and its tiny size, one line each. Keep in step with bench/src/main.rs: the check
# below fails when mo-bench has a subcommand this list does not run.
SMOKE=(
  "flood --consoles 4 --seconds 1 --rate 1M --compare-fsync"
  "flood-unix --consoles 4 --lines 2000"
  "flood-unix --consoles 4 --lines 200 --rate 11520"
  "flood-pty --consoles 4 --lines 2000"
  "idle --consoles 20 --quiet-ms 500"
  "viewers --viewers 3 --rate 100k --seconds 1"
  "rtt --keys 50"
  "gang --consoles 5 --rounds 2"
  "policy --devices 200 --users 50 --groups 10 --checks 10000"
  "power-status --devices 10 --redfish 2 --rounds 1"
  "search --size-mb 5"
  "scan --size-mb 2"
  "discover --addresses 64 --answering 10"
  "ssh-connect --consoles 3"
  "sol --bytes 65536 --seconds 30"
  "ws-attach --attaches 10"
  "agent --agents 1,2 --ports 3 --seconds 1 --warmup 0.5 --keys 50"
  "facade --seconds 1 --rate 1M --iterations 20"
  "cluster --nodes 3 --consoles 20 --keys 50 --lease-ttl 5s --flood 10 --flood-seconds 0.5 --lag-sample 5 --verify-sample 2 --no-baseline"
)
# Subcommands that are not benchmarks: `all` runs every benchmark at full size, `help` is clap's.
NOT_BENCHMARKS=(all help)

for f in "$bench" "$bin_dir/mod" "$bin_dir/mo-agent"; do
  if [[ ! -x $f ]]; then
    echo "bench-smoke: $f is missing: build it first (cargo build --workspace --all-targets)" >&2
    exit 1
  fi
done

# The subcommands mo-bench has: the `Commands:` section of its help, one per line at two spaces.
mapfile -t subcommands < <("$bench" --help | awk '/^Commands:/ {on = 1; next} on && /^$/ {exit} on && /^  [^ ]/ {print $1}')
if [[ ${#subcommands[@]} -eq 0 ]]; then
  echo "bench-smoke: found no subcommands in \`$bench --help\`" >&2
  exit 1
fi
missing=()
for sub in "${subcommands[@]}"; do
  listed=no
  for entry in "${SMOKE[@]}" "${NOT_BENCHMARKS[@]}"; do
    [[ ${entry%% *} == "$sub" ]] && listed=yes
  done
  [[ $listed == yes ]] || missing+=("$sub")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bench-smoke: mo-bench has benchmarks the smoke list does not run: ${missing[*]}" >&2
  echo "bench-smoke: add a tiny-size line for each to SMOKE in $0" >&2
  exit 1
fi

failed=()
start=$SECONDS
for entry in "${SMOKE[@]}"; do
  read -ra args <<<"$entry"
  printf '\n--> mo-bench %s\n' "$entry"
  t0=$SECONDS
  if RUST_BACKTRACE=0 timeout --kill-after=10 "$limit" "$bench" "${args[@]}"; then
    printf -- '--> ok (%d s)\n' $((SECONDS - t0))
  else
    status=$?
    printf -- '--> FAILED with status %d after %d s: mo-bench %s\n' "$status" $((SECONDS - t0)) "$entry"
    failed+=("${args[0]}")
  fi
done

# extra NAME COMMAND...: a benchmark outside mo-bench, under the same time limit.
extra() {
  local name=$1 t0=$SECONDS status=0
  shift
  printf '\n--> %s\n' "$*"
  timeout --kill-after=10 "$limit" "$@" || status=$?
  if [[ $status -eq 0 ]]; then
    printf -- '--> ok (%d s)\n' $((SECONDS - t0))
  else
    printf -- '--> FAILED with status %d after %d s: %s\n' "$status" $((SECONDS - t0)) "$*"
    failed+=("$name")
  fi
}

# The web console's benchmark (a Python Playwright script in Debian's Chromium, not a mo-bench
# subcommand): tiny size against the same mod.
venv=${MO_PEERS_VENV:-target/peers-venv}
extra web env MO_BIN_DIR="$bin_dir" "$venv/bin/python" bench/web/bench.py --tiny
# The Rust facade against the Python and Node bindings (issue 19's comparison), tiny.
extra bindings env MO_BENCH_BIN_DIR="$bin_dir" scripts/bench-bindings.sh 1 1M 20

printf '\nbench-smoke: %d benchmarks in %d s' $((${#SMOKE[@]} + 2)) $((SECONDS - start))
if [[ ${#failed[@]} -gt 0 ]]; then
  printf '; FAILED: %s\n' "${failed[*]}"
  exit 1
fi
printf '; all passed their checks\n'
