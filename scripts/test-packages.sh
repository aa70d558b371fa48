#!/usr/bin/env bash
# Test the Debian packages scripts/package.sh built (target/debian/) in a fresh Debian root
# (docs/packaging.md): debootstrap a minimal root of the host's suite from the host's mirror into
# a temporary directory, install mod, mo and mo-agent there with dpkg -i, and check
#   - the system users mo and mo-agent (in dialout), /var/lib/mo, the conffile /etc/mo/mod.toml;
#   - `mod --check-config --config /etc/mo/mod.toml` accepts the packaged configuration;
#   - the packaged mod, started in the root as the user mo with the packaged configuration (and
#     --ssh on a free loopback port), tells a notification socket READY=1 (Type=notify), and
#     RELOADING=1 … READY=1 on SIGHUP, STOPPING=1 on SIGTERM;
#   - a user and a device added with the packaged `mo`: the host's OpenSSH client logs in with a
#     key and the shell lists the device;
#   - `systemd-analyze verify` accepts mod.service and mo-agent.service;
#   - completions (bash, zsh, fish) and man pages are where the shells and man look.
# The root is removed afterwards (whatever was mounted in it unmounted first), also on failure.
# The packages debootstrap fetches are kept in target/debootstrap/SUITE-minbase-….tgz
# (--make-tarball once, --unpack-tarball after), so later runs need no mirror.
#
# Needs root (debootstrap, chroot) and debootstrap, systemd (systemd-analyze), openssh-client,
# python3 (scripts/setup.sh installs them).
# Usage: scripts/test-packages.sh   (after scripts/package.sh; exits non-zero on a failure)
set -euo pipefail

cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
start=$SECONDS

fail() {
  for log in mod.log ssh.out notify.log; do
    if [[ -n ${root:-} && -s $root/$log ]]; then
      echo "--- $log (last lines)" >&2
      tail -n 30 "$root/$log" >&2
    fi
  done
  echo "test-packages: FAILED: $*" >&2
  exit 1
}
say() { printf 'test-packages: %s\n' "$*"; }

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, chroot): run it as root, as CI does"
for need in /usr/sbin/debootstrap:debootstrap systemd-analyze:systemd ssh:openssh-client \
  ssh-keygen:openssh-client python3:python3 chroot:coreutils; do
  command -v "${need%%:*}" >/dev/null 2>&1 ||
    fail "${need%%:*} is missing: install the Debian package ${need##*:} (scripts/setup.sh)"
done

# The newest .deb of each package.
debs=()
for pkg in mod mo mo-agent; do
  deb=$(ls -t "$target"/debian/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  [[ -n $deb ]] || fail "no $target/debian/${pkg}_*.deb: build the packages first (scripts/package.sh)"
  debs+=("$deb")
done

# The host's suite and mirror (its first Debian source that is not the security archive).
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $suite ]] || fail "cannot tell the host's Debian suite (VERSION_CODENAME in /etc/os-release)"
mirror=$(
  {
    awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    awk '/^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
  } | awk '!/security/ && !found {print; found = 1}'
)
[[ -n $mirror ]] || fail "found no Debian mirror in /etc/apt/sources.list{,.d}"

root=
daemon=
listener=
mounted=()
cleanup() {
  local status=$?
  set +e
  for pid in $daemon $listener; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  if [[ -n $root && -d $root ]]; then
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
      umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
    done
    # Never remove through a mount point that is still there.
    if findmnt -rn -o TARGET | grep -q "^$root"; then
      echo "test-packages: left $root in place: something is still mounted in it" >&2
      status=1
    else
      rm -rf --one-file-system "$root"
    fi
  fi
  printf 'test-packages: %d s in all\n' $((SECONDS - start))
  exit "$status"
}
trap cleanup EXIT

root=$(mktemp -d "${TMPDIR:-/tmp}/mo-packages.XXXXXX")
chmod 755 "$root"

# debootstrap, from the cached package tarball when there is one.
# adduser and procps (/bin/kill) are what mod's package depends on besides libc; systemd, for
# systemd-analyze verify to find the units a service's unit needs (sysinit.target …).
include=adduser,procps,systemd
cache=$(realpath -m "$target/debootstrap/$suite-minbase-${include//,/-}.tgz")
mkdir -p "$(dirname "$cache")"
boot=(/usr/sbin/debootstrap --variant=minbase --include="$include")
t0=$SECONDS
if [[ ! -s $cache ]]; then
  say "fetching the packages of a minimal $suite root from $mirror into $cache (once)"
  "${boot[@]}" --make-tarball="$cache.part" "$suite" "$root/tarball-work" "$mirror" \
    >"$root/debootstrap.log" 2>&1 || { tail -n 20 "$root/debootstrap.log" >&2; fail "debootstrap --make-tarball"; }
  mv "$cache.part" "$cache"
  rm -rf "$root/tarball-work"
