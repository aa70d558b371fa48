"""Embedded mode (asyncio): consoles on sim devices and on a socat pty, run in this process."""

from __future__ import annotations

import asyncio
import builtins
import os

import pytest

import mo
from conftest import PtyPair

pytestmark = pytest.mark.asyncio

PROMPT = r"[\w-]+:~\$ "


async def login(con: mo.Console) -> None:
    await con.expect("login: ", timeout=30)
    await con.send_line("root")
    await con.expect("Password: ")
    await con.send_line("pw")
    await con.expect(PROMPT, timeout=10)


async def test_sim_login_and_echo() -> None:
    async with mo.open("sim://web01?boot=fast", user="alice") as con:
        assert con.device == "web01"
        assert con.user == "alice"
        assert con.role == "attach"
        m = await con.expect(["never-printed", "web01 login: "], timeout=30)
        assert m.index == 1
        assert m.matched == "web01 login: "
        await con.send_line("root")
        await con.expect("Password: ")
        await con.send_line("secret")
        await con.expect(PROMPT)
        await con.send_line("echo hello-from-python")
        m = await con.expect(r"\nhello-from-(\w+)\n")
        assert m.captures == ["python"]
        assert "echo hello-from-python" in m.before
        who = await con.who()
        assert [(v.user, v.role) for v in who] == [("alice", "attach")]
        assert who[0].since > 0


async def test_async_iteration_reads_bytes() -> None:
    async with mo.open("sim://iter01?boot=none") as con:
        seen = b""
        async for chunk in con:
            assert isinstance(chunk, bytes)
            seen += chunk
            if b"iter01 login: " in seen:
                break
        assert b"iter01 login: " in seen
        await con.write(b"root\r")
        while b"Password: " not in seen:
            seen += await con.read()
        await con.write(b"pw\r")
        while b"iter01:~$ " not in seen:
            seen += await con.read()


async def test_read_after_close_is_empty_and_iteration_ends() -> None:
    con = await mo.open("sim://closing?boot=none")
    await con.expect("login: ")
    await con.close()
    assert await con.read() == b""
    chunks = [c async for c in con]
    assert chunks == []
    with pytest.raises(mo.ConsoleClosed):
        await con.expect("anything", timeout=1)


async def test_expect_timeout_raises_mo_timeout_error() -> None:
    async with mo.open("sim://slow?boot=none") as con:
        await con.expect("login: ")
        with pytest.raises(mo.TimeoutError) as info:
            await con.expect("this never appears", timeout=0.3)
        assert isinstance(info.value, builtins.TimeoutError)
        assert isinstance(info.value, mo.MoError)
        assert "this never appears" in str(info.value)
        # The console still works after a timeout.
        await con.send_line("root")
        await con.expect("Password: ")


async def test_send_break_enters_boot_monitor() -> None:
    async with mo.open("sim://brk?boot=none") as con:
        await login(con)
        sent = await con.send_break()
        assert sent
        await con.expect(r"ok ", timeout=10)
        await con.send_line("go")
        await con.send_line("echo back")
        await con.expect(r"back\n", timeout=10)


async def test_serial_pty_both_directions(pty_pair: PtyPair) -> None:
    fd = os.open(pty_pair.b, os.O_RDWR | os.O_NOCTTY)
    try:
        async with mo.open(f"serial://{pty_pair.a}?baud=115200", name="tty1") as con:
            assert con.device == "tty1"
            os.write(fd, b"U-Boot 2024.01\r\n=> ")
            m = await con.expect(r"=> ", timeout=10)
            assert "U-Boot 2024.01" in m.before
            await con.send_line("printenv")
            got = b""
            loop = asyncio.get_running_loop()
            while b"printenv\r" not in got:
                got += await loop.run_in_executor(None, os.read, fd, 100)
            assert got == b"printenv\r"
    finally:
        os.close(fd)


async def test_twenty_consoles_from_concurrent_tasks() -> None:
    async def one(i: int) -> str:
        async with mo.open(f"sim://many{i:02}?boot=none") as con:
            await login(con)
            await con.send_line(f"echo token-{i}-done")
            m = await con.expect(r"token-(\d+)-done\n", timeout=20)
            return m.captures[0] or ""

    got = await asyncio.gather(*(one(i) for i in range(20)))
    assert got == [str(i) for i in range(20)]


async def test_one_console_reader_and_writer_tasks() -> None:
    async with mo.open("sim://shared?boot=none") as con:
        await login(con)

        async def reader() -> bytes:
            seen = b""
            async for chunk in con:
                seen += chunk
                if b"line-19" in seen:
                    return seen
            return seen

        task = asyncio.create_task(reader())
        for i in range(20):
            await con.send_line(f"echo line-{i}")
        seen = await asyncio.wait_for(task, 30)
        for i in range(20):
            assert f"line-{i}".encode() in seen
