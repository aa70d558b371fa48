"""Embedded ``ssh://`` consoles with credentials, against a real OpenSSH sshd on loopback.

The sshd is the device of tests/support/src/sshd.rs (PEERS.md ``peers/sshd_config``): user
``consoletest`` with password ``mo-Test-pw-4711`` (scripts/setup.sh makes both) or a client key
made here, host key made here, readiness read from ``/proc/net/tcp``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

import mo
import mo.sync
from conftest import free_port

SSHD = "/usr/sbin/sshd"
USER = "consoletest"
PASSWORD = "mo-Test-pw-4711"


class Sshd:
    """A running sshd: its port, directory (keys, known_hosts) and process."""

    def __init__(self, port: int, dir: Path, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.dir, self.proc = port, dir, proc

    def address(self) -> str:
        return f"ssh://{USER}@127.0.0.1:{self.port}"

    def known_hosts(self) -> Path:
        """A known_hosts file holding this sshd's host key."""
        key = (self.dir / "ssh_host_ed25519_key.pub").read_text().strip()
        path = self.dir / "known_hosts"
        path.write_text(f"[127.0.0.1]:{self.port} {key}\n")
        return path


def keygen(path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: apt-get install openssh-client")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mo-test", "-f", str(path)],
        check=True,
        timeout=30,
    )


def listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (from /proc/net/tcp, no probe connection)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A" and parts[1].endswith(f":{port:04X}"):
                return True
    return False


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: apt-get install openssh-server")
    if subprocess.run(["getent", "passwd", USER], capture_output=True).returncode != 0:
        pytest.fail(f"the local user {USER} is missing: run scripts/setup.sh")
    os.makedirs("/run/sshd", exist_ok=True)
    dir = Path(tempfile.mkdtemp(prefix="mo-py-sshd-"))
    dir.chmod(0o755)
    keygen(dir / "ssh_host_ed25519_key")
    keygen(dir / "client_key")
    (dir / "authorized_keys").mkdir()
    auth = dir / "authorized_keys" / USER
    shutil.copy(dir / "client_key.pub", auth)
    auth.chmod(0o644)
    port = free_port()
    (dir / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/ssh_host_ed25519_key\n"
        f"PidFile {dir}/sshd.pid\nAuthorizedKeysFile {dir}/authorized_keys/%u\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"UsePAM no\nPermitRootLogin no\nStrictModes no\nAllowUsers {USER}\n"
        "MaxStartups 300:30:400\nUseDNS no\nPrintMotd no\nPrintLastLog no\nLogLevel DEBUG1\n"
    )
    proc = subprocess.Popen(
        [SSHD, "-D", "-f", str(dir / "sshd_config"), "-E", str(dir / "sshd.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            if proc.poll() is not None:
                log = (dir / "sshd.log").read_text(errors="replace")
                pytest.fail(f"sshd exited with {proc.returncode}: {log}")
            if time.monotonic() > deadline:
                pytest.fail(f"sshd not listening on 127.0.0.1:{port} after 30 s")
            time.sleep(0.05)
        yield Sshd(port, dir, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(dir, ignore_errors=True)


def run_echo(con: mo.SyncConsole) -> None:
    con.send_line("echo mo-ssh-$((40+2))")
    m = con.expect(r"mo-ssh-(\d+)", timeout=30)
    assert m.captures == ["42"]


def test_ssh_password(sshd: Sshd) -> None:
    with mo.sync.open(
        sshd.address(), password=PASSWORD, known_hosts=str(sshd.known_hosts())
    ) as con:
        run_echo(con)


def test_ssh_private_key_path_and_text(sshd: Sshd) -> None:
    key = sshd.dir / "client_key"
    with mo.sync.open(sshd.address(), private_key=str(key), known_hosts=sshd.known_hosts()) as con:
        run_echo(con)
    with mo.sync.open(
        sshd.address(), private_key=key.read_text(), known_hosts=sshd.known_hosts()
    ) as con:
        run_echo(con)


@pytest.mark.asyncio
async def test_ssh_async_with_trust_on_first_use(sshd: Sshd) -> None:
    fresh = sshd.dir / "known_hosts_tofu"
    fresh.write_text("")
    async with mo.open(
        sshd.address(), password=PASSWORD, known_hosts=fresh, trust_host_key=True
    ) as con:
        await con.send_line("echo mo-ssh-$((40+2))")
        await con.expect(r"mo-ssh-42", timeout=30)
    assert f"[127.0.0.1]:{sshd.port}" in fresh.read_text()


def test_ssh_wrong_password_is_clear_and_secret_free(sshd: Sshd) -> None:
    wrong = "Wr0ng-pw-never-shown"
    with pytest.raises(mo.MoError) as err:
        mo.sync.open(sshd.address(), password=wrong, known_hosts=sshd.known_hosts(), wait_up=30)
    text = f"{err.value} {err.value!r}"
    assert wrong not in text
    assert "auth" in text.lower(), text


def test_ssh_unknown_host_key_refused(sshd: Sshd) -> None:
    with pytest.raises(mo.MoError) as err:
        mo.sync.open(sshd.address(), password=PASSWORD, wait_up=30)
    assert PASSWORD not in str(err.value)
    assert "key" in str(err.value).lower(), str(err.value)


def test_missing_key_file_names_the_path() -> None:
    with pytest.raises(ValueError, match="/nonexistent/key"):
        mo.sync.open("ssh://u@127.0.0.1:1", private_key="/nonexistent/key")
