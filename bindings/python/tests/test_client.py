"""Client mode against a real running `mod --demo` (HTTP + WebSocket API on loopback)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mo
import mo.sync
from conftest import Daemon

PROMPT = r"sim-0\d:~\$ "


async def login(con: mo.Console) -> None:
    await con.send_line("")
    await con.expect("login: ", timeout=30)
    await con.send_line("demo")
    await con.expect("Password: ")
    await con.send_line("pw")
    await con.expect(PROMPT, timeout=10)


@pytest.mark.asyncio
async def test_devices_who_power_log(daemon: Daemon) -> None:
    client = mo.Client(daemon.url, daemon.token)
    devices = await client.devices()
    names = sorted(d["name"] for d in devices)
    assert names == [f"sim-0{i}" for i in range(1, 6)]
    assert all(d["url"].startswith("sim://") for d in devices)
    # The demo devices have no power controller: the API says so, mapped to Unsupported.
    with pytest.raises(mo.Unsupported) as info:
        await client.power("sim-01", "status")
    assert "no power controller" in str(info.value)
    async with client.attach("sim-01") as con:
        assert con.device == "sim-01"
        await login(con)
        await con.send_line("echo via-api")
        await con.expect(r"\nvia-api\n")
        who = await client.who("sim-01")
        assert [w["user"] for w in who] == ["demo"]
        viewers = await con.who()
        assert [v.user for v in viewers] == ["demo"]
    log = await client.log("sim-01", tail=50)
    assert "via-api" in log
    # Gang and macros: sim-01 is logged in now.
    r = await client.gang(["sim-01"], "echo gang-py")
    assert "gang-py" in r["outputs"]["sim-01"], r
    assert r["divergent"] == []
    assert await client.macros() == []
    with pytest.raises(mo.NotFound):
        await client.play_macro("nope", ["sim-01"])


@pytest.mark.asyncio
async def test_client_errors(daemon: Daemon) -> None:
    client = mo.Client(daemon.url, daemon.token)
    with pytest.raises(mo.NotFound) as info:
        await client.device("no-such-device")
    assert "no-such-device" in str(info.value)
    with pytest.raises(mo.NotFound):
        await client.attach("no-such-device")
    bad = mo.Client(daemon.url, "not-a-token")
    with pytest.raises(mo.AuthError):
        await bad.devices()
    with pytest.raises(mo.InvalidArgument):
        await client.power("sim-01", "explode")


@pytest.mark.asyncio
async def test_event_stream_sees_a_panic(daemon: Daemon) -> None:
    client = mo.Client(daemon.url, daemon.token)
    stream = client.events(device="sim-02")

    async def first() -> dict[str, object]:
        async for ev in stream:
            return ev
        raise AssertionError("event stream ended")

    waiter = asyncio.create_task(first())
    await asyncio.sleep(0.5)
    async with client.attach("sim-02") as con:
        await login(con)
        await con.send_line("panic")
        await con.expect("Kernel panic", timeout=10)
        ev = await asyncio.wait_for(waiter, 30)
    assert ev["device"] == "sim-02"
    assert ev["text"]
    stream.close()


def test_sync_client(daemon: Daemon) -> None:
    client = mo.sync.Client(daemon.url, daemon.token)
    assert len(client.devices()) == 5
    with client.attach("sim-03", mode="spy") as spy:
        assert spy.role == "spy"
        with client.attach("sim-03") as con:
            assert con.role == "attach"
            con.send_line("")
            con.expect("login: ", timeout=30)
            con.send_line("demo")
            con.expect("Password: ")
            con.send_line("pw")
            con.expect(PROMPT)
            con.send_line("echo sync-remote")
            con.expect(r"\nsync-remote\n")
            # The spy sees the same output.
            spy.expect(r"\nsync-remote\n", timeout=10)
            assert sorted(w["role"] for w in client.who("sim-03")) == ["attach", "spy"]
    events = client.events(device="sim-03")
    events.close()
    assert list(events) == []


# MO_REPO_DIR: the checkout when the suite runs from a copy (scripts/test-install.sh).
REPO = Path(os.environ.get("MO_REPO_DIR") or Path(__file__).resolve().parents[3])
OPERATIONS = json.loads((REPO / "docs/sdk-operations.json").read_text())


def test_every_operation_has_a_method_on_both_clients() -> None:
    """docs/sdk-operations.json (the one vocabulary) names a method of mo.Client and of
    mo.sync.Client for every client operation."""
    missing = [
        f"{cls.__module__}.{cls.__qualname__}.{e['python']} ({e.get('operation', 'helper')})"
        for e in OPERATIONS["operations"] + OPERATIONS["helpers"]
        for cls in (mo.Client, mo.sync.Client)
        if not callable(getattr(cls, e["python"], None))
    ]
    assert missing == []


def test_generated_types_and_calls_are_current(daemon: Daemon) -> None:
    """Regenerating from the served OpenAPI document reproduces the committed mo/_api.py,
    bindings/node/api.d.ts + calls.js and docs/sdk.md's table (and the table covers every
    operation the daemon serves)."""
    gen = subprocess.run(
        [sys.executable, str(REPO / "scripts/gen-sdk-types.py"), "--url", daemon.url, "--check"],
        capture_output=True,
        text=True,
    )
    assert gen.returncode == 0, gen.stderr


@pytest.mark.asyncio
async def test_generated_calls_add_list_and_remove(daemon: Daemon) -> None:
    client = mo.Client(daemon.url, daemon.token)
    assert (await client.health())["status"] == "ok"
    assert (await client.ready())["ready"] is True
    added = await client.add_device("py-new", "sim://py-new?boot=fast", description="from py")
    assert (added["name"], added.get("description")) == ("py-new", "from py")
    assert "py-new" in [d["name"] for d in await client.devices()]
    user = await client.add_user("py-user", password="py-pw")
    assert user["name"] == "py-user" and user["has_password"]
    grant = await client.add_grant("py-user", "viewer", "all")
    assert grant == {"subject": "py-user", "role": "viewer", "device_group": "all"}
    assert grant in await client.grants()
    await client.remove_grant("py-user", "viewer", "all")
    assert grant not in await client.grants()
    await client.remove_user("py-user")
    assert "py-user" not in [u["name"] for u in await client.users()]
    await client.remove_device("py-new")
    with pytest.raises(mo.NotFound):
        await client.device("py-new")
    with pytest.raises(mo.NotFound):
        await client.remove_device("py-new")


def test_generated_calls_blocking(daemon: Daemon) -> None:
    client = mo.sync.Client(daemon.url, daemon.token)
    me = client.me()
    assert "sim-01" in me["devices"]
    note = client.add_note("sim-02", "note-from-py")
    assert note["seq"] > 0
    hits = client.log_search("sim-02", "note-from-py", limit=5)
    assert any("note-from-py" in h["line"] for h in hits), hits
    assert client.log_verify("sim-02")["ok"] is True
    events = client.list_events(device="sim-02", limit=3)
    assert len(events) <= 3 and all(e["device"] == "sim-02" for e in events), events
    with pytest.raises(mo.InvalidArgument):
        client.log_search("sim-02", "(")
    # Power by glob and group: the demo sims have no power controller, so every report fails.
    reports = client.power_many(["sim-02", "sim-0*", "@all"])
    assert [r["device"] for r in reports] == ["sim-02", "sim-01", "sim-03", "sim-04", "sim-05"]
    assert all(r["ok"] is False and "no power controller" in r["message"] for r in reports), reports
    with pytest.raises(mo.NotFound):
        client.power_many(["nothing*"], "cycle")
