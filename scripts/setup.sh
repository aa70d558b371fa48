#!/usr/bin/env bash
# Install the system packages mo's tests drive as real peers (PEERS.md): socat (fake serial lines),
# the OpenSSH client and server, tmux (terminals for interactive clients), expect and inetutils
# telnetd (a telnet device for the telnet driver's tests) and ser2net (RFC 2217 in front of a pty).
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

# command that proves the package is present -> Debian package name
declare -A need=(
  [socat]=socat
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [/usr/sbin/sshd]=openssh-server
  [tmux]=tmux
  [expect]=expect
  [/usr/sbin/telnetd]=inetutils-telnetd
  [/usr/sbin/ser2net]=ser2net
)

missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${need[$cmd]}
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all test peers present (socat openssh-client openssh-server tmux expect inetutils-telnetd ser2net)"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup: done"
