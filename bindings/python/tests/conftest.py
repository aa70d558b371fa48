"""Fixtures: real peers (a socat pty pair, a running `mod` daemon) on loopback."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PtyPair:
    """Two linked ptys made by socat: mo opens `a`, the test plays the device on `b`."""

    def __init__(self, a: str, b: str, proc: subprocess.Popen[bytes]) -> None:
        self.a, self.b, self.proc = a, b, proc


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed (run scripts/setup.sh)")
    with tempfile.TemporaryDirectory(prefix="mo-py-pty-") as tmp:
        a, b = os.path.join(tmp, "A"), os.path.join(tmp, "B")
        proc = subprocess.Popen(
            ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not (os.path.exists(a) and os.path.exists(b)):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("socat did not create the pty pair")
                time.sleep(0.02)
            yield PtyPair(a, b, proc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class Daemon:
    """A running `mod --demo` with its HTTP API."""

    def __init__(self, url: str, token: str, proc: subprocess.Popen[bytes]) -> None:
        self.url, self.token, self.proc = url, token, proc


def mod_binary() -> Path:
    """The daemon the client-mode tests drive: `MO_MOD_BIN` (scripts/test-python.sh sets it),
    else `debug/mod` in cargo's target directory (`CARGO_TARGET_DIR` when set, relative to the
    working directory as cargo reads it)."""
    env = os.environ.get("MO_MOD_BIN")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target).resolve() if target else repo / "target") / "debug" / "mod"


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    binary = mod_binary()
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: build it with `cargo build -p mo-daemon` "
            "(scripts/test-python.sh does), or point MO_MOD_BIN at a built `mod`"
        )
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True).stdout
    if "--http" not in help_text:
        pytest.fail(
            f"{binary} has no --http option, so the client-mode tests cannot run: it is not the "
            "mod of this checkout (rebuild it with `cargo build -p mo-daemon`)"
        )
    with tempfile.TemporaryDirectory(prefix="mo-py-daemon-") as data:
        http = free_port()
        log = open(os.path.join(data, "mod.stderr"), "w+b")
        proc = subprocess.Popen(
            [
                str(binary),
                "--demo",
                "--data-dir",
                data,
                "--ssh",
                f"127.0.0.1:{free_port()}",
                "--http",
                f"127.0.0.1:{http}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            token = None
            deadline = time.monotonic() + 60
            while token is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail("mod did not start:\n" + log.read().decode(errors="replace"))
                log.seek(0)
                found = re.search(rb"MO_TOKEN=(\S+)", log.read())
                if found:
                    token = found.group(1).decode()
                else:
                    time.sleep(0.05)
            yield Daemon(f"http://127.0.0.1:{http}", token, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
