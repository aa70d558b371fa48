#!/usr/bin/env bash
# The language packages install and work without Rust (issue 19 item 2; docs/sdk.md): the wheel
# and the npm tarball scripts/package.sh built from its release build are installed into fresh
# places, and the Python and Node suites run there against the installed copies.
#   Python: a fresh venv (python3 -m venv in a temporary directory); `pip install --no-index` of the
#           wheel (target/wheels) and the test tools' wheels (target/py-wheels, scripts/setup.sh);
#           the suite (a copy of bindings/python/tests) runs from the temporary directory with
#           PYTHONPATH unset, so `import mo` can only be the installed wheel (checked first).
#   Node:   `npm install --offline` of the tarball (target/npm) into an empty directory; the suite
#           (a copy of bindings/node/test) runs there, so `@mo/console` resolves to
#           node_modules/@mo/console, through its "exports" for both `import` and `require`
#           (checked first).
# Both run with a PATH from which every directory holding cargo or rustc is removed (and
# `rustc` must then not be found), and drive the release `mod` of the same build. Then
# scripts/test-ffi.sh checks the uniffi bindings (generated Kotlin and Swift, the Ruby suite) from
# that build too.
# Usage: scripts/test-install.sh [pytest args]   (after scripts/package.sh; exits non-zero on a
#        failure; the temporary directory is removed on any exit)
set -euo pipefail

cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
repo=$PWD
start=$SECONDS

fail() {
  echo "test-install: FAILED: $*" >&2
  exit 1
}
step() { printf '\n==> install: %s\n' "$*"; }

# Exactly one of each package: a stale one of another version would make the choice arbitrary.
one() {
  local found=("$@")
  [[ ${#found[@]} -eq 1 && -f ${found[0]} ]] || fail "expected one file, found: ${found[*]} (run scripts/package.sh)"
  realpath "${found[0]}"
}
wheel=$(one "$target"/wheels/mo-*.whl)
tarball=$(one "$target"/npm/mo-console-*.tgz)
mod_bin=$(realpath "$target/release/mod")
py_wheels=$(realpath "${MO_PY_WHEELS:-$target/py-wheels}")
[[ -x $mod_bin ]] || fail "$mod_bin is missing (run scripts/package.sh)"
[[ -f $py_wheels/.mo-downloaded ]] || fail "$py_wheels has no test tool wheels (run scripts/setup.sh)"

# PATH without Rust: drop every directory that holds cargo or rustc (rustup's ~/.cargo/bin, a
# toolchain's bin/, /usr/bin if Debian's rustc is installed there).
norust=
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [[ -n $dir && ! -e $dir/cargo && ! -e $dir/rustc ]] && norust+=${norust:+:}$dir
done
if PATH=$norust command -v rustc >/dev/null 2>&1 || PATH=$norust command -v cargo >/dev/null 2>&1; then
  fail "rustc or cargo is still on the stripped PATH ($norust)"
fi
# Every command below runs with that PATH and without PYTHONPATH (nor CARGO_TARGET_DIR, which
# the suites would otherwise use to look for a debug mod).
# The suites run from copies; the examples they run are the checkout's (MO_EXAMPLES_DIR), and
# so are the SDK's operation table and generator (MO_REPO_DIR).
bare() {
  env -u PYTHONPATH -u CARGO_TARGET_DIR PATH="$norust" MO_MOD_BIN="$mod_bin" \
    MO_EXAMPLES_DIR="$repo/examples" MO_REPO_DIR="$repo" "$@"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mo-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step "Python: fresh venv, pip install --no-index $(basename "$wheel")"
t0=$SECONDS
# The venv's interpreter is the one python3 on the stripped PATH names.
bare python3 -m venv "$tmp/venv"
py=$tmp/venv/bin/python
bare "$py" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$py_wheels" \
  "$wheel" pytest==9.2.0 pytest-asyncio==1.5.0
mkdir "$tmp/py"
cp -r bindings/python/tests bindings/python/pytest.ini "$tmp/py/"
cd "$tmp/py"
# The module `mo` and its extension must come from the venv, with the wheel's stubs beside them.
bare "$py" - "$tmp/venv" <<'EOF'
import pathlib, sys
import mo, mo._mo
venv = pathlib.Path(sys.argv[1]).resolve()
pkg = pathlib.Path(mo.__file__).resolve().parent
for path in (pathlib.Path(mo.__file__), pathlib.Path(mo._mo.__file__)):
    assert venv in path.resolve().parents, f"{path} is not the installed wheel's (venv {venv})"
for name in ("py.typed", "_mo.pyi", "sync.py"):
    assert (pkg / name).is_file(), f"the installed package lacks {name}"
print(f"test-install: mo from {pkg}, extension {pathlib.Path(mo._mo.__file__).name}")
EOF
step "Python: pytest against the installed wheel (from $tmp/py)"
bare "$py" -m pytest -q -p no:cacheprovider "$@"
cd "$repo"
printf 'test-install: Python took %d s\n' $((SECONDS - t0))

step "Node: npm install $(basename "$tarball") into an empty directory"
t0=$SECONDS
mkdir "$tmp/node"
cd "$tmp/node"
bare npm install --offline --no-audit --no-fund --loglevel=error "$tarball"
mkdir test
cp "$repo"/bindings/node/test/*.mjs test/
installed=$tmp/node/node_modules/@mo/console
# `@mo/console` must resolve to the installed copy, its CommonJS and ES module entries, and the
# prebuilt addon must be in it.
bare node --input-type=module -e "
import { createRequire } from 'node:module'
const want = process.argv[1]
const got = { require: createRequire(process.cwd() + '/').resolve('@mo/console'), import: new URL(import.meta.resolve('@mo/console')).pathname }
if (got.require !== want + '/index.js' || got.import !== want + '/index.mjs') {
  console.error('test-install: @mo/console resolves to', got, 'not the install in', want)
  process.exit(1)
}
console.log('test-install: @mo/console from', want)
" "$installed"
compgen -G "$installed/mo.*.node" >/dev/null || fail "the installed package has no prebuilt addon"
step "Node: node --test against the installed package (from $tmp/node)"
# NODE_PATH: the example (in the checkout) requires the installed package, not the checkout's.
NODE_PATH="$tmp/node/node_modules" bare node --test --test-concurrency=1 test/*.test.mjs
cd "$repo"
printf 'test-install: Node took %d s\n' $((SECONDS - t0))

step "installed packages passed ($((SECONDS - start)) s)"

# The third language layer, uniffi (Kotlin, Swift, Ruby), from the same release build: the
# committed Kotlin and Swift are what generation gives, and the Ruby suite passes (docs/ffi.md).
step "the uniffi bindings (scripts/test-ffi.sh)"
"$repo"/scripts/test-ffi.sh
