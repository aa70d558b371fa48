#!/bin/sh
# Write tests/fixtures/store-vN/ for the current store schema N (issue 21 item 7): a small data
# directory (mo.db with two devices, two users, a device group and grant, an API token, a sealed
# secret and an event; its secret.key; token.txt with the token) that later releases must open.
# Run it once per release whose schema changed, and commit the new directory; never regenerate an
# existing one. The test mo-store/tests/store_fixture.rs opens every fixture with the current build.
set -eu
cd "$(dirname "$0")/.."
MO_FIXTURE_OUT="$PWD/tests/fixtures" cargo test -j2 -p mo-store --test store_fixture -- \
    --ignored --exact generate --nocapture
