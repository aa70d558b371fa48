"""An embedded ``ipmi://`` console with a password, against OpenIPMI's ipmi_sim on loopback.

Configured as tests/support/src/ipmi_sim.rs does (PEERS.md ``peers/ipmi_sim-*``): user ``admin``
/ ``password``, Serial over LAN on the device end of a socat pty pair whose host end the test
holds. ipmi_sim locks the SOL device by its last path component (``/var/lock/LCK..NAME``), so the
name is unique and the lock is removed afterwards; it drops bytes sent just after SOL activation,
so the test sends numbered markers until one arrives before it relies on the link. The ``bmc_kg``
fixture's BMC also has a BMC key K_g on its LAN channel (``bmc_key "TEXT"`` in lan.conf: ipmi_sim
zero-pads text to 20 bytes, the same HMAC key as mo's text form).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator, Optional

import pytest

import mo
import mo.sync
from conftest import free_port

IPMI_SIM = "/usr/bin/ipmi_sim"
ASF_PING = bytes([0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x80, 0x01, 0x00, 0x00])

LAN_CONF = """name "ipmisim1"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 @PORT@
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
@BMC_KEY@  endlan
  chassis_control "@DIR@/chassis.sh 0x20"
  sol "@SOL@" 115200
  user 1 true  ""      "test"     user  10 none md2 md5 straight
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
"""

EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""

CHASSIS_SH = """#!/bin/sh
echo power:0
exit 0
"""


class Bmc:
    """A running ipmi_sim: its UDP port and the host end of its SOL line (an open fd)."""

    def __init__(self, port: int, host_fd: int) -> None:
        self.port, self.host_fd = port, host_fd


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BMC_KEY = "mo-Kg-Secret-7"


@pytest.fixture
def bmc() -> Iterator[Bmc]:
    with running_bmc(None) as b:
        yield b


@pytest.fixture
def bmc_kg() -> Iterator[Bmc]:
    with running_bmc(BMC_KEY) as b:
        yield b


@contextmanager
def running_bmc(bmc_key: Optional[str]) -> Iterator[Bmc]:
    """ipmi_sim with SOL on a fresh pty pair; with ``bmc_key`` set, its LAN channel requires K_g."""
    for tool, package in ((IPMI_SIM, "openipmi"), ("socat", "socat")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install {package} (scripts/setup.sh)")
    dir = Path(tempfile.mkdtemp(prefix="mo-py-ipmi-"))
    sol_name = f"ttySOL-py-{uuid.uuid4().hex[:12]}"
    sol, host = dir / sol_name, dir / "ttySOL-host"
    lock = Path("/var/lock") / f"LCK..{sol_name}"
    socat = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={sol}", f"pty,raw,echo=0,link={host}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim: subprocess.Popen[bytes] | None = None
    host_fd = -1
    try:
        deadline = time.monotonic() + 30
        while not (sol.exists() and host.exists()):
            if time.monotonic() > deadline or socat.poll() is not None:
                pytest.fail("socat did not create the SOL pty pair")
            time.sleep(0.02)
        host_fd = os.open(host, os.O_RDWR | os.O_NOCTTY)
        port = free_udp_port()
        (dir / "state").mkdir()
        (dir / "lan.conf").write_text(
            LAN_CONF.replace("@PORT@", str(port))
            .replace("@DIR@", str(dir))
            .replace("@SOL@", str(sol))
            .replace("@BMC_KEY@", f'    bmc_key "{bmc_key}"\n' if bmc_key else "")
        )
        (dir / "ipmi_sim.emu").write_text(EMU)
        (dir / "chassis.sh").write_text(CHASSIS_SH)
        (dir / "chassis.sh").chmod(0o755)
        log = open(dir / "ipmi_sim.log", "wb")
        sim = subprocess.Popen(
            [IPMI_SIM, "-c", str(dir / "lan.conf"), "-f", str(dir / "ipmi_sim.emu")]
            + ["-s", str(dir / "state"), "-n"],
            cwd=dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ping:
            ping.connect(("127.0.0.1", port))
            ping.settimeout(0.2)
            deadline = time.monotonic() + 30
            while True:
                if sim.poll() is not None:
                    text = (dir / "ipmi_sim.log").read_text(errors="replace")
                    pytest.fail(f"ipmi_sim exited with {sim.returncode}: {text}")
                ping.send(ASF_PING)
                try:
                    answer = ping.recv(256)
                    if len(answer) >= 9 and answer[8] == 0x40:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"ipmi_sim did not answer an ASF ping on UDP {port} in 30 s")
        yield Bmc(port, host_fd)
    finally:
        if sim is not None:
            sim.kill()
            sim.wait(timeout=30)
        if host_fd >= 0:
            os.close(host_fd)
        socat.terminate()
        socat.wait(timeout=30)
        lock.unlink(missing_ok=True)
        shutil.rmtree(dir, ignore_errors=True)


def sync_sol(con: mo.sync.SyncConsole, bmc: Bmc) -> None:
    """Wait until SOL output flows: ipmi_sim drops what the host writes just after activation,
    so send numbered markers until one arrives (each wait is a poll within the overall deadline,
    not an assertion)."""
    deadline = time.monotonic() + 60
    n = 0
    while True:
        n += 1
        os.write(bmc.host_fd, f"sol-marker-{n}\r\n".encode())
        try:
            con.expect(r"sol-marker-\d+", timeout=1)
            return
        except mo.TimeoutError:
            if time.monotonic() > deadline:
                pytest.fail("no SOL output from ipmi_sim's host end in 60 s")


def test_ipmi_sol_reads_host_output(bmc: Bmc) -> None:
    address = f"ipmi://admin@127.0.0.1:{bmc.port}?cipher=3"
    with mo.sync.open(address, password="password", bmc_key=None) as con:
        sync_sol(con, bmc)
        os.write(bmc.host_fd, b"host console says mo-ipmi-42\r\n")
        m = con.expect(r"mo-ipmi-(\d+)", timeout=30)
        assert m.captures == ["42"]


def test_ipmi_wrong_password_is_secret_free(bmc: Bmc) -> None:
    wrong = "Wr0ng-bmc-pw-never-shown"
    address = f"ipmi://admin@127.0.0.1:{bmc.port}?cipher=3"
    with pytest.raises(mo.MoError) as err:
        mo.sync.open(address, password=wrong, wait_up=30)
    assert wrong not in f"{err.value} {err.value!r}"
    assert "auth" in str(err.value).lower(), str(err.value)


def read_host(fd: int, want: bytes, timeout: float) -> bytes:
    """What the host end of the SOL line receives, until it contains ``want`` (or the deadline)."""
    got = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(fd, False)
    try:
        while want not in got and time.monotonic() < deadline:
            try:
                got += os.read(fd, 4096)
            except BlockingIOError:
                time.sleep(0.02)
    finally:
        os.set_blocking(fd, True)
    return got


def test_ipmi_bmc_key_opens_sol_both_ways(bmc_kg: Bmc) -> None:
    address = f"ipmi://admin@127.0.0.1:{bmc_kg.port}?cipher=3"
    with mo.sync.open(address, password="password", bmc_key=BMC_KEY) as con:
        assert BMC_KEY not in repr(con)
        sync_sol(con, bmc_kg)
        os.write(bmc_kg.host_fd, b"host with K_g says mo-kg-7\r\n")
        assert con.expect(r"mo-kg-(\d+)", timeout=30).captures == ["7"]
        con.send_line("typed-through-kg-sol")
        got = read_host(bmc_kg.host_fd, b"typed-through-kg-sol", 30)
        assert b"typed-through-kg-sol" in got, got


@pytest.mark.parametrize("key", ["Wr0ng-Kg-never-shown", None])
def test_ipmi_wrong_bmc_key_is_secret_free(bmc_kg: Bmc, key: Optional[str]) -> None:
    address = f"ipmi://admin@127.0.0.1:{bmc_kg.port}?cipher=3"
    with pytest.raises(mo.MoError) as err:
        mo.sync.open(address, password="password", bmc_key=key, wait_up=30)
    text = f"{err.value} {err.value!r}"
    assert BMC_KEY not in text
    assert key is None or key not in text
    assert "k_g" in text.lower(), text
