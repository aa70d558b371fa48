#!/usr/bin/env bash
# Build the web console's bundle web/dist/ (index.html, assets/app.js, assets/app.css) from
# web/src with the exact npm packages of web/package-lock.json (`npm ci`, install scripts off).
# The build is deterministic: CI runs this and then `git diff --exit-code web/dist` to check that
# the committed bundle (embedded in `mod` at compile time) is the one the sources give.
# Usage: scripts/web-build.sh   (needs node and npm; nothing else is downloaded than the packages)
set -euo pipefail

cd "$(dirname "$0")/../web"
for cmd in node npm; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "web-build: $cmd is missing: install Debian's nodejs and npm (scripts/setup.sh does)" >&2
    exit 1
  fi
done
# Reinstall only when the lock file changed since the last install.
stamp=node_modules/.mo-lock
if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
# Type-check (strict), then bundle.
node node_modules/typescript/bin/tsc -p .
node build.mjs
echo "web-build: web/dist built ($(du -sh dist | cut -f1))"
