"""Client mode over HTTPS/WSS: `mod --demo --tls-self-signed`, trusted by `ca=` or `pin=`."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from typing import Iterator

import pytest

import mo
import mo.sync
from conftest import free_port, mod_binary


class TlsDaemon:
    def __init__(self, url: str, token: str, pin: str, cert: str) -> None:
        self.url, self.token, self.pin, self.cert = url, token, pin, cert


@pytest.fixture(scope="module")
def tls_daemon() -> Iterator[TlsDaemon]:
    binary = mod_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `cargo build -p mo-daemon`")
    with tempfile.TemporaryDirectory(prefix="mo-py-tls-") as data:
        http = free_port()
        log = open(os.path.join(data, "mod.stderr"), "w+b")
        proc = subprocess.Popen(
            [str(binary), "--demo", "--tls-self-signed", "--data-dir", data,
             "--ssh", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{http}"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                log.seek(0)
                text = log.read().decode(errors="replace")
                token = re.search(r"MO_TOKEN=(\S+)", text)
                pin = re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", text)
                if token and pin:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mod --tls-self-signed did not start:\n" + text)
                time.sleep(0.05)
            assert f"https://127.0.0.1:{http}/api/v1/" in text, text
            cert = os.path.join(data, "tls", "self-signed.crt")
            yield TlsDaemon(f"https://127.0.0.1:{http}", token.group(1), pin.group(1), cert)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@pytest.mark.asyncio
async def test_pin_and_ca_over_https_and_wss(tls_daemon: TlsDaemon) -> None:
    for trust in ({"pin": tls_daemon.pin}, {"ca": tls_daemon.cert}):
        client = mo.Client(tls_daemon.url, tls_daemon.token, **trust)
        assert len(await client.devices()) == 5
        async with client.attach("sim-01", mode="spy") as con:
            assert con.role == "spy"
    # The pin without colons, lower case: the same notation as Redfish's `fingerprint=`.
    plain = tls_daemon.pin.replace(":", "").lower()
    assert len(await mo.Client(tls_daemon.url, tls_daemon.token, pin=plain).devices()) == 5


@pytest.mark.asyncio
async def test_wrong_trust_is_refused(tls_daemon: TlsDaemon) -> None:
    wrong = mo.Client(tls_daemon.url, tls_daemon.token, pin="ab" * 32)
    with pytest.raises(mo.ConnectError) as info:
        await wrong.devices()
    assert "does not match the pinned one" in str(info.value)
    with pytest.raises(mo.ConnectError):
        await wrong.attach("sim-01")
    # Without a pin or CA the self-signed certificate is not trusted.
    with pytest.raises(mo.ConnectError) as info:
        await mo.Client(tls_daemon.url, tls_daemon.token).devices()
    assert "certificate" in str(info.value).lower()
    with pytest.raises(mo.InvalidArgument):
        mo.Client(tls_daemon.url, tls_daemon.token, pin="abc")
    with pytest.raises(mo.InvalidArgument):
        mo.Client(tls_daemon.url, tls_daemon.token, pin=tls_daemon.pin, ca=tls_daemon.cert)
    with pytest.raises(mo.InvalidArgument):
        mo.Client(tls_daemon.url.replace("https", "http"), tls_daemon.token, pin=tls_daemon.pin)


def test_sync_client_over_wss(tls_daemon: TlsDaemon) -> None:
    client = mo.sync.Client(tls_daemon.url, tls_daemon.token, pin=tls_daemon.pin)
    with client.attach("sim-02") as con:
        con.send_line("")
        con.expect("login: ", timeout=30)
    with pytest.raises(mo.ConnectError):
        mo.sync.Client(tls_daemon.url, tls_daemon.token, pin="cd" * 32).devices()
