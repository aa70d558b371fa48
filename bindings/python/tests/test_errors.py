"""The exception hierarchy and which errors raise which class."""

from __future__ import annotations

import builtins

import pytest

import mo


def test_hierarchy() -> None:
    for cls in (
        mo.ConnectError,
        mo.AuthError,
        mo.TimeoutError,
        mo.NotFound,
        mo.PermissionDenied,
        mo.ProtocolError,
        mo.Unsupported,
        mo.InvalidArgument,
        mo.ConsoleClosed,
        mo.Conflict,
    ):
        assert issubclass(cls, mo.MoError), cls
    assert issubclass(mo.MoError, Exception)
    assert issubclass(mo.TimeoutError, builtins.TimeoutError)
    assert issubclass(mo.InvalidArgument, ValueError)
    assert not issubclass(mo.ConnectError, mo.TimeoutError)


@pytest.mark.asyncio
async def test_bad_address_is_invalid_argument() -> None:
    with pytest.raises(mo.InvalidArgument) as info:
        await mo.open("nosuchscheme://x")
    assert "nosuchscheme" in str(info.value)


@pytest.mark.asyncio
async def test_missing_serial_device_is_connect_error() -> None:
    with pytest.raises(mo.ConnectError) as info:
        await mo.open("serial:///dev/mo-no-such-tty?baud=9600", wait_up=5)
    assert "mo-no-such-tty" in str(info.value)


@pytest.mark.asyncio
async def test_bad_pattern_mode_and_timeout_are_invalid_argument() -> None:
    async with mo.open("sim://args?boot=none") as con:
        with pytest.raises(mo.InvalidArgument) as info:
            await con.expect("(unclosed", timeout=1)
        assert "(unclosed" in str(info.value)
        with pytest.raises(mo.InvalidArgument):
            await con.expect([], timeout=1)
        with pytest.raises(mo.InvalidArgument):
            await con.expect("x", timeout=-1)
        with pytest.raises(mo.InvalidArgument):
            await con.set_mode("sideways")


@pytest.mark.asyncio
async def test_spy_cannot_type() -> None:
    async with mo.open("sim://spy?boot=none", mode="spy") as con:
        assert con.role == "spy"
        with pytest.raises(mo.PermissionDenied):
            await con.write(b"root\r")