fi
say "debootstrap $suite (minbase) into $root/chroot"
"${boot[@]}" --unpack-tarball="$cache" "$suite" "$root/chroot" "$mirror" \
  >"$root/debootstrap.log" 2>&1 || { tail -n 20 "$root/debootstrap.log" >&2; fail "debootstrap $suite"; }
say "debootstrap took $((SECONDS - t0)) s"
ch=$root/chroot
mount -t proc proc "$ch/proc"
mounted+=("$ch/proc")

say "dpkg -i ${debs[*]##*/}"
mkdir -p "$ch/tmp/debs"
cp "${debs[@]}" "$ch/tmp/debs/"
if ! chroot "$ch" sh -c 'dpkg -i /tmp/debs/*.deb' >"$root/dpkg.log" 2>&1; then
  say "dpkg -i needs dependencies: apt-get -f install"
  chroot "$ch" sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -f install -y' \
    >>"$root/dpkg.log" 2>&1 || { cat "$root/dpkg.log" >&2; fail "installing the packages"; }
fi
chroot "$ch" dpkg -s mod mo mo-agent >/dev/null || { cat "$root/dpkg.log" >&2; fail "packages not installed"; }

say "the users, directories and files the packages install"
in_root() { chroot "$ch" "$@"; }
in_root getent passwd mo >/dev/null || fail "no system user mo"
in_root getent passwd mo-agent >/dev/null || fail "no system user mo-agent"
for user in mo mo-agent; do
  in_root id -nG "$user" | tr ' ' '\n' | grep -x dialout >/dev/null || fail "$user is not in the group dialout"
done
# Numbers: the host may give the root's ids other names.
[[ $(stat -c %u "$ch/var/lib/mo") == "$(in_root id -u mo)" ]] || fail "/var/lib/mo is not owned by mo"
in_root dpkg-query -W -f='${Conffiles}\n' mod | grep '/etc/mo/mod.toml' >/dev/null ||
  fail "/etc/mo/mod.toml is not a conffile of mod"
units=$(in_root dpkg -L mod mo-agent | grep -E '/systemd/system/(mod|mo-agent)\.service$' || true)
[[ $(wc -w <<<"$units") -eq 2 ]] || fail "the units mod.service and mo-agent.service are not both installed: $units"
[[ -L $ch/etc/systemd/system/multi-user.target.wants/mod.service ]] ||
  fail "mod.service is not enabled (no multi-user.target.wants link)"
for bin in mod mo mo-agent; do
  for f in /usr/bin/$bin /usr/share/bash-completion/completions/$bin \
    /usr/share/zsh/vendor-completions/_$bin /usr/share/fish/vendor_completions.d/$bin.fish \
    /usr/share/man/man1/$bin.1.gz; do
    [[ -s $ch$f ]] || fail "$f is missing or empty (package of $bin)"
  done
  grep -q '^\.TH' <(zcat "$ch/usr/share/man/man1/$bin.1.gz") || fail "/usr/share/man/man1/$bin.1.gz is no man page"
done
[[ -s $ch/usr/share/man/man1/mo-device-add.1.gz ]] || fail "no man page per mo subcommand (mo-device-add.1.gz)"
grep -q -- '--generate-completions' "$ch/usr/share/bash-completion/completions/mo" &&
  fail "the bash completion of mo offers the hidden --generate-completions"
grep -q 'complete -F _mo ' "$ch/usr/share/bash-completion/completions/mo" ||
  fail "/usr/share/bash-completion/completions/mo completes no \`mo\`"

say "mod --check-config --config /etc/mo/mod.toml"
in_root /usr/bin/mod --check-config --config /etc/mo/mod.toml >"$root/check-config.out" 2>&1 || {
  cat "$root/check-config.out" >&2
  fail "mod --check-config refused the packaged /etc/mo/mod.toml"
}
grep -q '^data-dir = "/var/lib/mo"' "$root/check-config.out" ||
  fail "the packaged configuration does not put the data in /var/lib/mo: $(cat "$root/check-config.out")"

