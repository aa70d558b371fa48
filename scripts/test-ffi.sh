#!/usr/bin/env bash
# The uniffi bindings (bindings/uniffi, crate mo-ffi; docs/ffi.md), from scripts/package.sh's
# release build (which builds mo-ffi's libmo_ffi.so and this workspace's uniffi-bindgen with the
# packaged binaries; nothing is compiled here):
#   1. regenerate the Kotlin and Swift bindings from target/release/libmo_ffi.so and fail, with
#      the diff, if they differ from the committed ones in bindings/uniffi/generated/;
#   2. generate the Ruby bindings into a temporary directory and run the Ruby suite
#      (bindings/uniffi/test, minitest; Debian's ruby and ruby-ffi from scripts/setup.sh) against
#      `sim://` consoles in this process and a `mod --demo` (target/release/mod) it starts.
# Usage: scripts/test-ffi.sh [--update]   (after scripts/package.sh; --update rewrites the
#        committed Kotlin and Swift instead of failing; exits non-zero on a failure)
set -euo pipefail

cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
release=${MO_FFI_PROFILE_DIR:-$target/release}
lib=$release/libmo_ffi.so
bindgen=$release/uniffi-bindgen
generated=bindings/uniffi/generated
start=$SECONDS

fail() {
  echo "test-ffi: FAILED: $*" >&2
  exit 1
}
step() { printf '\n==> ffi: %s\n' "$*"; }

for f in "$lib" "$bindgen" "$release/mod"; do
  [[ -f $f ]] || fail "$f is missing (run scripts/package.sh)"
done
command -v ruby >/dev/null || fail "ruby is not installed (run scripts/setup.sh)"
ruby -e 'require "ffi"' 2>/dev/null || fail "ruby-ffi is not installed (run scripts/setup.sh)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "generating Kotlin and Swift from $lib"
# --no-format: the output must not depend on whether ktlint or swiftformat is installed.
"$bindgen" generate --library "$lib" --language kotlin --language swift --no-format \
  --out-dir "$tmp/gen" >/dev/null
mkdir -p "$tmp/fresh/kotlin" "$tmp/fresh/swift"
( cd "$tmp/gen" && find . -name '*.kt' -exec cp --parents {} "$tmp/fresh/kotlin/" \; )
cp "$tmp/gen"/*.swift "$tmp/gen"/*.h "$tmp/gen"/*.modulemap "$tmp/fresh/swift/"
if [[ ${1-} == --update ]]; then
  rm -rf "$generated/kotlin" "$generated/swift"
  mkdir -p "$generated"
  cp -r "$tmp/fresh/kotlin" "$tmp/fresh/swift" "$generated/"
  echo "test-ffi: $generated rewritten: review and commit it"
elif ! diff -ru "$generated" "$tmp/fresh"; then
  fail "the committed $generated differs from a fresh generation: run scripts/test-ffi.sh --update and commit it"
fi

step "generating Ruby, running the suite (bindings/uniffi/test)"
"$bindgen" generate --library "$lib" --language ruby --no-format --out-dir "$tmp/ruby" >/dev/null
release_abs=$(realpath "$release")
export MO_FFI_RUBY_DIR=$tmp/ruby
export MO_MOD_BIN=$release_abs/mod
export LD_LIBRARY_PATH=$release_abs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Minitest reads ARGV when it runs: the files are taken out of it first.
ruby -e 'files = ARGV.dup; ARGV.clear; files.each { |f| require File.expand_path(f) }' \
  bindings/uniffi/test/test_*.rb
step "the Ruby benchmark once at a tiny size (bindings/uniffi/bench_read.rb; its figures are not checked)"
ruby bindings/uniffi/bench_read.rb 1 1M 20
printf 'test-ffi: passed in %d s\n' $((SECONDS - start))
