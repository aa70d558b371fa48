"""Embedded consoles with scan patterns raise events, as the daemon's consoles do."""

from __future__ import annotations

from typing import Any, Optional

import pytest

import mo
import mo.sync

PANIC = ("kernel-panic", r"Kernel panic - not syncing", "critical")


async def next_pattern_event(con: mo.Console) -> dict[str, Any]:
    """The next event raised by a pattern (the link coming up is an event too)."""
    while True:
        event: Optional[dict[str, Any]] = await con.next_event(timeout=30)
        assert event is not None, "no event within 30 s"
        if event["name"] == "pattern":
            return event


@pytest.mark.asyncio
async def test_an_embedded_console_with_a_scan_pattern_raises_an_event() -> None:
    async with mo.open("sim://scan01?boot=none", user="alice", scan=[PANIC]) as con:
        up = await con.next_event(timeout=30)
        assert up is not None
        assert (up["name"], up["text"], up["device"]) == ("connection", "link up", "scan01")
        await con.expect("login: ", timeout=30)
        await con.send_line("root")
        await con.expect("Password: ")
        await con.send_line("pw")
        await con.expect(r"scan01:~\$ ")
        await con.send_line("panic")
        event = await next_pattern_event(con)
        assert event["device"] == "scan01"
        assert event["severity"] == "critical"
        assert "Kernel panic - not syncing" in event["text"]
        assert event["count"] == 1
        assert isinstance(event["id"], int) and event["id"] >= 1
        assert event["time"].endswith("Z")
        assert any("Kernel panic" in line for line in event["context"])


@pytest.mark.asyncio
async def test_a_prompt_without_a_newline_is_matched_after_a_quiet_period() -> None:
    prompt = ("login-prompt", r"scan02 login: $", "info")
    async with mo.open("sim://scan02?boot=none", scan=[prompt]) as con:
        event = await next_pattern_event(con)
        assert (event["severity"], event["text"]) == ("info", "scan02 login: ")


@pytest.mark.asyncio
async def test_next_event_times_out_with_none_and_needs_scan() -> None:
    async with mo.open("sim://scan03?boot=none", scan=[("never", "never-printed")]) as con:
        up = await con.next_event(timeout=30)
        assert up is not None and up["name"] == "connection"
        assert await con.next_event(timeout=0.3) is None
    async with mo.open("sim://scan04?boot=none") as plain:
        with pytest.raises(mo.InvalidArgument, match="scan"):
            await plain.next_event(timeout=0.1)


def test_bad_scan_patterns_are_refused_before_opening() -> None:
    with pytest.raises(mo.InvalidArgument, match="bad-regex"):
        mo.sync.open("sim://scan05", scan=[("bad-regex", "(")])
    with pytest.raises(mo.InvalidArgument, match="loud"):
        mo.sync.open("sim://scan05", scan=[("p", "x", "loud")])
    with pytest.raises(mo.InvalidArgument, match="name, regex"):
        mo.sync.open("sim://scan05", scan=[("just-a-name",)])  # type: ignore[list-item]


def test_the_blocking_console_raises_events_too() -> None:
    with mo.sync.open("sim://scan06?boot=none", scan=[PANIC]) as con:
        con.expect("login: ", timeout=30)
        con.send_line("root")
        con.expect("Password: ")
        con.send_line("pw")
        con.expect(r"scan06:~\$ ")
        con.send_line("panic")
        while True:
            event = con.next_event(timeout=30)
            assert event is not None, "no event within 30 s"
            if event["name"] == "pattern":
                break
        assert event["severity"] == "critical"
        assert "Kernel panic" in event["text"]