say "systemd-analyze verify mod.service mo-agent.service"
for unit in $units; do
  # --man=no: the man pages are checked above, in the root (verify would ask the host's man).
  out=$(systemd-analyze verify --root="$ch" --man=no "$unit" 2>&1) ||
    fail "systemd-analyze verify $unit: $out"
  # verify exits 0 on some findings too: none are acceptable.
  [[ -z $out ]] || fail "systemd-analyze verify $unit: $out"
done

# A free loopback port for the SSH door (the root shares the host's network).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
uid=$(in_root id -u mo)
gid=$(in_root id -g mo)

# The notification socket systemd would pass (NOTIFY_SOCKET), at /run/mo-notify in the root; each
# datagram it receives is a line of $root/notify.log.
python3 - "$ch/run/mo-notify" "$root/notify.log" <<'EOF' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
open(log + ".ready", "w").close()
while True:
    data = s.recv(4096)
    with open(log, "a") as f:
        f.write(data.decode(errors="replace").replace("\n", " ") + "\n")
EOF
listener=$!
# Wait until the listener is bound (generous: a loaded machine).
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "waited ${limit}s for $what"
    sleep 0.2
  done
}
wait_for 60 "the notification socket" test -e "$root/notify.log.ready"

say "starting the packaged mod in the root as mo, --ssh 127.0.0.1:$port"
dialout=$(in_root getent group dialout | cut -d: -f3)
chroot --userspec="$uid:$gid" --groups="$dialout" "$ch" env -i PATH=/usr/bin:/bin HOME=/var/lib/mo \
  NOTIFY_SOCKET=/run/mo-notify /usr/bin/mod --config /etc/mo/mod.toml --ssh "127.0.0.1:$port" \
  >"$root/mod.log" 2>&1 &
daemon=$!
notified() { grep -qx "$1" "$root/notify.log" 2>/dev/null || grep -q "^$1 " "$root/notify.log" 2>/dev/null; }
daemon_alive() { kill -0 "$daemon" 2>/dev/null || { cat "$root/mod.log" >&2; fail "mod exited"; }; }
ready() { daemon_alive && notified 'READY=1'; }
wait_for 60 "READY=1 from mod" ready

say "a device and a user with the packaged mo; the host's ssh logs in"
ssh-keygen -q -t ed25519 -N '' -C alice -f "$root/alice" >/dev/null
install -m 0644 "$root/alice.pub" "$ch/tmp/alice.pub"
mo_in_root() {
  chroot --userspec="$uid:$gid" "$ch" env -i PATH=/usr/bin:/bin HOME=/var/lib/mo /usr/bin/mo "$@"
}
mo_in_root device add lab01 'sim://lab01' >/dev/null || fail "mo device add in the root"
mo_in_root user add alice --ssh-key /tmp/alice.pub >/dev/null || fail "mo user add in the root"
mo_in_root grant add alice viewer all >/dev/null || fail "mo grant add in the root"
ssh_alice() {
  env -u SSH_AUTH_SOCK ssh -T -p "$port" -i "$root/alice" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o PreferredAuthentications=publickey -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=20 alice@127.0.0.1 "$@"
}
# The daemon picks up the store's changes within a second: poll until the shell lists lab01.
listed() { daemon_alive && ssh_alice list >"$root/ssh.out" 2>&1 && grep -q lab01 "$root/ssh.out"; }
wait_for 60 "alice's SSH login listing lab01" listed
say "ssh -p $port alice@127.0.0.1 list: $(grep lab01 "$root/ssh.out")"

say "SIGHUP: RELOADING=1 then READY=1; SIGTERM: STOPPING=1"
kill -HUP "$daemon"
reloaded() { daemon_alive && notified 'RELOADING=1' && [[ $(grep -c '^READY=1' "$root/notify.log") -ge 2 ]]; }
wait_for 60 "RELOADING=1 and READY=1 after SIGHUP" reloaded
kill -TERM "$daemon"
status=0
wait "$daemon" || status=$?
daemon=
[[ $status -eq 0 ]] || { cat "$root/mod.log" >&2; fail "mod exited with $status on SIGTERM"; }
notified 'STOPPING=1' || fail "no STOPPING=1 from mod on SIGTERM"

say "all checks passed; disk used by the root: $(du -sh --one-file-system "$ch" | cut -f1)"
