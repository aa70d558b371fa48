#!/usr/bin/env bash
# The HTTP API keeps its contract (issue 24): Schemathesis (pinned, in the peers venv) tests a real
# `mod --demo --http` against its own /api/v1/openapi.json — every check, the stateful phase
# (links between operations) included, with a fixed seed and a time budget. Any failure fails.
# Then the same with a token of a `viewer`-only user: every write must be refused with 403 and
# nothing may change (the devices, users, events, device groups, user groups, roles, secret kinds
# and grants are compared before and after).
#
# Runs the `mod` and `mo` cargo already built (scripts/test.sh builds the workspace first); it
# compiles nothing.
# Usage: ./scripts/test-api-contract.sh
# Environment: MO_API_SEED (default 24), MO_API_MAX_TIME (seconds per run; default 50),
#   MO_API_WORKERS (default 1), MO_PEERS_VENV (default target/peers-venv).
set -euo pipefail

cd "$(dirname "$0")/.."
venv=${MO_PEERS_VENV:-target/peers-venv}
seed=${MO_API_SEED:-24}
max_time=${MO_API_MAX_TIME:-50}
workers=${MO_API_WORKERS:-1}
st="$venv/bin/schemathesis"

fail() {
  echo "test-api-contract: $*" >&2
  exit 1
}

[ -x "$st" ] || fail "$st is missing: run ./scripts/setup.sh (it installs schemathesis into $venv)"

# Where cargo put the binaries (the shared target/ unless CARGO_TARGET_DIR says otherwise).
target_dir=$(cargo metadata --format-version 1 --no-deps |
  "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
mod="$target_dir/debug/mod"
mo="$target_dir/debug/mo"
for bin in "$mod" "$mo"; do
  [ -x "$bin" ] || fail "$bin is missing: build it first (cargo build -j2 -p mo-daemon -p mo-cli)"
done

tmp=$(mktemp -d)
data="$tmp/data"
pid=
stop_daemon() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
cleanup() {
  stop_daemon
  rm -rf "$tmp"
}
trap cleanup EXIT

# A daemon of our own on free loopback ports; its stderr says where it listens and, in demo mode,
# prints the demo user's token.
"$mod" --demo --http 127.0.0.1:0 --ssh 127.0.0.1:0 --data-dir "$data" --log warn 2>"$tmp/mod.log" &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^export MO_TOKEN=' "$tmp/mod.log" && break
  kill -0 "$pid" 2>/dev/null || {
    cat "$tmp/mod.log" >&2
    fail "mod exited before it listened"
  }
  sleep 0.1
done
grep -q '^export MO_TOKEN=' "$tmp/mod.log" || {
  cat "$tmp/mod.log" >&2
  fail "mod printed no demo token within 30 s"
}
admin_token=$(sed -n 's/^export MO_TOKEN=//p' "$tmp/mod.log" | head -n1)
base=$(sed -n 's|.*(HTTP API, \(http://[^/]*\)/api/v1/).*|\1|p' "$tmp/mod.log" | head -n1)
[ -n "$base" ] || {
  cat "$tmp/mod.log" >&2
  fail "cannot find the HTTP address in mod's output"
}
echo "test-api-contract: mod (pid $pid) serves $base, data directory $data"

# The viewer: may list and spy on every device, nothing else.
"$mo" --data-dir "$data" user add viewer --password-stdin <<<'viewer-pw-24' >/dev/null
"$mo" --data-dir "$data" grant add viewer viewer all >/dev/null
viewer_token=$("$mo" --data-dir "$data" token add viewer | grep -o 'mo_[A-Za-z0-9_.-]*' | head -n1)
[ -n "$viewer_token" ] || fail "mo token add viewer printed no token"

run_schemathesis() {
  local name=$1 token=$2 config=$3
  shift 3
  local started=$SECONDS rc=0
  echo "==> schemathesis ($name): seed $seed, ${max_time}s, $workers workers"
  # Its status is kept by hand: called under `||`, this function runs without `set -e`.
  "$st" --config-file "$config" run "$base/api/v1/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --seed "$seed" \
    --max-time "$max_time" \
    --workers "$workers" \
    --request-timeout 10 \
    --generation-database none \
    --header "Authorization: Bearer $token" \
    --no-color \
    --report junit,ndjson --report-dir "$tmp/report-$name" \
    "$@" || rc=$?
  echo "test-api-contract: schemathesis ($name) took $((SECONDS - started)) s (exit $rc)"
  return "$rc"
}

# What a run may not change: every device with its settings, the users, the events with who
# acknowledged them, the device groups, user groups, roles, the kinds of secret of each device and
# the grants — read with the admin token, normalized JSON.
snapshot() {
  "$venv/bin/python" - "$base" "$admin_token" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
devices = {d["name"]: {k: v for k, v in get("/api/v1/devices/" + d["name"]).items()
                       if k not in ("state", "viewers", "error", "modem")}
           for d in get("/api/v1/devices")}
users = get("/api/v1/users")
events = [{k: e.get(k) for k in ("id", "device", "acked_by")} for e in get("/api/v1/events?limit=10000")]
groups = get("/api/v1/groups")
grants = get("/api/v1/grants")
usergroups = get("/api/v1/usergroups")
roles = get("/api/v1/roles")
secrets = {name: get("/api/v1/devices/" + name + "/secrets") for name in devices}
print(json.dumps({"devices": devices, "users": users, "events": events, "groups": groups,
                  "grants": grants, "usergroups": usergroups, "roles": roles,
                  "secrets": secrets}, sort_keys=True, indent=1))
PY
}

# The viewer run first: every write refused, nothing changed. (First, so that nothing the admin
# run generates — a grant to the viewer, its user removed — can change what the viewer may do.)
snapshot >"$tmp/before.json"
run_schemathesis viewer "$viewer_token" scripts/api-contract-viewer.toml || {
  tail -n 50 "$tmp/mod.log" >&2
  fail "schemathesis found contract failures with the viewer's token (seed $seed)"
}
snapshot >"$tmp/after.json"
if ! diff -u "$tmp/before.json" "$tmp/after.json" >"$tmp/changes.diff"; then
  cat "$tmp/changes.diff" >&2
  fail "the viewer's run changed the site (above: before/after)"
fi
echo "test-api-contract: the viewer's run changed nothing ($(grep -c '"name"' "$tmp/before.json") names compared)"

# The admin run: everything, the stateful phase creating and removing devices and users.
run_schemathesis admin "$admin_token" scripts/api-contract.toml || {
  tail -n 50 "$tmp/mod.log" >&2
  fail "schemathesis found contract failures with the admin token (seed $seed)"
}
stop_daemon

echo "test-api-contract: all passed"
