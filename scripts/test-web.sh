#!/usr/bin/env bash
# Browser tests of the web console (tests/web, issue 16): pytest + Playwright (pinned in the peers
# venv by scripts/setup.sh) driving Debian's Chromium (/usr/bin/chromium, launched by path; nothing
# downloads a browser) against a real `mod --demo` with its own data directory and a real snmpd.
# Screenshots of every page at 1280x800 and 390x844 land in target/web-screenshots/.
# Usage: scripts/test-web.sh [pytest args]
set -euo pipefail

cd "$(dirname "$0")/.."
jobs=${MO_TEST_JOBS:-2}
venv=${MO_PEERS_VENV:-target/peers-venv}

if [[ ! -x $venv/bin/python ]]; then
  echo "test-web: $venv is missing: run scripts/setup.sh" >&2
  exit 1
fi
# `mod` embeds web/dist at compile time: build it (and `mo`, which the tests use for users).
# scripts/test.sh has built the whole workspace already and sets MO_WEB_NO_BUILD=1 (a `-p` build
# resolves features differently and would compile the dependencies again).
if [[ -z ${MO_WEB_NO_BUILD:-} ]]; then
  echo "==> building mod and mo (cargo build -j$jobs -p mo-daemon -p mo-cli)"
  cargo build -j"$jobs" -p mo-daemon -p mo-cli
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
  "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export MO_BIN_DIR="$target_dir/debug"
rm -rf target/web-screenshots
echo "==> browser tests (tests/web)"
"$venv/bin/python" -m pytest -p no:cacheprovider -q tests/web "$@"
echo "==> screenshots: $(ls target/web-screenshots | wc -l) files in target/web-screenshots/"
